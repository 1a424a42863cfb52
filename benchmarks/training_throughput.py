"""
Training throughput of the whole loop of `examples/run_video_classification.py` (decode, augment, collate, forward,
backward, optimiser step) at the `small` preset on this machine's CPU, with 0, 1 and 2 DataLoader workers, next to
what the two halves of the loop manage alone:

- model only: forward + backward + AdamW step on a ready batch (the Trainer's step without the data);
- decoding only: the collator turning videos into training clips (decode, scale jitter, crop, flip, RandAugment) in
  one process, i.e. on one core; also on the same videos pre-resized to a short side of 256 pixels, and (at the
  XViT-B/16 size) without RandAugment, to tell decoding from augmentation.

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
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from time import perf_counter

if __package__ in (None, ""):  # run by path (`python benchmarks/x.py`): import this repository's packages by name
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from benchmarks.measure import forward_flops, machine_info  # noqa: E402
from benchmarks.preprocessing import write_video  # noqa: E402
from benchmarks.presets import FULL, PRESETS, Preset  # noqa: E402
from examples.run_video_classification import main as run_training  # noqa: E402
from modeling_xvit import XViTConfig, XViTForVideoClassification  # noqa: E402
from modeling_xvit.training.collator import VideoClassificationCollator  # noqa: E402
from modeling_xvit.training.model import video_processor_for  # noqa: E402

RESULTS = Path(__file__).parent / "results"
CLASSES = ("a", "b", "c", "d")
WORKERS = (0, 1, 2)
WITHOUT_RAND_AUGMENT = "640x360, no RandAugment"


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


def decode_clips_per_second(videos: list[Path], config: XViTConfig, epoch: int, rand_augment: bool = True) -> float:
    """Training clips per second that the collator makes in this process (one core), one clip per call."""
    collator = VideoClassificationCollator(video_processor_for(config), seed=0)
    collator.set_epoch(epoch)  # other augmentations in every round
    processing = {"do_augment": True, "do_rand_augment": rand_augment}
    start = perf_counter()
    for key, path in enumerate(videos):
        collator([{"video": str(path), "label": 0, "sample_key": key, "processing": processing}])
    return len(videos) / (perf_counter() - start)


def loop_clips_per_second(
    data_dir: Path, config: XViTConfig, preset: Preset, workers: int, steps: int, output: Path
) -> float:
    """Clips per second of the training script's own loop, over its steps after the first two."""
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
            "--data_dir", str(data_dir), "--config_overrides", overrides, "--output_dir", str(output),
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


def measure(preset: Preset, rounds: int, steps: int, num_videos: int, gpu_tflops: float, utilisation: float) -> dict:
    torch.set_num_threads(preset.cpu_threads or torch.get_num_threads())
    config = xvit_config(preset, num_labels=len(CLASSES))
    b16 = xvit_config(FULL, num_labels=len(CLASSES))
    step = model_step(config, preset.batch_size)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        data_dir = write_videos(folder / "videos", num_videos, 640, 360)
        videos = {
            "640x360": sorted(data_dir.glob("train/*/*.mp4")),
            "456x256 (pre-resized)": sorted(write_videos(folder / "resized", num_videos, 456, 256).glob("*/*/*.mp4")),
        }
        tasks = {
            **{
                f"loop, {workers} workers": partial(
                    loop_clips_per_second, data_dir, config, preset, workers, steps, folder / f"run-{workers}"
                )
                for workers in WORKERS
            },
            "model only": partial(model_clips_per_second, step, preset.batch_size, steps),
            **{f"decode {name}": partial(decode_clips_per_second, paths, config) for name, paths in videos.items()},
            **{f"decode b16 {name}": partial(decode_clips_per_second, paths, b16) for name, paths in videos.items()},
            f"decode b16 {WITHOUT_RAND_AUGMENT}": partial(
                decode_clips_per_second, videos["640x360"], b16, rand_augment=False
            ),
        }
        samples = {name: [] for name in tasks}
        names = list(tasks)
        for round_index in range(rounds):  # all measurements in every round, in a rotating order
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                task = tasks[name]
                samples[name].append(task(round_index) if name.startswith("decode") else task())
    rate = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "preset": preset.to_dict(),
        "machine": {**machine_info(torch.device("cpu")), "load_average": os.getloadavg()},
        "rounds": rounds,
        "steps": steps,
        "videos": num_videos,
        "samples_clips_per_second": samples,
        "loop_clips_per_second": {str(workers): rate[f"loop, {workers} workers"] for workers in WORKERS},
        "model_only_clips_per_second": rate["model only"],
        "model_step_ms": 1000 * preset.batch_size / rate["model only"],
        "decode_clips_per_second_per_core": {name: rate[f"decode {name}"] for name in videos},
        "gpu_estimate": {
            name: gpu_estimate(rate[f"decode b16 {name}"], gpu_tflops, utilisation)
            for name in (*videos, WITHOUT_RAND_AUGMENT)
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
    lines.append(f"| model only (forward + backward + AdamW, {results['model_step_ms']:.0f} ms per step) | "
                 f"{results['model_only_clips_per_second']:.2f} |")  # fmt: skip
    for videos, rate in results["decode_clips_per_second_per_core"].items():
        lines.append(f"| decoding + augmentation only, one core, {videos} videos | {rate:.2f} |")
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
    lines.append("")
    lines.append(f"GPU assumption: {first['gpu_tflops']:.0f} TFLOP/s peak at {first['utilisation']:.0%} utilisation.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS), help="Model size (default small).")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of the three worker counts (default 3).")
    parser.add_argument("--steps", type=int, default=12, help="Optimiser steps per training run (default 12).")
    parser.add_argument("--videos", type=int, default=12, help="Videos in the synthetic data set (default 12).")
    parser.add_argument("--gpu-tflops", type=float, default=989.0, help="GPU peak, TFLOP/s (default: H100 bf16).")
    parser.add_argument("--utilisation", type=float, default=0.4, help="Share of the GPU peak reached (default 0.4).")
    parser.add_argument("--output", type=Path, default=RESULTS / "training-throughput-cpu", help="Output stem.")
    args = parser.parse_args(argv)
    results = measure(PRESETS[args.preset], args.rounds, args.steps, args.videos, args.gpu_tflops, args.utilisation)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    report = markdown(results)
    args.output.with_suffix(".md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
