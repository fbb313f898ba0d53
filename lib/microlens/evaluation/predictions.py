"""Held-out predictions of a trained run: the test-split guard and per-observation logits.

Every evaluation number in this project is computed on the dataset's **test split**, which
training never reads (early stopping and the temperature use the validation split). This module
is the one place that selects test events and runs a model over them:

* :func:`select_test_events` picks test-split events (all, ``n`` of them, or ``per_class``), with a
  recorded seed; the returned store rows keep each event aligned with its parameter row.
* :func:`require_test_split` refuses any row outside the test split, with the offending rows named.
* :func:`predict_events` runs one forward pass per event and keeps the logits after *every*
  observation, so early-detection curves need no re-running of truncated light curves (the model
  is causal: the prediction at observation ``k`` is what it would say having seen ``1..k``).
* :class:`Predictions` holds those logits with the store rows, labels, lengths and times, and
  saves/loads as a plain ``.npz`` (no pickle) with a JSON header.
* :func:`run_predictions` does all of it for a run directory and caches the result beside the run
  (``<run>/predictions/<dataset>-test.npz``), keyed by the dataset's identity and the weights.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from microlens.core.paths import resolve_path
from microlens.data.store import LightCurveStore, open_dataset
from microlens.models.holdout import (
    EVALUATION_SPLIT,
    Predictions,
    require_test_split,
    select_test_events,
)
from microlens.models.runs import read_json


def forward_batches(model, store: LightCurveStore, rows: Sequence[int], *, batch_size: int = 64,
                    device="cpu", desc: str = "predict", progress: bool = False,
                    **forward_options):
    """Run ``model`` over test events ``rows`` in batches; yield ``(rows, batch, outputs)``.

    The one loop behind every model read of the test split (predictions, attention, embeddings):
    rows are checked by :func:`require_test_split` and, before any model runs, by
    :meth:`~microlens.data.store.LightCurveStore.require_valid` (non-finite values, non-positive
    errors, unsorted or repeated times: :class:`~microlens.core.validation.InvalidLightCurveError`
    naming the store rows), each batch comes from
    :meth:`~microlens.data.store.LightCurveStore.batch`, and the model runs in eval mode without
    gradients (its previous mode is restored at the end). With no ``forward_options`` the
    outputs are ``{"logits": predict_logits(...)}`` (passes sized for the device); otherwise
    ``model(..., **forward_options)`` (e.g. ``return_attention=True``). ``device`` is a
    torch.device or ``'auto'`` (the GPU when there is one), ``'cpu'`` or ``'cuda'``.
    """
    import torch
    from tqdm.auto import tqdm

    from microlens.core.devices import local_device

    rows = require_test_split(store, rows)
    if rows.size == 0:
        raise ValueError("no events to run the model on")
    store.require_valid(rows, f"{desc} reads test events")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    batch_size = int(batch_size)
    device = device if isinstance(device, torch.device) else local_device(device)
    model = model.to(device)
    was_training = model.training
    model.eval()
    try:
        for start in tqdm(range(0, rows.size, batch_size), desc=desc, unit="batch",
                          disable=not progress):
            part = rows[start : start + batch_size]
            batch = store.batch(part)
            inputs = [batch[k].to(device) for k in ("times", "flux", "flux_err", "mask")]
            with torch.no_grad():
                out = (model(*inputs, **forward_options) if forward_options
                       else {"logits": model.predict_logits(*inputs, check_inputs=False)})
            yield part, batch, out
    finally:
        model.train(was_training)


def predict_events(model, store: LightCurveStore, rows: Sequence[int], *, batch_size: int = 64,
                   device="cpu", progress: bool = False) -> Predictions:
    """Run ``model`` over test events ``rows`` and keep the logits after every observation.

    Parameters
    ----------
    model : MicrolensTransformer
    store : LightCurveStore
    rows : sequence of int
        Test-split store rows (checked by :func:`require_test_split`).
    batch_size : int
        Events per forward pass group (memory, not results, depends on it).
    device : str or torch.device
    progress : bool
        Show a progress bar.

    Raises
    ------
    InvalidLightCurveError
        When a row holds a non-finite value, a non-positive error or unsorted or repeated
        times (see :mod:`microlens.core.validation`), before the model runs; the message names the
        store rows and observations.
    """
    rows = require_test_split(store, rows)
    lengths = np.asarray(store.lengths[rows], dtype=np.int64)
    logits = np.zeros((rows.size, max(int(lengths.max(initial=1)), 1), model.config.n_classes),
                      np.float32)
    done = 0
    for part, _, out in forward_batches(model, store, rows, batch_size=batch_size, device=device,
                                        progress=progress):
        values = out["logits"].float().cpu().numpy()
        logits[done : done + part.size, : values.shape[1]] = values
        done += part.size
    times = store.padded(rows, logits.shape[1], names=("times",))["times"].astype(np.float64)
    return Predictions(rows=rows, labels=np.asarray(store.labels[rows], dtype=np.int64),
                       lengths=lengths, times=times, logits=logits,
                       temperature=float(model.temperature), info={},
                       temperature_curve=_temperature_curve(model))


def _temperature_curve(model) -> dict | None:
    """A model's temperature curve as JSON-ready lists (None when it has only the scalar)."""
    if model.temperature_counts.numel() == 0:
        return None
    return {"counts": model.temperature_counts.cpu().tolist(),
            "temperatures": model.temperature_curve.cpu().tolist()}


def run_kind(run_dir: str | os.PathLike) -> str:
    """The model kind of a run directory (``config.json``'s ``model.kind``; runs saved before
    kinds existed are ``"transformer"``,
    :meth:`~microlens.models.config.ModelConfig.from_saved`)."""
    from microlens.models.config import ModelConfig

    config_file = resolve_path(run_dir) / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{resolve_path(run_dir)} is not a run directory: config.json "
                                "is missing")
    config = read_json(config_file)
    return ModelConfig.from_saved(config["model"]).kind


def _fingerprint(run_dir: Path, which: str, store: LightCurveStore, rows: np.ndarray) -> str:
    """A key that changes when the weights, the dataset or the chosen events change (for a
    ``features`` run: its trees and their metadata, which holds the temperature)."""
    from microlens.models.base import WEIGHT_FILES

    if which not in WEIGHT_FILES:
        raise ValueError(f"unknown checkpoint {which!r}; valid: {', '.join(WEIGHT_FILES)}")
    if run_kind(run_dir) == "features":
        from microlens.models.features import META_FILE, MODEL_FILE

        files = [run_dir / MODEL_FILE, run_dir / META_FILE]
    else:
        files = [run_dir / WEIGHT_FILES[which]]
    digest = hashlib.sha256()
    for weights in files:
        if not weights.is_file():
            raise FileNotFoundError(f"{run_dir} is not a complete run directory: {weights.name} "
                                    "is missing")
        digest.update(weights.read_bytes())
    digest.update(store.identity.encode())
    digest.update(rows.tobytes())
    return digest.hexdigest()[:16]


def run_dataset(run_dir: str | os.PathLike,
                dataset: str | os.PathLike | None = "") -> LightCurveStore:
    """Open ``dataset``, or (when it is empty or None) the dataset the run was trained on.

    Parameters
    ----------
    run_dir : path
        A run directory written by :func:`microlens.training.train.train` (relative paths are taken
        from the project root).
    dataset : path or LightCurveStore, optional
        Another dataset to evaluate (its test split; an open store is returned as it is);
        ``""`` or None means the run's own, read from ``config.json`` (``train.dataset``).
    """
    if isinstance(dataset, LightCurveStore):
        return dataset
    if dataset is None or str(dataset) == "":
        dataset = run_dataset_path(run_dir)
    return open_dataset(dataset)


def run_dataset_path(run_dir: str | os.PathLike) -> Path:
    """Where the dataset a run was trained on is (``config.json``'s ``train.dataset``,
    resolved from the project root); it may not exist on this machine."""
    config_file = resolve_path(run_dir) / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{resolve_path(run_dir)} is not a run directory: "
                                "config.json is missing")
    return resolve_path(read_json(config_file)["train"]["dataset"])


def run_predictions(run_dir: str | os.PathLike, dataset: str | os.PathLike | None = None, *,
                    rows: Sequence[int] | None = None, which: str = "best", batch_size: int = 64,
                    device: str = "cpu", cache: bool = True, progress: bool = False,
                    workers: int = 1) -> tuple[Predictions, LightCurveStore]:
    """Test-split predictions of a trained run, computed once and cached beside the run.

    Parameters
    ----------
    run_dir : path
        A run directory written by :func:`microlens.training.train.train`.
    dataset : path or LightCurveStore, optional
        Dataset to evaluate on; default: the one the run was trained on (its test split).
    rows : sequence of int, optional
        Test rows (default: the whole test split).
    which : {'best', 'last'}
        Checkpoint.
    batch_size, device, progress
        As :func:`predict_events` (``batch_size`` and ``device`` do not apply to a
        ``features`` run, which runs :func:`microlens.models.features.predict_feature_events`).
    workers : int
        Processes for a ``features`` run's feature extraction (unused by the neural kinds).
    cache : bool
        Reuse ``<run>/predictions/<key>.npz`` when the weights, dataset and rows are unchanged.

    Returns
    -------
    (Predictions, LightCurveStore)
    """
    from microlens.models.registry import load_model

    run_dir = resolve_path(run_dir)
    store = run_dataset(run_dir, dataset)
    rows = select_test_events(store) if rows is None else require_test_split(store, rows)
    store.require_valid(rows, "predictions read test events")  # also before a cached answer
    key = _fingerprint(run_dir, which, store, rows)
    cache_file = run_dir / "predictions" / f"{store.path.name}-{which}-{key}.npz"
    if cache and cache_file.is_file():
        return Predictions.load(cache_file), store
    model = load_model(run_dir, which)
    if getattr(model, "kind", "") == "features":
        from microlens.models.features import predict_feature_events

        predictions = predict_feature_events(model, store, rows, workers=workers,
                                             progress=progress)
    else:
        predictions = predict_events(model, store, rows, batch_size=batch_size, device=device,
                                     progress=progress)
    predictions.info = {**(predictions.info or {}), "run_dir": str(run_dir),
                        "dataset": str(store.path), "checkpoint": which,
                        "split": EVALUATION_SPLIT, "key": key}
    if cache:
        predictions.save(cache_file)
    return predictions, store


__all__ = [
    "forward_batches", "predict_events", "run_dataset", "run_kind", "run_predictions"
]  # fmt: skip
