"""The strip of sampled frames: what an XViT model sees of a video, one labelled row per view, with its prediction as
caption.

    from modeling_xvit.demo.frame_strip import frame_strip, prediction_caption

    predictions = classifier("clip.mp4")  # pipeline("video-classification") or the Inference Endpoints handler
    frame_strip("clip.mp4", processor, caption=prediction_caption(predictions), path="clip.png")

The frames come from the video processor itself, with rescaling and normalisation turned off: the same decoding, clip
sampling, resize and crops as the model's input, as uint8 pixels. The Space (`examples/space/app.py`) and the demo draw
their pictures with it. It imports only torch and Pillow (the processor is passed in), so a Space can ship it beside
its app without this package.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw, ImageFont

GAP = 6  # pixels between frames, rows and text lines
BACKGROUND = (255, 255, 255)
TEXT_COLOUR = (20, 20, 20)
INDEX_COLOUR = (90, 90, 90)


def view_labels(num_temporal_views: int, num_spatial_crops: int, portrait: bool = False) -> list[str]:
    """The name of each view in the processor's layout (temporal view by temporal view, then crop by crop). Three
    crops run along the frame's longer side, as the processor takes them."""
    if num_spatial_crops == 1:
        crops = ("centre",)
    else:
        crops = ("top", "centre", "bottom") if portrait else ("left", "centre", "right")
    return [
        f"clip {clip + 1} of {num_temporal_views}, {crop} crop" for clip in range(num_temporal_views) for crop in crops
    ]


def sampled_views(video: Any, processor: Any, **view_options: int) -> tuple[torch.Tensor, list[list[int]], list[str]]:
    """The clips the model sees of `video`, before rescaling and normalisation, the frame indices of each and its name.

    Args:
        video: anything the processor takes (a path, an http(s) URL, bytes, decoded frames).
        processor: the model's `XViTVideoProcessor` (or the class that `AutoVideoProcessor` loads as remote code).
        view_options: `num_temporal_views` and `num_spatial_crops`; default the processor's own.

    Returns:
        `(views, frame_indices, labels)`: uint8 pixels `(num_temporal_views * num_spatial_crops, num_frames, 3,
        height, width)` in the processor's view layout (temporal view by temporal view, then crop by crop), for each
        view the indices of its frames in the video, and its name (`view_labels`).
    """
    features = processor(
        video, do_rescale=False, do_normalize=False, return_tensors="pt", return_metadata=True, **view_options
    )
    views = features["pixel_values"]
    metadata = features["video_metadata"][0]
    num_crops = view_options.get("num_spatial_crops") or processor.num_spatial_crops
    num_frames = views.shape[1]
    indices = metadata.frames_indices
    view_indices = [list(indices[start : start + num_frames]) for start in range(0, len(indices), num_frames)]
    portrait = (metadata.height or 0) > (metadata.width or 0)
    labels = view_labels(len(view_indices), num_crops, portrait)
    return views, [frames for frames in view_indices for _ in range(num_crops)], labels


def render_frame_strip(
    views: torch.Tensor,
    frame_indices: Sequence[Sequence[int]] | None = None,
    caption: str | None = None,
    frame_height: int | None = 128,
    labels: Sequence[str] | None = None,
) -> Image.Image:
    """Lay clips out as a picture: one row per view, frames left to right, the caption above, each row's label above
    it and each frame's index in the video under it.

    Args:
        views: uint8 pixels `(views, frames, 3, height, width)` (see `sampled_views`).
        frame_indices: for each view, its frames' indices in the video, written under the frames.
        caption: the text above the rows, for example `prediction_caption(predictions)`.
        frame_height: height of each frame in the picture (nearest-neighbour when enlarging, so the model's pixels
            stay visible); `None` keeps the model's size.
        labels: a name for each view, written above its row (see `view_labels`).

    Returns:
        An RGB `PIL.Image.Image`.
    """
    if views.ndim != 5 or views.shape[2] != 3 or views.dtype != torch.uint8:
        raise ValueError(
            f"`views` must be uint8 pixels (views, frames, 3, height, width), got {views.dtype} of shape"
            f" {tuple(views.shape)}."
        )
    if frame_indices is not None and [len(indices) for indices in frame_indices] != [views.shape[1]] * len(views):
        raise ValueError(
            f"`frame_indices` must hold {views.shape[1]} indices for each of the {len(views)} views, got"
            f" {[len(indices) for indices in frame_indices]}."
        )
    if labels is not None and len(labels) != len(views):
        raise ValueError(f"`labels` must name each of the {len(views)} views, got {len(labels)} labels.")
    num_views, num_frames, _, height, width = views.shape
    size = (width, height) if frame_height is None else (max(1, round(width * frame_height / height)), frame_height)
    font = ImageFont.load_default(size=max(12, size[1] // 9))
    caption_font = ImageFont.load_default(size=max(16, size[1] // 6))
    top = GAP + (caption_font.getbbox(caption)[3] + GAP if caption else 0)
    label_height = font.getbbox("clip 0")[3] + GAP if labels is not None else 0
    row_height = label_height + size[1] + GAP + (font.getbbox("frame 0")[3] + GAP if frame_indices is not None else 0)
    strip_width = GAP + num_frames * (size[0] + GAP)
    caption_width = 2 * GAP + caption_font.getbbox(caption)[2] if caption else 0
    label_width = 2 * GAP + max(font.getbbox(label)[2] for label in labels) if labels else 0
    picture_width = max(strip_width, caption_width, label_width)
    picture = Image.new("RGB", (picture_width, top + num_views * row_height), BACKGROUND)
    draw = ImageDraw.Draw(picture)
    if caption:
        draw.text((GAP, GAP), caption, fill=TEXT_COLOUR, font=caption_font)
    for view, clip in enumerate(views):
        y = top + view * row_height
        if labels is not None:
            draw.text((GAP, y), labels[view], fill=TEXT_COLOUR, font=font)
            y += label_height
        for position, frame in enumerate(clip):
            x = GAP + position * (size[0] + GAP)
            picture.paste(_frame_image(frame, size), (x, y))
            if frame_indices is not None:
                index = f"frame {frame_indices[view][position]}"
                draw.text((x, y + size[1] + GAP // 2), index, fill=INDEX_COLOUR, font=font)
    return picture


def frame_strip(
    video: Any,
    processor: Any,
    caption: str | None = None,
    path: str | Path | None = None,
    frame_height: int | None = 128,
    **view_options: int,
) -> Image.Image:
    """The picture of what the model sees of `video` (see `sampled_views` and `render_frame_strip`).

    Args:
        video: anything the processor takes (a path, an http(s) URL, bytes, decoded frames).
        processor: the model's video processor.
        caption: the text above the frames, for example `prediction_caption(predictions)`.
        path: where to save the picture as PNG (its folder is created), if given.
        frame_height: height of each frame in the picture; `None` keeps the model's size.
        view_options: `num_temporal_views` and `num_spatial_crops` (default the processor's): one row per view,
            labelled when there are several.

    Returns:
        The picture, an RGB `PIL.Image.Image`.
    """
    views, frame_indices, labels = sampled_views(video, processor, **view_options)
    picture = render_frame_strip(views, frame_indices, caption, frame_height, labels if len(views) > 1 else None)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        picture.save(path, format="PNG")
    return picture


def prediction_caption(predictions: Sequence[dict[str, Any]]) -> str:
    """`"label (87.3%)"` for the best of `[{"label", "score"}, ...]` (the pipeline's and the handler's answer)."""
    if not predictions:
        raise ValueError("`predictions` is empty: expected [{'label': ..., 'score': ...}, ...], best first.")
    best = max(predictions, key=lambda prediction: prediction["score"])
    return f"{best['label']} ({best['score']:.1%})"


def _frame_image(frame: torch.Tensor, size: tuple[int, int]) -> Image.Image:
    image = Image.fromarray(frame.permute(1, 2, 0).contiguous().numpy())
    if image.size == size:
        return image
    enlarging = size[1] > image.height
    return image.resize(size, Image.Resampling.NEAREST if enlarging else Image.Resampling.LANCZOS)
