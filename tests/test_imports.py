"""The package's import structure: subpackages in layers, no cycle, no private name borrowed
across subpackages, each module imports alone."""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

import microlens

PACKAGE_DIR = Path(microlens.__file__).resolve().parent


def module_files() -> dict[str, tuple[Path, bool]]:
    """``{dotted module name: (file, is a package __init__)}`` for every module of microlens."""
    modules = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        modules[".".join(parts)] = (path, is_package)
    return modules


def imported_modules(module: str, is_package: bool, node: ast.AST, known: set[str]) -> list[str]:
    """The microlens modules one ``import`` / ``from ... import`` statement loads."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "microlens"]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != "microlens":
        return []
    # ``from . import viz`` loads the module microlens.reports; ``from .x import f`` loads
    # microlens.x
    return [f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target
            for alias in node.names]


@functools.cache
def parsed_modules() -> dict[str, tuple[ast.Module, bool]]:
    """Every microlens module's syntax tree and whether it is a package ``__init__``, parsed
    once per test process (four tests read them)."""
    return {module: (ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), is_package)
            for module, (path, is_package) in module_files().items()}


@functools.cache
def import_graph() -> dict[str, frozenset[str]]:
    """Edges ``module -> modules it imports``, from every import statement in the module,
    at top level or inside a function (a deferred import still ties the two modules together:
    deferring it is how a cycle hides).

    An import of a module's own enclosing package (``from . import __doc__`` in a submodule) is
    left out: Python imports a package before any of its submodules, so that edge exists for
    every submodule and orders nothing; whether such a name is there in time is what
    :func:`test_every_module_imports_on_its_own` checks.
    """
    modules = parsed_modules()
    known = set(modules)
    graph = {}
    for module, (tree, is_package) in modules.items():
        graph[module] = frozenset(
            target
            for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
            for target in imported_modules(module, is_package, node, known)
            if target != module and not module.startswith(target + ".")
        )
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None when it is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


@pytest.fixture
def package_graph() -> dict[str, frozenset[str]]:
    """:func:`import_graph`; the tests that read it share one worker (tests/conftest.py), so the
    package is parsed once per run."""
    return import_graph()


def test_graph_builder_sees_absolute_deferred_and_package_imports(package_graph):
    graph = package_graph
    assert "microlens.simulation.pspl_fit" in graph["microlens.simulation.detectability"]
    # deferred imports count, and ``from microlens.photometry import ews`` names a module
    assert "microlens.simulation.detectability" in graph["microlens.simulation.simulate"]
    assert "microlens.photometry.ews" in graph["microlens.simulation.injection"]
    assert "microlens.workflow.studies.definition" in graph["microlens.workflow.studies"]


LAYERS = ("core", "photometry", "simulation", "data", "models", "training", "evaluation",
          "realdata", "reports", "workflow")
"""The subpackages from the bottom up: each imports only those before it (and itself)."""


def layer(module: str) -> int | None:
    """The position in :data:`LAYERS` of the subpackage holding ``module`` (None for the
    top-level package, whose lazy API may name anything)."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Every edge of ``graph`` from a module to one of a later layer."""
    return sorted((module, target) for module, targets in graph.items() for target in targets
                  if layer(module) is not None and layer(target) is not None
                  and layer(target) > layer(module))


def test_every_subpackage_is_a_layer_and_the_tree_holds_nothing_else():
    top = {path.name for path in PACKAGE_DIR.iterdir()
           if path.is_dir() and (path / "__init__.py").is_file()}
    assert top == set(LAYERS)
    modules = {p.name for p in PACKAGE_DIR.glob("*.py")}
    assert modules == {"__init__.py"}  # every module lives in the subpackage of its concern


def test_the_layer_check_catches_an_upward_import():
    planted = {"microlens.core.paths": {"microlens.workflow.notebooks"},
               "microlens.models.registry": {"microlens.core.paths", "microlens.models.base"}}
    assert upward_imports(planted) == [("microlens.core.paths", "microlens.workflow.notebooks")]


def test_no_module_imports_a_later_layer(package_graph):
    upward = upward_imports(package_graph)
    assert upward == [], "imports against the layer order " + " < ".join(LAYERS) + ":\n" + \
        "\n".join(f"{module} -> {target}" for module, target in upward)


def private_imports() -> list[tuple[str, str, str]]:
    """``(module, source, name)`` for every ``_name`` a module imports from another
    subpackage."""
    found = []
    for module, (tree, _) in parsed_modules().items():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                    and node.module.split(".")[0] == "microlens"):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__") \
                        and layer(node.module) != layer(module):
                    found.append((module, node.module, alias.name))
    return sorted(found)


def test_no_private_name_is_imported_across_subpackages(package_graph):
    assert private_imports() == []


def test_every_subpackage_says_its_job_and_its_names_resolve():
    import importlib

    for name in LAYERS:
        package = importlib.import_module(f"microlens.{name}")
        assert package.__doc__ and len(package.__doc__.split()) >= 15, name
        for exported in package.__all__:
            assert getattr(package, exported) is not None, f"microlens.{name}.{exported}"
    for exported in microlens.__all__:
        assert getattr(microlens, exported) is not None, exported


def test_find_cycle_finds_a_cycle_and_only_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None  # a diamond


def test_no_import_cycle_among_microlens_modules(package_graph):
    cycle = find_cycle(package_graph)
    assert cycle is None, f"import cycle among microlens modules: {' -> '.join(cycle)}"


@pytest.mark.slow
def test_every_module_imports_on_its_own():
    """Each module imported first in a fresh set of microlens modules (third-party libraries
    stay loaded, to keep this test to seconds): none depends on another having been imported."""
    modules = sorted(m for m in module_files() if not m.endswith("__main__"))
    script = (
        "import importlib, json, sys, traceback\n"
        "failures = {}\n"
        f"for name in {modules!r}:\n"
        "    for loaded in [m for m in sys.modules if m.split('.')[0] == 'microlens']:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"
        "        failures[name] = traceback.format_exc(limit=3)\n"
        "print(json.dumps(failures))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    failures = json.loads(result.stdout.strip().splitlines()[-1])
    assert failures == {}, "\n".join(f"{name}:\n{text}" for name, text in failures.items())
    assert len(modules) >= 30  # the walk found the package's modules
