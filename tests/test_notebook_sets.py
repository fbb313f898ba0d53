"""Notebooks 02_train and 03_evaluate with the set kinds (deepsets, set_transformer).

Through papermill with tiny parameters on the session's ``eval_store``, one kernel thread
(``OMP_NUM_THREADS=1``, as in ``test_notebook_kinds.py``: small models on a shared two-core
machine), asserting on what each notebook records.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from notebook_form import NOTEBOOKS, execute_without_errors

from microlens.analysis import run_model_kind
from microlens.predictions import Predictions, select_test_events

N_TEST = 24


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["deepsets", "set_transformer"])
def test_a_set_kind_trains_and_evaluates_in_the_notebooks(kind, eval_store, tmp_path):
    out = tmp_path / "out"
    common = {"output_dir": str(out), "figure_formats": ["html"], "device": "cpu"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        execute_without_errors(NOTEBOOKS / "02_train.ipynb", tmp_path / "02.ipynb", {
            "dataset_dir": str(eval_store.path), "runs_dir": str(tmp_path / "runs"),
            "run_name": kind, "model_kind": kind, "d_model": 16, "n_layers": 1, "n_heads": 4,
            "d_ff": 32, "window": 8, "dropout": 0.0, "epochs": 1, "batch_size": 16,
            "learning_rate": 3e-3, "patience": 0, "max_train_events": 48, "show_live": False,
            **common})
        record = json.loads((out / "train_metrics.json").read_text())
        execute_without_errors(NOTEBOOKS / "03_evaluate.ipynb", tmp_path / "03.ipynb", {
            "run_dir": record["run_dir"], "n_events": N_TEST, "n_bootstrap": 20,
            "classical_peer": False, **common})

    assert record["model_kind"] == kind and run_model_kind(record["run_dir"]) == kind
    model = record["config"]["model"]
    assert (model["kind"], model["window"], model["d_model"]) == (kind, 8, 16)
    assert record["epochs_run"] == 1 and 0 <= record["val_accuracy"] <= 1
    assert record["n_parameters"] > 0

    summary = json.loads((out / "evaluation_summary.json").read_text())
    assert summary["model_kind"] == kind
    test = select_test_events(eval_store, N_TEST, seed=0)
    assert summary["n_events"] == test.size == N_TEST
    predictions = Predictions.load(out / "test_predictions.npz")
    assert np.array_equal(predictions.rows, test)
    final = predictions.final()
    assert np.isfinite(final).all() and np.allclose(final.sum(axis=1), 1, atol=1e-5)
    accuracy = summary["headline"]["accuracy"]
    assert math.isfinite(accuracy) and 0 <= accuracy <= 1
    assert accuracy == pytest.approx(np.mean(final.argmax(axis=1) == eval_store.labels[test]))
