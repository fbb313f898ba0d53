"""Figures of the real-data benchmark, drawn from its saved record alone.

Everything here reads the record of :func:`microlens.realdata.benchmark.run_benchmark` (or of
:func:`~microlens.realdata.benchmark.combine_reports`): the headline table with intervals, the
threshold curve, the shares per bin and the timing histogram; no model or data is needed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from microlens.realdata.benchmark.summary import shown
from microlens.reports.evaluation import PEER_COLOR
from microlens.reports.style import MODEL_COLOR, TEMPLATE, error_bars

_HEADLINE_ROWS = (
    ("events_lensing", "events called lensing"),
    ("events_binary", "events called binary"),
    ("baselines_lensing", "baselines called lensing"),
    ("stream_false_alerts", "baselines with a stream alert"),
)
_BIN_METRICS = (("events_lensing", "events called lensing"),
                ("baselines_lensing", "baselines called lensing"))
_BIN_TITLES = {"baseline_mag": "baseline I [mag]", "cadence_days": "median interval [d]",
               "tau_days": "tau [d]"}


def _cell(entry: Mapping | None) -> str:
    """``share [low, high] (count/of)`` in per cent, or why not."""
    return shown(entry, "not applicable (answers only at segment ends)")


def _model_name(record: Mapping) -> str:
    kinds = record.get("model_kinds") or [record.get("model_kind")]
    kinds = [k for k in dict.fromkeys(kinds) if k]
    return f"model ({', '.join(kinds)})" if kinds else "model"


def benchmark_table_figure(record: Mapping) -> go.Figure:
    """The headline shares of model and peer with their 95 % Wilson intervals."""
    metrics = record["metrics"]
    model, peer = metrics.get("model"), metrics.get("peer")
    counts = record["counts"]
    labels = [label for _, label in _HEADLINE_ROWS]
    figure = go.Figure(go.Table(
        header=dict(values=["", _model_name(record), "classical peer"], align="left"),
        cells=dict(values=[labels,
                           [_cell(None if model is None else model[k]) for k, _ in _HEADLINE_ROWS],
                           [_cell(None if peer is None else peer[k]) for k, _ in _HEADLINE_ROWS]],
                   align="left")))
    figure.update_layout(
        template=TEMPLATE, height=330,
        title=(f"Real benchmark: {counts['event_segments']} events, "
               f"{counts['baseline_segments']} baselines<br><sup>{record['folder']}; share "
               "[95 % Wilson interval] (count/segments)</sup>"))
    return figure


def _threshold_labels(curve: Mapping) -> list[str]:
    """Hover text per point: the threshold as P(lensing) and as log-odds (records written
    before the log-odds ranking carry P(lensing) only)."""
    scores = curve.get("log_odds_thresholds") or [None] * len(curve["thresholds"])
    return ["above every score" if t is None else
            f"P(lensing) >= {t:.6g}" + ("" if s is None else f" (log-odds {s:.3g})")
            for t, s in zip(curve["thresholds"], scores, strict=True)]


def benchmark_threshold_figure(record: Mapping) -> go.Figure:
    """Events found against baselines called lensing as the threshold on the final
    P(lensing) moves; the model's top-class rule, the peer and a given threshold as points."""
    curve = record["threshold_curve"]
    figure = go.Figure()
    figure.add_trace(go.Scatter(
        x=curve["baselines_lensing"], y=curve["events_found"], mode="lines",
        line=dict(color=MODEL_COLOR), name=f"{_model_name(record)}: threshold on P(lensing)",
        text=_threshold_labels(curve), hovertemplate="%{text}<br>baselines %{x:.3f}, "
                                                          "events %{y:.3f}<extra></extra>"))
    metrics = record["metrics"]
    points = [("model: top class", metrics.get("model"), MODEL_COLOR, "circle"),
              ("classical peer", metrics.get("peer"), PEER_COLOR, "diamond")]
    for name, entry, color, symbol in points:
        if entry and entry["events_lensing"]["share"] is not None \
                and entry["baselines_lensing"]["share"] is not None:
            figure.add_trace(go.Scatter(
                x=[entry["baselines_lensing"]["share"]], y=[entry["events_lensing"]["share"]],
                mode="markers", marker=dict(color=color, size=11, symbol=symbol), name=name))
    point = record.get("operating_point")
    if point and point["events_found"]["share"] is not None:
        figure.add_trace(go.Scatter(
            x=[point["baselines_lensing"]["share"]], y=[point["events_found"]["share"]],
            mode="markers", marker=dict(color=MODEL_COLOR, size=11, symbol="x"),
            name=f"given threshold {point['threshold']:.3g}"))
    figure.update_layout(template=TEMPLATE, height=450,
                         title="Events found against baselines called lensing",
                         xaxis_title="share of baselines called lensing (false alarms)",
                         yaxis_title="share of events called lensing",
                         xaxis_range=[-0.02, 1.02], yaxis_range=[-0.02, 1.02])
    return figure


def benchmark_bins_figure(record: Mapping) -> go.Figure:
    """Events and baselines called lensing per bin of baseline magnitude, cadence and tau,
    model and peer side by side, with 95 % intervals."""
    bins = record["bins"]
    quantities = list(bins)
    figure = make_subplots(rows=len(_BIN_METRICS), cols=len(quantities), shared_yaxes=True,
                           vertical_spacing=0.16, horizontal_spacing=0.05,
                           column_titles=[_BIN_TITLES.get(q, q) for q in quantities],
                           row_titles=[label for _, label in _BIN_METRICS])
    for row, (metric, _) in enumerate(_BIN_METRICS, start=1):
        for col, quantity in enumerate(quantities, start=1):
            entries = bins[quantity]["bins"]
            labels = [b["label"] for b in entries]
            for who, color in (("model", MODEL_COLOR), ("peer", PEER_COLOR)):
                shares = [(b[who] or {}).get(metric) for b in entries]
                if all(s is None for s in shares):
                    continue
                values = [s["share"] if s else None for s in shares]
                lows = [s["interval"][0] if s and s["interval"] else None for s in shares]
                highs = [s["interval"][1] if s and s["interval"] else None for s in shares]
                figure.add_trace(go.Bar(
                    x=labels, y=values, name="model" if who == "model" else "classical peer",
                    marker_color=color, error_y=error_bars(values, lows, highs),
                    legendgroup=who, showlegend=row == 1 and col == 1,
                    text=[f"{s['count']}/{s['of']}" if s else "" for s in shares],
                    textposition="none",
                    hovertemplate="%{x}: %{y:.3f} (%{text})<extra></extra>"), row=row, col=col)
    figure.update_yaxes(range=[0, 1.05])
    figure.update_annotations(font_size=13)
    figure.update_layout(template=TEMPLATE, barmode="group", height=620,
                         title="Shares called lensing per bin (bars: 95 % intervals)")
    return figure


def benchmark_timing_figure(record: Mapping) -> go.Figure:
    """Histogram of the lead of the first alert before ``Tmax`` [units of tau] over the timed,
    alerted events (a note instead for an untimed model)."""
    timing = record["timing"]
    figure = go.Figure()
    if not timing.get("timed"):
        figure.add_annotation(text=f"not timed: {timing.get('reason')}", showarrow=False,
                              x=0.5, y=0.5, xref="paper", yref="paper")
    else:
        leads = [r["event"]["timing"]["lead_tau"] for r in record["events"]
                 if r.get("event") and r["event"].get("timing")
                 and r["event"]["timing"]["lead_tau"] is not None]
        figure.add_trace(go.Histogram(x=np.asarray(leads, dtype=np.float64), nbinsx=30,
                                      marker_color=MODEL_COLOR, name="alerted events"))
        figure.add_vline(x=0.0, line_dash="dash", annotation_text="Tmax")
        share = timing["alerted_before_peak"]
        alerted = "–" if share["share"] is None else f"{100 * share['share']:.1f} %"
        figure.update_layout(
            title=(f"First alert before Tmax [tau]: {timing['n_alerted']} of "
                   f"{timing['n_timed']} timed events alerted, {alerted} before Tmax"),
            xaxis_title="lead = (Tmax − alert time) / tau  (positive: before the peak)",
            yaxis_title="events")
    figure.update_layout(template=TEMPLATE, height=420)
    return figure


def beside_simulation_figure(beside: Mapping) -> go.Figure:
    """Each share on the run's simulated test split beside the same question asked of real
    events and baselines (:func:`microlens.realdata.benchmark.beside_simulation`), with 95 % Wilson
    intervals; hover for the counts and which curves each side counts."""
    figure = go.Figure()
    measures = [row["measure"] for row in beside["rows"]]
    sides = (("simulated", f"simulated test split ({beside['simulated_events']} curves)",
              MODEL_COLOR),
             ("real", f"real OGLE EWS ({beside['real_events']} events, "
                      f"{beside['real_baselines']} baselines)", PEER_COLOR))
    for side, name, color in sides:
        entries = [row[side] for row in beside["rows"]]
        shares = [None if e["share"] is None else 100 * e["share"] for e in entries]
        low = [None if e["interval"] is None else 100 * e["interval"][0] for e in entries]
        high = [None if e["interval"] is None else 100 * e["interval"][1] for e in entries]
        figure.add_trace(go.Bar(
            x=shares, y=measures, orientation="h", name=name, marker_color=color,
            error_x=error_bars(shares, low, high),
            customdata=[[_cell(e), row["counted"]] for e, row in zip(entries, beside["rows"],
                                                                     strict=True)],
            hovertemplate="%{y}<br>%{customdata[0]}<br>%{customdata[1]}<extra>" + side
                          + "</extra>"))
    figure.update_layout(
        template=TEMPLATE, barmode="group", height=360, legend=dict(orientation="h", y=-0.25),
        xaxis=dict(title="share of curves [%] (95 % Wilson interval)", range=[0, 100]),
        yaxis=dict(autorange="reversed"),
        title=("The sky beside the simulation: the same questions, final answers<br><sup>"
               f"real: {beside.get('folder') or 'real events'} (OGLE-IV EWS: Udalski et al. "
               "2015; Udalski 2003)</sup>"))
    return figure


def benchmark_figures(record: Mapping) -> dict[str, go.Figure]:
    """Every figure of the benchmark: ``real_benchmark_table``, ``real_benchmark_threshold``,
    ``real_benchmark_bins`` and ``real_benchmark_timing``."""
    return {"real_benchmark_table": benchmark_table_figure(record),
            "real_benchmark_threshold": benchmark_threshold_figure(record),
            "real_benchmark_bins": benchmark_bins_figure(record),
            "real_benchmark_timing": benchmark_timing_figure(record)}


__all__ = ["beside_simulation_figure", "benchmark_bins_figure", "benchmark_figures",
           "benchmark_table_figure", "benchmark_threshold_figure", "benchmark_timing_figure"]
