"""Declarative registry of every simulation preset, in one place.

Three independent families compose freely:

* **binary topology** sets the priors of the binary-lens mass ratio ``q`` and separation ``s``
  (both log-uniform, ``s`` in units of the total-mass Einstein radius);
* **cadence** sets the fraction of survey epochs that are missing;
* **error** sets the photometric error, in magnitudes, at the reference baseline magnitude.

Every name is looked up through :func:`get_topology`, :func:`get_cadence` and :func:`get_error`,
which raise a ``ValueError`` naming the bad value and the valid choices.
"""

from __future__ import annotations

from dataclasses import dataclass

CLASS_NAMES: tuple[str, ...] = ("flat", "pspl", "binary")
"""Class labels: 0 no event (flat), 1 single lens (PSPL), 2 binary lens."""


@dataclass(frozen=True)
class BinaryTopology:
    """Log-uniform priors of the binary-lens mass ratio and separation.

    Attributes
    ----------
    name : str
        Registry key.
    q_range : tuple of float
        ``(low, high)`` of the mass ratio ``q = m2 / m1`` (dimensionless).
    s_range : tuple of float
        ``(low, high)`` of the projected separation ``s`` in Einstein radii.
    description : str
        One line for tables and figure legends.
    """

    name: str
    q_range: tuple[float, float]
    s_range: tuple[float, float]
    description: str


@dataclass(frozen=True)
class CadencePreset:
    """Fraction of the nominal survey epochs that are missing (weather, gaps, downtime)."""

    name: str
    missing_fraction: float
    description: str


@dataclass(frozen=True)
class ErrorPreset:
    """Photometric error (magnitudes) at the reference baseline magnitude."""

    name: str
    baseline_mag_error: float
    description: str


TOPOLOGIES: dict[str, BinaryTopology] = {
    t.name: t
    for t in (
        BinaryTopology("distinct", (1e-4, 1e-1), (0.3, 3.0), "clearly binary companions"),
        BinaryTopology("planetary", (1e-5, 1e-3), (0.5, 2.0), "planetary companions"),
        BinaryTopology("stellar", (0.1, 1.0), (0.5, 2.5), "stellar binaries"),
        BinaryTopology("baseline", (1e-5, 1.0), (0.3, 5.0), "the full range (thesis baseline)"),
    )
}

CADENCES: dict[str, CadencePreset] = {
    c.name: c
    for c in (
        CadencePreset("cadence_05", 0.05, "5 % of epochs missing"),
        CadencePreset("cadence_15", 0.15, "15 % of epochs missing"),
        CadencePreset("cadence_30", 0.30, "30 % of epochs missing"),
        CadencePreset("cadence_50", 0.50, "50 % of epochs missing"),
    )
}

ERRORS: dict[str, ErrorPreset] = {
    e.name: e
    for e in (
        ErrorPreset("error_003", 0.03, "0.03 mag at baseline"),
        ErrorPreset("error_005", 0.05, "0.05 mag at baseline"),
        ErrorPreset("error_010", 0.10, "0.10 mag at baseline"),
        ErrorPreset("error_015", 0.15, "0.15 mag at baseline"),
    )
}


def _lookup(registry: dict, kind: str, name: str):
    try:
        return registry[name]
    except (KeyError, TypeError):
        valid = ", ".join(registry)
        raise ValueError(f"unknown {kind} preset {name!r}; valid choices: {valid}") from None


def get_topology(name: str) -> BinaryTopology:
    """Return the binary topology preset ``name`` (ValueError with the valid names otherwise)."""
    return _lookup(TOPOLOGIES, "topology", name)


def get_cadence(name: str) -> CadencePreset:
    """Return the cadence preset ``name`` (ValueError with the valid names otherwise)."""
    return _lookup(CADENCES, "cadence", name)


def get_error(name: str) -> ErrorPreset:
    """Return the photometric-error preset ``name`` (ValueError with the valid names otherwise)."""
    return _lookup(ERRORS, "error", name)
