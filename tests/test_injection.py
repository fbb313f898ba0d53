"""Injection of simulated events into real baselines (microlens.simulation.injection): the windows,
the injected flux, the error model, splits by star, reproducibility, training on the result, and
clear errors for bad settings. Everything runs on small EWS-layout folders written here."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import pspl_magnification, write_ews_event

from microlens.data.store import generate_dataset, open_dataset
from microlens.photometry import ews
from microlens.simulation import injection
from microlens.simulation.simulate import IgnoredSettingWarning, SimulationConfig

# ---------------------------------------------------------------------------------------------
# A small folder in the EWS layout
# ---------------------------------------------------------------------------------------------

SEASON_STARTS = (2459300.0, 2459665.0, 2460030.0, 2460395.0)  # four 240-day seasons
TMAX, TAU, UMIN = 2460600.0, 20.0, 0.1  # each event near the end of the last season


def _write_event(root: Path, name: str, ra: float, dec: float, rng, *, mag: float = 18.0,
                 err: float = 0.03, every: float = 3.0, fit: str = "good",
                 seasons=SEASON_STARTS) -> None:
    """One event: seasons of points every ``every`` days, a PSPL event at ``TMAX``; OGLE's
    fit of it (``"good"``), a degenerate one or none."""
    times = np.concatenate([s + np.arange(0.0, 240.0, every) for s in seasons])
    times = times + rng.uniform(0.0, 0.3, times.size)
    mags = mag - 2.5 * np.log10(pspl_magnification(times, TMAX, TAU, UMIN)) \
        + rng.normal(0.0, err, times.size)
    umin, amax = (0.0, 99999.0) if fit == "degenerate" else (UMIN, 10.0)
    ews_fit = {"tmax": TMAX, "tau": TAU, "umin": umin, "amax": amax, "i0": mag, "dmag": 2.0}
    write_ews_event(root, name, times, mags, err, ra=ra, dec=dec, seeing=4.5, sky=100.0,
                    fit=None if fit == "none" else ews_fit)


def write_folder(root: Path, n_stars: int = 6, seed: int = 0) -> Path:
    """``n_stars`` usable stars, plus a duplicate of the first star (same coordinates), a
    degenerate fit, an event without params, a star with too few baseline points and one too
    faint for events on it to pass the detection cut."""
    rng = np.random.default_rng(seed)
    for k in range(n_stars):
        _write_event(root, f"blg-{k + 1:04d}", 265.0 + 0.01 * k, -28.0 - 0.01 * k, rng,
                     mag=17.5 + 0.4 * k, err=0.02 + 0.01 * k)
    _write_event(root, "blg-0901", 265.0, -28.0, rng)  # the first star again
    _write_event(root, "blg-0902", 266.0, -29.0, rng, fit="degenerate")
    _write_event(root, "blg-0903", 266.1, -29.1, rng, fit="none")
    _write_event(root, "blg-0904", 266.2, -29.2, rng, every=40.0)  # ~6 points a season
    _write_event(root, "blg-0905", 266.3, -29.3, rng, mag=21.0, err=0.6, every=8.0)  # too
    return root                                        # faint for any event to be detected


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_folder(tmp_path_factory.mktemp("ews") / "season")


def config(folder: Path, **kw) -> SimulationConfig:
    settings = dict(n_per_class=8, survey="ogle", seed=5, baselines=str(folder),
                    topology="stellar", split_fractions=(0.5, 0.25, 0.25))
    return SimulationConfig(**{**settings, **kw})


@pytest.fixture(scope="module")
def generated(tmp_path_factory, folder):
    """The same small set generated with one and with two workers."""
    root = tmp_path_factory.mktemp("sets")
    cfg = config(folder)
    one = generate_dataset(cfg, root / "one", workers=1, chunk_size=7, progress=False)
    two = generate_dataset(cfg, root / "two", workers=2, chunk_size=7, progress=False)
    return cfg, one, two


def real_baselines(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """Each event's baseline segment read with microlens.photometry.ews alone (HJD, flux, errors),
    and
    the number of points of its whole curve."""
    out = {}
    for event in ews.read_folder(folder):
        if event.fit is None or event.fit.degenerate:
            continue
        phot = ews.read_photometry(event)
        n = ews.baseline_end(event, phot)
        seg = ews.segment(phot, n, "_baseline")
        out[event.photometry_file.name] = (seg.absolute_times(), seg.flux, seg.flux_err,
                                           len(phot))
    return out


# ---------------------------------------------------------------------------------------------
# Error model, injection formula, windows
# ---------------------------------------------------------------------------------------------


def test_the_error_model_recovers_a_known_a_and_b():
    rng = np.random.default_rng(1)
    flux = rng.uniform(0.5, 5.0, 400)
    a, b = 0.03, 0.002
    err = np.sqrt(a**2 + b * flux)
    fitted = injection.fit_error_model(flux, err)
    assert fitted == pytest.approx((a, b), rel=1e-9)
    # a flux-independent error: b = 0, a the error; errors falling with flux: b clipped to 0
    assert injection.fit_error_model(flux, np.full(400, 0.05)) == pytest.approx((0.05, 0.0))
    a_only, b_clipped = injection.fit_error_model(flux, np.sqrt(0.01 / flux))
    assert b_clipped == 0.0 and a_only > 0
    # pure photon noise: a = 0 exactly, b recovered
    assert injection.fit_error_model(flux, np.sqrt(0.003 * flux)) == pytest.approx((0.0, 0.003),
                                                                                   abs=1e-12)


def test_injected_flux_is_f_plus_f_s_times_a_minus_1_and_noise_follows_the_model():
    flux = np.array([1.01, 0.98, 1.0, 1.02])
    err = np.array([0.02, 0.03, 0.02, 0.025])
    mag = np.array([1.0, 1.5, 4.0, 20.0])
    out, out_err = injection.inject(flux, err, mag, 0.3, 0.001, np.zeros(4))
    np.testing.assert_array_equal(out, flux + 0.3 * (mag - 1.0))
    np.testing.assert_allclose(out_err**2, err**2 + 0.001 * 0.3 * (mag - 1.0), rtol=1e-12)
    assert out_err[0] == err[0]  # unmagnified: the real error bar
    noisy, _ = injection.inject(flux, err, mag, 0.3, 0.001, np.ones(4))
    np.testing.assert_allclose(noisy - out, np.sqrt(0.001 * 0.3 * (mag - 1.0)), rtol=1e-12)


def test_windows_hold_enough_points_within_the_window_length():
    t = np.concatenate([np.arange(0.0, 100.0), np.arange(300.0, 320.0)])
    starts, stops = injection.window_starts(t, 50.0, 30)
    assert starts.size and np.all(stops - starts >= 30)
    assert np.all(t[stops - 1] - t[starts] < 50.0)
    assert np.all(t[starts] <= t[-1] - 50.0)
    # a baseline shorter than the window: one window, the whole of it
    starts, stops = injection.window_starts(t[:40], 500.0, 10)
    assert starts.tolist() == [0] and stops.tolist() == [40]
    assert injection.window_starts(t[:5], 500.0, 10)[0].size == 0


def test_the_window_length_follows_the_survey():
    assert injection.window_days(SimulationConfig()) == 200.0
    assert injection.window_days(SimulationConfig(survey="ogle")) == pytest.approx(605.25)


# ---------------------------------------------------------------------------------------------
# The catalogue and the data set
# ---------------------------------------------------------------------------------------------


def test_the_catalogue_counts_each_star_once_and_says_why_events_are_left_out(folder):
    catalogue = injection.catalogue_for(config(folder))
    assert len(catalogue) == 6
    assert len(set(catalogue.stars)) == 6
    counts = catalogue.skipped_counts()
    assert sum(counts.values()) == 5
    assert counts[next(r for r in counts if "detection cut" in r)] == 1
    assert any("degenerate" in reason for reason in counts)
    assert any("no params" in reason for reason in counts)
    assert any("min_window_points" in reason for reason in counts)
    assert any("same star" in reason for reason in counts)


def test_same_seed_gives_identical_bytes_with_one_and_two_workers(generated):
    _, one, two = generated
    names = sorted(p.name for p in one.glob("*.npy"))
    assert "origin.npy" in names
    for name in names:
        assert (one / name).read_bytes() == (two / name).read_bytes(), name


def test_each_star_lies_in_one_split_and_classes_balance_in_every_split(generated):
    cfg, path, _ = generated
    store = open_dataset(path)
    splits = [injection.stars_of_split(store, s) for s in ("train", "val", "test")]
    assert all(splits)
    assert not (splits[0] & splits[1] or splits[0] & splits[2] or splits[1] & splits[2])
    for split in ("train", "val", "test"):
        counts = np.bincount(store.labels[store.indices(split)], minlength=3)
        assert counts[0] == counts[1] == counts[2] > 0
    entry = store.manifest["injection"]
    assert sum(entry["stars_per_split"].values()) == entry["stars_used"] == 6
    assert store.reference_epoch == 0.0
    # a star's windows in each class: the same number (star identity says nothing of class)
    star = np.asarray(store.origin["star"])
    for s in set(star):
        per_class = np.bincount(store.labels[star == s], minlength=3)
        assert per_class[0] == per_class[1] == per_class[2]


def test_windows_never_reach_the_event_and_untouched_windows_are_the_real_data(generated,
                                                                               folder):
    cfg, path, _ = generated
    store = open_dataset(path)
    real = real_baselines(folder)
    seen_zero = 0
    for i in range(len(store)):
        ev = store.event(i)
        origin = store.origin[i]
        hjd, flux, err, n_all = real[str(origin["source"])]
        assert n_all > hjd.size  # the event part of the curve exists and is left out
        assert origin["window_end_hjd"] <= hjd[-1] == origin["baseline_end_hjd"]
        lo = int(np.searchsorted(hjd, origin["window_start_hjd"]))
        window = slice(lo, lo + ev["times"].size)
        assert hjd[window][0] == origin["window_start_hjd"]
        np.testing.assert_array_equal(ev["times"], hjd[window] - hjd[window][0])
        assert ev["times"][-1] < injection.window_days(cfg)
        if ev["label"] == 0:
            seen_zero += 1
            assert np.array_equal(store.observations["flux"][store.offsets[i]:
                                                             store.offsets[i + 1]],
                                  flux[window].astype(np.float32))
            assert np.array_equal(store.observations["flux_err"][store.offsets[i]:
                                                                 store.offsets[i + 1]],
                                  err[window].astype(np.float32))
    assert seen_zero == cfg.n_per_class


def test_injected_flux_before_noise_is_the_real_flux_plus_the_model(generated, folder):
    cfg, path, _ = generated
    store = open_dataset(path)
    real = real_baselines(folder)
    from microlens.simulation.simulate import model_flux

    for i in (1, 2, 4, 5):  # PSPL and binary events
        quiet = injection.inject_event(cfg, i, extra_noise=False)
        params = store.event(i)["params"]
        assert quiet.params["label"] == params["label"] in (1, 2)
        hjd, flux, _, _ = real[str(store.origin[i]["source"])]
        lo = int(np.searchsorted(hjd, store.origin[i]["window_start_hjd"]))
        base = flux[lo:lo + quiet.times.size]
        expected = base + model_flux(params, quiet.times) - 1.0  # F + f_s (A - 1)
        np.testing.assert_allclose(quiet.flux, expected, rtol=1e-9, atol=1e-12)
        stored = store.event(i)["flux"]  # with the extra noise: within a few of its sigma
        extra = np.sqrt(np.maximum(store.origin[i]["error_b"] * (expected - base), 0.0))
        assert np.all(np.abs(stored - quiet.flux) <= 6 * extra + 1e-5)


def test_labels_and_detectability_use_the_stored_error_bars(generated):
    _, path, _ = generated
    store = open_dataset(path)
    table = store.params_table()
    assert np.isfinite(table["dchi2_pspl"]).all() and np.isfinite(table["dchi2_flat"]).all()
    injected = table[table["label"] > 0]
    assert (injected["f_s"] >= 0.1).all() and (injected["f_s"] <= 1.0).all()
    assert injected["dchi2_flat"].median() > 25  # the detection cut: a visible signal
    from microlens.data.labels import training_labels

    observable = training_labels(store, np.arange(len(store)), "observable")
    assert set(np.unique(observable)) <= {0, 1, 2}


def test_a_tiny_model_trains_on_an_injection_set(generated, tmp_path):
    from conftest import train_on_one_thread

    from microlens.models.config import ModelConfig
    from microlens.training.train import TrainConfig

    _, path, _ = generated
    run = train_on_one_thread(TrainConfig(
        dataset=str(path), run_name="inj", runs_dir=str(tmp_path), epochs=1, batch_size=8,
        model=ModelConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32, window=8, dropout=0.0),
        patience=0, normalization_events=8, seed=1))
    assert (Path(run) / "config.json").is_file()

    # the real benchmark never scores a star whose baselines the run trained on
    from microlens.realdata.benchmark import run_benchmark
    from microlens.realdata.benchmark.run import training_stars

    folder = Path(generated[0].baselines)
    stars, source = training_stars(run)
    assert stars == {e.star for e in ews.read_folder(folder)} and "baselines of" in source
    with pytest.raises(ValueError, match=r"no segment .* left out: .*training_star 1[01]"):
        run_benchmark(folder, run, peer="none", device="cpu", workers=1)
    other = tmp_path / "other"  # one star of the season the run never saw
    _write_event(other, "blg-0500", 250.0, -20.0, np.random.default_rng(3))
    record = run_benchmark(other, run, peer="none", device="cpu", workers=1)
    assert record["counts"]["training_star"] == 0 and record["counts"]["scored_stars"] == 1
    both = tmp_path / "both"
    for source_folder in (folder, other):
        for file in source_folder.rglob("*"):
            if file.is_file():
                target = both / file.relative_to(source_folder)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(file.read_bytes())
    record = run_benchmark(both, run, peer="none", device="cpu", workers=1)
    assert record["counts"]["scored_stars"] == 1
    assert {e["name"] for e in record["excluded"] if e["reason"] == "training_star"} == {
        e.name for e in ews.read_folder(folder)}
    assert "training stars" in record["rules"]["training_star"]


def test_a_set_without_origin_records_opens_and_has_no_stars(generated, tmp_path):
    import shutil

    _, path, _ = generated
    copy = Path(shutil.copytree(path, tmp_path / "old"))
    (copy / "origin.npy").unlink()  # as every data set made before injection existed
    store = open_dataset(copy)
    assert store.origin is None and len(store) == 24
    with pytest.raises(ValueError, match="not made from real baselines"):
        injection.stars_of_split(store, "train")


# ---------------------------------------------------------------------------------------------
# Bad settings
# ---------------------------------------------------------------------------------------------


def test_a_missing_folder_is_a_clear_error_before_anything_is_written(tmp_path):
    cfg = config(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="baselines folder .*nowhere.* does not exist"):
        generate_dataset(cfg, tmp_path / "out", workers=1, progress=False)
    assert not (tmp_path / "out.partial").exists()


def test_a_folder_without_usable_baselines_is_a_clear_error(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "bad"
    _write_event(root, "blg-0001", 265.0, -28.0, rng, fit="degenerate")
    _write_event(root, "blg-0002", 265.1, -28.0, rng, fit="none")
    with pytest.raises(ValueError, match=r"holds no usable baseline.*degenerate fit \(.*\): 1"):
        generate_dataset(config(root), tmp_path / "out", workers=1, progress=False)
    with pytest.raises(ValueError, match="not in the EWS layout"):
        generate_dataset(config(tmp_path), tmp_path / "out", workers=1, progress=False)


def test_too_few_stars_for_the_windows_asked_is_a_clear_error(folder, tmp_path):
    cfg = config(folder, n_per_class=13, windows_per_star=2)
    with pytest.raises(ValueError, match="n_per_class=13 needs 3 windows .* 6 usable stars"):
        generate_dataset(cfg, tmp_path / "out", workers=1, progress=False)


@pytest.mark.parametrize("name, bad", [
    ("baselines", ""), ("baselines", 3), ("windows_per_star", 0), ("windows_per_star", 1.5),
    ("min_window_points", 1), ("injection_f_s_range", (0.0, 1.0)),
    ("injection_f_s_range", (0.5, 1.5)), ("injection_f_s_range", (0.9, 0.1)),
    ("injected_variables", -0.1), ("injected_variables", 1.5), ("injected_variables", "half"),
])
def test_bad_injection_settings_name_the_field(name, bad):
    with pytest.raises(ValueError, match=name):
        SimulationConfig(**{"baselines": "data/real", name: bad})


def test_settings_without_effect_warn_and_a_window_must_fit_the_detection_cut():
    with pytest.warns(IgnoredSettingWarning, match="n_epochs=300.*no effect"):
        SimulationConfig(baselines="data/real", n_epochs=300)
    with pytest.warns(IgnoredSettingWarning, match="windows_per_star=2 only applies"):
        SimulationConfig(windows_per_star=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SimulationConfig(baselines="data/real", survey_days=100.0)  # thesis: the window
    with pytest.raises(ValueError, match="min_window_points=4"):
        SimulationConfig(baselines="data/real", min_window_points=4)
    cfg = SimulationConfig(baselines=Path("data/real"))
    assert cfg.baselines == "data/real" and cfg.is_injection
    assert SimulationConfig.from_dict(cfg.to_dict()) == cfg
    assert math.isclose(cfg.reference_epoch, 0.0)


def test_the_generation_benchmark_times_injection_beside_the_synthetic_set(folder):
    from microlens.workflow.bench.simulate import _bench_injection

    base = SimulationConfig(n_per_class=4, survey="ogle", detectability=False)
    report = _bench_injection(base, 1, str(folder), {"events_per_second": 10.0})
    assert report["usable_stars"] == 6 and report["mixed"]["events"] == 12
    assert report["events_per_second_ratio_to_synthetic"] == pytest.approx(
        report["mixed"]["events_per_second"] / 10.0, rel=1e-2)


def test_the_benchmark_refuses_a_missing_baselines_folder_before_timing_anything(tmp_path):
    from microlens.workflow.bench.simulate import bench_simulate

    with pytest.raises(ValueError, match="--baselines .*nowhere.* is not a folder"):
        bench_simulate(events=3, survey="ogle", baselines=str(tmp_path / "nowhere"))


def test_events_makes_any_configs_events_and_simulate_only_synthetic_ones(folder):
    from microlens.simulation import events, injection, simulate

    cfg = config(folder)
    a, b = events.simulate_event(cfg, 4), injection.inject_event(cfg, 4)
    np.testing.assert_array_equal(a.flux, b.flux)
    assert a.origin == b.origin
    ranged = events.simulate_range(cfg, 0, 3)
    assert "origin" in ranged and ranged["lengths"].size == 3
    synthetic = SimulationConfig(n_per_class=2, n_epochs=60, seed=3)
    np.testing.assert_array_equal(events.simulate_range(synthetic, 0, 3)["flux"],
                                  simulate.simulate_range(synthetic, 0, 3)["flux"])
    with pytest.raises(ValueError, match="microlens.simulation.events.simulate_event"):
        simulate.simulate_event(cfg, 0)
    with pytest.raises(ValueError, match="only synthetic ones"):
        simulate.simulate_range(cfg, 0, 3)


def test_injected_variables_vary_the_real_star_and_change_nothing_else(folder):
    """With injected_variables the no-event windows carry simulated variables of the
    contaminants mix on the real star's flux (its own stream): every other event, and each
    window's times, star and level, are those of the set without them."""
    from microlens.simulation.variables import VARIABLE_KINDS, variable_flux

    plain = config(folder, n_per_class=12)
    varied = config(folder, n_per_class=12, injected_variables=1.0, contaminants="survey")
    kinds = []
    for i in range(36):
        a, b = injection.inject_event(plain, i), injection.inject_event(varied, i)
        np.testing.assert_array_equal(a.times, b.times)
        assert a.origin == b.origin
        if i % 3:  # the lensing classes: the very same event (a binary's magnification can
            # differ in its last bits between two calls: VBBinaryLensing keeps state)
            np.testing.assert_allclose(a.flux, b.flux, rtol=1e-12)
            np.testing.assert_allclose(a.flux_err, b.flux_err, rtol=1e-12)
            assert a.params["t_0"] == b.params["t_0"] and a.params["u_0"] == b.params["u_0"]
            continue
        kind = int(b.params["variable_kind"])
        assert int(a.params["variable_kind"]) == 0 and kind > 0
        kinds.append(VARIABLE_KINDS[kind])
        brightness = variable_flux(b.params, b.times)
        np.testing.assert_allclose(b.flux, a.flux * brightness, rtol=1e-12)
        np.testing.assert_allclose(b.flux_err, a.flux_err * np.sqrt(brightness), rtol=1e-12)
        np.testing.assert_allclose(b.clean_flux / brightness, b.clean_flux[0] / brightness[0])
    assert len(set(kinds)) >= 3  # the survey mix, not one kind
    # reproducible, and a share of 0 is the set without them byte for byte
    again = injection.inject_event(varied, 3)
    np.testing.assert_array_equal(again.flux, injection.inject_event(varied, 3).flux)
    zero = config(folder, n_per_class=12, injected_variables=0.0)
    assert zero.canonical_dict() == plain.canonical_dict()


def test_a_share_of_the_no_event_windows_varies(folder):
    cfg = config(folder, n_per_class=40, injected_variables=0.5, contaminants="survey",
                 windows_per_star=7)
    varied = sum(int(injection.inject_event(cfg, i).params["variable_kind"]) > 0
                 for i in range(0, 120, 3))
    assert 10 <= varied <= 30  # 40 windows at 0.5: 4 standard deviations either side
    with pytest.warns(IgnoredSettingWarning, match="injected_variables"):
        SimulationConfig(injected_variables=0.3)  # synthetic curves: variable_fraction
