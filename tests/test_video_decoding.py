"""Decoding (video_decoding.py): right frames from every backend on every container, file checks, URL downloads."""

import http.server
import io
import logging
import os
import struct
import sys
import tempfile
import threading
import time

import av
import numpy as np
import pytest
import torch

from benchmarks.preprocessing import write_format_sample
from modeling_xvit import XViTVideoProcessor
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
    with caplog.at_level(logging.WARNING):
        frames, metadata = read_video_frames(path, lambda metadata: [metadata.total_num_frames - 1, 50], "pyav")
    assert metadata.total_num_frames == 100
    assert torch.equal(frames, expected[[99, 50]])
    assert f"header announces {claimed} frames but the file holds 100" in caplog.text


def test_no_warning_when_header_and_index_agree(real_videos, caplog):
    with caplog.at_level(logging.WARNING):
        _, metadata = read(real_videos["bikes"], [0], "pyav")
    assert metadata.total_num_frames == 250 and "header announces" not in caplog.text


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


# URL downloads: streamed to a temporary file, under a size limit and a deadline.


class VideoServer(http.server.BaseHTTPRequestHandler):
    """Serves `video` at /video.mp4, and misbehaves at /endless, /trickle, /stall, /short and /huge."""

    video = b""

    def do_GET(self):
        if self.path == "/missing.mp4":
            self.send_error(404)
            return
        routes = {  # path: (Content-Length, what is sent)
            "/video.mp4": (len(self.video), lambda: self.wfile.write(self.video)),
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

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tiny_video, tmp_path, monkeypatch):
    """The server's base URL; downloads go to a temporary folder of the test, checked for leftovers."""
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(downloads))
    handler = type("Handler", (VideoServer,), {"video": open(tiny_video, "rb").read()})
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as http_server:
        threading.Thread(target=http_server.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{http_server.server_address[1]}"
        http_server.shutdown()
    assert not list(downloads.iterdir())  # every download was removed, failed or not


@pytest.mark.parametrize("backend", BACKENDS)
def test_url_is_downloaded_and_decoded(server, tiny_video, backend):
    frames, _ = read(f"{server}/video.mp4", [0, 3], backend)
    assert torch.equal(frames, full_decode(tiny_video)[[0, 3]])


def test_endless_body_stops_at_the_size_limit(server):
    with pytest.raises(ValueError, match=r"Could not download video '.*/endless': it sent more than the 200000-byte"):
        read(f"{server}/endless", [0], max_download_bytes=200_000)


def test_announced_size_over_the_limit_fails_before_the_body(server):
    with pytest.raises(ValueError, match=r"'.*/huge': it announces 1099511627776 bytes, over the 1000000-byte limit"):
        read(f"{server}/huge", [0], max_download_bytes=1_000_000)


@pytest.mark.parametrize("path", ["/trickle", "/stall"])
def test_slow_body_stops_at_the_deadline(server, path):
    start = time.monotonic()
    with pytest.raises(ValueError, match=f"Could not download video '.*{path}': it did not finish within the 0.3 s"):
        read(f"{server}{path}", [0], download_timeout=0.3)
    assert time.monotonic() - start < 2  # the trickle would take 20 s, the stall 3 s


def test_short_body_is_an_incomplete_download(server):
    with pytest.raises(ValueError, match="'.*/short': the body ended after 100 of the 1000 bytes announced"):
        read(f"{server}/short", [0])


def test_http_error_names_the_url(server):
    with pytest.raises(ValueError, match="Could not download video '.*/missing.mp4': HTTP Error 404"):
        read(f"{server}/missing.mp4", [0])


def test_processor_options_set_the_download_limits(server):
    processor = XViTVideoProcessor(num_frames=2, max_download_bytes=100)
    with pytest.raises(ValueError, match="over the 100-byte limit"):
        processor(f"{server}/video.mp4")
    with pytest.raises(ValueError, match="within the 0.3 s limit"):
        XViTVideoProcessor(num_frames=2)(f"{server}/stall", download_timeout=0.3)


def test_bytes_input(tiny_video):
    data = open(tiny_video, "rb").read()
    for video in (data, bytearray(data), memoryview(data), io.BytesIO(data)):
        frames, _ = read(video, [1, 2])
        assert torch.equal(frames, full_decode(tiny_video)[[1, 2]])
