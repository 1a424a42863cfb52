"""The original XViT forward pass, re-implemented from its description for checking conversions.

It runs on the original checkpoint's state dict (keys `base_model.*` and `consensus.*`, fused qkv) and the original
input layout (batch, channels, frames, height, width), written as plain tensor operations. It shares no code with
`modeling_xvit`, so agreement between the two is evidence that the port and the converter are right.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

BACKBONE_LAYER_NORM_EPS = 1e-6
# torch.nn.LayerNorm's default, which the original temporal head and classifier use.
HEAD_LAYER_NORM_EPS = 1e-5


@dataclass(frozen=True)
class OriginalXViTArchitecture:
    """The numbers the tensors of an original checkpoint do not carry."""

    num_attention_heads: int
    temporal_num_attention_heads: int
    num_segments: int  # XVIT.NUM_SEGMENTS: frames are mixed only inside segments of this many frames
    shift_div: int  # XVIT.SHIFT_DIV: D // shift_div channels come from each neighbouring frame
    locations: tuple[int, ...]  # XVIT.LOCATIONS_LIST: blocks whose keys and values are mixed


def shift_over_time(x: torch.Tensor, num_segments: int, fold: int) -> torch.Tensor:
    """Space-time mixing of keys or values of shape (batch * frames, heads, tokens, head_dim).

    Channels are counted across heads. Inside each segment, frame t takes channels [0, fold) from frame t + 1 and
    channels [fold, 2 * fold) from frame t - 1; a neighbour outside the segment contributes zeros.
    """
    batch_frames, heads, tokens, head_dim = x.shape
    x = x.permute(0, 2, 1, 3).reshape(batch_frames // num_segments, num_segments, tokens, heads * head_dim)
    zeros = x.new_zeros(x.shape[0], 1, tokens, fold)
    from_next_frame = torch.cat([x[:, 1:, :, :fold], zeros], dim=1)
    from_previous_frame = torch.cat([zeros, x[:, :-1, :, fold : 2 * fold]], dim=1)
    mixed = torch.cat([from_next_frame, from_previous_frame, x[..., 2 * fold :]], dim=-1)
    return mixed.reshape(batch_frames, tokens, heads, head_dim).permute(0, 2, 1, 3)


def _layer_norm(x: torch.Tensor, state_dict: Mapping[str, torch.Tensor], prefix: str, eps: float) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], state_dict[f"{prefix}.weight"], state_dict[f"{prefix}.bias"], eps)


def _linear(x: torch.Tensor, state_dict: Mapping[str, torch.Tensor], prefix: str) -> torch.Tensor:
    return F.linear(x, state_dict[f"{prefix}.weight"], state_dict.get(f"{prefix}.bias"))


def transformer_block(
    x: torch.Tensor,
    state_dict: Mapping[str, torch.Tensor],
    prefix: str,
    num_heads: int,
    eps: float,
    mixing: tuple[int, int] | None = None,
) -> torch.Tensor:
    """A pre-norm timm-style block; `mixing` = (num_segments, fold) mixes its keys and values over time."""
    batch, tokens, dim = x.shape
    head_dim = dim // num_heads
    hidden = _layer_norm(x, state_dict, f"{prefix}.norm1", eps)
    qkv = _linear(hidden, state_dict, f"{prefix}.attn.qkv").reshape(batch, tokens, 3, num_heads, head_dim)
    query, key, value = qkv.permute(2, 0, 3, 1, 4)
    if mixing is not None:
        key = shift_over_time(key, *mixing)
        value = shift_over_time(value, *mixing)
    weights = ((query @ key.transpose(-2, -1)) * head_dim**-0.5).softmax(dim=-1)
    attended = (weights @ value).transpose(1, 2).reshape(batch, tokens, dim)
    x = x + _linear(attended, state_dict, f"{prefix}.attn.proj")
    hidden = _layer_norm(x, state_dict, f"{prefix}.norm2", eps)
    hidden = _linear(F.gelu(_linear(hidden, state_dict, f"{prefix}.mlp.fc1")), state_dict, f"{prefix}.mlp.fc2")
    return x + hidden


def _count_blocks(state_dict: Mapping[str, torch.Tensor], prefix: str) -> int:
    return len({key[len(prefix) :].split(".")[0] for key in state_dict if key.startswith(prefix)})


@torch.no_grad()
def original_xvit_forward(
    state_dict: Mapping[str, torch.Tensor], architecture: OriginalXViTArchitecture, video: torch.Tensor
) -> torch.Tensor:
    """Logits of the original XViT with a temporal-attention head for `video` of shape (B, C, F, H, W)."""
    batch, channels, frames, height, width = video.shape
    images = video.transpose(1, 2).reshape(batch * frames, channels, height, width)

    # 1. Every frame is an image: patch embedding, CLS token, spatial position embedding.
    projection = state_dict["base_model.patch_embed.proj.weight"]
    patch = projection.shape[-1]
    x = F.conv2d(images, projection, state_dict["base_model.patch_embed.proj.bias"], stride=patch)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([state_dict["base_model.cls_token"].expand(batch * frames, -1, -1), x], dim=1)
    position_embedding = state_dict["base_model.pos_embed"]
    if position_embedding.shape[1] != x.shape[1]:
        raise ValueError(
            f"Frames of {height}x{width} pixels give {x.shape[1]} tokens but base_model.pos_embed has"
            f" {position_embedding.shape[1]}; the reference runs at the checkpoint's own resolution."
        )
    x = x + position_embedding

    # 2. Temporal embedding: consecutive groups of T_emb frames get vectors 0 .. T_emb - 1.
    temporal_embedding = state_dict["base_model.temp_embed"]
    tokens, dim = x.shape[1:]
    x = x.view(-1, temporal_embedding.shape[1], tokens, dim) + temporal_embedding
    x = x.view(batch * frames, tokens, dim)

    # 3. Blocks, with space-time mixing of keys and values in the listed ones.
    fold = dim // architecture.shift_div
    for index in range(_count_blocks(state_dict, "base_model.blocks.")):
        mixing = (architecture.num_segments, fold) if index in architecture.locations else None
        x = transformer_block(
            x,
            state_dict,
            f"base_model.blocks.{index}",
            architecture.num_attention_heads,
            BACKBONE_LAYER_NORM_EPS,
            mixing,
        )

    # 4. Final norm; each frame's CLS token is that frame's feature.
    frame_features = _layer_norm(x, state_dict, "base_model.norm", BACKBONE_LAYER_NORM_EPS)[:, 0].view(
        batch, frames, dim
    )

    # 5. Temporal-attention head: its own CLS token, transformer blocks over the frames, then the MLP classifier.
    x = torch.cat([state_dict["consensus.cls_token"].expand(batch, -1, -1), frame_features], dim=1)
    for index in range(_count_blocks(state_dict, "consensus.temporal_encoder.")):
        x = transformer_block(
            x,
            state_dict,
            f"consensus.temporal_encoder.{index}",
            architecture.temporal_num_attention_heads,
            HEAD_LAYER_NORM_EPS,
        )
    x = _layer_norm(x[:, 0], state_dict, "consensus.mlp_head.0", HEAD_LAYER_NORM_EPS)
    x = F.gelu(_linear(x, state_dict, "consensus.mlp_head.1"))
    return _linear(x, state_dict, "consensus.mlp_head.4")
