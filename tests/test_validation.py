"""One validation of light-curve inputs: batch prediction, evaluation, datasets, training, stream.

Each bad input (non-finite flux or times, zero or negative errors, unsorted or repeated times,
wrong shapes or masks) is refused with a message naming the argument, event, observation, value
and what is valid; NumPy input is accepted and gives the torch answer.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import copy_dataset

from microlens import open_dataset
from microlens.core.validation import (
    InvalidDataWarning,
    InvalidLightCurveError,
    check_light_curves,
)
from microlens.data.store import scan_invalid
from microlens.evaluation.predictions import predict_events, run_predictions
from microlens.models.config import ModelConfig
from microlens.models.inputs import Normalization
from microlens.models.registry import load_model
from microlens.models.stream import StreamingClassifier
from microlens.models.transformer import MicrolensTransformer
from microlens.training.train import TrainConfig, train

TINY = ModelConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32, window=8, dropout=0.0)
B, N = 4, 40
LENGTHS = [40, 31, 36, 25]


def events():
    """Clean float32 NumPy light curves ``(B, N)``, padded with zeros like a stored dataset."""
    rng = np.random.default_rng(0)
    mask = np.arange(N)[None, :] < np.array(LENGTHS)[:, None]
    times = np.cumsum(rng.uniform(0.1, 1.0, (B, N)), axis=1).astype(np.float32)
    flux = (1 + 0.05 * rng.standard_normal((B, N))).astype(np.float32)
    err = np.full((B, N), 0.05, np.float32)
    return [np.where(mask, a, 0).astype(np.float32) for a in (times, flux, err)] + [mask]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    times, flux, err, mask = events()
    norm = Normalization.fit(times, flux, err, mask, reference_points=5)
    return MicrolensTransformer(TINY, norm).eval()


def _set(array, index, value):
    array = array.copy()
    array[index] = value
    return array


# (argument to change, how, expected message)
BAD_INPUTS = {
    "nan flux": (1, lambda a: _set(a, (2, 7), np.nan),
                 r"^flux\[2, 7\] is nan; observations must be finite"),
    "inf flux": (1, lambda a: _set(a, (1, 0), np.inf), r"^flux\[1, 0\] is inf; observations"),
    "-inf flux": (1, lambda a: _set(a, (3, 24), -np.inf), r"^flux\[3, 24\] is -inf;"),
    "nan time": (0, lambda a: _set(a, (0, 3), np.nan), r"^times\[0, 3\] is nan; observations "
                                                        "must be finite"),
    "inf error": (2, lambda a: _set(a, (1, 30), np.inf), r"^flux_err\[1, 30\] is inf;"),
    "zero error": (2, lambda a: _set(a, (3, 4), 0.0),
                   r"^flux_err\[3, 4\] is 0\.0; flux errors must be positive$"),
    "negative error": (2, lambda a: _set(a, (1, 2), -0.1),
                       r"^flux_err\[1, 2\] is -0\.1; flux errors must be positive$"),
    "unsorted times": (0, lambda a: _set(a, (2, 5), a[2, 4] - 1),
                       r"^times\[2, 5\]=\S+ is before times\[2, 4\]=\S+; times must increase "
                       r"within an event"),
    "repeated time": (0, lambda a: _set(a, (1, 6), a[1, 5]),
                      r"^times\[1, 6\]=\S+ repeats times\[1, 5\]; times must increase strictly"),
    "nan flux in every event": (1, lambda a: _set(a, (slice(None), 1), np.nan),
                                r"^non-finite fluxes in 4 of 4 events: flux\[0, 1\] is nan, "
                                r"flux\[1, 1\] is nan, flux\[2, 1\] is nan and 1 more; "
                                r"observations must be finite"),
}


def _bad(case):
    which, change, message = BAD_INPUTS[case]
    inputs = events()
    inputs[which] = change(inputs[which])
    return inputs, message


# -- batch prediction ----------------------------------------------------------------------


def test_numpy_input_works_and_equals_torch_input(model):
    times, flux, err, mask = events()
    as_torch = [torch.from_numpy(a) for a in (times, flux, err, mask)]
    expected = model.predict_proba(*as_torch)
    got = model.predict_proba(times, flux, err, mask)
    assert isinstance(got, torch.Tensor) and got.shape == (B, N, TINY.n_classes)
    assert torch.equal(got, expected)
    assert torch.equal(model.predict_logits(times, flux, err, mask),
                       model.predict_logits(*as_torch))
    # without a mask every observation counts (the full-length first event); a batch of one
    # may take another convolution kernel than a batch of B: equal up to float32 rounding
    torch.testing.assert_close(model.predict_proba(times[:1], flux[:1], err[:1]), expected[:1],
                               rtol=1e-5, atol=1e-6)
    assert torch.isfinite(expected[torch.from_numpy(mask)]).all()


def test_padding_is_not_checked(model):
    times, flux, err, mask = events()
    flux[~mask], err[~mask], times[~mask] = np.nan, 0.0, -1.0  # padding may hold anything
    probs = model.predict_proba(times, flux, err, mask)
    assert torch.isfinite(probs[torch.from_numpy(mask)]).all()


@pytest.mark.parametrize("as_tensor", [False, True], ids=["numpy", "torch"])
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_batch_prediction_refuses_bad_inputs(model, case, as_tensor):
    inputs, message = _bad(case)
    if as_tensor:
        inputs = [torch.from_numpy(a) for a in inputs]
    with pytest.raises(InvalidLightCurveError, match=message):
        model.predict_proba(*inputs)
    with pytest.raises(InvalidLightCurveError, match=message):
        model.predict_logits(*inputs)


def test_several_problems_are_listed_together():
    times, flux, err, mask = events()
    flux[0, 1] = np.nan
    err[1, 2] = 0.0
    with pytest.raises(InvalidLightCurveError,
                       match=r"^2 problems in the light curves:\n  flux\[0, 1\] is nan; .*\n  "
                             r"flux_err\[1, 2\] is 0\.0; flux errors must be positive$"):
        check_light_curves(times, flux, err, mask)


@pytest.mark.parametrize("change, error, message", [
    (lambda t, f, e, m: (t[0], f[0], e[0], m[0]), InvalidLightCurveError,
     r"times must be 2-D \(events, observations\), got shape \(40,\); for one event pass "
     r"times\[None\]"),
    (lambda t, f, e, m: (t, f[:, :-1], e, m), InvalidLightCurveError,
     r"flux has shape \(4, 39\) but times has shape \(4, 40\); times, flux, flux_err and mask "
     r"must have one shape"),
    (lambda t, f, e, m: (t, f, e, m[:3]), InvalidLightCurveError,
     r"mask has shape \(3, 40\) but times has shape \(4, 40\)"),
    (lambda t, f, e, m: (t, f, e, m.astype(np.float32)), InvalidLightCurveError,
     r"mask must be bool \(True where an observation exists\), got dtype float32"),
    (lambda t, f, e, m: (t, f, e, _set(m, (0, slice(4, 6)), [False, True])),
     InvalidLightCurveError, r"mask\[0, 5\] is True after mask\[0, 4\] is False; mask must "
                             r"put valid observations first"),
    (lambda t, f, e, m: (t, f, e, _set(m, 1, False)), InvalidLightCurveError,
     r"mask\[1\] is all False; every event needs at least one observation"),
    (lambda t, f, e, m: (t[:, :0], f[:, :0], e[:, :0], m[:, :0]), InvalidLightCurveError,
     r"times has shape \(4, 0\): no observations"),
    (lambda t, f, e, m: (t, f.astype(str), e, m), TypeError,
     r"flux must hold real numbers, got dtype <U"),
])
def test_wrong_shapes_and_masks_are_refused(model, change, error, message):
    inputs = change(*events())
    with pytest.raises(error, match=message):
        model.predict_proba(*inputs)


# -- streaming -----------------------------------------------------------------------------


@pytest.mark.parametrize("case, update, message", [
    ("nan flux", ([5.0, 5.0], [math.nan, 1.0], [0.05, 0.05]),
     r"^fluxes\[0\] \(event 0\) is nan; observations must be finite"),
    ("inf flux", ([5.0, 5.0], [1.0, math.inf], [0.05, 0.05]),
     r"^fluxes\[1\] \(event 1\) is inf; observations must be finite"),
    ("nan time", ([math.nan, 5.0], [1.0, 1.0], [0.05, 0.05]),
     r"^times\[0\] \(event 0\) is nan; observations must be finite"),
    ("zero error", ([5.0, 5.0], [1.0, 1.0], [0.05, 0.0]),
     r"^errors\[1\] \(event 1\) is 0\.0; flux errors must be positive$"),
    ("negative error", ([5.0, 5.0], [1.0, 1.0], [-0.5, 0.05]),
     r"^errors\[0\] \(event 0\) is -0\.5; flux errors must be positive$"),
    ("unsorted times", ([5.0, 1.5], [1.0, 1.0], [0.05, 0.05]),
     r"^times\[1\]=1\.5 for event 1 is before its previous observation at 2\.0; times must "
     r"increase within an event"),
    ("repeated time", ([1.0, 5.0], [1.0, 1.0], [0.05, 0.05]),
     r"^times\[0\]=1\.0 for event 0 repeats its previous observation's time; times must "
     r"increase strictly"),
])
def test_stream_refuses_the_same_bad_inputs_and_changes_nothing(model, case, update, message):
    stream = StreamingClassifier(model, n_events=2)
    stream.update(np.array([1.0, 2.0]), np.array([1.0, 1.0], np.float32),
                  np.array([0.05, 0.05], np.float32))  # NumPy input works
    before = {k: v.clone() for k, v in stream.state_tensors().items()}
    with pytest.raises(InvalidLightCurveError, match=message):
        stream.update(*update)
    after = stream.state_tensors()
    for name, tensor in before.items():
        assert torch.equal(tensor.nan_to_num(), after[name].nan_to_num()), name


def test_stream_and_batch_state_the_same_rule(model):
    """The stream's message ends in the batch's rule for the same problem."""
    stream = StreamingClassifier(model, n_events=1)
    with pytest.raises(InvalidLightCurveError) as streamed:
        stream.update([1.0], [1.0], [0.0])
    inputs, _ = _bad("zero error")
    with pytest.raises(InvalidLightCurveError) as batched:
        model.predict_proba(*inputs)
    rule_of = lambda exc: str(exc.value).split("; ", 1)[1]  # noqa: E731
    assert rule_of(streamed) == rule_of(batched) == "flux errors must be positive"


# -- datasets: open_dataset and invalid_events ---------------------------------------------


def _corrupt(store, destination, changes):
    """A copy of ``store`` with ``{array name: [(row, observation, value), ...]}`` written."""
    path = copy_dataset(store, destination)
    offsets = store.offsets
    for name, edits in changes.items():
        array = np.load(path / f"{name}.npy", mmap_mode="r+")
        for row, obs, value in edits:
            at = offsets[row] + obs
            array[at] = array[at - 1] if value == "previous" else value
        array.flush()
        del array
    return path


def test_a_clean_dataset_opens_silently_from_its_recorded_checks(small_store, monkeypatch):
    import microlens.data.store as store_module

    def no_scan(*args, **kwargs):
        raise AssertionError("the arrays were scanned although the recorded checks apply")

    monkeypatch.setattr(store_module, "scan_invalid", no_scan)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InvalidDataWarning)
        store = open_dataset(small_store.path)
    assert store.manifest["checks"]["problems"] == {}
    assert store.invalid_events().empty
    store.require_valid(store.indices(), "everything")  # no error, no scan


def test_open_dataset_reports_bad_values_per_problem_and_split(small_store, tmp_path):
    train, val, test = (small_store.indices(s) for s in ("train", "val", "test"))
    n_obs = small_store.lengths
    path = _corrupt(small_store, tmp_path / "bad", {
        "flux": [(train[0], 3, np.nan), (train[1], 0, np.inf), (test[0], 5, np.nan)],
        "flux_err": [(val[0], 2, 0.0), (val[1], 4, -0.25)],
        "times": [(train[2], 6, "previous"), (test[1], n_obs[test[1]] - 1, -1.0)],
    })
    with pytest.warns(InvalidDataWarning, match=re.escape(
            f"7 of {len(small_store)} events have observations a model cannot use: "
            "non-finite fluxes in 3 (train 2, test 1); non-positive flux errors in 2 (val 2); "
            "times out of order in 1 (test 1); repeated times in 1 (train 1). "
            "store.invalid_events() lists them")):
        store = open_dataset(path)
    bad = store.invalid_events()
    got = {(r.event, r.split, r.problem, r.observation) for r in bad.itertuples()}
    assert got == {
        (train[0], "train", "nonfinite_flux", 3), (train[1], "train", "nonfinite_flux", 0),
        (test[0], "test", "nonfinite_flux", 5), (val[0], "val", "nonpositive_flux_err", 2),
        (val[1], "val", "nonpositive_flux_err", 4),
        (train[2], "train", "duplicate_times", 6),
        (test[1], "test", "unsorted_times", n_obs[test[1]] - 1),
    }
    values = dict(zip(bad["event"], bad["value"], strict=True))
    assert np.isnan(values[train[0]]) and values[train[1]] == np.inf
    assert values[val[1]] == np.float32(-0.25) and values[test[1]] == -1.0
    assert (bad["count"] == 1).all()
    assert set(store.invalid_events("val")["event"]) == {val[0], val[1]}
    # the warning's counts come from the same scan as a fresh one over the arrays
    fresh = scan_invalid(*store.observations.values(), store.offsets)
    assert sorted(fresh["event"].tolist()) == sorted(bad["event"].tolist())


def test_the_scan_is_chunked_without_changing_its_answer(small_store, tmp_path):
    path = _corrupt(small_store, tmp_path / "bad", {"flux": [(0, 1, np.nan), (59, 2, np.nan),
                                                             (89, 0, np.inf)]})
    with pytest.warns(InvalidDataWarning):
        store = open_dataset(path)
    arrays = (*store.observations.values(), store.offsets)
    whole = scan_invalid(*arrays, chunk_observations=10**9)
    assert whole["event"].tolist() == [0, 59, 89]
    for chunk in (1, 300 * 7, 300 * 30):  # one event per chunk, 7 and 30 events per chunk
        part = scan_invalid(*arrays, chunk_observations=chunk)
        for name in whole.dtype.names:  # field by field: NaN values equal NaN
            np.testing.assert_array_equal(part[name], whole[name], err_msg=name)


# -- evaluation ----------------------------------------------------------------------------


def test_evaluation_refuses_bad_test_events_naming_store_rows(eval_store, eval_run, tmp_path):
    test = eval_store.indices("test")
    path = _corrupt(eval_store, tmp_path / "bad", {"flux": [(test[1], 3, np.nan)],
                                                   "flux_err": [(test[4], 0, 0.0)]})
    with pytest.warns(InvalidDataWarning, match="non-finite fluxes in 1 \\(test 1\\)"):
        store = open_dataset(path)
    message = (rf"predictions read test events: 2 of {test.size} events of .* cannot use "
               rf"\(indices are \[store row, observation\]\):\n  flux\[{test[1]}, 3\] is nan; "
               rf"observations must be finite .*\n  flux_err\[{test[4]}, 0\] is 0\.0; flux "
               r"errors must be positive\nstore.invalid_events\(\) lists them all")
    with pytest.raises(InvalidLightCurveError, match=message):
        run_predictions(eval_run, store, cache=False)
    with pytest.raises(InvalidLightCurveError, match=rf"flux\[{test[1]}, 3\] is nan"):
        predict_events(load_model(eval_run), store, test[:3])
    # the clean test events are still usable, and give the clean dataset's answer
    clean_rows = np.setdiff1d(test, [test[1], test[4]])[:6]
    got, _ = run_predictions(eval_run, store, rows=clean_rows, cache=False)
    expected, _ = run_predictions(eval_run, eval_store, rows=clean_rows, cache=False)
    np.testing.assert_array_equal(got.logits, expected.logits)


# -- training ------------------------------------------------------------------------------


def _train_config(store_path, tmp_path, **overrides) -> TrainConfig:
    settings = dict(dataset=str(store_path), runs_dir=str(tmp_path / "runs"), run_name="tiny",
                    model=TINY, epochs=1, batch_size=16, patience=0, max_train_events=32,
                    max_val_events=16, seed=3)
    settings.update(overrides)
    return TrainConfig(**settings)


def test_training_refuses_unusable_train_or_val_events_before_the_run_exists(train_store,
                                                                            tmp_path):
    train_rows, val_rows = train_store.indices("train"), train_store.indices("val")
    path = _corrupt(train_store, tmp_path / "bad", {"flux": [(train_rows[0], 3, np.nan)],
                                                    "flux_err": [(val_rows[0], 1, -1.0)]})
    config = _train_config(path, tmp_path, max_train_events=0, max_val_events=0)
    message = (rf"^training reads the train and val rows it uses: 2 of "
               rf"{train_rows.size + val_rows.size} events of .*\n  flux\[{train_rows[0]}, 3\] "
               rf"is nan; observations must be finite.*\n  flux_err\[{val_rows[0]}, 1\] is "
               r"-1\.0; flux errors must be positive\nstore.invalid_events\(\) lists them all; "
               r"regenerate the dataset")
    with pytest.warns(InvalidDataWarning), pytest.raises(InvalidLightCurveError, match=message):
        train(config, progress=False)
    assert not config.run_dir.exists()
    # a bad validation event alone is refused too (it used to end in a missing best.pt)
    path = _corrupt(train_store, tmp_path / "bad_val", {"times": [(val_rows[2], 9, np.nan)]})
    config = replace(config, dataset=str(path))
    with pytest.warns(InvalidDataWarning), pytest.raises(
            InvalidLightCurveError, match=rf"1 of .*:\n  times\[{val_rows[2]}, 9\] is nan"):
        train(config, progress=False)
    assert not config.run_dir.exists()


def test_training_ignores_bad_rows_it_does_not_read(train_store, tmp_path):
    test_rows = train_store.indices("test")
    path = _corrupt(train_store, tmp_path / "bad_test", {"flux": [(test_rows[0], 0, np.nan)]})
    with pytest.warns(InvalidDataWarning, match=r"non-finite fluxes in 1 \(test 1\)"):
        run_dir = train(_train_config(path, tmp_path), progress=False)
    assert (run_dir / "best.pt").is_file()
