"""microlens.realdata.real_events: one pass over a real curve, its peak, first confident answers,
peer.

Fast: a tiny untrained model (the answers are meaningless, their bookkeeping is what is
tested) on a simulated PSPL curve read back through microlens.photometry.files like a user's file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings

import numpy as np
import pytest
import torch

from microlens.core.validation import InvalidLightCurveError
from microlens.models.config import ModelConfig
from microlens.models.inputs import Normalization
from microlens.models.peer import ClassicalPeer
from microlens.models.transformer import MicrolensTransformer
from microlens.photometry.files import read_file
from microlens.realdata.real_events import (
    SERIES_FIELDS,
    TrainingRangeWarning,
    classify_event,
    classify_events,
    load_series,
    model_inputs,
    peak_index,
    save_series,
    tune_peer,
)
from microlens.reports import real_event_figure, real_events_table_figure
from microlens.simulation.pspl_fit import pspl_magnification, running_median

N_POINTS = 300
T_0 = 7050.0  # HJD - 2450000


def tiny_model(dt_min: float = 0.0, dt_max: float = math.inf) -> MicrolensTransformer:
    torch.manual_seed(0)
    config = ModelConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32, window=8, dropout=0.0,
                         conv_stem_kernel=3, conv_stem_layers=2)
    return MicrolensTransformer(config, Normalization(dt_min=dt_min, dt_max=dt_max)).eval()


def write_pspl(path, n: int = N_POINTS, seed: int = 3):
    """A noisy PSPL curve (u_0 0.1, t_E 20 d) as a whitespace file of HJD', flux, error."""
    rng = np.random.default_rng(seed)
    times = np.sort(T_0 - 100 + rng.uniform(0, 200, n))
    err = np.full(n, 0.02)
    flux = pspl_magnification(times, T_0, 0.1, 20.0) + rng.normal(0, 0.02, n)
    np.savetxt(path, np.column_stack([times, flux, err]), fmt="%.6f",
               header="HJD-2450000 flux flux_err")
    return path


@pytest.fixture(scope="module")
def curve(tmp_path_factory):
    path = write_pspl(tmp_path_factory.mktemp("real") / "sim.dat")
    return read_file(path, kind="flux", baseline_flux=1.0, time_system="HJD-2450000",
                     name="sim")


@pytest.fixture(scope="module")
def peer():
    return ClassicalPeer(event_threshold=50.0, binary_threshold=1e9)


def cut(photometry, k: int):
    """The first ``k`` observations of a Photometry (what had arrived after observation k)."""
    return dataclasses.replace(photometry, times=photometry.times[:k],
                               flux=photometry.flux[:k], flux_err=photometry.flux_err[:k],
                               observatory=photometry.observatory[:k])


def test_one_pass_gives_every_answer(curve, peer):
    result = classify_event(tiny_model(), curve, peer, confidence=0.9)
    json.dumps(result, allow_nan=False)  # JSON-ready
    proba = np.asarray(result["probabilities"])
    assert proba.shape == (N_POINTS, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert result["n_points"] == N_POINTS and result["name"] == "sim"
    assert result["span_days"] == pytest.approx(curve.times[-1] - curve.times[0])
    assert result["observatories"] == list(curve.observatories)
    assert result["points_per_observatory"] == [N_POINTS]
    peak = result["peak"]["index"]
    assert peak == int(np.argmax(running_median(curve.flux, 5))) == peak_index(curve.flux)
    assert abs(curve.times[peak] - T_0) < 2.0  # the simulated peak
    assert result["peak"]["hjd"] == pytest.approx(curve.reference_epoch + curve.times[peak])
    for where, k in (("at_peak", peak), ("at_end", N_POINTS - 1)):
        answer = result["model"][where]
        np.testing.assert_allclose(answer["probabilities"], proba[k])
        assert answer["class"] == int(np.argmax(proba[k]))
        assert answer["name"] in ("no_event", "pspl", "binary") and answer["display"]
    # the peer: the whole curve is a clear single lens; at the peak it saw peak + 1 points
    assert result["peer"]["at_end"]["class"] == 1
    assert result["peer"]["at_end"]["n"] == N_POINTS
    assert result["peer"]["at_peak"]["n"] == peak + 1
    for answer in result["peer"].values():
        assert answer["error_scale"] >= 1.0 and "dchi2_event" in answer
    assert classify_event(tiny_model(), curve)["peer"] is None


def test_answers_use_only_the_past(curve):
    model = tiny_model()
    full = np.asarray(classify_event(model, curve)["probabilities"])
    for k in (1, 17, 150, N_POINTS - 1):
        part = np.asarray(classify_event(model, cut(curve, k))["probabilities"])
        assert part.shape == (k, 3)
        np.testing.assert_allclose(part, full[:k], rtol=0, atol=1e-5)


def test_first_confident_observations_follow_the_probabilities(curve):
    model = tiny_model()
    proba = np.asarray(classify_event(model, curve)["probabilities"])
    level = float(np.median(proba[:, 1]))  # reached by the single-lens class, half the time
    result = classify_event(model, curve, confidence=level)
    peak = result["peak"]["index"]
    for label, key in enumerate(("no_event", "pspl", "binary")):
        first = result["first_confident"][key]
        reached = np.flatnonzero(proba[:, label] >= level)
        if reached.size == 0:
            assert first is None
            continue
        k = first["index"]
        assert k == reached[0] and np.all(proba[:k, label] < level)
        assert first["probability"] == pytest.approx(proba[k, label], abs=1e-6)
        assert first["days_from_peak"] == pytest.approx(curve.times[k] - curve.times[peak])
        assert first["hjd"] == pytest.approx(curve.reference_epoch + curve.times[k])
    assert result["first_confident"]["pspl"] is not None
    never = classify_event(model, curve, confidence=1.0)["first_confident"]
    assert all(v is None or proba[v["index"]].max() >= 1.0 - 1e-7 for v in never.values())
    with pytest.raises(ValueError, match="confidence"):
        classify_event(model, curve, confidence=0.0)


def test_intervals_outside_the_training_range_are_counted_and_warned_once(curve):
    dt = np.diff(curve.times)
    low, high = np.quantile(dt, [0.25, 0.75])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = classify_event(tiny_model(dt_min=low, dt_max=high), curve)
    outside = result["outside_training_intervals"]
    expected = int(np.sum((dt < low * (1 - 1e-3)) | (dt > high * (1 + 1e-3))))
    assert outside["count"] == expected and outside["n_intervals"] == N_POINTS - 1
    assert outside["fraction"] == pytest.approx(expected / (N_POINTS - 1))
    assert outside["training_range_days"] == [pytest.approx(low), pytest.approx(high)]
    # one warning for the event (not one per point), naming it, the numbers and the remedy
    ranged = [w for w in caught if issubclass(w.category, TrainingRangeWarning)]
    assert len(ranged) == 1 and len(caught) == 1, [str(w.message) for w in caught]
    message = str(ranged[0].message)
    assert message.startswith("sim lies outside the model's training range")
    assert f"{expected} of {N_POINTS - 1} intervals" in message
    assert f"[{low:.4g}, {high:.4g}] days" in message and "extrapolations" in message
    assert "all of them" not in message  # only some intervals are outside


def test_times_stay_float64_only_when_float32_would_merge_observations(curve):
    times, flux, err = model_inputs(curve)
    assert times.dtype == np.float32 and times.shape == (1, N_POINTS) and times[0, 0] == 0
    assert flux.dtype == err.dtype == np.float32
    close = dataclasses.replace(curve, times=np.r_[curve.times[:-1], curve.times[-2] + 1e-6])
    close = dataclasses.replace(close, times=np.r_[0.0, 3000.0 + close.times[1:]])
    assert model_inputs(close)[0].dtype == np.float64


def test_classify_events_on_a_run_directory_and_user_files(tmp_path, curve, peer):
    model = tiny_model()
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"train": {"dataset": str(tmp_path / "data")},
                                                 "model": model.config.to_dict()}))
    model.normalization.save(run / "normalization.json")
    torch.save(model.state_dict(), run / "best.pt")
    other = write_pspl(tmp_path / "other.dat", n=120, seed=9)

    record, series = classify_events(run, [], 0.9, files=[curve.source_files[0], other],
                                     peer=peer, device="cpu")
    json.dumps(record, allow_nan=False)
    assert record["n_events"] == 2 and record["n_published"] == 0
    assert [e["name"] for e in record["events"]] == ["sim", "other"] == list(series)
    assert record["peer"]["event_threshold"] == 50.0 and record["confidence"] == 0.9
    for entry, row in zip(record["events"], record["summary"], strict=True):
        assert "probabilities" not in entry and entry["published_class"] is None
        assert row["event"] == entry["name"] and row["correct"] is None
        # the record says how each file was read (columns, time system, kind, baseline)
        assert any("column" in line for line in entry["read_as"])
        assert any("time_system" in line for line in entry["read_as"])
        assert row["model_at_end"] == entry["model"]["at_end"]["display"]
        arrays = series[entry["name"]]
        assert set(arrays) == set(SERIES_FIELDS)
        assert arrays["probabilities"].shape == (entry["n_points"], 3)
        assert arrays["times"].shape == (entry["n_points"],)
    np.testing.assert_allclose(series["sim"]["probabilities"],
                               classify_event(model, curve)["probabilities"], atol=1e-6)

    path = save_series(tmp_path / "series.npz", series)
    back = load_series(path)  # allow_pickle=False inside
    assert list(back) == list(series)
    for name in series:
        for field in SERIES_FIELDS:
            np.testing.assert_array_equal(back[name][field], series[name][field])

    figure = real_event_figure(record["events"][0], series["sim"])
    names = [trace.name for trace in figure.data]
    assert names == [curve.observatories[0], "no event", "single lens (PSPL)", "binary lens"]
    assert len(figure.data[1].x) == N_POINTS
    assert real_event_figure(record["events"][0], series["sim"], time_axis="hjd")
    with pytest.raises(ValueError, match="time_axis"):
        real_event_figure(record["events"][0], series["sim"], time_axis="days")
    table = real_events_table_figure(record["summary"])
    assert list(table.data[0].cells.values[0]) == ["sim", "other"]

    with pytest.raises(FileNotFoundError, match="neither a shipped event"):
        classify_events(run, ["no_such_event"], peer=False, device="cpu")
    with pytest.raises(ValueError, match="no events"):
        classify_events(run, [], peer=False, device="cpu")


@pytest.mark.slow  # seconds long: fits the peer on a whole validation split
def test_tune_peer_on_the_validation_split(small_store):
    peer = tune_peer(small_store)
    assert isinstance(peer, ClassicalPeer) and peer.error_rescaling == "pspl"
    legacy = tune_peer(small_store, error_rescaling="none", outlier_clip=None,
                       binary_feature="excess")
    assert legacy.binary_feature == "excess" and legacy.outlier_clip is None
    with pytest.raises(ValueError, match="unknown tune_peer option"):
        tune_peer(small_store, workers=1, fractions=(0.5,))


# -- arguments and the training range ----------------------------------------------------------


def test_classify_event_refuses_arguments_it_cannot_use(curve, tmp_path):
    model = tiny_model()
    with pytest.raises(TypeError, match=r"confidence must be a number in \(0, 1\], got True"):
        classify_event(model, curve, confidence=True)
    result = classify_event(model, curve, confidence=np.float32(0.9))  # NumPy numbers are numbers
    assert result["confidence"] == pytest.approx(0.9) and isinstance(result["confidence"], float)
    with pytest.raises(ValueError, match=r"confidence must lie in \(0, 1\], got nan"):
        classify_event(model, curve, confidence=float("nan"))
    with pytest.raises(TypeError, match=r"model must be a loaded model, got the path .*"
                                        r"use microlens.models.registry.load_model\(path\)"):
        classify_event(str(tmp_path), curve)
    with pytest.raises(TypeError, match="model must be a loaded model of a kind"):
        classify_event(object(), curve)
    with pytest.raises(TypeError, match=r"photometry must be a Photometry .* got dict "
                                        r"without times, flux, flux_err"):
        classify_event(model, {"times": curve.times, "flux": curve.flux})
    with pytest.raises(TypeError, match="peer must be a ClassicalPeer .* got dict"):
        classify_event(model, curve, peer={"event_threshold": 50.0})


def test_an_unusable_curve_is_named_by_its_event(curve):
    flux = curve.flux.copy()
    flux[7] = np.nan
    broken = dataclasses.replace(curve, flux=flux)
    with pytest.raises(InvalidLightCurveError, match=r"flux\[0, 7\] \(event sim\) is nan"):
        classify_event(tiny_model(), broken)


def test_times_in_years_and_long_or_noisy_curves_warn_once_each(curve):
    model = tiny_model(dt_min=0.05, dt_max=30.0)  # a survey's intervals, in days
    years = dataclasses.replace(curve, times=curve.times / 365.25 / 50)  # every interval tiny
    with pytest.warns(TrainingRangeWarning, match=r"all of them: are the times in days") as got:
        classify_event(model, years)
    assert len(got) == 1
    model.dataset_manifest = {"max_observations": 200}
    model.normalization = Normalization(dt_min=0.0, dt_max=math.inf, err_mean=math.log(0.02),
                                        err_std=0.1)
    noisy = dataclasses.replace(curve, flux_err=curve.flux_err * 5)
    with pytest.warns(TrainingRangeWarning) as got:
        classify_event(model, noisy)
    assert len(got) == 1
    message = str(got[0].message)
    assert f"{N_POINTS} observations, beyond the longest training curve (200)" in message
    assert "median relative error 0.1 lies" in message and "baseline-flux units" in message
    model.dataset_manifest = {"max_observations": 1000}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # inside the range: no warning at all
        classify_event(model, curve)


def test_the_features_kind_goes_through_the_same_checks_and_range(curve):
    from test_contract_properties import tiny_features_model

    model = tiny_features_model()
    model.dataset_manifest = {"max_observations": 100}
    with pytest.warns(TrainingRangeWarning, match=r"300 observations, beyond the longest "
                                                  r"training curve \(100\)") as got:
        result = classify_event(model, cut(curve, N_POINTS))
    assert len(got) == 1
    proba = np.asarray(result["probabilities"])
    np.testing.assert_allclose(proba[: N_POINTS // 2 - 1], 1 / 3, atol=1e-6)  # before the first
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert result["outside_training_intervals"]["count"] is None  # no interval range to leave
    reversed_times = dataclasses.replace(curve, times=curve.times[::-1].copy())
    with pytest.raises(InvalidLightCurveError, match=r"times\[0, 1\]=.* \(event sim\)"):
        classify_event(model, reversed_times)
