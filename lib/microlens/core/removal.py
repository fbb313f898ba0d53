"""Deleting only what the project made: the marker of a project directory, and the one function
that removes such a directory.

Every directory the project creates for its own output (a data set, the ``.partial`` folder of a
generation, a training, pretraining or ``features`` run, a study cell) gets the marker file
:data:`MARKER` as its first file, before anything else is written, so that even an interrupted
one is recognisably the project's. ``overwrite=True`` everywhere, a study's ``--force`` and the
clean-up of unfinished folders all delete through :func:`remove_project_dir`, which removes a
directory only when

* it carries the marker, naming one of the kinds the caller expects (a data set's ``overwrite``
  never deletes a training run), or
* it was made by an earlier version of the project, recognised by its own files (a data set's
  ``manifest.json`` with ``schema_version`` and ``config``, a generation's ``plan.json``, a run's
  ``config.json`` with its ``train`` or ``pretrain`` section, a study cell's ``cell.json``
  record with its ``key`` and ``status``), or
* it is empty;

and never the filesystem root, a home directory, the project root, the working directory or a
directory above any of them, whatever they hold. Anything else raises
:class:`UnsafeDeleteError` naming the directory and what is in it: the user moves their files or
chooses another directory; nothing is guessed.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from microlens.core.paths import PROJECT_ROOT, write_json_atomic

MARKER = ".microlens.json"
"""Name of the marker file that says "the microlens project made this directory"."""

KINDS: dict[str, str] = {
    "dataset": "a data set",
    "generation": "an unfinished data-set generation",
    "run": "a training run",
    "cell": "a study cell",
}
"""What a marked directory can be, with the words used in messages."""

_SHOWN_ENTRIES = 8


class UnsafeDeleteError(ValueError):
    """A directory that ``overwrite`` (or a clean-up) was asked to delete is not one the project
    made for this purpose, or is one that must never be deleted."""


def _check_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if not kinds or unknown:
        raise ValueError(f"unknown directory kind(s) {unknown or list(kinds)!r}; valid choices: "
                         f"{', '.join(KINDS)}")
    return kinds


def mark_project_dir(path: str | os.PathLike, kind: str, *, relabel: bool = False) -> Path:
    """Create ``path`` (and its parents) and write the project's marker into it, first.

    Parameters
    ----------
    path : path
        The directory (absolute, or as the caller resolved it).
    kind : str
        What it will hold: one of :data:`KINDS`.
    relabel : bool
        Rewrite an existing marker with ``kind`` (a finished generation becomes a data set);
        otherwise an existing marker is kept as it is (resuming an interrupted run).

    Returns
    -------
    Path
        ``path``.
    """
    (kind,) = _check_kinds(kind)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    marker = path / MARKER
    if relabel or not marker.is_file():
        write_json_atomic(marker, {"made_by": "microlens", "kind": kind,
                                   "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return path


def holds_files(path: str | os.PathLike) -> bool:
    """Whether the directory ``path`` holds anything besides the project's marker and the
    temporary files of an interrupted atomic write (False for a missing directory)."""
    path = Path(path)
    if not path.is_dir():
        return False
    return any(p.name != MARKER and not (p.name.startswith(".") and p.name.endswith(".tmp"))
               for p in path.iterdir())


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def project_kind(path: str | os.PathLike) -> str | None:
    """What the project made ``path`` as (a key of :data:`KINDS`), or None.

    The marker decides; a directory without one is recognised by the files earlier versions of
    the project wrote (see the module docstring).
    """
    path = Path(path)
    if not path.is_dir():
        return None
    marker = _read_json(path / MARKER)
    if isinstance(marker, dict) and marker.get("made_by") == "microlens" \
            and marker.get("kind") in KINDS:
        return marker["kind"]
    manifest = _read_json(path / "manifest.json")
    if isinstance(manifest, dict) and {"schema_version", "config"} <= manifest.keys():
        return "dataset"
    plan = _read_json(path / "plan.json")
    if isinstance(plan, dict) and {"schema_version", "config", "chunk_size"} <= plan.keys():
        return "generation"
    config = _read_json(path / "config.json")
    if isinstance(config, dict) and ("train" in config or "pretrain" in config):
        return "run"
    cell = _read_json(path / "cell.json")
    if isinstance(cell, dict) and {"key", "status"} <= cell.keys():
        return "cell"
    return None


def _protected_reason(path: Path) -> str | None:
    """Why ``path`` must never be deleted, or None."""
    if path == Path(path.anchor):
        return "it is the filesystem root"
    home = Path.home().resolve()
    if path == home or home.is_relative_to(path):
        return f"it is the home directory {home} or holds it"
    if path.parent in {Path("/home"), Path("/Users")}:
        return "it is a home directory"
    root = PROJECT_ROOT.resolve()
    if root.is_relative_to(path):
        return f"it is the project root {root} or holds it"
    cwd = Path.cwd().resolve()
    if cwd.is_relative_to(path):
        return f"it holds the working directory {cwd}"
    return None


def _describe_contents(path: Path) -> str:
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    shown = ", ".join(entries[:_SHOWN_ENTRIES])
    more = f" and {len(entries) - _SHOWN_ENTRIES} more" if len(entries) > _SHOWN_ENTRIES else ""
    return f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}: {shown}{more}"


def check_removable(path: str | os.PathLike, kinds: str | Iterable[str]) -> Path | None:
    """The resolved directory that :func:`remove_project_dir` would delete, None when there is
    nothing at ``path``; raises :class:`UnsafeDeleteError` when it would refuse (deleting
    nothing), so a caller can check before it starts any work."""
    kinds = _check_kinds(kinds)
    given = Path(path).expanduser()
    if str(path) == "":
        raise UnsafeDeleteError("the directory to delete is an empty path; name a directory")
    if given.is_symlink():
        raise UnsafeDeleteError(f"{given} is a symbolic link; the project deletes only "
                                "directories it made (remove the link yourself)")
    if not given.exists():
        return None
    resolved = given.resolve()
    reason = _protected_reason(resolved)
    if reason is not None:
        raise UnsafeDeleteError(f"refusing to delete {resolved}: {reason}")
    if not resolved.is_dir():
        raise UnsafeDeleteError(f"refusing to delete {resolved}: it is a file, not a directory "
                                f"the project made ({' or '.join(KINDS[k] for k in kinds)})")
    kind = project_kind(resolved)
    if kind in kinds or not any(resolved.iterdir()):
        return resolved
    wanted = " or ".join(KINDS[k] for k in kinds)
    if kind is not None:
        raise UnsafeDeleteError(f"refusing to delete {resolved}: it holds {KINDS[kind]}, not "
                                f"{wanted}; choose another directory")
    raise UnsafeDeleteError(
        f"refusing to delete {resolved}: the project did not make it (no {MARKER} marker, no "
        f"files of {wanted}) and it is not empty ({_describe_contents(resolved)}); move those "
        "files or choose another directory")


def remove_project_dir(path: str | os.PathLike, kinds: str | Iterable[str]) -> bool:
    """Delete a directory the project made, and nothing else.

    Parameters
    ----------
    path : path
        The directory (already resolved by the caller against the project root if relative).
    kinds : str or iterable of str
        What the caller expects there (keys of :data:`KINDS`): a marked directory of another
        kind is refused.

    Returns
    -------
    bool
        True when a directory was deleted, False when there was nothing at ``path``.

    Raises
    ------
    UnsafeDeleteError
        When ``path`` is protected (filesystem root, a home directory, the project root, the
        working directory or above one of them), a symbolic link, a file, or a non-empty
        directory the project did not make as one of ``kinds``. Nothing is deleted then.
    """
    resolved = check_removable(path, kinds)
    if resolved is None:
        return False
    shutil.rmtree(resolved)
    return True


__all__ = ["KINDS", "MARKER", "UnsafeDeleteError", "check_removable", "holds_files",
           "mark_project_dir", "project_kind", "remove_project_dir"]
