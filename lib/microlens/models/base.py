"""What every neural kind shares (:class:`CausalClassifier`): inputs to logits at every
observation, causal pooling, calibrated probabilities, weights on disk."""

from __future__ import annotations

import torch
from torch import nn

from microlens.core.validation import as_model_inputs
from microlens.models.config import CPU_PASS_OBSERVATIONS, N_FEATURES, ModelConfig
from microlens.models.inputs import Normalization
from microlens.models.parameters import (
    QUANTILES,
    TARGETS,
    ParameterHead,
    absolute_quantiles,
    peak_ages,
    peak_anchor,
)


class CausalClassifier(nn.Module):
    """What every neural kind shares: inputs, embedding, causal pooling, head, calibration.

    A kind (:mod:`microlens.models.registry`) subclasses this and implements :meth:`encode`, which
    turns the embedded observations ``(B, N, d)`` into encoder states ``(B, N, d)`` such that
    state ``k`` depends on observations ``1..k`` only; the rest (features, pooling, head,
    temperature, batched inference) is here, so every kind answers after every observation and
    streams (:mod:`microlens.models.stream`) the same way.

    Parameters
    ----------
    config : ModelConfig
    normalization : Normalization
        Input standardisation learned from the training set (saved as JSON with the model).
    """

    kind = ""
    """The :attr:`ModelConfig.kind` a subclass implements."""
    has_attention = False
    """Whether ``forward(..., return_attention=True)`` gives attention maps."""
    cpu_pass_observations = CPU_PASS_OBSERVATIONS
    """Observations per forward pass on CPU (inference chunks and training micro-batches)."""

    def __init__(self, config: ModelConfig | None = None,
                 normalization: Normalization | None = None):
        super().__init__()
        self.config = config or ModelConfig(kind=self.kind or "transformer")
        if self.kind and self.config.kind != self.kind:
            raise ValueError(f"{type(self).__name__} is kind {self.kind!r}, but the config says "
                             f"kind={self.config.kind!r}; build models with "
                             "microlens.models.registry.build_model(config)")
        self.normalization = normalization or Normalization()
        c = self.config
        self.embed = nn.Sequential(nn.Linear(N_FEATURES, c.d_model), nn.GELU(),
                                   nn.Linear(c.d_model, c.d_model))
        self.embed_dropout = nn.Dropout(c.dropout)
        self.build_encoder(c)
        # identities without pool_norm (no parameters, so the weights' keys stay the same)
        self.norm = nn.LayerNorm(c.d_model) if c.pool_norm else nn.Identity()
        self.head = nn.Sequential(
            nn.LayerNorm(2 * c.d_model) if c.pool_norm else nn.Identity(),
            nn.Linear(2 * c.d_model, c.d_model), nn.GELU(), nn.Linear(c.d_model, c.n_classes))
        # quantiles of the lens parameters after every observation (microlens.models.parameters);
        # None keeps the weights' keys of a classifier without them
        self.parameter_head = (ParameterHead(c.d_model, c.parameter_origin)
                               if c.parameter_heads else None)
        self.register_buffer("temperature", torch.ones(()))
        # A temperature per number of observations seen (microlens.core.calibration), empty unless
        # fitted: then the scalar applies, as in checkpoints from before the curve.
        self.register_buffer("temperature_counts", torch.zeros(0, dtype=torch.float64))
        self.register_buffer("temperature_curve", torch.zeros(0, dtype=torch.float64))
        self.register_load_state_dict_pre_hook(_temperature_curve_hook)
        # PyTorch's default initialisation (uniform, ~1/sqrt(fan_in)) throughout: the GPT-style
        # N(0, 0.02) used before kept the residual stream near LayerNorm's epsilon and the
        # model at chance on PSPL versus binary (docs/model.md, "Encoder ablation")

    def build_encoder(self, config: ModelConfig) -> None:
        """Create the kind's encoder modules (called by ``__init__`` after the embedding)."""
        raise NotImplementedError

    def encode(self, features: torch.Tensor, return_attention: bool = False, *,
               times: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        """Encoder states ``(B, N, d)`` from features ``(B, N, 3)``: ``(states, attention)``."""
        raise NotImplementedError

    def auxiliary_loss(self, features: torch.Tensor, states: torch.Tensor, *,
                       times: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
        """The kind's unsupervised loss per event ``(B,)``, already weighted by its documented
        weights (e.g. the ``rnn_vae``'s reconstruction and KL terms), or None (the default).

        :func:`microlens.training.train.train_step` adds it, not class-weighted, to the
        class-weighted
        classification loss of each event; model selection (the validation loss) reads the
        classification loss only.
        """
        return None

    @classmethod
    def pretrained_normalization(cls, config: ModelConfig) -> Normalization | None:
        """The input normalisation of the pretraining run ``config`` starts from (the
        ``masked`` kind), which training must keep; None (the default): fit one."""
        return None

    def load_pretrained(self) -> None:
        """Initialise weights from a pretraining run before training starts (the ``masked``
        kind); the default does nothing. Not called when a run resumes (its checkpoint has
        the weights)."""

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @staticmethod
    def pool(states: torch.Tensor) -> torch.Tensor:
        """Causal pooling ``(B, N, 2d)``: running mean and running max of states ``1..k``."""
        states = states.float()
        counts = torch.arange(1, states.shape[1] + 1, device=states.device, dtype=states.dtype)
        mean = states.cumsum(dim=1) / counts[None, :, None]
        maximum = states.cummax(dim=1).values
        return torch.cat([mean, maximum], dim=-1)

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        """Logits (uncalibrated) from pooled embeddings."""
        return self.head(pooled).float()

    def answers(self, pooled: torch.Tensor, states: torch.Tensor, times: torch.Tensor,
                flux: torch.Tensor, flux_err: torch.Tensor,
                mask: torch.Tensor | None) -> dict:
        """The heads' outputs from the pooled embedding, the encoder states and the inputs:
        ``"logits"``, and for a model with parameter heads ``"parameters"`` and
        ``"parameter_origin"`` (:meth:`forward`)."""
        out = {"logits": self.classify(pooled)}
        head = self.parameter_head
        if head is not None:
            since_anchor = None
            origin = times.double()
            if head.origin == "peak":
                origin = peak_anchor(times, flux, flux_err, mask)
                since_anchor = times.double() - origin
            out["parameters"] = head(pooled, states, peak_ages(states, times), since_anchor)
            out["parameter_origin"] = origin
        return out

    # -- forward -------------------------------------------------------------------------

    def forward(self, times, flux, flux_err, mask=None, *, return_attention: bool = False,
                return_embedding: bool = False, return_auxiliary: bool = False) -> dict:
        """Logits after every observation.

        Parameters
        ----------
        times, flux, flux_err : Tensor ``(B, N)``
            Observation times [days], flux [baseline units], 1-sigma flux errors; padded at the
            end (valid observations first).
        mask : Tensor ``(B, N)`` of bool, optional
            True where an observation exists (default: all).
        return_attention : bool
            Add ``"attention"``: per-layer weights ``(B, heads, N, window)`` (see
            :meth:`SlidingWindowAttention.forward`). Uses the explicit (slower) attention path.
        return_embedding : bool
            Add ``"embedding"``: the pooled embedding ``(B, N, 2 * d_model)`` behind each
            prediction.
        return_auxiliary : bool
            Add ``"auxiliary_loss"`` in eval mode too (it is always there in training mode for
            a kind with an unsupervised loss, :meth:`auxiliary_loss`).

        Returns
        -------
        dict
            ``"logits"`` ``(B, N, n_classes)`` float32, uncalibrated (divide by
            ``self.temperature``, or use :meth:`predict_proba`); entries at padded positions are
            meaningless. A model with parameter heads adds ``"parameters"``: quantiles
            ``(B, N, P, Q)`` of :data:`~microlens.models.parameters.TARGETS` at
            :data:`~microlens.models.parameters.QUANTILES`, ``t_0`` relative to the latest
            observation (:meth:`predict_parameters` gives it in the curve's time frame).
        """
        # Checked on CPU only: on a GPU the bool() would stall every training step on a sync,
        # and the batches there come from store.batch, which puts valid observations first.
        if (mask is not None and mask.device.type == "cpu" and mask.shape[1] > 1
                and bool((mask[:, 1:] > mask[:, :-1]).any())):
            raise ValueError("mask must put valid observations first (padding at the end)")
        if return_attention and not self.has_attention:
            raise ValueError(f"a {self.config.kind!r} model has no attention maps; only kind "
                             "'transformer' does")
        features = self.normalization.features(times, flux, flux_err, mask)
        states, attention = self.encode(features, return_attention, times=times, mask=mask)
        pooled = self.pool(states)
        out = self.answers(pooled, states, times, flux, flux_err, mask)
        if self.training or return_auxiliary:
            auxiliary = self.auxiliary_loss(features, states, times=times, mask=mask)
            if auxiliary is not None:
                out["auxiliary_loss"] = auxiliary
        if return_attention:
            out["attention"] = attention
        if return_embedding:
            out["embedding"] = pooled
        return out

    @torch.no_grad()
    def predict_proba(self, times, flux, flux_err, mask=None, *, calibrated: bool = True,
                      check_intervals: bool = True, check_inputs: bool = True) -> torch.Tensor:
        """Class probabilities ``(B, N, n_classes)`` after every observation (eval mode).

        Inputs are NumPy arrays or tensors ``(B, N)`` as for :meth:`predict_logits` (checked
        there unless ``check_inputs`` is False). With ``calibrated`` the logits are divided by
        the fitted temperature. Warns (:class:`IntervalRangeWarning`) when intervals fall
        outside the training range.
        """
        times, flux, flux_err, mask = as_model_inputs(times, flux, flux_err, mask,
                                                      device=self._input_device(times),
                                                      check=check_inputs)
        if check_intervals:
            self.normalization.check_intervals(times.cpu(), mask.cpu())
        logits = self.predict_logits(times, flux, flux_err, mask, check_inputs=False)
        return (self.calibrate(logits) if calibrated else logits).softmax(dim=-1)

    @torch.no_grad()
    def predict_logits(self, times, flux, flux_err, mask=None, *,
                       chunk_observations: int | None = None,
                       check_inputs: bool = True) -> torch.Tensor:
        """Uncalibrated logits ``(B, N, n_classes)`` in eval mode, in chunks of events.

        ``times``, ``flux``, ``flux_err`` ``(B, N)`` and the bool ``mask`` (default: all True)
        are tensors or NumPy arrays (made tensors on the model's device). With
        ``check_inputs`` they are checked first by
        :func:`microlens.core.validation.check_light_curves`: a non-finite value, a non-positive
        error, unsorted or repeated times, a wrong shape or mask raise
        :class:`~microlens.core.validation.InvalidLightCurveError` naming the event and observation.

        Each forward pass takes about ``chunk_observations`` observations (at least one event):
        the numbers are the same as one pass. The default is :attr:`cpu_pass_observations` on
        CPU, where small passes reuse memory instead of page-faulting fresh large blocks (~1.5x
        faster at 64 x 1000, far less memory), and the whole batch in one pass on a GPU.
        """
        return self._in_passes(times, flux, flux_err, mask, chunk_observations, check_inputs,
                               lambda out, times: out["logits"], (self.config.n_classes,))

    @torch.no_grad()
    def predict_parameters(self, times, flux, flux_err, mask=None, *,
                           chunk_observations: int | None = None,
                           check_inputs: bool = True) -> torch.Tensor:
        """Quantiles of the lens parameters after every observation (eval mode, in chunks of
        events as :meth:`predict_logits`).

        Returns
        -------
        Tensor ``(B, N, P, Q)`` float32
            :data:`~microlens.models.parameters.TARGETS` at
            :data:`~microlens.models.parameters.QUANTILES`, ``t_0`` in the curve's time frame
            (days, as ``times``); :func:`~microlens.models.parameters.as_table` names them.

        Raises
        ------
        ValueError
            For a model built without parameter heads (``ModelConfig.parameter_heads``).
        """
        if self.parameter_head is None:
            raise ValueError(f"this {self.config.kind!r} model has no parameter heads; train "
                             "one with ModelConfig(parameter_heads=True)")
        return self._in_passes(times, flux, flux_err, mask, chunk_observations, check_inputs,
                               lambda out, times: absolute_quantiles(out["parameters"], times),
                               (len(TARGETS), len(QUANTILES)))

    def _in_passes(self, times, flux, flux_err, mask, chunk_observations, check_inputs, take,
                   shape: tuple) -> torch.Tensor:
        """``take(forward output, times)`` over the events in passes of about
        ``chunk_observations`` observations (:meth:`predict_logits`), concatenated; an empty
        batch gives ``(0, N, *shape)``."""
        times, flux, flux_err, mask = as_model_inputs(times, flux, flux_err, mask,
                                                      device=self._input_device(times),
                                                      check=check_inputs)
        if chunk_observations is None:
            chunk_observations = (self.cpu_pass_observations if times.device.type == "cpu"
                                  else times.numel())
        per_pass = max(1, chunk_observations // max(1, times.shape[1]))
        was_training = self.training
        self.eval()
        try:
            parts = [take(self(times[i : i + per_pass], flux[i : i + per_pass],
                               flux_err[i : i + per_pass], mask[i : i + per_pass]),
                          times[i : i + per_pass]) for i in range(0, times.shape[0], per_pass)]
        finally:
            self.train(was_training)
        return torch.cat(parts) if parts else torch.zeros(0, times.shape[1], *shape)

    def _input_device(self, times) -> torch.device | None:
        """Where NumPy inputs go: the model's device (tensors stay where they are)."""
        return None if isinstance(times, torch.Tensor) else next(self.parameters()).device

    def calibrate(self, logits: torch.Tensor, counts=None) -> torch.Tensor:
        """Logits divided by the fitted temperature.

        Parameters
        ----------
        logits : Tensor ``(..., N, C)`` or ``(E, C)``
            Answers after every observation (position ``k`` has seen ``k + 1``), or one answer
            per event with ``counts``.
        counts : Tensor ``(E,)``, optional
            Observations seen behind each row of 2-D ``logits`` (the stream's answers).

        With a fitted curve (``temperature_counts`` non-empty) the temperature depends on the
        observations seen (:func:`microlens.core.calibration.temperature_at_torch`), else the scalar
        ``temperature`` applies to every answer.
        """
        if self.temperature_counts.numel() == 0:
            return logits / self.temperature
        return logits / self.temperature_at(
            torch.arange(1, logits.shape[-2] + 1) if counts is None else counts
        ).to(logits.device, logits.dtype).unsqueeze(-1)

    def temperature_at(self, counts) -> torch.Tensor:
        """Temperature (float64, shape of ``counts``) after ``counts`` observations seen."""
        counts = torch.as_tensor(counts, dtype=torch.float64)
        if self.temperature_counts.numel() == 0:
            return self.temperature.double().cpu().expand(counts.shape)
        from microlens.core.calibration import temperature_at_torch

        return temperature_at_torch(counts.cpu(), self.temperature_counts.cpu(),
                                    self.temperature_curve.cpu().log())

    def set_temperature_curve(self, counts, temperatures) -> None:
        """Store a temperature curve (knots ``counts``, ``temperatures``; both 1-D, same
        length; empty: back to the scalar ``temperature``)."""
        counts = torch.as_tensor(counts, dtype=torch.float64).reshape(-1)
        temperatures = torch.as_tensor(temperatures, dtype=torch.float64).reshape(-1)
        if counts.shape != temperatures.shape:
            raise ValueError(f"temperature curve needs as many counts as temperatures, got "
                             f"{counts.numel()} and {temperatures.numel()}")
        if counts.numel() and (bool((counts < 1).any()) or bool((counts.diff() <= 0).any())):
            raise ValueError(f"temperature curve counts must be increasing and >= 1, got "
                             f"{counts.tolist()}")
        if not bool((torch.isfinite(temperatures) & (temperatures > 0)).all()):
            raise ValueError(f"temperatures must be positive and finite, got "
                             f"{temperatures.tolist()}")
        device = self.temperature.device
        self.temperature_counts = counts.to(device)
        self.temperature_curve = temperatures.to(device)



def _temperature_curve_hook(module, state_dict, prefix, *args) -> None:
    """Before loading weights: size the temperature-curve buffers as the checkpoint's, and give
    a checkpoint from before the curve (no such keys) an empty one (its scalar applies)."""
    for name in ("temperature_counts", "temperature_curve"):
        key = prefix + name
        if key not in state_dict:
            state_dict[key] = torch.zeros(0, dtype=torch.float64)
        setattr(module, name, torch.empty_like(state_dict[key], dtype=torch.float64,
                                               device=module.temperature.device))


def final_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-observation values ``(B, N, X)`` (logits, embeddings) after each event's last
    observation: ``(B, X)``."""
    last = mask.long().sum(dim=1).clamp_min(1) - 1
    return logits[torch.arange(logits.shape[0], device=logits.device), last]


# --------------------------------------------------------------------------------------------
# Persistence
# --------------------------------------------------------------------------------------------

WEIGHT_FILES = {"best": "best.pt", "last": "last.pt"}
