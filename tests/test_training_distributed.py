"""The training example on several CPU processes (gloo) and across a SIGKILL: the same weights as one uninterrupted
process. Accelerate's FSDP path needs GPUs, so the FSDP configuration is checked by sharding XViT with torch's FSDP2
exactly as accelerate would (its plugin, built from the config, chooses the shard units) on two CPU processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import started
from safetensors.torch import load_file
from transformers import TrainerCallback

from examples.run_video_classification import main
from tests.training_videos import TINY_MODEL, tiny_run, write_video_folder

REPOSITORY = Path(__file__).resolve().parents[1]
ACCELERATE_CONFIGS = sorted((REPOSITORY / "examples" / "accelerate").glob("*.yaml"))

# Run in a subprocess: kills itself with SIGKILL at the end of step KILL_AT_STEP (after the checkpoint of step 2).
KILLED_RUN_SCRIPT = """
import os, signal, sys
from transformers import TrainerCallback
from examples.run_video_classification import main

class KillAtStep(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == int(os.environ["KILL_AT_STEP"]):
            os.kill(os.getpid(), signal.SIGKILL)

main(sys.argv[1:], callbacks=[KillAtStep()])
"""

# Each of 2 gloo processes trains a copy sharded by FSDP2 as the config's plugin chooses, and a DDP copy.
FSDP_SCRIPT = """
import copy, json, os, sys
import torch
import torch.distributed as dist
from accelerate.utils import FullyShardedDataParallelPlugin
from accelerate.utils.fsdp_utils import fsdp2_prepare_auto_wrap_policy
from torch.distributed.fsdp import FSDPModule, fully_shard
from torch.nn.parallel import DistributedDataParallel
from modeling_xvit import XViTConfig, XViTForVideoClassification

dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)
model = XViTForVideoClassification(XViTConfig(**json.loads(sys.argv[1])))
plugin = FullyShardedDataParallelPlugin()  # from the FSDP_* variables that `accelerate launch` sets from the config
sharded = copy.deepcopy(model)
is_unit = fsdp2_prepare_auto_wrap_policy(plugin, sharded)
for module in reversed(list(sharded.modules())[1:]):  # innermost first, as accelerate does
    if is_unit(module):
        fully_shard(module, reshard_after_forward=plugin.reshard_after_forward)
fully_shard(sharded, reshard_after_forward=plugin.reshard_after_forward)
losses = {}
for name, network in (("fsdp", sharded), ("ddp", DistributedDataParallel(model))):
    optimizer = torch.optim.SGD(network.parameters(), lr=0.5, momentum=0.9)
    generator = torch.Generator().manual_seed(rank)
    losses[name] = []
    for step in range(3):
        pixel_values = torch.randn(2, 4, 3, 32, 32, generator=generator)
        loss = network(pixel_values, labels=torch.tensor([step % 3, rank])).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses[name].append(loss.item())
units = sorted(type(module).__name__ for module in sharded.modules() if isinstance(module, FSDPModule))
with open(f"{sys.argv[2]}/rank-{rank}.json", "w") as file:  # one file per process: their prints would interleave
    json.dump({"units": units, **losses}, file)
dist.barrier()
dist.destroy_process_group()
# After FSDP2 on gloo, torch 2.14 sometimes aborts in interpreter teardown ("terminate called without an active
# exception"), after all the work above: leave without it.
os._exit(0)
"""


@pytest.fixture(scope="module")
def video_root(tmp_path_factory) -> Path:
    return write_video_folder(tmp_path_factory.mktemp("videos"), {"train": 4})


def two_process_run(video_root: Path) -> list[str]:
    # 12 videos, global batch 4: 4 steps cross an epoch boundary, with augmentation drawn in a DataLoader worker.
    return ["--data_dir", str(video_root), "--do_train", "--max_steps", "4", "--dataloader_num_workers", "1"]


@pytest.fixture(scope="module")
def one_process(video_root, tmp_path_factory) -> Path:
    """The run of both launchers' tests in one process: the weights that two processes must reach."""
    output_dir = tmp_path_factory.mktemp("one-process") / "one"
    main(tiny_run(output_dir, *two_process_run(video_root)))
    return output_dir


class StepsRun(TrainerCallback):
    def __init__(self):
        self.steps = []

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)


def subprocess_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("PYTEST", "RANK", "WORLD"))}
    return {**env, "PYTHONPATH": str(REPOSITORY), "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", **extra}


def max_weight_difference(folder_a: Path, folder_b: Path) -> float:
    weights_a, weights_b = load_file(folder_a / "model.safetensors"), load_file(folder_b / "model.safetensors")
    assert weights_a.keys() == weights_b.keys()
    return max((weights_a[name] - weights_b[name]).abs().max().item() for name in weights_a)


# Two CPU processes: `accelerate launch --cpu --num_processes 2` starts one (accelerate's --cpu runs several only
# through MPI); --multi_gpu starts them with torchrun, and the script's --use_cpu keeps them on the CPU (gloo).
LAUNCHERS = {
    "torchrun": ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"],
    "accelerate": ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"],
}


@pytest.mark.slow
@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_two_processes_train_as_one_with_the_same_global_batch(video_root, tmp_path, launcher, request):
    with started(
        [sys.executable, *LAUNCHERS[launcher], "examples/run_video_classification.py",
         *tiny_run(tmp_path / "two", *two_process_run(video_root), "--per_device_train_batch_size", "2")],
        cwd=REPOSITORY,
        env=subprocess_env(tmp_path),
    ) as launched:  # fmt: skip
        one_process = request.getfixturevalue("one_process")  # the first test trains it while the launcher starts
        _, stderr = launched.communicate(timeout=300)
    assert launched.returncode == 0, stderr[-3000:]
    state = json.loads((tmp_path / "two" / "trainer_state.json").read_text())
    assert state["global_step"] == 4 and state["train_batch_size"] == 2
    assert max_weight_difference(one_process, tmp_path / "two") < 1e-5


@pytest.mark.slow
def test_a_run_killed_after_a_checkpoint_resumes_to_the_same_weights(video_root, tmp_path):
    # Dropout on, augmentation in a DataLoader worker, a checkpoint every 2 steps, killed in the middle of epoch 2.
    model = ["--config_overrides", TINY_MODEL + ",hidden_dropout_prob=0.1,frame_dropout_prob=0.2"]
    run = ["--data_dir", str(video_root), "--do_train", "--max_steps", "6", "--dataloader_num_workers", "1"]
    run += ["--save_strategy", "steps", "--save_steps", "2", *model]
    with started(
        [sys.executable, "-c", KILLED_RUN_SCRIPT, *tiny_run(tmp_path / "killed", *run)],
        cwd=REPOSITORY,
        env=subprocess_env(tmp_path, KILL_AT_STEP="5"),
    ) as killed:
        main(tiny_run(tmp_path / "uninterrupted", *run))  # while the killed run starts
        _, stderr = killed.communicate(timeout=300)
    assert killed.returncode == -9, stderr[-3000:]
    assert sorted(path.name for path in (tmp_path / "killed").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert not (tmp_path / "killed" / "model.safetensors").exists()

    steps = StepsRun()
    main(tiny_run(tmp_path / "killed", *run), callbacks=[steps])  # the same command again: resumes from step 4
    assert steps.steps == [5, 6]
    assert max_weight_difference(tmp_path / "uninterrupted", tmp_path / "killed") < 1e-5


def launch_environment(config: Path) -> dict[str, str]:
    """The variables that `accelerate launch --config_file config` sets for the processes it starts."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    arguments, _, _ = _validate_launch_command(
        launch_command_parser().parse_args(["--config_file", str(config), "examples/run_video_classification.py"])
    )
    return prepare_multi_gpu_env(arguments)


@pytest.mark.parametrize("config", ACCELERATE_CONFIGS, ids=[path.stem for path in ACCELERATE_CONFIGS])
def test_accelerate_accepts_each_config(config):
    from accelerate.commands.config.config_args import load_config_from_file

    loaded = load_config_from_file(str(config))
    assert loaded.num_processes == 8 * loaded.num_machines and loaded.gpu_ids == "all"
    environment = launch_environment(config)
    if loaded.distributed_type == "FSDP":
        assert environment["FSDP_VERSION"] == "2" and environment["FSDP_TRANSFORMER_CLS_TO_WRAP"] == "XViTLayer"
    if loaded.num_machines > 1:
        assert loaded.main_process_port and loaded.main_process_ip


@pytest.mark.slow
def test_fsdp_sharding_from_the_config_trains_like_ddp(tmp_path):
    fsdp_config = REPOSITORY / "examples" / "accelerate" / "fsdp_8gpu.yaml"
    fsdp_variables = {name: value for name, value in launch_environment(fsdp_config).items() if "FSDP" in name}
    tiny = dict(
        image_size=32, patch_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        num_frames=4, temporal_attention_num_heads=2, temporal_attention_intermediate_size=64,
        classifier_hidden_size=16, num_labels=3,
    )  # fmt: skip
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(_write(tmp_path / "fsdp_check.py", FSDP_SCRIPT)), json.dumps(tiny), str(tmp_path)],
        cwd=REPOSITORY,
        env=subprocess_env(tmp_path, **fsdp_variables),
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    for rank in (0, 1):
        result = json.loads((tmp_path / f"rank-{rank}.json").read_text())
        # One shard unit per backbone layer (XViTBackboneLayer, a kind of XViTLayer) and per temporal-attention layer
        # (XViTLayer), plus the root.
        backbone, temporal = ["FSDPXViTBackboneLayer"] * 2, ["FSDPXViTLayer"]
        assert result["units"] == sorted([*backbone, *temporal, "FSDPXViTForVideoClassification"])
        torch.testing.assert_close(torch.tensor(result["fsdp"]), torch.tensor(result["ddp"]), rtol=0, atol=1e-4)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
