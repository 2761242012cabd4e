"""SwAV: swapped prediction of online cluster assignments (codes) between views.

Each view's embedding ``z`` is scored against K prototypes ``c_k`` (``scores = z · cᵀ``). The
codes ``Q`` of the assignment views (usually the two global crops) are computed with the
Sinkhorn–Knopp algorithm, which spreads the batch equally over the prototypes, and every other
view predicts them through a softmax of its own scores.

Reference:
    Caron, Misra, Mairal, Goyal, Bojanowski, Joulin 2020, "Unsupervised Learning of Visual
    Features by Contrasting Cluster Assignments", NeurIPS.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit import distributed as dist
from contrastkit._checks import check_embeddings, check_positive, compute_dtype
from contrastkit.losses._base import LossModule
from contrastkit.losses._gather import resolve_gather

__all__ = ["SwAVLoss", "sinkhorn_knopp", "swav"]


def _check_views(
    views: Sequence[Tensor],
    name: str,
    *,
    min_views: int,
    shape: tuple[int, ...] | None = None,
    like: str = "",
) -> list[Tensor]:
    """Check a list of (B, K) tensors, one per view, all of one shape (``shape`` if given)."""
    if isinstance(views, Tensor) or not isinstance(views, Sequence):
        raise TypeError(
            f"{name} must be a list of (B, K) tensors, one per view, got "
            f"{type(views).__name__}; pass [view_1, view_2, ...] (a stacked (V·B, K) tensor "
            f"splits with list(x.chunk(n_views)))."
        )
    views = list(views)
    if len(views) < min_views:
        raise ValueError(
            f"{name} must hold at least {min_views} view(s), got {len(views)}; pass one (B, K) "
            f"tensor per view."
        )
    for i, v in enumerate(views):
        check_embeddings(v, f"{name}[{i}]")
    want = tuple(views[0].shape) if shape is None else shape
    origin = like or f"{name}[0]"
    for i, v in enumerate(views):
        if tuple(v.shape) != want:
            raise ValueError(
                f"{name}[{i}] has shape {tuple(v.shape)} but {origin} has shape {want}; every "
                f"view must hold the same B samples scored against the same K prototypes."
            )
        if v.device != views[0].device:
            raise ValueError(
                f"{name}[{i}] is on {v.device} but {name}[0] is on {views[0].device}; move "
                f"every view to one device."
            )
    return views


def _check_iterations(iterations: int, name: str = "iterations") -> None:
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(
            f"{name} must be an integer ≥ 1, got {iterations!r}; SwAV uses 3 Sinkhorn iterations."
        )


def sinkhorn_knopp(
    scores: Tensor,
    *,
    epsilon: float = 0.05,
    iterations: int = 3,
    gather: str | None = None,
) -> Tensor:
    """SwAV codes: an equipartitioned soft assignment of B samples to K prototypes.

    With ``Q = exp(scores / ε)ᵀ`` (K, B), normalised to total mass 1, each iteration makes
    every prototype's row sum 1/K and then every sample's column sum 1/B::

        Q ← Q / ΣQ
        repeat ``iterations`` times:
            Q[k, :] ← Q[k, :] / Σ_b Q[k, b] / K
            Q[:, b] ← Q[:, b] / Σ_k Q[k, b] / B
        codes = (B · Q)ᵀ

    so every sample's code sums to 1 and, as the iterations converge, every prototype receives
    B/K of the mass. The codes are targets: computed without gradient, detached.

    Numerically safe: computed in the log domain, with the scores shifted by their maximum
    over the batch, per prototype (a per-prototype factor cancels exactly in the first row
    normalisation), so neither a small ε nor a sample far from every prototype overflows or
    underflows to NaN; in float64 the result equals the plain algorithm to rounding.

    Args:
        scores: (B, K) prototype scores ``z · cᵀ`` (typically of L2-normalised ``z`` and ``c``).
        epsilon: ε > 0, the entropic regularisation (0.05 in the paper; smaller is sharper).
        iterations: number of Sinkhorn–Knopp iterations, ≥ 1 (3 in the paper).
        gather: ``"instances"`` (or ``"labels"``: the rows carry no ids, so the two kinds are
            one here): under torch.distributed, balance the assignment over the GLOBAL batch:
            the sums over samples (and B) run over every process's rows, as in the official
            ``distributed_sinkhorn``; each process gets the codes of its own rows. No effect
            outside a process group. ``True`` is deprecated for ``"instances"``.

    Returns:
        (B, K) codes, float32 (float64 for float64 scores), detached.

    Example:
        >>> import torch
        >>> from contrastkit.losses.swav import sinkhorn_knopp
        >>> q = sinkhorn_knopp(torch.randn(8, 4), epsilon=0.05, iterations=3)
        >>> q.shape, bool(torch.allclose(q.sum(dim=1), torch.ones(8)))
        (torch.Size([8, 4]), True)
    """
    check_embeddings(scores, "scores")
    check_positive(epsilon, "epsilon", "SwAV uses ε = 0.05; smaller values give sharper codes.")
    _check_iterations(iterations)
    gather = resolve_gather(gather, "sinkhorn_knopp")
    dtype = compute_dtype(scores)
    eps = float(epsilon)
    with torch.no_grad():
        logits = scores.detach().to(dtype).t() / eps  # (K, B)
        n_proto, n_local = logits.shape
        shift = logits.amax(dim=1, keepdim=True)  # (K, 1)
        n_global = float(n_local)
        distributed = gather is not None and dist.is_distributed()
        if distributed:
            # one exchange: every process's per-prototype maximum and its batch size
            stats = torch.cat([shift.t(), logits.new_tensor([[n_local]])], dim=1)
            stats = dist.all_gather(stats, sizes=[1] * dist.world_size())
            shift = stats[:, :n_proto].amax(dim=0).unsqueeze(1)
            n_global = float(stats[:, n_proto].sum())

        def total(x: Tensor) -> Tensor:
            return dist.all_reduce_sum(x) if distributed else x

        # Log domain, L = log Q. The global normalisation Q /= ΣQ and any per-prototype factor
        # (the shift) cancel exactly in the first row normalisation, so they are skipped.
        log_q = logits - shift  # every row's maximum is 0: its row sum is ≥ 1
        log_k, log_b = math.log(n_proto), math.log(n_global)
        for _ in range(iterations):
            # rows: after a column step every row keeps an entry ≥ 1/(K·B²), so the sum of
            # exp over the (global) row cannot underflow; exp(L) ≤ 1 cannot overflow
            row = total(torch.exp(log_q).sum(dim=1, keepdim=True))
            log_q = log_q - (torch.log(row) + log_k)
            # columns (local to each process): a log-sum-exp, safe even when a sample is far
            # from every prototype
            log_q = log_q - (torch.logsumexp(log_q, dim=0, keepdim=True) + log_b)
        return torch.exp(log_q + log_b).t().contiguous()


def _check_options(
    *,
    temperature: float | Tensor,
    epsilon: float,
    sinkhorn_iterations: int,
    n_assign: int,
    **_: object,
) -> None:
    """The checks of :func:`swav`'s options that need no tensor (SwAVLoss runs them once)."""
    check_positive(temperature, "temperature", "SwAV uses τ = 0.1.")
    check_positive(epsilon, "epsilon", "SwAV uses ε = 0.05.")
    _check_iterations(sinkhorn_iterations, "sinkhorn_iterations")
    if isinstance(n_assign, bool) or not isinstance(n_assign, int) or n_assign < 1:
        raise ValueError(
            f"n_assign must be an integer ≥ 1, got {n_assign!r}; SwAV assigns codes to the "
            f"2 global crops."
        )


def swav(
    scores: Sequence[Tensor],
    codes: Sequence[Tensor] | None = None,
    *,
    temperature: float | Tensor = 0.1,
    epsilon: float = 0.05,
    sinkhorn_iterations: int = 3,
    n_assign: int = 2,
    gather: str | None = None,
) -> Tensor:
    """SwAV swapped-prediction loss: every view predicts the codes of the other views::

        loss = (1/A) Σ_{i<A} (1/(V−1)) Σ_{v≠i} (1/B) Σ_b −Σ_k q_i[b,k] · log softmax(s_v[b]/τ)_k

    with ``A = len(codes)`` assignment views and ``V = len(scores)`` views — the normalisation
    of the official training loop. The codes are targets: no gradient flows into them.

    Args:
        scores: list of V ≥ 2 tensors (B, K), the prototype scores of each view: the global
            views first, then the local crops of multi-crop.
        codes: list of 1 ≤ A ≤ V tensors (B, K), the codes of the first A views (usually the 2
            global crops), e.g. from :func:`sinkhorn_knopp` over a queue of past scores; or
            ``None`` (:class:`SwAVLoss`'s form): the codes of the first ``n_assign`` views are
            ``sinkhorn_knopp(scores[i], epsilon=epsilon, iterations=sinkhorn_iterations,
            gather=gather)``, without gradient.
        temperature: τ > 0 of the prediction softmax (0.1 in the paper).
        epsilon, sinkhorn_iterations, gather: of :func:`sinkhorn_knopp` (0.05 and 3 in the
            paper), when ``codes`` is None.
        n_assign: how many leading views get codes when ``codes`` is None (2: the global crops).

    Returns:
        Scalar loss, float32 (float64 if any input is float64; half precision is upcast).

    Example:
        >>> import torch
        >>> from contrastkit.losses.swav import sinkhorn_knopp, swav
        >>> scores = [torch.randn(8, 16) for _ in range(4)]   # 2 global + 2 local crops
        >>> codes = [sinkhorn_knopp(s) for s in scores[:2]]
        >>> loss = swav(scores, codes, temperature=0.1)
        >>> bool(loss == swav(scores, temperature=0.1))      # the same codes, made inside
        True
    """
    scores = _check_views(scores, "scores", min_views=2)
    _check_options(
        temperature=temperature,
        epsilon=epsilon,
        sinkhorn_iterations=sinkhorn_iterations,
        n_assign=n_assign,
    )
    gather = resolve_gather(gather, "swav")
    if codes is None:
        if len(scores) < n_assign:
            raise ValueError(
                f"scores has {len(scores)} views but n_assign={n_assign} views need codes; "
                f"pass at least n_assign views or lower n_assign."
            )
        codes = [
            sinkhorn_knopp(s, epsilon=epsilon, iterations=sinkhorn_iterations, gather=gather)
            for s in scores[:n_assign]
        ]
    shape = tuple(scores[0].shape)
    codes = _check_views(codes, "codes", min_views=1, shape=shape, like="scores[0]")
    if len(codes) > len(scores):
        raise ValueError(
            f"codes has {len(codes)} views but scores only {len(scores)}; codes are the "
            f"assignments of the first len(codes) views of scores."
        )
    if codes[0].device != scores[0].device:
        raise ValueError(
            f"codes are on {codes[0].device} but scores on {scores[0].device}; move both to "
            f"one device."
        )
    dtype = compute_dtype(*scores, *codes)
    tau = temperature.to(dtype) if isinstance(temperature, Tensor) else float(temperature)
    log_p = [F.log_softmax(s.to(dtype) / tau, dim=1) for s in scores]
    n_views = len(scores)
    loss = scores[0].new_zeros((), dtype=dtype)
    for i, q in enumerate(codes):
        q = q.detach().to(dtype)
        sub = scores[0].new_zeros((), dtype=dtype)
        for v in range(n_views):
            if v != i:
                sub = sub - (q * log_p[v]).sum(dim=1).mean()
        loss = loss + sub / (n_views - 1)
    return loss / len(codes)


class SwAVLoss(LossModule, function=swav, check=_check_options, positional=3):
    """Module form of :func:`swav` with the codes made inside: ``loss_fn(scores)`` takes the
    list of (B, K) prototype scores of every view (global views first); the codes of the first
    ``n_assign`` views come from :func:`sinkhorn_knopp`. The queue of past scores and the
    prototype layer belong to the recipe.

    Example:
        >>> import torch
        >>> from contrastkit.losses.swav import SwAVLoss
        >>> loss_fn = SwAVLoss(temperature=0.1, epsilon=0.05)
        >>> scores = [torch.randn(8, 16, requires_grad=True) for _ in range(3)]
        >>> loss = loss_fn(scores)
        >>> loss.backward()
    """
