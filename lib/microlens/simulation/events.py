"""The events of any data set: simulated curves, or simulated events injected into windows of
real baselines (``SimulationConfig.baselines`` set, :mod:`microlens.simulation.injection`).

:func:`simulate_event` and :func:`simulate_range` are what generation and the notebooks call for
every config; :mod:`microlens.simulation.simulate` makes the synthetic curves and the building
blocks (magnifications, labels, seeds) that injection shares, so it never calls injection itself.
"""

from __future__ import annotations

import numpy as np

from microlens.simulation.injection import inject_event, inject_range
from microlens.simulation.simulate import SimulatedEvent, SimulationConfig
from microlens.simulation.simulate import simulate_event as simulated_event
from microlens.simulation.simulate import simulate_range as simulated_range

__all__ = ["simulate_event", "simulate_range"]


def simulate_event(cfg: SimulationConfig, index: int) -> SimulatedEvent:
    """Event ``index`` of the data set ``cfg`` describes (its class is ``index % 3``).

    Synthetic configs go to :func:`microlens.simulation.simulate.simulate_event`; configs with
    ``baselines`` to :func:`microlens.simulation.injection.inject_event`. Same seed and index, same
    event.
    """
    if cfg.baselines is not None:
        return inject_event(cfg, index)
    return simulated_event(cfg, index)


def simulate_range(cfg: SimulationConfig, start: int, stop: int) -> dict[str, np.ndarray]:
    """Events ``start .. stop-1`` as concatenated arrays
    (:func:`microlens.simulation.simulate.simulate_range`;
    with ``baselines`` set, :func:`microlens.simulation.injection.inject_range`, which adds
    ``origin``)."""
    if cfg.baselines is not None:
        return inject_range(cfg, start, stop)
    return simulated_range(cfg, start, stop)
