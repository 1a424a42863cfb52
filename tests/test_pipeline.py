import json
import os
import subprocess
import sys

import pytest
import torch
from transformers import pipeline

from modeling_xvit import XViTForVideoClassification, XViTVideoProcessor

LABELS = {0: "archery", 1: "juggling", 2: "surfing", 3: "yoga"}

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
print(json.dumps({"result": result, "processor": type(classifier.video_processor).__module__}))
"""


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory, tiny_config) -> str:
    torch.manual_seed(0)
    config = tiny_config(
        num_attention_heads=2,
        classifier_hidden_size=32,
        num_labels=len(LABELS),
        id2label=LABELS,
        label2id={label: index for index, label in LABELS.items()},
    )
    folder = tmp_path_factory.mktemp("tiny-xvit")
    XViTForVideoClassification(config).save_pretrained(folder)
    XViTVideoProcessor(size={"shortest_edge": 32}, crop_size=32, num_frames=4).save_pretrained(folder)
    return str(folder)


def expected_scores(folder: str, video: str) -> torch.Tensor:
    model = XViTForVideoClassification.from_pretrained(folder).eval()
    inputs = XViTVideoProcessor.from_pretrained(folder)(video, return_tensors="pt")
    with torch.no_grad():
        return model(**inputs).logits[0].softmax(-1)


def test_pipeline_with_the_installed_package(model_folder, real_videos):
    classifier = pipeline("video-classification", model=model_folder)
    assert type(classifier.video_processor) is XViTVideoProcessor
    result = classifier(real_videos["bigbuckbunny"], top_k=2)
    assert len(result) == 2 and all(entry["label"] in LABELS.values() for entry in result)
    probabilities = expected_scores(model_folder, real_videos["bigbuckbunny"])
    top = probabilities.topk(2)
    assert [entry["label"] for entry in result] == [LABELS[index] for index in top.indices.tolist()]
    torch.testing.assert_close(torch.tensor([entry["score"] for entry in result]), top.values)


def test_pipeline_from_a_saved_folder_in_a_fresh_process(model_folder, real_videos, tmp_path):
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf")}
    env.update(HF_HUB_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1")
    video = real_videos["bigbuckbunny"]
    completed = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS_SCRIPT, model_folder, video],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    output = json.loads(completed.stdout.strip().splitlines()[-1])
    assert output["processor"].startswith("transformers_modules.")  # the saved copy, not the package
    result = output["result"]
    probabilities = expected_scores(model_folder, video)
    top = probabilities.topk(3)
    assert [entry["label"] for entry in result] == [LABELS[index] for index in top.indices.tolist()]
    torch.testing.assert_close(torch.tensor([entry["score"] for entry in result]), top.values)
