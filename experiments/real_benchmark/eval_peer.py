"""The classical peer on a data set's own test split: the thresholds the benchmark tuned on its
validation split (read from the benchmark record), final answers; accuracy and detectable-binary
recall."""

import json
import sys
import time

import numpy as np

from microlens import open_dataset
from microlens.evaluation.evaluate import label_set_metrics
from microlens.models.peer import ClassicalPeer, peer_features

t = time.time()
data, bench = sys.argv[1], sys.argv[2]
store = open_dataset(data)
p = json.load(open(bench))["peer"]
peer = ClassicalPeer(
    event_threshold=p["event_threshold"],
    binary_threshold=p["binary_threshold"],
    binary_feature=p["binary_feature"],
    error_rescaling=p["error_rescaling"],
    outlier_clip=p["outlier_clip"],
)
rows = np.asarray(store.indices("test"))
feats = peer_features(
    store, rows, workers=2, error_rescaling=p["error_rescaling"], outlier_clip=p["outlier_clip"]
)[:, 0]
pred = peer.predict(feats)
labels = np.asarray(store.labels[rows])
dchi2 = np.asarray(store.params[rows]["dchi2_pspl"])
out = label_set_metrics(labels, pred, dchi2)
out["seconds"] = time.time() - t
name = data.rstrip("/").split("/")[-1]
json.dump(
    out,
    open(f"outputs/experiments/real_benchmark/peer_test_{name}.json", "w"),
    indent=1,
    default=float,
)
print(
    name,
    "accuracy",
    out["physical"]["accuracy"],
    "detectable-binary recall",
    out["observable"]["binary_recall"],
)
