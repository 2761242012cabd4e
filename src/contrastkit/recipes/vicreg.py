"""VICReg (Bardes, Ponce, LeCun 2022): variance, invariance and covariance regularisation.

The two views' projections are pulled together (invariance, MSE), each dimension's standard
deviation over the batch is kept above γ = 1 (variance, a hinge) and the dimensions are
decorrelated (covariance). No negatives, no momentum encoder; the statistics are over the
global batch under torch.distributed. The three terms are logged separately.

Example:
    >>> import torch
    >>> from contrastkit.encoders import SmallCNN
    >>> from contrastkit.recipes import VICReg, VICRegConfig
    >>> recipe = VICReg(SmallCNN(in_channels=1, width=8, stages=2),
    ...                 VICRegConfig(image_size=16, channels=1, proj_hidden=32, proj_dim=32))
    >>> batch = {"images": torch.randint(0, 256, (8, 1, 16, 16), dtype=torch.uint8)}
    >>> sorted(recipe.step(batch).metrics)
    ['covariance', 'invariance', 'variance']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from contrastkit.heads import ProjectionHead
from contrastkit.losses.vicreg import vicreg_terms
from contrastkit.recipes._common import ImageViewsConfig, build_views, view_pair
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["VICReg", "VICRegConfig"]


@dataclass
class VICRegConfig(ImageViewsConfig):
    """VICReg hyper-parameters (the paper's λ = μ = 25, ν = 1), scaled to small images.

    Attributes:
        proj_hidden, proj_dim: 3-layer projector with BN (8192 on ImageNet, 2048 here).
        invariance_weight, variance_weight, covariance_weight: λ, μ, ν.
        views: the asymmetric BYOL augmentations, as in the paper.
    """

    proj_hidden: int = 2048
    proj_dim: int = 2048
    invariance_weight: float = 25.0
    variance_weight: float = 25.0
    covariance_weight: float = 1.0
    views: str = "byol"


class VICReg(Recipe):
    """Encoder + 3-layer projector; :func:`~contrastkit.losses.vicreg` on the two views."""

    name = "vicreg"
    #: LARS, solo-learn's CIFAR setting
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "lars",
        "lr": 0.3,
        "weight_decay": 0.0001,
    }

    def __init__(self, encoder: nn.Module, config: VICRegConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or VICRegConfig()
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
        terms = vicreg_terms(
            z1,
            z2,
            invariance_weight=c.invariance_weight,
            variance_weight=c.variance_weight,
            covariance_weight=c.covariance_weight,
            gather="instances",
        )
        metrics = {k: float(terms[k].detach()) for k in ("invariance", "variance", "covariance")}
        return LossOutput(loss=terms["loss"], embeddings=z1.detach(), metrics=metrics)
