"""The encoder's layers: the causal convolution stem, sliding-window attention with optional
rotary time encoding, and the pre-norm block."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from microlens.models.config import ModelConfig


def window_mask(batch: int, n_blocks: int, window: int, device=None) -> torch.Tensor:
    """Additive band mask ``(batch * n_blocks, 1, window, 2 * window)`` for block attention.

    Query ``a`` of a block sees key ``b`` of [previous block, own block] when
    ``a < b <= a + window``, i.e. the ``window`` observations ending at itself. The first block
    of every event has no previous block (those keys belong to the event before it in the batch).
    """
    a = torch.arange(window, device=device)[:, None]
    b = torch.arange(2 * window, device=device)[None, :]
    allowed = ((b > a) & (b <= a + window)).expand(batch, n_blocks, window, 2 * window).clone()
    allowed[:, 0, :, :window] = False
    mask = torch.zeros(allowed.shape, device=device)
    mask.masked_fill_(~allowed, float("-inf"))
    return mask.view(batch * n_blocks, 1, window, 2 * window)


def rotary_periods(config: ModelConfig, device=None) -> torch.Tensor:
    """The ``head_dim / 2`` rotary periods [days], log-spaced from ``rotary_min_period`` to
    ``rotary_max_period`` (float64)."""
    n = (config.d_model // config.n_heads) // 2
    return torch.logspace(math.log10(config.rotary_min_period),
                          math.log10(config.rotary_max_period), n, dtype=torch.float64,
                          device=device)


def rotary_angles(relative_times: torch.Tensor, periods: torch.Tensor):
    """``(cos, sin)`` float32, shape ``relative_times.shape + (len(periods),)``.

    ``relative_times`` [days] are times since the event's first observation. The phase
    ``2 pi t / P`` is reduced modulo ``2 pi`` in float64 before the cast, so a period of 0.1 d
    keeps its precision after thousands of days (float32 would lose ~1e-2 rad there).
    """
    phase = torch.remainder(relative_times.double()[..., None] / periods, 1.0) * (2 * math.pi)
    return phase.cos().float(), phase.sin().float()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the pairs ``(x[..., i], x[..., i + dh/2])`` of ``x (..., dh)`` by the angles
    whose cosines and sines are ``cos, sin (..., dh/2)`` (broadcast); keeps ``x``'s dtype.

    A query rotated by ``t_k`` and a key by ``t_j`` have a dot product that depends on
    ``t_k - t_j`` only, so the attention sees time differences, never absolute times.
    """
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).to(x.dtype)


class CausalConvStem(nn.Module):
    """A causal temporal-convolution stack: ``conv_stem_layers`` residual layers
    ``x + GELU(Conv1d_dilated(x))`` with dilations 1, 2, 4, ...; the convolution of layer
    ``i`` at observation ``k`` reads its inputs at ``k - j * 2**i`` for ``j = 0 .. kernel - 1``
    (zeros before the first observation). Order and local shape over
    :attr:`receptive_field` observations, before any attention."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.kernel = config.conv_stem_kernel
        self.dilations = tuple(2 ** i for i in range(config.conv_stem_layers))
        self.convs = nn.ModuleList(nn.Conv1d(config.d_model, config.d_model, self.kernel,
                                             dilation=dilation) for dilation in self.dilations)

    @property
    def receptive_field(self) -> int:
        """Observations (the current one included) that the stem's output at ``k`` reads."""
        return 1 + (self.kernel - 1) * sum(self.dilations)

    @property
    def history_lengths(self) -> tuple[int, ...]:
        """Previous inputs each layer needs in streaming: ``(kernel - 1) * dilation``."""
        return tuple((self.kernel - 1) * dilation for dilation in self.dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, d) -> (B, N, d)``, causal (left padding only)."""
        for conv, history in zip(self.convs, self.history_lengths, strict=True):
            y = conv(F.pad(x.transpose(1, 2), (history, 0)))
            x = x + F.gelu(y).transpose(1, 2).to(x.dtype)
        return x

    def step(self, history: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One new token per event, ``x (E, d)``.

        ``history (E, sum(history_lengths), d)`` holds, layer after layer, the previous
        inputs of each layer, oldest first (zeros where none). Returns the stem's output
        ``(E, d)`` and the history that includes this observation.
        """
        parts, start = [], 0
        for conv, length, dilation in zip(self.convs, self.history_lengths, self.dilations,
                                          strict=True):
            seen = torch.cat([history[:, start:start + length], x[:, None]], dim=1)
            window = seen[:, ::dilation].transpose(1, 2)  # (E, d, kernel)
            # the slice already spaces the inputs by the dilation: an undilated product
            x = x + F.gelu(F.conv1d(window, conv.weight, conv.bias)[..., 0]).to(x.dtype)
            parts.append(seen[:, 1:])
            start += length
        return x, torch.cat(parts, dim=1)


class SlidingWindowAttention(nn.Module):
    """Multi-head causal attention over the last ``window`` observations (itself included)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_heads = config.n_heads
        self.head_dim = config.d_model // config.n_heads
        self.window = config.window
        self.query = nn.Linear(config.d_model, config.d_model)
        self.key_value = nn.Linear(config.d_model, 2 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)

    def forward(self, z: torch.Tensor, mask: torch.Tensor, return_weights: bool = False,
                rotary: tuple[torch.Tensor, torch.Tensor] | None = None):
        """Attend within the window.

        Parameters
        ----------
        z : Tensor ``(B, N, d)``, ``N`` a multiple of ``window``
        mask : Tensor from :func:`window_mask`
        return_weights : bool
            Also return the weights ``(B, heads, N, window)``; entry ``[..., k, j]`` is the
            weight of observation ``k - window + 1 + j`` (``j = window - 1`` is ``k`` itself).
        rotary : (cos, sin), optional
            Each ``(B * N, 1, head_dim / 2)`` from :func:`rotary_angles`: queries and keys are
            rotated by their observation's time (:func:`apply_rotary`) before the scores.
        """
        batch, n, d = z.shape
        w, h, dh = self.window, self.n_heads, self.head_dim
        blocks = batch * (n // w)
        flat = z.reshape(batch * n, d)
        q = self.query(flat)
        kv = self.key_value(flat)
        if rotary is not None:
            q = apply_rotary(q.view(batch * n, h, dh), *rotary).view(batch * n, d)
            kv = kv.view(batch * n, 2, h, dh)
            kv = torch.stack([apply_rotary(kv[:, 0], *rotary), kv[:, 1]], dim=1)
            kv = kv.view(batch * n, 2 * d)
        q = q.view(blocks, w, h, dh).transpose(1, 2)  # (blocks, h, W, dh)
        k, v = self._block_keys_values(kv, blocks)  # (blocks, h, 2W, dh)
        weights = None
        if return_weights:
            scores = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(dh) + mask
            probs = scores.softmax(dim=-1)  # (blocks, h, W, 2W)
            y = (probs @ v.float()).to(q.dtype)
            index = (torch.arange(w, device=z.device)[:, None] + 1
                     + torch.arange(w, device=z.device)[None, :])  # query a -> keys a+1..a+W
            band = probs.gather(-1, index.expand(blocks, h, w, w))
            weights = (band.view(batch, n // w, h, w, w).permute(0, 2, 1, 3, 4)
                       .reshape(batch, h, n, w))
        elif z.device.type == "cpu":
            # The fused CPU kernel is much faster in float32 than in bfloat16 (backward above
            # all); the projections around it still run in the autocast dtype.
            with torch.autocast("cpu", enabled=False):
                y = F.scaled_dot_product_attention(q.float(), k.float(), v.float(),
                                                   attn_mask=mask).to(q.dtype)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype))
        y = y.transpose(1, 2).reshape(batch, n, d)
        return self.out(y), weights

    def _block_keys_values(self, kv: torch.Tensor, blocks: int):
        """Keys and values of [previous block, own block] for every block of ``window`` rows.

        ``kv`` is ``(blocks * window, 2 * d_model)``. The first block of an event receives rows
        of another event (or none), which :func:`window_mask` hides. Without gradients the
        windows are an overlapping strided view of the padded rows (no copy); for training
        they are concatenated, because the backward of overlapping views scatters and made a
        step ~20 % slower.
        """
        w, h, dh = self.window, self.n_heads, self.head_dim
        if torch.is_grad_enabled() and kv.requires_grad:
            kv = kv.view(blocks, w, 2 * h * dh)
            kv = torch.cat([torch.roll(kv, 1, dims=0), kv], dim=1).view(blocks, 2 * w, 2, h, dh)
            return kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)
        kv = F.pad(kv, (0, 0, w, 0)).unfold(0, 2 * w, w).view(blocks, 2, h, dh, 2 * w)
        return kv[:, 0].transpose(-1, -2), kv[:, 1].transpose(-1, -2)


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(LN(x))``, then ``x + FFN(LN(x))``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.d_model)
        self.attention = SlidingWindowAttention(config)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.feed_forward = nn.Sequential(nn.Linear(config.d_model, config.d_ff), nn.GELU(),
                                          nn.Linear(config.d_ff, config.d_model))
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, mask, return_weights: bool = False, rotary=None):
        y, weights = self.attention(self.norm1(x), mask, return_weights, rotary)
        x = x + self.dropout(y)
        x = x + self.dropout(self.feed_forward(self.norm2(x)))
        return x, weights


# --------------------------------------------------------------------------------------------
# The classifier
# --------------------------------------------------------------------------------------------
