"""Notebook 05_embedding with a latent kind: a tiny ``rnn_vae`` trained through 02_train, then
05 embeds its latent means and records its reconstructions; a kind without a decoder skips the
reconstruction section, saying why. Through papermill with tiny parameters on the session's
``eval_store`` (kernels on one torch thread, as ``test_notebook_kinds``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from notebook_form import NOTEBOOKS, execute_without_errors
from test_figures import figure_json

from microlens import CLASS_NAMES
from microlens.predictions import run_predictions, select_test_events

pytestmark = pytest.mark.slow  # the fast tier: ./run_all.sh test fast

N_EMBED, SEED = 24, 1
EMBEDDING = {"n_events": N_EMBED, "method": "pca", "seed": SEED, "batch_size": 8}


def run(notebook: str, output: Path, parameters: dict):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        return execute_without_errors(NOTEBOOKS / f"{notebook}.ipynb", output, parameters)


def printed(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []) if o.get("output_type") == "stream")


@pytest.fixture(scope="module")
def vae_chain(eval_store, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kind-rnn_vae")
    out = tmp / "out"
    common = {"output_dir": str(out), "figure_formats": ["html"], "device": "cpu"}
    run("02_train", tmp / "02.ipynb", {
        "dataset_dir": str(eval_store.path), "runs_dir": str(tmp / "runs"),
        "run_name": "rnn_vae", "model_kind": "rnn_vae", "show_live": False,
        "max_train_events": 48, "d_model": 16, "n_layers": 1, "epochs": 1, "batch_size": 16,
        "learning_rate": 3e-3, "patience": 0, **common})
    record = json.loads((out / "train_metrics.json").read_text())
    nb = run("05_embedding", tmp / "05.ipynb", {"run_dir": record["run_dir"], **common,
                                                **EMBEDDING})
    return out, record, nb


def test_rnn_vae_trains_and_records_its_kind(vae_chain):
    from microlens.latent_models import RecurrentVAE
    from microlens.model_kinds import load_model

    _, record, _ = vae_chain
    assert record["model_kind"] == "rnn_vae" and record["config"]["model"]["kind"] == "rnn_vae"
    assert record["epochs_run"] == 1 and 0 <= record["val_accuracy"] <= 1
    model = load_model(record["run_dir"])
    assert type(model) is RecurrentVAE and record["n_parameters"] == model.n_parameters


def test_embedding_is_the_latent_mean_and_reconstructions_are_recorded(vae_chain, eval_store):
    from sklearn.metrics import roc_auc_score

    from microlens.figures import notebook_figures
    from microlens.latent_models import reconstruction_errors
    from microlens.model_kinds import load_model

    out, record, nb = vae_chain
    summary = json.loads((out / "embedding_summary.json").read_text())
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


def test_a_kind_without_a_decoder_skips_the_reconstructions(eval_run, tmp_path):
    out = tmp_path / "out"
    nb = run("05_embedding", tmp_path / "05.ipynb", {
        "run_dir": str(eval_run), "output_dir": str(out), "figure_formats": ["html"],
        "device": "cpu", **EMBEDDING})
    summary = json.loads((out / "embedding_summary.json").read_text())
    reason = ("a 'transformer' model has no decoder to reconstruct light curves with; kinds "
              "with one: rnn_vae")
    assert summary["reconstruction"] == {"available": False, "reason": reason}
    assert summary["embedding"] == "pooled" and summary["figures"] == ["embedding_pca"]
    assert f"No reconstructions to show: {reason}" in printed(nb)
    assert not list(out.glob("reconstruction_*"))
