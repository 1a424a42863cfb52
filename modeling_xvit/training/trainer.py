"""
The Trainer of the training example. What it adds to `transformers.Trainer` for video classification:

- unreadable videos, left out of their batch by the collator, are logged with their path, counted (`bad_videos` in
  the training logs, `eval_bad_videos` in the metrics) and stop the run once more than `max_bad_video_fraction` of
  the videos read are bad; a training batch whose videos are all unreadable makes a step with zero gradients, so the
  processes of a distributed run stay in step;
- the paper's multi-view testing: when a batch holds several views per video, their softmax scores are averaged per
  video (`XViTVideoProcessor.average_view_scores`) before the metrics;
- the loss against class indices or against MixUp / CutMix targets, with label smoothing;
- a streamed training split that is already split between processes (`split_dataset_by_node`) is not split again.

Predictions come with the sample index of each video (`label_ids` is `(videos, 2)`: class index, sample index), so
the prediction file names every video even when unreadable ones were left out.
"""

import logging
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from accelerate.data_loader import IterableDatasetShard
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import EvalLoopOutput, has_length

logger = logging.getLogger(__name__)


class TooManyBadVideosError(RuntimeError):
    """More of the videos read were unreadable than `--max_bad_video_fraction` allows."""


@dataclass
class VideoCount:
    """Videos read from one split and how many of them were unreadable, over all processes."""

    seen: int = 0
    bad: int = 0
    last_bad: str = ""


def video_classification_loss(outputs, labels: torch.Tensor, num_items_in_batch=None, label_smoothing: float = 0.0):
    """
    Cross-entropy of `outputs.logits` `(batch, num_labels)` against class indices `(batch,)` or against mixed targets
    `(batch, num_labels)` (MixUp / CutMix), with label smoothing. Normalised by the number of videos in the whole
    accumulated batch when the Trainer counts them (`num_items_in_batch`), else by this batch's.
    """
    logits = outputs["logits"].float()
    if num_items_in_batch is None:
        num_videos = labels.shape[0]
    elif labels.is_floating_point():  # the Trainer counts every entry of a (batch, num_labels) target as an item
        num_videos = num_items_in_batch / logits.shape[-1]
    else:
        num_videos = num_items_in_batch
    return F.cross_entropy(logits, labels, label_smoothing=label_smoothing, reduction="sum") / num_videos


def pass_whole_stream(dataloader):
    """Undo accelerate's split of an iterable dataset between processes (`IterableDatasetShard`, which keeps every
    n-th batch), for a stream that each process already reads only its own part of (`split_dataset_by_node`)."""
    if isinstance(dataloader.dataset, IterableDatasetShard):
        dataloader.dataset.num_processes, dataloader.dataset.process_index = 1, 0
    return dataloader


class CollatorEpochCallback(TrainerCallback):
    """Tells the collator which epoch starts: per-sample augmentation seeds derive from it."""

    def __init__(self, collator):
        self.collator = collator

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.collator.set_epoch(int(state.epoch or 0))


class VideoClassificationTrainer(Trainer):
    """`Trainer` with bad-video accounting, multi-view testing and mixed targets (see the module docstring)."""

    def __init__(self, *args, max_bad_video_fraction: float = 0.01, clip_augmentation=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_bad_video_fraction = max_bad_video_fraction
        self.clip_augmentation = clip_augmentation  # `augment.ClipAugmentation`: finishes batches on the device
        self.video_counts: dict[str, VideoCount] = {}
        self.add_callback(CollatorEpochCallback(self.data_collator))
        self._eval_split, self._eval_size = "eval", None

    def get_train_dataloader(self):
        dataloader = super().get_train_dataloader()
        return pass_whole_stream(dataloader) if getattr(self.train_dataset, "split_by_node", False) else dataloader

    def training_step(self, model, inputs: dict[str, Any], num_items_in_batch=None) -> torch.Tensor:
        self._count_videos("train", inputs, len(self.train_dataset) if has_length(self.train_dataset) else None)
        del inputs["sample_index"], inputs["num_views"]
        if len(inputs["labels"]) == 0:
            return self._zero_gradient_step(model)
        if "augmentation" in inputs:  # uint8 crops from `augment.DeviceAugmentationCollator`
            inputs = self.clip_augmentation(self._prepare_inputs(inputs))
            if inputs["labels"].is_floating_point() and num_items_in_batch is not None:
                # Mixed here, after the Trainer counted class indices; the loss counts a mixed target's entries.
                num_items_in_batch = num_items_in_batch * inputs["labels"].shape[-1]
        return super().training_step(model, inputs, num_items_in_batch)

    def floating_point_ops(self, inputs: dict[str, Any]) -> int:
        """The Trainer's estimate (6 x pixels x parameters); a batch of YUV planes counts the crops they become."""
        planes = inputs.get("augmentation", {}).get("planes")
        if planes is None:
            return super().floating_point_ops(inputs)
        clips, frames = planes["luma"].shape[:2]
        pixels = clips * frames * 3 * planes["rows"].shape[-1] * planes["columns"].shape[-1]
        return 6 * pixels * self.model.num_parameters(exclude_embeddings=True)

    def _zero_gradient_step(self, model) -> torch.Tensor:
        """Forward and backward on a blank clip with zero weight: every process takes part in the gradient exchange."""
        config = self.accelerator.unwrap_model(model).config
        shape = (1, config.num_frames, config.num_channels, config.image_size, config.image_size)
        model.train()
        with self.compute_loss_context_manager():
            loss = model(pixel_values=torch.zeros(shape, device=self.args.device)).logits.sum() * 0.0
        self.accelerator.backward(loss)
        return loss.detach()

    def evaluation_loop(
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ):
        self._eval_split = metric_key_prefix
        self._eval_size = len(dataloader.dataset) if has_length(dataloader.dataset) else None
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        count = self.video_counts.get(metric_key_prefix, VideoCount())
        return EvalLoopOutput(
            predictions=output.predictions,
            label_ids=output.label_ids,
            metrics={**output.metrics, f"{metric_key_prefix}_bad_videos": count.bad},
            num_samples=output.num_samples,
        )

    def prediction_step(self, model, inputs: dict[str, Any], prediction_loss_only: bool, ignore_keys=None):
        """Returns `(loss, scores, label_ids)`: scores are logits (one view) or averaged probabilities (several)."""
        self._count_videos(self._eval_split, inputs, self._eval_size)
        sample_index, num_views = inputs.pop("sample_index"), inputs.pop("num_views")
        labels = inputs["labels"]
        if len(labels) == 0:
            num_labels = self.accelerator.unwrap_model(model).config.num_labels
            return None, labels.new_empty(0, num_labels, dtype=torch.float), labels.new_empty(0, 2)
        if num_views == 1:
            loss, scores, _ = super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        else:
            model.eval()
            with torch.no_grad(), self.compute_loss_context_manager():
                logits = model(pixel_values=inputs["pixel_values"]).logits.float()
            scores = self.processing_class.average_view_scores(logits, num_views)
            loss = F.nll_loss(scores.clamp_min(torch.finfo(scores.dtype).tiny).log(), labels)
        if prediction_loss_only:
            return loss, None, None
        return loss, scores, torch.stack([labels, sample_index], dim=1)

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "loss" in logs and "train" in self.video_counts:
            logs["bad_videos"] = self.video_counts["train"].bad
        super().log(logs, *args, **kwargs)

    def _count_videos(self, split: str, inputs: dict[str, Any], split_size: int | None) -> None:
        """Add a batch's videos to the split's counts (summed over processes) and stop if too many were bad."""
        bad_videos = inputs.pop("bad_videos")
        for bad_video in bad_videos:
            logger.warning("Skipped an unreadable video (%s): %s", split, bad_video)
        counts = torch.tensor([inputs.pop("num_videos"), len(bad_videos)], device=self.args.device)
        if self.args.world_size > 1:
            counts = self.accelerator.reduce(counts, reduction="sum")
        count = self.video_counts.setdefault(split, VideoCount())
        count.seen, count.bad = count.seen + int(counts[0]), count.bad + int(counts[1])
        count.last_bad = bad_videos[-1] if bad_videos else count.last_bad
        # Judged over at least one pass over the split (or 1 / fraction videos for a stream), so that a bad video
        # among the first few does not end a run that the fraction allows.
        fraction = self.max_bad_video_fraction
        floor = split_size or (math.ceil(1 / fraction) if fraction > 0 else 0)
        if count.bad > fraction * max(count.seen, floor):
            raise TooManyBadVideosError(
                f"{count.bad} of the {count.seen} videos read from the {split} split are unreadable "
                f"({count.bad / count.seen:.1%}), more than --max_bad_video_fraction {fraction} allows (judged over "
                f"at least {floor} videos). Last unreadable video: {count.last_bad or 'read by another process'}"
            )
