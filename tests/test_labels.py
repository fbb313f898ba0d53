"""Label policies: the physical labels stay in the store, the trainer reads the policy's labels."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from microlens.data.labels import (
    LABEL_POLICIES,
    check_label_policy,
    has_detectability,
    observable_labels,
    training_labels,
)
from microlens.models.config import ModelConfig
from microlens.training.train import TrainConfig, _Trainer, train

TINY = ModelConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32, window=8, dropout=0.0)


def fake_store(labels, dchi2):
    params = np.zeros(len(labels), dtype=[("label", "i1"), ("dchi2_pspl", "f8")])
    params["label"], params["dchi2_pspl"] = labels, dchi2
    return SimpleNamespace(labels=np.asarray(labels, np.int8), params=params, path="fake/set")


def test_observable_labels_turn_undetectable_binaries_into_pspl():
    labels = [0, 1, 2, 2, 2, 2, 2, 1, 0]
    # 100 itself is undetectable (the threshold is a strict '>'); non-binaries' values are unread
    dchi2 = [np.nan, 5e3, -3.0, 99.9, 100.0, 100.01, 1e4, np.nan, 1e5]
    assert observable_labels(labels, dchi2).tolist() == [0, 1, 1, 1, 1, 2, 2, 1, 0]
    assert observable_labels(labels, dchi2, threshold=10.0).tolist() == [0, 1, 1, 2, 2, 2, 2, 1,
                                                                          0]
    with pytest.raises(ValueError, match="threshold.*-1"):
        observable_labels(labels, dchi2, threshold=-1.0)
    with pytest.raises(ValueError, match="same shape"):
        observable_labels(labels, dchi2[:3])


def test_training_labels_by_policy_and_refusal_without_detectability():
    store = fake_store([0, 1, 2, 2, 2], [np.nan, 1.0, 50.0, 500.0, 2.0])
    rows = np.array([4, 2, 3, 0])
    assert training_labels(store, rows).tolist() == [2, 2, 2, 0]
    assert training_labels(store, rows, "observable").tolist() == [1, 1, 2, 0]
    assert store.labels.tolist() == [0, 1, 2, 2, 2]  # the stored labels are never changed
    blind = fake_store([0, 1, 2, 2], [np.nan, np.nan, np.nan, 300.0])
    assert not has_detectability(blind) and has_detectability(blind, [0, 1, 3])
    assert training_labels(blind, [0, 1, 2, 3], "physical").tolist() == [0, 1, 2, 2]
    with pytest.raises(ValueError, match=r"1 of 2 binaries in fake/set.*detectability=True.*"
                                         r"'physical'"):
        training_labels(blind, [0, 1, 2, 3], "observable")
    assert training_labels(blind, [0, 3], "observable").tolist() == [0, 2]
    with pytest.raises(ValueError, match=r"unknown label_policy 'visible'; valid: physical, "
                                         r"observable"):
        training_labels(store, rows, "visible")


def test_train_config_label_policy_is_checked_and_defaults_to_physical():
    assert LABEL_POLICIES == ("physical", "observable") and check_label_policy("observable")
    assert TrainConfig().label_policy == "physical"
    assert TrainConfig().observable_threshold == 100.0
    old = TrainConfig().to_dict()  # a config.json written before the policy existed
    del old["label_policy"], old["observable_threshold"]
    assert TrainConfig.from_dict(old).label_policy == "physical"
    with pytest.raises(ValueError, match="unknown label_policy 'Observable'; valid: physical"):
        TrainConfig(label_policy="Observable")
    with pytest.raises(ValueError, match="threshold.*nan"):
        TrainConfig(observable_threshold=float("nan"))
    config = TrainConfig(label_policy="observable", observable_threshold=25.0)
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_trainer_reads_the_policys_labels(eval_store, tmp_path):
    common = dict(dataset=str(eval_store.path), runs_dir=str(tmp_path), model=TINY, epochs=1)
    physical = _Trainer(TrainConfig(run_name="p", **common), progress=False)
    observable = _Trainer(TrainConfig(run_name="o", label_policy="observable", **common),
                          progress=False)
    rows = np.concatenate([physical.train_rows, physical.val_rows])
    stored = np.asarray(eval_store.labels[rows], np.int64)
    expected = observable_labels(stored, eval_store.params["dchi2_pspl"][rows])
    assert (expected != stored).any() and (expected == 2).any()  # the case is not trivial
    assert physical.batch(rows)["labels"].tolist() == stored.tolist()
    assert observable.batch(rows)["labels"].tolist() == expected.tolist()
    counts = np.bincount(expected[: physical.train_rows.size], minlength=3)
    weights = counts.sum() / (3 * counts)
    assert observable.class_weights.tolist() == pytest.approx(weights.tolist(), rel=1e-6)
    assert not (tmp_path / "p").exists()  # nothing written yet


def test_observable_policy_is_refused_without_detectability(train_store, tmp_path):
    config = TrainConfig(dataset=str(train_store.path), run_name="blind", runs_dir=str(tmp_path),
                         model=TINY, epochs=1, label_policy="observable")
    with pytest.raises(ValueError, match="dchi2_pspl.*detectability=True"):
        train(config, progress=False)
    assert not (tmp_path / "blind").exists()
