"""Figures of simulated events: light curves, galleries, detectability, caustics.

Units follow :mod:`microlens.simulation.simulate`: times in days (since the data set's
``reference_epoch``, a full Julian date, or since the start of the ``thesis`` survey window when
it is 0), flux in baseline units, ``s`` and source positions in Einstein radii (centre-of-mass
frame), ``alpha_rad`` in radians.

Survey light curves are long (up to ~14,000 points over several seasons with yearly gaps): the
data are drawn as markers (never a line across a gap), the noise-free model line breaks at every
gap longer than :data:`GAP_DAYS`, and a trace of more than :data:`WEBGL_POINTS` points is drawn
with WebGL (``go.Scattergl``) where the caller allows it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from microlens.core.classes import CLASS_LABELS, CLASS_NAMES
from microlens.data.summaries import DETECTABILITY_THRESHOLD, dchi2_values, detectability_summary
from microlens.reports.style import (
    CLASS_COLORS,
    FLUX_TITLE,
    MODEL_COLOR,
    TEMPLATE,
    event_kind,
    event_title,
)
from microlens.simulation.simulate import caustics, model_flux
from microlens.simulation.variables import VARIABLE_KINDS

MODEL_POINTS = 2000  # samples of the noise-free model line over the observed time span
GAP_DAYS = 20.0  # the model line breaks across gaps between observations longer than this [d]
WEBGL_POINTS = 3000  # traces with more points than this are drawn with WebGL (go.Scattergl)


# --------------------------------------------------------------------------------------------
# Light curves
# --------------------------------------------------------------------------------------------


def time_title(reference_epoch: float = 0.0) -> str:
    """Axis title of times: ``'time [days since JD 2455260.0]'``, or ``'time [days]'`` when the
    reference epoch is 0 (the ``thesis`` survey's own time axis)."""
    epoch = float(reference_epoch or 0.0)
    return f"time [days since JD {epoch:.1f}]" if epoch else "time [days]"


def season_bounds(times, gap_days: float = GAP_DAYS) -> list[tuple[float, float]]:
    """``(first, last)`` time of each run of observations without a gap longer than
    ``gap_days`` (the observing seasons of a survey curve; one run for a thesis curve)."""
    t = np.sort(np.asarray(times, dtype=np.float64))
    t = t[np.isfinite(t)]
    if t.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(t) > gap_days)
    starts = np.r_[0, cuts + 1]
    stops = np.r_[cuts, t.size - 1]
    return [(float(t[a]), float(t[b])) for a, b in zip(starts, stops, strict=True)]


def _with_breaks(t: np.ndarray, flux: np.ndarray, gap_days: float):
    """NaN between observations (sorted ``t``) more than ``gap_days`` apart: a line breaks."""
    cuts = np.flatnonzero(np.diff(t) > gap_days) + 1
    if cuts.size == 0:
        return t, flux
    return np.insert(t, cuts, np.nan), np.insert(flux, cuts, np.nan)


def _model_times(event: dict, n_points: int, gap_days: float) -> np.ndarray:
    times = np.asarray(event["times"], dtype=np.float64)
    times = np.sort(times[np.isfinite(times)])
    p, label = event["params"], int(event["label"])
    kind = p.get("variable_kind", 0) if label == 0 else 0
    if label == 0 and np.isfinite(kind) and VARIABLE_KINDS[int(kind)] == "stochastic":
        return times  # a damped random walk is one realisation per set of times: the observed
    seasons = season_bounds(times, gap_days)
    total = sum(b - a for a, b in seasons) or 1.0
    grids = [np.linspace(a, b, max(int(round(n_points * (b - a) / total)), 2))
             for a, b in seasons]
    if label >= 1 and np.isfinite(p.get("t_0", np.nan)) and np.isfinite(p.get("t_E", np.nan)):
        # the peak at a resolution of its own, however long the whole curve is
        peak = np.linspace(p["t_0"] - 2 * p["t_E"], p["t_0"] + 2 * p["t_E"], n_points // 2)
        inside = np.zeros(peak.size, dtype=bool)
        for a, b in seasons:
            inside |= (peak >= a) & (peak <= b)
        grids.append(peak[inside])
    return np.unique(np.concatenate(grids)) if grids else times


def model_curve(event: dict, n_points: int = MODEL_POINTS,
                gap_days: float = GAP_DAYS) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free flux of an event on a grid over its observing seasons.

    About ``n_points`` times spread over the runs of observations (:func:`season_bounds`), plus
    ``n_points / 2`` over ``t_0 ± 2 t_E`` of a lensing event inside them; NaN separates the
    seasons, so the line breaks at every gap longer than ``gap_days`` instead of crossing it.
    A damped-random-walk variable star is evaluated at its observed times (its realisation
    depends on the times: :func:`microlens.simulation.variables.variable_flux`).

    Returns
    -------
    t, flux : ndarray
        Times [days] and the model flux [baseline units] there (both NaN at the breaks).
    """
    t = _model_times(event, int(n_points), gap_days)
    if t.size == 0:
        return np.empty(0), np.empty(0)
    flux = model_flux(event["params"], t)
    starts = np.array([a for a, _ in season_bounds(event["times"], gap_days)])
    season = np.searchsorted(starts, t, side="right")
    cuts = np.flatnonzero(np.diff(season) != 0) + 1  # where the next season begins
    return np.insert(t, cuts, np.nan), np.insert(flux, cuts, np.nan)


def _scatter_class(n_points: int, webgl: bool | None):
    use_gl = bool(webgl) if webgl is not None else n_points > WEBGL_POINTS
    return go.Scattergl if use_gl else go.Scatter


def light_curve_traces(event: dict, model=None, *, marker_size: float = 4,
                       showlegend: bool = True, webgl: bool | None = False) -> list:
    """Traces of one light curve: the data with error bars, then (optionally) the model line.

    Parameters
    ----------
    event : dict
        As returned by ``LightCurveStore.event`` (``times``, ``flux``, ``flux_err``, ``label``,
        ``params``).
    model : None, bool or array-like
        None/False: data only. True: add the noise-free model (:func:`model_curve`) on a dense
        grid. Array: add it as the model flux at the event's own times (the line breaks at
        gaps longer than :data:`GAP_DAYS`).
    webgl : bool or None
        False (default): ``go.Scatter``; True: ``go.Scattergl``; None: WebGL for a trace of
        more than :data:`WEBGL_POINTS` points (fast and readable for survey curves).
    """
    color = CLASS_COLORS[int(event["label"])]
    times = np.asarray(event["times"])
    data = _scatter_class(times.size, webgl)
    traces = [data(
        x=times, y=np.asarray(event["flux"]), mode="markers",
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
        order = np.argsort(t, kind="stable")
        t, flux = _with_breaks(t[order], flux[order], GAP_DAYS)
    line = _scatter_class(t.size, webgl)
    traces.append(line(x=t, y=flux, mode="lines", name="noise-free model",
                       showlegend=showlegend, line={"color": MODEL_COLOR, "width": 1.5},
                       connectgaps=False))
    return traces


def light_curve_figure(event: dict, model=None, *, reference_epoch: float = 0.0,
                       webgl: bool | None = None) -> go.Figure:
    """Flux with error bars against time, titled with the class and key parameters.

    Parameters
    ----------
    event : dict
        One event (``LightCurveStore.event``).
    model : None, bool or array-like
        Optional noise-free model line (see :func:`light_curve_traces`).
    reference_epoch : float
        Full Julian date of time 0 (``store.reference_epoch``), stated in the axis title.
    webgl : bool or None
        See :func:`light_curve_traces` (default: WebGL above :data:`WEBGL_POINTS` points).

    Returns
    -------
    go.Figure
        One trace (data) or two (data, model).
    """
    fig = go.Figure(light_curve_traces(event, model, webgl=webgl,
                                       marker_size=4 if len(event["times"]) <= WEBGL_POINTS
                                       else 3))
    fig.update_layout(
        title={"text": event_title(event), "font": {"size": 13}}, template=TEMPLATE, height=440,
        margin={"t": 80},
        xaxis_title=time_title(reference_epoch), yaxis_title=FLUX_TITLE,
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def _kinds(store, idx: np.ndarray) -> np.ndarray:
    """Variable-star kind codes of events ``idx`` (0 for all when the data set has none)."""
    params = store.params
    names = getattr(getattr(params, "dtype", None), "names", None) or ()
    if "variable_kind" not in names:
        return np.zeros(idx.size, dtype=np.int64)
    kinds = np.asarray(params["variable_kind"][idx], dtype=np.float64)
    return np.where(np.isfinite(kinds), kinds, 0).astype(np.int64)


def pick_events(store, per_class: int = 3, seed: int = 0) -> dict[int, np.ndarray]:
    """Reproducible choice of up to ``per_class`` events of each class (sorted indices).

    When the no-event class holds variable stars, its events are spread over the kinds present
    (:data:`microlens.simulation.variables.VARIABLE_KINDS`): a constant star first, then one
    variable star of each kind in a seeded random order, round after round, so the gallery shows
    both constant and variable stars (a single event is a variable star).
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(store.labels)
    picked = {}
    for label in range(len(CLASS_NAMES)):
        idx = np.flatnonzero(labels == label)
        take = min(int(per_class), idx.size)
        kinds = _kinds(store, idx) if label == 0 and take else None
        if kinds is not None and np.any(kinds != 0):
            picked[label] = _spread_over_kinds(rng, idx, kinds, take)
            continue
        picked[label] = np.sort(rng.choice(idx, size=take, replace=False)) if take else idx[:0]
    return picked


def _spread_over_kinds(rng, idx: np.ndarray, kinds: np.ndarray, take: int) -> np.ndarray:
    variable = [int(k) for k in np.unique(kinds) if k != 0]
    order = [variable[i] for i in rng.permutation(len(variable))]
    if np.any(kinds == 0):
        order = order[:1] + [0] + order[1:] if take == 1 else [0] + order
    pools = {k: list(rng.permutation(idx[kinds == k])) for k in order}
    chosen: list[int] = []
    while len(chosen) < take:
        for k in order:
            if pools[k] and len(chosen) < take:
                chosen.append(int(pools[k].pop()))
    return np.sort(np.asarray(chosen, dtype=idx.dtype))


def _wrap(text: str, width: int = 44) -> str:
    """Break a subplot title at ``', '`` into lines of about ``width`` characters."""
    lines, line = [], ""
    for part in text.split(", "):
        candidate = f"{line}, {part}" if line else part
        if line and len(candidate) > width:
            lines.append(line + ",")
            line = part
        else:
            line = candidate
    return "<br>".join([*lines, line])


def _short_title(event: dict) -> str:
    p, label = event["params"], event["label"]
    text = f"#{event['index']}"
    if label == 0:
        return _wrap(f"{text} {event_kind(event)}")
    if label >= 1:
        text += f" u₀={p['u_0']:.2f} t_E={p['t_E']:.0f}d"
    if label == 2:
        text += f" s={p['s']:.2f} q={p['q']:.1e}"
    return text


def gallery_figure(store, per_class: int = 3, seed: int = 0, model: bool = True) -> go.Figure:
    """A grid of light curves: one row per class, ``per_class`` events per row.

    Events are drawn with :func:`pick_events` (same ``seed``, same events; the no-event row
    spreads over constant and variable stars and its titles say which, e.g. ``no event:
    eclipsing binary (detached), P = 2.31 d, depth 0.80 mag``). Times are days since the data
    set's ``reference_epoch`` (in the x-axis title); curves of more than
    :data:`WEBGL_POINTS` points are drawn with WebGL.

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
                        horizontal_spacing=0.06, vertical_spacing=0.15)
    for (label, col), event in events.items():
        long = len(event["times"]) > WEBGL_POINTS
        for trace in light_curve_traces(event, model=model or None,
                                        marker_size=1.8 if long else 2.5,
                                        showlegend=False, webgl=None):
            fig.add_trace(trace, row=label + 1, col=col + 1)
    for label, name in enumerate(CLASS_LABELS):
        fig.update_yaxes(title_text=f"{name}<br>{FLUX_TITLE}", row=label + 1, col=1)
    fig.update_xaxes(title_text=time_title(getattr(store, "reference_epoch", 0.0)),
                     row=len(CLASS_NAMES))
    fig.update_annotations(font_size=10)
    fig.update_layout(template=TEMPLATE, height=300 * len(CLASS_NAMES),
                      width=max(360 * per_class, 700), margin={"t": 80},
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
                         bins: int = 40) -> go.Figure | None:
    """Histograms of log10(max(Δχ², 1)): binaries against the best PSPL, PSPL against flat.

    A vertical line marks ``threshold``; the legend and title give the detectable fractions
    (:func:`microlens.data.summaries.detectability_summary`).

    Returns
    -------
    go.Figure or None
        Two histogram traces (binary, PSPL); None when there is nothing to draw (a dataset
        generated without detectability has no Δχ² values), so callers skip the figure
        instead of saving an empty one.
    """
    summary = detectability_summary(store, threshold)
    binary = _log_dchi2(store, CLASS_NAMES.index("binary"), "dchi2_pspl")
    pspl = _log_dchi2(store, CLASS_NAMES.index("pspl"), "dchi2_flat")
    if not (binary.size or pspl.size):
        return None
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
    fig.update_layout(title=title, barmode="overlay", template=TEMPLATE, height=420,
                      xaxis_title="log10(max(Δχ², 1))", yaxis_title="events",
                      legend={"orientation": "h", "y": -0.25})
    return fig


# --------------------------------------------------------------------------------------------
# Caustics
# --------------------------------------------------------------------------------------------


def lens_positions(s: float, q: float) -> np.ndarray:
    """Positions of the two lenses, ``(2, 2)``: mass ``1/(1+q)`` at ``-s q/(1+q)``, the other at
    ``s/(1+q)`` on the x-axis (centre-of-mass frame of
    :func:`microlens.simulation.simulate.caustics`)."""
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
        returned by :func:`microlens.simulation.simulate.binary_light_curve`.
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
