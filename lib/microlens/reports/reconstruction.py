"""Figures of a latent model's reconstructions (kind ``rnn_vae``, ``05_embedding``).

* :func:`reconstruction_examples_figure`: observed light curves with their error bars and the
  decoder's reconstruction from the final latent, a few events per class;
* :func:`reconstruction_error_figure`: the reconstruction error (the anomaly score) of every
  event by class, on a log axis, with the ROC AUCs of the score in the title.

Both are drawn from what :func:`microlens.evaluation.analysis.reconstruction_report` returns (the
summary is JSON, so :func:`microlens.workflow.figures.rebuild_figures` redraws the second from the
record alone).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from microlens.core.classes import CLASS_LABELS, CLASS_NAMES
from microlens.reports.events import WEBGL_POINTS, light_curve_traces, time_title
from microlens.reports.style import (
    CLASS_COLORS,
    FLUX_TITLE,
    MODEL_COLOR,
    TEMPLATE,
    format_value,
    log_ticks,
)

RECONSTRUCTION_NAME = "reconstruction (decoder, from the final latent)"
"""Legend name of the reconstructed curves."""


def _check_examples(examples: Sequence[dict]) -> list[dict]:
    examples = list(examples)
    for i, example in enumerate(examples):
        missing = {"event", "reconstruction", "error"} - set(example)
        if missing:
            raise ValueError(f"example {i} lacks {', '.join(sorted(missing))}: pass "
                             "microlens.evaluation.analysis.reconstruction_examples")
        n = len(example["event"]["times"])
        if np.shape(example["reconstruction"]) != (n,):
            raise ValueError(f"example {i}: reconstruction has shape "
                             f"{np.shape(example['reconstruction'])}, the event has {n} times")
    return examples


def reconstruction_examples_figure(examples: Sequence[dict], *, reference_epoch: float = 0.0,
                                   title: str | None = None) -> go.Figure:
    """Observed light curves and their reconstructions: one row per class, one column per event.

    Parameters
    ----------
    examples : sequence of dict
        :func:`microlens.evaluation.analysis.reconstruction_examples` (``event``, ``reconstruction``
        in flux units at the event's times, ``error``).
    reference_epoch : float
        The data set's reference epoch (for the time axis title).
    title : str, optional

    Returns
    -------
    go.Figure
        Per event a data trace (markers with error bars, the class colour) and a
        reconstruction line; rows for the classes present, in class order.
    """
    examples = _check_examples(examples)
    if not examples:
        raise ValueError("no examples to draw")
    by_class: dict[int, list[dict]] = {}
    for example in examples:
        by_class.setdefault(int(example["event"]["label"]), []).append(example)
    classes = sorted(by_class)
    cols = max(len(v) for v in by_class.values())
    titles = []
    for label in classes:
        row = [f"#{e['event']['index']} {CLASS_LABELS[label]}: error "
               f"{format_value(e['error'])}" for e in by_class[label]]
        titles += row + [""] * (cols - len(row))
    fig = make_subplots(rows=len(classes), cols=cols, subplot_titles=titles,
                        horizontal_spacing=0.06, vertical_spacing=0.18 if len(classes) > 1
                        else 0.1)
    legend_shown = False
    for r, label in enumerate(classes):
        for c, example in enumerate(by_class[label]):
            event = example["event"]
            long = len(event["times"]) > WEBGL_POINTS
            traces = light_curve_traces(event, model=np.asarray(example["reconstruction"]),
                                        marker_size=1.8 if long else 2.5, showlegend=False,
                                        webgl=None)
            data, line = traces
            data.name = "observed flux"
            line.name = RECONSTRUCTION_NAME
            line.line = {"color": MODEL_COLOR, "width": 1.5}
            if not legend_shown:
                data.showlegend = line.showlegend = True
                legend_shown = True
            fig.add_trace(data, row=r + 1, col=c + 1)
            fig.add_trace(line, row=r + 1, col=c + 1)
        fig.update_yaxes(title_text=f"{CLASS_LABELS[label]}<br>{FLUX_TITLE}", row=r + 1, col=1)
    fig.update_xaxes(title_text=time_title(reference_epoch), row=len(classes))
    fig.update_annotations(font_size=10)
    fig.update_layout(
        template=TEMPLATE, height=280 * len(classes) + 80, width=max(360 * cols, 700),
        margin={"t": 90}, legend={"orientation": "h", "y": -0.12},
        title=title or (f"Decoder reconstructions of {len(examples)} test events"
                        "<br><sup>from each event's final latent; error: mean squared residual "
                        "of the normalised flux</sup>"))
    return fig


AUC_LABELS = {"lensing_vs_no_event": "lensing vs no event", "binary_vs_pspl": "binary vs PSPL"}
"""How the title names each ROC AUC of
:func:`microlens.evaluation.analysis.reconstruction_summary`."""


def _auc_text(summary: dict) -> str:
    aucs = summary.get("anomaly_auc") or {}
    parts = [f"{AUC_LABELS.get(name, name.replace('_', ' '))} {format_value(value)}"
             for name, value in aucs.items() if value is not None]
    return f"ROC AUC of the error: {', '.join(parts)}" if parts else ""


def reconstruction_error_figure(summary: dict, title: str | None = None) -> go.Figure:
    """The reconstruction error of every event, one box (with its points) per class, log axis.

    Parameters
    ----------
    summary : dict
        :func:`microlens.evaluation.analysis.reconstruction_summary` (its ``labels``, ``errors`` and
        ``anomaly_auc``), or the same read back from a record.
    title : str, optional

    Returns
    -------
    go.Figure
        One ``go.Box`` per class with events, in class order.
    """
    if not summary.get("available", True):
        raise ValueError(f"no reconstruction to draw: {summary.get('reason')}")
    errors = np.asarray(summary["errors"], dtype=np.float64)
    labels = np.asarray(summary["labels"], dtype=np.int64)
    if errors.shape != labels.shape:
        raise ValueError(f"summary has {errors.size} errors but {labels.size} labels")
    fig = go.Figure()
    for c, name in enumerate(CLASS_NAMES):
        values = errors[labels == c]
        if values.size == 0:
            continue
        fig.add_trace(go.Box(
            y=values, name=CLASS_LABELS[c], marker={"color": CLASS_COLORS[c], "size": 3},
            line={"color": CLASS_COLORS[c]}, boxpoints="all", jitter=0.4, pointpos=0,
            hovertemplate=f"{name}<br>error %{{y:.4g}}<extra></extra>"))
    positive = errors[np.isfinite(errors) & (errors > 0)]
    log = positive.size == errors.size and positive.size > 0
    fig.update_yaxes(title_text="reconstruction error (mean squared normalised residual)",
                     **({"type": "log", **log_ticks(positive)} if log else {}))
    auc = _auc_text(summary)
    fig.update_layout(
        template=TEMPLATE, height=480, width=720, showlegend=False,
        title=title or (f"Reconstruction error by class ({errors.size} test events)"
                        + (f"<br><sup>{auc}</sup>" if auc else "")))
    return fig


def reconstruction_figures(examples: Sequence[dict], summary: dict, *,
                           reference_epoch: float = 0.0) -> dict[str, go.Figure]:
    """The reconstruction figures of ``05_embedding``.

    Parameters
    ----------
    examples : sequence of dict
        :func:`microlens.evaluation.analysis.reconstruction_examples` (may be empty).
    summary : dict
        :func:`microlens.evaluation.analysis.reconstruction_report`'s summary.
    reference_epoch : float
        The data set's reference epoch (time axis title).

    Returns
    -------
    dict
        Empty for a model without a decoder (``summary["available"]`` False); otherwise
        ``reconstruction_errors`` (:func:`reconstruction_error_figure`) and, when there are
        examples, ``reconstruction_examples`` (:func:`reconstruction_examples_figure`).
    """
    if not summary.get("available", False):
        return {}
    figures = {"reconstruction_errors": reconstruction_error_figure(summary)}
    if examples:
        figures["reconstruction_examples"] = reconstruction_examples_figure(
            examples, reference_epoch=reference_epoch)
    return figures


__all__ = [
    "AUC_LABELS", "RECONSTRUCTION_NAME", "reconstruction_error_figure",
    "reconstruction_examples_figure", "reconstruction_figures",
]  # fmt: skip
