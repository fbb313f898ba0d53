"""``python -m microlens.workflow.studies``: run a study, rebuild its figures, or list the studies.

Examples::

    python -m microlens.workflow.studies list
    python -m microlens.workflow.studies list thesis          # its cell names, one a line
    python -m microlens.workflow.studies run topology --jobs 2
    python -m microlens.workflow.studies run cadence --only 'cadence=cadence_50' --dry-run
    python -m microlens.workflow.studies run quick --set 01_simulate.n_per_class=50
    python -m microlens.workflow.studies figures topology

Exit status: 0 when every selected cell is complete, 1 when a cell failed, 2 for an invalid
study, option or parameter (reported before anything runs), 130 when interrupted by SIGINT
(Ctrl-C) and 143 by SIGTERM (one line says which cells finished; the same command resumes).
``list`` reports a study file it cannot read and lists the others (exit 2 only when that study
was asked for by name).
"""

from __future__ import annotations

import argparse
import shlex
import sys

from microlens.core.cli import RawTerminalHelpFormatter, add_traceback_option, command_line
from microlens.core.devices import DEVICES
from microlens.workflow.studies.definition import (
    FIGURE_FORMATS,
    StudyError,
    available_studies,
    load_study,
    parse_assignment,
    study_path,
)
from microlens.workflow.studies.report import (
    build_study_report,
    rebuild_study_figures,
    studies_with_outputs,
)
from microlens.workflow.studies.runner import (
    EXIT_CODES,
    StudyInterrupted,
    Terminated,
    describe_plan,
    plan_study,
    run_study,
    select_cells,
    terminate_as_interrupt,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m microlens.workflow.studies", description=__doc__.split("\n\n")[0],
        formatter_class=RawTerminalHelpFormatter)
    add_traceback_option(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", formatter_class=RawTerminalHelpFormatter,
                         help="run a study's cells (skipping finished ones)")
    run.add_argument("study", help=f"a study ({', '.join(available_studies())}) or a .yaml path")
    run.add_argument("--jobs", type=int, default=1, help="cells in parallel (default 1)")
    run.add_argument("--only", action="append", default=[], metavar="CELL",
                     help="run only this cell (name or shell pattern; repeatable)")
    run.add_argument("--dry-run", action="store_true", help="show what would run, run nothing")
    run.add_argument("--force", action="store_true",
                     help="rerun selected cells even when complete (remakes datasets and runs)")
    run.add_argument("--processes", type=int, default=None,
                     help="processes per training (02_train's processes; >1 uses torchrun)")
    run.add_argument("--device", default=None, choices=DEVICES,
                     help="device of every notebook that takes one")
    run.add_argument("--set", action="append", default=[], metavar="NOTEBOOK.NAME=VALUE",
                     help="override a parameter in every cell (value read as YAML; repeatable)")
    run.add_argument("--outputs", default=None, help="results root (default outputs/)")
    run.add_argument("--data", default=None, help="datasets root (default data/)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    figures = sub.add_parser("figures", formatter_class=RawTerminalHelpFormatter,
                             help="rebuild every figure of studies from their outputs")
    figures.add_argument("studies", nargs="*", help="studies to rebuild (default: all run ones)")
    figures.add_argument("--formats", default=None,
                         help="comma-separated formats (default: those each notebook recorded)")
    figures.add_argument("--outputs", default=None, help="results root (default outputs/)")
    figures.add_argument("--quiet", action="store_true", help="no progress bar")
    listing = sub.add_parser("list", formatter_class=RawTerminalHelpFormatter,
                             help="list the studies, or one study's cells")
    listing.add_argument("study", nargs="?", help="print this study's cell names, one a line")
    return parser


def _overrides(args) -> dict:
    overrides = dict(parse_assignment(text) for text in args.set)
    if args.processes is not None:
        if args.processes < 1:
            raise StudyError(f"--processes must be at least 1, got {args.processes}")
        overrides["processes"] = args.processes
    if args.device is not None:
        overrides["device"] = args.device
    return overrides


def _run(args) -> int:
    if args.jobs < 1:
        raise StudyError(f"--jobs must be at least 1 (cells run in parallel), got {args.jobs}")
    study = load_study(args.study, _overrides(args))
    if args.dry_run:
        plans = plan_study(study, outputs=args.outputs, data=args.data)
        print(describe_plan(study, plans, select_cells(plans, args.only), force=args.force))
        return 0
    run = run_study(study, jobs=args.jobs, only=args.only, force=args.force,
                    outputs=args.outputs, data=args.data, progress=not args.quiet)
    try:
        written = build_study_report(study.name, args.outputs)
        print(f"summary: {written[0]}\nfigures: {written[-1]}")
        for path in written:
            if path.name.endswith(".md"):  # a study that compares model kinds
                print(f"model comparison: {path}")
    finally:
        _report_failures(run)
    return 1 if run.failed else 0


def _report_failures(run) -> None:
    if run.failed:
        print(f"{len(run.failed)} cell(s) failed:", file=sys.stderr)
        for result in run.failed:
            if result.get("executed"):
                print(f"  {result['cell']}: {result['notebook']}: {result['error']}\n"
                      f"    executed notebook (with the traceback): {result['executed']}",
                      file=sys.stderr)
            else:
                print(f"  {result['cell']}: {result['error']} ({result['directory']})",
                      file=sys.stderr)


def _figures(args) -> int:
    names = args.studies or studies_with_outputs(args.outputs)
    if not names:
        raise StudyError("no study has outputs yet; run one first (./run_all.sh)")
    formats = None
    if args.formats:
        formats = [f.strip().lower() for f in args.formats.split(",") if f.strip()]
        unknown = sorted(set(formats) - set(FIGURE_FORMATS))
        if unknown:
            raise StudyError(f"--formats {', '.join(unknown)} unknown; valid: "
                             f"{', '.join(FIGURE_FORMATS)}")
    failed = False
    for name in names:
        written, problems = rebuild_study_figures(name, args.outputs, formats,
                                                  progress=not args.quiet)
        print(f"study {name}: {len(written)} files; index: {written[-1]}")
        for problem in problems:
            print(f"  could not rebuild {problem}", file=sys.stderr)
        failed = failed or bool(problems)
    return 1 if failed else 0


def _list(study: str | None) -> int:
    if study:
        print("\n".join(cell.name for cell in load_study(study).cells))
        return 0
    for name in available_studies():
        try:
            study = load_study(name)
        except StudyError as exc:  # one broken file does not hide the others
            print(f"{name:10s} INVALID: {exc}", file=sys.stderr)
            continue
        print(f"{name:10s} {len(study.cells):3d} cells  {study.description}  ({study_path(name)})")
    return 0


@command_line
def main(argv=None) -> int:
    """``python -m microlens.workflow.studies``; input errors outside a cell are one line on stderr,
    exit status 2 (:mod:`microlens.core.cli`; ``--traceback`` shows the traceback)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    command = shlex.join(["python", "-m", "microlens.workflow.studies", *argv])
    try:
        with terminate_as_interrupt():
            if args.command == "run":
                return _run(args)
            if args.command == "figures":
                return _figures(args)
            return _list(args.study)
    except StudyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StudyInterrupted as exc:
        print(exc.message(command), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # before or after the cells (SIGTERM: Terminated)
        name = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        print(f"interrupted by {name} ({args.command}); no cell was running. Run the same "
              f"command again ({command}).", file=sys.stderr)
        return EXIT_CODES[name]


if __name__ == "__main__":
    sys.exit(main())
