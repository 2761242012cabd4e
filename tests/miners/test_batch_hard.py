"""batch_hard_triplets against an explicit loop and PML's BatchHardMiner."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.losses import ContrastiveMarginLoss, TripletMarginLoss
from contrastkit.losses.functional import contrastive_margin, triplet_margin
from contrastkit.miners import BatchHardMiner, DegenerateBatchWarning, Triplets, batch_hard_triplets

METRICS = ("euclidean", "squared_euclidean", "cosine", "dot")


def _unit(u):
    n = math.sqrt(sum(x * x for x in u))
    return [x / n for x in u]


def _dist(u, v, metric, normalize_embeddings):
    if normalize_embeddings or metric == "cosine":
        u, v = _unit(u), _unit(v)
    dot = sum(a * b for a, b in zip(u, v))
    if metric == "cosine":
        return 1.0 - dot
    if metric == "dot":
        return -dot
    sq = sum((a - b) ** 2 for a, b in zip(u, v))
    return sq if metric == "squared_euclidean" else math.sqrt(sq)


def ref_batch_hard(query, key, qids, kids, *, distance="euclidean", normalize_embeddings=True):
    """Per anchor: (a, farthest positive, closest negative); anchors lacking either skipped.
    Ties go to the lowest index (strict comparisons while scanning upwards)."""
    Q = query.tolist()
    K = Q if key is None else key.tolist()
    qi = qids.tolist()
    ki = qi if kids is None else kids.tolist()
    out = []
    for a in range(len(Q)):
        best_p, best_dp, best_n, best_dn = None, -math.inf, None, math.inf
        for j in range(len(K)):
            if key is None and j == a:
                continue
            d = _dist(Q[a], K[j], distance, normalize_embeddings)
            if qi[a] == ki[j]:
                if best_p is None or d > best_dp:
                    best_p, best_dp = j, d
            elif best_n is None or d < best_dn:
                best_n, best_dn = j, d
        if best_p is not None and best_n is not None:
            out.append((a, best_p, best_n))
    return out


def as_list(t):
    assert isinstance(t, Triplets)
    assert all(x.dtype == torch.long and x.dim() == 1 for x in t)
    return list(zip(*(x.tolist() for x in t)))


def _data(seed=0, n=9, m=7, d=4):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, d, generator=g, dtype=torch.float64)
    k = torch.randn(m, d, generator=g, dtype=torch.float64)
    # id 3 occurs once (no positive with key=None); with the key, id 3 has no key row either
    qids = torch.tensor([0, 1, 2, 0, 1, 2, 0, 3, 1])[:n]
    kids = torch.tensor([2, 0, 1, 1, 0, 4, 2])[:m]
    return q, k, qids, kids


@pytest.mark.parametrize("use_key", [False, True])
@pytest.mark.parametrize("normalize_embeddings", [True, False])
@pytest.mark.parametrize("distance", METRICS)
def test_matches_reference(distance, normalize_embeddings, use_key):
    q, k, qids, kids = _data()
    key, key_ids = (k, kids) if use_key else (None, None)
    kw = dict(distance=distance, normalize_embeddings=normalize_embeddings)
    got = as_list(batch_hard_triplets(q, key, query_ids=qids, key_ids=key_ids, **kw))
    want = ref_batch_hard(q, key, qids, key_ids, **kw)
    # one triplet per anchor, in anchor order; anchor 7 (id 3) has no positive and is skipped
    assert got == want
    assert [a for a, _, _ in want] == [0, 1, 2, 3, 4, 5, 6, 8]


def test_anchors_without_positive_or_negative_are_skipped():
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    # key=None, ids [0, 0, 0, 1]: anchors 0–2 have positives and a negative; 3 has no positive
    t = batch_hard_triplets(z, query_ids=torch.tensor([0, 0, 0, 1]))
    assert t.anchor.tolist() == [0, 1, 2]
    # all ids equal: no negatives anywhere → no triplets (empty long tensors)
    with pytest.warns(DegenerateBatchWarning, match="batch_hard_triplets: .* no negatives"):
        t = batch_hard_triplets(z, query_ids=torch.zeros(4, dtype=torch.long))
    assert all(x.numel() == 0 and x.dtype == torch.long for x in t)
    # with a key: query 1 (id 5) has no positive among the keys (ids 0, 0, 1)
    k = torch.randn(3, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    qi, ki = torch.tensor([0, 5, 1]), torch.tensor([0, 0, 1])
    t = batch_hard_triplets(z[:3], k, query_ids=qi, key_ids=ki)
    assert as_list(t) == ref_batch_hard(z[:3], k, qi, ki)
    assert t.anchor.tolist() == [0, 2]
    # keys all of id 0: query 0 has no negative, query 1 (id 5) no positive → nothing
    t = batch_hard_triplets(
        z[:2], k, query_ids=torch.tensor([0, 5]), key_ids=torch.zeros(3, dtype=torch.long)
    )
    assert all(x.numel() == 0 for x in t)


def test_ties_go_to_lowest_index():
    # keys 1 and 2 are identical negatives, keys 3 and 4 identical positives of anchor 0:
    # their distances to the anchor are computed identically, so they tie exactly.
    a = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    k = torch.tensor(
        [[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]],
        dtype=torch.float64,
    )
    t = batch_hard_triplets(
        a, k, query_ids=torch.tensor([0]), key_ids=torch.tensor([0, 1, 1, 0, 0])
    )
    assert as_list(t) == [(0, 3, 1)]


def test_no_graph_is_created():
    q, k, qids, kids = _data(3)
    q.requires_grad_(True)
    k.requires_grad_(True)
    for t in (
        batch_hard_triplets(q, query_ids=qids),
        batch_hard_triplets(q, k, query_ids=qids, key_ids=kids),
        BatchHardMiner()(q, query_ids=qids),
    ):
        for x in t:
            assert x.grad_fn is None and not x.requires_grad


def _pml_data(seed):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(16, 5, generator=g, dtype=torch.float64)
    ids = torch.randint(0, 4, (16,), generator=g)
    ref = torch.randn(11, 5, generator=g, dtype=torch.float64)
    ref_ids = torch.randint(0, 5, (11,), generator=g)
    return z, ids, ref, ref_ids


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_pml_parity(seed):
    from pytorch_metric_learning.miners import BatchHardMiner as PMLBatchHardMiner

    z, ids, ref, ref_ids = _pml_data(seed)
    pml = PMLBatchHardMiner()
    got = sorted(as_list(batch_hard_triplets(z, query_ids=ids)))
    want = sorted(zip(*(x.tolist() for x in pml(z, ids))))
    assert got == want and len(got) > 0
    got = sorted(as_list(batch_hard_triplets(z, ref, query_ids=ids, key_ids=ref_ids)))
    want = sorted(zip(*(x.tolist() for x in pml(z, ids, ref, ref_ids))))
    assert got == want and len(got) > 0


@pytest.mark.parametrize("use_key", [False, True])
def test_mined_triplets_plug_into_losses(use_key):
    # batch-hard loss: per anchor max(0, max_p d(a,p) − min_n d(a,n) + m), checked by a loop
    q, k, qids, kids = _data(7)
    key, key_ids = (k, kids) if use_key else (None, None)
    t = batch_hard_triplets(q, key, query_ids=qids, key_ids=key_ids)
    Q = q.tolist()
    K = Q if key is None else key.tolist()
    qi = qids.tolist()
    ki = qi if key_ids is None else key_ids.tolist()
    terms = []
    for a in range(len(Q)):
        dp = [
            _dist(Q[a], K[j], "euclidean", True)
            for j in range(len(K))
            if qi[a] == ki[j] and not (key is None and j == a)
        ]
        dn = [_dist(Q[a], K[j], "euclidean", True) for j in range(len(K)) if qi[a] != ki[j]]
        if dp and dn:
            terms.append(max(0.0, max(dp) - min(dn) + 0.3))
    got = triplet_margin(q, key, query_ids=qids, key_ids=key_ids, triplets=t, margin=0.3)
    assert abs(float(got) - sum(terms) / len(terms)) < 1e-10
    got = contrastive_margin(q, key, query_ids=qids, key_ids=key_ids, pairs=t, reduction="sum")
    want = contrastive_margin(
        q,
        key,
        query_ids=qids,
        key_ids=key_ids,
        pairs=(t.anchor, t.positive, t.anchor, t.negative),
        reduction="sum",
    )
    assert abs(float(got) - float(want)) < 1e-12  # one pair of each kind per anchor: no dups


def test_module_forms_equal_functions():
    q, k, qids, kids = _data(8)
    miner = BatchHardMiner(distance="squared_euclidean", normalize_embeddings=False)
    for key, key_ids in ((None, None), (k, kids)):
        got = miner(q, key, query_ids=qids, key_ids=key_ids)
        want = batch_hard_triplets(
            q,
            key,
            query_ids=qids,
            key_ids=key_ids,
            distance="squared_euclidean",
            normalize_embeddings=False,
        )
        assert all(torch.equal(x, y) for x, y in zip(got, want))
        t = batch_hard_triplets(q, key, query_ids=qids, key_ids=key_ids)
        torch.testing.assert_close(
            TripletMarginLoss(0.2, miner=BatchHardMiner())(q, key, query_ids=qids, key_ids=key_ids),
            triplet_margin(q, key, query_ids=qids, key_ids=key_ids, triplets=t, margin=0.2),
            rtol=0,
            atol=0,
        )
        torch.testing.assert_close(
            ContrastiveMarginLoss(0.1, 0.8, miner=BatchHardMiner())(
                q, key, query_ids=qids, key_ids=key_ids
            ),
            contrastive_margin(
                q, key, query_ids=qids, key_ids=key_ids, pairs=t, pos_margin=0.1, neg_margin=0.8
            ),
            rtol=0,
            atol=0,
        )


def test_bf16_inputs_mine_like_float32():
    q, _, qids, _ = _data(9)
    qb = q.to(torch.bfloat16)
    assert as_list(batch_hard_triplets(qb, query_ids=qids)) == as_list(
        batch_hard_triplets(qb.float(), query_ids=qids)
    )


def test_bad_inputs_raise_clearly():
    q, k, qids, kids = _data(10)
    with pytest.raises(ValueError, match="same embedding dimension"):
        batch_hard_triplets(q, k[:, :3], query_ids=qids, key_ids=kids)
    with pytest.raises(ValueError, match="key_ids has 6 ids but key has 7 rows"):
        batch_hard_triplets(q, k, query_ids=qids, key_ids=kids[:6])
    with pytest.raises(TypeError, match="must hold integer ids"):
        BatchHardMiner()(q, query_ids=qids.float())
    bad = q.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite values"):
        batch_hard_triplets(bad, query_ids=qids)
    with pytest.raises(ValueError, match="empty batch"):
        batch_hard_triplets(q[:0], query_ids=qids[:0])
    with pytest.raises(ValueError, match=r"distance must be one of .*Did you mean 'dot'"):
        BatchHardMiner(distance="dott")
