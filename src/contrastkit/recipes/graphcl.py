"""GraphCL (You et al. 2020, "Graph Contrastive Learning with Augmentations"): two augmented
views of each graph (node dropping, edge perturbation, attribute masking, random-walk
subgraphs), a GNN encoder (GIN with concatenated sum readouts), a projection head and NT-Xent.

The views are :func:`contrastkit.augment.graph.graph_views` (PyG batches, vectorised); the
encoder is :class:`contrastkit.encoders.graph.GIN`. Graphs need the ``[graph]`` extra
(``pip install "contrastkit[graph]"``).

Example:
    >>> import torch
    >>> from torch_geometric.data import Batch, Data
    >>> from contrastkit.encoders.graph import GIN
    >>> from contrastkit.recipes import GraphCL, GraphCLConfig
    >>> ring = lambda n: Data(x=torch.ones(n, 3), edge_index=torch.tensor(
    ...     [list(range(n)) + [(i + 1) % n for i in range(n)],
    ...      [(i + 1) % n for i in range(n)] + list(range(n))]))
    >>> batch = {"graphs": Batch.from_data_list([ring(n) for n in (4, 5, 6, 7)]),
    ...          "indices": torch.arange(4)}
    >>> recipe = GraphCL(GIN(in_dim=3, hidden=8, layers=2), GraphCLConfig())
    >>> recipe.step(batch).loss.ndim
    0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from contrastkit.heads import ProjectionHead
from contrastkit.losses import info_nce
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["GraphCL", "GraphCLConfig"]


@dataclass
class GraphCLConfig:
    """GraphCL hyper-parameters (defaults: the paper's unsupervised TU setting).

    Attributes:
        views: the augmentation preset of both views
            (:data:`contrastkit.augment.graph.GRAPH_VIEW_PRESETS`): ``"graphcl"`` draws one of
            node dropping, subgraph, edge perturbation and attribute masking per graph and
            view (the paper's random pool); ``"nodedrop"``, ``"subgraph"``, ``"edge"``,
            ``"mask"``: one augmentation; ``"none"``: the graphs as they are.
        aug_ratio: the strength of every augmentation (0.2 in the paper: drop 20% of the
            nodes, perturb 20% of the edges, mask 20% of the nodes, keep 80% in a subgraph).
        temperature: NT-Xent τ (0.2 in the paper).
        negatives: ``"cross_view"`` (the paper's code: view 1 of a graph against view 2 of
            the others, both directions) or ``"all"`` (SimCLR's NT-Xent: the same view's
            other graphs are negatives too).
        proj_layers: layers of the projection head (2: Linear–ReLU–Linear at the encoder's
            width, as in the paper).
        proj_dim: the projection's width (0: the encoder's).
    """

    views: str = "graphcl"
    aug_ratio: float = 0.2
    temperature: float = 0.2
    negatives: str = "cross_view"
    proj_layers: int = 2
    proj_dim: int = 0


class GraphCL(Recipe):
    """GNN encoder + projection head + two graph views + NT-Xent (one tower, ``"views"``)."""

    name = "graphcl"
    modality = "graph"
    #: Adam with lr 0.01 at the paper's batch 128 (0.02 at 256 under linear scaling), no decay
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adam",
        "lr": 0.02,
        "weight_decay": 0.0,
    }

    def __init__(self, encoder: nn.Module, config: GraphCLConfig | None = None) -> None:
        super().__init__()
        from contrastkit.augment.graph import graph_views

        self.config = c = config or GraphCLConfig()
        if c.negatives not in ("cross_view", "all"):
            raise ValueError(
                f"GraphCL negatives must be 'cross_view' or 'all', got {c.negatives!r}."
            )
        self.encoder = encoder
        width = c.proj_dim or encoder.out_dim
        self.head = ProjectionHead(encoder.out_dim, width, width, c.proj_layers, bn=False)
        self.views = graph_views(c.views, p=c.aug_ratio)

    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Two views of ``batch["graphs"]`` (a PyG Batch of B graphs): ``inputs`` is the list
        [view 1, view 2], embedded one after the other (2B rows, view 1 first)."""
        with torch.no_grad():
            v1, v2 = self.views(batch["graphs"])
        return {**batch, "inputs": [v1, v2]}

    def embed(self, tower: str, rows: Any) -> Tensor:
        """(B graphs) → (B, D) projections."""
        return self.head(self.encoder(rows))

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Any]) -> LossOutput:
        z = by_tower["views"]
        n = z.shape[0] // 2
        ids = prepared.get("indices")
        kind = "labels"  # data-set indices: global ids, gathered as they are
        if ids is None:
            ids, kind = torch.arange(n, device=z.device), "instances"
        t = self.config.temperature
        if self.config.negatives == "all":
            loss = info_nce(z, query_ids=ids.repeat(2), temperature=t, gather=kind)
        else:
            loss = info_nce(z[:n], z[n:], query_ids=ids, temperature=t, symmetric=True, gather=kind)
        return LossOutput(loss=loss, embeddings=z[:n].detach())
