"""Barlow Twins: make the cross-correlation matrix of two views' embeddings the identity.

Reference: Zbontar, Jing, Misra, LeCun, Deny 2021, "Barlow Twins: Self-Supervised Learning via
Redundancy Reduction".
"""

from __future__ import annotations

import torch
from torch import Tensor

from contrastkit import distributed as dist
from contrastkit._checks import check_positive, compute_dtype
from contrastkit.losses._base import LossModule
from contrastkit.losses._gather import resolve_gather
from contrastkit.losses.negative_cosine import check_paired

__all__ = ["BarlowTwinsLoss", "barlow_twins"]


def check_weight(value: float | Tensor, name: str) -> None:
    """Check that a loss weight is a finite scalar ≥ 0 (0 switches its term off)."""
    v = value.detach() if isinstance(value, Tensor) else torch.as_tensor(value)
    if v.numel() != 1:
        raise ValueError(f"{name} must be a scalar, got shape {tuple(v.shape)}.")
    if not bool(torch.isfinite(v)) or float(v) < 0:
        raise ValueError(
            f"{name} must be a finite number ≥ 0, got {float(v)}; a weight scales its term "
            f"of the loss (0 switches the term off)."
        )


def paired_batch(
    z1: Tensor, z2: Tensor, *, gather: str | None, loss_name: str
) -> tuple[Tensor, Tensor]:
    """Validate two views' (N, D) embeddings, cast them to the compute dtype and, with
    ``gather`` (a kind: the rows carry no ids, so both gather alike), all-gather both over the
    process group; the batch must hold N ≥ 2 rows."""
    check_paired(z1, z2, "z1", "z2")
    dtype = compute_dtype(z1, z2)
    z1, z2 = z1.to(dtype), z2.to(dtype)
    if gather is not None:
        sizes = dist.row_sizes(z1.shape[0], z1.device)
        z1, z2 = dist.all_gather(z1, sizes=sizes), dist.all_gather(z2, sizes=sizes)
    if z1.shape[0] < 2:
        where = " (after gathering every rank's rows)" if gather else ""
        raise ValueError(
            f"{loss_name} needs a batch of N ≥ 2 rows in z1 and z2 to compute per-dimension "
            f"batch statistics, got N={z1.shape[0]}{where}; use a larger batch."
        )
    return z1, z2


def barlow_twins(
    z1: Tensor,
    z2: Tensor,
    *,
    lambda_offdiag: float = 5.1e-3,
    scale: float = 1.0,
    eps: float = 1e-5,
    gather: str | None = None,
) -> Tensor:
    """Barlow Twins redundancy-reduction loss::

        ẑ = (z − mean_batch(z)) / sqrt(var_batch(z) + eps)      per dimension, biased variance
        c = ẑ1ᵀ ẑ2 / N                                          (D, D) cross-correlation
        loss = scale · ( Σ_i (1 − c_ii)² + λ Σ_{i≠j} c_ij² )

    The standardisation is that of the official code's ``BatchNorm1d(affine=False)`` in
    training mode (mean 0, biased variance, ``eps`` inside the square root). The invariance
    term pulls ``c_ii`` to 1; the redundancy-reduction term pushes ``c_ij`` (i ≠ j) to 0.

    Args:
        z1, z2: (N, D) projections of two views of the same N samples, N ≥ 2.
        lambda_offdiag: λ ≥ 0, weight of the off-diagonal term (5.1e-3 in the paper for
            D = 8192).
        scale: > 0, multiplies the whole loss (an early version of the official code used
            1/32 or 0.024).
        eps: > 0, added to the variance (BatchNorm's default 1e-5).
        gather: ``"instances"`` (or ``"labels"``: the rows carry no ids, so the two kinds
            are one here): under torch.distributed, compute the loss on the global batch: both
            branches are all-gathered (autograd-aware) and every rank returns the same global
            loss; averaging parameter gradients over ranks (DDP) then gives exactly the
            one-process gradients. Identity outside a process group. ``True`` is deprecated
            for ``"instances"``.

    Half-precision inputs are computed in float32 (float64 stays float64). Returns a scalar.

    Reference: Zbontar et al. 2021, "Barlow Twins: Self-Supervised Learning via Redundancy
    Reduction".

    Example:
        >>> import torch
        >>> from contrastkit.losses.barlow_twins import barlow_twins
        >>> z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
        >>> round(float(barlow_twins(z, z)), 3)   # c = I (up to eps): no loss
        0.0
        >>> round(float(barlow_twins(z, -z)), 3)  # c = −I: each c_ii costs (1 − (−1))² = 4
        8.0
    """
    _check_options(lambda_offdiag=lambda_offdiag, scale=scale, eps=eps)
    gather = resolve_gather(gather, "barlow_twins")
    z1, z2 = paired_batch(z1, z2, gather=gather, loss_name="barlow_twins")
    n = z1.shape[0]
    c = _standardise(z1, eps).T @ _standardise(z2, eps) / n
    diag = torch.diagonal(c)
    on_diag = (1.0 - diag).pow(2).sum()
    off_diag = (c - torch.diag(diag)).pow(2).sum()
    return scale * (on_diag + lambda_offdiag * off_diag)


def _check_options(*, lambda_offdiag: float, scale: float, eps: float, **_: object) -> None:
    check_weight(lambda_offdiag, "lambda_offdiag")
    check_positive(scale, "scale", "Use 1.0 for the paper's loss.")
    check_positive(eps, "eps", "BatchNorm's default is 1e-5.")


def _standardise(z: Tensor, eps: float) -> Tensor:
    """BatchNorm1d(affine=False) in training mode: per-dimension mean 0, biased variance 1."""
    centred = z - z.mean(dim=0)
    var = centred.pow(2).mean(dim=0)
    return centred / torch.sqrt(var + eps)


class BarlowTwinsLoss(LossModule, function=barlow_twins, check=_check_options, positional=1):
    """Module form of :func:`barlow_twins`: ``loss_fn(z1, z2)``.

    Example:
        >>> import torch
        >>> from contrastkit.losses.barlow_twins import BarlowTwinsLoss
        >>> loss_fn = BarlowTwinsLoss(lambda_offdiag=5.1e-3)
        >>> loss = loss_fn(torch.randn(8, 16), torch.randn(8, 16))
    """
