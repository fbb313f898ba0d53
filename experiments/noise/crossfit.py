"""The noise model cross-fitted by star: fitted on one fold's real baselines, judged on the other's.

For each fold k of the real benchmark's two star folds: fit the noise model on fold k's stars
(``python -m microlens.simulation.noise_model --stars``; the scatter from the last 605.25 days of
each baseline, ``NOISE_RECENT_DAYS=0``: all from the whole baseline), simulate the ``ogle`` preset
with it (``noise="fitted"``, ``noise_model=...``; 3,000 events, stellar binaries, seed 13), and
compare the residual statistics of its constant stars with the real baselines of fold 1-k's stars
(last 605.25 days), which the model never saw. Writes ``outputs/experiments/noise/crossfit.json``
and prints a markdown table of both comparisons. ``NOISE_PER_CLASS`` (default 1,000) sets the
simulated set's size per class (``NOISE_PER_CLASS=3000 NOISE_TAG=_3000``: ``crossfit_3000.json``,
the simulated medians known better).

    python experiments/noise/crossfit.py [FOLDER]
"""

import json
import os
import sys

from microlens import SimulationConfig, generate_dataset
from microlens.reports.noise_statistics import compare
from microlens.simulation.noise_model import fit_noise_model
from microlens.simulation.residual_statistics import STATISTICS

FOLDER = sys.argv[1] if len(sys.argv) > 1 else "../shared/real/ogle_ews_2025"
E = "outputs/experiments/noise"
FOLDS = json.load(open("outputs/experiments/real_benchmark/folds.json"))
RECENT = float(os.environ.get("NOISE_RECENT_DAYS", 605.25)) or None  # 0: whole baselines
TAG = os.environ.get("NOISE_TAG", "")
PER_CLASS = int(os.environ.get("NOISE_PER_CLASS", 1000))

results = {}
for k in (0, 1):
    model_path = f"{E}/model{TAG}_fold{k}.json"
    if not os.path.exists(model_path):
        fit_noise_model(FOLDER, FOLDS[k], recent_days=RECENT).save(model_path)
    data = f"data/noise_cf/ogle_fitted{TAG}_fold{k}"
    cfg = SimulationConfig(n_per_class=PER_CLASS, survey="ogle", topology="stellar", seed=13,
                           detectability=False, noise="fitted", noise_model=model_path)
    generate_dataset(cfg, data, workers=2, progress=False, overwrite=True)  # the model may be new
    results[f"fold{k}"] = compare(FOLDER, data, stars=FOLDS[1 - k], window_days=605.25)
    json.dump(results, open(f"{E}/crossfit{TAG}.json", "w"), indent=1)


def cell(entry):
    return "-" if entry is None else f"{entry['median']:.3g} [{entry['q25']:.3g}, {entry['q75']:.3g}]"


print("| statistic | baseline I | real, fold 1 stars | simulated, fitted on fold 0 | real, fold 0 "
      "stars | simulated, fitted on fold 1 |")
print("|---|---|---|---|---|---|")
a, b = results["fold0"], results["fold1"]
for name in STATISTICS:
    for j, label in enumerate(a["real"]["bins"]):
        marks = ["✓" if r["within_real_iqr"][name][j] else "✗" for r in (a, b)]
        print(f"| {name} | {label} | {cell(a['real']['statistics'][name][j])} | "
              f"{cell(a['simulated']['statistics'][name][j])} {marks[0]} | "
              f"{cell(b['real']['statistics'][name][j])} | "
              f"{cell(b['simulated']['statistics'][name][j])} {marks[1]} |")
for key, r in results.items():
    n = sum(bool(x) for v in r["within_real_iqr"].values() for x in v)
    print(f"{key}: {n} of {sum(len(v) for v in r['within_real_iqr'].values())} within the real IQR;"
          f" curves per bin real {r['real']['n_curves']}, simulated {r['simulated']['n_curves']}")
