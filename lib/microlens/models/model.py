"""The causal transformer classifier: input features, sliding-window encoder, causal pooling.

One observation is one token, described by three numbers (see :class:`Normalization`):

1. its flux relative to the event's own baseline, in units of the baseline scatter,
   ``asinh((F - b) / s)``: linear near the baseline, logarithmic in the peak, never clipped;
2. its photometric error relative to the baseline flux, ``log(sigma_F / b)``, standardised;
3. the time since the previous observation, ``log(1 + dt / dt_scale)`` with ``dt_scale`` the
   training set's median interval, standardised (0 for the first observation, logarithmic for
   long gaps, so no value is far out of range).

There is no absolute-position or observation-index embedding: time enters only through the
intervals. The baseline ``b`` (median flux) and scatter ``s`` (median error) are taken from the
first ``reference_points`` observations, and while fewer have arrived from those seen so far, so
every feature of observation ``k`` depends on observations ``1..k`` only.

Encoder: first a causal convolution stem, then ``n_layers`` pre-norm attention blocks.

* The stem (``conv_stem_kernel=K``, ``conv_stem_layers=L``; 5 and 6 by default) is ``L``
  residual layers ``x + GELU(Conv1d(x))`` with dilations 1, 2, 4, ..., left padding only: the
  state of observation ``k`` then carries the order and local shape of observations
  ``k - 252 .. k`` (a rise, a fall, a caustic crossing). Attention alone has no order inside its
  window: at an even cadence it sees a bag of tokens (the interval feature is then constant),
  and without the stem the model stays at chance on PSPL versus binary (docs/model.md). The
  stream keeps each layer's last ``(K - 1) * dilation`` inputs.
* The attention is causal and sliding-window: observation ``k`` attends to observations
  ``k - window + 1 .. k``. The sequence is cut into blocks of ``window`` observations; each block
  of queries attends to its own block and the one before it through one fused
  ``scaled_dot_product_attention`` call with a band mask, so time and memory grow as
  ``O(N * window)``; no ``N x N`` matrix is ever formed.
* ``time_encoding="rotary"`` (opt-in) also rotates queries and keys by the observation time in
  days since the event's first observation (phases reduced in float64, then cast), at
  ``head_dim / 2`` periods log-spaced from ``rotary_min_period`` to ``rotary_max_period``: a
  score then depends on ``t_k - t_j`` only, so adding a constant to all times changes nothing
  and the streaming cache (keys stored already rotated) stays exact. No parameters are added.

Neither uses absolute time or an observation index (a shortcut).

Pooling is causal too: the running mean and running max of the encoder states up to ``k``
(layer-normalised first only with ``pool_norm=True``, the behaviour before the stem), then a
small head gives class logits at every observation. The prediction after observation ``k``
therefore uses observations ``1..k`` only, and streaming (:mod:`microlens.models.stream`) is the
same
computation. A fitted temperature (a buffer, saved with the weights) calibrates probabilities.

Batches are padded at the end (valid observations first, as :mod:`microlens.data.store` provides);
padded positions come after every valid one, so causal attention and pooling never see them.

Quick use::

    model = MicrolensTransformer(ModelConfig(), Normalization.fit(batch["times"], ...))
    out = model(batch["times"], batch["flux"], batch["flux_err"], batch["mask"])
    out["logits"]          # (B, N, 3), one prediction per observation
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from microlens.core.classes import CLASS_NAMES
from microlens.core.paths import write_json_atomic
from microlens.core.settings import from_known_fields
from microlens.core.validation import as_model_inputs

N_FEATURES = 3
"""Input numbers per observation: normalised flux, error, time since the previous observation."""

TIME_ENCODINGS = ("none", "rotary")
"""Valid :attr:`ModelConfig.time_encoding` values."""

MODEL_KINDS = ("transformer", "cnn", "gru", "features", "rnn_vae", "deepsets", "set_transformer",
               "masked")
"""Valid :attr:`ModelConfig.kind` values (the registry with descriptions:
:data:`microlens.models.registry.KINDS`)."""

CPU_PASS_OBSERVATIONS = 16_384
"""Observations per forward pass on CPU (16 events of 1000), for inference and as training's
micro-batch: passes this small keep every activation below the allocator's large-block
threshold, so memory is reused instead of page-faulted afresh (at 64 x 1000 a training step is
~1.6x faster than one pass and needs ~2.4x less memory, and sizing by observations keeps that
as sequences grow); results equal those of one pass."""


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a classifier: its ``kind`` (:data:`MODEL_KINDS`) and sizes.

    The transformer's defaults give 1.34 M parameters (0.49 M of them in the convolution stem,
    0.84 M without it). What each field means for each kind:

    ==================  ==========================================================================
    kind                fields used
    ==================  ==========================================================================
    ``transformer``     all but ``kernel_size``, ``latent_dim``, the loss weights, ``pretrained``
    ``cnn``             ``d_model`` channels, ``n_layers`` residual causal convolution blocks of
                        kernel ``kernel_size`` and dilations 1, 2, 4, ... (each followed by a
                        feed-forward network of width ``d_ff``), ``dropout``, ``pool_norm``
    ``gru``             ``d_model`` hidden units, ``n_layers`` stacked GRU layers, ``dropout``
                        (between layers and on the embedding), ``pool_norm``
    ``features``        none: summary and PSPL-fit statistics of the curve so far, classified
                        by gradient boosting (:mod:`microlens.models.features`)
    ``rnn_vae``         ``d_model`` GRU units, ``n_layers`` GRU layers (encoder and decoder),
                        ``latent_dim``, ``reconstruction_weight``, ``kl_weight``, ``dropout``
    ``deepsets``        ``d_model``, ``d_ff``, ``window`` (the newest points in each set),
                        ``dropout``, ``pool_norm``
    ``set_transformer`` ``d_model``, ``n_heads``, ``n_layers`` set-attention blocks, ``d_ff``,
                        ``window``, ``dropout``, ``pool_norm``
    ``masked``          the transformer's fields, and ``pretrained`` (the pretraining run of
                        :mod:`microlens.training.pretrain` whose encoder it starts from)
    ==================  ==========================================================================

    Every neural kind shares the input features (:class:`Normalization`), the embedding, the
    causal pooling (running mean and maximum) and the head (:class:`CausalClassifier`).
    """

    kind: str = "transformer"  # transformer, cnn, gru, features, rnn_vae, deepsets,
    #   set_transformer or masked (MODEL_KINDS: microlens.models.registry.KINDS)
    d_model: int = 128  # width of every hidden state
    n_heads: int = 8  # attention heads per layer (d_model must divide by it)
    n_layers: int = 4  # transformer blocks (cnn: convolution blocks; gru: GRU layers)
    d_ff: int = 512  # hidden width of each block's feed-forward network
    window: int = 64  # observation k attends to k - window + 1 .. k (itself included)
    dropout: float = 0.1  # on the embedding and on each residual branch (not on attention)
    n_classes: int = len(CLASS_NAMES)  # 0 flat, 1 PSPL, 2 binary
    # "rotary": queries and keys are rotated by the observation time (days since the event's
    # first observation) at head_dim / 2 log-spaced periods, so attention scores depend on
    # t_k - t_j; "none" (the default): order reaches the attention through the stem only
    time_encoding: str = "none"  # rotary (scores see time differences) or none (order via the stem)
    rotary_min_period: float = 0.1  # shortest rotary period [days]
    rotary_max_period: float = 1000.0  # longest rotary period [days]
    # > 0: a causal convolution stem of this kernel over the embedded observations, added
    # (after a GELU) to each token before the attention blocks; 0: none
    conv_stem_kernel: int = 5  # kernel of the causal convolution stem (0: no stem)
    # dilated layers of the convolution stem (dilations 1, 2, 4, ...): it reads the last
    # 1 + (kernel - 1) * (2**layers - 1) observations (253 at the defaults)
    conv_stem_layers: int = 6  # dilated stem layers (6 read the last 253 observations)
    # True: encoder states are layer-normalised before the causal pooling and the pooled vector
    # again in the head; False (the default): both are left as they are, so the running maximum
    # keeps how strongly a feature fired (a caustic crossing), not only its direction
    pool_norm: bool = False  # layer-normalise the encoder states before pooling
    # cnn only: the kernel of every causal convolution (the receptive field is
    # 1 + (kernel_size - 1) * (2**n_layers - 1) observations)
    kernel_size: int = 5  # cnn only: kernel of every dilated causal convolution
    # rnn_vae only: size of the Gaussian latent the classifier and the decoder read
    latent_dim: int = 16  # rnn_vae only: size of the Gaussian latent
    # rnn_vae only: weight of the flux reconstruction loss (per event: mean squared error of
    # the normalised flux over its observations) beside the classification loss
    reconstruction_weight: float = 1.0  # rnn_vae only: weight of the flux reconstruction loss
    # rnn_vae only: weight of the KL divergence of the latent from N(0, 1) (per event)
    kl_weight: float = 0.01  # rnn_vae only: weight of the latent's KL divergence from N(0, 1)
    # masked only: the pretraining run (microlens.training.pretrain) whose encoder initialises the
    # classifier; "" starts from random weights (then it is the transformer)
    pretrained: str = ""

    def __post_init__(self):
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"unknown ModelConfig.kind {self.kind!r}; valid: "
                             f"{', '.join(MODEL_KINDS)}")
        kernel = self.kernel_size
        if not isinstance(kernel, int) or isinstance(kernel, bool) or kernel < 2:
            raise ValueError(f"ModelConfig.kernel_size must be an integer >= 2, got {kernel!r}")
        if self.kind == "cnn" and self.n_layers > 16:
            raise ValueError(f"ModelConfig.n_layers={self.n_layers} is too deep for kind 'cnn' "
                             "(dilations 2**layer): at most 16")
        for name in ("d_model", "n_heads", "n_layers", "d_ff", "window", "n_classes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"ModelConfig.d_model={self.d_model} is not divisible by "
                             f"n_heads={self.n_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ModelConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if self.time_encoding not in TIME_ENCODINGS:
            raise ValueError(f"unknown ModelConfig.time_encoding {self.time_encoding!r}; "
                             f"valid: {', '.join(TIME_ENCODINGS)}")
        if self.time_encoding == "rotary" and (self.d_model // self.n_heads) % 2:
            raise ValueError(f"time_encoding='rotary' needs an even head dimension, got "
                             f"d_model / n_heads = {self.d_model // self.n_heads}")
        for name in ("rotary_min_period", "rotary_max_period"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    0 < value < math.inf):
                raise ValueError(f"ModelConfig.{name} must be a positive finite number of "
                                 f"days, got {value!r}")
        if self.rotary_min_period > self.rotary_max_period:
            raise ValueError(f"ModelConfig.rotary_min_period={self.rotary_min_period} exceeds "
                             f"rotary_max_period={self.rotary_max_period}")
        kernel = self.conv_stem_kernel
        if not isinstance(kernel, int) or isinstance(kernel, bool) or kernel < 0:
            raise ValueError(f"ModelConfig.conv_stem_kernel must be a non-negative integer "
                             f"(0: no stem), got {kernel!r}")
        layers = self.conv_stem_layers
        if not isinstance(layers, int) or isinstance(layers, bool) or not 1 <= layers <= 12:
            raise ValueError(f"ModelConfig.conv_stem_layers must be an integer from 1 to 12, "
                             f"got {layers!r}")
        latent = self.latent_dim
        if not isinstance(latent, int) or isinstance(latent, bool) or latent < 1:
            raise ValueError(f"ModelConfig.latent_dim must be a positive integer, got {latent!r}")
        for name in ("reconstruction_weight", "kl_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    0 <= value < math.inf):
                raise ValueError(f"ModelConfig.{name} must be a finite number >= 0, got "
                                 f"{value!r}")
        if not isinstance(self.pretrained, str):
            raise ValueError(f"ModelConfig.pretrained must be a path (str), got "
                             f"{self.pretrained!r}")
        if not isinstance(self.pool_norm, bool):
            raise ValueError(f"ModelConfig.pool_norm must be True or False, got "
                             f"{self.pool_norm!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        return from_known_fields(cls, data, "ModelConfig settings")

    @classmethod
    def from_saved(cls, data: dict) -> ModelConfig:
        """A config read from a run directory: a field it lacks was written before the field
        existed, so it takes the value that reproduces the model of that time
        (:data:`SAVED_BEFORE_FIELD`), not today's default."""
        return cls.from_dict({**SAVED_BEFORE_FIELD, **data})


SAVED_BEFORE_FIELD = {"time_encoding": "none", "conv_stem_kernel": 0, "conv_stem_layers": 1,
                      "pool_norm": True, "kind": "transformer", "kernel_size": 5,
                      "latent_dim": 16, "reconstruction_weight": 1.0, "kl_weight": 0.01,
                      "pretrained": ""}
"""The behaviour of models saved before these :class:`ModelConfig` fields existed."""


# --------------------------------------------------------------------------------------------
# Input features
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Normalization:
    """Per-event, causal, robust normalisation of the inputs; saved as JSON beside the weights.

    Parameters
    ----------
    reference_points : int
        The baseline level ``b`` (median flux) and scatter ``s`` (median flux error) of an event
        come from its first ``reference_points`` observations (from the ones seen so far while
        fewer have arrived). Medians are robust to a few outliers and to a peak that has begun.
    baseline_method : str
        ``"first"`` (the default): ``b`` and ``s`` stay those of the first ``reference_points``
        observations for the rest of the curve, even when the event was already in progress
        then. ``"robust"``: they start the same way, then every later block of
        ``reference_points`` observations updates them causally (see :meth:`reference`): the
        level follows the lowest significantly different block level seen so far (lensing only
        brightens), averaging the blocks consistent with it, so an event in progress at the
        start no longer sets the baseline once its curve comes down.
    baseline_tolerance : float
        ``"robust"`` only: a block whose median lies within this many combined standard errors
        of the current level is the same level (averaged in); lower by more starts a new level,
        higher by more (the event) is ignored.
    dt_scale : float
        Interval unit [days] of the feature ``log(1 + dt / dt_scale)``: the training set's median
        interval. The first observation has interval 0.
    err_mean, err_std : float
        Standardisation of ``log(sigma_F / b)`` (from the training set).
    log_dt_mean, log_dt_std : float
        Standardisation of ``log(1 + dt / dt_scale)`` (from the training set's intervals).
    dt_min, dt_max : float
        Range of the training set's intervals [days]; inference outside it warns.
    """

    reference_points: int = 20
    baseline_method: str = "first"
    baseline_tolerance: float = 2.0
    dt_scale: float = 1.0
    err_mean: float = 0.0
    err_std: float = 1.0
    log_dt_mean: float = 0.0
    log_dt_std: float = 1.0
    dt_min: float = 0.0
    dt_max: float = math.inf

    def __post_init__(self):
        if self.reference_points < 1:
            raise ValueError(f"reference_points must be >= 1, got {self.reference_points}")
        if self.baseline_method not in BASELINE_METHODS:
            raise ValueError(f"unknown Normalization.baseline_method {self.baseline_method!r}; "
                             f"valid: {', '.join(BASELINE_METHODS)}")
        if not (isinstance(self.baseline_tolerance, (int, float))
                and math.isfinite(self.baseline_tolerance) and self.baseline_tolerance > 0):
            raise ValueError(f"Normalization.baseline_tolerance must be a positive number, got "
                             f"{self.baseline_tolerance!r}")
        for name in ("dt_scale", "err_std", "log_dt_std"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Normalization.{name} must be positive, got "
                                 f"{getattr(self, name)!r}")

    # -- persistence ---------------------------------------------------------------------

    def to_dict(self) -> dict:
        data = asdict(self)
        data["dt_max"] = None if math.isinf(self.dt_max) else self.dt_max
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Normalization:
        data = dict(data)
        if data.get("dt_max") is None:
            data["dt_max"] = math.inf
        return from_known_fields(cls, data, "Normalization settings")

    def save(self, path: str | os.PathLike) -> Path:
        """Write as JSON (atomically)."""
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Normalization:
        from microlens.models.runs import read_json

        return cls.from_dict(read_json(path))

    # -- fitting -------------------------------------------------------------------------

    @classmethod
    def fit(cls, times, flux, flux_err, mask, reference_points: int = 20,
            baseline_method: str = "first", baseline_tolerance: float = 2.0) -> Normalization:
        """Learn the standardisation from training events (tensors ``(B, N)``, valid first)."""
        times, flux, flux_err = (torch.as_tensor(a, dtype=torch.float64)
                                 for a in (times, flux, flux_err))
        mask = torch.as_tensor(mask, dtype=torch.bool)
        if not mask.any():
            raise ValueError("cannot fit a normalisation to events without observations")
        dt, later = _later_intervals(times, mask)
        dts = dt[later] if later.any() else torch.ones(1, dtype=torch.float64)
        dt_scale = max(float(dts.median()), 1e-6)
        # The unstandardised features, from the same transform the model applies.
        raw = cls(reference_points=reference_points, baseline_method=baseline_method,
                  baseline_tolerance=baseline_tolerance, dt_scale=dt_scale)
        features = raw.transform(flux, flux_err, *raw.reference(flux, flux_err), dt)
        log_err = features[..., 1][mask]
        log_err = log_err[torch.isfinite(log_err)]  # a corrupt point must not poison the fit
        if log_err.numel() < 2:
            raise ValueError("cannot fit a normalisation: fewer than 2 finite observations")
        log_dt = features[..., 2][later]
        return cls(
            reference_points=reference_points, baseline_method=baseline_method,
            baseline_tolerance=baseline_tolerance, dt_scale=dt_scale,
            err_mean=float(log_err.mean()), err_std=max(float(log_err.std()), 1e-6),
            log_dt_mean=float(log_dt.mean()), log_dt_std=max(float(log_dt.std()), 1e-6),
            dt_min=float(dts.min()), dt_max=float(dts.max()),
        )  # fmt: skip

    # -- features ------------------------------------------------------------------------

    def reference(self, flux: torch.Tensor, flux_err: torch.Tensor):
        """Causal baseline ``b`` and scatter ``s`` for every observation, each ``(B, N)``.

        Observation ``k`` (0-based) uses the medians of observations ``0..min(k, R-1)`` with
        ``R = reference_points`` (torch's lower median for even counts, as the stream does).

        With ``baseline_method="robust"`` the curve is cut into blocks of ``R`` observations;
        block ``j`` (observations ``jR .. jR + R - 1``) ends at observation ``(j + 1) R - 1`` and
        updates the level used from there on (:func:`baseline_update`): observation ``k >= R - 1``
        uses the blocks ended at or before it, so ``b`` and ``s`` stay causal, and up to
        observation ``2R - 2`` they equal those of ``"first"``.
        """
        n = flux.shape[1]
        r = min(self.reference_points, n)
        later = ~torch.ones(r, r, dtype=torch.bool, device=flux.device).tril()  # [k, j]: j > k

        def prefix_medians(x: torch.Tensor) -> torch.Tensor:
            # all r prefix medians in one kernel: row k of the (B, r, r) stack holds x[:, :k+1]
            # and NaN after it, which nanmedian skips (the stream does the same)
            windows = x[:, :r].unsqueeze(1).expand(-1, r, -1).masked_fill(later, math.nan)
            medians = windows.nanmedian(dim=-1).values
            return torch.cat([medians, medians[:, -1:].expand(-1, n - r)], dim=1)

        base, scale = prefix_medians(flux), prefix_medians(flux_err)
        if self.baseline_method == "first" or n < 2 * self.reference_points:
            return base, scale
        return self._block_reference(flux, flux_err, base, scale)

    def _block_reference(self, flux, flux_err, base, scale):
        """``"robust"``: the block levels from observation ``R - 1`` on (see :meth:`reference`)."""
        r = self.reference_points
        batch, n = flux.shape
        blocks = n // r
        block_flux = flux[:, : blocks * r].reshape(batch, blocks, r).median(dim=-1).values
        block_err = flux_err[:, : blocks * r].reshape(batch, blocks, r).median(dim=-1).values
        state = torch.zeros(batch, 4, dtype=torch.float64, device=flux.device)
        levels, scales = [], []
        for j in range(blocks):  # a recursion over n / R blocks, as the stream runs it
            state = baseline_update(state, block_flux[:, j], block_err[:, j], r,
                                    self.baseline_tolerance)
            level, spread = baseline_level(state)
            levels.append(level)
            scales.append(spread)
        # observation k >= R - 1 takes the level after block (k + 1) // R - 1
        which = torch.arange(r, n + 1, device=flux.device) // r - 1
        levels = torch.stack(levels, dim=1).to(flux.dtype)[:, which]
        scales = torch.stack(scales, dim=1).to(flux_err.dtype)[:, which]
        return (torch.cat([base[:, : r - 1], levels], dim=1),
                torch.cat([scale[:, : r - 1], scales], dim=1))

    def stream_reference(self, ref_flux: torch.Tensor, ref_err: torch.Tensor,
                         state: torch.Tensor, n_seen: torch.Tensor, flux: torch.Tensor,
                         flux_err: torch.Tensor):
        """One streaming step of :meth:`reference` for ``E`` events; the same numbers.

        Parameters
        ----------
        ref_flux, ref_err : Tensor ``(E, reference_points)``
            The events' reference buffers (NaN where empty), updated in place: the first
            ``reference_points`` observations (``"first"``) or the current block
            (``"robust"``, emptied when a new block starts).
        state : Tensor ``(E, 4)`` float64
            The events' block state (:func:`baseline_update`; zeros before the first block
            ends), updated in place. Unused by ``"first"``.
        n_seen : Tensor ``(E,)`` int64
            Observations each event had before this one.
        flux, flux_err : Tensor ``(E,)``
            The new observations.

        Returns
        -------
        (Tensor, Tensor)
            Baseline ``b`` and scatter ``s`` of the new observations, ``(E,)``.
        """
        r = self.reference_points
        rows = torch.arange(n_seen.shape[0])
        robust = self.baseline_method == "robust"
        slot = n_seen % r if robust else n_seen
        if robust:
            restart = (slot == 0) & (n_seen > 0)
            ref_flux[restart] = math.nan
            ref_err[restart] = math.nan
        filling = slot < r
        ref_flux[rows[filling], slot[filling]] = flux[filling]
        ref_err[rows[filling], slot[filling]] = flux_err[filling]
        base = ref_flux.nanmedian(dim=1).values  # lower median, as torch.median
        scale = ref_err.nanmedian(dim=1).values
        if robust:
            ended = slot == r - 1
            if ended.any():
                state[ended] = baseline_update(state[ended], base[ended], scale[ended], r,
                                               self.baseline_tolerance)
            level, spread = baseline_level(state)
            later = n_seen >= r - 1
            base = torch.where(later, level.to(base.dtype), base)
            scale = torch.where(later, spread.to(scale.dtype), scale)
        return base, scale

    def transform(self, flux, flux_err, base, scale, dt) -> torch.Tensor:
        """The three inputs ``(..., 3)`` from observations, their causal baseline ``b`` and
        scatter ``s`` (:meth:`reference`) and intervals ``dt`` (0 for a first observation).

        ``asinh((F - b) / s)``, the standardised ``log(sigma_F / |b|)`` and the standardised
        ``log(1 + dt / dt_scale)``, in the dtype of ``flux``. The batch forward and the stream
        (:mod:`microlens.models.stream`) both call this, so they cannot drift apart.
        """
        x_flux = torch.asinh((flux - base) / scale.clamp_min(1e-12))
        x_err = (torch.log(flux_err.clamp_min(1e-12) / base.abs().clamp_min(1e-6))
                 - self.err_mean) / self.err_std
        x_dt = (torch.log1p(dt.clamp_min(0).to(flux.dtype) / self.dt_scale)
                - self.log_dt_mean) / self.log_dt_std
        return torch.stack([x_flux, x_err, x_dt], dim=-1)

    def features(self, times, flux, flux_err, mask=None) -> torch.Tensor:
        """Model inputs ``(B, N, 3)`` from raw observations ``(B, N)`` (padding at the end).

        Padded positions get zeros. Nothing is clipped: the flux feature is ``asinh`` of the
        deviation in units of the baseline scatter, so a caustic spike stays a spike.
        """
        flux = flux.float()
        flux_err = flux_err.float()
        feats = self.transform(flux, flux_err, *self.reference(flux, flux_err),
                               _intervals(times.double()))
        if mask is not None:
            feats = torch.where(mask.unsqueeze(-1), feats, 0.0)
        return feats

    def check_intervals(self, times, mask) -> None:
        """Warn when intervals fall outside the training range (the model never saw them)."""
        dt, later = _later_intervals(times, mask)
        dts = dt[later]
        if dts.numel() == 0:
            return
        low, high = float(dts.min()), float(dts.max())
        if self.outside_training_intervals(torch.tensor([low, high])).any():
            warnings.warn(
                f"observation intervals span [{low:.4g}, {high:.4g}] days, outside the training "
                f"range [{self.dt_min:.4g}, {self.dt_max:.4g}]; predictions there are "
                "extrapolations", IntervalRangeWarning, stacklevel=3)


    def outside_training_intervals(self, dt: torch.Tensor) -> torch.Tensor:
        """Which intervals lie outside ``[dt_min, dt_max]``, with 0.1 % slack (times are
        stored in float32, ~1e-6 days of rounding)."""
        slack = 1e-3
        return (dt < self.dt_min * (1 - slack)) | (dt > self.dt_max * (1 + slack))


class IntervalRangeWarning(UserWarning):
    """Inference met observation intervals outside the training set's range."""


BASELINE_METHODS = ("first", "robust")
"""Choices of :attr:`Normalization.baseline_method`."""


def baseline_update(state: torch.Tensor, block_flux: torch.Tensor, block_err: torch.Tensor,
                    points: int, tolerance: float) -> torch.Tensor:
    """The ``"robust"`` baseline state after one more block of ``points`` observations.

    ``state`` ``(E, 4)`` float64 holds ``[sum w m, sum w, sum e, count]`` over the blocks of
    the current level (zeros: no block yet), where a block has median flux ``m``, median error
    ``e`` and weight ``w = points / (pi/2 e^2)``, the inverse variance of the median of
    ``points`` Gaussian values. A new block whose median differs from the level
    ``sum w m / sum w`` by at most ``tolerance`` combined standard errors joins the level; one
    lower by more starts a new level (lensing only brightens, so a lower level is nearer the
    baseline); one higher by more is the event, and is ignored. Batch and stream both call this,
    element by element, so they agree exactly.
    """
    m = block_flux.double()
    e = block_err.double().clamp_min(1e-12)
    w = points / (math.pi / 2 * e * e)
    block = torch.stack([w * m, w, e, torch.ones_like(m)], dim=-1)
    fresh = state[:, 3] == 0
    diff = m - state[:, 0] / state[:, 1]  # NaN for a fresh state: neither test below holds
    allowed = tolerance * torch.sqrt(1 / w + 1 / state[:, 1])
    lower = fresh | (diff < -allowed)
    same = diff.abs() <= allowed
    return torch.where(lower[:, None], block, torch.where(same[:, None], state + block, state))


def baseline_level(state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Baseline ``b`` (weighted mean of the level's block medians) and scatter ``s`` (mean of
    their median errors) of a :func:`baseline_update` state, float64 ``(E,)`` each."""
    return state[:, 0] / state[:, 1], state[:, 2] / state[:, 3]


def _later_intervals(times, mask) -> tuple[torch.Tensor, torch.Tensor]:
    """Intervals ``(B, N)`` float64 and where they are real: valid, finite, not an event's
    first observation (which has no interval)."""
    dt = _intervals(torch.as_tensor(times, dtype=torch.float64))
    later = torch.as_tensor(mask, dtype=torch.bool).clone()
    later[:, 0] = False
    return dt, later & torch.isfinite(dt)


def _intervals(times: torch.Tensor) -> torch.Tensor:
    """Time since the previous observation, 0 for the first, clamped at 0."""
    dt = torch.zeros_like(times)
    dt[:, 1:] = (times[:, 1:] - times[:, :-1]).clamp_min(0)
    return dt


# --------------------------------------------------------------------------------------------
# Encoder
# --------------------------------------------------------------------------------------------


def window_mask(batch: int, n_blocks: int, window: int, device=None) -> torch.Tensor:
    """Additive band mask ``(batch * n_blocks, 1, window, 2 * window)`` for block attention.

    Query ``a`` of a block sees key ``b`` of [previous block, own block] when
    ``a < b <= a + window``, i.e. the ``window`` observations ending at itself. The first block
    of every event has no previous block (those keys belong to the event before it in the batch).
    """
    a = torch.arange(window, device=device)[:, None]
    b = torch.arange(2 * window, device=device)[None, :]
    allowed = ((b > a) & (b <= a + window)).expand(batch, n_blocks, window, 2 * window).clone()
    allowed[:, 0, :, :window] = False
    mask = torch.zeros(allowed.shape, device=device)
    mask.masked_fill_(~allowed, float("-inf"))
    return mask.view(batch * n_blocks, 1, window, 2 * window)


def rotary_periods(config: ModelConfig, device=None) -> torch.Tensor:
    """The ``head_dim / 2`` rotary periods [days], log-spaced from ``rotary_min_period`` to
    ``rotary_max_period`` (float64)."""
    n = (config.d_model // config.n_heads) // 2
    return torch.logspace(math.log10(config.rotary_min_period),
                          math.log10(config.rotary_max_period), n, dtype=torch.float64,
                          device=device)


def rotary_angles(relative_times: torch.Tensor, periods: torch.Tensor):
    """``(cos, sin)`` float32, shape ``relative_times.shape + (len(periods),)``.

    ``relative_times`` [days] are times since the event's first observation. The phase
    ``2 pi t / P`` is reduced modulo ``2 pi`` in float64 before the cast, so a period of 0.1 d
    keeps its precision after thousands of days (float32 would lose ~1e-2 rad there).
    """
    phase = torch.remainder(relative_times.double()[..., None] / periods, 1.0) * (2 * math.pi)
    return phase.cos().float(), phase.sin().float()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the pairs ``(x[..., i], x[..., i + dh/2])`` of ``x (..., dh)`` by the angles
    whose cosines and sines are ``cos, sin (..., dh/2)`` (broadcast); keeps ``x``'s dtype.

    A query rotated by ``t_k`` and a key by ``t_j`` have a dot product that depends on
    ``t_k - t_j`` only, so the attention sees time differences, never absolute times.
    """
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).to(x.dtype)


class CausalConvStem(nn.Module):
    """A causal temporal-convolution stack: ``conv_stem_layers`` residual layers
    ``x + GELU(Conv1d_dilated(x))`` with dilations 1, 2, 4, ...; the convolution of layer
    ``i`` at observation ``k`` reads its inputs at ``k - j * 2**i`` for ``j = 0 .. kernel - 1``
    (zeros before the first observation). Order and local shape over
    :attr:`receptive_field` observations, before any attention."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.kernel = config.conv_stem_kernel
        self.dilations = tuple(2 ** i for i in range(config.conv_stem_layers))
        self.convs = nn.ModuleList(nn.Conv1d(config.d_model, config.d_model, self.kernel,
                                             dilation=dilation) for dilation in self.dilations)

    @property
    def receptive_field(self) -> int:
        """Observations (the current one included) that the stem's output at ``k`` reads."""
        return 1 + (self.kernel - 1) * sum(self.dilations)

    @property
    def history_lengths(self) -> tuple[int, ...]:
        """Previous inputs each layer needs in streaming: ``(kernel - 1) * dilation``."""
        return tuple((self.kernel - 1) * dilation for dilation in self.dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, d) -> (B, N, d)``, causal (left padding only)."""
        for conv, history in zip(self.convs, self.history_lengths, strict=True):
            y = conv(F.pad(x.transpose(1, 2), (history, 0)))
            x = x + F.gelu(y).transpose(1, 2).to(x.dtype)
        return x

    def step(self, history: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One new token per event, ``x (E, d)``.

        ``history (E, sum(history_lengths), d)`` holds, layer after layer, the previous
        inputs of each layer, oldest first (zeros where none). Returns the stem's output
        ``(E, d)`` and the history that includes this observation.
        """
        parts, start = [], 0
        for conv, length, dilation in zip(self.convs, self.history_lengths, self.dilations,
                                          strict=True):
            seen = torch.cat([history[:, start:start + length], x[:, None]], dim=1)
            window = seen[:, ::dilation].transpose(1, 2)  # (E, d, kernel)
            # the slice already spaces the inputs by the dilation: an undilated product
            x = x + F.gelu(F.conv1d(window, conv.weight, conv.bias)[..., 0]).to(x.dtype)
            parts.append(seen[:, 1:])
            start += length
        return x, torch.cat(parts, dim=1)


class SlidingWindowAttention(nn.Module):
    """Multi-head causal attention over the last ``window`` observations (itself included)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_heads = config.n_heads
        self.head_dim = config.d_model // config.n_heads
        self.window = config.window
        self.query = nn.Linear(config.d_model, config.d_model)
        self.key_value = nn.Linear(config.d_model, 2 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)

    def forward(self, z: torch.Tensor, mask: torch.Tensor, return_weights: bool = False,
                rotary: tuple[torch.Tensor, torch.Tensor] | None = None):
        """Attend within the window.

        Parameters
        ----------
        z : Tensor ``(B, N, d)``, ``N`` a multiple of ``window``
        mask : Tensor from :func:`window_mask`
        return_weights : bool
            Also return the weights ``(B, heads, N, window)``; entry ``[..., k, j]`` is the
            weight of observation ``k - window + 1 + j`` (``j = window - 1`` is ``k`` itself).
        rotary : (cos, sin), optional
            Each ``(B * N, 1, head_dim / 2)`` from :func:`rotary_angles`: queries and keys are
            rotated by their observation's time (:func:`apply_rotary`) before the scores.
        """
        batch, n, d = z.shape
        w, h, dh = self.window, self.n_heads, self.head_dim
        blocks = batch * (n // w)
        flat = z.reshape(batch * n, d)
        q = self.query(flat)
        kv = self.key_value(flat)
        if rotary is not None:
            q = apply_rotary(q.view(batch * n, h, dh), *rotary).view(batch * n, d)
            kv = kv.view(batch * n, 2, h, dh)
            kv = torch.stack([apply_rotary(kv[:, 0], *rotary), kv[:, 1]], dim=1)
            kv = kv.view(batch * n, 2 * d)
        q = q.view(blocks, w, h, dh).transpose(1, 2)  # (blocks, h, W, dh)
        k, v = self._block_keys_values(kv, blocks)  # (blocks, h, 2W, dh)
        weights = None
        if return_weights:
            scores = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(dh) + mask
            probs = scores.softmax(dim=-1)  # (blocks, h, W, 2W)
            y = (probs @ v.float()).to(q.dtype)
            index = (torch.arange(w, device=z.device)[:, None] + 1
                     + torch.arange(w, device=z.device)[None, :])  # query a -> keys a+1..a+W
            band = probs.gather(-1, index.expand(blocks, h, w, w))
            weights = (band.view(batch, n // w, h, w, w).permute(0, 2, 1, 3, 4)
                       .reshape(batch, h, n, w))
        elif z.device.type == "cpu":
            # The fused CPU kernel is much faster in float32 than in bfloat16 (backward above
            # all); the projections around it still run in the autocast dtype.
            with torch.autocast("cpu", enabled=False):
                y = F.scaled_dot_product_attention(q.float(), k.float(), v.float(),
                                                   attn_mask=mask).to(q.dtype)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype))
        y = y.transpose(1, 2).reshape(batch, n, d)
        return self.out(y), weights

    def _block_keys_values(self, kv: torch.Tensor, blocks: int):
        """Keys and values of [previous block, own block] for every block of ``window`` rows.

        ``kv`` is ``(blocks * window, 2 * d_model)``. The first block of an event receives rows
        of another event (or none), which :func:`window_mask` hides. Without gradients the
        windows are an overlapping strided view of the padded rows (no copy); for training
        they are concatenated, because the backward of overlapping views scatters and made a
        step ~20 % slower.
        """
        w, h, dh = self.window, self.n_heads, self.head_dim
        if torch.is_grad_enabled() and kv.requires_grad:
            kv = kv.view(blocks, w, 2 * h * dh)
            kv = torch.cat([torch.roll(kv, 1, dims=0), kv], dim=1).view(blocks, 2 * w, 2, h, dh)
            return kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)
        kv = F.pad(kv, (0, 0, w, 0)).unfold(0, 2 * w, w).view(blocks, 2, h, dh, 2 * w)
        return kv[:, 0].transpose(-1, -2), kv[:, 1].transpose(-1, -2)


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(LN(x))``, then ``x + FFN(LN(x))``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.d_model)
        self.attention = SlidingWindowAttention(config)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.feed_forward = nn.Sequential(nn.Linear(config.d_model, config.d_ff), nn.GELU(),
                                          nn.Linear(config.d_ff, config.d_model))
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, mask, return_weights: bool = False, rotary=None):
        y, weights = self.attention(self.norm1(x), mask, return_weights, rotary)
        x = x + self.dropout(y)
        x = x + self.dropout(self.feed_forward(self.norm2(x)))
        return x, weights


# --------------------------------------------------------------------------------------------
# The classifier
# --------------------------------------------------------------------------------------------


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
            meaningless.
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
        out = {"logits": self.classify(pooled)}
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
            parts = [self(times[i : i + per_pass], flux[i : i + per_pass],
                          flux_err[i : i + per_pass], mask[i : i + per_pass])["logits"]
                     for i in range(0, times.shape[0], per_pass)]
        finally:
            self.train(was_training)
        return torch.cat(parts) if parts else torch.zeros(0, times.shape[1],
                                                          self.config.n_classes)

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


class MicrolensTransformer(CausalClassifier):
    """Causal sliding-window transformer giving class logits after every observation (kind
    ``"transformer"``; see the module docstring).

    Parameters
    ----------
    config : ModelConfig
    normalization : Normalization
        Input standardisation learned from the training set (saved as JSON with the model).
    """

    kind = "transformer"
    has_attention = True

    def build_encoder(self, config: ModelConfig) -> None:
        # Absent at the defaults, so checkpoints from before these options load unchanged.
        self.stem = CausalConvStem(config) if config.conv_stem_kernel else None
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))

    def encode(self, features: torch.Tensor, return_attention: bool = False, *,
               times: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        """Encoder states ``(B, N, d)`` from features ``(B, N, 3)``, before pooling.

        ``times`` ``(B, N)`` [days] (and the ``mask`` of valid observations) are needed with
        ``time_encoding="rotary"`` only. Returns ``(states, attention)``; ``attention`` is a
        list with one ``(B, heads, N, window)`` tensor per layer when requested, else None.
        """
        batch, n, _ = features.shape
        w = self.config.window
        padded = -(-max(n, 1) // w) * w
        x = self.embed_dropout(self.embed(F.pad(features, (0, 0, 0, padded - n))))
        if self.stem is not None:
            x = self.stem(x)
        rotary = (self.rotary_angles(times, mask, padded)
                  if self.config.time_encoding == "rotary" else None)
        band = window_mask(batch, padded // w, w, device=features.device)
        attention = [] if return_attention else None
        for block in self.blocks:
            x, weights = block(x, band, return_attention, rotary)
            if return_attention:
                attention.append(weights[:, :, :n])
        return self.norm(x[:, :n]), attention

    def rotary_angles(self, times, mask=None, length: int | None = None):
        """``(cos, sin)``, each ``(B * length, 1, head_dim / 2)``, for :func:`apply_rotary`.

        Angles come from ``times - times[:, :1]`` in float64 (the event's first observation is
        time 0), so a constant added to every time changes nothing; padded observations (mask
        False, and the ``length - N`` added to fill the last window block) get angle 0.
        """
        if times is None:
            raise ValueError("time_encoding='rotary' needs the observation times: call "
                             "encode(features, times=times, mask=mask)")
        times = torch.as_tensor(times).double()
        relative = times - times[:, :1]
        if mask is not None:
            relative = torch.where(torch.as_tensor(mask, device=times.device), relative, 0.0)
        n = times.shape[1]
        relative = F.pad(relative, (0, (length or n) - n))
        cos, sin = rotary_angles(relative, rotary_periods(self.config, relative.device))
        return cos.reshape(-1, 1, cos.shape[-1]), sin.reshape(-1, 1, sin.shape[-1])


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


__all__ = [
    "BASELINE_METHODS", "baseline_level", "baseline_update",
    "Block", "CausalClassifier", "CausalConvStem", "IntervalRangeWarning", "MODEL_KINDS",
    "MicrolensTransformer", "ModelConfig",
    "N_FEATURES", "Normalization", "SlidingWindowAttention", "TIME_ENCODINGS", "apply_rotary",
    "final_logits", "rotary_angles", "rotary_periods", "window_mask",
]  # fmt: skip
