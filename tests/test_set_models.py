"""The set kinds (deepsets, set_transformer): a state is a symmetric function of the set of the
newest ``window`` points, the causal forward computes exactly those sets, time enters as ages
only, the stream keeps a fixed-size buffer of points, and both kinds train, save and load."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from helpers import bump_curves, spread_model

from microlens.models.config import ModelConfig
from microlens.models.deepsets import DeepSets
from microlens.models.registry import KINDS, build_model, load_model
from microlens.models.runs import read_metrics
from microlens.models.set_models import PointFeatures, age_standardisation
from microlens.models.set_transformer import SetTransformer
from microlens.models.stream import StreamingClassifier
from microlens.training.train import TrainConfig, train

# Small models on one torch thread: on a busy two-core machine a recurrent or convolutional
# kernel on two OpenMP threads took minutes instead of seconds (a 2-epoch GRU: 74 s against 2 s).
pytestmark = pytest.mark.usefixtures("one_torch_thread")

KINDS_HERE = ("deepsets", "set_transformer")
WINDOW = 12
SIZES = {"deepsets": dict(d_model=16, d_ff=32, window=WINDOW),
         "set_transformer": dict(d_model=16, n_heads=4, n_layers=2, d_ff=32, window=WINDOW)}


def spread(kind: str, seed: int = 0, **overrides):
    """A model of ``kind`` in eval mode whose weights are spread beyond the initialisation."""
    return spread_model(kind, SIZES[kind], seed, curves=(4, 100), **overrides)


@pytest.fixture(scope="module", params=KINDS_HERE)
def net(request):
    return spread(request.param)


def test_the_registry_builds_the_set_classes():
    assert KINDS["deepsets"].model_class is DeepSets and KINDS["deepsets"].streams
    assert KINDS["set_transformer"].model_class is SetTransformer
    assert not KINDS["set_transformer"].attention
    assert isinstance(build_model(ModelConfig(kind="deepsets")).embed, PointFeatures)


def test_the_age_standardisation_is_that_of_an_even_cadence():
    mean, std = age_standardisation(5)
    ages = np.log1p(np.arange(5))
    assert mean == pytest.approx(ages.mean()) and std == pytest.approx(ages.std())
    assert age_standardisation(1) == (0.0, 1.0)  # one point: its age is 0, nothing to scale


def shuffled_set(features, times, k: int, window: int, seed: int, padding: int = 5):
    """The set of observation ``k`` of event 0 (its newest ``window`` points) in a random
    order, with ``padding`` invalid entries of random values mixed in."""
    g = torch.Generator().manual_seed(seed)
    members = torch.arange(max(0, k - window + 1), k + 1)
    m = members.numel() + padding
    flux, error = torch.randn(m, generator=g), torch.randn(m, generator=g)
    stamps = times[0, k] + 100 * torch.rand(m, generator=g, dtype=torch.float64)  # even later
    valid = torch.zeros(m, dtype=torch.bool)
    slots = torch.randperm(m, generator=g)[: members.numel()]
    flux[slots], error[slots] = features[0, members, 0], features[0, members, 1]
    stamps[slots], valid[slots] = times[0, members], True
    return flux, error, stamps, valid


@pytest.mark.parametrize("k", [0, 5, WINDOW - 1, WINDOW, 47, 79])
def test_a_state_is_a_symmetric_function_of_the_window_and_the_forward_computes_it(net, k):
    times, flux, err = bump_curves(2, 80, seed=2)
    features = net.normalization.features(times, flux, err)
    with torch.no_grad():
        states, _ = net.encode(features, times=times)
        answers = [net.set_state(*shuffled_set(features, times, k, WINDOW, seed), times[0, k])
                   for seed in range(3)]
    for answer in answers:
        assert answer.shape == (net.config.d_model,)
        torch.testing.assert_close(answer, answers[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(answer, states[0, k], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(states[0, k], states[0, k - 1 if k else k + 1])


def test_many_sets_at_once_equal_one_at_a_time(net):
    times, flux, err = bump_curves(1, 40, seed=3)
    features = net.normalization.features(times, flux, err)
    parts = [shuffled_set(features, times, k, WINDOW, seed=k, padding=WINDOW - min(k + 1, WINDOW))
             for k in (3, 20, 39)]  # every set padded to WINDOW entries
    stacked = [torch.stack(column) for column in zip(*parts, strict=True)]
    queries = times[0, [3, 20, 39]]
    with torch.no_grad():
        together = net.set_state(*stacked, queries)
        alone = torch.stack([net.set_state(*p, q) for p, q in zip(parts, queries, strict=True)])
    assert together.shape == (3, net.config.d_model)
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_a_state_reads_exactly_the_newest_window_points(net):
    times, flux, err = bump_curves(1, 90, seed=4)
    k = 70
    with torch.no_grad():
        base = net(times, flux, err)["logits"]
        features = net.normalization.features(times, flux, err)
        before, _ = net.encode(features, times=times)
        outside, inside = features.clone(), features.clone()
        outside[:, k - WINDOW, :2] += 3.0  # one point before the window of k
        inside[:, k - WINDOW + 1, :2] += 3.0  # the oldest point in it
        assert torch.equal(net.encode(outside, times=times)[0][:, k], before[:, k])
        assert not torch.allclose(net.encode(inside, times=times)[0][:, k], before[:, k])
        # the interval feature (which depends on the order of arrival) is never read
        intervals = features.clone()
        intervals[..., 2] = torch.randn(intervals.shape[:2])
        assert torch.equal(net.encode(intervals, times=times)[0], before)
        # the answer after k still carries every earlier point (the causal pooling)
        changed = flux.clone()
        changed[:, 3] += 2.0
        assert not torch.allclose(net(times, changed, err)["logits"][:, k], base[:, k])


def test_only_time_differences_matter(net):
    times, flux, err = bump_curves(3, 100, seed=5)
    mask = torch.arange(100)[None, :] < torch.tensor([[100], [64], [9]])
    with torch.no_grad():
        near = net(times, flux, err, mask)["logits"]
        far = net(times + 2_450_000.0, flux, err, mask)["logits"]
        features = net.normalization.features(times, flux, err)
        one_set = shuffled_set(features, times, 30, WINDOW, seed=0)
        state = net.set_state(*one_set, times[0, 30])
        shifted = (*one_set[:2], one_set[2] + 2_450_000.0, one_set[3])
        state_far = net.set_state(*shifted, times[0, 30] + 2_450_000.0)
    assert not torch.allclose(near, near.mean(dim=1, keepdim=True))  # the answers move
    torch.testing.assert_close(far[mask], near[mask], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state_far, state, atol=1e-5, rtol=1e-5)


def test_the_stream_keeps_a_buffer_of_points_and_gives_the_batch_numbers(net):
    times, flux, err = bump_curves(2, 40, seed=6)
    batch = net.predict_proba(times, flux, err, check_intervals=False)
    stream = StreamingClassifier(net, n_events=2)
    state = stream.state_tensors()
    assert state["set_points"].shape == (2, WINDOW - 1, 2)
    assert state["set_times"].shape == (2, WINDOW - 1)
    assert state["set_times"].dtype == torch.float64
    for i in range(40):
        probs = stream.update(times[:, i], flux[:, i], err[:, i], check_intervals=False)
        torch.testing.assert_close(probs, batch[:, i], atol=2e-5, rtol=1e-4)
    # the buffer holds the last WINDOW - 1 points, relative to the first observation
    kept = sorted(stream.state_tensors()["set_times"][0].tolist())
    np.testing.assert_allclose(kept, (times[0, -WINDOW + 1 :] - times[0, 0]).tolist())


def test_a_one_point_window_streams_too():
    net = spread("deepsets", window=1)
    times, flux, err = bump_curves(1, 12, seed=7)
    batch = net.predict_proba(times, flux, err, check_intervals=False)
    stream = StreamingClassifier(net)
    for i in range(12):
        probs = stream.update(times[0, i], flux[0, i], err[0, i], check_intervals=False)
        torch.testing.assert_close(probs[0], batch[0, i], atol=2e-5, rtol=1e-4)


def test_bad_sets_and_missing_times_are_refused_clearly(net):
    flux, error = torch.zeros(4), torch.zeros(4)
    times = torch.arange(4, dtype=torch.float64)
    valid = torch.tensor([True, True, False, True])
    with pytest.raises(ValueError, match="at least one valid point"):
        net.set_state(flux, error, times, torch.zeros(4, dtype=torch.bool), 3.0)
    with pytest.raises(ValueError, match="a valid point lies after query_time"):
        net.set_state(flux, error, times, valid, 2.5)
    net.set_state(flux, error, times, valid, 3.0)  # the invalid point may be anywhere
    with pytest.raises(ValueError, match=r"one shape \(\.\.\., M\), got \(4,\), \(3,\)"):
        net.set_state(flux, error[:3], times, valid, 3.0)
    with pytest.raises(ValueError, match=r"query_time must have shape \(\) \(one time per set\)"):
        net.set_state(flux, error, times, valid, [3.0, 3.0])
    with pytest.raises(ValueError, match=f"a '{net.kind}' model needs the observation times"):
        net.encode(torch.zeros(1, 5, 3))
    with pytest.raises(ValueError, match=f"a '{net.kind}' model has no attention maps"):
        t, f, e = bump_curves(1, 10, seed=8)
        net(t, f, e, return_attention=True)


@pytest.mark.parametrize("kind", [  # the set transformer's training runs with the slow tier
    pytest.param(k, marks=pytest.mark.slow) if k == "set_transformer" else k for k in KINDS_HERE])
def test_each_set_kind_trains_saves_and_loads(kind, train_store, tmp_path):
    sizes = {**SIZES[kind], "window": 8}
    config = TrainConfig(dataset=str(train_store.path), runs_dir=str(tmp_path / "runs"),
                         run_name=kind, model=ModelConfig(kind=kind, dropout=0.1, **sizes),
                         epochs=2, batch_size=16, learning_rate=3e-3, patience=0,
                         max_train_events=32, max_val_events=32, seed=3)
    run_dir = train(config, progress=False)
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["model"]["kind"] == kind and saved["model"]["window"] == 8
    metrics = read_metrics(run_dir)
    assert metrics["epochs_run"] == 2 and math.isfinite(metrics["val_loss"])
    model = load_model(run_dir)
    assert type(model) is KINDS[kind].model_class and not model.training
    assert metrics["n_parameters"] == model.n_parameters == saved["n_parameters"]
    batch = train_store.batch(train_store.indices("val")[:4])
    inputs = (batch["times"], batch["flux"], batch["flux_err"], batch["mask"])
    probs = model.predict_proba(*inputs)
    again = load_model(run_dir).predict_proba(*inputs)
    torch.testing.assert_close(probs, again, atol=0, rtol=0)
    valid = batch["mask"]
    assert torch.isfinite(probs[valid]).all()
    torch.testing.assert_close(probs[valid].sum(-1), torch.ones(int(valid.sum())))
