"""LightGCN (He et al. 2020, "LightGCN: Simplifying and Powering Graph Convolution Network for
Recommendation"): user and item embeddings averaged over L propagations on the normalised
user–item graph (no weights, no non-linearity), trained with BPR and an L2 term.

Rows are training interactions (``InteractionPairs(load_movielens_100k())``: ``users``,
``items``); each step propagates the whole graph, samples one negative item per row and takes
the loss over the step's rows. Rank with :meth:`~GraphRecommender.user_embeddings` ·
:meth:`~GraphRecommender.item_embeddings` (inner product: ``RankingProtocol(score="dot")``).

Example:
    >>> import torch
    >>> from contrastkit.recipes.lightgcn import LightGCNConfig, LightGCNRecipe
    >>> pairs = torch.tensor([[0, 0], [0, 1], [1, 1], [2, 2], [2, 0]])   # (user, item)
    >>> recipe = LightGCNRecipe(3, 3, LightGCNConfig(dim=8), train_pairs=pairs)
    >>> out = recipe.step({"users": pairs[:, 0], "items": pairs[:, 1]})
    >>> out.loss.ndim, recipe.user_embeddings().shape
    (0, torch.Size([3, 8]))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contrastkit.recipes._recsys import GraphRecConfig, GraphRecommender
from contrastkit.train.recipe import LossOutput

__all__ = ["LightGCNConfig", "LightGCNRecipe"]


@dataclass
class LightGCNConfig(GraphRecConfig):
    """LightGCN hyper-parameters (defaults: the paper's and its PyTorch code's).

    Attributes:
        dim: embedding width (64).
        propagation_layers: propagation layers L (3); the output is the mean of layers 0..L.
        reg: L2 weight on the step's ego embeddings (1e-4).
        init: ``"normal"`` (std 0.1, the authors' PyTorch code) or ``"xavier"``.
    """

    init: str = "normal"


class LightGCNRecipe(GraphRecommender):
    """LightGCN encoder + uniform negatives + BPR (``name = "lightgcn"``)."""

    name = "lightgcn"
    config_class = LightGCNConfig

    def step(self, batch: dict[str, Any]) -> LossOutput:
        triples = self.triples(batch)
        users, items = self.propagate()
        loss, metrics = self.bpr_loss(users, items, triples)
        return LossOutput(loss=loss, embeddings=users[triples[0]].detach(), metrics=metrics)
