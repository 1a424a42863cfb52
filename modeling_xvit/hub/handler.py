"""Inference Endpoints handler of an XViT model folder (every folder the package writes carries a copy).

The endpoint toolkit imports this file, builds `EndpointHandler(path)` once with the folder's path, then calls the
handler with each request's JSON body:

    {"inputs": VIDEO, "parameters": {"top_k": 5, "num_temporal_views": 2, "num_spatial_crops": 3}}

VIDEO is the video's bytes, a base64 string of them (a `data:...;base64,` URI too) or an http(s) URL; a string is
never opened as a local path. The parameters are optional: `top_k` (default 5) and the multi-view options of the video
processor (default: the folder's `video_preprocessor_config.json`), whose views' probabilities are averaged. The answer
is `[{"label": ..., "score": ...}, ...]`, best first. A bad request raises `ValueError` with a one-line message that
says what is wrong, which the toolkit returns as `{"error": message}` with status 400.

The deployer, not the request, bounds the work of one request: at most `max_clips` clips (temporal views x spatial
crops, default 30, the original's densest test protocol of 10 x 3), run through the model `batch_size` clips at a time
(default 8). URLs are downloaded by the video processor, which refuses hosts that are not public (loopback, private,
link-local, multicast addresses, at every redirect) unless `allow_private_urls` (default off: a request must not reach
the endpoint's own machine or network; turn it on only for local use and tests). Set them with the endpoint's
environment variables XVIT_HANDLER_MAX_CLIPS, XVIT_HANDLER_BATCH_SIZE and XVIT_HANDLER_ALLOW_PRIVATE_URLS (1 or 0),
or as `EndpointHandler(path, max_clips=..., batch_size=..., allow_private_urls=...)`.

It imports only the standard library, torch and transformers, so an endpoint needs nothing else.
"""

import base64
import binascii
import os
from typing import Any

import torch
from transformers import AutoModelForVideoClassification, AutoVideoProcessor

DEFAULT_TOP_K = 5
PARAMETERS = ("top_k", "num_temporal_views", "num_spatial_crops")
# Deployer settings: (environment variable, default).
MAX_CLIPS = ("XVIT_HANDLER_MAX_CLIPS", 30)
BATCH_SIZE = ("XVIT_HANDLER_BATCH_SIZE", 8)
ALLOW_PRIVATE_URLS = "XVIT_HANDLER_ALLOW_PRIVATE_URLS"


def deployer_setting(value: int | None, setting: tuple[str, int]) -> int:
    """`value`, else the setting's environment variable, else its default; a positive integer."""
    variable, default = setting
    if value is None:
        text = os.environ.get(variable, str(default))
        value = int(text) if text.strip().isdigit() else text
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{variable} (or the handler's argument) must be a positive integer, got {value!r}.")
    return value


def deployer_flag(value: bool | None, variable: str) -> bool:
    """`value`, else the environment variable `variable` (1/true/yes or 0/false/no), else False."""
    if value is not None:
        return bool(value)
    text = os.environ.get(variable, "0").strip().lower()
    if text not in ("1", "true", "yes", "0", "false", "no", ""):
        raise ValueError(f"{variable} must be 1 or 0, got {text!r}.")
    return text in ("1", "true", "yes")


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
    encoded = inputs
    if inputs.startswith("data:"):
        header, comma, encoded = inputs.partition(",")
        if not comma or not header.endswith(";base64"):
            raise ValueError(
                f"`inputs` is a data: URI that is not base64-encoded (data:video/mp4;base64,...); it starts with"
                f" {inputs[:40]!r}."
            )
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

    def __init__(
        self,
        path: str = "",
        max_clips: int | None = None,
        batch_size: int | None = None,
        allow_private_urls: bool | None = None,
    ):
        self.max_clips = deployer_setting(max_clips, MAX_CLIPS)
        self.batch_size = deployer_setting(batch_size, BATCH_SIZE)
        self.allow_private_urls = deployer_flag(allow_private_urls, ALLOW_PRIVATE_URLS)
        self.processor = AutoVideoProcessor.from_pretrained(path, trust_remote_code=True)
        self.model = AutoModelForVideoClassification.from_pretrained(path, trust_remote_code=True).eval()
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model.to(self.device)

    def _num_clips(self, views: dict[str, int]) -> int:
        """The clips a request asks for, refused above `max_clips` before any decoding."""
        temporal = views.get("num_temporal_views", self.processor.num_temporal_views)
        spatial = views.get("num_spatial_crops", self.processor.num_spatial_crops)
        if temporal * spatial > self.max_clips:
            raise ValueError(
                f"The request asks for {temporal * spatial} clips ({temporal} temporal views x {spatial} spatial"
                f" crops); this endpoint takes at most {self.max_clips} per request ({MAX_CLIPS[0]})."
            )
        return temporal * spatial

    @torch.inference_mode()
    def _logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The model's logits, `batch_size` clips at a time, so that memory does not grow with the request."""
        chunks = pixel_values.split(self.batch_size)
        return torch.cat([self.model(pixel_values=chunk.to(self.device)).logits.float().cpu() for chunk in chunks])

    def __call__(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        if not isinstance(data, dict) or "inputs" not in data:
            raise ValueError('The request must be a JSON object with an "inputs" field holding the video.')
        video = read_video_input(data["inputs"])
        views = read_parameters(data.get("parameters"))
        top_k = views.pop("top_k", DEFAULT_TOP_K)
        num_clips = self._num_clips(views)
        try:
            processed = self.processor(video, return_tensors="pt", allow_private_urls=self.allow_private_urls, **views)
            pixel_values = processed["pixel_values"]
        except Exception as error:  # decoding and processing errors name the video and the reason, on one line
            raise ValueError(f"Could not read the video: {' '.join(str(error).split())}") from None
        logits = self._logits(pixel_values)
        if not torch.isfinite(logits).all():
            raise ValueError("The model gives NaN or infinite scores for this video; no answer can be given.")
        probabilities = self.processor.average_view_scores(logits, num_views=num_clips)[0]
        scores, indices = probabilities.topk(min(top_k, probabilities.numel()))
        labels = self.model.config.id2label
        return [
            {"label": labels[index], "score": score}
            for score, index in zip(scores.tolist(), indices.tolist(), strict=True)
        ]
