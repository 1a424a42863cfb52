"""Top-k accuracy as an `evaluate` module, loaded from this folder: `evaluate.load("examples/metrics/top_k_accuracy")`.

Shipped with the example because Hub-hosted metric scripts (`evaluate.load("accuracy")`) need the network.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Top-k accuracy of a classifier: the fraction of examples whose reference class is among the k highest scores of its
prediction. Top-1 accuracy is the usual accuracy; video classification also reports top-5.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `float`): one row of class scores (logits or probabilities) per example.
    references (`list` of `int`): the true class index of each example.
    k (`list` of `int`, *optional*, defaults to `[1, 5]`): the values of k; a k above the number of classes counts
        every class (accuracy 1).
Returns:
    `dict` with `top{k}_accuracy` (`float` in [0, 1]) for each k.
Example:
    >>> top_k = evaluate.load("examples/metrics/top_k_accuracy")
    >>> top_k.compute(predictions=[[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]], references=[2, 0], k=[1, 2])
    {'top1_accuracy': 0.5, 'top2_accuracy': 1.0}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TopKAccuracy(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Sequence(datasets.Value("float32")), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, k=(1, 5)) -> dict[str, float]:
        scores = np.asarray(predictions, dtype=np.float64)
        references = np.asarray(references, dtype=np.int64)
        if scores.ndim != 2 or len(scores) != len(references) or not len(references):
            raise ValueError(
                f"Expected predictions of shape (examples, classes) and one reference per example, got predictions "
                f"{scores.shape} and {references.shape} references."
            )
        if references.min() < 0 or references.max() >= scores.shape[1]:
            raise ValueError(f"References must be class indices in [0, {scores.shape[1]}), got {references.tolist()}.")
        # Rank of the reference class among the scores sorted high to low, ties broken by class index (as a stable
        # sort does), so a model that gives every class the same score is not credited with every class.
        reference_scores = scores[np.arange(len(references)), references][:, None]
        ties_before = (scores == reference_scores) & (np.arange(scores.shape[1]) < references[:, None])
        rank = (scores > reference_scores).sum(axis=1) + ties_before.sum(axis=1)
        return {f"top{top}_accuracy": float((rank < top).mean()) for top in k}
