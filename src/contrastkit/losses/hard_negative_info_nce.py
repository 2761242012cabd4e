"""Hard-negative InfoNCE (Robinson et al. 2021): importance-weight negatives by their hardness.

Reference:
    Robinson, Chuang, Sra, Jegelka 2021, "Contrastive Learning with Hard Negative Samples", ICLR.
"""

from __future__ import annotations

from torch import Tensor

from contrastkit.losses._base import LossModule
from contrastkit.losses._contrast import ID_INPUTS
from contrastkit.losses.debiased_info_nce import check_reweighted_options, reweighted_info_nce

__all__ = ["HardNegativeInfoNCELoss", "hard_negative_info_nce"]


def hard_negative_info_nce(
    query: Tensor,
    key: Tensor | None = None,
    *,
    query_ids: Tensor,
    key_ids: Tensor | None = None,
    temperature: float | Tensor = 0.1,
    beta: float = 1.0,
    tau_plus: float = 0.1,
    negatives: Tensor | None = None,
    negative_ids: Tensor | None = None,
    ignore_rows_without_positive: bool = False,
    reduction: str = "mean",
    chunked: bool | None = None,
    block_rows: int | None = None,
    gather: str | None = None,
) -> Tensor:
    """Hard-negative contrastive loss (Robinson et al. 2021) with id-defined positives.

    Negatives are importance-weighted by ``w_a ∝ exp(β · s_ia/τ)`` (harder negatives count
    more), then debiased with the class prior τ⁺::

        R  = n · Σ_a w_a e_a / Σ_a w_a
        Ng = max( (R − τ⁺ · n · e_p) / (1 − τ⁺),  n · exp(−1/τ) )
        loss_ip = −log( e_p / (e_p + Ng) )

    ``beta=0`` gives :func:`debiased_info_nce`; ``beta=0, tau_plus=0`` gives :func:`info_nce`.

    Args:
        query, key, query_ids, key_ids, temperature, negatives, negative_ids,
        ignore_rows_without_positive, reduction, chunked, block_rows, gather: as in
            :func:`info_nce` (cosine similarity; the chunked path rebuilds each row block's
            table in the backward).
        beta: concentration β ≥ 0 of the hard-negative distribution (0.5–1 in the paper).
        tau_plus: class prior τ⁺ ∈ [0, 1) as in :func:`debiased_info_nce`.

    Returns:
        A scalar, or (N,) per-row losses with ``reduction="none"``.

    Example:
        >>> import torch
        >>> from contrastkit.losses.functional import hard_negative_info_nce
        >>> z = torch.randn(16, 32)
        >>> loss = hard_negative_info_nce(z, query_ids=torch.arange(8).repeat(2), beta=1.0)
    """
    return reweighted_info_nce(
        query,
        key,
        query_ids=query_ids,
        key_ids=key_ids,
        temperature=temperature,
        tau_plus=tau_plus,
        beta=beta,
        negatives=negatives,
        negative_ids=negative_ids,
        ignore_rows_without_positive=ignore_rows_without_positive,
        reduction=reduction,
        chunked=chunked,
        block_rows=block_rows,
        gather=gather,
        loss_name="hard_negative_info_nce",
    )


class HardNegativeInfoNCELoss(
    LossModule,
    function=hard_negative_info_nce,
    check=check_reweighted_options,
    inputs=ID_INPUTS,
    positional=1,
):
    """Module form of :func:`hard_negative_info_nce`:
    ``loss_fn(query, key=None, *, query_ids, key_ids=None, negatives=None, negative_ids=None)``.

    Example:
        >>> import torch
        >>> from contrastkit.losses import HardNegativeInfoNCELoss
        >>> loss_fn = HardNegativeInfoNCELoss(beta=1.0, tau_plus=0.1)
        >>> loss = loss_fn(torch.randn(8, 4), query_ids=torch.arange(4).repeat(2))
    """
