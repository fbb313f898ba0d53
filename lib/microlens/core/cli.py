"""What every command line of the project does with bad input: one line, exit status 2.

``python -m microlens.training.train``, ``microlens.training.pretrain``,
``microlens.workflow.bench``,
``microlens.workflow.studies``, ``microlens.workflow.figures`` and
``microlens.evaluation.analysis.baseline`` wrap their
``main()`` in :func:`command_line`. An input error (:data:`INPUT_ERRORS`: a bad value or type,
a missing or existing file, an unusable data set, run or light curve) is printed as one line,
``error: <message>``, on standard error, and the command exits with status 2, argparse's own
convention for bad usage. Anything else (``AttributeError``, ``KeyError``, ``RuntimeError``, ...)
is a fault of the program, not of the input, and keeps its traceback.

To see the full traceback of an input error too, add ``--traceback`` anywhere on the command
line or set the environment variable ``MICROLENS_TRACEBACK=1``.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import sys
from collections.abc import Callable, Sequence

TRACEBACK_OPTION = "--traceback"
"""The option that shows the full traceback of an input error."""

TRACEBACK_VARIABLE = "MICROLENS_TRACEBACK"
"""The environment variable that does the same (any value but ``""``, ``0``, ``false``, ``no``)."""

EXIT_INPUT_ERROR = 2
"""Exit status of a command refused for its input (argparse's status for bad usage)."""

INPUT_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # bad values: InvalidLightCurveError, DatasetError, SplitError, RunFileError, ...
    TypeError,  # a value of the wrong type (configs read from JSON)
    FileNotFoundError,  # a data set, run or config file that is not there
    FileExistsError,  # RunExistsError: a run there already, without --resume or --overwrite
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)
"""Exceptions that mean bad input, reported in one line. Deliberately not ``Exception``: an
``AttributeError`` or ``KeyError`` from inside the code is a bug and keeps its traceback."""


def wants_traceback(argv: Sequence[str] = ()) -> bool:
    """Whether ``--traceback`` is in ``argv`` or :data:`TRACEBACK_VARIABLE` is set."""
    value = os.environ.get(TRACEBACK_VARIABLE, "").strip().lower()
    return TRACEBACK_OPTION in argv or value not in ("", "0", "false", "no")


def one_line(error: BaseException) -> str:
    """The message of ``error`` on one line (the lines of a multi-line message joined by
    ``"; "``, after a heading that ends with a colon by a space)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    text = lines[0]
    for line in lines[1:]:
        text += (" " if text.endswith(":") else "; ") + line
    if isinstance(error, KeyError) and len(lines) == 1:  # KeyError's str() adds quotes
        text = text.strip("'\"")
    return text


def report(error: BaseException, stream=None) -> int:
    """Print ``error: <message>`` (one line) on ``stream`` (standard error) and return
    :data:`EXIT_INPUT_ERROR`."""
    print(f"error: {one_line(error)}", file=sys.stderr if stream is None else stream)
    return EXIT_INPUT_ERROR


def add_traceback_option(parser) -> None:
    """List ``--traceback`` in ``parser``'s help. :func:`command_line` removes it from the
    arguments before parsing, so it works anywhere, subcommands included."""
    parser.add_argument(TRACEBACK_OPTION, action="store_true",
                        help="on an input error, show the full traceback instead of one line "
                             f"(or set {TRACEBACK_VARIABLE}=1)")


# A Sphinx cross-reference, :role:`target`, :role:`~a.b.target` or :role:`title <target>`.
_ROLE = re.compile(r":(?:py:)?[a-z]+:`(~?)([^`<]+?)\s*(?:<[^`>]*>)?`")


def terminal_text(text: str) -> str:
    """``text`` (a docstring) as a terminal shows it: Sphinx cross-references become their
    name (``:mod:`~microlens.workflow.bench.train``` becomes ``train``, a ``~`` keeping the last
    dotted
    part as Sphinx does) and ````literals```` lose their backquotes."""
    def name(match: re.Match) -> str:
        target = match.group(2)
        return target.rsplit(".", 1)[-1] if match.group(1) else target

    return re.sub(r"``([^`]+)``", r"\1", _ROLE.sub(name, text))


class TerminalHelpFormatter(argparse.HelpFormatter):
    """argparse's formatter for descriptions, epilogs and option help written as docstrings:
    each is shown through :func:`terminal_text` (no Sphinx markup in ``--help``)."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(terminal_text(text))

    def _expand_help(self, action) -> str:
        return terminal_text(super()._expand_help(action))


class RawTerminalHelpFormatter(TerminalHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """:class:`TerminalHelpFormatter` that keeps the description's own line breaks."""


def command_line(main: Callable[[list[str]], int | None]) -> Callable[..., int]:
    """Wrap a command's ``main(argv)``: input errors become one line and exit status 2.

    The wrapped function takes ``argv`` (default ``sys.argv[1:]``), drops ``--traceback`` from
    it, and calls ``main`` with the rest. ``main`` returning None counts as 0.
    """

    @functools.wraps(main)
    def wrapper(argv: Sequence[str] | None = None) -> int:
        argv = list(sys.argv[1:] if argv is None else argv)
        show = wants_traceback(argv)
        argv = [arg for arg in argv if arg != TRACEBACK_OPTION]
        try:
            status = main(argv)
        except INPUT_ERRORS as error:
            if show:
                raise
            return report(error)
        return 0 if status is None else status

    return wrapper


__all__ = ["EXIT_INPUT_ERROR", "INPUT_ERRORS", "RawTerminalHelpFormatter",
           "TRACEBACK_OPTION", "TRACEBACK_VARIABLE", "TerminalHelpFormatter",
           "add_traceback_option", "command_line", "one_line", "report", "terminal_text",
           "wants_traceback"]
