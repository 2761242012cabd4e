"""The gathered form of the id-based losses (torch.distributed), shared by all of them.

Each process keeps its own query rows and contrasts them with every process's keys (or, for a
self-contrast, every process's rows), gathered with :func:`contrastkit.distributed.all_gather`.
The value returned on each process is scaled so that the average over processes — what
data-parallel gradient averaging differentiates — is the loss of the global batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from contrastkit import distributed as dist
from contrastkit.losses._chunked import positive_counts

__all__ = ["GATHER_KINDS", "check_gather", "gathered_loss"]

GATHER_KINDS = ("instances", "labels")


def reduce_gathered(per_row: Tensor, keep: Tensor, reduction: str) -> Tensor:
    """This rank's share of a global reduction, scaled for gradient averaging over ranks."""
    if reduction == "none":
        return per_row
    total = per_row.sum() * dist.world_size()
    if reduction == "sum":
        return total
    n = dist.all_reduce_sum(keep.sum())
    return total / n if int(n) else total * 0.0


def gathered_loss(
    direction: Callable[..., Tensor],
    query: Tensor,
    key: Tensor | None,
    *,
    query_ids: Tensor,
    key_ids: Tensor | None,
    negatives: Tensor | None,
    negative_ids: Tensor | None,
    symmetric: bool,
    offset: bool,
    reduction: str,
    **common,
) -> Tensor:
    """``direction`` (one direction of an id-based loss, with a ``rows`` option) over the global
    batch of a process group; see :func:`~contrastkit.losses.functional.info_nce`'s ``gather``."""
    qids = torch.as_tensor(query_ids, device=query.device)
    kids = qids if key is None or key_ids is None else torch.as_tensor(key_ids, device=key.device)
    shift = dist.instance_offset(qids, kids) if offset else 0
    q_all, qids_all = dist.all_gather(query), dist.gather_ids(qids + shift)
    mine = dist.local_rows(query.shape[0], query.device)
    if key is None:
        per_row = direction(
            q_all,
            None,
            query_ids=qids_all,
            key_ids=None,
            negatives=negatives,
            negative_ids=negative_ids,
            reduction="none",
            rows=mine,
            **common,
        )
        keep = positive_counts(qids_all[mine], qids_all, self_contrast=True) > 0
        return reduce_gathered(per_row, keep, reduction)
    k_all, kids_all = dist.all_gather(key), dist.gather_ids(kids + shift)
    per_row = direction(
        query,
        k_all,
        query_ids=qids_all[mine],
        key_ids=kids_all,
        negatives=negatives,
        negative_ids=negative_ids,
        reduction="none",
        **common,
    )
    keep = positive_counts(qids_all[mine], kids_all, self_contrast=False) > 0
    loss = reduce_gathered(per_row, keep, reduction)
    if not symmetric:
        return loss
    mine_k = dist.local_rows(key.shape[0], key.device)
    back = direction(
        key,
        q_all,
        query_ids=kids_all[mine_k],
        key_ids=qids_all,
        negatives=None,
        negative_ids=None,
        reduction="none",
        **common,
    )
    keep_k = positive_counts(kids_all[mine_k], qids_all, self_contrast=False) > 0
    return 0.5 * (loss + reduce_gathered(back, keep_k, reduction))


def check_gather(gather: str | None) -> None:
    """Raise on a ``gather`` value other than None, "instances" or "labels"."""
    if gather is not None and gather not in GATHER_KINDS:
        raise ValueError(
            f"gather must be None, 'instances' (ids numbered per rank, e.g. SimCLR) or "
            f"'labels' (class labels, e.g. SupCon), got {gather!r}."
        )
