"""Batch-norm fixes for momentum contrast on one device: split BN and shuffled key batches.

MoCo's keys and queries of the same image sit in one batch; with plain BatchNorm the
network can find its positive key through the batch statistics ("cheating" through BN, He et
al. 2020, §3.3) instead of learning features. MoCo fixes it with shuffle-BN across GPUs. On one
device the equivalent is **split BN** (the statistics are computed over ``num_splits`` groups
of the batch) together with a **shuffled key batch** (the keys' groups hold other images than
the queries' groups):

- :func:`convert_split_batchnorm` turns every BatchNorm of a module into a split BN with the same
  parameters and state-dict keys (an exported encoder loads into the plain network; in eval
  mode it is a plain BN);
- :func:`shuffled_forward` runs a network on a permuted batch and puts the rows back.

Example:
    >>> import torch
    >>> from contrastkit.memory import convert_split_batchnorm, shuffled_forward
    >>> net = convert_split_batchnorm(torch.nn.Sequential(torch.nn.Linear(4, 8),
    ...                                                   torch.nn.BatchNorm1d(8)), 2)
    >>> shuffled_forward(net, torch.randn(6, 4)).shape
    torch.Size([6, 8])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "SplitBatchNorm1d",
    "SplitBatchNorm2d",
    "convert_split_batchnorm",
    "shuffled_forward",
]


class _SplitMixin:
    """Training-mode statistics over ``num_splits`` contiguous groups of the batch (split k
    holds rows k·m … (k+1)·m − 1, m = N / num_splits); the running statistics are the mean of
    the groups' updates. The groups are ``split`` views of the input (no copy in any memory
    format; their backward is one concatenation, where slicing would zero-fill a full-size
    gradient per group)."""

    num_splits: int

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        s = self.num_splits
        if not self.training or s == 1:
            return super().forward(x)  # type: ignore[misc]
        n = x.shape[0]
        if n % s:
            raise ValueError(
                f"split batch norm with num_splits={s} needs a batch divisible by {s}, got "
                f"{n} rows; use a batch size that is a multiple of {s}."
            )
        if n // s < 2:
            raise ValueError(
                f"split batch norm needs at least 2 rows per split, got {n} rows for {s} splits."
            )
        m = n // s
        track = self.running_mean is not None and self.track_running_stats
        momentum = 0.0 if self.momentum is None else self.momentum
        if track:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative average, as nn.BatchNorm does
                momentum = 1.0 / float(self.num_batches_tracked)
        outs, stats = [], []
        for part in x.split(m):
            mean = self.running_mean.clone() if track else None
            var = self.running_var.clone() if track else None
            outs.append(
                F.batch_norm(part, mean, var, self.weight, self.bias, True, momentum, self.eps)
            )
            stats.append((mean, var))
        if track:
            with torch.no_grad():
                self.running_mean.copy_(torch.stack([a for a, _ in stats]).mean(0))
                self.running_var.copy_(torch.stack([b for _, b in stats]).mean(0))
        return torch.cat(outs)


class SplitBatchNorm1d(_SplitMixin, nn.BatchNorm1d):
    """:class:`torch.nn.BatchNorm1d` whose training statistics are per split of the batch."""

    def __init__(self, num_features: int, num_splits: int, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self.num_splits = int(num_splits)


class SplitBatchNorm2d(_SplitMixin, nn.BatchNorm2d):
    """:class:`torch.nn.BatchNorm2d` whose training statistics are per split of the batch."""

    def __init__(self, num_features: int, num_splits: int, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self.num_splits = int(num_splits)


def convert_split_batchnorm(module: nn.Module, num_splits: int) -> nn.Module:
    """Replace every ``BatchNorm1d``/``BatchNorm2d`` in ``module`` (in place, and returned) by
    its split form with ``num_splits`` groups, keeping parameters, buffers and their names."""
    if int(num_splits) < 1:
        raise ValueError(f"num_splits must be ≥ 1, got {num_splits}.")
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and not isinstance(module, _SplitMixin):
        cls = SplitBatchNorm2d if isinstance(module, nn.BatchNorm2d) else SplitBatchNorm1d
        new = cls(
            module.num_features,
            int(num_splits),
            eps=module.eps,
            momentum=module.momentum,
            affine=module.affine,
            track_running_stats=module.track_running_stats,
        )
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        tensors = list(module.parameters()) + list(module.buffers())
        return new.to(tensors[0].device) if tensors else new
    for name, child in module.named_children():
        setattr(module, name, convert_split_batchnorm(child, num_splits))
    return module


def shuffled_forward(net: nn.Module, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``net`` applied to the rows of ``x`` in a random order, returned in the original order.

    With split BN in ``net`` each statistics group then holds a random subset of the batch, not
    the subset that the same images formed in the query pass (single-device shuffle-BN).
    """
    perm = torch.randperm(x.shape[0], device=x.device, generator=generator)
    out = net(x[perm])
    return out[torch.argsort(perm)]
