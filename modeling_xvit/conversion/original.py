"""Convert a checkpoint of the original XViT release (1adrianb/video-transformers) to a Transformers model folder.

    xvit-convert-original --checkpoint xvit_b16_16_k600.pth --output-dir xvit-b16-16-k600 --verify

Every architecture number comes from the checkpoint's tensors and its training config (the `cfg` YAML stored in the
checkpoint, or `--config`); only the backbone's head count is stored nowhere: it follows from XVIT.BASE_MODEL when
that names a standard ViT, and must be given with --num-attention-heads otherwise. The output is a complete Hub folder
(`modeling_xvit.hub.folder.write_hub_folder`: weights, configs, remote code, Inference Endpoints handler, model card),
written only when the whole conversion succeeded and, unless --skip-folder-check, checked by loading it in a fresh
process first; --push-to-hub uploads it.
"""

import argparse
import copy
import math
import os
import pickle
import re
import shlex
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import yaml

from modeling_xvit import XViTConfig, XViTForVideoClassification, XViTVideoProcessor
from modeling_xvit.conversion.original_reference import OriginalXViTArchitecture, original_xvit_forward
from modeling_xvit.errors import ConversionError, run_conversion
from modeling_xvit.hub.card import DATASETS, ORIGINAL_CODE_URL, CardResult, ModelCardInputs, reported_results
from modeling_xvit.hub.folder import check_output_dir, write_hub_folder
from modeling_xvit.hub.upload import add_folder_arguments, publish_if_asked
from modeling_xvit.hub.verify import check_hub_folder
from modeling_xvit.labels import KNOWN_LABEL_SETS, load_labels

VERIFY_TOLERANCE = 1e-4
# Hub ids of the ImageNet-21k ViTs that the original's XVIT.BASE_MODEL names (the released models start from these).
BASE_MODEL_HUB_IDS = {
    "vit_base_patch16_224_in21k": "google/vit-base-patch16-224-in21k",
    "vit_large_patch16_224_in21k": "google/vit-large-patch16-224-in21k",
    "vit_huge_patch14_224_in21k": "google/vit-huge-patch14-224-in21k",
}

# --- The original training config -------------------------------------------------------------------------------

# The values the original code uses when its YAML leaves them out (slowfast/config/defaults.py of the release).
ORIGINAL_CONFIG_DEFAULTS: dict[str, Any] = {
    "TRAIN": {"DATASET": "kinetics"},
    "TEST": {"DATASET": "kinetics", "NUM_ENSEMBLE_VIEWS": 10, "NUM_SPATIAL_CROPS": 3},
    "DATA": {
        "NUM_FRAMES": 8,
        "SAMPLING_RATE": 8,
        "MEAN": [0.45, 0.45, 0.45],
        "STD": [0.225, 0.225, 0.225],
        "TRAIN_JITTER_SCALES": [256, 320],
        "RANDOM_FLIP": True,
        "TARGET_FPS": 30,
    },
    "MODEL": {"NUM_CLASSES": 400, "DROPOUT_RATE": 0.5},
    "XVIT": {
        "NUM_SEGMENTS": 8,
        "CONSENSUS_TYPE": "vit",
        "USE_XVIT": True,
        "SHIFT_DIV": 8,
        "BASE_MODEL": "resnet50",
        "LOCATIONS_LIST": [9, 10, 11],
        "BACKBONE": {"DROP_PATH_RATE": 0.0, "DROP_ATTN_RATE": 0.0, "NORM_LAYER": "LN"},
    },
    "TEMPORAL_HEAD": {"HIDDEN_DIM": 768, "NUM_ATTENTION_HEADS": 12, "NUM_HIDDEN_LAYERS": 1, "MLP_DIM": 768},
}


def _section_problems(defaults: Mapping[str, Any], values: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every config section given as something other than a mapping (`DATA: 5`), named by its full key."""
    problems = []
    for key, default in defaults.items():
        if isinstance(default, Mapping) and key in values:
            if isinstance(values[key], Mapping):
                problems += _section_problems(default, values[key], f"{prefix}{key}.")
            else:
                problems.append(f"{prefix}{key} should be a section of settings, got {values[key]!r}")
    return problems


def _merge(defaults: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(defaults))
    for key, value in values.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _is_integer(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_number_list(value: Any, length: int, positive: bool = False) -> bool:
    return (
        isinstance(value, list)
        and len(value) == length
        and all(_is_number(item) and (item > 0 or not positive) for item in value)
    )


# The settings the conversion reads: (section, key, test, what the test expects).
CONFIG_RULES: tuple[tuple[str, str, Callable[[Any], bool], str], ...] = (
    ("TRAIN", "DATASET", lambda value: isinstance(value, str) and bool(value), "a data-set name"),
    ("DATA", "NUM_FRAMES", lambda value: _is_integer(value, 1), "a positive integer"),
    ("DATA", "SAMPLING_RATE", lambda value: _is_integer(value, 1), "a positive integer"),
    ("DATA", "TARGET_FPS", lambda value: _is_number(value) and value > 0, "a positive number"),
    ("DATA", "MEAN", lambda value: _is_number_list(value, 3), "a list of 3 numbers (one per channel)"),
    ("DATA", "STD", lambda value: _is_number_list(value, 3, positive=True), "a list of 3 positive numbers"),
    (
        "DATA",
        "TRAIN_JITTER_SCALES",
        lambda value: _is_number_list(value, 2, positive=True) and value[0] <= value[1],
        "[shortest, longest] short-side sizes",
    ),
    ("DATA", "RANDOM_FLIP", lambda value: isinstance(value, bool), "True or False"),
    ("MODEL", "NUM_CLASSES", lambda value: _is_integer(value, 1), "a positive integer"),
    ("MODEL", "DROPOUT_RATE", lambda value: _is_number(value) and 0 <= value < 1, "a probability in [0, 1)"),
    ("XVIT", "CONSENSUS_TYPE", lambda value: isinstance(value, str), "a string"),
    ("XVIT", "USE_XVIT", lambda value: isinstance(value, bool), "True or False"),
    ("XVIT", "BASE_MODEL", lambda value: isinstance(value, str), "a timm model name"),
    ("XVIT", "NUM_SEGMENTS", lambda value: _is_integer(value, 1), "a positive integer (frames per mixing segment)"),
    ("XVIT", "SHIFT_DIV", lambda value: _is_integer(value, 2), "an integer >= 2 (1 / share of mixed channels)"),
    (
        "XVIT",
        "LOCATIONS_LIST",
        lambda value: isinstance(value, list) and all(_is_integer(item, 0) for item in value),
        "a list of block indices",
    ),
    ("XVIT.BACKBONE", "DROP_PATH_RATE", lambda value: _is_number(value) and 0 <= value < 1, "a probability in [0, 1)"),
    ("XVIT.BACKBONE", "DROP_ATTN_RATE", lambda value: _is_number(value) and 0 <= value < 1, "a probability in [0, 1)"),
    ("XVIT.BACKBONE", "NORM_LAYER", lambda value: isinstance(value, str), "a string"),
    ("TEMPORAL_HEAD", "NUM_ATTENTION_HEADS", lambda value: _is_integer(value, 1), "a positive integer"),
)


def _value_problems(config: Mapping[str, Any]) -> list[str]:
    problems = []
    for section, key, test, expected in CONFIG_RULES:
        value = config
        for part in section.split("."):
            value = value[part]
        if not test(value[key]):
            problems.append(f"{section}.{key} should be {expected}, got {value[key]!r}")
    num_frames, num_segments = config["DATA"]["NUM_FRAMES"], config["XVIT"]["NUM_SEGMENTS"]
    if not problems and num_frames % num_segments:
        problems.append(f"XVIT.NUM_SEGMENTS ({num_segments}) should divide DATA.NUM_FRAMES ({num_frames})")
    return problems


def parse_original_config(text: str | Mapping[str, Any] | None, source: str = "the checkpoint's cfg") -> dict:
    """The original YAML config (text or already parsed), completed with the original code's defaults.

    Raises `ConversionError` naming every setting the conversion reads that has an impossible value.
    """
    if text is None:
        values = {}
    elif isinstance(text, Mapping):
        values = text
    else:
        try:
            values = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            raise ConversionError(f"{source} is not valid YAML: {error}") from None
    if not isinstance(values, Mapping):
        raise ConversionError(f"{source} should be a YAML mapping of config sections, got {type(values).__name__}.")
    problems = _section_problems(ORIGINAL_CONFIG_DEFAULTS, values)
    config = _merge(ORIGINAL_CONFIG_DEFAULTS, values)
    problems = problems or _value_problems(config)
    if problems:
        raise ConversionError(f"{source} has invalid settings:\n" + "\n".join(problems))
    return config


# --- Reading checkpoints ----------------------------------------------------------------------------------------


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], Any]:
    """The state dict of a checkpoint file and the `cfg` stored next to it (None for a bare state dict).

    Accepts a full training checkpoint (`model_state`, or timm-style `state_dict` / `model`), a bare state dict, and
    DistributedDataParallel's `module.` prefixes. Only tensors and plain containers are unpickled, and the tensors
    must pass `check_weights`.
    """
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"Checkpoint {path} does not exist or is not a file.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = next((line for line in str(error).splitlines() if "GLOBAL" in line), str(error).splitlines()[0])
        raise ConversionError(
            f"Refusing {path}: it contains pickled Python objects besides tensors, and loading them could run"
            f" arbitrary code, so nothing from it was executed ({reason.strip()}). Re-save only the tensors, e.g."
            ' torch.save({"model_state": state_dict, "cfg": cfg_yaml_string}, path), from a trusted environment.'
        ) from None
    except Exception as error:  # torch reports damaged files as OSError, RuntimeError, KeyError, EOFError...
        raise ConversionError(
            f"{path} cannot be read as a PyTorch checkpoint (truncated or corrupt?): {type(error).__name__}: {error}"
        ) from None
    if not isinstance(checkpoint, Mapping):
        raise ConversionError(
            f"{path} should hold a dict (a checkpoint or a state dict), got {type(checkpoint).__name__}."
        )
    config = checkpoint.get("cfg")
    for wrapper in ("model_state", "state_dict", "model"):
        if isinstance(checkpoint.get(wrapper), Mapping):
            checkpoint = checkpoint[wrapper]
            break
    not_tensors = sorted(key for key, value in checkpoint.items() if not isinstance(value, torch.Tensor))
    if not_tensors:
        raise ConversionError(
            f"{path} is neither a training checkpoint with `model_state` nor a state dict: entries {not_tensors}"
            " are not tensors."
        )
    state_dict = _strip_module_prefix(checkpoint, path)
    check_weights(state_dict, path)
    return state_dict, config


def load_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, checked by `check_weights`; a damaged file is a `ConversionError`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state_dict = load_file(path)
    except (SafetensorError, OSError) as error:
        raise ConversionError(f"{path} cannot be read as safetensors (truncated or corrupt?): {error}") from None
    check_weights(state_dict, path)
    return state_dict


def check_weights(state_dict: Mapping[str, torch.Tensor], source: str | os.PathLike) -> None:
    """Refuse tensors that a floating-point model cannot take as they are: integer, bool or complex ones (loading would
    cast them silently) and ones holding NaN or infinity (the model would answer NaN), naming each."""
    problems = []
    for key, tensor in state_dict.items():
        if not tensor.is_floating_point():
            problems.append(f"{key} is {str(tensor.dtype).removeprefix('torch.')}, not floating point")
        elif not torch.isfinite(tensor).all():
            problems.append(f"{key} holds {(~torch.isfinite(tensor)).sum().item()} NaN or infinite values")
    if problems:
        more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise ConversionError(f"{source} has weights a model cannot use: {'; '.join(problems[:5])}{more}.")


def _strip_module_prefix(state_dict: Mapping[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """Drop DistributedDataParallel's `module.` prefixes, refusing two keys that would become one."""
    stripped, origin = {}, {}
    for key, tensor in state_dict.items():
        name = key.removeprefix("module.")
        if name in origin:
            raise ConversionError(
                f"{path} holds both {origin[name]!r} and {key!r}, which name the same tensor once the"
                " `module.` prefix of DistributedDataParallel is removed; keep one of them."
            )
        stripped[name], origin[name] = tensor, key
    return stripped


# --- The key mapping (the one place that knows both naming schemes) ---------------------------------------------

# Parts of a timm-style transformer block and their XViT names; `attention.qkv` is split into q/k/v_proj afterwards.
_BLOCK_PARTS = {
    "norm1": "layernorm_before",
    "attn.qkv": "attention.qkv",
    "attn.proj": "attention.o_proj",
    "norm2": "layernorm_after",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}
_BLOCK_STACKS = {"base_model.blocks": "xvit.layers", "consensus.temporal_encoder": "xvit.temporal_aggregation.layers"}

# (regular expression matching a whole original key, XViTForVideoClassification key).
KEY_MAPPING: tuple[tuple[str, str], ...] = (
    (r"base_model\.patch_embed\.proj\.(weight|bias)", r"xvit.embeddings.patch_embeddings.projection.\1"),
    (r"base_model\.cls_token", "xvit.embeddings.cls_token"),
    (r"base_model\.pos_embed", "xvit.embeddings.position_embeddings"),
    (r"base_model\.temp_embed", "xvit.embeddings.temporal_embeddings"),
    (r"base_model\.norm\.(weight|bias)", r"xvit.layernorm.\1"),
    (r"consensus\.cls_token", "xvit.temporal_aggregation.cls_token"),
    (r"consensus\.mlp_head\.0\.(weight|bias)", r"classifier.layernorm.\1"),
    (r"consensus\.mlp_head\.1\.(weight|bias)", r"classifier.dense.\1"),
    (r"consensus\.mlp_head\.4\.(weight|bias)", r"classifier.out_proj.\1"),
) + tuple(
    (rf"{re.escape(stack)}\.(\d+)\.{re.escape(part)}\.(weight|bias)", rf"{new_stack}.\1.{new_part}.\2")
    for stack, new_stack in _BLOCK_STACKS.items()
    for part, new_part in _BLOCK_PARTS.items()
)
# `new_fc` is created by the original training code but never used by its forward pass.
DROPPED_KEYS = (r"new_fc\.(weight|bias)",)


def rename_original_key(key: str) -> str | None:
    """The XViT name of an original key, or None when the key has no counterpart."""
    for pattern, replacement in KEY_MAPPING:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, replacement, key)
    return None


def convert_original_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the original keys to XViT's and split each fused qkv projection into q_proj, k_proj and v_proj."""
    converted, unknown = {}, []
    for key, tensor in state_dict.items():
        if any(re.fullmatch(pattern, key) for pattern in DROPPED_KEYS):
            continue
        new_key = rename_original_key(key)
        if new_key is None:
            unknown.append(key)
        elif ".attention.qkv." in new_key:
            if tensor.shape[0] % 3:
                raise ConversionError(
                    f"Tensor {key} should stack q, k and v (first dim divisible by 3), got {tuple(tensor.shape)}."
                )
            for name, part in zip(("q_proj", "k_proj", "v_proj"), tensor.chunk(3, dim=0), strict=True):
                converted[new_key.replace(".qkv.", f".{name}.")] = part.contiguous()
        else:
            converted[new_key] = tensor
    if unknown:
        raise ConversionError(
            f"The checkpoint has {len(unknown)} keys this converter does not know (is it an XViT checkpoint with"
            f" CONSENSUS_TYPE 'vit'?): {sorted(unknown)}"
        )
    return converted


def load_converted_weights(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], keep_initialised: tuple[str, ...] = ()
) -> None:
    """Load `state_dict` into `model`, listing every missing, unexpected or mis-shaped tensor in one error.

    Parameters whose names start with one of `keep_initialised` may be absent: they keep their fresh initialisation.
    """
    expected = model.state_dict()
    missing = sorted(key for key in set(expected) - set(state_dict) if not key.startswith(keep_initialised))
    unexpected = sorted(set(state_dict) - set(expected))
    mis_shaped = [
        f"{key}: model {tuple(expected[key].shape)}, checkpoint {tuple(tensor.shape)}"
        for key, tensor in state_dict.items()
        if key in expected and expected[key].shape != tensor.shape
    ]
    problems = [
        f"{label}: {items}"
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mis_shaped))
        if items
    ]
    if problems:
        raise ConversionError("The converted weights do not fit the XViT model; " + "; ".join(problems))
    model.load_state_dict(state_dict, strict=not keep_initialised)


# --- Inferring the architecture ---------------------------------------------------------------------------------

REQUIRED_KEYS = (
    "base_model.patch_embed.proj.weight",
    "base_model.cls_token",
    "base_model.pos_embed",
    "base_model.temp_embed",
    "base_model.blocks.0.attn.qkv.weight",
    "base_model.blocks.0.mlp.fc1.weight",
    "consensus.cls_token",
    "consensus.temporal_encoder.0.attn.qkv.weight",
    "consensus.temporal_encoder.0.mlp.fc1.weight",
    "consensus.mlp_head.1.weight",
    "consensus.mlp_head.4.weight",
)
# The standard ViT sizes: (hidden size, heads).
VIT_SIZES = {"tiny": (192, 3), "small": (384, 6), "base": (768, 12), "large": (1024, 16), "huge": (1280, 16)}


def backbone_num_attention_heads(
    base_model: str | None, hidden_size: int, override: int | None = None, named_by: str = "XVIT.BASE_MODEL"
) -> int:
    """The backbone's head count: `override`, else the standard ViT size that `base_model` names.

    No tensor stores the head count, and `--verify` cannot catch a wrong one (the reference forward pass uses the
    same number), so it is never guessed: a name that is not a standard ViT of this hidden size needs `override`.
    """
    if override is not None:
        heads, source = override, "--num-attention-heads"
    else:
        size = re.search(r"(tiny|small|base|large|huge)", base_model or "")
        standard = VIT_SIZES[size.group(1)] if size else None
        if standard is None or standard[0] != hidden_size:
            names = (
                f"names ViT-{size.group(1)} (hidden size {standard[0]})" if standard else "names no standard ViT size"
            )
            raise ConversionError(
                f"The backbone's head count is stored in no tensor, and {named_by} {base_model!r} {names} while the"
                f" checkpoint's hidden size is {hidden_size}: pass --num-attention-heads N. (--verify cannot catch a"
                " wrong head count: the reference forward pass would use the same number.)"
            )
        heads, source = standard[1], f"{named_by} {base_model!r}"
    if heads < 1 or hidden_size % heads:
        raise ConversionError(f"{heads} attention heads (from {source}) do not divide the hidden size {hidden_size}.")
    return heads


def _count_blocks(state_dict: Mapping[str, torch.Tensor], prefix: str) -> int:
    indices = {int(key[len(prefix) :].split(".")[0]) for key in state_dict if key.startswith(prefix)}
    if indices != set(range(len(indices))):
        raise ConversionError(f"The blocks under {prefix!r} are not numbered 0..n-1: {sorted(indices)}")
    return len(indices)


def original_architecture(original_config: Mapping[str, Any], num_attention_heads: int) -> OriginalXViTArchitecture:
    """What the reference forward pass needs besides the tensors."""
    xvit = original_config["XVIT"]
    return OriginalXViTArchitecture(
        num_attention_heads=num_attention_heads,
        temporal_num_attention_heads=original_config["TEMPORAL_HEAD"]["NUM_ATTENTION_HEADS"],
        num_segments=xvit["NUM_SEGMENTS"],
        shift_div=xvit["SHIFT_DIV"],
        locations=tuple(xvit["LOCATIONS_LIST"]) if xvit["USE_XVIT"] else (),
    )


def check_required_keys(state_dict: Mapping[str, torch.Tensor]) -> None:
    missing = [key for key in REQUIRED_KEYS if key not in state_dict]
    if missing:
        raise ConversionError(
            f"The checkpoint lacks tensors every XViT checkpoint with a temporal head has: {missing}"
        )


def infer_xvit_config(
    state_dict: Mapping[str, torch.Tensor],
    original_config: Mapping[str, Any],
    num_attention_heads: int | None = None,
    labels: list[str] | None = None,
) -> XViTConfig:
    """The XViTConfig of an original state dict (original key names) trained with `original_config`."""
    check_required_keys(state_dict)
    xvit, head, data = original_config["XVIT"], original_config["TEMPORAL_HEAD"], original_config["DATA"]
    if xvit["CONSENSUS_TYPE"] != "vit" or xvit["BACKBONE"]["NORM_LAYER"] != "LN":
        raise ConversionError(
            "Only the released architecture converts: XVIT.CONSENSUS_TYPE 'vit' and XVIT.BACKBONE.NORM_LAYER 'LN', got"
            f" {xvit['CONSENSUS_TYPE']!r} and {xvit['BACKBONE']['NORM_LAYER']!r}."
        )

    projection = state_dict["base_model.patch_embed.proj.weight"]
    hidden_size, num_channels, patch_size = projection.shape[0], projection.shape[1], projection.shape[-1]
    grid = math.isqrt(state_dict["base_model.pos_embed"].shape[1] - 1)
    if grid * grid + 1 != state_dict["base_model.pos_embed"].shape[1]:
        raise ConversionError(
            f"base_model.pos_embed {tuple(state_dict['base_model.pos_embed'].shape)} is not 1 + a square grid of"
            " patches."
        )
    num_layers = _count_blocks(state_dict, "base_model.blocks.")
    num_frames = data["NUM_FRAMES"]
    num_temporal_embeddings = state_dict["base_model.temp_embed"].shape[1]
    if num_frames % num_temporal_embeddings:
        raise ConversionError(
            f"DATA.NUM_FRAMES ({num_frames}) must be a multiple of the {num_temporal_embeddings} temporal embeddings"
            " in base_model.temp_embed (the original adds them frame group by frame group)."
        )
    num_labels = state_dict["consensus.mlp_head.4.weight"].shape[0]
    if original_config["MODEL"]["NUM_CLASSES"] != num_labels:
        raise ConversionError(
            f"consensus.mlp_head.4.weight has {num_labels} classes but the config says MODEL.NUM_CLASSES ="
            f" {original_config['MODEL']['NUM_CLASSES']}; is --config the right file?"
        )
    labels = labels or [f"LABEL_{index}" for index in range(num_labels)]
    heads = backbone_num_attention_heads(xvit["BASE_MODEL"], hidden_size, num_attention_heads)
    if hidden_size % head["NUM_ATTENTION_HEADS"]:
        raise ConversionError(
            f"TEMPORAL_HEAD.NUM_ATTENTION_HEADS ({head['NUM_ATTENTION_HEADS']}) should divide the temporal head's"
            f" width, the hidden size {hidden_size}."
        )
    dropout = original_config["MODEL"]["DROPOUT_RATE"]
    try:
        config = XViTConfig(
            image_size=grid * patch_size,
            patch_size=patch_size,
            num_channels=num_channels,
            num_frames=num_frames,
            hidden_size=hidden_size,
            num_hidden_layers=num_layers,
            num_attention_heads=heads,
            intermediate_size=state_dict["base_model.blocks.0.mlp.fc1.weight"].shape[0],
            layer_norm_eps=1e-6,
            qkv_bias="base_model.blocks.0.attn.qkv.bias" in state_dict,
            drop_path_rate=xvit["BACKBONE"]["DROP_PATH_RATE"],
            attention_probs_dropout_prob=xvit["BACKBONE"]["DROP_ATTN_RATE"],
            # The released configs list blocks 0..14 for a 12-block backbone; the original ignores the extra ones.
            space_time_mixing_layers=[i for i in xvit["LOCATIONS_LIST"] if i < num_layers] if xvit["USE_XVIT"] else [],
            space_time_mixing_fraction=1 / xvit["SHIFT_DIV"],
            space_time_mixing_segment_length=xvit["NUM_SEGMENTS"],
            num_temporal_embeddings=num_temporal_embeddings,
            temporal_aggregation="attention",
            temporal_attention_num_layers=_count_blocks(state_dict, "consensus.temporal_encoder."),
            temporal_attention_num_heads=head["NUM_ATTENTION_HEADS"],
            temporal_attention_intermediate_size=state_dict["consensus.temporal_encoder.0.mlp.fc1.weight"].shape[0],
            temporal_attention_qkv_bias="consensus.temporal_encoder.0.attn.qkv.bias" in state_dict,
            temporal_attention_layer_norm_eps=1e-5,
            frame_dropout_prob=dropout,
            classifier_hidden_size=state_dict["consensus.mlp_head.1.weight"].shape[0],
            classifier_layer_norm_eps=1e-5,
            classifier_dropout_prob=dropout,
            id2label=dict(enumerate(labels)),
            label2id={label: index for index, label in enumerate(labels)},
        )
    except (ValueError, TypeError) as error:
        raise ConversionError(f"The checkpoint and its config do not describe a valid XViT: {error}") from None
    # XViT stores the fraction; the original moves exactly hidden_size // SHIFT_DIV channels each way.
    if config.space_time_mixing_channels != hidden_size // xvit["SHIFT_DIV"]:
        raise ConversionError(
            f"XVIT.SHIFT_DIV {xvit['SHIFT_DIV']} cannot be expressed exactly for hidden size {hidden_size}."
        )
    return config


# --- Labels, processor, output folder ----------------------------------------------------------------------------


def training_dataset(original_config: Mapping[str, Any], num_labels: int) -> str:
    """The training data set, named like the shipped label sets when it is one of them (kinetics600, ssv2, ...)."""
    dataset = str(original_config["TRAIN"]["DATASET"]).lower()
    return dataset if dataset == "ssv2" else f"{dataset}{num_labels}"


def resolve_labels(spec: str | None, original_config: Mapping[str, Any], num_labels: int) -> list[str] | None:
    """The class names for `--labels spec`; without it, the shipped set matching the training data set, if any."""
    if spec is None:
        dataset = training_dataset(original_config, num_labels)
        return load_labels(dataset) if dataset in KNOWN_LABEL_SETS else None
    labels = load_labels(spec)
    if len(labels) != num_labels:
        raise ConversionError(f"--labels {spec} has {len(labels)} names but the checkpoint has {num_labels} classes.")
    return labels


def build_video_processor(original_config: Mapping[str, Any], image_size: int) -> XViTVideoProcessor:
    """The XViTVideoProcessor reproducing this checkpoint's data pipeline (single centre view by default).

    Frames are cropped to `image_size`, the resolution of the checkpoint's position embedding (the released configs
    test at that size, DATA.TEST_CROP_SIZE 224). For one crop, the original's Kinetics loader first resizes the short
    side to DATA.TRAIN_JITTER_SCALES[0] (256), its SSv2 loader to the crop size; three crops always follow a resize to
    the crop size, which the processor does by itself.
    """
    data = original_config["DATA"]
    is_ssv2 = str(original_config["TRAIN"]["DATASET"]).lower() == "ssv2"
    return XViTVideoProcessor(
        num_frames=data["NUM_FRAMES"],
        # SSv2 follows TSN (one frame per equal segment); Kinetics takes evenly spaced frames of a dense clip.
        sampling="segment" if is_ssv2 else "dense",
        sampling_rate=data["SAMPLING_RATE"],
        target_fps=data["TARGET_FPS"],
        size={"shortest_edge": image_size if is_ssv2 else data["TRAIN_JITTER_SCALES"][0]},
        crop_size={"height": image_size, "width": image_size},
        image_mean=list(data["MEAN"]),
        image_std=list(data["STD"]),
        scale_jitter=list(data["TRAIN_JITTER_SCALES"]),
        do_flip=data["RANDOM_FLIP"],
    )


def model_card_inputs(
    checkpoint: Path,
    original_config: Mapping[str, Any],
    xvit_config: XViTConfig,
    dataset: str,
    command: str,
    max_difference: float | None,
    model_id: str,
) -> ModelCardInputs:
    """What the card of a converted checkpoint says: its origin, the conversion command, the published accuracy."""
    check = (
        f"`--verify` compared it with a re-implementation of the original forward pass on a random clip: max |logit"
        f" difference| {max_difference:.2g}."
        if max_difference is not None
        else "It was converted without `--verify`."
    )
    test = original_config["TEST"]
    results: list[CardResult] = reported_results(dataset, xvit_config)
    return ModelCardInputs(
        origin=f"`{checkpoint.name}` from the official XViT release ({ORIGINAL_CODE_URL}, Apache-2.0), trained by the"
        f" authors and converted to Transformers with this repository's converter. {check} The original tested with"
        f" {test['NUM_SPATIAL_CROPS']} spatial x {test['NUM_ENSEMBLE_VIEWS']} temporal views.",
        model_id=model_id,
        command=command,
        dataset=dataset if dataset in DATASETS else None,
        training_data=None
        if dataset in DATASETS
        else f"the data set {original_config['TRAIN']['DATASET']!r} of the checkpoint's training config",
        base_model=BASE_MODEL_HUB_IDS.get(original_config["XVIT"]["BASE_MODEL"]),
        results=results,
    )


# --- Conversion ---------------------------------------------------------------------------------------------------


@torch.no_grad()
def max_difference_to_reference(
    original_state_dict: Mapping[str, torch.Tensor],
    architecture: OriginalXViTArchitecture,
    model: XViTForVideoClassification,
    batch_size: int = 1,
    seed: int = 0,
) -> float:
    """Max |logit difference| between `model` and the original forward pass on a random clip."""
    config = model.config
    generator = torch.Generator().manual_seed(seed)
    shape = (batch_size, config.num_frames, config.num_channels, config.image_size, config.image_size)
    pixel_values = torch.randn(shape, generator=generator)
    expected = original_xvit_forward(original_state_dict, architecture, pixel_values.transpose(1, 2))
    actual = model.eval()(pixel_values=pixel_values).logits
    return (actual - expected).abs().max().item()


def conversion_command(checkpoint: Path, output_dir: Path, config, labels, num_attention_heads, verify) -> str:
    """The command that converts `checkpoint` this way, with file names only (no local paths), for the card."""
    options = [("--checkpoint", checkpoint.name), ("--output-dir", output_dir.name)]
    options += [
        (flag, str(value))
        for flag, value in (
            ("--config", config and Path(config).name),
            ("--labels", labels),
            ("--num-attention-heads", num_attention_heads),
        )
        if value is not None
    ]
    words = [word for option in options for word in option] + (["--verify"] if verify else [])
    return shlex.join(["python", "-m", "modeling_xvit.conversion.original", *words])


def convert_original_checkpoint(
    checkpoint: str | os.PathLike,
    output_dir: str | os.PathLike,
    config: str | os.PathLike | None = None,
    labels: str | None = None,
    num_attention_heads: int | None = None,
    verify: bool = False,
    check_folder: bool = False,
    model_id: str | None = None,
) -> Path:
    """Convert `checkpoint` into the Hub model folder `output_dir`; nothing is written when any step fails.

    `verify` compares the converted model with the original forward pass; `check_folder` runs the Hub checks of
    `modeling_xvit.hub.verify` on the folder before it is moved into place (the command line does by default);
    `model_id` is the Hub id the card's examples use (default: the folder's name).
    """
    output_dir = check_output_dir(output_dir)
    checkpoint = Path(checkpoint)
    state_dict, stored_config = load_checkpoint(checkpoint)
    if config is not None:
        if not Path(config).is_file():
            raise ConversionError(f"--config {config} does not exist or is not a file.")
        original_config = parse_original_config(Path(config).read_text(encoding="utf-8"), source=str(config))
    else:
        original_config = parse_original_config(stored_config)
    converted = convert_original_state_dict(state_dict)

    check_required_keys(state_dict)
    num_labels = state_dict["consensus.mlp_head.4.weight"].shape[0]
    label_names = resolve_labels(labels, original_config, num_labels)
    xvit_config = infer_xvit_config(state_dict, original_config, num_attention_heads, label_names)
    model = XViTForVideoClassification(xvit_config).eval()
    load_converted_weights(model, converted)

    difference = None
    if verify:
        architecture = original_architecture(original_config, xvit_config.num_attention_heads)
        difference = max_difference_to_reference(state_dict, architecture, model)
        if not difference <= VERIFY_TOLERANCE:
            raise ConversionError(
                f"Verification failed: the converted model's logits differ from the original forward pass by"
                f" {difference:.3g} (tolerance {VERIFY_TOLERANCE}); nothing was written."
            )
        print(f"Verified: max |logit difference| to the original forward pass = {difference:.3g}")

    command = conversion_command(checkpoint, output_dir, config, labels, num_attention_heads, verify)
    dataset = training_dataset(original_config, num_labels)
    card = model_card_inputs(
        checkpoint, original_config, xvit_config, dataset, command, difference, model_id or output_dir.name
    )
    processor = build_video_processor(original_config, xvit_config.image_size)
    return write_hub_folder(output_dir, model, card, processor, check=check_hub_folder if check_folder else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="Original checkpoint (.pth), e.g. xvit_b16_16_k600.pth.")
    parser.add_argument("--output-dir", required=True, help="Folder to create; it must not exist or be empty.")
    parser.add_argument("--config", help="Original training YAML; defaults to the `cfg` stored in the checkpoint.")
    parser.add_argument(
        "--labels",
        help=f"Class names: one of {', '.join(KNOWN_LABEL_SETS)} or a file with one name per line"
        " (default: from the config's data set and class count).",
    )
    parser.add_argument(
        "--num-attention-heads",
        type=int,
        help="Backbone heads; required when XVIT.BASE_MODEL does not name a standard ViT size (tiny, small, base,"
        " large, huge) of the checkpoint's hidden size.",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help=f"Compare with the original forward pass on a random clip; refuse to write above {VERIFY_TOLERANCE}.",
    )
    add_folder_arguments(parser)
    args = parser.parse_args(argv)

    def convert() -> Path:
        output_dir = convert_original_checkpoint(
            args.checkpoint,
            args.output_dir,
            args.config,
            args.labels,
            args.num_attention_heads,
            args.verify,
            check_folder=not args.skip_folder_check,
            model_id=args.push_to_hub,
        )
        return publish_if_asked(output_dir, args)

    return run_conversion(convert)


if __name__ == "__main__":
    sys.exit(main())
