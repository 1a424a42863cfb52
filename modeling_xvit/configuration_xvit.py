"""XViT model configuration."""

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers.configuration_utils import PreTrainedConfig


@strict
class XViTConfig(PreTrainedConfig):
    r"""
    Configuration of an XViT model ("Space-time Mixing Attention for Video Transformer", Bulat et al., NeurIPS 2021).
    The defaults are the released architecture: a ViT-B/16 backbone on 16 frames of 224 x 224 pixels, space-time
    mixing in all 12 layers, and a one-layer temporal-attention head.

    Args:
        image_size (`int`, *optional*, defaults to 224):
            Height and width of each frame.
        patch_size (`int`, *optional*, defaults to 16):
            Height and width of each patch.
        num_channels (`int`, *optional*, defaults to 3):
            Number of colour channels of each frame.
        num_frames (`int`, *optional*, defaults to 16):
            Number of frames in a clip.
        hidden_size (`int`, *optional*, defaults to 768):
            Width of the backbone (and of the temporal-attention head).
        num_hidden_layers (`int`, *optional*, defaults to 12):
            Number of backbone layers.
        num_attention_heads (`int`, *optional*, defaults to 12):
            Number of attention heads in each backbone layer.
        intermediate_size (`int`, *optional*, defaults to 3072):
            Width of the backbone MLPs.
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Activation of the MLPs (exact GELU in the original).
        hidden_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout after the embeddings, after attention and after the MLP.
        attention_probs_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout on the attention probabilities.
        drop_path_rate (`float`, *optional*, defaults to 0.0):
            Stochastic depth of the last backbone layer; it grows linearly from 0 in the first.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the truncated normal initialisation.
        layer_norm_eps (`float`, *optional*, defaults to 1e-6):
            Epsilon of the backbone layer norms.
        qkv_bias (`bool`, *optional*, defaults to `True`):
            Whether the backbone's query, key and value projections have a bias.
        space_time_mixing_layers (`list[int]`, *optional*):
            Backbone layers whose keys and values are mixed across neighbouring frames (the original's
            `XVIT.LOCATIONS_LIST`). Defaults to every layer; an empty list gives a per-frame ViT.
        space_time_mixing_fraction (`float`, *optional*, defaults to 0.125):
            Fraction of the key/value channels taken from frame t+1, and the same fraction again from frame t-1
            (the original's `1 / XVIT.SHIFT_DIV`). At most 0.5.
        space_time_mixing_segment_length (`int`, *optional*):
            Frames are mixed only inside segments of this many consecutive frames (the original's
            `XVIT.NUM_SEGMENTS`). Defaults to `num_frames`; must divide it.
        num_temporal_embeddings (`int`, *optional*):
            Number of learned temporal-embedding vectors; frame f receives vector `f mod num_temporal_embeddings`.
            Defaults to `num_frames`.
        summary_token_layers (`list[int]`, *optional*, defaults to `[]`):
            Backbone layers in which every frame also attends to one summary token per frame of the clip (the
            spatial average of that frame's keys and values; paper section 3). Empty disables the summary token.
        temporal_aggregation (`str`, *optional*, defaults to `"attention"`):
            How the per-frame CLS features become one video embedding: `"attention"` (the paper's temporal
            attention head, a small transformer with its own CLS token) or `"mean"` (temporal averaging).
        temporal_attention_num_layers (`int`, *optional*, defaults to 1):
            Depth of the temporal-attention head.
        temporal_attention_num_heads (`int`, *optional*, defaults to 12):
            Attention heads of the temporal-attention head.
        temporal_attention_intermediate_size (`int`, *optional*, defaults to 3072):
            MLP width of the temporal-attention head.
        temporal_attention_qkv_bias (`bool`, *optional*, defaults to `False`):
            Whether the temporal-attention head's query, key and value projections have a bias.
        temporal_attention_layer_norm_eps (`float`, *optional*, defaults to 1e-5):
            Epsilon of the temporal-attention head's layer norms.
        frame_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout on the per-frame CLS features before temporal aggregation (0.5 in the original recipe).
        classifier_hidden_size (`int`, *optional*, defaults to 768):
            Width of the classifier's hidden layer (LayerNorm -> Linear -> GELU -> Dropout -> Linear, the original's
            `TEMPORAL_HEAD.MLP_DIM`). `None` gives a single linear classifier.
        classifier_layer_norm_eps (`float`, *optional*, defaults to 1e-5):
            Epsilon of the classifier's layer norm.
        classifier_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout before the classifier's last linear layer.

    Example:

    ```python
    >>> from modeling_xvit import XViTConfig, XViTModel

    >>> configuration = XViTConfig()  # the released XViT-B/16, 16 frames
    >>> model = XViTModel(configuration)
    ```"""

    model_type = "xvit"

    image_size: int = 224
    patch_size: int = 16
    num_channels: int = 3
    num_frames: int = 16
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.0
    attention_probs_dropout_prob: float | int = 0.0
    drop_path_rate: float | int = 0.0
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True
    space_time_mixing_layers: list[int] | tuple[int, ...] | None = None
    space_time_mixing_fraction: float | int = 0.125
    space_time_mixing_segment_length: int | None = None
    num_temporal_embeddings: int | None = None
    summary_token_layers: list[int] | tuple[int, ...] = ()
    temporal_aggregation: Literal["attention", "mean"] = "attention"
    temporal_attention_num_layers: int = 1
    temporal_attention_num_heads: int = 12
    temporal_attention_intermediate_size: int = 3072
    temporal_attention_qkv_bias: bool = False
    temporal_attention_layer_norm_eps: float = 1e-5
    frame_dropout_prob: float | int = 0.0
    classifier_hidden_size: int | None = 768
    classifier_layer_norm_eps: float = 1e-5
    classifier_dropout_prob: float | int = 0.0

    def __post_init__(self, **kwargs):
        if self.space_time_mixing_layers is None:
            self.space_time_mixing_layers = list(range(self.num_hidden_layers))
        self.space_time_mixing_layers = sorted(self.space_time_mixing_layers)
        self.summary_token_layers = sorted(self.summary_token_layers)
        if self.space_time_mixing_segment_length is None:
            self.space_time_mixing_segment_length = self.num_frames
        if self.num_temporal_embeddings is None:
            self.num_temporal_embeddings = self.num_frames
        super().__post_init__(**kwargs)

    @property
    def num_patches(self) -> int:
        """Patches per frame."""
        return (self.image_size // self.patch_size) ** 2

    @property
    def space_time_mixing_channels(self) -> int:
        """Channels (counted across heads) taken from each neighbouring frame: the original's D // SHIFT_DIV."""
        return int(self.hidden_size * self.space_time_mixing_fraction + 1e-6)

    def validate_architecture(self):
        """Part of `@strict`-powered validation: invalid values fail at construction."""
        _check_divides("num_attention_heads", self.num_attention_heads, "hidden_size", self.hidden_size)
        if self.temporal_aggregation == "attention":
            _check_divides(
                "temporal_attention_num_heads", self.temporal_attention_num_heads, "hidden_size", self.hidden_size
            )
        if self.image_size % self.patch_size:
            raise ValueError(f"`patch_size` ({self.patch_size}) must divide `image_size` ({self.image_size}).")
        if not 0 <= self.space_time_mixing_fraction <= 0.5:
            raise ValueError(
                "`space_time_mixing_fraction` is the share of channels taken from each of frames t-1 and t+1, so"
                " the two together must not exceed 1: expected a value in [0, 0.5], got"
                f" {self.space_time_mixing_fraction}."
            )
        for name in ("num_frames", "space_time_mixing_segment_length", "num_temporal_embeddings"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be at least 1, got {getattr(self, name)}.")
        _check_divides(
            "space_time_mixing_segment_length", self.space_time_mixing_segment_length, "num_frames", self.num_frames
        )
        for name in ("space_time_mixing_layers", "summary_token_layers"):
            out_of_range = [i for i in getattr(self, name) if not 0 <= i < self.num_hidden_layers]
            if out_of_range:
                raise ValueError(
                    f"`{name}` holds layer indices {out_of_range} outside [0, {self.num_hidden_layers}) "
                    f"(num_hidden_layers={self.num_hidden_layers})."
                )


def _check_divides(divisor_name: str, divisor: int, dividend_name: str, dividend: int) -> None:
    if divisor < 1 or dividend % divisor:
        raise ValueError(f"`{divisor_name}` ({divisor}) must be a positive divisor of `{dividend_name}` ({dividend}).")


__all__ = ["XViTConfig"]
