"""Figures of the physical-limits analysis: performance in bins of u_0, q, s and detectability,
drawn beside the fraction of binaries that are detectable at all (the ceiling on binary recall).
Built from the report of :func:`microlens.evaluation.analysis.physical_limits`
(``u0_report.json``)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from microlens.reports.evaluation import TRANSFORMER_COLOR as ACCURACY_COLOR
from microlens.reports.style import CLASS_COLORS, TEMPLATE, error_bars, format_value, log_ticks

RECALL_COLOR = CLASS_COLORS[2]
CEILING_COLOR = "#7f7f7f"


def _error_bars(table: dict, key: str) -> dict:
    return error_bars(table[key], table[f"{key}_low"], table[f"{key}_high"])


def add_binned_traces(fig: go.Figure, table: dict, *, row: int, col: int,
                      show_legend: bool = False) -> None:
    """Accuracy, binary recall (Wilson intervals), recall among detectable binaries and the
    detectable fraction of one parameter's bins, added to subplot ``(row, col)``."""
    x = table["center"]
    counts = np.c_[table["n"], table["n_binary"], table["n_detectable"]]
    hover = ("%{x:.3g}: %{y:.3f}<br>%{customdata[0]} events, %{customdata[1]} binaries "
             "(%{customdata[2]} detectable)<extra>%{fullData.name}</extra>")
    only_binaries = table["classes"] == ["binary"]
    if not only_binaries:  # for q, s, detectability the accuracy is the binary recall
        fig.add_trace(go.Scatter(x=x, y=table["accuracy"], mode="lines+markers",
                                 name="accuracy", legendgroup="accuracy",
                                 line=dict(color=ACCURACY_COLOR), customdata=counts,
                                 error_y=_error_bars(table, "accuracy"), hovertemplate=hover,
                                 showlegend=show_legend), row=row, col=col)
    fig.add_trace(go.Scatter(x=x, y=table["binary_recall"], mode="lines+markers",
                             name="binary recall", legendgroup="recall",
                             line=dict(color=RECALL_COLOR, width=2.5), customdata=counts,
                             error_y=_error_bars(table, "binary_recall"), hovertemplate=hover,
                             showlegend=show_legend), row=row, col=col)
    fig.add_trace(go.Scatter(x=x, y=table["recall_detectable"], mode="lines+markers",
                             name="binary recall, detectable binaries only",
                             legendgroup="recall_detectable", customdata=counts,
                             line=dict(color=RECALL_COLOR, dash="dot"), marker=dict(size=5),
                             hovertemplate=hover, showlegend=show_legend), row=row, col=col)
    fig.add_trace(go.Scatter(x=x, y=table["detectable_fraction"], mode="lines",
                             name="detectable fraction of binaries (the ceiling)",
                             legendgroup="ceiling", customdata=counts, hovertemplate=hover,
                             line=dict(color=CEILING_COLOR, dash="dash", width=2),
                             fill="tozeroy", fillcolor="rgba(127,127,127,0.12)",
                             showlegend=show_legend), row=row, col=col)


def physical_limits_figure(report: dict, columns=None) -> go.Figure:
    """Grid of binned-performance panels, one per parameter of ``report['bins']``."""
    tables = report["bins"]
    columns = [c for c in (columns or tables) if c in tables]
    if not columns:
        raise ValueError("the report has no binned parameters to draw")
    n_cols = 2 if len(columns) > 1 else 1
    n_rows = -(-len(columns) // n_cols)
    fig = make_subplots(rows=n_rows, cols=n_cols, vertical_spacing=0.16, horizontal_spacing=0.1,
                        subplot_titles=[tables[c]["label"] for c in columns])
    for i, column in enumerate(columns):
        row, col = i // n_cols + 1, i % n_cols + 1
        table = tables[column]
        add_binned_traces(fig, table, row=row, col=col, show_legend=i == 0)
        ticks = log_ticks(table["low"] + table["high"]) if table["scale"] == "log" else {}
        fig.update_xaxes(type=table["scale"], row=row, col=col, **ticks)
        fig.update_yaxes(range=[0, 1.05], row=row, col=col)
    binary = report["binary"]
    fig.update_layout(
        template=TEMPLATE, height=380 * n_rows + 120, width=1100,
        title=(f"Performance against physical parameters (test split)<br><sup>binary recall "
               f"{format_value(binary['binary_recall'])}, detectable fraction "
               f"{format_value(binary['detectable_fraction'])} at Δχ² > "
               f"{format_value(report['threshold'])}</sup>"),
        legend=dict(orientation="h", yanchor="top", y=-0.08, x=0))
    return fig


def binary_parameter_figure(points: dict, threshold: float) -> go.Figure:
    """Test binaries in the (s, q) plane: found (filled) or missed (open), detectable (circle) or
    not (cross), with hover showing each event's index and parameters.

    Parameters
    ----------
    points : dict of arrays
        ``index``, ``s``, ``q``, ``u_0``, ``dchi2_pspl``, ``correct`` (bool) and ``predicted``
        (class names), one entry per binary event.
    threshold : float
        Detectability threshold on Δχ².
    """
    fig = go.Figure()
    detectable = np.asarray(points["dchi2_pspl"]) > threshold
    correct = np.asarray(points["correct"], bool)
    custom = np.c_[points["index"], points["u_0"], points["dchi2_pspl"], points["predicted"]]
    for found in (True, False):
        for visible in (True, False):
            keep = (correct == found) & (detectable == visible)
            if not keep.any():
                continue
            name = (f"{'found' if found else 'missed'}, "
                    f"{'detectable' if visible else 'undetectable'}")
            fig.add_trace(go.Scatter(
                x=np.asarray(points["s"])[keep], y=np.asarray(points["q"])[keep], mode="markers",
                name=name, customdata=custom[keep],
                marker=dict(color=RECALL_COLOR if found else "#444444", size=8, opacity=0.8,
                            symbol=("circle" if visible else "x") + ("" if found else "-open")),
                hovertemplate="event %{customdata[0]}<br>s %{x:.3g}, q %{y:.3g}<br>u₀ "
                              "%{customdata[1]:.3f}<br>Δχ² %{customdata[2]:.4g}<br>predicted "
                              "%{customdata[3]}<extra></extra>"))
    fig.update_layout(template=TEMPLATE, height=520, width=700,
                      title=f"Binary test events: found or missed (detectable: Δχ² > "
                            f"{format_value(threshold)})",
                      xaxis=dict(type="log", title="separation s [Einstein radii]",
                                 **log_ticks(points["s"])),
                      yaxis=dict(type="log", title="mass ratio q", **log_ticks(points["q"])))
    return fig


__all__ = ["add_binned_traces", "binary_parameter_figure", "physical_limits_figure"]
