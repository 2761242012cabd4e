"""Weighted k-nearest-neighbour classification on embeddings (Wu et al. 2018, InstDisc).

Each of the ``k`` nearest training embeddings (cosine similarity) votes for its class with
weight ``exp(sim / t)``; the class with the largest total wins. This is the standard monitor and
evaluation of self-supervised encoders (InstDisc, MoCo, DINO, solo-learn).

Example:
    >>> import torch
    >>> from contrastkit.evaluate import knn_predict
    >>> train = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    >>> pred = knn_predict(train, torch.tensor([0, 0, 1]), torch.tensor([[1.0, 0.05]]), k=2)
    >>> pred.tolist()
    [0]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["DEFAULT_K_GRID", "knn_accuracy", "knn_predict", "knn_scores", "select_knn_k"]

#: the neighbour counts :func:`select_knn_k` tries by default
DEFAULT_K_GRID: tuple[int, ...] = (1, 5, 10, 20, 50, 100, 200)


def knn_scores(
    train_features: Tensor,
    train_labels: Tensor,
    query_features: Tensor,
    *,
    k: int = 200,
    temperature: float = 0.1,
    num_classes: int | None = None,
    chunk_size: int = 1024,
    exclude_self: bool = False,
) -> Tensor:
    """Class scores (Q, C) from the weighted votes of the ``k`` nearest training points.

    Args:
        train_features: (N, D). train_labels: (N,) integer labels. query_features: (Q, D).
        k: neighbours (capped at N). temperature: vote weight ``exp(sim / temperature)``.
        num_classes: C (default: max label + 1). chunk_size: queries per block (memory).
        exclude_self: skip a query's own row when queries are the training set (leave-one-out).
    """
    if train_features.shape[0] != train_labels.shape[0]:
        raise ValueError(
            f"train_features has {train_features.shape[0]} rows but train_labels has "
            f"{train_labels.shape[0]}."
        )
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}.")
    c = int(num_classes or int(train_labels.max()) + 1)
    train = F.normalize(train_features.float(), dim=1)
    labels = train_labels.long().to(train.device)
    k_eff = min(k + int(exclude_self), train.shape[0])
    out = []
    for start in range(0, query_features.shape[0], chunk_size):
        q = F.normalize(query_features[start : start + chunk_size].float().to(train.device), dim=1)
        sim = q @ train.T
        if exclude_self:
            rows = torch.arange(q.shape[0], device=sim.device)
            sim[rows, rows + start] = -float("inf")
        top_sim, top_idx = sim.topk(k_eff - int(exclude_self), dim=1)
        weights = (top_sim / temperature).exp()
        scores = torch.zeros(q.shape[0], c, device=sim.device)
        scores.scatter_add_(1, labels[top_idx], weights)
        out.append(scores)
    return torch.cat(out)


def knn_predict(
    train_features: Tensor, train_labels: Tensor, query_features: Tensor, **kw
) -> Tensor:
    """Predicted labels (Q,) by weighted kNN; keyword arguments as in :func:`knn_scores`."""
    return knn_scores(train_features, train_labels, query_features, **kw).argmax(dim=1)


def knn_accuracy(
    train_features: Tensor,
    train_labels: Tensor,
    query_features: Tensor,
    query_labels: Tensor,
    **kw,
) -> float:
    """Top-1 accuracy of :func:`knn_predict` against ``query_labels``."""
    pred = knn_predict(train_features, train_labels, query_features, **kw)
    return float((pred.cpu() == query_labels.cpu()).float().mean())


def select_knn_k(
    train_features: Tensor,
    train_labels: Tensor,
    val_features: Tensor,
    val_labels: Tensor,
    *,
    ks: tuple[int, ...] = DEFAULT_K_GRID,
    temperature: float = 0.1,
) -> tuple[int, dict[int, float]]:
    """Choose k for the weighted kNN on a validation split; never pass the test split here.

    Args:
        train_features (N, D), train_labels (N,): the neighbour bank.
        val_features (V, D), val_labels (V,): held-out labelled queries (a part of the
            training data that is not in the bank).
        ks: candidate neighbour counts. temperature: the vote temperature.

    Returns:
        (best k, {k: validation accuracy}); ties go to the larger k (smoother vote).

    Example:
        >>> import torch
        >>> x = torch.eye(4).repeat(5, 1) + 0.01 * torch.randn(20, 4)
        >>> y = torch.arange(4).repeat(5)
        >>> k, accs = select_knn_k(x[:16], y[:16], x[16:], y[16:], ks=(1, 3))
        >>> k, accs[1]
        (3, 1.0)
    """
    if not ks:
        raise ValueError("ks is empty; give at least one neighbour count, e.g. ks=(20, 200).")
    accs = {
        int(k): knn_accuracy(
            train_features,
            train_labels,
            val_features,
            val_labels,
            k=int(k),
            temperature=temperature,
        )
        for k in ks
    }
    best = max(accs, key=lambda k: (accs[k], k))
    return best, accs
