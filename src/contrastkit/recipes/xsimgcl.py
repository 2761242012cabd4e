"""XSimGCL (Yu et al. 2023, "XSimGCL: Towards Extremely Simple Graph Contrastive Learning for
Recommendation"): SimGCL with one noisy propagation per step. BPR is taken on the noisy final
embeddings, and the contrastive views are the final embedding and the embedding of layer l*
(cross-layer contrast, l* = 1) of that same propagation, so a step costs about one
propagation (SimGCL: three).

The layer average leaves the input embeddings out (layers 1..L), as the paper's encoder; the
embeddings to rank with are the clean propagation's. The contrastive term is λ·(InfoNCE over
the step's unique users + InfoNCE over its unique positive items), cosine at τ. Rows as in
:mod:`~contrastkit.recipes.lightgcn`.

Example:
    >>> import torch
    >>> from contrastkit.recipes.xsimgcl import XSimGCL
    >>> pairs = torch.tensor([[0, 0], [0, 1], [1, 1], [2, 2], [2, 0], [1, 2]])
    >>> recipe = XSimGCL(3, 3, train_pairs=pairs)
    >>> recipe.step({"users": pairs[:, 0], "items": pairs[:, 1]}).loss.item() > 0
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contrastkit.recipes._recsys import GraphRecConfig, GraphRecommender, view_info_nce
from contrastkit.train.recipe import LossOutput

__all__ = ["XSimGCL", "XSimGCLConfig"]


@dataclass
class XSimGCLConfig(GraphRecConfig):
    """XSimGCL hyper-parameters (the paper's eps = 0.2, τ = 0.2, l* = 1).

    Attributes:
        dim, propagation_layers, reg, init: as :class:`~contrastkit.recipes._recsys.GraphRecConfig`
            (64, 3, 1e-4, Xavier).
        eps: the noise's norm per row and layer (0.2).
        temperature: τ of the InfoNCE terms (0.2).
        weight: λ, the weight of the contrastive term (0.1).
        contrast_layer: l*, the layer whose embedding is contrasted with the final one (1).
    """

    eps: float = 0.2
    temperature: float = 0.2
    weight: float = 0.1
    contrast_layer: int = 1


class XSimGCL(GraphRecommender):
    """LightGCN + BPR + final-vs-layer-l* InfoNCE of one noisy propagation
    (``name = "xsimgcl"``)."""

    name = "xsimgcl"
    config_class = XSimGCLConfig
    skip_input = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not 1 <= self.config.contrast_layer <= self.encoder.layers:
            raise ValueError(
                f"contrast_layer must be a layer 1..{self.encoder.layers}, got "
                f"{self.config.contrast_layer}."
            )

    def step(self, batch: dict[str, Any]) -> LossOutput:
        c = self.config
        triples = self.triples(batch)
        users, items, layers = self.propagate(noise_eps=c.eps, return_layers=True)
        loss, metrics = self.bpr_loss(users, items, triples)
        u_l, i_l = layers[c.contrast_layer].split([self.n_users, self.n_items])
        cl = view_info_nce(users, u_l, triples[0], c.temperature)
        cl = cl + view_info_nce(items, i_l, triples[1], c.temperature)
        metrics["cl"] = float(cl.detach())
        return LossOutput(
            loss=loss + c.weight * cl, embeddings=users[triples[0]].detach(), metrics=metrics
        )
