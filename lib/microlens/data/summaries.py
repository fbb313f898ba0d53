"""Small numeric summaries of a dataset for notebooks, metrics files and figure legends.

Everything here is plain numpy on the parameter table, so it is cheap, testable and shared by
the figures (:mod:`microlens.reports`) and the metrics JSON the notebooks write.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from microlens.core.classes import CLASS_NAMES

DETECTABILITY_THRESHOLD = 100.0
"""Default Δχ² above which a signal counts as detectable (binary vs best PSPL, PSPL vs flat)."""


def _params(store_or_params) -> np.ndarray:
    """The structured parameter table of a store (anything with ``.params``) or the table itself."""
    params = getattr(store_or_params, "params", store_or_params)
    names = getattr(getattr(params, "dtype", None), "names", None) or ()
    missing = {"label", "dchi2_flat", "dchi2_pspl"} - set(names)
    if missing:
        raise ValueError(f"parameter table lacks column(s) {sorted(missing)}")
    return params


def dchi2_values(store, label: int, column: str) -> np.ndarray:
    """Finite values of a detectability column (``dchi2_flat`` or ``dchi2_pspl``) for one class.

    ``store`` is a LightCurveStore, anything with ``.params``, or the parameter table itself.
    """
    params = _params(store)
    values = np.asarray(params[column], dtype=np.float64)[np.asarray(params["label"]) == label]
    return values[np.isfinite(values)]


def _fraction_above(values: np.ndarray, threshold: float) -> float | None:
    return float(np.mean(values > threshold)) if values.size else None


def detectability_summary(store, threshold: float = DETECTABILITY_THRESHOLD) -> dict:
    """How many lensing events carry a detectable signal.

    Parameters
    ----------
    store : LightCurveStore, object with ``.params``, or structured ndarray
        Needs the columns ``label``, ``dchi2_flat`` and ``dchi2_pspl``.
    threshold : float
        Δχ² cut (default 100).

    Returns
    -------
    dict
        ``threshold``; ``n_binary`` (binaries with a finite ``dchi2_pspl``);
        ``binary_detectable_fraction`` (share of them with ``dchi2_pspl > threshold``, i.e.
        distinguishable from any single lens); ``binary_median_dchi2_pspl``; ``n_pspl``;
        ``pspl_detectable_fraction`` (share of PSPL events with ``dchi2_flat > threshold``).
        Fractions and the median are None when no finite values exist (detectability off).
    """
    binary = dchi2_values(store, CLASS_NAMES.index("binary"), "dchi2_pspl")
    pspl = dchi2_values(store, CLASS_NAMES.index("pspl"), "dchi2_flat")
    return {
        "threshold": float(threshold),
        "n_binary": int(binary.size),
        "binary_detectable_fraction": _fraction_above(binary, threshold),
        "binary_median_dchi2_pspl": float(np.median(binary)) if binary.size else None,
        "n_pspl": int(pspl.size),
        "pspl_detectable_fraction": _fraction_above(pspl, threshold),
    }


def simulation_metrics(store, threshold: float = DETECTABILITY_THRESHOLD) -> dict:
    """The metrics record of a generated dataset (what ``01_simulate`` writes as JSON).

    Returns
    -------
    dict
        ``dataset_dir`` (absolute), ``n_events``, ``class_counts``, ``split_counts``,
        ``events_per_second`` (of the generation that wrote the dataset), ``detectability``
        (:func:`detectability_summary`, or None when the dataset was generated without it) and
        ``config`` (the simulation config as stored in the manifest).
    """
    manifest = store.manifest
    config = manifest["config"]
    return {
        "dataset_dir": str(Path(store.path).resolve()),
        "n_events": len(store),
        "class_counts": dict(manifest["class_counts"]),
        "split_counts": dict(manifest["split_counts"]),
        "events_per_second": manifest.get("generation", {}).get("events_per_second"),
        "detectability": (detectability_summary(store, threshold)
                          if config.get("detectability", True) else None),
        "config": config,
    }
