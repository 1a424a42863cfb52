import importlib
import shutil

import pytest
import torch
from transformers import AutoConfig

import modeling_xvit.configuration_xvit
from modeling_xvit import XViTConfig, XViTModel
from modeling_xvit.conversion.original import infer_xvit_config, parse_original_config
from modeling_xvit.labels import load_labels


def test_defaults_are_the_released_backbone_mixing_over_the_whole_clip():
    config = XViTConfig()
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (768, 12, 12)
    assert (config.image_size, config.patch_size, config.num_frames) == (224, 16, 16)
    assert config.space_time_mixing_layers == list(range(12))
    assert config.space_time_mixing_channels == 96  # 768 // SHIFT_DIV 8
    # derived from num_frames, unlike the released models (see from_released)
    assert config.space_time_mixing_segment_length == 16
    assert config.num_temporal_embeddings == 16
    assert config.temporal_aggregation == "attention"
    assert (config.temporal_attention_num_heads, config.temporal_attention_intermediate_size) == (12, 3072)
    assert config.summary_token_layers == []


@pytest.mark.parametrize(
    ("name", "num_labels", "mixing_channels", "segment_length"), [("k600", 600, 96, 8), ("ssv2", 174, 192, 16)]
)
def test_released_configurations_by_name(name, num_labels, mixing_channels, segment_length):
    config = XViTConfig.from_released(name)
    assert config.num_labels == num_labels
    assert config.space_time_mixing_channels == mixing_channels
    assert config.space_time_mixing_segment_length == segment_length
    assert config.num_temporal_embeddings == 8
    assert (config.frame_dropout_prob, config.classifier_dropout_prob) == (0.5, 0.5)
    assert (config.hidden_size, config.num_hidden_layers, config.num_frames) == (768, 12, 16)
    assert XViTConfig.from_released(name, num_frames=32).num_frames == 32  # keyword arguments override


@pytest.mark.parametrize(("name", "label_set"), [("k600", "kinetics600"), ("ssv2", "ssv2")])
def test_released_configurations_carry_their_class_names(name, label_set):
    config = XViTConfig.from_released(name)
    names = load_labels(label_set)
    assert [config.id2label[index] for index in range(config.num_labels)] == names
    assert config.label2id == {label: index for index, label in enumerate(names)}
    assert XViTConfig.from_released(name, num_labels=5).id2label[0] == "LABEL_0"  # a new head: no released names


def test_released_class_names_outside_the_package_get_a_clear_error(tmp_path, monkeypatch):
    # A Hub folder holds configuration_xvit.py without the package's labels/ folder.
    (tmp_path / "hub_folder_copy").mkdir()
    (tmp_path / "hub_folder_copy" / "__init__.py").touch()
    shutil.copy(modeling_xvit.configuration_xvit.__file__, tmp_path / "hub_folder_copy")
    monkeypatch.syspath_prepend(str(tmp_path))
    copy = importlib.import_module("hub_folder_copy.configuration_xvit")
    with pytest.raises(FileNotFoundError, match=r"kinetics600.txt.*ship with the xvit-transformers package.*id2label"):
        copy.XViTConfig.from_released("k600")
    assert copy.XViTConfig.from_released("k600", num_labels=600).num_labels == 600


def test_unknown_released_configuration_is_refused():
    with pytest.raises(ValueError, match=r"'k400'.*\['k600', 'ssv2'\]"):
        XViTConfig.from_released("k400")


def released_vit_b16_state_dict(num_classes: int) -> dict[str, torch.Tensor]:
    """The tensor shapes of a released XViT-B/16 checkpoint (original key names), on the meta device: the converter
    reads the architecture from shapes alone."""
    hidden, mlp = 768, 3072
    shapes = {
        "base_model.patch_embed.proj.weight": (hidden, 3, 16, 16),
        "base_model.cls_token": (1, 1, hidden),
        "base_model.pos_embed": (1, 197, hidden),
        "base_model.temp_embed": (1, 8, 1, hidden),
        "consensus.cls_token": (1, 1, hidden),
        "consensus.temporal_encoder.0.attn.qkv.weight": (3 * hidden, hidden),
        "consensus.temporal_encoder.0.mlp.fc1.weight": (mlp, hidden),
        "consensus.mlp_head.1.weight": (768, hidden),
        "consensus.mlp_head.4.weight": (num_classes, 768),
    }
    for index in range(12):
        shapes[f"base_model.blocks.{index}.attn.qkv.weight"] = (3 * hidden, hidden)
        shapes[f"base_model.blocks.{index}.attn.qkv.bias"] = (3 * hidden,)
        shapes[f"base_model.blocks.{index}.mlp.fc1.weight"] = (mlp, hidden)
    return {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}


# The values of the official training configs (configs/Kinetics/xvit_B16_16x16_k600.yaml, configs/SSv2/xvit_B16_16x16
# .yaml in 1adrianb/video-transformers) that the architecture depends on; the converter fills in the code's defaults.
RELEASED_TRAINING_CONFIGS = {
    "k600": {"dataset": "kinetics", "classes": 600, "shift_div": 8, "segments": 8},
    "ssv2": {"dataset": "ssv2", "classes": 174, "shift_div": 4, "segments": 16},
}


@pytest.mark.parametrize("name", sorted(RELEASED_TRAINING_CONFIGS))
def test_released_configurations_are_what_the_converter_derives_from_the_checkpoints(name):
    values = RELEASED_TRAINING_CONFIGS[name]
    training_config = {
        "TRAIN": {"DATASET": values["dataset"]},
        "DATA": {"NUM_FRAMES": 16},
        "MODEL": {"NUM_CLASSES": values["classes"], "DROPOUT_RATE": 0.5},
        "XVIT": {
            "BASE_MODEL": "vit_base_patch16_224_in21k",
            "CONSENSUS_TYPE": "vit",
            "USE_XVIT": True,
            "SHIFT_DIV": values["shift_div"],
            "NUM_SEGMENTS": values["segments"],
            "LOCATIONS_LIST": list(range(15)),
        },
    }
    converted = infer_xvit_config(
        released_vit_b16_state_dict(values["classes"]), parse_original_config(training_config)
    )
    released = XViTConfig.from_released(name, num_labels=values["classes"])  # the converter's labels come apart
    assert converted.to_dict() == released.to_dict()


def test_temporal_head_sizes_follow_the_backbone_unless_given(tmp_path):
    small = XViTConfig(hidden_size=64, num_attention_heads=4, intermediate_size=128)
    assert (small.temporal_attention_num_heads, small.temporal_attention_intermediate_size) == (4, 128)
    given = XViTConfig(
        hidden_size=64, num_attention_heads=4, temporal_attention_num_heads=2, temporal_attention_intermediate_size=32
    )
    assert (given.temporal_attention_num_heads, given.temporal_attention_intermediate_size) == (2, 32)
    for index, config in enumerate((small, given)):
        config.save_pretrained(tmp_path / str(index))
        assert AutoConfig.from_pretrained(tmp_path / str(index)).to_diff_dict() == config.to_diff_dict()
    # the temporal head's width is the backbone's: a width that its heads do not divide is still refused
    with pytest.raises(ValueError, match=r"`temporal_attention_num_heads` \(12\).*`hidden_size` \(64\)"):
        XViTConfig(hidden_size=64, num_attention_heads=4, temporal_attention_num_heads=12)


def test_save_and_load_round_trip(tmp_path):
    config = XViTConfig(
        num_frames=8,
        space_time_mixing_layers=[3, 1],
        space_time_mixing_fraction=0.25,
        space_time_mixing_segment_length=4,
        num_temporal_embeddings=4,
        summary_token_layers=[2],
        temporal_aggregation="mean",
        classifier_hidden_size=None,
        id2label={0: "a", 1: "b", 2: "c"},
    )
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, XViTConfig)
    assert loaded.to_diff_dict() == config.to_diff_dict()
    assert loaded.space_time_mixing_layers == [1, 3]
    assert loaded.space_time_mixing_channels == 192
    assert loaded.id2label == {0: "a", 1: "b", 2: "c"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"hidden_size": -48}, r"`hidden_size` must be at least 1, got -48"),
        ({"image_size": -32}, r"`image_size` must be at least 1, got -32"),
        ({"patch_size": 0}, r"`patch_size` must be at least 1, got 0"),
        ({"num_frames": 0}, r"`num_frames` must be at least 1, got 0"),
        ({"num_hidden_layers": 0}, r"`num_hidden_layers` must be at least 1, got 0"),
        ({"num_channels": 0}, r"`num_channels` must be at least 1, got 0"),
        ({"intermediate_size": -3}, r"`intermediate_size` must be at least 1, got -3"),
        ({"hidden_act": "nope"}, r"`hidden_act` must be one of .*'gelu'.*got 'nope'"),
        ({"layer_norm_eps": -1}, r"`layer_norm_eps` must be a positive number, got -1"),
        ({"temporal_attention_layer_norm_eps": 0.0}, r"`temporal_attention_layer_norm_eps` must be a positive"),
        ({"classifier_layer_norm_eps": float("nan")}, r"`classifier_layer_norm_eps` must be a positive number"),
        ({"initializer_range": -0.02}, r"`initializer_range` must be at least 0, got -0.02"),
        ({"drop_path_rate": -0.5}, r"`drop_path_rate` is a probability: expected a value in \[0, 1\], got -0.5"),
        ({"hidden_dropout_prob": 7}, r"`hidden_dropout_prob` .* \[0, 1\], got 7"),
        ({"attention_probs_dropout_prob": 1.5}, r"`attention_probs_dropout_prob` .* \[0, 1\], got 1.5"),
        ({"frame_dropout_prob": -0.1}, r"`frame_dropout_prob` .* \[0, 1\], got -0.1"),
        ({"classifier_dropout_prob": 2}, r"`classifier_dropout_prob` .* \[0, 1\], got 2"),
        ({"temporal_attention_num_layers": -2}, r"`temporal_attention_num_layers` must be at least 1, got -2"),
        ({"temporal_attention_num_layers": 0}, r"`temporal_attention_num_layers` must be at least 1, got 0"),
        ({"temporal_attention_intermediate_size": 0}, r"`temporal_attention_intermediate_size` .* at least 1, got 0"),
        ({"classifier_hidden_size": 0}, r"`classifier_hidden_size` must be at least 1, got 0"),
        ({"num_attention_heads": 5}, r"`num_attention_heads` \(5\) must be a positive divisor of `hidden_size`"),
        ({"num_attention_heads": 0}, r"`num_attention_heads` \(0\) must be a positive divisor"),
        ({"temporal_attention_num_heads": 7}, r"`temporal_attention_num_heads` \(7\)"),
        ({"space_time_mixing_fraction": 0.6}, r"`space_time_mixing_fraction`.*\[0, 0.5\], got 0.6"),
        ({"space_time_mixing_fraction": -0.1}, "space_time_mixing_fraction"),
        ({"space_time_mixing_segment_length": 5}, r"`space_time_mixing_segment_length` \(5\)"),
        ({"space_time_mixing_segment_length": 0}, "space_time_mixing_segment_length"),
        ({"space_time_mixing_layers": [0, 12]}, r"space_time_mixing_layers.*\[12\]"),
        ({"summary_token_layers": [-1]}, "summary_token_layers"),
        ({"image_size": 230}, r"`patch_size` \(16\) must divide `image_size` \(230\)"),
        ({"num_temporal_embeddings": 0}, r"`num_temporal_embeddings` must be at least 1, got 0"),
    ],
)
def test_invalid_values_fail_at_construction_with_a_value_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        XViTConfig(**overrides)


@pytest.mark.parametrize(
    ("num_frames", "num_temporal_embeddings", "accepted"),
    [(16, 8, True), (8, 16, True), (4, 4, True), (24, 8, True), (8, 3, False), (16, 6, False), (9, 2, False)],
)
def test_temporal_embeddings_fit_the_clip_at_construction(num_frames, num_temporal_embeddings, accepted):
    # The model takes at most `num_temporal_embeddings` frames or a multiple of it: a config it would refuse its own
    # clips with fails when it is made, and one it accepts loads and runs.
    options = dict(num_frames=num_frames, num_temporal_embeddings=num_temporal_embeddings, space_time_mixing_layers=[])
    if not accepted:
        with pytest.raises(ValueError, match=rf"`num_temporal_embeddings` \({num_temporal_embeddings}\) must be at"):
            XViTConfig(**options)
        return
    small = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16, image_size=16)
    model = XViTModel(XViTConfig(**options, **small)).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, num_frames, 3, 16, 16)).frame_features.shape == (1, num_frames, 16)


def test_temporal_head_fields_are_free_without_the_temporal_head():
    config = XViTConfig(temporal_aggregation="mean", temporal_attention_num_layers=0, temporal_attention_num_heads=7)
    assert config.temporal_attention_num_layers == 0


def test_unknown_temporal_aggregation_is_refused():
    with pytest.raises(Exception, match="temporal_aggregation"):
        XViTConfig(temporal_aggregation="max")
