"""Distributed training: the torchrun launcher and the rank helpers.

:func:`launch` runs :mod:`microlens.training.train` (any objective: supervised training,
fine-tuning, masked pretraining) under ``torchrun`` (``torch.distributed.run``) in a
subprocess, so the same call works from a notebook cell and from the shell. Inside the workers
:func:`init_distributed` joins the process group (NCCL on GPU, gloo on CPU) and :func:`is_main`
tells rank 0, the only process that writes files and prints progress. Which device a process
uses (``auto``, ``cpu``, ``cuda``) is :mod:`microlens.core.devices`.

The equivalent shell commands (``cfg.json`` written by ``TrainConfig.save``; add
``--objective pretrain`` for a ``PretrainConfig``)::

    # one machine, 4 processes (GPUs, or CPU processes with gloo)
    torchrun --standalone --nproc_per_node 4 -m microlens.training.train --config cfg.json

    # a cluster: 2 nodes x 4 GPUs; run on every node (same rendezvous id and endpoint)
    torchrun --nnodes 2 --nproc_per_node 4 --rdzv_backend c10d \\
        --rdzv_endpoint $HEAD_NODE:29500 --rdzv_id $SLURM_JOB_ID \\
        -m microlens.training.train --config cfg.json

On SLURM, ``srun --nodes 2 --ntasks-per-node 1 torchrun ...`` with ``HEAD_NODE=$(scontrol show
hostnames $SLURM_JOB_NODELIST | head -n1)`` starts one launcher per node.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist

from microlens.models.runs import read_history


def world_size() -> int:
    """Number of processes in the job (1 outside torchrun)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's global rank (0 outside torchrun)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """True on rank 0, the only process that writes files and prints."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    """True when the environment carries torchrun's rendezvous variables."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ and "LOCAL_RANK" in os.environ


def init_distributed(device: torch.device) -> bool:
    """Join the process group when started by torchrun; returns whether it did.

    Uses NCCL for CUDA devices and gloo otherwise.
    """
    if not launched_by_torchrun() or (dist.is_available() and dist.is_initialized()):
        return dist.is_available() and dist.is_initialized()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)
    return True


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over all processes (identity outside a process group)."""
    if world_size() > 1:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class LaunchError(RuntimeError):
    """A torchrun training or pretraining job exited with an error."""


def torchrun_command(config_path: str | os.PathLike, nproc_per_node: int, *,
                     resume: bool = False, overwrite: bool = False, quiet: bool = False,
                     objective: str = "supervised") -> list[str]:
    """The ``python -m torch.distributed.run`` command line that :func:`launch` runs:
    ``python -m microlens.training.train`` of ``objective`` (``--objective pretrain`` for masked
    pretraining) with the settings in ``config_path``."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", str(nproc_per_node), "-m", "microlens.training.train",
               "--config", str(config_path)]
    if objective != "supervised":
        command += ["--objective", objective]
    if resume:
        command.append("--resume")
    if overwrite:
        command.append("--overwrite")
    if quiet:
        command.append("--quiet")
    return command


def launch(config, nproc_per_node: int = 2, *, resume: bool = False, overwrite: bool = False,
           on_epoch: Callable[[dict], None] | None = None, echo: bool = True,
           poll_seconds: float = 1.0) -> Path:
    """Run ``config`` with ``nproc_per_node`` processes under torchrun; returns the run dir.

    Parameters
    ----------
    config : microlens.training.train.TrainConfig or microlens.training.pretrain.PretrainConfig
        Training (or fine-tuning) settings, or masked pretraining settings: the objective
        follows from their type.
    nproc_per_node : int
        Processes on this machine (one per GPU; on CPU each process uses one core).
    resume, overwrite : bool
        As for :func:`microlens.training.train.train`.
    on_epoch : callable, optional
        Called in this process with each new row of the run's ``history.csv`` (as a dict)
        while the job runs, e.g. to update a live figure in a notebook.
    echo : bool
        Print rank 0's output lines as they come.

    Raises
    ------
    LaunchError
        When the job fails; the message carries the end of its output.
    """
    if isinstance(nproc_per_node, bool) or not isinstance(nproc_per_node, int) \
            or nproc_per_node < 1:
        raise ValueError(f"nproc_per_node must be a positive integer, got {nproc_per_node!r}")
    run_dir = config.run_dir
    if resume and overwrite:
        raise ValueError("choose resume or overwrite, not both")
    if overwrite:
        from microlens.core.removal import remove_project_dir

        remove_project_dir(run_dir, "run")  # here, so on_epoch never sees the old run's history
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="microlens-launch-") as tmp:
        objective = "pretrain" if config.SECTION == "pretrain" else "supervised"
        config_path = config.save(Path(tmp) / f"{config.SECTION}_config.json")
        command = torchrun_command(config_path, nproc_per_node, resume=resume,
                                   overwrite=overwrite, quiet=not echo, objective=objective)
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc_per_node)))
        env["PYTHONUNBUFFERED"] = "1"
        tail: deque[str] = deque(maxlen=60)
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, env=env, bufsize=1)

        def pump():
            for line in process.stdout:
                tail.append(line.rstrip("\n"))
                if echo:
                    print(line, end="", flush=True)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        seen = len(read_history(run_dir))  # a resumed run reports only its new epochs
        while True:
            done = process.poll() is not None
            if on_epoch is not None and (run_dir / "history.csv").is_file():
                rows = read_history(run_dir)
                for row in rows[seen:]:
                    on_epoch(row)
                seen = max(seen, len(rows))
            if done:
                break
            time.sleep(poll_seconds)
        reader.join(timeout=10)
        if process.returncode != 0:
            raise LaunchError(f"torchrun exited with code {process.returncode}: "
                              f"{' '.join(command)}\n" + "\n".join(tail))
    return run_dir


__all__ = [
    "LaunchError", "all_reduce_sum", "barrier", "cleanup", "init_distributed", "is_main", "launch",
    "launched_by_torchrun", "rank", "torchrun_command", "world_size",
]  # fmt: skip
