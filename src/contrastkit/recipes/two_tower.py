"""Two-tower retrieval (Yi et al. 2019): a user tower and an item tower trained so that a user
embeds close to the items it interacted with, for recommendation by nearest neighbours.

Two towers, ``"users"`` and ``"items"``, each an id embedding table, plus a linear map of the
side features when the data has them (added to the id embedding: MovieLens' age bucket, gender
and occupation; genres and release year), then an optional MLP. The loss is the in-batch
sampled softmax with the logQ correction (:func:`~contrastkit.losses.sampled_softmax
.sampled_softmax`): each user's item is its positive, the batch's other items its negatives,
each logit lowered by the log of its item's training frequency so that popular items, sampled
more often as negatives, are not pushed down for being popular. The batch's other copies of
the same item, and (``mask_user_items``) the user's other items in the batch, are not
negatives. Gradient caching (two towers of id rows) and torch.distributed (the loss gathers
keys, ids and log q with ``gather="labels"``) apply unchanged.

Trained embeddings for ranking and serving come from :meth:`TwoTower.user_embeddings` and
:meth:`TwoTower.item_embeddings` (eval mode, every id); the encoder
(:class:`TwoTowerEncoder`, both towers and the feature tables) is what is exported.

Example:
    >>> import torch
    >>> from contrastkit.recipes.two_tower import TwoTower, TwoTowerConfig
    >>> recipe = TwoTower(5, 7, TwoTowerConfig(dim=8), item_counts=torch.arange(1, 8))
    >>> batch = {"users": torch.tensor([0, 1, 2, 4]), "items": torch.tensor([6, 6, 3, 0]),
    ...          "indices": torch.arange(4)}
    >>> out = recipe.step(batch)
    >>> out.loss.ndim, recipe.user_embeddings().shape, recipe.item_embeddings().shape
    (0, torch.Size([5, 8]), torch.Size([7, 8]))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from contrastkit.encoders.two_tower import TwoTowerEncoder
from contrastkit.losses.sampled_softmax import sampled_softmax
from contrastkit.train.recipe import LossOutput, Recipe

if TYPE_CHECKING:
    from contrastkit.data.interactions import Interactions

__all__ = ["TwoTower", "TwoTowerConfig", "TwoTowerEncoder", "item_log_q"]


@dataclass
class TwoTowerConfig:
    """Two-tower hyper-parameters.

    Attributes:
        dim: embedding dimension of both towers.
        hidden: width of each tower's MLP after the embedding (dim → hidden → dim, ReLU);
            0: no MLP (the embedding, plus the features' linear map, is the output).
        temperature: τ of the sampled softmax (0.05 as in Yi et al. for cosine similarity;
            set ≈ 1 with ``normalize=False``).
        learn_temperature: learn τ (as log τ) instead of keeping it.
        logq_correction: subtract log q (the item's training frequency / M) from its logits.
        mask_user_items: a user's other items in the batch are not its negatives.
        use_user_features, use_item_features: add a linear map of the side features to the id
            embedding when the data has them.
        normalize: L2-normalised embeddings and cosine similarity; False: raw embeddings and
            dot products.
    """

    dim: int = 64
    hidden: int = 0
    temperature: float = 0.05
    learn_temperature: bool = False
    logq_correction: bool = True
    mask_user_items: bool = True
    use_user_features: bool = True
    use_item_features: bool = True
    normalize: bool = True


def item_log_q(counts: Tensor) -> Tensor:
    """(I,) log q of each item: log(max(count, 1) / Σ counts), the probability that a
    training pair drawn at random is the item's (an item never seen counts once)."""
    counts = torch.as_tensor(counts, dtype=torch.float64).clamp_min(1.0)
    return (counts / counts.sum()).log().float()


class TwoTower(Recipe):
    """A user tower and an item tower trained with the logQ-corrected sampled softmax.

    Args:
        n_users, n_items: numbers of users and items (ids 0..n-1).
        config: :class:`TwoTowerConfig`.
        item_counts: (I,) training interactions per item
            (:meth:`~contrastkit.data.interactions.Interactions.item_popularity`) for the logQ
            correction; None: uniform (no correction).
        user_features, item_features: (U, F_u) / (I, F_i) side-feature tables, or None.

    Batches hold ``users`` and ``items`` ((B,) int64: row ``i`` is one interaction) and
    ``indices`` (:class:`~contrastkit.data.interactions.InteractionPairs`).
    """

    name = "two_tower"
    modality = "interactions"
    towers: ClassVar[tuple[str, ...]] = ("users", "items")
    #: Adam, lr 1e-3 at batch 256 (the common setting for embedding-table two-tower models,
    #: e.g. TensorFlow Recommenders' retrieval tutorials use Adagrad 0.1 / Adam 1e-3), no decay
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adam",
        "lr": 1e-3,
        "weight_decay": 0.0,
    }

    def __init__(
        self,
        n_users: int,
        n_items: int,
        config: TwoTowerConfig | None = None,
        *,
        item_counts: Tensor | None = None,
        user_features: Tensor | None = None,
        item_features: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.config = c = config or TwoTowerConfig()
        if not (c.temperature > 0 and math.isfinite(c.temperature)):
            raise ValueError(f"temperature must be a finite number > 0, got {c.temperature}.")
        self.encoder = TwoTowerEncoder(
            n_users,
            n_items,
            dim=c.dim,
            hidden=c.hidden,
            normalize=c.normalize,
            user_features=user_features if c.use_user_features else None,
            item_features=item_features if c.use_item_features else None,
        )
        if item_counts is None:
            item_counts = torch.ones(n_items)
        item_counts = torch.as_tensor(item_counts)
        if item_counts.shape != (n_items,):
            raise ValueError(
                f"item_counts must be (n_items,) = ({n_items},) training counts, got shape "
                f"{tuple(item_counts.shape)}."
            )
        # derived from the data, not state: rebuilt with the recipe, never saved
        self.register_buffer("item_log_q", item_log_q(item_counts), persistent=False)
        log_t = torch.tensor(math.log(c.temperature))
        self.log_temperature = nn.Parameter(log_t, requires_grad=c.learn_temperature)

    @classmethod
    def from_interactions(cls, data: Interactions, config: TwoTowerConfig | None = None):
        """The recipe for ``data``: its sizes, training item counts and side features."""
        return cls(
            data.n_users,
            data.n_items,
            config,
            item_counts=data.item_popularity(),
            user_features=data.user_features,
            item_features=data.item_features,
        )

    @property
    def temperature(self) -> Tensor:
        return self.log_temperature.exp()

    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        users, items = batch["users"], batch["items"]
        log_q = None
        if self.config.logq_correction:
            log_q = self.item_log_q[items.to(self.item_log_q.device).long()]
        return {**batch, "inputs": {"users": users, "items": items}, "item_log_q": log_q}

    def embed(self, tower: str, rows: Tensor) -> Tensor:
        if tower == "users":
            return self.encoder.users(rows)
        return self.encoder.items(rows)

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Any]) -> LossOutput:
        users, items = by_tower["users"], by_tower["items"]
        c = self.config
        loss = sampled_softmax(
            users,
            items,
            query_ids=prepared["users"] if c.mask_user_items else None,
            key_ids=prepared["items"],
            key_log_q=prepared.get("item_log_q"),
            temperature=self.temperature if c.learn_temperature else c.temperature,
            similarity="cosine" if c.normalize else "dot",
            gather="labels",
        )
        metrics = {"temperature": float(self.temperature.detach())}
        return LossOutput(loss=loss, embeddings=users.detach(), metrics=metrics)

    @torch.no_grad()
    def _all(self, embed, n: int, batch: int) -> Tensor:
        was = self.training
        self.eval()
        try:
            device = self.encoder.user_tower.embedding.weight.device
            ids = torch.arange(n, device=device)
            return torch.cat([embed(ids[s : s + batch]) for s in range(0, n, batch)]).cpu()
        finally:
            self.train(was)

    def user_embeddings(self, batch_size: int = 4096) -> Tensor:
        """(U, dim) embeddings of every user (eval mode, no gradient, on the CPU)."""
        return self._all(self.encoder.users, self.encoder.config["n_users"], batch_size)

    def item_embeddings(self, batch_size: int = 4096) -> Tensor:
        """(I, dim) embeddings of every item (eval mode, no gradient, on the CPU)."""
        return self._all(self.encoder.items, self.encoder.config["n_items"], batch_size)
