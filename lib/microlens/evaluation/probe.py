"""The model-shortcut probe: does a classifier's binary score follow what it should not?

The simulator draws the parameters shared by all classes (``t_E``, ``u_0``, source brightness,
blending, cadence, noise) from the same priors for every class, so none of them carries class
information. A model that learned the binary anomaly gives every PSPL event a low binary score
whatever its ``t_E`` or ``u_0``; a model that learned a shortcut (the measured case of the
encoder ablation: the transformer's binary score followed ``t_E`` with Spearman -0.89) ranks PSPL
events by it.

The probe reports, for a binary score (the transformer's calibrated final ``p_binary``, or the
classical peer's binarity statistic):

* the Spearman rank correlation ``rho`` (with its p-value and count) of the score with ``t_E``,
  ``u_0`` and the **peak significance** (:func:`peak_significance`), separately among PSPL events
  and among binaries;
* the ROC AUC of detectable binaries (``dchi2_pspl > threshold``) against PSPL events, and of the
  undetectable binaries against PSPL events: a model that learned the anomaly separates the first
  (AUC near 1) and not the second (near 0.5); a shortcut tends to do the same for both;
* ``warnings``: one line per quantity drawn alike for all classes (:data:`SHARED_QUANTITIES`)
  that the score follows **among PSPL events** with ``|rho| > warn_at`` (default
  :data:`WARN_AT` = 0.3), a p-value below 0.05 and at least :data:`WARN_MIN_EVENTS` events.

Why among PSPL events only: a PSPL event has no binary signal, so any dependence of its binary
score on ``t_E`` or ``u_0`` is a shortcut. Among binaries the same correlations are partly
physical (a longer event or a smaller ``u_0`` crosses more of the caustic and is more often
detectable), so they are reported, not warned about; read them beside the detectable AUC.

Why 0.3: with no dependence the Spearman rho of ``n`` events has a standard deviation of about ``1 /
sqrt(n - 1)``, 0.05 at the 400 PSPL events of a 1,200-event test split, so 0.3 is far outside
sampling noise there, while ``rho**2`` (the share of rank variance explained) stays below 10 % under
it; a model that passes the project's target (``|rho| <= 0.2`` with ``t_E``) never warns. The
p-value and the count conditions keep a handful of events (a smoke test) from warning by chance
(scipy's p-value is asymptotic: it calls three perfectly ordered events significant).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from microlens.data.summaries import DETECTABILITY_THRESHOLD

PSPL, BINARY = 1, 2

WARN_AT = 0.3
"""``|rho|`` above which a shared quantity followed by the score among PSPL events warns."""

WARN_P_VALUE = 0.05
"""The correlation must also be significant at this level to warn."""

WARN_MIN_EVENTS = 20
"""... and computed over at least this many PSPL events."""

SHARED_QUANTITIES = ("t_E", "u_0")
"""Probe quantities drawn from the same prior for every class (no class information)."""

QUANTITIES = ("t_E", "u_0", "peak_significance")
"""What the score is correlated with: Einstein time [days], impact parameter [Einstein radii],
peak significance (:func:`peak_significance`)."""

GROUPS = {"pspl": PSPL, "binary": BINARY}


class ShortcutWarning(UserWarning):
    """A classifier's binary score follows a quantity drawn alike for all classes."""


def peak_significance(flux, flux_err, mask) -> np.ndarray:
    """Peak significance of each event: ``max_k (F_k - 1) / sigma_k`` over its observations.

    The flux is in baseline units (:mod:`microlens.simulation.simulate`: ``F = 1`` with no event),
    so this is how many standard errors the brightest observed point stands above the baseline: the
    strength of the event as the data show it (magnification, blending, noise and cadence
    together), measured the same way for every class.

    Parameters
    ----------
    flux, flux_err : array-like ``(E, N)``
    mask : array-like ``(E, N)`` bool
        True at real observations.

    Returns
    -------
    ndarray ``(E,)`` float64 (NaN for an event without observations)
    """
    flux, err = np.asarray(flux, np.float64), np.asarray(flux_err, np.float64)
    mask = np.asarray(mask, bool)
    if not flux.shape == err.shape == mask.shape or flux.ndim != 2:
        raise ValueError(f"flux {flux.shape}, flux_err {err.shape} and mask {mask.shape} must "
                         "be 2-D arrays of the same shape")
    with np.errstate(divide="ignore", invalid="ignore"):
        significance = np.where(mask, (flux - 1.0) / err, -np.inf)
    peak = significance.max(axis=1) if significance.shape[1] else np.full(len(flux), -np.inf)
    return np.where(mask.any(axis=1), peak, np.nan)


def store_peak_significance(store, rows: Sequence[int], chunk: int = 2048) -> np.ndarray:
    """:func:`peak_significance` of a store's ``rows`` (read ``chunk`` events at a time)."""
    rows = np.asarray(rows, np.int64)
    out = np.empty(rows.size, np.float64)
    for start in range(0, rows.size, chunk):
        part = rows[start : start + chunk]
        arrays = store.padded(part, names=("flux", "flux_err"))
        out[start : start + chunk] = peak_significance(arrays["flux"], arrays["flux_err"],
                                                       arrays["mask"])
    return out


def spearman(score, quantity) -> dict:
    """Spearman rank correlation of two arrays over their finite pairs.

    Returns
    -------
    dict
        ``rho``, ``p_value`` (two-sided), ``low`` and ``high`` (95 % interval from Fisher's z
        with the Spearman standard error ``sqrt(1.06 / (n - 3))`` of Fieller, Hartley & Pearson
        1957) and ``n`` (pairs used); all but ``n`` are None with fewer than 3 pairs or a
        constant array (the interval also with fewer than 5).
    """
    from scipy.stats import spearmanr

    x, y = np.asarray(score, np.float64), np.asarray(quantity, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"score {x.shape} and quantity {y.shape} must be 1-D of the same length")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"rho": None, "p_value": None, "low": None, "high": None, "n": int(x.size)}
    result = spearmanr(x, y)
    rho = float(result.statistic)
    low = high = None
    if x.size >= 5:
        z, half = np.arctanh(np.clip(rho, -0.999999, 0.999999)), 1.96 * np.sqrt(1.06 / (x.size - 3))
        low, high = float(np.tanh(z - half)), float(np.tanh(z + half))
    return {"rho": rho, "p_value": float(result.pvalue), "low": low, "high": high,
            "n": int(x.size)}


AUC_BOOTSTRAP = 1000
"""Resamples behind the AUC interval of :func:`auc`."""


def _rank_auc(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """AUCs of rows of positive and negative scores (Mann-Whitney, ties one half)."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([pos, neg], axis=-1), axis=-1)
    n_pos, n_neg = pos.shape[-1], neg.shape[-1]
    return (ranks[..., :n_pos].sum(axis=-1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def auc(positive_scores, negative_scores, *, seed: int = 0) -> dict:
    """ROC AUC of ``positive_scores`` against ``negative_scores`` (ties count one half;
    non-finite scores are left out and not counted), with a 95 % bootstrap interval.

    Returns
    -------
    dict
        ``auc``, ``low`` and ``high`` (percentiles of :data:`AUC_BOOTSTRAP` resamples of each side,
        drawn with ``seed``; all None when either side is empty), ``n_positive`` and ``n_negative``.
    """
    pos = np.asarray(positive_scores, np.float64)
    neg = np.asarray(negative_scores, np.float64)
    pos, neg = pos[np.isfinite(pos)], neg[np.isfinite(neg)]
    out = {"auc": None, "low": None, "high": None, "n_positive": int(pos.size),
           "n_negative": int(neg.size)}
    if pos.size and neg.size:
        out["auc"] = float(_rank_auc(pos, neg))
        rng = np.random.default_rng(seed)
        resampled = _rank_auc(pos[rng.integers(0, pos.size, (AUC_BOOTSTRAP, pos.size))],
                              neg[rng.integers(0, neg.size, (AUC_BOOTSTRAP, neg.size))])
        out["low"], out["high"] = (float(v) for v in np.percentile(resampled, [2.5, 97.5]))
    return out


def shortcut_probe(score, labels, quantities: Mapping[str, Sequence[float]], dchi2_pspl=None,
                   *, threshold: float = DETECTABILITY_THRESHOLD, warn_at: float = WARN_AT,
                   score_name: str = "p_binary") -> dict:
    """Rank correlations of a binary score with shared quantities, and the AUCs by detectability.

    Parameters
    ----------
    score : array-like ``(E,)``
        The binary score of each event (higher: more binary).
    labels : array-like ``(E,)`` int
        Physical classes (0 flat, 1 PSPL, 2 binary).
    quantities : mapping ``{name: (E,)}``
        What to correlate the score with (e.g. ``t_E``, ``u_0``, ``peak_significance``).
    dchi2_pspl : array-like ``(E,)``, optional
        Binarity Δχ² of each event; without it (or with no finite value among the binaries) the
        detectable/undetectable AUCs are None.
    threshold : float
        Δχ² above which a binary is detectable.
    warn_at : float
        ``|rho|`` among PSPL events above which a :data:`SHARED_QUANTITIES` entry warns.
    score_name : str
        Recorded as ``score``, and named in the warnings.

    Returns
    -------
    dict
        ``score``, ``warn_at``, ``threshold``, ``shared_quantities``, ``correlation``
        ``{quantity: {"pspl": spearman, "binary": spearman}}``, ``auc``
        ``{"binary_vs_pspl", "detectable_vs_pspl", "undetectable_vs_pspl"}`` (each
        :func:`auc`), and ``warnings`` (list of str).
    """
    score = np.asarray(score, np.float64)
    labels = np.asarray(labels, np.int64)
    if score.shape != labels.shape or score.ndim != 1:
        raise ValueError(f"score {score.shape} and labels {labels.shape} must be 1-D of the "
                         "same length")
    if not 0 < warn_at < 1:
        raise ValueError(f"warn_at must lie in (0, 1), got {warn_at!r}")
    correlation = {}
    for name, values in quantities.items():
        values = np.asarray(values, np.float64)
        if values.shape != score.shape:
            raise ValueError(f"quantity {name!r} has shape {values.shape}, score {score.shape}")
        correlation[name] = {group: spearman(score[labels == c], values[labels == c])
                             for group, c in GROUPS.items()}
    pspl, binary = score[labels == PSPL], labels == BINARY
    aucs = {"binary_vs_pspl": auc(score[binary], pspl),
            "detectable_vs_pspl": auc([], []), "undetectable_vs_pspl": auc([], [])}
    if dchi2_pspl is not None:
        dchi2 = np.asarray(dchi2_pspl, np.float64)
        known = binary & np.isfinite(dchi2)
        if known.any():
            aucs["detectable_vs_pspl"] = auc(score[known & (dchi2 > threshold)], pspl)
            aucs["undetectable_vs_pspl"] = auc(score[known & (dchi2 <= threshold)], pspl)
    warnings = []
    for name in SHARED_QUANTITIES:
        entry = correlation.get(name, {}).get("pspl", {})
        rho, p_value = entry.get("rho"), entry.get("p_value")
        if (rho is not None and abs(rho) > warn_at and p_value < WARN_P_VALUE
                and entry["n"] >= WARN_MIN_EVENTS):
            warnings.append(
                f"the binary score ({score_name}) follows {name} among PSPL events: Spearman "
                f"rho = {rho:+.2f} (n = {entry['n']}, p = {p_value:.1e}; warns above "
                f"|rho| = {warn_at}); {name} is drawn alike for every class, so the score "
                "carries a shortcut, not the binary anomaly")
    return {"score": score_name, "warn_at": warn_at, "threshold": float(threshold),
            "shared_quantities": list(SHARED_QUANTITIES), "correlation": correlation,
            "auc": aucs, "warnings": warnings}


def probe_quantities(store, rows: Sequence[int]) -> dict[str, np.ndarray]:
    """``t_E``, ``u_0`` and the peak significance of a store's ``rows`` (probe inputs)."""
    rows = np.asarray(rows, np.int64)
    params = store.params[rows]
    return {"t_E": np.asarray(params["t_E"], np.float64),
            "u_0": np.asarray(params["u_0"], np.float64),
            "peak_significance": store_peak_significance(store, rows)}


def probe_headline(probe: dict, prefix: str = "") -> dict:
    """Flat study-table numbers of a probe: ``probe_rho_<quantity>_<group>``, the two
    detectability AUCs and the count of warnings (keys start with ``prefix``)."""
    out = {}
    for name, groups in probe["correlation"].items():
        for group, entry in groups.items():
            out[f"{prefix}probe_rho_{name}_{group}"] = entry["rho"]
    for key in ("detectable_vs_pspl", "undetectable_vs_pspl"):
        entry = probe["auc"][key]
        out[f"{prefix}auc_{key}"] = entry["auc"]
        out[f"{prefix}auc_{key}_low"] = entry.get("low")
        out[f"{prefix}auc_{key}_high"] = entry.get("high")
    out[f"{prefix}probe_warnings"] = len(probe["warnings"])
    return out


__all__ = [
    "QUANTITIES", "SHARED_QUANTITIES", "ShortcutWarning", "WARN_AT", "WARN_MIN_EVENTS",
    "WARN_P_VALUE", "AUC_BOOTSTRAP", "auc",
    "peak_significance", "probe_headline", "probe_quantities", "shortcut_probe", "spearman",
    "store_peak_significance",
]  # fmt: skip
