"""(r) the realistic ogle preset: the noise of real stars (fitted on the shipped subset), physical
single lenses (finite source, parallax), the survey contaminants; stellar topology, seed 13,
3,000 events, as the ogle preset set."""

import time

from microlens import SimulationConfig, generate_dataset

t = time.time()
cfg = SimulationConfig(
    n_per_class=1000,
    survey="ogle",
    topology="stellar",
    seed=13,
    detectability=True,
    noise="fitted",
    single_lens="physical",
    contaminants="survey",
)
print(generate_dataset(cfg, "data/rb/ogle_real", workers=2, progress=False))
print("seconds", time.time() - t)
