"""Training: it learns, it resumes exactly, it never reads the test split, it survives NaNs."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import copy_dataset

from microlens.models.config import ModelConfig
from microlens.models.registry import load_model
from microlens.models.runs import RunExistsError, read_history, read_metrics
from microlens.training.train import TrainConfig, observation_weights, train

TINY = ModelConfig(d_model=32, n_heads=4, n_layers=2, d_ff=64, window=16, dropout=0.1)
TIMING = ("epoch_seconds", "train_events_per_second")


def tiny_config(store, tmp_path, **overrides) -> TrainConfig:
    settings = dict(dataset=str(store.path), runs_dir=str(tmp_path / "runs"), run_name="tiny",
                    model=TINY, epochs=2, batch_size=16, learning_rate=3e-3, patience=0,
                    max_train_events=96, seed=7)
    settings.update(overrides)
    return TrainConfig(**settings)


def history_without_timing(run_dir):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in read_history(run_dir)]


def test_observation_weights_sum_to_one_and_favour_the_end():
    mask = torch.tensor([[True] * 5 + [False] * 3, [True] * 8])
    weights = observation_weights(mask, final_weight=0.5)
    torch.testing.assert_close(weights.sum(1), torch.ones(2))
    assert torch.all(weights[0, 5:] == 0)
    assert weights[0, 4] == pytest.approx(0.5 + 0.5 * 5 / 15)  # the final prediction
    assert torch.all(torch.diff(weights[1]) > 0)  # later answers weigh more
    only_final = observation_weights(mask, final_weight=1.0)
    assert only_final[0, 4] == 1 and only_final[0, :4].sum() == 0


@pytest.mark.slow
def test_a_tiny_model_learns_the_three_classes(train_store, tmp_path):
    cfg = tiny_config(train_store, tmp_path, model=replace(TINY, dropout=0.0), epochs=5,
                      max_train_events=0)
    run_dir = train(cfg, progress=False)
    metrics = read_metrics(run_dir)
    history = read_history(run_dir)
    assert len(history) == 5 and metrics["epochs_run"] == 5
    assert metrics["val_accuracy"] > 0.55, metrics  # chance is 1/3
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    for name in ("config.json", "normalization.json", "history.csv", "steps.csv", "best.pt",
                 "last.pt", "metrics.json"):
        assert (run_dir / name).is_file(), name
    assert not list(run_dir.glob(".*tmp"))  # no half-written files left behind
    saved = json.loads((run_dir / "config.json").read_text())
    assert TrainConfig.from_dict(saved["train"]) == cfg
    # weights load with weights_only=True and carry the fitted temperature
    model = load_model(run_dir)
    assert float(model.temperature) == pytest.approx(metrics["temperature"])
    assert metrics["val_nll_final_after_temperature"] <= (
        metrics["val_nll_final_before_temperature"] + 1e-9)
    batch = train_store.batch(train_store.indices("val")[:4])
    probs = model.predict_proba(batch["times"], batch["flux"], batch["flux_err"], batch["mask"])
    torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:2]))


@pytest.mark.slow  # seconds long: trains a run twice
def test_an_interrupted_run_resumes_to_the_same_result(train_store, tmp_path):
    whole = train(tiny_config(train_store, tmp_path, run_name="whole", epochs=3), progress=False)
    cfg = tiny_config(train_store, tmp_path, run_name="pieces", epochs=3)
    train(cfg, progress=False, stop_after_epochs=1)
    assert len(read_history(cfg.run_dir)) == 1 and not (cfg.run_dir / "metrics.json").exists()
    with pytest.raises(RunExistsError, match="pass resume=True"):
        train(cfg, progress=False)
    with pytest.raises(ValueError, match="config differs in learning_rate"):
        train(replace(cfg, learning_rate=1e-2), resume=True, progress=False)
    train(cfg, resume=True, progress=False, stop_after_epochs=1)
    train(cfg, resume=True, progress=False)
    assert history_without_timing(cfg.run_dir) == history_without_timing(whole)
    for name in ("best.pt", "last.pt"):
        a = torch.load(whole / name, weights_only=True)
        b = torch.load(cfg.run_dir / name, weights_only=True)
        a, b = a.get("model", a), b.get("model", b)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert read_metrics(cfg.run_dir)["temperature"] == read_metrics(whole)["temperature"]


@pytest.mark.slow  # seconds long: trains on a corrupted copy of a data set
def test_the_test_split_is_never_read(train_store, tmp_path):
    corrupted = copy_dataset(train_store, tmp_path / "corrupted")
    flux = np.load(corrupted / "flux.npy", mmap_mode="r+")
    for row in train_store.indices("test"):
        flux[train_store.offsets[row] : train_store.offsets[row + 1]] = np.nan
    flux.flush()
    del flux
    clean = train(tiny_config(train_store, tmp_path, run_name="clean", epochs=1), progress=False)
    dirty_cfg = replace(tiny_config(train_store, tmp_path, run_name="dirty", epochs=1),
                        dataset=str(corrupted))
    dirty = train(dirty_cfg, progress=False)
    assert history_without_timing(dirty) == history_without_timing(clean)
    assert np.isfinite(read_metrics(dirty)["val_loss"])


@pytest.mark.slow  # seconds long: trains on a poisoned copy of a data set
def test_a_non_finite_step_is_skipped_not_applied(train_store, tmp_path, monkeypatch):
    # The trainer refuses such a dataset up front (tests/test_validation.py); switch that
    # refusal off to test the safety net behind it.
    from microlens.data.store import LightCurveStore

    monkeypatch.setattr(LightCurveStore, "require_valid", lambda self, rows, purpose, **kw: None)
    poisoned = copy_dataset(train_store, tmp_path / "poisoned")
    flux = np.load(poisoned / "flux.npy", mmap_mode="r+")
    flux[train_store.offsets[train_store.indices("train")[:3]] + 5] = np.nan
    flux.flush()
    del flux
    cfg = replace(tiny_config(train_store, tmp_path, epochs=1, max_train_events=0),
                  dataset=str(poisoned))
    run_dir = train(cfg, progress=False)
    metrics = read_metrics(run_dir)
    assert 1 <= metrics["skipped_steps"] <= 3
    model = load_model(run_dir, which="last")
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_diverged_validation_loss_ends_with_a_clear_error(train_store, tmp_path, monkeypatch):
    from microlens.training import train as training

    def diverged(self, rows):
        return float("nan"), 0.0, torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)

    monkeypatch.setattr(training._Trainer, "evaluate", diverged)
    cfg = tiny_config(train_store, tmp_path, epochs=1, max_train_events=16)
    with pytest.raises(training.TrainingDivergedError,
                       match=r"validation loss is nan after epoch 1 .*lower learning_rate"):
        train(cfg, progress=False)
    assert not (cfg.run_dir / "metrics.json").exists()


def test_bad_settings_are_rejected_with_the_choices(train_store, tmp_path):
    with pytest.raises(ValueError, match="unknown precision 'fp8'; valid: auto, fp32, bf16"):
        tiny_config(train_store, tmp_path, precision="fp8")
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        tiny_config(train_store, tmp_path, batch_size=0)
    # one validation with pretraining: no bool for an integer, no non-finite number
    with pytest.raises(ValueError, match="epochs must be a positive integer, got True"):
        tiny_config(train_store, tmp_path, epochs=True)
    with pytest.raises(ValueError, match="learning_rate must be a positive finite number, "
                                         "got inf"):
        tiny_config(train_store, tmp_path, learning_rate=float("inf"))
    with pytest.raises(ValueError, match=r"final_weight must be in \[0, 1\], got nan"):
        tiny_config(train_store, tmp_path, final_weight=float("nan"))
    with pytest.raises(ValueError, match="unknown TrainConfig settings"):
        TrainConfig.from_dict({"epoch": 3})


@pytest.mark.slow  # seconds long: a Python process that imports torch
def test_the_command_line_refuses_bad_settings_in_one_line():
    out = subprocess.run([sys.executable, "-m", "microlens.training.train", "--precision", "fp8"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "unknown precision 'fp8'" in out.stderr


# The command line run, with one change: after each epoch's files are written, on_epoch stops the
# process (SIGSTOP). The test waits for that stop, a real signal, then kills the process without a
# chance to clean up: the kill lands after exactly one finished epoch, never racing the training.
STOP_AFTER_EACH_EPOCH = """
import os, signal, sys
import microlens.training.train as command_line

run = command_line.train

def train_and_stop_after_each_epoch(config, **options):
    options["on_epoch"] = lambda row: os.kill(os.getpid(), signal.SIGSTOP)
    return run(config, **options)

command_line.train = train_and_stop_after_each_epoch
sys.exit(command_line.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_killed_command_line_run_resumes_to_the_same_result(train_store, tmp_path):
    import os
    import signal

    cfg = tiny_config(train_store, tmp_path, run_name="killed", epochs=3)
    config_path = cfg.save(tmp_path / "cfg.json")
    arguments = ["--config", str(config_path), "--quiet"]
    process = subprocess.Popen([sys.executable, "-c", STOP_AFTER_EACH_EPOCH, *arguments],
                               start_new_session=True)
    try:
        _, status = os.waitpid(process.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), f"the run ended (status {status}) instead of stopping"
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # no chance to clean up
        process.wait()
    assert len(read_history(cfg.run_dir)) == 1
    assert not (cfg.run_dir / "metrics.json").exists()
    command = [sys.executable, "-m", "microlens.training.train", *arguments]
    subprocess.run([*command, "--resume"], check=True, timeout=300)
    # The uninterrupted reference runs the same command line in a fresh process too: this
    # process's torch thread count depends on the tests before it, and another count sums
    # in another order (last-bit differences that training then carries).
    whole_cfg = replace(cfg, run_name="whole")
    whole_path = whole_cfg.save(tmp_path / "whole.json")
    subprocess.run([sys.executable, "-m", "microlens.training.train", "--config", str(whole_path),
                    "--quiet"], check=True, timeout=300)
    whole = whole_cfg.run_dir
    assert history_without_timing(cfg.run_dir) == history_without_timing(whole)
    assert not list(cfg.run_dir.glob(".*tmp"))
    a = torch.load(whole / "best.pt", weights_only=True)
    b = torch.load(cfg.run_dir / "best.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
