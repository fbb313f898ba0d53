"""``python -m microlens.realdata.benchmark FOLDER --run RUN [...]``: the benchmark from the shell.

Prints the JSON summary (the record without its per-event rows) and, with ``--out``, writes
the full record (rows included, what :func:`microlens.realdata.benchmark.combine_reports` merges)
atomically. An input error is one line, ``error: ...``, exit status 2 (:mod:`microlens.core.cli`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from microlens.core.cli import TerminalHelpFormatter, add_traceback_option, command_line
from microlens.evaluation.gate import GATES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m microlens.realdata.benchmark", formatter_class=TerminalHelpFormatter,
        description="Classify the events and baselines of an OGLE EWS folder with a trained "
                    "run and the classical peer; print the JSON summary.")
    add_traceback_option(parser)
    parser.add_argument("folder", nargs="?", default=None,
                        help="a folder in the EWS layout (photometry/, params/); default: the "
                             "shipped subset")
    parser.add_argument("--run", default=None,
                        help="a trained run directory (any model kind); without it the peer "
                             "is scored alone")
    parser.add_argument("--peer", default="tune",
                        help="'tune' (on the run's data set, the default), 'none', or a JSON "
                             "file written by ClassicalPeer.save")
    parser.add_argument("--stars", default=None,
                        help="a file of star identities (one per line, or a JSON list): score "
                             "only these stars")
    parser.add_argument("--events", type=int, default=None,
                        help="score only the first N events of the folder by name")
    parser.add_argument("--threshold", type=float, default=None,
                        help="a threshold on the final P(lensing) chosen elsewhere: report "
                             "the events found and baselines called lensing at it")
    parser.add_argument("--window-days", type=float, default=None,
                        help="classify only the last N days of each segment (e.g. the span the "
                             "model was trained on); default: the whole segment")
    parser.add_argument("--gate", default="none", choices=GATES,
                        help="condition the model's final answers on the peer's robust fit "
                             "(microlens.evaluation.gate): 'binary' (a binary needs an anomaly "
                             "above the "
                             "peer's threshold), 'binary+event' (and lensing a point lens "
                             "beating a constant by the peer's event threshold); needs a peer")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes for the peer's fits and the features kind")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--out", default=None, help="write the full record (JSON) here")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    return parser


@command_line
def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from command-line arguments; 0 on success."""
    from microlens.core.paths import write_json_atomic
    from microlens.realdata.benchmark.run import run_benchmark, summary_view

    args = _parser().parse_args(argv)
    peer = None if args.peer == "none" else args.peer
    record = run_benchmark(args.folder, args.run, peer=peer, events=args.events,
                           stars=args.stars, threshold=args.threshold,
                           window_days=args.window_days, gate=args.gate,
                           workers=args.workers, device=args.device, progress=args.progress)
    if args.out:
        write_json_atomic(args.out, record)
    json.dump(summary_view(record), sys.stdout, indent=1)
    print()
    return 0


__all__ = ["main"]
