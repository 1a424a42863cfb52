"""A Gradio Space for an XViT model: upload or pick a video, see the top-5 labels and the frames the model saw.

    python examples/space/app.py                       # the embedded demo model, examples/xvit-motion-small
    python examples/space/app.py --model xvit-k600     # a model folder ...
    python examples/space/app.py --model you/xvit-k600 --videos clips/   # ... or a Hub id, and example videos

The serverless widget of the Hub does not run remote code; this app does, in a Space or on your machine. It answers
with the model folder's own Inference Endpoints handler (`handler.py`, which every folder this package writes
carries), so the Space, an endpoint and `modeling_xvit.hub.verify` give the same scores, and draws the frames
with `modeling_xvit.demo.frame_strip`. A built Space does not need `modeling_xvit`: `build_space.py` assembles a
Space repository from this file, `frame_strip.py` (from the package), the model folder and example videos. In this
repository, the package writes the demo model's code files before it is served (the repository holds its weights,
configs and card only).

It serves on 127.0.0.1 (or `GRADIO_SERVER_NAME`, which Spaces set) with Gradio's analytics and version check off and
no share link.
"""

import argparse
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

APP_DIR = Path(__file__).resolve().parent
try:  # a built Space carries frame_strip.py beside app.py
    from frame_strip import frame_strip, prediction_caption
except ImportError:  # in this repository, the installed package has it
    from modeling_xvit.demo.frame_strip import frame_strip, prediction_caption

MODEL_ENV = "XVIT_MODEL"
# This repository's demo model: its weights, configs and card; the installed package writes its code files.
REPOSITORY_DEMO_MODEL = APP_DIR.parent / "xvit-motion-small"
# The model served by default: the folder a built Space carries (build_space.py), else this repository's demo model.
DEFAULT_MODEL_FOLDERS = (APP_DIR / "model", REPOSITORY_DEMO_MODEL)
# The example videos beside this file: in this repository the demo model's motion clips, in a built Space the clips
# chosen for its model.
DEFAULT_VIDEOS = APP_DIR / "videos"
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi")
TOP_K = 5
TOP_K_ID, STRIP_ID = "top-k", "frame-strip"  # the outputs' element ids on the page
MAX_UPLOAD = "200mb"
CROP_CHOICES = ["1", "3"]  # the processor's test crops: the centre, or three along the longer side
SEGMENT_TEST_VIEWS = 3  # segment sampling has 3 test clips (middle, start, end); dense sampling takes any number
MAX_DENSE_VIEWS = 10
# No font downloads from Google: the page renders the same offline.
FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]
MONO_FONTS = ["ui-monospace", "monospace"]


class ModelNotFoundError(FileNotFoundError):
    """The model to serve is neither a model folder nor a Hub model that can be downloaded; the message says how."""


def default_model() -> Path:
    """The default model folder, or `ModelNotFoundError` naming where it was looked for and how to get it."""
    for folder in DEFAULT_MODEL_FOLDERS:
        if (folder / "config.json").is_file():
            if folder == REPOSITORY_DEMO_MODEL:
                from modeling_xvit.hub.folder import write_code_files

                write_code_files(folder)  # git ignores them there
            return folder
    raise ModelNotFoundError(
        f"The default model, the embedded demo model, is not at {DEFAULT_MODEL_FOLDERS[-1]}: it is committed to this"
        " repository there (check out the whole repository; `git lfs pull` if its weights are LFS pointers). Or"
        f" choose a model with --model (the app also reads the environment variable {MODEL_ENV})."
    )


def resolve_model(spec: str | None) -> Path:
    """The folder of the model to serve: `spec` (a model folder, or a Hub id, downloaded to the Hub cache), or the
    environment variable `XVIT_MODEL`, or the default (`default_model`)."""
    spec = spec or os.environ.get(MODEL_ENV)
    if not spec:
        return default_model()
    folder = Path(spec).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ModelNotFoundError(f"{folder} has no config.json: it is not a model folder.")
        return folder
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    try:
        return Path(snapshot_download(spec))
    except HFValidationError:
        raise ModelNotFoundError(f"--model {spec!r}: no such folder, and not a Hub model id (owner/name).") from None
    except Exception as error:  # offline, not found, gated: say which model and why
        raise ModelNotFoundError(
            f"--model {spec!r}: no such folder, and the Hub model cannot be downloaded: {error}"
        ) from None


def load_classifier(folder: Path) -> Any:
    """The folder's Inference Endpoints handler (`handler.py`), built as an endpoint builds it."""
    source = folder / "handler.py"
    if not source.is_file():
        raise ModelNotFoundError(
            f"{folder} has no handler.py; write the folder with modeling_xvit.hub.folder.write_hub_folder."
        )
    spec = importlib.util.spec_from_file_location("xvit_space_handler", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.EndpointHandler(str(folder))


def default_videos(model: Path) -> Path | None:
    """The example videos for `model` when none are given: `videos/` beside this file, which in this repository are
    the demo model's motion clips, so here only for the demo model."""
    if REPOSITORY_DEMO_MODEL.is_dir() and model.resolve() != REPOSITORY_DEMO_MODEL.resolve():
        return None
    return DEFAULT_VIDEOS if DEFAULT_VIDEOS.is_dir() else None


def example_videos(folder: Path | None) -> list[str]:
    """The video files of `folder` (none without a folder), offered as examples."""
    if folder is None:
        return []
    if not folder.is_dir():
        raise FileNotFoundError(f"--videos {folder}: no such folder.")
    return sorted(str(path) for path in folder.iterdir() if path.suffix.lower() in VIDEO_SUFFIXES)


def classify(classifier: Any, video: str | None, num_temporal_views: int | str, num_spatial_crops: int | str):
    """The top-5 labels of `video` (a file path) as `{label: score}`, and the strip of the frames the model saw (one
    labelled row per view).

    Raises `ValueError` with a message for the user when there is no video or it cannot be read.
    """
    if not video:
        raise ValueError("Upload a video or pick an example first.")
    views = {"num_temporal_views": int(num_temporal_views), "num_spatial_crops": int(num_spatial_crops)}
    predictions = classifier({"inputs": Path(video).read_bytes(), "parameters": {"top_k": TOP_K, **views}})
    strip = frame_strip(video, classifier.processor, caption=prediction_caption(predictions), **views)
    return {prediction["label"]: prediction["score"] for prediction in predictions}, strip


def model_title(folder: Path) -> str:
    """The title of the folder's model card (its first `# ` heading), else the folder's name."""
    card = folder / "README.md"
    lines = card.read_text(encoding="utf-8").splitlines() if card.is_file() else []
    return next((line[2:].strip() for line in lines if line.startswith("# ")), folder.name)


def describe(classifier: Any, name: str) -> str:
    """The page's introduction: the model, its labels and what it samples."""
    config, processor = classifier.model.config, classifier.processor
    labels = list(config.id2label.values())
    shown = ", ".join(labels[:12]) + (f", ... ({len(labels)} in all)" if len(labels) > 12 else "")
    return (
        f"# XViT video classification\n"
        f"**Model:** `{name}`: {config.num_frames} frames of {config.image_size} x {config.image_size} pixels,"
        f" {processor.sampling} sampling. **Labels:** {shown}.\n\n"
        "Upload a video or pick an example. The strip shows the frames the model saw: the processor's own sampling,"
        " resize and crop, one row per view (more views: the scores of all views are averaged)."
    )


def build_demo(classifier: Any, name: str, examples: Sequence[str] = ()):
    """The page: a video in; the top-5 labels and the strip of sampled frames out (API name `classify`)."""
    # Set before gradio's first import, for its every part: no telemetry, no version check.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    processor = classifier.processor
    max_views = SEGMENT_TEST_VIEWS if processor.sampling == "segment" else MAX_DENSE_VIEWS

    def answer(video: str | None, num_temporal_views: int, num_spatial_crops: str):
        try:
            return classify(classifier, video, num_temporal_views, num_spatial_crops)
        except ValueError as error:  # bad input: shown to the user, not a traceback
            raise gr.Error(str(error)) from None

    with gr.Blocks(title="XViT video classification", analytics_enabled=False) as demo:
        gr.Markdown(describe(classifier, name))
        with gr.Row():
            with gr.Column():
                video = gr.Video(label="Video", sources=["upload"], include_audio=True, height=300)
                if examples:
                    gr.Examples(examples, inputs=video, label="Example videos")
                with gr.Accordion("Views", open=False):
                    temporal_views = gr.Slider(
                        1, max_views, value=processor.num_temporal_views, step=1, label="Clips over time"
                    )
                    # Strings: the API lists the choices as strings and must accept each of them.
                    spatial_crops = gr.Radio(
                        CROP_CHOICES, value=str(processor.num_spatial_crops), label="Crops per clip"
                    )
                button = gr.Button("Classify", variant="primary")
            with gr.Column():
                labels = gr.Label(num_top_classes=TOP_K, label=f"Top-{TOP_K}", elem_id=TOP_K_ID)
        gr.Markdown(
            "**What the model sees:** the sampled frames, before normalisation, with their indices in the video."
        )
        strip = gr.Image(
            type="pil", format="png", show_label=False, buttons=["download", "fullscreen"], elem_id=STRIP_ID
        )
        button.click(answer, [video, temporal_views, spatial_crops], [labels, strip], api_name="classify")
    return demo


def build_app(model: str | None = None, videos: Path | None = None):
    """The page for `model` (see `resolve_model`) with the example videos of `videos` (default `default_videos`).

    Raises `FileNotFoundError` (or `ModelNotFoundError`) saying what is missing.
    """
    folder = resolve_model(model)
    examples = example_videos(videos or default_videos(folder))
    return build_demo(load_classifier(folder), model_title(folder), examples)


def launch(demo, host: str | None = None, port: int | None = None, block: bool = True):
    """Serve `demo` locally (no share link): on `host` (default `GRADIO_SERVER_NAME`, else 127.0.0.1) and `port`
    (default `GRADIO_SERVER_PORT`, else the first free one from 7860). With `block=False` it returns at once."""
    import gradio as gr

    theme = gr.themes.Default(font=FONTS, font_mono=MONO_FONTS)
    return demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        max_file_size=MAX_UPLOAD,
        prevent_thread_lock=not block,
        theme=theme,
        footer_links=["api"],
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model",
        help=f"a model folder or a Hub model id; default ${MODEL_ENV}, else the embedded demo model"
        f" ({DEFAULT_MODEL_FOLDERS[-1]})",
    )
    parser.add_argument(
        "--videos", type=Path, help=f"a folder of example videos (default {DEFAULT_VIDEOS} for the default model)"
    )
    parser.add_argument("--host", help="address to serve on (default $GRADIO_SERVER_NAME, else 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default $GRADIO_SERVER_PORT, else the first free from 7860)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        demo = build_app(args.model, args.videos)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    launch(demo, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
