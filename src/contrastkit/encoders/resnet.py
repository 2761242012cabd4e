"""ResNet-18/34/50 (He et al. 2016), written here (torchvision is not a dependency).

``small_input=True`` swaps the 7×7/stride-2 stem and max-pool for one 3×3/stride-1 conv, the
usual choice for 28–32 px images (SimCLR's CIFAR variant). ``width`` scales every stage's
channels (0.5 → half width), for encoders that must train fast on a CPU.

Example:
    >>> import torch
    >>> from contrastkit.encoders import resnet18
    >>> enc = resnet18(in_channels=1, small_input=True, width=0.5)
    >>> enc(torch.randn(2, 1, 28, 28)).shape, enc.out_dim
    (torch.Size([2, 256]), 256)
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["ResNet", "resnet18", "resnet34", "resnet50"]


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out)
            )

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + self.shortcut(x))


class ResNet(nn.Module):
    """A ResNet trunk with global average pooling: (B, C, H, W) → (B, out_dim).

    Args:
        block: ``"basic"`` (ResNet-18/34) or ``"bottleneck"`` (ResNet-50).
        layers: blocks per stage, e.g. (2, 2, 2, 2).
        in_channels: image channels (1 or 3).
        small_input: 3×3 stride-1 stem without max-pool (for 28–32 px).
        width: channel multiplier of every stage (64·width at the first).
        zero_init_residual: start each residual branch at zero (Goyal et al. 2017).
    """

    def __init__(
        self,
        block: str,
        layers: tuple[int, ...],
        *,
        in_channels: int = 3,
        small_input: bool = False,
        width: float = 1.0,
        zero_init_residual: bool = True,
    ) -> None:
        super().__init__()
        if block not in ("basic", "bottleneck"):
            raise ValueError(f"block must be 'basic' or 'bottleneck', got {block!r}.")
        if not width > 0:
            raise ValueError(f"width must be > 0, got {width}.")
        Block = BasicBlock if block == "basic" else Bottleneck
        base = max(8, int(round(64 * width)))
        if small_input:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, base, 3, 1, 1, bias=False),
                nn.BatchNorm2d(base),
                nn.ReLU(inplace=True),
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, base, 7, 2, 3, bias=False),
                nn.BatchNorm2d(base),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
        stages = []
        cin = base
        for i, n in enumerate(layers):
            planes = base * 2**i
            blocks = []
            for j in range(n):
                blocks.append(Block(cin, planes, stride=2 if (j == 0 and i > 0) else 1))
                cin = planes * Block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = cin
        self.config = {
            "block": block,
            "layers": list(layers),
            "in_channels": in_channels,
            "small_input": small_input,
            "width": width,
        }
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:
            for m in self.modules():
                last = getattr(m, "bn3", None) or getattr(m, "bn2", None)
                if isinstance(m, (BasicBlock, Bottleneck)) and last is not None:
                    nn.init.zeros_(last.weight)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.stages(self.stem(x))).flatten(1)


def resnet18(**kwargs) -> ResNet:
    """ResNet-18 trunk (512·width features). Keyword arguments as in :class:`ResNet`."""
    return ResNet("basic", (2, 2, 2, 2), **kwargs)


def resnet34(**kwargs) -> ResNet:
    """ResNet-34 trunk (512·width features). Keyword arguments as in :class:`ResNet`."""
    return ResNet("basic", (3, 4, 6, 3), **kwargs)


def resnet50(**kwargs) -> ResNet:
    """ResNet-50 trunk (2048·width features). Keyword arguments as in :class:`ResNet`."""
    return ResNet("bottleneck", (3, 4, 6, 3), **kwargs)
