"""The loss modules with ``gather=...``: one process with batch 8 == two gloo processes with 4.

Each worker builds the same global inputs from a shared seed and keeps its rank's rows; the
module (built with ``gather="instances"`` or ``"labels"``) gives a loss on each rank whose
average over ranks is the one-process loss on the whole batch (``single()``), and the gradient
of that average reaches every input row as in one process: this rank's input gradient, divided
by the number of ranks (the all-gather's backward sums every rank's part), is its rows of the
one-process gradient. A learnable temperature's gradient, averaged over ranks as DDP does, is
the one-process gradient. Float64, tolerance 1e-10.
"""

from __future__ import annotations

import torch

from contrastkit import distributed as dist
from contrastkit.losses import (
    BarlowTwinsLoss,
    DebiasedInfoNCELoss,
    HardNegativeInfoNCELoss,
    InfoNCELoss,
    NTXentLoss,
    SupConLoss,
    SwAVLoss,
    VICRegLoss,
)

from ._harness import F64, WORLD, close, single, spawn


def _mine(sizes: list[int]) -> slice:
    start = sum(sizes[: dist.rank()])
    return slice(start, start + sizes[dist.rank()])


def _compare(name, loss_of, inputs, sizes=(4, 4), params=()):
    """``loss_of(part, *tensors)`` with ``part`` None (the whole batch) or this rank's slice."""
    sizes = list(sizes)
    mine = _mine(sizes)
    full_in = [x.clone().requires_grad_(True) for x in inputs]
    with single():
        full = loss_of(None, *full_in)
        g_full = torch.autograd.grad(full, [*full_in, *params])
    local_in = [x[mine].clone().requires_grad_(True) for x in inputs]
    local = loss_of(mine, *local_in)
    g_local = torch.autograd.grad(local, [*local_in, *params])
    close(dist.all_reduce_sum(local.detach()) / WORLD, full.detach(), f"{name} loss")
    n = len(inputs)
    for i, (g, want) in enumerate(zip(g_local[:n], g_full[:n])):
        close(g / WORLD, want[mine], f"{name} gradient of input {i}")
    for g, want in zip(g_local[n:], g_full[n:]):
        close(dist.all_reduce_sum(g) / WORLD, want, f"{name} temperature gradient")


def _simclr_ids(part) -> torch.Tensor:
    """Each rank holds 2 samples × 2 views numbered from 0; the global layout is rank-major."""
    if part is not None:
        return torch.arange(2).repeat(2)
    return torch.cat([torch.arange(2).repeat(2) + 2 * r for r in range(WORLD)])


def _modules_case() -> None:
    assert dist.is_distributed() and dist.world_size() == WORLD
    g = torch.Generator().manual_seed(3)
    x = torch.randn(8, 5, generator=g, dtype=F64)
    y = torch.randn(8, 5, generator=g, dtype=F64)
    neg = torch.randn(6, 5, generator=g, dtype=F64)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])

    def lab(part):
        return labels if part is None else labels[part]

    # InfoNCELoss: SimCLR self-contrast with instance ids, plain and chunked
    for chunked in (False, True):
        loss_fn = InfoNCELoss(0.2, chunked=chunked, block_rows=3, gather="instances")
        _compare(
            f"InfoNCELoss instances chunked={chunked}",
            lambda part, z, f=loss_fn: f(z, query_ids=_simclr_ids(part)),
            [x],
        )

    # without gather each rank contrasts with its own rows only: another loss
    mine = _mine([4, 4])
    with single():
        full = InfoNCELoss(0.2)(x, query_ids=_simclr_ids(None))
    alone = InfoNCELoss(0.2)(x[mine], query_ids=_simclr_ids(mine))
    assert abs(float(dist.all_reduce_sum(alone) / WORLD - full)) > 1e-3

    # InfoNCELoss: CLIP, symmetric, learnable temperature
    clip = InfoNCELoss(0.07, symmetric=True, learn_temperature=True, gather="instances").double()

    def clip_loss(part, a, b):
        ids = torch.arange(a.shape[0])
        if part is None:
            ids = torch.cat([torch.arange(4) + 4 * r for r in range(WORLD)])
        return clip(a, b, query_ids=ids, key_ids=ids)

    _compare("InfoNCELoss CLIP", clip_loss, [x, y], params=[clip.log_temperature])

    # InfoNCELoss: class labels, a key and a queue of extra negatives (not gathered)
    queue = InfoNCELoss(0.1, gather="labels")
    nids = torch.tensor([0, 1, 5, 2, 7, 0])
    _compare(
        "InfoNCELoss labels + queue",
        lambda part, a, b: queue(
            a, b, query_ids=lab(part), key_ids=lab(part), negatives=neg, negative_ids=nids
        ),
        [x, y],
    )

    # NTXentLoss: two views of 4 samples per rank
    for chunked in (False, True):
        nt = NTXentLoss(0.3, chunked=chunked, gather="instances")
        _compare(f"NTXentLoss chunked={chunked}", lambda part, a, b, f=nt: f(a, b), [x, y])

    # SupConLoss: (N, D) with labels, uneven ranks, a sum, and (B, V, D) with two views
    sup = SupConLoss(0.1, gather="labels")
    _compare("SupConLoss", lambda part, z: sup(z, lab(part)), [x])
    _compare("SupConLoss uneven", lambda part, z: sup(z, lab(part)), [x], sizes=(5, 3))
    sup_sum = SupConLoss(0.1, reduction="sum", chunked=True, gather="labels")
    _compare("SupConLoss sum chunked", lambda part, z: sup_sum(z, lab(part)), [x])
    views = torch.stack([x, y], dim=1)  # (8, 2, 5)
    _compare("SupConLoss (B, V, D)", lambda part, z: sup(z, lab(part)), [views])

    # the debiased and hard-negative modules, with labels and with instance ids
    for cls, extra in ((DebiasedInfoNCELoss, {}), (HardNegativeInfoNCELoss, {"beta": 0.7})):
        for chunked in (False, True):
            by_label = cls(0.2, tau_plus=0.1, chunked=chunked, gather="labels", **extra)
            _compare(
                f"{cls.__name__} labels chunked={chunked}",
                lambda part, z, f=by_label: f(z, query_ids=lab(part)),
                [x],
            )
        by_instance = cls(0.2, tau_plus=0.05, gather="instances", **extra)
        _compare(
            f"{cls.__name__} instances",
            lambda part, z, f=by_instance: f(z, query_ids=_simclr_ids(part)),
            [x],
        )
        with_key = cls(0.2, tau_plus=0.1, gather="labels", **extra)
        _compare(
            f"{cls.__name__} key + queue",
            lambda part, a, b, f=with_key: f(
                a, b, query_ids=lab(part), key_ids=lab(part), negatives=neg, negative_ids=nids
            ),
            [x, y],
            sizes=(5, 3),
        )

    # the batch-statistics modules and SwAV's codes, with the string kinds
    barlow = BarlowTwinsLoss(0.1, gather="instances")
    _compare("BarlowTwinsLoss", lambda part, a, b: barlow(a, b), [x, y])
    vic = VICRegLoss(1.0, 2.0, 3.0, gather="labels")
    _compare("VICRegLoss", lambda part, a, b: vic(a, b), [x, y], sizes=(5, 3))
    sw = SwAVLoss(0.1, 0.05, 3, gather="instances")
    _compare("SwAVLoss", lambda part, a, b: sw([0.5 * a, 0.5 * b]), [x, y])


def test_loss_modules_with_gather_match_one_process():
    spawn(_modules_case)
