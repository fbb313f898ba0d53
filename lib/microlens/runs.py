"""Reading a training run's directory: ``history.csv`` and ``metrics.json``.

Kept apart from :mod:`microlens.train` so that readers of a run (the torchrun launcher in
:mod:`microlens.ddp`, the figures) need not import the trainer, and the trainer can import
:mod:`microlens.ddp` without a cycle. :mod:`microlens.train` re-exports both readers.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from .paths import atomic_path, resolve_path

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
    """The rows of a run's ``history.csv`` as dicts of numbers (empty if none yet).

    Parameters
    ----------
    run_dir : str or path
        The run directory (relative paths are resolved against the project root).
    """
    return read_csv_rows(resolve_path(run_dir) / "history.csv")


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
    return json.loads(path.read_text(encoding="utf-8"))


__all__ = ["INTEGER_COLUMNS", "read_csv_rows", "read_history", "read_metrics"]


STEP_COLUMNS = ("step", "epoch", "loss", "learning_rate", "grad_norm")
HISTORY_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                   "learning_rate", "epoch_seconds", "train_events_per_second", "skipped_steps")
"""Columns of a run's ``steps.csv`` and ``history.csv`` (every kind writes the same)."""


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
