"""
Video decoding for XViT: only the frames a clip needs are decoded, with PyAV (decoding planned from the packet index;
the default) or decord (random access through `get_batch`, used only on the formats where it gives the right frames).
Local paths, http(s) URLs (downloaded to a temporary file under a size limit and one deadline, from public addresses
only unless allowed), raw bytes and binary file objects are read; torchcodec is never used. `XViTVideoProcessor`
calls `read_video_frames`; the model never decodes.
"""

import contextlib
import errno
import functools
import http.client
import io
import ipaddress
import os
import re
import socket
import ssl
import stat
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
from transformers.utils import logging
from transformers.video_utils import VideoMetadata

if TYPE_CHECKING:
    from av import VideoFrame

logger = logging.get_logger(__name__)

# "auto" is PyAV: it gives the right frames on every container and codec tested, and is the faster of the two on every
# video measured (README, preprocessing benchmark).
DECODING_BACKENDS = ("auto", "pyav", "decord")
# RGB frames as players show them, or the planes as stored (prepared training videos, converted on the accelerator).
PIXEL_FORMATS = ("rgb", "yuv420p")
# Frames are decoded and resized in chunks of at most this many bytes, so a 4K video never sits in memory whole.
DECODE_CHUNK_BYTES = 64 * 2**20
# URL downloads: the largest body accepted, the deadline for the whole download, and the longest wait for one read.
MAX_DOWNLOAD_BYTES = 2**30
DOWNLOAD_TIMEOUT = 300.0
READ_TIMEOUT = 60.0
DOWNLOAD_CHUNK_BYTES = 2**20
# decord returns wrong frames, silently, outside these containers (AVI, MPEG-TS, MPEG-PS: measured with and without
# B-frames) and, inside them, for every codec but H.264 when frames are reordered (MPEG-4 Part 2, MPEG-2, HEVC with
# B-frames). Files decord is not known to get right are decoded with PyAV.
DECORD_CONTAINERS = ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "flv")
DECORD_REORDERING_CODECS = ("h264",)
DECORD_NEEDS_PYAV = (
    "`decoding_backend='decord'` needs PyAV too (`pip install av`): decord returns wrong frames on some formats, so "
    "each file's format is checked with PyAV's demuxer first."
)


def read_video_frames(
    video,
    sample_indices: Callable[[VideoMetadata], list[int]],
    backend: str | None = "auto",
    frame_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    max_download_bytes: int = MAX_DOWNLOAD_BYTES,
    download_timeout: float = DOWNLOAD_TIMEOUT,
    allow_private_urls: bool = False,
    allow_truncated: bool = False,
    pixel_format: str = "rgb",
) -> tuple[torch.Tensor, VideoMetadata]:
    """
    Decode only the frames that `sample_indices(metadata)` asks for, as a player shows them: rotated as the file's
    display matrix says, and frames with an alpha channel blended onto white (as Transformers' `convert_to_rgb` does
    for RGBA arrays).

    A file that holds fewer frames than its header announces (a truncated download, a copy cut short) is an error
    unless `allow_truncated=True`, which samples from the frames it holds, with a warning. A header that announces
    fewer frames than the file holds gives a warning; the frames are counted from the packet index either way.

    Args:
        video: A local path, an http(s) URL, raw bytes or a binary file object.
        sample_indices: Maps the video's `VideoMetadata` to frame indices (repeats allowed, any order).
        backend: `"auto"` (or `None`; PyAV), `"pyav"` or `"decord"`. decord is used only on the containers and
            codecs where it returns the right frames (checked with PyAV's demuxer); other files are decoded with
            PyAV, with a warning.
        frame_transform: Applied to each chunk of decoded `(n, 3, H, W)` uint8 frames (e.g. the resize), so that
            full-size frames are never all held at once.
        max_download_bytes: URLs only: the largest body accepted.
        download_timeout: URLs only: seconds the whole download may take.
        allow_private_urls: URLs only: allow loopback, private and link-local addresses (see `download`).
        allow_truncated: Sample from the frames a truncated file holds instead of refusing it.
        pixel_format: `"rgb"`, or `"yuv420p"`: the frames as stored, without colour conversion (for the videos this
            package prepares, see `training.prepare`; decoded with PyAV, not rotated), each `(h * 3 / 2, w)`: the Y
            plane, then the U and V planes (`(h / 2, w / 2)` each) as FFmpeg packs them.

    Returns:
        `(frames, metadata)`: `(len(indices), 3, h, w)` frames (`(len(indices), h * 3 / 2, w)` in YUV) in index
        order, and the video's metadata with `frames_indices` set (`video_backend` names the decoder that was used).
    """
    backend = backend or "auto"
    if backend not in DECODING_BACKENDS:
        raise ValueError(f"`decoding_backend` must be one of {DECODING_BACKENDS}, got {backend!r}.")
    if pixel_format not in PIXEL_FORMATS:
        raise ValueError(f"`pixel_format` must be one of {PIXEL_FORMATS}, got {pixel_format!r}.")
    name = video_name(video)
    with open_video_source(video, name, max_download_bytes, download_timeout, allow_private_urls) as source:
        try:
            used_backend = _backend_for(source, backend) if pixel_format == "rgb" else "pyav"
        except ImportError:
            raise
        except Exception as error:  # each decoder has its own exception types for unreadable data
            raise ValueError(f"Could not open video {name} with {backend}: {error}") from error
        decode = functools.partial(
            _read,
            source,
            name,
            sample_indices,
            frame_transform,
            allow_truncated=allow_truncated,
            pixel_format=pixel_format,
        )
        try:
            return decode(used_backend)
        except _DecoderFailure as failure:
            if used_backend != "decord":
                raise
            # decord fails on some files PyAV reads (very small frames, some codec settings): PyAV decodes them right.
            logger.warning(f"decord could not read video {name} ({failure.cause}); decoding it with PyAV.")
            return decode("pyav")


class _DecoderFailure(ValueError):
    """The decoder could not open or decode a file that PyAV's demuxer read."""

    def __init__(self, message: str, cause: Exception):
        super().__init__(message)
        self.cause = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__


def _read(
    source,
    name: str,
    sample_indices: Callable,
    frame_transform: Callable | None,
    backend: str,
    allow_truncated: bool,
    pixel_format: str,
) -> tuple[torch.Tensor, VideoMetadata]:
    try:
        reader = _READERS[backend](source, name)
        if pixel_format == "yuv420p":
            reader.pixel_format = pixel_format
    except ImportError:
        raise
    except Exception as error:  # each decoder has its own exception types for unreadable data
        raise _DecoderFailure(f"Could not open video {name} with {backend}: {error}", error) from error
    with reader:
        _check_frame_count(reader, name, allow_truncated)
        return _decode_sampled_frames(reader, name, backend, sample_indices, frame_transform)


def _check_frame_count(reader, name: str, allow_truncated: bool) -> None:
    """Compare the frames the file holds (its packet index) with those its header announces."""
    held, announced = reader.total_num_frames, reader.announced_frames
    if held < 1:
        raise ValueError(f"Video {name} contains no frames.")
    if not announced or announced == held:
        return
    if announced > held and not allow_truncated:
        raise ValueError(
            f"Video {name} is truncated or corrupt: its header announces {announced} frames but the file holds "
            f"{held} (`allow_truncated_videos=True` samples from the frames it holds)."
        )
    logger.warning(
        f"Video {name}: the container header announces {announced} frames but the file holds {held}; sampling "
        f"from the {held} frames it holds."
    )


def blend_on_white(frames: torch.Tensor) -> torch.Tensor:
    """`(..., 4, H, W)` RGBA uint8 frames to RGB uint8, blended onto white: the rule of Transformers' `convert_to_rgb`
    for RGBA arrays, rounded, so that a file and an array with the same pixels give the same clip."""
    alpha = frames[..., 3:, :, :].float() / 255
    rgb = frames[..., :3, :, :].float() * alpha + 255 * (1 - alpha)
    return rgb.round_().clamp_(0, 255).to(torch.uint8)


def _decode_sampled_frames(
    reader, name: str, backend: str, sample_indices: Callable, frame_transform: Callable | None
) -> tuple[torch.Tensor, VideoMetadata]:
    metadata = VideoMetadata(
        total_num_frames=reader.total_num_frames,
        fps=reader.fps,
        duration=reader.total_num_frames / reader.fps if reader.fps else None,
        height=reader.height,
        width=reader.width,
        video_backend=backend,
    )
    indices = list(sample_indices(metadata))
    metadata.frames_indices = indices
    transform = frame_transform or (lambda frames: frames)
    decoded = {}
    try:
        for chunk_indices, chunk in reader.decode(sorted(set(indices))):
            frames = torch.from_numpy(chunk)
            if frames.ndim == 4:  # RGB(A) `(n, h, w, channels)`, not packed YUV planes `(n, h * 3 / 2, w)`
                frames = frames.permute(0, 3, 1, 2)
                frames = blend_on_white(frames) if frames.shape[1] == 4 else frames
            frames = transform(frames)
            del chunk  # let the full-size frames go before the next chunk is decoded
            decoded.update(zip(chunk_indices, frames, strict=True))
    except Exception as error:
        raise _DecoderFailure(f"Could not decode video {name} with {backend}: {error}", error) from error
    metadata.height, metadata.width = reader.height, reader.width  # after a rotation by 90 degrees, swapped
    missing = sorted(set(indices) - set(decoded))
    if missing:
        raise ValueError(
            f"Video {name} ended early: it holds {metadata.total_num_frames} frames but frames "
            f"{missing[:5]}{'...' if len(missing) > 5 else ''} could not be decoded (corrupt or truncated file?)."
        )
    return torch.stack([decoded[index] for index in indices]), metadata


def _backend_for(source, backend: str) -> str:
    """The decoder to use: PyAV unless decord is asked for and gives the right frames on this file."""
    if backend != "decord":
        return "pyav"
    reason = _decord_wrong_frames_reason(source)
    if reason is None:
        return "decord"
    # Once per kind of file, not per file: a data set in one format would repeat it for every video.
    logger.warning_once(
        f"decord returns wrong frames for {reason}: such files are decoded with PyAV, as `decoding_backend='auto'` "
        "does for every file."
    )
    return "pyav"


def _decord_wrong_frames_reason(source) -> str | None:
    """Why decord would return wrong frames for this file (None when it is a format it decodes right)."""
    av = _import_av(DECORD_NEEDS_PYAV)
    with av.open(_from_start(source)) as container:
        if not container.streams.video:
            return None  # no video: let decord report it
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        if container.format.name not in DECORD_CONTAINERS:
            return f"{container.format.long_name} files"
        if _has_alpha(stream.codec_context.pix_fmt):
            return "videos with an alpha channel (decord drops it)"
        first_frame = next(container.decode(stream), None)
        if first_frame is not None and first_frame.rotation:
            return "rotated videos (decord ignores the rotation)"
        container.seek(0)
        if codec in DECORD_REORDERING_CODECS:
            return None
        timestamps = [packet.pts for packet in container.demux(stream) if packet.size]
        if None in timestamps or timestamps != sorted(timestamps):
            return f"{codec} video with B-frames (reordered frames)"
    return None


def _has_alpha(pix_fmt: str | None) -> bool:
    import av

    return bool(pix_fmt) and any(component.is_alpha for component in av.VideoFormat(pix_fmt).components)


def _from_start(source):
    """The source, with a file object brought back to its start: every reader (and the format check) reads it whole."""
    if not isinstance(source, (str, os.PathLike)):
        source.seek(0)
    return source


def _import_av(message: str):
    try:
        import av
    except ImportError as error:
        raise ImportError(message) from error
    return av


class _DecordReader:
    """Random access through decord: only the requested frames are decoded, a chunk at a time."""

    def __init__(self, source, name: str):
        try:
            from decord import VideoReader, cpu
        except ImportError as error:
            raise ImportError("`decoding_backend='decord'` needs decord: `pip install decord2`.") from error
        # decord's automatic thread count ignores CPU affinity; oversubscribed threads slow decoding down.
        num_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
        with _import_av(DECORD_NEEDS_PYAV).open(_from_start(source)) as container:
            self.announced_frames = container.streams.video[0].frames  # the header's count, as PyAV reads it
        self.reader = VideoReader(_from_start(source), ctx=cpu(0), num_threads=num_threads)
        self.total_num_frames = len(self.reader)
        self.fps = self.reader.get_avg_fps() or None
        # decord tells the frame size only by decoding a frame: the first, so that it is known before sampling.
        self.height, self.width = self.reader.next().shape[:2]
        self.reader.seek(0)

    def decode(self, indices: list[int]) -> Iterator[tuple[list[int], np.ndarray]]:
        chunk_size = max(1, DECODE_CHUNK_BYTES // (3 * self.height * self.width))
        for start in range(0, len(indices), chunk_size):
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

    def __init__(self, source, name: str):
        self.av = _import_av("Decoding videos needs PyAV: `pip install av`.")
        self.source = source
        self._open()
        # (pts, is key frame) of every packet, in decoding order: the frame count is read here, not from the header.
        self.packets = [
            (packet.pts, packet.is_keyframe) for packet in self.container.demux(self.stream) if packet.size
        ]
        self.total_num_frames = len(self.packets)
        self.announced_frames = self.stream.frames
        self.pixel_format = "rgba" if _has_alpha(self.stream.codec_context.pix_fmt) else "rgb24"
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.fps = float(rate) if rate else None
        self.height, self.width = self.stream.height, self.stream.width

    def _open(self) -> None:
        self.container = self.av.open(_from_start(self.source))
        if not self.container.streams.video:
            self.container.close()
            raise ValueError("the file has no video stream")
        self.stream = self.container.streams.video[0]
        # Skipping is switched packet by packet, which frame threading would defer to other threads.
        self.stream.codec_context.thread_type = "SLICE"

    def _rewind(self) -> None:
        """Back to the first packet; streams that cannot seek (raw .h264, .m4v elementary streams) are reopened."""
        try:
            self.container.seek(0)
        except self.av.error.FFmpegError:
            self.container.close()
            self._open()

    def decode(self, indices: list[int]) -> Iterator[tuple[list[int], np.ndarray]]:
        chunk_size = max(1, DECODE_CHUNK_BYTES // (3 * self.height * self.width))
        chunk_indices, chunk = [], []
        for index, frame in self._sampled_frames(set(indices)):
            chunk_indices.append(index)
            chunk.append(self._displayed(frame))
            if len(chunk) == chunk_size:
                yield chunk_indices, np.stack(chunk)
                chunk_indices, chunk = [], []
        if chunk:
            yield chunk_indices, np.stack(chunk)

    def _displayed(self, frame: "VideoFrame") -> np.ndarray:
        """The frame as players show it: turned by the display matrix's rotation (counter-clockwise degrees)."""
        pixels = frame.to_ndarray(format=self.pixel_format)
        turns = round(getattr(frame, "rotation", 0) / 90) % 4  # PyAV < 13 does not report the rotation
        if turns and self.pixel_format == "yuv420p":
            raise ValueError("its frames are rotated; YUV frames are read only from unrotated (prepared) videos")
        if turns:
            pixels = np.rot90(pixels, turns)
            self.height, self.width = pixels.shape[:2]
        return pixels

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
        self._rewind()
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
        self._rewind()
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


_READERS = {"pyav": _PyAVReader, "decord": _DecordReader}


def _pick(
    frames: list["VideoFrame"], index_of: dict[int, int], wanted: set[int]
) -> Iterator[tuple[int, "VideoFrame"]]:
    """The decoded frames that were sampled, with their frame index."""
    for frame in frames:
        index = index_of.get(frame.pts)
        if index in wanted:
            yield index, frame


@contextlib.contextmanager
def open_video_source(
    video,
    name: str,
    max_download_bytes: int = MAX_DOWNLOAD_BYTES,
    download_timeout: float = DOWNLOAD_TIMEOUT,
    allow_private_urls: bool = False,
) -> Iterator:
    """A path or a binary file object that decord and PyAV can both read; a URL is downloaded to a temporary file."""
    if isinstance(video, (bytes, bytearray, memoryview)):
        yield io.BytesIO(video)
    elif isinstance(video, str) and video.startswith(("http://", "https://")):
        with tempfile.TemporaryDirectory(prefix="xvit-video-") as directory:
            path = os.path.join(directory, "video" + _url_suffix(video))
            download(video, path, max_download_bytes, download_timeout, allow_private_urls)
            yield path
    elif isinstance(video, (str, os.PathLike)):
        path = os.fspath(video)
        check_video_file(path)
        yield path
    else:
        yield video  # a binary file object


def check_video_file(path: str) -> None:
    """Fail with what the path is when it is not a regular file (a directory, a device, a symlink loop, ...)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            raise FileNotFoundError(
                f"Video file not found: {path} is a symlink to {os.readlink(path)!r}, which does not exist."
            ) from None
        raise FileNotFoundError(f"Video file not found: {path}") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ValueError(f"Video path {path!r} is a symlink loop, not a video file.") from error
        raise ValueError(f"Cannot read video file {path!r}: {error.strerror}.") from error
    if stat.S_ISREG(mode):
        return
    kinds = {
        stat.S_ISDIR: "a directory",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISFIFO: "a named pipe (FIFO)",
        stat.S_ISSOCK: "a socket",
    }
    kind = next((kind for is_kind, kind in kinds.items() if is_kind(mode)), "not a regular file")
    raise ValueError(f"Video path {path!r} is {kind}, not a video file.")


def download(url: str, path: str, max_bytes: int, timeout: float, allow_private_urls: bool = False) -> None:
    """
    Stream `url` to `path`: at most `max_bytes` bytes, within `timeout` seconds in all (resolving, connecting,
    headers and body, over every redirect; a connection that sends nothing is dropped after `READ_TIMEOUT` seconds).

    Every hop (the URL and each redirect) must be http(s), and its host must resolve only to public addresses: not
    loopback, private, link-local, multicast or otherwise reserved, so that a URL from a request cannot reach the
    machine's own services or its network (`allow_private_urls=True` allows them, for local use and tests). The
    connection goes to the address that was checked, so proxy settings (`HTTP_PROXY`) are not used. Every failure gives
    the same message, naming `url` (the cause is chained to it): an answer that told a refused address, a closed port
    and an HTTP error apart would let a request map the network.
    """
    deadline = _Deadline(timeout)
    try:
        with contextlib.ExitStack() as stack:
            stack.callback(deadline.cancel)
            response = _open_url(url, deadline, allow_private_urls, stack)
            with open(path, "wb") as file:
                _copy_body(response, file, max_bytes, deadline)
            deadline.remaining()  # a body cut short by the deadline must not pass for a whole one
    except Exception as error:  # every fetch failure, whatever raised it, gets the one message
        timed_out = _DownloadError(f"it did not finish within the {timeout:g} s limit")
        raise ValueError(
            f"Could not download video {url!r}: not a public http(s) URL that answers with the video within the "
            f"limits (`max_download_bytes={max_bytes}`, `download_timeout={timeout:g}`; `allow_private_urls=True` "
            "allows local and private addresses)."
        ) from (timed_out if deadline.passed() else error)


MAX_REDIRECTS = 5


class _DownloadError(Exception):
    pass


class _Deadline:
    """One deadline for a whole download: at the end, the open socket is shut down, which ends any read in progress."""

    def __init__(self, seconds: float):
        self.seconds, self.end = seconds, time.monotonic() + seconds
        self.expired = False
        self._sockets = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        """Seconds left, for the next blocking call (at most `READ_TIMEOUT`, so that a stalled server is dropped)."""
        left = self.end - time.monotonic()
        if left <= 0:
            self.expired = True
            raise _DownloadError(f"it did not finish within the {self.seconds:g} s limit")
        return min(left, READ_TIMEOUT)

    def passed(self) -> bool:
        return self.expired or time.monotonic() >= self.end

    def watch(self, sock: socket.socket) -> None:
        """Shut `sock` down at the deadline; until then, only a connection silent for `READ_TIMEOUT` is dropped."""
        sock.settimeout(READ_TIMEOUT)
        self._sockets.append(sock)
        if self.expired:
            self._expire()

    def _expire(self) -> None:
        self.expired = True
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


def _open_url(url: str, deadline: _Deadline, allow_private_urls: bool, stack: contextlib.ExitStack):
    """The response to `GET url`, redirects followed; every hop checked before it is connected to."""
    for _ in range(MAX_REDIRECTS + 1):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _DownloadError(f"{url!r} is not an http(s) URL")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = _checked_address(parts.hostname, port, deadline, allow_private_urls)
        connection_class = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
        connection = stack.enter_context(contextlib.closing(connection_class(parts.hostname, port, address, deadline)))
        connection.request("GET", urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, "")))
        response = stack.enter_context(contextlib.closing(connection.getresponse()))
        location = response.getheader("Location")
        if response.status in (301, 302, 303, 307, 308) and location:
            url = urllib.parse.urljoin(url, location)
            continue
        if response.status != 200:
            raise _DownloadError(f"HTTP status {response.status} {response.reason}")
        return response
    raise _DownloadError(f"more than {MAX_REDIRECTS} redirects")


def _checked_address(host: str, port: int, deadline: _Deadline, allow_private_urls: bool) -> str:
    """The address to connect to: refused unless every address of `host` is public (or private ones are allowed)."""
    addresses = [info[4][0] for info in _resolve(host, port, deadline)]
    if not allow_private_urls:
        for address in addresses:
            if not is_public_address(address):
                raise _DownloadError(f"{host!r} resolves to {address}, which is not a public address")
    return addresses[0]


def is_public_address(address: str) -> bool:
    """Whether an IP address is a public unicast one (not loopback, private, link-local, multicast, reserved...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 address may carry a zone (`fe80::1%eth0`)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _resolve(host: str, port: int, deadline: _Deadline) -> list:
    """`getaddrinfo` under the deadline: it cannot be interrupted, so it runs in a thread that is left behind."""
    result = {}

    def resolve() -> None:
        try:
            result["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:
            result["error"] = error

    thread = threading.Thread(target=resolve, daemon=True)
    thread.start()
    thread.join(deadline.remaining())
    if "error" in result:
        raise result["error"]
    if "infos" not in result:
        deadline.remaining()  # raises when the deadline has passed
        raise _DownloadError(f"resolving {host!r} took longer than {READ_TIMEOUT:g} s")
    return result["infos"]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address that was checked, not to what the host name resolves to next, under the deadline."""

    def __init__(self, host: str, port: int, address: str, deadline: _Deadline):
        super().__init__(host, port)
        self.address, self.deadline = address, deadline

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.deadline.remaining())
        self.deadline.watch(self.sock)


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    def connect(self) -> None:
        super().connect()
        self.sock = ssl.create_default_context().wrap_socket(self.sock, server_hostname=self.host)


def _copy_body(response: http.client.HTTPResponse, file, max_bytes: int, deadline: _Deadline) -> None:
    announced = response.length
    if announced is not None and announced > max_bytes:
        raise _DownloadError(f"it announces {announced} bytes, over the {max_bytes}-byte limit")
    received = 0
    while chunk := response.read1(DOWNLOAD_CHUNK_BYTES):
        received += len(chunk)
        if received > max_bytes:
            raise _DownloadError(f"it sent more than the {max_bytes}-byte limit")
        deadline.remaining()
        file.write(chunk)
    if response.length:  # bytes still due after the connection closed
        raise _DownloadError(f"the body ended after {received} of the {announced} bytes announced")


def _url_suffix(url: str) -> str:
    """The file extension of the URL's path (it helps FFmpeg recognise raw streams), when it is a plain one."""
    suffix = os.path.splitext(urllib.parse.urlparse(url).path)[1]
    return suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix) else ""


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


__all__ = [
    "DECODING_BACKENDS",
    "PIXEL_FORMATS",
    "blend_on_white",
    "check_video_file",
    "download",
    "is_encoded_video",
    "is_public_address",
    "open_video_source",
    "read_video_frames",
    "video_name",
]
