"""semi_hard_triplets against explicit loops and PML's TripletMarginMiner('semihard')."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.losses import ContrastiveMarginLoss, TripletMarginLoss
from contrastkit.losses.functional import contrastive_margin, triplet_margin
from contrastkit.miners import SemiHardMiner, Triplets, semi_hard_triplets

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


def ref_semi_hard(
    query, key, qids, kids, *, margin, select="all", distance="euclidean", normalize_embeddings=True
):
    """Semi-hard: d(a,p) < d(a,n) < d(a,p) + margin. 'hardest': per positive pair (a, p) the
    semi-hard negative with the smallest d(a,n) (lowest index on ties); pairs without one
    are dropped."""
    Q = query.tolist()
    K = Q if key is None else key.tolist()
    qi = qids.tolist()
    ki = qi if kids is None else kids.tolist()
    out = []
    for a in range(len(Q)):
        for p in range(len(K)):
            if (key is None and p == a) or qi[a] != ki[p]:
                continue
            d_ap = _dist(Q[a], K[p], distance, normalize_embeddings)
            semi = []
            for n in range(len(K)):
                if qi[a] == ki[n]:
                    continue
                d_an = _dist(Q[a], K[n], distance, normalize_embeddings)
                if d_ap < d_an < d_ap + margin:
                    semi.append((d_an, n))
            if select == "all":
                out.extend((a, p, n) for _, n in semi)
            elif semi:
                best_d, best_n = semi[0]
                for d, n in semi[1:]:
                    if d < best_d:
                        best_d, best_n = d, n
                out.append((a, p, best_n))
    return out


def as_list(t):
    assert isinstance(t, Triplets)
    assert all(x.dtype == torch.long and x.dim() == 1 for x in t)
    return list(zip(*(x.tolist() for x in t)))


def _data(seed=0, n=9, m=8, d=4):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, d, generator=g, dtype=torch.float64)
    k = torch.randn(m, d, generator=g, dtype=torch.float64)
    qids = torch.tensor([0, 1, 2, 0, 1, 2, 0, 3, 1])[:n]
    kids = torch.tensor([2, 0, 1, 1, 0, 4, 2, 0])[:m]
    return q, k, qids, kids


MARGINS = {"euclidean": 0.4, "squared_euclidean": 0.6, "cosine": 0.3, "dot": 0.3}


@pytest.mark.parametrize("select", ["all", "hardest"])
@pytest.mark.parametrize("use_key", [False, True])
@pytest.mark.parametrize("normalize_embeddings", [True, False])
@pytest.mark.parametrize("distance", METRICS)
def test_matches_reference(distance, normalize_embeddings, use_key, select):
    q, k, qids, kids = _data()
    key, key_ids = (k, kids) if use_key else (None, None)
    kw = dict(
        margin=MARGINS[distance],
        select=select,
        distance=distance,
        normalize_embeddings=normalize_embeddings,
    )
    got = sorted(as_list(semi_hard_triplets(q, key, query_ids=qids, key_ids=key_ids, **kw)))
    want = sorted(ref_semi_hard(q, key, qids, key_ids, **kw))
    assert got == want
    assert len(want) > 0


def test_hardest_picks_closest_among_several():
    # guards the 'hardest' reference test: some positive pairs have ≥ 2 semi-hard negatives,
    # so 'hardest' really chooses
    q, _, qids, _ = _data()
    every = as_list(semi_hard_triplets(q, query_ids=qids, margin=0.4))
    hardest = as_list(semi_hard_triplets(q, query_ids=qids, margin=0.4, select="hardest"))
    pairs = [(a, p) for a, p, _ in every]
    assert len(set(pairs)) == len(hardest) < len(every)
    assert set(hardest) <= set(every)


@pytest.mark.parametrize("margin", [0.05, 0.2, 1.0])
def test_margin_controls_window(margin):
    q, k, qids, kids = _data(1)
    for key, key_ids in ((None, None), (k, kids)):
        got = sorted(
            as_list(semi_hard_triplets(q, key, query_ids=qids, key_ids=key_ids, margin=margin))
        )
        assert got == sorted(ref_semi_hard(q, key, qids, key_ids, margin=margin))


def test_boundaries_are_strict_and_upper_one_differs_from_pml():
    # 1-D, unnormalised, exact in binary. Anchor 0 at 0, positive 1 at 1, negatives at
    # 1 (d_an = d_ap: not semi-hard on either side), 1.5 (d_an = d_ap + 0.5 = upper boundary)
    # and 1.25 (strictly inside). contrastkit: d_ap < d_an < d_ap + margin (both strict),
    # PML 'semihard': 0 < d_an − d_ap ≤ margin (upper bound inclusive). So PML also returns
    # the boundary negative (index 3); that is the one semantic difference.
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.miners import TripletMarginMiner

    z = torch.tensor([[0.0], [1.0], [1.0], [1.5], [1.25]], dtype=torch.float64)
    ids = torch.tensor([0, 0, 1, 1, 1])
    t = semi_hard_triplets(z, query_ids=ids, margin=0.5, normalize_embeddings=False)
    ck = sorted(x for x in as_list(t) if x[:2] == (0, 1))
    assert ck == [(0, 1, 4)]
    pml_miner = TripletMarginMiner(
        margin=0.5, type_of_triplets="semihard", distance=LpDistance(normalize_embeddings=False)
    )
    pml = sorted(x for x in zip(*(y.tolist() for y in pml_miner(z, ids))) if x[:2] == (0, 1))
    assert pml == [(0, 1, 3), (0, 1, 4)]


def test_no_graph_is_created():
    q, k, qids, kids = _data(2)
    q.requires_grad_(True)
    k.requires_grad_(True)
    for t in (
        semi_hard_triplets(q, query_ids=qids, margin=0.5),
        semi_hard_triplets(q, k, query_ids=qids, key_ids=kids, select="hardest"),
        SemiHardMiner(margin=0.5)(q, query_ids=qids),
    ):
        for x in t:
            assert x.grad_fn is None and not x.requires_grad


def _pml_data(seed):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(16, 5, generator=g, dtype=torch.float64)
    ids = torch.randint(0, 4, (16,), generator=g)
    ref = torch.randn(12, 5, generator=g, dtype=torch.float64)
    ref_ids = torch.randint(0, 5, (12,), generator=g)
    return z, ids, ref, ref_ids


@pytest.mark.parametrize("margin", [0.05, 0.2, 0.5])
def test_pml_parity_semihard(margin):
    from pytorch_metric_learning.miners import TripletMarginMiner

    z, ids, ref, ref_ids = _pml_data(3)
    miner = TripletMarginMiner(margin=margin, type_of_triplets="semihard")
    got = sorted(as_list(semi_hard_triplets(z, query_ids=ids, margin=margin, select="all")))
    want = sorted(zip(*(x.tolist() for x in miner(z, ids))))
    assert got == want and len(got) > 0
    got = sorted(as_list(semi_hard_triplets(z, ref, query_ids=ids, key_ids=ref_ids, margin=margin)))
    want = sorted(zip(*(x.tolist() for x in miner(z, ids, ref, ref_ids))))
    assert got == want and len(got) > 0


@pytest.mark.parametrize("select", ["all", "hardest"])
@pytest.mark.parametrize("use_key", [False, True])
def test_mined_triplets_plug_into_losses(use_key, select):
    # every semi-hard triplet violates the margin it was mined for: 0 < term < margin
    q, k, qids, kids = _data(4)
    key, key_ids = (k, kids) if use_key else (None, None)
    m = 0.4
    t = semi_hard_triplets(q, key, query_ids=qids, key_ids=key_ids, margin=m, select=select)
    terms = triplet_margin(
        q, key, query_ids=qids, key_ids=key_ids, triplets=t, margin=m, reduction="none"
    )
    assert terms.numel() == t.anchor.numel() > 0
    assert ((terms > 0) & (terms < m)).all()
    want = []
    Q = q.tolist()
    K = Q if key is None else key.tolist()
    for a, p, n in as_list(t):
        want.append(_dist(Q[a], K[p], "euclidean", True) - _dist(Q[a], K[n], "euclidean", True) + m)
    assert max(abs(x - y) for x, y in zip(terms.tolist(), want)) < 1e-10
    # contrastive loss on their unique pairs
    got = contrastive_margin(q, key, query_ids=qids, key_ids=key_ids, pairs=t, reduction="sum")
    ap = sorted(set(zip(t.anchor.tolist(), t.positive.tolist())))
    an = sorted(set(zip(t.anchor.tolist(), t.negative.tolist())))
    ref = sum(_dist(Q[a], K[p], "euclidean", True) for a, p in ap)
    ref += sum(max(0.0, 1.0 - _dist(Q[a], K[n], "euclidean", True)) for a, n in an)
    assert abs(float(got) - ref) < 1e-10


def test_module_forms_equal_functions():
    q, k, qids, kids = _data(5)
    for select in ("all", "hardest"):
        miner = SemiHardMiner(margin=0.5, select=select, distance="cosine")
        for key, key_ids in ((None, None), (k, kids)):
            got = miner(q, key, query_ids=qids, key_ids=key_ids)
            want = semi_hard_triplets(
                q,
                key,
                query_ids=qids,
                key_ids=key_ids,
                margin=0.5,
                select=select,
                distance="cosine",
            )
            assert all(torch.equal(x, y) for x, y in zip(got, want))
    for key, key_ids in ((None, None), (k, kids)):
        t = semi_hard_triplets(
            q, key, query_ids=qids, key_ids=key_ids, margin=0.3, select="hardest"
        )
        torch.testing.assert_close(
            TripletMarginLoss(0.3, miner=SemiHardMiner(0.3, select="hardest"))(
                q, key, query_ids=qids, key_ids=key_ids
            ),
            triplet_margin(q, key, query_ids=qids, key_ids=key_ids, triplets=t, margin=0.3),
            rtol=0,
            atol=0,
        )
        torch.testing.assert_close(
            ContrastiveMarginLoss(0.1, 0.9, miner=SemiHardMiner(0.3, select="hardest"))(
                q, key, query_ids=qids, key_ids=key_ids
            ),
            contrastive_margin(
                q, key, query_ids=qids, key_ids=key_ids, pairs=t, pos_margin=0.1, neg_margin=0.9
            ),
            rtol=0,
            atol=0,
        )


def test_bf16_inputs_mine_like_float32():
    q, _, qids, _ = _data(6)
    qb = q.to(torch.bfloat16)
    for select in ("all", "hardest"):
        got = as_list(semi_hard_triplets(qb, query_ids=qids, margin=0.4, select=select))
        want = as_list(semi_hard_triplets(qb.float(), query_ids=qids, margin=0.4, select=select))
        assert got == want


def test_bad_inputs_raise_clearly():
    q, k, qids, kids = _data(7)
    with pytest.raises(ValueError, match=r"select must be one of .*Did you mean 'hardest'"):
        semi_hard_triplets(q, query_ids=qids, select="hardst")
    with pytest.raises(ValueError, match=r"select must be one of"):
        SemiHardMiner(select="easy")
    with pytest.raises(ValueError, match="same embedding dimension"):
        semi_hard_triplets(q, k[:, :3], query_ids=qids, key_ids=kids)
    with pytest.raises(ValueError, match="has 3 ids but query has 9 rows"):
        semi_hard_triplets(q, query_ids=qids[:3])
    with pytest.raises(TypeError, match="must hold integer ids"):
        semi_hard_triplets(q, query_ids=qids.double())
    bad = q.clone()
    bad[8, 3] = float("nan")
    with pytest.raises(ValueError, match="non-finite values"):
        semi_hard_triplets(bad, query_ids=qids)
    with pytest.raises(ValueError, match="empty batch"):
        semi_hard_triplets(q[:0], query_ids=qids[:0])
    with pytest.raises(ValueError, match=r"distance must be one of"):
        semi_hard_triplets(q, query_ids=qids, distance="hamming")
