"""Pairwise sigmoid (logistic) loss: every pair is an independent binary classification.

Reference: Zhai, Mustafa, Kolesnikov, Beyer 2023, "Sigmoid Loss for Language Image
Pre-Training" (SigLIP).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.losses._contrast import pair_scores, reduce_rows, validate_reduction

__all__ = ["SigmoidPairwiseLoss", "sigmoid_pairwise"]


def sigmoid_pairwise(
    query: Tensor,
    key: Tensor | None = None,
    *,
    query_ids: Tensor,
    key_ids: Tensor | None = None,
    temperature: float | Tensor = 0.1,
    bias: float | Tensor = -10.0,
    similarity: str = "cosine",
    reduction: str = "mean",
) -> Tensor:
    """SigLIP loss over all pairs, positives given by ids::

        loss = (1/N) Σ_i Σ_{j∈A(i)} −log σ( z_ij · (s_ij/τ + b) ),   z_ij = +1 if positive else −1

    where ``A(i)`` is every key (minus the self-pair when ``key is None``). Unlike softmax
    losses there is no normaliser across the batch, and a row needs no positive.

    Args:
        query: (N, D). key: optional (M, D). query_ids, key_ids: integer ids (``arange`` for
            paired image–text data).
        temperature: τ > 0 (SigLIP's learnable scale t is 1/τ, initialised at 10).
        bias: b, initialised at −10 in SigLIP so that the many negatives start near zero loss.
        similarity: ``"cosine"`` (default), ``"dot"``, ``"euclidean"``, ``"squared_euclidean"``.
        reduction: ``"mean"`` (sum over each row's pairs, mean over rows: the paper's
            normalisation), ``"sum"`` or ``"none"`` (per-row sums, (N,)).

    Example:
        >>> import torch
        >>> from contrastkit.losses.functional import sigmoid_pairwise
        >>> img, txt, ids = torch.randn(8, 16), torch.randn(8, 16), torch.arange(8)
        >>> loss = sigmoid_pairwise(img, txt, query_ids=ids, key_ids=ids)
    """
    validate_reduction(reduction)
    s = pair_scores(
        query,
        key,
        query_ids=query_ids,
        key_ids=key_ids,
        temperature=temperature,
        similarity=similarity,
    )
    b = bias.to(s.logits.dtype) if isinstance(bias, Tensor) else bias
    logits = torch.where(s.candidate, s.logits, torch.zeros_like(s.logits)) + b
    sign = s.positive.to(logits.dtype) * 2.0 - 1.0
    terms = torch.where(s.candidate, -F.logsigmoid(sign * logits), torch.zeros_like(logits))
    per_row = terms.sum(dim=1)
    keep = torch.ones_like(per_row, dtype=torch.bool)
    return reduce_rows(per_row, keep, reduction)


class SigmoidPairwiseLoss(nn.Module):
    """Module form of :func:`sigmoid_pairwise` with learnable temperature and bias (SigLIP).

    The temperature is stored as ``log(1/τ)`` (SigLIP's ``t'``), the bias as is.

    Example:
        >>> import torch
        >>> from contrastkit.losses import SigmoidPairwiseLoss
        >>> loss_fn = SigmoidPairwiseLoss()                   # τ = 0.1, b = −10, both learnable
        >>> img, txt, ids = torch.randn(8, 16), torch.randn(8, 16), torch.arange(8)
        >>> loss = loss_fn(img, txt, query_ids=ids, key_ids=ids)
    """

    def __init__(
        self,
        temperature: float = 0.1,
        bias: float = -10.0,
        *,
        learnable: bool = True,
        similarity: str = "cosine",
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        validate_reduction(reduction)
        log_scale = torch.tensor(math.log(1.0 / temperature))
        b = torch.tensor(float(bias))
        if learnable:
            self.log_scale = nn.Parameter(log_scale)
            self.bias = nn.Parameter(b)
        else:
            self.register_buffer("log_scale", log_scale)
            self.register_buffer("bias", b)
        self.similarity = similarity
        self.reduction = reduction

    @property
    def temperature(self) -> Tensor:
        return torch.exp(-self.log_scale)

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        *,
        query_ids: Tensor,
        key_ids: Tensor | None = None,
    ) -> Tensor:
        return sigmoid_pairwise(
            query,
            key,
            query_ids=query_ids,
            key_ids=key_ids,
            temperature=self.temperature,
            bias=self.bias,
            similarity=self.similarity,
            reduction=self.reduction,
        )
