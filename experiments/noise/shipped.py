"""The shipped noise model (fitted on the shipped subset's stars) judged on the development
folder's real baselines (last 605.25 days): the ogle preset with noise='fitted' (3,000 events,
stellar binaries, seed 13) beside the preset's own noise. Writes
outputs/experiments/noise/shipped.json; prints the cells within the real IQR."""

import json

from microlens import SimulationConfig, generate_dataset
from microlens.reports.noise_statistics import compare

FOLDER = "../shared/real/ogle_ews_2025"
out = {}
for noise in ("preset", "fitted"):
    cfg = SimulationConfig(n_per_class=1000, survey="ogle", topology="stellar", seed=13,
                           detectability=False, noise=noise)
    data = generate_dataset(cfg, f"data/noise_cf/ogle_{noise}_shipped", workers=2,
                            progress=False, overwrite=True)
    out[noise] = compare(FOLDER, data, window_days=605.25)
    n = sum(bool(x) for v in out[noise]["within_real_iqr"].values() for x in v)
    print(noise, n, "of 30", {k: v for k, v in out[noise]["within_real_iqr"].items()})
json.dump(out, open("outputs/experiments/noise/shipped.json", "w"), indent=1)


def cell(entry):
    return "-" if entry is None else f"{entry['median']:.3g}"


real = out["fitted"]["real"]
print("| statistic | baseline I | real (median [IQR]) | preset noise (median) | fitted noise (median) |")
print("|---|---|---|---|---|")
for name, entries in real["statistics"].items():
    for j, label in enumerate(real["bins"]):
        r = entries[j]
        marks = ["✓" if out[n]["within_real_iqr"][name][j] else "✗" for n in ("preset", "fitted")]
        print(f"| {name} | {label} | {r['median']:.3g} [{r['q25']:.3g}, {r['q75']:.3g}] | "
              f"{cell(out['preset']['simulated']['statistics'][name][j])} {marks[0]} | "
              f"{cell(out['fitted']['simulated']['statistics'][name][j])} {marks[1]} |")
