"""Figures of a test-split evaluation, drawn from the summary dict of
:func:`microlens.evaluation.evaluate.evaluate_run` (so they can be rebuilt from
``evaluation_summary.json``
without touching the model)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from microlens.core.classes import CLASS_LABELS, CLASS_NAMES
from microlens.reports.style import CLASS_COLORS, TEMPLATE, class_label, error_bars, format_value

TRANSFORMER_COLOR = "#2ca02c"
PEER_COLOR = "#9467bd"
BEFORE_COLOR = "#ff7f0e"
AFTER_COLOR = "#1f77b4"
DIAGONAL = dict(color="#999999", dash="dot", width=1)


MODEL_LABELS = {"transformer": "transformer", "cnn": "CNN", "gru": "GRU",
                "features": "feature model", "rnn_vae": "RNN-VAE", "deepsets": "DeepSets",
                "set_transformer": "Set Transformer", "masked": "pretrained transformer"}
"""How the figures name each model kind (:data:`microlens.models.registry.KINDS`)."""


def model_label(kind: str | None = None) -> str:
    """The name the figures give a model of ``kind`` (an unknown kind is named as it is;
    None, a summary written before kinds existed, is the transformer)."""
    kind = kind or "transformer"
    return MODEL_LABELS.get(kind, str(kind))


def model_seconds_per_event(head: dict) -> float | None:
    """The model's inference time per event from an evaluation headline (None when it was not
    timed)."""
    for key in ("model_seconds_per_event", "transformer_seconds_per_event"):
        if head.get(key) is not None:
            return float(head[key])
    return None


def _class_color(name: str) -> str:
    return CLASS_COLORS[CLASS_NAMES.index(name)]


def confusion_figure(classification: dict) -> go.Figure:
    """Confusion matrices side by side: counts, and normalised by true class (recall on the
    diagonal)."""
    counts = np.asarray(classification["confusion"])
    normalized = np.asarray(classification["confusion_normalized"])
    names = list(CLASS_LABELS[: counts.shape[0]])
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.15,
                        subplot_titles=("counts", "fraction of each true class"))
    for col, (values, text, scale) in enumerate(
            ((counts, counts.astype(str), "Blues"),
             (normalized, np.vectorize(lambda v: f"{v:.2f}")(normalized), "Greens")), start=1):
        fig.add_trace(go.Heatmap(z=values, x=names, y=names, text=text, texttemplate="%{text}",
                                 colorscale=scale, showscale=False,
                                 hovertemplate="true %{y}, predicted %{x}: %{text}<extra></extra>"),
                      row=1, col=col)
        fig.update_xaxes(title_text="predicted class", row=1, col=col)
        fig.update_yaxes(title_text="true class", autorange="reversed", row=1, col=col)
    fig.update_layout(template=TEMPLATE, height=420, width=900,
                      title=f"Confusion on the test split (accuracy "
                            f"{format_value(classification['accuracy'])}, macro F1 "
                            f"{format_value(classification['macro_f1'])})")
    return fig


def roc_figure(roc: dict) -> go.Figure:
    """One-vs-rest ROC curve of each class with its AUC."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=DIAGONAL, name="chance",
                             hoverinfo="skip"))
    for name in CLASS_NAMES:
        if name in roc:
            fig.add_trace(go.Scatter(x=roc[name]["fpr"], y=roc[name]["tpr"], mode="lines",
                                     line=dict(color=_class_color(name), width=2),
                                     name=f"{class_label(name)} vs rest "
                                          f"(AUC {roc[name]['auc']:.3f})"))
    fig.update_layout(template=TEMPLATE, height=450, width=520,
                      title=f"ROC, one vs rest (macro AUC {format_value(roc['macro_auc'])})",
                      xaxis_title="false positive rate", yaxis_title="true positive rate",
                      legend=dict(x=0.35, y=0.05))
    return fig


def precision_recall_figure(curves: dict) -> go.Figure:
    """Precision-recall curve of each class with its average precision and no-skill level."""
    fig = go.Figure()
    for name in CLASS_NAMES:
        if name not in curves:
            continue
        c = curves[name]
        color = _class_color(name)
        fig.add_trace(go.Scatter(x=c["recall"], y=c["precision"], mode="lines",
                                 line=dict(color=color, width=2, shape="hv"),
                                 name=f"{class_label(name)} (AP {c['average_precision']:.3f})"))
        fig.add_trace(go.Scatter(x=[0, 1], y=[c["prevalence"]] * 2, mode="lines",
                                 line=dict(color=color, dash="dot", width=1),
                                 name=f"{class_label(name)} no skill", showlegend=False,
                                 hoverinfo="skip"))
    fig.update_layout(template=TEMPLATE, height=450, width=520,
                      title="Precision-recall, one vs rest", xaxis_title="recall",
                      yaxis_title="precision", yaxis_range=[0, 1.02])
    return fig


def reliability_figure(calibration: dict) -> go.Figure:
    """Reliability diagram before and after temperature scaling (top-class confidence vs
    accuracy per bin), with the expected calibration error of each and the bin counts."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28],
                        vertical_spacing=0.06)
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=DIAGONAL,
                             name="perfect calibration", hoverinfo="skip"), row=1, col=1)
    temperature = calibration.get("temperature")
    for key, color, label in (("before", BEFORE_COLOR, "before (T = 1)"),
                              ("after", AFTER_COLOR, f"after (T = {format_value(temperature)})")):
        diagram = calibration[key]["reliability"]
        edges = np.asarray(diagram["edges"])
        centers = (edges[:-1] + edges[1:]) / 2
        filled = [i for i, a in enumerate(diagram["accuracy"]) if a is not None]
        fig.add_trace(go.Scatter(
            x=[diagram["confidence"][i] for i in filled],
            y=[diagram["accuracy"][i] for i in filled],
            mode="lines+markers", line=dict(color=color), marker=dict(size=7),
            name=f"{label}: ECE {calibration[key]['ece']:.3f}",
            customdata=[diagram["count"][i] for i in filled],
            hovertemplate="confidence %{x:.3f}<br>accuracy %{y:.3f}<br>%{customdata} events"
                          "<extra></extra>"), row=1, col=1)
        fig.add_trace(go.Bar(x=centers, y=diagram["count"], marker_color=color, opacity=0.6,
                             width=(edges[1] - edges[0]) * 0.45, showlegend=False,
                             name=f"{key} counts"), row=2, col=1)
    fig.update_xaxes(title_text="confidence (probability of the predicted class)", range=[0, 1],
                     row=2, col=1)
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(title_text="events", row=2, col=1)
    fig.update_layout(template=TEMPLATE, height=560, width=600, barmode="group",
                      title="Reliability of the final prediction (test split)",
                      legend=dict(x=0.02, y=0.98))
    return fig


def confidence_histogram_figure(histogram: dict) -> go.Figure:
    """Histogram of the top-class confidence for correct and wrong final predictions."""
    edges = np.asarray(histogram["edges"])
    centers = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure()
    for key, color in (("correct", TRANSFORMER_COLOR), ("wrong", CLASS_COLORS[2])):
        fig.add_trace(go.Bar(x=centers, y=histogram[key], name=key, marker_color=color,
                             width=edges[1] - edges[0]))
    fig.update_layout(template=TEMPLATE, barmode="stack", height=380, width=560,
                      title="Confidence of the final prediction (calibrated)",
                      xaxis_title="probability of the predicted class", yaxis_title="events")
    return fig


def _peer_points(peer: dict | None) -> tuple[list[float], list[float]]:
    """The classical peer's (fraction, accuracy) points from its summary."""
    points = sorted((p["fraction"], p["accuracy"]) for p in (peer or {}).get("fractions", []))
    return [p[0] for p in points], [p[1] for p in points]


def early_detection_figure(early: dict, peer: dict | None = None,
                           model_kind: str | None = None) -> go.Figure:
    """Accuracy (and per-class recall) against the fraction of the light curve seen, and against
    time relative to the peak, ``(t - t_0) / t_E``, from one causal forward pass per event;
    the model's curve is named by its ``model_kind`` (:func:`model_label`)."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, specs=[[{}, {"secondary_y": True}]],
                        subplot_titles=("vs the fraction of observations seen",
                                        "vs time from the peak"))
    frac, tau = early["by_fraction"], early["by_tau"]
    name = model_label(model_kind)
    fig.add_trace(go.Scatter(x=frac["fraction"], y=frac["accuracy"], mode="lines+markers",
                             line=dict(color=TRANSFORMER_COLOR, width=3),
                             name=f"{name} accuracy", legendgroup="acc"), row=1, col=1)
    fig.add_trace(go.Scatter(x=tau["tau"], y=tau["accuracy"], mode="lines+markers",
                             line=dict(color=TRANSFORMER_COLOR, width=3), showlegend=False,
                             name=f"{name} accuracy", legendgroup="acc"), row=1, col=2)
    for cls in CLASS_NAMES:
        for col, curve, x in ((1, frac, "fraction"), (2, tau, "tau")):
            fig.add_trace(go.Scatter(x=curve[x], y=curve["recall"][cls], mode="lines",
                                     line=dict(color=_class_color(cls), dash="dash", width=1.5),
                                     name=f"{class_label(cls)} recall", legendgroup=cls,
                                     showlegend=col == 1), row=1, col=col)
    x_peer, y_peer = _peer_points(peer)
    if x_peer:
        fig.add_trace(go.Scatter(x=x_peer, y=y_peer, mode="markers+lines",
                                 marker=dict(color=PEER_COLOR, size=10, symbol="diamond"),
                                 line=dict(color=PEER_COLOR, dash="dot"),
                                 name="classical peer accuracy"), row=1, col=1)
    fig.add_trace(go.Scatter(x=tau["tau"], y=tau["coverage"], mode="lines",
                             line=dict(color="#bbbbbb", width=1), fill="tozeroy",
                             fillcolor="rgba(200,200,200,0.2)",
                             name="events with data (right axis)"),
                  row=1, col=2, secondary_y=True)
    fig.add_vline(x=0, line=DIAGONAL, row=1, col=2)
    fig.update_xaxes(title_text="fraction of the light curve seen", range=[0, 1.02], row=1, col=1)
    fig.update_xaxes(title_text="(t − t₀) / t_E", row=1, col=2)
    fig.update_yaxes(title_text="accuracy / recall", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(title_text="accuracy / recall", range=[0, 1.02], row=1, col=2)
    fig.update_yaxes(title_text="fraction of events with data", range=[0, 1.02], showgrid=False,
                     row=1, col=2, secondary_y=True)
    fig.update_layout(template=TEMPLATE, height=520, width=1100,
                      title="Early detection: the answer after each observation (test split)",
                      legend=dict(orientation="h", yanchor="top", y=-0.18, x=0))
    return fig


LABEL_SPACING = 0.07
"""Least distance (in axis units, both axes spanning about 0..1) between two threshold labels of
:func:`decision_figure`; closer points share one label."""


def _threshold_text(thresholds: Sequence[float], members: Sequence[int]) -> str:
    """``'0.9'``, ``'0.5, 0.8'`` or ``'0.5–0.99'`` (a run of three or more neighbours)."""
    values = [thresholds[i] for i in members]
    if len(members) > 2 and list(members) == list(range(members[0], members[-1] + 1)):
        return f"{values[0]:g}–{values[-1]:g}"
    return ", ".join(f"{v:g}" for v in values)


def threshold_labels(x: Sequence[float], y: Sequence[float], thresholds: Sequence[float],
                     spacing: float = LABEL_SPACING) -> list[tuple[float, float, str]]:
    """Labels of the points of a decision sweep that never sit on each other.

    Points are taken in order; a point closer than ``spacing`` to an already labelled point
    joins that label (``'0.5–0.99'`` when every threshold decides at the same place), so any two
    labels are at least ``spacing`` apart.

    Returns
    -------
    list of (x, y, text)
        One entry per label, at the first point of its group.
    """
    groups: list[list[int]] = []
    for i in range(len(x)):
        for group in groups:
            if math.hypot(x[i] - x[group[0]], y[i] - y[group[0]]) < spacing:
                group.append(i)
                break
        else:
            groups.append([i])
    return [(x[g[0]], y[g[0]], _threshold_text(thresholds, g)) for g in groups]


def decision_figure(decision: dict) -> go.Figure:
    """Decision-time sweep: accuracy of the decisions against the median fraction of the light
    curve seen when they are made, one point per confidence threshold.

    Each point is labelled with its threshold; points closer than :data:`LABEL_SPACING` share one
    label (:func:`threshold_labels`), so a degenerate sweep reads ``0.5–0.99`` at one place rather
    than seven labels on top of each other. When ``decision`` has ``median_observation`` (the
    1-based observation at which the median decided event is decided), thresholds deciding at the
    first observation are drawn as red diamonds and a note says so.

    Parameters
    ----------
    decision : dict
        ``summary['decision']`` of :func:`microlens.evaluation.evaluate.evaluate_run`.

    Returns
    -------
    go.Figure
        The sweep (lines and markers), the threshold labels (text), and, when some thresholds
        decide at the first observation, one marker trace of those.
    """
    thresholds = decision["threshold"]
    keep = [i for i, a in enumerate(decision["accuracy"]) if a is not None]
    x = [decision["median_fraction_seen"][i] for i in keep]
    y = [decision["accuracy"][i] for i in keep]
    kept = [thresholds[i] for i in keep]
    observation = decision.get("median_observation")
    custom = [[thresholds[i], decision["decided_fraction"][i], decision["median_tau_lensing"][i],
               observation[i] if observation else None] for i in keep]
    hover = ("threshold %{customdata[0]:g}<br>median fraction seen %{x:.3f}"
             + ("<br>median observation %{customdata[3]:g}" if observation else "")
             + "<br>accuracy %{y:.3f}<br>decided %{customdata[1]:.2f} of events<br>median tau "
             "(lensing) %{customdata[2]:.2f}<extra></extra>")
    fig = go.Figure(go.Scatter(
        x=x, y=y, mode="lines+markers", marker=dict(size=9, color=TRANSFORMER_COLOR),
        line=dict(color=TRANSFORMER_COLOR), customdata=custom, name="decisions",
        hovertemplate=hover))
    labels = threshold_labels(x, y, kept)
    fig.add_trace(go.Scatter(
        x=[lx for lx, _, _ in labels], y=[ly for _, ly, _ in labels],
        text=[text for _, _, text in labels], mode="text", name="thresholds", showlegend=False,
        # off the (rising) line: above-left, or below-right where the left is the axis
        textposition=["bottom right" if lx < 0.08 else "top left" for lx, _, _ in labels],
        textfont=dict(size=12), hoverinfo="skip", cliponaxis=False))
    first = [j for j, i in enumerate(keep) if observation and observation[i] is not None
             and observation[i] <= 1]
    if first:
        fig.add_trace(go.Scatter(
            x=[x[j] for j in first], y=[y[j] for j in first], mode="markers",
            marker=dict(size=16, color=CLASS_COLORS[2], symbol="diamond-open",
                        line=dict(width=2)),
            name="decided at the first observation (median)", hoverinfo="skip"))
        text = _threshold_text(kept, first)
        fig.add_annotation(
            xref="paper", yref="paper", x=0.98, y=0.04, xanchor="right", yanchor="bottom",
            align="right", showarrow=False, bgcolor="rgba(255,255,255,0.85)",
            bordercolor=CLASS_COLORS[2], borderwidth=1,
            text=(f"threshold{'s' if len(first) > 1 else ''} {text}: the median event is "
                  "decided at its <b>first observation</b><br>(the confidence reaches the "
                  "threshold before the light curve can show anything)"))
    fig.update_layout(template=TEMPLATE, height=460, width=680,
                      title="Decision time: decide when the confidence first reaches a "
                            "threshold<br><sup>labels: confidence threshold</sup>",
                      xaxis_title="median fraction of the light curve seen at the decision",
                      yaxis_title="accuracy of the decisions", yaxis_range=[0, 1.05],
                      xaxis_range=[0, 1.02], legend=dict(orientation="h", y=-0.18))
    return fig


def _time_ratio_text(who: Sequence[str], ms: Sequence[float]) -> str:
    """``'classical peer: 2.22× the transformer's time'`` (the slower against the faster)."""
    if len(ms) != 2 or min(ms) <= 0:
        return ""
    slow, fast = (0, 1) if ms[0] >= ms[1] else (1, 0)
    return f"{who[slow]}: {ms[slow] / ms[fast]:.2f}× the {who[fast]}'s time"


def peer_comparison_figure(summary: dict) -> go.Figure:
    """The model beside the classical PSPL-fit peer on the same test events: accuracy,
    binary recall and macro F1 (the model with bootstrap intervals), and time per event. The
    model is named by the summary's ``model_kind`` (:func:`model_label`; the transformer when
    absent); a model without a time per event gets no time bar.

    Times are drawn on a linear axis from zero, each bar labelled in milliseconds, and the
    ratio of the two is written above them (a log axis made 7 ms against 3 ms look like 10×).

    Parameters
    ----------
    summary : dict
        :func:`microlens.evaluation.evaluate.evaluate_run` summary (``headline`` and, when the peer
        ran, ``classical_peer``).

    Returns
    -------
    go.Figure
        Score bars of the transformer (and the peer), then one trace of times per event.
    """
    head = summary["headline"]
    peer = summary.get("classical_peer") or {}
    metrics = (("accuracy", "accuracy"), ("binary_recall", "binary recall"),
               ("macro_f1", "macro F1"))
    model = model_label(summary.get("model_kind"))
    seconds = model_seconds_per_event(head)
    who, ms, colors = [], [], []
    if seconds is not None:
        who, ms, colors = [model], [seconds * 1e3], [TRANSFORMER_COLOR]
    if peer and peer.get("seconds_per_event") is not None:
        who.append("classical peer")
        ms.append(peer["seconds_per_event"] * 1e3)
        colors.append(PEER_COLOR)
    ratio = _time_ratio_text(who, ms)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.68, 0.32], horizontal_spacing=0.14,
                        subplot_titles=("classification (test split)",
                                        "time per event (1 core)"
                                        + (f"<br><sup>{ratio}</sup>" if ratio else "")))
    names = [label for _, label in metrics]
    fig.add_trace(go.Bar(x=names, y=[head[m] for m, _ in metrics], name=model,
                         marker_color=TRANSFORMER_COLOR,
                         error_y=error_bars([head[m] for m, _ in metrics],
                                            [head.get(f"{m}_low") for m, _ in metrics],
                                            [head.get(f"{m}_high") for m, _ in metrics]),
                         texttemplate="%{y:.3f}", textposition="inside",
                         insidetextanchor="middle"), row=1, col=1)  # clear of the error bar
    if peer:
        fig.add_trace(go.Bar(x=names, y=[peer.get(m) for m, _ in metrics],
                             name="classical peer (PSPL fit)", marker_color=PEER_COLOR,
                             texttemplate="%{y:.3f}", textposition="inside",
                             insidetextanchor="middle"), row=1, col=1)
    fig.add_trace(go.Bar(x=who, y=ms, showlegend=False, name="time per event",
                         marker_color=colors,
                         texttemplate="%{y:.2f} ms", textposition="outside", cliponaxis=False),
                  row=1, col=2)
    fig.update_yaxes(range=[0, 1.05], title_text="score", row=1, col=1)
    fig.update_yaxes(type="linear", range=[0, max(ms, default=1.0) * 1.2],
                     title_text="milliseconds per event", row=1, col=2)
    fig.update_layout(template=TEMPLATE, barmode="group", height=460, width=980,
                      margin={"t": 120},
                      title=f"{model[:1].upper()}{model[1:]} vs the classical peer on the "
                            "same test events",
                      legend=dict(orientation="h", yanchor="bottom", y=1.12, x=0))
    return fig


def _dchi2_bin_label(low, high) -> str:
    if low is None:
        return f"Δχ² ≤ {high:g}"
    if high is None:
        return f"Δχ² > {low:g}"
    return f"{low:g} < Δχ² ≤ {high:g}"


def dchi2_recall_figure(summary: dict) -> go.Figure | None:
    """Binary recall in bins of the binarity Δχ² (95 % Wilson intervals), the model (named by
    the summary's ``model_kind``, :func:`model_label`) beside the classical peer; binaries of
    Δχ² at most 100 cannot be told from a single lens in their data, so recall there is not
    expected (the physical ceiling).

    Parameters
    ----------
    summary : dict
        :func:`microlens.evaluation.evaluate.evaluate_run` summary (``dchi2_bins`` and, when the
        peer ran, ``classical_peer.dchi2_bins``).

    Returns
    -------
    go.Figure or None
        None when the summary has no Δχ² bins (a dataset without detectability, or an older
        summary).
    """
    table = summary.get("dchi2_bins")
    if not table:
        return None
    names = [_dchi2_bin_label(lo, hi) for lo, hi in zip(table["low"], table["high"], strict=True)]
    fig = go.Figure()
    peer = (summary.get("classical_peer") or {}).get("dchi2_bins")
    for who, rows, color in ((model_label(summary.get("model_kind")), table, TRANSFORMER_COLOR),
                             ("classical peer (PSPL fit)", peer, PEER_COLOR)):
        if not rows:
            continue
        fig.add_trace(go.Bar(
            x=names, y=rows["recall"], name=who, marker_color=color,
            error_y=error_bars(rows["recall"], rows["recall_low"], rows["recall_high"]),
            customdata=rows["n_binary"],
            hovertemplate="%{x}<br>recall %{y:.3f}<br>%{customdata} binaries<extra></extra>"))
    fig.update_xaxes(title_text="binarity Δχ² (best single-lens fit minus truth); "
                                "n = " + ", ".join(str(n) for n in table["n_binary"]))
    fig.update_yaxes(range=[0, 1.05], title_text="binary recall")
    fig.update_layout(template=TEMPLATE, barmode="group", height=420, width=820,
                      title="Binary recall by detectability (Δχ² ≤ 100: indistinguishable "
                            "from a single lens)")
    return fig


__all__ = [
    "LABEL_SPACING", "MODEL_LABELS", "confidence_histogram_figure", "confusion_figure",
    "dchi2_recall_figure", "decision_figure",
    "early_detection_figure", "model_label", "model_seconds_per_event", "peer_comparison_figure",
    "precision_recall_figure",
    "reliability_figure", "roc_figure", "threshold_labels",
]  # fmt: skip
