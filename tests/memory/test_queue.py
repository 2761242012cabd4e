"""FeatureQueue: FIFO order, ids, and no false negatives from queued copies of a positive."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.losses import info_nce
from contrastkit.memory import FeatureQueue

F64 = torch.float64


def test_fifo_order_wraps_and_keeps_the_newest_rows():
    q = FeatureQueue(5, 2)
    assert len(q) == 0 and q.negatives() == {"negatives": None, "negative_ids": None}
    q.push(torch.arange(6.0).view(3, 2), torch.tensor([0, 1, 2]))
    f, ids = q.get()
    assert len(q) == 3 and ids.tolist() == [0, 1, 2] and f[:, 0].tolist() == [0, 2, 4]
    q.push(torch.arange(6.0, 12.0).view(3, 2), torch.tensor([3, 4, 5]))
    assert q.is_full and int(q.ptr) == 1
    assert sorted(q.get()[1].tolist()) == [1, 2, 3, 4, 5]  # id 0, the oldest, is gone
    q.push(torch.zeros(7, 2), torch.arange(10, 17))  # more than the capacity: the last 5
    assert sorted(q.get()[1].tolist()) == [12, 13, 14, 15, 16]


def test_rows_without_ids_get_unique_negative_ids():
    q = FeatureQueue(8, 2)
    q.push(torch.randn(3, 2))
    q.push(torch.randn(2, 2))
    ids = q.get()[1].tolist()
    assert ids == [-1, -2, -3, -4, -5]


def test_normalize_and_nearest():
    q = FeatureQueue(4, 2, normalize=True)
    q.push(torch.tensor([[3.0, 0.0], [0.0, 2.0], [-1.0, 0.0]]), torch.tensor([7, 8, 9]))
    assert torch.allclose(q.get()[0].norm(dim=1), torch.ones(3))
    nn = q.nearest(torch.tensor([[0.1, 5.0], [-2.0, 0.3]]))
    assert nn.tolist() == [[0.0, 1.0], [-1.0, 0.0]]


def test_queue_is_in_the_state_dict_and_restores():
    q = FeatureQueue(4, 3)
    q.push(torch.randn(3, 3), torch.tensor([1, 2, 3]))
    r = FeatureQueue(4, 3)
    r.load_state_dict(q.state_dict())
    assert torch.equal(r.get()[0], q.get()[0]) and len(r) == 3 and int(r.ptr) == 3


def _loop_info_nce(q, k, ids, neg, neg_ids, tau, neg_positive):
    """Reference: row i's positives are k[i] (and, if neg_positive, queued rows with its id);
    its candidates all keys plus the queued rows, minus queued rows with its id unless they
    are positives."""
    total = 0.0
    for i in range(q.shape[0]):
        qi = q[i] / q[i].norm()

        def s(v, qi=qi):
            return float(qi @ (v / v.norm())) / tau

        cands = [s(k[j]) for j in range(k.shape[0])]
        pos = [s(k[j]) for j in range(k.shape[0]) if ids[j] == ids[i]]
        for r in range(neg.shape[0]):
            if neg_ids[r] == ids[i]:
                if neg_positive:
                    cands.append(s(neg[r]))
                    pos.append(s(neg[r]))
            else:
                cands.append(s(neg[r]))
        lse = math.log(sum(math.exp(c) for c in cands))
        total += sum(lse - p for p in pos) / len(pos)
    return total / q.shape[0]


@pytest.mark.parametrize("mode", ["exclude", "positive"])
def test_queued_copies_of_a_positive_are_never_negatives(mode):
    """A queue that holds older keys of this batch's own images: with ``negatives()`` those
    copies leave the row's candidates, with ``extend_keys`` they become positives; a copy is
    never counted as a negative."""
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(6, 5, generator=g, dtype=F64), torch.randn(6, 5, generator=g, dtype=F64)
    ids = torch.tensor([10, 11, 12, 13, 14, 15])
    queue = FeatureQueue(16, 5, dtype=F64)
    queue.push(torch.randn(4, 5, generator=g, dtype=F64), torch.tensor([11, 14, 99, 98]))
    queue.push(torch.randn(3, 5, generator=g, dtype=F64), torch.tensor([10, 97, 11]))
    neg, neg_ids = queue.get()
    if mode == "exclude":
        got = info_nce(q, k, query_ids=ids, key_ids=ids, temperature=0.3, **queue.negatives())
    else:
        keys, key_ids = queue.extend_keys(k, ids)
        got = info_nce(q, keys, query_ids=ids, key_ids=key_ids, temperature=0.3)
    ref = _loop_info_nce(q, k, ids.tolist(), neg, neg_ids.tolist(), 0.3, mode == "positive")
    assert abs(float(got) - ref) < 1e-10
    # and it differs from treating the copies as negatives (the bug this prevents)
    naive = info_nce(q, k, query_ids=ids, key_ids=ids, temperature=0.3, negatives=neg)
    assert abs(float(naive) - ref) > 1e-3


def test_bad_inputs_name_the_problem():
    q = FeatureQueue(4, 3)
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        q.push(torch.randn(2, 4))
    with pytest.raises(ValueError, match="ids"):
        q.push(torch.randn(2, 3), torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="NaN"):
        q.push(torch.full((1, 3), float("nan")))
    with pytest.raises(ValueError, match="empty"):
        q.nearest(torch.randn(2, 3))
    with pytest.raises(ValueError, match="size"):
        FeatureQueue(0, 3)


def test_negatives_are_a_snapshot_that_later_pushes_do_not_change():
    q = FeatureQueue(4, 2)
    q.push(torch.ones(3, 2), torch.tensor([1, 2, 3]))
    snap = q.negatives()
    q.push(torch.zeros(4, 2), torch.tensor([7, 8, 9, 10]))
    assert snap["negative_ids"].tolist() == [1, 2, 3] and bool((snap["negatives"] == 1).all())
