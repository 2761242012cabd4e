"""Batch-hard mining: for each anchor its farthest positive and its closest negative.

Reference: Hermans, Beyer, Leibe 2017, "In Defense of the Triplet Loss for Person
Re-Identification" (batch hard).
"""

from __future__ import annotations

import torch
from torch import Tensor

from contrastkit.miners._base import Miner, checked, mining_inputs
from contrastkit.pairs import Triplets

__all__ = ["BatchHardMiner", "batch_hard_triplets"]


def _batch_hard(dist: Tensor, pos: Tensor, neg: Tensor) -> Triplets:
    inf = torch.tensor(float("inf"), dtype=dist.dtype, device=dist.device)
    hardest_pos = torch.where(pos, dist, -inf).argmax(dim=1)
    hardest_neg = torch.where(neg, dist, inf).argmin(dim=1)
    has_both = pos.any(dim=1) & neg.any(dim=1)
    anchors = has_both.nonzero().flatten()
    return Triplets(anchors, hardest_pos[anchors], hardest_neg[anchors])


def batch_hard_triplets(
    query: Tensor,
    key: Tensor | None = None,
    *,
    query_ids: Tensor,
    key_ids: Tensor | None = None,
    distance: str = "euclidean",
    normalize_embeddings: bool = True,
) -> Triplets:
    """One triplet per anchor: (anchor, hardest positive, hardest negative).

    The hardest positive is the farthest key with the anchor's id, the hardest negative the
    closest key with another id. Anchors without a positive or without a negative are skipped.
    Ties go to the lowest index.

    Args:
        query: (N, D). key: optional (M, D) (default: query, self-pairs excluded).
        query_ids, key_ids: integer ids. distance, normalize_embeddings: the metric.

    Returns:
        :class:`Triplets` with at most N triplets.

    Example:
        >>> import torch
        >>> from contrastkit.miners import batch_hard_triplets
        >>> t = batch_hard_triplets(torch.randn(6, 4), query_ids=torch.tensor([0, 0, 1, 1, 2, 2]))
        >>> t.anchor.tolist()
        [0, 1, 2, 3, 4, 5]
    """
    dist, pos, neg = mining_inputs(query, key, query_ids, key_ids, distance, normalize_embeddings)
    return checked(_batch_hard(dist, pos, neg), pos, neg, "batch_hard_triplets")


class BatchHardMiner(Miner):
    """Module form of :func:`batch_hard_triplets`.

    Example:
        >>> import torch
        >>> from contrastkit.miners import BatchHardMiner
        >>> t = BatchHardMiner()(torch.randn(6, 4), query_ids=torch.tensor([0, 0, 1, 1, 2, 2]))
    """

    kind = "batch_hard_triplets"

    def __init__(self, *, distance: str = "euclidean", normalize_embeddings: bool = True) -> None:
        super().__init__(distance, normalize_embeddings)

    def mine(self, dist: Tensor, pos: Tensor, neg: Tensor) -> Triplets:
        return _batch_hard(dist, pos, neg)
