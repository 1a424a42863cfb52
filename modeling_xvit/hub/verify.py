"""Check that a model folder works on the Hub before it is uploaded, as a user's machine would load it.

    python -m modeling_xvit.hub.verify xvit-b16-16-k600 [--video clip.mp4]

Checks the files (publishable: safetensors only, no symlink out of the folder; required files and the remote-code
modules that `auto_map` and `custom_pipelines` name), the model card's metadata, and then, in a fresh process that is
offline, has an empty modules cache and cannot import `modeling_xvit`: AutoConfig, AutoModel,
AutoModelForVideoClassification, AutoVideoProcessor, `pipeline("video-classification", trust_remote_code=True)` (one
video, then batches of 2) and the Inference Endpoints handler on a video (by default a short synthetic clip). Prints a
checklist; the exit status is 1 when any check fails.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from modeling_xvit.errors import ConversionError, exit_status
from modeling_xvit.hub.checks import CHECK_PREFIX
from modeling_xvit.hub.folder import AUTO_MAP, CARD_NAME, HANDLER_NAME
from modeling_xvit.hub.upload import files_to_upload

CHECKS_SCRIPT = Path(__file__).with_name("checks.py")
# What the folder writer writes: each config file with its `auto_map` entries, the handler and the card.
REQUIRED_FILES = (*AUTO_MAP, HANDLER_NAME, CARD_NAME)
FRESH_PROCESS_TIMEOUT = 900


class Check(NamedTuple):
    name: str
    ok: bool
    detail: str


def _run(name: str, check: Callable[[], str]) -> Check:
    try:
        return Check(name, True, check())
    except (ConversionError, OSError, ValueError, AssertionError) as error:
        return Check(name, False, str(error))


def _auto_map(folder: Path, config_name: str) -> dict[str, str]:
    auto_map = json.loads((folder / config_name).read_text(encoding="utf-8")).get("auto_map") or {}
    missing = [name for name in AUTO_MAP[config_name] if name not in auto_map]
    if missing:
        raise AssertionError(f"{config_name} has no auto_map entry for {missing}")
    return auto_map


def _check_files(folder: Path) -> str:
    files = files_to_upload(folder)
    return f"{len(files)} files, {sum(file.size for file in files):,} bytes, safetensors weights only"


def _code_references(config: dict) -> list[str]:
    """The `module.Class` references of a config: its `auto_map`, and the pipelines of its `custom_pipelines`."""
    pipelines = [entry.get("impl", "") for entry in (config.get("custom_pipelines") or {}).values()]
    return [*(config.get("auto_map") or {}).values(), *filter(None, pipelines)]


def _check_required_files(folder: Path) -> str:
    modules = {
        f"{reference.split('.')[0]}.py"
        for config_name in AUTO_MAP
        if (folder / config_name).is_file()
        for reference in _code_references(json.loads((folder / config_name).read_text(encoding="utf-8")))
    }
    missing = [name for name in (*REQUIRED_FILES, *sorted(modules)) if not (folder / name).is_file()]
    if missing:
        raise AssertionError(
            f"missing {missing} (a folder holding the weights and configs gets its code files and handler with"
            f" `python -m modeling_xvit.hub.folder {folder}`)"
        )
    return f"{', '.join(REQUIRED_FILES)} and the code files {sorted(modules)}"


def _check_card(folder: Path) -> str:
    from huggingface_hub import ModelCard

    card = ModelCard.load(folder / CARD_NAME, ignore_metadata_errors=False)
    data = card.data
    wrong = {
        key: value
        for key, value, expected in (
            ("library_name", data.library_name, "transformers"),
            ("pipeline_tag", data.pipeline_tag, "video-classification"),
        )
        if value != expected
    }
    # Widget examples are optional: a card shows them only where they match the model (see hub/card.py).
    if wrong or not data.license:
        raise AssertionError(
            f"metadata needs library_name transformers, pipeline_tag video-classification and a license;"
            f" got {wrong or data.to_dict()}"
        )
    return f"license {data.license}, {len(data.eval_results or [])} results in the model-index"


def static_checks(folder: str | os.PathLike) -> list[Check]:
    """The checks that read the folder's files."""
    folder = Path(folder)
    return [
        _run("publishable files", lambda: _check_files(folder)),
        _run("required files", lambda: _check_required_files(folder)),
        *(_run(f"{name} auto_map", lambda name=name: ", ".join(sorted(_auto_map(folder, name)))) for name in AUTO_MAP),
        _run("model card metadata", lambda: _check_card(folder)),
    ]


def write_synthetic_video(path: Path, num_frames: int = 48, width: int = 160, height: int = 120) -> Path:
    """A short H.264 clip of a moving gradient, for checking a folder when no video is given (needs PyAV)."""
    import numpy as np

    from modeling_xvit.demo.video_writer import write_video

    ramp = np.add.outer(np.arange(height), np.arange(width))
    frames = []
    for index in range(num_frames):
        level = ((ramp + 4 * index) % 256).astype(np.uint8)
        frames.append(np.stack([level, 255 - level, np.full_like(level, 8 * index % 256)], axis=-1))
    write_video(path, np.stack(frames), fps=24)
    return path


def fresh_process_checks(folder: str | os.PathLike, video: str | os.PathLike) -> list[Check]:
    """Load the folder in a fresh Python process that can only use the folder's own code (see checks.py)."""
    with tempfile.TemporaryDirectory(prefix="xvit-hub-check.") as scratch:
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(Path(scratch, "modules")), PYTHONDONTWRITEBYTECODE="1")
        command = [
            sys.executable,
            "-c",
            CHECKS_SCRIPT.read_text(encoding="utf-8"),
            str(Path(folder).absolute()),
            str(Path(video).absolute()),
        ]
        try:
            completed = subprocess.run(
                command, cwd=scratch, env=env, capture_output=True, text=True, timeout=FRESH_PROCESS_TIMEOUT
            )
        except subprocess.TimeoutExpired:
            return [Check("fresh process", False, f"did not finish within {FRESH_PROCESS_TIMEOUT} s")]
    checks = [
        Check(**json.loads(line.removeprefix(CHECK_PREFIX)))
        for line in completed.stdout.splitlines()
        if line.startswith(CHECK_PREFIX)
    ]
    if completed.returncode != 0 or not checks:
        checks.append(Check("fresh process", False, f"exit status {completed.returncode}: {completed.stderr[-2000:]}"))
    return checks


def verify_hub_folder(folder: str | os.PathLike, video: str | os.PathLike | None = None) -> list[Check]:
    """Every check of this module; `video` defaults to a synthetic clip."""
    checks = static_checks(folder)
    if video is not None:
        return checks + fresh_process_checks(folder, video)
    with tempfile.TemporaryDirectory(prefix="xvit-hub-check-video.") as scratch:
        return checks + fresh_process_checks(folder, write_synthetic_video(Path(scratch, "synthetic.mp4")))


def format_checklist(folder: str | os.PathLike, checks: list[Check]) -> str:
    lines = [f"{'[ok]  ' if check.ok else '[FAIL]'} {check.name}: {check.detail}" for check in checks]
    return f"Checks of {folder} (offline, in a fresh process without modeling_xvit):\n  " + "\n  ".join(lines)


def check_hub_folder(folder: str | os.PathLike, video: str | os.PathLike | None = None) -> None:
    """Print the checklist of `folder`; raise `ConversionError` naming the failed checks (for `write_hub_folder`)."""
    checks = verify_hub_folder(folder, video)
    print(format_checklist(folder, checks))
    failed = [check.name for check in checks if not check.ok]
    if failed:
        raise ConversionError(f"The model folder failed the Hub checks {failed} (see the checklist above).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="The model folder to check.")
    parser.add_argument("--video", help="Video for the pipeline and handler checks (default: a synthetic clip).")
    args = parser.parse_args(argv)
    return exit_status(lambda: check_hub_folder(args.folder, args.video))


if __name__ == "__main__":
    sys.exit(main())
