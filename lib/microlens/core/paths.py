"""Where things live, and how files get there: project root, path resolution, atomic writes."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path


def _project_root() -> Path:
    """``$MICROLENS_ROOT``, else the checkout this package sits in, else the working directory."""
    if os.environ.get("MICROLENS_ROOT"):
        return Path(os.environ["MICROLENS_ROOT"]).expanduser().resolve()
    checkout = Path(__file__).resolve().parents[3]  # lib/microlens/core/paths.py -> repository root
    if (checkout / "pyproject.toml").is_file() and (checkout / "lib" / "microlens").is_dir():
        return checkout
    return Path.cwd()  # installed without the repository (not editable)


PROJECT_ROOT = _project_root()
"""Where relative paths such as ``data/quick`` are anchored (normally the repository root)."""


def resolve_path(path: str | os.PathLike) -> Path:
    """Absolute path; a relative one is taken from the project root, not the working directory.

    Notebooks run by papermill execute in ``notebooks/`` while scripts run from the root; resolving
    against the root makes ``data/quick`` mean the same place for both.
    """
    p = Path(path).expanduser()
    return p if p.is_absolute() else PROJECT_ROOT / p


def project_relative(path: str | os.PathLike) -> str:
    """The inverse of :func:`resolve_path`: ``path`` relative to the project root when it lies
    under it (absolute otherwise), so a path handed on survives a moved checkout or another
    mount point of the same tree."""
    path = Path(path).expanduser()
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary name beside ``path``; on success rename it onto ``path``.

    Readers never see a half-written file: whatever the block writes to the temporary name
    replaces ``path`` only when the block ends without an error (the temporary file is removed
    otherwise). Parent directories are created. Temporary names are ``.<name>.<pid>.tmp``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: str | os.PathLike, data: dict) -> Path:
    """Write ``data`` as indented JSON atomically (see :func:`atomic_path`); returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return Path(path)
