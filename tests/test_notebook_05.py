"""Notebook 05_embedding: a smoke run with tiny parameters (papermill) and the committed form."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from chain import EMBEDDING
from notebook_form import (
    NOTEBOOKS,
    assert_committed_form,
    assert_figures_written,
)

from microlens.core.classes import CLASS_NAMES
from microlens.evaluation.predictions import run_predictions
from microlens.models.holdout import select_test_events
from microlens.workflow.notebooks import NOTEBOOKS as REGISTRY

slow = pytest.mark.slow  # notebook runs; the fast tier: ./run_all.sh test fast

NOTEBOOK = NOTEBOOKS / "05_embedding.ipynb"
EXPECTED_PARAMETERS = REGISTRY["05_embedding"].types()  # one list: microlens.workflow.notebooks
N_EVENTS, SEED = EMBEDDING["n_events"], EMBEDDING["seed"]  # 30 and 2: tests/chain.py



def test_committed_notebook_form():
    declared = assert_committed_form(NOTEBOOK, EXPECTED_PARAMETERS)
    assert declared["method"] == "both" and declared["dataset_dir"] == ""


@pytest.fixture(scope="module")
def executed(notebook_chain):
    """The chain's root and 05's summary (N_EVENTS test events, SEED, both projections)."""
    chain = notebook_chain.ran("05_embedding")
    return chain.root, json.loads((chain.out / "embedding_summary.json").read_text())


@slow
def test_records_embedding_numbers(executed, eval_store, eval_run):
    _, summary = executed
    rows = select_test_events(eval_store, n=N_EVENTS, seed=SEED)
    labels = np.asarray(eval_store.labels[rows])
    assert summary["split"] == "test" and summary["seed"] == SEED
    assert summary["method"] == "both" and summary["n_events"] == N_EVENTS
    assert Path(summary["dataset_dir"]) == eval_store.path
    assert summary["class_counts"] == {name: int(np.sum(labels == c))
                                       for c, name in enumerate(CLASS_NAMES)}
    assert summary["dimension"] == 2 * json.loads(
        (Path(eval_run) / "config.json").read_text())["model"]["d_model"]
    assert -1 <= summary["silhouette"] <= 1
    knn = summary["knn"]
    assert 0 <= knn["accuracy"] <= 1 and knn["chance"] == pytest.approx(
        np.bincount(labels).max() / N_EVENTS)
    ratio = summary["pca_explained_variance_ratio"]
    assert all(0 <= r <= 1 for r in ratio) and sum(ratio) <= 1 + 1e-9
    assert ratio == sorted(ratio, reverse=True)
    pca, tsne = summary["projections"]["pca"], summary["projections"]["tsne"]
    assert pca["explained_variance_ratio"] == pytest.approx(ratio[:2])
    assert tsne["perplexity"] <= (N_EVENTS - 1) / 3 and tsne["seed"] == SEED
    for group in ("detectable", "undetectable"):
        entry = summary["binary_neighbourhood"][group]
        assert entry["pspl_neighbour_fraction"] is None or 0 <= entry[
            "pspl_neighbour_fraction"] <= 1
    assert sum(summary["binary_neighbourhood"][g]["n"] for g in ("detectable", "undetectable")) \
        == int(np.sum(labels == CLASS_NAMES.index("binary")))
    # the model accuracy recorded is that of the model's own final predictions
    predicted = run_predictions(eval_run, rows=rows, cache=False)[0].final().argmax(axis=1)
    assert summary["model_accuracy"] == pytest.approx(np.mean(predicted == labels))


@slow
def test_writes_the_figures(executed):
    tmp, summary = executed
    assert summary["figures"] == ["embedding_pca", "embedding_tsne"]
    assert_figures_written(tmp / "out", summary["figures"])
