"""Notebook 02_train with model_kind "masked" (pretraining, then fine-tuning), then 03_evaluate.

Through papermill with tiny parameters on the session's ``eval_store``: 02 must pretrain one
epoch into the ``pretrain`` folder beside ``runs_dir``, fine-tune from it, and record the
pretraining run and its cost in ``train_metrics.json``; 03 evaluates the masked run as any kind.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from notebook_form import NOTEBOOKS, execute_without_errors

from microlens.model import Normalization
from microlens.model_kinds import load_model
from microlens.predictions import Predictions, select_test_events
from microlens.pretrain import MaskedTransformer
from microlens.runs import read_history, read_metrics

pytestmark = pytest.mark.slow  # the fast tier: ./run_all.sh test fast


@pytest.fixture(scope="module")
def masked_chain(eval_store, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kind-masked")
    out = tmp / "out"
    common = {"output_dir": str(out), "figure_formats": ["html"], "device": "cpu"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")  # tiny models: one thread (test_notebook_kinds)
        executed = execute_without_errors(NOTEBOOKS / "02_train.ipynb", tmp / "02.ipynb", {
            "dataset_dir": str(eval_store.path), "runs_dir": str(tmp / "runs"),
            "run_name": "masked", "model_kind": "masked", "d_model": 16, "n_layers": 1,
            "n_heads": 2, "d_ff": 32, "window": 16, "epochs": 1, "batch_size": 16,
            "learning_rate": 3e-3, "patience": 0, "max_train_events": 48, "show_live": False,
            "pretrain_epochs": 1, "pretrain_batch_size": 16, "pretrain_mask_fraction": 0.25,
            "pretrain_learning_rate": 3e-3, **common})
        record = json.loads((out / "train_metrics.json").read_text())
        execute_without_errors(NOTEBOOKS / "03_evaluate.ipynb", tmp / "03.ipynb", {
            "run_dir": record["run_dir"], "n_bootstrap": 20, "classical_peer": False,
            **common})
    return tmp, out, record, executed


def test_02_pretrains_fine_tunes_and_records_the_pretraining(masked_chain, eval_store):
    tmp, _, record, executed = masked_chain
    assert record["model_kind"] == "masked" and record["config"]["model"]["kind"] == "masked"
    assert record["epochs_run"] == 1 and 0 <= record["val_accuracy"] <= 1
    assert record["n_parameters"] > 0 and record["figures"] == ["training_curves"]

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
            pre["config"]["mask_fraction"], pre["config"]["learning_rate"]) == (1, 16, 0.25, 3e-3)
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


def test_03_evaluates_the_masked_run(masked_chain, eval_store):
    _, out, _, _ = masked_chain
    summary = json.loads((out / "evaluation_summary.json").read_text())
    assert summary["model_kind"] == "masked"
    predictions = Predictions.load(out / "test_predictions.npz")
    test = select_test_events(eval_store, None, seed=0)
    assert np.array_equal(predictions.rows, test) and summary["n_events"] == test.size
    accuracy = np.mean(predictions.final().argmax(axis=1) == eval_store.labels[test])
    head = summary["headline"]
    assert head["accuracy"] == pytest.approx(accuracy)
    assert head["accuracy_low"] <= head["accuracy"] <= head["accuracy_high"]
