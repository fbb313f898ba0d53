"""Temperature as a function of the number of observations seen.

A single temperature fitted on final answers leaves early answers miscalibrated (after one
observation a trained model said ~99.9 % "no event" to every event). With
``TrainConfig.temperature_fit = "by_count"`` the trainer fits ``log T`` at knots ``n = 1, 2, 4,
..., 2^m`` observations seen, piecewise linear in ``log n`` between knots and constant beyond the
first and last, on the validation split's answers after log-spaced numbers of observations of each
event (:func:`count_positions`). The curve depends on the count of observations seen, never on
the fraction of the final curve (a stream cannot know it), so the batch model, the stream and
stored predictions apply the same temperature to the same answer. It is stored with the weights
(buffers ``temperature_counts`` and ``temperature_curve`` of the model; empty: the scalar
``temperature`` applies, as in checkpoints from before the curve).
"""

from __future__ import annotations

import math

import numpy as np

TEMPERATURE_FITS = ("final", "by_count")
"""Choices of ``TrainConfig.temperature_fit``: one temperature on final answers (today's), or a
curve over the number of observations seen."""

POSITIONS_PER_EVENT = 48
"""Log-spaced answers per validation event used by the curve fit (plus its final answer)."""


def check_temperature_fit(value: str) -> str:
    if value not in TEMPERATURE_FITS:
        raise ValueError(f"unknown temperature_fit {value!r}; valid: {', '.join(TEMPERATURE_FITS)}")
    return value


def temperature_knots(max_count: int) -> np.ndarray:
    """Knots ``1, 2, 4, ..., 2^m`` (float64), the first power of two ``>= max_count`` last."""
    if int(max_count) < 1:
        raise ValueError(f"max_count must be >= 1, got {max_count!r}")
    return 2.0 ** np.arange(math.ceil(math.log2(int(max_count))) + 1)


def count_positions(lengths, per_event: int = POSITIONS_PER_EVENT):
    """``(event, position)`` index arrays of log-spaced answers of each event.

    Positions are 0-based (the answer after ``position + 1`` observations): the distinct values of
    ``round(geomspace(1, n, per_event)) - 1`` and the last, ``n - 1``, for an event of ``n``.
    """
    events, positions = [], []
    for i, n in enumerate(np.asarray(lengths, np.int64)):
        if n < 1:
            continue
        counts = np.unique(np.round(np.geomspace(1, n, per_event)).astype(np.int64))
        counts = np.union1d(counts, [n])
        events.append(np.full(counts.size, i, np.int64))
        positions.append(counts - 1)
    if not events:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(events), np.concatenate(positions)


def temperature_at(counts, knots, temperatures) -> np.ndarray:
    """Temperatures (float64) after ``counts`` observations from a curve (NumPy).

    ``log T`` is interpolated linearly in ``log n`` between ``knots`` and held constant outside
    them; the same numbers as :func:`temperature_at_torch`.
    """
    counts = np.asarray(counts, np.float64)
    knots = np.asarray(knots, np.float64)
    temperatures = np.asarray(temperatures, np.float64)
    if knots.size == 1:
        return np.full(counts.shape, temperatures[0])
    return np.exp(np.interp(np.log(counts), np.log(knots), np.log(temperatures)))


def temperature_at_torch(counts, knots, log_temperatures):
    """:func:`temperature_at` for torch tensors (differentiable in ``log_temperatures``)."""
    import torch

    x = torch.log(torch.as_tensor(counts, dtype=torch.float64, device=knots.device))
    xs = torch.log(knots.double())
    log_t = log_temperatures.double()
    if xs.numel() == 1:
        return torch.exp(log_t.expand(x.shape))
    i = (torch.searchsorted(xs, x.contiguous(), right=True) - 1).clamp(0, xs.numel() - 2)
    w = ((x - xs[i]) / (xs[i + 1] - xs[i])).clamp(0.0, 1.0)
    return torch.exp(log_t[i] * (1 - w) + log_t[i + 1] * w)


def fit_temperature_curve(logits, labels, counts, knots, start: float = 1.0) -> np.ndarray:
    """Temperatures at ``knots`` minimising the mean negative log-likelihood of
    ``softmax(logits / T(count))`` over the given answers.

    Parameters
    ----------
    logits : Tensor ``(M, C)``
        Uncalibrated answers.
    labels : Tensor ``(M,)`` int64
    counts : array ``(M,)``
        Observations seen behind each answer (>= 1).
    knots : array ``(K,)``
        From :func:`temperature_knots`.
    start : float
        Initial temperature of every knot (e.g. the final-answer fit). Knots past the first one
        at or above the largest count get the value there (the curve is constant beyond it).

    Returns
    -------
    ndarray ``(K,)`` float64
        Positive temperatures, bounded to ``[exp(-4), exp(4)]`` as the scalar fit.
    """
    import torch
    import torch.nn.functional as F

    logits = torch.as_tensor(logits).double()
    labels = torch.as_tensor(labels, dtype=torch.int64)
    counts = torch.as_tensor(np.asarray(counts, np.float64))
    if logits.shape[0] == 0:
        raise ValueError("cannot fit a temperature curve without answers")
    if bool((counts < 1).any()):
        raise ValueError("counts of observations seen must be >= 1")
    knots_t = torch.as_tensor(np.asarray(knots, np.float64))
    # knots beyond the answers' counts take the nearest reached knot's value (held constant)
    reached = knots_t[(knots_t <= counts.max()) | (knots_t == knots_t.min())]
    upper = knots_t[knots_t >= counts.max()]
    used = torch.cat([reached, upper[:1]]).unique()
    log_t = torch.full((used.numel(),), math.log(start), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=1.0, max_iter=200, tolerance_grad=1e-9,
                                  tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        bounded = log_t.clamp(-4.0, 4.0)
        t = temperature_at_torch(counts, used, bounded)
        loss = F.cross_entropy(logits / t[:, None], labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    fitted = log_t.detach().clamp(-4.0, 4.0)
    # the full knot grid: interpolating the fitted knots there changes nothing inside them
    return temperature_at(knots, used.numpy(), np.exp(fitted.numpy()))


__all__ = [
    "POSITIONS_PER_EVENT", "TEMPERATURE_FITS", "check_temperature_fit", "count_positions",
    "fit_temperature_curve", "temperature_at", "temperature_at_torch", "temperature_knots",
]  # fmt: skip


def fit_temperature(logits, labels) -> float:
    """Temperature minimising the negative log-likelihood of ``softmax(logits / T)``
    (``logits`` ``(E, C)`` and ``labels`` ``(E,)`` tensors)."""
    import torch.nn.functional as F
    from scipy.optimize import minimize_scalar

    logits = logits.double()

    def nll(log_t: float) -> float:
        return float(F.cross_entropy(logits / math.exp(log_t), labels))

    result = minimize_scalar(nll, bounds=(-4.0, 4.0), method="bounded",
                             options={"xatol": 1e-4})
    return float(math.exp(result.x))
