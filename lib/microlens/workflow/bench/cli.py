"""The command line: ``python -m microlens.workflow.bench
{simulate,train,infer,classify,study}``."""

from __future__ import annotations

import argparse
import json
import sys

from microlens.core.cli import RawTerminalHelpFormatter, add_traceback_option, command_line
from microlens.training.loop import CPU_MICRO_BATCH_OBSERVATIONS
from microlens.workflow.bench import __doc__ as OVERVIEW
from microlens.workflow.bench import classify, infer, simulate, study, train
from microlens.workflow.bench.classify import bench_classify
from microlens.workflow.bench.infer import INFER_CONFIGS, STREAM_ENCODERS, bench_infer
from microlens.workflow.bench.models import _add_model_bench_options, _check_model_bench_args
from microlens.workflow.bench.simulate import ALL_SURVEYS, bench_simulate, survey_names
from microlens.workflow.bench.study import bench_study
from microlens.workflow.bench.train import TRAIN_CONFIGS, bench_train

RAW = RawTerminalHelpFormatter  # docstrings as descriptions, without their Sphinx markup


@command_line
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints one JSON object (an input error: one line on stderr,
    exit status 2, :mod:`microlens.core.cli`)."""
    parser = argparse.ArgumentParser(prog="python -m microlens.workflow.bench",
                                     description=OVERVIEW,
                                     formatter_class=RAW)
    add_traceback_option(parser)
    sub = parser.add_subparsers(dest="what", required=True,
                                metavar="{simulate,train,infer,classify,study}")
    sim = sub.add_parser("simulate", help="dataset generation throughput",
                         description=simulate.__doc__, formatter_class=RAW)
    sim.add_argument("--events", type=int, default=6000, help="events in the mixed set")
    sim.add_argument("--workers", type=int, default=None, help="worker processes (default: all)")
    sim.add_argument("--epochs", type=int, default=1000,
                     help="nominal epochs per light curve (thesis survey only)")
    sim.add_argument("--survey", default="thesis", metavar="NAME",
                     help=f"survey preset: {', '.join(survey_names())}, or {ALL_SURVEYS} (each "
                          "in turn, with ratios to thesis) (default: thesis)")
    sim.add_argument("--topology", default="baseline", help="binary topology preset")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--baselines", default=None, metavar="FOLDER",
                     help="also time injection into the real baselines of this EWS-layout "
                          "folder beside each survey (e.g. ../shared/real/ogle_ews_2025)")

    tr = sub.add_parser("train", help="training-step throughput and memory (vs full attention)",
                        description=train.__doc__, formatter_class=RAW)
    _add_model_bench_options(tr, "the full-batch and baseline runs stop at 1000 by default")
    tr.add_argument("--batch", type=int, default=64, help="global batch on CPU (default: 64)")
    tr.add_argument("--micro-batch", type=int, default=0,
                    help="events per forward pass on CPU (default 0: as microlens.training.train, "
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

    inf = sub.add_parser("infer", help="batch inference throughput, memory, streaming latency",
                         description=infer.__doc__, formatter_class=RAW)
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
    inf.add_argument("--stream-lengths", type=int, nargs="+", default=[], metavar="N",
                     help="also stream one event for max(N) observations and time the updates "
                          "ending at each N (e.g. 1000 5000 20000: cost per observation vs "
                          "history; default: none)")
    inf.add_argument("--stream-block", type=int, default=200,
                     help="timed updates ending at each --stream-lengths N (default: 200)")
    inf.add_argument("--stream-encoders", nargs="+", choices=list(STREAM_ENCODERS), default=[],
                     metavar="NAME", help="also compare one-event streaming latency of these "
                                          "encoder options with the encoder from before the stem "
                                          f"({', '.join(STREAM_ENCODERS)})")
    inf.add_argument("--stream-rounds", type=int, default=3,
                     help="alternating rounds of the --stream-encoders and --kinds streaming "
                          "comparisons (default: 3)")
    cls = sub.add_parser("classify", help="per-event cost: classical peer vs transformer",
                         description=classify.__doc__, formatter_class=RAW)
    cls.add_argument("--events", type=int, default=90, help="simulated events (default: 90)")
    cls.add_argument("--epochs", type=int, default=1000, help="nominal epochs per light curve")
    cls.add_argument("--topology", default="baseline", help="binary topology preset")
    cls.add_argument("--batch", type=int, default=64, help="events per transformer pass")
    cls.add_argument("--seed", type=int, default=0)
    cls.add_argument("--quiet", action="store_true", help="no progress bars")
    stu = sub.add_parser("study", help="a whole study from nothing, then its figures rebuilt",
                         description=study.__doc__, formatter_class=RAW)
    stu.add_argument("study", nargs="?", default="quick", help="study name or .yaml (quick)")
    stu.add_argument("--set", action="append", default=[], metavar="NOTEBOOK.NAME=VALUE",
                     help="override a parameter in every cell (as the study runner's --set)")
    stu.add_argument("--only", action="append", default=[], metavar="CELL",
                     help="only these cells")
    stu.add_argument("--jobs", type=int, default=1, help="cells in parallel")
    stu.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    if args.what == "study":
        from microlens.workflow.studies import StudyError
        from microlens.workflow.studies.definition import parse_assignment

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
                                    args.seed, survey=args.survey, baselines=args.baselines)
        except (ValueError, FileNotFoundError) as exc:  # bad preset names, folders and the like
            parser.error(str(exc))
    elif args.what == "train":
        _check_model_bench_args(tr, args)
        configs = [c for c in args.configs if not (args.no_baseline and c == "baseline")]
        report = bench_train(args.lengths, args.batch, args.steps, args.micro_batch,
                             args.gpu_batch, args.device, args.threads, configs,
                             args.baseline_4000, args.full_batch_4000, args.tiny, args.seed,
                             progress=not args.quiet, kinds=args.kinds)
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
                             progress=not args.quiet, stream_encoders=args.stream_encoders,
                             stream_rounds=args.stream_rounds,
                             stream_lengths=args.stream_lengths, stream_block=args.stream_block,
                             kinds=args.kinds)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0

