"""Kind ``cnn``: causal dilated 1-D convolutions over the observation sequence (a temporal
convolution network), per-observation logits: the thesis's predecessor, a TimeDistributed CNN
classifying after every observation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from microlens.models.base import CausalClassifier
from microlens.models.config import ModelConfig


class ConvBlock(nn.Module):
    """Pre-norm residual block of a temporal convolution network: ``x + GELU(conv(LN(x)))``
    with a causal dilated convolution, then ``x + FFN(LN(x))``."""

    def __init__(self, config: ModelConfig, dilation: int):
        super().__init__()
        self.kernel = config.kernel_size
        self.dilation = dilation
        self.norm1 = nn.LayerNorm(config.d_model)
        self.conv = nn.Conv1d(config.d_model, config.d_model, self.kernel, dilation=dilation)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.feed_forward = nn.Sequential(nn.Linear(config.d_model, config.d_ff), nn.GELU(),
                                          nn.Linear(config.d_ff, config.d_model))
        self.dropout = nn.Dropout(config.dropout)

    @property
    def history(self) -> int:
        """Previous inputs the convolution reads: ``(kernel - 1) * dilation``."""
        return (self.kernel - 1) * self.dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, d) -> (B, N, d)``, causal (left padding only)."""
        z = self.norm1(x).transpose(1, 2)
        y = self.conv(F.pad(z, (self.history, 0))).transpose(1, 2)
        x = x + self.dropout(F.gelu(y).to(x.dtype))
        return x + self.dropout(self.feed_forward(self.norm2(x)))

    def step(self, history: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One new token per event ``x (E, d)``; ``history (E, self.history, d)`` holds the
        previous normalised inputs, oldest first (zeros before the first). Returns the output
        ``(E, d)`` and the history including this observation."""
        seen = torch.cat([history, self.norm1(x)[:, None]], dim=1)
        window = seen[:, :: self.dilation].transpose(1, 2)  # (E, d, kernel), already dilated
        y = F.conv1d(window, self.conv.weight, self.conv.bias)[..., 0]
        x = x + F.gelu(y).to(x.dtype)
        return x + self.feed_forward(self.norm2(x)), seen[:, 1:]


class CausalCNN(CausalClassifier):
    """Kind ``"cnn"``: ``n_layers`` residual causal convolution blocks (:class:`ConvBlock`) of
    kernel ``kernel_size`` and dilations 1, 2, 4, ..., over the embedded observations.

    The state after observation ``k`` reads observations ``k - R + 1 .. k`` with the receptive
    field ``R = 1 + (kernel_size - 1) * (2**n_layers - 1)``; the causal pooling then carries
    everything before that.
    """

    kind = "cnn"

    def build_encoder(self, config: ModelConfig) -> None:
        self.blocks = nn.ModuleList(ConvBlock(config, 2 ** i) for i in range(config.n_layers))

    @property
    def receptive_field(self) -> int:
        """Observations (the current one included) that one encoder state reads."""
        return 1 + sum(block.history for block in self.blocks)

    def encode(self, features, return_attention: bool = False, *, times=None, mask=None):
        x = self.embed_dropout(self.embed(features))
        for block in self.blocks:
            x = block(x)
        return self.norm(x), None
