"""SimCLR (Chen et al. 2020): two augmented views, NT-Xent over the 2B projections.

Example:
    >>> import torch
    >>> from contrastkit.encoders import SmallCNN
    >>> from contrastkit.recipes import SimCLR, SimCLRConfig
    >>> recipe = SimCLR(SmallCNN(in_channels=1, width=8, stages=2), SimCLRConfig(image_size=16, channels=1))
    >>> out = recipe.step({"images": torch.randint(0, 256, (8, 1, 16, 16), dtype=torch.uint8)})
    >>> out.loss.ndim
    0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from contrastkit.augment import views_for
from contrastkit.heads import ProjectionHead
from contrastkit.losses import info_nce
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["SimCLR", "SimCLRConfig"]


@dataclass
class SimCLRConfig:
    """SimCLR hyper-parameters (defaults scaled to small images and CPU batch sizes).

    Attributes:
        image_size, channels: input geometry (views are made at ``image_size``).
        temperature: NT-Xent τ (0.5 in the paper for batch 256–512; 0.2 works better for the
            small batches a CPU affords).
        proj_hidden, proj_dim, proj_layers: the projection head (2-layer MLP, 128-d output).
        flip: horizontal-flip probability of the views (0 for digits).
        crop_scale: area range of the random resized crops.
        views: view preset name.
    """

    image_size: int = 32
    channels: int = 3
    temperature: float = 0.2
    proj_hidden: int = 512
    proj_dim: int = 128
    proj_layers: int = 2
    flip: float = 0.5
    crop_scale: tuple[float, float] = (0.2, 1.0)
    views: str = "simclr"


class SimCLR(Recipe):
    """Encoder + projection head + two views + :func:`~contrastkit.losses.info_nce`."""

    name = "simclr"
    #: LARS as in the paper; 0.4 / 1e-5 chosen on the F-MNIST held-out split
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "lars",
        "lr": 0.4,
        "weight_decay": 1e-05,
    }
    #: what :meth:`ids` returns: per-rank instance numbers (gathered with a rank offset)
    id_kind = "instances"

    def __init__(self, encoder: nn.Module, config: SimCLRConfig | None = None) -> None:
        super().__init__()
        self.config = config or SimCLRConfig()
        c = self.config
        self.encoder = encoder
        self.head = ProjectionHead(encoder.out_dim, c.proj_hidden, c.proj_dim, c.proj_layers)
        self.views = views_for(
            c.views, c.image_size, c.channels, flip=c.flip, scale=tuple(c.crop_scale)
        )

    def ids(self, batch: dict[str, Tensor], n: int) -> Tensor:
        """Instance ids: the two views of sample i share id i."""
        return torch.arange(n, device=batch["images"].device)

    def prepare(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        images = batch["images"]
        v1, v2 = self.views(images)[:2]
        x = torch.cat([v1, v2])
        if next(self.encoder.parameters()).is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        return {**batch, "inputs": x}

    def embed(self, tower: str, inputs: Tensor) -> Tensor:
        return self.head(self.encoder(inputs))

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Tensor]) -> LossOutput:
        embeddings = by_tower["views"]
        n = prepared["images"].shape[0]
        ids = self.ids(prepared, n).repeat(2)
        # Under torch.distributed every rank's views are negatives (and, for SupCon, positives).
        loss = info_nce(
            embeddings, query_ids=ids, temperature=self.config.temperature, gather=self.id_kind
        )
        return LossOutput(loss=loss, embeddings=embeddings[:n].detach())
