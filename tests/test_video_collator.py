"""The training example's collator: per-sample seeded decoding, unreadable videos left out, MixUp / CutMix."""

import random

import pytest
import torch

from modeling_xvit import XViTVideoProcessor
from modeling_xvit.training.collator import VideoClassificationCollator, clip_mixing, seeded
from tests.training_videos import write_clip

TRAINING = {"do_augment": True}


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("clips")
    return [str(write_clip(folder / f"{index}.mp4", index % 3, index)) for index in range(4)]


@pytest.fixture(scope="module")
def processor() -> XViTVideoProcessor:
    return XViTVideoProcessor(size={"shortest_edge": 32}, crop_size=32, num_frames=4, scale_jitter=[32, 48])


def rows(videos: list[str], processing=TRAINING) -> list[dict]:
    return [
        {"video": video, "label": index % 3, "sample_key": 10 + index, "processing": processing}
        for index, video in enumerate(videos)
    ]


def test_a_sample_gets_the_same_clip_whatever_the_batch_order_and_the_random_state(processor, videos):
    collator = VideoClassificationCollator(processor, seed=3)
    random.seed(1), torch.manual_seed(1)
    forward = collator(rows(videos))
    random.seed(2), torch.manual_seed(2)
    backward = collator(rows(videos)[::-1])
    assert torch.equal(forward["pixel_values"], backward["pixel_values"].flip(0))
    assert forward["sample_index"].tolist() == [10, 11, 12, 13] and forward["labels"].tolist() == [0, 1, 2, 0]
    # Decoding in the main process leaves the Trainer's random state (dropout, sampler) alone.
    python_state, torch_state = random.getstate(), torch.get_rng_state()
    collator(rows(videos))
    assert random.getstate() == python_state and torch.equal(torch.get_rng_state(), torch_state)


def test_another_epoch_draws_other_augmentations_and_evaluation_is_deterministic(processor, videos):
    collator = VideoClassificationCollator(processor, seed=3)
    first = collator(rows(videos))["pixel_values"]
    collator.set_epoch(1)
    assert not torch.equal(first, collator(rows(videos))["pixel_values"])
    views = {"do_augment": False, "num_temporal_views": 2, "num_spatial_crops": 3}
    batch = collator(rows(videos[:2], views))
    assert batch["pixel_values"].shape == (2 * 6, 4, 3, 32, 32) and batch["num_views"] == 6
    expected = processor(videos[:2], return_tensors="pt", **views).pixel_values
    torch.testing.assert_close(batch["pixel_values"], expected, rtol=0, atol=0)


def test_an_unreadable_video_is_left_out_and_reported(processor, videos, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    batch = VideoClassificationCollator(processor)(rows([videos[0], str(broken), videos[1]]))
    assert batch["num_videos"] == 3 and len(batch["pixel_values"]) == 2
    assert batch["labels"].tolist() == [0, 2] and batch["sample_index"].tolist() == [10, 12]
    assert len(batch["bad_videos"]) == 1 and batch["bad_videos"][0].startswith(f"{str(broken)!r}: ")
    nothing = VideoClassificationCollator(processor)(rows([str(broken)]))
    assert nothing["labels"].shape == (0,) and nothing["pixel_values"].numel() == 0


def test_mixup_and_cutmix_give_soft_targets_reproducibly(processor, videos):
    collator = VideoClassificationCollator(processor, seed=3, mixing=clip_mixing(3, mixup_alpha=0.4, cutmix_alpha=1.0))
    batch = collator(rows(videos))
    assert batch["labels"].shape == (4, 3) and batch["labels"].dtype == torch.float32
    torch.testing.assert_close(batch["labels"].sum(1), torch.ones(4))
    assert (batch["labels"].max(1).values < 1).any()  # some clips are mixes of two
    again = collator(rows(videos))
    assert torch.equal(batch["pixel_values"], again["pixel_values"]) and torch.equal(batch["labels"], again["labels"])
    evaluation = collator(rows(videos, {"do_augment": False}))
    assert evaluation["labels"].dtype == torch.long  # never mixed outside training


def test_seeded_restores_both_generators():
    random.seed(5), torch.manual_seed(5)
    expected = (random.random(), torch.rand(1))
    random.seed(5), torch.manual_seed(5)
    with seeded(123):
        inside = (random.random(), torch.rand(1))
    assert (random.random(), torch.rand(1)) == expected and inside != expected
