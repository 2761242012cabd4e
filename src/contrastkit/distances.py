"""Pairwise similarities and distances between two sets of embeddings.

Two views of the same geometry, so that every loss and miner names its metric the same way:

- ``pairwise_similarity(a, b, metric)``: larger means closer (used by InfoNCE-style losses).
- ``pairwise_distance(a, b, metric)``: smaller means closer (used by margin losses and miners).

Metrics: ``"cosine"``, ``"dot"``, ``"euclidean"``, ``"squared_euclidean"``. A distance is
turned into a similarity by negation and vice versa (cosine distance is ``1 - cos``).

Example:
    >>> import torch
    >>> from contrastkit.distances import pairwise_distance
    >>> a = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    >>> pairwise_distance(a, a, "euclidean")
    tensor([[0., 5.],
            [5., 0.]])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit._checks import check_choice

METRICS = ("cosine", "dot", "euclidean", "squared_euclidean")

__all__ = [
    "METRICS",
    "normalize",
    "paired_distance",
    "pairwise_distance",
    "pairwise_similarity",
    "squared_euclidean",
]


def normalize(x: Tensor, eps: float = 1e-12) -> Tensor:
    """L2-normalise rows of ``x`` (N, D); rows of zero norm stay zero instead of becoming NaN."""
    return F.normalize(x, dim=-1, eps=eps)


def squared_euclidean(a: Tensor, b: Tensor) -> Tensor:
    """Squared euclidean distances (N, M) between rows of ``a`` (N, D) and ``b`` (M, D).

    Computed with one matrix product, ``|a|² + |b|² − 2 a·b``, clamped at zero.
    """
    sq = (a * a).sum(-1)[:, None] + (b * b).sum(-1)[None, :] - 2.0 * (a @ b.T)
    return sq.clamp_min(0.0)


def _safe_sqrt(sq: Tensor) -> Tensor:
    # sqrt has an infinite derivative at 0 (self-pairs, duplicates); give those entries a zero
    # gradient instead of NaN, and the exact value 0.
    pos = sq > 0
    return torch.where(pos, sq.clamp_min(torch.finfo(sq.dtype).tiny).sqrt(), torch.zeros_like(sq))


def _exact(fn):
    """Run ``fn`` with autocast disabled: similarities keep the dtype of their inputs.

    Under bf16 autocast a matmul would otherwise round every similarity to 8 bits of mantissa
    (an error of ~0.1 in a logit at τ = 0.1); losses pass float32 inputs and want float32 out.
    """
    import functools

    @functools.wraps(fn)
    def wrapper(a: Tensor, b: Tensor, *args, **kwargs) -> Tensor:
        with torch.autocast(a.device.type, enabled=False):
            return fn(a, b, *args, **kwargs)

    return wrapper


@_exact
def pairwise_distance(
    a: Tensor, b: Tensor, metric: str = "euclidean", *, normalize_embeddings: bool = False
) -> Tensor:
    """Distances (N, M) between rows of ``a`` (N, D) and ``b`` (M, D); smaller is closer.

    ``cosine`` gives ``1 − cos``; ``dot`` gives ``−a·b``; ``euclidean`` and
    ``squared_euclidean`` use the embeddings as given unless ``normalize_embeddings`` is set,
    which L2-normalises both sides first (distances on the unit sphere, as in FaceNet).
    """
    check_choice(metric, "metric", METRICS)
    if normalize_embeddings:
        a, b = normalize(a), normalize(b)
    if metric == "cosine":
        return 1.0 - normalize(a) @ normalize(b).T
    if metric == "dot":
        return -(a @ b.T)
    sq = squared_euclidean(a, b)
    return sq if metric == "squared_euclidean" else _safe_sqrt(sq)


@_exact
def pairwise_similarity(a: Tensor, b: Tensor, metric: str = "cosine") -> Tensor:
    """Similarities (N, M) between rows of ``a`` (N, D) and ``b`` (M, D); larger is closer.

    ``cosine`` L2-normalises both sides; ``dot`` is the raw inner product; ``euclidean`` and
    ``squared_euclidean`` return the negated distance.
    """
    check_choice(metric, "metric", METRICS)
    if metric == "cosine":
        return normalize(a) @ normalize(b).T
    if metric == "dot":
        return a @ b.T
    return -pairwise_distance(a, b, metric)


@_exact
def paired_distance(
    x: Tensor, y: Tensor, metric: str = "euclidean", *, normalize_embeddings: bool = False
) -> Tensor:
    """Distances (T,) between matching rows ``x[t]`` and ``y[t]`` of two (T, D) tensors.

    The row-wise twin of :func:`pairwise_distance`, with the same metric conventions.
    """
    check_choice(metric, "metric", METRICS)
    if normalize_embeddings or metric == "cosine":
        x, y = normalize(x), normalize(y)
    if metric == "cosine":
        return 1.0 - (x * y).sum(-1)
    if metric == "dot":
        return -(x * y).sum(-1)
    diff = x - y
    sq = (diff * diff).sum(-1)
    return sq if metric == "squared_euclidean" else _safe_sqrt(sq)
