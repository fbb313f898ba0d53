"""Dataset generation throughput: ``python -m microlens.bench simulate``.

``simulate`` reports events per second on light curves of ``--epochs`` nominal epochs for

* ``mixed``: the three-class set as a training set is made (detectability off), end to end
  through :func:`microlens.store.generate_dataset` (simulation, chunk files, assembly);
* ``binary_only``: binary-lens events alone (the VBBinaryLensing-bound part), simulated in the
  same worker layout without disk I/O, plus the single-core time per binary event;
* ``mixed_with_detectability``: the mixed set with the flat and PSPL least-squares fits on.
"""

from __future__ import annotations

import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from ..simulate import SimulationConfig, default_workers


def _timed_generation(cfg: SimulationConfig, workers: int, root: Path, name: str,
                      chunk_size: int) -> float:
    from ..store import generate_dataset

    started = time.perf_counter()
    generate_dataset(cfg, root / name, workers=workers, chunk_size=chunk_size, progress=False)
    return time.perf_counter() - started


def bench_simulate(events: int = 6000, workers: int | None = None, epochs: int = 1000,
                   topology: str = "baseline", seed: int = 0) -> dict:
    """Events per second of dataset generation; see the module docstring.

    Parameters
    ----------
    events : int
        Events in the mixed set (the binary-only and detectability runs use a third of it).
    workers : int, optional
        Worker processes (default: all cores).
    epochs : int
        Nominal epochs per light curve.
    """
    from ..simulate import simulate_event

    workers = default_workers() if workers is None else workers
    per_class = max(1, events // 3)
    base = SimulationConfig(n_per_class=per_class, n_epochs=epochs, topology=topology, seed=seed,
                            detectability=False)
    chunk = max(50, min(500, per_class * 3 // (4 * workers)))  # >= 4 chunks per worker
    results = {}
    with tempfile.TemporaryDirectory(prefix="microlens-bench-") as tmp:
        root = Path(tmp)
        seconds = _timed_generation(base, workers, root, "mixed", chunk)
        results["mixed"] = {"events": base.n_events, "seconds": round(seconds, 3),
                            "events_per_second": round(base.n_events / seconds, 1)}

        small = replace(base, n_per_class=max(1, per_class // 3), detectability=True)
        seconds = _timed_generation(small, workers, root, "detect", chunk)
        results["mixed_with_detectability"] = {
            "events": small.n_events, "seconds": round(seconds, 3),
            "events_per_second": round(small.n_events / seconds, 1)}

    # Binary events alone, in the same worker pool layout (the magnification-bound case).
    binary_indices = [3 * i + 2 for i in range(per_class)]
    seconds = _parallel_events(base, binary_indices, workers)
    results["binary_only"] = {"events": len(binary_indices), "seconds": round(seconds, 3),
                              "events_per_second": round(len(binary_indices) / seconds, 1)}
    start = time.perf_counter()
    for index in binary_indices[:200]:
        simulate_event(base, index)
    single = (time.perf_counter() - start) / min(200, len(binary_indices))
    results["binary_single_core_ms_per_event"] = round(1e3 * single, 3)

    return {
        "benchmark": "simulate",
        "workers": workers,
        "n_epochs": epochs,
        "topology": topology,
        "vbbl_tol": base.vbbl_tol,
        "target_mixed_events_per_second": 1000,
        **results,
        "machine": {"python": platform.python_version(), "processor": platform.machine(),
                    "cores_available": default_workers()},
    }


def _simulate_indices(cfg: SimulationConfig, indices: list[int]) -> int:
    from ..simulate import simulate_event

    for index in indices:
        simulate_event(cfg, index)
    return len(indices)


def _parallel_events(cfg: SimulationConfig, indices: list[int], workers: int) -> float:
    from concurrent.futures import ProcessPoolExecutor

    from ..store import clean_process_context

    parts = [indices[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=clean_process_context()) as pool:
        list(pool.map(_simulate_indices, [cfg] * workers, [[parts[0][0]]] * workers))  # warm up
        started = time.perf_counter()
        list(pool.map(_simulate_indices, [cfg] * workers, parts))
        return time.perf_counter() - started

