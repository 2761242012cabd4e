"""MoCo v3 (Chen, Xie, He 2021): momentum keys, in-batch negatives, a predictor, no queue.

Both views go through the online encoder, a 3-layer projector and a 2-layer predictor (the
queries) and through the momentum encoder + projector (the keys); the loss is the symmetrised
InfoNCE of each query against the other view's keys of the whole (gathered) batch, multiplied
by 2τ as in the official code.

Example:
    >>> import torch
    >>> from contrastkit.encoders import SmallCNN
    >>> from contrastkit.recipes import MoCoV3, MoCoV3Config
    >>> recipe = MoCoV3(SmallCNN(in_channels=1, width=8, stages=2),
    ...                 MoCoV3Config(image_size=16, channels=1, proj_hidden=32, pred_hidden=32))
    >>> batch = {"images": torch.randint(0, 256, (8, 1, 16, 16), dtype=torch.uint8)}
    >>> float(recipe.step(batch).loss.detach()) > 0
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from contrastkit.heads import ProjectionHead
from contrastkit.losses import info_nce
from contrastkit.memory import MomentumEncoder
from contrastkit.recipes._common import (
    ImageViewsConfig,
    build_views,
    instance_ids,
    online,
    view_pair,
)
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["MoCoV3", "MoCoV3Config"]


@dataclass
class MoCoV3Config(ImageViewsConfig):
    """MoCo v3 hyper-parameters (ResNet form), scaled to small images.

    Attributes:
        temperature: τ (1.0 for ResNet-50 on ImageNet with batch 4096; 0.2 suits batch 256).
        proj_hidden, proj_dim: 3-layer projector with BN, last BN without affine (4096 → 256
            in the paper; 2048 → 256 here).
        pred_hidden: the 2-layer predictor's hidden width.
        base_momentum, final_momentum: cosine EMA schedule (0.99 → 1 as in the paper).
    """

    temperature: float = 0.2
    proj_hidden: int = 2048
    proj_dim: int = 256
    pred_hidden: int = 2048
    base_momentum: float = 0.99
    final_momentum: float = 1.0
    views: str = "byol"


class MoCoV3(Recipe):
    """Online encoder + projector + predictor; momentum encoder + projector for the keys."""

    name = "mocov3"
    #: LARS as in the paper's ResNet runs, solo-learn's CIFAR lr
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "lars",
        "lr": 0.3,
        "weight_decay": 1e-05,
    }

    def __init__(self, encoder: nn.Module, config: MoCoV3Config | None = None) -> None:
        super().__init__()
        self.config = c = config or MoCoV3Config()
        self.encoder = encoder
        self.projector = ProjectionHead(encoder.out_dim, c.proj_hidden, c.proj_dim, 3, last_bn=True)
        self.predictor = ProjectionHead(c.proj_dim, c.pred_hidden, c.proj_dim, 2, last_bn=True)
        self.key_encoder = MomentumEncoder(
            online(self.encoder, self.projector), c.base_momentum, c.final_momentum
        )
        self.views = build_views(c)

    def prepare(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = view_pair(self, batch)
        return {**batch, "inputs": x, "keys": self.key_encoder(x).float()}

    def embed(self, tower: str, inputs: Tensor) -> Tensor:
        return self.predictor(self.projector(self.encoder(inputs)))

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Tensor]) -> LossOutput:
        embeddings = by_tower["views"]
        n = prepared["images"].shape[0]
        ids, kind, _ = instance_ids(prepared, n)
        q1, q2 = embeddings[:n], embeddings[n:]
        k1, k2 = prepared["keys"][:n], prepared["keys"][n:]
        tau = self.config.temperature
        common = dict(query_ids=ids, key_ids=ids, temperature=tau, gather=kind)
        loss = 2 * tau * (info_nce(q1, k2, **common) + info_nce(q2, k1, **common))
        metrics = {"momentum": float(self.key_encoder.momentum)}
        return LossOutput(loss=loss, embeddings=q1.detach(), metrics=metrics)

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.key_encoder.update(online(self.encoder, self.projector), step, total_steps)
