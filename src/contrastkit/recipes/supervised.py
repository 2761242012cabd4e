"""Supervised fine-tuning: encoder + linear classifier, cross-entropy, optional MixUp/CutMix.

Used to fine-tune a contrastively pre-trained encoder on labels (the "fine-tuning" evaluation)
or to train a supervised baseline with the same trainer.

Example:
    >>> import torch
    >>> from contrastkit.encoders import resnet18
    >>> from contrastkit.recipes import Supervised, SupervisedConfig
    >>> r = Supervised(resnet18(in_channels=1, small_input=True, width=0.125),
    ...                SupervisedConfig(image_size=16, channels=1, num_classes=3))
    >>> batch = {"images": torch.randint(0, 256, (6, 1, 16, 16), dtype=torch.uint8),
    ...          "labels": torch.tensor([0, 1, 2, 0, 1, 2])}
    >>> r.step(batch).loss.ndim
    0
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.augment import ViewConfig, Views, cutmix, make_view, mixup
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["Supervised", "SupervisedConfig"]


@dataclass
class SupervisedConfig:
    """Supervised cross-entropy baseline hyper-parameters.

    Attributes:
        image_size, channels: input geometry (views are made at ``image_size``).
        num_classes: outputs of the linear classifier (from the data unless set).
        crop_scale: area range of the light random resized crops.
        flip: horizontal-flip probability of the views.
        mix: ``"none"``, ``"mixup"`` or ``"cutmix"`` of the batch's images and labels.
        mix_alpha: the Beta(α, α) concentration of the mixing weight.
        label_smoothing: cross-entropy label smoothing (0 = none).
    """

    image_size: int = 32
    channels: int = 3
    num_classes: int = 10
    crop_scale: tuple[float, float] = (0.6, 1.0)
    flip: float = 0.5
    mix: str = "none"
    mix_alpha: float = 0.2
    label_smoothing: float = 0.0


class Supervised(Recipe):
    """Cross-entropy training of ``encoder`` + a linear classifier."""

    name = "supervised"
    needs_labels = True

    def __init__(self, encoder: nn.Module, config: SupervisedConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or SupervisedConfig()
        if c.mix not in ("none", "mixup", "cutmix"):
            raise ValueError(f"mix must be 'none', 'mixup' or 'cutmix', got {c.mix!r}.")
        self.encoder = encoder
        self.classifier = nn.Linear(encoder.out_dim, c.num_classes)
        view = ViewConfig(
            size=c.image_size, scale=c.crop_scale, flip=c.flip, jitter=0.0, grayscale=0.0
        )
        self.views = Views([make_view(view, c.channels)])

    def logits(self, x: Tensor) -> Tensor:
        return self.classifier(self.encoder(x))

    def prepare(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        labels = self._require_labels(batch, "supervised")
        (x,) = self.views(batch["images"])
        c = self.config
        target: Tensor = labels
        if c.mix != "none":
            fn = mixup if c.mix == "mixup" else cutmix
            x, target = fn(x, labels, num_classes=c.num_classes, alpha=c.mix_alpha)
        if next(self.encoder.parameters()).is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        return {**batch, "inputs": x, "target": target}

    def embed(self, tower: str, inputs: Tensor) -> Tensor:
        return self.encoder(inputs)

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Tensor]) -> LossOutput:
        embeddings = by_tower["views"]
        c = self.config
        logits = self.classifier(embeddings)
        loss = F.cross_entropy(
            logits.float(), prepared["target"], label_smoothing=c.label_smoothing
        )
        labels = prepared["labels"]
        acc = float((logits.argmax(1) == labels).float().mean()) if c.mix == "none" else 0.0
        return LossOutput(loss=loss, embeddings=embeddings.detach(), metrics={"train_acc": acc})
