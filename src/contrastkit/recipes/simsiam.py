"""SimSiam (Chen & He 2021): a Siamese network with a predictor and a stop-gradient.

Each view's prediction ``p`` regresses the other view's projection ``z`` through a
stop-gradient; loss ``½·(D(p1, z2) + D(p2, z1))`` with ``D`` the negative cosine. No momentum
encoder, no negatives: the stop-gradient alone prevents collapse (the paper's key finding).

Example:
    >>> import torch
    >>> from contrastkit.encoders import SmallCNN
    >>> from contrastkit.recipes import SimSiam, SimSiamConfig
    >>> recipe = SimSiam(SmallCNN(in_channels=1, width=8, stages=2),
    ...                  SimSiamConfig(image_size=16, channels=1, proj_dim=32, pred_hidden=8))
    >>> batch = {"images": torch.randint(0, 256, (8, 1, 16, 16), dtype=torch.uint8)}
    >>> -1 <= float(recipe.step(batch).loss.detach()) <= 1
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from contrastkit.heads import ProjectionHead
from contrastkit.losses.negative_cosine import negative_cosine
from contrastkit.recipes._common import ImageViewsConfig, build_views, view_pair
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["SimSiam", "SimSiamConfig"]


@dataclass
class SimSiamConfig(ImageViewsConfig):
    """SimSiam hyper-parameters (the paper's CIFAR settings).

    Attributes:
        proj_dim: projector width (3 layers with BN, output BN; 2048 in the paper, 2 layers
            on CIFAR).
        proj_layers: projector depth.
        pred_hidden: the predictor's bottleneck (512 = proj_dim/4 in the paper).
    """

    proj_dim: int = 2048
    proj_layers: int = 2
    pred_hidden: int = 512


class SimSiam(Recipe):
    """Encoder + projector (output BN) + bottleneck predictor; ``embed`` returns ``[p, z]``."""

    name = "simsiam"
    #: the paper's CIFAR setting (SGD 0.03–0.05, wd 5e-4)
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "sgd",
        "lr": 0.05,
        "weight_decay": 0.0005,
    }

    def __init__(self, encoder: nn.Module, config: SimSiamConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or SimSiamConfig()
        self.encoder = encoder
        self.projector = ProjectionHead(
            encoder.out_dim, c.proj_dim, c.proj_dim, c.proj_layers, last_bn=True
        )
        self.predictor = ProjectionHead(c.proj_dim, c.pred_hidden, c.proj_dim, 2)
        self.views = build_views(c)

    def prepare(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {**batch, "inputs": view_pair(self, batch)}

    def embed(self, tower: str, inputs: Tensor) -> Tensor:
        z = self.projector(self.encoder(inputs))
        return torch.cat([self.predictor(z), z], dim=1)  # rows stay independent

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Tensor]) -> LossOutput:
        embeddings = by_tower["views"]
        n, d = prepared["images"].shape[0], self.config.proj_dim
        p, z = embeddings[:, :d], embeddings[:, d:]
        loss = 0.5 * (negative_cosine(p[:n], z[n:]) + negative_cosine(p[n:], z[:n]))
        return LossOutput(loss=loss, embeddings=z[:n].detach())
