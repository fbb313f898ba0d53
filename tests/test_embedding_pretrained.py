"""05_embedding on a masked pretraining run: the pooled states of the pretrained encoder are
embedded with no predictions (its head never saw a label), and the notebook records the k-NN
accuracy, the silhouette and the PCA numbers with the model accuracy None."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from notebook_form import NOTEBOOKS, assert_figures_written, execute_without_errors

from microlens.core.classes import CLASS_NAMES
from microlens.evaluation.analysis import (
    NO_LABELS_REASON,
    embed_pretrained,
    embed_run,
    embedding_dataset,
    embedding_summary,
    embedding_table,
    is_pretraining_run,
    load_pretrained_encoder,
    project_embeddings,
)
from microlens.models.config import ModelConfig
from microlens.models.holdout import select_test_events
from microlens.models.inputs import Normalization
from microlens.models.masked import MaskedTransformer
from microlens.training.pretrain import PretrainConfig, pretrain
from microlens.workflow.figures import PROJECTIONS_FILE, load_projections, notebook_figures

D_MODEL = 16
N_EVENTS, SEED = 24, 1


@pytest.fixture(scope="module")
def pretrained_run(train_store, tmp_path_factory):
    """A tiny pretraining run: one epoch of 32 curves (its head is untrained)."""
    model = ModelConfig(kind="masked", d_model=D_MODEL, n_heads=2, n_layers=1, d_ff=32,
                        window=16, dropout=0.0)
    config = PretrainConfig(dataset=str(train_store.path),
                            runs_dir=str(tmp_path_factory.mktemp("pretrain")), run_name="tiny",
                            model=model, epochs=1, batch_size=16, learning_rate=3e-3,
                            patience=0, max_train_events=32, max_val_events=16, seed=2)
    return pretrain(config, progress=False)


def pooled_states(model, store, rows) -> np.ndarray:
    """The encoder's pooled state after each event's last observation, one event at a time
    (unpadded): what the embedding must equal."""
    out = []
    with torch.no_grad():
        for row in rows:
            batch = store.batch([row])
            n = int(batch["lengths"][0])
            tensors = [batch[k][:, :n] for k in ("times", "flux", "flux_err", "mask")]
            out.append(model(*tensors, return_embedding=True)["embedding"][0, -1].numpy())
    return np.stack(out)


def training_run(directory, store):
    """A directory with a training run's config.json (no weights: nothing here loads them)."""
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(
        {"train": {"dataset": str(store.path)}, "model": {"kind": "transformer"}}))
    return directory


def test_the_pretrained_encoder_embeds_its_pooled_states_without_predictions(
        pretrained_run, train_store, tmp_path):
    assert is_pretraining_run(pretrained_run)
    assert not is_pretraining_run(training_run(tmp_path / "trained", train_store))
    assert not is_pretraining_run(tmp_path)  # no config.json at all
    store = embedding_dataset(pretrained_run)  # the dataset it pretrained on
    assert store.path == train_store.path
    rows = select_test_events(store, n=N_EVENTS, seed=SEED)

    embedded = embed_run(pretrained_run, store, rows, batch_size=5)
    assert embedded.values.shape == (N_EVENTS, 2 * D_MODEL)
    assert np.isfinite(embedded.values).all()
    assert embedded.probabilities is None and embedded.predicted is None
    assert embedded.confidence is None and embedded.no_predictions_reason == NO_LABELS_REASON
    assert embedded.source == "pretrained_encoder" and embedded.model_kind == "masked"
    assert "pretrained encoder" in embedded.description and "no labels" in embedded.description
    assert f"{2 * D_MODEL} numbers" in embedded.description

    # the encoder is encoder.pt (read with weights_only=True) under the run's normalisation
    encoder = load_pretrained_encoder(pretrained_run)
    assert isinstance(encoder, MaskedTransformer) and not encoder.training
    assert encoder.normalization == Normalization.load(pretrained_run / "normalization.json")
    saved = torch.load(pretrained_run / "encoder.pt", map_location="cpu", weights_only=True)
    assert saved.keys() == encoder.state_dict().keys()
    assert all(torch.equal(saved[k], v) for k, v in encoder.state_dict().items())
    # the embeddings are its pooled states, whatever the batch size
    np.testing.assert_allclose(embedded.values, pooled_states(encoder, store, rows),
                               rtol=1e-5, atol=1e-5)
    again = embed_pretrained(pretrained_run, store, rows, batch_size=64)
    np.testing.assert_allclose(again.values, embedded.values, rtol=1e-5, atol=1e-5)

    # without predictions the summary still has every embedding number, and no model accuracy
    table = embedding_table(store, rows, embedded.predicted, embedded.confidence)
    assert "predicted" not in table and "confidence" not in table
    summary = embedding_summary(embedded.values, table,
                                [project_embeddings(embedded.values, "pca", seed=SEED)],
                                seed=SEED, predicted=embedded.predicted)
    assert summary["model_accuracy"] is None and 0 <= summary["knn"]["accuracy"] <= 1
    assert summary["dimension"] == 2 * D_MODEL and summary["n_events"] == N_EVENTS


def test_a_training_run_or_a_missing_run_is_not_loaded_as_a_pretrained_encoder(
        pretrained_run, train_store, tmp_path):
    with pytest.raises(ValueError, match="no 'pretrain' section"):
        load_pretrained_encoder(training_run(tmp_path / "trained", train_store))
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        load_pretrained_encoder(tmp_path)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    for name in ("config.json", "normalization.json", "encoder.pt"):
        (unfinished / name).write_bytes((pretrained_run / name).read_bytes())
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        load_pretrained_encoder(unfinished)


@pytest.mark.slow
def test_05_embedding_runs_on_a_pretraining_run(pretrained_run, train_store, tmp_path):
    out = tmp_path / "out"
    nb = execute_without_errors(
        NOTEBOOKS / "05_embedding.ipynb", tmp_path / "05.ipynb",
        {"run_dir": str(pretrained_run), "n_events": N_EVENTS, "method": "both", "seed": SEED,
         "batch_size": 8, "device": "cpu", "figure_formats": ["html"],
         "output_dir": str(out)})
    summary = json.loads((out / "embedding_summary.json").read_text())
    rows = select_test_events(train_store, n=N_EVENTS, seed=SEED)
    labels = np.asarray(train_store.labels[rows])
    assert summary["embedding"] == "pretrained_encoder" and summary["model_kind"] == "masked"
    assert summary["model_accuracy"] is None
    assert summary["dataset_dir"] == str(train_store.path)
    assert summary["n_events"] == N_EVENTS and summary["dimension"] == 2 * D_MODEL
    assert summary["class_counts"] == {name: int(np.sum(labels == c))
                                       for c, name in enumerate(CLASS_NAMES)}
    knn = summary["knn"]
    assert 0 <= knn["accuracy"] <= 1
    assert knn["chance"] == pytest.approx(np.bincount(labels).max() / N_EVENTS)
    assert -1 <= summary["silhouette"] <= 1
    ratio = summary["pca_explained_variance_ratio"]
    assert all(0 <= r <= 1 for r in ratio) and ratio == sorted(ratio, reverse=True)
    assert summary["projections"]["pca"]["explained_variance_ratio"] == pytest.approx(ratio[:2])
    assert sum(summary["binary_neighbourhood"][g]["n"] for g in ("detectable", "undetectable")) \
        <= int(np.sum(labels == CLASS_NAMES.index("binary")))
    assert summary["reconstruction"]["available"] is False
    # the notebook says why there is no model accuracy
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    assert "never trained with labels" in printed and "no model accuracy" in printed
    # the maps are written, and rebuilt from the record without predictions
    assert summary["figures"] == ["embedding_pca", "embedding_tsne"]
    assert_figures_written(out, summary["figures"])
    saved_rows, _, predicted, confidence = load_projections(out / PROJECTIONS_FILE)
    assert np.array_equal(saved_rows, rows) and predicted is None and confidence is None
    assert set(notebook_figures(out, "05_embedding")) == set(summary["figures"])
