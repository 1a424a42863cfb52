"""The training script on prepared shards (`--prepared_dir`) and with augmentation on the training device
(`--augment_on_device`): the same weights as the per-clip path, local and streamed over two processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from examples import run_video_classification
from examples.run_video_classification import main
from modeling_xvit.training.augment import DeviceAugmentationCollator
from modeling_xvit.training.data import DataArguments
from modeling_xvit.training.prepare import PrepareArguments, prepare_source
from tests.training_videos import tiny_run, write_video_folder

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("prepared")
    videos = write_video_folder(folder / "videos", {"train": 4, "validation": 1})
    options = PrepareArguments(
        output_dir=str(folder / "shards"),
        short_side=32,
        videos_per_shard=4,
        num_workers=0,
        cache_dir=str(folder / "c"),
    )
    prepare_source(DataArguments(data_dir=str(videos)), options, progress=False)
    return folder / "shards"


def weights(folder: Path) -> dict:
    return load_file(folder / "model.safetensors")


@pytest.mark.slow
def test_augmentation_on_device_trains_to_the_same_weights(prepared, tmp_path):
    run = ["--prepared_dir", str(prepared), "--do_train", "--do_eval", "--max_steps", "3", "--mixup_alpha", "0.8"]
    run += ["--dataloader_num_workers", "1"]
    per_clip = main(tiny_run(tmp_path / "per-clip", *run))
    on_device = main(tiny_run(tmp_path / "on-device", *run, "--augment_on_device"))
    assert on_device["eval_top1_accuracy"] == per_clip["eval_top1_accuracy"]
    assert on_device["train_loss"] == pytest.approx(per_clip["train_loss"], abs=1e-6)
    expected, got = weights(tmp_path / "per-clip"), weights(tmp_path / "on-device")
    assert expected.keys() == got.keys()
    assert max((expected[name] - got[name]).abs().max().item() for name in expected) < 1e-6
    config = json.loads((tmp_path / "on-device" / "config.json").read_text())
    assert list(config["id2label"].values()) == ["left", "right", "still"]  # the index's class names


@pytest.mark.slow
def test_two_processes_stream_prepared_shards_with_augmentation_on_device(prepared, tmp_path):
    env = {name: value for name, value in os.environ.items() if not name.startswith(("PYTEST", "RANK", "WORLD"))}
    env = {**env, "PYTHONPATH": str(REPOSITORY), "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    run = ["--prepared_dir", str(prepared), "--streaming", "--augment_on_device", "--do_train", "--max_steps", "2"]
    run += ["--per_device_train_batch_size", "2", "--dataloader_num_workers", "1"]
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "examples/run_video_classification.py", *tiny_run(tmp_path / "two", *run)],
        cwd=REPOSITORY, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    state = json.loads((tmp_path / "two" / "trainer_state.json").read_text())
    assert state["global_step"] == 2


@pytest.mark.slow
def test_yuv_planes_cross_the_dataloader_and_train_as_the_workers_crops_do(prepared, tmp_path, monkeypatch):
    """What the script does on an accelerator (`convert_on_device`), forced on the CPU: prepared videos leave the
    DataLoader worker as YUV planes through pinned memory, the Trainer counts the FLOPs of the crops they become, and
    three steps give the loss the workers' crops give (their pixels a level or so apart; AdamW's first steps move
    each weight by about the learning rate whatever the gradient's size, so the weights are not compared)."""
    run = ["--prepared_dir", str(prepared), "--do_train", "--max_steps", "3", "--augment_on_device"]
    run += ["--dataloader_num_workers", "1", "--dataloader_pin_memory", "true"]
    in_workers = main(tiny_run(tmp_path / "in-workers", *run))
    made = []

    def on_device(*args, **kwargs):
        made.append(DeviceAugmentationCollator(*args, **{**kwargs, "convert_on_device": True}))
        return made[-1]

    monkeypatch.setattr(run_video_classification, "DeviceAugmentationCollator", on_device)
    planes = main(tiny_run(tmp_path / "planes", *run))
    assert len(made) == 1 and made[0].processor.planes
    assert planes["total_flos"] == in_workers["total_flos"] > 0
    assert planes["train_loss"] == pytest.approx(in_workers["train_loss"], abs=1e-3)
