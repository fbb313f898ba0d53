"""The classical online point-lens fit, with Gaussian intervals from its covariance.

What an observer does while an event unfolds: fit a blended point-source point-lens (PSPL) model
``flux ≈ f_source A(t; t_0, u_0, t_E) + f_blend`` to the observations so far and quote each
parameter as a best value with a 1-sigma error from the fit's covariance. This module gives that
answer for one curve (:func:`fit_point_lens`) and for every cut of many store events
(:func:`online_fit`), as the classical reference for learned parameter estimates.

**The fit** is the classical peer's robust one (:func:`microlens.models.peer.robust_pspl_fit`,
the defaults of :func:`~microlens.models.peer.light_curve_features`): weighted least squares
over ``(t_0, ln u_0, ln t_E)`` with the two fluxes profiled out, from data-driven starts; the
error scale ``k = error_scale(residuals) >= 1`` (a robust factor by which the errors are too
small); isolated outliers dropped and the fit redone once.

**The covariance** is the Gauss-Newton one at the best fit, on the kept points: with ``J`` the
analytic Jacobian of the weighted residuals ``(flux - model) / flux_err`` with respect to the
five parameters ``(t_0, ln u_0, ln t_E, f_source, f_blend)``, ``C = k^2 (J^T J)^-1``. It is
carried by the delta method (``G C G^T``, ``G`` the Jacobian of the map) to the reported
:data:`PARAMETERS` ``(t_0, log10 t_E, log10 u_0, f_s)``, ``f_s = f_source / (f_source +
f_blend)``; ``sigma`` is the square root of its diagonal. ``mean +- sigma`` is then the usual
68 % interval, good where the likelihood is close to Gaussian in these parameters (well-sampled
peaks); on a partial curve far from the peak it is a local, often too narrow, statement.

**Degenerate fits** (``ok=False``, every ``sigma`` NaN, ``reason`` says which rule), checked in
this order:

1. ``"too few points"``: fewer than :data:`~microlens.models.peer.MIN_OBSERVATIONS` (6)
   observations; ``mean`` is NaN.
2. ``"every start failed"``: no start of the fit ended with a finite chi-squared; ``mean`` NaN.
3. ``"u_0 at a clamp"`` / ``"t_E at a clamp"``: the fit ran into the bounds the fit's parameter
   map keeps trial steps in (``u_0`` in [1e-5, 20], ``t_E`` in [0.01, 1e4] days; within a
   relative 1e-6 of one): no event in the data (a flat curve drives ``u_0`` to 20, where the
   magnification is ~1), or one the data cannot bound.
4. ``"no baseline flux"``: ``f_source + f_blend <= 0``, where ``f_s`` is undefined (its mean is
   NaN, the others are kept).
5. ``"singular covariance"``: ``J^T J``, scaled to unit diagonal, has a condition number above
   :data:`MAX_CONDITION` or a zero column (a parameter the kept points do not constrain), or
   the propagated variances are not finite and positive.

In cases 3-5 ``mean`` is the best fit. Observers who average over fits must say how many were
left out and why: the left-out fits are those without an event in the data or with an event
the data do not yet pin down, so statistics over ``ok`` fits alone are conditioned on a
detectable event.

Usage::

    from microlens.models.online_fit import fit_point_lens, online_fit
    fit = fit_point_lens(times, flux, flux_err)       # fit["mean"], fit["sigma"], fit["ok"]
    result = online_fit(store, rows, cuts, workers=2)  # result["mean"]: (R, J, 4)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from microlens.models.peer import (
    MIN_OBSERVATIONS,
    _check_rows,
    _check_workers,
    parallel_row_chunks,
    robust_pspl_fit,
)
from microlens.simulation.pspl_fit import flat_chi2, pspl_magnification

PARAMETERS: tuple[str, ...] = ("t_0", "log10_t_E", "log10_u_0", "f_s")
"""The estimated point-lens parameters, in the spaces where the Gaussian interval is used:
``t_0`` [days, in the curve's own time frame], ``log10`` of ``t_E`` [days], ``log10`` of
``u_0`` (``u_0 > 0``) and ``f_s = f_source / (f_source + f_blend)``, the source's share of the
baseline flux (the blending fraction)."""

MAX_CONDITION = 1e12
"""Largest condition number of ``J^T J`` scaled to unit diagonal (the parameters' correlation
form) for which the covariance counts as estimable (rule 5 of the module docstring)."""

U0_CLAMPS = (math.exp(-11.5), math.exp(3.0))
"""``u_0`` bounds of the fit's parameter map (:mod:`microlens.simulation.pspl_fit`): a fit at
one of them is degenerate (rule 3)."""

TE_CLAMPS = (math.exp(-4.6), math.exp(9.2))
"""``t_E`` bounds [days] of the fit's parameter map: a fit at one of them is degenerate."""

CLAMP_TOLERANCE = 1e-6
"""Relative distance from a clamp within which a fitted ``u_0`` or ``t_E`` counts as at it."""

_LN10 = math.log(10.0)

RESULT_DTYPE = np.dtype([("mean", np.float64, (len(PARAMETERS),)),
                         ("sigma", np.float64, (len(PARAMETERS),)), ("ok", np.bool_),
                         ("dchi2", np.float64)])
"""One fit in :func:`online_fit`'s working array (shared by the worker processes)."""


def _check_curve(times, flux, flux_err) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The observations as float64 1-D arrays; ValueError naming what is wrong."""
    times, flux, err = (np.asarray(a, dtype=np.float64).reshape(-1)
                        for a in (times, flux, flux_err))
    if not times.size == flux.size == err.size:
        raise ValueError(f"times, flux and flux_err differ in length: {times.size}, {flux.size}, "
                         f"{err.size}")
    for name, values in (("times", times), ("flux", flux), ("flux_err", err)):
        if not np.all(np.isfinite(values)):
            bad = np.flatnonzero(~np.isfinite(values))
            raise ValueError(f"{name} must be finite; non-finite at observation(s) "
                             f"{bad[:5].tolist()}")
    if np.any(err <= 0):
        bad = np.flatnonzero(err <= 0)
        raise ValueError(f"flux_err must be positive; non-positive at observation(s) "
                         f"{bad[:5].tolist()}")
    if np.any(np.diff(times) < 0):
        bad = np.flatnonzero(np.diff(times) < 0) + 1
        raise ValueError(f"times must be sorted (non-decreasing); unsorted at observation(s) "
                         f"{bad[:5].tolist()}")
    return times, flux, err


def model_jacobian(times: np.ndarray, t_0: float, u_0: float, t_E: float, f_source: float
                   ) -> np.ndarray:
    """Derivatives of the blended PSPL model flux with respect to its five parameters.

    Parameters
    ----------
    times : ndarray
        Times [days].
    t_0, u_0, t_E, f_source : float
        The model's parameters (the blend flux enters linearly, with derivative 1).

    Returns
    -------
    ndarray ``(len(times), 5)``
        ``d model / d (t_0, ln u_0, ln t_E, f_source, f_blend)``, from
        ``dA/du = -8 / (u^2 (u^2 + 4)^{3/2})`` and ``u^2 = u_0^2 + tau^2``,
        ``tau = (t - t_0) / t_E``.
    """
    t = np.asarray(times, dtype=np.float64)
    tau = (t - t_0) / t_E
    u2 = u_0 * u_0 + tau * tau
    u = np.sqrt(u2)
    da_du = -8.0 / (u2 * (u2 + 4.0) ** 1.5)
    scale = f_source * da_du / u  # d model / du times 1 / u
    out = np.empty((t.size, 5))
    out[:, 0] = scale * (-tau / t_E)  # du/dt_0 = -tau / (t_E u)
    out[:, 1] = scale * u_0 * u_0  # du/dln u_0 = u_0^2 / u
    out[:, 2] = scale * (-tau * tau)  # du/dln t_E = -tau^2 / u
    out[:, 3] = pspl_magnification(t, t_0, u_0, t_E)
    out[:, 4] = 1.0
    return out


def _at_clamp(value: float, clamps: tuple[float, float]) -> bool:
    return any(abs(value - c) <= CLAMP_TOLERANCE * c for c in clamps)


def _covariance(times, err, best: dict, k: float) -> np.ndarray | None:
    """``k^2 (J^T J)^-1`` over ``(t_0, ln u_0, ln t_E, f_source, f_blend)``, or None when it
    is not estimable (rule 5)."""
    jac = model_jacobian(times, best["t_0"], best["u_0"], best["t_E"], best["f_source"])
    jac /= err[:, None]
    normal = jac.T @ jac
    if not np.all(np.isfinite(normal)):
        return None
    scale = np.sqrt(np.diag(normal))
    if not np.all(scale > 0):
        return None
    scaled = normal / np.outer(scale, scale)
    if not np.isfinite(cond := np.linalg.cond(scaled)) or cond > MAX_CONDITION:
        return None
    return k * k * np.linalg.inv(scaled) / np.outer(scale, scale)


def _no_fit(n: int, reason: str, chi2: float = math.nan, k: float = 1.0,
            mean: np.ndarray | None = None, dchi2: float = math.nan) -> dict:
    nan = np.full(len(PARAMETERS), math.nan)
    return dict(mean=nan.copy() if mean is None else mean, sigma=nan, ok=False, reason=reason,
                n=n, chi2=chi2, error_scale=k, dchi2=dchi2)


def fit_point_lens(times: np.ndarray, flux: np.ndarray, flux_err: np.ndarray) -> dict:
    """Robust point-lens fit of one light curve (so far) with 1-sigma errors.

    Parameters
    ----------
    times, flux, flux_err : ndarray
        Observations in time order [days, baseline flux units, 1-sigma flux errors]: equal
        lengths, finite, errors positive, times non-decreasing (else ValueError naming the
        problem).

    Returns
    -------
    dict
        ``mean`` (ndarray ``(4,)``, the best fit in :data:`PARAMETERS` order), ``sigma``
        (ndarray ``(4,)``, 1-sigma errors from the covariance, NaN where not estimable),
        ``ok`` (bool; False for the degenerate fits of the module docstring, whose sigmas are
        all NaN), ``reason`` (``""`` when ok, else the rule that failed), ``n`` (observations
        the fit kept: all but the isolated outliers), ``chi2`` (the fit's chi-squared on them
        with the errors as given), ``dchi2`` (the flat line's chi-squared on them less the
        fit's; NaN without a fit) and ``error_scale`` (``k``, by which the errors were scaled
        up in the covariance).
    """
    times, flux, err = _check_curve(times, flux, flux_err)
    n = int(times.size)
    if n < MIN_OBSERVATIONS:
        return _no_fit(n, "too few points")
    fit = robust_pspl_fit(times, flux, err)
    if fit is None:
        return _no_fit(n, "every start failed")
    best, kept, k = fit["best"], fit["kept"], float(fit["error_scale"])
    n_kept, chi2 = int(kept.sum()), float(fit["chi2"])
    dchi2 = flat_chi2(flux[kept], err[kept]) - chi2
    total = best["f_source"] + best["f_blend"]
    mean = np.array([best["t_0"], math.log10(best["t_E"]), math.log10(best["u_0"]),
                     best["f_source"] / total if total > 0 else math.nan])
    if _at_clamp(best["u_0"], U0_CLAMPS):
        return _no_fit(n_kept, "u_0 at a clamp", chi2, k, mean, dchi2)
    if _at_clamp(best["t_E"], TE_CLAMPS):
        return _no_fit(n_kept, "t_E at a clamp", chi2, k, mean, dchi2)
    if not total > 0:
        return _no_fit(n_kept, "no baseline flux", chi2, k, mean, dchi2)
    cov = _covariance(times[kept], err[kept], best, k)
    if cov is not None:
        g = np.zeros((len(PARAMETERS), 5))
        g[0, 0] = 1.0
        g[1, 2] = 1.0 / _LN10
        g[2, 1] = 1.0 / _LN10
        g[3, 3] = best["f_blend"] / total**2
        g[3, 4] = -best["f_source"] / total**2
        variance = np.diag(g @ cov @ g.T)
        if np.all(np.isfinite(variance)) and np.all(variance > 0):
            return dict(mean=mean, sigma=np.sqrt(variance), ok=True, reason="", n=n_kept,
                        chi2=chi2, error_scale=k, dchi2=dchi2)
    return _no_fit(n_kept, "singular covariance", chi2, k, mean, dchi2)


def _event_fits(times, flux, err, cuts) -> np.ndarray:
    """Worker: the fits of one event at each of its cuts, ``(len(cuts),)`` of RESULT_DTYPE."""
    out = np.zeros(len(cuts), RESULT_DTYPE)
    out["mean"] = out["sigma"] = out["dchi2"] = math.nan
    for j, cut in enumerate(cuts):
        if cut <= 0:
            continue
        fit = fit_point_lens(times[:cut], flux[:cut], err[:cut])
        out["mean"][j], out["sigma"][j], out["ok"][j] = fit["mean"], fit["sigma"], fit["ok"]
        out["dchi2"][j] = fit["dchi2"]
    return out


def _chunk_fits(events: list[tuple[np.ndarray, ...]]) -> np.ndarray:
    return np.stack([_event_fits(*event) for event in events])


def online_fit(store, rows: Sequence[int], cuts, *, workers: int = 1,
               progress: bool = False) -> dict:
    """:func:`fit_point_lens` of store events on their first observations, at several cuts.

    Parameters
    ----------
    store : LightCurveStore
        Anything with ``len()`` and ``.event(row)`` (a dict with ``times, flux, flux_err``).
    rows : sequence of int
        Store rows, in the order wanted.
    cuts : array-like of int, ``(len(rows), J)``
        ``cuts[i, j]``: fit event ``rows[i]`` on its first ``cuts[i, j]`` observations; 0 or
        negative: no fit (NaN, not ok). A cut beyond the event's observations is a ValueError.
    workers : int
        Processes; > 1 fits events in parallel. The results do not depend on it.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    dict
        ``mean`` (float64 ``(R, J, 4)``, :data:`PARAMETERS` order), ``sigma`` (float64
        ``(R, J, 4)``), ``ok`` (bool ``(R, J)``) and ``dchi2`` (float64 ``(R, J)``, the
        chi-squared improvement over a flat line), entry ``[i, j]`` for ``rows[i]`` at
        ``cuts[i, j]``.
    """
    from tqdm.auto import tqdm

    workers = _check_workers(workers)
    rows = _check_rows(store, rows)
    cuts = np.asarray(cuts)
    if cuts.ndim != 2 or cuts.shape[0] != rows.size:
        raise ValueError(f"cuts must be a 2-D array with one row per event, shape "
                         f"({rows.size}, J); got shape {cuts.shape}")
    if cuts.size and not np.issubdtype(cuts.dtype, np.integer):
        raise ValueError(f"cuts must be integer observation counts, got dtype {cuts.dtype}")
    cuts = cuts.astype(np.int64)

    def check_length(position: int, n: int) -> None:
        if cuts.shape[1] and cuts[position].max() > n:
            raise ValueError(f"cuts for row {int(rows[position])} reach "
                             f"{int(cuts[position].max())} observations, but the event has {n}")

    if hasattr(store, "offsets"):  # a LightCurveStore: every length checked before any fit
        lengths = np.diff(np.asarray(store.offsets))[rows]
        for position in range(rows.size):
            check_length(position, int(lengths[position]))

    def load(position):
        event = store.event(int(rows[position]))
        check_length(position, event["times"].size)
        return event["times"], event["flux"], event["flux_err"], cuts[position]

    out = np.zeros((rows.size, cuts.shape[1]), RESULT_DTYPE)
    bar = tqdm(total=rows.size, desc="online point-lens fit", unit="ev", disable=not progress)
    positions = np.arange(rows.size)
    try:
        if workers == 1:
            for i in positions:
                out[i] = _event_fits(*load(i))
                bar.update(1)
        else:
            parallel_row_chunks(_chunk_fits, load, positions, (), workers, out, bar)
    finally:
        bar.close()
    return dict(mean=out["mean"], sigma=out["sigma"], ok=out["ok"], dchi2=out["dchi2"])


__all__ = [
    "CLAMP_TOLERANCE", "MAX_CONDITION", "PARAMETERS", "RESULT_DTYPE", "TE_CLAMPS", "U0_CLAMPS",
    "fit_point_lens", "model_jacobian", "online_fit",
]
