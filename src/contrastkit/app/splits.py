"""Held-out splits carved from a training split (stratified by label where there are labels)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from contrastkit.data.splits import stratified_split

__all__ = ["group_split", "split_validation"]


def split_validation(train: Any, val_size: float, seed: int) -> tuple[Any, Any]:
    """Hold ``val_size`` rows (or that fraction) out of ``train``, stratified by label.

    ``train`` is an :class:`ImageSet` or a :class:`~contrastkit.data.text.TextSet` (anything
    with ``len``, ``labels`` and ``subset``); returns (training part, validation part). The
    split is :func:`contrastkit.data.splits.stratified_split` (scikit-learn's
    ``train_test_split``), unstratified for unlabelled data. A fraction that would hold out
    fewer rows than there are classes (a small folder) holds out one row per class instead,
    so every class can be checked. Image–caption pairs are split by caption
    (:func:`group_split`): every image of a held-out caption is held out with it.
    """
    groups = getattr(train, "caption_ids", None)
    if groups is not None:  # image–caption pairs: a caption's images stay together
        fit, val = group_split(groups, val_size, seed)
        return train.subset(fit), train.subset(val)
    labels = train.labels if train.labels is not None else len(train)
    if train.labels is not None and isinstance(val_size, float) and 0 < val_size < 1:
        counts = torch.bincount(train.labels)
        classes = int((counts >= 2).sum())  # those that can be on both sides
        if round(val_size * len(train)) < classes <= len(train) - classes:
            val_size = classes
    fit, val = stratified_split(labels, val_size, seed)
    return train.subset(fit), train.subset(val)


def group_split(ids: Tensor, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Row indices (kept, held out): about ``fraction`` of the rows held out, whole groups at
    a time (rows with equal ``ids`` stay on one side, so no caption is on both), seeded."""
    ids = torch.as_tensor(ids)
    groups = torch.unique(ids)
    g = torch.Generator().manual_seed(int(seed))
    order = groups[torch.randperm(len(groups), generator=g)]
    target = round(fraction * len(ids)) if fraction < 1 else int(fraction)
    held, count = [], 0
    counts = {int(k): int(v) for k, v in zip(*torch.unique(ids, return_counts=True))}
    for gid in order.tolist():
        if count >= target:
            break
        held.append(gid)
        count += counts[gid]
    mask = torch.isin(ids, torch.tensor(held, dtype=ids.dtype))
    return torch.nonzero(~mask).flatten(), torch.nonzero(mask).flatten()
