"""(a) the ogle preset synthetic set: stellar topology, seed 13, 3,000 events."""

import time

from microlens import SimulationConfig, generate_dataset

t = time.time()
cfg = SimulationConfig(
    n_per_class=1000, survey="ogle", topology="stellar", seed=13, detectability=True
)
print(generate_dataset(cfg, "data/rb/ogle_synth", workers=2, progress=False))
print("seconds", time.time() - t)
