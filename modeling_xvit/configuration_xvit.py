"""XViT model configuration."""

import importlib.resources
import os
from typing import Any, Literal

from huggingface_hub.dataclasses import strict
from transformers.activations import ACT2FN
from transformers.configuration_utils import PreTrainedConfig


@strict
class XViTConfig(PreTrainedConfig):
    r"""
    Configuration of an XViT model ("Space-time Mixing Attention for Video Transformer", Bulat et al., NeurIPS 2021).
    The defaults are the released models' ViT-B/16 backbone on 16 frames of 224 x 224 pixels, with space-time mixing
    in all 12 layers and a one-layer temporal-attention head, but they are not exactly either released model: by
    default frames mix across the whole clip (the segment length and the number of temporal embeddings follow
    `num_frames`, so a smaller config stays valid), while the released models mix within segments and have 8
    temporal embeddings. [`XViTConfig.from_released`] gives the released configurations by name.

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
            Defaults to `num_frames`. A clip of more frames than vectors reuses them cyclically, so `num_frames`
            must then be a multiple of it (8 vectors for 16 frames in the released models).
        summary_token_layers (`list[int]`, *optional*, defaults to `[]`):
            Backbone layers in which every frame also attends to one summary token per frame of the clip (the
            spatial average of that frame's keys and values; paper section 3). Empty disables the summary token.
        temporal_aggregation (`str`, *optional*, defaults to `"attention"`):
            How the per-frame CLS features become one video embedding: `"attention"` (the paper's temporal
            attention head, a small transformer with its own CLS token) or `"mean"` (temporal averaging).
        temporal_attention_num_layers (`int`, *optional*, defaults to 1):
            Depth of the temporal-attention head.
        temporal_attention_num_heads (`int`, *optional*):
            Attention heads of the temporal-attention head. Defaults to `num_attention_heads` (12 in the released
            models, as in their backbone).
        temporal_attention_intermediate_size (`int`, *optional*):
            MLP width of the temporal-attention head. Defaults to `intermediate_size` (3072 in the released models,
            as in their backbone).
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

    Every field is checked at construction: an invalid value raises a `ValueError` naming the field, the value and
    what is allowed.

    The attention implementation ("sdpa" by default; "eager", "flash_attention_2", "flex_attention") is not a saved
    field: pass `attn_implementation=` to `from_pretrained(folder, ...)`, to `_from_config(config, ...)` or to this
    constructor (a model built from the config uses `config._attn_implementation`), or call
    `model.set_attn_implementation(...)` on a built model.

    Example:

    ```python
    >>> from modeling_xvit import XViTConfig, XViTModel

    >>> configuration = XViTConfig.from_released("k600")  # the released Kinetics-600 XViT-B/16, 16 frames
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
    initializer_range: float | int = 0.02
    layer_norm_eps: float | int = 1e-6
    qkv_bias: bool = True
    space_time_mixing_layers: list[int] | tuple[int, ...] | None = None
    space_time_mixing_fraction: float | int = 0.125
    space_time_mixing_segment_length: int | None = None
    num_temporal_embeddings: int | None = None
    summary_token_layers: list[int] | tuple[int, ...] = ()
    temporal_aggregation: Literal["attention", "mean"] = "attention"
    temporal_attention_num_layers: int = 1
    temporal_attention_num_heads: int | None = None
    temporal_attention_intermediate_size: int | None = None
    temporal_attention_qkv_bias: bool = False
    temporal_attention_layer_norm_eps: float | int = 1e-5
    frame_dropout_prob: float | int = 0.0
    classifier_hidden_size: int | None = 768
    classifier_layer_norm_eps: float | int = 1e-5
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
        if self.temporal_attention_num_heads is None:
            self.temporal_attention_num_heads = self.num_attention_heads
        if self.temporal_attention_intermediate_size is None:
            self.temporal_attention_intermediate_size = self.intermediate_size
        # The strict dataclass runs `validate_architecture` too, but wraps its ValueError in an error of its own (no
        # ValueError); checking first gives the caller the plain ValueError. `validate()` checks again on saving.
        self.validate_architecture()
        super().__post_init__(**kwargs)

    @classmethod
    def from_released(cls, name: Literal["k600", "ssv2"], **kwargs) -> "XViTConfig":
        """
        The configuration of a released model (official repository 1adrianb/video-transformers), as the converter
        derives it from the checkpoint and its training config:

        - `"k600"` (`xvit_b16_16_k600.pth`, Kinetics-600, 600 classes): space-time mixing of 1/8 of the channels
          from each neighbour, within segments of 8 frames (`SHIFT_DIV: 8`, `NUM_SEGMENTS: 8`).
        - `"ssv2"` (`xvit_b16_16_ss2.pth`, Something-Something-v2, 174 classes): 1/4 of the channels, within the
          whole 16-frame clip (`SHIFT_DIV: 4`, `NUM_SEGMENTS: 16`).

        Both are ViT-B/16 on 16 frames of 224 x 224 with mixing in all 12 layers, 8 temporal embeddings (the released
        code sizes them with its default of 8 frames; frame f gets embedding f mod 8), a one-layer temporal-attention
        head without query/key/value bias, dropout 0.5 on the frame features and in the classifier, and the 768-wide
        MLP classifier. The config carries the model's class names (`id2label`, from the package's
        `labels/kinetics600.txt` or `labels/ssv2.txt`) unless `kwargs` give `num_labels`, `id2label` or `label2id`;
        `kwargs` override any field.
        """
        if name not in RELEASED_CONFIGURATIONS:
            raise ValueError(
                f"Unknown released configuration {name!r}; expected one of {sorted(RELEASED_CONFIGURATIONS)}."
            )
        released = dict(RELEASED_CONFIGURATIONS[name])
        if not {"num_labels", "id2label", "label2id"} & set(kwargs):
            names = released_class_names(RELEASED_LABEL_FILES[name])
            released.update(id2label=dict(enumerate(names)), label2id={label: i for i, label in enumerate(names)})
        return cls(**{**released, **kwargs})

    @classmethod
    def get_config_dict(
        cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """[`~PreTrainedConfig.get_config_dict`], refusing the config of another model: its weights would not fit,
        and loading would leave most of the XViT weights random (a ViT's config and an XViT's share most fields)."""
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        model_type = config_dict.get("model_type", cls.model_type)
        if model_type != cls.model_type:
            converter = (
                " Turn an image ViT checkpoint into an XViT one with the ViT converter (`xvit-convert-vit`, or"
                " `python conversion/convert_vit_to_xvit.py`); it maps the ViT's weights and adds the video layers."
            )
            raise ValueError(
                f"{pretrained_model_name_or_path} holds the config of a `{model_type}` model, not an XViT model"
                f" (`model_type` {cls.model_type!r})." + (converter if model_type == "vit" else "")
            )
        return config_dict, kwargs

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
        for name in ("image_size", "patch_size", "num_channels", "num_frames", "hidden_size", "num_hidden_layers"):
            _check_at_least(name, getattr(self, name), 1)
        _check_divides("num_attention_heads", self.num_attention_heads, "hidden_size", self.hidden_size)
        _check_at_least("intermediate_size", self.intermediate_size, 1)
        if self.hidden_act not in ACT2FN:
            raise ValueError(f"`hidden_act` must be one of {sorted(ACT2FN)}, got {self.hidden_act!r}.")
        for name in (
            "hidden_dropout_prob",
            "attention_probs_dropout_prob",
            "drop_path_rate",
            "frame_dropout_prob",
            "classifier_dropout_prob",
        ):
            _check_in_unit_interval(name, getattr(self, name))
        _check_at_least("initializer_range", self.initializer_range, 0)
        for name in ("layer_norm_eps", "temporal_attention_layer_norm_eps", "classifier_layer_norm_eps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"`{name}` must be a positive number, got {getattr(self, name)}.")
        if self.image_size % self.patch_size:
            raise ValueError(f"`patch_size` ({self.patch_size}) must divide `image_size` ({self.image_size}).")
        if not 0 <= self.space_time_mixing_fraction <= 0.5:
            raise ValueError(
                "`space_time_mixing_fraction` is the share of channels taken from each of frames t-1 and t+1, so"
                " the two together must not exceed 1: expected a value in [0, 0.5], got"
                f" {self.space_time_mixing_fraction}."
            )
        for name in ("space_time_mixing_segment_length", "num_temporal_embeddings"):
            _check_at_least(name, getattr(self, name), 1)
        if self.num_frames > self.num_temporal_embeddings and self.num_frames % self.num_temporal_embeddings:
            # The model takes a clip of at most `num_temporal_embeddings` frames or a multiple of it (the vectors
            # repeat cyclically), so it would refuse its own clips.
            raise ValueError(
                f"`num_temporal_embeddings` ({self.num_temporal_embeddings}) must be at least `num_frames`"
                f" ({self.num_frames}) or divide it: frame f takes temporal embedding f mod"
                f" {self.num_temporal_embeddings}."
            )
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
        if self.temporal_aggregation == "attention":
            _check_at_least("temporal_attention_num_layers", self.temporal_attention_num_layers, 1)
            _check_divides(
                "temporal_attention_num_heads", self.temporal_attention_num_heads, "hidden_size", self.hidden_size
            )
            _check_at_least("temporal_attention_intermediate_size", self.temporal_attention_intermediate_size, 1)
        if self.classifier_hidden_size is not None:
            _check_at_least("classifier_hidden_size", self.classifier_hidden_size, 1)


def released_class_names(label_file: str) -> list[str]:
    """
    The class names in index order, one per line of `label_file` in the package's `labels/` folder. It is read
    beside this module (importlib.resources, so a zipped install works too) because the module is also remote code
    copied alone into Hub folders, where it may import only torch and transformers.
    """
    try:
        text = importlib.resources.files(__package__).joinpath("labels", label_file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"The class names of the released models ({label_file}) ship with the xvit-transformers package in"
            f" modeling_xvit/labels/, not beside this copy of configuration_xvit.py ({__name__}); install the package"
            " (`pip install xvit-transformers`) or pass `id2label`."
        ) from None
    return class_names_in(text)


def class_names_in(text: str) -> list[str]:
    """The class names of a class-list text: one per non-empty line, stripped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def _check_at_least(name: str, value: float, minimum: int) -> None:
    if not value >= minimum:
        raise ValueError(f"`{name}` must be at least {minimum}, got {value}.")


def _check_in_unit_interval(name: str, value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"`{name}` is a probability: expected a value in [0, 1], got {value}.")


def _check_divides(divisor_name: str, divisor: int, dividend_name: str, dividend: int) -> None:
    if divisor < 1 or dividend % divisor:
        raise ValueError(f"`{divisor_name}` ({divisor}) must be a positive divisor of `{dividend_name}` ({dividend}).")


# The released models differ from the defaults only in these fields (and between each other in the first three).
_RELEASED_COMMON = dict(
    num_temporal_embeddings=8, frame_dropout_prob=0.5, classifier_dropout_prob=0.5, classifier_hidden_size=768
)
RELEASED_LABEL_FILES = {"k600": "kinetics600.txt", "ssv2": "ssv2.txt"}
RELEASED_CONFIGURATIONS = {
    "k600": dict(
        num_labels=600, space_time_mixing_fraction=1 / 8, space_time_mixing_segment_length=8, **_RELEASED_COMMON
    ),
    "ssv2": dict(
        num_labels=174, space_time_mixing_fraction=1 / 4, space_time_mixing_segment_length=16, **_RELEASED_COMMON
    ),
}


__all__ = ["XViTConfig"]
