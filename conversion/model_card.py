"""The README.md model card written next to a converted XViT checkpoint."""

from modeling_xvit import XViTConfig

# Top-1 / top-5 accuracy the authors report for the released checkpoints (paper and official repository).
PUBLISHED_RESULTS = {
    "kinetics600": (
        "Kinetics-600",
        [("3 spatial x 1 temporal", "84.51", "96.26"), ("3 spatial x 2 temporal", "84.71", "96.39")],
    ),
    "ssv2": ("Something-Something-v2", [("32 x 2 (as listed by the authors)", "67.19", "91.00")]),
}
DATASET_NAMES = {"kinetics400": "Kinetics-400", "kinetics600": "Kinetics-600", "ssv2": "Something-Something-v2"}

CITATION = """@inproceedings{bulat2021space,
  title     = {Space-time Mixing Attention for Video Transformer},
  author    = {Bulat, Adrian and Perez-Rua, Juan-Manuel and Sudhakaran, Swathikiran and Martinez, Brais and
               Tzimiropoulos, Georgios},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2021}
}"""


def _results_section(dataset: str, config: XViTConfig) -> str:
    # The published figures belong to the released 16-frame ViT-B/16 models only.
    released = config.num_frames == 16 and config.hidden_size == 768 and config.num_hidden_layers == 12
    if dataset not in PUBLISHED_RESULTS or not released:
        return "No accuracy was published for this configuration; evaluate it on your data."
    name, rows = PUBLISHED_RESULTS[dataset]
    table = "\n".join(f"| {views} | {top1} | {top5} |" for views, top1, top5 in rows)
    return (
        f"Accuracy on the {name} validation set as reported by the authors for the released checkpoint (not"
        " re-measured after conversion; the converted model reproduces the original's logits):\n\n"
        f"| test views | top-1 | top-5 |\n|---|---|---|\n{table}"
    )


def render_model_card(
    config: XViTConfig, dataset: str, checkpoint_name: str, max_difference: float | None, model_id: str = "."
) -> str:
    """Markdown with Hub metadata: what the model is, where it comes from, its published accuracy, usage, citation."""
    dataset_name = DATASET_NAMES.get(dataset, dataset)
    mixing = (
        f"space-time mixing of keys and values in layers {list(config.space_time_mixing_layers)}, "
        f"{config.space_time_mixing_channels} of {config.hidden_size} channels taken from each neighbouring frame, "
        f"within segments of {config.space_time_mixing_segment_length} frames"
        if config.space_time_mixing_layers
        else "no space-time mixing"
    )
    check = (
        f"`--verify` compared it with a re-implementation of the original forward pass on a random clip: max |logit"
        f" difference| {max_difference:.2g}."
        if max_difference is not None
        else "It was converted without `--verify`."
    )
    return f"""---
license: apache-2.0
library_name: transformers
pipeline_tag: video-classification
tags:
- video-classification
- xvit
- custom_code
---

# XViT, {config.num_frames} frames, {dataset_name}

XViT ("Space-time Mixing Attention for Video Transformer", Bulat et al., NeurIPS 2021) classifies
{config.num_frames}-frame clips of {config.image_size} x {config.image_size} pixels into {config.num_labels}
{dataset_name} classes. This is `{checkpoint_name}` from the official release
(github.com/1adrianb/video-transformers, Apache-2.0), converted to Transformers. {check}

Architecture: a ViT backbone ({config.num_hidden_layers} layers, hidden size {config.hidden_size},
{config.num_attention_heads} heads, patch {config.patch_size}) applied to every frame, with {mixing};
{config.num_temporal_embeddings} temporal embeddings; a {config.temporal_attention_num_layers}-layer temporal-attention
head over the per-frame CLS features; an MLP classifier.

## Results

{_results_section(dataset, config)}

## Usage

The code lives in this repository (`trust_remote_code=True`); `video_preprocessor_config.json` reproduces the
original frame sampling, resizing, cropping and normalisation with one centre view per video. The published figures
average several views: pass `num_spatial_crops=3` (and `num_temporal_views`) to the processor and fold the scores
with `processor.average_view_scores(logits)`.

```python
from transformers import AutoModelForVideoClassification, AutoVideoProcessor

processor = AutoVideoProcessor.from_pretrained("{model_id}", trust_remote_code=True)
model = AutoModelForVideoClassification.from_pretrained("{model_id}", trust_remote_code=True)
inputs = processor("video.mp4", return_tensors="pt")
predicted = model(**inputs).logits.argmax(-1).item()
print(model.config.id2label[predicted])
```

## License

Apache-2.0, as the original code and weights.

## Citation

```bibtex
{CITATION}
```
"""
