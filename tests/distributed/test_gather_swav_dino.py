"""SwAV codes and the DINO center: one process with 8 rows == two gloo processes with 4 each.

``sinkhorn_knopp(gather="instances")`` balances the assignment over the global batch, so each rank's
codes are its rows of the one-process codes; ``update_center(gather="instances")`` averages the
teacher over the global batch, so every rank holds the one-process center. The one-process
reference is the same function with ``gather=None`` on the whole batch, in float64.
"""

from __future__ import annotations

import torch

from contrastkit import distributed as dist
from contrastkit.losses.dino import DINOLoss, dino, update_center
from contrastkit.losses.swav import SwAVLoss, sinkhorn_knopp, swav

from ._harness import F64, WORLD, close, spawn


def _mine(sizes: list[int]) -> slice:
    start = sum(sizes[: dist.rank()])
    return slice(start, start + sizes[dist.rank()])


def _swav_dino_case() -> None:
    assert dist.is_distributed() and dist.world_size() == WORLD
    g = torch.Generator().manual_seed(0)
    views = [torch.randn(8, 5, generator=g, dtype=F64) * 0.5 for _ in range(3)]
    teacher = [torch.randn(8, 5, generator=g, dtype=F64) for _ in range(2)]
    center = torch.randn(1, 5, generator=g, dtype=F64) * 0.1

    for sizes in ([4, 4], [5, 3]):  # even, and uneven ranks
        mine = _mine(sizes)
        for epsilon, iterations in ((0.05, 3), (0.2, 10)):
            kw = dict(epsilon=epsilon, iterations=iterations)
            full = sinkhorn_knopp(views[0], **kw)  # gather=None: the one-process codes
            local = sinkhorn_knopp(views[0][mine], gather="instances", **kw)
            close(local, full[mine], f"codes {sizes} ε={epsilon}")
            # without gather each rank balances its own rows only: different codes
            alone = sinkhorn_knopp(views[0][mine], **kw)
            assert not torch.allclose(alone, full[mine], atol=1e-6)
        # large scores: the shift is the global per-prototype maximum
        big = views[1] * 40.0 + torch.arange(5, dtype=F64) * 300.0
        close(
            sinkhorn_knopp(big[mine], gather="instances"), sinkhorn_knopp(big)[mine], f"big {sizes}"
        )
        for momentum in (0.0, 0.9):
            full_c = update_center(center, teacher, momentum=momentum)
            local_c = update_center(
                center, [t[mine] for t in teacher], momentum=momentum, gather="instances"
            )
            close(local_c, full_c, f"center {sizes} m={momentum}")

    # the modules on an even split: the mean of the ranks' losses is the one-process loss
    mine = _mine([4, 4])
    codes = [sinkhorn_knopp(v) for v in views[:2]]
    full_loss = swav(views, codes)
    local_loss = SwAVLoss(gather="instances")([v[mine] for v in views])
    close(dist.all_reduce_sum(local_loss.detach()) / WORLD, full_loss, "swav loss")

    student = views
    loss_fn = DINOLoss(5, center_momentum=0.9, gather="instances").double()
    local_loss = loss_fn([s[mine] for s in student], [t[mine] for t in teacher])
    full_loss = dino(student, teacher, torch.zeros(1, 5, dtype=F64))
    close(dist.all_reduce_sum(local_loss.detach()) / WORLD, full_loss, "dino loss")
    want_c = update_center(torch.zeros(1, 5, dtype=F64), teacher, momentum=0.9)
    close(loss_fn.center, want_c, "DINOLoss center")


def test_swav_codes_and_dino_center_match_one_process():
    spawn(_swav_dino_case)
