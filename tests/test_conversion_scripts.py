"""Every script under conversion/ is a thin command line over the installed package: it runs by path from the
repository and as its console entry point, and a user's own script imports the functions behind it from anywhere."""

import importlib.metadata
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import run_help

REPOSITORY = Path(__file__).resolve().parents[1]
# script -> its console entry point (pyproject.toml, [project.scripts])
SCRIPTS = {
    "convert_original_xvit": "xvit-convert-original",
    "convert_vit_to_xvit": "xvit-convert-vit",
    "push_to_hub": "xvit-push-to-hub",
    "verify_hub_folder": "xvit-verify-hub-folder",
}
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}

pytestmark = pytest.mark.slow


def test_every_script_is_listed():
    assert {path.stem for path in (REPOSITORY / "conversion").glob("*.py")} == set(SCRIPTS)


def test_every_script_is_thin():
    for script in SCRIPTS:
        code = [line for line in (REPOSITORY / "conversion" / f"{script}.py").read_text().splitlines() if line]
        assert len(code) < 20, f"conversion/{script}.py has grown past a command line: move the work into the package"


def test_help_of_every_script_by_path():
    run_help([[f"conversion/{script}.py"] for script in SCRIPTS])


def test_every_entry_point_is_the_main_its_script_runs():
    installed = importlib.metadata.entry_points(group="console_scripts")
    for script, entry_point in SCRIPTS.items():
        text = (REPOSITORY / "conversion" / f"{script}.py").read_text()
        (module,) = re.findall(r"^from (modeling_xvit\S+) import main$", text, re.M)
        assert installed[entry_point].value == f"{module}:main"
        assert callable(installed[entry_point].load())


def test_a_users_script_elsewhere_imports_the_converter(tmp_path):
    user_script = textwrap.dedent(
        """
        from modeling_xvit.conversion.vit import xvit_from_vit
        from modeling_xvit.hub.folder import write_hub_folder
        print(xvit_from_vit.__module__, write_hub_folder.__module__)
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", user_script], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.split() == ["modeling_xvit.conversion.vit", "modeling_xvit.hub.folder"]
