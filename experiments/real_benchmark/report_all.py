"""Every model kind on the ogle preset and on the injection sets: the real benchmark (whole dev
folder, trailing 605.25-day windows, cross-fitted by star, thresholds on validation stars) and
the simulated test split; the peer tuned on each; the fitted-noise arm on the stars the noise
model never saw. Prints markdown tables; missing runs are listed as not run."""

import json
import os
import re

from microlens.realdata.benchmark import share
from microlens.realdata.benchmark.crossfit import crossfit_report, restrict
from microlens.realdata.benchmark.summary import combine_reports

E = "outputs/experiments/real_benchmark"
R = "outputs/runs/rb"
folds = json.load(open(f"{E}/folds.json"))
val = [json.load(open(f"{E}/val_stars_fold{k}.json")) for k in (0, 1)]
KINDS = [
    "transformer",
    "transformer8",
    "cnn",
    "gru",
    "rnn_vae",
    "deepsets",
    "set_transformer",
    "masked",
    "features",
]
walls = {}
for line in open(f"{E}/allkinds.log"):
    m = re.match(r"\S+ done (\S+) rc=0 wall=(\d+)s", line)
    if m:
        walls[m.group(1)] = int(m.group(2))


def load(path):
    return json.load(open(path)) if os.path.exists(path) else None


def pct(s, counts=False):
    if s is None:
        return "-"
    if s.get("applicable") is False:
        return "n/a"
    if s.get("share") is None:
        return "-"
    lo, hi = s["interval"]
    out = f"{100 * s['share']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
    return out + (f" ({s['count']}/{s['of']})" if counts else "")


def bench_records(kind, arm):
    if arm == "ogle":
        path = (
            f"{E}/all/bench_features_ogle.json"
            if kind == "features"
            else f"{E}/all/bench_{kind}_ogle.json"
        )
        rec = load(path)
        return None if rec is None else [rec, rec]
    if kind == "features":
        paths = [f"{E}/r2_ft_inj{k}_win.json" for k in (0, 1)]
    else:
        paths = [f"{E}/all/bench_{kind}_inj{k}.json" for k in (0, 1)]
    recs = [load(p) for p in paths]
    return None if any(r is None for r in recs) else recs


def test_runs(kind, arm):
    if kind == "features":
        names = ["ft_ogle_full"] if arm == "ogle" else ["ft_inj0", "ft_inj1"]
        return [f"{R}/{n}" for n in names]
    names = [f"{kind}_ogle"] if arm == "ogle" else [f"{kind}_inj{k}" for k in (0, 1)]
    return [f"{R}/all/{n}" for n in names]


def pooled(records, *path):
    count = of = 0
    for r in records:
        entry = r
        for p in path:
            entry = entry[p]
        if "count" in entry:
            count += entry["count"]
            of += entry["n"]
        else:  # {value, n}
            count += round(entry["value"] * entry["n"])
            of += entry["n"]
    return share(count, of)


def training_seconds(kind, arm):
    if kind == "features":
        return None
    names = [f"{kind}_ogle"] if arm == "ogle" else [f"{kind}_inj{k}" for k in (0, 1)]
    secs = [walls.get(f"train_{n}") for n in names]
    if any(s is None for s in secs):
        return None
    return max(s + walls.get(f"pre_{n}", 0) for s, n in zip(secs, names, strict=True))


ARMS = [("ogle", "ogle preset"), ("inj", "injection")]
print(
    "| kind | trained on | events called lensing | events called binary | baselines called "
    "lensing | stream false alerts | events found at 3 % (val. stars) | baselines called "
    "at it | median alert lead [d] | training [s] |"
)
print("|---|---|---|---|---|---|---|---|---|---|")
sim_rows = []
for kind in KINDS:
    for arm, label in ARMS:
        if kind == "transformer8" and arm == "ogle":
            continue  # the 8-epoch transformer: injection only
        recs = bench_records(kind, arm)
        tests = [load(f"{p}/test_labels.json") for p in test_runs(kind, arm)]
        secs = training_seconds(kind, arm)
        name = "transformer (8 epochs)" if kind == "transformer8" else kind
        if recs is None:
            print(f"| {name} | {label} | not run | | | | | | | |")
        else:
            merged = crossfit_report(recs, [folds[1], folds[0]], val)
            m, op, t = merged["metrics"]["model"], merged["operating_point"], merged["timing"]
            if not t.get("timed", True):
                lead = "n/a (fractions)"
            else:
                d = t.get("lead_days", {})
                lead = f"{d['median']:.1f}" if d.get("median") is not None else "-"
            print(
                f"| {name} | {label} | {pct(m['events_lensing'])} | {pct(m['events_binary'])} | "
                f"{pct(m['baselines_lensing'])} | {pct(m['stream_false_alerts'])} | "
                f"**{pct(op['events_found'])}** | {pct(op['baselines_lensing'])} | {lead} | "
                f"{secs if secs is not None else '-'} |"
            )
        if all(x is not None and "pspl_called_binary" in x for x in tests):
            sim_rows.append(
                (
                    name,
                    label,
                    pooled(tests, "physical", "accuracy"),
                    pooled(tests, "observable", "binary_recall"),
                    pooled(tests, "pspl_called_binary"),
                    pooled(tests, "constant_called_lensing"),
                    sum(x["n"] for x in tests),
                )
            )
        else:
            sim_rows.append((name, label, None, None, None, None, 0))
print()
print(
    "| kind | trained on | test events | accuracy (physical labels) | detectable-binary recall "
    "| PSPL called binary | class 0 called lensing |"
)
print("|---|---|---|---|---|---|---|")
for name, label, acc, rec, pb, cl, n in sim_rows:
    if acc is None:
        print(f"| {name} | {label} | not run | | | | |")
    else:
        print(
            f"| {name} | {label} | {n} | {pct(acc)} | {pct(rec, True)} | {pct(pb, True)} | "
            f"{pct(cl, True)} |"
        )

print()
print("| peer tuned on | events called lensing | events called binary | baselines called lensing |")
print("|---|---|---|---|")
ogle_peer = load(f"{E}/r2_peer_ogle_win.json")
if ogle_peer:
    m = ogle_peer["metrics"]["peer"]
    print(
        f"| ogle preset | {pct(m['events_lensing'])} | {pct(m['events_binary'])} | "
        f"{pct(m['baselines_lensing'])} |"
    )
inj = [load(f"{E}/r2_peer_inj{k}_win.json") for k in (0, 1)]
if all(inj):
    merged = combine_reports([restrict(inj[0], folds[1]), restrict(inj[1], folds[0])])
    m = merged["metrics"]["peer"]
    print(
        f"| injection (cross-fitted) | {pct(m['events_lensing'])} | {pct(m['events_binary'])} "
        f"| {pct(m['baselines_lensing'])} |"
    )

# The fitted-noise arm against the preset's noise, on the stars the noise model never saw
shipped_free = set(json.load(open(f"{E}/stars_not_shipped.json")))
print()
print(
    "| kind | ogle preset with | events called lensing | events called binary | "
    "baselines called lensing | stream false alerts | events found at 3 % (val. stars) | "
    "baselines called at it | test accuracy | detectable-binary recall | PSPL called binary |"
)
print("|---|---|---|---|---|---|---|---|---|---|---|")
scored = [set(folds[1]) & shipped_free, set(folds[0]) & shipped_free]
valid = [set(v) & shipped_free for v in val]
ARM_RUNS = [
    ("features", "preset noise", f"{E}/all/bench_features_ogle.json", f"{R}/ft_ogle_full"),
    (
        "features",
        "fitted noise",
        f"{E}/all/bench_features_oglefit.json",
        f"{R}/all/features_oglefit",
    ),
    (
        "transformer",
        "preset noise",
        f"{E}/all/bench_transformer_ogle.json",
        f"{R}/all/transformer_ogle",
    ),
    (
        "transformer",
        "fitted noise",
        f"{E}/all/bench_transformer_oglefit.json",
        f"{R}/all/transformer_oglefit",
    ),
]
for kind, label, path, run in ARM_RUNS:
    rec = load(path)
    test = load(f"{run}/test_labels.json")
    if rec is None:
        print(f"| {kind} | {label} | not run | | | | | | | | |")
        continue
    merged = crossfit_report([rec, rec], scored, valid)
    m, op = merged["metrics"]["model"], merged["operating_point"]
    if test is None or "pspl_called_binary" not in test:
        t = "| | | |"
    else:
        a = test["physical"]["accuracy"]
        t = (
            f"| {100 * a['value']:.1f} [{100 * a['low']:.1f}, {100 * a['high']:.1f}] "
            f"| {pct(pooled([test], 'observable', 'binary_recall'), True)} "
            f"| {pct(pooled([test], 'pspl_called_binary'), True)} |"
        )
    print(
        f"| {kind} | {label} | {pct(m['events_lensing'])} | {pct(m['events_binary'])} | "
        f"{pct(m['baselines_lensing'])} | {pct(m['stream_false_alerts'])} | "
        f"**{pct(op['events_found'])}** | {pct(op['baselines_lensing'])} {t}"
    )
oglefit_peer = load(f"{E}/all/bench_oglefit_peer.json")
for label, rec in (("preset noise", ogle_peer), ("fitted noise", oglefit_peer)):
    if rec is None:
        print(f"| peer | {label} | not run | | | | | | | | |")
        continue
    m = combine_reports([restrict(rec, shipped_free)])["metrics"]["peer"]
    print(
        f"| peer | {label} | {pct(m['events_lensing'])} | {pct(m['events_binary'])} | "
        f"{pct(m['baselines_lensing'])} | n/a | n/a | | | | |"
    )
