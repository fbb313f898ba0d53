"""Every command line's ``--help`` reads as terminal text: no Sphinx markup from docstrings."""

from __future__ import annotations

import importlib
import re

import pytest

from microlens.core.cli import terminal_text

SPHINX = re.compile(r"``|:[a-z]+:`")

COMMANDS = [  # (module with main(argv), arguments before --help)
    ("microlens.workflow.bench.cli", []), ("microlens.workflow.bench.cli", ["train"]),
    ("microlens.workflow.bench.cli", ["infer"]), ("microlens.workflow.bench.cli", ["simulate"]),
    ("microlens.training.train", []), ("microlens.training.train", ["--objective", "pretrain"]),
    ("microlens.workflow.studies.__main__", []), ("microlens.workflow.studies.__main__", ["run"]),
    ("microlens.workflow.figures", []), ("microlens.realdata.benchmark.cli", []),
    ("microlens.simulation.noise_model", []), ("microlens.reports.noise_statistics", []),
    ("microlens.photometry.ews", []),
    ("microlens.evaluation.analysis.baseline", []), ("microlens.realdata.benchmark.crossfit", []),
    ("microlens.realdata.parameters", []),
]


@pytest.mark.parametrize("module, arguments", COMMANDS,
                         ids=[" ".join([m.split(".", 1)[1], *a]) for m, a in COMMANDS])
def test_help_has_no_sphinx_markup(module, arguments, capsys):
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as stop:
        main([*arguments, "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: python -m microlens.")
    assert not SPHINX.search(text), SPHINX.search(text).group(0)


def test_terminal_text_names_what_sphinx_links_to():
    assert terminal_text(":mod:`~microlens.workflow.bench.train` and "
                         ":func:`microlens.simulation.simulate`") == (
        "train and microlens.simulation.simulate")
    assert terminal_text(":class:`the config <microlens.TrainConfig>`") == "the config"
    assert terminal_text(":py:data:`~a.B`, ``--steps 3``, *as is*") == "B, --steps 3, *as is*"
    assert terminal_text("no markup: `one backquote` stays") == "no markup: `one backquote` stays"
