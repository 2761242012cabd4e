"""Miners on degenerate batches (issue 17): one class (no negatives) or every label unique (no
positives) gives no triplet, with one :class:`DegenerateBatchWarning` per miner and process.

A batch with valid labels whose triplets are all easy (nothing mined) is not degenerate: the
zero loss is then correct, and nothing is warned. ``conftest.py`` re-arms the warnings.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from contrastkit.miners import (
    BatchAllMiner,
    BatchHardMiner,
    DegenerateBatchWarning,
    DistanceWeightedMiner,
    SemiHardMiner,
    batch_all_triplets,
    batch_hard_triplets,
    distance_weighted_triplets,
    reset_degenerate_warnings,
    semi_hard_triplets,
)

N = 8
MINERS = {
    "batch_all_triplets": lambda z, y: batch_all_triplets(z, query_ids=y),
    "BatchAllMiner": lambda z, y: BatchAllMiner(margin=0.2)(z, query_ids=y),
    "batch_hard_triplets": lambda z, y: batch_hard_triplets(z, query_ids=y),
    "BatchHardMiner": lambda z, y: BatchHardMiner()(z, query_ids=y),
    "semi_hard_triplets": lambda z, y: semi_hard_triplets(z, query_ids=y, margin=2.0),
    "SemiHardMiner": lambda z, y: SemiHardMiner(margin=2.0, select="hardest")(z, query_ids=y),
    "distance_weighted_triplets": lambda z, y: distance_weighted_triplets(
        z, query_ids=y, nonzero_loss_cutoff=2.1, generator=torch.Generator().manual_seed(0)
    ),
    "DistanceWeightedMiner": lambda z, y: DistanceWeightedMiner(nonzero_loss_cutoff=2.1, seed=0)(
        z, query_ids=y
    ),
}
WARNS_AS = {
    "batch_all_triplets": "batch_all_triplets",
    "BatchAllMiner": "batch_all_triplets",
    "batch_hard_triplets": "batch_hard_triplets",
    "BatchHardMiner": "batch_hard_triplets",
    "semi_hard_triplets": "semi_hard_triplets",
    "SemiHardMiner": "semi_hard_triplets",
    "distance_weighted_triplets": "distance_weighted_triplets",
    "DistanceWeightedMiner": "distance_weighted_triplets",
}


def _z(seed: int = 0) -> torch.Tensor:
    return torch.randn(N, 16, generator=torch.Generator().manual_seed(seed))


def _mine(case: str, z: torch.Tensor, y: torch.Tensor):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = MINERS[case](z, y)
    return t, [w for w in caught if issubclass(w.category, DegenerateBatchWarning)]


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        (
            torch.zeros(N, dtype=torch.long),
            "every row of the batch has the same label: no negatives",
        ),
        (torch.arange(N), "no two rows of the batch share a label: no positives"),
    ],
    ids=["one class", "all unique"],
)
@pytest.mark.parametrize("case", sorted(MINERS))
def test_degenerate_labels_warn_once_and_mine_nothing(case, labels, problem):
    t, first = _mine(case, _z(), labels)
    _, second = _mine(case, _z(1), labels)
    assert len(first) == 1 and second == [], [str(w.message) for w in first + second]
    msg = str(first[0].message)
    assert msg.startswith(f"{WARNS_AS[case]}: {problem};"), msg
    assert "the miner returns no triplets" in msg and "self-supervised recipe" in msg
    assert first[0].filename == __file__
    assert all(x.numel() == 0 and x.dtype == torch.long for x in t)


@pytest.mark.parametrize("case", sorted(MINERS))
def test_a_normal_batch_warns_nothing_and_mines_triplets(case):
    t, caught = _mine(case, _z(), torch.arange(4).repeat(2))
    assert caught == [], [str(w.message) for w in caught]
    assert t.anchor.numel() > 0


def test_valid_labels_with_only_easy_triplets_mine_nothing_without_a_warning():
    # two tight, far-apart classes: every negative is beyond any margin, nothing is semi-hard
    z = torch.tensor([[1.0, 0.0], [1.0, 0.01], [-1.0, 0.0], [-1.0, 0.01]])
    y = torch.tensor([0, 0, 1, 1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = semi_hard_triplets(z, query_ids=y, margin=0.1)
        u = BatchAllMiner(margin=0.1)(z, query_ids=y)
    assert t.anchor.numel() == 0 and u.anchor.numel() == 0
    assert not [w for w in caught if issubclass(w.category, DegenerateBatchWarning)]


def test_module_and_function_share_one_warning_and_reset_rearms():
    y = torch.zeros(N, dtype=torch.long)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            batch_hard_triplets(_z(), query_ids=y)
            BatchHardMiner()(_z(), query_ids=y)
            semi_hard_triplets(_z(), query_ids=y)
        reset_degenerate_warnings()
        BatchHardMiner()(_z(), query_ids=y)
    names = [
        str(w.message).split(":")[0]
        for w in caught
        if issubclass(w.category, DegenerateBatchWarning)
    ]
    assert names == ["batch_hard_triplets", "semi_hard_triplets", "batch_hard_triplets"]


def test_a_key_set_of_one_other_class_has_no_positives():
    q, k = _z()[:4], _z(1)[:4]
    with pytest.warns(DegenerateBatchWarning, match="no positives"):
        t = batch_hard_triplets(q, k, query_ids=torch.zeros(4).long(), key_ids=torch.ones(4).long())
    assert t.anchor.numel() == 0
