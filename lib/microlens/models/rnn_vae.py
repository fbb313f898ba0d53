"""Latent-variable classifiers: the recurrent variational autoencoder (kind ``rnn_vae``).

:class:`RecurrentVAE` reads the same three input features as every neural kind
(:class:`microlens.models.inputs.Normalization`: normalised flux ``asinh((F - b) / s)``, error,
interval) and the same shared embedding, then:

1. **Encoder.** A stacked GRU (``n_layers`` layers of ``d_model`` units, run in float32 outside
   autocast) over the embedded observations, and per observation a linear map to the mean
   ``mu_k`` and log-variance ``log sigma_k^2`` of a diagonal Gaussian latent ``q(z_k)`` of
   ``latent_dim`` numbers (the log-variance clamped to :data:`LOGVAR_RANGE`). The GRU is
   causal, so ``q(z_k)`` depends on observations ``1..k`` only.
2. **Classifier on the latent.** ``z_k = mu_k + sigma_k * eps`` (reparameterisation, ``eps`` from
   torch's global generator, which :func:`microlens.training.train.train` seeds) in training mode
   and ``z_k = mu_k`` in eval mode. The encoder states are ``GELU(Linear(z_k))`` (``d_model``
   numbers); the shared causal pooling (running mean and maximum) and head classify after every
   observation, so streaming (:meth:`RecurrentVAE.step`, the ``gru`` kind's recurrent stream,
   on ``mu``), batched inference and every evaluation tool work unchanged.
3. **Decoder.** From the latent of the event's **last** valid observation ``z_n`` (the whole
   curve) it reconstructs the normalised flux feature at every observed time: a GRU
   (``n_layers`` x ``d_model``, initial state ``tanh(Linear(z_n))``) reads, per observation,
   ``[z_n, interval feature, error feature]`` and a linear map gives the flux feature. The time
   enters only through the intervals, which is how irregular sampling (and the gaps between
   seasons) is handled: the decoder is asked for the flux exactly where it was observed, with
   the error it was observed with, and nothing is interpolated onto a grid.

**Unsupervised loss** (:meth:`RecurrentVAE.auxiliary_loss`, per event, added by
:func:`microlens.training.train.train_step` to the class-weighted classification loss, itself not
class-weighted)::

    reconstruction_weight * mean_k (x_k - x_hat_k)^2  +  kl_weight * mean_k KL(q(z_k) || N(0, I))

with both means over the event's valid observations only (padding never counts) and the KL
summed over latent dimensions, ``0.5 * sum(mu^2 + sigma^2 - 1 - log sigma^2)``
(:func:`gaussian_kl`). The weights are :class:`~microlens.models.config.ModelConfig` fields; the
defaults and why:

* ``reconstruction_weight = 1.0``: the squared error is in units of the flux feature, where the
  photometric noise of a baseline observation has variance ~1 (``s`` is the median error; after
  ``asinh``, noise alone costs ~0.63 at an error equal to ``s``), while a missed peak costs
  tens. That is the order of the classification cross-entropy (~1.1 at chance), so neither
  term drowns the other at the start of training.
* ``kl_weight = 0.01``: a small weight (a beta-VAE with beta << 1). The KL is summed over the
  ``latent_dim`` dimensions and grows as the latent learns the curve; at weight 1 it would
  weigh as much as the reconstruction and pull every ``q(z_k)`` towards ``N(0, I)``, the route
  to the posterior collapse VAEs are known for, in which the latent, and with it the classifier
  that reads it, carries little about the curve; at 0 nothing bounds the latent and ``sigma``
  shrinks until ``z`` is a deterministic code. 0.01 is meant to keep a regularised latent that
  still carries the class. These are reasoned defaults, not the result of a sweep; both are
  :class:`~microlens.models.config.ModelConfig` fields.

The mean and log-variance the loss needs come from the same encoder pass as the logits:
:meth:`RecurrentVAE.forward` computes them once (:meth:`RecurrentVAE.latent`) and hands them to
the loss; nothing is stored on the module between calls, so the model is safe under
``DistributedDataParallel`` and re-entrant. In eval mode ``forward(..., return_auxiliary=True)``
gives the same loss deterministically (``z = mu``).

Inference helpers: :func:`reconstruct` (the reconstruction in feature units and in flux
units, the ``asinh`` feature inverted with each observation's causal baseline and scatter) and
:func:`reconstruction_errors` (per event, the mean squared normalised residual: an anomaly
score), both in eval mode, without gradients, in chunks as
:meth:`~microlens.models.base.CausalClassifier.predict_logits`.

Quick use::

    from microlens.models.config import ModelConfig
    from microlens.models.registry import build_model

    vae = build_model(ModelConfig(kind="rnn_vae", d_model=64, n_layers=2), normalization)
    out = vae(times, flux, flux_err, mask, return_auxiliary=True, return_latent=True)
    out["logits"], out["auxiliary_loss"], out["latent_mean"]
    rec = reconstruct(vae.eval(), times, flux, flux_err, mask)
    rec.flux, rec.errors
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from microlens.core.validation import as_model_inputs
from microlens.models.base import CausalClassifier, final_logits
from microlens.models.config import CPU_PASS_OBSERVATIONS, ModelConfig

LOGVAR_RANGE = (-10.0, 5.0)
"""Clamp of the latent log-variance: ``sigma`` from ~0.007 to ~12 (the prior's is 1). Outside
it ``exp`` under- or overflows the reparameterisation and the KL long before a useful value."""

DECODER_KINDS = ("rnn_vae",)
"""Model kinds with a decoder that reconstructs light curves (:func:`has_decoder`)."""


class LatentCode(NamedTuple):
    """The encoder's Gaussian latent after every observation, each ``(B, N, latent_dim)``
    float32: ``mean`` (``mu_k``), ``logvar`` (``log sigma_k^2``, clamped to
    :data:`LOGVAR_RANGE`) and ``z`` (a draw ``mu + sigma * eps`` in training mode, ``mu`` in
    eval mode)."""

    mean: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mean, exp(logvar)) || N(0, I))`` summed over the last dimension.

    Parameters
    ----------
    mean, logvar : Tensor ``(..., L)``
        Mean and log-variance of a diagonal Gaussian.

    Returns
    -------
    Tensor ``(...)``
        ``0.5 * sum(mean^2 + exp(logvar) - 1 - logvar)``: 0 exactly for the prior itself
        (``mean = 0``, ``logvar = 0``), positive otherwise.
    """
    mean, logvar = mean.float(), logvar.float()
    return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def masked_event_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``values (B, N)`` over each event's valid observations (``mask`` True; None:
    all): ``(B,)``. An event without observations gets 0."""
    if mask is None:
        return values.mean(dim=1)
    weights = mask.to(values.dtype)
    return (values * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


def has_decoder(model) -> bool:
    """Whether ``model`` reconstructs light curves (a :class:`RecurrentVAE`)."""
    return isinstance(model, RecurrentVAE)


def _model_kind(model) -> str:
    return getattr(getattr(model, "config", None), "kind", None) or type(model).__name__


def require_decoder(model) -> RecurrentVAE:
    """``model`` if it has a decoder; otherwise a ValueError naming its kind and the kinds that
    have one (:data:`DECODER_KINDS`)."""
    if not has_decoder(model):
        raise ValueError(f"a {_model_kind(model)!r} model has no decoder to reconstruct light "
                         f"curves with; kinds with one: {', '.join(DECODER_KINDS)}")
    return model


class RecurrentVAE(CausalClassifier):
    """Kind ``"rnn_vae"``: a recurrent variational autoencoder with the classifier on its latent
    (see the module docstring).

    Parameters
    ----------
    config : ModelConfig
        ``kind="rnn_vae"``; reads ``d_model``, ``n_layers`` (encoder and decoder GRUs),
        ``latent_dim``, ``reconstruction_weight``, ``kl_weight``, ``dropout``, ``pool_norm``.
    normalization : Normalization
        Input standardisation learned from the training set (saved as JSON with the model).
    """

    kind = "rnn_vae"
    # Recurrences cost per time step whatever the batch (as the gru kind): bigger CPU passes
    cpu_pass_observations = 4 * CPU_PASS_OBSERVATIONS

    def build_encoder(self, config: ModelConfig) -> None:
        d, layers, latent = config.d_model, config.n_layers, config.latent_dim
        between = config.dropout if layers > 1 else 0.0
        self.gru = nn.GRU(d, d, num_layers=layers, batch_first=True, dropout=between)
        self.to_latent = nn.Linear(d, 2 * latent)  # mean and log-variance
        self.from_latent = nn.Sequential(nn.Linear(latent, d), nn.GELU())
        self.decoder_init = nn.Linear(latent, layers * d)
        # per observation: [z_n, interval feature, error feature]
        self.decoder = nn.GRU(latent + 2, d, num_layers=layers, batch_first=True,
                              dropout=between)
        self.decoder_out = nn.Linear(d, 1)

    # -- encoder -------------------------------------------------------------------------

    def latent(self, features: torch.Tensor) -> LatentCode:
        """The Gaussian latent after every observation from features ``(B, N, 3)``.

        Observation ``k``'s latent depends on observations ``1..k`` only. In training mode
        ``z`` is a reparameterised draw (torch's global generator), in eval mode the mean.
        """
        x = self.embed_dropout(self.embed(features))
        # cuDNN and the CPU kernel run in float32; the latent statistics stay there too
        with torch.autocast(x.device.type, enabled=False):
            hidden, _ = self.gru(x.float())
            mean, logvar = self.to_latent(hidden).chunk(2, dim=-1)
            logvar = logvar.clamp(*LOGVAR_RANGE)
            z = (mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) if self.training
                 else mean)
        return LatentCode(mean, logvar, z)

    def states(self, z: torch.Tensor) -> torch.Tensor:
        """Encoder states ``(B, N, d_model)`` of latents ``z (B, N, latent_dim)``, before the
        causal pooling."""
        return self.norm(self.from_latent(z))

    def encode(self, features, return_attention: bool = False, *, times=None, mask=None):
        """Encoder states ``(B, N, d)`` (:meth:`states` of :meth:`latent`'s ``z``) and None."""
        return self.states(self.latent(features).z), None

    def step(self, hidden: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One new token per event ``x (E, d)`` (the embedded features); ``hidden
        (E, n_layers, d)``. Returns the state of the latent mean (before ``self.norm``, as
        :class:`microlens.models.gru.CausalGRU.step`) ``(E, d)`` and the new hidden state:
        eval-mode numbers, the batch forward's."""
        out, new = self.gru(x.float()[:, None], hidden.transpose(0, 1).contiguous())
        mean = self.to_latent(out[:, 0])[:, : self.config.latent_dim]
        return self.from_latent(mean), new.transpose(0, 1)

    # -- decoder -------------------------------------------------------------------------

    def decode(self, z_final: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """The normalised flux feature reconstructed at every observation ``(B, N)`` float32.

        Parameters
        ----------
        z_final : Tensor ``(B, latent_dim)``
            Each event's latent after its last valid observation.
        features : Tensor ``(B, N, 3)``
            The inputs; the decoder reads the interval (``[..., 2]``) and error (``[..., 1]``)
            features of every observation, never the flux.
        """
        batch, n, _ = features.shape
        layers, d = self.config.n_layers, self.config.d_model
        with torch.autocast(features.device.type, enabled=False):
            z = z_final.float()
            inputs = torch.cat([z[:, None].expand(batch, n, z.shape[-1]),
                                features[..., 2:3].float(), features[..., 1:2].float()], dim=-1)
            start = torch.tanh(self.decoder_init(z)).view(batch, layers, d)
            out, _ = self.decoder(inputs, start.transpose(0, 1).contiguous())
            return self.decoder_out(out)[..., 0]

    def reconstruct_features(self, features: torch.Tensor, mask: torch.Tensor | None = None,
                             code: LatentCode | None = None) -> torch.Tensor:
        """The decoder's reconstruction ``(B, N)`` of ``features[..., 0]`` from each event's
        final latent (``code``: :meth:`latent` of ``features``, computed when None); entries at
        padded positions are meaningless."""
        code = self.latent(features) if code is None else code
        if mask is None:
            mask = torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)
        return self.decode(final_logits(code.z, mask), features)

    def loss_terms(self, features: torch.Tensor, mask: torch.Tensor | None,
                   code: LatentCode | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Unweighted per-event terms ``(reconstruction, kl)``, each ``(B,)`` float32: the mean
        squared error of the reconstructed flux feature and the mean KL of ``q(z_k)`` from
        ``N(0, I)`` (:func:`gaussian_kl`), both over the event's valid observations."""
        code = self.latent(features) if code is None else code
        reconstruction = self.reconstruct_features(features, mask, code)
        squared = (reconstruction - features[..., 0].float()).square()
        return (masked_event_mean(squared, mask),
                masked_event_mean(gaussian_kl(code.mean, code.logvar), mask))

    def auxiliary_loss(self, features: torch.Tensor, states: torch.Tensor | None = None, *,
                       times: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                       code: LatentCode | None = None) -> torch.Tensor:
        """Per-event ``reconstruction_weight * reconstruction + kl_weight * kl`` ``(B,)``
        (:meth:`loss_terms`; the weights are :class:`~microlens.models.config.ModelConfig` fields).

        :meth:`forward` passes the ``code`` of its own encoder pass; without it (a direct call)
        the encoder runs again on ``features`` (in training mode with a fresh draw).
        ``states`` and ``times`` are not needed (the hook's common signature).
        """
        reconstruction, kl = self.loss_terms(features, mask, code)
        return (self.config.reconstruction_weight * reconstruction
                + self.config.kl_weight * kl)

    # -- forward -------------------------------------------------------------------------

    def forward(self, times, flux, flux_err, mask=None, *, return_attention: bool = False,
                return_embedding: bool = False, return_auxiliary: bool = False,
                return_latent: bool = False) -> dict:
        """Logits after every observation, with the encoder run once for the logits and the
        unsupervised loss.

        Parameters
        ----------
        times, flux, flux_err, mask
            As :meth:`microlens.models.base.CausalClassifier.forward`.
        return_attention : bool
            Refused: this kind has no attention maps.
        return_embedding : bool
            Add ``"embedding"``: the pooled states ``(B, N, 2 * d_model)``.
        return_auxiliary : bool
            Add ``"auxiliary_loss"`` ``(B,)`` in eval mode too (always there in training mode).
        return_latent : bool
            Add ``"latent_mean"`` and ``"latent_logvar"``, each ``(B, N, latent_dim)``.

        Returns
        -------
        dict
            ``"logits"`` ``(B, N, n_classes)`` float32 (and ``"parameters"`` with parameter
            heads) and the entries asked for.
        """
        if (mask is not None and mask.device.type == "cpu" and mask.shape[1] > 1
                and bool((mask[:, 1:] > mask[:, :-1]).any())):
            raise ValueError("mask must put valid observations first (padding at the end)")
        if return_attention:
            raise ValueError(f"a {self.config.kind!r} model has no attention maps; only kind "
                             "'transformer' does")
        features = self.normalization.features(times, flux, flux_err, mask)
        code = self.latent(features)
        states = self.states(code.z)
        pooled = self.pool(states)
        out = self.answers(pooled, states, times, flux, flux_err, mask)
        if self.training or return_auxiliary:
            out["auxiliary_loss"] = self.auxiliary_loss(features, states, times=times,
                                                        mask=mask, code=code)
        if return_embedding:
            out["embedding"] = pooled
        if return_latent:
            out["latent_mean"] = code.mean
            out["latent_logvar"] = code.logvar
        return out


# --------------------------------------------------------------------------------------------
# Inference helpers
# --------------------------------------------------------------------------------------------


@dataclass
class Reconstruction:
    """A model's reconstruction of light curves (:func:`reconstruct`); arrays ``(B, N)`` are NaN
    at padded positions.

    Attributes
    ----------
    observed : ndarray ``(B, N)`` float32
        The normalised flux feature ``asinh((F - b) / s)`` of the observations (the target).
    reconstructed : ndarray ``(B, N)`` float32
        The decoder's reconstruction of it.
    flux : ndarray ``(B, N)`` float64
        The reconstruction in flux units, ``b + s * sinh(reconstructed)``.
    baseline, scale : ndarray ``(B, N)`` float64
        Each observation's causal baseline ``b`` and scatter ``s``
        (:meth:`microlens.models.inputs.Normalization.reference`).
    mask : ndarray ``(B, N)`` bool
    kl : ndarray ``(B,)`` float64
        Mean over each event's observations of ``KL(q(z_k) || N(0, I))`` (nats).
    """

    observed: np.ndarray
    reconstructed: np.ndarray
    flux: np.ndarray
    baseline: np.ndarray
    scale: np.ndarray
    mask: np.ndarray
    kl: np.ndarray

    @property
    def errors(self) -> np.ndarray:
        """Per event ``(B,)`` float64: the mean over its observations of the squared normalised
        residual ``(reconstructed - observed)^2`` (0 for an event without observations)."""
        squared = np.where(self.mask, (self.reconstructed.astype(np.float64)
                                       - self.observed.astype(np.float64)) ** 2, 0.0)
        return squared.sum(axis=1) / np.maximum(self.mask.sum(axis=1), 1)


def reconstruct(model: RecurrentVAE, times, flux, flux_err, mask=None, *,
                chunk_observations: int | None = None,
                check_inputs: bool = True) -> Reconstruction:
    """Reconstruct light curves with a model's decoder, in eval mode, without gradients.

    Parameters
    ----------
    model : RecurrentVAE
        Another kind raises ValueError naming the kinds with a decoder.
    times, flux, flux_err : array-like or Tensor ``(B, N)``
        Observation times [days], flux [baseline units] and 1-sigma errors, padded at the end.
    mask : array-like or Tensor ``(B, N)`` of bool, optional
        True where an observation exists (default: all).
    chunk_observations : int, optional
        Observations per forward pass (at least one event); results do not depend on it.
        Default: the model's ``cpu_pass_observations`` on CPU, the whole batch on a GPU.
    check_inputs : bool
        Check the light curves first (:func:`microlens.core.validation.check_light_curves`).

    Returns
    -------
    Reconstruction
        The reconstruction in feature units and in flux units (the ``asinh`` feature inverted
        with each observation's causal baseline and scatter), the observed feature, and the
        per-event scores (:attr:`Reconstruction.errors`, ``kl``).
    """
    require_decoder(model)
    device = None if isinstance(times, torch.Tensor) else next(model.parameters()).device
    times, flux, flux_err, mask = as_model_inputs(times, flux, flux_err, mask, device=device,
                                                  check=check_inputs)
    if chunk_observations is None:
        chunk_observations = (model.cpu_pass_observations if times.device.type == "cpu"
                              else times.numel())
    per_pass = max(1, int(chunk_observations) // max(1, times.shape[1]))
    observed, reconstructed, kl = [], [], []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i in range(0, times.shape[0], per_pass):
                part = slice(i, i + per_pass)
                features = model.normalization.features(times[part], flux[part],
                                                        flux_err[part], mask[part])
                code = model.latent(features)
                reconstructed.append(model.reconstruct_features(features, mask[part], code)
                                     .float().cpu())
                observed.append(features[..., 0].float().cpu())
                kl.append(masked_event_mean(gaussian_kl(code.mean, code.logvar), mask[part])
                          .double().cpu())
    finally:
        model.train(was_training)
    n = times.shape[1]
    valid = mask.cpu().numpy().astype(bool)
    if not observed:  # no events
        empty = np.zeros((0, n))
        return Reconstruction(empty.astype(np.float32), empty.astype(np.float32), empty, empty,
                              empty, valid, np.zeros(0))
    base, scale = model.normalization.reference(flux.detach().cpu().double(),
                                                flux_err.detach().cpu().double())
    base, scale = base.numpy(), scale.numpy()
    recon = torch.cat(reconstructed).numpy()
    flux_units = base + np.maximum(scale, 1e-12) * np.sinh(recon.astype(np.float64))
    nan = np.float32(np.nan)
    return Reconstruction(
        observed=np.where(valid, torch.cat(observed).numpy(), nan),
        reconstructed=np.where(valid, recon, nan),
        flux=np.where(valid, flux_units, np.nan),
        baseline=np.where(valid, base, np.nan), scale=np.where(valid, scale, np.nan),
        mask=valid, kl=torch.cat(kl).numpy())


def reconstruction_errors(model: RecurrentVAE, times, flux, flux_err, mask=None, *,
                          chunk_observations: int | None = None,
                          check_inputs: bool = True) -> np.ndarray:
    """Per event, the mean squared normalised residual of the reconstruction: an anomaly score.

    ``mean_k (x_hat_k - x_k)^2`` over each event's valid observations, with ``x`` the
    normalised flux feature ``asinh((F - b) / s)`` (:attr:`Reconstruction.errors`). A
    well-reconstructed curve scores near the noise floor (~0.63 where the errors equal the
    median error ``s``, less or more for smaller or larger ones); a curve the decoder cannot
    reproduce from its latent, far above. Arguments as :func:`reconstruct`.

    Returns
    -------
    ndarray ``(B,)`` float64
    """
    return reconstruct(model, times, flux, flux_err, mask,
                       chunk_observations=chunk_observations, check_inputs=check_inputs).errors


__all__ = [
    "DECODER_KINDS", "LOGVAR_RANGE", "LatentCode", "Reconstruction", "RecurrentVAE",
    "gaussian_kl", "has_decoder", "masked_event_mean", "reconstruct", "reconstruction_errors",
    "require_decoder",
]  # fmt: skip
