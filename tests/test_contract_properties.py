"""One input contract for every model kind: ``predict_proba(times, flux, flux_err, mask)``.

Every kind of :data:`microlens.models.registry.KINDS` (tiny models, built once per module, seeded)
gets the same padded batches ``(B, N)``: valid ones give finite probabilities summing to 1 as a
``(B, N, n_classes)`` torch tensor; each corruption on an explicit list raises
:class:`~microlens.core.validation.InvalidLightCurveError` naming the event and observation (or the
shape), never a silent finite answer.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from microlens.core.validation import InvalidLightCurveError
from microlens.models.config import ModelConfig
from microlens.models.inputs import Normalization
from microlens.models.registry import KINDS, build_model

# Small models on one torch thread: on a busy two-core machine a recurrent kernel on two
# OpenMP threads costs several times more (see test_model_kinds.py).
pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {
    "transformer": dict(d_model=16, n_heads=2, n_layers=1, d_ff=32, window=8,
                        conv_stem_layers=1),
    "cnn": dict(d_model=16, n_heads=2, n_layers=2, d_ff=32, kernel_size=3),
    "gru": dict(d_model=16, n_heads=2, n_layers=1),
    "rnn_vae": dict(d_model=16, n_heads=2, n_layers=1, latent_dim=4),
    "deepsets": dict(d_model=16, n_heads=2, d_ff=32, window=8),
    "set_transformer": dict(d_model=16, n_heads=2, n_layers=1, d_ff=32, window=8),
    "masked": dict(d_model=16, n_heads=2, n_layers=1, d_ff=32, window=8, conv_stem_layers=1),
}
"""Sizes of the tiny neural models (every neural kind of the registry must be here)."""

FEATURE_FRACTIONS = (0.5, 1.0)
"""Update fractions of the tiny ``features`` model (two PSPL fits per event)."""


def tiny_features_model():
    """A ``features`` model whose trees were fitted on random feature vectors (the answers mean
    nothing; the contract is what is tested)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from microlens.models.curve_features import FEATURE_NAMES
    from microlens.models.features import BoostedTrees, FeatureClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, len(FEATURE_NAMES)))
    y = rng.integers(0, 3, 300)
    with threadpool_limits(limits=1, user_api="openmp"):
        clf = HistGradientBoostingClassifier(max_iter=3, categorical_features=None,
                                             random_state=0).fit(X, y)
    return FeatureClassifier(BoostedTrees.from_sklearn(clf), update_fractions=FEATURE_FRACTIONS,
                             temperature=1.5)


@functools.cache
def model_of(kind: str):
    """One tiny model of ``kind``, seeded, in eval mode."""
    if not KINDS[kind].neural:
        return tiny_features_model()
    torch.manual_seed(0)
    return build_model(ModelConfig(kind=kind, dropout=0.0, **TINY[kind]), Normalization()).eval()


def test_every_kind_of_the_registry_is_covered():
    assert set(TINY) | {"features"} == set(KINDS)


def curves(batch: int, width: int, lengths, seed: int, gap_scale: float = 1.0):
    """Valid padded curves: strictly increasing times, positive errors, zeros as padding."""
    rng = np.random.default_rng(seed)
    times = np.cumsum(1e-3 + rng.exponential(gap_scale, (batch, width)), axis=1)
    err = np.exp(rng.uniform(-5, -1, (batch, width))).astype(np.float32)
    flux = (1 + err * rng.normal(size=(batch, width))).astype(np.float32)
    mask = np.arange(width)[None, :] < np.asarray(lengths)[:, None]
    return (np.where(mask, times, 0.0), np.where(mask, flux, 0).astype(np.float32),
            np.where(mask, err, 0).astype(np.float32), mask)


# -- the same bad inputs for every kind --------------------------------------------------------


def _set(name, index, value):
    def corrupt(arrays):
        arrays[name][index] = value
    return corrupt


def _reverse(arrays):
    arrays["times"][1, :] = arrays["times"][1, ::-1].copy()


def _repeat(arrays):
    arrays["times"][0, 5] = arrays["times"][0, 4]


def _reshape(name, shape):
    def corrupt(arrays):
        arrays[name] = arrays[name].reshape(shape) if shape else arrays[name][0]
    return corrupt


def _mask(value):
    def corrupt(arrays):
        arrays["mask"] = value(arrays["mask"])
    return corrupt


def _gap(mask):
    mask = mask.copy()
    mask[1, 3] = False  # a valid observation after padding
    return mask


def _empty_event(mask):
    mask = mask.copy()
    mask[2] = False
    return mask


BAD_INPUTS = {
    "nan flux": (_set("flux", (1, 3), np.nan), r"flux\[1, 3\] is nan"),
    "inf time": (_set("times", (0, 2), np.inf), r"times\[0, 2\] is inf"),
    "nan error": (_set("flux_err", (2, 9), np.nan), r"flux_err\[2, 9\] is nan"),
    "zero error": (_set("flux_err", (1, 4), 0.0), r"flux_err\[1, 4\] is 0.0.*must be positive"),
    "negative error": (_set("flux_err", (0, 0), -0.1), r"flux_err\[0, 0\] is -0.1"),
    "reversed times": (_reverse, r"times\[1, 1\]=.* is before times\[1, 0\]"),
    "repeated time": (_repeat, r"times\[0, 5\]=.* repeats times\[0, 4\]"),
    "1-D arrays": (_reshape("times", None), r"times must be 2-D .* got shape \(12,\); for one "
                                            r"event pass times\[None\]"),
    "mismatched shapes": (_reshape("flux", (4, 9)), r"flux has shape \(4, 9\) but times has "
                                                    r"shape \(3, 12\)"),
    "3-D arrays": (_reshape("flux_err", (3, 12, 1)), r"flux_err must be 2-D .* \(3, 12, 1\)"),
    "non-bool mask": (_mask(lambda m: m.astype(np.int64)), r"mask must be bool .* int64"),
    "mask of another shape": (_mask(lambda m: m[:, :6]), r"mask has shape \(3, 6\)"),
    "valid after padding": (_mask(_gap), r"mask\[1, 4\] is True after mask\[1, 3\] is False"),
    "event without observations": (_mask(_empty_event), r"mask\[2\] is all False"),
    "no observations": (_reshape("times", (3, 0)), r"times has shape \(3, 0\): no observations"),
}
"""Corruptions of a valid batch of 3 events x 12 observations, and what the error must say."""


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_every_kind_refuses_the_same_bad_inputs_with_the_same_error(kind, case):
    corrupt, message = BAD_INPUTS[case]
    times, flux, err, mask = curves(3, 12, [12, 12, 12], seed=1)
    arrays = {"times": times, "flux": flux, "flux_err": err, "mask": mask}
    if case == "no observations":
        arrays = {k: v[:, :0] for k, v in arrays.items()}
    else:
        corrupt(arrays)
    with pytest.raises(InvalidLightCurveError, match=message):
        model_of(kind).predict_proba(arrays["times"], arrays["flux"], arrays["flux_err"],
                                     arrays["mask"])


# -- properties ---------------------------------------------------------------------------------


@st.composite
def valid_batches(draw, max_batch: int = 3):
    batch = draw(st.integers(1, max_batch))
    lengths = draw(st.lists(st.integers(1, 200), min_size=batch, max_size=batch))
    width = max(lengths) + draw(st.integers(0, 5))  # padding beyond the longest, sometimes
    seed = draw(st.integers(0, 2**32 - 1))
    gap_scale = draw(st.sampled_from([1e-2, 1.0, 30.0]))
    return curves(batch, width, lengths, seed, gap_scale)


@pytest.mark.parametrize("kind", list(KINDS))
def test_valid_curves_give_finite_probabilities_summing_to_one(kind):
    model = model_of(kind)
    max_batch = 2 if kind == "features" else 3  # the features kind fits a PSPL per update

    @given(valid_batches(max_batch))
    def check(arrays):
        times, flux, err, mask = arrays
        proba = model.predict_proba(times, flux, err, mask)
        assert isinstance(proba, torch.Tensor) and proba.dtype == torch.float32
        assert tuple(proba.shape) == (*times.shape, 3)
        valid = torch.from_numpy(mask)
        assert bool(torch.isfinite(proba[valid]).all())
        torch.testing.assert_close(proba[valid].sum(-1), torch.ones(int(valid.sum())),
                                   atol=1e-5, rtol=0)

    check()


CORRUPTIONS = ("nan", "inf", "-inf", "zero error", "negative error", "reversed", "repeated")


@pytest.mark.parametrize("kind", list(KINDS))
def test_any_corrupted_observation_is_named_never_answered(kind):
    model = model_of(kind)

    @given(valid_batches(), st.sampled_from(CORRUPTIONS),
           st.sampled_from(["times", "flux", "flux_err"]), st.data())
    def check(arrays, corruption, name, data):
        times, flux, err, mask = (a.copy() for a in arrays)
        lengths = mask.sum(axis=1)
        i = data.draw(st.integers(0, times.shape[0] - 1), label="event")
        if corruption in ("reversed", "repeated") and lengths[i] < 2:
            return  # one observation cannot be out of order
        j = data.draw(st.integers(1 if corruption in ("reversed", "repeated") else 0,
                                  lengths[i] - 1), label="observation")
        target = {"times": times, "flux": flux, "flux_err": err}
        if corruption in ("nan", "inf", "-inf"):
            target[name][i, j] = float(corruption)
            expected = rf"{name}\[{i}, {j}\]"
        elif corruption == "zero error":
            err[i, j] = 0.0
            expected = rf"flux_err\[{i}, {j}\] is 0.0"
        elif corruption == "negative error":
            err[i, j] = -err[i, j]
            expected = rf"flux_err\[{i}, {j}\] is -"
        elif corruption == "reversed":
            times[i, :j + 1] = times[i, :j + 1][::-1].copy()
            expected = rf"times\[{i}, 1\]=.* is before times\[{i}, 0\]"
        else:
            times[i, j] = times[i, j - 1]
            expected = rf"times\[{i}, {j}\]=.* repeats times\[{i}, {j - 1}\]"
        with pytest.raises(InvalidLightCurveError, match=expected):
            model.predict_proba(times, flux, err, mask)

    check()
