"""The gathered form of the id-based losses (torch.distributed), shared by all of them.

Each process keeps its own query rows and contrasts them with every process's keys (or, for a
self-contrast, every process's rows), gathered with :func:`contrastkit.distributed.all_gather`.
The value returned on each process is scaled so that the average over processes — what
data-parallel gradient averaging differentiates — is the loss of the global batch.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from contrastkit import distributed as dist
from contrastkit.losses._chunked import positive_counts

__all__ = ["BOOL_GATHER", "GATHER_KINDS", "check_gather", "gathered_loss", "resolve_gather"]

GATHER_KINDS = ("instances", "labels")

#: The functions whose ``gather`` was a bool before it took the kinds above, and the kind that
#: ``gather=True`` meant in each: for them a bool still works, with a DeprecationWarning.
BOOL_GATHER = {
    "nt_xent": "instances",
    "sup_con": "labels",
    "barlow_twins": "instances",
    "vicreg": "instances",
    "vicreg_terms": "instances",
    "swav": "instances",
    "sinkhorn_knopp": "instances",
    "update_center": "instances",
}


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
    q_sizes = dist.row_sizes(query.shape[0], query.device)  # one exchange serves three uses
    q_all = dist.all_gather(query, sizes=q_sizes)
    qids_all = dist.gather_ids(qids + shift, sizes=q_sizes)
    mine = dist.local_rows(query.shape[0], sizes=q_sizes)

    def local(a, ids_a, b_all, ids_b_all, *, rows=None, **extra) -> Tensor:
        """This rank's rows of ``a`` (``rows`` of it for a self-contrast, ``b_all`` None)
        against every rank's ``b``, reduced for the group."""
        per_row = direction(
            a, b_all, query_ids=ids_a, rows=rows, reduction="none", **extra, **common
        )
        own = ids_a if rows is None else ids_a[rows]
        keep = positive_counts(own, ids_b_all, self_contrast=b_all is None) > 0
        return reduce_gathered(per_row, keep, reduction)

    if key is None:  # self-contrast over the gathered rows; this rank computes its own
        return local(
            q_all,
            qids_all,
            None,
            qids_all,
            key_ids=None,
            rows=mine,
            negatives=negatives,
            negative_ids=negative_ids,
        )
    k_sizes = dist.row_sizes(key.shape[0], key.device)
    k_all = dist.all_gather(key, sizes=k_sizes)
    kids_all = dist.gather_ids(kids + shift, sizes=k_sizes)
    loss = local(
        query,
        qids_all[mine],
        k_all,
        kids_all,
        key_ids=kids_all,
        negatives=negatives,
        negative_ids=negative_ids,
    )
    if not symmetric:
        return loss
    mine_k = dist.local_rows(key.shape[0], sizes=k_sizes)
    back = local(
        key,
        kids_all[mine_k],
        q_all,
        qids_all,
        key_ids=qids_all,
        negatives=None,
        negative_ids=None,
    )
    return 0.5 * (loss + back)


def check_gather(gather: str | None) -> None:
    """Raise on a ``gather`` value other than None, "instances" or "labels"."""
    if gather is not None and (not isinstance(gather, str) or gather not in GATHER_KINDS):
        raise ValueError(
            f"gather must be None, 'instances' (ids numbered per rank, e.g. SimCLR) or "
            f"'labels' (class labels, e.g. SupCon), got {gather!r}."
        )


def resolve_gather(gather: str | bool | None, loss_name: str, stacklevel: int = 3) -> str | None:
    """Check ``gather`` and return it; for the losses in :data:`BOOL_GATHER` a bool is mapped
    to its kind (``False`` to None) with a DeprecationWarning that names the new value."""
    if isinstance(gather, bool) and loss_name in BOOL_GATHER:
        kind = BOOL_GATHER[loss_name] if gather else None
        warnings.warn(
            f"{loss_name}: gather={gather} is deprecated; gather takes None, 'instances' or "
            f"'labels' as in info_nce. Pass gather={kind!r}.",
            DeprecationWarning,
            stacklevel=stacklevel,
        )
        return kind
    check_gather(gather)
    return gather
