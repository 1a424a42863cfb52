"""
The model card of a training run of `examples/run_video_classification.py`, as the inputs of
`modeling_xvit.hub.card.render_model_card`: where the weights started from, the command as it was run (local paths
relative to the output folder), the data set (a Hub or known data set in the metadata, local videos in words only),
the base model, the accuracy read back from the run's own `all_results.json` (one view and the multi-view protocol,
for the validation and the test split), the recipe, the hyper-parameters the run actually used, and
`--card_intended_use` when given.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers import TrainerState, TrainingArguments

from modeling_xvit import XViTConfig
from modeling_xvit.hub.card import (
    DATASETS,
    SPLIT_PREFIXES,
    CardResult,
    ModelCardInputs,
    count_of,
    results_from_all_results,
)
from modeling_xvit.training.data import DataArguments

if TYPE_CHECKING:
    from modeling_xvit.training.arguments import ModelArguments

SCRIPT = "examples/run_video_classification.py"
# Options whose value is a Hub repository id, never a local path, even where a folder of that name exists.
HUB_ID_FLAGS = ("--hub_model_id",)
REDACTED = "REDACTED"


def hub_id(name: str | os.PathLike | None) -> str | None:
    """`name` when it names a Hub repository rather than a local path, else None."""
    if not name or Path(name).exists():
        return None
    try:
        validate_repo_id(str(name))
    except HFValidationError:
        return None
    return str(name)


def hub_repo_id(training_args: TrainingArguments) -> str:
    """The repository --push_to_hub publishes to: --hub_model_id, else the output folder's name (as Trainer does)."""
    return training_args.hub_model_id or Path(training_args.output_dir).name


def check_hub_repo_id(training_args: TrainingArguments) -> None:
    """Refuse, before any training, a repository name that the Hub would refuse at the end of the run."""
    repo_id = hub_repo_id(training_args)
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ValueError(f"--hub_model_id: {repo_id!r} is not a Hub repository id ({error})") from None


def relative_to_output(word: str, output_dir: str | os.PathLike) -> str:
    """A local path (absolute, or relative and existing) as seen from the output folder; any other word as it is."""
    path = Path(word)
    if not word or not (path.is_absolute() or path.exists()):
        return word
    return os.path.relpath(path.absolute(), Path(output_dir).absolute())


def run_command(argv: Sequence[str], output_dir: str | os.PathLike, hub_token: str | None = None) -> str:
    """The shell command of the run: its arguments as given, local paths relative to the output folder (no absolute
    path of this machine), the Hub token replaced wherever it appears."""
    words = []
    for index, word in enumerate(argv):
        if word.startswith("--"):  # --flag, or --flag=value
            flag, equals, value = word.partition("=")
            word = flag + equals + (value if flag in HUB_ID_FLAGS else relative_to_output(value, output_dir))
        elif index == 0 or argv[index - 1] not in HUB_ID_FLAGS:
            word = relative_to_output(word, output_dir)
        words.append(word.replace(hub_token, REDACTED) if hub_token else word)
    return shlex.join(["python", SCRIPT, *words])


def dataset_name(data_args: DataArguments) -> str | None:
    """The data set for the card's metadata: a Hub data set id, or a known label set (kinetics600, ...); None for
    local videos (see `local_data`)."""
    if hub_id(data_args.dataset_name):
        return data_args.dataset_name
    if data_args.class_names in DATASETS:
        return data_args.class_names
    return None


def local_data(data_args: DataArguments) -> str | None:
    """Local training videos in the card's words: the folder or list they come from, by name (no local path)."""
    if dataset_name(data_args):
        return None
    folder = data_args.dataset_name or data_args.data_dir or data_args.train_dir or data_args.validation_dir
    folder = folder or data_args.test_dir
    if folder:
        return f"local videos from the folder `{Path(folder).resolve().name}`"
    if data_args.prepared_dir:
        return f"local videos prepared into the folder `{Path(data_args.prepared_dir).resolve().name}`"
    lists = data_args.train_file or data_args.validation_file or data_args.test_file
    return f"local videos listed in `{Path(lists).name}`" if lists else None


def origin(model_args: ModelArguments, training_args: TrainingArguments, state: TrainerState) -> str:
    """How the weights were made: the start point, then the training."""
    output_dir = training_args.output_dir
    if model_args.model_name_or_path:
        start = f"Fine-tuned from `{relative_to_output(model_args.model_name_or_path, output_dir)}`"
        if model_args.freeze_backbone:
            start += " with its backbone frozen (linear probing: only the classifier was trained)"
    elif model_args.init_from_image_model:
        start = (
            f"Trained from the image ViT `{relative_to_output(model_args.init_from_image_model, output_dir)}`"
            " (`--init_from_image_model`), as the"
            " paper does: the backbone starts from its weights, the temporal embedding at zero, the temporal-attention"
            " head and the classifier afresh"
        )
    else:
        config = (
            f"the config `{relative_to_output(model_args.config_name, output_dir)}`"
            if model_args.config_name
            else "the default XViT-B/16 config"
        )
        start = f"Trained from scratch (random initialisation) from {config}"
        if model_args.config_overrides:
            start += " changed by `--config_overrides` (see the command)"
    return (
        f"{start}, with `{SCRIPT}` (the Transformers `Trainer`) on"
        f" {count_of(training_args.world_size, 'process', 'processes')} for {count_of(state.global_step, 'step')}."
        " In the command below, local paths are relative to the model folder."
    )


def recipe(
    training_args: TrainingArguments, data_args: DataArguments, config: XViTConfig, state: TrainerState
) -> dict[str, Any]:
    """The hyper-parameters the run used, in the card's table."""
    args = training_args
    per_device, devices = args.per_device_train_batch_size, args.world_size * max(1, args.n_gpu)
    accumulation = args.gradient_accumulation_steps
    warmup = args.warmup_steps
    schedule = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)  # enums once parsed
    optimizer = getattr(args.optim, "value", args.optim)
    length = count_of(state.global_step, "step")
    if not data_args.streaming and state.epoch:
        length += f" ({count_of(round(state.epoch, 2), 'epoch')})"
    return {
        "optimizer": f"{optimizer} ({args.optim_args})" if args.optim_args else optimizer,
        "learning rate": f"{args.learning_rate:g}",
        "schedule": f"{schedule} {args.lr_scheduler_kwargs}" if args.lr_scheduler_kwargs else schedule,
        "warm-up": f"{warmup:g} of the steps" if 0 < warmup < 1 else f"{int(warmup)} steps",
        "training": length,
        "global batch": f"{per_device * devices * accumulation} ({per_device} per device x"
        f" {count_of(devices, 'device')} x {count_of(accumulation, 'accumulation step')})",
        "weight decay": f"{args.weight_decay:g}",
        "label smoothing": f"{args.label_smoothing_factor:g}",
        "MixUp alpha": f"{data_args.mixup_alpha:g}" if data_args.mixup_alpha else "off",
        "CutMix alpha": f"{data_args.cutmix_alpha:g}" if data_args.cutmix_alpha else "off",
        "seed": args.seed,
        "frames": config.num_frames,
        "image size": f"{config.image_size} x {config.image_size}",
    }


def run_results(all_results: Path, splits: Sequence[str], num_labels: int) -> list[CardResult]:
    """The accuracy figures of `splits` (validation, test) that the run wrote to `all_results.json`; without top-5
    for 5 classes or fewer, where it is 100% whatever the model."""
    return [
        result if num_labels > 5 else replace(result, top5=None)
        for split in splits
        for result in results_from_all_results(all_results, split, prefix=SPLIT_PREFIXES[split])
    ]


def training_card_inputs(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: TrainingArguments,
    config: XViTConfig,
    argv: Sequence[str],
    state: TrainerState,
    measured_splits: Sequence[str] = (),
) -> ModelCardInputs:
    """The card of the model the run trained; `measured_splits` are the splits this run evaluated, whose figures are
    read from `output_dir/all_results.json` (Trainer merges every run's metrics into it: an earlier run's figures of
    a split not measured now are left out)."""
    all_results = Path(training_args.output_dir, "all_results.json")
    return ModelCardInputs(
        origin=origin(model_args, training_args, state),
        model_id=hub_repo_id(training_args),
        command=run_command(argv, training_args.output_dir, training_args.hub_token),
        dataset=dataset_name(data_args),
        training_data=local_data(data_args),
        base_model=hub_id(model_args.model_name_or_path),
        results=run_results(all_results, measured_splits, config.num_labels),
        recipe=recipe(training_args, data_args, config, state),
        intended_use=getattr(training_args, "card_intended_use", None),
    )
