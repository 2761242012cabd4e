"""Semi-hard mining: negatives farther than the positive but inside the margin.

Reference: Schroff, Kalenichenko, Philbin 2015, "FaceNet: A Unified Embedding for Face
Recognition and Clustering".
"""

from __future__ import annotations

import torch
from torch import Tensor

from contrastkit._checks import check_choice
from contrastkit.miners._base import Miner, checked, mining_inputs
from contrastkit.pairs import Triplets

__all__ = ["SemiHardMiner", "semi_hard_triplets"]

SELECT = ("all", "hardest")


def _semi_hard(dist: Tensor, pos: Tensor, neg: Tensor, margin: float, select: str) -> Triplets:
    d_ap = dist[:, :, None]
    d_an = dist[:, None, :]
    semi = pos[:, :, None] & neg[:, None, :] & (d_an > d_ap) & (d_an < d_ap + margin)
    if select == "all":
        a, p, n = semi.nonzero(as_tuple=True)
        return Triplets(a, p, n)
    # FaceNet: for each (a, p), the semi-hard negative closest to the anchor.
    inf = torch.tensor(float("inf"), dtype=dist.dtype, device=dist.device)
    masked = torch.where(semi, d_an.expand_as(semi), inf)
    best = masked.argmin(dim=2)  # (N, M)
    has = semi.any(dim=2)
    a, p = has.nonzero(as_tuple=True)
    return Triplets(a, p, best[a, p])


def semi_hard_triplets(
    query: Tensor,
    key: Tensor | None = None,
    *,
    query_ids: Tensor,
    key_ids: Tensor | None = None,
    margin: float = 0.2,
    select: str = "all",
    distance: str = "euclidean",
    normalize_embeddings: bool = True,
) -> Triplets:
    """Semi-hard triplets: ``d(a,p) < d(a,n) < d(a,p) + margin``.

    Args:
        query: (N, D). key: optional (M, D). query_ids, key_ids: integer ids.
        margin: the triplet margin the mined triplets are meant for.
        select: ``"all"`` returns every semi-hard triplet; ``"hardest"`` returns, for each
            positive pair, the semi-hard negative closest to the anchor (FaceNet); pairs
            without a semi-hard negative are dropped.
        distance, normalize_embeddings: the metric.

    Returns:
        :class:`Triplets`.

    Example:
        >>> import torch
        >>> from contrastkit.miners import semi_hard_triplets
        >>> t = semi_hard_triplets(torch.randn(8, 4), query_ids=torch.arange(4).repeat(2), margin=0.5)
    """
    check_choice(select, "select", SELECT)
    dist, pos, neg = mining_inputs(query, key, query_ids, key_ids, distance, normalize_embeddings)
    return checked(_semi_hard(dist, pos, neg, margin, select), pos, neg, "semi_hard_triplets")


class SemiHardMiner(Miner):
    """Module form of :func:`semi_hard_triplets`.

    Example:
        >>> import torch
        >>> from contrastkit.miners import SemiHardMiner
        >>> t = SemiHardMiner(margin=0.2, select="hardest")(torch.randn(8, 4), query_ids=torch.arange(4).repeat(2))
    """

    kind = "semi_hard_triplets"

    def __init__(
        self,
        margin: float = 0.2,
        *,
        select: str = "all",
        distance: str = "euclidean",
        normalize_embeddings: bool = True,
    ) -> None:
        super().__init__(distance, normalize_embeddings)
        check_choice(select, "select", SELECT)
        self.margin = margin
        self.select = select

    def mine(self, dist: Tensor, pos: Tensor, neg: Tensor) -> Triplets:
        return _semi_hard(dist, pos, neg, self.margin, self.select)
