"""Benchmarks that print JSON: ``python -m microlens.bench {simulate,train,infer,classify,study}``.

Each figure is measured in one run, side by side, so ratios between them are meaningful on a
noisy machine; ``--help`` after a subcommand lists its options.

``simulate`` reports events per second on light curves of ``--epochs`` nominal epochs for

* ``mixed``: the three-class set as a training set is made (detectability off), end to end
  through :func:`microlens.store.generate_dataset` (simulation, chunk files, assembly);
* ``binary_only``: binary-lens events alone (the VBBinaryLensing-bound part), simulated in the
  same worker layout without disk I/O, plus the single-core time per binary event;
* ``mixed_with_detectability``: the mixed set with the flat and PSPL least-squares fits on.

``train`` times real training steps on synthetic light curves (times ~0.2 d apart, flux ~1 with
noise and, for random labels 1 and 2, a lensing bump and a spike; errors ~0.05; every event
``N`` observations long) for each ``--lengths`` value ``N``. A step is what
:mod:`microlens.train` does for one global batch of ``--batch`` events: forward under autocast
and :func:`microlens.train.event_losses` (class weights 1) for every micro-batch, backward
(gradient accumulation), gradient clipping and the AdamW update. One warm-up step (one
micro-batch: the same tensor shapes) precedes ``--steps`` timed ones. Every configuration and
length runs in a fresh Python process, so its memory figure is its own. Per length:

* ``seconds_per_step``: mean wall time of the timed steps (``step_seconds`` lists them);
* ``events_per_second``: ``batch * steps`` over the total time of the timed steps;
* ``peak_rss_gb`` (CPU): the worker's peak resident memory (``ru_maxrss``), the torch runtime
  included; ``peak_increase_gb``: that minus its resident memory right before the first step,
  i.e. what the steps themselves need. On CUDA ``peak_allocated_gb`` is
  ``torch.cuda.max_memory_allocated`` and ``peak_increase_gb`` that minus what was allocated
  before the first step;
* ``achieved_tflops``: events per second times the counted FLOPs of one event (below);
* ``other_processes_cores`` (CPU): CPU time that other processes took during the timed steps,
  in cores (from ``/proc/stat``): near 0 when the figures are clean, while
  ``machine.load_average_1min_at_start`` tells how busy the machine was beforehand.

Configurations on CPU: ``ours_fp32`` (the default :class:`~microlens.model.ModelConfig`,
dropout 0.1, micro-batches as :mod:`microlens.train` makes them on CPU: 16,384 observations,
i.e. 16 events of 1000 and 4 of 4000, unless ``--micro-batch`` fixes the number of events);
``ours_bf16`` (the same under bf16 autocast; null with the reason when the CPU has no native
bf16); ``ours_fp32_full_batch`` (micro-batch = the whole batch: the effect of micro-batching);
``baseline`` (PyTorch's own full-attention ``nn.TransformerEncoder`` of the same size, pre-norm,
causal mask, dropout 0, the same input features, a ``Linear(3, d)`` input and a
``Linear(d, 3)`` per-observation head, the same loss and optimiser, one pass of the whole
batch, fp32). The full-batch and baseline runs are skipped above 1000 observations unless
``--full-batch-4000`` / ``--baseline-4000`` are given (say why in the JSON). On CUDA:
``ours_bf16`` at ``--gpu-batch`` events in one pass. ``ratios`` holds the baseline's seconds
per step over ours, full batch over micro-batches, fp32 over bf16, and the growth of per-event
time and of peak memory from the shortest to the longest length; ``targets`` the goals with
the measured values beside them.

``infer`` times batch inference through the library's inference call,
:meth:`~microlens.model.MicrolensTransformer.predict_logits` under ``torch.inference_mode()``:
per-observation logits of ``--batch`` events (in passes of 16,384 observations on CPU, as that
method does by default; one pass on CUDA) (``ours_fp32`` and ``ours_bf16`` on CPU;
``ours_bf16`` at ``--gpu-batch`` on CUDA), one warm-up pass then ``--steps`` timed ones, each
configuration in a fresh process: ``seconds_per_batch``, ``events_per_second``, peak memory as
above. ``streaming`` is :func:`microlens.stream.stream_latency`: the mean and 95th percentile
(``mean_ms``, ``p95_ms``; ``raw`` is its whole answer) of the time of one observation update
over ``--stream-observations`` timed updates, for each ``--stream-events`` count of events
updated at once (default 1 and 64), on CPU in fp32.

``study`` runs a study end to end (default ``quick``, the default job) from nothing in a
temporary folder (its data set simulated and its model trained there, so nothing is reused),
then rebuilds its figures from the outputs: ``seconds`` of the run, per cell and per notebook
(from each ``cell.json``), and ``figures_seconds`` of ``figures`` (per-cell and study figures,
summary and index, in the formats the notebooks used).

FLOPs: ``flops_per_event`` counts one event with :class:`torch.utils.flop_counter.FlopCounterMode`
(matrix products and the fused attention kernel; element-wise work is not counted), forward
only and forward plus backward (a training step is the latter), so GPU figures can be read
against the device's peak. The sliding-window attention is counted as the kernel runs it: each
block of ``window`` queries against ``2 * window`` keys, sequences padded to a multiple of
``window``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from .ddp import DEVICES
from .simulate import SimulationConfig, default_workers
from .train import CPU_MICRO_BATCH_OBSERVATIONS


def _timed_generation(cfg: SimulationConfig, workers: int, root: Path, name: str,
                      chunk_size: int) -> float:
    from .store import generate_dataset

    started = time.perf_counter()
    generate_dataset(cfg, root / name, workers=workers, chunk_size=chunk_size, progress=False)
    return time.perf_counter() - started


def bench_simulate(events: int = 6000, workers: int | None = None, epochs: int = 1000,
                   topology: str = "baseline", seed: int = 0) -> dict:
    """Events per second of dataset generation; see the module docstring.

    Parameters
    ----------
    events : int
        Events in the mixed set (the binary-only and detectability runs use a third of it).
    workers : int, optional
        Worker processes (default: all cores).
    epochs : int
        Nominal epochs per light curve.
    """
    from .simulate import simulate_event

    workers = default_workers() if workers is None else workers
    per_class = max(1, events // 3)
    base = SimulationConfig(n_per_class=per_class, n_epochs=epochs, topology=topology, seed=seed,
                            detectability=False)
    chunk = max(50, min(500, per_class * 3 // (4 * workers)))  # >= 4 chunks per worker
    results = {}
    with tempfile.TemporaryDirectory(prefix="microlens-bench-") as tmp:
        root = Path(tmp)
        seconds = _timed_generation(base, workers, root, "mixed", chunk)
        results["mixed"] = {"events": base.n_events, "seconds": round(seconds, 3),
                            "events_per_second": round(base.n_events / seconds, 1)}

        small = replace(base, n_per_class=max(1, per_class // 3), detectability=True)
        seconds = _timed_generation(small, workers, root, "detect", chunk)
        results["mixed_with_detectability"] = {
            "events": small.n_events, "seconds": round(seconds, 3),
            "events_per_second": round(small.n_events / seconds, 1)}

    # Binary events alone, in the same worker pool layout (the magnification-bound case).
    binary_indices = [3 * i + 2 for i in range(per_class)]
    seconds = _parallel_events(base, binary_indices, workers)
    results["binary_only"] = {"events": len(binary_indices), "seconds": round(seconds, 3),
                              "events_per_second": round(len(binary_indices) / seconds, 1)}
    start = time.perf_counter()
    for index in binary_indices[:200]:
        simulate_event(base, index)
    single = (time.perf_counter() - start) / min(200, len(binary_indices))
    results["binary_single_core_ms_per_event"] = round(1e3 * single, 3)

    return {
        "benchmark": "simulate",
        "workers": workers,
        "n_epochs": epochs,
        "topology": topology,
        "vbbl_tol": base.vbbl_tol,
        "target_mixed_events_per_second": 1000,
        **results,
        "machine": {"python": platform.python_version(), "processor": platform.machine(),
                    "cores_available": default_workers()},
    }


def _simulate_indices(cfg: SimulationConfig, indices: list[int]) -> int:
    from .simulate import simulate_event

    for index in indices:
        simulate_event(cfg, index)
    return len(indices)


def _parallel_events(cfg: SimulationConfig, indices: list[int], workers: int) -> float:
    from concurrent.futures import ProcessPoolExecutor

    from .store import clean_process_context

    parts = [indices[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=clean_process_context()) as pool:
        list(pool.map(_simulate_indices, [cfg] * workers, [[parts[0][0]]] * workers))  # warm up
        started = time.perf_counter()
        list(pool.map(_simulate_indices, [cfg] * workers, parts))
        return time.perf_counter() - started


# --------------------------------------------------------------------------------------------
# Model training and inference: shared pieces
# --------------------------------------------------------------------------------------------

TRAIN_CONFIGS = ("ours_fp32", "ours_bf16", "ours_fp32_full_batch", "baseline")
INFER_CONFIGS = ("ours_fp32", "ours_bf16")
LONG = 1000  # the full-batch and baseline runs are skipped above this length by default
TINY_MODEL = {"d_model": 32, "n_heads": 4, "n_layers": 2, "d_ff": 64, "window": 16}
TRAIN_TARGETS = {"speedup_over_baseline": 3.0, "peak_rss_gb_64x1000": 2.0, "growth": 4.5,
                 "gpu_events_per_second_1000": 30_000}
INFER_TARGETS = {"gpu_events_per_second_1000": 100_000, "stream_ms_one_event_cpu": 1.0}

_WORKER = ("import sys; from microlens.bench import _worker_main; "
           "raise SystemExit(_worker_main(sys.argv[1]))")


def _sig(value, digits: int = 4):
    """A float rounded to ``digits`` significant digits (None stays None)."""
    if value is None:
        return None
    return float(f"{float(value):.{digits}g}")


def synthetic_light_curves(batch: int, length: int, seed: int = 0) -> dict:
    """Random events shaped like real ones, as CPU tensors ``(batch, length)``.

    Times increase with gaps of 0.1-0.3 d (float32, as stored); errors are ~0.05 (log-normal
    scatter of 10 %); flux is 1 plus noise, plus a point-lens bump for labels 1 and 2 and a
    short spike for label 2. Labels are uniform on 0..2; every observation is valid.
    """
    import torch

    g = torch.Generator().manual_seed(seed)

    def uniform(*shape):
        return torch.rand(*shape, generator=g, dtype=torch.float64)

    def normal(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    times = 100 * uniform(batch, 1) + (0.2 * (0.5 + uniform(batch, length))).cumsum(dim=1)
    labels = torch.randint(0, 3, (batch,), generator=g)
    span = times[:, -1:] - times[:, :1]
    t0 = times[:, :1] + span * (0.2 + 0.6 * uniform(batch, 1))
    t_e = 2 + 30 * uniform(batch, 1)
    u0 = 0.05 + 0.9 * uniform(batch, 1)
    u = torch.sqrt(u0**2 + ((times - t0) / t_e) ** 2)
    bump = (u**2 + 2) / (u * torch.sqrt(u**2 + 4)) - 1
    spike = 3 * torch.exp(-0.5 * ((times - t0 - 0.3 * t_e) / 0.5) ** 2)
    lensed = (labels >= 1)[:, None]
    binary = (labels == 2)[:, None]
    flux_err = 0.05 * torch.exp(0.1 * normal(batch, length))
    flux = (1 + torch.where(lensed, bump, 0.0) + torch.where(binary, spike, 0.0)
            + flux_err * normal(batch, length))
    return {"times": times.float(), "flux": flux.float(), "flux_err": flux_err.float(),
            "mask": torch.ones(batch, length, dtype=torch.bool), "labels": labels}


def full_attention_baseline(config, normalization):
    """PyTorch's full-attention ``nn.TransformerEncoder`` of the size of ``config``.

    Pre-norm, causal (``generate_square_subsequent_mask`` with ``is_causal=True``), dropout 0;
    the same input features as ours, a ``Linear(3, d)`` input and a ``Linear(d, n_classes)``
    per-observation head. Same call signature and output as
    :class:`~microlens.model.MicrolensTransformer`.
    """
    from torch import nn

    from .model import N_FEATURES

    class FullAttentionBaseline(nn.Module):
        def __init__(self):
            super().__init__()
            self.normalization = normalization
            self.embed = nn.Linear(N_FEATURES, config.d_model)
            layer = nn.TransformerEncoderLayer(config.d_model, config.n_heads, config.d_ff,
                                               dropout=0.0, activation="gelu", batch_first=True,
                                               norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, config.n_layers,
                                                 enable_nested_tensor=False)
            self.head = nn.Linear(config.d_model, config.n_classes)

        @property
        def n_parameters(self) -> int:
            return sum(p.numel() for p in self.parameters())

        def forward(self, times, flux, flux_err, mask=None):
            x = self.embed(self.normalization.features(times, flux, flux_err, mask))
            causal = nn.Transformer.generate_square_subsequent_mask(x.shape[1], device=x.device)
            x = self.encoder(x, mask=causal, is_causal=True)
            return {"logits": self.head(x).float()}

    return FullAttentionBaseline()


def _build_model(spec: dict, normalization, device):
    import torch

    from .model import MicrolensTransformer, ModelConfig

    torch.manual_seed(spec["seed"])
    config = ModelConfig(**spec["model_config"])
    if spec["model"] == "baseline":
        return full_attention_baseline(config, normalization).to(device)
    return MicrolensTransformer(config, normalization).to(device)


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


def count_flops(model_config: dict, length: int, backward: bool = False) -> int:
    """FLOPs of one event of ``length`` observations (fp32, CPU), counted by
    :class:`torch.utils.flop_counter.FlopCounterMode`: matrix products and attention kernels.
    """
    import torch
    from torch.utils import flop_counter

    from .model import MicrolensTransformer, ModelConfig

    aten = torch.ops.aten
    custom = {}
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):  # not counted by default
        def forward_count(query, key, value, *args, out_shape=None, **kwargs):
            return flop_counter.sdpa_flop_count(query, key, value)

        def backward_count(grad_out, query, key, value, *args, out_shape=None, **kwargs):
            return flop_counter.sdpa_backward_flop_count(grad_out, query, key, value)

        custom = {aten._scaled_dot_product_flash_attention_for_cpu: forward_count,
                  aten._scaled_dot_product_flash_attention_for_cpu_backward: backward_count}
    torch.manual_seed(0)
    model = MicrolensTransformer(ModelConfig(**model_config))
    data = synthetic_light_curves(1, length)
    with flop_counter.FlopCounterMode(display=False, custom_mapping=custom) as counter:
        logits = model(data["times"], data["flux"], data["flux_err"], data["mask"])["logits"]
        if backward:
            logits.sum().backward()
    return int(counter.get_total_flops())


# --------------------------------------------------------------------------------------------
# The worker process: one configuration at one length
# --------------------------------------------------------------------------------------------


def _worker_main(spec_json: str) -> int:
    """Entry point of a worker process: measure one configuration, print its JSON."""
    spec = json.loads(spec_json)
    task = {"train": _measure_train, "infer": _measure_infer, "stream": _measure_stream}
    result = task[spec["task"]](spec)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


def _setup(spec: dict):
    import torch

    from .model import Normalization

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    if device.type == "cuda":  # as microlens.train does
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    data = synthetic_light_curves(spec["batch"], spec["length"], seed=spec["seed"])
    normalization = Normalization.fit(data["times"], data["flux"], data["flux_err"],
                                      data["mask"])
    data = {k: v.to(device) for k, v in data.items()}
    return device, data, _build_model(spec, normalization, device)


def _resident_bytes() -> int | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _peak_resident_bytes() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def _busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy (``/proc/stat``), or None."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ticks = [int(v) for v in fields[:8]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _timed(run, warmup_events: int, events: int, steps: int, device) -> dict:
    """Run ``run(warmup_events)`` once, then time ``steps`` calls of ``run(events)``."""
    import gc

    import torch

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    gc.collect()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    else:
        before = _resident_bytes()
    run(warmup_events)
    sync()
    seconds = []
    busy, own = _busy_cpu_seconds(), os.times()
    for _ in range(steps):
        started = time.perf_counter()
        run(events)
        sync()
        seconds.append(time.perf_counter() - started)
    busy_after, own_after = _busy_cpu_seconds(), os.times()
    others = None
    if busy is not None and busy_after is not None:
        own_cpu = (own_after.user + own_after.system) - (own.user + own.system)
        others = _sig(max(0.0, (busy_after - busy) - own_cpu) / sum(seconds), 2)
    gb = 1024**3
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
        memory = {"peak_allocated_gb": _sig(peak / gb), "peak_increase_gb": _sig((peak - before)
                                                                                 / gb)}
    else:
        peak = _peak_resident_bytes()
        memory = {"peak_rss_gb": _sig(peak / gb),
                  "peak_increase_gb": None if before is None else _sig((peak - before) / gb),
                  "other_processes_cores": others}
    return {"step_seconds": [_sig(s) for s in seconds],
            "seconds_per_step": _sig(sum(seconds) / steps),
            "events_per_second": _sig(events * steps / sum(seconds)), **memory,
            "threads": torch.get_num_threads()}


def _autocast(device, precision: str):
    import torch

    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def _measure_train(spec: dict) -> dict:
    """One configuration's training steps (see the module docstring)."""
    import torch

    from .train import TrainConfig, cpu_micro_batch, event_losses, make_optimizer

    device, data, model = _setup(spec)
    model.train()
    defaults = TrainConfig()
    optimizer = make_optimizer(model, defaults, device)
    micro = min(spec["micro_batch"] or cpu_micro_batch(spec["length"]), spec["batch"])

    def step(events: int) -> None:
        for start in range(0, events, micro):
            part = slice(start, min(start + micro, events))
            with _autocast(device, spec["precision"]):
                logits = model(data["times"][part], data["flux"][part], data["flux_err"][part],
                               data["mask"][part])["logits"]
            losses = event_losses(logits, data["labels"][part], data["mask"][part],
                                  defaults.final_weight)
            (losses.sum() / events).backward()  # class weights 1; sum over the global batch
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), defaults.grad_clip)
        if torch.isfinite(norm):
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    result = _timed(step, micro, spec["batch"], spec["steps"], device)
    return {**result, "micro_batch": micro, "n_parameters": model.n_parameters}


def _measure_infer(spec: dict) -> dict:
    """One configuration's batch inference (see the module docstring)."""
    import torch

    device, data, model = _setup(spec)
    model.eval()

    def forward(events: int) -> None:
        with torch.inference_mode(), _autocast(device, spec["precision"]):
            model.predict_logits(data["times"][:events], data["flux"][:events],
                                 data["flux_err"][:events], data["mask"][:events])

    result = _timed(forward, spec["batch"], spec["batch"], spec["steps"], device)
    return {"batch_seconds": result.pop("step_seconds"),
            "seconds_per_batch": result.pop("seconds_per_step"), **result,
            "n_parameters": model.n_parameters}


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


def _measure_stream(spec: dict) -> dict:
    """Streaming latency per observation from :func:`microlens.stream.stream_latency`."""
    import torch

    from .model import MicrolensTransformer, ModelConfig, Normalization
    from .stream import stream_latency
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    data = synthetic_light_curves(64, spec["n_observations"], seed=spec["seed"])
    normalization = Normalization.fit(data["times"], data["flux"], data["flux_err"],
                                      data["mask"])
    torch.manual_seed(spec["seed"])
    model = MicrolensTransformer(ModelConfig(**spec["model_config"]), normalization).eval()
    results = {}
    for n_events in spec["events"]:
        raw = _jsonable(stream_latency(model, spec["n_observations"], n_events=n_events))
        results[str(n_events)] = {"mean_ms": _sig(1e3 * raw["mean_s"]),
                                  "p95_ms": _sig(1e3 * raw["p95_s"]), "raw": raw}
    return {"results": results}


# --------------------------------------------------------------------------------------------
# The parent: configurations, fresh processes, ratios, targets
# --------------------------------------------------------------------------------------------


def _spawn(spec: dict, label: str, progress: bool) -> dict:
    """Run one measurement in a fresh Python process; its JSON, or ``{"error": ...}``."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _WORKER, json.dumps(spec)], capture_output=True,
                          text=True, env=env, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode == 0 and lines:
        result = json.loads(lines[-1])
    else:
        result = {"error": _failure(proc)}
    if progress:
        figure = result.get("error") or ", ".join(
            f"{k} {result[k]}" for k in ("seconds_per_step", "seconds_per_batch",
                                         "events_per_second", "peak_increase_gb") if k in result)
        figure = figure or ", ".join(f"{k} events: {v.get('mean_ms')} ms mean"
                                     for k, v in (result.get("results") or {}).items())
        print(f"[bench] {label}: {figure} ({time.perf_counter() - started:.0f} s)",
              file=sys.stderr, flush=True)
    return result


def _failure(proc: subprocess.CompletedProcess) -> str:
    import signal

    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        why = f"worker killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
    else:
        why = f"worker exited with status {proc.returncode}"
    tail = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    return f"{why}: {tail[-1][:400]}" if tail else why


def _model_config(tiny: bool) -> dict:
    from .model import ModelConfig

    config = ModelConfig(**TINY_MODEL) if tiny else ModelConfig()
    return config.to_dict()


def _resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def _figure(configs: dict, name: str, length: int, key: str):
    entry = (configs.get(name) or {}).get("results") or {}
    return (entry.get(str(length)) or {}).get(key)


def _ratio(top, bottom):
    return _sig(top / bottom) if top is not None and bottom else None


def _growth(configs: dict, names, lengths: list[int], time_key: str) -> dict | None:
    """Per-event time and peak memory at the longest length over the shortest."""
    short, long = min(lengths), max(lengths)
    if short == long:
        return None
    growth = {"from_length": short, "to_length": long}
    for name in names:
        figures = {"time_per_event": _ratio(_figure(configs, name, long, time_key),
                                            _figure(configs, name, short, time_key))}
        for key in ("peak_increase_gb", "peak_rss_gb", "peak_allocated_gb"):
            value = _ratio(_figure(configs, name, long, key), _figure(configs, name, short, key))
            if value is not None:
                figures[key.replace("_gb", "")] = value
        if any(v is not None for v in figures.values()):
            growth[name] = figures
    return growth


def _target(goal: str, values: dict, check) -> dict:
    values = {k: v for k, v in values.items() if v is not None}
    return {"target": goal, "values": values, "met": {k: bool(check(v)) for k, v in
                                                       values.items()}}


def _gpu_target(goal: str, configs: dict, device: str, minimum: float) -> dict:
    """The GPU events-per-second target at 1000 observations (a note when there is no GPU)."""
    cuda = device == "cuda"
    measured = _figure(configs, "ours_bf16", 1000, "events_per_second") if cuda else None
    target = _target(goal, {"ours_bf16": measured}, lambda v: v >= minimum)
    if device != "cuda":
        target["note"] = "no CUDA device in this run (run on a GPU machine, --device cuda)"
    return target


def _add_flops(configs: dict, flops: dict, key: str) -> None:
    for name, config in configs.items():
        if not name.startswith("ours") or not config.get("results"):
            continue
        for length, result in config["results"].items():
            if result.get("events_per_second") and flops.get(length):
                result["achieved_tflops"] = _sig(result["events_per_second"]
                                                 * flops[length][key] / 1e12)


def _bench_start(device: str, threads: int | None, tiny: bool):
    """What every model benchmark starts with: its start time, the load average before it, the
    resolved device (threads set) and the model config."""
    import torch

    started, load_at_start = time.perf_counter(), _load_average()
    device = _resolve_device(device)
    if threads:
        torch.set_num_threads(threads)
    return started, load_at_start, device, _model_config(tiny)


def _bf16_support(device: str) -> tuple[bool, str]:
    """Whether bf16 runs natively on ``device``, and why (or why not)."""
    if device == "cuda":
        import torch

        ok = torch.cuda.is_bf16_supported()
        return ok, "CUDA bf16 supported" if ok else "this GPU does not support bf16"
    return cpu_bf16_support()


def _configurations(names, plan: dict, configs, bf16_ok: bool, bf16_why: str) -> dict:
    """One entry per configuration name: ``results`` to fill, or None with why it is skipped."""
    out = {}
    for name in names:
        spec = plan.get(name)
        if spec is None:
            out[name] = {"results": None, "skipped": "a CPU configuration: use --device cpu"}
        elif name not in configs:
            out[name] = {"results": None, "skipped": "not in --configs"}
        elif spec["precision"] == "bf16" and not bf16_ok:
            out[name] = {**_public(spec), "results": None, "skipped": bf16_why}
        else:
            out[name] = {**_public(spec), "results": {}}
    return out


def bench_train(lengths=(1000, 4000), batch: int = 64, steps: int = 3, micro_batch: int = 0,
                gpu_batch: int = 256, device: str = "auto", threads: int | None = None,
                configs=TRAIN_CONFIGS, baseline_long: bool = False, full_batch_long: bool = False,
                tiny: bool = False, seed: int = 0, progress: bool = True) -> dict:
    """Training-step throughput and memory; see the module docstring."""
    started, load_at_start, device, model_config = _bench_start(device, threads, tiny)
    base = {"task": "train", "steps": steps, "seed": seed, "threads": threads,
            "device": device, "model_config": model_config}
    bf16_ok, bf16_why = _bf16_support(device)
    if device == "cuda":
        plan = {"ours_bf16": {"model": "ours", "precision": "bf16", "batch": gpu_batch,
                              "micro_batch": gpu_batch}}
    else:
        plan = {
            "ours_fp32": {"model": "ours", "precision": "fp32", "micro_batch": micro_batch},
            "ours_bf16": {"model": "ours", "precision": "bf16", "micro_batch": micro_batch},
            "ours_fp32_full_batch": {"model": "ours", "precision": "fp32", "micro_batch": batch},
            "baseline": {"model": "baseline", "precision": "fp32", "micro_batch": batch},
        }
        for spec in plan.values():
            spec["batch"] = batch
    out = _configurations(TRAIN_CONFIGS, plan, configs, bf16_ok, bf16_why)
    for length in lengths:
        for name, config in out.items():
            if config.get("results") is None:
                continue
            if length > LONG and name == "baseline" and not baseline_long:
                config["results"][str(length)] = {"skipped": (
                    f"full attention does N^2 work per layer ({(length / LONG) ** 2:.0f}x the "
                    f"attention work at {LONG}); pass --baseline-4000 to run it")}
                continue
            if length > LONG and name == "ours_fp32_full_batch" and not full_batch_long:
                config["results"][str(length)] = {"skipped": (
                    f"the micro-batching effect is shown at {LONG} and below (this one is "
                    "slow); pass --full-batch-4000 to run it")}
                continue
            spec = {**base, **plan[name], "length": length}
            config["results"][str(length)] = _spawn(spec, f"train {name} N={length}", progress)

    if progress:
        print("[bench] counting FLOPs", file=sys.stderr, flush=True)
    flops = {str(n): {"forward": count_flops(model_config, n),
                      "forward_backward": count_flops(model_config, n, backward=True)}
             for n in lengths}
    _add_flops(out, flops, "forward_backward")
    ratios = {}
    for name in ("ours_fp32", "ours_bf16"):
        ratios[f"baseline_over_{name}_seconds_per_step"] = {
            str(n): _ratio(_figure(out, "baseline", n, "seconds_per_step"),
                           _figure(out, name, n, "seconds_per_step")) for n in lengths}
    ratios["full_batch_over_micro_batch_seconds_per_step"] = {
        str(n): _ratio(_figure(out, "ours_fp32_full_batch", n, "seconds_per_step"),
                       _figure(out, "ours_fp32", n, "seconds_per_step")) for n in lengths}
    ratios["full_batch_over_micro_batch_peak_increase"] = {
        str(n): _ratio(_figure(out, "ours_fp32_full_batch", n, "peak_increase_gb"),
                       _figure(out, "ours_fp32", n, "peak_increase_gb")) for n in lengths}
    ratios["ours_fp32_over_ours_bf16_seconds_per_step"] = {
        str(n): _ratio(_figure(out, "ours_fp32", n, "seconds_per_step"),
                       _figure(out, "ours_bf16", n, "seconds_per_step")) for n in lengths}
    ratios = {k: {n: v for n, v in d.items() if v is not None} for k, d in ratios.items()}
    ratios["growth"] = _growth(out, ("ours_fp32", "ours_bf16"), list(lengths),
                               "seconds_per_step")

    ours = ("ours_fp32", "ours_bf16")
    growth = ratios["growth"] or {}
    on_target_lengths = growth.get("from_length") == 1000 and growth.get("to_length") == 4000
    targets = {
        "speedup_over_baseline_at_1000": _target(
            f">= {TRAIN_TARGETS['speedup_over_baseline']:g}x (baseline seconds per step / ours)",
            {n: ratios[f"baseline_over_{n}_seconds_per_step"].get("1000") for n in ours},
            lambda v: v >= TRAIN_TARGETS["speedup_over_baseline"]),
        "peak_rss_gb_at_64x1000": _target(
            f"< {TRAIN_TARGETS['peak_rss_gb_64x1000']:g} GB peak resident memory of the worker "
            "(torch runtime included), batch 64 x 1000 observations",
            {n: _figure(out, n, 1000, "peak_rss_gb") if batch == 64 else None for n in ours},
            lambda v: v < TRAIN_TARGETS["peak_rss_gb_64x1000"]),
        "growth_1000_to_4000": _target(
            f"<= {TRAIN_TARGETS['growth']:g}x per-event time and peak memory (increase) from "
            "1000 to 4000 observations",
            {f"{n}_{k}": (growth.get(n) or {}).get(k) if on_target_lengths else None
             for n in ours for k in ("time_per_event", "peak_increase")},
            lambda v: v <= TRAIN_TARGETS["growth"]),
        "gpu_training_events_per_second_at_1000": _gpu_target(
            f">= {TRAIN_TARGETS['gpu_events_per_second_1000']:,} events/s, bf16, one H100",
            out, device, TRAIN_TARGETS["gpu_events_per_second_1000"]),
    }

    from .model import ModelConfig

    return {
        "benchmark": "train",
        "device": device,
        "lengths": list(lengths),
        "batch": gpu_batch if device == "cuda" else batch,
        "steps": steps,
        "warmup_steps": 1,
        "synthetic_data": "times ~0.2 d apart, flux ~1 + noise (+ bumps for labels 1, 2), "
                          "errors ~0.05, labels uniform 0..2, no padding",
        "model": {**model_config, "n_parameters": _n_parameters(model_config)},
        "baseline_model": {"what": "nn.TransformerEncoder, full causal attention, pre-norm, "
                                   "dropout 0, Linear(3, d) input, Linear(d, 3) head",
                           "n_parameters": full_attention_baseline(
                               ModelConfig(**model_config), None).n_parameters},
        "flops_per_event": flops,
        "configurations": out,
        "ratios": ratios,
        "targets": targets,
        "machine": _machine(device, threads, load_at_start),
        "wall_seconds": _sig(time.perf_counter() - started),
    }


def _public(spec: dict) -> dict:
    return {k: spec[k] for k in ("precision", "batch", "micro_batch") if k in spec}


def _n_parameters(model_config: dict) -> int:
    from .model import MicrolensTransformer, ModelConfig

    return MicrolensTransformer(ModelConfig(**model_config)).n_parameters


def bench_infer(lengths=(1000, 4000), batch: int = 64, steps: int = 3, gpu_batch: int = 1024,
                device: str = "auto", threads: int | None = None, configs=INFER_CONFIGS,
                stream: bool = True, stream_observations: int = 1000, stream_events=(1, 64),
                tiny: bool = False, seed: int = 0, progress: bool = True) -> dict:
    """Batch inference throughput, memory and streaming latency; see the module docstring."""
    started, load_at_start, device, model_config = _bench_start(device, threads, tiny)
    base = {"task": "infer", "steps": steps, "seed": seed, "threads": threads,
            "device": device, "model_config": model_config, "model": "ours"}
    bf16_ok, bf16_why = _bf16_support(device)
    if device == "cuda":
        plan = {"ours_bf16": {"precision": "bf16", "batch": gpu_batch}}
    else:
        plan = {"ours_fp32": {"precision": "fp32", "batch": batch},
                "ours_bf16": {"precision": "bf16", "batch": batch}}
    out = _configurations(INFER_CONFIGS, plan, configs, bf16_ok, bf16_why)
    for length in lengths:
        for name, config in out.items():
            if config.get("results") is not None:
                spec = {**base, **plan[name], "length": length}
                config["results"][str(length)] = _spawn(spec, f"infer {name} N={length}",
                                                        progress)

    streaming = None
    if stream:
        spec = {"task": "stream", "seed": seed, "threads": threads, "model_config": model_config,
                "n_observations": stream_observations, "events": list(stream_events)}
        streaming = {"device": "cpu", "precision": "fp32",
                     "n_observations": stream_observations,
                     **_spawn(spec, "stream latency", progress)}

    if progress:
        print("[bench] counting FLOPs", file=sys.stderr, flush=True)
    flops = {str(n): {"forward": count_flops(model_config, n)} for n in lengths}
    _add_flops(out, flops, "forward")
    ratios = {
        "ours_bf16_over_ours_fp32_events_per_second": {
            str(n): _ratio(_figure(out, "ours_bf16", n, "events_per_second"),
                           _figure(out, "ours_fp32", n, "events_per_second")) for n in lengths},
    }
    ratios = {k: {n: v for n, v in d.items() if v is not None} for k, d in ratios.items()}
    ratios["growth"] = _growth(out, INFER_CONFIGS, list(lengths), "seconds_per_batch")

    one_event = (((streaming or {}).get("results") or {}).get("1") or {}).get("mean_ms")
    targets = {
        "gpu_inference_events_per_second_at_1000": _gpu_target(
            f">= {INFER_TARGETS['gpu_events_per_second_1000']:,} events/s, bf16, batch "
            f"{gpu_batch}, one H100", out, device, INFER_TARGETS["gpu_events_per_second_1000"]),
        "stream_ms_per_observation_one_event_cpu": _target(
            f"< {INFER_TARGETS['stream_ms_one_event_cpu']:g} ms per observation update, one "
            f"event, CPU, fp32 (mean over {stream_observations} updates)",
            {"mean_ms": one_event}, lambda v: v < INFER_TARGETS["stream_ms_one_event_cpu"]),
    }

    return {
        "benchmark": "infer",
        "device": device,
        "lengths": list(lengths),
        "batch": gpu_batch if device == "cuda" else batch,
        "steps": steps,
        "warmup_steps": 1,
        "model": {**model_config, "n_parameters": _n_parameters(model_config)},
        "flops_per_event": flops,
        "configurations": out,
        "streaming": streaming,
        "ratios": ratios,
        "targets": targets,
        "machine": _machine(device, threads, load_at_start),
        "wall_seconds": _sig(time.perf_counter() - started),
    }


def _add_model_bench_options(parser, lengths_help: str) -> None:
    parser.add_argument("--lengths", type=int, nargs="+", default=[1000, 4000], metavar="N",
                        help=f"observations per event (default: 1000 4000); {lengths_help}")
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up")
    parser.add_argument("--device", default="auto", choices=DEVICES,
                        help="auto: cuda when available (default: auto)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's default)")
    parser.add_argument("--tiny", action="store_true",
                        help=f"a tiny model ({TINY_MODEL}) for quick checks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def _check_model_bench_args(parser, args) -> None:
    import torch

    for name in ("steps", "batch", "gpu_batch", "micro_batch", "threads", "stream_observations"):
        value = getattr(args, name, None)
        if name == "micro_batch" and value is not None and value < 0:
            parser.error(f"--micro-batch must be >= 0 (0: automatic), got {value}")
        elif name != "micro_batch" and value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {value}")
    bad = [n for n in args.lengths if n < 1]
    if bad:
        parser.error(f"--lengths must be positive, got {bad[0]}")
    repeated = sorted({n for n in args.lengths if args.lengths.count(n) > 1})
    if repeated:
        parser.error(f"--lengths repeats {repeated[0]}")
    for n in getattr(args, "stream_events", None) or []:
        if n < 1:
            parser.error(f"--stream-events must be positive, got {n}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available on this machine (use auto or cpu)")


def bench_classify(events: int = 90, epochs: int = 1000, topology: str = "baseline",
                   batch: int = 64, seed: int = 0, progress: bool = True) -> dict:
    """Cost of classifying one finished light curve: the classical peer vs the transformer.

    Both run on the same simulated events (``events`` of the three classes, ``epochs`` nominal
    epochs) in this process, on one CPU thread, so the ratio compares per core: the peer's
    flat and blended-PSPL least-squares fits and residual scan (:func:`microlens.classical.
    light_curve_features`) per event, against the default transformer's batch inference
    (:meth:`~microlens.model.MicrolensTransformer.predict_logits` over ``batch`` events; weights
    do not change the cost) per event, and with all threads.
    """
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from .classical import light_curve_features
    from .evaluate import time_inference
    from .model import MicrolensTransformer, ModelConfig, Normalization
    from .simulate import simulate_event
    from .store import collate_light_curves

    cfg = SimulationConfig(n_per_class=max(1, events // 3), n_epochs=epochs, topology=topology,
                           seed=seed, detectability=False)
    simulated = [simulate_event(cfg, i) for i in tqdm(range(events), desc="simulate",
                                                        disable=not progress)]
    peer_seconds = []
    for event in tqdm(simulated, desc="classical peer", disable=not progress):
        start = time.perf_counter()
        light_curve_features(event.times, event.flux, event.flux_err)
        peer_seconds.append(time.perf_counter() - start)
    items = [{"times": e.times.astype(np.float32), "flux": e.flux.astype(np.float32),
              "flux_err": e.flux_err.astype(np.float32), "label": 0, "index": i}
             for i, e in enumerate(simulated[:batch])]
    tensors = collate_light_curves(items)
    inputs = [tensors[k] for k in ("times", "flux", "flux_err", "mask")]
    model = MicrolensTransformer(ModelConfig(), Normalization.fit(*inputs)).eval()
    previous = torch.get_num_threads()
    transformer = {
        label: {"threads": threads, "ms_per_event": _sig(
            1e3 * time_inference(model, inputs, threads=threads) / len(items))}
        for label, threads in (("one_thread", 1), ("all_threads", previous))}
    peer_ms = 1e3 * np.asarray(peer_seconds)
    one = transformer["one_thread"]["ms_per_event"]
    return {
        "benchmark": "classify",
        "what": "classify one finished light curve on CPU",
        "events": events, "epochs": epochs, "topology": topology,
        "mean_observations": _sig(float(np.mean([e.times.size for e in simulated]))),
        "classical_peer": {"ms_per_event": _sig(float(peer_ms.mean())),
                           "p95_ms": _sig(float(np.percentile(peer_ms, 95))),
                           "max_ms": _sig(float(peer_ms.max())), "threads": 1},
        "transformer": {**transformer, "batch": len(items),
                        "parameters": model.n_parameters},
        "ratio_transformer_over_peer_one_thread": _sig(one / float(peer_ms.mean())),
        "machine": _machine("cpu", previous, _load_average()),
    }


def bench_study(study: str = "quick", overrides: dict | None = None, jobs: int = 1,
                only=(), progress: bool = True) -> dict:
    """Wall time of a study from nothing (see the module docstring), and of its figures."""
    from .studies import load_study, rebuild_study_figures, run_study
    from .studies.report import build_study_report

    loaded = load_study(study, overrides)
    load = _load_average()
    with tempfile.TemporaryDirectory(prefix="microlens-bench-study-") as tmp:
        outputs, data = Path(tmp) / "outputs", Path(tmp) / "data"
        start = time.perf_counter()
        run = run_study(loaded, jobs=jobs, only=only, outputs=outputs, data=data,
                        progress=progress, echo=lambda _: None)
        build_study_report(loaded.name, outputs)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        _, problems = rebuild_study_figures(loaded.name, outputs, progress=False)
        figures_seconds = time.perf_counter() - start
        cells = {}
        for result in run.results:
            record = json.loads((Path(result["directory"]) / "cell.json").read_text())
            cells[result["cell"]] = {
                "status": result["status"], "seconds": _sig(result["seconds"]),
                "notebooks": {n["notebook"]: n.get("seconds") for n in record["notebooks"]}}
    return {
        "benchmark": "study", "study": loaded.name, "overrides": overrides or {},
        "jobs": jobs, "cells": cells, "seconds": _sig(seconds),
        "figures_seconds": _sig(figures_seconds), "figure_problems": problems,
        "machine": _machine("cpu", None, load),
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints one JSON object."""
    parser = argparse.ArgumentParser(prog="python -m microlens.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True,
                                metavar="{simulate,train,infer,classify,study}")
    sim = sub.add_parser("simulate", help="dataset generation throughput")
    sim.add_argument("--events", type=int, default=6000, help="events in the mixed set")
    sim.add_argument("--workers", type=int, default=None, help="worker processes (default: all)")
    sim.add_argument("--epochs", type=int, default=1000, help="nominal epochs per light curve")
    sim.add_argument("--topology", default="baseline", help="binary topology preset")
    sim.add_argument("--seed", type=int, default=0)

    tr = sub.add_parser("train", help="training-step throughput and memory (vs full attention)")
    _add_model_bench_options(tr, "the full-batch and baseline runs stop at 1000 by default")
    tr.add_argument("--batch", type=int, default=64, help="global batch on CPU (default: 64)")
    tr.add_argument("--micro-batch", type=int, default=0,
                    help="events per forward pass on CPU (default 0: as microlens.train, "
                         f"{CPU_MICRO_BATCH_OBSERVATIONS} observations per pass)")
    tr.add_argument("--gpu-batch", type=int, default=256,
                    help="batch on CUDA, one pass (default: 256)")
    tr.add_argument("--configs", nargs="+", choices=TRAIN_CONFIGS, default=list(TRAIN_CONFIGS),
                    metavar="NAME", help=f"configurations to run (default: all of "
                                         f"{', '.join(TRAIN_CONFIGS)})")
    tr.add_argument("--no-baseline", action="store_true", help="skip the full-attention baseline")
    tr.add_argument("--baseline-4000", action="store_true",
                    help="run the baseline above 1000 observations too (quadratic: slow)")
    tr.add_argument("--full-batch-4000", action="store_true",
                    help="run the no-micro-batching comparison above 1000 observations too")

    inf = sub.add_parser("infer", help="batch inference throughput, memory, streaming latency")
    _add_model_bench_options(inf, "each in its own process")
    inf.add_argument("--batch", type=int, default=64, help="events per pass on CPU (default: 64)")
    inf.add_argument("--gpu-batch", type=int, default=1024,
                     help="events per pass on CUDA (default: 1024)")
    inf.add_argument("--configs", nargs="+", choices=INFER_CONFIGS, default=list(INFER_CONFIGS),
                     metavar="NAME", help=f"configurations to run (default: all of "
                                          f"{', '.join(INFER_CONFIGS)})")
    inf.add_argument("--stream-observations", type=int, default=1000,
                     help="timed observation updates per stream (default: 1000)")
    inf.add_argument("--stream-events", type=int, nargs="+", default=[1, 64], metavar="K",
                     help="events streamed at once, one measurement each (default: 1 64)")
    inf.add_argument("--no-stream", action="store_true", help="skip the streaming latency")
    cls = sub.add_parser("classify", help="per-event cost: classical peer vs transformer")
    cls.add_argument("--events", type=int, default=90, help="simulated events (default: 90)")
    cls.add_argument("--epochs", type=int, default=1000, help="nominal epochs per light curve")
    cls.add_argument("--topology", default="baseline", help="binary topology preset")
    cls.add_argument("--batch", type=int, default=64, help="events per transformer pass")
    cls.add_argument("--seed", type=int, default=0)
    cls.add_argument("--quiet", action="store_true", help="no progress bars")
    stu = sub.add_parser("study", help="a whole study from nothing, then its figures rebuilt")
    stu.add_argument("study", nargs="?", default="quick", help="study name or .yaml (quick)")
    stu.add_argument("--set", action="append", default=[], metavar="NOTEBOOK.NAME=VALUE",
                     help="override a parameter in every cell (as the study runner's --set)")
    stu.add_argument("--only", action="append", default=[], metavar="CELL",
                     help="only these cells")
    stu.add_argument("--jobs", type=int, default=1, help="cells in parallel")
    stu.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    if args.what == "study":
        from .studies import StudyError
        from .studies.definition import parse_assignment

        try:
            overrides = dict(parse_assignment(text) for text in args.set)
            report = bench_study(args.study, overrides, args.jobs, args.only,
                                 progress=not args.quiet)
        except StudyError as exc:
            parser.error(str(exc))
    elif args.what == "simulate":
        if args.events < 3:
            parser.error(f"--events must be at least 3, got {args.events}")
        if args.workers is not None and args.workers < 1:
            parser.error(f"--workers must be positive, got {args.workers}")
        try:
            report = bench_simulate(args.events, args.workers, args.epochs, args.topology,
                                    args.seed)
        except ValueError as exc:  # bad preset names and the like
            parser.error(str(exc))
    elif args.what == "train":
        _check_model_bench_args(tr, args)
        configs = [c for c in args.configs if not (args.no_baseline and c == "baseline")]
        report = bench_train(args.lengths, args.batch, args.steps, args.micro_batch,
                             args.gpu_batch, args.device, args.threads, configs,
                             args.baseline_4000, args.full_batch_4000, args.tiny, args.seed,
                             progress=not args.quiet)
    elif args.what == "classify":
        if args.events < 3 or args.batch < 1 or args.epochs < 10:
            parser.error(f"need --events >= 3, --batch >= 1, --epochs >= 10; got "
                         f"{args.events}, {args.batch}, {args.epochs}")
        try:
            report = bench_classify(args.events, args.epochs, args.topology, args.batch,
                                    args.seed, progress=not args.quiet)
        except ValueError as exc:
            parser.error(str(exc))
    else:
        _check_model_bench_args(inf, args)
        report = bench_infer(args.lengths, args.batch, args.steps, args.gpu_batch, args.device,
                             args.threads, args.configs, not args.no_stream,
                             args.stream_observations, args.stream_events, args.tiny, args.seed,
                             progress=not args.quiet)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
