"""The ``features`` model kind: curve features, safe tree files, training, predictions, evaluation.

Small on purpose (PSPL fits cost ~10-40 ms each): the runs use two update fractions and a few
dozen events of the shared ``eval_store``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import ArrayStore
from threadpoolctl import threadpool_limits

from microlens.models.curve_features import FEATURE_NAMES, curve_features, prefix_features
from microlens.models.features import (
    META_FILE,
    MODEL_FILE,
    BoostedTrees,
    BoostingSettings,
    FeatureClassifier,
    load_feature_model,
    piecewise_logits,
    predict_feature_events,
    train_features,
)
from microlens.models.holdout import SplitError, observations_seen

FRACTIONS = (0.5, 1.0)


def _curve(store, row):
    ev = store.event(int(row))
    return ev["times"], ev["flux"], ev["flux_err"]


@pytest.fixture(scope="module")
def lensing_rows(eval_store):
    """A few training events of each lensing class and one flat one."""
    rows = eval_store.indices("train")
    labels = np.asarray(eval_store.labels[rows])
    return np.concatenate([rows[labels == c][:2] for c in (0, 1, 2)])


@pytest.fixture(scope="module")
def features_run(eval_store, tmp_path_factory):
    from microlens.models.config import ModelConfig
    from microlens.training.train import TrainConfig

    config = TrainConfig(dataset=str(eval_store.path), run_name="gbt",
                         runs_dir=str(tmp_path_factory.mktemp("runs")),
                         model=ModelConfig(kind="features"), seed=3, max_train_events=72,
                         max_val_events=30)
    settings = BoostingSettings(update_fractions=FRACTIONS, max_iter=40, n_iter_no_change=8,
                                min_samples_leaf=10)
    run_dir = train_features(config, settings=settings, workers=1, progress=False)
    return config, settings, run_dir


# -- features ----------------------------------------------------------------------------------


def test_features_are_finite_and_ignore_absolute_time(eval_store, lensing_rows):
    for row in lensing_rows:
        times, flux, err = _curve(eval_store, row)
        values = curve_features(times, flux, err)
        assert values.shape == (len(FEATURE_NAMES),)
        assert np.all(np.isfinite(values)), [n for n, v in zip(FEATURE_NAMES, values,
                                                              strict=True) if not np.isfinite(v)]
        shifted = curve_features(times + 2500.0, flux, err)
        np.testing.assert_array_equal(shifted, values)


def test_short_curves_give_nan_not_errors(eval_store, lensing_rows):
    times, flux, err = _curve(eval_store, lensing_rows[0])
    for n in (1, 2, 4):
        values = dict(zip(FEATURE_NAMES, curve_features(times[:n], flux[:n], err[:n]),
                          strict=True))
        assert np.isnan(values["u_0"]) and np.isnan(values["t_E"])  # no PSPL fit
        assert values["n_observations"] == n and values["dchi2_event"] == 0.0
    with pytest.raises(ValueError, match="at least one observation"):
        curve_features(times[:0], flux[:0], err[:0])


def test_prefix_features_read_only_the_prefix(eval_store, lensing_rows):
    events = [_curve(eval_store, row) for row in lensing_rows[-2:]]  # binaries
    changed = []
    for times, flux, err in events:
        seen = int(observations_seen(times.size, 0.5))
        later = flux.copy()
        later[seen:] = later[seen:] * 3.0 + 1.0  # rewrite everything after the prefix
        changed.append((times, later, err))
    before = prefix_features(ArrayStore(events), [0, 1], (0.25, 0.5, 1.0))
    after = prefix_features(ArrayStore(changed), [0, 1], (0.25, 0.5, 1.0))
    np.testing.assert_array_equal(after[:, :2], before[:, :2])
    assert not np.allclose(after[:, 2], before[:, 2], equal_nan=True)


@pytest.mark.slow  # seconds long: PSPL fits of prefixes in worker processes
def test_worker_count_does_not_change_features(eval_store, lensing_rows):
    one = prefix_features(eval_store, lensing_rows, FRACTIONS, workers=1)
    two = prefix_features(eval_store, lensing_rows, FRACTIONS, workers=2)
    assert one.shape == (lensing_rows.size, len(FRACTIONS), len(FEATURE_NAMES))
    np.testing.assert_array_equal(one, two)


def test_bad_feature_inputs_are_named(eval_store):
    with pytest.raises(ValueError, match="empty"):
        prefix_features(eval_store, [], FRACTIONS)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        prefix_features(eval_store, [0], (0.5, 1.5))
    with pytest.raises(ValueError, match="workers"):
        prefix_features(eval_store, [0], FRACTIONS, workers=0)
    with pytest.raises(ValueError, match="increase strictly"):
        BoostingSettings(update_fractions=(0.5, 0.25, 1.0))
    with pytest.raises(ValueError, match="end with 1.0"):
        BoostingSettings(update_fractions=(0.25, 0.5))
    with pytest.raises(ValueError, match="unknown BoostingSettings"):
        BoostingSettings.from_dict({"max_depth": 3})


# -- safe persistence --------------------------------------------------------------------------


def test_saved_trees_predict_as_sklearn(tmp_path):
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 6))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.3)
    X[rng.random(X.shape) < 0.15] = np.nan  # missing values in training: learned directions
    with threadpool_limits(limits=1, user_api="openmp"):  # fast on a busy machine
        clf = HistGradientBoostingClassifier(max_iter=25, categorical_features=None,
                                             random_state=0).fit(X, y)
    trees = BoostedTrees.from_sklearn(clf)
    path = tmp_path / "trees.npz"
    np.savez(path, **trees.to_arrays())
    with np.load(path, allow_pickle=False) as data:
        loaded = BoostedTrees.from_arrays({name: data[name] for name in data.files})
    model = FeatureClassifier(loaded, feature_names=[f"x{i}" for i in range(6)])
    X_test = rng.normal(size=(500, 6)) * 2
    X_test[rng.random(X_test.shape) < 0.2] = np.nan
    with threadpool_limits(limits=1, user_api="openmp"):
        expected = clf.predict_proba(X_test)
    np.testing.assert_allclose(model.predict_proba_features(X_test), expected, rtol=0,
                               atol=1e-10)
    assert model.n_parameters == sum(t.nodes.size for it in clf._predictors for t in it)
    with pytest.raises(ValueError, match="6 features"):
        model.predict_proba_features(X_test[:, :5])


def test_categorical_trees_are_refused():
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(1)
    X = np.column_stack([rng.integers(0, 4, 300), rng.normal(size=300)]).astype(float)
    y = rng.integers(0, 3, 300)
    with threadpool_limits(limits=1, user_api="openmp"):
        clf = HistGradientBoostingClassifier(max_iter=3, categorical_features=[0]).fit(X, y)
    with pytest.raises(ValueError, match="categorical"):
        BoostedTrees.from_sklearn(clf)


def test_piecewise_logits_are_causal_steps():
    answers = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3) + 1
    fractions = (0.25, 0.5, 1.0)
    out = piecewise_logits(np.array([8, 4]), answers, fractions)
    assert out.shape == (2, 8, 3)
    np.testing.assert_array_equal(out[0, :1], 0)  # ceil(0.25 * 8) = 2 observations: position 1
    np.testing.assert_array_equal(out[0, 1:3], answers[0, [0, 0]])
    np.testing.assert_array_equal(out[0, 3:7], answers[0, [1] * 4])
    np.testing.assert_array_equal(out[0, 7], answers[0, 2])
    np.testing.assert_array_equal(out[1, :4], answers[1, [0, 1, 1, 2]])


# -- training, loading, predicting, evaluating -------------------------------------------------


def test_train_features_writes_a_run_that_load_model_reads(features_run):
    from microlens.models.registry import load_model
    from microlens.models.runs import HISTORY_COLUMNS, RunExistsError, read_history, read_metrics

    config, settings, run_dir = features_run
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["train"] == config.to_dict() and saved["model"]["kind"] == "features"
    assert saved["features"] == settings.to_dict()
    metrics = read_metrics(run_dir)
    history = read_history(run_dir)
    assert list(history[0]) == list(HISTORY_COLUMNS)
    assert len(history) == metrics["epochs_run"] >= metrics["best_epoch"] >= 1
    assert metrics["temperature_fit"] == "final" and metrics["temperature"] > 0
    assert (metrics["n_train_events"], metrics["n_val_events"]) == (72, 30)
    assert metrics["device"] == "cpu" and metrics["train_events_per_second"] > 0
    assert not (run_dir / "normalization.json").exists()

    model = load_model(run_dir)
    assert isinstance(model, FeatureClassifier)
    assert (model.kind, model.has_attention) == ("features", False)
    assert model.n_iterations == metrics["best_epoch"]
    assert model.n_parameters == metrics["n_parameters"] == saved["n_parameters"] > 0
    assert model.update_fractions == FRACTIONS and model.temperature == metrics["temperature"]
    assert load_feature_model(run_dir, "last").n_iterations == metrics["epochs_run"]
    with np.load(run_dir / MODEL_FILE, allow_pickle=False) as data:  # plain arrays only
        assert all(data[name].dtype != object for name in data.files)

    with pytest.raises(RunExistsError, match="resume"):
        train_features(config, settings=settings, progress=False)
    stamp = (run_dir / META_FILE).stat().st_mtime_ns
    assert train_features(config, settings=settings, resume=True, progress=False) == run_dir
    assert (run_dir / META_FILE).stat().st_mtime_ns == stamp  # finished: not trained again
    with pytest.raises(ValueError, match="differs"):
        train_features(config, settings=BoostingSettings(update_fractions=FRACTIONS, max_iter=5),
                       resume=True, progress=False)


def test_train_features_refuses_other_kinds(eval_store, tmp_path):
    from microlens.models.config import ModelConfig
    from microlens.training.train import TrainConfig

    config = TrainConfig(dataset=str(eval_store.path), run_name="x", runs_dir=str(tmp_path),
                         model=ModelConfig(kind="transformer"))
    with pytest.raises(ValueError, match="kind='transformer'"):
        train_features(config, progress=False)


def test_predictions_are_piecewise_constant_and_causal(features_run, eval_store):
    *_, run_dir = features_run
    model = load_feature_model(run_dir)
    rows = eval_store.indices("test")[:6]
    predictions = predict_feature_events(model, eval_store, rows)
    assert predictions.info["update_fractions"] == list(FRACTIONS)
    assert predictions.temperature == model.temperature and predictions.temperature_curve is None
    features = prefix_features(eval_store, rows, FRACTIONS)
    expected = np.log(model.predict_proba_features(features))
    for i, n in enumerate(predictions.lengths):
        ends = observations_seen(n, 0.5) - 1, n - 1
        logits = predictions.logits[i, :n]
        np.testing.assert_array_equal(logits[: ends[0]], 0)  # no answer before the first update
        np.testing.assert_allclose(logits[ends[0] : ends[1]], np.repeat(
            expected[i, 0][None], ends[1] - ends[0], axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(logits[ends[1]], expected[i, 1], rtol=1e-5, atol=1e-6)
    # one curve at a time gives the same answers
    curve = model.predict_curve(*_curve(eval_store, rows[0]))
    np.testing.assert_allclose(curve, predictions.logits[0, : predictions.lengths[0]], atol=1e-6)
    with pytest.raises(SplitError):
        predict_feature_events(model, eval_store, eval_store.indices("train")[:2])
    with pytest.raises(ValueError, match="empty"):
        predict_feature_events(model, eval_store, [])


def test_evaluate_run_on_a_features_run(features_run, eval_store):
    from microlens.evaluation.evaluate import evaluate_run
    from microlens.evaluation.predictions import run_predictions

    *_, run_dir = features_run
    summary, predictions = evaluate_run(run_dir, n_events=18, n_bootstrap=20, peer=False)
    assert summary["model_kind"] == "features"
    assert summary["timing"]["kind"] == "features" and "transformer" not in summary["timing"]
    assert summary["timing"]["model"]["seconds_per_event"] > 0
    head = summary["headline"]
    assert head["model_kind"] == "features" and head["model_seconds_per_event"] > 0
    assert 0.0 <= head["accuracy"] <= 1.0
    assert predictions.info["update_fractions"] == list(FRACTIONS)
    assert len(list((run_dir / "predictions").glob("*.npz"))) == 1
    # the cache is keyed on the trees: asking again reads it
    again, _ = run_predictions(run_dir, rows=predictions.rows)
    np.testing.assert_array_equal(again.logits, predictions.logits)


# -- the common input contract -----------------------------------------------------------------


def test_predict_curve_checks_its_one_curve_and_answers_short_curves_uniformly(features_run,
                                                                              eval_store):
    import torch

    from microlens.core.validation import InvalidLightCurveError

    *_, run_dir = features_run
    model = load_feature_model(run_dir)
    times, flux, err = _curve(eval_store, eval_store.indices("test")[0])
    with pytest.raises(InvalidLightCurveError, match=r"times must be 1-D, got shape \(2, \d+\); "
                                                     r"for a batch .* use predict_proba"):
        model.predict_curve(np.stack([times, times]), np.stack([flux, flux]),
                            np.stack([err, err]))
    bad = flux.copy()
    bad[4] = np.nan
    with pytest.raises(InvalidLightCurveError, match=r"flux\[0, 4\] is nan"):
        model.predict_curve(times, bad, err)
    with pytest.raises(InvalidLightCurveError, match=r"times\[0, 1\]=.* is before"):
        model.predict_curve(times[::-1], flux, err)
    with pytest.raises(InvalidLightCurveError, match=r"flux_err\[0, 2\] is inf"):
        model.predict_curve(times, flux, np.r_[err[:2], np.inf, err[3:]])
    # fewer observations than a PSPL fit needs: the uniform answer (zero logits), never a class
    for n in (1, 2, 5):
        np.testing.assert_array_equal(model.predict_curve(times[:n], flux[:n], err[:n]), 0.0)
        proba = model.predict_proba(times[None, :n], flux[None, :n], err[None, :n])
        torch.testing.assert_close(proba, torch.full((1, n, 3), 1 / 3))
    assert np.any(model.predict_curve(times[:12], flux[:12], err[:12]) != 0)


def test_predict_proba_is_predict_curve_per_event_as_a_padded_batch(features_run, eval_store):
    import torch

    *_, run_dir = features_run
    model = load_feature_model(run_dir)
    rows = eval_store.indices("test")[:3]
    events = [_curve(eval_store, row) for row in rows]
    lengths = [min(len(t), n) for (t, _, _), n in zip(events, (80, 40, 60), strict=True)]
    width = max(lengths)
    padded = [np.zeros((3, width)) for _ in range(3)]
    mask = np.arange(width)[None, :] < np.array(lengths)[:, None]
    for i, (event, n) in enumerate(zip(events, lengths, strict=True)):
        for array, values in zip(padded, event, strict=True):
            array[i, :n] = values[:n]
    logits = model.predict_logits(*padded, mask)
    proba = model.predict_proba(*padded, mask)
    assert isinstance(proba, torch.Tensor) and tuple(proba.shape) == (3, width, 3)
    for i, ((times, flux, err), n) in enumerate(zip(events, lengths, strict=True)):
        curve = model.predict_curve(times[:n], flux[:n], err[:n])
        np.testing.assert_allclose(logits[i, :n].numpy(), curve, rtol=0, atol=1e-6)
        np.testing.assert_allclose(logits[i, n:].numpy(), np.broadcast_to(curve[-1], (width - n,
                                                                                    3)))
        expected = torch.softmax(torch.from_numpy(curve) / model.temperature, dim=-1)
        torch.testing.assert_close(proba[i, :n], expected)
    uncalibrated = model.predict_proba(*padded, mask, calibrated=False)
    torch.testing.assert_close(uncalibrated, logits.softmax(-1))


def test_broken_features_files_name_the_file(features_run, tmp_path):
    import shutil

    from microlens.models.runs import RunFileError

    *_, run_dir = features_run
    copy = tmp_path / "gbt"
    shutil.copytree(run_dir, copy)
    trees = (copy / MODEL_FILE).read_bytes()
    (copy / MODEL_FILE).write_bytes(trees[: len(trees) // 2])
    with pytest.raises(RunFileError, match=rf"{copy / MODEL_FILE} is truncated or not an .npz "
                                           rf"archive \({len(trees) // 2} bytes\)"):
        load_feature_model(copy)
    (copy / MODEL_FILE).write_bytes(trees)
    (copy / META_FILE).write_text('{"format_version": 1,')
    with pytest.raises(RunFileError, match=rf"{copy / META_FILE} is not valid JSON"):
        load_feature_model(copy)


def test_the_features_kind_reports_its_fits_parameters_at_its_update_points(features_run,
                                                                            eval_store):
    from microlens.models.online_fit import fit_point_lens

    *_, run_dir = features_run
    model = load_feature_model(run_dir)
    row = int(eval_store.indices("test")[np.flatnonzero(
        eval_store.labels[eval_store.indices("test")] == 1)[0]])
    times, flux, err = _curve(eval_store, row)
    answer = model.update_parameters(times, flux, err)
    n = times.size
    np.testing.assert_array_equal(answer["counts"],
                                  [observations_seen(n, f) for f in FRACTIONS])
    assert answer["mean"].shape == answer["sigma"].shape == (len(FRACTIONS), 4)
    last = fit_point_lens(times, flux, err)  # the final update is the fit of the whole curve
    np.testing.assert_array_equal(answer["mean"][-1], last["mean"])
    assert answer["ok"][-1] == last["ok"]
