"""(v) injection into each fold's real baselines with simulated variables in class 0: half of the
no-event windows carry a variable star of the survey's contaminant mix; otherwise as gen_inj.py."""
import sys
import time

from microlens import SimulationConfig, generate_dataset

k = int(sys.argv[1])
t = time.time()
cfg = SimulationConfig(n_per_class=1000, survey="ogle", topology="stellar", seed=13,
                       detectability=True, baselines=f"data/rb/folds/fold{k}",
                       injected_variables=0.5, contaminants="survey")
print(generate_dataset(cfg, f"data/rb/inj_var_fold{k}", workers=2, progress=False))
print("seconds", time.time() - t)
