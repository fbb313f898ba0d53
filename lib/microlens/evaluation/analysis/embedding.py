"""Embeddings of a trained classifier: the pooled embedding behind each final prediction (the
standardised curve features for the ``features`` kind, which learns none), 2-D projections
(PCA, t-SNE) and how well the classes separate in it. A masked pretraining run
(:mod:`microlens.training.pretrain`) is embedded too: the pooled states of its encoder, which never
saw a
label, with no predictions beside them."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from microlens.core.classes import CLASS_NAMES
from microlens.data.store import LightCurveStore
from microlens.data.summaries import DETECTABILITY_THRESHOLD
from microlens.evaluation.analysis.common import _nanmean

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
    model : CausalClassifier
        A neural model of any kind (transformer, cnn, gru); the ``features`` kind learns no
        embedding (:func:`feature_embeddings`, :func:`embed_run`).
    store : LightCurveStore
    rows : sequence of int
        Test-split store rows (others raise :class:`microlens.models.holdout.SplitError`).
    batch_size : int
        Events per forward pass (results do not depend on it).
    device : str or torch.device
    progress : bool
        Show a progress bar.

    Returns
    -------
    ndarray ``(len(rows), 2 * d_model)`` float32, in the order of ``rows``.
    """
    from microlens.evaluation.predictions import forward_batches
    from microlens.models.base import final_logits

    if getattr(getattr(model, "config", None), "kind", None) == "features":
        raise ValueError("the 'features' kind learns no embedding: use feature_embeddings (its "
                         "standardised curve features) or embed_run")
    parts = [final_logits(out["embedding"], batch["mask"].to(out["embedding"].device))
             .float().cpu().numpy()
             for _, batch, out in forward_batches(model, store, rows, batch_size=batch_size,
                                                  device=device, desc="embed", progress=progress,
                                                  return_embedding=True)]
    return np.concatenate(parts)


EMBEDDING_SOURCES = ("pooled", "features", "latent", "pretrained_encoder")
"""What an embedding is made of: ``pooled`` (a neural kind's running mean and maximum of its
encoder states, :func:`event_embeddings`), ``features`` (the ``features`` kind's curve
features, standardised, :func:`feature_embeddings`), ``latent`` (the ``rnn_vae``'s latent
mean after the last observation, :func:`microlens.evaluation.analysis.event_latents`) or
``pretrained_encoder`` (the pooled states of a masked pretraining run's encoder, trained
without labels: :func:`embed_pretrained`)."""


def feature_embeddings(store: LightCurveStore, rows: Sequence[int], *, workers: int = 1,
                       progress: bool = False) -> np.ndarray:
    """The curve features of each test event's whole light curve, standardised: the
    embedding of the ``features`` kind, which has no learned one.

    The features are those the ``features`` kind classifies
    (:data:`microlens.models.curve_features.FEATURE_NAMES`, PSPL-fit and summary statistics) at its
    final update, the whole curve (:func:`microlens.models.curve_features.prefix_features` at
    fraction 1). Each feature is standardised over the events (:func:`standardize`); a value that is
    undefined for an event (NaN: no PSPL fit, too few points) is then set to 0, the mean, so it
    pulls the event neither way.

    Parameters
    ----------
    store : LightCurveStore
    rows : sequence of int
        Test-split store rows (others raise :class:`microlens.models.holdout.SplitError`).
    workers : int
        Processes for the fits (results do not depend on it).
    progress : bool
        Show a progress bar.

    Returns
    -------
    ndarray ``(len(rows), len(FEATURE_NAMES))`` float64, in the order of ``rows``.
    """
    from microlens.models.curve_features import prefix_features
    from microlens.models.holdout import require_test_split

    rows = require_test_split(store, rows)
    values = prefix_features(store, rows, (1.0,), workers=workers, progress=progress)[:, 0]
    values = np.where(np.isfinite(values), values, np.nan)
    with warnings.catch_warnings():  # a feature undefined for every event is all NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
    with np.errstate(invalid="ignore"):
        scaled = (values - mean) / np.where(std > 0, std, 1.0)
    return np.where(np.isfinite(scaled), scaled, 0.0)


NO_LABELS_REASON = ("the pretrained encoder was never trained with labels (masked flux "
                    "reconstruction only): its classification head is untrained, so there are "
                    "no model predictions; fine-tune it (02_train with model_kind 'masked' and "
                    "this run as pretrained_run) for some")
"""Why a pretraining run's embeddings come without predictions (:attr:`RunEmbeddings.
no_predictions_reason`)."""


@dataclass
class RunEmbeddings:
    """Final embeddings of test events and the model's final answers for them
    (:func:`embed_run`).

    Attributes
    ----------
    values : ndarray ``(E, D)``
        One embedding per event, in the order of the rows given.
    probabilities : ndarray ``(E, n_classes)`` or None
        The model's calibrated final class probabilities of the same events; None when the
        model makes none (a pretraining run's encoder, whose head never saw a label).
    model_kind : str
        The run's model kind.
    source : str
        :data:`EMBEDDING_SOURCES`: ``pooled``, ``features``, ``latent`` or
        ``pretrained_encoder``.
    description : str
        What the embedding is, in words (for the notebook).
    no_predictions_reason : str or None
        Why ``probabilities`` is None (:data:`NO_LABELS_REASON`); None when there are some.
    """

    values: np.ndarray
    probabilities: np.ndarray | None
    model_kind: str
    source: str
    description: str
    no_predictions_reason: str | None = None

    @property
    def predicted(self) -> np.ndarray | None:
        """The final predicted label of each event ``(E,)``, or None without predictions."""
        return None if self.probabilities is None else self.probabilities.argmax(axis=1)

    @property
    def confidence(self) -> np.ndarray | None:
        """The final probability of each event's predicted label ``(E,)``, or None without
        predictions."""
        return None if self.probabilities is None else self.probabilities.max(axis=1)


def _saved_config(run_dir) -> dict | None:
    """A run directory's ``config.json``, or None when it has none."""
    import json

    from microlens.core.paths import resolve_path

    config_file = resolve_path(run_dir) / "config.json"
    if not config_file.is_file():
        return None
    return json.loads(config_file.read_text(encoding="utf-8"))


def is_pretraining_run(run_dir) -> bool:
    """Whether ``run_dir`` is a masked pretraining run
    (:func:`microlens.training.pretrain.pretrain`):
    its ``config.json`` has a ``"pretrain"`` section. False for a training run of
    :func:`microlens.training.train.train` and for a directory without ``config.json``."""
    saved = _saved_config(run_dir)
    return saved is not None and "pretrain" in saved


def embedding_dataset(run_dir, dataset="") -> LightCurveStore:
    """The dataset whose test split ``05_embedding`` reads: ``dataset`` when given, otherwise
    the run's own (:func:`microlens.evaluation.predictions.run_dataset` for a training run; for a
    pretraining run the dataset it pretrained on, whose test split it never read).

    Parameters
    ----------
    run_dir : path
        A training or pretraining run directory.
    dataset : path or LightCurveStore, optional
        Another dataset; ``""`` or None means the run's own.
    """
    from microlens.data.store import open_dataset
    from microlens.evaluation.predictions import run_dataset

    if isinstance(dataset, LightCurveStore) or (dataset is not None and str(dataset) != ""):
        return run_dataset(run_dir, dataset)
    if is_pretraining_run(run_dir):
        return open_dataset(_saved_config(run_dir)["pretrain"]["dataset"])
    return run_dataset(run_dir, dataset)


def load_pretrained_encoder(run_dir, map_location="cpu"):
    """The encoder of a finished masked pretraining run, in eval mode.

    A :class:`microlens.models.masked.MaskedTransformer` built from the run's ``config.json``
    (``"model"``) and ``normalization.json``, its weights read from ``encoder.pt`` with
    ``weights_only=True`` (the best epoch's). Its classification head was never trained: use
    its encoder states (:func:`event_embeddings`), not its predictions.

    Parameters
    ----------
    run_dir : path
        A pretraining run directory.
    map_location : str or torch.device

    Raises
    ------
    FileNotFoundError
        When the run is missing or unfinished (naming the missing files).
    ValueError
        When ``run_dir`` is not a pretraining run (a training run's directory).
    """
    from dataclasses import replace

    import torch

    from microlens.core.paths import resolve_path
    from microlens.models.config import ModelConfig
    from microlens.models.inputs import Normalization
    from microlens.models.masked import MaskedTransformer, pretraining_run

    run = resolve_path(run_dir)
    saved = _saved_config(run)
    if saved is None:
        raise FileNotFoundError(f"{run} is not a pretraining run directory: config.json is "
                                "missing")
    if "pretrain" not in saved or "model" not in saved:
        raise ValueError(f"{run} is not a pretraining run: its config.json has no 'pretrain' "
                         "section (a training run? embed it with embed_run)")
    config = ModelConfig.from_saved(saved["model"])
    pretraining_run(replace(config, pretrained=str(run)))  # finished, with this encoder
    model = MaskedTransformer(config, Normalization.load(run / "normalization.json"))
    state = torch.load(run / "encoder.pt", map_location=map_location, weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def embed_pretrained(run_dir, store: LightCurveStore, rows: Sequence[int], *,
                     batch_size: int = 64, device="cpu",
                     progress: bool = False) -> RunEmbeddings:
    """Final embeddings of test events from a masked pretraining run's encoder.

    The pooled states (running mean and maximum, ``2 * d_model`` numbers) after each event's
    last observation (:func:`event_embeddings`) of :func:`load_pretrained_encoder`. The encoder
    learned by masked flux reconstruction and never saw a label, so how the classes separate
    here is what pretraining alone taught it; its head is untrained, so there are no
    predictions (``probabilities`` None, ``no_predictions_reason`` :data:`NO_LABELS_REASON`).

    Parameters
    ----------
    run_dir : path
        A pretraining run directory (:func:`microlens.training.pretrain.pretrain`).
    store : LightCurveStore
    rows : sequence of int
        Test-split store rows.
    batch_size, device, progress
        As :func:`event_embeddings`.

    Returns
    -------
    RunEmbeddings
        ``source`` ``"pretrained_encoder"``, ``model_kind`` ``"masked"``.
    """
    from microlens.models.holdout import require_test_split

    rows = require_test_split(store, rows)
    model = load_pretrained_encoder(run_dir)
    values = event_embeddings(model, store, rows, batch_size=batch_size, device=device,
                              progress=progress)
    return RunEmbeddings(values, None, model.config.kind, "pretrained_encoder",
                         f"pooled states of the pretrained encoder (running mean and maximum; "
                         f"no labels seen; 2 x d_model = {values.shape[1]} numbers)",
                         NO_LABELS_REASON)


def embed_run(run_dir, store: LightCurveStore, rows: Sequence[int], *, batch_size: int = 64,
              device="cpu", workers: int = 1, progress: bool = False) -> RunEmbeddings:
    """Final embeddings of a run's model over test events, for any model kind.

    * A neural kind (transformer, cnn, gru): the pooled embedding behind each final prediction
      (:func:`event_embeddings`), and the final probabilities from the model's head applied to
      it (:func:`embedding_probabilities`).
    * ``features``: the standardised curve features of each whole curve
      (:func:`feature_embeddings`; the kind learns no embedding), and its final probabilities
      from its test predictions (:func:`microlens.evaluation.predictions.run_predictions`).
    * ``rnn_vae``: the latent mean ``mu`` after each event's last observation (``latent_dim``
      numbers, :func:`microlens.evaluation.analysis.event_latents`), which the classifier and the
      decoder read, and the model's calibrated final probabilities.
    * A masked pretraining run (:func:`is_pretraining_run`): the pooled states of its encoder,
      which never saw a label, and no probabilities (:func:`embed_pretrained`).

    Parameters
    ----------
    run_dir : path
        A run directory of :func:`microlens.training.train.train`, or of
        :func:`microlens.training.pretrain.pretrain`.
    store : LightCurveStore
        The dataset whose test events are embedded.
    rows : sequence of int
        Test-split store rows.
    batch_size, device
        Events per forward pass and where the model runs.
    workers : int
        Processes for the ``features`` kind's fits.
    progress : bool
        Show progress bars.

    Returns
    -------
    RunEmbeddings
    """
    from microlens.evaluation.analysis.common import run_model_kind
    from microlens.evaluation.predictions import run_predictions
    from microlens.models.holdout import require_test_split
    from microlens.models.registry import load_model

    rows = require_test_split(store, rows)
    if is_pretraining_run(run_dir):
        return embed_pretrained(run_dir, store, rows, batch_size=batch_size, device=device,
                                progress=progress)
    kind = run_model_kind(run_dir)
    if kind == "features":
        values = feature_embeddings(store, rows, workers=workers, progress=progress)
        predictions, _ = run_predictions(run_dir, store, rows=rows, batch_size=batch_size,
                                         device=device, progress=progress)
        return RunEmbeddings(values, predictions.final(calibrated=True), kind, "features",
                             f"standardised curve features ({values.shape[1]} numbers: "
                             "PSPL-fit and summary statistics of the whole curve)")
    if kind == "rnn_vae":  # a latent kind: its Gaussian latent is the embedding
        from microlens.evaluation.analysis.reconstruction import event_latents

        values, probabilities = event_latents(run_dir, store, rows, batch_size=batch_size,
                                              device=device, progress=progress)
        return RunEmbeddings(values, probabilities, kind, "latent",
                             f"latent mean (latent_dim = {values.shape[1]} numbers) after the "
                             "last observation")
    model = load_model(run_dir)
    values = event_embeddings(model, store, rows, batch_size=batch_size, device=device,
                              progress=progress)
    lengths = np.asarray(store.lengths[rows], dtype=np.int64)  # observations behind each answer
    return RunEmbeddings(values, embedding_probabilities(model, values, lengths), kind, "pooled",
                         f"pooled {kind} states (running mean and maximum, 2 x d_model = "
                         f"{values.shape[1]} numbers)")


def embedding_probabilities(model, embeddings, counts=None) -> np.ndarray:
    """Calibrated class probabilities ``(E, n_classes)`` from final embeddings: the model's head
    applied to them, calibrated
    (:meth:`~microlens.models.transformer.MicrolensTransformer.calibrate`) and passed through a
    softmax, i.e. its final prediction for each event.

    Parameters
    ----------
    model : CausalClassifier
        A neural model of any kind.
    embeddings : array ``(E, 2 * d_model)``
        From :func:`event_embeddings`.
    counts : array ``(E,)`` of int, optional
        Observations behind each embedding (the events' lengths). Needed only when the model
        has a temperature curve over observations seen (``temperature_fit="by_count"``).
    """
    import torch

    from microlens.core.metrics import softmax

    with torch.no_grad():  # the head has no dropout: train/eval mode does not matter
        x = torch.as_tensor(np.asarray(embeddings), dtype=torch.float32,
                            device=model.temperature.device)
        logits = model.classify(x).float()
        if model.temperature_counts.numel() and counts is None:
            raise ValueError("this model's temperature depends on the observations seen: pass "
                             "counts (the events' lengths) to embedding_probabilities")
        if counts is not None:
            counts = torch.as_tensor(np.asarray(counts), dtype=torch.float64)
            if counts.shape != logits.shape[:1]:
                raise ValueError(f"counts has shape {tuple(counts.shape)}, expected "
                                 f"({logits.shape[0]},): one per embedding")
        calibrated = model.calibrate(logits, counts)  # counts None: the scalar temperature
    return softmax(calibrated.cpu().numpy())


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


def embedding_table(store: LightCurveStore, rows: Sequence[int], predicted=None,
                    confidence=None):
    """Parameters to colour and label embedded events by, one row per event (a DataFrame).

    Columns: the parameter table's (:meth:`microlens.data.store.LightCurveStore.params_table`), then
    ``label``, ``class``, ``abs_u_0`` (|u_0|; NaN for flat events, whose drawn u_0 has no lens
    behind it), ``log10_q`` (NaN unless binary) and ``log10_dchi2_pspl`` (log10 of
    ``max(dchi2_pspl, 1)``; NaN unless binary or without detectability).

    Parameters
    ----------
    store : LightCurveStore
    rows : sequence of int
        Test-split store rows.
    predicted : array ``(E,)`` of int, optional
        The model's final predicted labels: adds a ``predicted`` column of class names.
    confidence : array ``(E,)``, optional
        The model's final probability of its predicted class: adds a ``confidence`` column.
    """
    from microlens.models.holdout import require_test_split

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
    if predicted is not None:
        table["predicted"] = np.asarray(CLASS_NAMES)[np.asarray(predicted, dtype=int)]
    if confidence is not None:
        table["confidence"] = np.asarray(confidence)
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
        The model's final predicted labels, for ``model_accuracy`` beside the k-NN accuracy
        (None without predictions, e.g. a pretrained encoder: ``model_accuracy`` is then None
        and every other number is computed as usual).

    Returns
    -------
    dict
        ``n_events``, ``class_counts``, ``split`` ('test'), ``seed``, the
        :func:`embedding_metrics` keys, ``binary_neighbourhood``
        (:func:`binary_neighbourhood` in the standardised space), ``model_accuracy`` and
        ``projections``: per method its ``info`` plus ``silhouette_2d`` (in the 2-D map).
    """
    from microlens.models.holdout import EVALUATION_SPLIT

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
