"""Helpers shared by the tests: synthetic light curves, a store of arrays, spread weights, the
figure a saved HTML file draws.

Fixtures (data sets generated once per session, the notebook chain) live in ``conftest.py``;
plain functions and classes that several test modules import live here.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import torch

from microlens.model import ModelConfig, Normalization
from microlens.model_kinds import build_model


def bump_curves(batch: int, n: int, seed: int, *, random_bump: bool = False):
    """Light curves with irregular times (float64), a bump in the flux and errors of 1-3 %.

    The bump sits at the middle observation with height 3, or (``random_bump``) at a random
    30-70 % of the span with a random height in [0, 4). Returns ``(times, flux, err)``; flux
    and err are float32, noise included.
    """
    g = torch.Generator().manual_seed(seed)
    times = torch.cumsum(0.05 + torch.rand(batch, n, generator=g, dtype=torch.float64), dim=1)
    if random_bump:
        span = times[:, -1:] - times[:, :1]
        centre = times[:, :1] + (0.3 + 0.4 * torch.rand(batch, 1, generator=g,
                                                        dtype=torch.float64)) * span
        height = 4 * torch.rand(batch, 1, generator=g, dtype=torch.float64)
    else:
        centre, height = times[:, n // 2 : n // 2 + 1], 3
    flux = (1 + height / (1 + ((times - centre) / 2) ** 2)).float()
    err = 0.01 + 0.02 * torch.rand(batch, n, generator=g)
    return times, flux + err * torch.randn(batch, n, generator=g), err


def spiked_events(batch: int = 4, n: int = 120, seed: int = 0, *, spikes: str = "one"):
    """Light curves with irregular times, a Paczynski-like bump, noise of 0.05 and spikes.

    ``spikes``: ``"none"``; ``"one"``, a caustic-crossing-like spike of +400 in every event
    five observations after the middle; ``"varied"``, that spike in event 0 only, a spike and a
    deep dip in event 2 (one among the first observations) and a negative baseline in event 3.
    Returns float32 ``(times, flux, flux_err)``.
    """
    if spikes not in ("none", "one", "varied"):
        raise ValueError(f"spikes must be 'none', 'one' or 'varied', got {spikes!r}")
    g = torch.Generator().manual_seed(seed)
    times = torch.cumsum(torch.rand(batch, n, generator=g, dtype=torch.float64) * 0.4 + 0.02, 1)
    t0 = times[:, n // 2 : n // 2 + 1]
    bump = 1 + 3 / (1 + ((times - t0) / 2.0) ** 2)
    flux = bump + 0.05 * torch.randn(batch, n, generator=g, dtype=torch.float64)
    if spikes == "one":
        flux[:, n // 2 + 5] += 400.0
    elif spikes == "varied":
        flux[0, n // 2 + 5] += 400.0  # a spike well after the reference points
        if batch > 2:
            flux[2, 3] += 50.0  # a spike among the reference points
            flux[2, n - 10] -= 30.0  # and a deep dip
        if batch > 3:
            flux[3] -= 3.0  # a negative baseline (as difference fluxes can have)
    flux_err = 0.05 * torch.sqrt(bump)
    return times.float(), flux.float(), flux_err.float()


class ArrayStore:
    """Just enough of a LightCurveStore for feature extraction and the peer's fits: ``len()``
    and ``event(row)``, over a list of ``(times, flux, err)`` arrays."""

    def __init__(self, events):
        self.events = events

    def __len__(self):
        return len(self.events)

    def event(self, row):
        times, flux, err = self.events[row]
        return {"times": times, "flux": flux, "flux_err": err}


def spread_weights(net: torch.nn.Module, scale: float = 0.2, seed: int | None = None):
    """Add ``scale`` x standard normal noise to every parameter of ``net`` (in place), so that
    every part of an untrained network shows in its outputs; returns ``net`` in eval mode.
    ``seed`` seeds torch's global generator first (None: draw from its current state)."""
    if seed is not None:
        torch.manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn_like(p))
    return net.eval()


def spread_model(kind: str, sizes: dict, seed: int = 0, *, scale: float = 0.2,
                 curves: tuple[int, int] = (6, 120), data_seed: int = 1,
                 random_bump: bool = False, **overrides):
    """A model of ``kind`` (dropout 0 unless ``sizes`` or ``overrides`` say otherwise) with a
    normalisation fitted to ``bump_curves(*curves, data_seed, random_bump=...)``, built after
    seeding torch with ``seed``, its weights spread by ``scale`` (:func:`spread_weights`; 0
    leaves the initialisation); in eval mode."""
    times, flux, err = bump_curves(*curves, seed=data_seed, random_bump=random_bump)
    norm = Normalization.fit(times, flux, err, torch.ones_like(flux, dtype=torch.bool))
    torch.manual_seed(seed)
    net = build_model(ModelConfig(kind=kind, **{"dropout": 0.0, **sizes, **overrides}), norm)
    return spread_weights(net, scale) if scale else net.eval()


# The figure a saved HTML file draws (what the figure rebuild tests compare)

NEW_PLOT = re.compile(r'Plotly\.newPlot\(\s*"[0-9a-f-]+",\s*')


def figure_json(path: Path) -> tuple:
    """The data and layout a figure's HTML hands to ``Plotly.newPlot`` (binary arrays decoded)."""
    text = path.read_text(encoding="utf-8")
    start = NEW_PLOT.search(text).end()
    decoder = json.JSONDecoder()
    data, end = decoder.raw_decode(text, start)
    layout, _ = decoder.raw_decode(text, text.index("{", end))
    return decode_arrays(data), decode_arrays(layout)


def decode_arrays(value):
    if isinstance(value, dict):
        if set(value) >= {"dtype", "bdata"}:
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
            shape = value.get("shape")  # "rows, cols" for 2-D arrays
            return array.reshape([int(n) for n in str(shape).split(",")]) if shape else array
        return {k: decode_arrays(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_arrays(v) for v in value]
    return value
