"""The embedded demo model (examples/xvit-motion-small), `make demo`'s script and the motion ablation: the committed
folder holds the weights, configs and card of a Hub model and no code; with the code the package writes into it, it
loads in a fresh process from that code and classifies new clips (a seed its data set never used) at least 90% right,
passes the Hub-folder checks; the demo runs end to end from a fresh clone; the ablation's committed results come from
the commands the runner writes, and its rows are the models they are named after."""

import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import offline_environment, run_help, started
from PIL import Image

from examples import motion_ablation
from examples.demo import DEMO_MODEL, main, write_demo_clips
from examples.run_video_classification import build_model, parse_arguments
from examples.space import app
from modeling_xvit.hub.folder import HANDLER_SOURCE, code_files, write_code_files
from modeling_xvit.hub.upload import files_to_upload
from modeling_xvit.hub.verify import check_hub_folder
from tests.demo_model import copy_without_code

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["left", "right", "up", "down"]
# The demo model's data set (train, validation, test) was drawn with seed 0, the demo's clips with 2024.
UNSEEN_SEED = 7
NUM_PER_CLASS = 10

CLASSIFY = """
import json, sys
sys.modules["modeling_xvit"] = None  # only the folder's own code can be used
import torch
from transformers import AutoModelForVideoClassification, AutoVideoProcessor

folder, videos = sys.argv[1], sys.argv[2:]
model = AutoModelForVideoClassification.from_pretrained(folder, trust_remote_code=True).eval()
processor = AutoVideoProcessor.from_pretrained(folder, trust_remote_code=True)
with torch.no_grad():
    logits = model(**processor(videos, return_tensors="pt")).logits
labels = [model.config.id2label[index] for index in logits.argmax(-1).tolist()]
print(json.dumps({"module": type(model).__module__, "labels": labels}))
"""


def committed_files(folder: Path) -> list[str]:
    """The files git tracks in `folder` (what a fresh clone has), relative to it."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--", "."], cwd=folder, capture_output=True, text=True, check=True
    ).stdout
    return sorted(name for name in listed.split("\0") if name)


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory) -> Path:
    """The demo model as a fresh clone has it, with the code files the package writes into it (as `make demo`)."""
    return write_code_files(copy_without_code(DEMO_MODEL, tmp_path_factory.mktemp("demo") / DEMO_MODEL.name))


@pytest.fixture(scope="module")
def unseen_clips(tmp_path_factory) -> list[tuple[Path, str]]:
    return write_demo_clips(tmp_path_factory.mktemp("clips"), CLASSES, NUM_PER_CLASS, seed=UNSEEN_SEED)


def test_the_committed_folder_holds_weights_configs_and_card_only():
    assert committed_files(DEMO_MODEL) == [
        ".gitignore",  # the code files written into the folder
        "README.md",
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "video_preprocessor_config.json",
    ]
    assert (DEMO_MODEL / ".gitignore").read_text().splitlines()[-1] == "*.py"


def test_the_folder_holds_exactly_a_hub_model_for_these_clips(demo_folder):
    published = {file.path_in_repo for file in files_to_upload(demo_folder)}
    assert published == {path.name for path in demo_folder.iterdir()} - {".gitignore"}  # no checkpoint, log, pickle
    assert {
        "model.safetensors",
        "config.json",
        "video_preprocessor_config.json",
        "preprocessor_config.json",
        "handler.py",
        "README.md",
    } <= published
    assert (DEMO_MODEL / "model.safetensors").stat().st_size < 20 * 2**20
    config = json.loads((DEMO_MODEL / "config.json").read_text())
    assert [config["id2label"][str(index)] for index in range(4)] == CLASSES
    assert {"AutoConfig", "AutoModel", "AutoModelForVideoClassification"} <= set(config["auto_map"])
    assert config["space_time_mixing_layers"] == [0, 1, 2, 3] and config["temporal_aggregation"] == "mean"
    processor = json.loads((DEMO_MODEL / "video_preprocessor_config.json").read_text())
    assert (processor["num_frames"], processor["crop_size"]) == (8, {"height": 64, "width": 64})
    # One second of video as 8 consecutive frames, and no flip (it would swap left and right) should anyone train on.
    assert (processor["sampling"], processor["sampling_rate"], processor["target_fps"]) == ("dense", 1, 8)
    assert processor["do_flip"] is False and processor["do_augment"] is False
    card = (DEMO_MODEL / "README.md").read_text()
    # The recorded command's local paths are relative to the run's output folder (motion-ablation/xvit-motion-small).
    assert "not a model of human actions" in card and "--recipe ../../examples/recipes/xvit_motion_small.yaml" in card
    assert "widget" not in card.split("---")[1] and "datasets" not in card.split("---")[1]  # synthetic local data


def test_the_written_code_is_the_package_s(demo_folder):
    # The code files a Hub repository needs are written from the package: today's library and handler, nothing else.
    sources = {path.name: path for path in (*code_files(), HANDLER_SOURCE)}
    assert sorted(path.name for path in demo_folder.glob("*.py")) == sorted(sources)
    assert all(source.read_bytes() == (demo_folder / name).read_bytes() for name, source in sources.items())
    # The committed configs already name the remote code: writing it leaves them as committed.
    committed = [path for path in DEMO_MODEL.iterdir() if path.suffix != ".py"]
    assert all((demo_folder / path.name).read_bytes() == path.read_bytes() for path in committed)


@pytest.fixture(scope="module")
def classifying(demo_folder, unseen_clips, tmp_path_factory) -> Iterator[subprocess.Popen]:
    """A fresh process classifying the unseen clips with the folder's code as a Hub user's machine would, started
    beside the Hub checks."""
    cwd = tmp_path_factory.mktemp("classify")
    command = [sys.executable, "-c", CLASSIFY, str(demo_folder), *(str(path) for path, _ in unseen_clips)]
    with started(command, cwd=cwd, env=offline_environment(cwd)) as process:
        yield process


@pytest.mark.slow
@pytest.mark.usefixtures("classifying")  # its fresh process runs beside the checks' own
def test_the_folder_passes_the_hub_checks(demo_folder, unseen_clips, capsys):
    check_hub_folder(demo_folder, unseen_clips[0][0])  # raises, naming the failed checks
    assert "[FAIL]" not in capsys.readouterr().out


@pytest.mark.slow
def test_a_fresh_process_classifies_unseen_clips_with_the_committed_weights(classifying, unseen_clips):
    stdout, stderr = classifying.communicate(timeout=300)
    assert classifying.returncode == 0, stderr[-3000:]
    answer = json.loads(stdout.splitlines()[-1])
    assert answer["module"].startswith("transformers_modules.")
    correct = sum(label == expected for label, (_, expected) in zip(answer["labels"], unseen_clips, strict=True))
    assert correct >= 0.9 * len(unseen_clips), list(zip(answer["labels"], unseen_clips, strict=True))


@pytest.mark.slow
def test_make_demo_classifies_new_clips_and_draws_them(tmp_path):
    completed = subprocess.run(
        [sys.executable, "examples/demo.py", "--num-per-class", "1", "--output-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stdout.splitlines()
    for label in CLASSES:
        line = next(line for line in lines if line.startswith(f"{label}_0.mp4: true {label}; top-3: "))
        assert line.count(" 0.") + line.count(" 1.000") == 3  # three labels with their scores
    assert any("clips/s" in line and "of 4 correct" in line for line in lines)
    assert sorted(path.name for path in (tmp_path / "clips").iterdir()) == sorted(f"{c}_0.mp4" for c in CLASSES)
    with Image.open(tmp_path / "demo.png") as picture:
        assert picture.format == "PNG" and picture.height > 4 * 80  # a strip of 80-pixel frames per clip
    assert f"Picture (the frames the model saw, with its predictions): {tmp_path / 'demo.png'}" in lines
    # The demo wrote the folder's code files, which git ignores: nothing untracked appears in the checkout.
    assert (DEMO_MODEL / "handler.py").is_file()
    untracked = ["git", "status", "--porcelain", "--untracked-files=all", "--", "."]
    assert "??" not in subprocess.run(untracked, cwd=DEMO_MODEL, capture_output=True, text=True, check=True).stdout


def test_make_demo_classifies_your_own_video(real_videos, tmp_path, capsys):
    assert main(["--video", real_videos["bikes"], "--output-dir", str(tmp_path)]) == 0
    output = capsys.readouterr().out
    assert "bikes.mp4: true (unknown); top-3: " in output and "correct" not in output
    assert (tmp_path / "demo.png").is_file() and not (tmp_path / "clips").exists()
    assert main(["--video", str(tmp_path / "missing.mp4")]) == 1
    assert "error: no such video file: " in capsys.readouterr().err


def test_the_space_serves_the_demo_model_and_its_example_clips(monkeypatch):
    monkeypatch.delenv(app.MODEL_ENV, raising=False)
    assert app.resolve_model(None) == DEMO_MODEL
    classifier = app.load_classifier(DEMO_MODEL)
    examples = app.example_videos(app.default_videos(DEMO_MODEL))
    assert sorted(Path(video).stem for video in examples) == sorted(CLASSES)
    for video in examples:  # each committed example is classified right, with the strip of its 8 frames
        labels, strip = app.classify(classifier, video, 1, 1)
        assert max(labels, key=labels.get) == Path(video).stem and strip.width > 8 * 64


@pytest.mark.parametrize("row", motion_ablation.ROWS, ids=lambda row: row.name)
def test_each_ablation_row_trains_the_model_it_is_named_after(row, tmp_path):
    data = Path("motion-ablation/motion-drifts")
    arguments = motion_ablation.row_arguments(row, data, tmp_path / row.name, seed=0)
    model_args, _, training_args = parse_arguments(arguments)
    config = build_model(model_args, CLASSES).config
    assert (config.hidden_size, config.num_hidden_layers, config.image_size, config.num_frames) == (64, 4, 64, 8)
    assert training_args.max_steps == row.steps and training_args.seed == 0
    mixing = config.space_time_mixing_layers
    if row.kind == "bag of frames":  # one shared temporal embedding: no frame knows its index
        assert mixing == [] and config.num_temporal_embeddings == 1 and config.temporal_aggregation == "mean"
    else:
        assert config.num_temporal_embeddings == 8 and (mixing == [0, 1, 2, 3]) == (row.kind == "XViT")
    assert config.temporal_aggregation == ("attention" if "attention" in row.name else "mean")
    assert config.summary_token_layers == ([0, 1, 2, 3] if "summary" in row.name else [])


def test_the_committed_ablation_results_come_from_the_runner_commands():
    stem = ROOT / motion_ablation.RESULTS
    results = json.loads(stem.with_suffix(".json").read_text())
    rows = {result["row"]: result for result in results["rows"]}
    assert set(rows) == set(motion_ablation.ROWS_BY_NAME)
    for row in motion_ablation.ROWS:
        result = rows[row.name]
        output_dir = motion_ablation.WORK_DIR / f"{row.name}-seed{result['seed']}"
        arguments = motion_ablation.row_arguments(row, motion_ablation.WORK_DIR / "motion-drifts", output_dir, 0)
        assert result["command"] == shlex.join(["python", motion_ablation.SCRIPT, *arguments])
    # The targets, and the table and chart written from these results.
    assert rows["xvit_mean"]["test_accuracy"] >= 0.95
    assert abs(rows["bag_of_frames"]["test_accuracy"] - 0.25) <= 0.10
    assert stem.with_suffix(".md").read_text() == motion_ablation.markdown(results)
    # The docs' table shows each row's committed steps and accuracies (in the columns it chooses).
    docs = (ROOT / "docs" / "demo-and-ablation.md").read_text().splitlines()
    for number, result in enumerate(results["rows"], 1):
        line = next(line for line in docs if line.startswith(f"| {number} | "))
        figures = f"| {result['steps']} | {result['test_accuracy']:.1%} | {result['validation_accuracy']:.1%} |"
        assert figures in line, line
    assert stem.with_suffix(".png").is_file()


@pytest.mark.slow
def test_help_by_path_and_as_a_module():
    scripts = ("demo", "motion_ablation")
    run_help(
        [*([f"examples/{script}.py"] for script in scripts), *(["-m", f"examples.{script}"] for script in scripts)]
    )
