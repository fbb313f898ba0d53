"""DistributedDataParallel on CPU (gloo): two processes reproduce a single-process run."""

from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest
from conftest import copy_dataset

from microlens.ddp import LaunchError, launch, torchrun_command
from microlens.model import ModelConfig
from microlens.train import TrainConfig, read_history, read_metrics, train


def step_column(run_dir, column: str = "loss") -> np.ndarray:
    with open(run_dir / "steps.csv", newline="") as handle:
        return np.array([float(row[column]) for row in csv.DictReader(handle)])


def test_two_gloo_processes_match_one_process(train_store, tmp_path):
    # One poisoned training event: its step must be skipped on both ranks alike (no hang).
    poisoned = copy_dataset(train_store, tmp_path / "poisoned")
    flux = np.load(poisoned / "flux.npy", mmap_mode="r+")
    flux[train_store.indices("train")[0], 3] = np.nan
    flux.flush()
    del flux
    model = ModelConfig(d_model=32, n_heads=4, n_layers=2, d_ff=64, window=16, dropout=0.0)
    single = TrainConfig(dataset=str(poisoned), runs_dir=str(tmp_path / "runs"),
                         run_name="single", model=model, epochs=2, batch_size=32,
                         micro_batch_size=8, max_train_events=128, seed=3, patience=0)
    seen = []
    run_ddp = launch(replace(single, run_name="ddp"), nproc_per_node=2, echo=False,
                     on_epoch=seen.append, poll_seconds=0.2)
    run_single = train(single, progress=False)

    assert sorted(p.name for p in run_ddp.parent.iterdir()) == ["ddp", "single"]
    for name in ("config.json", "normalization.json", "best.pt", "last.pt", "history.csv",
                 "metrics.json"):
        assert (run_ddp / name).is_file(), name
    assert not list(run_ddp.glob(".*tmp"))
    assert read_metrics(run_ddp)["world_size"] == 2
    assert [row["epoch"] for row in seen] == [1, 2]  # live rows reached the caller

    a, b = step_column(run_single), step_column(run_ddp)
    assert a.shape == b.shape == (8,)
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5, equal_nan=True)
    norms_single = step_column(run_single, "grad_norm")
    norms_ddp = step_column(run_ddp, "grad_norm")
    assert np.isnan(norms_ddp).sum() == 2  # the poisoned event, once per epoch
    np.testing.assert_allclose(norms_ddp, norms_single, rtol=1e-4, equal_nan=True)
    first_single, first_ddp = read_history(run_single)[0], read_history(run_ddp)[0]
    assert first_ddp["train_loss"] == pytest.approx(first_single["train_loss"], rel=1e-4)
    assert first_ddp["skipped_steps"] == first_single["skipped_steps"] == 1
    assert read_metrics(run_ddp)["val_loss"] == pytest.approx(read_metrics(run_single)["val_loss"],
                                                              rel=1e-3)


def test_launch_reports_a_failed_job(tmp_path):
    cfg = TrainConfig(dataset=str(tmp_path / "missing"), runs_dir=str(tmp_path / "runs"),
                      run_name="broken")
    with pytest.raises(LaunchError, match="missing"):
        launch(cfg, nproc_per_node=1, echo=False)
    with pytest.raises(ValueError, match="nproc_per_node must be a positive integer, got 0"):
        launch(cfg, nproc_per_node=0)


def test_torchrun_command_is_the_documented_one():
    command = torchrun_command("cfg.json", 4, resume=True)
    assert command[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "4",
                           "-m", "microlens.train", "--config", "cfg.json", "--resume"]
