"""Momentum (EMA) encoders: MoCo's key encoder, BYOL's and DINO's teacher.

After every optimiser step the target's parameters move towards the online network's::

    θ_target ← m·θ_target + (1 − m)·θ_online

with ``m`` following a cosine schedule from ``base_momentum`` to ``final_momentum`` (1.0) over
training (BYOL, Grill et al. 2020, §3.2; MoCo v3; DINO). The target gets no gradient
(stop-gradient) and runs in the same train/eval mode as its owner, so its BatchNorm layers use
batch statistics while training, as in the papers.

Example:
    >>> import torch
    >>> from contrastkit.memory import MomentumEncoder
    >>> online = torch.nn.Linear(4, 2)
    >>> target = MomentumEncoder(online, base_momentum=0.99)
    >>> target.update(online, step=0, total_steps=100)   # m = 0.99 at the start
    >>> target(torch.randn(3, 4)).requires_grad
    False
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn

__all__ = ["MomentumEncoder", "cosine_momentum", "ema_update_"]


def cosine_momentum(step: int, total_steps: int, base: float = 0.996, final: float = 1.0) -> float:
    """``final − (final − base)·(cos(π·step/total_steps) + 1)/2``: ``base`` at step 0,
    ``final`` at the last step (BYOL's schedule)."""
    if not 0.0 <= base <= final <= 1.0:
        raise ValueError(f"momentum needs 0 ≤ base ≤ final ≤ 1, got base={base}, final={final}.")
    if total_steps <= 0:
        return float(final)
    t = min(max(step / total_steps, 0.0), 1.0)
    return float(final - (final - base) * (math.cos(math.pi * t) + 1.0) / 2.0)


@torch.no_grad()
def ema_update_(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """In place: every parameter ``t ← m·t + (1 − m)·o`` (one fused op per dtype group)."""
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}.")
    tp, op = list(target.parameters()), list(online.parameters())
    if len(tp) != len(op) or any(a.shape != b.shape for a, b in zip(tp, op)):
        raise ValueError(
            "target and online networks have different parameters; the target must be a copy "
            "of the online network (MomentumEncoder(online) makes one)."
        )
    if not tp:
        return
    torch._foreach_mul_(tp, momentum)
    torch._foreach_add_(tp, [p.detach() for p in op], alpha=1.0 - momentum)


class MomentumEncoder(nn.Module):
    """A frozen EMA copy of ``online`` (deep-copied at construction).

    Args:
        online: the network to follow (an encoder, or encoder + projection head).
        base_momentum: m at step 0 (0.99 for short runs on small data, 0.996 BYOL ImageNet,
            0.999 MoCo v2 without schedule).
        final_momentum: m at the last step (1.0 in BYOL/DINO; equal to ``base_momentum`` for
            a constant momentum as in MoCo v2).

    ``forward`` runs the target without gradients. :meth:`update` applies one EMA step; the
    momentum it used is kept in the ``momentum`` buffer (checkpointed, logged by recipes).
    """

    momentum: Tensor

    def __init__(
        self, online: nn.Module, base_momentum: float = 0.99, final_momentum: float = 1.0
    ) -> None:
        super().__init__()
        cosine_momentum(0, 1, base_momentum, final_momentum)  # validates the pair
        self.base_momentum, self.final_momentum = float(base_momentum), float(final_momentum)
        self.target = copy.deepcopy(online)
        self.target.requires_grad_(False)
        self.register_buffer("momentum", torch.tensor(float(base_momentum), dtype=torch.float64))

    def forward(self, *args, **kwargs):
        with torch.no_grad():
            return self.target(*args, **kwargs)

    def momentum_at(self, step: int, total_steps: int) -> float:
        """The scheduled momentum at ``step`` of ``total_steps``."""
        return cosine_momentum(step, total_steps, self.base_momentum, self.final_momentum)

    @torch.no_grad()
    def update(
        self,
        online: nn.Module,
        step: int | None = None,
        total_steps: int | None = None,
        *,
        momentum: float | None = None,
    ) -> None:
        """One EMA step towards ``online``: at the scheduled momentum of ``step`` /
        ``total_steps``, or at an explicit ``momentum``."""
        if momentum is None:
            if step is None or total_steps is None:
                raise ValueError("update needs step and total_steps, or momentum=.")
            momentum = self.momentum_at(step, total_steps)
        ema_update_(self.target, online, momentum)
        self.momentum.fill_(momentum)
