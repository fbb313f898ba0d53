"""Streaming classification: one new observation at a time, the same numbers as the batch model.

:class:`StreamingClassifier` wraps a trained neural classifier of any kind
(every neural kind of :data:`microlens.models.registry.KINDS`) and
keeps, for each of ``n_events`` event slots, just enough state to turn the next observation of
that event into calibrated class probabilities, ``softmax(logits / model.temperature)``, equal
(to float32 rounding) to what :meth:`MicrolensTransformer.predict_proba` gives for that
observation when it is handed the whole light curve so far.

State per event slot
--------------------
* ``n_seen``: observations taken so far (also the count of the running mean), and the time of
  the last one, for the interval feature ``log(1 + dt / dt_scale)`` (``dt = 0`` for the first).
* The first ``reference_points`` fluxes and errors (a fixed ``(n_events, R)`` buffer, NaN where
  not yet filled): the baseline ``b`` and scatter ``s`` of every observation are the lower
  medians of those seen so far among them, as in :meth:`Normalization.reference`. With
  ``baseline_method="robust"`` the buffer holds the current block of ``R`` observations instead,
  and ``baseline_state`` ``(n_events, 4)`` the level of the blocks so far
  (:meth:`Normalization.stream_reference`).
* Per layer, the keys and values of the previous ``window - 1`` observations, in fixed
  ``(n_events, heads, window - 1, head_dim)`` ring buffers. Observation ``n`` (0-based) writes
  slot ``n % (window - 1)``, overwriting observation ``n - window + 1``, which has just left every
  later query's window; slot ``j`` is valid when ``j < n_seen``. Slot order does not matter:
  attention is a weighted sum over a set of keys. With ``time_encoding="rotary"`` the cached keys
  are already rotated by their own observation's time, and the new query by its own, from times
  relative to the event's first observation (kept per slot, float64) exactly as the batch model
  computes them, so the cache stays exact.
* With a convolution stem (``conv_stem_kernel = K > 0``, the default), each stem layer's last
  ``(K - 1) * dilation`` inputs, oldest first (zeros before the first, as the batch stem's left
  padding): 4 * (1 + 2 + ... + 32) = 252 vectors at the defaults, a fixed size.
* The running sum (float64, as the CPU ``cumsum`` of :meth:`MicrolensTransformer.pool`
  accumulates) and running maximum of the final normalised encoder states, whose
  ``[sum / n_seen, max]`` is the pooled embedding the head classifies.

The other kinds keep their own fixed-size encoder state instead of the key/value cache and
stem history (:data:`ENCODER_STREAMS`): the ``cnn`` each convolution block's last
``(kernel_size - 1) * dilation`` normalised inputs, the ``gru`` its hidden state per layer, the
set kinds (``deepsets``, ``set_transformer``) a ring buffer of the last ``window - 1`` points'
flux and error features and times (float64, since the event's first observation), from which
each update forms the set of the new point (:class:`_SetStream`). The
normalisation, pooling, head and calibration are the same code for every kind. The ``features``
kind cannot stream (it refits a PSPL model to the curve so far) and is refused with that reason.

Why an observation costs ``O(window)``
--------------------------------------
Layer ``l`` of the batch encoder computes the new observation's state from its own state in layer
``l - 1`` and the keys and values of the ``window - 1`` observations before it in layer ``l - 1``
(observation ``k`` attends to ``k - window + 1 .. k``, the band of
:func:`~microlens.models.layers.window_mask`). Those keys and values were computed when the earlier
observations arrived and are kept, so each update runs the network on a single token per event:
the embedding, per layer a query/key/value projection, attention over at most ``window`` keys
and the feed-forward network, then the final norm, an ``O(d)`` pooling update and the head. The
normalisation needs a median over at most ``reference_points`` values. Nothing depends on how many
observations came before, and the state has a fixed size.

The stream reuses the model's own modules (``embed``, each block's ``norm1``,
``attention.query``/``key_value``/``out``, ``norm2``, ``feed_forward``, ``norm``, ``head``,
``temperature``) and its :class:`~microlens.models.inputs.Normalization` parameters; dropout is
never applied, whatever mode the model is in.

Quick use::

    stream = StreamingClassifier(model, n_events=2)
    stream.update([t0, u0], [f0, g0], [e0, d0])            # both events
    probs = stream.update([t1], [f1], [e1], events=[0])    # event 0 only, (1, n_classes)
    stream.logits                                          # uncalibrated logits of that update
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from microlens.core.validation import check_stream_update
from microlens.models.base import CausalClassifier
from microlens.models.inputs import IntervalRangeWarning
from microlens.models.layers import apply_rotary, rotary_angles, rotary_periods
from microlens.models.parameters import (
    AGE_SCALE_DAYS,
    ANCHOR_POINTS,
    absolute_quantiles,
)
from microlens.models.set_models import POINT_FEATURES


class StreamingClassifier:
    """Class probabilities after each new observation of one or many events, at fixed cost.

    Parameters
    ----------
    model : CausalClassifier
        A trained model of any neural kind (:data:`ENCODER_STREAMS`). It is used as it is:
        later changes to its weights or temperature show in later updates, but the cached
        encoder state was made with the old weights.
    n_events : int
        Event slots streamed side by side; each update takes one observation for some or all of
        them.

    Attributes
    ----------
    logits : Tensor ``(E, n_classes)`` or None
        Uncalibrated logits of the last update (``E`` events updated), on the model's device (the
        network runs where the model is; the normalisation and bookkeeping stay on the CPU).
    parameters : Tensor ``(E, P, Q)`` or None
        For a model with parameter heads, the quantiles of the lens parameters after the last
        update (:meth:`CausalClassifier.predict_parameters`'s, ``t_0`` in the times' frame);
        None otherwise.
    key_cache, value_cache : list of Tensor ``(n_events, heads, window - 1, head_dim)``
        Per-layer ring buffers of the previous observations' keys and values.
    reference_flux, reference_err : Tensor ``(n_events, reference_points)`` float32
        The first fluxes and errors of each event (NaN where none yet); with
        ``baseline_method="robust"``, those of its current block of ``reference_points``.
    baseline_state : Tensor ``(n_events, 4)`` float64
        The ``"robust"`` baseline's block state (zeros before a block ends; unused by ``"first"``).
    pool_sum : Tensor ``(n_events, d_model)`` float64
        Running sum of the final encoder states.
    pool_max : Tensor ``(n_events, d_model)`` float32
        Running maximum of the final encoder states (``-inf`` before the first observation).
    pool_max_time : Tensor ``(n_events, d_model)`` float64
        When each feature's running maximum was reached (NaN before the first observation;
        kept for a model with parameter heads only): the heads read the time since
        (:func:`microlens.models.parameters.peak_ages`).
    anchor_window : Tensor ``(n_events, ANCHOR_POINTS - 1, 3)`` float64
        The previous observations' terms ``(w, w f, w t)`` of the peak anchor's window, oldest
        first (zeros where none yet; :func:`microlens.models.parameters.peak_anchor`).
    anchor_best, anchor_time : Tensor ``(n_events,)`` float64
        The highest window mean so far (``-inf`` before the first observation) and the peak
        anchor, its window's mean time (NaN before the first observation).
    stem_history : Tensor ``(n_events, H, d_model)`` or None
        The convolution stem's previous inputs of each event, layer after layer, oldest first
        (``H = sum(model.stem.history_lengths)``; None without a stem).

    Examples
    --------
    >>> stream = StreamingClassifier(model, n_events=3)          # doctest: +SKIP
    >>> probs = stream.update([1.0, 1.2, 0.9], [1.01, 0.98, 1.0], [0.01, 0.01, 0.02])  # +SKIP
    >>> probs.shape                                              # doctest: +SKIP
    torch.Size([3, 3])
    """

    def __init__(self, model: CausalClassifier, n_events: int = 1):
        if not isinstance(model, CausalClassifier):
            kind = getattr(getattr(model, "config", None), "kind", None)
            if kind == "features":
                raise TypeError(
                    "a 'features' model cannot stream observation by observation: it refits a "
                    "PSPL model to the curve so far (~3 ms per fit) and answers at fixed "
                    "fractions of the curve; use microlens.models.features.predict_feature_events "
                    f"or a neural kind ({', '.join(ENCODER_STREAMS)})")
            raise TypeError(f"model must be a neural classifier (a CausalClassifier of kind "
                            f"{', '.join(ENCODER_STREAMS)}), got {type(model).__name__}")
        if not isinstance(n_events, int) or isinstance(n_events, bool) or n_events < 1:
            raise ValueError(f"n_events must be a positive integer, got {n_events!r}")
        self.model = model
        self.device = next(model.parameters()).device
        self.n_events = n_events
        self.normalization = model.normalization
        d_model = model.config.d_model
        dtype = next(model.parameters()).dtype
        self.encoder = ENCODER_STREAMS[model.config.kind](model, n_events, dtype, self.device)
        r = self.normalization.reference_points
        self.reference_flux = torch.full((n_events, r), math.nan, dtype=torch.float32)
        self.reference_err = torch.full((n_events, r), math.nan, dtype=torch.float32)
        # the "robust" baseline's block state (Normalization.stream_reference); unused by "first"
        self.baseline_state = torch.zeros(n_events, 4, dtype=torch.float64)
        self.pool_sum = torch.zeros(n_events, d_model, dtype=torch.float64, device=self.device)
        self.pool_max = torch.full((n_events, d_model), -math.inf, dtype=torch.float32,
                                   device=self.device)
        self.pool_max_time = torch.full((n_events, d_model), math.nan, dtype=torch.float64,
                                        device=self.device)
        # the peak anchor's running window (CPU, float64: bookkeeping, as the normalisation)
        self.anchor_window = torch.zeros(n_events, ANCHOR_POINTS - 1, 3, dtype=torch.float64)
        self.anchor_best = torch.full((n_events,), -math.inf, dtype=torch.float64)
        self.anchor_time = torch.full((n_events,), math.nan, dtype=torch.float64)
        self._n_seen = torch.zeros(n_events, dtype=torch.int64)
        self._last_time = torch.full((n_events,), math.nan, dtype=torch.float64)
        self._first_time = torch.full((n_events,), math.nan, dtype=torch.float64)
        self.logits: torch.Tensor | None = None
        self.parameters: torch.Tensor | None = None

    # -- the transformer's encoder state (kept as attributes for inspection) --------------

    @property
    def key_cache(self) -> list[torch.Tensor]:
        """Transformer only: per-layer key ring buffers ``(n_events, heads, window - 1,
        head_dim)``."""
        return self._transformer_state().key_cache

    @property
    def value_cache(self) -> list[torch.Tensor]:
        """Transformer only: per-layer value ring buffers."""
        return self._transformer_state().value_cache

    @property
    def stem_history(self) -> torch.Tensor | None:
        """Transformer only: the convolution stem's previous inputs (None without a stem)."""
        return self._transformer_state().stem_history

    @property
    def window(self) -> int:
        """Transformer only: the attention window."""
        return self._transformer_state().window

    def _transformer_state(self) -> _TransformerStream:
        if not isinstance(self.encoder, _TransformerStream):
            raise AttributeError(f"a {self.model.config.kind!r} model has no attention cache; "
                                 "its encoder state is in state_tensors()")
        return self.encoder

    # -- state -----------------------------------------------------------------------------

    @property
    def n_seen(self) -> torch.Tensor:
        """Observations taken so far by each event slot, ``(n_events,)`` int64 (a copy)."""
        return self._n_seen.clone()

    @property
    def last_time(self) -> torch.Tensor:
        """Time of each slot's last observation, ``(n_events,)`` float64 (NaN: none yet)."""
        return self._last_time.clone()

    @property
    def cache_valid(self) -> torch.Tensor:
        """Transformer only: which ring-buffer slots hold a previous observation,
        ``(n_events, window - 1)`` bool."""
        return torch.arange(self.window - 1)[None, :] < self._n_seen[:, None]

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor of the streaming state by name (for inspection; all fixed-size)."""
        state = {"n_seen": self._n_seen, "last_time": self._last_time,
                 "first_time": self._first_time,
                 "reference_flux": self.reference_flux, "reference_err": self.reference_err,
                 "baseline_state": self.baseline_state,
                 "pool_sum": self.pool_sum, "pool_max": self.pool_max,
                 "pool_max_time": self.pool_max_time, "anchor_window": self.anchor_window,
                 "anchor_best": self.anchor_best, "anchor_time": self.anchor_time}
        state.update(self.encoder.tensors())
        return state

    def reset(self, events=None) -> None:
        """Forget everything seen by the given event slots (default: all).

        Parameters
        ----------
        events : sequence of int, optional
            Event slots to clear; the others keep their state.
        """
        idx = self._event_index(events)
        dev = idx.to(self.device)
        self._n_seen[idx] = 0
        self._last_time[idx] = math.nan
        self._first_time[idx] = math.nan
        self.encoder.reset(dev)
        self.reference_flux[idx] = math.nan
        self.reference_err[idx] = math.nan
        self.baseline_state[idx] = 0
        self.pool_sum[dev] = 0
        self.pool_max[dev] = -math.inf
        self.pool_max_time[dev] = math.nan
        self.anchor_window[idx] = 0
        self.anchor_best[idx] = -math.inf
        self.anchor_time[idx] = math.nan
        self.logits = None
        self.parameters = None

    # -- inputs ----------------------------------------------------------------------------

    def _event_index(self, events) -> torch.Tensor:
        """Validated event slots as an int64 CPU tensor."""
        if events is None:
            return torch.arange(self.n_events)
        if isinstance(events, (int, np.integer)) and not isinstance(events, bool):
            events = [events]
        values = list(events.tolist() if hasattr(events, "tolist") else events)
        for i, e in enumerate(values):
            if isinstance(e, bool) or not isinstance(e, (int, np.integer)):
                raise ValueError(f"events[{i}]={e!r} is not an event slot (an integer in "
                                 f"0..{self.n_events - 1})")
            if not 0 <= e < self.n_events:
                raise ValueError(f"events[{i}]={e} is not a valid event slot: n_events="
                                 f"{self.n_events}, slots 0..{self.n_events - 1}")
        if len(set(values)) != len(values):
            seen = set()
            twice = next(e for e in values if e in seen or seen.add(e))
            raise ValueError(f"event slot {twice} is listed twice in events; give one "
                             "observation per event per update")
        return torch.tensor(values, dtype=torch.int64)

    @staticmethod
    def _vector(values, name: str, dtype: torch.dtype, n: int) -> torch.Tensor:
        """A 1-D CPU tensor of ``n`` values (a scalar counts as one)."""
        try:
            if isinstance(values, torch.Tensor):
                tensor = values.detach().to("cpu", dtype)
            else:  # straight to the dtype: Python floats must not pass through float32
                tensor = torch.as_tensor(values, dtype=dtype)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(f"{name} must be numbers, got {values!r}") from exc
        if tensor.ndim == 0:
            tensor = tensor.reshape(1)
        if tensor.ndim != 1:
            raise ValueError(f"{name} must be 1-D (one new observation per event), got shape "
                             f"{tuple(tensor.shape)}")
        if tensor.shape[0] != n:
            raise ValueError(f"{name} has {tensor.shape[0]} values but {n} event(s) are being "
                             "updated")
        return tensor

    def _validate(self, idx, times, fluxes, errors):
        n = idx.shape[0]
        times = self._vector(times, "times", torch.float64, n)
        fluxes = self._vector(fluxes, "fluxes", torch.float32, n)
        errors = self._vector(errors, "errors", torch.float32, n)
        # the batch checks, on [previous observation, new observation] pairs
        check_stream_update(times.numpy(), fluxes.numpy(), errors.numpy(),
                            self._last_time[idx].numpy(), idx.tolist())
        return times, fluxes, errors

    def _check_intervals(self, idx, dt, seen) -> None:
        """Warn like :meth:`Normalization.check_intervals` for intervals outside training."""
        norm = self.normalization
        outside = seen & norm.outside_training_intervals(dt)
        if outside.any():
            which = outside.nonzero()[:, 0].tolist()
            listed = ", ".join(f"{float(dt[i]):.4g} days (event {int(idx[i])})"
                               for i in which[:5])
            more = f" and {len(which) - 5} more" if len(which) > 5 else ""
            warnings.warn(
                f"observation interval {listed}{more} outside the training range "
                f"[{norm.dt_min:.4g}, {norm.dt_max:.4g}]; predictions there are extrapolations",
                IntervalRangeWarning, stacklevel=4)  # the caller of update

    # -- the step --------------------------------------------------------------------------

    def update(self, times, fluxes, errors, events=None, *, calibrated: bool = True,
               check_intervals: bool = True) -> torch.Tensor:
        """Take one new observation for each listed event; class probabilities after it.

        Parameters
        ----------
        times, fluxes, errors : array-like ``(E,)``
            Time [days], flux [baseline units] and 1-sigma flux error of the new observation of
            each listed event (a scalar is one value). Finite; errors positive; times after
            the event's previous observation (the checks of :mod:`microlens.core.validation`).
        events : sequence of int, optional
            The event slots these observations belong to, each at most once (default: all
            ``n_events`` slots, in order). Slots not listed are left untouched.
        calibrated : bool
            Divide the logits by ``model.temperature`` before the softmax (as
            :meth:`MicrolensTransformer.predict_proba`).
        check_intervals : bool
            Warn (:class:`~microlens.models.inputs.IntervalRangeWarning`) when an interval falls
            outside the training range ``[normalization.dt_min, dt_max]``.

        Returns
        -------
        Tensor ``(E, n_classes)`` float32
            Class probabilities after the new observation, one row per listed event, on
            the model's device. The uncalibrated logits are kept in :attr:`logits`.

        Raises
        ------
        ValueError
            For a bad event slot, inputs of the wrong length or shape, a non-finite value, a
            non-positive error or a time not after the event's previous one
            (:class:`~microlens.core.validation.InvalidLightCurveError`). Nothing is changed then.
        """
        with torch.no_grad():  # not a decorator: warnings must point at the caller
            return self._update(events, times, fluxes, errors, calibrated, check_intervals)

    def _peak_anchor(self, idx, times, fluxes, errors):
        """The peak anchor's new window, best mean and anchor after one observation of each
        listed slot (not committed), summed in :func:`~microlens.models.parameters.peak_anchor`'s
        order. In NumPy: a handful of operations on a few numbers each, where torch's
        per-operation overhead would be most of a streamed update's cost; the arithmetic is
        the same IEEE operations in the same order, so the anchors are the batch's bit for
        bit."""
        t = times.numpy().astype(np.float64, copy=False)
        weight = 1.0 / errors.numpy().astype(np.float64) ** 2
        term = np.stack([weight, weight * fluxes.numpy().astype(np.float64), weight * t], axis=-1)
        window = self.anchor_window.numpy()[idx.numpy()]
        sums = np.zeros_like(term)
        for j in range(window.shape[1]):  # oldest first
            sums = sums + window[:, j]
        sums = sums + term
        mean, mean_time = sums[:, 1] / sums[:, 0], sums[:, 2] / sums[:, 0]
        best = self.anchor_best.numpy()[idx.numpy()]
        better = mean >= best
        return (torch.from_numpy(np.concatenate([window[:, 1:], term[:, None]], axis=1)),
                torch.from_numpy(np.where(better, mean, best)),
                torch.from_numpy(np.where(better, mean_time,
                                          self.anchor_time.numpy()[idx.numpy()])))

    def _update(self, events, times, fluxes, errors, calibrated, check_intervals):
        idx = self._event_index(events)
        times, fluxes, errors = self._validate(idx, times, fluxes, errors)
        model, norm = self.model, self.normalization
        n_seen = self._n_seen[idx]
        seen = n_seen > 0
        dt = torch.where(seen, times - self._last_time[idx], 0.0).clamp_min(0)
        if check_intervals:
            self._check_intervals(idx, dt, seen)

        # Normalisation: the reference buffer and block state (copies, committed below).
        ref_flux, ref_err = self.reference_flux[idx], self.reference_err[idx]
        baseline_state = self.baseline_state[idx]
        base, scale = norm.stream_reference(ref_flux, ref_err, baseline_state, n_seen, fluxes,
                                            errors)
        features = norm.transform(fluxes, errors, base, scale, dt).to(self.device)
        first_time = torch.where(seen, self._first_time[idx], times)
        dev_idx = idx.to(self.device)
        everything = events is None
        was_training = model.training
        if was_training:
            model.eval()
        try:
            x = model.embed(features)  # (E, d); the dropout modules are skipped (eval semantics)
            x, commit = self.encoder.step(x, dev_idx, everything, n_seen, times - first_time)
            state = model.norm(x).float()
            pool_sum = (self.pool_sum if everything else self.pool_sum[dev_idx]) + state.double()
            previous_max = self.pool_max if everything else self.pool_max[dev_idx]
            pool_max = torch.maximum(previous_max, state)
            count = (n_seen + 1).to(self.device, torch.float32)[:, None]
            pooled = torch.cat([pool_sum.float() / count, pool_max], dim=-1)
            logits = model.classify(pooled)
            quantiles = pool_max_time = anchor = None
            head = model.parameter_head
            if head is not None:  # the classifier alone does not pay for these
                now = times.to(self.device)[:, None]
                # the time each feature's running maximum was reached (the latest of equals)
                pool_max_time = torch.where(
                    state >= previous_max, now,
                    self.pool_max_time if everything else self.pool_max_time[dev_idx])
                ages = torch.asinh((now - pool_max_time) / AGE_SCALE_DAYS).float()
                since_anchor = None
                if head.origin == "peak":
                    anchor = self._peak_anchor(idx, times, fluxes, errors)
                    since_anchor = (times - anchor[2]).to(self.device)
                quantiles = absolute_quantiles(head(pooled, state, ages, since_anchor),
                                               now[:, 0])
            probs = (model.calibrate(logits, n_seen + 1) if calibrated
                     else logits).softmax(dim=-1)
        finally:
            if was_training:
                model.train(True)

        # Commit the new state (nothing above changed it).
        commit()
        self._first_time[idx] = first_time
        self.reference_flux[idx] = ref_flux
        self.reference_err[idx] = ref_err
        self.baseline_state[idx] = baseline_state
        if everything:
            self.pool_sum, self.pool_max = pool_sum, pool_max
            if pool_max_time is not None:
                self.pool_max_time = pool_max_time
        else:
            self.pool_sum[dev_idx] = pool_sum
            self.pool_max[dev_idx] = pool_max
            if pool_max_time is not None:
                self.pool_max_time[dev_idx] = pool_max_time
        if anchor is not None:
            self.anchor_window[idx], self.anchor_best[idx], self.anchor_time[idx] = anchor
        self._n_seen[idx] = n_seen + 1
        self._last_time[idx] = times
        self.logits = logits
        self.parameters = quantiles
        return probs


# --------------------------------------------------------------------------------------------
# Encoder states, one class per neural kind
# --------------------------------------------------------------------------------------------


class _EncoderStream:
    """The fixed-size encoder state of one neural kind for ``n_events`` slots.

    :meth:`step` runs the encoder on one embedded token per listed event and returns its
    output with a ``commit`` callable that writes the new state; nothing changes before
    ``commit`` is called (an update that fails leaves the stream as it was).
    """

    def __init__(self, model, n_events: int, dtype: torch.dtype, device: torch.device):
        self.model = model

    def tensors(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def reset(self, dev_idx: torch.Tensor) -> None:
        for tensor in self.tensors().values():
            tensor[dev_idx] = 0

    def step(self, x, dev_idx, everything, n_seen, relative_times):
        raise NotImplementedError


class _TransformerStream(_EncoderStream):
    """Stem history and per-layer key/value ring buffers (see the module docstring)."""

    def __init__(self, model, n_events, dtype, device):
        super().__init__(model, n_events, dtype, device)
        attention = model.blocks[0].attention
        self.window = attention.window
        self.n_heads = attention.n_heads
        self.head_dim = attention.head_dim
        self.device = device
        cache = (n_events, self.n_heads, self.window - 1, self.head_dim)
        self.key_cache = [torch.zeros(cache, dtype=dtype, device=device) for _ in model.blocks]
        self.value_cache = [torch.zeros(cache, dtype=dtype, device=device) for _ in model.blocks]
        self.rotary_periods = (rotary_periods(model.config)
                               if model.config.time_encoding == "rotary" else None)
        self.stem_history = (None if model.stem is None else torch.zeros(
            n_events, sum(model.stem.history_lengths), model.config.d_model, dtype=dtype,
            device=device))

    def tensors(self):
        state = {} if self.stem_history is None else {"stem_history": self.stem_history}
        for layer, (k, v) in enumerate(zip(self.key_cache, self.value_cache, strict=True)):
            state[f"key_cache.{layer}"] = k
            state[f"value_cache.{layer}"] = v
        return state

    def step(self, x, dev_idx, everything, n_seen, relative_times):
        model = self.model
        rotary = None
        if self.rotary_periods is not None:  # float64 times since the first, as the batch model
            cos, sin = rotary_angles(relative_times, self.rotary_periods)
            rotary = (cos[:, None].to(self.device), sin[:, None].to(self.device))  # (E, 1, dh/2)
        width = self.window - 1
        valid = slot = None
        if width:
            valid = torch.arange(width)[None, :] < n_seen[:, None]
            valid = torch.cat([valid, torch.ones(len(n_seen), 1, dtype=torch.bool)], dim=1)
            valid = valid.to(self.device)[:, None, None, :]  # (E, 1, 1, window)
            slot = (n_seen % width).to(self.device)
        new_history = None
        if self.stem_history is not None:
            history = self.stem_history if everything else self.stem_history[dev_idx]
            x, new_history = model.stem.step(history, x)
        new_keys, new_values = [], []
        for layer, block in enumerate(model.blocks):
            x, k_new, v_new = self._block_step(block, x, layer, dev_idx, everything, valid,
                                               rotary)
            new_keys.append(k_new)
            new_values.append(v_new)

        def commit():
            if width:
                for k, v, k_new, v_new in zip(self.key_cache, self.value_cache, new_keys,
                                              new_values, strict=True):
                    k[dev_idx, :, slot] = k_new
                    v[dev_idx, :, slot] = v_new
            if new_history is not None:
                self.stem_history[dev_idx] = new_history

        return x, commit

    def _block_step(self, block, x, layer, dev_idx, everything, valid, rotary=None):
        """One pre-norm block on one token per event; returns ``(x, new key, new value)``; the
        key is rotated by the observation's time when ``rotary`` (cos, sin) is given."""
        attention = block.attention
        e, d = x.shape
        h, dh = self.n_heads, self.head_dim
        z = block.norm1(x)
        q = attention.query(z).view(e, h, dh)
        k_new, v_new = attention.key_value(z).view(e, 2, h, dh).unbind(dim=1)  # (E, h, dh)
        if rotary is not None:  # one rotation for both (fewer small kernels per observation)
            q, k_new = apply_rotary(torch.cat([q, k_new], dim=1), *rotary).split(h, dim=1)
        q = q.view(e, h, 1, dh)
        if valid is None:  # window 1: only itself
            y = v_new
        else:
            cached_k = self.key_cache[layer] if everything else self.key_cache[layer][dev_idx]
            cached_v = (self.value_cache[layer] if everything
                        else self.value_cache[layer][dev_idx])
            keys = torch.cat([cached_k, k_new[:, :, None]], dim=2)  # (E, h, window, dh)
            values = torch.cat([cached_v, v_new[:, :, None]], dim=2)
            # softmax(q k^T / sqrt(head_dim)) v over the valid slots and itself
            y = F.scaled_dot_product_attention(q.float(), keys.float(), values.float(),
                                               attn_mask=valid).to(q.dtype)[:, :, 0]
        x = x + attention.out(y.reshape(e, d))
        x = x + block.feed_forward(block.norm2(x))
        return x, k_new, v_new


class _ConvStream(_EncoderStream):
    """Kind ``cnn``: each block's last ``(kernel - 1) * dilation`` normalised inputs."""

    def __init__(self, model, n_events, dtype, device):
        super().__init__(model, n_events, dtype, device)
        self.histories = [torch.zeros(n_events, block.history, model.config.d_model,
                                      dtype=dtype, device=device) for block in model.blocks]

    def tensors(self):
        return {f"conv_history.{i}": h for i, h in enumerate(self.histories)}

    def step(self, x, dev_idx, everything, n_seen, relative_times):
        new = []
        for block, history in zip(self.model.blocks, self.histories, strict=True):
            x, updated = block.step(history if everything else history[dev_idx], x)
            new.append(updated)

        def commit():
            for history, updated in zip(self.histories, new, strict=True):
                history[dev_idx] = updated

        return x, commit


class _RecurrentStream(_EncoderStream):
    """Kind ``gru``: the hidden state of every layer, ``(n_events, n_layers, d_model)``."""

    def __init__(self, model, n_events, dtype, device):
        super().__init__(model, n_events, dtype, device)
        self.hidden = torch.zeros(n_events, model.config.n_layers, model.config.d_model,
                                  dtype=torch.float32, device=device)

    def tensors(self):
        return {"hidden": self.hidden}

    def step(self, x, dev_idx, everything, n_seen, relative_times):
        x, hidden = self.model.step(self.hidden if everything else self.hidden[dev_idx], x)

        def commit():
            self.hidden[dev_idx] = hidden

        return x, commit


class _SetStream(_EncoderStream):
    """Kinds ``deepsets`` and ``set_transformer``: the last ``window - 1`` points of each event.

    A ring buffer of their flux and error features ``(n_events, window - 1, 2)`` and their times
    relative to the event's first observation ``(n_events, window - 1)`` (float64, as the batch
    model subtracts them). Observation ``n`` (0-based) writes slot ``n % (window - 1)``; slot
    ``j`` is valid when ``j < n_seen``. The token ``x`` these kinds' ``embed`` gives is the new
    point's raw features (:class:`microlens.models.set_models.PointFeatures`), so the new state is
    :meth:`~microlens.models.set_models.SetClassifier.encode_set` of the buffered points and the new
    one, with ages measured from the new one's time: the set of the batch model, in another
    order, which a set does not have.
    """

    def __init__(self, model, n_events, dtype, device):
        super().__init__(model, n_events, dtype, device)
        self.width = model.config.window - 1
        self.points = torch.zeros(n_events, self.width, POINT_FEATURES, dtype=torch.float32,
                                  device=device)
        self.times = torch.zeros(n_events, self.width, dtype=torch.float64, device=device)

    def tensors(self):
        return {"set_points": self.points, "set_times": self.times}

    def step(self, x, dev_idx, everything, n_seen, relative_times):
        now = relative_times.to(x.device, torch.float64)
        points = (self.points if everything else self.points[dev_idx]).to(x.dtype)
        times = self.times if everything else self.times[dev_idx]
        valid = (torch.arange(self.width)[None, :] < n_seen[:, None]).to(x.device)
        itself = torch.ones(len(n_seen), 1, dtype=torch.bool, device=x.device)
        members = torch.cat([points, x[:, None]], dim=1)  # (E, window, 2)
        state = self.model.encode_set(members[..., 0], members[..., 1],
                                      torch.cat([times, now[:, None]], dim=1),
                                      torch.cat([valid, itself], dim=1), now, check=False)

        def commit():
            if self.width:
                slot = (n_seen % self.width).to(x.device)
                self.points[dev_idx, slot] = x.float()
                self.times[dev_idx, slot] = now

        return state, commit


ENCODER_STREAMS = {"transformer": _TransformerStream, "cnn": _ConvStream,
                   "gru": _RecurrentStream, "rnn_vae": _RecurrentStream,
                   "deepsets": _SetStream, "set_transformer": _SetStream,
                   "masked": _TransformerStream}
"""The streaming state of each neural kind (:data:`microlens.models.registry.KINDS`)."""


# --------------------------------------------------------------------------------------------
# Benchmark
# --------------------------------------------------------------------------------------------


def stream_latency(model: CausalClassifier, n_observations: int = 1000, n_events: int = 1,
                   warmup: int = 20, seed: int = 0,
                   threads: int | None = 1) -> dict:
    """Seconds per :meth:`StreamingClassifier.update` on synthetic observations.

    A fresh stream of ``n_events`` events takes ``warmup`` untimed observations, then
    ``n_observations`` timed ones (each update gives every event one observation). Intervals are
    drawn inside the normalisation's training range, so no warning is raised.

    Parameters
    ----------
    model : CausalClassifier
    n_observations : int
        Timed updates.
    n_events : int
        Events updated together by each call.
    warmup : int
        Untimed updates first (allocator and kernel warm-up).
    seed : int
        Seed of the synthetic light curves.
    threads : int or None
        Intra-op CPU threads while measuring (``torch.set_num_threads``, restored after); None
        keeps the current setting. The default, 1, suits single-token steps: on a loaded 2-core
        machine a second thread made each update wait ~100x longer (70 ms instead of 0.7 ms).

    Returns
    -------
    dict
        ``mean_s``, ``p50_s``, ``p95_s``, ``max_s`` per update, ``first_window_mean_s`` and
        ``last_window_mean_s`` (the mean over the first and last ``window`` timed updates: equal
        but for noise, since the cost does not grow with the history), ``observations_per_second``
        (events x updates per second) and the settings.
    """
    if not isinstance(n_observations, int) or n_observations < 1:
        raise ValueError(f"n_observations must be a positive integer, got {n_observations!r}")
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative integer, got {warmup!r}")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    stream = StreamingClassifier(model, n_events=n_events)
    norm = model.normalization
    total = warmup + n_observations
    rng = np.random.default_rng(seed)
    low = norm.dt_min if norm.dt_min > 0 else 1e-2
    high = norm.dt_max if math.isfinite(norm.dt_max) and norm.dt_max > low else 10 * low
    dts = np.exp(rng.uniform(math.log(low), math.log(high), size=(total, n_events)))
    dts = np.clip(dts, low, high)
    times = np.cumsum(dts, axis=0)
    phase = (times - times[-1] / 2) / np.maximum(times[-1] / 20, 1e-6)  # a bump mid-stream
    flux = 1 + 2 / (1 + phase**2) + 0.01 * rng.standard_normal((total, n_events))
    err = np.full((total, n_events), 0.01)
    cuda = stream.device.type == "cuda"
    seconds = np.empty(n_observations)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        used = torch.get_num_threads()
        for step in range(total):
            start = time.perf_counter()
            stream.update(times[step], flux[step], err[step], check_intervals=False)
            if cuda:
                torch.cuda.synchronize(stream.device)
            if step >= warmup:
                seconds[step - warmup] = time.perf_counter() - start
    finally:
        torch.set_num_threads(before)
    w = min(model.config.window, n_observations)
    return {
        "n_observations": n_observations, "n_events": n_events, "warmup": warmup,
        "kind": model.config.kind, "window": model.config.window,
        "n_layers": model.config.n_layers, "d_model": model.config.d_model,
        "device": str(stream.device), "torch_threads": used,
        "mean_s": float(seconds.mean()), "p50_s": float(np.percentile(seconds, 50)),
        "p95_s": float(np.percentile(seconds, 95)), "max_s": float(seconds.max()),
        "first_window_mean_s": float(seconds[:w].mean()),
        "last_window_mean_s": float(seconds[-w:].mean()),
        "observations_per_second": float(n_events / seconds.mean()),
    }


__all__ = ["StreamingClassifier", "stream_latency"]
