"""Notebooks 02-06 with model kinds other than the transformer, asserting on what each records.

One chain per kind, 02_train -> 03_evaluate -> 04_attention -> 05_embedding -> 06_u0_analysis,
through papermill with tiny parameters on the session's ``eval_store``: a ``gru`` (a neural
kind without attention: 04 must record that it has none and draw nothing) and the ``features``
kind (gradient boosting on curve features: no epochs, no streaming, no learned embedding).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from notebook_form import NOTEBOOKS, execute_without_errors

from microlens import CLASS_NAMES
from microlens.analysis import run_model_kind
from microlens.figures import notebook_figures
from microlens.predictions import Predictions, run_predictions, select_test_events

pytestmark = pytest.mark.slow  # the fast tier: ./run_all.sh test fast

N_EMBED, SEED = 24, 1


def run_chain(store, tmp: Path, kind: str, **train) -> tuple[Path, dict]:
    """Run 02 -> 06 for ``kind``; returns the shared output directory and 02's record."""
    out = tmp / "out"
    common = {"output_dir": str(out), "figure_formats": ["html"], "device": "cpu"}
    execute_without_errors(NOTEBOOKS / "02_train.ipynb", tmp / "02.ipynb", {
        "dataset_dir": str(store.path), "runs_dir": str(tmp / "runs"), "run_name": kind,
        "model_kind": kind, "show_live": False, **common, **train})
    record = json.loads((out / "train_metrics.json").read_text())
    run = {"run_dir": record["run_dir"], **common}
    for name, parameters in (
            ("03_evaluate", {"n_bootstrap": 20, "classical_peer": False}),
            ("04_attention", {"per_class": 1, "show_widgets": True}),
            ("05_embedding", {"n_events": N_EMBED, "method": "pca", "seed": SEED}),
            ("06_u0_analysis", {"n_bins": 3})):
        execute_without_errors(NOTEBOOKS / f"{name}.ipynb", tmp / f"{name}.ipynb",
                               {**run, **parameters})
    return out, record


def read(out: Path, name: str) -> dict:
    return json.loads((out / name).read_text())


def check_evaluation(out: Path, store, kind: str) -> Predictions:
    """03's record: the kind, and accuracy equal to that of the saved test predictions."""
    summary = read(out, "evaluation_summary.json")
    assert summary["model_kind"] == kind
    predictions = Predictions.load(out / "test_predictions.npz")
    test = store.indices("test")
    assert np.array_equal(predictions.rows, test) and summary["n_events"] == test.size
    accuracy = np.mean(predictions.final().argmax(axis=1) == store.labels[test])
    head = summary["headline"]
    assert head["accuracy"] == pytest.approx(accuracy)
    assert head["accuracy_low"] <= head["accuracy"] <= head["accuracy_high"]
    assert summary["early_detection"]["by_fraction"]["accuracy"][-1] == pytest.approx(accuracy)
    assert "classical_peer" not in summary or summary["classical_peer"] is None
    assert sorted(summary["figures"]) == sorted(
        ["confusion", "roc", "precision_recall", "reliability", "confidence",
         "early_detection", "decision_time", "peer_comparison", "dchi2_recall"])
    return predictions


def check_no_attention(out: Path, kind: str, executed: Path) -> None:
    """04 finished, said why there is nothing to draw, recorded it, and drew nothing."""
    summary = read(out, "attention_summary.json")
    assert summary["model_kind"] == kind and summary["attention"] is False
    assert f"a {kind!r} model" in summary["reason"] and "no attention maps" in summary["reason"]
    assert summary["figures"] == [] and summary["events"] == [] and summary["layers"] == []
    assert summary["n_events"] == 0 and summary["focus_event"] is None
    assert summary["selection"] == {"event_indices": [], "per_class": 1, "seed": 0}
    assert not list(out.glob("attention_*.html"))
    assert "No attention maps to draw" in executed.read_text()
    assert notebook_figures(out, "04_attention") == {}  # the rebuild draws nothing either


def check_embedding(out: Path, store, run_dir: str, kind: str, source: str) -> dict:
    summary = read(out, "embedding_summary.json")
    rows = select_test_events(store, n=N_EMBED, seed=SEED)
    labels = np.asarray(store.labels[rows])
    assert summary["model_kind"] == kind and summary["embedding"] == source
    assert summary["n_events"] == N_EMBED and summary["figures"] == ["embedding_pca"]
    assert summary["class_counts"] == {name: int(np.sum(labels == c))
                                       for c, name in enumerate(CLASS_NAMES)}
    assert summary["silhouette"] is None or -1 <= summary["silhouette"] <= 1
    assert 0 <= summary["knn"]["accuracy"] <= 1
    # the model accuracy beside the embedding is that of the model's own final answers
    predicted = run_predictions(run_dir, rows=rows, cache=False)[0].final().argmax(axis=1)
    assert summary["model_accuracy"] == pytest.approx(np.mean(predicted == labels))
    assert (out / "embedding_pca.html").is_file()
    return summary


def check_limits(out: Path, store, predictions: Predictions, kind: str) -> None:
    report = read(out, "u0_report.json")
    assert report["model_kind"] == kind
    binary = store.labels[predictions.rows] == CLASS_NAMES.index("binary")
    found = predictions.final().argmax(axis=1)[binary] == CLASS_NAMES.index("binary")
    assert report["binary"]["n_binary"] == int(binary.sum())
    assert report["binary"]["binary_recall"] == pytest.approx(found.mean())
    assert len(report["bins"]["u_0"]["n"]) == 3


@pytest.fixture(scope="module")
def gru_chain(eval_store, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kind-gru")
    out, record = run_chain(eval_store, tmp, "gru", d_model=16, n_layers=1, d_ff=32, epochs=2,
                            batch_size=32, learning_rate=3e-3, patience=0)
    return tmp, out, record


def test_gru_trains_and_records_its_kind(gru_chain):
    _, _, record = gru_chain
    assert record["model_kind"] == "gru" and record["config"]["model"]["kind"] == "gru"
    assert run_model_kind(record["run_dir"]) == "gru"
    assert record["epochs_run"] == 2 and 0 <= record["val_accuracy"] <= 1
    assert record["n_parameters"] > 0 and record["figures"] == ["training_curves"]


def test_gru_evaluation_attention_embedding_and_limits(gru_chain, eval_store):
    tmp, out, record = gru_chain
    predictions = check_evaluation(out, eval_store, "gru")
    check_no_attention(out, "gru", tmp / "04_attention.ipynb")
    summary = check_embedding(out, eval_store, record["run_dir"], "gru", "pooled")
    assert summary["dimension"] == 2 * 16  # pooled running mean and maximum of d_model = 16
    check_limits(out, eval_store, predictions, "gru")


@pytest.fixture(scope="module")
def features_chain(eval_store, tmp_path_factory):
    pytest.importorskip("microlens.feature_model")
    tmp = tmp_path_factory.mktemp("kind-features")
    out, record = run_chain(eval_store, tmp, "features")
    return tmp, out, record


def test_features_kind_runs_every_notebook(features_chain, eval_store):
    from microlens.curve_features import N_FEATURES

    tmp, out, record = features_chain
    assert record["model_kind"] == "features" and record["config"]["model"]["kind"] == "features"
    assert 0 <= record["val_accuracy"] <= 1
    predictions = check_evaluation(out, eval_store, "features")
    check_no_attention(out, "features", tmp / "04_attention.ipynb")
    summary = check_embedding(out, eval_store, record["run_dir"], "features", "features")
    assert summary["dimension"] == N_FEATURES  # the standardised curve features
    check_limits(out, eval_store, predictions, "features")
