"""Few-shot classification as a product: K labelled images per class (a support folder) →
labels for a query folder, with a trained encoder.

``contrastkit fewshot --encoder RUN --support DIR --query DIR`` runs :func:`fewshot_folders`:

- the support folder is ``DIR/<class>/*.png`` (K images a class; K may differ by class); the
  query folder is a flat folder of images, or labelled the same way (then accuracy is
  measured, matching classes by name);
- methods: ``"prototype"`` (nearest class mean of the L2-normalised embeddings, cosine),
  ``"logistic"`` (a logistic-regression head fitted on the support rows only); with
  ``finetune_steps`` > 0 a copy of the encoder is first fine-tuned on the support images with
  the supervised contrastive loss over two augmented views;
- with a labelled query folder, the accuracy against K (1, 2, 5, ... up to the smallest
  class's support size; seeded draws of the support images, mean ± 95% CI) for the report.

Example:
    >>> from contrastkit.app.fewshot import fewshot_folders
    >>> out = fewshot_folders("runs/simclr", "support/", "query/")  # doctest: +SKIP
    >>> out["predictions"][0]  # doctest: +SKIP
    {'path': 'query/a.png', 'class': 'cat', 'score': 0.83}
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = ["FEWSHOT_METHODS", "accuracy_against_k", "fewshot_folders", "write_fewshot_files"]

#: the classifiers ``contrastkit fewshot --method`` offers
FEWSHOT_METHODS = ("prototype", "logistic")


def _embed(encoder: torch.nn.Module, images: Tensor) -> Tensor:
    from contrastkit.evaluate.features import extract_features

    return extract_features(encoder, images, batch_size=256)


def accuracy_against_k(
    support: Tensor,
    support_labels: Tensor,
    query: Tensor,
    query_labels: Tensor,
    method: str = "prototype",
    ks: tuple[int, ...] = (1, 2, 5, 10, 20, 50),
    draws: int = 20,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Query accuracy when only K support rows per class are kept (K in ``ks`` up to the
    smallest class's count; ``draws`` seeded draws each): ``[{"k", "accuracy", "ci95"}]``,
    the CI being 1.96·std/√draws over the draws.

    Args:
        support, query: (S, D), (Q, D) embeddings. support_labels, query_labels: (S,), (Q,)
            int64 in 0..C-1.
    """
    from contrastkit.evaluate.protocols.few_shot import fit_predict_few_shot

    rows_of = [torch.nonzero(support_labels == c).flatten() for c in torch.unique(support_labels)]
    smallest = min(len(r) for r in rows_of)
    g = torch.Generator().manual_seed(seed)
    out = []
    for k in [k for k in ks if k <= smallest] or [smallest]:
        accs = []
        for _ in range(draws if k < smallest else 1):
            rows = torch.cat([r[torch.randperm(len(r), generator=g)[:k]] for r in rows_of])
            pred, _, _ = fit_predict_few_shot(support[rows], support_labels[rows], query, method)
            accs.append(float((pred == query_labels).float().mean()))
        mean = sum(accs) / len(accs)
        std = math.sqrt(sum((a - mean) ** 2 for a in accs) / len(accs))
        out.append({"k": k, "accuracy": mean, "ci95": 1.96 * std / math.sqrt(len(accs))})
    return out


def fewshot_folders(
    encoder: str | os.PathLike,
    support: str | os.PathLike,
    query: str | os.PathLike,
    method: str = "prototype",
    finetune_steps: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Classify the images of ``query`` from the labelled images of ``support``.

    Args:
        encoder: an exported encoder folder (``encoder.json`` + ``encoder.safetensors``: the
            ``--out`` of ``contrastkit train`` or ``contrastkit anomaly fit``).
        support: ``DIR/<class>/*.png``, at least one image per class.
        query: a flat folder of images, or ``DIR/<class>/*.png`` to measure accuracy.
        method: one of :data:`FEWSHOT_METHODS`.
        finetune_steps: > 0: fine-tune a copy of the encoder on the support images with the
            supervised contrastive loss first (two augmented views an image).
        seed: the fine-tuning's and the accuracy-against-K draws' seed.

    Returns:
        ``{"classes", "support_per_class", "predictions": [{"path", "class", "score"}],
        "method", "finetune_steps"}``, and with a labelled query folder ``"accuracy"``,
        ``"chance"``, ``"confusion_matrix"``, ``"accuracy_against_k"``.
    """
    from contrastkit.data.datasets import load_image_folder
    from contrastkit.evaluate.protocols.few_shot import fit_predict_few_shot
    from contrastkit.train.export import load_encoder

    if method not in FEWSHOT_METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {FEWSHOT_METHODS}.")
    net = load_encoder(encoder).eval()
    sup = load_image_folder(support, test_fraction=0.0).train
    if sup.labels is None or not sup.classes:
        raise ValueError(
            f"the support folder {support} needs one sub-folder per class "
            f"({support}/<class>/*.png) with the K labelled images of each."
        )
    c, h, w = sup.image_shape
    qry = load_image_folder(query, image_size=(h, w), channels=c, test_fraction=0.0).train
    if finetune_steps > 0:
        from contrastkit.augment import views_for
        from contrastkit.evaluate.finetune import supcon_finetune

        views = views_for("simclr", h, c, flip=0.5, scale=(0.3, 1.0))
        net = supcon_finetune(
            net, sup.images, sup.labels, views, steps=finetune_steps, seed=seed
        ).eval()
    zs, zq = _embed(net, sup.images), _embed(net, qry.images)
    pred, scores, _ = fit_predict_few_shot(zs, sup.labels, zq, method)
    counts = torch.bincount(sup.labels, minlength=len(sup.classes))
    paths = qry.paths or [str(i) for i in range(len(qry))]
    out: dict[str, Any] = {
        "encoder": str(encoder),
        "support": str(support),
        "query": str(query),
        "method": method,
        "finetune_steps": int(finetune_steps),
        "classes": list(sup.classes),
        "support_per_class": {n: int(k) for n, k in zip(sup.classes, counts, strict=True)},
        "predictions": [
            {"path": p, "class": sup.classes[int(pred[i])], "score": float(scores[i].max())}
            for i, p in enumerate(paths)
        ],
    }
    if qry.labels is not None and qry.classes:
        unknown = sorted(set(qry.classes) - set(sup.classes))
        if unknown:
            raise ValueError(
                f"the query folder has classes the support folder lacks: {unknown}; give each "
                f"class some support images ({support}/<class>/)."
            )
        truth = torch.tensor([sup.classes.index(qry.classes[int(y)]) for y in qry.labels])
        out["accuracy"] = float((pred == truth).float().mean())
        out["chance"] = float(torch.bincount(truth).max()) / len(truth)
        n = len(sup.classes)
        confusion = torch.zeros(n, n, dtype=torch.long)
        confusion.index_put_((truth, pred), torch.ones_like(truth), accumulate=True)
        out["confusion_matrix"] = confusion.tolist()
        out["accuracy_against_k"] = accuracy_against_k(
            zs, sup.labels, zq, truth, method=method, seed=seed
        )
    return out


def write_fewshot_files(result: dict[str, Any], out: str | os.PathLike) -> Path:
    """Write ``predictions.csv``, ``fewshot.json`` and ``report.html`` (accuracy against K and
    the confusion matrix when the query folder is labelled) to the folder ``out``."""
    import csv
    import io

    import numpy as np

    from contrastkit._io import atomic_write_bytes
    from contrastkit.evaluate.report import _plt, _png, write_report

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["path", "class", "score"])
    writer.writeheader()
    writer.writerows(result["predictions"])
    atomic_write_bytes(folder / "predictions.csv", buf.getvalue().encode())
    atomic_write_bytes(folder / "fewshot.json", json.dumps(result, indent=2).encode())
    figures = []
    curve = result.get("accuracy_against_k")
    if curve:
        plt = _plt()
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        ks = [r["k"] for r in curve]
        acc = np.array([r["accuracy"] for r in curve])
        ci = np.array([r["ci95"] for r in curve])
        ax.errorbar(ks, acc, yerr=ci, marker="o", capsize=3, label=result["method"])
        ax.axhline(result["chance"], color="grey", ls=":", label="largest class")
        ax.set_xscale("log")
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.minorticks_off()
        ax.set_xlabel("labelled images per class (K)")
        ax.set_ylabel("query accuracy")
        ax.legend(fontsize=8)
        fig.tight_layout()
        figures.append(("Accuracy against K", _png(fig)))
    metrics: dict[str, Any] = {
        "method": result["method"],
        "fine-tuning steps": result["finetune_steps"],
        "query images": len(result["predictions"]),
    }
    for key in ("accuracy", "chance"):
        if key in result:
            metrics[key] = result[key]
    confusion = result.get("confusion_matrix")
    write_report(
        folder / "report.html",
        title=f"contrastkit few-shot: {result['query']}",
        metrics=metrics,
        classes=result["classes"],
        confusion=np.asarray(confusion) if confusion is not None else None,
        confusion_title="few-shot predictions of the query images" if confusion else None,
        maps=(),
        figures=figures,
    )
    return folder
