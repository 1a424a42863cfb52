import json
import os
import subprocess
import sys

import pytest
import torch
from transformers import pipeline

from modeling_xvit import XViTForVideoClassification, XViTVideoProcessor
from modeling_xvit.hub.card import ModelCardInputs
from modeling_xvit.hub.folder import write_hub_folder
from modeling_xvit.pipeline_xvit import XViTVideoClassificationPipeline

LABELS = {0: "archery", 1: "juggling", 2: "surfing", 3: "yoga"}
MULTI_VIEW = dict(num_temporal_views=2, num_spatial_crops=3)  # 6 views per video

# Run in a fresh interpreter from an empty folder, with the editable install's finder removed: the only way to the XViT
# code is the copy saved next to the weights.
FRESH_PROCESS_SCRIPT = """
import importlib.util, json, sys
sys.meta_path[:] = [finder for finder in sys.meta_path if "__editable__" not in getattr(finder, "__module__", "")]
assert importlib.util.find_spec("modeling_xvit") is None, "modeling_xvit must not be importable here"
from transformers import pipeline
classifier = pipeline("video-classification", model=sys.argv[1], trust_remote_code=True)
result = classifier(sys.argv[2], top_k=3)
assert not any(name == "modeling_xvit" or name.startswith("modeling_xvit.") for name in sys.modules)
modules = {"processor": type(classifier.video_processor).__module__, "pipeline": type(classifier).__module__}
print(json.dumps({"result": result, **modules}))
"""


def tiny_classifier(tiny_config) -> XViTForVideoClassification:
    torch.manual_seed(0)
    config = tiny_config(
        num_attention_heads=2,
        classifier_hidden_size=32,
        initializer_range=0.3,  # views that score apart, so that view 0 alone would be another answer
        num_labels=len(LABELS),
        id2label=LABELS,
        label2id={label: index for index, label in LABELS.items()},
    )
    return XViTForVideoClassification(config)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory, tiny_config) -> str:
    """A folder saved with `save_pretrained` alone: no image processor, no pipeline in its config."""
    folder = tmp_path_factory.mktemp("tiny-xvit")
    tiny_classifier(tiny_config).save_pretrained(folder)
    XViTVideoProcessor(size={"shortest_edge": 32}, crop_size=32, num_frames=4).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def multi_view_folder(tmp_path_factory, tiny_config) -> str:
    """A Hub folder (`write_hub_folder`) whose processor cuts 2 temporal views x 3 spatial crops."""
    processor = XViTVideoProcessor(size={"shortest_edge": 32}, crop_size=32, num_frames=4, **MULTI_VIEW)
    folder = tmp_path_factory.mktemp("multi-view") / "xvit"
    return str(write_hub_folder(folder, tiny_classifier(tiny_config), ModelCardInputs(origin="Tests."), processor))


def view_probabilities(folder: str, video: str, **views) -> torch.Tensor:
    """`(views, labels)`: the softmax probabilities of each view the folder's processor cuts from `video`."""
    model = XViTForVideoClassification.from_pretrained(folder).eval()
    inputs = XViTVideoProcessor.from_pretrained(folder)(video, return_tensors="pt", **views)
    with torch.no_grad():
        return model(**inputs).logits.softmax(-1)


def assert_answer(answer: list[dict], probabilities: torch.Tensor) -> None:
    """`answer` ranks the labels as `probabilities` do, with their scores."""
    top = probabilities.topk(len(answer))
    assert [entry["label"] for entry in answer] == [LABELS[index] for index in top.indices.tolist()]
    torch.testing.assert_close(torch.tensor([entry["score"] for entry in answer]), top.values, rtol=0, atol=1e-6)


def test_pipeline_with_the_installed_package(model_folder, real_videos):
    classifier = pipeline("video-classification", model=model_folder)
    assert type(classifier.video_processor) is XViTVideoProcessor
    result = classifier(real_videos["bigbuckbunny"], top_k=2)
    assert len(result) == 2 and all(entry["label"] in LABELS.values() for entry in result)
    assert_answer(result, view_probabilities(model_folder, real_videos["bigbuckbunny"])[0])


def test_pipeline_of_a_hub_folder_averages_the_views(multi_view_folder, real_videos):
    classifier = pipeline("video-classification", model=multi_view_folder, trust_remote_code=True)
    assert type(classifier).__name__ == "XViTVideoClassificationPipeline"  # the folder's config names it
    video = real_videos["bigbuckbunny"]
    probabilities = view_probabilities(multi_view_folder, video)
    assert probabilities.shape == (6, len(LABELS))
    assert_answer(classifier(video, top_k=4), probabilities.mean(0))
    assert (probabilities[0] - probabilities.mean(0)).abs().max() > 0.01  # view 0 alone: another answer


def test_pipeline_batches_multi_view_videos_as_one_at_a_time(multi_view_folder, real_videos):
    classifier = pipeline("video-classification", model=multi_view_folder, trust_remote_code=True)
    videos = [real_videos["bikes"], real_videos["carphone_pristine"], real_videos["bigbuckbunny"]]
    batched = classifier(videos, batch_size=2, top_k=4)  # a batch of 2 videos (12 views), then one of 1
    for answer, video in zip(batched, videos, strict=True):
        assert_answer(answer, view_probabilities(multi_view_folder, video).mean(0))


def test_pipeline_takes_the_views_from_the_call(multi_view_folder, real_videos):
    classifier = pipeline("video-classification", model=multi_view_folder, trust_remote_code=True)
    video = real_videos["bikes"]
    one_view = dict(num_temporal_views=1, num_spatial_crops=1)
    assert_answer(classifier(video, top_k=4, **one_view), view_probabilities(multi_view_folder, video, **one_view)[0])
    crops = dict(num_temporal_views=1, num_spatial_crops=3)
    assert_answer(classifier(video, top_k=2, **crops), view_probabilities(multi_view_folder, video, **crops).mean(0))


@pytest.mark.parametrize("function_to_apply", ["sigmoid", "none"])
def test_pipeline_averages_the_views_after_the_chosen_function(multi_view_folder, real_videos, function_to_apply):
    classifier = pipeline("video-classification", model=multi_view_folder, trust_remote_code=True)
    video = real_videos["bikes"]
    model = XViTForVideoClassification.from_pretrained(multi_view_folder).eval()
    with torch.no_grad():
        logits = model(**XViTVideoProcessor.from_pretrained(multi_view_folder)(video, return_tensors="pt")).logits
    expected = (logits.sigmoid() if function_to_apply == "sigmoid" else logits).mean(0)
    assert_answer(classifier(video, top_k=4, function_to_apply=function_to_apply), expected)


def test_pipeline_refuses_the_parent_s_frame_sampling_rate(multi_view_folder, real_videos):
    classifier = pipeline("video-classification", model=multi_view_folder, trust_remote_code=True)
    with pytest.raises(ValueError, match="`frame_sampling_rate` is not an option.*`sampling_rate`"):
        classifier(real_videos["bikes"], frame_sampling_rate=2)


def test_pipeline_without_remote_code_is_refused_rather_than_scoring_one_view(multi_view_folder):
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        pipeline("video-classification", model=multi_view_folder)


def test_pipeline_class_with_the_installed_package_batches_any_xvit_folder(model_folder, real_videos):
    # `model_folder` has neither an image processor nor the pipeline in its config.
    classifier = pipeline("video-classification", model=model_folder, pipeline_class=XViTVideoClassificationPipeline)
    assert classifier.image_processor is None and classifier.feature_extractor is None
    videos = [real_videos["bikes"], real_videos["bigbuckbunny"], real_videos["carphone_pristine"]]
    for answer, video in zip(classifier(videos, batch_size=2, top_k=3), videos, strict=True):
        assert_answer(answer, view_probabilities(model_folder, video)[0])
    assert classifier.feature_extractor is None  # the video processor stood in for the batches only


def test_pipeline_refuses_non_finite_scores(multi_view_folder, real_videos):
    classifier = pipeline("video-classification", model=multi_view_folder, trust_remote_code=True)
    with torch.no_grad():
        classifier.model.classifier.out_proj.bias[1] = float("nan")
    with pytest.raises(ValueError, match=r"scores \(logits\).*not finite.*weights hold non-finite values"):
        classifier(real_videos["bikes"])


@pytest.mark.slow
def test_pipeline_from_a_hub_folder_in_a_fresh_process(multi_view_folder, real_videos, tmp_path):
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf")}
    env.update(HF_HUB_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1")
    video = real_videos["bigbuckbunny"]
    completed = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS_SCRIPT, multi_view_folder, video],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    output = json.loads(completed.stdout.strip().splitlines()[-1])
    assert output["processor"].startswith("transformers_modules.")  # the saved copy, not the package
    assert output["pipeline"].startswith("transformers_modules.")
    assert_answer(output["result"], view_probabilities(multi_view_folder, video).mean(0))
