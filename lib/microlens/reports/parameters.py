"""Figures of the lens-parameter heads beside the online point-lens fit, and a replay of one event.

The record figures read the record of :func:`microlens.evaluation.parameters.evaluate_parameters`
alone (no model or data): the median errors against the event's phase ``(t - t_0) / t_E``, the
coverage of the 68 % and 95 % intervals against the phase and against the share of the curve
seen, the precision and recall of high-magnification alerts, and a markdown table of every cell.

:func:`parameter_replay_figure` draws one event as a stream would have seen it after ``k``
observations: the data so far, the point-lens curve of the heads' median parameters and its
68 % band, and the class probabilities so far (:class:`microlens.reports.widgets.ParameterReplay`
puts it under a slider).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from microlens.evaluation.parameters import COVERAGE_BANDS
from microlens.reports.evaluation import PEER_COLOR
from microlens.reports.style import (
    CLASS_COLORS,
    FLUX_TITLE,
    MODEL_COLOR,
    TEMPLATE,
    class_label,
    error_bars,
    format_value,
    log_ticks,
)
from microlens.simulation.pspl_fit import pspl_magnification

WHO = {"model": ("parameter heads", MODEL_COLOR), "fit": ("online point-lens fit", PEER_COLOR)}
"""Record key -> (legend name, colour) of the two estimators."""
ERROR_TITLES = {"t_0": "|Δt_0| / t_E", "log10_t_E": "|Δ log10 t_E|", "u_0": "|Δu_0|",
                "f_s": "|Δf_s|"}
"""The absolute error of each compared parameter, in the units the record states it."""
ERROR_ROWS = {"t_0": "t_0 [t_E]", "log10_t_E": "log10 t_E", "u_0": "u_0", "f_s": "f_s"}
"""The same in a markdown table (where a ``|`` would end the cell)."""
PARAMETER_TITLES = {"t_0": "t_0", "log10_t_E": "log10 t_E", "log10_u_0": "log10 u_0",
                    "f_s": "f_s", "log10_s": "log10 s", "log10_q": "log10 q", "u_0": "u_0"}
PHASE_TITLE = "phase (t − t_0) / t_E"
SHARE_TITLE = "share of the curve's observations seen"
FUTURE_COLOR = "#c7c7c7"
BAND_COLOR = "rgba(17, 17, 17, 0.15)"
TRUTH_COLOR = "#2ca02c"
_OFFSET = 0.035  # model and fit side by side around each phase (in phase units)


def _levels() -> list[int]:
    return [int(round(100 * level)) for level in sorted(COVERAGE_BANDS)]


def _phase_keys(table: Mapping) -> list[tuple[float, str]]:
    """``(value, key)`` of a table keyed by phase or share, in increasing order."""
    return sorted((float(key), key) for key in table)


def _per_cent(value, unit: str = "") -> str:
    return "–" if value is None else f"{100 * value:.0f}{unit}"


# --------------------------------------------------------------------------------------------
# Figures of the record
# --------------------------------------------------------------------------------------------


def parameter_error_figure(record: Mapping) -> go.Figure:
    """Median absolute error of each compared parameter against the phase, the heads beside
    the online fit.

    Parameters
    ----------
    record : dict
        :func:`~microlens.evaluation.parameters.evaluate_parameters`' record (``errors``).

    Returns
    -------
    plotly.graph_objects.Figure
        One column per parameter (``t_0`` in units of ``t_E``), log y axes; error bars are the
        bootstrap 95 % intervals of the median over events. Both are scored on the events where
        both answered; hover for the number of events and the paired Wilcoxon p-value.
    """
    errors = record["errors"]
    phases = _phase_keys(errors)
    names = list(errors[phases[0][1]]) if phases else []
    figure = make_subplots(rows=1, cols=max(len(names), 1), horizontal_spacing=0.07,
                           subplot_titles=[ERROR_TITLES.get(n, n) for n in names])
    for col, name in enumerate(names, start=1):
        values = []
        for who, (label, color) in WHO.items():
            entries = [errors[key][name] for _, key in phases]
            medians = [e[f"{who}_median"] for e in entries]
            lows = [(e[f"{who}_interval"] or [None, None])[0] for e in entries]
            highs = [(e[f"{who}_interval"] or [None, None])[1] for e in entries]
            values += [v for v in (*medians, *lows, *highs) if v is not None]
            shift = -_OFFSET if who == "model" else _OFFSET
            figure.add_trace(go.Scatter(
                x=[x + shift for x, _ in phases], y=medians, mode="markers",
                marker=dict(color=color, size=8), name=label, legendgroup=who,
                showlegend=col == 1, error_y=error_bars(medians, lows, highs),
                customdata=[[x, e["n"], format_value(e.get("wilcoxon_p") or np.nan)]
                            for (x, _), e in zip(phases, entries, strict=True)],
                hovertemplate=(f"{label}<br>phase %{{customdata[0]}}: median %{{y:.3g}}<br>"
                               "events %{customdata[1]}, Wilcoxon p %{customdata[2]}"
                               "<extra></extra>")), row=1, col=col)
        figure.update_yaxes(type="log", **log_ticks(values), row=1, col=col)
        figure.update_xaxes(title_text=PHASE_TITLE, tickvals=[x for x, _ in phases],
                            row=1, col=col)
    figure.update_yaxes(title_text="median absolute error", row=1, col=1)
    figure.update_layout(
        template=TEMPLATE, height=420, legend=dict(orientation="h", y=-0.25),
        title=(f"Parameter errors while the event unfolds: {record.get('n_lensing', '?')} "
               "lensing test events<br><sup>median |error| with bootstrap 95 % intervals, on the "
               "events where both answered; t_0 in units of t_E</sup>"))
    return figure


def _coverage_figure(table: Mapping, whos: Sequence[str], x_title: str, title: str,
                     offset: float) -> go.Figure:
    """Coverage per parameter (columns) and level (rows) against the keys of ``table``."""
    points = _phase_keys(table)
    names = list(table[points[0][1]]) if points else []
    levels = _levels()
    figure = make_subplots(rows=len(levels), cols=max(len(names), 1), shared_yaxes=True,
                           horizontal_spacing=0.04, vertical_spacing=0.12,
                           column_titles=[PARAMETER_TITLES.get(n, n) for n in names],
                           row_titles=[f"{level} % interval" for level in levels])
    for row, level in enumerate(levels, start=1):
        band = COVERAGE_BANDS[level / 100]
        for col, name in enumerate(names, start=1):
            figure.add_hrect(y0=band[0], y1=band[1], fillcolor="#2ca02c", opacity=0.15,
                             line_width=0, row=row, col=col, exclude_empty_subplots=False)
            figure.add_hline(y=level / 100, line_dash="dot", line_color="#2ca02c",
                             line_width=1, row=row, col=col, exclude_empty_subplots=False)
            for who in whos:
                label, color = WHO[who]
                cells = [table[key][name].get(f"{who}_{level}") for _, key in points]
                if all(c is None for c in cells):
                    continue
                values = [c["coverage"] if c else None for c in cells]
                lows = [c["interval"][0] if c else None for c in cells]
                highs = [c["interval"][1] if c else None for c in cells]
                shift = 0.0 if len(whos) == 1 else (-offset if who == "model" else offset)
                figure.add_trace(go.Scatter(
                    x=[x + shift for x, _ in points], y=values, mode="markers+lines",
                    line=dict(color=color, width=1), marker=dict(
                        color=color, size=8,
                        symbol=["circle" if c and c["passes"] else "circle-open"
                                for c in cells]),
                    name=label, legendgroup=who, showlegend=row == 1 and col == 1,
                    error_y=error_bars(values, lows, highs),
                    customdata=[[x, (c or {}).get("n", 0), _pass_mark(c)]
                                for (x, _), c in zip(points, cells, strict=True)],
                    hovertemplate=(f"{label}, {level} %<br>at %{{customdata[0]}}: coverage "
                                   "%{y:.3f}<br>events %{customdata[1]} %{customdata[2]}"
                                   "<extra></extra>")), row=row, col=col)
            figure.update_xaxes(tickvals=[x for x, _ in points], row=row, col=col)
    for col in range(1, len(names) + 1):
        figure.update_xaxes(title_text=x_title, row=len(levels), col=col)
    for row in range(1, len(levels) + 1):
        figure.update_yaxes(title_text="coverage", row=row, col=1)
    figure.update_yaxes(range=[-0.02, 1.05])
    figure.update_annotations(font_size=13)
    figure.update_layout(template=TEMPLATE, height=560, title=title,
                         legend=dict(orientation="h", y=-0.18))
    return figure


def _pass_mark(cell: Mapping | None) -> str:
    if not cell or not cell.get("n"):
        return "(no events)"
    return "✓ in the nominal band" if cell["passes"] else "✗ outside the nominal band"


def parameter_coverage_figure(record: Mapping) -> go.Figure:
    """Coverage of the 68 % and 95 % intervals against the phase, the heads beside the fit.

    Parameters
    ----------
    record : dict
        :func:`~microlens.evaluation.parameters.evaluate_parameters`' record (``coverage``).

    Returns
    -------
    plotly.graph_objects.Figure
        Rows: the 68 % and 95 % intervals; columns: the parameters. Error bars are 95 % Wilson
        intervals; the shaded band is the one a cell's interval must overlap to pass
        (:data:`~microlens.evaluation.parameters.COVERAGE_BANDS`, dotted: the nominal level);
        filled markers pass, open ones do not.
    """
    return _coverage_figure(
        record["coverage"], ("model", "fit"), PHASE_TITLE, offset=_OFFSET,
        title=("Coverage of the intervals while the event unfolds<br><sup>heads: their "
               "quantiles; fit: ±1 and ±1.96 sigma; bars: 95 % Wilson intervals; shaded: the "
               "band a cell must reach (filled markers pass)</sup>"))


def coverage_by_share_figure(record: Mapping) -> go.Figure:
    """Coverage of the heads' 68 % and 95 % intervals against the share of the curve seen.

    Parameters
    ----------
    record : dict
        :func:`~microlens.evaluation.parameters.evaluate_parameters`' record
        (``coverage_by_share``).

    Returns
    -------
    plotly.graph_objects.Figure
        As :func:`parameter_coverage_figure`, the x axis the share of each lensing curve's
        observations seen (the heads only: the fit is scored at the phases).
    """
    return _coverage_figure(
        record["coverage_by_share"], ("model",), SHARE_TITLE, offset=0.0,
        title=("Coverage of the heads' intervals against the share of the curve seen<br><sup>"
               "bars: 95 % Wilson intervals; shaded: the band a cell must reach (filled markers "
               "pass)</sup>"))


def _alert_text(point: Mapping) -> str:
    lead = point.get("median_lead_t_E")
    return (f"u_0 <= {point['threshold']:.4g}: {point['alerted']} alerted, {point['true']} "
            f"true<br>median lead {'–' if lead is None else f'{lead:.3g}'} t_E before the peak")


def alert_figure(record: Mapping) -> go.Figure:
    """Precision against recall of high-magnification alerts as the threshold on ``u_0`` moves.

    Parameters
    ----------
    record : dict
        :func:`~microlens.evaluation.parameters.evaluate_parameters`' record (``alerts``).

    Returns
    -------
    plotly.graph_objects.Figure
        One curve each for the heads and the fit over the record's thresholds (hover: the
        threshold, the alerts and the median lead time of the true ones in ``t_E``); a star at
        ``u_0 <= 0.1`` and a diamond at the best precision with recall >= 0.5; dotted, the
        precision of alerting on every event. Thresholds where nothing was alerted have no
        precision and are left out.
    """
    alerts = record["alerts"]
    figure = go.Figure()
    for who, (label, color) in WHO.items():
        if who not in alerts:
            continue
        curve = [c for c in alerts[who]["curve"]
                 if c["precision"] is not None and c["recall"] is not None]
        figure.add_trace(go.Scatter(
            x=[c["recall"] for c in curve], y=[c["precision"] for c in curve],
            mode="lines+markers", line=dict(color=color), marker=dict(color=color, size=6),
            name=label, legendgroup=who, text=[_alert_text(c) for c in curve],
            hovertemplate=(f"{label}<br>%{{text}}<br>recall %{{x:.3f}}, precision %{{y:.3f}}"
                           "<extra></extra>")))
        marks = (("at_u_0_0.1", "star", "u_0 <= 0.1"),
                 ("best_at_recall_0.5", "diamond", "best precision at recall >= 0.5"))
        for key, symbol, what in marks:
            point = alerts[who].get(key)
            if not point or point.get("precision") is None or point.get("recall") is None:
                continue
            figure.add_trace(go.Scatter(
                x=[point["recall"]], y=[point["precision"]], mode="markers",
                marker=dict(color=color, size=14, symbol=symbol, line=dict(width=1,
                                                                           color="white")),
                name=f"{label}: {what}", legendgroup=who, text=[_alert_text(point)],
                hovertemplate=(f"{label}: {what}<br>%{{text}}<br>recall %{{x:.3f}}, precision "
                               "%{y:.3f}<extra></extra>")))
    if alerts.get("n_events") and alerts.get("n_positive") is not None:
        figure.add_hline(y=alerts["n_positive"] / alerts["n_events"], line_dash="dot",
                         line_color="#7f7f7f", annotation_text="alerting on every event",
                         annotation_position="bottom right")
    figure.update_layout(
        template=TEMPLATE, height=470, xaxis=dict(title="recall", range=[-0.02, 1.02]),
        yaxis=dict(title="precision", range=[-0.02, 1.02]),
        title=(f"High-magnification alerts (u_0 <= 0.1): {alerts.get('n_positive', '?')} of "
               f"{alerts.get('n_events', '?')} test events<br><sup>alert when the answer says "
               "lensing and its u_0 is at most a threshold, at or before the peak; hover for "
               "the lead time</sup>"))
    return figure


def parameter_figures(record: Mapping) -> dict[str, go.Figure]:
    """Every figure of the record: ``parameter_errors``, ``parameter_coverage``,
    ``parameter_coverage_by_share`` and ``parameter_alerts``."""
    return {"parameter_errors": parameter_error_figure(record),
            "parameter_coverage": parameter_coverage_figure(record),
            "parameter_coverage_by_share": coverage_by_share_figure(record),
            "parameter_alerts": alert_figure(record)}


# --------------------------------------------------------------------------------------------
# The record as markdown
# --------------------------------------------------------------------------------------------


def _coverage_cell(cell: Mapping | None) -> str:
    """``96 [80, 99] n=24 ✓`` (per cent), or ``–`` without events."""
    if not cell or not cell.get("n"):
        return "–"
    low, high = cell["interval"]
    mark = "✓" if cell["passes"] else "✗"
    return (f"{_per_cent(cell['coverage'])} [{_per_cent(low)}, {_per_cent(high)}] "
            f"n={cell['n']} {mark}")


def _coverage_rows(table: Mapping, whos: Sequence[str], heading: str) -> list[str]:
    points = _phase_keys(table)
    names = list(table[points[0][1]]) if points else []
    lines = [f"| parameter | interval | {' | '.join(f'{heading} {x:g}' for x, _ in points)} |",
             "|---|---|" + "---|" * len(points)]
    for name in names:
        for who in whos:
            for level in _levels():
                key = f"{who}_{level}"
                if all(key not in table[k][name] for _, k in points):
                    continue
                cells = [_coverage_cell(table[k][name].get(key)) for _, k in points]
                lines.append(f"| {PARAMETER_TITLES.get(name, name)} | {WHO[who][0]} {level} % | "
                             f"{' | '.join(cells)} |")
    return lines


def _median_cell(entry: Mapping, who: str) -> str:
    median = entry.get(f"{who}_median")
    if median is None:
        return "–"
    low, high = entry.get(f"{who}_interval") or [None, None]
    bounds = "" if low is None else f" [{low:.3g}, {high:.3g}]"
    return f"{median:.3g}{bounds}"


def parameter_table(record: Mapping) -> str:
    """The record as markdown: every coverage cell with its pass mark, the errors, the alerts.

    Parameters
    ----------
    record : dict
        :func:`~microlens.evaluation.parameters.evaluate_parameters`' record.

    Returns
    -------
    str
        Markdown (``IPython.display.Markdown``): the coverage of the 68 % and 95 % intervals
        per parameter and phase, heads and fit (per cent, 95 % Wilson interval, events, ✓ when
        the interval reaches the nominal band, ✗ when not, – without events); the heads'
        coverage per share of the curve seen; the median absolute errors with bootstrap 95 %
        intervals and the paired Wilcoxon p-value; the alerts at ``u_0 <= 0.1`` and at the best
        precision with recall >= 0.5.
    """
    bands = ", ".join(f"{int(round(100 * level))} %: {100 * lo:.0f}-{100 * hi:.0f}"
                      for level, (lo, hi) in sorted(COVERAGE_BANDS.items()))
    lines = [f"**Lens parameters** of `{record.get('run', '?')}` on "
             f"`{record.get('dataset', '?')}`: {record.get('n_test_events', '?')} test events, "
             f"{record.get('n_lensing', '?')} lensing.", "",
             f"**Coverage** [%] at the phase (t − t_0) / t_E (95 % Wilson interval, events; ✓: "
             f"the interval reaches the nominal band, {bands}):", ""]
    lines += _coverage_rows(record["coverage"], ("model", "fit"), "phase")
    if record.get("coverage_by_share"):
        lines += ["", "**Coverage of the heads** [%] against the share of the curve seen:", ""]
        lines += _coverage_rows(record["coverage_by_share"], ("model",), "share")
    lines += ["", "**Median absolute errors** (bootstrap 95 % intervals; t_0 in units of t_E; "
              "on the events where both answered; degenerate fits are counted, not scored):",
              "",
              "| parameter | phase | parameter heads | online fit | events | fit degenerate "
              "| Wilcoxon p |", "|---|---|---|---|---|---|---|"]
    errors = record["errors"]
    phases = _phase_keys(errors)
    names = list(errors[phases[0][1]]) if phases else []
    for name in names:
        for x, key in phases:
            entry = errors[key][name]
            p = entry.get("wilcoxon_p")
            lines.append(f"| {ERROR_ROWS.get(name, name)} | {x:g} | "
                         f"{_median_cell(entry, 'model')} | {_median_cell(entry, 'fit')} | "
                         f"{entry['n']} | {entry.get('fit_degenerate', '–')} | "
                         f"{'–' if p is None else f'{p:.2g}'} |")
    alerts = record.get("alerts") or {}
    if alerts:
        lines += ["", f"**High-magnification alerts** (u_0 <= 0.1; {alerts.get('n_positive')} "
                  f"of {alerts.get('n_events')} test events):", "",
                  "| estimator | rule | u_0 threshold | alerted | precision | recall | median "
                  "lead [t_E] |", "|---|---|---|---|---|---|---|"]
        for who, (label, _) in WHO.items():
            for key, rule in (("at_u_0_0.1", "u_0 <= 0.1"),
                              ("best_at_recall_0.5", "best precision at recall >= 0.5")):
                point = (alerts.get(who) or {}).get(key)
                if not point:
                    lines.append(f"| {label} | {rule} | – | – | – | – | – |")
                    continue
                lead = point.get("median_lead_t_E")
                lines.append(f"| {label} | {rule} | {point['threshold']:.4g} | "
                             f"{point['alerted']} | {_per_cent(point['precision'], ' %')} | "
                             f"{_per_cent(point['recall'], ' %')} | "
                             f"{'–' if lead is None else f'{lead:.3g}'} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# One event replayed
# --------------------------------------------------------------------------------------------


def point_lens_flux(t, t_0, t_E, u_0, f_s) -> np.ndarray:
    """Flux in baseline units, ``f_s A(t) + (1 - f_s)``, of a point lens (as simulated;
    :func:`microlens.simulation.pspl_fit.pspl_magnification`); ``t_0`` may be an array
    like ``t``."""
    t_E = max(float(t_E), 1e-6)
    u_0 = max(abs(float(u_0)), 1e-6)
    return f_s * pspl_magnification(np.asarray(t, np.float64), t_0, u_0, t_E) + (1.0 - f_s)


def point_lens_band(t, lower: Mapping, upper: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """The lowest and highest point-lens flux at each time over a box of parameters.

    Parameters
    ----------
    t : array-like
        Times [days].
    lower, upper : dict
        ``t_0``, ``t_E``, ``u_0``, ``f_s`` at the box's lower and upper corner (the 16 % and
        84 % quantiles of each).

    Returns
    -------
    low, high : ndarray
        The envelope of every point-lens curve with its parameters inside the box. At a fixed
        time the magnification rises with ``t_E``, falls with ``u_0`` and is largest for the
        ``t_0`` of the box nearest to that time, smallest for the one farthest from it; the
        flux is linear in ``f_s``. So the extremes lie at those ``t_0`` and the corners of the
        other three, and the envelope is exact rather than sampled.
    """
    t = np.asarray(t, np.float64)
    t0_lo, t0_hi = sorted((float(lower["t_0"]), float(upper["t_0"])))
    nearest = np.clip(t, t0_lo, t0_hi)
    farthest = np.where(np.abs(t - t0_lo) > np.abs(t - t0_hi), t0_lo, t0_hi)
    corners = np.stack([
        point_lens_flux(t, t_0, t_E, u_0, f_s) for t_0 in (nearest, farthest)
        for t_E in (lower["t_E"], upper["t_E"]) for u_0 in (lower["u_0"], upper["u_0"])
        for f_s in (float(lower["f_s"]), float(upper["f_s"]))])
    return corners.min(axis=0), corners.max(axis=0)


def point_lens_quantiles(quantiles: np.ndarray) -> dict[str, dict[str, float]]:
    """The point-lens parameters at the median and the 68 % bounds of ``(P, Q)`` quantiles.

    Returns
    -------
    dict
        ``{"median" | "lower" | "upper": {"t_0", "t_E", "u_0", "f_s"}}`` with ``t_E = 10 **
        log10_t_E`` and ``u_0 = 10 ** log10_u_0`` (the logs' quantiles are the parameters').
    """
    from microlens.models.parameters import INTERVALS, MEDIAN, TARGETS

    q = np.asarray(quantiles, np.float64)
    lo, hi = INTERVALS[0.68]
    out = {}
    for tag, j in (("median", MEDIAN), ("lower", lo), ("upper", hi)):
        out[tag] = {"t_0": float(q[TARGETS.index("t_0"), j]),
                    "t_E": float(10.0 ** q[TARGETS.index("log10_t_E"), j]),
                    "u_0": float(10.0 ** q[TARGETS.index("log10_u_0"), j]),
                    "f_s": float(q[TARGETS.index("f_s"), j])}
    return out


def _truth_values(truth) -> dict[str, float] | None:
    if truth is None:
        return None
    values = {k: float(truth[k]) for k in ("t_0", "t_E", "u_0", "f_s")}
    values["u_0"] = abs(values["u_0"])
    return values


def parameter_replay_figure(times, flux, flux_err, quantiles, probabilities, k: int, *,
                            truth=None, reference_epoch: float = 0.0,
                            n_grid: int = 600) -> go.Figure:
    """One event as seen after ``k`` observations, with the heads' point lens at that moment.

    Parameters
    ----------
    times, flux, flux_err : array-like ``(N,)``
        The whole curve (flux in baseline units).
    quantiles : array-like ``(N, P, Q)``
        The heads' quantiles after every observation (``t_0`` in the curve's time frame:
        :meth:`~microlens.models.base.CausalClassifier.predict_parameters`).
    probabilities : array-like ``(N, C)``
        The class probabilities after every observation.
    k : int
        Observations seen, 1 .. N.
    truth : mapping, optional
        The event's ``t_0``, ``t_E``, ``u_0``, ``f_s`` (a data set's parameter row): its curve
        is drawn dashed.
    reference_epoch : float
        Full Julian date of time 0 (for the axis title).
    n_grid : int
        Times of the drawn curves over the curve's whole span.

    Returns
    -------
    plotly.graph_objects.Figure
        Top: the band (two traces, ``band low`` and ``band 68 %``), the median curve, the true
        curve (with ``truth``), the future data (grey), the data seen (exactly ``k`` points);
        a dotted line at the latest time. Bottom: each class's probability after observations
        1 .. k. The band is the envelope of every point lens with its parameters inside the
        heads' 16 %-84 % quantiles (:func:`point_lens_band`); the heads give marginal
        quantiles only, so it is wider than a joint 68 % band would be.
    """
    times = np.asarray(times, np.float64)
    flux = np.asarray(flux, np.float64)
    flux_err = np.asarray(flux_err, np.float64)
    probabilities = np.asarray(probabilities, np.float64)
    n = times.size
    if not 1 <= int(k) <= n:
        raise ValueError(f"k must be in 1..{n} (observations seen), got {k}")
    k = int(k)
    at = point_lens_quantiles(np.asarray(quantiles)[k - 1])
    grid = np.linspace(times.min(), times.max(), n_grid)
    median = point_lens_flux(grid, **at["median"])
    low, high = point_lens_band(grid, at["lower"], at["upper"])
    truth = _truth_values(truth)

    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28],
                           vertical_spacing=0.06)
    figure.add_trace(go.Scatter(x=grid, y=low, mode="lines", line=dict(width=0),
                                name="band low", showlegend=False, hoverinfo="skip"),
                     row=1, col=1)
    figure.add_trace(go.Scatter(x=grid, y=high, mode="lines", line=dict(width=0),
                                fill="tonexty", fillcolor=BAND_COLOR,
                                name="band 68 % (16 %-84 % quantiles)", hoverinfo="skip"),
                     row=1, col=1)
    figure.add_trace(go.Scatter(x=grid, y=median, mode="lines",
                                line=dict(color=MODEL_COLOR, width=2),
                                name="heads' median point lens"), row=1, col=1)
    if truth is not None:
        figure.add_trace(go.Scatter(x=grid, y=point_lens_flux(grid, **truth), mode="lines",
                                    line=dict(color=TRUTH_COLOR, dash="dash", width=1.5),
                                    name="true point lens"), row=1, col=1)
    figure.add_trace(go.Scatter(x=times[k:], y=flux[k:], mode="markers",
                                marker=dict(color=FUTURE_COLOR, size=4),
                                error_y=dict(array=flux_err[k:], color=FUTURE_COLOR,
                                             thickness=0.5, width=0),
                                name="not yet seen"), row=1, col=1)
    figure.add_trace(go.Scatter(x=times[:k], y=flux[:k], mode="markers",
                                marker=dict(color=CLASS_COLORS[1], size=5),
                                error_y=dict(array=flux_err[:k], thickness=0.7, width=0),
                                name=f"seen ({k} of {n})"), row=1, col=1)
    for c in range(probabilities.shape[1]):
        figure.add_trace(go.Scatter(x=times[:k], y=probabilities[:k, c], mode="lines",
                                    line=dict(color=CLASS_COLORS.get(c, None), width=1.5),
                                    name=f"P({class_label(c)})", legendgroup="probabilities"),
                         row=2, col=1)
    figure.add_vline(x=float(times[k - 1]), line_dash="dot", line_color="#555555")

    def stated(tag):
        p = at[tag]
        return {name: p[name] for name in ("t_0", "t_E", "u_0", "f_s")}

    med, lo, hi = stated("median"), stated("lower"), stated("upper")
    parts = [f"{name} = {format_value(med[name])} [{format_value(lo[name])}, "
             f"{format_value(hi[name])}]" for name in med]
    shown = ", ".join(f"P({class_label(c)}) {probabilities[k - 1, c]:.2f}"
                      for c in range(probabilities.shape[1]))
    truth_text = ("" if truth is None else "<br>truth: " + ", ".join(
        f"{name} = {format_value(value)}" for name, value in truth.items()))
    figure.update_layout(
        template=TEMPLATE, height=620, legend=dict(orientation="h", y=-0.12),
        title=(f"After {k} of {n} observations (t = {format_value(times[k - 1])}): {shown}"
               f"<br><sup>heads' median [68 %]: {', '.join(parts)}{truth_text}</sup>"),
        margin=dict(t=110))
    data_lo = float(np.min(flux - flux_err))
    data_hi = float(np.max(flux + flux_err))
    reach = 2.0 * max(data_hi - data_lo, 0.05)
    curves = np.concatenate([median, low, high])
    curves = curves[np.isfinite(curves)]
    # the curves may run far off before the heads settle: show them to twice the data's span
    bottom = max(min(data_lo, curves.min(initial=data_lo)), data_lo - reach)
    top = min(max(data_hi, curves.max(initial=data_hi)), data_hi + reach)
    pad = 0.04 * (top - bottom)
    figure.update_yaxes(title_text=FLUX_TITLE, range=[bottom - pad, top + pad], row=1, col=1)
    figure.update_yaxes(title_text="probability", range=[-0.02, 1.02], row=2, col=1)
    from microlens.reports.events import time_title

    figure.update_xaxes(title_text=time_title(reference_epoch), row=2, col=1)
    return figure


__all__ = [
    "ERROR_ROWS", "ERROR_TITLES", "PARAMETER_TITLES", "WHO", "alert_figure",
    "coverage_by_share_figure", "parameter_coverage_figure", "parameter_error_figure",
    "parameter_figures", "parameter_replay_figure", "parameter_table", "point_lens_band",
    "point_lens_flux", "point_lens_quantiles",
]
