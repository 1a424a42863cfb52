"""End-to-end runs of examples/run_video_classification.py on tiny real mp4 files, one per data source."""

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import run_help
from safetensors.torch import load_file
from transformers import set_seed

from examples.run_video_classification import main
from modeling_xvit.hub.card import results_from_all_results
from modeling_xvit.training.arguments import ModelArguments, parse_arguments
from modeling_xvit.training.model import build_model, build_video_processor
from modeling_xvit.training.trainer import TooManyBadVideosError
from tests.training_videos import (
    CLASSES,
    tiny_run,
    write_class_names,
    write_video_folder,
    write_webdataset_shards,
)

REPOSITORY = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPOSITORY / "examples" / "recipes").glob("*.yaml"))


@pytest.fixture(scope="module")
def video_root(tmp_path_factory) -> Path:
    return write_video_folder(tmp_path_factory.mktemp("videos"))


@pytest.mark.slow
def test_help_by_path_and_as_a_module_lists_trainer_and_script_arguments():
    for output in run_help([["examples/run_video_classification.py"], ["-m", "examples.run_video_classification"]]):
        for argument in ("--per_device_train_batch_size", "--resume_from_checkpoint", "--bf16", "--recipe"):
            assert argument in output
        for argument in ("--init_from_image_model", "--eval_num_temporal_views", "--max_bad_video_fraction"):
            assert argument in output


@pytest.mark.slow
def test_the_script_copied_alone_into_an_empty_folder_runs_and_says_where_its_model_is(
    video_root, tmp_path, real_videos
):
    # Only installed packages: no sys.path edits, no imports from the repository's folders.
    folder = tmp_path / "alone"
    folder.mkdir()
    shutil.copy(REPOSITORY / "examples" / "run_video_classification.py", folder)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}

    def run(*arguments: str) -> subprocess.CompletedProcess:
        command = [sys.executable, *arguments]
        completed = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
        assert completed.returncode == 0, completed.stderr[-3000:]
        return completed

    # (Its --help, the same parser as this run's, is checked by path and as a module in the repository.)
    arguments = tiny_run(Path("run"), "--data_dir", str(video_root), "--do_train", "--do_eval", "--max_steps", "2")
    completed = run("run_video_classification.py", *arguments)
    assert json.loads((folder / "run" / "trainer_state.json").read_text())["global_step"] == 2

    # Each `datasets` line once; the last lines: where the model is, its results, the command that tries it.
    output = completed.stdout + completed.stderr
    assert output.count("downloaded and prepared to") == 1, output[-3000:]
    summary = completed.stdout[completed.stdout.index("The model is in run: a complete Hub folder") :].splitlines()
    assert summary[1] == "Results (all of them in run/all_results.json):" and "eval_top1_accuracy = " in summary[2]
    command = shlex.split(summary[-1].replace("VIDEO.mp4", real_videos["bikes"]))
    assert command[:2] == [sys.executable, "-c"] and "pipeline('video-classification', model='run'" in command[2]
    result = run("-c", command[2]).stdout
    assert sorted(entry["label"] for entry in ast.literal_eval(result.strip().splitlines()[-1])) == sorted(CLASSES)


def test_dataloader_workers_default_to_the_cores_available(tmp_path, monkeypatch):
    cores = len(os.sched_getaffinity(0))
    assert parse_arguments(["--output_dir", str(tmp_path)])[2].dataloader_num_workers == cores
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # two processes on this machine share them
    assert parse_arguments(["--output_dir", str(tmp_path)])[2].dataloader_num_workers == max(1, cores // 2)
    assert (
        parse_arguments(["--output_dir", str(tmp_path), "--dataloader_num_workers", "0"])[2].dataloader_num_workers
        == 0
    )
    for recipe in RECIPES:  # a recipe sets no more workers than a small machine has
        assert yaml.safe_load(recipe.read_text()).get("dataloader_num_workers", 0) <= 1, recipe.name


@pytest.mark.slow
def test_videofolder_train_evaluate_predict_and_the_saved_folder(video_root, tmp_path):
    output_dir = tmp_path / "run"
    arguments = ["--data_dir", str(video_root), "--do_train", "--do_eval", "--do_predict", "--max_steps", "3"]
    views = ["--eval_num_temporal_views", "2", "--eval_num_spatial_crops", "3", "--dataloader_num_workers", "1"]
    results = main(tiny_run(output_dir, *arguments, *views))

    saved = json.loads((output_dir / "all_results.json").read_text())
    for key in ("train_loss", "eval_top1_accuracy", "eval_top5_accuracy", "test_top1_accuracy", "test_top5_accuracy"):
        assert 0 <= saved[key] == results[key]
    for prefix in ("eval", "test"):
        assert 0 <= saved[f"{prefix}_multiview_top1_accuracy"] <= saved[f"{prefix}_multiview_top5_accuracy"] == 1.0
        assert saved[f"{prefix}_multiview_num_views"] == "2x3" and saved[f"{prefix}_bad_videos"] == 0
    card_results = results_from_all_results(output_dir / "all_results.json")  # what the model card reads
    assert [(result.num_temporal_views, result.num_spatial_crops) for result in card_results] == [(1, 1), (2, 3)]

    predictions = [json.loads(line) for line in (output_dir / "predictions.jsonl").read_text().splitlines()]
    test_videos = sorted(str(path) for path in (video_root / "test").glob("*/*.mp4"))
    assert sorted(entry["video"] for entry in predictions) == test_videos
    for entry in predictions:
        assert entry["label"] == Path(entry["video"]).parent.name
        assert sum(entry["scores"].values()) == pytest.approx(1, abs=1e-4)
        assert entry["predicted_label"] == max(entry["scores"], key=entry["scores"].get)
    assert (output_dir / "training_curve.png").read_bytes().startswith(b"\x89PNG")
    # The saved folder in a fresh process: its pipeline on a real video in the test of the script copied alone, and
    # its remote code without the package in the Hub verifier's checks (tests/test_training_hub_folder.py).


@pytest.mark.slow
def test_lists_with_a_video_root_class_indices_a_frozen_backbone_and_tensorboard(video_root, tmp_path):
    # The original's list format: `relative/path.mp4 class_index`, no header, class names from a file.
    for split in ("train", "validation"):
        lines = [
            f"{path.relative_to(video_root).as_posix()} {CLASSES.index(path.parent.name)}"
            for path in sorted((video_root / split).glob("*/*.mp4"))
        ]
        (tmp_path / f"{split}.csv").write_text("\n".join(lines) + "\n")
    class_names = write_class_names(tmp_path / "classes.txt")
    output_dir = tmp_path / "run"
    data = ["--train_file", str(tmp_path / "train.csv"), "--validation_file", str(tmp_path / "validation.csv")]
    data += ["--video_root", str(video_root), "--class_names", str(class_names)]
    run = ["--do_train", "--do_eval", "--max_steps", "2", "--freeze_backbone", "--report_to", "tensorboard"]
    results = main(tiny_run(output_dir, *data, *run))

    assert 0 <= results["eval_top1_accuracy"] <= 1 and results["eval_bad_videos"] == 0
    assert list(output_dir.glob("runs/*/events.out.tfevents.*"))  # --report_to tensorboard
    config = json.loads((output_dir / "config.json").read_text())
    assert config["id2label"] == {str(index): name for index, name in enumerate(CLASSES)}
    trained = load_file(output_dir / "model.safetensors")
    set_seed(0)  # the run's seed: the same initial weights
    initial = build_model(ModelArguments(config_overrides=tiny_run(output_dir)[1]), list(CLASSES)).state_dict()
    for name, value in trained.items():  # only the classifier moved
        assert torch.equal(value, initial[name]) == (not name.startswith("classifier.")), name


@pytest.mark.slow
def test_streamed_webdataset_shards(video_root, tmp_path):
    shards = tmp_path / "shards"
    for split in ("train", "validation"):
        write_webdataset_shards(shards, video_root, split)
    class_names = write_class_names(tmp_path / "classes.txt")
    output_dir = tmp_path / "run"
    data = ["--dataset_name", str(shards), "--streaming", "--class_names", str(class_names)]
    data += ["--label_column_name", "cls"]  # the video column is found by its Video feature (`mp4`)
    results = main(tiny_run(output_dir, *data, "--do_train", "--do_eval", "--max_steps", "2"))

    assert results["train_loss"] > 0 and results["eval_bad_videos"] == 0
    assert results["eval_samples_per_second"] > 0 and 0 <= results["eval_top1_accuracy"] <= 1
    assert (output_dir / "model.safetensors").is_file()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("good", "bad", "message"),
    [("0", "7", "label 7 is out of range for 3 classes"), ("left", "jumping", "unknown class name 'jumping'")],
)
def test_bad_labels_fail_before_training_with_the_row(video_root, tmp_path, good, bad, message):
    videos = [path.relative_to(video_root).as_posix() for path in sorted(video_root.glob("train/*/*.mp4"))]
    labels = [bad if row == 3 else good for row in range(len(videos))]
    rows = [f"{video},{label}" for video, label in zip(videos, labels, strict=True)]
    (tmp_path / "train.csv").write_text("video,label\n" + "\n".join(rows) + "\n")
    data = ["--train_file", str(tmp_path / "train.csv"), "--video_root", str(video_root)]
    data += ["--class_names", str(write_class_names(tmp_path / "classes.txt"))]
    with pytest.raises(ValueError, match=rf"Split 'train', row 3 \(video '.*{re.escape(videos[3])}'\): {message}"):
        main(tiny_run(tmp_path / "run", *data, "--do_train", "--max_steps", "1"))
    assert not (tmp_path / "run").exists()


@pytest.fixture
def folder_with_a_corrupt_video(video_root, tmp_path) -> Path:
    root = tmp_path / "videos"
    for name in CLASSES[:2]:
        for video in sorted((video_root / "train" / name).glob("*.mp4"))[:2]:
            (root / "train" / name).mkdir(parents=True, exist_ok=True)
            shutil.copy(video, root / "train" / name)
    (root / "train" / "left" / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 and then nothing")
    return root


@pytest.mark.slow
def test_a_corrupt_video_is_skipped_and_counted(folder_with_a_corrupt_video, tmp_path, caplog):
    # Batches of one video: the corrupt one makes a batch with no readable video, which steps with zero gradients.
    total = 2 * 2 + 1
    arguments = ["--data_dir", str(folder_with_a_corrupt_video), "--do_train", "--num_train_epochs", "1"]
    arguments += ["--per_device_train_batch_size", "1", "--max_bad_video_fraction", "0.25"]
    with caplog.at_level("WARNING", logger="modeling_xvit.training.trainer"):
        main(tiny_run(tmp_path / "run", *arguments))

    trainer_state = json.loads((tmp_path / "run" / "trainer_state.json").read_text())
    assert trainer_state["global_step"] == total
    assert trainer_state["log_history"][-2]["bad_videos"] == 1  # the last step's log, before the summary
    assert [record.message for record in caplog.records if "corrupt.mp4" in record.message]


@pytest.mark.slow
def test_too_many_bad_videos_stop_the_run(folder_with_a_corrupt_video, tmp_path):
    arguments = ["--data_dir", str(folder_with_a_corrupt_video), "--do_train", "--num_train_epochs", "1"]
    with pytest.raises(
        TooManyBadVideosError, match=r"1 of the \d+ videos .* \(\d+\.\d%\), more than .* 0\.01 .*corrupt"
    ):
        main(tiny_run(tmp_path / "run", *arguments))


@pytest.mark.parametrize("recipe", RECIPES, ids=[path.stem for path in RECIPES])
def test_recipes_set_defaults_that_flags_override(recipe, tmp_path):
    parsed = parse_arguments(["--recipe", str(recipe), "--output_dir", str(tmp_path)])
    for name, value in yaml.safe_load(recipe.read_text()).items():
        configured = next(getattr(arguments, name) for arguments in parsed if hasattr(arguments, name))
        assert getattr(configured, "value", configured) == value, name  # enums (optimizer, schedule) by value
    _, _, training_args = parse_arguments(["--recipe", str(recipe), "--output_dir", str(tmp_path), "--seed", "7"])
    assert training_args.seed == 7


def test_a_recipe_with_an_unknown_argument_is_refused(tmp_path):
    (tmp_path / "recipe.yaml").write_text("learning_rate: 0.1\nlearnig_rate_typo: 2\n")
    with pytest.raises(ValueError, match=r"unknown arguments \['learnig_rate_typo'\]"):
        parse_arguments(["--recipe", str(tmp_path / "recipe.yaml"), "--output_dir", str(tmp_path)])


def test_a_config_file_with_overrides_gets_a_processor_made_for_it():
    model_args = ModelArguments(
        config_name=str(REPOSITORY / "examples" / "configs" / "xvit_tiny_64px_8f.json"),
        config_overrides="num_frames=4,space_time_mixing_layers=[0,2]",
        video_processor_overrides="sampling=dense,sampling_rate=4,do_flip=false",
    )
    model = build_model(model_args, ["a", "b"])
    assert (model.config.image_size, model.config.num_frames, model.config.num_labels) == (64, 4, 2)
    assert model.config.space_time_mixing_layers == [0, 2] and model.config.space_time_mixing_segment_length == 4
    processor = build_video_processor(model_args, model.config)
    assert processor.num_frames == 4 and processor.crop_size.height == 64 and processor.size.shortest_edge == 64
    assert processor.scale_jitter == [73, 91] and (processor.sampling, processor.sampling_rate) == ("dense", 4)
    assert processor.do_flip is False
    with pytest.raises(ValueError, match=r"--config_overrides: unknown setting\(s\) \['num_frame'\]"):
        build_model(ModelArguments(config_overrides="num_frame=4"), ["a", "b"])


def test_init_from_an_image_vit(tmp_path):
    from transformers import ViTConfig, ViTModel

    vit = ViTModel(
        ViTConfig(
            image_size=32,
            patch_size=16,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
        ),
        add_pooling_layer=False,
    )
    vit.save_pretrained(tmp_path / "vit")
    model = build_model(
        ModelArguments(init_from_image_model=str(tmp_path / "vit"), config_overrides="num_frames=4"), list(CLASSES)
    )
    assert model.config.num_frames == 4 and model.config.id2label == dict(enumerate(CLASSES))
    torch.testing.assert_close(model.xvit.layers[1].state_dict(), vit.layers[1].state_dict(), rtol=0, atol=0)
    torch.testing.assert_close(model.xvit.embeddings.cls_token, vit.embeddings.cls_token, rtol=0, atol=0)


@pytest.mark.slow
def test_views_the_processor_refuses_fail_before_training(video_root, tmp_path):
    # Segment sampling has 3 test views (middle, start, end): a 4th is refused before any video is read.
    arguments = ["--data_dir", str(video_root), "--do_eval", "--eval_num_temporal_views", "4"]
    with pytest.raises(ValueError, match=r"The video processor refuses the options .*'num_temporal_views': 4"):
        main(tiny_run(tmp_path / "run", *arguments))


def test_fine_tuning_a_saved_xvit_on_a_new_label_set(tmp_path, tiny_config):
    from modeling_xvit import XViTForVideoClassification, XViTVideoProcessor

    pretrained = XViTForVideoClassification(tiny_config(num_labels=5))
    pretrained.save_pretrained(tmp_path / "xvit")
    model_args = ModelArguments(model_name_or_path=str(tmp_path / "xvit"), ignore_mismatched_sizes=True)
    model = build_model(model_args, list(CLASSES))
    assert model.config.id2label == dict(enumerate(CLASSES)) and model.classifier.out_proj.out_features == 3
    torch.testing.assert_close(model.xvit.state_dict(), pretrained.xvit.state_dict(), rtol=0, atol=0)
    # No processor saved with the model: one is made for its config; a saved one is used as it is.
    processor = build_video_processor(model_args, model.config)
    assert (processor.num_frames, processor.crop_size.height) == (4, 32)
    XViTVideoProcessor(size={"shortest_edge": 40}, crop_size=32, num_frames=4, sampling="dense").save_pretrained(
        tmp_path / "xvit"
    )
    processor = build_video_processor(model_args, model.config)
    assert (processor.sampling, processor.size.shortest_edge) == ("dense", 40)
