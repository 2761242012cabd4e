"""The audio protocol: clip classification by linear probe, few-label probe and kNN, and
retrieval (audio→audio by class; text→audio and audio→text where there are texts), beside
pooled MFCC statistics and chance.

Two layouts:

- **cross-validation** (no test rows given; FSDD): every figure is a stratified K-fold CV
  over all rows, nested (the probe's C and kNN's k are chosen inside each training fold,
  :func:`~contrastkit.evaluate.audio.cv_probe`); audio→audio R@1 ranks every other row;
- **held-out test rows** (held-out voices, a test split): the probe, the few-label probe and
  the kNN bank use the training rows only (C and k chosen by CV inside them); retrieval is
  among the test rows.

Keys: ``probe_accuracy``, ``few_label_accuracy`` (``shots`` labels per class),
``knn_accuracy``, ``audio2audio_recall@1``, and with class texts ``text2audio_recall@1``
(each class's text retrieves among the clips of one group, e.g. one held-out voice's 200
words: "among the 200 words", averaged over the groups) and ``audio2text_recall@1`` (each
clip picks its class's text among all classes': zero-shot classification).

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> y = torch.arange(4).repeat(10)
    >>> x = torch.eye(4)[y] + 0.05 * torch.randn(40, 4, generator=g)
    >>> r = AudioProtocol(folds=2, shots=2, Cs=(1.0,)).evaluate(x, y, baseline=torch.randn(40, 3))
    >>> r.metrics["probe_accuracy"], r.other_baselines["chance"]["probe_accuracy"]
    (1.0, 0.25)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from contrastkit.evaluate.audio import (
    DEFAULT_CS,
    cv_knn,
    cv_probe,
    label_recall_at_k,
    probe_accuracy,
)
from contrastkit.evaluate.knn import knn_predict
from contrastkit.evaluate.protocols.base import Protocol, ProtocolResult, check_features

__all__ = ["AudioProtocol"]


class AudioProtocol(Protocol):
    """Clip classification and retrieval with the pooled-MFCC baseline beside them.

    Args:
        folds: outer folds of the cross-validated layout.
        shots: labelled clips per class of the few-label probe (0: none; left out too when a
            class has no more training clips than that: it would be the full probe).
        draws: few-label draws per fold.
        seed: folds and draws.
        Cs: the probe's C grid (chosen by inner CV).
        knn: also report kNN accuracy.
    """

    name = "audio"
    labels: ClassVar[dict[str, str]] = {
        "probe_accuracy": "linear probe accuracy",
        "few_label_accuracy": "few-label probe accuracy",
        "knn_accuracy": "kNN accuracy",
        "audio2audio_recall@1": "audio→audio R@1 (same class)",
        "text2audio_recall@1": "text→audio R@1",
        "audio2text_recall@1": "audio→text R@1 (zero-shot)",
    }

    def __init__(
        self,
        *,
        folds: int = 5,
        shots: int = 10,
        draws: int = 5,
        seed: int = 0,
        Cs: Sequence[float] = DEFAULT_CS,
        knn: bool = True,
    ) -> None:
        self.folds, self.shots, self.draws, self.seed = int(folds), int(shots), int(draws), seed
        self.Cs = tuple(Cs)
        self.knn = knn

    def _classify(
        self, train_x: Tensor, train_y: Tensor, test_x: Tensor | None, test_y: Tensor | None
    ) -> tuple[dict[str, float], dict[str, Any]]:
        kw = {"seed": self.seed, "Cs": self.Cs}
        details: dict[str, Any] = {}
        # a few-label probe with at least as many labels as a class has is the full probe
        few_label = 0 < self.shots < int(torch.bincount(train_y.long()).min())
        if test_x is None:  # cross-validation over every row
            probe = cv_probe(train_x, train_y, folds=self.folds, **kw)
            out = {"probe_accuracy": probe["accuracy"]}
            details["probe_std"] = probe["std"]
            details["probe_Cs"] = probe["Cs_chosen"]
            if few_label:
                few = cv_probe(
                    train_x, train_y, folds=self.folds, shots=self.shots, draws=self.draws, **kw
                )
                out["few_label_accuracy"] = few["accuracy"]
                details["few_label_std"] = few["std"]
            if self.knn:
                out["knn_accuracy"] = cv_knn(train_x, train_y, folds=self.folds, seed=self.seed)[
                    "accuracy"
                ]
            return out, details
        x, y = train_x.double().numpy(), train_y.long().numpy()
        tx, ty = test_x.double().numpy(), test_y.long().numpy()
        acc, (c,) = probe_accuracy(x, y, tx, ty, Cs=self.Cs, seed=self.seed)
        out = {"probe_accuracy": acc}
        details["probe_C"] = c
        if few_label:
            out["few_label_accuracy"], _ = probe_accuracy(
                x, y, tx, ty, shots=self.shots, draws=self.draws, Cs=self.Cs, seed=self.seed
            )
        if self.knn:
            k = min(5, len(y))
            pred = knn_predict(train_x, train_y.long(), test_x, k=k, temperature=1.0)
            out["knn_accuracy"] = float((pred == test_y.long()).float().mean())
        return out, details

    def evaluate(
        self,
        features: Tensor,
        labels: Tensor,
        *,
        test_features: Tensor | None = None,
        test_labels: Tensor | None = None,
        baseline: Tensor | None = None,
        test_baseline: Tensor | None = None,
        baseline_name: str = "pooled MFCC",
        class_texts: Tensor | None = None,
        test_groups: Tensor | None = None,
        split: str = "",
    ) -> ProtocolResult:
        """Evaluate clip embeddings.

        Args:
            features: (N, D) embeddings of the training rows (all rows without a test part).
            labels: (N,) int64 classes.
            test_features, test_labels: (M, D) and (M,) held-out rows, or None (CV layout).
            baseline, test_baseline: the baseline's features of the same rows (pooled MFCC).
            baseline_name: the baseline in words.
            class_texts: (C, D) shared-space embeddings of each class's text (CLAP), in the
                same space as the evaluated rows' embeddings; adds text↔audio retrieval.
            test_groups: (M,) group of each evaluated row (a voice): text→audio ranks among
                one group's rows at a time.
            split: the split the figures are on (default "test" or "{folds}-fold CV").
        """
        x = check_features(features, "features").cpu()
        y = torch.as_tensor(labels).reshape(-1).long().cpu()
        held_out = test_features is not None
        if held_out and test_labels is None:
            raise ValueError("test_features need test_labels.")
        tx = check_features(test_features, "test_features").cpu() if held_out else None
        ty = torch.as_tensor(test_labels).reshape(-1).long().cpu() if held_out else None
        split = split or ("test" if held_out else f"{self.folds}-fold CV")
        metrics, details = self._classify(x, y, tx, ty)
        rx, ry = (tx, ty) if held_out else (x, y)
        a2a = label_recall_at_k(rx, rx, ry, ry, ks=(1,), exclude_self=True)
        metrics["audio2audio_recall@1"] = a2a["recall@1"]
        chance: dict[str, float] = {}
        counts = torch.bincount(y).double()
        majority = float(counts.max() / counts.sum())
        for key in ("probe_accuracy", "few_label_accuracy", "knn_accuracy"):
            if key in metrics:
                chance[key] = majority if counts.min() != counts.max() else 1 / len(counts)
        chance["audio2audio_recall@1"] = a2a["chance@1"]
        if class_texts is not None:
            t = check_features(class_texts, "class_texts").cpu()
            groups = torch.zeros_like(ry) if test_groups is None else torch.as_tensor(test_groups)
            t2a, sizes = [], []
            for g in torch.unique(groups):
                rows = groups == g
                present = torch.unique(ry[rows])
                r = label_recall_at_k(t[present], rx[rows], present, ry[rows], ks=(1,))
                t2a.append(r["recall@1"] * len(present))
                sizes.append(len(present))
            metrics["text2audio_recall@1"] = float(sum(t2a) / sum(sizes))
            chance["text2audio_recall@1"] = float(
                sum(s / int((groups == g).sum()) for s, g in zip(sizes, torch.unique(groups)))
                / max(1, len(sizes))
                / max(1, max(sizes))
            )
            a2t = label_recall_at_k(rx, t, ry, torch.arange(t.shape[0]), ks=(1,))
            metrics["audio2text_recall@1"] = a2t["recall@1"]
            chance["audio2text_recall@1"] = 1 / t.shape[0]
            details["text_groups"] = len(sizes)
        base: dict[str, float] = {}
        if baseline is not None:
            b = check_features(baseline, "baseline").cpu()
            tb = check_features(test_baseline, "test_baseline").cpu() if held_out else None
            base, _ = self._classify(b, y, tb, ty)
            rb = tb if held_out else b
            base["audio2audio_recall@1"] = label_recall_at_k(
                rb, rb, ry, ry, ks=(1,), exclude_self=True
            )["recall@1"]
        details.update({"rows": int(len(ry)), "classes": int(len(counts)), "shots": self.shots})
        return ProtocolResult(
            self.name,
            split,
            metrics,
            base if baseline is not None else chance,
            baseline_name if baseline is not None else "chance",
            "inner CV on the training rows",
            details,
            {"chance": chance},
        )
