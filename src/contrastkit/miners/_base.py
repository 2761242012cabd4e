"""What every miner shares: validated inputs, a distance table and the pair masks."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from contrastkit._checks import (
    NO_NEGATIVES,
    NO_POSITIVES,
    check_choice,
    check_pair_inputs,
    warn_degenerate,
)
from contrastkit.distances import METRICS, pairwise_distance
from contrastkit.pairs import Triplets, pair_masks

_NO_TRIPLET = (
    "the miner returns no triplets, so a triplet or pair loss on them is 0 (with zero "
    "gradients) and the batch teaches nothing"
)
#: What a miner returns on a degenerate batch (the text of its warning).
DEGENERATE_VALUES = {NO_NEGATIVES: _NO_TRIPLET, NO_POSITIVES: _NO_TRIPLET}


def mining_inputs(
    query: Tensor,
    key: Tensor | None,
    query_ids: Tensor,
    key_ids: Tensor | None,
    distance: str,
    normalize_embeddings: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """Return the (N, M) distance table (no gradient) and the positive / negative masks."""
    check_choice(distance, "distance", METRICS)
    query, key, qids, kids = check_pair_inputs(query, key, query_ids, key_ids)
    with torch.no_grad():
        q = query.detach().float() if query.dtype != torch.float64 else query.detach()
        k = q if key is None else key.detach().to(q.dtype)
        dist = pairwise_distance(q, k, distance, normalize_embeddings=normalize_embeddings)
    pos, neg = pair_masks(qids, None if key is None else kids)
    return dist, pos, neg


def checked(t: Triplets, pos: Tensor, neg: Tensor, name: str) -> Triplets:
    """Return the mined triplets ``t``; when there are none, say why if the labels are why.

    With no triplet, the (N, M) pair masks tell whether the batch had no negative pair (one
    class) or no positive pair (no label shared): then a :class:`DegenerateBatchWarning`
    names the miner (``name``), once per process. The check costs one host sync, and only when
    nothing was mined: the number of triplets is known without one. Valid labels whose
    triplets are all easy warn nothing (a zero loss is then right).

    Example:
        >>> ids = torch.tensor([0, 0, 1, 1])
        >>> pos, neg = pair_masks(ids, None)
        >>> checked(empty_triplets(ids.device), pos, neg, "demo").anchor.numel()
        0
    """
    if t.anchor.numel() == 0:
        flags = torch.stack([~neg.any(), ~pos.any()]).tolist()
        for problem, bad in zip((NO_NEGATIVES, NO_POSITIVES), flags, strict=True):
            if bad:
                warn_degenerate(name, problem, DEGENERATE_VALUES[problem])
    return t


def empty_triplets(device: torch.device) -> Triplets:
    e = torch.empty(0, dtype=torch.long, device=device)
    return Triplets(e, e.clone(), e.clone())


class Miner(nn.Module):
    """Base class: ``miner(query, key=None, *, query_ids, key_ids=None) -> Triplets``.

    Subclasses implement :meth:`mine` on a distance table and the pair masks, and set
    ``kind`` to the name of their function (the name of their degenerate-batch warning).
    Mining never builds a graph: indices are chosen under ``torch.no_grad``.
    """

    kind: ClassVar[str] = "miner"

    def __init__(self, distance: str = "euclidean", normalize_embeddings: bool = True) -> None:
        super().__init__()
        check_choice(distance, "distance", METRICS)
        self.distance = distance
        self.normalize_embeddings = normalize_embeddings

    def mine(self, dist: Tensor, pos: Tensor, neg: Tensor) -> Triplets:  # pragma: no cover
        raise NotImplementedError

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        *,
        query_ids: Tensor,
        key_ids: Tensor | None = None,
    ) -> Triplets:
        dist, pos, neg = mining_inputs(
            query, key, query_ids, key_ids, self.distance, self.normalize_embeddings
        )
        with torch.no_grad():
            return checked(self.mine(dist, pos, neg), pos, neg, self.kind)
