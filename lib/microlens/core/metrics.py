"""Classification and calibration metrics on held-out predictions, with bootstrap intervals.

Pure functions of labels and probabilities (numpy in, JSON-ready dicts out), so every number can
be checked on hand-made predictions. scikit-learn supplies the standard definitions (F1, ROC,
precision-recall); calibration and the bootstrap are vectorised here because they run thousands
of times.

Conventions: ``labels`` is ``(E,)`` int, ``probs`` is ``(E, C)`` with rows summing to one, and the
predicted class is ``argmax(probs)``. Per-class entries are keyed by class name
(``no_event``, ``pspl``, ``binary``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from microlens.core.classes import CLASS_NAMES

BINARY = 2
"""Label of the binary-lens class."""

ECE_BINS = 15
"""Equal-width confidence bins of the reliability diagram and expected calibration error."""


def _check(labels: np.ndarray, probs: np.ndarray | None = None) -> None:
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError("labels must be a non-empty 1-D array")
    if probs is not None and (probs.ndim != 2 or probs.shape[0] != labels.size):
        raise ValueError(f"probs must have shape (n_events, n_classes) = ({labels.size}, C), "
                         f"got {probs.shape}")


def confusion_counts(labels, predicted, n_classes: int = len(CLASS_NAMES)) -> np.ndarray:
    """Confusion matrix ``(C, C)``: row = true class, column = predicted class."""
    labels, predicted = np.asarray(labels, np.int64), np.asarray(predicted, np.int64)
    return np.bincount(labels * n_classes + predicted,
                       minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def f1_from_counts(true_positive, predicted, actual) -> np.ndarray:
    """Per-class F1 ``2 TP / (predicted + actual)`` from counts, 0 where both are 0.

    The one F1 formula of the package (scikit-learn's ``zero_division=0`` convention: a class
    never predicted and never present scores 0, not NaN). Broadcasts, so a search over many
    thresholds (:meth:`microlens.models.peer.ClassicalPeer.tune`) scores them all at once.

    Parameters
    ----------
    true_positive, predicted, actual : array-like
        Events of the class predicted correctly, events predicted as the class, events of the class.
    """
    true_positive = np.asarray(true_positive, np.float64)
    denominator = np.asarray(predicted, np.float64) + np.asarray(actual, np.float64)
    return np.divide(2.0 * true_positive, denominator,
                     out=np.zeros(np.broadcast(true_positive, denominator).shape),
                     where=denominator > 0)


def _scores_from_confusion(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, per-class precision/recall/F1 and macro F1 from (..., C, C) confusion counts.

    A class never predicted has precision 0; a class absent from the labels has recall 0 (the
    scikit-learn ``zero_division=0`` convention). The macro F1 is the mean over **all** ``C``
    classes of the problem (see :func:`classification_metrics`).
    """
    counts = counts.astype(np.float64)
    diagonal = np.diagonal(counts, axis1=-2, axis2=-1)
    predicted = counts.sum(axis=-2)
    actual = counts.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, diagonal / predicted, 0.0)
        recall = np.where(actual > 0, diagonal / actual, 0.0)
    f1 = f1_from_counts(diagonal, predicted, actual)
    accuracy = diagonal.sum(axis=-1) / counts.sum(axis=(-2, -1))
    return {"accuracy": accuracy, "precision": precision, "recall": recall, "f1": f1,
            "macro_f1": f1.mean(axis=-1)}


def classification_metrics(labels, predicted, n_classes: int = len(CLASS_NAMES)) -> dict:
    """Accuracy, per-class precision/recall/F1/support, macro F1 and the confusion matrix.

    Parameters
    ----------
    labels, predicted : array-like ``(E,)`` of int
        True and predicted classes.

    Returns
    -------
    dict
        ``accuracy``, ``macro_f1`` (the unweighted mean of the per-class F1 over all
        ``n_classes`` classes of the problem; a class absent from ``labels`` and never
        predicted counts as 0, one present but never predicted as 0: scikit-learn's
        ``f1_score(labels, predicted, labels=range(n_classes), average='macro',
        zero_division=0)``; so a subset missing a class scores lower rather than being
        averaged over fewer classes, and macro F1 values stay comparable across subsets),
        ``per_class`` {name: {precision, recall, f1, support}}, ``confusion`` (counts, rows =
        true class) and ``confusion_normalized`` (each row divided by its class count).
    """
    labels = np.asarray(labels, np.int64)
    _check(labels)
    counts = confusion_counts(labels, predicted, n_classes)
    scores = _scores_from_confusion(counts)
    support = counts.sum(axis=1)
    names = CLASS_NAMES[:n_classes]
    return {
        "accuracy": float(scores["accuracy"]),
        "macro_f1": float(scores["macro_f1"]),
        "per_class": {name: {"precision": float(scores["precision"][c]),
                             "recall": float(scores["recall"][c]),
                             "f1": float(scores["f1"][c]), "support": int(support[c])}
                      for c, name in enumerate(names)},
        "confusion": counts.tolist(),
        "confusion_normalized": (counts / np.maximum(support, 1)[:, None]).tolist(),
    }


def roc_curves(labels, probs) -> dict:
    """One-vs-rest ROC curves and AUC per class, and their macro mean.

    Returns
    -------
    dict
        ``{name: {"fpr": [...], "tpr": [...], "auc": float}}`` for every class present with both
        positives and negatives, plus ``"macro_auc"``.
    """
    from sklearn.metrics import auc, roc_curve

    labels, probs = np.asarray(labels, np.int64), np.asarray(probs, np.float64)
    _check(labels, probs)
    out = {}
    for c, name in enumerate(CLASS_NAMES[: probs.shape[1]]):
        positive = labels == c
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = roc_curve(positive, probs[:, c])
        out[name] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "auc": float(auc(fpr, tpr))}
    out["macro_auc"] = macro_auc(labels, probs)  # the definition the bootstrap uses too
    return out


def macro_auc(labels, probs) -> float:
    """Mean one-vs-rest ROC AUC over the classes with both positives and negatives."""
    from sklearn.metrics import roc_auc_score

    labels, probs = np.asarray(labels, np.int64), np.asarray(probs, np.float64)
    aucs = [roc_auc_score(labels == c, probs[:, c]) for c in range(probs.shape[1])
            if 0 < np.count_nonzero(labels == c) < labels.size]
    return float(np.mean(aucs)) if aucs else float("nan")


def _thinned(n: int, max_points: int) -> np.ndarray:
    """At most ``max_points`` evenly spread indices of ``n``, both ends included."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def precision_recall_curves(labels, probs, max_points: int = 1000) -> dict:
    """One-vs-rest precision-recall curves and average precision per class.

    Curves longer than ``max_points`` are thinned evenly (for the figure and the JSON summary;
    the average precision is computed on the full curve).

    Returns
    -------
    dict
        ``{name: {"precision": [...], "recall": [...], "average_precision": float,
        "prevalence": float}}`` (prevalence is the no-skill level).
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    labels, probs = np.asarray(labels, np.int64), np.asarray(probs, np.float64)
    _check(labels, probs)
    out = {}
    for c, name in enumerate(CLASS_NAMES[: probs.shape[1]]):
        positive = labels == c
        if not positive.any():
            continue
        precision, recall, _ = precision_recall_curve(positive, probs[:, c])
        keep = _thinned(precision.size, max_points)
        out[name] = {"precision": precision[keep].tolist(), "recall": recall[keep].tolist(),
                     "average_precision": float(average_precision_score(positive, probs[:, c])),
                     "prevalence": float(positive.mean())}
    return out


def _bin_index(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bins on [0, 1]; a confidence of exactly 1 goes in the last bin."""
    return np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)


def expected_calibration_error(labels, probs, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error of the top-class confidence.

    ``ECE = sum_b (n_b / n) |accuracy_b - confidence_b|`` over ``n_bins`` equal-width bins of the
    predicted class's probability.
    """
    labels, probs = np.asarray(labels, np.int64), np.asarray(probs, np.float64)
    _check(labels, probs)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    bins = _bin_index(confidence, n_bins)
    gap = np.bincount(bins, weights=correct - confidence, minlength=n_bins)
    return float(np.abs(gap).sum() / labels.size)


def reliability_diagram(labels, probs, n_bins: int = ECE_BINS) -> dict:
    """Per-bin mean confidence, accuracy and count of the top-class confidence, and the ECE.

    Returns
    -------
    dict
        ``edges`` (n_bins + 1), ``confidence``, ``accuracy`` (None in empty bins), ``count`` and
        ``ece``.
    """
    labels, probs = np.asarray(labels, np.int64), np.asarray(probs, np.float64)
    _check(labels, probs)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    bins = _bin_index(confidence, n_bins)
    count = np.bincount(bins, minlength=n_bins)
    mean_conf = np.bincount(bins, weights=confidence, minlength=n_bins)
    mean_acc = np.bincount(bins, weights=correct, minlength=n_bins)
    filled = count > 0

    def per_bin(total):
        return [float(t / n) if n else None for t, n in zip(total, count, strict=True)]

    return {
        "edges": np.linspace(0.0, 1.0, n_bins + 1).tolist(),
        "confidence": per_bin(mean_conf),
        "accuracy": per_bin(mean_acc),
        "count": count.tolist(),
        "ece": float(np.abs(mean_acc[filled] - mean_conf[filled]).sum() / labels.size),
    }


def negative_log_likelihood(labels, probs) -> float:
    """Mean ``-log p(true class)`` (probabilities floored at 1e-12)."""
    labels, probs = np.asarray(labels, np.int64), np.asarray(probs, np.float64)
    _check(labels, probs)
    return float(-np.log(np.maximum(probs[np.arange(labels.size), labels], 1e-12)).mean())


def confidence_histogram(labels, probs, n_bins: int = 20) -> dict:
    """Histogram of the top-class confidence, split into correct and wrong predictions."""
    labels, probs = np.asarray(labels, np.int64), np.asarray(probs, np.float64)
    _check(labels, probs)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = _bin_index(confidence, n_bins)
    return {"edges": edges.tolist(),
            "correct": np.bincount(bins[correct], minlength=n_bins).tolist(),
            "wrong": np.bincount(bins[~correct], minlength=n_bins).tolist()}


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` in float64."""
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


def wilson_interval(successes: int, trials: int, level: float = 0.95
                    ) -> tuple[float | None, float | None]:
    """Wilson score interval of a binomial proportion (None, None for zero trials).

    Better than the normal approximation for small counts and rates near 0 or 1, which is what
    per-bin recalls are.
    """
    from scipy.stats import norm

    if trials == 0:
        return None, None
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must lie in [0, trials={trials}], got {successes}")
    z = float(norm.ppf(0.5 + level / 2))
    p = successes / trials
    denominator = 1 + z * z / trials
    center = (p + z * z / (2 * trials)) / denominator
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return float(max(0.0, center - half)), float(min(1.0, center + half))


# --------------------------------------------------------------------------------------------
# Bootstrap
# --------------------------------------------------------------------------------------------


def headline_statistics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """The numbers a summary leads with: accuracy, macro F1, binary precision and recall,
    macro one-vs-rest AUC and ECE (of ``probs`` as given)."""
    predicted = probs.argmax(axis=1)
    scores = _scores_from_confusion(confusion_counts(labels, predicted, probs.shape[1]))
    stats = {"accuracy": float(scores["accuracy"]), "macro_f1": float(scores["macro_f1"])}
    if probs.shape[1] > BINARY:
        stats["binary_precision"] = float(scores["precision"][BINARY])
        stats["binary_recall"] = float(scores["recall"][BINARY])
    stats["macro_auc"] = macro_auc(labels, probs)
    stats["ece"] = expected_calibration_error(labels, probs)
    return stats


def bootstrap_intervals(labels, probs, *, n_samples: int = 1000, seed: int = 0,
                        level: float = 0.95,
                        statistic: Callable[[np.ndarray, np.ndarray], dict] = headline_statistics,
                        progress: bool = False) -> dict:
    """Percentile bootstrap confidence intervals, resampling events with replacement.

    Parameters
    ----------
    labels : ``(E,)`` int
    probs : ``(E, C)``
    n_samples : int
        Bootstrap resamples (0 gives the point estimates with no interval).
    seed : int
        Seed of the resampling (recorded in the result).
    level : float
        Central coverage of each interval.
    statistic : callable
        ``(labels, probs) -> {name: float}``; default :func:`headline_statistics`.

    Returns
    -------
    dict
        ``{"n_samples", "seed", "level", "intervals": {name: {"value", "low", "high"}}}``;
        ``value`` is the statistic on all events.
    """
    from tqdm.auto import tqdm

    labels, probs = np.asarray(labels, np.int64), np.asarray(probs, np.float64)
    _check(labels, probs)
    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    point = statistic(labels, probs)
    rng = np.random.default_rng(seed)
    draws = {name: [] for name in point}
    for _ in tqdm(range(n_samples), desc="bootstrap", disable=not progress):
        take = rng.integers(0, labels.size, labels.size)
        for name, value in statistic(labels[take], probs[take]).items():
            draws[name].append(value)
    tail = (1 - level) / 2
    intervals = {}
    for name, value in point.items():
        samples = np.asarray(draws[name], np.float64)
        samples = samples[np.isfinite(samples)]
        low, high = (np.quantile(samples, [tail, 1 - tail]).tolist() if samples.size
                     else (None, None))
        intervals[name] = {"value": value, "low": low, "high": high}
    return {"n_samples": n_samples, "seed": seed, "level": level, "intervals": intervals}


__all__ = [
    "BINARY", "ECE_BINS", "bootstrap_intervals", "classification_metrics",
    "confidence_histogram", "confusion_counts", "expected_calibration_error", "f1_from_counts",
    "headline_statistics", "macro_auc", "negative_log_likelihood", "precision_recall_curves",
    "reliability_diagram", "roc_curves", "softmax", "wilson_interval",
]  # fmt: skip
