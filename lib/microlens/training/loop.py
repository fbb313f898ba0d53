"""The one training loop: epochs of optimiser steps over an :class:`Objective`.

Supervised training and fine-tuning (:mod:`microlens.training.train`) and masked pretraining
(:mod:`microlens.training.pretrain`) differ only in their objective: what a batch costs, what the
validation measures, what is saved when the validation loss improves and what a finished run
records. Everything else is this module's, the same for both:

* the set-up of a process (device, torchrun process group, the train and val rows, their
  validity, micro-batches, autocast);
* the run directory (:func:`microlens.models.runs.prepare_run_dir`: fresh, resumed or overwritten);
* the epochs: the shuffle of ``(seed, epoch)``, dropout of ``(seed, epoch, rank)``, the
  learning-rate schedule, one row per step in ``steps.csv`` and per epoch in ``history.csv``
  (:data:`~microlens.models.runs.HISTORY_COLUMNS`), early stopping on the validation loss after
  ``patience`` epochs without improvement, ``last.pt`` after every epoch (resume from it), a
  non-finite validation loss as an error;
* rank 0 as the only writer, every file written to a temporary name and renamed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from microlens.core import seeds
from microlens.core.devices import local_device
from microlens.core.paths import atomic_path
from microlens.core.seeds import subset_rows
from microlens.models.config import CPU_PASS_OBSERVATIONS
from microlens.models.inputs import Normalization
from microlens.models.runs import (
    HISTORY_COLUMNS,
    STEP_COLUMNS,
    prepare_run_dir,
    read_csv_rows,
    read_history,
    start_run_dir,
    write_csv,
)
from microlens.training import ddp

CPU_MICRO_BATCH_OBSERVATIONS = CPU_PASS_OBSERVATIONS
"""Observations per micro-batch on CPU when ``micro_batch_size`` is 0 (see
:data:`microlens.models.config.CPU_PASS_OBSERVATIONS`); gradient accumulation over micro-batches
gives
the same step as one pass."""


def cpu_micro_batch(n_observations: int, pass_observations: int = CPU_MICRO_BATCH_OBSERVATIONS
                    ) -> int:
    """Events per forward pass on CPU for sequences of ``n_observations`` (``pass_observations``
    per pass: the kind's :attr:`~microlens.models.base.CausalClassifier.cpu_pass_observations`)."""
    return max(1, int(pass_observations) // max(1, int(n_observations)))


def plan_micro_batches(rows: np.ndarray, lengths: np.ndarray, max_events: int,
                       max_observations: int | None = None) -> list[np.ndarray]:
    """Split one step's ``rows`` into forward passes.

    With ``max_observations`` (CPU, automatic size) the rows are ordered by length and grouped so
    that each pass pads to at most ``max_observations`` (events x longest of them): curves of 100
    and 20,000 points then share no pass. The loss of the step is a sum over events, so the grouping
    changes only the rounding of the sum. Without it, consecutive groups of ``max_events``.
    """
    rows = np.asarray(rows)
    if max_observations is None:
        return [rows[i : i + max_events] for i in range(0, rows.size, max_events)]
    ordered = rows[np.argsort(np.asarray(lengths)[rows], kind="stable")]
    out, start = [], 0
    sizes = np.maximum(np.asarray(lengths)[ordered], 1)
    while start < ordered.size:
        # sizes ascend, so the pass's padded size is its count times its last length
        stop = start + 1
        while (stop < ordered.size and stop - start < max_events
               and (stop - start + 1) * sizes[stop] <= max_observations):
            stop += 1
        out.append(ordered[start:stop])
        start = stop
    return out


def make_optimizer(model: torch.nn.Module, config, device: torch.device) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, with weight decay on the weight matrices only (not
    on biases and norms); ``config`` is any settings with ``weight_decay`` and
    ``learning_rate`` (:class:`~microlens.training.settings.TrainingSettings`)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trainable if p.ndim >= 2]
    no_decay = [p for p in trainable if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=config.learning_rate, betas=(0.9, 0.95),
                             fused=device.type == "cuda")


def scheduled_learning_rate(config, step: int, total_steps: int) -> float:
    """The learning rate of ``step`` of ``total_steps``: linear warm-up over
    ``warmup_fraction`` of the steps to ``learning_rate``, then cosine decay to
    ``min_lr_fraction`` of it."""
    warmup = max(1, round(config.warmup_fraction * total_steps))
    if step < warmup:
        return config.learning_rate * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    floor = config.min_lr_fraction
    return config.learning_rate * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def precision_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a ``precision`` setting on ``device`` (None: fp32)."""
    if precision == "bf16":
        return torch.bfloat16
    if precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def epoch_order(n: int, seed: int, epoch: int, world: int, rank: int) -> np.ndarray:
    """This rank's share of the epoch's permutation (as torch's DistributedSampler).

    The permutation depends on ``(seed, epoch)`` only (the :data:`microlens.core.seeds.SHUFFLE`
    stream of the pair, so seed 1 at epoch 0 is not seed 0 at epoch 1); rank ``r`` takes every
    ``world``-th position from ``r``, after padding the permutation (by wrapping) to a multiple of
    ``world``. Step ``s`` of every rank together covers positions ``s*B .. s*B+B-1`` of the
    permutation, the same events a single process with the same global batch ``B`` sees.
    """
    order = seeds.rng(seed, seeds.SHUFFLE, epoch).permutation(n)
    total = -(-n // world) * world
    order = np.concatenate([order, order[: total - n]])
    return order[rank::world]


def progress_bar(iterable, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    # Under torchrun the output is a pipe (e.g. microlens.training.ddp.launch): no bar, the epoch
    # lines carry the progress.
    return tqdm(iterable, desc=desc, leave=False, unit="step",
                disable=None if ddp.launched_by_torchrun() else False)


def save_torch(obj, path: Path) -> None:
    """``torch.save`` to a temporary name, renamed when complete."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def read_state(run_dir: Path, resume: bool):
    """The checkpoint ``last.pt`` to resume from, or None (not resuming, or none yet)."""
    if not resume or not (run_dir / "last.pt").is_file():
        return None
    from microlens.models.runs import load_torch

    return load_torch(run_dir / "last.pt", map_location="cpu",
                      remedy="delete it to start the run again (overwrite=True) or restore it")


@dataclass(frozen=True)
class StepResult:
    """What one optimiser step returns; tensors stay on the device."""

    loss: torch.Tensor  # float64 scalar: the step's loss (sum over its events / events)
    totals: torch.Tensor  # float64 (3,): summed event loss, correct final answers, events
    grad_norm: torch.Tensor  # total gradient norm before clipping
    applied: bool  # False when the norm was not finite and the update was skipped


def clip_and_step(parameters, optimizer: torch.optim.Optimizer,
                  grad_clip: float) -> tuple[torch.Tensor, bool]:
    """Clip the gradients to ``grad_clip``, step if their norm is finite, zero them.

    Under DDP the gradients are identical on every rank after the all-reduce, so the norm, and
    the decision to skip a non-finite step, is the same everywhere: no rank skips alone.
    """
    norm = torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
    applied = bool(torch.isfinite(norm))
    if applied:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return norm, applied


# --------------------------------------------------------------------------------------------
# The objective
# --------------------------------------------------------------------------------------------


class Objective:
    """One process's share of a run: data, model, optimiser, and what the objective costs.

    The set-up here is the same for every objective; a subclass says what a batch costs
    (:meth:`train_step`), what validation measures (:meth:`validate`), what is saved on
    improvement (:attr:`best_file`, :meth:`best_state`), what ``config.json`` holds
    (:meth:`config_record`) and what a finished run records (:meth:`finish`).
    """

    label = ""  # prefix of progress lines ("pretrain ")
    what = "run directory"  # how messages name the run directory
    best_file = "best.pt"
    has_accuracy = True  # False: no classes (the history's accuracies are NaN)
    diverged_error: type[Exception] = RuntimeError
    retry_advice = "Train again"
    reads = "training reads the train and val rows it uses"
    repair_advice = ("regenerate the dataset or repair those rows; the test split is never "
                     "read by training")

    def __init__(self, config, progress: bool, per_pass: int):
        from microlens.data.store import open_dataset

        self.config = config
        self.progress = progress
        self.device = local_device(config.device)
        self.distributed = ddp.init_distributed(self.device)
        self.world, self.rank = ddp.world_size(), ddp.rank()
        if config.batch_size % self.world:
            raise ValueError(f"batch_size={config.batch_size} must be divisible by the number of "
                             f"processes ({self.world})")
        self.local_batch = config.batch_size // self.world
        self.store = open_dataset(config.dataset)
        typical = int(np.median(self.store.lengths)) if len(self.store) else 1
        micro = config.micro_batch_size or (cpu_micro_batch(typical, per_pass)
                                            if self.device.type == "cpu" else self.local_batch)
        self.micro_batch = min(micro, self.local_batch)
        # CPU with an automatic size: passes are grouped by padded observations (see
        # plan_micro_batches), so that long curves do not set the size for short ones.
        self.micro_observations = (per_pass if self.device.type == "cpu"
                                   and not config.micro_batch_size else None)
        self.autocast_dtype = precision_dtype(config.precision, self.device)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.train_rows = subset_rows(self.store.indices("train"), config.max_train_events,
                                      config.seed, seeds.TRAIN_SUBSET)
        self.val_rows = subset_rows(self.store.indices("val"), config.max_val_events,
                                    config.seed, seeds.VAL_SUBSET)
        if self.train_rows.size == 0 or self.val_rows.size == 0:
            raise ValueError(f"dataset {self.store.path} needs events in both the train and val "
                             f"splits (has {self.train_rows.size} and {self.val_rows.size})")
        # Before any run directory exists: one NaN would otherwise skip a step every epoch, or
        # (in the validation split) end the run without a best weights file.
        self.store.require_valid(np.concatenate([self.train_rows, self.val_rows]), self.reads,
                                 advice=self.repair_advice)
        per_rank = math.ceil(self.train_rows.size / self.world)
        self.steps_per_epoch = math.ceil(per_rank / self.local_batch)
        self.total_steps = self.steps_per_epoch * config.epochs

    # -- what a subclass says ----------------------------------------------------------------

    def fit_normalization(self) -> Normalization:
        raise NotImplementedError

    def build_module(self, normalization: Normalization) -> torch.nn.Module:
        """The module to train (on the device), its weights drawn after the seed is set."""
        raise NotImplementedError

    def start_fresh(self) -> None:
        """Before the first step of a fresh run (e.g. load a pretrained encoder)."""

    def train_step(self, rows: np.ndarray, epoch: int, learning_rate: float) -> StepResult:
        raise NotImplementedError

    def validate(self) -> dict:
        """``{"val_loss": ..., "val_accuracy": ...}`` on the validation rows, all ranks."""
        raise NotImplementedError

    def best_state(self) -> dict:
        """The state dict saved as :attr:`best_file` when the validation loss improves."""
        return self.module.state_dict()

    def config_record(self) -> dict:
        """What a fresh run's ``config.json`` holds."""
        raise NotImplementedError

    def finish(self, run_dir: Path, history: list[dict], best: dict, stopped_early: bool,
               main: bool) -> None:
        """After the last epoch: calibrate, write ``metrics.json`` (rank 0) and so on."""
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------------

    def build(self, normalization: Normalization) -> None:
        torch.manual_seed(seeds.torch_seed(self.config.seed, seeds.WEIGHT_INIT))
        self.module = self.build_module(normalization)
        self.model = self.module
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.module, device_ids=device_ids)
        self.optimizer = make_optimizer(self.module, self.config, self.device)

    def plan(self, rows: np.ndarray, max_events: int | None = None) -> list[np.ndarray]:
        """This step's (or evaluation's) forward passes over ``rows``."""
        if max_events is None:
            max_events = self.local_batch if self.micro_observations else self.micro_batch
        return plan_micro_batches(rows, self.store.lengths, max_events, self.micro_observations)

    def set_learning_rate(self, learning_rate: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                              enabled=self.autocast_dtype is not None)

    def eval_size(self) -> int:
        """Events per evaluation pass."""
        return self.micro_batch if self.device.type == "cpu" else max(self.micro_batch, 256)

    def train_epoch(self, epoch: int, step: int) -> tuple[int, dict, list[dict]]:
        """One epoch of steps from ``step``: (the next step, the history row's training part,
        the epoch's ``steps.csv`` rows)."""
        c = self.config
        torch.manual_seed(seeds.torch_seed(c.seed, seeds.DROPOUT, epoch, self.rank))
        self.model.train()
        order = self.train_rows[epoch_order(self.train_rows.size, c.seed, epoch, self.world,
                                            self.rank)]
        totals = torch.zeros(3, dtype=torch.float64, device=self.device)  # loss, correct, count
        step_log, skipped = [], 0
        steps = range(0, order.size, self.local_batch)
        bar = progress_bar(steps, f"{self.label}epoch {epoch + 1}/{c.epochs}",
                           self.progress and ddp.is_main())
        started = time.perf_counter()
        for start in bar:
            lr = scheduled_learning_rate(c, step, self.total_steps)
            self.set_learning_rate(lr)
            result = self.train_step(order[start : start + self.local_batch], epoch, lr)
            if result.applied:
                totals += result.totals  # epoch means are over the steps that were applied
            else:
                skipped += 1
            step_log.append((step, result.loss, lr, result.grad_norm.detach().float()))
            step += 1
        seconds = time.perf_counter() - started
        totals = ddp.all_reduce_sum(totals)
        step_losses = torch.stack([s[1] for s in step_log]) if step_log else torch.zeros(0)
        step_losses = ddp.all_reduce_sum(step_losses.to(self.device)) / self.world
        norms = torch.stack([s[3] for s in step_log]).tolist() if step_log else []
        steps_rows = [{"step": s, "epoch": epoch + 1, "loss": float(v), "learning_rate": lr,
                       "grad_norm": g}  # before clipping; the same on every rank
                      for (s, _, lr, _), v, g in zip(step_log, step_losses.tolist(), norms,
                                                     strict=True)]
        applied = float(totals[2])  # events in applied (finite) steps, all ranks
        return step, {
            "train_loss": float(totals[0]) / applied if applied else float("nan"),
            "train_accuracy": (float(totals[1]) / applied if applied and self.has_accuracy
                               else float("nan")),
            "learning_rate": step_log[-1][2] if step_log else float("nan"),
            "train_events_per_second": order.size * self.world / seconds,
            "skipped_steps": skipped,
        }, steps_rows


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


def run(objective: Objective, *, resume: bool = False, overwrite: bool = False,
        on_epoch: Callable[[dict], None] | None = None,
        stop_after_epochs: int | None = None) -> Path:
    """Run ``objective`` to its end (or for ``stop_after_epochs``); returns the run directory.

    Every process under torchrun calls this; rank 0 alone writes. See the module docstring.
    """
    config = objective.config
    run_dir = config.run_dir
    main = ddp.is_main()
    state = _prepare(objective, run_dir, resume, overwrite) if main else None
    ddp.barrier()
    if not main:
        state = read_state(run_dir, resume)
    objective.build(Normalization.load(run_dir / "normalization.json"))
    history, steps_rows, epoch, step = [], [], 0, 0
    best = {"val_loss": math.inf, "epoch": 0, "bad_epochs": 0}
    if state is None:
        objective.start_fresh()
    else:
        objective.module.load_state_dict(state["model"])
        objective.optimizer.load_state_dict(state["optimizer"])
        epoch, step = int(state["epoch"]), int(state["step"])
        best = {"val_loss": float(state["best_val_loss"]), "epoch": int(state["best_epoch"]),
                "bad_epochs": int(state["bad_epochs"])}
        history = read_history(run_dir)[:epoch]
        steps_rows = [r for r in read_csv_rows(run_dir / "steps.csv") if r["step"] < step]
    stopped_early = best["bad_epochs"] >= config.patience > 0
    done_this_call = 0
    while epoch < config.epochs and not stopped_early:
        if stop_after_epochs is not None and done_this_call >= stop_after_epochs:
            return run_dir
        started = time.perf_counter()
        step, row, new_steps = objective.train_epoch(epoch, step)
        scores = objective.validate()
        val_loss = scores["val_loss"]
        if not math.isfinite(val_loss):
            raise objective.diverged_error(
                f"validation loss is {val_loss} after epoch {epoch + 1} of {run_dir}: the "
                f"model diverged (the validation events were checked before training, so the "
                f"weights are at fault). {objective.retry_advice} with a lower learning_rate "
                f"(now {config.learning_rate:g}) or precision='fp32' (now "
                f"{config.precision!r}).")
        epoch += 1
        done_this_call += 1
        row = {"epoch": epoch, **row, **scores,
               "epoch_seconds": time.perf_counter() - started}
        history.append(row)
        steps_rows.extend(new_steps)
        improved = val_loss < best["val_loss"]
        if improved:
            best = {"val_loss": val_loss, "epoch": epoch, "bad_epochs": 0}
        else:
            best["bad_epochs"] += 1
        stopped_early = config.patience > 0 and best["bad_epochs"] >= config.patience
        if main:
            if improved:
                save_torch(objective.best_state(), run_dir / objective.best_file)
            save_torch({"model": objective.module.state_dict(),
                        "optimizer": objective.optimizer.state_dict(), "epoch": epoch,
                        "step": step, "best_val_loss": best["val_loss"],
                        "best_epoch": best["epoch"], "bad_epochs": best["bad_epochs"]},
                       run_dir / "last.pt")
            write_csv(run_dir / "history.csv", history, HISTORY_COLUMNS)
            write_csv(run_dir / "steps.csv", steps_rows, STEP_COLUMNS)
            if objective.progress:
                print(epoch_line(objective.label, row, config.epochs), flush=True)
            if on_epoch is not None:
                on_epoch(dict(row))
        ddp.barrier()
    objective.finish(run_dir, history, best, stopped_early, main)
    ddp.barrier()
    return run_dir


def epoch_line(label: str, row: dict, epochs: int) -> str:
    """The progress line of one history row (accuracies only where the objective has them)."""
    def accuracy(key):
        return f" acc {row[key]:.3f}" if math.isfinite(row[key]) else ""

    return (f"{label}epoch {row['epoch']}/{epochs}  train loss {row['train_loss']:.4f}"
            f"{accuracy('train_accuracy')}  val loss {row['val_loss']:.4f}"
            f"{accuracy('val_accuracy')}  lr {row['learning_rate']:.2e}  "
            f"{row['train_events_per_second']:.0f} events/s")


def _prepare(objective: Objective, run_dir: Path, resume: bool, overwrite: bool):
    """Create or check the run directory on rank 0; returns the checkpoint to resume or None."""
    config = objective.config
    resuming = prepare_run_dir(
        run_dir, resume=resume, overwrite=overwrite, what=objective.what,
        differences=lambda saved: config.saved_differences(saved.get(config.SECTION, {})))
    if resuming:
        return read_state(run_dir, resume=True)
    normalization = objective.fit_normalization()  # a failure here leaves no directory
    start_run_dir(run_dir, objective.config_record())
    normalization.save(run_dir / "normalization.json")
    return None


__all__ = [
    "CPU_MICRO_BATCH_OBSERVATIONS", "Objective", "StepResult", "clip_and_step",
    "cpu_micro_batch", "epoch_line", "epoch_order", "make_optimizer", "plan_micro_batches",
    "precision_dtype", "progress_bar", "read_state", "run", "save_torch",
    "scheduled_learning_rate",
]  # fmt: skip
