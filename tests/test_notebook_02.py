"""Notebook 02_train: smoke run with tiny parameters (papermill) and the committed form."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from chain import TRAIN
from notebook_form import assert_committed_form, execute_without_errors

from microlens.reports import CURVE_SERIES, add_history_rows, training_curves_figure
from microlens.workflow.notebooks import NOTEBOOKS as REGISTRY

slow = pytest.mark.slow  # notebook runs; the fast tier: ./run_all.sh test fast

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "02_train.ipynb"
EXPECTED_PARAMETERS = REGISTRY["02_train"].types()  # one list: microlens.workflow.notebooks
RUN_FILES = ("config.json", "normalization.json", "best.pt", "last.pt", "history.csv",
             "steps.csv", "metrics.json")



def test_committed_notebook_form():
    declared = assert_committed_form(NOTEBOOK, EXPECTED_PARAMETERS)
    assert not (declared["overwrite"] and declared["resume"])


def test_training_curves_figure_adds_each_epoch_once():
    rows = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": [1.0, 0.5, 0.7][e - 1],
             "train_accuracy": 0.3 * e, "val_accuracy": 0.2 * e} for e in (1, 2, 3)]
    fig = training_curves_figure(rows[:1])
    assert [t.name for t in fig.data] == [name for _, name, _, _ in CURVE_SERIES]
    add_history_rows(fig, rows[:2])
    add_history_rows(fig, [rows[2], rows[1]])  # repeats and disorder are harmless
    assert all(list(t.x) == [1, 2, 3] for t in fig.data)
    assert list(fig.data[1].y) == [1.0, 0.5, 0.7]
    assert "epoch 2" in fig.layout.title.text
    assert "waiting" in training_curves_figure().layout.title.text


def execute_two_processes(tmp: Path, dataset: Path):
    """02_train as the chain runs it (tests/chain.py), but with two processes: torchrun with
    two CPU processes (gloo), device cpu, so a one-GPU machine runs it too."""
    params = {**TRAIN, "dataset_dir": str(dataset), "runs_dir": str(tmp / "runs"),
              "output_dir": str(tmp / "out"), "figure_formats": ["html"], "processes": 2,
              "device": "cpu"}
    return execute_without_errors(NOTEBOOK, tmp / "02_train.executed.ipynb", params)


def check_run(tmp: Path, processes: int) -> dict:
    """The checks shared by the one- and two-process runs (outputs under ``tmp``: ``out/``,
    ``runs/smoke/``); returns train_metrics.json."""
    metrics_path = tmp / "out" / "train_metrics.json"
    assert metrics_path.is_file()
    metrics = json.loads(metrics_path.read_text())
    assert metrics["epochs_run"] == 2
    assert 1 <= metrics["best_epoch"] <= 2
    assert math.isfinite(metrics["val_loss"])
    assert 0.0 <= metrics["val_accuracy"] <= 1.0
    assert metrics["temperature"] > 0
    assert metrics["n_parameters"] > 0
    assert metrics["processes"] == metrics["world_size"] == processes
    assert metrics["train_events_per_second"] > 0
    assert metrics["config"]["model"]["d_model"] == 16

    run_dir = Path(metrics["run_dir"])
    assert run_dir == (tmp / "runs" / "smoke").resolve()
    for name in RUN_FILES:
        assert (run_dir / name).is_file(), name
    with open(run_dir / "history.csv", newline="") as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [1, 2]
    assert (tmp / "out" / "training_curves.html").is_file()
    assert not list((tmp / "out").glob("*.tmp*")) and not list(run_dir.glob(".*tmp*"))
    return metrics


@slow
def test_notebook_trains_and_records_metrics(notebook_chain):
    check_run(notebook_chain.ran("02_train").root, processes=1)


@slow
def test_notebook_trains_with_two_processes(eval_store, tmp_path):
    execute_two_processes(tmp_path, eval_store.path)
    check_run(tmp_path, processes=2)
