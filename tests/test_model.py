"""The causal sliding-window transformer: causality, window, pooling, normalisation, persistence."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from helpers import spiked_events, spread_weights

from microlens.models.base import final_logits
from microlens.models.config import SAVED_BEFORE_FIELD, ModelConfig
from microlens.models.inputs import IntervalRangeWarning, Normalization
from microlens.models.layers import window_mask
from microlens.models.registry import load_model
from microlens.models.transformer import MicrolensTransformer

# a short stem (receptive field 1 + 2 * (1 + 2) = 7 observations) keeps reach tests small
SMALL = ModelConfig(d_model=32, n_heads=4, n_layers=3, d_ff=64, window=8, dropout=0.0,
                    conv_stem_kernel=3, conv_stem_layers=2)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    times, flux, err = spiked_events(8, 150, seed=1)
    norm = Normalization.fit(times, flux, err, torch.ones_like(times, dtype=torch.bool))
    return MicrolensTransformer(SMALL, norm).eval()


def test_default_size_is_the_thesis_transformer_plus_the_convolution_stem():
    """The attention encoder keeps the thesis size (about 0.8 M at d_model 128, 4 layers, 8
    heads); the default stem (6 dilated layers, kernel 5) adds 6 x (128 x 128 x 5 + 128)."""
    default = ModelConfig()
    assert (default.d_model, default.n_layers, default.n_heads) == (128, 4, 8)
    without_stem = MicrolensTransformer(ModelConfig(conv_stem_kernel=0)).n_parameters
    assert 0.75e6 < without_stem < 0.9e6, without_stem
    stem = default.conv_stem_layers * (128 * 128 * default.conv_stem_kernel + 128)
    assert MicrolensTransformer(default).n_parameters == without_stem + stem


def test_predictions_are_causal(model):
    times, flux, err = spiked_events(3, 100, seed=2)
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
    times, flux, err = spiked_events(2, 150, seed=3, spikes="none")
    # receptive field of the encoder: the stem's, then window - 1 more per attention layer
    reach = model.stem.receptive_field - 1 + SMALL.n_layers * (SMALL.window - 1)
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
    times, flux, err = spiked_events(2, 40, seed=4)
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
    times, flux, err = spiked_events(5, 40, seed=10)
    with torch.no_grad():
        whole = net(times, flux, err)["logits"]
    torch.testing.assert_close(net.predict_logits(times, flux, err, chunk_observations=80), whole)


def test_padding_at_the_end_does_not_change_valid_predictions(model):
    times, flux, err = spiked_events(1, 70, seed=5)
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
    times, flux, err = spiked_events(2, 120, seed=6)
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
    times, flux, err = spiked_events(3, 50, seed=7)
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
    times, flux, err = spiked_events(2, 30, seed=8)
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
    times, flux, err = spiked_events(2, 64, seed=9)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(times, flux, err)["logits"]
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    with torch.no_grad():
        reference = model(times, flux, err)["logits"]
    assert np.corrcoef(logits.flatten().numpy(), reference.flatten().numpy())[0, 1] > 0.99


# --------------------------------------------------------------------------------------------
# Order and time inside the window: rotary time encoding and the causal convolution stem
# --------------------------------------------------------------------------------------------

ENCODERS = {
    "before": dict(SAVED_BEFORE_FIELD),  # attention only: no order inside the window
    "rotary": {**SAVED_BEFORE_FIELD, "time_encoding": "rotary"},
    "stem": {**SAVED_BEFORE_FIELD, "conv_stem_kernel": 5},
    "rotary+stem": {**SAVED_BEFORE_FIELD, "time_encoding": "rotary", "conv_stem_kernel": 5},
    "rotary+dilated stem": {"time_encoding": "rotary", "conv_stem_kernel": 3,
                            "conv_stem_layers": 3, "pool_norm": False},
}


def _randomised(config, normalization, seed=0):
    """A model whose weights are spread beyond the small initialisation, so every part shows."""
    torch.manual_seed(seed)
    return spread_weights(MicrolensTransformer(config, normalization))


@pytest.fixture(scope="module", params=list(ENCODERS))
def encoder_model(request):
    times, flux, err = spiked_events(8, 150, seed=1)
    norm = Normalization.fit(times, flux, err, torch.ones_like(times, dtype=torch.bool))
    config = ModelConfig(**{**SMALL.to_dict(), **ENCODERS[request.param]})
    return request.param, _randomised(config, norm)


def test_every_encoder_option_is_causal(encoder_model):
    name, net = encoder_model
    times, flux, err = spiked_events(3, 100, seed=2)
    times = times.double() + 100.0
    k = 57
    with torch.no_grad():
        before = net(times, flux, err)["logits"]
        changed_flux, later_times = flux.clone(), times.clone()
        changed_flux[:, k + 1 :] += torch.randn(3, 100 - k - 1) * 5
        later_times[:, k + 1 :] += 7.0
        after = net(later_times, changed_flux, err)["logits"]
    assert torch.equal(after[:, : k + 1], before[:, : k + 1]), name
    assert not torch.allclose(after[:, k + 1 :], before[:, k + 1 :])


def test_every_encoder_option_ignores_a_constant_added_to_all_times(encoder_model):
    """Julian dates (2,450,000 + days) give the numbers of days since any origin: the rotary
    angles come from times relative to the event's first observation, in float64."""
    name, net = encoder_model
    times, flux, err = spiked_events(3, 100, seed=11)
    times = times.double()
    mask = torch.arange(100)[None, :] < torch.tensor([[100], [80], [53]])
    with torch.no_grad():
        near = net(times, flux, err, mask)["logits"]
        far = net(times + 2_450_000.0, flux, err, mask)["logits"]
    assert not torch.allclose(near, near.mean(dim=1, keepdim=True))  # the outputs move
    torch.testing.assert_close(far[mask], near[mask], atol=1e-5, rtol=1e-5, msg=name)


def _swap_effect(config):
    """Largest change of the one-layer encoder state at observation ``k`` when the fluxes of
    two evenly spaced observations ``i < j < k`` inside its window (past the reference points)
    are swapped; also the change at ``i`` itself, which shows the swap is real."""
    n, i, j, k = 48, 26, 31, 40
    times = (torch.arange(n, dtype=torch.float64) * 0.5 + 3.0)[None].expand(2, n)
    g = torch.Generator().manual_seed(5)
    flux = 1.0 + torch.rand(2, n, generator=g)
    flux[:, i], flux[:, j] = 4.0, 2.0  # distinct values, a rise then a fall
    err = torch.full((2, n), 0.05)
    norm = Normalization.fit(times, flux, err, torch.ones(2, n, dtype=torch.bool))
    assert i >= norm.reference_points and k - config.window < i  # both inside k's window
    net = _randomised(config, norm)
    swapped = flux.clone()
    swapped[:, [i, j]] = flux[:, [j, i]]
    with torch.no_grad():
        states = [net.encode(norm.features(times, f, err), times=times)[0] for f in (flux, swapped)]
    return ((states[1][:, k] - states[0][:, k]).abs().max().item(),
            (states[1][:, i] - states[0][:, i]).abs().max().item())


@pytest.mark.parametrize("name", list(ENCODERS))
def test_swapping_two_observations_in_the_window_changes_the_state(name):
    """The attention-only encoder (before the stem) sees its window as a bag of tokens: at an
    even cadence two observations
    with their fluxes swapped are the same set, and the state at a later observation whose
    window holds both changes by float rounding only (measured: ~1e-7). Rotary time and the
    convolution stem must both make the order visible."""
    config = ModelConfig(d_model=32, n_heads=4, n_layers=1, d_ff=64, window=16, dropout=0.0,
                         **ENCODERS[name])
    at_k, at_i = _swap_effect(config)
    assert at_i > 1e-2  # the swapped observation's own state changes under every option
    if name == "before":
        assert at_k < 1e-6
    else:
        assert at_k > 1e-3, (name, at_k)


@pytest.mark.parametrize("name", ["rotary", "rotary+stem"])
def test_rotary_attention_matches_a_dense_reference(name):
    """Block attention with rotated queries and keys equals dense masked attention whose
    scores use q_k R(t_k) . k_j R(t_j), in the training and the inference paths."""
    torch.manual_seed(1)
    cfg = ModelConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32, window=4, dropout=0.0,
                      **ENCODERS[name])
    net = _randomised(cfg, Normalization(), seed=1)
    attn = net.blocks[0].attention
    times = torch.cumsum(torch.rand(3, 12, dtype=torch.float64) * 3, dim=1) + 50.0
    rotary = net.rotary_angles(times, None, 12)
    z = torch.randn(3, 12, 16, requires_grad=True)
    y, _ = attn(z, window_mask(3, 3, 4), rotary=rotary)
    with torch.no_grad():
        y_view, _ = attn(z, window_mask(3, 3, 4), rotary=rotary)
    torch.testing.assert_close(y_view, y.detach())
    relative = (times - times[:, :1])[..., None]
    angle = 2 * math.pi * relative / torch.logspace(-1, 3, 4, dtype=torch.float64)
    cos, sin = angle.cos().float()[:, None], angle.sin().float()[:, None]  # (3, 1, 12, 4)

    def rotate(x):
        return torch.cat([x[..., :4] * cos - x[..., 4:] * sin,
                          x[..., :4] * sin + x[..., 4:] * cos], dim=-1)

    q = rotate(attn.query(z).view(3, 12, 2, 8).transpose(1, 2))
    k, v = attn.key_value(z).view(3, 12, 2, 2, 8).permute(2, 0, 3, 1, 4)
    k = rotate(k)
    i, j = torch.arange(12)[:, None], torch.arange(12)[None, :]
    allowed = (j <= i) & (j > i - 4)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(8)
    dense = scores.masked_fill(~allowed, float("-inf")).softmax(-1) @ v
    expected = attn.out(dense.transpose(1, 2).reshape(3, 12, 16))
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
    # and the rotation matters: without it the same block gives other numbers
    plain, _ = attn(z, window_mask(3, 3, 4))
    assert (plain - y).abs().max() > 1e-3


def test_checkpoints_from_before_the_encoder_options_load_unchanged(tmp_path):
    """A config.json without the new fields and weights without a stem: the same model."""
    old_keys = {"d_model", "n_heads", "n_layers", "d_ff", "window", "dropout", "n_classes"}
    old_config = {key: value for key, value in SMALL.to_dict().items() if key in old_keys}
    assert len(old_config) < len(SMALL.to_dict())  # the new fields really are missing
    # what the model was then, whatever today's defaults are
    legacy = ModelConfig(**{**old_config, **SAVED_BEFORE_FIELD})
    times, flux, err = spiked_events(2, 40, seed=12)
    norm = Normalization.fit(times, flux, err, torch.ones_like(times, dtype=torch.bool))
    net = _randomised(legacy, norm)
    state = net.state_dict()
    assert not any(key.startswith("stem") for key in state)  # nothing new in the weights
    run = tmp_path / "old"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": old_config}))
    norm.save(run / "normalization.json")
    torch.save(state, run / "best.pt")
    loaded = load_model(run)
    assert loaded.config == legacy and loaded.config.time_encoding == "none"
    assert loaded.config.pool_norm and loaded.config.conv_stem_kernel == 0
    with torch.no_grad():
        torch.testing.assert_close(loaded(times, flux, err)["logits"],
                                   net(times, flux, err)["logits"], atol=0, rtol=0)
    # a model with both options round-trips too
    both = ModelConfig(**{**SMALL.to_dict(), **ENCODERS["rotary+stem"]})
    net = _randomised(both, norm)
    (run / "config.json").write_text(json.dumps({"model": both.to_dict()}))
    torch.save(net.state_dict(), run / "best.pt")
    loaded = load_model(run)
    assert loaded.config == both
    with torch.no_grad():
        torch.testing.assert_close(loaded(times, flux, err)["logits"],
                                   net(times, flux, err)["logits"], atol=0, rtol=0)


def test_the_options_add_what_they_say():
    plain = {"time_encoding": "none", "conv_stem_kernel": 0}
    base = MicrolensTransformer(ModelConfig(**plain)).n_parameters
    assert MicrolensTransformer(ModelConfig(time_encoding="rotary")).n_parameters == (
        MicrolensTransformer(ModelConfig(time_encoding="none")).n_parameters)
    d, kernel = 128, 7
    for layers in (1, 3):
        with_stem = MicrolensTransformer(ModelConfig(
            time_encoding="none", conv_stem_kernel=kernel, conv_stem_layers=layers)).n_parameters
        assert with_stem - base == layers * (d * d * kernel + d)  # Conv1d(d, d, kernel) + bias
    # pool_norm only decides whether two LayerNorms (2 * (d + 2d) numbers) are there
    with_norm = MicrolensTransformer(ModelConfig(**plain, pool_norm=True)).n_parameters
    without = MicrolensTransformer(ModelConfig(**plain, pool_norm=False)).n_parameters
    assert with_norm - without == 2 * d + 4 * d


def test_the_dilated_stem_reads_exactly_its_receptive_field():
    """Layer i reads its inputs 2**i apart: the output at k depends on observations
    k - receptive_field + 1 .. k and on none before."""
    config = ModelConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32, window=4, dropout=0.0,
                         conv_stem_kernel=3, conv_stem_layers=3)
    stem = MicrolensTransformer(config).stem
    assert stem.receptive_field == 1 + 2 * (1 + 2 + 4) == 15
    assert stem.history_lengths == (2, 4, 8)
    x = torch.randn(1, 40, 16, requires_grad=True)
    k = 30
    stem(x)[0, k].sum().backward()
    reached = x.grad[0].abs().sum(dim=1) > 0
    assert reached[k - 14: k + 1].all() and not reached[: k - 14].any()
    assert not reached[k + 1:].any()  # causal


def test_bad_encoder_options_name_the_value_and_the_choices():
    with pytest.raises(ValueError, match="unknown ModelConfig.time_encoding 'alibi'; valid: "
                                         "none, rotary"):
        ModelConfig(time_encoding="alibi")
    with pytest.raises(ValueError, match="even head dimension, got d_model / n_heads = 3"):
        ModelConfig(d_model=24, n_heads=8, time_encoding="rotary")
    with pytest.raises(ValueError, match="rotary_min_period must be a positive finite number "
                                         "of days, got 0"):
        ModelConfig(rotary_min_period=0)
    with pytest.raises(ValueError, match="rotary_min_period=10.0 exceeds rotary_max_period=1.0"):
        ModelConfig(rotary_min_period=10.0, rotary_max_period=1.0)
    with pytest.raises(ValueError, match="conv_stem_layers must be an integer from 1 to 12, "
                                         "got 0"):
        ModelConfig(conv_stem_layers=0)
    with pytest.raises(ValueError, match="pool_norm must be True or False, got 'no'"):
        ModelConfig(pool_norm="no")
    with pytest.raises(ValueError, match="conv_stem_kernel must be a non-negative integer "
                                         r"\(0: no stem\), got -1"):
        ModelConfig(conv_stem_kernel=-1)
    net = MicrolensTransformer(ModelConfig(d_model=16, n_heads=2, n_layers=1, d_ff=16,
                                           window=4, time_encoding="rotary"))
    with pytest.raises(ValueError, match="time_encoding='rotary' needs the observation times"):
        net.encode(torch.zeros(1, 5, 3))
