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
    ``train_test_split``), unstratified for unlabelled data.
    """
    labels = train.labels if train.labels is not None else len(train)
    fit, val = stratified_split(labels, val_size, seed)
    return train.subset(fit), train.subset(val)
