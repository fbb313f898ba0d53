"""Lens parameters on real events: a model's parameter heads and the online point-lens fit beside
OGLE's own fit of OGLE-IV Early Warning System events.

A model built with ``ModelConfig(parameter_heads=True)`` predicts, after every observation,
quantiles of ``t_0``, ``log10 t_E``, ``log10 u_0`` and ``f_s``
(:mod:`microlens.models.parameters`); the classical online fit
(:func:`microlens.models.online_fit.fit_point_lens`) answers the same from the same
observations. Here both meet real events: every event of a folder in the EWS layout
(:mod:`microlens.photometry.ews`; by default the 2025 season in ``../shared/real/ogle_ews_2025``)
comes with OGLE's point-lens fit (``Tmax``, ``tau`` = t_E, ``umin`` = u_0, ``fbl`` = the source's
share of the baseline flux), which is what the answers are compared with. OGLE's fit is a fit,
not the truth: blending makes ``tau`` and ``umin`` uncertain for faint events, and long events
(parallax) or very small ``umin`` (finite source) are real single lenses a point lens does not
describe exactly. Cite Udalski et al. 2015, AcA 65, 1 (the OGLE-IV survey) and Udalski 2003,
AcA 53, 291 (the EWS) with results on these events.

**Stages.** Each event is read at two stages, each cut as the real benchmark cuts a segment
(:mod:`microlens.realdata.benchmark`: what a stream had at that time, the trailing
``window_days`` of it, renormalised to its own baseline, then :func:`model_inputs`):

``tmax``
    the observations up to OGLE's fitted peak time (full HJD ``<= Tmax``);
``end``
    the event segment: every observation up to ``Tmax + 2 tau``
    (:func:`microlens.photometry.ews.event_end`).

At each stage the model's median of every parameter after the stage's last observation and the
online fit of the stage's observations are compared with OGLE's fit.

**Time frames.** OGLE's ``Tmax`` is a full HJD (about 2460700 for the 2025 season). The model
and the fit see times in days after the stage segment's first observation (what
:func:`~microlens.realdata.real_events.model_inputs` gives), so their ``t_0`` is in that frame;
it is moved to full HJD by adding the segment's **origin**, the full HJD of its first
observation (``reference_epoch + times[first]`` of the event's photometry), before it is
compared: ``|ΔT_max| / t_E = |t_0 + origin - Tmax| / tau`` (:func:`parameter_errors`).

**Errors** (absolute, one value per event and stage): ``|ΔT_max| / t_E``, ``|Δ log10 t_E|``
against ``log10 tau``, ``|Δu_0|`` against ``umin`` (the model's ``10**`` median of ``log10
u_0``) and, where OGLE fitted the blending, ``|Δf_s|`` against ``fbl``. Reported per split and
stage: the number of events and the median with a 95 % bootstrap interval over events
(:data:`N_BOOTSTRAP` resamplings, seeded per cell, so a cell does not depend on the others).

**Splits** by OGLE's blending: ``blending_fitted`` where OGLE fitted ``fbl`` (its error is
non-zero, :attr:`~microlens.photometry.ews.EwsFit.fbl_fixed` False) and ``blending_fixed``
where it held ``fbl`` fixed (error 0.000; ``fbl = 1`` for all but a few): there ``fbl`` is an
assumption, so ``|Δf_s|`` is not scored and ``tau``, ``umin`` are those of an unblended fit.

**Rules** (each left-out event or stage is counted in the record's ``counts`` and listed in
``excluded`` with its reason):

1. events of a star the run trained on are not scored (the benchmark's training-star rule,
   :func:`microlens.realdata.benchmark.run.training_stars`: cross-fitted by star);
2. events without a params file, the second event of a star seen in two fields, and
   unreadable photometry are left out as the benchmark leaves them out
   (:func:`microlens.realdata.benchmark.plan_events`);
3. **degenerate OGLE fits** are left out (:func:`ogle_fit_problem`): ``tau`` or ``umin`` not
   finite and positive (OGLE writes ``umin = 0``, ``Amax = 99999`` where its fit did not
   converge), ``Amax`` at that value, or ``tau`` outside :data:`TAU_RANGE` days;
4. a **stage with fewer than** :data:`MIN_STAGE_POINTS` observations (after the window) is left
   out for the model and the fit alike;
5. the **online fit's degenerate answers** (``ok`` False: too few points, every start failed,
   ``u_0`` or ``t_E`` at a clamp, no baseline flux, singular covariance; the rule of
   :mod:`microlens.models.online_fit`) are counted per reason and left out of the fit's
   medians; the **model is scored on every event that reaches the stage**, so the fit's
   medians are conditioned on a fit that converged and the model's are not.

Usage::

    from microlens.realdata.parameters import real_parameter_comparison, markdown_table
    record = real_parameter_comparison("outputs/runs/heads", workers=2)
    print(markdown_table(record))

    python -m microlens.realdata.parameters outputs/runs/heads --workers 2 \\
        --out outputs/real_data/parameters.json
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from microlens.core.cli import TerminalHelpFormatter, add_traceback_option, command_line
from microlens.core.paths import project_relative, resolve_path
from microlens.photometry.ews import CITATION
from microlens.realdata.benchmark.answers import BATCH_OBSERVATIONS, _batches, padded_curves
from microlens.realdata.benchmark.run import (
    EVENT_END_TAU,
    _check_window,
    _load_model,
    _segments,
    plan_events,
    training_stars,
)
from microlens.realdata.real_events import model_inputs

DEFAULT_FOLDER = "../shared/real/ogle_ews_2025"
"""The OGLE EWS 2025 season (relative to the project root)."""

WINDOW_DAYS = 605.25
"""Default trailing window of each stage [days]: the span the survey preset simulates."""

STAGES = ("tmax", "end")
"""The stages read (module docstring): up to OGLE's ``Tmax``, and the whole event segment."""

SPLITS = ("blending_fitted", "blending_fixed")
"""Events where OGLE fitted ``fbl`` and where it held it fixed."""

MIN_STAGE_POINTS = 10
"""Fewest observations a stage needs (rule 4)."""

TAU_RANGE = (1.0, 1000.0)
"""OGLE's ``tau`` [days] outside which its fit is left out (rule 3)."""

DEGENERATE_AMAX = 99999.0
"""OGLE's ``Amax`` where its fit did not converge."""

METRICS = ("dt0_over_tE", "dlog10_tE", "du0", "dfs")
"""The errors scored: ``|ΔT_max| / t_E``, ``|Δ log10 t_E|``, ``|Δu_0|``, ``|Δf_s|``."""

METRIC_LABELS = {"dt0_over_tE": "|ΔT_max| / t_E", "dlog10_tE": "|Δ log10 t_E|",
                 "du0": "|Δu_0|", "dfs": "|Δf_s|"}
"""How the table names each error."""

ESTIMATED = ("t_0", "log10_t_E", "log10_u_0", "f_s")
"""The estimates compared, in :data:`microlens.models.online_fit.PARAMETERS` order."""

N_BOOTSTRAP = 2000
"""Bootstrap resamplings of the events behind each interval."""

SEED = 0
"""Default seed of the bootstrap."""

_FIT_DTYPE = np.dtype([("mean", np.float64, (len(ESTIMATED),)), ("ok", np.bool_),
                       ("reason", "U40")])


# --------------------------------------------------------------------------------------------
# Rules and errors
# --------------------------------------------------------------------------------------------


def ogle_fit_problem(fit) -> str | None:
    """Why OGLE's fit of an event is too degenerate to compare with (rule 3), or None.

    Parameters
    ----------
    fit : EwsFit
        OGLE's fit (:class:`microlens.photometry.ews.EwsFit`).

    Returns
    -------
    str or None
        ``"tau not finite and positive"``, ``"umin not finite and positive"``, ``"Amax at
        OGLE's non-convergence value (99999)"`` or ``"tau outside [1, 1000] d"`` (the first that
        applies); None for a usable fit.
    """
    if not (math.isfinite(fit.tau) and fit.tau > 0):
        return "tau not finite and positive"
    if not (math.isfinite(fit.umin) and fit.umin > 0):
        return "umin not finite and positive"
    if fit.amax >= DEGENERATE_AMAX:
        return f"Amax at OGLE's non-convergence value ({DEGENERATE_AMAX:.0f})"
    if not TAU_RANGE[0] <= fit.tau <= TAU_RANGE[1]:
        return f"tau outside [{TAU_RANGE[0]:g}, {TAU_RANGE[1]:g}] d"
    return None


def parameter_errors(estimate: Sequence[float], origin: float, fit) -> dict[str, float | None]:
    """The absolute errors of one estimate against OGLE's fit (:data:`METRICS`).

    Parameters
    ----------
    estimate : sequence of 4 floats
        ``t_0`` [days in the estimate's frame], ``log10 t_E``, ``log10 u_0`` and ``f_s``
        (:data:`ESTIMATED`).
    origin : float
        The full HJD of the frame's zero (the stage segment's first observation): ``t_0 +
        origin`` is the estimate's peak in full HJD, OGLE's ``Tmax`` frame.
    fit : EwsFit
        OGLE's fit, ``tmax`` in full HJD.

    Returns
    -------
    dict
        ``dt0_over_tE = |t_0 + origin - Tmax| / tau``, ``dlog10_tE = |log10 t_E - log10 tau|``,
        ``du0 = |10**log10_u_0 - umin|`` and ``dfs = |f_s - fbl|`` (None where OGLE held
        ``fbl`` fixed); NaN where the estimate is not finite.
    """
    t_0, log_te, log_u0, f_s = (float(v) for v in estimate)
    out: dict[str, float | None] = {
        "dt0_over_tE": abs(t_0 + float(origin) - fit.tmax) / fit.tau,
        "dlog10_tE": abs(log_te - math.log10(fit.tau)),
        "du0": abs(10.0 ** log_u0 - fit.umin) if math.isfinite(log_u0) else math.nan,
        "dfs": None if fit.fbl_fixed else abs(f_s - fit.fbl),
    }
    return out


def split_of(fit) -> str:
    """``"blending_fitted"`` where OGLE fitted ``fbl`` (non-zero error), else
    ``"blending_fixed"``."""
    return SPLITS[1] if fit.fbl_fixed else SPLITS[0]


def stage_ends(event, photometry) -> dict[str, int]:
    """Observations of the photometry up to each stage (:data:`STAGES`), before the window:
    full HJD ``<= Tmax`` and ``<= Tmax + 2 tau``."""
    from microlens.photometry import ews

    hjd = photometry.absolute_times()
    return {"tmax": int(np.searchsorted(hjd, event.fit.tmax, side="right")),
            "end": int(ews.event_end(event, photometry))}


def bootstrap_median(values, seed: Sequence[int] | int = SEED,
                     n_bootstrap: int = N_BOOTSTRAP) -> dict:
    """The median of ``values`` and its 95 % percentile-bootstrap interval.

    Parameters
    ----------
    values : array-like
        One value per event (non-finite values are dropped first).
    seed : int or sequence of int
        Seed of :func:`numpy.random.default_rng` (a cell's own, so it does not depend on the
        others).
    n_bootstrap : int
        Resamplings.

    Returns
    -------
    dict
        ``n``, ``median`` and ``interval`` ``[lo, hi]`` (None without values).
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"n": 0, "median": None, "interval": [None, None]}
    rng = np.random.default_rng(seed)
    medians = np.median(values[rng.integers(0, values.size, (n_bootstrap, values.size))], axis=1)
    lo, hi = np.percentile(medians, [2.5, 97.5])
    return {"n": int(values.size), "median": float(np.median(values)),
            "interval": [float(lo), float(hi)]}


# --------------------------------------------------------------------------------------------
# The model and the fit on the stage segments
# --------------------------------------------------------------------------------------------


def _check_model(model, where) -> None:
    if not callable(getattr(model, "predict_parameters", None)) or \
            getattr(model, "parameter_head", True) is None:
        kind = getattr(getattr(model, "config", None), "kind", None) or \
            getattr(model, "kind", type(model).__name__)
        raise ValueError(f"the {kind!r} model of {where} has no parameter heads: compare a run "
                         "trained with ModelConfig(parameter_heads=True)")


def model_medians(model, segments: Sequence, progress: bool = False) -> np.ndarray:
    """The model's median of :data:`ESTIMATED` after the last observation of each segment.

    Parameters
    ----------
    model : CausalClassifier
        With parameter heads (``predict_parameters``).
    segments : sequence
        Objects with ``times`` [days], ``flux``, ``flux_err``, each converted by
        :func:`~microlens.realdata.real_events.model_inputs`; run in batches of similar length
        (padding after a segment changes nothing of its causal answers).
    progress : bool
        A tqdm bar over the batches.

    Returns
    -------
    ndarray ``(len(segments), 4)`` float64
        ``t_0`` in each segment's own frame (days after its first observation), ``log10 t_E``,
        ``log10 u_0``, ``f_s``.
    """
    import torch
    from tqdm.auto import tqdm

    from microlens.models.inputs import IntervalRangeWarning
    from microlens.models.parameters import MEDIAN, TARGETS

    columns = [TARGETS.index(name) for name in ESTIMATED]
    out = np.full((len(segments), len(ESTIMATED)), np.nan)
    inputs = [model_inputs(s) for s in segments]
    lengths = np.array([x[0].shape[1] for x in inputs], dtype=np.int64)
    for batch in tqdm(_batches(lengths, BATCH_OBSERVATIONS) if lengths.size else [],
                      desc="parameter heads", unit="batch", disable=not progress):
        times, flux, err, mask = padded_curves(
            [tuple(a[0] for a in inputs[i]) for i in batch])
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", IntervalRangeWarning)  # real gaps: extrapolations
            quantiles = model.predict_parameters(times, flux, err, mask)
        quantiles = quantiles.float().cpu().numpy()
        for j, i in enumerate(batch):
            out[i] = quantiles[j, lengths[i] - 1, columns, MEDIAN]
    return out


def _fit_one(times, flux, flux_err) -> np.ndarray:
    from microlens.models.online_fit import fit_point_lens

    fit = fit_point_lens(times, flux, flux_err)
    row = np.zeros((), _FIT_DTYPE)
    row["mean"], row["ok"], row["reason"] = fit["mean"], fit["ok"], fit["reason"]
    return row


def _fit_chunk(segments: list[tuple[np.ndarray, ...]]) -> np.ndarray:
    """Worker: the online fits of a chunk of segments."""
    return np.stack([_fit_one(*s) for s in segments])


def online_fits(segments: Sequence, workers: int = 1, progress: bool = False) -> np.ndarray:
    """:func:`microlens.models.online_fit.fit_point_lens` of each segment (float64).

    Returns
    -------
    structured ndarray ``(len(segments),)``
        ``mean`` ``(4,)`` (:data:`ESTIMATED` order, ``t_0`` in the segment's frame), ``ok``,
        ``reason``; the same for any ``workers``.
    """
    from tqdm.auto import tqdm

    from microlens.models.peer import parallel_row_chunks

    out = np.zeros(len(segments), _FIT_DTYPE)

    def load(i):
        s = segments[int(i)]
        return (np.asarray(s.times, np.float64), np.asarray(s.flux, np.float64),
                np.asarray(s.flux_err, np.float64))

    bar = tqdm(total=len(segments), desc="online point-lens fit", unit="fit",
               disable=not progress)
    try:
        if workers == 1 or len(segments) < 2:
            for i in range(len(segments)):
                out[i] = _fit_one(*load(i))
                bar.update(1)
        else:
            parallel_row_chunks(_fit_chunk, load, np.arange(len(segments)), (), workers, out,
                                bar)
    finally:
        bar.close()
    return out


# --------------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------------


def _check_count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _plain(value):
    """A JSON-ready number: NaN and infinities as None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _estimate_row(estimate: np.ndarray, origin: float, fit) -> dict:
    return {"t_0_hjd": _plain(estimate[0] + origin), "t_E": _plain(10.0 ** estimate[1]),
            "u_0": _plain(10.0 ** estimate[2]), "f_s": _plain(estimate[3]),
            "errors": {k: _plain(v) for k, v in parameter_errors(estimate, origin, fit).items()}}


def _summaries(rows: list[dict], seed: int, n_bootstrap: int) -> dict:
    """Per split and stage: counts and the bootstrap medians of the model and the fit."""
    out = {}
    for s, split in enumerate(SPLITS):
        metrics = [m for m in METRICS if not (split == "blending_fixed" and m == "dfs")]
        members = [r for r in rows if r["split"] == split]
        out[split] = {"events": len(members)}
        for g, stage in enumerate(STAGES):
            reached = [r["stages"][stage] for r in members if r["stages"][stage]["scored"]]
            short = sum(not r["stages"][stage]["scored"] for r in members)
            good = [x for x in reached if x["fit"]["ok"]]
            reasons: dict[str, int] = {}
            for x in reached:
                if not x["fit"]["ok"]:
                    reasons[x["fit"]["reason"]] = reasons.get(x["fit"]["reason"], 0) + 1
            cell = {"n": len(reached),
                    "left_out": {"too_few_observations": short},
                    "model": {}, "fit": {}, "fit_ok": len(good),
                    "fit_left_out": dict(sorted(reasons.items()))}
            for m, metric in enumerate(metrics):
                cell["model"][metric] = bootstrap_median(
                    [x["model"]["errors"][metric] for x in reached], (seed, s, g, m, 0),
                    n_bootstrap)
                cell["fit"][metric] = bootstrap_median(
                    [x["fit"]["errors"][metric] for x in good], (seed, s, g, m, 1), n_bootstrap)
            out[split][stage] = cell
    return out


def real_parameter_comparison(run_dir, folder=DEFAULT_FOLDER, *, window_days=WINDOW_DAYS,
                              max_events: int = 0, workers: int = 1, progress: bool = False,
                              device: str = "auto", which: str = "best", seed: int = SEED,
                              n_bootstrap: int = N_BOOTSTRAP) -> dict:
    """A run's parameter heads and the online point-lens fit against OGLE's fits of real events.

    The stages, time frames, errors, splits and rules are the module docstring's.

    Parameters
    ----------
    run_dir : path or loaded model
        A run trained with parameter heads (``ModelConfig(parameter_heads=True)``), or such a
        model already loaded (then no training star is known).
    folder : path
        A folder in the EWS layout (relative: from the project root); default the 2025 season.
    window_days : float or None
        Each stage keeps its last ``window_days`` days (renormalised to their own baseline);
        None: the whole curve up to the stage.
    max_events : int
        Only the first ``max_events`` events of the folder by name (0: all).
    workers : int
        Processes for the online fits (the results do not depend on it).
    progress : bool
        tqdm progress bars.
    device : {'auto', 'cpu', 'cuda'}
        Where the model runs.
    which : {'best', 'last'}
        Checkpoint.
    seed : int
        Seed of the bootstrap.
    n_bootstrap : int
        Bootstrap resamplings per interval.

    Returns
    -------
    dict
        JSON-ready: ``comparison``, ``folder``, ``run_dir``, ``model_kind``, ``rules``,
        ``counts`` (events in the folder, selected, compared per split, each exclusion, and
        ``peak_after_data``: compared events whose ``Tmax`` is after their last observation,
        whose two stages hold the same observations),
        ``excluded`` (``name``, ``reason``, ``detail``), ``summary`` (per split of
        :data:`SPLITS` and stage of :data:`STAGES`: ``n`` (events reaching the stage),
        ``left_out``, ``model`` and ``fit`` (per metric of :data:`METRICS`: ``n``, ``median``,
        ``interval``), ``fit_ok`` and ``fit_left_out`` (reason -> count)), ``events`` (one row
        per compared event: OGLE's fit and, per stage, the observations, the frame's
        ``origin_hjd`` and each estimate with its errors), ``bootstrap``, ``seconds`` and
        ``citation``.

    Raises
    ------
    ValueError
        For bad numbers (named), a folder not in the EWS layout, a model without parameter
        heads, or no event left to compare.
    FileNotFoundError
        For a folder or run that is not there.
    """
    from microlens.photometry import ews

    started = time.perf_counter()
    window_days = _check_window(window_days)
    max_events = _check_count("max_events", max_events, 0)
    workers = _check_count("workers", workers, 1)
    seed = _check_count("seed", seed, 0)
    n_bootstrap = _check_count("n_bootstrap", n_bootstrap, 1)
    folder = resolve_path(folder)
    everything = ews.read_folder(folder)
    selected = everything[:max_events] if max_events else everything
    model, run_path = _load_model(run_dir, which, device)
    if model is None:
        raise ValueError("run_dir is required: a run directory trained with parameter heads")
    _check_model(model, run_path if run_path is not None else "the given model")
    trained_on, trained_source = training_stars(run_path)

    counts: dict = {"events_in_folder": len(everything), "selected": len(selected),
                    "not_selected": len(everything) - len(selected)}
    excluded: list[dict] = []
    seen = [e for e in selected if e.star in trained_on]  # never score what the model saw
    selected = [e for e in selected if e.star not in trained_on]
    counts["training_star"] = len(seen)
    excluded += [{"name": e.name, "reason": "training_star"} for e in seen]
    plans, plan_counts, plan_excluded = plan_events(selected, 1)
    for reason in ("no_params", "duplicate_star", "unreadable"):
        counts[reason] = plan_counts[reason]
    excluded += [x for x in plan_excluded
                 if x["reason"] in ("no_params", "duplicate_star", "unreadable")]

    degenerate: dict[str, int] = {}
    usable = []
    for plan in plans:
        problem = ogle_fit_problem(plan.event.fit)
        if problem is not None:
            degenerate[problem] = degenerate.get(problem, 0) + 1
            excluded.append({"name": plan.event.name, "reason": "ogle_fit_degenerate",
                             "detail": problem})
        else:
            usable.append(plan)
    counts["ogle_fit_degenerate"] = sum(degenerate.values())
    counts["ogle_fit_degenerate_by_reason"] = dict(sorted(degenerate.items()))

    # every stage of every usable event, cut as the benchmark cuts a segment
    stage_plans, where, ends = [], [], []
    for i, plan in enumerate(usable):
        for stage, n in stage_ends(plan.event, plan.photometry).items():
            ends.append((i, stage, n))
            if n >= 1:
                stage_plans.append(replace(plan, n_event=n, n_baseline=0))
                where.append((i, stage))
    segments, _, offsets = _segments(stage_plans, window_days)
    origins = [float(stage_plans[j].photometry.absolute_times()[offsets[j]])
               for j in range(len(segments))]
    scored = [j for j, s in enumerate(segments) if len(s) >= MIN_STAGE_POINTS]
    read = time.perf_counter()
    if not scored:
        left = ", ".join(f"{k} {v}" for k, v in counts.items()
                         if k not in ("events_in_folder", "selected") and isinstance(v, int) and v)
        raise ValueError(f"no event of {folder} is left to compare: no stage of a usable OGLE fit "
                         f"has >= {MIN_STAGE_POINTS} observations ({len(selected)} events not "
                         f"trained on; left out: {left or 'none'})")
    medians = np.full((len(segments), len(ESTIMATED)), np.nan)
    medians[scored] = model_medians(model, [segments[j] for j in scored], progress)
    modelled = time.perf_counter()
    fits = np.zeros(len(segments), _FIT_DTYPE)
    fits[scored] = online_fits([segments[j] for j in scored], workers, progress)
    fitted = time.perf_counter()

    by_stage = {w: j for j, w in enumerate(where)}
    rows = []
    short = 0
    for i, plan in enumerate(usable):
        fit = plan.event.fit
        row = {"name": plan.event.name, "star": plan.event.star, "split": split_of(fit),
               "ogle": {"tmax_hjd": fit.tmax, "tau": fit.tau, "umin": fit.umin, "fbl": fit.fbl,
                        "fbl_fixed": bool(fit.fbl_fixed), "i_bl": _plain(fit.i_bl)},
               "peak_after_data": bool(ews.peaks_after_data(plan.event, plan.photometry)),
               "stages": {}}
        for stage in STAGES:
            j = by_stage.get((i, stage))
            n = 0 if j is None else len(segments[j])
            if n < MIN_STAGE_POINTS:
                short += 1
                excluded.append({"name": plan.event.name, "reason": "too_few_observations",
                                 "detail": f"stage {stage}: {n} observations"})
                row["stages"][stage] = {"scored": False, "n": n}
                continue
            origin = origins[j]
            f = fits[j]
            row["stages"][stage] = {
                "scored": True, "n": n, "origin_hjd": origin,
                "model": _estimate_row(medians[j], origin, fit),
                "fit": {**_estimate_row(f["mean"], origin, fit), "ok": bool(f["ok"]),
                        "reason": str(f["reason"])},
            }
        rows.append(row)
    counts["too_few_observations"] = short
    counts["peak_after_data"] = sum(r["peak_after_data"] for r in rows)
    counts["compared"] = len(rows)
    for split in SPLITS:
        counts[split] = sum(r["split"] == split for r in rows)

    rules = {
        "stages": {"tmax": "the observations with full HJD <= OGLE's Tmax",
                   "end": f"the event segment: every observation up to Tmax + "
                          f"{EVENT_END_TAU:g} tau"},
        "window_days": window_days,
        "window": ("the whole curve up to the stage" if window_days is None else
                   f"the last {window_days:g} days up to the stage, renormalised to their own "
                   "baseline (the real benchmark's segments)"),
        "time_frame": ("the model and the fit see days after the stage segment's first "
                       "observation; t_0 + origin_hjd (that observation's full HJD) is compared "
                       "with OGLE's Tmax (full HJD)"),
        "errors": {"dt0_over_tE": "|t_0 - Tmax| / tau", "dlog10_tE": "|log10 t_E - log10 tau|",
                   "du0": "|u_0 - umin|", "dfs": "|f_s - fbl| (blending_fitted only)"},
        "estimate": {"model": "median quantile after the stage's last observation",
                     "fit": "best fit of microlens.models.online_fit.fit_point_lens"},
        "splits": {"blending_fitted": "OGLE fitted fbl (its error is non-zero)",
                   "blending_fixed": "OGLE held fbl fixed (error 0.000): f_s not scored"},
        "training_star": ("events of a star the run's training set was made from are not "
                          f"compared (training stars: {trained_source}, {len(trained_on)} "
                          "stars)"),
        "no_params": "no OGLE fit to compare with",
        "duplicate_star": "only the first event of a star by name counts",
        "ogle_fit_degenerate": ("tau or umin not finite and positive, Amax = 99999, or tau "
                                f"outside [{TAU_RANGE[0]:g}, {TAU_RANGE[1]:g}] d"),
        "too_few_observations": f"a stage with fewer than {MIN_STAGE_POINTS} observations is "
                                "left out for the model and the fit",
        "fit_left_out": ("online fits not ok (microlens.models.online_fit's degenerate-fit "
                         "rule) are counted per reason and left out of the fit's medians; the "
                         "model is scored on every event that reaches the stage"),
        "min_stage_points": MIN_STAGE_POINTS, "tau_range": list(TAU_RANGE),
    }
    return {
        "comparison": "real_parameters",
        "folder": project_relative(folder),
        "run_dir": None if run_path is None else project_relative(run_path),
        "model_kind": getattr(getattr(model, "config", None), "kind", None)
        or getattr(model, "kind", None),
        "rules": rules,
        "counts": counts,
        "excluded": excluded,
        "summary": _summaries(rows, seed, n_bootstrap),
        "events": rows,
        "bootstrap": {"n": n_bootstrap, "seed": seed, "level": 0.95,
                      "method": "percentile, resampling events"},
        "seconds": {"read": read - started, "model": modelled - read, "fit": fitted - modelled,
                    "total": time.perf_counter() - started},
        "citation": CITATION,
    }


# --------------------------------------------------------------------------------------------
# The table and the command line
# --------------------------------------------------------------------------------------------


def _cell(entry: Mapping | None) -> str:
    if not entry or entry.get("median") is None:
        return "—"
    lo, hi = entry["interval"]
    return f"{entry['median']:.3g} [{lo:.3g}, {hi:.3g}]"


def markdown_table(record: Mapping) -> str:
    """The record's summary as a markdown table: the model beside the fit per split, stage and
    error (median [95 % bootstrap interval], number of events), then the counts left out."""
    lines = ["| split | stage | error | model: median [95 % CI] | n | fit: median [95 % CI] "
             "| n | fits left out |", "|---|---|---|---|---|---|---|---|"]
    summary = record["summary"]
    for split in SPLITS:
        for stage in STAGES:
            cell = summary[split][stage]
            left = ", ".join(f"{k} {v}" for k, v in cell["fit_left_out"].items()) or "none"
            for metric in METRICS:
                if metric not in cell["model"]:
                    continue
                model, fit = cell["model"][metric], cell["fit"][metric]
                label = METRIC_LABELS[metric].replace("|", "\\|")  # a pipe ends a cell
                lines.append(f"| {split} | {stage} | {label} | {_cell(model)} | "
                             f"{model['n']} | {_cell(fit)} | {fit['n']} | {left} |")
    counts = record["counts"]
    left = ", ".join(f"{k} {v}" for k, v in counts.items()
                     if k in ("training_star", "no_params", "duplicate_star", "unreadable",
                              "ogle_fit_degenerate", "too_few_observations") and v)
    lines += ["", f"Events compared: {counts['compared']} of {counts['selected']} selected "
                  f"({', '.join(f'{s} {counts[s]}' for s in SPLITS)}); left out: "
                  f"{left or 'none'} (stages with too few observations count per stage).",
              f"Data: {record['citation']}."]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m microlens.realdata.parameters", formatter_class=TerminalHelpFormatter,
        description="Compare a run's parameter heads and the online point-lens fit with OGLE's "
                    "fits of real EWS events at Tmax and at the end of each event; print a "
                    "markdown table.")
    add_traceback_option(parser)
    parser.add_argument("run", help="a run directory trained with parameter heads")
    parser.add_argument("--folder", default=DEFAULT_FOLDER,
                        help=f"a folder in the EWS layout (default {DEFAULT_FOLDER})")
    parser.add_argument("--out", default=None, help="write the full record (JSON) here")
    parser.add_argument("--max-events", type=int, default=0,
                        help="only the first N events of the folder by name (0: all)")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes for the online fits")
    parser.add_argument("--window-days", type=float, default=WINDOW_DAYS,
                        help=f"trailing window of each stage in days (default {WINDOW_DAYS:g})")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    return parser


@command_line
def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison from command-line arguments; 0 on success."""
    from microlens.core.paths import write_json_atomic

    args = _parser().parse_args(argv)
    record = real_parameter_comparison(args.run, args.folder, window_days=args.window_days,
                                       max_events=args.max_events, workers=args.workers,
                                       progress=args.progress, device=args.device)
    if args.out:
        write_json_atomic(args.out, record)
    print(markdown_table(record))
    return 0


__all__ = [
    "DEFAULT_FOLDER", "ESTIMATED", "METRICS", "METRIC_LABELS", "MIN_STAGE_POINTS", "N_BOOTSTRAP",
    "SEED", "SPLITS", "STAGES", "TAU_RANGE", "WINDOW_DAYS", "bootstrap_median", "main",
    "markdown_table", "model_medians", "ogle_fit_problem", "online_fits", "parameter_errors",
    "real_parameter_comparison", "split_of", "stage_ends",
]


if __name__ == "__main__":
    # through the importable module, so the fit workers find its functions by their name
    from microlens.realdata.parameters import main as _main

    sys.exit(_main())
