"""Checks every notebook test shares: the committed form, running a notebook, its figures.

The parameters themselves are checked against the registry (microlens.workflow.notebooks) in
``test_notebook_registry.py``, with what papermill parses.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import papermill

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PARAM_LINE = re.compile(r"^(?P<name>[A-Za-z_]\w*) = (?P<value>.+?)  # (?P<comment>\S.*)$")


def assert_committed_form(notebook: Path, expected: dict[str, type]) -> dict:
    """One first code cell tagged ``parameters`` of ``name = literal  # comment`` lines with
    the expected types, the python3 kernel, no outputs; returns the declared values."""
    nb = nbformat.read(notebook, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.metadata["kernelspec"]["display_name"] == "Python 3"
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "exactly one cell tagged 'parameters'"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0] is cells[0], "the parameters cell is the first code cell"
    declared = {}
    for line in cells[0].source.splitlines():
        match = PARAM_LINE.match(line)
        assert match, f"parameter line is not `name = literal  # comment`: {line!r}"
        declared[match["name"]] = ast.literal_eval(match["value"])
    assert {k: type(v) for k, v in declared.items()} == expected
    for cell in code:
        assert cell.get("outputs", []) == [], "committed notebooks carry no outputs"
        assert cell.get("execution_count") is None, "committed notebooks carry no counts"
    return declared


def execute_without_errors(notebook: Path, output: Path, parameters: dict):
    """Run ``notebook`` through papermill (in ``notebooks/``, as the study runner does) and
    return the executed notebook, asserting that no cell recorded an error."""
    papermill.execute_notebook(str(notebook), str(output), parameters=parameters,
                               kernel_name="python3", cwd=str(notebook.parent),
                               progress_bar=False)
    nb = nbformat.read(output, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    return nb


def assert_figures_written(directory: Path, names, formats=("html",)) -> None:
    """Every figure in each of ``formats`` (PNG and PDF when kaleido has a browser) and in no
    other format, and no temporary files."""
    from microlens.reports import find_browser

    static = find_browser() is not None  # conftest's report header says when it is not
    magic = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF"}
    for name in names:
        assert (directory / f"{name}.html").is_file(), name
        for fmt, start in magic.items():
            path = directory / f"{name}.{fmt}"
            if fmt in formats and static:
                assert path.stat().st_size > 1000, path
                assert path.read_bytes()[:len(start)] == start, path
            elif fmt not in formats:
                assert not path.exists(), f"{path} written but not asked for"
    assert not list(directory.glob(".*tmp*")) and not list(directory.glob("*.tmp*"))
