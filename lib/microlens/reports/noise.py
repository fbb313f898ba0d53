"""The sky's noise beside the simulator's: residual statistics of curves without an event by
magnitude (:mod:`microlens.reports.noise_statistics`), drawn from its saved comparison alone."""

from __future__ import annotations

from collections.abc import Mapping

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from microlens.reports.evaluation import PEER_COLOR
from microlens.reports.style import MODEL_COLOR, TEMPLATE, error_bars

TITLES = {"chi2_dof": "χ²/dof of a flat fit", "acf_1d": "autocorrelation at 1 d",
          "acf_10d": "autocorrelation at 10 d", "acf_100d": "autocorrelation at 100 d",
          "outlier_fraction": "outliers (> 5 robust σ)",
          "season_offset_mmag": "season offsets [mmag rms]"}


def noise_statistics_figure(comparison: Mapping) -> go.Figure:
    """One panel per statistic: median and interquartile range per magnitude bin of the real
    baselines and, when the comparison has one, of the simulated constant stars.

    Parameters
    ----------
    comparison : mapping
        :func:`microlens.reports.noise_statistics.compare`'s result.
    """
    from microlens.simulation.residual_statistics import STATISTICS

    real, simulated = comparison["real"], comparison.get("simulated")
    figure = make_subplots(rows=2, cols=3, subplot_titles=[TITLES[s] for s in STATISTICS],
                           horizontal_spacing=0.08, vertical_spacing=0.22)
    sides = [("real", real, PEER_COLOR, f"real baselines ({comparison['folder']})")]
    if simulated is not None:
        sides.append(("simulated", simulated, MODEL_COLOR,
                      f"simulated constant stars ({comparison['dataset']})"))
    for k, name in enumerate(STATISTICS):
        row, col = divmod(k, 3)
        for j, (side, summary, color, label) in enumerate(sides):
            entries = summary["statistics"][name]
            median = [None if e is None else e["median"] for e in entries]
            figure.add_trace(go.Scatter(
                x=summary["bins"], y=median, mode="markers+lines", name=label,
                legendgroup=side, showlegend=k == 0, marker=dict(color=color, size=8),
                line=dict(color=color, width=1, dash="dot" if j else "solid"),
                error_y=error_bars(median, [None if e is None else e["q25"] for e in entries],
                                   [None if e is None else e["q75"] for e in entries]),
                customdata=[0 if e is None else e["n"] for e in entries],
                hovertemplate="%{x}: median %{y:.3g}<br>%{customdata} curves<extra>"
                              + side + "</extra>"), row=row + 1, col=col + 1)
    window = comparison.get("window_days")
    figure.update_layout(
        template=TEMPLATE, height=680, margin=dict(t=110, b=110),
        legend=dict(orientation="h", x=0, y=-0.14),
        title=("Curves without an event: residual statistics per baseline I-magnitude bin<br>"
               "<sup>median and interquartile range"
               + (f"; real baselines: their last {window:g} days" if window else "")
               + "; data: OGLE-IV EWS (Udalski et al. 2015; Udalski 2003)</sup>"))
    return figure


__all__ = ["noise_statistics_figure"]
