"""The classical peer: PSPL-fit features, threshold tuning, held-out evaluation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers import ArrayStore
from sklearn.metrics import f1_score

from microlens.core.metrics import classification_metrics
from microlens.models.holdout import SplitError
from microlens.models.peer import (
    FEATURE_DTYPE,
    ClassicalPeer,
    anomaly_statistic,
    clip_isolated,
    error_scale,
    evaluate_peer,
    light_curve_features,
    peer_features,
)
from microlens.simulation.pspl_fit import pspl_magnification, pspl_starts
from microlens.simulation.simulate import binary_magnification

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
    store = ArrayStore([late, early])
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
    short = ArrayStore([tuple(a[:100] for a in late)])
    assert peer_features(short, [0], fractions=(0.55, 0.001))["n"].tolist() == [[55, 1]]


def test_peer_features_refuse_bad_input():
    store = ArrayStore([noisy_event(flat_curve(), 0)])
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


@pytest.mark.slow  # seconds long: the whole suite runs it, the fast tier (under 45 s) not
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
    assert s["per_class"]["no_event"]["recall"] > 0.9
    assert s["accuracy"] > 0.6


# -- real photometry: underestimated errors, outliers, long gappy curves -----------------------

RAW = dict(error_rescaling="none", outlier_clip=None)
ROBUST = dict(error_rescaling="pspl", outlier_clip=4.0)
T2K = np.linspace(0.0, 200.0, 2000)


def survey_event(t, clean, seed, under=1.0, outliers=0.0):
    """Photometry whose errors are ``under`` times too small, with a share of 5-20 sigma
    outliers of either sign."""
    rng = np.random.default_rng(seed)
    err = 0.01 * np.sqrt(clean)
    flux = clean + under * err * rng.standard_normal(t.size)
    hit = rng.random(t.size) < outliers
    flux[hit] += under * err[hit] * rng.choice([-1.0, 1.0], hit.sum()) * rng.uniform(5, 20,
                                                                                     hit.sum())
    return t, flux, err


def pspl_2k(t_0=100.0):
    return 0.5 * pspl_magnification(T2K, t_0, 0.3, 15.0) + 0.5


def planet_2k(amplitude=0.03):
    """A PSPL with a bump over 20 of its 2,000 points (3 %: about 3 sigma each)."""
    bump = (T2K > 110.0) & (T2K < 112.0)
    assert bump.sum() == 20
    return pspl_2k() * (1.0 + amplitude * bump)


def test_error_scale_is_robust_to_a_localised_anomaly():
    rng = np.random.default_rng(0)
    r = rng.standard_normal(2000)
    # correct errors: k is 1 within its sampling scatter (~1.1 / sqrt(n) = 0.025)
    assert error_scale(r) < 1.08
    assert error_scale(1.5 * r) == pytest.approx(1.5, abs=0.08)
    assert error_scale(0.5 * r) == 1.0  # never shrinks
    assert error_scale(r[:5]) == 1.0  # no residual degree of freedom
    bumped = r.copy()
    bumped[1000:1020] += 10.0  # 20 points among 2,000 at 10 sigma
    assert error_scale(bumped) < 1.08  # the median barely moves ...
    assert math.sqrt(np.sum(bumped**2) / (2000 - 5)) > 1.3  # ... chi2 / dof would hide it


def test_clip_isolated_removes_lone_outliers_but_keeps_runs():
    r = np.zeros(40)
    r[[3, 10, 11, 20, 39]] = [30.0, 25.0, -25.0, 12.0, 50.0]  # lone, a pair, lone, at the edge
    r[30:33] = 8.0  # a run of three: a real deviation
    out = clip_isolated(r, 4.0)
    assert np.all(out[[3, 10, 11, 20, 39]] == 0.0)
    assert np.array_equal(out[30:33], r[30:33])
    assert np.array_equal(clip_isolated(r, None), r)
    assert anomaly_statistic(out)[0] == pytest.approx(144.0)  # (3 * 8)^2 / 4: the run alone
    noise = np.random.default_rng(1).standard_normal(10_000)
    assert np.sum(clip_isolated(noise, 4.0) != noise) < 10  # ~3 expected


def test_rescaling_and_clipping_stop_false_binaries_on_survey_photometry():
    """PSPL events with 1.5x underestimated errors and 2 % outliers: binary by thresholds tuned
    on correct Gaussian errors without the robust options, PSPL with them; a planet's 20-point
    anomaly stays binary either way."""
    def features(curves, options):
        rows = [light_curve_features(*survey_event(T2K, c, s, u, o), **options)
                for c, s, u, o in curves]
        return table(**{name: [r[name] for r in rows] for name in rows[0]})

    clean = [(np.ones_like(T2K), s, 1.0, 0.0) for s in range(3)]
    clean += [(pspl_2k(70.0 + 20 * s), 10 + s, 1.0, 0.0) for s in range(3)]
    clean += [(planet_2k(), 20 + s, 1.0, 0.0) for s in range(3)]
    labels = [0] * 3 + [1] * 3 + [2] * 3
    bad = [(pspl_2k(60.0 + 15 * s), 30 + s, 1.5, 0.02) for s in range(5)]
    # with 1.5x larger real errors the same planet would be 2 sigma a point: make it 4.5
    planets = [(planet_2k(), 40, 1.0, 0.0), (planet_2k(0.06), 41, 1.5, 0.02)]
    for options, bad_class in ((RAW, 2), (ROBUST, 1)):
        tuned = ClassicalPeer.tune(features(clean, options), labels, **options)
        # the binary call is under test: a low event threshold (the tuned midpoint, ~3e5, sits
        # above the rescaled Δχ² of these events, which divides by k^2 = 2.25)
        peer = ClassicalPeer(100.0, tuned.binary_threshold, **options)
        bad_features = features(bad, options)
        assert np.all(peer.predict(bad_features) == bad_class), (options, bad_features["anomaly"])
        got = features(planets, options)
        if options is ROBUST:
            assert np.all(peer.predict(got) == 2)
            # the rescaling measured the truth and the anomaly stands far above the noise
            assert np.all(np.abs(bad_features["error_scale"] - 1.5) < 0.1)
            assert np.all(bad_features["anomaly"] < 40) and np.all(got["anomaly"] > 80)
            assert np.all(bad_features["outliers"] > 10)
        else:
            assert np.all(bad_features["anomaly"] > 150)  # outliers and small errors
            assert got[0]["anomaly"] > 80 and peer.predict(got)[0] == 2


def test_robust_options_keep_a_caustic_crossing_binary():
    raw = light_curve_features(*noisy_event(caustic_curve(), 5), **RAW)
    robust = light_curve_features(*noisy_event(caustic_curve(), 5), **ROBUST)
    assert robust["anomaly"] > 300 and robust["dchi2_event"] > 1000
    assert robust["error_scale"] < 1.5 < math.sqrt(raw["chi2_pspl"] / (T.size - 5))
    assert 90 < robust["anomaly_t"] < 108


def test_old_peer_files_keep_their_old_behaviour(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"classical_peer": {"event_threshold": 40.0,
                                                   "binary_threshold": 30.0,
                                                   "binary_feature": "anomaly"}}))
    old = ClassicalPeer.load(path)
    assert old.error_rescaling == "none" and old.outlier_clip is None
    new = ClassicalPeer(40.0, 30.0)
    assert new.options == dict(error_rescaling="pspl", outlier_clip=4.0)  # the new default
    assert ClassicalPeer.load(new.save(tmp_path / "new.json")) == new
    f = old.features(*noisy_event(pspl_curve(), 3))
    assert f["error_scale"] == 1.0 and f["outliers"] == 0
    with pytest.raises(ValueError, match="error_rescaling"):
        ClassicalPeer(1.0, 1.0, error_rescaling="mad")
    with pytest.raises(ValueError, match="outlier_clip"):
        ClassicalPeer(1.0, 1.0, outlier_clip=-1.0)
    rescaled = table(dchi2_event=[1.0, 2.0], anomaly=[0.0, 1.0], error_scale=[1.0, 1.3])
    with pytest.raises(ValueError, match="error_scale"):
        ClassicalPeer.tune(rescaled, [0, 1], error_rescaling="none")


def survey_times(n, seed=0):
    """A 15-minute cadence, 8-hour nights, 30 % of nights lost, 240-day seasons then 125-day
    yearly gaps: the first ``n`` observations."""
    rng = np.random.default_rng(seed)
    nights = np.array([d for d in range(4000) if d % 365 < 240 and rng.random() > 0.3], float)
    return (nights[:, None] + np.arange(32)[None, :] / 96.0).ravel()[:n]


def survey_pspl(t, t_0, t_E=20.0, seed=1):
    clean = 0.5 * pspl_magnification(t, t_0, 0.2, t_E) + 0.5
    return survey_event(t, clean, seed, 1.5, 0.02)


def test_long_gappy_survey_curve():
    t = survey_times(20_000)
    assert t.size == 20_000 and np.diff(t).max() > 120  # yearly gaps
    f = light_curve_features(*survey_pspl(t, 400.0))
    assert f["n"] == 20_000
    assert abs(f["t_0"] - 400.0) < 0.1 and abs(f["t_E"] / 20.0 - 1) < 0.05
    assert abs(f["error_scale"] - 1.5) < 0.05 and f["anomaly"] < 40 and abs(f["excess"]) < 10


def test_curves_that_start_after_the_peak_or_peak_in_a_gap():
    t = survey_times(8000)
    for t_0 in (t[0] - 5.0, t[0] - 15.0):  # t_0 before the first observation
        f = light_curve_features(*survey_pspl(t, t_0))
        assert abs(f["t_0"] - t_0) < 3.0 and abs(f["t_E"] / 20.0 - 1) < 0.2
        assert f["dchi2_event"] > 1e4 and f["anomaly"] < 40 and abs(f["excess"]) < 10
    gap = int(np.argmax(np.diff(t)))
    assert t[gap + 1] - t[gap] > 100
    for t_0 in (t[gap] + 20.0, t[gap + 1] - 20.0):  # t_0 in the seasonal gap
        f = light_curve_features(*survey_pspl(t, t_0, t_E=40.0))
        assert abs(f["t_0"] - t_0) < 5.0 and f["dchi2_event"] > 1e4
        assert f["anomaly"] < 40 and abs(f["excess"]) < 10
    # t_0 mid-gap: only the wings are seen; the fit is degenerate but must still fit
    f = light_curve_features(*survey_pspl(t, 0.5 * (t[gap] + t[gap + 1]), t_E=40.0))
    assert f["dchi2_event"] > 1e3 and f["anomaly"] < 40 and abs(f["excess"]) < 10


def test_pspl_starts_reach_the_edge_and_the_event_duration():
    t = survey_times(3000)
    _, flux, err = survey_pspl(t, t[0] - 5.0)
    starts = pspl_starts(t, flux, err)
    assert any(s[0] <= t[0] for s in starts)  # an edge start
    t_0 = t[1500]
    _, flux, err = survey_pspl(t, t_0)
    starts = pspl_starts(t, flux, err)
    assert not any(s[0] <= t[0] for s in starts)
    # a duration-based t_E within a factor 3 of the truth
    assert any(abs(s[0] - t_0) < 2 and 1 / 3 < s[2] / 20.0 < 3 for s in starts)
