"""Shared look of every figure: class colours, template, and text formatting of events."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np

from microlens.core.classes import CLASS_LABELS, CLASS_NAMES
from microlens.simulation.variables import describe_variable

CLASS_COLORS: dict[int, str] = {0: "#7f7f7f", 1: "#1f77b4", 2: "#d62728"}
"""One colour per class label (no event grey, PSPL blue, binary red)."""

MODEL_COLOR = "#111111"
FLUX_TITLE = "flux / baseline flux"
"""Axis title of light-curve fluxes: the simulator's flux is ``f_s * A + (1 - f_s)``, the
observed flux over the unmagnified (baseline) flux of source and blend, so 1 means no event."""
TEMPLATE = "plotly_white"


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
    """The class key, ``'no_event'``, ``'pspl'`` or ``'binary'``, of labels 0, 1, 2."""
    return CLASS_NAMES[int(label)]


def class_label(label) -> str:
    """The display name (:data:`~microlens.core.classes.CLASS_LABELS`) of a label (0, 1, 2) or of a
    class key (``'no_event'``, ...): ``'no event'``, ``'single lens (PSPL)'``, ``'binary
    lens'``. Anything else is returned as text unchanged."""
    if isinstance(label, str):
        return CLASS_LABELS[CLASS_NAMES.index(label)] if label in CLASS_NAMES else label
    return CLASS_LABELS[int(label)]


def star_kind(params) -> str:
    """What a no-event light curve is: ``'constant star'`` or the variable star's one-line
    description (:func:`microlens.simulation.variables.describe_variable`, e.g. ``'eclipsing binary
    (detached), P = 2.31 d, depth 0.80 mag'``). Parameter rows without the variable-star
    columns (data sets made before them) are constant stars."""
    try:
        kind = params["variable_kind"]
    except (KeyError, ValueError, IndexError):
        return "constant star"
    if not np.isfinite(float(kind)) or int(kind) == 0:
        return "constant star"
    return describe_variable(params)


def event_kind(event: dict) -> str:
    """The class of an event as a person reads it: ``'no event: constant star'``, ``'no event:
    eclipsing binary (detached), P = 2.31 d, depth 0.80 mag'``, ``'single lens (PSPL)'`` or
    ``'binary lens'``."""
    label = int(event["label"])
    if label == 0:
        return f"{class_label(0)}: {star_kind(event['params'])}"
    return class_label(label)


def event_title(event: dict) -> str:
    """Title: index, class and split, then the parameters that matter for the class (the binary
    lens parameters and the detectability on a second line, joined by ``<br>``)."""
    p, label = event["params"], int(event["label"])
    head = f"#{event['index']} {event_kind(event)}"
    if event.get("split"):
        head += f" ({event['split']})"

    def join(keys):
        return ", ".join(f"{k}={format_value(p[k])}" for k in keys if k in p)

    lines = [head + (": " + join(("t_0", "u_0", "t_E", "f_s")) if label >= 1 else "")]
    if label == 1 and "dchi2_flat" in p:
        lines.append(f"Δχ²(flat)={format_value(p['dchi2_flat'])}")
    if label == 2:
        second = join(("s", "q", "alpha_rad", "rho"))
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
    row = [str(event["index"]), event_kind(event), str(event.get("split", ""))]
    row += [format_value(p[c]) for c in columns]
    cell = "padding:2px 6px;border:1px solid #ddd;text-align:right"
    th = "".join(f'<th style="{cell}">{html.escape(h)}</th>' for h in head)
    td = "".join(f'<td style="{cell}">{html.escape(v)}</td>' for v in row)
    return (f'<table style="border-collapse:collapse;font-size:12px"><tr>{th}</tr>'
            f"<tr>{td}</tr></table>")


def error_bars(values, lows, highs) -> dict:
    """Plotly ``error_y`` for intervals ``[low, high]`` around ``values`` (None: no bar)."""
    def span(a, b):
        return [y - x if x is not None and y is not None else 0 for x, y in zip(a, b, strict=True)]

    return dict(type="data", array=span(values, highs), arrayminus=span(lows, values),
                visible=True, thickness=1)


def log_ticks(values) -> dict:
    """Tick settings of a log axis over ``values`` that never read like SI prefixes ('100μ').

    Two decades or more: one tick per decade written as a power of ten (10⁻⁴, plotly's
    ``exponentformat='power'``). Less: ticks at 1, 2 and 5 times powers of ten written as plain
    numbers (0.5, 1, 2), since plotly's own labels there read '4 5 6 7 8 9 1 2'.

    Parameters
    ----------
    values : array-like
        The positive values the axis must show (non-finite and non-positive ones are ignored).

    Returns
    -------
    dict
        Keyword arguments for ``fig.update_xaxes`` / ``update_yaxes`` (or an axis dict).
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values) & (values > 0)]
    power = {"exponentformat": "power", "showexponent": "all"}
    if values.size == 0:
        return power
    lo, hi = math.log10(values.min()), math.log10(values.max())
    if hi - lo >= 2.0:
        return {**power, "dtick": 1}
    ticks = [m * 10.0 ** k for k in range(math.floor(lo) - 1, math.ceil(hi) + 1)
             for m in (1, 2, 5)]
    # one step of margin each side: the drawn range reaches a little past the data
    inside = [t for t in ticks if lo - 0.35 <= math.log10(t) <= hi + 0.35]
    return {"tickmode": "array", "tickvals": inside,
            "ticktext": [f"{t:.6g}" for t in inside]}

