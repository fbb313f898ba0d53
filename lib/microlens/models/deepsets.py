"""Kind ``deepsets`` (Zaheer et al. 2017): the newest ``window`` points of a curve as a set,
each point through an MLP ``phi``, pooled by the masked mean and maximum, then an MLP ``rho``
(:mod:`microlens.models.set_models` says what a point and a set are)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from microlens.models.config import ModelConfig
from microlens.models.set_models import POINT_FEATURES, SetClassifier


class DeepSets(SetClassifier):
    """Kind ``"deepsets"``: ``rho([mean, max] of phi(point) over the set)`` (see the module
    docstring); ``d_model``, ``d_ff``, ``window``, ``dropout`` (on ``rho``'s hidden layer) and
    ``pool_norm`` apply.
    """

    kind = "deepsets"
    # The (P, window, d_ff) and (P, window, d_model) pair tensors of a pass of P observations
    # dominate memory. Measured for a training pass at d_model 64, d_ff 128 (peak RSS increase):
    # ~0.15 GB at window 16, ~0.3 GB at 32, ~0.4 GB at 64; speed barely depends on P here.
    cpu_pass_observations = 2_048

    def build_sets(self, config: ModelConfig) -> None:
        self.first = nn.Linear(POINT_FEATURES + 1, config.d_ff)
        self.phi_out = nn.Linear(config.d_ff, config.d_model)
        self.rho = nn.Sequential(nn.Linear(2 * config.d_model, config.d_ff), nn.GELU(),
                                 nn.Dropout(config.dropout), nn.Linear(config.d_ff, config.d_model))

    def pool_set(self, hidden: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        phi = self.phi_out(F.gelu(hidden))  # (S, M, d)
        weights = valid.to(phi.dtype)
        weights = weights / weights.sum(dim=-1, keepdim=True).clamp_min(1)
        mean = (weights[:, None, :] @ phi)[:, 0]  # masked mean, without a masked copy
        maximum = phi.masked_fill(~valid[..., None], -math.inf).amax(dim=-2)
        return self.rho(torch.cat([mean, maximum], dim=-1))
