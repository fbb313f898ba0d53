"""Helpers shared by the tests: synthetic light curves, a store of arrays, spread weights,
events written in OGLE's EWS layout, the figure a saved HTML file draws.

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

from microlens.models.config import ModelConfig
from microlens.models.inputs import Normalization
from microlens.models.registry import build_model


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


# Events in OGLE's EWS layout (what microlens.photometry.ews reads)

EWS_FIT_KEYS = ("tmax", "tau", "umin", "i0", "amax", "i_bl", "fbl", "dmag")
"""Keys of :func:`write_ews_event`'s ``fit``; the first four are required."""
EWS_FIT_ROWS = (("Tmax", "tmax", 0.1), ("tau", "tau", 1.0), ("umin", "umin", 0.01),
                ("Amax", "amax", 0.1), ("Dmag", "dmag", 0.01), ("fbl", "fbl", 0.0),
                ("I_bl", "i_bl", 0.01), ("I0", "i0", 0.01))
"""The params file's fit rows: (row, ``fit`` key, error). fbl's error 0 marks it fixed."""


def pspl_magnification(t, tmax: float, tau: float, umin: float) -> np.ndarray:
    """Paczynski's point-lens magnification ``(u^2 + 2) / (u sqrt(u^2 + 4))`` at times ``t``,
    with ``u^2 = umin^2 + ((t - tmax) / tau)^2``."""
    u2 = umin**2 + ((np.asarray(t, dtype=float) - tmax) / tau) ** 2
    return (u2 + 2) / np.sqrt(u2 * (u2 + 4))


def sexagesimal(value: float, *, hours: bool) -> str:
    """Degrees as OGLE writes them: ``hh:mm:ss.ss`` (``hours``, a right ascension) or
    ``[-]dd:mm:ss.ss`` (a declination), rounded to a hundredth of a second."""
    sign = "-" if value < 0 else ""
    centi = round(abs(value) / (15.0 if hours else 1.0) * 360000)  # hundredths of a second
    a, rest = divmod(centi, 360000)
    b, c = divmod(rest, 6000)
    return f"{sign}{a:02d}:{b:02d}:{c / 100:05.2f}"


def write_ews_event(root: Path, name: str, hjd, mag, err, *, ra: str | float,
                    dec: str | float, fit: dict | None = None, seeing: float = 5.0,
                    sky: float = 300.0, star_no: int | None = None) -> None:
    """Write one event in the EWS layout: ``<root>/photometry/<name>_phot.dat`` and, with a
    ``fit``, ``<root>/params/<name>_params.dat``.

    Parameters
    ----------
    root : Path
        The folder (created as needed).
    name : str
        The event, e.g. ``"blg-0001"``; the params file's title is ``OGLE-2025-<NAME>``.
    hjd, mag, err : array_like
        The photometry's columns HJD, I magnitude and its error (``err`` may be one number),
        written with 5, 3 and 3 decimals beside a constant ``seeing`` and ``sky``.
    ra, dec : str or float
        J2000 coordinates for the params file: sexagesimal text as written, or degrees
        (:func:`sexagesimal`).
    fit : dict or None
        OGLE's fit, :data:`EWS_FIT_KEYS`: ``tmax``, ``tau``, ``umin``, ``i0`` required;
        ``amax`` (default the peak of :func:`pspl_magnification`), ``i_bl`` (``i0``), ``fbl``
        (1, written as fixed) and ``dmag`` (1) optional; values written with 3 decimals.
        None: no params file.
    star_no : int or None
        The params file's StarNo; None takes the number the name ends in.
    """
    hjd = np.asarray(hjd, dtype=float)
    err = np.broadcast_to(np.asarray(err, dtype=float), hjd.shape)
    (root / "photometry").mkdir(parents=True, exist_ok=True)
    lines = [f"{t:.5f} {m:.3f} {e:.3f} {seeing:.2f} {sky:.1f}\n"
             for t, m, e in zip(hjd, mag, err, strict=True)]
    (root / "photometry" / f"{name}_phot.dat").write_text("".join(lines))
    if fit is None:
        return
    unknown = sorted(set(fit) - set(EWS_FIT_KEYS))
    missing = [k for k in EWS_FIT_KEYS[:4] if k not in fit]
    if unknown or missing:
        raise ValueError(f"write_ews_event({name!r}): fit has unknown keys {unknown} and lacks "
                         f"{missing}; valid keys: {', '.join(EWS_FIT_KEYS)} (first four required)")
    values = {"i_bl": fit["i0"], "fbl": 1.0, "dmag": 1.0, **fit}
    if "amax" not in fit:
        values["amax"] = float(pspl_magnification(fit["tmax"], fit["tmax"], fit["tau"],
                                                  fit["umin"]))
    if star_no is None:
        digits = re.search(r"\d+$", name)
        star_no = int(digits.group()) if digits else None
    ra_text = ra if isinstance(ra, str) else sexagesimal(ra, hours=True)
    dec_text = dec if isinstance(dec, str) else sexagesimal(dec, hours=False)
    header = [f"OGLE-2025-{name.upper()}", "", "Field          BLG500.01",
              f"StarNo         {'' if star_no is None else star_no}",
              f"RA(J2000.0)    {ra_text}", f"Dec(J2000.0)   {dec_text}", "Remarks", ""]
    rows = [f"  {row:<6s} {values[key]:14.3f} {error:9.3f}" for row, key, error in EWS_FIT_ROWS]
    (root / "params").mkdir(parents=True, exist_ok=True)
    (root / "params" / f"{name}_params.dat").write_text("\n".join(header + rows) + "\n")


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


def assert_same_arrays(made: Path, other: Path) -> None:
    """Two data sets hold the same ``.npy`` files, byte for byte (the parameters and the
    fluxes among them)."""
    files = sorted(p.name for p in made.glob("*.npy"))
    assert "params.npy" in files and "flux.npy" in files
    assert [f for f in files if (made / f).read_bytes() != (other / f).read_bytes()] == []
