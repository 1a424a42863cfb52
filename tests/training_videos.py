"""Tiny labelled mp4 videos for the training tests (written with PyAV), and the tiny model the tests train."""

import fractions
import tarfile
from pathlib import Path

CLASSES = ("left", "right", "still")
SPLIT_SIZES = {"train": 4, "validation": 2, "test": 2}  # videos per class

# A 32 x 32, 4-frame XViT with 2 layers: a few training steps take a fraction of a second on one core.
TINY_MODEL = (
    "image_size=32,num_frames=4,hidden_size=32,num_hidden_layers=2,num_attention_heads=2,intermediate_size=64,"
    "temporal_attention_num_heads=2,temporal_attention_intermediate_size=64,classifier_hidden_size=16"
)


def write_clip(path: Path, class_index: int, variant: int, num_frames: int = 8, width: int = 40, height: int = 32):
    """A bright bar on a dark background that moves left, right, or stays, over `num_frames` frames at 25 fps."""
    import av
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    step = {0: -4, 1: 4, 2: 0}[class_index]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = fractions.Fraction(1, 25)
        for index in range(num_frames):
            pixels = np.full((height, width, 3), 20 + 10 * variant, dtype=np.uint8)
            left = (width // 2 + step * index) % (width - 6)
            pixels[:, left : left + 6] = (230, 200 - 20 * class_index, 40 * variant % 255)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_video_folder(root: Path, split_sizes: dict[str, int] = SPLIT_SIZES) -> Path:
    """`root/{train,validation,test}/<class>/<n>.mp4`, the videofolder layout."""
    for split, count in split_sizes.items():
        for class_index, name in enumerate(CLASSES):
            for variant in range(count):
                write_clip(root / split / name / f"{variant}.mp4", class_index, variant)
    return root


def write_class_names(path: Path) -> Path:
    path.write_text("\n".join(CLASSES) + "\n", encoding="utf-8")
    return path


def write_webdataset_shards(folder: Path, root: Path, split: str, num_shards: int = 2) -> list[Path]:
    """The videos of `root/split` as webdataset shards `folder/split/split-0000N.tar` of `{key}.mp4` + `{key}.cls`."""
    videos = sorted((root / split).glob("*/*.mp4"))
    (folder / split).mkdir(parents=True, exist_ok=True)
    shards = [folder / split / f"{split}-{shard:05d}.tar" for shard in range(num_shards)]
    for shard, shard_path in enumerate(shards):
        with tarfile.open(shard_path, "w") as archive:
            for video in videos[shard::num_shards]:
                key = f"{video.parent.name}_{video.stem}"
                archive.add(video, arcname=f"{key}.mp4")
                label = folder / f"{key}.cls"
                label.write_text(str(CLASSES.index(video.parent.name)))
                archive.add(label, arcname=f"{key}.cls")
                label.unlink()
    return shards


def tiny_run(output_dir: Path, *arguments: str) -> list[str]:
    """Command-line arguments of a quick CPU run of the tiny model, followed by `arguments`."""
    return [
        "--config_overrides",
        TINY_MODEL,
        "--output_dir",
        str(output_dir),
        "--cache_dir",
        str(output_dir.parent / f"{output_dir.name}-cache"),
        "--use_cpu",
        "--report_to",
        "none",
        "--learning_rate",
        "1e-3",
        "--per_device_train_batch_size",
        "4",
        "--per_device_eval_batch_size",
        "4",
        "--logging_steps",
        "1",
        "--save_strategy",
        "no",
        "--seed",
        "0",
        *arguments,
    ]
