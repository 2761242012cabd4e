"""Margin contrastive loss over positive and negative pairs.

Reference: Hadsell, Chopra, LeCun 2006, "Dimensionality Reduction by Learning an Invariant
Mapping" (with a positive margin as in later metric-learning work).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from contrastkit._checks import check_choice
from contrastkit.losses._margin import (
    MARGIN_REDUCTIONS,
    check_indices,
    distance_table,
    reduce_terms,
)
from contrastkit.pairs import Pairs, Triplets, all_pairs, to_pairs

__all__ = ["ContrastiveMarginLoss", "contrastive_margin"]


def contrastive_margin(
    query: Tensor,
    key: Tensor | None = None,
    *,
    query_ids: Tensor,
    key_ids: Tensor | None = None,
    pairs: Pairs | Triplets | tuple[Tensor, ...] | None = None,
    pos_margin: float = 0.0,
    neg_margin: float = 1.0,
    distance: str = "euclidean",
    normalize_embeddings: bool = True,
    power: float = 1.0,
    reduction: str = "mean",
) -> Tensor:
    """Pull positive pairs within ``pos_margin``, push negative pairs beyond ``neg_margin``::

        pos term = max(0, d(a, p) − pos_margin) ** power
        neg term = max(0, neg_margin − d(a, n)) ** power

    ``power=2, pos_margin=0`` is Hadsell et al.'s loss (up to the factor ½).

    Args:
        query: (N, D). key: optional (M, D); default the query itself (self-pairs excluded).
        query_ids, key_ids: integer ids; equal ids are positive pairs.
        pairs: optional mined indices: :class:`~contrastkit.miners.Pairs` (4 tensors) or
            :class:`~contrastkit.miners.Triplets` (their unique a–p and a–n pairs). Default:
            all positive and negative pairs.
        pos_margin, neg_margin: the two margins (distance units).
        distance: ``"euclidean"`` (default), ``"squared_euclidean"``, ``"cosine"`` (1 − cos),
            ``"dot"`` (−a·b). normalize_embeddings: L2-normalise first (default True).
        power: exponent applied to each hinge.
        reduction: ``"mean"`` (mean of the positive terms + mean of the negative terms),
            ``"mean_nonzero"`` (each part averaged over its non-zero terms, as in
            pytorch-metric-learning), ``"sum"``, or ``"none"`` (positive terms then negative
            terms, concatenated).

    Example:
        >>> import torch
        >>> from contrastkit.losses.functional import contrastive_margin
        >>> loss = contrastive_margin(torch.randn(8, 4), query_ids=torch.arange(4).repeat(2))
    """
    check_choice(reduction, "reduction", MARGIN_REDUCTIONS)
    if not power > 0:
        raise ValueError(f"power must be > 0, got {power}.")
    dist, qids, kids, _ = distance_table(
        query, key, query_ids, key_ids, distance, normalize_embeddings
    )
    if pairs is None:
        p = all_pairs(qids, None if key is None else kids)
    else:
        if len(pairs) in (3, 4):
            # validate before to_pairs, which would fail obscurely on unequal triplet lengths
            check_indices(tuple(pairs), dist.shape[0], dist.shape[1], "pairs")
        p = to_pairs(pairs)
    pos_terms = torch.relu(dist[p.anchor_pos, p.positive] - pos_margin)
    neg_terms = torch.relu(neg_margin - dist[p.anchor_neg, p.negative])
    if power != 1.0:
        pos_terms, neg_terms = pos_terms**power, neg_terms**power
    if reduction == "none":
        return torch.cat([pos_terms, neg_terms])
    return reduce_terms(pos_terms, reduction) + reduce_terms(neg_terms, reduction)


class ContrastiveMarginLoss(nn.Module):
    """Module form of :func:`contrastive_margin`; a miner can be attached.

    Example:
        >>> import torch
        >>> from contrastkit.losses import ContrastiveMarginLoss
        >>> from contrastkit.miners import BatchHardMiner
        >>> loss_fn = ContrastiveMarginLoss(neg_margin=0.8, miner=BatchHardMiner())
        >>> loss = loss_fn(torch.randn(8, 4), query_ids=torch.arange(4).repeat(2))
    """

    def __init__(
        self,
        pos_margin: float = 0.0,
        neg_margin: float = 1.0,
        *,
        distance: str = "euclidean",
        normalize_embeddings: bool = True,
        power: float = 1.0,
        reduction: str = "mean",
        miner: nn.Module | None = None,
    ) -> None:
        super().__init__()
        check_choice(reduction, "reduction", MARGIN_REDUCTIONS)
        self.pos_margin = pos_margin
        self.neg_margin = neg_margin
        self.distance = distance
        self.normalize_embeddings = normalize_embeddings
        self.power = power
        self.reduction = reduction
        self.miner = miner

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        *,
        query_ids: Tensor,
        key_ids: Tensor | None = None,
        pairs: Pairs | Triplets | None = None,
    ) -> Tensor:
        if pairs is None and self.miner is not None:
            pairs = self.miner(query, key, query_ids=query_ids, key_ids=key_ids)
        return contrastive_margin(
            query,
            key,
            query_ids=query_ids,
            key_ids=key_ids,
            pairs=pairs,
            pos_margin=self.pos_margin,
            neg_margin=self.neg_margin,
            distance=self.distance,
            normalize_embeddings=self.normalize_embeddings,
            power=self.power,
            reduction=self.reduction,
        )
