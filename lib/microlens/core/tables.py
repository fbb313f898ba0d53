"""One writer for the project's result tables: CSV, and beside it JSON and markdown.

The study summary (:func:`microlens.workflow.studies.report.write_summary`), the model comparison
(:func:`microlens.evaluation.model_comparison.write_comparison`) and the learning curve
(:func:`microlens.workflow.learning_curve.write_learning_curve`) all write their tables through
:func:`write_table`: each file atomically (a reader never sees a half-written one), the CSV
with a fixed column order and empty cells where a value is missing or None.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from microlens.core.paths import atomic_path, resolve_path, write_json_atomic


def write_table(directory: str | os.PathLike, stem: str, rows: Sequence[Mapping],
                columns: Iterable[str], *, json: dict | None = None,
                markdown: str | None = None) -> list[Path]:
    """Write ``<stem>.csv`` and, when given, ``<stem>.json`` and ``<stem>.md`` in ``directory``.

    Parameters
    ----------
    directory : path
        Where the files go (relative paths: from the project root; created if missing).
    stem : str
        The files' name without its suffix.
    rows : sequence of mapping
        One mapping per CSV row; a key that is not in ``columns`` is left out of the CSV, a
        column a row lacks or holds None is an empty cell.
    columns : iterable of str
        The CSV's header, in order.
    json : dict, optional
        The JSON document (indented; nothing is added to it).
    markdown : str, optional
        The markdown text, written as it is.

    Returns
    -------
    list of Path
        The files written: the CSV, then the JSON and the markdown where given.
    """
    directory = resolve_path(directory)
    csv_path = directory / f"{stem}.csv"
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    written = [csv_path]
    if json is not None:
        written.append(write_json_atomic(directory / f"{stem}.json", json))
    if markdown is not None:
        md_path = directory / f"{stem}.md"
        with atomic_path(md_path) as tmp:
            tmp.write_text(markdown, encoding="utf-8")
        written.append(md_path)
    return written


__all__ = ["write_table"]
