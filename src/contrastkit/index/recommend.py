"""Serving a trained recommender: top-k items for a user, training items left out, and "more
like this item" from an item index.

A :class:`Recommender` holds the final user and item embeddings of a trained model (a
two-tower model's towers, or LightGCN/SGL/SimGCL/XSimGCL's propagated tables), the raw ids,
the item titles and each user's training items. It is saved as ``recommender.json`` (ids,
titles, settings, checksums) + ``recommender.safetensors`` (the tables) + ``items/`` (an
:class:`~contrastkit.index.EmbeddingIndex` of the items), all written atomically; nothing is
pickled. ``contrastkit recommend --encoder RUN --user 42 -k 10`` loads the one a training run
wrote to ``RUN/recommender``.

Example:
    >>> import torch
    >>> rec = Recommender(
    ...     users=torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
    ...     items=torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]),
    ...     seen=torch.tensor([[0, 0]]),
    ...     user_ids=["u1", "u2"], item_ids=["a", "b", "c"], item_titles=["A", "B", "C"])
    >>> [(r.item_id, round(r.score, 2)) for r in rec.recommend("u1", k=2)]
    [('b', 0.9), ('c', 0.0)]
    >>> [r.item_id for r in rec.similar_items("a", k=1)]
    ['b']
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from contrastkit._io import atomic_write, atomic_write_bytes, file_sha256

__all__ = ["Recommendation", "Recommender"]

_FORMAT = "contrastkit.recommender"
_VERSION = 1
_META = "recommender.json"
_TABLES = "recommender.safetensors"


@dataclass(frozen=True)
class Recommendation:
    """One recommended item: its rank (1-based), raw id, row index, title and score."""

    rank: int
    item_id: str
    index: int
    title: str | None
    score: float


def _closest_ids(ids: Sequence[str], n: int = 5) -> str:
    shown = ", ".join(repr(i) for i in list(ids)[:n])
    return f"{shown}{', ...' if len(ids) > n else ''} ({len(ids)} in all)"


class Recommender:
    """Top-k items per user from user and item embeddings.

    Args:
        users: (U, D) user embeddings.
        items: (I, D) item embeddings.
        seen: (M, 2) int64 (user row, item row) training interactions, left out of a user's
            recommendations (``exclude_seen=True``).
        user_ids, item_ids: the raw id of each row (what a user types).
        item_titles: a title per item, or None.
        score: ``"dot"`` (the models' training score) or ``"cosine"``.
        meta: JSON-able facts saved with it (recipe, data, run folder).
    """

    def __init__(
        self,
        users: Tensor,
        items: Tensor,
        *,
        seen: Tensor,
        user_ids: Sequence[str],
        item_ids: Sequence[str],
        item_titles: Sequence[str] | None = None,
        score: str = "dot",
        meta: dict[str, Any] | None = None,
    ) -> None:
        users = torch.as_tensor(users).detach().float().cpu().contiguous()
        items = torch.as_tensor(items).detach().float().cpu().contiguous()
        if users.dim() != 2 or items.dim() != 2 or users.shape[1] != items.shape[1]:
            raise ValueError(
                f"users and items must be (U, D) and (I, D) with the same D, got "
                f"{tuple(users.shape)} and {tuple(items.shape)}."
            )
        if len(user_ids) != len(users) or len(item_ids) != len(items):
            raise ValueError(
                f"one id per row: {len(user_ids)} user ids for {len(users)} users, "
                f"{len(item_ids)} item ids for {len(items)} items."
            )
        if item_titles is not None and len(item_titles) != len(items):
            raise ValueError(f"{len(item_titles)} item titles for {len(items)} items.")
        if score not in ("dot", "cosine"):
            raise ValueError(f"score must be 'dot' or 'cosine', got {score!r}.")
        seen = torch.as_tensor(seen).long().cpu().reshape(-1, 2)
        if seen.numel() and (
            int(seen[:, 0].min()) < 0
            or int(seen[:, 0].max()) >= len(users)
            or int(seen[:, 1].min()) < 0
            or int(seen[:, 1].max()) >= len(items)
        ):
            raise ValueError("seen holds (user, item) rows outside the user and item tables.")
        self.users, self.items, self.score = users, items, score
        self.user_ids = [str(u) for u in user_ids]
        self.item_ids = [str(i) for i in item_ids]
        self.item_titles = None if item_titles is None else [str(t) for t in item_titles]
        self.meta = dict(meta or {})
        # each user's training items as CSR: seen_items[indptr[u]:indptr[u + 1]]
        order = torch.argsort(seen[:, 0] * len(items) + seen[:, 1])
        seen = seen[order]
        self.seen_items = seen[:, 1].contiguous()
        counts = torch.bincount(seen[:, 0], minlength=len(users))
        self.seen_indptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
        self._user_row = {u: i for i, u in enumerate(self.user_ids)}
        self._item_row = {it: i for i, it in enumerate(self.item_ids)}
        self._scored_items = (
            torch.nn.functional.normalize(items, dim=1) if score == "cosine" else items
        )
        self._item_index: Any = None

    def __repr__(self) -> str:
        return (
            f"Recommender({len(self.user_ids)} users, {len(self.item_ids)} items, "
            f"dim {self.users.shape[1]}, score {self.score!r})"
        )

    # ------------------------------------------------------------------ lookups
    def user_row(self, user: str | int) -> int:
        """The row of a raw user id (given as str or int)."""
        key = str(user)
        if key not in self._user_row:
            raise KeyError(
                f"unknown user {user!r}: the model knows the users it was trained on, e.g. "
                f"{_closest_ids(self.user_ids)}."
            )
        return self._user_row[key]

    def item_row(self, item: str | int) -> int:
        """The row of a raw item id (given as str or int)."""
        key = str(item)
        if key not in self._item_row:
            raise KeyError(
                f"unknown item {item!r}: the model knows the items it was trained on, e.g. "
                f"{_closest_ids(self.item_ids)}."
            )
        return self._item_row[key]

    def seen_by(self, user: str | int) -> list[str]:
        """The raw ids of a user's training items."""
        r = self.user_row(user)
        rows = self.seen_items[self.seen_indptr[r] : self.seen_indptr[r + 1]]
        return [self.item_ids[int(i)] for i in rows]

    # ------------------------------------------------------------------ queries
    def _rows(self, items: Tensor, scores: Tensor) -> list[Recommendation]:
        titles = self.item_titles
        return [
            Recommendation(
                rank=n + 1,
                item_id=self.item_ids[int(i)],
                index=int(i),
                title=None if titles is None else titles[int(i)],
                score=float(s),
            )
            for n, (i, s) in enumerate(zip(items.tolist(), scores.tolist()))
        ]

    def recommend(
        self, user: str | int, k: int = 10, *, exclude_seen: bool = True
    ) -> list[Recommendation]:
        """The top ``k`` items for ``user`` by score over every item, its training items left
        out (``exclude_seen``); ties go to the lower item row."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}.")
        r = self.user_row(user)
        scores = self._scored_items @ self.users[r]
        if self.score == "cosine":
            scores = scores / self.users[r].norm().clamp_min(1e-12)
        if exclude_seen:
            scores[self.seen_items[self.seen_indptr[r] : self.seen_indptr[r + 1]]] = float("-inf")
        k = min(k, int(torch.isfinite(scores).sum()))
        if k == 0:
            return []
        top_scores, top = torch.topk(scores, k)
        return self._rows(top, top_scores)

    def item_index(self) -> Any:
        """The :class:`~contrastkit.index.EmbeddingIndex` (cosine) of the item embeddings,
        ids = raw item ids, texts = titles; built on first use."""
        if self._item_index is None:
            from contrastkit.index.embedding_index import EmbeddingIndex

            # an item no training interaction reaches can embed to zero (graph models that
            # average propagated layers only): it has no direction, so it is not indexed
            keep = (self.items.norm(dim=1) > 0).nonzero().flatten().tolist()
            titles = None if self.item_titles is None else [self.item_titles[i] for i in keep]
            index = EmbeddingIndex(self.items.shape[1], backend="auto", meta=self.meta)
            if keep:
                index.add(self.items[keep], ids=[self.item_ids[i] for i in keep], texts=titles)
            self._item_index = index
        return self._item_index

    def similar_items(self, item: str | int, k: int = 10) -> list[Recommendation]:
        """ "More like this": the ``k`` items whose embeddings are closest (cosine) to
        ``item``'s, the item itself left out."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}.")
        r = self.item_row(item)
        if not bool(self.items[r].norm() > 0):
            raise ValueError(
                f"item {item!r} has a zero embedding (no training interaction reaches it), so "
                "nothing is similar to it; ask about an item users have interacted with."
            )
        index = self.item_index()
        hits = index.search(self.items[r], k=min(k + 1, len(index)))[0]
        rows = [self._item_row[h.id] for h in hits]
        kept = [(row, h.score) for row, h in zip(rows, hits) if row != r][:k]
        return self._rows(
            torch.tensor([row for row, _ in kept], dtype=torch.long),
            torch.tensor([score for _, score in kept]),
        )

    # ------------------------------------------------------------------ files
    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``recommender.json``, ``recommender.safetensors`` and ``items/`` into
        ``folder`` (created), atomically; returns the folder."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tables = {
            "users": self.users,
            "items": self.items,
            "seen_indptr": self.seen_indptr.contiguous(),
            "seen_items": self.seen_items.contiguous(),
        }
        atomic_write(folder / _TABLES, lambda tmp: save_file(tables, tmp))
        self.item_index().save(folder / "items")
        record = {
            "format": _FORMAT,
            "version": _VERSION,
            "score": self.score,
            "user_ids": self.user_ids,
            "item_ids": self.item_ids,
            "item_titles": self.item_titles,
            "meta": self.meta,
            "tables_sha256": file_sha256(folder / _TABLES),
        }
        atomic_write_bytes(folder / _META, json.dumps(record, ensure_ascii=False).encode())
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> Recommender:
        """Load what :meth:`save` wrote (a run folder holding ``recommender/`` works too);
        checksums are verified."""
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / _META).is_file() and (folder / "recommender" / _META).is_file():
            folder = folder / "recommender"
        meta_path = folder / _META
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"{meta_path} not found: {folder} holds no trained recommender; train one with "
                f"`contrastkit train --recipe xsimgcl --data ml-100k --out RUN` (or two_tower, "
                f"lightgcn, sgl, simgcl, bpr_mf) and give RUN."
            )
        try:
            record = json.loads(meta_path.read_text())
        except (UnicodeDecodeError, ValueError):
            raise ValueError(f"{meta_path} is not valid JSON; train the model again.") from None
        if record.get("format") != _FORMAT or record.get("version") != _VERSION:
            raise ValueError(
                f"{meta_path} is not a recommender of version {_VERSION} (format "
                f"{record.get('format')!r}); train the model again with this contrastkit."
            )
        tables_path = folder / _TABLES
        if not tables_path.is_file() or file_sha256(tables_path) != record["tables_sha256"]:
            raise ValueError(
                f"{tables_path} is missing or its sha256 does not match {meta_path}; the files "
                f"were changed after saving. Train the model again."
            )
        t = load_file(str(tables_path))
        users_of_seen = torch.repeat_interleave(
            torch.arange(len(t["seen_indptr"]) - 1), t["seen_indptr"].diff()
        )
        rec = cls(
            t["users"],
            t["items"],
            seen=torch.stack([users_of_seen, t["seen_items"]], dim=1),
            user_ids=record["user_ids"],
            item_ids=record["item_ids"],
            item_titles=record["item_titles"],
            score=record["score"],
            meta=record["meta"],
        )
        if (folder / "items").is_dir():
            from contrastkit.index.embedding_index import EmbeddingIndex

            rec._item_index = EmbeddingIndex.load(folder / "items")
        return rec
