"""Batch inference and streaming latency: ``python -m microlens.bench infer``.

``infer`` times batch inference through the library's inference call,
:meth:`~microlens.model.MicrolensTransformer.predict_logits` under ``torch.inference_mode()``:
per-observation logits of ``--batch`` events (in passes of 16,384 observations on CPU, as that
method does by default; one pass on CUDA) (``ours_fp32`` and ``ours_bf16`` on CPU;
``ours_bf16`` at ``--gpu-batch`` on CUDA), one warm-up pass then ``--steps`` timed ones, each
configuration in a fresh process: ``seconds_per_batch``, ``events_per_second``, peak memory as
above. ``streaming`` is :func:`microlens.stream.stream_latency`: the mean and 95th percentile
(``mean_ms``, ``p95_ms``; ``raw`` is its whole answer) of the time of one observation update
over ``--stream-observations`` timed updates, for each ``--stream-events`` count of events
updated at once (default 1 and 64), on CPU in fp32. With ``--stream-encoders`` the same
latency is measured in the same process for each named encoder option of
:data:`STREAM_ENCODERS` beside the encoder from before the convolution stem
(``streaming.encoders``: parameters, mean and 95th percentile ms per observation for one
event, ratio to ``before``'s; the options take turns in
``--stream-rounds`` rounds so that machine load falls on all of them alike).
"""

from __future__ import annotations

import sys
import time

from ..model import SAVED_BEFORE_FIELD
from .common import _jsonable, _machine, _sig
from .models import (
    _add_flops,
    _autocast,
    _bench_start,
    _bf16_support,
    _configurations,
    _figure,
    _gpu_target,
    _growth,
    _n_parameters,
    _ratio,
    _setup,
    _spawn,
    _target,
    _timed,
    count_flops,
    synthetic_light_curves,
)

INFER_CONFIGS = ("ours_fp32", "ours_bf16")


STREAM_ENCODERS = {
    "before": dict(SAVED_BEFORE_FIELD),
    "rotary": {**SAVED_BEFORE_FIELD, "time_encoding": "rotary"},
    "stem": {},
    "rotary+stem": {"time_encoding": "rotary"},
}
"""Encoder options (:class:`~microlens.model.ModelConfig` overrides of the benchmark's model)
whose one-event streaming latency ``--stream-encoders`` compares: ``before`` is the
attention-only encoder of the project before the convolution stem (the reference of the
ratios), ``stem`` today's default (dilated convolution stem, no pool norm), and each with
rotary time encoding."""

INFER_TARGETS = {"gpu_events_per_second_1000": 100_000, "stream_ms_one_event_cpu": 1.0}


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


def _measure_stream(spec: dict) -> dict:
    """Streaming latency per observation from :func:`microlens.stream.stream_latency`."""
    import numpy as np
    import torch

    from ..model import MicrolensTransformer, ModelConfig, Normalization
    from ..stream import stream_latency
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
    encoders = spec.get("encoders") or []
    if not encoders:
        return {"results": results}
    names = ["before", *[name for name in encoders if name != "before"]]
    models = {}
    for name in names:
        torch.manual_seed(spec["seed"])
        config = ModelConfig(**{**spec["model_config"], **STREAM_ENCODERS[name]})
        models[name] = MicrolensTransformer(config, normalization).eval()
    seconds = {name: [] for name in names}
    for round_ in range(spec.get("rounds", 3)):
        for name, net in models.items():
            raw = stream_latency(net, spec["n_observations"], n_events=1, seed=round_)
            seconds[name].append(raw["mean_s"])
    before = float(np.median(seconds["before"]))
    compared = {name: {"n_parameters": models[name].n_parameters,
                       "options": STREAM_ENCODERS[name],
                       "mean_ms_per_round": [_sig(1e3 * s) for s in seconds[name]],
                       "median_ms": _sig(1e3 * float(np.median(seconds[name]))),
                       "ratio_to_before": _sig(float(np.median(seconds[name])) / before)}
                for name in names}
    return {"results": results, "encoders": compared}


def bench_infer(lengths=(1000, 4000), batch: int = 64, steps: int = 3, gpu_batch: int = 1024,
                device: str = "auto", threads: int | None = None, configs=INFER_CONFIGS,
                stream: bool = True, stream_observations: int = 1000, stream_events=(1, 64),
                tiny: bool = False, seed: int = 0, progress: bool = True,
                stream_encoders=(), stream_rounds: int = 3) -> dict:
    """Batch inference throughput, memory and streaming latency; see the module docstring.

    ``stream_encoders`` names options of :data:`STREAM_ENCODERS` whose one-event streaming
    latency is compared with today's encoder, over ``stream_rounds`` alternating rounds.
    """
    unknown = [name for name in stream_encoders if name not in STREAM_ENCODERS]
    if unknown:
        raise ValueError(f"unknown stream encoder(s) {unknown}; valid: "
                         f"{', '.join(STREAM_ENCODERS)}")
    if not isinstance(stream_rounds, int) or stream_rounds < 1:
        raise ValueError(f"stream_rounds must be a positive integer, got {stream_rounds!r}")
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
                "n_observations": stream_observations, "events": list(stream_events),
                "encoders": list(stream_encoders), "rounds": stream_rounds}
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

