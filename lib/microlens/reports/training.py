"""Training curves: loss and accuracy per epoch, drawn whole or grown live."""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from microlens.reports.style import TEMPLATE, format_value

# --------------------------------------------------------------------------------------------
# Training curves
# --------------------------------------------------------------------------------------------

TRAIN_COLOR = "#1f77b4"
VAL_COLOR = "#ff7f0e"
CURVE_SERIES = (
    ("train_loss", "train loss", TRAIN_COLOR, 1),
    ("val_loss", "validation loss", VAL_COLOR, 1),
    ("train_accuracy", "train accuracy", TRAIN_COLOR, 2),
    ("val_accuracy", "validation accuracy", VAL_COLOR, 2),
)
"""History columns drawn by :func:`training_curves_figure`: column, name, colour, subplot."""


def _curves_title(history: Sequence[dict]) -> str:
    if not history:
        return "Training curves (waiting for the first epoch)"
    best = min(history, key=lambda r: r["val_loss"] if math.isfinite(r["val_loss"]) else math.inf)
    return (f"Training curves: {len(history)} epochs, best validation loss "
            f"{format_value(best['val_loss'])} at epoch {best['epoch']} "
            f"(accuracy {format_value(best['val_accuracy'])})")


def training_curves_figure(history: Sequence[dict] = ()) -> go.Figure:
    """Loss and final-prediction accuracy against epoch, training and validation.

    Parameters
    ----------
    history : sequence of dict
        Rows of a run's ``history.csv`` (:func:`microlens.models.runs.read_history`, or the rows
        passed to ``on_epoch``); may be empty (a live figure filled by
        :func:`add_history_rows`).

    Returns
    -------
    go.Figure
        Two panels (loss left, accuracy right); four traces in :data:`CURVE_SERIES` order.
        The loss is the weighted loss of :mod:`microlens.training.train` (every observation's
        prediction); accuracy is that of the final prediction of each event.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss (weighted, all observations)",
                                                        "accuracy (final prediction)"),
                        horizontal_spacing=0.1)
    for column, name, color, col in CURVE_SERIES:
        dash = "dot" if column.startswith("train") else "solid"
        fig.add_trace(go.Scatter(x=[], y=[], mode="lines+markers", name=name,
                                 legendgroup=column.split("_")[0],
                                 line={"color": color, "dash": dash}, marker={"size": 5}),
                      row=1, col=col)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="loss", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02], row=1, col=2)
    fig.update_layout(template=TEMPLATE, height=400, margin={"t": 80},
                      title=_curves_title(()), legend={"orientation": "h", "y": -0.2})
    add_history_rows(fig, history)
    return fig


def add_history_rows(fig: go.Figure, rows: Sequence[dict]) -> go.Figure:
    """Append epochs to a :func:`training_curves_figure` (a ``go.FigureWidget`` updates live).

    Rows whose epoch is already drawn are ignored, so the same rows may be passed twice (a
    resumed run, or ``microlens.training.ddp.launch`` re-reading ``history.csv``). Returns ``fig``.
    """
    drawn = {int(e) for e in (fig.data[0].x or ())}
    new = sorted((r for r in rows if int(r["epoch"]) not in drawn), key=lambda r: r["epoch"])
    if not new:
        return fig
    history = [{"epoch": int(e), **{c: fig.data[i].y[k] for i, (c, *_) in
                                    enumerate(CURVE_SERIES)}}
               for k, e in enumerate(fig.data[0].x or ())]
    history = sorted(history + [dict(r) for r in new], key=lambda r: r["epoch"])
    epochs = [int(r["epoch"]) for r in history]
    with fig.batch_update():
        for trace, (column, *_) in zip(fig.data, CURVE_SERIES, strict=True):
            trace.x = epochs
            trace.y = [float(r[column]) for r in history]
        fig.layout.title = _curves_title(history)
    return fig
