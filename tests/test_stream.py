"""The streaming classifier: the same numbers as the batch model, at a fixed-size state."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from helpers import spiked_events

from microlens.models.config import ModelConfig
from microlens.models.inputs import IntervalRangeWarning, Normalization
from microlens.models.stream import StreamingClassifier, stream_latency
from microlens.models.transformer import MicrolensTransformer

SMALL = ModelConfig(d_model=32, n_heads=4, n_layers=2, d_ff=64, window=8, dropout=0.1)
DEFAULT_WINDOW = ModelConfig(dropout=0.1)  # the default architecture, window 64
TEMPERATURE = 1.7
ATOL = 1e-5


LENGTHS = [120, 97, 130, 61]  # all longer than window * layers = 16 for SMALL, but unequal


def _events():
    times, flux, err = spiked_events(len(LENGTHS), max(LENGTHS), seed=3, spikes="varied")
    mask = torch.arange(max(LENGTHS))[None, :] < torch.tensor(LENGTHS)[:, None]
    return times, flux, err, mask


def _model(config, reference_points):
    torch.manual_seed(0)
    times, flux, err, mask = _events()
    norm = Normalization.fit(times, flux, err, mask, reference_points=reference_points)
    assert norm.err_mean != 0.0 and norm.log_dt_mean != 0.0  # non-trivial standardisation
    model = MicrolensTransformer(config, norm)
    # Randomise the weights (LayerNorm gains, zero biases too) so that every part matters, by
    # little enough that the probabilities still move instead of saturating at 0 or 1.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.temperature.fill_(TEMPERATURE)
    return model.eval()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Single-token steps are far too small to share out; on a loaded 2-core machine a second
    intra-op thread only adds waits (observed: 200 ms per update instead of 1 ms)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def small_model():
    return _model(SMALL, reference_points=12)


@pytest.fixture(scope="module")
def default_model():
    return _model(DEFAULT_WINDOW, reference_points=20)


def _batch_probs(model, times, flux, err, mask, calibrated=True):
    return model.predict_proba(times, flux, err, mask, calibrated=calibrated)


def _stream_lockstep(stream, times, flux, err, lengths, slots=None):
    """Give every event its next observation together, while it has one; probs per event."""
    slots = list(range(len(lengths))) if slots is None else slots
    out = [[] for _ in lengths]
    for k in range(max(lengths)):
        active = [i for i, n in enumerate(lengths) if k < n]
        probs = stream.update(times[active, k], flux[active, k], err[active, k],
                              events=[slots[i] for i in active])
        assert probs.shape == (len(active), 3)
        for row, i in enumerate(active):
            out[i].append(probs[row])
    return [torch.stack(rows) for rows in out]


def layer0_key_values(model, times, flux, err):
    """The first block's key/value projections in a batch forward (captured by a hook)."""
    captured = []
    hook = model.blocks[0].attention.key_value.register_forward_hook(
        lambda module, args, output: captured.append(output))
    try:
        with torch.no_grad():
            model(times, flux, err)
    finally:
        hook.remove()
    return captured[0]


@pytest.mark.parametrize("which", ["small", "default"])
def test_lockstep_stream_equals_batch_predictions(which, small_model, default_model):
    model = small_model if which == "small" else default_model
    times, flux, err, mask = _events()
    if which == "default":  # a short sequence, but longer than the window of 64
        lengths = [90, 70, 66]
        times, flux, err = times[:3, :90], flux[:3, :90], err[:3, :90]
        mask = torch.arange(90)[None, :] < torch.tensor(lengths)[:, None]
    else:
        lengths = LENGTHS
    expected = _batch_probs(model, times, flux, err, mask)
    model.train()  # the stream must not use dropout, nor leave the mode changed
    try:
        stream = StreamingClassifier(model, n_events=len(lengths))
        streamed = _stream_lockstep(stream, times, flux, err, lengths)
        assert model.training
    finally:
        model.eval()
    for i, n in enumerate(lengths):
        torch.testing.assert_close(streamed[i], expected[i, :n], atol=ATOL, rtol=0)
    assert stream.n_seen.tolist() == lengths
    # The stream is not trivially right: the calibrated probabilities move, and the spike shows.
    assert (expected[0, :120].max(0).values - expected[0, :120].min(0).values).max() > 0.02


@pytest.mark.parametrize("window", [1, 2])
def test_tiny_windows_equal_batch_predictions(window):
    """Window 1 attends to itself only (an empty cache); window 2 to one previous observation."""
    config = ModelConfig(d_model=16, n_heads=2, n_layers=3, d_ff=32, window=window)
    model = _model(config, reference_points=5)
    times, flux, err, _ = _events()
    n = 30
    expected = _batch_probs(model, times[:2, :n], flux[:2, :n], err[:2, :n], None)
    stream = StreamingClassifier(model, n_events=2)
    assert stream.key_cache[0].shape == (2, 2, window - 1, 8)
    streamed = _stream_lockstep(stream, times[:2], flux[:2], err[:2], [n, n])
    for i in range(2):
        torch.testing.assert_close(streamed[i], expected[i], atol=ATOL, rtol=0)


def test_interleaved_unequal_updates_equal_batch_predictions(small_model):
    model = small_model
    times, flux, err, mask = _events()
    expected = _batch_probs(model, times, flux, err, mask)
    # Events live in scrambled slots of a bigger stream; each update takes a random subset of
    # the events that still have observations, in random order.
    slots = [4, 0, 2, 5]
    stream = StreamingClassifier(model, n_events=6)
    g = torch.Generator().manual_seed(7)
    position = [0] * len(LENGTHS)
    got = [[] for _ in LENGTHS]
    updates = 0
    while any(p < n for p, n in zip(position, LENGTHS, strict=True)):
        active = [i for i, n in enumerate(LENGTHS) if position[i] < n]
        chosen = [active[j] for j in torch.randperm(len(active), generator=g).tolist()
                  if torch.rand((), generator=g) < 0.6] or active[:1]
        k = [position[i] for i in chosen]
        probs = stream.update(times[chosen, k], flux[chosen, k], err[chosen, k],
                              events=[slots[i] for i in chosen])
        for row, i in enumerate(chosen):
            got[i].append(probs[row])
            position[i] += 1
        updates += 1
    assert updates > max(LENGTHS) + 20  # the events really did drift apart
    for i, n in enumerate(LENGTHS):
        torch.testing.assert_close(torch.stack(got[i]), expected[i, :n], atol=ATOL, rtol=0)
    assert stream.n_seen.tolist() == [LENGTHS[1], 0, LENGTHS[2], 0, LENGTHS[0], LENGTHS[3]]


def test_float64_times_keep_their_precision(small_model):
    """Julian dates: the intervals are taken in float64, in the stream as in the batch model."""
    times, flux, err, _ = _events()
    n = 30
    jd = 2460000.0 + times[:1, :n].double() + torch.linspace(0, 1e-4, n, dtype=torch.float64)
    assert not torch.equal(jd.float().double(), jd)  # float32 would round these times
    expected = _batch_probs(small_model, jd, flux[:1, :n], err[:1, :n], None)
    stream = StreamingClassifier(small_model)
    for k in range(n):  # Python floats: must not pass through float32 either
        probs = stream.update(float(jd[0, k]), float(flux[0, k]), float(err[0, k]))
        torch.testing.assert_close(probs[0], expected[0, k], atol=ATOL, rtol=0)


def test_logits_and_uncalibrated_probabilities(small_model):
    model = small_model
    times, flux, err, _ = _events()
    n = 40
    logits = model(times[:2, :n], flux[:2, :n], err[:2, :n])["logits"]
    raw = _batch_probs(model, times[:2, :n], flux[:2, :n], err[:2, :n], None, calibrated=False)
    stream = StreamingClassifier(model, n_events=2)
    for k in range(n):
        probs = stream.update(times[:2, k], flux[:2, k], err[:2, k], calibrated=False)
        torch.testing.assert_close(probs, raw[:, k], atol=ATOL, rtol=0)
        torch.testing.assert_close(stream.logits, logits[:, k], atol=1e-4, rtol=1e-5)
    calibrated = (stream.logits / TEMPERATURE).softmax(-1)
    assert (calibrated - probs).abs().max() > 1e-3  # the temperature matters here


@pytest.mark.slow  # seconds long: streams a curve twice observation by observation
def test_reset_replays_the_same_numbers(small_model):
    model = small_model
    times, flux, err, mask = _events()
    expected = _batch_probs(model, times, flux, err, mask)
    stream = StreamingClassifier(model, n_events=2)
    first = _stream_lockstep(stream, times[:2], flux[:2], err[:2], LENGTHS[:2])
    stream.reset()
    assert stream.n_seen.tolist() == [0, 0] and stream.logits is None
    again = _stream_lockstep(stream, times[:2], flux[:2], err[:2], LENGTHS[:2])
    for a, b in zip(first, again, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    # Reset one slot mid-stream and give it another event; the other slot carries on unharmed.
    stream.reset()
    for k in range(50):
        stream.update(times[:2, k], flux[:2, k], err[:2, k])
    stream.reset(events=[1])
    assert stream.n_seen.tolist() == [50, 0]
    for k in range(50, 90):
        probs = stream.update(times[[0, 3], [k, k - 50]], flux[[0, 3], [k, k - 50]],
                              err[[0, 3], [k, k - 50]], events=[0, 1])
        torch.testing.assert_close(probs[0], expected[0, k], atol=ATOL, rtol=0)
        torch.testing.assert_close(probs[1], expected[3, k - 50], atol=ATOL, rtol=0)


# event 1 padding
@pytest.mark.filterwarnings("ignore::microlens.models.inputs.IntervalRangeWarning")
def test_state_has_a_fixed_size_and_the_cache_holds_the_last_window(small_model):
    model = small_model
    times, flux, err, _ = _events()
    stream = StreamingClassifier(model, n_events=2)
    w, h, dh = SMALL.window, SMALL.n_heads, SMALL.d_model // SMALL.n_heads
    shapes = {name: tuple(t.shape) for name, t in stream.state_tensors().items()}
    assert shapes["key_cache.0"] == (2, h, w - 1, dh) == shapes["value_cache.1"]
    assert shapes["reference_flux"] == (2, 12)
    assert len(stream.key_cache) == SMALL.n_layers
    assert not stream.cache_valid.any()
    n = 120
    for k in range(n):
        stream.update(times[:2, k], flux[:2, k], err[:2, k])
        if k == 2:
            assert stream.cache_valid.sum(1).tolist() == [3, 3]  # partly filled
        assert {name: tuple(t.shape) for name, t in stream.state_tensors().items()} == shapes
    assert stream.cache_valid.all()
    # The ring holds exactly the keys/values of observations n - w + 1 .. n - 1 (layer 0), slot
    # i % (w - 1) for observation i: compare with the batch encoder's own projections.
    captured = [layer0_key_values(model, times[:1, :n], flux[:1, :n], err[:1, :n])]
    kv = captured[0].view(1, -1, 2, h, dh)[0, :n]  # (n, 2, heads, head_dim)
    for i in range(n - w + 1, n):
        torch.testing.assert_close(stream.key_cache[0][0, :, i % (w - 1)], kv[i, 0],
                                   atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(stream.value_cache[0][0, :, i % (w - 1)], kv[i, 1],
                                   atol=1e-5, rtol=1e-5)
    # ... and the reference buffer only the first reference_points observations
    assert torch.equal(stream.reference_flux[0], flux[0, :12])


def test_bad_inputs_name_the_bad_value_and_change_nothing(small_model):
    model = small_model
    stream = StreamingClassifier(model, n_events=3)
    stream.update([1.0, 2.0, 3.0], [1.0, 1.1, 0.9], [0.05, 0.05, 0.05])
    before = {name: t.clone() for name, t in stream.state_tensors().items()}
    with pytest.raises(ValueError, match=r"times\[1\]=1\.5 for event 1 is before its previous "
                                         r"observation at 2\.0"):
        stream.update([1.5, 1.5, 3.5], [1.0, 1.0, 1.0], [0.05, 0.05, 0.05])
    with pytest.raises(ValueError, match=r"fluxes\[0\] \(event 2\) is nan"):
        stream.update([4.0, 4.0], [math.nan, 1.0], [0.05, 0.05], events=[2, 0])
    with pytest.raises(ValueError, match=r"errors\[0\] \(event 0\) is inf"):
        stream.update([4.0], [1.0], [math.inf], events=[0])
    with pytest.raises(ValueError, match=r"times\[2\] \(event 2\) is -inf"):
        stream.update([4.0, 4.0, -math.inf], [1.0, 1.0, 1.0], [0.05, 0.05, 0.05])
    with pytest.raises(ValueError, match=r"errors\[0\] \(event 1\) is -0\.1; flux errors must "
                                         "be positive"):
        stream.update([4.0], [1.0], [-0.1], events=[1])
    with pytest.raises(ValueError, match=r"fluxes has 2 values but 3 event\(s\) are being "
                                         "updated"):
        stream.update([4.0, 4.0, 4.0], [1.0, 1.0], [0.05, 0.05, 0.05])
    with pytest.raises(ValueError, match=r"times has 3 values but 1 event\(s\)"):
        stream.update([4.0, 4.0, 4.0], [1.0], [0.05], events=[1])
    with pytest.raises(ValueError, match=r"errors must be 1-D .* got shape \(1, 3\)"):
        stream.update([4.0, 4.0, 4.0], [1.0] * 3, [[0.05] * 3])
    with pytest.raises(ValueError, match=r"events\[1\]=3 is not a valid event slot: n_events=3"):
        stream.update([4.0, 4.0], [1.0, 1.0], [0.05, 0.05], events=[0, 3])
    with pytest.raises(ValueError, match=r"events\[0\]=-1 is not a valid event slot"):
        stream.reset(events=[-1])
    with pytest.raises(ValueError, match=r"events\[0\]=0\.5 is not an event slot"):
        stream.update([4.0], [1.0], [0.05], events=[0.5])
    with pytest.raises(ValueError, match="event slot 2 is listed twice"):
        stream.update([4.0, 4.0], [1.0, 1.0], [0.05, 0.05], events=[2, 2])
    with pytest.raises(ValueError, match="n_events must be a positive integer, got 0"):
        StreamingClassifier(model, n_events=0)
    after = stream.state_tensors()
    for name, tensor in before.items():
        assert torch.equal(tensor, after[name]) or (
            tensor.dtype.is_floating_point and torch.equal(tensor.isnan(), after[name].isnan())
            and torch.equal(tensor.nan_to_num(), after[name].nan_to_num())), name
    # a repeated time is refused too, as by the batch checks (microlens.core.validation)
    with pytest.raises(ValueError, match=r"times\[0\]=2\.0 for event 1 repeats its previous "
                                         r"observation's time; times must increase strictly"):
        stream.update([2.0], [1.0], [0.05], events=[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IntervalRangeWarning)
        stream.update([2.5], [1.0], [0.05], events=[1])
    assert stream.n_seen.tolist() == [1, 2, 1]


def test_interval_outside_the_training_range_warns(small_model):
    model = small_model
    norm = model.normalization
    times, flux, err, _ = _events()
    stream = StreamingClassifier(model, n_events=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IntervalRangeWarning)  # training-like intervals: silent
        for k in range(30):
            stream.update(times[:2, k], flux[:2, k], err[:2, k])
    late = float(times[1, 29]) + 10 * norm.dt_max
    with pytest.warns(IntervalRangeWarning, match=rf"{10 * norm.dt_max:.4g} days \(event 1\) "
                                                  "outside the training range"):
        probs = stream.update([float(times[0, 30]), late], flux[:2, 30], err[:2, 30])
    assert torch.isfinite(probs).all()
    # the batch model warns for the same light curve, and gives the same numbers
    t = torch.cat([times[1, :30], torch.tensor([late])])[None].float()
    f = torch.cat([flux[1, :30], flux[1, 30:31]])[None]
    e = torch.cat([err[1, :30], err[1, 30:31]])[None]
    with pytest.warns(IntervalRangeWarning):
        expected = model.predict_proba(t, f, e)
    torch.testing.assert_close(probs[1], expected[0, -1], atol=ATOL, rtol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IntervalRangeWarning)
        stream.update([float(times[0, 31])], flux[:1, 31], err[:1, 31], events=[0],
                      check_intervals=True)  # event 0 is still inside the range


def test_stream_latency_reports_per_observation_seconds(small_model):
    before = torch.get_num_threads()
    other = 2 if before == 1 else 1  # a count that differs from this process's
    report = stream_latency(small_model, n_observations=30, n_events=2, warmup=3)
    assert report["n_observations"] == 30 and report["n_events"] == 2
    assert 0 < report["p50_s"] <= report["p95_s"] <= report["max_s"]
    assert 0 < report["mean_s"] < 1.0
    assert report["observations_per_second"] == pytest.approx(2 / report["mean_s"])
    report = stream_latency(small_model, n_observations=5, warmup=0, threads=other)
    assert report["torch_threads"] == other and torch.get_num_threads() == before  # restored
    with pytest.raises(ValueError, match="n_observations must be a positive integer, got 0"):
        stream_latency(small_model, n_observations=0)


# --------------------------------------------------------------------------------------------
# Order and time in the encoder: rotary time encoding and the causal convolution stem
# --------------------------------------------------------------------------------------------

ENCODER_OPTIONS = {
    "rotary": {"time_encoding": "rotary"},
    "stem": {"conv_stem_kernel": 5},
    "rotary+stem": {"time_encoding": "rotary", "conv_stem_kernel": 5},
    "rotary+stem, kernel 1, window 1": {"time_encoding": "rotary", "conv_stem_kernel": 1,
                                        "window": 1},
    "rotary+3-layer dilated stem, no pool norm": {
        "time_encoding": "rotary", "conv_stem_kernel": 3, "conv_stem_layers": 3,
        "pool_norm": False},
}


# The fast tier streams the two options that combine the most (and the edge case of a kernel and
# window of 1); the slow tier every option on its own as well.
FAST_OPTIONS = ("rotary+stem, kernel 1, window 1", "rotary+3-layer dilated stem, no pool norm")


@pytest.fixture(scope="module", params=[
    name if name in FAST_OPTIONS else pytest.param(name, marks=pytest.mark.slow)
    for name in ENCODER_OPTIONS])
def option_model(request):
    config = ModelConfig(**{**SMALL.to_dict(), **ENCODER_OPTIONS[request.param]})
    return request.param, _model(config, reference_points=12)


def test_every_encoder_option_streams_the_batch_numbers(option_model):
    """Lockstep and interleaved updates, a reset mid-stream, Julian-date times in float64."""
    name, model = option_model
    times, flux, err, mask = _events()
    times = times.double() + 2_460_000.0  # the rotary angles come from times since the first
    expected = _batch_probs(model, times, flux, err, mask)
    model.train()  # the stream must not use dropout
    try:
        stream = StreamingClassifier(model, n_events=len(LENGTHS))
        streamed = _stream_lockstep(stream, times, flux, err, LENGTHS)
    finally:
        model.eval()
    for i, n in enumerate(LENGTHS):
        torch.testing.assert_close(streamed[i], expected[i, :n], atol=ATOL, rtol=0, msg=name)
    if model.stem is not None:
        # each layer keeps (kernel - 1) * dilation previous inputs: a fixed size
        held = sum((model.stem.kernel - 1) * 2 ** i for i in range(model.config.conv_stem_layers))
        assert stream.state_tensors()["stem_history"].shape == (len(LENGTHS), held,
                                                                SMALL.d_model)
    # interleaved: event 3 in slot 1 after a reset, while event 0 carries on in slot 0
    stream = StreamingClassifier(model, n_events=2)
    for k in range(40):
        stream.update(times[:2, k], flux[:2, k], err[:2, k])
    stream.reset(events=[1])
    for k in range(40, 100):
        probs = stream.update(times[[0, 3], [k, k - 40]], flux[[0, 3], [k, k - 40]],
                              err[[0, 3], [k, k - 40]], events=[0, 1])
        torch.testing.assert_close(probs[0], expected[0, k], atol=ATOL, rtol=0)
        torch.testing.assert_close(probs[1], expected[3, k - 40], atol=ATOL, rtol=0)
    assert (expected[0, :120].max(0).values - expected[0, :120].min(0).values).max() > 0.02


def test_rotary_keys_are_cached_rotated_by_their_own_time():
    """The ring buffer holds rotated keys: the same observation's key at another time differs,
    and the cached key equals the batch projection rotated by its time since the first."""
    from microlens.models.layers import apply_rotary, rotary_angles, rotary_periods

    config = ModelConfig(**{**SMALL.to_dict(), "time_encoding": "rotary"})
    model = _model(config, reference_points=12)
    times, flux, err, _ = _events()
    n, w, h, dh = 30, SMALL.window, SMALL.n_heads, SMALL.d_model // SMALL.n_heads
    stream = StreamingClassifier(model)
    for k in range(n):
        stream.update(times[0, k], flux[0, k], err[0, k])
    captured = [layer0_key_values(model, times[:1, :n], flux[:1, :n], err[:1, :n])]
    keys = captured[0].view(1, -1, 2, h, dh)[0, :n, 0]  # (n, heads, head_dim), unrotated
    cos, sin = rotary_angles((times[0, :n] - times[0, 0]).double(), rotary_periods(config))
    rotated = apply_rotary(keys, cos[:, None], sin[:, None])
    for i in range(n - w + 1, n):
        torch.testing.assert_close(stream.key_cache[0][0, :, i % (w - 1)], rotated[i],
                                   atol=1e-5, rtol=1e-5)
    assert (rotated - keys).abs().max() > 1e-2  # the rotation is not the identity


def test_encoder_options_stream_exactly_with_the_robust_baseline():
    """The options combine with the other opt-in features of the stream (robust baseline)."""
    config = ModelConfig(**{**SMALL.to_dict(), "time_encoding": "rotary", "conv_stem_kernel": 4})
    torch.manual_seed(0)
    times, flux, err, mask = _events()
    norm = Normalization.fit(times, flux, err, mask, reference_points=6,
                             baseline_method="robust")
    model = MicrolensTransformer(config, norm)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    model.eval()
    expected = _batch_probs(model, times, flux, err, mask)
    streamed = _stream_lockstep(StreamingClassifier(model, n_events=len(LENGTHS)), times, flux,
                                err, LENGTHS)
    for i, n in enumerate(LENGTHS):
        torch.testing.assert_close(streamed[i], expected[i, :n], atol=ATOL, rtol=0)
