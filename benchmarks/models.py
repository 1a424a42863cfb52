"""The benchmarked models (XViT, XViT without its temporal head, the identical-backbone control, and the peers) at one
shared size, and the loss of their training step."""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import TimesformerConfig, TimesformerModel, ViTConfig, ViTModel, VivitConfig, VivitModel

from benchmarks.presets import Preset
from modeling_xvit import XViTConfig, XViTModel

XVIT = "XViT"
XVIT_MEAN = "XViT, temporal mean"
XVIT_CONTROL = "XViT, no mixing, temporal mean"
VIT = "ViT (per frame)"
TIMESFORMER = "TimeSformer"
VIVIT = "ViViT (joint)"


def _shared_size(preset: Preset, num_frames: int) -> dict:
    """Hyper-parameters every family receives identically (the exact GELU and eps 1e-6 of the ViT-B/16 original)."""
    return {
        "image_size": preset.image_size,
        "patch_size": preset.patch_size,
        "hidden_size": preset.hidden_size,
        "num_hidden_layers": preset.num_hidden_layers,
        "num_attention_heads": preset.num_attention_heads,
        "intermediate_size": preset.intermediate_size,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-6,
        "qkv_bias": True,
        "num_frames": num_frames,
    }


class PerFrameViT(nn.Module):
    """`ViTModel` run on every frame of a clip as an independent image: the cost XViT claims to match."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.vit = ViTModel(config, add_pooling_layer=False)

    def forward(self, pixel_values: torch.Tensor):
        return self.vit(pixel_values.flatten(0, 1))


def _build_xvit(preset: Preset, num_frames: int, attention: str) -> nn.Module:
    # The released architecture: mixing in every layer and the one-layer temporal-attention head, sized to the preset.
    config = XViTConfig(
        **_shared_size(preset, num_frames),
        temporal_attention_num_heads=preset.num_attention_heads,
        temporal_attention_intermediate_size=preset.intermediate_size,
        attn_implementation=attention,
    )
    return XViTModel(config)


def _build_xvit_mean(preset: Preset, num_frames: int, attention: str) -> nn.Module:
    # Space-time mixing without the temporal-attention head: the backbone's own cost, next to the per-frame ViT.
    config = XViTConfig(**_shared_size(preset, num_frames), temporal_aggregation="mean", attn_implementation=attention)
    return XViTModel(config)


def _build_xvit_control(preset: Preset, num_frames: int, attention: str) -> nn.Module:
    # Neither space-time mixing nor the temporal-attention head: the per-frame ViT's computation in XViT's code. Its
    # time ratio to the per-frame ViT would be 1 on an ideal machine; its distance from 1 is the run's noise floor.
    config = XViTConfig(
        **_shared_size(preset, num_frames),
        space_time_mixing_layers=[],
        temporal_aggregation="mean",
        attn_implementation=attention,
    )
    return XViTModel(config)


def _build_vit(preset: Preset, num_frames: int, attention: str) -> nn.Module:
    size = _shared_size(preset, num_frames)
    del size["num_frames"]
    return PerFrameViT(ViTConfig(**size, attn_implementation=attention))


def _build_timesformer(preset: Preset, num_frames: int, attention: str) -> nn.Module:
    config = TimesformerConfig(**_shared_size(preset, num_frames), attention_type="divided_space_time")
    # TimeSformer has a single, hand-written attention: it takes no `attn_implementation`.
    if attention != "eager":
        raise ValueError(f"TimeSformer only has eager attention, {attention!r} was requested")
    return TimesformerModel(config)


def _build_vivit(preset: Preset, num_frames: int, attention: str) -> nn.Module:
    # Tubelets one frame deep give ViViT exactly the tokens of the others, so only the attention pattern differs.
    size = _shared_size(preset, num_frames)
    patch = size.pop("patch_size")
    config = VivitConfig(**size, tubelet_size=(1, patch, patch), attn_implementation=attention)
    return VivitModel(config, add_pooling_layer=False)


@dataclass(frozen=True)
class Family:
    name: str
    build: Callable[[Preset, int, str], nn.Module]
    # Attention implementations the family offers; the first is its default and gives the headline row.
    attentions: tuple[str, ...]
    # Number of keys each query attends to, as a function of (frames, patches per frame): sizes attention memory.
    keys_per_query: Callable[[int, int], int]


FAMILIES = {
    XVIT: Family(XVIT, _build_xvit, ("sdpa", "eager"), lambda frames, patches: patches + 1),
    XVIT_MEAN: Family(XVIT_MEAN, _build_xvit_mean, ("sdpa",), lambda frames, patches: patches + 1),
    XVIT_CONTROL: Family(XVIT_CONTROL, _build_xvit_control, ("sdpa",), lambda frames, patches: patches + 1),
    VIT: Family(VIT, _build_vit, ("sdpa", "eager"), lambda frames, patches: patches + 1),
    TIMESFORMER: Family(TIMESFORMER, _build_timesformer, ("eager",), lambda frames, patches: patches + 1 + frames),
    VIVIT: Family(VIVIT, _build_vivit, ("sdpa", "eager"), lambda frames, patches: frames * patches + 1),
}
# The frame-scaling sweep compares the released XViT with the three peers.
SCALING_FAMILIES = (XVIT, VIT, TIMESFORMER, VIVIT)


def eager_attention_bytes(preset: Preset, family: Family, num_frames: int, element_size: int) -> int:
    """Upper bound of the score-matrix memory of a training step with eager attention: the scores and probabilities
    of every layer are kept for the backward pass."""
    patches = (preset.image_size // preset.patch_size) ** 2
    queries = preset.batch_size * num_frames * patches  # all families process about frames x patches queries
    per_layer = queries * preset.num_attention_heads * family.keys_per_query(num_frames, patches) * element_size
    return per_layer * 2 * preset.num_hidden_layers


def training_loss(outputs) -> torch.Tensor:
    """A loss touching every output, so the backward pass runs through the whole model (XViT's head included)."""
    loss = outputs.last_hidden_state.float().square().mean()
    if getattr(outputs, "pooler_output", None) is not None:
        loss = loss + outputs.pooler_output.float().square().mean()
    return loss
