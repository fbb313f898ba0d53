"""The real benchmark table: every classifier x training data, cross-fitted by star.

Injection models: fold k's model scores the other fold's stars at the threshold chosen on the
baselines of its own data set's validation stars; the folds are merged.
Ogle-preset models: score every dev event (headline); the threshold for the 3 % figure is
chosen on one half of the stars (the seed-13 folds) and applied to the other, both ways, merged.
"""

import json
import os

from microlens.core.paths import write_json_atomic
from microlens.realdata.benchmark.crossfit import crossfit_report

E = "outputs/experiments/real_benchmark"
folds = json.load(open(f"{E}/folds.json"))
val = [json.load(open(f"{E}/val_stars_fold{k}.json")) for k in (0, 1)]


def load(name):
    p = f"{E}/{name}.json"
    return json.load(open(p)) if os.path.exists(p) else None


def pct(s):
    if s is None:
        return "not run"
    if s.get("applicable") is False:
        return "n/a"
    lo, hi = s["interval"]
    return f"{100 * s['share']:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}] ({s['count']}/{s['of']})"


def timing(t):
    if not t.get("timed", True):
        return "not timed (fixed fractions)"
    d = t["lead_days"]
    med = "none" if d["median"] is None else f"{d['median']:.1f} d [{d['q25']:.1f}, {d['q75']:.1f}]"
    return f"{med}; alerted before Tmax {pct(t['alerted_before_peak'])}; n_timed {t['n_timed']}"


rows, out = [], {}
for kind in ("tf", "ft"):
    for data in ("ogle", "inj"):
        if data == "inj":
            recs = [load(f"bench_{kind}_inj{k}") for k in (0, 1)]
            if None in recs:
                continue
            merged = crossfit_report(recs, [folds[1], folds[0]], val)
            how = "fold k model scores fold 1-k; threshold on its own val stars' baselines"
        else:
            rec = (
                (load("bench_ft_ogle_full") or load("bench_ft_ogle"))
                if kind == "ft"
                else load("bench_tf_ogle")
            )
            if rec is None:
                continue
            merged = crossfit_report([rec, rec], [folds[1], folds[0]], [folds[0], folds[1]])
            how = "one model scores all; threshold on one half of the stars, scored on the other (both ways)"
        out[f"{kind}_{data}"] = {
            k: merged[k]
            for k in (
                "metrics",
                "timing",
                "threshold_curve",
                "operating_point",
                "argmax_point",
                "crossfit",
                "counts",
                "run_dirs",
            )
            if k in merged
        }
        m = merged["metrics"]["model"]
        name = {"tf": "transformer", "ft": "features"}[kind]
        rows.append(
            (
                name,
                data,
                how,
                m,
                merged["timing"],
                merged["operating_point"],
                merged["argmax_point"],
                [f["threshold"] for f in merged["crossfit"]["folds"]],
                [pct(f["validation_baselines_lensing"]) for f in merged["crossfit"]["folds"]],
            )
        )
        if kind == "tf" and merged["metrics"]["peer"]:
            out[f"peer_{data}"] = {
                "metrics": merged["metrics"]["peer"],
                "peer": [r.get("peer") for r in (recs if data == "inj" else [rec])],
            }
            rows.append(
                ("peer", data, how, merged["metrics"]["peer"], None, None, None, None, None)
            )
write_json_atomic(f"{E}/table.json", out)
for name, data, how, m, t, op, am, thr, valfa in rows:
    print(f"## {name} trained on {data}  ({how})")
    for key in ("events_lensing", "events_binary", "baselines_lensing", "stream_false_alerts"):
        print(f"  {key:22s} {pct(m[key])}")
    if t is not None:
        print(f"  timing                 {timing(t)}")
    if op is not None:
        print(
            f"  at 3 % val baselines   thresholds {[f'{x:.4f}' for x in thr]} (val baselines called: {valfa})"
        )
        print(f"     events found        {pct(op['events_found'])}")
        print(f"     baselines called    {pct(op['baselines_lensing'])}")
        print(
            f"  argmax (top class)     events {pct(am['events_found'])}; baselines {pct(am['baselines_lensing'])}"
        )


# ---- the markdown table (docs/results.md) ------------------------------------------------
from microlens.core.metrics import wilson_interval  # noqa: E402


def pooled(runs):
    """Accuracy and detectable-binary recall over the test splits of ``runs`` (counts added)."""
    out = {}
    for key, part in (("accuracy", "physical"), ("recall", "observable")):
        hits = n = 0
        for r in runs:
            p = (
                f"{E}/{r[5:]}.json"
                if r.startswith("peer:")
                else f"outputs/runs/rb/{r}/test_labels.json"
            )
            if not os.path.exists(p):
                return None
            e = json.load(open(p))[part]["accuracy" if key == "accuracy" else "binary_recall"]
            hits += round(e["value"] * e["n"])
            n += e["n"]
        lo, hi = wilson_interval(hits, n)
        out[key] = f"{hits / n:.2f} [{lo:.2f}, {hi:.2f}] ({hits}/{n})"
    return out


def short(s):
    if s is None:
        return "not run"
    if s.get("applicable") is False:
        return "n/a"
    lo, hi = s["interval"]
    return f"{100 * s['share']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


print(
    "\n| classifier | trained on | events called lensing | events called binary | baselines called lensing | stream false alerts | lead before Tmax, median [quartiles] | events found at 3 % val. false alarms (baselines called there) | test accuracy | test recall, detectable binaries |"
)
print("|---|---|---|---|---|---|---|---|---|---|")
runs = {
    ("transformer", "ogle"): ["tf_ogle"],
    ("transformer", "inj"): ["tf_inj0", "tf_inj1"],
    ("features", "ogle"): [
        "ft_ogle_full" if os.path.exists(f"{E}/bench_ft_ogle_full.json") else "ft_ogle"
    ],
    ("features", "inj"): ["ft_inj0", "ft_inj1"],
    ("peer", "ogle"): ["peer:peer_test_ogle_synth"],
    ("peer", "inj"): ["peer:peer_test_inj_fold0", "peer:peer_test_inj_fold1"],
}
for name, data, how, m, t, op, am, thr, valfa in rows:
    lead = (
        "n/a"
        if t is None
        else (
            "not timed"
            if not t.get("timed", True)
            else f"{t['lead_days']['median']:.1f} d [{t['lead_days']['q25']:.1f}, {t['lead_days']['q75']:.1f}] ({t['n_alerted']} of {t['n_timed']} alerted)"
        )
    )
    found = (
        "n/a (a class, no score)"
        if op is None
        else f"{short(op['events_found'])} ({short(op['baselines_lensing'])})"
    )
    test = pooled(runs.get((name, data), [])) if (name, data) in runs else None
    label = {"ogle": "ogle preset (synthetic)", "inj": "injection, cross-fitted"}[data]
    print(
        f"| {name} | {label} | {short(m['events_lensing'])} | {short(m['events_binary'])} | "
        f"{short(m['baselines_lensing'])} | {short(m['stream_false_alerts'])} | {lead} | {found} | "
        f"{test['accuracy'] if test else 'not measured'} | {test['recall'] if test else 'not measured'} |"
    )
