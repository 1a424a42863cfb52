"""Shared fixtures: tiny XViT configurations (model tests) and small videos (processor tests)."""

from collections.abc import Callable

import pytest
import torch

from modeling_xvit import XViTConfig

TINY = dict(
    image_size=32,
    patch_size=16,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    num_frames=4,
    temporal_attention_num_heads=2,
    temporal_attention_intermediate_size=64,
    classifier_hidden_size=16,
    num_labels=3,
)


@pytest.fixture
def tiny_config() -> Callable[..., XViTConfig]:
    """A factory of tiny configurations: `tiny_config(num_frames=8, ...)` overrides the tiny defaults."""

    def make(**overrides) -> XViTConfig:
        return XViTConfig(**{**TINY, **overrides})

    return make


@pytest.fixture
def clip() -> Callable[..., torch.Tensor]:
    """A factory of random clips `(batch, frames, 3, size, size)` with a fixed seed."""

    def make(batch_size: int = 2, num_frames: int = 4, size: int = 32, seed: int = 0) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return torch.randn(batch_size, num_frames, 3, size, size, generator=generator)

    return make
