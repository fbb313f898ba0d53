"""The configuration every model kind shares: :class:`ModelConfig` and the names it
chooses from (kinds, time encodings), and the fields older saved configs lack."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from microlens.core.classes import CLASS_NAMES
from microlens.core.settings import from_known_fields

N_FEATURES = 3
"""Input numbers per observation: normalised flux, error, time since the previous observation."""

TIME_ENCODINGS = ("none", "rotary")
"""Valid :attr:`ModelConfig.time_encoding` values."""

MODEL_KINDS = ("transformer", "cnn", "gru", "features", "rnn_vae", "deepsets", "set_transformer",
               "masked")
"""Valid :attr:`ModelConfig.kind` values (the registry with descriptions:
:data:`microlens.models.registry.KINDS`)."""

CPU_PASS_OBSERVATIONS = 16_384
"""Observations per forward pass on CPU (16 events of 1000), for inference and as training's
micro-batch: passes this small keep every activation below the allocator's large-block
threshold, so memory is reused instead of page-faulted afresh (at 64 x 1000 a training step is
~1.6x faster than one pass and needs ~2.4x less memory, and sizing by observations keeps that
as sequences grow); results equal those of one pass."""


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


PARAMETER_ORIGINS = ("peak", "latest")
"""Where parameter heads measure ``t_0`` from (:mod:`microlens.models.parameters`)."""


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a classifier: its ``kind`` (:data:`MODEL_KINDS`) and sizes.

    The transformer's defaults give 1.34 M parameters (0.49 M of them in the convolution stem,
    0.84 M without it). What each field means for each kind:

    ==================  ==========================================================================
    kind                fields used
    ==================  ==========================================================================
    ``transformer``     all but ``kernel_size``, ``latent_dim``, the loss weights, ``pretrained``
    ``cnn``             ``d_model`` channels, ``n_layers`` residual causal convolution blocks of
                        kernel ``kernel_size`` and dilations 1, 2, 4, ... (each followed by a
                        feed-forward network of width ``d_ff``), ``dropout``, ``pool_norm``
    ``gru``             ``d_model`` hidden units, ``n_layers`` stacked GRU layers, ``dropout``
                        (between layers and on the embedding), ``pool_norm``
    ``features``        none: summary and PSPL-fit statistics of the curve so far, classified
                        by gradient boosting (:mod:`microlens.models.features`)
    ``rnn_vae``         ``d_model`` GRU units, ``n_layers`` GRU layers (encoder and decoder),
                        ``latent_dim``, ``reconstruction_weight``, ``kl_weight``, ``dropout``
    ``deepsets``        ``d_model``, ``d_ff``, ``window`` (the newest points in each set),
                        ``dropout``, ``pool_norm``
    ``set_transformer`` ``d_model``, ``n_heads``, ``n_layers`` set-attention blocks, ``d_ff``,
                        ``window``, ``dropout``, ``pool_norm``
    ``masked``          the transformer's fields, and ``pretrained`` (the pretraining run of
                        :mod:`microlens.training.pretrain` whose encoder it starts from)
    ==================  ==========================================================================

    Every neural kind shares the input features (:class:`Normalization`), the embedding, the
    causal pooling (running mean and maximum) and the head (:class:`CausalClassifier`).
    """

    kind: str = "transformer"  # transformer, cnn, gru, features, rnn_vae, deepsets,
    #   set_transformer or masked (MODEL_KINDS: microlens.models.registry.KINDS)
    d_model: int = 128  # width of every hidden state
    n_heads: int = 8  # attention heads per layer (d_model must divide by it)
    n_layers: int = 4  # transformer blocks (cnn: convolution blocks; gru: GRU layers)
    d_ff: int = 512  # hidden width of each block's feed-forward network
    window: int = 64  # observation k attends to k - window + 1 .. k (itself included)
    dropout: float = 0.1  # on the embedding and on each residual branch (not on attention)
    n_classes: int = len(CLASS_NAMES)  # 0 flat, 1 PSPL, 2 binary
    # "rotary": queries and keys are rotated by the observation time (days since the event's
    # first observation) at head_dim / 2 log-spaced periods, so attention scores depend on
    # t_k - t_j; "none" (the default): order reaches the attention through the stem only
    time_encoding: str = "none"  # rotary (scores see time differences) or none (order via the stem)
    rotary_min_period: float = 0.1  # shortest rotary period [days]
    rotary_max_period: float = 1000.0  # longest rotary period [days]
    # > 0: a causal convolution stem of this kernel over the embedded observations, added
    # (after a GELU) to each token before the attention blocks; 0: none
    conv_stem_kernel: int = 5  # kernel of the causal convolution stem (0: no stem)
    # dilated layers of the convolution stem (dilations 1, 2, 4, ...): it reads the last
    # 1 + (kernel - 1) * (2**layers - 1) observations (253 at the defaults)
    conv_stem_layers: int = 6  # dilated stem layers (6 read the last 253 observations)
    # True: encoder states are layer-normalised before the causal pooling and the pooled vector
    # again in the head; False (the default): both are left as they are, so the running maximum
    # keeps how strongly a feature fired (a caustic crossing), not only its direction
    pool_norm: bool = False  # layer-normalise the encoder states before pooling
    # cnn only: the kernel of every causal convolution (the receptive field is
    # 1 + (kernel_size - 1) * (2**n_layers - 1) observations)
    kernel_size: int = 5  # cnn only: kernel of every dilated causal convolution
    # rnn_vae only: size of the Gaussian latent the classifier and the decoder read
    latent_dim: int = 16  # rnn_vae only: size of the Gaussian latent
    # rnn_vae only: weight of the flux reconstruction loss (per event: mean squared error of
    # the normalised flux over its observations) beside the classification loss
    reconstruction_weight: float = 1.0  # rnn_vae only: weight of the flux reconstruction loss
    # rnn_vae only: weight of the KL divergence of the latent from N(0, 1) (per event)
    kl_weight: float = 0.01  # rnn_vae only: weight of the latent's KL divergence from N(0, 1)
    # masked only: the pretraining run (microlens.training.pretrain) whose encoder initialises the
    # classifier; "" starts from random weights (then it is the transformer)
    pretrained: str = ""
    # True: heads beside the classifier predict quantiles of t_0, t_E, u_0, f_s (and s, q of
    # binaries) after every observation (microlens.models.parameters); every neural kind
    parameter_heads: bool = False  # lens-parameter quantiles after every observation
    # where the heads measure t_0 from: "latest", the latest observation, or "peak", the peak
    # anchor (the brightest stretch of observations so far,
    # microlens.models.parameters.peak_anchor): closer after the peak, not before it
    parameter_origin: str = "latest"  # t_0 from the latest observation or the peak anchor

    def __post_init__(self):
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"unknown ModelConfig.kind {self.kind!r}; valid: "
                             f"{', '.join(MODEL_KINDS)}")
        kernel = self.kernel_size
        if not isinstance(kernel, int) or isinstance(kernel, bool) or kernel < 2:
            raise ValueError(f"ModelConfig.kernel_size must be an integer >= 2, got {kernel!r}")
        if self.kind == "cnn" and self.n_layers > 16:
            raise ValueError(f"ModelConfig.n_layers={self.n_layers} is too deep for kind 'cnn' "
                             "(dilations 2**layer): at most 16")
        for name in ("d_model", "n_heads", "n_layers", "d_ff", "window", "n_classes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"ModelConfig.d_model={self.d_model} is not divisible by "
                             f"n_heads={self.n_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ModelConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if self.time_encoding not in TIME_ENCODINGS:
            raise ValueError(f"unknown ModelConfig.time_encoding {self.time_encoding!r}; "
                             f"valid: {', '.join(TIME_ENCODINGS)}")
        if self.time_encoding == "rotary" and (self.d_model // self.n_heads) % 2:
            raise ValueError(f"time_encoding='rotary' needs an even head dimension, got "
                             f"d_model / n_heads = {self.d_model // self.n_heads}")
        for name in ("rotary_min_period", "rotary_max_period"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    0 < value < math.inf):
                raise ValueError(f"ModelConfig.{name} must be a positive finite number of "
                                 f"days, got {value!r}")
        if self.rotary_min_period > self.rotary_max_period:
            raise ValueError(f"ModelConfig.rotary_min_period={self.rotary_min_period} exceeds "
                             f"rotary_max_period={self.rotary_max_period}")
        kernel = self.conv_stem_kernel
        if not isinstance(kernel, int) or isinstance(kernel, bool) or kernel < 0:
            raise ValueError(f"ModelConfig.conv_stem_kernel must be a non-negative integer "
                             f"(0: no stem), got {kernel!r}")
        layers = self.conv_stem_layers
        if not isinstance(layers, int) or isinstance(layers, bool) or not 1 <= layers <= 12:
            raise ValueError(f"ModelConfig.conv_stem_layers must be an integer from 1 to 12, "
                             f"got {layers!r}")
        latent = self.latent_dim
        if not isinstance(latent, int) or isinstance(latent, bool) or latent < 1:
            raise ValueError(f"ModelConfig.latent_dim must be a positive integer, got {latent!r}")
        for name in ("reconstruction_weight", "kl_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    0 <= value < math.inf):
                raise ValueError(f"ModelConfig.{name} must be a finite number >= 0, got "
                                 f"{value!r}")
        if not isinstance(self.pretrained, str):
            raise ValueError(f"ModelConfig.pretrained must be a path (str), got "
                             f"{self.pretrained!r}")
        if not isinstance(self.parameter_heads, bool):
            raise ValueError(f"ModelConfig.parameter_heads must be True or False, got "
                             f"{self.parameter_heads!r}")
        if self.parameter_origin not in PARAMETER_ORIGINS:
            raise ValueError(f"unknown ModelConfig.parameter_origin {self.parameter_origin!r}; "
                             f"valid: {', '.join(map(repr, PARAMETER_ORIGINS))}")
        if self.parameter_heads and self.kind == "features":
            raise ValueError("ModelConfig.parameter_heads is for the neural kinds; the "
                             "'features' kind reports its point-lens fit's parameters at its "
                             "update points (microlens.models.features)")
        if not isinstance(self.pool_norm, bool):
            raise ValueError(f"ModelConfig.pool_norm must be True or False, got "
                             f"{self.pool_norm!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        return from_known_fields(cls, data, "ModelConfig settings")

    @classmethod
    def from_saved(cls, data: dict) -> ModelConfig:
        """A config read from a run directory: a field it lacks was written before the field
        existed, so it takes the value that reproduces the model of that time
        (:data:`SAVED_BEFORE_FIELD`), not today's default."""
        return cls.from_dict({**SAVED_BEFORE_FIELD, **data})


SAVED_BEFORE_FIELD = {"time_encoding": "none", "conv_stem_kernel": 0, "conv_stem_layers": 1,
                      "pool_norm": True, "kind": "transformer", "kernel_size": 5,
                      "latent_dim": 16, "reconstruction_weight": 1.0, "kl_weight": 0.01,
                      "pretrained": "", "parameter_heads": False,
                      "parameter_origin": "latest"}
"""The behaviour of models saved before these :class:`ModelConfig` fields existed."""


# --------------------------------------------------------------------------------------------
# Input features
# --------------------------------------------------------------------------------------------
