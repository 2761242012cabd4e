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

This module is private: :func:`~contrastkit.losses.functional.info_nce` chooses it.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "BLOCK_ENTRIES",
    "CHUNKED_ABOVE",
    "CHUNKED_SIMILARITIES",
    "block_rows_for",
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

    With ``self_contrast``, row ``r`` of ``qs`` is key ``r + row_offset``.
    """
    s = qs[r0:r1] @ keys.T
    if self_contrast:
        rows = torch.arange(r1 - r0, device=s.device)
        s[rows, rows + r0 + row_offset] = float("-inf")
    if neg_ids is not None:
        same = row_ids[r0:r1, None] == neg_ids[None, :]
        s[:, n_key:].masked_fill_(same, float("-inf"))
    return s


class _MaskedLogSumExp(torch.autograd.Function):
    """``lse_i = logsumexp_a (qs_i · keys_a)`` over the candidates of row ``i``, by row blocks."""

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
        bound = qs.norm(dim=1) * (keys.norm(dim=1).max() if keys.shape[0] else 0.0)
        q_aug = torch.cat([qs, -bound[:, None]], dim=1)
        k_aug = torch.cat([keys, keys.new_ones(keys.shape[0], 1)], dim=1)
        for r0 in range(0, n, block):
            r1 = min(n, r0 + block)
            s = _block_logits(
                q_aug, k_aug, r0, r1, self_contrast, row_ids, neg_ids, n_key, row_offset
            )
            shift = bound[r0:r1]
            if r1 > r0 and float(shift.max()) > 40.0:
                top = s.amax(dim=1)
                top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
                s.sub_(top[:, None])
                shift = shift + top
            s.exp_()
            prod = s @ k_aug  # (b, D + 1): Σ_a e_ia k_a and Σ_a e_ia
            total = prod[:, d]
            lse[r0:r1] = total.log() + shift
            inv = torch.where(total > 0, 1.0 / total, torch.zeros_like(total))[:, None]
            if need_q:
                torch.mul(prod[:, :d], inv, out=soft_k[r0:r1])
            if need_k:
                soft_q.addmm_(s.T, qs[r0:r1] * inv)
        ctx.save_for_backward(qs, keys, lse, row_ids, neg_ids, soft_k, soft_q)
        ctx.n_key, ctx.self_contrast, ctx.block = n_key, self_contrast, block
        ctx.row_offset = row_offset
        return lse

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        with torch.autocast(grad.device.type, enabled=False):
            return _MaskedLogSumExp._backward(ctx, grad)

    @staticmethod
    def _backward(ctx, grad: Tensor):
        qs, keys, lse, row_ids, neg_ids, soft_k, soft_q = ctx.saved_tensors
        n = qs.shape[0]
        need_q, need_k = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if n and bool((grad == grad[0]).all()):  # the same weight on every row
            g = grad[0]
            return (
                soft_k * g if need_q else None,
                soft_q * g if need_k else None,
                None,
                None,
                None,
                None,
                None,
                None,
            )
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
        for r0 in range(0, n, ctx.block):
            r1 = min(n, r0 + ctx.block)
            p = _block_logits(
                qs, keys, r0, r1, ctx.self_contrast, row_ids, neg_ids, ctx.n_key, ctx.row_offset
            )
            p.sub_(shift[r0:r1, None]).exp_()
            if need_q:
                torch.mm(p, keys, out=dq[r0:r1])
                dq[r0:r1].mul_(sign[r0:r1])
            if need_k:
                dk.addmm_(p.T, qs[r0:r1] * sign[r0:r1])
        return dq, dk, None, None, None, None, None, None


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

    Returns:
        (N,) ``logsumexp`` over each row's candidates (``-inf`` for a row with none).
    """
    n_key = keys.shape[0] if n_key is None else n_key
    block = block_rows_for(qs.shape[0], keys.shape[0], block_rows)
    if neg_ids is None:
        row_ids = None
    # Under bf16 autocast the products would round every logit to 8 bits of mantissa.
    with torch.autocast(qs.device.type, enabled=False):
        return _MaskedLogSumExp.apply(
            qs, keys, row_ids, neg_ids, n_key, self_contrast, block, row_offset
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
