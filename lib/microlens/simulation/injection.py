"""Training data made from real survey baselines: simulated events injected into real photometry.

The standard way surveys measure what their search finds is to inject simulated events into their
own photometry (injection-recovery; see ``docs/injection.md``). This module makes a data set that
way: a :class:`~microlens.simulation.simulate.SimulationConfig` with ``baselines`` set to a folder
of real curves in the OGLE EWS layout (:mod:`microlens.photometry.ews`) gives events whose times,
fluxes and error bars are real, stored like any data set (:mod:`microlens.data.store`), so training,
evaluation, every model kind and the notebooks read it unchanged.

Rules
    * **Baselines only.** Each star's baseline segment ends where OGLE's own fit of its event
      predicts a detectable signal (:func:`microlens.photometry.ews.baseline_end`, cumulative S/N <
      2); the points after it (the real event) are never read into a window. Fluxes and errors are
      in units of the segment's own baseline (:func:`microlens.photometry.ews.segment`).
    * **Stars.** A star is identified by its coordinates (``EwsEvent.star``): of several events
      of one star (overlapping fields) the first by name with a usable baseline speaks for it,
      so duplicate stars count once. A star is usable when some window of the survey's length
      (:func:`window_days`) inside its baseline holds at least ``min_window_points`` points;
      events without a params file or with a degenerate fit have no baseline segment. A star
      is used only if at least :data:`MIN_PASS_SHARE` of :data:`PROBE_DRAWS` draws of the
      priors on it pass the detection cut (:func:`screen_catalogue`): on a faint star with few
      points almost no event is detectable. Every skipped event is counted by reason
      (:attr:`BaselineCatalogue.skipped`, the manifest).
    * **Windows.** A window starts at a baseline point ``t_j`` with ``t_j <= t_last - D`` (``D``
      the window length; only the first point when the whole baseline is shorter than ``D``),
      holds the points in ``[t_j, t_j + D)`` and at least ``min_window_points`` of them; which
      one is drawn from the event's own random stream. Its times are stored as days since its
      first point; its first point's HJD is recorded (:data:`ORIGIN_DTYPE`).
    * **Stars and classes.** Events come in triples (no event, PSPL, binary: event ``i`` has
      class ``i % 3``), and every triple takes one star: triple ``g`` takes star
      ``order_k[g mod S]`` of round ``k = g // S`` (``order_k`` a permutation of the ``S``
      usable stars drawn from the seed). Every star therefore gives each class the same number
      of windows, at most ``windows_per_star`` (more needed is an error), so a star's identity
      says nothing about the class.
    * **Splits by star.** ``split_fractions`` apply to the stars used (at least one star per
      split when there are three): every window of a star lies in one split.
    * **Injection.** ``F' = F + f_s F_base (A(t) - 1)`` with ``F_base = 1`` (the baseline
      unit), ``A`` the PSPL magnification or the binary one
      (:func:`microlens.simulation.simulate.binary_magnification`, the topology preset's priors),
      ``f_s`` log-uniform in ``injection_f_s_range`` (never
      OGLE's fitted blending). Extra photon noise: the star's error model
      ``sigma^2(F) = a^2 + b F`` (:func:`fit_error_model`, fitted to its baseline) gives each
      injected point ``N(0, sigma^2(F') - sigma^2(F)) = N(0, b f_s (A - 1))`` more noise and the
      error bar ``sqrt(sigma_i^2 + b f_s (A - 1))`` (its real error bar ``sigma_i`` grown as the
      model says). The untouched windows of class 0 are the real data as they are.
    * **Same priors, one cut.** Every class draws the window, ``u_0, t_E, rho, s, q, alpha``,
      ``f_s``, ``t_0`` and the noise in the same order, and one detection cut (on the single-lens
      signal those draws imply, with the window's error bars) applies to every class, as in
      :func:`microlens.simulation.simulate.simulate_event`. Detectability (``dchi2_flat``,
      ``dchi2_pspl``) is computed on the stored points with their stored (real) error bars, against
      the truth ``c + f_s (A - 1)``, ``c`` the window's weighted mean flux before the injection (a
      real window need not sit exactly at the segment's baseline unit; the fits' free baseline would
      otherwise turn that offset into Δχ²).

Reproducibility: the catalogue of stars is a function of the folder and the window settings,
each event's draws come from ``event_rng(seed, index)``, and the star of each event from the
seed alone, so results do not depend on the worker count. The generation reads the folder once,
in the calling process, and hands the catalogue to its workers as an ``.npz`` file
(:func:`save_catalogue`, :func:`load_catalogue`; one copy per process).
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from microlens.core.classes import CLASS_NAMES
from microlens.simulation.presets import get_survey, get_topology
from microlens.simulation.pspl_fit import pspl_magnification
from microlens.simulation.simulate import (
    MAG_TO_FLUX,
    SPLIT_NAMES,
    SimulatedEvent,
    SimulationConfig,
    binary_magnification,
    event_label,
    event_rng,
    params_dtype,
    passes_detection_cut,
)
from microlens.simulation.variables import (
    VARIABLE_COLUMNS,
    VARIABLE_DTYPES,
    draw_variable,
    variable_flux,
)

_VARIABLE_KEY = 0x7661  # spawn key of the injected variables' stream ("va")

__all__ = [
    "CATALOGUE_FILE", "ORIGIN_DTYPE", "BaselineCatalogue", "build_catalogue", "catalogue_for",
    "check_capacity", "event_splits", "event_star", "fit_error_model", "inject",
    "inject_event", "inject_range", "load_catalogue", "manifest_entry", "save_catalogue",
    "star_splits", "stars_of_split", "window_days", "window_starts",
]  # fmt: skip

CATALOGUE_FILE = "baselines.npz"
"""The catalogue a generation hands its workers (in the unfinished data set's folder)."""

MAX_SNR = 2.0
"""A baseline segment ends before OGLE's fit predicts this cumulative S/N
(:func:`microlens.photometry.ews.baseline_end`)."""

ERROR_MODEL_BIN = 20
"""Baseline points per bin of the error-model fit (:func:`fit_error_model`)."""

MAX_ERROR_BINS = 20
"""Most bins of the error-model fit."""

PROBE_DRAWS = 100
"""Draws of the priors tried on each star before it is used (:func:`screen_catalogue`)."""

MIN_PASS_SHARE = 0.1
"""Share of :data:`PROBE_DRAWS` that must pass the detection cut for a star to be used."""

_PROBE_KEY = 2**31 + 2
"""Spawn key of the probe streams (one per star; independent of the data-set seed)."""

ORIGIN_DTYPE = np.dtype([
    ("star", "U32"),  # the star's identity (EwsEvent.star: its coordinates)
    ("source", "U64"),  # the photometry file the window comes from
    ("window_start_hjd", np.float64),  # full HJD of the window's first point (its time 0)
    ("window_end_hjd", np.float64),  # full HJD of the window's last point
    ("baseline_end_hjd", np.float64),  # full HJD of the star's last baseline point
    ("error_a", np.float64),  # the star's error model sigma^2 = a^2 + b F (baseline units)
    ("error_b", np.float64),
])  # fmt: skip
"""Where each event of an injection data set comes from (``origin.npy``, row by row)."""

_STAR_ORDER_KEY = 2**31 + 1
"""Spawn key of the star-order stream (apart from ``event_rng``'s event indices and
:func:`microlens.data.store.stratified_split`'s ``2**31``)."""


# --------------------------------------------------------------------------------------------
# Window length, error model, injection
# --------------------------------------------------------------------------------------------


def window_days(config: SimulationConfig) -> float:
    """Length of a window [days]: the survey preset's span (first season's start to the last
    season's end; ``ogle``: 605.25 d), ``survey_days`` on the ``thesis`` survey."""
    survey = get_survey(config.survey)
    if survey.is_thesis:
        return float(config.survey_days)
    from microlens.simulation.survey import season_starts

    return float(season_starts(survey)[-1] + survey.season_days)


def fit_error_model(flux: np.ndarray, flux_err: np.ndarray,
                    per_bin: int = ERROR_MODEL_BIN) -> tuple[float, float]:
    """The error model ``sigma^2(F) = a^2 + b F`` of one star, from its baseline points.

    The points are sorted by flux and cut into bins of ``per_bin`` (at most
    :data:`MAX_ERROR_BINS` bins, at least one); ``a^2`` and ``b`` are the least-squares line
    through the bins' (mean flux, mean squared error), weighted by the points per bin, with
    ``a^2 >= 0`` and ``b >= 0`` (a negative one is set to 0 and the other refitted).

    Parameters
    ----------
    flux, flux_err : ndarray
        Baseline points in baseline units and their 1-sigma errors.
    per_bin : int
        Points per bin.

    Returns
    -------
    (a, b) : tuple of float
        ``a`` in flux units, ``b`` in flux units (variance per unit flux).
    """
    flux = np.asarray(flux, dtype=np.float64)
    var = np.asarray(flux_err, dtype=np.float64) ** 2
    if flux.size == 0 or flux.shape != var.shape:
        raise ValueError(f"fit_error_model needs equal, non-empty flux and error arrays; got "
                         f"{flux.shape} and {var.shape}")
    order = np.argsort(flux, kind="stable")
    n_bins = int(min(MAX_ERROR_BINS, max(1, flux.size // max(int(per_bin), 1))))
    parts = np.array_split(order, n_bins)
    x = np.array([flux[p].mean() for p in parts])
    y = np.array([var[p].mean() for p in parts])
    w = np.array([p.size for p in parts], dtype=np.float64)
    sw, sx, sy = w.sum(), (w * x).sum(), (w * y).sum()
    sxx, sxy = (w * x * x).sum(), (w * x * y).sum()
    det = sw * sxx - sx * sx
    if n_bins >= 2 and det > 1e-12 * sw * sxx:
        b = (sw * sxy - sx * sy) / det
        a2 = (sy - b * sx) / sw
    else:  # one bin or no spread in flux: a constant error
        a2, b = sy / sw, 0.0
    if b < 0:
        a2, b = sy / sw, 0.0
    if a2 < 0:
        a2, b = 0.0, sxy / sxx
    return math.sqrt(a2), float(b)


def inject(flux: np.ndarray, flux_err: np.ndarray, magnification: np.ndarray, f_s: float,
           b: float, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An event injected into real points (see the module docstring).

    Parameters
    ----------
    flux, flux_err : ndarray
        The real points [baseline units] and their error bars.
    magnification : ndarray
        ``A(t)`` at the points.
    f_s : float
        The injected source's share of the baseline flux.
    b : float
        The star's error-model slope (:func:`fit_error_model`).
    noise : ndarray
        Standard normal draws, one per point (zeros: the flux before the extra noise).

    Returns
    -------
    flux, flux_err : ndarray
        ``F + f_s (A - 1) + noise sqrt(b f_s (A - 1))`` and ``sqrt(sigma^2 + b f_s (A - 1))``.
    """
    excess = f_s * (np.asarray(magnification, dtype=np.float64) - 1.0)
    extra_var = np.maximum(b * excess, 0.0)
    out = np.asarray(flux, dtype=np.float64) + excess + np.asarray(noise) * np.sqrt(extra_var)
    err = np.sqrt(np.asarray(flux_err, dtype=np.float64) ** 2 + extra_var)
    return out, err


def window_starts(hjd: np.ndarray, duration: float, min_points: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The windows a baseline offers (see the module docstring).

    Returns
    -------
    starts, stops : ndarray of int
        Window ``k`` holds points ``starts[k]:stops[k]``; empty when none holds
        ``min_points``.
    """
    t = np.asarray(hjd, dtype=np.float64)
    if t.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    last_start = max(float(t[0]), float(t[-1]) - duration)
    first = np.arange(int(np.searchsorted(t, last_start, side="right")), dtype=np.int64)
    stops = np.searchsorted(t, t[first] + duration, side="left").astype(np.int64)
    keep = stops - first >= min_points
    return first[keep], stops[keep]


# --------------------------------------------------------------------------------------------
# The catalogue of usable stars
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BaselineCatalogue:
    """The usable stars of a folder: their baseline segments and error models.

    Attributes
    ----------
    folder : str
        The resolved folder.
    window_days : float
        Window length the stars were checked against.
    min_window_points : int
        Fewest points a window holds.
    stars, sources : tuple of str
        Each usable star's identity (by coordinates) and the photometry file of its baseline,
        sorted by star.
    offsets : ndarray (S + 1,)
        Star ``k``'s points are ``[offsets[k], offsets[k + 1])`` of the arrays below.
    hjd, flux, flux_err : ndarray
        Baseline points: full HJD, flux and errors in units of the segment's own baseline.
    baseline_mag : ndarray (S,)
        Each baseline's magnitude (I band for OGLE).
    error_a, error_b : ndarray (S,)
        Each star's error model (:func:`fit_error_model`).
    skipped : dict
        Reason -> names of the events not used.
    screen : str
        The settings the stars were screened with (:func:`screen_catalogue`; JSON), empty
        before screening.
    """

    folder: str
    window_days: float
    min_window_points: int
    stars: tuple[str, ...]
    sources: tuple[str, ...]
    offsets: np.ndarray
    hjd: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray
    baseline_mag: np.ndarray
    error_a: np.ndarray
    error_b: np.ndarray
    skipped: dict = field(default_factory=dict)
    screen: str = ""

    def __len__(self) -> int:
        return len(self.stars)

    @property
    def key(self) -> tuple[str, float, int, str]:
        return (self.folder, float(self.window_days), int(self.min_window_points), self.screen)

    def star_points(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Star ``k``'s baseline: full HJD, flux, flux errors."""
        lo, hi = int(self.offsets[k]), int(self.offsets[k + 1])
        return self.hjd[lo:hi], self.flux[lo:hi], self.flux_err[lo:hi]

    @functools.cached_property
    def _windows(self) -> dict:
        return {}

    def windows(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Star ``k``'s windows (:func:`window_starts`), computed once per process."""
        if k not in self._windows:
            self._windows[k] = window_starts(self.star_points(k)[0], self.window_days,
                                             self.min_window_points)
        return self._windows[k]

    def skipped_counts(self) -> dict[str, int]:
        """Reason -> number of events not used."""
        return {reason: len(names) for reason, names in self.skipped.items()}


_SKIP_NO_FIT = "no params file (no peak: no baseline segment)"
_SKIP_DEGENERATE = "degenerate fit (no baseline segment)"
_SKIP_FEW = "fewer baseline points than min_window_points in every window"
_SKIP_DUPLICATE = "another event of the same star speaks for it"
_SKIP_UNREADABLE = "photometry not readable"
_SKIP_UNDETECTABLE = (f"fewer than {MIN_PASS_SHARE:.0%} of {PROBE_DRAWS} draws of the priors "
                      "pass the detection cut on it")


def _star_baseline(event, window: float, min_points: int):
    """``(reason, None)`` for an event that gives no usable baseline, else ``(None, data)``."""
    from microlens.photometry import ews
    from microlens.photometry.files import PhotometryWarning

    if event.fit is None:
        return _SKIP_NO_FIT, None
    if event.fit.degenerate:
        return _SKIP_DEGENERATE, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PhotometryWarning)
            photometry = ews.read_photometry(event)
            n = ews.baseline_end(event, photometry, MAX_SNR)
            if n < min_points:
                return _SKIP_FEW, None
            base = ews.segment(photometry, n, "_baseline")
    except (ValueError, OSError) as exc:
        return f"{_SKIP_UNREADABLE}: {str(exc).splitlines()[0][:200]}", None
    hjd = base.absolute_times()
    if window_starts(hjd, window, min_points)[0].size == 0:
        return _SKIP_FEW, None
    a, b = fit_error_model(base.flux, base.flux_err)
    return None, dict(hjd=np.asarray(hjd), flux=np.asarray(base.flux),
                      flux_err=np.asarray(base.flux_err), baseline_mag=base.baseline_mag[0],
                      a=a, b=b, source=event.photometry_file.name)


def build_catalogue(folder: str | os.PathLike, window: float,
                    min_points: int) -> BaselineCatalogue:
    """Read a folder in the EWS layout into the catalogue of its usable stars.

    Parameters
    ----------
    folder : path
        Relative paths are taken from the project root.
    window : float
        Window length [days] (:func:`window_days`).
    min_points : int
        Fewest points a window must hold.

    Raises
    ------
    FileNotFoundError, ValueError
        The folder is missing or not in the EWS layout
        (:func:`microlens.photometry.ews.read_folder`'s
        message), or it holds no usable baseline (the message counts the reasons).
    """
    from microlens.core.paths import resolve_path
    from microlens.photometry import ews

    root = resolve_path(folder)
    if not root.exists():
        raise FileNotFoundError(
            f"baselines folder {str(folder)!r} does not exist (resolved to {root}); give a "
            "folder of real curves in the EWS layout (photometry/<name>_phot.dat, "
            "params/<name>_params.dat), e.g. the one microlens.photometry.ews.shipped_subset() "
            "returns")
    events = ews.read_folder(root)
    by_star: dict[str, list] = {}
    for event in events:
        by_star.setdefault(event.star, []).append(event)
    skipped: dict[str, list[str]] = {}
    chosen = {}
    for star in sorted(by_star):
        for event in by_star[star]:  # sorted by name
            if star in chosen:
                skipped.setdefault(_SKIP_DUPLICATE, []).append(event.name)
                continue
            reason, data = _star_baseline(event, window, min_points)
            if reason is None:
                chosen[star] = data
            else:
                skipped.setdefault(reason, []).append(event.name)
    if not chosen:
        counts = "; ".join(f"{reason}: {len(names)}" for reason, names in skipped.items())
        raise ValueError(
            f"baselines folder {str(folder)!r} ({root}) holds no usable baseline: none of its "
            f"{len(events)} events has a window of {window:g} days before its event with at "
            f"least min_window_points={min_points} points ({counts}); lower min_window_points, "
            "use a shorter survey window, or give a folder with longer baselines")
    stars = tuple(chosen)
    lengths = np.array([chosen[s]["hjd"].size for s in stars], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return BaselineCatalogue(
        folder=str(root), window_days=float(window), min_window_points=int(min_points),
        stars=stars, sources=tuple(chosen[s]["source"] for s in stars), offsets=offsets,
        hjd=np.concatenate([chosen[s]["hjd"] for s in stars]),
        flux=np.concatenate([chosen[s]["flux"] for s in stars]),
        flux_err=np.concatenate([chosen[s]["flux_err"] for s in stars]),
        baseline_mag=np.array([chosen[s]["baseline_mag"] for s in stars], np.float64),
        error_a=np.array([chosen[s]["a"] for s in stars], np.float64),
        error_b=np.array([chosen[s]["b"] for s in stars], np.float64),
        skipped={reason: tuple(names) for reason, names in skipped.items()},
    )  # fmt: skip


_CATALOGUES: dict[tuple[str, float, int], BaselineCatalogue] = {}
"""This process's catalogues, by (resolved folder, window length, fewest points)."""


def _screen_settings(config: SimulationConfig) -> str:
    """The settings that decide whether events on a star pass the detection cut (JSON)."""
    import json

    return json.dumps({
        "survey": config.survey, "survey_days": config.survey_days,
        "t_0_range": list(config.t_0_range), "u_0_range": list(config.u_0_range),
        "t_E_range": list(config.t_E_range),
        "injection_f_s_range": list(config.injection_f_s_range),
        "detection_sigma": config.detection_sigma,
        "detection_min_points": config.detection_min_points,
        "probe_draws": PROBE_DRAWS, "min_pass_share": MIN_PASS_SHARE,
    }, sort_keys=True)  # fmt: skip


def _catalogue_key(config: SimulationConfig) -> tuple[str, float, int, str]:
    from microlens.core.paths import resolve_path

    return (str(resolve_path(config.baselines)), window_days(config), config.min_window_points,
            _screen_settings(config))


def catalogue_for(config: SimulationConfig) -> BaselineCatalogue:
    """The screened catalogue of ``config.baselines`` (read and screened once per process,
    then kept; :func:`build_catalogue`, :func:`screen_catalogue`)."""
    if config.baselines is None:
        raise ValueError("this config makes synthetic curves (baselines is None): it has no "
                         "catalogue of real baselines")
    key = _catalogue_key(config)
    if key not in _CATALOGUES:
        folder_key = (*key[:3], "")
        if folder_key not in _CATALOGUES:
            _CATALOGUES[folder_key] = build_catalogue(key[0], key[1], key[2])
        _CATALOGUES[key] = screen_catalogue(_CATALOGUES[folder_key], config)
    return _CATALOGUES[key]


def _attempt(config: SimulationConfig, survey, catalogue: BaselineCatalogue, star: int,
             rng: np.random.Generator) -> dict:
    """One draw of the window and the parameters of an event on ``star`` (the order every
    class draws in), with the detection cut on the single-lens signal they imply."""
    from microlens.simulation.survey import draw_t_0

    starts, stops = catalogue.windows(star)
    hjd_all, _, err_all = catalogue.star_points(star)
    topo = get_topology(config.topology)
    pick = int(rng.integers(starts.size))
    lo, hi = int(starts[pick]), int(stops[pick])
    times = hjd_all[lo:hi] - hjd_all[lo]
    draws = dict(lo=lo, hi=hi, times=times)
    draws["u_0"] = rng.uniform(*config.u_0_range)
    draws["t_E"] = _log_uniform(rng, config.t_E_range)
    draws["rho"] = _log_uniform(rng, config.rho_range)
    draws["s"] = _log_uniform(rng, topo.s_range)
    draws["q"] = _log_uniform(rng, topo.q_range)
    draws["alpha_rad"] = rng.uniform(0.0, 2.0 * math.pi)
    draws["f_s"] = _log_uniform(rng, config.injection_f_s_range)
    if survey.is_thesis:
        draws["t_0"] = config.survey_days * rng.uniform(*config.t_0_range)
    else:
        draws["t_0"] = draw_t_0(survey, times, draws["t_E"], rng)
    draws["noise"] = rng.standard_normal(times.size)
    draws["single"] = pspl_magnification(times, draws["t_0"], draws["u_0"], draws["t_E"])
    single_flux, single_err = inject(np.ones_like(times), err_all[lo:hi], draws["single"],
                                     draws["f_s"], float(catalogue.error_b[star]),
                                     np.zeros_like(times))
    draws["passed"], draws["peak_sig"] = passes_detection_cut(single_flux, single_err, config)
    return draws


def screen_catalogue(catalogue: BaselineCatalogue, config: SimulationConfig
                     ) -> BaselineCatalogue:
    """The stars on which events of ``config``'s priors can pass the detection cut.

    Each star is tried with :data:`PROBE_DRAWS` draws of the window and the priors (a stream
    of its own, independent of the data-set seed); a star is kept when at least
    :data:`MIN_PASS_SHARE` of them pass the detection cut. A star on which almost no event is
    detectable (a faint star with few points) would otherwise exhaust ``max_attempts``; the
    synthetic mode draws its stars' brightness and cadence anew at every attempt instead.
    """
    survey = get_survey(config.survey)
    keep = []
    for k in range(len(catalogue)):
        sequence = np.random.SeedSequence(entropy=0, spawn_key=(_PROBE_KEY, k))
        rng = np.random.default_rng(sequence)
        passed = sum(_attempt(config, survey, catalogue, k, rng)["passed"]
                     for _ in range(PROBE_DRAWS))
        keep.append(passed >= MIN_PASS_SHARE * PROBE_DRAWS)
    keep = np.asarray(keep, dtype=bool)
    folder = catalogue.folder
    skipped = {reason: tuple(names) for reason, names in catalogue.skipped.items()}
    dropped = tuple(Path(source).name.removesuffix("_phot.dat")
                    for source, kept in zip(catalogue.sources, keep, strict=True) if not kept)
    if dropped:
        skipped[_SKIP_UNDETECTABLE] = dropped
    if not keep.any():
        raise ValueError(
            f"baselines folder {folder}: on none of its {len(catalogue)} usable stars do "
            f"{MIN_PASS_SHARE:.0%} of {PROBE_DRAWS} draws of the priors pass the detection cut "
            f"(detection_sigma={config.detection_sigma}, detection_min_points="
            f"{config.detection_min_points}); loosen the cut or widen u_0_range, t_E_range or "
            "injection_f_s_range")
    rows = np.flatnonzero(keep)
    lengths = np.diff(catalogue.offsets)[rows]
    pieces = [slice(int(catalogue.offsets[k]), int(catalogue.offsets[k + 1])) for k in rows]
    return BaselineCatalogue(
        folder=folder, window_days=catalogue.window_days,
        min_window_points=catalogue.min_window_points,
        stars=tuple(catalogue.stars[k] for k in rows),
        sources=tuple(catalogue.sources[k] for k in rows),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        hjd=np.concatenate([catalogue.hjd[p] for p in pieces]),
        flux=np.concatenate([catalogue.flux[p] for p in pieces]),
        flux_err=np.concatenate([catalogue.flux_err[p] for p in pieces]),
        baseline_mag=catalogue.baseline_mag[rows], error_a=catalogue.error_a[rows],
        error_b=catalogue.error_b[rows], skipped=skipped, screen=_screen_settings(config),
    )  # fmt: skip


def save_catalogue(catalogue: BaselineCatalogue, path: str | os.PathLike) -> Path:
    """Write a catalogue as a plain ``.npz`` (no pickle), atomically."""
    from microlens.core.paths import atomic_path

    reasons = [reason for reason, names in catalogue.skipped.items() for _ in names]
    names = [name for names in catalogue.skipped.values() for name in names]
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, folder=np.array(catalogue.folder),
                 window_days=np.float64(catalogue.window_days),
                 min_window_points=np.int64(catalogue.min_window_points),
                 stars=np.array(catalogue.stars, dtype=str),
                 sources=np.array(catalogue.sources, dtype=str), offsets=catalogue.offsets,
                 hjd=catalogue.hjd, flux=catalogue.flux, flux_err=catalogue.flux_err,
                 baseline_mag=catalogue.baseline_mag, error_a=catalogue.error_a,
                 error_b=catalogue.error_b, skipped_reasons=np.array(reasons, dtype=str),
                 skipped_names=np.array(names, dtype=str), screen=np.array(catalogue.screen))
    return path


_LOADED: dict[str, tuple[str, float, int]] = {}
"""Catalogue files this process has read, with the key of what they hold."""


def load_catalogue(path: str | os.PathLike) -> BaselineCatalogue:
    """Read a catalogue :func:`save_catalogue` wrote and keep it for this process (so that
    :func:`catalogue_for` finds it without reading the folder); a file already read is not
    read again."""
    name = str(Path(path).resolve())
    if name in _LOADED and _LOADED[name] in _CATALOGUES:
        return _CATALOGUES[_LOADED[name]]
    with np.load(path, allow_pickle=False) as data:
        skipped: dict[str, list[str]] = {}
        for reason, name in zip(data["skipped_reasons"].tolist(),
                                data["skipped_names"].tolist(), strict=True):
            skipped.setdefault(reason, []).append(name)
        catalogue = BaselineCatalogue(
            folder=str(data["folder"]), window_days=float(data["window_days"]),
            min_window_points=int(data["min_window_points"]),
            stars=tuple(data["stars"].tolist()), sources=tuple(data["sources"].tolist()),
            offsets=data["offsets"], hjd=data["hjd"], flux=data["flux"],
            flux_err=data["flux_err"], baseline_mag=data["baseline_mag"],
            error_a=data["error_a"], error_b=data["error_b"],
            skipped={reason: tuple(names) for reason, names in skipped.items()},
            screen=str(data["screen"]),
        )  # fmt: skip
    _CATALOGUES[catalogue.key] = catalogue
    _LOADED[name] = catalogue.key
    return catalogue


# --------------------------------------------------------------------------------------------
# Stars of events, splits
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _star_order(seed: int, round_: int, n_stars: int) -> np.ndarray:
    sequence = np.random.SeedSequence(entropy=int(seed), spawn_key=(_STAR_ORDER_KEY, round_))
    order = np.random.default_rng(sequence).permutation(n_stars)
    order.setflags(write=False)
    return order


def check_capacity(config: SimulationConfig, n_stars: int) -> None:
    """A ValueError when ``n_per_class`` needs more than ``windows_per_star`` windows of
    ``n_stars`` stars in one class."""
    if config.n_per_class > n_stars * config.windows_per_star:
        need = math.ceil(config.n_per_class / n_stars)
        raise ValueError(
            f"n_per_class={config.n_per_class} needs {need} windows of each of the "
            f"{n_stars} usable stars of baselines {config.baselines!r} in each class, but "
            f"windows_per_star={config.windows_per_star}; lower n_per_class to at most "
            f"{n_stars * config.windows_per_star} or raise windows_per_star to {need}")


def event_star(config: SimulationConfig, n_stars: int, index: int) -> int:
    """The catalogue row of the star that event ``index`` takes (see the module docstring)."""
    round_, position = divmod(int(index) // len(CLASS_NAMES), n_stars)
    if round_ >= config.windows_per_star:
        check_capacity(config, n_stars)
        raise ValueError(f"event {index} lies beyond the {config.n_events} events of this "
                         "config")
    return int(_star_order(config.seed, round_, n_stars)[position])


def _split_counts(n: int, fractions) -> np.ndarray:
    """``n`` items shared by ``fractions`` (largest remainders), at least one per share when
    ``n`` allows."""
    exact = np.asarray(fractions, dtype=np.float64) * n
    counts = np.floor(exact).astype(np.int64)
    for k in np.argsort(-(exact - counts), kind="stable")[: n - int(counts.sum())]:
        counts[k] += 1
    if n >= len(counts):
        while (counts == 0).any():
            counts[int(np.argmax(counts))] -= 1
            counts[int(np.flatnonzero(counts == 0)[0])] += 1
    return counts


def star_splits(config: SimulationConfig, n_stars: int) -> np.ndarray:
    """Each catalogue star's split (0 train, 1 val, 2 test; -1: not used by this config).

    The stars used are the first ``min(n_stars, n_per_class)`` of the first round's order;
    ``split_fractions`` share them out in that (random) order."""
    order = _star_order(config.seed, 0, n_stars)
    used = order[: min(n_stars, config.n_per_class)]
    split = np.full(n_stars, -1, np.int8)
    bounds = np.concatenate([[0], np.cumsum(_split_counts(used.size, config.split_fractions))])
    for part in range(len(bounds) - 1):
        split[used[bounds[part]: bounds[part + 1]]] = part
    return split


def event_splits(config: SimulationConfig, n_stars: int) -> np.ndarray:
    """The split of every event of ``config``: its star's (:func:`star_splits`)."""
    per_star = star_splits(config, n_stars)
    stars = np.array([event_star(config, n_stars, i) for i in range(config.n_events)],
                     np.int64)
    return per_star[stars].astype(np.int8)


def stars_of_split(store, split: str) -> set[str]:
    """The stars (``EwsEvent.star``: coordinates) whose windows lie in ``split`` of an
    injection data set, e.g. to score real events with a model that never saw their star."""
    origin = getattr(store, "origin", None)
    if origin is None:
        raise ValueError(f"{getattr(store, 'path', 'this data set')} is not made from real "
                         "baselines (no origin.npy): it has no stars")
    return {str(s) for s in np.asarray(origin["star"])[store.indices(split)]}


def manifest_entry(config: SimulationConfig, catalogue: BaselineCatalogue,
                   split: np.ndarray) -> dict:
    """What a data set's manifest records about its baselines."""
    per_star = star_splits(config, len(catalogue))

    return {
        "baselines": config.baselines,
        "folder": catalogue.folder,
        "window_days": catalogue.window_days,
        "min_window_points": catalogue.min_window_points,
        "max_snr": MAX_SNR,
        "usable_stars": len(catalogue),
        "stars_used": int((per_star >= 0).sum()),
        "stars_per_split": {name: int((per_star == k).sum())
                            for k, name in enumerate(SPLIT_NAMES)},
        "events_per_split": {name: int((np.asarray(split) == k).sum())
                             for k, name in enumerate(SPLIT_NAMES)},
        "skipped": catalogue.skipped_counts(),
    }


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


def _log_uniform(rng: np.random.Generator, bounds) -> float:
    low, high = bounds
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def inject_event(config: SimulationConfig, index: int, *, extra_noise: bool = True
                 ) -> SimulatedEvent:
    """Event ``index`` of an injection data set (deterministic; see the module docstring).

    Parameters
    ----------
    config : SimulationConfig
        With ``baselines`` set.
    index : int
        Event index (class ``index % 3``).
    extra_noise : bool
        False leaves out the extra photon noise of the injected flux (the same draws are
        made): the stored flux is then exactly ``F + f_s (A - 1)`` (for tests).

    Returns
    -------
    SimulatedEvent
        Times in days since the window's first point; ``params`` as
        :data:`microlens.simulation.simulate.PARAM_COLUMNS` (``t_0`` in days since the window's
        first point; ``error_scale``, ``missing_fraction``, ``cadence_per_hour`` NaN: not
        simulated); ``clean_flux`` the model of the stored points, ``c + f_s (A - 1)`` (``c`` the
        window's weighted mean flux before the injection); ``origin`` as :data:`ORIGIN_DTYPE`.
    """
    catalogue = catalogue_for(config)
    star = event_star(config, len(catalogue), index)
    hjd_all, flux_all, err_all = catalogue.star_points(star)
    b = float(catalogue.error_b[star])
    label = event_label(index)
    rng = event_rng(config.seed, index)
    survey = get_survey(config.survey)
    for attempt in range(1, config.max_attempts + 1):  # noqa: B007 (recorded after the loop)
        draws = _attempt(config, survey, catalogue, star, rng)
        if draws["passed"]:
            break
    else:
        raise RuntimeError(
            f"event {index} (star {catalogue.stars[star]}) did not pass the detection cut in "
            f"{config.max_attempts} attempts; loosen detection_sigma / detection_min_points, "
            "widen the priors or raise max_attempts")
    lo, hi, times, noise, single = (draws[k] for k in ("lo", "hi", "times", "noise", "single"))
    t_0, u_0, t_E, f_s = (draws[k] for k in ("t_0", "u_0", "t_E", "f_s"))
    rho, s, q, alpha_rad = (draws[k] for k in ("rho", "s", "q", "alpha_rad"))
    peak_sig = draws["peak_sig"]
    hjd, flux, err = hjd_all[lo:hi], flux_all[lo:hi], err_all[lo:hi]

    variable = brightness = None
    if label == 0:
        mag = np.ones_like(times)
        out_flux, out_err = np.array(flux), np.array(err)
        variable = _injected_variable(config, index, times)
        if variable is not None:  # the real star itself varies: its flux and photon noise scale
            brightness = variable_flux(variable, times)
            out_flux, out_err = out_flux * brightness, out_err * np.sqrt(brightness)
    else:
        if label == 1:
            mag = single
        else:
            mag = binary_magnification(times, t_0, u_0, t_E, rho, s, q, alpha_rad,
                                       tol=config.vbbl_tol, backend=config.magnification_backend)
        out_flux, out_err = inject(flux, err, mag, f_s, b,
                                   noise if extra_noise else np.zeros_like(noise))
    # the model of the stored points: the window's own level (its weighted mean before the
    # injection; the segment's baseline unit need not hold exactly in every window) plus the
    # injected signal, so that Δχ² measures the signal, not an offset of the real baseline
    weights = 1.0 / err**2
    level = float(np.sum(weights * flux) / np.sum(weights))
    clean = level + f_s * (mag - 1.0)
    if variable is not None:
        clean = level * brightness
    baseline_mag = float(catalogue.baseline_mag[star])
    params = dict(
        label=label, t_0=t_0, u_0=u_0, t_E=t_E,
        rho=rho if label == 2 else math.nan, s=s if label == 2 else math.nan,
        q=q if label == 2 else math.nan, alpha_rad=alpha_rad if label == 2 else math.nan,
        source_mag=baseline_mag - 2.5 * math.log10(f_s), f_s=f_s, baseline_mag=baseline_mag,
        baseline_mag_error=float(np.median(err)) / MAG_TO_FLUX,
        n_obs=times.size, missing_fraction=math.nan, peak_significance=peak_sig,
        attempts=attempt, dchi2_flat=math.nan, dchi2_pspl=math.nan,
        cadence_per_hour=math.nan, error_scale=math.nan, n_outliers=0,
    )  # fmt: skip
    params.update({name: (0 if name in VARIABLE_DTYPES else math.nan)
                   for name in VARIABLE_COLUMNS} if variable is None  # a real star as it is
                  else {name: variable[name] for name in VARIABLE_COLUMNS})
    if config.detectability:
        from microlens.simulation.detectability import detectability

        params.update(detectability(times, out_flux, out_err, clean, (t_0, u_0, t_E)))
    origin = dict(star=catalogue.stars[star], source=catalogue.sources[star],
                  window_start_hjd=float(hjd[0]), window_end_hjd=float(hjd[-1]),
                  baseline_end_hjd=float(hjd_all[-1]),
                  error_a=float(catalogue.error_a[star]), error_b=b)
    return SimulatedEvent(times=times, flux=out_flux, flux_err=out_err, clean_flux=clean,
                          params=params, origin=origin)


def _injected_variable(config: SimulationConfig, index: int, times: np.ndarray) -> dict | None:
    """The simulated variable star that no-event window ``index`` carries, or None.

    With ``injected_variables`` > 0 each no-event window draws, from a stream of its own (so
    every other draw of the set stays as it is), whether it varies (at that share) and a
    variable of the ``contaminants`` mix over its span (:func:`microlens.simulation.variables.
    draw_variable`): the same draws whatever the answer, for every window.
    """
    if config.injected_variables <= 0:
        return None
    from microlens.simulation.variables import CONTAMINANT_MIXES

    rng = np.random.default_rng(np.random.SeedSequence(
        entropy=int(config.seed), spawn_key=(_VARIABLE_KEY, int(index))))
    varies = rng.random() < config.injected_variables
    span = float(times[-1] - times[0]) if times.size else 0.0
    variable = draw_variable(rng, span, kind_weights=CONTAMINANT_MIXES[config.contaminants])
    return variable if varies and int(variable["variable_kind"]) > 0 else None


def inject_range(config: SimulationConfig, start: int, stop: int) -> dict[str, np.ndarray]:
    """Events ``start .. stop-1`` into concatenated arrays, as
    :func:`microlens.simulation.simulate.simulate_range`, plus ``origin`` (:data:`ORIGIN_DTYPE`)."""
    events = [inject_event(config, index) for index in range(start, stop)]
    params = np.zeros(len(events), dtype=params_dtype())
    origin = np.zeros(len(events), dtype=ORIGIN_DTYPE)
    for row, ev in enumerate(events):
        for name in params.dtype.names:
            params[name][row] = ev.params[name]
        for name in origin.dtype.names:
            origin[name][row] = ev.origin[name]
    return {
        "times": np.concatenate([ev.times for ev in events]).astype(np.float64),
        "flux": np.concatenate([ev.flux for ev in events]).astype(np.float32),
        "flux_err": np.concatenate([ev.flux_err for ev in events]).astype(np.float32),
        "lengths": np.array([ev.times.size for ev in events], np.int64),
        "labels": params["label"].astype(np.int8),
        "params": params,
        "origin": origin,
    }
