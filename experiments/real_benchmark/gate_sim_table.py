"""The simulated checks of gate_sim_checks.py as a markdown table (injection folds pooled)."""

import json

from microlens.core.metrics import wilson_interval

E = "outputs/experiments/real_benchmark"
checks = json.load(open(f"{E}/gate/sim_checks.json"))
MODELS = [
    ("features", "injection", ["features_inj0", "features_inj1"]),
    ("features", "injection + variables", ["features_var0", "features_var1"]),
    ("features", "injection + variables (0.8)", ["features_var800", "features_var801"]),
    ("features", "ogle preset", ["features"]),
    ("features", "realistic ogle", ["features_real"]),
    ("transformer", "ogle preset", ["transformer"]),
    ("transformer", "realistic ogle", ["transformer_real"]),
]


def pooled(entries, *path):
    k = n = 0
    for e in entries:
        for p in path:
            e = e[p]
        k += e["count"]
        n += e["of"]
    lo, hi = wilson_interval(k, n)
    return f"{100 * k / n:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] ({k}/{n})" if n else "-"


for kind, arm, names in MODELS:
    for gate in ("none", "binary", "binary+event"):
        entries = [checks.get(f"{name}/{gate}") for name in names]
        if any(e is None or "by_set" not in e for e in entries):
            continue
        print(
            f"| {kind} ({arm}) | {gate} | {pooled(entries, 'detectable_binary_recall')} | "
            f"{pooled(entries, 'pspl_called_binary')} | "
            f"{pooled(entries, 'baselines_called_lensing')} | "
            f"{pooled(entries, 'by_set', 'ogle_real_contaminants', 'called_lensing')} | "
            f"{pooled(entries, 'by_set', 'ogle_contaminants', 'called_lensing')} |"
        )
