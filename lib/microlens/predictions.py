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
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .metrics import softmax
from .paths import atomic_path, resolve_path
from .store import LightCurveStore, open_dataset, split_code

EVALUATION_SPLIT = "test"
"""The only split evaluation reads."""


class SplitError(ValueError):
    """Evaluation was asked to read events outside the test split."""


def require_split(store: LightCurveStore, rows: Sequence[int], split: str,
                  purpose: str) -> np.ndarray:
    """Return ``rows`` as an int64 array, or raise :class:`SplitError` naming any row that is not
    in ``split`` (and its own split); ``purpose`` says why only that split may be read."""
    from .store import SPLIT_NAMES

    rows = np.asarray(rows)
    if rows.size and not np.issubdtype(rows.dtype, np.integer):
        raise ValueError(f"rows must be integer store rows (event indices), got dtype {rows.dtype}")
    rows = rows.astype(np.int64).reshape(-1)
    if rows.size and (rows.min() < 0 or rows.max() >= len(store)):
        raise IndexError(f"event indices must lie in [0, {len(store)}), got "
                         f"[{rows.min()}, {rows.max()}]")
    outside = rows[np.asarray(store.split[rows]) != split_code(split)]
    if outside.size:
        named = ", ".join(f"{r} ({SPLIT_NAMES[int(store.split[r])]})" for r in outside[:5])
        more = f" and {outside.size - 5} more" if outside.size > 5 else ""
        called = {"val": "validation", "train": "training"}.get(split, split)
        raise SplitError(f"{purpose}; events {named}{more} are not {called} events (choose rows "
                         f"from store.indices({split!r}))")
    return rows


def require_test_split(store: LightCurveStore, rows: Sequence[int]) -> np.ndarray:
    """Return ``rows`` as an int64 array, or raise :class:`SplitError` if any is not a test event.

    Parameters
    ----------
    store : LightCurveStore
    rows : sequence of int
        Store rows (event indices).
    """
    return require_split(store, rows, EVALUATION_SPLIT, "evaluation reads the test split only")


def observations_seen(lengths, fraction: float) -> np.ndarray:
    """Observations seen after ``fraction`` of each light curve: ``ceil(fraction * n)`` without
    float noise (0.55 * 100 is 55.00000000000001), at least 1. Early detection of the
    transformer and of the classical peer both cut curves here, so their points line up."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    lengths = np.asarray(lengths, np.int64)
    return np.clip(np.ceil(np.round(fraction * lengths, 9)).astype(np.int64), 1, lengths)


def select_test_events(store: LightCurveStore, n: int | None = None, *,
                       per_class: int | None = None, seed: int = 0,
                       split: str = EVALUATION_SPLIT) -> np.ndarray:
    """Store rows of test events: all of them, a random ``n``, or ``per_class`` of each class.

    The subsample is drawn with ``numpy.random.default_rng(seed)`` and returned **sorted**, so a
    row always names the same event and its parameter row ``store.params[row]``.

    Parameters
    ----------
    store : LightCurveStore
    n : int, optional
        Total number of events (a uniform draw without replacement); None or 0 means all.
    per_class : int, optional
        Instead of ``n``: up to this many events of each class.
    seed : int
        Seed of the draw.
    split : str
        Must be ``'test'``; any other value raises :class:`SplitError` (the argument exists so
        that a caller passing a split gets a clear refusal instead of a silent test read).
    """
    if split != EVALUATION_SPLIT:
        raise SplitError(f"evaluation reads the test split only, got split={split!r}; the "
                         "validation split is for early stopping and the temperature")
    if n is not None and per_class is not None:
        raise ValueError("give n or per_class, not both")
    rows = store.indices(EVALUATION_SPLIT)
    if rows.size == 0:
        raise SplitError(f"{store.path} has no test events")
    rng = np.random.default_rng(seed)
    if per_class is not None:
        if per_class < 1:
            raise ValueError(f"per_class must be >= 1, got {per_class}")
        labels = np.asarray(store.labels[rows])
        chosen = [rng.permutation(rows[labels == c])[:per_class] for c in np.unique(labels)]
        return np.sort(np.concatenate(chosen))
    if n:
        if n < 0:
            raise ValueError(f"n must be >= 0 (0 means all), got {n}")
        return np.sort(rng.permutation(rows)[: int(n)])
    return rows


@dataclass
class Predictions:
    """Per-observation logits of a model over a set of test events (padded at the end).

    Attributes
    ----------
    rows : ndarray ``(E,)`` int64
        Store rows (event indices) in the order of the other arrays.
    labels : ndarray ``(E,)`` int64
    lengths : ndarray ``(E,)`` int64
        Valid observations per event.
    times : ndarray ``(E, N)`` float64
        Observation times [days] (padding repeats nothing meaningful).
    logits : ndarray ``(E, N, C)`` float32
        Uncalibrated logits after every observation; entries past ``lengths`` are meaningless.
    temperature : float
        The run's fitted temperature (calibrated logits are ``logits / temperature``).
    info : dict
        Where the predictions came from (run, dataset, checkpoint, ...).
    temperature_curve : dict, optional
        ``{"counts": [...], "temperatures": [...]}`` when the run fitted a temperature per number
        of observations seen (:mod:`microlens.calibration`): then the answer after ``k``
        observations is divided by the curve's temperature at ``k``, not by ``temperature``.
    """

    rows: np.ndarray
    labels: np.ndarray
    lengths: np.ndarray
    times: np.ndarray
    logits: np.ndarray
    temperature: float = 1.0
    info: dict | None = None
    temperature_curve: dict | None = None

    def __len__(self) -> int:
        return int(self.rows.size)

    @property
    def valid(self) -> np.ndarray:
        """``(E, N)`` bool, True at real observations."""
        return np.arange(self.logits.shape[1])[None, :] < self.lengths[:, None]

    def at(self, positions: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Probabilities ``(E, C)`` at one observation per event (0-based positions)."""
        positions = np.asarray(positions, dtype=np.int64)
        if np.any(positions < 0) or np.any(positions >= self.lengths):
            raise IndexError("positions must lie within each event's observations")
        logits = self.logits[np.arange(len(self)), positions]
        return softmax(logits, self.temperatures(positions)[:, None] if calibrated else 1.0)

    def temperatures(self, positions) -> np.ndarray:
        """Temperature (float64, shape of ``positions``) of the answers at 0-based
        ``positions``: the curve's at ``position + 1`` observations seen, else the scalar."""
        positions = np.asarray(positions)
        if not self.temperature_curve:
            return np.full(positions.shape, float(self.temperature))
        from .calibration import temperature_at

        return temperature_at(positions + 1, self.temperature_curve["counts"],
                              self.temperature_curve["temperatures"])

    def classes_at(self, positions: np.ndarray) -> np.ndarray:
        """Predicted class ``(E,)`` at one observation per event (the temperature does not change
        the argmax, so no softmax is needed)."""
        return self.logits[np.arange(len(self)), np.asarray(positions, np.int64)].argmax(axis=-1)

    def final(self, calibrated: bool = True) -> np.ndarray:
        """Probabilities ``(E, C)`` after each event's last observation."""
        return self.at(self.lengths - 1, calibrated)

    def subset(self, keep: np.ndarray) -> Predictions:
        """The predictions of some events (boolean mask or positions), still aligned."""
        return Predictions(self.rows[keep], self.labels[keep], self.lengths[keep],
                           self.times[keep], self.logits[keep], self.temperature,
                           dict(self.info or {}), self.temperature_curve)

    # -- files -----------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write an ``.npz`` (arrays + a JSON header), atomically."""
        path = Path(path)
        header = {"temperature": self.temperature, "info": self.info or {},
                  "temperature_curve": self.temperature_curve}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, rows=self.rows, labels=self.labels, lengths=self.lengths,
                         times=self.times, logits=self.logits,
                         header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Predictions:
        """Read a file written by :meth:`save` (``allow_pickle=False``)."""
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(bytes(data["header"]).decode())
            return cls(data["rows"], data["labels"], data["lengths"], data["times"],
                       data["logits"], float(header["temperature"]), header["info"],
                       header.get("temperature_curve"))


def forward_batches(model, store: LightCurveStore, rows: Sequence[int], *, batch_size: int = 64,
                    device="cpu", desc: str = "predict", progress: bool = False,
                    **forward_options):
    """Run ``model`` over test events ``rows`` in batches; yield ``(rows, batch, outputs)``.

    The one loop behind every model read of the test split (predictions, attention, embeddings):
    rows are checked by :func:`require_test_split` and, before any model runs, by
    :meth:`~microlens.store.LightCurveStore.require_valid` (non-finite values, non-positive
    errors, unsorted or repeated times: :class:`~microlens.validation.InvalidLightCurveError`
    naming the store rows), each batch comes from
    :meth:`~microlens.store.LightCurveStore.batch`, and the model runs in eval mode without
    gradients (its previous mode is restored at the end). With no ``forward_options`` the
    outputs are ``{"logits": predict_logits(...)}`` (passes sized for the device); otherwise
    ``model(..., **forward_options)`` (e.g. ``return_attention=True``). ``device`` is a
    torch.device or ``'auto'`` (the GPU when there is one), ``'cpu'`` or ``'cuda'``.
    """
    import torch
    from tqdm.auto import tqdm

    from .devices import local_device

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
        times (see :mod:`microlens.validation`), before the model runs; the message names the
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
    kinds existed are ``"transformer"``, :meth:`~microlens.model.ModelConfig.from_saved`)."""
    from .model import ModelConfig

    config_file = resolve_path(run_dir) / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{resolve_path(run_dir)} is not a run directory: config.json "
                                "is missing")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    return ModelConfig.from_saved(config["model"]).kind


def _fingerprint(run_dir: Path, which: str, store: LightCurveStore, rows: np.ndarray) -> str:
    """A key that changes when the weights, the dataset or the chosen events change (for a
    ``features`` run: its trees and their metadata, which holds the temperature)."""
    from .model import WEIGHT_FILES

    if which not in WEIGHT_FILES:
        raise ValueError(f"unknown checkpoint {which!r}; valid: {', '.join(WEIGHT_FILES)}")
    if run_kind(run_dir) == "features":
        from .feature_model import META_FILE, MODEL_FILE

        files = [run_dir / MODEL_FILE, run_dir / META_FILE]
    else:
        files = [run_dir / WEIGHT_FILES[which]]
    digest = hashlib.sha256()
    for weights in files:
        if not weights.is_file():
            raise FileNotFoundError(f"{run_dir} is not a complete run directory: {weights.name} "
                                    "is missing")
        digest.update(weights.read_bytes())
    digest.update(json.dumps(store.manifest, sort_keys=True).encode())
    digest.update(rows.tobytes())
    return digest.hexdigest()[:16]


def run_dataset(run_dir: str | os.PathLike,
                dataset: str | os.PathLike | None = "") -> LightCurveStore:
    """Open ``dataset``, or (when it is empty or None) the dataset the run was trained on.

    Parameters
    ----------
    run_dir : path
        A run directory written by :func:`microlens.train.train` (relative paths are taken from
        the project root).
    dataset : path or LightCurveStore, optional
        Another dataset to evaluate (its test split; an open store is returned as it is);
        ``""`` or None means the run's own, read from ``config.json`` (``train.dataset``).
    """
    if isinstance(dataset, LightCurveStore):
        return dataset
    if dataset is None or str(dataset) == "":
        config_file = resolve_path(run_dir) / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"{resolve_path(run_dir)} is not a run directory: "
                                    "config.json is missing")
        dataset = json.loads(config_file.read_text(encoding="utf-8"))["train"]["dataset"]
    return open_dataset(dataset)


def run_predictions(run_dir: str | os.PathLike, dataset: str | os.PathLike | None = None, *,
                    rows: Sequence[int] | None = None, which: str = "best", batch_size: int = 64,
                    device: str = "cpu", cache: bool = True, progress: bool = False,
                    workers: int = 1) -> tuple[Predictions, LightCurveStore]:
    """Test-split predictions of a trained run, computed once and cached beside the run.

    Parameters
    ----------
    run_dir : path
        A run directory written by :func:`microlens.train.train`.
    dataset : path or LightCurveStore, optional
        Dataset to evaluate on; default: the one the run was trained on (its test split).
    rows : sequence of int, optional
        Test rows (default: the whole test split).
    which : {'best', 'last'}
        Checkpoint.
    batch_size, device, progress
        As :func:`predict_events` (``batch_size`` and ``device`` do not apply to a
        ``features`` run, which runs :func:`microlens.feature_model.predict_feature_events`).
    workers : int
        Processes for a ``features`` run's feature extraction (unused by the neural kinds).
    cache : bool
        Reuse ``<run>/predictions/<key>.npz`` when the weights, dataset and rows are unchanged.

    Returns
    -------
    (Predictions, LightCurveStore)
    """
    from .model import load_model

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
        from .feature_model import predict_feature_events

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
    "EVALUATION_SPLIT", "Predictions", "SplitError", "forward_batches", "observations_seen",
    "predict_events",
    "require_split", "require_test_split",
    "run_dataset", "run_kind", "run_predictions", "select_test_events",
]  # fmt: skip
