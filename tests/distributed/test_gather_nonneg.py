"""Barlow Twins and VICReg with ``gather="instances"``: one process == two gloo processes.

The non-contrastive losses use batch statistics (per-dimension mean, variance, correlation),
so under torch.distributed they must see the global batch. Each worker builds the same global
data from a shared seed, keeps its rank's rows, computes the loss with ``gather="instances"`` (every
rank gets the same global loss), back-propagates through a small ``nn.Linear``, averages the
parameter gradients over ranks (as DDP does), and compares loss and gradients with the
single-process computation on the whole batch, in float64.
"""

from __future__ import annotations

import torch

from contrastkit import distributed as dist
from contrastkit.losses.barlow_twins import BarlowTwinsLoss, barlow_twins
from contrastkit.losses.vicreg import VICRegLoss, vicreg, vicreg_terms

from ._harness import F64, WORLD, close, single, spawn


def _compare(name, loss_of, x1, x2, sizes):
    """loss_of(z1, z2) on proj(x) of the whole batch (one process) and of this rank's rows."""
    torch.manual_seed(0)
    proj = torch.nn.Linear(x1.shape[1], 6, dtype=F64)
    params = list(proj.parameters())
    with single():  # the one-process reference on the whole batch
        full = loss_of(proj(x1), proj(x2))
        g_full = torch.autograd.grad(full, params)
    start = sum(sizes[: dist.rank()])
    mine = slice(start, start + sizes[dist.rank()])
    local = loss_of(proj(x1[mine]), proj(x2[mine]))
    g_local = torch.autograd.grad(local, params)
    # every rank holds the same global loss, and the rank average of the gradients is exact
    close(local.detach(), full.detach(), f"{name} loss on rank {dist.rank()}")
    close(dist.all_reduce_sum(local.detach()) / WORLD, full.detach(), f"{name} mean loss")
    for p, g, want in zip(("weight", "bias"), g_local, g_full):
        close(dist.all_reduce_sum(g) / WORLD, want, f"{name} {p} gradient")


def _nonneg_case() -> None:
    g = torch.Generator().manual_seed(1)
    x1 = torch.randn(8, 5, generator=g, dtype=F64)
    x2 = x1 + 0.5 * torch.randn(8, 5, generator=g, dtype=F64)
    cases = {
        "barlow_twins": lambda a, b: barlow_twins(a, b, lambda_offdiag=0.1, gather="instances"),
        "BarlowTwinsLoss": lambda a, b: BarlowTwinsLoss(scale=0.5, gather="instances")(a, b),
        "vicreg": lambda a, b: vicreg(a, b, gather="instances"),
        "VICRegLoss": lambda a, b: VICRegLoss(1.0, 2.0, 3.0, gamma=1.5, gather="instances")(a, b),
    }
    for term in ("invariance", "variance", "covariance"):
        cases[f"vicreg {term}"] = lambda a, b, t=term: vicreg_terms(a, b, gather="instances")[t]
    for name, loss_of in cases.items():
        _compare(name, loss_of, x1, x2, [4, 4])
    # uneven ranks, down to a single local row: the N ≥ 2 rule is for the global batch
    for sizes in ([5, 3], [7, 1]):
        for name in ("barlow_twins", "vicreg"):
            _compare(f"{name} {sizes}", cases[name], x1, x2, sizes)


def test_barlow_twins_and_vicreg_gather_match_one_process():
    spawn(_nonneg_case)
