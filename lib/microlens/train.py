"""Training: ``train(TrainConfig) -> run directory``; also ``python -m microlens.train``.

A run directory ``outputs/runs/<run_name>/`` holds::

    config.json          the TrainConfig (model settings under "model") and the dataset manifest id
    normalization.json   the input normalisation learned from the training split
    history.csv          one row per epoch: losses, accuracies, learning rate, throughput
    steps.csv            one row per optimiser step: loss, learning rate, gradient norm
    best.pt              state_dict of the epoch with the lowest validation loss (+ temperature)
    last.pt              the full checkpoint of the last finished epoch (resume from it)
    metrics.json         the final summary: best epoch, validation metrics, temperature

Everything is written to a temporary name and renamed, by rank 0 only.

Loss. Every observation's prediction is trained, because the classifier must answer at every
point of a light curve. For an event with ``n`` observations the prediction after observation
``k`` gets weight ``final_weight`` if ``k = n`` plus ``(1 - final_weight) * 2k / (n (n + 1))``:
half of the loss (by default) is on the final answer, the other half on the early answers, with
weights growing linearly with the fraction of the curve seen (an answer after 10 % of the points
counts a tenth as much as one near the end; the first points, which carry no information yet,
count almost nothing). Events are weighted by inverse class frequency of the training split
(mean weight 1) and the batch loss is their weighted sum over the global batch size, so a
step's gradient is the same whether the batch is split into micro-batches or over processes.

Model selection uses the validation split only (early stopping on its loss, same weighting); the
test split is never read. After training the calibration is fitted on the validation split
(minimum negative log-likelihood) and stored in ``best.pt``: with ``temperature_fit="by_count"``
(the default) a temperature curve over the number of observations seen
(:mod:`microlens.calibration`), so that early answers are calibrated too, and the scalar on
final answers beside it; with ``"final"`` the scalar only.

Labels. ``label_policy`` (:mod:`microlens.labels`) decides the class each training and validation
event is taught as: ``physical`` (the stored truth) or ``observable`` (binaries whose binarity
Δχ² is at most ``observable_threshold`` count as PSPL). Loss, class weights, early stopping and
the temperature all see the policy's labels; the dataset keeps the physical ones.

Reproducibility and resumption. Every random draw has its own stream of ``seed``
(:mod:`microlens.seeds`): the initial weights, the event subsets, the shuffling of each epoch
(``(seed, epoch)``) and its dropout (``(seed, epoch, rank)``). ``last.pt`` is written after
every epoch, so a run interrupted at any point resumes from its last finished epoch with
``resume=True`` (``--resume``) and ends exactly where the uninterrupted run ends.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import ddp, seeds
from .calibration import (
    check_temperature_fit,
    fit_temperature,  # noqa: F401  (re-exported)
)
from .cli import add_traceback_option, command_line
from .devices import DEVICES, local_device
from .labels import (
    check_label_policy,
    check_threshold,
    class_weights,  # noqa: F401  (re-exported)
    training_labels,
)
from .model import (
    BASELINE_METHODS,
    CPU_PASS_OBSERVATIONS,
    ModelConfig,
    Normalization,
    final_logits,
)
from .model_kinds import build_model, count_parameters, model_kind
from .paths import atomic_path, resolve_path, write_json_atomic
from .removal import holds_files, mark_project_dir, remove_project_dir
from .runs import (  # noqa: F401  (re-exported)
    HISTORY_COLUMNS,
    STEP_COLUMNS,
    RunExistsError,
    read_csv_rows,
    read_history,
    read_metrics,
    write_csv,
)
from .seeds import subset_rows
from .settings import add_dataclass_options, dataclass_overrides, from_known_fields
from .store import open_dataset
from .summaries import DETECTABILITY_THRESHOLD

PRECISIONS = ("auto", "fp32", "bf16")
CPU_MICRO_BATCH_OBSERVATIONS = CPU_PASS_OBSERVATIONS
"""Observations per micro-batch on CPU when ``micro_batch_size`` is 0 (see
:data:`microlens.model.CPU_PASS_OBSERVATIONS`); gradient accumulation over micro-batches gives
the same step as one pass."""


def cpu_micro_batch(n_observations: int, pass_observations: int = CPU_MICRO_BATCH_OBSERVATIONS
                    ) -> int:
    """Events per forward pass on CPU for sequences of ``n_observations`` (``pass_observations``
    per pass: the kind's :attr:`~microlens.model.CausalClassifier.cpu_pass_observations`)."""
    return max(1, int(pass_observations) // max(1, int(n_observations)))


def plan_micro_batches(rows: np.ndarray, lengths: np.ndarray, max_events: int,
                       max_observations: int | None = None) -> list[np.ndarray]:
    """Split one step's ``rows`` into forward passes.

    With ``max_observations`` (CPU, automatic size) the rows are ordered by length and grouped
    so that each pass pads to at most ``max_observations`` (events x longest of them): curves
    of 100 and 20,000 points then share no pass. The loss of the step is a sum over events, so
    the grouping changes only the rounding of the sum. Without it, consecutive groups of
    ``max_events``.
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


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (saved as ``config.json``)."""

    dataset: str = "data/quick"  # dataset directory written by 01_simulate / generate_dataset
    run_name: str = "quick"  # the run directory is <runs_dir>/<run_name>
    runs_dir: str = "outputs/runs"  # where run directories go (relative: from the project root)
    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 20  # upper bound; early stopping may end sooner
    batch_size: int = 64  # global batch: all processes together
    micro_batch_size: int = 0  # events per forward pass (gradient accumulation); 0: automatic
    learning_rate: float = 1e-3  # peak learning rate of AdamW
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05  # share of all steps with a linear warm-up
    min_lr_fraction: float = 0.05  # cosine decay ends at this share of the peak
    grad_clip: float = 1.0  # clip the global gradient norm
    patience: int = 5  # stop after this many epochs without a better validation loss
    final_weight: float = 0.5  # share of each event's loss on its final prediction
    precision: str = "auto"  # auto (bf16 on a CUDA GPU that supports it, else fp32), fp32, bf16
    device: str = "auto"  # auto, cpu or cuda
    seed: int = 0  # weights, shuffling and dropout seed
    max_train_events: int = 0  # 0: the whole training split; else a fixed random subset
    max_val_events: int = 0  # 0: the whole validation split
    reference_points: int = 20  # observations that set each event's baseline (Normalization)
    normalization_events: int = 2000  # training events used to fit the normalisation
    # the causal baseline of each event (Normalization.baseline_method): "first" (its first
    # reference_points observations) or "robust" (follows the lowest block level seen so far)
    baseline_method: str = "robust"  # robust (lowest block level yet) or first (first observations)
    # "by_count": a temperature curve over the number of observations seen
    # (microlens.calibration), so early answers are calibrated too; "final": one temperature
    # fitted on final answers only
    temperature_fit: str = "by_count"  # by_count (per observations seen) or final (one temperature)
    label_policy: str = "physical"  # physical, or observable: binaries of Δχ² ≤ threshold as PSPL
    observable_threshold: float = DETECTABILITY_THRESHOLD  # Δχ² of the observable policy

    def __post_init__(self):
        if isinstance(self.model, dict):
            object.__setattr__(self, "model", ModelConfig.from_dict(self.model))
        positive = ("epochs", "batch_size", "learning_rate", "grad_clip", "reference_points",
                    "normalization_events")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"TrainConfig.{name} must be positive, got "
                                 f"{getattr(self, name)!r}")
        for name in ("micro_batch_size", "max_train_events", "max_val_events", "patience",
                     "weight_decay"):
            if getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("warmup_fraction", "min_lr_fraction", "final_weight"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"TrainConfig.{name} must be in [0, 1], got "
                                 f"{getattr(self, name)!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"TrainConfig.seed must be a non-negative integer, got {self.seed!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; "
                             f"valid: {', '.join(PRECISIONS)}")
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}; valid: {', '.join(DEVICES)}")
        check_label_policy(self.label_policy)
        check_threshold(self.observable_threshold)
        if self.baseline_method not in BASELINE_METHODS:
            raise ValueError(f"unknown baseline_method {self.baseline_method!r}; "
                             f"valid: {', '.join(BASELINE_METHODS)}")
        check_temperature_fit(self.temperature_fit)
        if not self.run_name or "/" in self.run_name or self.run_name.startswith("."):
            raise ValueError(f"run_name must be a plain directory name, got {self.run_name!r}")

    @property
    def run_dir(self) -> Path:
        return resolve_path(self.runs_dir) / self.run_name

    def to_dict(self) -> dict:
        data = asdict(self)
        data["model"] = self.model.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        return from_known_fields(cls, data, "TrainConfig settings")

    def save(self, path: str | os.PathLike) -> Path:
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainConfig:
        """Read a saved config; a field it lacks was written before the field existed and
        takes the value of that time (:data:`TRAIN_SAVED_BEFORE_FIELD`,
        :meth:`ModelConfig.from_saved`), so an old run resumes and evaluates as it was."""
        from .runs import read_json

        data = read_json(path)
        data = {**TRAIN_SAVED_BEFORE_FIELD, **data.get("train", data)}
        if isinstance(data.get("model"), dict):
            data["model"] = ModelConfig.from_saved(data["model"])
        return cls.from_dict(data)


TRAIN_SAVED_BEFORE_FIELD = {"baseline_method": "first", "temperature_fit": "final",
                            "label_policy": "physical"}
"""The behaviour of runs saved before these :class:`TrainConfig` fields existed."""


class TrainingDivergedError(RuntimeError):
    """The validation loss became non-finite: the weights diverged."""


# --------------------------------------------------------------------------------------------
# Loss and metrics
# --------------------------------------------------------------------------------------------


def observation_weights(mask: torch.Tensor, final_weight: float) -> torch.Tensor:
    """Per-observation loss weights ``(B, N)``; each valid row sums to 1 (module docstring)."""
    mask_f = mask.float()
    n = mask_f.sum(dim=1, keepdim=True).clamp_min(1)
    k = torch.cumsum(mask_f, dim=1) * mask_f
    ramp = 2 * k / (n * (n + 1))
    last = (k == n) & mask
    return (1 - final_weight) * ramp + final_weight * last.float()


def event_losses(logits, labels, mask, final_weight: float) -> torch.Tensor:
    """Each event's weighted cross-entropy over its per-observation predictions, ``(B,)``."""
    per_obs = F.cross_entropy(logits.float().transpose(1, 2),
                              labels[:, None].expand(-1, logits.shape[1]), reduction="none")
    weights = observation_weights(mask, final_weight)
    return (torch.where(mask, per_obs, 0.0) * weights).sum(dim=1)


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


def make_optimizer(model: torch.nn.Module, config: TrainConfig,
                   device: torch.device) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, with weight decay on the weight matrices only (not
    on biases and norms); ``config`` is any settings with ``weight_decay`` and
    ``learning_rate`` (:class:`TrainConfig`, :class:`microlens.pretrain.PretrainConfig`)."""
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
    ``min_lr_fraction`` of it (``config``: :class:`TrainConfig` or
    :class:`microlens.pretrain.PretrainConfig`)."""
    warmup = max(1, round(config.warmup_fraction * total_steps))
    if step < warmup:
        return config.learning_rate * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    floor = config.min_lr_fraction
    return config.learning_rate * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def _precision_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "bf16":
        return torch.bfloat16
    if precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def _epoch_order(n: int, seed: int, epoch: int, world: int, rank: int) -> np.ndarray:
    """This rank's share of the epoch's permutation (as torch's DistributedSampler).

    The permutation depends on ``(seed, epoch)`` only (the :data:`microlens.seeds.SHUFFLE`
    stream of the pair, so seed 1 at epoch 0 is not seed 0 at epoch 1); rank ``r`` takes every
    ``world``-th position from ``r``, after padding the permutation (by wrapping) to a multiple of
    ``world``. Step ``s`` of every rank together covers positions ``s*B .. s*B+B-1`` of the
    permutation, the same events a single process with the same global batch ``B`` sees.
    """
    order = seeds.rng(seed, seeds.SHUFFLE, epoch).permutation(n)
    total = -(-n // world) * world
    order = np.concatenate([order, order[: total - n]])
    return order[rank::world]


class _Trainer:
    def __init__(self, config: TrainConfig, progress: bool):
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
        per_pass = (model_kind(config.model.kind).model_class.cpu_pass_observations
                    if model_kind(config.model.kind).neural else CPU_MICRO_BATCH_OBSERVATIONS)
        micro = config.micro_batch_size or (cpu_micro_batch(typical, per_pass)
                                            if self.device.type == "cpu" else self.local_batch)
        self.micro_batch = min(micro, self.local_batch)
        # CPU with an automatic size: passes are grouped by padded observations (see
        # plan_micro_batches), so that long curves do not set the size for short ones.
        self.micro_observations = (per_pass if self.device.type == "cpu"
                                   and not config.micro_batch_size else None)
        self.autocast_dtype = _precision_dtype(config.precision, self.device)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        self.train_rows = subset_rows(self.store.indices("train"), config.max_train_events,
                                      config.seed, seeds.TRAIN_SUBSET)
        self.val_rows = subset_rows(self.store.indices("val"), config.max_val_events, config.seed,
                                seeds.VAL_SUBSET)
        if self.train_rows.size == 0 or self.val_rows.size == 0:
            raise ValueError(f"dataset {self.store.path} needs events in both the train and val "
                             f"splits (has {self.train_rows.size} and {self.val_rows.size})")
        # Before any run directory exists: one NaN would otherwise skip a step every epoch, or
        # (in the validation split) end the run without a best.pt.
        self.store.require_valid(
            np.concatenate([self.train_rows, self.val_rows]),
            "training reads the train and val rows it uses",
            advice="regenerate the dataset (generate_dataset(..., overwrite=True)) or repair "
                   "those rows; the test split is never read by training")
        # The store keeps the physical labels; training, validation and the temperature fit
        # read the policy's labels (microlens.labels) through self.batch.
        self.labels = np.asarray(self.store.labels, np.int64).copy()
        used = np.concatenate([self.train_rows, self.val_rows])
        self.labels[used] = training_labels(self.store, used, config.label_policy,
                                            config.observable_threshold)
        self.class_weights = class_weights(self.labels[self.train_rows],
                                           config.model.n_classes).to(self.device)
        per_rank = math.ceil(self.train_rows.size / self.world)
        self.steps_per_epoch = math.ceil(per_rank / self.local_batch)
        self.total_steps = self.steps_per_epoch * config.epochs

    # -- set-up --------------------------------------------------------------------------

    def fit_normalization(self) -> Normalization:
        entry = model_kind(self.config.model.kind)
        if entry.model_class is not None:  # a pretrained encoder keeps its own normalisation
            pretrained = entry.model_class.pretrained_normalization(self.config.model)
            if pretrained is not None:
                return pretrained
        rows = subset_rows(self.train_rows, self.config.normalization_events, self.config.seed,
                       seeds.NORMALIZATION_EVENTS)
        batch = self.store.batch(rows)
        return Normalization.fit(batch["times"], batch["flux"], batch["flux_err"], batch["mask"],
                                 reference_points=self.config.reference_points,
                                 baseline_method=self.config.baseline_method)

    def build(self, normalization: Normalization):
        torch.manual_seed(seeds.torch_seed(self.config.seed, seeds.WEIGHT_INIT))
        model = build_model(self.config.model, normalization).to(self.device)
        self.model = model
        self.module = model
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(model, device_ids=device_ids)
        self.optimizer = make_optimizer(model, self.config, self.device)

    def learning_rate(self, step: int) -> float:
        """Linear warm-up to the peak, then cosine decay to ``min_lr_fraction`` of it."""
        return scheduled_learning_rate(self.config, step, self.total_steps)

    def batch(self, rows: np.ndarray) -> dict:
        """The store's batch of ``rows`` with the label policy's labels."""
        batch = self.store.batch(rows)
        batch["labels"] = torch.from_numpy(self.labels[np.asarray(rows, np.int64)])
        return batch

    def _to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def _forward(self, batch: dict, model: torch.nn.Module) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                            enabled=self.autocast_dtype is not None):
            return model(batch["times"], batch["flux"], batch["flux_err"],
                         batch["mask"])["logits"]

    def _weighted_loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        """Sum over the batch's events of class weight x per-event loss."""
        losses = event_losses(logits, batch["labels"], batch["mask"], self.config.final_weight)
        return (self.class_weights[batch["labels"]] * losses).sum()

    def _totals(self, weighted_loss: torch.Tensor, logits: torch.Tensor,
                batch: dict) -> torch.Tensor:
        """(weighted loss, correct final answers, events) of one batch, float64 on the device;
        built without a host-to-device copy, so no step waits on the GPU."""
        correct = (final_logits(logits.detach(), batch["mask"]).argmax(-1) == batch["labels"]).sum()
        count = torch.full((), batch["labels"].numel(), dtype=torch.float64, device=self.device)
        return torch.stack([weighted_loss.detach().double(), correct.double(), count])

    # -- one epoch -----------------------------------------------------------------------

    def train_epoch(self, epoch: int, step: int):
        c = self.config
        torch.manual_seed(seeds.torch_seed(c.seed, seeds.DROPOUT, epoch, self.rank))
        self.model.train()
        order = self.train_rows[_epoch_order(self.train_rows.size, c.seed, epoch, self.world,
                                             self.rank)]
        totals = torch.zeros(3, dtype=torch.float64, device=self.device)  # loss, correct, count
        step_log, skipped = [], 0
        steps = range(0, order.size, self.local_batch)
        bar = _progress(steps, f"epoch {epoch + 1}/{c.epochs}", self.progress and ddp.is_main())
        started = time.perf_counter()
        for start in bar:
            lr = self.learning_rate(step)
            result = self.train_step(order[start : start + self.local_batch], lr)
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
        processed = order.size * self.world
        return step, {
            "train_loss": float(totals[0]) / applied if applied else float("nan"),
            "train_accuracy": float(totals[1]) / applied if applied else float("nan"),
            "learning_rate": step_log[-1][2] if step_log else float("nan"),
            "epoch_seconds": seconds,
            "train_events_per_second": processed / seconds,
            "skipped_steps": skipped,
        }, steps_rows

    def train_step(self, rows: np.ndarray, learning_rate: float) -> StepResult:
        """One optimiser step on the events ``rows`` of this rank (see :func:`train_step`)."""
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        micro_batches = plan_micro_batches(rows, self.store.lengths, self.local_batch
                                           if self.micro_observations else self.micro_batch,
                                           self.micro_observations)
        return train_step(self.model, self.optimizer, micro_batches,
                          lambda part: self._to_device(self.batch(part)),
                          n_events=rows.size, class_weights=self.class_weights,
                          final_weight=self.config.final_weight, grad_clip=self.config.grad_clip,
                          autocast_dtype=self.autocast_dtype)

    @torch.no_grad()
    def evaluate(self, rows: np.ndarray):
        """Weighted loss, final accuracy and final logits over ``rows`` (sharded over ranks)."""
        model = self.module
        model.eval()
        mine = rows[self.rank :: self.world]
        totals = torch.zeros(3, dtype=torch.float64, device=self.device)
        logits_out, labels_out = [], []
        size = self.micro_batch if self.device.type == "cpu" else max(self.micro_batch, 256)
        for start in range(0, mine.size, size):
            batch = self._to_device(self.batch(mine[start : start + size]))
            logits = self._forward(batch, model)
            totals += self._totals(self._weighted_loss(logits, batch), logits, batch)
            logits_out.append(final_logits(logits, batch["mask"]).float().cpu())
            labels_out.append(batch["labels"].cpu())
        totals = ddp.all_reduce_sum(totals)
        n = float(totals[2])
        return (float(totals[0]) / n, float(totals[1]) / n,
                torch.cat(logits_out) if logits_out
                else torch.zeros(0, self.config.model.n_classes),
                torch.cat(labels_out) if labels_out else torch.zeros(0, dtype=torch.long))


@dataclass(frozen=True)
class StepResult:
    """What one optimiser step (:func:`train_step`) returns; tensors stay on the device."""

    loss: torch.Tensor  # float64 scalar: the step's loss (weighted sum over its events / events)
    totals: torch.Tensor  # float64 (3,): weighted loss, correct final answers, events
    grad_norm: torch.Tensor  # total gradient norm before clipping
    applied: bool  # False when the norm was not finite and the update was skipped


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, micro_batches,
               load: Callable[[object], dict], *, n_events: int, class_weights: torch.Tensor,
               final_weight: float, grad_clip: float,
               autocast_dtype: torch.dtype | None = None) -> StepResult:
    """One optimiser step, as :func:`train` takes it (the benchmark times this very function).

    Every micro-batch is loaded, run forward under autocast (``autocast_dtype``; None: fp32),
    and its class-weighted per-event loss (:func:`event_losses`), plus the kind's unsupervised
    per-event loss where it has one (``"auxiliary_loss"``, e.g. the ``rnn_vae``'s
    reconstruction and KL terms), divided by ``n_events`` is back-propagated (gradient
    accumulation, so the step equals one pass over the whole batch); then the gradients are
    clipped to ``grad_clip`` and, if their norm is finite, the optimiser steps. The gradients
    are zeroed afterwards.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier, or its ``DistributedDataParallel`` wrapper (gradients are then
        all-reduced once, on the last micro-batch).
    optimizer : torch.optim.Optimizer
        Its learning rate is the caller's to set.
    micro_batches : sequence
        One item per micro-batch, handed to ``load``.
    load : callable
        ``load(item)`` gives a batch dict (``times, flux, flux_err, mask, labels``) on the
        model's device.
    n_events : int
        Events in the global step on this process (the loss is a sum over them divided by it).
    class_weights : torch.Tensor
        Weight of each class, on the model's device.
    final_weight, grad_clip : float
        As in :class:`TrainConfig`.
    autocast_dtype : torch.dtype, optional
        Autocast dtype (``torch.bfloat16``), or None for fp32.
    """
    from torch.nn.parallel import DistributedDataParallel

    distributed = isinstance(model, DistributedDataParallel)
    module = model.module if distributed else model
    step_loss = step_totals = None
    for i, item in enumerate(micro_batches):
        batch = load(item)
        sync = i == len(micro_batches) - 1
        context = model.no_sync() if distributed and not sync else nullcontext()
        device = batch["labels"].device
        if step_loss is None:
            step_loss = torch.zeros((), dtype=torch.float64, device=device)
            step_totals = torch.zeros(3, dtype=torch.float64, device=device)
        with context:
            with torch.autocast(device.type, dtype=autocast_dtype or torch.float32,
                                enabled=autocast_dtype is not None):
                out = model(batch["times"], batch["flux"], batch["flux_err"], batch["mask"])
            logits = out["logits"]
            losses = event_losses(logits, batch["labels"], batch["mask"], final_weight)
            weighted = (class_weights[batch["labels"]] * losses).sum()
            objective = weighted
            if "auxiliary_loss" in out:  # a kind's unsupervised loss, not class-weighted
                objective = objective + out["auxiliary_loss"].float().sum()
            loss = objective / n_events
            loss.backward()
        step_loss += loss.detach().double()
        correct = (final_logits(logits.detach(), batch["mask"]).argmax(-1)
                   == batch["labels"]).sum()
        count = torch.full((), batch["labels"].numel(), dtype=torch.float64, device=device)
        step_totals += torch.stack([weighted.detach().double(), correct.double(), count])
    if step_loss is None:
        raise ValueError("train_step needs at least one micro-batch")
    # Under DDP the gradients are identical on every rank after the all-reduce, so the norm, and
    # the decision to skip a non-finite step, is the same everywhere: no rank skips alone.
    norm = torch.nn.utils.clip_grad_norm_(module.parameters(), grad_clip)
    applied = bool(torch.isfinite(norm))
    if applied:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return StepResult(loss=step_loss, totals=step_totals, grad_norm=norm, applied=applied)


def _progress(iterable, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    # Under torchrun the output is a pipe (e.g. microlens.ddp.launch): no bar, the epoch lines
    # carry the progress.
    return tqdm(iterable, desc=desc, leave=False, unit="step",
                disable=None if ddp.launched_by_torchrun() else False)


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _save_torch(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def train(config: TrainConfig, *, resume: bool = False, overwrite: bool = False,
          progress: bool = True, on_epoch: Callable[[dict], None] | None = None,
          stop_after_epochs: int | None = None) -> Path:
    """Train a classifier of any kind (``config.model.kind``); returns the run directory.

    The neural kinds (:func:`microlens.model_kinds.neural_kinds`) share this loop: the same
    loss, AMP, early stopping, resumption and DDP. The ``features`` kind is fitted by
    :func:`microlens.feature_model.train_features` into a run directory of the same layout
    (``on_epoch`` and ``stop_after_epochs`` do not apply to it).

    Parameters
    ----------
    config : TrainConfig
    resume : bool
        Continue the run in ``config.run_dir`` from its ``last.pt`` (its config must match).
    overwrite : bool
        Delete an existing run directory of the same name first: only one the project made
        (see :mod:`microlens.removal`; anything else raises ``UnsafeDeleteError``).
    progress : bool
        Progress bars and one line per epoch (rank 0).
    on_epoch : callable, optional
        Called on rank 0 with each epoch's history row (e.g. a live figure).
    stop_after_epochs : int, optional
        End this call after that many epochs, leaving a resumable run (for time-boxed jobs).

    Under torchrun (see :mod:`microlens.ddp`) every process calls this; rank 0 writes.
    """
    if resume and overwrite:
        raise ValueError("choose resume or overwrite, not both")
    if config.model.kind == "features":  # fitted by scikit-learn, not by this loop
        from .feature_model import train_features

        # the prefix fits run in processes (results do not depend on how many)
        workers = max(1, min(4, len(os.sched_getaffinity(0))))
        return train_features(config, workers=workers, resume=resume, overwrite=overwrite,
                              progress=progress)
    run_dir = config.run_dir
    try:
        trainer = _Trainer(config, progress)
        main = ddp.is_main()
        state = _prepare_run_dir(config, run_dir, resume, overwrite, trainer) if main else None
        ddp.barrier()
        if not main:
            state = _read_state(run_dir, resume)
        normalization = Normalization.load(run_dir / "normalization.json")
        trainer.build(normalization)
        history, steps_rows = [], []
        first_epoch, step = 0, 0
        best = {"val_loss": math.inf, "epoch": 0, "bad_epochs": 0}
        if state is None:
            trainer.module.load_pretrained()
        else:
            trainer.module.load_state_dict(state["model"])
            trainer.optimizer.load_state_dict(state["optimizer"])
            first_epoch, step = int(state["epoch"]), int(state["step"])
            best = {"val_loss": float(state["best_val_loss"]), "epoch": int(state["best_epoch"]),
                    "bad_epochs": int(state["bad_epochs"])}
            history = read_history(run_dir)[:first_epoch]
            steps_rows = [r for r in read_csv_rows(run_dir / "steps.csv") if r["step"] < step]
        stopped_early = best["bad_epochs"] >= config.patience > 0
        epoch = first_epoch
        done_this_call = 0
        while epoch < config.epochs and not stopped_early:
            if stop_after_epochs is not None and done_this_call >= stop_after_epochs:
                return run_dir
            step, row, new_steps = trainer.train_epoch(epoch, step)
            val_loss, val_accuracy, _, _ = trainer.evaluate(trainer.val_rows)
            if not math.isfinite(val_loss):
                raise TrainingDivergedError(
                    f"validation loss is {val_loss} after epoch {epoch + 1} of {run_dir}: the "
                    f"model diverged (the validation events were checked before training, so "
                    f"the weights are at fault). Train again with a lower learning_rate (now "
                    f"{config.learning_rate:g}) or precision='fp32' (now {config.precision!r}).")
            epoch += 1
            done_this_call += 1
            row = {"epoch": epoch, **row, "val_loss": val_loss, "val_accuracy": val_accuracy}
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
                    _save_torch(trainer.module.state_dict(), run_dir / "best.pt")
                _save_torch({"model": trainer.module.state_dict(),
                             "optimizer": trainer.optimizer.state_dict(), "epoch": epoch,
                             "step": step, "best_val_loss": best["val_loss"],
                             "best_epoch": best["epoch"], "bad_epochs": best["bad_epochs"]},
                            run_dir / "last.pt")
                write_csv(run_dir / "history.csv", history, HISTORY_COLUMNS)
                write_csv(run_dir / "steps.csv", steps_rows, STEP_COLUMNS)
                if progress:
                    print(f"epoch {epoch}/{config.epochs}  train loss {row['train_loss']:.4f} "
                          f"acc {row['train_accuracy']:.3f}  val loss {val_loss:.4f} "
                          f"acc {val_accuracy:.3f}  lr {row['learning_rate']:.2e}  "
                          f"{row['train_events_per_second']:.0f} events/s", flush=True)
                if on_epoch is not None:
                    on_epoch(dict(row))
            ddp.barrier()
        _finish(trainer, run_dir, history, best, stopped_early, main)
        return run_dir
    finally:
        ddp.cleanup()


def _prepare_run_dir(config, run_dir: Path, resume: bool, overwrite: bool, trainer):
    """Create or check the run directory on rank 0; returns the checkpoint to resume or None."""
    if overwrite:
        remove_project_dir(run_dir, "run")
    if holds_files(run_dir):
        if not resume:
            raise RunExistsError(f"run directory {run_dir} exists; pass resume=True (--resume) "
                                 "to continue it or overwrite=True (--overwrite) to start again")
        saved = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        if saved["train"] != config.to_dict():
            differ = sorted(k for k in config.to_dict()
                            if saved["train"].get(k) != config.to_dict()[k])
            raise ValueError(f"cannot resume {run_dir}: its config differs in {differ}")
        for stale in run_dir.glob(".*.tmp"):  # left by a process killed while writing
            stale.unlink()
        return _read_state(run_dir, resume=True)
    normalization = trainer.fit_normalization()  # a bad pretraining fails before any file
    mark_project_dir(run_dir, "run")
    write_json_atomic(run_dir / "config.json", {
        "train": config.to_dict(), "model": config.model.to_dict(),
        "dataset_manifest": {k: trainer.store.manifest.get(k) for k in
                             ("n_events", "n_epochs", "reference_epoch", "n_observations",
                              "max_observations", "class_counts", "split_counts", "config")},
        "world_size": trainer.world, "device": str(trainer.device),
        "precision": str(trainer.autocast_dtype or torch.float32).replace("torch.", ""),
        "micro_batch_size": trainer.micro_batch,
        "n_parameters": count_parameters(config.model),
        "torch_version": torch.__version__,
    })
    normalization.save(run_dir / "normalization.json")
    return None


def _read_state(run_dir: Path, resume: bool):
    if not resume or not (run_dir / "last.pt").is_file():
        return None
    from .runs import load_torch

    return load_torch(run_dir / "last.pt", map_location="cpu",
                      remedy="delete it to start the run again (overwrite=True) or restore it")


def _finish(trainer: _Trainer, run_dir: Path, history, best, stopped_early, main) -> None:
    """Fit the temperature on the validation split with the best weights; write metrics.json."""
    best_state = torch.load(run_dir / "best.pt", map_location=trainer.device, weights_only=True)
    trainer.module.load_state_dict(best_state)
    val_loss, val_accuracy, logits, labels = trainer.evaluate(trainer.val_rows)
    if trainer.world > 1:  # every rank needs all validation logits for the same temperature
        import torch.distributed as dist

        gathered = [None] * trainer.world
        dist.all_gather_object(gathered, (logits, labels))
        logits = torch.cat([g[0] for g in gathered])
        labels = torch.cat([g[1] for g in gathered])
    temperature = fit_temperature(logits, labels)
    trainer.module.temperature.fill_(temperature)
    curve = None
    if trainer.config.temperature_fit == "by_count":
        curve = _fit_temperature_curve(trainer, temperature)
    if main:
        _save_torch(trainer.module.state_dict(), run_dir / "best.pt")
        nll_before = float(F.cross_entropy(logits.double(), labels))
        nll_after = float(F.cross_entropy(logits.double() / temperature, labels))
        speeds = [r["train_events_per_second"] for r in history]
        write_json_atomic(run_dir / "metrics.json", {
            "run_dir": str(run_dir),
            "best_epoch": best["epoch"],
            "epochs_run": len(history),
            "stopped_early": bool(stopped_early),
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "val_nll_final_before_temperature": nll_before,
            "val_nll_final_after_temperature": nll_after,
            "temperature": temperature,
            "temperature_fit": trainer.config.temperature_fit,
            **({"temperature_curve": curve} if curve is not None else {}),
            "n_val_events": int(labels.numel()),
            "n_train_events": int(trainer.train_rows.size),
            "skipped_steps": int(sum(r["skipped_steps"] for r in history)),
            "train_events_per_second": float(np.median(speeds)) if speeds else None,
            "world_size": trainer.world,
            "device": str(trainer.device),
            "n_parameters": trainer.module.n_parameters,
        })


def _fit_temperature_curve(trainer: _Trainer, temperature: float) -> dict:
    """Fit and store the temperature over observations seen (``temperature_fit="by_count"``)
    on the validation split's answers at log-spaced counts of every event
    (:func:`microlens.calibration.count_positions`); returns its JSON record."""
    from .calibration import count_positions, fit_temperature_curve, temperature_knots

    model = trainer.module
    model.eval()
    mine = trainer.val_rows[trainer.rank :: trainer.world]
    logits_out, labels_out, counts_out = [], [], []
    size = trainer.micro_batch if trainer.device.type == "cpu" else max(trainer.micro_batch, 256)
    with torch.no_grad():
        for start in range(0, mine.size, size):
            batch = trainer._to_device(trainer.batch(mine[start : start + size]))
            logits = trainer._forward(batch, model).float()
            events, positions = count_positions(batch["mask"].sum(dim=1).cpu().numpy())
            logits_out.append(logits[torch.as_tensor(events, device=logits.device),
                                     torch.as_tensor(positions, device=logits.device)].cpu())
            labels_out.append(batch["labels"].cpu()[events])
            counts_out.append(positions + 1)
    logits = torch.cat(logits_out)
    labels = torch.cat(labels_out)
    counts = np.concatenate(counts_out)
    if trainer.world > 1:  # the same curve on every rank
        import torch.distributed as dist

        gathered = [None] * trainer.world
        dist.all_gather_object(gathered, (logits, labels, counts))
        logits = torch.cat([g[0] for g in gathered])
        labels = torch.cat([g[1] for g in gathered])
        counts = np.concatenate([g[2] for g in gathered])
    knots = temperature_knots(int(max(trainer.store.lengths.max(initial=1), 1)))
    temperatures = fit_temperature_curve(logits, labels, counts, knots, start=temperature)
    model.set_temperature_curve(knots, temperatures)
    curve_t = model.temperature_at(counts)[:, None]
    return {
        "counts": knots.tolist(), "temperatures": temperatures.tolist(),
        "n_answers": int(counts.size),
        "val_nll_sampled_scalar": float(F.cross_entropy(logits.double() / temperature, labels)),
        "val_nll_sampled_curve": float(F.cross_entropy(logits.double() / curve_t, labels)),
    }


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def parse_args(argv=None):
    """Command-line options: ``--config JSON`` and any TrainConfig / ModelConfig setting."""
    parser = argparse.ArgumentParser(
        prog="python -m microlens.train", description=__doc__.split("\n\n")[0],
        epilog="Under torchrun: torchrun --standalone --nproc_per_node N -m microlens.train ...")
    parser.add_argument("--config", help="a TrainConfig JSON file (e.g. a run's config.json)")
    parser.add_argument("--resume", action="store_true", help="continue from last.pt")
    parser.add_argument("--overwrite", action="store_true", help="start the run again")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    add_traceback_option(parser)
    # no argparse choices: TrainConfig's own check names the bad value and the valid ones, the
    # same message as from Python
    add_dataclass_options(parser, TrainConfig, skip=("model",))
    add_dataclass_options(parser, ModelConfig)
    args = parser.parse_args(argv)
    base = TrainConfig.load(args.config) if args.config else TrainConfig()
    train_over = dataclass_overrides(args, TrainConfig, skip=("model",))
    model_over = dataclass_overrides(args, ModelConfig)
    try:
        config = replace(base, model=replace(base.model, **model_over), **train_over)
    except ValueError as exc:
        parser.error(str(exc))
    return config, args


@command_line
def main(argv=None) -> int:
    """``python -m microlens.train``: an input error is one line on stderr, exit status 2
    (:mod:`microlens.cli`; ``--traceback`` shows the traceback)."""
    config, args = parse_args(argv)
    main_process = int(os.environ.get("RANK", "0")) == 0
    run_dir = train(config, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet)
    if main_process and not args.quiet:
        print(f"run directory: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
