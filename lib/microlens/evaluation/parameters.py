"""How well lens parameters are known while an event unfolds: a model's parameter heads beside the
classical online point-lens fit, on held-out events.

For every lensing event of a data set's test split the estimates are read at **checkpoints in
the event's own time**, ``t = t_0 + x t_E`` for ``x`` in :data:`PHASES` (the truth's ``t_0`` and
``t_E`` only choose *when* to look; what is estimated uses the observations up to then): the
model's quantiles after the last observation at or before that time, and the online fit
(:func:`microlens.models.online_fit.online_fit`) on the same observations. A checkpoint counts
when the curve has an observation within :data:`PHASE_TOLERANCE` ``t_E`` before it and at least
:data:`MIN_SEEN` observations up to it (a seasonal gap or the window's start leave it out).

Measured (:func:`evaluate_parameters`, saved as a JSON record that every figure is rebuilt from,
:mod:`microlens.reports.parameters`):

* **errors**: median ``|Δt_0| / t_E``, ``|Δ log10 t_E|``, ``|Δu_0|`` and ``|Δf_s|`` of the model's
  median and of the fit's best value, with bootstrap intervals over events, on the events where
  both answered, with the paired Wilcoxon test of the two absolute errors; the fit's
  degenerate answers (its stated rule) are counted, not scored;
* **coverage** of the 68 % and 95 % intervals (the model's quantiles; the fit's ``±1`` and
  ``±1.96 sigma``) with Wilson intervals; a cell passes when its interval overlaps
  :data:`COVERAGE_BANDS`;
* the same errors and coverage against the **share of the curve seen** (the model only);
* **high-magnification alerts** (``u_0 <= 0.1``, ``A_max >= 10``): at the checkpoints of
  :data:`ALERT_PHASES` of every test event (no-event curves at their drawn, unused ``t_0`` and
  ``t_E``), an alert is raised when the answer says lensing (the model: its calibrated
  probability of a lensing class >= 0.5; the fit: a good fit with ``Δχ²`` over a flat line of at
  least :data:`FIT_ALERT_DCHI2`) and its ``u_0`` is at most a threshold; over thresholds,
  precision and recall of the events alerted at or before the peak, and the median lead time
  ``t_0 - t_alert`` of the true alerts; reported at ``u_0 <= 0.1`` and at the best precision with
  recall >= 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from microlens.core.metrics import wilson_interval

PHASES = (-1.0, -0.5, 0.0, 1.0)
"""Checkpoints ``(t - t_0) / t_E`` of the error and coverage tables."""
ALERT_PHASES = (-2.0, -1.5, -1.0, -0.75, -0.5, -0.25, 0.0)
"""Checkpoints of the high-magnification alerts (up to the peak)."""
SEEN_SHARES = (0.1, 0.25, 0.5, 0.75, 1.0)
"""Shares of each curve's observations at which the model is also scored."""
PHASE_TOLERANCE = 0.1
"""A checkpoint needs an observation within this many ``t_E`` before it."""
MIN_SEEN = 10
"""A checkpoint needs at least this many observations up to it."""
COVERAGE_BANDS = {0.68: (0.63, 0.73), 0.95: (0.92, 0.98)}
"""Nominal level -> the band a coverage cell's 95 % interval must overlap to pass."""
FIT_ALERT_DCHI2 = 100.0
"""The online fit's lensing evidence for an alert: chi-squared improvement over a flat line."""
ALERT_THRESHOLDS = tuple(float(x) for x in np.round(np.geomspace(0.01, 1.0, 21), 4))
"""``u_0`` thresholds swept for the alerts' precision and recall."""
COMPARED = ("t_0", "log10_t_E", "u_0", "f_s")
"""The point-lens parameters compared with the fit, as their errors are stated."""
N_BOOTSTRAP = 1000


def checkpoint_counts(times: np.ndarray, mask: np.ndarray, t_0: np.ndarray, t_E: np.ndarray,
                      phases: Sequence[float]) -> np.ndarray:
    """Observations seen at each checkpoint ``t_0 + x t_E`` (``(R, J)`` int; 0: the checkpoint
    does not count, module docstring)."""
    times = np.where(mask, times, np.inf)
    at = t_0[:, None] + np.asarray(phases)[None, :] * t_E[:, None]  # (R, J)
    counts = np.stack([np.sum(times <= at[:, [j]], axis=1) for j in range(at.shape[1])], axis=1)
    last = np.take_along_axis(times, np.maximum(counts - 1, 0), axis=1)
    near = (at - last) <= PHASE_TOLERANCE * t_E[:, None]
    return np.where((counts >= MIN_SEEN) & near, counts, 0)


def model_answers(model, store, rows: np.ndarray, counts: np.ndarray,
                  progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The model's quantiles ``(R, J, P, Q)`` (``t_0`` absolute) and calibrated class
    probabilities ``(R, J, C)`` after ``counts[i, j]`` observations of event ``rows[i]`` (NaN
    where the count is 0)."""
    import torch
    from tqdm.auto import tqdm

    from microlens.models.parameters import QUANTILES, TARGETS, absolute_quantiles

    n_rows, n_cuts = counts.shape
    quantiles = np.full((n_rows, n_cuts, len(TARGETS), len(QUANTILES)), np.nan, np.float32)
    probs = np.full((n_rows, n_cuts, model.config.n_classes), np.nan, np.float32)
    size = 16
    model.eval()
    for start in tqdm(range(0, n_rows, size), desc="parameter heads", disable=not progress):
        part = slice(start, start + size)
        width = int(max(counts[part].max(), 1))
        batch = store.batch(rows[part])
        arrays = {k: batch[k][:, :width] for k in ("times", "flux", "flux_err", "mask")}
        with torch.no_grad():
            out = model(arrays["times"], arrays["flux"], arrays["flux_err"], arrays["mask"])
            q = absolute_quantiles(out["parameters"], arrays["times"]).numpy()
            p = model.calibrate(out["logits"]).softmax(-1).numpy()
        for i, c in enumerate(counts[part]):
            good = c > 0
            quantiles[start + i, good] = q[i, c[good] - 1]
            probs[start + i, good] = p[i, c[good] - 1]
    return quantiles, probs


def _bootstrap_median(values: np.ndarray, rng: np.random.Generator) -> list[float | None]:
    if values.size == 0:
        return [None, None]
    draws = rng.integers(0, values.size, (N_BOOTSTRAP, values.size))
    medians = np.median(values[draws], axis=1)
    return [float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))]


def _coverage_cell(inside: np.ndarray, level: float) -> dict:
    n, k = int(inside.size), int(inside.sum())
    lo, hi = wilson_interval(k, n) if n else (None, None)
    band = COVERAGE_BANDS[level]
    return {"n": n, "coverage": k / n if n else None, "interval": [lo, hi],
            "passes": bool(n and lo <= band[1] and hi >= band[0])}


def _errors(name: str, model_value, fit_value, truth, t_E):
    """Absolute errors of the model and the fit in the units the tables state."""
    if name == "t_0":
        return np.abs(model_value - truth) / t_E, np.abs(fit_value - truth) / t_E
    return np.abs(model_value - truth), np.abs(fit_value - truth)


def _model_space(quantiles: np.ndarray, name: str) -> np.ndarray:
    """``(..., Q)`` quantiles of a compared parameter (``u_0`` from ``log10 u_0``)."""
    from microlens.models.parameters import TARGETS

    if name == "u_0":
        return 10.0 ** quantiles[..., TARGETS.index("log10_u_0"), :]
    return quantiles[..., TARGETS.index(name), :]


def _fit_value(fit_mean: np.ndarray, name: str) -> np.ndarray:
    from microlens.models.online_fit import PARAMETERS

    if name == "u_0":
        return 10.0 ** fit_mean[..., PARAMETERS.index("log10_u_0")]
    return fit_mean[..., PARAMETERS.index(name)]


def _truth(values: np.ndarray, name: str) -> np.ndarray:
    from microlens.models.parameters import TARGETS

    if name == "u_0":
        return 10.0 ** values[:, TARGETS.index("log10_u_0")]
    return values[:, TARGETS.index(name)]


def error_table(quantiles, fit, values, t_E, counts, seed: int = 0) -> dict:
    """Per phase and compared parameter: medians of the absolute errors of the model and the
    fit with bootstrap intervals, and the paired test (module docstring)."""
    from scipy.stats import wilcoxon

    from microlens.models.parameters import MEDIAN

    rng = np.random.default_rng(seed)
    table = {}
    for j, phase in enumerate(PHASES):
        cell = {}
        here = counts[:, j] > 0
        fit_ok = here & fit["ok"][:, j]
        for name in COMPARED:
            model_err, fit_err = _errors(name, _model_space(quantiles[:, j], name)[:, MEDIAN],
                                         _fit_value(fit["mean"][:, j], name), _truth(values, name),
                                         t_E)
            both = fit_ok & np.isfinite(model_err) & np.isfinite(fit_err)
            m, f = model_err[both], fit_err[both]
            entry = {"n": int(both.sum()), "n_checkpoint": int(here.sum()),
                     "fit_degenerate": int((here & ~fit["ok"][:, j]).sum()),
                     "model_median": float(np.median(m)) if m.size else None,
                     "model_interval": _bootstrap_median(m, rng),
                     "fit_median": float(np.median(f)) if f.size else None,
                     "fit_interval": _bootstrap_median(f, rng),
                     "model_median_all": (float(np.median(model_err[here])) if here.any()
                                          else None)}
            entry["wilcoxon_p"] = (float(wilcoxon(m, f).pvalue) if m.size >= 10
                                   and np.any(m != f) else None)
            if entry["model_median"] is not None and entry["fit_median"]:
                entry["ratio"] = entry["model_median"] / entry["fit_median"]
            cell[name] = entry
        table[str(phase)] = cell
    return table


def coverage_table(quantiles, fit, values, counts, phases=PHASES) -> dict:
    """Per phase, parameter and level: coverage of the model's and the fit's intervals."""
    from microlens.models.online_fit import PARAMETERS
    from microlens.models.parameters import INTERVALS, TARGETS

    table = {}
    for j, phase in enumerate(phases):
        here = counts[:, j] > 0
        cell = {}
        for name in PARAMETERS:
            truth = values[:, TARGETS.index(name)]
            q = quantiles[:, j, TARGETS.index(name)]
            entry = {}
            for level, (lo, hi) in INTERVALS.items():
                inside = (q[:, lo] <= truth) & (truth <= q[:, hi])
                entry[f"model_{int(100 * level)}"] = _coverage_cell(inside[here], level)
                if fit is not None:
                    z = 1.0 if level == 0.68 else 1.959964
                    k = PARAMETERS.index(name)
                    ok = here & fit["ok"][:, j]
                    inside_fit = np.abs(fit["mean"][:, j, k] - truth) <= z * fit["sigma"][:, j, k]
                    entry[f"fit_{int(100 * level)}"] = _coverage_cell(inside_fit[ok], level)
            cell[name] = entry
        table[str(phase)] = cell
    return table


def alert_table(model_quantiles, model_probs, fit, dchi2, counts, t_0, labels, u_0_true) -> dict:
    """Precision, recall and lead time of high-magnification alerts (module docstring)."""
    from microlens.models.online_fit import PARAMETERS
    from microlens.models.parameters import HIGH_MAGNIFICATION_U_0, MEDIAN, TARGETS

    positive = np.isin(labels, (1, 2)) & (u_0_true <= HIGH_MAGNIFICATION_U_0)
    phases = np.asarray(ALERT_PHASES)
    answers = {
        "model": (10.0 ** model_quantiles[..., TARGETS.index("log10_u_0"), MEDIAN],
                  np.nansum(model_probs[..., 1:], axis=-1) >= 0.5),
        "fit": (10.0 ** fit["mean"][..., PARAMETERS.index("log10_u_0")],
                fit["ok"] & (dchi2 >= FIT_ALERT_DCHI2)),
    }
    out = {"n_events": int(labels.size), "n_positive": int(positive.sum()),
           "thresholds": list(ALERT_THRESHOLDS)}
    for who, (u_0, lensing) in answers.items():
        curve = []
        for threshold in ALERT_THRESHOLDS:
            alert = (counts > 0) & lensing & (u_0 <= threshold)
            alerted = alert.any(axis=1)
            first = np.where(alerted, np.argmax(alert, axis=1), -1)
            tp = alerted & positive
            precision = float(tp.sum() / alerted.sum()) if alerted.any() else None
            recall = float(tp.sum() / positive.sum()) if positive.any() else None
            lead = -phases[first[tp]] if tp.any() else np.zeros(0)
            curve.append({"threshold": threshold, "alerted": int(alerted.sum()),
                          "true": int(tp.sum()), "precision": precision, "recall": recall,
                          "median_lead_t_E": float(np.median(lead)) if lead.size else None})
        at_nominal = min(curve, key=lambda c: abs(c["threshold"] - HIGH_MAGNIFICATION_U_0))
        reaching = [c for c in curve if c["recall"] is not None and c["recall"] >= 0.5
                    and c["precision"] is not None]
        best = max(reaching, key=lambda c: c["precision"]) if reaching else None
        out[who] = {"curve": curve, "at_u_0_0.1": at_nominal, "best_at_recall_0.5": best}
    return out


def cached_online_fit(store, rows: np.ndarray, counts: np.ndarray, cache, *, workers: int,
                      progress: bool) -> dict:
    """:func:`microlens.models.online_fit.online_fit` of ``rows`` at ``counts``, read from the
    npz ``cache`` when it holds the fits of exactly these rows and counts of these curves
    (``store.identity``: a set regenerated in place is fitted again; the fits do not depend on
    the model, so every run scored on a set shares them), else computed and written there
    (None: no cache)."""
    from pathlib import Path

    from microlens.models.online_fit import online_fit

    keys = ("mean", "sigma", "ok", "dchi2")
    if cache is not None and Path(cache).exists():
        with np.load(cache, allow_pickle=False) as saved:
            if ("identity" in saved.files and str(saved["identity"]) == store.identity
                    and np.array_equal(saved["rows"], rows)
                    and np.array_equal(saved["counts"], counts)):
                return {k: saved[k] for k in keys}
    fit = online_fit(store, rows, counts, workers=workers, progress=progress)
    if cache is not None:
        from microlens.core.paths import atomic_path

        with atomic_path(cache) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, identity=store.identity, rows=rows, counts=counts,
                     **{k: fit[k] for k in keys})
    return fit


def evaluate_parameters(run_dir, dataset=None, *, max_events: int = 0, workers: int = 1,
                        seed: int = 0, progress: bool = False, fit_cache=None) -> dict:
    """The record of a run's parameter heads beside the online fit on the test split.

    Parameters
    ----------
    run_dir : path
        A run of a neural kind trained with ``ModelConfig(parameter_heads=True)``.
    dataset : path, optional
        The data set whose test split is scored (default: the run's own). Another data set
        (e.g. events injected into other stars) must not share the run's training events.
    max_events : int
        Score at most this many test events (a seeded random subset; 0: all).
    workers : int
        Processes of the online fit (the results do not depend on it).
    fit_cache : path, optional
        An npz file to keep the online fits in (:func:`cached_online_fit`): runs scored on the
        same events share them.

    Returns
    -------
    dict
        JSON-ready: ``errors``, ``coverage``, ``coverage_by_share``, ``alerts`` and the counts
        (module docstring).
    """
    from microlens.data.store import open_dataset
    from microlens.evaluation.predictions import run_dataset_path
    from microlens.models.holdout import observations_seen
    from microlens.models.parameters import TARGETS, event_targets
    from microlens.models.registry import load_model

    model = load_model(run_dir)
    if getattr(model, "parameter_head", None) is None:
        raise ValueError(f"the run {run_dir} has no parameter heads; train it with "
                         "ModelConfig(parameter_heads=True)")
    dataset = dataset or run_dataset_path(run_dir)
    store = open_dataset(dataset)
    rows = store.indices("test")
    if max_events and rows.size > max_events:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_events, replace=False))
    labels = np.asarray(store.labels[rows])
    params = np.asarray(store.params[rows])
    values, _ = event_targets(params, labels)
    t_0 = np.asarray(params["t_0"], np.float64)
    t_E = np.asarray(params["t_E"], np.float64)
    arrays = store.padded(rows, names=("times", "flux", "flux_err"))
    all_phases = tuple(sorted(set(PHASES) | set(ALERT_PHASES)))
    counts_all = checkpoint_counts(arrays["times"], arrays["mask"], t_0, t_E, all_phases)
    fit = cached_online_fit(store, rows, counts_all, fit_cache, workers=workers,
                            progress=progress)
    # one causal pass answers at the checkpoints and at the shares of each curve seen
    lengths = arrays["mask"].sum(axis=1)
    share_counts = np.stack([observations_seen(lengths, f) for f in SEEN_SHARES], axis=1)
    answers, probs = model_answers(model, store, rows,
                                   np.concatenate([counts_all, share_counts], axis=1), progress)
    quantiles, share_q = answers[:, : len(all_phases)], answers[:, len(all_phases):]

    def pick(phases):
        return [all_phases.index(p) for p in phases]

    lensing = np.isin(labels, (1, 2))
    sub = pick(PHASES)
    lens_fit = {k: v[lensing][:, sub] for k, v in fit.items()}
    counts = counts_all[lensing][:, sub]
    record = {
        "run": str(run_dir), "dataset": str(dataset), "n_test_events": int(rows.size),
        "n_lensing": int(lensing.sum()), "phases": list(PHASES), "targets": list(TARGETS),
        "checkpoint_events": {str(p): int((counts[:, j] > 0).sum())
                              for j, p in enumerate(PHASES)},
        "errors": error_table(quantiles[lensing][:, sub], lens_fit, values[lensing],
                              t_E[lensing], counts, seed),
        "coverage": coverage_table(quantiles[lensing][:, sub], lens_fit, values[lensing], counts),
    }
    record["coverage_by_share"] = coverage_table(share_q[lensing], None, values[lensing],
                                                 share_counts[lensing], SEEN_SHARES)
    record["shares"] = list(SEEN_SHARES)
    alert = pick(ALERT_PHASES)
    record["alerts"] = alert_table(quantiles[:, alert], probs[:, alert],
                                   {k: v[:, alert] for k, v in fit.items()},
                                   fit["dchi2"][:, alert],
                                   counts_all[:, alert], t_0, labels,
                                   np.abs(np.asarray(params["u_0"], np.float64)))
    return record


__all__ = [
    "ALERT_PHASES", "ALERT_THRESHOLDS", "COMPARED", "COVERAGE_BANDS", "FIT_ALERT_DCHI2",
    "MIN_SEEN", "PHASES", "PHASE_TOLERANCE", "SEEN_SHARES", "alert_table", "cached_online_fit",
    "checkpoint_counts",
    "coverage_table", "error_table", "evaluate_parameters", "model_answers",
]
