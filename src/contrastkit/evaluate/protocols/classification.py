"""Classification protocol: weighted kNN (k chosen on validation), linear probe, macro
precision / recall / F1 and MAP@R, beside the same protocol on baseline features and chance."""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

import torch
from torch import Tensor

from contrastkit.data.splits import stratified_split
from contrastkit.evaluate.knn import DEFAULT_K_GRID, knn_predict, select_knn_k
from contrastkit.evaluate.linear import linear_probe
from contrastkit.evaluate.metrics import classification_report, map_at_r
from contrastkit.evaluate.protocols.base import (
    Protocol,
    ProtocolResult,
    check_baseline,
    check_features,
    check_labels,
)

__all__ = ["ClassificationProtocol", "knn_k_cap", "stratified_holdout"]

#: stages in words ("choosing k ...", "linear probe ..."), at INFO; the CLI shows them
_log = logging.getLogger(__name__)


def knn_k_cap(n_bank: int) -> int:
    """The largest k the kNN tries with a bank of ``n_bank`` rows: a fifth of them (at least
    1). A larger k lets most of a class's rows vote on every query (k=200 on 150 rows is a
    vote of nearly the whole bank), so such k are dropped from the grid.

    Example:
        >>> knn_k_cap(1117), knn_k_cap(150), knn_k_cap(3)
        (223, 30, 1)
    """
    return max(1, int(n_bank) // 5)


def stratified_holdout(labels: Tensor, fraction: float, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Split row indices into (fit, held out), holding out ``fraction`` of every class.

    :func:`contrastkit.data.splits.stratified_split` (scikit-learn's ``train_test_split``) over
    the rows of classes with at least two rows, holding out at least one row of each; a class
    with one row stays in the fit part. Both index tensors are sorted.

    Example:
        >>> import torch
        >>> fit, val = stratified_holdout(torch.tensor([0, 0, 0, 0, 1, 1]), 0.5)
        >>> len(fit), len(val)
        (3, 3)
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the validation fraction must lie in (0, 1), got {fraction}.")
    counts = torch.unique(labels, return_counts=True)[1]
    n_classes, n_rows = int((counts >= 2).sum()), int(counts[counts >= 2].sum())
    if n_classes == 0:
        raise ValueError(
            "no class has two training rows, so no validation part can be carved from the "
            "training data; give val_features and val_labels explicitly."
        )
    # at least one row of every class with two rows, and one left in the fit part
    n_val = min(n_rows - n_classes, max(n_classes, round(fraction * n_rows)))
    return stratified_split(labels, n_val, seed)


class ClassificationProtocol(Protocol):
    """Labelled embeddings: kNN accuracy, linear-probe accuracy, macro P/R/F1 and MAP@R.

    - **kNN**: the weighted vote of :func:`~contrastkit.evaluate.knn_predict` (cosine,
      ``exp(sim / temperature)``); k is chosen from ``ks`` by
      :func:`~contrastkit.evaluate.select_knn_k` with the fit part of the training rows as the
      neighbour bank and the validation rows as queries; the test rows are then classified
      with all training rows (fit + validation) as the bank.
    - **linear probe**: :func:`~contrastkit.evaluate.linear_probe` on all training rows (its L2
      penalty chosen on a held-out ``val_fraction`` of them).
    - **macro precision / recall / F1** and the confusion matrix of the kNN predictions
      (:func:`~contrastkit.evaluate.classification_report`); the probe's macro F1.
    - **MAP@R** (:func:`~contrastkit.evaluate.map_at_r`) among the test rows, each query
      excluded (Musgrave et al. 2020); nothing is fitted.

    Nothing is fitted or selected on the test rows. The same protocol runs on the baseline's
    features (e.g. raw pixels) in the same call; chance is the majority class of the training
    rows predicted for every test row.

    Args:
        ks: candidate neighbour counts for kNN; those above :func:`knn_k_cap` of the fit part
            (a fifth of its rows) are dropped, and when none is left the cap itself is used.
        temperature: the kNN vote temperature.
        val_fraction: the part of every class held out of the training rows to choose k, when
            no explicit validation split is given.
        probe: run the linear probe (the slowest part; off for a quick monitor).
        weight_decays, max_iter: the probe's penalty grid and L-BFGS iterations.
        seed: the validation carve-out and the probe's split.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> y = torch.arange(4).repeat(30); x = torch.eye(4)[y] + 0.1 * torch.randn(120, 4, generator=g)
        >>> r = ClassificationProtocol(probe=False).evaluate(x[:80], y[:80], x[80:], y[80:])
        >>> r.metrics["knn_accuracy"] > 0.9, r.baseline_name, r.chosen_on
        (True, 'chance', 'val')
    """

    name = "classification"
    labels: ClassVar[dict[str, str]] = {
        "knn_accuracy": "kNN accuracy",
        "knn_macro_precision": "kNN macro precision",
        "knn_macro_recall": "kNN macro recall",
        "knn_macro_f1": "kNN macro F1",
        "linear_probe_accuracy": "linear-probe accuracy",
        "linear_probe_macro_f1": "linear-probe macro F1",
        "map_at_r": "MAP@R",
    }

    def __init__(
        self,
        *,
        ks: tuple[int, ...] = DEFAULT_K_GRID,
        temperature: float = 0.1,
        val_fraction: float = 0.2,
        probe: bool = True,
        weight_decays: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2),
        max_iter: int = 200,
        seed: int = 0,
    ) -> None:
        ks = tuple(int(k) for k in ks)
        if not ks or min(ks) < 1:
            raise ValueError(f"ks must hold neighbour counts ≥ 1, got {ks!r}.")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}.")
        if not weight_decays:
            raise ValueError("weight_decays is empty; give the probe at least one penalty.")
        self.ks = ks
        self.temperature = float(temperature)
        self.val_fraction = float(val_fraction)
        self.probe = bool(probe)
        self.weight_decays = tuple(float(w) for w in weight_decays)
        self.max_iter = int(max_iter)
        self.seed = int(seed)

    def evaluate(
        self,
        train_features: Tensor,
        train_labels: Tensor,
        test_features: Tensor,
        test_labels: Tensor,
        *,
        val_features: Tensor | None = None,
        val_labels: Tensor | None = None,
        baseline_train: Tensor | None = None,
        baseline_test: Tensor | None = None,
        baseline_val: Tensor | None = None,
        baseline_name: str = "baseline",
        split: str = "test",
    ) -> ProtocolResult:
        """Evaluate labelled embeddings, and the baseline's features of the same rows.

        Args:
            train_features: (N, D) embeddings of the training rows (kNN bank, probe fit).
            train_labels: (N,) integer classes.
            test_features: (Q, D) embeddings of the rows the figures are on.
            test_labels: (Q,) integer classes.
            val_features, val_labels: (V, D), (V,) an explicit validation split to choose k
                on (then also part of the final bank and the probe's data); default: a
                stratified ``val_fraction`` of the training rows.
            baseline_train, baseline_test, baseline_val: (N, D'), (Q, D'), (V, D') the
                baseline's features of the same rows (all of the splits given, or none).
            baseline_name: the baseline in words, e.g. ``"raw pixels"``.
            split: the name of the split ``test_features`` come from (``"val"`` when the
                figures are used to select a model).
        """
        train_features = check_features(train_features, "train_features")
        test_features = check_features(test_features, "test_features")
        y_tr = check_labels(train_labels, train_features.shape[0], "train_labels", "train_features")
        y_te = check_labels(test_labels, test_features.shape[0], "test_labels", "test_features")
        if (val_features is None) != (val_labels is None):
            raise ValueError("give val_features and val_labels together, or neither.")
        refs = {"baseline_train": train_features, "baseline_test": test_features}
        given = {"baseline_train": baseline_train, "baseline_test": baseline_test}
        if val_features is not None:
            val_features = check_features(val_features, "val_features")
            y_va = check_labels(val_labels, val_features.shape[0], "val_labels", "val_features")
            refs["baseline_val"] = val_features
            given["baseline_val"] = baseline_val
            fit = torch.arange(y_tr.shape[0])
            val = torch.arange(y_tr.shape[0], y_tr.shape[0] + y_va.shape[0])
            y_all = torch.cat([y_tr, y_va])
        else:
            if baseline_val is not None:
                raise ValueError("baseline_val was given without val_features; drop it.")
            fit, val = stratified_holdout(y_tr, self.val_fraction, self.seed)
            y_all = y_tr
        dims = {train_features.shape[1], test_features.shape[1]}
        if val_features is not None:
            dims.add(val_features.shape[1])
        if len(dims) > 1:
            raise ValueError(
                f"the train, test (and val) embeddings have different dimensions {sorted(dims)}; "
                f"embed every split with the same encoder."
            )
        baseline = check_baseline(given, refs)
        num_classes = int(max(int(y_all.max()), int(y_te.max()))) + 1

        def run(train: Tensor, test: Tensor, val_x: Tensor | None, who: str) -> tuple[dict, dict]:
            x_all = train if val_x is None else torch.cat([train, val_x.to(train.device)])
            return self._figures(x_all, y_all, fit, val, test, y_te, num_classes, who, split)

        metrics, details = run(train_features, test_features, val_features, "encoder")
        majority = int(torch.bincount(y_all).argmax())
        chance_report = classification_report(
            torch.full_like(y_te, majority), y_te, num_classes=num_classes
        )
        chance = {"knn_accuracy": chance_report["accuracy"]}
        chance.update({f"knn_{m}": chance_report[m] for m in _MACRO})
        if self.probe:
            chance["linear_probe_accuracy"] = chance_report["accuracy"]
            chance["linear_probe_macro_f1"] = chance_report["macro_f1"]
        details.update(
            n_train=int(fit.numel()),
            n_val=int(val.numel()),
            n_test=int(y_te.numel()),
            num_classes=num_classes,
            majority_class=majority,
            val_source="val split" if val_features is not None else "held out of train",
        )
        if baseline is None:
            return ProtocolResult(self.name, split, metrics, chance, "chance", "val", details)
        base_metrics, base_details = run(
            baseline["baseline_train"],
            baseline["baseline_test"],
            baseline.get("baseline_val"),
            baseline_name,
        )
        details["baseline"] = base_details
        return ProtocolResult(
            self.name,
            split,
            metrics,
            base_metrics,
            baseline_name,
            "val",
            details,
            {"chance": chance},
        )

    def _figures(
        self,
        x_all: Tensor,
        y_all: Tensor,
        fit: Tensor,
        val: Tensor,
        x_te: Tensor,
        y_te: Tensor,
        num_classes: int,
        who: str = "encoder",
        split: str = "test",
    ) -> tuple[dict[str, float], dict[str, Any]]:
        dev = x_all.device
        t0 = time.perf_counter()
        cap = knn_k_cap(fit.numel())  # a k near the bank's size votes with nearly all of it
        ks = tuple(k for k in self.ks if k <= cap) or (min(cap, min(self.ks)),)
        _log.info(
            "%s: choosing k for the kNN among %s on %d validation rows (bank: %d rows)",
            who,
            ", ".join(map(str, ks)),
            val.numel(),
            fit.numel(),
        )
        k, val_accs = select_knn_k(
            x_all[fit.to(dev)],
            y_all[fit].to(dev),
            x_all[val.to(dev)],
            y_all[val].to(dev),
            ks=ks,
            temperature=self.temperature,
        )
        pred = knn_predict(
            x_all,
            y_all.to(dev),
            x_te.to(dev),
            k=k,
            temperature=self.temperature,
            num_classes=num_classes,
        ).cpu()
        _log.info("%s: kNN with k=%d on %d %s rows", who, k, y_te.numel(), split)
        report = classification_report(pred, y_te, num_classes=num_classes)
        metrics = {"knn_accuracy": report["accuracy"]}
        metrics.update({f"knn_{m}": report[m] for m in _MACRO})
        details: dict[str, Any] = {
            "k": int(k),
            "k_grid": [int(kk) for kk in ks],
            "k_cap": cap,
            "k_dropped": [int(kk) for kk in self.ks if kk > cap],
            "val_knn_accuracy_by_k": {str(kk): float(a) for kk, a in val_accs.items()},
            "confusion_matrix": report["confusion_matrix"].tolist(),
        }
        if self.probe:
            _log.info(
                "%s: linear probe on %d rows (its L2 penalty one of %d, chosen on a held-out "
                "%.0f%% of them)",
                who,
                y_all.numel(),
                len(self.weight_decays),
                100 * self.val_fraction,
            )
            probe = linear_probe(
                x_all.cpu(),  # fit_logistic builds its weights on the CPU
                y_all,
                x_te.cpu(),
                y_te,
                weight_decays=self.weight_decays,
                val_fraction=self.val_fraction,
                seed=self.seed,
                max_iter=self.max_iter,
            )
            probe_report = classification_report(
                probe["predictions"], y_te, num_classes=num_classes
            )
            metrics["linear_probe_accuracy"] = probe["accuracy"]
            metrics["linear_probe_macro_f1"] = probe_report["macro_f1"]
            details["probe_weight_decay"] = float(probe["weight_decay"])
            details["probe_val_accuracy"] = float(probe["val_accuracy"])
            details["probe_val_fraction"] = self.val_fraction
        counts = torch.bincount(y_te)
        if bool((counts[y_te] > 1).any()):  # MAP@R needs a query with another row of its class
            metrics["map_at_r"] = map_at_r(x_te.cpu(), y_te)
        _log.info("%s: done in %.1f s", who, time.perf_counter() - t0)
        return metrics, details


_MACRO = ("macro_precision", "macro_recall", "macro_f1")
