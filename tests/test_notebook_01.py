"""Notebook 01_simulate: smoke run with tiny parameters (papermill) and the committed form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from notebook_form import assert_committed_form, execute_without_errors

from microlens import open_dataset
from microlens.simulation.variables import describe_variable
from microlens.workflow.notebooks import NOTEBOOKS as REGISTRY
from microlens.workflow.notebooks import simulation_config

slow = pytest.mark.slow  # notebook runs; the fast tier: ./run_all.sh test fast

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "01_simulate.ipynb"
EXPECTED_PARAMETERS = REGISTRY["01_simulate"].types()  # one list: microlens.workflow.notebooks


def test_committed_notebook_form():
    assert_committed_form(NOTEBOOK, EXPECTED_PARAMETERS)


def test_parameters_map_onto_the_simulation_config():
    defaults = REGISTRY["01_simulate"].defaults()
    cfg = simulation_config(defaults)  # "" and -1.0 mean unset: the thesis defaults
    assert (cfg.survey, cfg.cadence, cfg.error, cfg.variable_fraction) == ("thesis", None, None,
                                                                          None)
    assert (cfg.cadence_preset, cfg.error_preset, cfg.variable_share) == ("cadence_15",
                                                                          "error_005", 0.0)
    ogle = simulation_config({**defaults, "survey": "ogle"})
    assert (ogle.survey, ogle.cadence, ogle.variable_fraction, ogle.variable_share) == (
        "ogle", None, None, 0.5)
    assert simulation_config({**defaults, "survey": "ogle",
                              "variable_fraction": 0.25}).variable_share == 0.25
    thesis = simulation_config({**defaults, "cadence": "cadence_50", "variable_fraction": 1})
    assert (thesis.cadence, thesis.variable_fraction) == ("cadence_50", 1)


def test_a_real_survey_refuses_cadence_error_and_n_epochs():
    defaults = REGISTRY["01_simulate"].defaults()
    with pytest.raises(ValueError, match=r"survey 'ogle'.*cadence='cadence_05'"):
        simulation_config({**defaults, "survey": "ogle", "cadence": "cadence_05"})
    with pytest.raises(ValueError, match=r"survey 'kmtnet'.*error='error_010'"):
        simulation_config({**defaults, "survey": "kmtnet", "error": "error_010"})
    with pytest.raises(ValueError, match=r"n_epochs shapes the thesis survey only; survey 'moa'"):
        simulation_config({**defaults, "survey": "moa", "n_epochs": 200})
    with pytest.raises(ValueError, match=r"variable_fraction must be in \[0, 1\].*got 1.5"):
        simulation_config({**defaults, "variable_fraction": 1.5})
    with pytest.raises(ValueError, match="unknown survey|survey 'hubble'|hubble"):
        simulation_config({**defaults, "survey": "hubble"})


@slow
def test_notebook_runs_and_records_metrics(notebook_chain):
    chain = notebook_chain.ran("01_simulate")  # n_per_class 6, seed 5: tests/chain.py
    metrics_path = chain.out / "simulate_metrics.json"
    assert metrics_path.is_file()
    metrics = json.loads(metrics_path.read_text())
    assert metrics["class_counts"] == {"no_event": 6, "pspl": 6, "binary": 6}
    assert metrics["n_events"] == 18
    assert Path(metrics["dataset_dir"]).is_absolute()
    assert Path(metrics["dataset_dir"]) == chain.data.resolve()
    assert metrics["config"]["n_epochs"] == 200 and metrics["config"]["seed"] == 5
    assert sum(sum(v.values()) for v in metrics["split_counts"].values()) == 18
    assert metrics["events_per_second"] > 0
    det = metrics["detectability"]
    assert det["n_binary"] == 6 and 0.0 <= det["binary_detectable_fraction"] <= 1.0
    assert len(open_dataset(metrics["dataset_dir"])) == 18
    for name in ("gallery", "detectability"):
        assert (chain.out / f"{name}.html").is_file()
    assert not list(chain.out.glob("*.tmp*"))


@slow
def test_notebook_runs_a_survey_preset_with_variable_stars(tmp_path):
    params = {
        "survey": "ogle", "variable_fraction": 1.0, "n_per_class": 3, "detectability": False,
        "workers": 1, "seed": 2, "gallery_per_class": 2, "show_widgets": True,
        "figure_formats": ["html"],
        "dataset_dir": str(tmp_path / "data"), "output_dir": str(tmp_path / "out"),
    }
    execute_without_errors(NOTEBOOK, tmp_path / "01_ogle.executed.ipynb", params)
    metrics = json.loads((tmp_path / "out" / "simulate_metrics.json").read_text())
    config = metrics["config"]
    assert (config["survey"], config["variable_fraction"]) == ("ogle", 1.0)
    assert config["cadence"] is None and config["error"] is None
    assert metrics["class_counts"] == {"no_event": 3, "pspl": 3, "binary": 3}
    store = open_dataset(metrics["dataset_dir"])
    assert store.reference_epoch > 2.4e6 and store.lengths.max() > 1000
    gallery = (tmp_path / "out" / "gallery.html").read_text()
    kinds = [describe_variable(store.event(int(i))["params"])
             for i in (store.labels == 0).nonzero()[0]]
    assert "constant star" not in kinds  # variable_fraction 1: every no-event star varies
    shown = [k for k in kinds if f"no event: {k.split(',')[0]}" in gallery]
    assert len(shown) >= 2, kinds  # both gallery columns name their variable star
    assert "days since JD" in gallery
