"""What a model and the classical peer answer on light-curve segments.

:func:`model_answers` gives, for each segment, the class probabilities ``(n, 3)`` after every
observation of it, for any kind of :data:`microlens.models.registry.KINDS`:

* the neural kinds run over batches of segments of similar length (sorted by length, padded
  at the end, at most :data:`BATCH_OBSERVATIONS` padded observations a batch). They are
  causal, so the answer after observation ``k`` uses observations ``<= k`` only and the padding
  after a segment changes nothing of its answers;
* the ``features`` kind answers at its update fractions of each segment (PSPL-fit features of
  the prefix, :func:`microlens.models.curve_features.prefix_features`, on ``workers`` processes),
  each answer held until the next, uniform before the first: what its ``predict_proba`` gives.

:func:`peer_answers` gives the classical peer's class of each whole segment
(:class:`microlens.models.peer.ClassicalPeer`, its robust options), its fits on ``workers``
processes. Neither result depends on the number of workers or on the batching.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from microlens.models.peer import MIN_OBSERVATIONS, ClassicalPeer, light_curve_features

BATCH_OBSERVATIONS = 65_536
"""Most padded observations (events x longest curve) per batch of the neural kinds."""

PEER_FIELDS = ("n", "dchi2_event", "excess", "anomaly", "error_scale", "outliers")
"""The peer's features kept per segment beside its class."""


class Segment:
    """One segment to classify: ``times`` [days after its first observation, float64],
    ``flux`` [its own baseline units] and ``flux_err``."""

    __slots__ = ("flux", "flux_err", "times")

    def __init__(self, times, flux, flux_err):
        times = np.asarray(times, dtype=np.float64)
        self.times = times - times[0] if times.size else times
        self.flux = np.asarray(flux, dtype=np.float64)
        self.flux_err = np.asarray(flux_err, dtype=np.float64)

    def __len__(self) -> int:
        return int(self.times.size)


class _Segments:
    """The segments as a store for :func:`microlens.models.curve_features.prefix_features`."""

    def __init__(self, segments: Sequence[Segment]):
        self.segments = segments

    def __len__(self) -> int:
        return len(self.segments)

    def event(self, row: int) -> dict:
        s = self.segments[row]
        return {"times": s.times, "flux": s.flux, "flux_err": s.flux_err}


def is_features(model) -> bool:
    """Whether ``model`` is of the ``features`` kind (answers at update fractions)."""
    return getattr(model, "kind", None) == "features" or \
        getattr(getattr(model, "config", None), "kind", None) == "features"


def _batches(lengths: np.ndarray, budget: int) -> list[np.ndarray]:
    """Indices of the segments, by increasing length, in batches of at most ``budget`` padded
    observations (at least one segment each)."""
    order = np.argsort(lengths, kind="stable")
    batches, current = [], []
    for i in order:
        if current and (len(current) + 1) * int(lengths[i]) > budget:
            batches.append(np.asarray(current))
            current = []
        current.append(int(i))
    if current:
        batches.append(np.asarray(current))
    return batches


def _probabilities(model, times, flux, flux_err, mask) -> np.ndarray:
    """Calibrated probabilities ``(B, N, C)`` in float64, the softmax taken in float64.

    In float32 a confident answer rounds ``1 - P(no event)`` to exactly 1 once ``P(no event)``
    falls below ~6e-8, and the threshold curve could no longer rank those segments; in float64
    ``P(no event)`` itself keeps its digits down to ~1e-308. Objects without
    ``predict_logits`` and ``calibrate`` (test doubles) give their ``predict_proba``.
    """
    if hasattr(model, "predict_logits") and hasattr(model, "calibrate"):
        logits = model.calibrate(model.predict_logits(times, flux, flux_err, mask))
        return logits.double().softmax(dim=-1).cpu().numpy()
    proba = model.predict_proba(times, flux, flux_err, mask, check_intervals=False)
    return proba.double().cpu().numpy()


def _neural_answers(model, segments: Sequence[Segment], budget: int,
                    progress: bool) -> list[np.ndarray]:
    import torch
    from tqdm.auto import tqdm

    from microlens.models.inputs import IntervalRangeWarning

    lengths = np.array([len(s) for s in segments], dtype=np.int64)
    device = next(model.parameters()).device
    out: list[np.ndarray | None] = [None] * len(segments)
    batches = _batches(lengths, budget)
    for batch in tqdm(batches, desc="model", unit="batch", disable=not progress):
        times, flux, err, mask = padded_curves(
            [(segments[i].times, segments[i].flux, segments[i].flux_err) for i in batch])
        with warnings.catch_warnings():  # real intervals leave the training range: reported
            warnings.simplefilter("ignore", IntervalRangeWarning)  # by the record, not here
            inputs = [torch.as_tensor(a, device=device) for a in (times, flux, err, mask)]
            proba = _probabilities(model, *inputs)
        for j, i in enumerate(batch):
            out[i] = proba[j, : lengths[i]].astype(np.float64)
    return out  # type: ignore[return-value]


def padded_curves(curves: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Curves ``(times, flux, flux_err)`` as padded arrays ``(len(curves), longest)`` and the
    mask; padding has flux and error 1 and increasing times (valid for every model's checks)."""
    width = max(len(c[0]) for c in curves)
    times = np.zeros((len(curves), width))
    flux = np.ones((len(curves), width), np.float32)
    err = np.ones((len(curves), width), np.float32)
    mask = np.zeros((len(curves), width), bool)
    for j, (t, f, e) in enumerate(curves):
        n = len(t)
        times[j, :n], flux[j, :n], err[j, :n], mask[j, :n] = t, f, e, True
        times[j, n:] = t[-1] + np.arange(1, width - n + 1)  # padding, increasing
    return times, flux, err, mask


def _features_answers(model, segments: Sequence[Segment], workers: int,
                      progress: bool) -> list[np.ndarray]:
    from microlens.models.curve_features import prefix_features
    from microlens.models.holdout import observations_seen

    fractions = tuple(model.update_fractions)
    lengths = np.array([len(s) for s in segments], dtype=np.int64)
    features = prefix_features(_Segments(segments), np.arange(len(segments)), fractions,
                               workers=workers, progress=progress)
    logits = model.predict_log_proba_features(features)  # (E, fractions, C)
    ends = np.stack([observations_seen(lengths, f) for f in fractions], axis=1)  # seen
    logits[ends < MIN_OBSERVATIONS] = 0.0  # too few points to fit: the uniform answer
    logits = logits / float(model.temperature)
    proba = np.exp(logits - logits.max(axis=-1, keepdims=True))
    proba /= proba.sum(axis=-1, keepdims=True)
    out = []
    n_classes = proba.shape[-1]
    for i, n in enumerate(lengths):
        series = np.full((int(n), n_classes), 1.0 / n_classes)
        for j in range(len(fractions)):
            series[ends[i, j] - 1:] = proba[i, j]
        out.append(series)
    return out


def model_answers(model, segments: Sequence[Segment], *, workers: int = 1,
                  batch_observations: int = BATCH_OBSERVATIONS,
                  progress: bool = False) -> list[np.ndarray]:
    """Class probabilities ``(len(segment), 3)`` after every observation of each segment.

    Parameters
    ----------
    model
        A loaded model of any kind (:func:`microlens.models.registry.load_model`), or any object
        with the same ``predict_proba(times, flux, flux_err, mask, check_intervals=False)``
        and a ``parameters()`` iterator (its device).
    segments : sequence of Segment
        Each at least one observation.
    workers : int
        Processes for the ``features`` kind's prefix fits (neural kinds use torch's threads).
    batch_observations : int
        Most padded observations per batch of a neural kind (memory, not results).
    progress : bool
        Progress bars.

    Returns
    -------
    list of ndarray
        float64, one per segment, in the order given.
    """
    if not segments:
        return []
    if is_features(model):
        return _features_answers(model, segments, workers, progress)
    return _neural_answers(model, segments, int(batch_observations), progress)


def _peer_chunk(events: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                options: dict) -> np.ndarray:
    """Worker: the peer's features (:data:`PEER_FIELDS`) of a few segments,
    ``(len(events), len(PEER_FIELDS))``."""
    out = np.zeros((len(events), len(PEER_FIELDS)))
    for i, (times, flux, err) in enumerate(events):
        values = light_curve_features(times, flux, err, **options)
        out[i] = [values[k] for k in PEER_FIELDS]
    return out


def peer_answers(peer: ClassicalPeer, segments: Sequence[Segment], *, workers: int = 1,
                 progress: bool = False) -> list[dict]:
    """The classical peer's answer on each whole segment.

    Returns
    -------
    list of dict
        ``{"class": 0/1/2, **features}`` (:data:`PEER_FIELDS`; NaN as None), in order.
    """
    from tqdm.auto import tqdm

    from microlens.models.peer import parallel_row_chunks

    values = np.zeros((len(segments), len(PEER_FIELDS)))
    rows = np.arange(len(segments))
    bar = tqdm(total=len(segments), desc="classical peer", unit="seg", disable=not progress)

    def load(row):
        s = segments[int(row)]
        return s.times, s.flux, s.flux_err

    try:
        if workers <= 1 or len(segments) < 2:
            for i in rows:
                values[i] = _peer_chunk([load(i)], peer.options)[0]
                bar.update(1)
        elif len(segments):
            parallel_row_chunks(_peer_chunk, load, rows, (peer.options,), workers, values, bar)
    finally:
        bar.close()
    table = np.zeros(len(segments), dtype=[(k, np.float64) for k in PEER_FIELDS])
    for j, name in enumerate(PEER_FIELDS):
        table[name] = values[:, j]
    classes = peer.predict(table) if len(segments) else np.zeros(0, np.int64)
    return [{"class": int(c), **{k: _plain(k, row[k]) for k in PEER_FIELDS}}
            for c, row in zip(classes, table, strict=True)]


def _plain(name: str, value) -> float | int | None:
    value = float(value)
    if not math.isfinite(value):
        return None
    return int(value) if name in ("n", "outliers") else value


__all__ = ["BATCH_OBSERVATIONS", "PEER_FIELDS", "Segment", "is_features", "model_answers",
           "padded_curves", "peer_answers"]
