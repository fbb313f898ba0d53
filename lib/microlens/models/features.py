"""The ``features`` model kind: gradient-boosted trees on summary and PSPL-fit features.

The field's feature-based classifier beside the neural kinds (:mod:`microlens.models.registry`):
each light curve seen so far is described by :data:`~microlens.models.curve_features.FEATURE_NAMES`
(:mod:`microlens.models.curve_features`: the classical peer's PSPL fit and its residual statistics,
plus robust summary statistics), and scikit-learn's ``HistGradientBoostingClassifier`` classifies
that vector into no event, PSPL or binary.

**Answers at fixed fractions.** A PSPL refit after every observation would cost ~3-40 ms per
observation, so this kind does not stream observation by observation: it answers after fixed
fractions of each curve, the update fractions (default :data:`DEFAULT_UPDATE_FRACTIONS`,
``0.1, 0.25, 0.5, 0.75, 1.0``: the four fractions the evaluation's calibration table reads, plus
0.75 so that every early-detection point of the classical peer in ``evaluate_run`` has an
answer of its own; each extra fraction costs a PSPL fit of that prefix, for training and for
prediction). :func:`predict_feature_events` turns the answers into per-observation logits that
are **piecewise constant and causal**: the logits at observation ``p`` are those of the latest
update whose prefix ends at or before ``p`` (the prefix at fraction ``f`` of ``n`` observations
is the first ``ceil(f n)``, :func:`microlens.models.holdout.observations_seen`), and zeros
(a uniform answer: none yet) before the first update. An update whose prefix holds fewer than
:data:`~microlens.models.peer.MIN_OBSERVATIONS` observations (too few for the PSPL fit) answers
uniformly too, so a curve of a few points is never called anything. Every downstream
evaluation (final metrics, early detection, decision time) then works unchanged and reads no
observation too early.

**One input contract.** :meth:`FeatureClassifier.predict_proba` and
:meth:`~FeatureClassifier.predict_logits` take the padded batches ``(B, N)`` every neural kind
takes, checked by the same :func:`microlens.core.validation.check_light_curves` (the same
:class:`~microlens.core.validation.InvalidLightCurveError`, naming the event and observation), and
return a ``(B, N, n_classes)`` float32 torch tensor as they do; :meth:`~FeatureClassifier.
predict_curve` reads one 1-D curve, checked the same way.

**Training** (:func:`train_features`): every training event contributes one row per update
fraction, labelled by the event's class under ``label_policy`` (:mod:`microlens.data.labels`) and
weighted by the inverse frequency of its class in the training split (mean weight 1, as
:func:`microlens.training.train.class_weights`). Early stopping reads the **validation split** (its
events at the same fractions, the same class weights) through scikit-learn's ``X_val``: training
stops after :attr:`BoostingSettings.n_iter_no_change` iterations without a lower validation log
loss (the fit runs on one OpenMP thread, so the trees do not depend on the machine's core
count), and the model keeps the iterations up to the lowest one (the ``best`` model; all of them
are saved, and ``which="last"`` loads the lot). A random ``validation_fraction`` of the training
rows is not used: the prefixes of one event would fall on both sides. A scalar temperature is
then fitted on the validation split's final answers
(:func:`microlens.training.train.fit_temperature`,
``temperature_fit = "final"``: the answers at earlier fractions get the same temperature).

**Safe files, no pickle.** ``features_model.npz`` holds the trees as plain numeric arrays (one
entry per node: value, feature, threshold, missing-value direction, children, leaf flag; the
node range of each tree; the baseline raw score) and ``features_model.json`` the metadata
(feature names, update fractions, temperature, iterations, settings). Both are written
atomically and read with ``allow_pickle=False``; prediction (:class:`BoostedTrees`) is numpy
alone, with no scikit-learn object: at every node go left if ``x <= threshold``, or if ``x`` is
NaN and the node sends missing values left; the raw score of class ``k`` is the baseline plus
the leaf values of class ``k``'s trees; probabilities are their softmax. It equals
``predict_proba`` of the fitted estimator to ~1e-15.

Run directory of a ``features`` run (the :mod:`microlens.training.train` layout where it applies)::

    config.json          {"train": TrainConfig, "model": ModelConfig(kind="features"),
                          "features": BoostingSettings, "dataset_manifest", "n_parameters", ...}
    features_model.npz   the trees (every iteration fitted)
    features_model.json  feature names, update fractions, temperature, best and fitted iterations
    history.csv          one row per boosting iteration (runs.HISTORY_COLUMNS)
    metrics.json         the summary (train._finish's keys where they mean something here)

:class:`~microlens.training.train.TrainConfig` fields used: ``dataset, run_name, runs_dir, model``
(its kind must be ``features``; the other ModelConfig fields are unused), ``seed`` (the boosting's
``random_state``, from the :data:`microlens.core.seeds.WEIGHT_INIT` stream: the model's own
randomness), ``max_train_events`` and ``max_val_events`` (the same subsets as a neural run of
that seed: :data:`~microlens.core.seeds.TRAIN_SUBSET`, :data:`~microlens.core.seeds.VAL_SUBSET`),
``label_policy`` and ``observable_threshold``. The optimiser's fields (``epochs``,
``learning_rate``, ``batch_size``, ``patience``, ...) do not apply: the boosting's own settings
are :class:`BoostingSettings`, saved in ``config.json`` under ``"features"``. Training runs on
the CPU (``device`` is ignored).

Usage::

    from microlens.models.features import train_features, load_feature_model
    run_dir = train_features(TrainConfig(dataset="data/quick", run_name="gbt",
                                         model=ModelConfig(kind="features")), workers=2)
    model = load_feature_model(run_dir)        # or microlens.models.registry.load_model(run_dir)
    predictions, store = run_predictions(run_dir)   # dispatches on the kind
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from microlens.core.paths import atomic_path, resolve_path, write_json_atomic
from microlens.models.curve_features import (
    FEATURE_NAMES,
    N_FEATURES,
    _event_features,
    prefix_features,
)
from microlens.models.holdout import Predictions, observations_seen, require_test_split
from microlens.models.peer import MIN_OBSERVATIONS, check_fractions

KIND = "features"
"""The :attr:`microlens.models.config.ModelConfig.kind` of this module's models."""

MODEL_FILE = "features_model.npz"
"""The trees' arrays in a run directory."""

META_FILE = "features_model.json"
"""The model's metadata in a run directory."""

FORMAT_VERSION = 1
"""Version of the two files' layout (checked on load)."""

DEFAULT_UPDATE_FRACTIONS: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 1.0)
"""Fractions of each curve after which the model answers (see the module docstring)."""

WHICH = ("best", "last")
"""Models a run holds: ``best`` (iterations up to the lowest validation loss), ``last`` (all)."""

_NODE_ARRAYS = ("value", "feature", "threshold", "missing_left", "left", "right", "is_leaf")


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


def check_update_fractions(fractions) -> tuple[float, ...]:
    """Update fractions as a tuple: each in (0, 1], strictly increasing, the last 1.0.

    The last must be 1.0 so that every event's final answer reads its whole curve (the
    temperature is fitted on final answers). A ValueError names the bad value otherwise.
    """
    fractions = check_fractions(fractions)
    for a, b in zip(fractions, fractions[1:], strict=False):
        if not b > a:
            raise ValueError(f"update fractions must increase strictly, got {list(fractions)} "
                             f"({b!r} after {a!r})")
    if fractions[-1] != 1.0:
        raise ValueError(f"update fractions must end with 1.0 (the whole curve: the final "
                         f"answer), got {list(fractions)}")
    return fractions


@dataclass(frozen=True)
class BoostingSettings:
    """The ``features`` kind's own settings (saved under ``"features"`` in ``config.json``).

    The tree settings are ``HistGradientBoostingClassifier``'s, with its defaults except
    ``max_iter`` and ``n_iter_no_change`` (early stopping on the validation split).
    """

    update_fractions: tuple[float, ...] = DEFAULT_UPDATE_FRACTIONS  # answer after these shares
    max_iter: int = 300  # upper bound on boosting iterations (one tree per class each)
    learning_rate: float = 0.1  # shrinkage of every tree
    max_leaf_nodes: int = 31  # leaves per tree
    min_samples_leaf: int = 20  # training rows per leaf at least
    l2_regularization: float = 0.0  # on the leaf values
    n_iter_no_change: int = 20  # stop after this many iterations without a lower val loss

    def __post_init__(self):
        object.__setattr__(self, "update_fractions",
                           check_update_fractions(self.update_fractions))
        for name in ("max_iter", "max_leaf_nodes", "min_samples_leaf", "n_iter_no_change"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"BoostingSettings.{name} must be a positive integer, got "
                                 f"{value!r}")
        if self.max_leaf_nodes < 2:
            raise ValueError(f"BoostingSettings.max_leaf_nodes must be >= 2, got "
                             f"{self.max_leaf_nodes!r}")
        if not (isinstance(self.learning_rate, (int, float)) and 0 < self.learning_rate <= 1):
            raise ValueError(f"BoostingSettings.learning_rate must lie in (0, 1], got "
                             f"{self.learning_rate!r}")
        if not (isinstance(self.l2_regularization, (int, float))
                and math.isfinite(self.l2_regularization) and self.l2_regularization >= 0):
            raise ValueError(f"BoostingSettings.l2_regularization must be a finite number >= 0, "
                             f"got {self.l2_regularization!r}")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["update_fractions"] = list(self.update_fractions)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> BoostingSettings:
        from microlens.core.settings import from_known_fields

        data = dict(data)
        if "update_fractions" in data:
            data["update_fractions"] = tuple(data["update_fractions"])
        return from_known_fields(cls, data, "BoostingSettings settings")


# --------------------------------------------------------------------------------------------
# The trees, in numpy
# --------------------------------------------------------------------------------------------


@dataclass
class BoostedTrees:
    """A multiclass gradient-boosted tree ensemble as flat numeric arrays (no pickle).

    Node arrays (length ``M``, all trees one after the other; children are global indices and
    always greater than their parent's, so every walk ends at a leaf):

    ``value`` (float64, the leaf's raw score, shrinkage included), ``feature`` (int64),
    ``threshold`` (float64: go left if ``x <= threshold``), ``missing_left`` (bool: NaN goes
    left), ``left``, ``right`` (int64), ``is_leaf`` (bool).

    ``tree_offsets`` (int64, ``n_iterations * n_classes + 1``): tree ``t`` (iteration
    ``t // n_classes``, class ``t % n_classes``) is nodes ``tree_offsets[t] .. tree_offsets[t+1]``,
    root first. ``baseline`` (float64, ``(n_classes,)``): the raw score before any tree.
    """

    value: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    is_leaf: np.ndarray
    tree_offsets: np.ndarray
    baseline: np.ndarray
    n_features: int

    def __post_init__(self):
        self.validate()

    @property
    def n_classes(self) -> int:
        return int(self.baseline.size)

    @property
    def n_iterations(self) -> int:
        return (self.tree_offsets.size - 1) // self.n_classes

    def n_nodes(self, n_iterations: int | None = None) -> int:
        """Nodes (splits and leaves) of the trees of the first ``n_iterations`` (default all)."""
        n_iterations = self._check_iterations(n_iterations)
        return int(self.tree_offsets[n_iterations * self.n_classes] - self.tree_offsets[0])

    def validate(self) -> None:
        """ValueError unless the arrays form well-made trees (shapes, dtypes, index ranges)."""
        m = self.value.size
        for name in _NODE_ARRAYS:
            array = getattr(self, name)
            if array.ndim != 1 or array.size != m:
                raise ValueError(f"tree array {name!r} has shape {array.shape}, expected ({m},)")
        offsets, k = self.tree_offsets, self.baseline.size
        if self.baseline.ndim != 1 or k < 3:
            raise ValueError(f"baseline must hold one raw score per class (>= 3), got shape "
                             f"{self.baseline.shape}")
        if (offsets.ndim != 1 or offsets.size < 1 or (offsets.size - 1) % k or offsets[0] != 0
                or offsets[-1] != m or np.any(np.diff(offsets) < 1)):
            raise ValueError("tree_offsets must run from 0 to the node count in steps >= 1, "
                             f"one tree per class per iteration ({k} classes)")
        inner = np.flatnonzero(~self.is_leaf)
        tree_end = offsets[np.searchsorted(offsets, inner, side="right")]
        for name in ("left", "right"):
            child = getattr(self, name)[inner]
            if np.any(child <= inner) or np.any(child >= tree_end):
                raise ValueError(f"corrupt trees: a {name} child lies outside its tree or before "
                                 "its parent")
        if np.any(self.feature[inner] < 0) or np.any(self.feature[inner] >= self.n_features):
            raise ValueError(f"corrupt trees: a split reads a feature outside "
                             f"[0, {self.n_features})")

    def _check_iterations(self, n_iterations: int | None) -> int:
        if n_iterations is None:
            return self.n_iterations
        if isinstance(n_iterations, bool) or not 0 <= int(n_iterations) <= self.n_iterations:
            raise ValueError(f"n_iterations must lie in [0, {self.n_iterations}], got "
                             f"{n_iterations!r}")
        return int(n_iterations)

    @classmethod
    def from_sklearn(cls, clf) -> BoostedTrees:
        """The trees of a fitted ``HistGradientBoostingClassifier`` (multiclass, numerical
        features only: a categorical split is a ValueError)."""
        categorical = getattr(clf, "is_categorical_", None)
        if getattr(clf, "_preprocessor", None) is not None or (
                categorical is not None and np.any(categorical)):
            raise ValueError("the classifier uses categorical features; only numerical splits "
                             "can be saved (fit with categorical_features=None)")
        k = int(clf.n_trees_per_iteration_)
        if k < 3:
            raise ValueError(f"only multiclass models (>= 3 classes) are supported, got {k} "
                             "tree(s) per iteration")
        trees = [tree for iteration in clf._predictors for tree in iteration]
        if any(len(iteration) != k for iteration in clf._predictors):
            raise ValueError("every boosting iteration must hold one tree per class")
        nodes = [tree.nodes for tree in trees]
        if any(np.any(n["is_categorical"]) for n in nodes):
            raise ValueError("a tree splits on a categorical feature; cannot save it")
        sizes = np.array([n.size for n in nodes], np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        starts = np.repeat(offsets[:-1], sizes)
        allnodes = np.concatenate(nodes)
        is_leaf = allnodes["is_leaf"].astype(bool)
        return cls(value=allnodes["value"].astype(np.float64),
                   feature=np.where(is_leaf, 0, allnodes["feature_idx"]).astype(np.int64),
                   threshold=allnodes["num_threshold"].astype(np.float64),
                   missing_left=allnodes["missing_go_to_left"].astype(bool),
                   left=np.where(is_leaf, 0, allnodes["left"].astype(np.int64) + starts),
                   right=np.where(is_leaf, 0, allnodes["right"].astype(np.int64) + starts),
                   is_leaf=is_leaf, tree_offsets=offsets,
                   baseline=np.asarray(clf._baseline_prediction, np.float64).reshape(-1),
                   n_features=int(clf.n_features_in_))

    def leaf_values(self, X: np.ndarray, n_iterations: int | None = None,
                    chunk: int = 1024) -> np.ndarray:
        """Leaf value reached by every row in every tree: ``(n, n_iterations, n_classes)``."""
        n_iterations = self._check_iterations(n_iterations)
        X = self._check_X(X)
        roots = self.tree_offsets[: n_iterations * self.n_classes]
        out = np.empty((X.shape[0], roots.size))
        for start in range(0, X.shape[0], chunk):
            x = X[start : start + chunk]
            node = np.broadcast_to(roots, (x.shape[0], roots.size)).copy()
            row = np.arange(x.shape[0])[:, None]
            while True:
                inner = ~self.is_leaf[node]
                if not inner.any():
                    break
                value = x[row, self.feature[node]]
                go_left = np.where(np.isnan(value), self.missing_left[node],
                                   value <= self.threshold[node])
                node = np.where(inner, np.where(go_left, self.left[node], self.right[node]),
                                node)
            out[start : start + chunk] = self.value[node]
        return out.reshape(X.shape[0], n_iterations, self.n_classes)

    def raw(self, X: np.ndarray, n_iterations: int | None = None) -> np.ndarray:
        """Raw scores ``(n, n_classes)``: the baseline plus the leaf values, iteration by
        iteration (sklearn's order of summation)."""
        values = self.leaf_values(X, n_iterations)
        raw = np.broadcast_to(self.baseline, (values.shape[0], self.n_classes)).copy()
        for i in range(values.shape[1]):
            raw += values[:, i]
        return raw

    def staged_raw(self, X: np.ndarray, n_iterations: int | None = None) -> np.ndarray:
        """Raw scores after each iteration, ``(n, n_iterations, n_classes)``."""
        return self.baseline + np.cumsum(self.leaf_values(X, n_iterations), axis=1)

    def _check_X(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X must have shape (n, {self.n_features}) (one column per "
                             f"feature), got {X.shape}")
        return X

    # -- files -----------------------------------------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays for ``np.savez`` (plain numeric dtypes only)."""
        arrays = {name: getattr(self, name) for name in _NODE_ARRAYS}
        arrays["missing_left"] = arrays["missing_left"].astype(np.uint8)
        arrays["is_leaf"] = arrays["is_leaf"].astype(np.uint8)
        return {**arrays, "tree_offsets": self.tree_offsets, "baseline": self.baseline,
                "n_features": np.array(self.n_features, np.int64)}

    @classmethod
    def from_arrays(cls, arrays) -> BoostedTrees:
        """Inverse of :meth:`to_arrays` (checked by :meth:`validate`)."""
        missing = {*_NODE_ARRAYS, "tree_offsets", "baseline", "n_features"} - set(arrays)
        if missing:
            raise ValueError(f"tree file lacks array(s) {sorted(missing)}")
        kinds = {"value": np.float64, "feature": np.int64, "threshold": np.float64,
                 "missing_left": bool, "left": np.int64, "right": np.int64, "is_leaf": bool,
                 "tree_offsets": np.int64, "baseline": np.float64}
        data = {}
        for name, dtype in kinds.items():
            array = np.asarray(arrays[name])
            if array.dtype.kind not in "biuf":
                raise ValueError(f"tree array {name!r} is not numeric (dtype {array.dtype})")
            data[name] = array.astype(dtype)
        return cls(**data, n_features=int(np.asarray(arrays["n_features"])))


def _log_softmax(raw: np.ndarray) -> np.ndarray:
    shifted = raw - raw.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


# --------------------------------------------------------------------------------------------
# The classifier
# --------------------------------------------------------------------------------------------


class FeatureClassifier:
    """A trained ``features`` model: boosted trees over the features of the curve so far.

    Parameters
    ----------
    trees : BoostedTrees
        Every fitted iteration.
    n_iterations : int, optional
        Iterations used for prediction (default all; :func:`load_feature_model` sets the best).
    feature_names : sequence of str
        Names of the columns the trees read (must be :data:`FEATURE_NAMES` to predict on curves).
    update_fractions : sequence of float
        Fractions of each curve after which the model answers (:func:`check_update_fractions`).
    temperature : float
        Calibration fitted on the validation split's final answers (calibrated logits are
        ``logits / temperature``).
    config : ModelConfig, optional
        The run's model settings (``kind="features"``).
    settings : BoostingSettings, optional
        The boosting settings it was trained with.

    Attributes
    ----------
    kind : str
        ``"features"``.
    has_attention : bool
        False: no attention maps.
    n_parameters : int
        Nodes (splits and leaves) of the trees used: one tree per class for each of the first
        ``n_iterations`` iterations (the trees' size, as a network's parameter count).
    """

    kind = KIND
    has_attention = False
    dataset_manifest: dict = {}
    """The training set's summary from the run's ``config.json`` (set by
    :func:`load_feature_model`; empty otherwise)."""

    def __init__(self, trees: BoostedTrees, *, n_iterations: int | None = None,
                 feature_names: Sequence[str] = FEATURE_NAMES,
                 update_fractions: Sequence[float] = DEFAULT_UPDATE_FRACTIONS,
                 temperature: float = 1.0, config=None,
                 settings: BoostingSettings | None = None):
        from microlens.models.config import ModelConfig

        self.trees = trees
        self.n_iterations = trees._check_iterations(n_iterations)
        self.feature_names = tuple(feature_names)
        if len(self.feature_names) != trees.n_features:
            raise ValueError(f"{len(self.feature_names)} feature names for trees that read "
                             f"{trees.n_features} features")
        self.update_fractions = check_update_fractions(update_fractions)
        if not (isinstance(temperature, (int, float, np.number)) and math.isfinite(temperature)
                and temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        self.temperature = float(temperature)
        self.config = config if config is not None else ModelConfig(kind=KIND)
        if self.config.kind != KIND:
            raise ValueError(f"a FeatureClassifier needs ModelConfig(kind={KIND!r}), got "
                             f"kind={self.config.kind!r}")
        self.settings = settings or BoostingSettings(update_fractions=self.update_fractions)

    def __repr__(self) -> str:
        return (f"FeatureClassifier({self.n_iterations} iterations, {self.n_parameters} nodes, "
                f"{len(self.feature_names)} features, updates at {list(self.update_fractions)}, "
                f"T={self.temperature:.3f})")

    @property
    def n_classes(self) -> int:
        return self.trees.n_classes

    @property
    def n_parameters(self) -> int:
        return self.trees.n_nodes(self.n_iterations)

    def eval(self) -> FeatureClassifier:
        """No-op (the trees have no training mode); returns the model, as a torch module."""
        return self

    def _require_curve_features(self) -> None:
        if self.feature_names != FEATURE_NAMES:
            raise ValueError("this model was trained on other features than this version of "
                             "microlens.models.curve_features computes; retrain it (features "
                             "differ: "
                             f"{sorted(set(self.feature_names) ^ set(FEATURE_NAMES))})")

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        """Raw scores ``(..., n_classes)`` of feature vectors ``X`` ``(..., n_features)``."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim < 1 or X.shape[-1] != len(self.feature_names):
            raise ValueError(f"X must end with an axis of {len(self.feature_names)} features "
                             f"({', '.join(self.feature_names[:3])}, ...), got shape {X.shape}")
        raw = self.trees.raw(X.reshape(-1, X.shape[-1]), self.n_iterations)
        return raw.reshape(*X.shape[:-1], self.n_classes)

    def predict_log_proba_features(self, X: np.ndarray) -> np.ndarray:
        """Uncalibrated log-probabilities ``(..., n_classes)`` (the logits this kind reports)."""
        return _log_softmax(self.predict_raw(X))

    def predict_proba_features(self, X: np.ndarray, calibrated: bool = False) -> np.ndarray:
        """Class probabilities ``(..., n_classes)`` of feature vectors ``(..., n_features)``;
        ``calibrated=True`` divides the logits by :attr:`temperature` first."""
        logits = self.predict_log_proba_features(X)
        if calibrated:
            logits = logits / self.temperature
        return np.exp(_log_softmax(logits))

    def curve_answers(self, times: np.ndarray, flux: np.ndarray,
                      flux_err: np.ndarray) -> np.ndarray:
        """Uncalibrated log-probabilities ``(len(update_fractions), n_classes)`` of one checked
        curve at each update fraction; zeros (the uniform answer) for an update whose prefix
        holds fewer than :data:`~microlens.models.peer.MIN_OBSERVATIONS` observations, too few
        for the PSPL fit most features come from (the trees would otherwise answer from the
        few statistics left, e.g. call a single point binary)."""
        features = _event_features(times, flux, flux_err, self.update_fractions)
        answers = self.predict_log_proba_features(features)
        answers[_too_short(np.array([times.size]), self.update_fractions)[0]] = 0.0
        return answers

    def update_parameters(self, times, flux, flux_err) -> dict:
        """The point-lens parameters of one curve **at this kind's update points only**.

        The trees answer from the robust point-lens fit of each update's prefix (the first
        ``ceil(f n)`` observations for each update fraction ``f``), so the parameters this kind
        can report are that fit's, with intervals from its covariance
        (:func:`microlens.models.online_fit.fit_point_lens`), at those prefixes and nowhere
        else: between updates its answer is the latest update's. It has no estimate of a
        binary's ``s`` and ``q`` (a point-lens fit has none) and no learned correction of the
        fit: where the fit is degenerate (its stated rule) it reports none.

        Returns
        -------
        dict
            ``counts`` (int ``(U,)``, observations behind each update), ``mean`` and
            ``sigma`` (float64 ``(U, 4)``, :data:`microlens.models.online_fit.PARAMETERS`:
            ``t_0`` in the times' frame, ``log10_t_E``, ``log10_u_0``, ``f_s``), ``ok`` (bool
            ``(U,)``).
        """
        from microlens.models.holdout import observations_seen
        from microlens.models.online_fit import PARAMETERS, fit_point_lens

        times, flux, flux_err = (np.asarray(a, np.float64).reshape(-1)
                                 for a in (times, flux, flux_err))
        counts = np.array([int(observations_seen(np.array([times.size]), f)[0])
                           for f in self.update_fractions])
        mean = np.full((counts.size, len(PARAMETERS)), np.nan)
        sigma, ok = mean.copy(), np.zeros(counts.size, bool)
        for j, c in enumerate(counts):
            fit = fit_point_lens(times[:c], flux[:c], flux_err[:c])
            mean[j], sigma[j], ok[j] = fit["mean"], fit["sigma"], fit["ok"]
        return {"counts": counts, "mean": mean, "sigma": sigma, "ok": ok}

    def predict_curve(self, times, flux, flux_err) -> np.ndarray:
        """Per-observation logits ``(n, n_classes)`` float32 of one light curve: piecewise
        constant from each update on, zeros (uniform) before the first and for updates of
        fewer than :data:`~microlens.models.peer.MIN_OBSERVATIONS` observations (see
        :meth:`curve_answers` and the module docstring).

        ``times``, ``flux``, ``flux_err`` are 1-D, checked as every model's inputs
        (:func:`microlens.core.validation.check_light_curves`: finite, positive errors, strictly
        increasing times); a batch ``(B, N)`` goes to :meth:`predict_proba`.

        Raises
        ------
        InvalidLightCurveError
            For a shape other than 1-D (naming it) or unusable observations (naming the
            observation and value).
        """
        from microlens.core.validation import InvalidLightCurveError, check_light_curves, numpy_view

        self._require_curve_features()
        arrays = [numpy_view(a, name) for a, name in
                  ((times, "times"), (flux, "flux"), (flux_err, "flux_err"))]
        for name, array in zip(("times", "flux", "flux_err"), arrays, strict=True):
            if array.ndim != 1:
                raise InvalidLightCurveError(
                    f"predict_curve reads one light curve: {name} must be 1-D, got shape "
                    f"{tuple(array.shape)}; for a batch (events, observations) use "
                    "predict_proba(times, flux, flux_err, mask)")
        check_light_curves(*(a[None] for a in arrays))
        times, flux, flux_err = (a.astype(np.float64) for a in arrays)
        answers = self.curve_answers(times, flux, flux_err)[None]
        return piecewise_logits(np.array([times.size]), answers, self.update_fractions)[0]

    def predict_logits(self, times, flux, flux_err, mask=None, *, check_inputs: bool = True):
        """Uncalibrated logits ``(B, N, n_classes)``, a float32 torch tensor on the CPU, after
        every observation: the answers of :meth:`predict_curve` for each event of a padded
        batch; positions after an event's last observation hold its final answer.

        Inputs are those of every kind's ``predict_logits`` (NumPy arrays, tensors or lists
        ``(B, N)``, the bool ``mask`` True where an observation exists, valid observations
        first); with ``check_inputs`` they are checked first by
        :func:`microlens.core.validation.check_light_curves`, which raises
        :class:`~microlens.core.validation.InvalidLightCurveError` naming the event and observation.
        """
        import torch

        from microlens.core.validation import check_light_curves, numpy_view

        self._require_curve_features()
        if check_inputs:
            check_light_curves(times, flux, flux_err, mask)
        times, flux, flux_err = (numpy_view(a, name).astype(np.float64) for a, name in
                                 ((times, "times"), (flux, "flux"), (flux_err, "flux_err")))
        batch, width = times.shape
        lengths = (np.full(batch, width, np.int64) if mask is None else
                   numpy_view(mask, "mask").sum(axis=1).astype(np.int64))
        out = np.zeros((batch, width, self.n_classes), np.float32)
        for i, n in enumerate(lengths):
            if n == 0:  # only without check_inputs; nothing seen: the uniform answer
                continue
            answers = self.curve_answers(times[i, :n], flux[i, :n], flux_err[i, :n])[None]
            logits = piecewise_logits(np.array([n]), answers, self.update_fractions)[0]
            out[i, :n] = logits
            out[i, n:] = logits[-1]
        return torch.from_numpy(out)

    def predict_proba(self, times, flux, flux_err, mask=None, *, calibrated: bool = True,
                      check_intervals: bool = True, check_inputs: bool = True):
        """Class probabilities ``(B, N, n_classes)`` after every observation, as every kind's
        ``predict_proba``: a float32 torch tensor (on the CPU), so callers treat all kinds alike.

        The update rule: the model answers after its :attr:`update_fractions` of each curve
        (the first ``ceil(f n)`` observations of ``n``), and each answer holds until the next;
        before the first update, and for updates of fewer than
        :data:`~microlens.models.peer.MIN_OBSERVATIONS` observations, the probabilities are
        uniform (``1 / n_classes`` each). With ``calibrated`` the logits are divided by
        :attr:`temperature` first. ``check_intervals`` is accepted for the common signature
        and does nothing: this kind has no interval normalisation, so no interval range.

        Raises
        ------
        InvalidLightCurveError
            As every kind (:func:`microlens.core.validation.check_light_curves`): a non-finite
            value, a non-positive error, unsorted or repeated times, a wrong shape or mask.
        """
        logits = self.predict_logits(times, flux, flux_err, mask, check_inputs=check_inputs)
        if calibrated:
            logits = logits / self.temperature
        return logits.softmax(dim=-1)

    # -- files -----------------------------------------------------------------------------

    def save(self, run_dir: str | os.PathLike, *, best_iteration: int | None = None) -> Path:
        """Write :data:`MODEL_FILE` and :data:`META_FILE` into ``run_dir``, atomically (the
        trees of every iteration; ``best_iteration`` defaults to :attr:`n_iterations`)."""
        run_dir = resolve_path(run_dir)
        best = self.n_iterations if best_iteration is None else \
            self.trees._check_iterations(best_iteration)
        with atomic_path(run_dir / MODEL_FILE) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **self.trees.to_arrays())
        write_json_atomic(run_dir / META_FILE, {
            "format_version": FORMAT_VERSION,
            "kind": KIND,
            "feature_names": list(self.feature_names),
            "update_fractions": list(self.update_fractions),
            "temperature": self.temperature,
            "best_iteration": best,
            "n_iterations": self.trees.n_iterations,
            "n_classes": self.n_classes,
            "settings": self.settings.to_dict(),
        })
        return run_dir


def _too_short(lengths: np.ndarray, fractions: Sequence[float]) -> np.ndarray:
    """``(E, len(fractions))`` bool: updates whose prefix holds too few observations to fit
    (fewer than :data:`~microlens.models.peer.MIN_OBSERVATIONS`); they answer uniformly."""
    lengths = np.maximum(np.asarray(lengths, np.int64), 1)
    return np.stack([observations_seen(lengths, f) < MIN_OBSERVATIONS for f in fractions],
                    axis=1)


def piecewise_logits(lengths: np.ndarray, answers: np.ndarray,
                     fractions: Sequence[float]) -> np.ndarray:
    """Per-observation logits from answers at fractions: ``(E, max(lengths), C)`` float32.

    Position ``p`` of event ``i`` holds ``answers[i, j]`` of the largest ``j`` whose prefix
    (the first ``observations_seen(lengths[i], fractions[j])`` observations) ends at or before
    ``p``, and zeros before the first prefix ends. ``fractions`` must increase.
    """
    lengths = np.asarray(lengths, np.int64)
    answers = np.asarray(answers)
    if answers.shape[:2] != (lengths.size, len(fractions)):
        raise ValueError(f"answers must have shape ({lengths.size}, {len(fractions)}, C), got "
                         f"{answers.shape}")
    width = max(int(lengths.max(initial=1)), 1)
    out = np.zeros((lengths.size, width, answers.shape[2]), np.float32)
    positions = np.arange(width)
    for j, fraction in enumerate(fractions):
        end = observations_seen(np.maximum(lengths, 1), fraction) - 1
        reached = positions[None, :] >= end[:, None]
        out = np.where(reached[..., None], answers[:, j, None, :].astype(np.float32), out)
    return out


def load_feature_model(run_dir: str | os.PathLike, which: str = "best") -> FeatureClassifier:
    """The :class:`FeatureClassifier` of a ``features`` run directory (no pickle, no sklearn).

    Parameters
    ----------
    run_dir : path
        Written by :func:`train_features` (relative paths from the project root).
    which : {'best', 'last'}
        ``best``: the iterations up to the lowest validation loss; ``last``: every iteration
        fitted (until early stopping or ``max_iter``).
    """
    import zipfile

    from microlens.models.config import ModelConfig
    from microlens.models.runs import RunFileError, read_json, require_run_dir

    if which not in WHICH:
        raise ValueError(f"unknown checkpoint {which!r}; valid: {', '.join(WHICH)}")
    run_dir = require_run_dir(run_dir)
    for name in ("config.json", MODEL_FILE, META_FILE):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir} is not a complete features run directory: "
                                    f"{name} is missing")
    config = read_json(run_dir / "config.json")
    if not isinstance(config.get("model"), dict):
        raise RunFileError(f"{run_dir / 'config.json'} has no \"model\" object: restore it or "
                           "train again")
    model_config = ModelConfig.from_saved(config["model"])
    if model_config.kind != KIND:
        raise ValueError(f"{run_dir} is a {model_config.kind!r} run, not a {KIND!r} one; load "
                         "it with microlens.models.registry.load_model")
    meta = read_json(run_dir / META_FILE, remedy="train the run again")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{run_dir / META_FILE} has format version "
                         f"{meta.get('format_version')!r}; this code reads {FORMAT_VERSION}")
    missing = [k for k in ("best_iteration", "feature_names", "update_fractions",
                           "temperature", "settings") if k not in meta]
    if missing:
        raise RunFileError(f"{run_dir / META_FILE} lacks {', '.join(missing)}: train the run "
                           "again")
    model_file = run_dir / MODEL_FILE
    size = model_file.stat().st_size
    if size == 0 or not zipfile.is_zipfile(model_file):  # an .npz keeps its directory at the end
        state = "empty" if size == 0 else "truncated or not an .npz archive"
        raise RunFileError(f"{model_file} is {state} ({size} bytes): train the run again or "
                           "restore the file")
    try:
        with np.load(model_file, allow_pickle=False) as data:
            trees = BoostedTrees.from_arrays({name: data[name] for name in data.files})
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise RunFileError(f"{model_file} is corrupt ({size} bytes; {exc}): train the run "
                           "again or restore the file") from None
    except ValueError as exc:  # pickled objects refused, or trees that do not hold together
        raise RunFileError(f"{model_file} does not hold valid trees: {exc}; train the run "
                           "again") from None
    model = FeatureClassifier(
        trees, n_iterations=meta["best_iteration"] if which == "best" else None,
        feature_names=meta["feature_names"], update_fractions=meta["update_fractions"],
        temperature=meta["temperature"], config=model_config,
        settings=BoostingSettings.from_dict(meta["settings"]))
    model.dataset_manifest = dict(config.get("dataset_manifest") or {})
    return model


# --------------------------------------------------------------------------------------------
# Predictions and timing
# --------------------------------------------------------------------------------------------


def predict_feature_events(model: FeatureClassifier, store, rows: Sequence[int], *,
                           workers: int = 1, progress: bool = False) -> Predictions:
    """Per-observation logits of a ``features`` model over test events ``rows``.

    The logits ``(E, max_len, 3)`` are piecewise constant and causal (:func:`piecewise_logits`):
    at observation ``p``, the uncalibrated log-probabilities of the latest update fraction whose
    prefix ends at or before ``p``; zeros (uniform) before the first update.

    Parameters
    ----------
    model : FeatureClassifier
    store : LightCurveStore
    rows : sequence of int
        Test-split store rows (:func:`~microlens.models.holdout.require_test_split`), not empty.
    workers : int
        Processes for the feature extraction (results do not depend on it).
    progress : bool
        Progress bar.

    Returns
    -------
    Predictions
        ``temperature = model.temperature``, no temperature curve; ``info`` records
        ``kind`` and ``update_fractions``.
    """
    model._require_curve_features()
    rows = require_test_split(store, rows)
    if rows.size == 0:
        raise ValueError("rows is empty; choose test events from store.indices('test')")
    store.require_valid(rows, "predict reads test events")
    lengths = np.asarray(store.lengths[rows], dtype=np.int64)
    features = prefix_features(store, rows, model.update_fractions, workers=workers,
                               progress=progress)
    answers = model.predict_log_proba_features(features)
    answers[_too_short(lengths, model.update_fractions)] = 0.0  # uniform, as curve_answers
    logits = piecewise_logits(lengths, answers, model.update_fractions)
    times = store.padded(rows, logits.shape[1], names=("times",))["times"].astype(np.float64)
    return Predictions(rows=rows, labels=np.asarray(store.labels[rows], dtype=np.int64),
                       lengths=lengths, times=times, logits=logits,
                       temperature=model.temperature,
                       info={"kind": KIND, "update_fractions": list(model.update_fractions)},
                       temperature_curve=None)


def time_feature_model(model: FeatureClassifier, store, rows: Sequence[int], *,
                       max_events: int = 16) -> dict:
    """Wall time per event of the ``features`` model on up to ``max_events`` test events, on
    one core: feature extraction at every update fraction plus the trees' prediction
    (:meth:`FeatureClassifier.predict_curve`), after one warm-up event.

    Returns
    -------
    dict
        ``seconds_per_event`` (all updates of one event), ``seconds_per_update``, ``events``,
        ``updates_per_event``, ``threads`` (1), ``device`` ('cpu').
    """
    rows = require_test_split(store, rows)
    if rows.size == 0:
        raise ValueError("rows is empty; choose test events from store.indices('test')")
    if isinstance(max_events, bool) or int(max_events) < 1:
        raise ValueError(f"max_events must be an integer >= 1, got {max_events!r}")
    events = [store.event(int(r)) for r in rows[: int(max_events)]]
    model.predict_curve(events[0]["times"], events[0]["flux"], events[0]["flux_err"])  # warm-up
    started = time.perf_counter()
    for event in events:
        model.predict_curve(event["times"], event["flux"], event["flux_err"])
    elapsed = time.perf_counter() - started
    per_event = elapsed / len(events)
    return {"seconds_per_event": per_event,
            "seconds_per_update": per_event / len(model.update_fractions),
            "events": len(events), "updates_per_event": len(model.update_fractions),
            "threads": 1, "device": "cpu"}


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


@dataclass
class _Split:
    rows: np.ndarray
    labels: np.ndarray  # per event, under the label policy
    features: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, N_FEATURES)))

    def table(self, weights_by_class: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X, y, sample weights): one row per event and fraction, event-major."""
        n_fractions = self.features.shape[1]
        y = np.repeat(self.labels, n_fractions)
        return self.features.reshape(-1, N_FEATURES), y, weights_by_class[y]


def _random_state(seed: int) -> int:
    """The boosting's ``random_state`` from the run's seed (:data:`microlens.core.seeds.WEIGHT_INIT`
    stream: the model's own randomness, as a network's initial weights)."""
    from microlens.core import seeds

    return int(seeds.seed_sequence(seed, seeds.WEIGHT_INIT).generate_state(1, np.uint32)[0])


def _dataset_manifest(store) -> dict:
    return {k: store.manifest.get(k) for k in
            ("n_events", "n_epochs", "reference_epoch", "n_observations", "max_observations",
             "class_counts", "split_counts", "config")}


def _saved_config(config, settings: BoostingSettings, store, n_parameters=None) -> dict:
    return {"train": config.to_dict(), "model": config.model.to_dict(),
            "features": settings.to_dict(), "dataset_manifest": _dataset_manifest(store),
            "world_size": 1, "device": "cpu", "n_parameters": n_parameters}


def _complete(run_dir: Path) -> bool:
    return all((run_dir / name).is_file()
               for name in ("config.json", MODEL_FILE, META_FILE, "history.csv", "metrics.json"))


def _prepare_run_dir(config, settings: BoostingSettings, resume: bool, overwrite: bool) -> bool:
    """Create or check the run directory (:func:`microlens.models.runs.prepare_run_dir`, the routine
    of
    every kind); True when a complete run of this config is there."""
    from microlens.models.runs import prepare_run_dir, start_run_dir

    run_dir = config.run_dir
    mine = {**config.to_dict(), "features": settings.to_dict()}

    def differences(saved: dict) -> list[str]:
        theirs = {**saved.get("train", {}), "features": saved.get("features")}
        return sorted(k for k in mine if theirs.get(k) != mine[k])

    # a run killed before its config.json trains again in place
    if prepare_run_dir(run_dir, resume=resume, overwrite=overwrite, differences=differences,
                       config_required=False):
        return _complete(run_dir)
    start_run_dir(run_dir)
    return False


def train_features(config, *, settings: BoostingSettings | None = None, workers: int = 1,
                   resume: bool = False, overwrite: bool = False, progress: bool = True) -> Path:
    """Train a ``features`` model; returns the run directory (see the module docstring).

    Parameters
    ----------
    config : TrainConfig
        ``config.model.kind`` must be ``"features"``; the fields used are listed in the module
        docstring.
    settings : BoostingSettings, optional
        Update fractions and tree settings (default :class:`BoostingSettings()`).
    workers : int
        Processes for the feature extraction (results do not depend on it).
    resume : bool
        A finished run of the same config is returned as it is; an unfinished one (no
        ``metrics.json``: interrupted) is trained again in place. Its config must match.
    overwrite : bool
        Delete an existing run directory of the same name first: only one the project made
        (see :mod:`microlens.core.removal`; anything else raises ``UnsafeDeleteError``).
    progress : bool
        Progress bars and a summary line.

    Raises
    ------
    RunExistsError
        The run directory exists and neither ``resume`` nor ``overwrite`` was given.
    ValueError
        A kind other than ``features``; no events in the train or val split; a class missing
        from the training split; both ``resume`` and ``overwrite``.
    """
    import inspect

    import torch
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    from microlens.core import seeds
    from microlens.core.calibration import fit_temperature
    from microlens.core.seeds import subset_rows
    from microlens.data.labels import class_weights, training_labels
    from microlens.data.store import open_dataset
    from microlens.models.runs import HISTORY_COLUMNS, write_csv

    if resume and overwrite:
        raise ValueError("choose resume or overwrite, not both")
    if config.model.kind != KIND:
        raise ValueError(f"train_features trains ModelConfig(kind={KIND!r}), got "
                         f"kind={config.model.kind!r}; train the neural kinds with "
                         "microlens.training.train.train")
    if "X_val" not in inspect.signature(HistGradientBoostingClassifier.fit).parameters:
        import sklearn

        raise ImportError(f"train_features needs scikit-learn >= 1.7 (early stopping on the "
                          f"validation split through fit(X_val=...)); found {sklearn.__version__}")
    settings = settings if settings is not None else BoostingSettings()
    if not isinstance(settings, BoostingSettings):
        raise ValueError(f"settings must be a BoostingSettings, got {type(settings).__name__}")
    run_dir = config.run_dir
    started = time.perf_counter()
    store = open_dataset(config.dataset)
    if _prepare_run_dir(config, settings, resume, overwrite):
        return run_dir

    train = _Split(subset_rows(store.indices("train"), config.max_train_events, config.seed,
                           seeds.TRAIN_SUBSET), np.zeros(0, np.int64))
    val = _Split(subset_rows(store.indices("val"), config.max_val_events, config.seed,
                         seeds.VAL_SUBSET), np.zeros(0, np.int64))
    if train.rows.size == 0 or val.rows.size == 0:
        raise ValueError(f"dataset {store.path} needs events in both the train and val splits "
                         f"(has {train.rows.size} and {val.rows.size})")
    store.require_valid(np.concatenate([train.rows, val.rows]),
                        "training reads the train and val rows it uses",
                        advice="regenerate the dataset or repair those rows; the test split is "
                               "never read by training")
    for split in (train, val):
        split.labels = training_labels(store, split.rows, config.label_policy,
                                       config.observable_threshold)
    n_classes = config.model.n_classes
    weights_by_class = class_weights(train.labels, n_classes).double().numpy()
    write_json_atomic(run_dir / "config.json", _saved_config(config, settings, store))

    fractions = settings.update_fractions
    for split, name in ((train, "train"), (val, "val")):
        if progress:
            print(f"features of {split.rows.size} {name} events at {list(fractions)}",
                  flush=True)
        split.features = prefix_features(store, split.rows, fractions, workers=workers,
                                         progress=progress)
    feature_seconds = time.perf_counter() - started

    X, y, w = train.table(weights_by_class)
    X_val, y_val, w_val = val.table(weights_by_class)
    clf = HistGradientBoostingClassifier(
        loss="log_loss", learning_rate=settings.learning_rate, max_iter=settings.max_iter,
        max_leaf_nodes=settings.max_leaf_nodes, min_samples_leaf=settings.min_samples_leaf,
        l2_regularization=settings.l2_regularization, categorical_features=None,
        early_stopping=True, scoring="loss", n_iter_no_change=settings.n_iter_no_change,
        random_state=_random_state(config.seed))
    fit_started = time.perf_counter()
    # one OpenMP thread: sklearn sums gradients in parallel, so the trees could otherwise
    # differ in the last bits (and then in a split) between machines with different core
    # counts; the fit costs little beside the feature extraction
    with threadpool_limits(limits=1, user_api="openmp"):
        clf.fit(X, y, sample_weight=w, X_val=X_val, y_val=y_val, sample_weight_val=w_val)
    fit_seconds = time.perf_counter() - fit_started
    trees = BoostedTrees.from_sklearn(clf)
    if not np.array_equal(clf.classes_, np.arange(n_classes)):
        raise ValueError(f"expected classes 0..{n_classes - 1}, the classifier saw "
                         f"{clf.classes_.tolist()}")

    # history: sklearn's per-iteration losses (class-weighted mean log loss over every prefix
    # row; index 0 is the baseline before any tree) and final-answer accuracies per iteration
    train_loss = -np.asarray(clf.train_score_, np.float64)[1:]
    val_loss = -np.asarray(clf.validation_score_, np.float64)[1:]
    n_fit = trees.n_iterations
    best = int(np.argmin(val_loss)) + 1 if val_loss.size else n_fit
    final = len(fractions) - 1
    accuracy = {}
    for split, name in ((train, "train"), (val, "val")):
        staged = trees.staged_raw(split.features[:, final], n_fit)
        accuracy[name] = np.mean(staged.argmax(axis=-1) == split.labels[:, None], axis=0)
    total_seconds = time.perf_counter() - started
    speed = train.rows.size / total_seconds
    history = [{"epoch": i + 1, "train_loss": float(train_loss[i]),
                "train_accuracy": float(accuracy["train"][i]), "val_loss": float(val_loss[i]),
                "val_accuracy": float(accuracy["val"][i]),
                "learning_rate": settings.learning_rate, "epoch_seconds": fit_seconds / n_fit,
                "train_events_per_second": speed, "skipped_steps": 0} for i in range(n_fit)]

    model = FeatureClassifier(trees, n_iterations=best, update_fractions=fractions,
                              config=config.model, settings=settings)
    val_logits = model.predict_log_proba_features(val.features[:, final])
    logits_t = torch.from_numpy(val_logits)
    labels_t = torch.from_numpy(val.labels)
    temperature = fit_temperature(logits_t, labels_t)
    model.temperature = temperature
    nll = {name: float(torch.nn.functional.cross_entropy(logits_t / t, labels_t))
           for name, t in (("before", 1.0), ("after", temperature))}

    model.save(run_dir, best_iteration=best)
    write_csv(run_dir / "history.csv", history, HISTORY_COLUMNS)
    write_json_atomic(run_dir / "config.json",
                      _saved_config(config, settings, store, model.n_parameters))
    write_json_atomic(run_dir / "metrics.json", {  # last: marks the run complete
        "run_dir": str(run_dir),
        "kind": KIND,
        "best_epoch": best,
        "epochs_run": n_fit,
        "stopped_early": bool(n_fit < settings.max_iter),
        "val_loss": float(val_loss[best - 1]),
        "val_accuracy": float(accuracy["val"][best - 1]),
        "val_nll_final_before_temperature": nll["before"],
        "val_nll_final_after_temperature": nll["after"],
        "temperature": temperature,
        "temperature_fit": "final",
        "n_val_events": int(val.rows.size),
        "n_train_events": int(train.rows.size),
        "skipped_steps": 0,
        "train_events_per_second": speed,
        "feature_seconds": feature_seconds,
        "fit_seconds": fit_seconds,
        "update_fractions": list(fractions),
        "world_size": 1,
        "device": "cpu",
        "n_parameters": model.n_parameters,
    })
    if progress:
        print(f"{n_fit} iterations (best {best}), val loss {val_loss[best - 1]:.4f}, val "
              f"accuracy {accuracy['val'][best - 1]:.3f}, T={temperature:.3f}, "
              f"{model.n_parameters} nodes, {speed:.1f} events/s", flush=True)
    return run_dir


__all__ = [
    "DEFAULT_UPDATE_FRACTIONS", "FORMAT_VERSION", "KIND", "META_FILE", "MODEL_FILE", "WHICH",
    "BoostedTrees", "BoostingSettings", "FeatureClassifier", "check_update_fractions",
    "load_feature_model", "piecewise_logits", "predict_feature_events", "time_feature_model",
    "train_features",
]  # fmt: skip
