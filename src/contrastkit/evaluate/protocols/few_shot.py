"""Few-shot protocol: N-way K-shot episodes, a nearest-centroid (prototypical) classifier on
normalised embeddings, mean accuracy ± 95% confidence interval, beside baseline and chance."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.evaluate.protocols.base import (
    Protocol,
    ProtocolResult,
    check_baseline,
    check_features,
    check_labels,
)

__all__ = ["Episode", "FewShotProtocol", "few_shot_episodes", "prototype_accuracy"]

_ACC = re.compile(r"^(\d+)way_(\d+)shot_accuracy$")
_CI = re.compile(r"^(\d+)way_(\d+)shot_ci95$")


@dataclass(frozen=True)
class Episode:
    """One N-way K-shot episode: row indices of the split and episode labels 0..N-1.

    Attributes:
        classes: (N,) the split's classes drawn, in episode-label order.
        support: (N·K,) support rows, class by class. support_labels: (N·K,) 0..N-1.
        query: (N·Q,) query rows, class by class. query_labels: (N·Q,) 0..N-1.
    """

    classes: Tensor
    support: Tensor
    support_labels: Tensor
    query: Tensor
    query_labels: Tensor


def few_shot_episodes(
    labels: Tensor,
    n_way: int,
    k_shot: int,
    queries: int,
    episodes: int,
    generator: torch.Generator,
) -> list[Episode]:
    """Draw episodes: for each, ``n_way`` classes uniformly without replacement among the
    classes with at least ``k_shot + queries`` rows, then ``k_shot`` support and ``queries``
    query rows per class, disjoint, uniformly without replacement (``torch.randperm`` with
    ``generator``, in that order, so a seed fixes every episode).

    Example:
        >>> import torch
        >>> eps = few_shot_episodes(torch.arange(4).repeat(5), 3, 1, 2, 2, torch.Generator().manual_seed(0))
        >>> len(eps), eps[0].support.shape, eps[0].query_labels.tolist()
        (2, torch.Size([3]), [0, 0, 1, 1, 2, 2])
    """
    labels = torch.as_tensor(labels).long().cpu()
    classes, counts = torch.unique(labels, return_counts=True)
    eligible = classes[counts >= k_shot + queries]
    if eligible.numel() < n_way:
        raise ValueError(
            f"{n_way}-way {k_shot}-shot episodes with {queries} queries need {n_way} classes with "
            f"at least {k_shot + queries} rows each; the split has {eligible.numel()} such "
            f"classes. Lower n_way, k_shot or queries."
        )
    rows_of = {int(c): torch.nonzero(labels == c).flatten() for c in eligible}
    out = []
    for _ in range(episodes):
        drawn = eligible[torch.randperm(eligible.numel(), generator=generator)[:n_way]]
        support, query = [], []
        for c in drawn.tolist():
            rows = rows_of[c]
            picked = rows[torch.randperm(rows.numel(), generator=generator)[: k_shot + queries]]
            support.append(picked[:k_shot])
            query.append(picked[k_shot:])
        episode_labels = torch.arange(n_way)
        out.append(
            Episode(
                classes=drawn,
                support=torch.cat(support),
                support_labels=episode_labels.repeat_interleave(k_shot),
                query=torch.cat(query),
                query_labels=episode_labels.repeat_interleave(queries),
            )
        )
    return out


def prototype_accuracy(features: Tensor, episode: Episode) -> float:
    """Accuracy of the nearest-centroid classifier on one episode: each class's prototype is
    the mean of its L2-normalised support embeddings; a query takes the class of the prototype
    with the highest cosine similarity (Snell et al. 2017, with cosine as in Chen et al. 2019).
    """
    dev = features.device
    z = F.normalize(features.float(), dim=1)
    n_way = int(episode.classes.numel())
    support = z[episode.support.to(dev)]
    protos = torch.zeros(n_way, z.shape[1], device=dev).index_add_(
        0, episode.support_labels.to(dev), support
    )
    protos = F.normalize(protos, dim=1)
    pred = (z[episode.query.to(dev)] @ protos.T).argmax(1).cpu()
    return int((pred == episode.query_labels).sum()) / int(episode.query.numel())


class FewShotProtocol(Protocol):
    """N-way K-shot classification by nearest centroid, over seeded random episodes.

    Episodes are drawn from one split (usually classes unseen in training) by
    :func:`few_shot_episodes` with ``torch.Generator().manual_seed(seed)``; each episode is
    scored by :func:`prototype_accuracy`. For every K in ``shots``: ``{N}way_{K}shot_accuracy``
    (mean over episodes) and ``{N}way_{K}shot_ci95`` = 1.96 · std / √episodes (std with
    ddof = 0, as the usual few-shot code), printed together as ``0.912 ± 0.010``. The baseline's
    features are scored on exactly the same episodes; chance is 1/N. Nothing is fitted on the
    split beyond the per-episode prototypes, and nothing is selected.

    Args:
        n_way: classes per episode. shots: the K (support rows per class) to report.
        queries: query rows per class and episode. episodes: episodes per K. seed: the draws.

    Example:
        >>> import torch
        >>> y = torch.arange(6).repeat(10); x = torch.eye(6)[y]
        >>> r = FewShotProtocol(n_way=3, shots=(1,), queries=2, episodes=5).evaluate(x, y)
        >>> r.metrics, r.summary_line()
        ({'3way_1shot_accuracy': 1.0, '3way_1shot_ci95': 0.0}, '3-way 1-shot accuracy, test: 1.000 (chance 0.333)')
    """

    name = "few_shot"

    def __init__(
        self,
        *,
        n_way: int = 5,
        shots: tuple[int, ...] = (1, 5),
        queries: int = 15,
        episodes: int = 600,
        seed: int = 0,
    ) -> None:
        shots = tuple(int(k) for k in shots)
        if int(n_way) < 2:
            raise ValueError(f"n_way must be ≥ 2 (a 1-way episode is always right), got {n_way}.")
        if not shots or min(shots) < 1:
            raise ValueError(f"shots must hold support sizes ≥ 1, got {shots!r}.")
        if int(queries) < 1 or int(episodes) < 1:
            raise ValueError(f"queries and episodes must be ≥ 1, got {queries} and {episodes}.")
        self.n_way = int(n_way)
        self.shots = shots
        self.queries = int(queries)
        self.episodes = int(episodes)
        self.seed = int(seed)

    def episodes_for(self, labels: Tensor) -> dict[int, list[Episode]]:
        """The episodes :meth:`evaluate` scores, by K (one generator, drawn K after K)."""
        g = torch.Generator().manual_seed(self.seed)
        return {
            k: few_shot_episodes(labels, self.n_way, k, self.queries, self.episodes, g)
            for k in self.shots
        }

    def evaluate(
        self,
        features: Tensor,
        labels: Tensor,
        *,
        baseline_features: Tensor | None = None,
        baseline_name: str = "baseline",
        split: str = "test",
    ) -> ProtocolResult:
        """Score episodes drawn from one labelled split.

        Args:
            features: (N, D) embeddings of the split's rows.
            labels: (N,) integer classes.
            baseline_features: (N, D') the baseline's features of the same rows.
            baseline_name: the baseline in words, e.g. ``"raw pixels"``.
            split: the name of the split the episodes are drawn from.
        """
        features = check_features(features, "features")
        y = check_labels(labels, features.shape[0], "labels", "features")
        baseline = check_baseline(
            {"baseline_features": baseline_features}, {"baseline_features": features}
        )
        by_k = self.episodes_for(y)

        def figures(x: Tensor) -> dict[str, float]:
            out = {}
            for k, eps in by_k.items():
                accs = torch.tensor([prototype_accuracy(x, e) for e in eps], dtype=torch.float64)
                key = f"{self.n_way}way_{k}shot"
                out[f"{key}_accuracy"] = float(accs.mean())
                out[f"{key}_ci95"] = float(1.96 * accs.std(unbiased=False) / math.sqrt(len(eps)))
            return out

        metrics = figures(features)
        chance = {}
        for k in self.shots:
            chance[f"{self.n_way}way_{k}shot_accuracy"] = 1.0 / self.n_way
            chance[f"{self.n_way}way_{k}shot_ci95"] = 0.0
        details: dict[str, Any] = {
            "n_way": self.n_way,
            "shots": list(self.shots),
            "queries": self.queries,
            "episodes": self.episodes,
            "seed": self.seed,
            "classes": int(torch.unique(y).numel()),
            "rows": int(y.numel()),
        }
        if baseline is None:
            return ProtocolResult(self.name, split, metrics, chance, "chance", "none", details)
        base = figures(baseline["baseline_features"])
        return ProtocolResult(
            self.name, split, metrics, base, baseline_name, "none", details, {"chance": chance}
        )

    @classmethod
    def metric_label(cls, key: str, details: dict[str, Any]) -> str:
        if m := _ACC.match(key):
            return f"{m.group(1)}-way {m.group(2)}-shot accuracy"
        if m := _CI.match(key):
            return f"{m.group(1)}-way {m.group(2)}-shot 95% CI half-width"
        return key

    @classmethod
    def interval_key(cls, key: str) -> str | None:
        if key.endswith("shot_accuracy"):
            return key[: -len("accuracy")] + "ci95"
        return None
