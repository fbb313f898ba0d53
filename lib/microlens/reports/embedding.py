"""Figures of the embedding space: 2-D projections coloured by class and physical parameters.

The coordinates come from :func:`microlens.evaluation.analysis.project_embeddings`, the colours and
hover text from :func:`microlens.evaluation.analysis.embedding_table`; events without a value for a
colouring (``q`` and the detectability exist for binaries only, ``u_0`` has no meaning without a
lens) are drawn in grey as "no value".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from microlens.core.classes import CLASS_LABELS
from microlens.reports.style import CLASS_COLORS, TEMPLATE, class_label, format_value

MISSING_COLOR = "#d0d0d0"
COLOR_OPTIONS: dict[str, tuple[str, str, str]] = {
    "class": ("class", "class", ""),
    "u_0": ("abs_u_0", "|u₀| [θ_E]", "no u₀ (no event)"),
    "q": ("log10_q", "log₁₀ q", "no q (not binary)"),
    "detectability": ("log10_dchi2_pspl", "log₁₀ Δχ²(PSPL)", "no Δχ²(PSPL) (not binary)"),
}
"""Colourings of :func:`embedding_figure`: name -> (table column, colour-bar title, missing)."""

HOVER_COLUMNS = ("u_0", "t_E", "s", "q", "dchi2_pspl")
"""Parameters in the hover text: the first two for PSPL events, all for binaries."""


def _check_color(color_by: str) -> tuple[str, str, str]:
    if color_by not in COLOR_OPTIONS:
        raise ValueError(f"unknown colouring {color_by!r}; valid: {', '.join(COLOR_OPTIONS)}")
    return COLOR_OPTIONS[color_by]


def hover_text(table) -> list[str]:
    """One hover line block per event: index, class, key parameters, the model's prediction
    (when the table has ``predicted`` and ``confidence`` columns)."""
    texts = []
    has_prediction = {"predicted", "confidence"} <= set(table.columns)
    for event, row in table.iterrows():
        label = int(row["label"])
        lines = [f"#{event} {CLASS_LABELS[label]}"]
        keys = [k for k in HOVER_COLUMNS[: 2 if label == 1 else None] if k in row.index]
        if label >= 1 and keys:
            lines.append(", ".join(f"{k}={format_value(row[k])}" for k in keys))
        if has_prediction:
            lines.append(f"predicted {class_label(row['predicted'])} "
                         f"({format_value(row['confidence'])})")
        texts.append("<br>".join(lines))
    return texts


def embedding_traces(coords, table, color_by: str = "class") -> list[go.Scatter]:
    """Marker traces of one colouring: one per class for ``'class'``; otherwise the events with
    a value (colour scale) and those without (grey).

    Parameters
    ----------
    coords : array ``(E, 2)``
    table : DataFrame
        :func:`microlens.evaluation.analysis.embedding_table` of the same events, same order.
    color_by : {'class', 'u_0', 'q', 'detectability'}
    """
    column, title, missing_name = _check_color(color_by)
    coords = np.asarray(coords, dtype=np.float64)
    if coords.shape != (len(table), 2):
        raise ValueError(f"coords must have shape ({len(table)}, 2), got {coords.shape}")
    text = np.asarray(hover_text(table), dtype=object)
    events = table.index.to_numpy()
    common = {"mode": "markers", "hovertemplate": "%{text}<extra></extra>"}
    if color_by == "class":
        labels = table["label"].to_numpy().astype(int)
        return [go.Scatter(x=coords[labels == c, 0], y=coords[labels == c, 1], name=name,
                           text=text[labels == c], customdata=events[labels == c],
                           marker={"size": 6, "color": CLASS_COLORS[c], "opacity": 0.8},
                           legendgroup=color_by, **common)
                for c, name in enumerate(CLASS_LABELS)]
    values = table[column].to_numpy(dtype=np.float64)
    has = np.isfinite(values)
    return [
        go.Scatter(x=coords[has, 0], y=coords[has, 1], name=title, text=text[has],
                   customdata=events[has], legendgroup=color_by,
                   marker={"size": 6, "color": values[has], "colorscale": "Viridis",
                           "showscale": True, "colorbar": {"title": title}, "opacity": 0.85},
                   **common),
        go.Scatter(x=coords[~has, 0], y=coords[~has, 1], name=missing_name, text=text[~has],
                   customdata=events[~has], legendgroup=color_by,
                   marker={"size": 5, "color": MISSING_COLOR, "opacity": 0.6}, **common),
    ]


def embedding_figure(projection, table, color_by: Sequence[str] = tuple(COLOR_OPTIONS),
                     title: str | None = None) -> go.Figure:
    """A 2-D map of the embeddings with a menu to colour the events by each of ``color_by``.

    Parameters
    ----------
    projection : microlens.evaluation.analysis.Projection
    table : DataFrame
        :func:`microlens.evaluation.analysis.embedding_table` of the same events, same order
        (optionally with ``predicted`` and ``confidence`` columns for the hover text).
    color_by : sequence of str
        Colourings (names of :data:`COLOR_OPTIONS`); the first is shown, a menu switches.
    title : str, optional

    Returns
    -------
    go.Figure
        The traces of each colouring (:func:`embedding_traces`) in order, only the first
        colouring's visible.
    """
    color_by = list(color_by)
    if not color_by:
        raise ValueError(f"color_by is empty; valid: {', '.join(COLOR_OPTIONS)}")
    groups = [embedding_traces(projection.coords, table, c) for c in color_by]
    fig = go.Figure()
    owner = []
    for i, traces in enumerate(groups):
        for trace in traces:
            trace.visible = i == 0
            fig.add_trace(trace)
            owner.append(i)
    buttons = [{"label": f"colour: {name}", "method": "update",
                "args": [{"visible": [o == i for o in owner]}]}
               for i, name in enumerate(color_by)]
    xtitle, ytitle = projection.axis_titles
    method = {"pca": "PCA", "tsne": "t-SNE"}.get(projection.method, projection.method)
    extra = (f", perplexity {format_value(projection.info['perplexity'])}"
             if "perplexity" in projection.info else "")
    fig.update_layout(
        template=TEMPLATE, height=560, width=760, margin={"t": 110},
        title=title or (f"{method} of the final embeddings of {len(table)} test events "
                        f"(seed {projection.seed}{extra})"),
        xaxis_title=xtitle, yaxis_title=ytitle,
        legend={"orientation": "h", "y": -0.15},
        updatemenus=[{"buttons": buttons, "direction": "down", "x": 0.0, "xanchor": "left",
                      "y": 1.12, "yanchor": "top", "showactive": True}] if len(buttons) > 1
        else [])
    return fig


__all__ = [
    "COLOR_OPTIONS", "HOVER_COLUMNS", "MISSING_COLOR", "embedding_figure", "embedding_traces",
    "hover_text",
]  # fmt: skip
