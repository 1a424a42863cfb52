"""PyTorch XViT model: "Space-time Mixing Attention for Video Transformer" (Bulat et al., NeurIPS 2021).

XViT is an image ViT applied to every frame of a clip, with one change inside attention: the keys and values of each
frame borrow a slice of their channels from the neighbouring frames (space-time mixing), so that attention over one
frame's tokens also sees its neighbours, at exactly the cost of a per-frame ViT. A small transformer over the per-frame
CLS features (temporal attention) turns them into one video embedding. Optional summary tokens give every frame a
compact view of all frames of the clip.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import ImageClassifierOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel
from transformers.processing_utils import Unpack
from transformers.utils import ModelOutput, TransformersKwargs, can_return_tuple, logging, torch_int
from transformers.utils.output_capturing import capture_outputs

from .configuration_xvit import XViTConfig

logger = logging.get_logger(__name__)


@dataclass
class XViTModelOutput(ModelOutput):
    r"""
    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_frames * (num_patches + 1), hidden_size)`):
        Final-layer-norm output of every token, frame-major: frame 0's CLS token and patches, then frame 1's, ...
    pooler_output (`torch.FloatTensor` of shape `(batch_size, hidden_size)`):
        The video embedding: the temporal aggregation of the per-frame CLS features.
    frame_features (`torch.FloatTensor` of shape `(batch_size, num_frames, hidden_size)`):
        The per-frame CLS features that the temporal aggregation consumes.
    hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
        The embedding output and the output of every backbone layer (before the final layer norm), each shaped like
        `last_hidden_state`. They are the tensors the forward pass goes on with: gradients reach them.
    attentions (`tuple(torch.FloatTensor)`, *optional*, returned when `output_attentions=True`):
        Attention probabilities of every backbone layer, each of shape
        `(batch_size, num_frames, num_heads, num_patches + 1, num_keys)`, where `num_keys` is `num_patches + 1`, plus
        `num_frames` in layers with summary tokens (the summary tokens come last). Gradients reach them too.
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    frame_features: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


def shift_channels_in_time_(
    states: torch.Tensor, segment_length: int, num_channels: int, reverse: bool = False
) -> torch.Tensor:
    """
    In place: inside each segment of `segment_length` consecutive frames, frame t takes channels `[0, num_channels)`
    from frame t+1 and channels `[num_channels, 2 * num_channels)` from frame t-1 (with `reverse`, the other way round:
    the first slice from t-1 and the second from t+1); the other channels stay. A neighbour outside the segment gives
    zeros. Only the borrowed channels move: they are copied out once and written back shifted. `states` must be
    contiguous.
    """
    batch_size, num_frames, num_tokens, hidden_size = states.shape
    segments = states.view(-1, segment_length, num_tokens, hidden_size)
    first, second = slice(0, num_channels), slice(num_channels, 2 * num_channels)
    from_next, from_previous = (second, first) if reverse else (first, second)
    borrowed = segments[..., : 2 * num_channels].clone()
    segments[:, :-1, :, from_next] = borrowed[:, 1:, :, from_next]
    segments[:, -1, :, from_next] = 0
    segments[:, 1:, :, from_previous] = borrowed[:, :-1, :, from_previous]
    segments[:, 0, :, from_previous] = 0
    return states


def shift_channels_in_time(states: torch.Tensor, segment_length: int, num_channels: int) -> torch.Tensor:
    """
    Out of place: the result of `shift_channels_in_time_(states.clone(), segment_length, num_channels)` in a new
    tensor built from slices, for tracing. The legacy ONNX exporter (`torch.onnx.export(..., dynamo=False)`, which
    traces the model) drops the in-place writes into the keys and values: its graph had no space-time mixing.
    """
    segments = states.unflatten(1, (-1, segment_length))  # (batch, segments, frames, tokens, hidden)
    # `pad` lists (before, after) pairs from the last dimension: (channels, tokens, frames).
    from_next = nn.functional.pad(segments[:, :, 1:, :, :num_channels], (0, 0, 0, 0, 0, 1))
    from_previous = nn.functional.pad(segments[:, :, :-1, :, num_channels : 2 * num_channels], (0, 0, 0, 0, 1, 0))
    return torch.cat((from_next, from_previous, segments[..., 2 * num_channels :]), dim=-1).flatten(1, 2)


class SpaceTimeMixingFunction(torch.autograd.Function):
    """Space-time mixing under autograd, with its own backward: the gradient of a shift in time is the opposite shift,
    which costs one copy instead of autograd's zero-filled tensor per slice."""

    @staticmethod
    def forward(ctx, states: torch.Tensor, segment_length: int, num_channels: int) -> torch.Tensor:
        ctx.segment_length, ctx.num_channels = segment_length, num_channels
        # A copy is mixed, not the projection itself: the projection's output is a view of its matmul, and writing a
        # view in place would make autograd copy the whole gradient back through the view in the backward pass.
        mixed = states.clone(memory_format=torch.contiguous_format)
        return shift_channels_in_time_(mixed, segment_length, num_channels)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        grad = grad_output.clone(memory_format=torch.contiguous_format)
        return shift_channels_in_time_(grad, ctx.segment_length, ctx.num_channels, reverse=True), None, None


def space_time_mixing(states: torch.Tensor, segment_length: int, num_channels: int) -> torch.Tensor:
    """
    Mix keys or values across neighbouring frames (the paper's space-time mixing).

    Inside each segment of `segment_length` consecutive frames, frame t takes channels `[0, num_channels)` from frame
    t+1 and channels `[num_channels, 2 * num_channels)` from frame t-1; the other channels stay. Where the neighbour
    falls outside the segment the borrowed channels are zero. Channels are counted across heads.

    When autograd is not recording (inference), `states` itself is mixed in place and returned: the keys and values
    are fresh projections that nothing else holds, and moving only the borrowed channels spares a new tensor per layer.
    Under autograd, a mixed copy is returned and `states` is left as it was; so it is while tracing (`torch.jit`,
    the legacy ONNX exporter), which drops the in-place writes (`shift_channels_in_time`).

    Args:
        states (`torch.Tensor` of shape `(batch_size, num_frames, num_tokens, hidden_size)`): keys or values.
        segment_length (`int`): frames per segment; divides `num_frames`.
        num_channels (`int`): channels borrowed from each neighbour.

    Returns:
        `torch.Tensor` of the same shape.
    """
    if num_channels == 0:
        return states
    if torch.jit.is_tracing():
        return shift_channels_in_time(states, segment_length, num_channels)
    if torch.is_grad_enabled() and states.requires_grad:
        return SpaceTimeMixingFunction.apply(states, segment_length, num_channels)
    return shift_channels_in_time_(states.contiguous(), segment_length, num_channels)


def summary_tokens(states: torch.Tensor) -> torch.Tensor:
    """
    One summary token per frame: the spatial average of the frame's patch tokens (R = 1 in the paper), handed to every
    frame of the clip so that each query also attends to a compact view of all frames.

    Args:
        states (`torch.Tensor` of shape `(batch_size, num_frames, num_patches + 1, hidden_size)`): keys or values.

    Returns:
        `torch.Tensor` of shape `(batch_size, num_frames, num_frames, hidden_size)`: for each frame, the summary
        tokens of all frames.
    """
    num_frames = states.shape[1]
    per_frame = states[:, :, 1:].mean(dim=2)
    return per_frame.unsqueeze(1).expand(-1, num_frames, -1, -1)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs: Unpack[TransformersKwargs],
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Softmax attention on inputs `(..., heads, tokens, head_dim)` with any leading dimensions; returns the output
    `(..., tokens, heads, head_dim)` and the attention probabilities `(..., heads, tokens, keys)`.
    """
    attn_weights = torch.matmul(query, key.transpose(-2, -1)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(-3, -2).contiguous()
    return attn_output, attn_weights


class XViTPatchEmbeddings(nn.Module):
    """Turns each frame `(num_channels, height, width)` into `(num_patches, hidden_size)` patch embeddings."""

    def __init__(self, config: XViTConfig):
        super().__init__()
        self.projection = nn.Conv2d(
            config.num_channels, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.projection(frames).flatten(2).transpose(1, 2)


class XViTEmbeddings(nn.Module):
    """
    Per-frame patch embeddings with a CLS token per frame, the spatial position embedding, and the temporal embedding
    (frame f receives temporal embedding `f mod num_temporal_embeddings`, as in the original).
    """

    def __init__(self, config: XViTConfig):
        super().__init__()
        self.config = config
        self.patch_embeddings = XViTPatchEmbeddings(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.position_embeddings = nn.Parameter(torch.zeros(1, config.num_patches + 1, config.hidden_size))
        self.temporal_embeddings = nn.Parameter(torch.zeros(1, config.num_temporal_embeddings, 1, config.hidden_size))
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def interpolate_pos_encoding(self, height: int, width: int) -> torch.Tensor:
        """Bicubic resize of the spatial position embedding to a `height` x `width` frame (the CLS entry is kept)."""
        class_pos_embed = self.position_embeddings[:, :1]
        patch_pos_embed = self.position_embeddings[:, 1:]
        grid_size = torch_int(patch_pos_embed.shape[1] ** 0.5)
        hidden_size = patch_pos_embed.shape[-1]
        patch_pos_embed = patch_pos_embed.reshape(1, grid_size, grid_size, hidden_size).permute(0, 3, 1, 2)
        new_size = (height // self.config.patch_size, width // self.config.patch_size)
        patch_pos_embed = nn.functional.interpolate(
            patch_pos_embed, size=new_size, mode="bicubic", align_corners=False
        )
        patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).reshape(1, -1, hidden_size)
        return torch.cat((class_pos_embed, patch_pos_embed), dim=1)

    def temporal_embedding(self, num_frames: int) -> torch.Tensor:
        """`(1, num_frames, 1, hidden_size)`: the first `num_frames` vectors, or the vectors repeated cyclically."""
        num_embeddings = self.temporal_embeddings.shape[1]
        if num_frames <= num_embeddings:
            return self.temporal_embeddings[:, :num_frames]
        return self.temporal_embeddings.repeat(1, num_frames // num_embeddings, 1, 1)

    def forward(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        """`(batch, frames, channels, height, width)` -> `(batch, frames * (num_patches + 1), hidden_size)`,
        frame-major: frame 0's CLS token and patches, then frame 1's, ..."""
        batch_size, num_frames, num_channels, height, width = pixel_values.shape
        embeddings = self.patch_embeddings(pixel_values.reshape(-1, num_channels, height, width))
        cls_tokens = self.cls_token.expand(embeddings.shape[0], -1, -1)
        embeddings = torch.cat((cls_tokens, embeddings), dim=1)
        if interpolate_pos_encoding and (height, width) != (self.config.image_size,) * 2:
            embeddings = embeddings + self.interpolate_pos_encoding(height, width)
        else:
            embeddings = embeddings + self.position_embeddings
        embeddings = self.dropout(embeddings)
        embeddings = embeddings.view(batch_size, num_frames, *embeddings.shape[1:])
        return (embeddings + self.temporal_embedding(num_frames)).flatten(1, 2)


class XViTAttention(nn.Module):
    """
    Multi-head self-attention through the Transformers attention interface (eager, sdpa, flash, flex). As it is, it
    is the temporal-attention head's attention over the frames; [`XViTSpaceTimeMixingAttention`] builds the
    backbone's on it.
    """

    def __init__(self, config: XViTConfig, num_attention_heads: int, qkv_bias: bool):
        super().__init__()
        self.config = config
        hidden_size = config.hidden_size
        self.num_attention_heads = num_attention_heads
        self.head_dim = hidden_size // num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_probs_dropout_prob
        self.is_causal = False
        self.q_proj = nn.Linear(hidden_size, hidden_size, bias=qkv_bias)
        self.k_proj = nn.Linear(hidden_size, hidden_size, bias=qkv_bias)
        self.v_proj = nn.Linear(hidden_size, hidden_size, bias=qkv_bias)
        self.o_proj = nn.Linear(hidden_size, hidden_size)

    def _split_heads(self, states: torch.Tensor) -> torch.Tensor:
        """`(..., tokens, hidden)` -> `(..., heads, tokens, head_dim)`."""
        return states.unflatten(-1, (self.num_attention_heads, self.head_dim)).transpose(-3, -2)

    def _attend(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        output_attentions: bool = False,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """
        Attention of `query` over `key` and `value`, each `(..., heads, tokens, head_dim)`. Returns the output
        `(..., tokens, heads, head_dim)` and the attention probabilities `(..., heads, tokens, keys)`, or `None` where
        the kernel does not compute them.

        Only eager attention returns the probabilities, so a call that asks for them runs eager attention whatever
        the configured implementation. Eager attention keeps the leading dimensions, so the probabilities it returns
        are the very tensor that weights the values (they stay in the autograd graph) and already have their
        documented shape; the fused kernels take `(batch, heads, tokens, head_dim)`, so the leading dimensions are
        flattened for them.
        """
        attention_interface = eager_attention_forward if output_attentions else self._attention_interface(query)
        if attention_interface is not eager_attention_forward:
            query, key, value = (states.flatten(0, -4) for states in (query, key, value))
        return attention_interface(
            self,
            query,
            key,
            value,
            None,
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
            **kwargs,
        )

    def _attention_interface(self, query: torch.Tensor) -> Callable:
        implementation = self.config._attn_implementation
        if implementation == "flex_attention" and query.requires_grad and query.device.type == "cpu":
            # torch's flex attention has no backward on the CPU and refuses, from the forward call, any input that
            # requires grad: even a model in eval() outside torch.no_grad(). sdpa computes the same attention.
            logger.warning_once(
                "flex_attention has no backward pass on the CPU, so calls that record gradients run with sdpa "
                "attention (the same result); run inference under torch.no_grad() to use flex_attention."
            )
            implementation = "sdpa"
        return ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)

    def forward(
        self, hidden_states: torch.Tensor, **kwargs: Unpack[TransformersKwargs]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """
        Args:
            hidden_states (`torch.Tensor` of shape `(batch_size, num_tokens, hidden_size)`).

        Returns:
            The attention output, shaped like `hidden_states`, and the attention probabilities
            `(batch_size, heads, num_tokens, num_tokens)` when the call ran eager attention (else `None`).
        """
        query, key, value = (
            self._split_heads(proj(hidden_states)) for proj in (self.q_proj, self.k_proj, self.v_proj)
        )
        attn_output, attn_weights = self._attend(query, key, value, **kwargs)
        return self.o_proj(attn_output.reshape(hidden_states.shape)), attn_weights


class XViTSpaceTimeMixingAttention(XViTAttention):
    """
    The backbone's attention: multi-head self-attention over the tokens of each frame, whose keys and values (never
    the queries) are mixed across neighbouring frames in layers with space-time mixing, and extended with one summary
    token per frame of the clip in layers with summary tokens.
    """

    def __init__(self, config: XViTConfig, layer_idx: int):
        super().__init__(config, config.num_attention_heads, config.qkv_bias)
        mixes = layer_idx in config.space_time_mixing_layers
        self.mixing_channels = config.space_time_mixing_channels if mixes else 0
        self.uses_summary_token = layer_idx in config.summary_token_layers

    def _mix_keys_or_values(self, states: torch.Tensor) -> torch.Tensor:
        """`(batch, frames, tokens, hidden)` -> the same, space-time mixed and with summary tokens where configured."""
        summary = summary_tokens(states) if self.uses_summary_token else None
        states = space_time_mixing(states, self.config.space_time_mixing_segment_length, self.mixing_channels)
        return states if summary is None else torch.cat([states, summary], dim=2)

    def forward(
        self, hidden_states: torch.Tensor, num_frames: int, **kwargs: Unpack[TransformersKwargs]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """
        Args:
            hidden_states (`torch.Tensor` of shape `(batch_size, num_frames * num_tokens, hidden_size)`), frame-major.
            num_frames (`int`): frames in the clip.

        Returns:
            The attention output, shaped like `hidden_states`, and the attention probabilities
            `(batch_size, num_frames, heads, num_tokens, num_keys)` when the call ran eager attention (else `None`).
        """
        frames = hidden_states.unflatten(1, (num_frames, -1))  # (batch, frames, tokens, hidden): a view
        query = self.q_proj(frames)
        key, value = self.k_proj(frames), self.v_proj(frames)
        if self.mixing_channels or self.uses_summary_token:
            key, value = self._mix_keys_or_values(key), self._mix_keys_or_values(value)
        query, key, value = (self._split_heads(states) for states in (query, key, value))
        attn_output, attn_weights = self._attend(query, key, value, **kwargs)
        return self.o_proj(attn_output.reshape(hidden_states.shape)), attn_weights


class XViTMLP(nn.Module):
    def __init__(self, config: XViTConfig, intermediate_size: int):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, intermediate_size)
        self.activation_fn = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation_fn(self.fc1(hidden_states)))


class XViTDropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch of a sample with probability `drop_prob` in training."""

    def __init__(self, drop_prob: float):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return hidden_states
        keep_prob = 1 - self.drop_prob
        mask_shape = (hidden_states.shape[0],) + (1,) * (hidden_states.ndim - 1)
        mask = hidden_states.new_empty(mask_shape).bernoulli_(keep_prob)
        if keep_prob > 0:  # at rate 1 every branch is dropped: zeros, not 0 / 0
            mask.div_(keep_prob)
        return hidden_states * mask


class XViTLayer(GradientCheckpointingLayer):
    """Pre-norm transformer block: `x + attention(LN(x))`, then `x + MLP(LN(x))`."""

    def __init__(
        self,
        config: XViTConfig,
        attention: XViTAttention,
        intermediate_size: int,
        layer_norm_eps: float,
        drop_path_rate: float = 0.0,
    ):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(config.hidden_size, eps=layer_norm_eps)
        self.attention = attention
        self.layernorm_after = nn.LayerNorm(config.hidden_size, eps=layer_norm_eps)
        self.mlp = XViTMLP(config, intermediate_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.drop_path = XViTDropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, hidden_states: torch.Tensor, **kwargs: Unpack[TransformersKwargs]) -> torch.Tensor:
        """`hidden_states` as the attention takes them; the keyword arguments go to the attention."""
        attention_output, _ = self.attention(self.layernorm_before(hidden_states), **kwargs)
        hidden_states = hidden_states + self.drop_path(self.dropout(attention_output))
        mlp_output = self.mlp(self.layernorm_after(hidden_states))
        return hidden_states + self.drop_path(self.dropout(mlp_output))


class XViTBackboneLayer(XViTLayer):
    """
    Backbone layer `layer_idx`: a ViT block whose attention mixes space and time where the config says so. A class of
    its own because output recording (`_can_record_outputs`) picks modules by class: the backbone's layers give
    `hidden_states`, the temporal-attention head's (plain `XViTLayer`s) are left out.
    """

    def __init__(self, config: XViTConfig, layer_idx: int, drop_path_rate: float):
        attention = XViTSpaceTimeMixingAttention(config, layer_idx)
        super().__init__(config, attention, config.intermediate_size, config.layer_norm_eps, drop_path_rate)


class XViTTemporalAttention(nn.Module):
    """
    The paper's temporal-attention head ("TA"): a small pre-norm transformer over the per-frame CLS features with a CLS
    token of its own (no position embedding); its CLS output is the video embedding.
    """

    def __init__(self, config: XViTConfig):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.layers = nn.ModuleList(
            XViTLayer(
                config,
                XViTAttention(config, config.temporal_attention_num_heads, config.temporal_attention_qkv_bias),
                config.temporal_attention_intermediate_size,
                config.temporal_attention_layer_norm_eps,
            )
            for _ in range(config.temporal_attention_num_layers)
        )

    def forward(self, frame_features: torch.Tensor) -> torch.Tensor:
        """`(batch_size, num_frames, hidden_size)` -> `(batch_size, hidden_size)`."""
        cls_tokens = self.cls_token.expand(frame_features.shape[0], -1, -1)
        hidden_states = torch.cat((cls_tokens, frame_features), dim=1)
        for layer in self.layers:
            hidden_states = layer(hidden_states)
        return hidden_states[:, 0]


class XViTTemporalMean(nn.Module):
    """Temporal averaging of the per-frame CLS features (the paper's simplest baseline)."""

    def forward(self, frame_features: torch.Tensor) -> torch.Tensor:
        return frame_features.mean(dim=1)


class XViTClassificationHead(nn.Module):
    """The original's MLP head: LayerNorm -> Linear -> GELU -> Dropout -> Linear."""

    def __init__(self, config: XViTConfig):
        super().__init__()
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.classifier_layer_norm_eps)
        self.dense = nn.Linear(config.hidden_size, config.classifier_hidden_size)
        self.activation_fn = ACT2FN[config.hidden_act]
        self.dropout = nn.Dropout(config.classifier_dropout_prob)
        self.out_proj = nn.Linear(config.classifier_hidden_size, config.num_labels)

    def forward(self, video_embedding: torch.Tensor) -> torch.Tensor:
        hidden_states = self.activation_fn(self.dense(self.layernorm(video_embedding)))
        return self.out_proj(self.dropout(hidden_states))


class XViTPreTrainedModel(PreTrainedModel):
    config: XViTConfig
    base_model_prefix = "xvit"
    main_input_name = "pixel_values"
    input_modalities = ("video",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["XViTEmbeddings", "XViTLayer", "XViTBackboneLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_compile_fullgraph = True
    # Hooks record the outputs of the backbone's classes only, so the temporal-attention head's layers are left out.
    # (Picking by `OutputRecorder(layer_name=...)` cannot: the name matches a part of the module path, and the head's
    # `temporal_aggregation.layers.N` contains the backbone's `layers.N`; renaming either would change the weight names
    # of every saved and converted checkpoint.) The backbone layers take and return the documented
    # `(batch, frames * tokens, hidden)` shape and its attention returns probabilities
    # `(batch, frames, heads, tokens, keys)`: the recorded tensors are the ones the forward pass goes on with, so they
    # are in the autograd graph.
    _can_record_outputs = {
        "hidden_states": XViTBackboneLayer,
        "attentions": XViTSpaceTimeMixingAttention,
    }

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """ViT conventions: truncated normal weights, zero biases, unit layer norms; zero temporal embedding, so an
        XViT initialised from an image ViT starts as that ViT applied to every frame."""
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            init.trunc_normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, XViTEmbeddings):
            init.trunc_normal_(module.cls_token, mean=0.0, std=std)
            init.trunc_normal_(module.position_embeddings, mean=0.0, std=std)
            init.zeros_(module.temporal_embeddings)
        elif isinstance(module, XViTTemporalAttention):
            init.trunc_normal_(module.cls_token, mean=0.0, std=std)


def check_pixel_values(pixel_values: torch.Tensor, config: XViTConfig, interpolate_pos_encoding: bool) -> None:
    """Raise a clear error for input that the model cannot take, instead of broadcasting silently."""
    expected = f"(batch_size, num_frames, {config.num_channels}, {config.image_size}, {config.image_size})"
    if not pixel_values.is_floating_point():
        raise ValueError(
            f"`pixel_values` must be a floating-point tensor of normalised pixels, got {pixel_values.dtype}: raw"
            " frames (integers, booleans) or complex values are not model input; turn videos into `pixel_values` with"
            " XViTVideoProcessor."
        )
    if pixel_values.ndim != 5:
        raise ValueError(f"`pixel_values` must have shape {expected}, got {tuple(pixel_values.shape)}.")
    batch_size, num_frames, num_channels, height, width = pixel_values.shape
    if batch_size == 0 or num_frames == 0:
        raise ValueError(
            f"`pixel_values` holds no clips or clips of no frames (shape {tuple(pixel_values.shape)}); expected at"
            f" least one clip of at least one frame, shape {expected}."
        )
    if num_channels != config.num_channels:
        raise ValueError(
            f"`pixel_values` must have {config.num_channels} channels in dimension 2, shape {expected}; "
            f"got {tuple(pixel_values.shape)}."
        )
    if height % config.patch_size or width % config.patch_size:
        raise ValueError(
            f"`pixel_values` height and width must be multiples of the patch size {config.patch_size}, "
            f"got {tuple(pixel_values.shape)}."
        )
    if not interpolate_pos_encoding and (height, width) != (config.image_size, config.image_size):
        raise ValueError(
            f"`pixel_values` frames are {height}x{width} but the model takes {config.image_size}x{config.image_size}"
            f" (shape {expected}, got {tuple(pixel_values.shape)}); pass `interpolate_pos_encoding=True` to resize the"
            " position embedding."
        )
    segment_length = config.space_time_mixing_segment_length
    if config.space_time_mixing_layers and num_frames % segment_length:
        raise ValueError(
            f"`pixel_values` has {num_frames} frames (shape {tuple(pixel_values.shape)}), which is not a multiple of "
            f"the space-time mixing segment length {segment_length}."
        )
    num_embeddings = config.num_temporal_embeddings
    if num_frames > num_embeddings and num_frames % num_embeddings:
        raise ValueError(
            f"`pixel_values` has {num_frames} frames (shape {tuple(pixel_values.shape)}); the model has "
            f"{num_embeddings} temporal embeddings, so it takes at most {num_embeddings} frames or a multiple of it."
        )


def check_finite_logits(logits: torch.Tensor, pixel_values: torch.Tensor) -> None:
    """
    Refuse non-finite scores in inference instead of returning them: NaN logits rank as an arbitrary class. Skipped
    while compiling, exporting or tracing, whose graphs cannot branch on values.
    """
    if torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.isfinite(logits).all():
        return
    num_bad_pixels = (~torch.isfinite(pixel_values)).sum().item()
    cause = (
        f"`pixel_values` holds {num_bad_pixels} NaN or infinite values (XViTVideoProcessor never emits them)"
        if num_bad_pixels
        else "`pixel_values` are finite, so the weights hold non-finite values or the model's dtype overflows"
    )
    raise ValueError(
        f"The model's scores (logits) for `pixel_values` of shape {tuple(pixel_values.shape)} are not finite: {cause}."
    )


class XViTModel(XViTPreTrainedModel):
    """
    The XViT backbone and its temporal aggregation: pixel values of a clip in, every token's features and the video
    embedding out.
    """

    def __init__(self, config: XViTConfig):
        super().__init__(config)
        self.config = config
        self.embeddings = XViTEmbeddings(config)
        drop_path_rates = torch.linspace(0, config.drop_path_rate, config.num_hidden_layers, device="cpu").tolist()
        self.layers = nn.ModuleList(
            XViTBackboneLayer(config, layer_idx, drop_path_rates[layer_idx])
            for layer_idx in range(config.num_hidden_layers)
        )
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.frame_dropout = nn.Dropout(config.frame_dropout_prob)
        if config.temporal_aggregation == "attention":
            self.temporal_aggregation = XViTTemporalAttention(config)
        else:
            self.temporal_aggregation = XViTTemporalMean()
        self.post_init()

    def get_input_embeddings(self) -> XViTPatchEmbeddings:
        return self.embeddings.patch_embeddings

    @capture_outputs(tie_last_hidden_states=False)
    def forward(
        self,
        pixel_values: torch.Tensor,
        interpolate_pos_encoding: bool = False,
        **kwargs: Unpack[TransformersKwargs],
    ) -> XViTModelOutput:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_frames, num_channels, height, width)`):
                The clip, normalised as by [`XViTVideoProcessor`].
            interpolate_pos_encoding (`bool`, defaults to `False`):
                Resize the spatial position embedding for frames of another size than `config.image_size`.
            output_attentions (`bool`, *optional*):
                Return the attention probabilities of every backbone layer (that call runs eager attention).
            output_hidden_states (`bool`, *optional*):
                Return the embedding output and every backbone layer's output.
            kwargs:
                Passed on to the backbone's attention function (for example a kernel's options).

        Returns:
            [`XViTModelOutput`]; see its docstring for the shapes.
        """
        check_pixel_values(pixel_values, self.config, interpolate_pos_encoding)
        pixel_values = pixel_values.to(self.embeddings.patch_embeddings.projection.weight.dtype)
        num_frames = pixel_values.shape[1]

        # (batch, frames * tokens, hidden), frame-major: linear layers act on the last axis, and attention views the
        # frames apart. The layers' inputs and outputs are the recorded hidden states.
        hidden_states = self.embeddings(pixel_values, interpolate_pos_encoding=interpolate_pos_encoding)
        for layer in self.layers:
            hidden_states = layer(hidden_states, num_frames=num_frames, **kwargs)

        sequence_output = self.layernorm(hidden_states)
        frame_features = sequence_output.unflatten(1, (num_frames, -1))[:, :, 0]
        # The temporal head attends over frames, not tokens: it takes no keyword arguments, as options meant for the
        # backbone's sequences would not fit its own.
        video_embedding = self.temporal_aggregation(self.frame_dropout(frame_features))
        return XViTModelOutput(
            last_hidden_state=sequence_output, pooler_output=video_embedding, frame_features=frame_features
        )


class XViTForVideoClassification(XViTPreTrainedModel):
    """XViT with a classifier on the video embedding: the original's MLP head, or a single linear layer."""

    def __init__(self, config: XViTConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.xvit = XViTModel(config)
        if config.classifier_hidden_size:
            self.classifier = XViTClassificationHead(config)
        else:
            self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        interpolate_pos_encoding: bool = False,
        **kwargs: Unpack[TransformersKwargs],
    ) -> ImageClassifierOutput:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_frames, num_channels, height, width)`):
                The clip, normalised as by [`XViTVideoProcessor`].
            labels (`torch.LongTensor` of shape `(batch_size,)`, or `torch.FloatTensor` of shape
                `(batch_size, num_labels)` for multi-label classification, *optional*):
                Targets of the loss, chosen through `config.problem_type` as in every Transformers classifier
                (regression when `num_labels == 1`, cross-entropy for integer labels, binary cross-entropy otherwise).
            interpolate_pos_encoding, output_attentions, output_hidden_states, kwargs:
                As in [`XViTModel`]; the keyword arguments also reach the loss function (`num_items_in_batch`).

        Returns:
            [`ImageClassifierOutput`] with `logits` of shape `(batch_size, num_labels)`.

        Raises:
            `ValueError` in inference (`model.eval()`) when a logit is not finite, naming the cause (non-finite
            `pixel_values`, or weights or a dtype that overflow). In training the loss shows it instead.
        """
        outputs = self.xvit(pixel_values, interpolate_pos_encoding=interpolate_pos_encoding, **kwargs)
        logits = self.classifier(outputs.pooler_output)
        if not self.training:
            check_finite_logits(logits, pixel_values)
        loss = self.loss_function(labels, logits, self.config, **kwargs) if labels is not None else None
        return ImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


__all__ = ["XViTForVideoClassification", "XViTModel", "XViTPreTrainedModel"]
