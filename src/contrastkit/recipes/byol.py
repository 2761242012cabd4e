"""BYOL (Grill et al. 2020): predict a slow-moving target network's projection; no negatives.

The online branch (encoder → projector → predictor) regresses, for each view, the target
branch's projection of the other view (target = momentum copy of encoder + projector, no
gradient). Loss per direction ``2 − 2·cos(p, z')`` (= ‖p̂ − ẑ'‖²), summed over the two
directions as in the paper. Collapse is avoided by the predictor and the EMA target.

Example:
    >>> import torch
    >>> from contrastkit.encoders import SmallCNN
    >>> from contrastkit.recipes import BYOL, BYOLConfig
    >>> recipe = BYOL(SmallCNN(in_channels=1, width=8, stages=2),
    ...               BYOLConfig(image_size=16, channels=1, proj_hidden=32, pred_hidden=32))
    >>> batch = {"images": torch.randint(0, 256, (8, 1, 16, 16), dtype=torch.uint8)}
    >>> 0 <= float(recipe.step(batch).loss.detach()) <= 8
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from contrastkit.heads import ProjectionHead
from contrastkit.losses.negative_cosine import negative_cosine
from contrastkit.memory import MomentumEncoder
from contrastkit.recipes._common import ImageViewsConfig, build_views, online, view_pair
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["BYOL", "BYOLConfig"]


@dataclass
class BYOLConfig(ImageViewsConfig):
    """BYOL hyper-parameters, scaled to small images.

    Attributes:
        proj_hidden, proj_dim: projector MLP (4096 → 256 in the paper; 2048 → 256 here).
        pred_hidden: predictor hidden width (same shape as the projector in the paper).
        base_momentum, final_momentum: target EMA, cosine from 0.99 to 1 (0.996 on ImageNet;
            short runs on small data follow the online network faster).
        views: the asymmetric BYOL preset (blur 1.0 / 0.1, solarize 0 / 0.2).
    """

    proj_hidden: int = 2048
    proj_dim: int = 256
    pred_hidden: int = 2048
    base_momentum: float = 0.99
    final_momentum: float = 1.0
    views: str = "byol"


class BYOL(Recipe):
    """Online encoder + projector + predictor; EMA target encoder + projector."""

    name = "byol"
    #: LARS, solo-learn's CIFAR setting (the paper: 0.2·B/256, wd 1.5e-6)
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "lars",
        "lr": 1.0,
        "weight_decay": 1e-05,
    }

    def __init__(self, encoder: nn.Module, config: BYOLConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or BYOLConfig()
        self.encoder = encoder
        self.projector = ProjectionHead(encoder.out_dim, c.proj_hidden, c.proj_dim, 2)
        self.predictor = ProjectionHead(c.proj_dim, c.pred_hidden, c.proj_dim, 2)
        self.target = MomentumEncoder(
            online(self.encoder, self.projector), c.base_momentum, c.final_momentum
        )
        self.views = build_views(c)

    def prepare(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = view_pair(self, batch)
        return {**batch, "inputs": x, "targets": self.target(x).float()}

    def embed(self, tower: str, inputs: Tensor) -> Tensor:
        return self.predictor(self.projector(self.encoder(inputs)))

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Tensor]) -> LossOutput:
        embeddings = by_tower["views"]
        n = prepared["images"].shape[0]
        p1, p2 = embeddings[:n], embeddings[n:]
        t1, t2 = prepared["targets"][:n], prepared["targets"][n:]
        loss = (2 + 2 * negative_cosine(p1, t2)) + (2 + 2 * negative_cosine(p2, t1))
        metrics = {"momentum": float(self.target.momentum)}
        return LossOutput(loss=loss, embeddings=t1.detach(), metrics=metrics)

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.target.update(online(self.encoder, self.projector), step, total_steps)
