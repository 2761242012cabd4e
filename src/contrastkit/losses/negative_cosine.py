"""Negative cosine similarity between a prediction and a (stop-gradient) target.

The regression loss of the non-contrastive Siamese methods: BYOL's loss is
``2 + 2·negative_cosine(p, z')`` (``‖p̂ − ẑ'‖²``), SimSiam's is the mean of the two symmetric
terms ``(negative_cosine(p1, z2) + negative_cosine(p2, z1)) / 2``.

References: Grill et al. 2020, "Bootstrap Your Own Latent" (BYOL); Chen & He 2021, "Exploring
Simple Siamese Representation Learning" (SimSiam).
"""

from __future__ import annotations

import torch
from torch import Tensor

from contrastkit._checks import check_embeddings, compute_dtype
from contrastkit.distances import normalize
from contrastkit.losses._base import LossModule
from contrastkit.losses._contrast import reduce_rows, validate_reduction

__all__ = ["NegativeCosineLoss", "negative_cosine"]


def check_paired(a: Tensor, b: Tensor, name_a: str, name_b: str) -> None:
    """Check that ``a`` and ``b`` are finite (N, D) embeddings of the same shape and device."""
    check_embeddings(a, name_a)
    check_embeddings(b, name_b)
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape (row i of one is paired with row "
            f"i of the other), got {name_a} {tuple(a.shape)} and {name_b} {tuple(b.shape)}; "
            f"embed the same samples in both and project both to one dimension."
        )
    if a.device != b.device:
        raise ValueError(
            f"{name_a} is on {a.device} but {name_b} is on {b.device}; move both to one device."
        )


def _check_options(*, reduction: str, **_: object) -> None:
    validate_reduction(reduction)


def negative_cosine(
    prediction: Tensor,
    target: Tensor,
    *,
    stop_gradient: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Minus the cosine similarity of each row pair::

        loss_i = − ⟨p_i, z_i⟩ / (‖p_i‖ ‖z_i‖)        ∈ [−1, 1]

    Row ``i`` of ``prediction`` is compared with row ``i`` of ``target`` only; no other row
    takes part (no negatives). BYOL's loss is ``2 + 2·loss`` (``‖p̂ − ẑ‖²``); SimSiam's is
    ``(negative_cosine(p1, z2) + negative_cosine(p2, z1)) / 2``. A row of zero norm has cosine 0.

    Args:
        prediction: (N, D), the predictor's output ``p``.
        target: (N, D), the other view's projection ``z`` (or the BYOL target network's).
        stop_gradient: detach ``target`` (the stop-gradient of SimSiam and BYOL), so only
            ``prediction`` receives a gradient. False lets the gradient flow into both.
        reduction: ``"mean"`` (over rows, default), ``"sum"`` or ``"none"`` ((N,) per row).

    Half-precision inputs are computed in float32 (float64 stays float64).

    Reference: Grill et al. 2020 (BYOL); Chen & He 2021 (SimSiam).

    Example:
        >>> import torch
        >>> from contrastkit.losses.negative_cosine import negative_cosine
        >>> p = torch.tensor([[1.0, 0.0], [1.0, 1.0], [3.0, 0.0]])
        >>> z = torch.tensor([[2.0, 0.0], [0.0, 5.0], [-1.0, 0.0]])
        >>> negative_cosine(p, z, reduction="none")   # same, 45° apart, opposite
        tensor([-1.0000, -0.7071,  1.0000])
        >>> round(float(negative_cosine(p, z)), 4)
        -0.2357
    """
    check_paired(prediction, target, "prediction", "target")
    _check_options(reduction=reduction)
    dtype = compute_dtype(prediction, target)
    if stop_gradient:
        target = target.detach()
    p = normalize(prediction.to(dtype))
    z = normalize(target.to(dtype))
    per_row = -(p * z).sum(dim=1)
    keep = torch.ones_like(per_row, dtype=torch.bool)
    return reduce_rows(per_row, keep, reduction)


class NegativeCosineLoss(LossModule, function=negative_cosine, check=_check_options):
    """Module form of :func:`negative_cosine`: ``loss_fn(prediction, target)``.

    Example:
        >>> import torch
        >>> from contrastkit.losses.negative_cosine import NegativeCosineLoss
        >>> loss_fn = NegativeCosineLoss()                  # stop-gradient on the target
        >>> p1, p2, z1, z2 = torch.randn(4, 8, 16).unbind(0)
        >>> loss = (loss_fn(p1, z2) + loss_fn(p2, z1)) / 2  # SimSiam's symmetric loss
    """
