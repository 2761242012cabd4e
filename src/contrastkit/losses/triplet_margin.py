"""Triplet margin loss over all or mined triplets.

References: Weinberger & Saul 2009 (LMNN); Schroff et al. 2015 (FaceNet); Hermans et al. 2017
(soft margin, batch hard); Balntas et al. 2016 (distance swap).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit._checks import check_choice
from contrastkit.distances import paired_distance
from contrastkit.losses._margin import (
    MARGIN_REDUCTIONS,
    check_indices,
    distance_table,
    reduce_terms,
)
from contrastkit.pairs import Triplets, all_triplets

__all__ = ["TripletMarginLoss", "triplet_margin"]


def triplet_margin(
    query: Tensor,
    key: Tensor | None = None,
    *,
    query_ids: Tensor,
    key_ids: Tensor | None = None,
    triplets: Triplets | tuple[Tensor, Tensor, Tensor] | None = None,
    margin: float = 0.2,
    distance: str = "euclidean",
    normalize_embeddings: bool = True,
    swap: bool = False,
    soft: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """Triplet loss ``max(0, d(a, p) − d(a, n) + margin)`` over all or mined triplets.

    Args:
        query: (N, D) anchors. key: optional (M, D) positives/negatives (default: query,
            self-pairs excluded). query_ids, key_ids: integer ids.
        triplets: mined :class:`~contrastkit.miners.Triplets` (anchor indexes query, positive
            and negative index key). Default: every valid triplet (batch all).
        margin: the margin (distance units).
        distance, normalize_embeddings: the metric (default euclidean on unit vectors).
        swap: use ``min(d(a, n), d(p, n))`` as the negative distance (Balntas et al. 2016).
        soft: ``softplus(d(a,p) − d(a,n) + margin)`` instead of the hinge (Hermans et al. use it
            with ``margin=0``).
        reduction: ``"mean"`` over triplets, ``"mean_nonzero"`` (over triplets with a
            positive loss, as in pytorch-metric-learning), ``"sum"`` or ``"none"`` (T,).

    Returns:
        A scalar (zero, still on the graph, when there are no triplets) or (T,).

    Example:
        >>> import torch
        >>> from contrastkit.losses.functional import triplet_margin
        >>> from contrastkit.miners import batch_hard_triplets
        >>> z, y = torch.randn(8, 4), torch.arange(4).repeat(2)
        >>> loss = triplet_margin(z, query_ids=y, triplets=batch_hard_triplets(z, query_ids=y))
    """
    check_choice(reduction, "reduction", MARGIN_REDUCTIONS)
    dist, qids, kids, k = distance_table(
        query, key, query_ids, key_ids, distance, normalize_embeddings
    )
    if triplets is None:
        t = all_triplets(qids, None if key is None else kids)
    else:
        if len(triplets) != 3:
            raise ValueError(
                f"triplets must be 3 index tensors (anchor, positive, negative), got "
                f"{len(triplets)}."
            )
        check_indices(tuple(triplets), dist.shape[0], dist.shape[1], "triplets")
        t = Triplets(*triplets)
    d_ap = dist[t.anchor, t.positive]
    d_an = dist[t.anchor, t.negative]
    if swap:
        d_pn = paired_distance(
            k[t.positive], k[t.negative], distance, normalize_embeddings=normalize_embeddings
        )
        d_an = torch.minimum(d_an, d_pn)
    violation = d_ap - d_an + margin
    terms = F.softplus(violation) if soft else torch.relu(violation)
    return reduce_terms(terms, reduction)


class TripletMarginLoss(nn.Module):
    """Module form of :func:`triplet_margin`; a miner can be attached.

    Example:
        >>> import torch
        >>> from contrastkit.losses import TripletMarginLoss
        >>> from contrastkit.miners import SemiHardMiner
        >>> loss_fn = TripletMarginLoss(margin=0.2, miner=SemiHardMiner(margin=0.2))
        >>> loss = loss_fn(torch.randn(8, 4), query_ids=torch.arange(4).repeat(2))
    """

    def __init__(
        self,
        margin: float = 0.2,
        *,
        distance: str = "euclidean",
        normalize_embeddings: bool = True,
        swap: bool = False,
        soft: bool = False,
        reduction: str = "mean",
        miner: nn.Module | None = None,
    ) -> None:
        super().__init__()
        check_choice(reduction, "reduction", MARGIN_REDUCTIONS)
        self.margin = margin
        self.distance = distance
        self.normalize_embeddings = normalize_embeddings
        self.swap = swap
        self.soft = soft
        self.reduction = reduction
        self.miner = miner

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        *,
        query_ids: Tensor,
        key_ids: Tensor | None = None,
        triplets: Triplets | None = None,
    ) -> Tensor:
        if triplets is None and self.miner is not None:
            triplets = self.miner(query, key, query_ids=query_ids, key_ids=key_ids)
        return triplet_margin(
            query,
            key,
            query_ids=query_ids,
            key_ids=key_ids,
            triplets=triplets,
            margin=self.margin,
            distance=self.distance,
            normalize_embeddings=self.normalize_embeddings,
            swap=self.swap,
            soft=self.soft,
            reduction=self.reduction,
        )
