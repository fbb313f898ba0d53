"""The held-out test split and the record of a model's answers on it.

:data:`EVALUATION_SPLIT` is the only split evaluation reads; :func:`require_test_split` refuses
any other row; :func:`select_test_events` picks test events with a recorded seed;
:class:`Predictions` holds a model's logits after every observation of those events (saved as a
plain ``.npz`` with a JSON header, no pickle). Every model kind produces one
(:mod:`microlens.evaluation.predictions` for the networks, :mod:`microlens.models.features` for the
features kind), so this module sits below both.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from microlens.core.metrics import softmax
from microlens.core.paths import atomic_path
from microlens.data.store import LightCurveStore, split_code

EVALUATION_SPLIT = "test"
"""The only split evaluation reads."""


class SplitError(ValueError):
    """Evaluation was asked to read events outside the test split."""


def require_split(store: LightCurveStore, rows: Sequence[int], split: str,
                  purpose: str) -> np.ndarray:
    """Return ``rows`` as an int64 array, or raise :class:`SplitError` naming any row that is not
    in ``split`` (and its own split); ``purpose`` says why only that split may be read."""
    from microlens.simulation.simulate import SPLIT_NAMES

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
        of observations seen (:mod:`microlens.core.calibration`): then the answer after ``k``
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
        from microlens.core.calibration import temperature_at

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


__all__ = ["EVALUATION_SPLIT", "Predictions", "SplitError", "observations_seen", "require_split",
           "require_test_split", "select_test_events"]
