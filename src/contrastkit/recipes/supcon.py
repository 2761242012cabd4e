"""SupCon (Khosla et al. 2020): SimCLR's views and head, class labels as the positive ids.

Example:
    >>> import torch
    >>> from contrastkit.encoders import SmallCNN
    >>> from contrastkit.recipes import SupCon, SupConConfig
    >>> recipe = SupCon(SmallCNN(in_channels=1, width=8, stages=2), SupConConfig(image_size=16, channels=1))
    >>> batch = {"images": torch.randint(0, 256, (8, 1, 16, 16), dtype=torch.uint8),
    ...          "labels": torch.tensor([0, 1, 2, 3] * 2)}
    >>> float(recipe.step(batch).loss.detach()) > 0
    True
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from contrastkit.recipes.simclr import SimCLR, SimCLRConfig
from contrastkit.train.recipe import Recipe

__all__ = ["SupCon", "SupConConfig"]


@dataclass
class SupConConfig(SimCLRConfig):
    """SupCon hyper-parameters: as :class:`SimCLRConfig`, τ = 0.1 as in the paper."""

    temperature: float = 0.1
    views: str = "supcon"


class SupCon(SimCLR):
    """Two views per image; every view of every image of the same class is a positive."""

    name = "supcon"
    needs_labels = True
    id_kind = "labels"

    def __init__(self, encoder, config: SupConConfig | None = None) -> None:
        super().__init__(encoder, config or SupConConfig())

    def ids(self, batch: dict[str, Tensor], n: int) -> Tensor:
        return Recipe._require_labels(batch, "supcon")
