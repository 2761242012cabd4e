"""Barlow Twins (Zbontar et al. 2021): make the cross-correlation of two views the identity.

The batch-standardised projections of the two views are correlated dimension by dimension;
the loss pulls the diagonal to 1 (invariance) and the off-diagonal to 0 (redundancy
reduction). No negatives, no momentum encoder, no predictor; the statistics are over the
global batch under torch.distributed.

Example:
    >>> import torch
    >>> from contrastkit.encoders import SmallCNN
    >>> from contrastkit.recipes import BarlowTwins, BarlowTwinsConfig
    >>> recipe = BarlowTwins(SmallCNN(in_channels=1, width=8, stages=2),
    ...                      BarlowTwinsConfig(image_size=16, channels=1, proj_hidden=32,
    ...                                        proj_dim=32))
    >>> batch = {"images": torch.randint(0, 256, (8, 1, 16, 16), dtype=torch.uint8)}
    >>> float(recipe.step(batch).loss.detach()) > 0
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from contrastkit.heads import ProjectionHead
from contrastkit.losses.barlow_twins import barlow_twins
from contrastkit.recipes._common import ImageViewsConfig, build_views, view_pair
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["BarlowTwins", "BarlowTwinsConfig"]


@dataclass
class BarlowTwinsConfig(ImageViewsConfig):
    """Barlow Twins hyper-parameters, scaled to small images (solo-learn's CIFAR settings).

    Attributes:
        proj_hidden, proj_dim: 3-layer projector with BN (8192 wide on ImageNet, 2048 here).
        lambda_offdiag: weight of the redundancy term (5.1e-3 in the paper).
        scale: loss scale (0.1 for a 2048-d projector, solo-learn's CIFAR setting; the paper
            uses 1 with 8192 dimensions).
        views: the asymmetric BYOL augmentations, as in the paper.
    """

    proj_hidden: int = 2048
    proj_dim: int = 2048
    lambda_offdiag: float = 5.1e-3
    scale: float = 0.1
    views: str = "byol"


class BarlowTwins(Recipe):
    """Encoder + 3-layer projector; :func:`~contrastkit.losses.barlow_twins` on the two views."""

    name = "barlow_twins"
    #: LARS, solo-learn's CIFAR setting
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "lars",
        "lr": 0.3,
        "weight_decay": 0.0001,
    }

    def __init__(self, encoder: nn.Module, config: BarlowTwinsConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or BarlowTwinsConfig()
        self.encoder = encoder
        self.projector = ProjectionHead(encoder.out_dim, c.proj_hidden, c.proj_dim, 3)
        self.views = build_views(c)

    def prepare(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {**batch, "inputs": view_pair(self, batch)}

    def embed(self, tower: str, inputs: Tensor) -> Tensor:
        return self.projector(self.encoder(inputs))

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Tensor]) -> LossOutput:
        embeddings = by_tower["views"]
        n, c = prepared["images"].shape[0], self.config
        z1, z2 = embeddings[:n], embeddings[n:]
        loss = barlow_twins(
            z1, z2, lambda_offdiag=c.lambda_offdiag, scale=c.scale, gather="instances"
        )
        return LossOutput(loss=loss, embeddings=z1.detach())
