"""Run a study: every cell's notebooks through papermill, in order, resumably, in isolation.

Where things go (``outputs`` and ``data`` are the roots, by default the project's)::

    outputs/<study>/<cell>/          a finished cell: executed notebooks, records, figures,
                                     cell.json (parameters, artefacts, timings)
    outputs/<study>/<cell>.partial/  a cell being run, or one that failed (its executed
                                     notebook holds the traceback); the next run resumes it
    outputs/<study>/study.json       the expanded study as last run
    data/studies/<key>/              datasets, shared by every cell (of any study) whose
                                     01_simulate parameters agree
    outputs/runs/studies/<key>/      trained runs, shared likewise (dataset + 02_train)

A cell is renamed from ``.partial`` only when all its notebooks succeeded, so a folder without
the suffix is always complete. A ``<cell>.partial/`` beside a ``<cell>/`` that is finished with
the current parameters is stale (a failed ``--force`` rerun, or a run of parameters the study
has since gone back from): ``run`` removes it (``--dry-run`` names it); one beside a cell
finished with *other* parameters is the resumable rerun and stays. A finished cell is skipped
on the next run unless its parameters changed (or ``force``). Within an unfinished cell the
notebooks that already succeeded with the same parameters are not run again; an interrupted
training resumes from its last checkpoint.

While a cell runs, the progress bar shows its notebook and, during training, the epoch and the
time left, read from the run's own ``history.csv``. SIGINT and SIGTERM end a study with one line
(:class:`StudyInterrupted`) saying which cells finished and that the same command resumes.
Shared artefacts are made under a file lock, so parallel cells (and parallel runners) make
each one once.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from multiprocessing import get_context
from pathlib import Path

from microlens.core.paths import project_relative, resolve_path, write_json_atomic
from microlens.core.removal import (
    UnsafeDeleteError,
    check_removable,
    mark_project_dir,
    remove_project_dir,
)
from microlens.workflow.notebooks import ARTIFACTS, NOTEBOOK_DIR
from microlens.workflow.studies.definition import (
    Cell,
    Study,
    StudyError,
    artifact_key,
    declared_parameters,
    fingerprint,
    notebook_path,
)

CELL_RECORD = "cell.json"
PARTIAL_SUFFIX = ".partial"
RESERVED_STUDY_NAMES = ("runs", "lab")  # outputs/runs: trained runs; outputs/lab: notebooks by hand


def study_dir(study_name: str, outputs: str | os.PathLike | None = None) -> Path:
    """``outputs/<study>``; the study name may not shadow ``outputs/runs`` or ``outputs/lab``."""
    if study_name in RESERVED_STUDY_NAMES:
        raise StudyError(f"a study may not be called {study_name!r} (outputs/{study_name} is "
                         f"taken; reserved: {', '.join(RESERVED_STUDY_NAMES)}); rename the file")
    return resolve_path(outputs or "outputs") / study_name


def artifact_dir(kind: str, key: str, *, outputs=None, data=None) -> Path:
    """Where a shared artefact lives: ``data/studies/<key>`` or ``outputs/runs/studies/<key>``."""
    if kind == "dataset":
        return resolve_path(data or "data") / "studies" / key
    return resolve_path(outputs or "outputs") / "runs" / "studies" / key


@dataclass
class CellPlan:
    """What the runner will do with one cell."""

    study: str
    cell: Cell
    directory: Path          # the finished cell's folder
    key: str                 # fingerprint of everything that determines the cell's results
    artifacts: dict          # kind -> {"key": str, "path": str}
    status: str              # complete, changed, partial or new

    @property
    def partial(self) -> Path:
        return partial_dir(self.directory)

    def task(self, notebooks: Sequence[str], force: bool = False) -> dict:
        """Plain data for :func:`run_cell` (it may run in another process)."""
        return {"study": self.study, "cell": self.cell.name, "values": self.cell.values,
                "force": force,
                "notebooks": list(notebooks), "parameters": self.cell.parameters,
                "artifacts": self.artifacts, "key": self.key,
                "directory": str(self.directory)}


def partial_dir(final: Path) -> Path:
    """Where a cell runs before it is renamed to ``final``: ``<cell>.partial``."""
    return final.with_name(final.name + PARTIAL_SUFFIX)


def is_finished(record: dict | None, key: str) -> bool:
    """Whether a ``cell.json`` says the cell finished with the parameters of ``key``."""
    return bool(record) and record.get("status") == "complete" and record.get("key") == key


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


PARALLELISM = frozenset({"processes", "workers", "peer_workers"})
"""Parameters that set how many processes do the work, not its results: a finished cell stays
finished when only these change (e.g. ``--processes 2`` on a second run)."""


def _results_parameters(parameters: dict) -> dict:
    return {k: v for k, v in parameters.items() if k not in PARALLELISM}


def plan_study(study: Study, *, outputs=None, data=None) -> list[CellPlan]:
    """Each cell's folder, key, shared artefacts and status, without running anything."""
    root = study_dir(study.name, outputs)
    plans = []
    for cell in study.cells:
        artifacts = {}
        for artifact in study.artifacts():
            key = artifact_key(study, cell, artifact)
            artifacts[artifact.kind] = {
                "key": key, "path": str(artifact_dir(artifact.kind, key, outputs=outputs,
                                                     data=data))}
        key = fingerprint({"notebooks": study.notebooks,
                           "parameters": {nb: _results_parameters(cell.resolved(nb))
                                          for nb in study.notebooks},
                           "artifacts": {k: v["key"] for k, v in artifacts.items()}})
        directory = root / cell.name
        plan = CellPlan(study.name, cell, directory, key, artifacts, "new")
        record = read_json(directory / CELL_RECORD)
        if is_finished(record, key):
            plan.status = "complete"
        elif (record or {}).get("status") == "complete":
            plan.status = "changed"
        elif (read_json(plan.partial / CELL_RECORD) or {}).get("key") == key:
            plan.status = "partial"
        plans.append(plan)
    return plans


def select_cells(plans: list[CellPlan], only: Sequence[str] = ()) -> list[CellPlan]:
    """The cells whose name matches one of ``only`` (exact names or shell patterns)."""
    if not only:
        return plans

    def matches(name: str, pattern: str) -> bool:
        return name == pattern or fnmatchcase(name, pattern)

    unmatched = [p for p in only if not any(matches(c.cell.name, p) for c in plans)]
    if unmatched:
        raise StudyError(f"--only {', '.join(unmatched)} matches no cell; cells: "
                         f"{', '.join(p.cell.name for p in plans)}")
    return [c for c in plans if any(matches(c.cell.name, p) for p in only)]


# --------------------------------------------------------------------------------------------
# One cell
# --------------------------------------------------------------------------------------------


@contextmanager
def _locked(path: Path, wait: bool = True):
    """An exclusive lock on ``.<name>.lock`` beside ``path`` (across processes and runners).

    Yields True once held; with ``wait=False`` yields False at once when another holds it.
    """
    lock = path.with_name(f".{path.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def notebook_parameters(task: dict, notebook: str, output_dir: Path, made: dict) -> dict:
    """What papermill passes to ``notebook`` in a cell: the study's values, the cell's output
    folder, and the paths of the artefacts this and earlier notebooks make."""
    declared = declared_parameters(notebook)
    parameters = {**task["parameters"][notebook], "output_dir": str(output_dir)}
    for artifact in ARTIFACTS:
        if artifact.kind not in task["artifacts"]:
            continue
        path = Path(task["artifacts"][artifact.kind]["path"])
        if artifact.producer == notebook:
            if artifact.kind == "dataset":
                parameters.update(dataset_dir=project_relative(path), overwrite=False)
            else:
                parameters.update(runs_dir=project_relative(path.parent), run_name=path.name,
                                  overwrite=False, resume=True)
        elif artifact.kind in made and artifact.consumer_parameter in declared:
            parameters[artifact.consumer_parameter] = project_relative(made[artifact.kind])
    return {k: v for k, v in parameters.items() if k in declared}


def _made_path(artifact, output_dir: Path) -> str:
    record = read_json(output_dir / artifact.record)
    if record is None or artifact.record_key not in record:
        raise RuntimeError(f"{artifact.producer} did not record {artifact.record_key} in "
                           f"{output_dir / artifact.record}")
    path = Path(record[artifact.record_key])
    if not path.exists():
        raise RuntimeError(f"{artifact.producer} recorded {path}, which does not exist")
    return str(path)


def _execute(notebook: str, output: Path, parameters: dict) -> None:
    import papermill

    papermill.execute_notebook(str(notebook_path(notebook)), str(output),
                               parameters=parameters, kernel_name="python3",
                               cwd=str(NOTEBOOK_DIR), progress_bar=False, log_output=False,
                               extra_arguments=["--IPKernelApp.log_level=CRITICAL"])


def _error_line(exc: BaseException) -> str:
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    text = f"{ename}: {evalue}" if ename else f"{type(exc).__name__}: {exc}"
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def run_cell(task: dict, on_notebook: Callable[[str, str], None] | None = None) -> dict:
    """Run one cell's notebooks in order in ``<cell>.partial`` and rename it when all succeed.

    The cell is locked while it runs, so a second runner given the same cell waits and then
    finds it finished (status 'skipped'); an error outside the notebooks (a full disk, say) is
    a failed cell too, not a crash of the study.

    Parameters
    ----------
    task : dict
        :meth:`CellPlan.task`.
    on_notebook : callable, optional
        Called with ``(cell, notebook)`` before each notebook runs (progress display).

    Returns
    -------
    dict
        ``cell``, ``status`` ('complete', 'failed' or 'skipped'), ``directory`` (where the
        cell is now),
        ``seconds``; for a failure also ``notebook``, ``executed`` (the executed notebook,
        with the traceback) and ``error``.
    """
    final = Path(task["directory"])
    final.parent.mkdir(parents=True, exist_ok=True)
    with _locked(final):
        if not task.get("force") and is_finished(read_json(final / CELL_RECORD), task["key"]):
            return {"cell": task["cell"], "status": "skipped", "directory": str(final),
                    "seconds": 0.0}
        try:
            return _run_cell(task, final, on_notebook)
        except Exception as exc:
            return _outer_failure(task, final, exc)


def _outer_failure(task: dict, final: Path, exc: BaseException) -> dict:
    """A failure outside the notebooks (a full disk, a killed worker): a failed cell."""
    partial = partial_dir(final)
    error = _error_line(exc)
    record = read_json(partial / CELL_RECORD)
    if record is not None:
        try:
            write_json_atomic(partial / CELL_RECORD, {**record, "status": "failed",
                                                      "error": error})
        except OSError:
            pass
    return {"cell": task["cell"], "status": "failed", "directory": str(partial),
            "notebook": None, "executed": None, "error": error, "seconds": 0.0}


def _run_cell(task: dict, final: Path, on_notebook) -> dict:
    partial = partial_dir(final)
    started = time.time()
    previous = read_json(partial / CELL_RECORD)
    if previous is None or previous.get("key") != task["key"] or task.get("force"):
        remove_project_dir(partial, "cell")
        previous = None
    mark_project_dir(partial, "cell")
    done_before = {n["notebook"]: n for n in (previous or {}).get("notebooks", [])
                   if n.get("status") == "complete"}
    record = {"study": task["study"], "cell": task["cell"], "values": task["values"],
              "key": task["key"], "status": "running", "started": started,
              "artifacts": {kind: dict(info) for kind, info in task["artifacts"].items()},
              "notebooks": []}
    made: dict[str, str] = {}
    resuming = True
    for notebook in task["notebooks"]:
        parameters = notebook_parameters(task, notebook, partial, made)
        output = partial / f"{notebook}.ipynb"
        entry = {"notebook": notebook, "parameters": parameters, "executed": output.name}
        earlier = done_before.get(notebook)
        producer = next((a for a in ARTIFACTS if a.producer == notebook
                         and a.kind in task["artifacts"]), None)
        resuming = (resuming and earlier is not None and earlier["parameters"] == parameters
                    and output.is_file() and (producer is None or Path(
                        task["artifacts"][producer.kind]["path"]).exists()))
        try:
            if resuming:
                entry.update({k: earlier[k] for k in ("seconds", "made_artifact") if k in earlier},
                             status="complete", resumed=True)
            else:
                # what the progress display reads (from this or the runner's process)
                write_json_atomic(partial / CELL_RECORD, {**record, "running": notebook,
                                                          "running_since": time.time()})
                if on_notebook is not None:
                    on_notebook(task["cell"], notebook)
                tick = time.perf_counter()
                if producer is None:
                    _execute(notebook, output, parameters)
                else:
                    path = Path(task["artifacts"][producer.kind]["path"])
                    with _locked(path):
                        existed = path.exists()
                        _execute(notebook, output, parameters)
                    entry["made_artifact"] = not existed
                entry.update(status="complete", seconds=round(time.perf_counter() - tick, 2))
            if producer is not None:
                made[producer.kind] = _made_path(producer, partial)
                record["artifacts"][producer.kind]["made_by_this_cell"] = entry.get(
                    "made_artifact", False)
        except Exception as exc:  # a failing notebook ends its cell, not the study
            entry.update(status="failed", error=_error_line(exc))
            record["notebooks"].append(entry)
            record.update(status="failed", failed_notebook=notebook, error=entry["error"],
                          seconds=round(time.time() - started, 2))
            write_json_atomic(partial / CELL_RECORD, record)
            return {"cell": task["cell"], "status": "failed", "directory": str(partial),
                    "notebook": notebook, "executed": str(output), "error": entry["error"],
                    "seconds": record["seconds"]}
        record["notebooks"].append(entry)
        write_json_atomic(partial / CELL_RECORD, record)
    record.update(status="complete", finished=time.time(),
                  seconds=round(time.time() - started, 2))
    write_json_atomic(partial / CELL_RECORD, record)
    _swap_into_place(partial, final)
    return {"cell": task["cell"], "status": "complete", "directory": str(final),
            "seconds": record["seconds"]}


def _swap_into_place(partial: Path, final: Path) -> None:
    """Rename the finished ``partial`` folder onto ``final`` (replacing an older result)."""
    old = None
    if final.exists():
        check_removable(final, "cell")  # a user's folder in the cell's place stays
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(partial, final)
    if old is not None:
        remove_project_dir(old, "cell")


# --------------------------------------------------------------------------------------------
# A whole study
# --------------------------------------------------------------------------------------------


def stale_partials(plans: Sequence[CellPlan]) -> list[CellPlan]:
    """The cells finished with their current parameters that still have a ``.partial`` folder
    beside them (left by a failed ``--force`` rerun or by parameters since abandoned)."""
    return [p for p in plans if p.status == "complete" and p.partial.exists()]


def remove_stale_partials(plans: Sequence[CellPlan], echo: Callable[[str], None]) -> list[Path]:
    """Delete :func:`stale_partials` (each under its cell's lock; one that another runner is
    working in is left alone) and say so; returns the folders removed."""
    removed = []
    for plan in stale_partials(plans):
        with _locked(plan.directory, wait=False) as held:
            if held and is_finished(read_json(plan.directory / CELL_RECORD), plan.key):
                try:
                    remove_project_dir(plan.partial, "cell")
                except UnsafeDeleteError as exc:
                    echo(f"left alone: {exc}")
                    continue
                removed.append(plan.partial)
    if removed:
        echo(f"removed {len(removed)} stale unfinished folder(s) beside finished cells: "
             f"{', '.join(p.name for p in removed)}")
    return removed


# --------------------------------------------------------------------------------------------
# Progress inside a cell
# --------------------------------------------------------------------------------------------

PROGRESS_INTERVAL = 2.0
"""Seconds between two readings of the running cells' progress (a few small files)."""


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds // 3600} h {round(seconds % 3600 / 60)} min"


def _step_rows(path: Path) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except (OSError, csv.Error):
        return []


def cell_progress(task: dict, now: float | None = None, since: float = 0.0) -> str | None:
    """One line on a running cell: its notebook and, while a notebook makes an artefact with a
    progress file (02_train: the run's ``history.csv``), its step and an estimated time left.

    Parameters
    ----------
    task : dict
        :meth:`CellPlan.task` of a cell that may be running (in this or another process).
    now : float, optional
        The current ``time.time()`` (for tests).
    since : float
        Ignore a notebook recorded as running before this time (left by an interrupted run).

    Returns
    -------
    str or None
        E.g. ``'base: 02_train (2/6), epoch 3/10, 12 min left'``; None when the cell's
        ``.partial/cell.json`` does not say that a notebook is running.
    """
    now = time.time() if now is None else now
    record = read_json(partial_dir(Path(task["directory"])) / CELL_RECORD)
    if (not record or record.get("key") != task["key"] or not record.get("running")
            or float(record.get("running_since", 0.0)) < since):
        return None
    notebook = record["running"]
    notebooks = task["notebooks"]
    position = f" ({notebooks.index(notebook) + 1}/{len(notebooks)})" if (
        notebook in notebooks) else ""
    text = f"{task['cell']}: {notebook}{position}"
    elapsed = now - float(record.get("running_since", now))
    artifact = next((a for a in ARTIFACTS if a.producer == notebook and a.progress
                     and a.kind in task["artifacts"]), None)
    if artifact is None:
        return f"{text}, {_duration(elapsed)}"
    progress_file, total_parameter = artifact.progress
    total = {**declared_parameters(notebook), **task["parameters"][notebook]}[total_parameter]
    rows = _step_rows(Path(task["artifacts"][artifact.kind]["path"]) / progress_file)
    seconds = []
    for row in rows:
        try:
            seconds.append(float(row["epoch_seconds"]))
        except (KeyError, TypeError, ValueError):
            pass
    text = f"{text}, {total_parameter[:-1] if total_parameter.endswith('s') else total_parameter}"
    text += f" {len(rows)}/{total}"
    if seconds and len(rows) < total:
        # an upper bound when early stopping ends the run sooner
        text += f", {_duration(sum(seconds) / len(seconds) * (total - len(rows)))} left"
    elif not rows:
        text += f", {_duration(elapsed)} so far"
    return text


class _ProgressPoller:
    """A daemon thread that shows :func:`cell_progress` of the running cells in the bar."""

    def __init__(self, bar, tasks: Sequence[dict], interval: float = PROGRESS_INTERVAL):
        self.bar, self.tasks, self.interval = bar, list(tasks), interval
        self.done: set[str] = set()
        self.started = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="study-progress", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)

    def refresh(self) -> None:
        texts = [t for task in self.tasks if task["cell"] not in self.done
                 for t in [cell_progress(task, since=self.started)] if t]
        if texts:
            self.bar.set_postfix_str("; ".join(texts), refresh=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001  (a display must never end a study)
                pass


# --------------------------------------------------------------------------------------------
# Interrupts
# --------------------------------------------------------------------------------------------

EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}
"""The exit status of a study interrupted by each signal (128 + its number)."""


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM (while :func:`terminate_as_interrupt` is active),
    so that a terminated study unwinds like an interrupted one."""


class StudyInterrupted(KeyboardInterrupt):
    """A study stopped by SIGINT or SIGTERM; ``run`` holds what had finished."""

    def __init__(self, run: StudyRun, signal_name: str):
        super().__init__(signal_name)
        self.run, self.signal_name = run, signal_name

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.signal_name]

    def message(self, command: str | None = None) -> str:
        """One line: the study was interrupted, which cells finished, how to resume."""
        run = self.run
        finished = [*run.skipped, *(r["cell"] for r in run.results
                                    if r["status"] in ("complete", "skipped"))]
        unfinished = [p.cell.name for p in run.selected if p.cell.name not in finished]
        done = (f"{len(finished)} of {len(run.selected)} cell(s) finished "
                f"({', '.join(finished)})" if finished else
                f"none of its {len(run.selected)} cell(s) finished")
        again = f" ({command})" if command else ""
        return (f"study {run.study.name} interrupted by {self.signal_name}: {done}; "
                f"unfinished: {', '.join(unfinished) or 'none'}. Run the same command again"
                f"{again} to resume: finished cells are skipped, finished notebooks are not "
                "rerun and an interrupted training continues from its last epoch.")


@contextmanager
def terminate_as_interrupt():
    """While active (in the main thread), SIGTERM raises :class:`Terminated` instead of ending
    the process silently; elsewhere it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum, frame):
        raise Terminated("SIGTERM")

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """End a pool now: cancel queued cells and terminate the workers running cells (their
    ``.partial`` folders stay, so the next run resumes them)."""
    pool.shutdown(wait=False, cancel_futures=True)
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()


@dataclass
class StudyRun:
    """What a call of :func:`run_study` did."""

    study: Study
    plans: list[CellPlan]
    results: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    selected: list[CellPlan] = field(default_factory=list)

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.results if r["status"] == "failed"]


def _limit_threads(threads: int) -> None:
    """Pool initializer: each parallel cell's kernels get an equal share of the cores."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(name, str(threads))


def _remove_artifacts(plans: Sequence[CellPlan]) -> None:
    """For ``force``: delete the datasets and runs of the cells to rerun (each once, under its
    lock; the cells' unfinished state is cleared by :func:`run_cell` under the cell's lock)."""
    for path in sorted({info["path"] for p in plans for info in p.artifacts.values()}):
        with _locked(Path(path)):
            remove_project_dir(path, ("dataset", "run"))
            remove_project_dir(path + PARTIAL_SUFFIX, "generation")


def describe_plan(study: Study, plans: Sequence[CellPlan], selected: Sequence[CellPlan],
                  force: bool = False) -> str:
    """The dry-run text: each cell, what will happen to it, its parameters and artefacts."""
    chosen = {p.cell.name for p in selected}
    users: dict[str, list[str]] = {}
    for plan in plans:
        for info in plan.artifacts.values():
            users.setdefault(info["path"], []).append(plan.cell.name)
    action = {"complete": "skip (complete)", "changed": "rerun (parameters changed)",
              "partial": "resume", "new": "run"}
    lines = [f"study {study.name} ({study.path}): {len(plans)} cells, notebooks "
             f"{' -> '.join(study.notebooks)}"]
    for plan in plans:
        if plan.cell.name not in chosen:
            what = "not selected"
        else:
            what = "rerun (--force)" if force else action[plan.status]
        lines.append(f"  {plan.cell.name}: {what}  -> {plan.directory}")
        if plan in stale_partials([plan]):
            lines.append(f"      stale: {plan.partial} (an unfinished run beside the finished "
                         "cell; removed by the next run)")
        for notebook in study.notebooks:
            if plan.cell.parameters[notebook]:
                values = ", ".join(f"{k}={v!r}" for k, v in plan.cell.parameters[notebook].items())
                lines.append(f"      {notebook}: {values}")
        for kind, info in plan.artifacts.items():
            shared = len(users[info["path"]])
            exists = "exists" if Path(info["path"]).exists() else "to make"
            note = f", shared by {shared} cells" if shared > 1 else ""
            lines.append(f"      {kind}: {info['path']} ({exists}{note})")
    return "\n".join(lines)


def _run_parallel(tasks: list[dict], jobs: int, finished: Callable[[dict], None],
                  poll: _ProgressPoller) -> None:
    threads = max(1, (os.cpu_count() or 1) // jobs)
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                               initializer=_limit_threads, initargs=(threads,))
    try:
        futures = {pool.submit(run_cell, task): task for task in tasks}
        for future in as_completed(futures):
            task = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # the worker process died
                result = _outer_failure(task, Path(task["directory"]), exc)
            poll.done.add(task["cell"])
            finished(result)
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def run_study(study: Study, *, jobs: int = 1, only: Sequence[str] = (), force: bool = False,
              outputs=None, data=None, progress: bool = True,
              echo: Callable[[str], None] = print) -> StudyRun:
    """Run the selected cells of a study (see the module docstring for the layout).

    Parameters
    ----------
    study : Study
        From :func:`microlens.workflow.studies.load_study`.
    jobs : int
        Cells run in parallel (each in its own process, with ``cores / jobs`` threads).
    only : sequence of str
        Cell names or shell patterns (``'topology=*'``); default every cell.
    force : bool
        Rerun the selected cells even when complete, remaking their datasets and runs.
    outputs, data : path, optional
        Roots for results and datasets (default the project's ``outputs/`` and ``data/``).
    progress : bool
        A progress bar over cells.
    echo : callable
        Where the runner's messages go.

    Returns
    -------
    StudyRun
        The plans, the results of the cells that ran, and the skipped (complete) cells.
    """
    if not isinstance(jobs, int) or jobs < 1:
        raise StudyError(f"jobs must be a positive integer, got {jobs!r}")
    plans = plan_study(study, outputs=outputs, data=data)
    selected = select_cells(plans, only)
    run = StudyRun(study, plans, selected=selected)
    todo = [p for p in selected if force or p.status != "complete"]
    run.skipped = [p.cell.name for p in selected if p not in todo]
    root = study_dir(study.name, outputs)
    recorded = read_json(root / "study.json")
    if recorded is not None and Path(recorded.get("path", "")) != study.path:
        raise StudyError(f"{root} holds the outputs of {recorded.get('path')}, not of "
                         f"{study.path}; rename the study file or pass another --outputs")
    if force:
        shared = sorted({p.cell.name for p in plans if p not in todo
                         for info in p.artifacts.values()
                         if any(info["path"] == i["path"] for t in todo
                                for i in t.artifacts.values())})
        if shared:
            echo(f"--force remakes data sets or runs that these cells also use (rerun them "
                 f"too to keep them consistent): {', '.join(shared)}")
    root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(root / "study.json", {
        "study": study.name, "path": str(study.path), "description": study.description,
        "notebooks": list(study.notebooks), "grid": study.grid, "grid_keys": study.grid_keys,
        "cell_settings": study.cell_settings,
        "cells": [{"cell": p.cell.name, "values": p.cell.values, "sweep": p.cell.sweep,
                   "key": p.key, "parameters": p.cell.parameters, "artifacts": p.artifacts}
                  for p in plans]})
    if run.skipped:
        echo(f"{len(run.skipped)} cell(s) already complete, skipped (--force reruns them): "
             f"{', '.join(run.skipped)}")
    remove_stale_partials([p for p in plans if p not in todo], echo)
    if not todo:
        return run
    if force:
        _remove_artifacts(todo)
    tasks = [p.task(study.notebooks, force) for p in todo]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(tasks), desc=f"study {study.name}", unit="cell", disable=not progress)

    def finished(result: dict) -> None:
        run.results.append(result)
        bar.update(1)
        # beside the bar (stderr), so stdout stays clean for callers that print JSON there
        say = (lambda text: bar.write(text, file=bar.fp)) if progress else echo
        if result["status"] == "failed":
            where = f" in {result['notebook']}" if result.get("notebook") else ""
            say(f"cell {result['cell']} FAILED{where}: {result['error']}")
        elif result["status"] == "skipped":
            say(f"cell {result['cell']} was finished meanwhile (by another runner)")
        else:
            say(f"cell {result['cell']} complete ({result['seconds']:.0f} s)")

    try:
        with terminate_as_interrupt(), _ProgressPoller(bar, tasks if progress else []) as poll:
            if jobs == 1 or len(tasks) == 1:
                for task in tasks:
                    result = run_cell(task, on_notebook=lambda c, nb: poll.refresh())
                    poll.done.add(task["cell"])
                    finished(result)
            else:
                _run_parallel(tasks, jobs, finished, poll)
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM through terminate_as_interrupt
        name = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        raise StudyInterrupted(run, name) from None
    finally:
        bar.close()
    return run


__all__ = ["EXIT_CODES", "CellPlan", "StudyInterrupted", "StudyRun", "Terminated",
           "artifact_dir", "cell_progress", "describe_plan", "is_finished",
           "notebook_parameters", "partial_dir", "plan_study", "remove_stale_partials",
           "run_cell", "run_study", "select_cells", "stale_partials", "study_dir",
           "terminate_as_interrupt"]
