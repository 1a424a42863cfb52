"""benchmarks/preprocessing.py runs by path and as a module (its measurements are the benchmark's own asserts)."""

import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", [["benchmarks/preprocessing.py"], ["-m", "benchmarks.preprocessing"]])
def test_help_runs_by_path_and_as_a_module(command):
    result = subprocess.run(
        [sys.executable, *command, "--help"], capture_output=True, text=True, cwd=REPOSITORY, check=True
    )
    assert "--decord DIR" in result.stdout and "Preprocessing throughput" in result.stdout
