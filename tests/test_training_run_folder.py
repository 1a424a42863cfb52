"""The output folder of a training run holds one run: the same command resumes it (from its newest complete
checkpoint), another run is refused (or starts afresh with --overwrite_output_dir, deleting only what the script
wrote), a folder the script did not write is never written over, and results belong to the run that measured them."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import TrainerCallback

from examples.run_video_classification import main
from modeling_xvit.training.arguments import parse_arguments
from modeling_xvit.training.run_folder import RUN_RECORD, describe_run, differences
from tests.training_videos import tiny_run, write_video_folder

REPOSITORY = Path(__file__).resolve().parents[1]
CHECKPOINTS = ["--save_strategy", "steps", "--save_steps", "1"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("videos")
    sizes = {"train": 1, "validation": 1}
    return {"a": write_video_folder(root / "a", sizes), "b": write_video_folder(root / "b", sizes)}


class StepsRun(TrainerCallback):
    def __init__(self):
        self.steps = []

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)


def run(output_dir: Path, data: Path, *arguments: str, callbacks=()) -> dict:
    return main(tiny_run(output_dir, "--data_dir", str(data), "--do_train", *arguments), callbacks=callbacks)


@pytest.mark.slow
def test_the_same_run_resumes_and_another_is_refused_naming_the_difference(videos, tmp_path):
    output_dir = tmp_path / "run"
    run(output_dir, videos["a"], "--max_steps", "2", *CHECKPOINTS)
    model = (output_dir / "model.safetensors").read_bytes()
    assert json.loads((output_dir / RUN_RECORD).read_text())["run"]["max_steps"] == 2

    with pytest.raises(
        ValueError, match=r"(?s)holds another run.*--data_dir: earlier .*/a\", now .*/b\".*--overwrite_output_dir"
    ):
        run(output_dir, videos["b"], "--max_steps", "2", *CHECKPOINTS)
    with pytest.raises(ValueError, match=r"--learning_rate: earlier 0.001, now 0.01"):
        run(output_dir, videos["a"], "--max_steps", "2", *CHECKPOINTS, "--learning_rate", "1e-2")
    assert (output_dir / "model.safetensors").read_bytes() == model

    steps = StepsRun()  # the same command: resumes from checkpoint-2, nothing left to train
    run(output_dir, videos["a"], "--max_steps", "2", *CHECKPOINTS, "--logging_steps", "5", callbacks=[steps])
    assert steps.steps == []


@pytest.mark.slow
def test_a_folder_the_script_did_not_write_is_refused_and_left_as_it_was(videos, tmp_path):
    output_dir = tmp_path / "run"
    files = {"model.safetensors": b"an earlier model", "README.md": b"# mine", "hub_upload/notes.txt": b"notes"}
    files["mydata.txt"] = b"data"
    for name, content in files.items():
        (output_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (output_dir / name).write_bytes(content)
    for flags in ([], ["--overwrite_output_dir"]):
        with pytest.raises(ValueError, match=rf"{output_dir} is not empty and holds no run of this script"):
            run(output_dir, videos["a"], "--max_steps", "1", *flags)
    assert {path.relative_to(output_dir).as_posix() for path in output_dir.rglob("*") if path.is_file()} == set(files)
    for name, content in files.items():
        assert (output_dir / name).read_bytes() == content, name

    # The command line says it in a few lines, without a traceback.
    arguments = tiny_run(output_dir, "--data_dir", str(videos["a"]), "--do_train", "--max_steps", "1")
    completed = subprocess.run(
        [sys.executable, str(REPOSITORY / "examples" / "run_video_classification.py"), *arguments],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 1 and "Traceback" not in completed.stderr
    assert f"error: --output_dir {output_dir} is not empty and holds no run of this script" in completed.stderr


@pytest.mark.slow
def test_starting_afresh_deletes_only_what_the_earlier_run_wrote(videos, tmp_path):
    output_dir = tmp_path / "run"
    run(output_dir, videos["a"], "--max_steps", "2", *CHECKPOINTS, "--hub_dry_run")
    (output_dir / "mydata.txt").write_text("mine")
    (output_dir / "hub_upload" / "notes.txt").write_text("mine too")
    with pytest.raises(ValueError, match=r"hub_upload holds files this script did not write \(notes.txt\)"):
        run(output_dir, videos["a"], "--max_steps", "2", *CHECKPOINTS, "--hub_dry_run")
    (output_dir / "notes.txt").write_bytes((output_dir / "hub_upload" / "notes.txt").read_bytes())
    (output_dir / "hub_upload" / "notes.txt").unlink()

    run(output_dir, videos["b"], "--max_steps", "1", *CHECKPOINTS, "--overwrite_output_dir")
    assert sorted(path.name for path in output_dir.glob("checkpoint-*")) == ["checkpoint-1"]
    assert (output_dir / "mydata.txt").read_text() == "mine" and (output_dir / "notes.txt").read_text() == "mine too"
    assert not (output_dir / "hub_upload").exists()  # the earlier dry run's folder, which held only its files
    assert json.loads((output_dir / "trainer_state.json").read_text())["global_step"] == 1


@pytest.mark.slow
def test_results_belong_to_the_run_that_measured_them(videos, tmp_path):
    output_dir = tmp_path / "run"
    run(output_dir, videos["a"], "--max_steps", "1", "--do_eval")
    assert "eval_top1_accuracy" in json.loads((output_dir / "all_results.json").read_text())
    run(output_dir, videos["a"], "--max_steps", "1")  # the same run, started again without evaluation
    results = json.loads((output_dir / "all_results.json").read_text())
    assert "train_loss" in results and not [name for name in results if name.startswith("eval_")]
    assert "No accuracy has been measured" in (output_dir / "README.md").read_text()

    evaluated = tmp_path / "evaluated"  # an evaluation of the initial model is not the run that trains it
    main(tiny_run(evaluated, "--data_dir", str(videos["a"]), "--do_eval"))
    with pytest.raises(ValueError, match=r"--do_train: earlier false, now true"):
        run(evaluated, videos["a"], "--max_steps", "1")
    run(evaluated, videos["a"], "--max_steps", "1", "--overwrite_output_dir")
    assert not [name for name in json.loads((evaluated / "all_results.json").read_text()) if name.startswith("eval")]


@pytest.mark.slow
def test_resuming_skips_checkpoints_that_a_killed_run_left_incomplete(videos, tmp_path, caplog):
    output_dir = tmp_path / "run"
    run(output_dir, videos["a"], "--max_steps", "3", *CHECKPOINTS)
    # Killed while saving: checkpoint-3 without its trainer_state.json (written last), checkpoint-4 empty.
    (output_dir / "checkpoint-3" / "trainer_state.json").unlink()
    (output_dir / "checkpoint-4").mkdir()
    steps = StepsRun()
    with caplog.at_level("WARNING", logger="modeling_xvit.training.run_folder"):
        run(output_dir, videos["a"], "--max_steps", "3", *CHECKPOINTS, callbacks=[steps])
    assert steps.steps == [3]  # resumed from checkpoint-2
    skipped = [record.message for record in caplog.records if "incomplete checkpoint" in record.message]
    assert [message.split()[4] for message in skipped] == [
        str(output_dir / name) for name in ("checkpoint-4", "checkpoint-3")
    ]


def test_the_record_names_local_paths_absolutely_and_differences_in_words(tmp_path, monkeypatch):
    (tmp_path / "videos").mkdir()
    monkeypatch.chdir(tmp_path)

    def record(*arguments: str) -> dict:
        parsed = parse_arguments(["--output_dir", "out", "--use_cpu", *arguments])
        return describe_run(*parsed, splits={}, class_names=["a", "b"])

    relative = record("--data_dir", "videos", "--seed", "1", "--logging_steps", "3", "--dataloader_num_workers", "0")
    assert relative == record("--data_dir", str(tmp_path / "videos"), "--seed", "1", "--report_to", "tensorboard")
    assert relative["data_dir"] == str(tmp_path / "videos")
    other = record("--data_dir", "videos", "--seed", "2")
    assert differences(relative, other) == ["--seed: earlier 1, now 2"]
    assert differences(relative, {**relative, "class_names_found": ["a"]}) == [
        'the class names: earlier ["a", "b"], now ["a"]'
    ]
