"""Figures of real light curves classified by the transformer and the classical peer.

Drawn from what :func:`microlens.realdata.real_events.classify_events` records: an event's entry of
the JSON record and its arrays (times, fluxes, observatories, the probabilities after every
observation; :func:`microlens.realdata.real_events.load_series`), so they are rebuilt without the
model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from microlens.core.classes import CLASS_LABELS, CLASS_NAMES
from microlens.reports.style import CLASS_COLORS, FLUX_TITLE, TEMPLATE, format_value

OBSERVATORY_COLORS: tuple[str, ...] = tuple(qualitative.Dark2) + tuple(qualitative.Set2)
"""One colour per observatory of an event, in its ``observatories`` order (the class colours
are kept for the probabilities below)."""

TIME_AXES = ("peak", "hjd")
"""Time axes of :func:`real_event_figure`: days from the peak, or HJD - 2450000."""

_HJD_OFFSET = 2450000.0


def _time_axis(event: Mapping, times: np.ndarray, time_axis: str) -> tuple[np.ndarray, str, float]:
    """x values, axis title, and the x of the peak."""
    epoch = float(event.get("reference_epoch", 0.0))
    if time_axis == "peak":
        peak = float(event["peak"]["time"])
        return (times - peak, f"days from the peak (HJD {epoch + peak:.2f})", 0.0)
    if time_axis == "hjd":
        shift = epoch - _HJD_OFFSET
        return times + shift, "HJD − 2450000", float(event["peak"]["time"]) + shift
    raise ValueError(f"unknown time_axis {time_axis!r}; valid: {', '.join(TIME_AXES)}")


def _answer_text(answer: Mapping | None) -> str:
    return "–" if answer is None else answer["display"]


def _peer_text(peer: Mapping | None) -> str:
    """The peer's answers as the lines of an annotation."""
    if peer is None:
        return "<b>classical peer</b>: not run"
    lines = ["<b>classical peer</b>"]
    for where, key in (("at the peak", "at_peak"), ("whole curve", "at_end")):
        a = peer[key]
        lines.append(f"{where}: <b>{a['display']}</b><br>&nbsp;&nbsp;Δχ² "
                     f"{format_value(a['dchi2_event'])}, anomaly {format_value(a['anomaly'])}, "
                     f"error scale {format_value(a['error_scale'])}")
    return "<br>".join(lines)


def real_event_figure(event: Mapping, series: Mapping[str, np.ndarray],
                      time_axis: str = "peak") -> go.Figure:
    """A real light curve and the model's class probabilities after every observation.

    Parameters
    ----------
    event : mapping
        The event's entry of ``real_events.json`` (:func:`microlens.realdata.real_events.
        classify_events`; :func:`~microlens.realdata.real_events.classify_event` plus
        ``published_class``).
    series : mapping
        Its arrays: ``times`` [days after ``event['reference_epoch']``], ``flux`` [baseline
        units], ``flux_err``, ``observatory`` (codes into ``event['observatories']``) and
        ``probabilities`` ``(N, 3)`` (:data:`microlens.realdata.real_events.SERIES_FIELDS`).
    time_axis : {'peak', 'hjd'}
        Days from the peak observation, or HJD − 2450000 (the files' full dates, HJD for the
        shipped events).

    Returns
    -------
    go.Figure
        Two rows sharing the time axis. Top: flux with error bars, one trace per observatory
        (small markers). Bottom: one line per class (no event, single lens, binary lens), the
        confidence level dotted, a dashed vertical line where each class was first reached
        with that confidence and a grey one at the peak. The classical peer's answers at the
        peak and on the whole curve are written under the title.
    """
    times = np.asarray(series["times"], dtype=np.float64)
    flux = np.asarray(series["flux"], dtype=np.float64)
    err = np.asarray(series["flux_err"], dtype=np.float64)
    codes = np.asarray(series["observatory"], dtype=np.int64)
    proba = np.asarray(series["probabilities"], dtype=np.float64)
    if not times.size == flux.size == err.size == codes.size == proba.shape[0]:
        raise ValueError(f"series arrays differ in length: times {times.size}, flux {flux.size}, "
                         f"flux_err {err.size}, observatory {codes.size}, probabilities "
                         f"{proba.shape[0]}")
    x, title, peak_x = _time_axis(event, times, time_axis)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.58, 0.42],
                        vertical_spacing=0.05)
    observatories = list(event.get("observatories") or ["data"])
    marker = 3 if times.size > 2000 else 4
    for code, name in enumerate(observatories):
        on = codes == code
        if not on.any():
            continue
        color = OBSERVATORY_COLORS[code % len(OBSERVATORY_COLORS)]
        fig.add_trace(go.Scatter(
            x=x[on], y=flux[on], mode="markers", name=name, legendgroup="data",
            legendgrouptitle_text="observatory" if code == 0 else None,
            marker=dict(size=marker, color=color),
            error_y=dict(type="data", array=err[on], visible=True, thickness=0.6, width=0,
                         color=color),
            hovertemplate=f"{name}<br>t %{{x:.3f}}<br>flux %{{y:.3f}}<extra></extra>"),
            row=1, col=1)
    for label in range(len(CLASS_NAMES)):
        fig.add_trace(go.Scatter(
            x=x, y=proba[:, label], mode="lines", name=CLASS_LABELS[label],
            legendgroup="model", legendgrouptitle_text="model" if label == 0 else None,
            line=dict(color=CLASS_COLORS[label], width=1.6, shape="hv"),
            hovertemplate=f"{CLASS_LABELS[label]}: %{{y:.3f}}<br>t %{{x:.3f}}<extra></extra>"),
            row=2, col=1)
    confidence = float(event.get("confidence", 0.9))
    fig.add_hline(y=confidence, line=dict(color="#999999", dash="dot", width=1), row=2, col=1,
                  annotation_text=f"confidence {format_value(confidence)}",
                  annotation_position="top right", annotation_font_size=10)
    fig.add_vline(x=peak_x, line=dict(color="#555555", width=1), row="all", col=1)
    first = event.get("first_confident") or {}
    for label, key in enumerate(CLASS_NAMES):
        reached = first.get(key)
        if reached is None:
            continue
        at = float(x[int(reached["index"])])
        fig.add_vline(x=at, line=dict(color=CLASS_COLORS[label], dash="dash", width=1.2),
                      row="all", col=1)
        fig.add_annotation(x=at, y=1.0, yref="y2 domain", xref="x2", showarrow=False,
                           text=f"{CLASS_LABELS[label]} ≥ {format_value(confidence)}",
                           font=dict(size=10, color=CLASS_COLORS[label]), textangle=-90,
                           xanchor="left", yanchor="top")
    fig.add_annotation(x=0.01, y=0.99, xref="x domain", yref="y domain", showarrow=False,
                       xanchor="left", yanchor="top", align="left", text=_peer_text(
                           event.get("peer")), font=dict(size=10), bgcolor="rgba(255,255,255,0.8)",
                       bordercolor="#cccccc", borderwidth=1)
    published = event.get("published_class")
    model = event["model"]
    head = (f"<b>{event['name']}</b>: published class "
            f"{'unknown' if published is None else CLASS_LABELS[int(published)]}")
    outside = (event.get("outside_training_intervals") or {}).get("fraction", 0.0)
    sub = (f"model: at the peak <b>{_answer_text(model['at_peak'])}</b>, after the last point "
           f"<b>{_answer_text(model['at_end'])}</b><br>{event['n_points']} points over "
           f"{format_value(event['span_days'])} d from {len(observatories)} observator"
           f"{'y' if len(observatories) == 1 else 'ies'}"
           + ("" if outside is None else  # the features kind has no training range
              f"; {format_value(100 * outside)} % of the intervals outside the model's "
              "training range"))
    fig.update_xaxes(title_text=title, row=2, col=1)
    fig.update_yaxes(title_text=FLUX_TITLE, row=1, col=1)
    fig.update_yaxes(title_text="probability", range=[-0.02, 1.02], row=2, col=1)
    fig.update_layout(template=TEMPLATE, height=720, width=1000, margin=dict(t=120),
                      title=dict(text=f"{head}<br><span style='font-size:12px'>{sub}</span>",
                                 font=dict(size=14)),
                      legend=dict(groupclick="toggleitem", tracegroupgap=12))
    return fig


def real_events_table_figure(summary: Sequence[Mapping]) -> go.Figure:
    """The summary of :func:`microlens.realdata.real_events.classify_events` as a table.

    Parameters
    ----------
    summary : sequence of mapping
        Rows with ``event, published_class, model_at_peak, model_at_end, peer_at_peak,
        peer_at_end, correct`` (classes in words; None where unknown or not run).

    Returns
    -------
    go.Figure
        One ``go.Table``; the model's final answer is green where it equals the published
        class and red where it does not.
    """
    columns = [("event", "event"), ("published_class", "published"),
               ("model_at_peak", "model at peak"), ("model_at_end", "model at end"),
               ("peer_at_peak", "peer at peak"), ("peer_at_end", "peer at end"),
               ("correct", "model correct")]

    def cell(value):
        if value is None:
            return "–"
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value)

    shade = {True: "#d9f2d9", False: "#f8d7d7", None: "white"}
    fills = [[shade[row.get("correct")] if key in ("model_at_end", "correct") else "white"
              for row in summary] for key, _ in columns]
    fig = go.Figure(go.Table(
        columnwidth=[1.1, 1.3, 1.3, 1.3, 1.3, 1.3, 0.9],
        header=dict(values=[f"<b>{title}</b>" for _, title in columns], fill_color="#eeeeee",
                    align="left"),
        cells=dict(values=[[cell(row.get(key)) for row in summary] for key, _ in columns],
                   fill_color=fills, align="left", height=26)))
    known = [row for row in summary if row.get("correct") is not None]
    right = sum(bool(row["correct"]) for row in known)
    fig.update_layout(template=TEMPLATE, width=1100, height=130 + 30 * max(len(summary), 1),
                      margin=dict(t=50, b=10),
                      title=f"Real events: the model's final class equals the published one for "
                            f"{right} of {len(known)}")
    return fig


__all__ = ["OBSERVATORY_COLORS", "TIME_AXES", "real_event_figure", "real_events_table_figure"]
