"""What a model reads: three causal features per observation (:class:`Normalization`) and
the running baseline that streaming and batch share."""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from microlens.core.paths import write_json_atomic
from microlens.core.settings import from_known_fields


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
