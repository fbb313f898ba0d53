"""Notebooks 02-06 with every model kind of the registry, asserting on what each records.

Through papermill with tiny parameters on the session's ``eval_store``, by one runner
(``kind_chains``, ``tests/chain.py``): every kind but the transformer (the notebook chain runs
that one) trains through 02_train and is evaluated through 03_evaluate; then what differs by
kind: a ``gru`` (a neural kind without attention) through 04_attention (which must record that
the model has no attention maps and draw nothing), 05_embedding and 06_u0_analysis; the
``features`` kind (gradient boosting on curve features: no epochs, no streaming, no learned
embedding) with what 04, 05 and 07 do for it checked in process (each update of each event is
a PSPL fit: slow in notebooks); the ``rnn_vae`` through 05, which embeds its latent means and
records its reconstructions (a kind without a decoder skips them, saying why); the set kinds;
the ``masked`` kind, which 02 pretrains, then fine-tunes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from chain import KIND_NOTEBOOKS, KIND_TEST_EVENTS, KIND_TRAINING
from helpers import figure_json

from microlens.core.classes import CLASS_NAMES
from microlens.evaluation.analysis import run_model_kind
from microlens.evaluation.predictions import run_predictions
from microlens.models.holdout import Predictions, select_test_events
from microlens.models.inputs import Normalization
from microlens.models.masked import MaskedTransformer
from microlens.models.registry import KINDS, load_model
from microlens.models.runs import read_history, read_metrics
from microlens.workflow.figures import notebook_figures

slow = pytest.mark.slow  # the notebook chains; the fast tier: ./run_all.sh test fast

EMBEDDING = KIND_NOTEBOOKS["05_embedding"]
N_EMBED, SEED = EMBEDDING["n_events"], EMBEDDING["seed"]
CHAINED_KINDS = [kind for kind in KINDS if kind != "transformer"]


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
    from microlens.workflow.notebooks import get_notebook, train_config

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


def printed(nb) -> str:
    """What the executed notebook ``nb`` printed."""
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []) if o.get("output_type") == "stream")


def executed_notebook(kind_chains, kind: str, notebook: str):
    import nbformat

    return nbformat.read(kind_chains.executed(kind, notebook), as_version=4)


def test_every_kind_of_the_registry_has_tiny_notebook_settings():
    assert CHAINED_KINDS and set(KIND_TRAINING) == set(CHAINED_KINDS)


@slow
@pytest.mark.parametrize("kind", CHAINED_KINDS)
def test_a_kind_trains_and_evaluates_in_the_notebooks(kind, kind_chains, eval_store):
    record = kind_chains.ran(kind).record(kind)
    assert record["model_kind"] == kind and record["config"]["model"]["kind"] == kind
    assert run_model_kind(record["run_dir"]) == kind
    assert 0 <= record["val_accuracy"] <= 1 and record["n_parameters"] > 0
    if KINDS[kind].neural:
        assert record["epochs_run"] == 1 and record["figures"] == ["training_curves"]
    model = record["config"]["model"]
    for key in ("d_model", "window", "n_layers"):
        if key in KIND_TRAINING[kind]:
            assert model[key] == KIND_TRAINING[kind][key], key

    predictions = check_evaluation(kind_chains.out(kind), eval_store, kind,
                                   n_events=KIND_TEST_EVENTS)
    assert predictions.rows.size == KIND_TEST_EVENTS
    final = predictions.final()
    assert np.isfinite(final).all() and np.allclose(final.sum(axis=1), 1, atol=1e-5)
    summary = read(kind_chains.out(kind), "evaluation_summary.json")
    assert math.isfinite(summary["headline"]["accuracy"])


@slow
def test_gru_attention_embedding_and_limits(kind_chains, eval_store):
    chains = kind_chains.ran("gru", "03_evaluate", "04_attention", "05_embedding",
                             "06_u0_analysis")
    out, record = chains.out("gru"), chains.record("gru")
    check_evaluation(out, eval_store, "gru", n_events=KIND_TEST_EVENTS)
    check_no_attention(out, "gru", chains.executed("gru", "04_attention"))
    summary = check_embedding(out, eval_store, record["run_dir"], "gru", "pooled")
    assert summary["dimension"] == 2 * 16  # pooled running mean and maximum of d_model = 16
    # 06 reads every test event; 03 evaluated KIND_TEST_EVENTS of them
    check_limits(out, eval_store, run_predictions(record["run_dir"])[0], "gru")


@slow
def test_a_kind_without_a_decoder_skips_the_reconstructions(kind_chains):
    out = kind_chains.ran("gru", "05_embedding").out("gru")
    summary = read(out, "embedding_summary.json")
    reason = ("a 'gru' model has no decoder to reconstruct light curves with; kinds with one: "
              "rnn_vae")
    assert summary["reconstruction"] == {"available": False, "reason": reason}
    assert summary["embedding"] == "pooled" and summary["figures"] == ["embedding_pca"]
    nb = executed_notebook(kind_chains, "gru", "05_embedding")
    assert f"No reconstructions to show: {reason}" in printed(nb)
    assert not list(out.glob("reconstruction_*"))


@slow
def test_features_kind_in_process_attention_embedding_and_real_events(kind_chains, eval_store):
    """What 04, 05 and 07 do differently for this kind (no attention, curve features as the
    embedding), in process on the run 02 trained, to keep the test short."""
    pytest.importorskip("microlens.models.features")
    from microlens.evaluation.analysis import attention_maps, embed_run, no_attention_reason
    from microlens.models.curve_features import N_FEATURES

    run_dir = kind_chains.ran("features").record("features")["run_dir"]
    model = load_model(run_dir)
    assert "'features' model" in no_attention_reason(model)
    rows = select_test_events(eval_store, n=KIND_TEST_EVENTS, seed=0)  # 03's: cached
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
    from microlens.realdata.real_events import classify_events

    real = classify_events(run_dir, ["OB05086"], peer=False, device="cpu").record["events"][0]
    assert real["outside_training_intervals"]["fraction"] is None
    assert sum(real["model"]["at_end"]["probabilities"]) == pytest.approx(1.0, abs=1e-5)


@slow
def test_rnn_vae_loads_as_its_class(kind_chains):
    from microlens.models.rnn_vae import RecurrentVAE

    record = kind_chains.ran("rnn_vae").record("rnn_vae")
    model = load_model(record["run_dir"])
    assert type(model) is RecurrentVAE and record["n_parameters"] == model.n_parameters


@slow
def test_embedding_is_the_latent_mean_and_reconstructions_are_recorded(kind_chains, eval_store):
    from sklearn.metrics import roc_auc_score

    from microlens.models.rnn_vae import reconstruction_errors

    chains = kind_chains.ran("rnn_vae", "05_embedding")
    out, record = chains.out("rnn_vae"), chains.record("rnn_vae")
    nb = executed_notebook(kind_chains, "rnn_vae", "05_embedding")
    summary = read(out, "embedding_summary.json")
    rows = select_test_events(eval_store, n=N_EMBED, seed=SEED)
    labels = np.asarray(eval_store.labels[rows])
    model = load_model(record["run_dir"])
    latent_dim = model.config.latent_dim
    assert summary["model_kind"] == "rnn_vae" and summary["embedding"] == "latent"
    assert summary["n_events"] == N_EMBED and summary["dimension"] == latent_dim == 16
    assert f"latent mean (latent_dim = {latent_dim} numbers)" in printed(nb)
    predicted = run_predictions(record["run_dir"], rows=rows, cache=False)[0].final().argmax(1)
    assert summary["model_accuracy"] == pytest.approx(np.mean(predicted == labels))

    reconstruction = summary["reconstruction"]
    assert reconstruction["available"] and reconstruction["model_kind"] == "rnn_vae"
    assert reconstruction["rows"] == rows.tolist() and reconstruction["labels"] == labels.tolist()
    batch = eval_store.batch(rows)
    errors = reconstruction_errors(model, batch["times"], batch["flux"], batch["flux_err"],
                                   batch["mask"])
    np.testing.assert_allclose(reconstruction["errors"], errors, rtol=1e-5)
    for c, name in enumerate(CLASS_NAMES):
        entry = reconstruction["by_class"][name]
        assert entry["n"] == int(np.sum(labels == c))
        if entry["n"]:
            assert entry["mean"] == pytest.approx(errors[labels == c].mean(), rel=1e-5)
    assert reconstruction["anomaly_auc"]["lensing_vs_no_event"] == pytest.approx(
        roc_auc_score(labels >= 1, errors), abs=1e-9)
    shown = eval_store.labels[reconstruction["example_rows"]]
    assert np.bincount(shown, minlength=3).tolist() == [
        min(3, int(np.sum(labels == c))) for c in range(3)]

    assert summary["figures"] == ["embedding_pca", "reconstruction_errors",
                                  "reconstruction_examples"]
    for name in summary["figures"]:
        assert (out / f"{name}.html").is_file()
    assert "ROC AUC of the error, lensing vs no event" in printed(nb)
    # the rebuild from the record draws the same figures (the examples with one model pass)
    rebuilt = notebook_figures(out, "05_embedding")
    assert sorted(rebuilt) == summary["figures"]
    for name in ("reconstruction_errors", "reconstruction_examples"):
        saved, _ = figure_json(out / f"{name}.html")
        assert len(saved) == len(rebuilt[name].data), name
        for drawn, trace in zip(saved, rebuilt[name].data, strict=True):
            assert drawn["name"] == trace.name
            np.testing.assert_allclose(np.asarray(trace.y, dtype=float),
                                       np.asarray(drawn["y"], dtype=float), rtol=1e-5)


@slow
def test_02_pretrains_fine_tunes_and_records_the_pretraining(kind_chains, eval_store):
    chains = kind_chains.ran("masked")
    tmp, record = chains.directory("masked"), chains.record("masked")
    executed = executed_notebook(kind_chains, "masked", "02_train")
    settings = KIND_TRAINING["masked"]

    pre = record["pretraining"]
    pre_dir = Path(pre["run_dir"])
    # made now, beside runs_dir, named after the data set; finished
    assert pre["made_now"] is True
    assert pre_dir.parent == tmp / "pretrain" and pre_dir.name.startswith("eval-masked-")
    metrics = read_metrics(pre_dir)
    assert [r["epoch"] for r in read_history(pre_dir)] == [1]
    assert pre["epochs_run"] == metrics["epochs_run"] == 1
    assert pre["seconds"] == metrics["seconds"] > 0  # its cost
    assert pre["val_loss"] == metrics["best_val_loss"] and math.isfinite(pre["val_loss"])
    assert pre["final_val_loss"] == read_history(pre_dir)[-1]["val_loss"]
    assert "history" not in pre  # the run's history.csv has it
    # with the notebook's pretrain_* settings and the fine-tuning's encoder
    assert (pre["config"]["epochs"], pre["config"]["batch_size"],
            pre["config"]["mask_fraction"], pre["config"]["learning_rate"]) == (
        settings["pretrain_epochs"], settings["pretrain_batch_size"],
        settings["pretrain_mask_fraction"], settings["pretrain_learning_rate"]) == (
        1, 16, 0.25, 3e-3)
    assert pre["config"]["dataset"] == str(eval_store.path)
    assert pre["config"]["model"]["d_model"] == record["config"]["model"]["d_model"] == 16
    assert pre["config"]["max_train_events"] == 0  # every training curve, unlabelled

    # the classifier names that run and keeps its normalisation
    assert Path(record["config"]["model"]["pretrained"]) == pre_dir
    run_dir = Path(record["run_dir"])
    assert (Normalization.load(run_dir / "normalization.json")
            == Normalization.load(pre_dir / "normalization.json"))
    assert type(load_model(run_dir)) is MaskedTransformer
    text = json.dumps([c.get("outputs", []) for c in executed.cells])
    assert "pretraining run:" in text and "(made now)" in text
