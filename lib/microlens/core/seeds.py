"""Random streams derived from one recorded seed, one stream per purpose.

Every random draw of a training run comes from a generator seeded by
``SeedSequence(entropy=seed, spawn_key=(purpose, len(keys), *keys))``: the run's ``seed``, a named
purpose (:data:`PURPOSES`) and the draw's own keys (epoch, rank). Unlike ``seed + epoch``, where
seed 1 at epoch 0 replays seed 0 at epoch 1, no two different ``(seed, purpose, keys)`` share a
stream. The number of keys is part of the spawn key because numpy's ``SeedSequence`` pads
short inputs with zeros, so ``[s, p]`` and ``[s, p, 0]`` would otherwise be the same stream.
The simulator uses the same construction for its per-event generators
(:func:`microlens.simulation.simulate.event_rng`).

Usage::

    from microlens.core.seeds import SHUFFLE, DROPOUT, rng, torch_seed
    order = rng(config.seed, SHUFFLE, epoch).permutation(n)
    torch.manual_seed(torch_seed(config.seed, DROPOUT, epoch, rank))
"""

from __future__ import annotations

import numpy as np

TRAIN_SUBSET = 1
"""Which training events a run uses when ``max_train_events`` caps them."""
VAL_SUBSET = 2
"""Which validation events a run uses when ``max_val_events`` caps them."""
NORMALIZATION_EVENTS = 3
"""Which training events fit the input normalisation."""
WEIGHT_INIT = 4
"""The model's initial weights (torch's global generator before the model is built)."""
SHUFFLE = 5
"""The order of the training events in one epoch (keys: epoch)."""
DROPOUT = 6
"""Dropout and any other torch draw during one epoch's steps (keys: epoch, rank)."""
PRETRAIN_MASK = 7
"""Which observations of a training event masked pretraining hides (keys: epoch, event row;
:mod:`microlens.training.pretrain`)."""
PRETRAIN_VAL_MASK = 8
"""Which observations of a validation event masked pretraining hides, the same every epoch
(keys: event row)."""

PURPOSES: dict[str, int] = {
    "train_subset": TRAIN_SUBSET, "val_subset": VAL_SUBSET,
    "normalization_events": NORMALIZATION_EVENTS, "weight_init": WEIGHT_INIT,
    "shuffle": SHUFFLE, "dropout": DROPOUT, "pretrain_mask": PRETRAIN_MASK,
    "pretrain_val_mask": PRETRAIN_VAL_MASK,
}  # fmt: skip
"""Every purpose by name; a new kind of draw gets a new number here, never a reused one."""

_KEY_LIMIT = 2**32  # one 32-bit word per key keeps the spawn key's layout fixed


def seed_sequence(seed: int, purpose: int, *keys: int) -> np.random.SeedSequence:
    """The seed sequence of one purpose's stream.

    Parameters
    ----------
    seed : int
        The run's recorded seed (a non-negative integer).
    purpose : int
        One of the values of :data:`PURPOSES`.
    *keys : int
        The draw's own keys in ``[0, 2**32)``, e.g. the epoch and the rank.

    Raises
    ------
    ValueError
        For a negative or non-integer seed, an unknown purpose, or a key out of range.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if purpose not in PURPOSES.values():
        raise ValueError(f"unknown seed purpose {purpose!r}; valid: "
                         + ", ".join(f"{v} ({k})" for k, v in PURPOSES.items()))
    for key in keys:
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)) \
                or not 0 <= key < _KEY_LIMIT:
            raise ValueError(f"seed keys must be integers in [0, 2**32), got {key!r}")
    return np.random.SeedSequence(entropy=int(seed),
                                  spawn_key=(int(purpose), len(keys), *(int(k) for k in keys)))


def rng(seed: int, purpose: int, *keys: int) -> np.random.Generator:
    """A numpy generator for one purpose's stream (see :func:`seed_sequence`)."""
    return np.random.default_rng(seed_sequence(seed, purpose, *keys))


def torch_seed(seed: int, purpose: int, *keys: int) -> int:
    """A 63-bit integer for ``torch.manual_seed`` from one purpose's stream."""
    state = seed_sequence(seed, purpose, *keys).generate_state(1, np.uint64)[0]
    return int(state) >> 1  # non-negative and inside every torch seed range


__all__ = [
    "DROPOUT", "NORMALIZATION_EVENTS", "PRETRAIN_MASK", "PRETRAIN_VAL_MASK", "PURPOSES",
    "SHUFFLE", "TRAIN_SUBSET", "VAL_SUBSET", "WEIGHT_INIT", "rng", "seed_sequence", "torch_seed",
]  # fmt: skip


def subset_rows(rows: np.ndarray, limit: int, seed: int, purpose: int) -> np.ndarray:
    """``limit`` of ``rows`` (all if ``limit`` is 0 or not smaller), drawn from the ``purpose``
    stream of ``seed`` (:mod:`microlens.core.seeds`) and returned sorted."""
    if limit and rows.size > limit:
        rows = np.sort(rng(seed, purpose).choice(rows, size=limit, replace=False))
    return rows
