"""Index tuples exchanged between miners and the pair/triplet losses.

Indices into ``query`` are anchors; indices into ``key`` (or into ``query`` again when
``key is None``) are the positives and negatives.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["Pairs", "Triplets", "all_pairs", "all_triplets", "pair_masks", "to_pairs"]


class Triplets(NamedTuple):
    """(T,) anchor, positive and negative indices; ``ids[anchor] == ids[positive] != ids[negative]``."""

    anchor: Tensor
    positive: Tensor
    negative: Tensor


class Pairs(NamedTuple):
    """Positive pairs (anchor_pos[i], positive[i]) and negative pairs (anchor_neg[j], negative[j])."""

    anchor_pos: Tensor
    positive: Tensor
    anchor_neg: Tensor
    negative: Tensor


def pair_masks(query_ids: Tensor, key_ids: Tensor | None) -> tuple[Tensor, Tensor]:
    """(N, M) boolean masks of positive and negative pairs; the self-pair is neither when ``key_ids is None``."""
    kids = query_ids if key_ids is None else key_ids
    same = query_ids[:, None] == kids[None, :]
    if key_ids is None:
        eye = torch.eye(query_ids.numel(), dtype=torch.bool, device=query_ids.device)
        return same & ~eye, ~same
    return same, ~same


def all_pairs(query_ids: Tensor, key_ids: Tensor | None = None) -> Pairs:
    """Every positive and every negative pair (self-pairs excluded when ``key_ids is None``)."""
    pos, neg = pair_masks(query_ids, key_ids)
    a_p, p = pos.nonzero(as_tuple=True)
    a_n, n = neg.nonzero(as_tuple=True)
    return Pairs(a_p, p, a_n, n)


def all_triplets(query_ids: Tensor, key_ids: Tensor | None = None) -> Triplets:
    """Every valid (anchor, positive, negative) triplet, in row-major order."""
    pos, neg = pair_masks(query_ids, key_ids)
    valid = pos[:, :, None] & neg[:, None, :]
    a, p, n = valid.nonzero(as_tuple=True)
    return Triplets(a, p, n)


def to_pairs(indices: Pairs | Triplets | tuple[Tensor, ...]) -> Pairs:
    """Accept pairs (4 tensors) or triplets (3 tensors); triplets give their unique a–p and a–n pairs."""
    if len(indices) == 4:
        return Pairs(*indices)
    if len(indices) == 3:
        a, p, n = indices
        ap = torch.unique(torch.stack([a, p]), dim=1)
        an = torch.unique(torch.stack([a, n]), dim=1)
        return Pairs(ap[0], ap[1], an[0], an[1])
    raise ValueError(
        f"pairs must be 4 index tensors (anchor_pos, positive, anchor_neg, negative) or 3 "
        f"(anchor, positive, negative), got {len(indices)}."
    )
