"""The model a run trains and the video processor that makes its clips, from the script's `ModelArguments`."""

import logging
from typing import Any

import numpy as np
from transformers import AutoConfig, AutoModelForVideoClassification, AutoVideoProcessor

from modeling_xvit import XViTConfig, XViTForVideoClassification, XViTVideoProcessor
from modeling_xvit.hub.folder import default_video_processor
from modeling_xvit.training.arguments import ModelArguments, parse_overrides

logger = logging.getLogger(__name__)


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
    """--video_processor_name, else the model's saved processor, else `video_processor_for(config)`; then
    --video_processor_overrides."""
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


def check_processing(processor: XViTVideoProcessor, processing: dict[str, Any]) -> None:
    """Fail before training when the processor refuses a split's options (say 4 temporal views of segment sampling),
    rather than later, when every video would be counted as unreadable."""
    blank_video = np.zeros((processor.num_frames, 8, 8, 3), dtype=np.uint8)
    try:
        processor(blank_video, return_tensors="pt", **processing)
    except ValueError as error:
        raise ValueError(f"The video processor refuses the options {processing}: {error}") from error
