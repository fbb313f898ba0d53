"""Survey observing patterns (microlens.simulation.survey, the ``survey`` preset family).

Statistical tolerances are 5 standard deviations of the quantity under the stated model, derived
from the sample size (binomial, uniform or renewal-process variances), not guesses.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from microlens.simulation import survey
from microlens.simulation.presets import (
    CADENCES,
    DEFAULT_SURVEY,
    ERRORS,
    SURVEYS,
    TOPOLOGIES,
    SurveyPreset,
    get_survey,
)

SAMPLED = [name for name, p in SURVEYS.items() if not p.is_thesis]
GROUND = [name for name in SAMPLED if not SURVEYS[name].is_space]
N_EVENTS = 200


def _events(preset, seed=0, n=N_EVENTS, field=None):
    rng = np.random.default_rng(seed)
    return [survey.observation_times(preset, rng, field=field) for _ in range(n)]


def _single_site(p: SurveyPreset) -> SurveyPreset:
    return dataclasses.replace(p, site_longitudes_deg=p.site_longitudes_deg[:1])


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


def test_registry_has_the_four_surveys_and_the_thesis_marker():
    assert list(SURVEYS) == ["thesis", "ogle", "kmtnet", "moa", "roman"]
    assert DEFAULT_SURVEY == "thesis" and SURVEYS["thesis"].is_thesis
    assert not any(SURVEYS[name].is_thesis for name in SAMPLED)
    # the existing families are untouched
    assert list(TOPOLOGIES) == ["distinct", "planetary", "stellar", "baseline"]
    assert list(CADENCES) == ["cadence_05", "cadence_15", "cadence_30", "cadence_50"]
    assert list(ERRORS) == ["error_003", "error_005", "error_010", "error_015"]


@pytest.mark.parametrize("name", list(SURVEYS))
def test_every_preset_names_its_sources(name):
    p = get_survey(name)
    assert p.sources and all(isinstance(s, str) and len(s) > 10 for s in p.sources)
    assert p.description
    assert dataclasses.is_dataclass(p)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.name = "x"  # type: ignore[misc]


def test_get_survey_names_the_bad_value_and_the_choices():
    with pytest.raises(ValueError, match=r"unknown survey preset 'ogle4'.*thesis, ogle, kmtnet"):
        get_survey("ogle4")
    with pytest.raises(ValueError, match="valid choices"):
        get_survey(None)  # type: ignore[arg-type]


def test_thesis_marker_is_refused_by_the_sampler():
    with pytest.raises(ValueError, match="simulator's own path"):
        survey.observation_times("thesis", np.random.default_rng(0))
    with pytest.raises(ValueError, match="simulator's own path"):
        survey.draw_photometry(SURVEYS["thesis"], np.random.default_rng(0))


def test_invalid_presets_are_rejected():
    p = SURVEYS["ogle"]
    with pytest.raises(ValueError, match="field_weights must sum to 1"):
        dataclasses.replace(p, field_weights=(0.5, 0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="at least one source"):
        dataclasses.replace(p, sources=())
    with pytest.raises(ValueError, match="error_underestimate_range"):
        dataclasses.replace(p, error_underestimate_range=(0.5, 1.0))


# --------------------------------------------------------------------------------------------
# Observing pattern
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLED)
def test_times_are_float64_strictly_increasing_bounded_and_deterministic(name):
    p = get_survey(name)
    a, b = _events(p, seed=3, n=50), _events(p, seed=3, n=50)
    bound = survey.max_points(p)
    for ta, tb in zip(a, b, strict=True):
        assert ta.dtype == np.float64 and np.all(np.diff(ta) > 0)
        assert np.array_equal(ta, tb)
        assert 0 < ta.size <= bound
    assert not all(
        x.size == y.size and np.array_equal(x, y) for x, y in zip(a[:-1], a[1:], strict=True)
    )


@pytest.mark.parametrize("name", GROUND)
def test_season_gaps(name):
    """With two seasons the largest interval is the yearly gap, ``year_days - season_days``,
    lengthened only by weather runs at the season edges: at least ``gap - 1`` (the nightly
    windows straddle the season boundary by under a day) and, on the highest-cadence field,
    at most ``gap + 30`` (a lost run of 15 nights at both edges has probability < 1e-4 with
    mean runs of 2 nights)."""
    p = dataclasses.replace(get_survey(name), n_seasons=2)
    gap = p.year_days - p.season_days
    largest = np.array([np.diff(t).max() for t in _events(p, field=0)])
    assert largest.min() >= gap - 1.0
    assert largest.max() <= gap + 30.0
    assert abs(np.median(largest) - gap) < 3.0


@pytest.mark.parametrize("name", GROUND)
def test_every_point_lies_in_a_nightly_window(name):
    p = get_survey(name)
    windows = survey.night_windows(p)
    slack = 1e-12  # jitter is clipped to the window
    for t in _events(p, n=50):
        inside = np.zeros(t.size, dtype=bool)
        for start, end in windows:
            k = np.searchsorted(start - slack, t, side="right") - 1
            ok = k >= 0
            inside[ok] |= t[ok] <= end[k[ok]] + slack
        assert inside.all()


@pytest.mark.parametrize("name", SAMPLED)
def test_field_cadence_is_the_median_interval_within_a_night(name):
    """Within a night, consecutive exposures of one site are ``1 / cadence`` apart plus the
    difference of two uniform jitters of width ``j / cadence``: the median is ``1 / cadence``,
    its standard error at most ``j / (2 sqrt(n))`` of it (twice that for the correlation of
    neighbouring intervals); intervals over 1.5 steps (missed exposures) are left out."""
    p = _single_site(get_survey(name))
    night = p.night_hours if p.night_hours is not None else 24.0
    for field, cadence in enumerate(p.field_cadences_per_hour):
        if cadence * night < 3:
            continue  # under three exposures a night: no within-night intervals to speak of
        step = 1.0 / (cadence * 24.0)
        d = np.concatenate([np.diff(t) for t in _events(p, n=40, field=field)])
        d = d[d < 1.5 * step] / step
        tolerance = 5 * 2 * p.jitter_fraction / (2 * math.sqrt(d.size))
        assert abs(np.median(d) - 1.0) < tolerance, (name, field)


@pytest.mark.parametrize("name", SAMPLED)
def test_points_per_event_match_the_cadence_weather_and_losses(name):
    """Mean count on each field = sites x nights x hours x cadence x (1 - weather) x
    (1 - missing), within 5 standard errors of the sample mean."""
    p = get_survey(name)
    for field, cadence in enumerate(p.field_cadences_per_hour):
        counts = np.array([t.size for t in _events(p, seed=field, n=100, field=field)])
        if p.is_space:
            expected = p.n_seasons * p.season_days * 24.0 * cadence
        else:
            nights = sum(start.size for start, _ in survey.night_windows(p))
            expected = nights * p.night_hours * cadence * (1 - p.weather_loss_fraction)
        expected *= 1 - p.missing_exposure_fraction
        se = max(counts.std(ddof=1), 1.0) / math.sqrt(counts.size)
        assert abs(counts.mean() - expected) < 5 * se + 1.0, (name, field)


def _renewal_sigma(f: float, mean_lost: float, n_nights: int) -> float:
    """Standard deviation of the lost-night fraction over ``n_nights`` of an alternating
    renewal process with geometric runs (means ``mean_lost`` and ``mean_lost (1-f)/f``)."""
    mean_clear = mean_lost * (1 - f) / f
    var_lost, var_clear = mean_lost * (mean_lost - 1), mean_clear * (mean_clear - 1)
    cycle = mean_lost + mean_clear
    n_cycles = n_nights / cycle
    per_cycle = (1 - f) ** 2 * var_lost + f**2 * var_clear
    return math.sqrt(per_cycle * n_cycles) / (n_cycles * cycle)


@pytest.mark.parametrize("name", [n for n in GROUND if SURVEYS[n].weather_loss_fraction > 0])
def test_weather_loss_fraction(name):
    """Share of nights without any exposure on the highest-cadence field (of one site), against
    ``weather_loss_fraction`` (a clear night with every one of its >= 20 exposures missing
    adds under 1e-20)."""
    p = _single_site(get_survey(name))
    ((start, end),) = survey.night_windows(p)
    lost, total = 0, 0
    for t in _events(p, field=0):
        k = np.searchsorted(start, t, side="right") - 1
        observed = np.unique(k[(k >= 0) & (t <= end[np.clip(k, 0, None)] + 0.05)])
        lost += start.size - observed.size
        total += start.size
    sigma = _renewal_sigma(p.weather_loss_fraction, p.weather_run_mean_nights, total)
    assert abs(lost / total - p.weather_loss_fraction) < 5 * sigma


def test_sites_are_independent_and_longitudinally_separated():
    p = get_survey("kmtnet")
    windows = survey.night_windows(p)
    centres = [((s + e) / 2)[0] % 1.0 for s, e in windows]
    assert len(set(np.round(centres, 6))) == p.sites == 3
    t = _events(p, n=1, field=0)[0]
    # hours of the day covered: three sites reach well beyond one 7-hour night
    hours = np.unique(np.floor((t % 1.0) * 24))
    assert hours.size > p.night_hours + 4


def test_roman_is_continuous_fifteen_minutes():
    p = get_survey("roman")
    for t in _events(p, n=20):
        assert t.size == 72 * 96 == 6912
        assert np.diff(t).max() < 1.5 / 96


def test_draw_t_0_reaches_beyond_the_observed_span():
    p = get_survey("ogle")
    rng = np.random.default_rng(5)
    t = survey.observation_times(p, rng)
    t_0 = np.array([survey.draw_t_0(p, t, 20.0, rng) for _ in range(2000)])
    margin = p.t0_margin_te * 20.0
    assert t_0.min() >= t[0] - margin and t_0.max() <= t[-1] + margin
    assert (t_0 < t[0]).any() and (t_0 > t[-1]).any()


# --------------------------------------------------------------------------------------------
# Photometry
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLED)
def test_error_curve(name):
    p = get_survey(name)
    assert survey.true_mag_error(p, p.m_ref) == pytest.approx(
        math.hypot(p.sigma_floor, p.sigma_ref)
    )
    assert survey.true_mag_error(p, p.m_ref - 12) == pytest.approx(p.sigma_floor, rel=1e-3)
    m = np.linspace(10, 26, 50)
    err = survey.true_mag_error(p, m)
    assert err.shape == m.shape and np.all(np.diff(err) > 0)
    # faint end: background-limited, the error grows by 10**0.4 per magnitude
    assert err[-1] / err[-4] == pytest.approx(10 ** (0.4 * (m[-1] - m[-4])), rel=0.05)


@pytest.mark.parametrize(("name", "mag", "expected"), [
    ("ogle", 15.0, 0.0076), ("ogle", 18.0, 0.0303), ("ogle", 21.0, 0.2731),
    ("kmtnet", 18.0, 0.0304), ("moa", 20.0, 0.2196), ("roman", 19.0, 0.0014),
    ("roman", 25.0, 0.0941),
])  # fmt: skip
def test_error_curve_reference_values(name, mag, expected):
    assert float(survey.true_mag_error(name, mag)) == pytest.approx(expected, abs=1e-4)


def test_flux_errors_follow_the_current_magnitude():
    p = get_survey("ogle")
    flux = np.array([1.0, 2.0, 10.0])
    sigma = survey.flux_errors(p, flux, 19.0)
    m = 19.0 - 2.5 * np.log10(flux)
    assert np.allclose(sigma, survey.MAG_TO_FLUX * survey.true_mag_error(p, m) * flux)
    assert sigma[0] == pytest.approx(survey.MAG_TO_FLUX * survey.true_mag_error(p, 19.0))
    assert np.all(sigma / flux > 0) and sigma[2] / flux[2] < sigma[0] / flux[0]
    with pytest.raises(ValueError, match="positive"):
        survey.flux_errors(p, np.array([1.0, -0.1]), 19.0)


@pytest.mark.parametrize("name", SAMPLED)
def test_draw_photometry_ranges_weights_and_fixed_draw_count(name):
    p = get_survey(name)
    n = 20000
    rng = np.random.default_rng(7)
    draws = [survey.draw_photometry(p, rng) for _ in range(n)]
    # exactly PHOTOMETRY_DRAWS uniforms per call
    ref = np.random.default_rng(7)
    ref.random(n * survey.PHOTOMETRY_DRAWS)
    assert rng.random() == ref.random()
    scale = np.array([d["error_scale"] for d in draws])
    lo, hi = p.error_underestimate_range
    assert scale.min() >= lo and scale.max() <= hi
    assert abs(scale.mean() - (lo + hi) / 2) <= 5 * (hi - lo) / math.sqrt(12 * n)
    base = np.array([d["baseline_mag"] for d in draws])
    assert base.min() >= p.baseline_mag_range[0] and base.max() <= p.baseline_mag_range[1]
    f_s = np.array([d["f_s"] for d in draws])
    src = np.array([d["source_mag"] for d in draws])
    assert np.allclose(src, base - 2.5 * np.log10(f_s)) and np.all(src >= base)
    fields = np.array([d["field"] for d in draws])
    for k, w in enumerate(p.field_weights):
        assert abs(np.mean(fields == k) - w) <= 5 * math.sqrt(w * (1 - w) / n) + 1e-12
    assert all(d["cadence_per_hour"] == p.field_cadences_per_hour[d["field"]] for d in draws)


@pytest.mark.parametrize("name", SAMPLED)
def test_observe_noise_outliers_and_underestimate(name):
    p = get_survey(name)
    n = 200_000
    rng = np.random.default_rng(11)
    clean = 1.0 + rng.random(n)
    err = survey.flux_errors(p, clean, 18.0)
    flux, reported, is_out = survey.observe(p, clean, err, 1.4, rng)
    assert np.allclose(reported, err / 1.4)
    f = p.outlier_fraction
    assert abs(is_out.mean() - f) <= 5 * math.sqrt(f * (1 - f) / n)
    z = (flux - clean) / err
    good = z[~is_out]
    assert abs(good.std() - 1.0) < 5 / math.sqrt(2 * good.size)
    assert abs(good.mean()) < 5 / math.sqrt(good.size)
    if is_out.sum():
        size = np.abs(z[is_out])
        lo, hi = p.outlier_size_range
        assert size.min() >= lo and size.max() <= hi
        k, q = int(is_out.sum()), p.outlier_positive_fraction
        assert abs(np.mean(z[is_out] > 0) - q) <= 5 * math.sqrt(q * (1 - q) / k)


def test_observe_draw_count_depends_only_on_length():
    p = get_survey("ogle")
    a, b = np.random.default_rng(2), np.random.default_rng(2)
    flat = np.ones(500)
    bump = 1.0 + 50 * np.exp(-(np.linspace(-5, 5, 500) ** 2))
    survey.observe(p, flat, survey.flux_errors(p, flat, 20.0), 1.0, a)
    survey.observe(p, bump, survey.flux_errors(p, bump, 16.0), 1.9, b)
    assert a.random() == b.random()
    # ... and it is len normals then 3 * len uniforms
    c = np.random.default_rng(2)
    c.standard_normal(500)
    c.random(3 * 500)
    c.random()
    assert a.random() == c.random()


def test_observe_is_deterministic_and_validates():
    p = get_survey("moa")
    clean = np.linspace(1, 3, 100)
    err = survey.flux_errors(p, clean, 19.0)
    one = survey.observe(p, clean, err, 1.2, np.random.default_rng(4))
    two = survey.observe(p, clean, err, 1.2, np.random.default_rng(4))
    assert all(np.array_equal(x, y) for x, y in zip(one, two, strict=True))
    with pytest.raises(ValueError, match="error_scale"):
        survey.observe(p, clean, err, 0.0, np.random.default_rng(4))
    with pytest.raises(ValueError, match="equal length"):
        survey.observe(p, clean, err[:-1], 1.0, np.random.default_rng(4))


def test_overlapping_sites_never_put_two_observations_within_one_exposure():
    from microlens.simulation.survey import MIN_SEPARATION_DAYS

    rng = np.random.default_rng(4)
    for _ in range(20):
        times = survey.observation_times("kmtnet", rng)
        assert np.diff(times).min() > MIN_SEPARATION_DAYS
        assert np.all(np.diff(times.astype(np.float32)) > 0)  # what a model reads
