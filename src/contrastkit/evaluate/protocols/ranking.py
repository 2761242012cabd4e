"""Ranking protocol for recommendation: users rank items, the items they interacted with in
training excluded; Recall@K and NDCG@K beside popularity, baseline embeddings and chance."""

from __future__ import annotations

import math
import re
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.evaluate.protocols.base import (
    Protocol,
    ProtocolResult,
    check_baseline,
    check_features,
)
from contrastkit.evaluate.ranking import ndcg_at_k, ranked_recall_at_k

__all__ = ["RankingProtocol", "interaction_pairs"]

_KEY = re.compile(r"^(recall|ndcg)@(\d+)$")


def interaction_pairs(interactions: Tensor, n_users: int, n_items: int, name: str) -> Tensor:
    """(M, 2) unique (user, item) pairs, sorted by user then item, from either (M, 2) integer
    pairs or a dense (U, I) matrix whose entries > 0 mark interactions (an integer tensor with
    two columns is read as pairs; give a bool or float matrix for a dense one)."""
    t = torch.as_tensor(interactions)
    if t.dim() == 2 and t.shape[1] == 2 and not t.is_floating_point() and t.dtype != torch.bool:
        pairs = t.long().cpu()
        if pairs.numel():
            bad_u = (pairs[:, 0] < 0) | (pairs[:, 0] >= n_users)
            bad_i = (pairs[:, 1] < 0) | (pairs[:, 1] >= n_items)
            if bool((bad_u | bad_i).any()):
                raise ValueError(
                    f"{name} holds (user, item) pairs outside 0..{n_users - 1} × "
                    f"0..{n_items - 1}; they index the rows of user_features and item_features."
                )
    elif t.dim() == 2 and t.shape == (n_users, n_items):
        pairs = torch.nonzero(t.cpu() > 0)
    else:
        raise ValueError(
            f"{name} must be (M, 2) integer (user, item) pairs or a dense ({n_users}, {n_items}) "
            f"matrix (> 0 = interaction), got dtype {t.dtype} shape {tuple(t.shape)}."
        )
    if pairs.numel() == 0:
        return pairs.reshape(0, 2)
    return torch.unique(pairs, dim=0)  # sorted lexicographically, duplicates merged


class RankingProtocol(Protocol):
    """Users × items: each user ranks every item it did not interact with in training.

    Scores are cosine similarities (or dot products, ``score="dot"``) of user and item
    embeddings; the user's training items are removed from its ranking (and from its test
    items, if a pair appears in both). For every user with at least one test item:

    - Recall@K = test items in the top K / the user's test items
      (:func:`~contrastkit.evaluate.ranked_recall_at_k`);
    - NDCG@K with binary gains and the ideal DCG of all the user's test items
      (:func:`~contrastkit.evaluate.ndcg_at_k`);

    averaged over those users. Keys ``recall@K`` and ``ndcg@K`` for every K (headline:
    ``recall@<first K>``). Nothing is fitted or selected.

    Baselines, all measured in the same call: **popularity** (items ranked by their number of
    training interactions, ties by item index, training items excluded the same way), the
    caller's baseline embeddings (e.g. BPR-MF) when given, and **chance** (the exact expected
    Recall@K = min(K, C)/C and NDCG@K of a uniformly random ranking of a user's C candidates).

    Args:
        ks: the cut-offs K.
        score: ``"cosine"`` or ``"dot"``.
        chunk_size: users ranked at a time (memory O(chunk_size × items)).

    Example:
        >>> import torch
        >>> users, items = torch.eye(3), torch.eye(3)
        >>> train = torch.tensor([[0, 1]]); test = torch.tensor([[0, 0], [1, 1], [2, 2]])
        >>> r = RankingProtocol(ks=(1,)).evaluate(users, items, train, test)
        >>> r.metrics["recall@1"], r.baseline_name
        (1.0, 'popularity')
    """

    name = "ranking"

    def __init__(
        self, *, ks: tuple[int, ...] = (10, 20), score: str = "cosine", chunk_size: int = 1024
    ) -> None:
        ks = tuple(int(k) for k in ks)
        if not ks or min(ks) < 1:
            raise ValueError(f"ks must hold cut-offs ≥ 1, got {ks!r}.")
        if score not in ("cosine", "dot"):
            raise ValueError(f"score must be 'cosine' or 'dot', got {score!r}.")
        self.ks = ks
        self.score = score
        self.chunk_size = int(chunk_size)

    def evaluate(
        self,
        user_features: Tensor,
        item_features: Tensor,
        train_interactions: Tensor,
        test_interactions: Tensor,
        *,
        baseline_users: Tensor | None = None,
        baseline_items: Tensor | None = None,
        baseline_name: str = "baseline",
        split: str = "test",
    ) -> ProtocolResult:
        """Rank items for every user with a test interaction.

        Args:
            user_features: (U, D) user embeddings.
            item_features: (I, D) item embeddings.
            train_interactions: (M, 2) integer (user, item) pairs, or a dense (U, I) matrix
                (> 0 = interaction): the items each user has seen, excluded from its ranking
                and counted for popularity.
            test_interactions: the held-out interactions to find, in the same form.
            baseline_users, baseline_items: (U, D'), (I, D') the baseline's embeddings (both or
                neither); popularity and chance are always measured.
            baseline_name: the baseline embeddings in words, e.g. ``"BPR-MF"``.
            split: the name of the split ``test_interactions`` come from.
        """
        users = check_features(user_features, "user_features")
        items = check_features(item_features, "item_features")
        if users.shape[1] != items.shape[1]:
            raise ValueError(
                f"user_features have dimension {users.shape[1]} but item_features {items.shape[1]}; "
                f"both towers must embed into the same space."
            )
        n_users, n_items = users.shape[0], items.shape[0]
        train = interaction_pairs(train_interactions, n_users, n_items, "train_interactions")
        test = interaction_pairs(test_interactions, n_users, n_items, "test_interactions")
        if test.shape[0] == 0:
            raise ValueError("test_interactions is empty; there is nothing to rank for.")
        baseline = check_baseline(
            {"baseline_users": baseline_users, "baseline_items": baseline_items},
            {"baseline_users": users, "baseline_items": items},
        )
        eval_users = torch.unique(test[:, 0])
        popularity = torch.bincount(train[:, 1], minlength=n_items).double()
        counts = {
            "users": int(eval_users.numel()),
            "users_skipped": n_users - int(eval_users.numel()),
            "items": n_items,
            "train_interactions": int(train.shape[0]),
            "test_interactions": int(test.shape[0]),
        }
        tie_break = torch.arange(n_items, dtype=torch.float64) / (2.0 * n_items)
        pop_scores = popularity - tie_break  # more interactions first, then lower item index

        metrics, seen_dropped = self._figures(users, items, None, train, test, eval_users)
        pop, _ = self._figures(None, None, pop_scores, train, test, eval_users)
        chance = self._chance(train, test, eval_users, n_items)
        details: dict[str, Any] = {**counts, "test_interactions_seen_in_train": seen_dropped}
        details["score"] = self.score
        if baseline is None:
            return ProtocolResult(
                self.name, split, metrics, pop, "popularity", "none", details, {"chance": chance}
            )
        base, _ = self._figures(
            baseline["baseline_users"], baseline["baseline_items"], None, train, test, eval_users
        )
        return ProtocolResult(
            self.name,
            split,
            metrics,
            base,
            baseline_name,
            "none",
            details,
            {"popularity": pop, "chance": chance},
        )

    def _rows(self, pairs: Tensor, chunk_users: Tensor, n_items: int) -> Tensor:
        """Dense bool (len(chunk_users), I) of the pairs of ``chunk_users`` (sorted ids)."""
        out = torch.zeros(chunk_users.numel(), n_items, dtype=torch.bool)
        lo = torch.searchsorted(pairs[:, 0].contiguous(), chunk_users)
        hi = torch.searchsorted(pairs[:, 0].contiguous(), chunk_users, right=True)
        for row, (a, b) in enumerate(zip(lo.tolist(), hi.tolist())):
            out[row, pairs[a:b, 1]] = True
        return out

    def _figures(
        self,
        users: Tensor | None,
        items: Tensor | None,
        fixed_scores: Tensor | None,
        train: Tensor,
        test: Tensor,
        eval_users: Tensor,
    ) -> tuple[dict[str, float], int]:
        n_items = items.shape[0] if items is not None else fixed_scores.shape[0]
        k_rank = min(max(self.ks), n_items)
        if items is not None:
            items = F.normalize(items.float(), dim=1) if self.score == "cosine" else items.float()
        sums = {f"{m}@{k}": 0.0 for k in self.ks for m in ("recall", "ndcg")}
        counted, seen_dropped = 0, 0
        for start in range(0, eval_users.numel(), self.chunk_size):
            chunk = eval_users[start : start + self.chunk_size]
            if fixed_scores is None:
                u = users[chunk.to(users.device)].float()
                u = F.normalize(u, dim=1) if self.score == "cosine" else u
                scores = (u @ items.to(u.device).T).cpu().double()
            else:
                scores = fixed_scores.expand(chunk.numel(), -1).clone()
            seen = self._rows(train, chunk, n_items)
            relevant = self._rows(test, chunk, n_items)
            seen_dropped += int((relevant & seen).sum())
            relevant &= ~seen
            scores[seen] = -math.inf
            keep = relevant.any(1)
            if not bool(keep.any()):
                continue
            scores, relevant = scores[keep], relevant[keep].double()
            ranked = relevant.gather(1, scores.topk(k_rank, dim=1).indices)
            n_rel = relevant.sum(1)
            counted += int(keep.sum())
            for k in self.ks:
                sums[f"recall@{k}"] += float(ranked_recall_at_k(ranked, k, n_rel).sum())
                sums[f"ndcg@{k}"] += float(ndcg_at_k(ranked, k, relevant).sum())
        if counted == 0:
            raise ValueError(
                "every test interaction is also a training interaction, so no user has an item "
                "left to find; hold test interactions out of train_interactions."
            )
        return {key: total / counted for key, total in sums.items()}, seen_dropped

    def _chance(
        self, train: Tensor, test: Tensor, eval_users: Tensor, n_items: int
    ) -> dict[str, float]:
        """Exact expected Recall@K and NDCG@K of a uniformly random ranking of each user's
        unseen items (binary gains: each rank holds a relevant item with probability R/C)."""
        sums = {f"{m}@{k}": 0.0 for k in self.ks for m in ("recall", "ndcg")}
        counted = 0
        for start in range(0, eval_users.numel(), self.chunk_size):
            chunk = eval_users[start : start + self.chunk_size]
            seen_rows = self._rows(train, chunk, n_items)
            rel = (self._rows(test, chunk, n_items) & ~seen_rows).sum(1).double()
            cand = (n_items - seen_rows.sum(1)).double()
            for r, c in zip(rel.tolist(), cand.tolist()):
                if r == 0:
                    continue
                counted += 1
                for k in self.ks:
                    top = min(k, int(c))
                    sums[f"recall@{k}"] += top / c
                    dcg = sum((r / c) / math.log2(i + 1) for i in range(1, top + 1))
                    idcg = sum(1.0 / math.log2(i + 1) for i in range(1, min(k, int(r)) + 1))
                    sums[f"ndcg@{k}"] += dcg / idcg
        return {key: total / max(counted, 1) for key, total in sums.items()}

    @classmethod
    def metric_label(cls, key: str, details: dict[str, Any]) -> str:
        if m := _KEY.match(key):
            return f"{'Recall' if m.group(1) == 'recall' else 'NDCG'}@{m.group(2)}"
        return key
