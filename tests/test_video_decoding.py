"""Decoding (video_decoding.py): right frames from every backend on every container, file checks, URL downloads."""

import http.server
import io
import json
import logging
import os
import re
import socket
import struct
import sys
import tempfile
import threading
import time

import av
import numpy as np
import pytest
import torch
from transformers import AutoVideoProcessor

from benchmarks.preprocessing import write_format_sample
from modeling_xvit import XViTVideoProcessor, video_decoding
from modeling_xvit.video_decoding import read_video_frames

BACKENDS = ["auto", "pyav", "decord"]


def write_video(path: str, codec: str, num_frames: int = 60, b_frames: int = 2, container_format: str | None = None):
    """Moving stripes, 128 x 96, 25 fps, a key frame every 25 frames and up to `b_frames` B-frames in a row."""
    return write_format_sample(path, codec, b_frames, num_frames, container_format)


def full_decode(path: str) -> torch.Tensor:
    """Reference: every frame in presentation order, decoded from the start by PyAV, as `(frames, 3, H, W)`."""
    with av.open(path) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)


def read(video, indices: list[int], backend: str = "auto", **kwargs):
    return read_video_frames(video, lambda metadata: indices, backend=backend, **kwargs)


SPREAD = [int(index) for index in np.linspace(3, 59, 16).round()]  # 16 frames over the 60, as a segment clip takes
DENSE = list(range(0, 60, 2))  # every other frame: most B-frames are sampled


# (file name, codec, frames decord returns wrong, which it must therefore never decode)
FORMATS = [
    ("xvid.avi", "mpeg4", True),  # MPEG-4 Part 2 with B-frames in AVI: how UCF101 and HMDB51 are distributed
    ("broadcast.ts", "libx264", True),  # H.264 with B-frames in MPEG-TS
    ("part2.mp4", "mpeg4", True),  # MPEG-4 Part 2 with B-frames in MP4
    ("h264.mp4", "libx264", False),
    ("h264.mkv", "libx264", False),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name, codec, decord_wrong", FORMATS)
def test_every_backend_returns_the_frames_of_a_full_decode(tmp_path, backend, name, codec, decord_wrong):
    path = write_video(str(tmp_path / name), codec)
    expected = full_decode(path)
    assert len(expected) == 60
    for indices in (SPREAD, DENSE, [50, 7, 7, 31]):
        frames, metadata = read(path, indices, backend)
        assert torch.equal(frames, expected[indices]), f"{backend} on {name}, frames {indices}"
    assert metadata.total_num_frames == 60
    used = "decord" if backend == "decord" and not decord_wrong else "pyav"
    assert metadata.video_backend == used
    # Bytes and file objects go through the same format check.
    with open(path, "rb") as file:
        frames, metadata = read(file, SPREAD, backend)
    assert torch.equal(frames, expected[SPREAD]) and metadata.video_backend == used


def test_decord_falls_back_to_pyav_with_a_warning(tmp_path, caplog):
    logging.Logger.warning_once.cache_clear()  # the warning is given once per kind of file
    path = write_video(str(tmp_path / "xvid.avi"), "mpeg4")
    with caplog.at_level(logging.WARNING):
        _, metadata = read(path, SPREAD, "decord")
    assert metadata.video_backend == "pyav"
    assert "decord returns wrong frames for AVI (Audio Video Interleaved) files" in caplog.text
    caplog.clear()
    path = write_video(str(tmp_path / "part2.mkv"), "mpeg4")
    with caplog.at_level(logging.WARNING):
        read(path, SPREAD, "decord")
    assert "decord returns wrong frames for mpeg4 video with B-frames" in caplog.text


def test_decord_needs_pyav_for_its_format_check(tmp_path, monkeypatch):
    path = write_video(str(tmp_path / "h264.mp4"), "libx264", num_frames=5)
    monkeypatch.setitem(sys.modules, "av", None)  # makes `import av` fail
    with pytest.raises(ImportError, match="`decoding_backend='decord'` needs PyAV too"):
        read(path, [0], "decord")
    with pytest.raises(ImportError, match="Decoding videos needs PyAV"):
        read(path, [0])


def test_unknown_backend_is_named(tmp_path):
    path = write_video(str(tmp_path / "h264.mp4"), "libx264", num_frames=5)
    with pytest.raises(ValueError, match=r"^`decoding_backend` must be one of .*'torchcodec'"):
        read(path, [0], "torchcodec")


@pytest.mark.parametrize("backend", BACKENDS)
def test_yuv_frames_are_the_stored_planes(tmp_path, backend):
    path = write_video(str(tmp_path / "h264.mp4"), "libx264")
    indices = [40, 3, 3, 17]
    planes, metadata = read(path, indices, backend, pixel_format="yuv420p")
    with av.open(path) as container:
        stored = [frame.to_ndarray() for frame in container.decode(video=0)]
    assert planes.shape == (4, 96 * 3 // 2, 128) and planes.dtype == torch.uint8
    assert all(np.array_equal(planes[row].numpy(), stored[index]) for row, index in enumerate(indices))
    assert metadata.video_backend == "pyav"  # YUV frames come from PyAV whatever the backend asked for
    with pytest.raises(ValueError, match=r"^`pixel_format` must be one of \('rgb', 'yuv420p'\), got 'nv12'"):
        read(path, [0], backend, pixel_format="nv12")


def test_yuv_frames_of_a_rotated_video_are_refused(tmp_path):
    path = write_frames(str(tmp_path / "rotated.mp4"), np.zeros((4, 48, 64, 3), np.uint8), rotation=90)
    with pytest.raises(ValueError, match=r"rotated\.mp4.*its frames are rotated; YUV frames are read only from"):
        read(path, [0], pixel_format="yuv420p")


# Frame count: the packet index, not the header.


def claim_frame_count(path: str, claimed: int) -> None:
    """Overwrite the frame counts of an AVI's main header (`avih`) and stream header (`strh`)."""
    data = bytearray(open(path, "rb").read())
    struct.pack_into("<I", data, data.index(b"avih") + 8 + 16, claimed)  # dwTotalFrames
    struct.pack_into("<I", data, data.index(b"strh") + 8 + 32, claimed)  # dwLength
    open(path, "wb").write(bytes(data))


@pytest.mark.parametrize("claimed", [10, 1000])
def test_frame_count_comes_from_the_packet_index(tmp_path, caplog, claimed):
    path = write_video(str(tmp_path / f"claims_{claimed}.avi"), "mpeg4", num_frames=100, b_frames=0)
    expected = full_decode(path)
    claim_frame_count(path, claimed)
    with av.open(path) as container:
        assert container.streams.video[0].frames == claimed  # the header does lie
    sample = lambda metadata: [metadata.total_num_frames - 1, 50]  # noqa: E731
    if claimed > 100:  # fewer frames than announced: a truncated file, refused unless allowed
        with pytest.raises(ValueError, match=f"is truncated or corrupt: its header announces {claimed} frames but"):
            read_video_frames(path, sample, "pyav")
    with caplog.at_level(logging.WARNING):
        frames, metadata = read_video_frames(path, sample, "pyav", allow_truncated=True)
    assert metadata.total_num_frames == 100
    assert torch.equal(frames, expected[[99, 50]])
    assert f"header announces {claimed} frames but the file holds 100" in caplog.text


def test_no_warning_when_header_and_index_agree(real_videos, caplog):
    with caplog.at_level(logging.WARNING):
        _, metadata = read(real_videos["bikes"], [0], "pyav")
    assert metadata.total_num_frames == 250 and "header announces" not in caplog.text


# Content as players show it: rotation, truncation, very small frames.


def write_frames(path: str, frames: np.ndarray, codec: str = "libx264", rotation: int = 0, **options) -> str:
    """`frames` (frames, H, W, 3) uint8 at 25 fps; `rotation`: the display matrix's counter-clockwise degrees."""
    with av.open(path, "w", options=options) as container:
        stream = container.add_stream(codec, rate=25, options={"qp": "0"} if codec == "libx264" else {})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv444p"
        if rotation:
            stream.set_display_rotation(rotation)
        for pixels in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_tag_is_honoured(tmp_path, backend, rotation):
    frames = np.zeros((4, 48, 64, 3), np.uint8)
    frames[:, :, :8] = 255  # a white stripe along the left edge
    frames[:, :6] += 100  # a grey band along the top
    path = write_frames(str(tmp_path / "rotated.mp4"), frames, rotation=rotation)
    decoded, metadata = read(path, [0, 3], backend)
    expected = torch.from_numpy(np.rot90(frames[[0, 3]], rotation // 90, axes=(1, 2)).copy()).permute(0, 3, 1, 2)
    assert decoded.shape == expected.shape and (metadata.height, metadata.width) == tuple(expected.shape[-2:])
    assert (decoded.float() - expected.float()).abs().mean() < 2  # lossless up to the colour conversion
    assert metadata.video_backend == "pyav"  # decord ignores the rotation: such files go to PyAV


def faststart_mp4(path: str, num_frames: int = 40) -> str:
    """An MP4 with its index (moov) before the data, as streamed files are: cut short, it still opens."""
    frames = np.random.default_rng(0).integers(0, 256, (num_frames, 48, 64, 3), dtype=np.uint8)
    return write_frames(path, frames, movflags="faststart")


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_file_is_an_error_unless_allowed(tmp_path, backend, caplog):
    data = open(faststart_mp4(str(tmp_path / "whole.mp4")), "rb").read()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"'.*cut.mp4' is truncated or corrupt: its header announces 40 frames but"):
        read(str(path), [0], backend)
    with caplog.at_level(logging.WARNING):
        frames, metadata = read(str(path), [0], backend, allow_truncated=True)
    assert 0 < metadata.total_num_frames < 40 and "header announces 40 frames" in caplog.text
    with pytest.raises(ValueError, match="is truncated or corrupt"):
        XViTVideoProcessor(num_frames=2)(str(path), decoding_backend=backend)
    clip = XViTVideoProcessor(num_frames=2)(str(path), decoding_backend=backend, allow_truncated_videos=True)
    assert clip.pixel_values.shape == (1, 2, 3, 224, 224)


@pytest.mark.parametrize("size", [(16, 16), (2, 2)])
def test_decord_failures_fall_back_to_pyav_naming_the_file(tmp_path, caplog, size):
    frames = np.random.default_rng(0).integers(0, 256, (8, *size, 3), dtype=np.uint8)
    path = write_frames(str(tmp_path / "small.mkv"), frames)
    with caplog.at_level(logging.WARNING):
        decoded, metadata = read(path, [1, 6], "decord")
    assert metadata.video_backend == "pyav"
    assert torch.equal(decoded, read(path, [1, 6], "pyav")[0])
    assert f"decord could not read video '{path}' (" in caplog.text and "decoding it with PyAV" in caplog.text


# Raw elementary streams: no container, no timestamps.


@pytest.mark.parametrize("backend", BACKENDS)
def test_raw_h264_stream_is_decoded(tmp_path, backend):
    path = write_video(str(tmp_path / "camera.h264"), "libx264", num_frames=30, container_format="h264")
    expected = full_decode(path)
    frames, metadata = read(path, [29, 0, 14], backend)
    assert torch.equal(frames, expected[[29, 0, 14]])
    assert metadata.total_num_frames == 30 and metadata.video_backend == "pyav"  # decord cannot index raw streams


# Paths that are not video files.


@pytest.fixture
def tiny_video(tmp_path) -> str:
    return write_video(str(tmp_path / "tiny.mp4"), "libx264", num_frames=4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_path_with_spaces_and_non_ascii_characters(tmp_path, tiny_video, backend):
    path = tmp_path / "clips dir ü" / "vidéo d'été 動画.mp4"
    path.parent.mkdir()
    path.write_bytes(open(tiny_video, "rb").read())
    frames, _ = read(str(path), [0, 3], backend)
    assert torch.equal(frames, full_decode(tiny_video)[[0, 3]])


def test_directory(tmp_path):
    with pytest.raises(ValueError, match=f"Video path '{tmp_path}' is a directory, not a video file"):
        read(str(tmp_path), [0])


def test_symlink_loop(tmp_path):
    loop = tmp_path / "loop.mp4"
    os.symlink(loop, loop)
    with pytest.raises(ValueError, match="Video path '.*loop.mp4' is a symlink loop"):
        read(str(loop), [0])


def test_character_device_and_named_pipe(tmp_path):
    with pytest.raises(ValueError, match="Video path '/dev/zero' is a character device, not a video file"):
        read("/dev/zero", [0])
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"Video path '.*pipe.mp4' is a named pipe \(FIFO\)"):
        read(str(fifo), [0])


def test_missing_file_and_broken_symlink(tmp_path):
    with pytest.raises(FileNotFoundError, match="Video file not found: .*nope.mp4"):
        read(str(tmp_path / "nope.mp4"), [0])
    link = tmp_path / "link.mp4"
    os.symlink(tmp_path / "gone.mp4", link)
    with pytest.raises(FileNotFoundError, match="link.mp4 is a symlink to '.*gone.mp4', which does not exist"):
        read(str(link), [0])


# URL downloads: streamed to a temporary file, under a size limit and one deadline, from public addresses only.


class VideoServer(http.server.BaseHTTPRequestHandler):
    """Serves `video` at /video.mp4, redirects at /to/<target>, and misbehaves at /endless, /trickle, /stall, /short,
    /huge and /slow_headers. Records every path requested in `requested`."""

    video = b""
    requested = []

    def do_GET(self):
        self.requested.append(self.path)
        if self.path == "/missing.mp4":
            self.send_error(404)
            return
        if self.path.startswith("/to/"):
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/to/"))
            self.end_headers()
            return
        if self.path == "/slow_headers":
            self.send_slow_headers()
            return
        routes = {  # path: (Content-Length, what is sent)
            "/video.mp4": (len(self.video), lambda: self.wfile.write(self.video)),
            "/secret": (6, lambda: self.wfile.write(b"secret")),
            "/endless": (None, self.send_endless),
            "/trickle": (1000, self.send_trickle),
            "/stall": (1000, lambda: time.sleep(3)),
            "/short": (1000, lambda: self.wfile.write(b"x" * 100)),
            "/huge": (2**40, lambda: None),
        }
        length, send = routes[self.path]
        self.send_response(200)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        try:
            send()
        except OSError:
            pass  # the client gave up, as it should

    def send_endless(self):
        while True:
            self.wfile.write(bytes(65536))

    def send_trickle(self):
        for _ in range(1000):  # one byte every 20 ms: 20 s in all
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.02)

    def send_slow_headers(self):
        """The status line and headers one byte every 20 ms (20 s in all): each read gets a byte in time."""
        try:
            for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 1000:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.02)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tiny_video, tmp_path, monkeypatch):
    """The server's base URL (on 127.0.0.1); downloads go to a temporary folder of the test, checked for leftovers."""
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(downloads))
    handler = type("Handler", (VideoServer,), {"video": open(tiny_video, "rb").read(), "requested": []})
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as http_server:
        threading.Thread(target=http_server.serve_forever, daemon=True).start()
        http_server.requested = handler.requested
        yield http_server
        http_server.shutdown()
    assert not list(downloads.iterdir())  # every download was removed, failed or not


def base_url(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def download_failure(url: str, **kwargs) -> ValueError:
    """The error of a failed download: one message naming the URL, whatever failed; the cause is chained to it."""
    with pytest.raises(
        ValueError, match=f"Could not download video {re.escape(repr(url))}: not a public http"
    ) as info:
        read(url, [0], **kwargs)
    return info.value


def cause(url: str, **kwargs) -> str:
    return str(download_failure(url, allow_private_urls=True, **kwargs).__cause__)


@pytest.mark.parametrize("backend", BACKENDS)
def test_url_is_downloaded_and_decoded(server, tiny_video, backend):
    frames, _ = read(f"{base_url(server)}/video.mp4", [0, 3], backend, allow_private_urls=True)
    assert torch.equal(frames, full_decode(tiny_video)[[0, 3]])
    frames, _ = read(f"{base_url(server)}/to//video.mp4", [0, 3], backend, allow_private_urls=True)  # redirected
    assert torch.equal(frames, full_decode(tiny_video)[[0, 3]])


def test_endless_body_stops_at_the_size_limit(server):
    assert (
        cause(f"{base_url(server)}/endless", max_download_bytes=200_000) == "it sent more than the 200000-byte limit"
    )


def test_announced_size_over_the_limit_fails_before_the_body(server):
    assert cause(f"{base_url(server)}/huge", max_download_bytes=10**6) == (
        "it announces 1099511627776 bytes, over the 1000000-byte limit"
    )


@pytest.mark.parametrize("path", ["/trickle", "/stall", "/slow_headers"])
def test_the_deadline_covers_headers_and_body(server, path):
    start = time.monotonic()
    assert cause(f"{base_url(server)}{path}", download_timeout=0.3) == "it did not finish within the 0.3 s limit"
    assert time.monotonic() - start < 2  # the trickle and the slow headers would take 20 s, the stall 3 s


def test_short_body_is_an_incomplete_download(server):
    assert cause(f"{base_url(server)}/short") == "the body ended after 100 of the 1000 bytes announced"


def test_every_fetch_failure_gives_one_message_naming_the_url(server):
    """A 404, a closed port, a timeout and a refused address read the same: a request cannot map the network."""
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    failures = {  # URL: whether private addresses are allowed
        f"{base_url(server)}/missing.mp4": True,
        f"http://127.0.0.1:{closed_port}/video.mp4": True,
        f"{base_url(server)}/stall": True,
        f"{base_url(server)}/video.mp4": False,
    }
    messages = {
        str(download_failure(url, allow_private_urls=allowed, download_timeout=0.3)).replace(url, "URL")
        for url, allowed in failures.items()
    }
    assert len(messages) == 1
    assert cause(f"{base_url(server)}/missing.mp4") == "HTTP status 404 Not Found"


@pytest.mark.parametrize(
    "target, refused",
    [
        ("http://127.0.0.2:{port}/secret", "'127.0.0.2' resolves to 127.0.0.2, which is not a public address"),
        ("http://169.254.169.254/latest/meta-data/", "resolves to 169.254.169.254, which is not a public address"),
        ("http://[::ffff:127.0.0.2]:{port}/secret", "which is not a public address"),
        ("ftp://127.0.0.1:{port}/secret", "'ftp://127.0.0.1:{port}/secret' is not an http(s) URL"),
    ],
)
def test_every_hop_is_resolved_and_checked(server, monkeypatch, target, refused):
    """Internal addresses and other schemes are refused, first hop or redirect, before any connection to them."""
    port = server.server_address[1]
    url = f"{base_url(server)}/video.mp4"
    assert str(download_failure(url).__cause__) == "'127.0.0.1' resolves to 127.0.0.1, which is not a public address"
    assert server.requested == []  # refused before connecting
    # The server stands for a public host here: 127.0.0.1 counts as public, every other address as it is.
    is_public = video_decoding.is_public_address
    monkeypatch.setattr(
        video_decoding, "is_public_address", lambda address: address == "127.0.0.1" or is_public(address)
    )
    read(url, [0])
    redirect = f"{base_url(server)}/to/{target.format(port=port)}"
    assert str(download_failure(redirect).__cause__).endswith(refused.format(port=port))
    assert "/secret" not in server.requested


def test_public_addresses():
    public = ["8.8.8.8", "2001:4860::8888"]
    internal = ["127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0"]
    internal += ["224.0.0.1", "::1", "fe80::1%eth0", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "240.0.0.1"]
    assert all(video_decoding.is_public_address(address) for address in public)
    assert not any(video_decoding.is_public_address(address) for address in internal)


def test_processor_options_set_the_download_limits(server):
    url = f"{base_url(server)}/video.mp4"
    processor = XViTVideoProcessor(num_frames=2, max_download_bytes=100)
    with pytest.raises(ValueError, match="Could not download video") as info:
        processor(url, allow_private_urls=True)
    assert "over the 100-byte limit" in str(info.value.__cause__)
    with pytest.raises(ValueError, match="Could not download video") as info:
        XViTVideoProcessor(num_frames=2)(f"{base_url(server)}/stall", download_timeout=0.3, allow_private_urls=True)
    assert "within the 0.3 s limit" in str(info.value.__cause__)
    # An int timeout is a number of seconds; a call may raise the limits above the defaults.
    options = dict(download_timeout=5, max_download_bytes=2**31, allow_private_urls=True)
    assert processor(url, **options).pixel_values.shape == (1, 2, 3, 224, 224)
    with pytest.raises(ValueError, match="Could not download video") as info:
        XViTVideoProcessor(num_frames=2)(url)  # 127.0.0.1 is refused by default
    assert "not a public address" in str(info.value.__cause__)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"max_download_bytes": -1}, "`max_download_bytes` must be an integer of at least 1, got -1"),
        ({"download_timeout": -1.0}, "`download_timeout` must be a positive finite number, got -1.0"),
        ({"download_timeout": float("nan")}, "`download_timeout` must be a positive finite number, got nan"),
    ],
)
def test_negative_download_limits_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        XViTVideoProcessor(**options)
    with pytest.raises(ValueError, match=message):
        XViTVideoProcessor()(np.zeros((4, 32, 32, 3), np.uint8), **options)


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"max_download_bytes": 2**31}, "`max_download_bytes=2147483648` is above its default"),
        ({"download_timeout": 3600.0}, "`download_timeout=3600.0` is above its default"),
        ({"allow_private_urls": True}, "`allow_private_urls=True` cannot be saved in a processor config"),
    ],
)
def test_a_saved_config_cannot_loosen_the_download_limits(tmp_path, setting, message):
    XViTVideoProcessor(max_download_bytes=1000, download_timeout=5.0).save_pretrained(tmp_path)  # lower: kept
    loaded = AutoVideoProcessor.from_pretrained(tmp_path)
    assert (loaded.max_download_bytes, loaded.download_timeout) == (1000, 5.0)
    config = json.loads((tmp_path / "video_preprocessor_config.json").read_text())
    (tmp_path / "video_preprocessor_config.json").write_text(json.dumps({**config, **setting}))
    with pytest.raises(ValueError, match=re.escape(message)):
        AutoVideoProcessor.from_pretrained(tmp_path)


def test_bytes_input(tiny_video):
    data = open(tiny_video, "rb").read()
    for video in (data, bytearray(data), memoryview(data), io.BytesIO(data)):
        frames, _ = read(video, [1, 2])
        assert torch.equal(frames, full_decode(tiny_video)[[1, 2]])
