"""InfoGraph (Sun et al. 2020): maximise the mutual information between each graph's
embedding (the global summary) and the embeddings of its nodes (local summaries), with the
Jensen–Shannon estimator (:func:`contrastkit.losses.local_global_jsd`). No augmentation: the
other graphs of the batch give the negatives.

The encoder is :class:`contrastkit.encoders.graph.GIN` (concatenated layer readouts; nodes
are embedded with all layers' node states concatenated, the same width). Two small heads
(three-layer MLPs with a linear shortcut, as in the paper) map nodes and graphs into the space
where they are scored. Needs the ``[graph]`` extra.

InfoGraph scores every node of the batch against every graph of the batch, so its loss is not
a sum over graphs: it trains with the plain step (no gradient caching, no gathering across
processes; use :class:`~contrastkit.recipes.GraphCL` for those).

Example:
    >>> import torch
    >>> from torch_geometric.data import Batch, Data
    >>> from contrastkit.encoders.graph import GIN
    >>> from contrastkit.recipes import InfoGraph
    >>> ring = lambda n: Data(x=torch.ones(n, 3), edge_index=torch.tensor(
    ...     [list(range(n)) + [(i + 1) % n for i in range(n)],
    ...      [(i + 1) % n for i in range(n)] + list(range(n))]))
    >>> batch = {"graphs": Batch.from_data_list([ring(n) for n in (4, 5, 6)])}
    >>> InfoGraph(GIN(in_dim=3, hidden=8, layers=2)).step(batch).loss.ndim
    0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from contrastkit.losses import local_global_jsd
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["InfoGraph", "InfoGraphConfig"]


@dataclass
class InfoGraphConfig:
    """InfoGraph hyper-parameters (the paper's unsupervised setting).

    Attributes:
        head_layers: layers of each scoring head (3 in the paper, each with a linear
            shortcut around the block).
    """

    head_layers: int = 3


class _Head(nn.Module):
    """``block(x) + shortcut(x)``: ``layers`` Linear–ReLU layers at width ``dim`` and a
    linear shortcut (InfoGraph's FF discriminator head)."""

    def __init__(self, dim: int, layers: int) -> None:
        super().__init__()
        block: list[nn.Module] = []
        for _ in range(layers):
            block += [nn.Linear(dim, dim), nn.ReLU()]
        self.block = nn.Sequential(*block)
        self.shortcut = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x) + self.shortcut(x)


class InfoGraph(Recipe):
    """GIN encoder + local and global heads + the local–global JSD loss."""

    name = "infograph"
    modality = "graph"
    towers = ("graphs",)
    #: Adam with lr 0.001 at the paper's batch 128 (0.002 at 256 under linear scaling)
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adam",
        "lr": 0.002,
        "weight_decay": 0.0,
    }

    def __init__(self, encoder: nn.Module, config: InfoGraphConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or InfoGraphConfig()
        if getattr(encoder, "node_dim", None) != encoder.out_dim:
            raise ValueError(
                f"InfoGraph scores nodes against graphs in one space, so the encoder's node "
                f"and graph embeddings need one width (node_dim {getattr(encoder, 'node_dim', None)}"
                f", out_dim {encoder.out_dim}); use GIN with concat=True (its default)."
            )
        self.encoder = encoder
        self.local_head = _Head(encoder.out_dim, c.head_layers)
        self.global_head = _Head(encoder.out_dim, c.head_layers)

    def step(self, batch: dict[str, Any]) -> LossOutput:
        graphs = batch["graphs"]
        pooled, nodes = self.encoder.forward_with_nodes(graphs)
        g = self.global_head(pooled)
        loss = local_global_jsd(self.local_head(nodes), g, local_ids=graphs.batch)
        return LossOutput(loss=loss, embeddings=pooled.detach())
