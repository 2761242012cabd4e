"""Held-out splits carved from a training split (stratified by label where there are labels)."""

from __future__ import annotations

from typing import Any

from contrastkit.data.splits import stratified_split

__all__ = ["split_validation"]


def split_validation(train: Any, val_size: float, seed: int) -> tuple[Any, Any]:
    """Hold ``val_size`` rows (or that fraction) out of ``train``, stratified by label.

    ``train`` is an :class:`ImageSet` or a :class:`~contrastkit.data.text.TextSet` (anything
    with ``len``, ``labels`` and ``subset``); returns (training part, validation part). The
    split is :func:`contrastkit.data.splits.stratified_split` (scikit-learn's
    ``train_test_split``), unstratified for unlabelled data. A fraction that would hold out
    fewer rows than there are classes (a small folder) holds out one row per class instead,
    so every class can be checked.
    """
    labels = train.labels if train.labels is not None else len(train)
    if train.labels is not None and isinstance(val_size, float) and 0 < val_size < 1:
        import torch

        counts = torch.bincount(train.labels)
        classes = int((counts >= 2).sum())  # those that can be on both sides
        if round(val_size * len(train)) < classes <= len(train) - classes:
            val_size = classes
    fit, val = stratified_split(labels, val_size, seed)
    return train.subset(fit), train.subset(val)
