"""The wheel: one top-level import package, `modeling_xvit`, carrying the model, training, publishing and conversion
code and their data files, importable from the wheel alone."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
SUBPACKAGES = ("modeling_xvit", "modeling_xvit.training", "modeling_xvit.hub", "modeling_xvit.conversion")
SUBPACKAGES += ("modeling_xvit.demo", "modeling_xvit.labels")
# Modules whose import needs no optional dependency beyond the core ones (torch, transformers, ...).
MODULES = ("modeling_xvit.hub.folder", "modeling_xvit.hub.verify", "modeling_xvit.conversion.original")
MODULES += ("modeling_xvit.conversion.vit", "modeling_xvit.demo.motion_data", "modeling_xvit.training.data")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPOSITORY), "--no-deps", "--no-build-isolation", "-q", "-w", out],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (path,) = out.glob("xvit_transformers-*.whl")
    return path


def test_the_wheel_installs_one_top_level_package_with_everything_in_it(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    (top_level,) = [name for name in names if name.endswith(".dist-info/top_level.txt")]
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["modeling_xvit"]
    assert {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")} == {"modeling_xvit"}
    for package in SUBPACKAGES:
        assert f"{package.replace('.', '/')}/__init__.py" in names
    for data in ("labels/kinetics600.txt", "training/metrics/top_k_accuracy/top_k_accuracy.py", "hub/handler.py"):
        assert f"modeling_xvit/{data}" in names


def test_every_subpackage_imports_from_the_wheel_alone(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", target, str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    script = "\n".join(
        ["import importlib, sys"]
        + [f"module = importlib.import_module({name!r}); print(module.__file__)" for name in SUBPACKAGES + MODULES]
    )
    # The repository is not on the path (the working folder is empty), so every import must come from the target.
    env = {**os.environ, "PYTHONPATH": str(target)}
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    files = completed.stdout.split()
    assert len(files) == len(SUBPACKAGES + MODULES)
    assert all(Path(file).is_relative_to(target) for file in files), files
