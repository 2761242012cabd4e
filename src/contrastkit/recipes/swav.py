"""SwAV (Caron et al. 2020): swapped prediction of online cluster assignments, with multi-crop.

Projections of all crops are scored against learnable prototypes; the codes of the two
global crops are computed online by Sinkhorn-Knopp (equal partition of the batch over the
prototypes) and each crop predicts the codes of the other global crops. A queue of past
global-crop projections enlarges the batch that Sinkhorn partitions (needed when the batch is
small next to the number of prototypes); the prototypes are frozen for the first steps and
re-normalised after every step, as in the paper.

Example:
    >>> import torch
    >>> from contrastkit.encoders import SmallCNN
    >>> from contrastkit.recipes import SwAV, SwAVConfig
    >>> recipe = SwAV(SmallCNN(in_channels=1, width=8, stages=2),
    ...               SwAVConfig(image_size=16, channels=1, proj_hidden=32, proj_dim=16,
    ...                          num_prototypes=10, n_local=2, queue_size=0))
    >>> batch = {"images": torch.randint(0, 256, (8, 1, 16, 16), dtype=torch.uint8)}
    >>> float(recipe.step(batch).loss.detach()) > 0
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.heads import ProjectionHead
from contrastkit.losses.swav import sinkhorn_knopp, swav
from contrastkit.memory import FeatureQueue
from contrastkit.recipes._common import ImageViewsConfig, build_views, like_encoder
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["SwAV", "SwAVConfig"]


@dataclass
class SwAVConfig(ImageViewsConfig):
    """SwAV hyper-parameters, scaled to small images.

    Attributes:
        temperature: τ of the swapped prediction (0.1).
        proj_hidden, proj_dim: 2-layer projector with BN (2048 → 128).
        num_prototypes: K (3000 on ImageNet; 512 for 10-class small-image data).
        epsilon, sinkhorn_iterations: Sinkhorn-Knopp regularisation and iterations (0.05, 3).
        queue_size: past projections per global crop added to Sinkhorn's batch (0: none;
            3840 = 15 batches of 256, the paper's small-batch setting).
        queue_start: fraction of training after which the queue is used (the paper starts it
            after 15 of 200 epochs).
        freeze_prototypes: fraction of training during which the prototypes get no gradient.
        n_local: local crops of multi-crop (2 global crops + ``n_local`` crops of 3/7 size).
    """

    temperature: float = 0.1
    proj_hidden: int = 2048
    proj_dim: int = 128
    num_prototypes: int = 512
    epsilon: float = 0.05
    sinkhorn_iterations: int = 3
    queue_size: int = 3840
    queue_start: float = 0.075
    freeze_prototypes: float = 0.01
    n_local: int = 4


class SwAV(Recipe):
    """Encoder + projector + prototypes; Sinkhorn codes of the global crops, swapped."""

    name = "swav"
    #: LARS, the paper's small-batch setting (lr 0.6, wd 1e-6)
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "lars",
        "lr": 0.6,
        "weight_decay": 1e-06,
    }
    progress: Tensor

    def __init__(self, encoder: nn.Module, config: SwAVConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or SwAVConfig()
        self.encoder = encoder
        self.projector = ProjectionHead(encoder.out_dim, c.proj_hidden, c.proj_dim, 2)
        self.prototypes = nn.Linear(c.proj_dim, c.num_prototypes, bias=False)
        self._normalize_prototypes()
        self.queues = nn.ModuleList(
            FeatureQueue(c.queue_size, c.proj_dim) for _ in range(2 if c.queue_size else 0)
        )
        self.views = build_views(c)
        self.register_buffer("progress", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def _normalize_prototypes(self) -> None:
        w = self.prototypes.weight
        w.copy_(F.normalize(w, dim=1))

    def prepare(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        crops = self.views(batch["images"])
        inputs = [torch.cat(crops[:2])]
        if len(crops) > 2:
            inputs.append(torch.cat(crops[2:]))
        return {**batch, "inputs": [like_encoder(x, self.encoder) for x in inputs]}

    def embed(self, tower: str, inputs: Tensor) -> Tensor:
        return F.normalize(self.projector(self.encoder(inputs)), dim=1)

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Tensor]) -> LossOutput:
        embeddings = by_tower["views"]
        n, c = prepared["images"].shape[0], self.config
        z = embeddings.float()
        w = self.prototypes.weight.float()
        if float(self.progress) < c.freeze_prototypes:
            w = w.detach()
        scores = list((z @ w.T).split(n))
        use_queue = bool(self.queues) and float(self.progress) >= c.queue_start
        codes = []
        with torch.no_grad():
            for i in range(2):
                s = scores[i].detach()
                if use_queue and self.queues[i].is_full:
                    s = torch.cat([self.queues[i].features.float() @ w.detach().T, s])
                q = sinkhorn_knopp(
                    s, epsilon=c.epsilon, iterations=c.sinkhorn_iterations, gather="instances"
                )
                codes.append(q[-n:])
        loss = swav(scores, codes, temperature=c.temperature)
        if self.training and self.queues:  # per-rank queues, as in the paper's code
            for i in range(2):
                self.queues[i].push(z[i * n : (i + 1) * n].detach())
        return LossOutput(loss=loss, embeddings=z[:n].detach())

    def on_step_end(self, step: int, total_steps: int) -> None:
        self._normalize_prototypes()
        self.progress.fill_(step / max(total_steps, 1))
