"""The notebooks' registry (microlens.notebooks) against the notebooks themselves.

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

from microlens import figures
from microlens.notebooks import (
    ARTIFACTS,
    NOTEBOOKS,
    RecordError,
    check_record,
    get_notebook,
    load_record,
    save_outputs,
)
from microlens.studies import available_notebooks, declared_parameters

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
    from microlens.model import ModelConfig
    from microlens.train import TrainConfig

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
            (train, {"epochs": 0}, "TrainConfig.epochs must be positive, got 0"),
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
