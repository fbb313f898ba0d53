"""Study files: read ``studies/<name>.yaml``, check it against the notebooks, expand its cells.

A study file is YAML with these keys (only ``notebooks`` is required)::

    description: Accuracy against binary topology.     # one line for `list` and the index
    notebooks: [01_simulate, 02_train, 03_evaluate]    # run in this order in every cell
    common:                   # given to every notebook of the study that declares the name
      figure_formats: [html, png, pdf]
    parameters:               # fixed parameters, per notebook
      01_simulate: {n_per_class: 1000, seed: 1}
      02_train: {epochs: 20}
    grid:                     # swept parameters; the cells are their Cartesian product
      topology: [distinct, planetary, stellar, baseline]

A grid key is a parameter name (set in every notebook of the study that declares it) or
``notebook.name`` (set in that notebook only). ``grid`` may also be a list of such mappings:
the cells are then the union of their products (one sweep per entry, e.g. topology, then
cadence, then error, each around the same defaults). A study without a grid has one cell,
``base``. Cells are named by their grid values, ``topology=planetary`` or
``cadence=cadence_30,error=error_010``.

``cells`` gives some cells settings of their own, keyed by grid values (a selector
``key=value``, or several joined by commas, all of which must hold)::

    grid:
      model_kind: [transformer, cnn, gru]
    cells:                    # per-cell settings, applied after `parameters`
      model_kind=cnn: {02_train: {n_layers: 6}}
      model_kind=gru: {02_train: {d_model: 80}}

A selector's keys must be grid keys (as written in ``grid``) and its values values of them; it
must match at least one cell; its settings are checked like ``parameters`` and may not set a
parameter that the grid sweeps. Two selectors that match one cell may not give one parameter
different values. The runner's ``--set`` overrides still apply to every cell, after these.

Everything is checked before anything runs: unknown keys, notebooks, and parameter names that
a notebook does not declare (papermill itself only warns), values whose type differs from the
notebook's default, unknown presets, and parameters the runner sets itself (paths that chain
the notebooks of a cell together).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from microlens.core.devices import DEVICES
from microlens.reports.export import STATIC_FORMATS
from microlens.simulation.presets import CADENCES, ERRORS, TOPOLOGIES
from microlens.workflow.notebooks import (  # noqa: F401  (the artefacts are part of this module's API)
    ARTIFACTS,
    CONFIG_CHECKS,
    DATASET,
    NOTEBOOK_DIR,
    NOTEBOOKS,
    RUN,
    Artifact,
)

REPOSITORY = Path(__file__).resolve().parents[4]
STUDY_DIR = REPOSITORY / "studies"
BASE_CELL = "base"
"""The name of the only cell of a study without a grid."""

STUDY_KEYS = ("description", "notebooks", "common", "parameters", "grid", "cells")
VALUE_CHOICES = {"topology": tuple(TOPOLOGIES), "cadence": tuple(CADENCES),
                 "error": tuple(ERRORS), "device": DEVICES}
"""Parameters whose values must be one of a few names (checked before running, not in the
kernel); every element of ``figure_formats`` must be a figure format."""
FIGURE_FORMATS = ("html", *STATIC_FORMATS)


class StudyError(ValueError):
    """A study file, a study name or a runner option is invalid (nothing has run)."""


def available_notebooks() -> list[str]:
    """Names of the project's notebooks (:data:`microlens.workflow.notebooks.NOTEBOOKS`, in
    order)."""
    return list(NOTEBOOKS)


def notebook_path(name: str) -> Path:
    """The notebook file of ``name``; :class:`StudyError` naming the valid ones otherwise."""
    if not isinstance(name, str) or name not in NOTEBOOKS:
        raise StudyError(f"unknown notebook {name!r}; valid: {', '.join(available_notebooks())}")
    return NOTEBOOKS[name].path


def declared_parameters(name: str) -> dict:
    """The parameters a notebook declares, with their defaults (from the registry, which
    ``tests/test_notebook_registry.py`` holds equal to the notebook's ``parameters`` cell)."""
    notebook_path(name)
    return NOTEBOOKS[name].defaults()


def available_studies() -> list[str]:
    """Names of the shipped studies (``studies/*.yaml``)."""
    return sorted(p.stem for p in STUDY_DIR.glob("*.yaml"))


def study_path(name_or_path: str) -> Path:
    """``studies/<name>.yaml``, or a path to a YAML file; :class:`StudyError` otherwise."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(text).expanduser()
        if not path.is_file():
            raise StudyError(f"study file {path} not found")
        return path.resolve()
    path = STUDY_DIR / f"{text}.yaml"
    if not path.is_file():
        raise StudyError(f"unknown study {text!r}; valid: {', '.join(available_studies())} "
                         "(or a path to a .yaml file)")
    return path


@dataclass(frozen=True)
class Cell:
    """One point of a study's grid: its name, grid values and every notebook's parameters.

    ``parameters[notebook]`` holds what the study sets (common, fixed and grid values), not
    the notebook's defaults nor the paths the runner adds; ``resolved`` adds the defaults.
    """

    name: str
    values: dict            # grid key -> value, in the study's order
    sweep: int              # which grid entry (mapping) the cell comes from
    parameters: dict        # notebook -> {name: value}

    def resolved(self, notebook: str) -> dict:
        """Every parameter of ``notebook`` in this cell: its defaults, then the study's."""
        return {**declared_parameters(notebook), **self.parameters[notebook]}


@dataclass
class Study:
    """A checked study: its notebooks, settings and cells."""

    name: str
    path: Path
    description: str
    notebooks: tuple[str, ...]
    common: dict
    parameters: dict
    grid: list[dict]
    cell_settings: dict = field(default_factory=dict)  # the file's `cells`: selector -> settings
    cells: list[Cell] = field(default_factory=list)

    @property
    def grid_keys(self) -> list[str]:
        """Every grid key, in order of first appearance."""
        return list(dict.fromkeys(k for block in self.grid for k in block))

    def artifacts(self) -> tuple[Artifact, ...]:
        """The artefacts this study's cells make (their producer is one of its notebooks)."""
        return tuple(a for a in ARTIFACTS if a.producer in self.notebooks)

    def managed(self, notebook: str) -> tuple[str, ...]:
        """Parameters of ``notebook`` that the runner sets, so a study may not."""
        names = {"output_dir"}
        produced = self.artifacts()
        for artifact in produced:
            if artifact.producer == notebook:
                names.update(artifact.managed)
            elif self.notebooks.index(notebook) > self.notebooks.index(artifact.producer):
                names.add(artifact.consumer_parameter)
        return tuple(sorted(names & set(declared_parameters(notebook))))


def _type_name(value) -> str:
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _check_value(notebook: str, name: str, value, where: str) -> None:
    default = declared_parameters(notebook)[name]
    ok = (isinstance(value, type(default)) and not (isinstance(value, bool)
                                                     and not isinstance(default, bool)))
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        ok = True  # 1 for 1.0
    if not ok:
        raise StudyError(f"{where}: {notebook}.{name} = {value!r} is {_type_name(value)}, but "
                         f"the notebook declares {_type_name(default)} (default "
                         f"{default!r})")
    if name in VALUE_CHOICES and value not in VALUE_CHOICES[name]:
        raise StudyError(f"{where}: {notebook}.{name} = {value!r} is not valid; valid: "
                         f"{', '.join(VALUE_CHOICES[name])}")
    if name == "figure_formats" and not set(value) <= set(FIGURE_FORMATS):
        raise StudyError(f"{where}: {notebook}.{name} = {value!r} has unknown formats; valid: "
                         f"{', '.join(FIGURE_FORMATS)}")


def _targets(study: Study, key: str, where: str) -> list[tuple[str, str]]:
    """The (notebook, parameter) pairs a key reaches: ``name`` or ``notebook.name``."""
    if "." in key:
        notebook, name = key.split(".", 1)
        if notebook not in study.notebooks:
            notebook_path(notebook)  # unknown notebook: names the valid ones
            raise StudyError(f"{where}: {key!r} names notebook {notebook}, which the study does "
                             f"not run ({', '.join(study.notebooks)})")
        declared = declared_parameters(notebook)
        if name not in declared:
            raise StudyError(f"{where}: {notebook} declares no parameter {name!r}; it "
                             f"declares: {', '.join(declared)}")
        pairs = [(notebook, name)]
    else:
        pairs = [(nb, key) for nb in study.notebooks if key in declared_parameters(nb)]
        if not pairs:
            raise StudyError(f"{where}: no notebook of the study declares a parameter {key!r}; "
                             f"they declare: {_all_declared(study)}")
    for notebook, name in pairs:
        if name in study.managed(notebook):
            raise StudyError(f"{where}: {notebook}.{name} is set by the study runner (it "
                             "chains the notebooks of a cell); leave it out")
    return pairs


def _all_declared(study: Study) -> str:
    return "; ".join(f"{nb}: {', '.join(declared_parameters(nb))}" for nb in study.notebooks)


def _format_value(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    if re.search(r"[/\\\0\n,=]", text) or text in ("", ".", ".."):
        raise StudyError(f"grid value {value!r} cannot be part of a cell (folder) name")
    return text


def _mapping(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise StudyError(f"{where} must be a mapping, got {_type_name(value)}")
    return value


def load_study(name_or_path: str, overrides: dict | None = None) -> Study:
    """Read, check and expand a study.

    Parameters
    ----------
    name_or_path : str
        A shipped study (``quick``, ``topology``, ...) or a path to a YAML file.
    overrides : dict, optional
        ``{"notebook.name" or "name": value}`` applied to every cell after the study's own
        settings (the runner's ``--set``, ``--processes`` and ``--device``).

    Returns
    -------
    Study
        With ``cells`` expanded and every parameter checked against the notebooks.

    Raises
    ------
    StudyError
        For anything invalid, naming the bad value and the valid choices.
    """
    path = study_path(name_or_path)
    where = path.name
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise StudyError(f"{where} is not valid YAML: {exc}") from exc
    raw = _mapping(raw, where)
    unknown = sorted(set(raw) - set(STUDY_KEYS))
    if unknown:
        raise StudyError(f"{where}: unknown key(s) {unknown}; valid: {', '.join(STUDY_KEYS)}")
    notebooks = raw.get("notebooks")
    if not isinstance(notebooks, list) or not notebooks:
        raise StudyError(f"{where}: 'notebooks' must be a non-empty list; valid notebooks: "
                         f"{', '.join(available_notebooks())}")
    for notebook in notebooks:
        notebook_path(notebook)
    if len(set(notebooks)) != len(notebooks):
        raise StudyError(f"{where}: a notebook is listed twice in {notebooks}")
    grid = raw.get("grid") or {}
    blocks = grid if isinstance(grid, list) else [grid]
    study = Study(name=path.stem, path=path, description=str(raw.get("description", "")),
                  notebooks=tuple(notebooks), common=_mapping(raw.get("common"), "common"),
                  parameters=_mapping(raw.get("parameters"), "parameters"),
                  grid=[_mapping(b, "grid entry") for b in blocks],
                  cell_settings=_mapping(raw.get("cells"), f"{where} cells"))

    fixed = {nb: {} for nb in study.notebooks}
    for name, value in study.common.items():
        for notebook, param in _targets(study, name, f"{where} common"):
            _check_value(notebook, param, value, f"{where} common")
            fixed[notebook][param] = value
    for notebook, values in study.parameters.items():
        if notebook not in study.notebooks:
            notebook_path(notebook)
            raise StudyError(f"{where} parameters: {notebook} is not among the study's "
                             f"notebooks ({', '.join(study.notebooks)})")
        for name, value in _mapping(values, f"parameters.{notebook}").items():
            for nb, param in _targets(study, f"{notebook}.{name}", f"{where} parameters"):
                _check_value(nb, param, value, f"{where} parameters")
                fixed[nb][param] = value
    grid_targets = {key: _targets(study, key, f"{where} grid")
                    for block in study.grid for key in block}
    swept = {pair for pairs in grid_targets.values() for pair in pairs}
    _check_grid_lists(study, where)
    selected = _cell_settings(study, grid_targets, swept, where)
    settings = []  # (notebook, parameter) pairs and the value every cell gets after the grid
    for key, value in (overrides or {}).items():
        pairs = _targets(study, key, "override")
        for notebook, param in pairs:
            _check_value(notebook, param, value, "override")
            if (notebook, param) in swept:
                raise StudyError(f"override: {notebook}.{param} is swept by the study's grid; "
                                 "pick cells with --only instead")
        settings.append((pairs, value))
    study.cells = _expand(study, fixed, grid_targets, settings, where, selected)
    for cell in study.cells:
        check_cell(study, cell, where)
    return study


def check_cell(study: Study, cell: Cell, where: str = "") -> None:
    """Build the configs each notebook of the cell builds from its parameters (the same
    dataclasses, so the same checks as the run: ``n_per_class=-5`` or ``epochs=0`` fail here,
    before anything runs, also under ``--dry-run``).

    Raises
    ------
    StudyError
        Naming the cell, the notebook and the bad value.
    """
    for notebook in study.notebooks:
        check = CONFIG_CHECKS.get(notebook)
        if check is None:
            continue
        try:
            check(cell.resolved(notebook))
        except (ValueError, TypeError) as exc:
            raise StudyError(f"{where + ': ' if where else ''}cell {cell.name}: {notebook} "
                             f"would fail: {exc}") from exc


def _check_grid_lists(study: Study, where: str) -> None:
    for block in study.grid:
        for key, values in block.items():
            if not isinstance(values, list) or not values:
                raise StudyError(f"{where} grid: {key} must map to a non-empty list of values")


@dataclass(frozen=True)
class _CellSetting:
    """One entry of a study's ``cells``: which cells it selects and what it sets there."""

    selector: str                      # as written, e.g. "model_kind=cnn"
    conditions: tuple[tuple[str, str], ...]  # (grid key, value as in cell names)
    values: tuple[tuple[str, str, object], ...]  # (notebook, parameter, value)

    def matches(self, cell_values: dict) -> bool:
        return all(key in cell_values and _format_value(cell_values[key]) == text
                   for key, text in self.conditions)


def _cell_settings(study: Study, grid_targets: dict, swept: set,
                   where: str) -> list[_CellSetting]:
    """Parse and check the study's ``cells`` (per-cell settings keyed by grid values)."""
    context = f"{where} cells"
    if study.cell_settings and not study.grid_keys:
        raise StudyError(f"{context}: the study has no grid, so there are no cells to select; "
                         "put the settings under `parameters`")
    grid_values: dict[str, list[str]] = {}
    for block in study.grid:
        for key, values in block.items():
            known = grid_values.setdefault(key, [])
            known += [t for t in map(_format_value, values) if t not in known]
    example = next((f"{k}={v[0]}" for k, v in grid_values.items()), "KEY=VALUE")
    out = []
    for selector, body in study.cell_settings.items():
        here = f"{context}: {selector}"
        conditions = []
        for part in str(selector).split(","):
            key, sep, text = (s.strip() for s in part.partition("="))
            if not sep or not key or not text:
                raise StudyError(f"{context}: selector {selector!r} must be GRID_KEY=VALUE, or "
                                 f"several joined by commas (e.g. {example})")
            if key not in grid_values:
                raise StudyError(f"{here}: {key!r} is not a grid key; grid keys: "
                                 f"{', '.join(grid_values)}")
            if text not in grid_values[key]:
                raise StudyError(f"{here}: {text!r} is not a value of the grid's {key}; its "
                                 f"values: {', '.join(grid_values[key])}")
            if any(k == key for k, _ in conditions):
                raise StudyError(f"{here}: {key} is named twice")
            conditions.append((key, text))
        body = _mapping(body, f"{here} (a mapping of notebook to parameters)")
        if not body:
            raise StudyError(f"{here}: no settings; give {{notebook: {{name: value}}}}")
        values = []
        for notebook, params in body.items():
            if notebook not in study.notebooks:
                notebook_path(notebook)  # unknown notebook: names the valid ones
                raise StudyError(f"{here}: {notebook} is not among the study's notebooks "
                                 f"({', '.join(study.notebooks)})")
            params = _mapping(params, f"{here}: {notebook}")
            for name, value in params.items():
                for nb, param in _targets(study, f"{notebook}.{name}", here):
                    _check_value(nb, param, value, here)
                    if (nb, param) in swept:
                        raise StudyError(f"{here}: {nb}.{param} is swept by the study's grid; "
                                         "each cell takes its grid value")
                    values.append((nb, param, value))
        out.append(_CellSetting(str(selector), tuple(conditions), tuple(values)))
    return out


def _expand(study: Study, fixed: dict, grid_targets: dict, settings: list,
            where: str, selected: Sequence[_CellSetting] = ()) -> list[Cell]:
    """The cells: each grid entry's product, on top of the fixed values and the per-cell
    settings, under the overrides."""
    cells: dict[str, Cell] = {}
    used: set[str] = set()
    for index, block in enumerate(study.grid):
        keys = list(block)
        for key in keys:
            for value in block[key]:
                for notebook, param in grid_targets[key]:
                    _check_value(notebook, param, value, f"{where} grid")
        for combo in itertools.product(*(block[k] for k in keys)):  # () without keys
            values = dict(zip(keys, combo, strict=True))
            name = (",".join(f"{k}={_format_value(v)}" for k, v in values.items())
                    or BASE_CELL)
            parameters = {nb: dict(fixed[nb]) for nb in study.notebooks}
            by: dict[tuple[str, str], tuple[str, object]] = {}
            for setting in selected:
                if not setting.matches(values):
                    continue
                used.add(setting.selector)
                for notebook, param, value in setting.values:
                    earlier = by.get((notebook, param))
                    if earlier is not None and earlier[1] != value:
                        raise StudyError(
                            f"{where} cells: {earlier[0]} and {setting.selector} both match "
                            f"cell {name} and set {notebook}.{param} differently "
                            f"({earlier[1]!r}, {value!r})")
                    by[(notebook, param)] = (setting.selector, value)
                    parameters[notebook][param] = value
            for pairs, value in [*((grid_targets[k], v) for k, v in values.items()), *settings]:
                for notebook, param in pairs:
                    parameters[notebook][param] = value
            cell = Cell(name=name, values=values, sweep=index, parameters=parameters)
            if name in cells and cells[name].parameters != parameters:
                raise StudyError(f"{where}: two grid entries make cell {name} with different "
                                 "parameters")
            cells.setdefault(name, cell)
    unused = [s.selector for s in selected if s.selector not in used]
    if unused:
        raise StudyError(f"{where} cells: {', '.join(unused)} matches no cell; cells: "
                         f"{', '.join(cells)}")
    return list(cells.values())


def fingerprint(data) -> str:
    """A short, stable hash of JSON-ready data (the key of cells and artefacts)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def artifact_key(study: Study, cell: Cell, artifact: Artifact) -> str:
    """The key of the artefact a cell makes: its producer's parameters (defaults included,
    ignored ones and runner-set paths left out) and the keys of the artefacts it reads."""
    managed = set(study.managed(artifact.producer))
    resolved = cell.resolved(artifact.producer)
    parameters = {k: v for k, v in resolved.items()
                  if k not in artifact.ignored and k not in managed}
    config = NOTEBOOKS[artifact.producer].config
    made = config(resolved) if config is not None else None
    if hasattr(made, "canonical_dict"):  # a data set: what it simulates, however it was said
        parameters = {k: v for k, v in parameters.items() if k not in made.to_dict()}
        parameters["config"] = made.canonical_dict()
    upstream = {a.kind: artifact_key(study, cell, a) for a in study.artifacts()
                if study.notebooks.index(a.producer) < study.notebooks.index(artifact.producer)}
    return fingerprint({"notebook": artifact.producer, "parameters": parameters,
                        "inputs": upstream})


def parse_assignment(text: str) -> tuple[str, object]:
    """``notebook.name=value`` or ``name=value`` (the value read as YAML: 5, 0.1, true, [a])."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise StudyError(f"--set expects NAME=VALUE or NOTEBOOK.NAME=VALUE, got {text!r}")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise StudyError(f"--set {text!r}: the value is not valid YAML ({exc})") from exc


__all__ = [
    "BASE_CELL", "STUDY_DIR", "Cell", "Study", "StudyError", "artifact_key", "available_notebooks",
    "available_studies", "check_cell", "declared_parameters", "fingerprint", "load_study",
    "notebook_path", "parse_assignment", "study_path"
]  # fmt: skip
