"""Batch-all mining: every valid triplet, optionally only those that violate the margin.

Reference: Hermans, Beyer, Leibe 2017, "In Defense of the Triplet Loss for Person
Re-Identification" (batch all).
"""

from __future__ import annotations

from torch import Tensor

from contrastkit.miners._base import Miner, checked, mining_inputs
from contrastkit.pairs import Triplets

__all__ = ["BatchAllMiner", "batch_all_triplets"]


def _batch_all(dist: Tensor, pos: Tensor, neg: Tensor, margin: float | None) -> Triplets:
    valid = pos[:, :, None] & neg[:, None, :]
    if margin is not None:
        # keep triplets with a non-zero hinge: d(a, p) − d(a, n) + margin > 0
        valid &= (dist[:, :, None] - dist[:, None, :] + margin) > 0
    a, p, n = valid.nonzero(as_tuple=True)
    return Triplets(a, p, n)


def batch_all_triplets(
    query: Tensor,
    key: Tensor | None = None,
    *,
    query_ids: Tensor,
    key_ids: Tensor | None = None,
    margin: float | None = None,
    distance: str = "euclidean",
    normalize_embeddings: bool = True,
) -> Triplets:
    """All (anchor, positive, negative) triplets of the batch.

    Args:
        query: (N, D) anchors' embeddings. key: optional (M, D) candidates (default: query,
            self-pairs excluded). query_ids / key_ids: integer ids as in the losses.
        margin: if given, keep only triplets with ``d(a,p) − d(a,n) + margin > 0`` (those that
            contribute to a triplet loss with that margin).
        distance, normalize_embeddings: see :func:`contrastkit.distances.pairwise_distance`.

    Returns:
        :class:`Triplets` of (T,) index tensors; memory is O(N·M²) booleans.

    Example:
        >>> import torch
        >>> from contrastkit.miners import batch_all_triplets
        >>> t = batch_all_triplets(torch.randn(6, 4), query_ids=torch.tensor([0, 0, 1, 1, 2, 2]))
        >>> t.anchor.shape
        torch.Size([24])
    """
    dist, pos, neg = mining_inputs(query, key, query_ids, key_ids, distance, normalize_embeddings)
    return checked(_batch_all(dist, pos, neg, margin), pos, neg, "batch_all_triplets")


class BatchAllMiner(Miner):
    """Module form of :func:`batch_all_triplets`.

    Example:
        >>> import torch
        >>> from contrastkit.miners import BatchAllMiner
        >>> t = BatchAllMiner(margin=0.2)(torch.randn(6, 4), query_ids=torch.tensor([0, 0, 1, 1, 2, 2]))
    """

    kind = "batch_all_triplets"

    def __init__(
        self,
        margin: float | None = None,
        *,
        distance: str = "euclidean",
        normalize_embeddings: bool = True,
    ) -> None:
        super().__init__(distance, normalize_embeddings)
        self.margin = margin

    def mine(self, dist: Tensor, pos: Tensor, neg: Tensor) -> Triplets:
        return _batch_all(dist, pos, neg, self.margin)
