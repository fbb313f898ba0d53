"""The benchmark CLI runs and prints the figures it promises (speed itself is not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_simulate_prints_json_figures():
    out = subprocess.run([sys.executable, "-m", "microlens.workflow.bench", "simulate",
                          "--events", "60",
                          "--workers", "1", "--epochs", "100"], capture_output=True, text=True,
                         check=True, timeout=300)
    report = json.loads(out.stdout)
    assert report["benchmark"] == "simulate" and report["workers"] == 1
    for key in ("mixed", "binary_only", "mixed_with_detectability"):
        assert report[key]["events_per_second"] > 0 and report[key]["events"] > 0
    assert report["mixed"]["events"] == 60 and report["binary_only"]["events"] == 20


def test_bench_rejects_bad_arguments_with_the_choices(capsys):
    # in process: the other tests run ``python -m microlens.workflow.bench`` itself
    from microlens.workflow.bench import main

    for arguments, said in ((["simulate", "--topology", "wide"],
                             "unknown topology preset 'wide'; valid choices: distinct"),
                            (["train-nothing"], "simulate")):
        with pytest.raises(SystemExit) as stop:  # argparse's usage error
            main(arguments)
        assert stop.value.code == 2 and said in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# bench train / bench infer (tiny model; figures are checked for shape, never for speed)
# --------------------------------------------------------------------------------------------


def _run_bench(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "microlens.workflow.bench", *args, "--quiet"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _positive(result: dict, *keys: str) -> None:
    for key in keys:
        assert isinstance(result[key], float | int) and result[key] > 0, (key, result)


@pytest.mark.slow
def test_bench_train_prints_figures_ratios_and_targets():
    report = _run_bench("train", "--tiny", "--lengths", "64", "1100", "--batch", "4",
                        "--micro-batch", "2", "--steps", "1", "--configs", "ours_fp32",
                        "baseline", "--device", "cpu")
    assert report["benchmark"] == "train" and report["device"] == "cpu"
    assert report["lengths"] == [64, 1100] and report["batch"] == 4 and report["steps"] == 1
    assert report["model"]["n_parameters"] > 0 and report["baseline_model"]["n_parameters"] > 0
    configs = report["configurations"]
    for length in ("64", "1100"):
        result = configs["ours_fp32"]["results"][length]
        _positive(result, "seconds_per_step", "events_per_second", "peak_rss_gb",
                  "achieved_tflops")
        assert result["peak_increase_gb"] >= 0 and result["micro_batch"] == 2
        assert result["other_processes_cores"] is None or result["other_processes_cores"] >= 0
        assert len(result["step_seconds"]) == 1
        flops = report["flops_per_event"][length]
        assert flops["forward_backward"] > 2 * flops["forward"] > 0
    _positive(configs["baseline"]["results"]["64"], "seconds_per_step", "events_per_second",
              "peak_rss_gb")
    assert configs["baseline"]["results"]["64"]["micro_batch"] == 4  # one pass of the batch
    assert "--baseline-4000" in configs["baseline"]["results"]["1100"]["skipped"]
    for name in ("ours_bf16", "ours_fp32_full_batch"):
        assert configs[name]["results"] is None and "--configs" in configs[name]["skipped"]
    ratios = report["ratios"]
    assert ratios["baseline_over_ours_fp32_seconds_per_step"]["64"] > 0
    assert "1100" not in ratios["baseline_over_ours_fp32_seconds_per_step"]
    growth = ratios["growth"]
    assert growth["from_length"] == 64 and growth["to_length"] == 1100
    _positive(growth["ours_fp32"], "time_per_event", "peak_increase", "peak_rss")
    targets = report["targets"]
    assert set(targets) == {"speedup_over_baseline_at_1000", "peak_rss_gb_at_64x1000",
                            "growth_1000_to_4000", "gpu_training_events_per_second_at_1000"}
    assert all("target" in t and "values" in t and "met" in t for t in targets.values())
    assert "no CUDA" in targets["gpu_training_events_per_second_at_1000"]["note"]
    machine = report["machine"]
    assert machine["torch"] and machine["cpu_count"] >= 1 and machine["device_name"]
    assert "load_average_1min_at_start" in machine
    assert isinstance(machine["cpu_bf16"]["supported"], bool) and machine["cpu_bf16"]["reason"]


@pytest.mark.slow
def test_bench_infer_prints_throughput_flops_and_streaming_latency():
    report = _run_bench("infer", "--tiny", "--lengths", "64", "128", "--batch", "4", "--steps",
                        "2", "--configs", "ours_fp32", "--stream-observations", "30",
                        "--stream-events", "1", "3", "--device", "cpu")
    assert report["benchmark"] == "infer" and report["batch"] == 4
    assert report["model"]["n_parameters"] > 0
    for length in ("64", "128"):
        result = report["configurations"]["ours_fp32"]["results"][length]
        _positive(result, "seconds_per_batch", "events_per_second", "peak_rss_gb",
                  "achieved_tflops")
        assert result["peak_increase_gb"] >= 0 and len(result["batch_seconds"]) == 2
        _positive(report["flops_per_event"][length], "forward")
    assert report["configurations"]["ours_bf16"]["results"] is None
    _positive(report["ratios"]["growth"]["ours_fp32"], "time_per_event")
    assert set(report["targets"]) == {"gpu_inference_events_per_second_at_1000",
                                      "stream_ms_per_observation_one_event_cpu"}
    streaming = report["streaming"]
    assert streaming["n_observations"] == 30 and streaming["device"] == "cpu"
    for events in ("1", "3"):
        _positive(streaming["results"][events], "mean_ms", "p95_ms")
    target = report["targets"]["stream_ms_per_observation_one_event_cpu"]
    assert target["values"]["mean_ms"] == streaming["results"]["1"]["mean_ms"]


@pytest.mark.slow  # seconds long: times training steps in process
def test_bench_workers_measure_bf16_and_the_baseline_in_process():
    from microlens.workflow.bench import (
        _measure_infer,
        _measure_train,
        _model_config,
        cpu_bf16_support,
        synthetic_light_curves,
    )

    data = synthetic_light_curves(3, 50, seed=1)
    assert data["times"].shape == (3, 50) and bool((data["times"].diff(dim=1) > 0).all())
    assert 0.05 < float(data["times"].diff(dim=1).mean()) < 0.5
    assert 0.03 < float(data["flux_err"].median()) < 0.08 and bool(data["mask"].all())
    assert set(data["labels"].tolist()) <= {0, 1, 2}

    spec = {"task": "train", "model": "ours", "precision": "bf16", "batch": 4, "micro_batch": 2,
            "length": 40, "steps": 1, "seed": 0, "threads": None, "device": "cpu",
            "model_config": _model_config(tiny=True)}
    supported, reason = cpu_bf16_support()
    assert isinstance(supported, bool) and reason
    if supported:
        _positive(_measure_train(spec), "seconds_per_step", "events_per_second")
        _positive(_measure_infer({**spec, "task": "infer"}), "seconds_per_batch")
    result = _measure_train({**spec, "model": "baseline", "precision": "fp32", "micro_batch": 4})
    _positive(result, "seconds_per_step", "events_per_second", "peak_rss_gb", "n_parameters")


@pytest.mark.parametrize("args, message", [
    (["train", "--lengths", "1000", "0"], "--lengths must be positive, got 0"),
    (["train", "--lengths", "64", "64"], "--lengths repeats 64"),
    (["train", "--batch", "0"], "--batch must be positive, got 0"),
    (["train", "--steps", "-1"], "--steps must be positive, got -1"),
    (["train", "--micro-batch", "-1"], "--micro-batch must be >= 0 (0: automatic), got -1"),
    (["train", "--threads", "0"], "--threads must be positive, got 0"),
    (["train", "--configs", "ours_fp64"], "invalid choice: 'ours_fp64'"),
    (["train", "--device", "tpu"], "invalid choice: 'tpu'"),
    (["infer", "--gpu-batch", "0"], "--gpu-batch must be positive, got 0"),
    (["infer", "--stream-events", "1", "0"], "--stream-events must be positive, got 0"),
    (["infer", "--stream-observations", "0"], "--stream-observations must be positive, got 0"),
    (["infer", "--lengths", "abc"], "invalid int value: 'abc'"),
    (["infer", "--stream-lengths", "1000", "0"], "--stream-lengths must be positive, got 0"),
    (["infer", "--stream-block", "0"], "--stream-block must be positive, got 0"),
])
def test_bench_train_and_infer_name_bad_arguments(args, message, capsys):
    from microlens.workflow.bench import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_bench_refuses_cuda_without_a_gpu(capsys):
    import torch

    from microlens.workflow.bench import main

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit):
        main(["infer", "--device", "cuda"])
    assert "--device cuda: CUDA is not available" in capsys.readouterr().err


def test_bench_classify_compares_the_peer_and_the_transformer_per_event(capsys):
    from microlens.workflow.bench import main

    assert main(["classify", "--events", "6", "--epochs", "100", "--batch", "4", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["benchmark"] == "classify" and report["events"] == 6
    peer, transformer = report["classical_peer"], report["transformer"]
    assert 0 < peer["ms_per_event"] <= peer["max_ms"]
    assert transformer["batch"] == 4 and transformer["one_thread"]["threads"] == 1
    assert report["ratio_transformer_over_peer_one_thread"] == pytest.approx(
        transformer["one_thread"]["ms_per_event"] / peer["ms_per_event"], rel=1e-3)
    with pytest.raises(SystemExit):
        main(["classify", "--events", "2"])
    assert "--events >= 3" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_study_times_a_study_from_nothing_and_its_figures(tmp_path, capsys):
    from microlens.workflow.bench import main

    study = tmp_path / "one.yaml"
    study.write_text("notebooks: [01_simulate]\ncommon: {show_widgets: false}\nparameters:\n"
                     "  01_simulate: {n_per_class: 6, n_epochs: 100, gallery_per_class: 1, "
                     "figure_formats: [html]}\n")
    assert main(["study", str(study)]) == 0  # with the progress bar: stdout is the JSON alone
    report = json.loads(capsys.readouterr().out)
    assert report["benchmark"] == "study" and report["study"] == "one"
    cell = report["cells"]["base"]
    assert cell["status"] == "complete" and set(cell["notebooks"]) == {"01_simulate"}
    assert 0 < cell["notebooks"]["01_simulate"] <= cell["seconds"] <= report["seconds"]
    assert report["figures_seconds"] > 0 and report["figure_problems"] == []
    with pytest.raises(SystemExit):
        main(["study", "nosuch"])
    assert "unknown study 'nosuch'; valid: cadence" in capsys.readouterr().err


@pytest.mark.slow  # seconds long: times training steps
def test_the_training_figure_times_the_trainers_own_step(monkeypatch):
    import microlens.training.train
    from microlens.workflow.bench import _measure_train, _model_config

    calls = []
    real = microlens.training.train.train_step

    def counting(model, optimizer, micro_batches, load, **kwargs):
        calls.append((len(micro_batches), kwargs["n_events"]))
        return real(model, optimizer, micro_batches, load, **kwargs)

    monkeypatch.setattr(microlens.training.train, "train_step", counting)
    spec = {"task": "train", "model": "ours", "precision": "fp32", "batch": 5, "micro_batch": 2,
            "length": 24, "steps": 2, "seed": 0, "threads": 1, "device": "cpu",
            "model_config": _model_config(tiny=True)}
    _measure_train(spec)
    assert calls == [(1, 2), (3, 5), (3, 5)]  # the warm-up micro-batch, then two whole steps


@pytest.mark.slow  # seconds long: two training steps of a model
def test_a_step_in_micro_batches_equals_one_pass_over_the_batch():
    import torch

    from microlens.models.config import ModelConfig
    from microlens.models.inputs import Normalization
    from microlens.models.transformer import MicrolensTransformer
    from microlens.training.train import train_step
    from microlens.workflow.bench import synthetic_light_curves

    data = synthetic_light_curves(6, 40, seed=3)
    normalization = Normalization.fit(data["times"], data["flux"], data["flux_err"], data["mask"])
    weights = torch.tensor([0.5, 1.0, 1.5])
    results, states = [], []
    for parts in ([slice(0, 6)], [slice(0, 4), slice(4, 6)], [slice(i, i + 1) for i in range(6)]):
        torch.manual_seed(0)
        model = MicrolensTransformer(ModelConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32,
                                                 window=8, dropout=0.0), normalization)
        initial = [p.detach().clone() for p in model.parameters()]  # the same every time
        # plain SGD: the weights move linearly in the gradient (Adam's first step is about
        # lr * sign(g), which float noise can flip where g is about 0)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        results.append(train_step(model, optimizer, parts,
                                  lambda part: {k: v[part] for k, v in data.items()},
                                  n_events=6, class_weights=weights, final_weight=0.5,
                                  grad_clip=1.0))
        states.append([p.detach().clone() for p in model.parameters()])
        assert all(p.grad is None for p in model.parameters())  # zeroed after the step
    for result, state in zip(results[1:], states[1:], strict=True):
        assert result.applied
        # float32 sums in another order: equal to ~1e-7 relative, far below a step's size
        torch.testing.assert_close(result.loss, results[0].loss, rtol=1e-6, atol=0)
        torch.testing.assert_close(result.grad_norm, results[0].grad_norm, rtol=1e-5, atol=0)
        assert result.totals[1:].tolist() == results[0].totals[1:].tolist()  # correct, events
        for p, q in zip(state, states[0], strict=True):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)
    moved = max(float((p - q).abs().max()) for p, q in zip(states[0], initial, strict=True))
    assert moved > 1e-4  # the step did change the weights


def test_stream_encoders_compare_one_event_latency_with_the_encoder_before_the_stem():
    from microlens.workflow.bench.infer import STREAM_ENCODERS, _measure_stream, bench_infer
    from microlens.workflow.bench.models import _model_config

    spec = {"task": "stream", "seed": 0, "threads": 1, "model_config": _model_config(tiny=True),
            "n_observations": 5, "events": [1], "encoders": ["rotary+stem", "stem"],
            "rounds": 2}
    report = _measure_stream(spec)
    compared = report["encoders"]
    assert list(compared) == ["before", "rotary+stem", "stem"]
    for name, figures in compared.items():
        assert figures["options"] == STREAM_ENCODERS[name]
        assert len(figures["mean_ms_per_round"]) == 2 and figures["median_ms"] > 0
        assert figures["ratio_to_before"] > 0
    assert compared["before"]["ratio_to_before"] == 1
    assert compared["stem"]["n_parameters"] > compared["before"]["n_parameters"]
    with pytest.raises(ValueError, match=r"unknown stream encoder\(s\) \['alibi'\]; valid: "
                                         "before, rotary, stem, rotary\\+stem"):
        bench_infer(stream_encoders=["alibi"])
    with pytest.raises(ValueError, match="stream_rounds must be a positive integer, got 0"):
        bench_infer(stream_encoders=["rotary"], stream_rounds=0)


# --------------------------------------------------------------------------------------------
# survey presets in bench simulate; long curves in bench infer (behaviour, never speed)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("survey", ["bad", "OGLE"])
def test_bench_simulate_refuses_a_bad_survey_with_the_valid_choices(survey, capsys):
    from microlens.workflow.bench import main

    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--survey", survey, "--events", "3"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert (f"unknown survey preset {survey!r}; valid choices: thesis, ogle, kmtnet, moa, roman "
            "(or 'all': each in turn)") in err


def test_bench_simulate_all_checks_every_config_before_running(monkeypatch, capsys):
    import microlens.workflow.bench.simulate as sim
    from microlens.workflow.bench import main

    monkeypatch.setattr(sim, "_bench_one", lambda *a: pytest.fail("ran before checking"))
    with pytest.raises(SystemExit):
        main(["simulate", "--survey", "all", "--topology", "wide"])
    assert "unknown topology preset 'wide'" in capsys.readouterr().err


@pytest.mark.slow  # seconds long: the whole suite runs it, the fast tier (under 45 s) not
def test_bench_simulate_reports_a_survey_with_observation_counts(capsys):
    from microlens.workflow.bench import main

    assert main(["simulate", "--survey", "moa", "--events", "3", "--workers", "1",
                 "--epochs", "50"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["survey"] == "moa" and report["n_epochs"] is None  # moa ignores --epochs
    assert "--epochs is ignored" in report["n_epochs_note"]
    for key in ("mixed", "mixed_with_detectability"):
        figures = report[key]
        _positive(figures, "events_per_second", "observations_per_second")
        counts = figures["observations"]
        assert set(counts) == {"all", "no_event", "pspl", "binary"}
        assert counts["all"]["events"] == figures["events"] == 3
        assert 100 <= counts["all"]["min"] <= counts["all"]["median"] <= counts["all"]["max"]
        assert counts["all"]["min"] <= counts["all"]["mean"] <= counts["all"]["max"] <= 14_000
        assert counts["all"]["median"] <= counts["all"]["p95"] <= counts["all"]["max"]
    assert set(report["per_class"]) == {"no_event", "pspl", "binary"}
    for figures in report["per_class"].values():
        _positive(figures, "ms_per_event", "events_per_second", "observations_per_second",
                  "mean_observations")
    assert report["binary_single_core_ms_per_event"] == report["per_class"]["binary"][
        "ms_per_event"]
    assert report["binary_only"]["events"] == 1 and report["machine"]["cores_available"] >= 1


def test_bench_simulate_all_runs_each_survey_with_ratios_to_thesis(monkeypatch, capsys):
    import microlens.workflow.bench.simulate as sim
    from microlens.workflow.bench import main

    seen = []

    def fake(cfg, workers):  # one figure per survey, in a known proportion
        seen.append((cfg.survey, cfg.n_events, workers))
        scale = {"thesis": 1.0, "roman": 0.25}.get(cfg.survey, 0.5)
        run = {"events_per_second": 100 * scale, "observations_per_second": 9e4,
               "observations": {"all": {"mean": 900 / scale}}}
        return {"survey": cfg.survey, "mixed": run, "mixed_with_detectability": run,
                "binary_only": {"events_per_second": 0.0}}

    monkeypatch.setattr(sim, "_bench_one", fake)
    assert main(["simulate", "--survey", "all", "--events", "30", "--workers", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [s for s, _, _ in seen] == ["thesis", "ogle", "kmtnet", "moa", "roman"]
    assert all(n == 30 and w == 1 for _, n, w in seen)
    assert report["survey"] == "all" and list(report["surveys"]) == [s for s, _, _ in seen]
    ratios = report["ratios_to_thesis"]
    assert ratios["thesis"]["mixed_events_per_second"] == 1
    assert ratios["roman"]["mixed_events_per_second"] == 0.25
    assert ratios["roman"]["mixed_mean_observations"] == 4
    assert ratios["ogle"]["detectability_observations_per_second"] == 1
    assert ratios["ogle"]["binary_only_events_per_second"] is None  # 0 / 0: no ratio


def test_observation_stats_count_each_class():
    from microlens.workflow.bench.simulate import observation_stats

    stats = observation_stats([100, 200, 300, 400, 14_000, 600], [0, 1, 2, 0, 1, 2])
    assert stats["all"] == {"events": 6, "mean": 2600.0, "median": 350.0, "p95": 10650.0,
                            "min": 100, "max": 14_000}
    assert stats["pspl"]["mean"] == 7100.0 and stats["no_event"]["max"] == 400


def test_long_curve_figures_are_per_event_and_per_observation():
    from microlens.workflow.bench.infer import _long_curves, _per_observation

    short = {"seconds_per_batch": 2.0, "peak_increase_gb": 0.5}
    long = {"seconds_per_batch": 40.0, "peak_increase_gb": 1.0}
    _per_observation(short, 1000, 64, "cpu")  # 16 events per pass of 16,384 observations
    _per_observation(long, 20_000, 64, "cpu")  # one event per pass
    assert short["events_per_pass"] == 16 and long["events_per_pass"] == 1
    assert short["us_per_observation"] == pytest.approx(1e6 * 2 / 64_000, rel=1e-3)
    assert long["peak_increase_mb_per_event"] == 1024
    out = {"ours_fp32": {"results": {"1000": short, "20000": long}}}
    streaming = {"at_lengths": {"results": {"1000": {"mean_ms": 2.0, "p50_ms": 1.0},
                                            "20000": {"mean_ms": 2.2, "p50_ms": 1.0}}}}
    ratios = _long_curves(out, [1000, 20_000], streaming)
    assert ratios["batch"]["from_length"] == 1000 and ratios["batch"]["to_length"] == 20_000
    assert ratios["batch"]["ours_fp32"]["us_per_observation"] == 1
    assert ratios["batch"]["ours_fp32"]["peak_increase_kb_per_observation"] == pytest.approx(
        1024 / 20_000 / (512 / 16 / 1000), rel=1e-3)
    assert ratios["stream_one_event"] == {"from_length": 1000, "to_length": 20_000,
                                          "ms_per_observation": 1.1,
                                          "p50_ms_per_observation": 1,
                                          "ratio_to_fresh_at_longest": None}
    assert _long_curves(out, [1000], None) is None


@pytest.mark.slow  # seconds long: the whole suite runs it, the fast tier (under 45 s) not
def test_bench_infer_accepts_long_curves_and_streams_to_each_length():
    report = _run_bench("infer", "--tiny", "--lengths", "16", "20000", "--batch", "1",
                        "--steps", "1", "--configs", "ours_fp32", "--stream-observations", "3",
                        "--stream-events", "1", "--stream-lengths", "10", "300",
                        "--stream-block", "5", "--device", "cpu")
    results = report["configurations"]["ours_fp32"]["results"]
    for length in ("16", "20000"):
        _positive(results[length], "seconds_per_batch", "ms_per_event", "us_per_observation")
        assert results[length]["events_per_pass"] == 1
        assert results[length]["peak_increase_kb_per_observation"] >= 0
    at = report["streaming"]["at_lengths"]
    assert at["block"] == 5 and at["window"] == 16 and at["state_kb_per_event"] > 0
    assert at["results"]["10"]["timed_updates"] == 5 == at["results"]["300"]["timed_updates"]
    _positive(at["results"]["300"], "mean_ms", "p50_ms", "p95_ms", "fresh_mean_ms",
              "ratio_to_fresh")
    long_curves = report["ratios"]["long_curves"]
    assert long_curves["batch"]["to_length"] == 20_000
    assert long_curves["batch"]["ours_fp32"]["us_per_observation"] > 0
    assert long_curves["stream_one_event"]["to_length"] == 300
    assert long_curves["stream_one_event"]["ms_per_observation"] > 0


# --------------------------------------------------------------------------------------------
# --kinds: every neural kind at the transformer's shapes (in process: figures' shape, not speed)
# --------------------------------------------------------------------------------------------


@pytest.fixture
def in_process_workers(monkeypatch):
    """Run the benchmark workers in this process (no fresh interpreter per figure): the
    figures' shape is what these tests check, and each fresh process costs seconds."""
    import torch

    import microlens.workflow.bench.infer as infer
    import microlens.workflow.bench.train as train

    specs, threads = [], torch.get_num_threads()

    def spawn(spec, label, progress):
        specs.append(spec)
        task = {"train": train._measure_train, "infer": infer._measure_infer,
                "stream": infer._measure_stream}[spec["task"]]
        return json.loads(json.dumps(task(spec)))

    monkeypatch.setattr(infer, "_spawn", spawn)
    monkeypatch.setattr(train, "_spawn", spawn)
    yield specs
    torch.set_num_threads(threads)  # the workers set --threads for the whole process


def _check_kinds_report(report: dict, configuration: str, length: str, time_key: str) -> None:
    kinds = report["kinds"]
    assert list(kinds) == ["transformer", "cnn", "gru"]
    assert kinds["transformer"]["configurations"] == report["configurations"]
    assert kinds["transformer"]["model_config"] == {k: v for k, v in report["model"].items()
                                                    if k != "n_parameters"}
    for kind, entry in kinds.items():
        assert entry["model_config"]["kind"] == kind
        assert entry["model_config"]["d_model"] == report["model"]["d_model"]
        _positive(entry, "n_parameters")
        _positive(entry["flops_per_event"][length], "forward")
        result = entry["configurations"][configuration]["results"][length]
        _positive(result, time_key, "events_per_second", "peak_rss_gb", "achieved_tflops")
        assert result["n_parameters"] == entry["n_parameters"]
    assert kinds["gru"]["receptive_field"] is None
    assert kinds["gru"]["model_config"]["n_layers"] == report["model"]["n_layers"]
    for kind in ("cnn", "gru"):
        vs = kinds[kind]["vs_transformer"]
        _positive(vs, "n_parameters")
        _positive(vs["configurations"][configuration][length], time_key, "peak_rss_gb")
        assert vs["configurations"][configuration][length][time_key] == pytest.approx(
            kinds[kind]["configurations"][configuration]["results"][length][time_key]
            / report["configurations"][configuration]["results"][length][time_key], rel=1e-3)
    assert "vs_transformer" not in kinds["transformer"]


@pytest.mark.slow  # seconds long: the whole suite runs it, the fast tier (under 45 s) not
def test_bench_infer_kinds_measures_each_kind_at_the_transformers_shapes(in_process_workers,
                                                                         capsys):
    from microlens.workflow.bench import main

    assert main(["infer", "--tiny", "--lengths", "24", "--batch", "2", "--steps", "1",
                 "--configs", "ours_fp32", "--stream-observations", "4", "--stream-events",
                 "1", "2", "--stream-rounds", "2", "--threads", "1", "--device", "cpu",
                 "--quiet", "--kinds", "transformer", "cnn", "gru"]) == 0
    report = json.loads(capsys.readouterr().out)
    _check_kinds_report(report, "ours_fp32", "24", "seconds_per_batch")
    kinds = report["kinds"]
    # the cnn's blocks reach about as far back as the transformer's stem and attention
    transformer_field = kinds["transformer"]["receptive_field"]
    assert transformer_field == 253 + 2 * 15  # tiny: stem 253, 2 layers of window 16
    assert kinds["cnn"]["receptive_field"] == 253 and kinds["cnn"]["model_config"][
        "n_layers"] == 6
    batch = [s for s in in_process_workers if s["task"] == "infer"]
    assert [s["model_config"]["kind"] for s in batch] == ["transformer", "cnn", "gru"]
    assert all(s["batch"] == 2 and s["length"] == 24 and s["precision"] == "fp32"
               for s in batch)
    for kind, entry in kinds.items():
        stream = entry["streaming"]
        assert stream["rounds"] == 2 and stream["n_observations"] == 4
        for events in ("1", "2"):
            figures = stream["results"][events]
            assert len(figures["mean_ms_per_round"]) == 2
            _positive(figures, "median_ms", "p95_ms", "vs_transformer")
        if kind != "transformer":
            assert entry["vs_transformer"]["streaming_ms_per_observation"] == {
                n: stream["results"][n]["vs_transformer"] for n in ("1", "2")}
    assert kinds["transformer"]["streaming"]["results"]["1"]["vs_transformer"] == 1
    assert "kinds" not in report["streaming"]  # moved under kinds.<kind>.streaming
    _positive(report["streaming"]["results"]["1"], "mean_ms")


@pytest.mark.slow  # seconds long: the whole suite runs it, the fast tier (under 45 s) not
def test_bench_train_kinds_measures_each_kind_at_the_transformers_shapes(in_process_workers,
                                                                         capsys):
    from microlens.workflow.bench import main

    assert main(["train", "--tiny", "--lengths", "24", "--batch", "2", "--micro-batch", "1",
                 "--steps", "1", "--configs", "ours_fp32", "baseline", "--threads", "1",
                 "--device", "cpu", "--quiet", "--kinds", "gru", "cnn", "gru"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["kinds"]) == ["transformer", "gru", "cnn"]  # transformer first, once each
    report["kinds"] = {k: report["kinds"][k] for k in ("transformer", "cnn", "gru")}
    _check_kinds_report(report, "ours_fp32", "24", "seconds_per_step")
    for kind in ("cnn", "gru"):
        entry = report["kinds"][kind]
        assert "baseline" not in entry["configurations"]  # the transformer's comparison only
        assert entry["configurations"]["ours_fp32"]["results"]["24"]["micro_batch"] == 1
        _positive(entry["flops_per_event"]["24"], "forward_backward")
    assert [(s["model"], s["model_config"]["kind"]) for s in in_process_workers] == [
        ("ours", "transformer"), ("ours", "gru"), ("ours", "cnn"), ("baseline", "transformer")]


@pytest.mark.slow  # seconds long: a benchmark in worker processes
def test_bench_without_kinds_reports_the_transformer_alone(in_process_workers, capsys):
    from microlens.workflow.bench import main

    assert main(["infer", "--tiny", "--lengths", "16", "--batch", "1", "--steps", "1",
                 "--configs", "ours_fp32", "--no-stream", "--threads", "1", "--device", "cpu",
                 "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "kinds" not in report
    assert [s["model_config"]["kind"] for s in in_process_workers] == ["transformer"]


@pytest.mark.parametrize("what", ["infer", "train"])
@pytest.mark.parametrize("kinds, message", [
    (["cnn", "lstm"], "unknown model kind 'lstm' in --kinds; valid: transformer, cnn, gru"),
    (["features"], "kind 'features' is not a neural network, so bench infer/train cannot time "
                   "it: its per-event prediction time"),
])
def test_bench_kinds_refuses_unknown_and_non_neural_kinds(what, kinds, message, capsys):
    from microlens.workflow.bench import bench_infer, bench_train, main

    with pytest.raises(SystemExit) as exit_info:
        main([what, "--kinds", *kinds])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    if "features" in kinds:
        assert "models study" in err and "time_feature_model" in err
    bench = {"infer": bench_infer, "train": bench_train}[what]
    with pytest.raises(ValueError, match=message.split(";")[0].replace("(", r"\(")):
        bench(kinds=kinds)


def test_each_kinds_benchmark_config_keeps_the_benchmarks_dimensions():
    from microlens.models.config import ModelConfig
    from microlens.models.registry import count_parameters
    from microlens.workflow.bench.models import _model_config, kind_model_config, receptive_field

    default = _model_config(tiny=False)
    assert receptive_field(default) == 253 + 4 * 63  # stem + 4 layers of window 64
    cnn = kind_model_config("cnn", default)
    gru = kind_model_config("gru", default)
    assert kind_model_config("transformer", default) == default
    assert (cnn["n_layers"], receptive_field(cnn)) == (7, 509)  # closest to 505
    assert gru["n_layers"] == default["n_layers"] == 4 and receptive_field(gru) is None
    for config in (cnn, gru):
        assert config["d_model"] == default["d_model"] and config["d_ff"] == default["d_ff"]
        assert config["dropout"] == default["dropout"]
        assert count_parameters(ModelConfig(**config)) > 0
