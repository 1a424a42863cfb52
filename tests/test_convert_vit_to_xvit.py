"""Initialising XViT from image ViT weights (a Transformers ViTModel folder or a timm state dict)."""

import json
import re

import pytest
import torch
from huggingface_hub import ModelCard
from transformers import ViTConfig, ViTModel

from modeling_xvit import XViTForVideoClassification, XViTModel, XViTVideoProcessor
from modeling_xvit.conversion.vit import main, xvit_from_vit
from modeling_xvit.errors import ConversionError
from tests.test_conversion import _MakesADirectoryWhenUnpickled

NUM_FRAMES = 4


@pytest.fixture(scope="module")
def vit() -> ViTModel:
    """A tiny random image ViT with Transformers' default layer-norm eps (1e-12)."""
    torch.manual_seed(0)
    config = ViTConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        image_size=32,
        patch_size=16,
    )
    model = ViTModel(config).eval()
    with torch.no_grad():  # non-trivial layer norms, so that copying them is tested
        for name, parameter in model.named_parameters():
            if "layernorm" in name:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    return model


@pytest.fixture
def vit_folder(vit, tmp_path):
    vit.save_pretrained(tmp_path / "vit")
    return tmp_path / "vit"


def timm_state_dict(vit: ViTModel) -> dict[str, torch.Tensor]:
    """The same weights in timm's layout: fused qkv, timm names, plus the image classifier timm checkpoints carry."""
    weights = vit.state_dict()
    state_dict = {
        "cls_token": weights["embeddings.cls_token"],
        "pos_embed": weights["embeddings.position_embeddings"],
        "patch_embed.proj.weight": weights["embeddings.patch_embeddings.projection.weight"],
        "patch_embed.proj.bias": weights["embeddings.patch_embeddings.projection.bias"],
        "norm.weight": weights["layernorm.weight"],
        "norm.bias": weights["layernorm.bias"],
        "head.weight": torch.randn(1000, 64),
        "head.bias": torch.zeros(1000),
    }
    for i in range(vit.config.num_hidden_layers):
        layer = f"layers.{i}"
        for kind in ("weight", "bias"):
            state_dict[f"blocks.{i}.norm1.{kind}"] = weights[f"{layer}.layernorm_before.{kind}"]
            state_dict[f"blocks.{i}.norm2.{kind}"] = weights[f"{layer}.layernorm_after.{kind}"]
            state_dict[f"blocks.{i}.attn.qkv.{kind}"] = torch.cat(
                [weights[f"{layer}.attention.{name}.{kind}"] for name in ("q_proj", "k_proj", "v_proj")]
            )
            state_dict[f"blocks.{i}.attn.proj.{kind}"] = weights[f"{layer}.attention.o_proj.{kind}"]
            state_dict[f"blocks.{i}.mlp.fc1.{kind}"] = weights[f"{layer}.mlp.fc1.{kind}"]
            state_dict[f"blocks.{i}.mlp.fc2.{kind}"] = weights[f"{layer}.mlp.fc2.{kind}"]
    return state_dict


def per_frame_vit_features(vit: ViTModel, clip: torch.Tensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
    """Each frame's final CLS feature from the image ViT: `(batch, frames, hidden)`."""
    with torch.no_grad():
        outputs = vit(clip.flatten(0, 1), interpolate_pos_encoding=interpolate_pos_encoding)
    return outputs.last_hidden_state[:, 0].view(*clip.shape[:2], -1)


def clip(size: int = 32) -> torch.Tensor:
    return torch.randn(2, NUM_FRAMES, 3, size, size, generator=torch.Generator().manual_seed(1))


def test_from_transformers_vit_starts_as_the_image_vit_on_every_frame(vit, vit_folder):
    # Without mixing, a zero temporal embedding and the copied weights must reproduce the image ViT exactly.
    model = xvit_from_vit(vit_folder, num_frames=NUM_FRAMES, num_labels=3, space_time_mixing_layers=[]).eval()
    assert isinstance(model, XViTForVideoClassification)
    assert model.config.layer_norm_eps == vit.config.layer_norm_eps == 1e-12
    assert model.config.num_attention_heads == 4 and model.config.num_labels == 3
    assert torch.count_nonzero(model.xvit.embeddings.temporal_embeddings) == 0
    video = clip()
    with torch.no_grad():
        frame_features = model.xvit(video).frame_features
    torch.testing.assert_close(frame_features, per_frame_vit_features(vit, video), atol=1e-5, rtol=1e-5)


def test_mixing_is_on_by_default_and_changes_the_features(vit, vit_folder):
    model = xvit_from_vit(vit_folder, num_frames=NUM_FRAMES, with_classifier=False).eval()
    assert isinstance(model, XViTModel) and model.config.space_time_mixing_layers == [0, 1]
    video = clip()
    with torch.no_grad():
        frame_features = model(video).frame_features
    assert (frame_features - per_frame_vit_features(vit, video)).abs().max() > 1e-3


def test_position_embedding_is_resized_for_another_frame_size(vit, vit_folder):
    model = xvit_from_vit(vit_folder, num_frames=NUM_FRAMES, image_size=48, space_time_mixing_layers=[]).eval()
    assert model.config.image_size == 48
    assert model.xvit.embeddings.position_embeddings.shape == (1, 1 + 3 * 3, 64)
    video = clip(48)
    with torch.no_grad():
        frame_features = model.xvit(video).frame_features
    # Transformers' ViT resizes the same way (bicubic) when asked to interpolate.
    expected = per_frame_vit_features(vit, video, interpolate_pos_encoding=True)
    torch.testing.assert_close(frame_features, expected, atol=1e-5, rtol=1e-5)


def test_from_timm_state_dict_file_matches_the_transformers_path(vit, vit_folder, tmp_path):
    torch.save({"model": timm_state_dict(vit)}, tmp_path / "vit_timm.pth")
    from_timm = xvit_from_vit(tmp_path / "vit_timm.pth", num_frames=NUM_FRAMES, num_attention_heads=4, num_labels=3)
    from_transformers = xvit_from_vit(vit_folder, num_frames=NUM_FRAMES, num_labels=3)
    assert from_timm.config.layer_norm_eps == 1e-6  # timm's eps, not Transformers' 1e-12
    timm_weights, transformers_weights = from_timm.state_dict(), from_transformers.state_dict()
    for key in transformers_weights:
        if key.startswith(("xvit.embeddings", "xvit.layers", "xvit.layernorm")):
            torch.testing.assert_close(timm_weights[key], transformers_weights[key], msg=key)


def test_timm_state_dict_with_unknown_keys_is_refused(vit):
    state_dict = {**timm_state_dict(vit), "fc_norm.weight": torch.ones(64)}
    with pytest.raises(ConversionError, match=r"keys this converter does not know.*'base_model.fc_norm.weight'"):
        xvit_from_vit(state_dict, num_frames=NUM_FRAMES, num_attention_heads=4)


def test_timm_head_count_comes_from_a_standard_file_name_or_the_option(vit, tmp_path):
    torch.save(timm_state_dict(vit), tmp_path / "my_vit.pth")
    with pytest.raises(
        ConversionError, match="the file name 'my_vit' names no standard ViT size.*--num-attention-heads"
    ):
        xvit_from_vit(tmp_path / "my_vit.pth", num_frames=NUM_FRAMES)
    # vit_base names 768 channels, not this ViT's 64: still refused rather than guessed.
    torch.save(timm_state_dict(vit), tmp_path / "vit_base_patch16_224.pth")
    with pytest.raises(
        ConversionError, match=r"names ViT-base \(hidden size 768\) while the checkpoint's hidden size is 64"
    ):
        xvit_from_vit(tmp_path / "vit_base_patch16_224.pth", num_frames=NUM_FRAMES)


def test_vit_saved_without_a_pooler_loads_without_a_missing_weights_report(tmp_path, capfd):
    torch.manual_seed(0)
    vit = ViTModel(
        ViTConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=4, intermediate_size=128, image_size=32),
        add_pooling_layer=False,
    )
    vit.save_pretrained(tmp_path / "vit")
    capfd.readouterr()
    xvit_from_vit(tmp_path / "vit", num_frames=NUM_FRAMES)
    output = capfd.readouterr()
    assert "pooler" not in output.out + output.err and "MISSING" not in output.out + output.err


def test_cli_writes_a_complete_hub_folder_with_labels_and_processor(vit_folder, tmp_path):
    exit_code = main(
        [
            f"--vit={vit_folder}",
            f"--output-dir={tmp_path / 'xvit'}",
            f"--num-frames={NUM_FRAMES}",
            "--image-size=48",
            "--labels=ssv2",
            "--base-model=google/vit-base-patch16-224-in21k",
            "--skip-folder-check",
        ]
    )
    assert exit_code == 0
    folder = tmp_path / "xvit"
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModelForVideoClassification"] == "modeling_xvit.XViTForVideoClassification"
    model = XViTForVideoClassification.from_pretrained(folder)
    assert model.config.num_labels == 174 and model.config.num_frames == NUM_FRAMES
    # The processor makes the clips this model takes: its frame count and size.
    processor = XViTVideoProcessor.from_pretrained(folder)
    assert processor.num_frames == NUM_FRAMES and processor.crop_size == {"height": 48, "width": 48}
    assert processor.size == {"shortest_edge": 48}
    assert (folder / "handler.py").is_file()
    card = ModelCard.load(folder / "README.md")
    assert card.data.base_model == "google/vit-base-patch16-224-in21k"
    assert card.data.datasets is None  # the class names are SSv2's, but no video has trained it yet
    assert not card.data.eval_results  # an untrained head has no accuracy
    assert "python -m modeling_xvit.conversion.vit --vit vit --output-dir xvit --num-frames 4" in card.text


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: data[: len(data) // 2], "incomplete metadata"),  # cut off
        (lambda data: (10**15).to_bytes(8, "little") + data[8:], "header too large"),  # header size of 10^15 bytes
        (lambda data: b"", "header too small"),
    ],
)
def test_a_damaged_safetensors_file_is_refused_naming_it(vit, tmp_path, capsys, damage, reason):
    from safetensors.torch import save_file

    path = tmp_path / "vit_tiny.safetensors"
    save_file({key: value.contiguous() for key, value in timm_state_dict(vit).items()}, path)
    path.write_bytes(damage(path.read_bytes()))
    exit_code = main([f"--vit={path}", f"--output-dir={tmp_path / 'xvit'}", "--num-attention-heads=4"])
    errors = capsys.readouterr().err
    assert exit_code == 1 and errors.count("\n") == 1, errors  # before: a SafetensorError traceback
    assert (
        errors.startswith(f"error: {path} cannot be read as safetensors (truncated or corrupt?):") and reason in errors
    )
    assert not (tmp_path / "xvit").exists()


def test_a_vit_folder_with_a_pickled_object_is_refused_and_never_executed(vit, tmp_path, capsys):
    folder = tmp_path / "vit"
    vit.config.save_pretrained(folder)  # the weights in pytorch_model.bin alone, as older ViT folders have them
    marker = tmp_path / "code_ran"
    torch.save({**vit.state_dict(), "extra": _MakesADirectoryWhenUnpickled(marker)}, folder / "pytorch_model.bin")
    capsys.readouterr()
    assert main([f"--vit={folder}", f"--output-dir={tmp_path / 'xvit'}"]) == 1  # before: an UnpicklingError traceback
    errors = capsys.readouterr().err
    assert errors.startswith(f"error: Refusing {folder / 'pytorch_model.bin'}: it contains pickled Python objects")
    assert "Traceback" not in errors and not marker.exists() and not (tmp_path / "xvit").exists()


@pytest.mark.parametrize("kind", ["int64", "nan", "nan in a state dict"])
def test_integer_or_non_finite_vit_weights_are_refused_naming_the_tensor(vit, tmp_path, kind):
    weights = {key: value.clone() for key, value in vit.state_dict().items()}
    name = "layers.1.mlp.fc2.bias"  # saved under its legacy name, which the message gives
    if kind == "int64":
        weights[name] = weights[name].long()
        expected = "encoder.layer.1.output.dense.bias is int64, not floating point"
    else:
        weights[name][3] = float("nan")
        expected = "encoder.layer.1.output.dense.bias holds 1 NaN or infinite values"
    source = tmp_path / "vit"
    vit.save_pretrained(source, state_dict=weights)
    if kind == "nan in a state dict":
        source = timm_state_dict(vit)
        source["blocks.1.mlp.fc2.bias"] = source["blocks.1.mlp.fc2.bias"].clone()  # the fixture's is shared
        source["blocks.1.mlp.fc2.bias"][3] = float("nan")
        expected = "the state dict has weights a model cannot use: blocks.1.mlp.fc2.bias holds 1 NaN or infinite"
    with pytest.raises(ConversionError, match=re.escape(expected)):  # before: cast or copied silently
        xvit_from_vit(source, num_frames=NUM_FRAMES, num_attention_heads=4)
