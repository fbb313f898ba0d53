"""Features of a light curve seen so far: the inputs of the ``features`` model kind.

The field's feature-based classifiers (e.g. Godines et al. 2019's LIA, random forests on
summary statistics; gradient boosting on PSPL-fit statistics) describe a light curve by a fixed
vector of numbers and classify that vector. :func:`curve_features` computes one such vector for
one light curve (or the first part of one); :func:`prefix_features` computes them for many
events at fixed fractions of each curve, in parallel, with the same results for any number of
workers. :mod:`microlens.models.features` trains gradient boosting on them.

Two groups of features (:data:`FEATURE_NAMES`, in that order):

* **PSPL fit**, from the classical peer's fit (:func:`microlens.models.peer.light_curve_features`
  with its robust defaults: error bars rescaled by the robust PSPL residual scale, isolated
  outliers left out): the fit's Δχ² against a constant, its chi-squared per degree of freedom,
  the peer's ``excess`` and ``anomaly`` statistics, the fitted ``u_0``, ``t_E`` and blending,
  ``t_0`` relative to the last observation, and statistics of the fit's normalised residuals
  (largest excursion, longest run of one sign, a runs test).
* **Summary statistics** of the fluxes, robust where a peak must not spoil them: the amplitude
  over the baseline in units of the point-to-point scatter, skewness, kurtosis, the von Neumann
  ratio, the share of points 3 sigma above the baseline, a Stetson-like J index, the excess of
  the latest points, the number of observations, the time span, the median interval and the
  median relative error.

Time enters only as differences: every feature is computed with times counted from the last
observation and rounded to 1e-6 days (:data:`TIME_DECIMALS`), so adding a constant to all times
gives the same features, bit for bit, unless the float64 sum itself loses more than that. The
event duration enters only as the curve shows it (the span and count of the observations seen,
the fitted ``t_E``); nothing reads the simulator's parameters.

**Missing values.** A feature that is undefined for a curve (no PSPL fit below
:data:`~microlens.models.peer.MIN_OBSERVATIONS` points or when every start failed, a statistic of
a constant series, too few points) is NaN, and so is any non-finite value. Gradient boosting
(``HistGradientBoostingClassifier`` and the numpy predictor of :mod:`microlens.models.features`)
treats NaN as missing and sends it down the side learned in training, so no fill value is
invented. Where the peer itself reports "no evidence" for a curve without a fit
(``dchi2_event``, ``excess``, ``anomaly`` = 0), those zeros are kept.

Cost: the PSPL fit dominates, ~10-60 ms per 1,000-point curve on one core (see
:mod:`microlens.models.peer`); the statistics add < 1 ms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from microlens.models.holdout import observations_seen
from microlens.models.peer import (
    DEFAULT_OUTLIER_CLIP,
    MIN_OBSERVATIONS,
    PSPL_PARAMETERS,
    _check_rows,
    _check_workers,
    check_fractions,
    clip_isolated,
    light_curve_features,
    parallel_row_chunks,
)
from microlens.simulation.pspl_fit import pspl_magnification, running_median

FEATURE_NAMES: tuple[str, ...] = (
    # -- PSPL fit (robust peer options), NaN where no fit --------------------------------------
    "dchi2_event",  # chi2_flat - chi2_pspl (errors rescaled): evidence for an event (0: no fit)
    "dchi2_per_observation",  # dchi2_event / n
    "chi2_pspl_dof",  # chi2_pspl / (n - outliers - 5): how well a single lens fits
    "chi2_flat_dof",  # chi2_flat / (n - outliers - 1): how far from constant
    "excess",  # the peer's (chi2_pspl - dof) / sqrt(2 dof) (0: no fit)
    "anomaly",  # the peer's best top-hat bump/dip Δχ² in the PSPL residuals (0: no fit)
    "anomaly_width",  # its window [observations]
    "anomaly_tau",  # (window mid time - t_0) / t_E: where the anomaly sits on the event
    "error_scale",  # robust factor the errors were scaled up by (>= 1)
    "outlier_fraction",  # share of isolated outliers left out of the fit
    "u_0",  # fitted impact parameter [Einstein radii]
    "t_E",  # fitted Einstein time [days]
    "t_E_over_span",  # t_E / time span of the observations seen
    "t_0_from_last",  # fitted t_0 - last observation time [days] (< 0: peak already seen)
    "tau_last",  # (last observation - t_0) / t_E
    "source_fraction",  # f_source / (f_source + f_blend): 1 unblended
    "fit_peak_excess",  # f_source (A(u_0) - 1) / (f_source + f_blend): fitted peak brightening
    "max_abs_residual",  # largest |normalised residual| after isolated-outlier clipping
    "longest_run_fraction",  # longest run of same-sign residuals / n
    "runs_z",  # Wald-Wolfowitz z of the residual signs (< 0: clumped, as a deviation)
    # -- summary statistics ---------------------------------------------------------------------
    "amplitude_sigma",  # (max of 3-point running median - median flux) / point-to-point scatter
    "skewness",  # of the fluxes
    "kurtosis",  # excess kurtosis of the fluxes
    "von_neumann",  # mean squared successive difference / variance (small: smooth trend)
    "fraction_above_3sigma",  # share of points with (flux - median) / error > 3
    "stetson_j",  # Stetson-like J: mean sign(P) sqrt|P| of successive products of deviations
    "recent_excess_sigma",  # (median of the last 5 fluxes - median flux) / their median error
    "n_observations",  # observations seen
    "time_span",  # last - first observation time [days]
    "median_interval",  # median time between observations [days]
    "median_relative_error",  # median flux error / |median flux|
)  # fmt: skip
"""Names of the features, in the order of the last axis of :func:`prefix_features`."""

N_FEATURES = len(FEATURE_NAMES)

TIME_DECIMALS = 6
"""Times are counted from the last observation and rounded to ``10**-TIME_DECIMALS`` days
(0.09 s), far below any cadence."""

RECENT_POINTS = 5
"""Latest observations behind ``recent_excess_sigma``."""

_MAD_TO_SIGMA = 1.482602218505602  # 1 / Phi^-1(3/4): MAD of a Gaussian -> its sigma


def _point_to_point_scatter(flux: np.ndarray, err: np.ndarray) -> float:
    """Robust scatter of the baseline: ``1.4826 median |F_{i+1} - F_i| / sqrt 2``.

    Successive differences cancel any trend slower than the cadence (a peak), so a long event
    does not inflate the scatter as it inflates the MAD of the fluxes; a constant series falls
    back to the median error."""
    if flux.size >= 2:
        scatter = _MAD_TO_SIGMA * float(np.median(np.abs(np.diff(flux)))) / math.sqrt(2.0)
        if scatter > 0:
            return scatter
    return float(np.median(err))


def _moments(flux: np.ndarray) -> tuple[float, float, float]:
    """(variance, skewness, excess kurtosis) of the fluxes; NaN where undefined."""
    if flux.size < 3:
        return math.nan, math.nan, math.nan
    d = flux - flux.mean()
    m2 = float(np.mean(d * d))
    if not m2 > 0:
        return 0.0, math.nan, math.nan
    return m2, float(np.mean(d**3)) / m2**1.5, float(np.mean(d**4)) / (m2 * m2) - 3.0


def _runs(residuals: np.ndarray) -> tuple[float, float]:
    """(longest run of one sign / n, Wald-Wolfowitz z of the number of sign runs)."""
    signs = residuals > 0
    n = signs.size
    if n < 2:
        return math.nan, math.nan
    changes = np.flatnonzero(signs[1:] != signs[:-1])
    bounds = np.concatenate([[-1], changes, [n - 1]])
    longest = int(np.max(np.diff(bounds))) / n
    n_pos = int(signs.sum())
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0:
        return longest, math.nan
    runs = changes.size + 1
    mean = 2.0 * n_pos * n_neg / n + 1.0
    var = (mean - 1.0) * (mean - 2.0) / (n - 1.0)
    return longest, (runs - mean) / math.sqrt(var) if var > 0 else math.nan


def curve_features(times: np.ndarray, flux: np.ndarray, flux_err: np.ndarray) -> np.ndarray:
    """The :data:`FEATURE_NAMES` vector of one light curve (float64, NaN where undefined).

    Parameters
    ----------
    times, flux, flux_err : ndarray
        Observations in time order [days, flux (any unit; the simulator's baseline is 1),
        1-sigma flux errors > 0]. Only differences of the times are used.

    Returns
    -------
    ndarray ``(len(FEATURE_NAMES),)`` float64
        Non-finite values are NaN (see the module docstring).
    """
    times, flux, err = (np.asarray(a, dtype=np.float64).reshape(-1)
                        for a in (times, flux, flux_err))
    if times.size == 0:
        raise ValueError("a light curve needs at least one observation, got none")
    # days before the last observation, on a grid of TIME_RESOLUTION: no absolute time, and
    # the rounding of the subtraction cannot steer the fit (a flat curve's PSPL fit is
    # degenerate, so bits of difference in the times would otherwise move its parameters)
    times = np.round(times - times[-1], TIME_DECIMALS)
    n = int(times.size)
    out = dict.fromkeys(FEATURE_NAMES, math.nan)

    # -- PSPL fit -----------------------------------------------------------------------------
    fit = light_curve_features(times, flux, err)  # the peer's robust defaults
    kept = n - int(fit["outliers"])
    out.update(dchi2_event=fit["dchi2_event"], dchi2_per_observation=fit["dchi2_event"] / n,
               excess=fit["excess"], anomaly=fit["anomaly"], error_scale=fit["error_scale"],
               outlier_fraction=fit["outliers"] / n)
    if kept > 1:
        out["chi2_flat_dof"] = fit["chi2_flat"] / (kept - 1)
    if math.isfinite(fit["t_0"]):  # a PSPL fit exists
        t_0, u_0, t_E = fit["t_0"], fit["u_0"], fit["t_E"]
        f_s, f_b = fit["f_source"], fit["f_blend"]
        span = float(times[-1] - times[0])
        total = f_s + f_b
        out.update(chi2_pspl_dof=fit["chi2_pspl"] / max(kept - PSPL_PARAMETERS, 1),
                   anomaly_width=float(fit["anomaly_width"]),
                   anomaly_tau=(fit["anomaly_t"] - t_0) / t_E, u_0=u_0, t_E=t_E,
                   t_E_over_span=t_E / span if span > 0 else math.nan,
                   t_0_from_last=t_0, tau_last=-t_0 / t_E)
        if total != 0:
            peak = float(pspl_magnification(np.array([t_0]), t_0, u_0, t_E)[0])
            out.update(source_fraction=f_s / total, fit_peak_excess=f_s * (peak - 1.0) / total)
        model = f_s * pspl_magnification(times, t_0, u_0, t_E) + f_b
        residuals = clip_isolated((flux - model) / (err * fit["error_scale"]),
                                  DEFAULT_OUTLIER_CLIP)
        out["max_abs_residual"] = float(np.max(np.abs(residuals)))
        out["longest_run_fraction"], out["runs_z"] = _runs(residuals)
    elif n < MIN_OBSERVATIONS:
        out["anomaly_width"] = 0.0

    # -- summary statistics -------------------------------------------------------------------
    median = float(np.median(flux))
    scatter = _point_to_point_scatter(flux, err)
    smooth = running_median(flux, 3) if n >= 3 else flux
    out["amplitude_sigma"] = (float(np.max(smooth)) - median) / scatter
    variance, out["skewness"], out["kurtosis"] = _moments(flux)
    if n >= 3 and variance > 0:
        out["von_neumann"] = float(np.mean(np.diff(flux) ** 2)) / (variance * n / (n - 1))
    out["fraction_above_3sigma"] = float(np.mean((flux - median) / err > 3.0))
    if n >= 2:
        delta = math.sqrt(n / (n - 1.0)) * (flux - median) / err
        product = delta[1:] * delta[:-1]
        out["stetson_j"] = float(np.mean(np.sign(product) * np.sqrt(np.abs(product))))
        out["median_interval"] = float(np.median(np.diff(times)))
    recent = slice(max(0, n - RECENT_POINTS), n)
    out["recent_excess_sigma"] = ((float(np.median(flux[recent])) - median)
                                  / float(np.median(err[recent])))
    out.update(n_observations=float(n), time_span=float(times[-1] - times[0]))
    if median != 0:
        out["median_relative_error"] = float(np.median(err)) / abs(median)
    values = np.array([out[name] for name in FEATURE_NAMES], dtype=np.float64)
    values[~np.isfinite(values)] = np.nan
    return values


def _event_features(times, flux, err, fractions: tuple[float, ...]) -> np.ndarray:
    """Worker: one event's features at every fraction, ``(len(fractions), N_FEATURES)``."""
    out = np.empty((len(fractions), N_FEATURES))
    for j, fraction in enumerate(fractions):
        k = int(observations_seen(times.size, fraction))
        out[j] = curve_features(times[:k], flux[:k], err[:k])
    return out


def _chunk_features(events: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                    fractions: tuple[float, ...]) -> np.ndarray:
    return np.stack([_event_features(*event, fractions) for event in events])


def prefix_features(store, rows: Sequence[int], fractions: Sequence[float], *,
                    workers: int = 1, progress: bool = False) -> np.ndarray:
    """Features of events ``rows`` on the first part of each curve, at each fraction.

    The prefix at fraction ``f`` of an event of ``n`` observations is its observations
    ``0 .. positions_at_fraction(n, f)`` inclusive, i.e. the first ``ceil(f n)`` (at least 1;
    :func:`microlens.models.holdout.observations_seen`, the convention of the
    early-detection
    curves and the classical peer). Nothing after the prefix is read.

    Parameters
    ----------
    store : LightCurveStore
        Anything with ``len()`` and ``.event(row)`` (a dict with ``times, flux, flux_err``).
    rows : sequence of int
        Store rows (any split: the caller decides which split it may read); not empty.
    fractions : sequence of float
        Shares of each event's observations, each in (0, 1].
    workers : int
        Processes; > 1 computes events in parallel (``ProcessPoolExecutor``, forkserver). The
        result is identical for any number of workers (each event is computed alone).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    ndarray ``(len(rows), len(fractions), len(FEATURE_NAMES))`` float64
        ``out[i, j]`` belongs to ``rows[i]`` at ``fractions[j]``; NaN where undefined.
    """
    from tqdm.auto import tqdm

    fractions = check_fractions(fractions)
    workers = _check_workers(workers)
    rows = _check_rows(store, rows)
    out = np.empty((rows.size, len(fractions), N_FEATURES))
    bar = tqdm(total=rows.size, desc="curve features", unit="ev", disable=not progress)

    def load(row):
        ev = store.event(int(row))
        return ev["times"], ev["flux"], ev["flux_err"]

    try:
        if workers == 1:
            for i, row in enumerate(rows):
                out[i] = _event_features(*load(row), fractions)
                bar.update(1)
        else:
            parallel_row_chunks(_chunk_features, load, rows, (fractions,), workers, out, bar)
    finally:
        bar.close()
    return out


__all__ = [
    "FEATURE_NAMES", "N_FEATURES", "RECENT_POINTS", "TIME_DECIMALS", "curve_features",
    "prefix_features",
]  # fmt: skip
