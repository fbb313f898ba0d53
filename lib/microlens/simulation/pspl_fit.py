"""The point-source point-lens (PSPL) model and its weighted least-squares fit.

One place for the single-lens fit that two parts of the package need: the detectability columns of
simulated events (:mod:`microlens.simulation.detectability`: how far a binary's data are from the
best single lens) and the classical peer (:mod:`microlens.models.peer`: the astronomer's PSPL fit
from data-driven starts). The magnification itself (:func:`pspl_magnification`) lives here too, so
that the simulator, the fit and the peer share one formula without importing one another.

The fit is of a blended PSPL ``flux ≈ f_source * A(t; t_0, u_0, t_E) + f_blend``. It profiles out
the two linear fluxes (source and blend) in closed form, so the non-linear least squares runs
over ``(t_0, ln u_0, ln t_E)`` only, from several starts (:func:`pspl_starts`).
"""

from __future__ import annotations

import math

import numpy as np


def pspl_magnification(t: np.ndarray, t_0: float, u_0: float, t_E: float) -> np.ndarray:
    """Point-source point-lens (Paczynski) magnification.

    Parameters
    ----------
    t : ndarray
        Times [days].
    t_0, u_0, t_E : float
        Time of closest approach [days], impact parameter [Einstein radii], Einstein time [days].

    Returns
    -------
    ndarray
        ``A(u) = (u^2 + 2) / (u sqrt(u^2 + 4))`` with ``u^2 = u_0^2 + ((t - t_0) / t_E)^2``.
    """
    u2 = u_0 * u_0 + ((np.asarray(t, dtype=np.float64) - t_0) / t_E) ** 2
    return (u2 + 2.0) / np.sqrt(u2 * (u2 + 4.0))


def flat_chi2(flux: np.ndarray, err: np.ndarray) -> float:
    """Chi-squared of the best constant-flux model (weighted mean)."""
    w = 1.0 / err**2
    mean = np.sum(w * flux) / np.sum(w)
    return float(np.sum(w * (flux - mean) ** 2))


def _linear_fluxes(mag: np.ndarray, flux: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Weighted least-squares ``flux ≈ a * mag + b`` in closed form (2 x 2 normal equations)."""
    sw, sa, sf = w.sum(), (w * mag).sum(), (w * flux).sum()
    saa, saf = (w * mag * mag).sum(), (w * mag * flux).sum()
    det = saa * sw - sa * sa
    if det <= 1e-12 * max(saa * sw, 1e-300):  # magnification constant over the data
        return 0.0, sf / sw
    a = (saf * sw - sa * sf) / det
    return a, (sf - a * sa) / sw


def fit_pspl(times: np.ndarray, flux: np.ndarray, err: np.ndarray,
             starts: list[tuple[float, float, float]]) -> tuple[float, dict]:
    """Best blended-PSPL fit ``flux ≈ f_source * A(t; t_0, u_0, t_E) + f_blend``.

    Parameters
    ----------
    times, flux, err : ndarray
        Observations (days, baseline flux units).
    starts : list of (t_0, u_0, t_E)
        Starting points; the best final chi-squared wins.

    Returns
    -------
    chi2 : float
        Chi-squared of the best fit.
    best : dict
        ``t_0, u_0, t_E, f_source, f_blend`` of the best fit.
    """
    # Imported here: scipy.optimize takes ~1 s to import, and the simulator imports this module
    # for pspl_magnification alone.
    from scipy.optimize import least_squares

    w = 1.0 / err**2
    sqrt_w = 1.0 / err

    def model(p):
        return pspl_magnification(times, *_physical(p))

    def residuals(p):
        mag = model(p)
        a, b = _linear_fluxes(mag, flux, w)
        return (a * mag + b - flux) * sqrt_w

    best_chi2, best_p = math.inf, None
    for t_0, u_0, t_E in starts:
        x0 = np.array([t_0, math.log(max(u_0, 1e-4)), math.log(max(t_E, 0.1))])
        try:
            result = least_squares(residuals, x0, method="lm", xtol=1e-5, ftol=1e-5, max_nfev=200)
        except ValueError:  # non-finite residuals at a wild step; other starts remain
            continue
        chi2 = float(np.sum(result.fun**2))
        if chi2 < best_chi2:
            best_chi2, best_p = chi2, result.x
    if best_p is None:
        return math.nan, {}
    a, b = _linear_fluxes(model(best_p), flux, w)
    t_0, u_0, t_E = _physical(best_p)
    return best_chi2, dict(t_0=t_0, u_0=u_0, t_E=t_E, f_source=a, f_blend=b)


def _physical(p) -> tuple[float, float, float]:
    """``(t_0, ln u_0, ln t_E)`` -> ``(t_0, u_0, t_E)``, clamped so that wild trial steps stay
    finite (u_0 in [1e-5, 20], t_E in [0.01, 1e4] days)."""
    return (float(p[0]), math.exp(min(max(p[1], -11.5), 3.0)),
            math.exp(min(max(p[2], -4.6), 9.2)))


Start = tuple[float, float, float]


def running_median(x: np.ndarray, width: int) -> np.ndarray:
    """Median of each point and its ``width // 2`` neighbours on either side (odd ``width``).

    The ends are padded by reflection (without repeating the end point), so an isolated spike at
    the first or last observation is not copied into its own window. Series shorter than the
    window get their overall median everywhere. Memory is ``O(width * N)``.
    """
    x = np.asarray(x, dtype=np.float64)
    half = width // 2
    if x.size <= 2 * half:
        return np.full(x.size, np.median(x) if x.size else math.nan)
    padded = np.pad(x, half, mode="reflect")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1), axis=1)


EDGE_FRACTION = 0.1
"""A smoothed peak within this share of the observations of either end adds an edge start."""


def pspl_starts(times: np.ndarray, flux: np.ndarray, err: np.ndarray,
                guess: Start | None = None) -> list[Start]:
    """Starting points for :func:`fit_pspl`, from the data (and the guess, if any).

    With a guess: the guess and one at the data's brightest point (for binaries whose brightest
    feature is not at the guessed ``t_0``). Without one:

    * two at the brightest point with ``t_E`` a twentieth and an eighth of the span (the original
      starts; good for events a few per cent of a short span long);
    * two at the peak of the 5-point running median of the significance (so a single outlier
      does not pick the peak) with ``t_E`` from the duration ``d`` over which the smoothed excess
      flux stays above half its peak: ``t_E = 3 d`` (``u_0 = 0.1``) and ``t_E = 0.9 d``
      (``u_0 = 0.5``), the half-maximum widths of PSPL curves with those impact parameters
      (independent of blending). On long, multi-season curves the span-based ``t_E`` is far too
      long, and these starts are what reach the event;
    * when that peak lies within :data:`EDGE_FRACTION` of the observations of an end (the curve
      starts bright and declining, or ends rising), one at the end observation and one half a
      duration beyond it, so that a ``t_0`` outside the data is within reach.

    A peak next to a seasonal gap needs no special start: the fit moves ``t_0`` into the gap.
    """
    times, flux, err = (np.asarray(a, dtype=np.float64) for a in (times, flux, err))
    significance = (flux - np.median(flux)) / err
    peak = float(times[np.argmax(significance)])
    if guess is not None:
        return [guess, (peak, guess[1], guess[2])]
    span = float(times[-1] - times[0]) if times.size > 1 else 1.0
    starts = [(peak, 0.1, span / 20), (peak, 0.5, span / 8)]
    if times.size < 5:
        return starts
    smooth = running_median(significance, 5)
    i = int(np.argmax(smooth))
    excess = running_median(flux, 5) - np.median(flux)
    half = 0.5 * excess[i]
    below = np.flatnonzero(excess <= half)
    left, right = below[below < i], below[below > i]
    t_left = times[left[-1]] if left.size else None
    t_right = times[right[0]] if right.size else None
    step = float(np.median(np.diff(times)))
    if t_left is None and t_right is None:
        duration = span
    elif t_left is None:
        duration = 2.0 * (t_right - times[i])
    elif t_right is None:
        duration = 2.0 * (times[i] - t_left)
    else:
        duration = float(t_right - t_left)
    duration = min(max(duration, 2.0 * step, 1e-2), 1e4)
    t_peak = float(times[i])
    starts += [(t_peak, 0.1, 3.0 * duration), (t_peak, 0.5, 0.9 * duration)]
    edge = max(1, int(EDGE_FRACTION * times.size))
    if i < edge:
        starts += [(float(times[0]), 0.3, duration), (float(times[0]) - 0.5 * duration, 0.3,
                                                      duration)]
    elif i >= times.size - edge:
        starts += [(float(times[-1]), 0.3, duration), (float(times[-1]) + 0.5 * duration, 0.3,
                                                       duration)]
    return starts


__all__ = [
    "EDGE_FRACTION", "Start", "fit_pspl", "flat_chi2", "pspl_magnification", "pspl_starts",
    "running_median",
]
