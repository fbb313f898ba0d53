"""How far the model's causal baseline reference is from the true baseline, in units of noise.

The flux feature of every observation is ``asinh((F - b) / s)`` with a causal baseline ``b``
(:meth:`microlens.models.inputs.Normalization.reference`). Simulated fluxes are in baseline units,
so the true baseline is 1 (:mod:`microlens.simulation.simulate`) and the noise at the baseline is
``sigma_0 = MAG_TO_FLUX * baseline_mag_error`` (the parameter table's column). For each event
the error ``|b_k - 1| / sigma_0`` is read at chosen observations ``k``:

* ``at_reference``: observation ``reference_points`` (the first complete reference; the same for
  every method),
* ``at_<p>pct``: after ``p`` % of the curve (``ceil(p n / 100)`` observations),
* ``final``: after the last observation,
* ``mean``: the mean over the observations from ``reference_points`` on (what the model sees
  on average),

and summarised by its 50th, 90th and 99th percentiles over events. Command line (JSON out)::

    python -m microlens.evaluation.analysis.baseline --n-per-class 1000 --topology stellar
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import numpy as np

from microlens.core.cli import TerminalHelpFormatter, add_traceback_option, command_line

PERCENTILES = (50, 90, 99)
"""Percentiles over events reported by :func:`baseline_error_summary`."""

FRACTIONS = (0.1, 0.25, 0.5)
"""Fractions of each curve at which :func:`baseline_errors` reads the error (besides the end)."""


def baseline_sigma(params: np.ndarray) -> np.ndarray:
    """Per-event flux noise at the baseline ``sigma_0`` [baseline flux units] from a parameter
    table (``MAG_TO_FLUX * baseline_mag_error``, :mod:`microlens.simulation.simulate`)."""
    from microlens.simulation.simulate import MAG_TO_FLUX

    return MAG_TO_FLUX * np.asarray(params["baseline_mag_error"], np.float64)


def baseline_errors(normalization, flux, flux_err, mask, sigma, *, true_baseline: float = 1.0,
                    fractions: Sequence[float] = FRACTIONS) -> dict[str, np.ndarray]:
    """Per-event error of the causal baseline, ``|b - true_baseline| / sigma``.

    Parameters
    ----------
    normalization : microlens.models.inputs.Normalization
        Its :meth:`~microlens.models.inputs.Normalization.reference` gives ``b`` (only
        ``reference_points`` and ``baseline_method`` matter).
    flux, flux_err : array ``(E, N)``
        Fluxes and errors, valid observations first (padding at the end).
    mask : array ``(E, N)`` of bool
        True at real observations; every event needs at least one.
    sigma : array ``(E,)``
        Noise of each event at its baseline (:func:`baseline_sigma`), positive.
    true_baseline : float
        The true baseline flux (1 for simulated events).
    fractions : sequence of float
        Fractions of each curve in (0, 1] at which to read the error.

    Returns
    -------
    dict of str to ndarray ``(E,)``
        ``at_reference``, ``at_<p>pct`` for each fraction, ``final`` and ``mean`` (see the
        module docstring).
    """
    import torch

    from microlens.models.holdout import observations_seen

    mask = np.asarray(mask, bool)
    sigma = np.asarray(sigma, np.float64)
    lengths = mask.sum(axis=1)
    if mask.ndim != 2 or lengths.min(initial=1) < 1:
        raise ValueError("mask must be (events, observations) with at least one observation "
                         "per event")
    if sigma.shape != lengths.shape or not np.all(np.isfinite(sigma) & (sigma > 0)):
        raise ValueError(f"sigma must hold one positive finite noise per event ({lengths.size}), "
                         f"got shape {sigma.shape}")
    base, _ = normalization.reference(torch.as_tensor(np.asarray(flux, np.float32)),
                                      torch.as_tensor(np.asarray(flux_err, np.float32)))
    error = np.abs(base.double().numpy() - true_baseline) / sigma[:, None]
    rows = np.arange(lengths.size)
    first = np.minimum(normalization.reference_points, lengths) - 1
    out = {"at_reference": error[rows, first]}
    for fraction in fractions:
        out[f"at_{round(100 * fraction):g}pct"] = error[rows, observations_seen(lengths,
                                                                                fraction) - 1]
    out["final"] = error[rows, lengths - 1]
    counted = mask & (np.arange(mask.shape[1])[None, :] >= first[:, None])
    out["mean"] = np.where(counted, error, 0.0).sum(axis=1) / counted.sum(axis=1)
    return out


def baseline_error_summary(errors: dict[str, np.ndarray],
                           percentiles: Sequence[float] = PERCENTILES) -> dict:
    """Percentiles over events of each entry of :func:`baseline_errors`, and the share of
    events whose error exceeds 1 and 2 sigma: ``{entry: {"p50": ..., "above_1sigma": ...}}``."""
    summary = {}
    for name, values in errors.items():
        row = {f"p{p:g}": float(np.percentile(values, p)) for p in percentiles}
        row["above_1sigma"] = float(np.mean(values > 1.0))
        row["above_2sigma"] = float(np.mean(values > 2.0))
        summary[name] = row
    return summary


def measure_baseline(n_per_class: int = 1000, topology: str = "stellar", seed: int = 0,
                     reference_points: int = 20, baseline_tolerance: float = 2.0,
                     methods: Sequence[str] | None = None, **simulation) -> dict:
    """Simulate one fixed set (default cadence and error) and compare baseline methods on it.

    Parameters
    ----------
    n_per_class : int
        Events per class (``3 * n_per_class`` in all).
    topology : str
        Binary topology preset.
    seed : int
        Data-set seed.
    reference_points : int
        ``Normalization.reference_points``.
    baseline_tolerance : float
        ``Normalization.baseline_tolerance`` (of the ``"robust"`` method).
    methods : sequence of str, optional
        Baseline methods to compare (default: all of
        :data:`microlens.models.inputs.BASELINE_METHODS`).
    **simulation
        Further :class:`~microlens.simulation.simulate.SimulationConfig` settings (e.g.
        ``n_epochs``).

    Returns
    -------
    dict
        The settings and, per method, :func:`baseline_error_summary` over all events and per
        class (``{"all": ..., "no_event": ..., ...}``).
    """
    from microlens.core.classes import CLASS_NAMES
    from microlens.models.inputs import BASELINE_METHODS, Normalization
    from microlens.simulation.simulate import SimulationConfig, simulate_range

    cfg = SimulationConfig(n_per_class=n_per_class, topology=topology, seed=seed,
                           detectability=False, **simulation)
    from microlens.data.store import pad_events

    data = simulate_range(cfg, 0, cfg.n_events)
    offsets = np.concatenate([[0], np.cumsum(data["lengths"])])
    data.update(pad_events(data, offsets, np.arange(cfg.n_events), names=("flux", "flux_err")))
    sigma = baseline_sigma(data["params"])
    labels = np.asarray(data["labels"])
    result = {"n_events": int(cfg.n_events), "topology": topology, "seed": seed,
              "cadence": cfg.cadence, "error": cfg.error, "n_epochs": cfg.n_epochs,
              "reference_points": reference_points, "baseline_tolerance": baseline_tolerance,
              "methods": {}}
    for method in methods or BASELINE_METHODS:
        norm = Normalization(reference_points=reference_points, baseline_method=method,
                             baseline_tolerance=baseline_tolerance)
        errors = baseline_errors(norm, data["flux"], data["flux_err"], data["mask"], sigma)
        per_class = {"all": baseline_error_summary(errors)}
        for c, name in enumerate(CLASS_NAMES):
            per_class[name] = baseline_error_summary({k: v[labels == c]
                                                      for k, v in errors.items()})
        result["methods"][method] = per_class
    return result


@command_line
def main(argv=None) -> int:
    """``python -m microlens.evaluation.analysis.baseline``; an input error is one line on stderr,
    exit
    status 2 (:mod:`microlens.core.cli`)."""
    parser = argparse.ArgumentParser(prog="python -m microlens.evaluation.analysis.baseline",
                                     formatter_class=TerminalHelpFormatter,
                                     description=__doc__.split("\n\n")[0])
    add_traceback_option(parser)
    parser.add_argument("--n-per-class", type=int, default=1000)
    parser.add_argument("--topology", default="stellar")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference-points", type=int, default=20)
    parser.add_argument("--baseline-tolerance", type=float, default=2.0)
    parser.add_argument("--output", help="also write the JSON here (atomically)")
    args = parser.parse_args(argv)
    result = measure_baseline(args.n_per_class, args.topology, args.seed, args.reference_points,
                              args.baseline_tolerance)
    if args.output:
        from microlens.core.paths import write_json_atomic

        write_json_atomic(args.output, result)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
