"""triplet_margin against an explicit triplet loop, analytic cases, gradcheck and PML."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.distances import pairwise_distance
from contrastkit.losses import DegenerateBatchWarning, TripletMarginLoss, triplet_margin
from contrastkit.miners import (
    BatchHardMiner,
    SemiHardMiner,
    batch_hard_triplets,
    semi_hard_triplets,
)
from contrastkit.pairs import Triplets

TOL = 1e-10
METRICS = ("euclidean", "squared_euclidean", "cosine", "dot")
REDUCTIONS = ("mean", "mean_nonzero", "sum", "none")


# ----------------------------------------------------------------------------- reference


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


def _softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def ref_triplet(
    query,
    key,
    qids,
    kids=None,
    *,
    triplets=None,
    margin=0.2,
    distance="euclidean",
    normalize_embeddings=True,
    swap=False,
    soft=False,
    reduction="mean",
):
    """term = max(0, d(a,p) − d(a,n) + margin), softplus if soft;
    swap replaces d(a,n) by min(d(a,n), d(p,n))."""
    Q = query.tolist()
    K = Q if key is None else key.tolist()
    qi = qids.tolist()
    ki = qi if kids is None else kids.tolist()
    if triplets is None:
        T = []
        for a in range(len(Q)):
            for p in range(len(K)):
                if (key is None and p == a) or qi[a] != ki[p]:
                    continue
                for n in range(len(K)):
                    if qi[a] != ki[n]:
                        T.append((a, p, n))
    else:
        T = list(zip(*(t.tolist() for t in triplets)))
    terms = []
    for a, p, n in T:
        d_ap = _dist(Q[a], K[p], distance, normalize_embeddings)
        d_an = _dist(Q[a], K[n], distance, normalize_embeddings)
        if swap:
            d_an = min(d_an, _dist(K[p], K[n], distance, normalize_embeddings))
        v = d_ap - d_an + margin
        terms.append(_softplus(v) if soft else max(0.0, v))
    if reduction == "none":
        return terms
    if reduction == "sum":
        return sum(terms)
    if reduction == "mean":
        return sum(terms) / len(terms) if terms else 0.0
    return sum(terms) / max(1, sum(1 for t in terms if t > 0))


def assert_matches(got, want, tol=TOL):
    got = got.detach()
    if isinstance(want, list):
        assert got.shape == (len(want),)
        for g, w in zip(got.tolist(), want):
            assert abs(g - w) < tol, (g, w)
    else:
        assert got.dim() == 0
        assert abs(float(got) - want) < tol, (float(got), want)


# ----------------------------------------------------------------------------- data


def _data(seed=0, n=7, m=6, d=4, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, d, generator=g, dtype=torch.float64) * scale
    k = torch.randn(m, d, generator=g, dtype=torch.float64) * scale
    qids = torch.tensor([0, 1, 2, 0, 1, 2, 0])[:n]
    kids = torch.tensor([2, 0, 1, 1, 0, 3])[:m]
    return q, k, qids, kids


MARGINS = {"euclidean": 0.3, "squared_euclidean": 0.5, "cosine": 0.2, "dot": 0.25}
VARIANTS = [(False, False), (True, False), (False, True), (True, True)]  # (swap, soft)


# ----------------------------------------------------------------------------- reference tests


@pytest.mark.parametrize("use_key", [False, True])
@pytest.mark.parametrize(("swap", "soft"), VARIANTS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("normalize_embeddings", [True, False])
@pytest.mark.parametrize("distance", METRICS)
def test_all_triplets_match_reference(
    distance, normalize_embeddings, reduction, swap, soft, use_key
):
    # scale 0.7 keeps every violation far below torch.softplus's linear threshold (20)
    q, k, qids, kids = _data(scale=0.7)
    key, key_ids = (k, kids) if use_key else (None, None)
    kw = dict(
        margin=MARGINS[distance],
        distance=distance,
        normalize_embeddings=normalize_embeddings,
        swap=swap,
        soft=soft,
        reduction=reduction,
    )
    got = triplet_margin(q, key, query_ids=qids, key_ids=key_ids, **kw)
    assert got.dtype == torch.float64
    assert_matches(got, ref_triplet(q, key, qids, key_ids, **kw))


@pytest.mark.parametrize("distance", METRICS)
def test_reference_data_has_active_and_inactive_hinges(distance):
    q, _, qids, _ = _data(scale=0.7)
    kw = dict(margin=MARGINS[distance], distance=distance)
    terms = triplet_margin(q, query_ids=qids, reduction="none", **kw)
    assert (terms == 0).any() and (terms > 0).any()
    mean = triplet_margin(q, query_ids=qids, **kw)
    mean_nz = triplet_margin(q, query_ids=qids, reduction="mean_nonzero", **kw)
    assert float(mean_nz) > float(mean) + 1e-3
    # swap changes the result on this data (some d(p, n) < d(a, n))
    swapped = triplet_margin(q, query_ids=qids, reduction="none", swap=True, **kw)
    assert (swapped > terms).any()


@pytest.mark.parametrize("use_key", [False, True])
@pytest.mark.parametrize(("swap", "soft"), VARIANTS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("miner", ["batch_hard", "semi_hard", "hand"])
def test_mined_triplets_match_reference(miner, reduction, swap, soft, use_key):
    q, k, qids, kids = _data(1)
    key, key_ids = (k, kids) if use_key else (None, None)
    if miner == "batch_hard":
        t = batch_hard_triplets(q, key, query_ids=qids, key_ids=key_ids)
    elif miner == "semi_hard":
        t = semi_hard_triplets(q, key, query_ids=qids, key_ids=key_ids, margin=0.8)
    else:  # any indices are accepted, repeated ones included
        t = Triplets(
            torch.tensor([0, 0, 6, 2]), torch.tensor([3, 3, 1, 5]), torch.tensor([1, 1, 2, 0])
        )
    assert t.anchor.numel() > 0
    kw = dict(margin=0.3, swap=swap, soft=soft, reduction=reduction)
    got = triplet_margin(q, key, query_ids=qids, key_ids=key_ids, triplets=t, **kw)
    assert_matches(got, ref_triplet(q, key, qids, key_ids, triplets=t, **kw))
    got2 = triplet_margin(q, key, query_ids=qids, key_ids=key_ids, triplets=tuple(t), **kw)
    torch.testing.assert_close(got2, got, rtol=0, atol=0)


def test_no_triplets_gives_zero_on_the_graph():
    # All ids distinct with key=None: no positive, hence no triplet.
    q, _, _, _ = _data(2)
    q = q.requires_grad_(True)
    ids = torch.arange(7)
    with pytest.warns(DegenerateBatchWarning, match="triplet_margin: .* no positives"):
        for reduction in ("mean", "mean_nonzero", "sum"):
            loss = triplet_margin(q, query_ids=ids, reduction=reduction)
            assert float(loss.detach()) == 0.0
            (grad,) = torch.autograd.grad(loss, q)
            assert torch.equal(grad, torch.zeros_like(q))
    assert triplet_margin(q, query_ids=ids, reduction="none").shape == (0,)
    empty = Triplets(*(torch.empty(0, dtype=torch.long) for _ in range(3)))
    assert float(triplet_margin(q, query_ids=ids, triplets=empty).detach()) == 0.0


# ----------------------------------------------------------------------------- analytic cases


def test_zero_when_negatives_farther_than_positives_by_more_than_margin():
    # Classes near orthogonal axes (jitter 1e-3): after normalisation d(a,p) ≲ 3e-3 and
    # d(a,n) ≈ √2, so d(a,p) − d(a,n) + 0.5 ≈ −0.91 < 0 and every hinge is exactly 0.
    g = torch.Generator().manual_seed(3)
    ids = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 0])
    z = torch.eye(4, dtype=torch.float64)[ids] + 1e-3 * torch.randn(
        9, 4, generator=g, dtype=torch.float64
    )
    for reduction in ("mean", "mean_nonzero", "sum"):
        assert float(triplet_margin(z, query_ids=ids, margin=0.5, reduction=reduction)) == 0.0
    # with swap too: d(p,n) ≈ √2 as well
    assert float(triplet_margin(z, query_ids=ids, margin=0.5, swap=True)) == 0.0


def test_identical_embeddings_give_margin():
    # All rows equal: d(a,p) = d(a,n) = 0 so each term is max(0, margin) = margin and the mean
    # is margin; soft gives softplus(margin) = log(1 + e^margin); 'sum' multiplies by #triplets.
    # (1,1,1,1) normalises exactly to (½,½,½,½), so the distances are exactly 0.
    z = torch.ones(6, 4, dtype=torch.float64)
    ids = torch.tensor([0, 0, 1, 1, 2, 2])
    n_triplets = 6 * 1 * 4  # each anchor: 1 positive, 4 negatives
    for distance in ("euclidean", "squared_euclidean", "cosine"):
        got = triplet_margin(z, query_ids=ids, margin=0.3, distance=distance)
        assert abs(float(got) - 0.3) < TOL
        got = triplet_margin(z, query_ids=ids, margin=0.3, distance=distance, reduction="sum")
        assert abs(float(got) - 0.3 * n_triplets) < TOL
        got = triplet_margin(z, query_ids=ids, margin=0.3, distance=distance, soft=True)
        assert abs(float(got) - math.log1p(math.exp(0.3))) < TOL
    got = triplet_margin(z, query_ids=ids, margin=0.3, reduction="none")
    assert got.shape == (n_triplets,)


def test_soft_margin_zero_closed_form():
    # Hermans et al.: softplus(d(a,p) − d(a,n)) with margin 0. For a = e0, p = e1, n = −e0:
    # d(a,p) = √2, d(a,n) = 2 → log(1 + e^(√2 − 2)).
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    t = Triplets(torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))
    got = triplet_margin(z, query_ids=torch.tensor([0, 0, 1]), triplets=t, margin=0.0, soft=True)
    assert abs(float(got) - math.log1p(math.exp(math.sqrt(2) - 2))) < TOL
    # swap: d(p,n) = √2 < 2 = d(a,n), so the hinge with margin 0.1 becomes √2 − √2 + 0.1
    got = triplet_margin(z, query_ids=torch.tensor([0, 0, 1]), triplets=t, margin=0.1, swap=True)
    assert abs(float(got) - 0.1) < TOL


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("swap", [False, True])
def test_gradcheck_all_hinges_active(swap, soft):
    # margin 2.5 > 2 ≥ d(a,n) − d(a,p) on the unit sphere: every hinge is strictly active.
    q, k, qids, kids = _data(4, n=6, m=5, d=3)
    q = q.requires_grad_(True)
    k = k.requires_grad_(True)
    kw = dict(margin=2.5, swap=swap, soft=soft)
    for reduction in ("mean", "mean_nonzero", "sum"):
        assert torch.autograd.gradcheck(
            lambda a, r=reduction: triplet_margin(a, query_ids=qids, reduction=r, **kw), (q,)
        )
    assert torch.autograd.gradcheck(
        lambda a, b: triplet_margin(a, b, query_ids=qids, key_ids=kids[:5], **kw), (q, k)
    )


@pytest.mark.parametrize("distance", METRICS)
def test_gradcheck_mixed_hinges_away_from_kinks(distance):
    q, _, qids, _ = _data(5, n=6, d=3)
    m = MARGINS[distance]
    dist = pairwise_distance(q, q, distance, normalize_embeddings=True)
    pos = (qids[:6, None] == qids[None, :6]) & ~torch.eye(6, dtype=torch.bool)
    neg = qids[:6, None] != qids[None, :6]
    v = dist[:, :, None] - dist[:, None, :] + m
    v = v[pos[:, :, None] & neg[:, None, :]]
    # the point is away from every kink, and both active and inactive hinges occur
    assert v.abs().min() > 1e-3 and (v > 0).any() and (v < 0).any()
    q = q.requires_grad_(True)
    for reduction in ("mean", "mean_nonzero"):
        assert torch.autograd.gradcheck(
            lambda a, r=reduction: triplet_margin(
                a, query_ids=qids[:6], margin=m, distance=distance, reduction=r
            ),
            (q,),
        )


# ----------------------------------------------------------------------------- PML parity


def _pml_data(seed):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(16, 6, generator=g, dtype=torch.float64)
    ids = torch.randint(0, 4, (16,), generator=g)
    return z, ids


def _value_and_grad(fn, z):
    z = z.clone().requires_grad_(True)
    loss = fn(z)
    (grad,) = torch.autograd.grad(loss, z)
    return loss.detach(), grad


@pytest.mark.parametrize("margin", [0.05, 0.2, 0.5])
def test_pml_parity_all_triplets(margin):
    from pytorch_metric_learning.losses import TripletMarginLoss as PMLTripletMarginLoss

    z, ids = _pml_data(6)
    pml = PMLTripletMarginLoss(margin=margin)
    v_pml, g_pml = _value_and_grad(lambda x: pml(x, ids), z)
    v_ck, g_ck = _value_and_grad(
        lambda x: triplet_margin(x, query_ids=ids, margin=margin, reduction="mean_nonzero"), z
    )
    assert float(v_ck) > 0
    assert abs(float(v_pml) - float(v_ck)) < 1e-5
    torch.testing.assert_close(g_ck, g_pml, rtol=0, atol=1e-5)


@pytest.mark.parametrize("miner", ["batch_hard", "semi_hard"])
def test_pml_parity_mined_triplets(miner):
    from pytorch_metric_learning.losses import TripletMarginLoss as PMLTripletMarginLoss

    z, ids = _pml_data(7)
    if miner == "batch_hard":
        t = batch_hard_triplets(z, query_ids=ids)
    else:
        t = semi_hard_triplets(z, query_ids=ids, margin=0.3)
    assert t.anchor.numel() > 0
    for margin in (0.1, 0.3):
        pml = PMLTripletMarginLoss(margin=margin)
        v_pml, g_pml = _value_and_grad(lambda x, m=pml: m(x, ids, tuple(t)), z)
        v_ck, g_ck = _value_and_grad(
            lambda x, mg=margin: triplet_margin(
                x, query_ids=ids, triplets=t, margin=mg, reduction="mean_nonzero"
            ),
            z,
        )
        assert abs(float(v_pml) - float(v_ck)) < 1e-5
        torch.testing.assert_close(g_ck, g_pml, rtol=0, atol=1e-5)


def test_pml_parity_soft_and_swap():
    # PML's smooth_loss is softplus of the same violation; swap uses min(d(a,n), d(p,n)).
    from pytorch_metric_learning.losses import TripletMarginLoss as PMLTripletMarginLoss

    z, ids = _pml_data(8)
    for swap, soft in ((True, False), (False, True)):
        pml = PMLTripletMarginLoss(margin=0.2, swap=swap, smooth_loss=soft)
        v_pml, g_pml = _value_and_grad(lambda x, m=pml: m(x, ids), z)
        v_ck, g_ck = _value_and_grad(
            lambda x, sw=swap, so=soft: triplet_margin(
                x, query_ids=ids, margin=0.2, swap=sw, soft=so, reduction="mean_nonzero"
            ),
            z,
        )
        assert abs(float(v_pml) - float(v_ck)) < 1e-5
        torch.testing.assert_close(g_ck, g_pml, rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------- module form


def test_module_equals_function():
    q, k, qids, kids = _data(9)
    kw = dict(distance="squared_euclidean", normalize_embeddings=False, swap=True, reduction="sum")
    mod = TripletMarginLoss(0.4, **kw)
    torch.testing.assert_close(
        mod(q, query_ids=qids), triplet_margin(q, query_ids=qids, margin=0.4, **kw), rtol=0, atol=0
    )
    torch.testing.assert_close(
        mod(q, k, query_ids=qids, key_ids=kids),
        triplet_margin(q, k, query_ids=qids, key_ids=kids, margin=0.4, **kw),
        rtol=0,
        atol=0,
    )


@pytest.mark.parametrize("miner_name", ["batch_hard", "semi_hard"])
def test_module_with_miner_equals_function_with_mined_indices(miner_name):
    q, k, qids, kids = _data(10)
    if miner_name == "batch_hard":
        miner, fn = BatchHardMiner(), batch_hard_triplets
        mkw = {}
    else:
        miner, fn = SemiHardMiner(margin=0.6), semi_hard_triplets
        mkw = {"margin": 0.6}
    mod = TripletMarginLoss(0.3, miner=miner, soft=True)
    for key, key_ids in ((None, None), (k, kids)):
        t = fn(q, key, query_ids=qids, key_ids=key_ids, **mkw)
        want = triplet_margin(
            q, key, query_ids=qids, key_ids=key_ids, triplets=t, margin=0.3, soft=True
        )
        got = mod(q, key, query_ids=qids, key_ids=key_ids)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    # explicit triplets override the miner
    t = Triplets(torch.tensor([0]), torch.tensor([3]), torch.tensor([1]))
    torch.testing.assert_close(
        mod(q, query_ids=qids, triplets=t),
        triplet_margin(q, query_ids=qids, triplets=t, margin=0.3, soft=True),
        rtol=0,
        atol=0,
    )


# ----------------------------------------------------------------------------- bf16


@pytest.mark.parametrize(("swap", "soft"), VARIANTS)
@pytest.mark.parametrize("use_key", [False, True])
def test_bf16_inputs_give_float32_close_to_float64(use_key, swap, soft):
    q, k, qids, kids = _data(11)
    qb, kb = q.to(torch.bfloat16), k.to(torch.bfloat16)
    key_b, key_d, key_ids = (kb, kb.double(), kids) if use_key else (None, None, None)
    for reduction in ("mean", "mean_nonzero", "sum"):
        kw = dict(margin=0.3, swap=swap, soft=soft, reduction=reduction)
        got = triplet_margin(qb, key_b, query_ids=qids, key_ids=key_ids, **kw)
        want = triplet_margin(qb.double(), key_d, query_ids=qids, key_ids=key_ids, **kw)
        assert got.dtype == torch.float32
        assert abs(float(got) - float(want)) < 1e-2


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_clearly():
    q, k, qids, kids = _data(12)
    with pytest.raises(ValueError, match="same embedding dimension"):
        triplet_margin(q, k[:, :2], query_ids=qids, key_ids=kids)
    with pytest.raises(ValueError, match="has 8 ids but query has 7 rows"):
        triplet_margin(q, query_ids=torch.arange(8))
    with pytest.raises(ValueError, match="key_ids is required"):
        triplet_margin(q, k, query_ids=qids)
    with pytest.raises(TypeError, match="must hold integer ids"):
        triplet_margin(q, query_ids=qids.float())
    bad = q.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite values"):
        triplet_margin(bad, query_ids=qids)
    with pytest.raises(ValueError, match="empty batch"):
        triplet_margin(q[:0], query_ids=qids[:0])
    with pytest.raises(ValueError, match="must be 2-D"):
        triplet_margin(q[0], query_ids=qids[:1])
    with pytest.raises(ValueError, match=r"Did you mean 'mean_nonzero'\?"):
        triplet_margin(q, query_ids=qids, reduction="mean_non_zero")
    with pytest.raises(ValueError, match=r"Did you mean 'mean'\?"):
        TripletMarginLoss(reduction="meen")
    with pytest.raises(ValueError, match=r"distance must be one of .*Did you mean 'cosine'"):
        triplet_margin(q, query_ids=qids, distance="cosinus")


def test_bad_mined_indices_raise_clearly():
    q, k, qids, kids = _data(13)
    i = torch.tensor
    with pytest.raises(ValueError, match=r"triplets\[2\] has indices outside \[0, 7\)"):
        triplet_margin(q, query_ids=qids, triplets=Triplets(i([0]), i([3]), i([7])))
    with pytest.raises(ValueError, match=r"triplets\[0\] has indices outside \[0, 7\)"):
        triplet_margin(q, query_ids=qids, triplets=Triplets(i([-1]), i([3]), i([1])))
    # anchors index the query (7 rows), positives and negatives the key (6 rows)
    with pytest.raises(ValueError, match=r"triplets\[1\] has indices outside \[0, 6\)"):
        triplet_margin(
            q, k, query_ids=qids, key_ids=kids, triplets=Triplets(i([6]), i([6]), i([0]))
        )
    with pytest.raises(ValueError, match="triplets must be 3 index tensors"):
        triplet_margin(q, query_ids=qids, triplets=(i([0]), i([3]), i([0]), i([1])))
    with pytest.raises(ValueError, match="triplets must be 3 index tensors"):
        triplet_margin(q, query_ids=qids, triplets=(i([0]), i([3])))
    with pytest.raises(TypeError, match="must hold integer indices"):
        triplet_margin(q, query_ids=qids, triplets=(i([0.0]), i([3.0]), i([1.0])))
    with pytest.raises(ValueError, match="equal lengths"):
        triplet_margin(q, query_ids=qids, triplets=(i([0, 1]), i([3, 4]), i([1])))
