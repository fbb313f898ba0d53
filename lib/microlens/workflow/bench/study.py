"""A whole study from nothing, then its figures rebuilt: ``python -m microlens.workflow.bench
study``.

``study`` runs a study end to end (default ``quick``, the default job) from nothing in a
temporary folder (its data set simulated and its model trained there, so nothing is reused),
then rebuilds its figures from the outputs: ``seconds`` of the run, per cell and per notebook
(from each ``cell.json``), and ``figures_seconds`` of ``figures`` (per-cell and study figures,
summary and index, in the formats the notebooks used).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from microlens.workflow.bench.common import _load_average, _machine, _sig


def bench_study(study: str = "quick", overrides: dict | None = None, jobs: int = 1,
                only=(), progress: bool = True) -> dict:
    """Wall time of a study from nothing (see the module docstring), and of its figures."""
    from microlens.workflow.studies import load_study, rebuild_study_figures, run_study
    from microlens.workflow.studies.report import build_study_report

    loaded = load_study(study, overrides)
    load = _load_average()
    with tempfile.TemporaryDirectory(prefix="microlens-bench-study-") as tmp:
        outputs, data = Path(tmp) / "outputs", Path(tmp) / "data"
        start = time.perf_counter()
        run = run_study(loaded, jobs=jobs, only=only, outputs=outputs, data=data,
                        progress=progress, echo=lambda _: None)
        build_study_report(loaded.name, outputs)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        _, problems = rebuild_study_figures(loaded.name, outputs, progress=False)
        figures_seconds = time.perf_counter() - start
        cells = {}
        for result in run.results:
            record = json.loads((Path(result["directory"]) / "cell.json").read_text())
            cells[result["cell"]] = {
                "status": result["status"], "seconds": _sig(result["seconds"]),
                "notebooks": {n["notebook"]: n.get("seconds") for n in record["notebooks"]}}
    return {
        "benchmark": "study", "study": loaded.name, "overrides": overrides or {},
        "jobs": jobs, "cells": cells, "seconds": _sig(seconds),
        "figures_seconds": _sig(figures_seconds), "figure_problems": problems,
        "machine": _machine("cpu", None, load),
    }

