"""Set models: a light curve read as a set of points, causally (kinds ``deepsets`` and
``set_transformer``).

What a point is
---------------
Point ``j`` of an event is three numbers:

1. its normalised flux, ``features[..., 0]`` of :meth:`Normalization.features
   <microlens.models.inputs.Normalization.features>` (``asinh`` of the deviation from the causal
   baseline, in units of the baseline scatter);
2. its error feature, ``features[..., 1]`` (the standardised ``log(sigma_F / b)``);
3. its age relative to the newest point seen, ``tau_jk = t_k - t_j >= 0`` [days], encoded as
   ``u = (log(1 + tau / dt_scale) - mu_W) / sigma_W``, where ``dt_scale`` is the training set's
   median interval and ``mu_W``, ``sigma_W`` the mean and standard deviation of
   ``log(1 + m)`` for ``m = 0 .. W - 1`` (the ages a set of ``W = window`` points has at an even
   cadence of ``dt_scale``; :func:`age_standardisation`).

The ages come from times relative to the event's first observation, subtracted in float64 and
only then cast, so adding a constant to every time changes nothing; there is no absolute time and
no observation index. The interval feature ``features[..., 2]`` is not used: it depends on the
order in which the points arrived, which a set does not have.

What a set is, and what is symmetric
------------------------------------
The set of observation ``k`` (0-based) is its newest ``W = window`` points, ``j = max(0, k - W + 1)
.. k`` (fewer at the start of a curve; padding is never a member of a valid observation's set; a
padded position, whose answer nobody reads, counts itself a member, so no set is empty). Encoder
state ``k`` is a function of that set which is symmetric: permuting its points (each carrying its
own flux, error and age) leaves the state unchanged, up to the order of float summations.
:meth:`SetClassifier.set_state` computes it for one set given in any order;
:meth:`SetClassifier.encode` computes all ``N`` sets of a batch at once and gives the same numbers.

* ``deepsets`` (:class:`DeepSets`, Zaheer et al. 2017): ``phi``, an MLP ``3 -> d_ff ->
  d_model`` on each point, pooled by the masked mean and maximum over the set, then ``rho``, an MLP
  ``2 d_model -> d_ff -> d_model``. The first layer of ``phi`` is separable: the flux and error part
  (and the bias) is computed once per point, only the age term once per pair ``(k, j)``.
* ``set_transformer`` (:class:`SetTransformer`, Lee et al. 2019): each point embedded by an MLP
  ``3 -> d_model -> d_model`` (the first layer separable as above), ``n_layers`` set-attention
  blocks (SAB: pre-norm multi-head self-attention among the points of the set, masked for
  validity only, and a feed-forward network of width ``d_ff``), then pooling by multi-head
  attention (PMA) with one learned seed query, followed by a feed-forward network.

Causality and cost
------------------
State ``k`` reads points ``<= k`` only, and only the newest ``W`` of them; the causal pooling
shared by every kind (:class:`~microlens.models.base.CausalClassifier`: running mean and maximum of
states ``1..k``, then the head) carries every point seen so far into the answer after
observation ``k``. Nothing after ``k`` is read. Order enters only through the ages: within a set
a point is known by its flux, error and age, so swapping two fluxes changes the set.

Each of the ``N`` observations of an event reads ``W`` points, so a batch forms ``(B, N, W,
width)`` pair tensors: time and memory grow as ``O(N * W)`` (the set transformer's attention as
``O(N * W^2)``), never ``O(N^2)``. These tensors dominate the cost, so a CPU forward pass takes
few observations (:attr:`DeepSets.cpu_pass_observations`,
:attr:`SetTransformer.cpu_pass_observations`). The set transformer runs a whole transformer
layer on ``N * W`` tokens: at ``d_model`` 64, one layer and ``W = 8`` a training step costs
twice that of the models study's sliding-window transformer (two layers, ``W = 64``, its
convolution stem). On CPU its attention is ``heads * N`` tiny problems, so fewer heads are
faster (2 rather than 4 heads: ~13 % less time at ``d_model`` 32, ``W`` 8).
Training cost on one CPU thread, seconds per 1,000-point event (forward and backward, the
best of three interleaved runs on a shared machine; the transformer of the models study, 0.050,
makes 21-24 events/s on two quiet cores):

=================================================  =============  ==========
kind and sizes                                     s per event    parameters
=================================================  =============  ==========
deepsets ``d_model`` 64, ``d_ff`` 64, ``W`` 16     0.033          25 k
deepsets ``d_model`` 64, ``d_ff`` 128, ``W`` 16    0.043          42 k
deepsets ``d_model`` 64, ``d_ff`` 64, ``W`` 32     0.058          25 k
deepsets ``d_model`` 64, ``d_ff`` 128, ``W`` 64    0.34           42 k
set_transformer 32/64, 1 layer, 2 heads, ``W`` 8   0.039          20 k
set_transformer 32/64, 1 layer, 4 heads, ``W`` 8   0.045          20 k
set_transformer 48/96, 1 layer, 2 heads, ``W`` 8   0.052          45 k
set_transformer 32/64, 2 layers, 2 heads, ``W`` 8  0.063          29 k
set_transformer 32/64, 1 layer, 2 heads, ``W`` 16  0.063          20 k
set_transformer 64/128, 1 layer, 4 heads, ``W`` 8  0.10           80 k
=================================================  =============  ==========

(``d_model``/``d_ff`` for the set transformer.)

Embedding and streaming
-----------------------
The shared ``embed`` module of these kinds is :class:`PointFeatures`, without parameters: it keeps a
point's flux and error features, since every learned projection of a point here also depends on the
pair ``(k, j)`` (its age) and so lives in the encoder. The stream (:mod:`microlens.models.stream`)
therefore receives each new point's raw features as its token, keeps the last ``W - 1`` points'
features and times (float64, relative to the first observation) in a fixed-size ring buffer, and
computes the new state with :meth:`SetClassifier.encode_set`: the same numbers as the batch forward.

Quick use::

    model = build_model(ModelConfig(kind="deepsets", d_model=64, d_ff=128, window=32), norm)
    model(times, flux, flux_err, mask)["logits"]      # (B, N, 3), one answer per observation
    model.set_state(flux_feature, error_feature, times, valid, query_time)  # one set
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from microlens.models.base import CausalClassifier
from microlens.models.config import ModelConfig

POINT_FEATURES = 2
"""Numbers per point besides its age: the normalised flux and the error feature."""


def age_standardisation(window: int) -> tuple[float, float]:
    """Mean and standard deviation of ``log(1 + m)`` for ``m = 0 .. window - 1``.

    The encoded ages ``log(1 + tau / dt_scale)`` of a set of ``window`` points at an even cadence
    of ``dt_scale`` take exactly these values, so the standardised age has mean 0 and standard
    deviation 1 there (1 for a window of one point, whose only age is 0).
    """
    values = [math.log1p(m) for m in range(window)]
    mean = sum(values) / window
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / window)
    return mean, (std if std > 0 else 1.0)


class PointFeatures(nn.Module):
    """The ``embed`` of the set kinds: ``(..., 3) -> (..., 2)``, a point's normalised flux and
    error features (no parameters; the order-dependent interval feature is dropped)."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features[..., :POINT_FEATURES]


def _windows(x: torch.Tensor, window: int, fill) -> torch.Tensor:
    """``(B, N, ...) -> (B, N, window, ...)``: entry ``[:, k, i]`` is ``x[:, k - window + 1 +
    i]`` (``fill`` before the first); a strided view of the padded input, no copy, whose last
    dimension stays contiguous."""
    padded = F.pad(x, (0, 0) * (x.ndim - 2) + (window - 1, 0), value=fill)
    return padded.unfold(1, window, 1).movedim(-1, 2)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor,
            scale: float | None = None):
    """``scaled_dot_product_attention`` over the valid keys (``key_mask (S, 1, 1, W)`` bool);
    in float32 on CPU, where the fused kernel is much faster than in bfloat16."""
    if q.device.type == "cpu":
        with torch.autocast("cpu", enabled=False):
            return F.scaled_dot_product_attention(q.float(), k.float(), v.float(),
                                                  attn_mask=key_mask, scale=scale).to(q.dtype)
    return F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype), attn_mask=key_mask,
                                          scale=scale)


class SetClassifier(CausalClassifier):
    """What both set kinds share: the points, their ages, the sets of the newest ``window``
    points, and the separable first layer (see the module docstring).

    A subclass builds ``self.first`` (an ``nn.Linear(3, width)`` over ``[flux, error, age]``)
    in :meth:`build_sets` and implements :meth:`pool_set`, the symmetric function of one set of
    first-layer outputs.
    """

    def build_encoder(self, config: ModelConfig) -> None:
        self.embed = PointFeatures()  # replaces the shared embedding: see the module docstring
        self.age_mean, self.age_std = age_standardisation(config.window)
        self.build_sets(config)

    def build_sets(self, config: ModelConfig) -> None:
        """Create ``self.first`` and the kind's set modules."""
        raise NotImplementedError

    def pool_set(self, hidden: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Encoder output ``(S, d_model)`` of ``S`` sets from their points' first-layer outputs
        ``hidden (S, M, width)`` (before the nonlinearity) and validity ``valid (S, M)`` bool;
        symmetric in the ``M`` points."""
        raise NotImplementedError

    # -- the pieces ------------------------------------------------------------------------

    def age_feature(self, age: torch.Tensor) -> torch.Tensor:
        """Standardised ``log(1 + age / dt_scale)`` (float32) from ages [days] (float64
        preferred; negative ages count as 0)."""
        scaled = torch.log1p(age.clamp_min(0) / self.normalization.dt_scale)
        return ((scaled - self.age_mean) / self.age_std).float()

    def point_part(self, points: torch.Tensor) -> torch.Tensor:
        """The first layer's per-point term ``(..., width)`` (with the bias) from ``points
        (..., 2)``, computed once per point."""
        return F.linear(points, self.first.weight[:, :POINT_FEATURES], self.first.bias)

    def pair_hidden(self, point_part: torch.Tensor, age: torch.Tensor) -> torch.Tensor:
        """The first layer's output for every pair: ``point_part (..., M, width)`` plus the age
        term of ``u = age_feature(age) (..., M)``."""
        return torch.addcmul(point_part, self.age_feature(age)[..., None],
                             self.first.weight[:, POINT_FEATURES])

    # -- one set -----------------------------------------------------------------------------

    def encode_set(self, flux, error, times, valid, query_time, *,
                   check: bool = True) -> torch.Tensor:
        """Encoder output (before the optional ``pool_norm`` layer norm) of sets of points
        given in any order.

        Parameters
        ----------
        flux, error : array-like ``(..., M)``
            The points' normalised flux and error features (``features[..., 0]`` and
            ``features[..., 1]`` of :meth:`Normalization.features`).
        times : array-like ``(..., M)``
            Their times [days] (float64 kept: ages are differences taken in float64).
        valid : array-like ``(..., M)`` of bool
            Which entries are points of the set (the others are ignored, wherever they are).
        query_time : array-like ``(...)``
            The time of the newest point, from which ages are measured.
        check : bool
            Refuse sets without a valid point, or with a valid point after ``query_time``
            (a synchronisation on GPU; the stream skips it).

        Returns
        -------
        Tensor ``(..., d_model)`` float32
        """
        device = self.first.weight.device
        flux = torch.as_tensor(flux, dtype=torch.float32, device=device)
        error = torch.as_tensor(error, dtype=torch.float32, device=device)
        times = torch.as_tensor(times, dtype=torch.float64, device=device)
        valid = torch.as_tensor(valid, dtype=torch.bool, device=device)
        query_time = torch.as_tensor(query_time, dtype=torch.float64, device=device)
        if flux.ndim < 1 or not flux.shape == error.shape == times.shape == valid.shape:
            raise ValueError(f"flux, error, times and valid must have one shape (..., M), got "
                             f"{tuple(flux.shape)}, {tuple(error.shape)}, {tuple(times.shape)} "
                             f"and {tuple(valid.shape)}")
        if query_time.shape != flux.shape[:-1]:
            raise ValueError(f"query_time must have shape {tuple(flux.shape[:-1])} (one time per "
                             f"set), got {tuple(query_time.shape)}")
        age = query_time[..., None] - times
        if check:
            if not bool(valid.any(dim=-1).all()):
                raise ValueError("every set needs at least one valid point (valid is all False "
                                 "for some set)")
            if bool((valid & (age < 0)).any()):
                raise ValueError("a valid point lies after query_time: the query time must be "
                                 "that of the newest point of its set")
        lead, m = flux.shape[:-1], flux.shape[-1]
        points = torch.stack([flux, error], dim=-1).reshape(-1, m, POINT_FEATURES)
        age = torch.where(valid, age, 0.0).reshape(-1, m)
        hidden = self.pair_hidden(self.point_part(points), age)
        return self.pool_set(hidden, valid.reshape(-1, m)).float().reshape(*lead, -1)

    def set_state(self, flux, error, times, valid, query_time, *,
                  check: bool = True) -> torch.Tensor:
        """The state ``(..., d_model)`` of sets of points given in any order: what the causal
        pooling reads (:meth:`encode_set`, then the ``pool_norm`` layer norm if any).

        For the newest ``window`` points of an event up to observation ``k`` (``query_time``
        its time) this equals :meth:`encode`'s state ``k``, up to float summation order. The
        parameters are those of :meth:`encode_set`. Dropout applies in training mode; call it
        in eval mode (or under ``torch.no_grad()`` as needed) for deterministic numbers.
        """
        return self.norm(self.encode_set(flux, error, times, valid, query_time, check=check))

    # -- every set of a batch --------------------------------------------------------------

    def encode(self, features: torch.Tensor, return_attention: bool = False, *,
               times: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        """States ``(B, N, d_model)`` from features ``(B, N, 3)``: state ``k`` is that of the set
        of observation ``k``'s newest ``window`` valid points, with ages from ``times (B, N)``
        [days]; ``mask (B, N)`` marks valid observations (default: all). Returns
        ``(states, None)``."""
        if times is None:
            raise ValueError(f"a {self.kind!r} model needs the observation times: call "
                             "encode(features, times=times, mask=mask)")
        batch, n, _ = features.shape
        if mask is None:
            mask = torch.ones(batch, n, dtype=torch.bool, device=features.device)
        w = max(1, min(self.config.window, n))
        relative = torch.as_tensor(times, device=features.device).double()
        relative = relative - relative[:, :1]  # days since the first, in float64
        valid = _windows(mask.bool(), w, False)  # (B, N, W); [:, k, -1] is k itself
        # never an empty set: a padded observation (mask False) still holds itself
        valid = valid | (torch.arange(w, device=features.device) == w - 1)
        age = torch.where(valid, relative[:, :, None] - _windows(relative, w, 0.0), 0.0)
        hidden = self.pair_hidden(_windows(self.point_part(self.embed(features)), w, 0.0), age)
        states = self.pool_set(hidden.reshape(batch * n, w, -1), valid.reshape(batch * n, w))
        return self.norm(states.float().reshape(batch, n, -1)), None


__all__ = ["POINT_FEATURES", "PointFeatures", "SetClassifier", "age_standardisation", "attend"]
