"""Self-supervised masked pretraining of the causal encoder, and the ``masked`` model kind.

``pretrain(PretrainConfig) -> run directory``; also ``python -m microlens.pretrain``. A
``masked`` classifier (:class:`MaskedTransformer`, :attr:`ModelConfig.pretrained
<microlens.model.ModelConfig.pretrained>` naming such a run) is the transformer whose encoder
starts from the pretrained weights and whose input normalisation is the pretraining's; it is
then fine-tuned with labels by :func:`microlens.train.train` like any kind.

**Objective: masked flux reconstruction, causal.** In every training curve a fraction
``mask_fraction`` (0.15 by default) of the valid observations is chosen at random, anew each
epoch, from the :data:`~microlens.seeds.PRETRAIN_MASK` stream of ``(seed, epoch, event row)``
(so the choice does not depend on the batch, the order or the number of processes; validation
events get one fixed choice, :data:`~microlens.seeds.PRETRAIN_VAL_MASK`, the same every epoch,
so their loss is comparable across epochs). At a masked observation ``j``

* the flux feature (``features[..., 0]``, ``asinh((F - b) / s)``; :class:`~microlens.model.
  Normalization`) is hidden: set to 0;
* a learned mask embedding (a vector of ``d_model``) is added to its embedded token, so the
  encoder can tell a hidden flux from a flux at the baseline (which is also 0);
* its error and interval features stay: the time at which the flux is asked is known;
* a reconstruction head (LayerNorm, Linear, GELU, Linear to one number) reads the encoder
  state at ``j`` and predicts the hidden flux feature.

The loss of an event is the mean squared error over its masked valid observations; the loss of
a batch is the sum over its events divided by the events of the global batch (an event with
none masked, at 0.15 a curve of at most 3 points, counts zero), so a step's gradient is the
same for any number of micro-batches or processes, as in :mod:`microlens.train`.

Why this objective: the labelled classes differ in the shape of the curve (a flat baseline, a
smooth symmetric rise, caustic spikes), and predicting a flux from the curve before it needs
exactly that shape: the baseline level and scatter, whether a rise has begun, how fast it goes.
Curves cost nothing to have without labels (any class mix, a survey's unlabelled stars, a
larger simulated set), so the encoder can learn them before the few labels are spent.

Why **causal**: the encoder stays the classifier's causal encoder (the state at ``j`` reads
observations ``1..j``, ``j`` itself with its flux hidden), so what is pretrained is exactly the
network that is fine-tuned and that streams. A bidirectional pretraining (BERT-style, the state
at ``j`` reading both sides) would train attention to later observations that the causal
classifier never uses, and interpolating between both sides of a gap is a different task from
predicting the next point. Here the task is forecasting the hidden flux from the past, at a known
time and error: what a real-time classifier must understand.

What the reconstruction can still see, by design or as a known leak: the masked observation's
photometric error, kept because a survey knows it with the time (with photon noise
``sigma_F ∝ sqrt(F)`` it carries part of the magnification; on a 360-event stellar set, hiding
the error feature too raised the best masked validation loss by only ~2 %, 0.626 -> 0.641), and
its causal baseline ``b``, ``s`` (medians of the first ``reference_points`` observations, or of
whole blocks with ``baseline_method="robust"``), which include the masked flux when ``j`` lies
among them: a median moves little with one value.

**Fine-tuning.** :class:`MaskedTransformer` is :class:`~microlens.model.MicrolensTransformer`
(the same modules and state-dict keys, so :func:`~microlens.model_kinds.load_model`, streaming
and attention maps work unchanged). :meth:`MaskedTransformer.pretrained_normalization` gives
training the pretraining's normalisation (the encoder learned those inputs), and
:meth:`MaskedTransformer.load_pretrained` copies the encoder (embedding, convolution stem,
attention blocks, pooling norm: everything but the classification head and the temperature)
before the first step of a fresh run. The mask embedding and the reconstruction head belong to
:class:`MaskedPretrainer` only, so the classifier has no unused parameters (DDP would refuse
them). With ``pretrained=""`` the kind is the transformer trained from scratch.

A pretraining run directory ``outputs/pretrain/<run_name>/`` holds::

    config.json          {"pretrain": PretrainConfig, "model": ModelConfig, ...}
    normalization.json   the input normalisation, fitted on training events (the classifier's)
    history.csv          epoch, train_loss, val_loss, learning_rate, seconds, events_per_second
    last.pt              the full checkpoint after every epoch (resume from it)
    encoder.pt           the MaskedTransformer state dict of the best epoch (lowest val loss)
    metrics.json         written last: best epoch, best val loss, seconds (present: finished)

Data: the dataset's **train** split, labels never read; early stopping and the best epoch on the
**val** split's masked loss. The test split is never read. Under ``torchrun`` it runs
DistributedDataParallel exactly like :mod:`microlens.train` (rank 0 writes). Every random draw
comes from a stream of ``seed`` (:mod:`microlens.seeds`), and ``last.pt`` after every epoch
lets an interrupted run resume to exactly where the uninterrupted one ends. As in training,
dropout draws come per ``(epoch, rank)``: with ``dropout > 0`` runs on different numbers of
processes differ by their dropout masks (with 0 they agree to float rounding).

Quick use::

    from microlens.pretrain import PretrainConfig, ensure_pretrained
    run = ensure_pretrained(PretrainConfig(dataset="data/quick", run_name="quick-masked",
                                           model=ModelConfig(kind="masked", d_model=64)))
    TrainConfig(model=ModelConfig(kind="masked", d_model=64, pretrained=str(run)), ...)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import ddp, seeds
from .cli import add_traceback_option, command_line
from .devices import DEVICES, local_device
from .masked_model import (  # noqa: F401  (the kind, re-exported)
    ENCODER_FIELDS,
    FINISHED_FILES,
    NOT_ENCODER,
    MaskedTransformer,
    encoder_config,
    encoder_differences,
    is_encoder_key,
    pretraining_run,
)
from .model import BASELINE_METHODS, ModelConfig, Normalization
from .paths import project_relative, resolve_path, write_json_atomic
from .removal import holds_files, mark_project_dir, remove_project_dir
from .runs import RunExistsError, read_history, write_csv
from .seeds import subset_rows
from .settings import add_dataclass_options, dataclass_overrides, from_known_fields
from .train import (
    PRECISIONS,
    _read_state,
    _save_torch,
    make_optimizer,
    scheduled_learning_rate,
)

PRETRAIN_RUNS_DIR = "outputs/pretrain"
"""Where pretraining runs go by default (relative: from the project root)."""

PRETRAIN_HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "learning_rate", "seconds",
                            "events_per_second")
"""Columns of a pretraining run's ``history.csv``."""



# --------------------------------------------------------------------------------------------
# The pretraining objective
# --------------------------------------------------------------------------------------------


def masked_count(n_valid: int, fraction: float) -> int:
    """Observations masked in a curve of ``n_valid``: ``fraction * n_valid`` rounded half up."""
    return min(int(n_valid), int(math.floor(fraction * n_valid + 0.5)))


def masked_positions(rows: Sequence[int], lengths: Sequence[int], width: int, fraction: float,
                     seed: int, epoch: int | None = None) -> np.ndarray:
    """Which observations to hide, ``(len(rows), width)`` bool, only among valid ones.

    Event ``rows[i]`` (a store row) with ``lengths[i]`` valid observations (the first ones) gets
    :func:`masked_count` of them, drawn without replacement from the
    :data:`~microlens.seeds.PRETRAIN_MASK` stream of ``(seed, epoch, row)`` for a training epoch,
    or from :data:`~microlens.seeds.PRETRAIN_VAL_MASK` of ``(seed, row)`` with ``epoch=None``
    (validation: the same every epoch). The batch an event sits in changes nothing.
    """
    out = np.zeros((len(rows), int(width)), dtype=bool)
    for i, (row, n) in enumerate(zip(rows, lengths, strict=True)):
        n = min(int(n), int(width))
        k = masked_count(n, fraction)
        if k == 0:
            continue
        rng = (seeds.rng(seed, seeds.PRETRAIN_VAL_MASK, int(row)) if epoch is None
               else seeds.rng(seed, seeds.PRETRAIN_MASK, int(epoch), int(row)))
        out[i, rng.choice(n, size=k, replace=False)] = True
    return out


def hide_flux(features: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """``features (B, N, 3)`` with the flux feature (index 0) set to 0 where ``hidden``; the
    error and interval features are kept."""
    flux = torch.where(hidden, torch.zeros((), dtype=features.dtype, device=features.device),
                       features[..., 0])
    return torch.cat([flux.unsqueeze(-1), features[..., 1:]], dim=-1)


def masked_losses(prediction: torch.Tensor, target: torch.Tensor,
                  hidden: torch.Tensor) -> torch.Tensor:
    """Per-event loss ``(B,)``: the mean squared error over the event's hidden observations
    (0 for an event with none)."""
    error = torch.where(hidden, (prediction.float() - target.float()) ** 2, 0.0)
    return error.sum(dim=1) / hidden.sum(dim=1).clamp_min(1)


class MaskedPretrainer(nn.Module):
    """What pretraining trains: a :class:`MaskedTransformer` (``encoder``; its classification
    head is frozen and unused), the mask embedding and the reconstruction head.

    Parameters
    ----------
    config : ModelConfig
        The encoder (``kind="masked"``, ``pretrained=""``).
    normalization : Normalization
        The input normalisation (fitted on training events).
    """

    def __init__(self, config: ModelConfig, normalization: Normalization | None = None):
        super().__init__()
        self.encoder = MaskedTransformer(config, normalization)
        self.encoder.head.requires_grad_(False)  # no classes here: neither trained nor used
        d = config.d_model
        self.mask_embedding = nn.Parameter(0.02 * torch.randn(d))
        self.reconstruction = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.GELU(),
                                            nn.Linear(d, 1))

    def reconstruct(self, times, flux, flux_err, mask, hidden):
        """Predicted and true flux features ``(B, N)`` each, after hiding ``hidden & mask``.

        Parameters
        ----------
        times, flux, flux_err : Tensor ``(B, N)``
            As for :meth:`~microlens.model.CausalClassifier.forward` (padded at the end).
        mask : Tensor ``(B, N)`` bool
            Valid observations (first).
        hidden : Tensor ``(B, N)`` bool
            Observations whose flux is hidden (:func:`masked_positions`).

        Returns
        -------
        (Tensor, Tensor, Tensor)
            The reconstruction at every position (float32), the flux feature it aims at, and
            the hidden valid positions.
        """
        encoder = self.encoder
        hidden = hidden & mask
        features = encoder.normalization.features(times, flux, flux_err, mask)
        inputs = hide_flux(features, hidden)
        added = hidden.unsqueeze(-1).to(self.mask_embedding.dtype) * self.mask_embedding

        def add_mask_embedding(module, args, output):
            # encode() embeds the features padded to whole windows: pad the addition alike
            extra = F.pad(added, (0, 0, 0, output.shape[1] - added.shape[1]))
            return output + extra.to(output.dtype)

        # the encoder's own encode(), with the mask embedding added to the embedded tokens
        handle = encoder.embed.register_forward_hook(add_mask_embedding)
        try:
            states, _ = encoder.encode(inputs, times=times, mask=mask)
        finally:
            handle.remove()
        prediction = self.reconstruction(states).squeeze(-1).float()
        return prediction, features[..., 0], hidden

    def forward(self, times, flux, flux_err, mask, hidden) -> torch.Tensor:
        """Per-event masked loss ``(B,)`` (:func:`masked_losses`)."""
        return masked_losses(*self.reconstruct(times, flux, flux_err, mask, hidden))


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PretrainConfig:
    """Everything a pretraining run depends on (saved in ``config.json`` under "pretrain")."""

    dataset: str = "data/quick"  # any dataset directory: its train split, labels never read
    run_name: str = "quick"  # the run directory is <runs_dir>/<run_name>
    runs_dir: str = PRETRAIN_RUNS_DIR
    model: ModelConfig = field(default_factory=lambda: ModelConfig(kind="masked"))
    epochs: int = 10  # upper bound; early stopping may end sooner
    batch_size: int = 64  # global batch: all processes together
    micro_batch_size: int = 0  # events per forward pass (gradient accumulation); 0: automatic
    learning_rate: float = 1e-3  # peak learning rate of AdamW
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05  # share of all steps with a linear warm-up
    min_lr_fraction: float = 0.05  # cosine decay ends at this share of the peak
    grad_clip: float = 1.0  # clip the global gradient norm
    patience: int = 3  # stop after this many epochs without a lower validation loss (0: never)
    mask_fraction: float = 0.15  # share of each curve's valid observations hidden
    max_train_events: int = 0  # 0: the whole train split; else a fixed random subset
    max_val_events: int = 0  # 0: the whole validation split
    seed: int = 0
    device: str = "auto"  # auto, cpu or cuda
    precision: str = "auto"  # auto: bf16 on a CUDA GPU that supports it, else fp32
    reference_points: int = 20  # observations that set each event's baseline (Normalization)
    baseline_method: str = "robust"  # Normalization.baseline_method: robust or first
    normalization_events: int = 2000  # training events used to fit the normalisation

    def __post_init__(self):
        if isinstance(self.model, dict):
            object.__setattr__(self, "model", ModelConfig.from_dict(self.model))
        if not isinstance(self.model, ModelConfig):
            raise ValueError(f"PretrainConfig.model must be a ModelConfig, got {self.model!r}")
        if self.model.kind != "masked":
            raise ValueError(f"PretrainConfig.model.kind must be 'masked' (the encoder of a "
                             f"'masked' classifier), got {self.model.kind!r}")
        if self.model.pretrained:
            raise ValueError(f"PretrainConfig.model.pretrained must be '' (pretraining starts "
                             f"from random weights), got {self.model.pretrained!r}")
        for name in ("epochs", "batch_size", "reference_points", "normalization_events"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"PretrainConfig.{name} must be a positive integer, got "
                                 f"{value!r}")
        for name in ("micro_batch_size", "max_train_events", "max_val_events", "patience",
                     "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"PretrainConfig.{name} must be an integer >= 0, got "
                                 f"{value!r}")
        for name in ("learning_rate", "grad_clip"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    0 < value < math.inf):
                raise ValueError(f"PretrainConfig.{name} must be a positive number, got "
                                 f"{value!r}")
        if isinstance(self.weight_decay, bool) or not isinstance(
                self.weight_decay, (int, float)) or not 0 <= self.weight_decay < math.inf:
            raise ValueError(f"PretrainConfig.weight_decay must be a number >= 0, got "
                             f"{self.weight_decay!r}")
        for name in ("warmup_fraction", "min_lr_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    0.0 <= value <= 1.0):
                raise ValueError(f"PretrainConfig.{name} must be in [0, 1], got {value!r}")
        fraction = self.mask_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not (
                0.0 < fraction < 1.0):
            raise ValueError(f"PretrainConfig.mask_fraction must be in (0, 1) (the share of "
                             f"each curve's observations hidden), got {fraction!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; valid: "
                             f"{', '.join(PRECISIONS)}")
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}; valid: {', '.join(DEVICES)}")
        if self.baseline_method not in BASELINE_METHODS:
            raise ValueError(f"unknown baseline_method {self.baseline_method!r}; valid: "
                             f"{', '.join(BASELINE_METHODS)}")
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
    def from_dict(cls, data: dict) -> PretrainConfig:
        return from_known_fields(cls, data, "PretrainConfig settings")

    def save(self, path: str | os.PathLike) -> Path:
        """Write as JSON (atomically)."""
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> PretrainConfig:
        """Read a saved config: a run's ``config.json`` (its "pretrain" section) or the file
        :meth:`save` writes."""
        from .runs import read_json

        data = dict(read_json(path))
        data = dict(data.get("pretrain", data))
        if isinstance(data.get("model"), dict):
            data["model"] = ModelConfig.from_saved(data["model"])
        return cls.from_dict(data)


def default_pretrain_name(dataset: str | os.PathLike, model_config: ModelConfig,
                          **settings) -> str:
    """A stable run name ``<dataset directory name>-masked-<hash>`` for pretraining
    ``model_config``'s encoder on ``dataset`` with ``settings`` (:class:`PretrainConfig`
    fields).

    The hash (10 hex digits of SHA-256) covers the dataset (as a project-relative path), the
    encoder (:func:`encoder_config`: fine-tuning settings such as ``n_classes`` do not count)
    and every other pretraining setting but ``run_name`` and ``runs_dir``, so fine-tuning runs
    that agree on these share one pretraining, and any change makes a new one.
    """
    settings = {k: v for k, v in settings.items() if k not in ("run_name", "runs_dir")}
    config = PretrainConfig(dataset=str(dataset), model=encoder_config(model_config), **settings)
    key = {k: v for k, v in config.to_dict().items() if k not in ("run_name", "runs_dir")}
    key["dataset"] = project_relative(resolve_path(dataset))
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    return f"{resolve_path(dataset).name}-masked-{digest}"


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


class _Pretrainer:
    """One process's share of a pretraining run (data, model, optimiser, steps)."""

    def __init__(self, config: PretrainConfig, progress: bool):
        from .store import open_dataset
        from .train import _precision_dtype, cpu_micro_batch

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
        per_pass = MaskedTransformer.cpu_pass_observations
        typical = int(np.median(self.store.lengths)) if len(self.store) else 1
        micro = config.micro_batch_size or (cpu_micro_batch(typical, per_pass)
                                            if self.device.type == "cpu" else self.local_batch)
        self.micro_batch = min(micro, self.local_batch)
        self.micro_observations = (per_pass if self.device.type == "cpu"
                                   and not config.micro_batch_size else None)
        self.autocast_dtype = _precision_dtype(config.precision, self.device)
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
        self.store.require_valid(
            np.concatenate([self.train_rows, self.val_rows]),
            "pretraining reads the train and val rows it uses",
            advice="regenerate the dataset or repair those rows; the test split is never read "
                   "by pretraining")
        per_rank = math.ceil(self.train_rows.size / self.world)
        self.steps_per_epoch = math.ceil(per_rank / self.local_batch)
        self.total_steps = self.steps_per_epoch * config.epochs

    def fit_normalization(self) -> Normalization:
        """The input normalisation from training events (as :mod:`microlens.train` fits it)."""
        c = self.config
        rows = subset_rows(self.train_rows, c.normalization_events, c.seed,
                           seeds.NORMALIZATION_EVENTS)
        arrays = self.store.padded(rows)
        return Normalization.fit(arrays["times"].astype(np.float32), arrays["flux"],
                                 arrays["flux_err"], arrays["mask"],
                                 reference_points=c.reference_points,
                                 baseline_method=c.baseline_method)

    def build(self, normalization: Normalization) -> None:
        torch.manual_seed(seeds.torch_seed(self.config.seed, seeds.WEIGHT_INIT))
        self.module = MaskedPretrainer(self.config.model, normalization).to(self.device)
        self.model = self.module
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.module, device_ids=device_ids)
        self.optimizer = make_optimizer(self.module, self.config, self.device)

    def load(self, rows: np.ndarray, epoch: int | None) -> dict:
        """Events ``rows`` as tensors on the device, with the observations to hide (the
        epoch's, or validation's fixed ones for ``epoch=None``). Reads no label."""
        arrays = self.store.padded(rows)
        hidden = masked_positions(rows, arrays["lengths"], arrays["mask"].shape[1],
                                  self.config.mask_fraction, self.config.seed, epoch)
        batch = {"times": arrays["times"].astype(np.float32), "flux": arrays["flux"],
                 "flux_err": arrays["flux_err"], "mask": arrays["mask"], "hidden": hidden}
        return {k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device, non_blocking=True)
                for k, v in batch.items()}

    def _plan(self, rows: np.ndarray, max_events: int) -> list[np.ndarray]:
        from .train import plan_micro_batches

        return plan_micro_batches(rows, self.store.lengths, max_events, self.micro_observations)

    def _losses(self, model, batch: dict) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                            enabled=self.autocast_dtype is not None):
            return model(batch["times"], batch["flux"], batch["flux_err"], batch["mask"],
                         batch["hidden"])

    def train_epoch(self, epoch: int, step: int) -> tuple[int, dict]:
        from .train import _epoch_order, _progress

        c = self.config
        torch.manual_seed(seeds.torch_seed(c.seed, seeds.DROPOUT, epoch, self.rank))
        self.model.train()
        order = self.train_rows[_epoch_order(self.train_rows.size, c.seed, epoch, self.world,
                                             self.rank)]
        totals = torch.zeros(2, dtype=torch.float64, device=self.device)  # loss sum, events
        skipped, lr = 0, float("nan")
        steps = range(0, order.size, self.local_batch)
        bar = _progress(steps, f"pretrain epoch {epoch + 1}/{c.epochs}",
                        self.progress and ddp.is_main())
        started = time.perf_counter()
        for start in bar:
            lr = scheduled_learning_rate(c, step, self.total_steps)
            rows = order[start : start + self.local_batch]
            loss_sum, applied = self.train_step(rows, epoch, lr)
            if applied:
                totals += torch.stack([loss_sum, torch.full_like(loss_sum, rows.size)])
            else:
                skipped += 1
            step += 1
        seconds = time.perf_counter() - started
        totals = ddp.all_reduce_sum(totals)
        applied_events = float(totals[1])
        return step, {
            "train_loss": float(totals[0]) / applied_events if applied_events else float("nan"),
            "learning_rate": lr,
            "train_seconds": seconds,
            "events_per_second": order.size * self.world / seconds,
            "skipped_steps": skipped,
        }

    def train_step(self, rows: np.ndarray, epoch: int, learning_rate: float):
        """One optimiser step on this rank's ``rows``: the summed per-event losses over the
        global batch's events are back-propagated micro-batch by micro-batch; the gradient is
        clipped and applied if finite. Returns (this rank's loss sum, applied)."""
        from torch.nn.parallel import DistributedDataParallel

        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        parts = self._plan(rows, self.local_batch if self.micro_observations
                           else self.micro_batch)
        distributed = isinstance(self.model, DistributedDataParallel)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        for i, part in enumerate(parts):
            batch = self.load(part, epoch)
            last = i == len(parts) - 1
            with self.model.no_sync() if distributed and not last else nullcontext():
                losses = self._losses(self.model, batch)
                (losses.float().sum() / rows.size).backward()
            loss_sum += losses.detach().double().sum()
        trainable = [p for p in self.module.parameters() if p.requires_grad]
        norm = torch.nn.utils.clip_grad_norm_(trainable, self.config.grad_clip)
        applied = bool(torch.isfinite(norm))  # the same on every rank (all-reduced gradients)
        if applied:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss_sum, applied

    @torch.no_grad()
    def evaluate(self) -> float:
        """The validation split's masked loss (fixed masks), mean over events, all ranks."""
        self.module.eval()
        mine = self.val_rows[self.rank :: self.world]
        totals = torch.zeros(2, dtype=torch.float64, device=self.device)
        size = self.micro_batch if self.device.type == "cpu" else max(self.micro_batch, 256)
        for part in self._plan(mine, size):
            losses = self._losses(self.module, self.load(part, None))
            totals += torch.stack([losses.double().sum(),
                                   torch.tensor(float(part.size), dtype=torch.float64,
                                                device=self.device)])
        totals = ddp.all_reduce_sum(totals)
        return float(totals[0]) / float(totals[1])


class PretrainingDivergedError(RuntimeError):
    """The validation loss became non-finite: the weights diverged."""


def _config_differences(saved: dict, config: PretrainConfig) -> list[str]:
    """The fields in which a run's saved "pretrain" section differs from ``config`` (a model
    field saved before it existed takes its old value, :meth:`ModelConfig.from_saved`)."""
    saved = dict(saved)
    if isinstance(saved.get("model"), dict):
        saved["model"] = ModelConfig.from_saved(saved["model"]).to_dict()
    now = config.to_dict()
    return sorted(k for k in set(now) | set(saved) if saved.get(k) != now.get(k))


def _prepare_run_dir(config: PretrainConfig, run_dir: Path, resume: bool, overwrite: bool,
                     trainer: _Pretrainer):
    """Create or check the run directory on rank 0; returns the checkpoint to resume or None."""
    if overwrite:
        remove_project_dir(run_dir, "run")
    if holds_files(run_dir):
        if not resume:
            raise RunExistsError(f"pretraining run {run_dir} exists; pass resume=True "
                                 "(--resume) to continue it or overwrite=True (--overwrite) to "
                                 "start again")
        saved = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        differ = _config_differences(saved.get("pretrain", {}), config)
        if differ:
            raise ValueError(f"cannot resume {run_dir}: its config differs in {differ}")
        for stale in run_dir.glob(".*.tmp"):  # left by a process killed while writing
            stale.unlink()
        return _read_state(run_dir, resume=True)
    normalization = trainer.fit_normalization()  # before the directory: a failure leaves none
    mark_project_dir(run_dir, "run")
    write_json_atomic(run_dir / "config.json", {
        "pretrain": config.to_dict(), "model": config.model.to_dict(),
        "dataset_manifest": {k: trainer.store.manifest.get(k) for k in
                             ("n_events", "n_observations", "max_observations", "split_counts",
                              "config")},
        "world_size": trainer.world, "device": str(trainer.device),
        "precision": str(trainer.autocast_dtype or torch.float32).replace("torch.", ""),
        "micro_batch_size": trainer.micro_batch,
        "n_parameters": MaskedTransformer(config.model).n_parameters,
        "torch_version": torch.__version__,
    })
    normalization.save(run_dir / "normalization.json")
    return None


def pretrain(config: PretrainConfig, *, resume: bool = False, overwrite: bool = False,
             progress: bool = True, stop_after_epochs: int | None = None) -> Path:
    """Pretrain an encoder by masked flux reconstruction (module docstring); returns the run
    directory.

    Parameters
    ----------
    config : PretrainConfig
    resume : bool
        Continue the run in ``config.run_dir`` from its ``last.pt`` (its config must match).
    overwrite : bool
        Delete an existing run directory of the same name first: only one the project made
        (see :mod:`microlens.removal`; anything else raises ``UnsafeDeleteError``).
    progress : bool
        Progress bars and one line per epoch (rank 0).
    stop_after_epochs : int, optional
        End this call after that many epochs, leaving a resumable run.

    Under torchrun (see :mod:`microlens.ddp`) every process calls this; rank 0 writes.
    """
    if resume and overwrite:
        raise ValueError("choose resume or overwrite, not both")
    run_dir = config.run_dir
    try:
        trainer = _Pretrainer(config, progress)
        main = ddp.is_main()
        state = _prepare_run_dir(config, run_dir, resume, overwrite, trainer) if main else None
        ddp.barrier()
        if not main:
            state = _read_state(run_dir, resume)
        trainer.build(Normalization.load(run_dir / "normalization.json"))
        history, epoch, step = [], 0, 0
        best = {"val_loss": math.inf, "epoch": 0, "bad_epochs": 0}
        if state is not None:
            trainer.module.load_state_dict(state["model"])
            trainer.optimizer.load_state_dict(state["optimizer"])
            epoch, step = int(state["epoch"]), int(state["step"])
            best = {"val_loss": float(state["best_val_loss"]), "epoch": int(state["best_epoch"]),
                    "bad_epochs": int(state["bad_epochs"])}
            history = read_history(run_dir)[:epoch]
        stopped_early = best["bad_epochs"] >= config.patience > 0
        done_this_call = 0
        while epoch < config.epochs and not stopped_early:
            if stop_after_epochs is not None and done_this_call >= stop_after_epochs:
                return run_dir
            started = time.perf_counter()
            step, row = trainer.train_epoch(epoch, step)
            val_loss = trainer.evaluate()
            if not math.isfinite(val_loss):
                raise PretrainingDivergedError(
                    f"validation loss is {val_loss} after epoch {epoch + 1} of {run_dir}: the "
                    f"weights diverged. Pretrain again with a lower learning_rate (now "
                    f"{config.learning_rate:g}) or precision='fp32' (now {config.precision!r})")
            epoch += 1
            done_this_call += 1
            row = {"epoch": epoch, "train_loss": row["train_loss"], "val_loss": val_loss,
                   "learning_rate": row["learning_rate"],
                   "seconds": time.perf_counter() - started,
                   "events_per_second": row["events_per_second"]}
            history.append(row)
            improved = val_loss < best["val_loss"]
            if improved:
                best = {"val_loss": val_loss, "epoch": epoch, "bad_epochs": 0}
            else:
                best["bad_epochs"] += 1
            stopped_early = config.patience > 0 and best["bad_epochs"] >= config.patience
            if main:
                if improved:
                    _save_torch(trainer.module.encoder.state_dict(), run_dir / "encoder.pt")
                _save_torch({"model": trainer.module.state_dict(),
                             "optimizer": trainer.optimizer.state_dict(), "epoch": epoch,
                             "step": step, "best_val_loss": best["val_loss"],
                             "best_epoch": best["epoch"], "bad_epochs": best["bad_epochs"]},
                            run_dir / "last.pt")
                write_csv(run_dir / "history.csv", history, PRETRAIN_HISTORY_COLUMNS)
                if progress:
                    print(f"pretrain epoch {epoch}/{config.epochs}  train loss "
                          f"{row['train_loss']:.4f}  val loss {val_loss:.4f}  lr "
                          f"{row['learning_rate']:.2e}  {row['events_per_second']:.0f} events/s",
                          flush=True)
            ddp.barrier()
        if main:
            speeds = [r["events_per_second"] for r in history]
            write_json_atomic(run_dir / "metrics.json", {
                "run_dir": str(run_dir),
                "best_epoch": best["epoch"],
                "best_val_loss": best["val_loss"],
                "val_loss": best["val_loss"],
                "final_val_loss": history[-1]["val_loss"] if history else None,
                "epochs_run": len(history),
                "stopped_early": bool(stopped_early),
                "seconds": float(sum(r["seconds"] for r in history)),
                "events_per_second": float(np.median(speeds)) if speeds else None,
                "n_train_events": int(trainer.train_rows.size),
                "n_val_events": int(trainer.val_rows.size),
                "mask_fraction": config.mask_fraction,
                "world_size": trainer.world,
                "device": str(trainer.device),
                "n_parameters": trainer.module.encoder.n_parameters,
            })
        ddp.barrier()
        return run_dir
    finally:
        ddp.cleanup()


def read_pretrain_metrics(run_dir: str | os.PathLike) -> dict:
    """A finished pretraining run's ``metrics.json`` (FileNotFoundError if unfinished)."""
    from .runs import read_metrics

    return read_metrics(run_dir)


def ensure_pretrained(config: PretrainConfig, progress: bool = True,
                      processes: int = 1) -> Path:
    """The finished pretraining run of ``config``: made if missing, resumed if unfinished.

    Returns ``config.run_dir`` at once when it holds a finished run (``metrics.json``) of this
    very config; resumes an unfinished run of this config; pretrains when there is none. With
    ``processes > 1`` the work runs under torchrun (:func:`launch`), else in this process.
    Callers that share the run (e.g. a study's cells in parallel jobs) take turns on an
    exclusive lock (``.<run_name>.lock`` beside the run): the first pretrains, the others wait
    and then reuse it.

    Raises
    ------
    ValueError
        When ``config.run_dir`` holds a run of another config (naming the differing fields):
        choose another ``run_name`` (e.g. :func:`default_pretrain_name`) or delete it.
    """
    return _ensure_locked(config, progress, processes)[0]


def _ensure_locked(config: PretrainConfig, progress: bool, processes: int) -> tuple[Path, bool]:
    import fcntl

    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(f"processes must be a positive integer, got {processes!r}")
    lock = config.run_dir.with_name(f".{config.run_dir.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            return _ensure_pretrained(config, progress, processes)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ensure_pretrained(config: PretrainConfig, progress: bool,
                       processes: int) -> tuple[Path, bool]:
    """:func:`ensure_pretrained` under its lock: (the run directory, whether this call trained)."""
    run_dir = config.run_dir
    config_file = run_dir / "config.json"
    resume = config_file.is_file()
    if resume:
        saved = json.loads(config_file.read_text(encoding="utf-8"))
        differ = _config_differences(saved.get("pretrain", {}), config)
        if differ:
            raise ValueError(f"the pretraining run {run_dir} was made with another config "
                             f"(differs in {differ}); choose another run_name (e.g. "
                             "microlens.pretrain.default_pretrain_name(...)) or delete it")
        if (run_dir / "metrics.json").is_file():
            return run_dir, False
    elif holds_files(run_dir):
        raise ValueError(f"{run_dir} exists but is not a pretraining run (no config.json); "
                         "choose another run_name or delete it")
    if processes > 1:
        return launch(config, processes, resume=resume, echo=progress), True
    return pretrain(config, resume=resume, progress=progress), True


# --------------------------------------------------------------------------------------------
# Fine-tuning from a notebook
# --------------------------------------------------------------------------------------------


def pretrain_config_for(train_config, *, epochs: int = 10, mask_fraction: float = 0.15,
                        batch_size: int = 64, learning_rate: float = 1e-3,
                        seed: int = 0) -> PretrainConfig:
    """The :class:`PretrainConfig` of a ``masked`` training config's encoder.

    On the training config's dataset (its train split, every event) with its encoder
    (:func:`encoder_config`), device, precision and normalisation settings, the given
    pretraining settings, a fixed ``seed`` (so fine-tuning runs of other seeds share the
    pretraining), run name :func:`default_pretrain_name`, and ``runs_dir`` the ``pretrain``
    folder beside the training's ``runs_dir`` (``outputs/runs`` -> ``outputs/pretrain``).
    """
    settings = dict(epochs=epochs, mask_fraction=mask_fraction, batch_size=batch_size,
                    learning_rate=learning_rate, seed=seed, device=train_config.device,
                    precision=train_config.precision,
                    reference_points=train_config.reference_points,
                    baseline_method=train_config.baseline_method,
                    normalization_events=train_config.normalization_events)
    model = encoder_config(train_config.model)
    runs_dir = str(Path(train_config.runs_dir).parent / "pretrain")
    return PretrainConfig(dataset=train_config.dataset, model=model, runs_dir=runs_dir,
                          run_name=default_pretrain_name(train_config.dataset, model, **settings),
                          **settings)


def prepare_masked(train_config, pretrained_run: str = "", *, epochs: int = 10,
                   mask_fraction: float = 0.15, batch_size: int = 64,
                   learning_rate: float = 1e-3, processes: int = 1, progress: bool = True):
    """What ``02_train`` does before training a ``masked`` model: find or make its pretraining.

    Parameters
    ----------
    train_config : microlens.train.TrainConfig
        The fine-tuning config. Another kind comes back unchanged, with None.
    pretrained_run : str
        A finished pretraining run directory to start from (checked against the encoder); ""
        pretrains one on the training dataset with :func:`pretrain_config_for` and the settings
        below, or reuses it when it exists (:func:`ensure_pretrained`).
    epochs, mask_fraction, batch_size, learning_rate : PretrainConfig settings
        Used only when ``pretrained_run`` is "".
    processes : int
        Processes of a pretraining made here (more than 1: under torchrun, as training).
    progress : bool
        Progress output of the pretraining.

    Returns
    -------
    (TrainConfig, dict or None)
        The training config with ``model.pretrained`` set to the run (project-relative), and
        the record of the pretraining for ``train_metrics.json``: ``run_dir``, ``made_now``
        (False when an existing run was used), ``config``, ``best_epoch``, ``val_loss`` (best),
        ``final_val_loss``, ``epochs_run``, ``seconds`` (its cost, whenever it was paid),
        ``events_per_second`` and ``history``.
    """
    if train_config.model.kind != "masked":
        return train_config, None
    if train_config.model.pretrained and pretrained_run:
        raise ValueError(f"the model config already names its pretraining "
                         f"({train_config.model.pretrained!r}); pass pretrained_run='' or clear "
                         "ModelConfig.pretrained")
    if pretrained_run or train_config.model.pretrained:
        run_dir = pretraining_run(replace(train_config.model,
                                          pretrained=pretrained_run
                                          or train_config.model.pretrained))
        made_now = False
    else:
        pre = pretrain_config_for(train_config, epochs=epochs, mask_fraction=mask_fraction,
                                  batch_size=batch_size, learning_rate=learning_rate)
        run_dir, made_now = _ensure_locked(pre, progress, processes)
    metrics = read_pretrain_metrics(run_dir)
    saved = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    record = {
        "run_dir": str(run_dir), "made_now": made_now, "config": saved["pretrain"],
        **{k: metrics.get(k) for k in ("best_epoch", "val_loss", "final_val_loss", "epochs_run",
                                      "seconds", "events_per_second", "stopped_early")},
        "history": read_history(run_dir),
    }
    model = replace(train_config.model, pretrained=project_relative(run_dir))
    return replace(train_config, model=model), record


# --------------------------------------------------------------------------------------------
# torchrun and the command line
# --------------------------------------------------------------------------------------------


def torchrun_command(config_path: str | os.PathLike, nproc_per_node: int, *,
                     resume: bool = False, overwrite: bool = False,
                     quiet: bool = False) -> list[str]:
    """The ``python -m torch.distributed.run`` command line that :func:`launch` runs."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", str(nproc_per_node), "-m", "microlens.pretrain",
               "--config", str(config_path)]
    return command + (["--resume"] if resume else []) + (["--overwrite"] if overwrite else []) \
        + (["--quiet"] if quiet else [])


def launch(config: PretrainConfig, nproc_per_node: int = 2, *, resume: bool = False,
           overwrite: bool = False, echo: bool = True) -> Path:
    """Pretrain ``config`` with ``nproc_per_node`` processes under torchrun (as
    :func:`microlens.ddp.launch` trains), printing rank 0's lines as they come with ``echo``;
    returns the run directory.

    Raises
    ------
    microlens.ddp.LaunchError
        When the job fails; the message carries the end of its output.
    """
    import subprocess
    import tempfile
    from collections import deque

    if isinstance(nproc_per_node, bool) or not isinstance(nproc_per_node, int) \
            or nproc_per_node < 1:
        raise ValueError(f"nproc_per_node must be a positive integer, got {nproc_per_node!r}")
    if resume and overwrite:
        raise ValueError("choose resume or overwrite, not both")
    with tempfile.TemporaryDirectory(prefix="microlens-pretrain-") as tmp:
        path = config.save(Path(tmp) / "pretrain_config.json")
        command = torchrun_command(path, nproc_per_node, resume=resume, overwrite=overwrite,
                                   quiet=not echo)
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc_per_node)))
        env["PYTHONUNBUFFERED"] = "1"
        tail: deque[str] = deque(maxlen=60)
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=env, bufsize=1) as process:
            for line in process.stdout:
                tail.append(line.rstrip("\n"))
                if echo:
                    print(line, end="", flush=True)
        if process.returncode != 0:
            raise ddp.LaunchError(f"torchrun exited with code {process.returncode}: "
                                  f"{' '.join(command)}\n" + "\n".join(tail))
    return config.run_dir


def parse_args(argv=None):
    """Command-line options: ``--config JSON`` and any PretrainConfig / ModelConfig setting."""
    parser = argparse.ArgumentParser(
        prog="python -m microlens.pretrain", description=__doc__.split("\n\n")[0],
        epilog="Under torchrun: torchrun --standalone --nproc_per_node N -m microlens.pretrain "
               "...")
    parser.add_argument("--config", help="a PretrainConfig JSON file (e.g. a run's config.json)")
    parser.add_argument("--resume", action="store_true", help="continue from last.pt")
    parser.add_argument("--overwrite", action="store_true", help="start the run again")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    add_traceback_option(parser)
    add_dataclass_options(parser, PretrainConfig, skip=("model",))
    add_dataclass_options(parser, ModelConfig, skip=("kind", "pretrained"))
    args = parser.parse_args(argv)
    base = PretrainConfig.load(args.config) if args.config else PretrainConfig()
    pretrain_over = dataclass_overrides(args, PretrainConfig, skip=("model",))
    model_over = dataclass_overrides(args, ModelConfig, skip=("kind", "pretrained"))
    try:
        config = replace(base, model=replace(base.model, **model_over), **pretrain_over)
    except ValueError as exc:
        parser.error(str(exc))
    return config, args


@command_line
def main(argv=None) -> int:
    """``python -m microlens.pretrain``: an input error is one line on stderr, exit status 2
    (:mod:`microlens.cli`; ``--traceback`` shows the traceback)."""
    config, args = parse_args(argv)
    main_process = int(os.environ.get("RANK", "0")) == 0
    run_dir = pretrain(config, resume=args.resume, overwrite=args.overwrite,
                       progress=not args.quiet)
    if main_process and not args.quiet:
        print(f"pretraining run directory: {run_dir}")
    return 0


__all__ = [
    "ENCODER_FIELDS", "FINISHED_FILES", "MaskedPretrainer", "MaskedTransformer",
    "PRETRAIN_HISTORY_COLUMNS", "PRETRAIN_RUNS_DIR", "PretrainConfig",
    "PretrainingDivergedError", "default_pretrain_name", "encoder_config",
    "encoder_differences", "ensure_pretrained", "hide_flux", "is_encoder_key", "launch",
    "masked_count", "masked_losses", "masked_positions", "prepare_masked", "pretrain",
    "pretrain_config_for", "pretraining_run", "read_pretrain_metrics", "torchrun_command",
]  # fmt: skip


if __name__ == "__main__":
    # run the package's module, not this file's second copy (microlens.model_kinds imports it)
    from microlens.pretrain import main as _main

    sys.exit(_main())
