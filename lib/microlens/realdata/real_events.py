"""Real light curves through a trained model and the classical peer (notebook 07).

A model trained on simulations meets survey photometry here: the real events MulensModel ships
(:func:`microlens.photometry.files.shipped_events`, with their published classes) or a user's own
files (:func:`microlens.photometry.files.read_event`). For each event:

* the model (any kind of :data:`microlens.models.registry.KINDS`) runs **once** over the whole
  curve (:func:`classify_event`). It is causal, so its answer after observation ``k`` uses
  observations ``1..k`` only: the per-observation output of that one pass *is* the streaming
  replay (what it would have said in real time), at a cost of ``O(N * window)`` for a
  transformer and a curve of ``N`` points (OB161195 has 10,216). The ``features`` kind answers
  at its update fractions of the curve, each answer held until the next;
* the **peak** is the brightest point of a 5-point running median of the flux (robust to
  single outliers); the model's answer after that observation and the peer's on the curve cut
  there say what each knew when the event peaked;
* the **first confident** observation of each class is the first at which the model gave it
  probability ``>= confidence``;
* the **classical peer** (:mod:`microlens.models.peer`), tuned on the validation split of the
  run's own data set (:func:`tune_peer`) so its thresholds belong to the survey preset the model
  was trained on, classifies the whole curve and the curve up to the peak, with its robust
  error-bar rescaling (``error_scale``: real error bars are often too small);
* the share of the curve's time intervals outside the range the model was trained on (real
  curves have gaps of months and intervals of seconds; answers there are extrapolations).

:func:`classify_events` does this for several events and returns a JSON-ready record (one entry
per event plus a summary table) and, apart, the arrays behind the figures (times, fluxes,
observatories and the probabilities after every observation), which :func:`save_series` writes
to ``real_events_series.npz`` (plain arrays, no pickle) beside the record, so
:mod:`microlens.workflow.figures` redraws the figures without running the model again.

Usage::

    from microlens.realdata.real_events import classify_events, save_series record, series =
    classify_events("outputs/runs/quick")          # the six shipped events record["summary"]
    # one row per event save_series("outputs/lab/real_events_series.npz", series)
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from microlens.core.classes import CLASS_LABELS, CLASS_NAMES
from microlens.core.paths import atomic_path, project_relative, resolve_path
from microlens.models.peer import DEFAULT_OUTLIER_CLIP, ClassicalPeer

PEAK_WINDOW = 5
"""Points in the running median of the flux whose maximum is the peak."""

SERIES_FILE = "real_events_series.npz"
"""What notebook 07 writes beside ``real_events.json``: see :func:`save_series`."""

SERIES_FIELDS = ("times", "flux", "flux_err", "observatory", "probabilities")
"""Arrays kept per event in the series: times [days after the event's ``reference_epoch``],
flux [baseline units], 1-sigma errors, observatory code per point, and the model's class
probabilities ``(N, 3)`` after every observation."""

_PEER_FIELDS = ("n", "dchi2_event", "excess", "anomaly", "error_scale", "outliers", "t_0",
                "u_0", "t_E")


class Classified(NamedTuple):
    """What :func:`classify_events` returns: ``record`` (JSON-ready) and ``series``
    (``{event name: {field: array}}``, :data:`SERIES_FIELDS`, in the record's event order)."""

    record: dict
    series: dict[str, dict[str, np.ndarray]]


# --------------------------------------------------------------------------------------------
# The classical peer of a run
# --------------------------------------------------------------------------------------------


def tune_peer(store, workers: int = 1, progress: bool = False, **options) -> ClassicalPeer:
    """The classical peer tuned on the validation split of ``store``.

    Tune it on the run's own data set: the peer's thresholds (Δχ² of an event, size of an
    anomaly) then belong to the survey preset, cadence and noise the model was trained on, and
    both classifiers meet a real curve with what the same simulations taught them.

    Parameters
    ----------
    store : LightCurveStore
        The data set (its ``indices("val")`` are read, nothing else).
    workers : int
        Processes for the peer's fits (:func:`microlens.models.peer.peer_features`).
    progress : bool
        Show a progress bar.
    **options
        ``error_rescaling`` and ``outlier_clip`` (feature options, default the robust ones),
        ``binary_feature`` and ``max_candidates`` (:meth:`ClassicalPeer.tune`).

    Returns
    -------
    ClassicalPeer

    Raises
    ------
    ValueError
        When the data set has no validation events, or for an unknown option.
    """
    from microlens.models.peer import peer_features

    feature_options = {"error_rescaling": options.pop("error_rescaling", "pspl"),
                       "outlier_clip": options.pop("outlier_clip", DEFAULT_OUTLIER_CLIP)}
    unknown = set(options) - {"binary_feature", "max_candidates"}
    if unknown:
        raise ValueError(f"unknown tune_peer option(s) {', '.join(sorted(unknown))}; valid: "
                         "error_rescaling, outlier_clip, binary_feature, max_candidates")
    rows = np.asarray(store.indices("val"))
    if rows.size == 0:
        raise ValueError(f"{getattr(store, 'path', 'the data set')} has no validation events to "
                         "tune the classical peer on")
    features = peer_features(store, rows, workers=workers, progress=progress,
                             **feature_options)[:, 0]
    labels = np.asarray(store.labels[rows], dtype=np.int64)
    return ClassicalPeer.tune(features, labels, **feature_options, **options)


# --------------------------------------------------------------------------------------------
# One event
# --------------------------------------------------------------------------------------------


def _plain(value):
    """A JSON-ready scalar: NumPy numbers as Python ones, NaN and infinities as None."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _class(label: int) -> dict:
    return {"class": int(label), "name": CLASS_NAMES[int(label)],
            "display": CLASS_LABELS[int(label)]}


def peak_index(flux: np.ndarray, window: int = PEAK_WINDOW) -> int:
    """The peak observation: the maximum of the ``window``-point running median of the flux
    (:func:`microlens.simulation.pspl_fit.running_median`), so one bright outlier is not the peak;
    the
    first such observation on ties."""
    from microlens.simulation.pspl_fit import running_median

    flux = np.asarray(flux, dtype=np.float64)
    if flux.size == 0:
        raise ValueError("a light curve needs at least one observation, got none")
    return int(np.argmax(running_median(flux, window)))


def model_inputs(photometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``times, flux, flux_err`` for the model, shape ``(1, N)``.

    Times are days after the first observation (an origin changes nothing: the model sees time
    differences only) as float32, which keeps ~1e-5 d resolution over a season; when float32
    would merge two observations (seconds apart on a curve of years) they stay float64.
    """
    times = np.asarray(photometry.times, dtype=np.float64)
    relative = times - times[0]
    as32 = relative.astype(np.float32)
    keep = as32 if as32.size < 2 or bool(np.all(np.diff(as32) > 0)) else relative
    return (keep[None, :], np.asarray(photometry.flux, np.float32)[None, :],
            np.asarray(photometry.flux_err, np.float32)[None, :])


def _is_features(model) -> bool:
    return getattr(model, "kind", None) == "features"


def _probabilities(model, times, flux, flux_err) -> np.ndarray:
    from microlens.models.inputs import IntervalRangeWarning

    # every kind answers predict_proba alike (the features kind at its update fractions, each
    # answer held until the next); the training range is reported once by the caller
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IntervalRangeWarning)
        proba = model.predict_proba(times, flux, flux_err, check_intervals=False)
    return proba[0].float().cpu().numpy()


def _outside_intervals(model, times: np.ndarray) -> dict:
    import torch

    dt = np.diff(np.asarray(times, dtype=np.float64))
    if _is_features(model):  # no interval normalisation, so no training range to leave
        return {"count": None, "fraction": None, "n_intervals": int(dt.size),
                "training_range_days": None}
    if dt.size == 0:
        return {"count": 0, "fraction": 0.0, "n_intervals": 0,
                "training_range_days": _training_range(model)}
    outside = model.normalization.outside_training_intervals(torch.as_tensor(dt))
    count = int(outside.sum())
    return {"count": count, "fraction": count / dt.size, "n_intervals": int(dt.size),
            "training_range_days": _training_range(model)}


def _training_range(model) -> list:
    norm = model.normalization
    return [_plain(float(norm.dt_min)), _plain(float(norm.dt_max))]


def _peer_answer(peer: ClassicalPeer, times, flux, flux_err) -> dict:
    features = peer.features(times, flux, flux_err)
    row = np.zeros(1, dtype=[(k, np.float64) for k in ("dchi2_event", "excess", "anomaly")])
    for key in row.dtype.names:
        row[key] = features[key]
    label = int(peer.predict(row)[0])
    return {**_class(label), **{k: _plain(features[k]) for k in _PEER_FIELDS}}


class TrainingRangeWarning(UserWarning):
    """A real light curve lies outside what the model was trained on (intervals between
    observations, number of observations, error bars): its answers there are extrapolations.

    :func:`classify_event` emits at most one per event, naming the event, what is outside (with
    the numbers) and the remedy.
    """


ERROR_SPREAD_LIMIT = 4.0
"""How many training standard deviations the median log relative error of a curve may lie from
the training mean before :func:`training_range_problems` reports it."""


def training_range_problems(model, times: np.ndarray, flux_err: np.ndarray) -> list[str]:
    """What of one curve lies outside the model's training range, one phrase each (empty: none).

    Checked where the model records the range: the intervals between observations against
    the normalisation's ``[dt_min, dt_max]`` (neural kinds; when every interval is outside, the
    times are probably in another unit than days), the number of observations against the
    training set's longest curve (``dataset_manifest.max_observations`` of the run's
    ``config.json``, which :func:`microlens.models.registry.load_model` attaches), and the median
    log relative error against the training spread (``err_mean``, ``err_std`` of a fitted
    normalisation, not the defaults; :data:`ERROR_SPREAD_LIMIT` standard deviations).
    """
    import torch

    problems = []
    times = np.asarray(times, dtype=np.float64)
    norm = getattr(model, "normalization", None)
    dt = np.diff(times)
    if norm is not None and dt.size:
        outside = model.normalization.outside_training_intervals(torch.as_tensor(dt)).numpy()
        if outside.any():
            text = (f"{int(outside.sum())} of {dt.size} intervals between observations "
                    f"(from {dt.min():.4g} to {dt.max():.4g} days) lie outside the training "
                    f"range [{norm.dt_min:.4g}, {norm.dt_max:.4g}] days")
            if outside.all():
                text += (" (all of them: are the times in days? years or seconds read as days "
                         "put every interval outside)")
            problems.append(text)
    manifest = getattr(model, "dataset_manifest", None) or {}
    longest = manifest.get("max_observations")
    if isinstance(longest, (int, np.integer)) and longest > 0 and times.size > longest:
        problems.append(f"{times.size} observations, beyond the longest training curve "
                        f"({int(longest)})")
    fitted = norm is not None and (norm.err_mean, norm.err_std) != (0.0, 1.0)  # not defaults
    if fitted and np.isfinite(norm.err_std) and norm.err_std > 0:
        typical = float(np.median(np.log(np.asarray(flux_err, dtype=np.float64))))
        spread = (typical - norm.err_mean) / norm.err_std
        if abs(spread) > ERROR_SPREAD_LIMIT:
            problems.append(f"the median relative error {math.exp(typical):.3g} lies "
                            f"{abs(spread):.1f} training standard deviations from the training "
                            f"median ({math.exp(norm.err_mean):.3g}); are the errors in "
                            "baseline-flux units?")
    return problems


def _check_arguments(model, photometry, peer, confidence) -> None:
    """TypeError / ValueError for arguments :func:`classify_event` cannot use."""
    if isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a loaded model, got the path {str(model)!r}: use "
                        "microlens.models.registry.load_model(path)")
    if not callable(getattr(model, "predict_proba", None)):
        raise TypeError(f"model must be a loaded model of a kind in "
                        f"microlens.models.registry.KINDS "
                        f"(with predict_proba), got {type(model).__name__}: use "
                        "microlens.models.registry.load_model(run_dir)")
    missing = [a for a in ("times", "flux", "flux_err") if not hasattr(photometry, a)]
    if missing:
        raise TypeError(f"photometry must be a Photometry (times, flux, flux_err), got "
                        f"{type(photometry).__name__} without {', '.join(missing)}: read files "
                        "with microlens.photometry.files.read_event(path)")
    if peer is not None and not isinstance(peer, ClassicalPeer):
        raise TypeError(f"peer must be a ClassicalPeer (microlens.realdata.real_events.tune_peer) "
                        f"or "
                        f"None, got {type(peer).__name__}")
    if isinstance(confidence, (bool, np.bool_)) or not isinstance(confidence, (int, float,
                                                                               np.integer,
                                                                               np.floating)):
        raise TypeError(f"confidence must be a number in (0, 1], got {confidence!r} "
                        f"({type(confidence).__name__})")
    if not 0 < float(confidence) <= 1:  # NaN fails too
        raise ValueError(f"confidence must lie in (0, 1], got {confidence!r}")


def classify_event(model, photometry, peer: ClassicalPeer | None = None,
                   confidence: float = 0.9) -> dict:
    """Classify one real light curve after every observation, and at its peak and end.

    Parameters
    ----------
    model : CausalClassifier or FeatureClassifier
        A trained model of any kind (:func:`microlens.models.registry.load_model`), on any device.
        The ``features`` kind answers at its update fractions (its probabilities hold from one
        update to the next, uniform before the first).
    photometry : Photometry
        The light curve (:func:`microlens.photometry.files.read_event` and friends): ``times``
        [days after ``reference_epoch``], ``flux`` [baseline units], ``flux_err``.
    peer : ClassicalPeer, optional
        The classical peer (:func:`tune_peer`); None leaves its answers out (``peer`` None).
    confidence : float
        Probability in (0, 1] at which a class counts as reached.

    Returns
    -------
    dict
        JSON-ready (NaN written as None):

        * ``name``, ``n_points``, ``span_days``, ``observatories`` (names),
          ``points_per_observatory``, ``reference_epoch`` (full JD of time 0),
          ``first_time`` / ``last_time`` [days after it];
        * ``probabilities``: ``N`` lists of 3 floats, the calibrated class probabilities after
          every observation (the streaming replay);
        * ``peak``: ``index``, ``time`` [days after ``reference_epoch``], ``hjd`` (full date in
          the file's time system, HJD for the shipped events), ``flux`` (running median);
        * ``model``: ``at_peak`` and ``at_end``, each ``class``, ``name``, ``display`` and
          ``probabilities`` (3 floats);
        * ``first_confident``: per class name, None if never reached, else ``index``,
          ``days_from_peak``, ``hjd`` and ``probability`` of the first observation with
          probability ``>= confidence``;
        * ``peer``: None without a peer, else ``at_peak`` (curve cut after the peak
          observation) and ``at_end``, each ``class``, ``name``, ``display`` and the features
          ``n, dchi2_event, excess, anomaly, error_scale, outliers, t_0, u_0, t_E``;
        * ``outside_training_intervals``: ``count``, ``fraction`` and ``n_intervals`` of the
          intervals between consecutive observations outside the model's training range,
          ``training_range_days`` (``count``, ``fraction`` and the range None for the
          ``features`` kind, which has no such range).
        * ``read_as``: how the reader read the file(s) and why (columns, time system, kind,
          baseline, sorting: :attr:`microlens.photometry.files.Photometry.choices`; empty for
          arrays that did not come from a file).

    Raises
    ------
    TypeError
        For a path or anything else in place of a loaded model (load it with
        :func:`microlens.models.registry.load_model`), a ``photometry`` without ``times``, ``flux``
        and ``flux_err``, a ``peer`` that is not a :class:`ClassicalPeer`, a ``confidence``
        that is not a number (``True`` included; NumPy numbers are numbers).
    ValueError
        For a ``confidence`` outside (0, 1];
        :class:`~microlens.core.validation.InvalidLightCurveError`
        for unusable observations, naming the event and the observation.

    Warns
    -----
    TrainingRangeWarning
        Once per call, when the curve lies outside the model's training range
        (:func:`training_range_problems`: intervals, length, error bars), naming the event,
        what is outside with its numbers, and the remedy.
    """
    from microlens.core.validation import check_light_curves

    _check_arguments(model, photometry, peer, confidence)
    confidence = float(confidence)
    label = str(getattr(photometry, "name", "") or "the light curve")
    times = np.asarray(photometry.times, dtype=np.float64)
    flux = np.asarray(photometry.flux, dtype=np.float64)
    flux_err = np.asarray(photometry.flux_err, dtype=np.float64)
    n = int(times.size)
    if n == 0 or times.ndim != 1:
        raise ValueError(f"{label} has no observations" if n == 0 else
                         f"{label}: times must be 1-D, got shape {times.shape}")
    check_light_curves(times[None], flux[None], flux_err[None], events=[label])
    problems = training_range_problems(model, times, flux_err)
    if problems:
        warnings.warn(f"{label} lies outside the model's training range: "
                      f"{'; '.join(problems)}. Its answers there are extrapolations: check the "
                      "units, or classify it with a model trained on a data set that covers "
                      "such curves (survey preset, cadence, length)", TrainingRangeWarning,
                      stacklevel=2)
    epoch = float(getattr(photometry, "reference_epoch", 0.0))
    proba = _probabilities(model, *model_inputs(photometry))
    predicted = proba.argmax(axis=1)
    peak = peak_index(flux)

    from microlens.simulation.pspl_fit import running_median

    def answer(k: int) -> dict:
        return {**_class(predicted[k]), "probabilities": [float(p) for p in proba[k]]}

    first = {}
    for label, name in enumerate(CLASS_NAMES):
        reached = np.flatnonzero(proba[:, label] >= confidence)
        first[name] = None if reached.size == 0 else {
            "index": int(reached[0]),
            "days_from_peak": float(times[reached[0]] - times[peak]),
            "hjd": float(epoch + times[reached[0]]),
            "probability": float(proba[reached[0], label]),
        }
    codes = np.asarray(getattr(photometry, "observatory", np.zeros(n, np.int64)))
    names = list(getattr(photometry, "observatories", ("",)))
    return {
        "name": str(getattr(photometry, "name", "")),
        "n_points": n,
        "span_days": float(times[-1] - times[0]),
        "observatories": names,
        "points_per_observatory": [int(np.sum(codes == i)) for i in range(len(names))],
        "reference_epoch": epoch,
        "first_time": float(times[0]),
        "last_time": float(times[-1]),
        "confidence": float(confidence),
        "probabilities": proba.astype(np.float64).tolist(),
        "peak": {"index": peak, "time": float(times[peak]), "hjd": float(epoch + times[peak]),
                 "flux": float(running_median(flux, PEAK_WINDOW)[peak])},
        "model": {"at_peak": answer(peak), "at_end": answer(n - 1)},
        "first_confident": first,
        "peer": None if peer is None else {
            "at_peak": _peer_answer(peer, times[:peak + 1], flux[:peak + 1],
                                    flux_err[:peak + 1]),
            "at_end": _peer_answer(peer, times, flux, flux_err),
        },
        "outside_training_intervals": _outside_intervals(model, times),
        "read_as": [str(c) for c in getattr(photometry, "choices", ())],
    }


# --------------------------------------------------------------------------------------------
# Several events
# --------------------------------------------------------------------------------------------


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.") or "event"


def _unique(name: str, taken: set) -> str:
    candidate, k = name, 2
    while candidate in taken:
        candidate, k = f"{name}-{k}", k + 1
    taken.add(candidate)
    return candidate


def _read(item, shipped: Mapping) -> tuple[Any, dict]:
    """Photometry of one requested event and what is known of it (published class ...)."""
    from microlens.photometry.files import Photometry, read_event, read_shipped_event

    if isinstance(item, Photometry):
        return item, {"source": "photometry", "files": list(item.source_files)}
    if isinstance(item, str) and item in shipped:
        ev = shipped[item]
        return read_shipped_event(item), {
            "source": "shipped", "files": [str(p) for p in ev.paths],
            "published_class": int(ev.published_class), "published_note": ev.published_note,
            "reference": ev.reference}
    if isinstance(item, str | os.PathLike):
        path = resolve_path(item)
        if not path.exists():
            raise FileNotFoundError(
                f"{item!r} is neither a shipped event ({', '.join(shipped)}) nor an existing "
                "file or directory")
        return read_event(path), {"source": "file", "files": [project_relative(path)]}
    paths = [resolve_path(p) for p in item]
    return read_event(paths), {"source": "file", "files": [project_relative(p) for p in paths]}


def _summary_row(name: str, entry: dict) -> dict:
    published = entry.get("published_class")
    model_end = entry["model"]["at_end"]["class"]
    peer = entry["peer"]

    def shown(answer):
        return None if answer is None else answer["display"]

    return {
        "event": name,
        "published_class": None if published is None else CLASS_LABELS[published],
        "model_at_peak": entry["model"]["at_peak"]["display"],
        "model_at_end": entry["model"]["at_end"]["display"],
        "peer_at_peak": shown(peer and peer["at_peak"]),
        "peer_at_end": shown(peer and peer["at_end"]),
        "correct": None if published is None else bool(model_end == published),
        "peer_correct": (None if published is None or peer is None
                         else bool(peer["at_end"]["class"] == published)),
    }


def classify_events(run_dir, events: Iterable | None = None, confidence: float = 0.9, *,
                    files: Sequence = (), peer: bool | ClassicalPeer = True,
                    peer_workers: int = 1, device: str = "auto", which: str = "best",
                    progress: bool = False) -> Classified:
    """Classify real events with a trained run and its classical peer.

    Parameters
    ----------
    run_dir : path
        A run directory written by :func:`microlens.training.train.train` (relative: from the
        project root).
    events : iterable, optional
        Events to classify, each a shipped event's name (:func:`~microlens.photometry.files.
        shipped_events`), a path (a file, or a directory of one event's files, one per
        observatory), a sequence of paths (one event) or a :class:`~microlens.photometry.files.
        Photometry`. None means every shipped event (KB180003 is not one: its data were
        modified); an empty sequence, none of them.
    confidence : float
        Probability at which a class counts as reached (:func:`classify_event`).
    files : sequence
        More events given as paths (as in ``events``), after them: the user's own files.
    peer : bool or ClassicalPeer
        True tunes the classical peer on the run's data set (:func:`tune_peer`); False leaves
        it out; a :class:`ClassicalPeer` is used as given.
    peer_workers : int
        Processes for tuning the peer.
    device : {'auto', 'cpu', 'cuda'}
        Where the model runs.
    which : {'best', 'last'}
        Checkpoint.
    progress : bool
        Show progress bars.

    Returns
    -------
    Classified
        ``record``: ``run_dir``, ``dataset_dir`` (the run's data set), ``confidence``,
        ``class_names``, ``class_labels``, ``peer`` (its thresholds, or None), ``series_file``,
        ``n_events``, ``n_published``, ``n_correct`` and ``n_peer_correct`` (final answers
        equal to the published class), ``events`` (one :func:`classify_event` dict per event
        without ``probabilities``, plus ``source``, ``files``, ``published_class`` (None for
        the user's files), ``published_note``, ``reference``, ``slug`` (its figure's name
        part), ``dropped`` and ``notes`` of the reading) and ``summary`` (one row per event:
        ``event, published_class, model_at_peak, model_at_end, peer_at_peak, peer_at_end,
        correct, peer_correct``, classes in words); ``series``: the arrays
        (:data:`SERIES_FIELDS`) per event name.
    """
    from microlens.core.devices import local_device
    from microlens.evaluation.predictions import run_dataset
    from microlens.models.registry import load_model
    from microlens.photometry.files import shipped_events

    run_dir = resolve_path(run_dir)
    model = load_model(run_dir, which)
    if not _is_features(model):  # the features kind runs on the CPU, in numpy
        model = model.to(local_device(device))
    dataset_dir = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))["train"][
        "dataset"]
    if events is None:
        shipped = shipped_events()
        items = list(shipped)
    else:
        items = list(events)
        try:  # names of shipped events need MulensModel; the user's own files do not
            shipped = shipped_events()
        except ModuleNotFoundError:
            shipped = {}
    items += list(files)
    if not items:
        raise ValueError("no events to classify: give shipped event names, files, or both")
    classical, tuned_on = (peer, None) if isinstance(peer, ClassicalPeer) else (None, None)
    if peer is True:  # the run's own data set is opened only to tune the peer
        store = run_dataset(run_dir)
        classical = tune_peer(store, workers=peer_workers, progress=progress)
        tuned_on = {"tuned_on": project_relative(store.path),
                    "n_val": int(np.size(store.indices("val")))}

    from tqdm.auto import tqdm

    entries, series, taken = [], {}, set()
    for item in tqdm(items, desc="real events", unit="ev", disable=not progress):
        photometry, known = _read(item, shipped)
        result = classify_event(model, photometry, classical, confidence)
        name = _unique(result["name"] or "event", taken)
        proba = np.asarray(result.pop("probabilities"), dtype=np.float32)
        series[name] = {"times": np.asarray(photometry.times, dtype=np.float64),
                        "flux": np.asarray(photometry.flux, dtype=np.float64),
                        "flux_err": np.asarray(photometry.flux_err, dtype=np.float64),
                        "observatory": np.asarray(photometry.observatory, dtype=np.int64),
                        "probabilities": proba}
        entries.append({**result, "name": name, "slug": _slug(name),
                        "published_class": known.get("published_class"),
                        "published_note": known.get("published_note", ""),
                        "reference": known.get("reference", ""), "source": known["source"],
                        "files": known["files"], "dropped": dict(photometry.dropped),
                        "notes": list(photometry.notes),
                        "excluded": [list(x) for x in photometry.excluded]})
    _unique_slugs(entries)
    summary = [_summary_row(e["name"], e) for e in entries]
    published = [row for row in summary if row["correct"] is not None]
    record = {
        "run_dir": project_relative(run_dir),
        "dataset_dir": project_relative(resolve_path(dataset_dir)),
        "confidence": float(confidence),
        "class_names": list(CLASS_NAMES),
        "class_labels": list(CLASS_LABELS),
        "peer": None if classical is None else {**classical.to_dict(), **(tuned_on or {})},
        "series_file": SERIES_FILE,
        "n_events": len(entries),
        "n_published": len(published),
        "n_correct": sum(bool(row["correct"]) for row in published),
        "n_peer_correct": sum(bool(row["peer_correct"]) for row in published),
        "events": entries,
        "summary": summary,
    }
    return Classified(record, series)


def _unique_slugs(entries: list[dict]) -> None:
    taken: set = set()
    for entry in entries:
        entry["slug"] = _unique(entry["slug"], taken)


# --------------------------------------------------------------------------------------------
# The arrays behind the figures
# --------------------------------------------------------------------------------------------


def save_series(path, series: Mapping[str, Mapping[str, np.ndarray]]) -> Path:
    """Write the per-event arrays atomically as plain arrays (no pickle).

    Parameters
    ----------
    path : path
        Target ``.npz`` (normally ``output_dir /`` :data:`SERIES_FILE`).
    series : mapping
        ``{event name: {field: array}}`` with the fields of :data:`SERIES_FIELDS`
        (:func:`classify_events`' ``series``). Stored as ``names`` (the event names, in order)
        and ``<i>_<field>`` for event ``i``.

    Returns
    -------
    Path
    """
    arrays = {"names": np.asarray(list(series), dtype=np.str_)}
    for i, (name, fields) in enumerate(series.items()):
        missing = [f for f in SERIES_FIELDS if f not in fields]
        if missing:
            raise ValueError(f"series of {name!r} lacks {', '.join(missing)}")
        for field in SERIES_FIELDS:
            arrays[f"{i}_{field}"] = np.asarray(fields[field])
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:  # a name would gain ".npz"
        np.savez(handle, **arrays)
    return path


def load_series(path) -> dict[str, dict[str, np.ndarray]]:
    """Read :func:`save_series`' file (``allow_pickle=False``): ``{name: {field: array}}``."""
    with np.load(path, allow_pickle=False) as data:
        return {str(name): {field: data[f"{i}_{field}"] for field in SERIES_FIELDS}
                for i, name in enumerate(data["names"])}


__all__ = [
    "ERROR_SPREAD_LIMIT", "PEAK_WINDOW", "SERIES_FIELDS", "SERIES_FILE", "Classified",
    "TrainingRangeWarning", "classify_event", "classify_events", "load_series", "model_inputs",
    "peak_index", "save_series", "training_range_problems", "tune_peer",
]  # fmt: skip
