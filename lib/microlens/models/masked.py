"""The ``masked`` model kind: the causal transformer started from a masked pretraining run.

:class:`MaskedTransformer` is :class:`~microlens.models.transformer.MicrolensTransformer` (the same
modules and state-dict keys), whose input normalisation and encoder weights come from the
pretraining run that :attr:`ModelConfig.pretrained <microlens.models.config.ModelConfig.pretrained>`
names; the pretraining itself (objective, loop, run directory) is
:mod:`microlens.training.pretrain`, which imports this module. It lives apart so that the registry
(:mod:`microlens.models.registry`) can import the kind without the pretraining loop, which imports
:mod:`microlens.training.train`.
"""

from __future__ import annotations

from pathlib import Path

from microlens.core.paths import resolve_path
from microlens.models.config import ModelConfig
from microlens.models.inputs import Normalization
from microlens.models.runs import load_torch, read_json
from microlens.models.transformer import MicrolensTransformer

ENCODER_FIELDS = ("d_model", "n_heads", "n_layers", "d_ff", "window", "time_encoding",
                  "rotary_min_period", "rotary_max_period", "conv_stem_kernel",
                  "conv_stem_layers", "pool_norm")
"""The :class:`~microlens.models.config.ModelConfig` fields that shape the encoder's computation: a
classifier starts from a pretraining run only when these agree (``dropout`` may differ)."""

NOT_ENCODER = ("head.", "temperature", "temperature_counts", "temperature_curve")
"""State-dict keys (prefix ``head.``, or these names) that :meth:`MaskedTransformer.load_pretrained`
leaves alone: the classification head and the calibration buffers."""

FINISHED_FILES = ("config.json", "normalization.json", "encoder.pt", "metrics.json")
"""What a finished pretraining run holds (``metrics.json`` is written last)."""

# --------------------------------------------------------------------------------------------
# The model kind
# --------------------------------------------------------------------------------------------


def is_encoder_key(key: str) -> bool:
    """Whether a :class:`MaskedTransformer` state-dict key belongs to the encoder (embedding,
    stem, attention blocks, pooling norm), i.e. not to the head or the calibration."""
    return not key.startswith("head.") and key not in NOT_ENCODER


def encoder_config(model: ModelConfig) -> ModelConfig:
    """The ``masked`` :class:`~microlens.models.config.ModelConfig` of ``model``'s encoder: its
    :data:`ENCODER_FIELDS` and ``dropout``, every other field at its default (``pretrained``
    empty), so fine-tuning settings that do not touch the encoder do not change it."""
    return ModelConfig(kind="masked", dropout=model.dropout,
                       **{name: getattr(model, name) for name in ENCODER_FIELDS})


def encoder_differences(pretrained: ModelConfig, model: ModelConfig) -> list[str]:
    """``"field: pretrained X, model Y"`` for every :data:`ENCODER_FIELDS` entry that differs
    (the rotary periods only with ``time_encoding="rotary"``, the stem's layers only with a
    stem: otherwise they compute nothing)."""
    out = []
    for name in ENCODER_FIELDS:
        if name.startswith("rotary_") and pretrained.time_encoding == model.time_encoding \
                == "none":
            continue
        if name == "conv_stem_layers" and pretrained.conv_stem_kernel == model.conv_stem_kernel \
                == 0:
            continue
        a, b = getattr(pretrained, name), getattr(model, name)
        if a != b:
            out.append(f"{name}: pretrained {a!r}, model {b!r}")
    return out


def pretraining_run(config: ModelConfig) -> Path:
    """The finished pretraining run that ``config.pretrained`` names, checked.

    Raises
    ------
    FileNotFoundError
        When there is no such directory, or it is not finished (a file of
        :data:`FINISHED_FILES` is missing; ``metrics.json`` is written last).
    ValueError
        When it is not a pretraining run, or its encoder settings differ from ``config``'s
        (the message names every differing field with both values).
    """
    if not config.pretrained:
        raise ValueError("ModelConfig.pretrained is empty: there is no pretraining run to read")
    run = resolve_path(config.pretrained)
    if not run.is_dir():
        raise FileNotFoundError(
            f"ModelConfig.pretrained={config.pretrained!r}: no pretraining run at {run}; make "
            "one with microlens.training.pretrain.ensure_pretrained (or python -m "
            "microlens.training.pretrain), "
            "or set pretrained='' to train from scratch")
    missing = [name for name in FINISHED_FILES if not (run / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{run} is not a finished pretraining run: {', '.join(missing)} missing "
            "(metrics.json is written last); finish it with "
            "microlens.training.pretrain.pretrain(config, "
            "resume=True) or python -m microlens.training.pretrain --config "
            f"{run / 'config.json'} --resume")
    saved = read_json(run / "config.json")
    if "pretrain" not in saved or "model" not in saved:
        raise ValueError(f"{run} is not a pretraining run: its config.json has no 'pretrain' "
                         "section (a training run's directory?)")
    differ = encoder_differences(ModelConfig.from_saved(saved["model"]), config)
    if differ:
        raise ValueError(f"the pretraining run {run} has another encoder than this "
                         f"{config.kind!r} model: {'; '.join(differ)}. Use the pretraining's "
                         "encoder settings, or pretrain again with these")
    return run


class MaskedTransformer(MicrolensTransformer):
    """Kind ``"masked"``: the causal transformer
    (:class:`~microlens.models.transformer.MicrolensTransformer`,
    identical modules and weights' keys) whose encoder starts from a masked pretraining run
    (``config.pretrained``; see the module docstring). With ``pretrained=""`` it is the
    transformer trained from scratch.

    Parameters
    ----------
    config : ModelConfig
        ``kind="masked"``.
    normalization : Normalization
        The pretraining's input normalisation (:meth:`pretrained_normalization`).
    """

    kind = "masked"

    @classmethod
    def pretrained_normalization(cls, config: ModelConfig) -> Normalization | None:
        """The normalisation saved by the pretraining run ``config.pretrained`` (checked by
        :func:`pretraining_run`: finished, and with this encoder), or None when
        ``config.pretrained`` is empty (training then fits one)."""
        if not config.pretrained:
            return None
        return Normalization.load(pretraining_run(config) / "normalization.json")

    def load_pretrained(self) -> None:
        """Copy the pretraining run's encoder weights (``encoder.pt``, read with
        ``weights_only=True``) into this model: every key but the head's and the temperature's.
        Does nothing when ``config.pretrained`` is empty.

        Raises
        ------
        FileNotFoundError, ValueError
            As :func:`pretraining_run` (missing or unfinished run, other encoder settings); a
            ValueError also when this model's normalisation is not the pretraining's or the
            weights do not hold exactly this encoder's keys.
        """
        if not self.config.pretrained:
            return
        run = pretraining_run(self.config)
        saved = Normalization.load(run / "normalization.json")
        if saved != self.normalization:
            raise ValueError(f"this model's input normalisation is not that of its pretraining "
                             f"run {run} (build it with "
                             "MaskedTransformer.pretrained_normalization(config))")
        state = load_torch(run / "encoder.pt", map_location=self.temperature.device,
                           remedy="pretrain again or restore it")
        encoder = {k: v for k, v in state.items() if is_encoder_key(k)}
        expected = {k for k in self.state_dict() if is_encoder_key(k)}
        if set(encoder) != expected:
            raise ValueError(
                f"{run / 'encoder.pt'} does not hold this encoder: missing "
                f"{sorted(expected - set(encoder))[:5]}, unexpected "
                f"{sorted(set(encoder) - expected)[:5]}")
        result = self.load_state_dict(encoder, strict=False)
        assert not result.unexpected_keys, result.unexpected_keys


__all__ = ["ENCODER_FIELDS", "FINISHED_FILES", "NOT_ENCODER", "MaskedTransformer",
           "encoder_config", "encoder_differences", "is_encoder_key", "pretraining_run"]
