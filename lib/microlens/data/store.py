"""The dataset directory on disk: generation (parallel, resumable), loading, torch batches.

A dataset is a directory::

    manifest.json   config, seed, schema and package versions, counts, split sizes, the
                    reference epoch, and the value checks of the arrays (``checks``: problems
                    per split, file stamps)
    times.npy       float64 (M,)    observation times [days since ``reference_epoch``]
    flux.npy        float32 (M,)    flux in baseline units
    flux_err.npy    float32 (M,)    1-sigma flux errors
    offsets.npy     int64   (N+1,)  event i's observations are ``[offsets[i], offsets[i+1])``
    labels.npy      int8    (N,)    0 no event, 1 PSPL, 2 binary
    split.npy       int8    (N,)    0 train, 1 val, 2 test (stratified, fixed at generation)
    params.npy      structured (N,) parameter table, row i belongs to event i
    origin.npy      structured (N,) only for events injected into real baselines: the star and
                    window of each event (:data:`microlens.simulation.injection.ORIGIN_DTYPE`)

Curves of any length sit one after another (M observations in all), so a set that mixes
100-point and 20,000-point curves costs the observations it holds, not ``N x`` the longest.
Times are stored relative to the manifest's ``reference_epoch`` (a full Julian date; 0 for the
``thesis`` survey, whose times are abstract days) so that an HJD keeps its precision in the
float32 that models read (float32 holds an HJD of 2.46e6 only to 0.25 d).
:meth:`LightCurveStore.batch` and :meth:`LightCurveStore.padded` pad a handful of events to the
longest among them.

Arrays are plain ``.npy`` files opened memory-mapped, so a dataset larger than memory is never
read whole. Opening warns (:class:`~microlens.core.validation.InvalidDataWarning`) about events a
model cannot use (non-finite values, non-positive errors, unsorted or repeated times; see
:meth:`LightCurveStore.invalid_events`): from the checks recorded at generation while the arrays
are unchanged (~20 ms to open 60k x 1000), else from a chunked scan (~1.5 s for 60k x 1000).
Generation writes into ``<name>.partial/`` chunk by chunk and renames the directory
when complete; an interrupted generation resumes from its finished chunks.

Bitwise reproducibility: VBBinaryLensing's polynomial root finder starts from the roots of its
previous call (function-static state), so a binary magnification depends on the call history at
the 1e-12 level. Each chunk is therefore simulated in a process with a fresh state (forked from
a clean worker that never simulates; without fork, a new process per chunk) and chunk
boundaries are fixed by ``chunk_size`` (recorded in the manifest): the same
config and chunk size give identical bytes for any number of workers.

The workers are new interpreters started on this module alone (not :mod:`multiprocessing`
children, which re-import the caller's ``__main__``), so generation runs the same from a
script file (with or without an ``if __name__ == "__main__":`` guard), a script on standard
input (``python - < script.py``), ``python -c``, IPython and notebooks.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from microlens.core.classes import CLASS_NAMES
from microlens.core.paths import atomic_path, resolve_path, write_json_atomic
from microlens.core.removal import check_removable, mark_project_dir, remove_project_dir
from microlens.core.validation import (
    PROBLEMS,
    InvalidDataWarning,
    InvalidLightCurveError,
    find_problems,
    format_problems,
    rule,
)
from microlens.simulation.events import simulate_range
from microlens.simulation.simulate import (
    LATER_FIELDS,
    PARAM_COLUMNS,
    SPLIT_NAMES,
    SimulationConfig,
    default_workers,
    params_dtype,
)

SCHEMA_VERSION = 3  # 2: alpha_rad; 3: concatenated curves with offsets, a reference epoch
SEQUENCE_ARRAYS = ("times", "flux", "flux_err")
EVENT_ARRAYS = ("offsets", "labels", "split", "params")
SEQUENCE_DTYPES = {"times": np.float64, "flux": np.float32, "flux_err": np.float32}
MANIFEST = "manifest.json"
CHECK_CHUNK_OBSERVATIONS = 1_000_000
"""Observations per chunk of the value checks (~10 MB of temporaries; a 60k x 1000 set took
0.6-3 s on a loaded 2-core machine, chunks of 0.25-4 M observations alike within that noise)."""


class DatasetError(ValueError):
    """A dataset directory is missing, incomplete, corrupt or from another schema version."""


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


def generate_dataset(
    config: SimulationConfig,
    out_dir: str | os.PathLike,
    *,
    workers: int | None = None,
    chunk_size: int = 500,
    overwrite: bool = False,
    progress: bool = True,
    on_chunk: Callable[[int, int], None] | None = None,
) -> Path:
    """Simulate a dataset and write it to ``out_dir``.

    Parameters
    ----------
    config : SimulationConfig
        What to simulate (stored verbatim in the manifest).
    out_dir : path
        Target directory (relative paths are taken from the project root).
    workers : int, optional
        Worker processes (default: all available cores). The result does not depend on it.
    chunk_size : int
        Events per chunk: the unit of parallel work and of resumption. Identical bytes need the
        same chunk size (see the module docstring); other sizes agree to ~1e-9 relative (the
        PSPL-fit Δχ² to ~1e-3, the fit's own tolerance).
    overwrite : bool
        Replace an existing dataset (otherwise an existing one with the same config is returned
        as it is, and one with a different config is an error). Only a directory the project
        made as a data set, or an empty one, is ever deleted (:mod:`microlens.core.removal`): a
        folder holding anything else raises ``UnsafeDeleteError`` naming what is in it.
    progress : bool
        Show a tqdm progress bar.
    on_chunk : callable, optional
        Called here as ``on_chunk(start, stop)`` after each chunk is safely on disk.

    Returns
    -------
    Path
        The dataset directory.
    """
    if not isinstance(config, SimulationConfig):
        raise TypeError(f"config must be a SimulationConfig, got {type(config).__name__}")
    workers = default_workers() if workers is None else int(workers)
    if workers <= 0:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if int(chunk_size) <= 0:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if str(out_dir).strip() == "":
        raise ValueError("out_dir is empty; name the data set's directory (e.g. 'data/quick')")
    out = resolve_path(out_dir)
    partial = out.with_name(out.name + ".partial")
    catalogue = None  # injection: the folder's errors come before anything is written
    if overwrite or not (out.exists() or out.is_symlink()):
        catalogue = _baselines_catalogue(config)
    inputs = _input_files(config)  # a missing or foreign model file: its error, before writing
    if out.exists() or out.is_symlink():
        if overwrite:
            check_removable(partial, "generation")  # refuse before deleting anything
            remove_project_dir(out, "dataset")
        else:
            existing = _read_manifest(out)
            saved = {**LATER_FIELDS, **existing["config"]}  # made before those settings
            if saved != config.to_dict():
                changed = sorted(k for k, v in config.to_dict().items() if saved.get(k) != v)
                raise DatasetError(
                    f"{out} already holds a dataset with a different config (differs in "
                    f"{', '.join(changed)}); pass overwrite=True or choose another directory"
                )
            _check_input_files(out, existing, inputs)
            open_dataset(out)  # integrity check
            return out

    chunk_dir = partial / "chunks"
    # chunks drawn from another version of an input file are not resumed
    plan = {"schema_version": SCHEMA_VERSION, "config": config.to_dict(), "chunk_size": chunk_size,
            **inputs}
    plan_file = partial / "plan.json"
    if partial.exists():
        try:
            same = json.loads(plan_file.read_text()) == plan
        except (OSError, json.JSONDecodeError):
            same = False
        if not same:
            check_removable(partial, "generation")  # a user's folder of that name stays
            warnings.warn(f"discarding the unfinished generation in {partial}: it was started "
                          "with another config or chunk size", stacklevel=2)
            remove_project_dir(partial, "generation")
    mark_project_dir(partial, "generation")
    chunk_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(plan_file, plan)
    extra = {}
    if catalogue is not None:  # the workers read the baselines from here, not the folder
        from microlens.simulation.injection import CATALOGUE_FILE, save_catalogue

        extra["catalogue"] = str(save_catalogue(catalogue, partial / CATALOGUE_FILE))

    bounds = [(s, min(s + chunk_size, config.n_events))
              for s in range(0, config.n_events, chunk_size)]
    todo = [b for b in bounds if not _chunk_path(chunk_dir, b[0]).exists()]
    started = time.perf_counter()
    _run_chunks(config, chunk_dir, todo, workers, progress, on_chunk, extra)
    elapsed = time.perf_counter() - started

    _assemble(config, partial, chunk_dir, bounds, workers=workers, elapsed=elapsed,
              chunk_size=chunk_size, catalogue=catalogue, inputs=inputs)
    shutil.rmtree(chunk_dir)
    plan_file.unlink()
    if "catalogue" in extra:
        Path(extra["catalogue"]).unlink()
    mark_project_dir(partial, "dataset", relabel=True)
    partial.rename(out)
    return out


def _baselines_catalogue(config: SimulationConfig):
    """Injection into real baselines: the folder's usable stars, checked against the config
    (clear errors for a missing folder, one without usable baselines, too few stars); None for
    synthetic curves."""
    if config.baselines is None:
        return None
    from microlens.simulation.injection import catalogue_for, check_capacity

    catalogue = catalogue_for(config)
    check_capacity(config, len(catalogue))
    return catalogue


def _chunk_path(chunk_dir: Path, start: int) -> Path:
    return chunk_dir / f"chunk_{start:09d}.npz"


def _simulate_chunk(config: SimulationConfig, chunk_dir: str, start: int, stop: int) -> int:
    """Worker: simulate one chunk and write it atomically (temporary name, then rename)."""
    arrays = simulate_range(config, start, stop)
    with atomic_path(_chunk_path(Path(chunk_dir), start)) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)  # a handle: np.savez would append .npz to a plain name
    return stop - start


def _simulate_chunk_in_fork(config: SimulationConfig, chunk_dir: str, start: int,
                            stop: int) -> int:
    """Worker: simulate one chunk in a child forked from this clean worker.

    The worker itself never computes a magnification, so each forked child starts with the
    VBBinaryLensing state of a fresh process (see the module docstring), at the cost of a
    fork (milliseconds) instead of a new interpreter per chunk.
    """
    import traceback

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: simulate, report a failure through the pipe, never return
        os.close(read_end)
        code = 0
        try:
            _simulate_chunk(config, chunk_dir, start, stop)
        except BaseException:  # noqa: BLE001 (everything goes back to the parent as text)
            code = 1
            os.write(write_end, traceback.format_exc().encode("utf-8", "replace"))
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        report = pipe.read().decode("utf-8", "replace")
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"simulating events {start}..{stop - 1} failed in its process "
                           f"(exit code {code}):\n{report or '(no traceback: killed?)'}")
    return stop - start


_WORKER_COMMAND = ("import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
                   "from microlens.data.store import _serve_chunks; _serve_chunks()")
"""What a chunk worker runs: the caller's import path, then :func:`_serve_chunks`."""

_ERROR_TAIL_LINES = 40
"""Lines of a worker's error output quoted when it ends without an answer."""


def _serve_chunks() -> None:
    """Body of a chunk worker process (started by :func:`_run_chunks`).

    Reads tasks from standard input, one JSON line each (``config``, ``chunk_dir``, ``start``,
    ``stop``), and answers each with one JSON line, ``{"done": events}`` or ``{"error":
    traceback}``, until standard input ends. The worker never simulates itself: each chunk
    runs in a child forked from it (without fork, the worker takes one chunk and ends), so
    every chunk starts from a fresh VBBinaryLensing state. Its standard output carries the
    answers only: anything else printed, by C code too, goes to standard error.
    """
    import traceback

    from microlens.simulation import detectability  # noqa: F401  (imported once here, not in every chunk)

    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    can_fork = hasattr(os, "fork")
    for line in sys.stdin:
        try:
            task = json.loads(line)
            config = SimulationConfig.from_dict(task["config"], warn_ignored=False)
            if task.get("catalogue"):  # real baselines: read once here, shared by the forks
                from microlens.simulation.injection import load_catalogue

                load_catalogue(task["catalogue"])
            simulate = _simulate_chunk_in_fork if can_fork else _simulate_chunk
            answer = {"done": simulate(config, task["chunk_dir"], task["start"], task["stop"])}
        except Exception:  # noqa: BLE001 (everything goes back to the caller as text)
            answer = {"error": traceback.format_exc()}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
        if not can_fork:  # pragma: no cover - Windows: one chunk per fresh process
            break


class _ChunkWorker:
    """One chunk worker process, with threads that forward its answers to a queue and keep
    the tail of its error output (also written to this process's ``sys.stderr``).

    The worker is the running interpreter started on :func:`_serve_chunks` (in a session of
    its own on POSIX, so that stopping it stops its forked child too). It never imports the
    caller's ``__main__``: a start method of :mod:`multiprocessing` would re-run it in every
    worker, which fails for a script read from standard input (``python - < script.py``, a
    ``__main__`` of ``<stdin>`` that no file holds) and re-runs a script without an
    ``if __name__ == "__main__":`` guard.
    """

    def __init__(self, answers: queue.Queue):
        if not sys.executable:
            raise RuntimeError("cannot start simulation workers: sys.executable is empty (an "
                               "embedded interpreter); generate the dataset from a Python "
                               "process started as a program")
        import_path = json.dumps([str(entry) for entry in sys.path])  # Path entries too
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER_COMMAND, import_path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            encoding="utf-8", errors="replace", start_new_session=os.name == "posix")
        self.task: tuple[int, int] | None = None
        self.error_tail: collections.deque[str] = collections.deque(maxlen=_ERROR_TAIL_LINES)
        self._readers = [threading.Thread(target=target, daemon=True)
                         for target in (lambda: self._forward_answers(answers),
                                        self._forward_errors)]
        for reader in self._readers:
            reader.start()

    def _forward_answers(self, answers: queue.Queue) -> None:
        for line in self.process.stdout:
            answers.put((self, line))
        answers.put((self, None))

    def _forward_errors(self) -> None:
        for line in self.process.stderr:
            self.error_tail.append(line)
            try:
                sys.stderr.write(line)
            except (OSError, ValueError):  # pragma: no cover - stderr closed
                pass

    def give(self, start: int, stop: int, payload: dict, *, last: bool) -> None:
        """Send one chunk; ``last``: no more after it (the worker ends when it is done)."""
        try:
            self.process.stdin.write(json.dumps({**payload, "start": start, "stop": stop}) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise RuntimeError(self.ended(f"before it could take events {start}..{stop - 1}")) \
                from None
        self.task = (start, stop)
        if last:
            self.finish()

    def finish(self) -> None:
        """No more tasks: close standard input, so the worker ends after its current chunk."""
        try:
            self.process.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    def ended(self, when: str) -> str:
        """The message for a worker that ended ``when`` (with its exit code and error tail)."""
        try:
            code = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = "unknown: still running"
        for reader in self._readers[1:]:
            reader.join(timeout=5)
        tail = "".join(self.error_tail).rstrip() or "(no error output: killed?)"
        return (f"a simulation worker process ended {when} (exit code {code}); its error "
                f"output ends:\n{tail}")

    def stop(self) -> None:
        """End the worker now, with the chunk it is simulating (which leaves no file)."""
        if self.process.poll() is None:
            try:
                if os.name == "posix":
                    os.killpg(self.process.pid, signal.SIGTERM)
                else:  # pragma: no cover
                    self.process.kill()
            except (ProcessLookupError, PermissionError):
                pass
        self.finish()

    def join(self) -> None:
        self.process.wait()
        for reader in self._readers:
            reader.join(timeout=5)
        for stream in (self.process.stdout, self.process.stderr):
            stream.close()


def _run_chunks(config, chunk_dir, todo, workers, progress, on_chunk, extra=None):
    from tqdm.auto import tqdm

    remaining = sum(stop - start for start, stop in todo)
    bar = tqdm(total=config.n_events, initial=config.n_events - remaining, disable=not progress,
               unit="ev", desc=f"simulate ({workers} worker{'s' if workers > 1 else ''})")
    if not todo:
        bar.close()
        return
    # Every chunk starts from a fresh VBBinaryLensing state, even with one worker (see the
    # module docstring): forked from a worker process that never simulates, or, without
    # fork, in a new worker process per chunk. Chunks are handed out one per worker as workers
    # free up, so that an interruption loses at most one chunk per worker.
    one_per_process = not hasattr(os, "fork")
    payload = {"config": config.to_dict(), "chunk_dir": str(chunk_dir), **(extra or {})}
    tasks = list(reversed(todo))
    answers: queue.Queue = queue.Queue()
    started: list[_ChunkWorker] = []

    def hand_out(worker: _ChunkWorker | None) -> None:
        if not tasks:
            if worker is not None:
                worker.finish()
            return
        if worker is None or one_per_process:
            worker = _ChunkWorker(answers)
            started.append(worker)
        start, stop = tasks.pop()
        worker.give(start, stop, payload, last=one_per_process or not tasks)

    try:
        for _ in range(min(workers, len(todo))):
            hand_out(None)
        busy = len(todo) - len(tasks)
        while busy:
            try:
                worker, line = answers.get(timeout=1.0)  # a timeout keeps Ctrl-C responsive
            except queue.Empty:
                continue
            if worker.task is None:  # the end of a worker with nothing left to do
                continue
            (start, stop), worker.task = worker.task, None
            busy -= 1
            if line is None:
                raise RuntimeError(worker.ended(f"while simulating events {start}..{stop - 1}"))
            answer = json.loads(line)
            if "error" in answer:
                raise RuntimeError(f"simulating events {start}..{stop - 1} failed in a worker "
                                   f"process:\n{answer['error']}")
            if tasks:
                busy += 1
            hand_out(worker)
            bar.update(answer["done"])
            if on_chunk is not None:
                on_chunk(start, stop)
    except BaseException:
        for worker in started:
            worker.stop()
        raise
    finally:
        bar.close()
        for worker in started:
            worker.finish()
            worker.join()


def _assemble(config, partial: Path, chunk_dir: Path, bounds, *, workers, elapsed,
              chunk_size, catalogue=None, inputs: Mapping | None = None) -> None:
    n = config.n_events
    labels = np.empty(n, np.int8)
    params = np.empty(n, params_dtype())
    lengths = np.empty(n, np.int64)
    origin = None
    if catalogue is not None:
        from microlens.simulation.injection import ORIGIN_DTYPE

        origin = np.empty(n, ORIGIN_DTYPE)
    for start, stop in bounds:
        with np.load(_chunk_path(chunk_dir, start), allow_pickle=False) as chunk:
            lengths[start:stop] = chunk["lengths"]
            labels[start:stop] = chunk["labels"]
            params[start:stop] = chunk["params"]
            if origin is not None:
                origin[start:stop] = chunk["origin"]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    maps = {name: np.lib.format.open_memmap(partial / f"{name}.npy", mode="w+",
                                            dtype=SEQUENCE_DTYPES[name], shape=(int(offsets[-1]),))
            for name in SEQUENCE_ARRAYS}
    for start, stop in bounds:
        with np.load(_chunk_path(chunk_dir, start), allow_pickle=False) as chunk:
            for name in SEQUENCE_ARRAYS:
                maps[name][offsets[start] : offsets[stop]] = chunk[name]
    for array in maps.values():
        array.flush()
    del maps
    if catalogue is None:
        split = stratified_split(labels, config.split_fractions, config.seed)
    else:  # real baselines: by star, every window of a star in one split
        from microlens.simulation.injection import event_splits

        split = event_splits(config, len(catalogue))
        np.save(partial / "origin.npy", origin)
    np.save(partial / "offsets.npy", offsets)
    np.save(partial / "labels.npy", labels)
    np.save(partial / "split.npy", split)
    np.save(partial / "params.npy", params)
    manifest = {**_manifest(config, labels, split, params, workers, elapsed, chunk_size, lengths),
                **(inputs or {})}
    if catalogue is not None:
        from microlens.simulation.injection import manifest_entry

        manifest["injection"] = manifest_entry(config, catalogue, split)
    # The value checks once, here; open_dataset trusts them while the files are unchanged.
    invalid = scan_invalid(*(np.load(partial / f"{name}.npy", mmap_mode="r")
                             for name in SEQUENCE_ARRAYS), offsets)
    manifest["checks"] = {"fingerprint": _fingerprint(partial),
                          "problems": _problem_counts(invalid, split),
                          "invalid_events": int(np.unique(invalid["event"]).size)}
    write_json_atomic(partial / MANIFEST, manifest)


def stratified_split(labels: np.ndarray, fractions: Sequence[float], seed: int) -> np.ndarray:
    """Assign each event to train (0), val (1) or test (2), stratified by class.

    Within each class the events are permuted with a generator derived from ``seed`` and cut at
    the cumulative fractions, so every split has the class proportions of the whole set.
    """
    rng = np.random.default_rng(np.random.SeedSequence(entropy=int(seed), spawn_key=(2**31,)))
    split = np.empty(len(labels), np.int8)
    cuts = np.cumsum(fractions)[:-1]
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        idx = idx[rng.permutation(idx.size)]
        bounds = np.round(cuts * idx.size).astype(int)
        for part, chunk in enumerate(np.split(idx, bounds)):
            split[chunk] = part
    return split


def _manifest(config, labels, split, params, workers, elapsed, chunk_size, lengths) -> dict:
    counts = {name: int(np.sum(labels == i)) for i, name in enumerate(CLASS_NAMES)}
    split_counts = {
        s: {name: int(np.sum((split == j) & (labels == i))) for i, name in enumerate(CLASS_NAMES)}
        for j, s in enumerate(SPLIT_NAMES)
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": config.to_dict(),
        "seed": config.seed,
        "n_events": int(labels.size),
        "n_epochs": config.n_epochs,
        "reference_epoch": config.reference_epoch,
        "n_observations": int(lengths.sum()),
        "max_observations": int(lengths.max(initial=0)),
        "class_names": list(CLASS_NAMES),
        "class_counts": counts,
        "split_names": list(SPLIT_NAMES),
        "split_counts": split_counts,
        "param_columns": list(PARAM_COLUMNS),
        "mean_observations": float(np.mean(params["n_obs"])),
        "magnification": {"backend": config.magnification_backend, "tol": config.vbbl_tol,
                          "rel_tol": config.vbbl_tol},
        "versions": _versions(),
        "generation": {"workers": workers, "chunk_size": chunk_size, "seconds": round(elapsed, 3),
                       "events_per_second": round(labels.size / max(elapsed, 1e-9), 1)},
    }


def _input_files(config: SimulationConfig) -> dict:
    """The files a config names whose bytes shape its curves, each as ``{path, sha256, ...}``
    under its manifest key: today the noise model of ``noise="fitted"``
    (:func:`microlens.simulation.noise_model.model_identity`). The config holds only their
    paths, and the file at a path (the shipped noise model too) changes when it is refitted;
    the generation plan and the manifest record these, and an existing set drawn from another
    version is refused (:func:`_check_input_files`)."""
    if config.noise != "fitted":
        return {}
    from microlens.simulation.noise_model import model_identity

    return {"noise_model": model_identity(config.noise_model)}


def _check_input_files(out: Path, manifest: Mapping, inputs: Mapping) -> None:
    """Refuse an existing data set drawn from another version of an input file
    (:func:`_input_files`) than the one at its path now."""
    for key, current in inputs.items():
        recorded, name = manifest.get(key), key.replace("_", " ")
        if recorded is None or recorded.get("sha256") != current["sha256"]:
            drawn = (f"a {name} it did not record (made before data sets recorded theirs)"
                     if recorded is None else f"the {name} of sha256 {recorded.get('sha256')}")
            raise DatasetError(
                f"{out} was drawn with {drawn}, not the one at {current['path']} now (sha256 "
                f"{current['sha256']}); pass overwrite=True to draw it again, or choose another "
                "directory")


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("microlens", "numpy", "scipy", "VBBinaryLensing", "VBMicrolensing"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


REGENERATE = "regenerate the data set with generate_dataset(config, path, overwrite=True)"
"""The remedy a message about a broken data set ends with."""

MANIFEST_KEYS = ("config", "n_events", "n_observations", "param_columns", "class_counts")
"""Manifest entries that opening a data set reads (beside ``schema_version``)."""

ARRAY_DTYPES = {**SEQUENCE_DTYPES, "offsets": np.int64, "labels": np.int8, "split": np.int8}
"""Stored dtype of every array but ``params`` (whose columns are checked by name)."""


def _read_manifest(path: Path) -> dict:
    manifest_file = path / MANIFEST
    if not path.is_dir():
        partial = path.with_name(path.name + ".partial")
        if partial.exists():
            hint = (f"; an unfinished generation is in {partial}: run generate_dataset again "
                    "to resume it")
        elif path.exists():
            hint = ": it is a file, not a data set's directory"
        else:
            hint = ": the directory does not exist (generate_dataset writes one)"
        raise DatasetError(f"no dataset at {path}{hint}")
    if not manifest_file.is_file():
        raise DatasetError(f"{path} is not a dataset: {MANIFEST} is missing (every data set "
                           f"that generate_dataset writes has one); {REGENERATE}")
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"corrupt manifest {manifest_file}: not valid JSON at line "
                           f"{exc.lineno} column {exc.colno} ({exc.msg}); {REGENERATE}") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"corrupt manifest {manifest_file}: not UTF-8 text (byte "
                           f"{exc.start}); {REGENERATE}") from None
    except OSError as exc:
        raise DatasetError(f"cannot read {manifest_file}: {exc}") from None
    if not isinstance(manifest, dict) or "schema_version" not in manifest:
        raise DatasetError(f"corrupt manifest {manifest_file}: no schema_version; {REGENERATE}")
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise DatasetError(
            f"{path} has dataset schema version {manifest['schema_version']!r}; this version of "
            f"microlens reads schema {SCHEMA_VERSION}. Regenerate the dataset."
        )
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    if missing:
        raise DatasetError(f"corrupt manifest {manifest_file}: {', '.join(missing)} "
                           f"missing; {REGENERATE}")
    for key in ("n_events", "n_observations"):
        value = manifest[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise DatasetError(f"corrupt manifest {manifest_file}: {key} is {value!r}, not a "
                               f"count; {REGENERATE}")
    return manifest


def _manifest_config(manifest: dict, manifest_file: Path) -> SimulationConfig:
    """The manifest's simulation config. One that today's checks refuse (saved by an earlier
    version) still opens, with a warning: the data set is what it is."""
    from microlens.simulation.simulate import IgnoredSettingWarning

    data = manifest["config"]
    if not isinstance(data, dict):
        raise DatasetError(f"corrupt manifest {manifest_file}: config is {data!r}, not a dict "
                           f"of simulation settings; {REGENERATE}")
    known = {f.name for f in dataclasses.fields(SimulationConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise DatasetError(f"{manifest_file} holds simulation settings this version of "
                           f"microlens does not know: {', '.join(unknown)} (written by a newer "
                           f"version?); update microlens or {REGENERATE}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", IgnoredSettingWarning)
            return SimulationConfig.from_dict(data)
    except (ValueError, TypeError) as exc:
        warnings.warn(f"{manifest_file}: its simulation config fails today's checks ({exc}); "
                      "the data set opens as saved, but generate_dataset refuses these "
                      "settings, so it cannot be made again from them: regenerate it with valid "
                      "settings (generate_dataset(config, path, overwrite=True)) to make it "
                      "reproducible", UserWarning, stacklevel=4)
        return SimulationConfig._unchecked(data)


def _load_array(file: Path) -> np.ndarray:
    """``np.load(file, mmap_mode="r")``; a file that is not a whole ``.npy`` array is a
    :class:`DatasetError` naming it, its size and what is wrong."""
    try:
        return np.load(file, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise DatasetError(f"{file.parent} is incomplete: {file.name} is missing; "
                           f"{REGENERATE}") from None
    except (ValueError, OSError, EOFError) as exc:
        raise DatasetError(f"corrupt array {file}: {_npy_problem(file, exc)}; "
                           f"{REGENERATE}") from None


def _npy_problem(file: Path, exc: Exception) -> str:
    """What is wrong with a ``.npy`` file that NumPy could not open."""
    try:
        size = file.stat().st_size
    except OSError:
        return str(exc)
    readers = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}
    try:
        with open(file, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            shape, _, dtype = readers[version](handle)
            expected = handle.tell() + int(np.prod(shape)) * dtype.itemsize
    except (ValueError, OSError, EOFError, KeyError):
        return (f"{size} bytes that do not start with a whole .npy header (truncated or not "
                f"a NumPy array file; {exc})")
    if size < expected:
        return (f"truncated: {size} bytes, but its header describes {expected} "
                f"({dtype} of shape {shape}); an interrupted write or copy?")
    return f"{size} bytes: {exc}"


INVALID_DTYPE = np.dtype([("event", np.int64), ("problem", "U20"), ("observation", np.int64),
                          ("value", np.float64), ("count", np.int64)])


def scan_invalid(times, flux, flux_err, offsets, *,
                 chunk_observations: int = CHECK_CHUNK_OBSERVATIONS) -> np.ndarray:
    """Every (event, problem) of :data:`microlens.core.validation.PROBLEMS` in stored arrays.

    ``times, flux, flux_err`` are the concatenated observations (memory maps) and ``offsets``
    the event boundaries (see the module docstring). They are read in chunks of whole events of
    about ``chunk_observations`` observations and checked by
    :func:`microlens.core.validation.find_problems` (vectorised); the time order is checked within
    events only. Returns a structured array of :data:`INVALID_DTYPE` (event, problem, first bad
    observation, its value, bad observations of that kind), ordered by problem then event.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    n = offsets.size - 1
    parts = {code: [] for code in PROBLEMS}
    empty = np.flatnonzero(np.diff(offsets) == 0)
    if empty.size:
        part = np.zeros(empty.size, INVALID_DTYPE)
        part["event"], part["problem"], part["value"], part["count"] = empty, "no_observations", \
            np.nan, 1
        parts["no_observations"].append(part)
    start = 0
    while start < n:
        stop = int(np.searchsorted(offsets, offsets[start] + chunk_observations, side="right")) - 1
        stop = min(max(stop, start + 1), n)
        lo, hi = int(offsets[start]), int(offsets[stop])
        chunk = [np.asarray(a[lo:hi])[None, :] for a in (times, flux, flux_err)]
        found = find_problems(*chunk, check_mask_order=False)
        firsts_of_events = offsets[start:stop] - lo
        for code in ("unsorted_times", "duplicate_times"):  # not across event boundaries
            if code in found:
                found[code][0, firsts_of_events[firsts_of_events < hi - lo]] = False
        for code, where in found.items():
            position = np.flatnonzero(where[0])
            if position.size == 0:
                continue
            event = np.searchsorted(offsets, position + lo, side="right") - 1
            events, first, counts = np.unique(event, return_index=True, return_counts=True)
            part = np.empty(events.size, INVALID_DTYPE)
            part["event"], part["problem"] = events, code
            part["observation"] = position[first] + lo - offsets[events]
            part["count"] = counts
            part["value"] = chunk[_PROBLEM_ARRAY[code]][0, position[first]]
            parts[code].append(part)
        start = stop
    found = [p for code in PROBLEMS for p in parts[code]]
    return np.concatenate(found) if found else np.empty(0, INVALID_DTYPE)


_PROBLEM_ARRAY = {"nonfinite_times": 0, "unsorted_times": 0, "duplicate_times": 0,
                  "nonfinite_flux": 1, "nonfinite_flux_err": 2, "nonpositive_flux_err": 2}


def _problem_counts(invalid: np.ndarray, split: np.ndarray) -> dict:
    """``{problem: {split name: events}}`` for the problems present."""
    counts = {}
    for code in PROBLEMS:
        events = invalid["event"][invalid["problem"] == code]
        if events.size:
            per = np.bincount(np.asarray(split)[events], minlength=len(SPLIT_NAMES))
            counts[code] = {name: int(c) for name, c in zip(SPLIT_NAMES, per, strict=True) if c}
    return counts


def _fingerprint(path: Path) -> dict:
    """Size, modification and change times of the arrays the checks depend on: an edit in place
    or a copy changes them, so the recorded checks are trusted only for the files they saw."""
    out = {}
    for name in SEQUENCE_ARRAYS + ("offsets", "split"):
        stat = (path / f"{name}.npy").stat()
        out[name] = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]
    return out


class LightCurveStore:
    """A dataset directory opened read-only, arrays memory-mapped.

    Attributes
    ----------
    path : Path
    manifest : dict
    identity : str
        A hash of the manifest: what caches of results on these curves are keyed by (a set
        regenerated under the same path gets another one).
    config : SimulationConfig
    reference_epoch : float
        Full Julian date of time 0 (0.0 for the ``thesis`` survey's abstract days).
    observations : dict of np.memmap, shape (M,)
        ``times`` (float64), ``flux``, ``flux_err`` (float32), every event's observations one
        after the other; use :meth:`event`, :meth:`batch` or :meth:`padded` to read events.
    offsets : ndarray, shape (N + 1,)
        Event ``i`` is ``observations[name][offsets[i]:offsets[i + 1]]``.
    lengths : ndarray, shape (N,)
        Observations per event.
    labels, split : ndarray, shape (N,)
    params : structured memmap, shape (N,), row ``i`` belongs to event ``i``
    origin : structured memmap, shape (N,), or None
        Events injected into real baselines: each event's star and window
        (:data:`microlens.simulation.injection.ORIGIN_DTYPE`); None for synthetic data sets.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = resolve_path(path)
        self.manifest = _read_manifest(self.path)
        # names these curves: it changes when the set is regenerated under the same path
        # (another noise model, seed or config), so caches keyed by it never go stale
        self.identity = hashlib.sha256(
            json.dumps(self.manifest, sort_keys=True).encode()).hexdigest()[:16]
        self.config = _manifest_config(self.manifest, self.path / MANIFEST)
        self.reference_epoch = float(self.manifest.get("reference_epoch", 0.0))
        n, total = self.manifest["n_events"], self.manifest["n_observations"]
        self.observations = {}
        for name in SEQUENCE_ARRAYS + EVENT_ARRAYS:
            file = self.path / f"{name}.npy"
            array = _load_array(file)
            expected = ((total,) if name in SEQUENCE_ARRAYS
                        else (n + 1,) if name == "offsets" else (n,))
            if array.shape != expected:
                raise DatasetError(
                    f"corrupt dataset {self.path}: {file.name} has shape {array.shape}, "
                    f"manifest says {expected}; {REGENERATE}"
                )
            if name in ARRAY_DTYPES and array.dtype != ARRAY_DTYPES[name]:
                raise DatasetError(
                    f"corrupt dataset {self.path}: {file.name} holds {array.dtype}, the "
                    f"layout stores {np.dtype(ARRAY_DTYPES[name])}; {REGENERATE}")
            if name in SEQUENCE_ARRAYS:
                self.observations[name] = array
            else:
                setattr(self, name, array)
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        if (self.offsets[0] != 0 or self.offsets[-1] != total
                or np.any(np.diff(self.offsets) < 0)):
            raise DatasetError(f"corrupt dataset {self.path}: offsets.npy does not run from 0 "
                               f"to {total} without decreasing")
        self.lengths = np.diff(self.offsets)
        self.origin = None  # injection into real baselines: each event's star and window
        if (self.path / "origin.npy").exists():
            self.origin = _load_array(self.path / "origin.npy")
            if self.origin.shape != (n,) or self.origin.dtype.names is None \
                    or "star" not in self.origin.dtype.names:
                raise DatasetError(f"corrupt dataset {self.path}: origin.npy holds "
                                   f"{self.origin.dtype} of shape {self.origin.shape}, not a "
                                   f"record per event; {REGENERATE}")
        if self.params.dtype.names != tuple(self.manifest["param_columns"]):
            raise DatasetError(f"corrupt dataset {self.path}: parameter columns do not match")
        if not np.array_equal(self.params["label"], self.labels):
            raise DatasetError(f"corrupt dataset {self.path}: labels.npy and the parameter "
                               "table disagree (rows out of alignment)")
        self._invalid = None
        self._check_values()

    # -- value checks ----------------------------------------------------------------------

    def _check_values(self) -> None:
        """Warn (:class:`~microlens.core.validation.InvalidDataWarning`) about events a model cannot
        use. The checks recorded at generation are used while the arrays are the files they
        saw; otherwise (an older dataset, a copy, an edit) the arrays are scanned now."""
        record = self.manifest.get("checks")
        try:
            trusted = bool(record) and record.get("fingerprint") == _fingerprint(self.path)
        except OSError:
            trusted = False
        if trusted:
            counts, n_invalid = record["problems"], int(record["invalid_events"])
            if not counts:
                self._invalid = np.empty(0, INVALID_DTYPE)
        else:
            self._invalid = self._scan()
            counts = _problem_counts(self._invalid, self.split)
            n_invalid = int(np.unique(self._invalid["event"]).size)
        if counts:
            listed = "; ".join(
                f"{PROBLEMS[code]} in {sum(per.values())} "
                f"({', '.join(f'{k} {v}' for k, v in per.items())})"
                for code, per in counts.items())
            warnings.warn(
                f"{self.path}: {n_invalid} of {len(self)} events have observations a model "
                f"cannot use: {listed}. store.invalid_events() lists them with the first bad "
                "observation; training refuses them in the train and val splits and "
                "predictions refuse them", InvalidDataWarning, stacklevel=3)

    def invalid_events(self, split: str | None = None):
        """Events a model cannot use, one row per (event, problem), as a pandas DataFrame.

        Parameters
        ----------
        split : {'train', 'val', 'test'}, optional
            Only events of this split (default: all).

        The checks recorded when the dataset was written are used while its arrays are
        unchanged (same size, modification and change times); otherwise the arrays are scanned
        once, vectorised and in chunks, when the store is opened.

        Returns
        -------
        pandas.DataFrame
            Columns ``event`` (store row), ``split``, ``problem`` (a code of
            :data:`microlens.core.validation.PROBLEMS`), ``observation`` (the first bad one,
            0-based; for repeated or unsorted times the later of the two), ``value`` (the bad value
            there), ``count`` (bad observations of that kind in the event) and ``rule`` (what is
            valid). Empty when every event is usable.
        """
        import pandas as pd

        invalid = self._invalid_array()
        if split is not None:
            invalid = invalid[np.asarray(self.split)[invalid["event"]] == split_code(split)]
        invalid = invalid[np.lexsort((invalid["problem"], invalid["event"]))]
        frame = pd.DataFrame({name: invalid[name] for name in INVALID_DTYPE.names})
        frame.insert(1, "split", np.asarray(SPLIT_NAMES, dtype=object)[
            np.asarray(self.split)[invalid["event"]]])
        frame["rule"] = [rule(code) for code in frame["problem"]]
        return frame

    def _scan(self) -> np.ndarray:
        return scan_invalid(*(self.observations[name] for name in SEQUENCE_ARRAYS), self.offsets)

    def _invalid_array(self) -> np.ndarray:
        if self._invalid is None:
            self._invalid = self._scan()
        return self._invalid

    def require_valid(self, rows: Sequence[int], purpose: str, advice: str = "repair or "
                      "regenerate the dataset, or leave those rows out") -> None:
        """Raise :class:`~microlens.core.validation.InvalidLightCurveError` if any of ``rows`` holds
        observations a model cannot use; ``purpose`` starts the message (what needs them) and
        ``advice`` ends it (what to do).

        The message gives, per problem, the count, the first few events as
        ``flux[row, observation] is value`` (store coordinates) and what is valid. Costs nothing
        for a dataset whose recorded checks found no problem (see :meth:`invalid_events`).
        """
        invalid = self._invalid_array()
        if invalid.size == 0:
            return
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        used = invalid[np.isin(invalid["event"], rows)]
        if used.size == 0:
            return
        firsts = {}
        for code in PROBLEMS:
            of = used[used["problem"] == code]
            if of.size:
                firsts[code] = (of["event"], of["observation"])
        arrays = {name: _EventIndexer(self.observations[name], self.offsets)
                  for name in SEQUENCE_ARRAYS}
        names = {k: k for k in (*arrays, "mask")}
        n_bad = np.unique(used["event"]).size
        lines = format_problems(firsts, rows.size, arrays, names).split("\n  ")
        detail = "\n  ".join(lines[1:]) if len(lines) > 1 else lines[0]
        raise InvalidLightCurveError(
            f"{purpose}: {n_bad} of {rows.size} events of {self.path} hold observations a model "
            f"cannot use (indices are [store row, observation]):\n  {detail}\n"
            f"store.invalid_events() lists them all; {advice}")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.manifest["class_counts"].items())
        return f"LightCurveStore({str(self.path)!r}, {len(self)} events: {counts})"

    def indices(self, split: str | None = None) -> np.ndarray:
        """Event indices of one split (``'train'``, ``'val'``, ``'test'``), or all for None."""
        if split is None:
            return np.arange(len(self))
        return np.flatnonzero(self.split == split_code(split))

    def event(self, index: int) -> dict:
        """One event: its observations (float64; times since ``reference_epoch``), label, split
        and parameter row as a dict."""
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"event index {index} out of range for {len(self)} events")
        lo, hi = self.offsets[index], self.offsets[index + 1]
        row = self.params[index]
        out = {"index": index, "label": int(self.labels[index]),
               "split": SPLIT_NAMES[int(self.split[index])]}
        for name in SEQUENCE_ARRAYS:
            out[name] = np.asarray(self.observations[name][lo:hi], dtype=np.float64)
        out["params"] = {name: row[name].item() for name in row.dtype.names}
        return out

    def padded(self, rows: Sequence[int], width: int | None = None,
               names: Sequence[str] = SEQUENCE_ARRAYS) -> dict:
        """Events ``rows`` as padded NumPy arrays ``(len(rows), width)`` plus ``mask``.

        Parameters
        ----------
        rows : sequence of int
            Store rows.
        width : int, optional
            Columns (default: the longest of these events); longer events are cut.
        names : sequence of str
            Which of ``times, flux, flux_err`` to read.

        Returns
        -------
        dict
            The named arrays (their stored dtypes, zero where padded), ``mask`` (bool, valid
            observations first) and ``lengths`` (int64, before any cut).
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"event indices must lie in [0, {len(self)}), got "
                             f"[{rows.min()}, {rows.max()}]")
        return pad_events(self.observations, self.offsets, rows, width, names)

    def batch(self, rows: Sequence[int]) -> dict:
        """Events ``rows`` as padded torch tensors, the layout of :func:`collate_light_curves`
        (``times`` as float32 days since ``reference_epoch``), padded to the longest of them."""
        import torch

        rows = np.asarray(rows, dtype=np.int64)
        if rows.ndim != 1 or rows.size == 0:
            raise ValueError("rows must be a non-empty 1-D sequence of event indices")
        arrays = self.padded(rows)
        batch = {name: torch.from_numpy(arrays[name].astype(np.float32, copy=False))
                 for name in SEQUENCE_ARRAYS}
        batch["mask"] = torch.from_numpy(arrays["mask"])
        batch["labels"] = torch.from_numpy(np.asarray(self.labels[rows], dtype=np.int64))
        batch["index"] = torch.from_numpy(rows.copy())
        batch["lengths"] = torch.from_numpy(arrays["lengths"])
        return batch

    def params_table(self, indices: Sequence[int] | None = None):
        """The parameter table (or some rows of it) as a pandas DataFrame indexed by event."""
        import pandas as pd

        idx = self.indices() if indices is None else np.asarray(indices)
        frame = pd.DataFrame(np.asarray(self.params[idx]))
        frame.insert(0, "split", np.asarray(SPLIT_NAMES)[self.split[idx]])
        frame.index = pd.Index(idx, name="event")
        return frame


class _EventIndexer:
    """``[event, observation]`` indexing of concatenated observations (for error messages)."""

    def __init__(self, flat, offsets):
        self.flat, self.offsets = flat, offsets

    def __getitem__(self, key):
        event, observation = key
        return self.flat[self.offsets[event] + observation]


def pad_events(observations: dict, offsets: np.ndarray, rows: Sequence[int],
               width: int | None = None, names: Sequence[str] = SEQUENCE_ARRAYS) -> dict:
    """Pad events ``rows`` of concatenated ``observations`` (cut at ``offsets``) into
    ``(len(rows), width)`` arrays; see :meth:`LightCurveStore.padded`."""
    offsets = np.asarray(offsets, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    starts = offsets[rows]
    lengths = offsets[rows + 1] - starts
    if width is None:
        width = max(int(lengths.max(initial=0)), 1)
    position = np.arange(width)
    mask = position[None, :] < lengths[:, None]
    out = {"mask": mask, "lengths": lengths.astype(np.int64)}
    if not mask.any():
        for name in names:
            out[name] = np.zeros(mask.shape, observations[name].dtype)
        return out
    lo = int(starts[lengths > 0].min())
    hi = int((starts + np.minimum(lengths, width)).max())
    index = np.where(mask, starts[:, None] + position[None, :] - lo, 0)
    for name in names:
        # One contiguous read when the rows are close together (a shuffled batch of a large
        # store reads its rows one by one instead).
        flat = observations[name]
        if hi - lo <= 4 * int(mask.sum()) + 4096:
            block = np.asarray(flat[lo:hi])
            values = block[index]
        else:
            values = np.asarray(flat)[index + lo]
        out[name] = np.where(mask, values, 0).astype(flat.dtype, copy=False)
    return out


def open_dataset(path: str | os.PathLike) -> LightCurveStore:
    """Open a dataset directory (clear :class:`DatasetError` if missing, incomplete or corrupt)."""
    return LightCurveStore(path)


def split_code(split: str) -> int:
    """0, 1, 2 for ``'train'``, ``'val'``, ``'test'`` (ValueError naming the valid splits)."""
    try:
        return SPLIT_NAMES.index(split)
    except ValueError:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLIT_NAMES)}") from None


# --------------------------------------------------------------------------------------------
# torch --------------------------------------------------------------------------------------------


class LightCurveDataset:
    """A torch map-style dataset over one split of a store.

    Each item is a dict of numpy arrays for one event (valid observations only): ``times``,
    ``flux``, ``flux_err`` (float32), ``label`` and ``index`` (the row in the store, so physical
    parameters stay aligned through any sampler or shuffle). Use with
    :func:`collate_light_curves`.

    Parameters
    ----------
    store : LightCurveStore or path
    split : {'train', 'val', 'test'} or None
        None serves every event.
    indices : sequence of int, optional
        Restrict to these store rows (must belong to ``split``).
    """

    def __init__(self, store, split: str | None = "train", indices: Sequence[int] | None = None):
        self.store = store if isinstance(store, LightCurveStore) else open_dataset(store)
        self.split = split
        rows = self.store.indices(split)
        if indices is not None:
            wanted = np.asarray(indices, dtype=np.int64)
            outside = np.setdiff1d(wanted, rows)
            if outside.size:
                raise ValueError(f"indices {outside[:5].tolist()} are not in split {split!r}")
            rows = wanted
        self.rows = rows

    def __len__(self) -> int:
        return int(self.rows.size)

    def __getitem__(self, i: int) -> dict:
        row = int(self.rows[i])
        lo, hi = self.store.offsets[row], self.store.offsets[row + 1]
        out = {name: np.array(self.store.observations[name][lo:hi], dtype=np.float32)
               for name in SEQUENCE_ARRAYS}
        out.update(label=int(self.store.labels[row]), index=row)
        return out

    @property
    def labels(self) -> np.ndarray:
        """Labels of the served events, in order."""
        return np.asarray(self.store.labels[self.rows])


def collate_light_curves(items: Sequence[dict]) -> dict:
    """Pad a list of items to the longest in the batch and stack them as torch tensors.

    Returns
    -------
    dict
        ``times, flux, flux_err`` float32 ``(B, L)``, ``mask`` bool ``(B, L)``, ``labels`` int64
        ``(B,)``, ``index`` int64 ``(B,)``, ``lengths`` int64 ``(B,)``.
    """
    import torch

    if not items:
        raise ValueError("cannot collate an empty batch")
    lengths = np.array([item["times"].size for item in items])
    width = max(int(lengths.max()), 1)
    batch = {}
    for name in ("times", "flux", "flux_err"):
        padded = np.zeros((len(items), width), np.float32)
        for row, item in enumerate(items):
            padded[row, : lengths[row]] = item[name]
        batch[name] = torch.from_numpy(padded)
    batch["mask"] = torch.from_numpy(np.arange(width)[None, :] < lengths[:, None])
    batch["labels"] = torch.tensor([item["label"] for item in items], dtype=torch.long)
    batch["index"] = torch.tensor([item["index"] for item in items], dtype=torch.long)
    batch["lengths"] = torch.from_numpy(lengths.astype(np.int64))
    return batch


def resimulate(store: LightCurveStore, index: int):
    """Re-run the simulation of event ``index`` from the stored config and seed."""
    from microlens.simulation.events import simulate_event

    return simulate_event(store.config, int(index))


__all__ = [
    "DatasetError", "INVALID_DTYPE", "LightCurveDataset", "LightCurveStore", "SCHEMA_VERSION",
    "collate_light_curves", "generate_dataset", "open_dataset", "pad_events", "resimulate",
    "scan_invalid", "split_code", "stratified_split"
]  # fmt: skip
