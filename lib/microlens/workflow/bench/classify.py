"""Per-event cost of classifying a finished light curve, classical peer against transformer:
``python -m microlens.workflow.bench classify``.
"""

from __future__ import annotations

import time

from microlens.simulation.simulate import SimulationConfig
from microlens.workflow.bench.common import _load_average, _machine, _sig


def bench_classify(events: int = 90, epochs: int = 1000, topology: str = "baseline",
                   batch: int = 64, seed: int = 0, progress: bool = True) -> dict:
    """Cost of classifying one finished light curve: the classical peer vs the transformer.

    Both run on the same simulated events (``events`` of the three classes, ``epochs`` nominal
    epochs) in this process, on one CPU thread, so the ratio compares per core: the peer's
    flat and blended-PSPL least-squares fits and residual scan (:func:`microlens.models.peer.
    light_curve_features`) per event, against the default transformer's batch inference
    (:meth:`~microlens.models.transformer.MicrolensTransformer.predict_logits` over ``batch``
    events; weights do not change the cost) per event, and with all threads.
    """
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from microlens.data.store import collate_light_curves
    from microlens.evaluation.evaluate import time_inference
    from microlens.models.config import ModelConfig
    from microlens.models.inputs import Normalization
    from microlens.models.peer import light_curve_features
    from microlens.models.transformer import MicrolensTransformer
    from microlens.simulation.simulate import simulate_event

    cfg = SimulationConfig(n_per_class=max(1, events // 3), n_epochs=epochs, topology=topology,
                           seed=seed, detectability=False)
    simulated = [simulate_event(cfg, i) for i in tqdm(range(events), desc="simulate",
                                                        disable=not progress)]
    peer_seconds = []
    for event in tqdm(simulated, desc="classical peer", disable=not progress):
        start = time.perf_counter()
        light_curve_features(event.times, event.flux, event.flux_err)
        peer_seconds.append(time.perf_counter() - start)
    items = [{"times": e.times.astype(np.float32), "flux": e.flux.astype(np.float32),
              "flux_err": e.flux_err.astype(np.float32), "label": 0, "index": i}
             for i, e in enumerate(simulated[:batch])]
    tensors = collate_light_curves(items)
    inputs = [tensors[k] for k in ("times", "flux", "flux_err", "mask")]
    model = MicrolensTransformer(ModelConfig(), Normalization.fit(*inputs)).eval()
    previous = torch.get_num_threads()
    transformer = {
        label: {"threads": threads, "ms_per_event": _sig(
            1e3 * time_inference(model, inputs, threads=threads) / len(items))}
        for label, threads in (("one_thread", 1), ("all_threads", previous))}
    peer_ms = 1e3 * np.asarray(peer_seconds)
    one = transformer["one_thread"]["ms_per_event"]
    return {
        "benchmark": "classify",
        "what": "classify one finished light curve on CPU",
        "events": events, "epochs": epochs, "topology": topology,
        "mean_observations": _sig(float(np.mean([e.times.size for e in simulated]))),
        "classical_peer": {"ms_per_event": _sig(float(peer_ms.mean())),
                           "p95_ms": _sig(float(np.percentile(peer_ms, 95))),
                           "max_ms": _sig(float(peer_ms.max())), "threads": 1},
        "transformer": {**transformer, "batch": len(items),
                        "parameters": model.n_parameters},
        "ratio_transformer_over_peer_one_thread": _sig(one / float(peer_ms.mean())),
        "machine": _machine("cpu", previous, _load_average()),
    }

