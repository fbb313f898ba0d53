"""Training: ``train(TrainConfig) -> run directory``; also ``python -m microlens.training.train``.

One driver, nanoGPT style: the same command starts a run from scratch, resumes it
(``--resume``), fine-tunes a ``masked`` model from its pretraining (``--kind masked
--pretrained RUN``) or pretrains one (``--objective pretrain``, :mod:`microlens.training.pretrain`).
The loop, run directory, launcher and settings checks are shared by every objective
(:mod:`microlens.training.loop`, :func:`microlens.models.runs.prepare_run_dir`,
:func:`microlens.training.ddp.launch`, :class:`microlens.training.settings.TrainingSettings`); this
module holds the supervised objective: its settings, loss, step and calibration.

A run directory ``outputs/runs/<run_name>/`` holds::

    config.json          the TrainConfig (model settings under "model") and the dataset manifest id
    normalization.json   the input normalisation learned from the training split
    history.csv          one row per epoch: losses, accuracies, learning rate, epoch seconds
                         (training and validation), training events per second
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
(:mod:`microlens.core.calibration`), so that early answers are calibrated too, and the scalar on
final answers beside it; with ``"final"`` the scalar only.

Labels. ``label_policy`` (:mod:`microlens.data.labels`) decides the class each training and
validation event is taught as: ``physical`` (the stored truth) or ``observable`` (binaries whose
binarity Δχ² is at most ``observable_threshold`` count as PSPL). Loss, class weights, early stopping
and the temperature all see the policy's labels; the dataset keeps the physical ones.

Reproducibility and resumption. Every random draw has its own stream of ``seed``
(:mod:`microlens.core.seeds`): the initial weights, the event subsets, the shuffling of each epoch
(``(seed, epoch)``) and its dropout (``(seed, epoch, rank)``). ``last.pt`` is written after
every epoch, so a run interrupted at any point resumes from its last finished epoch with
``resume=True`` (``--resume``) and ends exactly where the uninterrupted run ends.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from microlens.core import seeds
from microlens.core.calibration import (
    check_temperature_fit,
    fit_temperature,
)
from microlens.core.cli import TerminalHelpFormatter, add_traceback_option, command_line
from microlens.core.paths import write_json_atomic
from microlens.core.seeds import subset_rows
from microlens.core.settings import add_dataclass_options, dataclass_overrides
from microlens.data.labels import (
    check_label_policy,
    check_threshold,
    class_weights,
    training_labels,
)
from microlens.data.summaries import DETECTABILITY_THRESHOLD
from microlens.models.base import final_logits
from microlens.models.config import ModelConfig
from microlens.models.inputs import Normalization
from microlens.models.parameters import event_targets, fit_target_scaling, parameter_losses
from microlens.models.registry import build_model, count_parameters, model_kind
from microlens.training import ddp
from microlens.training.loop import (
    CPU_MICRO_BATCH_OBSERVATIONS,
    Objective,
    StepResult,
    clip_and_step,
    epoch_order,
    precision_dtype,
    run,
    save_torch,
)
from microlens.training.settings import TrainingSettings

_epoch_order = epoch_order  # the names of earlier versions
_precision_dtype = precision_dtype

TRAIN_SAVED_BEFORE_FIELD = {"baseline_method": "first", "temperature_fit": "final",
                            "label_policy": "physical"}
"""The behaviour of runs saved before these :class:`TrainConfig` fields existed."""


@dataclass(frozen=True)
class TrainConfig(TrainingSettings):
    """Everything a training or fine-tuning run depends on (saved in ``config.json`` under
    "train"); the checks it shares with pretraining are
    :class:`~microlens.training.settings.TrainingSettings`'s."""

    SECTION = "train"
    SAVED_BEFORE_FIELD = TRAIN_SAVED_BEFORE_FIELD
    FRACTIONS = ("warmup_fraction", "min_lr_fraction", "final_weight")
    NON_NEGATIVE_NUMBERS = ("weight_decay", "parameter_weight")

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
    # (microlens.core.calibration), so early answers are calibrated too; "final": one temperature
    # fitted on final answers only
    temperature_fit: str = "by_count"  # by_count (per observations seen) or final (one temperature)
    label_policy: str = "physical"  # physical, or observable: binaries of Δχ² ≤ threshold as PSPL
    observable_threshold: float = DETECTABILITY_THRESHOLD  # Δχ² of the observable policy
    # weight of the parameter heads' loss beside the classification loss (a model with
    # ModelConfig.parameter_heads; microlens.models.parameters); ignored without heads
    parameter_weight: float = 1.0  # weight of the lens-parameter loss (models with heads)

    def check(self) -> None:
        check_label_policy(self.label_policy)
        check_threshold(self.observable_threshold)
        check_temperature_fit(self.temperature_fit)


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


class SupervisedObjective(Objective):
    """Supervised training and fine-tuning of a classifier of any neural kind: a batch costs
    its class-weighted per-observation cross-entropy (module docstring); validation measures
    the same loss and the final accuracy; ``best.pt`` keeps the best classifier; a finished
    run is calibrated on the validation split (:meth:`finish`)."""

    diverged_error = TrainingDivergedError
    retry_advice = "Train again"

    def __init__(self, config: TrainConfig, progress: bool):
        entry = model_kind(config.model.kind)
        super().__init__(config, progress, entry.model_class.cpu_pass_observations
                         if entry.neural else CPU_MICRO_BATCH_OBSERVATIONS)
        # The store keeps the physical labels; training, validation and the temperature fit
        # read the policy's labels (microlens.data.labels) through self.batch.
        self.labels = np.asarray(self.store.labels, np.int64).copy()
        used = np.concatenate([self.train_rows, self.val_rows])
        self.labels[used] = training_labels(self.store, used, config.label_policy,
                                            config.observable_threshold)
        self.class_weights = class_weights(self.labels[self.train_rows],
                                           config.model.n_classes).to(self.device)

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

    def build_module(self, normalization: Normalization) -> torch.nn.Module:
        return build_model(self.config.model, normalization).to(self.device)

    def start_fresh(self) -> None:
        self.module.load_pretrained()  # a fine-tuned kind's encoder; nothing for the others
        head = getattr(self.module, "parameter_head", None)
        if head is not None:  # the heads' standard units, from the training events
            center, scale = fit_target_scaling(self.store, self.train_rows,
                                               seed=self.config.seed, origin=head.origin)
            head.center.copy_(torch.from_numpy(center))
            head.scale.copy_(torch.from_numpy(scale))

    def config_record(self) -> dict:
        config = self.config
        return {
            "train": config.to_dict(), "model": config.model.to_dict(),
            "dataset_manifest": {k: self.store.manifest.get(k) for k in
                                 ("n_events", "n_epochs", "reference_epoch", "n_observations",
                                  "max_observations", "class_counts", "split_counts",
                                  "config")},
            "world_size": self.world, "device": str(self.device),
            "precision": str(self.autocast_dtype or torch.float32).replace("torch.", ""),
            "micro_batch_size": self.micro_batch,
            "n_parameters": count_parameters(config.model),
            "torch_version": torch.__version__,
        }

    def batch(self, rows: np.ndarray) -> dict:
        """The store's batch of ``rows`` with the label policy's labels (and, for a model
        with parameter heads, the events' parameters: ``parameter_values``,
        ``parameter_counts``, from the physical labels)."""
        rows = np.asarray(rows, np.int64)
        batch = self.store.batch(rows)
        batch["labels"] = torch.from_numpy(self.labels[rows])
        if self.config.model.parameter_heads:
            values, counts = event_targets(np.asarray(self.store.params[rows]),
                                           np.asarray(self.store.labels[rows]))
            batch["parameter_values"] = torch.from_numpy(values.astype(np.float32))
            batch["parameter_counts"] = torch.from_numpy(counts)
        return batch

    def _to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def _forward(self, batch: dict, model: torch.nn.Module) -> torch.Tensor:
        with self.autocast():
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

    # -- what a batch costs ------------------------------------------------------------------

    def train_step(self, rows: np.ndarray, epoch: int, learning_rate: float) -> StepResult:
        """One optimiser step on the events ``rows`` of this rank (see :func:`train_step`)."""
        return train_step(self.model, self.optimizer, self.plan(rows),
                          lambda part: self._to_device(self.batch(part)),
                          n_events=rows.size, class_weights=self.class_weights,
                          final_weight=self.config.final_weight, grad_clip=self.config.grad_clip,
                          autocast_dtype=self.autocast_dtype,
                          parameter_weight=self.config.parameter_weight)

    def validate(self) -> dict:
        val_loss, val_accuracy, _, _ = self.evaluate(self.val_rows)
        return {"val_loss": val_loss, "val_accuracy": val_accuracy}

    @torch.no_grad()
    def evaluate(self, rows: np.ndarray):
        """Weighted loss, final accuracy and final logits over ``rows`` (sharded over ranks)."""
        model = self.module
        model.eval()
        mine = rows[self.rank :: self.world]
        totals = torch.zeros(3, dtype=torch.float64, device=self.device)
        logits_out, labels_out = [], []
        size = self.eval_size()
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

    def finish(self, run_dir: Path, history, best, stopped_early, main) -> None:
        _finish(self, run_dir, history, best, stopped_early, main)


_Trainer = SupervisedObjective  # the name of earlier versions


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, micro_batches,
               load: Callable[[object], dict], *, n_events: int, class_weights: torch.Tensor,
               final_weight: float, grad_clip: float,
               autocast_dtype: torch.dtype | None = None,
               parameter_weight: float = 0.0) -> StepResult:
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
    parameter_weight : float
        Weight of the parameter heads' loss (:func:`microlens.models.parameters.parameter_losses`,
        not class-weighted), for a model with heads and batches that carry
        ``parameter_values`` and ``parameter_counts``.
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
            if "parameters" in out and "parameter_values" in batch:
                objective = objective + parameter_weight * parameter_losses(
                    out["parameters"], batch["parameter_values"], batch["parameter_counts"],
                    batch["times"], observation_weights(batch["mask"], final_weight),
                    module.parameter_head.scale, out["parameter_origin"]).sum()
            loss = objective / n_events
            loss.backward()
        step_loss += loss.detach().double()
        correct = (final_logits(logits.detach(), batch["mask"]).argmax(-1)
                   == batch["labels"]).sum()
        count = torch.full((), batch["labels"].numel(), dtype=torch.float64, device=device)
        step_totals += torch.stack([weighted.detach().double(), correct.double(), count])
    if step_loss is None:
        raise ValueError("train_step needs at least one micro-batch")
    norm, applied = clip_and_step(module.parameters(), optimizer, grad_clip)
    return StepResult(loss=step_loss, totals=step_totals, grad_norm=norm, applied=applied)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def train(config: TrainConfig, *, resume: bool = False, overwrite: bool = False,
          progress: bool = True, on_epoch: Callable[[dict], None] | None = None,
          stop_after_epochs: int | None = None) -> Path:
    """Train a classifier of any kind (``config.model.kind``); returns the run directory.

    The neural kinds (:func:`microlens.models.registry.neural_kinds`) share this loop: the same
    loss, AMP, early stopping, resumption and DDP. The ``features`` kind is fitted by
    :func:`microlens.models.features.train_features` into a run directory of the same layout
    (``on_epoch`` and ``stop_after_epochs`` do not apply to it).

    Parameters
    ----------
    config : TrainConfig
    resume : bool
        Continue the run in ``config.run_dir`` from its ``last.pt`` (its config must match).
    overwrite : bool
        Delete an existing run directory of the same name first: only one the project made
        (see :mod:`microlens.core.removal`; anything else raises ``UnsafeDeleteError``).
    progress : bool
        Progress bars and one line per epoch (rank 0).
    on_epoch : callable, optional
        Called on rank 0 with each epoch's history row (e.g. a live figure).
    stop_after_epochs : int, optional
        End this call after that many epochs, leaving a resumable run (for time-boxed jobs).

    Under torchrun (see :mod:`microlens.training.ddp`) every process calls this; rank 0 writes.
    """
    if resume and overwrite:
        raise ValueError("choose resume or overwrite, not both")
    if config.model.kind == "features":  # fitted by scikit-learn, not by this loop
        from microlens.models.features import train_features

        # the prefix fits run in processes (results do not depend on how many)
        workers = max(1, min(4, len(os.sched_getaffinity(0))))
        return train_features(config, workers=workers, resume=resume, overwrite=overwrite,
                              progress=progress)
    try:
        return run(SupervisedObjective(config, progress), resume=resume, overwrite=overwrite,
                   on_epoch=on_epoch, stop_after_epochs=stop_after_epochs)
    finally:
        ddp.cleanup()


def _finish(trainer: SupervisedObjective, run_dir: Path, history, best, stopped_early,
            main) -> None:
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
        save_torch(trainer.module.state_dict(), run_dir / "best.pt")
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


def _fit_temperature_curve(trainer: SupervisedObjective, temperature: float) -> dict:
    """Fit and store the temperature over observations seen (``temperature_fit="by_count"``)
    on the validation split's answers at log-spaced counts of every event
    (:func:`microlens.core.calibration.count_positions`); returns its JSON record."""
    from microlens.core.calibration import count_positions, fit_temperature_curve, temperature_knots

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


OBJECTIVES = ("supervised", "pretrain")
"""What ``python -m microlens.training.train --objective`` runs: ``supervised`` trains (or, for a
``masked`` model naming its pretraining, fine-tunes) a classifier; ``pretrain`` pretrains a
``masked`` model's encoder (:mod:`microlens.training.pretrain`)."""


def settings_class(objective: str):
    """The settings dataclass of ``objective`` (:data:`OBJECTIVES`)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}")
    if objective == "pretrain":
        from microlens.training.pretrain import PretrainConfig

        return PretrainConfig
    return TrainConfig


def parse_args(argv=None, objective: str = "supervised"):
    """Command-line options: ``--objective``, ``--config JSON`` and any setting of the
    objective's settings (:class:`TrainConfig` or
    :class:`~microlens.training.pretrain.PretrainConfig`)
    and of :class:`~microlens.models.config.ModelConfig`; returns (the settings, the parsed
    options). ``objective`` is the default of ``--objective`` (``python -m
    microlens.training.pretrain``: ``"pretrain"``)."""
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--objective", choices=OBJECTIVES, default=objective)
    chosen = first.parse_known_args(argv)[0].objective
    cls = settings_class(chosen)
    parser = argparse.ArgumentParser(
        prog=f"python -m microlens.{'pretrain' if objective == 'pretrain' else 'train'}",
        formatter_class=TerminalHelpFormatter,
        description=__doc__.split("\n\n")[0],
        epilog="Under torchrun: torchrun --standalone --nproc_per_node N -m "
               "microlens.training.train ...")
    parser.add_argument("--objective", choices=OBJECTIVES, default=objective,
                        help="supervised: train or fine-tune a classifier; pretrain: masked "
                             f"pretraining of a masked model's encoder (default: {objective})")
    parser.add_argument("--config", help=f"a {cls.__name__} JSON file (e.g. a run's "
                                          "config.json)")
    parser.add_argument("--resume", action="store_true", help="continue from last.pt")
    parser.add_argument("--overwrite", action="store_true", help="start the run again")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    add_traceback_option(parser)
    # no argparse choices: the settings' own check names the bad value and the valid ones, the
    # same message as from Python
    model_skip = ("kind", "pretrained") if chosen == "pretrain" else ()
    add_dataclass_options(parser, cls, skip=("model",))
    add_dataclass_options(parser, ModelConfig, skip=model_skip)
    args = parser.parse_args(argv)
    base = cls.load(args.config) if args.config else cls()
    settings_over = dataclass_overrides(args, cls, skip=("model",))
    model_over = dataclass_overrides(args, ModelConfig, skip=model_skip)
    try:
        config = replace(base, model=replace(base.model, **model_over), **settings_over)
    except ValueError as exc:
        parser.error(str(exc))
    return config, args


def run_command(argv, objective: str = "supervised") -> int:
    """Parse ``argv`` (:func:`parse_args`) and run the chosen objective; 0 when done."""
    config, args = parse_args(argv, objective)
    main_process = int(os.environ.get("RANK", "0")) == 0
    if args.objective == "pretrain":
        from microlens.training.pretrain import pretrain as run_objective

        what = "pretraining run directory"
    else:
        run_objective, what = train, "run directory"
    run_dir = run_objective(config, resume=args.resume, overwrite=args.overwrite,
                            progress=not args.quiet)
    if main_process and not args.quiet:
        print(f"{what}: {run_dir}")
    return 0


@command_line
def main(argv=None) -> int:
    """``python -m microlens.training.train``: an input error is one line on stderr, exit status 2
    (:mod:`microlens.core.cli`; ``--traceback`` shows the traceback)."""
    return run_command(argv)


if __name__ == "__main__":
    sys.exit(main())
