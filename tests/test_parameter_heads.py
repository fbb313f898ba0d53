"""Parameter heads: every neural kind estimates lens parameters causally, streams the batch
numbers, learns only from lensing curves' parameters, and its checkpoints and coverage are
scored as stated."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import bump_curves, spread_model
from test_model_kinds import SIZES

from microlens.evaluation.parameters import (
    COVERAGE_BANDS,
    MIN_SEEN,
    checkpoint_counts,
    coverage_table,
)
from microlens.models.config import ModelConfig
from microlens.models.parameters import (
    BINARY,
    MEDIAN,
    POINT_LENS,
    QUANTILES,
    TARGETS,
    as_table,
    event_targets,
    parameter_losses,
)
from microlens.models.registry import neural_kinds
from microlens.models.stream import StreamingClassifier
from microlens.simulation.simulate import params_dtype

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def with_heads(kind: str):
    return spread_model(kind, SIZES[kind], 0, parameter_heads=True)


@pytest.fixture(scope="module", params=[
    kind if kind in ("transformer", "gru") else pytest.param(kind, marks=pytest.mark.slow)
    for kind in neural_kinds()])  # two kinds in the fast tier, every kind in the slow one
def net(request):
    return with_heads(request.param)


def test_every_kind_estimates_parameters_causally(net):
    times, flux, err = bump_curves(3, 100, seed=2)
    k = 57
    with torch.no_grad():
        before = net(times, flux, err)["parameters"]
        changed_flux, later_times = flux.clone(), times.clone()
        changed_flux[:, k + 1 :] += torch.randn(3, 100 - k - 1) * 5
        later_times[:, k + 1 :] += 7.0
        after = net(later_times, changed_flux, err)["parameters"]
    assert before.shape == (3, 100, len(TARGETS), len(QUANTILES))
    assert torch.equal(after[:, : k + 1], before[:, : k + 1]), net.kind
    assert not torch.allclose(after[:, k + 1 :], before[:, k + 1 :])


def test_every_kind_streams_the_batch_parameters(net):
    times, flux, err = bump_curves(2, 60, seed=5)
    batch = net.predict_parameters(times, flux, err)
    stream = StreamingClassifier(net, n_events=2)
    for k in range(60):
        stream.update(times[:, k], flux[:, k], err[:, k], check_intervals=False)
        torch.testing.assert_close(stream.parameters, batch[:, k], atol=2e-4, rtol=1e-4)


def test_quantiles_are_ordered_and_t_0_is_in_the_curves_time_frame():
    net = with_heads("gru")
    times, flux, err = bump_curves(2, 40, seed=3)
    quantiles = net.predict_parameters(times, flux, err)
    assert bool((quantiles.diff(dim=-1) >= 0).all())
    raw = net(times, flux, err)["parameters"]
    shifted = net.predict_parameters(times + 1000.0, flux, err)  # absolute times move t_0 only
    torch.testing.assert_close(shifted[..., 0, :] - 1000.0, quantiles[..., 0, :], atol=1e-3,
                               rtol=0)
    torch.testing.assert_close(shifted[..., 1:, :], quantiles[..., 1:, :])
    torch.testing.assert_close(quantiles[..., 0, :] - times[..., None].float(), raw[..., 0, :],
                               atol=1e-3, rtol=0)
    table = as_table(quantiles.numpy())
    assert set(table) >= {"t_0", "log10_u_0_lo68", "f_s_hi95"}
    np.testing.assert_array_equal(table["log10_t_E"], quantiles[..., 1, MEDIAN].numpy())


def test_a_model_without_heads_says_so_and_keeps_its_weights_keys():
    plain = spread_model("transformer", SIZES["transformer"], 0)
    assert not any(key.startswith("parameter_head") for key in plain.state_dict())
    with pytest.raises(ValueError, match="no parameter heads"):
        plain.predict_parameters(*bump_curves(1, 10, seed=0))
    with pytest.raises(ValueError, match="'features' kind reports its point-lens fit"):
        ModelConfig(kind="features", parameter_heads=True)
    assert ModelConfig.from_saved({}).parameter_heads is False


def _params(labels):
    rows = np.zeros(len(labels), params_dtype())
    rows["label"] = labels
    rows["t_0"], rows["t_E"], rows["u_0"], rows["f_s"] = 50.0, 20.0, -0.05, 0.7
    rows["s"], rows["q"] = np.where(np.asarray(labels) == 2, 1.2, np.nan), np.where(
        np.asarray(labels) == 2, 1e-3, np.nan)
    return rows


def test_targets_count_by_class():
    values, counts = event_targets(_params([0, 1, 2]), np.array([0, 1, 2]))
    n_point = len(POINT_LENS)
    assert not counts[0].any()  # a no-event curve's parameters never count
    assert counts[1, :n_point].all() and not counts[1, n_point:].any()
    assert counts[2].all()
    np.testing.assert_allclose(values[2], [50.0, np.log10(20.0), np.log10(0.05), 0.7,
                                           np.log10(1.2), -3.0])
    assert len(TARGETS) == n_point + len(BINARY)


def test_the_loss_ignores_what_does_not_count_whatever_its_value():
    torch.manual_seed(0)
    values, counts = event_targets(_params([0, 1, 2]), np.array([0, 1, 2]))
    values = torch.tensor(values, dtype=torch.float32)
    values[0] = 1e6  # a no-event curve's (meaningless) draws: never read
    counts = torch.from_numpy(counts)
    quantiles = torch.randn(3, 5, len(TARGETS), len(QUANTILES)).sort(-1).values
    quantiles.requires_grad_(True)
    times = torch.arange(5.0).expand(3, 5)
    weights = torch.full((3, 5), 0.2)
    loss = parameter_losses(quantiles, values, counts, times, weights, torch.ones(len(TARGETS)))
    # measured from an origin, the loss reads t_0 less it (the latest observation: the same)
    same = parameter_losses(quantiles, values, counts, times, weights, torch.ones(len(TARGETS)),
                            origin=times)
    torch.testing.assert_close(same, loss)
    origin = times - 3.0
    moved = parameter_losses(quantiles, values, counts, times, weights, torch.ones(len(TARGETS)),
                             origin=origin)
    assert not torch.allclose(moved, loss)
    loss.sum().backward()
    assert loss[0] == 0 and torch.all(quantiles.grad[0] == 0)
    assert loss[1] > 0 and torch.all(quantiles.grad[1, :, len(POINT_LENS):] == 0)
    assert torch.any(quantiles.grad[2, :, len(POINT_LENS):] != 0)


@pytest.mark.slow
def test_training_with_heads_learns_and_saves_them(tmp_path, train_store):
    from microlens.models.registry import load_model
    from microlens.training.train import TrainConfig, train

    config = TrainConfig(dataset=str(train_store.path), run_name="heads", runs_dir=str(tmp_path),
                         model=ModelConfig(kind="gru", d_model=16, n_layers=1, dropout=0.0,
                                           parameter_heads=True, parameter_origin="peak"),
                         epochs=1, batch_size=32, max_train_events=64, max_val_events=32, seed=3)
    model = load_model(train(config, progress=False))
    head = model.parameter_head
    assert head is not None and head.origin == "peak" and bool((head.scale > 0).all())
    assert float(head.scale[1]) != 1.0  # fitted on the training events (log10 t_E's spread)
    # t_0's units are fitted from the anchor: after the peak it is days away, not weeks
    from microlens.models.parameters import fit_target_scaling

    rows = train_store.indices("train")
    latest = fit_target_scaling(train_store, rows, seed=3, origin="latest")
    peak = fit_target_scaling(train_store, rows, seed=3, origin="peak")
    np.testing.assert_array_equal(latest[0][1:], peak[0][1:])
    assert peak[1][0] < latest[1][0]
    batch = train_store.batch(train_store.indices("test")[:4])
    quantiles = model.predict_parameters(batch["times"], batch["flux"], batch["flux_err"],
                                         batch["mask"])
    assert torch.isfinite(quantiles).all()


def test_checkpoints_need_an_observation_just_before_them():
    times = np.arange(100, dtype=np.float64)[None, :].repeat(3, 0)
    times[2, 40:] += 30.0  # a 30-day gap after day 39
    mask = np.ones_like(times, bool)
    t_0, t_E = np.array([50.0, 5.0, 55.0]), np.array([10.0, 10.0, 10.0])
    counts = checkpoint_counts(times, mask, t_0, t_E, (-1.0, 0.0, 1.0))
    np.testing.assert_array_equal(counts[0], [41, 51, 61])
    # before the first observation; then only 6 < MIN_SEEN observations by t_0
    assert MIN_SEEN > 6
    np.testing.assert_array_equal(counts[1], [0, 0, 16])
    # days 45, 55 and 65 fall in the gap: the last observation (day 39) is too far before
    np.testing.assert_array_equal(counts[2], [0, 0, 0])
    mask[0, 45:] = False  # padding is never an observation
    assert checkpoint_counts(times, mask, t_0, t_E, (1.0,))[0, 0] == 0


def _coverage(shift: float, n: int = 4000):
    """Coverage of standard-normal quantiles for truths drawn from N(shift, 1)."""
    from scipy.stats import norm

    rng = np.random.default_rng(0)
    quantiles = np.zeros((n, 1, len(TARGETS), len(QUANTILES)))
    quantiles[...] = norm.ppf(QUANTILES)
    values = np.zeros((n, len(TARGETS)))
    values[:, TARGETS.index("t_0")] = rng.normal(shift, 1.0, n)
    counts = np.ones((n, 1), int)
    return coverage_table(quantiles, None, values, counts, phases=(0.0,))["0.0"]["t_0"]


def test_coverage_cells_pass_for_calibrated_intervals_and_fail_for_shifted_ones():
    calibrated, shifted = _coverage(0.0), _coverage(1.0)
    for level, key in ((0.68, "model_68"), (0.95, "model_95")):
        cell = calibrated[key]
        assert cell["n"] == 4000 and cell["passes"], cell
        assert abs(cell["coverage"] - level) < 0.03
        assert cell["interval"][0] < cell["coverage"] < cell["interval"][1]
        assert not shifted[key]["passes"], shifted[key]
        assert shifted[key]["interval"][1] < COVERAGE_BANDS[level][0]


def test_peak_ages_count_days_since_each_features_latest_maximum():
    from microlens.models.parameters import AGE_SCALE_DAYS, peak_ages

    states = torch.tensor([[[1.0, 0.0], [3.0, -1.0], [3.0, 2.0], [2.0, 1.0], [3.0, 0.5]]])
    times = torch.tensor([[2_460_000.0, 2_460_001.0, 2_460_002.0, 2_460_005.0, 2_460_010.5]],
                         dtype=torch.float64)
    ages = torch.sinh(peak_ages(states, times).double()) * AGE_SCALE_DAYS
    # feature 0 peaks at 3 on days 1, 2 and 10.5 (the latest counts); feature 1 on day 2
    expected = torch.tensor([[[0, 0], [0, 1], [0, 0], [3, 3], [0, 8.5]]], dtype=torch.float64)
    torch.testing.assert_close(ages, expected, atol=1e-4, rtol=0)


@pytest.mark.slow
def test_online_fits_are_cached_for_the_same_events_and_checkpoints_only(small_store, tmp_path,
                                                                         monkeypatch):
    import microlens.models.online_fit as online
    from microlens.evaluation.parameters import cached_online_fit

    rows = small_store.indices("test")[:3]
    counts = np.array([[20, 40], [0, 30], [25, 50]])
    cache = tmp_path / "fits.npz"
    first = cached_online_fit(small_store, rows, counts, cache, workers=1, progress=False)
    assert cache.exists() and not first["ok"][1, 0]
    calls = []
    monkeypatch.setattr(online, "online_fit", lambda *a, **k: calls.append(a) or first)
    again = cached_online_fit(small_store, rows, counts, cache, workers=1, progress=False)
    assert not calls  # read back, not refitted
    for key in ("mean", "sigma", "ok", "dchi2"):
        np.testing.assert_array_equal(again[key], first[key])
    cached_online_fit(small_store, rows, counts + 1, cache, workers=1, progress=False)
    assert len(calls) == 1  # other checkpoints: fitted again
    cached_online_fit(small_store, rows, counts + 1, cache, workers=1, progress=False)
    assert len(calls) == 1  # the cache now holds those
    # the same path, rows and checkpoints, other curves (a set regenerated in place): refitted
    monkeypatch.setattr(small_store, "identity", "another set")
    cached_online_fit(small_store, rows, counts + 1, cache, workers=1, progress=False)
    assert len(calls) == 2


def _reference_anchor(t, f, e):
    """The peak anchor by its definition, one observation at a time."""
    from microlens.models.parameters import ANCHOR_POINTS

    w = 1.0 / e ** 2
    best, out = -np.inf, []
    for k in range(t.size):
        lo = max(0, k - ANCHOR_POINTS + 1)
        mean = np.sum(w[lo:k + 1] * f[lo:k + 1]) / np.sum(w[lo:k + 1])
        if mean >= best:
            best, anchor = mean, np.sum(w[lo:k + 1] * t[lo:k + 1]) / np.sum(w[lo:k + 1])
        out.append(anchor)
    return np.array(out)


def test_the_peak_anchor_marks_the_brightest_stretch_so_far():
    from microlens.models.parameters import peak_anchor

    times, flux, err = bump_curves(3, 80, seed=7)
    times = times.double() + 2_460_000.0
    mask = torch.ones(3, 80, dtype=torch.bool)
    mask[2, 50:] = False  # padding at the end changes nothing before it
    anchor = peak_anchor(times, flux, err, mask)
    for i, n in enumerate((80, 80, 50)):
        np.testing.assert_allclose(anchor[i, :n].numpy(), _reference_anchor(
            times[i, :n].numpy(), flux[i, :n].double().numpy(), err[i, :n].double().numpy()),
            rtol=0, atol=1e-6)
    # causal: later observations never move an earlier anchor
    later = flux.clone()
    later[:, 40:] += 10.0
    torch.testing.assert_close(peak_anchor(times, later, err, mask)[:, :40], anchor[:, :40],
                               rtol=0, atol=0)
    # on a clean symmetric peak the anchor rises with the flux, then stays at the peak
    t = torch.arange(0.0, 100.0, 1.0, dtype=torch.float64)[None]
    bump = 1.0 + 2.0 * torch.exp(-0.5 * ((t - 60.0) / 8.0) ** 2)
    clean = peak_anchor(t, bump, torch.full_like(t, 0.01))[0]
    assert abs(float(clean[50]) - 48.0) < 1e-9  # rising: the mean time of the last five
    torch.testing.assert_close(clean[70:], torch.full((30,), 60.0, dtype=torch.float64))


def test_heads_measuring_t_0_from_the_peak_anchor_stream_the_batch_numbers():
    assert ModelConfig.from_saved({"parameter_heads": True}).parameter_origin == "latest"
    assert ModelConfig(parameter_heads=True).parameter_origin == "latest"
    with pytest.raises(ValueError, match="parameter_origin 'first'; valid: 'peak', 'latest'"):
        ModelConfig(parameter_heads=True, parameter_origin="first")
    peak = spread_model("gru", SIZES["gru"], 0, parameter_heads=True, parameter_origin="peak")
    latest = spread_model("gru", SIZES["gru"], 0, parameter_heads=True)
    # the anchor adds one input; heads from the latest observation keep their weights' shapes
    widths = [m.parameter_head.net[0].in_features for m in (latest, peak)]
    assert widths[1] == widths[0] + 1
    times, flux, err = bump_curves(2, 40, seed=8)
    times = times.double() + 2_460_000.0  # absolute times: the anchor keeps their precision
    batch = peak.predict_parameters(times, flux, err)
    stream = StreamingClassifier(peak, n_events=2)
    for k in range(40):
        stream.update(times[:, k], flux[:, k], err[:, k], check_intervals=False)
        torch.testing.assert_close(stream.parameters, batch[:, k], atol=2e-4, rtol=1e-4)
    from microlens.models.parameters import peak_anchor

    torch.testing.assert_close(stream.anchor_time, peak_anchor(times, flux, err)[:, -1],
                               rtol=0, atol=0)
    stream.reset([0])
    assert torch.isnan(stream.anchor_time[0]) and not torch.isnan(stream.anchor_time[1])
    # causal: a later observation never moves an earlier answer
    changed = flux.clone()
    changed[:, 30:] += 5.0
    torch.testing.assert_close(peak.predict_parameters(times, changed, err)[:, :30],
                               batch[:, :30], rtol=0, atol=0)
