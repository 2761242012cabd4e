"""InfoNCE with id-defined positives: one implementation for NT-Xent, SupCon, CLIP and queues.

References:
    van den Oord et al. 2018, "Representation Learning with Contrastive Predictive Coding".
    Chen et al. 2020, "A Simple Framework for Contrastive Learning" (NT-Xent, SimCLR).
    Khosla et al. 2020, "Supervised Contrastive Learning" (SupCon, the L_out form).
    Radford et al. 2021, "Learning Transferable Visual Models From Natural Language Supervision".
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from contrastkit import distributed as dist
from contrastkit._checks import check_choice, check_positive
from contrastkit.distances import METRICS
from contrastkit.losses._base import TemperatureLossModule
from contrastkit.losses._chunked import (
    CHUNKED_ABOVE,
    CHUNKED_SIMILARITIES,
    PRECISIONS,
    block_rows_for,
    check_precision,
    masked_logsumexp,
    positive_sums,
    table_shape,
    use_chunked,
)
from contrastkit.losses._contrast import (
    ID_INPUTS,
    PairInputs,
    block_scores,
    check_positive_counts,
    no_negatives,
    prepare_pair_inputs,
    reduce_rows,
    validate_reduction,
)
from contrastkit.losses._gather import check_gather, gathered_loss, resolve_gather

__all__ = [
    "CHUNKED_ABOVE",
    "CHUNKED_SIMILARITIES",
    "PRECISIONS",
    "InfoNCELoss",
    "NTXentLoss",
    "SupConLoss",
    "info_nce",
    "nt_xent",
    "sup_con",
]


def _one_direction(
    query: Tensor,
    key: Tensor | None,
    *,
    ignore_rows_without_positive: bool,
    reduction: str,
    rows: slice | None = None,
    chunked: bool = False,
    block_rows: int | None = None,
    precision: str = "fp32",
    loss_name: str = "info_nce",
    **pair,
) -> Tensor:
    """One direction of the loss. ``pair``: the ids, temperature, similarity and negatives of
    :func:`prepare_pair_inputs`. ``rows``: only these query rows of a self-contrast (a rank's
    share of gathered embeddings). ``chunked``: the memory-linear path, its block products in
    ``precision`` (``"bf16"`` only with ``chunked``). ``loss_name``: the name its errors and
    warnings give.

    A batch without any negative (one id over the whole, gathered, batch) gives zeros on the
    graph, with a :class:`~contrastkit._checks.DegenerateBatchWarning` once per process."""
    x = prepare_pair_inputs(query, key, **pair)
    r0, r1 = (0, x.q.shape[0]) if rows is None else (rows.start, rows.stop)
    if chunked:
        per_row, n_pos = _chunked_rows(x, r0, r1, block_rows=block_rows, precision=precision)
    else:
        per_row, n_pos = _plain_rows(x, r0, r1, similarity=pair["similarity"])
    _, degenerate = check_positive_counts(
        n_pos,
        ignore_rows_without_positive=ignore_rows_without_positive,
        loss_name=loss_name,
        no_negatives=no_negatives(x),
    )
    if degenerate:
        per_row = per_row * 0.0  # nothing is contrasted: zero, still on the graph
    return reduce_rows(per_row, n_pos > 0, reduction)


def _plain_rows(x: PairInputs, r0: int, r1: int, *, similarity: str) -> tuple[Tensor, Tensor]:
    """Per-row losses and positive counts of rows r0:r1 from the whole (rows, M) table."""
    s = block_scores(x, similarity, r0, r1)
    n_pos = s.positive.sum(dim=1)
    keep = n_pos > 0
    # Rows that are skipped may have no candidate at all (-inf everywhere); give them finite
    # logits so that neither the value nor the gradient becomes NaN.
    logits = s.logits.masked_fill(~keep[:, None], 0.0)
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos_log_prob = torch.where(s.positive, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
    return -pos_log_prob / n_pos.clamp_min(1).to(log_prob.dtype), n_pos


def _chunked_rows(
    x: PairInputs, r0: int, r1: int, *, block_rows: int | None, precision: str = "fp32"
) -> tuple[Tensor, Tensor]:
    """:func:`_plain_rows` in O((N+M)·D + block) memory (see ``_chunked``): (r1 − r0,) row
    losses and positive counts. ``precision``: of the log-sum-exp's block products; the
    positive term is always in the compute dtype."""
    qs, qids = x.q[r0:r1] / x.temperature, x.qids[r0:r1]
    keys = x.k if x.negatives is None else torch.cat([x.k, x.negatives])
    pos_sum, n_pos = positive_sums(
        qs, x.k, qids, x.kids, self_contrast=x.self_contrast, row_offset=r0
    )
    pos_mean = pos_sum / n_pos.clamp_min(1).to(pos_sum.dtype)
    lse = masked_logsumexp(
        qs,
        keys,
        self_contrast=x.self_contrast,
        row_ids=qids,
        neg_ids=x.negative_ids,
        n_key=x.k.shape[0],
        block_rows=block_rows,
        row_offset=r0,
        precision=precision,
        # bf16: shift each row's block by its mean positive logit before the rounding
        center=torch.where(n_pos > 0, pos_mean, torch.nan) if precision == "bf16" else None,
    )
    return lse - pos_mean, n_pos


def _check_options(
    *,
    temperature: float | Tensor,
    similarity: str,
    reduction: str,
    chunked: bool | None,
    block_rows: int | None,
    symmetric: bool = False,
    precision: str = "fp32",
    **_: object,
) -> None:
    """The checks of the options of :func:`info_nce`, :func:`nt_xent` and :func:`sup_con` that
    need no tensor; their modules run them once, when built."""
    validate_reduction(reduction)
    if not isinstance(temperature, Tensor):  # a tensor τ is checked with the inputs
        check_positive(temperature, "temperature", "Typical values are 0.05–0.5.")
    check_choice(similarity, "similarity", METRICS)
    if symmetric and reduction != "mean":
        raise ValueError(
            f"reduction={reduction!r} is not defined for symmetric=True (the two directions "
            f"have different rows); use reduction='mean' or call info_nce once per direction."
        )
    use_chunked(chunked, similarity, 0, 0, "info_nce")
    if block_rows is not None:
        block_rows_for(0, 0, block_rows)
    check_precision(precision)
    if precision == "bf16" and (chunked is False or similarity not in CHUNKED_SIMILARITIES):
        raise ValueError(
            f"precision='bf16' runs the chunked path's block products in bfloat16, which needs "
            f"similarity in {CHUNKED_SIMILARITIES} and chunked=None or True, got "
            f"similarity={similarity!r}, chunked={chunked!r}; use precision='fp32' otherwise."
        )


def _check_bf16_inputs(precision: str, loss_name: str, *tensors: Tensor | None) -> None:
    """precision='bf16' refuses float64 embeddings (their point is the precision it drops)."""
    if precision != "bf16":
        return
    if any(isinstance(t, Tensor) and t.dtype == torch.float64 for t in tensors):
        raise ValueError(
            f"{loss_name}: precision='bf16' rounds the similarity products to bfloat16, which "
            f"defeats float64 embeddings; pass float32 (or bf16/fp16) embeddings, or keep "
            f"precision='fp32' for float64."
        )


def _instances_only(gather: str | None) -> None:
    if gather == "labels":
        raise ValueError(
            "nt_xent numbers the ids of its 2N views itself (instance ids), so gather must be "
            "None or 'instances', got 'labels'; for class labels use sup_con."
        )


def _check_nt_xent(*, gather: str | None, **options) -> None:
    """NTXentLoss's check: nt_xent's own (its gather), then :func:`info_nce`'s."""
    _instances_only(gather)
    _check_options(**options)


def info_nce(
    query: Tensor,
    key: Tensor | None = None,
    *,
    query_ids: Tensor,
    key_ids: Tensor | None = None,
    temperature: float | Tensor = 0.1,
    similarity: str = "cosine",
    negatives: Tensor | None = None,
    negative_ids: Tensor | None = None,
    symmetric: bool = False,
    ignore_rows_without_positive: bool = False,
    reduction: str = "mean",
    chunked: bool | None = None,
    block_rows: int | None = None,
    precision: str = "fp32",
    gather: str | None = None,
) -> Tensor:
    """InfoNCE / NT-Xent / SupCon loss with positives given by integer ids.

    For query row ``i`` with positives ``P(i)`` (keys whose id equals ``query_ids[i]``) and
    candidates ``A(i)`` (all keys, minus the self-pair when ``key is None``, plus the extra
    ``negatives``)::

        loss_i = −(1/|P(i)|) Σ_{p∈P(i)} log( exp(s_ip/τ) / Σ_{a∈A(i)} exp(s_ia/τ) )

    and the result is the mean of ``loss_i`` over rows.

    Args:
        query: (N, D) embeddings. Any float dtype; bf16/fp16 are upcast to float32 inside.
        key: (M, D) embeddings, or ``None`` to contrast ``query`` with itself (SimCLR, SupCon),
            in which case each row's self-pair is excluded from positives and candidates.
        query_ids: (N,) integer ids. Rows with equal ids are positives: instance indices for
            views of one sample (NT-Xent), class labels (SupCon), ``arange(N)`` for paired data.
        key_ids: (M,) integer ids of the keys; defaults to ``query_ids`` when M == N.
        temperature: τ > 0, a float or a scalar tensor (learnable temperatures work).
        similarity: ``"cosine"`` (default; rows are L2-normalised inside), ``"dot"``,
            ``"euclidean"`` or ``"squared_euclidean"`` (negated distances).
        negatives: optional (K, D) extra negatives shared by every row (a queue, a memory bank,
            mined hard negatives). They are never positives.
        negative_ids: optional (K,) ids of ``negatives``; an extra negative whose id equals the
            row's id is removed from that row's candidates (no false negatives from a queue).
        symmetric: also contrast keys against queries and average both directions (CLIP). Needs
            ``key``; the extra negatives only enter the query→key direction.
        ignore_rows_without_positive: leave rows without any positive out of the loss instead of
            raising (the mean is over the remaining rows).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (per-row (N,) losses, zero for
            ignored rows); ``symmetric`` needs ``"mean"``.
        chunked: compute the (N, M + K) similarity table in row blocks, recomputed in a custom
            backward, so that extra memory grows linearly in N (exact InfoNCE for N = 131,072
            in a few GiB). ``None`` (default) chooses it above 2²² entries for cosine and dot
            similarity; ``True`` forces it, ``False`` holds the whole table (needed for the
            euclidean similarities). Same value and gradients either way, up to float rounding.
        block_rows: rows per block of the chunked path (default: 2²¹ entries per block).
        precision: ``"fp32"`` (default) or ``"bf16"``: the input precision of the chunked
            path's block products (the q·k similarity blocks, forward and recomputed in the
            backward, and the two softmax/gradient products). With ``"bf16"`` they take
            bfloat16 copies of the (normalised, temperature-scaled) embeddings and accumulate in
            float32; PyTorch rounds their outputs to bfloat16 (≈ 3 significant digits), and
            each similarity block is turned back to float32 before the masks and the
            log-sum-exp. The log-sum-exp, the softmax normalisation, the sums over blocks, the
            positive term and the returned loss and gradients stay float32 (gradients in the
            inputs' dtype); each row's block is shifted by its mean positive logit before the
            rounding. Measured against float64 (N = 2048, d = 128, τ = 0.07 and 0.1): loss
            within 5e-4 relative, gradient within 4e-3 relative norm, up to 2e-2 when the
            softmax is peaked on the positives (loss ≈ 0.1), whose small gradient keeps the
            rounding of its two terms. About half the fp32 time where the CPU has bf16
            instructions (AVX512-BF16, AMX); without them it can be slower. ``"bf16"``
            applies to the chunked path only: it selects it (``chunked=None`` means chunked
            at every size) and refuses ``chunked=False`` and the euclidean similarities, and
            it refuses float64 embeddings (use ``"fp32"``).
        gather: under torch.distributed, contrast with every rank's rows: ``"instances"`` when
            ids number this rank's samples from 0 (SimCLR: offset per rank to stay distinct),
            ``"labels"`` when ids mean the same everywhere (SupCon). Keys (or, with
            ``key=None``, the query set) are gathered with an autograd-aware all-gather; each
            rank computes the rows of its own queries. The loss returned on each rank is
            scaled so that its average over ranks (what data-parallel gradient averaging
            differentiates) is the loss of the whole global batch; ``"none"`` gives the local
            rows. ``negatives`` are not gathered (a queue is global already). No effect
            outside a process group.

    Returns:
        A scalar (float32, or float64 for float64 inputs), or (N,) with ``reduction="none"``.

    Raises:
        ValueError: on mismatched shapes, ids of the wrong length or dtype, NaN/inf embeddings,
            a temperature ≤ 0, an empty batch, rows without a positive, an unknown
            ``precision``, or ``precision="bf16"`` with float64 embeddings, ``chunked=False``
            or a euclidean similarity.

    Warns:
        DegenerateBatchWarning: once per process (per loss and problem) when no row has a
            negative (every id of the batch, gathered under ``gather``, is the same and no
            extra negative has another id): the loss is then 0, still on the graph, with zero
            gradients, instead of a value that contrasts nothing. Also when no row has a
            positive under ``ignore_rows_without_positive=True`` (the loss is 0 too).

    References: van den Oord, Li, Vinyals 2018, "Representation Learning with Contrastive
    Predictive Coding" (InfoNCE); Chen et al. 2020 (NT-Xent, SimCLR); Khosla et al. 2020
    (SupCon); Radford et al. 2021 (CLIP, symmetric).

    Example:
        >>> import torch
        >>> from contrastkit.losses.functional import info_nce
        >>> z1, z2 = torch.randn(4, 8), torch.randn(4, 8)       # two views of 4 samples
        >>> ids = torch.arange(4)
        >>> nt_xent = info_nce(torch.cat([z1, z2]), query_ids=ids.repeat(2))
        >>> clip = info_nce(z1, z2, query_ids=ids, key_ids=ids, symmetric=True)
        >>> labels = torch.tensor([0, 1, 0, 1, 1, 0, 0, 1])
        >>> sup_con = info_nce(torch.cat([z1, z2]), query_ids=labels)
    """
    return _info_nce(
        query,
        key,
        query_ids=query_ids,
        key_ids=key_ids,
        temperature=temperature,
        similarity=similarity,
        negatives=negatives,
        negative_ids=negative_ids,
        symmetric=symmetric,
        ignore_rows_without_positive=ignore_rows_without_positive,
        reduction=reduction,
        chunked=chunked,
        block_rows=block_rows,
        precision=precision,
        gather=gather,
        loss_name="info_nce",
    )


def _info_nce(
    query: Tensor,
    key: Tensor | None = None,
    *,
    query_ids: Tensor,
    key_ids: Tensor | None = None,
    temperature: float | Tensor = 0.1,
    similarity: str = "cosine",
    negatives: Tensor | None = None,
    negative_ids: Tensor | None = None,
    symmetric: bool = False,
    ignore_rows_without_positive: bool = False,
    reduction: str = "mean",
    chunked: bool | None = None,
    block_rows: int | None = None,
    precision: str = "fp32",
    gather: str | None = None,
    loss_name: str = "info_nce",
) -> Tensor:
    """:func:`info_nce`, its errors and warnings naming ``loss_name`` (the public loss that
    called it: sup_con, nt_xent, n_pair)."""
    _check_options(
        temperature=temperature,
        similarity=similarity,
        reduction=reduction,
        chunked=chunked,
        block_rows=block_rows,
        symmetric=symmetric,
        precision=precision,
    )
    _check_bf16_inputs(precision, loss_name, query, key, negatives)
    check_gather(gather)
    if symmetric and key is None:
        raise ValueError(
            "symmetric=True needs key: the symmetric (CLIP) form contrasts two different sets "
            "(e.g. images and texts). With key=None the loss is already symmetric."
        )
    common = dict(
        temperature=temperature,
        similarity=similarity,
        ignore_rows_without_positive=ignore_rows_without_positive,
        reduction=reduction,
    )
    direction = functools.partial(_one_direction, loss_name=loss_name)
    shape = table_shape(query, key, negatives)
    if precision == "bf16" or use_chunked(chunked, similarity, *shape, "info_nce"):
        direction = functools.partial(
            _one_direction,
            chunked=True,
            block_rows=block_rows,
            precision=precision,
            loss_name=loss_name,
        )
    pair = dict(
        query_ids=query_ids,
        key_ids=key_ids,
        negatives=negatives,
        negative_ids=negative_ids,
        **common,
    )
    if gather is not None and dist.is_distributed():
        offset = gather == "instances"
        return gathered_loss(direction, query, key, symmetric=symmetric, offset=offset, **pair)
    forward = direction(query, key, **pair)
    if not symmetric:
        return forward
    backward = direction(
        key,
        query,
        query_ids=query_ids if key_ids is None else key_ids,
        key_ids=query_ids,
        negatives=None,
        negative_ids=None,
        **common,
    )
    return 0.5 * (forward + backward)


def nt_xent(
    view1: Tensor,
    view2: Tensor,
    *,
    temperature: float | Tensor = 0.1,
    similarity: str = "cosine",
    reduction: str = "mean",
    chunked: bool | None = None,
    block_rows: int | None = None,
    precision: str = "fp32",
    gather: str | None = None,
) -> Tensor:
    """NT-Xent (SimCLR): two views per sample, each view's positive is the other view.

    Equivalent to ``info_nce(cat([view1, view2]), query_ids=arange(N).repeat(2))``: the 2N
    views are contrasted with each other, each has one positive and 2N−2 negatives.

    Args:
        view1: (N, D) embeddings of the first view of N samples.
        view2: (N, D) embeddings of the second view, row-aligned with ``view1``.
        temperature, similarity, reduction, chunked, block_rows, precision: as in
            :func:`info_nce`; ``"none"`` returns (2N,).
        gather: ``None`` or ``"instances"``: under torch.distributed, contrast with every
            process's views (``info_nce(..., gather="instances")``; the ids are instance ids,
            so ``"labels"`` is refused). ``True`` is deprecated for ``"instances"``.

    Reference: Chen, Kornblith, Norouzi, Hinton 2020, "A Simple Framework for Contrastive
    Learning of Visual Representations" (SimCLR).

    Example:
        >>> import torch
        >>> from contrastkit.losses.functional import nt_xent
        >>> loss = nt_xent(torch.randn(16, 32), torch.randn(16, 32), temperature=0.5)
    """
    gather = resolve_gather(gather, "nt_xent")
    _instances_only(gather)
    if isinstance(view1, Tensor) and isinstance(view2, Tensor) and view1.shape != view2.shape:
        raise ValueError(
            f"view1 and view2 must have the same shape (N, D), got {tuple(view1.shape)} and "
            f"{tuple(view2.shape)}; pair each sample's two views row by row."
        )
    n = view1.shape[0]
    ids = torch.arange(n, device=view1.device).repeat(2)
    return _info_nce(
        torch.cat([view1, view2], dim=0),
        query_ids=ids,
        temperature=temperature,
        similarity=similarity,
        reduction=reduction,
        chunked=chunked,
        block_rows=block_rows,
        precision=precision,
        gather=gather,
        loss_name="nt_xent",
    )


def sup_con(
    features: Tensor,
    labels: Tensor,
    *,
    temperature: float | Tensor = 0.1,
    similarity: str = "cosine",
    ignore_rows_without_positive: bool = False,
    reduction: str = "mean",
    chunked: bool | None = None,
    block_rows: int | None = None,
    precision: str = "fp32",
    gather: str | None = None,
) -> Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, L_out): class labels as ids.

    Args:
        features: (N, D) embeddings, or (B, V, D) with V views per sample (as in the paper's
            reference code); views are flattened view-major to (V·B, D).
        labels: (N,) or (B,) integer class labels.
        temperature, similarity, ignore_rows_without_positive, reduction, chunked,
            block_rows, precision: as in :func:`info_nce`.
        gather: as in :func:`info_nce`: ``"labels"`` under torch.distributed contrasts with
            every process's samples, same-class samples on other processes being positives
            (``"instances"`` if the labels are instance ids numbered per process). ``True`` is
            deprecated for ``"labels"``.

    Warns:
        DegenerateBatchWarning: once per process when every label of the batch (gathered under
            ``gather``) is the same: with no negatives the loss is 0, still on the graph, with
            zero gradients (the plain formula would only equalise same-class similarities and
            report a meaningless value). Labels that are all unique raise, as in
            :func:`info_nce` (or warn under ``ignore_rows_without_positive=True``).

    Reference: Khosla et al. 2020, "Supervised Contrastive Learning" (the L_out form).

    Example:
        >>> import torch
        >>> from contrastkit.losses.functional import sup_con
        >>> feats = torch.randn(8, 2, 16)                      # 8 samples, 2 views each
        >>> loss = sup_con(feats, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
    """
    if isinstance(features, Tensor) and features.dim() == 3:
        b, v, _ = features.shape
        if not isinstance(labels, Tensor):
            labels = torch.as_tensor(labels)
        if labels.dim() != 1 or labels.shape[0] != b:
            raise ValueError(
                f"features has shape (B={b}, V={v}, D); labels must be (B,)={b} class labels, "
                f"got shape {tuple(labels.shape)}."
            )
        features = features.transpose(0, 1).reshape(b * v, -1)
        labels = labels.repeat(v)
    return _info_nce(
        features,
        query_ids=labels,
        temperature=temperature,
        similarity=similarity,
        ignore_rows_without_positive=ignore_rows_without_positive,
        reduction=reduction,
        chunked=chunked,
        block_rows=block_rows,
        precision=precision,
        gather=resolve_gather(gather, "sup_con"),
        loss_name="sup_con",
    )


class InfoNCELoss(
    TemperatureLossModule,
    function=info_nce,
    check=_check_options,
    inputs=ID_INPUTS,
    positional=1,
):
    """Module form of :func:`info_nce`, optionally with a learnable temperature (CLIP):
    ``loss_fn(query, key=None, *, query_ids, key_ids=None, negatives=None, negative_ids=None)``.

    Its options are :func:`info_nce`'s (``gather="instances"`` or ``"labels"`` contrasts with
    every rank's rows under torch.distributed), plus ``learn_temperature``: τ is kept as log τ,
    a buffer, or a parameter that the optimiser trains.

    Example:
        >>> import torch
        >>> from contrastkit.losses import InfoNCELoss
        >>> loss_fn = InfoNCELoss(temperature=0.07, symmetric=True, learn_temperature=True)
        >>> img, txt, ids = torch.randn(8, 32), torch.randn(8, 32), torch.arange(8)
        >>> loss = loss_fn(img, txt, query_ids=ids, key_ids=ids)
    """


class NTXentLoss(TemperatureLossModule, function=nt_xent, check=_check_nt_xent, positional=1):
    """Module form of :func:`nt_xent` (SimCLR): ``loss_fn(view1, view2)``.

    Example:
        >>> import torch
        >>> from contrastkit.losses import NTXentLoss
        >>> loss = NTXentLoss(temperature=0.5)(torch.randn(16, 32), torch.randn(16, 32))
    """


class SupConLoss(TemperatureLossModule, function=sup_con, check=_check_options, positional=1):
    """Module form of :func:`sup_con`: ``loss_fn(features, labels)``.

    Example:
        >>> import torch
        >>> from contrastkit.losses import SupConLoss
        >>> loss = SupConLoss(temperature=0.1)(torch.randn(8, 16), torch.tensor([0, 0, 1, 1] * 2))
    """
