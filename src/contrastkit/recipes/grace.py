"""GRACE (Zhu et al. 2020, "Deep Graph Contrastive Representation Learning"): node-level
contrast on one graph. Two views of the whole graph (edges dropped, feature columns masked,
each view at its own rate), a GCN embeds every node of each view, a projection head, and each
node's two views are positives against every other node of both views: NT-Xent over 2N rows,
which is GRACE's loss (inter- and intra-view negatives).

The trainer's rows are nodes: each step embeds the whole graph (message passing needs the
neighbours) and takes the loss over the step's nodes, so a batch of all nodes is the paper's
full-graph step and a smaller batch is GRACE's sub-sampled loss for large graphs. Needs the
``[graph]`` extra.

Example:
    >>> import torch
    >>> from torch_geometric.data import Data
    >>> from contrastkit.encoders.graph import GCN
    >>> from contrastkit.recipes import GRACE
    >>> n = 6
    >>> ring = Data(x=torch.eye(n), edge_index=torch.tensor(
    ...     [list(range(n)) + [(i + 1) % n for i in range(n)],
    ...      [(i + 1) % n for i in range(n)] + list(range(n))]))
    >>> recipe = GRACE(GCN(in_dim=n, hidden=8), graph=ring)
    >>> recipe.step({"nodes": torch.arange(n), "indices": torch.arange(n)}).loss.ndim
    0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from contrastkit.losses import info_nce
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["GRACE", "GRACEConfig"]


@dataclass
class GRACEConfig:
    """GRACE hyper-parameters (defaults: the paper's Cora settings).

    Attributes:
        drop_edge: the fraction of edges dropped in view 1 and in view 2 (0.2, 0.4).
        mask_feature: the fraction of feature columns masked in view 1 and view 2 (0.3, 0.4).
        temperature: τ of the loss (0.4).
        proj_dim: the projection head's width (0: the encoder's), two layers with ELU.
    """

    drop_edge: tuple[float, float] = (0.2, 0.4)
    mask_feature: tuple[float, float] = (0.3, 0.4)
    temperature: float = 0.4
    proj_dim: int = 0


class GRACE(Recipe):
    """GCN node encoder + projection head + two graph views + NT-Xent over the step's nodes."""

    name = "grace"
    modality = "node"
    towers = ("nodes",)
    #: Adam, lr 5e-4 and weight decay 1e-5 (Cora); no batch scaling: a step sees the graph
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adam",
        "lr": 5e-4,
        "weight_decay": 1e-5,
    }

    def __init__(
        self, encoder: nn.Module, config: GRACEConfig | None = None, *, graph: Any
    ) -> None:
        super().__init__()
        from contrastkit.augment.graph import grace_views

        self.config = c = config or GRACEConfig()
        self.encoder = encoder
        width = c.proj_dim or encoder.out_dim
        self.head = nn.Sequential(
            nn.Linear(encoder.out_dim, width), nn.ELU(), nn.Linear(width, encoder.out_dim)
        )
        self.views = grace_views(drop_edge=tuple(c.drop_edge), mask_feature=tuple(c.mask_feature))
        # the graph moves with the recipe (.to(device)) but is not part of a checkpoint
        self.register_buffer("graph_x", graph.x.float(), persistent=False)
        self.register_buffer("graph_edge_index", graph.edge_index, persistent=False)

    def graph(self) -> Any:
        """The training graph as a PyG ``Data`` on the recipe's device."""
        from torch_geometric.data import Data

        return Data(x=self.graph_x, edge_index=self.graph_edge_index)

    def step(self, batch: dict[str, Any]) -> LossOutput:
        nodes = batch["nodes"].to(self.graph_x.device)
        with torch.no_grad():
            v1, v2 = self.views(self.graph())
        z1 = self.head(self.encoder.node_embeddings(v1))[nodes]
        z2 = self.head(self.encoder.node_embeddings(v2))[nodes]
        ids = torch.arange(nodes.numel(), device=nodes.device).repeat(2)
        loss = info_nce(torch.cat([z1, z2]), query_ids=ids, temperature=self.config.temperature)
        return LossOutput(loss=loss, embeddings=z1.detach())
