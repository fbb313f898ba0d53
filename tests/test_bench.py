"""The benchmark CLI runs and prints the figures it promises (speed itself is not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_simulate_prints_json_figures():
    out = subprocess.run([sys.executable, "-m", "microlens.bench", "simulate", "--events", "60",
                          "--workers", "1", "--epochs", "100"], capture_output=True, text=True,
                         check=True, timeout=300)
    report = json.loads(out.stdout)
    assert report["benchmark"] == "simulate" and report["workers"] == 1
    for key in ("mixed", "binary_only", "mixed_with_detectability"):
        assert report[key]["events_per_second"] > 0 and report[key]["events"] > 0
    assert report["mixed"]["events"] == 60 and report["binary_only"]["events"] == 20


def test_bench_rejects_bad_arguments_with_the_choices():
    out = subprocess.run([sys.executable, "-m", "microlens.bench", "simulate", "--topology",
                          "wide"], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "unknown topology preset 'wide'; valid choices: distinct" in out.stderr
    out = subprocess.run([sys.executable, "-m", "microlens.bench", "train-nothing"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "simulate" in out.stderr
