"""Every script under conversion/ runs by path and as a module from the repository root, and `conversion` is an
installed package that a user's own script imports from anywhere."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
SCRIPTS = ("convert_original_xvit", "convert_vit_to_xvit", "push_to_hub", "verify_hub_folder", "hub_folder_checks")


ENV = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}


def test_every_script_is_listed():
    scripts = {path.stem for path in (REPOSITORY / "conversion").glob("*.py") if "def main(" in path.read_text()}
    assert scripts == set(SCRIPTS)


def test_help_of_every_script_by_path_and_as_a_module():
    commands = [
        command
        for script in SCRIPTS
        for command in (
            [sys.executable, f"conversion/{script}.py", "--help"],
            [sys.executable, "-m", f"conversion.{script}", "--help"],
        )
    ]
    # Started together: each spends its time importing torch and transformers.
    processes = [
        subprocess.Popen(command, cwd=REPOSITORY, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for command in commands
    ]
    for command, process in zip(commands, processes, strict=True):
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0 and stdout.startswith("usage: "), (command, stderr[-2000:])


def test_a_users_script_elsewhere_imports_the_converter(tmp_path):
    user_script = textwrap.dedent(
        """
        from conversion.convert_vit_to_xvit import xvit_from_vit
        from conversion.model_folder import write_hub_folder
        print(xvit_from_vit.__module__, write_hub_folder.__module__)
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", user_script], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.split() == ["conversion.convert_vit_to_xvit", "conversion.model_folder"]
