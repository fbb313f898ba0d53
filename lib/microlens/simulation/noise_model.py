"""A survey noise model fitted on real baselines: what the sky adds to a pipeline's error bars.

Real OGLE-IV photometry of a star without an event (its baseline segment,
:func:`microlens.photometry.ews.baseline_end`) departs from "Gaussian noise of the reported error"
in ways a
classifier trained on clean noise reads as signal (:mod:`microlens.reports.noise_statistics`
measures them). Each real star is described by seven numbers, estimated from its own baseline:

``white_scale``, ``correlated_scale``
    ``k_w = k_tot sqrt(1 - s)`` and ``k_c = k_tot sqrt(s)``: the scatter in units of the
    reported errors (``k_tot``, the robust scatter of ``z``, the normalised residuals from the
    season median) split into a white part and a part that moves together from night to
    night. The correlated share ``s`` is what is not white within a night,
    ``1 - (k_pairs / k_tot)**2`` (``k_pairs``: 1.4826 × the median absolute deviation of
    ``(z_i - z_j) / sqrt(2)`` over consecutive points less than :data:`PAIR_DAYS` apart), and
    at most the amplitude of the exponential fitted to the autocorrelations across nights
    (:func:`correlation_fit`): scatter shared by the points of one night only is white to
    every statistic read across nights.
``correlation_days``
    ``tau_c``: its correlation time, an exponential fitted to the residuals' autocorrelation
    at 1, 10 and 100 days (:func:`correlation_days`, within [1, 200] d); where it cannot be
    measured, the median of the stars of its magnitude bin that have it.
``season_sigma``
    The root-mean-square offset of one season's median from another's (relative flux) over
    seasons at most :data:`SEASON_STEPS` apart (those a simulated span holds), less what the
    noise of the medians explains; a drift of the level over the years is not counted.
``outlier_rate``
    The share of points more than 5 robust standard deviations from their season's median.
``profile_slope``, ``profile_curvature``
    A pattern that repeats through every season, in units of the reported errors
    (:func:`season_profile`): the coefficients of the time from the season's mean time and of
    its square (:func:`season_profile_basis`, per :data:`PROFILE_DAYS` days), shared by all the
    star's seasons and shrunk by what its noise alone would fit. The sky's residuals carry one
    (as a field's airmass and hour angle, which change through its observing season, would
    give): taking it out brings their 100-day autocorrelation from below zero to about zero.
    It is fitted first, and the scatter numbers above are measured on the residuals without
    it.

A simulated star of baseline magnitude ``m`` takes the seven numbers of a real star of the same
magnitude bin (:data:`microlens.reports.noise_statistics.MAG_EDGES`), drawn at random: the model is
the table of real stars itself, so the numbers keep their joint distribution. Its flux is
``F = A (1 + d_season) + sigma (k_w e + k_c c(t) + p(t))`` plus, at the outlier rate, points
replaced by ``F = A + s sigma`` with ``|s|`` uniform in [5, 20] (``A`` the clean flux, ``sigma``
the reported error, ``e`` white normal, ``c`` a unit Ornstein-Uhlenbeck process of time
``tau_c``, ``d_season`` a normal offset per season of the star's ``season_sigma``, ``p`` its
season profile); the
reported errors stay those of the survey's error curve.

``k_w`` and ``k_c`` may come from the last days of each baseline only (``recent_days`` of
:func:`fit_noise_model`): OGLE-IV's scatter has fallen over the years, and the seasons next to
an event are the ones a classifier sees; the correlation time, seasonal offsets and outlier
rate keep the whole baseline's seasons. Where the last days hold too few close pairs to split
the scatter (sparsely observed fields), their total scatter still sets its level and the whole
baseline's split between white and correlated is kept.

The shipped model (:data:`SHIPPED`) is fitted on the baselines of the stars of the shipped
subset of the 2025 OGLE EWS season (``data/real/``; Udalski et al. 2015, AcA 65, 1; Udalski
2003, AcA 53, 291), its scatter from the last :data:`SHIPPED_RECENT_DAYS` days: score real
data with a model trained on it only on other stars. To train on other stars' noise, fit a
model on them (``python -m microlens.simulation.noise_model FOLDER --stars FILE --out PATH``) and
name it in ``SimulationConfig.noise_model``.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from microlens.simulation.residual_statistics import (
    MAG_EDGES,
    OUTLIER_SIGMA,
    last_days,
    seasons,
)

PAIR_DAYS = 0.3
"""Largest separation [days] of two points whose difference measures the white scatter."""

MIN_PAIRS = 20
"""Fewest same-night pairs for ``white_scale``; a star with fewer uses pairs within 1.5 d."""

COLUMNS = ("mag", "white_scale", "correlated_scale", "correlation_days", "season_sigma",
           "outlier_rate", "profile_slope", "profile_curvature")
"""The columns of a model's table, one row per real star."""

PROFILE_COLUMNS = ("profile_slope", "profile_curvature")
"""The season profile's columns, which models of the first schema lack (read as zero)."""

MAX_SEASONS = 32
"""Season offsets drawn per event, whatever its number of seasons (a fixed number of draws)."""

SEASON_STEPS = 2
"""``season_sigma`` comes from the offsets between seasons at most this many seasons apart: those
a simulated span (the ``ogle`` preset's 605.25 days, two or three seasons) holds."""

OUTLIER_SIZE = (5.0, 20.0)
"""Size of an outlier [reported errors], uniform."""

SHIPPED_RECENT_DAYS = 605.25
"""The shipped model's scatter comes from the last this many days of each baseline (the
``ogle`` preset's span)."""

SHIPPED = Path(__file__).resolve().parents[3] / "data" / "noise" / "ogle_ews_2025_subset.json"
"""The model fitted on the shipped subset's stars (``python -m
microlens.simulation.noise_model``)."""

SCHEMA = "microlens.noise_model/2"  # a format name, not a module path: files keep it
FIRST_SCHEMA = "microlens.noise_model/1"
"""Models written before the season profile: read with a flat profile."""


@dataclass(frozen=True)
class NoiseModel:
    """A table of real stars' noise parameters (module docstring).

    Attributes
    ----------
    table : ndarray (float64, shape (n_stars, len(COLUMNS)))
    source : str
        Where the stars came from (the folder, the citation).
    stars : tuple of str
        The stars fitted: never score a model trained on this noise on them.
    """

    table: np.ndarray
    source: str
    stars: tuple[str, ...]

    def __post_init__(self) -> None:
        table = np.asarray(self.table, dtype=np.float64)
        if table.ndim != 2 or table.shape[1] != len(COLUMNS) or table.shape[0] == 0:
            raise ValueError(f"a noise model's table has one row per star and the columns "
                             f"{', '.join(COLUMNS)}; got shape {table.shape}")
        if not np.all(np.isfinite(table)):
            raise ValueError("a noise model's table must be finite")
        object.__setattr__(self, "table", table)

    def column(self, name: str) -> np.ndarray:
        return self.table[:, COLUMNS.index(name)]

    def rows_near(self, mag: float) -> np.ndarray:
        """Rows of the stars in ``mag``'s magnitude bin (the nearest non-empty bin)."""
        bins = np.digitize(self.column("mag"), MAG_EDGES)
        wanted = int(np.digitize([mag], MAG_EDGES)[0])
        for distance in range(len(MAG_EDGES) + 1):
            for b in (wanted - distance, wanted + distance):
                rows = np.flatnonzero(bins == b)
                if rows.size:
                    return rows
        raise AssertionError("unreachable: the table has rows")

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "source": self.source, "columns": list(COLUMNS),
                "stars": list(self.stars), "table": self.table.tolist()}

    def save(self, path: str | os.PathLike) -> Path:
        from microlens.core.paths import write_json_atomic

        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike = SHIPPED) -> NoiseModel:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no noise model at {path}; write one with python -m "
                f"microlens.simulation.noise_model "
                "FOLDER --stars FILE --out PATH") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: not a noise model (not JSON: {error})") from None
        first = [c for c in COLUMNS if c not in PROFILE_COLUMNS]
        if data.get("schema") == FIRST_SCHEMA and data.get("columns") == first:
            table = np.asarray(data["table"], dtype=np.float64)
            table = np.hstack([table, np.zeros((table.shape[0], len(PROFILE_COLUMNS)))])
            return cls(table, data["source"], tuple(data["stars"]))
        if data.get("schema") != SCHEMA or data.get("columns") != list(COLUMNS):
            raise ValueError(f"{path}: not a noise model of schema {SCHEMA} with columns "
                             f"{', '.join(COLUMNS)}")
        return cls(np.asarray(data["table"]), data["source"], tuple(data["stars"]))


def _robust_sigma(x: np.ndarray) -> float:
    return 1.4826 * float(np.median(np.abs(x - np.median(x)))) if x.size else math.nan


CORRELATION_DAYS_GRID = np.geomspace(1.0, 200.0, 241)
"""Correlation times [days] :func:`correlation_days` chooses from."""


def correlation_fit(acf: Mapping[str, float]) -> tuple[float, float]:
    """The correlation time and amplitude ``(tau, c)`` of an exponential ``c exp(-lag / tau)``
    fitted by least squares to the autocorrelations at 1, 10 and 100 days
    (:data:`~microlens.simulation.residual_statistics.LAG_WINDOWS`; ``c >= 0`` fitted for each
    ``tau`` of :data:`CORRELATION_DAYS_GRID`). All three lags count: a correlation gone by 100
    days (the sky's is about zero there) bounds ``tau`` even where the 1- and 10-day values
    alone would allow months. ``(NaN, 0)`` where the 1-day autocorrelation is at most 0.02
    (nothing to measure) or a lag has no pairs."""
    from microlens.simulation.residual_statistics import LAG_WINDOWS

    lags = np.array([0.5 * (lo + hi) for lo, hi in LAG_WINDOWS.values()])
    rho = np.array([acf[name] for name in LAG_WINDOWS])
    if not np.all(np.isfinite(rho)) or rho[0] <= 0.02:
        return math.nan, 0.0
    shapes = np.exp(-lags[None, :] / CORRELATION_DAYS_GRID[:, None])
    scale = np.maximum(shapes @ rho / np.sum(shapes ** 2, axis=1), 0.0)
    misfit = np.sum((rho[None, :] - scale[:, None] * shapes) ** 2, axis=1)
    best = int(np.argmin(misfit))
    return float(CORRELATION_DAYS_GRID[best]), float(scale[best])


def correlation_days(acf: Mapping[str, float]) -> float:
    """The correlation time of :func:`correlation_fit` (NaN where nothing is measured)."""
    return correlation_fit(acf)[0]


def _season_residuals(t: np.ndarray, f: np.ndarray, e: np.ndarray):
    """Season index of each point, each season's median flux, and the residuals from it in
    units of the reported errors."""
    season = seasons(t)
    medians = np.array([np.median(f[season == s]) for s in range(season[-1] + 1)])
    return season, medians, (f - medians[season]) / e


def total_scale(times, flux, flux_err) -> float:
    """The robust scatter of a curve's residuals from its season medians, in units of the
    reported errors (``k_tot`` of :func:`star_parameters`); NaN for fewer than 20 points."""
    from microlens.simulation.residual_statistics import curve_statistics

    t, f, e = (np.asarray(a, dtype=np.float64) for a in (times, flux, flux_err))
    if curve_statistics(t, f, e) is None:
        return math.nan
    return _robust_sigma(_season_residuals(t, f, e)[2])


PROFILE_DAYS = 100.0
"""The unit of time [days] of the season profile's coefficients."""


def season_profile_basis(times: np.ndarray, season: np.ndarray) -> np.ndarray:
    """The two shapes of a season profile at each time, shape ``(n, 2)``: the time from its
    season's mean time, and that squared less its season's mean square, both in units of
    :data:`PROFILE_DAYS` (each has mean zero within every season, so a profile never moves a
    season's level)."""
    counts = np.bincount(season).astype(np.float64)
    counts[counts == 0] = 1.0
    centred = (times - (np.bincount(season, weights=times) / counts)[season]) / PROFILE_DAYS
    square = centred ** 2
    return np.stack([centred, square - (np.bincount(season, weights=square) / counts)[season]],
                    axis=1)


def _exponential_kernel_times(times: np.ndarray, x: np.ndarray, tau: float) -> np.ndarray:
    """``K @ x`` for ``K[i, j] = exp(-|t_i - t_j| / tau)`` in O(n) (sorted times): running
    sums forwards and backwards, in blocks short enough for the exponentials to stay finite."""
    def forwards(t, v):
        out = np.empty_like(v)
        carry, last, start = np.zeros(v.shape[1]), t[0], 0
        while start < t.size:
            stop = int(np.searchsorted(t, t[start] + 500.0 * tau, side="left"))
            stop = max(stop, start + 1)
            origin = t[start]
            grow = np.exp((t[start:stop] - origin) / tau)[:, None]
            inherited = carry * math.exp(-(origin - last) / tau)
            out[start:stop] = np.cumsum(grow * v[start:stop], axis=0) / grow + inherited / grow
            carry, last, start = out[stop - 1], t[stop - 1], stop
        return out

    ahead = forwards(times, x)
    behind = forwards(-times[::-1], x[::-1])[::-1]
    return ahead + behind - x


def season_profile(times, basis, z, white: float, correlated: float,
                   tau: float) -> np.ndarray:
    """The coefficients of a star's season profile, shared by all its seasons: a pattern that
    repeats through every season, as one that follows the field's airmass and hour angle over
    the observing season would.

    ``basis`` is :func:`season_profile_basis` at ``times``; ``z`` are the residuals from the
    season medians in units of the reported errors. The
    least-squares coefficients are shrunk by ``sqrt(max(0, 1 - 2 / chi2))``, ``chi2`` their
    squared size against their covariance under the star's white and correlated noise
    (``white``, ``correlated``, ``tau``): the noise's own share of a fitted profile is taken
    out, so that a star without a profile gets about none and drawing the profile back does
    not add the noise twice."""
    gram = basis.T @ basis
    if np.linalg.cond(gram) > 1e10:
        return np.zeros(2)
    inverse = np.linalg.inv(gram)
    coefficients = inverse @ (basis.T @ z)
    noise = white ** 2 * gram
    if correlated > 0 and math.isfinite(tau):
        noise = noise + correlated ** 2 * (basis.T @ _exponential_kernel_times(times, basis, tau))
    covariance = inverse @ noise @ inverse
    chi2 = float(coefficients @ np.linalg.solve(covariance, coefficients))
    return coefficients * math.sqrt(max(0.0, 1.0 - 2.0 / chi2)) if chi2 > 0 else coefficients * 0


def _scatter_numbers(t, z, pairs) -> tuple[float, float, float, float]:
    """White and correlated scales, correlation time and total scatter of residuals ``z``."""
    from microlens.simulation.residual_statistics import autocorrelations

    white = _robust_sigma((z[1:] - z[:-1])[pairs] / math.sqrt(2.0))
    total = _robust_sigma(z)
    tau, amplitude = correlation_fit(autocorrelations(t, z))
    # the share of the variance that moves together from night to night: what is not white
    # within a night, and no more than the autocorrelations across nights show (scatter shared
    # by the points of one night only is white to every statistic read across nights)
    share = min(max(1.0 - (white / total) ** 2, 0.0), min(amplitude, 1.0)) if total > 0 else 0.0
    correlated = total * math.sqrt(share)
    white = total * math.sqrt(1.0 - share) if total > 0 else white
    return white, correlated, tau, total


def star_parameters(times, flux, flux_err) -> dict[str, float] | None:
    """The noise numbers of one star's baseline (module docstring); None for fewer than 20
    points or a single season without pairs."""
    from microlens.simulation.residual_statistics import curve_statistics

    t, f, e = (np.asarray(a, dtype=np.float64) for a in (times, flux, flux_err))
    if curve_statistics(t, f, e) is None:  # checks the arrays; None when too short
        return None
    season, medians, z = _season_residuals(t, f, e)
    gaps = np.diff(t)
    pairs = (gaps < PAIR_DAYS) & (season[1:] == season[:-1])
    if pairs.sum() < MIN_PAIRS:
        pairs = (gaps < 1.5) & (season[1:] == season[:-1])
    if pairs.sum() < MIN_PAIRS:
        return None
    # the profile is fitted against the noise measured with it, and the noise measured again
    # without it: the correlated part should not hold the profile's variance twice
    basis = season_profile_basis(t, season)
    profile = season_profile(t, basis, z, *_scatter_numbers(t, z, pairs)[:3])
    z = z - basis @ profile
    white, correlated, tau, total = _scatter_numbers(t, z, pairs)
    counts = np.bincount(season)
    level = float(np.median(medians))
    usable = counts >= 10
    if usable.sum() >= 2:
        offsets = medians[usable] / level - 1.0
        # the median of n points scatters by ~1.2533 sigma / sqrt(n)
        noise = np.array([np.mean((1.2533 * total * e[season == s] / f[season == s]) ** 2)
                          / counts[s] for s in np.flatnonzero(usable)])
        # from the steps between seasons at most SEASON_STEPS apart, each 2 sigma^2 for
        # independent offsets: a drift over the years (which the rms about all seasons' median
        # would count) is not an offset that a window of two or three seasons sees
        steps = np.concatenate([
            (offsets[lag:] - offsets[:-lag]) ** 2 - (noise[lag:] + noise[:-lag])
            for lag in range(1, min(SEASON_STEPS, offsets.size - 1) + 1)])
        season_sigma = math.sqrt(max(float(np.mean(steps)) / 2.0, 0.0))
    else:
        season_sigma = 0.0
    deviation = np.abs(z) / total if total > 0 else np.zeros_like(z)
    return {"white_scale": white, "correlated_scale": correlated, "correlation_days": tau,
            "season_sigma": season_sigma,
            "outlier_rate": float(np.mean(deviation > OUTLIER_SIGMA)),
            "profile_slope": float(profile[0]), "profile_curvature": float(profile[1])}


def recent_scatter(numbers: Mapping[str, float], curve, recent_days: float) -> dict:
    """``white_scale`` and ``correlated_scale`` of the last ``recent_days`` days of a baseline.

    Where those days hold too few close pairs to split the scatter into its white and
    correlated parts (a sparsely observed field), their total scatter still sets the level and
    the whole baseline's split is kept: both scales times the ratio of the recent total scatter
    to the whole baseline's. Falling back on the whole baseline's level instead would give
    these stars the larger scatter of OGLE-IV's early seasons."""
    recent_curve = last_days(*curve, recent_days)
    recent = star_parameters(*recent_curve)
    if recent is not None:
        return {"white_scale": recent["white_scale"],
                "correlated_scale": recent["correlated_scale"]}
    white, correlated = numbers["white_scale"], numbers["correlated_scale"]
    whole = math.hypot(white, correlated)
    level = total_scale(*recent_curve)
    if not (math.isfinite(level) and whole > 0):
        return {}
    return {"white_scale": white * level / whole, "correlated_scale": correlated * level / whole}


def fit_noise_model(folder=None, stars: Iterable[str] | None = None,
                    max_snr: float = 2.0, recent_days: float | None = None) -> NoiseModel:
    """Fit the model on the baselines of the stars of an EWS folder.

    Parameters
    ----------
    folder : path, optional
        A folder in the EWS layout; None: the shipped subset.
    stars : iterable of str, optional
        Only these stars (e.g. training stars; never the stars to be scored).
    max_snr : float
        Where each baseline ends (:func:`microlens.photometry.ews.baseline_end`).
    recent_days : float, optional
        Measure the scatter (``white_scale``, ``correlated_scale``) on the last
        ``recent_days`` days of each baseline, the seasons next to the event (OGLE-IV's
        scatter has fallen over the years); the correlation time, seasonal offsets and
        outlier rate still come from the whole baseline, which holds more seasons. None: all
        from the whole baseline.
    """
    from microlens.core.paths import project_relative
    from microlens.photometry import ews
    from microlens.photometry.ews import CITATION

    folder = ews.shipped_subset() if folder is None else folder
    rows, names = [], []
    for event, segment in ews.baseline_segments(folder, stars, max_snr):
        curve = segment.absolute_times(), segment.flux, segment.flux_err
        numbers = star_parameters(*curve)
        if recent_days is not None and numbers is not None:
            numbers.update(recent_scatter(numbers, curve, recent_days))
        if numbers is not None:
            rows.append([event.fit.i_bl, *(numbers[c] for c in COLUMNS[1:])])
            names.append(event.star)
    if not rows:
        raise ValueError(f"no star of {folder} has a baseline the noise model can be fitted on")
    table = np.array(rows)
    tau = table[:, COLUMNS.index("correlation_days")]
    bins = np.digitize(table[:, 0], MAG_EDGES)
    fallback = float(np.nanmedian(tau)) if np.isfinite(tau).any() else 10.0
    for b in np.unique(bins):
        here = bins == b
        known = tau[here & np.isfinite(tau)]
        tau[here & ~np.isfinite(tau)] = float(np.median(known)) if known.size else fallback
    recent = ("" if recent_days is None else
              f" (scatter from the last {recent_days:g} days of each baseline)")
    return NoiseModel(table, f"{project_relative(folder)}{recent}; {CITATION}", tuple(names))


def shipped_model() -> NoiseModel:
    """The shipped model (:data:`SHIPPED`), read once per process."""
    return model_file(None)


def model_file(path: str | os.PathLike | None) -> NoiseModel:
    """The model saved at ``path`` (relative: from the project root; None: :data:`SHIPPED`),
    read once per process, path and version of the file (a model refitted in place, written
    atomically as a new file, is read again)."""
    from microlens.core.paths import resolve_path

    resolved = str(SHIPPED if path is None else resolve_path(path))
    try:
        stat = os.stat(resolved)
    except FileNotFoundError:
        return NoiseModel.load(resolved)  # raises its message naming the file and the remedy
    return _load_cached(resolved, stat.st_ino, stat.st_mtime_ns, stat.st_size)


def model_identity(path: str | os.PathLike | None) -> dict:
    """Which noise model a data set was drawn with, for its manifest: the file (project-relative
    where it can be), the sha256 of its bytes and its number of stars. The shipped model is
    refitted when the fit improves, so its path alone does not say which one it was."""
    import hashlib

    from microlens.core.paths import project_relative, resolve_path

    stars = len(model_file(path).stars)  # a missing or foreign file: its clear error first
    resolved = Path(SHIPPED if path is None else resolve_path(path))
    data = resolved.read_bytes()
    return {"path": project_relative(resolved), "sha256": hashlib.sha256(data).hexdigest(),
            "stars": stars}


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, inode: int, mtime_ns: int, size: int) -> NoiseModel:
    return NoiseModel.load(path)


NOISE_DRAWS_PER_POINT = 5
"""Draws per point of :func:`observe_with_model`: three normals, two uniforms."""


def observe_with_model(model: NoiseModel, times, clean_flux, reported_err, baseline_mag: float,
                       rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Noisy fluxes of ``clean_flux`` under a real star's noise (module docstring).

    Draws one uniform, :data:`MAX_SEASONS` normals and :data:`NOISE_DRAWS_PER_POINT` numbers
    per point, whatever the values.

    Returns
    -------
    flux : ndarray (float64)
    star : dict
        The real star's numbers used (``COLUMNS``) and ``n_outliers``.
    """
    t = np.asarray(times, dtype=np.float64)
    clean = np.asarray(clean_flux, dtype=np.float64)
    sigma = np.asarray(reported_err, dtype=np.float64)
    if not (t.shape == clean.shape == sigma.shape) or t.ndim != 1:
        raise ValueError(f"times, clean_flux and reported_err must be 1-d of one length, got "
                         f"{t.shape}, {clean.shape}, {sigma.shape}")
    n = t.size
    rows = model.rows_near(baseline_mag)
    star = dict(zip(COLUMNS, model.table[rows[min(int(rng.random() * rows.size),
                                                   rows.size - 1)]], strict=True))
    season_offsets = rng.standard_normal(MAX_SEASONS) * star["season_sigma"]
    white, innovations, _ = rng.standard_normal((3, n))  # the third normal: outlier sign
    u = rng.random((2, n))
    season = seasons(t) if n else np.zeros(0, int)
    decay = np.exp(-np.diff(t) / star["correlation_days"]) if n > 1 else np.zeros(0)
    wander = np.empty(n)
    if n:
        wander[0] = innovations[0]
        for i in range(1, n):
            wander[i] = decay[i - 1] * wander[i - 1] + math.sqrt(
                1.0 - decay[i - 1] ** 2) * innovations[i]
    profile = season_profile_basis(t, season) @ np.array(
        [star["profile_slope"], star["profile_curvature"]])
    flux = (clean * (1.0 + season_offsets[np.minimum(season, MAX_SEASONS - 1)])
            + sigma * (star["white_scale"] * white + star["correlated_scale"] * wander + profile))
    is_outlier = u[0] < star["outlier_rate"]
    size = OUTLIER_SIZE[0] + (OUTLIER_SIZE[1] - OUTLIER_SIZE[0]) * u[1]
    sign = np.where(_ < 0, -1.0, 1.0)
    flux = np.where(is_outlier, clean + sign * size * sigma, flux)
    return flux, {**star, "n_outliers": int(is_outlier.sum())}


def main(argv: list[str]) -> int:
    """``python -m microlens.simulation.noise_model [FOLDER] [--stars FILE] [--out JSON]``: fit the
    noise
    model on the baselines of an EWS folder (default: the shipped subset) and write it (default:
    the shipped model's path); prints its table's medians per magnitude bin."""
    import argparse

    from microlens.core.cli import TerminalHelpFormatter
    from microlens.photometry.ews import read_stars
    from microlens.simulation.residual_statistics import magnitude_bin_labels

    parser = argparse.ArgumentParser(prog="python -m microlens.simulation.noise_model",
                                     description=main.__doc__,
                                     formatter_class=TerminalHelpFormatter)
    parser.add_argument("folder", nargs="?", help="a folder in the EWS layout")
    parser.add_argument("--stars", help="a file of the stars to fit on (one a line)")
    parser.add_argument("--out", default=str(SHIPPED), help="where to write the model")
    parser.add_argument("--recent-days", type=float, default=SHIPPED_RECENT_DAYS,
                        help="measure the scatter on the last days of each baseline (default: "
                             "the ogle preset's span, as the shipped model); 0: the whole "
                             "baseline")
    args = parser.parse_args(argv)
    if not (math.isfinite(args.recent_days) and args.recent_days >= 0):
        parser.error(f"--recent-days must be a finite number >= 0, got {args.recent_days}")
    model = fit_noise_model(args.folder, None if args.stars is None else read_stars(args.stars),
                            recent_days=args.recent_days or None)
    model.save(args.out)
    bins = np.digitize(model.column("mag"), MAG_EDGES)
    summary: dict[str, Mapping] = {}
    for k, label in enumerate(magnitude_bin_labels()):
        here = model.table[bins == k]
        summary[label] = {"stars": int(here.shape[0]), **{
            c: (float(np.median(here[:, j])) if here.size else None)
            for j, c in enumerate(COLUMNS) if c != "mag"}}
    print(json.dumps({"out": args.out, "stars": len(model.stars), "medians": summary},
                     indent=1))
    return 0


if __name__ == "__main__":
    import sys

    from microlens.core.cli import command_line

    sys.exit(command_line(main)())
