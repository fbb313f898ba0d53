"""Device choice: the one list of device names and how a process turns a name into a device.

Every entry point that takes a device (:class:`microlens.training.train.TrainConfig`, the notebooks,
the study runner, ``python -m microlens.workflow.bench``) accepts the names in :data:`DEVICES` and
checks them with :func:`check_device`. Only :func:`local_device` imports torch, so the study runner
can validate a device name without paying torch's import time.
"""

from __future__ import annotations

import os

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
"""Device choices: ``auto`` (the GPU when there is one), ``cpu`` or ``cuda``."""


def check_device(requested: str, what: str = "device") -> str:
    """Return ``requested`` if it is one of :data:`DEVICES`.

    Parameters
    ----------
    requested : str
        The device name to check.
    what : str
        How the message names the setting (e.g. ``"--device"``).

    Raises
    ------
    ValueError
        For any other value, naming it and the valid choices.
    """
    if not isinstance(requested, str) or requested not in DEVICES:
        raise ValueError(f"unknown {what} {requested!r}; valid: {', '.join(DEVICES)}")
    return requested


def resolve_device_name(requested: str = "auto") -> str:
    """``auto`` -> ``cuda`` when CUDA is available, else ``cpu``; other valid names unchanged.

    Raises
    ------
    ValueError
        For an unknown name, or ``cuda`` when CUDA is not available.
    """
    import torch

    check_device(requested)
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available; use 'auto' or 'cpu'")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def local_device(requested: str = "auto"):
    """The ``torch.device`` this process should use.

    Parameters
    ----------
    requested : {'auto', 'cpu', 'cuda'}
        ``auto`` picks the GPU when there is one.

    Returns
    -------
    torch.device
        ``cuda:LOCAL_RANK`` (torchrun's local rank, 0 outside torchrun) when CUDA is wanted and
        present, otherwise ``cpu``.

    Raises
    ------
    ValueError
        For an unknown name, or ``cuda`` when CUDA is not available.
    """
    import torch

    if resolve_device_name(requested) == "cpu":
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))


__all__ = ["DEVICES", "check_device", "local_device", "resolve_device_name"]
