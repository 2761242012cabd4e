"""Retrieval protocol for paired rows (image ↔ caption, query ↔ document): R@k in both
directions and MRR, beside the baseline's features and chance."""

from __future__ import annotations

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

__all__ = ["RetrievalProtocol", "first_hit_ranks", "partner_ranks"]

_RECALL = re.compile(r"^(a2b|b2a|mean)_recall@(\d+)$")
_MRR = re.compile(r"^(a2b|b2a|mean)_mrr$")
_MEDIAN = re.compile(r"^(a2b|b2a|mean)_median_rank$")


def partner_ranks(queries: Tensor, keys: Tensor, chunk_size: int = 1024) -> Tensor:
    """1-based rank of key i in query i's ranking of all keys by cosine similarity.

    Equal similarities are ordered by key index, the lower first (as
    :func:`~contrastkit.evaluate.retrieval_metrics`), so collapsed embeddings rank at chance,
    not first. Memory O(chunk_size × N).

    Example:
        >>> import torch
        >>> partner_ranks(torch.eye(3), torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])).tolist()
        [2.0, 2.0, 1.0]
    """
    qn = F.normalize(queries.double(), dim=1)
    kn = F.normalize(keys.double(), dim=1).to(qn.device)
    n = kn.shape[0]
    cols = torch.arange(n, device=qn.device)
    out = []
    for start in range(0, qn.shape[0], chunk_size):
        sim = qn[start : start + chunk_size] @ kn.T
        rows = torch.arange(sim.shape[0], device=sim.device)
        target = sim[rows, rows + start][:, None]
        before = (sim > target) | ((sim == target) & (cols[None, :] < (rows + start)[:, None]))
        out.append(before.sum(1).double() + 1.0)
    return torch.cat(out).cpu()


def first_hit_ranks(
    queries: Tensor,
    keys: Tensor,
    query_ids: Tensor | None = None,
    key_ids: Tensor | None = None,
    chunk_size: int = 1024,
) -> Tensor:
    """1-based rank of the best-ranked key sharing query i's id, by cosine similarity.

    Without ids, query i's only hit is key i (:func:`partner_ranks`). With ids (rows with equal
    ids are interchangeable, e.g. several images of one caption), any key with the query's id is
    a hit. Equal similarities are ordered by key index, the lower first. Memory O(chunk_size × N).

    Example:
        >>> import torch
        >>> q, k = torch.eye(3), torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        >>> first_hit_ranks(q, k).tolist(), first_hit_ranks(q, k, torch.tensor([0, 0, 1]), torch.tensor([0, 0, 1])).tolist()
        ([2.0, 2.0, 1.0], [1.0, 1.0, 1.0])
    """
    if query_ids is None and key_ids is None:
        return partner_ranks(queries, keys, chunk_size)
    n_q, n_k = queries.shape[0], keys.shape[0]
    qi = torch.arange(n_q) if query_ids is None else torch.as_tensor(query_ids).reshape(-1)
    ki = torch.arange(n_k) if key_ids is None else torch.as_tensor(key_ids).reshape(-1)
    if qi.numel() != n_q or ki.numel() != n_k:
        raise ValueError(
            f"ids must give one id per row: {qi.numel()} query ids for {n_q} queries, "
            f"{ki.numel()} key ids for {n_k} keys."
        )
    qn = F.normalize(queries.double(), dim=1)
    kn = F.normalize(keys.double(), dim=1).to(qn.device)
    qi, ki = qi.to(qn.device), ki.to(qn.device)
    cols = torch.arange(n_k, device=qn.device)
    out = []
    for start in range(0, n_q, chunk_size):
        sim = qn[start : start + chunk_size] @ kn.T
        hit = qi[start : start + chunk_size, None] == ki[None, :]
        if not bool(hit.any(1).all()):
            raise ValueError(
                "a query has no key with its id, so it has no rank; every query id must occur "
                "among the key ids."
            )
        # the best hit: highest similarity, then lowest index
        best_sim = sim.masked_fill(~hit, float("-inf")).amax(1, keepdim=True)
        best_col = torch.where(hit & (sim == best_sim), cols, n_k).amin(1, keepdim=True)
        before = (sim > best_sim) | ((sim == best_sim) & (cols[None, :] < best_col))
        out.append(before.sum(1).double() + 1.0)
    return torch.cat(out).cpu()


def _chance_figures(group_sizes: Tensor, n: int, ks: tuple[int, ...]) -> dict[str, float]:
    """R@k, MRR and median rank of a uniformly random ranking of ``n`` keys, for queries with
    ``group_sizes`` hits each (exact: no hit in the first r keys has probability
    Π_{j<r} (n − g − j) / (n − j))."""
    r = torch.arange(1, n + 1, dtype=torch.float64)
    recall = {k: 0.0 for k in ks}
    mrr, medians = 0.0, []
    sizes, counts = torch.unique(group_sizes, return_counts=True)
    for g, c in zip(sizes.tolist(), counts.tolist()):
        j = torch.arange(n, dtype=torch.float64)
        survive = torch.cumprod(((n - g - j) / (n - j)).clamp(min=0), 0)  # P(first hit > r)
        cdf = 1 - survive  # P(first hit ≤ r), r = 1..n
        pmf = torch.diff(cdf, prepend=torch.zeros(1, dtype=torch.float64))
        for k in ks:
            recall[k] += c * float(cdf[min(k, n) - 1])
        mrr += c * float((pmf / r).sum())
        medians += [float(r[int((cdf >= 0.5).nonzero()[0])])] * c
    total = float(counts.sum())
    out = {f"recall@{k}": recall[k] / total for k in ks}
    out["mrr"] = mrr / total
    out["median_rank"] = float(torch.tensor(medians).median())
    return out


class RetrievalProtocol(Protocol):
    """Row i of ``a`` and row i of ``b`` are a pair; each side retrieves the other.

    For every row of ``a`` the rows of ``b`` are ranked by cosine similarity (and the other
    way); R@k is the fraction of rows whose partner is in the top k
    (:func:`~contrastkit.evaluate.retrieval_metrics`), MRR the mean reciprocal rank of the
    partner over the whole ranking (:func:`partner_ranks`, float64). Keys: ``a2b_recall@k``, ``b2a_recall@k``,
    ``a2b_mrr``, ``b2a_mrr`` and their means ``mean_recall@k``, ``mean_mrr`` (the headline is
    ``mean_recall@<first k>``). Nothing is fitted or selected.

    Chance (a uniformly random ranking of N rows): R@k = min(k, N) / N and MRR = H_N / N with
    H_N the N-th harmonic number.

    Args:
        ks: the cut-offs of R@k.
        chunk_size: queries ranked at a time (memory O(chunk_size × N)).

    Example:
        >>> import torch
        >>> r = RetrievalProtocol(ks=(1,)).evaluate(torch.eye(4), torch.eye(4) + 0.1)
        >>> r.metrics["a2b_recall@1"], r.metrics["b2a_mrr"], r.baseline["a2b_recall@1"]
        (1.0, 1.0, 0.25)
    """

    name = "retrieval"

    def __init__(self, *, ks: tuple[int, ...] = (1, 5, 10), chunk_size: int = 1024) -> None:
        ks = tuple(int(k) for k in ks)
        if not ks or min(ks) < 1:
            raise ValueError(f"ks must hold cut-offs ≥ 1, got {ks!r}.")
        self.ks = ks
        self.chunk_size = int(chunk_size)

    def evaluate(
        self,
        a: Tensor,
        b: Tensor,
        *,
        baseline_a: Tensor | None = None,
        baseline_b: Tensor | None = None,
        baseline_name: str = "baseline",
        a_name: str = "a",
        b_name: str = "b",
        split: str = "test",
        ids: Tensor | None = None,
    ) -> ProtocolResult:
        """Evaluate paired embeddings.

        Args:
            a: (N, D) embeddings of one side (e.g. images).
            b: (N, D) embeddings of the other side (e.g. captions), row i paired with a[i].
            baseline_a, baseline_b: (N, D') the baseline's features of the same rows (both or
                neither); when absent, chance is the headline baseline.
            baseline_name: the baseline in words, e.g. ``"TF-IDF"``.
            a_name, b_name: the two sides in words, used by :meth:`ProtocolResult.format`
                (``"image→caption R@1"``).
            split: the name of the split the rows come from.
            ids: (N,) int64 group of each pair, or None: pairs with equal ids are
                interchangeable (several images with one caption), so any of them is a hit
                in both directions.
        """
        a = check_features(a, "a")
        b = check_features(b, "b")
        if a.shape[0] != b.shape[0]:
            raise ValueError(
                f"a has {a.shape[0]} rows but b has {b.shape[0]}; row i of a and row i of b must "
                f"be a pair (repeat a row of a for each of its captions)."
            )
        if a.shape[0] < 2:
            raise ValueError("retrieval needs at least 2 pairs, so that a ranking exists.")
        baseline = check_baseline(
            {"baseline_a": baseline_a, "baseline_b": baseline_b},
            {"baseline_a": a, "baseline_b": b},
        )
        n = a.shape[0]
        if ids is not None:
            ids = torch.as_tensor(ids).reshape(-1).cpu()
            if ids.numel() != n:
                raise ValueError(f"ids must give one id per pair: {ids.numel()} ids, {n} pairs.")
        metrics = self._figures(a, b, ids)
        groups = torch.ones(n, dtype=torch.long)
        if ids is not None:
            _, inverse, counts = torch.unique(ids, return_inverse=True, return_counts=True)
            groups = counts[inverse]
        one = _chance_figures(groups, n, self.ks)
        chance: dict[str, float] = {}
        for side in ("a2b", "b2a", "mean"):
            chance.update({f"{side}_{key}": value for key, value in one.items()})
        details: dict[str, Any] = {
            "pairs": n,
            "a_name": a_name,
            "b_name": b_name,
            "groups": n if ids is None else int(torch.unique(ids).numel()),
        }
        if baseline is None:
            return ProtocolResult(self.name, split, metrics, chance, "chance", "none", details)
        base = self._figures(baseline["baseline_a"], baseline["baseline_b"], ids)
        return ProtocolResult(
            self.name, split, metrics, base, baseline_name, "none", details, {"chance": chance}
        )

    def _figures(self, a: Tensor, b: Tensor, ids: Tensor | None = None) -> dict[str, float]:
        out: dict[str, dict[str, float]] = {}
        for side, (q, c) in (("a2b", (a, b)), ("b2a", (b, a))):
            ranks = first_hit_ranks(q, c, ids, ids, self.chunk_size)
            out[side] = {f"recall@{k}": float((ranks <= k).double().mean()) for k in self.ks}
            out[side]["mrr"] = float(ranks.reciprocal().mean())
            out[side]["median_rank"] = float(ranks.median())
        figures = {f"mean_{key}": 0.5 * (out["a2b"][key] + out["b2a"][key]) for key in out["a2b"]}
        for side in ("a2b", "b2a"):
            figures.update({f"{side}_{key}": value for key, value in out[side].items()})
        return figures

    @classmethod
    def metric_label(cls, key: str, details: dict[str, Any]) -> str:
        a, b = details.get("a_name", "a"), details.get("b_name", "b")
        sides = {"a2b": f"{a}→{b}", "b2a": f"{b}→{a}", "mean": f"{a}↔{b} mean"}
        if m := _RECALL.match(key):
            return f"{sides[m.group(1)]} R@{m.group(2)}"
        if m := _MRR.match(key):
            return f"{sides[m.group(1)]} MRR"
        if m := _MEDIAN.match(key):
            return f"{sides[m.group(1)]} median rank"
        return key
