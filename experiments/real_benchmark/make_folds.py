"""Two folds of the dev folder's stars (seed 13) and an EWS-layout folder of links per fold."""

import json

from microlens.realdata.benchmark.crossfit import fold_folder, star_folds

SRC = "../shared/real/ogle_ews_2025"
folds = star_folds(SRC, seed=13, n_folds=2)
for k, stars in enumerate(folds):
    d = fold_folder(
        SRC, stars, f"data/rb/folds/fold{k}", record={"seed": 13, "fold": k, "n_folds": 2}
    )
    print(k, len(stars), len(json.load(open(d / "fold.json"))["events"]))
json.dump(folds, open("outputs/experiments/real_benchmark/folds.json", "w"))
