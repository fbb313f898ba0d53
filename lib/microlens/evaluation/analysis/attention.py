"""Attention of a trained classifier: sliding-window weights, the dense causal band, the
attention each observation receives, look-back distance, entropy, and weight on the signal.

Window weights follow :meth:`microlens.models.layers.SlidingWindowAttention.forward`: an array
``(..., N, W)`` whose entry ``[..., k, j]`` is the weight query ``k`` gives key observation
``k - W + 1 + j`` (``j = W - 1`` is ``k`` itself; keys before the first observation carry 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from microlens.core.classes import CLASS_NAMES
from microlens.data.store import LightCurveStore
from microlens.evaluation.analysis.common import _nanmean


@dataclass
class EventAttention:
    """The attention of a model over one test event.

    Attributes
    ----------
    event : dict
        The event as :meth:`microlens.data.store.LightCurveStore.event` returns it (``index``,
        ``label``, ``split``, ``times`` [days], ``flux`` [baseline units], ``flux_err``,
        ``params``), valid observations only.
    weights : ndarray ``(layers, heads, n, window)`` float32
        Window weights of every layer and head (see the module docstring); ``n`` is the number of
        observations of the event.
    probabilities : ndarray ``(n, n_classes)``
        Calibrated class probabilities after every observation (logits / temperature, softmax).
    """

    event: dict
    weights: np.ndarray
    probabilities: np.ndarray

    @property
    def row(self) -> int:
        """Store row (event index)."""
        return int(self.event["index"])

    @property
    def label(self) -> int:
        return int(self.event["label"])

    @property
    def times(self) -> np.ndarray:
        return self.event["times"]

    @property
    def n_obs(self) -> int:
        return int(self.weights.shape[2])

    @property
    def n_layers(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.weights.shape[1])

    @property
    def window(self) -> int:
        return int(self.weights.shape[3])

    def select(self, layer: int | None = None, head: int | None = None) -> np.ndarray:
        """Window weights ``(n, window)`` of one layer and head; None averages over that axis.

        Raises
        ------
        IndexError
            For a layer or head the model does not have (the valid range is named).
        """
        w = self.weights
        if layer is not None and not 0 <= int(layer) < self.n_layers:
            raise IndexError(f"layer {layer} out of range; valid: 0..{self.n_layers - 1}")
        if head is not None and not 0 <= int(head) < self.n_heads:
            raise IndexError(f"head {head} out of range; valid: 0..{self.n_heads - 1}")
        w = w.mean(axis=0) if layer is None else w[int(layer)]
        return w.mean(axis=0) if head is None else w[int(head)]


def no_attention_reason(model) -> str | None:
    """Why ``model`` has no attention maps to draw, or None when it has them.

    Only kinds ``transformer`` and ``masked`` have attention maps over the observations
    (:attr:`~microlens.models.base.CausalClassifier.has_attention`); the other kinds
    (:data:`microlens.models.registry.KINDS`) are read by the kind-independent notebooks
    (``03_evaluate``, ``05_embedding``, ``06_u0_analysis``) instead.

    Parameters
    ----------
    model
        A loaded model of any kind (:func:`microlens.models.registry.load_model`).

    Returns
    -------
    str or None
    """
    if getattr(model, "has_attention", False):
        return None
    from microlens.models.registry import KINDS

    kind = getattr(getattr(model, "config", None), "kind", None)
    entry = KINDS.get(kind)
    what = (f"a {kind!r} model ({entry.description})" if entry is not None
            else f"a {type(model).__name__}")
    return (f"{what} has no attention maps: only kind 'transformer' attends to earlier "
            "observations; 03_evaluate, 05_embedding and 06_u0_analysis read every kind")


def no_attention_record(reason: str) -> dict:
    """The measured part of ``attention_summary.json`` for a model without attention maps:
    ``attention`` False, the ``reason`` (:func:`no_attention_reason`), and nothing measured
    (no events, no layers; ``focus_event``, ``window`` and ``uniform_distance_obs`` None), so the
    record keeps the keys of :class:`microlens.workflow.notebooks.AttentionRecord`."""
    return {"attention": False, "reason": str(reason), "events": [], "focus_event": None,
            "n_events": 0, "n_queries": 0, "window": None, "regions": {},
            "uniform_distance_obs": None, "layers": []}


def attention_maps(model, store: LightCurveStore, rows: Sequence[int], *, batch_size: int = 16,
                   device="cpu",
                   progress: bool = False) -> list[EventAttention]:
    """Per-layer, per-head attention weights and probabilities of test events.

    Parameters
    ----------
    model : MicrolensTransformer
        A model with attention maps (kind ``transformer``; others raise ValueError, with
        :func:`no_attention_reason`).
    store : LightCurveStore
    rows : sequence of int
        Test-split store rows (others raise :class:`microlens.models.holdout.SplitError`).
    batch_size : int
        Events per forward pass (memory, not results, depends on it: the model is causal and
        padding comes after every valid observation).
    device : str or torch.device
    progress : bool
        Show a progress bar.

    Returns
    -------
    list of EventAttention
        One per row, in the order given, trimmed to each event's observations.
    """
    import torch

    from microlens.core.metrics import softmax
    from microlens.evaluation.predictions import forward_batches

    reason = no_attention_reason(model)
    if reason is not None:
        raise ValueError(reason)
    maps = []
    for part, batch, out in forward_batches(model, store, rows, batch_size=batch_size,
                                            device=device, desc="attention", progress=progress,
                                            return_attention=True):
        weights = torch.stack(out["attention"], dim=1).float().cpu().numpy()  # (B,L,H,N,W)
        # the model's own calibration: its temperature curve over observations seen, if fitted
        probs = softmax(model.calibrate(out["logits"].float()).cpu().numpy())
        for i, row in enumerate(part):
            n = int(batch["lengths"][i])
            maps.append(EventAttention(event=store.event(int(row)),
                                       weights=np.ascontiguousarray(weights[i, :, :, :n]),
                                       probabilities=probs[i, :n]))
    return maps


def _as_window_weights(weights) -> np.ndarray:
    if hasattr(weights, "detach"):  # a torch tensor
        weights = weights.detach().cpu().numpy()
    w = np.asarray(weights)
    if w.ndim < 2:
        raise ValueError(f"window weights must be (..., N, window), got shape {w.shape}")
    return w


def key_positions(n: int, window: int) -> np.ndarray:
    """Observation index of every window slot, ``(n, window)``: ``k - window + 1 + j``.

    Negative entries are slots before the first observation (their weight is 0).
    """
    return np.arange(n)[:, None] - int(window) + 1 + np.arange(int(window))[None, :]


def dense_attention(weights, fill: float = 0.0) -> np.ndarray:
    """The dense query-by-key matrix ``(..., N, N)`` from window weights ``(..., N, W)``.

    Entry ``[..., k, i]`` is the weight query ``k`` gives key ``i``; it is ``fill`` unless
    ``k - W < i <= k`` (the causal band below and on the diagonal), so with the default 0 each
    row sums to the row of window weights (1 for a real query). ``fill=nan`` leaves what a
    query cannot see blank in a heatmap.
    """
    w = _as_window_weights(weights)
    n, window = w.shape[-2:]
    keys = key_positions(n, window)
    valid = keys >= 0
    queries = np.broadcast_to(np.arange(n)[:, None], keys.shape)
    dense = np.full(w.shape[:-1] + (n,), fill, dtype=np.result_type(w.dtype, type(fill)))
    dense[..., queries[valid], keys[valid]] = w[..., valid]
    return dense


def visible_keys(n: int, window: int) -> np.ndarray:
    """How many observations query ``k`` can see, ``min(k + 1, window)``, shape ``(n,)``."""
    return np.minimum(np.arange(n) + 1, int(window))


RECEIVED_NORMALIZATIONS = (None, "per_query", "uniform")
"""Choices of ``normalize`` in :func:`attention_received`."""


def uniform_window_weights(n: int, window: int) -> np.ndarray:
    """Window weights ``(n, window)`` of uniform attention over each query's visible keys."""
    keys = key_positions(n, window)
    return np.where(keys >= 0, 1.0 / visible_keys(n, window)[:, None], 0.0)


def attention_received(weights, *, normalize: str | None = None) -> np.ndarray:
    """The attention each observation receives: the sum over queries of their weight to it.

    Parameters
    ----------
    weights : array ``(..., N, W)``
        Window weights (any leading axes: layers, heads, ...).
    normalize : {None, 'per_query', 'uniform'}
        None: the plain sum (over all observations it adds up to ``N``, one per query).
        ``'per_query'``: divided by the number of queries that can see each observation,
        ``min(W, N - i)`` (the mean weight per viewer; the last observations are seen by fewer
        queries). ``'uniform'``: divided by what uniform attention over the visible keys would
        give (1 everywhere for uniform attention; > 1 marks observations the model favours).

    Returns
    -------
    ndarray ``(..., N)``
    """
    if normalize not in RECEIVED_NORMALIZATIONS:
        raise ValueError(f"unknown normalize {normalize!r}; valid: "
                         f"{', '.join(map(repr, RECEIVED_NORMALIZATIONS))}")
    w = _as_window_weights(weights).astype(np.float64)
    n, window = w.shape[-2:]
    received = _received_sum(w)
    if normalize == "per_query":
        received /= np.minimum(window, n - np.arange(n))
    elif normalize == "uniform":
        received /= _received_sum(uniform_window_weights(n, window))
    return received


def _received_sum(w: np.ndarray) -> np.ndarray:
    n, window = w.shape[-2:]
    received = np.zeros(w.shape[:-1])
    for j in range(window):
        offset = window - 1 - j  # key = query - offset
        if offset < n:
            received[..., : n - offset] += w[..., offset:, j]
    return received


def attention_distance(weights, times=None) -> np.ndarray:
    """Mean look-back of each query: ``sum_j w[k, j] * (k - key_j)``, shape ``(..., N)``.

    Parameters
    ----------
    weights : array ``(..., N, W)``
    times : array ``(N,)``, optional
        Observation times [days]: the look-back is then in days (``t_k - t_key``), else in
        observations.
    """
    w = _as_window_weights(weights).astype(np.float64)
    n, window = w.shape[-2:]
    keys = key_positions(n, window)
    if times is None:
        lag = (window - 1 - np.arange(window))[None, :].astype(np.float64)
    else:
        times = np.asarray(times, dtype=np.float64)
        if times.shape != (n,):
            raise ValueError(f"times must have shape ({n},), got {times.shape}")
        lag = np.where(keys >= 0, times[:, None] - times[np.maximum(keys, 0)], 0.0)
    return (w * lag).sum(axis=-1)


def uniform_distance(n: int, window: int) -> np.ndarray:
    """Look-back of uniform attention over the visible keys, ``min(k, window - 1) / 2``."""
    return (visible_keys(n, window) - 1) / 2.0


def attention_entropy(weights, *, normalized: bool = False) -> np.ndarray:
    """Entropy [nats] of each query's weights, ``(..., N)``.

    With ``normalized`` it is divided by ``log`` of the number of visible keys (1 = uniform over
    what the query can see, 0 = all on one key); the first query sees one key and gets NaN.
    """
    w = _as_window_weights(weights).astype(np.float64)
    entropy = -(w * np.log(np.where(w > 0, w, 1.0))).sum(axis=-1)
    if not normalized:
        return entropy
    scale = np.log(visible_keys(w.shape[-2], w.shape[-1]).astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale > 0, entropy / np.where(scale > 0, scale, 1.0), np.nan)


SIGNAL_REGIONS: dict[str, tuple[float, float | None]] = {
    "peak": (0.5, None),  # the half-maximum part of the lensing signal
    "wings": (0.05, 0.5),  # the rise and fall: 5 % to 50 % of the maximum excess
}
"""Regions of a lensing light curve scored by :func:`attention_statistics`: name -> the range
of the noise-free flux excess, as fractions of its maximum (:func:`signal_region`)."""


def signal_region(event: dict, low: float = 0.5, high: float | None = None) -> np.ndarray:
    """Observations where the noise-free flux excess over the baseline lies in a range.

    The excess ``F_model - 1`` at the event's own times
    (:func:`microlens.simulation.simulate.model_flux`)
    is compared with its maximum ``E`` over those times: an observation is in the region when
    ``low * E <= excess < high * E`` (no upper bound for ``high=None``). ``low=0.5`` gives the
    half-maximum part of the peak (for a binary, of its highest feature); ``(0.05, 0.5)`` the
    rise and fall. All False for a flat event (no lens) or one without excess.
    """
    from microlens.simulation.simulate import model_flux

    if not 0.0 <= float(low) <= 1.0 or (high is not None and not float(low) < float(high)):
        raise ValueError(f"need 0 <= low <= 1 and low < high, got low={low!r}, high={high!r}")
    times = np.asarray(event["times"], dtype=np.float64)
    if int(event["label"]) == 0 or times.size == 0:
        return np.zeros(times.shape, bool)
    excess = model_flux(event["params"], times) - 1.0
    top = float(np.max(excess))
    if not top > 0:
        return np.zeros(times.shape, bool)
    inside = excess >= float(low) * top
    if high is not None:
        inside &= excess < float(high) * top
    return inside


def attention_on_region(weights, region) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How much of each query's attention lands on a set of observations.

    Parameters
    ----------
    weights : array ``(..., N, W)``
    region : bool array ``(N,)``
        The observations of interest (e.g. :func:`signal_region`).

    Returns
    -------
    attended : ndarray ``(..., N)``
        Weight each query puts on region observations.
    uniform : ndarray ``(N,)``
        The same for uniform attention over the visible keys: the share of them in the region.
    in_view : bool ndarray ``(N,)``
        Whether any region observation is visible to the query.
    """
    w = _as_window_weights(weights).astype(np.float64)
    n, window = w.shape[-2:]
    region = np.asarray(region, dtype=bool)
    if region.shape != (n,):
        raise ValueError(f"region must have shape ({n},), got {region.shape}")
    keys = key_positions(n, window)
    hit = (keys >= 0) & region[np.maximum(keys, 0)]
    attended = (w * hit).sum(axis=-1)
    count = hit.sum(axis=-1)
    return attended, count / visible_keys(n, window), count > 0



def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _pool(parts: list[tuple[np.ndarray, np.ndarray]]):
    if not parts:
        return None
    return (np.concatenate([a for a, _ in parts], axis=-1),
            np.concatenate([u for _, u in parts]))


def attention_statistics(maps: Sequence[EventAttention],
                         regions: dict[str, tuple[float, float | None]] | None = None) -> dict:
    """Key numbers of the attention of some events, per layer and head (JSON-ready).

    Every number pools all queries of all events (each query counts once).

    Parameters
    ----------
    maps : sequence of EventAttention
    regions : dict, optional
        Parts of the lensing signal to score, name -> ``(low, high)`` of :func:`signal_region`
        (default :data:`SIGNAL_REGIONS`: the peak and the wings).

    Returns
    -------
    dict
        ``n_events``, ``n_queries``, ``window``, ``regions`` (the definitions),
        ``uniform_distance_obs`` (mean look-back of uniform attention over the visible keys, the
        reference for ``distance_obs``) and ``layers``: one dict per layer with the head-mean
        numbers and a ``heads`` list of the same numbers per head:

        * ``distance_obs`` / ``distance_days``: mean look-back of a query [observations, days];
        * ``entropy_normalized``: entropy over ``log(visible keys)`` (1 uniform, 0 one key);
        * ``self_weight``: mean weight a query gives itself;
        * ``regions``: per region, over the queries of lensing events that see it: ``weight``
          (mean attention on it), ``uniform`` (the same for uniform attention), ``enrichment``
          (their ratio: > 1 means the region draws more attention than its share of the
          window) and ``enrichment_by_class`` (PSPL and binary events apart); None where no
          query sees the region.
    """
    if not maps:
        raise ValueError("no events given")
    regions = dict(SIGNAL_REGIONS if regions is None else regions)
    n_layers, n_heads, window = maps[0].n_layers, maps[0].n_heads, maps[0].window
    parts: dict[str, list] = {k: [] for k in ("dist", "days", "ent", "self", "uni")}
    lensing = (CLASS_NAMES.index("pspl"), CLASS_NAMES.index("binary"))
    # region -> label -> [(attended (L, H, q), uniform (q,))] over queries that see the region
    seen: dict[str, dict[int, list]] = {r: {label: [] for label in lensing} for r in regions}
    for m in maps:
        if (m.n_layers, m.n_heads, m.window) != (n_layers, n_heads, window):
            raise ValueError("all events must come from the same model")
        w = m.weights
        parts["dist"].append(attention_distance(w))
        parts["days"].append(attention_distance(w, m.times))
        parts["ent"].append(attention_entropy(w, normalized=True))
        parts["self"].append(w[..., -1])
        parts["uni"].append(uniform_distance(m.n_obs, window))
        if m.label not in lensing:
            continue
        for name, (low, high) in regions.items():
            region = signal_region(m.event, low, high)
            if region.any():
                attended, uniform, in_view = attention_on_region(w, region)
                seen[name][m.label].append((attended[..., in_view], uniform[in_view]))
    pooled = {k: np.concatenate(v, axis=-1) for k, v in parts.items()}
    by_label = {r: {label: _pool(v) for label, v in per.items()} for r, per in seen.items()}
    overall = {r: _pool([p for per in seen[r].values() for p in per]) for r in regions}

    def region_numbers(name: str, index) -> dict:
        both = overall[name]
        weight = _nanmean(both[0][index]) if both else None
        uniform = _nanmean(both[1]) if both else None
        return {"weight": weight, "uniform": uniform, "enrichment": _ratio(weight, uniform),
                "enrichment_by_class": {
                    CLASS_NAMES[label]: (_ratio(_nanmean(v[0][index]), _nanmean(v[1])) if v
                                         else None)
                    for label, v in by_label[name].items()}}

    def numbers(index) -> dict:
        return {
            "distance_obs": _nanmean(pooled["dist"][index]),
            "distance_days": _nanmean(pooled["days"][index]),
            "entropy_normalized": _nanmean(pooled["ent"][index]),
            "self_weight": _nanmean(pooled["self"][index]),
            "regions": {name: region_numbers(name, index) for name in regions},
        }

    layers = []
    for layer in range(n_layers):
        entry = {"layer": layer, **numbers((layer, slice(None)))}
        entry["heads"] = [{"head": h, **numbers((layer, h))} for h in range(n_heads)]
        layers.append(entry)
    return {
        "n_events": len(maps),
        "n_queries": int(pooled["uni"].size),
        "window": window,
        "regions": {name: {"low": low, "high": high} for name, (low, high) in regions.items()},
        "uniform_distance_obs": _nanmean(pooled["uni"]),
        "layers": layers,
    }


def event_records(maps: Sequence[EventAttention]) -> list[dict]:
    """One JSON-ready record per event: row, class, observations, final probabilities, the
    predicted class, and the key parameters (``u_0``, ``t_E``; ``s``, ``q``, ``dchi2_pspl`` for
    binaries; NaN written as None)."""
    records = []
    for m in maps:
        final = m.probabilities[-1]
        p = m.event["params"]
        keys = ("u_0", "t_E") if m.label >= 1 else ()
        keys += ("s", "q", "dchi2_pspl") if m.label == 2 else ()
        records.append({
            "row": m.row, "label": m.label, "class": CLASS_NAMES[m.label], "n_obs": m.n_obs,
            "final_probabilities": [float(x) for x in final],
            "predicted": CLASS_NAMES[int(np.argmax(final))],
            "params": {k: (float(p[k]) if math.isfinite(p[k]) else None) for k in keys},
        })  # fmt: skip
    return records
