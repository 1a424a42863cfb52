"""Writing complete model folders: contents, remote code, atomicity, interrupted writers, and a folder saved with
`save_pretrained` used by the pipeline."""

import json
import os
import subprocess
import sys

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from transformers import AutoConfig, AutoVideoProcessor, pipeline

from modeling_xvit import XViTForVideoClassification, XViTModel, XViTVideoProcessor
from modeling_xvit.errors import ConversionError
from modeling_xvit.hub.card import CardResult, ModelCardInputs
from modeling_xvit.hub.folder import (
    AUTO_MAP,
    HANDLER_SOURCE,
    atomic_output_dir,
    check_output_dir,
    code_files,
    remove_stale_partial_folders,
    write_code_files,
    write_hub_folder,
)
from modeling_xvit.hub.folder import main as folder_main

CARD = ModelCardInputs(origin="A test model.", model_id="someone/tiny-xvit")


@pytest.fixture
def model(tiny_config) -> XViTForVideoClassification:
    torch.manual_seed(0)
    return XViTForVideoClassification(tiny_config(id2label={0: "archery", 1: "juggling", 2: "surfing"}))


def test_folder_holds_everything_the_hub_needs(model, tmp_path):
    folder = write_hub_folder(tmp_path / "xvit", model, CARD)

    names = sorted(path.name for path in folder.iterdir())
    code = sorted(path.name for path in code_files())
    assert names == sorted([*code, *AUTO_MAP, "model.safetensors", "handler.py", "README.md"])
    assert {"modeling_xvit.py", "configuration_xvit.py", "video_processing_xvit.py", "clip_sampling.py"} <= set(code)
    assert all((folder / path.name).read_bytes() == path.read_bytes() for path in code_files())  # today's package
    assert os.listdir(tmp_path) == ["xvit"]  # no staging folder left

    config = json.loads((folder / "config.json").read_text())
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForVideoClassification"}
    assert config["id2label"] == {"0": "archery", "1": "juggling", "2": "surfing"}
    processor = json.loads((folder / "video_preprocessor_config.json").read_text())
    assert processor["auto_map"] == {"AutoVideoProcessor": "video_processing_xvit.XViTVideoProcessor"}
    # Without a processor of its own, the model gets one for its clip length and frame size.
    assert processor["num_frames"] == 4 and processor["crop_size"] == {"height": 32, "width": 32}
    # The image processor (which lets the pipeline batch) takes decoded frames as the video processor does.
    image_processor = json.loads((folder / "preprocessor_config.json").read_text())
    assert image_processor["auto_map"] == {"AutoImageProcessor": "image_processing_xvit.XViTImageProcessor"}
    shared = image_processor.keys() - {"auto_map", "image_processor_type"}
    assert len(shared) > 10 and all(image_processor[key] == processor[key] for key in shared)
    assert (folder / "handler.py").read_bytes() == HANDLER_SOURCE.read_bytes()
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "video-classification"
    assert 'pipeline("video-classification", model="someone/tiny-xvit", trust_remote_code=True)' in card.text


def test_saving_the_model_writes_no_auto_map_and_the_folder_writer_adds_the_remote_code(model, tmp_path):
    """`save_pretrained` writes a plain Transformers folder (the model's config is left as it was); `write_code_files`
    turns it into a folder that loads as remote code, and a second call changes nothing."""
    model.save_pretrained(tmp_path / "xvit")
    XViTVideoProcessor(num_frames=4, size={"shortest_edge": 32}, crop_size=32).save_pretrained(tmp_path / "xvit")
    assert getattr(model.config, "auto_map", None) is None
    assert sorted(os.listdir(tmp_path / "xvit")) == [
        "config.json",
        "model.safetensors",
        "video_preprocessor_config.json",
    ]
    assert "auto_map" not in json.loads((tmp_path / "xvit" / "config.json").read_text())

    folder = write_code_files(tmp_path / "xvit")
    for name in ("config.json", "video_preprocessor_config.json"):
        assert json.loads((folder / name).read_text())["auto_map"] == AUTO_MAP[name]
    assert all((folder / path.name).read_bytes() == path.read_bytes() for path in (*code_files(), HANDLER_SOURCE))
    written = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}
    write_code_files(folder)
    assert {path.name: path.stat().st_mtime_ns for path in folder.iterdir()} == written
    with pytest.raises(ConversionError, match="is not a model folder: it has no config.json"):
        write_code_files(tmp_path)


def test_the_code_files_from_the_command_line(model, tmp_path, capsys):
    model.save_pretrained(tmp_path / "xvit")
    assert folder_main([str(tmp_path / "xvit")]) == 0
    assert capsys.readouterr().out == f"Wrote the code files of {tmp_path / 'xvit'}\n"
    assert (tmp_path / "xvit" / "handler.py").read_bytes() == HANDLER_SOURCE.read_bytes()
    assert folder_main([str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"error: {tmp_path} is not a model folder: it has no config.json.\n"


def test_every_file_gets_the_mode_of_a_new_file(model, tmp_path):
    """Transformers saves the weights through a private temporary file; the folder is for sharing."""
    umask = os.umask(0o022)
    try:
        folder = write_hub_folder(tmp_path / "hub", model, ModelCardInputs(origin="Tests."))
    finally:
        os.umask(umask)
    modes = {path.name: path.stat().st_mode & 0o777 for path in folder.iterdir()}
    assert modes["model.safetensors"] == 0o644 and set(modes.values()) == {0o644}


def test_a_processor_that_does_not_fit_the_model_is_refused(model, tmp_path):
    processor = XViTVideoProcessor(num_frames=8, size={"shortest_edge": 32}, crop_size=32)
    with pytest.raises(ConversionError, match="makes 8-frame clips of 32 x 32 pixels but the model takes 4 frames"):
        write_hub_folder(tmp_path / "xvit", model, CARD, processor)
    assert os.listdir(tmp_path) == []


def test_only_a_video_classifier_makes_a_hub_folder(tiny_config, tmp_path):
    with pytest.raises(ConversionError, match="holds a video classifier .* got XViTModel"):
        write_hub_folder(tmp_path / "xvit", XViTModel(tiny_config()), CARD)


def test_an_invalid_card_fails_before_anything_is_written(model, tmp_path):
    results_without_data_set = ModelCardInputs(origin="x", results=[CardResult(50.0, 90.0, "1 clip")])
    with pytest.raises(ValueError, match="Results need the data set"):
        write_hub_folder(tmp_path / "xvit", model, results_without_data_set)
    assert os.listdir(tmp_path) == []


def test_writing_in_place_replaces_the_files_of_an_existing_folder(model, tmp_path):
    folder = tmp_path / "run"
    (folder / "checkpoint-10").mkdir(parents=True)
    (folder / "config.json").write_text('{"stale": true}')
    write_hub_folder(folder, model, CARD, atomic=False)
    assert (folder / "checkpoint-10").is_dir()
    assert json.loads((folder / "config.json").read_text())["model_type"] == "xvit"
    assert XViTForVideoClassification.from_pretrained(folder).config.num_labels == 3


def test_given_weights_are_saved_instead_of_the_model_s_own(model, tmp_path):
    # As the training script saves the full weights that `accelerator.get_state_dict` gathers from FSDP shards.
    expected = {name: torch.full_like(value, 0.5) for name, value in model.state_dict().items()}
    folder = write_hub_folder(tmp_path / "xvit", model, CARD, state_dict=dict(expected))
    saved = load_file(folder / "model.safetensors")
    assert saved.keys() == expected.keys() and all(torch.equal(saved[name], expected[name]) for name in saved)


KILLED_WRITER = """
import os, signal, sys, torch
import modeling_xvit.hub.folder as model_folder
from modeling_xvit.hub.card import ModelCardInputs
from modeling_xvit import XViTConfig, XViTForVideoClassification

def killed_while_writing_the_card(path, text):
    os.kill(os.getpid(), signal.SIGKILL)  # no cleanup runs: as a crash, an OOM kill or a power cut

model_folder._write_text_atomically = killed_while_writing_the_card
config = XViTConfig.from_pretrained(sys.argv[2])
model_folder.write_hub_folder(sys.argv[1], XViTForVideoClassification(config), ModelCardInputs(origin="x"))
"""


@pytest.mark.slow
def test_a_killed_writer_leaves_an_unloadable_partial_folder_that_the_next_run_removes(tmp_path, tiny_config):
    tiny_config().save_pretrained(tmp_path / "config")
    output_dir = tmp_path / "xvit"
    completed = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(output_dir), str(tmp_path / "config")],
        capture_output=True,
        timeout=300,
    )
    assert completed.returncode == -9, completed.stderr.decode()[-2000:]
    (partial,) = tmp_path.glob(".xvit.*.partial")
    assert (partial / "model.safetensors").is_file()  # the weights were written ...
    with pytest.raises((OSError, ValueError), match="config.json"):  # ... but config.json comes last: not a model
        AutoConfig.from_pretrained(partial)

    check_output_dir(output_dir)
    assert sorted(os.listdir(tmp_path)) == ["config"]


def test_a_folder_still_being_written_is_not_removed(tmp_path):
    with atomic_output_dir(tmp_path / "xvit") as staging:
        assert remove_stale_partial_folders(tmp_path / "xvit") == []
        assert staging.is_dir()
    assert os.listdir(tmp_path) == ["xvit"]


def test_quick_start_saves_a_folder_that_the_pipeline_and_auto_classes_use(tmp_path, tiny_config, real_videos):
    # The README's quick start at a tiny size: save the model and its processor, then use the folder.
    torch.manual_seed(0)
    model = XViTForVideoClassification(tiny_config()).eval()
    model.save_pretrained(tmp_path / "xvit")
    XViTVideoProcessor(num_frames=4, size={"shortest_edge": 32}, crop_size=32).save_pretrained(tmp_path / "xvit")

    processor = AutoVideoProcessor.from_pretrained(tmp_path / "xvit", trust_remote_code=True)
    classifier = pipeline("video-classification", model=str(tmp_path / "xvit"), trust_remote_code=True)
    result = classifier(real_videos["carphone_pristine"], top_k=2)
    with torch.no_grad():
        logits = model(**processor(real_videos["carphone_pristine"], return_tensors="pt")).logits
    top = logits[0].softmax(-1).topk(2)
    assert [entry["label"] for entry in result] == [model.config.id2label[i] for i in top.indices.tolist()]
    torch.testing.assert_close(torch.tensor([entry["score"] for entry in result]), top.values)
