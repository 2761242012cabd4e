"""What the graph recommenders share (BPR-MF, LightGCN, SGL, SimGCL, XSimGCL).

:class:`GraphRecommender` holds a :class:`~contrastkit.encoders.lightgcn.LightGCN` encoder and
the training graph, samples negatives, and computes the BPR loss with the L2 term; each recipe
writes only its ``step``. A batch's rows are training interactions, ``batch["users"]`` and
``batch["items"]`` ((B,) int64, e.g. from ``InteractionPairs``); every step propagates over the
whole graph (message passing needs the neighbours) and takes the losses over the step's rows,
as LightGCN's and SELFRec's code do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from contrastkit.encoders.lightgcn import (
    LightGCN,
    _check_pairs,
    normalized_adjacency,
    unique_pairs,
)
from contrastkit.losses.bpr import bpr
from contrastkit.losses.info_nce import info_nce
from contrastkit.train.recipe import Recipe

__all__ = ["GraphRecConfig", "GraphRecommender", "sample_negatives", "view_info_nce"]

#: rounds of resampling for negatives that hit one of the user's training items
NEGATIVE_ROUNDS = 10


@dataclass
class GraphRecConfig:
    """Options every graph recommender has.

    Attributes:
        dim: embedding width (64 in every paper).
        propagation_layers: propagation layers L (3, LightGCN's and SGL's choice).
        reg: weight of the L2 term on the step's ego embeddings (1e-4, LightGCN's and SGL's
            code): ``reg · ½(‖u⁰‖² + ‖p⁰‖² + ‖n⁰‖²) / B``.
        init: ``"xavier"`` (SGL's and SimGCL's code) or ``"normal"`` (std 0.1, LightGCN's).
    """

    dim: int = 64
    propagation_layers: int = 3
    reg: float = 1e-4
    init: str = "xavier"


def sample_negatives(
    users: Tensor, positive_keys: Tensor, n_items: int, rounds: int = NEGATIVE_ROUNDS
) -> Tensor:
    """One item per user, uniform over the items, avoiding the user's training items.

    Draws with ``torch.randint`` (the global RNG: ``torch.manual_seed`` and the trainer's
    seed make it reproducible); a draw that is a training positive of its user (found by
    binary search in ``positive_keys``, the sorted ``user·n_items + item`` of the training
    pairs) is drawn again, all such rows at once, up to ``rounds`` times. A user who has seen
    nearly every item may keep a positive after the last round (on MovieLens-100K the chance
    is below 0.4¹⁰ for the heaviest user).
    """
    negs = torch.randint(n_items, users.shape, device=users.device)
    if positive_keys.numel() == 0:
        return negs
    last = positive_keys.numel() - 1
    for _ in range(rounds):
        keys = users * n_items + negs
        hit = positive_keys[torch.searchsorted(positive_keys, keys).clamp_max(last)] == keys
        n_hit = int(hit.sum())
        if n_hit == 0:
            break
        negs[hit] = torch.randint(n_items, (n_hit,), device=users.device)
    return negs


def view_info_nce(view1: Tensor, view2: Tensor, ids: Tensor, temperature: float) -> Tensor:
    """InfoNCE between two views of the rows ``unique(ids)``: row r of ``view1`` against every
    selected row of ``view2``, its own the positive (cosine, τ; one direction, as SGL's and
    SimGCL's code)."""
    rows = torch.unique(ids)
    n = torch.arange(rows.numel(), device=rows.device)
    return info_nce(view1[rows], view2[rows], query_ids=n, key_ids=n, temperature=temperature)


class GraphRecommender(Recipe):
    """Base of the graph recommenders: a LightGCN encoder over the training graph.

    Args:
        n_users, n_items: U and I.
        config: the recipe's config (a :class:`GraphRecConfig`; None: its defaults).
        train_pairs: (M, 2) int64 (user, item) training interactions (``Interactions.train``):
            the graph that is propagated over and the items negatives avoid.
        layers: overrides ``config.propagation_layers`` (BPR-MF: 0).
    """

    modality = "interactions"
    towers = ("users", "items")
    #: Adam at lr 1e-3 with batch 2048 (the papers'); no weight decay: the L2 term is ``reg``
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adam",
        "lr": 1e-3,
        "weight_decay": 0.0,
    }
    #: average layers 1..L only (SimGCL and XSimGCL leave the input embeddings out)
    skip_input: bool = False
    #: the recipe's config dataclass (its defaults when no config is given)
    config_class: ClassVar[type] = GraphRecConfig

    def __init__(
        self,
        n_users: int,
        n_items: int,
        config: GraphRecConfig | None = None,
        *,
        train_pairs: Tensor,
        layers: int | None = None,
    ) -> None:
        super().__init__()
        self.config = c = config if config is not None else self.config_class()
        self.encoder = LightGCN(
            n_users, n_items, c.dim, c.propagation_layers if layers is None else layers, c.init
        )
        pairs = unique_pairs(_check_pairs(train_pairs, n_users, n_items), n_items)
        if pairs.shape[0] == 0:
            raise ValueError(f"the {self.name} recipe needs training interactions; got none.")
        # the graph moves with the recipe (.to(device)) but is not part of a checkpoint
        self.register_buffer("train_pairs", pairs, persistent=False)
        keys = pairs[:, 0] * n_items + pairs[:, 1]  # sorted, as unique_pairs sorts
        self.register_buffer("positive_keys", keys, persistent=False)
        self._adj: Tensor | None = None

    @classmethod
    def from_interactions(cls, data: Any, config: Any = None, **kwargs: Any) -> GraphRecommender:
        """The recipe on an ``Interactions``' training split."""
        return cls(data.n_users, data.n_items, config, train_pairs=data.train, **kwargs)

    @property
    def n_users(self) -> int:
        return self.encoder.n_users

    @property
    def n_items(self) -> int:
        return self.encoder.n_items

    def adjacency(self) -> Tensor:
        """The normalised training graph, on the recipe's device (built once per device)."""
        device = self.train_pairs.device
        if self._adj is None or self._adj.device != device:
            self._adj = normalized_adjacency(self.train_pairs, self.n_users, self.n_items)
        return self._adj

    def propagate(self, adj: Tensor | None = None, **options: Any) -> tuple[Tensor, ...]:
        """The encoder's propagation over ``adj`` (default: the training graph)."""
        adj = self.adjacency() if adj is None else adj
        return self.encoder.propagate(adj, skip_input=self.skip_input, **options)

    @torch.no_grad()
    def embeddings(self) -> tuple[Tensor, Tensor]:
        """(U, D) users and (I, D) items to rank with, on the CPU: the training graph, no
        noise or dropout; the ranking score is their inner product."""
        users, items = self.propagate()
        return users.cpu(), items.cpu()

    def user_embeddings(self) -> Tensor:
        """(U, D) user embeddings (:meth:`embeddings`)."""
        return self.embeddings()[0]

    def item_embeddings(self) -> Tensor:
        """(I, D) item embeddings (:meth:`embeddings`)."""
        return self.embeddings()[1]

    def triples(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
        """The step's users, their items and one sampled negative item each."""
        device = self.train_pairs.device
        users = batch["users"].to(device).long()
        items = batch["items"].to(device).long()
        return users, items, sample_negatives(users, self.positive_keys, self.n_items)

    def bpr_loss(
        self, users_all: Tensor, items_all: Tensor, triples: tuple[Tensor, Tensor, Tensor]
    ) -> tuple[Tensor, dict[str, float]]:
        """BPR over the triples with the propagated embeddings, plus ``reg`` times the L2 of
        their ego embeddings; returns the sum and its two terms as metrics."""
        users, items, negs = triples
        rec = bpr(users_all[users], items_all[items], items_all[negs])
        u0 = self.encoder.user_embedding.weight[users]
        i0 = self.encoder.item_embedding.weight
        l2 = (u0.pow(2).sum() + i0[items].pow(2).sum() + i0[negs].pow(2).sum()) / (
            2 * users.numel()
        )
        return rec + self.config.reg * l2, {"bpr": float(rec.detach()), "l2": float(l2.detach())}
