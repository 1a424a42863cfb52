"""Inference Endpoints handler of an XViT model folder (every folder the package writes carries a copy).

The endpoint toolkit imports this file, builds `EndpointHandler(path)` once with the folder's path, then calls the
handler with each request's JSON body:

    {"inputs": VIDEO, "parameters": {"top_k": 5, "num_temporal_views": 2, "num_spatial_crops": 3}}

VIDEO is the video's bytes, a base64 string of them (a `data:` URI too) or an http(s) URL; a string is never opened
as a local path. The parameters are optional: `top_k` (default 5) and the multi-view options of the video processor
(default: the folder's `video_preprocessor_config.json`), whose views' probabilities are averaged. The answer is
`[{"label": ..., "score": ...}, ...]`, best first. A bad request raises `ValueError` with a message that says what is
wrong, which the toolkit returns as `{"error": message}` with status 400.

It imports only the standard library, torch and transformers, so an endpoint needs nothing else.
"""

import base64
import binascii
from typing import Any

import torch
from transformers import AutoModelForVideoClassification, AutoVideoProcessor

DEFAULT_TOP_K = 5
PARAMETERS = ("top_k", "num_temporal_views", "num_spatial_crops")


def read_video_input(inputs: Any) -> bytes | str:
    """The video of a request: its bytes, or an http(s) URL for the processor to download."""
    if isinstance(inputs, (bytes, bytearray)):
        if not inputs:
            raise ValueError("`inputs` is empty: send the video's bytes, a base64 string of them or an http(s) URL.")
        return bytes(inputs)
    if not isinstance(inputs, str):
        raise ValueError(
            "`inputs` must be the video's bytes, a base64 string of them or an http(s) URL, got"
            f" {type(inputs).__name__}."
        )
    if inputs.startswith(("http://", "https://")):
        return inputs
    encoded = inputs.split("base64,", 1)[1] if inputs.startswith("data:") else inputs
    try:
        video = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        video = b""
    if not video:
        raise ValueError(
            "`inputs` is a string that is neither an http(s) URL nor a base64-encoded video (local paths are not"
            f" accepted); it starts with {inputs[:40]!r}."
        )
    return video


def read_parameters(parameters: Any) -> dict[str, int]:
    """The request's parameters, each a positive integer; unknown names are refused rather than ignored."""
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise ValueError(f"`parameters` must be a JSON object, got {type(parameters).__name__}.")
    unknown = sorted(set(parameters) - set(PARAMETERS))
    if unknown:
        raise ValueError(f"Unknown parameters {unknown}; the handler takes {list(PARAMETERS)}.")
    for name, value in parameters.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"Parameter `{name}` must be a positive integer, got {value!r}.")
    return dict(parameters)


class EndpointHandler:
    """Video classification with the folder's model and video processor (remote code, `trust_remote_code=True`)."""

    def __init__(self, path: str = ""):
        self.processor = AutoVideoProcessor.from_pretrained(path, trust_remote_code=True)
        self.model = AutoModelForVideoClassification.from_pretrained(path, trust_remote_code=True).eval()
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model.to(self.device)

    def __call__(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        if not isinstance(data, dict) or "inputs" not in data:
            raise ValueError('The request must be a JSON object with an "inputs" field holding the video.')
        video = read_video_input(data["inputs"])
        views = read_parameters(data.get("parameters"))
        top_k = views.pop("top_k", DEFAULT_TOP_K)
        try:
            pixel_values = self.processor(video, return_tensors="pt", **views)["pixel_values"]
        except Exception as error:  # decoding and processing errors name the video and the reason
            raise ValueError(f"Could not read the video: {error}") from None
        with torch.inference_mode():
            logits = self.model(pixel_values=pixel_values.to(self.device)).logits
        num_views = views.get("num_temporal_views", self.processor.num_temporal_views) * views.get(
            "num_spatial_crops", self.processor.num_spatial_crops
        )
        probabilities = self.processor.average_view_scores(logits.float().cpu(), num_views=num_views)[0]
        scores, indices = probabilities.topk(min(top_k, probabilities.numel()))
        labels = self.model.config.id2label
        return [
            {"label": labels[index], "score": score}
            for score, index in zip(scores.tolist(), indices.tolist(), strict=True)
        ]
