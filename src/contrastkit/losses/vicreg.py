"""VICReg: variance-invariance-covariance regularisation of two views' embeddings.

Reference: Bardes, Ponce, LeCun 2022, "VICReg: Variance-Invariance-Covariance Regularization for
Self-Supervised Learning".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit._checks import check_positive
from contrastkit.losses._base import LossModule
from contrastkit.losses._gather import resolve_gather
from contrastkit.losses.barlow_twins import check_weight, paired_batch

__all__ = ["VICRegLoss", "vicreg", "vicreg_terms"]


def vicreg_terms(
    z1: Tensor,
    z2: Tensor,
    *,
    invariance_weight: float = 25.0,
    variance_weight: float = 25.0,
    covariance_weight: float = 1.0,
    gamma: float = 1.0,
    eps: float = 1e-4,
    gather: str | None = None,
) -> dict[str, Tensor]:
    """The three VICReg terms and their weighted sum, as in the official code::

        invariance = (1/(N·D)) Σ_n Σ_d (z1_nd − z2_nd)²                    (F.mse_loss)
        variance   = ½ Σ_{z∈{z1,z2}} (1/D) Σ_d relu(γ − sqrt(Var_n(z_·d) + eps))
        covariance = Σ_{z∈{z1,z2}} (1/D) Σ_{i≠j} C(z)_ij²,   C(z) = (z − z̄)ᵀ(z − z̄) / (N − 1)
        loss       = λ·invariance + μ·variance + ν·covariance

    ``Var`` is the unbiased variance over the batch and ``C`` the unbiased covariance matrix.

    Args:
        z1, z2: (N, D) expander outputs for two views of the same N samples, N ≥ 2.
        invariance_weight: λ ≥ 0 (25 in the paper).
        variance_weight: μ ≥ 0 (25 in the paper).
        covariance_weight: ν ≥ 0 (1 in the paper).
        gamma: γ > 0, the target standard deviation of every dimension (1 in the paper).
        eps: > 0, added to the variance inside the square root (1e-4 in the official code).
        gather: ``"instances"`` (or ``"labels"``: the rows carry no ids, so the two kinds
            are one here): under torch.distributed, compute every term on the global batch:
            both branches are all-gathered (autograd-aware) and every rank returns the same
            global loss; averaging parameter gradients over ranks (DDP) then gives exactly the
            one-process gradients. Identity outside a process group. ``True`` is deprecated
            for ``"instances"``.

    Returns:
        ``{"invariance", "variance", "covariance", "loss"}``: scalar tensors, the three terms
        unweighted and the weighted total (all attached to the graph; detach them to log).
        Half-precision inputs are computed in float32 (float64 stays float64).

    Reference: Bardes, Ponce, LeCun 2022 (VICReg).

    Example:
        >>> import torch
        >>> from contrastkit.losses.vicreg import vicreg_terms
        >>> z = torch.tensor([[2.0, 2.0], [2.0, -2.0], [-2.0, 2.0], [-2.0, -2.0]])
        >>> terms = vicreg_terms(z, z)   # same views, std > 1, uncorrelated columns
        >>> {k: round(float(v), 6) for k, v in terms.items()}
        {'invariance': 0.0, 'variance': 0.0, 'covariance': 0.0, 'loss': 0.0}
    """
    _check_options(
        invariance_weight=invariance_weight,
        variance_weight=variance_weight,
        covariance_weight=covariance_weight,
        gamma=gamma,
        eps=eps,
    )
    gather = resolve_gather(gather, "vicreg_terms")
    z1, z2 = paired_batch(z1, z2, gather=gather, loss_name="vicreg")
    invariance = F.mse_loss(z1, z2)
    c1, c2 = z1 - z1.mean(dim=0), z2 - z2.mean(dim=0)
    variance = (_variance_term(c1, gamma, eps) + _variance_term(c2, gamma, eps)) / 2
    covariance = _covariance_term(c1) + _covariance_term(c2)
    loss = (
        invariance_weight * invariance + variance_weight * variance + covariance_weight * covariance
    )
    return {
        "invariance": invariance,
        "variance": variance,
        "covariance": covariance,
        "loss": loss,
    }


def _check_options(
    *,
    invariance_weight: float,
    variance_weight: float,
    covariance_weight: float,
    gamma: float,
    eps: float,
    **_: object,
) -> None:
    check_weight(invariance_weight, "invariance_weight")
    check_weight(variance_weight, "variance_weight")
    check_weight(covariance_weight, "covariance_weight")
    check_positive(gamma, "gamma", "VICReg uses gamma=1.0, the target std of each dimension.")
    check_positive(eps, "eps", "The official code uses 1e-4.")


def _variance_term(centred: Tensor, gamma: float, eps: float) -> Tensor:
    """Hinge on the per-dimension std: mean_d relu(γ − sqrt(unbiased var + eps))."""
    var = centred.pow(2).sum(dim=0) / (centred.shape[0] - 1)
    return F.relu(gamma - torch.sqrt(var + eps)).mean()


def _covariance_term(centred: Tensor) -> Tensor:
    """Σ_{i≠j} C_ij² / D for the unbiased covariance matrix C of the centred rows."""
    n, d = centred.shape
    cov = centred.T @ centred / (n - 1)
    off = cov - torch.diag(torch.diagonal(cov))
    return off.pow(2).sum() / d


def vicreg(
    z1: Tensor,
    z2: Tensor,
    *,
    invariance_weight: float = 25.0,
    variance_weight: float = 25.0,
    covariance_weight: float = 1.0,
    gamma: float = 1.0,
    eps: float = 1e-4,
    gather: str | None = None,
) -> Tensor:
    """VICReg loss ``λ·invariance + μ·variance + ν·covariance``: ``vicreg_terms(...)["loss"]``.

    See :func:`vicreg_terms` for the formula and the arguments; use it to log the three terms.

    Reference: Bardes, Ponce, LeCun 2022 (VICReg).

    Example:
        >>> import torch
        >>> from contrastkit.losses.vicreg import vicreg
        >>> z = torch.zeros(4, 3)                 # collapsed: every row equal
        >>> round(float(vicreg(z, z, eps=1e-4)), 4)   # 25 · (γ − sqrt(eps)) = 25 · 0.99
        24.75
    """
    return vicreg_terms(
        z1,
        z2,
        invariance_weight=invariance_weight,
        variance_weight=variance_weight,
        covariance_weight=covariance_weight,
        gamma=gamma,
        eps=eps,
        gather=resolve_gather(gather, "vicreg"),
    )["loss"]


class VICRegLoss(LossModule, function=vicreg, check=_check_options, positional=3):
    """Module form of :func:`vicreg`: ``loss_fn(z1, z2)``; ``loss_fn.terms(z1, z2)`` gives
    :func:`vicreg_terms`.

    Example:
        >>> import torch
        >>> from contrastkit.losses.vicreg import VICRegLoss
        >>> loss_fn = VICRegLoss()                # λ = μ = 25, ν = 1
        >>> z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
        >>> loss = loss_fn(z1, z2)
        >>> sorted(loss_fn.terms(z1, z2))
        ['covariance', 'invariance', 'loss', 'variance']
    """

    def terms(self, z1: Tensor, z2: Tensor) -> dict[str, Tensor]:
        return vicreg_terms(z1, z2, **self.options())
