"""The registry of model kinds: which classifiers exist, how each is built, what each can do.

Every kind reads the same observations and is trained, evaluated and compared on the same data
(``studies/models.yaml``); :attr:`ModelConfig.kind <microlens.models.config.ModelConfig.kind>` names
it, checkpoints record it, and :func:`microlens.models.registry.load_model` rebuilds any of them.

=============== ==================================================================================
kind            what it is
=============== ==================================================================================
transformer     the causal sliding-window transformer with its convolution stem (the thesis model;
                :class:`microlens.models.transformer.MicrolensTransformer`)
cnn             causal dilated 1-D convolutions over the observation sequence (temporal
                convolution network), per-observation logits: the thesis's predecessor, a
                TimeDistributed CNN classifying after every observation
                (:class:`microlens.models.cnn.CausalCNN`)
gru             a causal recurrent network (stacked GRU) over the same inputs
                (:class:`microlens.models.gru.CausalGRU`)
features        summary and PSPL-fit statistics of the curve so far, classified by gradient
                boosting (:mod:`microlens.models.features`); answers at fixed fractions of the
                curve and cannot stream observation by observation
rnn_vae         a recurrent variational autoencoder: a GRU encoder to a Gaussian latent, a
                decoder reconstructing the flux at the observed times, the classifier on the
                latent (:class:`microlens.models.rnn_vae.RecurrentVAE`)
deepsets        the curve as a set of points (flux, error, time relative to the newest point),
                pooled symmetrically (:class:`microlens.models.deepsets.DeepSets`)
set_transformer the same sets through attention among the points and pooling by attention
                (:class:`microlens.models.set_transformer.SetTransformer`)
masked          the transformer, its encoder first pretrained without labels by reconstructing
                masked fluxes (:mod:`microlens.training.pretrain`), then fine-tuned
                (:class:`microlens.models.masked.MaskedTransformer`)
=============== ==================================================================================

The seven neural kinds (all but ``features``) share everything but the encoder
(:class:`microlens.models.base.CausalClassifier`): the input features and their normalisation, the
embedding, the causal pooling (running mean and maximum of the encoder states) and the head, so
a difference between them is a difference of encoders. Each encoder is causal (state ``k``
reads observations ``1..k``) and streams at a fixed cost per observation
(:mod:`microlens.models.stream`).

Quick use::

    from microlens.models.config import ModelConfig
    from microlens.models.registry import build_model, KINDS

    model = build_model(ModelConfig(kind="gru", d_model=64, n_layers=2), normalization)
    KINDS["gru"].streams      # True
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from microlens.models.base import WEIGHT_FILES, CausalClassifier
from microlens.models.cnn import CausalCNN
from microlens.models.config import MODEL_KINDS, ModelConfig
from microlens.models.deepsets import DeepSets
from microlens.models.features import load_feature_model
from microlens.models.gru import CausalGRU
from microlens.models.inputs import Normalization
from microlens.models.masked import MaskedTransformer
from microlens.models.rnn_vae import RecurrentVAE
from microlens.models.set_transformer import SetTransformer
from microlens.models.transformer import MicrolensTransformer

# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelKind:
    """One entry of :data:`KINDS`."""

    name: str
    description: str
    neural: bool  # trained by microlens.training.train's loop (gradient descent, AMP, DDP, resume)
    # microlens.models.stream.StreamingClassifier updates it one observation at a time
    streams: bool
    attention: bool  # forward(..., return_attention=True) gives attention maps (04_attention)
    model_class: type | None = None  # the CausalClassifier subclass of a neural kind


KINDS: dict[str, ModelKind] = {
    "transformer": ModelKind(
        "transformer", "causal sliding-window transformer with a convolution stem (the thesis "
        "model)", neural=True, streams=True, attention=True, model_class=MicrolensTransformer),
    "cnn": ModelKind(
        "cnn", "causal dilated 1-D convolutions (temporal convolution network), the thesis's "
        "TimeDistributed-CNN predecessor", neural=True, streams=True, attention=False,
        model_class=CausalCNN),
    "gru": ModelKind(
        "gru", "causal recurrent network (stacked GRU)", neural=True, streams=True,
        attention=False, model_class=CausalGRU),
    "features": ModelKind(
        "features", "summary and PSPL-fit statistics of the curve so far + gradient boosting "
        "(scikit-learn); answers at fixed fractions of the curve", neural=False, streams=False,
        attention=False),
    "rnn_vae": ModelKind(
        "rnn_vae", "recurrent variational autoencoder: GRU encoder to a Gaussian latent, flux "
        "decoder, classifier on the latent", neural=True, streams=True, attention=False,
        model_class=RecurrentVAE),
    "deepsets": ModelKind(
        "deepsets", "set of points (flux, error, time before the newest point) pooled "
        "symmetrically (DeepSets)", neural=True, streams=True, attention=False,
        model_class=DeepSets),
    "set_transformer": ModelKind(
        "set_transformer", "set of points through attention among them and pooling by "
        "attention (Set Transformer)", neural=True, streams=True, attention=False,
        model_class=SetTransformer),
    "masked": ModelKind(
        "masked", "the transformer with its encoder pretrained by masked-flux reconstruction "
        "on unlabelled curves, then fine-tuned", neural=True, streams=True, attention=True,
        model_class=MaskedTransformer),
}
"""Every model kind, by :attr:`ModelConfig.kind <microlens.models.config.ModelConfig.kind>` name."""

assert tuple(KINDS) == MODEL_KINDS, "model.MODEL_KINDS and the registry must agree"


def model_kind(name: str) -> ModelKind:
    """The registry entry of kind ``name``; a clear error naming the valid kinds otherwise."""
    if name not in KINDS:
        raise ValueError(f"unknown model kind {name!r}; valid: {', '.join(KINDS)}")
    return KINDS[name]


def neural_kinds() -> tuple[str, ...]:
    """The kinds trained by gradient descent (:func:`microlens.training.train.train`)."""
    return tuple(name for name, kind in KINDS.items() if kind.neural)


def build_model(config: ModelConfig | None = None,
                normalization: Normalization | None = None) -> CausalClassifier:
    """A new (untrained) neural classifier of ``config.kind``.

    Parameters
    ----------
    config : ModelConfig, optional
        Architecture; its ``kind`` picks the class (default: the transformer).
    normalization : Normalization, optional
        Input standardisation (default: the identity-like defaults).

    Raises
    ------
    ValueError
        For the ``features`` kind, which is fitted by
        :func:`microlens.models.features.train_features`
        rather than built as a network.
    """
    config = config or ModelConfig()
    entry = model_kind(config.kind)
    if entry.model_class is None:
        raise ValueError(f"kind {config.kind!r} is not a neural network: train it with "
                         "microlens.training.train.train (which calls microlens.models.features."
                         "train_features) and load it with microlens.models.registry.load_model")
    return entry.model_class(config, normalization)


def count_parameters(config: ModelConfig) -> int:
    """Parameters of a neural kind at ``config`` (built on the CPU, then dropped)."""
    return build_model(config).n_parameters


def load_model(run_dir: str | os.PathLike, which: str = "best",
               map_location: str | torch.device = "cpu"):
    """Rebuild a trained model of any kind from a run directory, in eval mode.

    A neural kind (``config.json``, ``normalization.json``, ``best.pt`` or ``last.pt``) comes
    back as its :class:`CausalClassifier` subclass, weights loaded with ``weights_only=True``;
    a ``features`` run as a :class:`microlens.models.features.FeatureClassifier` (its own files,
    no pickle). Every kind answers ``predict_proba(times, flux, flux_err, mask)`` the same way.
    The model's ``dataset_manifest`` attribute holds the training set's summary from
    ``config.json`` (``max_observations``, ``config``, ...; empty when the run lacks it).

    Raises
    ------
    FileNotFoundError
        When the run directory does not exist (similar names beside it are listed) or lacks
        one of its files (named).
    microlens.models.runs.RunFileError
        When a file is there but broken: an empty or truncated checkpoint, a ``config.json``
        that is not valid JSON (line and column named) or lacks its ``"model"`` entry.
    ValueError
        For an unknown ``which``.
    """
    from microlens.models.runs import RunFileError, load_torch, read_json, require_run_dir

    if which not in WEIGHT_FILES:
        raise ValueError(f"unknown checkpoint {which!r}; valid: {', '.join(WEIGHT_FILES)}")
    run_dir = require_run_dir(run_dir)
    if not (run_dir / "config.json").is_file():
        raise FileNotFoundError(f"{run_dir} is not a complete run directory: config.json is "
                                "missing")
    config = read_json(run_dir / "config.json")
    if not isinstance(config.get("model"), dict):
        raise RunFileError(f"{run_dir / 'config.json'} has no \"model\" object (keys: "
                           f"{', '.join(config) or 'none'}): not a training run's config, or "
                           "written by hand; restore it or run again")
    model_config = ModelConfig.from_saved(config["model"])
    if model_config.kind == "features":  # its own files (microlens.models.features)
        return load_feature_model(run_dir, which)  # attaches dataset_manifest too
    for name in ("normalization.json", WEIGHT_FILES[which]):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir} is not a complete run directory: {name} is missing")
    model = build_model(model_config, Normalization.load(run_dir / "normalization.json"))
    state = load_torch(run_dir / WEIGHT_FILES[which], map_location=map_location)
    if "model" in state and isinstance(state["model"], dict):  # a full training checkpoint
        state = state["model"]
    model.load_state_dict(state)
    # what the training set was (length of its longest curve, ...): real_events reads it to
    # say when a curve lies outside the training range
    model.dataset_manifest = dict(config.get("dataset_manifest") or {})
    return model.eval()


__all__ = ["KINDS", "ModelKind", "build_model", "load_model",
           "count_parameters", "model_kind", "neural_kinds"]
