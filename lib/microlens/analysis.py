"""What a trained classifier looks at and how it arranges events: attention and embeddings.

Every function here reads **test-split** events only (rows are checked with
:func:`microlens.predictions.require_test_split`) and returns plain numpy arrays or JSON-ready
dicts, so the notebooks (``04_attention``, ``05_embedding``), the figures
(:mod:`microlens.viz.attention`, :mod:`microlens.viz.embedding`) and the explorers
(:mod:`microlens.widgets`) share one computation that the tests can reach.

Sections:

* **Runs and datasets**: the dataset a run directory was trained on.
* **Attention**: the per-layer, per-head sliding-window weights of chosen events
  (:func:`attention_maps`); the dense query-by-key matrix (:func:`dense_attention`); the attention
  each observation receives (:func:`attention_received`); per-query look-back distance, entropy
  and weight on the peak and the wings of the signal; a JSON summary (:func:`attention_statistics`).
* **Embeddings**: the pooled embedding behind each event's final prediction
  (:func:`event_embeddings`), 2-D projections (:func:`project_embeddings`, PCA or t-SNE),
  separability numbers (:func:`embedding_metrics`) and a JSON summary
  (:func:`embedding_summary`).

Further sections (u_0 and detectability) follow the same pattern: a header comment, then their
functions; every public name is listed in ``__all__`` at the end of the module.

torch (and :mod:`microlens.predictions`, which needs it) is imported inside the functions that run
a model, so the figure modules built on the array functions here import quickly.

Window weights follow :meth:`microlens.model.SlidingWindowAttention.forward`: an array
``(..., N, W)`` whose entry ``[..., k, j]`` is the weight query ``k`` gives key observation
``k - W + 1 + j`` (``j = W - 1`` is ``k`` itself; keys before the first observation carry 0).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .paths import resolve_path
from .presets import CLASS_NAMES
from .store import LightCurveStore, open_dataset
from .summaries import DETECTABILITY_THRESHOLD

# --------------------------------------------------------------------------------------------
# Runs and datasets
# --------------------------------------------------------------------------------------------


def run_dataset(run_dir: str | os.PathLike,
                dataset: str | os.PathLike | None = "") -> LightCurveStore:
    """Open ``dataset``, or (when it is empty or None) the dataset the run was trained on.

    Parameters
    ----------
    run_dir : path
        A run directory written by :func:`microlens.train.train` (relative paths are taken from
        the project root).
    dataset : path, optional
        Another dataset to analyse (its test split); ``""`` or None means the run's own, read
        from ``config.json`` (``train.dataset``).
    """
    if dataset is None or str(dataset) == "":
        config_file = resolve_path(run_dir) / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"{resolve_path(run_dir)} is not a run directory: "
                                    "config.json is missing")
        dataset = json.loads(config_file.read_text(encoding="utf-8"))["train"]["dataset"]
    return open_dataset(dataset)


def _batches(n: int, batch_size: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    return tqdm(range(0, n, int(batch_size)), desc=desc, unit="batch", disable=not progress)


class _Inference:
    """Eval mode without gradients for a block; the model's previous mode is restored after."""

    def __init__(self, model):
        import torch

        self.model, self.was_training = model, model.training
        self.no_grad = torch.no_grad()

    def __enter__(self):
        self.no_grad.__enter__()
        self.model.eval()
        return self.model

    def __exit__(self, *exc):
        self.model.train(self.was_training)
        return self.no_grad.__exit__(*exc)


# --------------------------------------------------------------------------------------------
# Attention
# --------------------------------------------------------------------------------------------


@dataclass
class EventAttention:
    """The attention of a model over one test event.

    Attributes
    ----------
    event : dict
        The event as :meth:`microlens.store.LightCurveStore.event` returns it (``index``,
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


def attention_maps(model, store: LightCurveStore, rows: Sequence[int], *, batch_size: int = 16,
                   device="cpu",
                   progress: bool = False) -> list[EventAttention]:
    """Per-layer, per-head attention weights and probabilities of test events.

    Parameters
    ----------
    model : MicrolensTransformer
    store : LightCurveStore
    rows : sequence of int
        Test-split store rows (others raise :class:`microlens.predictions.SplitError`).
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

    from .predictions import require_test_split

    rows = require_test_split(store, rows)
    if rows.size == 0:
        raise ValueError("no events given")
    device = torch.device(device)
    maps = []
    with _Inference(model.to(device)):
        for start in _batches(rows.size, batch_size, "attention", progress):
            part = rows[start : start + int(batch_size)]
            batch = store.batch(part)
            inputs = [batch[k].to(device) for k in ("times", "flux", "flux_err", "mask")]
            out = model(*inputs, return_attention=True)
            weights = torch.stack(out["attention"], dim=1).float().cpu().numpy()  # (B,L,H,N,W)
            probs = model.calibrate(out["logits"]).softmax(dim=-1).float().cpu().numpy()
            for i, row in enumerate(part):
                n = int(batch["lengths"][i])
                maps.append(EventAttention(event=store.event(int(row)),
                                           weights=np.ascontiguousarray(weights[i, :, :, :n]),
                                           probabilities=probs[i, :n].astype(np.float64)))
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


def dense_attention(weights) -> np.ndarray:
    """The dense query-by-key matrix ``(..., N, N)`` from window weights ``(..., N, W)``.

    Entry ``[..., k, i]`` is the weight query ``k`` gives key ``i``; it is zero unless
    ``k - W < i <= k`` (the causal band below and on the diagonal), so each row sums to the
    row of window weights (1 for a real query).
    """
    w = _as_window_weights(weights)
    n, window = w.shape[-2:]
    keys = key_positions(n, window)
    valid = keys >= 0
    queries = np.broadcast_to(np.arange(n)[:, None], keys.shape)
    dense = np.zeros(w.shape[:-1] + (n,), dtype=w.dtype)
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

    The excess ``F_model - 1`` at the event's own times (:func:`microlens.simulate.model_flux`)
    is compared with its maximum ``E`` over those times: an observation is in the region when
    ``low * E <= excess < high * E`` (no upper bound for ``high=None``). ``low=0.5`` gives the
    half-maximum part of the peak (for a binary, of its highest feature); ``(0.05, 0.5)`` the
    rise and fall. All False for a flat event (no lens) or one without excess.
    """
    from .simulate import model_flux

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


def _nanmean(values) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None


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


# --------------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------------

PROJECTION_METHODS = ("pca", "tsne")
"""Methods of :func:`project_embeddings`."""


def projection_methods(choice: str) -> tuple[str, ...]:
    """The methods a notebook's ``method`` parameter asks for: ``'pca'``, ``'tsne'`` or
    ``'both'`` (ValueError naming the valid choices otherwise)."""
    if choice == "both":
        return PROJECTION_METHODS
    if choice not in PROJECTION_METHODS:
        raise ValueError(f"unknown method {choice!r}; valid: {', '.join(PROJECTION_METHODS)}, "
                         "both")
    return (choice,)


def event_embeddings(model, store: LightCurveStore, rows: Sequence[int], *, batch_size: int = 64,
                     device="cpu", progress: bool = False) -> np.ndarray:
    """The pooled embedding behind each event's final prediction.

    This is ``forward(..., return_embedding=True)["embedding"]`` at the event's last valid
    observation: the running mean and max of the encoder states over the whole light curve,
    ``2 * d_model`` numbers from which the head computes the final logits.

    Parameters
    ----------
    model : MicrolensTransformer
    store : LightCurveStore
    rows : sequence of int
        Test-split store rows (others raise :class:`microlens.predictions.SplitError`).
    batch_size : int
        Events per forward pass (results do not depend on it).
    device : str or torch.device
    progress : bool
        Show a progress bar.

    Returns
    -------
    ndarray ``(len(rows), 2 * d_model)`` float32, in the order of ``rows``.
    """
    import torch

    from .predictions import require_test_split

    rows = require_test_split(store, rows)
    if rows.size == 0:
        raise ValueError("no events given")
    device = torch.device(device)
    out = np.zeros((rows.size, 2 * model.config.d_model), np.float32)
    with _Inference(model.to(device)):
        for start in _batches(rows.size, batch_size, "embed", progress):
            batch = store.batch(rows[start : start + int(batch_size)])
            inputs = [batch[k].to(device) for k in ("times", "flux", "flux_err", "mask")]
            pooled = model(*inputs, return_embedding=True)["embedding"]
            last = batch["lengths"].to(device).clamp_min(1) - 1
            final = pooled[torch.arange(pooled.shape[0], device=device), last]
            out[start : start + final.shape[0]] = final.float().cpu().numpy()
    return out


def embedding_probabilities(model, embeddings) -> np.ndarray:
    """Calibrated class probabilities ``(E, n_classes)`` from final embeddings: the model's head
    applied to them (logits / temperature, softmax), i.e. its final prediction for each event."""
    import torch

    with _Inference(model):
        x = torch.as_tensor(np.asarray(embeddings), dtype=torch.float32,
                            device=model.temperature.device)
        logits = model.calibrate(model.classify(x))
        return logits.softmax(dim=-1).double().cpu().numpy()


def standardize(embeddings) -> np.ndarray:
    """Each feature to zero mean and unit variance over the events (constant features to 0)."""
    x = np.asarray(embeddings, dtype=np.float64)
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _check_embeddings(embeddings, minimum: int = 3) -> np.ndarray:
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be (events, features), got shape {x.shape}")
    if x.shape[0] < minimum:
        raise ValueError(f"need at least {minimum} events, got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or infinite values")
    return x


@dataclass
class Projection:
    """2-D coordinates of embeddings and how they were made.

    Attributes
    ----------
    coords : ndarray ``(E, 2)``
    method : str
        ``'pca'`` or ``'tsne'``.
    seed : int
    info : dict
        JSON-ready: ``explained_variance_ratio`` (PCA: of the two components); ``perplexity``
        (as used, clipped for small sets), ``kl_divergence``, ``pca_components`` (the PCA
        reduction before t-SNE) for t-SNE.
    """

    coords: np.ndarray
    method: str
    seed: int
    info: dict = field(default_factory=dict)

    @property
    def axis_titles(self) -> tuple[str, str]:
        if self.method == "pca":
            ratio = self.info.get("explained_variance_ratio", [math.nan, math.nan])
            return tuple(f"PC{i + 1} ({100 * r:.0f}% of variance)" for i, r in enumerate(ratio))
        return ("t-SNE 1", "t-SNE 2")


def tsne_perplexity(n_events: int, perplexity: float = 30.0) -> float:
    """The perplexity t-SNE can use for ``n_events`` points: at most ``(n_events - 1) / 3``
    (and at least 1), so small sets still embed."""
    return float(max(1.0, min(float(perplexity), (n_events - 1) / 3.0)))


def project_embeddings(embeddings, method: str = "pca", seed: int = 0, *,
                       perplexity: float = 30.0, standardized: bool = True,
                       threads: int | None = 1) -> Projection:
    """Project embeddings to two dimensions with PCA or t-SNE (scikit-learn).

    Parameters
    ----------
    embeddings : array ``(E, D)``
        E >= 3 events.
    method : {'pca', 'tsne'}
    seed : int
        Random state of the solver (the same seed gives the same coordinates).
    perplexity : float
        t-SNE perplexity, clipped to :func:`tsne_perplexity` for small sets.
    standardized : bool
        Standardise each feature first (:func:`standardize`): the pooled mean and max
        features have different scales.
    threads : int or None
        OpenMP threads of the t-SNE gradient (None: all). One by default: scikit-learn's
        Barnes-Hut loop waits at a barrier every iteration and slows down badly when its cores
        are shared, with torch's own OpenMP pool in the same process or with other processes
        (measured on a 2-core machine: 300 events took 46 s with two threads, 3 s with one).
        The coordinates do not depend on it.

    Returns
    -------
    Projection
    """
    if method not in PROJECTION_METHODS:
        raise ValueError(f"unknown projection method {method!r}; valid: "
                         f"{', '.join(PROJECTION_METHODS)}")
    x = _check_embeddings(embeddings)
    if standardized:
        x = standardize(x)
    from sklearn.decomposition import PCA

    if method == "pca":
        pca = PCA(n_components=2, random_state=seed, svd_solver="full").fit(x)
        coords = pca.transform(x)
        info = {"explained_variance_ratio": [float(r) for r in pca.explained_variance_ratio_]}
        return Projection(coords, method, int(seed), info)

    from sklearn.manifold import TSNE

    used = tsne_perplexity(x.shape[0], perplexity)
    components = min(50, x.shape[0], x.shape[1])
    if components < x.shape[1]:  # the usual PCA reduction first: faster, less noise
        x = PCA(n_components=components, random_state=seed, svd_solver="full").fit_transform(x)
    from threadpoolctl import threadpool_limits

    tsne = TSNE(n_components=2, perplexity=used, init="pca", learning_rate="auto",
                random_state=seed)
    with threadpool_limits(limits=threads, user_api="openmp"):
        coords = tsne.fit_transform(x)
    info = {"perplexity": used, "requested_perplexity": float(perplexity),
            "kl_divergence": float(tsne.kl_divergence_), "pca_components": int(components)}
    return Projection(coords, method, int(seed), info)


def silhouette(points, labels) -> float | None:
    """Silhouette score of the classes (Euclidean; -1..1, higher = better separated), or None
    when it is undefined (fewer than two classes, or a class per event)."""
    from sklearn.metrics import silhouette_score

    labels = np.asarray(labels)
    n_labels = np.unique(labels).size
    if not 2 <= n_labels <= labels.size - 1:
        return None
    return float(silhouette_score(np.asarray(points, dtype=np.float64), labels))


def knn_accuracy(points, labels, *, k: int = 5, folds: int = 5, seed: int = 0) -> dict:
    """Cross-validated accuracy of a k-nearest-neighbour classifier in embedding space.

    Stratified folds (shuffled with ``seed``); ``folds`` is lowered to the smallest class size
    and ``k`` to the smallest training fold when the set is small.

    Returns
    -------
    dict
        ``accuracy`` (None when no fold split is possible), ``k``, ``folds`` (as used) and
        ``chance`` (the majority-class fraction: what always guessing it scores).
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    labels = np.asarray(labels)
    counts = np.unique(labels, return_counts=True)[1]
    chance = float(counts.max() / labels.size) if labels.size else None
    folds = int(min(folds, counts.min())) if counts.size else 0
    if counts.size < 2 or folds < 2:
        return {"accuracy": None, "k": int(k), "folds": folds, "chance": chance}
    k = int(max(1, min(k, labels.size - labels.size // folds - 1)))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_score(KNeighborsClassifier(n_neighbors=k), np.asarray(points), labels,
                             cv=splitter)
    return {"accuracy": float(scores.mean()), "k": k, "folds": folds, "chance": chance}


def binary_neighbourhood(points, labels, dchi2_pspl, *, k: int = 5,
                         threshold: float = DETECTABILITY_THRESHOLD) -> dict:
    """Where binaries sit: the share of PSPL events among each binary's ``k`` nearest
    neighbours, for binaries that are detectable (``dchi2_pspl > threshold``) and not.

    Binaries indistinguishable from a single lens are expected to embed among the PSPL events;
    this puts a number on it.

    Returns
    -------
    dict
        ``k``, ``threshold``, and for ``detectable`` and ``undetectable``: ``n`` and
        ``pspl_neighbour_fraction`` (None for an empty group or without detectability).
    """
    from sklearn.neighbors import NearestNeighbors

    points = np.asarray(points, dtype=np.float64)
    labels = np.asarray(labels)
    dchi2 = np.asarray(dchi2_pspl, dtype=np.float64)
    binary = labels == CLASS_NAMES.index("binary")
    out = {"k": int(k), "threshold": float(threshold)}
    k = int(min(k, labels.size - 1))
    fractions = np.full(labels.size, np.nan)
    if k >= 1 and binary.any():
        neighbours = NearestNeighbors(n_neighbors=k + 1).fit(points)
        index = neighbours.kneighbors(points[binary], return_distance=False)[:, 1:]
        fractions[binary] = np.mean(labels[index] == CLASS_NAMES.index("pspl"), axis=1)
    finite = binary & np.isfinite(dchi2)
    for name, group in (("detectable", finite & (dchi2 > threshold)),
                        ("undetectable", finite & (dchi2 <= threshold))):
        out[name] = {"n": int(group.sum()),
                     "pspl_neighbour_fraction": _nanmean(fractions[group]) if group.any()
                     else None}
    return out


def embedding_metrics(embeddings, labels, *, k: int = 5, folds: int = 5, seed: int = 0) -> dict:
    """How well the classes separate in the (standardised) embedding space.

    Returns
    -------
    dict
        ``n_events``, ``dimension``, ``silhouette`` (:func:`silhouette`), ``knn``
        (:func:`knn_accuracy`), ``pca_explained_variance_ratio`` (first 10 components) and
        ``pca_components_90`` (components needed for 90 % of the variance).
    """
    from sklearn.decomposition import PCA

    x = standardize(_check_embeddings(embeddings))
    labels = np.asarray(labels)
    if labels.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},), got {labels.shape}")
    ratio = PCA(svd_solver="full").fit(x).explained_variance_ratio_
    return {
        "n_events": int(x.shape[0]),
        "dimension": int(x.shape[1]),
        "silhouette": silhouette(x, labels),
        "knn": knn_accuracy(x, labels, k=k, folds=folds, seed=seed),
        "pca_explained_variance_ratio": [float(r) for r in ratio[:10]],
        "pca_components_90": int(np.searchsorted(np.cumsum(ratio), 0.9) + 1),
    }


def embedding_table(store: LightCurveStore, rows: Sequence[int]):
    """Parameters to colour and label embedded events by, one row per event (a DataFrame).

    Columns: the parameter table's (:meth:`microlens.store.LightCurveStore.params_table`), then
    ``label``, ``class``, ``abs_u_0`` (|u_0|; NaN for flat events, whose drawn u_0 has no lens
    behind it), ``log10_q`` (NaN unless binary) and ``log10_dchi2_pspl`` (log10 of
    ``max(dchi2_pspl, 1)``; NaN unless binary or without detectability).
    """
    from .predictions import require_test_split

    rows = require_test_split(store, rows)
    table = store.params_table(rows)
    labels = table["label"].to_numpy().astype(int)
    table["class"] = np.asarray(CLASS_NAMES)[labels]
    table["abs_u_0"] = np.where(labels >= 1, np.abs(table["u_0"].to_numpy()), np.nan)
    binary = labels == CLASS_NAMES.index("binary")
    with np.errstate(invalid="ignore", divide="ignore"):
        table["log10_q"] = np.where(binary, np.log10(table["q"].to_numpy()), np.nan)
        table["log10_dchi2_pspl"] = np.where(
            binary, np.log10(np.maximum(table["dchi2_pspl"].to_numpy(), 1.0)), np.nan)
    return table


def embedding_summary(embeddings, table, projections: Sequence[Projection], *, seed: int = 0,
                      k: int = 5, folds: int = 5, predicted=None) -> dict:
    """The key numbers of an embedding study (JSON-ready).

    Parameters
    ----------
    embeddings : array ``(E, D)``
    table : DataFrame
        :func:`embedding_table` of the same events, same order.
    projections : sequence of Projection
    seed, k, folds
        As :func:`knn_accuracy`.
    predicted : array ``(E,)``, optional
        The model's final predicted labels, for ``model_accuracy`` beside the k-NN accuracy.

    Returns
    -------
    dict
        ``n_events``, ``class_counts``, ``split`` ('test'), ``seed``, the
        :func:`embedding_metrics` keys, ``binary_neighbourhood``
        (:func:`binary_neighbourhood` in the standardised space), ``model_accuracy`` and
        ``projections``: per method its ``info`` plus ``silhouette_2d`` (in the 2-D map).
    """
    from .predictions import EVALUATION_SPLIT

    labels = table["label"].to_numpy().astype(int)
    x = standardize(_check_embeddings(embeddings))
    summary = {
        "split": EVALUATION_SPLIT,
        "seed": int(seed),
        "class_counts": {name: int(np.sum(labels == i)) for i, name in enumerate(CLASS_NAMES)},
        **embedding_metrics(embeddings, labels, k=k, folds=folds, seed=seed),
        "binary_neighbourhood": binary_neighbourhood(x, labels, table["dchi2_pspl"].to_numpy(),
                                                     k=k),
        "model_accuracy": (float(np.mean(np.asarray(predicted) == labels))
                           if predicted is not None else None),
        "projections": {p.method: {**p.info, "seed": p.seed,
                                   "silhouette_2d": silhouette(p.coords, labels)}
                        for p in projections},
    }
    return summary


# --------------------------------------------------------------------------------------------
# (new sections go above this line)
# --------------------------------------------------------------------------------------------

__all__ = [
    "EventAttention", "PROJECTION_METHODS", "Projection", "RECEIVED_NORMALIZATIONS",
    "SIGNAL_REGIONS", "attention_distance", "attention_entropy", "attention_maps",
    "attention_on_region", "attention_received", "attention_statistics", "binary_neighbourhood",
    "dense_attention", "embedding_metrics", "embedding_probabilities", "embedding_summary",
    "embedding_table", "event_embeddings", "event_records", "key_positions", "knn_accuracy",
    "project_embeddings", "projection_methods", "run_dataset", "signal_region", "silhouette",
    "standardize", "tsne_perplexity", "uniform_distance", "uniform_window_weights",
    "visible_keys",
]  # fmt: skip
