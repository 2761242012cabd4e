"""Distance-weighted sampling of negatives on the unit hypersphere.

Reference: Wu, Manmatha, Smola, Krähenbühl 2017, "Sampling Matters in Deep Embedding Learning".
"""

from __future__ import annotations

import torch
from torch import Tensor

from contrastkit.miners._base import Miner, checked, empty_triplets, mining_inputs
from contrastkit.pairs import Triplets

__all__ = ["DistanceWeightedMiner", "distance_weighted_triplets", "distance_weights"]


def distance_weights(
    dist: Tensor, neg: Tensor, dim: int, cutoff: float = 0.5, nonzero_loss_cutoff: float = 1.4
) -> Tensor:
    """Row-normalised sampling probabilities (N, M) of each negative for each anchor.

    On the unit sphere in ``dim`` dimensions, pairwise distances of uniformly spread points have
    density ``q(d) ∝ d^(dim−2) · (1 − d²/4)^((dim−3)/2)``. Sampling negatives with weight
    ``1/q(d)`` spreads them evenly over distances. Distances are clipped below at ``cutoff``
    (bounds the variance), and negatives at ``d ≥ nonzero_loss_cutoff`` get weight zero (they
    would give zero loss). Rows without any eligible negative are all zero.
    """
    d = dist.clamp(min=cutoff)
    inside = (1.0 - 0.25 * d * d).clamp_min(torch.finfo(d.dtype).tiny)
    log_w = -(dim - 2.0) * torch.log(d) - ((dim - 3.0) / 2.0) * torch.log(inside)
    eligible = neg & (dist < nonzero_loss_cutoff)
    log_w = log_w.masked_fill(~eligible, float("-inf"))
    row_max = log_w.amax(dim=1, keepdim=True)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    w = torch.exp(log_w - row_max)
    total = w.sum(dim=1, keepdim=True)
    return torch.where(total > 0, w / total.clamp_min(torch.finfo(w.dtype).tiny), w)


def _distance_weighted(
    dist: Tensor,
    pos: Tensor,
    neg: Tensor,
    dim: int,
    cutoff: float,
    nonzero_loss_cutoff: float,
    generator: torch.Generator | None,
) -> Triplets:
    probs = distance_weights(dist, neg, dim, cutoff, nonzero_loss_cutoff)
    a, p = pos.nonzero(as_tuple=True)
    usable = probs[a].sum(dim=1) > 0
    a, p = a[usable], p[usable]
    if a.numel() == 0:
        return empty_triplets(dist.device)
    n = torch.multinomial(probs[a], 1, generator=generator).flatten()
    return Triplets(a, p, n)


def distance_weighted_triplets(
    query: Tensor,
    key: Tensor | None = None,
    *,
    query_ids: Tensor,
    key_ids: Tensor | None = None,
    cutoff: float = 0.5,
    nonzero_loss_cutoff: float = 1.4,
    generator: torch.Generator | None = None,
) -> Triplets:
    """For every positive pair, one negative drawn with probability ∝ 1/q(d(a, n)).

    Embeddings are L2-normalised and compared by euclidean distance (the weighting assumes
    points on the unit sphere).

    Args:
        query: (N, D). key: optional (M, D). query_ids, key_ids: integer ids.
        cutoff: distances below this are clipped to it (0.5 in the paper).
        nonzero_loss_cutoff: negatives at this distance or farther are never drawn (1.4).
        generator: a ``torch.Generator`` for reproducible draws.

    Returns:
        :class:`Triplets`, one per positive pair whose anchor has an eligible negative.

    Example:
        >>> import torch
        >>> from contrastkit.miners import distance_weighted_triplets
        >>> g = torch.Generator().manual_seed(0)
        >>> t = distance_weighted_triplets(torch.randn(8, 16), query_ids=torch.arange(4).repeat(2), generator=g)
    """
    dist, pos, neg = mining_inputs(query, key, query_ids, key_ids, "euclidean", True)
    t = _distance_weighted(dist, pos, neg, query.shape[1], cutoff, nonzero_loss_cutoff, generator)
    return checked(t, pos, neg, "distance_weighted_triplets")


class DistanceWeightedMiner(Miner):
    """Module form of :func:`distance_weighted_triplets`; ``seed`` makes the draws reproducible.

    Example:
        >>> import torch
        >>> from contrastkit.miners import DistanceWeightedMiner
        >>> t = DistanceWeightedMiner(seed=0)(torch.randn(8, 16), query_ids=torch.arange(4).repeat(2))
    """

    kind = "distance_weighted_triplets"

    def __init__(
        self, cutoff: float = 0.5, nonzero_loss_cutoff: float = 1.4, *, seed: int | None = None
    ) -> None:
        super().__init__("euclidean", True)
        self.cutoff = cutoff
        self.nonzero_loss_cutoff = nonzero_loss_cutoff
        self.generator = None if seed is None else torch.Generator().manual_seed(seed)
        self._dim = 0

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        *,
        query_ids: Tensor,
        key_ids: Tensor | None = None,
    ) -> Triplets:
        self._dim = query.shape[1] if query.dim() == 2 else 0
        return super().forward(query, key, query_ids=query_ids, key_ids=key_ids)

    def mine(self, dist: Tensor, pos: Tensor, neg: Tensor) -> Triplets:
        gen = self.generator
        home = dist.device
        if gen is not None and gen.device != home:
            # draw on the generator's device, then return the indices to the inputs' device
            dist, pos, neg = dist.to(gen.device), pos.to(gen.device), neg.to(gen.device)
        t = _distance_weighted(
            dist, pos, neg, self._dim, self.cutoff, self.nonzero_loss_cutoff, gen
        )
        return Triplets(*(x.to(home) for x in t))
