"""Kind ``set_transformer`` (Lee et al. 2019): the newest ``window`` points of a curve as a
set, through attention among the points and pooling by attention
(:mod:`microlens.models.set_models` says what a point and a set are)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from microlens.models.config import ModelConfig
from microlens.models.set_models import POINT_FEATURES, SetClassifier, attend


class SetAttentionBlock(nn.Module):
    """SAB, pre-norm: ``x + MHA(LN(x))`` among the points of each set (keys masked for validity
    only), then ``x + FFN(LN(x))``; equivariant to permutations of the points."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_heads = config.n_heads
        self.norm1 = nn.LayerNorm(config.d_model)
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.feed_forward = nn.Sequential(nn.Linear(config.d_model, config.d_ff), nn.GELU(),
                                          nn.Linear(config.d_ff, config.d_model))
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """``x (S, M, d)``, ``key_mask (S, 1, 1, M)`` bool -> ``(S, M, d)``."""
        s, m, d = x.shape
        h = self.n_heads
        q, k, v = self.qkv(self.norm1(x)).view(s, m, 3, h, d // h).permute(2, 0, 3, 1, 4)
        y = attend(q, k, v, key_mask).transpose(1, 2).reshape(s, m, d)
        x = x + self.dropout(self.out(y))
        return x + self.dropout(self.feed_forward(self.norm2(x)))


class AttentionPooling(nn.Module):
    """PMA with one learned seed ``s``: ``z = s + MHA(s, LN(x))`` over the valid points, then
    ``z + FFN(LN(z))``; invariant to permutations of the points.

    With a single query the attention is computed in the points' own space, exactly: head
    ``h``'s score of point ``j`` is ``q_h . (K_h x_j) = (K_h^T q_h) . x_j`` (a key bias would add
    the same number to every score, so there is none), and its output is
    ``V_h (sum_j a_hj x_j) + b_h`` (the weights sum to 1). One ``scaled_dot_product_attention``
    call with the ``heads`` queries ``K_h^T q_h`` over the normalised points gives every
    ``sum_j a_hj x_j``: ``O(heads * d_model)`` per point instead of the ``O(d_model^2)`` of
    projecting every point to keys and values.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        d = config.d_model
        self.n_heads = config.n_heads
        bound = 1 / math.sqrt(d)  # as a Linear's bias
        self.seed = nn.Parameter(torch.empty(d).uniform_(-bound, bound))
        self.norm1 = nn.LayerNorm(d)
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d, bias=False)
        self.value = nn.Linear(d, d)
        self.out = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.feed_forward = nn.Sequential(nn.Linear(d, config.d_ff), nn.GELU(),
                                          nn.Linear(config.d_ff, d))
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """``x (S, M, d)``, ``key_mask (S, 1, 1, M)`` bool -> ``(S, d)``."""
        s, m, d = x.shape
        h, dh = self.n_heads, d // self.n_heads
        z = self.norm1(x)[:, None]  # (S, 1, M, d): one "head" whose h queries are the heads
        q = self.query(self.seed).view(h, 1, dh)
        q = (q @ self.key.weight.view(h, dh, d))[:, 0]  # (h, d): K_h^T q_h
        q = q.to(z.dtype).expand(s, 1, h, d)
        pooled = attend(q, z, z, key_mask, scale=1 / math.sqrt(dh))[:, 0]  # (S, h, d)
        weight = self.value.weight.view(h, dh, d).to(pooled.dtype)
        y = (pooled.transpose(0, 1) @ weight.transpose(1, 2)).transpose(0, 1)  # (S, h, dh)
        y = y.reshape(s, d) + self.value.bias.to(y.dtype)
        z = self.seed + self.dropout(self.out(y))
        return z + self.dropout(self.feed_forward(self.norm2(z)))


class SetTransformer(SetClassifier):
    """Kind ``"set_transformer"``: points embedded, ``n_layers`` set-attention blocks
    (:class:`SetAttentionBlock`), pooling by attention with one seed (:class:`AttentionPooling`);
    ``d_model``, ``n_heads``, ``n_layers``, ``d_ff``, ``window``, ``dropout`` (on the embedding and
    every residual branch) and ``pool_norm`` apply (see the module docstring).
    """

    kind = "set_transformer"
    # Every point of every set is a token: a pass of P observations holds P * window tokens of
    # every layer for the backward. Measured for a training pass of 1,024 observations (peak
    # RSS increase): ~0.05 GB at window 8, d_model 32, one layer; ~0.17 GB at window 16,
    # d_model 64, one layer; ~0.95 GB at window 64, d_model 64, two layers; twice that at 2,048,
    # which was ~10 % faster than 1,024 at window 8, d_model 32 (fewer, larger kernels).
    cpu_pass_observations = 2_048

    def build_sets(self, config: ModelConfig) -> None:
        self.first = nn.Linear(POINT_FEATURES + 1, config.d_model)
        self.point_out = nn.Linear(config.d_model, config.d_model)
        self.point_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(SetAttentionBlock(config) for _ in range(config.n_layers))
        self.pooling = AttentionPooling(config)

    def pool_set(self, hidden: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        x = self.point_dropout(self.point_out(F.gelu(hidden)))  # (S, M, d)
        key_mask = valid[:, None, None, :]
        for block in self.blocks:
            x = block(x, key_mask)
        return self.pooling(x, key_mask)
