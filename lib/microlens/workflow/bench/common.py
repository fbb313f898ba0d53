"""Helpers every benchmark shares: rounding, the machine's description, JSON values."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from microlens.simulation.simulate import default_workers


def _sig(value, digits: int = 4):
    """A float rounded to ``digits`` significant digits (None stays None)."""
    if value is None:
        return None
    return float(f"{float(value):.{digits}g}")


def cpu_bf16_support() -> tuple[bool, str]:
    """Whether bf16 autocast runs natively on this CPU, and why (not)."""
    import torch

    if not torch.backends.mkldnn.is_available():
        return False, "this torch build has no oneDNN (mkldnn)"
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False, "cannot read the CPU flags (/proc/cpuinfo)"
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    found = sorted(flags & {"avx512_bf16", "amx_bf16"})
    if found:
        return True, f"oneDNN available and the CPU has {' and '.join(found)}"
    return False, "the CPU has neither avx512_bf16 nor amx_bf16 (bf16 would be emulated)"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load_average() -> float | None:
    return _sig(os.getloadavg()[0], 3) if hasattr(os, "getloadavg") else None


def _machine(device: str, threads: int | None, load_at_start: float | None) -> dict:
    import torch

    default_threads = torch.get_num_threads()
    info = {"torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "cpu": _cpu_name(), "cpu_count": os.cpu_count(),
            "cores_available": default_workers(), "torch_threads_default": default_threads,
            "threads": threads or default_threads, "load_average_1min_at_start": load_at_start,
            "device": device,
            "device_name": _cpu_name(), "cpu_bf16": dict(zip(("supported", "reason"),
                                                             cpu_bf16_support(), strict=True))}
    if device == "cuda":
        info["device_name"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
        info["cuda_bf16"] = bool(torch.cuda.is_bf16_supported())
    return info


def _jsonable(value):
    """Numbers, tensors and arrays as plain JSON values (floats to 4 significant digits)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return _sig(value) if value == value and abs(value) != float("inf") else None
    return str(value)

