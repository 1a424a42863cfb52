"""Augmentation on the model's device: the workers' uint8 crops finished by `ClipAugmentation` equal the per-clip path
(`VideoClassificationCollator` with the processor's flip, RandAugment, normalisation and mixing) on fixed seeds."""

import pytest
import torch
from torchvision.transforms import v2
from training_videos import write_clip

from modeling_xvit import XViTVideoProcessor
from modeling_xvit.training.augment import ClipAugmentation, DeviceAugmentationCollator, draw_rand_augment
from modeling_xvit.training.collator import VideoClassificationCollator, clip_mixing, seeded
from modeling_xvit.training.prepare import PrepareArguments, prepare_video

NUM_LABELS = 3


@pytest.fixture
def processor() -> XViTVideoProcessor:
    return XViTVideoProcessor(num_frames=4, crop_size={"height": 24, "width": 24}, scale_jitter=[26, 34])


@pytest.fixture
def videos(tmp_path) -> list[str]:
    return [str(write_clip(tmp_path / f"{index}.mp4", index % 3, index, width=48, height=40)) for index in range(6)]


def rows(videos, processing: dict) -> list[dict]:
    return [
        {"video": video, "label": index % NUM_LABELS, "sample_key": 10 + index, "processing": processing}
        for index, video in enumerate(videos)
    ]


@pytest.mark.parametrize(
    ("processing", "mixing"),
    [
        ({"do_augment": True}, None),
        ({"do_augment": True}, clip_mixing(NUM_LABELS, mixup_alpha=0.8, cutmix_alpha=1.0)),
        ({"do_augment": True, "do_flip": False, "rand_augment_num_ops": 3, "rand_augment_magnitude": 20}, None),
        ({"do_augment": True, "do_rand_augment": False, "sampling": "dense", "sampling_rate": 2}, None),
    ],
)
def test_device_augmentation_equals_the_per_clip_path(processor, videos, processing, mixing):
    for epoch in range(3):
        per_clip = VideoClassificationCollator(processor, seed=5, mixing=mixing)
        on_device = DeviceAugmentationCollator(processor, seed=5, mix=mixing is not None)
        per_clip.set_epoch(epoch)
        on_device.set_epoch(epoch)
        expected = per_clip(rows(videos, processing))
        batch = on_device(rows(videos, processing))
        assert batch["pixel_values"].dtype == torch.uint8  # what the workers hand over
        finished = ClipAugmentation(processor, mixing)(batch)  # the operations' magnitudes travel with the batch
        assert "augmentation" not in finished
        torch.testing.assert_close(finished["pixel_values"], expected["pixel_values"], rtol=0, atol=1e-6)
        torch.testing.assert_close(finished["labels"], expected["labels"])
        assert finished["sample_index"].tolist() == expected["sample_index"].tolist()


def test_prepared_videos_take_the_same_operations(processor, videos):
    prepared = [prepare_video(video, PrepareArguments(output_dir="unused", short_side=34))[0] for video in videos]
    from_sources = DeviceAugmentationCollator(processor, seed=1)(rows(videos, {"do_augment": True}))
    from_prepared = DeviceAugmentationCollator(processor, seed=1)(rows(prepared, {"do_augment": True}))
    assert from_prepared["augmentation"]["rand_augment"] == from_sources["augmentation"]["rand_augment"]
    assert torch.equal(from_prepared["augmentation"]["flips"], from_sources["augmentation"]["flips"])
    difference = (from_prepared["pixel_values"].int() - from_sources["pixel_values"].int()).abs().float()
    assert difference.mean() < 6  # re-encoding of tiny, sharp-edged clips


@pytest.fixture
def prepared(videos) -> list[bytes]:
    return [prepare_video(video, PrepareArguments(output_dir="unused", short_side=34))[0] for video in videos]


def levels(pixels: torch.Tensor) -> torch.Tensor:
    """Normalised pixels (mean and std 0.5) back in 8-bit levels."""
    return pixels * 127.5


@pytest.mark.parametrize("processing", [{}, {"sampling": "dense", "sampling_rate": 2, "num_temporal_views": 2}])
def test_prepared_videos_converted_on_the_device_take_the_same_draws_and_nearly_the_same_pixels(
    processor, prepared, processing
):
    """YUV planes finished on the device (`convert_on_device`) against the workers' crops: the same flips and
    operations; without RandAugment (whose thresholds turn a level into many), pixels at most a level or two apart
    (measured: mean 0.5, 99th percentile 1-2 levels; the largest gaps, up to 31 levels, lie on saturated colour edges
    of these tiny synthetic clips, which the workers clip to 8 bits before resizing)."""
    differences = []
    for epoch in range(3):
        in_workers = DeviceAugmentationCollator(processor, seed=3)
        on_device = DeviceAugmentationCollator(processor, seed=3, convert_on_device=True)
        in_workers.set_epoch(epoch)
        on_device.set_epoch(epoch)
        for rand_augment in (True, False):
            options = {"do_augment": True, "do_rand_augment": rand_augment, **processing}
            expected, batch = in_workers(rows(prepared, options)), on_device(rows(prepared, options))
            planes = batch["augmentation"]["planes"]
            assert "pixel_values" not in batch and planes["luma"].dtype == torch.uint8
            assert len(planes["luma"]) == len(expected["pixel_values"]) == len(batch["augmentation"]["flips"])
            assert batch["augmentation"]["rand_augment"] == expected["augmentation"]["rand_augment"]
            assert torch.equal(batch["augmentation"]["flips"], expected["augmentation"]["flips"])
            finished = ClipAugmentation(processor)(batch)
            assert finished["pixel_values"].shape == expected["pixel_values"].shape
            if not rand_augment:
                reference = ClipAugmentation(processor)(expected)["pixel_values"]
                differences.append(levels(finished["pixel_values"] - reference).abs().flatten())
    difference = torch.cat(differences)
    assert difference.mean() < 1
    assert difference.quantile(0.99) <= 2 + 1e-4


def test_a_batch_that_mixes_prepared_and_other_videos_is_converted_in_the_worker(
    processor, videos, prepared, tmp_path
):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    options = {"do_augment": True, "do_rand_augment": False}
    collator = DeviceAugmentationCollator(processor, seed=2, convert_on_device=True)
    mixed = collator(rows([videos[0], str(broken), prepared[2]], options))
    assert "planes" not in mixed["augmentation"] and mixed["pixel_values"].dtype == torch.uint8
    assert len(mixed["bad_videos"]) == 1 and mixed["pixel_values"].shape == (2, 4, 3, 24, 24)
    expected = DeviceAugmentationCollator(processor, seed=2)(rows([videos[0], str(broken), prepared[2]], options))
    assert torch.equal(mixed["pixel_values"][0], expected["pixel_values"][0])  # the source video: the same crops
    assert (mixed["pixel_values"][1].float() - expected["pixel_values"][1].float()).abs().mean() < 1
    only_prepared = collator(rows([prepared[0], str(broken), prepared[1]], options))
    assert len(only_prepared["augmentation"]["planes"]["luma"]) == 2 and len(only_prepared["bad_videos"]) == 1


def test_draws_match_torchvision_rand_augment_operation_by_operation():
    clip = torch.randint(0, 256, (4, 3, 20, 28), dtype=torch.uint8)
    transform = v2.RandAugment(num_ops=2, magnitude=12)
    augmentation = ClipAugmentation(XViTVideoProcessor(), mixing=None)
    augmentation.rand_augment = transform
    names = set()
    for seed in range(40):
        with seeded(seed):
            expected = transform(clip)
        with seeded(seed):
            operations = draw_rand_augment(transform, 20, 28)
        names.update(name for name, _ in operations)
        assert torch.equal(augmentation._rand_augment(clip[None].clone(), [operations])[0], expected)
    assert len(names) >= 10  # most of the 14 operations were exercised


def test_evaluation_batches_and_bad_videos(processor, videos, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    collator = DeviceAugmentationCollator(processor, seed=0)
    batch = collator(rows([videos[0], str(broken), videos[1]], {"do_augment": True}))
    assert len(batch["bad_videos"]) == 1 and "broken.mp4" in batch["bad_videos"][0]
    assert batch["pixel_values"].shape[0] == len(batch["augmentation"]["rand_augment"]) == 2
    evaluation = collator(rows(videos[:2], {}))
    assert "augmentation" not in evaluation and evaluation["pixel_values"].dtype == torch.float32
    expected = VideoClassificationCollator(processor)(rows(videos[:2], {}))
    assert torch.equal(ClipAugmentation(processor)(evaluation)["pixel_values"], expected["pixel_values"])
