"""(b) injection into each fold's real baselines: survey ogle, stellar topology, seed 13."""

import sys
import time

from microlens import SimulationConfig, generate_dataset

k = int(sys.argv[1])
t = time.time()
cfg = SimulationConfig(
    n_per_class=1000,
    survey="ogle",
    topology="stellar",
    seed=13,
    detectability=True,
    baselines=f"data/rb/folds/fold{k}",
)
print(generate_dataset(cfg, f"data/rb/inj_fold{k}", workers=2, progress=False))
print("seconds", time.time() - t)
