"""Multi-class N-pair loss.

Reference: Sohn 2016, "Improved Deep Metric Learning with Multi-class N-pair Loss Objective".
"""

from __future__ import annotations

import torch
from torch import Tensor

from contrastkit.losses._base import LossModule
from contrastkit.losses._contrast import validate_reduction
from contrastkit.losses.info_nce import _info_nce

__all__ = ["NPairLoss", "n_pair"]


def _check_options(*, l2_reg: float, reduction: str) -> None:
    validate_reduction(reduction)
    if not l2_reg >= 0:
        raise ValueError(f"l2_reg must be ≥ 0, got {l2_reg}.")


def n_pair(
    anchor: Tensor,
    positive: Tensor,
    *,
    anchor_ids: Tensor | None = None,
    positive_ids: Tensor | None = None,
    l2_reg: float = 0.0,
    reduction: str = "mean",
) -> Tensor:
    """N-pair loss: each anchor against its own positive and the other anchors' positives.

    For N pairs ``(f_i, f_i⁺)`` from N different classes, with raw inner products::

        loss_i = log(1 + Σ_{j≠i} exp(f_i·f_j⁺ − f_i·f_i⁺))  =  −log softmax_j(f_i·f_j⁺)[i]

    plus ``l2_reg · mean_i(|f_i|² + |f_i⁺|²)``: the embeddings are not normalised, so Sohn
    regularises their norm. This is :func:`info_nce` with ``similarity="dot"`` and τ = 1.

    Args:
        anchor: (N, D) anchors, one per class. positive: (N, D) positives, row-aligned.
        anchor_ids, positive_ids: optional (N,) class ids; default ``arange(N)``. If a class
            occurs more than once, every positive of the anchor's class counts (as in
            :func:`info_nce`).
        l2_reg: weight λ ≥ 0 of the squared-norm penalty.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (N,).

    Example:
        >>> import torch
        >>> from contrastkit.losses.functional import n_pair
        >>> loss = n_pair(torch.randn(6, 8), torch.randn(6, 8), l2_reg=0.002)
    """
    _check_options(l2_reg=l2_reg, reduction=reduction)
    if isinstance(anchor, Tensor) and isinstance(positive, Tensor):
        if anchor.dim() == 2 and positive.dim() == 2 and anchor.shape[0] != positive.shape[0]:
            raise ValueError(
                f"anchor and positive must have the same number of rows (one positive per "
                f"anchor), got {anchor.shape[0]} and {positive.shape[0]}."
            )
    if anchor_ids is None:
        anchor_ids = torch.arange(anchor.shape[0], device=anchor.device)
    if positive_ids is None:
        positive_ids = anchor_ids
    loss = _info_nce(
        anchor,
        positive,
        query_ids=anchor_ids,
        key_ids=positive_ids,
        temperature=1.0,
        similarity="dot",
        reduction=reduction,
        loss_name="n_pair",
    )
    if l2_reg > 0:
        sq = anchor.to(loss.dtype).pow(2).sum(-1) + positive.to(loss.dtype).pow(2).sum(-1)
        reg = l2_reg * (sq if reduction == "none" else sq.mean())
        loss = loss + (reg * anchor.shape[0] if reduction == "sum" else reg)
    return loss


class NPairLoss(
    LossModule,
    function=n_pair,
    check=_check_options,
    inputs=("anchor_ids", "positive_ids"),
):
    """Module form of :func:`n_pair`:
    ``loss_fn(anchor, positive, *, anchor_ids=None, positive_ids=None)``.

    Example:
        >>> import torch
        >>> from contrastkit.losses import NPairLoss
        >>> loss = NPairLoss(l2_reg=0.002)(torch.randn(6, 8), torch.randn(6, 8))
    """
