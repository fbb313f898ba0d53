"""The classical peer: PSPL-fit features, threshold tuning, held-out evaluation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import f1_score

from microlens.classical import (
    FEATURE_DTYPE,
    ClassicalPeer,
    anomaly_statistic,
    evaluate_peer,
    light_curve_features,
    peer_features,
)
from microlens.metrics import classification_metrics
from microlens.predictions import SplitError
from microlens.pspl_fit import pspl_magnification
from microlens.simulate import binary_magnification

T = np.linspace(0.0, 200.0, 400)


def noisy_event(clean, seed, scale=0.01):
    """(times, flux, flux_err) with photon-like Gaussian errors that are exactly right."""
    err = scale * np.sqrt(clean)
    return T, clean + err * np.random.default_rng(seed).standard_normal(clean.size), err


def flat_curve():
    return np.ones_like(T)


def pspl_curve(t_0=100.0, u_0=0.3, t_E=15.0, f_s=0.5):
    return f_s * pspl_magnification(T, t_0, u_0, t_E) + (1.0 - f_s)


def caustic_curve(alpha_rad=0.6):
    """A stellar binary whose source crosses the caustic (spikes near t = 94 and 103 days)."""
    return 0.5 * binary_magnification(T, 100.0, 0.05, 20.0, 1e-3, 1.0, 0.3, alpha_rad) + 0.5


def table(**columns):
    """A feature table with the given columns (others zero)."""
    n = len(next(iter(columns.values())))
    out = np.zeros(n, FEATURE_DTYPE)
    for name, values in columns.items():
        out[name] = values
    return out


def features_of(curves_and_seeds):
    rows = [light_curve_features(*noisy_event(curve, seed)) for curve, seed in curves_and_seeds]
    return table(**{name: [r[name] for r in rows] for name in rows[0]})


class FakeStore:
    """Just enough of a LightCurveStore for peer_features: len() and event(row)."""

    def __init__(self, events):
        self.events = events

    def __len__(self):
        return len(self.events)

    def event(self, row):
        times, flux, err = self.events[row]
        return {"times": times, "flux": flux, "flux_err": err}


def same_but_seconds(a, b):
    names = [n for n in FEATURE_DTYPE.names if n != "seconds"]
    return all(np.array_equal(a[n], b[n], equal_nan=a[n].dtype.kind == "f") for n in names)


# -- features ----------------------------------------------------------------------------------


def test_anomaly_statistic_is_the_best_box_fit():
    r = np.zeros(100)
    r[50:60] = 1.0
    value, start, width = anomaly_statistic(r, widths=(2, 4, 8, 16))
    # boxes of 8 inside the bump: 8^2 / 8 = 8 beats 10^2 / 16 = 6.25 and 4^2 / 4 = 4
    assert value == pytest.approx(8.0)
    assert width == 8 and 50 <= start <= 52
    assert anomaly_statistic(-r, widths=(2, 4, 8, 16))[0] == pytest.approx(8.0)  # dips too
    assert anomaly_statistic(np.zeros(0)) == (0.0, 0, 0)


def test_flat_and_pspl_events_separate_and_fit_well():
    flats = features_of([(flat_curve(), s) for s in range(6)])
    pspls = features_of([(pspl_curve(t_0=60.0 + 15 * s), 100 + s) for s in range(6)])
    assert np.all(flats["dchi2_event"] < 40)
    assert np.all(pspls["dchi2_event"] > 1000)
    # correct errors: chi2 of a well-fitted PSPL is ~ its dof, so the excess is a few sigma at most
    assert np.all(np.abs(pspls["excess"]) < 4) and np.all(np.abs(flats["excess"]) < 4)
    assert np.all(pspls["n"] == T.size) and np.all(np.isfinite(pspls["t_E"]))
    assert np.all(np.abs(pspls["t_0"] - (60.0 + 15 * np.arange(6))) < 1.0)
    both = np.concatenate([flats, pspls])
    labels = np.repeat([0, 1], 6)
    peer = ClassicalPeer.tune(both, labels)
    assert flats["dchi2_event"].max() < peer.event_threshold < pspls["dchi2_event"].min()
    assert np.array_equal(peer.predict(both), labels)


def test_caustic_crossing_is_called_binary():
    validation = features_of([(flat_curve(), 1), (flat_curve(), 2), (pspl_curve(), 3),
                              (pspl_curve(t_0=80.0), 4), (caustic_curve(alpha_rad=0.6), 5)])
    peer = ClassicalPeer.tune(validation, [0, 0, 1, 1, 2])
    test = features_of([(caustic_curve(alpha_rad=0.6), 50), (pspl_curve(t_0=120.0), 51),
                        (flat_curve(), 52)])
    assert np.array_equal(peer.predict(test), [2, 1, 0])
    binary = test[0]
    assert binary["anomaly"] > 1000 > 30 > test[1]["anomaly"]
    assert binary["excess"] > 100
    assert 90 < binary["anomaly_t"] < 108  # the scan points at the caustic crossing
    # the excess alone makes the same call on this obvious case
    peer_excess = ClassicalPeer.tune(validation, [0, 0, 1, 1, 2], binary_feature="excess")
    assert np.array_equal(peer_excess.predict(test), [2, 1, 0])


def test_too_few_observations_carry_no_evidence():
    f = light_curve_features(T[:4], np.array([1.0, 5.0, 1.0, 1.0]), np.full(4, 0.01))
    assert f["n"] == 4 and f["dchi2_event"] == 0.0 and f["anomaly"] == 0.0
    assert f["chi2_pspl"] == f["chi2_flat"] > 0 and math.isnan(f["t_0"])
    with pytest.raises(ValueError, match="flux_err"):
        light_curve_features(T[:10], np.ones(10), np.zeros(10))
    with pytest.raises(ValueError, match="length"):
        light_curve_features(T[:10], np.ones(9), np.ones(10))


def test_fractions_use_only_the_first_part_of_the_curve():
    late = noisy_event(pspl_curve(t_0=150.0, u_0=0.2, t_E=10.0), seed=7)
    early = noisy_event(pspl_curve(t_0=40.0, u_0=0.2, t_E=10.0), seed=8)
    store = FakeStore([late, early])
    features = peer_features(store, [0, 1, 0], fractions=(0.3, 1.0))
    assert features.shape == (3, 2)
    assert np.array_equal(features["row"], [[0, 0], [1, 1], [0, 0]])
    assert np.array_equal(features["fraction"], [[0.3, 1.0]] * 3)
    assert np.all(features["n"][:, 0] == 120)
    k = 120
    expected = light_curve_features(late[0][:k], late[1][:k], late[2][:k])
    assert all(features[0, 0][name] == pytest.approx(value, nan_ok=True)
               for name, value in expected.items() if name != "seconds")
    peer = ClassicalPeer(event_threshold=50.0, binary_threshold=1e6)
    # the late event has not started in its first 30 %; the early one has peaked
    assert np.array_equal(peer.predict(features), [[0, 1], [1, 1], [0, 1]])
    # ceil(fraction * n) without float noise: 0.55 * 100 is 55.00000000000001 in binary
    short = FakeStore([tuple(a[:100] for a in late)])
    assert peer_features(short, [0], fractions=(0.55, 0.001))["n"].tolist() == [[55, 1]]


def test_peer_features_refuse_bad_input():
    store = FakeStore([noisy_event(flat_curve(), 0)])
    for bad in (0, 1.5, -0.2, math.nan, (), ("half",), (True,)):
        with pytest.raises(ValueError, match="fraction"):
            peer_features(store, [0], fractions=bad)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="workers"):
            peer_features(store, [0], workers=bad)
    with pytest.raises(ValueError, match="empty"):
        peer_features(store, [])
    with pytest.raises(IndexError, match=r"\[0, 1\)"):
        peer_features(store, [0, 3])
    with pytest.raises(ValueError, match="integer"):
        peer_features(store, [0.5])


# -- tuning and prediction ---------------------------------------------------------------------


def test_tuned_thresholds_land_between_the_classes():
    features = table(dchi2_event=[1.0, 2.0, 3.0, 100.0, 200.0, 150.0, 300.0],
                     anomaly=[90.0, 0.0, 80.0, 5.0, 6.0, 50.0, 60.0])
    labels = [0, 0, 0, 1, 1, 2, 2]
    peer = ClassicalPeer.tune(features, labels)
    # the flat events' large anomalies do not matter: flat is decided first
    assert peer.event_threshold == pytest.approx((3.0 + 100.0) / 2)
    assert peer.binary_threshold == pytest.approx((6.0 + 50.0) / 2)
    assert np.array_equal(peer.predict(features), labels)
    # predict obeys the rule: at the event threshold counts as an event, at the binary one not
    edge = ClassicalPeer(10.0, 20.0)
    probe = table(dchi2_event=[9.99, 10.0, 10.0, 10.0, math.nan],
                  anomaly=[99.0, 20.0, 20.01, math.nan, 99.0])
    assert np.array_equal(edge.predict(probe), [0, 1, 2, 1, 0])
    assert edge.predict(probe.reshape(5, 1)).shape == (5, 1)


def test_tuning_finds_the_best_macro_f1_of_the_grid():
    """The vectorised search against a brute-force loop over every candidate pair."""
    rng = np.random.default_rng(3)

    def candidates(values, cap):
        v = np.unique(values)
        if v.size > cap:  # thinned at evenly spaced ranks, as documented
            v = np.unique(v[np.round(np.linspace(0, v.size - 1, cap)).astype(int)])
        return np.concatenate([[v[0] - 1.0], (v[1:] + v[:-1]) / 2, [v[-1] + 1.0]])

    # integer features and a small cap put feature values exactly on thinned candidates
    for cap, decimals in [(512, 1)] * 6 + [(5, 0)] * 6:
        labels = rng.integers(0, 3, 25)
        features = table(dchi2_event=np.round(rng.normal(2.0 * labels, 1.5), decimals),
                         anomaly=np.round(rng.normal(2.0 * (labels == 2), 1.0), decimals))
        peer = ClassicalPeer.tune(features, labels, max_candidates=cap)
        best, best_pair = -1.0, None
        for te in candidates(features["dchi2_event"], cap):  # ascending: first maximum wins
            for tb in candidates(features["anomaly"], cap):
                score = classification_metrics(labels,
                                               ClassicalPeer(te, tb).predict(features))["macro_f1"]
                if score > best + 1e-12:
                    best, best_pair = score, (te, tb)
        got = f1_score(labels, peer.predict(features), labels=[0, 1, 2], average="macro",
                       zero_division=0)
        assert got == pytest.approx(best, abs=1e-12)
        assert (peer.event_threshold, peer.binary_threshold) == pytest.approx(best_pair)


def test_tune_refuses_bad_input():
    features = table(dchi2_event=[1.0, 2.0], anomaly=[0.0, 1.0])
    with pytest.raises(ValueError, match="one label per"):
        ClassicalPeer.tune(features, [0])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 1, 2\]"):
        ClassicalPeer.tune(features, [0, 3])
    with pytest.raises(ValueError, match="valid choices: anomaly, excess"):
        ClassicalPeer.tune(features, [0, 1], binary_feature="chi2")
    with pytest.raises(ValueError, match="lack field"):
        ClassicalPeer.tune(np.zeros(2), [0, 1])
    with pytest.raises(ValueError, match="no events"):
        ClassicalPeer.tune(features[:0], [])


def test_peer_json_round_trip(tmp_path):
    peer = ClassicalPeer(event_threshold=47.25, binary_threshold=0.1 + 0.2, binary_feature="excess")
    path = peer.save(tmp_path / "sub" / "peer.json")
    assert json.loads(path.read_text())["classical_peer"]["binary_feature"] == "excess"
    assert ClassicalPeer.load(path) == peer
    assert ClassicalPeer.from_dict(json.loads(json.dumps(peer.to_dict()))) == peer
    with pytest.raises(ValueError, match="valid"):
        ClassicalPeer.from_dict({**peer.to_dict(), "margin": 1.0})
    with pytest.raises(ValueError, match="finite"):
        ClassicalPeer(math.inf, 1.0)
    with pytest.raises(ValueError, match="valid choices"):
        ClassicalPeer(1.0, 1.0, "wiggles")
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(ValueError, match="not a ClassicalPeer"):
        ClassicalPeer.load(tmp_path / "other.json")


# -- held-out evaluation -----------------------------------------------------------------------


def test_evaluate_peer_reads_only_the_right_splits(eval_store):
    test, val, train = (eval_store.indices(s) for s in ("test", "val", "train"))
    with pytest.raises(SplitError, match="not test events"):
        evaluate_peer(eval_store, np.concatenate([test[:3], val[:1]]))
    with pytest.raises(ValueError, match="not validation events"):
        evaluate_peer(eval_store, test[:3], val_rows=np.concatenate([val[:5], train[:1]]))
    with pytest.raises(ValueError, match="not validation events"):
        evaluate_peer(eval_store, test[:3], val_rows=test[3:8])
    with pytest.raises(ValueError, match="test_rows is empty"):
        evaluate_peer(eval_store, [])
    with pytest.raises(ValueError, match="fraction"):
        evaluate_peer(eval_store, test[:3], fractions=(0.0, 1.0))


def test_evaluate_peer_on_held_out_events(eval_store):
    test = eval_store.indices("test")
    one = evaluate_peer(eval_store, test, fractions=(0.25, 0.5), workers=1)
    two = evaluate_peer(eval_store, test, fractions=(0.25, 0.5), workers=2)
    assert same_but_seconds(one.features, two.features)
    assert np.array_equal(one.predicted, two.predicted) and one.peer == two.peer
    drop = ("seconds_per_event",)
    assert {k: v for k, v in one.summary.items() if k not in drop} == \
        {k: v for k, v in two.summary.items() if k not in drop}

    s = one.summary
    json.dumps(s, allow_nan=False)  # plain JSON, ready for metrics files
    assert one.fractions == (0.25, 0.5, 1.0)  # the full curve is always evaluated
    assert np.array_equal(one.rows, test)
    assert np.array_equal(one.labels, eval_store.labels[test])
    assert np.array_equal(one.val_rows, eval_store.indices("val"))
    assert s["n_test"] == test.size and s["n_val"] == eval_store.indices("val").size
    assert s["accuracy"] == pytest.approx(np.mean(one.final == one.labels))
    assert s["binary_recall"] == pytest.approx(np.mean(one.final[one.labels == 2] == 2))
    assert np.sum(s["confusion"]) == test.size
    assert np.trace(s["confusion"]) == round(s["accuracy"] * test.size)
    assert s["thresholds"] == one.peer.to_dict()
    assert [r["fraction"] for r in s["fractions"]] == [0.25, 0.5, 1.0]
    assert [r["accuracy"] for r in s["fractions"]] == pytest.approx(
        [np.mean(one.at(f) == one.labels) for f in (0.25, 0.5, 1.0)])
    n_mean = [r["mean_observations"] for r in s["fractions"]]
    assert n_mean[0] < n_mean[1] < n_mean[2]
    assert 0 < s["seconds_per_event"] < 0.5
    # every event passed the detection cut: flat and lensing events are told apart
    lensing = one.labels > 0
    assert np.mean((one.final > 0) == lensing) > 0.9
    assert s["per_class"]["flat"]["recall"] > 0.9
    assert s["accuracy"] > 0.6
