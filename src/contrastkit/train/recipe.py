"""The recipe contract the trainer consumes: towers, ``prepare``, ``embed`` and ``loss``.

A recipe is one ``nn.Module`` holding its encoder(s), head(s), view pipelines and loss. The
trainer hands it batches (a dict of named fields, e.g. ``{"images": uint8 (B, C, H, W),
"indices": (B,) int64 data-set indices (global instance ids), "labels": (B,) int64}``, or
``"texts"`` for text data) and calls :meth:`Recipe.on_step_end` after each optimiser step.

A recipe has one or more **towers** (:attr:`Recipe.towers`): SimCLR has one (both views go
through the same network), CLIP and two-tower recommenders have two. A step splits into three
parts, which is what gradient caching (:func:`~contrastkit.train.grad_cache_step`) and
torch.distributed need, whatever the number of towers:

- :meth:`Recipe.prepare` makes the network inputs once (views, corruption, masks, tokens, a
  momentum encoder's keys; no gradients): the prepared dict's ``"inputs"`` maps each tower to
  its rows (a one-tower recipe may give its rows directly);
- :meth:`Recipe.embed` maps rows of one tower to embeddings, each row independently of the
  others (rows are a tensor, a list of texts, or any kind registered in
  :mod:`contrastkit.data.fields`; a list of batch values is embedded group by group and
  concatenated in order: multi-crop's crops of different shapes);
- :meth:`Recipe.loss` turns the embeddings of every tower, ``{tower: (R_t, D)}``, into the
  loss (it may hold parameters of its own: a classifier, a learnable temperature).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from contrastkit.data.fields import groups_of

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
    """Base class. Subclasses set ``self.encoder`` (the network that is exported) and
    implement :meth:`prepare`, :meth:`embed` and :meth:`loss` (or :meth:`step` alone, without
    gradient caching)."""

    encoder: nn.Module
    name: str = "recipe"
    needs_labels: bool = False
    #: what the recipe trains on: ``"image"`` batches (``images``) or ``"text"`` (``texts``)
    modality: str = "image"
    #: the recipe's towers, in the order their embeddings are computed
    towers: ClassVar[tuple[str, ...]] = ("views",)
    #: the optimiser, base learning rate (at batch 256) and weight decay that ``contrastkit
    #: train`` uses for this recipe unless told otherwise (each recipe states its source)
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "sgd",
        "lr": 0.3,
        "weight_decay": 5e-4,
    }

    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The step's inputs: ``batch`` plus ``"inputs"``, ``{tower: rows}`` (a one-tower
        recipe may give the rows alone)."""
        raise NotImplementedError(
            f"the {self.name} recipe does not split its step into prepare/embed/loss, so it "
            f"cannot use gradient caching; implement those three methods."
        )

    def embed(self, tower: str, rows: Any) -> Tensor:
        """(R, ...) rows of ``tower`` → (R, D) embeddings, row by row."""
        raise NotImplementedError

    def loss(self, embeddings: dict[str, Tensor], prepared: dict[str, Any]) -> LossOutput:
        """The loss of every tower's embeddings ``{tower: (R_t, D)}`` of one prepared batch."""
        raise NotImplementedError

    def tower_inputs(self, prepared: dict[str, Any]) -> dict[str, Any]:
        """``prepared["inputs"]`` as ``{tower: rows}``."""
        inputs = prepared["inputs"]
        if isinstance(inputs, dict):
            return inputs
        if len(self.towers) != 1:
            raise TypeError(
                f"the {self.name} recipe has towers {self.towers}; its prepare() must give "
                f"'inputs' as a dict {{tower: rows}}."
            )
        return {self.towers[0]: inputs}

    def embed_rows(self, tower: str, rows: Any) -> Tensor:
        """:meth:`embed` of one tower's rows, group by group (see
        :func:`~contrastkit.data.fields.groups_of`), concatenated."""
        groups = groups_of(rows)
        if len(groups) == 1:
            return self.embed(tower, groups[0])
        return torch.cat([self.embed(tower, g) for g in groups])

    def step(self, batch: dict[str, Any]) -> LossOutput:
        """One training step: ``loss({tower: embed(tower, rows)}, prepared)``."""
        prepared = self.prepare(batch)
        inputs = self.tower_inputs(prepared)
        return self.loss({t: self.embed_rows(t, rows) for t, rows in inputs.items()}, prepared)

    def forward(self, batch: dict[str, Any]) -> LossOutput:
        return self.step(batch)

    def on_step_end(self, step: int, total_steps: int) -> None:
        """Hook after each optimiser step (momentum updates, schedules)."""

    @property
    def feature_dim(self) -> int:
        return int(self.encoder.out_dim)

    @staticmethod
    def _require_labels(batch: dict[str, Any], name: str) -> Tensor:
        labels = batch.get("labels")
        if labels is None:
            raise ValueError(
                f"the {name} recipe needs class labels, but the batch has none; use a labelled "
                f"data set or a self-supervised recipe such as simclr."
            )
        return labels
