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
from contrastkit.evaluate.ranking import retrieval_metrics

__all__ = ["RetrievalProtocol", "partner_ranks"]

_RECALL = re.compile(r"^(a2b|b2a|mean)_recall@(\d+)$")
_MRR = re.compile(r"^(a2b|b2a|mean)_mrr$")


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
        metrics = self._figures(a, b)
        harmonic = float(torch.arange(1, n + 1, dtype=torch.float64).reciprocal().sum())
        chance: dict[str, float] = {}
        for side in ("a2b", "b2a", "mean"):
            chance.update({f"{side}_recall@{k}": min(k, n) / n for k in self.ks})
            chance[f"{side}_mrr"] = harmonic / n
        details: dict[str, Any] = {"pairs": n, "a_name": a_name, "b_name": b_name}
        if baseline is None:
            return ProtocolResult(self.name, split, metrics, chance, "chance", "none", details)
        base = self._figures(baseline["baseline_a"], baseline["baseline_b"])
        return ProtocolResult(
            self.name, split, metrics, base, baseline_name, "none", details, {"chance": chance}
        )

    def _figures(self, a: Tensor, b: Tensor) -> dict[str, float]:
        relevant = [{i} for i in range(a.shape[0])]
        out: dict[str, dict[str, float]] = {}
        for side, (q, c) in (("a2b", (a, b)), ("b2a", (b, a))):
            m = retrieval_metrics(q, c, relevant, ks=self.ks, chunk_size=self.chunk_size)
            out[side] = {f"recall@{k}": m[f"recall@{k}"] for k in self.ks}
            out[side]["mrr"] = float(partner_ranks(q, c, self.chunk_size).reciprocal().mean())
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
        return key
