"""The video-classification pipeline of XViT folders: the video's views scored, their scores averaged.

Every Hub folder the package writes carries this file and names the class in its config's `custom_pipelines`, so
that `pipeline("video-classification", model=folder, trust_remote_code=True)` builds this pipeline. With the package
installed, `pipeline(..., pipeline_class=XViTVideoClassificationPipeline)` builds it for any XViT folder.
"""

from typing import Any

import torch
from transformers import VideoClassificationPipeline
from transformers.modeling_outputs import ImageClassifierOutput

# The `custom_pipelines` entry of a folder's config.json: the task it serves, the class (module.Class, looked up in
# the folder's code) and the model class it loads.
CUSTOM_PIPELINES = {
    "video-classification": {
        "impl": "pipeline_xvit.XViTVideoClassificationPipeline",
        "pt": ["AutoModelForVideoClassification"],
        "type": "video",
    }
}


class XViTVideoClassificationPipeline(VideoClassificationPipeline):
    """
    Transformers' video-classification pipeline, scoring a video as XViT's multi-view testing does: the video
    processor cuts `num_temporal_views` clips x `num_spatial_crops` crops from the video (its saved config, or the
    call's arguments), the model scores every view, and the views' scores are averaged per video (softmax
    probabilities by default), as the Endpoints handler and the training script's evaluation do. Transformers' own
    pipeline would score the first view only.

    Beyond the parent's arguments (`top_k`, `function_to_apply`, `num_frames`), a call takes the processor's
    `num_temporal_views` and `num_spatial_crops`. It batches (`batch_size=2`) with the same scores as one video at a
    time. Scores that are not finite are refused (the model raises a `ValueError` in inference mode).

    Example:

    ```python
    >>> from transformers import pipeline

    >>> classifier = pipeline("video-classification", model="path/to/xvit-folder", trust_remote_code=True)
    >>> classifier(["a.mp4", "b.mp4"], num_spatial_crops=3, top_k=2, batch_size=2)  # doctest: +SKIP
    ```
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.video_processor is None:
            raise ValueError(
                "The XViT video-classification pipeline needs the folder's video processor"
                " (video_preprocessor_config.json), which cuts the views it averages; none was found."
            )

    def _sanitize_parameters(
        self,
        num_temporal_views: int | None = None,
        num_spatial_crops: int | None = None,
        frame_sampling_rate: int | None = None,
        **kwargs,
    ) -> tuple[dict, dict, dict]:
        if frame_sampling_rate is not None:
            raise ValueError(
                "`frame_sampling_rate` is not an option of the XViT pipeline: the video processor samples frames as"
                " its config says (`sampling`, `sampling_rate`); the call takes `num_frames`, `num_temporal_views`"
                " and `num_spatial_crops`."
            )
        # The processor's own config decides the frames and views unless the call asks otherwise.
        preprocess_params, forward_params, postprocess_params = super()._sanitize_parameters(**kwargs)
        for name, value in (("num_temporal_views", num_temporal_views), ("num_spatial_crops", num_spatial_crops)):
            if value is not None:
                preprocess_params[name] = value
        return preprocess_params, forward_params, postprocess_params

    def get_iterator(self, *args, **kwargs):
        # The parent batches only with a tokenizer or feature extractor, whose padding attributes it reads; views of
        # one processor need no padding, and the video processor has no such attributes, so it stands in while the
        # batches' collate function is built.
        if self.tokenizer is not None or self.feature_extractor is not None or self.image_processor is not None:
            return super().get_iterator(*args, **kwargs)
        self.feature_extractor = self.video_processor
        try:
            return super().get_iterator(*args, **kwargs)
        finally:
            self.feature_extractor = None

    def preprocess(self, video: Any, **processing: Any) -> dict[str, torch.Tensor]:
        pixel_values = self.video_processor(video, return_tensors="pt", **processing)["pixel_values"]
        # The views of one video, consecutive; their count travels with them so that a batch of videos splits back.
        return {"pixel_values": pixel_values.to(self.dtype), "num_views": torch.tensor([pixel_values.shape[0]])}

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        num_views = int(model_inputs["num_views"][0])
        logits = self.model(pixel_values=model_inputs["pixel_values"]).logits
        return {"logits": logits.unflatten(0, (-1, num_views))}  # (videos, views, labels)

    def postprocess(
        self, model_outputs: dict[str, torch.Tensor], top_k: int = 5, function_to_apply: str | None = None
    ) -> list[dict[str, Any]]:
        logits = model_outputs["logits"][0].float()  # one video: (views, labels)
        if function_to_apply is None:  # the parent's default: the model's problem type decides
            problem_type = self.model.config.problem_type
            function_to_apply = {"regression": "none", "multi_label_classification": "sigmoid"}.get(
                problem_type, "softmax"
            )
        if function_to_apply == "softmax":
            logits = logits.softmax(-1)
        elif function_to_apply == "sigmoid":
            logits = logits.sigmoid()
        # The parent ranks the first row of `logits`: here the views' average, scored already.
        scored = ImageClassifierOutput(logits=logits.mean(0, keepdim=True))
        return super().postprocess(scored, top_k=top_k, function_to_apply="none")


__all__ = ["XViTVideoClassificationPipeline"]
