"""The shared core of every id-based contrastive loss: who is a candidate, who is a positive.

Positives are defined by integer ids: query row ``i`` and key column ``j`` are a positive pair
when ``query_ids[i] == key_ids[j]``. With ``key=None`` the query set is contrasted with itself
and the self-pair ``(i, i)`` is removed from both the positives and the candidates. Extra
negatives (a queue, a memory bank, mined hard negatives) are appended as columns that are never
positives; when ``negative_ids`` are given, extra negatives that share the row's id are removed
from the candidates (a stale copy of the same instance or class is never a false negative).

This module is private: the public surface is the loss functions built on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from contrastkit._checks import (
    NO_NEGATIVES,
    NO_POSITIVES,
    check_choice,
    check_embeddings,
    check_ids,
    check_pair_inputs,
    check_positive,
    compute_dtype,
    has_no_negatives,
    warn_degenerate,
)
from contrastkit.distances import METRICS, normalize, pairwise_similarity

REDUCTIONS = ("mean", "sum", "none")
#: The per-call keyword inputs of the id-based losses; their other keywords are options.
ID_INPUTS = ("query_ids", "key_ids", "negatives", "negative_ids")


@dataclass
class PairScores:
    """Scaled similarities of each query row to every candidate column.

    Attributes:
        logits: (N, C) similarity / temperature; entries that are not candidates hold -inf.
        positive: (N, C) bool, True where the column is a positive of the row.
        candidate: (N, C) bool, True where the column takes part in the row's contrast.
        n_key: number of leading columns that come from ``key`` (the rest are extra negatives).
    """

    logits: Tensor
    positive: Tensor
    candidate: Tensor
    n_key: int


@dataclass
class PairInputs:
    """Validated inputs of an id-based loss, in the compute dtype.

    Attributes:
        q: (N, D) queries (L2-normalised for cosine similarity).
        k: (M, D) keys; the queries themselves when ``self_contrast``.
        qids, kids: (N,) and (M,) int64 ids.
        negatives: (K, D) extra negatives (normalised like the keys) or None.
        negative_ids: (K,) int64 ids of the extra negatives, or None.
        temperature: float, or a scalar tensor in the compute dtype.
        self_contrast: the query set is contrasted with itself (``key=None``).
    """

    q: Tensor
    k: Tensor
    qids: Tensor
    kids: Tensor
    negatives: Tensor | None
    negative_ids: Tensor | None
    temperature: float | Tensor
    self_contrast: bool


def prepare_pair_inputs(
    query: Tensor,
    key: Tensor | None,
    *,
    query_ids: Tensor,
    key_ids: Tensor | None,
    temperature: float | Tensor,
    similarity: str,
    negatives: Tensor | None,
    negative_ids: Tensor | None,
) -> PairInputs:
    """Check every input of an id-based loss and bring it to the compute dtype.

    Cosine similarity normalises queries, keys and negatives here; other metrics leave them.
    """
    query, key, qids, kids = check_pair_inputs(query, key, query_ids, key_ids)
    check_positive(temperature, "temperature", "Typical values are 0.05–0.5.")
    check_choice(similarity, "similarity", METRICS)
    dtype = compute_dtype(query, key, negatives)
    prep = normalize if similarity == "cosine" else (lambda x: x)
    q = prep(query.to(dtype))
    self_contrast = key is None
    k, kids = (q, qids) if self_contrast else (prep(key.to(dtype)), kids)
    if isinstance(temperature, Tensor):
        temperature = temperature.to(dtype)
    nids = None
    if negatives is not None:
        check_embeddings(negatives, "negatives", allow_empty=True)
        if negatives.shape[1] != q.shape[1]:
            raise ValueError(
                f"negatives must have the query's embedding dimension D={q.shape[1]}, got "
                f"D={negatives.shape[1]}."
            )
        negatives = prep(negatives.to(dtype))
        if negative_ids is not None:
            nids = check_ids(negative_ids, negatives.shape[0], "negative_ids", "negatives")
            nids = nids.to(qids.device)
    elif negative_ids is not None:
        raise ValueError("negative_ids was given without negatives; pass both or neither.")
    return PairInputs(q, k, qids, kids, negatives, nids, temperature, self_contrast)


def pair_scores(
    query: Tensor,
    key: Tensor | None,
    *,
    query_ids: Tensor,
    key_ids: Tensor | None,
    temperature: float | Tensor,
    similarity: str = "cosine",
    negatives: Tensor | None = None,
    negative_ids: Tensor | None = None,
) -> PairScores:
    """Validate the inputs and build the (N, M [+ K]) scaled similarity table with its masks."""
    x = prepare_pair_inputs(
        query,
        key,
        query_ids=query_ids,
        key_ids=key_ids,
        temperature=temperature,
        similarity=similarity,
        negatives=negatives,
        negative_ids=negative_ids,
    )
    return block_scores(x, similarity, 0, x.q.shape[0])


def block_scores(x: PairInputs, similarity: str, r0: int, r1: int) -> PairScores:
    """:class:`PairScores` of query rows ``r0:r1`` against every key and extra negative."""
    # Inputs are already normalised for cosine: a plain inner product is the cosine.
    metric = "dot" if similarity == "cosine" else similarity
    q, qids = x.q[r0:r1], x.qids[r0:r1]
    logits = pairwise_similarity(q, x.k, metric) / x.temperature
    positive = qids[:, None] == x.kids[None, :]
    candidate = torch.ones_like(positive)
    if x.self_contrast:
        rows = torch.arange(r1 - r0, device=q.device)
        candidate[rows, rows + r0] = False
        positive = positive & candidate
    n_key = logits.shape[1]
    if x.negatives is not None:
        neg_logits = pairwise_similarity(q, x.negatives, metric) / x.temperature
        neg_candidate = torch.ones_like(neg_logits, dtype=torch.bool)
        if x.negative_ids is not None:
            neg_candidate = qids[:, None] != x.negative_ids[None, :]
        logits = torch.cat([logits, neg_logits], dim=1)
        positive = torch.cat([positive, torch.zeros_like(neg_candidate)], dim=1)
        candidate = torch.cat([candidate, neg_candidate], dim=1)
    logits = logits.masked_fill(~candidate, float("-inf"))
    return PairScores(logits=logits, positive=positive, candidate=candidate, n_key=n_key)


def no_negatives(x: PairInputs) -> Tensor:
    """0-d bool: no row of ``x`` has a negative (one id over queries, keys and the extra
    negatives that ``negative_ids`` would remove). O(N + M + K) and no host sync.

    Example:
        >>> ids = torch.zeros(4, dtype=torch.long)
        >>> x = prepare_pair_inputs(torch.randn(4, 2), None, query_ids=ids, key_ids=None,
        ...     temperature=0.1, similarity="cosine", negatives=None, negative_ids=None)
        >>> bool(no_negatives(x))
        True
    """
    n_extra = 0 if x.negatives is None else x.negatives.shape[0]
    kids = None if x.self_contrast else x.kids
    return has_no_negatives(x.qids, kids, x.negative_ids, n_extra)


def rows_with_positive(
    positive: Tensor, *, ignore_rows_without_positive: bool, loss_name: str
) -> Tensor:
    """Count positives per row; raise (or mark rows to skip) where a row has none.

    Returns the (N,) number of positives per row.
    """
    n_pos, _ = check_positive_counts(
        positive.sum(dim=1),
        ignore_rows_without_positive=ignore_rows_without_positive,
        loss_name=loss_name,
    )
    return n_pos


#: What an id-based loss returns on a degenerate batch (the text of its warning).
NO_NEGATIVES_VALUE = (
    "the loss returned is 0 (still on the graph, with zero gradients), since with no "
    "negatives nothing is contrasted"
)
NO_POSITIVES_VALUE = (
    "every row is left out (ignore_rows_without_positive=True), so the loss returned is 0 "
    "(still on the graph, with zero gradients)"
)


def check_positive_counts(
    n_pos: Tensor,
    *,
    ignore_rows_without_positive: bool,
    loss_name: str,
    no_negatives: Tensor | None = None,
) -> tuple[Tensor, bool]:
    """Check (N,) positive counts and the batch's negatives with one host sync.

    Raises where a row has no positive (unless ``ignore_rows_without_positive``). Warns once
    per process (:class:`~contrastkit._checks.DegenerateBatchWarning`) when no row has a
    positive, or when ``no_negatives`` (a 0-d bool from
    :func:`~contrastkit._checks.has_no_negatives`) holds. Returns ``n_pos`` and whether the
    batch has no negatives, in which case the caller returns a zero loss.

    Example:
        >>> n_pos, no_neg = check_positive_counts(
        ...     torch.tensor([1, 1]), ignore_rows_without_positive=False, loss_name="info_nce"
        ... )
        >>> no_neg
        False
    """
    missing = n_pos == 0
    flags = [missing.any(), missing.all()]
    if no_negatives is not None:
        flags.append(no_negatives.to(missing.device))
    # The one sync of the check (the loss needed it before the degenerate-batch warning too).
    any_missing, all_missing, *rest = torch.stack(flags).tolist()
    if any_missing and not ignore_rows_without_positive:
        rows = missing.nonzero().flatten()
        raise ValueError(
            f"{loss_name}: {rows.numel()} of {n_pos.shape[0]} query rows have no positive "
            f"(first rows {rows[:8].tolist()}): no key shares their id, and a row's own "
            f"self-pair never counts. Give every row a positive (e.g. two views per sample "
            f"with the same instance id, or at least two samples per class), or pass "
            f"ignore_rows_without_positive=True to leave such rows out of the loss."
        )
    no_neg = bool(rest and rest[0])
    if all_missing and n_pos.numel():
        warn_degenerate(loss_name, NO_POSITIVES, NO_POSITIVES_VALUE)
    if no_neg:
        warn_degenerate(loss_name, NO_NEGATIVES, NO_NEGATIVES_VALUE)
    return n_pos, no_neg


def reduce_rows(per_row: Tensor, keep: Tensor, reduction: str) -> Tensor:
    """Reduce (N,) per-row losses over the rows in ``keep``; ``"none"`` zeroes the others."""
    per_row = torch.where(keep, per_row, torch.zeros_like(per_row))
    if reduction == "none":
        return per_row
    if reduction == "sum":
        return per_row.sum()
    n = keep.sum()
    if int(n) == 0:
        # Every row was skipped: a zero loss that still connects to the graph.
        return per_row.sum() * 0.0
    return per_row.sum() / n


def validate_reduction(reduction: str) -> None:
    check_choice(reduction, "reduction", REDUCTIONS)
