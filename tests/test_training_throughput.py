"""The training-throughput benchmark: runnable both ways, and its report from a results dict."""

from pathlib import Path

import pytest
from conftest import run_help

from benchmarks.training_throughput import markdown, prepared_markdown, real_videos_markdown

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_help():
    for output in run_help([["benchmarks/training_throughput.py"], ["-m", "benchmarks.training_throughput"]]):
        assert "--rounds" in output and "--gpu-tflops" in output


def test_report_names_the_bottleneck_figures():
    estimate = {
        "train_gflops_per_clip": 1683.1,
        "gpu_tflops": 989.0,
        "utilisation": 0.4,
        "gpu_clips_per_second": 235.0,
        "decode_clips_per_second_per_core": 5.0,
        "cores_per_gpu": 47.0,
    }
    results = {
        "preset": {"name": "small", "description": "ViT-Ti", "batch_size": 2},
        "machine": {"cpu": "CPU", "cpu_count": 2, "torch": "2.14", "load_average": (1.0, 2.0, 3.0)},
        "rounds": 3,
        "steps": 12,
        "loop_clips_per_second": {"0": 4.0, "1": 5.5, "2": 5.6},
        "model_only_clips_per_second": 6.0,
        "model_step_ms": 333.3,
        "decode_clips_per_second_per_core": {"640x360": 20.0},
        "gpu_estimate": {
            "640x360": estimate,
            "456x256 (pre-resized)": {**estimate, "decode_clips_per_second_per_core": 9.4, "cores_per_gpu": 25.0},
        },
    }
    report = markdown(results)
    assert "| whole training loop, 2 DataLoader worker(s) | 5.60 |" in report
    assert "| model only (forward + backward + AdamW, 333 ms per step) | 6.00 |" in report
    assert "from videos of | 640x360 | 456x256 (pre-resized) |" in report
    assert "| CPU cores needed per GPU | 47 | 25 |" in report
    assert "| clips/s per core against 640x360 videos | 1.00x | 1.88x |" in report
    assert "load average (1, 5, 15 min) at the end: 1.0" in report


def test_report_gives_the_prepared_shards_figures():
    results = {
        "preset": {"batch_size": 2},
        "prepared": {
            "bytes": 3 * 2**20,
            "source_bytes": 4 * 2**20,
            "same_resolution_bytes": 2 * 2**20,
            "seconds_to_prepare_per_hour_of_video": 1234.4,
            "keyint": 32,
            "bframes": 7,
        },
        "device_augmentation": {"ms_per_step": 12.34, "share_of_model_step": 0.041, "b16_ms_per_clip": 56.7},
    }
    report = "\n".join(prepared_markdown(results))
    assert "| prepared shards on disk, MiB | 3.00 (1.50x the same-size videos, 0.75x the sources) |" in report
    assert "s per hour of video | 1234 |" in report
    assert "key frame every 32 frames, 7 B-frames between references" in report
    assert "ms per step (batch 2) | 12.3 (4.1% of the model step) |" in report
    assert "(colour conversion and resize too), on this CPU, ms per clip | 56.7 |" in report


def test_report_gives_the_real_videos_sizes_and_speed_up():
    video = {
        "width": 1280,
        "height": 720,
        "num_frames": 132,
        "prepared_width": 568,
        "prepared_height": 320,
        "prepared_bytes": 960,
        "same_resolution_bytes": 1000,
        "b16_source_clips_per_second_per_core": 2.0,
        "b16_prepared_on_device_clips_per_second_per_core": 12.0,
    }
    report = "\n".join(real_videos_markdown({"bigbuckbunny": video}))
    assert "| source size, frames | 1280x720, 132 |" in report
    assert "| prepared against the same frames encoded with x264's defaults, bytes | 0.96x |" in report
    assert "| speed-up | 6.00x |" in report
