"""Simulated contaminants at the operating point an observer would deploy: each fold's model
at the threshold that calls 2 % of the real baselines of the stars it never saw lensing (all
~500 of the other fold's stars), after its gate; a contaminant is called when its gated
log-odds of lensing reach that threshold (the alert rule of the real benchmark). Both folds'
models on the 320 test stars of each contaminant set (640 answers). Prints a markdown table,
writes gate/operating_contaminants.json.

    python experiments/real_benchmark/gate_operating_contaminants.py [MODEL ...]

MODEL: features_var (default), features_var80, transformer_var, features_inj.
"""

import json
import os
import sys

import numpy as np
from gate_common import E, peer_statistics, share

from microlens.evaluation.gate import GATES, PhysicsGate
from microlens.evaluation.predictions import run_predictions
from microlens.realdata.benchmark.crossfit import choose_threshold, restrict
from microlens.realdata.benchmark.gated import gate_record
from microlens.realdata.benchmark.summary import lensing_log_odds

R = "outputs/runs/rb"
SETS = ("ogle_real_contaminants", "ogle_contaminants")
folds = json.load(open(f"{E}/folds.json"))
MODELS = {
    "features_var": ([f"{R}/all/features_var{k}" for k in (0, 1)],
                     [f"{E}/all/bench_features_var{k}.json" for k in (0, 1)]),
    "features_var80": ([f"{R}/all/features_var80{k}" for k in (0, 1)],
                       [f"{E}/all/bench_features_var80{k}.json" for k in (0, 1)]),
    "transformer_var": ([f"{R}/all/transformer_var{k}" for k in (0, 1)],
                        [f"{E}/all/bench_transformer_var{k}.json" for k in (0, 1)]),
    "features_inj": ([f"{R}/ft_inj{k}" for k in (0, 1)],
                     [f"{E}/r2_ft_inj{k}_win.json" for k in (0, 1)]),
}


def pct(s):
    lo, hi = s["interval"]
    return f"{100 * s['share']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] ({s['count']}/{s['of']})"


path = f"{E}/gate/operating_contaminants.json"
out = json.load(open(path)) if os.path.exists(path) else {}
for name in sys.argv[1:] or ["features_var"]:
    runs, benches = MODELS[name]
    records = [json.load(open(b)) for b in benches]
    # the injection-only records keep the tuned peer's statistics in a record of their own
    peer_records = [None if r.get("peer") else json.load(open(f"{E}/r2_peer_inj{k}_win.json"))
                    for k, r in enumerate(records)]
    peers = [r["peer"] if p is None else p["peer"]
             for r, p in zip(records, peer_records, strict=True)]
    answers = []
    for k, run in enumerate(runs):
        per_set = {}
        for data in SETS:
            pred, store = run_predictions(run, f"data/rb/{data}", device="cpu", workers=1,
                                          batch_size=32)
            anomaly, dchi2 = peer_statistics(store, pred.rows, peers[k])
            per_set[data] = (pred, anomaly, dchi2)
        answers.append(per_set)
    for gate_name in GATES:
        counts = {data: [0, 0] for data in SETS}
        thresholds = []
        for k in (0, 1):
            gate = PhysicsGate.arm(peers[k], gate_name)
            unseen = restrict(gate_record(records[k], gate, peer_records[k]), folds[1 - k])
            threshold = choose_threshold(unseen["events"], 0.02)
            thresholds.append(threshold)
            for data, (pred, anomaly, dchi2) in answers[k].items():
                final = pred.final() if gate is None else gate.apply(pred.final(), anomaly, dchi2)
                flat = np.asarray(pred.labels) == 0
                scores = np.array([lensing_log_odds(p) for p in final[flat]])
                counts[data][0] += int(np.sum(scores >= threshold))
                counts[data][1] += int(flat.sum())
        row = {data: share(*c) for data, c in counts.items()}
        row["log_odds_thresholds"] = thresholds
        out[f"{name}/{gate_name}"] = row
        print(f"| {name} | {gate_name} | {', '.join(f'{t:.2f}' for t in thresholds)} | "
              + " | ".join(pct(row[d]) for d in SETS) + " |", flush=True)
json.dump(out, open(path, "w"), indent=1)
