"""The real-data benchmark: Wilson shares, segments of a synthetic EWS folder through a fake
model and the peer, the baseline segment's end, exclusions and duplicates, fold merging, the
command line, and the numbers on a few events of the shipped subset."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from helpers import pspl_magnification, write_ews_event

from microlens.core.metrics import wilson_interval
from microlens.models.peer import ClassicalPeer
from microlens.models.registry import neural_kinds
from microlens.photometry import ews
from microlens.photometry.ews import read_stars
from microlens.realdata.benchmark import (
    Segment,
    combine_reports,
    headline_rows,
    model_answers,
    run_benchmark,
    share,
    summary_view,
)
from microlens.realdata.benchmark.cli import main

T0 = 2459000.0
PSPL = {"tmax": T0 + 500.0, "tau": 20.0, "umin": 0.1, "i0": 18.0}


def write_event(root, name, *, n=560, step=1.0, tmax=PSPL["tmax"], tau=PSPL["tau"],
                umin=PSPL["umin"], i0=PSPL["i0"], lensed=True, params=True, amax=None,
                ra="17:19:44.68", dec="-27:43:21.4", seed=0):
    """One event of the EWS layout: daily points from T0, 0.02 mag noise, a PSPL brightening
    (``lensed``) and OGLE's fit (``params``)."""
    rng = np.random.default_rng(seed)
    hjd = T0 + step * np.arange(n) + 0.1 * rng.random(n)
    mag = np.full(n, i0)
    if lensed:
        mag = mag - 2.5 * np.log10(pspl_magnification(hjd, tmax, tau, umin))
    mag = mag + 0.02 * rng.standard_normal(n)
    fit = {"tmax": tmax, "tau": tau, "umin": umin, "i0": i0}
    if amax is not None:
        fit["amax"] = amax
    write_ews_event(root, name, hjd, mag, 0.02, ra=ra, dec=dec, fit=fit if params else None)


@pytest.fixture
def folder(tmp_path):
    """A PSPL event, a flat star without params, a duplicate of the first star (another
    field, same coordinates), a degenerate fit, a curve too short, and a second PSPL star."""
    root = tmp_path / "ews"
    write_event(root, "blg-0001", seed=1)
    write_event(root, "blg-0002", lensed=False, params=False, seed=2)
    write_event(root, "blg-0003", seed=3)  # same coordinates as blg-0001
    write_event(root, "blg-0004", umin=0.0, amax=99999.0, ra="17:30:00.00", seed=4)
    write_event(root, "blg-0005", n=15, tmax=T0 + 10.0, ra="17:40:00.00", seed=5)
    write_event(root, "blg-0006", tmax=T0 + 450.0, tau=30.0, i0=19.2, ra="17:50:00.00",
                seed=6)
    return root


class SignificanceModel(torch.nn.Module):
    """A causal fake model: P(lensing) = sigmoid(s_k - 5) with ``s_k`` the largest
    ``(flux - 1) / err`` up to observation ``k``; 70 % of it single lens, 30 % binary."""

    kind = "transformer"

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def predict_proba(self, times, flux, flux_err, mask=None, *, check_intervals=True):
        s = torch.cummax((torch.as_tensor(flux) - 1) / torch.as_tensor(flux_err), dim=1).values
        p = torch.sigmoid(s.double() - 5.0)
        return torch.stack([1 - p, 0.7 * p, 0.3 * p], dim=-1).float()


def significance_answer(segment: Segment) -> np.ndarray:
    """What SignificanceModel says after every observation of one segment, alone."""
    s = np.maximum.accumulate((segment.flux - 1) / segment.flux_err)
    p = 1 / (1 + np.exp(-(s - 5.0)))
    return np.stack([1 - p, 0.7 * p, 0.3 * p], axis=1)


def tiny_run(tmp_path):
    """A run directory of an untrained tiny transformer (config, normalisation, weights)."""
    from microlens.models.config import ModelConfig
    from microlens.models.inputs import Normalization
    from microlens.models.registry import build_model

    torch.manual_seed(0)
    config = ModelConfig(d_model=8, n_layers=1, n_heads=2, d_ff=16, window=8, dropout=0.0,
                         conv_stem_layers=1)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": config.to_dict(),
                                                 "train": {"dataset": str(tmp_path / "none")}}))
    Normalization().save(run / "normalization.json")
    torch.save(build_model(config).state_dict(), run / "best.pt")
    return run


# -- Wilson shares ------------------------------------------------------------------------------


def test_shares_carry_wilson_intervals():
    assert share(0, 0) == {"count": 0, "of": 0, "share": None, "interval": None}
    half = share(5, 10)
    assert half["share"] == 0.5 and half["interval"] == pytest.approx([0.2366, 0.7634], abs=1e-4)
    none = share(0, 10)
    assert none["interval"][0] == 0.0 and none["interval"][1] == pytest.approx(0.2775, abs=1e-4)
    assert share(10, 10)["interval"][1] == pytest.approx(1.0)
    assert tuple(share(3, 7)["interval"]) == wilson_interval(3, 7)
    with pytest.raises(ValueError, match="successes must lie in"):
        share(11, 10)


# -- segments of a synthetic folder --------------------------------------------------------


def test_segments_exclusions_and_answers(folder):
    record = run_benchmark(folder, SignificanceModel(), peer=None)
    counts = record["counts"]
    assert counts["events_in_folder"] == 6 and counts["selected"] == 6
    assert (counts["no_params"], counts["duplicate_star"]) == (1, 1)  # blg-0002, blg-0003
    assert counts["baseline_degenerate_fit"] == 1  # blg-0004 keeps its event segment only
    assert (counts["event_too_short"], counts["baseline_too_short"]) == (1, 1)  # blg-0005
    assert [r["name"] for r in record["events"]] == ["blg-0001", "blg-0004", "blg-0006"]
    assert (counts["event_segments"], counts["baseline_segments"]) == (3, 2)
    assert {(x["name"], x["reason"]) for x in record["excluded"]} == {
        ("blg-0002", "no_params"), ("blg-0003", "duplicate_star"),
        ("blg-0004", "baseline_degenerate_fit"), ("blg-0005", "event_too_short"),
        ("blg-0005", "baseline_too_short")}
    model = record["metrics"]["model"]
    assert model["events_lensing"]["count"] == 3 and model["events_binary"]["count"] == 0
    assert model["baselines_lensing"]["count"] == 0
    assert model["stream_false_alerts"] == share(0, 2)
    assert record["metrics"]["peer"] is None

    events = {e.name: e for e in ews.read_folder(folder)}
    for row in record["events"]:
        event = events[row["name"]]
        photometry = ews.read_photometry(event)
        n = ews.event_end(event, photometry)
        assert row["event"]["n"] == n
        cut = ews.segment(photometry, n, "_event")
        expected = significance_answer(Segment(cut.times, cut.flux, cut.flux_err))
        np.testing.assert_allclose(row["event"]["final"], expected[-1], atol=1e-6)
        assert row["event"]["max_lensing"] == pytest.approx(expected[:, 1:].sum(1).max(),
                                                            abs=1e-6)
    assert headline_rows(record)[0]["model"].startswith("100.0 % [")


def test_baseline_segment_stops_before_the_predicted_signal(folder):
    record = run_benchmark(folder, SignificanceModel(), peer=None)
    events = {e.name: e for e in ews.read_folder(folder)}
    for row in record["events"]:
        if row["baseline"] is None:
            continue
        event = events[row["name"]]
        photometry = ews.read_photometry(event)
        n = row["baseline"]["n"]
        snr = ews.predicted_snr(event, photometry)
        assert snr[n - 1] < 2.0 <= snr[n]  # the S/N the fit predicts stays below 2
        assert n < row["event"]["n"]
        hjd = photometry.absolute_times()[n - 1]
        assert hjd < event.fit.tmax - event.fit.tau  # years of baseline, well before the peak
        assert row["baseline"]["max_lensing"] < 0.9  # nothing to see: no stream alert
    timing = record["timing"]
    assert timing["timed"] and timing["n_timed"] == 2  # blg-0004's degenerate fit: not timed
    assert timing["n_alerted"] == 2 and timing["alerted_before_peak"]["count"] == 2
    for row in record["events"]:
        t = row["event"]["timing"]
        if t is not None:
            assert t["lead_days"] == pytest.approx(row["fit"]["tmax"] - t["alert_hjd"])
            assert 0 < t["lead_tau"] < 2 and t["alert_index"] >= t["signal_start"]


def test_stars_and_events_restrict_and_folds_merge(folder, tmp_path):
    full = run_benchmark(folder, SignificanceModel(), peer=None, threshold=0.5)
    stars = {r["name"]: r["star"] for r in full["events"]}
    fold_a = run_benchmark(folder, SignificanceModel(), peer=None, threshold=0.5,
                           stars=[stars["blg-0001"]])
    assert [r["name"] for r in fold_a["events"]] == ["blg-0001"]
    assert fold_a["counts"]["duplicate_star"] == 1  # blg-0003 is the same star
    star_file = tmp_path / "stars.txt"
    star_file.write_text(f"# the other fold\n{stars['blg-0004']}\n{stars['blg-0006']}\n")
    assert read_stars(star_file) == [stars["blg-0004"], stars["blg-0006"]]
    fold_b = run_benchmark(folder, SignificanceModel(), peer=None, threshold=0.5,
                           stars=star_file)
    merged = combine_reports([fold_a, fold_b])
    for key in ("metrics", "bins", "timing", "threshold_curve", "operating_point"):
        assert merged[key] == full[key], key
    assert [r["name"] for r in merged["events"]] == [r["name"] for r in full["events"]]
    assert merged["counts"]["event_segments"] == full["counts"]["event_segments"]
    assert merged["folds"] == 2 and merged["model_kinds"] == ["transformer"] * 2
    with pytest.raises(ValueError, match="blg-0001 is scored in report 0 and report 1"):
        combine_reports([fold_a, fold_a])
    other = run_benchmark(folder, SignificanceModel(), peer=None, stars=[stars["blg-0004"]])
    with pytest.raises(ValueError, match="made with threshold = None, report 0 with 0.5"):
        combine_reports([fold_a, other])
    with pytest.raises(ValueError, match="give the full record"):
        combine_reports([summary_view(full)])
    first_two = run_benchmark(folder, SignificanceModel(), peer=None, events=2)
    assert first_two["counts"]["not_selected"] == 4 and len(first_two["events"]) == 1
    with pytest.raises(ValueError, match="'blg-9999' are not in the folder"):
        run_benchmark(folder, SignificanceModel(), peer=None, events=["blg-9999"])


def test_threshold_curve_and_the_peer(folder):
    peer = ClassicalPeer(event_threshold=200.0, binary_threshold=1e9)
    record = run_benchmark(folder, SignificanceModel(), peer=peer, events=["blg-0001",
                                                                          "blg-0006"])
    curve = record["threshold_curve"]
    assert curve["thresholds"][0] is None  # above every score: nothing called
    assert curve["events_found"][0] == curve["baselines_lensing"][0] == 0.0
    assert curve["events_found"][-1] == curve["baselines_lensing"][-1] == 1.0
    assert np.all(np.diff(curve["events_found"]) >= 0)
    peer_metrics = record["metrics"]["peer"]
    assert peer_metrics["events_lensing"]["count"] == 2  # two clear PSPL events
    assert peer_metrics["baselines_lensing"]["count"] == 0  # flat years before them
    assert peer_metrics["stream_false_alerts"]["applicable"] is False
    assert record["peer"]["source"] == "given"
    row = record["events"][0]
    assert row["event"]["peer"]["class"] == 1 and row["event"]["peer"]["dchi2_event"] > 200
    assert row["baseline"]["peer"]["n"] == row["baseline"]["n"]
    bins = record["bins"]["baseline_mag"]["bins"]
    assert [b["n_stars"] for b in bins] == [0, 0, 1, 1, 0]  # I_bl 18.0 and 19.2: lower <= v
    assert record["operating_point"] is None
    assert math.isclose(sum(b["n_stars"] for b in record["bins"]["tau_days"]["bins"]), 2)


@pytest.mark.parametrize("kind", neural_kinds())
def test_every_neural_kind_batched_equals_one_curve_at_a_time(kind):
    from microlens.models.config import ModelConfig
    from microlens.models.registry import build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(kind=kind, d_model=8, n_layers=1, n_heads=2, d_ff=16,
                                    window=8, dropout=0.0, conv_stem_layers=1)).eval()
    rng = np.random.default_rng(0)
    segments = []
    for n in (30, 75, 31, 200):
        times = np.cumsum(0.2 + rng.random(n))
        segments.append(Segment(times, 1 + 0.01 * rng.standard_normal(n), np.full(n, 0.01)))
    together = model_answers(model, segments, batch_observations=150)  # 3 batches by length
    for segment, answer in zip(segments, together, strict=True):
        alone = model_answers(model, [segment])[0]
        assert answer.shape == (len(segment), 3)
        np.testing.assert_allclose(answer, alone, atol=2e-6)


# -- the command line ------------------------------------------------------------------------


def test_command_line_prints_the_summary_and_writes_the_record(folder, tmp_path, capsys):
    run = tiny_run(tmp_path)
    out = tmp_path / "bench.json"
    assert main([str(folder), "--run", str(run), "--peer", "none", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert "events" not in summary and summary["model_kind"] == "transformer"
    assert summary["counts"]["event_segments"] == 3
    record = json.loads(out.read_text())
    assert [r["name"] for r in record["events"]] == ["blg-0001", "blg-0004", "blg-0006"]
    assert record["metrics"] == summary["metrics"]
    assert not list(tmp_path.glob(".*tmp"))

    assert main([str(tmp_path / "nowhere"), "--run", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: EWS folder ") and "does not exist" in err[0]
    assert main([str(folder), "--run", str(run), "--peer", "tune"]) == 2  # no data set there
    assert capsys.readouterr().err.startswith("error: ")
    assert main([str(folder), "--peer", "none"]) == 2
    assert "nothing to score" in capsys.readouterr().err


# -- the shipped subset ----------------------------------------------------------------------


def test_numbers_on_a_few_shipped_events():
    """Regression on seven events of the shipped subset (a duplicate-star pair, degenerate fits,
    the event without params): exact counts and segment ends, the fake model and a fixed peer."""
    names = ["blg-0002", "blg-0006", "blg-0011", "blg-0166", "blg-0200", "blg-0226", "blg-1224"]
    record = run_benchmark(None, SignificanceModel(), peer=ClassicalPeer(100.0, 50.0),
                           events=names)
    assert record["folder"] == "outputs/real_data/ogle_ews_2025_subset"
    counts = record["counts"]
    assert (counts["events_in_folder"], counts["selected"], counts["not_selected"]) == (250, 7,
                                                                                       243)
    assert (counts["no_params"], counts["duplicate_star"], counts["baseline_degenerate_fit"]) \
        == (1, 2, 2)  # blg-1224; blg-0166 (of blg-0002), blg-0226 (of blg-0200); 0006, 0200
    assert (counts["event_segments"], counts["baseline_segments"], counts["timed_events"]) \
        == (4, 2, 1)
    ends = {r["name"]: (r["event"]["n"], r["baseline"] and r["baseline"]["n"])
            for r in record["events"]}
    assert ends == {"blg-0002": (316, 185), "blg-0006": (3207, None),
                    "blg-0011": (3707, 3661), "blg-0200": (754, None)}
    model, peer = record["metrics"]["model"], record["metrics"]["peer"]
    assert [model[k]["count"] for k in ("events_lensing", "events_binary", "baselines_lensing",
                                        "stream_false_alerts")] == [4, 0, 1, 0]
    assert [peer[k]["count"] for k in ("events_lensing", "events_binary",
                                       "baselines_lensing")] == [4, 3, 1]
    timing = record["events"][2]["event"]["timing"]
    assert (timing["signal_start"], timing["alert_index"], timing["n_near_peak"]) == (3661, 3663,
                                                                                     5)
    assert timing["lead_days"] == pytest.approx(8.63619, abs=1e-4)
    assert "Udalski et al. 2015, AcA 65, 1" in record["citation"]


# -- notebook 08 -----------------------------------------------------------------------------


@pytest.mark.slow  # a notebook run; the fast tier: ./run_all.sh test fast
def test_notebook_08_records_the_benchmark_and_its_figures(notebook_chain):
    from chain import REAL_BENCHMARK
    from notebook_form import NOTEBOOKS, assert_committed_form, assert_figures_written

    from microlens.workflow.figures import notebook_figures
    from microlens.workflow.notebooks import NOTEBOOKS as REGISTRY

    declared = assert_committed_form(NOTEBOOKS / "08_real_benchmark.ipynb",
                                     REGISTRY["08_real_benchmark"].types())
    assert declared["folder"] == "" and declared["peer"] == "tune"
    out = notebook_chain.ran("08_real_benchmark").out
    record = json.loads((out / "real_benchmark.json").read_text())
    assert record["folder"] == "outputs/real_data/ogle_ews_2025_subset"
    assert record["run_dir"] and record["model_kind"] == "transformer"
    counts = record["counts"]
    assert counts["selected"] == REAL_BENCHMARK["n_events"] == 8
    assert counts["not_selected"] == 242 and counts["baseline_degenerate_fit"] == 1  # blg-0006
    assert counts["event_segments"] == len(record["events"]) == 8
    assert record["peer"]["source"] == "tuned" and record["peer"]["n_val"] > 0
    model = record["metrics"]["model"]
    assert model["events_lensing"]["of"] == 8 and model["baselines_lensing"]["of"] == \
        counts["baseline_segments"]
    assert record["rules"]["window_days"] == 605.25
    gate = record["gate"]  # the physics gate at the tuned peer's thresholds
    assert gate["binary_threshold"] == record["peer"]["binary_threshold"]
    assert gate["event_threshold"] == record["peer"]["event_threshold"]
    for row in record["events"]:
        assert len(row["event"]["final"]) == 3 and row["event"]["peer"]["class"] in (0, 1, 2)
        assert sum(row["event"]["final"]) == pytest.approx(1.0, abs=1e-5)
        if row["event"]["peer"]["class"] != 2:  # the gate: binary only where the peer sees one
            assert row["event"]["final"][2] == 0.0
        assert len(row["event"]["final_ungated"]) == 3
    names = ["real_benchmark_bins", "real_benchmark_table", "real_benchmark_threshold",
             "real_benchmark_timing"]
    assert record["figures"] == names
    assert_figures_written(out, names)
    assert sorted(notebook_figures(out, "08_real_benchmark")) == names  # rebuilt from the record


class FeaturesFake:
    """A fake of the ``features`` kind: answers at update fractions 0.5 and 1.0, its logits a
    fixed function of the prefix features (the first feature's sign)."""

    kind = "features"
    update_fractions = (0.5, 1.0)
    temperature = 2.0

    def predict_proba(self, *args, **kwargs):  # the benchmark fits the prefixes itself
        raise AssertionError("the features kind's answers come from prefix_features")

    def predict_log_proba_features(self, features):
        first = np.nan_to_num(features[..., 0])
        logits = np.stack([np.zeros_like(first), np.tanh(first), -np.tanh(first)], axis=-1)
        return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))


class OneCurve:
    """One segment as a store of one event (what prefix_features reads)."""

    def __init__(self, segment):
        self.segment = segment

    def __len__(self):
        return 1

    def event(self, row):
        return {"times": self.segment.times, "flux": self.segment.flux,
                "flux_err": self.segment.flux_err}


@pytest.mark.slow  # seconds long: trains a features run and fits PSPL prefixes twice
def test_features_kind_answers_at_its_fractions_and_workers_change_nothing(folder):
    from microlens.models.curve_features import prefix_features

    peer = ClassicalPeer(event_threshold=200.0, binary_threshold=1e9)
    one = run_benchmark(folder, FeaturesFake(), peer=peer, events=["blg-0001", "blg-0006"])
    two = run_benchmark(folder, FeaturesFake(), peer=peer, events=["blg-0001", "blg-0006"],
                        workers=2)
    for key in ("metrics", "bins", "timing", "threshold_curve", "events", "counts"):
        assert one[key] == two[key], key
    assert one["timing"] == {"timed": False, "reason": one["rules"]["untimed_reason"]}
    assert one["answers"] == "at update fractions [0.5, 1.0]"
    assert all(r["event"]["timing"] is None for r in one["events"])

    row = one["events"][0]
    photometry = ews.read_photometry(ews.read_folder(folder)[0])
    cut = ews.segment(photometry, row["event"]["n"], "_event")
    segment = Segment(cut.times, cut.flux, cut.flux_err)
    series = model_answers(FeaturesFake(), [segment])[0]
    n, half = len(segment), math.ceil(len(segment) / 2)
    np.testing.assert_allclose(series[: half - 1], 1 / 3)  # uniform before the first update
    assert np.ptp(series[half - 1 : n - 1], axis=0).max() == 0  # held until the next
    features = prefix_features(OneCurve(segment), [0], (0.5, 1.0))
    logits = FeaturesFake().predict_log_proba_features(features)[0] / FeaturesFake.temperature
    expected = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(series[half - 1], expected[0], atol=1e-12)
    np.testing.assert_allclose(series[-1], expected[1], atol=1e-12)
    np.testing.assert_allclose(row["event"]["final"], expected[1], atol=1e-12)


def test_the_threshold_curve_ranks_answers_whose_p_lensing_is_one_to_the_last_digit():
    from microlens.realdata.benchmark.summary import (
        lensing_log_odds,
        operating_point,
        threshold_curve,
    )

    def answer(p0):
        return {"final": [p0, (1 - p0) / 2, (1 - p0) / 2]}

    # P(lensing) is 1.0 in float64 for all three; P(no event) still orders them
    rows = [{"event": answer(1e-18), "baseline": answer(1e-12)},
            {"event": answer(1e-25), "baseline": answer(1e-30)},
            {"event": answer(0.0), "baseline": None}]
    assert len({1 - p for p in (1e-18, 1e-25)}) == 1  # indistinguishable as P(lensing)
    assert lensing_log_odds([0.0, 0.5, 0.5]) > lensing_log_odds([1e-300, 0.5, 0.5]) > 600
    curve = threshold_curve(rows)
    assert curve["events_found"][0] == curve["baselines_lensing"][0] == 0.0
    pairs = list(zip(curve["baselines_lensing"], curve["events_found"], strict=True))
    assert pairs[1:] == [(0.0, 1 / 3), (0.5, 1 / 3), (0.5, 2 / 3), (0.5, 1.0), (1.0, 1.0)]
    assert curve["log_odds_thresholds"][1] == 1000.0 and curve["thresholds"][1] == 1.0
    # a threshold given as P(lensing) compares as log-odds
    point = operating_point(rows, 0.9)
    assert point["events_found"]["count"] == 3 and point["baselines_lensing"]["count"] == 2


def test_a_trailing_window_classifies_the_last_days_of_each_segment(folder):
    from microlens.photometry.files import estimate_baseline_flux

    whole = run_benchmark(folder, SignificanceModel(), peer=None)
    record = run_benchmark(folder, SignificanceModel(), peer=None, window_days=100.0)
    assert record["rules"]["window_days"] == 100.0 and whole["rules"]["window_days"] is None
    events = {e.name: e for e in ews.read_folder(folder)}
    for row, full in zip(record["events"], whole["events"], strict=True):
        event = events[row["name"]]
        photometry = ews.read_photometry(event)
        n = ews.event_end(event, photometry)
        cut = ews.segment(photometry, n, "_event")
        keep = cut.times >= cut.times[-1] - 100.0
        level = estimate_baseline_flux(cut.flux[keep], cut.times[keep])
        expected = significance_answer(Segment(cut.times[keep], cut.flux[keep] / level,
                                               cut.flux_err[keep] / level))
        np.testing.assert_allclose(row["event"]["final"], expected[-1], atol=1e-6)
        assert row["event"]["n"] == full["event"]["n"] == n  # the segment, not the window
        timing = row["event"]["timing"]
        if timing and timing["alert_index"] is not None:  # indices of the whole segment
            assert timing["alert_index"] >= int(np.flatnonzero(keep)[0])
    with pytest.raises(ValueError, match="window_days must be a positive number"):
        run_benchmark(folder, SignificanceModel(), peer=None, window_days=0)


# ---------------------------------------------------------------------------------------------
# The sky beside the simulation (notebook 07)
# ---------------------------------------------------------------------------------------------


def test_simulated_shares_ask_the_three_questions_of_a_test_split():
    from microlens.realdata.benchmark import simulated_shares

    labels = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    final = np.array([0, 1, 0, 2, 2, 1, 0, 2, 0, 1])
    got = simulated_shares(labels, final)
    assert got["n_events"] == 10
    assert (got["lensing_called_lensing"]["count"], got["lensing_called_lensing"]["of"]) == (4, 6)
    assert (got["single_called_binary"]["count"], got["single_called_binary"]["of"]) == (1, 3)
    assert (got["no_event_called_lensing"]["count"],
            got["no_event_called_lensing"]["of"]) == (2, 4)
    low, high = got["single_called_binary"]["interval"]
    assert low < 1 / 3 < high
    with pytest.raises(ValueError, match="10 labels but 9 answers"):
        simulated_shares(labels, final[:9])


def test_beside_simulation_pairs_each_share_with_its_real_counterpart():
    from microlens.realdata.benchmark import beside_simulation, share, simulated_shares
    from microlens.reports.real_benchmark import beside_simulation_figure

    simulated = simulated_shares(np.array([0, 1, 2, 1]), np.array([0, 1, 2, 2]))
    model = {"events_lensing": share(9, 10), "events_binary": share(4, 10),
             "baselines_lensing": share(1, 8), "stream_false_alerts": share(2, 8)}
    record = {"metrics": {"model": model, "peer": None}, "folder": "data/real/x",
              "counts": {"event_segments": 10, "baseline_segments": 8}, "citation": "Udalski"}
    beside = beside_simulation(simulated, record)
    assert [row["real"] for row in beside["rows"]] == [
        model["events_lensing"], model["events_binary"], model["baselines_lensing"]]
    assert [row["simulated"]["of"] for row in beside["rows"]] == [3, 2, 1]
    assert (beside["real_events"], beside["real_baselines"], beside["simulated_events"]) == (
        10, 8, 4)
    json.dumps(beside)  # what 07's record keeps
    figure = beside_simulation_figure(beside)
    assert [trace.x[1] for trace in figure.data] == [50.0, 40.0]  # PSPL called binary, per cent
    with pytest.raises(ValueError, match="no model answers"):
        beside_simulation(simulated, {**record, "metrics": {"model": None}})
