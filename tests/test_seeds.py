"""Random streams of a run: one per (seed, purpose, keys), none shared by accident."""

from __future__ import annotations

import numpy as np
import pytest

from microlens.core import seeds
from microlens.core.seeds import subset_rows
from microlens.training.train import TrainConfig, _epoch_order


def test_seed_1_epoch_0_is_not_seed_0_epoch_1():
    """The old ``seed + epoch`` collision: both shuffled the same way."""
    assert not np.array_equal(_epoch_order(500, 1, 0, 1, 0), _epoch_order(500, 0, 1, 1, 0))
    assert not np.array_equal(seeds.rng(1, seeds.SHUFFLE, 0).random(4),
                              seeds.rng(0, seeds.SHUFFLE, 1).random(4))


def test_streams_of_neighbouring_seeds_purposes_and_keys_all_differ():
    """Every small (seed, purpose, keys) tuple, including ones of different lengths whose numpy
    entropy arrays only differ by trailing zeros, gets its own stream."""
    tuples = [(s, p, *k) for s in range(3) for p in seeds.PURPOSES.values()
              for k in [(), (0,), (1,), (0, 0), (0, 1), (1, 0)]]
    states = {t: tuple(seeds.seed_sequence(*t).generate_state(4)) for t in tuples}
    assert len(set(states.values())) == len(tuples)
    torch_seeds = [seeds.torch_seed(*t) for t in tuples]
    assert len(set(torch_seeds)) == len(tuples)
    assert all(0 <= value < 2**63 for value in torch_seeds)


def test_numpy_seed_sequence_pads_with_zeros_which_is_why_the_key_count_is_kept():
    # the trap the key count avoids: the same stream for [s, p] and [s, p, 0]
    plain = [np.random.SeedSequence(e).generate_state(2).tolist() for e in ([3, 5], [3, 5, 0])]
    assert plain[0] == plain[1]
    assert (seeds.seed_sequence(3, 5).generate_state(2).tolist()
            != seeds.seed_sequence(3, 5, 0).generate_state(2).tolist())


def test_streams_are_reproducible():
    assert np.array_equal(seeds.rng(7, seeds.DROPOUT, 2, 1).random(8),
                          seeds.rng(7, seeds.DROPOUT, 2, 1).random(8))
    assert seeds.torch_seed(7, seeds.WEIGHT_INIT) == seeds.torch_seed(7, seeds.WEIGHT_INIT)
    assert np.array_equal(_epoch_order(50, 3, 4, 1, 0), _epoch_order(50, 3, 4, 1, 0))


@pytest.mark.parametrize("n, world", [(10, 1), (10, 2), (11, 2), (7, 3)])
def test_epoch_order_ranks_cover_the_permutation(n, world):
    shares = [_epoch_order(n, 0, 0, world, r) for r in range(world)]
    assert len({share.size for share in shares}) == 1  # padded to a multiple of world
    together = np.concatenate(shares)
    assert set(together.tolist()) == set(range(n))
    assert together.size == -(-n // world) * world
    # one process with the same seed sees the same permutation in the same order
    single = _epoch_order(n, 0, 0, 1, 0)
    interleaved = np.stack(shares, axis=1).reshape(-1)[:n]
    assert np.array_equal(interleaved, single)


def test_subsets_of_train_and_validation_use_different_streams():
    rows = np.arange(1000)
    train = subset_rows(rows, 50, 0, seeds.TRAIN_SUBSET)
    val = subset_rows(rows, 50, 0, seeds.VAL_SUBSET)
    assert train.size == val.size == 50 and np.all(np.diff(train) > 0)
    assert not np.array_equal(train, val)
    assert np.array_equal(subset_rows(rows, 0, 0, seeds.TRAIN_SUBSET), rows)  # 0: all rows


@pytest.mark.parametrize("args, message", [
    ((-1, seeds.SHUFFLE), "seed must be a non-negative integer, got -1"),
    ((1.5, seeds.SHUFFLE), "seed must be a non-negative integer, got 1.5"),
    ((0, 99), r"unknown seed purpose 99; valid: 1 \(train_subset\)"),
    ((0, seeds.SHUFFLE, -1), r"seed keys must be integers in \[0, 2\*\*32\), got -1"),
    ((0, seeds.SHUFFLE, 2**32), r"got 4294967296"),
])
def test_bad_seed_arguments_are_named(args, message):
    with pytest.raises(ValueError, match=message):
        seeds.seed_sequence(*args)


@pytest.mark.parametrize("seed", [-1, 1.0, True])
def test_train_config_refuses_a_bad_seed(seed):
    with pytest.raises(ValueError, match=r"TrainConfig.seed must be a non-negative integer"):
        TrainConfig(seed=seed)


def test_purposes_have_distinct_numbers():
    numbers = list(seeds.PURPOSES.values())
    assert len(set(numbers)) == len(numbers)  # a reused number would merge two streams
