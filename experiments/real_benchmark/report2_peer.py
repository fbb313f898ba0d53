import json

from microlens.realdata.benchmark.crossfit import restrict
from microlens.realdata.benchmark.summary import combine_reports

E = "outputs/experiments/real_benchmark"
folds = json.load(open(f"{E}/folds.json"))


def pct(s):
    if s.get("applicable") is False:
        return "n/a"
    lo, hi = s["interval"]
    return f"{100 * s['share']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] ({s['count']}/{s['of']})"


recs = [json.load(open(f"{E}/r2_peer_inj{k}_win.json")) for k in (0, 1)]
merged = combine_reports([restrict(recs[0], folds[1]), restrict(recs[1], folds[0])])
print("## peer tuned on injection, window 605.25, cross-fitted")
for k, v in merged["metrics"]["peer"].items():
    print(f"  {k:22s} {pct(v)}")
ogle = json.load(open(f"{E}/r2_peer_ogle_win.json"))
print("## peer tuned on ogle preset, window 605.25, all stars")
for k, v in ogle["metrics"]["peer"].items():
    print(f"  {k:22s} {pct(v)}")
