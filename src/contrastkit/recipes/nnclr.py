"""NNCLR (Dwibedi et al. 2021): nearest neighbours from a support set as positives.

Each view's projection is replaced by its nearest neighbour in a support set (a queue of past
projections); InfoNCE then contrasts that neighbour with the prediction of the other view
against the other images' predictions. The neighbours bring semantic variation that no
augmentation makes. Until the support set holds a batch, the projection itself is used.

Example:
    >>> import torch
    >>> from contrastkit.encoders import SmallCNN
    >>> from contrastkit.recipes import NNCLR, NNCLRConfig
    >>> recipe = NNCLR(SmallCNN(in_channels=1, width=8, stages=2),
    ...                NNCLRConfig(image_size=16, channels=1, proj_hidden=32, proj_dim=16,
    ...                            pred_hidden=32, queue_size=64))
    >>> batch = {"images": torch.randint(0, 256, (8, 1, 16, 16), dtype=torch.uint8)}
    >>> out = recipe.step(batch)
    >>> len(recipe.support)
    8
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from contrastkit.heads import ProjectionHead
from contrastkit.losses import info_nce
from contrastkit.memory import FeatureQueue
from contrastkit.recipes._common import ImageViewsConfig, build_views, instance_ids, view_pair
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["NNCLR", "NNCLRConfig"]


@dataclass
class NNCLRConfig(ImageViewsConfig):
    """NNCLR hyper-parameters, scaled to small images.

    Attributes:
        temperature: τ (0.1 in the paper).
        proj_hidden, proj_dim: 3-layer projector with BN (2048 → 256 in the paper).
        pred_hidden: predictor hidden width (4096 in the paper; 2048 here).
        queue_size: support-set size (98,304 on ImageNet; 16,384 here).
    """

    temperature: float = 0.1
    proj_hidden: int = 2048
    proj_dim: int = 256
    pred_hidden: int = 2048
    queue_size: int = 16384
    views: str = "byol"


class NNCLR(Recipe):
    """Encoder + projector + predictor; a :class:`~contrastkit.memory.FeatureQueue` support set."""

    name = "nnclr"
    #: LARS as in the paper, solo-learn's CIFAR lr
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "lars",
        "lr": 0.4,
        "weight_decay": 1e-05,
    }

    def __init__(self, encoder: nn.Module, config: NNCLRConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or NNCLRConfig()
        self.encoder = encoder
        self.projector = ProjectionHead(encoder.out_dim, c.proj_hidden, c.proj_dim, 3)
        self.predictor = ProjectionHead(c.proj_dim, c.pred_hidden, c.proj_dim, 2)
        self.support = FeatureQueue(c.queue_size, c.proj_dim, normalize=True)
        self.views = build_views(c)

    def prepare(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {**batch, "inputs": view_pair(self, batch)}

    def embed(self, tower: str, inputs: Tensor) -> Tensor:
        z = self.projector(self.encoder(inputs))
        return torch.cat([z, self.predictor(z)], dim=1)

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Tensor]) -> LossOutput:
        embeddings = by_tower["views"]
        n, d = prepared["images"].shape[0], self.config.proj_dim
        ids, kind, queue_ids = instance_ids(prepared, n)
        z, p = embeddings[:, :d], embeddings[:, d:]
        z1, z2 = z[:n].detach(), z[n:].detach()
        if len(self.support) >= n:
            nn1, nn2 = self.support.nearest(z1), self.support.nearest(z2)
        else:
            nn1, nn2 = z1, z2
        common = dict(query_ids=ids, key_ids=ids, temperature=self.config.temperature, gather=kind)
        loss = 0.5 * (info_nce(nn1, p[n:], **common) + info_nce(nn2, p[:n], **common))
        if self.training:
            self.support.push(z1, queue_ids, gather=True)
        return LossOutput(loss=loss, embeddings=z1)
