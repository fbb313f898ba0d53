"""How detectable an event's lensing signal is, from least-squares fits to its noisy data.

For every event we store

* ``dchi2_flat = chi2(best constant) - chi2(truth)``: how far the data are from no event;
* ``dchi2_pspl = chi2(best blended PSPL) - chi2(truth)``: for a binary, how far its data are
  from any single lens. Near zero (or negative) means the binarity is physically invisible in
  this light curve; that fraction is the ceiling every binary metric must be read against.

The fits are those of :mod:`microlens.simulation.pspl_fit` (shared with the classical peer): the
best weighted constant and the best blended PSPL from several starts, one of them at the truth.
"""

from __future__ import annotations

import numpy as np

from microlens.simulation.pspl_fit import fit_pspl, flat_chi2, pspl_starts


def detectability(times: np.ndarray, flux: np.ndarray, err: np.ndarray, truth_flux: np.ndarray,
                  guess: tuple[float, float, float] | None = None) -> dict[str, float]:
    """Chi-squared differences of the best flat and PSPL fits against the truth.

    Parameters
    ----------
    times, flux, err : ndarray
        The noisy observations.
    truth_flux : ndarray
        Noise-free flux of the true model at the same times.
    guess : (t_0, u_0, t_E), optional
        Extra PSPL starting point (for simulated events, the true shared parameters).

    Returns
    -------
    dict
        ``dchi2_flat`` and ``dchi2_pspl`` (both ``chi2(best fit) - chi2(truth)``).
    """
    chi2_truth = float(np.sum(((flux - truth_flux) / err) ** 2))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        chi2_pspl, _ = fit_pspl(times, flux, err, pspl_starts(times, flux, err, guess))
    return {
        "dchi2_flat": flat_chi2(flux, err) - chi2_truth,
        "dchi2_pspl": chi2_pspl - chi2_truth,
    }
