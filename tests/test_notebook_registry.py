"""The notebooks' registry (microlens.workflow.notebooks) against the notebooks themselves.

The registry is the one description of every notebook's parameters, record, figures and
artefacts that the study runner, the figure rebuild and the notebooks' save step read; these
tests hold each notebook's ``parameters`` cell (what papermill sees) equal to it.
"""

from __future__ import annotations

import ast
import json
import re

import nbformat
import papermill
import pytest
from notebook_form import NOTEBOOKS as NOTEBOOK_DIR
from notebook_form import PARAM_LINE, assert_committed_form

from microlens.core.settings import NOT_LITERAL, declared_fields
from microlens.workflow import figures
from microlens.workflow.notebooks import (
    ARTIFACTS,
    CONFIG_MODULES,
    NOTEBOOKS,
    RecordError,
    check_record,
    config_arguments,
    get_notebook,
    load_record,
    mirrored_field,
    save_outputs,
)
from microlens.workflow.studies import available_notebooks, declared_parameters

MODEL_NOTEBOOKS = ("02_train", "03_evaluate", "04_attention", "05_embedding", "06_u0_analysis")


def test_every_notebook_file_has_one_registry_entry_and_back():
    files = sorted(p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    assert files == list(NOTEBOOKS) == available_notebooks()
    for name, entry in NOTEBOOKS.items():
        assert entry.name == name and entry.path == NOTEBOOK_DIR / f"{name}.ipynb"


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_parameters_cell_says_exactly_what_the_registry_says(name):
    entry = NOTEBOOKS[name]
    declared = assert_committed_form(entry.path, entry.types())
    nb = nbformat.read(entry.path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    lines = [PARAM_LINE.match(line) for line in cell.source.splitlines()]
    assert [m["name"] for m in lines] == [p.name for p in entry.parameters]  # same order
    for match, parameter in zip(lines, entry.parameters, strict=True):
        value = ast.literal_eval(match["value"])
        assert (value, type(value)) == (parameter.default, parameter.type), parameter.name
        assert match["comment"] == parameter.description, parameter.name
    assert declared == entry.defaults() == declared_parameters(name)
    # papermill (what the study runner and the CLI pass values through) parses every line
    seen = papermill.inspect_notebook(str(entry.path))
    assert list(seen) == [p.name for p in entry.parameters]
    assert {k: ast.literal_eval(v["default"]) for k, v in seen.items()} == entry.defaults()


def test_defaults_agree_across_notebooks_and_configs():
    from microlens.models.config import ModelConfig
    from microlens.training.train import TrainConfig

    for name in MODEL_NOTEBOOKS:  # every notebook that runs a model takes the same device
        assert NOTEBOOKS[name].defaults()["device"] == "auto", name
    train = NOTEBOOKS["02_train"].defaults()
    config, model = TrainConfig(), ModelConfig()
    for key in ("epochs", "batch_size", "learning_rate", "patience", "precision", "device",
                "seed", "max_train_events"):
        assert train[key] == getattr(config, key), key
    for key in ("d_model", "n_layers", "n_heads", "d_ff", "window", "dropout"):
        assert train[key] == getattr(model, key), key
    for name, entry in NOTEBOOKS.items():
        assert entry.defaults()["output_dir"] == "outputs/lab", name
        assert entry.defaults()["figure_formats"] == ["html", "png", "pdf"], name


def test_configs_are_built_from_the_defaults_and_refuse_bad_values():
    simulation = NOTEBOOKS["01_simulate"]
    cfg = simulation.config(simulation.defaults())
    assert (cfg.n_per_class, cfg.seed, cfg.topology) == (200, 42, "baseline")
    train = NOTEBOOKS["02_train"]
    config = train.config(train.defaults())
    assert config.epochs == 20 and config.model.d_model == 128
    for entry, change, message in (
            (simulation, {"n_per_class": -5}, "n_per_class must be positive, got -5"),
            (simulation, {"workers": -1}, "workers must be >= 0 (0 means all cores), got -1"),
            (train, {"epochs": 0}, "TrainConfig.epochs must be a positive integer, got 0"),
            (train, {"processes": 0}, "processes must be at least 1, got 0"),
            (train, {"resume": True}, "overwrite and resume are both True")):
        with pytest.raises(ValueError, match=re.escape(message)):
            entry.config({**entry.defaults(), **change})


def test_figure_builders_artefacts_and_records_are_declared_once():
    for entry in NOTEBOOKS.values():
        assert callable(getattr(figures, entry.figures)) and entry.figures in figures._REBUILDERS
        assert figures.NOTEBOOK_RECORDS[entry.name] == entry.record
        for parameter in entry.consumes:
            assert parameter in entry.defaults(), (entry.name, parameter)
    assert [(a.kind, a.producer) for a in ARTIFACTS] == [("dataset", "01_simulate"),
                                                         ("run", "02_train")]
    for artifact in ARTIFACTS:
        producer = NOTEBOOKS[artifact.producer]
        assert artifact.record == producer.record
        assert set(artifact.managed) | set(artifact.ignored) <= set(producer.defaults())
    with pytest.raises(KeyError, match="unknown notebook '07_x'; valid: 01_simulate"):
        get_notebook("07_x")


NOTEBOOK_OWN_DEFAULTS = {("01_simulate", "n_per_class"): 200, ("01_simulate", "seed"): 42}
"""The only parameters whose default differs from the config field they set."""


def _config_class(name: str):
    import importlib

    return getattr(importlib.import_module(CONFIG_MODULES[name]), name)


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_every_parameter_has_its_fields_default_type_and_help_or_its_own(name):
    import dataclasses
    import typing

    for p in NOTEBOOKS[name].parameters:
        assert p.description, (name, p.name)
        if not p.field:  # the notebook's own: no config field of that name it should set
            assert mirrored_field(name, p.name) == "", (name, p.name)
            continue
        owner, _, field_name = p.field.partition(".")
        cls = _config_class(owner)
        field = {f.name: f for f in dataclasses.fields(cls)}[field_name]
        declared = declared_fields(CONFIG_MODULES[owner], owner)[field_name]
        assert declared.default is not NOT_LITERAL and declared.default == field.default
        assert declared.help and p.description.startswith(declared.help), (name, p.name)
        annotation = typing.get_type_hints(cls)[field_name]
        members = typing.get_args(annotation) or (annotation,)
        assert p.type in members or (p.type is int and float in members), (name, p.name)
        expected = NOTEBOOK_OWN_DEFAULTS.get((name, p.name), field.default)
        assert p.config_value(p.default) == expected, (name, p.name)
        if field.default is None:
            assert p.unset is not None and p.default == p.unset, (name, p.name)
    own_defaults = {(name, p.name) for p in NOTEBOOKS[name].parameters if p.field and (
        p.config_value(p.default) != _config_class(p.field.split(".")[0]).__dataclass_fields__[
            p.field.split(".")[1]].default)}
    assert own_defaults == {k for k in NOTEBOOK_OWN_DEFAULTS if k[0] == name}


def test_every_parameter_that_sets_a_field_reaches_it():
    from microlens.training.pretrain import pretrain_config_for

    simulation = NOTEBOOKS["01_simulate"]
    changed = {"topology": "stellar", "cadence": "cadence_50", "error": "error_010",
               "variable_fraction": 0.5, "n_per_class": 10, "n_epochs": 500, "seed": 3,
               "detectability": False}
    assert set(changed) == {p.name for p in simulation.parameters if p.field} - {
        "survey", "noise", "single_lens", "contaminants", "noise_model", "baselines",
        "injected_variables"}
    cfg = simulation.config({**simulation.defaults(), **changed})
    for key, value in changed.items():
        assert getattr(cfg, key) == value, key
    ogle = simulation.config({**simulation.defaults(), "survey": "ogle", "noise": "fitted",
                              "single_lens": "physical", "contaminants": "survey"})
    assert (ogle.survey, ogle.noise, ogle.single_lens, ogle.contaminants) == (
        "ogle", "fitted", "physical", "survey")
    fitted = simulation.config({**simulation.defaults(), "survey": "ogle", "noise": "fitted",
                                "noise_model": "outputs/noise.json"})
    assert fitted.noise_model == "outputs/noise.json"
    injection = simulation.config({**simulation.defaults(), "survey": "ogle",
                                   "baselines": "data/real", "injected_variables": 0.5,
                                   "contaminants": "survey"})
    assert (injection.baselines, injection.injected_variables) == ("data/real", 0.5)
    assert simulation.config(simulation.defaults()).baselines is None
    # the notebook's own code hands every one of them on (a parameter it forgot is ignored)
    nb = nbformat.read(simulation.path, as_version=4)
    code = next(c.source for c in nb.cells if "simulation_config(dict(" in c.source)
    call = code[code.index("simulation_config(dict("):]
    handed = set(re.findall(r"(\w+)=\1\b", call))
    assert {p.name for p in simulation.parameters if p.field} <= handed

    train = NOTEBOOKS["02_train"]
    changed = {"dataset_dir": "data/other", "run_name": "r", "runs_dir": "outputs/x",
               "model_kind": "masked", "d_model": 96, "n_layers": 3, "n_heads": 4, "d_ff": 192,
               "window": 32, "dropout": 0.2, "time_encoding": "rotary", "conv_stem_kernel": 3,
               "conv_stem_layers": 2, "pool_norm": True, "kernel_size": 3, "latent_dim": 8,
               "reconstruction_weight": 0.5, "kl_weight": 0.02, "pretrain_epochs": 4,
               "pretrain_mask_fraction": 0.3, "pretrain_batch_size": 16,
               "pretrain_learning_rate": 2e-3, "epochs": 3, "batch_size": 16,
               "learning_rate": 5e-4, "patience": 1, "precision": "fp32", "device": "cpu",
               "seed": 7, "max_train_events": 100, "max_val_events": 50,
               "label_policy": "observable", "baseline_method": "first",
               "temperature_fit": "final", "parameter_heads": True, "parameter_origin": "peak",
               "parameter_weight": 0.5}
    assert set(changed) == {p.name for p in train.parameters if p.field}
    parameters = {**train.defaults(), **changed}
    config = train.config(parameters)
    pretrain = pretrain_config_for(config, **config_arguments("02_train", "PretrainConfig",
                                                              parameters))
    targets = {"TrainConfig": config, "ModelConfig": config.model, "PretrainConfig": pretrain}
    for p in train.parameters:
        if p.field:
            owner, _, field_name = p.field.partition(".")
            assert getattr(targets[owner], field_name) == changed[p.name], p.name


def test_the_model_kind_help_names_every_kind():
    from microlens.models.registry import KINDS

    description = NOTEBOOKS["02_train"].types() and next(
        p.description for p in NOTEBOOKS["02_train"].parameters if p.name == "model_kind")
    for kind in KINDS:
        assert re.search(rf"\b{kind}\b", description), kind


def test_declared_fields_read_help_continuations_bases_and_computed_defaults(
        tmp_path, monkeypatch):
    package = tmp_path / "declared_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "base.py").write_text(
        "from dataclasses import dataclass\n\n@dataclass\nclass Base:\n"
        "    seed: int = 0  # the seed\n")
    (package / "settings.py").write_text(
        "import math\nfrom dataclasses import dataclass\n\nfrom .base import Base\n\n\n"
        "@dataclass\nclass Config(Base):\n"
        "    # a block comment above is not the help text\n"
        "    size: int = 3  # how many,\n    #   continued here\n"
        "    # the next field's block comment is not a continuation\n"
        "    scale: float = math.pi\n"
        "    name: str | None = None  # a name\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fields = declared_fields("declared_pkg.settings", "Config")
    assert list(fields) == ["seed", "size", "scale", "name"]
    assert fields["seed"].help == "the seed" and fields["seed"].default == 0
    assert fields["size"].help == "how many, continued here"
    assert fields["scale"].help == "" and fields["scale"].default is NOT_LITERAL
    assert (fields["name"].annotation, fields["name"].default) == ("str | None", None)
    with pytest.raises(LookupError, match="declared_pkg.settings has no class 'Other'; its "
                                          "classes: Config"):
        declared_fields("declared_pkg.settings", "Other")


def _limits_record() -> dict:
    return {"threshold": 100.0, "n_events": 3, "binary": {"n_binary": 1}, "bins": {},
            "binary_points": {"index": [2]}}


def test_save_outputs_checks_the_record_then_writes_it_atomically(tmp_path):
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    written = save_outputs("06_u0_analysis", tmp_path, {"physical_limits": fig, "empty": None},
                           ["html"], _limits_record())
    assert [p.name for p in written] == ["physical_limits.html", "u0_report.json"]
    record, source = load_record("06_u0_analysis", tmp_path)
    assert source == tmp_path / "u0_report.json"
    assert record == {**_limits_record(), "figure_formats": ["html"],
                      "figures": ["physical_limits"]}
    assert not [p for p in tmp_path.iterdir() if "tmp" in p.name]  # no half-written files

    bad = {k: v for k, v in _limits_record().items() if k != "bins"}
    with pytest.raises(RecordError, match="the record of 06_u0_analysis has no 'bins'"):
        save_outputs("06_u0_analysis", tmp_path / "other", {"a": fig}, ["html"], bad)
    assert not (tmp_path / "other").exists()  # nothing written
    with pytest.raises(RecordError, match=r"threshold = 'high' is a str, expected float"):
        check_record("06_u0_analysis", {**_limits_record(), "threshold": "high",
                                        "figure_formats": [], "figures": []})
    assert check_record("06_u0_analysis", {**_limits_record(), "threshold": 100,
                                           "figure_formats": [], "figures": []})  # int: float

    (tmp_path / "u0_report.json").write_text(json.dumps({"threshold": 1.0}))
    with pytest.raises(KeyError, match=r"u0_report.json has no 'figure_formats', 'figures', "
                                       r"'n_events', 'binary', 'bins', 'binary_points'"):
        load_record("06_u0_analysis", tmp_path)
    with pytest.raises(FileNotFoundError, match="02_train has not written its record"):
        load_record("02_train", tmp_path)


def test_the_contract_helpers_name_what_is_wrong(monkeypatch):
    from microlens.workflow import notebooks

    with pytest.raises(KeyError, match="unknown config 'NoConfig'; valid: "):
        notebooks.config_fields("NoConfig")
    # a parameter that two configs of one notebook declare must say which it sets
    monkeypatch.setitem(notebooks.NOTEBOOK_CONFIGS, "02_train", ("TrainConfig", "TrainConfig"))
    with pytest.raises(ValueError, match="is a field of TrainConfig and TrainConfig; name the "
                                         "one it sets in RENAMED"):
        notebooks.mirrored_field("02_train", "epochs")
    monkeypatch.undo()
    with pytest.raises(ValueError, match="02_train's parameter no_such_field sets no field of"):
        notebooks.mirrored("02_train", "no_such_field")
    with pytest.raises(notebooks.RecordError, match="the record of 03_evaluate is not a JSON "
                                                    "object"):
        notebooks.check_record("03_evaluate", ["not", "a", "dict"])
