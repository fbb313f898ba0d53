"""Small numeric helpers shared by the analyses."""

from __future__ import annotations

import numpy as np


def _nanmean(values) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None


def run_model_kind(run_dir) -> str:
    """The model kind (:attr:`ModelConfig.kind <microlens.models.config.ModelConfig.kind>`) a run
    directory holds, read from its ``config.json`` (runs saved before kinds existed are
    ``"transformer"``).

    Raises
    ------
    FileNotFoundError
        When ``run_dir`` has no ``config.json``.
    """
    import json

    from microlens.core.paths import resolve_path
    from microlens.models.config import ModelConfig

    config_file = resolve_path(run_dir) / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{resolve_path(run_dir)} is not a run directory: config.json "
                                "is missing")
    saved = json.loads(config_file.read_text(encoding="utf-8"))
    return ModelConfig.from_saved(saved.get("model", {})).kind
