"""Metrics on hand-made predictions with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, roc_auc_score

from microlens.core.metrics import (
    bootstrap_intervals,
    classification_metrics,
    confusion_counts,
    expected_calibration_error,
    f1_from_counts,
    headline_statistics,
    macro_auc,
    negative_log_likelihood,
    precision_recall_curves,
    reliability_diagram,
    roc_curves,
    softmax,
    wilson_interval,
)
from microlens.training.train import fit_temperature

LABELS = np.array([0, 0, 1, 1, 2, 2])
PREDICTED = np.array([0, 1, 1, 1, 2, 0])


def one_hot_probs(predicted, confidence, n_classes=3):
    """Probabilities putting ``confidence`` on ``predicted`` and the rest spread evenly."""
    predicted = np.asarray(predicted)
    confidence = np.broadcast_to(np.asarray(confidence, float), predicted.shape)
    probs = np.repeat(((1 - confidence) / (n_classes - 1))[:, None], n_classes, axis=1)
    probs[np.arange(predicted.size), predicted] = confidence
    return probs


def test_classification_metrics_known_answer():
    m = classification_metrics(LABELS, PREDICTED)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["confusion_normalized"][2] == [0.5, 0.0, 0.5]
    per = m["per_class"]
    assert (per["no_event"]["precision"], per["no_event"]["recall"]) == (0.5, 0.5)
    assert per["pspl"]["precision"] == pytest.approx(2 / 3) and per["pspl"]["recall"] == 1.0
    assert (per["binary"]["precision"], per["binary"]["recall"]) == (1.0, 0.5)
    assert per["pspl"]["f1"] == pytest.approx(0.8)
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m["macro_f1"] == pytest.approx(f1_score(LABELS, PREDICTED, average="macro"))
    assert [per[c]["support"] for c in ("no_event", "pspl", "binary")] == [2, 2, 2]


@pytest.mark.parametrize("labels, predicted", [
    ([0, 0, 1, 1], [0, 0, 1, 1]),  # binary absent and never predicted: counts as 0
    ([0, 0, 1, 1], [0, 2, 1, 1]),  # binary absent but predicted once
    ([0, 1, 2, 2], [0, 0, 0, 0]),  # present classes never predicted
    ([2, 2, 2], [2, 2, 2]),  # one class only
])
def test_macro_f1_averages_all_three_classes(labels, predicted):
    """One macro F1: the mean over all classes of the problem, 0 for a class with no events
    and no predictions, as sklearn with ``labels=[0, 1, 2]`` and ``zero_division=0``."""
    expected = f1_score(labels, predicted, labels=[0, 1, 2], average="macro", zero_division=0)
    assert classification_metrics(labels, predicted)["macro_f1"] == pytest.approx(expected)
    probs = one_hot_probs(predicted, 0.9)
    assert headline_statistics(np.array(labels), probs)["macro_f1"] == pytest.approx(expected)


def test_perfect_predictions_of_two_classes_score_two_thirds():
    # the old "classes present" definition gave 1.0 here, hiding the missing class
    assert classification_metrics([0, 1], [0, 1])["macro_f1"] == pytest.approx(2 / 3)


def test_f1_from_counts_broadcasts_and_never_divides_by_zero():
    f1 = f1_from_counts(np.array([[2.0], [0.0]]), np.array([4.0, 0.0]), np.array([[4.0], [0.0]]))
    assert f1.shape == (2, 2)
    np.testing.assert_allclose(f1, [[0.5, 1.0], [0.0, 0.0]])  # 2*2/(4+4), 2*2/(0+4); 0/0 -> 0


def test_class_never_predicted_has_zero_precision_not_nan():
    m = classification_metrics([0, 1, 2], [0, 0, 0])
    assert m["per_class"]["binary"]["precision"] == 0.0
    assert m["per_class"]["binary"]["f1"] == 0.0
    assert confusion_counts([0, 1, 2], [0, 0, 0]).sum() == 3


def test_auc_known_answers():
    labels = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    probs = np.stack([1 - scores, scores, np.zeros(4)], axis=1)
    roc = roc_curves(labels, probs)
    assert roc["pspl"]["auc"] == pytest.approx(0.75)
    assert roc["pspl"]["auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert "binary" not in roc  # no positives: no curve
    perfect = one_hot_probs(LABELS, 0.9)
    assert macro_auc(LABELS, perfect) == pytest.approx(1.0)
    assert macro_auc(LABELS, perfect[:, [1, 2, 0]]) < 0.5
    assert roc_curves(LABELS, perfect)["macro_auc"] == pytest.approx(1.0)
    pr = precision_recall_curves(LABELS, perfect)
    assert pr["binary"]["average_precision"] == pytest.approx(1.0)
    assert pr["binary"]["prevalence"] == pytest.approx(1 / 3)


def test_precision_recall_curve_is_thinned_but_keeps_its_ends():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 5000)
    probs = softmax(rng.normal(size=(5000, 3)))
    curve = precision_recall_curves(labels, probs, max_points=100)["pspl"]
    assert len(curve["recall"]) == 100
    assert curve["recall"][0] == 1.0 and curve["recall"][-1] == 0.0


def test_ece_known_answers():
    labels = np.zeros(10, int)
    right_9 = np.r_[np.zeros(9, int), 1]
    assert expected_calibration_error(labels, one_hot_probs(right_9, 0.9)) == pytest.approx(0.0)
    right_5 = np.r_[np.zeros(5, int), np.ones(5, int)]
    assert expected_calibration_error(labels, one_hot_probs(right_5, 0.9)) == pytest.approx(0.4)
    # two bins: conf 0.95 all right (gap 0.05), conf 0.55 all wrong (gap 0.55)
    probs = one_hot_probs(np.r_[np.zeros(5, int), np.ones(5, int)], np.r_[[0.95] * 5, [0.55] * 5])
    assert expected_calibration_error(labels, probs) == pytest.approx(0.5 * 0.05 + 0.5 * 0.55)
    diagram = reliability_diagram(labels, probs)
    assert diagram["ece"] == pytest.approx(0.3)
    assert sum(diagram["count"]) == 10
    filled = [a for a in diagram["accuracy"] if a is not None]
    assert sorted(filled) == [0.0, 1.0]


def test_nll_known_answer():
    probs = np.array([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]])
    assert negative_log_likelihood([0, 2], probs) == pytest.approx(-(np.log(0.5) + np.log(0.8)) / 2)


def test_temperature_scaling_lowers_ece_on_overconfident_logits():
    rng = np.random.default_rng(1)
    true_logits = rng.normal(scale=1.5, size=(6000, 3))
    true_probs = softmax(true_logits)
    labels = np.array([rng.choice(3, p=p) for p in true_probs])
    overconfident = 4.0 * true_logits  # the same ranking, far too sharp
    val, test = slice(0, 3000), slice(3000, None)
    temperature = fit_temperature(torch.from_numpy(overconfident[val]),
                                  torch.from_numpy(labels[val]))
    assert temperature == pytest.approx(4.0, rel=0.1)
    before = expected_calibration_error(labels[test], softmax(overconfident[test]))
    after = expected_calibration_error(labels[test], softmax(overconfident[test], temperature))
    assert before > 0.1
    assert after < before / 3


@pytest.mark.slow  # seconds long: the whole suite runs it, the fast tier (under 45 s) not
def test_bootstrap_intervals_cover_the_point_and_shrink_with_more_events():
    rng = np.random.default_rng(2)

    def sample(n):
        labels = rng.integers(0, 3, n)
        predicted = np.where(rng.random(n) < 0.8, labels, (labels + 1) % 3)
        return labels, one_hot_probs(predicted, 0.8)

    small = bootstrap_intervals(*sample(100), n_samples=200, seed=0)["intervals"]
    large = bootstrap_intervals(*sample(3000), n_samples=200, seed=0)["intervals"]
    for name, interval in small.items():
        assert interval["low"] <= interval["value"] <= interval["high"], name
    width = {k: v["high"] - v["low"] for k, v in small.items()}
    assert large["accuracy"]["high"] - large["accuracy"]["low"] < width["accuracy"] / 3
    assert 0.7 < large["accuracy"]["value"] < 0.9


def test_bootstrap_is_reproducible_and_validates():
    labels, probs = LABELS, one_hot_probs(PREDICTED, 0.7)
    a = bootstrap_intervals(labels, probs, n_samples=50, seed=3)
    assert a == bootstrap_intervals(labels, probs, n_samples=50, seed=3)
    assert a["intervals"].keys() == headline_statistics(labels, probs).keys()
    none = bootstrap_intervals(labels, probs, n_samples=0)["intervals"]["accuracy"]
    assert none["low"] is None and none["value"] == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="level"):
        bootstrap_intervals(labels, probs, level=1.5)
    with pytest.raises(ValueError, match="shape"):
        bootstrap_intervals(labels, probs[:3])


def test_wilson_interval_known_values():
    low, high = wilson_interval(5, 10)
    assert (low, high) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and 0.1 < high < 0.2
    assert wilson_interval(0, 0) == (None, None)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(3, 2)
