"""The error every script of the package reports as one clear message, and the exit status that goes with it."""

import sys
from collections.abc import Callable
from pathlib import Path


class ConversionError(ValueError):
    """The input cannot be converted or published; the message says which file or tensor and why."""


def exit_status(action: Callable[[], object]) -> int:
    """The exit status of a script: 0 when `action` succeeds, else 1 after printing why it refused, one `error:` line
    per line of the `ConversionError`'s message (no traceback)."""
    try:
        action()
    except ConversionError as error:
        for line in str(error).splitlines():
            print(f"error: {line.strip()}", file=sys.stderr)
        return 1
    return 0


def run_conversion(convert: Callable[[], Path]) -> int:
    """The exit status of a conversion script: print where `convert` wrote, or why it refused (nothing written)."""
    return exit_status(lambda: print(f"Wrote {convert()}"))
