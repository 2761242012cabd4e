"""Exact top-k search by cosine similarity or dot product, in bounded memory.

:func:`topk_similar` is the one nearest-neighbour search of the package: kNN classification,
retrieval metrics, the report's neighbour tables, the exact backend of the embedding index and
offline hard-negative mining all call it. It lives in the toolbox (beside
:mod:`contrastkit.distances`) because the miners, which are toolbox, need it, and the toolbox
may not import from ``index/`` or ``evaluate/``.

Memory: queries are scored ``chunk_size`` at a time against ``key_chunk_size`` keys at a time;
each block's top k is merged into the running top k of its queries, so apart from a normalised
copy of the keys (cosine) nothing larger than ``chunk_size × max(key_chunk_size, 2k)`` is
formed, and the (Q, N) table never is.

Order: best score first; exactly equal scores are ordered by key index, the lower first, and
the same rule decides which of several keys tied at the k-th score are kept. The result does
not depend on the chunk sizes, except that scores are computed by matrix products whose last
bits can depend on the shapes involved.

Example:
    >>> import torch
    >>> from contrastkit.neighbours import topk_similar
    >>> keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> scores, idx = topk_similar(torch.tensor([[1.0, 0.2]]), keys, k=2)
    >>> idx.tolist(), [round(s, 3) for s in scores[0].tolist()]
    ([[0, 2]], [0.981, 0.832])
    >>> topk_similar(keys, keys, k=1, exclude_self=True)[1].flatten().tolist()
    [2, 2, 0]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit._checks import check_choice, compute_dtype

__all__ = ["topk_similar"]

_METRICS = ("cosine", "dot")


def _check_inputs(queries: Tensor, keys: Tensor) -> None:
    for name, x in (("queries", queries), ("keys", keys)):
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape (rows, D).")
        if x.dim() != 2 or not torch.is_floating_point(x):
            raise ValueError(
                f"{name} must be a 2-D floating tensor (rows, D), got shape {tuple(x.shape)} "
                f"and dtype {x.dtype}."
            )
    if queries.shape[1] != keys.shape[1]:
        raise ValueError(
            f"queries have dimension {queries.shape[1]} but keys have {keys.shape[1]}; embed "
            f"both with the same encoder."
        )


def _check_int(value: int, name: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}.")


def _check_exclude(exclude: Tensor | None, q: int, n: int) -> Tensor | None:
    if exclude is None:
        return None
    exclude = torch.as_tensor(exclude)
    if exclude.dtype == torch.bool:
        if exclude.shape != (q, n):
            raise ValueError(
                f"a bool exclude mask must have shape (Q, N) = ({q}, {n}), got "
                f"{tuple(exclude.shape)}."
            )
        return exclude
    if exclude.is_floating_point() or exclude.is_complex() or exclude.dim() not in (1, 2):
        raise ValueError(
            f"exclude must be a (Q, N) bool mask or (Q,) / (Q, m) integer key indices (-1 for "
            f"none), got dtype {exclude.dtype} shape {tuple(exclude.shape)}."
        )
    exclude = exclude.long().reshape(exclude.shape[0], -1)
    if exclude.shape[0] != q:
        raise ValueError(f"exclude has {exclude.shape[0]} rows but there are {q} queries.")
    if exclude.numel() and bool(((exclude < -1) | (exclude >= n)).any()):
        raise ValueError(f"exclude holds key indices outside -1..{n - 1}.")
    return exclude


def _block_topk(sim: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The top ``k`` of every row of ``sim``, best first, equal scores by column (lower first),
    the same rule choosing among entries tied at the k-th score (``torch.topk`` leaves both
    unspecified)."""
    if k < sim.shape[1]:
        # one more than asked: a row is ambiguous when its (k+1)-th score equals its k-th, i.e.
        # topk may have left out a key tied with a kept one (-inf: excluded, never kept)
        vals, idx = sim.topk(k + 1, dim=1)
        ambiguous = (vals[:, k] == vals[:, k - 1]) & (vals[:, k] > -float("inf"))
        vals, idx = vals[:, :k], idx[:, :k]
    else:
        vals, idx = sim.topk(k, dim=1)
        ambiguous = torch.zeros(0, dtype=torch.bool)
    if k and bool(ambiguous.any()):
        rows = ambiguous.nonzero().flatten()
        full = sim[rows].sort(dim=1, descending=True, stable=True)  # ties keep column order
        vals[rows], idx[rows] = full.values[:, :k], full.indices[:, :k]
    # topk's values are sorted, so equal scores are neighbours: put those in column order
    tied = (vals[:, 1:] == vals[:, :-1]).any(1).nonzero().flatten()
    if tied.numel():
        i, order = idx[tied].sort(dim=1)
        v, order = vals[tied].gather(1, order).sort(dim=1, descending=True, stable=True)
        vals[tied], idx[tied] = v, i.gather(1, order)
    return vals, idx


@torch.no_grad()
def topk_similar(
    queries: Tensor,
    keys: Tensor,
    k: int,
    *,
    metric: str = "cosine",
    exclude_self: bool = False,
    exclude: Tensor | None = None,
    max_score: float | Tensor | None = None,
    chunk_size: int = 1024,
    key_chunk_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """The ``k`` keys most similar to each query, exactly, best first.

    Args:
        queries: (Q, D) floating. keys: (N, D) floating, same D.
        k: neighbours per query, capped at N (k = 0 gives empty results).
        metric: ``"cosine"`` (both sides L2-normalised; zero rows stay zero) or ``"dot"`` (the
            raw inner product, e.g. for rows that are normalised already).
        exclude_self: query i never gets key i (queries are the keys, or their first rows:
            leave-one-out kNN, precision@k).
        exclude: keys no query may get, as a (Q, N) bool mask (True = excluded), or as (Q,) or
            (Q, m) integer key indices per query, -1 for none.
        max_score: keys scoring above this (a float, or one bound per query as a (Q,) tensor;
            ``inf`` for no bound) are skipped, e.g. likely false negatives when mining.
        chunk_size: queries scored at a time. key_chunk_size: keys scored at a time (None:
            all N; memory is then O(chunk_size × N)).

    Returns:
        ``(scores, indices)``, each (Q, min(k, N)): the similarities, in float32 (float64 when
        an input is float64; bf16 / fp16 inputs are upcast, autocast is off), and the key
        indices (int64), on the keys' device. Where fewer than k keys are left once the
        excluded and skipped ones are removed, the remaining slots hold score ``-inf`` and
        index ``-1``. Exactly equal scores are ordered by key index (the lower first), which
        also decides which of the keys tied at the k-th score are kept. Runs without
        gradients.

    Example:
        >>> import torch
        >>> z = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
        >>> s, i = topk_similar(z, z, k=2, metric="dot", exclude=torch.tensor([0, -1, -1]))
        >>> i.tolist()
        [[1, 2], [1, 0], [2, 1]]
    """
    _check_inputs(queries, keys)
    check_choice(metric, "metric", _METRICS)
    _check_int(k, "k", 0)
    _check_int(chunk_size, "chunk_size", 1)
    if key_chunk_size is not None:
        _check_int(key_chunk_size, "key_chunk_size", 1)
    q_n, n = queries.shape[0], keys.shape[0]
    exclude = _check_exclude(exclude, q_n, n)
    if isinstance(max_score, Tensor):
        max_score = max_score.reshape(-1)
        if max_score.shape[0] != q_n:
            raise ValueError(
                f"max_score must be a float or one bound per query, shape ({q_n},), got "
                f"{tuple(max_score.shape)}."
            )
    dtype, device = compute_dtype(queries, keys), keys.device
    k = min(k, n)
    out_s = torch.full((q_n, k), -float("inf"), dtype=dtype, device=device)
    out_i = torch.full((q_n, k), -1, dtype=torch.long, device=device)
    if k == 0 or q_n == 0:
        return out_s, out_i
    key_block = n if key_chunk_size is None else key_chunk_size
    with torch.autocast(device.type, enabled=False):
        keys = keys.to(dtype)
        if metric == "cosine":
            keys = F.normalize(keys, dim=1)
        for qs in range(0, q_n, chunk_size):
            qe = min(qs + chunk_size, q_n)
            q = queries[qs:qe].to(device=device, dtype=dtype)
            if metric == "cosine":
                q = F.normalize(q, dim=1)
            bound = None
            if isinstance(max_score, Tensor):
                bound = max_score[qs:qe].to(device=device, dtype=dtype)[:, None]
            elif max_score is not None:
                bound = float(max_score)
            best_s = best_i = None
            for ks in range(0, n, key_block):
                ke = min(ks + key_block, n)
                sim = q @ keys[ks:ke].T
                _mask(sim, qs, qe, ks, ke, exclude_self, exclude, bound)
                s, i = _block_topk(sim, min(k, ke - ks))
                i += ks
                if best_s is None:
                    best_s, best_i = s, i
                    continue
                # running entries have lower indices than the block's: a stable sort keeps
                # equal scores in index order
                s, order = torch.cat([best_s, s], 1).sort(dim=1, descending=True, stable=True)
                best_s, best_i = s[:, :k], torch.cat([best_i, i], 1).gather(1, order[:, :k])
            empty = best_s == -float("inf")
            out_s[qs:qe] = best_s
            out_i[qs:qe] = best_i.masked_fill(empty, -1)
    return out_s, out_i


def _mask(
    sim: Tensor,
    qs: int,
    qe: int,
    ks: int,
    ke: int,
    exclude_self: bool,
    exclude: Tensor | None,
    bound: float | Tensor | None,
) -> None:
    """Set the excluded and skipped entries of one (queries qs..qe × keys ks..ke) block of
    scores to -inf, in place."""
    if exclude_self:
        lo, hi = max(qs, ks), min(qe, ke)
        if lo < hi:
            r = torch.arange(lo, hi, device=sim.device)
            sim[r - qs, r - ks] = -float("inf")
    if exclude is not None:
        if exclude.dtype == torch.bool:
            sim.masked_fill_(exclude[qs:qe, ks:ke].to(sim.device), -float("inf"))
        else:
            e = exclude[qs:qe].to(sim.device)
            rows, cols = ((e >= ks) & (e < ke)).nonzero(as_tuple=True)
            sim[rows, e[rows, cols] - ks] = -float("inf")
    if bound is not None:
        sim.masked_fill_(sim > bound, -float("inf"))
