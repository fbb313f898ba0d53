"""Lens parameters after every observation: the heads every neural kind can carry beside its
classifier, their targets and their loss.

Follow-up is decided from parameters, not from a class: when the peak comes (``t_0``), how long
the event lasts (``t_E``), how close the lens passes (``u_0``: a high-magnification event is where
planets are found) and how much of the light is the source's (``f_s``). A model built with
``ModelConfig(parameter_heads=True)`` predicts, after every observation and from the past only,
quantiles (:data:`QUANTILES`) of each parameter of :data:`TARGETS`:

``t_0``
    the time of the closest approach, in the curve's own time frame [days] (the network
    predicts ``t_0 - t_k``, the time from the latest observation ``t_k`` to the peak: negative
    once the peak has passed);
``log10_t_E``
    the Einstein time, log10 of days;
``log10_u_0``
    the impact parameter ``|u_0|``, log10 of Einstein radii;
``f_s``
    the source's share of the baseline flux (1: no blending);
``log10_s``, ``log10_q``
    the binary's separation [Einstein radii] and mass ratio, log10 (binaries only).

The heads read the causal pooling of the encoder states, the latest state, and for every
feature the time since its running maximum was reached (:func:`peak_ages`: when the brightest
part of the curve so far was seen, which the running maximum alone forgets); all three stream
exactly as the classifier's pooling does. Their loss (:func:`parameter_losses`) is the pinball
(quantile) loss of every quantile in units of the target's training-set spread, weighted over
the observations of an event as the classification loss is, and masked by class: a no-event
curve's parameters never enter it, the point-lens parameters enter for both lensing classes,
``s`` and ``q`` for binaries only. Its weight beside the classification loss is
``TrainConfig.parameter_weight``.

The peak time is predicted from an origin (``ModelConfig.parameter_origin``): by default the
latest observation (``"latest"``), or (``"peak"``) the **peak anchor** (:func:`peak_anchor`),
the time of the brightest stretch of :data:`ANCHOR_POINTS` observations seen so far, which
follows the latest observation while the flux rises and stays near the peak once it has
passed; the network then predicts ``t_0`` minus the anchor and reads the time since the
anchor. The anchor halves the heads' ``t_0`` error after the peak but does not help before
it and costs ``t_E`` after it (docs/parameters.md), so it is an option, not the default. The
loss reads ``t_0`` less the origin as ``asinh(x / T0_SCALE_DAYS)``: near the origin a day
matters, a year from it hardly; the transform is monotone, so it maps quantiles to quantiles
and changes no interval's coverage. Either way the heads' output is ``t_0 - t_k``.

Quantiles rather than a Gaussian: before the peak ``t_0`` is bounded on one side only (it has
not happened yet) and ``t_E`` with it, so the answer's distribution is skewed; quantile
regression says so without assuming a shape, and each interval's coverage is what its loss
asks for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from microlens.models.config import PARAMETER_ORIGINS

POINT_LENS = ("t_0", "log10_t_E", "log10_u_0", "f_s")
"""The point-lens parameters (both lensing classes)."""
BINARY = ("log10_s", "log10_q")
"""The binary lens's own parameters (binaries only)."""
TARGETS = POINT_LENS + BINARY
"""What the heads predict, in this order (module docstring)."""
QUANTILES = (0.025, 0.16, 0.5, 0.84, 0.975)
"""The quantiles predicted: the median and the central 68 % and 95 % intervals."""
MEDIAN = QUANTILES.index(0.5)
INTERVALS = {0.68: (QUANTILES.index(0.16), QUANTILES.index(0.84)),
             0.95: (QUANTILES.index(0.025), QUANTILES.index(0.975))}
"""Central intervals: level -> (index of the lower quantile, index of the upper)."""
MIN_U_0 = 1e-4
"""``|u_0|`` below this is taken as this before the log (a caustic-crossing binary's u_0 may be
zero)."""
T0_SCALE_DAYS = 5.0
"""Days over which the loss reads ``t_0 - t_k`` linearly (logarithmically beyond)."""
AGE_SCALE_DAYS = 10.0
"""Days over which the heads read the time since a feature's maximum linearly."""
ANCHOR_POINTS = 5
"""Consecutive observations whose error-weighted mean flux marks the peak anchor
(:func:`peak_anchor`)."""
ORIGINS = PARAMETER_ORIGINS
"""Where the heads measure ``t_0`` from: the peak anchor or the latest observation."""
LENSING_CLASSES = (1, 2)
BINARY_CLASS = 2


def event_targets(params: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each event's parameters in the heads' spaces and where they count.

    Parameters
    ----------
    params : structured ndarray ``(B,)``
        Rows of a data set's parameter table (``t_0, t_E, u_0, f_s, s, q``).
    labels : ndarray ``(B,)``
        The physical classes (0 no event, 1 single lens, 2 binary): the label policy of
        training does not change what a curve's parameters are.

    Returns
    -------
    values : ndarray ``(B, len(TARGETS))`` float64
        ``t_0`` in the curve's time frame (absolute, not yet relative to an observation), the
        logs and ``f_s``; 0 where they do not count.
    counts : ndarray ``(B, len(TARGETS))`` bool
        True where a target enters the loss: point-lens parameters for lensing events,
        ``s`` and ``q`` for binaries, each only where finite.
    """
    labels = np.asarray(labels).reshape(-1)
    n = labels.size
    with np.errstate(divide="ignore", invalid="ignore"):
        columns = [np.asarray(params["t_0"], np.float64),
                   np.log10(np.asarray(params["t_E"], np.float64)),
                   np.log10(np.maximum(np.abs(np.asarray(params["u_0"], np.float64)), MIN_U_0)),
                   np.asarray(params["f_s"], np.float64),
                   np.log10(np.asarray(params["s"], np.float64)),
                   np.log10(np.asarray(params["q"], np.float64))]
    values = np.stack(columns, axis=1) if n else np.zeros((0, len(TARGETS)))
    lensing = np.isin(labels, LENSING_CLASSES)
    counts = np.zeros((n, len(TARGETS)), bool)
    counts[:, : len(POINT_LENS)] = lensing[:, None]
    counts[:, len(POINT_LENS):] = (labels == BINARY_CLASS)[:, None]
    counts &= np.isfinite(values)
    return np.where(counts, values, 0.0), counts


def relative_targets(values: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """Per-observation targets ``(B, N, P)``: ``t_0`` less ``times`` (``(B, N)``: the latest
    observation's, or the origin's), the rest as they are."""
    out = values[:, None, :].expand(-1, times.shape[1], -1).clone()
    out[..., 0] = values[:, None, 0] - times
    return out


def anchor_terms(times: torch.Tensor, flux: torch.Tensor, flux_err: torch.Tensor,
                 valid: torch.Tensor | None = None) -> torch.Tensor:
    """Each observation's contribution ``(w, w f, w t)`` to the peak anchor's running sums,
    ``(..., 3)`` float64, ``w = 1 / err**2`` (0 where not ``valid``)."""
    weight = 1.0 / flux_err.double() ** 2
    if valid is not None:
        weight = torch.where(valid, weight, 0.0)
    return torch.stack([weight, weight * torch.where(weight > 0, flux.double(), 0.0),
                        weight * times.double()], dim=-1)


def anchor_window_mean(sums: torch.Tensor, times: torch.Tensor) -> tuple[torch.Tensor,
                                                                         torch.Tensor]:
    """The weighted mean flux and time of a window from its sums ``(..., 3)``; ``-inf`` and
    ``times`` where the window holds no weight."""
    held = sums[..., 0] > 0
    safe = torch.where(held, sums[..., 0], 1.0)
    return (torch.where(held, sums[..., 1] / safe, -math.inf),
            torch.where(held, sums[..., 2] / safe, times.double()))


def peak_anchor(times: torch.Tensor, flux: torch.Tensor, flux_err: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
    """The peak anchor after every observation, ``(B, N)`` float64 in the times' frame.

    The error-weighted mean flux of the last :data:`ANCHOR_POINTS` observations (fewer at the
    start) is formed after every observation; the anchor is the weighted mean time of the
    window whose mean is the highest so far (the latest of equal maxima). While the flux rises
    it is near the latest observation; after the peak it stays by the brightest stretch, a
    causal estimate of ``t_0`` to within a few observations that the heads correct. The sums
    run in the order :class:`~microlens.models.stream.StreamingClassifier` adds them, so
    streaming gives the same anchors bit for bit.
    """
    terms = anchor_terms(times, flux, flux_err, mask)
    n = terms.shape[1]
    sums = torch.zeros_like(terms)
    for lag in range(ANCHOR_POINTS - 1, -1, -1):  # oldest first, as the stream adds them
        shifted = torch.zeros_like(terms)
        shifted[:, lag:] = terms[:, : n - lag]
        sums = sums + shifted
    mean, mean_time = anchor_window_mean(sums, times)
    index = mean.cummax(dim=1).indices
    return torch.gather(mean_time, 1, index)


def loss_space(values: torch.Tensor, axis: int = -1) -> torch.Tensor:
    """Targets (or their quantiles) in the space the loss reads: ``t_0 - t_k`` (index 0 along
    ``axis``) through ``asinh(x / T0_SCALE_DAYS)``, the others as they are."""
    out = values.clone()
    index = [slice(None)] * values.dim()
    index[axis] = 0
    out[tuple(index)] = torch.asinh(values[tuple(index)] / T0_SCALE_DAYS)
    return out


def peak_ages(states: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """For every feature of the states ``(B, N, d)``, the days since its running maximum was
    reached (the latest of equal maxima), ``(B, N, d)`` float32 through
    ``asinh(age / AGE_SCALE_DAYS)``; computed in float64 so that absolute times keep their
    precision."""
    index = states.float().cummax(dim=1).indices
    times = times.double()
    reached = torch.gather(times[:, :, None].expand_as(index), 1, index)
    return torch.asinh((times[:, :, None] - reached) / AGE_SCALE_DAYS).float()


class ParameterHead(nn.Module):
    """Quantiles of every target after every observation, from the pooled embedding
    ``(B, N, 2d)``, the latest encoder state ``(B, N, d)``, the features' peak ages
    ``(B, N, d)`` (:func:`peak_ages`) and, with ``origin="peak"``, the days since the peak
    anchor ``(B, N)`` (:func:`peak_anchor`; ``t_0`` is predicted from the anchor).

    The network works in standard units of the loss space (:func:`loss_space`;
    ``(value - center) / scale``, both fitted on the training set by
    :func:`fit_target_scaling` and kept as buffers with the weights) and its
    quantiles are ordered by construction: the median plus cumulative softplus steps up and
    down.

    Returns ``(B, N, len(TARGETS), len(QUANTILES))`` float32 in the targets' units, ``t_0``
    relative to the latest observation (``t_0 - t_k``).
    """

    def __init__(self, d_model: int, origin: str = "latest"):
        super().__init__()
        if origin not in ORIGINS:
            raise ValueError(f"origin must be one of {ORIGINS}, got {origin!r}")
        self.origin = origin
        extra = 1 if origin == "peak" else 0
        self.net = nn.Sequential(nn.Linear(4 * d_model + extra, d_model), nn.GELU(),
                                 nn.Linear(d_model, len(TARGETS) * len(QUANTILES)))
        self.register_buffer("center", torch.zeros(len(TARGETS)))
        self.register_buffer("scale", torch.ones(len(TARGETS)))

    def forward(self, pooled: torch.Tensor, state: torch.Tensor, ages: torch.Tensor,
                since_anchor: torch.Tensor | None = None) -> torch.Tensor:
        inputs = [pooled.float(), state.float(), ages.float()]
        if self.origin == "peak":
            if since_anchor is None:
                raise ValueError("a head measuring t_0 from the peak anchor needs since_anchor")
            inputs.append(torch.asinh(since_anchor / AGE_SCALE_DAYS).float()[..., None])
        raw = self.net(torch.cat(inputs, dim=-1)).float()
        raw = raw.unflatten(-1, (len(TARGETS), len(QUANTILES)))
        steps = nn.functional.softplus(raw)
        median = raw[..., MEDIAN : MEDIAN + 1]
        up = median + steps[..., MEDIAN + 1 :].cumsum(-1)
        down = median - steps[..., :MEDIAN].flip(-1).cumsum(-1).flip(-1)
        standard = torch.cat([down, median, up], dim=-1)
        value = self.center[:, None] + self.scale[:, None] * standard
        t_0 = torch.sinh(value[..., :1, :]) * T0_SCALE_DAYS  # back from the loss space
        if self.origin == "peak":  # from the anchor to t_0 - t_k
            t_0 = t_0 - since_anchor.float()[..., None, None]
        return torch.cat([t_0, value[..., 1:, :]], dim=-2)


def fit_target_scaling(store, rows: Sequence[int], max_events: int = 2000,
                       seed: int = 0, origin: str = "latest") -> tuple[np.ndarray, np.ndarray]:
    """The heads' standard units from training events: per target, in the loss space
    (:func:`loss_space`), the median and the spread (1.4826 x the median absolute deviation,
    at least 1e-3) over the lensing events (for ``t_0``, less the ``origin`` of each
    observation: over all their observations). Defaults (0, 1) where no event counts."""
    if origin not in ORIGINS:
        raise ValueError(f"origin must be one of {ORIGINS}, got {origin!r}")
    rows = np.asarray(rows, np.int64)
    if rows.size > max_events:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_events, replace=False))
    values, counts = event_targets(np.asarray(store.params[rows]), np.asarray(store.labels[rows]))
    center, scale = np.zeros(len(TARGETS)), np.ones(len(TARGETS))
    lensing = counts[:, 0]
    relative = np.zeros(0)
    if lensing.any():
        names = ("times", "flux", "flux_err") if origin == "peak" else ("times",)
        arrays = store.padded(rows[lensing], names=names)
        origins = arrays["times"]
        if origin == "peak":
            origins = peak_anchor(*(torch.from_numpy(np.asarray(arrays[k]))
                                    for k in (*names, "mask"))).numpy()
        relative = (values[lensing, 0][:, None] - origins)[arrays["mask"]]
        relative = np.arcsinh(relative / T0_SCALE_DAYS)
    for j in range(len(TARGETS)):
        column = relative if j == 0 else values[counts[:, j], j]
        if column.size:
            center[j] = float(np.median(column))
            scale[j] = max(1.4826 * float(np.median(np.abs(column - center[j]))), 1e-3)
    return center, scale


def pinball(quantiles: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean pinball loss over the last axis of ``quantiles`` (levels :data:`QUANTILES`) for
    ``target`` (the quantiles' shape without that axis)."""
    levels = torch.tensor(QUANTILES, device=quantiles.device, dtype=quantiles.dtype)
    error = target.unsqueeze(-1) - quantiles
    return torch.maximum(levels * error, (levels - 1) * error).mean(-1)


def parameter_losses(quantiles: torch.Tensor, values: torch.Tensor, counts: torch.Tensor,
                     times: torch.Tensor, weights: torch.Tensor,
                     scale: torch.Tensor, origin: torch.Tensor | None = None) -> torch.Tensor:
    """Each event's parameter loss ``(B,)``: the pinball loss of every target that counts, in
    standard units of the loss space (:func:`loss_space`, divided by ``scale``), summed over
    targets and weighted over observations
    by ``weights`` ``(B, N)`` (zero at padding; the classification loss's weights).

    Parameters
    ----------
    quantiles : Tensor ``(B, N, P, Q)``
        The heads' output (:class:`ParameterHead`).
    values, counts : Tensor ``(B, P)``
        :func:`event_targets` (float, bool).
    times : Tensor ``(B, N)``
        Observation times (for ``t_0 - t_k``).
    origin : Tensor ``(B, N)``, optional
        Where the heads measure ``t_0`` from (the peak anchor, the forward's
        ``"parameter_origin"``); None: the latest observation. The loss reads ``t_0`` less it.
    """
    origin = times.double() if origin is None else origin.double()
    target = loss_space(relative_targets(values.double(), origin).float())
    shifted = quantiles.clone()  # t_0 - t_k to t_0 - origin
    shifted[..., 0, :] = quantiles[..., 0, :] + (times.double() - origin).float()[..., None]
    loss = pinball(loss_space(shifted, axis=-2) / scale[:, None], target / scale)  # (B, N, P)
    loss = torch.where(counts[:, None, :], loss, 0.0).sum(-1)
    return (loss * weights).sum(-1)


def absolute_quantiles(quantiles: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """The heads' output with ``t_0`` made absolute (``+ t_k``), in the curve's time frame."""
    out = quantiles.clone()
    out[..., 0, :] = out[..., 0, :] + times.to(out.dtype).unsqueeze(-1)
    return out


def as_table(quantiles: np.ndarray) -> dict[str, np.ndarray]:
    """``(..., P, Q)`` quantiles as a dict: each target's median, 68 % and 95 % bounds."""
    out = {}
    for j, name in enumerate(TARGETS):
        out[name] = quantiles[..., j, MEDIAN]
        for level, (lo, hi) in INTERVALS.items():
            tag = int(round(100 * level))
            out[f"{name}_lo{tag}"] = quantiles[..., j, lo]
            out[f"{name}_hi{tag}"] = quantiles[..., j, hi]
    return out


def peak_magnification(u_0: float | np.ndarray) -> np.ndarray:
    """The point lens's magnification at the peak, ``A(u_0)``."""
    u = np.maximum(np.asarray(u_0, np.float64), MIN_U_0)
    return (u * u + 2.0) / (u * np.sqrt(u * u + 4.0))


HIGH_MAGNIFICATION_U_0 = 0.1
"""``u_0`` of a high-magnification event (A_max >= 10 is u_0 <= 0.1005)."""
HIGH_MAGNIFICATION = float(peak_magnification(HIGH_MAGNIFICATION_U_0))
"""Its peak magnification (~10.04)."""

__all__ = [
    "AGE_SCALE_DAYS", "ANCHOR_POINTS", "BINARY", "HIGH_MAGNIFICATION", "HIGH_MAGNIFICATION_U_0",
    "INTERVALS", "LENSING_CLASSES", "MEDIAN", "MIN_U_0", "ORIGINS", "POINT_LENS", "QUANTILES",
    "T0_SCALE_DAYS", "TARGETS", "ParameterHead", "absolute_quantiles", "anchor_terms",
    "anchor_window_mean", "as_table", "event_targets", "fit_target_scaling", "loss_space",
    "parameter_losses", "peak_ages", "peak_anchor", "peak_magnification", "pinball",
    "relative_targets",
]
