"""Robustness of embeddings: kNN on held-out images that were shifted, rotated and rescaled.

A contrastive encoder trained with crop (and affine) views should map a digit and the same digit
moved or resized a little to nearby embeddings; raw pixels do not: a shift of one pixel changes
most pixels of an 8×8 digit. :func:`random_affine` makes a fixed, seeded copy of a set of
images with one random affine per image (independent of the training seed and of any global
random state); :func:`transformed_knn` classifies such a copy with a kNN whose neighbour bank is
the *clean* training embeddings, k chosen on a transformed copy of the validation rows (never on
the rows the figures are on), beside the same measure on the baseline's features and chance.

Example:
    >>> import torch
    >>> x = torch.zeros(2, 1, 8, 8, dtype=torch.uint8); x[:, :, 2:6, 3:5] = 255
    >>> a, b = random_affine(x, seed=0), random_affine(x, seed=0)
    >>> torch.equal(a, b), a.dtype, bool((a != x).any())
    (True, torch.uint8, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.evaluate.knn import DEFAULT_K_GRID, knn_predict, select_knn_k
from contrastkit.evaluate.metrics import classification_report
from contrastkit.evaluate.protocols.base import ProtocolResult, check_features, check_labels

__all__ = [
    "TRANSFORMED_SPLIT",
    "TRANSFORM_SEEDS",
    "AffineShift",
    "random_affine",
    "transformed_knn",
]

#: the seeds of the transformed copies the pipeline makes, fixed (independent of the training
#: seed) so every run is measured on the same shifted test digits
TRANSFORM_SEEDS = {"val": 1, "test": 2}

#: the split name of the figures on the transformed test images, in words (it appears in the
#: summary line "kNN accuracy, test (shifted, rotated, rescaled): ...")
TRANSFORMED_SPLIT = "test (shifted, rotated, rescaled)"


@dataclass(frozen=True)
class AffineShift:
    """The range of the random affine drawn per image by :func:`random_affine`.

    The defaults are the variation of handwriting a reader ignores without noticing: a digit
    turned by up to 10°, moved by up to 15% of the image side (1.2 pixels of an 8×8 digit)
    and drawn 10% smaller to 20% larger. (They were fixed on the digits' validation split,
    where they leave raw pixels well above chance; they are not tuned on any test split.)

    Attributes:
        degrees: rotation drawn uniformly in [-degrees, degrees].
        translate: shift along each axis drawn uniformly in [-translate, translate], as a
            fraction of the image side.
        scale: zoom factor drawn uniformly in [scale[0], scale[1]] (below 1: smaller).
    """

    degrees: float = 10.0
    translate: float = 0.15
    scale: tuple[float, float] = (0.9, 1.2)

    def __post_init__(self) -> None:
        if self.degrees < 0 or not 0 <= self.translate < 1:
            raise ValueError(
                f"degrees must be ≥ 0 and translate in [0, 1), got {self.degrees}, "
                f"{self.translate}."
            )
        lo, hi = self.scale
        if not 0 < lo <= hi:
            raise ValueError(f"scale must be a range 0 < lo ≤ hi, got {self.scale}.")

    def words(self) -> str:
        """The ranges in words, e.g. for a report: ``"±10°, ±15% shift, ×0.90–1.20"``."""
        lo, hi = self.scale
        return f"±{self.degrees:g}°, ±{100 * self.translate:g}% shift, ×{lo:.2f}–{hi:.2f}"


def random_affine(images: Tensor, *, seed: int = 0, shift: AffineShift | None = None) -> Tensor:
    """A copy of ``images`` (N, C, H, W) with one random affine per image: rotation, shift and
    scale drawn from ``shift`` (default :class:`AffineShift`) by a generator seeded with
    ``seed``, so the same images and seed give the same copy on every machine, whatever the
    global random state. Bilinear sampling, zero (black) outside the image.

    uint8 images come back as uint8 (rounded), float images as float32.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}.")
    shift = shift or AffineShift()
    n = images.shape[0]
    g = torch.Generator().manual_seed(int(seed))
    u = torch.rand(n, 4, generator=g, dtype=torch.float64) * 2 - 1  # four uniforms in [-1, 1]
    angle = u[:, 0] * math.radians(shift.degrees)
    lo, hi = shift.scale
    zoom = lo + (u[:, 1] + 1) / 2 * (hi - lo)
    # affine_grid maps output coordinates (in [-1, 1]) to input ones: the inverse transform;
    # a shift of t·side is 2t in normalised coordinates
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    tx, ty = 2 * shift.translate * u[:, 2], 2 * shift.translate * u[:, 3]
    theta = torch.stack(
        [
            torch.stack([cos, -sin, -(cos * tx - sin * ty)], 1),
            torch.stack([sin, cos, -(sin * tx + cos * ty)], 1),
        ],
        1,
    ).float()
    x = images.float().cpu()
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if images.dtype == torch.uint8:
        return out.round().clamp_(0, 255).to(torch.uint8)
    return out


def transformed_knn(
    train_features: Tensor,
    train_labels: Tensor,
    val_features: Tensor,
    val_labels: Tensor,
    val_transformed: Tensor,
    test_transformed: Tensor,
    test_labels: Tensor,
    *,
    baseline: tuple[Tensor, Tensor, Tensor, Tensor] | None = None,
    baseline_name: str = "baseline",
    ks: tuple[int, ...] = DEFAULT_K_GRID,
    temperature: float = 0.1,
    split: str = TRANSFORMED_SPLIT,
    details: dict[str, Any] | None = None,
) -> ProtocolResult:
    """kNN accuracy of transformed held-out rows against a bank of clean training rows.

    k is chosen (:func:`~contrastkit.evaluate.select_knn_k`) with the clean training rows as
    the bank and the transformed validation rows as queries; the transformed test rows are
    then classified with the clean training and validation rows as the bank, as the
    classification protocol does on clean rows. Nothing is selected on the test rows.

    Args:
        train_features (N, D), train_labels (N,): clean training rows (not the validation rows).
        val_features (V, D), val_labels (V,): clean validation rows (bank of the final kNN).
        val_transformed (V, D): the validation rows transformed (queries that choose k).
        test_transformed (Q, D), test_labels (Q,): the transformed test rows.
        baseline: the baseline's features of the same four sets (train, val, transformed
            val, transformed test), measured the same way; or None.
        baseline_name: the baseline in words (``"raw pixels"``).
        ks, temperature: the kNN's candidate k and vote temperature.
        split: the name of the figures' split in words (:data:`TRANSFORMED_SPLIT`).
        details: added to the result's details (e.g. the transform's seed and ranges).

    Returns:
        A :class:`~contrastkit.evaluate.protocols.ProtocolResult` of the ``classification``
        protocol with ``knn_accuracy`` and ``knn_macro_f1``, the baseline's and chance's (the
        training majority class) beside them.
    """
    y_tr = check_labels(train_labels, train_features.shape[0], "train_labels", "train_features")
    y_va = check_labels(val_labels, val_features.shape[0], "val_labels", "val_features")
    y_te = check_labels(test_labels, test_transformed.shape[0], "test_labels", "test_transformed")
    if val_transformed.shape[0] != y_va.shape[0]:
        raise ValueError(
            f"val_transformed has {val_transformed.shape[0]} rows but val_labels "
            f"{y_va.shape[0]}; transform the same validation rows."
        )
    y_all = torch.cat([y_tr, y_va])
    num_classes = int(max(int(y_all.max()), int(y_te.max()))) + 1

    def figures(tr: Tensor, va: Tensor, va_t: Tensor, te_t: Tensor) -> tuple[dict, dict]:
        tr, va, va_t, te_t = (
            check_features(x, name)
            for x, name in (
                (tr, "train_features"),
                (va, "val_features"),
                (va_t, "val_transformed"),
                (te_t, "test_transformed"),
            )
        )
        grid = tuple(k for k in ks if k <= tr.shape[0]) or (int(tr.shape[0]),)
        k, val_accs = select_knn_k(tr, y_tr, va_t, y_va, ks=grid, temperature=temperature)
        pred = knn_predict(
            torch.cat([tr, va]),
            y_all,
            te_t,
            k=k,
            temperature=temperature,
            num_classes=num_classes,
        ).cpu()
        rep = classification_report(pred, y_te, num_classes=num_classes)
        return (
            {"knn_accuracy": rep["accuracy"], "knn_macro_f1": rep["macro_f1"]},
            {
                "k": int(k),
                "val_knn_accuracy_by_k": {str(kk): float(a) for kk, a in val_accs.items()},
            },
        )

    metrics, info = figures(train_features, val_features, val_transformed, test_transformed)
    majority = int(torch.bincount(y_all).argmax())
    chance_rep = classification_report(torch.full_like(y_te, majority), y_te, num_classes)
    chance = {"knn_accuracy": chance_rep["accuracy"], "knn_macro_f1": chance_rep["macro_f1"]}
    info.update(
        n_train=int(y_tr.numel()),
        n_val=int(y_va.numel()),
        n_test=int(y_te.numel()),
        num_classes=num_classes,
        majority_class=majority,
        val_source="transformed val split",
        **(details or {}),
    )
    if baseline is None:
        return ProtocolResult("classification", split, metrics, chance, "chance", "val", info)
    base_metrics, base_info = figures(*baseline)
    info["baseline"] = base_info
    return ProtocolResult(
        "classification",
        split,
        metrics,
        base_metrics,
        baseline_name,
        "val",
        info,
        {"chance": chance},
    )
