"""Debiased InfoNCE (Chuang et al. 2020): correct the negative term for sampling bias.

Reference:
    Chuang, Robinson, Lin, Torralba, Jegelka 2020, "Debiased Contrastive Learning", NeurIPS.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from contrastkit import distributed as dist
from contrastkit._checks import check_positive, check_probability
from contrastkit.losses._base import LossModule
from contrastkit.losses._chunked import block_rows_for, positive_counts, table_shape, use_chunked
from contrastkit.losses._contrast import (
    ID_INPUTS,
    PairScores,
    block_scores,
    check_positive_counts,
    no_negatives,
    prepare_pair_inputs,
    reduce_rows,
    validate_reduction,
)
from contrastkit.losses._gather import check_gather, gathered_loss

__all__ = ["DebiasedInfoNCELoss", "debiased_info_nce", "reweighted_info_nce"]


def check_reweighted_options(
    *,
    temperature: float | Tensor,
    tau_plus: float,
    reduction: str,
    block_rows: int | None,
    beta: float = 0.0,
    **_: object,
) -> None:
    """The checks of the options of :func:`debiased_info_nce` and
    :func:`~contrastkit.losses.functional.hard_negative_info_nce` that need no tensor; their
    modules run them once, when built."""
    validate_reduction(reduction)
    if not isinstance(temperature, Tensor):  # a tensor τ is checked with the inputs
        check_positive(temperature, "temperature", "Typical values are 0.05–0.5.")
    check_probability(tau_plus, "tau_plus")
    if not (math.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta must be a finite number ≥ 0, got {beta}.")
    if block_rows is not None:
        block_rows_for(0, 0, block_rows)


def reweighted_info_nce(
    query: Tensor,
    key: Tensor | None,
    *,
    query_ids: Tensor,
    key_ids: Tensor | None,
    temperature: float | Tensor,
    tau_plus: float,
    beta: float,
    negatives: Tensor | None,
    negative_ids: Tensor | None,
    ignore_rows_without_positive: bool,
    reduction: str,
    loss_name: str,
    chunked: bool | None = None,
    block_rows: int | None = None,
    gather: str | None = None,
) -> Tensor:
    """Shared core of the debiased (β = 0) and hard-negative (β > 0) estimators.

    For row ``i`` and each positive ``p``, the other candidates ``A(i) \\ {p}`` (``n`` of them)
    act as the negatives. With ``e_a = exp(s_ia/τ)`` and importance weights ``w_a ∝ e_a^β``::

        R  = n · Σ_a w_a e_a / Σ_a w_a                      (β = 0: R = Σ_a e_a)
        Ng = max( (R − τ⁺ · n · e_p) / (1 − τ⁺),  n · exp(−1/τ) )
        loss_ip = −log( e_p / (e_p + Ng) )

    averaged over the row's positives, then over rows. With τ⁺ = 0 and β = 0 this is exactly
    :func:`~contrastkit.losses.functional.info_nce`. Computed in log-space, shifted by the row
    maximum, so small temperatures do not overflow. Cosine similarity only: the clamp uses its
    lower bound −1.

    A batch without negatives (one id over the whole batch) gives 0 on the graph, and a
    :class:`~contrastkit._checks.DegenerateBatchWarning` once per process, as in
    :func:`~contrastkit.losses.functional.info_nce`.
    """
    check_reweighted_options(
        temperature=temperature,
        tau_plus=tau_plus,
        beta=beta,
        reduction=reduction,
        block_rows=block_rows,
    )
    check_gather(gather)
    direction = functools.partial(
        _reweighted_direction,
        tau_plus=tau_plus,
        beta=beta,
        loss_name=loss_name,
        chunked=chunked,
        block_rows=block_rows,
    )
    pair = dict(
        query_ids=query_ids,
        key_ids=key_ids,
        negatives=negatives,
        negative_ids=negative_ids,
        temperature=temperature,
        ignore_rows_without_positive=ignore_rows_without_positive,
        reduction=reduction,
    )
    if gather is not None and dist.is_distributed():
        offset = gather == "instances"
        return gathered_loss(direction, query, key, symmetric=False, offset=offset, **pair)
    return direction(query, key, **pair)


def _reweighted_direction(
    query: Tensor,
    key: Tensor | None,
    *,
    tau_plus: float,
    beta: float,
    ignore_rows_without_positive: bool,
    reduction: str,
    loss_name: str,
    chunked: bool | None,
    block_rows: int | None,
    rows: slice | None = None,
    **pair,
) -> Tensor:
    """The reweighted loss of query rows ``rows`` (default: all) of one table; ``pair``: the
    ids, temperature and negatives of :func:`prepare_pair_inputs`."""
    x = prepare_pair_inputs(query, key, similarity="cosine", **pair)
    n = x.q.shape[0]
    lo, hi = (0, n) if rows is None else (rows.start, rows.stop)
    n_pos, degenerate = check_positive_counts(
        positive_counts(x.qids[lo:hi], x.kids, self_contrast=x.self_contrast),
        ignore_rows_without_positive=ignore_rows_without_positive,
        loss_name=loss_name,
        no_negatives=no_negatives(x),
    )
    keep = n_pos > 0

    def block_rows_loss(r0: int, r1: int) -> Tensor:
        s = block_scores(x, "cosine", r0, r1)
        a, b = r0 - lo, r1 - lo
        return _reweighted_rows(s, keep[a:b], n_pos[a:b], x.temperature, tau_plus, beta)

    if use_chunked(chunked, "cosine", *table_shape(query, key, pair.get("negatives")), loss_name):
        # Row blocks under activation checkpointing: each block's table is rebuilt in the
        # backward, so only one block is alive at a time; the rows are exact and independent.
        block = block_rows_for(hi - lo, x.k.shape[0] + _n(x.negatives), block_rows)
        per_row = torch.cat(
            [
                checkpoint(block_rows_loss, r0, min(hi, r0 + block), use_reentrant=False)
                for r0 in range(lo, hi, block)
            ]
        )
    else:
        per_row = block_rows_loss(lo, hi)
    if degenerate:
        per_row = per_row * 0.0  # no negatives, nothing is contrasted: zero, on the graph
    return reduce_rows(per_row, keep, reduction)


def _n(t: Tensor | None) -> int:
    return 0 if t is None else t.shape[0]


def _reweighted_rows(
    s: PairScores,
    keep: Tensor,
    n_pos: Tensor,
    temperature: float | Tensor,
    tau_plus: float,
    beta: float,
) -> Tensor:
    """Per-row losses of the reweighted estimator for the rows of one table ``s``."""
    logits = s.logits.masked_fill(~keep[:, None], 0.0)
    candidate = s.candidate & keep[:, None]
    positive = s.positive
    zero = torch.zeros((), dtype=logits.dtype, device=logits.device)
    # Shift by the row maximum (a constant per row: the loss is invariant to it).
    shift = logits.detach().amax(dim=1, keepdim=True)
    centred = torch.where(candidate, logits - shift, zero)  # finite everywhere
    neg_only = candidate & ~positive

    def split_sums(scale: float) -> Tensor:
        """Σ over the row's candidates of exp(scale · centred), for each (i, p) without p."""
        terms = torch.where(candidate, torch.exp(scale * centred), zero)
        neg_sum = torch.where(neg_only, terms, zero).sum(dim=1, keepdim=True)
        pos_sum = torch.where(positive, terms, zero).sum(dim=1, keepdim=True)
        # Other positives of the row; exactly zero when the row has a single positive.
        others = (pos_sum - terms).clamp_min(0.0)
        return neg_sum + others

    n_others = (candidate.sum(dim=1, keepdim=True) - 1).clamp_min(0).to(logits.dtype)
    sum1 = split_sums(1.0 + beta)
    if beta == 0:
        reweighted = sum1
    else:
        sum0 = split_sums(beta)
        reweighted = n_others * sum1 / sum0.clamp_min(torch.finfo(logits.dtype).tiny)
    e_pos = torch.exp(centred)
    floor = n_others * torch.exp(-1.0 / temperature - shift)
    ng = ((reweighted - tau_plus * n_others * e_pos) / (1.0 - tau_plus)).maximum(floor)
    # −log(e_p / (e_p + Ng)) = log(e_p + Ng) − centred_p
    # Only (i, p) entries are used; elsewhere log(1) keeps values and gradients finite.
    inner = torch.where(positive, e_pos + ng, torch.ones_like(ng))
    pair_loss = torch.where(positive, torch.log(inner) - centred, zero)
    per_row = pair_loss.sum(dim=1) / n_pos.clamp_min(1).to(logits.dtype)
    return per_row


def debiased_info_nce(
    query: Tensor,
    key: Tensor | None = None,
    *,
    query_ids: Tensor,
    key_ids: Tensor | None = None,
    temperature: float | Tensor = 0.1,
    tau_plus: float = 0.1,
    negatives: Tensor | None = None,
    negative_ids: Tensor | None = None,
    ignore_rows_without_positive: bool = False,
    reduction: str = "mean",
    chunked: bool | None = None,
    block_rows: int | None = None,
    gather: str | None = None,
) -> Tensor:
    """Debiased contrastive loss (Chuang et al. 2020) with id-defined positives.

    Unlabelled "negatives" contain same-class samples with probability ``tau_plus``; the
    estimator subtracts their expected contribution from the negative term::

        Ng = max( (Σ_{a≠p} e_a − τ⁺ · n · e_p) / (1 − τ⁺),  n · exp(−1/τ) )
        loss_ip = −log( e_p / (e_p + Ng) ),   e_a = exp(cos(q_i, k_a)/τ)

    where the sum runs over the row's other ``n`` candidates. ``tau_plus=0`` gives exactly
    :func:`info_nce`.

    Args:
        query, key, query_ids, key_ids, temperature, negatives, negative_ids,
        ignore_rows_without_positive, reduction, chunked, block_rows, gather: as in
            :func:`info_nce` (cosine similarity; the chunked path rebuilds each row block's
            table in the backward).
        tau_plus: class prior τ⁺ ∈ [0, 1), the probability that a random sample shares the
            anchor's class (0.1 for CIFAR-10 in the paper).

    Returns:
        A scalar, or (N,) per-row losses with ``reduction="none"``.

    Example:
        >>> import torch
        >>> from contrastkit.losses.functional import debiased_info_nce
        >>> z = torch.randn(16, 32)
        >>> loss = debiased_info_nce(z, query_ids=torch.arange(8).repeat(2), tau_plus=0.1)
    """
    return reweighted_info_nce(
        query,
        key,
        query_ids=query_ids,
        key_ids=key_ids,
        temperature=temperature,
        tau_plus=tau_plus,
        beta=0.0,
        negatives=negatives,
        negative_ids=negative_ids,
        ignore_rows_without_positive=ignore_rows_without_positive,
        reduction=reduction,
        chunked=chunked,
        block_rows=block_rows,
        gather=gather,
        loss_name="debiased_info_nce",
    )


class DebiasedInfoNCELoss(
    LossModule,
    function=debiased_info_nce,
    check=check_reweighted_options,
    inputs=ID_INPUTS,
    positional=1,
):
    """Module form of :func:`debiased_info_nce`:
    ``loss_fn(query, key=None, *, query_ids, key_ids=None, negatives=None, negative_ids=None)``.

    Example:
        >>> import torch
        >>> from contrastkit.losses import DebiasedInfoNCELoss
        >>> loss_fn = DebiasedInfoNCELoss(tau_plus=0.1, gather="instances")
        >>> loss = loss_fn(torch.randn(8, 4), query_ids=torch.arange(4).repeat(2))
    """
