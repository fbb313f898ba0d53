"""Notebook 07_real_events: the shipped real events through a tiny trained run and its peer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from notebook_form import (
    NOTEBOOKS,
    assert_committed_form,
    assert_figures_written,
)

from microlens.evaluation.predictions import run_predictions
from microlens.photometry.files import read_shipped_event, shipped_events
from microlens.realdata.benchmark.beside import PAIRS, simulated_shares
from microlens.realdata.real_events import SERIES_FILE, load_series
from microlens.workflow.figures import notebook_figures
from microlens.workflow.notebooks import NOTEBOOKS as REGISTRY

NOTEBOOK = NOTEBOOKS / "07_real_events.ipynb"
EXPECTED_PARAMETERS = REGISTRY["07_real_events"].types()  # one list: microlens.workflow.notebooks


def test_committed_notebook_form():
    declared = assert_committed_form(NOTEBOOK, EXPECTED_PARAMETERS)
    assert declared["events"] == [] and declared["photometry_files"] == []


@pytest.mark.slow  # a notebook run; the fast tier: ./run_all.sh test fast
def test_shipped_events_record_and_figures(notebook_chain):
    out = notebook_chain.ran("07_real_events").out  # every shipped event, with the peer
    record = json.loads((out / "real_events.json").read_text())
    catalogue = shipped_events()
    assert record["n_events"] == len(catalogue) == 6
    assert [e["name"] for e in record["events"]] == list(catalogue)
    assert [row["event"] for row in record["summary"]] == list(catalogue)
    assert record["peer"] is not None and record["peer"]["n_val"] > 0
    series = load_series(out / SERIES_FILE)
    assert list(series) == list(catalogue)
    for entry, row in zip(record["events"], record["summary"], strict=True):
        shipped = catalogue[entry["name"]]
        assert entry["published_class"] == shipped.published_class
        assert entry["reference"] == shipped.reference and entry["source"] == "shipped"
        n = len(read_shipped_event(entry["name"]))
        assert entry["n_points"] == n
        proba = series[entry["name"]]["probabilities"]
        assert proba.shape == (n, 3)
        np.testing.assert_allclose(proba[-1], entry["model"]["at_end"]["probabilities"],
                                   atol=1e-6)
        assert entry["model"]["at_end"]["class"] == int(np.argmax(proba[-1]))
        assert entry["peer"]["at_end"]["n"] == n
        assert row["correct"] == (entry["model"]["at_end"]["class"] == shipped.published_class)
    assert record["n_correct"] == sum(row["correct"] for row in record["summary"])
    # the sky beside the simulation: the run's test split and 8 shipped real events
    beside = record["beside_simulation"]
    predictions, _ = run_predictions(notebook_chain.parameters["07_real_events"]["run_dir"])
    simulated = simulated_shares(predictions.labels,
                                 predictions.classes_at(predictions.lengths - 1))
    assert [row["simulated"] for row in beside["rows"]] == [
        simulated[key] for key, *_ in PAIRS]
    assert beside["simulated_events"] == len(predictions)
    assert 0 < beside["real_events"] <= 8 and beside["real_baselines"] <= 8
    assert all(row["real"]["of"] > 0 for row in beside["rows"])
    assert "Udalski" in beside["citation"]
    names = ["real_events_table", *(f"real_event_{e['slug']}" for e in record["events"]),
             "sky_beside_simulation"]
    assert sorted(record["figures"]) == sorted(names)
    assert_figures_written(out, names)
    assert sorted(notebook_figures(out, "07_real_events")) == sorted(names)  # rebuilt
