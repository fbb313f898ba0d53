"""Shared by the analyses: the dataset of a run, batching, and eval-mode inference blocks."""

from __future__ import annotations

import numpy as np

from ..predictions import run_dataset  # noqa: F401  (re-exported)


def _batches(n: int, batch_size: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    return tqdm(range(0, n, int(batch_size)), desc=desc, unit="batch", disable=not progress)


class _Inference:
    """Eval mode without gradients for a block; the model's previous mode is restored after."""

    def __init__(self, model):
        import torch

        self.model, self.was_training = model, model.training
        self.no_grad = torch.no_grad()

    def __enter__(self):
        self.no_grad.__enter__()
        self.model.eval()
        return self.model

    def __exit__(self, *exc):
        self.model.train(self.was_training)
        return self.no_grad.__exit__(*exc)

def _nanmean(values) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None
