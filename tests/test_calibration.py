"""Temperature over the number of observations seen (microlens.core.calibration): fit, storage in
the
model, batch and stream, stored predictions, training with temperature_fit="by_count"."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from microlens.core.calibration import (
    count_positions,
    fit_temperature_curve,
    temperature_at,
    temperature_at_torch,
    temperature_knots,
)
from microlens.core.metrics import softmax
from microlens.evaluation.evaluate import calibration_by_fraction, confidence_and_class
from microlens.models.config import ModelConfig
from microlens.models.holdout import Predictions
from microlens.models.inputs import Normalization
from microlens.models.stream import StreamingClassifier
from microlens.models.transformer import MicrolensTransformer
from microlens.training.train import TrainConfig

SMALL = ModelConfig(d_model=32, n_heads=4, n_layers=2, d_ff=64, window=8, dropout=0.0)
KNOTS = temperature_knots(100)  # 1, 2, ..., 128
CURVE = np.linspace(3.0, 0.8, KNOTS.size)


# One thread: batch and stream sum in the same order, and the runs are quicker on shared cores.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_knots_and_interpolation():
    assert KNOTS.tolist() == [1, 2, 4, 8, 16, 32, 64, 128]
    assert temperature_knots(1).tolist() == [1]
    # exact at the knots, constant outside, geometric mean half-way (in log n) between two
    np.testing.assert_allclose(temperature_at(KNOTS, KNOTS, CURVE), CURVE, rtol=1e-12)
    assert temperature_at([500], KNOTS, CURVE)[0] == pytest.approx(CURVE[-1])
    assert temperature_at([np.sqrt(2)], KNOTS, CURVE)[0] == pytest.approx(
        np.sqrt(CURVE[0] * CURVE[1]))
    counts = np.arange(1, 300)
    torch_values = temperature_at_torch(torch.as_tensor(counts), torch.as_tensor(KNOTS),
                                        torch.as_tensor(np.log(CURVE))).numpy()
    np.testing.assert_allclose(torch_values, temperature_at(counts, KNOTS, CURVE), rtol=1e-12)
    with pytest.raises(ValueError, match="max_count must be >= 1, got 0"):
        temperature_knots(0)


def test_count_positions_are_log_spaced_and_include_both_ends():
    events, positions = count_positions([1, 7, 1000], per_event=10)
    assert positions[events == 0].tolist() == [0]
    assert positions[events == 1].tolist() == sorted(set(positions[events == 1].tolist()))
    assert positions[events == 1][0] == 0 and positions[events == 1][-1] == 6
    third = positions[events == 2]
    assert third[0] == 0 and third[-1] == 999 and third.size == 10


@pytest.mark.slow  # seconds long: fits temperatures on many curves
def test_fit_recovers_a_temperature_that_depends_on_the_count():
    rng = np.random.default_rng(0)
    counts = np.exp(rng.uniform(0, np.log(128), 40_000)).round().clip(1, 128)
    true_t = temperature_at(counts, KNOTS, CURVE)
    z = rng.normal(0, 2.0, (counts.size, 3))
    probs = softmax(z)
    labels = (rng.random(counts.size)[:, None] > probs.cumsum(axis=1)).sum(axis=1)
    logits = torch.as_tensor(z * true_t[:, None])  # over-confident early, under- late
    fitted = fit_temperature_curve(logits, torch.as_tensor(labels), counts, KNOTS)
    # ~5,000 answers per knot: the NLL's curvature gives a few per cent of spread
    np.testing.assert_allclose(fitted, CURVE, rtol=0.12)
    with pytest.raises(ValueError, match="counts of observations seen must be >= 1"):
        fit_temperature_curve(logits[:2], torch.as_tensor(labels[:2]), [0, 1], KNOTS)


def _model():
    g = torch.Generator().manual_seed(0)
    times = torch.cumsum(torch.rand(3, 90, generator=g, dtype=torch.float64) + 0.1, 1).float()
    flux = 1 + 0.05 * torch.randn(3, 90, generator=g)
    flux[0, 40:50] += 2.0
    err = torch.full((3, 90), 0.05)
    mask = torch.arange(90)[None, :] < torch.tensor([90, 70, 33])[:, None]
    torch.manual_seed(0)
    model = MicrolensTransformer(SMALL, Normalization.fit(times, flux, err, mask,
                                                          reference_points=8))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    model.temperature.fill_(1.7)
    return model.eval(), (times, flux, err, mask)


def test_batch_and_stream_apply_the_curve_at_the_count_seen():
    model, (times, flux, err, mask) = _model()
    model.set_temperature_curve(KNOTS, CURVE)
    logits = model.predict_logits(times, flux, err, mask)
    expected = softmax(logits.numpy(), temperature_at(np.arange(1, 91), KNOTS, CURVE)[:, None])
    probs = model.predict_proba(times, flux, err, mask)
    np.testing.assert_allclose(probs.numpy(), expected, atol=1e-6)
    stream = StreamingClassifier(model, n_events=3)
    worst = 0.0
    for k in range(90):
        events = [i for i in range(3) if mask[i, k]]
        p = stream.update(times[events, k], flux[events, k], err[events, k], events=events)
        worst = max(worst, float((p - probs[events, k]).abs().max()))
    assert worst < 1e-5
    # the curve matters: the scalar temperature gives other early answers
    scalar = softmax(logits.numpy(), 1.7)
    assert np.abs(scalar[:, :4] - probs[:, :4].numpy()).max() > 1e-3


def test_checkpoints_with_and_without_a_curve_load():
    model, (times, flux, err, mask) = _model()
    old = {k: v for k, v in model.state_dict().items() if not k.startswith("temperature_c")}
    fresh = MicrolensTransformer(SMALL, model.normalization)
    fresh.load_state_dict(old)  # a checkpoint from before the curve: the scalar applies
    assert fresh.temperature_counts.numel() == 0
    assert float(fresh.temperature) == pytest.approx(1.7)
    model.set_temperature_curve(KNOTS, CURVE)
    again = MicrolensTransformer(SMALL, model.normalization)
    again.load_state_dict(model.state_dict())
    assert torch.equal(again.temperature_curve, model.temperature_curve)
    torch.testing.assert_close(again.eval().predict_proba(times, flux, err, mask),
                               model.predict_proba(times, flux, err, mask))
    # and back: a curve-less checkpoint into a model holding a curve empties it
    again.load_state_dict(old)
    assert again.temperature_counts.numel() == 0


@pytest.mark.parametrize("counts, temperatures, message", [
    ([1, 2], [1.0], "needs as many counts as temperatures, got 2 and 1"),
    ([2, 1], [1.0, 1.0], r"counts must be increasing and >= 1, got \[2.0, 1.0\]"),
    ([1, 2], [1.0, -1.0], r"temperatures must be positive and finite, got \[1.0, -1.0\]"),
])
def test_bad_curves_are_refused(counts, temperatures, message):
    model, _ = _model()
    with pytest.raises(ValueError, match=message):
        model.set_temperature_curve(counts, temperatures)


def test_predictions_apply_and_keep_the_curve(tmp_path):
    rng = np.random.default_rng(1)
    lengths = np.array([50, 20, 8])
    logits = rng.normal(0, 3, (3, 50, 3)).astype(np.float32)
    curve = {"counts": KNOTS.tolist(), "temperatures": CURVE.tolist()}
    pred = Predictions(rows=np.arange(3), labels=np.array([0, 1, 2]), lengths=lengths,
                       times=np.zeros((3, 50)), logits=logits, temperature=1.7,
                       temperature_curve=curve)
    positions = np.array([0, 10, 7])
    expected = softmax(logits[np.arange(3), positions],
                       temperature_at(positions + 1, KNOTS, CURVE)[:, None])
    np.testing.assert_allclose(pred.at(positions), expected, rtol=1e-12)
    confidence, _ = confidence_and_class(pred)
    np.testing.assert_allclose(confidence[np.arange(3), positions], expected.max(axis=1),
                               rtol=1e-6)
    loaded = Predictions.load(pred.save(tmp_path / "p.npz"))
    assert loaded.temperature_curve == curve
    assert pred.subset(np.array([True, False, True])).temperature_curve == curve
    ece = calibration_by_fraction(pred, (0.1, 1.0))
    assert ece["fraction"] == [0.1, 1.0] and len(ece["after"]) == 2
    assert ece["before"] != ece["after"]
    # without a curve the scalar applies everywhere
    plain = Predictions(np.arange(3), np.array([0, 1, 2]), lengths, np.zeros((3, 50)), logits,
                        1.7)
    np.testing.assert_allclose(plain.at(positions),
                               softmax(logits[np.arange(3), positions], 1.7))


def test_train_config_temperature_fit():
    assert TrainConfig().temperature_fit == "by_count"
    with pytest.raises(ValueError, match="unknown temperature_fit 'fraction'; valid: final, "
                                         "by_count"):
        TrainConfig(temperature_fit="fraction")


@pytest.mark.slow  # trains a model: the slow tier (the fast tier tests the fit on hand-made logits)
def test_training_fits_and_stores_the_curve(tmp_path, train_store):
    from microlens.models.registry import load_model
    from microlens.models.runs import read_metrics
    from microlens.training.train import train

    config = TrainConfig(dataset=str(train_store.path), run_name="curve", runs_dir=str(tmp_path),
                         model=ModelConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32, window=8,
                                           dropout=0.0),
                         epochs=1, batch_size=32, max_train_events=96, patience=0,
                         temperature_fit="by_count")
    run_dir = train(config, progress=False)
    metrics = read_metrics(run_dir)
    curve = metrics["temperature_curve"]
    assert metrics["temperature_fit"] == "by_count"
    assert curve["counts"] == temperature_knots(train_store.manifest["n_epochs"]).tolist()
    # the curve minimises the NLL of the sampled answers that the scalar is one point of
    assert curve["val_nll_sampled_curve"] <= curve["val_nll_sampled_scalar"] + 1e-9
    model = load_model(run_dir)
    np.testing.assert_allclose(model.temperature_curve.numpy(), curve["temperatures"])
    assert float(model.temperature) == pytest.approx(metrics["temperature"])
