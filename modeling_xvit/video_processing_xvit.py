"""
Video processor for XViT: decodes a video (PyAV by default, see `video_decoding.py`), samples clips the way the
original XViT data pipeline does (see `clip_sampling.py`) and turns them into `pixel_values` of shape
`(batch * num_views, num_frames, 3, height, width)`.
"""

import random
from collections.abc import Callable
from functools import partial

import torch
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import ChannelDimension, SizeDict, infer_channel_dimension_format
from transformers.processing_utils import Unpack, VideosKwargs
from transformers.video_processing_utils import BaseVideoProcessor
from transformers.video_utils import VideoInput, VideoMetadata, make_batched_metadata, make_batched_videos

from .clip_sampling import SAMPLING_STRATEGIES, random_crop_box, sample_clip_indices, spatial_crop_boxes
from .processing_defaults import XViTProcessingDefaults
from .video_decoding import (
    DECODING_BACKENDS,
    DOWNLOAD_TIMEOUT,
    MAX_DOWNLOAD_BYTES,
    is_encoded_video,
    read_video_frames,
    video_name,
)


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
    decoding_backend (`str`, *optional*, defaults to `"auto"`):
        `"auto"` (PyAV), `"pyav"` or `"decord"`. PyAV is right on every format and the faster of the two; decord is
        used only on the formats where it gives the right frames (others fall back to PyAV). See `video_decoding.py`.
    max_download_bytes (`int`, *optional*, defaults to 1 GiB):
        Largest video accepted from a URL (downloads stream to a temporary file).
    download_timeout (`float`, *optional*, defaults to 300):
        Seconds a URL download may take in all.
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
    download_timeout: float | None


class XViTVideoProcessor(XViTProcessingDefaults, BaseVideoProcessor):
    r"""
    Video processor for XViT. It takes videos as local paths, URLs, raw bytes, file objects, or decoded frames
    (`(frames, height, width, channels)` / `(frames, channels, height, width)` arrays or tensors, or lists of PIL
    images), samples `num_frames`-frame clips with the original's clip sampling, resizes the short side, crops and
    normalises (mean and std 0.5 on [0, 1] pixels).

    Files are decoded with PyAV (`decoding_backend="auto"`; decord on request, only on the formats it decodes
    right); torchcodec is never needed. PyAV decodes only the key-frame groups that hold sampled frames, each up to
    its last sampled frame, and skips the frames that no other frame refers to, with frames bit-identical to a full
    decode (the faster of the two on every video measured, see the README). Frames are resized as decoded, a few
    at a time. A video shorter than a clip is padded by repeating frames (the sampled indices are clamped to the
    video, as in the original).

    **Layout of the views.** Each video gives `num_temporal_views * num_spatial_crops` clips, stored video by video,
    then temporal view by temporal view, then crop by crop: clip `(video b, temporal view t, crop s)` is
    `pixel_values[(b * num_temporal_views + t) * num_spatial_crops + s]`. `average_view_scores` folds the model's
    scores back to one prediction per video.

    Args: see `XViTVideoProcessorKwargs` for the XViT-specific options; the others are those of
    `BaseVideoProcessor` (`size`, `crop_size`, `do_resize`, `do_center_crop`, `do_rescale`, `do_normalize`,
    `image_mean`, `image_std`, `num_frames`, `do_sample_frames`, ...).
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
    decoding_backend = "auto"
    max_download_bytes = MAX_DOWNLOAD_BYTES
    download_timeout = DOWNLOAD_TIMEOUT
    valid_kwargs = XViTVideoProcessorKwargs

    def __init__(self, **kwargs: Unpack[XViTVideoProcessorKwargs]):
        super().__init__(**kwargs)

    @property
    def num_views(self) -> int:
        """Clips per video with the saved settings: `num_temporal_views * num_spatial_crops`."""
        return self.num_temporal_views * self.num_spatial_crops

    def preprocess(self, videos: VideoInput, **kwargs: Unpack[XViTVideoProcessorKwargs]) -> BatchFeature:
        """
        Turn one video or a batch of videos into `pixel_values` of shape
        `(batch * num_temporal_views * num_spatial_crops, num_frames, 3, height, width)`.
        """
        kwargs = self._resolve_kwargs(kwargs)
        return_tensors = kwargs.pop("return_tensors")
        video_metadata = kwargs.pop("video_metadata")
        videos = _make_video_list(videos)
        video_metadata = [None] * len(videos) if video_metadata is None else _make_metadata_list(video_metadata)
        if len(video_metadata) != len(videos):
            raise ValueError(f"Got {len(videos)} videos but {len(video_metadata)} `video_metadata` entries.")

        clips, metadata = [], []
        for video, video_meta in zip(videos, video_metadata, strict=True):
            video_clips, video_meta = self._process_video(video, video_meta, **kwargs)
            clips.append(video_clips)
            metadata.append(video_meta)
        data = {"pixel_values": clips[0] if len(clips) == 1 else torch.cat(clips)}  # one video: no copy
        if kwargs["return_metadata"]:
            data["video_metadata"] = metadata
        return BatchFeature(data=data, tensor_type=return_tensors)

    def sample_frames(
        self,
        metadata: VideoMetadata,
        num_frames: int | None = None,
        sampling: str | None = None,
        num_temporal_views: int | None = None,
        do_augment: bool | None = None,
        sampling_rate: int | None = None,
        target_fps: float | None = None,
        **kwargs,
    ) -> list[int]:
        """
        Frame indices of all the clips of one video, view after view (`num_temporal_views * num_frames` indices).
        Arguments left to `None` take the processor's values.
        """
        views = sample_clip_indices(
            metadata.total_num_frames,
            num_frames or self.num_frames,
            sampling=sampling or self.sampling,
            num_views=num_temporal_views or self.num_temporal_views,
            random_sampling=self.do_augment if do_augment is None else do_augment,
            sampling_rate=sampling_rate or self.sampling_rate,
            video_fps=metadata.fps,
            target_fps=target_fps or self.target_fps,
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

    def _resolve_kwargs(self, kwargs: dict) -> dict:
        """Validate the call's kwargs and fill the missing ones from the processor, as `BaseVideoProcessor` does."""
        annotations = self.valid_kwargs.__annotations__
        unknown = sorted(set(kwargs) - set(annotations) - {"return_tensors"})
        if unknown:
            raise ValueError(f"Unknown arguments for {type(self).__name__}: {unknown}.")
        for name in annotations:
            kwargs.setdefault(name, getattr(self, name, None))
        kwargs.setdefault("return_tensors", None)
        if kwargs["fps"] is not None:
            raise ValueError("XViT samples clips with `sampling`, `sampling_rate` and `target_fps`; `fps` is unused.")
        if kwargs["sampling"] not in SAMPLING_STRATEGIES:
            raise ValueError(f"`sampling` must be one of {SAMPLING_STRATEGIES}, got {kwargs['sampling']!r}.")
        if kwargs["do_augment"] and kwargs["num_spatial_crops"] != 1:
            raise ValueError("Training augmentation takes one random crop per clip: set `num_spatial_crops=1`.")
        if kwargs["decoding_backend"] not in (None, *DECODING_BACKENDS):
            raise ValueError(
                f"`decoding_backend` must be one of {DECODING_BACKENDS}, got {kwargs['decoding_backend']!r}."
            )
        kwargs = self._standardize_kwargs(**kwargs)
        self._validate_preprocess_kwargs(**kwargs)
        return kwargs

    def _process_video(self, video, metadata: VideoMetadata | None, **kwargs) -> tuple[torch.Tensor, VideoMetadata]:
        """Decode (or take) one video's sampled frames and turn them into its `(views, frames, 3, H, W)` clips."""
        name = video_name(video)
        sample_indices = partial(self._indices_for, **kwargs)
        resize = self._frame_resizer(**kwargs)
        if is_encoded_video(video):
            limits = kwargs["max_download_bytes"], kwargs["download_timeout"]
            frames, metadata = read_video_frames(video, sample_indices, kwargs["decoding_backend"], resize, *limits)
        else:
            frames, metadata = self._sample_decoded_frames(video, metadata, sample_indices, resize, **kwargs)
        num_clips = kwargs["num_temporal_views"] if kwargs["do_sample_frames"] else 1
        try:
            clips = self._make_views(frames.reshape(num_clips, -1, *frames.shape[1:]), **kwargs)
        except ValueError as error:
            raise ValueError(f"Cannot make the views of video {name}: {error}") from error
        return clips, metadata

    def _indices_for(self, metadata: VideoMetadata, do_sample_frames: bool, **kwargs) -> list[int]:
        if not do_sample_frames:
            return list(range(metadata.total_num_frames))
        return self.sample_frames(metadata, **kwargs)

    def _frame_resizer(
        self, do_resize: bool, size: SizeDict, resample, do_augment: bool, scale_jitter, **kwargs
    ) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """The resize applied to frames as soon as they are decoded (short side, or a random scale in training)."""
        if not do_resize:
            return None
        if do_augment:
            size = SizeDict(shortest_edge=random.randint(*scale_jitter))
        return partial(self.resize, size=size, resample=resample)

    def _sample_decoded_frames(
        self,
        video,
        metadata: VideoMetadata | None,
        sample_indices: Callable,
        resize: Callable | None,
        do_convert_rgb: bool,
        input_data_format,
        **kwargs,
    ) -> tuple[torch.Tensor, VideoMetadata]:
        """Sample the clip frames of an already-decoded video and bring them to (frames, 3, height, width)."""
        video = torch.as_tensor(video) if not isinstance(video, torch.Tensor) else video
        if video.ndim != 4:
            raise ValueError(
                f"A decoded video must have 4 dimensions (frames, height, width, channels) or (frames, channels, "
                f"height, width), got shape {tuple(video.shape)}."
            )
        if len(video) == 0:
            raise ValueError("Cannot sample a clip from a decoded video with 0 frames.")
        if input_data_format is None:
            input_data_format = infer_channel_dimension_format(video.numpy(), num_channels=(1, 3, 4))
        if metadata is None:
            metadata = VideoMetadata(total_num_frames=len(video))
        indices = sample_indices(metadata)
        metadata.frames_indices = indices
        frames = video[indices]
        if input_data_format == ChannelDimension.LAST:
            frames = frames.permute(0, 3, 1, 2)
        if do_convert_rgb:
            frames = self._convert_frames_to_rgb(frames)
        return (resize(frames) if resize is not None else frames.contiguous()), metadata

    def _convert_frames_to_rgb(self, frames: torch.Tensor) -> torch.Tensor:
        # Grayscale is repeated and RGBA blended on white; blending yields floats, which go back to the input dtype.
        rgb = self.convert_to_rgb(frames)
        if rgb.dtype != frames.dtype and not frames.is_floating_point():
            rgb = rgb.round().clamp(0, 255).to(frames.dtype)
        return rgb

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
            elif num_spatial_crops == 1:
                views.append(clip)
            else:
                raise ValueError("`num_spatial_crops=3` needs `do_center_crop=True`.")
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


def _crop(frames: torch.Tensor, top: int, left: int, size: SizeDict) -> torch.Tensor:
    return frames[..., top : top + size.height, left : left + size.width]


def _make_video_list(videos) -> list:
    """One entry per video: encoded inputs stay as they are, decoded frames go through Transformers' batching."""
    if is_encoded_video(videos):
        return [videos]
    if isinstance(videos, (list, tuple)) and videos and all(is_encoded_video(video) for video in videos):
        return list(videos)
    return make_batched_videos(videos)


def _make_metadata_list(video_metadata) -> list[VideoMetadata]:
    if isinstance(video_metadata, (VideoMetadata, dict)):
        video_metadata = [video_metadata]
    return make_batched_metadata([None] * len(video_metadata), video_metadata)


__all__ = ["XViTVideoProcessor"]
