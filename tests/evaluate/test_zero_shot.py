"""Zero-shot classification: prompt ensembling and the figures, against explicit loops."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score

from contrastkit.evaluate.zero_shot import (
    DEFAULT_TEMPLATES,
    class_text_weights,
    zero_shot_figures,
    zero_shot_predict,
)


def _encoder(dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    table: dict[str, torch.Tensor] = {}

    def encode(texts):
        for t in texts:
            table.setdefault(t, torch.randn(dim, generator=g))
        return torch.stack([table[t] * (1 + len(t)) for t in texts])  # unequal norms

    return encode


def test_class_weights_average_the_normalised_templates_and_predict_by_cosine():
    encode = _encoder()
    classes, templates = ["cat", "traffic light", "star"], DEFAULT_TEMPLATES[:3]
    w = class_text_weights(encode, classes, templates)
    for c, row in zip(classes, w):
        mean = torch.stack([F.normalize(encode([t.format(c)])[0], dim=0) for t in templates]).mean(
            0
        )
        torch.testing.assert_close(row, F.normalize(mean, dim=0))
    images = torch.randn(20, 8, generator=torch.Generator().manual_seed(3))
    loop = [max(range(3), key=lambda j: float(F.normalize(x, dim=0) @ w[j])) for x in images]
    assert zero_shot_predict(images, w).tolist() == loop


def test_figures_match_sklearn_and_chance():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    pred = torch.tensor([0, 0, 1, 0, 1, 2, 2, 2, 0, 2])
    f = zero_shot_figures(pred, labels, num_classes=4)  # class 3 never occurs
    assert f["top1"] == pytest.approx(7 / 10)
    assert f["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, pred))
    assert f["chance_balanced_accuracy"] == pytest.approx(1 / 3)
    assert f["majority_top1"] == pytest.approx(0.4)
    assert f["confusion_matrix"][0] == [3, 1, 0, 0] and sum(map(sum, f["confusion_matrix"])) == 10


def test_templates_and_classes_are_checked():
    with pytest.raises(ValueError, match="exactly one"):
        class_text_weights(_encoder(), ["a"], ("no slot",))
    with pytest.raises(ValueError, match="classes is empty"):
        class_text_weights(_encoder(), [], DEFAULT_TEMPLATES)
