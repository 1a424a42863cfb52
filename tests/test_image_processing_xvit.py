import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import frame_level, original_test_pixels
from transformers import AutoImageProcessor
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging as transformers_logging

from modeling_xvit import XViTImageProcessor, XViTVideoProcessor
from modeling_xvit.clip_sampling import sample_clip_indices


def grey_frames(num_frames: int, height: int = 48, width: int = 64) -> np.ndarray:
    return np.stack([np.full((height, width, 3), frame_level(i), np.uint8) for i in range(num_frames)])


def test_list_of_frames_and_4d_array_give_pixel_values():
    frames = np.random.default_rng(0).integers(0, 256, (16, 120, 160, 3), dtype=np.uint8)
    processor = XViTImageProcessor()
    from_array = processor(frames, return_tensors="pt").pixel_values
    from_pil = processor([PIL.Image.fromarray(frame) for frame in frames], return_tensors="pt").pixel_values
    assert from_array.shape == (1, 16, 3, 224, 224)
    torch.testing.assert_close(from_pil, from_array)
    batch = processor([frames, frames[:8]], return_tensors="pt").pixel_values
    assert batch.shape == (2, 16, 3, 224, 224)


@pytest.mark.parametrize("antialias", [False, True])
def test_matches_the_video_processor(antialias):
    frames = np.random.default_rng(0).integers(0, 256, (16, 120, 160, 3), dtype=np.uint8)
    by_image_processor = XViTImageProcessor(antialias=antialias)(frames, return_tensors="pt").pixel_values
    by_video_processor = XViTVideoProcessor(antialias=antialias)(frames, do_sample_frames=False).pixel_values
    # Antialiased, PIL and torchvision round the bilinear resize differently by at most two grey levels; without
    # antialiasing, the video processor's uint8 resize is at most one level from the image processor's float one.
    torch.testing.assert_close(by_image_processor, by_video_processor, atol=2.01 / 127.5, rtol=0)


def test_pixels_match_the_original_resize(real_videos):
    options = dict(num_frames=4, sampling="dense", sampling_rate=8)
    raw = dict(do_resize=False, do_center_crop=False, do_rescale=False, do_normalize=False)
    frames = XViTVideoProcessor(**options, **raw)(real_videos["bikes"]).pixel_values[0].numpy()  # 4 x 3 x 272 x 640
    expected = torch.from_numpy(original_test_pixels(frames)).float()
    as_array = np.ascontiguousarray(frames.transpose(0, 2, 3, 1))
    pixel_values = XViTImageProcessor(num_frames=4)(as_array, return_tensors="pt").pixel_values[0]
    torch.testing.assert_close(pixel_values, expected, atol=1e-4, rtol=0)  # float interpolation, as the original
    antialiased = XViTImageProcessor(num_frames=4, antialias=True)(as_array, return_tensors="pt").pixel_values[0]
    assert (antialiased - expected).abs().max() > 3 * 2 / 127.5  # far outside the two levels of the video processor


@pytest.mark.parametrize(
    "options, message",
    [
        ({"target_fps": 0}, "`target_fps` must be a positive finite number, got 0"),
        ({"crop_size": 0}, r"`crop_size\['height'\]` must be a positive integer, got 0"),
        ({"size": {"shortest_edge": -1}}, r"`size\['shortest_edge'\]` must be a positive integer, got -1"),
        ({"image_std": [0.5, 0.0, 0.5]}, "`image_std` must be one or three"),
        ({"num_frames": 100000}, r"`num_frames=100000` at these sizes would need .* GiB"),
    ],
)
def test_bad_options_are_refused_when_built_and_when_called(options, message):
    with pytest.raises(ValueError, match=message):
        XViTImageProcessor(**options)
    with pytest.raises(ValueError, match=message):
        XViTImageProcessor()(grey_frames(4), **options)


def test_float_frames_already_in_0_1_are_warned_about():
    transformers_logging.warning_once.cache_clear()
    frames = np.random.default_rng(0).random((4, 48, 64, 3), dtype=np.float32)
    with CaptureLogger(transformers_logging.get_logger("modeling_xvit.processing_defaults")) as captured:
        XViTImageProcessor(num_frames=4)(frames)
    assert "already rescaled" in captured.out


def test_more_frames_than_the_model_takes_are_sampled():
    frames = grey_frames(17)
    processor = XViTImageProcessor(do_resize=False, do_center_crop=False, do_rescale=False, do_normalize=False)
    clip = processor(frames, num_frames=4, return_tensors="pt").pixel_values[0]
    assert [frame_level(i) for i in sample_clip_indices(17, 4)[0]] == clip.float().mean(dim=(1, 2, 3)).tolist()
    dense = processor(frames, num_frames=4, sampling="dense", sampling_rate=2, return_tensors="pt").pixel_values[0]
    assert clip.shape == dense.shape == (4, 3, 48, 64)
    assert dense.float().mean(dim=(1, 2, 3)).tolist() == [frame_level(i) for i in (0, 2, 4, 7)]


def test_fewer_frames_are_padded_by_repetition():
    clip = XViTImageProcessor(num_frames=8, do_normalize=False)(grey_frames(3), return_tensors="pt").pixel_values
    assert clip.shape == (1, 8, 3, 224, 224)
    levels = (clip[0].mean(dim=(1, 2, 3)) * 255).round().tolist()
    assert levels == sorted(levels) and set(levels) == {frame_level(i) for i in range(3)}


def test_grayscale_and_rgba_frames_become_rgb():
    processor = XViTImageProcessor(num_frames=2, do_normalize=False, do_rescale=False)
    grey = [PIL.Image.fromarray(np.full((48, 64), 100, np.uint8)) for _ in range(2)]
    pixel_values = processor(grey, return_tensors="pt").pixel_values
    assert pixel_values.shape == (1, 2, 3, 224, 224)
    # The bilinear resize of a constant frame is constant up to float32 rounding, which depends on the CPU kernel.
    torch.testing.assert_close(pixel_values, torch.full_like(pixel_values, 100.0), rtol=0, atol=1e-4)
    rgba = np.full((2, 48, 64, 4), 100, np.uint8)
    assert processor(rgba, return_tensors="pt").pixel_values.shape == (1, 2, 3, 224, 224)


def test_save_and_load_through_auto_image_processor(tmp_path):
    # `auto_map` and the code files are the Hub folder writer's (tests/test_model_folder.py).
    XViTImageProcessor(sampling="dense", num_frames=8).save_pretrained(tmp_path)
    loaded = AutoImageProcessor.from_pretrained(tmp_path)
    assert type(loaded) is XViTImageProcessor
    assert (loaded.sampling, loaded.num_frames) == ("dense", 8)


@pytest.mark.slow
def test_works_without_torchvision():
    script = """
import sys
sys.modules["torchvision"] = None  # any import of torchvision now fails
import numpy as np
import modeling_xvit.image_processing_xvit as module
frames = np.random.default_rng(0).integers(0, 256, (20, 40, 60, 3), dtype=np.uint8)
output = module.XViTImageProcessor(num_frames=4)(frames, return_tensors="np").pixel_values
assert "torchvision.transforms" not in sys.modules
print(output.shape)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(1, 4, 3, 224, 224)"


def test_empty_video_is_an_error():
    with pytest.raises(ValueError):
        XViTImageProcessor()(np.zeros((0, 48, 64, 3), np.uint8))


def test_non_finite_pixels_are_refused():
    frames = np.full((4, 32, 32, 3), 100.0, np.float32)
    frames[1, 0, 0, 0] = np.nan
    processor = XViTImageProcessor(size={"shortest_edge": 32}, crop_size=32, num_frames=4)
    with pytest.raises(ValueError, match="Video #1 of the batch gives non-finite pixel values"):
        processor([np.zeros_like(frames), frames])
