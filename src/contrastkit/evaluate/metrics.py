"""Classification, retrieval and geometry metrics for embeddings.

- :func:`classification_report`: accuracy, macro precision / recall / F1, confusion matrix.
- :func:`precision_at_k` and :func:`map_at_r` (Musgrave et al. 2020, "A Metric Learning
  Reality Check"): retrieval quality with class labels, the query itself excluded.
- :func:`recall_at_k`: retrieval with one relevant item per query (image–text, CLIP style).
- :func:`alignment` and :func:`uniformity` (Wang & Isola 2020).

Example:
    >>> import torch
    >>> from contrastkit.evaluate import map_at_r, precision_at_k
    >>> z = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> y = torch.tensor([0, 0, 1, 1])
    >>> precision_at_k(z, y, k=1), map_at_r(z, y)
    (1.0, 1.0)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.neighbours import topk_similar

__all__ = [
    "alignment",
    "classification_report",
    "map_at_r",
    "precision_at_k",
    "recall_at_k",
    "uniformity",
]


def classification_report(pred: Tensor, target: Tensor, num_classes: int | None = None) -> dict:
    """Accuracy, macro precision/recall/F1 (scikit-learn's definitions) and the confusion matrix."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    p, t = np.asarray(pred.cpu()), np.asarray(target.cpu())
    labels = np.arange(num_classes or int(max(p.max(), t.max())) + 1)
    prec, rec, f1, _ = precision_recall_fscore_support(
        t, p, labels=labels, average="macro", zero_division=0
    )
    return {
        "accuracy": float((p == t).mean()),
        "macro_precision": float(prec),
        "macro_recall": float(rec),
        "macro_f1": float(f1),
        "confusion_matrix": confusion_matrix(t, p, labels=labels),
    }


def _neighbours(z: Tensor, k: int, chunk: int = 1024) -> Tensor:
    """Indices (N, k) of each row's k nearest other rows by cosine similarity."""
    if not 0 <= k < z.shape[0]:
        raise ValueError(
            f"k must be less than the number of items ({z.shape[0]}): each item has "
            f"{z.shape[0] - 1} others to retrieve, got k={k}."
        )
    return topk_similar(z.float(), z.float(), k, exclude_self=True, chunk_size=chunk)[1]


def precision_at_k(embeddings: Tensor, labels: Tensor, k: int = 1) -> float:
    """Mean fraction of each item's k nearest neighbours (itself excluded) with its label."""
    nn_idx = _neighbours(embeddings, k)
    return float((labels[nn_idx] == labels[:, None]).float().mean())


def map_at_r(embeddings: Tensor, labels: Tensor) -> float:
    """MAP@R: for each query with R other items of its class, the average precision over its
    R nearest neighbours, counting precision only at the ranks that are hits."""
    counts = torch.bincount(labels)
    r = counts[labels] - 1
    valid = r > 0
    max_r = int(r.max())
    nn_idx = _neighbours(embeddings, max_r)
    hits = (labels[nn_idx] == labels[:, None]).float()
    ranks = torch.arange(1, max_r + 1, dtype=torch.float32)
    within = ranks[None, :] <= r[:, None]
    hits = hits * within
    prec = hits.cumsum(1) / ranks
    ap = (prec * hits).sum(1) / r.clamp_min(1)
    return float(ap[valid].mean())


def recall_at_k(
    queries: Tensor, keys: Tensor, ks: tuple[int, ...] = (1, 5, 10)
) -> dict[str, float]:
    """Recall@k when query i's only relevant key is key i (paired cross-modal retrieval)."""
    q, k = F.normalize(queries.float(), dim=1), F.normalize(keys.float(), dim=1)
    sim = q @ k.T
    target = sim.diagonal()[:, None]
    rank = (sim > target).sum(1)  # 0-based rank of the true key
    return {f"R@{kk}": float((rank < kk).float().mean()) for kk in ks}


def alignment(x: Tensor, y: Tensor, alpha: float = 2.0) -> float:
    """E‖f(x) − f(y)‖^α over positive pairs (rows of x and y), on normalised embeddings."""
    x, y = F.normalize(x.float(), dim=1), F.normalize(y.float(), dim=1)
    return float((x - y).norm(dim=1).pow(alpha).mean())


def uniformity(x: Tensor, t: float = 2.0) -> float:
    """log E exp(−t‖f(x) − f(y)‖²) over all distinct pairs, on normalised embeddings."""
    x = F.normalize(x.float(), dim=1)
    sq = torch.pdist(x).pow(2)
    return float(torch.logsumexp(-t * sq, dim=0) - np.log(sq.numel()))
