"""
The output folder of a training run holds one run. `xvit_run.json` records what the run is: its data (the data
arguments, the rows of each split, the class names, a hash of each list file), its model and the training arguments
that change the result. The same command started again in that folder resumes the run from its newest complete
checkpoint; anything else is refused with the differences, unless --overwrite_output_dir, which deletes the files
the earlier run wrote (never others) and starts afresh. A non-empty folder without a record is refused: the script
never writes over, or deletes, files it did not write.

Results belong to the run that measured them: the result files of an earlier start (`all_results.json`,
`predictions.jsonl`, ...) are deleted when a run starts, so the card never quotes figures of another model.
"""

import dataclasses
import fnmatch
import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transformers import TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from modeling_xvit.errors import ConversionError
from modeling_xvit.hub.folder import is_hub_folder_file
from modeling_xvit.training.arguments import ModelArguments
from modeling_xvit.training.data import DataArguments, VideoSplit

logger = logging.getLogger(__name__)

RUN_RECORD = "xvit_run.json"
HUB_UPLOAD_FOLDER = "hub_upload"
# What a run writes at the top of its folder, besides the Hub folder's files; each start deletes the results.
RESULT_FILES = (
    "all_results.json",
    "train_results.json",
    "eval_results.json",
    "test_results.json",
    "predictions.jsonl",
)
RUN_FILES = (*RESULT_FILES, RUN_RECORD, "trainer_state.json", "training_args.bin", "training_curve.png")
RUN_FOLDERS = (f"{PREFIX_CHECKPOINT_DIR}-[0-9]*", "runs")  # Trainer's checkpoints and TensorBoard logs
# Arguments that do not change the trained model: how it is logged, saved, evaluated, published and read.
IGNORED_ARGUMENTS = {
    "cache_dir",
    "test_file",
    "test_dir",
    "test_split_name",
    "max_predict_samples",
    "eval_num_temporal_views",
    "eval_num_spatial_crops",
    "output_dir",
    "overwrite_output_dir",
    "resume_from_checkpoint",
    "do_eval",
    "do_predict",
    "per_device_eval_batch_size",
    "prediction_loss_only",
    "run_name",
    "project",
    "report_to",
    "disable_tqdm",
    "debug",
    "skip_memory_metrics",
    "local_rank",
    "ddp_timeout",
    "push_to_hub",
    "card_intended_use",
    "dataloader_num_workers",
    "dataloader_prefetch_factor",
    "dataloader_persistent_workers",
    "dataloader_pin_memory",
    "dataloader_multiprocessing_context",
}
IGNORED_PREFIXES = ("logging_", "log_", "save_", "hub_", "trackio_", "eval_", "include_", "torch_empty_cache")
# Arguments that may name local files or folders: recorded as absolute paths, however the command spells them.
PATH_ARGUMENTS = (
    "data_dir",
    "train_dir",
    "validation_dir",
    "train_file",
    "validation_file",
    "video_root",
    "prepared_dir",
    "dataset_name",
    "class_names",
    "model_name_or_path",
    "init_from_image_model",
    "config_name",
    "video_processor_name",
)
# What the record holds besides the arguments, in the words of a refusal.
DERIVED = {
    "list_file_sha256": "the content of the list files (sha256)",
    "rows": "the rows of each split",
    "class_names_found": "the class names",
    "processes": "the number of processes",
}


def describe_run(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: TrainingArguments,
    splits: Mapping[str, VideoSplit],
    class_names: list[str],
) -> dict[str, Any]:
    """What the run is, as JSON values: the arguments that change the result, the data it reads, the processes."""
    arguments = {
        **dataclasses.asdict(model_args),
        **dataclasses.asdict(data_args),
        **training_args.to_dict(),
        "processes": training_args.world_size,
    }
    run = {
        name: value
        for name, value in arguments.items()
        if name not in IGNORED_ARGUMENTS and not name.startswith(IGNORED_PREFIXES)
    }
    for name in PATH_ARGUMENTS:
        if run.get(name) and os.path.exists(run[name]):
            run[name] = os.path.abspath(run[name])
    lists = {"train_file": data_args.train_file, "validation_file": data_args.validation_file}
    run["list_file_sha256"] = {name: _sha256(path) for name, path in lists.items() if path and os.path.isfile(path)}
    run["rows"] = {name: split.num_rows for name, split in splits.items() if hasattr(split, "num_rows")}
    run["class_names_found"] = list(class_names)
    return json.loads(json.dumps(run, default=str, sort_keys=True))


def _sha256(path: str) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def differences(earlier: Mapping[str, Any], run: Mapping[str, Any]) -> list[str]:
    """`--name: earlier A, now B` for each difference between two runs."""
    names = sorted(set(earlier) | set(run))
    return [
        f"{DERIVED.get(name, '--' + name)}: earlier {_shown(earlier.get(name))}, now {_shown(run.get(name))}"
        for name in names
        if earlier.get(name) != run.get(name)
    ]


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def claim_output_dir(output_dir: str | os.PathLike, run: dict[str, Any], training_args: TrainingArguments) -> None:
    """Make `output_dir` this run's folder, or refuse (every process checks, before anything changes): a new or
    empty folder, the folder of the same run (resumed), or with --overwrite_output_dir the folder of another run
    (its files deleted). The result files of an earlier start are deleted."""
    output_dir = Path(output_dir)
    overwrite = getattr(training_args, "overwrite_output_dir", False)
    problem = _claim_problem(output_dir, run, overwrite)
    if problem:  # refused as the converters refuse their output folder: one message, no traceback from the script
        raise ConversionError(problem)
    state = training_args.distributed_state
    state.wait_for_everyone()  # every process has read the folder before the first one changes it
    if state.is_main_process:
        if overwrite and (output_dir / RUN_RECORD).is_file():
            remove_run_files(output_dir)
        for name in RESULT_FILES:
            (output_dir / name).unlink(missing_ok=True)
        output_dir.mkdir(parents=True, exist_ok=True)
        record = output_dir / RUN_RECORD
        record.with_name(f".{RUN_RECORD}.tmp").write_text(json.dumps({"run": run}, indent=2, sort_keys=True) + "\n")
        os.replace(record.with_name(f".{RUN_RECORD}.tmp"), record)
    state.wait_for_everyone()


def _claim_problem(output_dir: Path, run: dict[str, Any], overwrite: bool) -> str | None:
    if output_dir.exists() and not output_dir.is_dir():
        return f"--output_dir {output_dir} is a file, not a folder."
    if not output_dir.is_dir() or not any(output_dir.iterdir()):
        return None
    record = output_dir / RUN_RECORD
    if not record.is_file():
        return (
            f"--output_dir {output_dir} is not empty and holds no run of this script (it has no {RUN_RECORD}): choose"
            " a new or empty folder. The script never writes over, or deletes, files it did not write."
        )
    try:
        earlier = json.loads(record.read_text(encoding="utf-8"))["run"]
    except (ValueError, KeyError, TypeError) as error:
        return f"{record} cannot be read ({error!r}): choose a new or empty --output_dir."
    changed = differences(earlier, run)
    if changed and not overwrite:
        return (
            f"--output_dir {output_dir} holds another run of this script, which this one would mix with:\n  "
            + "\n  ".join(changed)
            + "\nChoose another --output_dir, or pass --overwrite_output_dir to start afresh there (the files that"
            " run wrote are deleted, others kept)."
        )
    foreign = [name for name in _entries(output_dir / HUB_UPLOAD_FOLDER) if not is_hub_folder_file(name)]
    if foreign:
        return (
            f"{output_dir / HUB_UPLOAD_FOLDER} holds files this script did not write ({', '.join(foreign)}), and the"
            " Hub folder is written and published from there: move them away."
        )
    return None


def _entries(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def remove_run_files(output_dir: Path) -> list[str]:
    """Delete what a run of this script writes in `output_dir` (results, checkpoints, logs, the Hub folder's files,
    `hub_upload/`) and nothing else; returns the names deleted."""
    removed = []
    for name in _entries(output_dir):
        path = output_dir / name
        if name == HUB_UPLOAD_FOLDER and path.is_dir() and not path.is_symlink():
            remove_hub_folder_files(path)
        elif path.is_dir() and not path.is_symlink() and _matches(name, RUN_FOLDERS):
            shutil.rmtree(path)
        elif path.is_file() and (_matches(name, RUN_FILES) or is_hub_folder_file(name)):
            path.unlink()
        else:
            continue
        removed.append(name)
    return removed


def remove_hub_folder_files(folder: Path) -> None:
    """Delete the Hub folder's files from `folder`, then `folder` if nothing else is left in it."""
    for name in _entries(folder):
        if is_hub_folder_file(name) and (folder / name).is_file():
            (folder / name).unlink()
    if not _entries(folder):
        folder.rmdir()


def last_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest checkpoint of `output_dir` that Trainer finished writing (its `trainer_state.json`, written last,
    reads as JSON), or None; a newer one left incomplete by a killed run is skipped with a warning."""
    pattern = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")
    checkpoints = [path for path in Path(output_dir).iterdir() if pattern.match(path.name) and path.is_dir()]
    for checkpoint in sorted(checkpoints, key=lambda path: int(pattern.match(path.name)[1]), reverse=True):
        try:
            json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            logger.warning("Skipped the incomplete checkpoint %s (stopped while it was saved): %s", checkpoint, error)
            continue
        return str(checkpoint)
    return None
