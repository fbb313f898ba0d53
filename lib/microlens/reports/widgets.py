"""Interactive explorers for JupyterLab: ipywidgets controls around plotly ``FigureWidget``\\ s.

The notebooks only display ``.widget``; all the logic is here and reachable without a browser
(tests call :meth:`MagnificationExplorer.update`, :meth:`EventBrowser.select` and
:meth:`AttentionBrowser.select` directly).
Units follow :mod:`microlens.simulation.simulate` (the explorer's ``alpha`` slider is in radians,
the parameter table's ``alpha_rad``, not MulensModel's ``alpha`` in degrees; ``s``, ``u_0``, ``rho``
in Einstein radii, ``t_E`` in days).

Example::

    from microlens.reports.widgets import AttentionBrowser, EventBrowser, MagnificationExplorer
    MagnificationExplorer().widget          # caustics and magnification
    EventBrowser(open_dataset("data/quick")).widget
    AttentionBrowser(load_model(run_dir), store).widget   # test events, attention by layer
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import ipywidgets as ipw
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from microlens import reports as viz
from microlens.core.classes import CLASS_LABELS, CLASS_NAMES
from microlens.simulation.simulate import (
    SPLIT_NAMES,
    binary_light_curve,
    caustics,
    pspl_magnification,
)

# slider name -> (kind, min, max, initial, step); log sliders take base-10 exponents for min/max
EXPLORER_SLIDERS: dict[str, tuple[str, float, float, float, float]] = {
    "s": ("log", -1.0, 1.0, 1.0, 0.01),  # separation [Einstein radii], 0.1 .. 10
    "q": ("log", -5.0, 0.0, 1e-2, 0.05),  # mass ratio m2/m1, 1e-5 .. 1
    "u_0": ("lin", 0.0, 1.5, 0.1, 0.005),  # impact parameter [Einstein radii]
    "alpha": ("lin", 0.0, 2.0 * math.pi, 0.6, 0.01),  # trajectory angle [rad]
    "rho": ("log", -4.0, -1.0, 1e-3, 0.05),  # source radius [Einstein radii]
    "t_E": ("log", 0.0, 2.5, 20.0, 0.02),  # Einstein time [days], 1 .. ~316
}


class MagnificationExplorer:
    """Binary-lens magnification and caustics under sliders for ``s, q, u_0, alpha, rho, t_E``.

    Left panel: magnification against ``tau = (t - t_0) / t_E`` on a dense grid (binary, finite
    source, from :func:`microlens.simulation.simulate.binary_light_curve`), the PSPL curve of the
    same ``u_0``, and the binary sampled at the survey's nominal spacing ``cadence_days``: since
    that spacing is in days, ``t_E`` sets how many observations cover the anomaly. Right panel: the
    caustics, lenses, source trajectory and the source disc at closest approach.

    Parameters
    ----------
    tau_max : float
        Half-width of the plotted window in Einstein times.
    n_points : int
        Samples of the dense curves.
    cadence_days : float
        Spacing of the survey samples [days] (default: 200 days / 1000 epochs).
    tol : float
        VBBinaryLensing accuracy.
    **initial
        Initial slider values (names of :data:`EXPLORER_SLIDERS`).

    Attributes
    ----------
    widget : ipywidgets.VBox
        What to display.
    fig : plotly.graph_objects.FigureWidget
        Traces in order: binary, PSPL, survey samples, caustics (NaN-separated curves in one
        trace), lenses, trajectory, source disc.
    sliders : dict of str to ipywidgets slider
    caustic_curves : list of ndarray
        The caustic curves currently drawn, each ``(n, 2)``.
    """

    TRACES = ("binary", "pspl", "survey", "caustics", "lenses", "trajectory", "source")

    def __init__(self, *, tau_max: float = 2.0, n_points: int = 2000, cadence_days: float = 0.2,
                 tol: float = 1e-3, **initial):
        self.tau_max = float(tau_max)
        self.n_points = int(n_points)
        self.cadence_days = float(cadence_days)
        self.tol = float(tol)
        self.sliders = {name: self._make_slider(name, *spec)
                        for name, spec in EXPLORER_SLIDERS.items()}
        self.caustic_curves: list[np.ndarray] = []
        self._syncing = False
        self.status = ipw.HTML()
        self.fig = self._empty_figure()
        self._set_sliders(initial)
        for name, slider in self.sliders.items():
            slider.observe(self._on_change(name), names="value")
        rows = [ipw.HBox([self.sliders[n] for n in ("s", "q", "rho")]),
                ipw.HBox([self.sliders[n] for n in ("u_0", "alpha", "t_E")])]
        self.widget = ipw.VBox([*rows, self.status, self.fig])
        self.redraw()

    @staticmethod
    def _make_slider(name, kind, low, high, value, step):
        common = {"description": name, "continuous_update": False,
                  "layout": ipw.Layout(width="330px")}
        if kind == "log":
            return ipw.FloatLogSlider(value=value, base=10, min=low, max=high, step=step,
                                      readout_format=".3g", **common)
        return ipw.FloatSlider(value=value, min=low, max=high, step=step, readout_format=".3f",
                               **common)

    def _empty_figure(self) -> go.FigureWidget:
        fig = make_subplots(rows=1, cols=2, column_widths=[0.56, 0.44], horizontal_spacing=0.1,
                            subplot_titles=("magnification", "lens plane"))
        blue, red = viz.CLASS_COLORS[1], viz.CLASS_COLORS[2]
        fig.add_trace(go.Scatter(mode="lines", name="binary", line={"color": red}), 1, 1)
        fig.add_trace(go.Scatter(mode="lines", name="PSPL, same u₀",
                                 line={"color": blue, "dash": "dash"}), 1, 1)
        fig.add_trace(go.Scatter(mode="markers", name="survey samples",
                                 marker={"color": "black", "size": 2.5},
                                 opacity=0.6), 1, 1)
        for trace in viz.caustic_traces(1.0, 0.5, trajectory=np.zeros((1, 2)), rho=0.01,
                                        curves=[]):
            fig.add_trace(trace, 1, 2)
        fig.update_xaxes(title_text="(t - t₀) / t_E", row=1, col=1)
        fig.update_yaxes(title_text="magnification", type="log", row=1, col=1)
        fig.update_xaxes(title_text="y₁ [θ_E]", row=1, col=2)
        fig.update_yaxes(title_text="y₂ [θ_E]", scaleanchor="x2", scaleratio=1, row=1, col=2)
        fig.update_layout(template=viz.TEMPLATE, height=480, margin={"t": 90},
                          legend={"orientation": "h", "y": -0.18})
        # Unnamed at construction; update() names them. Names in the initial widget state reach
        # the kernel but not JupyterLab's legend (plotly 7 anywidget front end), while names
        # that change in an update do.
        fig.update_traces(name=None)
        return go.FigureWidget(fig)

    @property
    def params(self) -> dict[str, float]:
        """Current slider values."""
        return {name: float(slider.value) for name, slider in self.sliders.items()}

    def _set_sliders(self, params: dict) -> None:
        unknown = sorted(set(params) - set(self.sliders))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown}; valid: {list(self.sliders)}")
        for name, value in params.items():
            slider, value = self.sliders[name], float(value)
            low, high = slider.min, slider.max
            if isinstance(slider, ipw.FloatLogSlider):
                low, high = slider.base**low, slider.base**high
            if not low <= value <= high * (1 + 1e-12):
                raise ValueError(f"{name}={value!r} is outside the slider range [{low:g}, "
                                 f"{high:g}]")
        with _quietly(self):
            for name, value in params.items():
                self.sliders[name].value = float(value)

    def _on_change(self, name):
        def observer(change):
            if not self._syncing:
                self.update(**{name: change["new"]})

        return observer

    def update(self, **params) -> None:
        """Set any of ``s, q, u_0, alpha, rho, t_E`` (sliders follow) and redraw.

        Raises
        ------
        ValueError
            For an unknown name or a value outside its slider's range.
        """
        self._set_sliders(params)
        self.redraw()

    def curves(self) -> dict[str, np.ndarray]:
        """Compute everything drawn for the current parameters (no figure involved).

        Returns
        -------
        dict
            ``tau``, ``binary``, ``pspl`` (dense), ``tau_survey``, ``survey``, ``y1``, ``y2``
            (trajectory on the dense grid) and ``caustics`` (list of ``(n, 2)`` arrays).
        """
        p = self.params
        tau = np.linspace(-self.tau_max, self.tau_max, self.n_points)
        binary, y1, y2 = binary_light_curve(tau * p["t_E"], 0.0, p["u_0"], p["t_E"], p["rho"],
                                            p["s"], p["q"], p["alpha"], tol=self.tol)
        n_survey = max(int(2 * self.tau_max * p["t_E"] / self.cadence_days) + 1, 2)
        tau_survey = np.linspace(-self.tau_max, self.tau_max, n_survey)
        survey = binary_light_curve(tau_survey * p["t_E"], 0.0, p["u_0"], p["t_E"], p["rho"],
                                    p["s"], p["q"], p["alpha"], tol=self.tol)[0]
        u_0 = max(p["u_0"], 1e-6)  # the PSPL magnification diverges at u = 0
        return {"tau": tau, "binary": binary, "pspl": pspl_magnification(tau, 0.0, u_0, 1.0),
                "tau_survey": tau_survey, "survey": survey, "y1": y1, "y2": y2,
                "caustics": caustics(p["s"], p["q"])}

    def redraw(self) -> None:
        """Recompute the curves and update the figure in one batch."""
        p, c = self.params, self.curves()
        self.caustic_curves = c["caustics"]
        traj = np.column_stack([c["y1"], c["y2"]])
        xr, yr = viz.caustic_view(c["caustics"], p["s"], p["q"], viz.closest_approach(traj))
        topology = viz.caustic_topology(len(c["caustics"]))
        magnification = [
            go.Scatter(x=c["tau"], y=c["binary"], name="binary"),
            go.Scatter(x=c["tau"], y=c["pspl"], name="PSPL, same u₀"),
            go.Scatter(x=c["tau_survey"], y=c["survey"],
                       name=f"survey samples (every {self.cadence_days:g} d)"),
        ]
        lens_plane = viz.caustic_traces(p["s"], p["q"], traj, p["rho"], curves=c["caustics"])
        with self.fig.batch_update():
            _copy_traces(self.fig.data, magnification + lens_plane)
            self.fig.layout.xaxis2.range = xr
            self.fig.layout.yaxis2.range = yr
            self.fig.layout.title.text = (
                f"s={p['s']:.3g}, q={p['q']:.3g}: {topology} caustic · u₀={p['u_0']:.3g}, "
                f"α={p['alpha']:.2f} rad, ρ={p['rho']:.2g}, t_E={p['t_E']:.3g} d")
        self.status.value = (
            f"<small>peak magnification {np.max(c['binary']):.3g} (binary) vs "
            f"{np.max(c['pspl']):.3g} (PSPL); {len(c['tau_survey'])} survey samples in "
            f"±{self.tau_max:g} t_E</small>")


class EventBrowser:
    """Browse the events of a dataset by class and split, with the noise-free model.

    Parameters
    ----------
    store : LightCurveStore
        An opened dataset (:func:`microlens.open_dataset`).
    label : int or str
        Initial class: 0, 1, 2, a key (``'no_event'``, ``'pspl'``, ``'binary'``) or a display
        name (``'no event'``, ``'single lens (PSPL)'``, ``'binary lens'``).
    split : str
        Initial split: ``'all'``, ``'train'``, ``'val'`` or ``'test'``.

    The title says what the event is; a no-event curve says which star it is (``no event:
    constant star``, ``no event: eclipsing binary (detached), P = 2.31 d, depth 0.80 mag``),
    also in the line beside the slider. Times are days since the data set's
    ``reference_epoch`` (stated in the x-axis title); long survey curves are drawn with WebGL.

    Attributes
    ----------
    widget : ipywidgets.VBox
        What to display.
    fig : plotly.graph_objects.FigureWidget
        Two traces: the data (with error bars) and the noise-free model (``go.Scatter``, or
        ``go.Scattergl`` for curves of more than :data:`microlens.reports.events.WEBGL_POINTS`
        points).
    table : ipywidgets.HTML
        The event's parameter-table row.
    event : dict or None
        The event shown (``LightCurveStore.event``), None when the selection is empty.
    """

    SPLITS = ("all", *SPLIT_NAMES)

    def __init__(self, store, *, label: int | str = "binary", split: str = "all"):
        self.store = store
        self.event: dict | None = None
        self._syncing = False
        self.class_dropdown = ipw.Dropdown(
            options=[(name, i) for i, name in enumerate(CLASS_LABELS)],
            value=self._label_code(label), description="class")
        self.split_dropdown = ipw.Dropdown(options=list(self.SPLITS), value=self._split(split),
                                           description="split")
        self.slider = ipw.IntSlider(min=0, max=0, value=0, description="event",
                                    continuous_update=False, layout=ipw.Layout(width="420px"))
        self.info = ipw.HTML()
        self.table = ipw.HTML()
        self.fig = go.FigureWidget(self._blank_figure())
        self.class_dropdown.observe(self._on_selection, names="value")
        self.split_dropdown.observe(self._on_selection, names="value")
        self.slider.observe(self._on_slider, names="value")
        self.widget = ipw.VBox([
            ipw.HBox([self.class_dropdown, self.split_dropdown]),
            ipw.HBox([self.slider, self.info]), self.fig, self.table])
        self._refresh_selection()
        self.show()

    @staticmethod
    def _label_code(label: int | str) -> int:
        if isinstance(label, str):
            if label in CLASS_LABELS:
                return CLASS_LABELS.index(label)
            if label not in CLASS_NAMES:
                raise ValueError(f"unknown class {label!r}; valid: {', '.join(CLASS_NAMES)} "
                                 f"(or {', '.join(repr(n) for n in CLASS_LABELS)})")
            return CLASS_NAMES.index(label)
        code = int(label)
        if not 0 <= code < len(CLASS_NAMES):
            raise ValueError(f"unknown class label {label!r}; valid: 0, 1, 2")
        return code

    def _split(self, split: str | None) -> str:
        split = "all" if split is None else split
        if split not in self.SPLITS:
            raise ValueError(f"unknown split {split!r}; valid: {', '.join(self.SPLITS)}")
        return split

    def _blank_figure(self) -> go.Figure:
        fig = go.Figure([go.Scatter(mode="markers"), go.Scatter(mode="lines")])  # named by show()
        fig.update_layout(template=viz.TEMPLATE, height=440, margin={"t": 80},
                          xaxis_title=viz.time_title(self.reference_epoch),
                          yaxis_title=viz.FLUX_TITLE, legend={"orientation": "h", "y": -0.2})
        return fig

    @property
    def reference_epoch(self) -> float:
        """Full Julian date of time 0 of the data set's times (0 for the ``thesis`` survey)."""
        return float(getattr(self.store, "reference_epoch", 0.0) or 0.0)

    @property
    def selection(self) -> np.ndarray:
        """Store indices of the events of the chosen class and split, in store order."""
        split = self.split_dropdown.value
        idx = self.store.indices(None if split == "all" else split)
        return idx[np.asarray(self.store.labels)[idx] == self.class_dropdown.value]

    def _refresh_selection(self) -> None:
        n = len(self.selection)
        with _quietly(self):
            self.slider.max = max(n - 1, 0)
            self.slider.value = 0
            self.slider.disabled = n == 0

    def _on_selection(self, change) -> None:
        if not self._syncing:
            self._refresh_selection()
            self.show()

    def _on_slider(self, change) -> None:
        if not self._syncing:
            self.show()

    def select(self, label: int | str, position: int = 0, split: str | None = None) -> dict:
        """Show the ``position``-th event of class ``label`` (in ``split``; default: keep).

        Returns
        -------
        dict
            The event shown.

        Raises
        ------
        IndexError
            If the selection has no event at ``position``.
        """
        code = self._label_code(label)
        split = self.split_dropdown.value if split is None else self._split(split)
        with _quietly(self):
            self.class_dropdown.value = code
            self.split_dropdown.value = split
        n = len(self.selection)
        if not 0 <= int(position) < n:
            raise IndexError(f"position {position} out of range: {n} {CLASS_LABELS[code]} "
                             f"event(s) in split {split!r}")
        self._refresh_selection()
        with _quietly(self):
            self.slider.value = int(position)
        self.show()
        return self.event

    def show(self) -> None:
        """Draw the event at the slider's position (or an empty plot for an empty selection)."""
        selection = self.selection
        name, split = CLASS_LABELS[self.class_dropdown.value], self.split_dropdown.value
        if len(selection) == 0:
            self.event = None
            with self.fig.batch_update():
                for trace in self.fig.data:
                    trace.x, trace.y = [], []
                self.fig.layout.title.text = f"no {name} events in split {split!r}"
            self.info.value = "0 events"
            self.table.value = ""
            return
        position = min(int(self.slider.value), len(selection) - 1)
        self.event = self.store.event(int(selection[position]))
        new = viz.light_curve_figure(self.event, model=True, reference_epoch=self.reference_epoch)
        if [t.type for t in self.fig.data] != [t.type for t in new.data]:
            # a long survey curve switches to WebGL (or back): new traces of the new type
            self.fig.data = ()
            self.fig.add_traces(new.data)
        with self.fig.batch_update():
            _copy_traces(self.fig.data, new.data)
            self.fig.layout.title = new.layout.title
            self.fig.layout.xaxis.title = new.layout.xaxis.title
        self.info.value = (f"event #{self.event['index']} ({position + 1} of {len(selection)} "
                           f"{name} in {split}, {len(self.event['times'])} observations): "
                           f"{viz.event_kind(self.event)}")
        self.table.value = viz.event_table_html(self.event)


class AttentionBrowser:
    """Browse test events with the model's probabilities and attention, layer by layer.

    Controls: class, event (test events of that class), layer, head (or the mean of the
    heads) and the query observation whose attention window is drawn. The top figure is
    :func:`microlens.reports.attention.attention_event_figure` (light curve with the query's window,
    calibrated class probabilities after every observation, attention received relative to
    uniform); the bottom one is the query-by-key matrix around the query
    (:func:`microlens.reports.attention.attention_heatmap_figure`). Attention is computed per event
    on first view (:func:`microlens.evaluation.analysis.attention_maps`) and kept.

    Parameters
    ----------
    model : MicrolensTransformer
        A model with attention maps (kind ``transformer``); another kind raises ValueError
        saying why (:func:`microlens.evaluation.analysis.no_attention_reason`).
    store : LightCurveStore
    rows : sequence of int, optional
        Test events to browse (default: the whole test split); others raise
        :class:`microlens.models.holdout.SplitError`.
    label : int or str
        Initial class.
    heatmap_obs : int
        Observations shown along each axis of the matrix.
    maps : sequence of EventAttention, optional
        Attention already computed (e.g. by :func:`microlens.evaluation.analysis.attention_maps` in
        the notebook), reused instead of running the model again for those events.

    Attributes
    ----------
    widget : ipywidgets.VBox
        What to display.
    fig : plotly.graph_objects.FigureWidget
        Traces in the order of :data:`microlens.reports.attention.EVENT_TRACES`.
    heatmap : plotly.graph_objects.FigureWidget
        One heatmap trace.
    attention : EventAttention or None
        The event shown (None when the chosen class has no event).
    """

    def __init__(self, model, store, rows=None, *, label: int | str = "binary",
                 heatmap_obs: int = 160, maps=()):
        from microlens.evaluation.analysis import no_attention_reason
        from microlens.models.holdout import require_test_split, select_test_events

        reason = no_attention_reason(model)
        if reason is not None:
            raise ValueError(f"AttentionBrowser: {reason}")
        self.model, self.store = model, store
        self.rows = select_test_events(store) if rows is None else require_test_split(store, rows)
        if self.rows.size == 0:
            raise ValueError("no test events to browse")
        self._cache: dict[int, object] = {m.row: m for m in maps}
        self.heatmap_obs = int(heatmap_obs)
        self.attention = None
        self._layout_event = None
        self._syncing = False
        config = model.config
        self.class_dropdown = ipw.Dropdown(
            options=[(name, i) for i, name in enumerate(CLASS_LABELS)],
            value=EventBrowser._label_code(label), description="class")
        self.event_dropdown = ipw.Dropdown(description="event", layout=ipw.Layout(width="260px"))
        self.layer_dropdown = ipw.Dropdown(options=list(range(config.n_layers)), value=0,
                                           description="layer", layout=ipw.Layout(width="160px"))
        self.head_dropdown = ipw.Dropdown(
            options=[("mean", None)] + [(str(h), h) for h in range(config.n_heads)], value=None,
            description="head", layout=ipw.Layout(width="160px"))
        self.query_slider = ipw.IntSlider(min=0, max=0, value=0, description="query",
                                          continuous_update=False,
                                          layout=ipw.Layout(width="520px"))
        self.info = ipw.HTML()
        self.fig = go.FigureWidget(self._blank_event_figure())
        self.heatmap = go.FigureWidget(go.Figure(go.Heatmap()))
        self.class_dropdown.observe(self._on_class, names="value")
        self.event_dropdown.observe(self._on_event, names="value")
        for control in (self.layer_dropdown, self.head_dropdown, self.query_slider):
            control.observe(self._on_view, names="value")
        self.widget = ipw.VBox([
            ipw.HBox([self.class_dropdown, self.event_dropdown]),
            ipw.HBox([self.layer_dropdown, self.head_dropdown, self.query_slider]),
            self.info, self.fig, self.heatmap])
        self._refresh_events()
        self.show()

    @staticmethod
    def _blank_event_figure() -> go.Figure:
        # The subplots and seven unnamed traces; draw() brings names, data and layout from
        # viz.attention (unnamed at construction: see MagnificationExplorer._empty_figure).
        fig = make_subplots(rows=3, cols=1, shared_xaxes=True, row_heights=[0.5, 0.25, 0.25],
                            vertical_spacing=0.05)
        for row in (1, 1, 1, 2, 2, 2, 3):
            fig.add_trace(go.Scatter(), row=row, col=1)
        fig.update_layout(template=viz.TEMPLATE, height=720)
        return fig

    @property
    def selection(self) -> np.ndarray:
        """The browsed test rows of the chosen class, in store order."""
        labels = np.asarray(self.store.labels[self.rows])
        return self.rows[labels == self.class_dropdown.value]

    def _refresh_events(self) -> None:
        selection = self.selection
        with _quietly(self):
            self.event_dropdown.options = [(f"#{r}", int(r)) for r in selection]
            self.event_dropdown.value = int(selection[0]) if selection.size else None
            self.event_dropdown.disabled = selection.size == 0

    def _on_class(self, change) -> None:
        if not self._syncing:
            self._refresh_events()
            self.show()

    def _on_event(self, change) -> None:
        if not self._syncing:
            self.show()

    def _on_view(self, change) -> None:
        if not self._syncing:
            self.draw()

    def event_attention(self, row: int):
        """The :class:`~microlens.evaluation.analysis.EventAttention` of one browsed row (computed
        once)."""
        from microlens.evaluation.analysis import attention_maps

        row = int(row)
        if row not in self._cache:
            self._cache[row] = attention_maps(self.model, self.store, [row])[0]
        return self._cache[row]

    def select(self, row: int | None = None, *, label: int | str | None = None,
               position: int = 0):
        """Show event ``row``, or the ``position``-th browsed event of class ``label``.

        Returns
        -------
        EventAttention
            The event shown.

        Raises
        ------
        ValueError
            If ``row`` is not among the browsed test events.
        IndexError
            If the class has no event at ``position``.
        """
        if row is not None:
            row = int(row)
            if not np.isin(row, self.rows):
                raise ValueError(f"event {row} is not among the browsed test events")
            code = int(self.store.labels[row])
        else:
            code = self.class_dropdown.value if label is None else EventBrowser._label_code(
                label)
        with _quietly(self):
            self.class_dropdown.value = code
        self._refresh_events()
        selection = self.selection
        if row is None:
            if not 0 <= int(position) < selection.size:
                raise IndexError(f"position {position} out of range: {selection.size} "
                                 f"{CLASS_LABELS[code]} event(s) browsed")
            row = int(selection[int(position)])
        with _quietly(self):
            self.event_dropdown.value = row
        self.show()
        return self.attention

    def set_view(self, *, layer: int | None = None, head: int | None | str = "keep",
                 query: int | None = None) -> None:
        """Change the layer, the head (an int, or None for the mean of the heads) and/or the
        query observation, then redraw.

        Raises
        ------
        ValueError
            For a layer, head or query outside the valid range (named in the message).
        """
        if layer is not None and layer not in self.layer_dropdown.options:
            raise ValueError(f"layer {layer!r} out of range; valid: "
                             f"0..{self.model.config.n_layers - 1}")
        heads = [value for _, value in self.head_dropdown.options]
        if head != "keep" and head not in heads:
            raise ValueError(f"head {head!r} out of range; valid: None (mean) or "
                             f"0..{self.model.config.n_heads - 1}")
        if query is not None and not self.query_slider.min <= int(query) <= self.query_slider.max:
            raise ValueError(f"query {query} out of range; valid: {self.query_slider.min}.."
                             f"{self.query_slider.max}")
        with _quietly(self):
            if layer is not None:
                self.layer_dropdown.value = layer
            if head != "keep":
                self.head_dropdown.value = head
            if query is not None:
                self.query_slider.value = int(query)
        self.draw()

    def show(self) -> None:
        """Load the chosen event, put the query at its brightest observation, and draw."""
        from microlens.reports.attention import default_query

        row = self.event_dropdown.value
        if row is None:
            self.attention = None
            with self.fig.batch_update():
                for trace in self.fig.data:
                    trace.x, trace.y = [], []
                self.fig.layout.title.text = (f"no {CLASS_LABELS[self.class_dropdown.value]} "
                                              "events among the browsed test events")
                self.fig.layout.shapes = []
            self.heatmap.data[0].z = None
            self.info.value = "0 events"
            return
        self.attention = self.event_attention(row)
        with _quietly(self):
            self.query_slider.max = self.attention.n_obs - 1
            self.query_slider.value = default_query(self.attention)
        self.draw()

    def draw(self) -> None:
        """Redraw both figures for the current event, layer, head and query."""
        from microlens.reports.attention import (
            attention_event_figure,
            attention_heatmap_figure,
            heatmap_span,
        )

        att = self.attention
        if att is None:
            return
        layer, head = self.layer_dropdown.value, self.head_dropdown.value
        query = min(int(self.query_slider.value), att.n_obs - 1)
        new = attention_event_figure(att, layer, head, query)
        span = heatmap_span(att, self.heatmap_obs, query)
        matrix = attention_heatmap_figure(att, layer, head, span=span)
        with self.fig.batch_update():
            _copy_traces(self.fig.data, new.data)
            if self._layout_event != att.row:  # the whole layout once per event (slow) ...
                self.fig.layout.update(new.layout)
                self._layout_event = att.row
            self.fig.layout.title = new.layout.title  # ... then what a view changes
            self.fig.layout.shapes = new.layout.shapes
        # Blank cells as None, not NaN: widget messages are strict JSON (NaN is refused).
        z = np.asarray(matrix.data[0].z, dtype=np.float64)
        matrix.data[0].z = np.where(np.isnan(z), None, z).tolist()
        with self.heatmap.batch_update():
            _copy_traces(self.heatmap.data, matrix.data)
            self.heatmap.layout = matrix.layout
        final = att.probabilities[-1]
        predicted = int(np.argmax(final))
        self.info.value = (
            f"event #{att.row} ({viz.event_kind(att.event)}, {att.n_obs} observations): final "
            f"prediction {CLASS_LABELS[predicted]} ({final[predicted]:.2f}); query {query} at "
            f"t = {att.times[query]:.2f} d sees observations {max(0, query - att.window + 1)}"
            f"..{query}")


@contextmanager
def _quietly(explorer):
    """Change an explorer's controls without their observers redrawing (``_syncing`` set)."""
    explorer._syncing = True
    try:
        yield
    finally:
        explorer._syncing = False


def _copy_traces(targets, sources) -> None:
    """Copy every property of freshly built traces onto a FigureWidget's traces, in order.

    Figures are built once by :mod:`microlens.reports`; the widgets only move the result into their
    live traces (names included: see ``MagnificationExplorer._empty_figure``).
    """
    for target, source in zip(targets, sources, strict=True):
        props = source.to_plotly_json()
        props.pop("type", None)
        target.update(props)


class ParameterReplay:
    """Replay one light curve observation by observation with a model's parameter heads.

    A slider over the observations seen, ``k`` = 1 .. N. At ``k`` the figure
    (:func:`microlens.reports.parameters.parameter_replay_figure`) shows the data up to ``k``
    (the rest greyed), the point-lens curve of the heads' median parameters after observation
    ``k`` over the whole time range (``t_E = 10 ** log10_t_E``, ``u_0 = 10 ** log10_u_0``,
    ``f_s``), its 68 % band, the true curve when ``truth`` is given, and the class
    probabilities up to ``k``.

    The band is the envelope of every point lens whose four parameters lie inside the heads'
    16 %-84 % quantiles (:func:`microlens.reports.parameters.point_lens_band`), computed
    exactly from the monotone dependence of the flux on each parameter rather than from a few
    sampled curves. The heads predict marginal quantiles only, with no joint distribution, so
    this box envelope is the honest statement of what the intervals allow: wider than a joint
    68 % band would be, never narrower.

    Every prediction is computed once, on the whole curve
    (:meth:`~microlens.models.base.CausalClassifier.predict_parameters` and
    :meth:`~microlens.models.base.CausalClassifier.predict_proba`): the models are causal, so
    the answer after observation ``k`` used observations 1 .. k only, as a stream would have.

    Parameters
    ----------
    model : CausalClassifier
        A neural model built with ``ModelConfig(parameter_heads=True)``.
    times, flux, flux_err : array-like ``(N,)``
        One light curve (flux in baseline units, times in days).
    truth : mapping, optional
        The event's ``t_0``, ``t_E``, ``u_0``, ``f_s`` (e.g. a data set's parameter row).
    reference_epoch : float
        Full Julian date of time 0 (for the axis title).
    k : int, optional
        Initial observations seen (default: all).

    Attributes
    ----------
    quantiles : ndarray ``(N, P, Q)``
        The heads' quantiles after every observation (``t_0`` in the curve's time frame).
    probabilities : ndarray ``(N, C)``
        The calibrated class probabilities after every observation.
    slider : ipywidgets.IntSlider
    fig : plotly.graph_objects.FigureWidget
    widget : ipywidgets.VBox
        What to display.
    """

    def __init__(self, model, times, flux, flux_err, *, truth=None,
                 reference_epoch: float = 0.0, k: int | None = None):
        self.times = np.asarray(times, dtype=np.float64)
        self.flux = np.asarray(flux, dtype=np.float64)
        self.flux_err = np.asarray(flux_err, dtype=np.float64)
        if not self.times.ndim == 1 or not self.times.size:
            raise ValueError(f"times must be one non-empty curve (N,), got shape "
                             f"{self.times.shape}")
        self.truth = truth
        self.reference_epoch = float(reference_epoch or 0.0)
        batch = (self.times[None], self.flux[None], self.flux_err[None])
        self.quantiles = model.predict_parameters(*batch)[0].cpu().numpy()
        self.probabilities = model.predict_proba(*batch)[0].cpu().numpy()
        n = self.times.size
        k = n if k is None else int(k)
        self.slider = ipw.IntSlider(min=1, max=n, value=min(max(k, 1), n),
                                    description="observations", continuous_update=False,
                                    layout=ipw.Layout(width="520px"))
        self.fig = go.FigureWidget(self.figure_at(self.slider.value))
        self.slider.observe(self._on_slider, names="value")
        self.widget = ipw.VBox([self.slider, self.fig])

    @classmethod
    def for_event(cls, model, store, row: int | None = None, **kwargs) -> ParameterReplay:
        """The replay of one event of a data set, its parameters as the truth.

        Parameters
        ----------
        model : CausalClassifier
            A neural model with parameter heads.
        store : LightCurveStore
            An opened data set.
        row : int, optional
            The event's row (default: :func:`replay_row`'s choice among the test events).
        **kwargs
            Passed on (``k``).
        """
        row = replay_row(store) if row is None else int(row)
        event = store.event(row)
        return cls(model, event["times"], event["flux"], event["flux_err"],
                   truth=event["params"] if event["label"] in (1, 2) else None,
                   reference_epoch=float(getattr(store, "reference_epoch", 0.0) or 0.0),
                   **kwargs)

    @property
    def n_observations(self) -> int:
        """Observations of the curve (the slider's maximum)."""
        return int(self.times.size)

    def figure_at(self, k: int) -> go.Figure:
        """The figure after ``k`` observations (1 .. N); nothing live changes."""
        from microlens.reports.parameters import parameter_replay_figure

        return parameter_replay_figure(self.times, self.flux, self.flux_err, self.quantiles,
                                       self.probabilities, k, truth=self.truth,
                                       reference_epoch=self.reference_epoch)

    def show(self, k: int) -> go.Figure:
        """Move the live figure to ``k`` observations (what the slider calls); returns the
        figure drawn."""
        new = self.figure_at(k)
        with self.fig.batch_update():
            _copy_traces(self.fig.data, new.data)
            self.fig.layout.title = new.layout.title
            self.fig.layout.shapes = new.layout.shapes
            self.fig.layout.yaxis.range = new.layout.yaxis.range
        return new

    def _on_slider(self, change) -> None:
        self.show(int(change["new"]))


def parameter_replay_widget(model, times, flux, flux_err, *, truth=None,
                            reference_epoch: float = 0.0) -> ipw.VBox:
    """A slider over one curve's observations with the heads' point lens at each
    (:class:`ParameterReplay`; its ``.widget``).

    Parameters
    ----------
    model : CausalClassifier
        A neural model with parameter heads.
    times, flux, flux_err : array-like ``(N,)``
        One light curve (flux in baseline units).
    truth : mapping, optional
        The true ``t_0``, ``t_E``, ``u_0``, ``f_s``, drawn dashed.
    reference_epoch : float
        Full Julian date of time 0 (for the axis title).

    Returns
    -------
    ipywidgets.VBox
        What to display.
    """
    return ParameterReplay(model, times, flux, flux_err, truth=truth,
                           reference_epoch=reference_epoch).widget


def replay_row(store, split: str = "test") -> int:
    """A telling event to replay: of ``split``'s single-lens events whose peak ``t_0`` lies
    inside their observations, the one with the smallest ``|u_0|`` (the highest peak); else the
    first lensing event of the split, else its first event.

    Raises
    ------
    ValueError
        When ``split`` holds no event.
    """
    rows = np.asarray(store.indices(split))
    if rows.size == 0:
        raise ValueError(f"the data set has no {split!r} events")
    labels = np.asarray(store.labels)[rows]
    params = np.asarray(store.params[rows])
    times = store.observations["times"]
    first = np.asarray(times[store.offsets[rows]], dtype=np.float64)
    last = np.asarray(times[store.offsets[rows + 1] - 1], dtype=np.float64)
    t_0 = np.asarray(params["t_0"], dtype=np.float64)
    inside = (labels == 1) & (t_0 >= first) & (t_0 <= last) & (store.lengths[rows] > 0)
    if inside.any():
        u_0 = np.where(inside, np.abs(np.asarray(params["u_0"], dtype=np.float64)), np.inf)
        return int(rows[int(np.argmin(u_0))])
    lensing = np.flatnonzero(np.isin(labels, (1, 2)))
    return int(rows[lensing[0]] if lensing.size else rows[0])
