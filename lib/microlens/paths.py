"""Where things live: the project root and path resolution shared by notebooks and scripts."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
"""The repository root (``lib/microlens/paths.py`` -> two levels up)."""


def resolve_path(path: str | os.PathLike) -> Path:
    """Absolute path; a relative one is taken from the project root, not the working directory.

    Notebooks run by papermill execute in ``notebooks/`` while scripts run from the root; resolving
    against the root makes ``data/quick`` mean the same place for both.
    """
    p = Path(path).expanduser()
    return p if p.is_absolute() else PROJECT_ROOT / p
