"""The model comparison: one row per model kind and one for the classical peer, from a cell."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest

from microlens.core.metrics import wilson_interval
from microlens.data.labels import observable_labels
from microlens.evaluation.evaluate import evaluate_run
from microlens.evaluation.model_comparison import (
    COSTS_FILE,
    PEER,
    binary_recall_split,
    comparison_row,
    csv_columns,
    markdown_table,
    peer_row,
    write_comparison,
)
from microlens.models.registry import load_model
from microlens.workflow.studies.report import build_study_report, read_model_comparison

BINARY, PSPL = 2, 1


@pytest.fixture(scope="module")
def evaluated(eval_run, tmp_path_factory):
    """A cell folder holding 03's evaluation of the tiny run (with the peer)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny model's shortcut warnings
        summary, predictions = evaluate_run(eval_run, n_bootstrap=20, peer=True, workers=2)
    cell = tmp_path_factory.mktemp("cell") / "model_kind=transformer"
    cell.mkdir()
    (cell / "evaluation_summary.json").write_text(json.dumps(summary))
    return {"cell": cell, "summary": summary, "predictions": predictions, "run": eval_run}


@pytest.fixture(scope="module")
def row(evaluated):
    return comparison_row(evaluated["cell"], stream_observations=40, events=16)


def test_the_row_reads_quality_from_the_evaluation(evaluated, row, eval_store):
    summary, predictions = evaluated["summary"], evaluated["predictions"]
    assert set(csv_columns()) <= set(row)
    assert row["model"] == "transformer" and row["cell"] == "model_kind=transformer"
    assert row["label_policy"] == "physical" and row["n_test_events"] == len(predictions)
    labels, predicted = predictions.labels, predictions.final().argmax(axis=1)
    assert row["accuracy"] == pytest.approx(np.mean(predicted == labels))
    assert row["accuracy_low"] < row["accuracy"] < row["accuracy_high"]
    dchi2 = np.asarray(eval_store.params["dchi2_pspl"][predictions.rows], np.float64)
    binary = labels == BINARY
    for name, count, which in (
            ("detectable_binary_recall", "n_detectable_binaries", binary & (dchi2 > 100)),
            ("other_binary_recall", "n_other_binaries", binary & (dchi2 <= 100))):
        hits = int(np.sum(predicted[which] == BINARY))
        assert row[count] == which.sum() > 0
        assert row[name] == pytest.approx(hits / which.sum()), name
        assert (row[f"{name}_low"], row[f"{name}_high"]) == pytest.approx(
            wilson_interval(hits, int(which.sum())))
    observable = observable_labels(labels, dchi2)
    assert row["detectable_binary_recall"] == pytest.approx(
        np.mean(predicted[observable == BINARY] == BINARY))
    assert row["pspl_called_binary"] == pytest.approx(
        np.mean(predicted[labels == PSPL] == BINARY))
    probe = summary["probe"]["correlation"]
    assert row["probe_rho_t_E_pspl"] == pytest.approx(probe["t_E"]["pspl"]["rho"])
    assert row["probe_rho_u_0_binary_low"] == pytest.approx(probe["u_0"]["binary"]["low"])
    assert row["ece_after"] == pytest.approx(summary["final"]["calibration"]["after"]["ece"])
    assert row["accuracy_at_50pct"] == pytest.approx(
        summary["early_detection"]["accuracy_at_50pct"])
    assert row["accuracy_at_50pct_low"] <= row["accuracy_at_50pct"] <= row[
        "accuracy_at_50pct_high"]


def test_the_row_reads_size_and_training_cost_from_the_run(evaluated, row):
    run = evaluated["run"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert row["n_parameters"] == load_model(run).n_parameters
    assert row["train_events_per_second"] == metrics["train_events_per_second"] > 0
    assert 0 < row["train_minutes"] < 10
    assert row["run_dir"] == str(run)


def test_inference_and_streaming_are_measured_once_and_kept(evaluated, row):
    assert row["inference_events_per_second"] > 0
    assert 0 < row["stream_ms_per_observation"] < 1000
    cached = json.loads((evaluated["cell"] / COSTS_FILE).read_text())
    assert cached["costs"]["threads"] == 1 and cached["costs"]["inference_events"] == 16
    again = comparison_row(evaluated["cell"], measure=False)  # from model_costs.json
    assert again["stream_ms_per_observation"] == row["stream_ms_per_observation"]
    assert again["inference_events_per_second"] == row["inference_events_per_second"]


def test_a_kind_that_cannot_stream_has_no_streaming_cost(evaluated, tmp_path):
    """A ``features`` run: nothing is measured, inference comes from the evaluation, n/a."""
    run = tmp_path / "features_run"
    shutil.copytree(evaluated["run"], run)
    config = json.loads((run / "config.json").read_text())
    config["model"]["kind"] = "features"
    (run / "config.json").write_text(json.dumps(config))
    cell = tmp_path / "model_kind=features"
    cell.mkdir()
    summary = {**evaluated["summary"], "run_dir": str(run),
               "timing": {"model": {"seconds_per_event": 0.004}}}
    (cell / "evaluation_summary.json").write_text(json.dumps(summary))
    row = comparison_row(cell)
    assert row["model"] == "features" and row["stream_ms_per_observation"] is None
    assert row["inference_events_per_second"] == pytest.approx(250.0)
    assert not (cell / COSTS_FILE).exists()
    assert "| features |" in markdown_table([row]) and "n/a |" in markdown_table([row])


def test_the_peer_row_and_the_written_table(evaluated, row, tmp_path):
    summary = evaluated["summary"]
    peer = peer_row(summary, "model_kind=transformer")
    assert peer["model"] == PEER
    assert peer["accuracy"] == pytest.approx(summary["classical_peer"]["accuracy"])
    half = next(p for p in summary["classical_peer"]["fractions"] if p["fraction"] == 0.5)
    assert peer["accuracy_at_50pct"] == pytest.approx(half["accuracy"])
    assert peer["inference_events_per_second"] == pytest.approx(
        1 / summary["classical_peer"]["seconds_per_event"])
    for name in ("ece_after", "stream_ms_per_observation", "n_parameters",
                 "train_events_per_second"):
        assert peer[name] is None, name
    assert peer_row({"n_events": 3}) is None
    csv_path, json_path, md_path = write_comparison([row, peer], tmp_path)
    assert csv_path.read_text().splitlines()[0].split(",")[:4] == [
        "model", "cell", "label_policy", "n_test_events"]
    assert [r["model"] for r in json.loads(json_path.read_text())["rows"]] == [
        "transformer", PEER]
    table = md_path.read_text()
    assert "| transformer |" in table and f"| {PEER} |" in table
    assert f"{row['accuracy']:.3f} [{row['accuracy_low']:.3f}," in table


def test_recall_split_pools_the_dchi2_bins():
    bins = {"edges": [25.0, 100.0, 1000.0], "high": [25.0, 100.0, 1000.0, None],
            "n_binary": [4, 6, 10, 0], "recall": [0.25, 0.5, 0.9, None]}
    detectable, other = binary_recall_split(bins)
    assert (detectable["value"], detectable["n"]) == (0.9, 10)
    assert other["value"] == pytest.approx(4 / 10) and other["n"] == 10
    assert binary_recall_split(None)[0]["value"] is None


@pytest.mark.slow  # writes the study figures
def test_a_study_of_model_kinds_gets_the_comparison_table_and_figure(evaluated, tmp_path):
    """The report of a study whose cells differ in model kind (from recorded outputs)."""
    outputs = tmp_path / "outputs"
    root = outputs / "kinds"
    cells = []
    for kind in ("transformer", "gru"):
        name = f"model_kind={kind}"
        shutil.copytree(evaluated["cell"], root / name)
        (root / name / "cell.json").write_text(json.dumps(
            {"status": "complete", "key": kind, "values": {"model_kind": kind},
             "notebooks": []}))
        cells.append({"cell": name, "values": {"model_kind": kind}, "sweep": 0, "key": kind,
                      "parameters": {"02_train": {"model_kind": kind}}, "artifacts": {}})
    (root / "study.json").write_text(json.dumps({
        "study": "kinds", "path": "kinds.yaml", "description": "two kinds",
        "notebooks": ["01_simulate", "02_train", "03_evaluate"],
        "grid": [{"model_kind": ["transformer", "gru"]}], "grid_keys": ["model_kind"],
        "cells": cells}))
    written = build_study_report("kinds", outputs, formats=["html"])
    names = {p.name for p in written}
    assert {"model_comparison.csv", "model_comparison.json", "model_comparison.md",
            "model_comparison.html", "study_metrics.html", "index.html"} <= names
    rows = read_model_comparison("kinds", outputs)
    # the peer's row comes from the first cell (every cell evaluates it on the same events)
    assert [(r["model"], r["cell"]) for r in rows] == [
        ("transformer", "model_kind=transformer"), ("transformer", "model_kind=gru"),
        (PEER, "model_kind=transformer")]
    index = (root / "figures" / "index.html").read_text()
    assert "Model comparison" in index and "streaming ms/obs" in index


def _fake_cell(evaluated, root, name: str, kind: str, labelled: int, accuracy: float,
               pretrained=None) -> dict:
    """A finished cell of a learning-curve study: the tiny run's evaluation, its kind and
    accuracy changed (and, for ``masked``, a pretraining run that took 90 s)."""
    run = root / "runs" / name
    shutil.copytree(evaluated["run"], run)
    config = json.loads((run / "config.json").read_text())
    config["model"]["kind"] = kind
    if pretrained is not None:
        config["model"]["pretrained"] = str(pretrained)
    (run / "config.json").write_text(json.dumps(config))
    cell = root / name
    cell.mkdir(parents=True)
    summary = json.loads(json.dumps(evaluated["summary"]))
    summary["run_dir"] = str(run)
    n = summary["label_sets"]["physical"]["accuracy"]["n"]
    low, high = wilson_interval(round(accuracy * n), n)
    summary["label_sets"]["physical"]["accuracy"] = {"value": accuracy, "low": low,
                                                     "high": high, "n": n}
    (cell / "evaluation_summary.json").write_text(json.dumps(summary))
    (cell / "cell.json").write_text(json.dumps({"status": "complete", "key": name,
                                                "notebooks": []}))
    train = {"model_kind": kind, "max_train_events": labelled}
    return {"cell": name, "sweep": 0, "key": name, "artifacts": {},
            "values": {"model_kind": kind, "max_train_events": labelled},
            "parameters": {"02_train": train}}


@pytest.mark.slow  # writes the study figures
def test_a_learning_curve_study_gets_its_table_and_figure(evaluated, tmp_path):
    """Kinds transformer and masked at several label counts: one row per arm and count, the
    pretraining's cost on the pretrained rows, the gain, the peer once, and the figure."""
    from microlens.workflow.learning_curve import is_learning_curve, read_learning_curve

    outputs = tmp_path / "outputs"
    root = outputs / "fewlabels"
    pretraining = tmp_path / "pretrain"
    pretraining.mkdir()
    (pretraining / "metrics.json").write_text(json.dumps({"seconds": 90.0}))
    split = sum(json.loads((evaluated["run"] / "config.json").read_text())[
        "dataset_manifest"]["split_counts"]["train"].values())
    few = max(1, split // 4)
    cells = [_fake_cell(evaluated, root, f"model_kind={k},max_train_events={n}", k, n, acc,
                        pretraining if k == "masked" else None)
             for k, n, acc in (("transformer", few, 0.50), ("transformer", 0, 0.80),
                               ("masked", few, 0.60), ("masked", 0, 0.81))]
    record = {"study": "fewlabels", "path": "fewlabels.yaml", "description": "few labels",
              "notebooks": ["01_simulate", "02_train", "03_evaluate"],
              "grid": [{"model_kind": ["transformer", "masked"], "max_train_events": [few, 0]}],
              "grid_keys": ["model_kind", "max_train_events"], "cells": cells}
    (root / "study.json").write_text(json.dumps(record))
    assert is_learning_curve(record)
    assert not is_learning_curve({**record, "cells": cells[:2]})  # one arm only
    written = build_study_report("fewlabels", outputs, formats=["html"])
    assert {"learning_curve.csv", "learning_curve.json", "learning_curve.md",
            "learning_curve.html"} <= {p.name for p in written}
    rows, peer = read_learning_curve(root)
    assert [(r["arm"], r["labelled_events"]) for r in rows] == [
        ("from scratch", few), ("from scratch", split), ("pretrained", few),
        ("pretrained", split)]
    assert [r["label_fraction"] for r in rows] == pytest.approx([few / split, 1.0] * 2)
    assert [r["accuracy"] for r in rows] == [0.50, 0.80, 0.60, 0.81]
    assert all(r["accuracy_low"] < r["accuracy"] < r["accuracy_high"] for r in rows)
    assert [r["pretrain_minutes"] for r in rows] == [None, None, 1.5, 1.5]
    assert peer["model"] == PEER and peer["cell"] == cells[0]["cell"]
    gain = json.loads((root / "learning_curve.json").read_text())["pretraining_gain"]
    assert [g["labelled_events"] for g in gain] == [few, split]
    assert [g["accuracy_gain"] for g in gain] == pytest.approx([0.10, 0.01])
    # the fake cells share one run: paired, the answers are the same event by event
    for g in gain:
        assert g["paired"]["difference"] == g["paired"]["low"] == g["paired"]["high"] == 0
        assert g["paired"]["only_a"] == g["paired"]["only_b"] == 0
        assert g["paired"]["mcnemar_p"] == 1.0 and g["pspl_called_binary_change"] == 0
    table = (root / "learning_curve.md").read_text()
    assert "| pretrained | " in table and f"| {PEER} | 0 | none |" in table
    assert "0.600 [" in table and "| 1.5 |" in table
    assert f"| {few} | +0.100 | [+0.000, +0.000] | 1 | 0 / 0 | +0.000 |" in table


def test_the_paired_difference_counts_the_events_each_run_gets_right(monkeypatch):
    """Two runs' answers on the same events: the difference, the discordant counts, McNemar's
    exact p, a bootstrap interval around the difference; other events are refused."""
    from microlens.models.holdout import Predictions
    from microlens.workflow import learning_curve

    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    right = np.eye(3)[labels][:, None, :]  # (E, 1, 3): one answer per event
    wrong = np.eye(3)[(labels + 1) % 3][:, None, :]
    # a gets every event right; b gets the first 7 right and the last 3 wrong
    answers = {"a": right, "b": np.concatenate([right[:7], wrong[7:]])}

    def fake(run_dir, *args, **kwargs):
        logits = answers[str(run_dir)]
        rows = np.arange(labels.size) if str(run_dir) != "c" else np.arange(1, 11)
        return Predictions(rows=rows, labels=labels, lengths=np.ones(labels.size, np.int64),
                           times=np.zeros((labels.size, 1)), logits=np.log(logits + 1e-3),
                           temperature=1.0), None

    monkeypatch.setattr("microlens.evaluation.predictions.run_predictions", fake)
    out = learning_curve.paired_difference("a", "b", n_bootstrap=500, seed=1)
    assert out["difference"] == pytest.approx(0.3) and out["n_events"] == 10
    assert (out["only_a"], out["only_b"]) == (3, 0)
    assert out["mcnemar_p"] == pytest.approx(0.25)  # two-sided binomial, 3 of 3
    assert 0 <= out["low"] <= 0.3 <= out["high"] <= 0.7
    answers["c"] = right
    with pytest.raises(ValueError, match="not scored on the same test events"):
        learning_curve.paired_difference("a", "c")
