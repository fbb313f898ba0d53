"""The slow tier's longer search: every property test again, with many more examples."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


@pytest.mark.slow
def test_every_property_holds_on_the_thorough_profile():
    """Runs the fast tier's hypothesis tests with the ``thorough`` profile (100 derandomized
    examples each instead of 25) in a fresh process, so the profile applies when they are
    defined; a failure prints hypothesis's reproduction blob."""
    env = {**os.environ, "HYPOTHESIS_PROFILE": "thorough"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(TESTS), "-q", "-m", "property and not slow",
         "-p", "no:cacheprovider", "--no-header"],
        env=env, capture_output=True, text=True, timeout=600, cwd=TESTS.parent)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "no tests ran" not in result.stdout
