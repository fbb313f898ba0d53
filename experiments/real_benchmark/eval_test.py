"""Accuracy and detectable-binary recall of a run on its own data set's test split (star-disjoint
for injection sets): final answers vs physical and observable labels (Wilson intervals), and the
share of PSPL events called binary and of class-0 events called lensing."""

import json
import sys
import time

import numpy as np

from microlens.core.metrics import wilson_interval
from microlens.evaluation.evaluate import label_set_metrics
from microlens.evaluation.predictions import run_predictions

t = time.time()
run = sys.argv[1]
pred, store = run_predictions(run, device="cpu", workers=2, batch_size=32)
last = pred.lengths - 1
predicted = np.asarray(pred.classes_at(last))
labels = np.asarray(pred.labels)
dchi2 = np.asarray(store.params[pred.rows]["dchi2_pspl"])
out = label_set_metrics(labels, predicted, dchi2)


def share(mask, hit):
    n, k = int(mask.sum()), int((mask & hit).sum())
    lo, hi = wilson_interval(k, n)
    return {"value": k / n if n else None, "low": lo, "high": hi, "count": k, "n": n}


out["pspl_called_binary"] = share(labels == 1, predicted == 2)
out["constant_called_lensing"] = share(labels == 0, predicted > 0)
out["run"] = run
out["n"] = int(len(pred))
out["seconds"] = time.time() - t
json.dump(out, open(f"{run}/test_labels.json", "w"), indent=1, default=float)
phys, obs = out["physical"], out["observable"]
print(
    run,
    "n",
    out["n"],
    "accuracy",
    phys["accuracy"],
    "observable accuracy",
    obs["accuracy"],
    "detectable-binary recall",
    obs["binary_recall"],
    "relabelled",
    out["n_relabelled"],
    "pspl called binary",
    out["pspl_called_binary"],
)
