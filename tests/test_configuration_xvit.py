import pytest
from transformers import AutoConfig

from modeling_xvit import XViTConfig


def test_defaults_are_the_released_architecture():
    config = XViTConfig()
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (768, 12, 12)
    assert (config.image_size, config.patch_size, config.num_frames) == (224, 16, 16)
    assert config.space_time_mixing_layers == list(range(12))
    assert config.space_time_mixing_channels == 96  # 768 // SHIFT_DIV 8
    assert config.space_time_mixing_segment_length == 16
    assert config.num_temporal_embeddings == 16
    assert config.temporal_aggregation == "attention"
    assert config.summary_token_layers == []


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
        ({"num_attention_heads": 5}, "num_attention_heads"),
        ({"temporal_attention_num_heads": 7}, "temporal_attention_num_heads"),
        ({"space_time_mixing_fraction": 0.6}, "space_time_mixing_fraction"),
        ({"space_time_mixing_fraction": -0.1}, "space_time_mixing_fraction"),
        ({"space_time_mixing_segment_length": 5}, "space_time_mixing_segment_length"),
        ({"space_time_mixing_layers": [0, 12]}, r"space_time_mixing_layers.*\[12\]"),
        ({"summary_token_layers": [-1]}, "summary_token_layers"),
        ({"image_size": 230}, "patch_size"),
        ({"num_temporal_embeddings": 0}, "num_temporal_embeddings"),
    ],
)
def test_invalid_values_fail_at_construction(overrides, message):
    with pytest.raises(Exception, match=message):
        XViTConfig(**overrides)


def test_unknown_temporal_aggregation_is_refused():
    with pytest.raises(Exception, match="temporal_aggregation"):
        XViTConfig(temporal_aggregation="max")
