"""The model-shortcut probe, both label sets and recall in Δχ² bins, on constructed cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from microlens.core.metrics import wilson_interval
from microlens.evaluation.analysis.limits import recall_by_dchi2
from microlens.evaluation.evaluate import label_set_metrics, read_against_labels
from microlens.evaluation.probe import (
    WARN_AT,
    WARN_MIN_EVENTS,
    auc,
    peak_significance,
    probe_headline,
    shortcut_probe,
    spearman,
)


def constructed(n: int = 200, seed: int = 3):
    """PSPL and binary events with t_E, u_0 drawn alike for both classes."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(n, int), np.ones(n, int), np.full(n, 2)]
    t_E = 10 ** rng.uniform(0.5, 2.0, labels.size)
    u_0 = rng.uniform(0.0, 1.0, labels.size)
    return labels, {"t_E": t_E, "u_0": u_0}


def test_a_score_equal_to_minus_t_E_is_a_perfect_shortcut():
    labels, quantities = constructed()
    probe = shortcut_probe(-quantities["t_E"], labels, quantities)
    for group in ("pspl", "binary"):
        assert probe["correlation"]["t_E"][group]["rho"] == pytest.approx(-1.0)
        assert probe["correlation"]["t_E"][group]["n"] == 200
    assert len(probe["warnings"]) == 1  # t_E only: u_0 is independent of the score
    assert "follows t_E among PSPL events" in probe["warnings"][0]
    assert "rho = -1.00" in probe["warnings"][0] and "n = 200" in probe["warnings"][0]
    u_0 = probe["correlation"]["u_0"]["pspl"]
    expected = spearmanr(-quantities["t_E"][labels == 1], quantities["u_0"][labels == 1])
    assert u_0["rho"] == pytest.approx(expected.statistic) and abs(u_0["rho"]) < WARN_AT
    # without detectability there are no detectable/undetectable AUCs; binary vs PSPL is ~chance
    assert probe["auc"]["detectable_vs_pspl"]["auc"] is None
    assert abs(probe["auc"]["binary_vs_pspl"]["auc"] - 0.5) < 0.1


def test_u_0_shortcut_warns_and_binary_only_correlations_do_not():
    labels, quantities = constructed()
    probe = shortcut_probe(quantities["u_0"] ** 3, labels, quantities)  # monotone: rho = 1
    assert probe["correlation"]["u_0"]["pspl"]["rho"] == pytest.approx(1.0)
    assert [w.split(" follows ")[1][:4] for w in probe["warnings"]] == ["u_0 "]
    # the score follows t_E among binaries only (a legitimately physical dependence can do
    # that): reported, not warned about
    score = np.where(labels == 2, -quantities["t_E"], 0.3)
    probe = shortcut_probe(score, labels, quantities)
    assert probe["correlation"]["t_E"]["binary"]["rho"] == pytest.approx(-1.0)
    assert probe["correlation"]["t_E"]["pspl"]["rho"] is None  # a constant score
    assert probe["warnings"] == []
    with pytest.raises(ValueError, match="warn_at must lie in"):
        shortcut_probe(score, labels, quantities, warn_at=1.5)
    with pytest.raises(ValueError, match="quantity 't_E' has shape"):
        shortcut_probe(score, labels, {"t_E": quantities["t_E"][:5]})


def test_a_handful_of_events_does_not_warn_by_chance():
    for n, warns in ((WARN_MIN_EVENTS - 1, False), (WARN_MIN_EVENTS, True)):
        labels = np.r_[np.ones(n, int), np.full(n, 2)]
        t_E = np.tile(np.arange(1.0, n + 1), 2)
        probe = shortcut_probe(-t_E, labels, {"t_E": t_E})
        assert probe["correlation"]["t_E"]["pspl"]["rho"] == pytest.approx(-1.0)
        assert bool(probe["warnings"]) == warns
    # a weak dependence, not significant among 30 events, does not warn either
    rng = np.random.default_rng(0)
    labels, t_E = np.ones(30, int), rng.uniform(1, 100, 30)
    score = -t_E + rng.normal(0, 60, 30)
    probe = shortcut_probe(score, labels, {"t_E": t_E})
    entry = probe["correlation"]["t_E"]["pspl"]
    assert (abs(entry["rho"]) > WARN_AT and entry["p_value"] < 0.05) == bool(probe["warnings"])


def test_detectable_and_undetectable_aucs():
    labels = np.array([1] * 4 + [2] * 6)
    score = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.95, 0.1, 0.2, 0.3])
    dchi2 = np.array([np.nan] * 4 + [500, 101, 2e4, 100, 3.0, 50])
    probe = shortcut_probe(score, labels, {}, dchi2)
    assert probe["auc"]["detectable_vs_pspl"] == {"auc": 1.0, "low": 1.0, "high": 1.0,
                                                  "n_positive": 3, "n_negative": 4}
    # the undetectable binaries (100 included) score like three of the PSPL events: with ties
    # counting one half, AUC = (0 + 1 + 2 + 0.5 * 3) / 12 ... computed by hand below
    pairs = [(b > p) + 0.5 * (b == p) for b in (0.1, 0.2, 0.3) for p in (0.1, 0.2, 0.3, 0.4)]
    assert probe["auc"]["undetectable_vs_pspl"]["auc"] == pytest.approx(np.mean(pairs))
    assert auc([], [1.0])["auc"] is None and auc([np.nan, 1.0], [0.0])["n_positive"] == 1
    head = probe_headline(probe, "peer_")
    assert head["peer_auc_detectable_vs_pspl"] == 1.0 and head["peer_probe_warnings"] == 0


def test_auc_agrees_with_sklearn_and_its_interval_covers_it_and_shrinks_with_events():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    widths = []
    for n in (50, 800):
        pos, neg = rng.normal(1.0, 1.0, n), rng.normal(0.0, 1.0, n)
        pos[:5] = neg[:5]  # ties count one half, as in sklearn
        entry = auc(pos, neg, seed=1)
        truth = np.r_[np.ones(n), np.zeros(n)]
        assert entry["auc"] == pytest.approx(roc_auc_score(truth, np.r_[pos, neg]), abs=1e-12)
        assert entry["low"] < entry["auc"] < entry["high"]
        assert auc(pos, neg, seed=1) == entry  # the recorded seed gives the same interval
        widths.append(entry["high"] - entry["low"])
    # the bootstrap width follows the standard error, ~1/sqrt(n): 4x narrower for 16x events
    assert 2.5 < widths[0] / widths[1] < 6.5


def test_spearman_interval_is_fishers_z():
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    entry = spearman(x, x + rng.normal(size=200))
    half = 1.96 * np.sqrt(1.06 / 197)
    assert entry["low"] == pytest.approx(np.tanh(np.arctanh(entry["rho"]) - half))
    assert entry["high"] == pytest.approx(np.tanh(np.arctanh(entry["rho"]) + half))
    assert spearman(x[:4], x[:4] ** 3)["low"] is None  # too few pairs for an interval


def test_spearman_handles_too_few_and_non_finite_pairs():
    assert spearman([1.0, 2.0], [3.0, 4.0]) == {"rho": None, "p_value": None, "low": None,
                                                "high": None, "n": 2}
    assert spearman([1.0, 2.0, 3.0, np.nan], [1.0, 2.0, 3.0, 4.0])["n"] == 3
    assert spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])["rho"] is None
    with pytest.raises(ValueError, match="same length"):
        spearman([1.0, 2.0], [1.0])


def test_peak_significance():
    flux = np.array([[1.0, 1.5, 3.0, 9.0], [0.9, 1.2, 1.1, 0.0]])
    err = np.array([[0.1, 0.1, 0.5, 1.0], [0.1, 0.1, 0.1, 1.0]])
    mask = np.array([[True, True, True, False], [True, True, True, False]])
    # the padded 9.0 is ignored; event 0 peaks at (3 - 1) / 0.5 = 4 vs (1.5 - 1) / 0.1 = 5
    assert peak_significance(flux, err, mask) == pytest.approx([5.0, 2.0])
    assert np.isnan(peak_significance(flux, err, np.zeros_like(mask))).all()
    with pytest.raises(ValueError, match="same shape"):
        peak_significance(flux, err[:1], mask)


def test_recall_by_dchi2_bins_are_right_closed_with_wilson_intervals():
    labels = np.array([2] * 9 + [1])
    dchi2 = np.array([0.0, 25.0, 25.5, 100.0, 100.5, 1000.0, 1000.5, 5e4, np.nan, 1e6])
    predicted = np.array([1, 2, 1, 2, 2, 2, 2, 1, 2, 2])
    table = recall_by_dchi2(labels, predicted, dchi2)
    assert table["bin"] == ["le25", "25to100", "100to1000", "gt1000"]
    assert table["low"] == [None, 25.0, 100.0, 1000.0] and table["high"][-1] is None
    assert table["n_binary"] == [2, 2, 2, 2] and table["n_unknown"] == 1
    assert table["recall"] == [0.5, 0.5, 1.0, 0.5]
    assert (table["recall_low"][2], table["recall_high"][2]) == wilson_interval(2, 2)
    empty = recall_by_dchi2(labels, predicted, dchi2, edges=(1e7,))
    assert empty["n_binary"] == [8, 0] and empty["recall"][1] is None
    with pytest.raises(ValueError, match=r"increasing.*\[100.0, 25.0\]"):
        recall_by_dchi2(labels, predicted, dchi2, edges=(100, 25))


def test_label_set_metrics_against_physical_and_observable_labels():
    labels = np.array([0, 1, 1, 1, 2, 2, 2, 2])
    dchi2 = np.array([np.nan, np.nan, np.nan, np.nan, 5.0, 80.0, 300.0, 1e4])
    predicted = np.array([0, 1, 2, 1, 1, 1, 2, 1])
    sets = label_set_metrics(labels, predicted, dchi2)
    physical, observable = sets["physical"], sets["observable"]
    assert physical["accuracy"]["value"] == pytest.approx(4 / 8)
    assert physical["binary_recall"]["value"] == pytest.approx(1 / 4)
    assert physical["pspl_called_binary"]["value"] == pytest.approx(1 / 3)
    assert sets["n_relabelled"] == 2
    # observable: the two undetectable binaries are PSPL, both predicted PSPL: now correct
    assert observable["accuracy"]["value"] == pytest.approx(6 / 8)
    assert observable["binary_recall"]["value"] == pytest.approx(1 / 2)
    assert observable["pspl_called_binary"]["value"] == pytest.approx(1 / 5)
    low, high = wilson_interval(6, 8)
    assert (observable["accuracy"]["low"], observable["accuracy"]["high"]) == (low, high)
    blind = label_set_metrics(labels, predicted, np.full(8, np.nan))
    assert blind["observable"] is None and "detectability=False" in blind[
        "observable_unavailable"]
    read = read_against_labels(predicted == 2, labels, predicted, {"t_E": np.arange(8.0)},
                               np.full(8, np.nan))
    assert read["dchi2_bins"] is None and read["probe"]["auc"]["detectable_vs_pspl"]["auc"] is None


def test_tables_and_figure_of_the_label_sets_and_probe():
    from microlens.evaluation.evaluate import label_set_rows, probe_rows
    from microlens.reports import dchi2_recall_figure

    labels = np.array([0, 1, 1, 1, 2, 2, 2, 2])
    dchi2 = np.array([np.nan, np.nan, np.nan, np.nan, 5.0, 80.0, 300.0, 1e4])
    predicted = np.array([0, 1, 2, 1, 1, 1, 2, 1])
    quantities = {"t_E": np.arange(8.0)}
    summary = read_against_labels(predicted / 2, labels, predicted, quantities, dchi2)
    summary["classical_peer"] = read_against_labels(labels / 2, labels, labels, quantities, dchi2)
    rows = label_set_rows(summary)
    assert [(r["classifier"], r["labels"]) for r in rows] == [
        ("transformer", "physical"), ("transformer", "observable"),
        ("classical peer", "physical"), ("classical peer", "observable")]
    assert rows[1]["accuracy"] == pytest.approx(6 / 8) and rows[2]["accuracy"] == 1.0
    probe = {(r["classifier"], r["measure"]): r for r in probe_rows(summary)}
    assert probe[("classical peer", "AUC detectable_vs_pspl")]["value"] == 1.0
    assert probe[("transformer", "rho(score, t_E) among pspl")]["n"] == 3
    fig = dchi2_recall_figure(summary)
    assert [t.name for t in fig.data] == ["transformer", "classical peer (PSPL fit)"]
    assert list(fig.data[0].y) == [0.0, 0.0, 1.0, 0.0] and list(fig.data[1].y) == [1.0] * 4
    assert list(fig.data[0].x)[0] == "Δχ² ≤ 25" and list(fig.data[0].x)[-1] == "Δχ² > 1000"
    assert dchi2_recall_figure({"dchi2_bins": None}) is None
