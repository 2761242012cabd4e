"""Optimisers and schedules for contrastive pre-training.

- Weight decay is not applied to biases and normalisation parameters (all 1-D parameters), the
  standard practice of SimCLR, MoCo v3, BYOL and DINO.
- :class:`LARS` (You et al. 2017) for large-batch SGD, with the adaptation skipped for those
  same parameters, as in SimCLR.
- :func:`warmup_cosine`: linear warm-up then cosine decay, per step.

Example:
    >>> import torch
    >>> from contrastkit.train.optim import build_optimizer, warmup_cosine
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    >>> opt = build_optimizer(model, "lars", lr=0.3, weight_decay=1e-6)
    >>> sched = warmup_cosine(opt, total_steps=100, warmup_steps=10)
    >>> [len(g["params"]) for g in opt.param_groups]
    [1, 3]
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = [
    "LARS",
    "OPTIMIZERS",
    "WarmupCosine",
    "build_optimizer",
    "param_groups",
    "warmup_cosine",
]

OPTIMIZERS = ("sgd", "lars", "adamw", "adam")


def param_groups(model: nn.Module, weight_decay: float, lr: float | None = None) -> list[dict]:
    """Weights with ``weight_decay``, and biases / norm parameters without it.

    The second kind is marked ``lars_exclude=True`` so that LARS skips its trust ratio. A
    parameter with an ``lr_scale`` attribute (a pre-trained tower tuned slower than the new
    layers on it: :class:`~contrastkit.recipes.clip.CLIP`'s ``tower_lr``) goes into groups of
    its own whose ``lr`` is ``lr × lr_scale`` (``lr`` must then be given); the unscaled groups
    come first, so ``param_groups[0]["lr"]`` is the base rate.
    """
    buckets: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        scale = float(getattr(p, "lr_scale", 1.0))
        buckets.setdefault((scale, p.ndim <= 1), []).append(p)
    groups = []
    for (scale, no_decay), params in sorted(
        buckets.items(), key=lambda kv: (kv[0][0] != 1.0, kv[0])
    ):
        group = {
            "params": params,
            "weight_decay": 0.0 if no_decay else weight_decay,
            "lars_exclude": no_decay,
        }
        if scale != 1.0:
            if lr is None:
                raise ValueError("parameters with an lr_scale need the base lr: pass lr=.")
            group["lr"] = lr * scale
        groups.append(group)
    if not groups or groups[0]["lars_exclude"] or "lr" in groups[0]:
        groups.insert(0, {"params": [], "weight_decay": weight_decay, "lars_exclude": False})
    return groups


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise trust ratios (You et al. 2017; SimCLR's variant).

    For each parameter not excluded: ``g ← g + wd·w``, ``g ← η·|w|/|g| · g`` (when both norms
    are > 0), then momentum SGD. Groups with ``lars_exclude=True`` are plain momentum SGD.
    """

    def __init__(
        self,
        params,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = 0.001,
        eps: float = 1e-8,
    ) -> None:
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}.")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            trust_coefficient=trust_coefficient,
            eps=eps,
            lars_exclude=False,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g: Tensor = p.grad
                if group["weight_decay"] != 0:
                    g = g.add(p, alpha=group["weight_decay"])
                if not group["lars_exclude"]:
                    w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(g)
                    trust = torch.where(
                        (w_norm > 0) & (g_norm > 0),
                        group["trust_coefficient"] * w_norm / (g_norm + group["eps"]),
                        torch.ones_like(w_norm),
                    )
                    g = g.mul(trust)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.clone(g).detach()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(g)
                p.add_(state["momentum_buffer"], alpha=-group["lr"])
        return loss


def build_optimizer(
    model: nn.Module,
    name: str = "sgd",
    *,
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.999),
    lars_eta: float = 0.02,
) -> torch.optim.Optimizer:
    """Build ``sgd`` / ``lars`` / ``adamw`` / ``adam`` with the decay exclusion above."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {name!r}.")
    groups = param_groups(model, weight_decay, lr)
    if name == "lars":
        return LARS(
            groups, lr=lr, momentum=momentum, weight_decay=weight_decay, trust_coefficient=lars_eta
        )
    for g in groups:
        g.pop("lars_exclude")
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas)
    return torch.optim.Adam(groups, lr=lr, betas=betas)


class WarmupCosine:
    """The lr factor of :func:`warmup_cosine` at a step: a callable object, so that
    ``LambdaLR.state_dict`` keeps its horizon (a fitted ``total_steps`` survives a resume).

    :meth:`refit` moves the horizon in the middle of the cosine without a jump: the rest of
    the schedule continues from the current phase and reaches the final lr at the new end."""

    def __init__(self, total_steps: int, warmup_steps: int, final_lr_fraction: float) -> None:
        self.total_steps = int(total_steps)
        self.warmup_steps = int(min(warmup_steps, total_steps))
        self.final_lr_fraction = float(final_lr_fraction)
        #: from this step on, the phase runs from ``rebase_phase`` to 1 at ``total_steps``
        self.rebase_step = 0
        self.rebase_phase = 0.0

    def phase(self, step: int) -> float:
        """Position in the cosine, 0 (base lr) to 1 (final lr); 0 during the warm-up."""
        w = self.warmup_steps
        if step < w:
            return 0.0
        if self.rebase_step and step >= self.rebase_step:
            t0, s0 = self.rebase_phase, self.rebase_step
            return min(t0 + (1 - t0) * (step - s0) / max(1, self.total_steps - s0), 1.0)
        return min((step - w) / max(1, self.total_steps - w), 1.0)

    def __call__(self, step: int) -> float:
        w, f = self.warmup_steps, self.final_lr_fraction
        if step < w:
            return (step + 1) / w
        return f + (1 - f) * 0.5 * (1 + math.cos(math.pi * self.phase(step)))

    def refit(self, step: int, total_steps: int) -> None:
        """End the schedule at ``total_steps`` instead; ``step`` is the next step to run.
        Inside the warm-up only the horizon moves; later, the cosine continues from its
        phase at ``step``, so the lr is continuous."""
        if step > self.warmup_steps:
            self.rebase_phase, self.rebase_step = self.phase(step), step
        self.total_steps = int(total_steps)


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_steps: int = 0,
    final_lr_fraction: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step schedule: linear warm-up from ~0 to the base lr, then cosine to
    ``final_lr_fraction`` × base lr at ``total_steps``. The horizon can be moved later with
    ``scheduler.lr_lambdas[0].refit(step, n)`` (the trainer does so when it fits the epochs
    to a time budget)."""
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0, got {total_steps}.")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, WarmupCosine(total_steps, warmup_steps, final_lr_fraction)
    )
