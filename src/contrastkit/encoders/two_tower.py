"""The two towers of a two-tower recommender (:class:`TwoTowerEncoder`): a user tower and an
item tower, each an id embedding table plus a linear map of fixed side features (buffers), then
an optional MLP. Trained by :class:`contrastkit.recipes.TwoTower`; registered as
``"two_tower"`` so an exported model loads without recipe code.

Example:
    >>> import torch
    >>> enc = TwoTowerEncoder(4, 6, dim=8, item_features=torch.eye(6))
    >>> enc.users(torch.tensor([0, 3])).shape, enc(torch.arange(6)).shape
    (torch.Size([2, 8]), torch.Size([6, 8]))
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["TwoTowerEncoder"]


class _Tower(nn.Module):
    """Id embedding (+ linear map of a fixed feature table) → optional MLP."""

    def __init__(self, n: int, dim: int, hidden: int, feature_dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n, dim)
        nn.init.normal_(self.embedding.weight, std=1 / math.sqrt(dim))  # rows of norm ≈ 1
        self.feature_dim = int(feature_dim)
        if self.feature_dim:
            self.register_buffer("features", torch.zeros(n, self.feature_dim))
            self.feature_proj = nn.Linear(self.feature_dim, dim, bias=False)
        self.mlp = (
            nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))
            if hidden
            else nn.Identity()
        )

    def forward(self, ids: Tensor) -> Tensor:
        ids = ids.to(self.embedding.weight.device).long()
        z = self.embedding(ids)
        if self.feature_dim:
            z = z + self.feature_proj(self.features[ids].to(z.dtype))
        return self.mlp(z)


class TwoTowerEncoder(nn.Module):
    """Both towers of a two-tower model: ``users(ids)`` and ``items(ids)`` → (B, dim), L2-
    normalised when ``normalize``; ``forward`` embeds items (the catalogue that is indexed).

    The side-feature tables are buffers, so an exported encoder embeds users and items from
    their ids alone; ``config`` holds the constructor's arguments (JSON).

    Args:
        n_users, n_items: table sizes.
        dim, hidden, normalize: as in :class:`TwoTowerConfig`.
        user_feature_dim, item_feature_dim: widths of the feature tables (0: none).
        user_features, item_features: the (U, F_u) / (I, F_i) tables (their widths then set
            the two dims).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int = 64,
        hidden: int = 0,
        normalize: bool = True,
        user_feature_dim: int = 0,
        item_feature_dim: int = 0,
        *,
        user_features: Tensor | None = None,
        item_features: Tensor | None = None,
    ) -> None:
        super().__init__()
        for name, n in (("n_users", n_users), ("n_items", n_items), ("dim", dim)):
            if int(n) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {n}.")
        if int(hidden) < 0:
            raise ValueError(f"hidden must be ≥ 0 (0: no MLP), got {hidden}.")
        feats = {}
        for side, n, table, width in (
            ("user", n_users, user_features, user_feature_dim),
            ("item", n_items, item_features, item_feature_dim),
        ):
            if table is not None:
                table = torch.as_tensor(table, dtype=torch.float32)
                if table.dim() != 2 or table.shape[0] != n:
                    raise ValueError(
                        f"{side}_features must be ({n}, F): one row per {side}, got shape "
                        f"{tuple(table.shape)}."
                    )
                width = table.shape[1]
            feats[side] = (table, int(width))
        self.user_tower = _Tower(int(n_users), int(dim), int(hidden), feats["user"][1])
        self.item_tower = _Tower(int(n_items), int(dim), int(hidden), feats["item"][1])
        with torch.no_grad():
            for tower, (table, _) in ((self.user_tower, feats["user"]),
                                      (self.item_tower, feats["item"])):  # fmt: skip
                if table is not None:
                    tower.features.copy_(table)
        self.normalize = bool(normalize)
        self.out_dim = int(dim)
        self.config = {
            "n_users": int(n_users),
            "n_items": int(n_items),
            "dim": int(dim),
            "hidden": int(hidden),
            "normalize": self.normalize,
            "user_feature_dim": feats["user"][1],
            "item_feature_dim": feats["item"][1],
        }

    def _out(self, z: Tensor) -> Tensor:
        return F.normalize(z, dim=-1) if self.normalize else z

    def users(self, ids: Tensor) -> Tensor:
        """(B,) user indices → (B, dim) embeddings."""
        return self._out(self.user_tower(ids))

    def items(self, ids: Tensor) -> Tensor:
        """(B,) item indices → (B, dim) embeddings."""
        return self._out(self.item_tower(ids))

    def forward(self, ids: Tensor) -> Tensor:
        """Item embeddings (what a search index holds)."""
        return self.items(ids)
