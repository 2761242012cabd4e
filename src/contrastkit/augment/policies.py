"""RandAugment / AutoAugment policies (kornia) that also accept 1-channel images.

kornia's policies include saturation and hue operations that need RGB. A grayscale batch is
replicated to three channels, augmented, and averaged back: colour operations leave gray pixels
gray, so the round trip is exact for them.

Example:
    >>> import torch
    >>> from contrastkit.augment import rand_augment
    >>> out = rand_augment(n=2, m=9)(torch.rand(8, 1, 28, 28))
    >>> out.shape
    torch.Size([8, 1, 28, 28])
"""

from __future__ import annotations

from kornia.augmentation.auto import AutoAugment, RandAugment
from torch import Tensor, nn

__all__ = ["AnyChannels", "auto_augment", "rand_augment"]


class AnyChannels(nn.Module):
    """Run an RGB-only augmentation on 1- or 3-channel float batches (B, C, H, W) in [0, 1]."""

    def __init__(self, op: nn.Module) -> None:
        super().__init__()
        self.op = op

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected (B, 1|3, H, W) images, got shape {tuple(x.shape)}.")
        if x.shape[1] == 3:
            return self.op(x)
        return self.op(x.expand(-1, 3, -1, -1).contiguous()).mean(dim=1, keepdim=True)


def rand_augment(n: int = 2, m: int = 9) -> AnyChannels:
    """RandAugment (Cubuk et al. 2020): ``n`` random operations of magnitude ``m`` (0–30)."""
    return AnyChannels(RandAugment(n=n, m=m))


def auto_augment(policy: str = "imagenet") -> AnyChannels:
    """AutoAugment (Cubuk et al. 2019) with kornia's ``imagenet``, ``cifar10`` or ``svhn`` policy."""
    return AnyChannels(AutoAugment(policy=policy))
