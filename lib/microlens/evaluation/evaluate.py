"""Evaluation of a trained run on the held-out test split: the numbers of ``03_evaluate``.

* **Final-answer metrics** (:mod:`microlens.core.metrics`): accuracy, per-class precision, recall
and F1,
  macro F1, confusion matrices, one-vs-rest ROC/AUC and precision-recall curves, confidence
  histograms, reliability diagrams and the expected calibration error before and after temperature
  scaling (the temperature was fitted on the *validation* split by :mod:`microlens.training.train`),
  with bootstrap confidence intervals on the headline numbers.
* **Early detection** from the per-observation predictions of one forward pass (the model is
  causal, so the prediction at observation ``k`` is exactly what it says after seeing ``1..k``):
  accuracy against the fraction of observations seen (:func:`accuracy_by_fraction`) and against
  time relative to the peak, ``tau = (t - t_0) / t_E`` (:func:`accuracy_by_tau`).
* **Decision time** (:func:`decision_sweep`): the first observation at which the calibrated
  confidence reaches a threshold; a sweep of thresholds trades accuracy against how early the
  decision comes.
* **The classical peer** (:mod:`microlens.models.peer`): constant and blended-PSPL least-squares
fits
  with chi-squared thresholds tuned on the validation split, evaluated on the same test events.
* **Both label sets** (:func:`label_set_metrics`): the final answers scored against the physical
  labels and, where the dataset has detectability, against the observable ones (binaries of
  binarity Δχ² <= 100 count as PSPL, :mod:`microlens.data.labels`), whatever policy the run was
  trained with; and binary recall in Δχ² bins with Wilson intervals
  (:func:`microlens.evaluation.analysis.limits.recall_by_dchi2`), so the physical ceiling stays
  visible.
* **The shortcut probe** (:mod:`microlens.evaluation.probe`): the rank correlation of the binary
score with
  t_E, u_0 and the peak significance among PSPL events and among binaries, and the AUC of
  detectable and undetectable binaries against PSPL; a
  :class:`~microlens.evaluation.probe.ShortcutWarning`
  when the score follows t_E or u_0 among PSPL events. The same for the classical peer.

:func:`evaluate_run` puts it all together into the JSON summary that ``03_evaluate`` writes.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence

import numpy as np

from microlens.core.classes import CLASS_NAMES
from microlens.core.metrics import (
    BINARY,
    bootstrap_intervals,
    classification_metrics,
    confidence_histogram,
    expected_calibration_error,
    negative_log_likelihood,
    precision_recall_curves,
    reliability_diagram,
    roc_curves,
    softmax,
    wilson_interval,
)
from microlens.data.labels import PSPL, observable_labels
from microlens.data.summaries import DETECTABILITY_THRESHOLD
from microlens.evaluation.predictions import run_predictions
from microlens.evaluation.probe import (
    ShortcutWarning,
    probe_headline,
    probe_quantities,
    shortcut_probe,
)
from microlens.models.holdout import (
    EVALUATION_SPLIT,
    Predictions,
    observations_seen,
    require_test_split,
)

FRACTIONS = tuple(np.round(np.linspace(0.05, 1.0, 20), 2).tolist())
"""Default fractions of each light curve seen (5 %, 10 %, ..., 100 %)."""

TAUS = tuple(np.round(np.linspace(-2.0, 2.0, 41), 2).tolist())
"""Default times relative to the peak, ``(t - t_0) / t_E``."""

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
"""Default confidence thresholds of the decision-time sweep."""


# --------------------------------------------------------------------------------------------
# Early detection
# --------------------------------------------------------------------------------------------


def positions_at_fraction(lengths: np.ndarray, fraction: float) -> np.ndarray:
    """0-based index of the last observation seen after ``fraction`` of each light curve (see
    :func:`~microlens.models.holdout.observations_seen`)."""
    return observations_seen(lengths, fraction) - 1


def _add_point(curve: dict, labels: np.ndarray, predicted: np.ndarray | None) -> None:
    """Append accuracy and per-class recall of one curve point (None without events)."""
    has = predicted is not None and labels.size > 0
    curve["accuracy"].append(float(np.mean(predicted == labels)) if has else None)
    for c, name in enumerate(CLASS_NAMES):
        mine = labels == c if has else np.zeros(0, bool)
        curve["recall"][name].append(float(np.mean(predicted[mine] == c)) if mine.any() else None)


def accuracy_by_fraction(predictions: Predictions,
                         fractions: Sequence[float] = FRACTIONS) -> dict:
    """Accuracy and per-class recall of the prediction made after each fraction of the curve.

    Returns
    -------
    dict
        ``fraction`` (list), ``accuracy`` (list) and ``recall`` {class name: list}.
    """
    out = {"fraction": [float(f) for f in fractions], "accuracy": [],
           "recall": {name: [] for name in CLASS_NAMES}}
    for fraction in fractions:
        positions = positions_at_fraction(predictions.lengths, fraction)
        _add_point(out, predictions.labels, predictions.classes_at(positions))
    return out


def tau_of_observations(predictions: Predictions, t_0: np.ndarray, t_E: np.ndarray) -> np.ndarray:
    """``(t - t_0) / t_E`` of every observation ``(E, N)`` (NaN past each event's end)."""
    tau = (predictions.times - np.asarray(t_0)[:, None]) / np.asarray(t_E)[:, None]
    return np.where(predictions.valid, tau, np.nan)


def accuracy_by_tau(predictions: Predictions, t_0: np.ndarray, t_E: np.ndarray,
                    taus: Sequence[float] = TAUS) -> dict:
    """Accuracy of the latest prediction available at ``t = t_0 + tau * t_E``.

    The flat class has ``t_0`` and ``t_E`` drawn from the same priors as the lensing classes (and
    unused), so every class has a reference time. Events with no observation yet at ``tau`` have
    no prediction: they are left out of that point, and ``coverage`` says what fraction remained.

    Parameters
    ----------
    predictions : Predictions
    t_0, t_E : ndarray ``(E,)``
        Each event's time of peak [days] and Einstein time [days], aligned with
        ``predictions.rows``.
    taus : sequence of float

    Returns
    -------
    dict
        ``tau``, ``accuracy`` (None where no event has data), ``coverage`` and ``recall``
        {class name: list}.
    """
    tau_obs = np.nan_to_num(tau_of_observations(predictions, t_0, t_E), nan=np.inf)
    classes = predictions.logits.argmax(axis=-1)
    out = {"tau": [float(t) for t in taus], "accuracy": [], "coverage": [],
           "recall": {name: [] for name in CLASS_NAMES}}
    for tau in taus:
        seen = np.sum(tau_obs <= tau, axis=1)
        has = np.flatnonzero(seen > 0)
        out["coverage"].append(has.size / len(predictions))
        _add_point(out, predictions.labels[has],
                   classes[has, seen[has] - 1] if has.size else None)
    return out


def confidence_and_class(predictions: Predictions, chunk: int = 1024
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated top-class probability and predicted class after every observation, both
    ``(E, N)`` (computed ``chunk`` events at a time, so memory stays small for large test sets;
    the confidence is 0 past each event's end)."""
    confidence = np.zeros(predictions.logits.shape[:2], np.float32)
    predicted = np.zeros(predictions.logits.shape[:2], np.int8)
    # one temperature per observation count (a curve, or the scalar repeated)
    temperatures = predictions.temperatures(np.arange(predictions.logits.shape[1]))[:, None]
    for start in range(0, len(predictions), chunk):
        part = slice(start, start + chunk)
        probs = softmax(predictions.logits[part], temperatures)
        valid = np.arange(probs.shape[1]) < predictions.lengths[part, None]
        confidence[part] = np.where(valid, probs.max(axis=-1), 0.0)
        predicted[part] = probs.argmax(axis=-1)
    return confidence, predicted


def decision_points(predictions: Predictions, threshold: float,
                    confidence: np.ndarray | None = None) -> np.ndarray:
    """0-based index of the first observation whose calibrated top-class probability reaches
    ``threshold``; -1 where it never does. ``confidence`` may be passed from
    :func:`confidence_and_class` to avoid recomputing it."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
    if confidence is None:
        confidence, _ = confidence_and_class(predictions)
    confident = confidence >= threshold
    first = confident.argmax(axis=1)
    return np.where(confident.any(axis=1), first, -1)


def decision_sweep(predictions: Predictions, t_0: np.ndarray, t_E: np.ndarray,
                   thresholds: Sequence[float] = THRESHOLDS) -> dict:
    """Accuracy against how early the decision is made, over confidence thresholds.

    For each threshold, an event is *decided* at the first observation where the calibrated
    top-class probability reaches it, with the class predicted there. Reported per threshold: the
    fraction of events decided, the accuracy of those decisions, the median fraction of the light
    curve seen at the decision and the median (1-based) observation it is made at, and, for the
    lensing events (PSPL and binary), the median ``tau = (t - t_0) / t_E`` of the deciding
    observation and the fraction decided before the peak.
    """
    tau_obs = tau_of_observations(predictions, t_0, t_E)
    confidence, classes = confidence_and_class(predictions)
    lensing = predictions.labels > 0
    out = {key: [] for key in ("threshold", "decided_fraction", "accuracy", "median_fraction_seen",
                               "median_observation", "median_tau_lensing",
                               "decided_before_peak_lensing")}
    for threshold in thresholds:
        first = decision_points(predictions, threshold, confidence)
        decided = first >= 0
        rows = np.flatnonzero(decided)
        predicted = classes[rows, first[rows]]
        seen = (first[rows] + 1) / predictions.lengths[rows]
        tau = tau_obs[rows, first[rows]]
        lens = lensing[rows]
        out["threshold"].append(float(threshold))
        out["decided_fraction"].append(float(decided.mean()))
        out["accuracy"].append(float(np.mean(predicted == predictions.labels[rows]))
                               if rows.size else None)
        out["median_fraction_seen"].append(float(np.median(seen)) if rows.size else None)
        out["median_observation"].append(float(np.median(first[rows] + 1)) if rows.size else None)
        out["median_tau_lensing"].append(float(np.median(tau[lens])) if lens.any() else None)
        before_peak = decided & (tau_obs[np.arange(len(first)), np.maximum(first, 0)] < 0)
        out["decided_before_peak_lensing"].append(
            float(before_peak[lensing].sum() / max(int(lensing.sum()), 1)))
    return out


# --------------------------------------------------------------------------------------------
# Both label sets, Δχ² bins and the shortcut probe
# --------------------------------------------------------------------------------------------


def _proportion(hits: int, trials: int, level: float = 0.95) -> dict:
    """A rate with its Wilson interval: ``value`` (None for no trials), ``low``, ``high``, ``n``."""
    low, high = wilson_interval(hits, trials, level)
    return {"value": hits / trials if trials else None, "low": low, "high": high, "n": trials}


def label_set_scores(labels, predicted) -> dict:
    """Final answers scored against one label set.

    Returns
    -------
    dict
        ``accuracy``, ``binary_recall`` and ``pspl_called_binary`` (the share of the set's PSPL
        events predicted binary), each ``{value, low, high, n}`` with a 95 % Wilson interval;
        ``macro_f1``, ``binary_precision``, ``per_class`` and ``confusion`` as
        :func:`~microlens.core.metrics.classification_metrics`; ``class_counts``.
    """
    labels, predicted = np.asarray(labels, np.int64), np.asarray(predicted, np.int64)
    classification = classification_metrics(labels, predicted)
    binary, pspl = labels == BINARY, labels == PSPL
    return {
        "accuracy": _proportion(int(np.sum(predicted == labels)), labels.size),
        "macro_f1": classification["macro_f1"],
        "binary_precision": classification["per_class"]["binary"]["precision"],
        "binary_recall": _proportion(int(np.sum(predicted[binary] == BINARY)), int(binary.sum())),
        "pspl_called_binary": _proportion(int(np.sum(predicted[pspl] == BINARY)), int(pspl.sum())),
        "class_counts": {name: int(np.sum(labels == c)) for c, name in enumerate(CLASS_NAMES)},
        "per_class": classification["per_class"],
        "confusion": classification["confusion"],
    }


def contamination(labels, predicted, variable_kind=None) -> dict:
    """The two errors a survey search cares most about, with 95 % Wilson intervals.

    Parameters
    ----------
    labels, predicted : ``(E,)`` int
        True and predicted classes.
    variable_kind : ``(E,)`` int, optional
        :data:`microlens.simulation.variables.VARIABLE_KINDS` code of each event (0: constant star;
        lensing events 0). Absent in data sets written before variables existed.

    Returns
    -------
    dict
        ``no_event_called_lensing`` (the share of the no-event class called PSPL or binary) and
        ``by_kind`` (the same per kind of no-event star present: constant, cataclysmic, ...);
        ``lensing_called_no_event`` (the share of PSPL and binary events called no event) and
        the same for ``pspl_called_no_event`` and ``binary_called_no_event``. Each
        ``{value, low, high, n}``.
    """
    from microlens.simulation.variables import VARIABLE_KINDS

    labels, predicted = np.asarray(labels, np.int64), np.asarray(predicted, np.int64)
    none, lensing = labels == 0, labels > 0
    out = {
        "no_event_called_lensing": _proportion(int(np.sum(predicted[none] > 0)), int(none.sum())),
        "lensing_called_no_event": _proportion(int(np.sum(predicted[lensing] == 0)),
                                               int(lensing.sum())),
        "pspl_called_no_event": _proportion(int(np.sum(predicted[labels == PSPL] == 0)),
                                            int(np.sum(labels == PSPL))),
        "binary_called_no_event": _proportion(int(np.sum(predicted[labels == BINARY] == 0)),
                                              int(np.sum(labels == BINARY))),
        "by_kind": {},
    }
    kinds = (np.zeros(labels.size, np.int64) if variable_kind is None
             else np.asarray(variable_kind, np.int64))
    for code, name in enumerate(VARIABLE_KINDS):
        of = none & (kinds == code)
        if of.any():
            out["by_kind"][name] = _proportion(int(np.sum(predicted[of] > 0)), int(of.sum()))
    return out


def label_set_metrics(labels, predicted, dchi2_pspl=None, *,
                      threshold: float = DETECTABILITY_THRESHOLD) -> dict:
    """Final answers against the physical labels and, with detectability, the observable ones.

    Parameters
    ----------
    labels : ``(E,)`` int
        Physical classes (as stored).
    predicted : ``(E,)`` int
        Predicted classes.
    dchi2_pspl : ``(E,)``, optional
        Binarity Δχ² of each event. Without a finite value for every binary the observable set
        is None and ``observable_unavailable`` says why.
    threshold : float
        Binaries with Δχ² <= threshold are PSPL in the observable set.

    Returns
    -------
    dict
        ``threshold``, ``physical`` and ``observable`` (each :func:`label_set_scores` or None),
        ``n_relabelled`` (binaries that are PSPL in the observable set).
    """
    labels = np.asarray(labels, np.int64)
    out = {"threshold": float(threshold), "physical": label_set_scores(labels, predicted),
           "observable": None, "n_relabelled": None}
    binary = labels == BINARY
    dchi2 = None if dchi2_pspl is None else np.asarray(dchi2_pspl, np.float64)
    if dchi2 is None or not np.isfinite(dchi2[binary]).all():
        out["observable_unavailable"] = ("the dataset has no binarity Δχ² (dchi2_pspl) for its "
                                         "binaries (generated with detectability=False)")
        return out
    observable = observable_labels(labels, dchi2, threshold)
    out["observable"] = label_set_scores(observable, predicted)
    out["n_relabelled"] = int(np.sum(observable != labels))
    return out


def read_against_labels(score, labels, predicted, quantities: dict, dchi2_pspl=None, *,
                        threshold: float = DETECTABILITY_THRESHOLD,
                        score_name: str = "p_binary") -> dict:
    """Both label sets, binary recall in Δχ² bins and the shortcut probe of one classifier.

    Parameters
    ----------
    score : ``(E,)``
        The classifier's binary score (higher: more binary).
    labels, predicted : ``(E,)`` int
        Physical and predicted classes.
    quantities : dict
        Probe quantities (:func:`microlens.evaluation.probe.probe_quantities`).
    dchi2_pspl : ``(E,)``, optional
    threshold : float
    score_name : str

    Returns
    -------
    dict
        ``label_sets`` (:func:`label_set_metrics`), ``dchi2_bins``
        (:func:`~microlens.evaluation.analysis.limits.recall_by_dchi2`, None without detectability)
        and ``probe`` (:func:`~microlens.evaluation.probe.shortcut_probe`).
    """
    from microlens.evaluation.analysis.limits import recall_by_dchi2

    label_sets = label_set_metrics(labels, predicted, dchi2_pspl, threshold=threshold)
    has_dchi2 = label_sets["observable"] is not None
    return {
        "label_sets": label_sets,
        "dchi2_bins": recall_by_dchi2(labels, predicted, dchi2_pspl) if has_dchi2 else None,
        "probe": shortcut_probe(score, labels, quantities, dchi2_pspl if has_dchi2 else None,
                                threshold=threshold, score_name=score_name),
    }


def _peer_score(features: np.ndarray, feature: str) -> np.ndarray:
    """The peer's binarity statistic as a score; NaN (no PSPL fit: the peer calls such events
    not binary) ranks below every finite value."""
    values = np.asarray(features[feature], np.float64)
    finite = np.isfinite(values)
    return np.where(finite, values, (values[finite].min() - 1.0) if finite.any() else 0.0)


def _run_label_policy(run_dir) -> str:
    """The label policy a run was trained with (runs from before the policy: physical)."""
    from pathlib import Path

    from microlens.training.train import TrainConfig

    path = Path(run_dir) / "config.json"
    return TrainConfig.load(path).label_policy if path.exists() else "physical"


def _classifiers(summary: dict) -> list[tuple[str, dict]]:
    peer = summary.get("classical_peer")
    return [("transformer", summary)] + ([("classical peer", peer)] if peer else [])


def label_set_rows(summary: dict) -> list[dict]:
    """One row per classifier and label set of an evaluation summary (a table for 03):
    accuracy, binary recall and PSPL called binary with their 95 % Wilson intervals, macro F1."""
    rows = []
    for who, part in _classifiers(summary):
        for name, scores in (part.get("label_sets") or {}).items():
            if not isinstance(scores, dict) or "accuracy" not in scores:
                continue  # threshold, counts, or an unavailable set
            row = {"classifier": who, "labels": name}
            for key in ("accuracy", "binary_recall", "pspl_called_binary"):
                entry = scores[key]
                row[key] = entry["value"]
                row[f"{key} 95 %"] = (None if entry["low"] is None
                                      else f"[{entry['low']:.3f}, {entry['high']:.3f}]")
            row["macro_f1"] = scores["macro_f1"]
            rows.append(row)
    return rows


def probe_rows(summary: dict) -> list[dict]:
    """The shortcut probe of each classifier as table rows: ``classifier``, ``measure``
    (e.g. ``rho(score, t_E) among pspl``, ``AUC detectable_vs_pspl``), ``value``, its 95 %
    interval ``low`` and ``high``, ``n`` and ``p_value`` (correlations only)."""
    rows = []
    for who, part in _classifiers(summary):
        probe = part.get("probe")
        if not probe:
            continue
        for name, groups in probe["correlation"].items():
            for group, entry in groups.items():
                rows.append({"classifier": who, "measure": f"rho(score, {name}) among {group}",
                             "value": entry["rho"], "low": entry.get("low"),
                             "high": entry.get("high"), "n": entry["n"],
                             "p_value": entry["p_value"]})
        for name, entry in probe["auc"].items():
            rows.append({"classifier": who, "measure": f"AUC {name}", "value": entry["auc"],
                         "low": entry.get("low"), "high": entry.get("high"),
                         "n": entry["n_positive"] + entry["n_negative"], "p_value": None})
    return rows


def _emit_probe_warnings(probe: dict, who: str) -> None:
    for message in probe["warnings"]:
        warnings.warn(f"{who}: {message}", ShortcutWarning, stacklevel=3)


# --------------------------------------------------------------------------------------------
# Whole evaluation
# --------------------------------------------------------------------------------------------


CALIBRATION_FRACTIONS = (0.1, 0.25, 0.5, 1.0)
"""Fractions of each curve at which :func:`calibration_by_fraction` reads the ECE."""


def calibration_by_fraction(predictions: Predictions,
                            fractions: Sequence[float] = CALIBRATION_FRACTIONS) -> dict:
    """Expected calibration error of the answers after ``fractions`` of each curve, before and
    after the run's temperature (its curve over observations seen, when it has one).

    The fraction only picks which answers are scored (``ceil(f n)`` observations of an event of
    ``n``); the temperature applied to each depends on its count of observations, as in a
    stream. Returns ``{"fraction": [...], "before": [...], "after": [...]}``.
    """
    out = {"fraction": [float(f) for f in fractions], "before": [], "after": []}
    for fraction in fractions:
        positions = positions_at_fraction(predictions.lengths, fraction)
        for key, calibrated in (("before", False), ("after", True)):
            out[key].append(expected_calibration_error(
                predictions.labels, predictions.at(positions, calibrated=calibrated)))
    return out


def final_metrics(predictions: Predictions, *, n_bootstrap: int = 1000, seed: int = 0,
                  progress: bool = False) -> dict:
    """Metrics of each event's final prediction (calibrated), calibration before and after the
    temperature, and bootstrap intervals on the headline numbers.

    Returns
    -------
    dict
        ``classification`` (see :func:`~microlens.core.metrics.classification_metrics`), ``roc``,
        ``precision_recall``, ``confidence_histogram``, ``calibration`` {before, after} with
        ``ece``, ``nll`` and the ``reliability`` diagram, and ``bootstrap``.
    """
    labels = predictions.labels
    calibrated, raw = predictions.final(calibrated=True), predictions.final(calibrated=False)
    calibration = {}
    for key, probs in (("before", raw), ("after", calibrated)):
        diagram = reliability_diagram(labels, probs)
        calibration[key] = {"ece": diagram["ece"], "nll": negative_log_likelihood(labels, probs),
                            "reliability": diagram}
    calibration["temperature"] = predictions.temperature
    if predictions.temperature_curve:
        calibration["temperature_curve"] = predictions.temperature_curve
    calibration["temperature_fitted_on"] = "validation split (microlens.training.train)"
    return {
        "classification": classification_metrics(labels, calibrated.argmax(axis=1)),
        "roc": roc_curves(labels, calibrated),
        "precision_recall": precision_recall_curves(labels, calibrated),
        "confidence_histogram": confidence_histogram(labels, calibrated),
        "calibration": calibration,
        "bootstrap": bootstrap_intervals(labels, calibrated, n_samples=n_bootstrap, seed=seed,
                                         progress=progress),
    }


def time_inference(model, inputs: Sequence, *, threads: int = 1, device: str = "cpu") -> float:
    """Seconds of one :meth:`~microlens.models.transformer.MicrolensTransformer.predict_logits` pass
    over ``inputs`` (times, flux, errors, mask) after a warm-up pass, on ``threads`` CPU threads."""
    import torch

    inputs = [x.to(device) for x in inputs]
    model = model.to(device)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model.predict_logits(*inputs)  # warm-up
        sync()
        start = time.perf_counter()
        model.predict_logits(*inputs)
        sync()
        return time.perf_counter() - start
    finally:
        torch.set_num_threads(previous)


def time_model(model, store, rows: Sequence[int], *, batch_size: int = 64, threads: int = 1,
               device: str = "cpu") -> dict:
    """Wall time per event of the transformer's batch inference on up to ``batch_size`` test
    events (``threads`` CPU threads, so it compares per core with the classical peer's fits)."""
    rows = require_test_split(store, rows)
    batch = store.batch(rows[:batch_size])
    inputs = [batch[k] for k in ("times", "flux", "flux_err", "mask")]
    elapsed = time_inference(model, inputs, threads=threads, device=device)
    n = int(batch["times"].shape[0])
    return {"seconds_per_event": elapsed / n, "events": n, "threads": threads,
            "device": str(device)}


def model_timing(model, store, rows: Sequence[int], *, batch_size: int = 64,
                 device: str = "cpu") -> dict:
    """Time per test event of a model of any kind: ``{"kind", "model": {...}}``, plus the same
    record under ``"transformer"`` for a transformer (the key older readers use).

    Neural kinds: :func:`time_model` (one batched pass over up to ``batch_size`` events); the
    ``features`` kind: :func:`microlens.models.features.time_feature_model` (feature extraction at
    every update fraction plus the trees, per event, on up to 16 events), both on one core.
    """
    kind = getattr(model, "kind", "") or "transformer"
    if kind == "features":
        from microlens.models.features import time_feature_model

        record = time_feature_model(model, store, rows, max_events=min(16, batch_size))
    else:
        record = time_model(model, store, rows, batch_size=batch_size, device=device)
    out = {"kind": kind, "model": record}
    if kind == "transformer":
        out["transformer"] = record
    return out


def headline(summary: dict) -> dict:
    """The flat dict of numbers a study table wants from an evaluation summary."""
    final = summary["final"]
    classification = final["classification"]
    intervals = final["bootstrap"]["intervals"]
    out = {
        "accuracy": classification["accuracy"],
        "macro_f1": classification["macro_f1"],
        "binary_precision": classification["per_class"]["binary"]["precision"],
        "binary_recall": classification["per_class"]["binary"]["recall"],
        "macro_auc": final["roc"]["macro_auc"],
        "ece_before": final["calibration"]["before"]["ece"],
        "ece_after": final["calibration"]["after"]["ece"],
        "accuracy_at_50pct": summary["early_detection"]["accuracy_at_50pct"],
    }
    timing = summary["timing"]
    model_time = timing.get("model", timing.get("transformer"))  # older summaries: no "model"
    out["model_kind"] = timing.get("kind", "transformer")
    out["model_seconds_per_event"] = model_time["seconds_per_event"]
    if out["model_kind"] == "transformer":  # the key of summaries before model kinds
        out["transformer_seconds_per_event"] = model_time["seconds_per_event"]
    for name in ("accuracy", "macro_f1", "binary_recall"):
        if name in intervals:
            out[f"{name}_low"] = intervals[name]["low"]
            out[f"{name}_high"] = intervals[name]["high"]
    out.update(_label_headline(summary))
    out.update(_contamination_headline(summary))
    peer = summary.get("classical_peer")
    if peer:
        out["peer_accuracy"] = peer["accuracy"]
        out["peer_binary_recall"] = peer["binary_recall"]
        out["peer_seconds_per_event"] = peer["seconds_per_event"]
        out.update(_label_headline(peer, "peer_"))
        out.update(_contamination_headline(peer, "peer_"))
    return out


def _contamination_headline(summary: dict, prefix: str = "") -> dict:
    """Flat numbers of :func:`contamination` (none for summaries written before it)."""
    found = summary.get("contamination")
    if not found:
        return {}
    out = {}
    entries = {"no_event_called_lensing": found["no_event_called_lensing"],
               "lensing_called_no_event": found["lensing_called_no_event"],
               **{f"{kind}_called_lensing": entry for kind, entry in found["by_kind"].items()}}
    for name, entry in entries.items():
        out[f"{prefix}{name}"] = entry["value"]
        out[f"{prefix}{name}_low"] = entry["low"]
        out[f"{prefix}{name}_high"] = entry["high"]
    return out


def _label_headline(summary: dict, prefix: str = "") -> dict:
    """Flat numbers of :func:`read_against_labels`'s keys in ``summary`` (none if absent):
    PSPL called binary; the observable label set's accuracy, binary recall (the recall of the
    detectable binaries) and PSPL called binary with their intervals; recall per Δχ² bin; the
    probe's correlations, detectability AUCs and warning count."""
    out = {}
    sets = summary.get("label_sets")
    if sets:
        out[f"{prefix}pspl_called_binary"] = sets["physical"]["pspl_called_binary"]["value"]
        observable = sets.get("observable")
        if observable:
            out[f"{prefix}observable_macro_f1"] = observable["macro_f1"]
            for name in ("accuracy", "binary_recall", "pspl_called_binary"):
                entry = observable[name]
                out[f"{prefix}observable_{name}"] = entry["value"]
                out[f"{prefix}observable_{name}_low"] = entry["low"]
                out[f"{prefix}observable_{name}_high"] = entry["high"]
    bins = summary.get("dchi2_bins")
    if bins:
        for name, recall in zip(bins["bin"], bins["recall"], strict=True):
            out[f"{prefix}binary_recall_dchi2_{name}"] = recall
    if summary.get("probe"):
        out.update(probe_headline(summary["probe"], prefix))
    return out


def evaluate_run(run_dir: str | os.PathLike, dataset: str | os.PathLike | None = None, *,
                 n_events: int = 0, batch_size: int = 64, n_bootstrap: int = 1000, seed: int = 0,
                 fractions: Sequence[float] = FRACTIONS, taus: Sequence[float] = TAUS,
                 thresholds: Sequence[float] = THRESHOLDS, peer: bool = True,
                 peer_fractions: Sequence[float] = (0.25, 0.5, 0.75, 1.0), workers: int = 1,
                 device: str = "cpu", progress: bool = False) -> tuple[dict, Predictions]:
    """Evaluate a run on the test split: every number of ``evaluation_summary.json``.

    Parameters
    ----------
    run_dir : path
        Run directory of :func:`microlens.training.train.train` or, for the ``features`` kind,
        :func:`microlens.models.features.train_features`.
    dataset : path, optional
        Dataset whose test split is evaluated (default: the run's own).
    n_events : int
        Evaluate a random subset of this many test events (0: all), drawn with ``seed``.
    batch_size : int
        Events per inference pass.
    n_bootstrap : int
        Bootstrap resamples for the confidence intervals.
    seed : int
        Seed of the subset and of the bootstrap.
    fractions, taus, thresholds : sequences
        Grids of the early-detection curves and of the decision-time sweep.
    peer : bool
        Also fit and evaluate the classical peer (tuned on the validation split).
    peer_fractions : sequence of float
        Fractions of each curve the peer is evaluated at (its early-detection points).
    workers : int
        Processes for the peer's fits and for a ``features`` run's feature extraction.
    device : str
        Inference device: ``'auto'`` (the GPU when there is one), ``'cpu'`` or ``'cuda'``.
    progress : bool
        Progress bars.

    Returns
    -------
    (dict, Predictions)
        The JSON-ready summary and the per-observation test predictions behind it. The
        summary records the run's ``model_kind`` and its ``timing`` (:func:`model_timing`).
    """
    from microlens.core.devices import local_device
    from microlens.evaluation.predictions import run_dataset
    from microlens.models.holdout import select_test_events
    from microlens.models.registry import load_model

    device = str(local_device(device))  # 'auto' -> the GPU when there is one
    if n_events < 0:
        raise ValueError(f"n_events must be >= 0 (0 means the whole test split), got {n_events}")
    store = run_dataset(run_dir, dataset)
    rows = select_test_events(store, n_events or None, seed=seed)
    predictions, store = run_predictions(run_dir, store, rows=rows, batch_size=batch_size,
                                         device=device, progress=progress, workers=workers)
    model = load_model(run_dir)
    kind = getattr(model, "kind", "") or "transformer"
    params = store.params[predictions.rows]
    t_0, t_E = np.asarray(params["t_0"]), np.asarray(params["t_E"])
    half = positions_at_fraction(predictions.lengths, 0.5)
    at_half = float(np.mean(predictions.classes_at(half) == predictions.labels))
    # the temperature was fitted on final answers; is the halfway answer calibrated too?
    ece_half = {key: expected_calibration_error(predictions.labels,
                                                predictions.at(half, calibrated=calibrated))
                for key, calibrated in (("before", False), ("after", True))}
    summary = {
        "run_dir": str(predictions.info.get("run_dir", run_dir)),
        "dataset": str(store.path),
        "split": EVALUATION_SPLIT,
        "n_events": len(predictions),
        "class_counts": {name: int(np.sum(predictions.labels == c))
                         for c, name in enumerate(CLASS_NAMES)},
        "seed": seed,
        "final": final_metrics(predictions, n_bootstrap=n_bootstrap, seed=seed,
                               progress=progress),
        "early_detection": {"by_fraction": accuracy_by_fraction(predictions, fractions),
                            "accuracy_at_50pct": at_half, "ece_at_50pct": ece_half,
                            "ece_by_fraction": calibration_by_fraction(predictions),
                            "by_tau": accuracy_by_tau(predictions, t_0, t_E, taus)},
        "decision": decision_sweep(predictions, t_0, t_E, thresholds),
        "model_kind": kind,
        "timing": model_timing(model, store, predictions.rows, batch_size=batch_size,
                               device=device),
        "label_policy": _run_label_policy(run_dir),
    }
    dchi2 = np.asarray(params["dchi2_pspl"], np.float64)
    quantities = probe_quantities(store, predictions.rows)
    final = predictions.final(calibrated=True)
    summary.update(read_against_labels(final[:, BINARY], predictions.labels, final.argmax(axis=1),
                                       quantities, dchi2,
                                       score_name="calibrated final p_binary"))
    _emit_probe_warnings(summary["probe"], kind)
    kinds = (np.asarray(params["variable_kind"]) if "variable_kind" in params.dtype.names
             else None)
    summary["contamination"] = contamination(predictions.labels, final.argmax(axis=1), kinds)
    if peer:
        from microlens.models.peer import evaluate_peer

        result = evaluate_peer(store, predictions.rows, fractions=peer_fractions,
                               workers=workers, progress=progress)
        if not np.array_equal(result.rows, predictions.rows):
            raise RuntimeError("the classical peer's rows are not aligned with the predictions")
        feature = result.peer.binary_feature
        full = result.fractions.index(1.0)
        summary["classical_peer"] = result.summary
        result.summary.update(read_against_labels(
            _peer_score(result.features[:, full], feature), result.labels, result.final,
            quantities, dchi2, score_name=f"peer {feature} statistic"))
        _emit_probe_warnings(result.summary["probe"], "classical peer")
        result.summary["contamination"] = contamination(result.labels, result.final, kinds)
    summary["headline"] = headline(summary)
    return summary, predictions


__all__ = [
    "CALIBRATION_FRACTIONS", "FRACTIONS", "TAUS", "THRESHOLDS", "accuracy_by_fraction",
    "accuracy_by_tau", "calibration_by_fraction", "contamination",
    "confidence_and_class", "decision_points", "decision_sweep", "evaluate_run",
    "final_metrics", "headline", "label_set_metrics", "label_set_rows", "label_set_scores",
    "model_timing",
    "positions_at_fraction", "probe_rows", "read_against_labels", "tau_of_observations",
    "time_inference", "time_model",
]  # fmt: skip
