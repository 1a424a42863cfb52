"""
What both XViT processors share: the defaults of the original's test-time pixel pipeline, its resize size, and the
checks of the options they have in common (run when a processor is built, so a bad saved config fails on loading, and
on every call, before any frame is decoded or copied).
"""

import math
from collections.abc import Mapping

from transformers.image_utils import PILImageResampling, SizeDict
from transformers.utils import logging

from .clip_sampling import SAMPLING_STRATEGIES, short_side_size

logger = logging.get_logger(__name__)

# A request whose pixels for one video would need more than this many bytes is refused before any decoding: a
# downloaded processor config could otherwise ask for enough frames or pixels to exhaust the machine's memory.
MAX_PIXEL_BYTES_PER_VIDEO = 4 * 2**30


class XViTProcessingDefaults:
    """Class attributes of the original XViT test pipeline: short side 224 (bilinear, without antialiasing), centre
    crop 224, [0, 1] pixels normalised with mean and std 0.5; 16-frame clips, TSN-style segment sampling by default."""

    resample = PILImageResampling.BILINEAR
    antialias = False
    image_mean = [0.5, 0.5, 0.5]
    image_std = [0.5, 0.5, 0.5]
    size = {"shortest_edge": 224}
    default_to_square = False
    crop_size = {"height": 224, "width": 224}
    do_resize = True
    do_center_crop = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    do_convert_rgb = True
    num_frames = 16
    sampling = "segment"
    sampling_rate = 16
    target_fps = 30.0
    model_input_names = ["pixel_values"]


def resize_size(height: int, width: int, size: SizeDict) -> SizeDict:
    """
    The `(height, width)` a `(height, width)` frame is resized to. A `shortest_edge` size is turned into the original's
    exact size (the long side is the floor of the aspect ratio times the short side, and a frame whose short side
    already has that size keeps its size); other sizes are left to the processor's `resize`.
    """
    if not size.shortest_edge or size.longest_edge:
        return size
    new_height, new_width = short_side_size(height, width, size.shortest_edge)
    return SizeDict(height=new_height, width=new_width)


def check_sampling_options(options: Mapping) -> None:
    """Check the clip sampling options both processors take."""
    check_positive_int("num_frames", options["num_frames"])
    if options["sampling"] not in SAMPLING_STRATEGIES:
        raise ValueError(f"`sampling` must be one of {SAMPLING_STRATEGIES}, got {options['sampling']!r}.")
    check_positive_int("sampling_rate", options["sampling_rate"])
    check_positive_number("target_fps", options["target_fps"])


def check_pixel_options(options: Mapping, crops: bool) -> None:
    """
    Check the pixel options both processors take (standardised: `size` and `crop_size` are `SizeDict`s). `crops`:
    whether the call crops (centre crops, or random ones in training), so that `crop_size` must be complete.
    """
    check_size("size", options["size"], required=options["do_resize"], shortest_edge_allowed=True)
    check_size("crop_size", options["crop_size"], required=crops, shortest_edge_allowed=False)
    if options["do_rescale"]:
        check_positive_number("rescale_factor", options["rescale_factor"])
    if options["do_normalize"]:
        check_channel_values("image_mean", options["image_mean"], positive=False)
        check_channel_values("image_std", options["image_std"], positive=True)


def check_positive_int(name: str, value, minimum: int = 1) -> None:
    if not _is_int(value) or value < minimum:
        raise ValueError(f"`{name}` must be an integer of at least {minimum}, got {value!r}.")


def check_positive_number(name: str, value) -> None:
    if not _is_number(value) or not 0 < value < math.inf:
        raise ValueError(f"`{name}` must be a positive finite number, got {value!r}.")


def check_size(name: str, size: SizeDict | None, required: bool, shortest_edge_allowed: bool) -> None:
    """Every entry given is a positive integer; a size the call uses has `height` and `width` (or `shortest_edge`)."""
    for key, value in dict(size or {}).items():
        if value is not None and (not _is_int(value) or value < 1):
            raise ValueError(f"`{name}[{key!r}]` must be a positive integer, got {value!r}.")
    if required and not (
        (size and size.height and size.width) or (shortest_edge_allowed and size and size.shortest_edge)
    ):
        expected = "`shortest_edge`, or `height` and `width`" if shortest_edge_allowed else "`height` and `width`"
        raise ValueError(f"`{name}` must give {expected}, got {dict(size) if size else size}.")


def check_channel_values(name: str, values, positive: bool) -> None:
    """`image_mean` / `image_std`: one number, or one per RGB channel; finite, and positive for a divisor."""
    numbers = values if isinstance(values, (list, tuple)) else [values]
    valid = len(numbers) in (1, 3) and all(_is_number(value) and math.isfinite(value) for value in numbers)
    if not valid or (positive and not all(value > 0 for value in numbers)):
        kind = "positive finite numbers" if positive else "finite numbers"
        raise ValueError(f"`{name}` must be one or three (one per RGB channel) {kind}, got {values!r}.")


def check_pixel_budget(num_frames: int, frame_bytes: int, what: str) -> None:
    """Refuse `num_frames` frames of `frame_bytes` bytes each when they would exceed `MAX_PIXEL_BYTES_PER_VIDEO`."""
    needed = num_frames * frame_bytes
    if needed > MAX_PIXEL_BYTES_PER_VIDEO:
        raise ValueError(
            f"{what} would need {needed / 2**30:.3g} GiB of pixels for one video, more than the limit of "
            f"{MAX_PIXEL_BYTES_PER_VIDEO / 2**30:g} GiB (`MAX_PIXEL_BYTES_PER_VIDEO` in processing_defaults.py): "
            "lower `num_frames`, the views or the sizes."
        )


def frame_bytes(resized_pixels: int | None, crop_size: SizeDict | None, num_crops: int = 1) -> int:
    """
    Bytes that one sampled frame needs at least: its resized copy (`resized_pixels` pixels, uint8; `None` when not
    resized, counted as nothing) and its `num_crops` float32 outputs (the crop, else the resized frame).
    """
    output_pixels = crop_size.height * crop_size.width if crop_size is not None else (resized_pixels or 1)
    return 3 * (resized_pixels or 0) + num_crops * 3 * output_pixels * 4


def resized_pixels(size: SizeDict) -> int:
    """Pixels of a frame resized to `size` (a lower bound for `shortest_edge`: a square frame)."""
    return size.height * size.width if size.height and size.width else size.shortest_edge**2


def warn_already_rescaled() -> None:
    """Warn, as Transformers' image processors do, that float frames in [0, 1] are about to be rescaled again."""
    logger.warning_once(
        "It looks like you are trying to rescale already rescaled video frames. If the input frames have pixel values "
        "between 0 and 1, set `do_rescale=False` to avoid rescaling them again (the result would be about -1 "
        "everywhere)."
    )


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
