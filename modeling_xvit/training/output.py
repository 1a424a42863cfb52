"""
The model folder a run leaves: the trained model as a complete Hub folder at the top of the output folder
(`modeling_xvit.hub.folder.write_hub_folder`: weights, configs, remote code, `handler.py`, the card with the run's
results), and its publication with --push_to_hub or --hub_dry_run.

Publishing sends exactly the Hub folder, through `modeling_xvit.hub.upload` (which checks every file), not
`Trainer.push_to_hub`: that uploads the whole output folder (`training_args.bin`, a pickle, the logs and predictions)
and replaces the card with its generic one.
"""

import os
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import transformers

from modeling_xvit import XViTVideoProcessor
from modeling_xvit.hub.card import ModelCardInputs
from modeling_xvit.hub.folder import CONFIG_NAME, write_hub_folder
from modeling_xvit.hub.upload import describe_push, push_to_hub
from modeling_xvit.training.arguments import VideoTrainingArguments
from modeling_xvit.training.card import SCRIPT, check_hub_repo_id, hub_repo_id
from modeling_xvit.training.run_folder import HUB_UPLOAD_FOLDER, remove_hub_folder_files


def check_publishing(training_args: VideoTrainingArguments) -> bool:
    """Whether the run publishes its model (--push_to_hub or --hub_dry_run); refuses, before any work, what could not
    be published. Trainer's own pushes (at every save, of the whole output folder) are turned off."""
    publish = training_args.push_to_hub or training_args.hub_dry_run
    training_args.push_to_hub = False
    if publish and not training_args.do_train:
        raise ValueError("--push_to_hub publishes the model that the run trains: add --do_train.")
    if publish:
        check_hub_repo_id(training_args)
    return publish


def save_hub_folder(
    trainer, processor: XViTVideoProcessor, card: Callable[[], ModelCardInputs], publish: bool = False
) -> Path | None:
    """Write the trained model as a complete Hub folder at the top of the output folder, publish it if asked, and
    return the output folder (None on the processes other than the first).

    Every process takes part in gathering the weights (`accelerator.get_state_dict` collects the shards of an FSDP
    run); process zero builds the `card`, writes the folder into `OUTPUT_DIR/hub_upload`, publishes that folder,
    which holds nothing else (no checkpoint, log, prediction or pickle), then moves its files to the top of the
    output folder, where `from_pretrained` and the pipeline load them. `hub_upload/` is kept, its files copied
    instead, after a dry run (exactly what would have been uploaded) and after a failed upload (to upload again with
    `xvit-push-to-hub`).
    """
    state_dict = trainer.accelerator.get_state_dict(trainer.model)
    if not trainer.is_world_process_zero():
        return None
    training_args = trainer.args
    output_dir = Path(training_args.output_dir)
    upload = output_dir / HUB_UPLOAD_FOLDER
    if upload.is_dir() and not upload.is_symlink():  # kept by an earlier start of this run
        remove_hub_folder_files(upload)
    model = trainer.accelerator.unwrap_model(trainer.model)
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_warning()  # its INFO lines name the staging folders, gone a moment later
    try:
        write_hub_folder(upload, model, card(), processor, state_dict=state_dict)
    finally:
        transformers.logging.set_verbosity(verbosity)
    keep = publish and training_args.hub_dry_run
    try:
        if publish:
            push_hub_folder(upload, training_args)
    except BaseException:
        keep = True
        raise
    finally:
        move_model_files(upload, output_dir, keep)
    return output_dir


def move_model_files(folder: Path, output_dir: Path, keep: bool) -> None:
    """Put the files of the Hub folder at the top of the output folder (moved, or copied when `keep`), `config.json`
    last: until every file is in place, the output folder does not load as a model."""
    (output_dir / CONFIG_NAME).unlink(missing_ok=True)
    transfer = shutil.copy2 if keep else os.replace
    for path in sorted(folder.iterdir(), key=lambda path: path.name == CONFIG_NAME):
        transfer(path, output_dir / path.name)
    if not keep:
        folder.rmdir()


def push_hub_folder(folder: Path, training_args: VideoTrainingArguments) -> None:
    """Publish `folder` to --hub_model_id (default: the output folder's name) with --hub_private_repo, --hub_revision
    and --hub_token, through `modeling_xvit.hub.upload`; --hub_dry_run prints what it would upload, sends nothing."""
    repo_id = hub_repo_id(training_args)
    result = push_to_hub(
        folder,
        repo_id,
        private=bool(training_args.hub_private_repo),
        revision=training_args.hub_revision,
        commit_message=f"XViT trained with {SCRIPT}",
        dry_run=training_args.hub_dry_run,
        token=training_args.hub_token,
    )
    print(describe_push(result, repo_id))
    if training_args.hub_dry_run:
        print(
            f"Nothing was sent. {folder} holds exactly these files; to upload them:"
            f" xvit-push-to-hub --folder {folder} --repo-id {repo_id}"
        )


def run_summary(output_dir: str | os.PathLike, results: dict[str, Any], model_saved: bool) -> str:
    """The last lines of a run: where the model is, its results, and the command that tries it."""
    output_dir = os.fspath(output_dir)
    measured = [name for name in sorted(results) if name.endswith("_accuracy") or name == "train_loss"]
    lines = [f"  {name} = {results[name]:.4f}" for name in measured]
    lines = [f"Results (all of them in {os.path.join(output_dir, 'all_results.json')}):", *lines] if lines else []
    if not model_saved:
        return "\n".join(lines)
    code = (
        "from transformers import pipeline; "
        f"classifier = pipeline('video-classification', model={output_dir!r}, trust_remote_code=True); "
        "print(classifier('VIDEO.mp4'))"
    )
    return "\n".join(
        [
            f"The model is in {output_dir}: a complete Hub folder (weights, configs, code, handler.py, README.md).",
            *lines,
            "Try it on a video of yours:",
            f"  {shlex.quote(sys.executable)} -c {shlex.quote(code)}",  # the interpreter that has the package
        ]
    )
