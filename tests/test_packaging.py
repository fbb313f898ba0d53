"""Packaging consistency: pyproject.toml vs environment.yml, the torch pin, run_all.sh dispatch."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RUN_ALL = ROOT / "run_all.sh"
SUBCOMMANDS = ("quick", "test", "lab", "bench", "help", "figures", "list", "--jobs", "--processes",
               "topology", "cadence", "error", "thesis")

_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(.*)$", re.DOTALL)


def _name(req: str) -> str:
    match = _NAME_RE.match(req)
    assert match, f"unparsable requirement {req!r}"
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def _normalize(req: str) -> str:
    """Lower-case, PEP 503-normalized name + the rest of the requirement without whitespace."""
    rest = _NAME_RE.match(req).group(2)
    return _name(req) + re.sub(r"\s+", "", rest)


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def _pyproject_requirements() -> list[str]:
    project = _pyproject()["project"]
    return list(project["dependencies"]) + list(project["optional-dependencies"]["dev"])


def _environment_pip_section() -> list[str]:
    with open(ROOT / "environment.yml", encoding="utf-8") as fh:
        env = yaml.safe_load(fh)
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml must have exactly one pip: section"
    return [str(item) for item in pip_sections[0]]


def _torch_requirement() -> str:
    reqs = [r for r in _pyproject()["project"]["dependencies"] if _name(r) == "torch"]
    assert len(reqs) == 1, f"expected exactly one torch requirement, got {reqs}"
    return reqs[0]


def test_environment_yml_matches_pyproject():
    pip_items = _environment_pip_section()
    assert pip_items[-1].strip() == "-e .", "environment.yml must install the project (-e .) last"
    env_reqs = [_normalize(r) for r in pip_items if r.strip() != "-e ."]
    py_reqs = [_normalize(r) for r in _pyproject_requirements()]
    assert len(env_reqs) == len(set(env_reqs)), "duplicate entries in environment.yml"
    assert set(env_reqs) == set(py_reqs), (
        f"only in environment.yml: {sorted(set(env_reqs) - set(py_reqs))}; "
        f"only in pyproject.toml: {sorted(set(py_reqs) - set(env_reqs))}"
    )


def test_environment_yml_python_and_channels():
    with open(ROOT / "environment.yml", encoding="utf-8") as fh:
        env = yaml.safe_load(fh)
    assert env["name"] == "microlens"
    assert env["channels"] == ["conda-forge"]
    assert "pip" in env["dependencies"]
    assert any(str(d).replace(" ", "").startswith("python=3.11") for d in env["dependencies"])


def test_torch_is_pinned_exactly():
    spec = _normalize(_torch_requirement())[len("torch") :]
    # Exactly one "==X.Y.Z" specifier: no range, no wildcard, no markers/extras.
    assert re.fullmatch(r"==\d+(\.\d+)*", spec), f"torch must be pinned with ==, got {spec!r}"


def test_run_all_installs_the_pinned_torch():
    pin = _normalize(_torch_requirement())
    script = RUN_ALL.read_text(encoding="utf-8")
    assert f'TORCH_SPEC="{pin}"' in script, f"run_all.sh must install {pin} (as in pyproject.toml)"


@pytest.mark.parametrize("path", ["run_all.sh", ".ci/run"])
def test_entry_points_are_executable(path):
    assert os.access(ROOT / path, os.X_OK), f"{path} must be executable (chmod +x)"


def _run_all(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(RUN_ALL), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


@pytest.mark.parametrize("flag", ["help", "-h", "--help"])
def test_run_all_help(flag):
    proc = _run_all(flag)
    assert proc.returncode == 0, proc.stderr
    for sub in SUBCOMMANDS:
        assert sub in proc.stdout
    # Help must be answered before any set-up (whose messages all start with [run_all]).
    assert "[run_all]" not in proc.stdout + proc.stderr


def test_run_all_unknown_subcommand():
    proc = _run_all("no-such-command")
    assert proc.returncode != 0
    assert "Usage:" in proc.stderr
    assert "no-such-command" in proc.stderr
    assert "[run_all] set-up" not in proc.stdout + proc.stderr
