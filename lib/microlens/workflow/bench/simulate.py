"""Dataset generation throughput: ``python -m microlens.workflow.bench simulate``.

``simulate`` reports events per second on the light curves of ``--survey`` (default ``thesis``:
``--epochs`` nominal epochs; a real survey, ``ogle``, ``kmtnet``, ``moa`` or ``roman``, sets its
own observing pattern and ignores ``--epochs``) for

* ``mixed``: the three-class set as a training set is made (detectability off), end to end
  through :func:`microlens.data.store.generate_dataset` (simulation, chunk files, assembly), with
  the observations per event (``observations``: mean, median, 95th percentile, max, overall and
  per class) and ``observations_per_second``;
* ``binary_only``: binary-lens events alone (the VBBinaryLensing-bound part), simulated in the
  same worker layout without disk I/O, plus the single-core time per binary event;
* ``per_class``: single-core milliseconds per event, events per second and observations per
  second of each class (no event, PSPL, binary) on up to 200 events of that class, in process;
* ``mixed_with_detectability``: the mixed set (a third of ``--events``) with the flat and PSPL
  least-squares fits on, its observation counts and observations per second.

``--survey all`` runs every survey one after another in one process (``surveys``) and adds
``ratios_to_thesis``: each survey's figures over the ``thesis`` survey's of the same run, so
they can be compared on a loaded machine. A bad survey name is refused with the valid choices.

``--baselines FOLDER`` (a folder of real curves in the EWS layout) adds ``injection`` beside
each survey's figures: the same mixed set made by injecting the events into the real baselines
of that folder (:mod:`microlens.simulation.injection`, the survey's window length and priors) in the
same run, with ``catalogue_seconds`` (reading the folder once), its ``mixed`` figures and
``events_per_second_ratio_to_synthetic`` (injection over the synthetic mixed set).
"""

from __future__ import annotations

import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from microlens.simulation.simulate import SimulationConfig, default_workers

ALL_SURVEYS = "all"
"""The ``--survey`` value that runs every survey preset in turn."""

PER_CLASS_SAMPLE = 200
"""Events per class timed on one core for ``per_class``."""

RATIO_FIGURES = {
    "mixed_events_per_second": ("mixed", "events_per_second"),
    "mixed_observations_per_second": ("mixed", "observations_per_second"),
    "mixed_mean_observations": ("mixed", "observations", "all", "mean"),
    "detectability_events_per_second": ("mixed_with_detectability", "events_per_second"),
    "detectability_observations_per_second": ("mixed_with_detectability",
                                              "observations_per_second"),
    "binary_only_events_per_second": ("binary_only", "events_per_second"),
}
"""The figures ``ratios_to_thesis`` divides (key path in a survey's report)."""


def survey_names() -> list[str]:
    """The survey presets, ``thesis`` first (the reference of the ratios)."""
    from microlens.simulation.presets import SURVEYS

    return ["thesis", *[name for name in SURVEYS if name != "thesis"]]


def _timed_generation(cfg: SimulationConfig, workers: int, root: Path, name: str,
                      chunk_size: int) -> float:
    from microlens.data.store import generate_dataset

    started = time.perf_counter()
    generate_dataset(cfg, root / name, workers=workers, chunk_size=chunk_size, progress=False)
    return time.perf_counter() - started


def _count_stats(lengths: np.ndarray) -> dict:
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size == 0:
        return {"events": 0}
    return {"events": int(lengths.size), "mean": round(float(lengths.mean()), 1),
            "median": round(float(np.median(lengths)), 1),
            "p95": round(float(np.percentile(lengths, 95)), 1),
            "min": int(lengths.min()), "max": int(lengths.max())}


def observation_stats(lengths, labels) -> dict:
    """Observations per event: ``all`` and per class name (mean, median, p95, min, max)."""
    from microlens.core.classes import CLASS_NAMES

    lengths, labels = np.asarray(lengths), np.asarray(labels)
    stats = {"all": _count_stats(lengths)}
    for label, name in enumerate(CLASS_NAMES):
        stats[name] = _count_stats(lengths[labels == label])
    return stats


def _generation_figures(cfg: SimulationConfig, workers: int, root: Path, name: str,
                        chunk: int) -> dict:
    from microlens.data.store import open_dataset

    seconds = _timed_generation(cfg, workers, root, name, chunk)
    store = open_dataset(root / name)
    lengths, labels = np.asarray(store.lengths), np.asarray(store.labels)
    return {"events": cfg.n_events, "seconds": round(seconds, 3),
            "events_per_second": round(cfg.n_events / seconds, 1),
            "observations_per_second": round(float(lengths.sum()) / seconds),
            "observations": observation_stats(lengths, labels)}


def _per_class(cfg: SimulationConfig, per_class: int) -> dict:
    """Single-core time per event of each class, in this process."""
    from microlens.core.classes import CLASS_NAMES
    from microlens.simulation.simulate import simulate_event

    sample = min(per_class, PER_CLASS_SAMPLE)
    out = {}
    for label, name in enumerate(CLASS_NAMES):
        observations = 0
        started = time.perf_counter()
        for i in range(sample):
            observations += simulate_event(cfg, len(CLASS_NAMES) * i + label).times.size
        seconds = time.perf_counter() - started
        out[name] = {"events": sample, "ms_per_event": round(1e3 * seconds / sample, 3),
                     "events_per_second": round(sample / seconds, 1),
                     "observations_per_second": round(observations / seconds),
                     "mean_observations": round(observations / sample, 1)}
    return out


def bench_simulate(events: int = 6000, workers: int | None = None, epochs: int = 1000,
                   topology: str = "baseline", seed: int = 0, survey: str = "thesis",
                   baselines: str | None = None) -> dict:
    """Events per second of dataset generation; see the module docstring.

    Parameters
    ----------
    events : int
        Events in the mixed set (the binary-only and detectability runs use a third of it).
    workers : int, optional
        Worker processes (default: all cores).
    epochs : int
        Nominal epochs per light curve (``thesis`` survey only; the others ignore it).
    survey : str
        A survey preset (``thesis``, ``ogle``, ``kmtnet``, ``moa``, ``roman``) or ``all``: every
        one in turn, side by side, with ratios to ``thesis``.
    baselines : str, optional
        A folder of real curves in the EWS layout: also time injection into its baselines
        beside each survey (see the module docstring).

    Raises
    ------
    ValueError
        An unknown survey or topology, with the valid choices.
    """
    workers = default_workers() if workers is None else workers
    if survey == ALL_SURVEYS:
        names = survey_names()
    else:
        names = [survey]
    if survey != ALL_SURVEYS:
        from microlens.simulation.presets import get_survey

        try:
            get_survey(survey)
        except ValueError as exc:  # the config's own message, naming the valid choices
            raise ValueError(f"{exc} (or {ALL_SURVEYS!r}: each in turn)") from None
    if baselines is not None:  # before any timing: a bad folder fails at once
        from microlens.core.paths import resolve_path

        if not resolve_path(baselines).is_dir():
            raise ValueError(f"--baselines {baselines!r} is not a folder (resolved to "
                             f"{resolve_path(baselines)}); give a folder of real curves in "
                             "the EWS layout")
    per_class = max(1, events // 3)
    # --epochs only where it counts: the report's n_epochs_note already says a survey preset
    # ignores it, which SimulationConfig would otherwise repeat as a warning
    configs = {name: SimulationConfig(n_per_class=per_class, topology=topology, seed=seed,
                                      detectability=False, survey=name,
                                      **({"n_epochs": epochs} if name == "thesis" else {}))
               for name in names}  # every name checked before anything runs
    machine = {"python": platform.python_version(), "processor": platform.machine(),
               "cores_available": default_workers()}
    reports = {name: _bench_one(cfg, workers) for name, cfg in configs.items()}
    if baselines is not None:
        for name, cfg in configs.items():
            reports[name]["injection"] = _bench_injection(cfg, workers, baselines,
                                                          reports[name]["mixed"])
    if survey != ALL_SURVEYS:
        return {**reports[survey], "machine": machine}
    return {"benchmark": "simulate", "survey": ALL_SURVEYS, "workers": workers,
            "topology": topology, "events": configs["thesis"].n_events,
            "surveys": reports, "ratios_to_thesis": _ratios_to_thesis(reports),
            "machine": machine}


def _bench_one(base: SimulationConfig, workers: int) -> dict:
    from microlens.simulation.presets import get_survey

    per_class = base.n_per_class
    thesis = get_survey(base.survey).is_thesis
    chunk = max(50, min(500, per_class * 3 // (4 * workers)))  # >= 4 chunks per worker
    started = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory(prefix="microlens-bench-") as tmp:
        root = Path(tmp)
        results["mixed"] = _generation_figures(base, workers, root, "mixed", chunk)
        small = replace(base, n_per_class=max(1, per_class // 3), detectability=True)
        results["mixed_with_detectability"] = _generation_figures(small, workers, root,
                                                                  "detect", chunk)

    # Binary events alone, in the same worker pool layout (the magnification-bound case).
    binary_indices = [3 * i + 2 for i in range(per_class)]
    seconds = _parallel_events(base, binary_indices, workers)
    results["binary_only"] = {"events": len(binary_indices), "seconds": round(seconds, 3),
                              "events_per_second": round(len(binary_indices) / seconds, 1)}
    results["per_class"] = _per_class(base, per_class)
    results["binary_single_core_ms_per_event"] = results["per_class"]["binary"]["ms_per_event"]

    return {
        "benchmark": "simulate",
        "survey": base.survey,
        "workers": workers,
        "n_epochs": base.n_epochs if thesis else None,
        "n_epochs_note": None if thesis else f"survey {base.survey!r} sets its own observing "
                                             "pattern: --epochs is ignored",
        "topology": base.topology,
        "vbbl_tol": base.vbbl_tol,
        "target_mixed_events_per_second": 1000,
        **results,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def _bench_injection(base: SimulationConfig, workers: int, baselines: str,
                     synthetic: dict) -> dict:
    """The mixed set made by injection into the real baselines of ``baselines`` (same survey,
    events and workers as the synthetic ``mixed`` figures it is compared with)."""
    from microlens.simulation.injection import catalogue_for

    cfg = replace(base, baselines=str(baselines))
    started = time.perf_counter()
    catalogue = catalogue_for(cfg)  # read once here; the timed generation reuses it
    catalogue_seconds = time.perf_counter() - started
    chunk = max(50, min(500, cfg.n_per_class * 3 // (4 * workers)))
    with tempfile.TemporaryDirectory(prefix="microlens-bench-") as tmp:
        mixed = _generation_figures(cfg, workers, Path(tmp), "injection", chunk)
    ratio = (mixed["events_per_second"] / synthetic["events_per_second"]
             if synthetic.get("events_per_second") else None)
    return {"baselines": str(baselines), "usable_stars": len(catalogue),
            "catalogue_seconds": round(catalogue_seconds, 2), "mixed": mixed,
            "events_per_second_ratio_to_synthetic": None if ratio is None else round(ratio, 3)}


def _dig(report: dict, path: tuple[str, ...]):
    for key in path:
        report = (report or {}).get(key)
    return report


def _ratios_to_thesis(reports: dict) -> dict:
    """Each survey's :data:`RATIO_FIGURES` over the ``thesis`` survey's of the same run."""
    reference = reports["thesis"]
    ratios = {}
    for name, report in reports.items():
        ratios[name] = {}
        for figure, path in RATIO_FIGURES.items():
            top, bottom = _dig(report, path), _dig(reference, path)
            ratios[name][figure] = round(top / bottom, 3) if top and bottom else None
    return ratios


def _simulate_indices(cfg: SimulationConfig, indices: list[int]) -> int:
    from microlens.simulation.simulate import simulate_event

    for index in indices:
        simulate_event(cfg, index)
    return len(indices)


def _parallel_events(cfg: SimulationConfig, indices: list[int], workers: int) -> float:
    from microlens.core.processes import clean_process_pool

    parts = [indices[i::workers] for i in range(workers)]
    with clean_process_pool(workers) as pool:
        list(pool.map(_simulate_indices, [cfg] * workers, [[parts[0][0]]] * workers))  # warm up
        started = time.perf_counter()
        list(pool.map(_simulate_indices, [cfg] * workers, parts))
        return time.perf_counter() - started
