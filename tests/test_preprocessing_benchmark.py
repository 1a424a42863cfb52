"""benchmarks/preprocessing.py runs by path and as a module (its measurements are the benchmark's own asserts)."""

import pytest
from conftest import run_help


@pytest.mark.slow
def test_help_runs_by_path_and_as_a_module():
    for output in run_help([["benchmarks/preprocessing.py"], ["-m", "benchmarks.preprocessing"]]):
        assert "--decord DIR" in output and "Preprocessing throughput" in output
