"""The causal sliding-window transformer: causality, window, pooling, normalisation, persistence."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from microlens.model import (
    IntervalRangeWarning,
    MicrolensTransformer,
    ModelConfig,
    Normalization,
    final_logits,
    load_model,
    window_mask,
)

SMALL = ModelConfig(d_model=32, n_heads=4, n_layers=3, d_ff=64, window=8, dropout=0.0)


def synthetic_events(batch=4, n=120, seed=0, spike=True):
    """Light curves with irregular times, a Paczynski-like bump and (optionally) a spike."""
    g = torch.Generator().manual_seed(seed)
    times = torch.cumsum(torch.rand(batch, n, generator=g, dtype=torch.float64) * 0.4 + 0.02, 1)
    t0 = times[:, n // 2 : n // 2 + 1]
    bump = 1 + 3 / (1 + ((times - t0) / 2.0) ** 2)
    flux = bump + 0.05 * torch.randn(batch, n, generator=g, dtype=torch.float64)
    if spike:
        flux[:, n // 2 + 5] += 400.0  # a caustic-crossing-like spike
    flux_err = 0.05 * torch.sqrt(bump)
    return times.float(), flux.float(), flux_err.float()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    times, flux, err = synthetic_events(8, 150, seed=1)
    norm = Normalization.fit(times, flux, err, torch.ones_like(times, dtype=torch.bool))
    return MicrolensTransformer(SMALL, norm).eval()


def test_default_size_is_about_point_eight_million_parameters():
    n = MicrolensTransformer(ModelConfig()).n_parameters
    assert 0.75e6 < n < 0.9e6, n


def test_predictions_are_causal(model):
    times, flux, err = synthetic_events(3, 100, seed=2)
    k = 57
    before = model(times, flux, err)["logits"]
    changed_flux, changed_err = flux.clone(), err.clone()
    changed_flux[:, k + 1 :] += torch.randn(3, 100 - k - 1) * 5
    changed_err[:, k + 1 :] *= 3
    later_times = times.clone()
    later_times[:, k + 1 :] += 7.0
    after = model(later_times, changed_flux, changed_err)["logits"]
    assert torch.equal(after[:, : k + 1], before[:, : k + 1])
    assert not torch.allclose(after[:, k + 1 :], before[:, k + 1 :])  # the change is seen later


def test_encoder_sees_only_window_times_layers_back(model):
    times, flux, err = synthetic_events(2, 150, seed=3, spike=False)
    reach = SMALL.n_layers * (SMALL.window - 1)  # receptive field of the encoder
    k = 140
    j = k - reach - 1  # just outside (after the reference points, which set every feature)
    assert j >= model.normalization.reference_points
    norm = model.normalization
    states, _ = model.encode(norm.features(times, flux, err))
    moved = flux.clone()
    moved[:, j] += 10.0
    states_far, _ = model.encode(norm.features(times, moved, err))
    assert torch.equal(states_far[:, k], states[:, k])
    assert not torch.allclose(states_far[:, j], states[:, j])
    inside = flux.clone()
    inside[:, j + 1] += 10.0  # one step closer: inside the receptive field
    states_near, _ = model.encode(norm.features(times, inside, err))
    assert not torch.allclose(states_near[:, k], states[:, k])


def test_attention_weights_live_in_the_causal_window(model):
    times, flux, err = synthetic_events(2, 40, seed=4)
    out = model(times, flux, err, return_attention=True, return_embedding=True)
    assert len(out["attention"]) == SMALL.n_layers
    weights = out["attention"][0]
    assert weights.shape == (2, SMALL.n_heads, 40, SMALL.window)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, SMALL.n_heads, 40))
    # observation k < window - 1 has only k + 1 observations to look at
    for k in range(SMALL.window - 1):
        assert torch.all(weights[:, :, k, : SMALL.window - 1 - k] == 0)
    assert out["embedding"].shape == (2, 40, 2 * SMALL.d_model)
    # the explicit path that returns weights gives the same logits as the fused kernel
    torch.testing.assert_close(out["logits"], model(times, flux, err)["logits"], atol=1e-5,
                               rtol=1e-5)


def test_attention_matches_a_dense_masked_reference():
    torch.manual_seed(1)
    cfg = ModelConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32, window=4, dropout=0.0)
    net = MicrolensTransformer(cfg).eval()
    attn = net.blocks[0].attention
    z = torch.randn(3, 12, 16)
    z.requires_grad_(True)
    y, _ = attn(z, window_mask(3, 3, 4))  # training path (concatenated blocks)
    with torch.no_grad():
        y_view, _ = attn(z, window_mask(3, 3, 4))  # inference path (strided view)
    torch.testing.assert_close(y_view, y.detach())
    q = attn.query(z).view(3, 12, 2, 8).transpose(1, 2)
    k, v = attn.key_value(z).view(3, 12, 2, 2, 8).permute(2, 0, 3, 1, 4)
    i, j = torch.arange(12)[:, None], torch.arange(12)[None, :]
    allowed = (j <= i) & (j > i - 4)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(8)
    dense = scores.masked_fill(~allowed, float("-inf")).softmax(-1) @ v
    expected = attn.out(dense.transpose(1, 2).reshape(3, 12, 16))
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
    # chunked inference gives the same numbers as one pass
    times, flux, err = synthetic_events(5, 40, seed=10)
    with torch.no_grad():
        whole = net(times, flux, err)["logits"]
    torch.testing.assert_close(net.predict_logits(times, flux, err, chunk_observations=80), whole)


def test_padding_at_the_end_does_not_change_valid_predictions(model):
    times, flux, err = synthetic_events(1, 70, seed=5)
    alone = model(times, flux, err)["logits"]
    pad = 45
    padded = [torch.cat([a, torch.zeros(1, pad)], 1) for a in (times, flux, err)]
    mask = torch.cat([torch.ones(1, 70, dtype=torch.bool), torch.zeros(1, pad, dtype=torch.bool)],
                     1)
    together = model(*padded, mask)["logits"]
    torch.testing.assert_close(together[:, :70], alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(final_logits(together, mask), alone[:, -1])
    bad_mask = mask.clone()
    bad_mask[0, 0] = False
    with pytest.raises(ValueError, match="valid observations first"):
        model(*padded, bad_mask)


def test_pooling_is_running_mean_and_max():
    states = torch.tensor([[[1.0, -2.0], [3.0, -4.0], [-5.0, 0.0]]])
    pooled = MicrolensTransformer.pool(states)
    expected_mean = torch.tensor([[[1.0, -2.0], [2.0, -3.0], [-1 / 3, -2.0]]])
    expected_max = torch.tensor([[[1.0, -2.0], [3.0, -2.0], [3.0, 0.0]]])
    torch.testing.assert_close(pooled, torch.cat([expected_mean, expected_max], -1))


def test_normalisation_keeps_the_peak_and_is_causal():
    times, flux, err = synthetic_events(2, 120, seed=6)
    norm = Normalization.fit(times, flux, err, torch.ones_like(times, dtype=torch.bool))
    feats = norm.features(times, flux, err)
    peak = 120 // 2 + 5
    x_flux = feats[..., 0]
    # asinh keeps order and does not saturate: the spike stays the largest, far above the bump
    assert torch.all(x_flux.argmax(1) == peak)
    assert torch.all(x_flux[:, peak] > x_flux[:, peak - 3] + 3)
    base, scale = norm.reference(flux, err)
    r = norm.reference_points
    torch.testing.assert_close(base[:, r:], base[:, r - 1 : r].expand(-1, 120 - r))
    assert torch.equal(base[:, 0], flux[:, 0]) and torch.equal(scale[:, 2], err[:, :3].median(1)[0])
    # features of observation k depend on observations up to k only
    changed = flux.clone()
    changed[:, 10:] *= 2
    torch.testing.assert_close(norm.features(times, changed, err)[:, :10], feats[:, :10])
    assert torch.isfinite(feats).all()


def test_normalisation_json_round_trip_and_interval_warning(tmp_path):
    times, flux, err = synthetic_events(3, 50, seed=7)
    mask = torch.ones_like(times, dtype=torch.bool)
    norm = Normalization.fit(times, flux, err, mask)
    path = norm.save(tmp_path / "normalization.json")
    assert Normalization.load(path) == norm
    json.loads(path.read_text())  # plain JSON, not pickle
    dt = (times[:, 1:] - times[:, :-1]).double()
    assert norm.dt_min == pytest.approx(float(dt.min()), rel=1e-6)
    assert norm.dt_max == pytest.approx(float(dt.max()), rel=1e-6)
    with pytest.warns(IntervalRangeWarning, match="outside the training range"):
        norm.check_intervals(times * 10, mask)
    with pytest.raises(ValueError, match="unknown Normalization settings"):
        Normalization.from_dict({**norm.to_dict(), "bogus": 1})


def test_bad_configs_name_the_problem():
    with pytest.raises(ValueError, match="d_model=100 is not divisible by n_heads=8"):
        ModelConfig(d_model=100)
    with pytest.raises(ValueError, match="window must be a positive integer"):
        ModelConfig(window=0)
    with pytest.raises(ValueError, match="dropout"):
        ModelConfig(dropout=1.5)
    with pytest.raises(ValueError, match=r"unknown ModelConfig settings \['layers'\]"):
        ModelConfig.from_dict({"layers": 3})


def test_temperature_calibrates_probabilities_and_persists(model, tmp_path):
    times, flux, err = synthetic_events(2, 30, seed=8)
    model.temperature.fill_(2.5)
    try:
        logits = model(times, flux, err)["logits"]
        probs = model.predict_proba(times, flux, err)
        torch.testing.assert_close(probs, (logits / 2.5).softmax(-1))
        raw = model.predict_proba(times, flux, err, calibrated=False)
        # a temperature above 1 pulls probabilities towards uniform
        assert (raw - 1 / 3).abs().max() > 2 * (probs - 1 / 3).abs().max()
        run = tmp_path / "run"
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"model": SMALL.to_dict()}))
        model.normalization.save(run / "normalization.json")
        torch.save(model.state_dict(), run / "best.pt")
        loaded = load_model(run)
        assert float(loaded.temperature) == 2.5
        torch.testing.assert_close(loaded.predict_proba(times, flux, err), probs)
    finally:
        model.temperature.fill_(1.0)
    with pytest.raises(ValueError, match="unknown checkpoint 'worst'; valid: best, last"):
        load_model(run, which="worst")
    with pytest.raises(FileNotFoundError, match="last.pt is missing"):
        load_model(run, which="last")


def test_runs_in_bfloat16_autocast(model):
    times, flux, err = synthetic_events(2, 64, seed=9)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(times, flux, err)["logits"]
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    with torch.no_grad():
        reference = model(times, flux, err)["logits"]
    assert np.corrcoef(logits.flatten().numpy(), reference.flatten().numpy())[0, 1] > 0.99
