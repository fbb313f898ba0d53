"""Residual statistics of curves without an event, real and simulated (noise_statistics)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from microlens import SimulationConfig, generate_dataset, open_dataset
from microlens.reports import noise_statistics
from microlens.reports.noise_statistics import summarise, within_real_range
from microlens.simulation import residual_statistics
from microlens.simulation.residual_statistics import (
    MMAG_PER_RELATIVE_FLUX,
    STATISTICS,
    curve_statistics,
)


def seasons_of_nights(n_seasons: int = 4, nights: int = 150, per_night: int = 2, seed: int = 0):
    """Times of ``n_seasons`` seasons of ``nights`` nights, ``per_night`` points a night."""
    rng = np.random.default_rng(seed)
    days = np.concatenate([365.25 * s + np.arange(nights) for s in range(n_seasons)])
    times = (days[:, None] + 0.6 + 0.25 * rng.random((days.size, per_night))).ravel()
    return np.sort(times)


def test_white_noise_with_honest_errors_is_flat_uncorrelated_and_without_outliers():
    rng = np.random.default_rng(1)
    t = seasons_of_nights()
    err = np.full(t.size, 0.01)
    stats = curve_statistics(t, 1 + err * rng.normal(size=t.size), err)
    assert stats["n_points"] == t.size
    assert stats["chi2_dof"] == pytest.approx(1.0, abs=0.1)
    for lag in ("acf_1d", "acf_10d", "acf_100d"):
        assert abs(stats[lag]) < 0.1, lag
    assert stats["outlier_fraction"] == 0.0
    # season medians of ~300 points scatter by ~0.01 * 1.25 / sqrt(300) ~ 0.8 mmag
    assert stats["season_offset_mmag"] < 2.0


def test_each_statistic_sees_what_it_is_named_for():
    rng = np.random.default_rng(2)
    t = seasons_of_nights(seed=2)
    err = np.full(t.size, 0.01)
    season = np.floor(t / 365.25).astype(int)
    offsets = np.array([0.02, -0.02, 0.02, -0.02])  # 20 mmag rms (relative to the median)
    shifted = curve_statistics(t, (1 + offsets[season]) * (1 + err * rng.normal(size=t.size)),
                               err)
    assert shifted["season_offset_mmag"] == pytest.approx(0.02 * MMAG_PER_RELATIVE_FLUX, rel=0.1)
    assert shifted["chi2_dof"] > 4 and shifted["acf_10d"] > 0.5

    # a slow (30-day) correlated wander: positive at 1 and 10 days, near 0 at 100 days
    nights = np.floor(t - 0.5)
    wander = np.zeros(int(nights.max()) + 1)
    for k in range(1, wander.size):
        wander[k] = wander[k - 1] * np.exp(-1 / 30) + rng.normal() * np.sqrt(1 - np.exp(-2 / 30))
    correlated = curve_statistics(t, 1 + err * (2 * wander[nights.astype(int)]
                                                + rng.normal(size=t.size)), err)
    assert correlated["acf_1d"] > 0.6 and correlated["acf_10d"] > 0.3
    assert correlated["acf_100d"] < correlated["acf_10d"]

    flux = 1 + err * rng.normal(size=t.size)
    hit = rng.choice(t.size, size=t.size // 50, replace=False)
    flux[hit] += 20 * err[hit]
    assert curve_statistics(t, flux, err)["outlier_fraction"] == pytest.approx(0.02, abs=0.002)


def test_short_curves_have_no_statistics_and_bad_input_is_named():
    t = np.arange(10.0)
    assert curve_statistics(t, np.ones(10), np.ones(10)) is None
    with pytest.raises(ValueError, match="one length"):
        curve_statistics(np.arange(30.0), np.ones(29), np.ones(30))
    with pytest.raises(ValueError, match="sorted"):
        curve_statistics(np.arange(30.0)[::-1], np.ones(30), np.ones(30))
    with pytest.raises(ValueError, match="errors must be > 0"):
        curve_statistics(np.arange(30.0), np.ones(30), np.zeros(30))
    with pytest.raises(ValueError, match="finite"):
        curve_statistics(np.arange(30.0), np.full(30, np.nan), np.ones(30))


def test_summaries_bin_by_magnitude_and_say_where_the_simulation_lies_in_the_real_range():
    rows = [{"mag": m, **{s: v for s in STATISTICS}} for m, v in
            [(16.5, 1.0), (16.8, 3.0), (18.2, 2.0), (20.5, np.nan)]]
    table = summarise(rows)
    assert table["bins"] == ["< 17", "17-18", "18-19", "19-20", ">= 20"]
    assert table["n_curves"] == [2, 0, 1, 0, 1]
    first = table["statistics"]["chi2_dof"][0]
    assert (first["median"], first["q25"], first["q75"], first["n"]) == (2.0, 1.5, 2.5, 2)
    assert table["statistics"]["chi2_dof"][1] is None
    assert table["statistics"]["chi2_dof"][4] is None  # only a NaN there
    simulated = summarise([{"mag": 16.0, **{s: 2.4 for s in STATISTICS}},
                           {"mag": 18.5, **{s: 9.0 for s in STATISTICS}}])
    within = within_real_range(simulated, table)
    assert within["acf_1d"] == [True, None, False, None, None]


def test_simulated_constant_stars_of_a_survey_preset(tmp_path):
    cfg = SimulationConfig(n_per_class=6, survey="ogle", seed=3, detectability=False,
                           variable_fraction=0.5)
    store = open_dataset(generate_dataset(cfg, tmp_path / "set", workers=1, progress=False))
    rows = noise_statistics.simulated_rows(store)
    constant = (store.labels == 0) & (store.params["variable_kind"] == 0)
    assert sorted(r["row"] for r in rows) == list(np.flatnonzero(constant))
    assert all(r["mag"] == store.params["baseline_mag"][r["row"]] for r in rows)

    class Unsized:  # a store whose parameters have no baseline magnitude
        params = np.zeros(3, dtype=[("t_0", "f8")])
        labels = np.zeros(3, dtype=int)
        path = "elsewhere"

    with pytest.raises(ValueError, match="elsewhere has no baseline_mag"):
        noise_statistics.simulated_rows(Unsized())


def test_real_baselines_of_chosen_stars_and_the_command_line(tmp_path, capsys):
    from microlens.photometry.ews import read_folder, shipped_subset

    events = sorted(read_folder(shipped_subset()), key=lambda e: e.name)
    stars = [e.star for e in events if e.fit is not None and not e.fit.degenerate][:3]
    rows = noise_statistics.real_baseline_rows(None, stars)
    assert sorted(r["star"] for r in rows) == sorted(stars)
    assert all(r["n_points"] >= residual_statistics.MIN_POINTS and r["chi2_dof"] > 0 for r in rows)
    (tmp_path / "stars.txt").write_text("\n".join(stars[:2]) + "\n")
    out = tmp_path / "noise.json"
    assert noise_statistics.main(["--stars", str(tmp_path / "stars.txt"), "--out",
                                  str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert sum(printed["real"]["n_curves"]) == 2 and "Udalski" in printed["citation"]
    from microlens.reports.noise import noise_statistics_figure

    figure = noise_statistics_figure(printed)
    assert len(figure.data) == len(STATISTICS)  # the real side only: no data set given
