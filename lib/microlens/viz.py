"""Plotly figure builders: pure functions from events, stores and lens parameters to figures.

Nothing here holds notebook state; the interactive explorers in :mod:`microlens.widgets` reuse
these builders. Units follow :mod:`microlens.simulate`: times in days, flux in baseline units,
``s`` and source positions in Einstein radii (centre-of-mass frame), ``alpha`` in radians.

:func:`save_figure` writes a self-describing HTML file always, and static images (PNG/PDF)
through kaleido when a Chromium browser is available.
"""

from __future__ import annotations

import html
import math
import os
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from .presets import CLASS_NAMES
from .simulate import caustics, model_flux
from .summaries import DETECTABILITY_THRESHOLD, dchi2_values, detectability_summary

CLASS_COLORS: dict[int, str] = {0: "#7f7f7f", 1: "#1f77b4", 2: "#d62728"}
"""One colour per class label (flat grey, PSPL blue, binary red)."""

MODEL_COLOR = "#111111"
TEMPLATE = "plotly_white"
MODEL_POINTS = 2000  # samples of the noise-free model line over the observed time span
STATIC_FORMATS = ("png", "pdf", "svg", "jpeg", "webp")
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class StaticExportWarning(UserWarning):
    """Static figure export (PNG/PDF through kaleido) was skipped or failed."""


# --------------------------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------------------------


def format_value(value) -> str:
    """Short human-readable number: integers as such, floats to 4 significant digits, NaN as '–'."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    try:
        value = float(value)
    except (TypeError, ValueError):
        return html.escape(str(value))
    if not math.isfinite(value):
        return "–"
    if value.is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.4g}"


def class_name(label: int) -> str:
    """``'flat'``, ``'pspl'`` or ``'binary'`` for labels 0, 1, 2."""
    return CLASS_NAMES[int(label)]


def event_title(event: dict) -> str:
    """Title: index, class and split, then the parameters that matter for the class (the binary
    lens parameters and the detectability on a second line, joined by ``<br>``)."""
    p, label = event["params"], int(event["label"])
    head = f"#{event['index']} {class_name(label)}"
    if event.get("split"):
        head += f" ({event['split']})"

    def join(keys):
        return ", ".join(f"{k}={format_value(p[k])}" for k in keys if k in p)

    lines = [head + (": " + join(("t_0", "u_0", "t_E", "f_s")) if label >= 1 else "")]
    if label == 1 and "dchi2_flat" in p:
        lines.append(f"Δχ²(flat)={format_value(p['dchi2_flat'])}")
    if label == 2:
        second = join(("s", "q", "alpha", "rho"))
        if "dchi2_pspl" in p:
            second += f", Δχ²(PSPL)={format_value(p['dchi2_pspl'])}"
        lines.append(second)
    return "<br>".join(lines)


def event_table_html(event: dict, columns: Sequence[str] | None = None) -> str:
    """The event's parameter-table row as a small two-row HTML table.

    Parameters
    ----------
    event : dict
        As returned by ``LightCurveStore.event``.
    columns : sequence of str, optional
        Parameter columns to show (default: all of them, in table order).
    """
    p = event["params"]
    columns = list(p) if columns is None else list(columns)
    head = ["event", "class", "split"] + columns
    row = [str(event["index"]), class_name(event["label"]), str(event.get("split", ""))]
    row += [format_value(p[c]) for c in columns]
    cell = "padding:2px 6px;border:1px solid #ddd;text-align:right"
    th = "".join(f'<th style="{cell}">{html.escape(h)}</th>' for h in head)
    td = "".join(f'<td style="{cell}">{html.escape(v)}</td>' for v in row)
    return (f'<table style="border-collapse:collapse;font-size:12px"><tr>{th}</tr>'
            f"<tr>{td}</tr></table>")


# --------------------------------------------------------------------------------------------
# Light curves
# --------------------------------------------------------------------------------------------


def model_curve(event: dict, n_points: int = MODEL_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free flux of an event on an even grid spanning its observations.

    Returns
    -------
    t, flux : ndarray
        ``n_points`` times [days] and the model flux [baseline units] there.
    """
    times = np.asarray(event["times"], dtype=np.float64)
    if times.size == 0:
        return np.empty(0), np.empty(0)
    t = np.linspace(times.min(), times.max(), int(n_points))
    return t, model_flux(event["params"], t)


def light_curve_traces(event: dict, model=None, *, marker_size: float = 4,
                       showlegend: bool = True) -> list[go.Scatter]:
    """Traces of one light curve: the data with error bars, then (optionally) the model line.

    Parameters
    ----------
    event : dict
        As returned by ``LightCurveStore.event`` (``times``, ``flux``, ``flux_err``, ``label``,
        ``params``).
    model : None, bool or array-like
        None/False: data only. True: add the noise-free model (:func:`model_curve`) on a dense
        grid. Array: add it as the model flux at the event's own times.
    """
    color = CLASS_COLORS[int(event["label"])]
    traces = [go.Scatter(
        x=np.asarray(event["times"]), y=np.asarray(event["flux"]), mode="markers",
        name="data", showlegend=showlegend,
        marker={"size": marker_size, "color": color},
        error_y={"type": "data", "array": np.asarray(event["flux_err"]), "visible": True,
                 "thickness": 0.8, "width": 0, "color": color},
    )]
    if model is None or model is False:
        return traces
    if model is True:
        t, flux = model_curve(event)
    else:
        t, flux = np.asarray(event["times"]), np.asarray(model, dtype=np.float64)
        if flux.shape != t.shape:
            raise ValueError(f"model has shape {flux.shape}, the event's times {t.shape}")
    traces.append(go.Scatter(x=t, y=flux, mode="lines", name="noise-free model",
                             showlegend=showlegend, line={"color": MODEL_COLOR, "width": 1.5}))
    return traces


def light_curve_figure(event: dict, model=None) -> go.Figure:
    """Flux with error bars against time, titled with the class and key parameters.

    Parameters
    ----------
    event : dict
        One event (``LightCurveStore.event``).
    model : None, bool or array-like
        Optional noise-free model line (see :func:`light_curve_traces`).

    Returns
    -------
    go.Figure
        One trace (data) or two (data, model).
    """
    fig = go.Figure(light_curve_traces(event, model))
    fig.update_layout(
        title={"text": event_title(event), "font": {"size": 13}}, template=TEMPLATE, height=440,
        margin={"t": 80},
        xaxis_title="time [days]", yaxis_title="flux [baseline units]",
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def pick_events(store, per_class: int = 3, seed: int = 0) -> dict[int, np.ndarray]:
    """Reproducible choice of up to ``per_class`` events of each class (sorted indices)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(store.labels)
    picked = {}
    for label in range(len(CLASS_NAMES)):
        idx = np.flatnonzero(labels == label)
        take = min(int(per_class), idx.size)
        picked[label] = np.sort(rng.choice(idx, size=take, replace=False)) if take else idx[:0]
    return picked


def _short_title(event: dict) -> str:
    p, label = event["params"], event["label"]
    text = f"#{event['index']}"
    if label >= 1:
        text += f" u₀={p['u_0']:.2f} t_E={p['t_E']:.0f}d"
    if label == 2:
        text += f" s={p['s']:.2f} q={p['q']:.1e}"
    return text


def gallery_figure(store, per_class: int = 3, seed: int = 0, model: bool = True) -> go.Figure:
    """A grid of light curves: one row per class, ``per_class`` events per row.

    Events are drawn with :func:`pick_events` (same ``seed``, same events).

    Returns
    -------
    go.Figure
        One data trace per shown event, plus one model trace each when ``model`` is True.
    """
    per_class = max(int(per_class), 1)
    picked = pick_events(store, per_class, seed)
    events = {(label, col): store.event(i)
              for label, idx in picked.items() for col, i in enumerate(idx)}
    titles = [_short_title(events[(r, c)]) if (r, c) in events else ""
              for r in range(len(CLASS_NAMES)) for c in range(per_class)]
    fig = make_subplots(rows=len(CLASS_NAMES), cols=per_class, subplot_titles=titles,
                        horizontal_spacing=0.06, vertical_spacing=0.1)
    for (label, col), event in events.items():
        for trace in light_curve_traces(event, model=model or None, marker_size=2.5,
                                        showlegend=False):
            fig.add_trace(trace, row=label + 1, col=col + 1)
    for label, name in enumerate(CLASS_NAMES):
        fig.update_yaxes(title_text=f"{name}<br>flux", row=label + 1, col=1)
    fig.update_xaxes(title_text="time [days]", row=len(CLASS_NAMES))
    fig.update_annotations(font_size=10)
    fig.update_layout(template=TEMPLATE, height=260 * len(CLASS_NAMES),
                      width=max(330 * per_class, 700), margin={"t": 70},
                      title=f"Light curves by class ({per_class} per class, seed {seed})")
    return fig


# --------------------------------------------------------------------------------------------
# Detectability
# --------------------------------------------------------------------------------------------


def _log_dchi2(store, label: int, column: str) -> np.ndarray:
    return np.log10(np.maximum(dchi2_values(store, label, column), 1.0))


def _percent(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{100 * fraction:.0f}%"


def detectability_figure(store, threshold: float = DETECTABILITY_THRESHOLD,
                         bins: int = 40) -> go.Figure:
    """Histograms of log10(max(Δχ², 1)): binaries against the best PSPL, PSPL against flat.

    A vertical line marks ``threshold``; the legend and title give the detectable fractions
    (:func:`microlens.summaries.detectability_summary`). A dataset generated without
    detectability gives empty histograms and a note.

    Returns
    -------
    go.Figure
        Two histogram traces (binary, PSPL).
    """
    summary = detectability_summary(store, threshold)
    binary = _log_dchi2(store, CLASS_NAMES.index("binary"), "dchi2_pspl")
    pspl = _log_dchi2(store, CLASS_NAMES.index("pspl"), "dchi2_flat")
    log_thr = math.log10(max(threshold, 1.0))
    top = max([log_thr, *(v.max() for v in (binary, pspl) if v.size)]) * 1.02 + 1e-9
    xbins = {"start": 0.0, "end": top, "size": top / max(int(bins), 1)}
    fig = go.Figure([
        go.Histogram(x=binary, xbins=xbins, name=(
            f"binary: Δχ²(PSPL) > {threshold:g} for "
            f"{_percent(summary['binary_detectable_fraction'])} of {summary['n_binary']}"),
            marker_color=CLASS_COLORS[2], opacity=0.65),
        go.Histogram(x=pspl, xbins=xbins, name=(
            f"PSPL: Δχ²(flat) > {threshold:g} for "
            f"{_percent(summary['pspl_detectable_fraction'])} of {summary['n_pspl']}"),
            marker_color=CLASS_COLORS[1], opacity=0.65),
    ])
    fig.add_vline(x=log_thr, line_dash="dash", line_color="black",
                  annotation_text=f"Δχ² = {threshold:g}", annotation_position="top right")
    title = (f"Detectability: {_percent(summary['binary_detectable_fraction'])} of binaries "
             f"distinguishable from a single lens (Δχ² > {threshold:g})")
    if not (binary.size or pspl.size):
        title = "Detectability was not computed for this dataset"
    fig.update_layout(title=title, barmode="overlay", template=TEMPLATE, height=420,
                      xaxis_title="log10(max(Δχ², 1))", yaxis_title="events",
                      legend={"orientation": "h", "y": -0.25})
    return fig


# --------------------------------------------------------------------------------------------
# Caustics
# --------------------------------------------------------------------------------------------


def lens_positions(s: float, q: float) -> np.ndarray:
    """Positions of the two lenses, ``(2, 2)``: mass ``1/(1+q)`` at ``-s q/(1+q)``, the other at
    ``s/(1+q)`` on the x-axis (centre-of-mass frame of :func:`microlens.simulate.caustics`)."""
    return np.array([[-s * q / (1.0 + q), 0.0], [s / (1.0 + q), 0.0]])


def caustic_topology(n_curves: int) -> str:
    """Caustic topology from the number of caustic curves: 1 resonant, 2 wide, 3 close."""
    return {1: "resonant", 2: "wide", 3: "close"}.get(int(n_curves), f"{n_curves} curves")


def join_curves(curves: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate ``(n, 2)`` curves into one x, y pair separated by NaN (one plotly trace);
    each curve is closed back on its first point."""
    xs, ys = [], []
    for curve in curves:
        curve = np.asarray(curve, dtype=np.float64)
        closed = np.vstack([curve, curve[:1]])
        xs += [closed[:, 0], [np.nan]]
        ys += [closed[:, 1], [np.nan]]
    if not xs:
        return np.empty(0), np.empty(0)
    return np.concatenate(xs[:-1]), np.concatenate(ys[:-1])


def split_curves(x: Sequence[float], y: Sequence[float]) -> list[np.ndarray]:
    """Inverse of :func:`join_curves`: the NaN-separated pieces as ``(n, 2)`` arrays."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    breaks = np.flatnonzero(np.isnan(x))
    pieces = zip(np.split(x, breaks), np.split(y, breaks), strict=True)
    return [np.column_stack([a, b])[np.isfinite(a)] for a, b in pieces if np.isfinite(a).any()]


def _as_trajectory(trajectory) -> np.ndarray:
    if isinstance(trajectory, (tuple, list)) and len(trajectory) == 2:
        return np.column_stack([np.asarray(trajectory[0]), np.asarray(trajectory[1])])
    arr = np.asarray(trajectory, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"trajectory must be (y1, y2) or an (n, 2) array, got shape {arr.shape}")
    return arr


def closest_approach(trajectory) -> np.ndarray:
    """The trajectory point nearest the centre of mass (where ``|u| = |u_0|``)."""
    traj = _as_trajectory(trajectory)
    return traj[np.argmin(np.einsum("ij,ij->i", traj, traj))]


def circle(center: Sequence[float], radius: float, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """x, y of a closed circle (e.g. the source disc of radius ``rho``)."""
    phi = np.linspace(0.0, 2.0 * np.pi, n)
    return center[0] + radius * np.cos(phi), center[1] + radius * np.sin(phi)


def caustic_view(curves: Sequence[np.ndarray], s: float, q: float, point=None,
                 margin: float = 0.25, min_half: float = 0.6) -> tuple[list, list]:
    """Square x and y ranges covering the caustics, the lenses and an optional point."""
    pts = [lens_positions(s, q)] + [np.asarray(c) for c in curves]
    if point is not None:
        pts.append(np.asarray(point, dtype=np.float64).reshape(1, 2))
    allp = np.vstack(pts)
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    center = (lo + hi) / 2.0
    half = max(float(np.max(hi - lo)) / 2.0 * (1.0 + margin), min_half)
    return ([center[0] - half, center[0] + half], [center[1] - half, center[1] + half])


def caustic_traces(s: float, q: float, trajectory=None, rho: float | None = None,
                   curves: Sequence[np.ndarray] | None = None) -> list[go.Scatter]:
    """Traces of the lens plane: caustics (one NaN-joined trace), lenses, then optionally the
    source trajectory (with an arrow at its end) and the source disc at closest approach."""
    curves = caustics(s, q) if curves is None else curves
    cx, cy = join_curves(curves)
    lenses = lens_positions(s, q)
    traces = [
        go.Scatter(x=cx, y=cy, mode="lines", name=f"caustics ({len(curves)})",
                   line={"color": CLASS_COLORS[2], "width": 1.5}),
        go.Scatter(x=lenses[:, 0], y=lenses[:, 1], mode="markers", name="lenses",
                   marker={"symbol": "x", "size": 9, "color": "black"},
                   text=["m₁ = 1/(1+q)", "m₂ = q/(1+q)"], hoverinfo="text+x+y"),
    ]
    if trajectory is not None:
        traj = _as_trajectory(trajectory)
        sizes = np.zeros(len(traj))
        if sizes.size:
            sizes[-1] = 12
        traces.append(go.Scatter(
            x=traj[:, 0], y=traj[:, 1], mode="lines+markers", name="source trajectory",
            line={"color": CLASS_COLORS[1], "width": 1.2},
            marker={"symbol": "arrow", "angleref": "previous", "size": sizes,
                    "color": CLASS_COLORS[1]}))
        if rho is not None and len(traj):
            x, y = circle(closest_approach(traj), rho)
            traces.append(go.Scatter(x=x, y=y, mode="lines", name="source (ρ)",
                                     line={"color": CLASS_COLORS[1], "width": 1}))
    return traces


def caustic_figure(s: float, q: float, trajectory=None, rho: float | None = None) -> go.Figure:
    """Caustics and lens positions of a binary lens, optionally with a source trajectory.

    Parameters
    ----------
    s : float
        Separation [Einstein radii of the total mass].
    q : float
        Mass ratio ``m2 / m1``.
    trajectory : (y1, y2) or (n, 2) array, optional
        Source positions [Einstein radii] in the same centre-of-mass frame, e.g. the ``y1, y2``
        returned by :func:`microlens.simulate.binary_light_curve`.
    rho : float, optional
        Source radius [Einstein radii]; draws the source disc at closest approach.

    Returns
    -------
    go.Figure
        Traces: caustics (all curves in one trace), lenses, then trajectory and source disc
        when given.
    """
    curves = caustics(s, q)
    traces = caustic_traces(s, q, trajectory, rho, curves=curves)
    point = closest_approach(trajectory) if trajectory is not None else None
    xr, yr = caustic_view(curves, s, q, point)
    fig = go.Figure(traces)
    fig.update_layout(
        title=f"s = {s:.3g}, q = {q:.3g}: {caustic_topology(len(curves))} caustic",
        template=TEMPLATE, height=480, width=520,
        xaxis={"title": "y₁ [θ_E]", "range": xr},
        yaxis={"title": "y₂ [θ_E]", "range": yr, "scaleanchor": "x", "scaleratio": 1},
    )
    return fig


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
        Rows of a run's ``history.csv`` (:func:`microlens.train.read_history`, or the rows
        passed to ``on_epoch``); may be empty (a live figure filled by
        :func:`add_history_rows`).

    Returns
    -------
    go.Figure
        Two panels (loss left, accuracy right); four traces in :data:`CURVE_SERIES` order.
        The loss is the weighted loss of :mod:`microlens.train` (every observation's
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
    resumed run, or ``microlens.ddp.launch`` re-reading ``history.csv``). Returns ``fig``.
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


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------

_warned_no_browser = False


def find_browser() -> str | None:
    """A Chromium-family browser for kaleido: ``$BROWSER_PATH`` if it exists, else the first
    of chromium, chromium-browser, google-chrome on ``PATH``; None when there is none."""
    env = os.environ.get("BROWSER_PATH")
    if env and Path(env).is_file():
        return env
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _target(base: Path, fmt: str) -> Path:
    return base.parent / f"{base.name}.{fmt}"


def _tmp(path: Path) -> Path:
    return path.parent / f".{path.stem}.{os.getpid()}.tmp{path.suffix}"


def save_figure(fig: go.Figure, path, formats: Sequence[str] = ("html", "png"), *,
                include_plotlyjs: bool | str = "directory", scale: float = 2.0) -> list[Path]:
    """Write a figure as HTML and, when a browser is available, as static images.

    Each file is written under a temporary name and renamed, so no reader sees half a file.
    HTML is always written (even if ``formats`` omits it). Static formats (png, pdf, svg, ...)
    go through kaleido, which needs Chromium (found by :func:`find_browser` and handed to
    kaleido through ``BROWSER_PATH`` when that is unset); without one they
    are skipped with a single :class:`StaticExportWarning` per process, and an export error
    is a warning too: saving never raises for a missing or broken browser.

    Parameters
    ----------
    fig : go.Figure
    path : path
        Target without suffix (``outputs/quick/gallery`` -> ``gallery.html``, ``gallery.png``);
        a trailing known suffix such as ``.html`` is dropped. Parent directories are created.
    formats : sequence of str
        Formats to write.
    include_plotlyjs : bool or str
        Passed to ``write_html``: ``'directory'`` (default: small files sharing one
        ``plotly.min.js`` copied beside them, viewable offline), ``'cdn'`` (load plotly.js from
        the web) or True (self-contained, ~5 MB each).
    scale : float
        Pixel scale of raster images.

    Returns
    -------
    list of Path
        The files written.
    """
    global _warned_no_browser
    base = Path(path)
    if base.suffix.lstrip(".").lower() in ("html", *STATIC_FORMATS):
        base = base.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    formats = [f.lower().lstrip(".") for f in formats]
    unknown = sorted(set(formats) - {"html", *STATIC_FORMATS})
    if unknown:
        raise ValueError(f"unknown figure format(s) {unknown}; valid: html, "
                         f"{', '.join(STATIC_FORMATS)}")
    written = []
    html_path = _target(base, "html")
    tmp = _tmp(html_path)
    try:
        fig.write_html(tmp, include_plotlyjs=include_plotlyjs, full_html=True)
        os.replace(tmp, html_path)
    finally:
        tmp.unlink(missing_ok=True)
    written.append(html_path)

    static = [f for f in dict.fromkeys(formats) if f != "html"]
    if not static:
        return written
    browser = find_browser()
    if browser is None:
        if not _warned_no_browser:
            _warned_no_browser = True
            warnings.warn(
                "no Chromium found (set BROWSER_PATH or install chromium): static figures "
                f"({', '.join(static)}) are skipped; HTML is still written",
                StaticExportWarning, stacklevel=2)
        return written
    os.environ.setdefault("BROWSER_PATH", browser)
    targets = [_target(base, f) for f in static]
    tmps = [_tmp(t) for t in targets]
    try:
        pio.write_images([fig] * len(static), tmps, format=static, scale=scale)
        for tmp_file, target in zip(tmps, targets, strict=True):
            os.replace(tmp_file, target)
            written.append(target)
    except Exception as exc:  # a broken browser must not lose the run
        warnings.warn(f"static export of {base.name} ({', '.join(static)}) failed: {exc}",
                      StaticExportWarning, stacklevel=2)
    finally:
        for tmp_file in tmps:
            tmp_file.unlink(missing_ok=True)
    return written
