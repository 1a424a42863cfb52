"""The training script's model folder for the Hub: written by a short run (remote code, handler, our card with the
run's results), published to a local fake of the Hub's API with exactly the model folder's files, checked by the
offline verifier; its card's inputs from the arguments of a run."""

import json
import os
from pathlib import Path

import pytest
from fake_hub import FakeHub, serve_fake_hub
from huggingface_hub import ModelCard
from transformers import TrainerState

import modeling_xvit
from examples.run_video_classification import main
from modeling_xvit import XViTConfig
from modeling_xvit.hub.card import render_model_card
from modeling_xvit.hub.verify import check_hub_folder
from modeling_xvit.training.arguments import ModelArguments, parse_arguments
from modeling_xvit.training.card import REDACTED, run_results, training_card_inputs
from modeling_xvit.training.data import DataArguments
from tests.test_verify_hub_folder import CHECKS, checklist
from tests.training_videos import tiny_run, write_video_folder

# The model folder's files besides the remote code (the modules of `modeling_xvit` that the saved classes import).
MODEL_FILES = {
    "README.md",
    "config.json",
    "handler.py",
    "model.safetensors",
    "preprocessor_config.json",
    "video_preprocessor_config.json",
}
REMOTE_CODE = {"configuration_xvit.py", "modeling_xvit.py", "video_processing_xvit.py"}
PACKAGE = Path(modeling_xvit.__file__).parent
TOKEN = "hf_fake_token_for_tests"
REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def video_root(tmp_path_factory) -> Path:
    return write_video_folder(tmp_path_factory.mktemp("videos"), {"train": 2, "validation": 1, "test": 1})


@pytest.fixture
def fake_hub(httpserver, monkeypatch) -> FakeHub:
    return serve_fake_hub(httpserver, monkeypatch)


def assert_is_the_model_folder(names: set[str], output_dir: Path) -> None:
    """`names` are the model files and remote-code modules, nothing else; all of them sit at the top of the output
    folder, the modules as the package has them."""
    code = names - MODEL_FILES
    assert MODEL_FILES <= names and REMOTE_CODE <= code, sorted(names)
    assert all(name.endswith(".py") and (PACKAGE / name).is_file() for name in code), sorted(code)
    for name in code:
        assert (output_dir / name).read_bytes() == (PACKAGE / name).read_bytes(), name


def model_index(card: ModelCard) -> dict[tuple[str, str], float]:
    """`{(split, metric name): value}` of the card's model-index."""
    return {(result.dataset_split, result.metric_name): result.metric_value for result in card.data.eval_results}


@pytest.mark.slow
def test_push_to_hub_publishes_the_complete_model_folder_with_our_card(
    video_root, tmp_path, fake_hub, real_videos, capsys
):
    output_dir = tmp_path / "run"
    run = ["--data_dir", str(video_root), "--do_train", "--do_eval", "--do_predict", "--max_steps", "2"]
    run += ["--eval_num_temporal_views", "2", "--eval_num_spatial_crops", "3"]
    run += ["--save_strategy", "steps", "--save_steps", "1"]  # checkpoints with pickles (optimizer.pt) beside it
    hub = ["--push_to_hub", "--hub_model_id", "someone/xvit-run", "--hub_private_repo", "true"]
    hub += ["--hub_revision", "v1", "--hub_token", TOKEN]
    main(tiny_run(output_dir, *run, *hub))

    assert (output_dir / "checkpoint-2" / "optimizer.pt").is_file()
    (commit,) = fake_hub.commits
    assert (commit.repo_id, commit.revision) == ("someone/xvit-run", "v1")
    assert fake_hub.created[0]["visibility"] == "private" and fake_hub.branches == ["v1"]
    assert_is_the_model_folder(set(commit.files), output_dir)
    for name, content in commit.files.items():  # the files at the top of the output folder, as uploaded
        assert (output_dir / name).read_bytes() == content, name
    assert not (output_dir / "hub_upload").exists()  # the staging folder of a successful upload is gone

    # The repository as the Hub holds it passes the offline verifier on a real video.
    downloaded = tmp_path / "downloaded"
    downloaded.mkdir()
    for name, content in commit.files.items():
        (downloaded / name).write_bytes(content)
    check_hub_folder(downloaded, real_videos["bikes"])
    output = capsys.readouterr().out
    assert checklist(output) == dict.fromkeys(CHECKS, "ok"), output

    # Our card, with the run's single-view and multi-view accuracy of both splits as all_results.json has them.
    card = ModelCard.load(downloaded / "README.md")
    all_results = json.loads((output_dir / "all_results.json").read_text())
    expected = {}
    for split, prefix in (("validation", "eval"), ("test", "test")):
        for views, key in (("1 clip, centre crop", prefix), ("3 spatial x 2 temporal", f"{prefix}_multiview")):
            expected[split, f"Top-1 accuracy ({views})"] = round(100 * all_results[f"{key}_top1_accuracy"], 2)
    assert model_index(card) == expected  # no top-5 with 5 classes or fewer, where it is 100% whatever the model
    assert all_results["eval_top5_accuracy"] == 1.0 and len(json.loads(commit.files["config.json"])["id2label"]) <= 5
    assert card.data.datasets is None and card.data.base_model is None  # local videos: no Hub data set id
    assert f"**Training data:** local videos from the folder `{video_root.name}`." in card.text
    assert "Trained from scratch" in card.text and "| global batch | 4 (4 per device x 1 device" in card.text
    assert f"--hub_token {REDACTED}" in card.text and TOKEN not in card.text


@pytest.mark.parametrize(("num_labels", "top5"), [(5, None), (6, 90.0)])
def test_the_card_gives_top5_only_with_more_than_5_classes(tmp_path, num_labels, top5):
    (tmp_path / "all_results.json").write_text(json.dumps({"eval_top1_accuracy": 0.5, "eval_top5_accuracy": 0.9}))
    (result,) = run_results(tmp_path / "all_results.json", ["validation"], num_labels)
    assert (result.top1, result.top5) == (50.0, top5)


@pytest.mark.slow
def test_a_dry_run_sends_nothing_and_keeps_exactly_what_it_would_upload(video_root, tmp_path, fake_hub, capsys):
    output_dir = tmp_path / "run"
    main(tiny_run(output_dir, "--data_dir", str(video_root), "--do_train", "--max_steps", "1", "--hub_dry_run"))

    assert fake_hub.requests == []
    output = capsys.readouterr().out
    listed = output.split("Would upload to run:\n", 1)[1].split("\nNothing was sent.", 1)[0]
    listed = {line.split(" (", 1)[0].strip() for line in listed.splitlines()}
    kept = output_dir / "hub_upload"
    assert listed == set(os.listdir(kept))
    assert_is_the_model_folder(listed, output_dir)
    for name in listed:
        assert (kept / name).read_bytes() == (output_dir / name).read_bytes(), name
    card = ModelCard.load(kept / "README.md")
    assert not card.data.eval_results and "No accuracy has been measured" in card.text  # no evaluation in this run


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--do_eval", "--push_to_hub"], "--push_to_hub publishes the model that the run trains: add --do_train"),
        (
            ["--do_train", "--push_to_hub", "--hub_model_id", "a/b/c"],
            "--hub_model_id: 'a/b/c' is not a Hub repository",
        ),
    ],
)
def test_what_cannot_be_published_is_refused_before_any_work(video_root, tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        main(tiny_run(tmp_path / "run", "--data_dir", str(video_root), *arguments))
    assert not (tmp_path / "run").exists()


def test_card_of_a_fine_tuned_hub_model_trained_with_the_paper_recipe(tmp_path):
    # Figures of an earlier run's test split stay in all_results.json (Trainer merges it): this run measured only
    # the validation split, so only its figures go into the card.
    (tmp_path / "all_results.json").write_text(
        json.dumps({"eval_top1_accuracy": 0.5, "eval_top5_accuracy": 0.75, "test_top1_accuracy": 0.25})
    )
    argv = ["--model_name_or_path", "someone/xvit-k600", "--ignore_mismatched_sizes", "--freeze_backbone"]
    argv += ["--train_file", "k600/train.csv", "--validation_file", "k600/val.csv", "--class_names", "kinetics600"]
    argv += [
        "--recipe",
        str(REPOSITORY / "examples" / "recipes" / "xvit_paper_k600.yaml"),
        "--output_dir",
        str(tmp_path),
    ]
    argv += ["--per_device_train_batch_size", "3", "--gradient_accumulation_steps", "2", "--use_cpu"]
    model_args, data_args, training_args = parse_arguments(argv)
    config = XViTConfig(num_frames=8, image_size=64, num_labels=600)
    state = TrainerState(global_step=12, epoch=2.5)

    inputs = training_card_inputs(model_args, data_args, training_args, config, argv, state, ["validation"])

    assert inputs.base_model == "someone/xvit-k600" and inputs.dataset == "kinetics600"
    assert inputs.origin.startswith("Fine-tuned from `someone/xvit-k600` with its backbone frozen (linear probing")
    assert "on 1 process for 12 steps. In the command below, local paths are relative to the model" in inputs.origin
    assert inputs.command.startswith("python examples/run_video_classification.py --model_name_or_path someone/")
    assert [(result.split, result.top1, result.top5) for result in inputs.results] == [("validation", 50.0, 75.0)]
    assert inputs.recipe == {
        "optimizer": "sgd (momentum=0.9)",
        "learning rate": "0.03",
        "schedule": "cosine",
        "warm-up": "0.1667 of the steps",
        "training": "12 steps (2.5 epochs)",
        "global batch": "6 (3 per device x 1 device x 2 accumulation steps)",
        "weight decay": "1e-05",
        "label smoothing": "0.1",
        "MixUp alpha": "0.4",
        "CutMix alpha": "off",
        "seed": 42,
        "frames": 8,
        "image size": "64 x 64",
    }
    card = ModelCard(render_model_card(config, inputs))
    assert card.data.base_model == "someone/xvit-k600" and card.data.datasets == ["kinetics-600"]


def test_card_of_a_model_started_from_an_image_vit(tmp_path):
    (tmp_path / "vit").mkdir()
    model_args = ModelArguments(init_from_image_model=str(tmp_path / "vit"))
    data_args = DataArguments(data_dir=str(tmp_path / "my-videos"))
    _, _, training_args = parse_arguments(["--output_dir", str(tmp_path / "run"), "--use_cpu"])
    inputs = training_card_inputs(model_args, data_args, training_args, XViTConfig(), [], TrainerState(global_step=1))
    assert inputs.origin.startswith("Trained from the image ViT `../vit` (`--init_from_image_model`)")  # no local path
    assert inputs.base_model is None and inputs.dataset is None and inputs.model_id == "run"
    assert inputs.training_data == "local videos from the folder `my-videos`"
