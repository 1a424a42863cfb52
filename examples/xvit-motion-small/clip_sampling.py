"""
Clip sampling of the original XViT data pipeline, shared by `XViTVideoProcessor` and `XViTImageProcessor`.

Temporal sampling picks which frames of a video form a clip; spatial views pick where a crop sits in a frame.
Everything here works on frame counts and sizes only (no decoding, no pixels), so both processors and any training
script use the same rules.

- `"segment"` sampling (TSN style, the original's Something-Something-v2 loader): the video is cut into `num_frames`
  equal segments; training takes a random frame in each, evaluation the middle one, and the test views take the
  middle, the start or the end of every segment.
- `"dense"` sampling (the original's Kinetics loader): a clip spans `num_frames * sampling_rate` frames at
  `target_fps`; training starts it at a random frame, the test views start at `num_clips` evenly spaced positions
  (`delta * view / num_clips`, so a single view starts at the first frame, as in the original). The frames inside the
  clip are placed with a float32 `torch.linspace` and truncated, exactly as the original does: float64 arithmetic
  truncates a few exact-integer ties the other way (one frame off on about 0.2 % of the indices of 3-view testing at
  25 fps).

Indices are always clamped to `[0, total_num_frames - 1]`: a video shorter than the clip is padded by repeating frames,
exactly as the original does. A video with one frame gives a clip of that frame repeated.
"""

import math
import random
from typing import Literal

import torch

SAMPLING_STRATEGIES = ("segment", "dense")
SEGMENT_TEST_VIEWS = ("middle", "start", "end")
CROP_POSITIONS = ("start", "centre", "end")


def segment_indices(
    total_num_frames: int, num_frames: int, view: int | None = 0, rng: random.Random | None = None
) -> list[int]:
    """
    TSN-style indices: one frame from each of `num_frames` equal segments of the video.

    Args:
        total_num_frames (`int`): Frames in the video.
        num_frames (`int`): Frames in the clip (= segments).
        view (`int` or `None`): `None` picks a random frame in each segment (training); 0, 1 and 2 pick the
            middle, the start and the end of each segment (evaluation uses 0).
        rng (`random.Random`, *optional*): Source of randomness for training; defaults to the `random` module.
    """
    _check_counts(total_num_frames, num_frames)
    if view is not None and not 0 <= view < len(SEGMENT_TEST_VIEWS):
        raise ValueError(
            f"Segment sampling has {len(SEGMENT_TEST_VIEWS)} test views ({', '.join(SEGMENT_TEST_VIEWS)}), got view "
            f"{view}."
        )
    rng = rng or random
    segment_size = (total_num_frames - 1) / num_frames
    indices = []
    for i in range(num_frames):
        start, end = round(segment_size * i), round(segment_size * (i + 1))
        if view is None:
            indices.append(rng.randint(start, end))
        else:
            indices.append(((start + end) // 2, start, end)[view])
    return indices


def dense_indices(
    total_num_frames: int,
    num_frames: int,
    sampling_rate: int,
    video_fps: float | None = None,
    target_fps: float = 30.0,
    view: int | None = 0,
    num_clips: int = 1,
    rng: random.Random | None = None,
) -> list[int]:
    """
    Dense indices: `num_frames` evenly spaced frames over `num_frames * sampling_rate` frames at `target_fps`.

    Args:
        total_num_frames (`int`): Frames in the video.
        num_frames (`int`): Frames in the clip.
        sampling_rate (`int`): Distance between two sampled frames, counted at `target_fps`.
        video_fps (`float`, *optional*): Frame rate of the video; unknown (`None`) counts as `target_fps`.
        target_fps (`float`): Frame rate the span is measured at (30 in the original).
        view (`int` or `None`): `None` starts the clip at a random frame (training); `i` starts it at the i-th of
            `num_clips` evenly spaced positions.
        num_clips (`int`): Number of evenly spaced test clips.
        rng (`random.Random`, *optional*): Source of randomness for training; defaults to the `random` module.
    """
    _check_counts(total_num_frames, num_frames)
    if sampling_rate < 1:
        raise ValueError(f"`sampling_rate` must be at least 1, got {sampling_rate}.")
    if view is not None and not 0 <= view < num_clips:
        raise ValueError(f"Dense sampling with {num_clips} clips has views 0 to {num_clips - 1}, got view {view}.")
    video_fps = video_fps if video_fps else target_fps
    clip_span = sampling_rate * num_frames / target_fps * video_fps
    delta = max(total_num_frames - clip_span, 0)
    start = (rng or random).uniform(0, delta) if view is None else delta * view / num_clips
    end = start + clip_span - 1
    positions = torch.linspace(start, end, num_frames, dtype=torch.float32)
    return positions.clamp(0, total_num_frames - 1).long().tolist()


def sample_clip_indices(
    total_num_frames: int,
    num_frames: int,
    sampling: Literal["segment", "dense"] = "segment",
    num_views: int = 1,
    random_sampling: bool = False,
    sampling_rate: int = 16,
    video_fps: float | None = None,
    target_fps: float = 30.0,
    rng: random.Random | None = None,
) -> list[list[int]]:
    """
    Frame indices of `num_views` clips of one video, in view order.

    Evaluation (`random_sampling=False`) is deterministic: segment sampling takes the middle / start / end test views
    (at most 3), dense sampling `num_views` evenly spaced clips. Training (`random_sampling=True`) draws every view
    independently at random.

    Returns:
        `list[list[int]]`: `num_views` lists of `num_frames` indices into the video, each in `[0, total_num_frames)`.
    """
    if sampling not in SAMPLING_STRATEGIES:
        raise ValueError(f"`sampling` must be one of {SAMPLING_STRATEGIES}, got {sampling!r}.")
    if num_views < 1:
        raise ValueError(f"`num_views` must be at least 1, got {num_views}.")
    views = [None] * num_views if random_sampling else list(range(num_views))
    if sampling == "segment":
        return [segment_indices(total_num_frames, num_frames, view=view, rng=rng) for view in views]
    return [
        dense_indices(
            total_num_frames,
            num_frames,
            sampling_rate,
            video_fps=video_fps,
            target_fps=target_fps,
            view=view,
            num_clips=num_views,
            rng=rng,
        )
        for view in views
    ]


def short_side_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """
    (height, width) after scaling the shorter side to `short_side` and keeping the aspect ratio, rounded as the
    original: the long side is `floor(long / short * short_side)`, and a frame whose short side is already
    `short_side` keeps its size.
    """
    if min(height, width) == short_side:
        return height, width
    if height <= width:
        return short_side, math.floor(width / height * short_side)
    return math.floor(height / width * short_side), short_side


def spatial_crop_boxes(
    height: int, width: int, crop_height: int, crop_width: int, num_crops: int = 1
) -> list[tuple[int, int]]:
    """
    Top-left corners (top, left) of the test crops: 1 crop is centred; 3 crops run along the longer side
    (left / centre / right for landscape frames, top / centre / bottom for portrait ones), as in the original.
    """
    if num_crops not in (1, 3):
        raise ValueError(f"`num_spatial_crops` must be 1 or 3, got {num_crops}.")
    if crop_height > height or crop_width > width:
        raise ValueError(
            f"Cannot take a {crop_height}x{crop_width} crop from a {height}x{width} frame: resize the frame first."
        )
    positions = ("centre",) if num_crops == 1 else CROP_POSITIONS
    return [_crop_box(height, width, crop_height, crop_width, position) for position in positions]


def random_crop_box(
    height: int, width: int, crop_height: int, crop_width: int, rng: random.Random | None = None
) -> tuple[int, int]:
    """Top-left corner (top, left) of a random crop, the same for every frame of a clip."""
    if crop_height > height or crop_width > width:
        raise ValueError(f"Cannot take a {crop_height}x{crop_width} crop from a {height}x{width} frame.")
    rng = rng or random
    return rng.randint(0, height - crop_height), rng.randint(0, width - crop_width)


def _crop_box(height: int, width: int, crop_height: int, crop_width: int, position: str) -> tuple[int, int]:
    # The original centres with ceil and moves along the longer side only.
    top, left = math.ceil((height - crop_height) / 2), math.ceil((width - crop_width) / 2)
    if position == "centre":
        return top, left
    if height > width:
        return (0 if position == "start" else height - crop_height), left
    return top, (0 if position == "start" else width - crop_width)


def _check_counts(total_num_frames: int, num_frames: int) -> None:
    if total_num_frames < 1:
        raise ValueError(f"Cannot sample a clip from a video with {total_num_frames} frames.")
    if num_frames < 1:
        raise ValueError(f"`num_frames` must be at least 1, got {num_frames}.")
