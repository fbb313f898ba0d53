"""Star files: for the model trained on injection fold k, the other fold's stars (scored) and
the validation stars of its own data set (threshold)."""

import json

from microlens import open_dataset
from microlens.simulation.injection import stars_of_split

E = "outputs/experiments/real_benchmark"
folds = json.load(open(f"{E}/folds.json"))
for k in (0, 1):
    val = sorted(stars_of_split(open_dataset(f"data/rb/inj_fold{k}"), "val"))
    test = sorted(stars_of_split(open_dataset(f"data/rb/inj_fold{k}"), "test"))
    assert set(val) <= set(folds[k]) and not set(val) & set(folds[1 - k])
    json.dump(val, open(f"{E}/val_stars_fold{k}.json", "w"))
    json.dump(sorted(set(folds[1 - k]) | set(val)), open(f"{E}/bench_stars_fold{k}.json", "w"))
    print(k, "val stars", len(val), "test stars", len(test), "scored stars", len(folds[1 - k]))
