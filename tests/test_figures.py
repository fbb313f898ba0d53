"""microlens.workflow.figures: every notebook figure rebuilt from what the notebook recorded.

The notebooks 01-07 run once per session (the notebook chain of ``tests/chain.py``, tiny
parameters, HTML only, shared with the notebook tests); a copy of their output directory has
its figures deleted and rebuilt from the records alone, and they must come back identical.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from chain import CHAIN_NOTEBOOKS, EMBEDDING, SIMULATE
from helpers import figure_json
from notebook_form import NOTEBOOKS, assert_figures_written

from microlens.evaluation.analysis import (
    Projection,
    binary_points,
    embedding_table,
    physical_limits,
)
from microlens.evaluation.predictions import run_predictions
from microlens.models.holdout import select_test_events
from microlens.reports import StaticExportWarning, find_browser
from microlens.workflow.figures import (
    NOTEBOOK_RECORDS,
    PROJECTIONS_FILE,
    limits_figures,
    load_projections,
    main,
    notebook_figures,
    points_record,
    rebuild_figures,
    save_projections,
)

pytestmark = pytest.mark.slow  # the fast tier: ./run_all.sh test fast

FIGURES = {
    "01_simulate": ["detectability", "gallery"],
    "02_train": ["training_curves"],
    "03_evaluate": ["confidence", "confusion", "dchi2_recall", "decision_time", "early_detection",
                    "peer_comparison", "precision_recall", "reliability", "roc"],
    "04_attention": ["attention_band", "attention_event", "attention_gallery", "attention_layers",
                     "attention_statistics"],
    "05_embedding": ["embedding_pca", "embedding_tsne"],
    "06_u0_analysis": ["binary_parameters", "physical_limits"],
    "07_real_events": ["real_event_MB08310", "real_event_OB03235", "real_event_OB05086",
                       "real_event_OB08092", "real_event_OB140939", "real_event_OB161195",
                       "real_events_table", "sky_beside_simulation"],
    "08_real_benchmark": ["real_benchmark_bins", "real_benchmark_table",
                          "real_benchmark_threshold", "real_benchmark_timing"],
}
def assert_same_figure(a, b, where: str = "") -> None:
    """Equal structure and values; floats to 1e-9 relative (a binary model curve depends on
    VBBinaryLensing's call history in the last digits, see microlens.data.store)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_same_figure(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_figure(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray) or isinstance(a, float):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=0, err_msg=where)
    else:
        assert type(a) is type(b) and a == b, (where, a, b)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, notebook_chain):
    """A copy of the session's notebook chain (01-07, HTML only: tests/chain.py): its output
    directory ``out`` and the executed notebooks, which these tests may delete and rebuild in.
    01 ran on its own tiny data set, 02 a tiny run on ``eval_store``, 03-07 on ``eval_run``."""
    chain = notebook_chain.ran()
    tmp = tmp_path_factory.mktemp("figures")
    shutil.copytree(chain.out, tmp / "out")
    for notebook in CHAIN_NOTEBOOKS:
        shutil.copy2(chain.executed(notebook), tmp)
    return tmp


def test_records_list_their_figures_and_formats(outputs):
    out = outputs / "out"
    for notebook in CHAIN_NOTEBOOKS:  # 09_parameters needs a run with heads: not in the chain
        record = NOTEBOOK_RECORDS[notebook]
        assert (NOTEBOOKS / f"{notebook}.ipynb").is_file()
        data = json.loads((out / record).read_text())
        assert data["figures"] == FIGURES[notebook], notebook
        assert data["figure_formats"] == ["html"], notebook
    simulate = json.loads((out / "simulate_metrics.json").read_text())
    assert simulate["gallery"] == {"per_class": SIMULATE["gallery_per_class"],
                                   "seed": SIMULATE["seed"]}
    report = json.loads((out / "u0_report.json").read_text())
    assert set(report["binary_points"]) == {"index", "s", "q", "u_0", "dchi2_pspl", "correct",
                                            "predicted"}
    assert len(report["binary_points"]["s"]) == report["binary"]["n_binary"]
    assert not list(out.glob("*.png")) and not list(out.glob("*.pdf"))  # only what was asked


def test_embedding_projections_file(outputs, eval_store):
    rows, projections, predicted, confidence = load_projections(
        outputs / "out" / PROJECTIONS_FILE)
    summary = json.loads((outputs / "out" / "embedding_summary.json").read_text())
    n_events, seed = EMBEDDING["n_events"], EMBEDDING["seed"]
    assert np.array_equal(rows, select_test_events(eval_store, n=n_events, seed=seed))
    assert [p.method for p in projections] == ["pca", "tsne"]
    for p in projections:
        assert p.coords.shape == (n_events, 2) and p.seed == seed
        assert p.info.items() <= summary["projections"][p.method].items()
    assert predicted.shape == confidence.shape == (n_events,)
    assert np.all((confidence >= 1 / 3) & (confidence <= 1))
    assert np.mean(predicted == eval_store.labels[rows]) == pytest.approx(
        summary["model_accuracy"])


def test_rebuild_gives_back_identical_figures(outputs):
    out = outputs / "out"
    figures = sorted(out / f"{name}.html" for names in FIGURES.values() for name in names)
    assert sorted(out.glob("*.html")) == figures
    original = {path: figure_json(path) for path in figures}
    kept = sorted([*outputs.glob("*.executed.ipynb"),
                   *(out / NOTEBOOK_RECORDS[n] for n in CHAIN_NOTEBOOKS),
                   out / PROJECTIONS_FILE, out / "test_predictions.npz",
                   out / "real_events_series.npz"])
    mtimes = {path: path.stat().st_mtime_ns for path in kept}
    for path in figures:
        path.unlink()

    written = rebuild_figures(out)

    assert sorted(written) == figures  # the records ask for HTML only
    assert sorted(out.glob("*.html")) == figures
    for path in figures:
        assert_same_figure(original[path], figure_json(path), path.name)
    assert {path: path.stat().st_mtime_ns for path in kept} == mtimes
    assert not list(out.glob(".*tmp*")) and not list(out.glob("*.tmp*"))


def copy_records(source: Path, destination: Path, *notebooks: str) -> Path:
    destination.mkdir(parents=True, exist_ok=True)
    for notebook in notebooks:
        shutil.copy2(source / NOTEBOOK_RECORDS[notebook], destination)
    return destination


def test_rebuild_honours_formats_and_notebooks(outputs, tmp_path):
    out = copy_records(outputs / "out", tmp_path / "out", "03_evaluate", "06_u0_analysis")
    written = rebuild_figures(out, notebooks=["06_u0_analysis"])
    assert sorted(p.name for p in written) == ["binary_parameters.html", "physical_limits.html"]
    assert sorted(p.name for p in out.glob("*.html")) == sorted(p.name for p in written)

    # the one test of static export (PNG and PDF through Chromium); HTML everywhere else
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = rebuild_figures(out, formats=["html", "png", "pdf"],
                                  notebooks=["06_u0_analysis"])
    names = sorted(p.name for p in written)
    if find_browser() is not None:
        assert names == ["binary_parameters.html", "binary_parameters.pdf",
                         "binary_parameters.png", "physical_limits.html", "physical_limits.pdf",
                         "physical_limits.png"]
        assert all(p.stat().st_size > 1000 for p in written)
        assert_figures_written(out, ["binary_parameters", "physical_limits"],
                               formats=("html", "png", "pdf"))  # and PNG, PDF signatures
    else:
        assert names == ["binary_parameters.html", "physical_limits.html"]
        assert all(issubclass(w.category, StaticExportWarning) for w in caught)

    written = rebuild_figures(out)  # every record present, in its own formats
    assert sorted(p.stem for p in written) == sorted(FIGURES["03_evaluate"]
                                                     + FIGURES["06_u0_analysis"])


def test_command_line(outputs, tmp_path, capsys):
    out = copy_records(outputs / "out", tmp_path / "out", "03_evaluate")
    main([str(out), "--notebooks", "03_evaluate", "--formats", "html"])
    printed = capsys.readouterr().out.split()
    assert sorted(Path(p).stem for p in printed) == FIGURES["03_evaluate"]
    assert all(Path(p).is_file() and Path(p).parent == out for p in printed)


def test_clear_errors(outputs, tmp_path):
    out = copy_records(outputs / "out", tmp_path / "out", *CHAIN_NOTEBOOKS)
    record = json.loads((out / "train_metrics.json").read_text())
    record["run_dir"] = str(tmp_path / "deleted_run")
    (out / "train_metrics.json").write_text(json.dumps(record))
    with pytest.raises(FileNotFoundError, match=r"deleted_run.*run directory"):
        rebuild_figures(out)
    assert not list(out.glob("*.html"))  # nothing is written when one record is broken
    with pytest.raises(FileNotFoundError, match="embedding_projections.npz"):
        rebuild_figures(out, notebooks=["05_embedding"])  # the .npz was not copied

    record = json.loads((out / "simulate_metrics.json").read_text())
    record["dataset_dir"] = str(tmp_path / "deleted_data")
    (out / "simulate_metrics.json").write_text(json.dumps(record))
    with pytest.raises(FileNotFoundError, match=r"deleted_data.*dataset"):
        notebook_figures(out, "01_simulate")

    record = json.loads((out / "u0_report.json").read_text())
    del record["figure_formats"]
    (out / "u0_report.json").write_text(json.dumps(record))
    with pytest.raises(KeyError, match="no 'figure_formats': .*run the notebook again"):
        rebuild_figures(out, notebooks=["06_u0_analysis"])
    with pytest.raises(KeyError, match="figure_formats"):  # records are checked when read
        rebuild_figures(out, formats=["html"], notebooks=["06_u0_analysis"])
    record["figure_formats"], record["n_bins"] = ["html"], 3
    record["threshold"] = "100"
    (out / "u0_report.json").write_text(json.dumps(record))
    with pytest.raises(KeyError, match="u0_report.json: threshold = '100' is a str, expected"):
        rebuild_figures(out, notebooks=["06_u0_analysis"])

    with pytest.raises(ValueError, match="unknown notebook"):
        rebuild_figures(out, notebooks=["07_nothing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no notebook record"):
        rebuild_figures(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="attention_summary.json"):
        rebuild_figures(copy_records(out, tmp_path / "only03", "03_evaluate"),
                        notebooks=["04_attention"])


def test_projections_round_trip_without_pickle(tmp_path, eval_store):
    rows = select_test_events(eval_store, n=6, seed=0)
    projections = [Projection(np.arange(12.0).reshape(6, 2), "pca", 3,
                              {"explained_variance_ratio": [0.5, 0.25]})]
    path = save_projections(tmp_path / PROJECTIONS_FILE, rows, projections, np.arange(6) % 3,
                            np.linspace(0.4, 0.9, 6))
    assert sorted(p.name for p in tmp_path.iterdir()) == [PROJECTIONS_FILE]
    with np.load(path, allow_pickle=False) as data:
        assert all(data[key].dtype != object for key in data.files)
    loaded_rows, loaded, predicted, confidence = load_projections(path)
    assert np.array_equal(loaded_rows, rows) and np.array_equal(predicted, np.arange(6) % 3)
    assert np.array_equal(confidence, np.linspace(0.4, 0.9, 6))
    assert loaded[0].method == "pca" and loaded[0].seed == 3
    assert np.array_equal(loaded[0].coords, projections[0].coords)
    assert loaded[0].info == projections[0].info
    table = embedding_table(eval_store, loaded_rows, predicted, confidence)
    assert table["predicted"].tolist() == ["no_event", "pspl", "binary"] * 2


def test_binary_points_as_arrays_or_json_draw_the_same(eval_run):
    predictions, store = run_predictions(eval_run)
    points = binary_points(store, predictions)
    record = json.loads(json.dumps(points_record(points)))
    assert record["index"] == points["index"].tolist()
    report = physical_limits(store, predictions, n_bins=3, threshold=50.0)
    from_arrays = limits_figures(report, points)["binary_parameters"]
    from_json = limits_figures(report, record)["binary_parameters"]
    assert from_arrays.to_json() == from_json.to_json()
