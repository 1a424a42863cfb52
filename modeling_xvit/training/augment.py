"""
Training augmentation on the device the model trains on. The DataLoader workers only decode, resize and crop
(`DeviceAugmentationCollator`: uint8 clips, prepared videos or not); the flip, RandAugment, normalisation and
MixUp / CutMix run batched on the model's device (`ClipAugmentation`, called by the trainer on each batch).

The workers still draw every random choice, in the order and from the seeds of the per-clip path
(`VideoClassificationCollator` with the processor's augmentation): the scale, the frame indices and the crop
(`shards.training_clip`), then the flip and RandAugment's operations and signs (`draw_rand_augment`), which travel
with the batch; the mixing seed too. So on fixed seeds a clip gets the same operations as in the per-clip path, and
the same pixels: the operations are torchvision's, applied to the uint8 clips in the same order, one call per group
of clips that drew the same operation (RandAugment's magnitude is fixed; only the operation and the sign vary).

On an accelerator, the workers hand prepared videos over earlier still: decoded YUV planes, whose colour conversion,
resize and crop run on the device too (`convert_on_device`; the crops are within a level or so of the workers', see
`shards.planes_to_crops`). Decoding is then nearly all that is left to the workers.
"""

import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from modeling_xvit.training.collator import VideoClassificationCollator, sample_seed, seeded
from modeling_xvit.training.shards import planes_to_crops, training_clip


def rand_augment(num_ops: int, magnitude: int) -> v2.RandAugment:
    return v2.RandAugment(num_ops=num_ops, magnitude=magnitude)


def draw_rand_augment(transform: v2.RandAugment, height: int, width: int) -> list[tuple[str, float]]:
    """The operations and signed magnitudes that `transform` would apply to one `height x width` clip, drawn from
    torch's generator exactly as its `forward` draws them (an operation, then a sign when the operation has one)."""
    operations = []
    for _ in range(transform.num_ops):
        name, (magnitudes_of, signed) = transform._get_random_item(transform._AUGMENTATION_SPACE)
        magnitudes = magnitudes_of(transform.num_magnitude_bins, height, width)
        value = 0.0
        if magnitudes is not None:
            value = float(magnitudes[transform.magnitude])
            if signed and torch.rand(()) <= 0.5:
                value = -value
        operations.append((name, value))
    return operations


class _CropMaker:
    """Stands in for the processor in `VideoClassificationCollator`: training rows become uint8 crops (or, with
    `planes`, a prepared video's YUV planes, see `shards.training_clip`) and their drawn flips and RandAugment
    operations (kept in `drawn`, one entry per clip that was made); other rows go to the processor."""

    def __init__(self, processor, planes: bool):
        self.processor = processor
        self.planes = planes
        self.drawn: list[tuple[bool, list[tuple[str, float]]]] = []

    def __call__(self, video, return_tensors: str = "pt", **processing):
        if not processing.get("do_augment"):
            return self.processor(video, return_tensors=return_tensors, **processing)
        clips = training_clip(self.processor, video, planes=self.planes, **processing)
        if isinstance(clips, dict):  # a prepared video's YUV planes
            num_views, crop_size = len(clips["luma"]), (clips["rows"].shape[-1], clips["columns"].shape[-1])
        else:
            num_views, crop_size = len(clips), clips.shape[-2:]
        do_flip = processing.get("do_flip", self.processor.do_flip)
        do_rand_augment = processing.get("do_rand_augment", self.processor.do_rand_augment)
        transform = rand_augment(
            processing.get("rand_augment_num_ops", self.processor.rand_augment_num_ops),
            processing.get("rand_augment_magnitude", self.processor.rand_augment_magnitude),
        )
        drawn = []
        for _ in range(num_views):  # per view, in the per-clip path's order: flip, then RandAugment
            flip = bool(do_flip) and random.random() < 0.5
            drawn.append((flip, draw_rand_augment(transform, *crop_size) if do_rand_augment else []))
        self.drawn.extend(drawn)
        return _Pixels(clips)


class _Pixels:
    def __init__(self, pixel_values: torch.Tensor | dict[str, torch.Tensor]):
        self.pixel_values = pixel_values


class DeviceAugmentationCollator(VideoClassificationCollator):
    """
    `VideoClassificationCollator` whose training batches hold uint8 crops `(clips, frames, 3, H, W)` and an
    `augmentation` entry (flips, RandAugment operations per clip, the mixing seed) for `ClipAugmentation`, which
    finishes them on the model's device. Evaluation batches are the processor's, as before.

    With `convert_on_device` (for accelerators: the training script sets it unless it trains on the CPU), prepared
    videos are handed over before colour conversion and resize: `augmentation["planes"]` holds their YUV planes and
    resize taps (`shards.training_clip`, regions padded to one size) instead of `pixel_values`, and
    `ClipAugmentation` makes the crops (`shards.planes_to_crops`, within a level or so of the workers' crops). A batch
    that mixes prepared and other videos is converted in the worker.
    """

    def __init__(self, processor, seed: int = 0, mix: bool = False, convert_on_device: bool = False):
        super().__init__(_CropMaker(processor, planes=convert_on_device), seed=seed, mixing=None)
        self.mix = mix

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        self.processor.drawn = []
        batch = super().__call__(items)
        if items[0]["processing"].get("do_augment"):
            keys = batch["sample_index"].tolist()
            flips, operations = zip(*self.processor.drawn, strict=True) if self.processor.drawn else ((), ())
            batch["augmentation"] = {
                "flips": torch.tensor(flips, dtype=torch.bool),
                "rand_augment": list(operations),
                "mixing_seed": sample_seed(self.seed, int(self.epoch), ("mixing", *keys)) if self.mix else None,
            }
            if "planes" in batch:
                batch["augmentation"]["planes"] = batch.pop("planes")
        return batch

    def collate_clips(self, clips: list[torch.Tensor | dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        if clips and all(isinstance(clip, dict) for clip in clips):
            return {"planes": _stack_planes(clips)}
        return super().collate_clips([planes_to_crops(**clip) if isinstance(clip, dict) else clip for clip in clips])


def _stack_planes(clips: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """`training_clip`'s YUV planes stacked on their first dimension, the regions padded (at the bottom and right,
    which no tap reads) to the largest."""
    height = max(clip["luma"].shape[-2] for clip in clips)
    width = max(clip["luma"].shape[-1] for clip in clips)
    num_views, num_frames = sum(len(clip["luma"]) for clip in clips), clips[0]["luma"].shape[1]
    luma = torch.zeros(num_views, num_frames, height, width, dtype=torch.uint8)
    chroma = torch.zeros(num_views, num_frames, 2, height // 2, width // 2, dtype=torch.uint8)
    start = 0
    for clip in clips:
        end, (clip_height, clip_width) = start + len(clip["luma"]), clip["luma"].shape[-2:]
        luma[start:end, :, :clip_height, :clip_width] = clip["luma"]
        chroma[start:end, ..., : clip_height // 2, : clip_width // 2] = clip["chroma"]
        start = end
    taps = ("rows", "row_weights", "columns", "column_weights")
    return {"luma": luma, "chroma": chroma, **{name: torch.cat([clip[name] for clip in clips]) for name in taps}}


class ClipAugmentation(torch.nn.Module):
    """
    Finishes a `DeviceAugmentationCollator` training batch where its tensors are (the model's device): the crops of
    prepared videos' YUV planes when the batch holds them, flips, RandAugment (grouped by operation), the processor's
    rescale and normalisation, then `mixing` (MixUp / CutMix, `collator.clip_mixing`) from the batch's mixing seed.
    Batches without `augmentation` pass unchanged.
    """

    def __init__(self, processor, mixing: v2.Transform | None = None):
        super().__init__()
        self.processor = processor
        self.mixing = mixing
        # Applies the drawn operations (their magnitudes travel with the batch), with torchvision's interpolation.
        self.rand_augment = v2.RandAugment()

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        augmentation = batch.pop("augmentation", None)
        if augmentation is None:
            return batch
        planes = augmentation.get("planes")
        pixels = planes_to_crops(**planes) if planes is not None else batch["pixel_values"]
        if pixels.numel():
            flips = augmentation["flips"].to(pixels.device).view(-1, *[1] * (pixels.ndim - 1))
            pixels = torch.where(flips, pixels.flip(-1), pixels)
            pixels = self._rand_augment(pixels, augmentation["rand_augment"])
            processor = self.processor
            pixels = processor.rescale_and_normalize(
                pixels,
                processor.do_rescale,
                processor.rescale_factor,
                processor.do_normalize,
                processor.image_mean,
                processor.image_std,
            )
            if self.mixing is not None and augmentation["mixing_seed"] is not None:
                with seeded(augmentation["mixing_seed"]):
                    mixed, batch["labels"] = self.mixing(tv_tensors.Video(pixels), batch["labels"])
                pixels = mixed.as_subclass(torch.Tensor)
        batch["pixel_values"] = pixels
        return batch

    def _rand_augment(self, pixels: torch.Tensor, operations: Sequence[Sequence[tuple[str, float]]]) -> torch.Tensor:
        """Each clip's operations in order; clips that drew the same operation at a step go through it together.
        `pixels` is changed in place (it is the flip's new tensor)."""
        for step in range(max((len(clip) for clip in operations), default=0)):
            groups = defaultdict(list)
            for clip, clip_operations in enumerate(operations):
                if step < len(clip_operations):
                    groups[tuple(clip_operations[step])].append(clip)
            for (name, magnitude), clips in groups.items():
                index = torch.tensor(clips, device=pixels.device)
                pixels[index] = self.rand_augment._apply_image_or_video_transform(
                    pixels[index],
                    name,
                    magnitude,
                    interpolation=self.rand_augment.interpolation,
                    fill=self.rand_augment._fill,
                )
        return pixels


__all__ = ["ClipAugmentation", "DeviceAugmentationCollator", "draw_rand_augment"]
