import functools
import http.server
import io
import json
import random
import sys
import threading
import tracemalloc

import numpy as np
import pytest
import torch
from conftest import frame_level, original_test_pixels
from huggingface_hub.errors import StrictDataclassFieldValidationError
from transformers import AutoVideoProcessor
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging as transformers_logging

from modeling_xvit import XViTVideoProcessor, processing_defaults, video_decoding, video_processing_xvit
from modeling_xvit.clip_sampling import sample_clip_indices

BACKENDS = ["decord", "pyav"]


def raw_processor(**kwargs) -> XViTVideoProcessor:
    """No resize, crop, rescale or normalisation: the output is the sampled frames' pixels."""
    options = dict(do_resize=False, do_center_crop=False, do_rescale=False, do_normalize=False)
    return XViTVideoProcessor(**{**options, **kwargs})


def frame_ids(clip: torch.Tensor) -> list[int]:
    """Which synthetic frame each decoded frame is, from its grey level (lossy codecs move it by a few levels)."""
    return [round((level - 10) / 15) for level in clip.flatten(1).float().mean(1).tolist()]


@pytest.mark.parametrize("name", ["bigbuckbunny", "bikes", "carphone_pristine"])
def test_real_videos_give_normalised_clips(real_videos, name):
    pixel_values = XViTVideoProcessor()(real_videos[name], return_tensors="pt").pixel_values
    assert pixel_values.shape == (1, 16, 3, 224, 224)
    assert pixel_values.dtype == torch.float32
    assert pixel_values.min() >= -1 and pixel_values.max() <= 1
    assert pixel_values.std() > 0.1  # real content, not a blank clip


def test_decord_and_pyav_decode_the_same_clip(real_videos):
    processor = XViTVideoProcessor(sampling="dense", sampling_rate=4, num_temporal_views=2, num_spatial_crops=3)
    by_decord = processor(real_videos["bikes"], decoding_backend="decord").pixel_values
    by_pyav = processor(real_videos["bikes"], decoding_backend="pyav").pixel_values
    torch.testing.assert_close(by_decord, by_pyav)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sampling", ["segment", "dense"])
def test_decoded_frames_are_the_sampled_ones(make_video, backend, sampling):
    path = make_video(num_frames=15)
    processor = raw_processor(num_frames=4, sampling=sampling, sampling_rate=2, target_fps=25)
    output = processor(path, decoding_backend=backend, return_metadata=True)
    expected = sample_clip_indices(15, 4, sampling, sampling_rate=2, video_fps=25.0, target_fps=25.0)[0]
    assert output["video_metadata"][0].frames_indices == expected
    assert frame_ids(output.pixel_values[0]) == expected


def decode_every_frame(path: str) -> list[np.ndarray]:
    """Reference decoding: every frame, in presentation order, with PyAV's defaults (nothing skipped)."""
    import av

    with av.open(path) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def count_decoded_frames(monkeypatch) -> list[int]:
    """Records how many frames the PyAV decoder outputs, sampled or not."""
    decoded = []
    pick = video_decoding._pick

    def counting_pick(frames, *args):
        decoded.extend(frames)
        return pick(frames, *args)

    monkeypatch.setattr(video_decoding, "_pick", counting_pick)
    return decoded


def make_gop_video(path: str, num_frames: int, keyframe_interval: int) -> str:
    """Moving noise (every frame different) in H.264 with B-frames and a key frame every `keyframe_interval` frames."""
    import av

    noise = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"x264-params": f"keyint={keyframe_interval}:min-keyint={keyframe_interval}:scenecut=0"}
        for index in range(num_frames):
            frame = av.VideoFrame.from_ndarray(np.roll(noise, index, axis=1), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.mark.parametrize("name", ["bigbuckbunny", "bikes", "carphone_pristine"])
def test_pyav_skipping_keeps_the_sampled_frames_bit_exact(real_videos, monkeypatch, name):
    decoded = count_decoded_frames(monkeypatch)
    processor = raw_processor(sampling="dense", sampling_rate=2, num_temporal_views=3)
    output = processor(real_videos[name], decoding_backend="pyav", return_metadata=True)
    indices = output["video_metadata"][0].frames_indices
    every_frame = decode_every_frame(real_videos[name])
    expected = torch.from_numpy(np.stack([every_frame[index] for index in indices])).permute(0, 3, 1, 2)
    assert torch.equal(output.pixel_values.flatten(0, 1), expected)
    if name != "bigbuckbunny":  # bikes and carphone have non-reference B-frames, which are never decoded
        assert len(decoded) < max(indices) + 1


def test_pyav_decodes_only_the_key_frame_groups_of_the_sampled_frames(tmp_path, monkeypatch):
    path = make_gop_video(str(tmp_path / "gops.mp4"), num_frames=60, keyframe_interval=10)
    decoded = count_decoded_frames(monkeypatch)
    indices = [35, 36, 52, 35]  # any order, repeats allowed
    frames, _ = video_decoding.read_video_frames(path, lambda metadata: indices, backend="pyav")
    every_frame = decode_every_frame(path)
    assert torch.equal(frames.permute(0, 2, 3, 1), torch.from_numpy(np.stack([every_frame[i] for i in indices])))
    assert len(decoded) <= 7 + 3  # frames 30-36 and 50-52 at most, not the 53 frames up to frame 52


def test_decord_decodes_only_the_sampled_frames(real_videos, monkeypatch):
    import decord

    requested = []
    get_batch = decord.VideoReader.get_batch

    def recording_get_batch(self, indices):
        requested.extend(indices)
        return get_batch(self, indices)

    monkeypatch.setattr(decord.VideoReader, "get_batch", recording_get_batch)
    output = XViTVideoProcessor(num_frames=8)(real_videos["bikes"], decoding_backend="decord", return_metadata=True)
    assert sorted(requested) == sorted(set(output["video_metadata"][0].frames_indices))
    assert len(requested) == 8  # out of 250 frames


def test_views_layout_is_video_then_temporal_view_then_crop(make_video):
    # Brightness grows with time and with x: later clips are brighter, right crops are brighter.
    ramp = np.linspace(0, 100, 256, dtype=np.float32)[None, :, None]
    frames = np.stack([np.broadcast_to(ramp + 8 * t, (64, 256, 3)) for t in range(16)]).astype(np.uint8)
    path = make_video(num_frames=16, width=256, height=64, frames=frames)
    processor = XViTVideoProcessor(
        size={"shortest_edge": 64}, crop_size=64, num_frames=4, sampling="dense", sampling_rate=1, target_fps=25
    )
    pixel_values = processor([path, path], num_temporal_views=2, num_spatial_crops=3).pixel_values
    assert pixel_values.shape == (2 * 2 * 3, 4, 3, 64, 64)
    means = pixel_values.mean(dim=(1, 2, 3, 4)).reshape(2, 2, 3)  # (video, temporal view, crop)
    torch.testing.assert_close(means[0], means[1])
    assert (means[:, 1] > means[:, 0]).all()  # second temporal view starts later
    assert (means[:, :, 0] < means[:, :, 1]).all() and (means[:, :, 1] < means[:, :, 2]).all()  # left < centre < right


def test_portrait_video_crops_top_centre_bottom(make_video):
    ramp = np.linspace(0, 200, 256, dtype=np.float32)[:, None, None]
    frames = np.broadcast_to(ramp, (4, 256, 64, 3)).astype(np.uint8)
    path = make_video(num_frames=4, width=64, height=256, frames=frames)
    processor = XViTVideoProcessor(size={"shortest_edge": 64}, crop_size=64, num_frames=2, num_spatial_crops=3)
    means = processor(path).pixel_values.mean(dim=(1, 2, 3, 4))
    assert means[0] < means[1] < means[2]


def test_average_view_scores_folds_views_into_videos():
    processor = XViTVideoProcessor(num_temporal_views=2, num_spatial_crops=3)
    logits = torch.randn(2 * 6, 5)
    averaged = processor.average_view_scores(logits)
    torch.testing.assert_close(averaged, logits.softmax(-1).reshape(2, 6, 5).mean(1))
    torch.testing.assert_close(
        processor.average_view_scores(logits, apply_softmax=False), logits.view(2, 6, 5).mean(1)
    )
    with pytest.raises(ValueError, match=r"num_views=6, got \(7, 5\)"):
        processor.average_view_scores(torch.randn(7, 5))


def test_training_augmentation(make_video):
    ramp = np.linspace(0, 250, 96, dtype=np.float32)[None, :, None]
    frames = np.broadcast_to(ramp, (8, 64, 96, 3)).astype(np.uint8)
    path = make_video(num_frames=8, width=96, height=64, frames=frames)
    processor = XViTVideoProcessor(crop_size=32, num_frames=4, do_augment=True, scale_jitter=[40, 64])

    def left_minus_right(**kwargs) -> float:
        clip = processor(path, do_rand_augment=False, **kwargs).pixel_values[0]
        return (clip[..., :8].mean() - clip[..., -8:].mean()).item()

    random.seed(0)
    assert all(left_minus_right(do_flip=False) < 0 for _ in range(10))  # never flipped
    flipped = [left_minus_right() > 0 for _ in range(20)]
    assert any(flipped) and not all(flipped)

    torch.manual_seed(0)
    random.seed(0)
    augmented = processor(path, num_temporal_views=2).pixel_values
    assert augmented.shape == (2, 4, 3, 32, 32)
    random.seed(0)
    plain = processor(path, num_temporal_views=2, do_rand_augment=False).pixel_values
    assert not torch.equal(augmented, plain)  # RandAugment changed the pixels
    with pytest.raises(ValueError, match="num_spatial_crops=1"):
        processor(path, num_spatial_crops=3)


def test_scale_jitter_sets_the_short_side(make_video, monkeypatch):
    path = make_video(num_frames=4, width=96, height=64)
    sizes = []
    resize = XViTVideoProcessor.resize

    def recording_resize(self, frames, size, **kwargs):
        sizes.append(size.shortest_edge)
        return resize(self, frames, size, **kwargs)

    monkeypatch.setattr(XViTVideoProcessor, "resize", recording_resize)
    processor = XViTVideoProcessor(crop_size=32, num_frames=4, do_augment=True, scale_jitter=[40, 48])
    random.seed(0)
    for _ in range(30):
        processor(path, do_rand_augment=False)
    assert set(sizes) == set(range(40, 49))


def test_bytes_file_objects_and_urls_match_paths(real_videos):
    path = real_videos["carphone_pristine"]
    processor = XViTVideoProcessor(num_frames=4)
    expected = processor(path).pixel_values
    with open(path, "rb") as file:
        data = file.read()
    torch.testing.assert_close(processor(data).pixel_values, expected)
    torch.testing.assert_close(processor(io.BytesIO(data)).pixel_values, expected)

    directory, name = path.rsplit("/", 1)
    handler = functools.partial(QuietHandler, directory=directory)
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/{name}"
        torch.testing.assert_close(processor(url, allow_private_urls=True).pixel_values, expected)
        with pytest.raises(ValueError, match="Could not download video .*missing.mp4"):
            processor(url.replace(name, "missing.mp4"), allow_private_urls=True)
        server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_decoded_arrays_and_metadata(make_video):
    frames = np.stack([np.full((48, 64, 3), frame_level(i), np.uint8) for i in range(12)])
    processor = raw_processor(num_frames=4)
    from_array = processor(frames).pixel_values
    assert frame_ids(from_array[0]) == sample_clip_indices(12, 4)[0]
    channels_first = processor(torch.from_numpy(frames).permute(0, 3, 1, 2)).pixel_values
    torch.testing.assert_close(channels_first, from_array)
    # Dense sampling of decoded frames uses the frame rate given in `video_metadata`.
    dense = raw_processor(num_frames=4, sampling="dense", sampling_rate=1, target_fps=10)
    slow = dense(frames, video_metadata={"total_num_frames": 12, "fps": 10}).pixel_values
    fast = dense(frames, video_metadata={"total_num_frames": 12, "fps": 30}).pixel_values
    assert frame_ids(slow[0]) == [0, 1, 2, 3] and frame_ids(fast[0]) == [0, 3, 7, 11]


def test_save_and_load_through_auto_video_processor(tmp_path):
    # `auto_map` and the code files are the Hub folder writer's (tests/test_model_folder.py).
    processor = XViTVideoProcessor(sampling="dense", num_temporal_views=2, num_spatial_crops=3, do_flip=False)
    processor.save_pretrained(tmp_path)
    loaded = AutoVideoProcessor.from_pretrained(tmp_path)
    assert type(loaded) is XViTVideoProcessor
    assert (loaded.sampling, loaded.num_views, loaded.do_flip) == ("dense", 6, False)
    assert tuple(loaded.image_mean) == (0.5, 0.5, 0.5) and loaded.crop_size["height"] == 224


def test_pyav_is_used_when_decord_is_missing(make_video, monkeypatch):
    monkeypatch.setitem(sys.modules, "decord", None)  # makes `import decord` fail
    output = raw_processor(num_frames=4)(make_video(num_frames=8), return_metadata=True)
    assert output["video_metadata"][0].video_backend == "pyav"
    with pytest.raises(ImportError, match="needs decord"):
        raw_processor()(make_video(num_frames=8), decoding_backend="decord")


# Bad input: each case gives a valid clip or an error naming the file and the reason.


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(FileNotFoundError, match="Video file not found: .*nope.mp4"):
        XViTVideoProcessor()(str(missing))


@pytest.mark.parametrize("backend", BACKENDS)
def test_not_a_video(tmp_path, backend):
    path = tmp_path / "notes.mp4"
    path.write_text("not a video")
    with pytest.raises(ValueError, match=f"Could not open video '{path}' with {backend}"):
        XViTVideoProcessor()(str(path), decoding_backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_mp4(real_videos, tmp_path, backend):
    data = open(real_videos["bikes"], "rb").read()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=f"Could not open video '{path}' with {backend}"):
        XViTVideoProcessor()(str(path), decoding_backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_frames(tmp_path, backend):
    import av

    path = str(tmp_path / "empty.mkv")
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height = 64, 48
        container.start_encoding()
    with pytest.raises(ValueError, match=f"Could not open video '{path}'"):
        XViTVideoProcessor()(path, decoding_backend=backend)
    with pytest.raises(ValueError, match="0 frames"):
        XViTVideoProcessor()(np.zeros((0, 48, 64, 3), np.uint8))


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_frame_video_repeats_the_frame(make_video, backend):
    path = make_video(num_frames=1)
    clip = raw_processor(num_frames=8)(path, decoding_backend=backend).pixel_values[0]
    assert frame_ids(clip) == [0] * 8


@pytest.mark.parametrize("backend", BACKENDS)
def test_video_shorter_than_the_clip_is_padded(make_video, backend):
    path = make_video(num_frames=5)
    processor = raw_processor(num_frames=8, sampling="dense", sampling_rate=2, target_fps=25)
    clip = processor(path, decoding_backend=backend).pixel_values[0]
    assert frame_ids(clip) == [0, 2, 4, 4, 4, 4, 4, 4]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "name, codec, pix_fmt, frame_format",
    [("gray.mkv", "ffv1", "gray", "gray"), ("rgba.mov", "png", "rgba", "rgba")],
)
def test_grayscale_and_rgba_videos(make_video, backend, name, codec, pix_fmt, frame_format):
    channels = {"gray": 1, "rgba": 4}[frame_format]
    frames = np.stack([np.full((48, 64, channels), frame_level(i), np.uint8) for i in range(6)])
    frames[..., 3:] = 255  # opaque
    path = make_video(num_frames=6, name=name, codec=codec, pix_fmt=pix_fmt, frame_format=frame_format, frames=frames)
    clip = raw_processor(num_frames=3)(path, decoding_backend=backend).pixel_values[0]
    assert clip.shape == (3, 3, 48, 64)
    assert frame_ids(clip) == sample_clip_indices(6, 3)[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_transparent_pixels_are_blended_on_white_in_files_as_in_arrays(make_video, backend):
    # One rule for both: a file does not keep the hidden colour of transparent pixels while an array blends them.
    alpha = np.linspace(0, 255, 64).round().astype(np.uint8)[None, :]
    frames = np.zeros((4, 48, 64, 4), np.uint8)
    frames[..., 0], frames[..., 1], frames[..., 3] = 200, 40, alpha  # hidden colour: (200, 40, 0)
    path = make_video(num_frames=4, name="alpha.mov", codec="png", pix_fmt="rgba", frame_format="rgba", frames=frames)
    from_file = raw_processor(num_frames=4)(path, decoding_backend=backend).pixel_values
    from_array = raw_processor(num_frames=4)(frames).pixel_values
    assert torch.equal(from_file, from_array)
    assert torch.all(from_file[..., 0] == 255)  # fully transparent: white, not the hidden (200, 40, 0)


def test_grayscale_and_rgba_arrays():
    grey = np.full((6, 48, 64, 1), 100, np.uint8)
    assert torch.all(raw_processor(num_frames=3)(grey).pixel_values == 100)
    rgba = np.full((6, 48, 64, 4), 100, np.uint8)
    rgba[..., 3] = 0  # fully transparent: blended on white
    clip = raw_processor(num_frames=3)(rgba).pixel_values
    assert clip.shape == (1, 3, 3, 48, 64) and torch.all(clip == 255)


@pytest.mark.parametrize("backend", BACKENDS)
def test_4k_frames_are_resized_chunk_by_chunk(make_video, monkeypatch, backend):
    path = make_video(num_frames=4, width=3840, height=2160, codec="mpeg4")
    frame_bytes = 3840 * 2160 * 3
    monkeypatch.setattr(video_decoding, "DECODE_CHUNK_BYTES", frame_bytes)  # one 4K frame at a time
    processor = XViTVideoProcessor(num_frames=4)
    tracemalloc.start()
    try:
        pixel_values = processor(path, decoding_backend=backend).pixel_values
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert pixel_values.shape == (1, 4, 3, 224, 224)
    assert peak < 2.5 * frame_bytes  # at most two full-size frames alive at once, although four were sampled


@pytest.mark.parametrize("backend", BACKENDS)
def test_variable_frame_rate(make_video, backend):
    pts = [0, 40, 80, 200, 210, 220, 500, 540, 560, 900, 1000, 1010]
    path = make_video(num_frames=12, pts=pts)
    output = raw_processor(num_frames=4)(path, decoding_backend=backend, return_metadata=True)
    indices = output["video_metadata"][0].frames_indices
    assert indices == sample_clip_indices(12, 4)[0]
    assert frame_ids(output.pixel_values[0]) == indices


def test_keywords_are_checked_by_the_base_pipeline():
    processor = XViTVideoProcessor()
    frames = np.zeros((4, 32, 32, 3), np.uint8)
    # As in every Transformers video processor: a warning names the unknown keyword, then the typed check refuses it.
    with CaptureLogger(transformers_logging.get_logger("transformers.image_utils")) as captured:
        with pytest.raises(TypeError, match="unexpected keyword argument 'frame_rate'"):
            processor(frames, frame_rate=3)
    assert "Unused or unrecognized kwargs: frame_rate" in captured.out
    with pytest.raises(StrictDataclassFieldValidationError, match="do_flip"):
        processor(frames, do_flip="yes")  # a string where a bool is expected
    with pytest.raises(ValueError, match=r"Cannot make the views of video #0 of the batch \(decoded frames\)"):
        processor(frames, do_resize=False)  # 32 x 32 frames cannot give 224 x 224 crops


BAD_OPTIONS = [
    ({"size": {"shortest_edge": 0}}, r"`size\['shortest_edge'\]` must be a positive integer, got 0"),
    ({"size": -5}, r"`size\['shortest_edge'\]` must be a positive integer, got -5"),
    ({"size": {"longest_edge": 300}}, "`size` must give `shortest_edge`, or `height` and `width`"),
    ({"crop_size": 0}, r"`crop_size\['height'\]` must be a positive integer, got 0"),
    ({"crop_size": {"height": 224, "width": -1}}, r"`crop_size\['width'\]` must be a positive integer, got -1"),
    ({"target_fps": 0}, "`target_fps` must be a positive finite number, got 0"),
    ({"image_std": 0}, "`image_std` must be one or three .* positive finite numbers, got 0"),
    ({"image_std": [0.5, 0.0, 0.5]}, "`image_std` must be one or three"),
    ({"image_mean": [0.5, 0.5]}, "`image_mean` must be one or three"),
    ({"scale_jitter": [320, 256]}, r"`scale_jitter` must be .*smallest <= largest, got \[320, 256\]"),
    ({"num_frames": 0}, "`num_frames` must be an integer of at least 1, got 0"),
    ({"num_frames": "16"}, "`num_frames` must be an integer of at least 1, got '16'"),
    ({"num_temporal_views": 0}, "`num_temporal_views` must be an integer of at least 1, got 0"),
    ({"num_spatial_crops": 2}, "`num_spatial_crops` must be 1 or 3, got 2"),
    ({"sampling_rate": 0}, "`sampling_rate` must be an integer of at least 1, got 0"),
    ({"sampling": "uniform"}, "`sampling` must be one of"),
    ({"rescale_factor": 0}, "`rescale_factor` must be a positive finite number"),
    ({"rand_augment_magnitude": 31}, "`rand_augment_magnitude` must be an integer from 0 to 30, got 31"),
    ({"decoding_backend": "torchcodec"}, "`decoding_backend` must be one of"),
    ({"num_temporal_views": 4}, "Segment sampling has 3 test views .* got `num_temporal_views=4`"),
    ({"do_augment": True, "num_spatial_crops": 3}, "set `num_spatial_crops=1`"),
    ({"fps": 2}, "`fps` is unused"),
]


@pytest.mark.parametrize("options, message", BAD_OPTIONS)
def test_bad_options_are_refused_when_built_and_when_called(options, message):
    with pytest.raises(ValueError, match=message):
        XViTVideoProcessor(**options)
    # In a call, a value of the wrong type (an int where a float is expected) is refused first by the base pipeline's
    # typed check, which names the field.
    refused = "|".join([message, *(f"field '{name}'" for name in options)])
    with pytest.raises((ValueError, StrictDataclassFieldValidationError), match=refused):
        XViTVideoProcessor()(np.zeros((4, 32, 32, 3), np.uint8), **options)


def test_a_saved_config_with_bad_options_fails_on_loading(tmp_path):
    XViTVideoProcessor().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "video_preprocessor_config.json").read_text())
    (tmp_path / "video_preprocessor_config.json").write_text(json.dumps({**config, "target_fps": 0}))
    with pytest.raises(ValueError, match="`target_fps` must be a positive finite number, got 0"):
        AutoVideoProcessor.from_pretrained(tmp_path)


def refuse_decoding(monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("no frame may be decoded")

    monkeypatch.setattr(video_processing_xvit, "read_video_frames", fail)


def test_a_clip_too_large_for_memory_is_refused_before_decoding(make_video, monkeypatch, tmp_path):
    path = make_video(num_frames=1)
    refuse_decoding(monkeypatch)
    message = r"`num_frames=100000` x .* would need 70.1 GiB .* limit of 4 GiB \(`MAX_PIXEL_BYTES_PER_VIDEO`"
    with pytest.raises(ValueError, match=message):
        XViTVideoProcessor()(path, num_frames=100000)
    with pytest.raises(ValueError, match="`num_temporal_views=3` x `num_spatial_crops=3`"):
        XViTVideoProcessor(sampling="dense", num_frames=2000, num_temporal_views=3, num_spatial_crops=3)
    # A downloaded config can ask for it: refused on loading.
    XViTVideoProcessor().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "video_preprocessor_config.json").read_text())
    (tmp_path / "video_preprocessor_config.json").write_text(json.dumps({**config, "num_frames": 100000}))
    with pytest.raises(ValueError, match=message):
        AutoVideoProcessor.from_pretrained(tmp_path)


def test_every_frame_of_a_long_video_is_counted_before_decoding(make_video, monkeypatch):
    path = make_video(num_frames=12)
    processor = XViTVideoProcessor(num_frames=4)
    # Room for 10 frames of 3 x 224 x 224 float32 and their resized copies: 4 sampled frames fit, all 12 do not.
    monkeypatch.setattr(processing_defaults, "MAX_PIXEL_BYTES_PER_VIDEO", 10 * 3 * 224 * 224 * 5)
    assert processor(path).pixel_values.shape == (1, 4, 3, 224, 224)
    decoded = []
    monkeypatch.setattr(video_decoding._PyAVReader, "decode", lambda self, indices: decoded.append(indices))
    with pytest.raises(ValueError, match="The 12 frames of video .*video.mp4' would need"):
        processor(path, do_sample_frames=False, decoding_backend="pyav")
    assert decoded == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_pixel_budget_counts_the_real_frame_size_and_its_resize(make_video, monkeypatch, backend):
    # 2 x 4096 frames with the short side resized to 256 become 524288 x 256 frames: 16 of them need about 6 GiB,
    # which a budget counting square frames (256 x 256) missed. Refused before any frame is decoded.
    path = make_video(num_frames=16, width=2, height=4096, name="tall.mkv", codec="ffv1", pix_fmt="yuv444p")
    decoded = []
    monkeypatch.setattr(video_decoding._PyAVReader, "decode", lambda self, indices: decoded.append(indices))
    monkeypatch.setattr(video_decoding._DecordReader, "decode", lambda self, indices: decoded.append(indices))
    processor = XViTVideoProcessor(sampling="dense", size={"shortest_edge": 256})
    with pytest.raises(ValueError, match=r"The 16 frames of video .*tall.mkv' would need 6.\d+ GiB"):
        processor(path, decoding_backend=backend)
    assert decoded == []
    frames = np.zeros((16, 4096, 2, 3), np.uint8)
    with pytest.raises(ValueError, match=r"The 16 frames of video #0 of the batch \(decoded frames\) would need"):
        processor(frames)


@pytest.mark.parametrize("as_file", [True, False])
def test_device_runs_the_transforms_there(make_video, monkeypatch, as_file):
    path = make_video(num_frames=8)
    video = path if as_file else raw_processor(do_sample_frames=False)(path).pixel_values[0].permute(0, 2, 3, 1)
    devices = []
    resize = XViTVideoProcessor.resize

    def recording_resize(self, frames, size, **kwargs):
        devices.append(frames.device.type)
        return resize(self, frames, size, **kwargs)

    monkeypatch.setattr(XViTVideoProcessor, "resize", recording_resize)
    processor = XViTVideoProcessor(size={"shortest_edge": 32}, crop_size=32, num_frames=4, num_spatial_crops=3)
    output = processor(video, device="meta", return_tensors="pt", return_metadata=True)
    assert output.pixel_values.device.type == "meta" and output.pixel_values.shape == (3, 4, 3, 32, 32)
    assert devices and set(devices) == {"meta"}
    assert output["video_metadata"][0].frames_indices == sample_clip_indices(8, 4)[0]


@pytest.mark.parametrize("as_file", [True, False])
def test_frames_given_without_sampling_are_one_temporal_view(make_video, as_file):
    # As in Transformers' processors, `do_sample_frames=False` takes the given frames as the clip: with several
    # temporal views configured, they form one view, and the spatial crops still apply.
    path = make_video(num_frames=6)
    video = path if as_file else raw_processor(do_sample_frames=False)(path).pixel_values[0].permute(0, 2, 3, 1)
    options = dict(size={"shortest_edge": 32}, crop_size=32, sampling="dense", num_temporal_views=2)
    processor = XViTVideoProcessor(num_spatial_crops=3, **options)
    output = processor(video, do_sample_frames=False, return_metadata=True)
    assert output.pixel_values.shape == (3, 6, 3, 32, 32)
    assert output["video_metadata"][0].frames_indices == list(range(6))
    one_crop = XViTVideoProcessor(**options)(video, do_sample_frames=False).pixel_values
    torch.testing.assert_close(one_crop[0], output.pixel_values[1])  # the centre crop of the same frames


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_pixels_are_refused(bad):
    frames = np.full((4, 32, 32, 3), 100.0, np.float32)
    frames[2, 5, 5, 1] = bad
    processor = XViTVideoProcessor(size={"shortest_edge": 32}, crop_size=32, num_frames=4)
    with pytest.raises(ValueError, match=r"Video #1 of the batch \(decoded frames\) gives non-finite pixel values"):
        processor([np.zeros_like(frames), frames])
    # Finite frames whose normalisation overflows float32 are refused too.
    with pytest.raises(ValueError, match="non-finite pixel values"):
        processor(np.full((4, 32, 32, 3), 3e38, np.float32), do_rescale=False, image_std=1e-3)
    # Large finite values whose float32 sum would overflow are not refused.
    large = processor(np.full((4, 32, 32, 3), 1e37, np.float32), do_rescale=False, image_mean=0.0, image_std=1.0)
    assert torch.isfinite(large.pixel_values).all()


def test_grey_frames_without_a_channel_axis():
    grey = np.full((6, 48, 64), 100, np.uint8)
    clip = raw_processor(num_frames=3)(grey).pixel_values
    assert clip.shape == (1, 3, 3, 48, 64) and torch.all(clip == 100)
    torch.testing.assert_close(clip, raw_processor(num_frames=3)(grey[..., None]).pixel_values)


def test_float_frames_already_in_0_1_are_warned_about():
    transformers_logging.warning_once.cache_clear()
    logger = transformers_logging.get_logger("modeling_xvit.processing_defaults")
    frames = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)  # already in [0, 1]
    processor = XViTVideoProcessor(size={"shortest_edge": 32}, crop_size=32, num_frames=4)
    with CaptureLogger(logger) as captured:
        processor(frames * 255)
    assert captured.out == ""
    with CaptureLogger(logger) as captured:
        processor(frames)
    assert "already rescaled" in captured.out and "do_rescale=False" in captured.out


def test_antialias_is_off_by_default_as_in_the_original():
    assert XViTVideoProcessor().antialias is False
    assert XViTVideoProcessor.from_dict(XViTVideoProcessor().to_dict()).antialias is False


def test_converted_folders_resize_as_the_original():
    from modeling_xvit.conversion.original import build_video_processor

    data = dict(
        NUM_FRAMES=16, SAMPLING_RATE=16, TARGET_FPS=30, MEAN=[0.5] * 3, STD=[0.5] * 3, TRAIN_JITTER_SCALES=[256, 320]
    )
    processor = build_video_processor({"DATA": {**data, "RANDOM_FLIP": True}, "TRAIN": {"DATASET": "kinetics"}}, 224)
    assert processor.antialias is False


@pytest.mark.parametrize("backend", BACKENDS)
def test_pixels_match_the_original_resize(real_videos, backend):
    """bikes is 640 x 272: the short side goes 272 -> 224, as in the issue's check against the original loaders."""
    path = real_videos["bikes"]
    options = dict(num_frames=4, sampling="dense", sampling_rate=8, decoding_backend=backend)
    frames = raw_processor(**options)(path).pixel_values[0]  # (4, 3, 272, 640) uint8, the sampled frames
    expected = original_test_pixels(frames.numpy())
    pixel_values = XViTVideoProcessor(**options)(path).pixel_values[0]
    two_levels = 2 / 255 / 0.5
    torch.testing.assert_close(pixel_values, torch.from_numpy(expected).float(), atol=two_levels, rtol=0)
    antialiased = XViTVideoProcessor(antialias=True, **options)(path).pixel_values[0]
    assert (antialiased - torch.from_numpy(expected).float()).abs().max() > 3 * two_levels


def test_one_crop_resizes_to_size_and_three_crops_to_the_crop_size(real_videos):
    """The original's test views: one crop after resizing the short side to 256 (Kinetics), three after resizing it
    to the crop size, so that the three crops tile the long side."""
    path = real_videos["bikes"]
    options = dict(num_frames=2, sampling="dense", sampling_rate=8, size={"shortest_edge": 256})
    frames = raw_processor(num_frames=2, sampling="dense", sampling_rate=8)(path).pixel_values[0].numpy()
    two_levels = 2 / 255 / 0.5
    one_crop = XViTVideoProcessor(**options)(path).pixel_values[0]
    expected = torch.from_numpy(original_test_pixels(frames, short_side=256)).float()
    torch.testing.assert_close(one_crop, expected, atol=two_levels, rtol=0)
    centre_of_three = XViTVideoProcessor(num_spatial_crops=3, **options)(path).pixel_values[1]
    expected = torch.from_numpy(original_test_pixels(frames, short_side=224)).float()
    torch.testing.assert_close(centre_of_three, expected, atol=two_levels, rtol=0)
