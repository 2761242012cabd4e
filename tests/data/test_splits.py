"""stratified_split: scikit-learn's stratified train_test_split on row indices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.model_selection import train_test_split

from contrastkit.data.splits import stratified_split


def _labels(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.cat([torch.full((n,), c) for c, n in enumerate((50, 30, 17, 3))])[
        torch.randperm(100, generator=g)
    ]


def test_is_sklearns_stratified_split_sorted():
    y = _labels()
    train, val = stratified_split(y, 0.2, seed=3)
    want_tr, want_val = train_test_split(
        np.arange(100), test_size=20, random_state=3, stratify=y.numpy()
    )
    assert train.tolist() == sorted(want_tr.tolist()) and val.tolist() == sorted(want_val)
    assert train.dtype == val.dtype == torch.int64


def test_disjoint_complete_stratified_and_seeded():
    y = _labels()
    train, val = stratified_split(y, 0.2, seed=0)
    assert len(val) == 20 and len(train) == 80
    assert sorted(torch.cat([train, val]).tolist()) == list(range(100))
    # class counts in the held-out part: 20 % of 50, 30, 17, 3 (to the nearest row)
    counts = torch.bincount(y[val], minlength=4).tolist()
    assert counts[:2] == [10, 6] and counts[2] in (3, 4) and counts[3] in (0, 1)
    assert sum(counts) == 20
    again = stratified_split(y, 0.2, seed=0)
    assert torch.equal(again[1], val)
    assert not torch.equal(stratified_split(y, 0.2, seed=1)[1], val)
    # a count instead of a fraction; a numpy array of labels
    assert len(stratified_split(y.numpy(), 25, seed=0)[1]) == 25


def test_row_count_gives_a_plain_shuffled_split():
    train, val = stratified_split(10, 0.3, seed=0)
    assert len(val) == 3 and sorted(torch.cat([train, val]).tolist()) == list(range(10))
    want = train_test_split(np.arange(10), test_size=3, random_state=0)[1]
    assert val.tolist() == sorted(want.tolist())


def test_a_class_with_one_row_stays_in_the_training_part():
    y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2])  # class 2 has one row (an image folder's)
    train, val = stratified_split(y, 4, seed=0)
    assert 8 in train.tolist() and sorted(y[val].tolist()) == [0, 0, 1, 1]
    assert sorted(torch.cat([train, val]).tolist()) == list(range(9))


def test_errors_name_the_problem():
    y = _labels()
    with pytest.raises(ValueError, match="no training or no held-out rows"):
        stratified_split(y, 100, seed=0)
    with pytest.raises(ValueError, match="no training or no held-out rows"):
        stratified_split(y, 0.001, seed=0)
    with pytest.raises(ValueError, match="fraction"):
        stratified_split(y, -0.1)
    with pytest.raises(ValueError, match="cannot stratify"):  # 3 rows of class 0, hold out 3
        stratified_split(torch.tensor([0, 0, 0, 1]), 0.75)
    with pytest.raises(ValueError, match="integer class ids"):
        stratified_split(torch.rand(10), 0.5)
