"""Notebook 01_simulate: smoke run with tiny parameters (papermill) and the committed form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from notebook_form import assert_committed_form, execute_without_errors

from microlens import open_dataset
from microlens.notebooks import NOTEBOOKS as REGISTRY

pytestmark = pytest.mark.slow  # the fast tier: ./run_all.sh test fast

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "01_simulate.ipynb"
EXPECTED_PARAMETERS = REGISTRY["01_simulate"].types()  # one list: microlens.notebooks



def test_committed_notebook_form():
    assert_committed_form(NOTEBOOK, EXPECTED_PARAMETERS)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nb01")
    params = {
        "n_per_class": 6, "n_epochs": 200, "workers": 1, "seed": 5, "gallery_per_class": 2,
        "dataset_dir": str(tmp / "data"), "output_dir": str(tmp / "out"), "show_widgets": True,
    }
    execute_without_errors(NOTEBOOK, tmp / "01_simulate.executed.ipynb", params)
    return tmp


def test_notebook_runs_and_records_metrics(executed):
    tmp = executed
    metrics_path = tmp / "out" / "simulate_metrics.json"
    assert metrics_path.is_file()
    metrics = json.loads(metrics_path.read_text())
    assert metrics["class_counts"] == {"flat": 6, "pspl": 6, "binary": 6}
    assert metrics["n_events"] == 18
    assert Path(metrics["dataset_dir"]).is_absolute()
    assert Path(metrics["dataset_dir"]) == (tmp / "data").resolve()
    assert metrics["config"]["n_epochs"] == 200 and metrics["config"]["seed"] == 5
    assert sum(sum(v.values()) for v in metrics["split_counts"].values()) == 18
    assert metrics["events_per_second"] > 0
    det = metrics["detectability"]
    assert det["n_binary"] == 6 and 0.0 <= det["binary_detectable_fraction"] <= 1.0
    assert len(open_dataset(metrics["dataset_dir"])) == 18
    for name in ("gallery", "detectability"):
        assert (tmp / "out" / f"{name}.html").is_file()
    assert not list((tmp / "out").glob("*.tmp*"))
