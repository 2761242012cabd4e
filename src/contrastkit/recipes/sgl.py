"""SGL (Wu et al. 2021, "Self-supervised Graph Learning for Recommendation"): LightGCN + BPR,
plus InfoNCE between two dropout views of the graph, for the step's users and for its items.

Each view is LightGCN's propagation over the training graph with a random ``drop_ratio`` of
its edges dropped (SGL-ED) or of its nodes (SGL-ND), renormalised. The paper draws the two
views once per epoch; here they are drawn again every ``views_every`` steps (default 1: every
step, which costs two small sparse builds and gives more views; set it to the steps of an
epoch for the paper's schedule). The contrastive term is λ·(InfoNCE over the step's unique
users + InfoNCE over its unique positive items), cosine at temperature τ, one view's row
against every other selected row of the other view. Rows as in
:mod:`~contrastkit.recipes.lightgcn`.

Example:
    >>> import torch
    >>> from contrastkit.recipes.sgl import SGL
    >>> pairs = torch.tensor([[0, 0], [0, 1], [1, 1], [2, 2], [2, 0], [1, 2]])
    >>> out = SGL(3, 3, train_pairs=pairs).step({"users": pairs[:, 0], "items": pairs[:, 1]})
    >>> sorted(out.metrics)
    ['bpr', 'cl', 'l2']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contrastkit.encoders.lightgcn import edge_dropout_adjacency, node_dropout_adjacency
from contrastkit.recipes._recsys import GraphRecConfig, GraphRecommender, view_info_nce
from contrastkit.train.recipe import LossOutput

__all__ = ["SGL", "SGLConfig"]

_VIEWS = {"edge": edge_dropout_adjacency, "node": node_dropout_adjacency}


@dataclass
class SGLConfig(GraphRecConfig):
    """SGL hyper-parameters (defaults: the paper's, ρ = 0.1, τ = 0.2, λ = 0.1, 3 layers).

    Attributes:
        dim, propagation_layers, reg, init: as :class:`~contrastkit.recipes._recsys.GraphRecConfig`
            (64, 3, 1e-4, Xavier).
        drop: ``"edge"`` (SGL-ED, default) or ``"node"`` (SGL-ND) dropout.
        drop_ratio: ρ, the fraction of edges (or nodes) each view drops (0.1).
        temperature: τ of the InfoNCE terms (0.2).
        weight: λ, the weight of the contrastive term (0.1).
        views_every: steps between new views (1: every step; the paper: once per epoch).
    """

    drop: str = "edge"
    drop_ratio: float = 0.1
    temperature: float = 0.2
    weight: float = 0.1
    views_every: int = 1


class SGL(GraphRecommender):
    """LightGCN + BPR + InfoNCE between two dropout views (``name = "sgl"``)."""

    name = "sgl"
    config_class = SGLConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.config.drop not in _VIEWS:
            raise ValueError(f"drop must be one of {sorted(_VIEWS)}, got {self.config.drop!r}.")
        self._views: tuple[Any, Any] | None = None
        self._steps = 0

    def views(self) -> tuple[Any, Any]:
        """The two dropped graphs of this step (new ones every ``views_every`` steps)."""
        c = self.config
        if self._views is None or self._steps % max(c.views_every, 1) == 0:
            make = _VIEWS[c.drop]
            args = (self.train_pairs, self.n_users, self.n_items, c.drop_ratio)
            self._views = (make(*args), make(*args))
        self._steps += 1
        return self._views

    def step(self, batch: dict[str, Any]) -> LossOutput:
        c = self.config
        triples = self.triples(batch)
        users, items = self.propagate()
        loss, metrics = self.bpr_loss(users, items, triples)
        (u1, i1), (u2, i2) = (self.propagate(adj) for adj in self.views())
        cl = view_info_nce(u1, u2, triples[0], c.temperature)
        cl = cl + view_info_nce(i1, i2, triples[1], c.temperature)
        metrics["cl"] = float(cl.detach())
        return LossOutput(
            loss=loss + c.weight * cl, embeddings=users[triples[0]].detach(), metrics=metrics
        )
