"""Memory-linear exact InfoNCE: the (N, M) similarity table is never held whole.

InfoNCE for row ``i`` splits into a linear part and one masked log-sum-exp::

    loss_i = logsumexp_{a ∈ A(i)} s_ia/τ  −  (1/|P(i)|) Σ_{p ∈ P(i)} s_ip/τ

The positive term needs no table: with positives defined by ids,
``Σ_{p∈P(i)} q_i·k_p = q_i · Σ_{p: id_p = id_i} k_p`` (keys summed per id, O((N+M)·D)), minus the
self-pair when the query is contrasted with itself. The log-sum-exp is a custom autograd
function that walks the rows in blocks: the forward keeps only the (N,) log-normalisers, the
backward recomputes each block's similarities and turns them into ``softmax · grad`` for the two
matrix products. Peak extra memory is one block (``block_rows × M``) plus O((N+M)·D); the
result and the gradients are those of the plain path up to float rounding.

``precision="bf16"`` runs the block products (the forward's similarities and its two
softmax products, the backward's recomputed similarities and its two gradient products) on
bfloat16 copies of the queries and keys: the products accumulate in float32 but their outputs
are rounded to bfloat16 (PyTorch has no bf16 × bf16 → fp32 product on the CPU), and each
similarity block is converted to float32 before the masks and the log-sum-exp; the row sums,
the softmax normalisation and the sums of the gradient blocks over row blocks stay in float32,
and so do the positive term and the returned gradients. As that rounding is relative to a
logit's size, each row is shifted inside the product by a logit near its top (the mean positive
logit, given as ``center``) rather than by the bound ``m``.

This module is private: :func:`~contrastkit.losses.functional.info_nce` chooses it.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "BLOCK_ENTRIES",
    "CHUNKED_ABOVE",
    "CHUNKED_SIMILARITIES",
    "PRECISIONS",
    "block_rows_for",
    "check_precision",
    "masked_logsumexp",
    "positive_counts",
    "positive_sums",
    "table_shape",
    "use_chunked",
]

#: The plain path is used up to this many similarity entries N·(M+K); the chunked path above.
CHUNKED_ABOVE = 1 << 22
#: Entries per block of the chunked path (8 MiB in float32: fastest on the 2-core dev CPU).
BLOCK_ENTRIES = 1 << 21
#: Fewest rows per block when the key set is very large.
MIN_BLOCK_ROWS = 128
#: Similarities the chunked path supports (the table is q·k, scaled).
CHUNKED_SIMILARITIES = ("cosine", "dot")
#: Input precisions of the chunked path's block products.
PRECISIONS = ("fp32", "bf16")
_LOW = torch.bfloat16


def check_precision(precision: str) -> None:
    """Refuse a ``precision`` other than those of :data:`PRECISIONS`, naming them."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"precision must be one of {list(PRECISIONS)}, got {precision!r}: 'fp32' (default) "
            f"runs the similarity products in float32, 'bf16' in bfloat16 (chunked path only)."
        )


def table_shape(query: Tensor, key: Tensor | None, negatives: Tensor | None) -> tuple[int, int]:
    """(rows, columns) of the similarity table; (0, 0) for inputs the checks will reject."""
    parts = [query, query if key is None else key] + ([] if negatives is None else [negatives])
    if not all(isinstance(t, Tensor) and t.dim() == 2 for t in parts):
        return 0, 0
    return query.shape[0], sum(t.shape[0] for t in parts[1:])


def use_chunked(
    chunked: bool | None, similarity: str, n_rows: int, n_cols: int, loss_name: str
) -> bool:
    """Resolve ``chunked`` (None: automatic above :data:`CHUNKED_ABOVE` entries)."""
    supported = similarity in CHUNKED_SIMILARITIES
    if chunked is None:
        return supported and n_rows * n_cols > CHUNKED_ABOVE
    if chunked and not supported:
        raise ValueError(
            f"{loss_name}: chunked=True supports similarity in {CHUNKED_SIMILARITIES}, got "
            f"{similarity!r}; use cosine/dot or chunked=False (the plain path holds the full "
            f"table)."
        )
    return bool(chunked)


def block_rows_for(n_rows: int, n_cols: int, block_rows: int | None = None) -> int:
    """Rows per block: ``block_rows`` if given, else as many as fit in :data:`BLOCK_ENTRIES`
    but at least :data:`MIN_BLOCK_ROWS` (matrix products need rows to run at full speed; the
    block then grows with the number of columns, still linearly)."""
    if block_rows is not None:
        if int(block_rows) < 1:
            raise ValueError(f"block_rows must be ≥ 1, got {block_rows}.")
        return int(block_rows)
    return max(1, min(n_rows, max(MIN_BLOCK_ROWS, BLOCK_ENTRIES // max(n_cols, 1))))


def _block_logits(
    qs: Tensor,
    keys: Tensor,
    r0: int,
    r1: int,
    self_contrast: bool,
    row_ids: Tensor | None,
    neg_ids: Tensor | None,
    n_key: int,
    row_offset: int,
) -> Tensor:
    """Scaled similarities of rows r0:r1 to every column, non-candidates at -inf.

    With ``self_contrast``, row ``r`` of ``qs`` is key ``r + row_offset``. bfloat16 ``qs`` and
    ``keys`` (``precision="bf16"``) give the (r1 − r0, M) block in float32 all the same.
    """
    s = qs[r0:r1] @ keys.T
    if s.dtype == _LOW:
        s = s.float()
    if self_contrast:
        rows = torch.arange(r1 - r0, device=s.device)
        s[rows, rows + r0 + row_offset] = float("-inf")
    if neg_ids is not None:
        same = row_ids[r0:r1, None] == neg_ids[None, :]
        s[:, n_key:].masked_fill_(same, float("-inf"))
    return s


#: precision="bf16": largest value of a shifted logit, exp(30)·(M entries) stays finite.
_LOW_HEADROOM = 30.0


def _row_bounds(qs: Tensor, keys: Tensor) -> Tensor:
    """(N,) Cauchy–Schwarz bounds ``m_i = |q_i|·max|k| ≥`` every logit of row ``i``."""
    return qs.norm(dim=1) * (keys.norm(dim=1).max() if keys.shape[0] else 0.0)


def _augment(qs: Tensor, keys: Tensor, shift: Tensor, low: bool) -> tuple[Tensor, Tensor]:
    """``[qs, −shift]`` (N, D + 1) and ``[keys, 1]`` (M, D + 1), whose product is the logits
    ``q·k − shift`` (bfloat16 factors with ``low``: ``shift`` must then be bf16-exact)."""
    q_aug = torch.cat([qs, -shift[:, None]], dim=1)
    k_aug = torch.cat([keys, keys.new_ones(keys.shape[0], 1)], dim=1)
    return (q_aug.to(_LOW), k_aug.to(_LOW)) if low else (q_aug, k_aug)


def _low_shifts(bound: Tensor, center: Tensor | None) -> tuple[Tensor, Tensor]:
    """precision="bf16": (N,) shifts folded into the products, and (N,) lower bounds of the row
    maxima.

    A bf16 product output is rounded relative to its size, so the shift is a logit near the
    top of the row, ``center`` (the mean positive logit), where known, else the bound ``m``;
    but at least ``m − 30`` (no overflow in exp), and rounded to bf16 (exact in the product).
    The row maximum is at least ``center`` (a candidate's logit) or ``−m``.
    """
    if center is None:
        ref, floor = bound, -bound
    else:
        known = torch.isfinite(center)
        ref = torch.where(known, center, bound)
        floor = torch.where(known, center, -bound)
    shift = torch.maximum(ref, bound - _LOW_HEADROOM).to(_LOW).float()
    return shift, floor


class _MaskedLogSumExp(torch.autograd.Function):
    """``lse_i = logsumexp_a (qs_i · keys_a)`` over the candidates of row ``i``, by row blocks.

    ``low``: the block products take bfloat16 factors (``precision="bf16"``); ``center``: see
    :func:`_low_shifts`.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        qs: Tensor,
        keys: Tensor,
        row_ids: Tensor | None,
        neg_ids: Tensor | None,
        n_key: int,
        self_contrast: bool,
        block: int,
        row_offset: int,
        low: bool,
        center: Tensor | None,
    ) -> Tensor:
        n, d = qs.shape
        lse = qs.new_empty(n)
        need_q, need_k = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        # While the block is at hand, also form softmax·keys and softmaxᵀ·queries: when the
        # upstream gradient is the same for every row (a mean or sum over all rows, the usual
        # case) the backward is then two scalings, with no second pass over the table.
        soft_k = torch.zeros_like(qs) if need_q else None
        soft_q = torch.zeros_like(keys) if need_k else None
        # Shift each row by a Cauchy–Schwarz bound m_i = |q_i|·max|k| ≥ every logit, folded
        # into the product by one extra column ([q, −m]·[k, 1] = q·k − m), and get the row sums
        # from the second product ([k, 1]): the block is touched once, by exp. Rows whose
        # logit range (2·m_i) could underflow exp take the exact row maximum instead.
        bound = _row_bounds(qs, keys)
        if low:
            # bf16: a shift near the row's top logits (see _low_shifts); the softmax products
            # take bf16 factors, and the row sums are float32 sums of the float32 block.
            shifts, floor = _low_shifts(bound, center)
            k_low = keys.to(_LOW)
        else:
            shifts, floor = bound, -bound
        q_aug, k_aug = _augment(qs, keys, shifts, low)
        for r0 in range(0, n, block):
            r1 = min(n, r0 + block)
            s = _block_logits(
                q_aug, k_aug, r0, r1, self_contrast, row_ids, neg_ids, n_key, row_offset
            )
            shift = shifts[r0:r1]
            if r1 > r0 and float((shift - floor[r0:r1]).max()) > 80.0:
                top = s.amax(dim=1)
                top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
                s.sub_(top[:, None])
                shift = shift + top
            s.exp_()
            if low:
                total = s.sum(dim=1)
                s_low = s.to(_LOW)
                prod = s_low @ k_low if need_q else None  # (b, D): Σ_a e_ia k_a
            else:
                prod = s @ k_aug  # (b, D + 1): Σ_a e_ia k_a and Σ_a e_ia
                total = prod[:, d]
            lse[r0:r1] = total.log() + shift
            inv = torch.where(total > 0, 1.0 / total, torch.zeros_like(total))[:, None]
            if need_q:
                torch.mul(prod[:, :d], inv, out=soft_k[r0:r1])
            if need_k:
                if low:
                    soft_q.add_(s_low.T @ (qs[r0:r1] * inv).to(_LOW))
                else:
                    soft_q.addmm_(s.T, qs[r0:r1] * inv)
        ctx.save_for_backward(qs, keys, lse, row_ids, neg_ids, soft_k, soft_q, shifts)
        ctx.n_key, ctx.self_contrast, ctx.block = n_key, self_contrast, block
        ctx.row_offset, ctx.low = row_offset, low
        return lse

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        with torch.autocast(grad.device.type, enabled=False):
            return _MaskedLogSumExp._backward(ctx, grad)

    @staticmethod
    def _backward(ctx, grad: Tensor):
        qs, keys, lse, row_ids, neg_ids, soft_k, soft_q, shifts = ctx.saved_tensors
        n = qs.shape[0]
        need_q, need_k = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        no_grads = (None,) * 8
        if n and bool((grad == grad[0]).all()):  # the same weight on every row
            g = grad[0]
            return (soft_k * g if need_q else None, soft_q * g if need_k else None, *no_grads)
        dq = torch.zeros_like(qs) if need_q else None
        dk = torch.zeros_like(keys) if need_k else None
        # Rows without any candidate have lse = -inf and no softmax: their weights are zero.
        finite = torch.isfinite(lse)
        lse = torch.where(finite, lse, torch.zeros_like(lse))
        grad = torch.where(finite, grad, torch.zeros_like(grad))
        # |g|·softmax in two passes over the block: exp(s − (lse − log|g|)); the sign of g
        # is applied to the (N, D) factors instead (g = 0 gives a zero row, not a NaN).
        shift = lse - torch.log(grad.abs())
        sign = torch.sign(grad)[:, None]
        if ctx.low:
            # The forward's bf16 blocks, its shifts folded in: the same rounding as the lse.
            q_blk, k_blk = _augment(qs, keys, shifts, True)
            shift = shift - shifts
            k_low = keys.to(_LOW)
        else:
            q_blk, k_blk = qs, keys
        for r0 in range(0, n, ctx.block):
            r1 = min(n, r0 + ctx.block)
            p = _block_logits(
                q_blk,
                k_blk,
                r0,
                r1,
                ctx.self_contrast,
                row_ids,
                neg_ids,
                ctx.n_key,
                ctx.row_offset,
            )
            p.sub_(shift[r0:r1, None]).exp_()
            if ctx.low:
                p_low = p.to(_LOW)
                if need_q:
                    torch.mul(p_low @ k_low, sign[r0:r1], out=dq[r0:r1])
                if need_k:
                    dk.add_(p_low.T @ (qs[r0:r1] * sign[r0:r1]).to(_LOW))
                continue
            if need_q:
                torch.mm(p, keys, out=dq[r0:r1])
                dq[r0:r1].mul_(sign[r0:r1])
            if need_k:
                dk.addmm_(p.T, qs[r0:r1] * sign[r0:r1])
        return (dq, dk, *no_grads)


def masked_logsumexp(
    qs: Tensor,
    keys: Tensor,
    *,
    self_contrast: bool,
    row_ids: Tensor | None = None,
    neg_ids: Tensor | None = None,
    n_key: int | None = None,
    block_rows: int | None = None,
    row_offset: int = 0,
    precision: str = "fp32",
    center: Tensor | None = None,
) -> Tensor:
    """Row log-normalisers of InfoNCE without materialising the (N, M) table.

    Args:
        qs: (N, D) queries already divided by the temperature.
        keys: (M, D) keys, extra negatives appended as the last ``M − n_key`` rows.
        self_contrast: the queries are keys ``row_offset : row_offset + N`` themselves; each
            row's own key is excluded.
        row_ids, neg_ids: (N,) and (M − n_key,) ids; an extra negative with the row's id is
            excluded from that row (omit both to keep every extra negative).
        n_key: number of leading key rows that are not extra negatives (default: all).
        block_rows: rows per block (default: :func:`block_rows_for`).
        row_offset: see ``self_contrast`` (a rank's rows inside gathered keys).
        precision: ``"fp32"`` (default) or ``"bf16"``: the block products take bfloat16
            copies of ``qs`` and ``keys`` (float32 accumulation, bf16-rounded outputs turned
            to float32 before the masks and the log-sum-exp). Needs float32 ``qs`` and ``keys``.
        center: bf16 only: (N,) a logit among each row's candidates, NaN where unknown (the
            mean positive logit): the blocks are shifted by it before their bf16 rounding, so
            that the logits that matter are small and rounded finely (default: the bound
            ``|q_i|·max|k|``).

    Returns:
        (N,) ``logsumexp`` over each row's candidates (``-inf`` for a row with none).
    """
    check_precision(precision)
    low = precision == "bf16"
    if low and (qs.dtype != torch.float32 or keys.dtype != torch.float32):
        raise ValueError(
            f"precision='bf16' takes float32 queries and keys, got {qs.dtype} and {keys.dtype}."
        )
    n_key = keys.shape[0] if n_key is None else n_key
    block = block_rows_for(qs.shape[0], keys.shape[0], block_rows)
    if neg_ids is None:
        row_ids = None
    # Under bf16 autocast the products would round every logit to 8 bits of mantissa (unless
    # asked for: precision="bf16").
    with torch.autocast(qs.device.type, enabled=False):
        return _MaskedLogSumExp.apply(
            qs,
            keys,
            row_ids,
            neg_ids,
            n_key,
            self_contrast,
            block,
            row_offset,
            low,
            center.detach() if low and center is not None else None,
        )


def positive_sums(
    qs: Tensor,
    keys: Tensor,
    qids: Tensor,
    kids: Tensor,
    *,
    self_contrast: bool,
    row_offset: int = 0,
) -> tuple[Tensor, Tensor]:
    """``Σ_{p∈P(i)} qs_i · keys_p`` and ``|P(i)|`` for id-defined positives, in O((N+M)·D).

    Keys are summed per id; with ``self_contrast`` the self-pair (row i is key
    ``i + row_offset``) is removed.
    """
    q_group, k_group, n_groups = _groups(qids, kids)
    per_id = keys.new_zeros(n_groups, keys.shape[1]).index_add(0, k_group, keys)
    sums = (qs * per_id[q_group]).sum(dim=1)
    if self_contrast:
        sums = sums - (qs * keys[row_offset : row_offset + qs.shape[0]]).sum(dim=1)
    return sums, positive_counts(qids, kids, self_contrast=self_contrast)


def _groups(qids: Tensor, kids: Tensor) -> tuple[Tensor, Tensor, int]:
    """Dense group indices of the query and key ids (shared numbering) and their count."""
    uniq, inverse = torch.unique(torch.cat([qids, kids]), return_inverse=True)
    return inverse[: qids.shape[0]], inverse[qids.shape[0] :], int(uniq.shape[0])


def positive_counts(qids: Tensor, kids: Tensor, *, self_contrast: bool) -> Tensor:
    """(N,) number of keys sharing each query's id (minus the self-pair), in O(N + M)."""
    q_group, k_group, n_groups = _groups(qids, kids)
    counts = torch.bincount(k_group, minlength=n_groups)[q_group]
    return counts - 1 if self_contrast else counts
