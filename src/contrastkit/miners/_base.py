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
    warn_label_problems,
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
    name: str,
) -> tuple[Tensor, Tensor, Tensor]:
    """Return the (N, M) distance table (no gradient) and the positive / negative masks.

    Warns once per process (``name``: the miner) when the ids allow no triplet: one id in the
    batch (no negatives) or no id shared by two rows (no positives). This costs one host
    sync, on the labels only, until it has warned.
    """
    check_choice(distance, "distance", METRICS)
    query, key, qids, kids = check_pair_inputs(query, key, query_ids, key_ids)
    warn_label_problems(name, qids, None if key is None else kids, DEGENERATE_VALUES)
    with torch.no_grad():
        q = query.detach().float() if query.dtype != torch.float64 else query.detach()
        k = q if key is None else key.detach().to(q.dtype)
        dist = pairwise_distance(q, k, distance, normalize_embeddings=normalize_embeddings)
    pos, neg = pair_masks(qids, None if key is None else kids)
    return dist, pos, neg


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
            query, key, query_ids, key_ids, self.distance, self.normalize_embeddings, self.kind
        )
        with torch.no_grad():
            return self.mine(dist, pos, neg)
