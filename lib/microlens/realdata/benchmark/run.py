"""One benchmark run: the events of an EWS folder through a trained run and the classical peer.

See the package docstring (:mod:`microlens.realdata.benchmark`) for the rules; this module reads
the folder, applies them (:func:`plan_events`), classifies the segments
(:mod:`.answers`) and writes the record (:func:`run_benchmark`).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import numpy as np

from microlens.core.paths import project_relative, resolve_path
from microlens.models.peer import ClassicalPeer
from microlens.photometry.ews import CITATION, read_stars
from microlens.realdata.benchmark.answers import Segment, is_features, model_answers, peer_answers
from microlens.realdata.benchmark.summary import BIN_EDGES, lensing, summarise

MIN_SEGMENT_POINTS = 20
"""Fewest observations a segment needs to be scored (shorter ones are skipped and counted)."""

ALERT_THRESHOLD = 0.9
"""P(lensing) = P(PSPL) + P(binary) at which the stream raises an alert."""

MAX_BASELINE_SNR = 2.0
"""The baseline segment ends before OGLE's fit predicts this cumulative S/N
(:func:`microlens.photometry.ews.baseline_end`)."""

EVENT_END_TAU = 2.0
"""The event segment ends at ``Tmax + EVENT_END_TAU * tau``
(:func:`microlens.photometry.ews.event_end`)."""

TIMING_MIN_POINTS = 5
"""Fewest observations in ``[Tmax - tau, Tmax]`` for an event to be timed."""


UNTIMED_REASON = ("the features kind answers only at fixed fractions of a curve (its update "
                  "fractions), not after every observation: when it would first have alerted "
                  "is not measured")

EXCLUSIONS = ("not_selected", "training_star", "unreadable", "no_params", "duplicate_star",
              "event_too_short", "baseline_degenerate_fit", "baseline_too_short")
"""The counts of events (or segments) left out, in the record's ``counts``: not asked for
(``events`` / ``stars``), photometry that could not be read, no params file (no segment),
a duplicate star (no segment), an event segment below the minimum, no baseline segment for a
degenerate fit, a baseline segment below the minimum."""


@dataclass
class EventPlan:
    """One scored star: its event, photometry and the segment ends (0: no such segment)."""

    event: object  # microlens.photometry.ews.EwsEvent
    photometry: object  # microlens.photometry.files.Photometry
    n_event: int
    n_baseline: int
    signal_start: int | None  # first point where the fit predicts S/N >= 2; None: not timed
    n_near_peak: int | None


# --------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------


def _check_count(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_probability(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) \
            or not 0 < float(value) <= 1:
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")
    return float(value)


def training_stars(run_path) -> tuple[frozenset[str], str]:
    """The stars whose real baselines the run's training set was made from (an injection set,
    ``SimulationConfig.baselines``) and where that was read; none for a synthetic set.

    Raises
    ------
    FileNotFoundError
        For an injection run whose data set or baselines folder is not on this machine: its
        training stars cannot be told from the others, and scoring them would not be held out.
    """
    from microlens.data.store import open_dataset
    from microlens.evaluation.predictions import run_dataset_path
    from microlens.photometry import ews

    if run_path is None:
        return frozenset(), "no run"
    dataset = run_dataset_path(run_path)
    if not dataset.is_dir():
        return frozenset(), (f"unknown: the run's data set {project_relative(dataset)} is not "
                             "on this machine (real stars it was made from, if any, are not "
                             "left out)")
    baselines = open_dataset(dataset).config.baselines
    if baselines is None:
        return frozenset(), "a synthetic data set (no real star)"
    folder = resolve_path(baselines)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"the run {run_path} was trained on injections into the baselines of {folder}, "
            "which is not on this machine: its training stars cannot be left out of the "
            "scoring; restore the folder (or score with a run whose stars are known)")
    return (frozenset(e.star for e in ews.read_folder(folder)),
            f"the baselines of {project_relative(folder)}")


def _select(events: list, names, stars) -> tuple[list, int]:
    """The events asked for, and how many were not."""
    chosen = events
    if names is not None:
        if isinstance(names, int | np.integer) and not isinstance(names, bool):
            chosen = chosen[: _check_count("events", names)]
        else:
            if isinstance(names, str):
                names = [names]
            wanted = list(names)
            known = {e.name for e in events}
            unknown = [n for n in wanted if n not in known]
            if unknown:
                raise ValueError(f"events {', '.join(map(repr, unknown[:5]))} are not in the "
                                 f"folder; valid names look like {events[0].name!r} (the "
                                 "photometry file stems)")
            wanted = set(wanted)
            chosen = [e for e in chosen if e.name in wanted]
    if stars is not None:
        if isinstance(stars, str | os.PathLike):
            stars = read_stars(stars)
        stars = set(stars)
        chosen = [e for e in chosen if e.star in stars]
    return chosen, len(events) - len(chosen)


def _load_model(run_dir, which: str, device: str):
    from microlens.core.devices import local_device
    from microlens.models.registry import load_model

    if run_dir is None:
        return None, None
    if callable(getattr(run_dir, "predict_proba", None)):  # a loaded model
        return run_dir, None
    path = resolve_path(run_dir)
    model = load_model(path, which)
    if not is_features(model):
        model = model.to(local_device(device))
    return model, path


def _peer(peer, run_path, workers: int, progress: bool) -> tuple[ClassicalPeer | None, dict]:
    from microlens.realdata.real_events import tune_peer

    if peer is None or (isinstance(peer, str) and peer == "none"):
        return None, {}
    if isinstance(peer, ClassicalPeer):
        return peer, {"source": "given"}
    if isinstance(peer, str) and peer == "tune":
        if run_path is None:
            raise ValueError("peer='tune' tunes the classical peer on the run's data set, but "
                             "no run directory was given: give run_dir, a ClassicalPeer, a "
                             "peer JSON file or peer=None")
        from microlens.evaluation.predictions import run_dataset

        store = run_dataset(run_path)
        tuned = tune_peer(store, workers=workers, progress=progress)
        return tuned, {"source": "tuned", "tuned_on": project_relative(store.path),
                       "n_val": int(np.size(store.indices("val")))}
    if isinstance(peer, str | os.PathLike):
        path = resolve_path(peer)
        if not path.is_file():
            raise FileNotFoundError(f"peer file {path} does not exist; valid peers: 'tune', "
                                    "'none' or a JSON file written by ClassicalPeer.save")
        return ClassicalPeer.load(path), {"source": project_relative(path)}
    raise TypeError(f"peer must be None, 'tune', 'none', a ClassicalPeer or a peer JSON file, "
                    f"got {type(peer).__name__}")


# --------------------------------------------------------------------------------------------
# The events and their segments
# --------------------------------------------------------------------------------------------


def plan_events(events: list, min_points: int, max_snr: float = MAX_BASELINE_SNR,
                timing_min_points: int = TIMING_MIN_POINTS
                ) -> tuple[list[EventPlan], dict, list[dict]]:
    """Apply the rules to the selected events: which segments each scores.

    Returns
    -------
    plans : list of EventPlan
        The stars with at least one segment, by name.
    counts : dict
        Events or segments left out, per reason of :data:`EXCLUSIONS`.
    excluded : list of dict
        ``{"name", "reason"}`` per exclusion (a star may have two: one per segment).
    """
    from microlens.photometry import ews
    from microlens.photometry.files import PhotometryWarning

    counts = dict.fromkeys(EXCLUSIONS, 0)
    excluded: list[dict] = []
    plans = []

    def leave_out(name: str, reason: str, detail: str = "") -> None:
        counts[reason] += 1
        excluded.append({"name": name, "reason": reason, **({"detail": detail} if detail
                                                            else {})})

    import warnings

    for event in events:
        if event.fit is None:
            leave_out(event.name, "no_params")
            continue
        if event.duplicate_of is not None:
            leave_out(event.name, "duplicate_star", f"same star as {event.duplicate_of}")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PhotometryWarning)
                photometry = ews.read_photometry(event)
        except ValueError as error:
            leave_out(event.name, "unreadable", str(error).splitlines()[0])
            continue
        n_event = ews.event_end(event, photometry)
        if n_event < min_points:
            leave_out(event.name, "event_too_short", f"{n_event} points")
            n_event = 0
        signal_start = n_near = None
        n_baseline = 0
        if event.fit.degenerate:
            leave_out(event.name, "baseline_degenerate_fit")
        else:
            signal_start = ews.baseline_end(event, photometry, max_snr)
            n_baseline = signal_start
            if n_baseline < min_points:
                leave_out(event.name, "baseline_too_short", f"{n_baseline} points")
                n_baseline = 0
            fit = event.fit
            n_near = ews.points_in(photometry, fit.tmax - fit.tau, fit.tmax)
        if n_event or n_baseline:
            plans.append(EventPlan(event, photometry, n_event, n_baseline, signal_start,
                                   n_near))
    return plans, counts, excluded


def _fit_row(fit) -> dict:
    return {"tmax": fit.tmax, "tau": fit.tau, "umin": fit.umin, "i0": fit.i0,
            "i_bl": None if not math.isfinite(fit.i_bl) else fit.i_bl, "fbl": fit.fbl,
            "fbl_fixed": bool(fit.fbl_fixed), "degenerate": bool(fit.degenerate)}


def _check_window(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value) or value <= 0:
        raise ValueError(f"window_days must be a positive number of days or None; got {value!r}")
    return float(value)


def _segments(plans: list[EventPlan], window_days: float | None = None,
              ) -> tuple[list[Segment], list[tuple[int, str]], list[int]]:
    """Every plan's segments, each cut to its last ``window_days`` (renormalised to the
    window's own baseline) when given; with where each came from and the index of its first
    point in the segment."""
    from microlens.photometry import ews
    from microlens.photometry.files import estimate_baseline_flux

    segments, where, offsets = [], [], []
    for i, plan in enumerate(plans):
        for part, n in (("event", plan.n_event), ("baseline", plan.n_baseline)):
            if not n:
                continue
            piece = ews.segment(plan.photometry, int(n), f"_{part}")
            times, flux, err, start = piece.times, piece.flux, piece.flux_err, 0
            if window_days is not None:
                start = int(np.searchsorted(times, times[-1] - window_days, side="left"))
                times, flux, err = times[start:], flux[start:], err[start:]
                level = estimate_baseline_flux(flux, times)
                flux, err = flux / level, err / level
            segments.append(Segment(times, flux, err))
            where.append((i, part))
            offsets.append(start)
    return segments, where, offsets


def _timing(plan: EventPlan, series: np.ndarray, alert: float, min_points: int) -> dict | None:
    """When the stream of the event segment first alerted after the event-free part."""
    if plan.signal_start is None or plan.n_near_peak is None or plan.n_near_peak < min_points:
        return None
    p_lens = series[:, 1] + series[:, 2]
    start = min(int(plan.signal_start), len(p_lens))
    later = np.flatnonzero(p_lens[start:] >= alert)
    fit = plan.event.fit
    out = {"n_near_peak": int(plan.n_near_peak), "signal_start": int(plan.signal_start),
           "earlier_alert": bool(np.any(p_lens[:start] >= alert)), "alert_index": None,
           "alert_hjd": None, "lead_days": None, "lead_tau": None}
    if later.size:
        k = start + int(later[0])
        hjd = float(plan.photometry.reference_epoch + plan.photometry.times[k])
        out.update(alert_index=k, alert_hjd=hjd, lead_days=fit.tmax - hjd,
                   lead_tau=(fit.tmax - hjd) / fit.tau)
    return out


def _padded(series: np.ndarray | None, start: int) -> np.ndarray | None:
    """Answers of a window that starts at point ``start`` of its segment, set back in place:
    NaN (no answer, never an alert) before the window."""
    if series is None or start == 0:
        return series
    out = np.full((start + series.shape[0], series.shape[1]), np.nan)
    out[start:] = series
    return out


def _answer(series: np.ndarray | None, peer: dict | None) -> dict:
    out = {"n": None if series is None else int(series.shape[0]), "final": None,
           "max_lensing": None, "peer": peer}
    if series is not None:
        out["final"] = [float(p) for p in series[-1]]
        out["max_lensing"] = float(np.nanmax(series[:, 1] + series[:, 2]))
    return out


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


def run_benchmark(folder=None, run_dir=None, *, peer="tune", events=None, stars=None,
                  threshold: float | None = None, alert_threshold: float = ALERT_THRESHOLD,
                  min_segment_points: int = MIN_SEGMENT_POINTS,
                  window_days: float | None = None, gate: str = "none", workers: int = 1,
                  device: str = "auto", which: str = "best", progress: bool = False) -> dict:
    """Classify the real events of an EWS folder with a trained run and the classical peer.

    For every usable event (the rules: :mod:`microlens.realdata.benchmark`) the **event segment**
    (its curve up to ``Tmax + 2 tau``) and the **baseline segment** (up to where OGLE's fit predicts
    a cumulative S/N of 2), each renormalised to its own baseline, go through the model (its
    probabilities after every observation) and the peer (at the end of each segment).

    Parameters
    ----------
    folder : path, optional
        A folder in the EWS layout (:func:`microlens.photometry.ews.read_folder`); None: the shipped
        subset (:func:`microlens.photometry.ews.shipped_subset`).
    run_dir : path or loaded model, optional
        A trained run of any kind (:func:`microlens.models.registry.load_model`), or a model
        already loaded; None scores the peer alone.
    peer : {'tune', 'none'}, ClassicalPeer, path or None
        ``'tune'``: tune the classical peer on the run's data set
        (:func:`microlens.realdata.real_events.tune_peer`); a :class:`ClassicalPeer` or a JSON file
        of one (:meth:`ClassicalPeer.save`): use it; None or ``'none'``: no peer.
    events : int or iterable of str, optional
        Only the first ``events`` events of the folder by name, or the events of these names.
    stars : iterable of str or path, optional
        Only events of these stars (:attr:`microlens.photometry.ews.EwsEvent.star`; a path: a file
        of them, :func:`read_stars`): score a fold of stars with the model that never saw them.
    threshold : float, optional
        A threshold on the final P(lensing) chosen elsewhere (on validation stars): the record
        adds the events found and baselines called lensing at it. Never fitted here.
    alert_threshold : float
        P(lensing) at which the stream alerts (false alerts, timing).
    min_segment_points : int
        Fewest observations a segment needs.
    window_days : float, optional
        Classify only the last ``window_days`` days of each segment (renormalised to that
        window's own baseline), as a stream that keeps a trailing window of the length the
        model was trained on (e.g. the survey preset's span): a model trained on 600-day
        windows meets years of baseline otherwise. Stream alerts and timing then count within
        the window; the peer sees the same window. None: the whole segment.
    gate : {'none', 'binary', 'binary+event'}
        Condition the model's final answers on the peer's robust fit of the same segment
        (:mod:`microlens.evaluation.gate`, at the peer's thresholds; needs a model and a peer): the
        record is then :func:`~microlens.realdata.benchmark.gated.gate_record`'s, each row keeping
        its ungated answer.
    workers : int
        Processes for the peer's fits (tuning and scoring) and the ``features`` kind.
    device : {'auto', 'cpu', 'cuda'}
        Where a neural model runs.
    which : {'best', 'last'}
        Checkpoint.
    progress : bool
        Progress bars.

    Returns
    -------
    dict
        JSON-ready: ``folder``, ``run_dir``, ``model_kind``, ``answers`` (when the model
        answers), ``peer`` (thresholds and where they came from), ``rules``, ``counts``
        (``events_in_folder``, ``selected``, ``scored_stars``, ``event_segments``,
        ``baseline_segments``, ``timed_events`` and each exclusion of :data:`EXCLUSIONS`),
        ``excluded`` (name and reason each), ``metrics`` (``model`` and ``peer``: the
        headline shares of :data:`~microlens.realdata.benchmark.summary.HEADLINE`, each
        ``{count, of, share, interval}``), ``bins``, ``timing``, ``threshold_curve``,
        ``operating_point``, ``events`` (one row per scored star: its fit, cadence and each
        segment's answers), ``seconds`` and ``citation``.

    Raises
    ------
    ValueError
        For a folder not in the EWS layout, unknown event names, bad numbers (naming them),
        ``peer='tune'`` without a run, or nothing left to score.
    FileNotFoundError
        For a folder, run or peer file that is not there.
    """
    from microlens.evaluation.gate import GATES
    from microlens.photometry import ews

    started = time.perf_counter()
    alert_threshold = _check_probability("alert_threshold", alert_threshold)
    if gate not in GATES:
        raise ValueError(f"run_benchmark: unknown gate {gate!r}; valid choices: "
                         f"{', '.join(GATES)}")
    if gate != "none" and (run_dir is None or peer is None or peer == "none"):
        raise ValueError(f"run_benchmark: gate {gate!r} conditions a model's answers on the "
                         "peer's statistics: give a run and a peer ('tune' or a peer file)")
    if threshold is not None:
        threshold = _check_probability("threshold", threshold)
    min_segment_points = _check_count("min_segment_points", min_segment_points, 2)
    window_days = _check_window(window_days)
    workers = _check_count("workers", workers)
    if folder is None:
        folder = ews.shipped_subset()
    folder = resolve_path(folder)
    everything = ews.read_folder(folder)
    selected, not_selected = _select(everything, events, stars)
    model, run_path = _load_model(run_dir, which, device)
    trained_on, trained_source = training_stars(run_path)
    seen = [e for e in selected if e.star in trained_on]  # never score what the model saw
    selected = [e for e in selected if e.star not in trained_on]
    if model is None and (peer is None or peer == "none"):
        raise ValueError("nothing to score: give a run directory, a peer, or both")
    classical, peer_source = _peer(peer, run_path, workers, progress)
    tuned = time.perf_counter()

    plans, counts, excluded = plan_events(selected, min_segment_points)
    counts["not_selected"] = not_selected
    counts["training_star"] = len(seen)
    excluded = [*({"name": e.name, "reason": "training_star"} for e in seen), *excluded]
    segments, where, offsets = _segments(plans, window_days)
    if not segments:
        left = ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "none"
        raise ValueError(f"no segment of {folder} is left to score ({len(selected)} events "
                         f"selected; left out: {left})")
    read = time.perf_counter()
    series = model_answers(model, segments, workers=workers, progress=progress) \
        if model is not None else [None] * len(segments)
    modelled = time.perf_counter()
    answers = peer_answers(classical, segments, workers=workers, progress=progress) \
        if classical is not None else [None] * len(segments)
    peered = time.perf_counter()

    features = model is not None and is_features(model)
    rows = []
    for i, plan in enumerate(plans):
        parts = {part: (_padded(series[j], offsets[j]), answers[j])
                 for j, (k, part) in enumerate(where) if k == i}
        event_part = parts.get("event")
        row = {"name": plan.event.name, "star": plan.event.star,
               "fit": _fit_row(plan.event.fit),
               "cadence_days": ews.median_interval(plan.photometry),
               "n_points": len(plan.photometry), "event": None, "baseline": None}
        if event_part is not None:
            row["event"] = _answer(*event_part)
            row["event"]["n"] = plan.n_event
            row["event"]["timing"] = None if (event_part[0] is None or features) else \
                _timing(plan, event_part[0], alert_threshold, TIMING_MIN_POINTS)
        if "baseline" in parts:
            row["baseline"] = _answer(*parts["baseline"])
            row["baseline"]["n"] = plan.n_baseline
        rows.append(row)

    rules = {
        "event_segment": f"every observation up to Tmax + {EVENT_END_TAU:g} tau (OGLE's fit)",
        "baseline_segment": ("the observations before OGLE's fit predicts a cumulative S/N of "
                             f"{MAX_BASELINE_SNR:g} (microlens.photometry.ews.baseline_end)"),
        "event_end_tau": EVENT_END_TAU, "max_baseline_snr": MAX_BASELINE_SNR,
        "min_segment_points": min_segment_points, "alert_threshold": alert_threshold,
        "window_days": window_days,
        "window": ("the whole segment" if window_days is None else
                   f"the last {window_days:g} days of each segment, renormalised to their own "
                   "baseline (stream alerts and timing within it)"),
        "timing_min_points": TIMING_MIN_POINTS, "bin_edges": {k: list(v) for k, v in
                                                             BIN_EDGES.items()},
        "threshold": threshold, "timed": not features,
        "untimed_reason": UNTIMED_REASON if features else None,
        "called_lensing": "top class of the final answer is PSPL or binary",
        "no_params": "no segment (no fit: no peak time, no predicted signal)",
        "degenerate_fit": ("event segment kept (Tmax and tau end it), no baseline segment and "
                           "not timed (the fit predicts no usable signal)"),
        "duplicate_star": "only the first event of a star by name counts",
        "training_star": ("events of a star whose baselines the run's training set was made "
                          f"from are not scored (training stars: {trained_source}, "
                          f"{len(trained_on)} stars)"),
        "timing": (f"events with >= {TIMING_MIN_POINTS} points in [Tmax - tau, Tmax]: the first "
                   f"observation with P(lensing) >= {alert_threshold:g} from where OGLE's fit "
                   "predicts a signal (cumulative S/N >= 2); lead = Tmax minus its time"),
    }
    if model is not None and not features:
        answered = "after every observation"
    elif features:
        answered = f"at update fractions {list(model.update_fractions)}"
    else:
        answered = None
    record = {
        "benchmark": "real",
        "folder": project_relative(folder),
        "run_dir": None if run_path is None else project_relative(run_path),
        "model_kind": None if model is None else (getattr(model, "kind", None) or
                                                   model.config.kind),
        "answers": answered,
        "peer": None if classical is None else {**classical.to_dict(), **peer_source},
        "rules": rules,
        "counts": {"events_in_folder": len(everything), "selected": len(selected),
                   "scored_stars": len(rows),
                   "event_segments": sum(r["event"] is not None for r in rows),
                   "baseline_segments": sum(r["baseline"] is not None for r in rows),
                   "timed_events": sum(bool(r["event"] and r["event"].get("timing"))
                                       for r in rows), **counts},
        "excluded": excluded,
        **summarise(rows, rules),
        "events": rows,
        "seconds": {"setup": tuned - started, "read": read - tuned,
                    "model": modelled - read, "peer": peered - modelled,
                    "total": time.perf_counter() - started},
        "citation": CITATION,
    }
    if gate != "none":
        from microlens.evaluation.gate import PhysicsGate
        from microlens.realdata.benchmark.gated import gate_record

        record = gate_record(record, PhysicsGate.arm(record["peer"], gate))
    return record


def summary_view(record: dict) -> dict:
    """The record without its per-event rows and exclusion list (what the CLI prints)."""
    return {k: v for k, v in record.items() if k not in ("events", "excluded")}


def final_lensing(row: dict, part: str = "event") -> float | None:
    """The final P(lensing) of one row's segment (None without it)."""
    answer = row.get(part)
    return None if not answer or answer.get("final") is None else lensing(answer["final"])


__all__ = [
    "ALERT_THRESHOLD", "EVENT_END_TAU", "EXCLUSIONS", "EventPlan", "MAX_BASELINE_SNR",
    "MIN_SEGMENT_POINTS", "TIMING_MIN_POINTS", "UNTIMED_REASON", "final_lensing", "plan_events",
    "run_benchmark", "summary_view"
]

