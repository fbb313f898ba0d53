"""Evaluation: the test-split guard, alignment, early detection and decision time."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

from microlens.evaluation.evaluate import (
    accuracy_by_fraction,
    accuracy_by_tau,
    decision_points,
    decision_sweep,
    evaluate_run,
    positions_at_fraction,
)
from microlens.evaluation.predictions import predict_events, run_predictions
from microlens.models.holdout import Predictions, SplitError, require_test_split, select_test_events
from microlens.models.registry import load_model
from microlens.simulation.simulate import model_flux


def hand_made(logits, times=None, labels=(0,), lengths=None) -> Predictions:
    logits = np.asarray(logits, np.float32)
    n_events, width = logits.shape[:2]
    times = np.tile(np.arange(width, dtype=float), (n_events, 1)) if times is None else times
    lengths = np.full(n_events, width) if lengths is None else np.asarray(lengths)
    return Predictions(rows=np.arange(n_events), labels=np.asarray(labels), lengths=lengths,
                       times=np.asarray(times, float), logits=logits, temperature=1.0)


# -- the test-split guard and alignment ----------------------------------------------------


def test_evaluation_refuses_rows_outside_the_test_split(eval_store, eval_run):
    val, train = eval_store.indices("val"), eval_store.indices("train")
    with pytest.raises(SplitError, match="test split only.*val"):
        require_test_split(eval_store, val[:3])
    with pytest.raises(SplitError, match="train"):
        require_test_split(eval_store, np.r_[eval_store.indices("test")[:2], train[:1]])
    with pytest.raises(SplitError, match="split='val'"):
        select_test_events(eval_store, split="val")
    with pytest.raises(SplitError):
        run_predictions(eval_run, rows=val[:4], cache=False)
    with pytest.raises(SplitError):
        predict_events(load_model(eval_run), eval_store, train[:4])
    with pytest.raises(IndexError):
        require_test_split(eval_store, [len(eval_store)])


def test_select_test_events_subsamples_reproducibly(eval_store):
    test = eval_store.indices("test")
    assert np.array_equal(select_test_events(eval_store), test)
    a = select_test_events(eval_store, 10, seed=4)
    assert a.size == 10 and np.all(np.diff(a) > 0) and np.isin(a, test).all()
    assert np.array_equal(a, select_test_events(eval_store, 10, seed=4))
    assert not np.array_equal(a, select_test_events(eval_store, 10, seed=5))
    per = select_test_events(eval_store, per_class=3, seed=1)
    assert np.bincount(eval_store.labels[per]).tolist() == [3, 3, 3]


def test_shuffled_subsample_keeps_parameters_aligned(eval_store, eval_run):
    rows = select_test_events(eval_store, 12, seed=9)
    shuffled = np.random.default_rng(0).permutation(rows)
    predictions = predict_events(load_model(eval_run), eval_store, shuffled, batch_size=5)
    assert np.array_equal(predictions.rows, shuffled)
    assert np.array_equal(predictions.labels, eval_store.labels[shuffled])
    # recompute a lensing event from its parameter row: it must explain that event's data
    # (chi2 per point near 1) and not another event's
    params = eval_store.params[predictions.rows]
    k = int(np.flatnonzero(predictions.labels > 0)[0])
    event = eval_store.event(predictions.rows[k])
    row = {name: params[k][name].item() for name in params.dtype.names}
    truth = model_flux(row, event["times"])
    chi2 = np.mean(((event["flux"] - truth) / event["flux_err"]) ** 2)
    assert 0.5 < chi2 < 2.0
    other = eval_store.event(predictions.rows[(k + 1) % rows.size])
    other_truth = model_flux(row, other["times"])
    assert np.mean(((other["flux"] - other_truth) / other["flux_err"]) ** 2) > 5 * chi2
    # and the subset view stays aligned
    part = predictions.subset(np.array([3, 0]))
    assert np.array_equal(part.labels, eval_store.labels[part.rows])


def test_predictions_round_trip_and_cache(eval_run, tmp_path):
    first, store = run_predictions(eval_run)
    cached = list((eval_run / "predictions").glob("*.npz"))
    assert len(cached) == 1
    again, _ = run_predictions(eval_run)
    assert np.array_equal(first.logits, again.logits) and again.info == first.info
    first.save(tmp_path / "p.npz")
    loaded = Predictions.load(tmp_path / "p.npz")
    for name in ("rows", "labels", "lengths", "times", "logits"):
        assert np.array_equal(getattr(loaded, name), getattr(first, name))
    assert loaded.temperature == first.temperature and loaded.info["split"] == "test"
    assert np.array_equal(first.rows, store.indices("test"))


# -- early detection -----------------------------------------------------------------------


def test_positions_at_fraction():
    assert positions_at_fraction(np.array([10, 3]), 0.5).tolist() == [4, 1]
    assert positions_at_fraction(np.array([10, 3]), 0.01).tolist() == [0, 0]
    assert positions_at_fraction(np.array([10, 3]), 1.0).tolist() == [9, 2]
    assert positions_at_fraction(np.array([10]), 0.3).tolist() == [2]  # no float round-up
    with pytest.raises(ValueError, match="fraction"):
        positions_at_fraction(np.array([10]), 0.0)


def test_early_detection_equals_rerunning_on_truncated_curves(eval_store, eval_run):
    """One causal pass gives what the model says on the truncated light curve."""
    model = load_model(eval_run)
    rows = select_test_events(eval_store, per_class=4, seed=2)
    predictions = predict_events(model, eval_store, rows)
    for fraction in (0.2, 0.5, 0.8):
        positions = positions_at_fraction(predictions.lengths, fraction)
        rerun = []
        for row, position in zip(rows, positions, strict=True):
            event = eval_store.event(row)
            seen = slice(0, position + 1)
            inputs = [torch.from_numpy(event[k][seen]).float()[None]
                      for k in ("times", "flux", "flux_err")]
            rerun.append(model.predict_proba(*inputs)[0, -1].numpy())
        np.testing.assert_allclose(predictions.at(positions), np.stack(rerun), atol=1e-5)
        curve = accuracy_by_fraction(predictions, [fraction])
        expected = np.mean(np.stack(rerun).argmax(axis=1) == predictions.labels)
        assert curve["accuracy"][0] == pytest.approx(expected)


def test_accuracy_by_fraction_and_tau_on_hand_made_predictions():
    # two events of class 1 that become right (logit of class 1 high) from observation 6 on
    logits = np.zeros((2, 10, 3))
    logits[:, :, 0] = 5.0
    logits[:, 6:, 1] = 10.0
    predictions = hand_made(logits, labels=[1, 1])
    curve = accuracy_by_fraction(predictions, [0.5, 0.6, 0.7, 1.0])
    assert curve["accuracy"] == [0.0, 0.0, 1.0, 1.0]
    assert curve["recall"]["pspl"] == [0.0, 0.0, 1.0, 1.0]
    assert curve["recall"]["no_event"] == [None] * 4
    # times 0..9, peaks at t_0 = 4 and 8 with t_E = 2: event 0 spans tau -2..2.5, event 1
    # spans -4..0.5. tau -3: only event 1 has data (up to t = 2, wrong); tau -1.5: t <= 1 and
    # t <= 5, both wrong; tau 1: t <= 6 and all of event 1, both right
    by_tau = accuracy_by_tau(predictions, np.array([4.0, 8.0]), np.array([2.0, 2.0]),
                             [-5.0, -3.0, -1.5, 1.0])
    assert by_tau["coverage"] == [0.0, 0.5, 1.0, 1.0]
    assert by_tau["accuracy"] == [None, 0.0, 0.0, 1.0]
    assert by_tau["recall"]["pspl"] == [None, 0.0, 0.0, 1.0]


def test_decision_points_and_sweep():
    logits = np.zeros((3, 6, 3))
    logits[0, 2:, 1] = 3.0   # confident in pspl from observation 2 (p = 0.91)
    logits[1, 4:, 2] = 1.0   # mildly binary from observation 4 (p = 0.58)
    predictions = hand_made(logits, labels=[1, 2, 0], lengths=[6, 6, 5])
    assert decision_points(predictions, 0.9).tolist() == [2, -1, -1]
    assert decision_points(predictions, 0.5).tolist() == [2, 4, -1]
    sweep = decision_sweep(predictions, np.array([2.0, 2.0, 0.0]), np.array([1.0, 1.0, 1.0]),
                           [0.5, 0.9])
    assert sweep["decided_fraction"] == [pytest.approx(2 / 3), pytest.approx(1 / 3)]
    assert sweep["accuracy"] == [1.0, 1.0]
    assert sweep["median_fraction_seen"] == [pytest.approx((3 / 6 + 5 / 6) / 2), 0.5]
    assert sweep["median_observation"] == [4.0, 3.0]  # observations 3 and 5; 3
    assert sweep["median_tau_lensing"] == [pytest.approx(1.0), 0.0]
    assert sweep["decided_before_peak_lensing"] == [0.0, 0.0]
    with pytest.raises(ValueError, match="threshold"):
        decision_points(predictions, 1.5)


# -- the whole evaluation ------------------------------------------------------------------


def test_evaluate_run_summary(eval_run, eval_store):
    summary, predictions = evaluate_run(eval_run, n_bootstrap=50, peer=False)
    n_test = eval_store.indices("test").size
    assert summary["split"] == "test" and summary["n_events"] == n_test == len(predictions)
    assert sum(summary["class_counts"].values()) == n_test
    head = summary["headline"]
    assert 0.0 <= head["accuracy_low"] <= head["accuracy"] <= head["accuracy_high"] <= 1.0
    classification = summary["final"]["classification"]
    assert np.sum(classification["confusion"]) == n_test
    expected = np.mean(predictions.final().argmax(axis=1) == predictions.labels)
    assert head["accuracy"] == pytest.approx(expected)
    early = summary["early_detection"]
    assert early["by_fraction"]["accuracy"][-1] == pytest.approx(expected)
    half = predictions.at(positions_at_fraction(predictions.lengths, 0.5))
    assert early["accuracy_at_50pct"] == pytest.approx(
        np.mean(half.argmax(axis=1) == predictions.labels))
    assert all(0.0 <= v <= 1.0 for v in early["ece_at_50pct"].values())
    calibration = summary["final"]["calibration"]
    assert calibration["temperature"] == pytest.approx(
        json.loads((eval_run / "metrics.json").read_text())["temperature"])
    assert calibration["after"]["nll"] <= calibration["before"]["nll"] + 0.05
    assert summary["timing"]["transformer"]["seconds_per_event"] > 0
    json.dumps(summary, allow_nan=True)  # JSON-ready
    sub, _ = evaluate_run(eval_run, n_events=9, n_bootstrap=0, peer=False, seed=1)
    assert sub["n_events"] == 9 and math.isfinite(sub["headline"]["accuracy"])
    with pytest.raises(ValueError, match="n_events"):
        evaluate_run(eval_run, n_events=-1)


# -- both label sets, Δχ² bins and the shortcut probe ---------------------------------------


@pytest.mark.slow  # seconds long: the whole suite runs it, the fast tier (under 45 s) not
def test_evaluate_run_reads_both_label_sets_and_probes_both_classifiers(eval_run, eval_store):
    from scipy.stats import spearmanr

    from microlens.data.labels import observable_labels
    from microlens.evaluation.probe import ShortcutWarning, peak_significance

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary, predictions = evaluate_run(eval_run, n_bootstrap=0, peer=True)
    assert summary["label_policy"] == "physical"
    labels, final = predictions.labels, predictions.final()
    predicted = final.argmax(axis=1)
    params = eval_store.params[predictions.rows]
    observable = observable_labels(labels, params["dchi2_pspl"])
    sets = summary["label_sets"]
    assert sets["physical"]["accuracy"]["value"] == pytest.approx(summary["headline"]["accuracy"])
    assert sets["observable"]["accuracy"]["value"] == pytest.approx(
        np.mean(predicted == observable))
    assert sets["n_relabelled"] == int(np.sum(observable != labels)) > 0
    detectable = (labels == 2) & (params["dchi2_pspl"] > 100)
    assert summary["headline"]["observable_binary_recall"] == pytest.approx(
        np.mean(predicted[detectable] == 2))
    assert sum(summary["dchi2_bins"]["n_binary"]) == int(np.sum(labels == 2))
    probe = summary["probe"]
    pspl = labels == 1
    expected = spearmanr(final[pspl, 2], params["t_E"][pspl]).statistic
    assert probe["correlation"]["t_E"]["pspl"]["rho"] == pytest.approx(expected)
    assert summary["headline"]["probe_rho_t_E_pspl"] == pytest.approx(expected)
    rows = predictions.rows[pspl]
    arrays = eval_store.padded(rows)
    significance = peak_significance(arrays["flux"], arrays["flux_err"], arrays["mask"])
    assert probe["correlation"]["peak_significance"]["pspl"]["rho"] == pytest.approx(
        spearmanr(final[pspl, 2], significance).statistic)
    shortcut = [w for w in caught if issubclass(w.category, ShortcutWarning)]
    peer = summary["classical_peer"]
    assert len(shortcut) == len(probe["warnings"]) + len(peer["probe"]["warnings"])
    # the peer: the same label sets and probe, on its own final answers and statistic
    assert peer["label_sets"]["physical"]["accuracy"]["value"] == pytest.approx(peer["accuracy"])
    assert peer["probe"]["score"] == "peer anomaly statistic"
    assert summary["headline"]["peer_auc_detectable_vs_pspl"] == peer["probe"]["auc"][
        "detectable_vs_pspl"]["auc"]
    json.dumps(summary, allow_nan=True)


@pytest.mark.slow  # trains its own run; evaluate_run is tested fast on the shared run and the
# observable policy's training in test_labels
def test_evaluation_of_an_observable_run_records_its_policy(eval_store, tmp_path):
    from microlens.models.config import ModelConfig
    from microlens.training.train import TrainConfig, train

    config = TrainConfig(dataset=str(eval_store.path), run_name="observable",
                         runs_dir=str(tmp_path), label_policy="observable", epochs=1,
                         batch_size=16, max_train_events=32, max_val_events=16,
                         model=ModelConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32,
                                           window=8, dropout=0.0))
    run = train(config, progress=False)
    assert json.loads((run / "metrics.json").read_text())["n_val_events"] == 16
    summary, _ = evaluate_run(run, n_bootstrap=0, peer=False, n_events=12)
    assert summary["label_policy"] == "observable"
    assert summary["label_sets"]["observable"] is not None


def test_contamination_counts_each_kind_of_no_event_star_and_missed_lensing():
    from microlens.evaluation.evaluate import contamination

    labels = np.array([0, 0, 0, 0, 0, 1, 1, 2, 2, 2])
    kinds = np.array([0, 0, 1, 1, 3, 0, 0, 0, 0, 0])  # constant x2, cataclysmic x2, eclipsing
    predicted = np.array([0, 1, 2, 0, 1, 0, 1, 2, 0, 0])
    found = contamination(labels, predicted, kinds)
    assert found["no_event_called_lensing"]["value"] == pytest.approx(3 / 5)
    assert found["by_kind"]["constant"]["value"] == pytest.approx(1 / 2)
    assert found["by_kind"]["cataclysmic"]["value"] == pytest.approx(1 / 2)
    assert found["by_kind"]["eclipsing"] == {**found["by_kind"]["eclipsing"], "value": 1.0, "n": 1}
    assert set(found["by_kind"]) == {"constant", "cataclysmic", "eclipsing"}  # kinds present
    assert found["lensing_called_no_event"]["value"] == pytest.approx(3 / 5)
    assert found["pspl_called_no_event"]["value"] == pytest.approx(1 / 2)
    assert found["binary_called_no_event"]["value"] == pytest.approx(2 / 3)
    entry = found["lensing_called_no_event"]
    assert entry["low"] < entry["value"] < entry["high"] and entry["n"] == 5
    # without a kind column every no-event star counts as constant
    assert set(contamination(labels, predicted)["by_kind"]) == {"constant"}
