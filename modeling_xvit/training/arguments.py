"""
The arguments of the training script: where the model starts from (`ModelArguments`), where the data comes from
(`modeling_xvit.training.data.DataArguments`), and `TrainingArguments` with what the script adds (`--recipe`, the
publishing dry run, the card's intended use, starting afresh in a used output folder).
"""

import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from transformers import HfArgumentParser, TrainingArguments

from modeling_xvit.training.data import DataArguments


@dataclass
class RecipeArguments:
    recipe: str | None = field(
        default=None,
        metadata={"help": "YAML or JSON file of defaults for any argument (examples/recipes/); flags override it."},
    )


@dataclass
class ModelArguments:
    """Where the model starts from."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "An XViT folder or Hub id to fine-tune (see --ignore_mismatched_sizes)."}
    )
    init_from_image_model: str | None = field(
        default=None,
        metadata={"help": "A Transformers ViT folder or timm ViT state dict: the backbone starts from its weights."},
    )
    config_name: str | None = field(
        default=None,
        metadata={
            "help": "Config (a JSON file, folder or Hub id) of a model trained from scratch; default XViT-B/16."
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={
            "help": "Config fields to set, `key=value,...` with JSON values: `num_frames=8,frame_dropout_prob=0.5`."
        },
    )
    video_processor_name: str | None = field(
        default=None,
        metadata={"help": "Video processor folder or Hub id; default: the model's, else one made for the config."},
    )
    video_processor_overrides: str | None = field(
        default=None,
        metadata={
            "help": "Video processor settings, `key=value,...`: `sampling=dense,sampling_rate=4,do_flip=false`."
        },
    )
    ignore_mismatched_sizes: bool = field(
        default=False, metadata={"help": "Start a new classifier when the label set differs from the model's."}
    )
    freeze_backbone: bool = field(default=False, metadata={"help": "Train only the classifier (linear probing)."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow Hub models that bring their own code."})
    model_revision: str = field(default="main", metadata={"help": "Branch, tag or commit of a Hub model."})
    cache_dir: str | None = field(
        default=None, metadata={"help": "Where downloaded models and prepared data sets are kept (default: HF_HOME)."}
    )


@dataclass
class VideoTrainingArguments(TrainingArguments):
    """`TrainingArguments`, the dry run of publishing, what the model card says about the model's use, and starting
    afresh in an output folder that holds another run."""

    hub_dry_run: bool = field(
        default=False,
        metadata={
            "help": "Do what --push_to_hub does but send nothing: print the files it would upload and keep them in "
            "OUTPUT_DIR/hub_upload."
        },
    )
    card_intended_use: str | None = field(
        default=None,
        metadata={
            "help": "Markdown paragraph replacing the model card's default 'Intended use and limitations' (what the "
            "model is for, what it knows and does not); a recipe can hold it."
        },
    )
    dataloader_num_workers: int | None = field(
        default=None,
        metadata={
            "help": "DataLoader processes that decode the videos; default: the CPU cores this process may use, shared "
            "among the training processes of the machine."
        },
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Start afresh in an output folder that holds another run of this script: the files that run wrote "
            "are deleted (never others). Without it, only the same run is resumed there."
        },
    )

    def __post_init__(self):
        if self.dataloader_num_workers is None:
            self.dataloader_num_workers = default_num_workers()
        super().__post_init__()


def default_num_workers() -> int:
    """The CPU cores this process may use, shared among the processes that `torchrun` or `accelerate launch` start
    on this machine (`LOCAL_WORLD_SIZE`), at least 1."""
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, len(os.sched_getaffinity(0)) // max(1, local_processes))


ARGUMENT_CLASSES = (ModelArguments, DataArguments, VideoTrainingArguments)


def parse_arguments(argv: Sequence[str] | None = None) -> tuple[ModelArguments, DataArguments, VideoTrainingArguments]:
    """Command line over `--recipe` defaults over the dataclasses' defaults."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser((RecipeArguments, *ARGUMENT_CLASSES))
    # HfArgumentParser.parse_yaml_file reads a file as the whole set of arguments, with no flags over it: a recipe is
    # read as the parser's defaults instead.
    recipe = parser.parse_known_args(argv)[0].recipe
    if recipe:
        with open(recipe, encoding="utf-8") as file:
            settings = yaml.safe_load(file) or {}  # YAML reads JSON too
        if not isinstance(settings, dict):
            raise ValueError(f"Recipe {recipe} must be a mapping of argument names to values.")
        parser.set_defaults(**settings)
    _, model_args, data_args, training_args, *unknown = parser.parse_args_into_dataclasses(args=argv)
    if unknown:  # defaults that no dataclass field took
        raise ValueError(f"Recipe {recipe} sets unknown arguments {sorted(vars(unknown[0]))}; see --help.")
    return model_args, data_args, training_args


def parse_overrides(text: str | None, option: str, known: set[str]) -> dict[str, Any]:
    """`key=value,key=[1,2],...` -> dict; values are read as JSON when they parse (numbers, lists, true/false).

    Not `PretrainedConfig.update_from_string`: it splits lists such as `space_time_mixing_layers=[0,2]` at the comma.
    """
    overrides = {}
    for item in re.split(r",(?![^\[]*\])", text or ""):
        if not item.strip():
            continue
        key, equals, value = (part.strip() for part in item.partition("="))
        if not equals or not key:
            raise ValueError(f"{option}: expected key=value pairs separated by commas, got {item!r}.")
        try:
            overrides[key] = json.loads(value.lower() if value.lower() in ("true", "false", "null") else value)
        except json.JSONDecodeError:
            overrides[key] = value
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"{option}: unknown setting(s) {unknown}; known: {sorted(known)}.")
    return overrides
