"""Reconstructions of a latent model (kind ``rnn_vae``) on the test split: how well its decoder
reproduces each class, and how well the reconstruction error separates the classes as an
anomaly score (``05_embedding``).

The error of an event is the mean over its observations of the squared residual of the normalised
flux feature ``asinh((F - b) / s)`` (:func:`microlens.models.rnn_vae.reconstruction_errors`):
photometric noise alone costs ~0.6 (0.63 where the errors equal their median), a missed peak or
caustic crossing far more. A flat curve is the easiest to reconstruct and a sharp caustic crossing
the hardest, so the error, which never saw a label, ranks curves by the structure they carry; its
ROC AUC says how well that ranking finds lensing events among no-event curves (and binaries among
single-lens events).

Kinds without a decoder are refused with a reason (:func:`no_decoder_reason`) that the
notebook prints and records instead of figures.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from microlens.core.classes import CLASS_NAMES
from microlens.data.store import LightCurveStore

ERROR_DESCRIPTION = ("mean over the event's observations of the squared residual of the "
                     "normalised flux feature asinh((F - b) / s)")
"""What the reconstruction error (the anomaly score) is, in words (recorded in summaries)."""

AUC_PAIRS = {"lensing_vs_no_event": ((1, 2), (0,)), "binary_vs_pspl": ((2,), (1,))}
"""ROC AUCs of the error in :func:`reconstruction_summary`: name -> (positive labels, negative
labels); a higher error is taken as the positive (anomalous) answer."""


def _model(source):
    """A model from a run directory, or the model given."""
    if isinstance(source, (str, os.PathLike)):
        from microlens.models.registry import load_model

        return load_model(source)
    return source


def no_decoder_reason(source) -> str | None:
    """Why ``source`` cannot reconstruct light curves, or None when it can.

    Parameters
    ----------
    source : path or model
        A run directory (its kind is read from ``config.json``, nothing is loaded) or a model.

    Returns
    -------
    str or None
        E.g. ``"a 'gru' model has no decoder to reconstruct light curves with; kinds with one:
        rnn_vae"``.
    """
    from microlens.models.rnn_vae import DECODER_KINDS, has_decoder, require_decoder

    if isinstance(source, (str, os.PathLike)):
        from microlens.evaluation.analysis.common import run_model_kind

        kind = run_model_kind(source)
        if kind in DECODER_KINDS:
            return None
        return (f"a {kind!r} model has no decoder to reconstruct light curves with; kinds "
                f"with one: {', '.join(DECODER_KINDS)}")
    if has_decoder(source):
        return None
    try:
        require_decoder(source)
    except ValueError as error:
        return str(error)
    return None  # pragma: no cover - require_decoder raised above


def _test_batches(model, store: LightCurveStore, rows, batch_size: int, device, desc: str,
                  progress: bool):
    """``(rows, batch)`` over test rows, checked as
    :func:`microlens.evaluation.predictions.forward_batches`
    checks them, the batch on the model's device (the model moved to ``device``)."""
    import torch
    from tqdm.auto import tqdm

    from microlens.core.devices import local_device
    from microlens.models.holdout import require_test_split

    rows = require_test_split(store, rows)
    if rows.size == 0:
        raise ValueError("no events to reconstruct")
    store.require_valid(rows, f"{desc} reads test events")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    device = device if isinstance(device, torch.device) else local_device(device)
    model.to(device)
    for start in tqdm(range(0, rows.size, int(batch_size)), desc=desc, unit="batch",
                      disable=not progress):
        part = rows[start : start + int(batch_size)]
        batch = store.batch(part)
        yield part, {k: batch[k].to(device) for k in ("times", "flux", "flux_err", "mask")}


def event_reconstruction_errors(source, store: LightCurveStore, rows: Sequence[int], *,
                                batch_size: int = 64, device="cpu",
                                progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per test event, the reconstruction error and the mean KL of its latent.

    Parameters
    ----------
    source : path or RecurrentVAE
        A run directory of a kind with a decoder, or such a model.
    store : LightCurveStore
    rows : sequence of int
        Test-split store rows (others raise :class:`microlens.models.holdout.SplitError`).
    batch_size : int
        Events per pass (results do not depend on it).
    device : str or torch.device
        ``'auto'``, ``'cpu'`` or ``'cuda'``.
    progress : bool
        Show a progress bar.

    Returns
    -------
    errors : ndarray ``(E,)`` float64
        :func:`microlens.models.rnn_vae.reconstruction_errors`, in the order of ``rows``.
    kl : ndarray ``(E,)`` float64
        Mean over each event's observations of ``KL(q(z_k) || N(0, I))``.
    """
    from microlens.models.rnn_vae import reconstruct, require_decoder

    model = require_decoder(_model(source))
    errors, kl = [], []
    for _, batch in _test_batches(model, store, rows, batch_size, device, "reconstruct",
                                  progress):
        result = reconstruct(model, batch["times"], batch["flux"], batch["flux_err"],
                             batch["mask"], check_inputs=False)
        errors.append(result.errors)
        kl.append(result.kl)
    return np.concatenate(errors), np.concatenate(kl)


def event_latents(source, store: LightCurveStore, rows: Sequence[int], *, batch_size: int = 64,
                  device="cpu", progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The latent mean after each test event's last observation, and the model's calibrated
    final class probabilities (the embedding of a latent kind, :func:`embed_run`).

    Parameters
    ----------
    source : path or RecurrentVAE
    store, rows, batch_size, device, progress
        As :func:`event_reconstruction_errors`.

    Returns
    -------
    means : ndarray ``(E, latent_dim)`` float32
        ``mu`` of the final observation's latent, in the order of ``rows``.
    probabilities : ndarray ``(E, n_classes)``
        The final answer's calibrated probabilities (temperature at the event's length).
    """
    import torch

    from microlens.core.metrics import softmax
    from microlens.evaluation.predictions import forward_batches
    from microlens.models.base import final_logits
    from microlens.models.rnn_vae import require_decoder

    model = require_decoder(_model(source))
    means, probabilities = [], []
    for _, batch, out in forward_batches(model, store, rows, batch_size=batch_size,
                                         device=device, desc="latent", progress=progress,
                                         return_latent=True):
        mask = batch["mask"].to(out["logits"].device)
        means.append(final_logits(out["latent_mean"], mask).float().cpu().numpy())
        with torch.no_grad():
            logits = model.calibrate(final_logits(out["logits"], mask).float(),
                                     mask.sum(dim=1).cpu())
        probabilities.append(softmax(logits.cpu().numpy()))
    return np.concatenate(means), np.concatenate(probabilities)


def anomaly_auc(errors, labels, positive: Sequence[int], negative: Sequence[int]
                ) -> float | None:
    """ROC AUC of the error as a score for events of classes ``positive`` against those of
    ``negative`` (others are left out); None when either side is empty."""
    from sklearn.metrics import roc_auc_score

    errors, labels = np.asarray(errors, dtype=np.float64), np.asarray(labels)
    pos, neg = np.isin(labels, positive), np.isin(labels, negative)
    if not pos.any() or not neg.any():
        return None
    chosen = pos | neg
    return float(roc_auc_score(pos[chosen].astype(int), errors[chosen]))


def _class_statistics(values: np.ndarray, kl: np.ndarray) -> dict:
    if values.size == 0:
        return {"n": 0, "mean": None, "median": None, "q25": None, "q75": None, "mean_kl": None}
    q25, median, q75 = np.percentile(values, [25, 50, 75])
    return {"n": int(values.size), "mean": float(values.mean()), "median": float(median),
            "q25": float(q25), "q75": float(q75), "mean_kl": float(kl.mean())}


def reconstruction_summary(source, store: LightCurveStore, rows: Sequence[int], *,
                           batch_size: int = 64, device="cpu", progress: bool = False,
                           errors=None, kl=None) -> dict:
    """Reconstruction errors by class and how well they separate the classes (JSON-ready).

    Parameters
    ----------
    source : path or RecurrentVAE
        A run directory of a kind with a decoder, or such a model (another kind raises
        ValueError; :func:`no_decoder_reason` says why beforehand).
    store : LightCurveStore
    rows : sequence of int
        Test-split store rows.
    batch_size, device, progress
        As :func:`event_reconstruction_errors`.
    errors, kl : array ``(E,)``, optional
        Per-event errors and KL already computed for ``rows`` (then the model does not run).

    Returns
    -------
    dict
        ``available`` (True), ``split``, ``model_kind``, ``latent_dim``, the loss weights
        ``reconstruction_weight`` and ``kl_weight``, ``n_events``, ``error`` (what the error
        is), ``by_class`` (per class name: ``n``, ``mean``, ``median``, ``q25``, ``q75`` of the
        error and ``mean_kl``; None where a class has no event), ``anomaly_auc`` (per
        :data:`AUC_PAIRS` name; None when a side is empty), ``mean_error``, and the events:
        ``rows``, ``labels``, ``errors`` (lists in the order of ``rows``).
    """
    from microlens.models.holdout import EVALUATION_SPLIT, require_test_split

    rows = require_test_split(store, rows)
    model = _model(source)
    if errors is None or kl is None:
        errors, kl = event_reconstruction_errors(model, store, rows, batch_size=batch_size,
                                                 device=device, progress=progress)
    errors, kl = np.asarray(errors, dtype=np.float64), np.asarray(kl, dtype=np.float64)
    if errors.shape != (rows.size,) or kl.shape != (rows.size,):
        raise ValueError(f"errors and kl must have shape ({rows.size},), one per row; got "
                         f"{errors.shape} and {kl.shape}")
    labels = np.asarray(store.labels[rows], dtype=np.int64)
    config = model.config
    return {
        "available": True,
        "split": EVALUATION_SPLIT,
        "model_kind": config.kind,
        "latent_dim": int(config.latent_dim),
        "reconstruction_weight": float(config.reconstruction_weight),
        "kl_weight": float(config.kl_weight),
        "n_events": int(rows.size),
        "error": ERROR_DESCRIPTION,
        "mean_error": float(errors.mean()),
        "by_class": {name: _class_statistics(errors[labels == c], kl[labels == c])
                     for c, name in enumerate(CLASS_NAMES)},
        "anomaly_auc": {name: anomaly_auc(errors, labels, pos, neg)
                        for name, (pos, neg) in AUC_PAIRS.items()},
        "rows": [int(r) for r in rows],
        "labels": [int(label) for label in labels],
        "errors": [float(e) for e in errors],
    }


def example_rows(store: LightCurveStore, rows: Sequence[int], per_class: int = 3,
                 seed: int = 0) -> np.ndarray:
    """Up to ``per_class`` of ``rows`` of each class, drawn with ``seed`` (sorted by class,
    then row): the events whose reconstructions are drawn."""
    from microlens.models.holdout import require_test_split

    rows = require_test_split(store, rows)
    if int(per_class) < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class!r}")
    rng = np.random.default_rng(seed)
    labels = np.asarray(store.labels[rows])
    chosen = []
    for c in range(len(CLASS_NAMES)):
        pool = rows[labels == c]
        take = min(int(per_class), pool.size)
        chosen.append(np.sort(rng.choice(pool, size=take, replace=False)) if take
                      else pool[:0])
    return np.concatenate(chosen).astype(np.int64)


def reconstruction_examples(source, store: LightCurveStore, rows: Sequence[int], *,
                            device="cpu") -> list[dict]:
    """The reconstruction of each of ``rows`` (test events), for
    :func:`microlens.reports.reconstruction_examples_figure`.

    Returns
    -------
    list of dict
        Per row, in order: ``event`` (:meth:`~microlens.data.store.LightCurveStore.event`),
        ``reconstruction`` (flux units at the event's times, float64), ``reconstructed_feature``
        and ``observed_feature`` (normalised units) and ``error`` (the event's score).
    """
    from microlens.models.rnn_vae import reconstruct, require_decoder

    model = require_decoder(_model(source))
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return []
    batches = _test_batches(model, store, rows, max(rows.size, 1), device, "reconstruct",
                            False)
    _, batch = next(batches)
    result = reconstruct(model, batch["times"], batch["flux"], batch["flux_err"], batch["mask"],
                         check_inputs=False)
    errors = result.errors
    examples = []
    for i, row in enumerate(rows):
        n = int(result.mask[i].sum())
        examples.append({"event": store.event(int(row)),
                         "reconstruction": result.flux[i, :n],
                         "reconstructed_feature": result.reconstructed[i, :n],
                         "observed_feature": result.observed[i, :n],
                         "error": float(errors[i])})
    return examples


def reconstruction_report(source, store: LightCurveStore, rows: Sequence[int], *,
                          per_class: int = 3, seed: int = 0, batch_size: int = 64,
                          device="cpu", progress: bool = False) -> tuple[dict, list[dict]]:
    """Everything ``05_embedding`` shows and records about reconstructions, for any kind.

    Parameters
    ----------
    source : path or model
        A run directory or a model of any kind.
    store : LightCurveStore
    rows : sequence of int
        The test events studied.
    per_class : int
        Events of each class whose reconstructions are drawn (:func:`example_rows`).
    seed : int
        Seed of that choice.
    batch_size, device, progress
        As :func:`event_reconstruction_errors`.

    Returns
    -------
    summary : dict
        For a kind without a decoder ``{"available": False, "reason": ...}``
        (:func:`no_decoder_reason`); otherwise :func:`reconstruction_summary` plus
        ``example_rows``, ``per_class`` and ``seed``.
    examples : list of dict
        :func:`reconstruction_examples` of the example rows (empty without a decoder).
    """
    reason = no_decoder_reason(source)
    if reason is not None:
        return {"available": False, "reason": reason}, []
    model = _model(source)
    summary = reconstruction_summary(model, store, rows, batch_size=batch_size, device=device,
                                     progress=progress)
    shown = example_rows(store, rows, per_class, seed)
    summary.update({"example_rows": [int(r) for r in shown], "per_class": int(per_class),
                    "seed": int(seed)})
    return summary, reconstruction_examples(model, store, shown, device=device)


__all__ = [
    "AUC_PAIRS", "ERROR_DESCRIPTION", "anomaly_auc", "event_latents",
    "event_reconstruction_errors", "example_rows", "no_decoder_reason",
    "reconstruction_examples", "reconstruction_report", "reconstruction_summary",
]  # fmt: skip
