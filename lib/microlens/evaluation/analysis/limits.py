"""Physical limits: classification performance in bins of u_0, q, s and detectability.

A binary lens is only recognisable when its light curve departs from every single-lens model;
the simulator records that departure for each binary as ``dchi2_pspl`` (chi-squared of the best
blended-PSPL fit minus that of the truth). Binned performance is reported beside the fraction of
binaries in each bin whose binarity is detectable at all (``dchi2_pspl`` above a threshold): the
ceiling any classifier's binary recall must be read against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from microlens.core.classes import CLASS_NAMES
from microlens.core.metrics import BINARY, wilson_interval
from microlens.data.summaries import DETECTABILITY_THRESHOLD

BIN_COLUMNS: dict[str, dict] = {
    "u_0": {"scale": "linear", "classes": (1, 2),
            "label": "impact parameter u₀ [Einstein radii]"},
    "q": {"scale": "log", "classes": (2,), "label": "mass ratio q"},
    "s": {"scale": "log", "classes": (2,), "label": "separation s [Einstein radii]"},
    "dchi2_pspl": {"scale": "log", "classes": (2,), "floor": 1.0,
                   "label": "binarity Δχ² (values below 1 drawn at 1)"},
}
"""Columns the physical-limits analysis bins by: axis scale, the classes each is meaningful for
(u_0 for both lensing classes; q, s and detectability for binaries), an axis label, and an
optional floor (a log axis puts Δχ² <= 1, the indistinguishable binaries, in the first bin)."""


def bin_edges(values: np.ndarray, n_bins: int, scale: str = "linear") -> np.ndarray:
    """``n_bins + 1`` edges spanning the finite ``values`` (log-spaced for ``scale='log'``,
    which uses the positive values only)."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if scale not in ("linear", "log"):
        raise ValueError(f"unknown scale {scale!r}; valid: linear, log")
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if scale == "log":
        values = values[values > 0]
    if values.size == 0:
        raise ValueError("no finite values to bin")
    low, high = values.min(), values.max()
    if high <= low:  # one distinct value: a bin around it
        low, high = (low / 2, low * 2) if scale == "log" else (low - 0.5, low + 0.5)
    if scale == "log":
        edges = 10 ** np.linspace(np.log10(low), np.log10(high), n_bins + 1)
    else:
        edges = np.linspace(low, high, n_bins + 1)
    edges[0], edges[-1] = low, high  # exactly, so the extremes are never lost to rounding
    return edges


def _rate(hits: np.ndarray) -> float | None:
    return float(hits.mean()) if hits.size else None


def _binary_rates(correct: np.ndarray, binary: np.ndarray, detectable: np.ndarray) -> dict:
    """Binary recall, the detectable fraction and the recall on detectable and undetectable
    binaries of a group of events (None where the group has none)."""
    return {"n_binary": int(binary.sum()),
            "binary_recall": _rate(correct[binary]),
            "detectable_fraction": _rate(detectable[binary]),
            "n_detectable": int((binary & detectable).sum()),
            "recall_detectable": _rate(correct[binary & detectable]),
            "recall_undetectable": _rate(correct[binary & ~detectable])}


def binned_performance(values, labels, predicted, dchi2_pspl, edges, *,
                       threshold: float = DETECTABILITY_THRESHOLD, level: float = 0.95,
                       scale: str = "linear") -> dict:
    """Accuracy, binary recall and the detectable fraction of binaries in bins of one parameter.

    Parameters
    ----------
    values : ``(E,)``
        The binned parameter of each event (events with NaN are left out).
    labels, predicted : ``(E,)`` int
        True and predicted (final) classes.
    dchi2_pspl : ``(E,)``
        Detectability of each event: chi-squared of the best single-lens fit minus that of the
        truth (meaningful for binaries).
    edges : ``(B + 1,)``
        Bin edges; the last bin includes its upper edge.
    threshold : float
        Δχ² above which a binary counts as detectable.
    level : float
        Coverage of the Wilson intervals on accuracy and binary recall.
    scale : {'linear', 'log'}
        Where ``center`` sits: the arithmetic or the geometric middle of each bin.

    Returns
    -------
    dict
        Per bin (lists): ``low``, ``high``, ``center``, ``n`` (events), ``accuracy`` with
        ``accuracy_low``/``accuracy_high``, ``n_binary``, ``binary_recall`` with its interval,
        ``detectable_fraction`` (the physical ceiling on binary recall: the fraction of binaries
        in the bin whose binarity is detectable at all), ``recall_detectable`` and
        ``recall_undetectable`` (binary recall among detectable / undetectable binaries).
        Empty bins give None.
    """
    values = np.asarray(values, np.float64)
    labels, predicted = np.asarray(labels, np.int64), np.asarray(predicted, np.int64)
    dchi2_pspl = np.asarray(dchi2_pspl, np.float64)
    edges = np.asarray(edges, np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError("edges must be an increasing 1-D array of at least two values")
    which = np.searchsorted(edges, values, side="right") - 1
    which[values == edges[-1]] = edges.size - 2
    inside = np.isfinite(values) & (which >= 0) & (which < edges.size - 1)
    correct = predicted == labels
    binary = labels == BINARY
    detectable = dchi2_pspl > threshold
    center = np.sqrt(edges[:-1] * edges[1:]) if scale == "log" else (edges[:-1] + edges[1:]) / 2
    keys = ("n", "accuracy", "accuracy_low", "accuracy_high", "binary_recall_low",
            "binary_recall_high", *_binary_rates(correct, binary, detectable))
    out = {"low": edges[:-1].tolist(), "high": edges[1:].tolist(), "center": center.tolist(),
           **{k: [] for k in keys}}
    for b in range(edges.size - 1):
        here = inside & (which == b)
        bins = here & binary
        acc_low, acc_high = wilson_interval(int(correct[here].sum()), int(here.sum()), level)
        rec_low, rec_high = wilson_interval(int(correct[bins].sum()), int(bins.sum()), level)
        row = {"n": int(here.sum()), "accuracy": _rate(correct[here]), "accuracy_low": acc_low,
               "accuracy_high": acc_high, "binary_recall_low": rec_low,
               "binary_recall_high": rec_high,
               **_binary_rates(correct[here], binary[here], detectable[here])}
        for key in keys:
            out[key].append(row[key])
    return out


DCHI2_EDGES = (25.0, 100.0, 1000.0)
"""Inner edges of the binarity Δχ² bins of :func:`recall_by_dchi2`: ``<= 25`` (no trace),
``25-100`` (a hint below the detectability threshold), ``100-1000`` (detectable) and ``> 1000``
(obvious). Bins are closed on the right, so Δχ² = 100 falls with the undetectable binaries, as
the strict ``>`` of the detectability threshold says."""


def _bin_names(edges: Sequence[float]) -> list[str]:
    def fmt(x: float) -> str:
        return f"{x:g}"

    names = [f"le{fmt(edges[0])}"]
    names += [f"{fmt(lo)}to{fmt(hi)}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    return names + [f"gt{fmt(edges[-1])}"]


def recall_by_dchi2(labels, predicted, dchi2_pspl, edges: Sequence[float] = DCHI2_EDGES, *,
                    level: float = 0.95) -> dict:
    """Binary recall in bins of the binarity Δχ², with Wilson intervals.

    Parameters
    ----------
    labels, predicted : ``(E,)`` int
        Physical and predicted classes (only the binaries are read).
    dchi2_pspl : ``(E,)``
        Each event's binarity Δχ²; binaries without a finite value are left out (counted in
        ``n_unknown``).
    edges : sequence of float
        Increasing inner edges; ``len(edges) + 1`` bins ``(-inf, e_0], (e_0, e_1], ...,
        (e_last, inf)``.
    level : float
        Coverage of the Wilson intervals.

    Returns
    -------
    dict
        ``edges``, ``level``, ``n_unknown`` and per bin (lists, in order) ``bin`` (a name such as
        ``le25``, ``25to100``, ``gt1000``), ``low``/``high`` (edges, None at infinity),
        ``n_binary``, ``recall`` and ``recall_low``/``recall_high`` (None for an empty bin).
    """
    edges = np.asarray(edges, np.float64)
    if edges.ndim != 1 or edges.size == 0 or not np.all(np.isfinite(edges)) or np.any(
            np.diff(edges) <= 0):
        raise ValueError(f"edges must be a non-empty increasing sequence of finite numbers, got "
                         f"{edges.tolist()}")
    labels, predicted = np.asarray(labels, np.int64), np.asarray(predicted, np.int64)
    dchi2 = np.asarray(dchi2_pspl, np.float64)
    if not labels.shape == predicted.shape == dchi2.shape:
        raise ValueError(f"labels {labels.shape}, predicted {predicted.shape} and dchi2_pspl "
                         f"{dchi2.shape} must have the same shape")
    binary = labels == BINARY
    known = binary & np.isfinite(dchi2)
    which = np.searchsorted(edges, dchi2, side="left")  # right-closed bins
    bounds = [None, *edges.tolist(), None]
    out = {"edges": edges.tolist(), "level": level, "n_unknown": int((binary & ~known).sum()),
           "bin": _bin_names(edges.tolist()), "low": bounds[:-1], "high": bounds[1:],
           "n_binary": [], "recall": [], "recall_low": [], "recall_high": []}
    for b in range(edges.size + 1):
        here = known & (which == b)
        hits = int(np.sum(predicted[here] == BINARY))
        low, high = wilson_interval(hits, int(here.sum()), level)
        out["n_binary"].append(int(here.sum()))
        out["recall"].append(hits / int(here.sum()) if here.any() else None)
        out["recall_low"].append(low)
        out["recall_high"].append(high)
    return out


def physical_limits(store, predictions, *, n_bins: int = 8,
                    threshold: float = DETECTABILITY_THRESHOLD,
                    columns: Sequence[str] = tuple(BIN_COLUMNS)) -> dict:
    """Performance against u_0, q, s and detectability, beside the physical ceiling.

    Parameters
    ----------
    store : LightCurveStore
    predictions : microlens.models.holdout.Predictions
        Test-split predictions (their rows index ``store.params``; checked to be test events).
    n_bins : int
        Bins per parameter (linear in u_0, logarithmic in q, s and Δχ²).
    threshold : float
        Δχ² above which a binary is detectable.
    columns : sequence of str
        Parameters to bin by (keys of :data:`BIN_COLUMNS`).

    Returns
    -------
    dict
        ``run_dir`` (from the predictions' info), ``dataset``, ``threshold``, ``n_events``,
        ``binary`` (overall binary recall, the detectable fraction, recall among detectable and
        undetectable binaries, and recall relative to the ceiling) and ``bins`` {column:
        :func:`binned_performance` table plus ``scale``, ``label`` and ``classes``}.
    """
    from microlens.models.holdout import require_test_split

    unknown = [c for c in columns if c not in BIN_COLUMNS]
    if unknown:
        raise ValueError(f"unknown column(s) {unknown}; valid: {', '.join(BIN_COLUMNS)}")
    rows = require_test_split(store, predictions.rows)
    params = np.asarray(store.params[rows])
    if not np.array_equal(params["label"], predictions.labels):
        raise ValueError("predictions are not aligned with the store's parameter rows")
    dchi2 = params["dchi2_pspl"].astype(np.float64)
    labels = predictions.labels
    binary = labels == BINARY
    if binary.any() and not np.isfinite(dchi2[binary]).any():
        raise ValueError(f"{store.path} has no detectability values (generated with "
                         "detectability=False); regenerate it with detectability=True")
    predicted = predictions.final().argmax(axis=1)
    correct = predicted == labels
    detectable = dchi2 > threshold
    summary = _binary_rates(correct, binary, detectable)
    recall, ceiling = summary["binary_recall"], summary["detectable_fraction"]
    summary["recall_over_ceiling"] = recall / ceiling if recall is not None and ceiling else None
    tables = {}
    for column in columns:
        spec = BIN_COLUMNS[column]
        use = np.isin(labels, spec["classes"])
        values = np.where(use, params[column].astype(np.float64), np.nan)
        if "floor" in spec:
            values = np.maximum(values, spec["floor"])
        if not np.isfinite(values).any():
            continue
        edges = bin_edges(values, n_bins, spec["scale"])
        tables[column] = {**binned_performance(values, labels, predicted, dchi2, edges,
                                               threshold=threshold, scale=spec["scale"]),
                          "scale": spec["scale"], "label": spec["label"],
                          "classes": [CLASS_NAMES[c] for c in spec["classes"]]}
    return {"run_dir": (predictions.info or {}).get("run_dir"), "dataset": str(store.path),
            "threshold": threshold, "n_events": int(rows.size), "binary": summary,
            "bins": tables}


def binary_points(store, predictions) -> dict[str, np.ndarray]:
    """Per binary test event: ``index``, ``s``, ``q``, ``u_0``, ``dchi2_pspl``, ``correct`` and
    ``predicted`` (class name), aligned through the predictions' store rows."""
    from microlens.models.holdout import require_test_split

    rows = require_test_split(store, predictions.rows)
    binary = predictions.labels == BINARY
    params = np.asarray(store.params[rows[binary]])
    predicted = predictions.final().argmax(axis=1)[binary]
    return {"index": rows[binary], "s": params["s"], "q": params["q"], "u_0": params["u_0"],
            "dchi2_pspl": params["dchi2_pspl"], "correct": predicted == BINARY,
            "predicted": np.asarray(CLASS_NAMES)[predicted]}


__all__ = ["BIN_COLUMNS", "DCHI2_EDGES", "bin_edges", "binary_points", "binned_performance",
           "physical_limits", "recall_by_dchi2"]
