"""The one video writer of the package: `(T, H, W, 3)` uint8 RGB frames to an H.264 mp4 with PyAV.

The motion data set writes its clips with it, the demo its new clips and the Hub-folder verifier its synthetic clip.
"""

import fractions
from pathlib import Path

import av
import numpy as np


def write_video(path: str | Path, frames: np.ndarray, fps: int) -> None:
    """Write `(T, H, W, 3)` uint8 RGB frames as H.264 in mp4, every frame a key frame.

    No frame is coded from another, so the codec's artifacts cannot carry the motion between frames (the motion data
    set relies on this: a single frame must not tell its class) and every frame decodes on its own.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"Frames to write to {path} must be uint8 RGB (T, H, W, 3), got {frames.dtype} of shape {frames.shape}."
        )
    with av.open(str(path), "w") as container:
        stream = container.add_stream(
            "libx264", rate=fractions.Fraction(fps), options={"crf": "18", "preset": "veryfast"}
        )
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.gop_size = 1
        stream.codec_context.thread_count = 1  # small frames: threads cost more than they save
        for pixels in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())
