"""batch_all_triplets against explicit loops and PML's TripletMarginMiner(type 'all')."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.losses import ContrastiveMarginLoss, TripletMarginLoss
from contrastkit.losses.functional import contrastive_margin, triplet_margin
from contrastkit.miners import BatchAllMiner, Triplets, all_triplets, batch_all_triplets

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


def ref_batch_all(query, key, qids, kids, *, margin, distance, normalize_embeddings):
    """Every (a, p, n) with ids[a] == ids[p] != ids[n], p ≠ a when key is None; with a margin
    only those with d(a,p) − d(a,n) + margin > 0."""
    Q = query.tolist()
    K = Q if key is None else key.tolist()
    qi = qids.tolist()
    ki = qi if kids is None else kids.tolist()
    out = []
    for a in range(len(Q)):
        for p in range(len(K)):
            if (key is None and p == a) or qi[a] != ki[p]:
                continue
            for n in range(len(K)):
                if qi[a] == ki[n]:
                    continue
                if margin is not None:
                    d_ap = _dist(Q[a], K[p], distance, normalize_embeddings)
                    d_an = _dist(Q[a], K[n], distance, normalize_embeddings)
                    if not d_ap - d_an + margin > 0:
                        continue
                out.append((a, p, n))
    return sorted(out)


def as_sorted(t):
    assert isinstance(t, Triplets)
    assert all(x.dtype == torch.long and x.dim() == 1 for x in t)
    return sorted(zip(*(x.tolist() for x in t)))


def _data(seed=0, n=8, m=7, d=4):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, d, generator=g, dtype=torch.float64)
    k = torch.randn(m, d, generator=g, dtype=torch.float64)
    qids = torch.tensor([0, 1, 2, 0, 1, 2, 0, 3])[:n]  # id 3 has no positive with key=None
    kids = torch.tensor([2, 0, 1, 1, 0, 4, 2])[:m]
    return q, k, qids, kids


MARGINS = {"euclidean": 0.3, "squared_euclidean": 0.5, "cosine": 0.2, "dot": 0.25}


@pytest.mark.parametrize("use_margin", [False, True])
@pytest.mark.parametrize("use_key", [False, True])
@pytest.mark.parametrize("normalize_embeddings", [True, False])
@pytest.mark.parametrize("distance", METRICS)
def test_matches_reference(distance, normalize_embeddings, use_key, use_margin):
    q, k, qids, kids = _data()
    key, key_ids = (k, kids) if use_key else (None, None)
    margin = MARGINS[distance] if use_margin else None
    kw = dict(margin=margin, distance=distance, normalize_embeddings=normalize_embeddings)
    got = as_sorted(batch_all_triplets(q, key, query_ids=qids, key_ids=key_ids, **kw))
    want = ref_batch_all(q, key, qids, key_ids, **kw)
    assert got == want
    assert len(want) > 0


def test_margin_filters_some_but_not_all():
    q, _, qids, _ = _data(1)
    every = batch_all_triplets(q, query_ids=qids)
    filtered = batch_all_triplets(q, query_ids=qids, margin=0.2)
    assert 0 < filtered.anchor.numel() < every.anchor.numel()
    # without a margin: exactly all_triplets
    assert as_sorted(every) == as_sorted(all_triplets(qids))
    # a margin ≥ 2 keeps everything on the unit sphere (d(a,n) − d(a,p) ≤ 2 < margin)
    assert as_sorted(batch_all_triplets(q, query_ids=qids, margin=2.5)) == as_sorted(every)


def test_no_graph_is_created():
    q, k, qids, kids = _data(2)
    q.requires_grad_(True)
    k.requires_grad_(True)
    for t in (
        batch_all_triplets(q, query_ids=qids, margin=0.2),
        batch_all_triplets(q, k, query_ids=qids, key_ids=kids),
        BatchAllMiner(margin=0.1)(q, query_ids=qids),
    ):
        for x in t:
            assert x.grad_fn is None and not x.requires_grad


def test_margin_boundary_is_strict_and_differs_from_pml():
    # 1-D, unnormalised: a = 0, p = 1, n = 1.5 → d(a,p) − d(a,n) + 0.5 = 1 − 1.5 + 0.5 = 0
    # exactly (all values are exact in binary). contrastkit keeps only triplets with a non-zero
    # hinge (> 0); PML's TripletMarginMiner 'all' keeps an − ap ≤ margin (≥ 0), i.e. includes
    # the zero-loss boundary triplet. This is the only difference, at exact equality.
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.miners import TripletMarginMiner

    z = torch.tensor([[0.0], [1.0], [1.5]], dtype=torch.float64)
    ids = torch.tensor([0, 0, 1])
    ck = as_sorted(batch_all_triplets(z, query_ids=ids, margin=0.5, normalize_embeddings=False))
    pml_miner = TripletMarginMiner(
        margin=0.5, type_of_triplets="all", distance=LpDistance(normalize_embeddings=False)
    )
    pml = sorted(zip(*(x.tolist() for x in pml_miner(z, ids))))
    assert ck == [(1, 0, 2)]  # 1 − 0.5 + 0.5 = 1 > 0
    assert pml == [(0, 1, 2), (1, 0, 2)]


def _pml_data(seed):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(14, 5, generator=g, dtype=torch.float64)
    ids = torch.randint(0, 4, (14,), generator=g)
    ref = torch.randn(10, 5, generator=g, dtype=torch.float64)
    ref_ids = torch.randint(0, 5, (10,), generator=g)
    return z, ids, ref, ref_ids


@pytest.mark.parametrize("margin", [0.05, 0.2, 0.5, 1.0])
def test_pml_parity_type_all(margin):
    from pytorch_metric_learning.miners import TripletMarginMiner

    z, ids, ref, ref_ids = _pml_data(3)
    miner = TripletMarginMiner(margin=margin, type_of_triplets="all")
    pml = sorted(zip(*(x.tolist() for x in miner(z, ids))))
    ck = as_sorted(batch_all_triplets(z, query_ids=ids, margin=margin))
    assert ck == pml and len(ck) > 0
    # with reference embeddings (contrastkit's key): no self-pair exclusion on either side
    pml = sorted(zip(*(x.tolist() for x in miner(z, ids, ref, ref_ids))))
    ck = as_sorted(batch_all_triplets(z, ref, query_ids=ids, key_ids=ref_ids, margin=margin))
    assert ck == pml and len(ck) > 0


def test_pml_parity_without_margin_is_all_triplets():
    from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

    z, ids, ref, ref_ids = _pml_data(4)
    pml = sorted(zip(*(x.tolist() for x in lmu.get_all_triplets_indices(ids))))
    assert as_sorted(batch_all_triplets(z, query_ids=ids)) == pml
    pml = sorted(zip(*(x.tolist() for x in lmu.get_all_triplets_indices(ids, ref_ids))))
    assert as_sorted(batch_all_triplets(z, ref, query_ids=ids, key_ids=ref_ids)) == pml


@pytest.mark.parametrize("use_key", [False, True])
def test_mined_triplets_plug_into_losses(use_key):
    q, k, qids, kids = _data(5)
    key, key_ids = (k, kids) if use_key else (None, None)
    m = 0.3
    t = batch_all_triplets(q, key, query_ids=qids, key_ids=key_ids, margin=m)
    # the triplets dropped by the margin filter have zero loss, so 'sum' and 'mean_nonzero'
    # over the mined triplets equal those over all triplets, and every mined term is > 0
    for reduction in ("sum", "mean_nonzero"):
        mined = triplet_margin(
            q, key, query_ids=qids, key_ids=key_ids, triplets=t, margin=m, reduction=reduction
        )
        full = triplet_margin(
            q, key, query_ids=qids, key_ids=key_ids, margin=m, reduction=reduction
        )
        assert abs(float(mined) - float(full)) < 1e-12
    terms = triplet_margin(
        q, key, query_ids=qids, key_ids=key_ids, triplets=t, margin=m, reduction="none"
    )
    assert (terms > 0).all()
    # without a margin the triplets' unique pairs are all pairs of anchors that have both a
    # positive and a negative: contrastive_margin over them equals the all-pairs loss when
    # every anchor has both (drop the anchor whose id has no positive)
    keep = torch.tensor([i for i in range(len(qids)) if int(qids[i]) != 3])
    qq, qi = q[keep], qids[keep]
    t_all = batch_all_triplets(qq, key, query_ids=qi, key_ids=key_ids)
    for reduction in ("mean", "mean_nonzero", "sum"):
        a = contrastive_margin(
            qq, key, query_ids=qi, key_ids=key_ids, pairs=t_all, reduction=reduction
        )
        b = contrastive_margin(qq, key, query_ids=qi, key_ids=key_ids, reduction=reduction)
        assert abs(float(a) - float(b)) < 1e-12


def test_module_forms_equal_functions():
    q, k, qids, kids = _data(6)
    for margin in (None, 0.2):
        miner = BatchAllMiner(margin=margin, distance="cosine", normalize_embeddings=False)
        for key, key_ids in ((None, None), (k, kids)):
            got = miner(q, key, query_ids=qids, key_ids=key_ids)
            want = batch_all_triplets(
                q,
                key,
                query_ids=qids,
                key_ids=key_ids,
                margin=margin,
                distance="cosine",
                normalize_embeddings=False,
            )
            assert all(torch.equal(x, y) for x, y in zip(got, want))
    loss_fn = TripletMarginLoss(0.2, miner=BatchAllMiner(margin=0.2))
    for key, key_ids in ((None, None), (k, kids)):
        t = batch_all_triplets(q, key, query_ids=qids, key_ids=key_ids, margin=0.2)
        want = triplet_margin(q, key, query_ids=qids, key_ids=key_ids, triplets=t, margin=0.2)
        torch.testing.assert_close(
            loss_fn(q, key, query_ids=qids, key_ids=key_ids), want, rtol=0, atol=0
        )
    loss_fn = ContrastiveMarginLoss(0.1, 0.9, miner=BatchAllMiner(margin=0.2))
    t = batch_all_triplets(q, query_ids=qids, margin=0.2)
    want = contrastive_margin(q, query_ids=qids, pairs=t, pos_margin=0.1, neg_margin=0.9)
    torch.testing.assert_close(loss_fn(q, query_ids=qids), want, rtol=0, atol=0)


def test_bf16_inputs_mine_like_float32():
    q, _, qids, _ = _data(7)
    qb = q.to(torch.bfloat16)
    got = as_sorted(batch_all_triplets(qb, query_ids=qids, margin=0.3))
    want = as_sorted(batch_all_triplets(qb.float(), query_ids=qids, margin=0.3))
    assert got == want


def test_bad_inputs_raise_clearly():
    q, k, qids, kids = _data(8)
    with pytest.raises(ValueError, match="same embedding dimension"):
        batch_all_triplets(q, k[:, :2], query_ids=qids, key_ids=kids)
    with pytest.raises(ValueError, match="has 7 ids but query has 8 rows"):
        batch_all_triplets(q, query_ids=qids[:7])
    with pytest.raises(TypeError, match="must hold integer ids"):
        batch_all_triplets(q, query_ids=qids.double())
    bad = q.clone()
    bad[4, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite values"):
        batch_all_triplets(bad, query_ids=qids)
    with pytest.raises(ValueError, match="empty batch"):
        batch_all_triplets(q[:0], query_ids=qids[:0])
    with pytest.raises(ValueError, match=r"distance must be one of .*Did you mean 'euclidean'"):
        batch_all_triplets(q, query_ids=qids, distance="euclidan")
    with pytest.raises(ValueError, match=r"distance must be one of"):
        BatchAllMiner(distance="l1")
