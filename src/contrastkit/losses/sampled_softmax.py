"""In-batch sampled softmax with logQ correction, for two-tower retrieval.

Reference:
    Yi, Yang, Hong, Cheng, Heldt, Kumthekar, Zhao, Wei, Chi 2019, "Sampling-Bias-Corrected
    Neural Modeling for Large Corpus Item Recommendations", RecSys.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit import distributed as dist
from contrastkit._checks import (
    NO_NEGATIVES,
    check_choice,
    check_embeddings,
    check_ids,
    check_positive,
    compute_dtype,
    warn_degenerate,
)
from contrastkit.distances import normalize
from contrastkit.losses._base import TemperatureLossModule
from contrastkit.losses._contrast import NO_NEGATIVES_VALUE, validate_reduction
from contrastkit.losses._gather import check_gather, reduce_gathered

__all__ = ["SIMILARITIES", "SampledSoftmaxLoss", "sampled_softmax"]

SIMILARITIES = ("cosine", "dot")
#: the per-call inputs of :func:`sampled_softmax` (its other keywords are options)
INPUTS = ("query_ids", "key_ids", "key_log_q")


def _check_options(
    *, temperature: float | Tensor, similarity: str, reduction: str, **_: object
) -> None:
    """The checks of :func:`sampled_softmax`'s options that need no tensor; its module runs
    them once, when built."""
    validate_reduction(reduction)
    if not isinstance(temperature, Tensor):  # a tensor τ is checked with the inputs
        check_positive(temperature, "temperature", "Typical values are 0.05–0.2 (cosine).")
    check_choice(similarity, "similarity", SIMILARITIES)


def _optional_ids(ids: Tensor | None, n: int, name: str, device: torch.device) -> Tensor | None:
    if ids is None:
        return None
    return check_ids(ids, n, name, name.split("_")[0]).to(device)


def sampled_softmax(
    query: Tensor,
    key: Tensor,
    *,
    query_ids: Tensor | None = None,
    key_ids: Tensor | None = None,
    key_log_q: Tensor | None = None,
    temperature: float | Tensor = 0.05,
    similarity: str = "cosine",
    reduction: str = "mean",
    gather: str | None = None,
) -> Tensor:
    """In-batch sampled softmax (Yi et al. 2019): row ``i``'s positive is key ``i``, the other
    keys of the batch are its negatives, each corrected for how often it is sampled.

    With ``s`` the cosine (or dot) similarity and ``q_j`` the probability that key ``j``'s item
    is in a batch (its training frequency / M)::

        logit_ij = s(query_i, key_j) / τ − log q_j
        loss_i   = −logit_ii + log Σ_{j ∈ C(i)} exp(logit_ij)

    The candidates ``C(i)`` are every key but those that are the same item as row ``i``'s
    positive (``key_ids[j] == key_ids[i]``, j ≠ i: the item appears twice in the batch) and,
    when ``query_ids`` are given, the keys of the other rows of the same query (``query_ids[j]
    == query_ids[i]``: the user's other items in the batch are known positives, not
    negatives). The logQ term corrects the bias of in-batch negatives towards popular items
    (they are sampled in proportion to their frequency); without ``key_log_q`` and with
    distinct ids the loss is exactly :func:`~contrastkit.losses.functional.info_nce` with
    ``query_ids = key_ids = arange(B)``.

    Args:
        query: (B, D) query embeddings (users).
        key: (B, D) key embeddings (items), row-aligned: key ``i`` is query ``i``'s positive.
        query_ids: (B,) integer ids of the queries (users), or None (no masking by query).
        key_ids: (B,) integer ids of the keys (items), or None (every key distinct).
        key_log_q: (B,) log sampling probability of each key's item, or None (no correction).
        temperature: τ > 0, a float or a (learnable) scalar tensor; cosine similarity wants
            small values (0.05 as in Yi et al.), dot products ≈ 1.
        similarity: ``"cosine"`` (default) or ``"dot"``.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` ((B,) per-row losses).
        gather: under torch.distributed, contrast each query with every rank's keys (an
            autograd-aware all-gather of the keys, their ids and log q): ``"labels"`` when the
            ids mean the same on every rank (item and user indices: duplicates across ranks
            are masked too), ``"instances"`` when each rank numbers them from 0 (they are
            offset per rank). Without ids the gathered keys are all distinct. The loss is
            scaled as in :func:`~contrastkit.losses.functional.info_nce` (averaged over ranks
            it is the loss of the global batch). No effect outside a process group.

    Returns:
        A scalar (float32, or float64 for float64 inputs), or (B,) with ``reduction="none"``.

    Raises:
        ValueError: on shapes that differ, ids or ``key_log_q`` of the wrong length or dtype,
            non-finite values, or a temperature ≤ 0.

    Warns:
        DegenerateBatchWarning: once per process when no row has a negative (one key, or one
            item over the whole batch): the loss is then 0 with zero gradients.

    Example:
        >>> import torch
        >>> from contrastkit.losses.sampled_softmax import sampled_softmax
        >>> users, items = torch.randn(6, 16), torch.randn(6, 16)
        >>> item_ids = torch.tensor([3, 8, 3, 5, 1, 9])            # item 3 twice
        >>> log_q = torch.log(torch.tensor([0.3, 0.1, 0.3, 0.2, 0.05, 0.05]))
        >>> loss = sampled_softmax(users, items, key_ids=item_ids, key_log_q=log_q)
    """
    _check_options(temperature=temperature, similarity=similarity, reduction=reduction)
    check_gather(gather)
    check_embeddings(query, "query")
    check_embeddings(key, "key")
    if query.shape != key.shape:
        raise ValueError(
            f"query and key must have the same shape (B, D), row i of key being query i's "
            f"positive; got {tuple(query.shape)} and {tuple(key.shape)}."
        )
    if key.device != query.device:
        raise ValueError(
            f"query is on {query.device} but key is on {key.device}; move both to one device."
        )
    check_positive(temperature, "temperature", "Typical values are 0.05–0.2 (cosine).")
    n, device = query.shape[0], query.device
    qids = _optional_ids(query_ids, n, "query_ids", device)
    kids = _optional_ids(key_ids, n, "key_ids", device)
    if key_log_q is not None:
        key_log_q = torch.as_tensor(key_log_q, device=device)
        if key_log_q.shape != (n,) or not key_log_q.is_floating_point():
            raise ValueError(
                f"key_log_q must be a float (B,) = ({n},) tensor of log sampling probabilities "
                f"(log of each key item's training frequency / M), got dtype "
                f"{key_log_q.dtype} shape {tuple(key_log_q.shape)}."
            )
        if not bool(torch.isfinite(key_log_q).all()):
            raise ValueError(
                "key_log_q holds non-finite values; an item never seen in training has q = 0: "
                "count each item at least once (log(max(count, 1) / M))."
            )
    dtype = compute_dtype(query, key)
    q, k = query.to(dtype), key.to(dtype)
    if similarity == "cosine":
        q, k = normalize(q), normalize(k)
    tau = temperature.to(dtype) if isinstance(temperature, Tensor) else temperature
    log_q = None if key_log_q is None else key_log_q.to(dtype)
    gathered = gather is not None and dist.is_distributed()
    if gathered:
        sizes = dist.row_sizes(n, device)
        mine = dist.local_rows(n, sizes=sizes)
        k_all = dist.all_gather(k, sizes=sizes)
        shift = 0
        if gather == "instances" and (qids is not None or kids is not None):
            shift = dist.instance_offset(*[t for t in (qids, kids) if t is not None])
        qids_all = None if qids is None else dist.gather_ids(qids + shift, sizes=sizes)
        kids_all = None if kids is None else dist.gather_ids(kids + shift, sizes=sizes)
        log_q = None if log_q is None else dist.all_gather(log_q, sizes=sizes)
    else:
        mine, k_all, qids_all, kids_all = slice(0, n), k, qids, kids
    positive = torch.arange(mine.start, mine.stop, device=device)
    if log_q is not None and not isinstance(tau, Tensor):  # one fused pass: −log q + (q·k)/τ
        logits = torch.addmm(-log_q[None, :], q, k_all.T, alpha=1.0 / tau)
    else:
        logits = q @ k_all.T / tau
        if log_q is not None:
            logits = logits - log_q[None, :]
    rows = torch.arange(n, device=device)
    masked = None
    for ids in (kids_all, qids_all):
        if ids is not None:
            same = ids[None, :] == ids[positive][:, None]
            masked = same if masked is None else masked.logical_or_(same)
    if masked is None:
        masked = torch.zeros_like(logits, dtype=torch.bool)
    masked[rows, positive] = False
    # one fused log-softmax: logsumexp over the unmasked keys − the positive's logit
    # (logits is this call's own tensor, and no backward needs its values: fill in place)
    per_row = F.cross_entropy(
        logits.masked_fill_(masked, float("-inf")), positive, reduction="none"
    )
    has_negative = masked.sum(dim=1) < k_all.shape[0] - 1
    any_negative = has_negative.any()
    if gathered:
        any_negative = dist.all_reduce_sum(any_negative.long()) > 0
    if not bool(any_negative):
        warn_degenerate("sampled_softmax", NO_NEGATIVES, NO_NEGATIVES_VALUE)
        per_row = per_row * 0.0  # exactly zero, still on the graph
    if gathered:
        return reduce_gathered(per_row, torch.ones_like(has_negative), reduction)
    if reduction == "none":
        return per_row
    return per_row.sum() if reduction == "sum" else per_row.mean()


class SampledSoftmaxLoss(
    TemperatureLossModule,
    function=sampled_softmax,
    check=_check_options,
    inputs=INPUTS,
    positional=1,
):
    """Module form of :func:`sampled_softmax`:
    ``loss_fn(query, key, *, query_ids=None, key_ids=None, key_log_q=None)``.

    Its options are :func:`sampled_softmax`'s, plus ``learn_temperature``: τ is kept as log τ,
    a buffer, or a parameter that the optimiser trains.

    Example:
        >>> import torch
        >>> from contrastkit.losses.sampled_softmax import SampledSoftmaxLoss
        >>> loss_fn = SampledSoftmaxLoss(temperature=0.05)
        >>> users, items = torch.randn(8, 16), torch.randn(8, 16)
        >>> loss = loss_fn(users, items, key_ids=torch.arange(8), key_log_q=torch.zeros(8))
    """
