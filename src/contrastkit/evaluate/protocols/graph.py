"""Graph protocols: graph classification by cross-validated SVM, and molecule property
prediction by a linear probe on a scaffold split.

``graph_classification`` is the protocol of GraphCL and InfoGraph on TU data sets: the frozen
embeddings of every graph, an SVM (scikit-learn's ``SVC()`` with its default RBF kernel, as
their ``svc_classify``; ``kernel="linear"`` for a linear one) under 10-fold stratified
cross-validation repeated over 5 seeds, its C chosen by an inner cross-validation on each training fold (never on the
fold it is scored on). Baselines are feature matrices (node-label histograms, an untrained
encoder) or lists of kernel matrices (the Weisfeiler–Lehman subtree kernel, one matrix per
iteration count; the count is chosen with C inside each training fold), all scored the same
way, and the majority class.

``molecule`` is MoleculeNet's: a logistic-regression probe fitted on the training molecules,
its C chosen by ROC-AUC on the validation molecules, ROC-AUC on the test molecules; again with
a stratified 10% of the training labels (``label_fraction``). Baselines are feature matrices
of the same three splits (ECFP4 fingerprints, an untrained encoder) and chance (0.5).

Example:
    >>> import torch
    >>> from contrastkit.evaluate.protocols.graph import GraphClassificationProtocol
    >>> g = torch.Generator().manual_seed(0)
    >>> labels = torch.arange(40) % 2
    >>> features = torch.randn(40, 4, generator=g) + 10 * labels[:, None]
    >>> p = GraphClassificationProtocol(folds=4, seeds=(0,), Cs=(1.0,), inner_folds=2)
    >>> p.evaluate(features, labels, chance=0.5).metrics["svm_accuracy"]
    1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from contrastkit.evaluate.protocols.base import Protocol, ProtocolResult

__all__ = ["GraphClassificationProtocol", "MoleculeProtocol"]

_CS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)


def _headline(
    others: dict[str, dict[str, float]], chance: dict[str, float]
) -> tuple[str, dict[str, float], dict[str, dict[str, float]]]:
    """(headline baseline's name, its figures, the other baselines with chance last): the
    first baseline measured is the headline one; without any, chance is."""
    others = dict(others)
    head = next(iter(others), "chance")
    baseline = others.pop(head) if others else chance
    others["chance"] = chance
    return head, baseline, others


class GraphClassificationProtocol(Protocol):
    """Frozen embeddings → SVM (RBF by default), 10-fold stratified CV × 5 seeds, C chosen
    inside each training fold. Metrics: ``svm_accuracy`` (mean over seeds of the 10-fold mean),
    ``svm_accuracy_std`` (std over seeds), ``svm_fold_std`` (std over folds, averaged)."""

    name = "graph_classification"
    labels: ClassVar[dict[str, str]] = {
        "svm_accuracy": "SVM accuracy (10-fold CV, mean of the seeds)",
        "svm_accuracy_std": "  std over seeds",
        "svm_fold_std": "  std over folds",
    }

    def __init__(
        self,
        *,
        folds: int = 10,
        seeds: Sequence[int] = (0, 1, 2, 3, 4),
        Cs: Sequence[float] = _CS,
        inner_folds: int = 5,
        kernel: str = "rbf",
        seed: int = 0,
    ) -> None:
        self.folds, self.Cs, self.inner_folds, self.kernel = folds, tuple(Cs), inner_folds, kernel
        self.seeds = tuple(int(s) + int(seed) for s in seeds)

    def _cv(self, x: Any, labels: np.ndarray, folds: int) -> dict[str, Any]:
        from contrastkit.evaluate.graph import svm_cv

        kind = "precomputed" if isinstance(x, (list, tuple)) else self.kernel
        return svm_cv(
            x,
            labels,
            folds=folds,
            seeds=self.seeds,
            Cs=self.Cs,
            kernel=kind,
            inner_folds=self.inner_folds,
        )

    def _folds(self, labels: np.ndarray) -> int:
        """``folds``, lowered to the smallest class's count on small data (at least 2)."""
        smallest = int(np.bincount(np.unique(labels, return_inverse=True)[1]).min())
        if smallest < 2:
            raise ValueError(
                f"a class has {smallest} labelled row; cross-validation needs at least 2 of "
                "every class: label more rows or drop the class."
            )
        return min(self.folds, smallest)

    @staticmethod
    def _figures(cv: dict[str, Any]) -> dict[str, float]:
        return {
            "svm_accuracy": float(cv["accuracy"]),
            "svm_accuracy_std": float(cv["std"]),
            "svm_fold_std": float(cv["fold_std"]),
        }

    def evaluate(
        self,
        features: Tensor,
        labels: Tensor,
        *,
        baselines: dict[str, Tensor] | None = None,
        kernels: dict[str, list[np.ndarray]] | None = None,
        chance: float | None = None,
    ) -> ProtocolResult:
        """Score ``features`` (N, D) against ``labels`` (N,) and each baseline the same way.

        Args:
            features: the embeddings of every graph.
            labels: (N,) int64 graph labels.
            baselines: name → (N, D') feature matrix (node-label histograms, an untrained
                encoder ...).
            kernels: name → list of (N, N) kernel matrices (one per kernel setting, chosen
                with C inside each training fold), e.g. the WL subtree kernel.
            chance: the majority-class accuracy (computed when None).
        """
        y = torch.as_tensor(labels).cpu().numpy()
        if chance is None:
            chance = float(np.bincount(y).max() / len(y))
        folds = self._folds(y)
        cv = self._cv(features.float().cpu().numpy(), y, folds)
        others: dict[str, dict[str, float]] = {}
        details: dict[str, Any] = {
            "graphs": len(y),
            "folds": folds,
            "seeds": list(self.seeds),
            "Cs": list(self.Cs),
            "kernel": self.kernel,
            "per_seed": cv["per_seed"],
            "Cs_chosen": cv.get("Cs_chosen", {}),
        }
        for name, k in (kernels or {}).items():
            kcv = self._cv(list(k), y, folds)
            others[name] = self._figures(kcv)
            if "kernels_chosen" in kcv:
                details[f"{name} settings chosen"] = kcv["kernels_chosen"]
        for name, f in (baselines or {}).items():
            others[name] = self._figures(self._cv(torch.as_tensor(f).float().numpy(), y, folds))
        head, baseline, others = _headline(others, {"svm_accuracy": chance})
        return ProtocolResult(
            self.name,
            "cv",
            self._figures(cv),
            baseline,
            head,
            "inner folds of each training fold",
            details,
            others,
        )


class MoleculeProtocol(Protocol):
    """Frozen embeddings → logistic-regression probe (C chosen on validation ROC-AUC) →
    test ROC-AUC, with every training label (``roc_auc``) and with a stratified
    ``label_fraction`` of them (``roc_auc_10pct`` for 0.1)."""

    name = "molecule"

    def __init__(
        self, *, label_fraction: float = 0.1, Cs: Sequence[float] = _CS, seed: int = 0
    ) -> None:
        self.fraction, self.Cs, self.seed = float(label_fraction), tuple(Cs), int(seed)

    @property
    def _few_key(self) -> str:
        return f"roc_auc_{round(self.fraction * 100)}pct"

    @classmethod
    def metric_label(cls, key: str, details: dict[str, Any]) -> str:
        if key == "roc_auc":
            return "probe ROC-AUC (all training labels)"
        if key.startswith("roc_auc_") and key.endswith("pct"):
            return f"probe ROC-AUC ({key[8:-3]}% of the training labels)"
        return key

    def _scores(self, x: Sequence[Tensor], y: Sequence[Tensor], few: Tensor) -> dict[str, float]:
        from contrastkit.evaluate.graph import probe_roc_auc

        a = [torch.as_tensor(t).float().cpu().numpy() for t in x]
        b = [torch.as_tensor(t).cpu().numpy() for t in y]
        full = probe_roc_auc(a[0], b[0], a[1], b[1], a[2], b[2], Cs=self.Cs)
        idx = few.numpy()
        part = probe_roc_auc(a[0][idx], b[0][idx], a[1], b[1], a[2], b[2], Cs=self.Cs)
        return {"roc_auc": float(full["roc_auc"]), self._few_key: float(part["roc_auc"])}

    def evaluate(
        self,
        train: Tensor,
        val: Tensor,
        test: Tensor,
        train_labels: Tensor,
        val_labels: Tensor,
        test_labels: Tensor,
        *,
        baselines: dict[str, Sequence[Tensor]] | None = None,
        details: dict[str, Any] | None = None,
    ) -> ProtocolResult:
        """Score the (N_split, D) embeddings of the three splits, and each baseline's
        ``[train, val, test]`` features the same way (the same 10% of the labels)."""
        from contrastkit.evaluate.graph import label_fraction_subset

        few = label_fraction_subset(torch.as_tensor(train_labels), self.fraction, self.seed)
        y = (train_labels, val_labels, test_labels)
        metrics = self._scores((train, val, test), y, few)
        others = {name: self._scores(tuple(f), y, few) for name, f in (baselines or {}).items()}
        head, baseline, others = _headline(others, {"roc_auc": 0.5, self._few_key: 0.5})
        info = {"label_fraction": self.fraction, "labelled_molecules": int(len(few))}
        info.update(details or {})
        return ProtocolResult(self.name, "test", metrics, baseline, head, "val", info, others)
