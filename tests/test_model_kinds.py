"""The registry of model kinds: every neural kind is causal, ignores absolute time, streams the
batch numbers, trains under AMP, saves and loads; the registry refuses what does not exist."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import bump_curves, spread_model

from microlens.models.config import MODEL_KINDS, ModelConfig
from microlens.models.registry import (
    KINDS,
    CausalCNN,
    CausalGRU,
    build_model,
    load_model,
    model_kind,
    neural_kinds,
)
from microlens.models.runs import read_metrics
from microlens.models.stream import StreamingClassifier
from microlens.training.train import TrainConfig, train

# Small models on one torch thread: on a busy two-core machine a recurrent or convolutional
# kernel on two OpenMP threads took minutes instead of seconds (a 2-epoch GRU: 74 s against 2 s).
pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZES = {
    "transformer": dict(d_model=32, n_heads=4, n_layers=2, d_ff=64, window=8,
                        conv_stem_layers=2),
    "cnn": dict(d_model=32, n_heads=4, n_layers=4, d_ff=64, kernel_size=3),
    "gru": dict(d_model=32, n_heads=4, n_layers=2),
    "rnn_vae": dict(d_model=32, n_heads=4, n_layers=2, latent_dim=8),
    "deepsets": dict(d_model=32, n_heads=4, d_ff=64, window=8),
    "set_transformer": dict(d_model=32, n_heads=4, n_layers=1, d_ff=64, window=8),
    "masked": dict(d_model=32, n_heads=4, n_layers=2, d_ff=64, window=8, conv_stem_layers=2),
}


def randomised(kind: str, seed: int = 0, **overrides):
    """A model of ``kind`` whose weights are spread beyond the initialisation."""
    return spread_model(kind, SIZES[kind], seed, **overrides)


@pytest.fixture(scope="module", params=neural_kinds())
def net(request):
    return randomised(request.param)


def test_the_registry_lists_every_kind_once_with_what_it_can_do():
    assert tuple(KINDS) == MODEL_KINDS == ("transformer", "cnn", "gru", "features", "rnn_vae",
                                           "deepsets", "set_transformer", "masked")
    assert neural_kinds() == ("transformer", "cnn", "gru", "rnn_vae", "deepsets",
                              "set_transformer", "masked")
    assert [k for k, v in KINDS.items() if v.attention] == ["transformer", "masked"]
    assert not KINDS["features"].streams and not KINDS["features"].neural
    for name, kind in KINDS.items():  # every neural kind streams, and its class says its kind
        assert kind.streams == kind.neural, name
        assert kind.model_class is None or kind.model_class.kind == name
    assert isinstance(build_model(ModelConfig(kind="cnn")), CausalCNN)
    assert isinstance(build_model(ModelConfig(kind="gru")), CausalGRU)
    with pytest.raises(ValueError, match=r"unknown model kind 'lstm'; valid: transformer, cnn"):
        model_kind("lstm")
    with pytest.raises(ValueError, match=r"unknown ModelConfig.kind 'rnn'; valid: transformer"):
        ModelConfig(kind="rnn")
    with pytest.raises(ValueError, match="not a neural network"):
        build_model(ModelConfig(kind="features"))
    with pytest.raises(ValueError, match="kernel_size must be an integer >= 2"):
        ModelConfig(kind="cnn", kernel_size=1)
    with pytest.raises(ValueError, match="CausalGRU is kind 'gru'"):
        CausalGRU(ModelConfig(kind="cnn"))


def test_a_config_saved_before_kinds_is_a_transformer():
    old = {k: v for k, v in ModelConfig().to_dict().items() if k not in ("kind", "kernel_size")}
    assert ModelConfig.from_saved(old).kind == "transformer"


def test_every_kind_is_causal(net):
    times, flux, err = bump_curves(3, 100, seed=2)
    k = 57
    with torch.no_grad():
        before = net(times, flux, err)["logits"]
        changed_flux, later_times = flux.clone(), times.clone()
        changed_flux[:, k + 1 :] += torch.randn(3, 100 - k - 1) * 5
        later_times[:, k + 1 :] += 7.0
        after = net(later_times, changed_flux, err)["logits"]
    assert torch.equal(after[:, : k + 1], before[:, : k + 1]), net.kind
    assert not torch.allclose(after[:, k + 1 :], before[:, k + 1 :])


def test_every_kind_ignores_a_constant_added_to_all_times(net):
    times, flux, err = bump_curves(3, 100, seed=11)
    mask = torch.arange(100)[None, :] < torch.tensor([[100], [80], [53]])
    with torch.no_grad():
        near = net(times, flux, err, mask)["logits"]
        far = net(times + 2_450_000.0, flux, err, mask)["logits"]
    assert not torch.allclose(near, near.mean(dim=1, keepdim=True))  # the outputs move
    torch.testing.assert_close(far[mask], near[mask], atol=1e-5, rtol=1e-5, msg=net.kind)


def test_padding_at_the_end_changes_no_valid_answer(net):
    times, flux, err = bump_curves(2, 90, seed=3)
    with torch.no_grad():
        alone = net(times[:1, :60], flux[:1, :60], err[:1, :60])["logits"]
        mask = torch.ones(2, 90, dtype=torch.bool)
        mask[0, 60:] = False
        padded = net(times, flux, err, mask)["logits"]
    torch.testing.assert_close(padded[0, :60], alone[0], atol=1e-5, rtol=1e-5)


def test_every_kind_reads_the_order_of_its_observations(net):
    """Swapping two earlier fluxes changes the answer after a later observation: the encoder
    is not a bag of tokens."""
    times, flux, err = bump_curves(1, 80, seed=4)
    swapped = flux.clone()
    swapped[:, [45, 50]] = flux[:, [50, 45]]
    with torch.no_grad():
        a = net(times, flux, err)["logits"][:, 60]
        b = net(times, swapped, err)["logits"][:, 60]
    assert (a - b).abs().max() > 1e-4, net.kind


def test_every_kind_streams_the_batch_numbers_with_unequal_updates(net):
    times, flux, err = bump_curves(3, 70, seed=5)
    lengths = [70, 41, 55]
    mask = torch.arange(70)[None, :] < torch.tensor(lengths)[:, None]
    batch = net.predict_proba(times, flux, err, mask, check_intervals=False)
    stream = StreamingClassifier(net, n_events=3)
    sizes_before = {k: tuple(v.shape) for k, v in stream.state_tensors().items()}
    seen = [0, 0, 0]
    rng = np.random.default_rng(0)
    while seen != lengths:
        events = [e for e in range(3) if seen[e] < lengths[e] and rng.random() < 0.7]
        if not events:
            continue
        probs = stream.update([times[e, seen[e]] for e in events],
                              [flux[e, seen[e]] for e in events],
                              [err[e, seen[e]] for e in events], events=events,
                              check_intervals=False)
        for row, e in enumerate(events):
            torch.testing.assert_close(probs[row], batch[e, seen[e]], atol=2e-5, rtol=1e-4)
            seen[e] += 1
    # a fixed-size state, whatever was seen
    assert {k: tuple(v.shape) for k, v in stream.state_tensors().items()} == sizes_before
    stream.reset([1])
    first = stream.update(times[1, 0], flux[1, 0], err[1, 0], events=[1], check_intervals=False)
    torch.testing.assert_close(first[0], batch[1, 0], atol=2e-5, rtol=1e-4)


def test_only_the_transformer_has_attention_maps():
    for kind in ("cnn", "gru"):
        net = randomised(kind)
        times, flux, err = bump_curves(1, 20, seed=6)
        with pytest.raises(ValueError, match=f"a '{kind}' model has no attention maps"):
            net(times, flux, err, return_attention=True)
        assert net(times, flux, err, return_embedding=True)["embedding"].shape == (1, 20, 64)
        with pytest.raises(AttributeError, match="has no attention cache"):
            _ = StreamingClassifier(net).key_cache


def test_a_features_model_cannot_stream_and_says_why():
    class FeaturesLike:
        config = ModelConfig(kind="features")

    with pytest.raises(TypeError, match="cannot stream observation by observation"):
        StreamingClassifier(FeaturesLike())


def test_the_cnn_reads_exactly_its_receptive_field():
    net = randomised("cnn")
    reach = net.receptive_field  # 1 + 2 * (1 + 2 + 4 + 8) = 31 at kernel 3, 4 blocks
    assert reach == 31
    times, flux, err = bump_curves(1, 100, seed=7)
    features = net.normalization.features(times, flux, err)
    k = 80
    changed = features.clone()
    with torch.no_grad():
        base = net.encode(features)[0][:, k]
        changed[:, k - reach] += 3.0  # just outside
        assert torch.equal(net.encode(changed)[0][:, k], base)
        changed[:, k - reach + 1] += 3.0  # the oldest observation it reads
        assert not torch.allclose(net.encode(changed)[0][:, k], base)


@pytest.mark.parametrize("kind", neural_kinds())
def test_every_kind_runs_under_bfloat16_autocast_with_gradients(kind):
    net = randomised(kind).train()
    times, flux, err = bump_curves(2, 64, seed=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(times, flux, err)
    logits = out["logits"]
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    # a kind with an unsupervised loss (the rnn_vae's decoder) is trained through it too
    objective = logits.sum() + out.get("auxiliary_loss", torch.zeros(1)).sum()
    objective.backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("kind", [pytest.param("cnn", marks=pytest.mark.slow), "gru"])
def test_every_neural_kind_trains_saves_and_loads(kind, train_store, tmp_path):
    config = TrainConfig(dataset=str(train_store.path), runs_dir=str(tmp_path / "runs"),
                         run_name=kind, model=ModelConfig(kind=kind, dropout=0.0, **SIZES[kind]),
                         epochs=2, batch_size=16, learning_rate=3e-3, patience=0,
                         max_train_events=64, max_val_events=48, seed=3)
    run_dir = train(config, progress=False)
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["model"]["kind"] == kind and saved["train"]["model"]["kind"] == kind
    metrics = read_metrics(run_dir)
    assert metrics["epochs_run"] == 2 and np.isfinite(metrics["val_loss"])
    model = load_model(run_dir)
    assert type(model) is KINDS[kind].model_class
    assert metrics["n_parameters"] == model.n_parameters == saved["n_parameters"]
    assert float(model.temperature) == pytest.approx(metrics["temperature"])
    rows = train_store.indices("val")[:5]
    batch = train_store.batch(rows)
    probs = model.predict_proba(batch["times"], batch["flux"], batch["flux_err"], batch["mask"])
    again = load_model(run_dir).predict_proba(batch["times"], batch["flux"], batch["flux_err"],
                                              batch["mask"])
    torch.testing.assert_close(probs, again, atol=0, rtol=0)
    torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:2]))


# -- broken run directories --------------------------------------------------------------------


def _saved_run(run_dir, kind: str = "gru"):
    """A run directory as load_model reads it, from a tiny untrained model."""
    model = randomised(kind)
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"model": model.config.to_dict(),
                                                     "dataset_manifest": {
                                                         "max_observations": 321}}))
    model.normalization.save(run_dir / "normalization.json")
    torch.save(model.state_dict(), run_dir / "best.pt")
    return model


def test_a_saved_run_loads_with_its_training_manifest(tmp_path):
    model = _saved_run(tmp_path / "run")
    loaded = load_model(tmp_path / "run")
    assert loaded.dataset_manifest == {"max_observations": 321}
    for name, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value, rtol=0, atol=0)


def test_broken_run_directories_name_the_file_and_the_fault(tmp_path):
    from microlens.models.runs import RunFileError

    run = tmp_path / "gru_run"
    _saved_run(run)
    with pytest.raises(FileNotFoundError, match=r"run directory .*gru_rnu does not exist; "
                                                r"similar names in .*: gru_run"):
        load_model(tmp_path / "gru_rnu")
    with pytest.raises(FileNotFoundError, match=r"run directory .*no/such does not exist \(nor "
                                                r"does .*no\)"):
        load_model(tmp_path / "no" / "such")

    weights = (run / "best.pt").read_bytes()
    (run / "best.pt").write_bytes(weights[:123])
    with pytest.raises(RunFileError, match=rf"{run / 'best.pt'} is truncated or not a PyTorch "
                                           r"checkpoint \(123 bytes.*retrain or restore it"):
        load_model(run)
    (run / "best.pt").write_bytes(b"")
    with pytest.raises(RunFileError, match=r"best.pt is empty \(0 bytes\)"):
        load_model(run)
    (run / "best.pt").write_bytes(weights)

    config = (run / "config.json").read_text()
    (run / "config.json").write_text(config[:40])
    with pytest.raises(RunFileError, match=rf"{run / 'config.json'} is not valid JSON: .* at "
                                           r"line 1, column \d+"):
        load_model(run)
    (run / "config.json").write_text("")
    with pytest.raises(RunFileError, match=r"config.json is empty \(0 bytes\)"):
        load_model(run)
    (run / "config.json").write_text('{"train": {}}')
    with pytest.raises(RunFileError, match=r"config.json has no \"model\" object \(keys: train\)"):
        load_model(run)
    (run / "config.json").write_text(config)
    (run / "normalization.json").write_text('{"dt_scale": ')
    with pytest.raises(RunFileError, match=r"normalization.json is not valid JSON"):
        load_model(run)
    (run / "normalization.json").unlink()
    with pytest.raises(FileNotFoundError, match="normalization.json is missing"):
        load_model(run)
