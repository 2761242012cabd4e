"""Gathering across torch.distributed ranks, in one place, exactly.

Every rank embeds its own share of the global batch; a loss that needs the other ranks'
embeddings (negatives, label-defined positives) gathers them with :func:`all_gather`, an
all-gather whose backward sums every rank's gradient for each row and hands each rank the
gradient of its own rows. With data-parallel gradient averaging (DDP, or
:func:`average_gradients`) the parameter gradients are then those of one process holding the
whole batch: no rank's loss is lost, none is counted twice (the bug class that hit lightly,
solo-learn and sentence-transformers).

Instance ids (``arange(B)`` per rank) are made globally unique by :func:`gather_ids` with
``offset=True``; class labels are gathered unchanged. Outside an initialised process group
every function is the identity, so the same code runs on one process.

Example (run under ``torchrun --nproc_per_node 2``)::

    from contrastkit import distributed as dist
    z_all = dist.all_gather(z)                     # (W·B, D), gradients flow back
    ids_all = dist.gather_ids(torch.arange(B), offset=True)
    mine = dist.local_rows(B)                      # this rank's rows of z_all
"""

from __future__ import annotations

import torch
import torch.distributed as torch_dist
from torch import Tensor

__all__ = [
    "all_gather",
    "all_reduce_sum",
    "any_process",
    "average_gradients",
    "barrier",
    "broadcast_module",
    "gather_ids",
    "gather_rng_states",
    "init_from_env",
    "instance_offset",
    "is_distributed",
    "local_rows",
    "rank",
    "row_sizes",
    "shutdown",
    "world_size",
]


def is_distributed() -> bool:
    """True inside an initialised process group with more than one rank."""
    return torch_dist.is_available() and torch_dist.is_initialized() and world_size() > 1


def world_size() -> int:
    """Number of ranks (1 outside a process group)."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        return torch_dist.get_world_size()
    return 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        return torch_dist.get_rank()
    return 0


def row_sizes(n: int, device: torch.device | None = None) -> list[int]:
    """Every rank's number of rows, in rank order (one small all-gather; ``[n]`` outside a
    group). Pass the result as ``sizes=`` to gather several tensors with the same rows."""
    if not is_distributed():
        return [n]
    return _sizes(n, device or torch.device("cpu"))


def _sizes(n: int, device: torch.device) -> list[int]:
    local = torch.tensor([n], dtype=torch.long, device=device)
    out = [torch.zeros_like(local) for _ in range(world_size())]
    torch_dist.all_gather(out, local)
    return [int(t) for t in out]


class _AllGather(torch.autograd.Function):
    """Concatenate every rank's rows; backward: sum the gradients over ranks, keep own rows."""

    @staticmethod
    def forward(ctx, x: Tensor, sizes: list[int]) -> Tensor:  # type: ignore[override]
        pad = max(sizes)
        buf = x.new_zeros((pad, *x.shape[1:]))
        buf[: x.shape[0]] = x
        parts = [torch.empty_like(buf) for _ in sizes]
        torch_dist.all_gather(parts, buf.contiguous())
        ctx.sizes = sizes
        return torch.cat([p[:n] for p, n in zip(parts, sizes)])

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        grad = grad.contiguous()
        torch_dist.all_reduce(grad, op=torch_dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: rank()])
        return grad[start : start + ctx.sizes[rank()]], None


def all_gather(x: Tensor, sizes: list[int] | None = None) -> Tensor:
    """(B_r, ...) rows on each rank → (Σ_r B_r, ...) on every rank, rank order, autograd-aware.

    Ranks may hold different numbers of rows. The backward returns to each rank the sum over
    ranks of the gradient of its rows. ``sizes``: every rank's row count (:func:`row_sizes`)
    when already known, to save the all-gather that finds it. Identity outside a group.
    """
    if not is_distributed():
        return x
    return _AllGather.apply(x, sizes or _sizes(x.shape[0], x.device))


def instance_offset(*ids: Tensor) -> int:
    """``rank · (largest id on any rank, in any of ``ids``, + 1)``: added to instance ids
    (numbered from 0 on every rank) it makes them distinct across ranks. 0 outside a group."""
    if not is_distributed():
        return 0
    device = ids[0].device
    top = torch.zeros(1, dtype=torch.long, device=device)
    for t in ids:
        if t.numel():
            top = torch.maximum(top, t.max().reshape(1).to(torch.long) + 1)
    torch_dist.all_reduce(top, op=torch_dist.ReduceOp.MAX)
    return rank() * int(top)


def gather_ids(ids: Tensor, *, offset: bool = False, sizes: list[int] | None = None) -> Tensor:
    """Gather (B_r,) integer ids from every rank, in rank order.

    Args:
        ids: this rank's ids.
        offset: True for instance ids (each rank numbers its samples from 0): they are shifted
            by :func:`instance_offset` first so they stay distinct. False (default) for class
            labels, which mean the same on every rank, or ids already made distinct.
    """
    if not is_distributed():
        return ids
    if offset:
        ids = ids + instance_offset(ids)
    with torch.no_grad():
        return _AllGather.apply(ids, sizes or _sizes(ids.shape[0], ids.device))


def local_rows(
    n_local: int, device: torch.device | None = None, sizes: list[int] | None = None
) -> slice:
    """The slice of :func:`all_gather`'s output that holds this rank's ``n_local`` rows."""
    if not is_distributed():
        return slice(0, n_local)
    sizes = sizes or _sizes(n_local, device or torch.device("cpu"))
    start = sum(sizes[: rank()])
    return slice(start, start + n_local)


def all_reduce_sum(x: Tensor) -> Tensor:
    """Sum of ``x`` over ranks (a new tensor; no gradient). Identity outside a group."""
    if not is_distributed():
        return x
    out = x.detach().clone()
    torch_dist.all_reduce(out, op=torch_dist.ReduceOp.SUM)
    return out


def average_gradients(module: torch.nn.Module) -> None:
    """Average ``.grad`` of every parameter over ranks, in place (what DDP does).

    The gradients travel as one flat buffer per dtype (one all-reduce, not one per tensor).
    """
    if not is_distributed():
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    for dtype in {g.dtype for g in grads}:
        group = [g for g in grads if g.dtype == dtype]
        flat = torch.cat([g.reshape(-1) for g in group])
        torch_dist.all_reduce(flat, op=torch_dist.ReduceOp.SUM)
        flat.div_(world_size())
        offset = 0
        for g in group:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()


def barrier() -> None:
    """Wait for every process (no-op outside a group)."""
    if is_distributed():
        torch_dist.barrier()


def any_process(flag: bool) -> bool:
    """True on every process when ``flag`` is true on any (e.g. a time limit reached)."""
    if not is_distributed():
        return bool(flag)
    t = torch.tensor([int(bool(flag))])
    torch_dist.all_reduce(t, op=torch_dist.ReduceOp.MAX)
    return bool(t.item())


def broadcast_module(module: torch.nn.Module, src: int = 0) -> None:
    """Copy ``src``'s parameters and buffers into every process's ``module``, in place."""
    if not is_distributed():
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            torch_dist.broadcast(t.data, src)


def gather_rng_states() -> list[Tensor]:
    """Every process's CPU generator state, in rank order ([] outside a group)."""
    if not is_distributed():
        return []
    out: list[Tensor | None] = [None] * world_size()
    torch_dist.all_gather_object(out, torch.get_rng_state())
    return [t for t in out if t is not None]


def init_from_env() -> bool:
    """Join the process group that ``torchrun`` describes in the environment.

    Uses ``nccl`` with CUDA (one GPU per process, ``LOCAL_RANK``), ``gloo`` otherwise. Returns
    True when running with more than one process. Nothing happens without ``WORLD_SIZE`` > 1.
    """
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not torch_dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        torch_dist.init_process_group("nccl" if cuda else "gloo")
    return True


def shutdown() -> None:
    """Leave the process group (if any): the end of a ``torchrun`` job."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()
