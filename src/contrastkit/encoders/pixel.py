"""The pixel encoder of CURL and SAC-AE: a few 3×3 convolutions, a linear layer, LayerNorm.

Laskin, Srinivas & Abbeel 2020 (CURL, §5 and Appendix A) and Yarats et al. 2019 (SAC-AE) use
four 3×3 convolutions of 32 channels (the first with stride 2) on stacked frames, a linear
map to a 50-d feature, LayerNorm and tanh. The encoder takes uint8 frames (0–255) and scales
them itself, so replay buffers and views stay uint8 until the network.

Example:
    >>> import torch
    >>> from contrastkit.encoders.pixel import PixelEncoder
    >>> enc = PixelEncoder(in_channels=9, image_size=36)
    >>> enc(torch.randint(0, 256, (2, 9, 36, 36), dtype=torch.uint8)).shape
    torch.Size([2, 50])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["PixelEncoder"]


class PixelEncoder(nn.Module):
    """Stacked frames (B, C, S, S) → (B, ``feature_dim``) in [−1, 1].

    Args:
        in_channels: channels of a stacked observation (frames × colour channels).
        image_size: side of the (cropped) square input the encoder is built for.
        feature_dim: width of the output (CURL's 50).
        filters: channels of every convolution (32).
        layers: number of 3×3 convolutions (4; the first has stride 2).
    """

    def __init__(
        self,
        in_channels: int = 9,
        image_size: int = 36,
        feature_dim: int = 50,
        filters: int = 32,
        layers: int = 4,
    ) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be ≥ 1, got {layers}.")
        side = (image_size - 3) // 2 + 1 - 2 * (layers - 1)
        if side < 1:
            raise ValueError(
                f"{layers} convolutions shrink a {image_size}-pixel input below one pixel; use "
                f"fewer layers or a larger image_size."
            )
        convs: list[nn.Module] = [nn.Conv2d(in_channels, filters, 3, stride=2), nn.ReLU()]
        for _ in range(layers - 1):
            convs += [nn.Conv2d(filters, filters, 3, stride=1), nn.ReLU()]
        # channels-last convolutions: on CPU (oneDNN, AVX2) forward + backward of a batch of
        # 32 stacks ran 1.12× faster than NCHW (benchmarks/RESULTS.md, issue 23, session 21)
        self.convs = nn.Sequential(*convs).to(memory_format=torch.channels_last)
        self.fc = nn.Linear(filters * side * side, feature_dim)
        self.norm = nn.LayerNorm(feature_dim)
        self.image_size = int(image_size)
        self.out_dim = int(feature_dim)
        self.config = {
            "in_channels": in_channels,
            "image_size": image_size,
            "feature_dim": feature_dim,
            "filters": filters,
            "layers": layers,
        }

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(
                f"PixelEncoder was built for {self.image_size}×{self.image_size} inputs, got "
                f"{tuple(x.shape[-2:])}; crop the observations to that size."
            )
        w = self.fc.weight
        # to channels-last before the cast: uint8 frames copy a quarter of the bytes, and the
        # cast and the division keep the layout
        x = x.contiguous(memory_format=torch.channels_last)
        h = self.convs(x.to(w.dtype) / 255.0 if not x.is_floating_point() else x)
        return self.norm(self.fc(h.flatten(1))).tanh()
