"""The model card of a training run: the command with no local absolute path, the data it was trained on in words
when it is local (never as a Hub data-set id), and the card it renders."""

from pathlib import Path

from huggingface_hub import ModelCard
from transformers import TrainerState

from modeling_xvit import XViTConfig
from modeling_xvit.hub.card import render_model_card
from modeling_xvit.training.arguments import parse_arguments
from modeling_xvit.training.card import REDACTED, relative_to_output, run_command, training_card_inputs

DEMO = XViTConfig(num_frames=4, image_size=32, num_labels=4, id2label=dict(enumerate(["left", "right", "up", "down"])))


def test_local_paths_in_the_command_are_relative_to_the_output_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "skv" / "videos").mkdir(parents=True)
    (tmp_path / "skv" / "train.csv").write_text("video,label\n")
    output_dir = tmp_path / "runs" / "skv-xvit"
    argv = [
        "--train_file",
        str(tmp_path / "skv" / "train.csv"),  # absolute
        "--video_root=skv/videos",  # relative to the working folder, as --flag=value
        "--class_names",
        "kinetics600",  # not a path
        "--model_name_or_path",
        "someone/xvit-k600",  # a Hub id
        "--output_dir",
        str(output_dir),
        "--hub_token",
        "hf_secret_token_value",
        "--hub_model_id",
        "skv",  # a repository name, though a folder of that name exists here
    ]
    command = run_command(argv, output_dir, hub_token="hf_secret_token_value")
    assert command == (  # before: the absolute paths of this machine
        "python examples/run_video_classification.py --train_file ../../skv/train.csv --video_root=../../skv/videos"
        f" --class_names kinetics600 --model_name_or_path someone/xvit-k600 --output_dir . --hub_token {REDACTED}"
        " --hub_model_id skv"
    )
    assert str(tmp_path) not in command
    assert relative_to_output("no/such/path", output_dir) == "no/such/path"


def test_a_run_on_local_videos_says_so_in_words_and_gives_no_data_set_id(tmp_path):
    videos = tmp_path / "skv"
    videos.mkdir()
    argv = ["--data_dir", str(videos), "--output_dir", str(tmp_path / "run"), "--use_cpu", "--do_train"]
    model_args, data_args, training_args = parse_arguments(argv)
    inputs = training_card_inputs(model_args, data_args, training_args, DEMO, argv, TrainerState(global_step=3))
    assert inputs.dataset is None and inputs.training_data == "local videos from the folder `skv`"
    card = ModelCard(render_model_card(DEMO, inputs))
    assert card.data.datasets is None  # before: ["skv"], a local folder name given as a Hub data set id
    assert "widget" not in card.content.split("---")[1]  # no Kinetics examples for a 4-class model
    assert "model_name" not in card.content.split("---")[1]
    assert "**Training data:** local videos from the folder `skv`." in card.text
    assert "--data_dir ../skv --output_dir ." in card.text and str(tmp_path) not in card.text
    assert "web videos" not in card.text
    assert Path(training_args.output_dir).name == inputs.model_id
