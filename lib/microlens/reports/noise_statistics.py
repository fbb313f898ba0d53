"""Residual statistics of curves without an event: how the sky's noise differs from the
simulator's.

A classifier trained on simulated noise reads every departure from it as signal. The real
baselines of OGLE-IV (years of a star before its event,
:func:`microlens.photometry.ews.baseline_end`)
are the measure of the sky's noise; class-0 constant stars of a synthetic preset are the
simulator's. Four statistics per curve, each computed the same way on both, then summarised by
baseline magnitude (median and interquartile range per bin):

``chi2_dof``
    χ²/dof of a flat fit (the error-weighted mean flux): 1 for white noise with honest error
    bars; above 1 when error bars understate the scatter or the flux moves.
``acf_1d``, ``acf_10d``, ``acf_100d``
    Autocorrelation of the normalised residuals ``z = (F - mean) / sigma`` at a lag of 1, 10 and
    100 days: the mean product ``z_a z_b`` over every pair of points whose separation lies
    within :data:`LAG_WINDOWS`, divided by the variance of ``z``. 0 for white noise; positive
    for nightly, seasonal or slow correlated offsets (the share of the scatter they make).
``outlier_fraction``
    Share of points more than :data:`OUTLIER_SIGMA` robust standard deviations from their
    season's median (the robust scale is 1.4826 × the median absolute deviation of ``z``, so
    error bars that are simply too small do not count): ~0 for Gaussian noise.
``season_offset_mmag``
    Root-mean-square of the season medians about the median of all seasons, in millimagnitudes
    (seasons split at gaps longer than :data:`SEASON_GAP_DAYS`, each with at least
    :data:`MIN_SEASON_POINTS` points): the year-to-year drift of a star's level.

Magnitude bins: :data:`MAG_EDGES` (baseline I magnitude; OGLE's ``I_bl`` for real stars, the
preset's ``baseline_mag`` for simulated ones).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from microlens.simulation.residual_statistics import (
    MAG_EDGES,
    STATISTICS,
    curve_statistics,
    last_days,
    magnitude_bin_labels,
)


def summarise(rows: Iterable[Mapping], edges: Sequence[float] = MAG_EDGES) -> dict:
    """Median, quartiles and count of every statistic per magnitude bin.

    Parameters
    ----------
    rows : iterable of mapping
        Each with ``mag`` and the statistics of :func:`curve_statistics`.

    Returns
    -------
    dict
        ``{"bins": labels, "statistics": {name: [{"median", "q25", "q75", "n"} per bin]}}``
        (None entries where a bin has no finite value).
    """
    rows = list(rows)
    labels = magnitude_bin_labels(edges)
    bins = np.digitize([r["mag"] for r in rows], edges) if rows else np.array([], int)
    table = {}
    for name in STATISTICS:
        values = np.array([r[name] for r in rows], dtype=np.float64)
        entries = []
        for k in range(len(labels)):
            chosen = values[(bins == k) & np.isfinite(values)]
            entries.append(None if chosen.size == 0 else {
                "median": float(np.median(chosen)), "q25": float(np.percentile(chosen, 25)),
                "q75": float(np.percentile(chosen, 75)), "n": int(chosen.size)})
        table[name] = entries
    return {"bins": labels, "edges": list(edges), "statistics": table,
            "n_curves": [int(np.sum(bins == k)) for k in range(len(labels))]}


def real_baseline_rows(folder=None, stars: Iterable[str] | None = None,
                       max_snr: float = 2.0, window_days: float | None = None) -> list[dict]:
    """:func:`curve_statistics` of the baseline segment of every usable event of an EWS folder.

    Parameters
    ----------
    folder : path, optional
        A folder in the EWS layout; None: the shipped subset.
    stars : iterable of str, optional
        Only these stars (:attr:`microlens.photometry.ews.EwsEvent.star`; e.g. a fold's training
        stars).
    max_snr : float
        Where the baseline ends (:func:`microlens.photometry.ews.baseline_end`).
    window_days : float, optional
        Only the last ``window_days`` days of each baseline (e.g. a survey preset's span, so
        that both sides cover as many seasons); None: the whole baseline.

    Returns
    -------
    list of dict
        ``event``, ``star``, ``mag`` (OGLE's ``I_bl``) and the statistics, one per star (the
        first event by name of a star seen twice).
    """
    from microlens.photometry import ews

    folder = ews.shipped_subset() if folder is None else folder
    rows = []
    for event, segment in ews.baseline_segments(folder, stars, max_snr):
        stats = curve_statistics(*last_days(segment.absolute_times(), segment.flux,
                                            segment.flux_err, window_days))
        if stats is not None:
            rows.append({"event": event.name, "star": event.star, "mag": event.fit.i_bl,
                         **stats})
    return rows


def simulated_rows(store, split: str | None = None) -> list[dict]:
    """:func:`curve_statistics` of the constant stars (class 0, no variability) of a data set,
    with its ``baseline_mag`` as ``mag`` (of an injection set: its untouched real windows)."""
    params = store.params
    names = params.dtype.names
    if "baseline_mag" not in names:
        raise ValueError(f"{getattr(store, 'path', 'this data set')} has no baseline_mag "
                         f"parameter (it has {', '.join(names)})")
    constant = store.labels == 0
    if "variable_kind" in names:
        constant &= params["variable_kind"] == 0
    rows_of = np.flatnonzero(constant) if split is None else np.intersect1d(
        np.flatnonzero(constant), store.indices(split))
    rows = []
    for row in rows_of:
        event = store.event(int(row))
        stats = curve_statistics(event["times"], event["flux"], event["flux_err"])
        if stats is not None:
            rows.append({"row": int(row), "mag": float(params["baseline_mag"][row]), **stats})
    return rows


def within_real_range(simulated: Mapping, real: Mapping) -> dict:
    """For every statistic and magnitude bin, whether the simulated median lies within the
    real interquartile range (None where either side has no curves)."""
    out = {}
    for name in STATISTICS:
        out[name] = [None if s is None or r is None else bool(r["q25"] <= s["median"] <= r["q75"])
                     for s, r in zip(simulated["statistics"][name], real["statistics"][name],
                                     strict=True)]
    return out


def compare(folder=None, dataset=None, *, stars: Iterable[str] | None = None,
            window_days: float | None = None) -> dict:
    """Real baselines of ``folder`` (their last ``window_days`` days, if given) beside the
    constant stars of a ``dataset``.

    Returns
    -------
    dict
        ``real`` and ``simulated`` (:func:`summarise`), ``within_real_iqr``
        (:func:`within_real_range`), the sources and the citation of the real data.
    """
    from microlens.core.paths import project_relative
    from microlens.data.store import open_dataset
    from microlens.photometry.ews import CITATION, shipped_subset

    folder = shipped_subset() if folder is None else folder
    real = summarise(real_baseline_rows(folder, stars, window_days=window_days))
    out = {"folder": project_relative(folder), "window_days": window_days, "real": real,
           "citation": CITATION}
    if dataset is not None:
        store = open_dataset(dataset)
        simulated = summarise(simulated_rows(store))
        out.update(dataset=project_relative(store.path), simulated=simulated,
                   within_real_iqr=within_real_range(simulated, real))
    return out


def main(argv: list[str]) -> int:
    """``python -m microlens.reports.noise_statistics [FOLDER] [--dataset DATA] [--stars FILE]
    [--window-days D] [--out JSON] [--figure FILE]``: the residual statistics of the real
    baselines of an EWS folder (default: the shipped subset) by magnitude, beside those of a
    data set's constant stars; prints JSON."""
    import argparse
    import json

    from microlens.core.cli import TerminalHelpFormatter
    from microlens.core.paths import write_json_atomic
    from microlens.photometry.ews import read_stars

    parser = argparse.ArgumentParser(prog="python -m microlens.reports.noise_statistics",
                                     description=main.__doc__,
                                     formatter_class=TerminalHelpFormatter)
    parser.add_argument("folder", nargs="?", help="a folder in the EWS layout")
    parser.add_argument("--dataset", help="a data set whose constant stars are compared")
    parser.add_argument("--stars", help="a file of the stars to read (one a line)")
    parser.add_argument("--window-days", type=float,
                        help="only the last days of each real baseline (e.g. 605.25, the ogle "
                             "preset's span)")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--figure", help="also write the figure here (.html, or .png/.pdf "
                                         "with Chromium)")
    args = parser.parse_args(argv)
    stars = None if args.stars is None else read_stars(args.stars)
    result = compare(args.folder, args.dataset, stars=stars, window_days=args.window_days)
    if args.out:
        write_json_atomic(args.out, result)
    if args.figure:
        from microlens.reports import save_figure
        from microlens.reports.noise import noise_statistics_figure

        figure_path = Path(args.figure)
        save_figure(noise_statistics_figure(result), figure_path.with_suffix(""),
                    [figure_path.suffix.lstrip(".") or "html"])
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    import sys

    from microlens.core.cli import command_line

    sys.exit(command_line(main)())
