"""Bayesian personalised ranking: a user should score an item it chose above one it did not.

The pairwise loss of implicit-feedback recommenders (BPR-MF, LightGCN, SGL, SimGCL, XSimGCL)::

    loss = −log σ(⟨u, p⟩ − ⟨u, n⟩)

for a user ``u``, an item it interacted with ``p`` and a sampled item ``n``.

Reference: Rendle, Freudenthaler, Gantner, Schmidt-Thieme 2009, "BPR: Bayesian Personalized
Ranking from Implicit Feedback".
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from contrastkit._checks import check_embeddings, compute_dtype
from contrastkit.losses._base import LossModule
from contrastkit.losses._contrast import validate_reduction

__all__ = ["BPRLoss", "bpr"]


def _check_options(*, reduction: str, **_: object) -> None:
    validate_reduction(reduction)


def bpr(user: Tensor, positive: Tensor, negative: Tensor, *, reduction: str = "mean") -> Tensor:
    """BPR loss of (user, positive item, negative item) rows (Rendle et al. 2009)::

        loss_bk = −log σ(⟨u_b, p_b⟩ − ⟨u_b, n_bk⟩) = softplus(⟨u_b, n_bk⟩ − ⟨u_b, p_b⟩)

    Scores are inner products (the models' ranking score). Computed as a softplus, so a large
    margin neither overflows nor loses the gradient of a small one.

    Args:
        user: (B, D) user embeddings.
        positive: (B, D) embeddings of an item each user interacted with.
        negative: (B, D) one sampled item per row, or (B, K, D) K sampled items per row.
        reduction: ``"mean"`` (default: over every (row, negative) term), ``"sum"``, or
            ``"none"``: (B,) per-row losses, or (B, K) for K negatives per row.

    Half-precision inputs are computed in float32 (float64 stays float64).

    Reference: Rendle et al. 2009, "BPR: Bayesian Personalized Ranking from Implicit Feedback".

    Example:
        >>> import torch
        >>> from contrastkit.losses.bpr import bpr
        >>> u = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> p = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
        >>> n = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
        >>> bpr(u, p, n, reduction="none")      # margin 2 → −log σ(2); margin 0 → log 2
        tensor([0.1269, 0.6931])
        >>> bpr(u, p, torch.zeros(2, 5, 2)).shape  # five negatives per row
        torch.Size([])
    """
    check_embeddings(user, "user")
    check_embeddings(positive, "positive")
    _check_options(reduction=reduction)
    if positive.shape != user.shape:
        raise ValueError(
            f"positive must have the shape of user {tuple(user.shape)} (row b is user b's item), "
            f"got {tuple(positive.shape)}."
        )
    if negative.dim() == 3:
        check_embeddings(negative.flatten(0, 1), "negative")
        ok = negative.shape[0] == user.shape[0] and negative.shape[2] == user.shape[1]
    else:
        check_embeddings(negative, "negative")
        ok = negative.shape == user.shape
    if not ok:
        b, d = user.shape
        raise ValueError(
            f"negative must be ({b}, {d}) or ({b}, K, {d}) (one or K sampled items per user), "
            f"got {tuple(negative.shape)}."
        )
    dtype = compute_dtype(user, positive, negative)
    u, p, n = user.to(dtype), positive.to(dtype), negative.to(dtype)
    pos = (u * p).sum(-1)
    if n.dim() == 3:
        terms = F.softplus((n * u[:, None]).sum(-1) - pos[:, None])  # (B, K)
    else:
        terms = F.softplus((n * u).sum(-1) - pos)  # (B,)
    if reduction == "none":
        return terms
    return terms.sum() if reduction == "sum" else terms.mean()


class BPRLoss(LossModule, function=bpr, check=_check_options):
    """Module form of :func:`bpr`: ``loss_fn(user, positive, negative)``.

    Example:
        >>> import torch
        >>> from contrastkit.losses.bpr import BPRLoss
        >>> u, p, n = torch.randn(3, 8, 16).unbind(0)
        >>> loss = BPRLoss()(u, p, n)
    """
