#!/usr/bin/env python
"""
Fine-tune, evaluate and test XViT on labelled videos with the Transformers `Trainer`, on one CPU or GPU or on many
GPUs and machines through Accelerate: `accelerate launch` and `torchrun` run this script unchanged.

    python examples/run_video_classification.py --data_dir videos/ --model_name_or_path xvit-b16-16-k600 \\
        --ignore_mismatched_sizes --recipe examples/recipes/finetune.yaml --output_dir xvit-finetuned \\
        --do_train --do_eval --do_predict

Every `TrainingArguments` flag works (--bf16, --gradient_checkpointing, --torch_compile, --resume_from_checkpoint,
--report_to tensorboard, --push_to_hub, ...); --recipe FILE sets defaults for any of the flags below from a YAML or
JSON file, which the command line overrides. The output folder receives the checkpoints, `all_results.json`,
`predictions.jsonl` (per-class scores of every test video), `training_curve.png` and the model folder itself, complete
for the Hub (`modeling_xvit.hub.folder.write_hub_folder`: remote code, `handler.py`, and a model card with the command,
the recipe and the run's results), which loads with `AutoModelForVideoClassification.from_pretrained(folder,
trust_remote_code=True)` and `pipeline("video-classification", model=folder, trust_remote_code=True)`.
`--push_to_hub` publishes exactly the model folder's files at the end (`--hub_dry_run`: list them, send nothing).
README.md, section "Training", has the data formats, the recipes and the multi-GPU and multi-node commands.
"""

import argparse
import dataclasses
import json
import logging
import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import datasets
import evaluate
import numpy as np
import transformers
from transformers import (
    AutoConfig,
    AutoModelForVideoClassification,
    AutoVideoProcessor,
    EvalPrediction,
    HfArgumentParser,
    TrainerCallback,
    TrainingArguments,
)
from transformers.trainer_utils import PredictionOutput, get_last_checkpoint, set_seed

from modeling_xvit import XViTConfig, XViTForVideoClassification, XViTVideoProcessor
from modeling_xvit.hub.card import ModelCardInputs
from modeling_xvit.hub.folder import CONFIG_NAME, default_video_processor, write_hub_folder
from modeling_xvit.hub.upload import describe_push, push_to_hub
from modeling_xvit.training import TOP_K_ACCURACY_METRIC
from modeling_xvit.training.card import SCRIPT, check_hub_repo_id, hub_repo_id, training_card_inputs
from modeling_xvit.training.collator import VideoClassificationCollator, clip_mixing
from modeling_xvit.training.curve import write_training_curve
from modeling_xvit.training.data import (
    DataArguments,
    LabelEncoder,
    SplitColumns,
    StreamedVideoRows,
    VideoRows,
    check_labels,
    find_class_names,
    load_video_splits,
    undecoded,
    video_column,
)
from modeling_xvit.training.trainer import VideoClassificationTrainer, video_classification_loss

logger = logging.getLogger(__name__)


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
    """`TrainingArguments`, the dry run of publishing, and what the model card says about the model's use."""

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


# --- Arguments -------------------------------------------------------------------------------------------------


def parse_arguments(
    argv: Sequence[str] | None = None,
) -> tuple[ModelArguments, DataArguments, VideoTrainingArguments]:
    """Command line over `--recipe` defaults over the dataclasses' defaults."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser((RecipeArguments, ModelArguments, DataArguments, VideoTrainingArguments))
    recipe_parser = argparse.ArgumentParser(add_help=False)
    recipe_parser.add_argument("--recipe")
    recipe = recipe_parser.parse_known_args(argv)[0].recipe
    if recipe:
        parser.set_defaults(**read_recipe(recipe))
    _, model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    return model_args, data_args, training_args


def read_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """A recipe file's settings, checked against the script's arguments."""
    import yaml

    with open(path, encoding="utf-8") as file:
        settings = yaml.safe_load(file) or {}  # YAML reads JSON too
    if not isinstance(settings, dict):
        raise ValueError(f"Recipe {path} must be a mapping of argument names to values.")
    known = {
        f.name
        for dataclass in (ModelArguments, DataArguments, VideoTrainingArguments)
        for f in dataclasses.fields(dataclass)
    }
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"Recipe {path} sets unknown arguments {unknown}; see --help for the arguments.")
    return settings


def parse_overrides(text: str | None, option: str, known: set[str]) -> dict[str, Any]:
    """`key=value,key=[1,2],...` -> dict; values are read as JSON when they parse (numbers, lists, true/false)."""
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


# --- Model and video processor ---------------------------------------------------------------------------------


def build_model(model_args: ModelArguments, label_names: list[str]) -> XViTForVideoClassification:
    """The model to train, from an XViT, from an image ViT, or from a config, with the data's label set."""
    starts = [
        name for name in ("model_name_or_path", "init_from_image_model", "config_name") if getattr(model_args, name)
    ]
    if len(starts) > 1:
        raise ValueError(f"Give at most one of --{', --'.join(starts)}.")
    labels = {
        "num_labels": len(label_names),
        "id2label": dict(enumerate(label_names)),
        "label2id": {name: index for index, name in enumerate(label_names)},
        "problem_type": "single_label_classification",
    }
    overrides = parse_overrides(model_args.config_overrides, "--config_overrides", set(XViTConfig().to_dict()))
    if model_args.model_name_or_path:
        hub = {
            "revision": model_args.model_revision,
            "trust_remote_code": model_args.trust_remote_code,
            "cache_dir": model_args.cache_dir,
        }
        config = AutoConfig.from_pretrained(model_args.model_name_or_path, **hub, **overrides, **labels)
        return AutoModelForVideoClassification.from_pretrained(
            model_args.model_name_or_path,
            config=config,
            ignore_mismatched_sizes=model_args.ignore_mismatched_sizes,
            **hub,
        )
    if model_args.init_from_image_model:
        from modeling_xvit.conversion.vit import xvit_from_vit

        return xvit_from_vit(model_args.init_from_image_model, **{**overrides, **labels})
    config_dict = XViTConfig.get_config_dict(model_args.config_name)[0] if model_args.config_name else {}
    return XViTForVideoClassification(XViTConfig.from_dict({**config_dict, **overrides, **labels}))


def video_processor_for(config: XViTConfig) -> XViTVideoProcessor:
    """The original's pipeline at the config's frame size and clip length (`default_video_processor`), with the
    training scale jitter 256-320 scaled by `image_size / 224`."""
    processor = default_video_processor(config)
    processor.scale_jitter = [round(config.image_size * 256 / 224), round(config.image_size * 320 / 224)]
    return processor


def build_video_processor(model_args: ModelArguments, config: XViTConfig) -> XViTVideoProcessor:
    source = model_args.video_processor_name or model_args.model_name_or_path
    processor = None
    if source:
        try:
            processor = AutoVideoProcessor.from_pretrained(
                source,
                revision=model_args.model_revision,
                trust_remote_code=model_args.trust_remote_code,
                cache_dir=model_args.cache_dir,
            )
        except OSError:
            if model_args.video_processor_name:
                raise
            logger.info("%s has no video processor config: using one made for the model's config.", source)
    processor = processor or video_processor_for(config)
    settings = processor.to_dict()
    overrides = parse_overrides(model_args.video_processor_overrides, "--video_processor_overrides", set(settings))
    return type(processor).from_dict({**settings, **overrides}) if overrides else processor


# --- Data ------------------------------------------------------------------------------------------------------


def split_rows(
    split_name: str,
    split,
    data_args: DataArguments,
    labels: LabelEncoder,
    processing: dict[str, Any],
    training_args: TrainingArguments | None = None,
) -> VideoRows | StreamedVideoRows:
    """A split's rows for the DataLoader; a prepared split's labels are checked here, before any training."""
    column = video_column(split, data_args.video_column_name)
    labels = labels.for_split(split, data_args.label_column_name)
    columns = SplitColumns(split_name, column, data_args.label_column_name, labels, data_args.video_root, processing)
    split = undecoded(split, column)
    if isinstance(split, datasets.IterableDataset):
        if training_args is None:  # evaluation streams are shared out by accelerate, which keeps batches even
            return StreamedVideoRows(split, columns)
        return StreamedVideoRows(split, columns, training_args.process_index, training_args.world_size)
    check_labels(split, columns)
    return VideoRows(split, columns)


def views(data_args: DataArguments, multi_view: bool) -> dict[str, Any]:
    """Processor options of evaluation clips: one centre view, or the multi-view protocol."""
    if not multi_view:
        return {"do_augment": False, "num_temporal_views": 1, "num_spatial_crops": 1}
    return {
        "do_augment": False,
        "num_temporal_views": data_args.eval_num_temporal_views,
        "num_spatial_crops": data_args.eval_num_spatial_crops,
    }


def check_processing(processor: XViTVideoProcessor, processing: dict[str, Any]) -> None:
    """Fail before training when the processor refuses a split's options (say 4 temporal views of segment sampling),
    rather than later, when every video would be counted as unreadable."""
    blank_video = np.zeros((processor.num_frames, 8, 8, 3), dtype=np.uint8)
    try:
        processor(blank_video, return_tensors="pt", **processing)
    except ValueError as error:
        raise ValueError(f"The video processor refuses the options {processing}: {error}") from error


def view_counts(prefix: str, data_args: DataArguments) -> dict[str, Any]:
    """The views of a multi-view evaluation: `"2x3"` (temporal x spatial) and each count (read by the model card)."""
    temporal, spatial = data_args.eval_num_temporal_views, data_args.eval_num_spatial_crops
    return {
        f"{prefix}_num_views": f"{temporal}x{spatial}",
        f"{prefix}_num_temporal_views": temporal,
        f"{prefix}_num_spatial_crops": spatial,
    }


def top_k_metrics(eval_prediction: EvalPrediction, metric) -> dict[str, float]:
    """Top-1 and top-5 accuracy; rows with a negative label are padding added by distributed gathering."""
    labels = np.asarray(eval_prediction.label_ids)[:, 0]
    kept = labels >= 0
    return metric.compute(predictions=eval_prediction.predictions[kept], references=labels[kept], k=[1, 5])


def write_predictions(
    output: PredictionOutput, rows: VideoRows, label_names: list[str], path: Path, probabilities: bool
) -> None:
    """One JSON line per test video: its name, label, predicted class and the score of every class."""
    scores = np.asarray(output.predictions, dtype=np.float64)
    if not probabilities:  # logits of one view
        scores = np.exp(scores - scores.max(1, keepdims=True))
        scores /= scores.sum(1, keepdims=True)
    with open(path, "w", encoding="utf-8") as file:
        for video_scores, (label, index) in zip(scores, np.asarray(output.label_ids), strict=True):
            if label < 0:
                continue
            entry = {
                "video": rows.video_name(int(index)),
                "label": label_names[label],
                "predicted_label": label_names[int(video_scores.argmax())],
                "scores": {
                    name: round(float(score), 6) for name, score in zip(label_names, video_scores, strict=True)
                },
            }
            file.write(json.dumps(entry) + "\n")


# --- Saving and publishing -------------------------------------------------------------------------------------


HUB_UPLOAD_FOLDER = "hub_upload"


def save_hub_folder(
    trainer: VideoClassificationTrainer,
    processor: XViTVideoProcessor,
    training_args: VideoTrainingArguments,
    card: Callable[[], ModelCardInputs],
    publish: bool = False,
) -> None:
    """Write the trained model as a complete Hub folder at the top of the output folder, and publish it if asked.

    Every process takes part in gathering the weights (`accelerator.get_state_dict` collects the shards of an FSDP
    run); process zero builds the `card` and writes the folder (`modeling_xvit.hub.folder.write_hub_folder`: weights,
    configs, remote code, `handler.py`, the card) into `OUTPUT_DIR/hub_upload`, publishes that folder, which holds
    nothing else (no checkpoint, log, prediction or pickle), then moves its files to the top of the output folder,
    where `from_pretrained` and the pipeline load them. `hub_upload/` is kept, its files copied instead, after a dry
    run (exactly what would have been uploaded) and after a failed upload (to upload again with
    `python -m modeling_xvit.hub.upload`).
    """
    state_dict = trainer.accelerator.get_state_dict(trainer.model)
    if not trainer.is_world_process_zero():
        return
    output_dir = Path(training_args.output_dir)
    upload = output_dir / HUB_UPLOAD_FOLDER
    if upload.is_dir() and not upload.is_symlink():  # kept by an earlier run
        shutil.rmtree(upload)
    model = trainer.accelerator.unwrap_model(trainer.model)
    write_hub_folder(upload, model, card(), processor, state_dict=state_dict)
    keep = publish and training_args.hub_dry_run
    try:
        if publish:
            push_hub_folder(upload, training_args)
    except BaseException:
        keep = True
        raise
    finally:
        move_model_files(upload, output_dir, keep)


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
            f" python -m modeling_xvit.hub.upload --folder {folder} --repo-id {repo_id}"
        )


# --- Main ------------------------------------------------------------------------------------------------------


def setup_logging(training_args: TrainingArguments) -> None:
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    if training_args.should_log:
        transformers.utils.logging.set_verbosity_info()
    log_level = training_args.get_process_log_level()
    for name in (__name__, "examples"):
        logging.getLogger(name).setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)


def check_splits(splits: dict, training_args: TrainingArguments) -> None:
    needed = {
        "train": training_args.do_train,
        "validation": training_args.do_eval or training_args.eval_strategy != "no",
        "test": training_args.do_predict,
    }
    missing = [split for split, wanted in needed.items() if wanted and split not in splits]
    if missing:
        raise ValueError(f"The data has no {missing} split(s), found {sorted(splits)}; see --help for the sources.")


def check_publishing(training_args: VideoTrainingArguments) -> bool:
    """Whether the run publishes its model (--push_to_hub or --hub_dry_run); refuses, before any work, what could not
    be published. Trainer's own pushes (at every save, with its generic model card) are turned off: the script
    publishes the complete folder once, at the end."""
    publish = training_args.push_to_hub or training_args.hub_dry_run
    training_args.push_to_hub = False
    if publish and not training_args.do_train:
        raise ValueError("--push_to_hub publishes the model that the run trains: add --do_train.")
    if publish:
        check_hub_repo_id(training_args)
    return publish


def main(argv: Sequence[str] | None = None, callbacks: Sequence[TrainerCallback] = ()) -> dict[str, Any]:
    """Train, evaluate and test as the arguments ask; returns the metrics written to `all_results.json`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    model_args, data_args, training_args = parse_arguments(argv)
    setup_logging(training_args)
    # The rows hold more than the model's inputs (video, sample key, processor options): the collator builds them.
    training_args.remove_unused_columns = False
    if data_args.streaming:
        training_args.accelerator_config.dispatch_batches = False  # each process reads its own stream
    publish = check_publishing(training_args)
    set_seed(training_args.seed)

    splits = load_video_splits(data_args, seed=training_args.seed, cache_dir=model_args.cache_dir)
    check_splits(splits, training_args)
    label_names = find_class_names(splits, data_args)
    model = build_model(model_args, label_names)
    if model_args.freeze_backbone:
        model.xvit.requires_grad_(False)
    processor = build_video_processor(model_args, model.config)

    labels = LabelEncoder(label_names)
    rows = {}
    if training_args.do_train:
        rows["train"] = split_rows("train", splits["train"], data_args, labels, {"do_augment": True}, training_args)
    for split in ("validation", "test"):
        if split in splits:
            rows[split] = split_rows(split, splits[split], data_args, labels, views(data_args, multi_view=False))
            if data_args.num_eval_views > 1:
                rows[f"{split}_multiview"] = split_rows(
                    split, splits[split], data_args, labels, views(data_args, multi_view=True)
                )
    for split_videos in rows.values():
        check_processing(processor, split_videos.columns.processing)
    metric = evaluate.load(str(TOP_K_ACCURACY_METRIC), keep_in_memory=True, cache_dir=model_args.cache_dir)
    mixing = clip_mixing(len(label_names), data_args.mixup_alpha, data_args.cutmix_alpha)
    trainer = VideoClassificationTrainer(
        model=model,
        args=training_args,
        train_dataset=rows.get("train"),
        eval_dataset=rows.get("validation"),
        processing_class=processor,
        data_collator=VideoClassificationCollator(processor, seed=training_args.seed, mixing=mixing),
        compute_metrics=partial(top_k_metrics, metric=metric),
        compute_loss_func=partial(video_classification_loss, label_smoothing=training_args.label_smoothing_factor),
        callbacks=list(callbacks),
        max_bad_video_fraction=data_args.max_bad_video_fraction,
    )

    run_card = partial(training_card_inputs, model_args, data_args, training_args, model.config, argv)
    results = {}
    output_dir = Path(training_args.output_dir)
    if training_args.do_train:
        checkpoint = training_args.resume_from_checkpoint
        if checkpoint is None and output_dir.is_dir():
            checkpoint = get_last_checkpoint(output_dir)  # a killed run started again resumes where it stopped
            if checkpoint:
                logger.info("Resuming from the last checkpoint in the output folder: %s", checkpoint)
        metrics = trainer.train(resume_from_checkpoint=checkpoint).metrics
        # Saved before evaluation too, so that a failure there loses nothing; the card gets the results below.
        save_hub_folder(trainer, processor, training_args, lambda: run_card(trainer.state))
        results.update(_report(trainer, "train", metrics))
        trainer.save_state()
    if training_args.do_eval:
        metrics = trainer.evaluate()
        if "validation_multiview" in rows:
            metrics.update(trainer.evaluate(rows["validation_multiview"], metric_key_prefix="eval_multiview"))
            metrics.update(view_counts("eval_multiview", data_args))
        results.update(_report(trainer, "eval", metrics))
    if training_args.do_predict:
        results.update(_predict(trainer, rows, data_args, label_names, output_dir))
    if training_args.do_train and trainer.is_world_process_zero():
        curve = output_dir / "training_curve.png"
        write_training_curve(trainer.state.log_history, curve, title=output_dir.name, num_labels=len(label_names))
    measured = [
        split for split, done in (("validation", training_args.do_eval), ("test", training_args.do_predict)) if done
    ]
    if training_args.do_train and (measured or publish):  # the folder again, its card with this run's results
        save_hub_folder(trainer, processor, training_args, lambda: run_card(trainer.state, measured), publish)
    return results


def _predict(trainer, rows: dict, data_args: DataArguments, label_names: list[str], output_dir: Path) -> dict:
    """Test metrics (one view, and the multi-view protocol when asked) and the predictions file."""
    output = trainer.predict(rows["test"], metric_key_prefix="test")
    metrics, probabilities = output.metrics, False
    if "test_multiview" in rows:
        output = trainer.predict(rows["test_multiview"], metric_key_prefix="test_multiview")
        metrics.update(output.metrics)
        metrics.update(view_counts("test_multiview", data_args))
        probabilities = True
    if trainer.is_world_process_zero():
        if isinstance(rows["test"], VideoRows):
            write_predictions(output, rows["test"], label_names, output_dir / "predictions.jsonl", probabilities)
        else:
            logger.warning("Streamed test data: the per-video predictions file needs a prepared (non-streamed) split.")
    return _report(trainer, "test", metrics)


def _report(trainer, split: str, metrics: dict[str, Any]) -> dict[str, Any]:
    trainer.log_metrics(split, metrics)
    trainer.save_metrics(split, metrics)  # also merged into all_results.json
    return metrics


if __name__ == "__main__":
    main()
