"""Assemble the Space repository: a folder to upload as a Hugging Face Space (Gradio) that serves an XViT model.

    python examples/space/build_space.py space-build --model examples/xvit-motion-small --videos clips/ \\
        --model-id you/xvit-motion-small
    hf upload you/xvit-space space-build . --repo-type space

The folder holds the Space card `README.md` (this directory's, with `models:` naming `--model-id`),
`requirements.txt`, `app.py`, `frame_strip.py` (from `modeling_xvit.demo`), `screenshot.png`,
the model folder as `model/` (only the files `modeling_xvit.hub.upload` would publish: safetensors, JSON, code, card;
by default the embedded demo model) and the example videos as `videos/` (by default `examples/space/videos`: one
motion clip of each class of the demo model, drawn by `modeling_xvit.demo.motion_data` with a seed its training never
used). It appears at once when complete; a failed build writes nothing.
"""

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from app import DEFAULT_VIDEOS, VIDEO_SUFFIXES, ModelNotFoundError, default_model

from modeling_xvit.demo import frame_strip
from modeling_xvit.errors import ConversionError, exit_status
from modeling_xvit.hub.folder import atomic_output_dir
from modeling_xvit.hub.upload import files_to_upload

SPACE_DIR = Path(__file__).resolve().parent
# Space repository path -> source (the card is rewritten); the screenshot is
# shown by the card when present.
SPACE_FILES = {
    "README.md": SPACE_DIR / "README.md",
    "requirements.txt": SPACE_DIR / "requirements.txt",
    "app.py": SPACE_DIR / "app.py",
    "frame_strip.py": Path(frame_strip.__file__),
}
SCREENSHOT = SPACE_DIR / "screenshot.png"
MODEL_DIR, VIDEOS_DIR = "model", "videos"
MAX_VIDEO_BYTES = 10 * 2**20


def video_files(folder: Path) -> list[Path]:
    """The example videos of `folder`, refusing files above `MAX_VIDEO_BYTES` (a Space should stay small)."""
    if not folder.is_dir():
        raise ConversionError(f"--videos {folder}: no such folder.")
    videos = sorted(path for path in folder.iterdir() if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file())
    if not videos:
        raise ConversionError(f"--videos {folder} holds no video ({', '.join(VIDEO_SUFFIXES)}).")
    large = [
        f"{path.name} ({path.stat().st_size / 2**20:.1f} MiB)"
        for path in videos
        if path.stat().st_size > MAX_VIDEO_BYTES
    ]
    if large:
        raise ConversionError(f"Example videos above {MAX_VIDEO_BYTES / 2**20:g} MiB: {', '.join(large)}.")
    return videos


def space_card(model_id: str | None) -> str:
    """This directory's Space card, with `models: [model_id]` when given (validated by huggingface_hub)."""
    from huggingface_hub import SpaceCard

    card = SpaceCard.load(SPACE_FILES["README.md"])
    if model_id:
        card.data.models = [model_id]
    return str(card)


def build_space(
    output_dir: str | Path,
    model: str | Path | None,
    videos: str | Path | None = None,
    model_id: str | None = None,
) -> Path:
    """Write the Space repository to `output_dir` (which must not exist or be empty) and return its path.

    Args:
        output_dir: the folder to create.
        model: the model folder to copy in as `model/`; `None` copies none (the Space then serves `$XVIT_MODEL`).
        videos: a folder of example videos, copied in as `videos/`.
        model_id: the Hub id of the model, written into the card's `models:` metadata.
    """
    model_files = files_to_upload(model) if model is not None else []
    if model is not None and not (Path(model) / "handler.py").is_file():
        raise ConversionError(f"{model} has no handler.py: write the folder with write_hub_folder.")
    example_files = video_files(Path(videos)) if videos is not None else []
    card = space_card(model_id)
    with atomic_output_dir(output_dir) as staging:
        for name, source in SPACE_FILES.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            if name != "README.md":
                shutil.copyfile(source, staging / name)
        (staging / "README.md").write_text(card, encoding="utf-8")
        if SCREENSHOT.is_file():
            shutil.copyfile(SCREENSHOT, staging / SCREENSHOT.name)
        for file in model_files:
            (staging / MODEL_DIR / file.path_in_repo).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file.local_path, staging / MODEL_DIR / file.path_in_repo)
        for video in example_files:
            (staging / VIDEOS_DIR).mkdir(exist_ok=True)
            shutil.copyfile(video, staging / VIDEOS_DIR / video.name)
    return Path(output_dir)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output_dir", type=Path, help="the Space repository folder to create")
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--model", type=Path, help="the model folder to serve (default: the embedded demo model)")
    model.add_argument("--no-model", action="store_true", help="copy no model: the Space serves $XVIT_MODEL")
    parser.add_argument(
        "--videos",
        type=Path,
        default=DEFAULT_VIDEOS,
        help=f"a folder of example videos (default {DEFAULT_VIDEOS.relative_to(SPACE_DIR.parents[1])}: a motion clip"
        " of each class of the demo model)",
    )
    parser.add_argument("--model-id", help="the model's Hub id, for the card's `models:` (links the Space to it)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        model = None if args.no_model else args.model or default_model()
    except ModelNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return exit_status(lambda: print(f"Wrote {build_space(args.output_dir, model, args.videos, args.model_id)}"))


if __name__ == "__main__":
    sys.exit(main())
