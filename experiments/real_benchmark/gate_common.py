"""What the gate scripts share: the peer's statistics of a data set's test events (cached in
``outputs/experiments/real_benchmark/gate/``) and a share with its Wilson interval."""

import os

import numpy as np

from microlens.core.metrics import wilson_interval
from microlens.models.peer import peer_features

E = "outputs/experiments/real_benchmark"


def peer_statistics(store, rows, peer):
    """(anomaly, dchi2_event) of the final curve of each of ``rows``, with ``peer``'s options."""
    name = os.path.basename(str(store.path).rstrip("/"))
    cache = f"{E}/gate/peer_test_{name}.npz"
    # keyed by the curves (store.identity): a set regenerated under the same name (another
    # noise model, say) is not scored with the statistics of the curves it replaced
    if os.path.exists(cache):
        with np.load(cache) as f:
            if (np.array_equal(f["rows"], rows) and "identity" in f.files
                    and str(f["identity"]) == store.identity):
                return f["anomaly"], f["dchi2_event"]
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    feats = peer_features(store, rows, fractions=(1.0,), workers=1,
                          error_rescaling=peer["error_rescaling"],
                          outlier_clip=peer["outlier_clip"])[:, 0]
    np.savez(cache, rows=rows, anomaly=feats["anomaly"], dchi2_event=feats["dchi2_event"],
             identity=store.identity)
    return feats["anomaly"], feats["dchi2_event"]


def share(k, n):
    """``{count, of, share, interval}`` (95 % Wilson)."""
    lo, hi = wilson_interval(int(k), int(n))
    return {"count": int(k), "of": int(n), "share": k / n if n else None, "interval": [lo, hi]}
