"""Margin contrastive loss over positive and negative pairs.

Reference: Hadsell, Chopra, LeCun 2006, "Dimensionality Reduction by Learning an Invariant
Mapping" (with a positive margin as in later metric-learning work).
"""

from __future__ import annotations

import torch
from torch import Tensor

from contrastkit._checks import NO_NEGATIVES, NO_POSITIVES, warn_label_problems
from contrastkit.losses._margin import (
    MinedLossModule,
    check_indices,
    check_margin_options,
    distance_table,
    reduce_terms,
)
from contrastkit.pairs import Pairs, Triplets, all_pairs, to_pairs

__all__ = ["ContrastiveMarginLoss", "contrastive_margin"]

#: What the loss returns on a degenerate batch (the text of its warning).
_DEGENERATE = {
    NO_NEGATIVES: (
        "the loss returned is the positive-pair term alone (the negative term is 0), which "
        "pulls every row together and can collapse the embedding"
    ),
    NO_POSITIVES: (
        "the loss returned is the negative-pair term alone (the positive term is 0), which "
        "only pushes rows apart"
    ),
}


def _check_options(*, power: float, **options: object) -> None:
    check_margin_options(**options)
    if not power > 0:
        raise ValueError(f"power must be > 0, got {power}.")


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

    Warns:
        DegenerateBatchWarning: once per process when the ids give no negative pair (one id
            in the batch) or no positive pair (every id unique). The loss is then the other
            term alone (an empty term is 0 on the graph), finite with finite gradients.

    Example:
        >>> import torch
        >>> from contrastkit.losses.functional import contrastive_margin
        >>> loss = contrastive_margin(torch.randn(8, 4), query_ids=torch.arange(4).repeat(2))
    """
    _check_options(reduction=reduction, distance=distance, power=power)
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
    if p.positive.numel() == 0 or p.negative.numel() == 0:
        # a part is empty (known without a sync): only then are the labels checked (one sync)
        warn_label_problems("contrastive_margin", qids, None if key is None else kids, _DEGENERATE)
    pos_terms = torch.relu(dist[p.anchor_pos, p.positive] - pos_margin)
    neg_terms = torch.relu(neg_margin - dist[p.anchor_neg, p.negative])
    if power != 1.0:
        pos_terms, neg_terms = pos_terms**power, neg_terms**power
    if reduction == "none":
        return torch.cat([pos_terms, neg_terms])
    return reduce_terms(pos_terms, reduction) + reduce_terms(neg_terms, reduction)


class ContrastiveMarginLoss(
    MinedLossModule,
    function=contrastive_margin,
    check=_check_options,
    inputs=("query_ids", "key_ids", "pairs"),
    positional=2,
):
    """Module form of :func:`contrastive_margin`; a miner can be attached:
    ``loss_fn(query, key=None, *, query_ids, key_ids=None, pairs=None)``.

    Example:
        >>> import torch
        >>> from contrastkit.losses import ContrastiveMarginLoss
        >>> from contrastkit.miners import BatchHardMiner
        >>> loss_fn = ContrastiveMarginLoss(neg_margin=0.8, miner=BatchHardMiner())
        >>> loss = loss_fn(torch.randn(8, 4), query_ids=torch.arange(4).repeat(2))
    """

    mined = "pairs"
