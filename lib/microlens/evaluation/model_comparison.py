"""One row per model kind, and one for the classical peer, from finished study cells.

The ``models`` study (``studies/models.yaml``) trains every kind of
:data:`microlens.models.registry.KINDS` on one data set and evaluates each with ``03_evaluate``.
This module turns each cell into a row of the comparison table, on the same test events:

* **quality**, read from the cell's ``evaluation_summary.json``
(:func:`~microlens.evaluation.evaluate.
  evaluate_run`): accuracy, recall of the detectable binaries (binarity Δχ² > 100) and of the
  rest, PSPL events called binary, the shortcut probe's Spearman correlations (among PSPL
  events and among binaries), the ECE after the temperature and the accuracy after 50 % of each
  curve. Rates carry 95 % Wilson intervals (the same kind for every row, the peer's included);
  correlations their Fisher-z intervals;
* **size and training cost**, read from the run directory (``config.json``, ``metrics.json``,
  ``history.csv``): parameters, training minutes and training events per second (median over
  epochs, measured by the training itself with the cell's threads);
* **inference cost**, measured here on one CPU thread after the cells have run, so every kind
  is timed under the same conditions: inference events per second (one
  :meth:`~microlens.models.base.CausalClassifier.predict_logits` pass over up to 64 test events,
  answers after every observation, :func:`~microlens.evaluation.evaluate.time_model`) and streaming
  milliseconds per observation (:func:`~microlens.models.stream.stream_latency`, one event). A kind
  that cannot stream (``features``) has None there ("n/a" in the table); its inference cost is
  the one its evaluation recorded. The peer's inference cost is its fits' wall time per event
  (one answer per fit, not one per observation).

The measured costs are kept in ``<cell>/model_costs.json`` (keyed by the run's files), so
rebuilding the report does not measure again. ``python -m microlens.workflow.studies run models``
writes the table as ``outputs/models/model_comparison.{csv,json,md}``
(:mod:`microlens.workflow.studies.report`).

Quick use::

    from microlens.evaluation.model_comparison import comparison_row, peer_row
    row = comparison_row("outputs/models/model_kind=cnn")
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

from microlens.core.metrics import wilson_interval
from microlens.core.paths import resolve_path, write_json_atomic
from microlens.core.tables import write_table
from microlens.data.summaries import DETECTABILITY_THRESHOLD
from microlens.evaluation.probe import QUANTITIES

EVALUATION_RECORD = "evaluation_summary.json"
COSTS_FILE = "model_costs.json"
PEER = "classical peer"
PROBE_GROUPS = ("pspl", "binary")
INFERENCE_EVENTS = 64
"""Test events of the timed inference pass (:func:`~microlens.evaluation.evaluate.time_model`)."""
STREAM_OBSERVATIONS = 500
"""Timed streaming updates (after 20 untimed ones)."""

_RATES = ("accuracy", "detectable_binary_recall", "other_binary_recall", "pspl_called_binary",
          "accuracy_at_50pct")
COLUMNS: dict[str, str] = {
    "model": "model kind, or 'classical peer'",
    "cell": "the study cell the row comes from",
    "label_policy": "labels the model was trained with (physical or observable)",
    "n_test_events": "test events scored (the same for every row)",
    "accuracy": "final-answer accuracy on the physical labels (95 % Wilson: _low, _high)",
    "detectable_binary_recall": "binaries of Δχ² > 100 called binary (95 % Wilson)",
    "n_detectable_binaries": "test binaries of Δχ² > 100",
    "other_binary_recall": "binaries of Δχ² <= 100 called binary (95 % Wilson)",
    "n_other_binaries": "test binaries of Δχ² <= 100",
    "pspl_called_binary": "PSPL events called binary (95 % Wilson)",
    **{f"probe_rho_{q}_{g}": f"Spearman rho of the binary score with {q} among {g} events "
       "(95 % Fisher-z: _low, _high)" for g in PROBE_GROUPS for q in QUANTITIES},
    "probe_warnings": "shortcut warnings of the probe (score follows t_E or u_0 among PSPL)",
    "auc_detectable_vs_pspl": "AUC of detectable binaries against PSPL events (bootstrap 95 %)",
    "ece_before": "expected calibration error of the final answers before the temperature",
    "ece_after": "expected calibration error of the final answers after the temperature",
    "accuracy_at_50pct": "accuracy after the first 50 % of each curve (95 % Wilson)",
    "n_parameters": "trainable parameters",
    "train_minutes": "training wall time (sum of epochs; features: feature extraction + fit)",
    "train_events_per_second": "training events per second (median over epochs)",
    "pretrain_minutes": "self-supervised pretraining wall time the run started from (masked)",
    "inference_events_per_second": "batch inference, one CPU thread (peer: its fits)",
    "stream_ms_per_observation": "streaming update per observation, one event, one CPU thread",
    "run_dir": "the run directory",
}
"""Every column of the comparison table, with what it holds (rates also have ``_low`` and
``_high``; the probe's correlations and the AUC too)."""

_WITH_INTERVAL = (*_RATES, "auc_detectable_vs_pspl",
                  *(f"probe_rho_{q}_{g}" for g in PROBE_GROUPS for q in QUANTITIES))


def csv_columns() -> list[str]:
    """The flat CSV header: each column of :data:`COLUMNS`, intervals after their value."""
    out = []
    for name in COLUMNS:
        out.append(name)
        if name in _WITH_INTERVAL:
            out += [f"{name}_low", f"{name}_high"]
    return out


# --------------------------------------------------------------------------------------------
# Reading the evaluation
# --------------------------------------------------------------------------------------------


def _get(data, *keys, default=None):
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def _put(row: dict, name: str, entry: dict | None, value_key: str = "value") -> None:
    """``row[name]``, ``row[name_low]``, ``row[name_high]`` from ``{value, low, high}``."""
    entry = entry or {}
    row[name] = entry.get(value_key)
    row[f"{name}_low"] = entry.get("low")
    row[f"{name}_high"] = entry.get("high")


def _wilson(hits: int, trials: int) -> dict:
    low, high = wilson_interval(hits, trials)
    return {"value": hits / trials if trials else None, "low": low, "high": high, "n": trials}


def _rate(value, trials) -> dict:
    """A rate with its Wilson interval from its value and count (``value * n`` hits)."""
    if value is None or not trials:
        return {"value": value, "low": None, "high": None, "n": trials}
    return {**_wilson(int(round(float(value) * trials)), int(trials)), "value": float(value)}


def binary_recall_split(dchi2_bins: dict | None,
                        threshold: float = DETECTABILITY_THRESHOLD) -> tuple[dict, dict]:
    """Recall of the detectable binaries (Δχ² > ``threshold``) and of the rest, each
    ``{value, low, high, n}`` (95 % Wilson), pooled from the Δχ² bins of an evaluation
    (:func:`~microlens.evaluation.analysis.limits.recall_by_dchi2`; ``threshold`` must be one of its
    edges).
    Empty entries without bins."""
    empty = {"value": None, "low": None, "high": None, "n": 0}
    if not dchi2_bins or float(threshold) not in [float(e) for e in dchi2_bins["edges"]]:
        return dict(empty), dict(empty)
    counts = {"detectable": [0, 0], "other": [0, 0]}
    for high, n, recall in zip(dchi2_bins["high"], dchi2_bins["n_binary"],
                               dchi2_bins["recall"], strict=True):
        part = counts["other" if high is not None and high <= threshold else "detectable"]
        part[1] += int(n)
        if n:
            part[0] += int(round(float(recall) * int(n)))
    return _wilson(*counts["detectable"]), _wilson(*counts["other"])


def _quality(part: dict, n_events: int | None, row: dict) -> None:
    """The quality columns of one classifier's section (the model's summary, or its
    ``classical_peer``), in place."""
    physical = _get(part, "label_sets", "physical") or {}
    observable = _get(part, "label_sets", "observable") or {}
    accuracy = physical.get("accuracy")
    if accuracy is None:  # a summary without label sets: the plain accuracy
        accuracy = _rate(_get(part, "final", "classification", "accuracy",
                              default=part.get("accuracy")), n_events)
    _put(row, "accuracy", accuracy)
    detectable, other = binary_recall_split(part.get("dchi2_bins"))
    if observable.get("binary_recall"):
        detectable = observable["binary_recall"]  # the same binaries, scored by 03 itself
    _put(row, "detectable_binary_recall", detectable)
    row["n_detectable_binaries"] = detectable.get("n")
    _put(row, "other_binary_recall", other)
    row["n_other_binaries"] = other.get("n")
    _put(row, "pspl_called_binary", physical.get("pspl_called_binary"))
    probe = part.get("probe") or {}
    for group in PROBE_GROUPS:
        for quantity in QUANTITIES:
            _put(row, f"probe_rho_{quantity}_{group}",
                 _get(probe, "correlation", quantity, group), "rho")
    row["probe_warnings"] = len(probe["warnings"]) if "warnings" in probe else None
    _put(row, "auc_detectable_vs_pspl", _get(probe, "auc", "detectable_vs_pspl"), "auc")


def _model_quality(evaluation: dict, row: dict) -> None:
    n = evaluation.get("n_events")
    row["n_test_events"] = n
    row["label_policy"] = evaluation.get("label_policy")
    _quality(evaluation, n, row)
    row["ece_before"] = _get(evaluation, "final", "calibration", "before", "ece")
    row["ece_after"] = _get(evaluation, "final", "calibration", "after", "ece")
    _put(row, "accuracy_at_50pct",
         _rate(_get(evaluation, "early_detection", "accuracy_at_50pct"), n))


def peer_row(evaluation: dict, cell: str = "") -> dict | None:
    """The classical peer's row from an evaluation summary (None when it has no peer).

    The peer has no probabilities (ECE), weights or stream: those columns are None.
    """
    peer = evaluation.get("classical_peer")
    if not peer:
        return None
    n = evaluation.get("n_events")
    row = dict.fromkeys(csv_columns())
    row.update(model=PEER, cell=cell, n_test_events=n, label_policy="physical (tuned)")
    _quality(peer, n, row)
    half = next((p for p in peer.get("fractions", []) if float(p["fraction"]) == 0.5), None)
    _put(row, "accuracy_at_50pct", _rate(half["accuracy"] if half else None, n))
    seconds = peer.get("seconds_per_event")
    row["inference_events_per_second"] = _per_second(seconds)
    return row


# --------------------------------------------------------------------------------------------
# The run: size, training cost, and inference cost measured here
# --------------------------------------------------------------------------------------------


def _per_second(seconds) -> float | None:
    return 1.0 / seconds if isinstance(seconds, (int, float)) and seconds > 0 else None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def run_kind(run_dir) -> str:
    """The model kind of a run directory (``config.json``; runs from before kinds: transformer)."""
    config = _read_json(resolve_path(run_dir) / "config.json")
    return (config.get("model") or {}).get("kind", "transformer")


def training_cost(run_dir) -> dict:
    """``n_parameters``, ``train_minutes`` and ``train_events_per_second`` of a run directory
    (``metrics.json``, ``config.json`` and ``history.csv``; None where the run did not say)."""
    run_dir = resolve_path(run_dir)
    metrics, config = _read_json(run_dir / "metrics.json"), _read_json(run_dir / "config.json")
    seconds = None
    parts = [metrics.get(k) for k in ("feature_seconds", "fit_seconds")]
    if any(isinstance(v, (int, float)) for v in parts):  # features: extraction + boosting
        seconds = sum(float(v) for v in parts if isinstance(v, (int, float)))
    else:  # a network: its epochs
        try:
            with open(run_dir / "history.csv", newline="", encoding="utf-8") as handle:
                seconds = sum(float(r["epoch_seconds"]) for r in csv.DictReader(handle))
        except (OSError, KeyError, ValueError, TypeError):
            if isinstance(metrics.get("train_seconds"), (int, float)):
                seconds = float(metrics["train_seconds"])
    return {"n_parameters": metrics.get("n_parameters", config.get("n_parameters")),
            "train_minutes": None if seconds is None else seconds / 60,
            "train_events_per_second": metrics.get("train_events_per_second"),
            "pretrain_minutes": pretraining_minutes(config)}


def pretraining_minutes(config: dict) -> float | None:
    """Wall time of the pretraining run a ``masked`` run started from (its ``metrics.json``
    ``seconds``), in minutes; None for a run without one (or one that did not record it)."""
    pretrained = (config.get("model") or {}).get("pretrained")
    if not pretrained:
        return None
    seconds = _read_json(resolve_path(pretrained) / "metrics.json").get("seconds")
    return float(seconds) / 60 if isinstance(seconds, (int, float)) else None


def _recorded_inference(evaluation: dict, kind: str) -> float | None:
    """Events per second of the inference the evaluation timed (for kinds not measured here)."""
    timing = evaluation.get("timing") or {}
    for key in ("model", kind, "transformer"):
        seconds = _get(timing, key, "seconds_per_event")
        if seconds is not None:
            return _per_second(seconds)
    return None


def measure_costs(run_dir, dataset, *, threads: int = 1, events: int = INFERENCE_EVENTS,
                  stream_observations: int = STREAM_OBSERVATIONS) -> dict:
    """Inference events per second and streaming ms per observation of a neural run, on
    ``threads`` CPU threads (:func:`~microlens.evaluation.evaluate.time_model` over the first
    ``events``
    test events of ``dataset``; :func:`~microlens.models.stream.stream_latency` on one event).

    Returns
    -------
    dict
        ``inference_events_per_second``, ``stream_ms_per_observation`` (None for a kind that
        cannot stream), ``stream_p95_ms`` and the settings.
    """
    from microlens.data.store import open_dataset
    from microlens.evaluation.evaluate import time_model
    from microlens.models.registry import load_model, model_kind

    model = load_model(run_dir)
    kind = model_kind(run_kind(run_dir))
    store = open_dataset(resolve_path(dataset))
    timed = time_model(model, store, store.indices("test")[:events], batch_size=events,
                       threads=threads)
    out = {"threads": threads, "inference_events": timed["events"],
           "inference_events_per_second": _per_second(timed["seconds_per_event"]),
           "stream_ms_per_observation": None, "stream_p95_ms": None,
           "stream_observations": stream_observations}
    if kind.streams:
        from microlens.models.stream import stream_latency

        latency = stream_latency(model, n_observations=stream_observations, n_events=1,
                                 threads=threads)
        out["stream_ms_per_observation"] = latency["mean_s"] * 1e3
        out["stream_p95_ms"] = latency["p95_s"] * 1e3
    return out


def _run_stamp(run_dir: Path) -> list:
    """What the measured costs depend on: the run's files, by size and modification time."""
    stamp = []
    for name in ("config.json", "normalization.json", "best.pt", "metrics.json"):
        path = run_dir / name
        if path.is_file():
            info = path.stat()
            stamp.append([name, info.st_size, info.st_mtime_ns])
    return stamp


def cached_costs(cell_dir, run_dir, dataset, *, measure: bool = True, **options) -> dict:
    """:func:`measure_costs` of a neural run, kept in ``<cell_dir>/model_costs.json`` and
    measured again only when the run's files changed. A features run: nothing to measure
    (empty dict). A measurement that fails gives ``{"error": ...}`` (the table says n/a)."""
    from microlens.models.registry import model_kind

    run_dir = resolve_path(run_dir)
    try:
        if not model_kind(run_kind(run_dir)).neural:
            return {}
    except ValueError as exc:
        return {"error": str(exc)}
    path = Path(cell_dir) / COSTS_FILE
    stamp = [str(run_dir), _run_stamp(run_dir)]
    cached = _read_json(path)
    if cached.get("stamp") == stamp and "costs" in cached:
        return cached["costs"]
    if not measure:
        return {}
    try:
        costs = measure_costs(run_dir, dataset, **options)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    try:
        write_json_atomic(path, {"stamp": stamp, "costs": costs})
    except OSError:
        pass  # a read-only cell: measured again next time
    return costs


def comparison_row(cell_dir, *, cell: str | None = None, run_dir=None, dataset=None,
                   measure: bool = True, **options) -> dict:
    """One model's row of the comparison table from a cell folder holding ``03_evaluate``'s
    ``evaluation_summary.json``.

    Parameters
    ----------
    cell_dir : path
        The cell (or any ``03_evaluate`` output folder).
    cell : str, optional
        The cell's name in the table (default: the folder's name).
    run_dir, dataset : path, optional
        The run and data set (default: those the evaluation recorded).
    measure : bool
        Measure inference and streaming costs of a neural run when they are not cached.
    **options
        Passed to :func:`measure_costs` (``threads``, ``events``, ``stream_observations``).

    Returns
    -------
    dict
        Every column of :func:`csv_columns` (None where not measured or not applicable).

    Raises
    ------
    FileNotFoundError
        When the folder has no evaluation summary.
    """
    cell_dir = resolve_path(cell_dir)
    source = cell_dir / EVALUATION_RECORD
    if not source.is_file():
        raise FileNotFoundError(f"{source} is missing: run 03_evaluate in that cell first")
    evaluation = json.loads(source.read_text(encoding="utf-8"))
    run_dir = resolve_path(run_dir or evaluation["run_dir"])
    dataset = dataset or evaluation.get("dataset")
    kind = run_kind(run_dir)
    row = dict.fromkeys(csv_columns())
    row.update(model=kind, cell=cell or cell_dir.name, run_dir=str(run_dir))
    _model_quality(evaluation, row)
    row.update(training_cost(run_dir))
    config = _read_json(run_dir / "config.json")
    row["label_policy"] = (config.get("train") or {}).get("label_policy") or row["label_policy"]
    costs = cached_costs(cell_dir, run_dir, dataset, measure=measure, **options)
    row["inference_events_per_second"] = (costs.get("inference_events_per_second")
                                          or _recorded_inference(evaluation, kind))
    row["stream_ms_per_observation"] = costs.get("stream_ms_per_observation")
    if costs.get("error"):
        row["cost_error"] = costs["error"]
    return row


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


MARKDOWN_COLUMNS = (
    ("model", "model"), ("accuracy", "accuracy"),
    ("detectable_binary_recall", "recall, binaries Δχ² > 100"),
    ("other_binary_recall", "recall, binaries Δχ² ≤ 100"),
    ("pspl_called_binary", "PSPL called binary"),
    ("probe_rho_t_E_pspl", "ρ(score, t_E) PSPL"), ("probe_rho_u_0_pspl", "ρ(score, u_0) PSPL"),
    ("probe_rho_peak_significance_pspl", "ρ(score, peak sig.) PSPL"),
    ("probe_rho_t_E_binary", "ρ(score, t_E) binary"),
    ("probe_rho_u_0_binary", "ρ(score, u_0) binary"),
    ("ece_after", "ECE after T"), ("accuracy_at_50pct", "accuracy at 50 %"),
    ("n_parameters", "parameters"), ("train_minutes", "training min"),
    ("pretrain_minutes", "pretraining min"),
    ("train_events_per_second", "training events/s"),
    ("inference_events_per_second", "inference events/s"),
    ("stream_ms_per_observation", "streaming ms/obs"),
)
"""(column, header) of the markdown table; values with intervals are written ``v [low, high]``."""


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


def format_value(row: dict, column: str) -> str:
    """A cell of the markdown table: ``0.901 [0.883, 0.916]``, ``n/a`` where not applicable."""
    value = _number(row.get(column))
    if value is None:
        return str(row.get(column) or "") if column in ("model", "cell") else "n/a"
    if column == "n_parameters":
        return f"{value / 1e6:.2f} M" if value >= 1e4 else f"{int(value)}"
    if column in ("train_events_per_second", "inference_events_per_second"):
        return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"
    if column in ("stream_ms_per_observation", "train_minutes", "pretrain_minutes"):
        return f"{value:.2f}" if value < 10 else f"{value:.1f}"
    text = f"{value:.2f}" if column.startswith("probe_rho") else f"{value:.3f}"
    low, high = _number(row.get(f"{column}_low")), _number(row.get(f"{column}_high"))
    if low is not None and high is not None:
        digits = 2 if column.startswith("probe_rho") else 3
        text += f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text


def markdown_table(rows: Sequence[dict]) -> str:
    """The comparison as a markdown table, one line per row."""
    head = "| " + " | ".join(h for _, h in MARKDOWN_COLUMNS) + " |"
    rule = "|" + "---|" * len(MARKDOWN_COLUMNS)
    lines = [head, rule]
    for row in rows:
        lines.append("| " + " | ".join(format_value(row, c) for c, _ in MARKDOWN_COLUMNS)
                     + " |")
    return "\n".join(lines)


def table_notes(rows: Sequence[dict]) -> list[str]:
    """What the table's numbers are (test events, label policy, intervals, timing)."""
    models = [r for r in rows if r.get("model") != PEER]
    n = next((r["n_test_events"] for r in rows if r.get("n_test_events")), None)
    policies = sorted({str(r["label_policy"]) for r in models if r.get("label_policy")})
    notes = [
        f"{n} test events, the same for every row; models trained with "
        f"{' / '.join(policies) or 'unknown'} labels.",
        "Intervals: 95 % Wilson for rates, Fisher z for ρ (the binary score: the calibrated "
        "final p_binary; the peer's binarity statistic). Recall of binaries split at the "
        "binarity Δχ² of 100 against the best PSPL fit.",
        "Inference and streaming measured on one CPU thread after the study ran (inference: "
        "answers after every observation of up to 64 test events; the peer: its fits, one answer "
        "per event); training events/s as measured by the training, with the cell's threads. "
        "n/a: not applicable (the features kind and the peer do not stream; the peer has no "
        "probabilities, parameters or training loop).",
    ]
    return notes


def write_comparison(rows: Sequence[dict], directory, stem: str = "model_comparison",
                     extra: dict | None = None) -> list[Path]:
    """``<stem>.csv``, ``<stem>.json`` (rows, column descriptions, notes) and ``<stem>.md``
    in ``directory``; returns the three paths."""
    columns = csv_columns() + sorted({k for r in rows for k in r} - set(csv_columns()))
    notes = table_notes(rows)
    return write_table(
        directory, stem, rows, columns,
        json={"rows": list(rows), "columns": COLUMNS, "notes": notes, **(extra or {})},
        markdown=markdown_table(rows) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n")


__all__ = [
    "COLUMNS", "COSTS_FILE", "MARKDOWN_COLUMNS", "PEER", "binary_recall_split",
    "cached_costs", "comparison_row", "csv_columns", "format_value", "markdown_table",
    "measure_costs", "peer_row", "pretraining_minutes", "run_kind", "table_notes", "training_cost",
    "write_comparison",
]  # fmt: skip

