"""The training example's Trainer: multi-view testing, the loss against class indices or mixed targets, and the
bad-video stop rule."""

import pytest
import torch
import torch.nn.functional as F
from transformers import TrainingArguments
from transformers.modeling_outputs import ImageClassifierOutput

from modeling_xvit import XViTForVideoClassification, XViTVideoProcessor
from modeling_xvit.training.augment import ClipAugmentation, DeviceAugmentationCollator
from modeling_xvit.training.collator import VideoClassificationCollator
from modeling_xvit.training.prepare import PrepareArguments, prepare_video
from modeling_xvit.training.trainer import TooManyBadVideosError, VideoClassificationTrainer, video_classification_loss
from tests.training_videos import write_clip


@pytest.fixture(scope="module")
def trainer(tmp_path_factory, tiny_config) -> VideoClassificationTrainer:
    torch.manual_seed(0)
    processor = XViTVideoProcessor(size={"shortest_edge": 32}, crop_size=32, num_frames=4)
    arguments = TrainingArguments(output_dir=str(tmp_path_factory.mktemp("trainer")), use_cpu=True, report_to=[])
    return VideoClassificationTrainer(
        model=XViTForVideoClassification(tiny_config(num_labels=5)).eval(),
        args=arguments,
        processing_class=processor,
        data_collator=VideoClassificationCollator(processor),
        max_bad_video_fraction=0.01,
    )


def batch(pixel_values: torch.Tensor, labels: list[int], num_views: int) -> dict:
    return {
        "labels": torch.tensor(labels),
        "pixel_values": pixel_values,
        "sample_index": torch.tensor([7, 3, 9][: len(labels)]),
        "num_views": num_views,
        "num_videos": len(labels),
        "bad_videos": [],
    }


def test_multi_view_scores_are_the_mean_of_each_videos_view_probabilities(trainer, clip):
    pixel_values = clip(batch_size=3 * 6, num_frames=4)  # 3 videos x (2 temporal x 3 spatial) views
    loss, scores, label_ids = trainer.prediction_step(
        trainer.model, batch(pixel_values, [1, 4, 0], num_views=6), prediction_loss_only=False
    )
    with torch.no_grad():
        probabilities = trainer.model(pixel_values).logits.softmax(-1)
    for video in range(3):  # by hand: views 6v .. 6v+5 belong to video v
        expected = sum(probabilities[6 * video + view] for view in range(6)) / 6
        torch.testing.assert_close(scores[video], expected)
    assert label_ids.tolist() == [[1, 7], [4, 3], [0, 9]]
    torch.testing.assert_close(loss, -expected.new_tensor([scores[0, 1], scores[1, 4], scores[2, 0]]).log().mean())


def test_one_view_gives_logits_and_the_model_loss(trainer, clip):
    pixel_values = clip(batch_size=2, num_frames=4)
    loss, scores, label_ids = trainer.prediction_step(
        trainer.model, batch(pixel_values, [1, 2], num_views=1), prediction_loss_only=False
    )
    with torch.no_grad():
        logits = trainer.model(pixel_values).logits
    torch.testing.assert_close(scores, logits)
    torch.testing.assert_close(loss, F.cross_entropy(logits, torch.tensor([1, 2])))
    assert label_ids.tolist() == [[1, 7], [2, 3]]


def test_the_loss_against_indices_and_mixed_targets():
    logits = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 3, 1, 4])
    outputs = ImageClassifierOutput(logits=logits)
    one_hot = F.one_hot(labels, 5).float()
    expected = F.cross_entropy(logits, labels, label_smoothing=0.1)
    torch.testing.assert_close(video_classification_loss(outputs, labels, label_smoothing=0.1), expected)
    torch.testing.assert_close(video_classification_loss(outputs, one_hot, label_smoothing=0.1), expected)
    # Two batches of 4 accumulated: the Trainer counts 8 videos, or 8 x 5 entries of mixed targets.
    torch.testing.assert_close(
        video_classification_loss(outputs, labels, torch.tensor(8)), F.cross_entropy(logits, labels) / 2
    )
    torch.testing.assert_close(
        video_classification_loss(outputs, one_hot, torch.tensor(40)), F.cross_entropy(logits, labels) / 2
    )


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_the_loss_against_mixed_targets_is_the_smoothed_soft_target_cross_entropy(label_smoothing):
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 5, generator=generator)
    targets = torch.rand(4, 5, generator=generator).softmax(-1)  # MixUp-like targets: no one-hot row
    smoothed = targets * (1 - label_smoothing) + label_smoothing / 5
    by_hand = -(smoothed * logits.log_softmax(-1)).sum() / 4
    outputs = ImageClassifierOutput(logits=logits)
    loss = video_classification_loss(outputs, targets, label_smoothing=label_smoothing)
    torch.testing.assert_close(loss, by_hand)
    torch.testing.assert_close(
        video_classification_loss(outputs, targets, torch.tensor(40), label_smoothing=label_smoothing), by_hand / 2
    )


def test_a_stream_tolerates_an_early_bad_video_but_not_a_run_of_them(trainer):
    # No split size (a stream): the fraction is judged over at least 1 / 0.01 = 100 videos.
    def read(bad: int, total: int) -> None:
        inputs = batch(torch.empty(0), [], num_views=1)
        inputs.update(num_videos=total, bad_videos=[f"v{index}.mp4: unreadable" for index in range(bad)])
        trainer._count_videos("stream", inputs, split_size=None)

    read(bad=1, total=4)
    with pytest.raises(TooManyBadVideosError, match=r"2 of the 8 videos read from the stream split .*100 videos.*v0"):
        read(bad=1, total=4)


def test_a_stream_split_by_node_is_not_split_again_by_accelerate():
    from accelerate.data_loader import prepare_data_loader
    from torch.utils.data import DataLoader, IterableDataset

    from modeling_xvit.training.trainer import pass_whole_stream

    class OwnPart(IterableDataset):  # what this process reads of the stream after `split_dataset_by_node`
        def __iter__(self):
            yield from range(8)

    def prepared():
        loader = DataLoader(OwnPart(), batch_size=2, collate_fn=list)
        return prepare_data_loader(
            loader, num_processes=2, process_index=0, put_on_device=False, dispatch_batches=False
        )

    assert [item for batch in prepared() for item in batch] == [0, 1, 4, 5]  # accelerate keeps every 2nd batch
    assert [item for batch in pass_whole_stream(prepared()) for item in batch] == list(range(8))


def test_yuv_planes_are_finished_on_the_device_and_counted_as_the_crops_they_become(tiny_config, tmp_path):
    """A `convert_on_device` batch of prepared videos trains as the workers' crops do (its pixels a level or so apart),
    and the Trainer's FLOP count sees the crops, not the planes."""
    processor = XViTVideoProcessor(num_frames=4, crop_size={"height": 32, "width": 32}, scale_jitter=[36, 44])
    arguments = TrainingArguments(output_dir=str(tmp_path / "run"), use_cpu=True, report_to=[])
    videos = [write_clip(tmp_path / f"{index}.mp4", index % 3, index, width=56, height=48) for index in range(3)]
    prepared = [prepare_video(str(video), PrepareArguments(output_dir="unused", short_side=44))[0] for video in videos]
    rows = [
        {"video": video, "label": index, "sample_key": index, "processing": {"do_augment": True}}
        for index, video in enumerate(prepared)
    ]
    losses = []
    for convert_on_device in (False, True):
        torch.manual_seed(0)
        collator = DeviceAugmentationCollator(processor, seed=1, convert_on_device=convert_on_device)
        trainer = VideoClassificationTrainer(
            model=XViTForVideoClassification(tiny_config(num_labels=3)),
            args=arguments,
            processing_class=processor,
            data_collator=collator,
            clip_augmentation=ClipAugmentation(processor),
        )
        trainer.current_gradient_accumulation_steps = 1  # set by `train`'s loop
        batch = collator(rows)
        assert ("planes" in batch["augmentation"]) == convert_on_device
        parameters = trainer.model.num_parameters(exclude_embeddings=True)
        assert trainer.floating_point_ops(batch) == 6 * 3 * 4 * 3 * 32 * 32 * parameters
        losses.append(trainer.training_step(trainer.model, batch).item())
    assert losses[1] == pytest.approx(losses[0], abs=1e-3)
