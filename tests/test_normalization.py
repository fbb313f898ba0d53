"""The causal baseline reference: "first" (today's) and "robust" (block levels), its stream and
its measurement (microlens.evaluation.analysis.baseline)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from microlens.evaluation.analysis.baseline import baseline_error_summary, baseline_errors
from microlens.models.config import ModelConfig
from microlens.models.inputs import Normalization
from microlens.models.stream import StreamingClassifier
from microlens.models.transformer import MicrolensTransformer
from microlens.training.train import TrainConfig

R = 10
SIGMA = 0.02
SMALL = ModelConfig(d_model=32, n_heads=4, n_layers=2, d_ff=64, window=8, dropout=0.0)


# One thread: batch and stream sum in the same order, and the runs are quicker on shared cores.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def decaying_events(batch=4, n=200, seed=0):
    """Events already in progress at their first observation (a decaying excess of 10 sigma),
    then flat at the true baseline 1, with Gaussian noise SIGMA; float32 like the store."""
    g = torch.Generator().manual_seed(seed)
    times = torch.cumsum(torch.full((batch, n), 0.5, dtype=torch.float64), dim=1)
    excess = 10 * SIGMA * torch.exp(-times / 8.0)
    flux = 1 + excess + SIGMA * torch.randn(batch, n, generator=g, dtype=torch.float64)
    err = torch.full((batch, n), SIGMA, dtype=torch.float64)
    return times.float(), flux.float(), err.float()


def robust(**kw) -> Normalization:
    return Normalization(reference_points=R, baseline_method="robust", **kw)


def test_default_is_first_and_old_files_load_as_first(tmp_path):
    assert Normalization().baseline_method == "first"
    saved = Normalization(reference_points=R).to_dict()
    for name in ("baseline_method", "baseline_tolerance"):  # a file from before the option
        saved.pop(name)
    (tmp_path / "normalization.json").write_text(json.dumps(saved))
    loaded = Normalization.load(tmp_path / "normalization.json")
    assert loaded.baseline_method == "first"
    # ... and the option round-trips
    robust().save(tmp_path / "robust.json")
    assert Normalization.load(tmp_path / "robust.json") == robust()


def test_robust_equals_first_until_the_second_block_ends():
    _, flux, err = decaying_events()
    first_b, first_s = Normalization(reference_points=R).reference(flux, err)
    b, s = robust().reference(flux, err)
    assert torch.equal(b[:, : 2 * R - 1], first_b[:, : 2 * R - 1])
    assert torch.equal(s[:, : 2 * R - 1], first_s[:, : 2 * R - 1])
    # "first" never moves after the reference points
    assert torch.equal(first_b[:, R:], first_b[:, R - 1 : R].expand(-1, flux.shape[1] - R))


def test_robust_baseline_is_not_fooled_by_an_event_in_progress():
    _, flux, err = decaying_events(batch=8, n=400)
    first_b, _ = Normalization(reference_points=R).reference(flux, err)
    b, s = robust().reference(flux, err)
    first_error = (first_b[:, -1].double() - 1).abs() / SIGMA
    robust_error = (b[:, -1].double() - 1).abs() / SIGMA
    # the first 10 points sit ~7 sigma high on average (10 sigma decaying over 5 days)
    assert first_error.min() > 4
    # the robust level averages ~30 flat blocks of 10 (standard error ~0.07 sigma); a block
    # that noise puts > 2 combined errors low restarts the level from that block (~1 sigma low)
    # and the level recovers only as later blocks join it, so single events can stay ~1 sigma off
    assert robust_error.median() < 0.3
    assert robust_error.max() < 1.5
    assert torch.allclose(s[:, -1], torch.full_like(s[:, -1], SIGMA))


def test_robust_baseline_is_causal():
    _, flux, err = decaying_events(batch=3, n=120)
    norm = robust()
    b, s = norm.reference(flux, err)
    g = torch.Generator().manual_seed(5)
    for k in (0, R - 2, R - 1, 2 * R - 1, 37, 80, 118):
        changed = flux.clone()
        changed[:, k + 1 :] += 5 * torch.rand(3, 120 - k - 1, generator=g)
        b2, s2 = norm.reference(changed, err)
        assert torch.equal(b2[:, : k + 1], b[:, : k + 1]), k
        assert torch.equal(s2[:, : k + 1], s[:, : k + 1]), k
        if k + 1 < 120 - R:  # and a later block that ended does see the change
            assert not torch.equal(b2, b)


def test_stream_reference_equals_batch_reference_exactly():
    _, flux, err = decaying_events(batch=3, n=95)
    for norm in (robust(), Normalization(reference_points=R)):
        b, s = norm.reference(flux, err)
        ref_flux = torch.full((3, R), float("nan"))
        ref_err = torch.full((3, R), float("nan"))
        state = torch.zeros(3, 4, dtype=torch.float64)
        for k in range(flux.shape[1]):
            n_seen = torch.full((3,), k, dtype=torch.int64)
            base, scale = norm.stream_reference(ref_flux, ref_err, state, n_seen, flux[:, k],
                                                err[:, k])
            assert torch.equal(base, b[:, k]) and torch.equal(scale, s[:, k]), (norm, k)


def _robust_model():
    times, flux, err = decaying_events(batch=4, n=130, seed=1)
    mask = torch.arange(130)[None, :] < torch.tensor([130, 97, 61, 115])[:, None]
    norm = Normalization.fit(times, flux, err, mask, reference_points=R,
                             baseline_method="robust")
    assert norm.baseline_method == "robust"
    torch.manual_seed(0)
    model = MicrolensTransformer(SMALL, norm)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return model.eval(), (times, flux, err, mask)


def test_stream_equals_batch_with_the_robust_baseline():
    model, (times, flux, err, mask) = _robust_model()
    batch = model.predict_proba(times, flux, err, mask)
    stream = StreamingClassifier(model, n_events=4)
    worst = 0.0
    for k in range(times.shape[1]):
        events = [i for i in range(4) if mask[i, k]]
        probs = stream.update(times[events, k], flux[events, k], err[events, k], events=events)
        worst = max(worst, float((probs - batch[events, k]).abs().max()))
    assert worst < 1e-5
    assert stream.state_tensors()["baseline_state"].shape == (4, 4)
    # a reset slot starts again from nothing: the same numbers as a fresh stream
    stream.reset([1])
    fresh = StreamingClassifier(model, n_events=1)
    for k in range(45):
        a = stream.update(times[1, k], flux[1, k], err[1, k], events=[1])
        b = fresh.update(times[1, k], flux[1, k], err[1, k])
        assert torch.equal(a, b)


def test_robust_baseline_changes_the_features_that_first_gives():
    model, (times, flux, err, mask) = _robust_model()
    first = dataclasses.replace(model.normalization, baseline_method="first")
    f_robust = model.normalization.features(times, flux, err, mask)
    f_first = first.features(times, flux, err, mask)
    assert torch.equal(f_robust[:, : 2 * R - 1], f_first[:, : 2 * R - 1])
    assert (f_robust[:, 2 * R :, 0] - f_first[:, 2 * R :, 0]).abs().max() > 1.0


@pytest.mark.parametrize("kwargs, message", [
    ({"baseline_method": "lowest"}, "unknown Normalization.baseline_method 'lowest'; valid: "
                                    "first, robust"),
    ({"baseline_tolerance": 0.0}, "baseline_tolerance must be a positive number, got 0.0"),
    ({"baseline_tolerance": float("nan")}, "baseline_tolerance must be a positive number"),
])
def test_bad_baseline_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        Normalization(**kwargs)


def test_train_config_takes_the_baseline_method():
    assert TrainConfig().baseline_method == "robust"
    assert TrainConfig(baseline_method="first").baseline_method == "first"
    with pytest.raises(ValueError, match="unknown baseline_method 'median'; valid: first, robust"):
        TrainConfig(baseline_method="median")


def test_a_config_saved_before_the_new_fields_loads_as_it_ran_then(tmp_path):
    """Fields a saved config lacks take the behaviour of the time it was written, not today's
    defaults: the first-points baseline, one temperature, physical labels, no stem."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"train": {"dataset": "data/x", "epochs": 3,
                                          "model": {"d_model": 32, "n_heads": 4}}}))
    config = TrainConfig.load(path)
    assert (config.baseline_method, config.temperature_fit, config.label_policy) == (
        "first", "final", "physical")
    assert config.epochs == 3 and config.model.d_model == 32
    assert (config.model.conv_stem_kernel, config.model.pool_norm,
            config.model.time_encoding) == (0, True, "none")
    # a config that names them keeps them
    path.write_text(json.dumps({"train": {**config.to_dict(), "baseline_method": "robust"}}))
    assert TrainConfig.load(path).baseline_method == "robust"


def test_baseline_error_measurement_on_a_constructed_case():
    n, sigma = 100, np.array([0.01, 0.02])
    flux = np.ones((2, n), np.float32)
    flux[:, :R] += (3 * sigma)[:, None]  # the first block 3 sigma high, the rest exact
    err = np.ones((2, n), np.float32) * sigma[:, None]
    mask = np.ones((2, n), bool)
    mask[1, 80:] = False
    first = baseline_errors(Normalization(reference_points=R), flux, err, mask, sigma)
    for name in ("at_reference", "at_10pct", "at_50pct", "final", "mean"):
        np.testing.assert_allclose(first[name], 3.0, rtol=1e-5)
    better = baseline_errors(robust(), flux, err, mask, sigma)
    np.testing.assert_allclose(better["at_reference"], 3.0, rtol=1e-5)
    np.testing.assert_allclose(better["final"], 0.0, atol=1e-4)
    # mean over observations R-1 .. end: R observations at 3 sigma (R-1 .. 2R-2), then 0
    np.testing.assert_allclose(better["mean"], [3.0 * R / (n - R + 1), 3.0 * R / (80 - R + 1)],
                               rtol=1e-5)
    summary = baseline_error_summary(first)
    assert summary["final"]["p50"] == pytest.approx(3.0, rel=1e-5)
    assert summary["final"]["above_2sigma"] == 1.0
    assert baseline_error_summary(better)["final"]["above_1sigma"] == 0.0
    with pytest.raises(ValueError, match="sigma must hold one positive finite noise per event"):
        baseline_errors(robust(), flux, err, mask, np.array([0.01, 0.0]))
