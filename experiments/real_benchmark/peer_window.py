"""The classical peer (as tuned by the round-1 benchmarks) on the trailing 605.25-day windows."""

import json
import sys

from microlens.core.paths import write_json_atomic
from microlens.models.peer import ClassicalPeer
from microlens.realdata.benchmark import run_benchmark

E = "outputs/experiments/real_benchmark"
F = "../shared/real/ogle_ews_2025"
FIELDS = (
    "event_threshold",
    "binary_threshold",
    "binary_feature",
    "error_rescaling",
    "outlier_clip",
)
for name, source, stars in [
    ("r2_peer_inj0_win", "bench_tf_inj0", f"{E}/bench_stars_fold0.json"),
    ("r2_peer_inj1_win", "bench_tf_inj1", f"{E}/bench_stars_fold1.json"),
    ("r2_peer_ogle_win", "bench_tf_ogle", None),
]:
    tuned = json.load(open(f"{E}/{source}.json"))["peer"]
    peer = ClassicalPeer(**{k: tuned[k] for k in FIELDS})
    record = run_benchmark(F, None, peer=peer, stars=stars, window_days=605.25, workers=2)
    write_json_atomic(f"{E}/{name}.json", record)
    print(name, record["metrics"]["peer"], flush=True)
    sys.stdout.flush()
