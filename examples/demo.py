#!/usr/bin/env python
"""
`make demo`: the embedded demo model classifies fresh motion clips, or your own video, through
`pipeline("video-classification")`.

    python examples/demo.py                    # 8 new clips (2 per class), drawn with a seed the model never saw
    python examples/demo.py --video clip.mp4   # your own video (make demo VIDEO=clip.mp4)

The demo model, `examples/xvit-motion-small`, is a small XViT trained here, from scratch, on synthetic clips of a
texture drifting left, right, up or down (`modeling_xvit.demo.motion_data`; docs/demo-and-ablation.md). It knows
these four motions and nothing else: on any other video it still answers one of them. The demo writes the clips with
the generator (its data set was drawn with seed 0; the demo's seed draws other clips), classifies each, prints the
true class, the top-3 labels with their scores and the clips classified per second, and draws one picture with a strip
of the frames the model saw per clip and its prediction (`demo-output/demo.png` by default).

The repository holds the demo model's weights, configs and card only; the demo first writes its code files and
`handler.py` into the folder from the installed package (`modeling_xvit.hub.folder.write_code_files`; git ignores
them there), so the folder loads as remote code, as it would from the Hub.
"""

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from modeling_xvit.demo.frame_strip import frame_strip, prediction_caption
from modeling_xvit.demo.motion_data import CLASSES, MotionSettings, generate_clips
from modeling_xvit.demo.video_writer import write_video
from modeling_xvit.hub.folder import write_code_files

ROOT = Path(__file__).resolve().parents[1]
DEMO_MODEL = ROOT / "examples" / "xvit-motion-small"
DEFAULT_OUTPUT_DIR = Path("demo-output")
# The demo model's data set (train, validation and test) was drawn with seed 0; other seeds draw other clips.
DEMO_SEED = 2024
TOP_K = 3
FRAME_HEIGHT = 80
GAP = 8


def write_demo_clips(
    folder: Path, labels: Sequence[str], num_per_class: int, seed: int = DEMO_SEED
) -> list[tuple[Path, str]]:
    """Write `num_per_class` new clips of each class of `labels` as `folder/<class>_<n>.mp4`; returns each clip's
    path and class."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = MotionSettings()
    paths = []
    for label in labels:
        for index, clip in enumerate(generate_clips(label, num_per_class, seed, split="test", settings=settings)):
            path = folder / f"{label}_{index}.mp4"
            write_video(path, clip.frames(), settings.fps)
            paths.append((path, label))
    return paths


def load_classifier(model: Path):
    """`pipeline("video-classification")` on the model folder, with its own (remote) code; the demo model's folder
    gets its code files from the package first."""
    if not (model / "config.json").is_file():
        raise SystemExit(
            f"error: no model at {model} (no config.json). The demo model is committed to the repository at"
            f" {DEMO_MODEL.relative_to(ROOT)}; `python examples/motion_ablation.py --demo-model` trains it again."
        )
    if model.resolve() == DEMO_MODEL:
        write_code_files(model)
    import transformers

    transformers.logging.set_verbosity_error()  # a demo prints its results, not the loading details
    transformers.logging.disable_progress_bar()
    return transformers.pipeline("video-classification", model=str(model), trust_remote_code=True)


def stack_pictures(pictures: Sequence[Image.Image]) -> Image.Image:
    """The pictures one under the other on white, left-aligned."""
    width = max(picture.width for picture in pictures)
    height = sum(picture.height for picture in pictures) + GAP * (len(pictures) - 1)
    sheet = Image.new("RGB", (width, height), "white")
    top = 0
    for picture in pictures:
        sheet.paste(picture, (0, top))
        top += picture.height + GAP
    return sheet


def format_predictions(predictions: Sequence[dict]) -> str:
    return ", ".join(f"{prediction['label']} {prediction['score']:.3f}" for prediction in predictions)


def classify(classifier, videos: Sequence[Path]) -> tuple[list[list[dict]], float]:
    """The top-3 predictions of each video, and the seconds spent in the pipeline calls."""
    top_k = min(TOP_K, classifier.model.config.num_labels)
    start = time.perf_counter()
    predictions = [classifier(str(video), top_k=top_k) for video in videos]
    return predictions, time.perf_counter() - start


def report(classifier, videos: Sequence[tuple[Path, str | None]], picture: Path) -> tuple[int, int]:
    """Classify the videos (each with its true class, or None), print each result and the throughput, save the
    picture; returns (correct, labelled)."""
    all_predictions, elapsed = classify(classifier, [video for video, _ in videos])
    correct = labelled = 0
    strips = []
    for (video, label), predictions in zip(videos, all_predictions, strict=True):
        best = predictions[0]["label"]
        verdict = "" if label is None else ("  correct" if best == label else "  WRONG")
        correct, labelled = correct + (best == label), labelled + (label is not None)
        top = f"top-{len(predictions)}: {format_predictions(predictions)}"
        print(f"{video.name}: true {label or '(unknown)'}; {top}{verdict}")
        caption = f"{video.name}: {'true ' + label + ', ' if label else ''}predicted {prediction_caption(predictions)}"
        strips.append(frame_strip(str(video), classifier.video_processor, caption=caption, frame_height=FRAME_HEIGHT))
    summary = f"{len(videos)} clip{'s' * (len(videos) != 1)} in {elapsed:.2f} s: {len(videos) / elapsed:.1f} clips/s"
    if labelled:
        summary += f"; {correct} of {labelled} correct"
    print(summary + " (decoding, preprocessing and the model, one clip at a time)")
    picture.parent.mkdir(parents=True, exist_ok=True)
    stack_pictures(strips).save(picture, format="PNG")
    print(f"Picture (the frames the model saw, with its predictions): {picture}")
    return correct, labelled


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, nargs="+", help="your own video file(s) instead of new motion clips")
    parser.add_argument("--model", type=Path, default=DEMO_MODEL, help="model folder (default: the demo model)")
    parser.add_argument("--num-per-class", type=int, default=2, help="new clips per class (default 2)")
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help=f"seed of the new clips (default {DEMO_SEED})")
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=DEFAULT_OUTPUT_DIR,
        help=f"where the clips and the picture go (default {DEFAULT_OUTPUT_DIR})",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    missing = [str(video) for video in args.video or () if not video.is_file()]
    if missing or args.num_per_class < 1:
        problem = f"no such video file: {', '.join(missing)}" if missing else "--num-per-class must be at least 1"
        print(f"error: {problem}.", file=sys.stderr)
        return 1
    start = time.perf_counter()
    classifier = load_classifier(args.model)
    labels = list(classifier.model.config.id2label.values())
    print(f"Model: {args.model} ({', '.join(labels)}), loaded in {time.perf_counter() - start:.1f} s")
    videos = [(video, None) for video in args.video or ()]
    if not videos:
        unknown = [label for label in labels if label not in CLASSES]
        if unknown:
            print(f"error: the model's classes {unknown} are not motion classes: give --video.", file=sys.stderr)
            return 1
        videos = write_demo_clips(args.output_dir / "clips", labels, args.num_per_class, args.seed)
        print(f"Wrote {len(videos)} new clips (seed {args.seed}, unseen in training) to {args.output_dir / 'clips'}")
    report(classifier, videos, args.output_dir / "demo.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
