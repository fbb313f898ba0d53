"""Round 2 of the real benchmark: injection-trained models, cross-fitted by star, answers in
float64 ranked by log-odds, whole segments against a trailing 605.25-day window."""

import json
import os

from microlens.realdata.benchmark.crossfit import crossfit_report

E = "outputs/experiments/real_benchmark"
folds = json.load(open(f"{E}/folds.json"))
val = [json.load(open(f"{E}/val_stars_fold{k}.json")) for k in (0, 1)]


def pct(s):
    if s is None:
        return "-"
    if s.get("applicable") is False:
        return "n/a"
    lo, hi = s["interval"]
    return f"{100 * s['share']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] ({s['count']}/{s['of']})"


for name in ("r2_tf_inj", "r2_tf_inj_win", "r2_ft_inj_win", "bench_tf_inj", "bench_ft_inj"):
    paths = [f"{E}/{name.replace('_inj', f'_inj{k}')}.json" for k in (0, 1)]
    if not all(os.path.exists(p) for p in paths):
        print(f"## {name}: not run")
        continue
    records = [json.load(open(p)) for p in paths]
    merged = crossfit_report(records, [folds[1], folds[0]], val)
    m = merged["metrics"]["model"]
    op = merged["operating_point"]
    t = merged["timing"]
    print(f"## {name}  window={records[0]['rules'].get('window_days')}")
    for key in ("events_lensing", "events_binary", "baselines_lensing", "stream_false_alerts"):
        print(f"  {key:22s} {pct(m[key])}")
    print(
        f"  at 3 % (val stars)     events {pct(op['events_found'])}; baselines "
        f"{pct(op['baselines_lensing'])}; log-odds thresholds "
        f"{[round(x, 2) for x in op.get('log_odds_threshold', [])]}"
    )
    if t.get("timed", True) and t.get("lead_days", {}).get("median") is not None:
        d = t["lead_days"]
        print(
            f"  timing                 median {d['median']:.1f} d [{d['q25']:.1f}, {d['q75']:.1f}]"
            f"; alerted before Tmax {pct(t['alerted_before_peak'])}"
        )
