"""
Video processor for XViT: samples clips the way the original XViT data pipeline does (see `clip_sampling.py`), decodes
only their frames (see `video_decoding.py`) and turns them into `pixel_values` of shape
`(batch * num_views, num_frames, 3, height, width)`.

It runs `BaseVideoProcessor.preprocess` unchanged (keyword validation, defaults, `device`, metadata) and fills in its
hooks: `sample_frames` (the original's clip sampling; it refuses sampling options it cannot use before any frame is
copied or decoded), `_decode_and_sample_videos` (decoded frames are sampled here), `_prepare_input_videos` (grey and
RGBA frames, the device), `_validate_preprocess_kwargs` (XViT's options, after the base's standardisation),
`_preprocess` (files decoded, views, crops, normalisation) and `resize` (the original's sizes).
Video files are decoded in `_preprocess`, not in `_decode_and_sample_videos`: the base gives that hook neither the
device nor the resize options, and decoding there would hold every sampled frame at full size on the CPU.
"""

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import ChannelDimension, SizeDict, infer_channel_dimension_format
from transformers.processing_utils import Unpack, VideosKwargs
from transformers.video_processing_utils import BaseVideoProcessor
from transformers.video_utils import VideoInput, VideoMetadata, make_batched_metadata, make_batched_videos

from .clip_sampling import SEGMENT_TEST_VIEWS, random_crop_box, sample_clip_indices, spatial_crop_boxes
from .processing_defaults import (
    XViTProcessingDefaults,
    check_pixel_budget,
    check_pixel_options,
    check_positive_int,
    check_positive_number,
    check_sampling_options,
    frame_bytes,
    resize_size,
    resized_pixels,
    warn_already_rescaled,
)
from .video_decoding import (
    DECODING_BACKENDS,
    DOWNLOAD_TIMEOUT,
    MAX_DOWNLOAD_BYTES,
    blend_on_white,
    is_encoded_video,
    read_video_frames,
    video_name,
)

RAND_AUGMENT_MAX_MAGNITUDE = 30  # torchvision's RandAugment has 31 magnitude bins


class XViTVideoProcessorKwargs(VideosKwargs, total=False):
    """
    sampling (`str`, *optional*, defaults to `"segment"`):
        Clip sampling: `"segment"` (TSN style, the original's SSv2 recipe) or `"dense"` (a fixed stride at
        `target_fps`, the original's Kinetics recipe). See `clip_sampling.py`.
    sampling_rate (`int`, *optional*, defaults to 16):
        Dense sampling only: distance between two sampled frames at `target_fps`.
    target_fps (`float`, *optional*, defaults to 30.0):
        Dense sampling only: frame rate at which `sampling_rate` is counted.
    num_temporal_views (`int`, *optional*, defaults to 1):
        Clips per video: evenly spaced clips (dense) or the middle / start / end views (segment, at most 3).
    num_spatial_crops (`int`, *optional*, defaults to 1):
        Crops per clip: 1 (centre) or 3 (left / centre / right, or top / centre / bottom for portrait videos).
    do_augment (`bool`, *optional*, defaults to `False`):
        Training mode: random clip sampling, short side scaled to a random size in `scale_jitter`, a random crop,
        a horizontal flip (if `do_flip`) and RandAugment (if `do_rand_augment`). Every temporal view is drawn
        independently; `num_spatial_crops` must then be 1.
    scale_jitter (`list[int]`, *optional*, defaults to `[256, 320]`):
        Range of the short side in training.
    do_flip (`bool`, *optional*, defaults to `True`):
        Random horizontal flip in training. Turn it off for direction-sensitive data such as SSv2.
    do_rand_augment (`bool`, *optional*, defaults to `True`):
        RandAugment (torchvision) in training, with the same operations on every frame of a clip.
    rand_augment_num_ops (`int`, *optional*, defaults to 2):
        Operations per clip.
    rand_augment_magnitude (`int`, *optional*, defaults to 9):
        Magnitude of the operations (torchvision's scale, 0 to 30).
    decoding_backend (`str`, *optional*):
        One of `video_decoding.DECODING_BACKENDS`; `None` is `"auto"`: PyAV, right on every format and the faster
        decoder. decord is used only on the formats it decodes right (see `video_decoding.py` and the README).
    max_download_bytes (`int`, *optional*, defaults to 1 GiB):
        Largest video accepted from a URL (downloads stream to a temporary file). A saved config may lower it, never
        raise it; a call may set any positive value.
    download_timeout (`float`, *optional*, defaults to 300):
        Seconds a URL download may take in all: resolving, connecting, headers and body. A saved config may lower it,
        never raise it; a call may set any positive value.
    allow_private_urls (`bool`, *optional*, defaults to `False`):
        Allow URLs whose host is loopback, private, link-local or otherwise not public (local use, tests). Off, such a
        URL or a redirect to one is refused, so that a URL from a request cannot reach the machine's own services or
        its network. A call's option only: a saved config cannot turn it on.
    allow_truncated_videos (`bool`, *optional*, defaults to `False`):
        A video file that holds fewer frames than its header announces (a truncated download or copy) is an error;
        `True` samples from the frames it holds, with a warning.
    antialias (`bool`, *optional*, defaults to `False`):
        Antialias when downscaling. The original resizes with bilinear interpolation without antialiasing
        (`torch.nn.functional.interpolate`), so converted checkpoints expect `False`; `True` gives torchvision's
        antialiased resize (up to 15 of 255 levels apart from the original on a 272 -> 224 downscale).
    """

    sampling: str | None
    sampling_rate: int | None
    target_fps: float | int | None
    num_temporal_views: int | None
    num_spatial_crops: int | None
    do_augment: bool | None
    scale_jitter: list[int] | tuple[int, ...] | None
    do_flip: bool | None
    do_rand_augment: bool | None
    rand_augment_num_ops: int | None
    rand_augment_magnitude: int | None
    decoding_backend: str | None
    max_download_bytes: int | None
    download_timeout: float | int | None
    allow_private_urls: bool | None
    allow_truncated_videos: bool | None
    antialias: bool | None


class XViTVideoProcessor(XViTProcessingDefaults, BaseVideoProcessor):
    r"""
    Video processor for XViT. It takes videos as local paths, URLs, raw bytes, file objects, or decoded frames
    (`(frames, height, width, channels)` / `(frames, channels, height, width)` arrays or tensors, a grey
    `(frames, height, width)` array, or lists of PIL images), samples `num_frames`-frame clips with the original's clip
    sampling, resizes the short side (bilinear, without antialiasing, as the original), crops and normalises (mean and
    std 0.5 on [0, 1] pixels). With `device="cuda"` the resize, crops and normalisation run on that device and
    `pixel_values` is returned there.

    Files are decoded by `video_decoding.read_video_frames`: only the sampled frames, resized as they are decoded, a
    few at a time, so a 4K video is never held whole in memory; torchcodec is never needed. A video shorter than a clip
    is padded by repeating frames (the sampled indices are clamped to the video, as in the original).

    **Layout of the views.** Each video gives `num_temporal_views * num_spatial_crops` clips, stored video by video,
    then temporal view by temporal view, then crop by crop: clip `(video b, temporal view t, crop s)` is
    `pixel_values[(b * num_temporal_views + t) * num_spatial_crops + s]`. `average_view_scores` folds the model's
    scores back to one prediction per video.

    **Limits.** Options are checked when the processor is built (so a bad saved config fails on loading) and on every
    call, before any frame is decoded: each names the option, the value and what is allowed. A request whose frames
    would need more than `MAX_PIXEL_BYTES_PER_VIDEO` (4 GiB, `processing_defaults.py`) for one video is refused before
    they are decoded or copied, counted from the video's real frame size and the resize these options give it.
    Files are decoded as players show them (rotation honoured, transparent pixels blended onto white, as RGBA arrays
    are); a truncated file is an error unless `allow_truncated_videos=True`; URLs are fetched from public addresses
    only unless a call passes `allow_private_urls=True`; a saved config cannot raise the download limits. Frames that
    would give non-finite `pixel_values` are refused. Given frames (`do_sample_frames=False`) form one temporal view;
    the spatial crops still apply.

    Args: see `XViTVideoProcessorKwargs` for the XViT-specific options; the others are those of
    `BaseVideoProcessor` (`size`, `crop_size`, `do_resize`, `do_center_crop`, `do_rescale`, `do_normalize`,
    `image_mean`, `image_std`, `num_frames`, `do_sample_frames`, `device`, ...).
    """

    do_sample_frames = True
    num_temporal_views = 1
    num_spatial_crops = 1
    do_augment = False
    scale_jitter = [256, 320]
    do_flip = True
    do_rand_augment = True
    rand_augment_num_ops = 2
    rand_augment_magnitude = 9
    decoding_backend = None
    max_download_bytes = MAX_DOWNLOAD_BYTES
    download_timeout = DOWNLOAD_TIMEOUT
    allow_private_urls = False
    allow_truncated_videos = False
    valid_kwargs = XViTVideoProcessorKwargs

    def __init__(self, **kwargs: Unpack[XViTVideoProcessorKwargs]):
        super().__init__(**kwargs)
        _check_saved_download_settings(self.max_download_bytes, self.download_timeout, self.allow_private_urls)
        # The saved settings are checked as a call's options are, so that a bad saved config fails on loading.
        self._validate_preprocess_kwargs(
            **{name: getattr(self, name, None) for name in self.valid_kwargs.__annotations__}
        )

    @property
    def num_views(self) -> int:
        """Clips per video with the saved settings: `num_temporal_views * num_spatial_crops`."""
        return self.num_temporal_views * self.num_spatial_crops

    def sample_frames(
        self,
        metadata: VideoMetadata,
        num_frames: int | None = None,
        sampling: str | None = None,
        num_temporal_views: int | None = None,
        do_augment: bool | None = None,
        sampling_rate: int | None = None,
        target_fps: float | None = None,
        fps: float | None = None,
        **kwargs,
    ) -> list[int]:
        """
        Frame indices of all the clips of one video, view after view (`num_temporal_views * num_frames` indices).
        Arguments left to `None` take the processor's values. The base pipeline calls it with the call's options
        before any frame is copied or decoded, so sampling options it cannot use are refused here, naming them.
        """
        given = dict(
            num_frames=num_frames,
            sampling=sampling,
            num_temporal_views=num_temporal_views,
            do_augment=do_augment,
            sampling_rate=sampling_rate,
            target_fps=target_fps,
            fps=fps,
        )
        options = {name: getattr(self, name) if value is None else value for name, value in given.items()}
        _check_sampling_options(options)
        views = sample_clip_indices(
            metadata.total_num_frames,
            options["num_frames"],
            sampling=options["sampling"],
            num_views=options["num_temporal_views"],
            random_sampling=options["do_augment"],
            sampling_rate=options["sampling_rate"],
            video_fps=metadata.fps,
            target_fps=options["target_fps"],
        )
        return [index for view in views for index in view]

    def average_view_scores(
        self, logits: torch.Tensor, num_views: int | None = None, apply_softmax: bool = True
    ) -> torch.Tensor:
        """
        Average the scores of all views of each video into one prediction per video, as the original's multi-view
        testing does.

        Args:
            logits (`torch.Tensor`): `(batch * num_views, num_labels)` model outputs, in the processor's view layout.
            num_views (`int`, *optional*): Views per video; defaults to `num_temporal_views * num_spatial_crops`.
            apply_softmax (`bool`): Average probabilities (the original's choice) rather than raw logits.

        Returns:
            `torch.Tensor` of shape `(batch, num_labels)`.
        """
        num_views = num_views or self.num_views
        if logits.ndim != 2 or logits.shape[0] % num_views:
            raise ValueError(
                f"`logits` must have shape (batch * num_views, num_labels) with num_views={num_views}, got "
                f"{tuple(logits.shape)}."
            )
        scores = logits.softmax(-1) if apply_softmax else logits
        return scores.reshape(-1, num_views, scores.shape[-1]).mean(1)

    def resize(
        self, image: torch.Tensor, size: SizeDict, resample=None, antialias: bool = True, **kwargs
    ) -> torch.Tensor:
        """The base resize, with a `shortest_edge` target rounded as the original (see `resize_size`)."""
        return super().resize(image, resize_size(*image.shape[-2:], size), resample, antialias=antialias, **kwargs)

    def convert_to_rgb(self, video: torch.Tensor) -> torch.Tensor:
        # Grey is repeated; uint8 RGBA is blended on white by the rule decoded files follow, so both give one clip.
        if video.shape[-3] == 4 and video.dtype == torch.uint8:
            return blend_on_white(video)
        return super().convert_to_rgb(video)

    def _decode_and_sample_videos(
        self,
        videos: VideoInput,
        video_metadata: VideoMetadata | dict | list | None,
        do_sample_frames: bool | None = None,
        sample_indices_fn: Callable | None = None,
    ) -> tuple[list, list[VideoMetadata]]:
        """
        Decoded videos: the sampled frames, as in the base; without sampling, the frames given form one temporal view
        (a `(1, frames, ...)` clip). Video files: a `_VideoFile` each, decoded in `_preprocess` (see the module
        docstring); their metadata entries are filled in then.
        """
        videos = _make_video_list(videos)
        video_metadata = _make_metadata_list(video_metadata, videos)
        sampled = []
        for index, (video, metadata) in enumerate(zip(videos, video_metadata, strict=True)):
            if is_encoded_video(video):
                sampled.append(_VideoFile(video, sample_indices_fn if do_sample_frames else None, metadata))
                continue
            video = torch.as_tensor(video) if not isinstance(video, torch.Tensor) else video
            if video.ndim != 4:
                raise ValueError(
                    f"A decoded video must have 4 dimensions (frames, height, width, channels) or (frames, channels, "
                    f"height, width), or 3 for grey (frames, height, width), got shape {tuple(video.shape)}."
                )
            if len(video) == 0:
                raise ValueError("Cannot sample a clip from a decoded video with 0 frames.")
            if not do_sample_frames:
                metadata.frames_indices = list(range(len(video)))
                sampled.append(video[None])
                continue
            metadata.frames_indices = list(sample_indices_fn(metadata=metadata))
            # The sampled frames are copied at their given size: refused before the copy when too many.
            check_pixel_budget(
                len(metadata.frames_indices),
                video[0].nbytes,
                f"The {len(metadata.frames_indices)} sampled frames of video {_decoded_name(index)}",
            )
            sampled.append(video[metadata.frames_indices])
        return sampled, video_metadata

    def _prepare_input_videos(
        self,
        videos: list,
        do_convert_rgb: bool | None = None,
        input_data_format: str | ChannelDimension | None = None,
        device: str | torch.device | None = None,
    ) -> list:
        """Decoded frames become `(frames, 3, H, W)` on `device`, as in the base; video files only learn the device."""
        prepared = []
        for video in videos:
            if isinstance(video, _VideoFile):
                video.device = device
                prepared.append(video)
                continue
            clips = video.shape[0] if video.ndim == 5 else None  # frames given as one clip keep their clip axis
            frames = video.flatten(0, 1) if clips else video
            # The base infers the channel axis once for the whole batch and without RGBA; here per video, with it.
            channel_format = input_data_format or infer_channel_dimension_format(frames, num_channels=(1, 3, 4))
            (frames,) = super()._prepare_input_videos([frames], do_convert_rgb, channel_format, device)
            prepared.append(frames.unflatten(0, (clips, -1)) if clips else frames)
        return prepared

    def _validate_preprocess_kwargs(self, **options) -> None:
        """
        Refuse bad options, naming the option, the value and what is allowed, and requests too large for memory;
        then the base's checks. The base calls it before `_preprocess`, so before any video file is decoded.
        """
        _check_sampling_options(options)
        crops = options["do_center_crop"] or options["do_augment"]
        check_pixel_options(options, crops=crops)
        num_views, num_crops = options["num_temporal_views"], options["num_spatial_crops"]
        if num_crops not in (1, 3):
            raise ValueError(f"`num_spatial_crops` must be 1 or 3, got {num_crops!r}.")
        if num_crops != 1 and options["do_augment"]:
            raise ValueError("Training augmentation takes one random crop per clip: set `num_spatial_crops=1`.")
        if num_crops != 1 and not crops:
            raise ValueError("`num_spatial_crops=3` needs `do_center_crop=True`.")
        _check_scale_jitter(options["scale_jitter"])
        check_positive_int("rand_augment_num_ops", options["rand_augment_num_ops"], minimum=0)
        magnitude = options["rand_augment_magnitude"]
        if not (isinstance(magnitude, int) and 0 <= magnitude <= RAND_AUGMENT_MAX_MAGNITUDE):
            raise ValueError(
                f"`rand_augment_magnitude` must be an integer from 0 to {RAND_AUGMENT_MAX_MAGNITUDE}, got "
                f"{magnitude!r}."
            )
        check_positive_int("max_download_bytes", options["max_download_bytes"])
        check_positive_number("download_timeout", options["download_timeout"])
        if options["decoding_backend"] not in (None, *DECODING_BACKENDS):
            raise ValueError(
                f"`decoding_backend` must be one of {DECODING_BACKENDS} or None, got {options['decoding_backend']!r}."
            )
        check_pixel_budget(
            options["num_frames"] * num_views,
            self._frame_bytes(**options),
            f"`num_frames={options['num_frames']}` x `num_temporal_views={num_views}` x "
            f"`num_spatial_crops={num_crops}` at these sizes",
        )
        super()._validate_preprocess_kwargs(**options)

    def _preprocess(
        self,
        videos: list,
        do_rescale: bool,
        num_temporal_views: int,
        decoding_backend: str | None,
        max_download_bytes: int,
        download_timeout: float,
        allow_private_urls: bool,
        allow_truncated_videos: bool,
        return_tensors=None,
        **kwargs,
    ) -> BatchFeature:
        """
        Each video into its `(num_temporal_views * num_spatial_crops, frames, 3, H, W)` views. The base `_preprocess`
        resizes videos grouped by shape and returns one clip per video; XViT returns several views per video, each
        with its own crop (or random augmentation), and decodes files here, so it works video by video.
        """
        clips = []
        for index, video in enumerate(videos):
            resize = self._frame_resizer(**kwargs)  # in training, a new random scale for every video
            if isinstance(video, _VideoFile):
                name = video_name(video.source)
                check_budget = functools.partial(self._check_frame_budget, name=name, **kwargs)
                reading = dict(
                    backend=decoding_backend,
                    max_download_bytes=max_download_bytes,
                    download_timeout=download_timeout,
                    allow_private_urls=allow_private_urls,
                    allow_truncated=allow_truncated_videos,
                )
                frames = video.decode(resize, check_budget, reading)
                num_views = num_temporal_views if video.sample_indices else 1
            else:
                name = _decoded_name(index)
                num_views = len(video) if video.ndim == 5 else num_temporal_views
                frames = video.flatten(0, 1) if video.ndim == 5 else video
                self._check_frame_budget(len(frames), *frames.shape[-2:], name=name, **kwargs)
                _warn_if_already_rescaled(frames, do_rescale)
                frames = resize(frames) if resize is not None else frames
            try:
                clip_frames = frames.reshape(num_views, -1, *frames.shape[1:])
                views = self._make_views(clip_frames, do_rescale=do_rescale, **kwargs)
            except ValueError as error:
                raise ValueError(f"Cannot make the views of video {name}: {error}") from error
            _check_finite(views, name)
            clips.append(views)
        data = {"pixel_values": clips[0] if len(clips) == 1 else torch.cat(clips)}  # one video: no copy
        return BatchFeature(data=data, tensor_type=return_tensors)

    def _check_frame_budget(self, count: int, height: int | None, width: int | None, name: str, **options) -> None:
        """Refuse `count` frames of a `height` x `width` video when their pixels would exceed the budget."""
        frame_size_bytes = self._frame_bytes(height=height, width=width, **options)
        check_pixel_budget(count, frame_size_bytes, f"The {count} frames of video {name}")

    @staticmethod
    def _frame_bytes(
        do_resize: bool,
        size: SizeDict,
        do_augment: bool,
        scale_jitter: list[int],
        do_center_crop: bool,
        crop_size: SizeDict,
        num_spatial_crops: int,
        height: int | None = None,
        width: int | None = None,
        **kwargs,
    ) -> int:
        """
        Bytes one sampled frame needs (see `frame_bytes`): of a `height` x `width` video, resized as these options
        resize it, or, with the size unknown, at least (a square frame).
        """
        size = (
            SizeDict(shortest_edge=max(scale_jitter))
            if do_augment
            else _test_resize_size(size, crop_size, num_spatial_crops)
        )
        if not do_resize:
            pixels = height * width if height and width else None
        else:
            pixels = resized_pixels(resize_size(height, width, size) if height and width else size)
        crop = crop_size if do_center_crop or do_augment else None
        return frame_bytes(pixels, crop, num_spatial_crops)

    def _frame_resizer(
        self,
        do_resize: bool,
        size: SizeDict,
        resample,
        antialias: bool,
        do_augment: bool,
        scale_jitter: list[int],
        crop_size: SizeDict,
        num_spatial_crops: int,
        **kwargs,
    ) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """The resize applied to frames as soon as they are decoded (short side, or a random scale in training)."""
        if not do_resize:
            return None
        if do_augment:
            size = SizeDict(shortest_edge=random.randint(*scale_jitter))
        else:
            size = _test_resize_size(size, crop_size, num_spatial_crops)
        return lambda frames: self.resize(frames, size, resample=resample, antialias=antialias)

    def _make_views(
        self,
        clips: torch.Tensor,
        do_augment: bool,
        do_center_crop: bool,
        crop_size: SizeDict,
        num_spatial_crops: int,
        do_flip: bool,
        do_rand_augment: bool,
        rand_augment_num_ops: int,
        rand_augment_magnitude: int,
        do_rescale: bool,
        rescale_factor: float,
        do_normalize: bool,
        image_mean,
        image_std,
        **kwargs,
    ) -> torch.Tensor:
        """(temporal views, frames, 3, h, w) resized clips -> (views, frames, 3, H, W) crops, rescaled, normalised."""
        height, width = clips.shape[-2:]
        views = []
        for clip in clips:
            if do_augment:
                views.append(
                    self._augment_clip(
                        clip, crop_size, do_flip, do_rand_augment, rand_augment_num_ops, rand_augment_magnitude
                    )
                )
            elif do_center_crop:
                boxes = spatial_crop_boxes(height, width, crop_size.height, crop_size.width, num_spatial_crops)
                views.extend(_crop(clip, top, left, crop_size) for top, left in boxes)
            else:
                views.append(clip)
        return self.rescale_and_normalize(
            torch.stack(views), do_rescale, rescale_factor, do_normalize, image_mean, image_std
        )

    def _augment_clip(
        self,
        clip: torch.Tensor,
        crop_size: SizeDict,
        do_flip: bool,
        do_rand_augment: bool,
        num_ops: int,
        magnitude: int,
    ) -> torch.Tensor:
        """Random crop, flip and RandAugment, drawn once per clip so that all its frames move together."""
        clip = _crop(clip, *random_crop_box(*clip.shape[-2:], crop_size.height, crop_size.width), crop_size)
        if do_flip and random.random() < 0.5:
            clip = clip.flip(-1)
        if do_rand_augment:
            from torchvision.transforms import v2

            clip = v2.RandAugment(num_ops=num_ops, magnitude=magnitude)(clip)
        return clip


@dataclass
class _VideoFile:
    """A video file between the base pipeline's hooks: decoded in `_preprocess`, onto `device`, resized as it comes."""

    source: Any
    sample_indices: Callable[..., list[int]] | None  # None: every frame, as one temporal view
    metadata: VideoMetadata  # the entry the base pipeline returns; filled in when the file is read
    device: str | torch.device | None = None

    def decode(
        self, resize: Callable | None, check_budget: Callable[[int, int | None, int | None], None], reading: dict
    ) -> torch.Tensor:
        """The sampled frames, `(n, 3, h, w)`, resized as they are decoded; `check_budget` sees their count and size
        before any is decoded. `reading`: the decoder and download options of `read_video_frames`."""

        def checked_indices(metadata: VideoMetadata) -> list[int]:
            if self.sample_indices is None:
                indices = list(range(metadata.total_num_frames))
            else:
                indices = list(self.sample_indices(metadata=metadata))
            check_budget(len(indices), metadata.height, metadata.width)
            return indices

        def transform(frames: torch.Tensor) -> torch.Tensor:
            frames = frames.to(self.device) if self.device is not None else frames
            return resize(frames) if resize is not None else frames

        frames, metadata = read_video_frames(self.source, checked_indices, frame_transform=transform, **reading)
        self.metadata.update(metadata)
        return frames


def _check_sampling_options(options: dict) -> None:
    """The options `sample_frames` uses, each named when refused."""
    check_sampling_options(options)
    if options["fps"] is not None:
        raise ValueError("XViT samples clips with `sampling`, `sampling_rate` and `target_fps`; `fps` is unused.")
    num_views = options["num_temporal_views"]
    check_positive_int("num_temporal_views", num_views)
    if options["sampling"] == "segment" and not options["do_augment"] and num_views > len(SEGMENT_TEST_VIEWS):
        raise ValueError(
            f"Segment sampling has {len(SEGMENT_TEST_VIEWS)} test views ({', '.join(SEGMENT_TEST_VIEWS)}), got "
            f"`num_temporal_views={num_views}`."
        )


def _check_saved_download_settings(max_download_bytes, download_timeout, allow_private_urls) -> None:
    """A processor's own settings (a saved config, possibly downloaded) may tighten the download limits, not loosen
    them: raising them, or allowing private URLs, is for a call's options."""
    for name, value, default in (
        ("max_download_bytes", max_download_bytes, MAX_DOWNLOAD_BYTES),
        ("download_timeout", download_timeout, DOWNLOAD_TIMEOUT),
    ):
        if isinstance(value, (int, float)) and value > default:
            raise ValueError(
                f"`{name}={value!r}` is above its default ({default}): a saved processor config may lower the "
                "download limits, not raise them; pass a higher value to the call instead."
            )
    if allow_private_urls:
        raise ValueError(
            "`allow_private_urls=True` cannot be saved in a processor config (a downloaded config could open local "
            "and private addresses to URLs from requests): pass it to the call instead."
        )


def _decoded_name(index: int) -> str:
    return f"#{index} of the batch (decoded frames)"


def _check_scale_jitter(scale_jitter) -> None:
    valid = (
        isinstance(scale_jitter, (list, tuple))
        and len(scale_jitter) == 2
        and all(isinstance(side, int) and not isinstance(side, bool) and side >= 1 for side in scale_jitter)
    )
    if not valid or scale_jitter[0] > scale_jitter[1]:
        raise ValueError(
            f"`scale_jitter` must be [smallest, largest] short sides, positive integers with smallest <= largest, got "
            f"{scale_jitter!r}."
        )


def _check_finite(pixel_values: torch.Tensor, name: str) -> None:
    """The model gives NaN scores, silently, for non-finite pixels: refuse them here, naming the video."""
    # The smallest and largest values are finite exactly when every value is (both are NaN if any value is): one
    # read of the clip, without the clip-sized mask that `isfinite(...).all()` writes.
    if pixel_values.device.type == "meta" or not pixel_values.numel():
        return
    if not torch.isfinite(torch.stack(torch.aminmax(pixel_values))).all():
        raise ValueError(
            f"Video {name} gives non-finite pixel values (NaN or infinity): its frames hold non-finite values, or "
            "`rescale_factor`, `image_mean` or `image_std` push them out of the float32 range."
        )


def _warn_if_already_rescaled(frames: torch.Tensor, do_rescale: bool) -> None:
    if do_rescale and frames.is_floating_point() and frames.device.type != "meta" and frames.numel():
        if frames.min() >= 0 and frames.max() <= 1:
            warn_already_rescaled()


def _test_resize_size(size: SizeDict, crop_size: SizeDict | None, num_spatial_crops: int) -> SizeDict:
    """
    The original's test-time resize: one crop is taken after resizing the short side to `size` (256 in the Kinetics
    configs, the usual resize-then-centre-crop), three crops after resizing it to the crop size, so that the three
    crops tile the long side.
    """
    if num_spatial_crops == 1 or crop_size is None or not size.shortest_edge:
        return size
    return SizeDict(shortest_edge=min(crop_size.height, crop_size.width))


def _crop(frames: torch.Tensor, top: int, left: int, size: SizeDict) -> torch.Tensor:
    return frames[..., top : top + size.height, left : left + size.width]


def _make_video_list(videos) -> list:
    """
    One entry per video: encoded inputs stay as they are, a grey `(frames, height, width)` array gets its channel axis,
    other decoded frames go through Transformers' batching.
    """
    if is_encoded_video(videos):
        return [videos]
    if isinstance(videos, (list, tuple)) and videos and all(is_encoded_video(video) for video in videos):
        return list(videos)
    if _is_grey_video(videos):
        return [videos[..., None]]
    return make_batched_videos(videos)


def _is_grey_video(video) -> bool:
    """A 3-D array or tensor is a grey video unless an end axis could hold channels (then it is one image)."""
    return (
        isinstance(video, (np.ndarray, torch.Tensor))
        and video.ndim == 3
        and not {video.shape[0], video.shape[-1]} & {1, 3, 4}
    )


def _make_metadata_list(video_metadata, videos: list) -> list[VideoMetadata]:
    """The caller's metadata, one entry per video; files get an entry to fill in, decoded videos their frame count."""
    if video_metadata is None:
        return [VideoMetadata(total_num_frames=0 if is_encoded_video(video) else len(video)) for video in videos]
    if isinstance(video_metadata, (VideoMetadata, dict)):
        video_metadata = [video_metadata]
    return make_batched_metadata([None] * len(videos), video_metadata)


__all__ = ["XViTVideoProcessor"]
