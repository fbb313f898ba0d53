"""Notebook 04_attention: smoke runs with tiny parameters (papermill) and the committed form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from notebook_form import (
    NOTEBOOKS,
    assert_committed_form,
    assert_figures_written,
    execute_without_errors,
)

from microlens.core.classes import CLASS_NAMES
from microlens.models.holdout import select_test_events
from microlens.workflow.notebooks import NOTEBOOKS as REGISTRY

slow = pytest.mark.slow  # notebook runs; the fast tier: ./run_all.sh test fast

NOTEBOOK = NOTEBOOKS / "04_attention.ipynb"
EXPECTED_PARAMETERS = REGISTRY["04_attention"].types()  # one list: microlens.workflow.notebooks
FIGURES = ("attention_gallery", "attention_event", "attention_layers", "attention_band",
           "attention_statistics")



def test_committed_notebook_form():
    declared = assert_committed_form(NOTEBOOK, EXPECTED_PARAMETERS)
    assert declared["event_indices"] == [] and declared["dataset_dir"] == ""
    assert declared["run_dir"] == "outputs/runs/quick"
    assert declared["output_dir"] == "outputs/lab"  # hand-run notebooks, not a study folder


def run(tmp: Path, run_dir: Path, **parameters) -> dict:
    """Execute the notebook with tiny parameters; returns attention_summary.json."""
    params = {"run_dir": str(run_dir), "output_dir": str(tmp / "out"), "show_widgets": False,
              "figure_formats": ["html"], **parameters}
    execute_without_errors(NOTEBOOK, tmp / "04_attention.executed.ipynb", params)
    return json.loads((tmp / "out" / "attention_summary.json").read_text())


@pytest.fixture(scope="module")
def per_class_run(notebook_chain):
    """The chain's root and 04's summary (per_class 2, seed 4, widgets shown: tests/chain.py)."""
    chain = notebook_chain.ran("04_attention")
    return chain.root, json.loads((chain.out / "attention_summary.json").read_text())


@slow
def test_records_per_class_test_events(per_class_run, eval_store, eval_run):
    tmp, summary = per_class_run
    rows = [event["row"] for event in summary["events"]]
    assert rows == select_test_events(eval_store, per_class=2, seed=4).tolist()
    assert all(eval_store.split[r] == 2 for r in rows)  # the test split only
    assert summary["split"] == "test"
    assert summary["n_events"] == 6
    assert summary["class_counts"] == {name: 2 for name in CLASS_NAMES}
    assert Path(summary["dataset_dir"]) == eval_store.path
    assert Path(summary["run_dir"]) == Path(eval_run)
    assert summary["selection"] == {"event_indices": [], "per_class": 2, "seed": 4}
    for event in summary["events"]:
        assert event["label"] == int(eval_store.labels[event["row"]])
        assert event["n_obs"] == int(eval_store.lengths[event["row"]])
        assert sum(event["final_probabilities"]) == pytest.approx(1.0, abs=1e-5)
        assert event["predicted"] in CLASS_NAMES
    focus = summary["focus_event"]
    assert focus in rows and eval_store.labels[focus] == CLASS_NAMES.index("binary")


@slow
def test_records_attention_numbers(per_class_run):
    _, summary = per_class_run
    model = summary["model"]
    window = model["window"]
    assert summary["window"] == window
    assert summary["n_queries"] == sum(event["n_obs"] for event in summary["events"])
    assert 0 < summary["uniform_distance_obs"] < window
    assert len(summary["layers"]) == model["n_layers"]
    for layer in summary["layers"]:
        assert len(layer["heads"]) == model["n_heads"]
        for entry in (layer, *layer["heads"]):
            assert 0 <= entry["distance_obs"] <= window - 1
            assert 0 <= entry["entropy_normalized"] <= 1 + 1e-9
            assert 0 <= entry["self_weight"] <= 1
            for region in entry["regions"].values():
                assert 0 < region["uniform"] <= 1 and region["enrichment"] > 0


@slow
def test_writes_the_figures(per_class_run):
    tmp, summary = per_class_run
    assert summary["figures"] == sorted(FIGURES)
    assert_figures_written(tmp / "out", FIGURES)


@slow
def test_explicit_event_indices(tmp_path, eval_run, eval_store):
    chosen = eval_store.indices("test")[[0, 5, 9]].tolist()
    summary = run(tmp_path, eval_run, event_indices=chosen)
    assert [event["row"] for event in summary["events"]] == chosen
    assert summary["selection"]["event_indices"] == chosen
    assert summary["n_events"] == 3
