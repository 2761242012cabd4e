"""Anomaly protocol: score test rows by their cosine distance to the normal training rows;
AUROC and AUPR beside the same scoring of baseline features and chance."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
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

__all__ = ["AnomalyProtocol", "knn_anomaly_scores"]


def knn_anomaly_scores(
    normal_features: Tensor, query_features: Tensor, k: int = 1, chunk_size: int = 1024
) -> Tensor:
    """Anomaly score of each query: 1 − the mean cosine similarity to its ``k`` nearest normal
    rows (k = 1: one minus the maximum cosine similarity). Higher = more anomalous.

    Args:
        normal_features: (N, D) embeddings of normal training rows (the only rows "fitted").
        query_features: (Q, D). k: neighbours (capped at N). chunk_size: queries at a time.

    Returns:
        (Q,) float32 scores in [0, 2], on the CPU.

    Example:
        >>> import torch
        >>> knn_anomaly_scores(torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0], [0.0, 1.0]]))
        tensor([0., 1.])
    """
    bank = F.normalize(normal_features.float(), dim=1)
    k = min(int(k), bank.shape[0])
    out = []
    for start in range(0, query_features.shape[0], chunk_size):
        q = F.normalize(query_features[start : start + chunk_size].float().to(bank.device), dim=1)
        out.append(1.0 - (q @ bank.T).topk(k, dim=1).values.mean(1))
    return torch.cat(out).cpu()


class AnomalyProtocol(Protocol):
    """One-class anomaly detection: some classes are normal, every other class is an anomaly.

    Only the normal rows of the training split are used ("fitted"): a test row's anomaly score
    is 1 − its mean cosine similarity to its ``k`` nearest normal training embeddings
    (:func:`knn_anomaly_scores`; k = 1 is the negative maximum cosine similarity, shifted).
    Metrics, anomalies as the positive class: ``auroc`` (headline) and ``aupr`` (average
    precision), from scikit-learn's ``roc_auc_score`` and ``average_precision_score``. Nothing
    is selected (k is fixed). Chance: AUROC 0.5, AUPR = the fraction of anomalies in the test
    rows.

    Args:
        normal_classes: the classes that are normal; ``None`` reads the labels as flags
            (0 = normal, any other value = anomaly).
        k: the neighbours of the score.

    Example:
        >>> import torch
        >>> x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> y = torch.tensor([0, 0, 1, 1])
        >>> r = AnomalyProtocol(normal_classes=(0,)).evaluate(x, y, x, y)
        >>> r.metrics, r.baseline
        ({'auroc': 1.0, 'aupr': 1.0}, {'auroc': 0.5, 'aupr': 0.5})
    """

    name = "anomaly"
    labels: ClassVar[dict[str, str]] = {"auroc": "anomaly AUROC", "aupr": "anomaly AUPR"}

    def __init__(self, *, normal_classes: tuple[int, ...] | None = (0,), k: int = 1) -> None:
        if normal_classes is not None:
            normal_classes = tuple(int(c) for c in normal_classes)
            if not normal_classes:
                raise ValueError("normal_classes is empty; name at least one normal class.")
        if int(k) < 1:
            raise ValueError(f"k must be ≥ 1, got {k}.")
        self.normal_classes = normal_classes
        self.k = int(k)

    def _is_anomaly(self, labels: Tensor) -> Tensor:
        if self.normal_classes is None:
            return labels != 0
        return ~torch.isin(labels, torch.tensor(self.normal_classes))

    def evaluate(
        self,
        train_features: Tensor,
        train_labels: Tensor,
        test_features: Tensor,
        test_labels: Tensor,
        *,
        baseline_train: Tensor | None = None,
        baseline_test: Tensor | None = None,
        baseline_name: str = "baseline",
        split: str = "test",
    ) -> ProtocolResult:
        """Score the test rows against the normal training rows.

        Args:
            train_features: (N, D) training embeddings; only the rows of normal classes are
                used (the others are ignored, as a one-class detector never sees anomalies).
            train_labels: (N,) integer classes (or 0/1 flags, see ``normal_classes``).
            test_features: (Q, D) embeddings of the rows to score.
            test_labels: (Q,) integer classes; both normal and anomalous rows must occur.
            baseline_train, baseline_test: the baseline's features of the same rows.
            baseline_name: the baseline in words, e.g. ``"raw pixels"``.
            split: the name of the split ``test_features`` come from.
        """
        from sklearn.metrics import average_precision_score, roc_auc_score

        train_features = check_features(train_features, "train_features")
        test_features = check_features(test_features, "test_features")
        y_tr = check_labels(train_labels, train_features.shape[0], "train_labels", "train_features")
        y_te = check_labels(test_labels, test_features.shape[0], "test_labels", "test_features")
        normal_train = torch.nonzero(~self._is_anomaly(y_tr)).flatten()
        anomaly = self._is_anomaly(y_te)
        if normal_train.numel() == 0:
            raise ValueError(
                f"no training row belongs to the normal classes {self.normal_classes}; the "
                f"detector has nothing to learn normality from. Check normal_classes."
            )
        n_anom = int(anomaly.sum())
        if n_anom in (0, anomaly.numel()):
            raise ValueError(
                f"the test rows hold {n_anom} anomalies among {anomaly.numel()}; AUROC needs both "
                f"normal and anomalous rows. Check normal_classes and the test labels."
            )
        baseline = check_baseline(
            {"baseline_train": baseline_train, "baseline_test": baseline_test},
            {"baseline_train": train_features, "baseline_test": test_features},
        )
        truth = anomaly.numpy().astype(np.int64)

        def figures(train: Tensor, test: Tensor) -> dict[str, float]:
            scores = knn_anomaly_scores(train[normal_train.to(train.device)], test, k=self.k)
            s = scores.double().numpy()
            return {
                "auroc": float(roc_auc_score(truth, s)),
                "aupr": float(average_precision_score(truth, s)),
            }

        metrics = figures(train_features, test_features)
        chance = {"auroc": 0.5, "aupr": n_anom / anomaly.numel()}
        details: dict[str, Any] = {
            "normal_classes": list(self.normal_classes) if self.normal_classes else "label 0",
            "k": self.k,
            "n_normal_train": int(normal_train.numel()),
            "n_test": int(anomaly.numel()),
            "n_test_anomalies": n_anom,
        }
        if baseline is None:
            return ProtocolResult(self.name, split, metrics, chance, "chance", "none", details)
        base = figures(baseline["baseline_train"], baseline["baseline_test"])
        return ProtocolResult(
            self.name, split, metrics, base, baseline_name, "none", details, {"chance": chance}
        )
