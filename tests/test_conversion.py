"""Conversion of original XViT checkpoints: tiny checkpoints in the released format, converted and compared with the
original forward pass re-implemented from its description (conversion/original_xvit_reference.py)."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from fake_hub import FakeHub, serve_fake_hub
from huggingface_hub import ModelCard
from safetensors.torch import load_file

from modeling_xvit import XViTForVideoClassification
from modeling_xvit.conversion.original import (
    backbone_num_attention_heads,
    convert_original_checkpoint,
    convert_original_state_dict,
    load_checkpoint,
    main,
    parse_original_config,
    rename_original_key,
)
from modeling_xvit.conversion.original_reference import (
    OriginalXViTArchitecture,
    original_xvit_forward,
    shift_over_time,
)
from modeling_xvit.errors import ConversionError
from modeling_xvit.hub.upload import files_to_upload
from modeling_xvit.hub.verify import Check

HIDDEN, HEADS, PATCH, IMAGE = 64, 4, 16, 32

# Modelled on configs/Kinetics/xvit_B16_16x16_k600.yaml and configs/SSv2/xvit_B16_16x16.yaml, at tiny sizes.
CFG_TEMPLATE = """\
TRAIN:
  ENABLE: True
  DATASET: {dataset}
  BATCH_SIZE: 64
  MIXUP_ALPHA: 0.4
DATA:
  NUM_FRAMES: {num_frames}
  SAMPLING_RATE: 16
  TRAIN_JITTER_SCALES: [36, 40]
  TRAIN_CROP_SIZE: 32
  TEST_CROP_SIZE: 32
  INPUT_CHANNEL_NUM: [3]
  MEAN: [0.5, 0.5, 0.5]
  STD: [0.5, 0.5, 0.5]
  AUTOAUGMENT: True
  RANDOM_FLIP: {random_flip}
XVIT:
  BASE_MODEL: vit_test_patch16_32
  CONSENSUS_TYPE: 'vit'
  USE_XVIT: True
  SHIFT_DIV: {shift_div}
  NUM_SEGMENTS: {num_segments}
  LOCATIONS_LIST: {locations}
TEMPORAL_HEAD:
  HIDDEN_DIM: 64
  NUM_ATTENTION_HEADS: 4
  NUM_HIDDEN_LAYERS: {temporal_layers}
  MLP_DIM: 48
MODEL:
  NUM_CLASSES: {num_classes}
  ARCH: xvit
  MODEL_NAME: XVIT
  DROPOUT_RATE: 0.5
TEST:
  ENABLE: True
  DATASET: {dataset}
  NUM_ENSEMBLE_VIEWS: 1
  NUM_SPATIAL_CROPS: 3
NUM_GPUS: 8
"""

K600_LIKE = dict(dataset="kinetics", num_frames=16, num_segments=8, shift_div=8, locations=list(range(15)))
SSV2_LIKE = dict(dataset="ssv2", num_frames=16, num_segments=16, shift_div=4, locations=list(range(15)))
PARTIAL_MIXING = dict(dataset="kinetics", num_frames=8, num_segments=4, shift_div=8, locations=[1])
CASES = {
    # name: (cfg values, state-dict shape values)
    "k600": (K600_LIKE, dict(num_classes=600, num_layers=2)),
    "ssv2": (SSV2_LIKE, dict(num_classes=174, num_layers=2)),
    "mixing_in_layer_1_of_3": (PARTIAL_MIXING, dict(num_classes=5, num_layers=3, temporal_layers=2, qkv_bias=False)),
}


def original_cfg(
    dataset: str,
    num_frames: int,
    num_segments: int,
    shift_div: int,
    locations: list[int],
    num_classes: int,
    temporal_layers: int = 1,
) -> str:
    return CFG_TEMPLATE.format(
        dataset=dataset,
        num_frames=num_frames,
        num_segments=num_segments,
        shift_div=shift_div,
        locations=locations,
        num_classes=num_classes,
        temporal_layers=temporal_layers,
        random_flip=dataset != "ssv2",
    )


def original_state_dict(
    num_classes: int,
    num_layers: int,
    temporal_layers: int = 1,
    num_temporal_embeddings: int = 8,
    qkv_bias: bool = True,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Random weights in the released key layout (`new_fc` included, as the training code saves it)."""
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape: int, scale: float = 0.1) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * scale

    def norm(prefix: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}.weight": 1 + rand(HIDDEN), f"{prefix}.bias": rand(HIDDEN)}

    def block(prefix: str, with_qkv_bias: bool) -> dict[str, torch.Tensor]:
        weights = {**norm(f"{prefix}.norm1"), **norm(f"{prefix}.norm2")}
        weights[f"{prefix}.attn.qkv.weight"] = rand(3 * HIDDEN, HIDDEN, scale=0.2)
        if with_qkv_bias:
            weights[f"{prefix}.attn.qkv.bias"] = rand(3 * HIDDEN)
        weights[f"{prefix}.attn.proj.weight"], weights[f"{prefix}.attn.proj.bias"] = rand(HIDDEN, HIDDEN), rand(HIDDEN)
        weights[f"{prefix}.mlp.fc1.weight"], weights[f"{prefix}.mlp.fc1.bias"] = (
            rand(4 * HIDDEN, HIDDEN),
            rand(4 * HIDDEN),
        )
        weights[f"{prefix}.mlp.fc2.weight"], weights[f"{prefix}.mlp.fc2.bias"] = rand(HIDDEN, 4 * HIDDEN), rand(HIDDEN)
        return weights

    state_dict = {
        "base_model.cls_token": rand(1, 1, HIDDEN),
        "base_model.pos_embed": rand(1, 1 + (IMAGE // PATCH) ** 2, HIDDEN),
        "base_model.temp_embed": rand(1, num_temporal_embeddings, 1, HIDDEN),
        "base_model.patch_embed.proj.weight": rand(HIDDEN, 3, PATCH, PATCH, scale=0.05),
        "base_model.patch_embed.proj.bias": rand(HIDDEN),
        **norm("base_model.norm"),
        "consensus.cls_token": rand(1, 1, HIDDEN),
        **norm("consensus.mlp_head.0"),
        "consensus.mlp_head.1.weight": rand(48, HIDDEN),
        "consensus.mlp_head.1.bias": rand(48),
        "consensus.mlp_head.4.weight": rand(num_classes, 48),
        "consensus.mlp_head.4.bias": rand(num_classes),
        "new_fc.weight": rand(num_classes, HIDDEN),
        "new_fc.bias": rand(num_classes),
    }
    for index in range(num_layers):
        state_dict.update(block(f"base_model.blocks.{index}", qkv_bias))
    for index in range(temporal_layers):
        state_dict.update(block(f"consensus.temporal_encoder.{index}", False))
    return state_dict


def case(name: str) -> tuple[dict[str, torch.Tensor], str]:
    cfg_values, shape_values = CASES[name]
    state_dict = original_state_dict(**shape_values)
    cfg = original_cfg(
        **cfg_values, num_classes=shape_values["num_classes"], temporal_layers=shape_values.get("temporal_layers", 1)
    )
    return state_dict, cfg


def save_training_checkpoint(path: Path, state_dict: dict[str, torch.Tensor], cfg: str) -> Path:
    optimizer_state = {"state": {}, "param_groups": [{"lr": 0.03, "momentum": 0.9, "params": [0, 1]}]}
    torch.save({"epoch": 30, "model_state": state_dict, "optimizer_state": optimizer_state, "cfg": cfg}, path)
    return path


def reference_architecture(cfg: str) -> OriginalXViTArchitecture:
    xvit = parse_original_config(cfg)["XVIT"]
    return OriginalXViTArchitecture(
        num_attention_heads=HEADS,
        temporal_num_attention_heads=4,
        num_segments=xvit["NUM_SEGMENTS"],
        shift_div=xvit["SHIFT_DIV"],
        locations=tuple(xvit["LOCATIONS_LIST"]),
    )


def random_clip(num_frames: int, batch_size: int = 2) -> torch.Tensor:
    """`(batch, frames, 3, H, W)`, the Transformers layout."""
    return torch.randn(batch_size, num_frames, 3, IMAGE, IMAGE, generator=torch.Generator().manual_seed(1))


# --- The reference itself ---------------------------------------------------------------------------------------


def test_reference_shift_moves_channels_inside_segments_and_pads_with_zeros():
    # 4 frames in segments of 2; 2 heads of 2 channels = 4 channels, fold 1; value = 10 * frame + channel.
    frames = torch.arange(4).view(4, 1, 1, 1, 1) * 10.0
    channels = torch.arange(4.0).view(1, 1, 1, 2, 2)  # (frame, token, ..., head, head_dim) before the permute
    keys = (frames + channels).view(4, 1, 2, 2).permute(0, 2, 1, 3)  # (frames, heads, tokens, head_dim)
    mixed = shift_over_time(keys, num_segments=2, fold=1).permute(0, 2, 1, 3).reshape(4, 4)
    expected = torch.tensor(
        [
            [10.0, 0.0, 2.0, 3.0],  # frame 0: channel 0 from frame 1, channel 1 from frame -1 (outside: zero)
            [0.0, 1.0, 12.0, 13.0],  # frame 1: channel 0 from frame 2 (next segment: zero), channel 1 from frame 0
            [30.0, 0.0, 22.0, 23.0],
            [0.0, 21.0, 32.0, 33.0],
        ]
    )
    torch.testing.assert_close(mixed, expected)


def test_reference_depends_on_mixing_and_temporal_embedding():
    """The comparisons below would not notice a missing mixing or temporal embedding if these did not matter."""
    state_dict, cfg = case("k600")
    video = random_clip(16).transpose(1, 2)
    architecture = reference_architecture(cfg)
    logits = original_xvit_forward(state_dict, architecture, video)
    without_mixing = dataclasses.replace(architecture, locations=())
    assert (logits - original_xvit_forward(state_dict, without_mixing, video)).abs().max() > 1e-2
    zero_temporal = {**state_dict, "base_model.temp_embed": torch.zeros_like(state_dict["base_model.temp_embed"])}
    assert (logits - original_xvit_forward(zero_temporal, architecture, video)).abs().max() > 1e-2


# --- Key mapping --------------------------------------------------------------------------------------------------


def test_key_mapping_renames_every_released_key_and_splits_qkv():
    state_dict, _ = case("k600")
    converted = convert_original_state_dict(state_dict)
    assert "new_fc.weight" not in converted and not any("qkv" in key for key in converted)
    assert rename_original_key("base_model.blocks.11.attn.proj.weight") == "xvit.layers.11.attention.o_proj.weight"
    assert rename_original_key("consensus.mlp_head.4.bias") == "classifier.out_proj.bias"
    qkv = state_dict["base_model.blocks.1.attn.qkv.weight"]
    torch.testing.assert_close(converted["xvit.layers.1.attention.k_proj.weight"], qkv[HIDDEN : 2 * HIDDEN])
    torch.testing.assert_close(
        converted["xvit.layers.1.attention.v_proj.bias"], state_dict["base_model.blocks.1.attn.qkv.bias"][2 * HIDDEN :]
    )


@pytest.mark.parametrize(
    ("base_model", "hidden_size", "heads"),
    [("vit_base_patch16_224_in21k", 768, 12), ("vit_large_patch16_224_in21k", 1024, 16), ("vit_tiny_patch16", 192, 3)],
)
def test_backbone_heads_follow_a_standard_base_model_name(base_model, hidden_size, heads):
    assert backbone_num_attention_heads(base_model, hidden_size) == heads


@pytest.mark.parametrize(
    ("base_model", "hidden_size", "reason"),
    [
        ("vit_test_patch16", 64, "names no standard ViT size"),
        ("vit_base_patch16", 64, r"names ViT-base \(hidden size 768\)"),
    ],
)
def test_head_count_is_never_guessed(base_model, hidden_size, reason):
    # A 4-head checkpoint converted as 1 head would pass --verify: the reference forward pass shares the count.
    with pytest.raises(ConversionError, match=rf"{reason} .*pass --num-attention-heads N.*--verify cannot catch"):
        backbone_num_attention_heads(base_model, hidden_size)
    assert backbone_num_attention_heads(base_model, hidden_size, override=4) == 4


def test_checkpoint_of_a_non_standard_backbone_needs_the_head_count(tmp_path, capsys):
    state_dict, cfg = case("mixing_in_layer_1_of_3")
    checkpoint = save_training_checkpoint(tmp_path / "xvit.pth", state_dict, cfg)
    assert main([f"--checkpoint={checkpoint}", f"--output-dir={tmp_path / 'out'}", "--verify"]) == 1
    assert "error: The backbone's head count is stored in no tensor, and XVIT.BASE_MODEL 'vit_test_patch16_32'" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "out").exists()


# --- Conversion matches the original forward pass ------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_converted_model_matches_original_forward(name, tmp_path):
    state_dict, cfg = case(name)
    checkpoint = save_training_checkpoint(tmp_path / "xvit.pth", state_dict, cfg)
    output_dir = convert_original_checkpoint(
        checkpoint, tmp_path / "converted", num_attention_heads=HEADS, verify=True
    )

    model = XViTForVideoClassification.from_pretrained(output_dir).eval()
    clip = random_clip(model.config.num_frames)
    with torch.no_grad():
        logits = model(pixel_values=clip).logits
    expected = original_xvit_forward(state_dict, reference_architecture(cfg), clip.transpose(1, 2))
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=0)

    cfg_values, shape_values = CASES[name]
    config = model.config
    assert config.num_frames == cfg_values["num_frames"]
    assert config.space_time_mixing_layers == [i for i in cfg_values["locations"] if i < shape_values["num_layers"]]
    assert config.space_time_mixing_channels == HIDDEN // cfg_values["shift_div"]
    assert config.space_time_mixing_segment_length == cfg_values["num_segments"]
    assert config.num_temporal_embeddings == 8
    assert config.temporal_attention_num_layers == shape_values.get("temporal_layers", 1)
    assert config.qkv_bias == shape_values.get("qkv_bias", True)


def test_output_folder_holds_weights_processor_card_and_code(tmp_path):
    state_dict, cfg = case("ssv2")
    checkpoint = save_training_checkpoint(tmp_path / "xvit_b16_16_ss2.pth", state_dict, cfg)
    output_dir = convert_original_checkpoint(checkpoint, tmp_path / "converted", num_attention_heads=HEADS)

    names = {path.name for path in output_dir.iterdir()}
    assert {"config.json", "model.safetensors", "video_preprocessor_config.json", "README.md", "handler.py"} <= names
    assert {"modeling_xvit.py", "configuration_xvit.py", "video_processing_xvit.py"} <= names
    assert not any(name.endswith((".bin", ".pth", ".pt")) for name in names)
    assert not any(name.startswith(".converted") for name in os.listdir(tmp_path))  # no staging folder left

    config = json.loads((output_dir / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_xvit.XViTConfig",
        "AutoModel": "modeling_xvit.XViTModel",
        "AutoModelForVideoClassification": "modeling_xvit.XViTForVideoClassification",
    }
    assert config["id2label"]["0"] == "Approaching something with your camera"  # the shipped SSv2 list
    assert not any(key.startswith("new_fc") for key in load_file(output_dir / "model.safetensors"))

    processor = json.loads((output_dir / "video_preprocessor_config.json").read_text())
    assert processor["sampling"] == "segment" and processor["num_frames"] == 16 and processor["do_flip"] is False
    assert processor["crop_size"] == {"height": IMAGE, "width": IMAGE}
    assert processor["size"] == {"shortest_edge": IMAGE}  # the original's SSv2 test loader resizes to the crop size
    assert processor["image_mean"] == [0.5, 0.5, 0.5] and processor["image_std"] == [0.5, 0.5, 0.5]
    assert "auto_map" in processor

    card = ModelCard.load(output_dir / "README.md")
    assert card.data.license == "apache-2.0" and card.data.datasets == ["something-something-v2"]
    assert card.data.base_model is None  # vit_test_patch16_32 is no published model
    assert "xvit_b16_16_ss2.pth" in card.text and "@inproceedings{bulat2021space" in card.text
    assert (
        "python -m modeling_xvit.conversion.original --checkpoint xvit_b16_16_ss2.pth --output-dir converted"
        in card.text
    )


def test_kinetics_checkpoint_gets_dense_sampling_and_kinetics600_labels(tmp_path):
    state_dict, cfg = case("k600")
    checkpoint = save_training_checkpoint(tmp_path / "xvit.pth", state_dict, cfg)
    output_dir = convert_original_checkpoint(checkpoint, tmp_path / "converted", num_attention_heads=HEADS)
    processor = json.loads((output_dir / "video_preprocessor_config.json").read_text())
    assert processor["sampling"] == "dense" and processor["sampling_rate"] == 16 and processor["do_flip"] is True
    # One Kinetics test crop follows a resize of the short side to DATA.TRAIN_JITTER_SCALES[0], as in the original.
    assert processor["size"] == {"shortest_edge": 36} and processor["crop_size"] == {"height": IMAGE, "width": IMAGE}
    config = json.loads((output_dir / "config.json").read_text())
    assert len(config["id2label"]) == 600 and config["id2label"]["1"] == "acting in play"
    # A Kinetics model: the card's widget shows Kinetics clips, and it says what the model was trained on.
    card = ModelCard.load(output_dir / "README.md")
    assert [example["example_title"] for example in card.data.widget] == ["Archery", "Bowling"]
    assert card.data.datasets == ["kinetics-600"] and "**Training data:** Kinetics-600." in card.text


def test_a_checkpoint_of_another_data_set_gets_no_made_up_data_set_id_nor_kinetics_widget(tmp_path):
    state_dict, cfg = case("mixing_in_layer_1_of_3")  # DATASET kinetics with 5 classes: no known data set
    checkpoint = save_training_checkpoint(tmp_path / "xvit.pth", state_dict, cfg)
    output_dir = convert_original_checkpoint(checkpoint, tmp_path / "converted", num_attention_heads=HEADS)
    card = ModelCard.load(output_dir / "README.md")
    assert card.data.datasets is None and card.data.get("widget") is None  # before: kinetics5 and Kinetics clips
    assert "**Training data:** the data set 'kinetics' of the checkpoint's training config." in card.text


def test_bare_state_dict_with_module_prefix_and_config_file(tmp_path):
    state_dict, cfg = case("mixing_in_layer_1_of_3")
    checkpoint = tmp_path / "bare.pth"
    torch.save({f"module.{key}": value for key, value in state_dict.items()}, checkpoint)
    (tmp_path / "xvit.yaml").write_text(cfg)
    labels = tmp_path / "classes.txt"
    labels.write_text("".join(f"class {index}\n" for index in range(5)))
    exit_code = main(
        [
            f"--checkpoint={checkpoint}",
            f"--output-dir={tmp_path / 'converted'}",
            f"--config={tmp_path / 'xvit.yaml'}",
            f"--labels={labels}",
            f"--num-attention-heads={HEADS}",
            "--verify",
            "--skip-folder-check",
        ]
    )
    assert exit_code == 0
    model = XViTForVideoClassification.from_pretrained(tmp_path / "converted")
    assert model.config.id2label[4] == "class 4"
    clip = random_clip(8)
    with torch.no_grad():
        logits = model(pixel_values=clip).logits
    expected = original_xvit_forward(state_dict, reference_architecture(cfg), clip.transpose(1, 2))
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=0)


@pytest.mark.slow
def test_loads_in_a_fresh_process_from_the_folder_alone(tmp_path):
    state_dict, cfg = case("mixing_in_layer_1_of_3")
    checkpoint = save_training_checkpoint(tmp_path / "xvit.pth", state_dict, cfg)
    output_dir = convert_original_checkpoint(checkpoint, tmp_path / "converted", num_attention_heads=HEADS)
    clip = random_clip(8)
    torch.save(clip, tmp_path / "clip.pt")
    expected = original_xvit_forward(state_dict, reference_architecture(cfg), clip.transpose(1, 2))

    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["modeling_xvit"] = None  # the installed package must not be needed
        import torch
        from transformers import AutoModelForVideoClassification, AutoVideoProcessor

        model = AutoModelForVideoClassification.from_pretrained({str(output_dir)!r}, trust_remote_code=True)
        processor = AutoVideoProcessor.from_pretrained({str(output_dir)!r}, trust_remote_code=True)
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        assert type(processor).__name__ == "XViTVideoProcessor" and processor.num_frames == 8
        with torch.no_grad():
            logits = model(pixel_values=torch.load({str(tmp_path / "clip.pt")!r}, weights_only=True)).logits
        torch.save(logits, {str(tmp_path / "logits.pt")!r})
        """
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    logits = torch.load(tmp_path / "logits.pt", weights_only=True)
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=0)


# --- Refusals: clear errors, nothing written ----------------------------------------------------------------------


def test_truncated_checkpoint_is_refused(tmp_path):
    state_dict, cfg = case("mixing_in_layer_1_of_3")
    checkpoint = save_training_checkpoint(tmp_path / "xvit.pth", state_dict, cfg)
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    with pytest.raises(ConversionError, match="xvit.pth cannot be read as a PyTorch checkpoint"):
        convert_original_checkpoint(checkpoint, tmp_path / "converted", num_attention_heads=HEADS)
    assert not (tmp_path / "converted").exists()


class _MakesADirectoryWhenUnpickled:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_checkpoint_with_a_pickled_object_is_refused_and_never_executed(tmp_path):
    state_dict, cfg = case("mixing_in_layer_1_of_3")
    marker = tmp_path / "code_ran"
    checkpoint = tmp_path / "evil.pth"
    torch.save({"model_state": state_dict, "cfg": cfg, "extra": _MakesADirectoryWhenUnpickled(marker)}, checkpoint)
    with pytest.raises(ConversionError, match=r"Refusing .*evil.pth.*nothing from it was executed.*mkdir"):
        convert_original_checkpoint(checkpoint, tmp_path / "converted", num_attention_heads=HEADS)
    assert not marker.exists()
    assert not (tmp_path / "converted").exists()


def test_unknown_keys_are_listed(tmp_path):
    state_dict, cfg = case("mixing_in_layer_1_of_3")
    state_dict["base_model.blocks.0.norm_1.weight"] = state_dict.pop("base_model.blocks.0.norm1.weight")
    state_dict["base_model.pre_logits.fc.weight"] = torch.zeros(HIDDEN, HIDDEN)
    checkpoint = save_training_checkpoint(tmp_path / "xvit.pth", state_dict, cfg)
    with pytest.raises(ConversionError) as error:
        convert_original_checkpoint(checkpoint, tmp_path / "converted", num_attention_heads=HEADS)
    assert "2 keys this converter does not know" in str(error.value)
    assert "'base_model.blocks.0.norm_1.weight'" in str(error.value)
    assert "'base_model.pre_logits.fc.weight'" in str(error.value)
    assert not (tmp_path / "converted").exists()


def test_missing_keys_are_listed(tmp_path):
    state_dict, cfg = case("mixing_in_layer_1_of_3")
    del state_dict["base_model.norm.weight"], state_dict["base_model.blocks.2.attn.proj.bias"]
    checkpoint = save_training_checkpoint(tmp_path / "xvit.pth", state_dict, cfg)
    with pytest.raises(
        ConversionError, match=r"missing: \['xvit.layernorm.weight', 'xvit.layers.2.attention.o_proj.bias'\]"
    ):
        convert_original_checkpoint(checkpoint, tmp_path / "converted", num_attention_heads=HEADS)
    assert not (tmp_path / "converted").exists()


def test_labels_file_with_the_wrong_number_of_classes_is_refused(tmp_path, capsys):
    state_dict, cfg = case("mixing_in_layer_1_of_3")
    checkpoint = save_training_checkpoint(tmp_path / "xvit.pth", state_dict, cfg)
    labels = tmp_path / "classes.txt"
    labels.write_text("a\nb\nc\n")
    exit_code = main(
        [
            f"--checkpoint={checkpoint}",
            f"--output-dir={tmp_path / 'converted'}",
            f"--labels={labels}",
            "--num-attention-heads=4",
        ]
    )
    assert exit_code == 1
    assert f"--labels {labels} has 3 names but the checkpoint has 5 classes" in capsys.readouterr().err
    assert not (tmp_path / "converted").exists()


def test_failed_verification_writes_nothing(tmp_path, monkeypatch):
    import modeling_xvit.conversion.original as converter

    state_dict, cfg = case("mixing_in_layer_1_of_3")
    checkpoint = save_training_checkpoint(tmp_path / "xvit.pth", state_dict, cfg)
    # A reference that disagrees by 1e-3 stands for a port that drifted from the original.
    monkeypatch.setattr(converter, "original_xvit_forward", lambda *args: original_xvit_forward(*args) + 1e-3)
    with pytest.raises(ConversionError, match="Verification failed.*differ .* by 0.001"):
        convert_original_checkpoint(checkpoint, tmp_path / "converted", num_attention_heads=HEADS, verify=True)
    assert not (tmp_path / "converted").exists()
    assert os.listdir(tmp_path) == ["xvit.pth"]


def test_failure_while_writing_leaves_no_partial_folder(tmp_path, monkeypatch):
    state_dict, cfg = case("mixing_in_layer_1_of_3")
    checkpoint = save_training_checkpoint(tmp_path / "xvit.pth", state_dict, cfg)
    # handler.py is written into the staging folder with the weights, the processor and the code files.
    monkeypatch.setattr("modeling_xvit.hub.folder.HANDLER_SOURCE", tmp_path / "gone" / "handler.py")
    with pytest.raises(OSError, match="handler.py"):
        convert_original_checkpoint(checkpoint, tmp_path / "converted", num_attention_heads=HEADS)
    assert os.listdir(tmp_path) == ["xvit.pth"]


def test_non_empty_output_folder_is_refused(tmp_path):
    state_dict, cfg = case("mixing_in_layer_1_of_3")
    checkpoint = save_training_checkpoint(tmp_path / "xvit.pth", state_dict, cfg)
    (tmp_path / "converted").mkdir()
    (tmp_path / "converted" / "keep.txt").write_text("mine")
    with pytest.raises(ConversionError, match="already exists and is not empty"):
        convert_original_checkpoint(checkpoint, tmp_path / "converted", num_attention_heads=HEADS)
    assert os.listdir(tmp_path / "converted") == ["keep.txt"]


def test_unwritable_output_location_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    import modeling_xvit.conversion.original as converter

    def must_not_run(path):
        raise AssertionError("the checkpoint was read before the output location was checked")

    (tmp_path / "a_file").write_text("not a folder")
    monkeypatch.setattr(converter, "load_checkpoint", must_not_run)
    output_dir = tmp_path / "a_file" / "converted"
    assert main(["--checkpoint=missing.pth", f"--output-dir={output_dir}", "--num-attention-heads=4"]) == 1
    assert f"error: Cannot write the output folder {output_dir}: {tmp_path / 'a_file'} does not accept" in (
        capsys.readouterr().err
    )


def test_keys_that_collide_once_the_module_prefix_is_removed_are_refused(tmp_path):
    state_dict, cfg = case("mixing_in_layer_1_of_3")
    zeros = torch.zeros_like(state_dict["base_model.cls_token"])
    checkpoint = save_training_checkpoint(
        tmp_path / "xvit.pth", {**state_dict, "module.base_model.cls_token": zeros}, cfg
    )
    with pytest.raises(
        ConversionError,
        match=r"holds both 'base_model.cls_token' and 'module.base_model.cls_token', which name the same",
    ):
        load_checkpoint(checkpoint)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.complex64])
def test_weights_that_are_not_floating_point_are_refused_naming_the_tensor(tmp_path, capsys, dtype):
    state_dict, cfg = case("mixing_in_layer_1_of_3")
    state_dict["base_model.blocks.1.mlp.fc1.weight"] = state_dict["base_model.blocks.1.mlp.fc1.weight"].to(dtype)
    checkpoint = save_training_checkpoint(tmp_path / "xvit.pth", state_dict, cfg)
    arguments = [f"--checkpoint={checkpoint}", f"--output-dir={tmp_path / 'out'}", f"--num-attention-heads={HEADS}"]
    assert main([*arguments, "--verify"]) == 1  # before: a raw RuntimeError from conv2d, or a silent cast
    errors = capsys.readouterr().err
    dtype_name = str(dtype).removeprefix("torch.")
    assert errors == (
        f"error: {checkpoint} has weights a model cannot use: base_model.blocks.1.mlp.fc1.weight is {dtype_name}, not"
        " floating point.\n"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_weights_holding_nan_or_infinity_are_refused_naming_the_tensor(tmp_path, value):
    state_dict, cfg = case("mixing_in_layer_1_of_3")
    state_dict["consensus.mlp_head.4.bias"][2] = value
    checkpoint = save_training_checkpoint(tmp_path / "xvit.pth", state_dict, cfg)
    with pytest.raises(ConversionError, match=r"consensus.mlp_head.4.bias holds 1 NaN or infinite values"):
        convert_original_checkpoint(checkpoint, tmp_path / "converted", num_attention_heads=HEADS)
    assert not (tmp_path / "converted").exists()


@pytest.mark.slow  # starts the fresh-process checks
def test_a_model_answering_nan_fails_every_check_that_runs_it(tmp_path, tiny_config, capsys):
    from modeling_xvit.hub.card import ModelCardInputs
    from modeling_xvit.hub.folder import write_hub_folder
    from modeling_xvit.hub.verify import check_hub_folder

    model = XViTForVideoClassification(tiny_config())
    with torch.no_grad():
        model.classifier.out_proj.bias[0] = float("nan")  # as a NaN weight written by another tool would do
    with pytest.raises(ConversionError, match="failed the Hub checks"):
        write_hub_folder(tmp_path / "nan", model, ModelCardInputs(origin="x"), check=check_hub_folder)
    output = capsys.readouterr().out
    for check in ('pipeline("video-classification")', "pipeline batch_size=2", "Inference Endpoints handler"):
        assert f"[FAIL] {check}: " in output
    for check in ('pipeline("video-classification")', "Inference Endpoints handler"):
        assert "non-finite" in output.split(f"[FAIL] {check}: ")[1].splitlines()[0]
    assert not (tmp_path / "nan").exists()


def test_every_check_that_reads_scores_refuses_non_finite_ones():
    from modeling_xvit.hub.checks import _check_predictions

    labels = {0: "a", 1: "b"}
    _check_predictions([{"label": "a", "score": 0.75}, {"label": "b", "score": 0.25}], labels, 2)
    for score in (float("nan"), float("inf")):  # before: "[ok] ... (nan)"
        with pytest.raises(AssertionError, match="non-finite scores"):
            _check_predictions([{"label": "a", "score": score}, {"label": "b", "score": 0.25}], labels, 2)


def _child_pids(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow  # runs the converter in a process and kills it
def test_killing_the_converter_during_its_folder_check_ends_the_check_too(tmp_path):
    import signal
    import time

    state_dict, cfg = case("mixing_in_layer_1_of_3")
    checkpoint = save_training_checkpoint(tmp_path / "xvit.pth", state_dict, cfg)
    command = [
        sys.executable,
        "-m",
        "modeling_xvit.conversion.original",
        f"--checkpoint={checkpoint}",
        f"--output-dir={tmp_path / 'converted'}",
        f"--num-attention-heads={HEADS}",
    ]
    converter = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, checks = time.monotonic() + 120, []
    try:
        while not checks and time.monotonic() < deadline and converter.poll() is None:
            checks = [pid for pid in _child_pids(converter.pid) if b"xvit-hub-check" in _command_line(pid)]
            time.sleep(0.05)
        assert checks, "the converter never started its fresh-process check"
        time.sleep(1)  # past its start-up, loading the folder
        os.kill(converter.pid, signal.SIGKILL)  # it cannot pass this signal on
        converter.wait()
        deadline = time.monotonic() + 10
        while _is_running(checks[0]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _is_running(checks[0]), "the fresh-process check outlived the converter"
    finally:
        converter.kill()
        converter.wait()
        for pid in checks:  # left running only when the test fails
            if _is_running(pid):
                os.kill(pid, signal.SIGKILL)
    assert not (tmp_path / "converted").exists()


def _with(cfg: str, section: str, key: str | None, value) -> str:
    values = yaml.safe_load(cfg)
    if key is None:
        values[section] = value
    else:
        values[section][key] = value
    return yaml.safe_dump(values)


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("XVIT", "SHIFT_DIV", 0, "XVIT.SHIFT_DIV should be an integer >= 2 (1 / share of mixed channels), got 0"),
        (
            "XVIT",
            "NUM_SEGMENTS",
            0,
            "XVIT.NUM_SEGMENTS should be a positive integer (frames per mixing segment), got 0",
        ),
        ("DATA", "NUM_FRAMES", -16, "DATA.NUM_FRAMES should be a positive integer, got -16"),
        (
            "TEMPORAL_HEAD",
            "NUM_ATTENTION_HEADS",
            0,
            "TEMPORAL_HEAD.NUM_ATTENTION_HEADS should be a positive integer, got 0",
        ),
        (
            "TEMPORAL_HEAD",
            "NUM_ATTENTION_HEADS",
            3,
            "TEMPORAL_HEAD.NUM_ATTENTION_HEADS (3) should divide the temporal head",
        ),
        ("MODEL", "DROPOUT_RATE", 7, "MODEL.DROPOUT_RATE should be a probability in [0, 1), got 7"),
        ("XVIT", None, 5, "XVIT should be a section of settings, got 5"),
        ("DATA", "MEAN", 0.5, "DATA.MEAN should be a list of 3 numbers (one per channel), got 0.5"),
        ("XVIT", "NUM_SEGMENTS", 3, "XVIT.NUM_SEGMENTS (3) should divide DATA.NUM_FRAMES (8)"),
    ],
)
def test_impossible_training_config_values_are_named(tmp_path, capsys, section, key, value, message):
    state_dict, cfg = case("mixing_in_layer_1_of_3")
    checkpoint = save_training_checkpoint(tmp_path / "xvit.pth", state_dict, _with(cfg, section, key, value))
    exit_code = main([f"--checkpoint={checkpoint}", f"--output-dir={tmp_path / 'out'}", "--num-attention-heads=4"])
    assert exit_code == 1
    errors = capsys.readouterr().err
    assert "Traceback" not in errors
    assert any(line.startswith(f"error: {message}") for line in errors.splitlines()), errors
    assert not (tmp_path / "out").exists()


# --- Checking and publishing the folder ---------------------------------------------------------------------------


@pytest.fixture
def fake_hub(httpserver, monkeypatch) -> FakeHub:
    return serve_fake_hub(httpserver, monkeypatch)


@pytest.mark.slow
def test_command_line_checks_the_folder_in_a_fresh_process_then_publishes_it(tmp_path, fake_hub, capsys):
    state_dict, cfg = case("mixing_in_layer_1_of_3")
    checkpoint = save_training_checkpoint(tmp_path / "xvit.pth", state_dict, cfg)
    output_dir = tmp_path / "converted"
    exit_code = main(
        [
            f"--checkpoint={checkpoint}",
            f"--output-dir={output_dir}",
            f"--num-attention-heads={HEADS}",
            "--verify",
            "--push-to-hub=someone/xvit-tiny",
            "--private",
            "--revision=converted",
            "--create-pr",
            "--commit-message=Convert xvit.pth",
        ]
    )
    output = capsys.readouterr().out
    assert exit_code == 0, output
    assert "[FAIL]" not in output and output.count("[ok]") >= 12
    for check in (
        "AutoModel:",
        "AutoVideoProcessor:",
        'pipeline("video-classification"):',
        "Inference Endpoints handler:",
    ):
        assert f"[ok]   {check}" in output
    (commit,) = fake_hub.commits
    assert sorted(commit.files) == [file.path_in_repo for file in files_to_upload(output_dir)]
    assert commit.revision == "converted" and commit.create_pr and commit.summary == "Convert xvit.pth"
    assert fake_hub.created[0]["visibility"] == "private"
    # The card's examples load the repository the folder was published to.
    assert (
        b'AutoVideoProcessor.from_pretrained("someone/xvit-tiny", trust_remote_code=True)' in commit.files["README.md"]
    )


def test_dry_run_writes_the_folder_and_uploads_nothing(tmp_path, fake_hub, capsys):
    state_dict, cfg = case("mixing_in_layer_1_of_3")
    checkpoint = save_training_checkpoint(tmp_path / "xvit.pth", state_dict, cfg)
    arguments = [
        f"--checkpoint={checkpoint}",
        f"--output-dir={tmp_path / 'converted'}",
        f"--num-attention-heads={HEADS}",
    ]
    assert main([*arguments, "--push-to-hub=someone/xvit", "--dry-run", "--skip-folder-check"]) == 0
    output = capsys.readouterr().out
    assert "Would upload to someone/xvit:\n  README.md (" in output and "  model.safetensors (" in output
    assert fake_hub.requests == []
    assert (tmp_path / "converted" / "config.json").is_file()


def test_a_folder_that_fails_its_checks_is_not_written(tmp_path, monkeypatch, capsys):
    state_dict, cfg = case("mixing_in_layer_1_of_3")
    checkpoint = save_training_checkpoint(tmp_path / "xvit.pth", state_dict, cfg)
    monkeypatch.setattr(
        "modeling_xvit.hub.verify.fresh_process_checks",
        lambda folder, video: [Check("AutoVideoProcessor", False, "OSError: broken")],
    )
    with pytest.raises(ConversionError, match=r"failed the Hub checks \['AutoVideoProcessor'\]"):
        convert_original_checkpoint(checkpoint, tmp_path / "converted", num_attention_heads=HEADS, check_folder=True)
    assert "[FAIL] AutoVideoProcessor: OSError: broken" in capsys.readouterr().out
    assert os.listdir(tmp_path) == ["xvit.pth"]
