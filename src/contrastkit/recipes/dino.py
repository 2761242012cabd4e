"""DINO (Caron et al. 2021): self-distillation with a centred, sharpened momentum teacher.

The student (encoder + DINO head) sees every crop (2 global + local crops); the teacher, an EMA
copy of the student, sees the global crops. Each student crop is trained to match, by
cross-entropy, the teacher's softmax of the *other* global crops. Collapse is avoided by
centering the teacher's logits (a running mean) and sharpening them (a low teacher
temperature), which pull in opposite directions.

Example:
    >>> import torch
    >>> from contrastkit.encoders import SmallCNN
    >>> from contrastkit.recipes import DINO, DINOConfig
    >>> recipe = DINO(SmallCNN(in_channels=1, width=8, stages=2),
    ...               DINOConfig(image_size=16, channels=1, proj_hidden=32, bottleneck_dim=16,
    ...                          out_dim=64, n_local=2))
    >>> batch = {"images": torch.randint(0, 256, (8, 1, 16, 16), dtype=torch.uint8)}
    >>> float(recipe.step(batch).loss.detach()) > 0
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from contrastkit.heads import DINOHead
from contrastkit.losses.dino import DINOLoss
from contrastkit.memory import MomentumEncoder
from contrastkit.recipes._common import ImageViewsConfig, build_views, like_encoder, online
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["DINO", "DINOConfig"]


@dataclass
class DINOConfig(ImageViewsConfig):
    """DINO hyper-parameters, scaled to small images.

    Attributes:
        proj_hidden, bottleneck_dim, out_dim: the head's MLP width, bottleneck and number of
            prototypes K (2048, 256, 65,536 on ImageNet; K = 4096 here).
        student_temperature: τ_s (0.1).
        teacher_temperature, warmup_teacher_temperature, teacher_warmup: τ_t rises linearly
            from 0.04 to 0.07 over the first 30% of training (the paper's 30 of 100 epochs).
        center_momentum: EMA of the teacher center (0.9).
        base_momentum, final_momentum: teacher EMA, cosine 0.99 → 1 (0.996 on ImageNet).
        freeze_last_layer: fraction of training without gradient into the prototypes.
        n_local: local crops of multi-crop.
    """

    proj_hidden: int = 2048
    bottleneck_dim: int = 256
    out_dim: int = 4096
    student_temperature: float = 0.1
    teacher_temperature: float = 0.07
    warmup_teacher_temperature: float = 0.04
    teacher_warmup: float = 0.3
    center_momentum: float = 0.9
    base_momentum: float = 0.99
    final_momentum: float = 1.0
    freeze_last_layer: float = 0.01
    n_local: int = 4


class DINO(Recipe):
    """Student encoder + :class:`~contrastkit.heads.DINOHead`; EMA teacher; centred targets."""

    name = "dino"
    #: LARS for the ResNet form (the paper's ViTs use AdamW), solo-learn's CIFAR setting
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "lars",
        "lr": 0.3,
        "weight_decay": 1e-06,
    }
    progress: Tensor

    def __init__(self, encoder: nn.Module, config: DINOConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or DINOConfig()
        self.encoder = encoder
        self.head = DINOHead(encoder.out_dim, c.out_dim, c.proj_hidden, c.bottleneck_dim)
        self.teacher = MomentumEncoder(
            online(self.encoder, self.head), c.base_momentum, c.final_momentum
        )
        # the warm-up is counted in percent of training (DINOLoss counts whole "epochs")
        self.criterion = DINOLoss(
            c.out_dim,
            c.student_temperature,
            c.teacher_temperature,
            c.warmup_teacher_temperature,
            int(round(100 * c.teacher_warmup)),
            c.center_momentum,
            gather="instances",
        )
        self.views = build_views(c)
        self.register_buffer("progress", torch.zeros((), dtype=torch.float64))

    def prepare(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        crops = self.views(batch["images"])
        inputs = [like_encoder(torch.cat(crops[:2]), self.encoder)]
        if len(crops) > 2:
            inputs.append(like_encoder(torch.cat(crops[2:]), self.encoder))
        self.head.freeze_last_layer = float(self.progress) < self.config.freeze_last_layer
        return {**batch, "inputs": inputs, "teacher": self.teacher(inputs[0]).float()}

    def embed(self, tower: str, inputs: Tensor) -> Tensor:
        return self.head(self.encoder(inputs))

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Tensor]) -> LossOutput:
        embeddings = by_tower["views"]
        n = prepared["images"].shape[0]
        student = list(embeddings.float().split(n))
        teacher = list(prepared["teacher"].split(n))
        loss = self.criterion(student, teacher, epoch=100 * float(self.progress))
        metrics = {"momentum": float(self.teacher.momentum)}
        return LossOutput(loss=loss, embeddings=student[0].detach(), metrics=metrics)

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.teacher.update(online(self.encoder, self.head), step, total_steps)
        self.progress.fill_(step / max(total_steps, 1))
