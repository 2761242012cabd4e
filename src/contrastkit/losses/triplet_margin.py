"""Triplet margin loss over all or mined triplets.

References: Weinberger & Saul 2009 (LMNN); Schroff et al. 2015 (FaceNet); Hermans et al. 2017
(soft margin, batch hard); Balntas et al. 2016 (distance swap).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit._checks import NO_NEGATIVES, NO_POSITIVES, warn_label_problems
from contrastkit.distances import paired_distance
from contrastkit.losses._margin import (
    MinedLossModule,
    check_indices,
    check_margin_options,
    distance_table,
    reduce_terms,
)
from contrastkit.pairs import Triplets, all_triplets

__all__ = ["TripletMarginLoss", "triplet_margin"]

_NO_TRIPLET = (
    "no valid triplet exists, so the loss returned is 0 (still on the graph, with zero "
    "gradients) and the batch teaches nothing"
)
#: What the loss returns on a degenerate batch (the text of its warning).
_DEGENERATE = {NO_NEGATIVES: _NO_TRIPLET, NO_POSITIVES: _NO_TRIPLET}


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

    Warns:
        DegenerateBatchWarning: once per process when the ids allow no triplet: one id in the
            batch (no negatives) or no id shared by two rows (no positives). The loss is then
            0, on the graph, with zero gradients.

    Example:
        >>> import torch
        >>> from contrastkit.losses.functional import triplet_margin
        >>> from contrastkit.miners import batch_hard_triplets
        >>> z, y = torch.randn(8, 4), torch.arange(4).repeat(2)
        >>> loss = triplet_margin(z, query_ids=y, triplets=batch_hard_triplets(z, query_ids=y))
    """
    check_margin_options(reduction=reduction, distance=distance)
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
    if t.anchor.numel() == 0:  # known without a sync; only then are the labels checked (one)
        warn_label_problems("triplet_margin", qids, None if key is None else kids, _DEGENERATE)
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


class TripletMarginLoss(
    MinedLossModule,
    function=triplet_margin,
    check=check_margin_options,
    inputs=("query_ids", "key_ids", "triplets"),
    positional=1,
):
    """Module form of :func:`triplet_margin`; a miner can be attached:
    ``loss_fn(query, key=None, *, query_ids, key_ids=None, triplets=None)``.

    Example:
        >>> import torch
        >>> from contrastkit.losses import TripletMarginLoss
        >>> from contrastkit.miners import SemiHardMiner
        >>> loss_fn = TripletMarginLoss(margin=0.2, miner=SemiHardMiner(margin=0.2))
        >>> loss = loss_fn(torch.randn(8, 4), query_ids=torch.arange(4).repeat(2))
    """

    mined = "triplets"
