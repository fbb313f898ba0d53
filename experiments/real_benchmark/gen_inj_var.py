"""(v) injection into each fold's real baselines with simulated variables in class 0: a share of
the no-event windows (default 0.5) carries a variable star of the survey's contaminant mix;
otherwise as gen_inj.py. Arguments: fold [share]; share 0.5 writes inj_var_fold<k>, another
share inj_var<share*100>_fold<k>."""
import sys
import time

from microlens import SimulationConfig, generate_dataset

k = int(sys.argv[1])
share = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
name = "inj_var" if share == 0.5 else f"inj_var{round(share * 100)}"
t = time.time()
cfg = SimulationConfig(n_per_class=1000, survey="ogle", topology="stellar", seed=13,
                       detectability=True, baselines=f"data/rb/folds/fold{k}",
                       injected_variables=share, contaminants="survey")
print(generate_dataset(cfg, f"data/rb/{name}_fold{k}", workers=2, progress=False))
print("seconds", time.time() - t)
