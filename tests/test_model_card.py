"""Model cards: Hub metadata read back with huggingface_hub, published and measured results in the model-index."""

import json

import pytest
import yaml
from huggingface_hub import ModelCard

from modeling_xvit import XViTConfig
from modeling_xvit.hub.card import (
    ALL_RESULTS_KEYS,
    SPLIT_PREFIXES,
    ModelCardInputs,
    count_of,
    render_model_card,
    reported_results,
    results_from_all_results,
)
from modeling_xvit.labels import load_labels

# ViT-B/16, 16 frames: the released size, with the Kinetics-600 class names as the converter writes them.
RELEASED_K600 = XViTConfig(num_labels=600, id2label=dict(enumerate(load_labels("kinetics600"))))


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
    local = "local videos from the folder `motion-order`"
    card = card_of(XViTConfig(num_labels=10), training_data=local, results=results, recipe={"learning rate": 0.03})
    assert metrics(card) == {
        "Top-1 accuracy (1 clip, centre crop)": 81.25,
        "Top-5 accuracy (1 clip, centre crop)": 96.88,
        "Top-1 accuracy (3 spatial x 2 temporal)": 84.38,
        "Top-5 accuracy (3 spatial x 2 temporal)": 100.0,
    }
    assert card.data.eval_results[0].source_name is None  # measured, not reported
    # Local data: described in the text and the model-index, never given as a Hub data set id.
    assert card.data.datasets is None and card.data.eval_results[0].dataset_type == "videofolder"
    assert card.data.eval_results[0].dataset_name == local
    assert f"Accuracy on {local}, measured by the training run" in card.text
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
    card = card_of(XViTConfig(num_labels=10), training_data="local videos", results=results)
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


def metadata(card: ModelCard) -> dict:
    return yaml.safe_load(card.content.split("---")[1])


DEMO = XViTConfig(num_labels=4, id2label=dict(enumerate(["left", "right", "up", "down"])))


def test_widget_examples_only_for_a_model_whose_classes_include_theirs():
    kinetics400 = XViTConfig(
        num_labels=400, id2label={0: "abseiling", 1: "archery", 2: "bowling", **{i: str(i) for i in range(3, 400)}}
    )
    assert [example["example_title"] for example in card_of(kinetics400).data.widget] == ["Archery", "Bowling"]
    # The synthetic demo and a user's own classes get none (before: the archery and bowling clips on every card).
    assert "widget" not in metadata(card_of(DEMO, training_data="synthetic motion clips"))
    assert "widget" not in metadata(card_of(XViTConfig(num_labels=174), dataset="ssv2"))


def test_the_card_says_what_the_model_was_trained_on_and_limitations_that_fit_it():
    demo = card_of(DEMO, training_data="local videos from the folder `motion`")
    assert "**Training data:** local videos from the folder `motion`." in demo.text
    assert "into the 4 classes of local videos from the folder `motion`" in demo.text
    assert "web videos" not in demo.text  # before: "web videos of a fixed list of actions" for any data
    kinetics = card_of(RELEASED_K600, dataset="kinetics600")
    assert "**Training data:** Kinetics-600." in kinetics.text
    assert "limits of Kinetics-600 (web videos of a fixed list of human actions)" in kinetics.text
    ssv2 = card_of(XViTConfig(num_labels=174), dataset="ssv2").text
    assert "Something-Something-v2 (crowd-sourced clips of people doing scripted actions" in ssv2
    assert "**Training data:** none given for these weights." in card_of(DEMO).text


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"license": "not-a-license"}, "license 'not-a-license' is not a license identifier of the Hub"),
        ({"base_model": "a/b/c"}, "base_model 'a/b/c' is not a Hub repository id"),
        ({"dataset": "my videos"}, "dataset 'my videos' is not a Hub repository id"),
    ],
)
def test_license_and_ids_are_checked_against_the_hubs_formats(inputs, message):
    with pytest.raises(ValueError, match=message):  # before: rendered as given
        card_of(DEMO, **inputs)


def test_a_local_folder_is_never_the_cards_data_set_or_base_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "skv").mkdir()
    with pytest.raises(ValueError, match="dataset 'skv' names a local path, not a Hub repository"):
        card_of(DEMO, dataset="skv")
    with pytest.raises(ValueError, match="base_model 'skv' names a local path"):
        card_of(DEMO, base_model="skv")
    assert (
        metadata(card_of(DEMO, license="other", base_model="someone/xvit-k600"))["base_model"] == "someone/xvit-k600"
    )


def test_no_model_name_without_results():
    assert "model_name" not in metadata(card_of(DEMO))  # before: a stray model_name key
    measured = card_of(
        DEMO, training_data="local videos", results=results_from_all_results({"eval_top1_accuracy": 0.5})
    )
    assert metadata(measured)["model-index"][0]["name"] == "XViT, 16 frames"


def test_count_of_writes_integers_and_fractions():
    assert [count_of(1, "step"), count_of(1200000, "step"), count_of(2.5, "epoch"), count_of(2.0, "epoch")] == [
        "1 step",
        "1200000 steps",
        "2.5 epochs",
        "2 epochs",
    ]
    assert count_of(3, "process", "processes") == "3 processes"
