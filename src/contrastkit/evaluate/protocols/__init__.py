"""Evaluation protocols: registered objects that turn embeddings into figures beside the
baseline they must beat, in one result schema for every modality.

A protocol takes *embeddings* (float tensors (N, D) of the splits it needs), never a model, so
the same protocol serves images, text, graphs, tables and audio; the caller encodes the rows,
and encodes the same rows with the baseline (raw pixels, TF-IDF, a frozen pre-trained encoder)
where the baseline is a feature matrix. Baselines that are not feature matrices (chance,
popularity) the protocol measures itself. Every protocol returns a :class:`ProtocolResult`.

=================  ======================================================  =====================
name               figures                                                 baselines
=================  ======================================================  =====================
classification     kNN accuracy (k chosen on val), macro P/R/F1, linear    features; majority
                   probe (penalty chosen on val), MAP@R                    class
retrieval          R@k both directions, MRR (paired rows a_i ↔ b_i)       features; chance
similarity         Spearman, Pearson of cosine vs human scores             features; chance (0)
ranking            Recall@K, NDCG@K, training items excluded               popularity; features;
                                                                           chance
anomaly            AUROC, AUPR (kNN cosine distance to normal train rows)  features; chance
few_shot           N-way K-shot accuracy ± 95% CI (prototypes)             features; chance 1/N
graph_             SVM accuracy, 10-fold CV × 5 seeds (C chosen inside     features; kernels
classification     each training fold)                                     (WL); majority class
molecule           probe ROC-AUC (C chosen on val), all and 10% labels     features (ECFP);
                                                                           chance (0.5)
audio              probe, few-label probe, kNN accuracy (5-fold CV or      pooled MFCC; chance
                   held-out rows; C, k chosen inside the training rows);
                   audio→audio, text↔audio R@1
=================  ======================================================  =====================

Nothing is fitted or selected on the split the figures are on: kNN's k and the probe's
penalty are chosen on a validation part of the training rows, the anomaly detector sees only
normal training rows, few-shot prototypes come from each episode's support rows.

Example:
    >>> import torch
    >>> from contrastkit.evaluate.protocols import get_protocol
    >>> protocol = get_protocol("retrieval", ks=(1,))
    >>> result = protocol.evaluate(torch.eye(3), torch.eye(3), baseline_a=torch.ones(3, 2),
    ...                            baseline_b=torch.ones(3, 2), baseline_name="constant")
    >>> print(result.summary_line())
    a↔b mean R@1, test: 1.000 (constant 0.333, chance 0.333)
"""

from __future__ import annotations

from typing import Any

from contrastkit.evaluate.protocols.anomaly import AnomalyProtocol, knn_anomaly_scores
from contrastkit.evaluate.protocols.audio import AudioProtocol
from contrastkit.evaluate.protocols.base import PROTOCOL_CLASSES, Protocol, ProtocolResult
from contrastkit.evaluate.protocols.classification import (
    ClassificationProtocol,
    stratified_holdout,
)
from contrastkit.evaluate.protocols.few_shot import (
    Episode,
    FewShotProtocol,
    few_shot_episodes,
    prototype_accuracy,
)
from contrastkit.evaluate.protocols.graph import GraphClassificationProtocol, MoleculeProtocol
from contrastkit.evaluate.protocols.ranking import RankingProtocol, interaction_pairs
from contrastkit.evaluate.protocols.retrieval import RetrievalProtocol
from contrastkit.evaluate.protocols.similarity import SimilarityProtocol
from contrastkit.evaluate.protocols.tabular import TabularProtocol

__all__ = [
    "PROTOCOLS",
    "AnomalyProtocol",
    "AudioProtocol",
    "ClassificationProtocol",
    "Episode",
    "FewShotProtocol",
    "GraphClassificationProtocol",
    "MoleculeProtocol",
    "Protocol",
    "ProtocolResult",
    "RankingProtocol",
    "RetrievalProtocol",
    "SimilarityProtocol",
    "TabularProtocol",
    "default_protocol",
    "few_shot_episodes",
    "get_protocol",
    "interaction_pairs",
    "knn_anomaly_scores",
    "prototype_accuracy",
    "stratified_holdout",
]

#: registry name → protocol class
PROTOCOLS: dict[str, type[Protocol]] = {
    "classification": ClassificationProtocol,
    "retrieval": RetrievalProtocol,
    "similarity": SimilarityProtocol,
    "ranking": RankingProtocol,
    "anomaly": AnomalyProtocol,
    "few_shot": FewShotProtocol,
    "graph_classification": GraphClassificationProtocol,
    "molecule": MoleculeProtocol,
    "tabular": TabularProtocol,
    "audio": AudioProtocol,
}
assert all(PROTOCOL_CLASSES[name] is cls for name, cls in PROTOCOLS.items())


def _unknown_protocol(name: Any) -> ValueError:
    import difflib

    valid = sorted(PROTOCOLS)
    close = difflib.get_close_matches(str(name).replace("-", "_"), valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ValueError(f"unknown protocol {name!r}; valid: {valid}.{hint}")


def get_protocol(name: str, **options: Any) -> Protocol:
    """The protocol registered as ``name``, built with ``options``.

    Raises:
        ValueError: an unknown name (the message lists the valid ones) or an option the
            protocol does not take (the message lists its options).

    Example:
        >>> get_protocol("few_shot", n_way=5, shots=(1,)).shots
        (1,)
    """
    import inspect

    if name not in PROTOCOLS:
        raise _unknown_protocol(name)
    cls = PROTOCOLS[name]
    valid = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    bad = sorted(set(options) - set(valid))
    if bad:
        raise ValueError(
            f"protocol {name!r} has no option(s) {bad}; valid options: {valid or 'none'}."
        )
    return cls(**options)


def default_protocol(data: Any) -> str:
    """The protocol a data set is evaluated with by default.

    Reads ``data.protocol`` (a registry name) when the data set names one; otherwise infers it
    from what the data holds, on ``data`` itself or on ``data.train`` (a ``DataSplits``):

    - ``protocol`` attribute → that name (checked against the registry);
    - human similarity ``scores`` or a ``similarity`` matrix (STS pairs, the Lee corpus) →
      ``"similarity"``;
    - class ``labels`` → ``"classification"``;
    - ``interactions`` (users × items) → ``"ranking"``;
    - paired sides (``captions``, ``positives``, ``pairs``) → ``"retrieval"``.

    Raises:
        ValueError: a named protocol that is not registered, or data with none of these.

    Example:
        >>> from types import SimpleNamespace
        >>> default_protocol(SimpleNamespace(labels=[0, 1])), default_protocol(
        ...     SimpleNamespace(labels=None, scores=[0.5], protocol=None))
        ('classification', 'similarity')
    """
    candidates = [data]
    train = getattr(data, "train", None)
    if train is not None:
        candidates.append(train)
    for obj in candidates:
        named = getattr(obj, "protocol", None)
        if named is not None:
            if named not in PROTOCOLS:
                raise _unknown_protocol(named)
            return str(named)
    rules = (
        (("scores", "similarity"), "similarity"),
        (("labels",), "classification"),
        (("interactions", "train_interactions"), "ranking"),
        (("captions", "positives", "pairs"), "retrieval"),
    )
    for fields, protocol in rules:
        for obj in candidates:
            if any(getattr(obj, f, None) is not None for f in fields):
                return protocol
    raise ValueError(
        f"cannot tell which protocol evaluates {type(data).__name__}: it names none "
        f"(a `protocol` attribute) and has no labels, scores, interactions or pairs. Pick one "
        f"of {sorted(PROTOCOLS)} explicitly."
    )
