"""Deleting only what the project made: the marker, the recognised layouts of earlier versions,
and every ``overwrite`` and clean-up that goes through :func:`remove_project_dir`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microlens import SimulationConfig, generate_dataset
from microlens.core.paths import PROJECT_ROOT
from microlens.core.removal import (
    MARKER,
    UnsafeDeleteError,
    check_removable,
    holds_files,
    mark_project_dir,
    project_kind,
    remove_project_dir,
)

TINY = SimulationConfig(n_per_class=4, n_epochs=60, seed=3, detectability=False)


def user_folder(path: Path) -> Path:
    """A folder holding a user's own file (what no overwrite may delete)."""
    path.mkdir(parents=True)
    (path / "thesis_draft.tex").write_text("months of work\n")
    return path


# --------------------------------------------------------------------------------------------
# The rule
# --------------------------------------------------------------------------------------------


def test_marked_directory_of_the_expected_kind_is_removed(tmp_path):
    run = mark_project_dir(tmp_path / "run", "run")
    (run / "best.pt").write_bytes(b"weights")
    assert project_kind(run) == "run"
    assert remove_project_dir(run, "run") is True
    assert not run.exists()


def test_missing_directory_is_nothing_to_do(tmp_path):
    assert remove_project_dir(tmp_path / "absent", "dataset") is False
    assert check_removable(tmp_path / "absent", "dataset") is None


def test_empty_directory_is_removed(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert remove_project_dir(empty, "dataset") is True
    assert not empty.exists()


def test_user_folder_is_refused_with_its_contents_named(tmp_path):
    folder = user_folder(tmp_path / "mine")
    with pytest.raises(UnsafeDeleteError, match=r"did not make it.*thesis_draft\.tex"):
        remove_project_dir(folder, "dataset")
    assert (folder / "thesis_draft.tex").read_text() == "months of work\n"


def test_marked_directory_of_another_kind_is_refused(tmp_path):
    run = mark_project_dir(tmp_path / "run", "run")
    (run / "best.pt").write_bytes(b"weights")
    with pytest.raises(UnsafeDeleteError, match="holds a training run, not a data set"):
        remove_project_dir(run, "dataset")
    assert (run / "best.pt").exists()


def test_file_and_symlink_are_refused(tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("x")
    with pytest.raises(UnsafeDeleteError, match="is a file"):
        remove_project_dir(file, "dataset")
    target = mark_project_dir(tmp_path / "target", "dataset")
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(UnsafeDeleteError, match="symbolic link"):
        remove_project_dir(link, "dataset")
    assert file.exists() and target.exists()


@pytest.mark.parametrize("where", ["project root", "parent of the project root", "home",
                                   "filesystem root", "working directory"])
def test_protected_directories_are_refused_even_when_marked(where, tmp_path, monkeypatch):
    """The marker cannot make the project root, a home or a parent of either deletable."""
    if where == "working directory":
        cwd = mark_project_dir(tmp_path / "cwd", "dataset")
        monkeypatch.chdir(cwd)
        path = cwd
    else:
        path = {"project root": PROJECT_ROOT, "parent of the project root": PROJECT_ROOT.parent,
                "home": Path.home(), "filesystem root": Path("/")}[where]
    with pytest.raises(UnsafeDeleteError, match="refusing to delete"):
        check_removable(path, ("dataset", "run", "cell", "generation"))
    assert path.exists()


def test_empty_path_is_refused():
    with pytest.raises(UnsafeDeleteError, match="empty path"):
        remove_project_dir("", "dataset")


def test_directories_of_earlier_versions_are_recognised(tmp_path):
    layouts = {
        "dataset": ("manifest.json", {"schema_version": 3, "config": {}}),
        "generation": ("plan.json", {"schema_version": 3, "config": {}, "chunk_size": 500}),
        "run": ("config.json", {"train": {}, "model": {}}),
        "cell": ("cell.json", {"study": "quick", "cell": "base", "key": "k", "status": "failed"}),
    }
    for kind, (name, content) in layouts.items():
        folder = tmp_path / kind
        folder.mkdir()
        (folder / name).write_text(json.dumps(content))
        assert project_kind(folder) == kind
    pretraining = tmp_path / "pretraining"
    pretraining.mkdir()
    (pretraining / "config.json").write_text(json.dumps({"pretrain": {}}))
    assert project_kind(pretraining) == "run"
    # a user's config.json or a broken manifest is not the project's
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"learning_rate": 1}))
    (other / "manifest.json").write_text("{not json")
    assert project_kind(other) is None


def test_marker_left_by_an_interrupted_run_counts_as_empty(tmp_path):
    run = mark_project_dir(tmp_path / "run", "run")
    (run / ".best.pt.123.tmp").write_bytes(b"half")
    assert not holds_files(run)
    (run / "config.json").write_text("{}")
    assert holds_files(run)


def test_unknown_kind_is_a_programming_error(tmp_path):
    with pytest.raises(ValueError, match="valid choices"):
        remove_project_dir(tmp_path, "notebook")


# --------------------------------------------------------------------------------------------
# Every overwrite goes through the rule
# --------------------------------------------------------------------------------------------


def test_generate_dataset_overwrite_keeps_a_users_folder(tmp_path):
    folder = user_folder(tmp_path / "data")
    with pytest.raises(UnsafeDeleteError, match="thesis_draft.tex"):
        generate_dataset(TINY, folder, overwrite=True, workers=1, progress=False)
    assert (folder / "thesis_draft.tex").exists()
    assert not (tmp_path / "data.partial").exists()


def test_generate_dataset_overwrite_replaces_its_own_and_marks_it(tmp_path):
    out = generate_dataset(TINY, tmp_path / "set", workers=1, progress=False)
    assert project_kind(out) == "dataset"
    assert json.loads((out / MARKER).read_text())["kind"] == "dataset"
    again = generate_dataset(TINY, out, overwrite=True, workers=1, progress=False)
    assert again == out and project_kind(out) == "dataset"


@pytest.mark.parametrize("out_dir", ["", ".", "  "])
def test_generate_dataset_never_deletes_the_project(out_dir):
    with pytest.raises((UnsafeDeleteError, ValueError)):
        generate_dataset(TINY, out_dir, overwrite=True, workers=1, progress=False)
    assert (PROJECT_ROOT / "pyproject.toml").is_file()


def test_generation_keeps_a_users_folder_named_like_its_partial(tmp_path):
    mine = user_folder(tmp_path / "set.partial")
    with pytest.raises(UnsafeDeleteError, match="thesis_draft.tex"):
        generate_dataset(TINY, tmp_path / "set", workers=1, progress=False)
    assert (mine / "thesis_draft.tex").exists()


def test_training_overwrite_keeps_a_users_folder(tmp_path, small_store):
    from microlens.models.config import ModelConfig
    from microlens.training.train import TrainConfig, train

    folder = user_folder(tmp_path / "runs" / "mine")
    config = TrainConfig(dataset=str(small_store.path), runs_dir=str(tmp_path / "runs"),
                         run_name="mine", epochs=1, batch_size=16, max_train_events=16,
                         model=ModelConfig(d_model=16, n_heads=2, n_layers=1))
    with pytest.raises(UnsafeDeleteError, match="thesis_draft.tex"):
        train(config, overwrite=True, progress=False)
    assert (folder / "thesis_draft.tex").exists()


def test_features_overwrite_keeps_a_users_folder(tmp_path, small_store):
    from microlens.models.config import ModelConfig
    from microlens.models.features import _prepare_run_dir
    from microlens.training.train import TrainConfig

    user_folder(tmp_path / "runs" / "feat")
    config = TrainConfig(dataset=str(small_store.path), runs_dir=str(tmp_path / "runs"),
                         run_name="feat", model=ModelConfig(kind="features"))
    from microlens.models.features import BoostingSettings

    with pytest.raises(UnsafeDeleteError, match="thesis_draft.tex"):
        _prepare_run_dir(config, BoostingSettings(), resume=False, overwrite=True)


def test_study_force_keeps_a_users_folder_in_an_artifacts_place(tmp_path):
    from microlens.workflow.studies.runner import _remove_artifacts

    folder = user_folder(tmp_path / "data" / "quick")

    class Plan:
        artifacts = {"dataset": {"path": str(folder)}}

    with pytest.raises(UnsafeDeleteError, match="thesis_draft.tex"):
        _remove_artifacts([Plan()])
    assert (folder / "thesis_draft.tex").exists()


# --------------------------------------------------------------------------------------------
# Property: nothing that is not project-made or empty can be deleted
# --------------------------------------------------------------------------------------------

_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.0123456789", min_size=1, max_size=12) \
    .filter(lambda n: n not in {".", ".."} and n != MARKER)


@given(files=st.lists(_names, min_size=1, max_size=5, unique=True),
       kinds=st.lists(st.sampled_from(["dataset", "generation", "run", "cell"]), min_size=1,
                      max_size=4, unique=True),
       json_name=st.sampled_from(["manifest.json", "plan.json", "config.json", "cell.json",
                                  "notes.json"]),
       content=st.one_of(st.just("{}"), st.just("[1, 2]"), st.just("not json"),
                         st.just('{"config": 1}'), st.just('{"study": "s"}')))
def test_unmarked_folders_with_files_are_never_deleted(tmp_path_factory, files, kinds, json_name,
                                                       content):
    folder = tmp_path_factory.mktemp("user")
    for name in files:
        (folder / name).write_text("user data")
    (folder / json_name).write_text(content)
    with pytest.raises(UnsafeDeleteError):
        remove_project_dir(folder, kinds)
    assert all((folder / name).exists() for name in files)


@given(depth=st.integers(min_value=0, max_value=3))
def test_no_parent_of_the_project_or_home_is_ever_deletable(depth):
    for start in (PROJECT_ROOT, Path.home(), Path(os.getcwd())):
        path = start.resolve()
        for _ in range(depth):
            path = path.parent
        with pytest.raises(UnsafeDeleteError):
            check_removable(path, ("dataset", "run", "cell", "generation"))


def test_torchrun_launch_and_pretraining_overwrite_keep_a_users_folder(tmp_path, small_store):
    from microlens.models.config import ModelConfig
    from microlens.training.ddp import launch
    from microlens.training.pretrain import PretrainConfig, pretrain
    from microlens.training.train import TrainConfig

    folder = user_folder(tmp_path / "runs" / "mine")
    config = TrainConfig(dataset=str(small_store.path), runs_dir=str(tmp_path / "runs"),
                         run_name="mine", model=ModelConfig(d_model=16, n_heads=2, n_layers=1))
    with pytest.raises(UnsafeDeleteError, match="thesis_draft.tex"):
        launch(config, 2, overwrite=True, echo=False)
    pretraining = PretrainConfig(dataset=str(small_store.path), runs_dir=str(tmp_path / "runs"),
                                 run_name="mine",
                                 model=ModelConfig(kind="masked", d_model=16, n_heads=2,
                                                   n_layers=1))
    with pytest.raises(UnsafeDeleteError, match="thesis_draft.tex"):
        pretrain(pretraining, overwrite=True, progress=False)
    assert (folder / "thesis_draft.tex").exists()
