"""Physical limits: binned performance beside the detectable fraction."""

from __future__ import annotations

import numpy as np
import pytest

from microlens.evaluation.analysis import (
    bin_edges,
    binary_points,
    binned_performance,
    physical_limits,
)
from microlens.evaluation.predictions import run_predictions
from microlens.models.holdout import Predictions, SplitError


def test_bin_edges_cover_the_values_exactly():
    values = np.array([0.013, 0.2, 0.7, 3.1, np.nan])
    edges = bin_edges(values, 3, "log")
    assert edges[0] == 0.013 and edges[-1] == 3.1 and edges.size == 4
    assert np.allclose(np.diff(np.log10(edges)), np.log10(3.1 / 0.013) / 3)
    assert bin_edges(np.array([0.0, 1.0]), 4).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert bin_edges(np.array([2.0, 2.0]), 2, "log").tolist() == [1.0, 2.0, 4.0]
    with pytest.raises(ValueError, match="scale"):
        bin_edges(values, 3, "sqrt")
    with pytest.raises(ValueError, match="n_bins"):
        bin_edges(values, 0)


def test_binned_performance_known_answer():
    # bin [0, 0.5): two binaries, one found, one detectable (the found one); one PSPL, right
    # bin [0.5, 1]: one binary, missed, undetectable; one PSPL, wrong
    values = np.array([0.1, 0.2, 0.3, 0.6, 1.0, np.nan])
    labels = np.array([2, 2, 1, 2, 1, 2])
    predicted = np.array([2, 1, 1, 1, 0, 2])
    dchi2 = np.array([500.0, 20.0, np.nan, 5.0, np.nan, 900.0])
    table = binned_performance(values, labels, predicted, dchi2, np.array([0.0, 0.5, 1.0]),
                               threshold=100.0)
    assert table["n"] == [3, 2]  # the NaN value is left out, the upper edge is included
    assert table["accuracy"] == [pytest.approx(2 / 3), 0.0]
    assert table["n_binary"] == [2, 1]
    assert table["binary_recall"] == [0.5, 0.0]
    assert table["detectable_fraction"] == [0.5, 0.0]
    assert table["recall_detectable"] == [1.0, None]
    assert table["recall_undetectable"] == [0.0, 0.0]
    assert table["binary_recall_low"][0] < 0.5 < table["binary_recall_high"][0]
    with pytest.raises(ValueError, match="increasing"):
        binned_performance(values, labels, predicted, dchi2, np.array([1.0, 0.5]))


def test_physical_limits_on_a_trained_run(eval_run, eval_store):
    predictions, store = run_predictions(eval_run)
    report = physical_limits(store, predictions, n_bins=3, threshold=100.0)
    params = store.params[predictions.rows]
    binary = params["label"] == 2
    detectable = params["dchi2_pspl"][binary] > 100.0
    found = predictions.final().argmax(axis=1)[binary] == 2
    summary = report["binary"]
    assert summary["n_binary"] == binary.sum()
    assert summary["detectable_fraction"] == pytest.approx(detectable.mean())
    assert summary["binary_recall"] == pytest.approx(found.mean())
    if detectable.any():
        assert summary["recall_detectable"] == pytest.approx(found[detectable].mean())
    for column in ("q", "s", "dchi2_pspl"):
        assert sum(report["bins"][column]["n_binary"]) == binary.sum(), column
    assert sum(report["bins"]["u_0"]["n"]) == np.sum(params["label"] > 0)
    points = binary_points(store, predictions)
    assert np.array_equal(points["index"], predictions.rows[binary])
    assert np.array_equal(points["q"], params["q"][binary])
    with pytest.raises(ValueError, match="unknown column"):
        physical_limits(store, predictions, columns=("alpha",))


def test_physical_limits_refuses_non_test_or_misaligned_predictions(eval_run, eval_store):
    predictions, store = run_predictions(eval_run)
    val = store.indices("val")[: len(predictions)]
    moved = Predictions(val, predictions.labels[: val.size], predictions.lengths[: val.size],
                        predictions.times[: val.size], predictions.logits[: val.size])
    with pytest.raises(SplitError):
        physical_limits(store, moved)
    shuffled = predictions.subset(np.arange(len(predictions)))
    shuffled.labels = np.roll(shuffled.labels, 1)
    with pytest.raises(ValueError, match="aligned"):
        physical_limits(store, shuffled)


def test_physical_limits_needs_detectability(train_store, tmp_path):
    rows = train_store.indices("test")
    n = rows.size
    predictions = Predictions(rows, np.asarray(train_store.labels[rows]), np.full(n, 5),
                              np.zeros((n, 5)), np.zeros((n, 5, 3), np.float32))
    with pytest.raises(ValueError, match="detectability=True"):
        physical_limits(train_store, predictions)
