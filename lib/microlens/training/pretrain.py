"""Self-supervised masked pretraining of the causal encoder, and the ``masked`` model kind.

``pretrain(PretrainConfig) -> run directory``; also ``python -m microlens.training.train --objective
pretrain`` (or its alias ``python -m microlens.training.pretrain``): the loop, run directory,
launcher and settings checks are training's (:mod:`microlens.training.loop`), the objective is this
module's. A ``masked`` classifier (:class:`MaskedTransformer`, :attr:`ModelConfig.pretrained
<microlens.models.config.ModelConfig.pretrained>` naming such a run) is the transformer whose
encoder starts from the pretrained weights and whose input normalisation is the pretraining's; it is
then fine-tuned with labels by :func:`microlens.training.train.train` like any kind.

**Objective: masked flux reconstruction, causal.** In every training curve a fraction
``mask_fraction`` (0.15 by default) of the valid observations is chosen at random, anew each
epoch, from the :data:`~microlens.core.seeds.PRETRAIN_MASK` stream of ``(seed, epoch, event row)``
(so the choice does not depend on the batch, the order or the number of processes; validation
events get one fixed choice, :data:`~microlens.core.seeds.PRETRAIN_VAL_MASK`, the same every epoch,
so their loss is comparable across epochs). At a masked observation ``j``

* the flux feature (``features[..., 0]``, ``asinh((F - b) / s)``; :class:`~microlens.models.inputs.
  Normalization`) is hidden: set to 0;
* a learned mask embedding (a vector of ``d_model``) is added to its embedded token, so the
  encoder can tell a hidden flux from a flux at the baseline (which is also 0);
* its error and interval features stay: the time at which the flux is asked is known;
* a reconstruction head (LayerNorm, Linear, GELU, Linear to one number) reads the encoder
  state at ``j`` and predicts the hidden flux feature.

The loss of an event is the mean squared error over its masked valid observations; the loss of
a batch is the sum over its events divided by the events of the global batch (an event with
none masked, at 0.15 a curve of at most 3 points, counts zero), so a step's gradient is the
same for any number of micro-batches or processes, as in :mod:`microlens.training.train`.

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

**Fine-tuning.** :class:`MaskedTransformer` is
:class:`~microlens.models.transformer.MicrolensTransformer` (the same modules and state-dict keys,
so :func:`~microlens.models.registry.load_model`, streaming and attention maps work unchanged).
:meth:`MaskedTransformer.pretrained_normalization` gives training the pretraining's normalisation
(the encoder learned those inputs), and
:meth:`MaskedTransformer.load_pretrained` copies the encoder (embedding, convolution stem,
attention blocks, pooling norm: everything but the classification head and the temperature)
before the first step of a fresh run. The mask embedding and the reconstruction head belong to
:class:`MaskedPretrainer` only, so the classifier has no unused parameters (DDP would refuse
them). With ``pretrained=""`` the kind is the transformer trained from scratch.

A pretraining run directory ``outputs/pretrain/<run_name>/`` holds::

    config.json          {"pretrain": PretrainConfig, "model": ModelConfig, ...} normalization.json
    the input normalisation, fitted on training events (the classifier's) history.csv          the
    columns of every run (microlens.models.runs.HISTORY_COLUMNS), accuracies NaN steps.csv
    one row per optimiser step: loss, learning rate, gradient norm last.pt              the full
    checkpoint after every epoch (resume from it) encoder.pt           the MaskedTransformer state
    dict of the best epoch (lowest val loss) metrics.json         written last: best epoch, best val
    loss, seconds (present: finished)

Data: the dataset's **train** split, labels never read; early stopping and the best epoch on the
**val** split's masked loss. The test split is never read. Under ``torchrun`` it runs
DistributedDataParallel exactly like :mod:`microlens.training.train` (rank 0 writes). Every random
draw comes from a stream of ``seed`` (:mod:`microlens.core.seeds`), and ``last.pt`` after every
epoch lets an interrupted run resume to exactly where the uninterrupted one ends. As in training,
dropout draws come per ``(epoch, rank)``: with ``dropout > 0`` runs on different numbers of
processes differ by their dropout masks (with 0 they agree to float rounding).

Quick use::

    from microlens.training.pretrain import PretrainConfig, ensure_pretrained
    run = ensure_pretrained(PretrainConfig(dataset="data/quick", run_name="quick-masked",
                                           model=ModelConfig(kind="masked", d_model=64)))
    TrainConfig(model=ModelConfig(kind="masked", d_model=64, pretrained=str(run)), ...)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from microlens.core import seeds
from microlens.core.paths import project_relative, resolve_path, write_json_atomic
from microlens.core.removal import holds_files
from microlens.core.seeds import subset_rows
from microlens.models.config import ModelConfig
from microlens.models.inputs import Normalization
from microlens.models.masked import (
    MaskedTransformer,
    encoder_config,
    pretraining_run,
)
from microlens.models.runs import HISTORY_COLUMNS, read_history
from microlens.training import ddp
from microlens.training.loop import Objective, StepResult, clip_and_step, run
from microlens.training.settings import TrainingSettings

PRETRAIN_RUNS_DIR = "outputs/pretrain"
"""Where pretraining runs go by default (relative: from the project root)."""

PRETRAIN_HISTORY_COLUMNS = HISTORY_COLUMNS
"""Columns of a pretraining run's ``history.csv``: those of every run
(:data:`microlens.models.runs.HISTORY_COLUMNS`), the accuracies NaN (no classes here)."""



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
    :data:`~microlens.core.seeds.PRETRAIN_MASK` stream of ``(seed, epoch, row)`` for a training
    epoch,
    or from :data:`~microlens.core.seeds.PRETRAIN_VAL_MASK` of ``(seed, row)`` with ``epoch=None``
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
            As for :meth:`~microlens.models.base.CausalClassifier.forward` (padded at the end).
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
class PretrainConfig(TrainingSettings):
    """Everything a pretraining run depends on (saved in ``config.json`` under "pretrain");
    the checks it shares with training are
    :class:`~microlens.training.settings.TrainingSettings`'s."""

    SECTION = "pretrain"

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

    def check(self) -> None:
        if self.model.kind != "masked":
            raise ValueError(f"PretrainConfig.model.kind must be 'masked' (the encoder of a "
                             f"'masked' classifier), got {self.model.kind!r}")
        if self.model.pretrained:
            raise ValueError(f"PretrainConfig.model.pretrained must be '' (pretraining starts "
                             f"from random weights), got {self.model.pretrained!r}")
        fraction = self.mask_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not (
                0.0 < fraction < 1.0):
            raise ValueError(f"PretrainConfig.mask_fraction must be in (0, 1) (the share of "
                             f"each curve's observations hidden), got {fraction!r}")


def default_pretrain_name(dataset: str | os.PathLike, model_config: ModelConfig,
                          **settings) -> str:
    """A stable run name ``<dataset directory name>-masked-<hash>`` for pretraining
    ``model_config``'s encoder on ``dataset`` with ``settings`` (:class:`PretrainConfig` fields).

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
# The objective (the loop is microlens.training.loop's)
# --------------------------------------------------------------------------------------------


class PretrainingDivergedError(RuntimeError):
    """The validation loss became non-finite: the weights diverged."""


class MaskedObjective(Objective):
    """Masked pretraining: a batch costs the masked flux reconstruction loss (module
    docstring); validation measures it with fixed masks; ``encoder.pt`` keeps the best
    encoder; a finished run records its cost in ``metrics.json``. Reads no label."""

    label = "pretrain "
    what = "pretraining run"
    best_file = "encoder.pt"
    has_accuracy = False
    diverged_error = PretrainingDivergedError
    retry_advice = "Pretrain again"
    reads = "pretraining reads the train and val rows it uses"
    repair_advice = ("regenerate the dataset or repair those rows; the test split is never "
                     "read by pretraining")

    def __init__(self, config: PretrainConfig, progress: bool):
        super().__init__(config, progress, MaskedTransformer.cpu_pass_observations)

    def fit_normalization(self) -> Normalization:
        """The input normalisation from training events (as :mod:`microlens.training.train` fits
        it)."""
        c = self.config
        rows = subset_rows(self.train_rows, c.normalization_events, c.seed,
                           seeds.NORMALIZATION_EVENTS)
        arrays = self.store.padded(rows)
        return Normalization.fit(arrays["times"].astype(np.float32), arrays["flux"],
                                 arrays["flux_err"], arrays["mask"],
                                 reference_points=c.reference_points,
                                 baseline_method=c.baseline_method)

    def build_module(self, normalization: Normalization) -> nn.Module:
        return MaskedPretrainer(self.config.model, normalization).to(self.device)

    def best_state(self) -> dict:
        return self.module.encoder.state_dict()

    def config_record(self) -> dict:
        config = self.config
        return {
            "pretrain": config.to_dict(), "model": config.model.to_dict(),
            "dataset_manifest": {k: self.store.manifest.get(k) for k in
                                 ("n_events", "n_observations", "max_observations",
                                  "split_counts", "config")},
            "world_size": self.world, "device": str(self.device),
            "precision": str(self.autocast_dtype or torch.float32).replace("torch.", ""),
            "micro_batch_size": self.micro_batch,
            "n_parameters": MaskedTransformer(config.model).n_parameters,
            "torch_version": torch.__version__,
        }

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

    def _losses(self, model, batch: dict) -> torch.Tensor:
        with self.autocast():
            return model(batch["times"], batch["flux"], batch["flux_err"], batch["mask"],
                         batch["hidden"])

    def train_step(self, rows: np.ndarray, epoch: int, learning_rate: float) -> StepResult:
        """One optimiser step on this rank's ``rows``: the summed per-event losses over the
        global batch's events are back-propagated micro-batch by micro-batch; the gradient is
        clipped and applied if finite."""
        from torch.nn.parallel import DistributedDataParallel

        distributed = isinstance(self.model, DistributedDataParallel)
        parts = self.plan(rows)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        for i, part in enumerate(parts):
            batch = self.load(part, epoch)
            last = i == len(parts) - 1
            with self.model.no_sync() if distributed and not last else nullcontext():
                losses = self._losses(self.model, batch)
                (losses.float().sum() / rows.size).backward()
            loss_sum += losses.detach().double().sum()
        trainable = [p for p in self.module.parameters() if p.requires_grad]
        norm, applied = clip_and_step(trainable, self.optimizer, self.config.grad_clip)
        return StepResult(loss=loss_sum / rows.size,
                          totals=torch.stack([loss_sum, torch.zeros_like(loss_sum),
                                              torch.full_like(loss_sum, rows.size)]),
                          grad_norm=norm, applied=applied)

    @torch.no_grad()
    def validate(self) -> dict:
        """The validation split's masked loss (fixed masks), mean over events, all ranks; no
        accuracy (NaN): pretraining has no classes."""
        self.module.eval()
        mine = self.val_rows[self.rank :: self.world]
        totals = torch.zeros(2, dtype=torch.float64, device=self.device)
        for part in self.plan(mine, self.eval_size()):
            losses = self._losses(self.module, self.load(part, None))
            totals += torch.stack([losses.double().sum(),
                                   torch.tensor(float(part.size), dtype=torch.float64,
                                                device=self.device)])
        totals = ddp.all_reduce_sum(totals)
        return {"val_loss": float(totals[0]) / float(totals[1]), "val_accuracy": math.nan}

    def finish(self, run_dir: Path, history, best, stopped_early, main) -> None:
        if not main:
            return
        speeds = [r["train_events_per_second"] for r in history]
        write_json_atomic(run_dir / "metrics.json", {
            "run_dir": str(run_dir),
            "best_epoch": best["epoch"],
            "best_val_loss": best["val_loss"],
            "val_loss": best["val_loss"],
            "final_val_loss": history[-1]["val_loss"] if history else None,
            "epochs_run": len(history),
            "stopped_early": bool(stopped_early),
            "seconds": float(sum(r["epoch_seconds"] for r in history)),
            "events_per_second": float(np.median(speeds)) if speeds else None,
            "n_train_events": int(self.train_rows.size),
            "n_val_events": int(self.val_rows.size),
            "mask_fraction": self.config.mask_fraction,
            "world_size": self.world,
            "device": str(self.device),
            "n_parameters": self.module.encoder.n_parameters,
        })


def pretrain(config: PretrainConfig, *, resume: bool = False, overwrite: bool = False,
             progress: bool = True, on_epoch=None, stop_after_epochs: int | None = None) -> Path:
    """Pretrain an encoder by masked flux reconstruction (module docstring); returns the run
    directory. The loop, run directory and resumption are those of training
    (:func:`microlens.training.loop.run`).

    Parameters
    ----------
    config : PretrainConfig
    resume : bool
        Continue the run in ``config.run_dir`` from its ``last.pt`` (its config must match).
    overwrite : bool
        Delete an existing run directory of the same name first: only one the project made
        (see :mod:`microlens.core.removal`; anything else raises ``UnsafeDeleteError``).
    progress : bool
        Progress bars and one line per epoch (rank 0).
    on_epoch : callable, optional
        Called on rank 0 with each epoch's history row.
    stop_after_epochs : int, optional
        End this call after that many epochs, leaving a resumable run.

    Under torchrun (see :mod:`microlens.training.ddp`) every process calls this; rank 0 writes.
    """
    if resume and overwrite:
        raise ValueError("choose resume or overwrite, not both")
    try:
        return run(MaskedObjective(config, progress), resume=resume, overwrite=overwrite,
                   on_epoch=on_epoch, stop_after_epochs=stop_after_epochs)
    finally:
        ddp.cleanup()


def read_pretrain_metrics(run_dir: str | os.PathLike) -> dict:
    """A finished pretraining run's ``metrics.json`` (FileNotFoundError if unfinished)."""
    from microlens.models.runs import read_metrics

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
        differ = config.saved_differences(saved.get("pretrain", {}))
        if differ:
            raise ValueError(f"the pretraining run {run_dir} was made with another config "
                             f"(differs in {differ}); choose another run_name (e.g. "
                             "microlens.training.pretrain.default_pretrain_name(...)) or delete it")
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
    train_config : microlens.training.train.TrainConfig
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
    """The command line that :func:`launch` runs: :func:`microlens.training.ddp.torchrun_command` of
    the pretraining objective."""
    return ddp.torchrun_command(config_path, nproc_per_node, resume=resume, overwrite=overwrite,
                                quiet=quiet, objective="pretrain")


def launch(config: PretrainConfig, nproc_per_node: int = 2, *, resume: bool = False,
           overwrite: bool = False, echo: bool = True) -> Path:
    """Pretrain ``config`` with ``nproc_per_node`` processes under torchrun
    (:func:`microlens.training.ddp.launch`, the launcher of every objective), printing rank 0's
    lines as they come with ``echo``; returns the run directory.

    Raises
    ------
    microlens.training.ddp.LaunchError
        When the job fails; the message carries the end of its output.
    """
    return ddp.launch(config, nproc_per_node, resume=resume, overwrite=overwrite, echo=echo)


__all__ = [
    "MaskedPretrainer", "PRETRAIN_HISTORY_COLUMNS", "PRETRAIN_RUNS_DIR", "PretrainConfig",
    "MaskedObjective", "PretrainingDivergedError", "default_pretrain_name", "ensure_pretrained",
    "hide_flux", "launch", "masked_count", "masked_losses", "masked_positions", "prepare_masked",
    "pretrain", "pretrain_config_for", "read_pretrain_metrics", "torchrun_command"
]  # fmt: skip


if __name__ == "__main__":
    # An alias of the one command line, `python -m microlens.training.train --objective pretrain`.
    # Run as
    # a program (runpy), not imported: this module stays below microlens.training.train, which uses
    # it.
    import runpy

    sys.argv[1:1] = ["--objective", "pretrain"]  # a later --objective still wins
    runpy.run_module("microlens.training.train", run_name="__main__", alter_sys=True)
