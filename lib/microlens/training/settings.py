"""The settings base of every gradient-descent run: one validation, one file form.

:class:`microlens.training.train.TrainConfig` (supervised training and fine-tuning) and
:class:`microlens.training.pretrain.PretrainConfig` (masked pretraining) declare their own fields
and inherit from :class:`TrainingSettings` the checks of the fields they share (types,
finiteness, ranges; a bool is never taken for an integer or a number), the run directory, and
reading and writing as JSON. A subclass adds the checks of its own fields in :meth:`check`.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict
from pathlib import Path

from microlens.core.devices import DEVICES
from microlens.core.paths import resolve_path, write_json_atomic
from microlens.core.settings import from_known_fields
from microlens.models.config import ModelConfig
from microlens.models.inputs import BASELINE_METHODS

PRECISIONS = ("auto", "fp32", "bf16")
"""Valid ``precision`` settings: auto (bf16 on a CUDA GPU that supports it, else fp32)."""


def _is_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite_number(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


class TrainingSettings:
    """Checks and file form shared by the training and pretraining settings dataclasses.

    Subclasses are frozen dataclasses with the fields named below, a ``model``
    (:class:`~microlens.models.config.ModelConfig`), ``run_name`` and ``runs_dir``; ``SECTION`` is
    the key of their settings in a run's ``config.json`` and ``SAVED_BEFORE_FIELD`` the values of
    fields that runs saved before the field existed behaved as.
    """

    SECTION = ""
    SAVED_BEFORE_FIELD: dict = {}
    POSITIVE_INTEGERS = ("epochs", "batch_size", "reference_points", "normalization_events")
    NON_NEGATIVE_INTEGERS = ("micro_batch_size", "max_train_events", "max_val_events",
                             "patience", "seed")
    POSITIVE_NUMBERS = ("learning_rate", "grad_clip")
    NON_NEGATIVE_NUMBERS = ("weight_decay",)
    FRACTIONS = ("warmup_fraction", "min_lr_fraction")  # in [0, 1]

    def __post_init__(self):
        name = type(self).__name__
        if isinstance(self.model, dict):
            object.__setattr__(self, "model", ModelConfig.from_dict(self.model))
        if not isinstance(self.model, ModelConfig):
            raise ValueError(f"{name}.model must be a ModelConfig, got {self.model!r}")
        rules = (
            (self.POSITIVE_INTEGERS, _is_integer, lambda v: v >= 1, "a positive integer"),
            (self.NON_NEGATIVE_INTEGERS, _is_integer, lambda v: v >= 0,
             "a non-negative integer"),
            (self.POSITIVE_NUMBERS, _is_finite_number, lambda v: v > 0,
             "a positive finite number"),
            (self.NON_NEGATIVE_NUMBERS, _is_finite_number, lambda v: v >= 0,
             "a finite number >= 0"),
            (self.FRACTIONS, _is_finite_number, lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
        )
        for names, right_type, in_range, rule in rules:
            for field in names:
                value = getattr(self, field)
                if not right_type(value) or not in_range(value):
                    raise ValueError(f"{name}.{field} must be {rule}, got {value!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; "
                             f"valid: {', '.join(PRECISIONS)}")
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}; valid: {', '.join(DEVICES)}")
        if self.baseline_method not in BASELINE_METHODS:
            raise ValueError(f"unknown baseline_method {self.baseline_method!r}; "
                             f"valid: {', '.join(BASELINE_METHODS)}")
        if (not isinstance(self.run_name, str) or not self.run_name or "/" in self.run_name
                or self.run_name.startswith(".")):
            raise ValueError(f"run_name must be a plain directory name, got {self.run_name!r}")
        self.check()

    def check(self) -> None:
        """The checks of a subclass's own fields (raise ValueError naming value and choices)."""

    @property
    def run_dir(self) -> Path:
        return resolve_path(self.runs_dir) / self.run_name

    def to_dict(self) -> dict:
        data = asdict(self)
        data["model"] = self.model.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict):
        return from_known_fields(cls, data, f"{cls.__name__} settings")

    def save(self, path: str | os.PathLike) -> Path:
        """Write as JSON (atomically)."""
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike):
        """Read a saved config: a run's ``config.json`` (its :attr:`SECTION`) or the file
        :meth:`save` writes. A field it lacks was written before the field existed and takes
        the value of that time (:attr:`SAVED_BEFORE_FIELD`, :meth:`ModelConfig.from_saved`),
        so an old run resumes and evaluates as it was."""
        from microlens.models.runs import read_json

        data = read_json(path)
        data = {**cls.SAVED_BEFORE_FIELD, **data.get(cls.SECTION, data)}
        if isinstance(data.get("model"), dict):
            data["model"] = ModelConfig.from_saved(data["model"])
        return cls.from_dict(data)

    def saved_differences(self, saved: dict) -> list[str]:
        """The fields in which a run's saved settings (its ``config.json``'s section) differ
        from these (a model field saved before it existed takes its old value)."""
        saved = {**self.SAVED_BEFORE_FIELD, **saved}
        if isinstance(saved.get("model"), dict):
            saved["model"] = ModelConfig.from_saved(saved["model"]).to_dict()
        now = self.to_dict()
        return sorted(k for k in set(now) | set(saved) if saved.get(k) != now.get(k))


__all__ = ["PRECISIONS", "TrainingSettings"]
