"""Shared pieces of the distance-and-margin losses (contrastive, triplet)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from contrastkit._checks import check_choice, check_pair_inputs, compute_dtype
from contrastkit.distances import METRICS, pairwise_distance
from contrastkit.losses._base import LossModule

MARGIN_REDUCTIONS = ("mean", "mean_nonzero", "sum", "none")


def check_margin_options(*, reduction: str, distance: str, **_: object) -> None:
    """The checks of a margin loss's options that need no tensor (its module runs them once)."""
    check_choice(reduction, "reduction", MARGIN_REDUCTIONS)
    check_choice(distance, "distance", METRICS)


class MinedLossModule(LossModule):
    """The module form of a margin loss, with an optional ``miner``: when ``forward`` is given
    no mined indices (the function's ``mined`` input), the miner mines them from the batch."""

    extra_options: ClassVar[dict[str, Any]] = {"miner": None}
    mined: ClassVar[str]

    def _store(self, options: dict[str, Any], *, miner: nn.Module | None) -> None:
        super()._store(options)
        self.miner = miner

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        *,
        query_ids: Tensor,
        key_ids: Tensor | None = None,
        **mined: Any,
    ) -> Tensor:
        if mined.get(self.mined) is None and self.miner is not None:
            mined[self.mined] = self.miner(query, key, query_ids=query_ids, key_ids=key_ids)
        return super().forward(query, key, query_ids=query_ids, key_ids=key_ids, **mined)


def distance_table(
    query: Tensor,
    key: Tensor | None,
    query_ids: Tensor,
    key_ids: Tensor | None,
    distance: str,
    normalize_embeddings: bool,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """Validate inputs; return the (N, M) distance table, query ids, key ids and the key tensor."""
    check_choice(distance, "distance", METRICS)
    query, key, qids, kids = check_pair_inputs(query, key, query_ids, key_ids)
    dtype = compute_dtype(query, key)
    q = query.to(dtype)
    k = q if key is None else key.to(dtype)
    dist = pairwise_distance(q, k, distance, normalize_embeddings=normalize_embeddings)
    return dist, qids, kids, k


def check_indices(indices: tuple[Tensor, ...], n_rows: int, n_cols: int, what: str) -> None:
    """Check mined indices: anchors index query rows, the others index key rows."""
    for j, idx in enumerate(indices):
        if not isinstance(idx, Tensor) or idx.dim() != 1:
            raise ValueError(f"{what}[{j}] must be a 1-D index tensor, got {type(idx).__name__}.")
        if idx.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"{what}[{j}] must hold integer indices, got dtype {idx.dtype}.")
    lengths = [int(i.numel()) for i in indices]
    if len(set(lengths)) > 1 and len(indices) == 3:
        raise ValueError(
            f"{what} index tensors must have equal lengths, got {sorted(set(lengths))}."
        )
    if len(indices) == 4 and (lengths[0] != lengths[1] or lengths[2] != lengths[3]):
        # unequal lengths would otherwise broadcast silently when indexing the distance table
        raise ValueError(
            f"{what}: anchor_pos and positive, and anchor_neg and negative, must have equal "
            f"lengths, got {lengths[0]} and {lengths[1]}, {lengths[2]} and {lengths[3]}."
        )
    for j, idx in enumerate(indices):
        bound = n_rows if j == 0 or (len(indices) == 4 and j == 2) else n_cols
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= bound):
            raise ValueError(
                f"{what}[{j}] has indices outside [0, {bound}); were they mined on another batch?"
            )


def reduce_terms(terms: Tensor, reduction: str) -> Tensor:
    """Reduce per-pair or per-triplet losses; empty inputs give a zero still on the graph."""
    if reduction == "none":
        return terms
    if reduction == "sum" or terms.numel() == 0:
        return terms.sum()
    if reduction == "mean":
        return terms.mean()
    nonzero = (terms > 0).sum()
    return terms.sum() / nonzero.clamp_min(1)
