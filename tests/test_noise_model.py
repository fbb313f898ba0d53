"""The survey noise model fitted on real baselines (noise_model) and its use by the simulator."""

from __future__ import annotations

import json

import numpy as np
import pytest

from microlens import SimulationConfig, generate_dataset, open_dataset
from microlens.simulation.noise_model import (
    COLUMNS,
    MAX_SEASONS,
    SHIPPED,
    SHIPPED_RECENT_DAYS,
    NoiseModel,
    fit_noise_model,
    observe_with_model,
    recent_scatter,
    shipped_model,
    star_parameters,
)


def survey_times(n_seasons: int = 5, nights: int = 150, per_night: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    days = np.concatenate([365.25 * s + np.arange(nights) for s in range(n_seasons)])
    return np.sort((days[:, None] + 0.6 + 0.2 * rng.random((days.size, per_night))).ravel())


def test_a_stars_numbers_are_recovered_from_its_baseline():
    rng = np.random.default_rng(3)
    t = survey_times()
    err = np.full(t.size, 0.01)
    white = star_parameters(t, 1 + 1.5 * err * rng.normal(size=t.size), err)
    assert white["white_scale"] == pytest.approx(1.5, rel=0.08)
    assert white["correlated_scale"] < 0.4 and white["season_sigma"] < 0.002
    assert white["outlier_rate"] == 0.0

    model = NoiseModel(np.array([[18.0, 1.2, 1.0, 20.0, 0.02, 0.0, 0.0, 0.0]]), "test",
                       ("star",))
    flux, star = observe_with_model(model, t, np.ones(t.size), err, 18.0, rng)
    fitted = star_parameters(t, flux, err)
    assert fitted["white_scale"] == pytest.approx(1.2, rel=0.1)
    assert fitted["correlated_scale"] == pytest.approx(1.0, rel=0.25)
    assert fitted["correlation_days"] == pytest.approx(20.0, rel=0.6)
    assert fitted["season_sigma"] == pytest.approx(0.02, rel=0.6)  # five seasons: a rough rms
    assert star == {**dict(zip(COLUMNS, model.table[0], strict=True)), "n_outliers": 0}


def test_outliers_come_at_the_stars_rate_and_the_clean_flux_is_kept_on_average():
    rng = np.random.default_rng(4)
    t = survey_times(n_seasons=3)
    model = NoiseModel(np.array([[18.0, 1.0, 0.0, 10.0, 0.0, 0.05, 0.0, 0.0]]), "test",
                       ("star",))
    clean = 1 + 0.5 * np.exp(-0.5 * ((t - 400) / 20) ** 2)
    flux, star = observe_with_model(model, t, clean, np.full(t.size, 0.01), 18.0, rng)
    assert star["n_outliers"] / t.size == pytest.approx(0.05, abs=0.01)
    assert np.median(flux - clean) == pytest.approx(0.0, abs=0.002)


def test_the_draws_do_not_depend_on_the_flux_or_the_star():
    """The random stream after a curve depends only on its length (no class shortcut)."""
    model = shipped_model()
    t = survey_times(n_seasons=2, nights=40)
    states = []
    for clean, mag in [(np.ones(t.size), 16.0), (1 + np.linspace(0, 3, t.size), 20.5)]:
        rng = np.random.default_rng(9)
        observe_with_model(model, t, clean, np.full(t.size, 0.02), mag, rng)
        states.append(rng.random())
    assert states[0] == states[1]
    assert MAX_SEASONS >= 8


def test_a_star_takes_the_numbers_of_a_real_star_of_its_magnitude_bin():
    table = np.array([[16.5, 1.1, 0, 5, 0, 0, 0, 0], [18.5, 2.2, 0, 5, 0, 0, 0, 0],
                      [18.7, 3.3, 0, 5, 0, 0, 0, 0]])
    model = NoiseModel(table, "test", ("a", "b", "c"))
    assert list(model.rows_near(18.2)) == [1, 2]
    assert list(model.rows_near(21.0)) == [1, 2]  # the nearest bin with stars
    rng = np.random.default_rng(0)
    t = survey_times(n_seasons=1, nights=30)
    seen = {observe_with_model(model, t, np.ones(t.size), np.full(t.size, 0.01), 18.9,
                               rng)[1]["white_scale"] for _ in range(20)}
    assert seen == {2.2, 3.3}


def test_the_model_is_fitted_only_on_the_stars_given_and_round_trips(tmp_path):
    from microlens.photometry import ews

    events = sorted(ews.read_folder(ews.shipped_subset()), key=lambda e: e.name)
    stars = [e.star for e in events if e.fit is not None and not e.fit.degenerate][:4]
    model = fit_noise_model(None, stars)
    assert set(model.stars) <= set(stars) and len(model.stars) >= 2
    assert model.table.shape == (len(model.stars), len(COLUMNS))
    assert "Udalski" in model.source
    path = model.save(tmp_path / "noise.json")
    again = NoiseModel.load(path)
    assert again.stars == model.stars and np.array_equal(again.table, model.table)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": "other"}))
    with pytest.raises(ValueError, match="bad.json: not a noise model"):
        NoiseModel.load(bad)
    with pytest.raises(FileNotFoundError, match="no noise model at"):
        NoiseModel.load(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="one row per star"):
        NoiseModel(np.zeros((0, len(COLUMNS))), "x", ())
    with pytest.raises(ValueError, match="no star of"):
        fit_noise_model(None, ["no such star"])


@pytest.mark.slow  # seconds long: reads and fits every shipped star
def test_the_shipped_model_is_the_fit_of_the_shipped_subset():
    shipped = NoiseModel.load(SHIPPED)
    refit = fit_noise_model(recent_days=SHIPPED_RECENT_DAYS)
    assert refit.stars == shipped.stars
    np.testing.assert_allclose(refit.table, shipped.table, rtol=1e-12)


def test_fitted_noise_is_a_choice_of_the_ogle_preset_only():
    with pytest.raises(ValueError, match="unknown noise 'sky'; valid choices: preset, fitted"):
        SimulationConfig(survey="ogle", noise="sky")
    for survey in ("kmtnet", "thesis"):
        with pytest.raises(ValueError, match=f"survey '{survey}' has none: use noise='preset'"):
            SimulationConfig(survey=survey, noise="fitted")


@pytest.mark.slow  # seconds long: three small data sets
def test_fitted_noise_curves_are_reproducible_and_keep_the_presets_sampling(tmp_path):
    cfg = SimulationConfig(n_per_class=3, survey="ogle", seed=2, noise="fitted",
                           detectability=False)
    one = open_dataset(generate_dataset(cfg, tmp_path / "one", workers=1, progress=False))
    two = open_dataset(generate_dataset(cfg, tmp_path / "two", workers=2, chunk_size=4,
                                        progress=False))
    assert np.array_equal(np.asarray(one.observations["flux"]),
                          np.asarray(two.observations["flux"]))
    # reported errors are the survey's error curve; the scatter is the real star's
    assert set(np.round(one.params["error_scale"], 12)) <= set(
        np.round(shipped_model().column("white_scale"), 12))
    preset = SimulationConfig(n_per_class=3, survey="ogle", seed=2, detectability=False)
    other = open_dataset(generate_dataset(preset, tmp_path / "preset", workers=1,
                                          progress=False))
    assert np.array_equal(np.asarray(other.observations["times"]),
                          np.asarray(one.observations["times"]))  # same sampling, other noise
    assert not np.array_equal(np.asarray(other.observations["flux"]),
                              np.asarray(one.observations["flux"]))
    # the manifest says which noise model drew the curves (the shipped one is refitted)
    import hashlib

    recorded = json.loads((tmp_path / "one" / "manifest.json").read_text())["noise_model"]
    assert recorded == {"path": "data/noise/ogle_ews_2025_subset.json",
                        "sha256": hashlib.sha256(SHIPPED.read_bytes()).hexdigest(),
                        "stars": len(shipped_model().stars)}
    assert "noise_model" not in json.loads((tmp_path / "preset" / "manifest.json").read_text())


@pytest.mark.slow  # draws three small data sets
def test_a_data_set_drawn_with_another_noise_model_file_is_not_returned_as_it_is(tmp_path):
    """The config names the model's path; a file refitted there since is another model: the
    existing set is refused (not returned as if it were drawn with the new one)."""
    from microlens.data.store import DatasetError

    path = tmp_path / "noise.json"
    model = NoiseModel(np.array([[18.0, 1.2, 0.0, 5.0, 0.0, 0.0, 0.0, 0.0]]), "test", ("a",))
    model.save(path)
    cfg = SimulationConfig(n_per_class=1, survey="ogle", seed=4, noise="fitted",
                           noise_model=str(path), detectability=False)
    first = generate_dataset(cfg, tmp_path / "data", workers=1, progress=False)
    assert generate_dataset(cfg, tmp_path / "data", workers=1, progress=False) == first
    NoiseModel(model.table * [1, 2, 1, 1, 1, 1, 1, 1], "test", ("a",)).save(path)  # refitted
    from microlens.simulation.noise_model import model_file

    assert model_file(path).table[0, 1] == 2.4  # read again in this process too, not cached
    with pytest.raises(DatasetError, match="drawn with the noise model of sha256 .* not the one"):
        generate_dataset(cfg, tmp_path / "data", workers=1, progress=False)
    again = open_dataset(generate_dataset(cfg, tmp_path / "data", workers=1, progress=False,
                                          overwrite=True))
    assert set(np.round(again.params["error_scale"], 12)) == {2.4}
    path.unlink()  # the model gone: its own clear error, not a bare one from reading bytes
    with pytest.raises(FileNotFoundError, match="no noise model at .*noise.json"):
        generate_dataset(cfg, tmp_path / "data", workers=1, progress=False)


def test_a_noise_model_fitted_on_training_stars_is_the_one_the_simulator_draws_from(tmp_path):
    """``noise_model``: a user fits the model on the training stars only and simulates with
    it; every simulated star's numbers are those of a star of that model, never of another."""
    from microlens.photometry import ews

    events = sorted(ews.read_folder(ews.shipped_subset()), key=lambda e: e.name)
    training = [e.star for e in events if e.fit is not None and not e.fit.degenerate][:6]
    model = fit_noise_model(None, training)
    path = model.save(tmp_path / "training_noise.json")
    cfg = SimulationConfig(n_per_class=4, survey="ogle", seed=3, noise="fitted",
                           noise_model=str(path), detectability=False)
    store = open_dataset(generate_dataset(cfg, tmp_path / "data", workers=1, progress=False))
    assert store.config.noise_model == str(path)
    drawn = set(np.round(store.params["error_scale"], 12))
    assert drawn <= set(np.round(model.column("white_scale"), 12))
    others = set(np.round(shipped_model().column("white_scale"), 12)) - set(
        np.round(model.column("white_scale"), 12))
    assert not drawn & others
    with pytest.raises(ValueError, match="noise_model='x.json' is read only with noise='fitted'"):
        SimulationConfig(survey="ogle", noise_model="x.json")
    with pytest.raises(ValueError, match="noise_model must be a file path"):
        SimulationConfig(survey="ogle", noise="fitted", noise_model="  ")
    missing = SimulationConfig(n_per_class=1, survey="ogle", noise="fitted",
                               noise_model=str(tmp_path / "none.json"))
    with pytest.raises(FileNotFoundError, match="no noise model at .*none.json"):
        generate_dataset(missing, tmp_path / "never", workers=1, progress=False)
    assert not (tmp_path / "never").exists() and not (tmp_path / "never.partial").exists()


def test_the_correlation_time_is_fitted_to_all_three_lags():
    from microlens.simulation.noise_model import CORRELATION_DAYS_GRID, correlation_days

    def acf(tau, c=0.4):
        return {"acf_1d": c * np.exp(-1 / tau), "acf_10d": c * np.exp(-10 / tau),
                "acf_100d": c * np.exp(-100 / tau)}

    for tau in (2.0, 8.0, 30.0, 120.0):
        step = CORRELATION_DAYS_GRID[1] / CORRELATION_DAYS_GRID[0]
        assert abs(np.log(correlation_days(acf(tau)) / tau)) <= np.log(step)
    # 1 and 10 days alone would allow months; a correlation gone by 100 days does not
    gone = {"acf_1d": 0.3, "acf_10d": 0.25, "acf_100d": -0.01}
    assert correlation_days(gone) < 60.0
    assert 9.0 / np.log(0.3 / 0.25) > 45.0  # what the two short lags alone say
    assert np.isnan(correlation_days({"acf_1d": 0.01, "acf_10d": 0.0, "acf_100d": 0.0}))
    assert np.isnan(correlation_days({"acf_1d": 0.3, "acf_10d": np.nan, "acf_100d": 0.0}))


def test_a_sparse_recent_window_still_sets_the_scatter_level():
    """Where the last days hold too few close pairs to split the scatter, their total scatter
    sets its level (not the noisier early seasons') and the whole baseline's split is kept."""
    rng = np.random.default_rng(5)
    early = survey_times(n_seasons=4, per_night=3)
    late = 4 * 365.25 + np.arange(0.6, 300, 4.0)  # one point every fourth night, 605 d window
    late = np.concatenate([late, late + 365.25])
    t = np.concatenate([early, late])
    err = np.full(t.size, 0.01)
    flux = 1 + err * np.where(t < early[-1] + 1, 2.0, 1.0) * rng.normal(size=t.size)
    whole = star_parameters(t, flux, err)
    assert whole["white_scale"] > 1.6
    recent_days = 605.25
    keep = t > t[-1] - recent_days
    assert star_parameters(t[keep], flux[keep], err[keep]) is None  # no close pairs there
    scatter = recent_scatter(whole, (t, flux, err), recent_days)
    level = np.hypot(scatter["white_scale"], scatter["correlated_scale"])
    assert level == pytest.approx(1.0, rel=0.12)
    whole_level = np.hypot(whole["white_scale"], whole["correlated_scale"])
    assert scatter["white_scale"] / level == pytest.approx(whole["white_scale"] / whole_level,
                                                          rel=1e-9)


def test_scatter_shared_within_a_night_only_is_white_across_nights():
    """Points of one night that move together but nights that do not: no correlated noise
    across nights (which would raise the simulated 1-day autocorrelation), the whole scatter
    white."""
    rng = np.random.default_rng(6)
    t = survey_times(per_night=3)
    night = np.floor(t).astype(int)
    err = np.full(t.size, 0.01)
    shared = rng.normal(size=night.max() + 1)[night]
    fitted = star_parameters(t, 1 + err * (rng.normal(size=t.size) + 1.5 * shared), err)
    total = np.hypot(fitted["white_scale"], fitted["correlated_scale"])
    assert total == pytest.approx(np.hypot(1.0, 1.5), rel=0.1)
    assert fitted["correlated_scale"] < 0.25 * total


def test_the_exponential_kernel_product_is_the_dense_one():
    from microlens.simulation.noise_model import _exponential_kernel_times

    rng = np.random.default_rng(7)
    t = np.sort(rng.uniform(0, 3000, 600))
    x = rng.normal(size=(t.size, 2))
    for tau in (1.0, 3.0, 40.0, 200.0):  # 1 and 3 d over 3,000 d: several blocks
        dense = np.exp(-np.abs(t[:, None] - t[None, :]) / tau) @ x
        np.testing.assert_allclose(_exponential_kernel_times(t, x, tau), dense, atol=1e-10)


def profile_model(slope: float, curvature: float) -> NoiseModel:
    return NoiseModel(np.array([[18.0, 1.2, 0.6, 5.0, 0.0, 0.0, slope, curvature]]), "test",
                      ("star",))


def test_a_season_profile_is_drawn_in_every_season_and_recovered():
    """A pattern that repeats through every season (time from the season's mean time and its
    square) is added in units of the reported errors, moves no season's level, and is fitted
    back from the baseline; white and correlated noise without one give about none."""
    from microlens.simulation.noise_model import season_profile_basis
    from microlens.simulation.residual_statistics import seasons

    t = survey_times(n_seasons=6)
    err = np.full(t.size, 0.01)
    basis = season_profile_basis(t, seasons(t))
    for s in range(6):  # mean zero in each season, in units of 100 days
        here = seasons(t) == s
        np.testing.assert_allclose(basis[here].mean(axis=0), 0.0, atol=1e-12)
        assert np.ptp(basis[here, 0]) == pytest.approx(1.5, abs=0.01)
    with_profile, without = [], []
    for seed in range(8):
        flux, _ = observe_with_model(profile_model(1.0, 1.5), t, np.ones(t.size), err, 18.0,
                                     np.random.default_rng(seed))
        fitted = star_parameters(t, flux, err)
        with_profile.append([fitted["profile_slope"], fitted["profile_curvature"]])
        flux, _ = observe_with_model(profile_model(0.0, 0.0), t, np.ones(t.size), err, 18.0,
                                     np.random.default_rng(100 + seed))
        fitted = star_parameters(t, flux, err)
        without.append([fitted["profile_slope"], fitted["profile_curvature"]])
        # the profile is not counted again in the noise (its variance is taken out first)
        assert np.hypot(fitted["white_scale"], fitted["correlated_scale"]) < 1.5
    np.testing.assert_allclose(np.median(with_profile, axis=0), [1.0, 1.5], rtol=0.3)
    assert np.sqrt(np.mean(np.square(without))) < 0.25  # shrunk towards none


def test_season_offsets_are_the_steps_between_nearby_seasons_not_a_drift_over_years():
    """Offsets between seasons at most two apart: a star whose level drifts slowly over ten
    years (no season-to-season jumps) has a season_sigma far below its seasons' spread."""
    rng = np.random.default_rng(8)
    t = survey_times(n_seasons=10, per_night=1)
    err = np.full(t.size, 0.002)
    drift = 1.0 + 0.01 * (t - t.mean()) / 365.25  # 1 % a year: 9 % over the baseline
    fitted = star_parameters(t, drift + err * rng.normal(size=t.size), err)
    season = np.floor(t / 365.25).astype(int)
    medians = np.array([np.median(drift[season == s]) for s in range(10)])
    spread = np.sqrt(np.mean((medians / np.median(medians) - 1) ** 2))
    assert spread > 0.025
    # steps of 1 % (one season apart) and 2 % (two apart): about 1.1 %, not the 2.9 % spread
    assert fitted["season_sigma"] < 0.5 * spread
    jumps = 1.0 + 0.02 * rng.normal(size=10)[season]
    fitted = star_parameters(t, jumps + err * rng.normal(size=t.size), err)
    assert fitted["season_sigma"] == pytest.approx(0.02, rel=0.5)  # ten seasons: a rough rms


def test_a_model_written_before_the_season_profile_reads_with_none(tmp_path):
    from microlens.simulation.noise_model import FIRST_SCHEMA, PROFILE_COLUMNS

    old = tmp_path / "old.json"
    old.write_text(json.dumps({
        "schema": FIRST_SCHEMA, "source": "test", "stars": ["a"],
        "columns": [c for c in COLUMNS if c not in PROFILE_COLUMNS],
        "table": [[18.0, 1.1, 0.2, 5.0, 0.01, 0.0]]}))
    model = NoiseModel.load(old)
    assert model.table.shape == (1, len(COLUMNS))
    assert list(model.table[0]) == [18.0, 1.1, 0.2, 5.0, 0.01, 0.0, 0.0, 0.0]
