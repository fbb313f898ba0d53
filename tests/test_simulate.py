"""Physics and sampling of the simulator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from microlens.simulation.simulate import (
    SimulationConfig,
    binary_magnification,
    model_flux,
    pspl_magnification,
    simulate_event,
    survey_times,
)


def random_binary_parameters(rng, n):
    for _ in range(n):
        yield dict(
            t_0=rng.uniform(40, 160), u_0=rng.uniform(0, 1), t_E=math.exp(rng.uniform(1.6, 4.4)),
            rho=math.exp(rng.uniform(math.log(1e-4), math.log(1e-2))),
            s=math.exp(rng.uniform(math.log(0.3), math.log(5))),
            q=math.exp(rng.uniform(math.log(1e-5), 0)), alpha_rad=rng.uniform(0, 2 * math.pi),
        )


def test_pspl_matches_paczynski_formula():
    t = np.linspace(0, 200, 1001)
    t_0, u_0, t_E = 100.0, 0.1, 20.0
    u = np.hypot(u_0, (t - t_0) / t_E)
    expected = (u**2 + 2) / (u * np.sqrt(u**2 + 4))
    np.testing.assert_allclose(pspl_magnification(t, t_0, u_0, t_E), expected, rtol=1e-12)
    assert pspl_magnification(np.array([t_0]), t_0, u_0, t_E)[0] == pytest.approx(10.0373, 1e-4)


def test_binary_default_tolerance_agrees_with_tight_vbbl():
    import VBBinaryLensing

    tight = VBBinaryLensing.VBBinaryLensing()
    tight.Tol = tight.RelTol = 1e-6
    t = np.linspace(0, 200, 400)
    for p in random_binary_parameters(np.random.default_rng(1), 25):
        ours = binary_magnification(t, **p)  # default tol 1e-3
        ref = np.asarray(tight.BinaryLightCurve(
            [math.log(p["s"]), math.log(p["q"]), p["u_0"], p["alpha_rad"], math.log(p["rho"]),
             math.log(p["t_E"]), p["t_0"]], t)[0])
        np.testing.assert_allclose(ours, ref, rtol=1e-3)


@pytest.mark.slow  # a second long: an independent solver over many points
def test_binary_conventions_match_mulensmodel_independent_solver():
    """MulensModel's own point-source solver (not VBBL): its alpha [deg] = degrees(alpha_rad)."""
    import MulensModel as mm
    t = np.linspace(0, 200, 400)
    for p in random_binary_parameters(np.random.default_rng(2), 25):
        ours = binary_magnification(t, **{**p, "rho": 1e-6}, tol=1e-5)
        model = mm.Model({"t_0": p["t_0"], "u_0": p["u_0"], "t_E": p["t_E"], "s": p["s"],
                          "q": p["q"], "alpha": math.degrees(p["alpha_rad"])})
        model.set_magnification_methods([0.0, "point_source", 200.0])
        np.testing.assert_allclose(ours, model.get_magnification(t), rtol=1e-3)


def test_small_mass_ratio_far_from_caustics_reduces_to_pspl():
    t = np.linspace(0, 200, 500)
    binary = binary_magnification(t, 100.0, 0.5, 20.0, 1e-3, 3.0, 1e-6, 1.0)
    np.testing.assert_allclose(binary, pspl_magnification(t, 100.0, 0.5, 20.0), rtol=1e-3)


@pytest.mark.parametrize("cadence, missing", [("cadence_05", 0.05), ("cadence_30", 0.30),
                                              ("cadence_50", 0.50)])
def test_cadence_removes_the_preset_fraction_and_stays_ordered(cadence, missing):
    cfg = SimulationConfig(cadence=cadence)
    rng = np.random.default_rng(3)
    kept = [survey_times(cfg, rng) for _ in range(300)]
    assert all(np.all(np.diff(t) > 0) for t in kept)
    assert all(0 <= t[0] and t[-1] <= cfg.survey_days for t in kept)
    realised = 1 - np.mean([t.size for t in kept]) / cfg.n_epochs
    assert realised == pytest.approx(missing, abs=0.02)
    gaps = np.concatenate([np.diff(t) for t in kept]) / (cfg.survey_days / cfg.n_epochs)
    assert np.max(gaps) > 5  # contiguous gaps, not only isolated drops


def test_noise_matches_the_stated_errors_and_photon_scaling():
    cfg = SimulationConfig(error="error_010", n_epochs=1000)
    pulls, flat_errors = [], []
    for index in range(60):
        ev = simulate_event(cfg, index)
        pulls.append((ev.flux - ev.clean_flux) / ev.flux_err)
        np.testing.assert_allclose(ev.flux_err / np.sqrt(ev.clean_flux),
                                   ev.flux_err[0] / np.sqrt(ev.clean_flux[0]), rtol=1e-9)
        if ev.params["label"] == 0:
            mag_error = ev.params["baseline_mag_error"]
            flat_errors.append(ev.flux_err[0] / (mag_error * math.log(10) / 2.5))
    pulls = np.concatenate(pulls)
    assert np.mean(pulls) == pytest.approx(0, abs=0.01)
    assert np.std(pulls) == pytest.approx(1, abs=0.01)
    np.testing.assert_allclose(flat_errors, 1.0, rtol=1e-9)


def test_error_preset_holds_at_the_reference_magnitude():
    from microlens.simulation.simulate import baseline_error_mag

    for name, value in [("error_003", 0.03), ("error_015", 0.15)]:
        cfg = SimulationConfig(error=name)
        assert baseline_error_mag(cfg, cfg.reference_mag) == pytest.approx(value)
        assert baseline_error_mag(cfg, cfg.reference_mag + 5) == pytest.approx(value * 10)


def test_events_are_deterministic_and_classes_interleave():
    cfg = SimulationConfig(n_per_class=5, n_epochs=200, seed=4)
    a, b = simulate_event(cfg, 7), simulate_event(cfg, 7)
    np.testing.assert_array_equal(a.flux, b.flux)
    assert a.params == pytest.approx(b.params, nan_ok=True)
    assert [simulate_event(cfg, i).params["label"] for i in range(6)] == [0, 1, 2, 0, 1, 2]
    other_seed = simulate_event(SimulationConfig(n_per_class=5, n_epochs=200, seed=5), 7)
    assert not np.array_equal(a.times, other_seed.times)


def test_model_flux_rebuilds_each_class_from_its_parameters():
    cfg = SimulationConfig(n_per_class=3, n_epochs=300, seed=8, detectability=False)
    for index in range(3):
        ev = simulate_event(cfg, index)
        np.testing.assert_allclose(model_flux(ev.params, ev.times), ev.clean_flux, rtol=1e-12)
    binary = simulate_event(cfg, 2)
    assert not np.isnan(binary.params["q"]) and np.isnan(simulate_event(cfg, 1).params["q"])


def test_trajectory_angle_is_stored_in_radians_under_a_name_that_says_so(tmp_path):
    """``alpha_rad`` in [0, 2 pi); no radians under MulensModel's ``alpha`` (degrees); a dataset
    from before the rename (schema 1) is refused with a message to regenerate it."""
    import json

    from microlens.data.store import DatasetError, generate_dataset, open_dataset
    from microlens.simulation.simulate import PARAM_COLUMNS

    assert "alpha_rad" in PARAM_COLUMNS and "alpha" not in PARAM_COLUMNS
    cfg = SimulationConfig(n_per_class=8, n_epochs=60, seed=4, detectability=False)
    angles = [simulate_event(cfg, i).params["alpha_rad"] for i in range(2, 24, 3)]  # binaries
    assert all(0.0 <= a < 2.0 * math.pi for a in angles) and max(angles) > 2 * math.pi / 3
    path = generate_dataset(SimulationConfig(n_per_class=1, n_epochs=40, detectability=False),
                            tmp_path / "old", workers=1, progress=False)
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**manifest, "schema_version": 1}))
    with pytest.raises(DatasetError, match="schema version 1; .* Regenerate the dataset"):
        open_dataset(path)


def test_binary_parameters_follow_the_topology_priors():
    for topology, (qlo, qhi), (slo, shi) in [("planetary", (1e-5, 1e-3), (0.5, 2.0)),
                                            ("stellar", (0.1, 1.0), (0.5, 2.5))]:
        cfg = SimulationConfig(topology=topology, n_epochs=100, detectability=False)
        rows = [simulate_event(cfg, 3 * i + 2).params for i in range(40)]
        q = np.array([r["q"] for r in rows])
        s = np.array([r["s"] for r in rows])
        assert np.all((qlo <= q) & (q <= qhi)) and np.all((slo <= s) & (s <= shi))
        # log-uniform: the median sits near the geometric mean of the bounds
        assert np.log10(np.median(q)) == pytest.approx(np.log10(math.sqrt(qlo * qhi)), abs=0.6)


def test_every_lensing_event_passes_the_one_detection_cut():
    cfg = SimulationConfig(n_per_class=20, n_epochs=400, error="error_015", detectability=False)
    for index in range(60):
        ev = simulate_event(cfg, index)
        assert ev.params["peak_significance"] >= cfg.detection_sigma


@pytest.mark.slow
def test_dataset_bytes_do_not_depend_on_the_worker_count(tmp_path):
    """Workers 1, 2 and 3 write byte-identical arrays, although one worker then runs several
    chunks and this process holds VBBinaryLensing state of its own. Detectability is on: its
    float64 chi-squared columns show the 1e-12 differences that the call history makes, which
    float32 fluxes would round away."""
    from microlens.data.store import generate_dataset
    from microlens.simulation.simulate import simulate_range

    cfg = SimulationConfig(n_per_class=6, n_epochs=150, seed=4, topology="distinct",
                           detectability=True)
    simulate_range(cfg, 2, 3)  # leave VBBinaryLensing state behind in this process
    arrays = {}
    for workers in (1, 2, 3):
        path = generate_dataset(cfg, tmp_path / f"workers{workers}", workers=workers,
                                chunk_size=3, progress=False)
        arrays[workers] = {p.name: p.read_bytes() for p in sorted(path.glob("*.npy"))}
    names = {"times.npy", "flux.npy", "flux_err.npy", "offsets.npy", "labels.npy", "split.npy",
             "params.npy"}
    assert set(arrays[1]) == names
    for workers in (2, 3):
        different = [name for name in names if arrays[workers][name] != arrays[1][name]]
        assert not different, f"workers={workers} changed {different}"


def test_survey_events_carry_the_presets_photometry_and_sampling():
    from microlens.simulation.presets import get_survey
    from microlens.simulation.survey import flux_errors as survey_flux_errors

    preset = get_survey("ogle")
    cfg = SimulationConfig(n_per_class=20, survey="ogle", topology="stellar", seed=3,
                           detectability=False)
    events = [simulate_event(cfg, i) for i in range(cfg.n_events)]
    n_obs = n_outliers = 0
    for ev in events:
        p = ev.params
        low, high = preset.error_underestimate_range
        assert low <= p["error_scale"] <= high
        assert p["cadence_per_hour"] in preset.field_cadences_per_hour
        true_errors = survey_flux_errors(preset, ev.clean_flux, p["baseline_mag"])
        np.testing.assert_allclose(ev.flux_err * p["error_scale"], true_errors, rtol=1e-12)
        assert np.all(np.diff(ev.times) > 0) and ev.times[-1] < preset.n_seasons * 365.25
        n_obs, n_outliers = n_obs + ev.times.size, n_outliers + p["n_outliers"]
    # outliers: binomial with the preset's rate, 5 standard deviations
    rate = preset.outlier_fraction
    assert abs(n_outliers - rate * n_obs) < 5 * np.sqrt(n_obs * rate * (1 - rate))
    # two seasons: the largest interval of a curve spanning both is the season gap
    spanning = [ev.times for ev in events if ev.times[-1] - ev.times[0] > 365.25]
    gap = 365.25 - preset.season_days
    assert spanning and all(np.diff(t).max() >= gap - 1 for t in spanning)


# --------------------------------------------------------------------------------------------
# SimulationConfig: every field checked at construction
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    # each names the field, the value and what is valid
    ({"reference_mag": math.nan}, r"reference_mag must be a finite number in \[10, 30\] mag, "
                                  r"got nan"),
    ({"reference_mag": "19"}, r"reference_mag must be a number in \[10, 30\] mag, got '19' "
                              r"\(str\)"),
    ({"reference_mag": 45.0}, r"reference_mag must lie in \[10, 30\] mag, got 45.0"),
    ({"n_epochs": 1}, r"n_epochs must be at least 2, got 1; the thesis survey keeps at least "
                      r"two epochs"),
    ({"n_epochs": 3}, r"detection_min_points=5 exceeds n_epochs=3: .* give n_epochs >= "
                      r"detection_min_points"),
    ({"n_epochs": 100.0}, r"n_epochs must be an integer, got 100.0 \(float\)"),
    ({"n_epochs": True}, r"n_epochs must be an integer, got True \(bool\)"),
    ({"detection_min_points": -1}, r"detection_min_points must be positive, got -1"),
    ({"detection_min_points": 0}, r"detection_min_points must be positive"),
    ({"detection_min_points": 5000}, r"detection_min_points=5000 exceeds n_epochs=1000"),
    ({"survey": "ogle", "detection_min_points": 10**8},
     r"detection_min_points=100000000 exceeds the \d+ observations survey 'ogle' can ever"),
    ({"source_mag_range": (-50, -40)}, r"source_mag_range must lie within \[10, 30\] mag, "
                                       r"got \(-50, -40\)"),
    ({"source_mag_range": (21.0, 18.0)}, r"source_mag_range has low > high"),
    ({"source_mag_range": (18.0, math.inf)}, r"source_mag_range must be finite"),
    ({"vbbl_tol": 10}, r"vbbl_tol must lie in \(0, 0.1\] .*got 10"),
    ({"vbbl_tol": 0.0}, r"vbbl_tol must lie in \(0, 0.1\]"),
    ({"split_fractions": (1, 0, 0)}, r"split_fractions must be three positive numbers .*got "
                                     r"\(1, 0, 0\) \(val, test not a positive number\)"),
    ({"split_fractions": (0.8, 0.1)}, r"split_fractions must be three positive numbers"),
    ({"split_fractions": (0.8, 0.1, 0.2)}, r"split_fractions .* sums to 1.1"),
    ({"split_fractions": ("0.8", 0.1, 0.1)}, r"split_fractions must be three positive"),
    ({"detectability": "no"}, r"detectability must be True or False, got 'no' \(str\)"),
    ({"detectability": 1}, r"detectability must be True or False, got 1 \(int\)"),
    ({"time_jitter": "0.3"}, r"time_jitter must be a number in \[0, 0.5\) .*got '0.3' \(str\)"),
    ({"time_jitter": 0.5}, r"time_jitter must lie in \[0, 0.5\)"),
    ({"gap_mean_epochs": 0.5}, r"gap_mean_epochs must lie in \[1, inf\) epochs"),
    ({"gap_share": -0.1}, r"gap_share must lie in \[0, 1\]"),
    ({"survey_days": 0}, r"survey_days must lie in \(0, inf\) days, got 0"),
    ({"survey_days": math.inf}, r"survey_days must be a finite number"),
    ({"detection_sigma": math.nan}, r"detection_sigma must be a finite number"),
    ({"max_attempts": 0}, r"max_attempts must be positive"),
    ({"seed": -1}, r"seed must be non-negative, got -1"),
    ({"seed": 1.0}, r"seed must be an integer, got 1.0 \(float\)"),
    ({"variable_fraction": True}, r"variable_fraction must be a number in \[0, 1\] .*got True"),
    ({"variable_fraction": 1.5}, r"variable_fraction must lie in \[0, 1\]"),
    ({"topology": 3}, r"topology must be a string, got 3 \(int\); valid choices: distinct, "
                      r"planetary, stellar, baseline"),
    ({"survey": None}, r"survey must be a string, got None .*valid choices: thesis, ogle"),
    ({"survey": "lsst"}, r"unknown survey preset 'lsst'; valid choices: thesis, ogle"),
    ({"cadence": 15}, r"cadence must be a string or None, got 15 \(int\); valid choices: "
                      r"cadence_05"),
    ({"magnification_backend": b"VBBinaryLensing"}, r"magnification_backend must be a string"),
    ({"t_0_range": (0.2, 1.5)}, r"t_0_range must lie within \[0, 1\] \(a fraction of the "
                                r"survey window\)"),
    ({"t_0_range": 0.5}, r"t_0_range must be a \(low, high\) pair of numbers, got 0.5"),
    ({"t_0_range": "01"}, r"t_0_range must be a \(low, high\) pair of numbers, got '01'"),
    ({"u_0_range": (-0.5, 1.0)}, r"u_0_range must lie within \[0, inf\]"),
    ({"t_E_range": (True, 80.0)}, r"t_E_range must be a \(low, high\) pair of numbers"),
    ({"f_s_range": (0.5, 1.5)}, r"f_s_range must lie in \(0, 1\]"),
])
def test_every_reported_bad_value_is_refused_naming_field_value_and_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SimulationConfig(**kwargs)


def test_numpy_scalars_are_accepted_and_stored_as_python_numbers():
    import json

    cfg = SimulationConfig(n_per_class=np.int64(4), n_epochs=np.int32(300),
                           survey_days=np.float32(150.0), reference_mag=np.float64(19.5),
                           t_E_range=np.array([5.0, 80.0]), detectability=np.bool_(False),
                           split_fractions=[np.float64(0.6), 0.2, 0.2])
    assert type(cfg.n_per_class) is int and type(cfg.n_epochs) is int
    assert type(cfg.survey_days) is float and type(cfg.reference_mag) is float
    assert cfg.t_E_range == (5.0, 80.0) and all(type(v) is float for v in cfg.t_E_range)
    assert cfg.detectability is False and cfg.split_fractions == (0.6, 0.2, 0.2)
    again = SimulationConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and isinstance(again.t_E_range, tuple)


def test_survey_presets_warn_about_thesis_only_settings_they_ignore():
    import warnings

    from microlens.simulation.simulate import IgnoredSettingWarning

    with pytest.warns(IgnoredSettingWarning, match=r"survey 'ogle' sets its own .* so "
                      r"n_epochs=300, reference_mag=18.0 have no effect; leave them at the "
                      r"default or use survey='thesis'"):
        SimulationConfig(survey="ogle", n_epochs=300, reference_mag=18.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IgnoredSettingWarning)
        SimulationConfig(survey="ogle", t_E_range=(2.0, 50.0))  # used by every survey
        SimulationConfig(n_epochs=300, reference_mag=18.0)  # thesis uses them
        SimulationConfig.from_dict({"survey": "kmtnet", "n_epochs": 300}, warn_ignored=False)


def test_a_config_at_the_edges_of_the_bounds_generates(tmp_path):
    """The bounds are what the simulator handles: two epochs, one significant point, the
    loosest tolerance, the extreme magnitudes, jitter just below half a spacing, every missing
    epoch in one-epoch gaps and the smallest splits all give a data set."""
    from microlens.data.store import generate_dataset, open_dataset
    from microlens.simulation.simulate import MAG_LIMITS, MAX_VBBL_TOL, MIN_EPOCHS

    cfg = SimulationConfig(n_per_class=3, n_epochs=MIN_EPOCHS, detection_min_points=1,
                           time_jitter=0.4999, gap_share=1.0, gap_mean_epochs=1.0,
                           vbbl_tol=MAX_VBBL_TOL, reference_mag=MAG_LIMITS[1],
                           source_mag_range=MAG_LIMITS, t_0_range=(0.0, 1.0),
                           f_s_range=(1.0, 1.0), split_fractions=(0.98, 0.01, 0.01),
                           detectability=True)
    store = open_dataset(generate_dataset(cfg, tmp_path / "edges", workers=1,
                                          progress=False))
    assert len(store) == 9 and store.config == cfg
    assert np.all((store.lengths >= 2) & (store.lengths <= MIN_EPOCHS))
    assert np.all(store.params["peak_significance"] >= cfg.detection_sigma)
