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
from torch import Tensor

from contrastkit.neighbours import topk_similar

__all__ = [
    "DEFAULT_K_GRID",
    "knn_accuracies",
    "knn_accuracy",
    "knn_predict",
    "knn_scores",
    "select_knn_k",
]

#: the neighbour counts :func:`select_knn_k` tries by default
DEFAULT_K_GRID: tuple[int, ...] = (1, 5, 10, 20, 50, 100, 200)


def _neighbours(
    train_features: Tensor,
    train_labels: Tensor,
    query_features: Tensor,
    k: int,
    chunk_size: int,
    exclude_self: bool = False,
):
    """Yield (chunk start, similarities (q, k'), labels (q, k')) of the k' = min(k, N) nearest
    training rows of each query block, most similar first (cosine; equal similarities by
    training row, see :func:`~contrastkit.neighbours.topk_similar`)."""
    if train_features.shape[0] != train_labels.shape[0]:
        raise ValueError(
            f"train_features has {train_features.shape[0]} rows but train_labels has "
            f"{train_labels.shape[0]}."
        )
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}.")
    k_eff = min(k + int(exclude_self), train_features.shape[0]) - int(exclude_self)
    top_sim, top_idx = topk_similar(
        query_features.float(),
        train_features.float(),
        k_eff,
        exclude_self=exclude_self,
        chunk_size=chunk_size,
    )
    labels = train_labels.long().to(top_idx.device)
    for start in range(0, query_features.shape[0], chunk_size):
        rows = slice(start, start + chunk_size)
        yield start, top_sim[rows], labels[top_idx[rows]]


def _votes(top_sim: Tensor, top_labels: Tensor, temperature: float, num_classes: int) -> Tensor:
    scores = torch.zeros(top_sim.shape[0], num_classes, device=top_sim.device)
    return scores.scatter_add_(1, top_labels, (top_sim / temperature).exp())


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
    c = int(num_classes or int(train_labels.max()) + 1)
    return torch.cat(
        [
            _votes(top_sim, top_labels, temperature, c)
            for _, top_sim, top_labels in _neighbours(
                train_features, train_labels, query_features, k, chunk_size, exclude_self
            )
        ]
    )


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


def knn_accuracies(
    train_features: Tensor,
    train_labels: Tensor,
    query_features: Tensor,
    query_labels: Tensor,
    *,
    ks: tuple[int, ...],
    temperature: float = 0.1,
    chunk_size: int = 1024,
) -> dict[int, float]:
    """Top-1 accuracy of the weighted kNN for several k at the cost of one search.

    The similarities and the top-max(ks) neighbours are computed once per query block; each k
    votes with the first k of them. Equals ``{k: knn_accuracy(..., k=k)}`` (up to the order of
    exactly tied similarities).

    Args:
        train_features (N, D), train_labels (N,), query_features (Q, D), query_labels (Q,).
        ks: neighbour counts (each capped at N). temperature: vote weight ``exp(sim / t)``.

    Example:
        >>> import torch
        >>> train = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
        >>> knn_accuracies(train, torch.tensor([0, 0, 1]), torch.tensor([[0.1, 1.0]]),
        ...                torch.tensor([1]), ks=(1, 3), temperature=10.0)
        {1: 1.0, 3: 0.0}
    """
    if not ks:
        raise ValueError("ks is empty; give at least one neighbour count, e.g. ks=(20, 200).")
    c = int(train_labels.max()) + 1  # as knn_scores: labels the bank lacks are never predicted
    preds: dict[int, list[Tensor]] = {int(k): [] for k in ks}
    for _, top_sim, top_labels in _neighbours(
        train_features, train_labels, query_features, max(preds), chunk_size
    ):
        for k, out in preds.items():
            out.append(_votes(top_sim[:, :k], top_labels[:, :k], temperature, c).argmax(dim=1))
    y = query_labels.cpu()
    # the same reduction as knn_accuracy, so the two agree to the last bit
    return {k: float((torch.cat(p).cpu() == y).float().mean()) for k, p in preds.items()}


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
    accs = knn_accuracies(
        train_features, train_labels, val_features, val_labels, ks=ks, temperature=temperature
    )
    best = max(accs, key=lambda k: (accs[k], k))
    return best, accs
