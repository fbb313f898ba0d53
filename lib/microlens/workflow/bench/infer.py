"""Batch inference and streaming latency: ``python -m microlens.workflow.bench infer``.

``infer`` times batch inference through the library's inference call,
:meth:`~microlens.models.transformer.MicrolensTransformer.predict_logits` under
``torch.inference_mode()``:
per-observation logits of ``--batch`` events (in passes of 16,384 observations on CPU, as that
method does by default; one pass on CUDA) (``ours_fp32`` and ``ours_bf16`` on CPU;
``ours_bf16`` at ``--gpu-batch`` on CUDA), one warm-up pass then ``--steps`` timed ones, each
configuration in a fresh process: ``seconds_per_batch``, ``events_per_second``, peak memory as
above. ``streaming`` is :func:`microlens.models.stream.stream_latency`: the mean and 95th percentile
(``mean_ms``, ``p95_ms``; ``raw`` is its whole answer) of the time of one observation update
over ``--stream-observations`` timed updates, for each ``--stream-events`` count of events
updated at once (default 1 and 64), on CPU in fp32. With ``--stream-encoders`` the same
latency is measured in the same process for each named encoder option of
:data:`STREAM_ENCODERS` beside the encoder from before the convolution stem
(``streaming.encoders``: parameters, mean and 95th percentile ms per observation for one
event, ratio to ``before``'s; the options take turns in
``--stream-rounds`` rounds so that machine load falls on all of them alike).

Long curves: every batch result also gives its cost per event and per observation (``ms_per_event``,
``us_per_observation``; ``events_per_pass``, the events in memory at once, and
``peak_increase_mb_per_event``, ``peak_increase_kb_per_observation``: the peak increase over the
events of one pass). ``--stream-lengths N ...`` streams one event for ``max(N)`` observations and
reports, at each ``N``, the time per new observation over the ``--stream-block`` updates that end at
observation ``N`` (``streaming.at_lengths``; the streaming state is a fixed ring buffer,
``state_kb_per_event``), and over as many updates of a fresh stream timed right after
(``ratio_to_fresh``: the same load on both). ``ratios.long_curves`` divides the per-observation
figures at the longest length by those at the shortest: about 1 when the cost is O(N * window), i.e.
constant per observation (``python -m microlens.workflow.bench infer --lengths 1000 5000 20000
--stream-lengths 1000 5000 20000``).

Model kinds: ``--kinds transformer cnn gru`` measures each neural kind of
:mod:`microlens.models.registry` at the transformer's shapes (batch, lengths, precision, threads)
in the same run, the kinds taking turns at every configuration and length, each in a fresh
process (:func:`~microlens.workflow.bench.models.kind_model_config` sizes them: the benchmark's
``d_model``, ``d_ff``, ``dropout``; the gru the transformer's ``n_layers``, the cnn the number
of blocks whose receptive field is closest to the transformer's). ``kinds.<kind>`` holds each
kind's config, parameters, receptive field, FLOPs, ``configurations`` and ``streaming`` (one and
``--stream-events`` events, alternating kinds in ``--stream-rounds`` rounds in one process: the
mean ms per observation of each round, their median, the median 95th percentile);
``kinds.<kind>.vs_transformer`` the kind's seconds per batch, peak memory, parameters and
streaming ms per observation over the transformer's. The ``features`` kind is not a network and
is refused (the models study times it).
"""

from __future__ import annotations

import math
import sys
import time

from microlens.models.config import CPU_PASS_OBSERVATIONS, SAVED_BEFORE_FIELD
from microlens.workflow.bench.common import _jsonable, _machine, _sig
from microlens.workflow.bench.models import (
    REFERENCE_KIND,
    _add_flops,
    _autocast,
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
    kind_model_config,
    kinds_report,
    synthetic_light_curves,
)

INFER_CONFIGS = ("ours_fp32", "ours_bf16")


STREAM_ENCODERS = {
    "before": dict(SAVED_BEFORE_FIELD),
    "rotary": {**SAVED_BEFORE_FIELD, "time_encoding": "rotary"},
    "stem": {},
    "rotary+stem": {"time_encoding": "rotary"},
    "heads": {"parameter_heads": True},
    "heads+anchor": {"parameter_heads": True, "parameter_origin": "peak"},
}
"""Encoder options (:class:`~microlens.models.config.ModelConfig` overrides of the benchmark's
model) whose one-event streaming latency ``--stream-encoders`` compares: ``before`` is the
attention-only encoder of the project before the convolution stem (the reference of the
ratios), ``stem`` today's default (dilated convolution stem, no pool norm), and each with
rotary time encoding; ``heads`` is today's default with the lens-parameter heads
(:mod:`microlens.models.parameters`), whose ``ratio_to_stem`` is the cost of the heads per
streamed update, and ``heads+anchor`` the same heads measuring ``t_0`` from the peak anchor."""

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
    """Streaming latency per observation from :func:`microlens.models.stream.stream_latency`; with
    ``spec["kinds"]`` (kind -> model config) also each kind's, alternating kinds in rounds
    (:func:`_compare_kinds`)."""
    import numpy as np
    import torch

    from microlens.models.config import ModelConfig
    from microlens.models.inputs import Normalization
    from microlens.models.registry import build_model
    from microlens.models.stream import stream_latency
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    data = synthetic_light_curves(64, spec["n_observations"], seed=spec["seed"])
    normalization = Normalization.fit(data["times"], data["flux"], data["flux_err"],
                                      data["mask"])
    torch.manual_seed(spec["seed"])
    model = build_model(ModelConfig(**spec["model_config"]), normalization).eval()
    results = {}
    for n_events in spec["events"]:
        raw = _jsonable(stream_latency(model, spec["n_observations"], n_events=n_events))
        results[str(n_events)] = {"mean_ms": _sig(1e3 * raw["mean_s"]),
                                  "p95_ms": _sig(1e3 * raw["p95_s"]), "raw": raw}
    extra = {}
    if spec.get("at_lengths"):
        extra["at_lengths"] = stream_at_lengths(model, spec["at_lengths"],
                                                spec.get("block", 200), seed=spec["seed"])
    if spec.get("kinds"):
        extra["kinds"] = _compare_kinds(spec, normalization)
    encoders = spec.get("encoders") or []
    if not encoders:
        return {"results": results, **extra}
    names = ["before", *[name for name in encoders if name != "before"]]
    models = {}
    for name in names:
        torch.manual_seed(spec["seed"])
        config = ModelConfig(**{**spec["model_config"], **STREAM_ENCODERS[name]})
        models[name] = build_model(config, normalization).eval()
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
    if "stem" in names:  # today's default: the reference of options added to it
        stem = float(np.median(seconds["stem"]))
        for name in names:
            compared[name]["ratio_to_stem"] = _sig(float(np.median(seconds[name])) / stem)
    return {"results": results, **extra, "encoders": compared}


def _compare_kinds(spec: dict, normalization) -> dict:
    """Streaming latency of each kind of ``spec["kinds"]`` (kind -> model config, the
    transformer first), in ``spec["rounds"]`` rounds; in each round every ``spec["events"]``
    count is streamed by every kind in turn (same synthetic observations: the round's seed), so
    machine load falls on all kinds alike. Per kind and event count: the mean ms per
    observation of each round, their median (``median_ms``), the median of the rounds' 95th
    percentiles (``p95_ms``), and ``vs_transformer``: the median over rounds of the kind's mean
    over the transformer's mean in the same round."""
    import numpy as np
    import torch

    from microlens.models.config import ModelConfig
    from microlens.models.registry import build_model
    from microlens.models.stream import stream_latency

    models = {}
    for kind, config in spec["kinds"].items():
        torch.manual_seed(spec["seed"])
        models[kind] = build_model(ModelConfig(**config), normalization).eval()
    means = {kind: {n: [] for n in spec["events"]} for kind in models}
    p95 = {kind: {n: [] for n in spec["events"]} for kind in models}
    for round_ in range(spec.get("rounds", 3)):
        for n_events in spec["events"]:
            for kind, net in models.items():
                raw = stream_latency(net, spec["n_observations"], n_events=n_events,
                                     seed=round_)
                means[kind][n_events].append(raw["mean_s"])
                p95[kind][n_events].append(raw["p95_s"])
    reference = means[next(iter(models))]
    out = {}
    for kind, net in models.items():
        results = {}
        for n_events in spec["events"]:
            mine = np.array(means[kind][n_events])
            results[str(n_events)] = {
                "mean_ms_per_round": [_sig(1e3 * s) for s in mine],
                "median_ms": _sig(1e3 * float(np.median(mine))),
                "p95_ms": _sig(1e3 * float(np.median(p95[kind][n_events]))),
                "vs_transformer": _sig(float(np.median(mine / np.array(reference[n_events]))))}
        out[kind] = {"n_parameters": net.n_parameters, "results": results}
    return {"rounds": spec.get("rounds", 3), "threads": 1, "kinds": out}


def stream_at_lengths(model, lengths, block: int = 200, seed: int = 0) -> dict:
    """One event streamed for ``max(lengths)`` observations on one thread, every update timed;
    per length ``N`` the mean, median and 95th percentile ms of the ``block`` updates ending at
    observation ``N``, and the bytes of the streaming state (fixed: the key/value ring buffers).
    Right after observation ``N`` a fresh stream takes the first ``block`` observations, timed
    (``fresh_mean_ms``): ``ratio_to_fresh`` is the cost after ``N`` observations over the cost
    at the start, measured under the same machine load.

    The synthetic observations are drawn as :func:`microlens.models.stream.stream_latency` draws
    them (intervals inside the normalisation's range), with a bump in the middle of the stream.
    """
    import numpy as np
    import torch

    from microlens.models.stream import StreamingClassifier

    lengths = sorted(int(n) for n in lengths)
    if not lengths or lengths[0] < 1 or block < 1:
        raise ValueError(f"need positive lengths and block, got {lengths} and {block}")
    total = lengths[-1]
    stream = StreamingClassifier(model, n_events=1)
    norm = model.normalization
    rng = np.random.default_rng(seed)
    low = norm.dt_min if norm.dt_min > 0 else 1e-2
    high = norm.dt_max if math.isfinite(norm.dt_max) and norm.dt_max > low else 10 * low
    times = np.cumsum(np.clip(np.exp(rng.uniform(math.log(low), math.log(high), total)),
                              low, high))[:, None]
    phase = (times - times[-1, 0] / 2) / max(float(times[-1, 0]) / 20, 1e-6)
    flux = 1 + 2 / (1 + phase**2) + 0.01 * rng.standard_normal((total, 1))
    err = np.full((total, 1), 0.01)
    seconds = np.empty(total)
    fresh = {}  # per length: a fresh stream's first updates, timed right after (load drift)
    fresh_stream = StreamingClassifier(model, n_events=1)
    checkpoints = set(lengths)
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as stream_latency: one thread suits single-token steps
    started = time.perf_counter()
    try:
        for step in range(total):
            start = time.perf_counter()
            stream.update(times[step], flux[step], err[step], check_intervals=False)
            seconds[step] = time.perf_counter() - start
            if step + 1 in checkpoints:
                fresh_stream.reset()
                first = np.empty(min(block, step + 1))
                for i in range(first.size):
                    start = time.perf_counter()
                    fresh_stream.update(times[i], flux[i], err[i], check_intervals=False)
                    first[i] = time.perf_counter() - start
                fresh[step + 1] = first
    finally:
        torch.set_num_threads(before)
    state = sum(t.numel() * t.element_size() for t in stream.state_tensors().values())
    out = {}
    for n in lengths:
        part = seconds[max(0, n - block):n]
        out[str(n)] = {"timed_updates": int(part.size), "mean_ms": _sig(1e3 * part.mean()),
                       "p50_ms": _sig(1e3 * np.median(part)),
                       "p95_ms": _sig(1e3 * np.percentile(part, 95)),
                       "fresh_mean_ms": _sig(1e3 * fresh[n].mean()),
                       "ratio_to_fresh": _sig(part.mean() / fresh[n].mean())}
    return {"n_events": 1, "block": block, "threads": 1, "window": stream.window,
            "state_kb_per_event": _sig(state / 1024), "seconds": _sig(time.perf_counter()
                                                                      - started),
            "results": out}


def _per_observation(result: dict, length: int, batch: int, device: str) -> None:
    """Add a batch result's cost per event and per observation (in place)."""
    seconds = result.get("seconds_per_batch")
    if not seconds:
        return
    per_pass = batch if device == "cuda" else min(batch, max(1, CPU_PASS_OBSERVATIONS // length))
    result["ms_per_event"] = _sig(1e3 * seconds / batch)
    result["us_per_observation"] = _sig(1e6 * seconds / (batch * length))
    result["events_per_pass"] = per_pass
    increase = result.get("peak_increase_gb")
    if increase is not None:
        result["peak_increase_mb_per_event"] = _sig(1024 * increase / per_pass)
        result["peak_increase_kb_per_observation"] = _sig(1024**2 * increase
                                                          / (per_pass * length))


def _long_curves(out: dict, lengths, streaming: dict | None) -> dict | None:
    """Per-observation figures at the longest length over the shortest (batch and stream)."""
    ratios = {}
    if len(set(lengths)) > 1:
        short, long = min(lengths), max(lengths)
        ratios["batch"] = {"from_length": short, "to_length": long}
        for name in INFER_CONFIGS:
            figures = {key: _ratio(_figure(out, name, long, key), _figure(out, name, short, key))
                       for key in ("us_per_observation", "peak_increase_kb_per_observation")}
            if any(v is not None for v in figures.values()):
                ratios["batch"][name] = figures
    at = ((streaming or {}).get("at_lengths") or {}).get("results") or {}
    if len(at) > 1:
        short, long = min(at, key=int), max(at, key=int)
        ratios["stream_one_event"] = {
            "from_length": int(short), "to_length": int(long),
            "ms_per_observation": _ratio(at[long]["mean_ms"], at[short]["mean_ms"]),
            "p50_ms_per_observation": _ratio(at[long]["p50_ms"], at[short]["p50_ms"]),
            "ratio_to_fresh_at_longest": at[long].get("ratio_to_fresh")}
    return ratios or None


def bench_infer(lengths=(1000, 4000), batch: int = 64, steps: int = 3, gpu_batch: int = 1024,
                device: str = "auto", threads: int | None = None, configs=INFER_CONFIGS,
                stream: bool = True, stream_observations: int = 1000, stream_events=(1, 64),
                tiny: bool = False, seed: int = 0, progress: bool = True,
                stream_encoders=(), stream_rounds: int = 3, stream_lengths=(),
                stream_block: int = 200, kinds=(REFERENCE_KIND,)) -> dict:
    """Batch inference throughput, memory and streaming latency; see the module docstring.

    ``stream_encoders`` names options of :data:`STREAM_ENCODERS` whose one-event streaming
    latency is compared with today's encoder, over ``stream_rounds`` alternating rounds.
    ``stream_lengths`` times one-event streaming updates after that many observations
    (``stream_block`` updates ending at each; :func:`stream_at_lengths`). ``kinds`` adds each
    named neural kind at the same shapes (``kinds`` in the report,
    :func:`~microlens.workflow.bench.models.kinds_report`); their streaming latency is compared over
    ``stream_rounds`` alternating rounds.
    """
    if any(not isinstance(n, int) or n < 1 for n in stream_lengths) or stream_block < 1:
        raise ValueError(f"stream_lengths and stream_block must be positive, got "
                         f"{list(stream_lengths)} and {stream_block}")
    unknown = [name for name in stream_encoders if name not in STREAM_ENCODERS]
    if unknown:
        raise ValueError(f"unknown stream encoder(s) {unknown}; valid: "
                         f"{', '.join(STREAM_ENCODERS)}")
    if not isinstance(stream_rounds, int) or stream_rounds < 1:
        raise ValueError(f"stream_rounds must be a positive integer, got {stream_rounds!r}")
    kinds = check_kinds(kinds)
    started, load_at_start, device, model_config = _bench_start(device, threads, tiny)
    kind_configs = {kind: kind_model_config(kind, model_config) for kind in kinds}
    base = {"task": "infer", "steps": steps, "seed": seed, "threads": threads,
            "device": device, "model_config": model_config, "model": "ours"}
    bf16_ok, bf16_why = _bf16_support(device)
    if device == "cuda":
        plan = {"ours_bf16": {"precision": "bf16", "batch": gpu_batch}}
    else:
        plan = {"ours_fp32": {"precision": "fp32", "batch": batch},
                "ours_bf16": {"precision": "bf16", "batch": batch}}
    # one set of configurations per kind; the transformer's is the report's own
    per_kind = {kind: _configurations(INFER_CONFIGS, plan, configs, bf16_ok, bf16_why)
                for kind in kinds}
    out = per_kind[REFERENCE_KIND]
    for length in lengths:
        for name, config in out.items():
            if config.get("results") is None:
                continue
            for kind in kinds:  # the kinds take turns at every configuration and length
                spec = {**base, **plan[name], "length": length,
                        "model_config": kind_configs[kind]}
                result = _spawn(spec, f"infer {name}{_kind_label(kind)} N={length}", progress)
                _per_observation(result, length, plan[name]["batch"], device)
                per_kind[kind][name]["results"][str(length)] = result

    streaming, stream_kinds = None, None
    if stream:
        spec = {"task": "stream", "seed": seed, "threads": threads, "model_config": model_config,
                "n_observations": stream_observations, "events": list(stream_events),
                "encoders": list(stream_encoders), "rounds": stream_rounds,
                "at_lengths": list(stream_lengths), "block": stream_block,
                "kinds": kind_configs if len(kinds) > 1 else {}}
        streaming = {"device": "cpu", "precision": "fp32",
                     "n_observations": stream_observations,
                     **_spawn(spec, "stream latency", progress)}
        compared = streaming.pop("kinds", None)
        if len(kinds) > 1:
            stream_kinds = {kind: (
                {"device": "cpu", "precision": "fp32", "n_observations": stream_observations,
                 "rounds": compared["rounds"], "threads": compared["threads"],
                 **compared["kinds"][kind]} if compared else
                {"error": streaming.get("error", "not measured")}) for kind in kinds}

    if progress:
        print("[bench] counting FLOPs", file=sys.stderr, flush=True)
    flops_by_kind = {kind: {str(n): {"forward": count_flops(kind_configs[kind], n)}
                            for n in lengths} for kind in kinds}
    for kind in kinds:
        _add_flops(per_kind[kind], flops_by_kind[kind], "forward")
    flops = flops_by_kind[REFERENCE_KIND]
    ratios = {
        "ours_bf16_over_ours_fp32_events_per_second": {
            str(n): _ratio(_figure(out, "ours_bf16", n, "events_per_second"),
                           _figure(out, "ours_fp32", n, "events_per_second")) for n in lengths},
    }
    ratios = {k: {n: v for n, v in d.items() if v is not None} for k, d in ratios.items()}
    ratios["growth"] = _growth(out, INFER_CONFIGS, list(lengths), "seconds_per_batch")
    ratios["long_curves"] = _long_curves(out, list(lengths), streaming)

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
        **({"kinds": kinds_report(kind_configs, per_kind, flops_by_kind, "seconds_per_batch",
                                  stream_kinds if stream else None)} if len(kinds) > 1 else {}),
        "machine": _machine(device, threads, load_at_start),
        "wall_seconds": _sig(time.perf_counter() - started),
    }

