"""Projection and prediction heads (discarded at export: only the encoder is kept).

Example:
    >>> import torch
    >>> from contrastkit.heads import ProjectionHead
    >>> head = ProjectionHead(in_dim=512, hidden_dim=512, out_dim=128, num_layers=2)
    >>> head(torch.randn(4, 512)).shape
    torch.Size([4, 128])
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.heads.noisy import NoisyLinear, reset_noise

__all__ = ["DINOHead", "NoisyLinear", "ProjectionHead", "reset_noise"]


class ProjectionHead(nn.Module):
    """MLP projection head: ``num_layers`` linear layers with BN + ReLU between them.

    SimCLR uses 2 layers (Chen et al. 2020a), SimCLR v2 / MoCo v3 3 layers; BYOL's projector
    and predictor are 2-layer heads with BN. ``last_bn`` adds a BatchNorm without affine
    parameters on the output (MoCo v3, Barlow Twins).

    Args:
        in_dim: encoder feature dimension. hidden_dim: width of the hidden layers.
        out_dim: embedding dimension. num_layers: ≥ 1 (1 = a single linear map).
        bn: BatchNorm after hidden layers. last_bn: BatchNorm (affine=False) on the output.
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int = 2048,
        out_dim: int = 128,
        num_layers: int = 2,
        *,
        bn: bool = True,
        last_bn: bool = False,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be ≥ 1, got {num_layers}.")
        layers: list[nn.Module] = []
        d = in_dim
        for _ in range(num_layers - 1):
            layers.append(nn.Linear(d, hidden_dim, bias=not bn))
            if bn:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(nn.ReLU(inplace=True))
            d = hidden_dim
        layers.append(nn.Linear(d, out_dim, bias=not last_bn))
        if last_bn:
            layers.append(nn.BatchNorm1d(out_dim, affine=False))
        self.net = nn.Sequential(*layers)
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class DINOHead(nn.Module):
    """DINO's head (Caron et al. 2021): MLP → L2-normalised bottleneck → weight-normalised
    linear layer onto ``out_dim`` prototypes (logits).

    Args:
        in_dim: encoder feature dimension. out_dim: K prototypes (65,536 on ImageNet).
        hidden_dim, bottleneck_dim, num_layers: the MLP (2048, 256, 3 in the paper).
        bn: BatchNorm in the MLP (the paper's ResNet setting uses none; GELU activations).
        norm_last_layer: fix the prototypes' norm to 1 (the weight-norm gain frozen at 1),
            which stabilises training.

    ``freeze_last_layer`` (an attribute the recipe sets) stops gradients into the prototypes,
    as DINO does during its first epoch.

    Example:
        >>> import torch
        >>> head = DINOHead(64, out_dim=100, hidden_dim=32, bottleneck_dim=16)
        >>> head(torch.randn(4, 64)).shape
        torch.Size([4, 100])
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 4096,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        num_layers: int = 3,
        *,
        bn: bool = False,
        norm_last_layer: bool = True,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be ≥ 1, got {num_layers}.")
        layers: list[nn.Module] = []
        d = in_dim
        for _ in range(num_layers - 1):
            layers.append(nn.Linear(d, hidden_dim))
            if bn:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(nn.GELU())
            d = hidden_dim
        layers.append(nn.Linear(d, bottleneck_dim))
        self.mlp = nn.Sequential(*layers)
        self.last = nn.Linear(bottleneck_dim, out_dim, bias=False)
        self.norm_last_layer = norm_last_layer
        self.freeze_last_layer = False
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        h = F.normalize(self.mlp(x), dim=-1)
        w = self.last.weight
        if self.norm_last_layer:
            w = F.normalize(w, dim=1)
        if self.freeze_last_layer:
            w = w.detach()
        return F.linear(h, w)
