"""`pipeline("video-classification", trust_remote_code=True)(videos, batch_size=2)` on every kind of folder this
package writes (the folder writer that the training script and both converters use, the ViT converter's output, the
demo model as `make demo` completes it) gives what the pipeline gives one video at a time."""

from pathlib import Path

import pytest
import torch
from transformers import ViTConfig, ViTModel, pipeline

from examples.demo import DEMO_MODEL
from modeling_xvit import XViTForVideoClassification, XViTVideoProcessor
from modeling_xvit.conversion.vit import main as convert_vit
from modeling_xvit.hub.card import ModelCardInputs
from modeling_xvit.hub.folder import write_code_files, write_hub_folder
from tests.demo_model import copy_without_code

SCORE_TOLERANCE = 1e-5


def assert_batches_as_one_at_a_time(folder: Path, videos: list[str]) -> None:
    classifier = pipeline("video-classification", model=str(folder), trust_remote_code=True)
    top_k = classifier.model.config.num_labels
    one_at_a_time = [classifier(video, top_k=top_k) for video in videos]
    batched = classifier(videos, batch_size=2, top_k=top_k)  # 3 videos: a batch of 2 and one of 1
    assert len(batched) == len(videos)
    for answer, expected in zip(batched, one_at_a_time, strict=True):
        assert [entry["label"] for entry in answer] == [entry["label"] for entry in expected]
        torch.testing.assert_close(
            torch.tensor([entry["score"] for entry in answer]),
            torch.tensor([entry["score"] for entry in expected]),
            rtol=0,
            atol=SCORE_TOLERANCE,
        )


@pytest.fixture(scope="module")
def videos(real_videos) -> list[str]:
    # Different videos, so that a batch mixing them up would show.
    return [real_videos["bikes"], real_videos["carphone_pristine"], real_videos["bigbuckbunny"]]


def test_a_folder_of_the_folder_writer_batches(tiny_config, videos, tmp_path):
    torch.manual_seed(0)
    model = XViTForVideoClassification(tiny_config(id2label={0: "archery", 1: "juggling", 2: "surfing"}))
    processor = XViTVideoProcessor(num_frames=4, size={"shortest_edge": 32}, crop_size=32)
    folder = write_hub_folder(tmp_path / "xvit", model, ModelCardInputs(origin="x"), processor)
    assert_batches_as_one_at_a_time(folder, videos)


def test_the_vit_converter_s_folder_batches(videos, tmp_path):
    torch.manual_seed(0)
    vit = ViTConfig(
        image_size=32, patch_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64
    )
    ViTModel(vit, add_pooling_layer=False).save_pretrained(tmp_path / "vit")
    labels = tmp_path / "labels.txt"
    labels.write_text("archery\njuggling\n")
    arguments = ["--vit", str(tmp_path / "vit"), "--output-dir", str(tmp_path / "xvit"), "--num-frames", "4"]
    assert convert_vit([*arguments, "--labels", str(labels), "--skip-folder-check"]) == 0
    assert_batches_as_one_at_a_time(tmp_path / "xvit", videos)


def test_the_demo_model_batches(videos, tmp_path):
    # The folder as a fresh clone has it, completed with its code as `make demo` does.
    folder = write_code_files(copy_without_code(DEMO_MODEL, tmp_path / DEMO_MODEL.name))
    assert_batches_as_one_at_a_time(folder, videos)
