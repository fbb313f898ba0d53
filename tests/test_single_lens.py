"""Single lenses that are not point lenses: finite source and annual parallax
(``SimulationConfig(single_lens="physical")``, :mod:`microlens.simulation.single_lens`)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_same_arrays

from microlens.data.store import generate_dataset, open_dataset, resimulate
from microlens.simulation.presets import get_survey
from microlens.simulation.simulate import (
    PARAM_COLUMNS,
    SimulatedEvent,
    SimulationConfig,
    binary_magnification,
    blended_flux,
    model_flux,
    pspl_magnification,
    simulate_event,
)
from microlens.simulation.single_lens import (
    BULGE_FIELD,
    PARALLAX_COLUMNS,
    PI_E_RANGE,
    Parallax,
    _epv00,
    earth_position,
    parallax_for,
    single_lens_magnification,
    trajectory,
)

OGLE_EPOCH = get_survey("ogle").reference_epoch
COORDS = "17:55:00 -29:00:00"  # the bulge field centre every preset's events sit at
SHARED = ("t_0", "u_0", "t_E", "source_mag", "f_s", "baseline_mag", "baseline_mag_error",
          "cadence_per_hour", "error_scale")


def physical(**kwargs) -> SimulationConfig:
    return SimulationConfig(**{"n_per_class": 3, "survey": "ogle", "seed": 11,
                               "single_lens": "physical", "detectability": False, **kwargs})


def mulens_model(params: dict, epoch: float):
    """MulensModel's model of a parameter row: times in full HJD, t_0_par = t_0."""
    import MulensModel as mm

    keys = {"t_0": params["t_0"] + epoch, "u_0": params["u_0"], "t_E": params["t_E"],
            "pi_E_N": params["pi_E_N"], "pi_E_E": params["pi_E_E"],
            "t_0_par": params["t_0"] + epoch}
    for name in ("rho", "s", "q"):
        if math.isfinite(params.get(name, math.nan)):
            keys[name] = params[name]
    if math.isfinite(params.get("alpha_rad", math.nan)):
        keys["alpha"] = math.degrees(params["alpha_rad"])
    return mm.Model(keys, coords=COORDS)


@pytest.fixture(scope="module")
def physical_sets(tmp_path_factory):
    """One small physical ogle set made with 1 and with 2 workers (the same chunks)."""
    root = tmp_path_factory.mktemp("physical")
    cfg = physical()
    return cfg, {workers: generate_dataset(cfg, root / f"w{workers}", workers=workers,
                                           chunk_size=3, progress=False)
                 for workers in (1, 2)}


def test_point_is_the_default_and_leaves_a_data_set_as_it_was(tmp_path):
    base = dict(n_per_class=2, survey="ogle", seed=5, detectability=False)
    unnamed = generate_dataset(SimulationConfig(**base), tmp_path / "a", workers=1,
                               progress=False)
    named = generate_dataset(SimulationConfig(**base, single_lens="point"), tmp_path / "b",
                             workers=1, progress=False)
    assert_same_arrays(unnamed, named)
    store = open_dataset(unnamed)
    for name in PARALLAX_COLUMNS:  # a point lens has no parallax ...
        assert np.isnan(store.params[name]).all(), name
    assert np.isnan(store.params["rho"][store.labels == 1]).all()  # ... nor a finite source
    single = store.event(int(np.flatnonzero(store.labels == 1)[0]))
    p = single["params"]
    np.testing.assert_array_equal(  # Paczynski's curve, computed as before
        model_flux(p, single["times"]),
        blended_flux(pspl_magnification(single["times"], p["t_0"], p["u_0"], p["t_E"]),
                     p["f_s"]))


@pytest.mark.slow  # seconds long: makes data sets with one and two workers
def test_physical_sets_do_not_depend_on_the_worker_count(physical_sets):
    _, paths = physical_sets
    files = sorted(p.name for p in paths[1].glob("*.npy"))
    assert {"times.npy", "flux.npy", "params.npy"} <= set(files)
    different = [f for f in files if (paths[1] / f).read_bytes() != (paths[2] / f).read_bytes()]
    assert not different


@pytest.mark.slow  # seconds long: shares the data sets of the worker-count test
def test_stored_physical_events_are_mulensmodels_finite_source_parallax_curves(physical_sets):
    """Class 1 from its stored row: ``model_flux`` rebuilds the event's own clean curve to
    float32 precision and agrees with MulensModel's uniform finite source (Lee 2009
    integration) on the geocentric parallax trajectory within the tolerance vbbl_tol."""
    cfg, paths = physical_sets
    store = open_dataset(paths[1])
    assert store.reference_epoch == OGLE_EPOCH
    singles = np.flatnonzero(store.labels == 1)
    assert singles.size == 3
    for index in singles:
        event = store.event(int(index))
        p = event["params"]
        assert (p["ra_deg"], p["dec_deg"], p["reference_epoch"]) == (*BULGE_FIELD, OGLE_EPOCH)
        assert PI_E_RANGE[0] <= math.hypot(p["pi_E_N"], p["pi_E_E"]) <= PI_E_RANGE[1]
        assert cfg.rho_range[0] <= p["rho"] <= cfg.rho_range[1]
        again = resimulate(store, int(index))
        np.testing.assert_allclose(again.flux, event["flux"], rtol=1e-6)  # float32 storage
        clean = model_flux(p, event["times"], tol=cfg.vbbl_tol)
        np.testing.assert_allclose(clean, again.clean_flux, rtol=1e-7)
        # MulensModel, over the peak (finite source) and a stretch of the wings
        t = np.concatenate([p["t_0"] + np.linspace(-3, 3, 41) * p["rho"] * p["t_E"],
                            p["t_0"] + np.linspace(-1.5, 1.5, 31) * p["t_E"]])
        model = mulens_model(p, OGLE_EPOCH)
        model.set_magnification_methods([OGLE_EPOCH + p["t_0"] - 4 * p["rho"] * p["t_E"],
                                         "finite_source_uniform_Lee09",
                                         OGLE_EPOCH + p["t_0"] + 4 * p["rho"] * p["t_E"]])
        expected = p["f_s"] * model.get_magnification(t + OGLE_EPOCH) + 1 - p["f_s"]
        np.testing.assert_allclose(model_flux(p, t), expected, rtol=cfg.vbbl_tol)


def test_physical_binaries_get_the_same_parallax_as_mulensmodel_gives_them():
    """A binary's parallax trajectory against MulensModel's own point-source solver, and with
    no parallax the point-by-point path gives what BinaryLightCurve gives."""
    rng = np.random.default_rng(4)
    t = np.linspace(200.0, 400.0, 300)
    for _ in range(4):
        p = dict(t_0=rng.uniform(250, 350), u_0=rng.uniform(0.05, 0.5),
                 t_E=rng.uniform(30, 150), rho=1e-6, s=math.exp(rng.uniform(-0.5, 0.5)),
                 q=math.exp(rng.uniform(math.log(1e-3), 0)), alpha_rad=rng.uniform(0, 6.28),
                 pi_E_N=rng.uniform(-0.5, 0.5), pi_E_E=rng.uniform(-0.5, 0.5))
        parallax = Parallax(p["pi_E_N"], p["pi_E_E"], *BULGE_FIELD, OGLE_EPOCH)
        geometry = {k: p[k] for k in ("t_0", "u_0", "t_E", "rho", "s", "q", "alpha_rad")}
        ours = binary_magnification(t, **geometry, tol=1e-5, parallax=parallax)
        model = mulens_model({**p, "rho": math.nan}, OGLE_EPOCH)  # its point-source solver
        np.testing.assert_allclose(ours, model.get_magnification(t + OGLE_EPOCH), rtol=1e-3)
        still = Parallax(0.0, 0.0, *BULGE_FIELD, OGLE_EPOCH)
        np.testing.assert_allclose(binary_magnification(t, **geometry, parallax=still),
                                   binary_magnification(t, **geometry), rtol=1e-8)
        assert np.abs(ours / binary_magnification(t, **geometry, tol=1e-5) - 1).max() > 1e-3


def test_the_parallax_trajectory_is_mulensmodels_and_needs_no_download():
    """The tabulated ephemeris against ERFA's direct call, the trajectory against MulensModel's
    (astropy's built-in ephemeris, with downloads forbidden)."""
    import MulensModel as mm
    from astropy.utils.data import conf

    jd = OGLE_EPOCH + np.random.default_rng(0).uniform(-300, 1000, 400)
    assert np.abs(earth_position(jd) - _epv00(jd)[0]).max() < 1e-9  # AU
    t = np.linspace(-100, 900, 500)
    with conf.set_temp("allow_internet", False):
        for pi_e_n, pi_e_e, t_0 in ((0.5, 0.0, 100.0), (-0.1, 0.8, 450.0), (0.02, -0.03, 700.0)):
            p = dict(t_0=t_0, u_0=0.1, t_E=80.0, pi_E_N=pi_e_n, pi_E_E=pi_e_e)
            model = mulens_model(p, OGLE_EPOCH)
            ref = mm.Trajectory(t + OGLE_EPOCH, model.parameters, coords=model.coords,
                                parallax={"earth_orbital": True})
            tau, beta = trajectory(t, t_0, 0.1, 80.0,
                                   Parallax(pi_e_n, pi_e_e, *BULGE_FIELD, OGLE_EPOCH))
            assert np.abs(tau - ref.x).max() < 1e-8 and np.abs(beta - ref.y).max() < 1e-8
            ours = single_lens_magnification(t, t_0, 0.1, 80.0, parallax=Parallax(
                pi_e_n, pi_e_e, *BULGE_FIELD, OGLE_EPOCH))
            np.testing.assert_allclose(ours, model.get_magnification(t + OGLE_EPOCH),
                                       rtol=1e-6)


def test_a_long_event_with_parallax_is_visibly_asymmetric():
    t_0, u_0, t_E = 120.0, 0.3, 150.0  # a peak in OGLE's first season, t_E = 150 d
    dt = np.linspace(5.0, 150.0, 60)
    parallax = Parallax(0.0, 0.5, *BULGE_FIELD, OGLE_EPOCH)  # |pi_E| = 0.5
    before = single_lens_magnification(t_0 - dt, t_0, u_0, t_E, parallax=parallax)
    after = single_lens_magnification(t_0 + dt, t_0, u_0, t_E, parallax=parallax)
    assert np.abs(after / before - 1).max() > 0.05  # 5 %: ~0.05 mag, far above OGLE's floor
    point_before = single_lens_magnification(t_0 - dt, t_0, u_0, t_E)
    np.testing.assert_allclose(point_before, pspl_magnification(t_0 + dt, t_0, u_0, t_E),
                               rtol=1e-12)  # without parallax: symmetric, Paczynski's curve


def test_a_source_larger_than_the_impact_parameter_flattens_the_peak():
    """Simulated events with u_0 < rho peak below the point-source peak, near the uniform
    disc's central magnification sqrt(1 + 4 / rho**2)."""
    cfg = physical(u_0_range=(0.0, 1e-3), rho_range=(5e-3, 1e-2))
    event = simulate_event(cfg, 1)
    p = event.params
    assert p["label"] == 1 and p["u_0"] < p["rho"]
    t = p["t_0"] + np.linspace(-20, 20, 4001) * p["rho"] * p["t_E"]
    finite = model_flux(p, t)
    point = p["f_s"] * pspl_magnification(t, p["t_0"], p["u_0"], p["t_E"]) + 1 - p["f_s"]
    assert finite.max() < 0.6 * point.max()
    centre = math.sqrt(1 + 4 / p["rho"] ** 2)
    assert (finite.max() - 1 + p["f_s"]) / p["f_s"] == pytest.approx(centre, rel=0.05)
    wings = np.abs(t - p["t_0"]) > 10 * p["rho"] * p["t_E"]  # far off the disc: the curves meet
    point_parallax = single_lens_magnification(t, p["t_0"], p["u_0"], p["t_E"],
                                               parallax=Parallax.from_params(p))
    np.testing.assert_allclose((finite[wings] - 1 + p["f_s"]) / p["f_s"],
                               point_parallax[wings], rtol=2e-3)


def test_the_random_stream_depends_neither_on_the_class_nor_on_the_single_lens_choice(
        monkeypatch):
    """Event by event: the same times, shared draws and standardised noise in every class
    (the class forced on the same index) and with "point"; pi_E is what the parallax stream
    gives at the event's attempt, whatever the class."""
    import microlens.simulation.simulate as simulate

    physical_cfg = physical(n_per_class=2, seed=2)
    point_cfg = SimulationConfig(**{**physical_cfg.to_dict(), "single_lens": "point"})
    for index in range(6):
        runs = {}
        for label in (0, 1, 2):
            monkeypatch.setattr(simulate, "event_label", lambda _index, _label=label: _label)
            runs[label] = simulate_event(physical_cfg, index)
        monkeypatch.undo()
        runs["point"] = simulate_event(point_cfg, index)
        first = runs[0]
        expected = parallax_for(physical_cfg.seed, index, first.params["attempts"], "ogle",
                                OGLE_EPOCH)
        for key, ev in runs.items():
            assert ev.params["attempts"] == first.params["attempts"], (index, key)
            np.testing.assert_array_equal(ev.times, first.times)
            assert [ev.params[k] for k in SHARED] == [first.params[k] for k in SHARED], key
            noise = (ev.flux - ev.clean_flux) / (ev.flux_err * ev.params["error_scale"])
            np.testing.assert_allclose(noise, (first.flux - first.clean_flux)
                                       / (first.flux_err * first.params["error_scale"]),
                                       rtol=1e-9, atol=1e-9)
        for label in (1, 2):
            assert Parallax.from_params(runs[label].params) == expected
        assert Parallax.from_params(runs[0].params) is None  # the no-event class uses none
        assert Parallax.from_params(runs["point"].params) is None


def test_rows_without_the_new_columns_are_point_lenses():
    """A parameter row of a data set made before the parallax columns (and an injected event,
    whose maker does not set them) reads as a point lens on a straight line."""
    row = dict(label=1, t_0=50.0, u_0=0.2, t_E=20.0, f_s=0.5, rho=math.nan)
    t = np.linspace(0, 100, 50)
    expected = 0.5 * pspl_magnification(t, 50.0, 0.2, 20.0) + 0.5
    np.testing.assert_array_equal(model_flux({k: v for k, v in row.items() if k != "rho"}, t),
                                  expected)
    event = SimulatedEvent(t, expected, expected, expected, params=dict(row))
    assert set(PARALLAX_COLUMNS) <= set(event.params) <= set(PARAM_COLUMNS)
    np.testing.assert_array_equal(model_flux(event.params, t), expected)


@pytest.mark.parametrize("settings, words", [
    (dict(survey="thesis"), ["single_lens", "'thesis'", "ogle, kmtnet, moa, roman",
                             "point, physical"]),
    (dict(survey="ogle", baselines="data/real/ogle_ews_2025_subset"),
     ["single_lens", "baselines", "point lenses only", "point, physical"]),
    (dict(survey="ogle", single_lens="finite"), ["single_lens", "'finite'", "point, physical"]),
    (dict(survey="ogle", single_lens="Physical"), ["single_lens", "'Physical'"]),
])
def test_physical_single_lenses_are_refused_where_they_cannot_be_made(settings, words):
    with pytest.raises(ValueError) as info:
        SimulationConfig(**{"single_lens": "physical", **settings})
    for word in words:
        assert word in str(info.value), (word, str(info.value))
