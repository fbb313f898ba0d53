"""Training-step throughput and memory: ``python -m microlens.workflow.bench train``.

``train`` times real training steps on synthetic light curves (times ~0.2 d apart, flux ~1 with
noise and, for random labels 1 and 2, a lensing bump and a spike; errors ~0.05; every event ``N``
observations long) for each ``--lengths`` value ``N``. A step is what
:mod:`microlens.training.train` does for one global batch of ``--batch`` events: forward under
autocast and :func:`microlens.training.train.event_losses` (class weights 1) for every micro-batch,
backward (gradient accumulation), gradient clipping and the AdamW update. One warm-up step (one
micro-batch: the same tensor shapes) precedes ``--steps`` timed ones. Every configuration and length
runs in a fresh Python process, so its memory figure is its own. Per length:

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

Configurations on CPU: ``ours_fp32`` (the default :class:`~microlens.models.config.ModelConfig`,
dropout 0.1, micro-batches as :mod:`microlens.training.train` makes them on CPU: 16,384
observations, i.e. 16 events of 1000 and 4 of 4000, unless ``--micro-batch`` fixes the number of
events); ``ours_bf16`` (the same under bf16 autocast; null with the reason when the CPU has no
native bf16); ``ours_fp32_full_batch`` (micro-batch = the whole batch: the effect of
micro-batching); ``baseline`` (PyTorch's own full-attention ``nn.TransformerEncoder`` of the same
size, pre-norm, causal mask, dropout 0, the same input features, a ``Linear(3, d)`` input and a
``Linear(d, 3)`` per-observation head, the same loss and optimiser, one pass of the whole batch,
fp32). The full-batch and baseline runs are skipped above 1000 observations unless
``--full-batch-4000`` / ``--baseline-4000`` are given (say why in the JSON). On CUDA: ``ours_bf16``
at ``--gpu-batch`` events in one pass. ``ratios`` holds the baseline's seconds per step over ours,
full batch over micro-batches, fp32 over bf16, and the growth of per-event time and of peak memory
from the shortest to the longest length; ``targets`` the goals with the measured values beside them.

Model kinds: ``--kinds transformer cnn gru`` also times each other neural kind's training steps
(:func:`microlens.training.train.train_step`, the same micro-batches, precision and threads) in
every configuration but ``baseline``, the kinds taking turns at every configuration and length;
``kinds.<kind>`` holds its config, parameters, FLOPs and ``configurations``,
``kinds.<kind>.vs_transformer`` its seconds per step and peak memory over the transformer's
(see :mod:`~microlens.workflow.bench.infer` for how the kinds are sized).
"""

from __future__ import annotations

import sys
import time

from microlens.workflow.bench.common import _machine, _sig
from microlens.workflow.bench.models import (
    LONG,
    REFERENCE_KIND,
    _add_flops,
    _bench_start,
    _bf16_support,
    _configurations,
    _figure,
    _gpu_target,
    _growth,
    _kind_label,
    _n_parameters,
    _ratio,
    _setup,
    _spawn,
    _target,
    _timed,
    check_kinds,
    count_flops,
    full_attention_baseline,
    kind_model_config,
    kinds_report,
)

TRAIN_CONFIGS = ("ours_fp32", "ours_bf16", "ours_fp32_full_batch", "baseline")


TRAIN_TARGETS = {"speedup_over_baseline": 3.0, "peak_rss_gb_64x1000": 2.0, "growth": 4.5,
                 "gpu_events_per_second_1000": 30_000}


def _measure_train(spec: dict) -> dict:
    """One configuration's training steps (see the module docstring): each step is
    :func:`microlens.training.train.train_step`, the function the trainer itself calls, with class
    weights 1 and the default :class:`~microlens.training.train.TrainConfig` settings."""
    import torch

    from microlens.training.loop import cpu_micro_batch, make_optimizer
    from microlens.training.train import TrainConfig, train_step

    device, data, model = _setup(spec)
    model.train()
    defaults = TrainConfig()
    optimizer = make_optimizer(model, defaults, device)
    micro = min(spec["micro_batch"] or cpu_micro_batch(spec["length"]), spec["batch"])
    class_weights = torch.ones(spec["model_config"]["n_classes"], device=device)
    dtype = torch.bfloat16 if spec["precision"] == "bf16" else None

    def step(events: int) -> None:
        parts = [slice(start, min(start + micro, events)) for start in range(0, events, micro)]
        train_step(model, optimizer, parts, lambda part: {k: v[part] for k, v in data.items()},
                   n_events=events, class_weights=class_weights,
                   final_weight=defaults.final_weight, grad_clip=defaults.grad_clip,
                   autocast_dtype=dtype)

    result = _timed(step, micro, spec["batch"], spec["steps"], device)
    return {**result, "micro_batch": micro, "n_parameters": model.n_parameters}


def bench_train(lengths=(1000, 4000), batch: int = 64, steps: int = 3, micro_batch: int = 0,
                gpu_batch: int = 256, device: str = "auto", threads: int | None = None,
                configs=TRAIN_CONFIGS, baseline_long: bool = False, full_batch_long: bool = False,
                tiny: bool = False, seed: int = 0, progress: bool = True,
                kinds=(REFERENCE_KIND,)) -> dict:
    """Training-step throughput and memory; see the module docstring. ``kinds`` adds each
    named neural kind's steps at the same shapes (``kinds`` in the report,
    :func:`~microlens.workflow.bench.models.kinds_report`); the baseline is the transformer's
    only."""
    kinds = check_kinds(kinds)
    started, load_at_start, device, model_config = _bench_start(device, threads, tiny)
    kind_configs = {kind: kind_model_config(kind, model_config) for kind in kinds}
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
    # one set of configurations per kind (the baseline only for the transformer, whose set is
    # the report's own)
    per_kind = {kind: _configurations(TRAIN_CONFIGS, plan, configs, bf16_ok, bf16_why)
                for kind in kinds}
    for kind in kinds[1:]:
        del per_kind[kind]["baseline"]
    out = per_kind[REFERENCE_KIND]
    for length in lengths:
        for name, config in out.items():
            if config.get("results") is None:
                continue
            skipped = None
            if length > LONG and name == "baseline" and not baseline_long:
                skipped = (f"full attention does N^2 work per layer ({(length / LONG) ** 2:.0f}x "
                           f"the attention work at {LONG}); pass --baseline-4000 to run it")
            if length > LONG and name == "ours_fp32_full_batch" and not full_batch_long:
                skipped = (f"the micro-batching effect is shown at {LONG} and below (this one "
                           "is slow); pass --full-batch-4000 to run it")
            for kind in kinds if name != "baseline" else [REFERENCE_KIND]:  # kinds take turns
                if skipped:
                    per_kind[kind][name]["results"][str(length)] = {"skipped": skipped}
                    continue
                spec = {**base, **plan[name], "length": length,
                        "model_config": kind_configs[kind]}
                per_kind[kind][name]["results"][str(length)] = _spawn(
                    spec, f"train {name}{_kind_label(kind)} N={length}", progress)

    if progress:
        print("[bench] counting FLOPs", file=sys.stderr, flush=True)
    flops_by_kind = {kind: {str(n): {"forward": count_flops(kind_configs[kind], n),
                                     "forward_backward": count_flops(kind_configs[kind], n,
                                                                     backward=True)}
                            for n in lengths} for kind in kinds}
    for kind in kinds:
        _add_flops(per_kind[kind], flops_by_kind[kind], "forward_backward")
    flops = flops_by_kind[REFERENCE_KIND]
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

    from microlens.models.config import ModelConfig

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
        **({"kinds": kinds_report(kind_configs, per_kind, flops_by_kind, "seconds_per_step")}
           if len(kinds) > 1 else {}),
        "machine": _machine(device, threads, load_at_start),
        "wall_seconds": _sig(time.perf_counter() - started),
    }

