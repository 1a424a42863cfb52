"""The demo model's folder as a fresh clone has it, for the tests that use it."""

import shutil
from pathlib import Path


def copy_without_code(folder: Path, destination: Path) -> Path:
    """Copy `folder` to `destination` without its code files (which git ignores there: a fresh clone has none)."""
    destination.mkdir(parents=True)
    for path in folder.iterdir():
        if path.suffix != ".py":
            shutil.copyfile(path, destination / path.name)
    return destination
