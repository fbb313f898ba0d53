"""The classical peer tuned on the recommended model's training sets (injection with simulated
variables in half of class 0, each fold's peer from its benchmark record): the real benchmark
cross-fitted as the models are (each fold's peer on the other fold's stars), the detectable
binaries of the star-disjoint injection test split, and the simulated contaminants (peer
rules: lensing where dchi2_event >= its event threshold, binary where also anomaly > its binary
threshold). Prints one table row; writes gate/peer_same_data.json."""

import json

import numpy as np
from gate_common import E, peer_statistics, share

from microlens.data.store import open_dataset
from microlens.realdata.benchmark.crossfit import restrict
from microlens.realdata.benchmark.summary import combine_reports

folds = json.load(open(f"{E}/folds.json"))
records = [json.load(open(f"{E}/all/bench_features_var{k}.json")) for k in (0, 1)]
real = combine_reports([restrict(records[k], folds[1 - k]) for k in (0, 1)])["metrics"]["peer"]
counts = {"det": [0, 0], "pspl_binary": [0, 0], "contaminants": [0, 0], "preset": [0, 0]}
for k in (0, 1):
    peer = records[k]["peer"]
    store = open_dataset(f"data/rb/inj_var_fold{1 - k}")
    rows = store.indices("test")
    anomaly, dchi2 = peer_statistics(store, rows, peer)
    lensing = dchi2 >= peer["event_threshold"]
    binary = lensing & (anomaly > peer["binary_threshold"])
    labels, params = store.labels[rows], store.params[rows]
    det = (labels == 2) & (params["dchi2_pspl"] > 100)
    counts["det"][0] += int(binary[det].sum())
    counts["det"][1] += int(det.sum())
    counts["pspl_binary"][0] += int(binary[labels == 1].sum())
    counts["pspl_binary"][1] += int((labels == 1).sum())
    for name, key in (("ogle_real_contaminants", "contaminants"), ("ogle_contaminants", "preset")):
        cstore = open_dataset(f"data/rb/{name}")
        crow = cstore.indices("test")
        _, cd = peer_statistics(cstore, crow, peer)  # cached per set (same fit options)
        flat = cstore.labels[crow] == 0
        counts[key][0] += int(np.sum(cd[flat] >= peer["event_threshold"]))
        counts[key][1] += int(flat.sum())
out = {"real": {k: real[k] for k in ("events_lensing", "events_binary", "baselines_lensing")},
       **{k: share(*v) for k, v in counts.items()}}
json.dump(out, open(f"{E}/gate/peer_same_data.json", "w"), indent=1)


def pct(s):
    lo, hi = s["interval"]
    return f"{100 * s['share']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


print("| peer | " + " | ".join(pct(out["real"][k]) for k in out["real"]) + " | "
      + " | ".join(f"{pct(out[k])} ({out[k]['count']}/{out[k]['of']})"
                   for k in ("det", "pspl_binary", "contaminants", "preset")) + " |")
