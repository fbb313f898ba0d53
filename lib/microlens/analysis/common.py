"""Small numeric helpers shared by the analyses."""

from __future__ import annotations

import numpy as np


def _nanmean(values) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None
