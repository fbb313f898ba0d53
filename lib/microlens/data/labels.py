"""Label policies: which class a model is *trained* to give each event.

The dataset always stores the physical truth (``labels.npy``: 0 flat, 1 PSPL, 2 binary). How a
model is taught, and how it is read, is a separate choice:

* ``physical`` (the default): every binary lens is "binary", including those whose light curve
  no single-lens model can be told apart from (the simulator's ``dchi2_pspl``, the chi-squared of
  the best blended-PSPL fit minus that of the truth, is small). No method can recall those; they
  set the physical ceiling on binary recall.
* ``observable``: a binary whose binarity is not detectable in its data
  (``dchi2_pspl <= threshold``, by default 100, the detectability threshold that
  :mod:`microlens.evaluation.analysis.limits` and ``06_u0_analysis`` use with a strict ``>``) is
  labelled PSPL, which is what its light curve shows. Needs a dataset generated with detectability.

:func:`training_labels` is the one place the mapping happens; the trainer reads its labels
through it (training, validation, early stopping and the temperature fit all see the same
labels), and the evaluation reports metrics against both label sets
(:func:`microlens.evaluation.evaluate.label_set_metrics`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from microlens.data.summaries import DETECTABILITY_THRESHOLD

LABEL_POLICIES = ("physical", "observable")
"""Valid label policies (see the module docstring)."""

PSPL, BINARY = 1, 2


def check_label_policy(policy: str) -> str:
    """``policy`` if it is one of :data:`LABEL_POLICIES`, else a ValueError naming both."""
    if policy not in LABEL_POLICIES:
        raise ValueError(f"unknown label_policy {policy!r}; valid: {', '.join(LABEL_POLICIES)}")
    return policy


def check_threshold(threshold: float) -> float:
    """A finite, non-negative Δχ² threshold, else a ValueError naming it."""
    if isinstance(threshold, bool) or not np.isfinite(threshold) or threshold < 0:
        raise ValueError(f"observable label threshold must be a finite Δχ² >= 0, "
                         f"got {threshold!r}")
    return float(threshold)


def observable_labels(labels, dchi2_pspl, threshold: float = DETECTABILITY_THRESHOLD,
                      *, source: str = "the data") -> np.ndarray:
    """Physical labels with every binary of ``dchi2_pspl <= threshold`` turned into PSPL.

    Parameters
    ----------
    labels : array-like ``(E,)`` int
        Physical classes (0 flat, 1 PSPL, 2 binary).
    dchi2_pspl : array-like ``(E,)``
        Each event's binarity Δχ² (only the binaries' values are read).
    threshold : float
        A binary stays "binary" only when its Δχ² is strictly above this.
    source : str
        Named in the error message (e.g. the dataset path).

    Returns
    -------
    ndarray ``(E,)`` int64

    Raises
    ------
    ValueError
        If a binary has no finite ``dchi2_pspl`` (a dataset generated without detectability).
    """
    labels = np.asarray(labels, np.int64)
    dchi2 = np.asarray(dchi2_pspl, np.float64)
    if labels.shape != dchi2.shape:
        raise ValueError(f"labels {labels.shape} and dchi2_pspl {dchi2.shape} must have the "
                         "same shape")
    threshold = check_threshold(threshold)
    binary = labels == BINARY
    missing = binary & ~np.isfinite(dchi2)
    if missing.any():
        raise ValueError(
            f"label_policy 'observable' needs the binarity Δχ² (dchi2_pspl) of every binary, but "
            f"{int(missing.sum())} of {int(binary.sum())} binaries in {source} have none (a "
            "dataset generated with detectability=False); regenerate it with detectability=True "
            "or use label_policy 'physical'")
    out = labels.copy()
    out[binary & (dchi2 <= threshold)] = PSPL
    return out


def has_detectability(store, rows: Sequence[int] | None = None) -> bool:
    """Whether every binary among ``rows`` (default: all) has a finite ``dchi2_pspl``."""
    rows = np.arange(len(store.labels)) if rows is None else np.asarray(rows, np.int64)
    labels = np.asarray(store.labels[rows], np.int64)
    dchi2 = np.asarray(store.params["dchi2_pspl"][rows], np.float64)
    return bool(np.isfinite(dchi2[labels == BINARY]).all())


def training_labels(store, rows: Sequence[int], policy: str = "physical",
                    threshold: float = DETECTABILITY_THRESHOLD) -> np.ndarray:
    """The labels a model is trained on for the store's ``rows``, under ``policy``.

    Parameters
    ----------
    store : LightCurveStore
        Any object with ``labels`` and a ``params`` table holding ``dchi2_pspl``.
    rows : sequence of int
    policy : {'physical', 'observable'}
    threshold : float
        Δχ² at or below which an ``observable`` binary is labelled PSPL.

    Returns
    -------
    ndarray ``(len(rows),)`` int64
    """
    check_label_policy(policy)
    threshold = check_threshold(threshold)
    rows = np.asarray(rows, np.int64)
    labels = np.asarray(store.labels[rows], np.int64)
    if policy == "physical":
        return labels
    return observable_labels(labels, store.params["dchi2_pspl"][rows], threshold,
                             source=str(getattr(store, "path", "the dataset")))


__all__ = [
    "LABEL_POLICIES", "check_label_policy", "check_threshold", "has_detectability",
    "observable_labels", "training_labels",
]  # fmt: skip


def class_weights(labels: np.ndarray, n_classes: int):
    """Inverse class frequencies, scaled so that the mean weight over ``labels`` is 1 (a
    float32 tensor)."""
    import torch

    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    if (counts == 0).any():
        missing = [int(c) for c in np.flatnonzero(counts == 0)]
        raise ValueError(f"the training split has no events of class(es) {missing}")
    weights = counts.sum() / (n_classes * counts)
    return torch.tensor(weights, dtype=torch.float32)
