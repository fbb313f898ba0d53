"""Notebooks 02-06 with model kinds other than the transformer, asserting on what each records.

Through papermill with tiny parameters on the session's ``eval_store``: a ``gru`` (a neural
kind without attention) through the whole chain 02_train -> 03_evaluate -> 04_attention (which
must record that the model has no attention maps and draw nothing) -> 05_embedding ->
06_u0_analysis; the ``features`` kind (gradient boosting on curve features: no epochs, no
streaming, no learned embedding) through 02 and 03, with what 04, 05 and 07 do for it checked
in process (each update of each event is a PSPL fit: slow in notebooks).
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

slow = pytest.mark.slow  # the notebook chains; the fast tier: ./run_all.sh test fast

N_EMBED, SEED = 24, 1

CHAIN = (("03_evaluate", {"n_bootstrap": 20, "classical_peer": False}),
         ("04_attention", {"per_class": 1, "show_widgets": True}),
         ("05_embedding", {"n_events": N_EMBED, "method": "pca", "seed": SEED}),
         ("06_u0_analysis", {"n_bins": 3}))
"""The notebooks after 02_train and their tiny parameters."""


def run_chain(store, tmp: Path, kind: str, notebooks=CHAIN, **train) -> tuple[Path, dict]:
    """Run 02_train for ``kind``, then ``notebooks`` on its run (one output directory, as a
    study cell); returns the output directory and 02's record.

    The kernels run torch on one thread (``OMP_NUM_THREADS=1``, inherited from here): these
    models are too small to gain from two, and on a busy two-core machine the GRU's CPU kernel
    with two OpenMP threads took ~100x longer (3.3 s against 0.03 s per forward pass of 16
    events of 200 observations).
    """
    out = tmp / "out"
    common = {"output_dir": str(out), "figure_formats": ["html"], "device": "cpu"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        execute_without_errors(NOTEBOOKS / "02_train.ipynb", tmp / "02.ipynb", {
            "dataset_dir": str(store.path), "runs_dir": str(tmp / "runs"), "run_name": kind,
            "model_kind": kind, "show_live": False, "max_train_events": 48, **common, **train})
        record = json.loads((out / "train_metrics.json").read_text())
        run = {"run_dir": record["run_dir"], **common}
        for name, parameters in notebooks:
            execute_without_errors(NOTEBOOKS / f"{name}.ipynb", tmp / f"{name}.ipynb",
                                   {**run, **parameters})
    return out, record


def read(out: Path, name: str) -> dict:
    return json.loads((out / name).read_text())


def check_evaluation(out: Path, store, kind: str, n_events: int = 0) -> Predictions:
    """03's record: the kind, and accuracy equal to that of the saved test predictions."""
    summary = read(out, "evaluation_summary.json")
    assert summary["model_kind"] == kind
    predictions = Predictions.load(out / "test_predictions.npz")
    test = select_test_events(store, n_events or None, seed=0)
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


def test_train_config_reads_the_kind_and_refuses_processes_for_features():
    from microlens.notebooks import get_notebook, train_config

    entry = get_notebook("02_train")
    parameters = {**entry.defaults(), "model_kind": "cnn", "kernel_size": 3}
    config = train_config(entry.values(parameters))
    assert (config.model.kind, config.model.kernel_size) == ("cnn", 3)
    with pytest.raises(ValueError, match="model_kind 'features' is fitted by scikit-learn in "
                                         "one process; set processes = 1"):
        train_config({**parameters, "model_kind": "features", "processes": 2})
    # what the notebook reads from its globals: every parameter, each of its type
    with pytest.raises(KeyError, match="parameters model_kind are not defined"):
        entry.values({k: v for k, v in parameters.items() if k != "model_kind"})
    with pytest.raises(TypeError, match="model_kind = <built-in function len> is a "
                                        "builtin_function_or_method, expected str"):
        entry.values({**parameters, "model_kind": len})  # e.g. shadowed by an import
    assert entry.values({**parameters, "learning_rate": 1})["learning_rate"] == 1  # int: float


@pytest.fixture(scope="module")
def gru_chain(eval_store, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kind-gru")
    out, record = run_chain(eval_store, tmp, "gru", d_model=16, n_layers=1, d_ff=32, epochs=1,
                            batch_size=16, learning_rate=3e-3, patience=0)
    return tmp, out, record


@slow
def test_gru_trains_and_records_its_kind(gru_chain):
    _, _, record = gru_chain
    assert record["model_kind"] == "gru" and record["config"]["model"]["kind"] == "gru"
    assert run_model_kind(record["run_dir"]) == "gru"
    assert record["epochs_run"] == 1 and 0 <= record["val_accuracy"] <= 1
    assert record["n_parameters"] > 0 and record["figures"] == ["training_curves"]


@slow
def test_gru_evaluation_attention_embedding_and_limits(gru_chain, eval_store):
    tmp, out, record = gru_chain
    predictions = check_evaluation(out, eval_store, "gru")
    check_no_attention(out, "gru", tmp / "04_attention.ipynb")
    summary = check_embedding(out, eval_store, record["run_dir"], "gru", "pooled")
    assert summary["dimension"] == 2 * 16  # pooled running mean and maximum of d_model = 16
    check_limits(out, eval_store, predictions, "gru")


@slow
def test_features_kind_trains_and_evaluates(eval_store, tmp_path):
    """02 and 03 through papermill; what 04 and 05 do differently for this kind (no attention,
    curve features as the embedding) in process, to keep the test short."""
    pytest.importorskip("microlens.feature_model")
    from microlens.analysis import attention_maps, embed_run, no_attention_reason
    from microlens.curve_features import N_FEATURES
    from microlens.model_kinds import load_model

    # each update of each event is a PSPL fit: few events, and 8 of them timed (batch_size)
    evaluate = ("03_evaluate", {**CHAIN[0][1], "n_events": 24, "batch_size": 8})
    out, record = run_chain(eval_store, tmp_path, "features", notebooks=[evaluate])
    assert record["model_kind"] == "features" and record["config"]["model"]["kind"] == "features"
    assert 0 <= record["val_accuracy"] <= 1 and record["n_parameters"] > 0
    check_evaluation(out, eval_store, "features", n_events=24)

    run_dir = record["run_dir"]
    model = load_model(run_dir)
    assert "'features' model" in no_attention_reason(model)
    rows = select_test_events(eval_store, n=24, seed=0)  # 03's events: its predictions cached
    with pytest.raises(ValueError, match="has no attention maps"):
        attention_maps(model, eval_store, rows)
    embedded = embed_run(run_dir, eval_store, rows)
    assert embedded.model_kind == "features" and embedded.source == "features"
    assert embedded.values.shape == (rows.size, N_FEATURES)
    assert np.isfinite(embedded.values).all()
    np.testing.assert_allclose(embedded.values.mean(axis=0), 0, atol=1e-9)  # standardised
    np.testing.assert_allclose(embedded.probabilities,
                               run_predictions(run_dir, rows=rows)[0].final(), atol=1e-6)

    # 07: a real light curve, answered at the update fractions (no interval range to leave)
    from microlens.real_events import classify_events

    real = classify_events(run_dir, ["OB05086"], peer=False, device="cpu").record["events"][0]
    assert real["outside_training_intervals"]["fraction"] is None
    assert sum(real["model"]["at_end"]["probabilities"]) == pytest.approx(1.0, abs=1e-5)
