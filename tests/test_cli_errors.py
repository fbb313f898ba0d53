"""Every command line answers bad input with one line on stderr and exit status 2.

In-process calls of each ``main(argv)`` (fast); one subprocess checks ``python -m`` itself.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from microlens.core.cli import command_line, one_line


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    return lines[0]


def _mains():
    from microlens.evaluation.analysis.baseline import main as baseline
    from microlens.training.train import main as train
    from microlens.workflow.bench.cli import main as bench
    from microlens.workflow.figures import main as figures
    from microlens.workflow.studies.__main__ import main as studies

    def pretrain(argv):  # what `python -m microlens.training.pretrain ARGS` runs
        return train(["--objective", "pretrain", *argv])

    return {"train": train, "pretrain": pretrain, "bench": bench, "studies": studies,
            "figures": figures, "baseline": baseline}


def test_train_without_a_dataset_says_one_line(tmp_path, capsys):
    main = _mains()["train"]
    assert main(["--quiet", "--dataset", str(tmp_path / "nosuch"),
                 "--runs-dir", str(tmp_path / "runs")]) == 2
    line = _one_error_line(capsys)
    assert f"no dataset at {tmp_path / 'nosuch'}" in line
    assert not (tmp_path / "runs").exists()  # refused before anything was written


@pytest.mark.parametrize("command", ["train", "pretrain"])
def test_a_broken_config_file_names_its_line_and_column(command, tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text('{"train": {"epochs": 3,\n  "dataset": }\n')
    assert _mains()[command](["--config", str(config)]) == 2
    line = _one_error_line(capsys)
    assert f"{config} is not valid JSON" in line and "line 2, column" in line
    assert _mains()[command](["--config", str(tmp_path / "missing.json")]) == 2
    assert f"{tmp_path / 'missing.json'} does not exist" in _one_error_line(capsys)


def test_studies_figures_and_baseline_say_one_line(tmp_path, capsys):
    mains = _mains()
    assert mains["studies"](["run", "nosuch"]) == 2
    assert "unknown study 'nosuch'" in _one_error_line(capsys)
    assert mains["figures"]([str(tmp_path / "nothing")]) == 2
    assert str(tmp_path / "nothing") in _one_error_line(capsys)
    assert mains["baseline"](["--n-per-class", "2", "--topology", "nope"]) == 2
    assert "unknown topology preset 'nope'" in _one_error_line(capsys)


def test_bench_keeps_argparse_usage_errors_with_status_2(capsys):
    with pytest.raises(SystemExit) as exit_info:  # argparse's usage error stays as it was
        _mains()["bench"](["simulate", "--events", "1"])
    assert exit_info.value.code == 2
    assert "--events must be at least 3" in capsys.readouterr().err


def test_traceback_option_and_variable_show_the_traceback(tmp_path, capsys, monkeypatch):
    main = _mains()["train"]
    argv = ["--quiet", "--dataset", str(tmp_path / "nosuch")]
    with pytest.raises(ValueError, match="no dataset at"):
        main([*argv, "--traceback"])
    monkeypatch.setenv("MICROLENS_TRACEBACK", "1")
    with pytest.raises(ValueError, match="no dataset at"):
        main(argv)
    monkeypatch.setenv("MICROLENS_TRACEBACK", "0")
    assert main(argv) == 2
    _one_error_line(capsys)


def test_bugs_keep_their_traceback_and_messages_fold_to_one_line(capsys):
    @command_line
    def broken(argv):
        raise AttributeError("a bug, not bad input")

    with pytest.raises(AttributeError):
        broken([])

    @command_line
    def refuses(argv):
        raise ValueError("2 problems in the light curves:\n  flux[0, 1] is nan\n  times bad")

    assert refuses([]) == 2
    assert _one_error_line(capsys) == ("error: 2 problems in the light curves: flux[0, 1] is "
                                       "nan; times bad")
    assert one_line(KeyError("missing")) == "missing"
    assert one_line(ValueError("")) == "ValueError"


@pytest.mark.slow  # seconds long: the whole suite runs it, the fast tier (under 45 s) not
def test_python_m_train_prints_one_line_and_exits_2(tmp_path):
    env = {**os.environ, "MICROLENS_TRACEBACK": ""}
    done = subprocess.run([sys.executable, "-m", "microlens.training.train", "--quiet", "--dataset",
                           str(tmp_path / "nosuch")], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: no dataset at {tmp_path / 'nosuch'}")
    assert "does not exist" in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""
