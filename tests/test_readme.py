"""The README is a front page: at most 150 lines, no internal issue numbers, and its Python
quick start runs as written on a fresh checkout."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def quick_start() -> str:
    """The Python block of the README's quick start."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Quick start in Python"):]
    match = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert match, "the quick start has no python block"
    return match.group(1)


def test_the_readme_is_a_front_page():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    user_facing = [README, *sorted((ROOT / "docs").glob("*.md")),
                   *sorted((ROOT / "lib").rglob("*.py")),
                   *sorted((ROOT / "notebooks").glob("*.ipynb")),
                   *sorted((ROOT / "studies").glob("*.yaml"))]
    numbered = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in user_facing
                for m in re.finditer(r"issue ?[0-9]+", p.read_text(encoding="utf-8"), flags=re.I)]
    assert numbered == []
    ast.parse(quick_start())  # the block is Python


@pytest.mark.slow  # ~30 s: simulates, trains one epoch, evaluates with the peer
def test_the_quick_start_runs_as_written(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "real").symlink_to(ROOT / "data" / "real")  # the shipped subset
    env = {**os.environ, "MICROLENS_ROOT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", quick_start()], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()  # training prints a line per epoch first
    model, peer = (float(x) for x in lines[-2].split())
    assert 0.0 <= model <= 1.0 and 0.0 <= peer <= 1.0
    at_end = ast.literal_eval(lines[-1].split("} {", 1)[0] + "}")
    assert at_end["name"] in ("no_event", "pspl", "binary")
    assert abs(sum(at_end["probabilities"]) - 1.0) < 1e-5
    assert (tmp_path / "data" / "tiny" / "manifest.json").is_file()
    assert (tmp_path / "outputs" / "runs" / "tiny" / "best.pt").is_file()
    assert "TrainingRangeWarning" in result.stderr  # the tiny model says it extrapolates
