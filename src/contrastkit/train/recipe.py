"""The recipe contract the trainer consumes: ``step(batch) -> LossOutput``.

A recipe is one ``nn.Module`` holding the encoder, its head(s), the view pipelines and the loss.
The trainer only calls :meth:`Recipe.step` on batches ``{"images": uint8 (B, C, H, W),
"indices": (B,) int64 data-set indices (global instance ids),
"labels": (B,) int64 or absent}`` and :meth:`Recipe.on_step_end` after each optimiser step.

A step splits into three parts, which is what gradient caching
(:func:`~contrastkit.train.grad_cache_step`) needs: :meth:`Recipe.prepare` makes the network
inputs once (views, mixing; no gradients), :meth:`Recipe.embed` maps rows of those inputs to
embeddings independently of each other, and :meth:`Recipe.loss` turns all embeddings of the
batch into the loss (it may hold parameters of its own: a classifier, a temperature).
``"inputs"`` may also be a list of tensors of different shapes (multi-crop: global crops, then
local crops); each is embedded on its own and the embeddings are concatenated in list order.
Work without gradient that the loss needs (a momentum encoder's keys or targets) belongs in
``prepare``, so that gradient caching runs it once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

__all__ = ["LossOutput", "Recipe"]


@dataclass
class LossOutput:
    """The result of one training step.

    Attributes:
        loss: scalar tensor to back-propagate.
        embeddings: (B, D) projections of one view (detached), for collapse monitoring.
        metrics: extra scalars to log (floats).
    """

    loss: Tensor
    embeddings: Tensor | None = None
    metrics: dict[str, float] = field(default_factory=dict)


class Recipe(nn.Module):
    """Base class. Subclasses set ``self.encoder`` and implement :meth:`step`."""

    encoder: nn.Module
    name: str = "recipe"
    needs_labels: bool = False
    #: what the recipe trains on: ``"image"`` batches (``images``) or ``"text"`` (``texts``)
    modality: str = "image"
    #: the optimiser, base learning rate (at batch 256) and weight decay that ``contrastkit
    #: train`` uses for this recipe unless told otherwise (each recipe states its source)
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "sgd",
        "lr": 0.3,
        "weight_decay": 5e-4,
    }

    def prepare(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The step's inputs: ``batch`` plus ``"inputs"``, a (R, ...) tensor of network rows
        (or a list of such tensors of different shapes)."""
        raise NotImplementedError(
            f"the {self.name} recipe does not split its step into prepare/embed/loss, so it "
            f"cannot use gradient caching; implement those three methods."
        )

    def embed(self, inputs: Tensor) -> Tensor:
        """(R, ...) rows of ``prepare(batch)["inputs"]`` → (R, D) embeddings, row by row."""
        raise NotImplementedError

    def loss(self, embeddings: Tensor, prepared: dict[str, Tensor]) -> LossOutput:
        """The loss of all (R, D) embeddings of one prepared batch."""
        raise NotImplementedError

    def embed_inputs(self, inputs: Tensor | list[Tensor]) -> Tensor:
        """:meth:`embed` of one tensor of rows, or of each tensor of a list, concatenated."""
        if isinstance(inputs, Tensor):
            return self.embed(inputs)
        return torch.cat([self.embed(x) for x in inputs])

    def step(self, batch: dict[str, Tensor]) -> LossOutput:
        """One training step: ``loss(embed(inputs), prepared)`` over the whole batch."""
        prepared = self.prepare(batch)
        return self.loss(self.embed_inputs(prepared["inputs"]), prepared)

    def forward(self, batch: dict[str, Tensor]) -> LossOutput:
        return self.step(batch)

    def on_step_end(self, step: int, total_steps: int) -> None:
        """Hook after each optimiser step (momentum updates, schedules)."""

    @property
    def feature_dim(self) -> int:
        return int(self.encoder.out_dim)

    @staticmethod
    def _require_labels(batch: dict[str, Tensor], name: str) -> Tensor:
        labels = batch.get("labels")
        if labels is None:
            raise ValueError(
                f"the {name} recipe needs class labels, but the batch has none; use a labelled "
                f"data set or a self-supervised recipe such as simclr."
            )
        return labels
