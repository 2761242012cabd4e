"""Small encoders: a VGG-style CNN for small images and an MLP for flat features.

Example:
    >>> import torch
    >>> from contrastkit.encoders import SmallCNN, MLP
    >>> SmallCNN(in_channels=1, width=32)(torch.randn(4, 1, 28, 28)).shape
    torch.Size([4, 256])
    >>> MLP(in_dim=64, hidden=(128,), out_dim=32)(torch.randn(4, 64)).shape
    torch.Size([4, 32])
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["MLP", "SmallCNN"]


class SmallCNN(nn.Module):
    """Conv–BN–ReLU stages with 2× down-sampling, then global average pooling.

    Args:
        in_channels: image channels.
        width: channels of the first stage; stage ``i`` has ``width·2^i``.
        stages: number of stages (each: two 3×3 convs, then 2×2 max-pool except the last).
    """

    def __init__(self, in_channels: int = 1, width: int = 32, stages: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for i in range(stages):
            cout = width * 2**i
            layers += [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
            if i < stages - 1:
                layers.append(nn.MaxPool2d(2))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = cin
        self.config = {"in_channels": in_channels, "width": width, "stages": stages}

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.features(x)).flatten(1)


class MLP(nn.Module):
    """Linear–BN–ReLU layers for flat features: (B, in_dim) → (B, out_dim).

    Inputs with more than two dimensions are flattened (so it also takes small images).
    """

    def __init__(
        self, in_dim: int, hidden: Sequence[int] = (512,), out_dim: int = 128, bn: bool = True
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers += [nn.Linear(d, h, bias=not bn)]
            if bn:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU(inplace=True))
            d = h
        layers.append(nn.Linear(d, out_dim))
        self.net = nn.Sequential(*layers)
        self.out_dim = out_dim
        self.config = {"in_dim": in_dim, "hidden": list(hidden), "out_dim": out_dim, "bn": bn}

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))
