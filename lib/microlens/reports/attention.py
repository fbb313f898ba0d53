"""Figures of what the classifier attends to: weights over light curves, the causal band, layers.

Every builder takes :class:`microlens.evaluation.analysis.EventAttention` objects (from
:func:`microlens.evaluation.analysis.attention_maps`) or the dict of
:func:`microlens.evaluation.analysis.attention_statistics`; the numbers come from
:mod:`microlens.evaluation.analysis`
and these functions only draw them. ``layer`` is 0-based; ``head=None`` means the mean over the
heads of that layer (``layer=None``: the mean over layers too).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from microlens.core.classes import CLASS_LABELS
from microlens.evaluation.analysis import (
    EventAttention,
    attention_received,
    dense_attention,
    key_positions,
)
from microlens.reports.events import light_curve_traces
from microlens.reports.style import CLASS_COLORS, FLUX_TITLE, TEMPLATE, class_label, event_title

ATTENTION_COLORSCALE = "Viridis"
SERIES_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                 "#bcbd22")
"""Colours of numbered series (heads, layers)."""
EVENT_TRACES = ("data", "window", "query", *(f"P({name})" for name in CLASS_LABELS), "received")
"""Trace order of :func:`attention_event_figure` (the widget updates them in place)."""


def view_name(layer: int | None, head: int | None) -> str:
    """``'layer 1, head 2'``, ``'layer 1, mean of heads'`` or ``'mean of layers and heads'``."""
    if layer is None:
        return "mean of layers and heads" if head is None else f"head {head}, mean of layers"
    return f"layer {layer}, " + ("mean of heads" if head is None else f"head {head}")


def default_query(attention: EventAttention) -> int:
    """The observation to show a window for by default: the brightest one (the peak)."""
    flux = np.asarray(attention.event["flux"], dtype=np.float64)
    return int(np.argmax(flux)) if flux.size else 0


RELATIVE_COLORSCALE = "RdBu_r"
"""Diverging colours of weights relative to uniform: white at 1, red above, blue below."""
RELATIVE_TITLE = "weight / uniform<br>(1 = uniform<br>over the window)"
"""Colour-bar title of the window weights in :func:`attention_event_figure`."""
RELATIVE_TICKS = (0.01, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 100.0)
"""Colour-bar ticks of relative weights (those inside the drawn range are shown)."""
MIN_RELATIVE_RANGE = 2.0
"""The colour scale of relative weights spans at least 1/2 .. 2: uniform attention stays white
instead of being stretched over the whole scale."""


def relative_weights(window_weights: np.ndarray) -> np.ndarray:
    """Attention weights over one query's visible keys relative to uniform attention over them:
    ``weight * n_keys``, so 1 means uniform (the weights of one query sum to 1)."""
    window_weights = np.asarray(window_weights, dtype=np.float64)
    return window_weights * window_weights.size


def relative_color_half_range(log_relative: np.ndarray) -> float:
    """Half-width, in log10, of a colour range symmetric about 1 that holds every value and at
    least ``1/MIN_RELATIVE_RANGE .. MIN_RELATIVE_RANGE``."""
    finite = np.abs(np.asarray(log_relative, dtype=np.float64))
    finite = finite[np.isfinite(finite)]
    largest = float(finite.max()) if finite.size else 0.0
    return max(largest, math.log10(MIN_RELATIVE_RANGE))


def received_range(received) -> list[float]:
    """y range of a panel of attention received relative to uniform: from 0 to at least 2, so
    uniform attention (1) reads as a flat line at 1, not as noise blown up to the full height."""
    values = np.asarray(received, dtype=np.float64)
    values = values[np.isfinite(values)]
    top = float(values.max()) if values.size else 0.0
    return [0.0, max(MIN_RELATIVE_RANGE, 1.05 * top)]


def _check_query(attention: EventAttention, query: int | None) -> int:
    query = default_query(attention) if query is None else int(query)
    if not 0 <= query < attention.n_obs:
        raise IndexError(f"query {query} out of range; valid: 0..{attention.n_obs - 1}")
    return query


# --------------------------------------------------------------------------------------------
# One event
# --------------------------------------------------------------------------------------------


def attention_event_traces(attention: EventAttention, layer: int | None = 0,
                           head: int | None = None, query: int | None = None) -> list:
    """The traces of :func:`attention_event_figure`, in the order of :data:`EVENT_TRACES`,
    each with its subplot (``xaxis``/``yaxis``) set."""
    query = _check_query(attention, query)
    event = attention.event
    times = np.asarray(event["times"], dtype=np.float64)
    flux = np.asarray(event["flux"], dtype=np.float64)
    weights = attention.select(layer, head)
    keys = key_positions(attention.n_obs, attention.window)[query]
    seen = keys >= 0
    window_w = weights[query][seen].astype(np.float64)
    relative = relative_weights(window_w)
    log_rel = np.log10(np.maximum(relative, 1e-12))
    half = relative_color_half_range(log_rel)
    ticks = [v for v in RELATIVE_TICKS if abs(math.log10(v)) <= half + 1e-9]
    size = np.clip(6.0 * np.sqrt(relative), 3.0, 14.0)  # uniform: 6 px, the data stays visible
    data = light_curve_traces(event, model=None, marker_size=3)[0]
    data.update(marker={"color": "#9a9a9a"}, error_y={"color": "#dddddd"}, name="data")
    traces = [
        data,
        go.Scatter(x=times[keys[seen]], y=flux[keys[seen]], mode="markers",
                   name="window weights",
                   marker={"size": size, "color": log_rel, "colorscale": RELATIVE_COLORSCALE,
                           "cmin": -half, "cmid": 0.0, "cmax": half, "showscale": True,
                           "opacity": 0.75, "line": {"width": 0.5, "color": "#555555"},
                           "colorbar": {"title": {"text": RELATIVE_TITLE, "side": "right"},
                                        "tickvals": [math.log10(v) for v in ticks],
                                        "ticktext": [f"{v:g}" for v in ticks],
                                        "len": 0.5, "y": 0.76}},
                   customdata=np.c_[keys[seen], window_w, relative], hovertemplate=(
                       "obs %{customdata[0]}<br>t=%{x:.2f} d<br>weight %{customdata[1]:.4g}"
                       "<br>weight / uniform %{customdata[2]:.4g}<extra></extra>")),
        go.Scatter(x=[times[query]], y=[flux[query]], mode="markers",
                   name="query",
                   marker={"symbol": "star", "size": 16, "color": "black"}),
    ]
    for label, name in enumerate(CLASS_LABELS):
        traces.append(go.Scatter(x=times, y=attention.probabilities[:, label], mode="lines",
                                 name=f"P({name})", line={"color": CLASS_COLORS[label]},
                                 xaxis="x2", yaxis="y2"))
    received = attention_received(weights, normalize="uniform")
    traces.append(go.Scatter(x=times, y=received, mode="lines", name="attention received",
                             line={"color": "black", "width": 1}, xaxis="x3", yaxis="y3"))
    for trace in traces[:3]:
        trace.update(xaxis="x", yaxis="y")
    return traces


def window_shape(attention: EventAttention, query: int | None = None) -> dict:
    """A shaded band over all three panels from the first visible key to the query."""
    query = _check_query(attention, query)
    times = attention.event["times"]
    first = max(0, query - attention.window + 1)
    return {"type": "rect", "xref": "x", "yref": "paper", "x0": float(times[first]),
            "x1": float(times[query]), "y0": 0, "y1": 1, "fillcolor": "#f4d03f",
            "opacity": 0.2, "line": {"width": 0}, "layer": "below"}


def attention_event_figure(attention: EventAttention, layer: int | None = 0,
                           head: int | None = None, query: int | None = None) -> go.Figure:
    """One event: light curve with a query's window, probabilities, attention received.

    Top: the light curve (grey) with the window of observation ``query`` (default: the brightest)
    drawn over it, each key sized and coloured by its weight relative to uniform attention over the
    keys the query sees (:func:`relative_weights`: weight × their number, 1 = uniform over the
    window; a diverging colour scale symmetric in log about 1, at least 1/2 .. 2, so evenly spread
    attention shows as white rather than stretched over the whole scale), and the window shaded on
    every panel. Middle: the calibrated class probabilities after every observation. Bottom: the
    attention each observation receives relative to uniform attention
    (:func:`microlens.evaluation.analysis.attention_received` with ``normalize='uniform'``: 1 =
    uniform).

    Parameters
    ----------
    attention : EventAttention
    layer : int or None
        Layer (None: mean over layers).
    head : int or None
        Head (None: mean over heads).
    query : int, optional
        Observation (0-based) whose window is drawn.

    Returns
    -------
    go.Figure
        Traces in the order of :data:`EVENT_TRACES`.
    """
    query = _check_query(attention, query)
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, row_heights=[0.5, 0.25, 0.25],
                        vertical_spacing=0.05)
    fig.add_traces(attention_event_traces(attention, layer, head, query))
    fig.update_layout(
        template=TEMPLATE, height=720, margin={"t": 110},
        title={"text": f"{event_title(attention.event)}<br>attention: "
                       f"{view_name(layer, head)}; window of observation {query} shaded",
               "font": {"size": 13}},
        legend={"orientation": "h", "y": -0.16}, shapes=[window_shape(attention, query)])
    fig.update_yaxes(title_text=FLUX_TITLE, row=1, col=1)
    fig.update_yaxes(title_text="P(class)", range=[0, 1], row=2, col=1)
    received = fig.data[EVENT_TRACES.index("received")].y
    fig.update_yaxes(title_text="received<br>/ uniform", range=received_range(received),
                     row=3, col=1)
    fig.update_xaxes(title_text="time [days]", row=3, col=1)
    return fig


def heatmap_span(attention: EventAttention, max_obs: int = 300,
                 query: int | None = None) -> tuple[int, int]:
    """Observation range ``[start, stop)`` shown by :func:`attention_heatmap_figure`: the whole
    event when it has at most ``max_obs`` observations, else ``max_obs`` of them centred on
    ``query`` (default: the brightest observation)."""
    n = attention.n_obs
    if n <= max_obs:
        return 0, n
    centre = _check_query(attention, query)
    start = min(max(0, centre - max_obs // 2), n - max_obs)
    return start, start + max_obs


def attention_heatmap_figure(attention: EventAttention, layer: int | None = 0,
                             head: int | None = None, span: tuple[int, int] | None = None,
                             max_obs: int = 300) -> go.Figure:
    """The dense query-by-key attention matrix: the causal window as a band below the diagonal.

    Built from the window weights by :func:`microlens.evaluation.analysis.dense_attention`. Keys a
    query cannot see (later observations, or more than ``window - 1`` back) are left blank (grey),
    so the band of width ``window`` on and below the diagonal is the whole receptive field of one
    layer. Colours are weights relative to uniform attention over the keys the query sees (weight ×
    their number: 1 = uniform, white), on a diverging scale symmetric in log about 1, so evenly
    spread attention reads as such instead of being stretched over the scale.

    Parameters
    ----------
    attention : EventAttention
    layer, head : int or None
        As :func:`attention_event_figure`.
    span : (start, stop), optional
        Observation range to show (default :func:`heatmap_span`).
    max_obs : int
        Largest range shown by default (the matrix has ``n^2`` cells).

    Returns
    -------
    go.Figure
        One heatmap trace; x is the key, y the query (0-based observation indices), z the
        log10 of the relative weight (``customdata``: the weight and the relative weight).
    """
    start, stop = heatmap_span(attention, max_obs) if span is None else map(int, span)
    if not 0 <= start < stop <= attention.n_obs:
        raise ValueError(f"span must satisfy 0 <= start < stop <= {attention.n_obs}, got "
                         f"({start}, {stop})")
    dense = dense_attention(attention.select(layer, head).astype(np.float64), fill=np.nan)
    index = np.arange(attention.n_obs)
    z = dense[start:stop, start:stop]
    # relative to uniform over the keys each query sees (min(k + 1, window) of them)
    visible = np.minimum(index[start:stop] + 1, attention.window)[:, None]
    relative = z * visible
    log_rel = np.log10(np.maximum(relative, 1e-12))
    half = relative_color_half_range(log_rel)
    ticks = [v for v in RELATIVE_TICKS if abs(math.log10(v)) <= half + 1e-9]
    fig = go.Figure(go.Heatmap(
        z=log_rel, x=index[start:stop], y=index[start:stop], colorscale=RELATIVE_COLORSCALE,
        zmin=-half, zmid=0.0, zmax=half, hoverongaps=False,
        # blank cells get no hover; 0 there keeps the data strict JSON for the widget
        customdata=np.nan_to_num(np.dstack([z, relative]), nan=0.0),
        colorbar={"title": {"text": RELATIVE_TITLE, "side": "right"},
                  "tickvals": [math.log10(v) for v in ticks],
                  "ticktext": [f"{v:g}" for v in ticks]},
        hovertemplate="query %{y}<br>key %{x}<br>weight %{customdata[0]:.4g}<br>weight / "
                      "uniform %{customdata[1]:.4g}<extra></extra>"))
    fig.update_layout(
        template=TEMPLATE, height=560, width=680, plot_bgcolor="#e8e8e8",  # blank: not seen
        title={"text": f"#{attention.row} {class_label(attention.label)}: "
                       f"{view_name(layer, head)}"
                       f"<br>queries attend to the {attention.window} observations ending at "
                       "themselves", "font": {"size": 13}},
        xaxis={"title": "key (observation attended to)", "constrain": "domain"},
        yaxis={"title": "query (observation predicting)", "autorange": "reversed",
               "scaleanchor": "x", "constrain": "domain"})
    return fig


def attention_overview_figure(attention: EventAttention) -> go.Figure:
    """Every layer and head at once: the light curve on top, then one panel per layer with the
    attention received relative to uniform by each head (thin) and by their mean (black).

    Returns
    -------
    go.Figure
        The data trace, then per layer ``n_heads`` head traces and one mean trace.
    """
    n_layers, n_heads = attention.n_layers, attention.n_heads
    fig = make_subplots(rows=n_layers + 1, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=["light curve"] + [
                            f"layer {i}: attention received / uniform" for i in range(n_layers)])
    for trace in light_curve_traces(attention.event, model=None, marker_size=3,
                                    showlegend=False):
        fig.add_trace(trace, row=1, col=1)
    times = attention.event["times"]
    received = attention_received(attention.weights, normalize="uniform")  # (L, H, n)
    for layer in range(n_layers):
        for head in range(n_heads):
            fig.add_trace(go.Scatter(
                x=times, y=received[layer, head], mode="lines", name=f"head {head}",
                legendgroup=f"head {head}", showlegend=layer == 0,
                line={"width": 0.8, "color": SERIES_COLORS[head % len(SERIES_COLORS)]}),
                row=layer + 2, col=1)
        fig.add_trace(go.Scatter(
            x=times, y=received[layer].mean(axis=0),  # received attention is linear in weights
            mode="lines", name="mean of heads", legendgroup="mean", showlegend=layer == 0,
            line={"width": 1.6, "color": "black"}), row=layer + 2, col=1)
    fig.update_yaxes(title_text=FLUX_TITLE, row=1, col=1)
    for layer in range(n_layers):
        fig.update_yaxes(title_text="/ uniform", range=received_range(received[layer]),
                         row=layer + 2, col=1)
    fig.update_xaxes(title_text="time [days]", row=n_layers + 1, col=1)
    fig.update_annotations(font_size=12)
    fig.update_layout(template=TEMPLATE, height=280 + 210 * n_layers, margin={"t": 110},
                      title={"text": event_title(attention.event), "font": {"size": 13}},
                      legend={"orientation": "v", "x": 1.02, "y": 0.5})
    return fig


# --------------------------------------------------------------------------------------------
# Several events
# --------------------------------------------------------------------------------------------


def attention_gallery_figure(maps: Sequence[EventAttention], cols: int = 3) -> go.Figure:
    """Light curves coloured by the attention they receive (mean over layers and heads,
    relative to uniform: > 1 marks observations the model looks at more than a plain average
    over its window would), one panel per event, with the final prediction in the title.

    The shared colour axis is diverging and symmetric in log about 1 (white = uniform), from
    the 1st and 99th percentiles of all values and at least 1/2 .. 2; marker colours are
    ``log10(received / uniform)`` with the colour bar labelled in plain ratios.

    Returns
    -------
    go.Figure
        One marker trace per event (sharing one colour axis).
    """
    if not maps:
        raise ValueError("no events given")
    cols = max(1, min(int(cols), len(maps)))
    rows = math.ceil(len(maps) / cols)
    titles = []
    for m in maps:
        final = m.probabilities[-1]
        predicted = int(np.argmax(final))
        titles.append(f"#{m.row} {class_label(m.label)} → {class_label(predicted)} "
                      f"({final[predicted]:.2f})")
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.06,
                        vertical_spacing=0.12 if rows > 1 else 0.1)
    values = [attention_received(m.select(None, None), normalize="uniform") for m in maps]
    logs = [np.log10(np.maximum(v, 1e-12)) for v in values]
    # symmetric in log about 1 (uniform), from the 1st and 99th percentiles: a few starved
    # observations at the edges must not wash out the rest
    half = relative_color_half_range(np.percentile(np.concatenate(logs), [1, 99]))
    ticks = [v for v in RELATIVE_TICKS if abs(math.log10(v)) <= half + 1e-9]
    for i, (m, received, log_rel) in enumerate(zip(maps, values, logs, strict=True)):
        fig.add_trace(go.Scatter(
            x=m.event["times"], y=m.event["flux"], mode="markers", showlegend=False,
            name=f"#{m.row}", marker={"size": 5, "color": log_rel, "coloraxis": "coloraxis",
                                      # uniform (1) is white: an outline keeps it visible
                                      "line": {"width": 0.5, "color": "#777777"}},
            customdata=np.c_[np.arange(m.n_obs), received], hovertemplate=(
                "obs %{customdata[0]}<br>t=%{x:.2f} d<br>flux %{y:.3g} × baseline<br>"
                "received/uniform %{customdata[1]:.3g}<extra></extra>")),
            row=i // cols + 1, col=i % cols + 1)
    fig.update_annotations(font_size=10)
    fig.update_xaxes(title_text="time [days]", row=rows)
    fig.update_yaxes(title_text=FLUX_TITLE, col=1)
    fig.update_layout(
        template=TEMPLATE, height=max(300, 260 * rows), width=max(360 * cols, 700),
        margin={"t": 110},
        coloraxis={"colorscale": RELATIVE_COLORSCALE, "cmin": -half, "cmid": 0.0, "cmax": half,
                   "colorbar": {"title": "received /<br>uniform<br>(1 = uniform)",
                                "tickvals": [math.log10(v) for v in ticks],
                                "ticktext": [f"{v:g}" for v in ticks]}},
        title={"text": "Where the model looks: attention received relative to uniform<br>"
                       "(mean of layers and heads; title: true → predicted class, probability)",
               "font": {"size": 14}})
    return fig


STATISTIC_PANELS = (
    ("distance_obs", "mean look-back [observations]", "uniform_distance_obs"),
    ("entropy_normalized", "entropy / log(visible keys)", 1.0),
    ("regions.peak.enrichment", "weight on the peak / uniform", 1.0),
    ("regions.wings.enrichment", "weight on the rise and fall / uniform", 1.0),
)
"""Panels of :func:`attention_statistics_figure`: key (dots go into nested dicts), title, and
the value of uniform attention (a number, or a key of the statistics)."""




def _lookup(entry: dict, key: str):
    for part in key.split("."):
        if not isinstance(entry, dict) or part not in entry:
            return None
        entry = entry[part]
    return entry


def attention_statistics_figure(statistics: dict) -> go.Figure:
    """Per layer and head: mean look-back, normalised entropy, and the enrichment of the peak
    and of the rise and fall of the signal (weight on them over what uniform attention gives).

    Dashed lines mark uniform attention over each query's window. Values are drawn as points
    (not bars from zero), so small departures from uniform stay visible. ``statistics`` is
    :func:`microlens.evaluation.analysis.attention_statistics`; panels whose key it lacks stay
    empty.

    Returns
    -------
    go.Figure
        One trace per layer in each panel of :data:`STATISTIC_PANELS`.
    """
    fig = make_subplots(rows=len(STATISTIC_PANELS), cols=1, vertical_spacing=0.07,
                        shared_xaxes=True,
                        subplot_titles=[title for _, title, _ in STATISTIC_PANELS])
    for row, (key, _, reference) in enumerate(STATISTIC_PANELS, start=1):
        for entry in statistics["layers"]:
            layer = entry["layer"]
            x = ["mean of heads"] + [f"head {h['head']}" for h in entry["heads"]]
            y = [_lookup(e, key) for e in (entry, *entry["heads"])]
            fig.add_trace(go.Scatter(
                x=x, y=[np.nan if v is None else v for v in y], mode="markers+lines",
                name=f"layer {layer}", legendgroup=f"layer {layer}", showlegend=row == 1,
                marker={"size": 9, "color": SERIES_COLORS[layer % len(SERIES_COLORS)]},
                line={"width": 0.6}), row=row, col=1)
        ref = statistics.get(reference) if isinstance(reference, str) else reference
        if ref is not None:
            fig.add_hline(y=ref, line_dash="dash", line_color="black", row=row, col=1)
    fig.update_annotations(font_size=12)
    fig.update_layout(
        template=TEMPLATE, height=220 * len(STATISTIC_PANELS) + 120, margin={"t": 100},
        title={"text": f"Attention over {statistics['n_events']} test events "
                       f"({statistics['n_queries']} queries, window {statistics['window']})"
                       "<br>dashed: uniform attention over each query's window",
               "font": {"size": 14}},
        legend={"orientation": "h", "y": -0.06})
    return fig


__all__ = [
    "ATTENTION_COLORSCALE", "EVENT_TRACES", "MIN_RELATIVE_RANGE", "RELATIVE_COLORSCALE",
    "RELATIVE_TICKS", "RELATIVE_TITLE", "SERIES_COLORS", "STATISTIC_PANELS",
    "attention_event_figure", "attention_event_traces", "attention_gallery_figure",
    "attention_heatmap_figure", "attention_overview_figure", "attention_statistics_figure",
    "default_query", "heatmap_span", "received_range", "relative_color_half_range",
    "relative_weights",
    "view_name", "window_shape",
]  # fmt: skip
