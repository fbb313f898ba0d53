"""The causal transformer classifier: input features, sliding-window encoder, causal pooling.

One observation is one token, described by three numbers (see :class:`Normalization`):

1. its flux relative to the event's own baseline, in units of the baseline scatter,
   ``asinh((F - b) / s)``: linear near the baseline, logarithmic in the peak, never clipped;
2. its photometric error relative to the baseline flux, ``log(sigma_F / b)``, standardised;
3. the time since the previous observation, ``log(1 + dt / dt_scale)`` with ``dt_scale`` the
   training set's median interval, standardised (0 for the first observation, logarithmic for
   long gaps, so no value is far out of range).

There is no absolute-position or observation-index embedding: time enters only through the
intervals. The baseline ``b`` (median flux) and scatter ``s`` (median error) are taken from the
first ``reference_points`` observations, and while fewer have arrived from those seen so far, so
every feature of observation ``k`` depends on observations ``1..k`` only.

Encoder: first a causal convolution stem, then ``n_layers`` pre-norm attention blocks.

* The stem (``conv_stem_kernel=K``, ``conv_stem_layers=L``; 5 and 6 by default) is ``L``
  residual layers ``x + GELU(Conv1d(x))`` with dilations 1, 2, 4, ..., left padding only: the
  state of observation ``k`` then carries the order and local shape of observations
  ``k - 252 .. k`` (a rise, a fall, a caustic crossing). Attention alone has no order inside its
  window: at an even cadence it sees a bag of tokens (the interval feature is then constant),
  and without the stem the model stays at chance on PSPL versus binary (docs/model.md). The
  stream keeps each layer's last ``(K - 1) * dilation`` inputs.
* The attention is causal and sliding-window: observation ``k`` attends to observations
  ``k - window + 1 .. k``. The sequence is cut into blocks of ``window`` observations; each block
  of queries attends to its own block and the one before it through one fused
  ``scaled_dot_product_attention`` call with a band mask, so time and memory grow as
  ``O(N * window)``; no ``N x N`` matrix is ever formed.
* ``time_encoding="rotary"`` (opt-in) also rotates queries and keys by the observation time in
  days since the event's first observation (phases reduced in float64, then cast), at
  ``head_dim / 2`` periods log-spaced from ``rotary_min_period`` to ``rotary_max_period``: a
  score then depends on ``t_k - t_j`` only, so adding a constant to all times changes nothing
  and the streaming cache (keys stored already rotated) stays exact. No parameters are added.

Neither uses absolute time or an observation index (a shortcut).

Pooling is causal too: the running mean and running max of the encoder states up to ``k``
(layer-normalised first only with ``pool_norm=True``, the behaviour before the stem), then a
small head gives class logits at every observation. The prediction after observation ``k``
therefore uses observations ``1..k`` only, and streaming (:mod:`microlens.models.stream`) is the
same computation. A fitted temperature (a buffer, saved with the weights) calibrates probabilities.

Batches are padded at the end (valid observations first, as :mod:`microlens.data.store` provides);
padded positions come after every valid one, so causal attention and pooling never see them.

Quick use::

    model = MicrolensTransformer(ModelConfig(), Normalization.fit(batch["times"], ...))
    out = model(batch["times"], batch["flux"], batch["flux_err"], batch["mask"])
    out["logits"]          # (B, N, 3), one prediction per observation
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from microlens.models.base import CausalClassifier
from microlens.models.config import ModelConfig
from microlens.models.layers import (
    Block,
    CausalConvStem,
    rotary_angles,
    rotary_periods,
    window_mask,
)


class MicrolensTransformer(CausalClassifier):
    """Causal sliding-window transformer giving class logits after every observation (kind
    ``"transformer"``; see the module docstring).

    Parameters
    ----------
    config : ModelConfig
    normalization : Normalization
        Input standardisation learned from the training set (saved as JSON with the model).
    """

    kind = "transformer"
    has_attention = True

    def build_encoder(self, config: ModelConfig) -> None:
        # Absent at the defaults, so checkpoints from before these options load unchanged.
        self.stem = CausalConvStem(config) if config.conv_stem_kernel else None
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))

    def encode(self, features: torch.Tensor, return_attention: bool = False, *,
               times: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        """Encoder states ``(B, N, d)`` from features ``(B, N, 3)``, before pooling.

        ``times`` ``(B, N)`` [days] (and the ``mask`` of valid observations) are needed with
        ``time_encoding="rotary"`` only. Returns ``(states, attention)``; ``attention`` is a
        list with one ``(B, heads, N, window)`` tensor per layer when requested, else None.
        """
        batch, n, _ = features.shape
        w = self.config.window
        padded = -(-max(n, 1) // w) * w
        x = self.embed_dropout(self.embed(F.pad(features, (0, 0, 0, padded - n))))
        if self.stem is not None:
            x = self.stem(x)
        rotary = (self.rotary_angles(times, mask, padded)
                  if self.config.time_encoding == "rotary" else None)
        band = window_mask(batch, padded // w, w, device=features.device)
        attention = [] if return_attention else None
        for block in self.blocks:
            x, weights = block(x, band, return_attention, rotary)
            if return_attention:
                attention.append(weights[:, :, :n])
        return self.norm(x[:, :n]), attention

    def rotary_angles(self, times, mask=None, length: int | None = None):
        """``(cos, sin)``, each ``(B * length, 1, head_dim / 2)``, for :func:`apply_rotary`.

        Angles come from ``times - times[:, :1]`` in float64 (the event's first observation is
        time 0), so a constant added to every time changes nothing; padded observations (mask
        False, and the ``length - N`` added to fill the last window block) get angle 0.
        """
        if times is None:
            raise ValueError("time_encoding='rotary' needs the observation times: call "
                             "encode(features, times=times, mask=mask)")
        times = torch.as_tensor(times).double()
        relative = times - times[:, :1]
        if mask is not None:
            relative = torch.where(torch.as_tensor(mask, device=times.device), relative, 0.0)
        n = times.shape[1]
        relative = F.pad(relative, (0, (length or n) - n))
        cos, sin = rotary_angles(relative, rotary_periods(self.config, relative.device))
        return cos.reshape(-1, 1, cos.shape[-1]), sin.reshape(-1, 1, sin.shape[-1])
