"""Shared pieces of the model benchmarks (``train`` and ``infer``): synthetic light curves, the
full-attention baseline, FLOP counts, one measurement per fresh worker process, timing,
ratios and targets.

FLOPs: ``flops_per_event`` counts one event with :class:`torch.utils.flop_counter.FlopCounterMode`
(matrix products and the fused attention kernel; element-wise work is not counted), forward only and
forward plus backward (a training step is the latter), so GPU figures can be read against the
device's peak. The sliding-window attention is counted as the kernel runs it: each block of
``window`` queries against ``2 * window`` keys, sequences padded to a multiple of ``window``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from microlens.core.devices import DEVICES, resolve_device_name
from microlens.workflow.bench.common import _load_average, _sig, cpu_bf16_support

LONG = 1000  # the full-batch and baseline runs are skipped above this length by default


TINY_MODEL = {"d_model": 32, "n_heads": 4, "n_layers": 2, "d_ff": 64, "window": 16}


_WORKER = ("import sys; from microlens.workflow.bench.worker import _worker_main; "
           "raise SystemExit(_worker_main(sys.argv[1]))")


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
    :class:`~microlens.models.transformer.MicrolensTransformer`.
    """
    from torch import nn

    from microlens.models.config import N_FEATURES

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
    """The spec's model: the full-attention baseline, or the neural kind that
    ``spec["model_config"]["kind"]`` names (default: the transformer), seeded."""
    import torch

    from microlens.models.config import ModelConfig
    from microlens.models.registry import build_model

    torch.manual_seed(spec["seed"])
    config = ModelConfig(**spec["model_config"])
    if spec["model"] == "baseline":
        return full_attention_baseline(config, normalization).to(device)
    return build_model(config, normalization).to(device)


def count_flops(model_config: dict, length: int, backward: bool = False) -> int:
    """FLOPs of one event of ``length`` observations (fp32, CPU), counted by
    :class:`torch.utils.flop_counter.FlopCounterMode`: matrix products, convolutions and
    attention kernels (the GRU's recurrences run as matrix products on the CPU and count too).
    ``model_config`` may name any neural ``kind``.
    """
    import torch
    from torch.utils import flop_counter

    from microlens.models.config import ModelConfig
    from microlens.models.registry import build_model

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
    model = build_model(ModelConfig(**model_config))  # any neural kind (``kind`` field)
    data = synthetic_light_curves(1, length)
    with flop_counter.FlopCounterMode(display=False, custom_mapping=custom) as counter:
        logits = model(data["times"], data["flux"], data["flux_err"], data["mask"])["logits"]
        if backward:
            logits.sum().backward()
    return int(counter.get_total_flops())


def _setup(spec: dict):
    import torch

    from microlens.models.inputs import Normalization

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    if device.type == "cuda":  # as microlens.training.train does
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


def _spawn(spec: dict, label: str, progress: bool) -> dict:
    """Run one measurement in a fresh Python process; its JSON, or ``{"error": ...}``."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[3])  # lib/, holding microlens
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
    from microlens.models.config import ModelConfig

    config = ModelConfig(**TINY_MODEL) if tiny else ModelConfig()
    return config.to_dict()


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
    device = resolve_device_name(device)
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


def _public(spec: dict) -> dict:
    return {k: spec[k] for k in ("precision", "batch", "micro_batch") if k in spec}


def _n_parameters(model_config: dict) -> int:
    from microlens.models.config import ModelConfig
    from microlens.models.registry import count_parameters

    return count_parameters(ModelConfig(**model_config))


# --------------------------------------------------------------------------------------------
# Model kinds (--kinds): each neural kind at the benchmark's sizes, compared with the transformer
# --------------------------------------------------------------------------------------------

REFERENCE_KIND = "transformer"


def bench_kinds() -> tuple[str, ...]:
    """The kinds ``--kinds`` accepts: the neural kinds of :mod:`microlens.models.registry`."""
    from microlens.models.registry import neural_kinds

    return neural_kinds()


def check_kinds(kinds) -> list[str]:
    """``kinds`` checked and ordered for a benchmark: the transformer first (always measured:
    it is the reference of every ``vs_transformer`` ratio), then the others as given, each once.

    Raises
    ------
    ValueError
        For an unknown kind (naming the valid ones) and for ``features``, which is not a
        neural network and is timed elsewhere.
    """
    from microlens.models.registry import KINDS

    valid = bench_kinds()
    out = [REFERENCE_KIND]
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown model kind {kind!r} in --kinds; valid: {', '.join(valid)}")
        if kind not in valid:
            raise ValueError(
                f"kind {kind!r} is not a neural network, so bench infer/train cannot time it: "
                "its per-event prediction time (feature extraction at each update fraction "
                "plus the trees) is measured by the models study (studies/models.yaml) with "
                "microlens.models.features.time_feature_model on a trained features run; "
                f"valid --kinds: {', '.join(valid)}")
        if kind not in out:
            out.append(kind)
    return out


def receptive_field(model_config: dict) -> int | None:
    """Observations (the current one included) that one encoder state reads before the causal
    pooling: the transformer's convolution stem plus ``window - 1`` per attention layer, the
    cnn's dilated blocks, the set kinds' ``window`` newest points; None for the gru and the
    rnn_vae (their state reads every observation so far)."""
    kind = model_config.get("kind", REFERENCE_KIND)
    if kind == "transformer":
        kernel, layers = model_config["conv_stem_kernel"], model_config["conv_stem_layers"]
        stem = 1 + (kernel - 1) * (2**layers - 1) if kernel else 1
        return stem + model_config["n_layers"] * (model_config["window"] - 1)
    if kind == "cnn":
        return 1 + (model_config["kernel_size"] - 1) * (2 ** model_config["n_layers"] - 1)
    if kind == "masked":
        return receptive_field({**model_config, "kind": "transformer"})
    if kind in ("deepsets", "set_transformer"):  # the newest `window` points
        return model_config["window"]
    return None


CNN_MAX_LAYERS = 16  # ModelConfig's limit for kind "cnn" (dilations 2**layer)
SET_KIND_SIZES = {"deepsets": {"window": 16},
                  "set_transformer": {"window": 8, "n_layers": 1, "d_model": 32, "d_ff": 64,
                                      "n_heads": 2}}
"""The set kinds' sizes in the benchmark (those of ``studies/models.yaml``): each observation
has its own set of the newest ``window`` points, so their cost grows with ``window`` (and the
set transformer's with its width) far faster than the transformer's."""


def kind_model_config(kind: str, model_config: dict) -> dict:
    """The benchmark's model config for ``kind``: the registry's ``ModelConfig(kind=...)``
    with the benchmark's ``d_model``, ``d_ff``, ``dropout``, ``n_classes`` and ``pool_norm``.
    The gru keeps the transformer's ``n_layers`` (stacked GRU layers); the cnn gets the number
    of blocks whose receptive field ``1 + (kernel_size - 1) * (2**n_layers - 1)`` is closest
    (in ratio; ties to the larger) to the transformer's :func:`receptive_field` (7 blocks, 509
    observations, against 505 at the default sizes); the set kinds get
    :data:`SET_KIND_SIZES`; ``masked`` is the transformer's config. The transformer's config is
    returned as it is."""
    import math

    from microlens.models.config import ModelConfig

    if kind == REFERENCE_KIND:
        return dict(model_config)
    if kind == "masked":  # the transformer itself (a benchmark has no pretraining run)
        return {**model_config, "kind": kind}
    shared = {k: model_config[k] for k in ("d_model", "d_ff", "dropout", "n_classes",
                                            "pool_norm", "window") if k in model_config}
    config = {**shared, "kind": kind, "n_layers": model_config["n_layers"]}
    if kind == "cnn":
        target = receptive_field({**model_config, "kind": REFERENCE_KIND})
        kernel = ModelConfig(kind="cnn").kernel_size
        config["n_layers"] = min(
            range(1, CNN_MAX_LAYERS + 1),
            key=lambda n: (abs(math.log(receptive_field(
                {"kind": "cnn", "kernel_size": kernel, "n_layers": n}) / target)), -n))
    if kind in SET_KIND_SIZES:  # a set per observation: the sizes that train in minutes
        config.update(SET_KIND_SIZES[kind])
    # heads must divide d_model for every kind (ModelConfig checks it); they are unused here
    n_heads = config.get("n_heads", model_config.get("n_heads", 1))
    config["n_heads"] = n_heads if config["d_model"] % n_heads == 0 else 1
    return ModelConfig(**config).to_dict()


def kind_description(kind: str, model_config: dict) -> dict:
    """What ``kinds.<kind>`` starts with: its config, parameters and receptive field."""
    return {"model_config": model_config, "n_parameters": _n_parameters(model_config),
            "receptive_field": receptive_field(model_config)}


MEMORY_KEYS = ("peak_increase_gb", "peak_rss_gb", "peak_allocated_gb")


def _kind_label(kind: str) -> str:
    """How progress lines name a kind: nothing for the transformer (as before ``--kinds``)."""
    return "" if kind == REFERENCE_KIND else f" {kind}"


def kinds_report(kind_configs: dict, configurations: dict, flops: dict, time_key: str,
                 streaming: dict | None = None) -> dict | None:
    """The ``kinds`` section of a report: per kind (the transformer first) its config,
    parameters, receptive field, FLOPs per event, ``configurations`` (the shape of the report's
    own, at the same batch, lengths, precision and threads) and, from ``bench infer``,
    ``streaming``; every other kind adds ``vs_transformer``: its figure over the
    transformer's, per configuration and length (``time_key`` and the memory figures),
    parameters, and streaming ms per observation per event count. None with one kind."""
    if len(kind_configs) < 2:
        return None
    report = {}
    reference = configurations[REFERENCE_KIND]
    for kind, model_config in kind_configs.items():
        entry = {**kind_description(kind, model_config), "flops_per_event": flops[kind],
                 "configurations": configurations[kind]}
        stream = (streaming or {}).get(kind)
        if streaming is not None:
            entry["streaming"] = stream
        if kind != REFERENCE_KIND:
            vs = {"n_parameters": _ratio(entry["n_parameters"],
                                         report[REFERENCE_KIND]["n_parameters"]),
                  "configurations": {}}
            for name, config in configurations[kind].items():
                per_length = {}
                for length, result in (config.get("results") or {}).items():
                    base = ((reference.get(name) or {}).get("results") or {}).get(length) or {}
                    figures = {key: _ratio(result.get(key), base.get(key))
                               for key in (time_key, *MEMORY_KEYS) if key in result}
                    if figures:
                        per_length[length] = figures
                if per_length:
                    vs["configurations"][name] = per_length
            if stream and stream.get("results"):
                vs["streaming_ms_per_observation"] = {
                    n: figures.get("vs_transformer") for n, figures in stream["results"].items()}
            entry["vs_transformer"] = vs
        report[kind] = entry
    return report


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
    parser.add_argument("--kinds", nargs="+", default=[REFERENCE_KIND], metavar="KIND",
                        help="model kinds to measure at the same shapes, in the same run "
                             "(transformer, cnn, gru; the transformer is always measured: "
                             "each other kind's figures come with ratios to it, "
                             "kinds.<kind>.vs_transformer) (default: transformer)")


def _check_model_bench_args(parser, args) -> None:
    import torch

    try:
        args.kinds = check_kinds(args.kinds)
    except ValueError as exc:
        parser.error(str(exc))
    for name in ("steps", "batch", "gpu_batch", "micro_batch", "threads", "stream_observations",
                 "stream_block"):
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
    for option in ("stream_events", "stream_lengths"):
        for n in getattr(args, option, None) or []:
            if n < 1:
                parser.error(f"--{option.replace('_', '-')} must be positive, got {n}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available on this machine (use auto or cpu)")

