"""Held-out splits of row indices: scikit-learn's ``train_test_split``, stratified by label.

Example:
    >>> import torch
    >>> from contrastkit.data.splits import stratified_split
    >>> train, val = stratified_split(torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]), 0.5, seed=0)
    >>> len(train), len(val), sorted(torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])[val].tolist())
    (4, 4, [0, 0, 1, 1])
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["stratified_split"]


def stratified_split(labels_or_n: Tensor | np.ndarray | int, size: float, seed: int = 0):
    """Hold ``size`` rows (or that fraction of them) out: ``(train_idx, val_idx)``.

    ``sklearn.model_selection.train_test_split(..., stratify=labels, random_state=seed)``: the
    held-out rows keep the class ratios of ``labels`` (as nearly as whole rows allow; every
    class with two or more rows is on both sides when the sizes permit). A class with a single
    row cannot be on both sides: its row stays in the training part. With a row count instead
    of labels the split is a plain shuffled one.

    Args:
        labels_or_n: (N,) integer class labels, or the number of rows N (no stratification).
        size: the held-out part: a fraction in (0, 1) (``round(size × N)`` rows) or a count
            of rows ≥ 1.
        seed: the shuffle (``random_state``); the same seed gives the same split.

    Returns:
        Two sorted int64 tensors of row indices, disjoint, together ``0..N-1``.

    Raises:
        ValueError: when either part would be empty, or there are more classes than rows in a
            part.
    """
    from sklearn.model_selection import train_test_split

    if isinstance(labels_or_n, (int, np.integer)) and not isinstance(labels_or_n, bool):
        n, labels = int(labels_or_n), None
    else:
        labels = np.asarray(torch.as_tensor(labels_or_n).cpu())
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise ValueError(
                f"labels must be an (N,) tensor of integer class ids (or give the row count N "
                f"for an unstratified split), got dtype {labels.dtype} shape {labels.shape}."
            )
        n = len(labels)
    if isinstance(size, bool) or not isinstance(size, (int, float)) or size <= 0:
        raise ValueError(f"size must be a fraction in (0, 1) or a row count ≥ 1, got {size!r}.")
    n_val = int(round(size * n)) if size < 1 else int(size)
    if not 0 < n_val < n:
        raise ValueError(
            f"size={size} holds out {n_val} of {n} rows, which leaves no training or no "
            f"held-out rows; give a fraction in (0, 1) or a count between 1 and {n - 1}."
        )
    rows, alone = np.arange(n), np.arange(0)
    if labels is not None:
        classes, counts = np.unique(labels, return_counts=True)
        single = np.isin(labels, classes[counts < 2])
        rows, alone = np.flatnonzero(~single), np.flatnonzero(single)
    try:
        if n_val >= len(rows):
            raise ValueError(f"only {len(rows)} rows belong to classes with two or more rows")
        train, val = train_test_split(
            rows,
            test_size=n_val,
            random_state=seed,
            stratify=None if labels is None else labels[rows],
        )
    except ValueError as err:
        raise ValueError(
            f"cannot stratify {n_val} held-out rows of {n} by these labels ({err}); merge or "
            f"drop classes with a single row, or hold out more rows than there are classes."
        ) from err
    train = np.concatenate([train, alone])
    return torch.from_numpy(np.sort(train)).long(), torch.from_numpy(np.sort(val)).long()
