"""Projection and prediction heads (discarded at export: only the encoder is kept).

Example:
    >>> import torch
    >>> from contrastkit.heads import ProjectionHead
    >>> head = ProjectionHead(in_dim=512, hidden_dim=512, out_dim=128, num_layers=2)
    >>> head(torch.randn(4, 512)).shape
    torch.Size([4, 128])
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["ProjectionHead"]


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
