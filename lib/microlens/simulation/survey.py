"""Survey observing patterns and photometry: times, error curves, noise and outliers.

Samples the :class:`~microlens.simulation.presets.SurveyPreset` entries of the ``survey`` family
(``ogle``, ``kmtnet``, ``moa``, ``roman``); the ``thesis`` marker is the simulator's own path and is
refused here. Pure numpy.

Units: times in days since the preset's ``reference_epoch`` (HJD), magnitudes in the survey's
band, flux in units of the event's baseline flux (``F = 1`` with no event), errors 1 sigma.

Reproducibility: every function draws from the generator it is given, and the sequence of draws
depends only on the preset and on earlier draws, never on the class or the flux values.
:func:`draw_photometry` always draws :data:`PHOTOMETRY_DRAWS` uniforms and :func:`observe` draws
a number that depends only on ``len(clean_flux)``. Suggested order per event::

    phot = draw_photometry(preset, rng)
    times = observation_times(preset, rng, field=phot["field"])
    t_0 = draw_t_0(preset, times, t_E, rng)
    ...  # clean flux from the lens model
    true_err = flux_errors(preset, clean, phot["baseline_mag"])
    flux, reported_err, is_outlier = observe(preset, clean, true_err, phot["error_scale"], rng)
"""

from __future__ import annotations

import functools
import math

import numpy as np

from microlens.simulation.presets import SurveyPreset, get_survey

MAG_TO_FLUX = math.log(10.0) / 2.5
"""d(flux)/flux per magnitude: sigma_F / F = MAG_TO_FLUX * sigma_m (as in
microlens.simulation.simulate)."""

PHOTOMETRY_DRAWS = 4
"""Uniform draws consumed by :func:`draw_photometry`: field, baseline magnitude, f_s, error
scale."""

OBSERVE_DRAWS_PER_POINT = 4
"""Draws per point consumed by :func:`observe`: one normal, three uniforms."""

HOURS_PER_DAY = 24.0

MIN_SEPARATION_DAYS = 60.0 / 86400.0
"""Shortest interval kept between two observations: one exposure (KMTNet's I-band exposures
are 60 s, Kim S.-L. et al. 2016). Sites whose nights overlap can observe within seconds of
each other; such a pair is one measurement for a classifier, and keeping both would put two
times closer than float32 resolves at a few hundred days (~5 s), which models refuse as
repeated times. The later of two closer observations is dropped."""


def _preset(preset: SurveyPreset | str) -> SurveyPreset:
    p = get_survey(preset) if isinstance(preset, str) else preset
    if not isinstance(p, SurveyPreset):
        raise TypeError(f"expected a SurveyPreset or a survey name, got {type(preset).__name__}")
    if p.is_thesis:
        raise ValueError(
            "the 'thesis' survey is the simulator's own path (simulate.survey_times, error "
            "presets); microlens.simulation.survey samples only: "
            + ", ".join(n for n in _survey_names() if n != "thesis")
        )
    return p


def _survey_names() -> list[str]:
    from microlens.simulation.presets import SURVEYS

    return list(SURVEYS)


# --------------------------------------------------------------------------------------------
# Observing pattern
# --------------------------------------------------------------------------------------------


def season_starts(preset: SurveyPreset | str) -> np.ndarray:
    """Start of each season [days since ``reference_epoch``]."""
    p = _preset(preset)
    k = np.arange(p.n_seasons)
    per_year = p.seasons_per_year
    return (k // per_year) * p.year_days + (k % per_year) * (p.year_days / per_year)


def site_midnight_fraction(longitude_deg: float) -> float:
    """Local mean midnight of a site as a fraction of a day after the reference epoch
    (which ends in ``.0``, i.e. noon UT): UT midnight is 0.5, east longitudes are earlier."""
    return (0.5 - longitude_deg / 360.0) % 1.0


def night_windows(preset: SurveyPreset | str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per site, the ``(start, end)`` arrays [days] of every nightly window of every season
    (before weather). Nights are those whose local midnight falls inside a season."""
    return [(start.copy(), end.copy()) for start, end in _night_windows(_preset(preset))]


@functools.lru_cache(maxsize=64)
def _night_windows(p: SurveyPreset) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Cached, read-only :func:`night_windows` (presets are frozen and hashable)."""
    if p.is_space:
        raise ValueError(f"survey {p.name!r} observes from space: it has no nights")
    half = p.night_hours / HOURS_PER_DAY / 2.0
    out = []
    for lon in p.site_longitudes_deg:
        frac = site_midnight_fraction(lon)
        centres = []
        for start in season_starts(p):
            first = math.ceil(start - frac)
            last = math.floor(start + p.season_days - frac - 1e-12)
            centres.append(np.arange(first, last + 1, dtype=np.float64) + frac)
        c = np.concatenate(centres)
        pair = (c - half, c + half)
        for a in pair:
            a.setflags(write=False)
        out.append(pair)
    return tuple(out)


def max_points(preset: SurveyPreset | str) -> int:
    """A hard upper bound on ``len(observation_times(preset, ...))`` over every field and draw
    (for padding arrays)."""
    p = _preset(preset)
    c = max(p.field_cadences_per_hour)
    if p.is_space:
        return p.n_seasons * (math.ceil(p.season_days * HOURS_PER_DAY * c) + 1)
    slots = math.ceil(p.night_hours * c) + 1
    return sum(starts.size * slots for starts, _ in _night_windows(p))


def _weather_lost(n_nights: int, p: SurveyPreset, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of lost nights: alternating clear and lost runs with geometric lengths (mean
    lost run ``weather_run_mean_nights``), started in the stationary state. The number of draws
    depends only on ``n_nights`` and the preset."""
    f = p.weather_loss_fraction
    if f <= 0:
        return np.zeros(n_nights, dtype=bool)
    mean_lost = p.weather_run_mean_nights
    mean_clear = max(mean_lost * (1.0 - f) / f, 1.0)
    n_pairs = int(n_nights / (mean_clear + mean_lost)) + 8
    start_lost = rng.random() < f
    clear = rng.geometric(1.0 / mean_clear, n_pairs)
    lost = rng.geometric(1.0 / mean_lost, n_pairs)
    # Stationary from night 0: the first state is lost with probability f, and since the
    # geometric law is memoryless a fresh run is exactly the residual of the run in progress.
    return alternating_runs(n_nights, start_lost, lost, clear)


def alternating_runs(n: int, start_on: bool, on_runs: np.ndarray,
                     off_runs: np.ndarray) -> np.ndarray:
    """Boolean mask of ``n`` steps made of alternating runs: ``on_runs[0]`` True steps then
    ``off_runs[0]`` False ones when ``start_on`` (else the other way round), and so on; padded
    with False if the runs end before ``n`` (astronomically rare for the callers' run counts).
    The weather of :func:`observation_times` and the thesis survey's gaps
    (:func:`microlens.simulation.simulate.survey_times`) are both such masks."""
    lengths = np.empty(2 * on_runs.size, dtype=np.int64)
    states = np.empty(2 * on_runs.size, dtype=bool)
    first, second = (on_runs, off_runs) if start_on else (off_runs, on_runs)
    lengths[0::2], lengths[1::2] = first, second
    states[0::2], states[1::2] = start_on, not start_on
    mask = np.repeat(states, lengths)
    if mask.size < n:
        mask = np.concatenate([mask, np.zeros(n - mask.size, dtype=bool)])
    return mask[:n]


def draw_field(preset: SurveyPreset | str, u: float) -> int:
    """The field index whose cumulative weight first exceeds the uniform ``u`` in [0, 1)."""
    p = _preset(preset)
    cum = np.cumsum(p.field_weights)
    return int(min(np.searchsorted(cum, u, side="right"), len(cum) - 1))


def _exposures(
    start: np.ndarray,
    end: np.ndarray,
    lost: np.ndarray,
    n_slots: int,
    step: float,
    p: SurveyPreset,
    rng: np.random.Generator,
) -> np.ndarray:
    """Exposures of one site in windows ``[start, end)``: a grid of ``step`` with a random phase
    per window, windows in ``lost`` dropped, each exposure missing with probability
    ``missing_exposure_fraction`` and jittered by ``jitter_fraction * step`` (total width),
    clipped to its window. Draws ``len(start)`` phases, then ``2 * len(start) * n_slots``
    uniforms."""
    phase = rng.random(start.size)
    t = start[:, None] + (phase[:, None] + np.arange(n_slots)[None, :]) * step
    u = rng.random((2, *t.shape))
    keep = (t < end[:, None]) & ~lost[:, None] & (u[1] >= p.missing_exposure_fraction)
    rows = np.nonzero(keep)[0]
    times = t[keep] + (u[0][keep] - 0.5) * (p.jitter_fraction * step)
    return np.minimum(np.maximum(times, start[rows]), end[rows])


def observation_times(
    preset: SurveyPreset | str, rng: np.random.Generator, field: int | None = None
) -> np.ndarray:
    """Observation times of one event [days since ``reference_epoch``], float64, strictly
    increasing.

    Parameters
    ----------
    preset : SurveyPreset or str
        A survey other than ``thesis``.
    rng : numpy.random.Generator
    field : int, optional
        Index into ``field_cadences_per_hour`` (e.g. ``draw_photometry(...)["field"]``); drawn
        from ``field_weights`` with one uniform when not given.
    """
    p = _preset(preset)
    if field is None:
        field = draw_field(p, rng.random())
    if not 0 <= int(field) < len(p.field_cadences_per_hour):
        raise ValueError(f"field must be in [0, {len(p.field_cadences_per_hour)}), got {field!r}")
    cadence_days = p.field_cadences_per_hour[int(field)] * HOURS_PER_DAY  # exposures per day
    step = 1.0 / cadence_days  # [days]

    if p.is_space:
        n_slots = math.ceil(p.season_days * cadence_days) + 1
        starts = season_starts(p)
        lost = np.zeros(starts.size, dtype=bool)
        times = _exposures(starts, starts + p.season_days, lost, n_slots, step, p, rng)
    else:
        n_slots = math.ceil(p.night_hours / HOURS_PER_DAY * cadence_days) + 1
        pieces = []
        for start, end in _night_windows(p):
            lost = _weather_lost(start.size, p, rng)
            pieces.append(_exposures(start, end, lost, n_slots, step, p, rng))
        times = np.concatenate(pieces)
        if len(pieces) > 1:
            times.sort()
    if times.size > 1:  # sites observing within one exposure of each other: keep the first
        apart = np.empty(times.size, dtype=bool)
        apart[0] = True
        np.greater(np.diff(times), MIN_SEPARATION_DAYS, out=apart[1:])
        if not apart.all():
            times = times[apart]
    return times.astype(np.float64, copy=False)


def draw_t_0(
    preset: SurveyPreset | str, times: np.ndarray, t_E: float, rng: np.random.Generator
) -> float:
    """Peak time: uniform from ``t0_margin_te * t_E`` before the first to as much after the
    last observation (partially covered events, peaks in season gaps). One uniform draw."""
    p = _preset(preset)
    margin = p.t0_margin_te * float(t_E)
    low, high = float(times[0]) - margin, float(times[-1]) + margin
    return low + (high - low) * rng.random()


# --------------------------------------------------------------------------------------------
# Photometry
# --------------------------------------------------------------------------------------------


def true_mag_error(preset: SurveyPreset | str, mag) -> np.ndarray:
    """True 1-sigma error [mag] of one measurement at magnitude ``mag`` (vectorised)::

    sigma_m**2 = sigma_floor**2 + sigma_ref**2 * P(m) / P(m_ref),
    P(m) = 10**(0.4 (m - m_ref)) * (1 + 10**(0.4 (m - m_sky)))
    """
    p = _preset(preset)
    m = np.asarray(mag, dtype=np.float64)

    def photon(x):
        return 10.0 ** (0.4 * (x - p.m_ref)) * (1.0 + 10.0 ** (0.4 * (x - p.m_sky)))

    ratio = photon(m) / photon(p.m_ref)
    return np.sqrt(p.sigma_floor**2 + p.sigma_ref**2 * ratio)


def flux_errors(preset: SurveyPreset | str, flux, baseline_mag: float) -> np.ndarray:
    """True 1-sigma flux errors [baseline flux units] of flux ``flux`` [baseline units] of a
    star of baseline magnitude ``baseline_mag``: the error curve at the *current* magnitude
    ``m = baseline_mag - 2.5 log10(F)``, ``sigma_F = MAG_TO_FLUX * sigma_m(m) * F``.
    ``flux`` must be positive (noise-free model flux)."""
    f = np.asarray(flux, dtype=np.float64)
    if np.any(~(f > 0)):
        raise ValueError("flux must be positive (pass the noise-free model flux)")
    m = float(baseline_mag) - 2.5 * np.log10(f)
    return MAG_TO_FLUX * true_mag_error(preset, m) * f


def draw_photometry(preset: SurveyPreset | str, rng: np.random.Generator) -> dict:
    """Per-event draws; always :data:`PHOTOMETRY_DRAWS` uniforms, whatever the values.

    Returns
    -------
    dict
        ``field`` (int index), ``cadence_per_hour`` (that field's per-site cadence),
        ``baseline_mag`` (uniform in ``baseline_mag_range``), ``f_s`` (uniform in
        ``f_s_range``), ``source_mag = baseline_mag - 2.5 log10(f_s)`` (the source alone is
        fainter) and ``error_scale`` (uniform in ``error_underestimate_range``: reported errors
        are the true ones divided by it).
    """
    p = _preset(preset)
    u = rng.random(PHOTOMETRY_DRAWS)
    field = draw_field(p, u[0])
    lo, hi = p.baseline_mag_range
    baseline_mag = lo + (hi - lo) * u[1]
    lo, hi = p.f_s_range
    f_s = lo + (hi - lo) * u[2]
    lo, hi = p.error_underestimate_range
    error_scale = lo + (hi - lo) * u[3]
    return {
        "field": field,
        "cadence_per_hour": float(p.field_cadences_per_hour[field]),
        "baseline_mag": float(baseline_mag),
        "f_s": float(f_s),
        "source_mag": float(baseline_mag - 2.5 * math.log10(f_s)),
        "error_scale": float(error_scale),
    }


def observe(
    preset: SurveyPreset | str, clean_flux, true_err, error_scale: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noisy measurements of ``clean_flux`` with true errors ``true_err``.

    Each point gets Gaussian noise of its true error, except a fraction ``outlier_fraction``
    (independently per point) that is replaced by ``sign * size * true_err`` with ``size``
    uniform in ``outlier_size_range`` and ``sign = +1`` with probability
    ``outlier_positive_fraction``. Reported errors are ``true_err / error_scale``. Draws
    ``len(clean_flux)`` normals, then ``3 * len(clean_flux)`` uniforms, whatever the values.

    Returns
    -------
    flux, reported_err : ndarray (float64)
    is_outlier : ndarray (bool)
    """
    p = _preset(preset)
    clean = np.asarray(clean_flux, dtype=np.float64)
    err = np.asarray(true_err, dtype=np.float64)
    if clean.shape != err.shape or clean.ndim != 1:
        raise ValueError(
            f"clean_flux and true_err must be 1-d of equal length, got "
            f"{clean.shape} and {err.shape}"
        )
    if not (math.isfinite(error_scale) and error_scale > 0):
        raise ValueError(f"error_scale must be a positive number, got {error_scale!r}")
    n = clean.size
    noise = rng.standard_normal(n)
    u = rng.random((3, n))
    is_outlier = u[0] < p.outlier_fraction
    lo, hi = p.outlier_size_range
    size = lo + (hi - lo) * u[1]
    sign = np.where(u[2] < p.outlier_positive_fraction, 1.0, -1.0)
    deviation = np.where(is_outlier, sign * size, noise)
    return clean + deviation * err, err / float(error_scale), is_outlier
