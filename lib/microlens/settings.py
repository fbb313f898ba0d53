"""Settings dataclasses from JSON dicts, with unknown keys answered by the valid ones."""

from __future__ import annotations

from dataclasses import fields


def from_known_fields(cls, data: dict, what: str):
    """``cls(**data)``; a key that is not a field of ``cls`` is a ValueError naming the valid keys.

    ``what`` names the settings in the message, e.g. ``"ModelConfig settings"``.
    """
    valid = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - valid)
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; valid: {sorted(valid)}")
    return cls(**data)
