import random

import pytest
import torch

from modeling_xvit.clip_sampling import (
    dense_indices,
    random_crop_box,
    sample_clip_indices,
    segment_indices,
    short_side_size,
    spatial_crop_boxes,
)


def original_dense_reference(total, num_frames, sampling_rate, fps, target_fps, view, num_clips):
    """
    The original's formula written with torch ops: start = delta * view / num_clips, `torch.linspace` in the default
    dtype (float32), clamp, long.
    """
    clip_size = sampling_rate * num_frames / target_fps * fps
    delta = max(total - clip_size, 0)
    start = delta * view / num_clips
    index = torch.linspace(start, start + clip_size - 1, num_frames)
    return torch.clamp(index, 0, total - 1).long().tolist()


def test_segment_evaluation_takes_the_middle_of_each_segment():
    # 33 frames, 4 segments of (33 - 1) / 4 = 8 frames: bounds 0, 8, 16, 24, 32.
    assert segment_indices(33, 4) == [4, 12, 20, 28]


def test_segment_test_views_are_middle_start_end():
    views = sample_clip_indices(33, 4, "segment", num_views=3)
    assert views == [[4, 12, 20, 28], [0, 8, 16, 24], [8, 16, 24, 32]]


def test_segment_training_draws_one_frame_inside_each_segment():
    rng = random.Random(0)
    draws = [segment_indices(33, 4, view=None, rng=rng) for _ in range(200)]
    for i in range(4):
        picked = {draw[i] for draw in draws}
        assert picked == set(range(8 * i, 8 * i + 9))  # inclusive bounds, every frame reachable


def test_segment_rejects_a_fourth_test_view():
    with pytest.raises(ValueError, match="3 test views"):
        sample_clip_indices(100, 8, "segment", num_views=4)


@pytest.mark.parametrize(
    "total, num_frames, sampling_rate, fps, num_clips",
    [(300, 16, 16, 30.0, 1), (300, 16, 16, 30.0, 2), (1000, 8, 8, 25.0, 3), (90, 16, 4, 60.0, 5), (40, 16, 16, 30, 2)],
)
def test_dense_matches_the_original_formula(total, num_frames, sampling_rate, fps, num_clips):
    views = sample_clip_indices(
        total, num_frames, "dense", num_views=num_clips, sampling_rate=sampling_rate, video_fps=fps, target_fps=30.0
    )
    expected = [
        original_dense_reference(total, num_frames, sampling_rate, fps, 30.0, view, num_clips)
        for view in range(num_clips)
    ]
    assert views == expected


def test_dense_truncates_ties_as_the_original_float32_linspace():
    # 214 frames at 25 fps, 3 test clips: the 6th position of the middle clip is 70.99999 in float32 (the original
    # takes frame 70) but exactly 71 in float64.
    assert sample_clip_indices(214, 16, "dense", num_views=3, sampling_rate=16, video_fps=25.0)[1][5] == 70
    for total in range(1, 700):
        views = sample_clip_indices(total, 16, "dense", num_views=3, sampling_rate=16, video_fps=25.0)
        assert views == [original_dense_reference(total, 16, 16, 25.0, 30.0, view, 3) for view in range(3)]


def test_dense_span_follows_the_frame_rate():
    at_30 = dense_indices(1000, 4, 8, video_fps=30.0)
    at_60 = dense_indices(1000, 4, 8, video_fps=60.0)
    assert at_30[-1] - at_30[0] == 31  # 4 * 8 frames at 30 fps
    assert at_60[-1] - at_60[0] == 63  # the same duration holds twice as many frames at 60 fps
    assert dense_indices(1000, 4, 8, video_fps=None) == at_30  # an unknown rate counts as the target rate


def test_dense_test_clips_are_evenly_spaced():
    starts = [view[0] for view in sample_clip_indices(1000, 4, "dense", num_views=4, sampling_rate=8)]
    delta = 1000 - 32
    assert starts == [int(delta * i / 4) for i in range(4)]


def test_dense_training_start_is_random_within_the_video():
    rng = random.Random(0)
    starts = {dense_indices(100, 4, 8, view=None, rng=rng)[0] for _ in range(300)}
    assert min(starts) == 0 and 60 < max(starts) <= 100 - 32
    assert len(starts) > 30


def test_short_video_is_padded_by_repeating_frames():
    # 5 frames cannot hold a 4 x 8 dense clip: indices are clamped, so the last frame repeats.
    assert dense_indices(5, 4, 8) == [0, 4, 4, 4]
    segment = segment_indices(5, 16)
    assert segment == sorted(segment) and set(segment) == {0, 1, 2, 3, 4}


@pytest.mark.parametrize("sampling", ["segment", "dense"])
def test_one_frame_video_repeats_that_frame(sampling):
    assert sample_clip_indices(1, 8, sampling, num_views=2) == [[0] * 8, [0] * 8]


@pytest.mark.parametrize("sampling", ["segment", "dense"])
def test_empty_video_is_an_error(sampling):
    with pytest.raises(ValueError, match="0 frames"):
        sample_clip_indices(0, 8, sampling)


def test_unknown_strategy_is_an_error():
    with pytest.raises(ValueError, match="`sampling` must be one of"):
        sample_clip_indices(10, 4, "uniform")


def test_short_side_size_keeps_the_aspect_ratio():
    assert short_side_size(720, 1280, 224) == (224, 398)
    assert short_side_size(1280, 720, 224) == (398, 224)
    assert short_side_size(272, 640, 224) == (224, 527)


def test_short_side_size_rounds_as_the_original():
    # The original floors (long / short) * size: 1281 / 147 * 224 is 1951.99999..., where 1281 * 224 / 147 is 1952.
    assert short_side_size(147, 1281, 224) == (224, 1951)
    assert short_side_size(1281, 147, 224) == (1951, 224)
    # A frame whose short side already has the size keeps its size (the formula would give 229: 230 / 224 * 224 is
    # 229.99999...).
    assert short_side_size(224, 230, 224) == (224, 230)


def test_three_crops_run_along_the_longer_side():
    # Landscape: left / centre / right, the centre rounded up as in the original.
    assert spatial_crop_boxes(224, 399, 224, 224, 3) == [(0, 0), (0, 88), (0, 175)]
    # Portrait: top / centre / bottom.
    assert spatial_crop_boxes(399, 224, 224, 224, 3) == [(0, 0), (88, 0), (175, 0)]
    assert spatial_crop_boxes(300, 400, 224, 224, 1) == [(38, 88)]


def test_crop_larger_than_the_frame_is_an_error():
    with pytest.raises(ValueError, match="224x224 crop from a 100x300 frame"):
        spatial_crop_boxes(100, 300, 224, 224)
    with pytest.raises(ValueError, match="must be 1 or 3"):
        spatial_crop_boxes(300, 300, 224, 224, 2)


def test_random_crop_stays_inside_the_frame():
    rng = random.Random(0)
    boxes = {random_crop_box(240, 300, 224, 224, rng) for _ in range(200)}
    assert all(0 <= top <= 16 and 0 <= left <= 76 for top, left in boxes)
    assert len(boxes) > 50
