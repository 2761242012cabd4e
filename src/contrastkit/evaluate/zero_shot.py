"""Zero-shot classification with an image–text model: class names × prompt templates.

Each class is described by its name in several templates ("a picture of a {}."), the text
embeddings of one class are L2-normalised, averaged and normalised again (CLIP's prompt
ensembling), and an image is assigned the class whose text embedding is closest by cosine.
No image label is used to build the classifier.

Example:
    >>> import torch
    >>> fake = {"a picture of a cat.": [1.0, 0.0], "a drawing of a cat.": [0.9, 0.1],
    ...         "a picture of a dog.": [0.0, 1.0], "a drawing of a dog.": [0.1, 0.9]}
    >>> encode = lambda texts: torch.tensor([fake[t] for t in texts])
    >>> w = class_text_weights(encode, ["cat", "dog"], ("a picture of a {}.", "a drawing of a {}."))
    >>> zero_shot_predict(torch.tensor([[0.8, 0.2], [0.3, 0.9]]), w).tolist()
    [0, 1]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "DEFAULT_TEMPLATES",
    "class_text_weights",
    "zero_shot_figures",
    "zero_shot_predict",
]

#: prompt templates for pictures (a short ensemble in the spirit of CLIP's)
DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a picture of a {}.",
    "a drawing of a {}.",
    "an illustration of a {}.",
    "a clip art of a {}.",
    "a {}.",
)


def class_text_weights(
    encode_texts: Callable[[list[str]], Tensor],
    classes: Sequence[str],
    templates: Sequence[str] = DEFAULT_TEMPLATES,
) -> Tensor:
    """(C, D) unit-norm class embeddings: the mean of each class's normalised template
    embeddings, normalised again.

    Args:
        encode_texts: a list of texts → (len, D) embeddings (the text tower).
        classes: C class names, written as a person would ("traffic light", not "traffic_light").
        templates: format strings with one ``{}`` for the class name.
    """
    if not classes:
        raise ValueError("classes is empty; give at least two class names.")
    bad = [t for t in templates if t.count("{}") != 1]
    if not templates or bad:
        raise ValueError(f"every template needs exactly one '{{}}' for the class name; got {bad}.")
    prompts = [t.format(c) for c in classes for t in templates]
    emb = F.normalize(encode_texts(prompts).float(), dim=1)
    emb = emb.reshape(len(classes), len(templates), -1).mean(1)
    return F.normalize(emb, dim=1)


def zero_shot_predict(image_embeddings: Tensor, class_weights: Tensor) -> Tensor:
    """(N,) the class whose text embedding is closest (cosine) to each image embedding."""
    sims = F.normalize(image_embeddings.float(), dim=1) @ class_weights.T
    return sims.argmax(1)


def zero_shot_figures(predicted: Tensor, labels: Tensor, num_classes: int) -> dict[str, Any]:
    """Top-1 accuracy, balanced accuracy (the mean of per-class recalls over the classes that
    occur), the confusion matrix (rows: true class), chance balanced accuracy (1/C over the
    classes that occur) and the top-1 of always guessing the largest class."""
    predicted, labels = predicted.cpu().long(), labels.cpu().long()
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    confusion.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
    support = confusion.sum(1)
    present = support > 0
    recalls = confusion.diag()[present].double() / support[present].double()
    return {
        "top1": float((predicted == labels).double().mean()),
        "balanced_accuracy": float(recalls.mean()),
        "majority_top1": float(support.max()) / float(support.sum()),
        "chance_balanced_accuracy": 1.0 / int(present.sum()),
        "confusion_matrix": confusion.tolist(),
    }
