"""microlens: simulate, train and study real-time classifiers of gravitational microlensing events.

The public entry points of the simulation layer::

    from microlens import SimulationConfig, generate_dataset, open_dataset
    cfg = SimulationConfig(n_per_class=1000, topology="planetary", seed=1)
    store = open_dataset(generate_dataset(cfg, "data/planetary"))
"""

from microlens.core.paths import PROJECT_ROOT, resolve_path
from microlens.data.store import (
    DatasetError,
    LightCurveDataset,
    LightCurveStore,
    collate_light_curves,
    generate_dataset,
    open_dataset,
)
from microlens.simulation.events import simulate_event
from microlens.simulation.presets import CADENCES, CLASS_NAMES, ERRORS, TOPOLOGIES
from microlens.simulation.simulate import SimulationConfig

__version__ = "0.1.0"

__all__ = [
    "CADENCES", "CLASS_NAMES", "ERRORS", "PROJECT_ROOT", "TOPOLOGIES", "DatasetError",
    "LightCurveDataset", "LightCurveStore", "SimulationConfig", "collate_light_curves",
    "generate_dataset", "open_dataset", "resolve_path", "simulate_event",
]  # fmt: skip
