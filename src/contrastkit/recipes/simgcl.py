"""SimGCL (Yu et al. 2022, "Are Graph Augmentations Necessary? Simple Graph Contrastive
Learning for Recommendation"): LightGCN + BPR, plus InfoNCE between two propagations that add
random uniform noise to every layer instead of dropping parts of the graph.

Each noisy view adds ``eps · sign(E) ⊙ normalize(Δ)``, Δ ~ U(0, 1), to every layer's output
(:meth:`~contrastkit.encoders.lightgcn.LightGCN.propagate`); BPR uses the clean propagation,
so a step costs three. As in the paper's encoder, the layer average leaves the input
embeddings out (layers 1..L). The contrastive term is λ·(InfoNCE over the step's unique users +
InfoNCE over its unique positive items), cosine at τ. Rows as in
:mod:`~contrastkit.recipes.lightgcn`.

Example:
    >>> import torch
    >>> from contrastkit.recipes.simgcl import SimGCL, SimGCLConfig
    >>> pairs = torch.tensor([[0, 0], [0, 1], [1, 1], [2, 2], [2, 0], [1, 2]])
    >>> recipe = SimGCL(3, 3, SimGCLConfig(eps=0.1), train_pairs=pairs)
    >>> recipe.step({"users": pairs[:, 0], "items": pairs[:, 1]}).loss.item() > 0
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contrastkit.recipes._recsys import GraphRecConfig, GraphRecommender, view_info_nce
from contrastkit.train.recipe import LossOutput

__all__ = ["SimGCL", "SimGCLConfig"]


@dataclass
class SimGCLConfig(GraphRecConfig):
    """SimGCL hyper-parameters (the paper's eps = 0.1 and τ = 0.2).

    Attributes:
        dim, propagation_layers, reg, init: as :class:`~contrastkit.recipes._recsys.GraphRecConfig`
            (64, 3, 1e-4, Xavier).
        eps: the noise's norm per row and layer (0.1).
        temperature: τ of the InfoNCE terms (0.2).
        weight: λ, the weight of the contrastive term (0.1 here; the paper searches
            {0.01, 0.05, 0.1, 0.2, 0.5, 1} per data set).
    """

    eps: float = 0.1
    temperature: float = 0.2
    weight: float = 0.1


class SimGCL(GraphRecommender):
    """LightGCN + BPR + InfoNCE between two noisy propagations (``name = "simgcl"``)."""

    name = "simgcl"
    config_class = SimGCLConfig
    skip_input = True

    def step(self, batch: dict[str, Any]) -> LossOutput:
        c = self.config
        triples = self.triples(batch)
        users, items = self.propagate()
        loss, metrics = self.bpr_loss(users, items, triples)
        u1, i1 = self.propagate(noise_eps=c.eps)
        u2, i2 = self.propagate(noise_eps=c.eps)
        cl = view_info_nce(u1, u2, triples[0], c.temperature)
        cl = cl + view_info_nce(i1, i2, triples[1], c.temperature)
        metrics["cl"] = float(cl.detach())
        return LossOutput(
            loss=loss + c.weight * cl, embeddings=users[triples[0]].detach(), metrics=metrics
        )
