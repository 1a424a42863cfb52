"""Every script under conversion/ is a thin command line over the installed package: it runs by path, from any folder,
and as its console entry point."""

import importlib.metadata
import re
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

pytestmark = pytest.mark.slow


def test_every_script_is_listed():
    assert {path.stem for path in (REPOSITORY / "conversion").glob("*.py")} == set(SCRIPTS)


def test_every_script_is_thin():
    for script in SCRIPTS:
        code = [line for line in (REPOSITORY / "conversion" / f"{script}.py").read_text().splitlines() if line]
        assert len(code) < 20, f"conversion/{script}.py has grown past a command line: move the work into the package"


def test_help_of_every_script_by_path_from_another_folder():
    # From an empty folder: the scripts and the package functions behind them need nothing of the working folder.
    run_help([[str(REPOSITORY / "conversion" / f"{script}.py")] for script in SCRIPTS], elsewhere=True)


def test_every_entry_point_is_the_main_its_script_runs():
    installed = importlib.metadata.entry_points(group="console_scripts")
    for script, entry_point in SCRIPTS.items():
        text = (REPOSITORY / "conversion" / f"{script}.py").read_text()
        (module,) = re.findall(r"^from (modeling_xvit\S+) import main$", text, re.M)
        assert installed[entry_point].value == f"{module}:main"
        assert callable(installed[entry_point].load())
