"""
Video processor for XViT: decodes a video (decord, or PyAV when decord is missing), samples clips the way the original
XViT data pipeline does (see `clip_sampling.py`) and turns them into `pixel_values` of shape
`(batch * num_views, num_frames, 3, height, width)`.
"""

import io
import os
import random
import urllib.request
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import torch
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import ChannelDimension, SizeDict, infer_channel_dimension_format
from transformers.processing_utils import Unpack, VideosKwargs
from transformers.video_processing_utils import BaseVideoProcessor
from transformers.video_utils import VideoInput, VideoMetadata, make_batched_metadata, make_batched_videos

from .clip_sampling import SAMPLING_STRATEGIES, random_crop_box, sample_clip_indices, spatial_crop_boxes
from .processing_defaults import XViTProcessingDefaults

if TYPE_CHECKING:
    from av import VideoFrame

DECODING_BACKENDS = ("decord", "pyav")
# Frames are decoded and resized in chunks of at most this many bytes, so a 4K video never sits in memory whole.
DECODE_CHUNK_BYTES = 64 * 2**20


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
        `"decord"` or `"pyav"`; defaults to decord when it is installed, else PyAV. PyAV is the faster of the two
        on one core (it skips the frames that no sampled frame depends on; see the README's benchmark).
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


class XViTVideoProcessor(XViTProcessingDefaults, BaseVideoProcessor):
    r"""
    Video processor for XViT. It takes videos as local paths, URLs, raw bytes, file objects, or decoded frames
    (`(frames, height, width, channels)` / `(frames, channels, height, width)` arrays or tensors, or lists of PIL
    images), samples `num_frames`-frame clips with the original's clip sampling, resizes the short side, crops and
    normalises (mean and std 0.5 on [0, 1] pixels).

    Files are decoded with decord (only the sampled frames, through `get_batch`), or with PyAV when decord is not
    installed or `decoding_backend="pyav"`; torchcodec is never needed. PyAV decodes only the key-frame groups that
    hold sampled frames, each up to its last sampled frame, and skips the frames that no other frame refers to, so it
    is faster than decord, with frames bit-identical to a full decode. Frames are resized as they are decoded, a few
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
    decoding_backend = None
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
        name = _video_name(video)
        sample_indices = partial(self._indices_for, **kwargs)
        resize = self._frame_resizer(**kwargs)
        if _is_encoded(video):
            frames, metadata = read_video_frames(video, sample_indices, kwargs["decoding_backend"], resize)
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


def read_video_frames(
    video,
    sample_indices: Callable[[VideoMetadata], list[int]],
    backend: str | None = None,
    frame_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, VideoMetadata]:
    """
    Decode only the frames that `sample_indices(metadata)` asks for.

    Args:
        video: A local path, an http(s) URL, raw bytes or a binary file object.
        sample_indices: Maps the video's `VideoMetadata` to frame indices (repeats allowed, any order).
        backend: `"decord"` or `"pyav"`; `None` takes decord when installed, else PyAV.
        frame_transform: Applied to each chunk of decoded `(n, 3, H, W)` uint8 frames (e.g. the resize), so that
            full-size frames are never all held at once.

    Returns:
        `(frames, metadata)`: `(len(indices), 3, h, w)` frames in index order, and the video's metadata with
        `frames_indices` set.
    """
    name = _video_name(video)
    source = _open_source(video, name)
    backend = backend or _default_backend()
    reader_class = _DecordReader if backend == "decord" else _PyAVReader
    try:
        reader = reader_class(source)
    except ImportError:
        raise
    except Exception as error:  # each decoder has its own exception types for unreadable data
        raise ValueError(f"Could not open video {name} with {backend}: {error}") from error

    with reader:
        if reader.total_num_frames < 1:
            raise ValueError(f"Video {name} contains no frames.")
        metadata = VideoMetadata(
            total_num_frames=reader.total_num_frames,
            fps=reader.fps,
            duration=reader.total_num_frames / reader.fps if reader.fps else None,
            video_backend=backend,
        )
        indices = list(sample_indices(metadata))
        metadata.frames_indices = indices
        transform = frame_transform or (lambda frames: frames)
        decoded = {}
        try:
            for chunk_indices, chunk in reader.decode(sorted(set(indices))):
                frames = transform(torch.from_numpy(chunk).permute(0, 3, 1, 2))
                del chunk  # let the full-size frames go before the next chunk is decoded
                decoded.update(zip(chunk_indices, frames, strict=True))
        except Exception as error:
            raise ValueError(f"Could not decode video {name} with {backend}: {error}") from error

    metadata.height, metadata.width = reader.height, reader.width
    missing = sorted(set(indices) - set(decoded))
    if missing:
        raise ValueError(
            f"Video {name} ended early: its header announces {metadata.total_num_frames} frames but frames "
            f"{missing[:5]}{'...' if len(missing) > 5 else ''} could not be decoded (truncated file?)."
        )
    return torch.stack([decoded[index] for index in indices]), metadata


class _DecordReader:
    """Random access through decord: only the requested frames are decoded, a chunk at a time."""

    def __init__(self, source):
        try:
            from decord import VideoReader, cpu
        except ImportError as error:
            raise ImportError("`decoding_backend='decord'` needs decord: `pip install decord`.") from error
        # decord's automatic thread count ignores CPU affinity; oversubscribed threads slow decoding down.
        num_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
        self.reader = VideoReader(source, ctx=cpu(0), num_threads=num_threads)
        self.total_num_frames = len(self.reader)
        self.fps = self.reader.get_avg_fps() or None
        self.height = self.width = None

    def decode(self, indices: list[int]) -> Iterator[tuple[list[int], np.ndarray]]:
        # One frame first to learn the frame size, then chunks that stay under DECODE_CHUNK_BYTES.
        first = self.reader.get_batch(indices[:1]).asnumpy()
        self.height, self.width = first.shape[1:3]
        chunk_size = max(1, DECODE_CHUNK_BYTES // first[0].nbytes)
        yield indices[:1], first
        del first
        for start in range(1, len(indices), chunk_size):
            chunk = indices[start : start + chunk_size]
            yield chunk, self.reader.get_batch(chunk).asnumpy()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        del self.reader


class _PyAVReader:
    """
    PyAV decoding planned from the packet index (one demuxing pass, no decoding): only the key-frame groups that hold
    sampled frames are decoded, each up to its last sampled frame, and frames that no other frame refers to (most
    B-frames) are skipped unless sampled. The sampled frames come out bit-identical to a full decode.
    """

    def __init__(self, source):
        try:
            import av
        except ImportError as error:
            raise ImportError(
                "Decoding videos needs decord (`pip install decord`) or PyAV (`pip install av`); neither is installed."
            ) from error
        self.container = av.open(source)
        if not self.container.streams.video:
            self.container.close()
            raise ValueError("the file has no video stream")
        self.stream = self.container.streams.video[0]
        # Skipping is switched packet by packet, which frame threading would defer to other threads.
        self.stream.codec_context.thread_type = "SLICE"
        # (pts, is key frame) of every packet, in decoding order; containers without a frame count are counted too.
        self.packets = [
            (packet.pts, packet.is_keyframe) for packet in self.container.demux(self.stream) if packet.size
        ]
        self.total_num_frames = self.stream.frames or len(self.packets)
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.fps = float(rate) if rate else None
        self.height, self.width = self.stream.height, self.stream.width

    def decode(self, indices: list[int]) -> Iterator[tuple[list[int], np.ndarray]]:
        chunk_size = max(1, DECODE_CHUNK_BYTES // (3 * self.height * self.width))
        chunk_indices, chunk = [], []
        for index, frame in self._sampled_frames(set(indices)):
            chunk_indices.append(index)
            chunk.append(frame.to_ndarray(format="rgb24"))
            if len(chunk) == chunk_size:
                yield chunk_indices, np.stack(chunk)
                chunk_indices, chunk = [], []
        if chunk:
            yield chunk_indices, np.stack(chunk)

    def _sampled_frames(self, wanted: set[int]) -> Iterator[tuple[int, "VideoFrame"]]:
        timestamps = [pts for pts, _ in self.packets]
        if None in timestamps or len(set(timestamps)) < len(timestamps):
            yield from self._frames_in_order(wanted)  # no usable timestamps: decode from the start, count frames
            return
        order = sorted(range(len(timestamps)), key=timestamps.__getitem__)  # frame index -> decoding position
        index_of = {timestamps[position]: index for index, position in enumerate(order)}
        sampled = {order[index] for index in wanted if index < len(order)}
        codec_context = self.stream.codec_context
        spans, span = self._decoding_spans(sampled, timestamps), 0
        if not spans:
            return
        self.container.seek(0)
        for position, packet in enumerate(packet for packet in self.container.demux(self.stream) if packet.size):
            if position > spans[span][1]:  # past a span: drain the decoder, go on with the next span
                yield from _pick(codec_context.decode(None), index_of, wanted)
                codec_context.flush_buffers()
                span += 1
                if span == len(spans):
                    return
            if position >= spans[span][0]:
                codec_context.skip_frame = "DEFAULT" if position in sampled else "NONREF"
                yield from _pick(codec_context.decode(packet), index_of, wanted)
        yield from _pick(codec_context.decode(None), index_of, wanted)

    def _decoding_spans(self, sampled: set[int], timestamps: list[int]) -> list[tuple[int, int]]:
        """Merged `(first, last)` ranges of decoding positions: from each sampled frame's key frame to the frame."""
        group_start, start = [], 0
        for position, (_, is_keyframe) in enumerate(self.packets):
            start = position if is_keyframe else start
            group_start.append(start)
        spans = []
        for position in sorted(sampled):
            start = group_start[position]
            # A frame shown before its key frame (open GOP) refers to the previous group: decode that one too.
            while start > 0 and timestamps[position] < timestamps[start]:
                start = group_start[start - 1]
            while spans and start <= spans[-1][1] + 1:
                start = min(start, spans.pop()[0])
            spans.append((start, position))
        return spans

    def _frames_in_order(self, wanted: set[int]) -> Iterator[tuple[int, "VideoFrame"]]:
        self.container.seek(0)
        last = max(wanted)
        for index, frame in enumerate(self.container.decode(self.stream)):
            if index in wanted:
                yield index, frame
            if index >= last:
                return

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.container.close()


def _pick(
    frames: list["VideoFrame"], index_of: dict[int, int], wanted: set[int]
) -> Iterator[tuple[int, "VideoFrame"]]:
    """The decoded frames that were sampled, with their frame index."""
    for frame in frames:
        index = index_of.get(frame.pts)
        if index in wanted:
            yield index, frame


def _default_backend() -> str:
    try:
        import decord  # noqa: F401
    except ImportError:
        return "pyav"
    return "decord"


def _crop(frames: torch.Tensor, top: int, left: int, size: SizeDict) -> torch.Tensor:
    return frames[..., top : top + size.height, left : left + size.width]


def _open_source(video, name: str):
    """A path or a binary file object that decord and PyAV can both read."""
    if isinstance(video, (bytes, bytearray, memoryview)):
        return io.BytesIO(video)
    if isinstance(video, str) and video.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(video, timeout=60) as response:
                return io.BytesIO(response.read())
        except OSError as error:
            raise ValueError(f"Could not download video {name}: {error}") from error
    if isinstance(video, (str, os.PathLike)):
        path = os.fspath(video)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Video file not found: {path}")
        return path
    return video  # a binary file object


def _is_encoded(video) -> bool:
    return isinstance(video, (str, os.PathLike, bytes, bytearray, memoryview, io.IOBase))


def _video_name(video) -> str:
    if isinstance(video, (str, os.PathLike)):
        return repr(os.fspath(video))
    if isinstance(video, (bytes, bytearray, memoryview)):
        return f"<{len(video)} bytes>"
    if isinstance(video, io.IOBase):
        return repr(getattr(video, "name", f"<{type(video).__name__}>"))
    return f"<decoded {type(video).__name__} of shape {tuple(getattr(video, 'shape', ()))}>"


def _make_video_list(videos) -> list:
    """One entry per video: encoded inputs stay as they are, decoded frames go through Transformers' batching."""
    if _is_encoded(videos):
        return [videos]
    if isinstance(videos, (list, tuple)) and videos and all(_is_encoded(video) for video in videos):
        return list(videos)
    return make_batched_videos(videos)


def _make_metadata_list(video_metadata) -> list[VideoMetadata]:
    if isinstance(video_metadata, (VideoMetadata, dict)):
        video_metadata = [video_metadata]
    return make_batched_metadata([None] * len(video_metadata), video_metadata)


__all__ = ["XViTVideoProcessor"]
