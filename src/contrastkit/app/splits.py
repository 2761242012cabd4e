"""Held-out splits carved from a training split (stratified by label where there are labels)."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["split_validation"]


def split_validation(train: Any, val_size: float, seed: int) -> tuple[Any, Any]:
    """Hold ``val_size`` rows (or that fraction) out of ``train``, stratified by label.

    ``train`` is an :class:`ImageSet` or a :class:`~contrastkit.data.text.TextSet` (anything
    with ``len``, ``labels`` and ``subset``); returns (training part, validation part).
    """
    n = len(train)
    n_val = int(round(val_size * n)) if val_size < 1 else int(val_size)
    if not 0 < n_val < n:
        raise ValueError(f"val_size={val_size} leaves no training or no validation rows.")
    g = torch.Generator().manual_seed(seed + 17)
    if train.labels is None:
        perm = torch.randperm(n, generator=g)
        return train.subset(perm[n_val:].sort().values), train.subset(perm[:n_val].sort().values)
    val_idx = []
    for c in torch.unique(train.labels):
        idx = (train.labels == c).nonzero().flatten()
        take = int(round(n_val * len(idx) / n))
        val_idx.append(idx[torch.randperm(len(idx), generator=g)[:take]])
    val = torch.cat(val_idx).sort().values
    mask = torch.ones(n, dtype=torch.bool)
    mask[val] = False
    return train.subset(mask.nonzero().flatten()), train.subset(val)
