"""The benchmark's numbers, computed from its per-event rows (so folds can be merged).

Every figure of a benchmark record (:func:`summarise`) is a function of the rows that
:func:`microlens.realdata.benchmark.run_benchmark` writes, one per scored star, and of the rules
(:data:`DEFAULT_RULES`): :func:`combine_reports` merges the rows of several reports (the
folds of a cross-fitted benchmark) and recomputes every share and interval, so a merged report
is exactly what one report over all the rows would say.

A share is ``{"count", "of", "share", "interval"}``: ``count`` of ``of`` trials, their ratio
(None for no trials) and its 95 % Wilson interval (:func:`microlens.core.metrics.wilson_interval`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from microlens.core.metrics import wilson_interval

BIN_EDGES: dict[str, tuple[float, ...]] = {
    "baseline_mag": (17.0, 18.0, 19.0, 20.0),
    "cadence_days": (0.25, 1.5),
    "tau_days": (10.0, 30.0, 60.0),
}
"""Inner edges of the bins each metric is also given in: OGLE's baseline I magnitude ``I_bl``
(source and blend);
the median interval between consecutive observations of the star's whole curve [days]
(below 0.25: several per night; 0.25-1.5: about nightly; above: every few nights); OGLE's
``tau`` (t_E) [days]. A bin holds ``lower <= value < upper``."""

BIN_QUANTITIES = {"baseline_mag": "baseline I magnitude (OGLE's I_bl)",
                  "cadence_days": "median interval between observations [days]",
                  "tau_days": "OGLE's tau (t_E) [days]"}
"""What each binned quantity is, for tables and figure axes."""

HEADLINE = ("events_lensing", "events_binary", "baselines_lensing", "stream_false_alerts")
"""The headline metrics, in table order."""

HEADLINE_LABELS = {
    "events_lensing": "events called lensing (final answer of the event segment)",
    "events_binary": "events called binary (final answer of the event segment)",
    "baselines_lensing": "baselines called lensing (final answer of the baseline segment)",
    "stream_false_alerts": "baselines with a stream alert (P(lensing) >= threshold at any "
                           "observation)",
}
"""Each headline metric in words."""

CURVE_POINTS = 201
"""Most points kept on the threshold curve (evenly spaced in rank; the ends always kept)."""


def share(count: int, of: int) -> dict:
    """``{"count", "of", "share", "interval"}`` with the 95 % Wilson interval (None without
    trials).

    Raises
    ------
    ValueError
        For a count outside ``[0, of]``.
    """
    count, of = int(count), int(of)
    low, high = wilson_interval(count, of)
    return {"count": count, "of": of, "share": None if of == 0 else count / of,
            "interval": None if of == 0 else [low, high]}


def not_applicable(reason: str) -> dict:
    """A metric that does not apply (the peer has no stream), with the reason; never a zero."""
    return {"applicable": False, "reason": reason}


def lensing(probabilities: Sequence[float]) -> float:
    """P(lensing) = P(PSPL) + P(binary) of one answer ``[P0, P1, P2]``."""
    return float(probabilities[1]) + float(probabilities[2])


MAX_LOG_ODDS = 1000.0
"""The score of a certain answer (P(no event) or P(lensing) exactly 0)."""


def lensing_log_odds(probabilities: Sequence[float]) -> float:
    """The score thresholds rank by: ``log P(lensing) - log P(no event)`` of one answer.

    Monotone in P(lensing), but it keeps ranking confident answers where ``P(lensing)`` itself
    is 1 to the last digit (``P(no event)`` of 1e-20 against 1e-12). Clipped to
    +-:data:`MAX_LOG_ODDS`: the maximum when ``P(no event)`` is 0, the minimum when
    ``P(lensing)`` is 0 (float64 holds probabilities down to ~1e-308, log-odds ~ +-709).
    """
    p0 = float(probabilities[0])
    p_lensing = float(probabilities[1]) + float(probabilities[2])
    if p0 <= 0:
        return MAX_LOG_ODDS
    if p_lensing <= 0:
        return -MAX_LOG_ODDS
    return max(-MAX_LOG_ODDS, min(MAX_LOG_ODDS, math.log(p_lensing) - math.log(p0)))


def log_odds(threshold: float) -> float:
    """A threshold on P(lensing) as a threshold on :func:`lensing_log_odds`."""
    t = float(threshold)
    if t >= 1:
        return math.inf
    if t <= 0:
        return -math.inf
    return math.log(t) - math.log1p(-t)


def probability(score: float) -> float:
    """P(lensing) of a log-odds score (the inverse of :func:`log_odds`)."""
    if math.isinf(score):
        return 1.0 if score > 0 else 0.0
    if score >= 0:
        return 1.0 / (1.0 + math.exp(-score))
    return math.exp(score) / (1.0 + math.exp(score))


def _top(probabilities: Sequence[float]) -> int:
    return int(np.argmax(np.asarray(probabilities, dtype=np.float64)))


# --------------------------------------------------------------------------------------------
# Headline metrics
# --------------------------------------------------------------------------------------------


PEER_STREAM_REASON = ("the classical peer answers once, at the end of each segment: it has no "
                      "answer after every observation to raise a stream alert")


def _answered(rows: Sequence[dict], part: str) -> list[dict]:
    """The segments ``part`` ('event' or 'baseline') of ``rows`` that the model answered."""
    return [r[part] for r in rows if r.get(part) and r[part].get("final") is not None]


def model_metrics(rows: Sequence[dict], alert_threshold: float) -> dict | None:
    """The model's headline shares over ``rows`` (:data:`HEADLINE`); None when no row has a
    model answer (the peer scored alone)."""
    events, baselines = _answered(rows, "event"), _answered(rows, "baseline")
    if not events and not baselines and any(r.get("event") or r.get("baseline")
                                            for r in rows):
        return None
    return {
        "events_lensing": share(sum(_top(e["final"]) != 0 for e in events), len(events)),
        "events_binary": share(sum(_top(e["final"]) == 2 for e in events), len(events)),
        "baselines_lensing": share(sum(_top(b["final"]) != 0 for b in baselines),
                                   len(baselines)),
        "stream_false_alerts": share(sum(b["max_lensing"] >= alert_threshold
                                         for b in baselines), len(baselines)),
    }


def peer_metrics(rows: Sequence[dict]) -> dict | None:
    """The classical peer's headline shares (None when no row has a peer answer); its stream
    entry is :func:`not_applicable`."""
    events = [r["event"] for r in rows if r.get("event") and r["event"].get("peer")]
    baselines = [r["baseline"] for r in rows if r.get("baseline") and r["baseline"].get("peer")]
    if not events and not baselines:
        return None
    return {
        "events_lensing": share(sum(e["peer"]["class"] != 0 for e in events), len(events)),
        "events_binary": share(sum(e["peer"]["class"] == 2 for e in events), len(events)),
        "baselines_lensing": share(sum(b["peer"]["class"] != 0 for b in baselines),
                                   len(baselines)),
        "stream_false_alerts": not_applicable(PEER_STREAM_REASON),
    }


# --------------------------------------------------------------------------------------------
# Bins --------------------------------------------------------------------------------------------


def bin_value(row: dict, quantity: str) -> float | None:
    """The value of a row that ``quantity`` (a key of :data:`BIN_EDGES`) bins; None unknown."""
    fit = row.get("fit") or {}
    value = {"baseline_mag": fit.get("i_bl"), "cadence_days": row.get("cadence_days"),
             "tau_days": fit.get("tau")}[quantity]
    return None if value is None or not math.isfinite(value) else float(value)


def bin_labels(edges: Sequence[float]) -> list[str]:
    """``["< a", "a-b", ..., ">= z"]`` for inner edges ``a < b < ... < z``."""
    edges = [f"{e:g}" for e in edges]
    return ([f"< {edges[0]}"] + [f"{a}-{b}" for a, b in zip(edges, edges[1:], strict=False)]
            + [f">= {edges[-1]}"])


def binned(rows: Sequence[dict], alert_threshold: float,
           edges: Mapping[str, Sequence[float]] = BIN_EDGES) -> dict:
    """The headline metrics of model and peer per bin of each quantity of ``edges``.

    Returns
    -------
    dict
        ``{quantity: {"what", "edges", "bins": [{"label", "lower", "upper", "n_stars",
        "model", "peer"}], "unknown": rows without a value}}``.
    """
    out = {}
    for quantity, inner in edges.items():
        inner = [float(e) for e in inner]
        bounds = [-math.inf, *inner, math.inf]
        values = [bin_value(r, quantity) for r in rows]
        bins = []
        for label, lower, upper in zip(bin_labels(inner), bounds, bounds[1:], strict=False):
            members = [r for r, v in zip(rows, values, strict=True)
                       if v is not None and lower <= v < upper]
            bins.append({"label": label, "lower": None if lower == -math.inf else lower,
                         "upper": None if upper == math.inf else upper,
                         "n_stars": len(members),
                         "model": model_metrics(members, alert_threshold),
                         "peer": peer_metrics(members)})
        out[quantity] = {"what": BIN_QUANTITIES.get(quantity, quantity), "edges": inner,
                         "bins": bins, "unknown": sum(v is None for v in values)}
    return out


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


def _quartiles(values: Sequence[float]) -> dict:
    if not values:
        return {"median": None, "q25": None, "q75": None}
    q25, median, q75 = np.percentile(np.asarray(values, dtype=np.float64), [25, 50, 75])
    return {"median": float(median), "q25": float(q25), "q75": float(q75)}


def timing_summary(rows: Sequence[dict], timed: bool = True,
                   reason: str | None = None) -> dict:
    """When the model first alerted, against OGLE's ``Tmax``, over the timed events.

    ``lead`` is ``Tmax`` minus the time of the alert (positive: before the peak), in days and
    in units of ``tau``; its median and quartiles are over the alerted events, the share
    alerted before ``Tmax`` over every timed event (a never-alerted event counts as not).
    ``timed=False`` (the ``features`` kind, which answers at fixed fractions of a curve) gives
    ``{"timed": False, "reason": ...}`` and nothing measured.
    """
    if not timed:
        return {"timed": False, "reason": reason}
    eligible = [r["event"]["timing"] for r in rows
                if r.get("event") and r["event"].get("timing")]
    alerted = [t for t in eligible if t["lead_days"] is not None]
    return {
        "timed": True,
        "n_timed": len(eligible),
        "n_alerted": len(alerted),
        "n_never_alerted": len(eligible) - len(alerted),
        "n_alert_in_event_free_part": sum(bool(t["earlier_alert"]) for t in eligible),
        "lead_days": _quartiles([t["lead_days"] for t in alerted]),
        "lead_tau": _quartiles([t["lead_tau"] for t in alerted]),
        "alerted_before_peak": share(sum(t["lead_days"] > 0 for t in alerted), len(eligible)),
    }


# --------------------------------------------------------------------------------------------
# Threshold curve
# --------------------------------------------------------------------------------------------


def threshold_curve(rows: Sequence[dict], max_points: int = CURVE_POINTS) -> dict:
    """Events found against baselines called lensing as the threshold on the final
    P(lensing) moves (a segment is called lensing when its final P(lensing) >= threshold).

    Segments are ranked by :func:`lensing_log_odds`, so answers whose P(lensing) is 1 to the
    last digit still rank by how small P(no event) is.

    Returns
    -------
    dict
        ``log_odds_thresholds`` (decreasing, from above every finite score to the lowest) and
        the same as P(lensing) in ``thresholds`` (None for the first), ``events_found`` and
        ``baselines_lensing`` (shares at each), ``n_events``, ``n_baselines``; at most
        ``max_points`` points, evenly spaced in rank, the ends kept.
    """
    events = np.array([lensing_log_odds(e["final"]) for e in _answered(rows, "event")])
    baselines = np.array([lensing_log_odds(b["final"]) for b in _answered(rows, "baseline")])
    scores = np.unique(np.concatenate([events, baselines]))[::-1]
    thresholds = np.concatenate([[math.inf], scores])
    if thresholds.size > max_points:
        keep = np.unique(np.round(np.linspace(0, thresholds.size - 1, max_points)).astype(int))
        thresholds = thresholds[keep]
    found = [float(np.mean(events >= t)) if events.size else None for t in thresholds]
    called = [float(np.mean(baselines >= t)) if baselines.size else None for t in thresholds]
    return {"thresholds": [None if math.isinf(t) and t > 0 else probability(t)
                           for t in thresholds],
            "log_odds_thresholds": [None if math.isinf(t) else float(t) for t in thresholds],
            "events_found": found, "baselines_lensing": called,
            "n_events": int(events.size), "n_baselines": int(baselines.size)}


def operating_point(rows: Sequence[dict], threshold: float | None = None, *,
                    log_odds_threshold: float | None = None) -> dict:
    """Events found and baselines called lensing at one given threshold on the final
    P(lensing), with Wilson intervals.

    Give ``threshold`` as P(lensing) (compared as :func:`log_odds`) or, where a threshold
    lies closer to 1 than float64 resolves (1 - 1e-17), ``log_odds_threshold`` on the score of
    :func:`lensing_log_odds` (as :func:`microlens.realdata.benchmark.crossfit.choose_threshold`
    returns it).
    """
    if (threshold is None) == (log_odds_threshold is None):
        raise ValueError("operating_point: give threshold (P(lensing)) or log_odds_threshold, "
                         "exactly one")
    score = log_odds(threshold) if log_odds_threshold is None else float(log_odds_threshold)
    threshold = probability(score) if threshold is None else threshold
    events = [lensing_log_odds(e["final"]) for e in _answered(rows, "event")]
    baselines = [lensing_log_odds(b["final"]) for b in _answered(rows, "baseline")]
    return {"threshold": float(threshold), "log_odds_threshold": score,
            "events_found": share(sum(s >= score for s in events), len(events)),
            "baselines_lensing": share(sum(s >= score for s in baselines),
                                       len(baselines))}


# --------------------------------------------------------------------------------------------
# The whole summary, and merging folds
# --------------------------------------------------------------------------------------------


def summarise(rows: Sequence[dict], rules: Mapping) -> dict:
    """Every figure of the benchmark from its rows and rules: ``metrics`` (model, peer),
    ``bins``, ``timing``, ``threshold_curve`` and, when ``rules["threshold"]`` is set,
    ``operating_point``."""
    alert = float(rules["alert_threshold"])
    threshold = rules.get("threshold")
    return {
        "metrics": {"model": model_metrics(rows, alert), "peer": peer_metrics(rows)},
        "bins": binned(rows, alert, rules.get("bin_edges", BIN_EDGES)),
        "timing": timing_summary(rows, rules.get("timed", True), rules.get("untimed_reason")),
        "threshold_curve": threshold_curve(rows),
        "operating_point": None if threshold is None else operating_point(rows, threshold),
    }


def shown(entry: Mapping | None, not_applicable: str = "not applicable") -> str:
    """A share entry as ``share % [low, high] (count/of)`` in per cent, or why there is none
    (``not_applicable`` for a figure the record says does not apply)."""
    if entry is None:
        return "not run"
    if entry.get("applicable") is False:
        return not_applicable
    if entry["share"] is None:
        return "no segments"
    low, high = entry["interval"]
    return (f"{100 * entry['share']:.1f} % [{100 * low:.1f}, {100 * high:.1f}] "
            f"({entry['count']}/{entry['of']})")


def headline_rows(record: Mapping) -> list[dict]:
    """The headline table as rows ``{"metric", "model", "peer"}`` (per cent, 95 % interval,
    count), for a DataFrame or a printed table."""
    model, peer = record["metrics"].get("model"), record["metrics"].get("peer")
    return [{"metric": HEADLINE_LABELS[key],
             "model": shown(None if model is None else model[key]),
             "peer": shown(None if peer is None else peer[key])} for key in HEADLINE]


COMPARED_RULES = ("min_segment_points", "alert_threshold", "max_baseline_snr",
                  "timing_min_points", "event_end_tau", "bin_edges", "threshold", "timed")
"""Rules that reports must share to be merged."""


def combine_reports(reports: Iterable[Mapping]) -> dict:
    """Merge benchmark reports (the folds of a cross-fitted benchmark) into one.

    Counts add, the rows are joined (sorted by event name) and every share, interval, bin,
    timing statistic and the threshold curve are recomputed from them
    (:func:`summarise`), so the merged report says what one benchmark over all the rows would.

    Parameters
    ----------
    reports : iterable of dict
        Full records of :func:`microlens.realdata.benchmark.run_benchmark` (with their
        ``events``), at least one, made under the same rules (:data:`COMPARED_RULES`) and with
        no event scored twice.

    Returns
    -------
    dict
        A record of the same form (``run_dir`` None); ``run_dirs``, ``model_kinds`` and
        ``peers`` list each report's, ``folds`` is the number merged.

    Raises
    ------
    ValueError
        For no reports, a report without its rows (a printed summary, not the full record),
        reports made under different rules (naming the rule and both values), or an event
        scored in two reports (naming it).
    """
    reports = list(reports)
    if not reports:
        raise ValueError("combine_reports needs at least one report, got none")
    for i, report in enumerate(reports):
        if not isinstance(report, Mapping) or "events" not in report or "rules" not in report:
            raise ValueError(f"report {i} has no 'events' rows or no 'rules': give the full "
                             "record (run_benchmark's return value or the --out file), not "
                             "the printed summary")
    rules = dict(reports[0]["rules"])
    for i, report in enumerate(reports[1:], start=1):
        for key in COMPARED_RULES:
            if report["rules"].get(key) != rules.get(key):
                raise ValueError(f"report {i} was made with {key} = "
                                 f"{report['rules'].get(key)!r}, report 0 with "
                                 f"{rules.get(key)!r}: merge only reports of the same rules")
    rows, seen = [], {}
    for i, report in enumerate(reports):
        for row in report["events"]:
            if row["name"] in seen:
                raise ValueError(f"event {row['name']} is scored in report {seen[row['name']]} "
                                 f"and report {i}: folds must not share events")
            seen[row["name"]] = i
            rows.append(row)
    rows.sort(key=lambda r: r["name"])
    counts: dict[str, int] = {}
    for report in reports:
        for key, value in report.get("counts", {}).items():
            counts[key] = counts.get(key, 0) + int(value)
    excluded = sorted((x for r in reports for x in r.get("excluded", [])),
                      key=lambda x: x["name"])
    first = reports[0]
    return {
        **{k: v for k, v in first.items() if k not in ("events", "excluded", "counts")},
        "run_dir": None, "run_dirs": [r.get("run_dir") for r in reports],
        "model_kinds": [r.get("model_kind") for r in reports],
        "peers": [r.get("peer") for r in reports], "folds": len(reports),
        "counts": counts, "excluded": excluded,
        **summarise(rows, rules),
        "events": rows,
    }


__all__ = [
    "BIN_EDGES", "BIN_QUANTITIES", "COMPARED_RULES", "CURVE_POINTS", "HEADLINE",
    "HEADLINE_LABELS", "PEER_STREAM_REASON", "bin_labels", "bin_value", "binned",
    "combine_reports", "headline_rows", "lensing", "model_metrics", "not_applicable",
    "operating_point", "peer_metrics", "share", "summarise", "threshold_curve", "timing_summary",
]  # fmt: skip
