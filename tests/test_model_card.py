"""Model cards: Hub metadata read back with huggingface_hub, published and measured results in the model-index."""

import json

import pytest
from huggingface_hub import ModelCard

from modeling_xvit import XViTConfig
from modeling_xvit.hub.card import (
    ALL_RESULTS_KEYS,
    SPLIT_PREFIXES,
    ModelCardInputs,
    render_model_card,
    reported_results,
    results_from_all_results,
)

RELEASED_K600 = XViTConfig(num_labels=600)  # ViT-B/16, 16 frames: the released size


def card_of(config: XViTConfig, **inputs) -> ModelCard:
    return ModelCard(render_model_card(config, ModelCardInputs(**{"origin": "Made for a test.", **inputs})))


def metrics(card: ModelCard) -> dict[str, float]:
    return {result.metric_name: result.metric_value for result in card.data.eval_results or []}


def test_converted_checkpoint_card_carries_the_authors_figures_with_their_test_views():
    card = card_of(
        RELEASED_K600,
        dataset="kinetics600",
        results=reported_results("kinetics600", RELEASED_K600),
        base_model="google/vit-base-patch16-224-in21k",
    )
    data = card.data
    assert (data.library_name, data.pipeline_tag, data.license) == (
        "transformers",
        "video-classification",
        "apache-2.0",
    )
    assert data.datasets == ["kinetics-600"] and data.base_model == "google/vit-base-patch16-224-in21k"
    assert {"video-classification", "xvit", "custom_code"} <= set(data.tags)
    assert [example["example_title"] for example in data.widget] == ["Archery", "Bowling"]
    assert metrics(card) == {
        "Top-1 accuracy (3 spatial x 1 temporal)": 84.51,
        "Top-5 accuracy (3 spatial x 1 temporal)": 96.26,
        "Top-1 accuracy (3 spatial x 2 temporal)": 84.71,
        "Top-5 accuracy (3 spatial x 2 temporal)": 96.39,
    }
    first = data.eval_results[0]
    assert first.dataset_name == "Kinetics-600" and first.task_type == "video-classification"
    assert first.metric_args == {"top_k": 1, "num_temporal_views": 1, "num_spatial_crops": 3}
    assert first.source_name == "Bulat et al., NeurIPS 2021 (reported by the authors)" and first.verified is False
    assert "| 3 spatial x 2 temporal | validation | 84.71 | 96.39 |" in card.text
    assert "as reported by the authors" in card.text


def test_published_figures_belong_to_the_released_size_only():
    assert reported_results("kinetics600", XViTConfig(num_frames=8, num_labels=600)) == []
    assert [result.top1 for result in reported_results("ssv2", XViTConfig(num_labels=174))] == [67.19]
    card = card_of(XViTConfig(num_frames=8, num_labels=600), dataset="kinetics600")
    assert not card.data.eval_results and "No accuracy has been measured" in card.text


def test_trained_model_card_reads_the_run_metrics_from_all_results(tmp_path):
    all_results = {
        "epoch": 3.0,
        "eval_loss": 0.61,
        "eval_top1_accuracy": 0.8125,
        "eval_top5_accuracy": 0.96875,
        "eval_multiview_top1_accuracy": 0.84375,
        "eval_multiview_top5_accuracy": 1.0,
        "eval_multiview_num_temporal_views": 2,
        "eval_multiview_num_spatial_crops": 3,
    }
    (tmp_path / "all_results.json").write_text(json.dumps(all_results))
    results = results_from_all_results(tmp_path / "all_results.json")
    card = card_of(XViTConfig(num_labels=10), dataset="motion-order", results=results, recipe={"learning rate": 0.03})
    assert metrics(card) == {
        "Top-1 accuracy (1 clip, centre crop)": 81.25,
        "Top-5 accuracy (1 clip, centre crop)": 96.88,
        "Top-1 accuracy (3 spatial x 2 temporal)": 84.38,
        "Top-5 accuracy (3 spatial x 2 temporal)": 100.0,
    }
    assert card.data.eval_results[0].source_name is None  # measured, not reported
    assert card.data.datasets == ["motion-order"]
    assert "measured by the training run" in card.text and "| learning rate | 0.03 |" in card.text


def test_test_split_figures_are_read_under_their_own_prefix():
    all_results = {
        "eval_top1_accuracy": 0.5,
        "test_top1_accuracy": 0.625,
        "test_top5_accuracy": 0.875,
        "test_multiview_top1_accuracy": 0.75,
        "test_multiview_top5_accuracy": 1.0,
        "test_multiview_num_temporal_views": 1,
        "test_multiview_num_spatial_crops": 3,
    }
    results = results_from_all_results(all_results, "test", prefix=SPLIT_PREFIXES["test"])
    assert [(result.split, result.views, result.top1, result.top5) for result in results] == [
        ("test", "1 clip, centre crop", 62.5, 87.5),
        ("test", "3 spatial x 1 temporal", 75.0, 100.0),
    ]
    card = card_of(XViTConfig(num_labels=10), dataset="motion-order", results=results)
    assert {result.dataset_split for result in card.data.eval_results} == {"test"}


def test_all_results_keys_are_the_documented_ones():
    assert ALL_RESULTS_KEYS == {
        "single_view": ("eval_top1_accuracy", "eval_top5_accuracy"),
        "multi_view": ("eval_multiview_top1_accuracy", "eval_multiview_top5_accuracy"),
        "multi_view_counts": ("eval_multiview_num_temporal_views", "eval_multiview_num_spatial_crops"),
    }
    assert results_from_all_results({"eval_loss": 1.0}) == []  # no accuracy measured: no results


@pytest.mark.parametrize(
    ("all_results", "message"),
    [
        ({"eval_top1_accuracy": 81.2}, "eval_top1_accuracy should be an accuracy between 0 and 1, got 81.2"),
        ({"eval_top1_accuracy": "high"}, "eval_top1_accuracy should be an accuracy between 0 and 1, got 'high'"),
        (
            {"eval_multiview_top1_accuracy": 0.5},
            "eval_multiview_num_temporal_views should be a positive integer (the views of the evaluation), got None",
        ),
    ],
)
def test_impossible_run_metrics_are_named(all_results, message):
    with pytest.raises(ValueError, match="all_results: ") as error:
        results_from_all_results(all_results)
    assert message in str(error.value)


def test_counts_of_one_are_singular():
    config = XViTConfig(
        hidden_size=64,
        num_attention_heads=1,
        num_hidden_layers=1,
        intermediate_size=64,
        temporal_attention_num_heads=1,
        temporal_attention_intermediate_size=64,
        num_labels=1,
    )
    text = card_of(config).text
    assert "1 layer, hidden size 64, 1 head, patch 16" in text and "head (1 layer, 1 head) over" in text
    assert "into\n1 class." in text
    assert "1 heads" not in text and "1 layers" not in text
