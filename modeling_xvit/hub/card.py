"""The model card (README.md) of every folder the package writes.

`render_model_card(config, ModelCardInputs(...))` returns the card: Hub metadata (library, pipeline tag, license,
tags, data sets, base model, widget examples and a `model-index` with the results), built and read back with
`huggingface_hub`'s ModelCard classes, then a body saying what the model is, how it was made, what it is for, how well
it does, how to use it (pipeline, AutoModel, multi-view evaluation, Inference Endpoints) and the citation.

Results come from the authors' publication for converted checkpoints (`reported_results`) or from a training run's
`all_results.json` (`results_from_all_results`, keys in `all_results_keys`).

The card describes the model it carries: the data it was trained on (a Hub data set id goes into the metadata, local
data only into the text), widget examples only when the model's classes include theirs, limitations that fit the
data, and metadata checked against the Hub's formats (license identifiers, repository ids) before anything is written.
"""

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from modeling_xvit import XViTConfig

PAPER_URL = "https://arxiv.org/abs/2106.05968"
ORIGINAL_CODE_URL = "https://github.com/1adrianb/video-transformers"
CITATION = """@inproceedings{bulat2021space,
  title     = {Space-time Mixing Attention for Video Transformer},
  author    = {Bulat, Adrian and Perez-Rua, Juan-Manuel and Sudhakaran, Swathikiran and Martinez, Brais and
               Tzimiropoulos, Georgios},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2021}
}"""

# Short data-set names used across the package (label sets, converters) -> (Hub data-set id, display name).
DATASETS = {
    "kinetics400": ("kinetics-400", "Kinetics-400"),
    "kinetics600": ("kinetics-600", "Kinetics-600"),
    "ssv2": ("something-something-v2", "Something-Something-v2"),
}
# What each known data set's videos are, for the limitations paragraph.
DATASET_CONTENT = {
    "kinetics400": "web videos of a fixed list of human actions",
    "kinetics600": "web videos of a fixed list of human actions",
    "ssv2": "crowd-sourced clips of people doing scripted actions with everyday objects",
}
# Kinetics clips that the Hub's documentation uses for video classification: the widget's examples for a model whose
# classes include theirs (a Kinetics model), none for any other.
KINETICS_WIDGET = (
    {
        "src": "https://huggingface.co/datasets/nateraw/kinetics-mini/resolve/main/val/archery/-Qz25rXdMjE_000014_000024.mp4",
        "example_title": "Archery",
    },
    {
        "src": "https://huggingface.co/datasets/nateraw/kinetics-mini/resolve/main/val/bowling/-WH-lxmGJVY_000005_000015.mp4",
        "example_title": "Bowling",
    },
)
# The license identifiers the Hub recognises in a card's metadata (anything else: "other").
HUB_LICENSES = frozenset(
    """apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0
    bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc
    cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 cc-by-nc-4.0
    cc-by-nd-4.0 cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0
    cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 eupl-1.2 agpl-3.0 gfdl
    gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc h-research intel-research lppl-1.3c ms-pl apple-ascl apple-amlr
    mpl-2.0 odc-by odbl openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl lgpl-lr
    deepfloyd-if-license fair-noncommercial-research-license llama2 llama3 llama3.1 llama3.2 llama3.3 llama4 gemma
    unknown other""".split()
)
# The model-index's data-set type for local data: the `datasets` builder for a folder of videos.
LOCAL_DATASET_TYPE = "videofolder"


@dataclass(frozen=True)
class CardResult:
    """Top-1 (and top-5) accuracy in percent under one test protocol."""

    top1: float
    top5: float | None
    views: str  # the test views in words, e.g. "3 spatial x 2 temporal"
    num_temporal_views: int | None = None
    num_spatial_crops: int | None = None
    reported_by_authors: bool = False  # True: the authors' published figure, not measured on these weights
    split: str = "validation"


@dataclass
class ModelCardInputs:
    """What the card says beyond the model's config.

    Args:
        origin: how the weights were made, one Markdown paragraph ("Converted from ...", "Fine-tuned from ...").
        model_id: the Hub id (or folder) used in the usage examples.
        command: the exact command that made the folder, shown as a shell block.
        dataset: the training data when it is a known or Hub data set: a short name of `DATASETS` (kinetics400,
            kinetics600, ssv2) or a Hub data-set id; it goes into the card's `datasets` metadata.
        training_data: what the training data is when it is not a Hub data set (local videos), in words; shown in
            the card's text, never as a data-set id.
        base_model: the Hub id of the model these weights start from (a fine-tuned or converted model's parent).
        results: accuracy figures for the results table and the `model-index`.
        recipe: training hyper-parameters, shown as a table.
        intended_use: replaces the default paragraph on what the model is for.
        license, tags, widget: Hub metadata; `tags` are added to video-classification, xvit and custom_code. The
            widget defaults to the Kinetics examples when the model's classes include theirs, else none.
    """

    origin: str
    model_id: str = "."
    command: str | None = None
    dataset: str | None = None
    training_data: str | None = None
    base_model: str | None = None
    results: Sequence[CardResult] = ()
    recipe: Mapping[str, Any] | None = None
    intended_use: str | None = None
    license: str = "apache-2.0"
    tags: Sequence[str] = ()
    widget: Sequence[Mapping[str, str]] | None = None


# --- Results ------------------------------------------------------------------------------------------------------

# Top-1 / top-5 accuracy the authors report for the released checkpoints (paper and official repository).
PUBLISHED_RESULTS = {
    "kinetics600": (
        CardResult(84.51, 96.26, "3 spatial x 1 temporal", 1, 3, reported_by_authors=True),
        CardResult(84.71, 96.39, "3 spatial x 2 temporal", 2, 3, reported_by_authors=True),
    ),
    "ssv2": (CardResult(67.19, 91.00, "32 x 2 (as listed by the authors)", reported_by_authors=True),),
}


def reported_results(dataset: str, config: XViTConfig) -> list[CardResult]:
    """The published accuracy of a released checkpoint (16-frame ViT-B/16 only); empty for anything else."""
    released = config.num_frames == 16 and config.hidden_size == 768 and config.num_hidden_layers == 12
    return list(PUBLISHED_RESULTS.get(dataset, ())) if released else []


def all_results_keys(prefix: str = "eval") -> dict[str, tuple[str, str]]:
    """The keys a training run writes to `all_results.json` (Trainer's `save_metrics`) for one split, accuracies as
    fractions in [0, 1]: single-view evaluation (one centre clip) under the split's prefix (Trainer's `eval_` for the
    validation split, `test_` for `predict(metric_key_prefix="test")`), multi-view evaluation under
    `{prefix}_multiview_` with the views it used."""
    return {
        "single_view": (f"{prefix}_top1_accuracy", f"{prefix}_top5_accuracy"),
        "multi_view": (f"{prefix}_multiview_top1_accuracy", f"{prefix}_multiview_top5_accuracy"),
        "multi_view_counts": (f"{prefix}_multiview_num_temporal_views", f"{prefix}_multiview_num_spatial_crops"),
    }


ALL_RESULTS_KEYS = all_results_keys("eval")
# The metric prefix of each split a training run measures.
SPLIT_PREFIXES = {"validation": "eval", "test": "test"}


def _percent(metrics: Mapping[str, Any], key: str, source: str) -> float | None:
    value = metrics.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{source}: {key} should be an accuracy between 0 and 1, got {value!r}.")
    return round(100 * value, 2)


def _viewcount_of(metrics: Mapping[str, Any], key: str, source: str) -> int:
    value = metrics.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{source}: {key} should be a positive integer (the views of the evaluation), got {value!r}.")
    return value


def results_from_all_results(
    all_results: str | os.PathLike | Mapping[str, Any], split: str = "validation", *, prefix: str = "eval"
) -> list[CardResult]:
    """The accuracy figures of a training run, from its `all_results.json` (a path or the loaded mapping).

    Reads the keys `all_results_keys(prefix)` (the validation split's `ALL_RESULTS_KEYS` by default, `prefix="test"`
    for the test split's: see `SPLIT_PREFIXES`) and labels the figures with `split`; a protocol whose top-1 key is
    absent is left out.
    """
    source = "all_results" if isinstance(all_results, Mapping) else str(all_results)
    metrics = all_results if isinstance(all_results, Mapping) else json.loads(Path(all_results).read_text("utf-8"))
    keys = all_results_keys(prefix)
    results = []
    top1, top5 = (_percent(metrics, key, source) for key in keys["single_view"])
    if top1 is not None:
        results.append(CardResult(top1, top5, "1 clip, centre crop", 1, 1, split=split))
    top1, top5 = (_percent(metrics, key, source) for key in keys["multi_view"])
    if top1 is not None:
        temporal, spatial = (_viewcount_of(metrics, key, source) for key in keys["multi_view_counts"])
        results.append(
            CardResult(top1, top5, f"{spatial} spatial x {temporal} temporal", temporal, spatial, split=split)
        )
    return results


def _eval_results(results: Sequence[CardResult], dataset_id: str, dataset_name: str) -> list[EvalResult]:
    evals = []
    for result in results:
        source = (
            {"source_name": "Bulat et al., NeurIPS 2021 (reported by the authors)", "source_url": ORIGINAL_CODE_URL}
            if result.reported_by_authors
            else {}
        )
        views = {
            name: value
            for name, value in (
                ("num_temporal_views", result.num_temporal_views),
                ("num_spatial_crops", result.num_spatial_crops),
            )
            if value is not None
        }
        for top_k, value in ((1, result.top1), (5, result.top5)):
            if value is None:
                continue
            evals.append(
                EvalResult(
                    task_type="video-classification",
                    task_name="Video Classification",
                    dataset_type=dataset_id,
                    dataset_name=dataset_name,
                    dataset_split=result.split,
                    metric_type="accuracy",
                    metric_name=f"Top-{top_k} accuracy ({result.views})",
                    metric_value=value,
                    metric_args={"top_k": top_k, **views},
                    verified=False,
                    **source,
                )
            )
    return evals


# --- The card -----------------------------------------------------------------------------------------------------


def count_of(number: float, noun: str, plural: str | None = None) -> str:
    """`1 step`, `12 steps`, `2.5 epochs`."""
    written = f"{number:g}" if isinstance(number, float) else str(number)
    return f"{written} {noun}" if number == 1 else f"{written} {plural or noun + 's'}"


def _dataset_names(dataset: str | None) -> tuple[str, str] | None:
    """(Hub id, display name) of a known or Hub data set."""
    if dataset is None:
        return None
    return DATASETS.get(dataset, (dataset, dataset))


def _data_words(inputs: ModelCardInputs) -> str | None:
    """The training data in the card's words: a data set's display name, else the description of local data."""
    names = _dataset_names(inputs.dataset)
    return names[1] if names else inputs.training_data


def _check_hub_formats(inputs: ModelCardInputs) -> None:
    """Refuse metadata the Hub would not recognise: a license that is not a Hub identifier, ids that are no ids."""
    if inputs.license not in HUB_LICENSES:
        raise ValueError(
            f"license {inputs.license!r} is not a license identifier of the Hub (for example apache-2.0, mit,"
            " cc-by-4.0; 'other' for any other license)."
        )
    for what, value in (("base_model", inputs.base_model), ("dataset", inputs.dataset)):
        if value is None or value in DATASETS:
            continue
        try:
            validate_repo_id(value)
        except HFValidationError as error:
            raise ValueError(f"{what} {value!r} is not a Hub repository id ({error})") from None
        if Path(value).exists():
            raise ValueError(
                f"{what} {value!r} names a local path, not a Hub repository; describe local training data with"
                " `training_data`."
            )


def _widget(config: XViTConfig, inputs: ModelCardInputs) -> list[dict[str, str]]:
    if inputs.widget is not None:
        return [dict(example) for example in inputs.widget]
    classes = {label.lower() for label in config.id2label.values()}
    return [dict(example) for example in KINETICS_WIDGET if example["example_title"].lower() in classes]


def _title(config: XViTConfig, dataset_name: str | None) -> str:
    return f"XViT, {config.num_frames} frames" + (f", {dataset_name}" if dataset_name else "")


def _metadata(config: XViTConfig, inputs: ModelCardInputs) -> ModelCardData:
    names = _dataset_names(inputs.dataset)
    if inputs.results and not (names or inputs.training_data):
        raise ValueError(
            "Results need the data set they were measured on: set ModelCardInputs.dataset or training_data."
        )
    evals = _eval_results(inputs.results, *(names or (LOCAL_DATASET_TYPE, inputs.training_data)))
    return ModelCardData(
        library_name="transformers",
        pipeline_tag="video-classification",
        license=inputs.license,
        tags=list(dict.fromkeys(["video-classification", "xvit", "custom_code", *inputs.tags])),
        datasets=[names[0]] if names else None,
        base_model=inputs.base_model,
        # The model-index's name: written with results only.
        model_name=_title(config, names[1] if names else None) if evals else None,
        eval_results=evals or None,
        widget=_widget(config, inputs) or None,
    )


def _format_percent(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _results_section(inputs: ModelCardInputs, data_words: str | None) -> str:
    if not inputs.results:
        return "No accuracy has been measured for these weights; evaluate them on your data."
    rows = "\n".join(
        f"| {result.views} | {result.split} | {result.top1:.2f} | {_format_percent(result.top5)} |"
        for result in inputs.results
    )
    if all(result.reported_by_authors for result in inputs.results):
        where = (
            f"Accuracy on {data_words} as reported by the authors for the released checkpoint (not re-measured"
            " after conversion; the converter is tested to reproduce the original's logits to 1e-4):"
        )
    else:
        where = f"Accuracy on {data_words}, measured by the training run that produced these weights:"
    return f"{where}\n\n| test views | split | top-1 | top-5 |\n|---|---|---|---|\n{rows}"


def _made_section(inputs: ModelCardInputs) -> str:
    parts = [inputs.origin]
    data_words = _data_words(inputs)
    parts.append(
        f"**Training data:** {data_words}." if data_words else "**Training data:** none given for these weights."
    )
    if inputs.command:
        parts.append(f"```bash\n{inputs.command}\n```")
    if inputs.recipe:
        rows = "\n".join(f"| {name} | {value} |" for name, value in inputs.recipe.items())
        parts.append(f"| setting | value |\n|---|---|\n{rows}")
    return "\n\n".join(parts)


def _architecture(config: XViTConfig) -> str:
    mixing = (
        f"space-time mixing in layers {list(config.space_time_mixing_layers)} (the keys and values of each frame take"
        f" {config.space_time_mixing_channels} of {config.hidden_size} channels from each neighbouring frame, within"
        f" segments of {count_of(config.space_time_mixing_segment_length, 'frame')})"
        if config.space_time_mixing_layers
        else "no space-time mixing"
    )
    if config.temporal_aggregation == "attention":
        head = (
            f"a temporal-attention head ({count_of(config.temporal_attention_num_layers, 'layer')},"
            f" {count_of(config.temporal_attention_num_heads, 'head')}) over the per-frame CLS features"
        )
    else:
        head = "the mean of the per-frame CLS features"
    return (
        f"A ViT backbone ({count_of(config.num_hidden_layers, 'layer')}, hidden size {config.hidden_size},"
        f" {count_of(config.num_attention_heads, 'head')}, patch {config.patch_size}) applied to every frame, with"
        f" {mixing}; {count_of(config.num_temporal_embeddings, 'temporal embedding')}; {head}; then the classifier."
        " The cost is that of the image ViT on every frame: space-time mixing only moves channels."
    )


def _default_intended_use(config: XViTConfig, inputs: ModelCardInputs) -> str:
    data_words = _data_words(inputs)
    classes = f"the {config.num_labels} classes of {data_words}" if data_words else f"{config.num_labels} classes"
    content = DATASET_CONTENT.get(inputs.dataset or "")
    data = f"{data_words} ({content})" if content else (data_words or "the data it was trained on")
    return (
        f"Classifying short video clips into {classes}, or as a starting point for fine-tuning on other video data."
        " The model sees one clip of"
        f" {config.num_frames} frames at {config.image_size} x {config.image_size} pixels per view; long videos are"
        " summarised by the few clips the processor samples. It knows only the classes above and answers one of them"
        f" for any video. Its predictions carry the biases and the limits of {data}; check it on your own videos"
        " before relying on it, and do not use it to make decisions about people."
    )


def _body(config: XViTConfig, inputs: ModelCardInputs) -> str:
    names = _dataset_names(inputs.dataset)
    model_id = inputs.model_id
    return f"""# {_title(config, names[1] if names else None)}

XViT ("Space-time Mixing Attention for Video Transformer", Bulat et al., NeurIPS 2021, [paper]({PAPER_URL}))
classifies {config.num_frames}-frame clips of {config.image_size} x {config.image_size} pixels into
{count_of(config.num_labels, "class", "classes")}. It runs an image ViT on every frame and lets attention see the
neighbouring frames by mixing a slice of their keys and values, at the cost of the per-frame ViT.

## How it was made

{_made_section(inputs)}

## Intended use and limitations

{inputs.intended_use or _default_intended_use(config, inputs)}

## Results

{_results_section(inputs, _data_words(inputs))}

## Usage

The code lives in this repository (`trust_remote_code=True`); `video_preprocessor_config.json` holds the frame
sampling, resizing, cropping and normalisation the model expects, with one centre clip per video.

```python
from transformers import pipeline

classifier = pipeline("video-classification", model="{model_id}", trust_remote_code=True)
print(classifier("video.mp4", top_k=5))
```

```python
import torch
from transformers import AutoModelForVideoClassification, AutoVideoProcessor

processor = AutoVideoProcessor.from_pretrained("{model_id}", trust_remote_code=True)
model = AutoModelForVideoClassification.from_pretrained("{model_id}", trust_remote_code=True).eval()
inputs = processor("video.mp4", return_tensors="pt")  # pixel_values: (1, {config.num_frames}, 3, H, W)
with torch.no_grad():
    predicted = model(**inputs).logits.argmax(-1).item()
print(model.config.id2label[predicted])
```

### Multi-view evaluation

Published video accuracies average several views per video. Ask the processor for them and fold the scores back to
one prediction per video:

```python
inputs = processor("video.mp4", num_temporal_views=2, num_spatial_crops=3, return_tensors="pt")  # 6 clips
with torch.no_grad():
    probabilities = processor.average_view_scores(model(**inputs).logits)  # (1, num_labels)
```

### Inference Endpoints

`handler.py` serves the model on a custom Inference Endpoint. Send a base64-encoded video or an http(s) URL:

```json
{{"inputs": "https://example.com/video.mp4", "parameters": {{"top_k": 5, "num_spatial_crops": 3}}}}
```

and get `[{{"label": ..., "score": ...}}, ...]`, best first.

## Architecture

{_architecture(config)}

## License

{inputs.license}; the original code and weights are Apache-2.0 ({ORIGINAL_CODE_URL}).

## Citation

```bibtex
{CITATION}
```
"""


def render_model_card(config: XViTConfig, inputs: ModelCardInputs) -> str:
    """The card's text. The metadata is built with `ModelCardData` and read back with `ModelCard`, which raises
    `ValueError` for metadata the Hub would reject (a malformed model-index, a license or id of the wrong format)."""
    _check_hub_formats(inputs)
    metadata = _metadata(config, inputs)
    text = f"---\n{metadata.to_yaml()}\n---\n\n{_body(config, inputs)}"
    card = ModelCard(text, ignore_metadata_errors=False)
    if len(card.data.eval_results or []) != len(metadata.eval_results or []):
        raise ValueError("The model-index of the card does not read back as the results it was made from.")
    return text
