"""Pairwise sigmoid (logistic) loss: every pair is an independent binary classification.

Reference: Zhai, Mustafa, Kolesnikov, Beyer 2023, "Sigmoid Loss for Language Image
Pre-Training" (SigLIP).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit import distributed as dist
from contrastkit._checks import (
    NO_NEGATIVES,
    NO_POSITIVES,
    check_choice,
    check_positive,
    warn_label_problems,
)
from contrastkit.distances import METRICS
from contrastkit.losses._base import LossModule
from contrastkit.losses._contrast import block_scores, prepare_pair_inputs, validate_reduction
from contrastkit.losses._gather import check_gather, reduce_gathered

__all__ = ["SigmoidPairwiseLoss", "sigmoid_pairwise"]

#: What the loss returns on a degenerate batch (the text of its warning).
_DEGENERATE_VALUES = {
    NO_NEGATIVES: (
        "the loss returned has positive pairs only, so it pulls every row together (it can "
        "collapse the embedding)"
    ),
    NO_POSITIVES: (
        "the loss returned has negative pairs only, so it pushes rows apart and learns no "
        "similarity"
    ),
}


def _check_options(
    *, temperature: float | Tensor, similarity: str, reduction: str, **_: object
) -> None:
    validate_reduction(reduction)
    if not isinstance(temperature, Tensor):  # a tensor τ is checked with the inputs
        check_positive(temperature, "temperature", "SigLIP starts at τ = 0.1.")
    check_choice(similarity, "similarity", METRICS)


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
    gather: str | None = None,
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
        gather: under torch.distributed, every process's query rows against every process's
            keys (gathered with gradients; needs ``key``): ``"labels"`` when ids mean the same
            on every process (caption ids), ``"instances"`` when each process numbers its
            rows from 0. Each process returns its share, scaled so that gradient averaging
            over processes differentiates the global batch's loss. No effect outside a group.

    Warns:
        DegenerateBatchWarning: once per process when every pair is positive (one id in the
            batch: no negatives) or none is (no positives). The value is still the pairwise
            loss, finite with finite gradients, but it only pulls together (or only pushes
            apart).

    Example:
        >>> import torch
        >>> from contrastkit.losses.functional import sigmoid_pairwise
        >>> img, txt, ids = torch.randn(8, 16), torch.randn(8, 16), torch.arange(8)
        >>> loss = sigmoid_pairwise(img, txt, query_ids=ids, key_ids=ids)
    """
    _check_options(temperature=temperature, similarity=similarity, reduction=reduction)
    check_gather(gather)
    if gather is not None and dist.is_distributed():
        if key is None:
            raise ValueError(
                "sigmoid_pairwise gathers query rows against gathered keys; give key (e.g. the "
                "texts for the images), or gather=None."
            )
        qids = torch.as_tensor(query_ids, device=query.device)
        kids = qids if key_ids is None else torch.as_tensor(key_ids, device=key.device)
        shift = dist.instance_offset(qids, kids) if gather == "instances" else 0
        sizes = dist.row_sizes(key.shape[0], key.device)
        per_row = sigmoid_pairwise(
            query,
            dist.all_gather(key, sizes=sizes),
            query_ids=qids + shift,
            key_ids=dist.gather_ids(kids + shift, sizes=sizes),
            temperature=temperature,
            bias=bias,
            similarity=similarity,
            reduction="none",
        )
        keep = torch.ones_like(per_row, dtype=torch.bool)
        return reduce_gathered(per_row, keep, reduction)
    x = prepare_pair_inputs(
        query,
        key,
        query_ids=query_ids,
        key_ids=key_ids,
        temperature=temperature,
        similarity=similarity,
        negatives=None,
        negative_ids=None,
    )
    # One host sync for the degenerate-batch check (the mean below needs none).
    warn_label_problems(
        "sigmoid_pairwise", x.qids, None if x.self_contrast else x.kids, _DEGENERATE_VALUES
    )
    s = block_scores(x, similarity, 0, x.q.shape[0])
    b = bias.to(s.logits.dtype) if isinstance(bias, Tensor) else bias
    logits = torch.where(s.candidate, s.logits, torch.zeros_like(s.logits)) + b
    sign = s.positive.to(logits.dtype) * 2.0 - 1.0
    terms = torch.where(s.candidate, -F.logsigmoid(sign * logits), torch.zeros_like(logits))
    per_row = terms.sum(dim=1)
    if reduction == "none":
        return per_row
    return per_row.sum() if reduction == "sum" else per_row.mean()


class SigmoidPairwiseLoss(
    LossModule,
    function=sigmoid_pairwise,
    check=_check_options,
    inputs=("query_ids", "key_ids"),
    positional=2,
):
    """Module form of :func:`sigmoid_pairwise` with learnable temperature and bias (SigLIP):
    ``loss_fn(query, key=None, *, query_ids, key_ids=None)``.

    The temperature is stored as ``log(1/τ)`` (SigLIP's ``t'``), the bias as is; both are
    parameters with ``learnable=True`` (the default), buffers otherwise.

    Example:
        >>> import torch
        >>> from contrastkit.losses import SigmoidPairwiseLoss
        >>> loss_fn = SigmoidPairwiseLoss()                   # τ = 0.1, b = −10, both learnable
        >>> img, txt, ids = torch.randn(8, 16), torch.randn(8, 16), torch.arange(8)
        >>> loss = loss_fn(img, txt, query_ids=ids, key_ids=ids)
    """

    extra_options: ClassVar[dict[str, Any]] = {"learnable": True}
    log_scale: Tensor
    bias: Tensor

    def _store(self, options: dict[str, Any], *, learnable: bool) -> None:
        temperature, bias = options["temperature"], options.pop("bias")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        super()._store(options)  # checks; τ (a property) and the bias are kept here
        for name, value in (("log_scale", math.log(1.0 / temperature)), ("bias", bias)):
            if learnable:
                setattr(self, name, nn.Parameter(torch.tensor(float(value))))
            else:
                self.register_buffer(name, torch.tensor(float(value)))

    @property
    def temperature(self) -> Tensor:
        return torch.exp(-self.log_scale)
