"""The Hub-folder verifier: a broken folder fails, naming each broken check (a complete one passes every check offline
without the package: see below)."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from modeling_xvit import XViTForVideoClassification, XViTVideoProcessor
from modeling_xvit.hub.card import ModelCardInputs
from modeling_xvit.hub.folder import write_hub_folder
from modeling_xvit.hub.verify import main, static_checks

CHECKS = (
    "publishable files",
    "required files",
    "config.json auto_map",
    "video_preprocessor_config.json auto_map",
    "preprocessor_config.json auto_map",
    "model card metadata",
    "AutoConfig",
    "AutoModel",
    "AutoModelForVideoClassification",
    "AutoVideoProcessor",
    'pipeline("video-classification")',
    "pipeline batch_size=2",
    "Inference Endpoints handler",
    "no modeling_xvit import",
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tiny_config) -> Path:
    torch.manual_seed(0)
    model = XViTForVideoClassification(tiny_config(id2label={0: "archery", 1: "juggling", 2: "surfing"}))
    processor = XViTVideoProcessor(num_frames=4, size={"shortest_edge": 32}, crop_size=32)
    return write_hub_folder(tmp_path_factory.mktemp("verify") / "xvit", model, ModelCardInputs(origin="x"), processor)


def checklist(output: str) -> dict[str, str]:
    """`{check name: "ok" | "FAIL"}` from the printed checklist."""
    lines = [line.strip() for line in output.splitlines() if line.strip().startswith(("[ok]", "[FAIL]"))]
    return {line.split("]", 1)[1].strip().split(": ", 1)[0]: line[1:].split("]")[0] for line in lines}


# A complete folder passes every check, through these checks in a fresh process: on a real video, the training
# script's published folder (tests/test_training_hub_folder.py, this checklist all ok); the demo model's
# (tests/test_demo_model.py) and a converted one's (tests/test_conversion.py, the command line's --verify).


@pytest.mark.slow
def test_a_broken_folder_fails_naming_the_broken_checks(folder, tmp_path, capsys):
    broken = Path(shutil.copytree(folder, tmp_path / "broken"))
    (broken / "video_processing_xvit.py").unlink()  # the processor's remote code is gone
    config = json.loads((broken / "config.json").read_text())
    del config["auto_map"]["AutoModel"]
    (broken / "config.json").write_text(json.dumps(config))
    (broken / "README.md").write_text(
        (broken / "README.md").read_text().replace("pipeline_tag: video-classification\n", "")
    )

    assert main([str(broken)]) == 1
    captured = capsys.readouterr()
    results = checklist(captured.out)
    failed = {
        "required files",
        "config.json auto_map",
        "model card metadata",
        "AutoModel",
        "AutoVideoProcessor",
        'pipeline("video-classification")',
        "pipeline batch_size=2",
        "Inference Endpoints handler",
    }
    assert {name for name, status in results.items() if status == "FAIL"} == failed, captured.out
    assert "missing ['video_processing_xvit.py']" in captured.out
    assert "config.json has no auto_map entry for ['AutoModel']" in captured.out
    assert captured.err.startswith("error: The model folder failed the Hub checks ['required files',")


def test_file_checks_refuse_a_symlink_out_of_the_folder(folder, tmp_path):
    broken = Path(shutil.copytree(folder, tmp_path / "linked"))
    (tmp_path / "secret.txt").write_text("token")
    (broken / "notes.txt").symlink_to(tmp_path / "secret.txt")
    (files,) = [check for check in static_checks(broken) if check.name == "publishable files"]
    assert (
        not files.ok and f"notes.txt: a symbolic link to {tmp_path / 'secret.txt'}, outside the folder" in files.detail
    )


def test_the_pipeline_a_config_names_must_be_in_the_folder(folder, tmp_path):
    broken = Path(shutil.copytree(folder, tmp_path / "pipeline"))
    (broken / "pipeline_xvit.py").unlink(missing_ok=True)
    config = json.loads((broken / "config.json").read_text())
    pipeline = {"impl": "pipeline_xvit.XViTVideoClassificationPipeline", "pt": ["AutoModelForVideoClassification"]}
    config["custom_pipelines"] = {"video-classification": pipeline}
    (broken / "config.json").write_text(json.dumps(config))
    (required,) = [check for check in static_checks(broken) if check.name == "required files"]
    assert not required.ok and "missing ['pipeline_xvit.py']" in required.detail
