"""
Reading prepared shards (`prepare.py`): the splits of a prepared folder as `datasets` webdataset splits (local or
streamed; the training script's rows, streaming and split by node apply to them unchanged), and the training clips of
a prepared video.

A prepared video holds the source's frames at a smaller size. Its training clips are drawn as the processor draws them
from the source (same random draws in the same order: the scale, the frame indices, the crop), and its frames are
resized to the size the source's frames would be resized to, read from the video's tag; so a clip samples the same
frame indices, and its pixels differ from the source's only by the re-encoding (and the second bilinear resize).
"""

import json
import random
from pathlib import Path
from typing import Any

import av
import datasets
import torch
from transformers.image_utils import SizeDict

from modeling_xvit.clip_sampling import random_crop_box, short_side_size
from modeling_xvit.training.prepare import PREPARED_TAG, load_index
from modeling_xvit.video_decoding import read_video_frames

# Columns of a prepared shard read by `datasets`' webdataset builder: the video and the class index.
VIDEO_COLUMN, LABEL_COLUMN, METADATA_COLUMN = "mp4", "cls", "json"


def load_prepared_splits(
    folder: str | Path, streaming: bool = False, cache_dir: str | None = None, label_column: str = LABEL_COLUMN
) -> tuple[dict[str, datasets.Dataset | datasets.IterableDataset], list[str]]:
    """The splits of a prepared folder, read by `datasets` (streamed when `streaming`), and the class names. The videos
    are read as bytes, the labels as a `ClassLabel` column `label_column` (the index's class names), so that the
    training script finds the classes without --class_names."""
    index = load_index(folder)
    data_files = {
        split: [str(Path(folder) / shard["path"]) for shard in entry["shards"] if shard["videos"]]
        for split, entry in index["splits"].items()
    }
    data_files = {split: files for split, files in data_files.items() if files}
    if not data_files:
        raise ValueError(f"The prepared folder {folder} holds no videos (see its index.json for the bad ones).")
    loaded = datasets.load_dataset("webdataset", data_files=data_files, streaming=streaming, cache_dir=cache_dir)
    # Videos are decoded by the collator, never by `datasets` (whose video decoding needs torchcodec).
    splits = {}
    for split, rows in loaded.items():
        rows = rows.cast_column(VIDEO_COLUMN, datasets.Video(decode=False))
        rows = rows.rename_column(LABEL_COLUMN, label_column) if label_column != LABEL_COLUMN else rows
        splits[split] = rows.cast_column(label_column, datasets.ClassLabel(names=index["class_names"]))
    return splits, index["class_names"]


def prepared_sizes(video: str | bytes) -> dict[str, int] | None:
    """The source's and the prepared frame sizes of a prepared video (its MP4 comment tag), or None for any other
    video. The tag is found in the bytes of a video in memory (opening the container costs a stream probe, a fifth of
    the decoding of a clip); files are opened."""
    if isinstance(video, bytes):
        start = video.rfind(PREPARED_TAG.encode())
        if start < 0:
            return None
        end = video.find(b"}", start)
        return json.loads(video[start + len(PREPARED_TAG) : end + 1])
    try:
        with av.open(video) as container:
            comment = container.metadata.get("comment", "")
    except (av.FFmpegError, OSError):
        return None  # not ours to judge: the decoder reports unreadable videos with their reason
    return json.loads(comment.removeprefix(PREPARED_TAG)) if comment.startswith(PREPARED_TAG) else None


def training_crops(processor, video: str | bytes, **processing) -> torch.Tensor:
    """
    The uint8 training crops `(views, frames, 3, H, W)` of a video (prepared or not), before flip, RandAugment and
    normalisation (see `augment.py`), with the random draws of the processor's training path: the scale, then the
    frame indices, then each view's crop, from `random`.
    """
    sizes = prepared_sizes(video)
    if sizes is None:
        no_pixel_augmentation = dict(do_flip=False, do_rand_augment=False, do_rescale=False, do_normalize=False)
        return processor(video, return_tensors="pt", **{**processing, **no_pixel_augmentation}).pixel_values

    def option(name: str):
        return processing.get(name, getattr(processor, name))

    height, width = short_side_size(sizes["height"], sizes["width"], random.randint(*option("scale_jitter")))
    crop = SizeDict(**dict(option("crop_size")))
    num_views = option("num_temporal_views")

    boxes = []  # each view's crop (top, left), drawn right after the frame indices as the processor draws them

    def sample_indices(metadata) -> list[int]:
        indices = processor.sample_frames(
            metadata,
            num_frames=option("num_frames"),
            sampling=option("sampling"),
            num_temporal_views=num_views,
            do_augment=True,
            sampling_rate=option("sampling_rate"),
            target_fps=option("target_fps"),
        )
        boxes.extend(random_crop_box(height, width, crop.height, crop.width) for _ in range(num_views))
        return indices

    def resize_and_crop(frames: torch.Tensor) -> torch.Tensor:
        """Resized as the source's frames would be, then cut to the box that holds every view's crop, so that full
        frames are never stacked."""
        size = SizeDict(height=height, width=width)
        frames = processor.resize(frames, size, resample=option("resample"), antialias=option("antialias"))
        (top, left), (bottom, right) = map(min, zip(*boxes, strict=True)), map(max, zip(*boxes, strict=True))
        return frames[..., top : bottom + crop.height, left : right + crop.width]

    frames, _ = read_video_frames(video, sample_indices, option("decoding_backend"), resize_and_crop)
    top, left = map(min, zip(*boxes, strict=True))
    crops = [
        clip[..., box_top - top : box_top - top + crop.height, box_left - left : box_left - left + crop.width]
        for clip, (box_top, box_left) in zip(frames.reshape(num_views, -1, *frames.shape[1:]), boxes, strict=True)
    ]
    return torch.stack(crops)


def metadata_of(row: dict[str, Any]) -> dict[str, Any]:
    """The metadata a prepared shard stores with a video (source, label, frame count, frame rate, sizes)."""
    value = row[METADATA_COLUMN]
    return json.loads(value) if isinstance(value, str | bytes) else dict(value)


__all__ = ["load_prepared_splits", "metadata_of", "prepared_sizes", "training_crops"]
