"""Reading a run's files and preparing its directory (runs): every fault is named."""

from __future__ import annotations

import json
import zipfile

import pytest
import torch

from microlens.core.removal import mark_project_dir
from microlens.models.runs import (
    RunExistsError,
    RunFileError,
    load_torch,
    prepare_run_dir,
    read_json,
    read_metrics,
    require_run_dir,
)


def test_read_json_names_each_fault_of_the_file(tmp_path):
    good = tmp_path / "config.json"
    good.write_text(json.dumps({"a": 1}))
    assert read_json(good) == {"a": 1}
    with pytest.raises(FileNotFoundError, match="missing.json does not exist"):
        read_json(tmp_path / "missing.json")
    with pytest.raises(FileNotFoundError, match="is a directory, not a file"):
        read_json(tmp_path)
    (tmp_path / "latin.json").write_bytes(b'{"a": "\xe9"}')
    with pytest.raises(RunFileError, match=r"latin.json is not UTF-8 text \(10 bytes; byte 7"):
        read_json(tmp_path / "latin.json")
    (tmp_path / "empty.json").write_text("  \n")
    with pytest.raises(RunFileError, match=r"empty.json is empty \(3 bytes\): retrain"):
        read_json(tmp_path / "empty.json", remedy="retrain")
    (tmp_path / "cut.json").write_text('{"a": 1,\n "b": ')
    with pytest.raises(RunFileError, match="cut.json is not valid JSON: .* line 2, column"):
        read_json(tmp_path / "cut.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(RunFileError, match="list.json holds a JSON list, expected an object"):
        read_json(tmp_path / "list.json")
    with pytest.raises(FileNotFoundError, match="the run has not finished"):
        read_metrics(tmp_path)


def test_load_torch_names_empty_truncated_and_foreign_files(tmp_path):
    weights = tmp_path / "best.pt"
    torch.save({"w": torch.ones(3)}, weights)
    assert torch.equal(load_torch(weights)["w"], torch.ones(3))
    with pytest.raises(FileNotFoundError, match="nothing.pt does not exist"):
        load_torch(tmp_path / "nothing.pt")
    with pytest.raises(FileNotFoundError, match="is a directory, not a file"):
        load_torch(tmp_path)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(RunFileError, match=r"empty.pt is empty \(0 bytes\)"):
        load_torch(tmp_path / "empty.pt")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(RunFileError, match="cut.pt is truncated or not a PyTorch checkpoint"):
        load_torch(cut)
    foreign = tmp_path / "foreign.pt"
    with zipfile.ZipFile(foreign, "w") as archive:
        archive.writestr("notes.txt", "not weights")
    with pytest.raises(RunFileError, match="foreign.pt (cannot be read as a weights file|is "
                                           "truncated or corrupt)"):
        load_torch(foreign, remedy="retrain")


def test_require_run_dir_says_what_is_there_instead(tmp_path):
    (tmp_path / "runs" / "quick").mkdir(parents=True)
    (tmp_path / "runs" / "quick2").mkdir()
    assert require_run_dir(tmp_path / "runs" / "quick") == tmp_path / "runs" / "quick"
    (tmp_path / "runs" / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file, not a directory"):
        require_run_dir(tmp_path / "runs" / "file")
    with pytest.raises(FileNotFoundError, match=r"does not exist \(nor does"):
        require_run_dir(tmp_path / "nowhere" / "run")
    with pytest.raises(FileNotFoundError, match="quick"):
        require_run_dir(tmp_path / "runs" / "quik")


def test_prepare_run_dir_resumes_only_a_matching_run(tmp_path):
    run = tmp_path / "run"
    same = lambda saved: []  # noqa: E731
    assert prepare_run_dir(run, resume=False, overwrite=False, differences=same) is False
    with pytest.raises(ValueError, match="choose resume or overwrite, not both"):
        prepare_run_dir(run, resume=True, overwrite=True, differences=same)
    run.mkdir()
    mark_project_dir(run, "run")
    (run / "config.json").write_text(json.dumps({"epochs": 2}))
    (run / ".last.pt.tmp").write_text("half")
    with pytest.raises(RunExistsError, match="exists; pass resume=True"):
        prepare_run_dir(run, resume=False, overwrite=False, differences=same)
    with pytest.raises(ValueError, match="its config differs in epochs"):
        prepare_run_dir(run, resume=True, overwrite=False, differences=lambda s: ["epochs"])
    assert prepare_run_dir(run, resume=True, overwrite=False, differences=same) is True
    assert not (run / ".last.pt.tmp").exists()  # a killed write's leftover goes
    (run / "config.json").unlink()
    (run / "history.csv").write_text("epoch\n")  # a run killed before its config was written
    with pytest.raises(FileNotFoundError, match="it has no config.json"):
        prepare_run_dir(run, resume=True, overwrite=False, differences=same)
    assert prepare_run_dir(run, resume=True, overwrite=False, differences=same,
                           config_required=False) is True
    assert prepare_run_dir(run, resume=False, overwrite=True, differences=same) is False
    assert not run.exists() or not any(run.iterdir())
