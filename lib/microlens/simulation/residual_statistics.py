"""Residual statistics of one curve without an event (pure numpy): the measures that
:mod:`microlens.reports.noise_statistics` summarises by magnitude and
:mod:`microlens.simulation.noise_model`
fits its numbers with; what each statistic means is in :mod:`microlens.reports.noise_statistics`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

STATISTICS = ("chi2_dof", "acf_1d", "acf_10d", "acf_100d", "outlier_fraction",
              "season_offset_mmag")
"""Every statistic of :func:`curve_statistics`, in table order."""

LAG_WINDOWS = {"acf_1d": (0.5, 1.5), "acf_10d": (8.0, 12.0), "acf_100d": (80.0, 120.0)}
"""Separation of two nights [days] that counts for each lag."""

OUTLIER_SIGMA = 5.0
SEASON_GAP_DAYS = 60.0
MIN_SEASON_POINTS = 10
MIN_POINTS = 20
"""Fewest points of a curve with statistics (shorter curves are left out, counted)."""

MAG_EDGES = (17.0, 18.0, 19.0, 20.0)
"""Inner edges of the magnitude bins: < 17, 17-18, 18-19, 19-20, >= 20."""

MMAG_PER_RELATIVE_FLUX = 2500.0 / math.log(10.0)
"""Millimagnitudes per unit of relative flux change (small changes)."""


def seasons(times: np.ndarray) -> np.ndarray:
    """Season index of each (sorted) time: a new season after every gap > SEASON_GAP_DAYS."""
    return np.concatenate([[0], np.cumsum(np.diff(times) > SEASON_GAP_DAYS)])


def autocorrelations(times: np.ndarray, z: np.ndarray) -> dict[str, float]:
    z = z - z.mean()
    variance = float(np.mean(z ** 2))
    out = {}
    for name, (lo, hi) in LAG_WINDOWS.items():
        products, count = 0.0, 0
        # pairs (a, b), b after a, with times[b] - times[a] in [lo, hi]
        first = np.searchsorted(times, times + lo, side="left")
        last = np.searchsorted(times, times + hi, side="right")
        index = np.arange(times.size)
        for shift in range(max(int(np.min(first - index, initial=1)), 1),
                           int(np.max(last - index, initial=0)) + 1):
            a = index[:times.size - shift]
            b = a + shift
            keep = (b >= first[a]) & (b < last[a])
            products += float(np.sum(z[a[keep]] * z[b[keep]]))
            count += int(keep.sum())
        out[name] = (products / count / variance) if count and variance > 0 else math.nan
    return out


def last_days(times, flux, flux_err, window_days: float | None):
    """The points of the last ``window_days`` days of a curve (None: all of them)."""
    if window_days is None:
        return times, flux, flux_err
    keep = times > times[-1] - window_days
    return times[keep], flux[keep], flux_err[keep]


def curve_statistics(times, flux, flux_err) -> dict[str, float] | None:
    """The statistics of one curve without an event (module docstring).

    Parameters
    ----------
    times, flux, flux_err : array_like
        Times [days] (sorted), fluxes and their 1-sigma errors (any flux unit).

    Returns
    -------
    dict or None
        ``{statistic: value}`` (NaN where a statistic has too few pairs or seasons) and
        ``n_points``; None for fewer than :data:`MIN_POINTS` points.

    Raises
    ------
    ValueError
        For arrays of different lengths, unsorted times, non-finite values or errors <= 0.
    """
    t, f, e = (np.asarray(a, dtype=np.float64) for a in (times, flux, flux_err))
    if not (t.shape == f.shape == e.shape) or t.ndim != 1:
        raise ValueError(f"curve_statistics: times, flux and flux_err must be 1-d arrays of one "
                         f"length, got {t.shape}, {f.shape}, {e.shape}")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(f)) and np.all(np.isfinite(e))):
        raise ValueError("curve_statistics: times, flux and flux_err must be finite")
    if np.any(e <= 0):
        raise ValueError(f"curve_statistics: errors must be > 0, got {float(e.min())}")
    if np.any(np.diff(t) < 0):
        raise ValueError("curve_statistics: times must be sorted")
    if t.size < MIN_POINTS:
        return None
    w = 1.0 / e ** 2
    mean = float(np.sum(w * f) / np.sum(w))
    z = (f - mean) / e
    out = {"n_points": int(t.size), "chi2_dof": float(np.sum(z ** 2) / (t.size - 1))}
    out.update(autocorrelations(t, z))
    season = seasons(t)
    robust = 1.4826 * float(np.median(np.abs(z - np.median(z))))
    medians = np.array([np.median(f[season == s]) for s in range(season[-1] + 1)])
    deviation = np.abs(f - medians[season]) / e
    out["outlier_fraction"] = (float(np.mean(deviation > OUTLIER_SIGMA * robust))
                               if robust > 0 else math.nan)
    counts = np.bincount(season)
    usable = medians[counts >= MIN_SEASON_POINTS]
    if usable.size >= 2:
        level = float(np.median(usable))
        out["season_offset_mmag"] = float(MMAG_PER_RELATIVE_FLUX * np.sqrt(
            np.mean((usable / level - 1.0) ** 2)))
    else:
        out["season_offset_mmag"] = math.nan
    return out


def magnitude_bin_labels(edges: Sequence[float] = MAG_EDGES) -> list[str]:
    """``['< 17', '17-18', ..., '>= 20']``."""
    inner = [f"{a:g}-{b:g}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return [f"< {edges[0]:g}", *inner, f">= {edges[-1]:g}"]
