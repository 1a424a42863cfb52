#!/usr/bin/env python
"""
Fine-tune, evaluate and test XViT on labelled videos with the Transformers `Trainer`, on one CPU or GPU or on many
GPUs and machines through Accelerate: `accelerate launch` and `torchrun` run this script unchanged. Several CPU
processes: `accelerate launch --multi_gpu --num_processes 2 ... --use_cpu` (accelerate's own --cpu starts one).

    python examples/run_video_classification.py --data_dir videos/ --model_name_or_path xvit-b16-16-k600 \\
        --ignore_mismatched_sizes --recipe examples/recipes/finetune.yaml --output_dir xvit-finetuned \\
        --do_train --do_eval --do_predict

Every `TrainingArguments` flag works (--bf16, --gradient_checkpointing, --torch_compile, --resume_from_checkpoint,
--report_to tensorboard, --push_to_hub, ...); --recipe FILE sets defaults for any flag from a YAML or JSON file, which
the command line overrides. The output folder receives the checkpoints, `all_results.json`, `predictions.jsonl`
(per-class scores of every test video), `training_curve.png` and the model folder itself, complete for the Hub
(remote code, `handler.py`, and a model card with the command, the recipe and the run's results), which loads with
`pipeline("video-classification", model=OUTPUT_DIR, trust_remote_code=True)`. `--push_to_hub` publishes exactly the
model folder's files at the end (`--hub_dry_run`: list them, send nothing). The output folder holds one run: the same
command resumes it, another is refused (--overwrite_output_dir starts afresh). The pieces live in
`modeling_xvit.training`; the docs' training page has the data formats, the recipes and the multi-GPU commands.
"""

import logging
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import datasets
import evaluate
import transformers
from transformers import TrainerCallback
from transformers.trainer_utils import set_seed

from modeling_xvit.errors import exit_status
from modeling_xvit.training import TOP_K_ACCURACY_METRIC
from modeling_xvit.training.arguments import parse_arguments
from modeling_xvit.training.augment import ClipAugmentation, DeviceAugmentationCollator
from modeling_xvit.training.card import training_card_inputs
from modeling_xvit.training.collator import VideoClassificationCollator, clip_mixing
from modeling_xvit.training.curve import write_training_curve
from modeling_xvit.training.data import LabelEncoder, check_splits, find_class_names, load_video_splits, split_rows
from modeling_xvit.training.evaluation import evaluate_views, predict, top_k_metrics, views
from modeling_xvit.training.model import build_model, build_video_processor, check_processing
from modeling_xvit.training.output import check_publishing, run_summary, save_hub_folder
from modeling_xvit.training.run_folder import claim_output_dir, describe_run, last_complete_checkpoint
from modeling_xvit.training.trainer import VideoClassificationTrainer, video_classification_loss

logger = logging.getLogger(__name__)


def setup_logging(training_args) -> None:
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    if training_args.should_log:
        transformers.utils.logging.set_verbosity_info()
    log_level = training_args.get_process_log_level()
    for name in (__name__, "modeling_xvit"):
        logging.getLogger(name).setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    datasets.utils.logging.disable_propagation()  # its own handler prints each line; the root's would repeat it
    transformers.utils.logging.set_verbosity(log_level)


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

    # Data, model and processor
    splits = load_video_splits(data_args, seed=training_args.seed, cache_dir=model_args.cache_dir)
    do_eval = training_args.do_eval or training_args.eval_strategy != "no"
    check_splits(splits, training_args.do_train, do_eval, training_args.do_predict)
    label_names = find_class_names(splits, data_args)
    model = build_model(model_args, label_names)
    if model_args.freeze_backbone:
        model.xvit.requires_grad_(False)
    processor = build_video_processor(model_args, model.config)

    labels, rows = LabelEncoder(label_names), {}
    if training_args.do_train:
        process = (training_args.process_index, training_args.world_size)
        rows["train"] = split_rows("train", splits["train"], data_args, labels, {"do_augment": True}, process)
    for split in ("validation", "test"):
        if split in splits:
            rows[split] = split_rows(split, splits[split], data_args, labels, views(data_args, multi_view=False))
            if data_args.num_eval_views > 1:
                multi_view = views(data_args, multi_view=True)
                rows[f"{split}_multiview"] = split_rows(split, splits[split], data_args, labels, multi_view)
    for split_videos in rows.values():
        check_processing(processor, split_videos.columns.processing)
    # The output folder: a new one, or this same run's, resumed (see modeling_xvit.training.run_folder)
    run = describe_run(model_args, data_args, training_args, splits, label_names)
    claim_output_dir(training_args.output_dir, run, training_args)

    # Trainer
    metric = evaluate.load(str(TOP_K_ACCURACY_METRIC), keep_in_memory=True, cache_dir=model_args.cache_dir)
    mixing = clip_mixing(len(label_names), data_args.mixup_alpha, data_args.cutmix_alpha)
    if data_args.augment_on_device:  # issue 21: the workers decode and crop, the rest runs batched on the device
        # On an accelerator, prepared videos' colour conversion and resize move there too; the CPU keeps them in the
        # workers, the cores it has besides the model's.
        convert_on_device = training_args.device.type != "cpu"
        collator = DeviceAugmentationCollator(
            processor, seed=training_args.seed, mix=mixing is not None, convert_on_device=convert_on_device
        )
        clip_augmentation = ClipAugmentation(processor, mixing)
    else:
        collator = VideoClassificationCollator(processor, seed=training_args.seed, mixing=mixing)
        clip_augmentation = None
    trainer = VideoClassificationTrainer(
        model=model,
        args=training_args,
        train_dataset=rows.get("train"),
        eval_dataset=rows.get("validation"),
        processing_class=processor,
        data_collator=collator,
        compute_metrics=partial(top_k_metrics, metric=metric),
        compute_loss_func=partial(video_classification_loss, label_smoothing=training_args.label_smoothing_factor),
        callbacks=list(callbacks),
        max_bad_video_fraction=data_args.max_bad_video_fraction,
        clip_augmentation=clip_augmentation,
    )

    # Training
    output_dir, results, measured = Path(training_args.output_dir), {}, []
    if training_args.do_train:
        checkpoint = training_args.resume_from_checkpoint
        if checkpoint is None:
            checkpoint = last_complete_checkpoint(output_dir)  # the same run started again resumes where it stopped
            if checkpoint:
                logger.info("Resuming from the last complete checkpoint in the output folder: %s", checkpoint)
        train_result = trainer.train(resume_from_checkpoint=checkpoint)
        trainer.save_model()  # a failure in evaluation loses nothing; the Hub folder replaces it at the end
        results.update(_report(trainer, "train", train_result.metrics))
        trainer.save_state()

    # Evaluation and testing
    if training_args.do_eval:
        results.update(_report(trainer, "eval", evaluate_views(trainer, rows, data_args)))
        measured.append("validation")
    if training_args.do_predict:
        metrics = predict(trainer, rows, data_args, label_names, output_dir / "predictions.jsonl")
        results.update(_report(trainer, "test", metrics))
        measured.append("test")

    # The model folder, its card with this run's results
    if training_args.do_train:
        if trainer.is_world_process_zero():
            write_training_curve(
                trainer.state.log_history, output_dir / "training_curve.png", output_dir.name, len(label_names)
            )
        card = partial(training_card_inputs, model_args, data_args, training_args, model.config, argv)
        save_hub_folder(trainer, processor, lambda: card(trainer.state, measured), publish)
    if trainer.is_world_process_zero():
        print(run_summary(training_args.output_dir, results, model_saved=training_args.do_train))
    return results


def _report(trainer, split: str, metrics: dict[str, Any]) -> dict[str, Any]:
    trainer.log_metrics(split, metrics)
    trainer.save_metrics(split, metrics)  # also merged into all_results.json
    return metrics


if __name__ == "__main__":
    sys.exit(exit_status(main))  # a refusal of the package (a failed upload, say) is one line, not a traceback
