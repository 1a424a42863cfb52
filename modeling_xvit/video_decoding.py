"""
Video decoding for XViT: only the frames a clip needs are decoded, with decord (random access through `get_batch`) or
PyAV (decoding planned from the packet index). Local paths, http(s) URLs, raw bytes and binary file objects are read;
torchcodec is never used. `XViTVideoProcessor` calls `read_video_frames`; the model never decodes.
"""

import io
import os
import urllib.request
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
from transformers.video_utils import VideoMetadata

if TYPE_CHECKING:
    from av import VideoFrame

DECODING_BACKENDS = ("decord", "pyav")
# Frames are decoded and resized in chunks of at most this many bytes, so a 4K video never sits in memory whole.
DECODE_CHUNK_BYTES = 64 * 2**20


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
    name = video_name(video)
    source = open_video_source(video, name)
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


def open_video_source(video, name: str):
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


def is_encoded_video(video) -> bool:
    return isinstance(video, (str, os.PathLike, bytes, bytearray, memoryview, io.IOBase))


def video_name(video) -> str:
    if isinstance(video, (str, os.PathLike)):
        return repr(os.fspath(video))
    if isinstance(video, (bytes, bytearray, memoryview)):
        return f"<{len(video)} bytes>"
    if isinstance(video, io.IOBase):
        return repr(getattr(video, "name", f"<{type(video).__name__}>"))
    return f"<decoded {type(video).__name__} of shape {tuple(getattr(video, 'shape', ()))}>"


__all__ = ["DECODING_BACKENDS", "is_encoded_video", "open_video_source", "read_video_frames", "video_name"]
