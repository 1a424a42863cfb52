"""
Batches of the training example, made in the DataLoader workers: the XViT video processor decodes each video and makes
its clips (training augmentation or the test views, as its row asks), unreadable videos are left out of the batch and
reported with the reason, and training batches can be mixed with torchvision's MixUp and CutMix.

Randomness is drawn per sample from (seed, epoch, sample key), with the process's own random state set aside: a
sample gets the same clip whichever worker or process decodes it and wherever an interrupted run resumes, and the
Trainer's random state (dropout, ...) is left untouched when decoding runs in the main process.
"""

import hashlib
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from modeling_xvit.video_decoding import video_name

# What reading a broken, truncated or missing video raises (the processor names the file and the reason).
VIDEO_READ_ERRORS = (ValueError, OSError, RuntimeError)


def sample_seed(seed: int, epoch: int, key: object) -> int:
    """A 63-bit seed that depends only on the run's seed, the epoch and the sample (or batch) key."""
    digest = hashlib.blake2b(f"{seed}:{epoch}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed `random` and torch's CPU generator for the block, then restore the states they had."""
    python_state = random.getstate()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        torch.default_generator.manual_seed(seed)  # not torch.manual_seed: it queues CUDA seeding, slowly
        try:
            yield
        finally:
            random.setstate(python_state)


def clip_mixing(num_labels: int, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0) -> v2.Transform | None:
    """MixUp and/or CutMix of a batch (one of the two at random when both are on), or None."""
    transforms = []
    if mixup_alpha > 0:
        transforms.append(v2.MixUp(alpha=mixup_alpha, num_classes=num_labels))
    if cutmix_alpha > 0:
        transforms.append(v2.CutMix(alpha=cutmix_alpha, num_classes=num_labels))
    if not transforms:
        return None
    return transforms[0] if len(transforms) == 1 else v2.RandomChoice(transforms)


class VideoClassificationCollator:
    """
    Turns rows `{"video", "label", "sample_key", "processing"}` (see `data.VideoRows`) into a batch:

    - `labels`: `(videos,)` class indices, or `(videos, num_labels)` mixed targets when `mixing` is on (training);
    - `pixel_values`: `(videos * views, num_frames, 3, height, width)`, views of a video consecutive;
    - `sample_index`: `(videos,)` sample keys (row indices of a prepared split), to name the predictions;
    - `num_views`, `num_videos` (rows asked for, readable or not) and `bad_videos` (`"path: reason"` of each
      unreadable one), which `VideoClassificationTrainer` removes before the model sees the batch.

    The epoch that the seeds derive from lives in shared memory, so persistent DataLoader workers see `set_epoch`.
    """

    def __init__(self, processor, seed: int = 0, mixing: v2.Transform | None = None):
        self.processor = processor
        self.seed = seed
        self.mixing = mixing
        self.epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def set_epoch(self, epoch: int) -> None:
        self.epoch.fill_(epoch)

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        epoch = int(self.epoch)
        clips, labels, keys, bad_videos = [], [], [], []
        for item in items:
            try:
                with seeded(sample_seed(self.seed, epoch, item["sample_key"])):
                    clips.append(self.processor(item["video"], return_tensors="pt", **item["processing"]).pixel_values)
            except VIDEO_READ_ERRORS as error:
                bad_videos.append(f"{video_name(item['video'])}: {error}")
                continue
            labels.append(item["label"])
            keys.append(item["sample_key"])
        processing = items[0]["processing"]
        batch = {
            "labels": torch.tensor(labels, dtype=torch.long),
            **self.collate_clips(clips),
            "sample_index": torch.tensor(keys, dtype=torch.long),
            "num_views": processing.get("num_temporal_views", 1) * processing.get("num_spatial_crops", 1),
            "num_videos": len(items),
            "bad_videos": bad_videos,
        }
        if self.mixing is not None and processing.get("do_augment") and clips:
            with seeded(sample_seed(self.seed, epoch, ("mixing", *keys))):
                mixed, batch["labels"] = self.mixing(tv_tensors.Video(batch["pixel_values"]), batch["labels"])
            batch["pixel_values"] = mixed.as_subclass(torch.Tensor)
        return batch

    def collate_clips(self, clips: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """The batch's pixels from the readable videos' clips `(views, frames, 3, height, width)`."""
        return {"pixel_values": torch.cat(clips) if clips else torch.empty(0)}
