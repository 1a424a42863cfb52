"""Assemble the Space repository: a folder to upload as a Hugging Face Space (Gradio) that serves an XViT model.

    python examples/space/build_space.py space-build --model-id you/xvit-motion-small   # the embedded demo model
    python examples/space/build_space.py space-build --model OUTPUT_DIR --videos clips/ --model-id you/xvit-run
    hf upload you/xvit-space space-build . --repo-type space

The folder holds the Space card `README.md` (this directory's metadata, with `models:` naming `--model-id`, and a
text that describes the model served: its title, labels and input), `requirements.txt`, `app.py`, `frame_strip.py`
(from `modeling_xvit.demo`), the model's Hub folder as `model/`, the example videos as `videos/` and, when given, a
screenshot of the Space serving that model.

`--model` takes any folder holding a Hub folder: one written by `modeling_xvit.hub.folder.write_hub_folder`, a
training run's output folder (only its Hub folder's files are copied: weights, configs, code, handler, card; not its
checkpoints, logs, predictions or curve), or a folder of weights and configs, which gets its code files from the
package. By default it is the embedded demo model, with its example clips (`examples/space/videos`: one motion clip of
each class, drawn by `modeling_xvit.demo.motion_data` with a seed its training never used) and the screenshot of this
directory. The folder appears at once when complete; a failed build writes nothing.
"""

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from app import DEFAULT_VIDEOS, REPOSITORY_DEMO_MODEL, VIDEO_SUFFIXES, ModelNotFoundError, default_model, model_title

from modeling_xvit.demo import frame_strip
from modeling_xvit.errors import ConversionError, exit_status
from modeling_xvit.hub.folder import (
    CONFIG_NAME,
    HANDLER_NAME,
    PROCESSOR_CONFIG_NAME,
    atomic_output_dir,
    hub_folder_files,
    write_code_files,
)
from modeling_xvit.hub.upload import files_to_upload

SPACE_DIR = Path(__file__).resolve().parent
CARD_TEMPLATE = SPACE_DIR / "README.md"  # its metadata (sdk, sdk_version, app_file, ...) is the Space's
# Space repository path -> source.
SPACE_FILES = {
    "requirements.txt": SPACE_DIR / "requirements.txt",
    "app.py": SPACE_DIR / "app.py",
    "frame_strip.py": Path(frame_strip.__file__),
}
DEMO_SCREENSHOT = SPACE_DIR / "screenshot.png"  # the Space serving the demo model
SCREENSHOT_NAME = "screenshot.png"
MODEL_DIR, VIDEOS_DIR = "model", "videos"
MAX_VIDEO_BYTES = 10 * 2**20
MAX_LABELS_SHOWN = 20
PAPER = "https://arxiv.org/abs/2106.05968"


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


def copy_hub_folder(model: Path, destination: Path) -> None:
    """Copy the Hub folder of `model` (see `hub_folder_files`) to `destination`, with the package's code files if it
    has none, and check that every file may be published (`files_to_upload`)."""
    if not (model / CONFIG_NAME).is_file():
        raise ConversionError(f"--model {model}: no {CONFIG_NAME}, not a model folder (or a training output folder).")
    destination.mkdir()
    for path in hub_folder_files(model):
        if not path.resolve().is_relative_to(model.resolve()):
            raise ConversionError(f"{path} is a symbolic link to {path.resolve()}, outside the model folder.")
        shutil.copyfile(path, destination / path.name)
    if not (destination / HANDLER_NAME).is_file():  # weights and configs only, as the demo model is committed
        write_code_files(destination)
    files_to_upload(destination)


def _model_text(folder: Path, model_id: str | None) -> str:
    """What the Space card says about the model in `folder`: its title, labels, input and where its card is."""
    config = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    processor = json.loads((folder / PROCESSOR_CONFIG_NAME).read_text(encoding="utf-8"))
    labels = [config["id2label"][key] for key in sorted(config.get("id2label", {}), key=int)]
    shown = ", ".join(f"`{label}`" for label in labels[:MAX_LABELS_SHOWN])
    if len(labels) > MAX_LABELS_SHOWN:
        shown += f", ... ({len(labels)} in all)"
    size = processor["crop_size"]
    card = f"[its model card](https://huggingface.co/{model_id})" if model_id else f"its card, `{MODEL_DIR}/README.md`"
    return (
        f"The model, **{model_title(folder)}**, is an [XViT]({PAPER}) video classifier (space-time mixing attention,"
        f" Bulat et al., NeurIPS 2021) with {len(labels)} labels: {shown}. It sees {processor['num_frames']} frames of"
        f" {size['height']} x {size['width']} pixels per clip ({processor['sampling']} sampling). What it was trained"
        f" on and how well it does: {card}."
    )


def space_card(model: Path | None, model_id: str | None, screenshot: bool) -> str:
    """The Space card: this directory's metadata, with `models: [model_id]` when given (validated by
    huggingface_hub), and a text about the Space and the model in `model` (the built `model/` folder)."""
    from huggingface_hub import SpaceCard

    data = SpaceCard.load(CARD_TEMPLATE).data
    if model_id:
        data.models = [model_id]
    if model is not None:
        about = _model_text(model, model_id)
    else:
        about = "The model is the one the Space variable `XVIT_MODEL` names (a Hub model id), set in its settings."
    parts = [
        f"# {data.title}",
        "Upload a video or pick an example: the Space gives the model's top-5 labels with their scores and shows the"
        " strip of frames the model saw, exactly as its video processor decoded, resized and cropped them. XViT models"
        " on the Hub are remote code, which the Hub's serverless widget does not run; this Space does.",
        about,
        *([f"![The Space after classifying a video]({SCREENSHOT_NAME})"] if screenshot else []),
        "The app answers with the model folder's own Inference Endpoints handler (`handler.py`), so it gives the"
        " scores an Inference Endpoint gives. Under **Views** you can average the scores of several clips over time"
        " and of three crops per clip (the multi-view testing of the paper); the strip then has one labelled row per"
        " view.",
    ]
    return str(SpaceCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(parts) + "\n"))


def build_space(
    output_dir: str | Path,
    model: str | Path | None,
    videos: str | Path | None = None,
    model_id: str | None = None,
    screenshot: str | Path | None = None,
) -> Path:
    """Write the Space repository to `output_dir` (which must not exist or be empty) and return its path.

    Args:
        output_dir: the folder to create.
        model: the folder whose Hub folder is copied in as `model/` (a training output folder too); `None` copies
            none (the Space then serves `$XVIT_MODEL`).
        videos: a folder of example videos, copied in as `videos/`.
        model_id: the Hub id of the model, written into the card's `models:` metadata.
        screenshot: a PNG of the Space serving this model (`screenshot.py`), shown by the card.
    """
    example_files = video_files(Path(videos)) if videos is not None else []
    if screenshot is not None and not Path(screenshot).is_file():
        raise ConversionError(f"--screenshot {screenshot}: no such file.")
    with atomic_output_dir(output_dir) as staging:
        for name, source in SPACE_FILES.items():
            shutil.copyfile(source, staging / name)
        if model is not None:
            copy_hub_folder(Path(model), staging / MODEL_DIR)
        for video in example_files:
            (staging / VIDEOS_DIR).mkdir(exist_ok=True)
            shutil.copyfile(video, staging / VIDEOS_DIR / video.name)
        if screenshot is not None:
            shutil.copyfile(screenshot, staging / SCREENSHOT_NAME)
        card = space_card(staging / MODEL_DIR if model is not None else None, model_id, screenshot is not None)
        (staging / "README.md").write_text(card, encoding="utf-8")
    return Path(output_dir)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output_dir", type=Path, help="the Space repository folder to create")
    model = parser.add_mutually_exclusive_group()
    model.add_argument(
        "--model", type=Path, help="the model folder, or a training output folder (default: the embedded demo model)"
    )
    model.add_argument("--no-model", action="store_true", help="copy no model: the Space serves $XVIT_MODEL")
    parser.add_argument(
        "--videos",
        type=Path,
        help=f"a folder of example videos (default for the demo model: {DEFAULT_VIDEOS.name}/ beside this script, a"
        " motion clip of each of its classes; none for another model)",
    )
    parser.add_argument("--model-id", help="the model's Hub id, for the card's `models:` (links the Space to it)")
    parser.add_argument(
        "--screenshot",
        type=Path,
        help="a PNG of the Space serving this model (screenshot.py), shown by the card (default for the demo model:"
        " its screenshot; none for another model)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        model = None if args.no_model else args.model or default_model()
    except ModelNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    demo = model is not None and model.resolve() == REPOSITORY_DEMO_MODEL.resolve()
    if demo:  # the repository holds its weights, configs and card: its code comes from the package
        write_code_files(model)
    videos = args.videos or (DEFAULT_VIDEOS if demo else None)
    screenshot = args.screenshot or (DEMO_SCREENSHOT if demo else None)
    return exit_status(
        lambda: print(f"Wrote {build_space(args.output_dir, model, videos, args.model_id, screenshot)}")
    )


if __name__ == "__main__":
    sys.exit(main())
