"""The top-k accuracy `evaluate` module shipped with the training example, against hand-computed values."""

import evaluate
import numpy as np
import pytest

from modeling_xvit.training import TOP_K_ACCURACY_METRIC as METRIC


@pytest.fixture(scope="module")
def top_k(tmp_path_factory):
    return evaluate.load(str(METRIC), keep_in_memory=True, cache_dir=str(tmp_path_factory.mktemp("evaluate")))


def test_hand_made_logits(top_k):
    logits = [[0.1, 0.7, 0.2], [0.5, 0.2, 0.3], [0.2, 0.3, 0.5], [2.0, -1.0, 0.0]]
    # Ranks of the references: 2nd, 1st, 2nd, 3rd.
    result = top_k.compute(predictions=logits, references=[2, 0, 1, 1], k=[1, 2, 3])
    assert result == {"top1_accuracy": 0.25, "top2_accuracy": 0.75, "top3_accuracy": 1.0}


def test_matches_a_sort_on_random_scores(top_k):
    scores = np.random.default_rng(0).normal(size=(64, 10))
    references = np.random.default_rng(1).integers(0, 10, size=64)
    ranking = np.argsort(-scores, axis=1)
    expected = {f"top{k}_accuracy": float((ranking[:, :k] == references[:, None]).any(1).mean()) for k in (1, 5)}
    assert top_k.compute(predictions=scores, references=references) == pytest.approx(expected)


def test_ties_are_not_credited_and_k_above_the_classes_counts_every_class(top_k):
    # A model that gives every class the same score is right only where the reference comes first in index order.
    result = top_k.compute(predictions=np.zeros((3, 4)), references=[0, 1, 3], k=[1, 5])
    assert result == {"top1_accuracy": pytest.approx(1 / 3), "top5_accuracy": 1.0}


@pytest.mark.parametrize(
    ("predictions", "references", "message"),
    [([[0.1, 0.9]], [2], r"class indices in \[0, 2\)"), ([[0.1, 0.9]], [0, 1], r"number of predictions \(1\)")],
)
def test_bad_inputs_are_refused(top_k, predictions, references, message):
    with pytest.raises(ValueError, match=message):
        top_k.compute(predictions=predictions, references=references)
