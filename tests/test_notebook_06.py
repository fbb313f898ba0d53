"""Notebook 06_u0_analysis: smoke run on a tiny trained model, asserting on its report."""

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
from microlens.workflow.notebooks import NOTEBOOKS as REGISTRY

NOTEBOOK = NOTEBOOKS / "06_u0_analysis.ipynb"
EXPECTED_PARAMETERS = REGISTRY["06_u0_analysis"].types()  # one list: microlens.workflow.notebooks



def test_committed_notebook_form():
    assert_committed_form(NOTEBOOK, EXPECTED_PARAMETERS)


@pytest.mark.slow  # a notebook run; the fast tier: ./run_all.sh test fast
def test_report_and_figures(eval_run, eval_store, notebook_chain):
    out = notebook_chain.ran("06_u0_analysis").out  # n_bins 4, threshold 50: tests/chain.py
    report = json.loads((out / "u0_report.json").read_text())
    assert report["threshold"] == 50.0
    test = eval_store.indices("test")
    params = eval_store.params[test]
    binary = params["label"] == 2
    assert report["binary"]["n_binary"] == int(binary.sum())
    assert report["binary"]["n_detectable"] == int(np.sum(params["dchi2_pspl"][binary] > 50.0))
    predictions, _ = run_predictions(eval_run)
    found = predictions.final().argmax(axis=1)[binary] == 2
    assert report["binary"]["binary_recall"] == pytest.approx(found.mean())
    assert set(report["bins"]) == {"u_0", "q", "s", "dchi2_pspl"}
    u0 = report["bins"]["u_0"]
    assert len(u0["n"]) == 4 and sum(u0["n"]) == int(np.sum(params["label"] > 0))
    assert sum(report["bins"]["q"]["n_binary"]) == int(binary.sum())
    assert_figures_written(out, ("physical_limits", "binary_parameters"))
