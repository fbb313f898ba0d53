"""Reading a training run's directory: ``history.csv``, ``metrics.json`` and the readers every
loader of a run uses.

:func:`read_json`, :func:`load_torch` and :func:`require_run_dir` turn a broken run directory
(a truncated or empty checkpoint, a ``config.json`` cut short, a directory that does not exist)
into one :class:`RunFileError` or ``FileNotFoundError`` naming the file and what is wrong with
it, instead of a parser's message without a path.

Kept apart from :mod:`microlens.training.train` so that readers of a run (the torchrun launcher in
:mod:`microlens.training.ddp`, the figures) need not import the trainer, and the trainer can import
:mod:`microlens.training.ddp` without a cycle. :mod:`microlens.training.train` re-exports both
readers.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import os
import pickle
import zipfile
from pathlib import Path

from microlens.core.paths import atomic_path, resolve_path

INTEGER_COLUMNS = ("epoch", "step", "skipped_steps")
"""Columns of ``history.csv`` read as integers; every other column is read as a float."""


def read_csv_rows(path: str | os.PathLike) -> list[dict]:
    """The rows of one of a run's CSV files (``history.csv``, ``steps.csv``) as dicts of
    numbers: :data:`INTEGER_COLUMNS` as int, the rest as float; empty if the file is missing."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key, value in row.items():
            row[key] = int(value) if key in INTEGER_COLUMNS else float(value)
    return rows


def read_history(run_dir: str | os.PathLike) -> list[dict]:
    """The rows of a run's ``history.csv`` as dicts of numbers (empty if none yet); an old
    pretraining history's columns come under today's names (:data:`OLD_HISTORY_NAMES`).

    Parameters
    ----------
    run_dir : str or path
        The run directory (relative paths are resolved against the project root).
    """
    rows = read_csv_rows(resolve_path(run_dir) / "history.csv")
    return [{OLD_HISTORY_NAMES.get(k, k): v for k, v in row.items()} for row in rows]


def read_metrics(run_dir: str | os.PathLike) -> dict:
    """A finished run's ``metrics.json``.

    Raises
    ------
    FileNotFoundError
        When the run has not finished (no ``metrics.json`` yet).
    """
    path = resolve_path(run_dir) / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the run has not finished")
    return read_json(path)


# --------------------------------------------------------------------------------------------
# Reading a run's files with errors that name them
# --------------------------------------------------------------------------------------------


class RunFileError(ValueError):
    """A file of a run directory exists but cannot be read (empty, truncated, not its format).

    The message names the file, its size or the place of the fault, and the remedy.
    """


def _size(path: Path) -> str:
    try:
        return f"{path.stat().st_size} bytes"
    except OSError:
        return "size unknown"


def read_json(path: str | os.PathLike, *, remedy: str = "restore it or run again") -> dict:
    """The JSON object in ``path`` (a run's ``config.json``, ``metrics.json``, ...).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist (naming it).
    RunFileError
        When the file is empty, not UTF-8, not valid JSON (naming the line and column) or
        holds something other than a JSON object; ``remedy`` ends the message.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"{path} {what}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RunFileError(f"{path} is not UTF-8 text ({_size(path)}; byte {exc.start} cannot "
                           f"be decoded): {remedy}") from None
    if not text.strip():
        raise RunFileError(f"{path} is empty ({_size(path)}): {remedy}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunFileError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column "
                           f"{exc.colno} ({_size(path)}; truncated or edited by hand?): "
                           f"{remedy}") from None
    if not isinstance(data, dict):
        raise RunFileError(f"{path} holds a JSON {type(data).__name__}, expected an object "
                           f"({{...}}): {remedy}")
    return data


def load_torch(path: str | os.PathLike, map_location="cpu", *,
               remedy: str = "retrain or restore it"):
    """``torch.load(path, weights_only=True)`` with errors that name the file.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    RunFileError
        When the file is empty, truncated (a checkpoint is a zip archive whose directory sits at
        the end, so a cut-short file is no archive), or not a weights file; ``remedy`` ends the
        message. Other failures (e.g. a CUDA checkpoint on a machine without CUDA) keep torch's
        own exception.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"{path} {what}")
    if path.stat().st_size == 0:
        raise RunFileError(f"{path} is empty (0 bytes): {remedy}")
    if not zipfile.is_zipfile(path):
        raise RunFileError(f"{path} is truncated or not a PyTorch checkpoint ({_size(path)}, "
                           f"no zip directory at its end): {remedy}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunFileError(f"{path} cannot be read as a weights file ({_size(path)}): {first}; "
                           f"{remedy}") from None
    except RuntimeError as exc:
        if not any(mark in str(exc) for mark in ("zip archive", "PytorchStreamReader",
                                                  "inline_container")):
            raise
        first = str(exc).strip().splitlines()[0]
        raise RunFileError(f"{path} is truncated or corrupt ({_size(path)}): {first}; "
                           f"{remedy}") from None


def require_run_dir(run_dir: str | os.PathLike, what: str = "run directory") -> Path:
    """``run_dir`` resolved (:func:`~microlens.core.paths.resolve_path`), or FileNotFoundError
    saying
    it does not exist (listing up to five similar names beside it) or is not a directory."""
    run_dir = resolve_path(run_dir)
    if run_dir.is_dir():
        return run_dir
    if run_dir.exists():
        raise NotADirectoryError(f"{what} {run_dir} is a file, not a directory")
    parent = run_dir.parent
    if not parent.is_dir():
        raise FileNotFoundError(f"{what} {run_dir} does not exist (nor does {parent})")
    names = sorted(p.name for p in parent.iterdir() if p.is_dir() and not p.name.startswith("."))
    close = difflib.get_close_matches(run_dir.name, names, n=5, cutoff=0.5)
    hint = (f"; similar names in {parent}: {', '.join(close)}" if close else
            f"; {parent} holds {len(names)} other directories" if names else
            f"; {parent} holds no directories")
    raise FileNotFoundError(f"{what} {run_dir} does not exist{hint}")




STEP_COLUMNS = ("step", "epoch", "loss", "learning_rate", "grad_norm")
HISTORY_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                   "learning_rate", "epoch_seconds", "train_events_per_second", "skipped_steps")
"""Columns of a run's ``steps.csv`` and ``history.csv``: every kind and every objective
writes the same (masked pretraining, which has no classes, writes NaN accuracies)."""

OLD_HISTORY_NAMES = {"seconds": "epoch_seconds", "events_per_second": "train_events_per_second"}
"""Columns of pretraining histories written before the columns were unified, and their names
now; :func:`read_history` reads them under the new names."""


class RunExistsError(FileExistsError):
    """The run directory exists and neither resume nor overwrite was asked for."""


def write_csv(path: Path, rows: list[dict], columns) -> None:
    """Write ``rows`` (dicts) as CSV with ``columns``, atomically (extra keys are ignored)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")


# --------------------------------------------------------------------------------------------
# The run directory: one routine for every kind and objective
# --------------------------------------------------------------------------------------------


def prepare_run_dir(run_dir: str | os.PathLike, *, resume: bool, overwrite: bool,
                    differences, what: str = "run directory",
                    config_required: bool = True) -> bool:
    """Check or clear a run directory before a run writes to it (rank 0 only).

    Parameters
    ----------
    run_dir : path
        The run directory.
    resume : bool
        Continue a run found there; its ``config.json`` must match (``differences``).
    overwrite : bool
        Delete a run found there first: only a directory the project made
        (:func:`microlens.core.removal.remove_project_dir`; anything else raises
        ``UnsafeDeleteError``).
    differences : callable
        ``differences(saved)`` gives the names of the settings in which the saved
        ``config.json`` (a dict) differs from this run's; any makes resuming a ValueError.
    what : str
        How messages name the directory ("run directory", "pretraining run").
    config_required : bool
        Whether resuming needs a ``config.json`` (a run killed before writing its first file
        has none; a kind that trains in one go can start again in place).

    Returns
    -------
    bool
        True when a run of this config is there to resume; False when the directory holds
        nothing (create it with :func:`start_run_dir`).

    Raises
    ------
    RunExistsError
        The directory holds files and neither ``resume`` nor ``overwrite`` was given.
    """
    from microlens.core.removal import holds_files, remove_project_dir

    if resume and overwrite:
        raise ValueError("choose resume or overwrite, not both")
    run_dir = Path(run_dir)
    if overwrite:
        remove_project_dir(run_dir, "run")
    if not holds_files(run_dir):
        return False
    if not resume:
        raise RunExistsError(f"{what} {run_dir} exists; pass resume=True (--resume) to continue "
                             "it or overwrite=True (--overwrite) to start again")
    config_file = run_dir / "config.json"
    if config_file.is_file():
        differ = differences(read_json(config_file))
        if differ:
            raise ValueError(f"cannot resume {run_dir}: its config differs in "
                             f"{', '.join(map(str, differ))}")
    elif config_required:
        raise FileNotFoundError(f"cannot resume {run_dir}: it has no config.json (not a run "
                                "this project wrote, or one killed before it began); pass "
                                "overwrite=True (--overwrite) to start again")
    for stale in run_dir.glob(".*.tmp"):  # left by a process killed while writing
        stale.unlink()
    return True


def start_run_dir(run_dir: str | os.PathLike, config_record: dict | None = None) -> Path:
    """Create a fresh run directory, marked as the project's (so that ``overwrite`` may delete
    it), and write ``config_record`` as its ``config.json`` if given."""
    from microlens.core.paths import write_json_atomic
    from microlens.core.removal import mark_project_dir

    run_dir = Path(run_dir)
    mark_project_dir(run_dir, "run")
    if config_record is not None:
        write_json_atomic(run_dir / "config.json", config_record)
    return run_dir


__all__ = ["HISTORY_COLUMNS", "INTEGER_COLUMNS", "OLD_HISTORY_NAMES", "RunExistsError",
           "RunFileError", "STEP_COLUMNS", "load_torch", "prepare_run_dir", "read_csv_rows",
           "read_history", "read_json", "read_metrics", "require_run_dir", "start_run_dir",
           "write_csv"]
