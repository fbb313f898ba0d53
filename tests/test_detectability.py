"""Least-squares fits behind the detectability columns (:mod:`microlens.simulation.pspl_fit`)."""

from __future__ import annotations

import numpy as np
import pytest

from microlens.simulation.detectability import detectability
from microlens.simulation.pspl_fit import fit_pspl, flat_chi2, pspl_magnification, pspl_starts
from microlens.simulation.simulate import SimulationConfig, simulate_event


def noisy(clean, sigma, seed=0):
    rng = np.random.default_rng(seed)
    return clean + sigma * rng.standard_normal(clean.size)


def test_pspl_fit_recovers_blended_parameters():
    t = np.sort(np.random.default_rng(1).uniform(0, 200, 800))
    clean = 0.4 * pspl_magnification(t, 97.0, 0.15, 18.0) + 0.6
    err = np.full_like(t, 0.01)
    chi2, best = fit_pspl(t, noisy(clean, err), err, pspl_starts(t, noisy(clean, err), err))
    assert best["t_0"] == pytest.approx(97.0, abs=0.2)
    assert best["u_0"] == pytest.approx(0.15, rel=0.1)
    assert best["t_E"] == pytest.approx(18.0, rel=0.1)
    assert best["f_source"] == pytest.approx(0.4, rel=0.1)
    assert chi2 == pytest.approx(t.size, rel=0.15)


def test_flat_chi2_is_the_weighted_mean_fit():
    flux = np.array([1.0, 2.0, 3.0])
    err = np.array([1.0, 1.0, 1.0])
    assert flat_chi2(flux, err) == pytest.approx(2.0)


def test_detectability_separates_the_classes():
    cfg = SimulationConfig(n_per_class=40, n_epochs=600, topology="stellar", error="error_003",
                           seed=21)
    rows = [simulate_event(cfg, i).params for i in range(120)]
    by_label = {c: [r for r in rows if r["label"] == c] for c in range(3)}
    # flat and PSPL data are fit by the PSPL model as well as by the truth (chi2 within noise)
    for c in (0, 1):
        assert all(-40 < r["dchi2_pspl"] < 15 for r in by_label[c])
    assert all(-15 < r["dchi2_flat"] < 15 for r in by_label[0])
    assert all(r["dchi2_flat"] > 25 for r in by_label[1])
    # stellar binaries at 0.03 mag: most are far from any single lens
    assert np.mean([r["dchi2_pspl"] > 100 for r in by_label[2]]) > 0.5


def test_caustic_crossing_binary_is_highly_detectable():
    from microlens.simulation.simulate import binary_magnification

    t = np.linspace(0, 200, 1000)
    mag = binary_magnification(t, 100.0, 0.05, 20.0, 1e-3, 1.0, 0.3, 0.6)
    clean = 0.5 * mag + 0.5
    err = 0.02 * np.sqrt(clean)
    result = detectability(t, noisy(clean, err), err, clean, (100.0, 0.05, 20.0))
    assert result["dchi2_pspl"] > 1000


def test_fit_that_runs_away_in_t_E_stays_finite():
    """Regression: in this binary the best PSPL fit drives ln t_E past exp's range."""
    cfg = SimulationConfig(n_per_class=1000, topology="distinct", cadence="cadence_15",
                           error="error_005", seed=123, detectability=False)
    ev = simulate_event(cfg, 2913)
    t_0, u_0, t_E = ev.params["t_0"], ev.params["u_0"], ev.params["t_E"]
    chi2, best = fit_pspl(ev.times, ev.flux, ev.flux_err,
                          pspl_starts(ev.times, ev.flux, ev.flux_err, (t_0, u_0, t_E)))
    assert np.isfinite(chi2) and all(np.isfinite(v) for v in best.values())
    assert chi2 <= flat_chi2(ev.flux, ev.flux_err) + 1e-6


def test_simulator_and_peer_share_the_one_pspl_model():
    """One PSPL formula: the simulator's name is the fit module's function, not a copy."""
    from microlens.models import peer as classical
    from microlens.simulation import pspl_fit, simulate

    assert simulate.pspl_magnification is pspl_fit.pspl_magnification
    assert classical.fit_pspl is pspl_fit.fit_pspl
    # A(u) at u = 1 is 3 / sqrt(5); far from the peak it tends to 1.
    a = pspl_fit.pspl_magnification(np.array([0.0, 1e6]), 0.0, 1.0, 10.0)
    np.testing.assert_allclose(a, [3.0 / np.sqrt(5.0), 1.0], rtol=1e-12)
