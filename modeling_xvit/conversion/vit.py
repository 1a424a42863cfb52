"""Initialise XViT from an image ViT, as the paper does (ImageNet-21k ViT-B/16).

    python -m modeling_xvit.conversion.vit --vit path/to/vit-base-patch16-224-in21k --output-dir xvit-init \\
        --num-frames 16 --labels ssv2 --base-model google/vit-base-patch16-224-in21k

The source is a Transformers `ViTModel` folder or a timm ViT state dict (keys `patch_embed.proj`, `cls_token`,
`pos_embed`, `blocks.{i}.norm1/attn.qkv/attn.proj/norm2/mlp.fc1/mlp.fc2`, `norm`). The patch embedding, position
embedding (bicubically resized when the frame size differs), blocks and final norm are copied; the temporal embedding
is zero, so the new model starts as the image ViT applied to every frame; the temporal-attention head and the
classifier are freshly initialised. The output is a complete Hub folder (`modeling_xvit.hub.folder.write_hub_folder`),
with a video processor for the chosen frame count and size, checked in a fresh process unless --skip-folder-check;
--push-to-hub uploads it.
"""

import argparse
import math
import os
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from modeling_xvit import XViTConfig, XViTForVideoClassification, XViTModel
from modeling_xvit.conversion.original import (
    backbone_num_attention_heads,
    check_weights,
    convert_original_state_dict,
    load_checkpoint,
    load_converted_weights,
    load_safetensors,
)
from modeling_xvit.errors import ConversionError, run_conversion
from modeling_xvit.hub.card import ModelCardInputs
from modeling_xvit.hub.folder import check_output_dir, write_hub_folder
from modeling_xvit.hub.upload import add_folder_arguments, publish_if_asked
from modeling_xvit.hub.verify import check_hub_folder
from modeling_xvit.labels import load_labels

# timm parameters of the image classifier, which a video model does not use.
TIMM_IMAGE_HEAD_PREFIXES = ("head.", "pre_logits.")
# XViTModel parameters that an image ViT does not have: they keep their fresh initialisation.
VIDEO_ONLY_PREFIXES = ("temporal_aggregation.",)


def resize_position_embeddings(position_embeddings: torch.Tensor, grid_size: int) -> torch.Tensor:
    """`(1, 1 + n * n, D)` -> `(1, 1 + grid_size ** 2, D)`: bicubic resize of the patch grid, CLS entry kept."""
    stored = math.isqrt(position_embeddings.shape[1] - 1)
    if stored * stored + 1 != position_embeddings.shape[1]:
        raise ConversionError(
            f"The position embedding {tuple(position_embeddings.shape)} is not 1 (CLS) + a square grid of patches."
        )
    if stored == grid_size:
        return position_embeddings
    patch_positions = position_embeddings[:, 1:].reshape(1, stored, stored, -1).permute(0, 3, 1, 2)
    patch_positions = F.interpolate(patch_positions, size=(grid_size, grid_size), mode="bicubic", align_corners=False)
    return torch.cat([position_embeddings[:, :1], patch_positions.flatten(2).transpose(1, 2)], dim=1)


def _check_weight_files(folder: Path) -> None:
    """Read every weights file of a ViT folder as this converter reads a file (`ViTModel.from_pretrained` would cast
    integer weights silently): safetensors, or a PyTorch file holding nothing but tensors."""
    for path in sorted(folder.glob("*.safetensors")):
        load_safetensors(path)
    for path in sorted(folder.glob("*.bin")):
        load_checkpoint(path)


def _from_transformers_vit(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from transformers import ViTModel

    _check_weight_files(folder)
    try:
        # Also renames the weights of older Transformers versions. XViT has no pooler: not building one keeps a ViT
        # saved without it from being reported as missing weights.
        vit = ViTModel.from_pretrained(folder, add_pooling_layer=False)
    except (OSError, ValueError, RuntimeError) as error:
        raise ConversionError(f"{folder} does not load as a Transformers ViTModel: {error}") from None
    config = vit.config
    architecture = {
        name: getattr(config, name)
        for name in (
            "image_size",
            "patch_size",
            "num_channels",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "hidden_act",
            "layer_norm_eps",  # 1e-12 in Transformers ViT configs, 1e-6 in timm: each model keeps its own
            "qkv_bias",
        )
    }
    # XViTModel uses ViTModel's names for everything they share; the pooler and mask token have no counterpart.
    weights = {
        key: value
        for key, value in vit.state_dict().items()
        if not key.startswith("pooler.") and key != "embeddings.mask_token"
    }
    return weights, architecture


def _from_timm_vit(
    state_dict: Mapping[str, torch.Tensor], num_attention_heads: int | None, name: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    # timm's ViT keys are the original XViT backbone's keys without `base_model.`: one mapping serves both.
    original_keys = {
        f"base_model.{key}": value for key, value in state_dict.items() if not key.startswith(TIMM_IMAGE_HEAD_PREFIXES)
    }
    for key in ("base_model.patch_embed.proj.weight", "base_model.pos_embed", "base_model.blocks.0.mlp.fc1.weight"):
        if key not in original_keys:
            raise ConversionError(f"Not a timm ViT state dict: it has no {key.removeprefix('base_model.')!r}.")
    weights = {key.removeprefix("xvit."): value for key, value in convert_original_state_dict(original_keys).items()}
    projection = state_dict["patch_embed.proj.weight"]
    hidden_size = projection.shape[0]
    architecture = {
        "image_size": math.isqrt(state_dict["pos_embed"].shape[1] - 1) * projection.shape[-1],
        "patch_size": projection.shape[-1],
        "num_channels": projection.shape[1],
        "hidden_size": hidden_size,
        "num_hidden_layers": len({key.split(".")[1] for key in state_dict if key.startswith("blocks.")}),
        "num_attention_heads": backbone_num_attention_heads(name, hidden_size, num_attention_heads, "the file name"),
        "intermediate_size": state_dict["blocks.0.mlp.fc1.weight"].shape[0],
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-6,
        "qkv_bias": "blocks.0.attn.qkv.bias" in state_dict,
    }
    return weights, architecture


def load_image_vit(
    source: str | os.PathLike | Mapping[str, torch.Tensor], num_attention_heads: int | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Backbone weights under XViTModel's names, and the XViTConfig fields describing the image ViT.

    `source`: a Transformers ViTModel folder, a timm state dict, or a file holding one (.safetensors, .pth, .bin).
    `num_attention_heads` is needed for a timm ViT unless its file is named after a standard ViT of its width (for
    example `vit_base_patch16_224_in21k.pth`): no tensor stores it.
    """
    if isinstance(source, Mapping):
        check_weights(source, "the state dict")
        return _from_timm_vit(source, num_attention_heads)
    path = Path(source)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConversionError(f"{path} is a folder without config.json, not a Transformers ViTModel folder.")
        return _from_transformers_vit(path)
    if path.suffix == ".safetensors" and path.is_file():
        return _from_timm_vit(load_safetensors(path), num_attention_heads, path.stem)
    state_dict, _ = load_checkpoint(path)
    return _from_timm_vit(state_dict, num_attention_heads, path.stem)


def xvit_from_vit(
    source: str | os.PathLike | Mapping[str, torch.Tensor],
    num_frames: int = 16,
    image_size: int | None = None,
    with_classifier: bool = True,
    num_attention_heads: int | None = None,
    **config_kwargs,
) -> XViTForVideoClassification | XViTModel:
    """An XViT whose backbone is the image ViT `source` (see `load_image_vit`).

    Args:
        num_frames: frames per clip.
        image_size: frame size; the position embedding is resized when it differs from the ViT's.
        with_classifier: return XViTForVideoClassification (else the bare XViTModel).
        config_kwargs: any other XViTConfig field (`num_labels` / `id2label`, `space_time_mixing_layers`, ...). The
            temporal-attention head defaults to the backbone's heads and MLP width, the classifier's hidden layer to
            the hidden size, as in the original for ViT-B.
    """
    weights, architecture = load_image_vit(source, num_attention_heads)
    image_size = image_size or architecture["image_size"]
    config = XViTConfig(
        **{
            **architecture,
            "image_size": image_size,
            "num_frames": num_frames,
            "temporal_attention_num_heads": architecture["num_attention_heads"],
            "temporal_attention_intermediate_size": architecture["intermediate_size"],
            "classifier_hidden_size": architecture["hidden_size"],
            **config_kwargs,
        }
    )
    model = XViTForVideoClassification(config) if with_classifier else XViTModel(config)
    backbone = model.xvit if with_classifier else model
    weights["embeddings.position_embeddings"] = resize_position_embeddings(
        weights["embeddings.position_embeddings"], image_size // config.patch_size
    )
    weights["embeddings.temporal_embeddings"] = torch.zeros_like(backbone.embeddings.temporal_embeddings)
    load_converted_weights(backbone, weights, keep_initialised=VIDEO_ONLY_PREFIXES)
    return model


def model_card_inputs(args: argparse.Namespace, output_dir: Path) -> ModelCardInputs:
    """The card of a freshly initialised XViT: where its backbone comes from, and that its head is untrained."""
    words = ["--vit", Path(args.vit).name, "--output-dir", output_dir.name, "--num-frames", str(args.num_frames)]
    for flag, value in (
        ("--image-size", args.image_size),
        ("--labels", args.labels and Path(args.labels).name),
        ("--num-attention-heads", args.num_attention_heads),
        ("--base-model", args.base_model),
    ):
        if value is not None:
            words += [flag, str(value)]
    image_model = args.base_model or Path(args.vit).name
    return ModelCardInputs(
        origin=f"Initialised from the image ViT `{image_model}` as the paper does: the"
        " patch and position embeddings, the transformer blocks and the final norm are the image model's; the temporal"
        " embedding starts at zero, so the model starts as the image ViT applied to every frame; the"
        " temporal-attention head and the classifier are freshly initialised.",
        model_id=args.push_to_hub or output_dir.name,
        command=shlex.join(["python", "-m", "modeling_xvit.conversion.vit", *words]),
        training_data=f"no video yet; the backbone learnt from the images of `{image_model}`",
        base_model=args.base_model,
        widget=(),  # an untrained head: no example answer means anything
        intended_use="A starting point for fine-tuning on video classification: the temporal-attention head and the"
        " classifier are untrained, so its predictions mean nothing until it is fine-tuned.",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vit", required=True, help="Transformers ViTModel folder, or a timm ViT state-dict file.")
    parser.add_argument("--output-dir", required=True, help="Folder to create; it must not exist or be empty.")
    parser.add_argument("--num-frames", type=int, default=16, help="Frames per clip (default 16).")
    parser.add_argument("--image-size", type=int, help="Frame size (default: the ViT's).")
    parser.add_argument("--labels", help="kinetics400, kinetics600, ssv2, or a file with one class name per line.")
    parser.add_argument(
        "--num-attention-heads",
        type=int,
        help="Heads of a timm ViT; required unless its file name names a standard ViT size of its width.",
    )
    parser.add_argument(
        "--base-model", help="Hub id of the image ViT, for the model card (e.g. google/vit-base-patch16-224-in21k)."
    )
    add_folder_arguments(parser)
    args = parser.parse_args(argv)

    def convert() -> Path:
        output_dir = check_output_dir(args.output_dir)
        labels = load_labels(args.labels) if args.labels else []
        label_fields = {"id2label": dict(enumerate(labels)), "label2id": {name: i for i, name in enumerate(labels)}}
        model = xvit_from_vit(
            args.vit,
            num_frames=args.num_frames,
            image_size=args.image_size,
            num_attention_heads=args.num_attention_heads,
            **(label_fields if labels else {}),
        )
        check = None if args.skip_folder_check else check_hub_folder
        write_hub_folder(output_dir, model, model_card_inputs(args, output_dir), check=check)
        return publish_if_asked(output_dir, args)

    return run_conversion(convert)


if __name__ == "__main__":
    sys.exit(main())
