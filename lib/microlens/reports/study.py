"""Figures of a whole study, drawn from its summary rows and its cells' evaluation summaries."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from microlens.reports.evaluation import PEER_COLOR, TRANSFORMER_COLOR
from microlens.reports.style import TEMPLATE, error_bars

METRICS = (("accuracy", "accuracy"), ("binary_recall", "binary recall"))
"""Summary columns drawn against the swept parameters: (column, axis title)."""


def _number(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if value == value else None  # NaN -> None


def study_metrics_figure(rows: Sequence[dict], title: str = "",
                         model_label: str = "transformer") -> go.Figure:
    """Accuracy and binary recall of every cell against its swept parameter, the model
    (with its 95 % bootstrap interval) beside the classical peer.

    Parameters
    ----------
    rows : sequence of dict
        One per finished cell: ``sweep`` (the panel: which parameters that grid entry sweeps),
        ``x`` (the cell's values of them, the tick label), and the summary columns
        ``accuracy``, ``accuracy_low``, ``accuracy_high``, ``binary_recall``,
        ``binary_recall_low``, ``binary_recall_high``, ``peer_accuracy`` and
        ``peer_binary_recall`` (missing or empty where not measured).
    title : str
        Figure title.
    model_label : str
        Legend name of the cells' model (``model`` when the cells differ in model kind).

    Returns
    -------
    go.Figure
        One column per sweep, one row per metric.
    """
    sweeps = list(dict.fromkeys(r["sweep"] for r in rows)) or [""]
    fig = make_subplots(rows=len(METRICS), cols=len(sweeps), shared_yaxes=True,
                        column_titles=sweeps, horizontal_spacing=0.06, vertical_spacing=0.1)
    for col, sweep in enumerate(sweeps, start=1):
        panel = [r for r in rows if r["sweep"] == sweep]
        x = [str(r["x"]) for r in panel]
        for row, (metric, label) in enumerate(METRICS, start=1):
            values = [_number(r.get(metric)) for r in panel]
            lows = [_number(r.get(f"{metric}_low")) for r in panel]
            highs = [_number(r.get(f"{metric}_high")) for r in panel]
            first = row == 1 and col == 1
            fig.add_trace(go.Scatter(
                x=x, y=values, mode="lines+markers", name=model_label, legendgroup="model",
                showlegend=first, line=dict(color=TRANSFORMER_COLOR, width=2),
                marker=dict(size=9), error_y=error_bars(values, lows, highs)), row=row, col=col)
            peer = [_number(r.get(f"peer_{metric}")) for r in panel]
            if any(v is not None for v in peer):
                fig.add_trace(go.Scatter(
                    x=x, y=peer, mode="lines+markers", name="classical peer",
                    legendgroup="peer", showlegend=first,
                    line=dict(color=PEER_COLOR, dash="dot"),
                    marker=dict(size=10, symbol="diamond")), row=row, col=col)
            fig.update_yaxes(range=[0, 1.02], row=row, col=col,
                             title_text=label if col == 1 else None)
    fig.update_layout(template=TEMPLATE, height=300 * len(METRICS) + 120,
                      width=max(520, 360 * len(sweeps) + 160),
                      title=title or "Test-split accuracy and binary recall across the study",
                      legend=dict(orientation="h", yanchor="top", y=-0.08, x=0))
    return fig


def study_early_detection_figure(curves: Sequence[dict], title: str = "") -> go.Figure:
    """Early-detection curves of every cell on one plot: the test accuracy after the first
    fraction of each light curve, with the classical peer's points in the cell's colour.

    Parameters
    ----------
    curves : sequence of dict
        One per finished cell: ``cell`` (its name), ``fraction`` and ``accuracy`` (the
        transformer, from ``early_detection.by_fraction``), and optionally ``peer_fraction``
        and ``peer_accuracy``.
    title : str
        Figure title.

    Returns
    -------
    go.Figure
    """
    palette = qualitative.Dark24
    fig = go.Figure()
    for i, curve in enumerate(curves):
        color = palette[i % len(palette)]
        fig.add_trace(go.Scatter(x=curve["fraction"], y=curve["accuracy"], mode="lines",
                                 name=curve["cell"], legendgroup=curve["cell"],
                                 line=dict(color=color, width=2)))
        if curve.get("peer_fraction"):
            fig.add_trace(go.Scatter(x=curve["peer_fraction"], y=curve["peer_accuracy"],
                                     mode="markers", name=f"{curve['cell']} (classical peer)",
                                     legendgroup=curve["cell"], showlegend=False,
                                     marker=dict(color=color, size=9, symbol="diamond-open",
                                                 line=dict(width=2))))
    if any(c.get("peer_fraction") for c in curves):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="classical peer (◇)",
                                 marker=dict(color="#555555", size=9, symbol="diamond-open")))
    fig.update_xaxes(title_text="fraction of the light curve seen", range=[0, 1.02])
    fig.update_yaxes(title_text="test accuracy", range=[0, 1.02])
    fig.update_layout(template=TEMPLATE, height=560, width=900,
                      title=title or "Early detection in every cell (lines: transformer)")
    return fig


COMPARISON_QUALITY = (
    ("accuracy", "accuracy"),
    ("detectable_binary_recall", "recall, binaries Δχ² > 100"),
    ("other_binary_recall", "recall, binaries Δχ² ≤ 100"),
    ("pspl_called_binary", "PSPL called binary"),
    ("accuracy_at_50pct", "accuracy at 50 % of the curve"),
)
"""Rates of the model comparison's quality panel: (column, legend name)."""
COMPARISON_COST = (
    ("train_events_per_second", "training"),
    ("inference_events_per_second", "inference (1 thread)"),
)
"""Throughputs of its cost panel (events per second): (column, legend name)."""
COST_COLORS = ("#8c564b", "#17becf")


def model_comparison_figure(rows: Sequence[dict], title: str = "") -> go.Figure:
    """The model comparison of a study (:mod:`microlens.evaluation.model_comparison`): quality with
    95 % intervals per model and the classical peer, training and inference throughput, and the
    streaming cost per observation (n/a where a model cannot stream).

    Parameters
    ----------
    rows : sequence of dict
        The comparison rows (``model`` names the x position; the columns of
        :data:`COMPARISON_QUALITY` with ``_low`` and ``_high``, those of
        :data:`COMPARISON_COST` and ``stream_ms_per_observation``; None where not measured).
    title : str
        Figure title.

    Returns
    -------
    go.Figure
        Three panels side by side: quality, throughput (log axis), streaming ms.
    """
    models = [str(r.get("model", "")) for r in rows]
    fig = make_subplots(rows=1, cols=3, column_widths=[0.5, 0.28, 0.22],
                        horizontal_spacing=0.09,
                        subplot_titles=("quality on the test split (95 % intervals)",
                                        "events / s", "streaming ms / obs"))
    palette = qualitative.D3
    for i, (column, label) in enumerate(COMPARISON_QUALITY):
        values = [_number(r.get(column)) for r in rows]
        lows = [_number(r.get(f"{column}_low")) for r in rows]
        highs = [_number(r.get(f"{column}_high")) for r in rows]
        fig.add_trace(go.Scatter(
            x=models, y=values, mode="markers", name=label, legendgroup="quality",
            offsetgroup=str(i),  # the metrics of one model side by side around its tick
            marker=dict(size=10, color=palette[i % len(palette)],
                        symbol="diamond" if column == "pspl_called_binary" else "circle"),
            error_y=error_bars(values, lows, highs),
            hovertemplate=f"%{{x}}<br>{label}: %{{y:.3f}}<extra></extra>"), row=1, col=1)
    fig.update_layout(scattermode="group", scattergap=0.4)
    fig.update_yaxes(range=[0, 1.02], title_text="rate", row=1, col=1)
    for i, (column, label) in enumerate(COMPARISON_COST):
        values = [_number(r.get(column)) for r in rows]
        fig.add_trace(go.Bar(x=models, y=values, name=label, legendgroup="cost",
                             marker_color=COST_COLORS[i % len(COST_COLORS)],
                             text=["n/a" if v is None else f"{v:,.0f}" if v >= 10 else
                                   f"{v:.1f}" for v in values], textposition="outside"),
                      row=1, col=2)
    # decades labelled 1, 10, 100, ... (plotly's default labels every digit in between)
    fig.update_yaxes(type="log", dtick=1, title_text="events / s", row=1, col=2)
    stream = [_number(r.get("stream_ms_per_observation")) for r in rows]
    fig.add_trace(go.Bar(x=models, y=stream, name="streaming update", showlegend=False,
                         marker_color="#555555",
                         text=["n/a" if v is None else f"{v:.2f}" for v in stream],
                         textposition="outside"), row=1, col=3)
    # where a model cannot stream, the bar is empty and its text says n/a
    fig.update_yaxes(rangemode="tozero", title_text="ms", row=1, col=3)
    fig.update_layout(template=TEMPLATE, height=520, width=max(1100, 170 * len(models) + 600),
                      barmode="group",
                      title=title or "Model kinds on one data set, beside the classical peer",
                      legend=dict(orientation="h", yanchor="top", y=-0.25, x=0))
    fig.update_xaxes(tickangle=-45)
    return fig


LEARNING_CURVE_METRICS = (("accuracy", "accuracy"),
                          ("detectable_binary_recall", "recall of binaries, Δχ² > 100"),
                          ("pspl_called_binary", "PSPL called binary"))
"""The panels of :func:`learning_curve_figure`: (column, title)."""
ARM_COLORS = {"from scratch": "#7f7f7f", "pretrained": TRANSFORMER_COLOR}


def learning_curve_figure(rows: Sequence[dict], peer: dict | None = None,
                          title: str = "") -> go.Figure:
    """The few-label learning curve (:mod:`microlens.workflow.learning_curve`): each rate against
    the labelled training events (log axis), pretrained against from scratch, with 95 % Wilson
    intervals, and the classical peer (which uses no labels) as a dotted line with its band.

    Parameters
    ----------
    rows : sequence of dict
        Points of the curve: ``arm``, ``labelled_events`` and the columns of
        :data:`LEARNING_CURVE_METRICS` with ``_low`` and ``_high``.
    peer : dict, optional
        The peer's row (the same columns).
    title : str
        Figure title.

    Returns
    -------
    go.Figure
        One panel per metric.
    """
    fig = make_subplots(rows=1, cols=len(LEARNING_CURVE_METRICS), horizontal_spacing=0.07,
                        subplot_titles=[t for _, t in LEARNING_CURVE_METRICS])
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    labels = sorted({r["labelled_events"] for r in rows if r.get("labelled_events")})
    for col, (metric, name) in enumerate(LEARNING_CURVE_METRICS, start=1):
        for arm in arms:
            points = sorted((r for r in rows if r["arm"] == arm and r.get("labelled_events")),
                            key=lambda r: r["labelled_events"])
            values = [_number(r.get(metric)) for r in points]
            fig.add_trace(go.Scatter(
                x=[r["labelled_events"] for r in points], y=values, mode="lines+markers",
                name=arm, legendgroup=arm, showlegend=col == 1,
                line=dict(color=ARM_COLORS.get(arm)), marker=dict(size=9),
                error_y=error_bars(values, [_number(r.get(f"{metric}_low")) for r in points],
                                   [_number(r.get(f"{metric}_high")) for r in points]),
                hovertemplate=f"{arm}<br>%{{x}} labelled events<br>{name}: %{{y:.3f}}"
                              "<extra></extra>"), row=1, col=col)
        value = _number((peer or {}).get(metric))
        if value is not None and labels:
            low = _number(peer.get(f"{metric}_low"))
            high = _number(peer.get(f"{metric}_high"))
            span = [labels[0], labels[-1]]
            if low is not None and high is not None:
                fig.add_trace(go.Scatter(
                    x=span + span[::-1], y=[high, high, low, low], mode="lines",
                    fill="toself",
                    fillcolor="rgba(148,103,189,0.15)", line=dict(width=0), hoverinfo="skip",
                    showlegend=False, legendgroup="peer"), row=1, col=col)
            fig.add_trace(go.Scatter(
                x=span, y=[value, value], mode="lines", name="classical peer (no labels)",
                legendgroup="peer", showlegend=col == 1,
                line=dict(color=PEER_COLOR, dash="dot"),
                hovertemplate=f"classical peer<br>{name}: {value:.3f}<extra></extra>"),
                row=1, col=col)
        fig.update_xaxes(type="log", title_text="labelled training events",
                         tickvals=labels, ticktext=[f"{n:,}" for n in labels], row=1, col=col)
        fig.update_yaxes(range=[0, 1.02], row=1, col=col)
    fig.update_layout(template=TEMPLATE, height=460, width=1200,
                      title=title or "Few labels: pretrained encoder against training from "
                                     "scratch",
                      legend=dict(orientation="h", yanchor="top", y=-0.18, x=0))
    return fig


__all__ = ["ARM_COLORS", "COMPARISON_COST", "COMPARISON_QUALITY", "LEARNING_CURVE_METRICS",
           "METRICS", "learning_curve_figure", "model_comparison_figure",
           "study_early_detection_figure", "study_metrics_figure"]
