"""Notebook 03_evaluate: smoke run on a tiny trained model, asserting on what it records."""

from __future__ import annotations

import json

import numpy as np
import pytest
from notebook_form import (
    NOTEBOOKS,
    assert_committed_form,
    assert_figures_written,
)

from microlens.models.holdout import Predictions
from microlens.workflow.notebooks import NOTEBOOKS as REGISTRY

slow = pytest.mark.slow  # notebook runs; the fast tier: ./run_all.sh test fast

NOTEBOOK = NOTEBOOKS / "03_evaluate.ipynb"
EXPECTED_PARAMETERS = REGISTRY["03_evaluate"].types()  # one list: microlens.workflow.notebooks
FIGURES = ("confusion", "roc", "precision_recall", "reliability", "confidence",
           "early_detection", "decision_time", "peer_comparison", "dchi2_recall")



def test_committed_notebook_form():
    declared = assert_committed_form(NOTEBOOK, EXPECTED_PARAMETERS)
    assert declared["dataset_dir"] == ""  # default: the run's own data set


@pytest.fixture(scope="module")
def executed(notebook_chain):
    """The chain's output directory after 03 ran on ``eval_run`` (every test event,
    n_bootstrap 30: tests/chain.py)."""
    return notebook_chain.ran("03_evaluate").out


@slow
def test_summary_records_the_test_split_metrics(executed, eval_store):
    summary = json.loads((executed / "evaluation_summary.json").read_text())
    test_rows = eval_store.indices("test")
    assert summary["split"] == "test" and summary["n_events"] == test_rows.size
    predictions = Predictions.load(executed / "test_predictions.npz")
    assert np.array_equal(predictions.rows, test_rows)
    accuracy = np.mean(predictions.final().argmax(axis=1) == eval_store.labels[test_rows])
    head = summary["headline"]
    assert head["accuracy"] == pytest.approx(accuracy)
    assert head["accuracy_low"] <= head["accuracy"] <= head["accuracy_high"]
    assert 0.0 <= head["ece_after"] <= 1.0 and 0.0 <= head["ece_before"] <= 1.0
    peer = summary["classical_peer"]
    assert 0.0 <= peer["accuracy"] <= 1.0 and peer["seconds_per_event"] > 0
    assert head["peer_accuracy"] == peer["accuracy"]
    fractions = summary["early_detection"]["by_fraction"]
    assert fractions["accuracy"][-1] == pytest.approx(accuracy)
    # both label sets, the Δχ² bins and the shortcut probe, for both classifiers
    assert summary["label_policy"] == "physical"
    for part in (summary, peer):
        assert part["label_sets"]["physical"]["accuracy"]["value"] == pytest.approx(
            part["headline"]["accuracy"] if part is summary else part["accuracy"])
        assert part["label_sets"]["observable"] is not None
        assert sum(part["dchi2_bins"]["n_binary"]) == summary["class_counts"]["binary"]
        assert set(part["probe"]["correlation"]) == {"t_E", "u_0", "peak_significance"}
    assert head["probe_warnings"] == len(summary["probe"]["warnings"])
    executed_nb = (executed.parent / "03_evaluate.executed.ipynb").read_text()
    assert "trained with label_policy = 'physical'" in executed_nb


@slow
def test_figures_are_written(executed):
    assert_figures_written(executed, FIGURES)
