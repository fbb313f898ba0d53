"""The one table writer (microlens.core.tables) and the three tables written through it.

The digests below are of the files the study summary, the model comparison and the learning
curve wrote for the same small example before they shared the writer: the files must stay the
same byte for byte.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from microlens.core.tables import write_table
from microlens.evaluation.model_comparison import write_comparison
from microlens.workflow.learning_curve import write_learning_curve

COMPARISON_ROWS = [
    {"model": "transformer", "cell": "model_kind=transformer", "accuracy": 0.9,
     "accuracy_low": 0.85, "accuracy_high": 0.94, "n_parameters": 1340000,
     "train_events_per_second": 123.4, "extra_b": "x", "extra_a": None},
    {"model": "classical peer", "cell": "model_kind=transformer", "accuracy": 0.8,
     "accuracy_low": None, "accuracy_high": None, "n_parameters": None},
]
CURVE_ROWS = [
    {"arm": "from scratch", "model": "transformer", "labelled_events": 100,
     "label_fraction": 0.25, "accuracy": 0.7, "accuracy_low": 0.6, "accuracy_high": 0.8,
     "n_test_events": 60, "train_minutes": 1.5, "pretrain_minutes": None, "cell": "a",
     "run_dir": "r/a"},
    {"arm": "pretrained", "model": "masked", "labelled_events": 200, "label_fraction": 0.5,
     "accuracy": 0.75, "accuracy_low": None, "accuracy_high": None, "n_test_events": 60,
     "train_minutes": 2.0, "pretrain_minutes": 3.0, "cell": "b", "run_dir": "r/b", "other": 1},
]
BEFORE = {  # sha256 of each file as written before the tables shared one writer
    "model_comparison.csv": "c7b4f4f8ab94ec8e854dd14788d9b892e738a5cce5bcff4161bfb94c5cf90193",
    "model_comparison.json": "01192a4984949e5d6abc115edacdf458a9f83c6829e0a292f010987e755689e7",
    "model_comparison.md": "ccb2384caa40ca57dd415cf66d9ae24fe3ef6def82635dcc8021970840e37878",
    "learning_curve.csv": "94f3c78c0ef9864827c3d8646f10a555c635d4d6e2b086ec8eec863758e09409",
    "learning_curve.json": "f276eb22ce52fb2ee4fe1a97a97b9de14c8850ff3dc5ccd6688f130d07cea819",
    "learning_curve.md": "5f2e32d64daf8648173714faaae0d31f0321835a4e61561415747edabe1453e5",
}


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_comparison_and_the_learning_curve_write_the_same_files_as_before(tmp_path):
    written = write_comparison(COMPARISON_ROWS, tmp_path / "cmp",
                               extra={"study": "kinds", "skipped": []})
    written += write_learning_curve(CURVE_ROWS, {"model": "classical peer", "accuracy": 0.9},
                                    tmp_path / "lc")
    assert [p.name for p in written] == list(BEFORE)
    assert {p.name: _digest(p) for p in written} == BEFORE
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]


def test_the_study_summary_writes_the_same_csv_as_before(tmp_path, monkeypatch):
    from microlens.workflow.studies import report

    rows = [{"cell": "a=1", "status": "complete", "a": 1, "accuracy": 0.875,
             "run_dir": "outputs/runs/x"},
            {"cell": "a=2", "status": "failed", "a": 2, "error": 'boom, "quoted"',
             "accuracy": None}]
    monkeypatch.setattr(report, "summary_rows", lambda study, outputs=None: rows)
    path = report.write_summary("tiny", tmp_path)
    assert path == tmp_path / "tiny" / "summary.csv"
    assert sorted(p.name for p in path.parent.iterdir()) == ["summary.csv"]  # csv only
    assert path.read_bytes() == (b'cell,status,a,accuracy,run_dir,error\r\n'
                                 b'a=1,complete,1,0.875,outputs/runs/x,\r\n'
                                 b'a=2,failed,2,,,"boom, ""quoted"""\r\n')
    back = report.read_summary("tiny", tmp_path)
    assert back[0]["accuracy"] == 0.875 and back[1]["accuracy"] is None
    assert back[1]["error"] == 'boom, "quoted"'


def test_write_table_writes_only_what_it_is_given(tmp_path):
    rows = [{"b": 2, "a": None, "ignored": "x"}, {"a": 1}]
    only_csv = write_table(tmp_path, "t", rows, ["a", "b"])
    assert only_csv == [tmp_path / "t.csv"]
    assert (tmp_path / "t.csv").read_text() == "a,b\n,2\n1,\n"
    assert not (tmp_path / "t.json").exists() and not (tmp_path / "t.md").exists()
    written = write_table(tmp_path / "new", "t", rows, ["b"], json={"rows": rows},
                          markdown="| b |\n")
    assert [p.name for p in written] == ["t.csv", "t.json", "t.md"]
    assert json.loads(written[1].read_text()) == {"rows": rows}
    assert written[2].read_text() == "| b |\n"


def test_a_json_that_cannot_be_written_leaves_no_half_written_file(tmp_path):
    write_table(tmp_path, "t", [{"a": 1}], ["a"])
    with pytest.raises(TypeError):
        write_table(tmp_path, "t", [{"a": 2}], ["a"], json={"a": object()})
    assert (tmp_path / "t.csv").read_text() == "a\n2\n"  # the CSV was written first ...
    assert not (tmp_path / "t.json").exists()  # ... the JSON not at all, no half file
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]
