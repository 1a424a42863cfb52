"""
Reading prepared shards (`prepare.py`): the splits of a prepared folder as `datasets` webdataset splits (local or
streamed; the training script's rows, streaming and split by node apply to them unchanged), and the training clips of
a prepared video.

A prepared video holds the source's frames at a smaller size. Its training clips are drawn as the processor draws them
from the source (same random draws in the same order: the scale, the frame indices, the crop), and its frames are
resized to the size the source's frames would be resized to, read from the video's tag; so a clip samples the same
frame indices, and its pixels differ from the source's only by the re-encoding (and the second bilinear resize).

For an accelerator, a clip can also be handed over before colour conversion and resize (`training_clip` with
`planes=True`): the decoded YUV planes of the region its crops read, and the bilinear taps of the resize;
`planes_to_crops` makes the crops on the device, within a level or so of the RGB crops (FFmpeg's scaler rounds to 8
bits before the resize).
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
from modeling_xvit.processing_defaults import check_pixel_budget
from modeling_xvit.training.prepare import PREPARED_TAG, load_index
from modeling_xvit.video_decoding import read_video_frames, video_name

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
        tag = video[start + len(PREPARED_TAG) : video.find(b"}", start) + 1]
    else:
        try:
            with av.open(video) as container:
                comment = container.metadata.get("comment", "")
        except (av.FFmpegError, OSError):
            return None  # not ours to judge: the decoder reports unreadable videos with their reason
        if not comment.startswith(PREPARED_TAG):
            return None
        tag = comment.removeprefix(PREPARED_TAG)
    return _checked_sizes(tag, video)


SIZES = ("height", "width", "prepared_height", "prepared_width")


def _checked_sizes(tag: str | bytes, video: str | bytes) -> dict[str, int]:
    """The sizes of a prepared video's tag, refused (ValueError, naming the video) unless they are positive integers:
    a damaged or hostile file's tag must not reach the arithmetic of the crops."""
    try:
        sizes = json.loads(tag)
    except (json.JSONDecodeError, UnicodeDecodeError):
        sizes = None
    if not isinstance(sizes, dict) or not all(type(sizes.get(key)) is int and sizes[key] > 0 for key in SIZES):
        raise ValueError(
            f"Video {video_name(video)} has a damaged prepared-video tag: expected positive integers {SIZES}, got "
            f"{tag[:200]!r}."
        )
    return {key: sizes[key] for key in SIZES}


def training_clip(
    processor, video: str | bytes, planes: bool = False, **processing
) -> torch.Tensor | dict[str, torch.Tensor]:
    """
    A video's training clip (prepared or not) before flip, RandAugment and normalisation (see `augment.py`), with the
    random draws of the processor's training path: the scale, then the frame indices, then each view's crop, from
    `random`: its uint8 crops `(views, frames, 3, H, W)`, or, for a prepared video when `planes`, what
    `planes_to_crops` makes them from on the accelerator (see `_yuv_planes`).
    """
    sizes = prepared_sizes(video)
    if sizes is None:
        no_pixel_augmentation = dict(do_flip=False, do_rand_augment=False, do_rescale=False, do_normalize=False)
        return processor(video, return_tensors="pt", **{**processing, **no_pixel_augmentation}).pixel_values
    clip = _PreparedClip(processor, video, sizes, processing)
    return _yuv_planes(clip, video) if planes else _rgb_crops(clip, video)


def _rgb_crops(clip: "_PreparedClip", video: str | bytes) -> torch.Tensor:
    """A prepared video's uint8 crops `(views, frames, 3, H, W)`."""
    processor = clip.processor

    def resize_and_crop(frames: torch.Tensor) -> torch.Tensor:
        """Resized as the source's frames would be, then cut to the box that holds every view's crop, so that full
        frames are never stacked."""
        clip.check_frame_size(*frames.shape[-2:])
        size = SizeDict(height=clip.height, width=clip.width)
        frames = processor.resize(frames, size, resample=clip.option("resample"), antialias=clip.option("antialias"))
        (top, bottom), (left, right) = clip.union_box()
        return frames[..., top:bottom, left:right]

    frames, _ = read_video_frames(video, clip.sample_indices, clip.option("decoding_backend"), resize_and_crop)
    (top, _), (left, _) = clip.union_box()
    crop = clip.crop
    crops = [
        views[..., box_top - top : box_top - top + crop.height, box_left - left : box_left - left + crop.width]
        for views, (box_top, box_left) in zip(frames.unflatten(0, (clip.num_views, -1)), clip.boxes, strict=True)
    ]
    return torch.stack(crops)


def _yuv_planes(clip: "_PreparedClip", video: str | bytes) -> dict[str, torch.Tensor]:
    """
    A prepared video's training clip before colour conversion and resize: the YUV 4:2:0 planes of the region of the
    prepared frames that the views' crops read, and, per view, the bilinear taps of the resize into it.

    Returns: `luma` `(views, frames, h, w)` and `chroma` `(views, frames, 2, h / 2, w / 2)` uint8 (U, V);
    `rows` `(views, 2, H)` and `columns` `(views, 2, W)` int64: the two region rows (columns) that each row (column)
    of a crop is interpolated between; `row_weights` `(views, H)` and `column_weights` `(views, W)` float32: the
    second one's weight.
    """
    taps, region = [], []  # region: (top, bottom, left, right), even so that chroma samples align

    def crop_region(frames: torch.Tensor) -> torch.Tensor:
        """Packed `(n, h * 3 / 2, w)` YUV frames cut to the region, repacked as `(n, h' * 3 / 2, w')`."""
        if not region:  # the first chunk: the crops were drawn with the frame indices
            taps.extend(clip.taps())
            (rows, _), (columns, _) = taps
            region.extend((int(rows.min()) // 2 * 2, int(rows.max()) // 2 * 2 + 2))
            region.extend((int(columns.min()) // 2 * 2, int(columns.max()) // 2 * 2 + 2))
        top, bottom, left, right = region
        height, width = frames.shape[-2] * 2 // 3, frames.shape[-1]
        clip.check_frame_size(height, width)
        chroma = frames[:, height:].reshape(len(frames), 2, height // 2, width // 2)
        chroma = chroma[..., top // 2 : bottom // 2, left // 2 : right // 2]
        chroma = chroma.reshape(len(frames), (bottom - top) // 2, right - left)  # U then V, as FFmpeg packs them
        return torch.cat([frames[:, top:bottom, left:right], chroma], dim=1)

    frames, _ = read_video_frames(video, clip.sample_indices, pixel_format="yuv420p", frame_transform=crop_region)
    top, bottom, left, right = region
    height, width = bottom - top, right - left
    frames = frames.unflatten(0, (clip.num_views, -1))
    (rows, row_weights), (columns, column_weights) = taps
    return {
        "luma": frames[..., :height, :],
        "chroma": frames[..., height:, :].reshape(*frames.shape[:2], 2, height // 2, width // 2),
        "rows": rows - top,
        "row_weights": row_weights,
        "columns": columns - left,
        "column_weights": column_weights,
    }


class _PreparedClip:
    """The random draws of a prepared video's training clip, in the processor's order: the scale (the source's frame
    size it gives), the frame indices, then each view's crop box (drawn as the indices are, by `sample_indices`)."""

    def __init__(self, processor, video: str | bytes, sizes: dict[str, int], processing: dict[str, Any]):
        self.processor, self.processing, self.sizes, self.name = processor, processing, sizes, video_name(video)
        scale = random.randint(*self.option("scale_jitter"))
        self.height, self.width = short_side_size(sizes["height"], sizes["width"], scale)
        self.crop = SizeDict(**dict(self.option("crop_size")))
        self.num_views = self.option("num_temporal_views")
        self.boxes: list[tuple[int, int]] = []  # each view's crop (top, left)
        # The source's size comes from the tag: its resized frames must fit the processor's budget.
        num_frames = self.option("num_frames") * self.num_views
        check_pixel_budget(num_frames, 3 * self.height * self.width, f"Video {self.name} (its prepared-video tag)")

    def check_frame_size(self, height: int, width: int) -> None:
        """Refuse frames whose size is not the one the video's tag gives (a damaged or hostile file)."""
        expected = (self.sizes["prepared_height"], self.sizes["prepared_width"])
        if (height, width) != expected:
            raise ValueError(  # raised while decoding: the decoder's error names the video
                f"its frames are {height}x{width}, but its prepared-video tag says {expected[0]}x{expected[1]}"
            )

    def option(self, name: str):
        return self.processing.get(name, getattr(self.processor, name))

    def sample_indices(self, metadata) -> list[int]:
        indices = self.processor.sample_frames(
            metadata,
            num_frames=self.option("num_frames"),
            sampling=self.option("sampling"),
            num_temporal_views=self.num_views,
            do_augment=True,
            sampling_rate=self.option("sampling_rate"),
            target_fps=self.option("target_fps"),
        )
        crop = self.crop
        self.boxes.extend(
            random_crop_box(self.height, self.width, crop.height, crop.width) for _ in range(self.num_views)
        )
        return indices

    def union_box(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """(top, bottom), (left, right) of the box that holds every view's crop, in the resized frame."""
        tops, lefts = zip(*self.boxes, strict=True)
        return (min(tops), max(tops) + self.crop.height), (min(lefts), max(lefts) + self.crop.width)

    def taps(self) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """Each view's row and column taps into the prepared frames (see `_yuv_planes`): `(rows, row_weights),
        (columns, column_weights)`."""
        tops, lefts = zip(*self.boxes, strict=True)
        rows = [_bilinear_taps(top, self.crop.height, self.sizes["prepared_height"], self.height) for top in tops]
        columns = [_bilinear_taps(left, self.crop.width, self.sizes["prepared_width"], self.width) for left in lefts]
        return tuple(tuple(map(torch.stack, zip(*taps, strict=True))) for taps in (rows, columns))


def _bilinear_taps(start: int, length: int, in_size: int, out_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The input samples and weights of output pixels `start` to `start + length` of torch's bilinear resize (without
    antialiasing, `align_corners=False`) of `in_size` pixels to `out_size`: the two samples' indices `(2, length)`
    and the second's weight `(length,)`."""
    position = ((torch.arange(start, start + length, dtype=torch.float64) + 0.5) * (in_size / out_size) - 0.5).clamp(0)
    first = position.floor()
    second = torch.where(first < in_size - 1, first + 1, first)
    return torch.stack([first, second]).long(), (position - first).float()


# ITU-R BT.601 limited range, what FFmpeg's scaler assumes for the prepared videos (written from RGB, untagged). Its
# fast YUV-to-RGB conversion truncates: measured on random planes, its R, G and B lie 1.0, 1.5 and 1.0 levels below the
# exact conversion on average; with these offsets subtracted, 71% of values agree and the rest are 1 level apart.
_YUV_TO_RGB = torch.tensor([[1.164383, 0.0, 1.596027], [1.164383, -0.391762, -0.812968], [1.164383, 2.017232, 0.0]])
_YUV_OFFSETS = torch.tensor([16.0, 128.0, 128.0])
_SCALER_OFFSETS = torch.tensor([1.0, 1.5, 1.0])


def planes_to_crops(
    luma: torch.Tensor,
    chroma: torch.Tensor,
    rows: torch.Tensor,
    row_weights: torch.Tensor,
    columns: torch.Tensor,
    column_weights: torch.Tensor,
) -> torch.Tensor:
    """
    `training_clip(..., planes=True)`'s clips (stacked on a first dimension, regions padded to one size) to uint8 RGB
    crops `(clips, frames, 3, H, W)` on their device: each plane interpolated at the crop's taps (chroma at half the
    indices: each U, V sample stands for 2 x 2 pixels, as FFmpeg's scaler upsamples it), then converted to RGB. On
    real videos the crops are within a level of the RGB crops' (mean 0.4, 99th percentile 1; more only on a few
    saturated colours, which the RGB path clips to 8 bits before it resizes; see the tests).
    """
    planes = [luma.unsqueeze(2).float(), chroma.float()]  # (clips, frames, channels, h, w)
    for plane_index, plane in enumerate(planes):
        taps = (rows, columns) if plane_index == 0 else (rows // 2, columns // 2)
        plane = _interpolate(plane, taps[0], row_weights, dim=-2)
        planes[plane_index] = _interpolate(plane, taps[1], column_weights, dim=-1)
    yuv = torch.cat(planes, dim=2) - _YUV_OFFSETS.to(luma.device).view(3, 1, 1)
    rgb = torch.einsum("cy,nfyhw->nfchw", _YUV_TO_RGB.to(luma.device), yuv)
    rgb -= _SCALER_OFFSETS.to(luma.device).view(3, 1, 1)
    return rgb.round_().clamp_(0, 255).to(torch.uint8)


def _interpolate(plane: torch.Tensor, taps: torch.Tensor, weights: torch.Tensor, dim: int) -> torch.Tensor:
    """`plane` `(clips, frames, channels, h, w)` linearly interpolated along `dim` between each clip's two taps
    `(clips, 2, n)`, the second weighted by `weights` `(clips, n)`."""
    shape = [len(plane), 1, 1, 1, 1]
    shape[dim] = taps.shape[-1]
    expanded = list(plane.shape)
    expanded[dim] = taps.shape[-1]
    first, second = (plane.gather(dim, taps[:, tap].view(shape).expand(expanded)) for tap in (0, 1))
    return first.lerp_(second, weights.view(shape))


def metadata_of(row: dict[str, Any]) -> dict[str, Any]:
    """The metadata a prepared shard stores with a video (source, label, frame count, frame rate, sizes)."""
    value = row[METADATA_COLUMN]
    return json.loads(value) if isinstance(value, str | bytes) else dict(value)


__all__ = [
    "load_prepared_splits",
    "metadata_of",
    "planes_to_crops",
    "prepared_sizes",
    "training_clip",
]
