"""The study runner: study files, checks, expansion, resumable cells, summary and figures."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nbformat
import pytest
import yaml

from microlens.workflow.notebooks import DATASET, RUN
from microlens.workflow.studies import StudyError, load_study, plan_study, run_study
from microlens.workflow.studies.__main__ import main
from microlens.workflow.studies.definition import artifact_key
from microlens.workflow.studies.runner import notebook_parameters, select_cells

# Reading, checking and planning studies is quick (the fast tier); the tests that run notebooks
# through the runner are marked slow (the fast tier: ./run_all.sh test fast).
slow = pytest.mark.slow

TINY_PARAMETERS = {
    "01_simulate": {"n_per_class": 12, "n_epochs": 120, "gallery_per_class": 1,
                    "figure_formats": ["html"]},
    "02_train": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32, "epochs": 1,
                 "batch_size": 16, "show_live": False, "figure_formats": ["html"]},
    "03_evaluate": {"n_bootstrap": 20, "peer_workers": 1, "figure_formats": ["html"]},
}  # fmt: skip
TINY_NOTEBOOKS = ["01_simulate", "02_train", "03_evaluate"]


def write_study(directory: Path, name: str, **content) -> Path:
    study = {"notebooks": TINY_NOTEBOOKS, "common": {"show_widgets": False},
             "parameters": TINY_PARAMETERS, **content}
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# Study files, checks and expansion (nothing runs)
# --------------------------------------------------------------------------------------------


def test_shipped_studies_expand_into_named_cells():
    quick = load_study("quick")
    assert [c.name for c in quick.cells] == ["base"]
    assert quick.notebooks == ("01_simulate", "02_train", "03_evaluate", "04_attention",
                               "05_embedding", "06_u0_analysis", "07_real_events",
                               "08_real_benchmark", "09_parameters")
    survey = load_study("survey")
    assert [c.name for c in survey.cells] == [
        "survey=ogle", "survey=kmtnet", "survey=moa", "survey=roman"]
    assert survey.cells[0].parameters["01_simulate"]["survey"] == "ogle"
    topology = load_study("topology")
    assert [c.name for c in topology.cells] == [
        "topology=distinct", "topology=planetary", "topology=stellar", "topology=baseline"]
    assert topology.cells[1].parameters["01_simulate"]["topology"] == "planetary"
    assert "topology" not in topology.cells[1].parameters["02_train"]  # 02 does not declare it
    assert [c.name for c in load_study("cadence").cells][-1] == "cadence=cadence_50"
    assert [c.name for c in load_study("error").cells][0] == "error=error_003"
    thesis = load_study("thesis")
    assert len(thesis.cells) == 12 and {c.sweep for c in thesis.cells} == {0, 1, 2}


def test_cells_that_agree_share_datasets_and_runs_across_studies():
    def keys(study, cell):
        study = load_study(study)
        cell = next(c for c in study.cells if c.name == cell)
        return artifact_key(study, cell, DATASET), artifact_key(study, cell, RUN)

    baseline = keys("topology", "topology=baseline")
    assert keys("cadence", "cadence=cadence_15") == baseline
    assert keys("error", "error=error_005") == baseline
    stellar = keys("topology", "topology=stellar")
    assert stellar[0] != baseline[0] and stellar[1] != baseline[1]


def test_settings_that_do_not_change_an_artifact_keep_its_key(tmp_path):
    base = load_study(write_study(tmp_path, "a"))
    shown = load_study(write_study(tmp_path, "a"), {"gallery_per_class": 2, "processes": 2,
                                                    "03_evaluate.n_bootstrap": 30})
    trained = load_study(write_study(tmp_path, "a"), {"02_train.epochs": 2})
    for artifact in (DATASET, RUN):
        assert artifact_key(shown, shown.cells[0], artifact) == artifact_key(
            base, base.cells[0], artifact)
    assert artifact_key(trained, trained.cells[0], DATASET) == artifact_key(
        base, base.cells[0], DATASET)
    assert artifact_key(trained, trained.cells[0], RUN) != artifact_key(
        base, base.cells[0], RUN)


def test_grid_products_unions_and_notebook_keys(tmp_path):
    study = load_study(write_study(tmp_path, "g", grid=[
        {"topology": ["stellar", "planetary"], "03_evaluate.seed": [0, 1]},
        {"error": ["error_010"]}]))
    assert [c.name for c in study.cells] == [
        "topology=stellar,03_evaluate.seed=0", "topology=stellar,03_evaluate.seed=1",
        "topology=planetary,03_evaluate.seed=0", "topology=planetary,03_evaluate.seed=1",
        "error=error_010"]
    cell = study.cells[1]
    assert cell.parameters["03_evaluate"]["seed"] == 1
    assert "seed" not in cell.parameters["01_simulate"]
    assert "seed" not in cell.parameters["02_train"]
    everywhere = load_study(write_study(tmp_path, "s", grid={"seed": [5]}))
    assert {nb for nb, p in everywhere.cells[0].parameters.items() if p.get("seed") == 5} == {
        "01_simulate", "02_train", "03_evaluate"}


def test_the_models_study_trains_every_kind_on_one_data_set():
    from microlens.models.registry import KINDS, count_parameters
    from microlens.workflow.notebooks import train_config

    study = load_study("models")
    assert study.notebooks == ("01_simulate", "02_train", "03_evaluate")
    assert [c.name for c in study.cells] == [f"model_kind={k}" for k in KINDS]
    datasets = {artifact_key(study, c, DATASET) for c in study.cells}
    runs = {artifact_key(study, c, RUN) for c in study.cells}
    assert len(datasets) == 1 and len(runs) == len(KINDS)  # 01_simulate runs once
    topology = load_study("topology")
    stellar = next(c for c in topology.cells if c.name == "topology=stellar")
    assert datasets == {artifact_key(topology, stellar, DATASET)}  # shared with that study
    simulate = study.cells[0].resolved("01_simulate")
    assert (simulate["topology"], simulate["n_per_class"], simulate["seed"]) == (
        "stellar", 1000, 1)
    sizes = {}
    for cell in study.cells:
        training = cell.resolved("02_train")
        assert training["label_policy"] == "physical" and training["epochs"] == 2
        assert training["model_kind"] == cell.values["model_kind"]
        model = train_config(training).model
        if KINDS[model.kind].neural:
            sizes[model.kind] = count_parameters(model)
    assert study.cells[1].parameters["02_train"]["n_layers"] == 6  # cnn: its own depth
    assert study.cells[2].parameters["02_train"]["d_model"] == 80  # gru: its own width
    assert study.cells[0].parameters["02_train"]["n_layers"] == 2
    # the issue-14 networks are of comparable size; the masked kind is the transformer itself;
    # the VAE and the set models are sized by what trains in ~3 min on 2 cores (smaller)
    assert all(90_000 < sizes[k] < 300_000 for k in ("transformer", "cnn", "gru")), sizes
    assert sizes["masked"] == sizes["transformer"]
    assert all(15_000 < sizes[k] < 90_000 for k in ("rnn_vae", "deepsets", "set_transformer"))
    masked = next(c for c in study.cells if c.values["model_kind"] == "masked")
    assert masked.resolved("02_train")["pretrain_epochs"] == 4


def test_the_pretraining_study_pairs_both_arms_at_each_label_count():
    study = load_study("pretraining")
    cells = {(c.values["model_kind"], c.values["max_train_events"]): c for c in study.cells}
    assert set(cells) == {(k, n) for k in ("transformer", "masked") for n in (24, 240, 0)}
    for n in (24, 240, 0):  # both arms: the same training but for the kind
        scratch, pretrained = (cells[(k, n)].resolved("02_train")
                               for k in ("transformer", "masked"))
        differ = {k for k in scratch if scratch[k] != pretrained[k]}
        assert differ == {"model_kind"}, differ
        assert scratch["max_val_events"] == 100
    peer = [c.values for c in study.cells if c.resolved("03_evaluate")["classical_peer"]]
    assert peer == [{"model_kind": "transformer", "max_train_events": 0}]  # the peer once


def test_per_cell_settings_reach_the_cells_they_select(tmp_path):
    path = write_study(tmp_path, "c", grid={"topology": ["stellar", "planetary"],
                                             "02_train.seed": [0, 1]},
                       cells={"topology=planetary": {"02_train": {"epochs": 2}},
                              "topology=planetary,02_train.seed=1": {
                                  "03_evaluate": {"n_bootstrap": 7}},
                              "02_train.seed=0": {"02_train": {"d_model": 8}}})
    study = load_study(path)
    by_name = {c.name: c.parameters for c in study.cells}
    assert by_name["topology=stellar,02_train.seed=0"]["02_train"]["epochs"] == 1
    assert by_name["topology=planetary,02_train.seed=0"]["02_train"]["epochs"] == 2
    assert by_name["topology=planetary,02_train.seed=1"]["03_evaluate"]["n_bootstrap"] == 7
    assert by_name["topology=planetary,02_train.seed=0"]["03_evaluate"]["n_bootstrap"] == 20
    assert [p["02_train"]["d_model"] for p in by_name.values()] == [8, 16, 8, 16]
    plans = plan_study(study, outputs=tmp_path / "o", data=tmp_path / "d")
    assert len({p.artifacts["dataset"]["key"] for p in plans}) == 2  # per topology
    assert len({p.artifacts["run"]["key"] for p in plans}) == 4
    # the runner's --set still applies to every cell, after the per-cell settings
    overridden = load_study(path, {"02_train.epochs": 3})
    assert {c.parameters["02_train"]["epochs"] for c in overridden.cells} == {3}


@pytest.mark.parametrize(("cells", "message"), [
    ({"model=cnn": {"02_train": {"epochs": 2}}}, "'model' is not a grid key; grid keys: topology"),
    ({"topology=planetry": {"02_train": {"epochs": 2}}},
     "'planetry' is not a value of the grid's topology; its values: stellar, planetary"),
    ({"stellar": {"02_train": {"epochs": 2}}}, "must be GRID_KEY=VALUE"),
    ({"topology=stellar": {"01_simulate": {"topology": "baseline"}}},
     "01_simulate.topology is swept by the study's grid"),
    ({"topology=stellar": {"02_train": {"epoch": 2}}}, "02_train declares no parameter 'epoch'"),
    ({"topology=stellar": {"02_train": {"epochs": 2.5}}},
     "is a float, but the notebook declares an int"),
    ({"topology=stellar": {"04_attention": {"seed": 1}}}, "is not among the study's notebooks"),
    ({"topology=stellar": {"02_train": {"run_name": "x"}}}, "set by the study runner"),
    ({"topology=stellar": {}}, "no settings"),
    ({"topology=stellar": ["epochs"]}, "must be a mapping"),
    ({"topology=stellar": {"02_train": {"epochs": 0}}},
     "cell topology=stellar,03_evaluate.seed=0: 02_train would fail"),
    ({"topology=stellar": {"02_train": {"epochs": 2}},
      "topology=stellar,03_evaluate.seed=0": {"02_train": {"epochs": 3}}},
     "both match cell topology=stellar,03_evaluate.seed=0 and set 02_train.epochs differently"),
])  # fmt: skip
def test_invalid_per_cell_settings_are_rejected_clearly(tmp_path, cells, message):
    grid = {"topology": ["stellar", "planetary"], "03_evaluate.seed": [0]}
    with pytest.raises(StudyError) as error:
        load_study(write_study(tmp_path, "bad", grid=grid, cells=cells))
    assert message in str(error.value)


def test_per_cell_settings_need_a_cell_to_select(tmp_path):
    with pytest.raises(StudyError, match="the study has no grid"):
        load_study(write_study(tmp_path, "a", cells={"topology=stellar": {"02_train": {
            "epochs": 2}}}))
    union = [{"topology": ["stellar"]}, {"02_train.seed": [1]}]
    with pytest.raises(StudyError, match="topology=stellar,02_train.seed=1 matches no cell"):
        load_study(write_study(tmp_path, "b", grid=union, cells={
            "topology=stellar,02_train.seed=1": {"02_train": {"epochs": 2}}}))


@pytest.mark.parametrize(("content", "message"), [
    ({"grid": {"n_per_clas": [1]}}, "no notebook of the study declares a parameter 'n_per_clas'"),
    ({"parameters": {"02_train": {"epoch": 1}}}, "02_train declares no parameter 'epoch'"),
    ({"grid": {"02_train.epochs": [1.5]}}, "is a float, but the notebook declares an int"),
    ({"grid": {"topology": ["planetry"]}}, "valid: distinct, planetary, stellar, baseline"),
    ({"parameters": {"02_train": {"run_name": "x"}}}, "set by the study runner"),
    ({"parameters": {"03_evaluate": {"run_dir": "x"}}}, "set by the study runner"),
    ({"notebooks": ["01_simulate", "07_nope"]}, "unknown notebook '07_nope'; valid: 01_simulate"),
    ({"grids": {}}, "unknown key(s) ['grids']"),
    ({"grid": {"topology": []}}, "non-empty list"),
    ({"grid": {"04_attention.seed": [1]}}, "which the study does not run"),
    ({"grid": {"03_evaluate.device": ["tpu"]}}, "'tpu' is not valid; valid: auto, cpu, cuda"),
    ({"common": {"figure_formats": ["htm"]}}, "has unknown formats; valid: html, png, pdf"),
    ({"grid": {"03_evaluate.seed": [0]}, "common": {"figure_formats": "html"}},
     "is a str, but the notebook declares a list"),
])  # fmt: skip
def test_invalid_studies_are_rejected_with_the_valid_choices(tmp_path, content, message):
    with pytest.raises(StudyError) as error:
        load_study(write_study(tmp_path, "bad", **content))
    assert message in str(error.value)


def test_overrides_may_not_change_what_the_grid_sweeps(tmp_path):
    with pytest.raises(StudyError, match="01_simulate.topology is swept by the study's grid"):
        load_study("topology", {"topology": "stellar"})
    changed = load_study("topology", {"02_train.epochs": 2})
    assert {c.parameters["02_train"]["epochs"] for c in changed.cells} == {2}


def test_a_study_file_may_not_take_over_another_studys_outputs(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    outputs = tmp_path / "outputs"
    (outputs / "same").mkdir(parents=True)
    (outputs / "same" / "study.json").write_text(json.dumps(
        {"path": str(write_study(first, "same"))}))
    with pytest.raises(StudyError, match="holds the outputs of .*a/same.yaml"):
        run_study(load_study(write_study(second, "same")), outputs=outputs,
                  data=tmp_path / "data", progress=False)


def test_unknown_study_and_cells_name_the_valid_ones(tmp_path):
    with pytest.raises(StudyError, match="valid: cadence, error, models, pretraining, quick, "
                                         "real, recommended, survey, thesis, topology"):
        load_study("topologies")
    plans = plan_study(load_study("topology"), outputs=tmp_path / "o", data=tmp_path / "d")
    assert [p.cell.name for p in select_cells(plans, ["topology=st*"])] == ["topology=stellar"]
    with pytest.raises(StudyError, match="matches no cell; cells: topology=distinct"):
        select_cells(plans, ["topology=nope"])


def test_notebooks_are_chained_through_the_runner_paths(tmp_path):
    study = load_study(write_study(tmp_path, "chain"))
    plan = plan_study(study, outputs=tmp_path / "o", data=tmp_path / "d")[0]
    task = plan.task(study.notebooks)
    dataset, run = Path(plan.artifacts["dataset"]["path"]), Path(plan.artifacts["run"]["path"])
    assert dataset.parent == tmp_path / "d" / "studies"
    assert run.parent == tmp_path / "o" / "runs" / "studies"
    out = tmp_path / "cell"
    simulate = notebook_parameters(task, "01_simulate", out, {})
    assert simulate["dataset_dir"] == str(dataset) and simulate["overwrite"] is False
    assert simulate["output_dir"] == str(out) and simulate["n_per_class"] == 12
    made = {"dataset": "/made/dataset", "run": "/made/run"}
    training = notebook_parameters(task, "02_train", out, made)
    assert training["dataset_dir"] == "/made/dataset"
    assert (training["runs_dir"], training["run_name"]) == (str(run.parent), run.name)
    assert training["resume"] is True and training["overwrite"] is False
    evaluation = notebook_parameters(task, "03_evaluate", out, made)
    assert evaluation["run_dir"] == "/made/run" and evaluation["dataset_dir"] == "/made/dataset"


def test_undeclared_parameter_is_rejected_before_anything_runs(tmp_path, capsys):
    path = write_study(tmp_path, "typo", grid={"topology": ["stellar"]},
                       parameters={**TINY_PARAMETERS, "03_evaluate": {"n_bootstrapp": 5}})
    outputs, data = tmp_path / "outputs", tmp_path / "data"
    code = main(["run", str(path), "--outputs", str(outputs), "--data", str(data)])
    assert code == 2
    err = capsys.readouterr().err
    assert "03_evaluate declares no parameter 'n_bootstrapp'" in err and "n_bootstrap" in err
    assert not outputs.exists() and not data.exists()


# --------------------------------------------------------------------------------------------
# Running a tiny study
# --------------------------------------------------------------------------------------------


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def mtimes(directory: Path, pattern: str) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(directory.glob(pattern))}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A two-cell study (stellar and planetary binaries), run once."""
    root = tmp_path_factory.mktemp("study")
    path = write_study(root, "tiny", grid={"topology": ["stellar", "planetary"]},
                       description="two tiny cells")
    code = main(["run", str(path), "--outputs", str(root / "outputs"),
                 "--data", str(root / "data"), "--quiet"])
    assert code == 0
    return {"path": path, "outputs": root / "outputs", "data": root / "data",
            "dir": root / "outputs" / "tiny"}


@slow
def test_both_cells_complete_with_their_outputs(tiny):
    for cell, topology in (("topology=stellar", "stellar"), ("topology=planetary", "planetary")):
        folder = tiny["dir"] / cell
        record = json.loads((folder / "cell.json").read_text())
        assert record["status"] == "complete" and record["values"] == {"topology": topology}
        for notebook in TINY_NOTEBOOKS:
            nbformat.read(folder / f"{notebook}.ipynb", as_version=4)  # executed and saved
        simulate = json.loads((folder / "simulate_metrics.json").read_text())
        assert simulate["config"]["topology"] == topology
        assert simulate["dataset_dir"] == record["artifacts"]["dataset"]["path"]
        evaluation = json.loads((folder / "evaluation_summary.json").read_text())
        assert evaluation["run_dir"] == record["artifacts"]["run"]["path"]
        assert evaluation["dataset"] == simulate["dataset_dir"]
        assert (folder / "confusion.html").is_file() and (folder / "gallery.html").is_file()
    assert not list(tiny["dir"].glob("*.partial"))


@slow
def test_summary_has_one_row_per_cell_with_its_parameters_and_metrics(tiny):
    rows = read_csv(tiny["dir"] / "summary.csv")
    assert [(r["cell"], r["topology"], r["status"]) for r in rows] == [
        ("topology=stellar", "stellar", "complete"),
        ("topology=planetary", "planetary", "complete")]
    for row in rows:
        folder = tiny["dir"] / row["cell"]
        headline = json.loads((folder / "evaluation_summary.json").read_text())["headline"]
        for key in ("accuracy", "macro_f1", "binary_precision", "binary_recall", "macro_auc",
                    "ece_after", "accuracy_at_50pct", "peer_accuracy"):
            assert float(row[key]) == pytest.approx(headline[key]), key
        assert float(row["model_events_per_second"]) == pytest.approx(
            1 / headline["model_seconds_per_event"])
        assert int(float(row["n_test_events"])) == 3  # 12 per class, 10 % test split


@slow
def test_a_rerun_skips_finished_cells(tiny):
    before = {c: mtimes(tiny["dir"] / c, "*.ipynb") for c in ("topology=stellar",
                                                               "topology=planetary")}
    run = run_study(load_study(tiny["path"]), outputs=tiny["outputs"], data=tiny["data"],
                    progress=False, echo=lambda _: None)
    assert run.results == [] and run.skipped == ["topology=stellar", "topology=planetary"]
    assert {c: mtimes(tiny["dir"] / c, "*.ipynb") for c in before} == before


@slow
def test_changed_parameters_mark_cells_for_a_rerun(tiny):
    study = load_study(tiny["path"], {"03_evaluate.n_bootstrap": 25})
    plans = plan_study(study, outputs=tiny["outputs"], data=tiny["data"])
    assert [p.status for p in plans] == ["changed", "changed"]
    done = plan_study(load_study(tiny["path"]), outputs=tiny["outputs"], data=tiny["data"])
    assert [p.artifacts for p in plans] == [p.artifacts for p in done]  # same data and runs


@slow
def test_figures_are_rebuilt_from_the_outputs_without_running_notebooks(tiny):
    cell = tiny["dir"] / "topology=stellar"
    notebooks = mtimes(cell, "*.ipynb")
    records = mtimes(cell, "*.json")
    for name in ("confusion.html", "gallery.html", "training_curves.html"):
        (cell / name).unlink()
    for path in (tiny["dir"] / "figures").glob("*"):
        path.unlink()
    code = main(["figures", "tiny", "--outputs", str(tiny["outputs"]), "--formats", "html",
                 "--quiet"])
    assert code == 0
    for name in ("confusion.html", "gallery.html", "training_curves.html"):
        assert (cell / name).is_file()
    assert mtimes(cell, "*.ipynb") == notebooks
    assert mtimes(cell, "*.json") == records
    figures = tiny["dir"] / "figures"
    assert (figures / "study_metrics.html").is_file()
    assert (figures / "study_early_detection.html").is_file()
    index = (figures / "index.html").read_text()
    assert "study_metrics" in index and "study_early_detection" in index
    for cell_name in ("topology=stellar", "topology=planetary"):
        assert f"Cell {cell_name}" in index
        assert f"cell {cell_name}, 03_evaluate" in index
        assert f"cell {cell_name}, 01_simulate" in index
    assert "confusion.html" in index


@slow
def test_force_reruns_the_selected_cell_and_remakes_its_data(tiny):
    planetary, stellar = tiny["dir"] / "topology=planetary", tiny["dir"] / "topology=stellar"
    before = mtimes(planetary, "*.ipynb")
    untouched = mtimes(stellar, "*")
    run = run_study(load_study(tiny["path"]), only=["topology=planetary"], force=True,
                    outputs=tiny["outputs"], data=tiny["data"], progress=False,
                    echo=lambda _: None)
    assert [r["status"] for r in run.results] == ["complete"]
    after = mtimes(planetary, "*.ipynb")
    assert after.keys() == before.keys() and all(after[k] > before[k] for k in before)
    record = json.loads((planetary / "cell.json").read_text())
    assert record["artifacts"]["dataset"]["made_by_this_cell"] is True
    assert record["artifacts"]["run"]["made_by_this_cell"] is True
    assert mtimes(stellar, "*") == untouched


@slow
def test_a_failing_cell_is_reported_and_does_not_stop_the_other(tmp_path, capsys):
    # Both cells share the data set and the run (only the evaluation differs); with two jobs
    # they race for them, and the lock makes each once. n_events -1 fails inside 03_evaluate.
    path = write_study(tmp_path, "failing", grid={"03_evaluate.n_events": [0, -1]})
    args = ["run", str(path), "--outputs", str(tmp_path / "o"), "--data", str(tmp_path / "d"),
            "--jobs", "2", "--quiet"]
    assert main(args) == 1
    err = capsys.readouterr().err
    study = tmp_path / "o" / "failing"
    failed = study / "03_evaluate.n_events=-1.partial"
    assert "03_evaluate.n_events=-1: 03_evaluate: ValueError: n_events must be >= 0" in err
    assert str(failed / "03_evaluate.ipynb") in err
    executed = nbformat.read(failed / "03_evaluate.ipynb", as_version=4)
    assert any(o.get("output_type") == "error" for c in executed.cells
               for o in c.get("outputs", []))
    good = json.loads((study / "03_evaluate.n_events=0" / "cell.json").read_text())
    bad = json.loads((failed / "cell.json").read_text())
    assert good["status"] == "complete" and bad["status"] == "failed"
    for kind in ("dataset", "run"):
        assert good["artifacts"][kind]["path"] == bad["artifacts"][kind]["path"]
        made = [good["artifacts"][kind]["made_by_this_cell"],
                bad["artifacts"][kind]["made_by_this_cell"]]
        assert sorted(made) == [False, True], kind
    rows = {r["cell"]: r for r in read_csv(study / "summary.csv")}
    assert rows["03_evaluate.n_events=0"]["status"] == "complete"
    assert rows["03_evaluate.n_events=-1"]["status"] == "failed"
    assert "n_events must be >= 0" in rows["03_evaluate.n_events=-1"]["error"]

    # A second run resumes the failed cell at the notebook that failed.
    kept = mtimes(failed, "0[12]_*.ipynb")
    run = run_study(load_study(path), outputs=tmp_path / "o", data=tmp_path / "d",
                    progress=False, echo=lambda _: None)
    assert run.skipped == ["03_evaluate.n_events=0"] and len(run.failed) == 1
    assert mtimes(failed, "0[12]_*.ipynb") == kept
    record = json.loads((failed / "cell.json").read_text())
    assert [n.get("resumed", False) for n in record["notebooks"]] == [True, True, False]


# --------------------------------------------------------------------------------------------
# Checks of values, the study list, progress, interrupts and stale folders
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "message"), [
    (["--set", "01_simulate.n_per_class=-5"],
     "cell topology=stellar: 01_simulate would fail: n_per_class must be positive, got -5"),
    (["--set", "02_train.epochs=0"],
     "02_train would fail: TrainConfig.epochs must be a positive integer"),
    (["--set", "02_train.n_heads=3"], "d_model=16 is not divisible by n_heads=3"),
    (["--processes", "0"], "--processes must be at least 1, got 0"),
    (["--jobs", "0"], "--jobs must be at least 1 (cells run in parallel), got 0"),
])  # fmt: skip
def test_dry_run_checks_values_as_the_run_does(tmp_path, capsys, extra, message):
    path = write_study(tmp_path, "values", grid={"topology": ["stellar"]})
    outputs, data = tmp_path / "outputs", tmp_path / "data"
    for mode in (["--dry-run"], []):
        code = main(["run", str(path), "--outputs", str(outputs), "--data", str(data),
                     "--quiet", *mode, *extra])
        assert code == 2
        assert message in capsys.readouterr().err
    assert not outputs.exists() and not data.exists()


def test_a_grid_value_that_the_config_refuses_names_its_cell(tmp_path):
    with pytest.raises(StudyError, match=r"cell 02_train.epochs=0: 02_train would fail: "
                                         r"TrainConfig.epochs must be a positive integer, got 0"):
        load_study(write_study(tmp_path, "g", grid={"02_train.epochs": [1, 0]}))


def test_list_reports_a_broken_study_file_and_lists_the_others(tmp_path, monkeypatch, capsys):
    import microlens.workflow.studies.definition as definition

    write_study(tmp_path, "good", description="a good one")
    (tmp_path / "broken.yaml").write_text("notebooks: [01_simulate\n", encoding="utf-8")
    (tmp_path / "wrong.yaml").write_text("notebooks: [01_simulate]\ngrids: {}\n",
                                         encoding="utf-8")
    monkeypatch.setattr(definition, "STUDY_DIR", tmp_path)
    assert main(["list"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("good         1 cells  a good one") and out.count("\n") == 1
    assert "broken     INVALID: broken.yaml is not valid YAML" in err
    assert "wrong      INVALID: wrong.yaml: unknown key(s) ['grids']" in err
    assert main(["list", "good"]) == 0
    assert capsys.readouterr().out.strip() == "base"
    assert main(["list", "broken"]) == 2
    assert "broken.yaml is not valid YAML" in capsys.readouterr().err


def _progress_task(tmp_path: Path, notebook: str, running_since: float) -> dict:
    from microlens.workflow.studies.runner import CELL_RECORD

    run = tmp_path / "run"
    task = {"cell": "base", "key": "k1", "directory": str(tmp_path / "base"),
            "notebooks": TINY_NOTEBOOKS, "parameters": {nb: {} for nb in TINY_NOTEBOOKS},
            "artifacts": {"run": {"key": "r", "path": str(run)}}}
    task["parameters"]["02_train"]["epochs"] = 5
    partial = tmp_path / "base.partial"
    partial.mkdir(exist_ok=True)
    (partial / CELL_RECORD).write_text(json.dumps(
        {"key": "k1", "status": "running", "notebooks": [], "running": notebook,
         "running_since": running_since}))
    return task


def test_progress_shows_the_notebook_and_the_training_epoch_with_the_time_left(tmp_path):
    from microlens.workflow.studies.runner import cell_progress

    task = _progress_task(tmp_path, "02_train", running_since=1000.0)
    assert cell_progress(task, now=1030.0) == "base: 02_train (2/3), epoch 0/5, 30 s so far"
    (tmp_path / "run").mkdir()
    with open(tmp_path / "run" / "history.csv", "w", encoding="utf-8") as handle:
        handle.write("epoch,train_loss,epoch_seconds\n1,0.9,10.0\n2,0.8,20.0\n")
    # two epochs done at 15 s each on average, three to go
    assert cell_progress(task, now=1030.0) == "base: 02_train (2/3), epoch 2/5, 45 s left"
    assert cell_progress(task, since=2000.0) is None  # left by an earlier, interrupted run
    evaluation = _progress_task(tmp_path, "03_evaluate", running_since=1000.0)
    assert cell_progress(evaluation, now=1200.0) == "base: 03_evaluate (3/3), 3 min"
    evaluation["key"] = "another"
    assert cell_progress(evaluation, now=1200.0) is None


def _fake_cells(interrupt):
    """A run_cell that completes the first cell and interrupts the second."""
    calls = []

    def run_cell(task, on_notebook=None):
        calls.append(task["cell"])
        if len(calls) == 1:
            return {"cell": task["cell"], "status": "complete", "directory": task["directory"],
                    "seconds": 1.0}
        interrupt()
        raise AssertionError("not interrupted")

    return run_cell


def _sigterm():
    import os
    import signal
    import time

    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(10)


def _sigint():
    raise KeyboardInterrupt


@pytest.mark.parametrize(("interrupt", "name", "code"), [(_sigint, "SIGINT", 130),
                                                         (_sigterm, "SIGTERM", 143)])
def test_an_interrupted_study_says_what_finished_and_how_to_resume(
        tmp_path, monkeypatch, capsys, interrupt, name, code):
    import signal

    import microlens.workflow.studies.runner as runner

    monkeypatch.setattr(runner, "run_cell", _fake_cells(interrupt))
    handler = signal.getsignal(signal.SIGTERM)
    path = write_study(tmp_path, "stop", grid={"topology": ["stellar", "planetary", "distinct"]})
    args = ["run", str(path), "--outputs", str(tmp_path / "o"), "--data", str(tmp_path / "d"),
            "--quiet"]
    assert main(args) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line, no traceback
    assert err.startswith(f"study stop interrupted by {name}: 1 of 3 cell(s) finished "
                          "(topology=stellar); unfinished: topology=planetary, topology=distinct")
    assert f"Run the same command again (python -m microlens.workflow.studies run {path}" in err
    assert "to resume" in err
    assert signal.getsignal(signal.SIGTERM) is handler  # restored


@slow
def test_a_stale_partial_beside_a_finished_cell_is_named_then_removed(tiny, capsys):
    from microlens.workflow.studies.runner import remove_stale_partials

    stale = tiny["dir"] / "topology=stellar.partial"
    stale.mkdir()
    (stale / "cell.json").write_text(json.dumps({"key": "old", "status": "failed"}))
    args = ["run", str(tiny["path"]), "--outputs", str(tiny["outputs"]), "--data",
            str(tiny["data"]), "--quiet"]
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"stale: {stale} (an unfinished run beside the finished cell" in out
    assert stale.is_dir()
    # beside a cell finished with other parameters it is the rerun's state: kept
    changed = plan_study(load_study(tiny["path"], {"03_evaluate.n_bootstrap": 25}),
                         outputs=tiny["outputs"], data=tiny["data"])
    assert remove_stale_partials(changed, echo=print) == [] and stale.is_dir()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "removed 1 stale unfinished folder(s) beside finished cells: " \
           "topology=stellar.partial" in out
    assert not stale.exists() and (tiny["dir"] / "topology=stellar" / "cell.json").is_file()


@slow
def test_sigterm_during_a_notebook_ends_the_study_with_143_and_the_cell_resumes(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    path = write_study(tmp_path, "term", grid={"topology": ["stellar"]})
    outputs, data = tmp_path / "o", tmp_path / "d"
    record = outputs / "term" / "topology=stellar.partial" / "cell.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "microlens.workflow.studies", "run", str(path),
         "--outputs", str(outputs),
         "--data", str(data), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while '"running": "01_simulate"' not in (record.read_text() if record.is_file() else ""):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143
    assert err.strip() == (
        "study term interrupted by SIGTERM: none of its 1 cell(s) finished; unfinished: "
        f"topology=stellar. Run the same command again (python -m microlens.workflow.studies run "
        f"{path} "
        f"--outputs {outputs} --data {data} --quiet) to resume: finished cells are skipped, "
        "finished notebooks are not rerun and an interrupted training continues from its last "
        "epoch.")
    plans = plan_study(load_study(path), outputs=outputs, data=data)
    assert [p.status for p in plans] == ["partial"]
