"""Few-shot protocol: N-way K-shot episodes, a nearest-centroid (prototypical) classifier on
normalised embeddings (or a logistic regression fitted on each episode's support rows), mean
accuracy ± 95% confidence interval, beside baseline and chance."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

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

__all__ = [
    "FEW_SHOT_METHODS",
    "LOGISTIC_C",
    "Episode",
    "FewShotPrediction",
    "FewShotProtocol",
    "episode_predictions",
    "few_shot_episodes",
    "fit_predict_few_shot",
    "prototype_accuracy",
]

_ACC = re.compile(r"^(\d+)way_(\d+)shot_(?:([a-z_]+)_)?accuracy$")
_CI = re.compile(r"^(\d+)way_(\d+)shot_(?:([a-z_]+)_)?ci95$")

#: the classifiers an episode can be scored with
FEW_SHOT_METHODS = ("prototype", "logistic")
#: the inverse L2 penalty of the ``"logistic"`` method (scikit-learn's C), fixed: a few-shot
#: episode has no validation rows to choose it on, and the query rows must not be used
LOGISTIC_C = 1.0


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


def _check_method(method: str) -> str:
    if method not in FEW_SHOT_METHODS:
        import difflib

        close = difflib.get_close_matches(str(method), FEW_SHOT_METHODS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown few-shot method {method!r}; valid: {list(FEW_SHOT_METHODS)}.{hint}"
        )
    return method


def _class_scores(
    support: Tensor, support_labels: Tensor, n_classes: int, query: Tensor, method: str
) -> Tensor:
    """(Q, n_classes) scores of the query rows, support labels 0..n_classes-1; the argmax is
    the prediction. prototype: cosine similarity to each class's prototype; logistic: the
    class probabilities of a multinomial logistic regression fitted on the support rows."""
    dev = support.device
    labels = support_labels.to(dev)
    if method == "prototype":
        z = F.normalize(support.float(), dim=1)
        protos = torch.zeros(n_classes, z.shape[1], device=dev).index_add_(0, labels, z)
        protos = F.normalize(protos, dim=1)
        return F.normalize(query.float().to(dev), dim=1) @ protos.T
    from contrastkit.evaluate.linear import fit_logistic

    x = F.normalize(support.detach().double().cpu(), dim=1)
    q = F.normalize(query.detach().double().cpu(), dim=1)
    # scikit-learn's C·Σ CE + ½‖W‖², divided by C·n: mean CE + ‖W‖² / (2·C·n)
    wd = 1.0 / (2.0 * LOGISTIC_C * x.shape[0])
    with torch.enable_grad():
        w, b = fit_logistic(x, labels.cpu(), n_classes, wd, max_iter=500)
    return (q @ w + b).softmax(1).float().to(dev)


def episode_predictions(features: Tensor, episode: Episode, method: str = "prototype") -> Tensor:
    """Predicted episode labels (N·Q,) (0..N-1, on the CPU) of an episode's query rows, by a
    classifier fitted on its support rows only.

    Methods:
        ``"prototype"``: nearest class mean — each class's prototype is the mean of its
        L2-normalised support embeddings; a query takes the class of the prototype with the
        highest cosine similarity (Snell et al. 2017, with cosine as in Chen et al. 2019).
        ``"logistic"``: multinomial logistic regression on L2-normalised embeddings, fitted on
        the support rows by L-BFGS with the fixed penalty C = :data:`LOGISTIC_C` = 1.0
        (scikit-learn's convention; nothing is chosen, least of all on the query rows).

    Args:
        features: (rows, D) embeddings of the split the episode indexes.
        episode: from :func:`few_shot_episodes`. method: one of :data:`FEW_SHOT_METHODS`.

    Example:
        >>> import torch
        >>> y = torch.arange(3).repeat(4); x = torch.eye(3)[y] + 0.1
        >>> e = few_shot_episodes(y, 3, 1, 2, 1, torch.Generator().manual_seed(0))[0]
        >>> episode_predictions(x, e, "logistic").tolist() == e.query_labels.tolist()
        True
    """
    _check_method(method)
    dev = features.device
    scores = _class_scores(
        features[episode.support.to(dev)],
        episode.support_labels,
        int(episode.classes.numel()),
        features[episode.query.to(dev)],
        method,
    )
    return scores.argmax(1).cpu()


def prototype_accuracy(features: Tensor, episode: Episode) -> float:
    """Accuracy of the nearest-centroid classifier on one episode: each class's prototype is
    the mean of its L2-normalised support embeddings; a query takes the class of the prototype
    with the highest cosine similarity (Snell et al. 2017, with cosine as in Chen et al. 2019).
    """
    pred = episode_predictions(features, episode, "prototype")
    return int((pred == episode.query_labels).sum()) / int(episode.query.numel())


class FewShotPrediction(NamedTuple):
    """What :func:`fit_predict_few_shot` returns.

    Attributes:
        labels: (Q,) int64 predicted labels, in the support labels' own values.
        scores: (Q, C) float32 per-class scores (cosine similarity to the prototype, or the
            logistic probability), column c for ``classes[c]``; the argmax is the prediction.
        classes: (C,) int64 the distinct support labels, sorted.
    """

    labels: Tensor
    scores: Tensor
    classes: Tensor


def fit_predict_few_shot(
    support: Tensor, support_labels: Tensor, query: Tensor, method: str = "prototype"
) -> FewShotPrediction:
    """Classify ``query`` embeddings by a classifier fitted on labelled ``support`` embeddings
    (the methods of :func:`episode_predictions`), e.g. for a handful of labelled examples.

    Args:
        support: (S, D) embeddings. support_labels: (S,) integer labels, any values (at least
            two distinct). query: (Q, D). method: one of :data:`FEW_SHOT_METHODS`.

    Returns:
        :class:`FewShotPrediction` ``(labels (Q,), scores (Q, C), classes (C,))``, on the CPU.

    Example:
        >>> import torch
        >>> support = torch.tensor([[1.0, 0.0], [0.9, 0.2], [0.0, 1.0]])
        >>> out = fit_predict_few_shot(support, torch.tensor([7, 7, 3]), torch.tensor([[0.1, 1.0]]))
        >>> out.labels.tolist(), out.classes.tolist()
        ([3], [3, 7])
    """
    _check_method(method)
    support = check_features(support, "support")
    query = check_features(query, "query")
    if query.shape[1] != support.shape[1]:
        raise ValueError(
            f"support has D={support.shape[1]} but query D={query.shape[1]}; embed both with "
            f"the same encoder."
        )
    labels = check_labels(
        support_labels, support.shape[0], "support_labels", "support", allow_negative=True
    )
    classes, inverse = torch.unique(labels, return_inverse=True)
    if classes.numel() < 2:
        raise ValueError(
            f"support_labels hold {classes.numel()} distinct label(s); a classifier needs at "
            f"least 2 classes with labelled support rows."
        )
    scores = _class_scores(support, inverse, int(classes.numel()), query, method).float().cpu()
    return FewShotPrediction(classes[scores.argmax(1)], scores, classes)


class FewShotProtocol(Protocol):
    """N-way K-shot classification by nearest centroid (or a logistic regression fitted on
    the support rows), over seeded random episodes.

    Episodes are drawn from one split (usually classes unseen in training) by
    :func:`few_shot_episodes` with ``torch.Generator().manual_seed(seed)``; each episode is
    scored by :func:`episode_predictions` with each of ``methods`` (``"prototype"``: the
    nearest normalised class mean, :func:`prototype_accuracy`; ``"logistic"``: a multinomial
    logistic regression on normalised embeddings, C = 1.0 fixed). For every K in ``shots``:
    ``{N}way_{K}shot_accuracy`` (mean over episodes, of the first method) and
    ``{N}way_{K}shot_ci95`` = 1.96 · std / √episodes (std with ddof = 0, as the usual few-shot
    code), printed together as ``0.912 ± 0.010``; unless ``methods`` is the default
    ``("prototype",)``, also ``{N}way_{K}shot_{method}_accuracy`` and ``…_{method}_ci95`` for
    every method (the first method's equal the headline's). The baseline's features are scored
    on exactly the same episodes; chance is 1/N. Nothing is fitted on the split beyond the
    per-episode classifiers (on support rows only), and nothing is selected.

    Args:
        n_way: classes per episode. shots: the K (support rows per class) to report.
        queries: query rows per class and episode. episodes: episodes per K. seed: the draws.
        methods: the classifiers of :data:`FEW_SHOT_METHODS` to score, the headline first.

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
        methods: tuple[str, ...] = ("prototype",),
    ) -> None:
        shots = tuple(int(k) for k in shots)
        if isinstance(methods, str):
            methods = (methods,)
        methods = tuple(_check_method(m) for m in methods)
        if not methods or len(set(methods)) != len(methods):
            raise ValueError(
                f"methods must name one or more distinct few-shot methods of "
                f"{list(FEW_SHOT_METHODS)}, got {methods!r}."
            )
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
        self.methods = methods

    def _keys(self, k: int) -> list[tuple[str | None, str]]:
        """(method or None for the headline, key prefix) of each figure pair at K = k."""
        key = f"{self.n_way}way_{k}shot"
        out: list[tuple[str | None, str]] = [(None, key)]
        if self.methods != ("prototype",):
            out += [(m, f"{key}_{m}") for m in self.methods]
        return out

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
                by_method = {}
                for m in self.methods:
                    accs = [
                        int((episode_predictions(x, e, m) == e.query_labels).sum())
                        / int(e.query.numel())
                        for e in eps
                    ]
                    by_method[m] = torch.tensor(accs, dtype=torch.float64)
                for m, key in self._keys(k):
                    accs = by_method[m or self.methods[0]]
                    out[f"{key}_accuracy"] = float(accs.mean())
                    out[f"{key}_ci95"] = float(
                        1.96 * accs.std(unbiased=False) / math.sqrt(len(eps))
                    )
            return out

        metrics = figures(features)
        chance = {}
        for k in self.shots:
            for _, key in self._keys(k):
                chance[f"{key}_accuracy"] = 1.0 / self.n_way
                chance[f"{key}_ci95"] = 0.0
        details: dict[str, Any] = {
            "n_way": self.n_way,
            "shots": list(self.shots),
            "queries": self.queries,
            "episodes": self.episodes,
            "seed": self.seed,
            "methods": list(self.methods),
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
            method = f" ({m.group(3)})" if m.group(3) else ""
            return f"{m.group(1)}-way {m.group(2)}-shot accuracy{method}"
        if m := _CI.match(key):
            method = f" ({m.group(3)})" if m.group(3) else ""
            return f"{m.group(1)}-way {m.group(2)}-shot 95% CI half-width{method}"
        return key

    @classmethod
    def interval_key(cls, key: str) -> str | None:
        if _ACC.match(key):
            return key[: -len("accuracy")] + "ci95"
        return None
