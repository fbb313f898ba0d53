"""Contaminants that fool real microlensing searches (young stars, season drifts) in class 0,
behind ``SimulationConfig.contaminants`` (default ``classic``: every data set as before)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_same_arrays
from test_variables import mag, row

from microlens.data.store import generate_dataset, open_dataset
from microlens.simulation import variables as V
from microlens.simulation.simulate import (
    CONTAMINANT_CHOICES,
    LATER_FIELDS,
    SimulationConfig,
    event_label,
    simulate_event,
)
from microlens.simulation.variables import (
    CONTAMINANT_MIXES,
    VARIABLE_KINDS,
    describe_variable,
    draw_variable,
    variable_flux,
)

NEW_KINDS = ("young_star", "season_drift")




def young(shape: float, **values) -> dict:
    base = dict(var_shape=shape, var_amplitude=0.5, var_timescale=3.0, var_period=10.0,
                var_phase=0.2, var_ratio=0.1, var_seed=12345)
    return row("young_star", **{**base, **values})


def drift(**values) -> dict:
    base = dict(var_amplitude=0.0, var_width=0.0, var_ratio=0.0, var_seed=777)
    return row("season_drift", **{**base, **values})


def events(dm: np.ndarray, threshold: float) -> list[slice]:
    """Runs of consecutive samples with ``dm > threshold``."""
    above = np.concatenate([[False], dm > threshold, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(above))
    return [slice(a, b) for a, b in zip(edges[::2], edges[1::2], strict=True)]


# --------------------------------------------------------------------------------------------
# The new kinds' light curves
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, sign", [(0.0, 1.0), (1.0, -1.0)])
def test_young_star_depth_width_and_recurrence_match_the_row(shape, sign):
    p = young(shape)
    t = np.arange(0.0, 2000.0, 0.01)
    dm = sign * mag(variable_flux(p, t))  # dips fainter, bursts brighter: both positive here
    assert np.all(np.isfinite(dm)) and dm.min() > -1e-12
    # the largest event reaches the amplitude, none exceeds it; the level returns to 0 between
    assert 0.95 * 0.5 < dm.max() <= 0.5 + 1e-12
    assert dm.min() < 1e-3
    # one event per recurrence (200 in 2000 d); 0.07 is below every event's half maximum
    # (the smallest height is 0.3 x 0.5 mag), so each run above it holds one whole event
    runs = events(dm, 0.07)
    assert abs(len(runs) - 200) <= 2
    # every event's FWHM about its own peak is the row's duration (3 d)
    widths, rises = [], []
    for run in runs[1:-1]:
        seg = dm[run]
        peak = int(np.argmax(seg))
        half = seg > seg[peak] / 2
        lo = peak - int(np.argmin(half[peak::-1]))
        hi = peak + int(np.argmin(half[peak:]))
        widths.append((hi - lo) * 0.01)
        rises.append((peak - lo) / (hi - lo))
    assert np.allclose(widths, 3.0, atol=0.03)
    assert np.allclose(rises, 0.5 if sign > 0 else V.YSO_BURST_RISE, atol=0.01)


def test_season_drift_yearly_levels_have_the_row_rms_and_hold_within_a_year():
    p = drift(var_amplitude=0.05)
    years = np.arange(400)
    mid = (years + 0.4) * V.YEAR_DAYS  # before the ramp that ends each year
    levels = mag(variable_flux(p, mid))
    assert abs(levels.std() - 0.05) < 0.2 * 0.05 and abs(levels.mean()) < 4 * 0.05 / 20
    # within a year (before the ramp) the level holds; across the boundary it changes
    t = np.linspace(0.0, V.YEAR_DAYS - V.DRIFT_RAMP, 50)
    for k in range(3):
        m = mag(variable_flux(p, k * V.YEAR_DAYS + t))
        assert np.ptp(m) < 1e-12
    # the ramp is continuous and arrives at the next year's level when the year ends
    dense = np.arange(0.0, 3 * V.YEAR_DAYS, 0.05)
    m = mag(variable_flux(p, dense))
    assert np.abs(np.diff(m)).max() < 0.05 * 6 * np.pi * 0.05 / V.DRIFT_RAMP
    assert mag(variable_flux(p, np.array([V.YEAR_DAYS])))[0] == pytest.approx(levels[1], abs=1e-12)


def test_season_drift_trend_and_long_secondary_period():
    trend = drift(var_width=0.02)
    m = mag(variable_flux(trend, np.array([0.0, 10 * V.YEAR_DAYS, -5 * V.YEAR_DAYS])))
    assert np.allclose(m, [0.0, 0.2, -0.1], atol=1e-12)  # mag per year, 0 at time 0
    lsp = drift(var_ratio=0.3, var_period=500.0, var_phase=0.25)
    t = np.arange(0.0, 3000.0, 0.5)
    m = mag(variable_flux(lsp, t))
    assert np.ptp(m) == pytest.approx(0.3, abs=1e-4)  # peak-to-peak
    assert m[0] == pytest.approx(0.15, abs=1e-12)  # faintest at phase 0.25
    np.testing.assert_allclose(mag(variable_flux(lsp, t + 500.0)), m, atol=1e-12)
    np.testing.assert_allclose(mag(variable_flux(lsp, t + 250.0)), -m, atol=1e-12)


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_new_kinds_are_the_same_star_on_shifted_windows_and_differ_between_seeds(kind):
    rng = np.random.default_rng(2026)
    rows = [draw_variable(rng, 200.0, kind=kind) for _ in range(40)]
    full = np.arange(-400.0, 3000.0, 0.25)  # absolute times of the axis
    window = slice(6000, 7000)  # days 1100-1350 of the same axis
    for p in rows:
        f = variable_flux(p, full)
        assert np.all(np.isfinite(f)) and np.all(f > 0)
        np.testing.assert_array_equal(variable_flux(p, full[window]), f[window])
        np.testing.assert_array_equal(variable_flux(p, full[::-1]), f[::-1])
        other = {**p, "var_seed": p["var_seed"] + 1}
        assert not np.allclose(variable_flux(other, full), f)
        assert describe_variable(p)


def test_drawn_new_kinds_lie_in_their_documented_ranges():
    rng = np.random.default_rng(11)
    young_rows = [draw_variable(rng, 200.0, kind="young_star") for _ in range(500)]
    drift_rows = [draw_variable(rng, 200.0, kind="season_drift") for _ in range(500)]

    def col(rows, name):
        return np.array([r[name] for r in rows])

    def within(values, bounds):
        return bool(np.all((values >= bounds[0]) & (values <= bounds[1])))

    assert within(col(young_rows, "var_amplitude"), V.YSO_AMPLITUDE)
    assert within(col(young_rows, "var_timescale"), V.YSO_DURATION)
    assert within(col(young_rows, "var_period") / col(young_rows, "var_timescale"),
                  (V.YSO_SPACING[0] * (1 - 1e-12), V.YSO_SPACING[1] * (1 + 1e-12)))
    assert within(col(young_rows, "var_ratio"), V.YSO_IRREGULARITY)
    dippers = np.mean(col(young_rows, "var_shape") == 0.0)
    assert set(col(young_rows, "var_shape")) == {0.0, 1.0}
    assert abs(dippers - V.YSO_DIPPER_FRACTION) < 5 * math.sqrt(0.24 / 500)
    assert within(col(drift_rows, "var_amplitude"), V.DRIFT_SEASON_RMS)
    assert within(col(drift_rows, "var_width"), (-V.DRIFT_TREND, V.DRIFT_TREND))
    amp = col(drift_rows, "var_ratio")
    has = amp > 0
    assert abs(has.mean() - V.DRIFT_LSP_FRACTION) < 5 * math.sqrt(0.25 / 500)
    assert within(amp[has], V.DRIFT_LSP_AMPLITUDE)
    assert within(col(drift_rows, "var_period")[has], V.DRIFT_LSP_PERIOD)
    assert np.all(np.isnan(col(drift_rows, "var_period")[~has]))


# --------------------------------------------------------------------------------------------
# The mix
# --------------------------------------------------------------------------------------------


def test_survey_mix_draws_every_kind_at_its_weight():
    weights = CONTAMINANT_MIXES["survey"]
    assert set(weights) == set(VARIABLE_KINDS[1:]) and math.isclose(sum(weights.values()), 1.0)
    rng = np.random.default_rng(20261207)
    n = 2000
    kinds = np.array([draw_variable(rng, 200.0, kind_weights=weights)["variable_kind"]
                      for _ in range(n)])
    counts = np.bincount(kinds, minlength=len(VARIABLE_KINDS))
    assert counts[0] == 0
    for name, w in weights.items():
        share = counts[VARIABLE_KINDS.index(name)] / n
        assert abs(share - w) < 4 * math.sqrt(w * (1 - w) / n), (name, share, w)


def test_classic_mix_never_draws_the_new_kinds():
    rng = np.random.default_rng(3)
    kinds = {draw_variable(rng, 200.0, kind_weights=CONTAMINANT_MIXES["classic"])
             ["variable_kind"] for _ in range(500)}
    assert kinds == set(range(1, 6))


def _events(contaminants: str, indices) -> list:
    cfg = SimulationConfig(n_per_class=40, survey="ogle", seed=9, detectability=False,
                           variable_fraction=1.0, contaminants=contaminants)
    return [simulate_event(cfg, i) for i in indices]


def test_the_mix_changes_no_other_draw():
    indices = range(60)
    classic, survey = _events("classic", indices), _events("survey", indices)
    shared = ("t_0", "u_0", "t_E", "source_mag", "f_s", "baseline_mag", "baseline_mag_error",
              "error_scale", "attempts", "cadence_per_hour")
    for i, a, b in zip(indices, classic, survey, strict=True):
        np.testing.assert_array_equal(a.times, b.times)
        for name in shared:
            assert a.params[name] == b.params[name] or (
                math.isnan(a.params[name]) and math.isnan(b.params[name])), (i, name)
        if event_label(i) == 1:  # lensing curves and their noise are the same
            np.testing.assert_array_equal(a.flux, b.flux)
            np.testing.assert_array_equal(a.flux_err, b.flux_err)
        if event_label(i) == 2:  # binaries: the magnification engine repeats to ~1e-14 only
            np.testing.assert_allclose(a.flux, b.flux, rtol=1e-12, atol=0)
            np.testing.assert_allclose(a.flux_err, b.flux_err, rtol=1e-12, atol=0)
        if event_label(i) != 0:
            assert a.params["variable_kind"] == b.params["variable_kind"] == 0
    drawn = {VARIABLE_KINDS[e.params["variable_kind"]] for e in survey}
    assert set(NEW_KINDS) <= drawn  # ... while class 0 sees the new kinds


# --------------------------------------------------------------------------------------------
# The setting
# --------------------------------------------------------------------------------------------


def test_classic_is_the_default_and_a_later_field():
    assert SimulationConfig().contaminants == "classic"
    assert LATER_FIELDS["contaminants"] == "classic"
    assert CONTAMINANT_CHOICES == ("classic", "survey")
    assert "contaminants" not in SimulationConfig(survey="ogle").canonical_dict()
    assert SimulationConfig(survey="ogle", contaminants="survey").canonical_dict()[
        "contaminants"] == "survey"
    old = SimulationConfig(survey="ogle").to_dict()
    del old["contaminants"]  # a config saved before the setting existed
    assert SimulationConfig.from_dict(old) == SimulationConfig(survey="ogle")


@pytest.mark.parametrize("value", ["Survey", "all", "", None, 1])
def test_bad_contaminants_names_the_choices(value):
    with pytest.raises(ValueError, match=r"contaminants.*valid choices: classic, survey"):
        SimulationConfig(survey="ogle", contaminants=value)


@pytest.mark.slow  # seconds long: makes two data sets
def test_default_data_set_is_byte_identical_to_classic_named(tmp_path):
    base = dict(n_per_class=3, survey="ogle", seed=5, detectability=False)
    unnamed = generate_dataset(SimulationConfig(**base), tmp_path / "a", workers=1,
                               progress=False)
    named = generate_dataset(SimulationConfig(**base, contaminants="classic"), tmp_path / "b",
                             workers=1, progress=False)
    assert_same_arrays(unnamed, named)
    survey = generate_dataset(SimulationConfig(**base, contaminants="survey"), tmp_path / "c",
                              workers=1, progress=False)
    assert open_dataset(survey).config.contaminants == "survey"


# --------------------------------------------------------------------------------------------
# No class shortcut with the survey mix
# --------------------------------------------------------------------------------------------
