"""Evaluation and testing of a run: one centre view and the paper's multi-view protocol, top-1 and top-5 accuracy,
and the per-video predictions file."""

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import EvalPrediction
from transformers.trainer_utils import PredictionOutput

from modeling_xvit.training.data import DataArguments, VideoRows
from modeling_xvit.video_decoding import video_name

logger = logging.getLogger(__name__)


def views(data_args: DataArguments, multi_view: bool) -> dict[str, Any]:
    """Processor options of evaluation clips: one centre view, or the multi-view protocol."""
    if not multi_view:
        return {"do_augment": False, "num_temporal_views": 1, "num_spatial_crops": 1}
    return {
        "do_augment": False,
        "num_temporal_views": data_args.eval_num_temporal_views,
        "num_spatial_crops": data_args.eval_num_spatial_crops,
    }


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


def evaluate_views(trainer, rows: dict[str, Any], data_args: DataArguments) -> dict[str, Any]:
    """Validation metrics: one view, and the multi-view protocol when asked (`rows["validation_multiview"]`)."""
    metrics = trainer.evaluate(rows["validation"])
    if "validation_multiview" in rows:
        metrics.update(trainer.evaluate(rows["validation_multiview"], metric_key_prefix="eval_multiview"))
        metrics.update(view_counts("eval_multiview", data_args))
    return metrics


def predict(
    trainer, rows: dict[str, Any], data_args: DataArguments, label_names: list[str], path: Path
) -> dict[str, Any]:
    """Test metrics (one view, and the multi-view protocol when asked) and the predictions file at `path`, written
    from the multi-view scores when there are some."""
    output = trainer.predict(rows["test"], metric_key_prefix="test")
    metrics, probabilities = output.metrics, False
    if "test_multiview" in rows:
        output = trainer.predict(rows["test_multiview"], metric_key_prefix="test_multiview")
        metrics.update(output.metrics)
        metrics.update(view_counts("test_multiview", data_args))
        probabilities = True
    if trainer.is_world_process_zero():
        if isinstance(rows["test"], VideoRows):
            write_predictions(output, rows["test"], label_names, path, probabilities)
        else:
            logger.warning("Streamed test data: the per-video predictions file needs a prepared (non-streamed) split.")
    return metrics


def write_predictions(
    output: PredictionOutput, rows: VideoRows, label_names: list[str], path: Path, probabilities: bool
) -> None:
    """One JSON line per test video: its path (or size), label, predicted class and the score of every class."""
    scores = torch.as_tensor(output.predictions, dtype=torch.float64)
    if not probabilities:  # logits of one view
        scores = scores.softmax(-1)
    with open(path, "w", encoding="utf-8") as file:
        for video_scores, (label, index) in zip(scores, np.asarray(output.label_ids).tolist(), strict=True):
            if label < 0:
                continue
            source = rows.video(index)
            entry = {
                "video": source if isinstance(source, str) else video_name(source),
                "label": label_names[label],
                "predicted_label": label_names[int(video_scores.argmax())],
                "scores": {
                    name: round(float(score), 6) for name, score in zip(label_names, video_scores, strict=True)
                },
            }
            file.write(json.dumps(entry) + "\n")
