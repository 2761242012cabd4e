"""contrastive_margin against an explicit pair loop, analytic cases, gradcheck and PML."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.losses import ContrastiveMarginLoss, DegenerateBatchWarning, contrastive_margin
from contrastkit.miners import (
    BatchHardMiner,
    batch_hard_triplets,
    semi_hard_triplets,
)
from contrastkit.pairs import Pairs, Triplets, to_pairs

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


def _ref_pairs(qids, kids, self_excluded, pairs):
    """Positive and negative (row, col) pairs, in the order the loss lists them."""
    if pairs is None:
        pos, neg = [], []
        for i, qi in enumerate(qids):
            for j, kj in enumerate(kids):
                if self_excluded and i == j:
                    continue
                (pos if qi == kj else neg).append((i, j))
        return pos, neg
    lists = [t.tolist() for t in pairs]
    if len(lists) == 3:  # triplets: their unique a–p and a–n pairs, sorted
        a, p, n = lists
        return sorted(set(zip(a, p))), sorted(set(zip(a, n)))
    a1, p, a2, n = lists
    return list(zip(a1, p)), list(zip(a2, n))


def _mean(xs):
    return sum(xs) / len(xs) if xs else 0.0


def _reduce(pos_terms, neg_terms, reduction):
    if reduction == "none":
        return pos_terms + neg_terms
    if reduction == "sum":
        return sum(pos_terms) + sum(neg_terms)
    if reduction == "mean":
        return _mean(pos_terms) + _mean(neg_terms)
    # mean_nonzero: each part averaged over its strictly positive terms (0 if none)
    out = 0.0
    for terms in (pos_terms, neg_terms):
        nz = sum(1 for t in terms if t > 0)
        out += sum(terms) / max(nz, 1)
    return out


def ref_contrastive(
    query,
    key,
    qids,
    kids=None,
    *,
    pairs=None,
    pos_margin=0.0,
    neg_margin=1.0,
    distance="euclidean",
    normalize_embeddings=True,
    power=1.0,
    reduction="mean",
):
    """pos term = max(0, d(a,p) − m+)^power, neg term = max(0, m− − d(a,n))^power."""
    Q = query.tolist()
    K = Q if key is None else key.tolist()
    qi = qids.tolist()
    ki = qi if kids is None else kids.tolist()
    pos, neg = _ref_pairs(qi, ki, key is None, pairs)
    pos_terms = [
        max(0.0, _dist(Q[i], K[j], distance, normalize_embeddings) - pos_margin) ** power
        for i, j in pos
    ]
    neg_terms = [
        max(0.0, neg_margin - _dist(Q[i], K[j], distance, normalize_embeddings)) ** power
        for i, j in neg
    ]
    return _reduce(pos_terms, neg_terms, reduction)


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


def _data(seed=0, n=7, m=6, d=4):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, d, generator=g, dtype=torch.float64)
    k = torch.randn(m, d, generator=g, dtype=torch.float64)
    qids = torch.tensor([0, 1, 2, 0, 1, 2, 0])[:n]
    kids = torch.tensor([2, 0, 1, 1, 0, 3])[:m]
    return q, k, qids, kids


MARGINS = {  # (pos_margin, neg_margin) giving a mix of active and inactive hinges
    "euclidean": (1.2, 1.3),
    "squared_euclidean": (1.5, 2.0),
    "cosine": (0.7, 0.9),
    "dot": (-0.3, 0.0),
}


# ----------------------------------------------------------------------------- reference tests


@pytest.mark.parametrize("use_key", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("normalize_embeddings", [True, False])
@pytest.mark.parametrize("distance", METRICS)
def test_all_pairs_match_reference(distance, normalize_embeddings, reduction, use_key):
    q, k, qids, kids = _data()
    pm, nm = MARGINS[distance]
    key, key_ids = (k, kids) if use_key else (None, None)
    got = contrastive_margin(
        q,
        key,
        query_ids=qids,
        key_ids=key_ids,
        pos_margin=pm,
        neg_margin=nm,
        distance=distance,
        normalize_embeddings=normalize_embeddings,
        reduction=reduction,
    )
    want = ref_contrastive(
        q,
        key,
        qids,
        key_ids,
        pos_margin=pm,
        neg_margin=nm,
        distance=distance,
        normalize_embeddings=normalize_embeddings,
        reduction=reduction,
    )
    assert got.dtype == torch.float64
    assert_matches(got, want)


@pytest.mark.parametrize("distance", METRICS)
def test_reference_data_has_active_and_inactive_hinges(distance):
    # Otherwise 'mean' and 'mean_nonzero' could not be told apart by the tests above.
    q, _, qids, _ = _data()
    pm, nm = MARGINS[distance]
    kw = dict(pos_margin=pm, neg_margin=nm, distance=distance)
    terms = contrastive_margin(q, query_ids=qids, reduction="none", **kw)
    n_pos = int((qids[:, None] == qids[None, :]).sum()) - len(qids)
    for part in (terms[:n_pos], terms[n_pos:]):
        assert (part == 0).any() and (part > 0).any()
    mean = contrastive_margin(q, query_ids=qids, **kw)
    mean_nz = contrastive_margin(q, query_ids=qids, reduction="mean_nonzero", **kw)
    assert float(mean_nz) > float(mean) + 1e-3


@pytest.mark.parametrize("use_key", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("distance", ["euclidean", "squared_euclidean"])
def test_power_two_matches_reference(distance, reduction, use_key):
    q, k, qids, kids = _data(1)
    key, key_ids = (k, kids) if use_key else (None, None)
    kw = dict(pos_margin=0.2, neg_margin=1.4, distance=distance, power=2.0, reduction=reduction)
    got = contrastive_margin(q, key, query_ids=qids, key_ids=key_ids, **kw)
    assert_matches(got, ref_contrastive(q, key, qids, key_ids, **kw))


def test_fractional_power_matches_reference_and_has_finite_gradient():
    q, _, qids, _ = _data(2)
    q = q.requires_grad_(True)
    kw = dict(pos_margin=0.5, neg_margin=0.9, power=0.5)
    got = contrastive_margin(q, query_ids=qids, **kw)
    assert_matches(got, ref_contrastive(q.detach(), None, qids, **kw))
    got.backward()
    assert torch.isfinite(q.grad).all()


def test_no_positive_pairs_mean_is_negative_part_only():
    # All ids distinct and key=None: no positive pair; the positive part contributes 0.
    q, _, _, _ = _data(3)
    ids = torch.arange(7)
    with pytest.warns(DegenerateBatchWarning, match="contrastive_margin: .* no positives"):
        for reduction in REDUCTIONS:
            got = contrastive_margin(q, query_ids=ids, neg_margin=1.3, reduction=reduction)
            want = ref_contrastive(q, None, ids, neg_margin=1.3, reduction=reduction)
            assert_matches(got, want)


# ----------------------------------------------------------------------------- mined indices


def _some_pairs(qids, kids, self_excluded, seed):
    """A random subset of the positive and the negative pairs (with a repeated pair)."""
    pos, neg = _ref_pairs(qids.tolist(), kids.tolist(), self_excluded, None)
    g = torch.Generator().manual_seed(seed)
    ip = torch.randperm(len(pos), generator=g)[: max(1, len(pos) // 2)].tolist()
    ineg = torch.randperm(len(neg), generator=g)[: max(1, len(neg) // 3)].tolist()
    ip.append(ip[0])  # duplicates are kept as given
    P = [pos[i] for i in ip]
    N = [neg[i] for i in ineg]
    return Pairs(
        torch.tensor([a for a, _ in P]),
        torch.tensor([b for _, b in P]),
        torch.tensor([a for a, _ in N]),
        torch.tensor([b for _, b in N]),
    )


@pytest.mark.parametrize("use_key", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("distance", METRICS)
def test_mined_pairs_match_reference(distance, reduction, use_key):
    q, k, qids, kids = _data(4)
    key, key_ids = (k, kids) if use_key else (None, None)
    pairs = _some_pairs(qids, kids if use_key else qids, not use_key, seed=5)
    pm, nm = MARGINS[distance]
    kw = dict(pos_margin=pm, neg_margin=nm, distance=distance, reduction=reduction)
    got = contrastive_margin(q, key, query_ids=qids, key_ids=key_ids, pairs=pairs, **kw)
    assert_matches(got, ref_contrastive(q, key, qids, key_ids, pairs=pairs, **kw))
    # a plain tuple of 4 tensors is accepted too
    got2 = contrastive_margin(q, key, query_ids=qids, key_ids=key_ids, pairs=tuple(pairs), **kw)
    torch.testing.assert_close(got2, got, rtol=0, atol=0)


@pytest.mark.parametrize("use_key", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("miner", ["batch_hard", "semi_hard"])
def test_mined_triplets_match_reference(miner, reduction, use_key):
    q, k, qids, kids = _data(6)
    key, key_ids = (k, kids) if use_key else (None, None)
    if miner == "batch_hard":
        t = batch_hard_triplets(q, key, query_ids=qids, key_ids=key_ids)
    else:
        t = semi_hard_triplets(q, key, query_ids=qids, key_ids=key_ids, margin=0.8)
    assert isinstance(t, Triplets) and t.anchor.numel() > 0
    kw = dict(pos_margin=0.3, neg_margin=1.2, reduction=reduction)
    got = contrastive_margin(q, key, query_ids=qids, key_ids=key_ids, pairs=t, **kw)
    assert_matches(got, ref_contrastive(q, key, qids, key_ids, pairs=t, **kw))
    # triplets are reduced to their unique pairs: same as passing to_pairs(t)
    via_pairs = contrastive_margin(q, key, query_ids=qids, key_ids=key_ids, pairs=to_pairs(t), **kw)
    torch.testing.assert_close(got, via_pairs, rtol=0, atol=0)


def test_triplets_with_repeated_pairs_count_each_pair_once():
    # Two triplets share the a–p pair (0, 3): that pair counts once in the positive part.
    q, _, qids, _ = _data(7)
    t = Triplets(torch.tensor([0, 0, 1]), torch.tensor([3, 3, 4]), torch.tensor([1, 2, 0]))
    got = contrastive_margin(q, query_ids=qids, pairs=t, pos_margin=0.0, reduction="none")
    assert got.shape == (2 + 3,)
    d = contrastive_margin(q, query_ids=qids, pairs=t, pos_margin=0.0, reduction="sum")
    assert_matches(d, ref_contrastive(q, None, qids, pairs=t, reduction="sum"))


# ----------------------------------------------------------------------------- analytic cases


def test_well_separated_clusters_give_zero():
    # Classes sit near orthogonal axes (jitter 1e-3): after normalisation positives are within
    # ~1e-3 < pos_margin=0.1 and negatives at ≈ √2 > neg_margin=1.0, so every hinge is 0.
    g = torch.Generator().manual_seed(8)
    centers = torch.eye(4, dtype=torch.float64)
    ids = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    z = centers[ids] + 1e-3 * torch.randn(8, 4, generator=g, dtype=torch.float64)
    for reduction in ("mean", "mean_nonzero", "sum"):
        got = contrastive_margin(
            z, query_ids=ids, pos_margin=0.1, neg_margin=1.0, reduction=reduction
        )
        assert float(got) == 0.0
    assert torch.equal(
        contrastive_margin(z, query_ids=ids, pos_margin=0.1, neg_margin=1.0, reduction="none"),
        torch.zeros(8 + 48, dtype=torch.float64),
    )


def test_identical_embeddings_give_neg_margin():
    # All rows equal: every distance is 0, so pos terms are max(0, 0 − m+) = 0 and neg terms
    # max(0, m− − 0) = m−; 'mean' = 0 + m−, 'sum' = (#neg pairs)·m−, power 2 gives m−².
    # (1,1,1,1) normalises to (½,½,½,½) exactly, so the distances are exactly 0.
    z = torch.ones(6, 4, dtype=torch.float64)
    ids = torch.tensor([0, 0, 1, 1, 2, 2])
    n_neg = 6 * 6 - 6 - 6  # off-diagonal pairs minus the 6 ordered positive pairs
    got = contrastive_margin(z, query_ids=ids, pos_margin=0.2, neg_margin=0.7)
    assert abs(float(got) - 0.7) < TOL
    got = contrastive_margin(z, query_ids=ids, neg_margin=0.7, reduction="sum")
    assert abs(float(got) - n_neg * 0.7) < TOL
    got = contrastive_margin(z, query_ids=ids, neg_margin=0.7, power=2.0)
    assert abs(float(got) - 0.49) < TOL


def test_two_points_closed_form():
    # e0 and e1 with the same id: d = √2, pos term = √2 − m+; with different ids the neg
    # term is max(0, m− − √2) = 2 − √2 for m− = 2.
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    with pytest.warns(DegenerateBatchWarning, match="contrastive_margin: .* no negatives"):
        got = contrastive_margin(z, query_ids=torch.tensor([0, 0]), pos_margin=0.25)
    assert abs(float(got) - (math.sqrt(2) - 0.25)) < TOL
    with pytest.warns(DegenerateBatchWarning, match="contrastive_margin: .* no positives"):
        got = contrastive_margin(z, query_ids=torch.tensor([0, 1]), neg_margin=2.0)
    assert abs(float(got) - (2.0 - math.sqrt(2))) < TOL
    # Hadsell et al. (power 2, m+ = 0) without their factor ½: the positive term is d² = 2
    got = contrastive_margin(z, query_ids=torch.tensor([0, 0]), power=2.0)
    assert abs(float(got) - 2.0) < TOL


# ----------------------------------------------------------------------------- gradients


def test_gradcheck_all_hinges_active():
    # pos_margin = 0 with all distances > 0 and neg_margin = 2.5 > 2 ≥ any distance on the
    # unit sphere: every hinge is strictly active, so the loss is smooth at this point.
    q, k, qids, kids = _data(9, n=6, m=5, d=3)
    q = q.requires_grad_(True)
    k = k.requires_grad_(True)
    for reduction in ("mean", "mean_nonzero", "sum"):
        assert torch.autograd.gradcheck(
            lambda a, r=reduction: contrastive_margin(
                a, query_ids=qids, neg_margin=2.5, reduction=r, power=2.0
            ),
            (q,),
        )
        assert torch.autograd.gradcheck(
            lambda a, b, r=reduction: contrastive_margin(
                a, b, query_ids=qids, key_ids=kids[:5], neg_margin=2.5, reduction=r
            ),
            (q, k),
        )


@pytest.mark.parametrize("distance", METRICS)
def test_gradcheck_mixed_hinges_away_from_kinks(distance):
    q, _, qids, _ = _data(10, n=6, d=3)
    pm, nm = MARGINS[distance]
    from contrastkit.distances import pairwise_distance

    dist = pairwise_distance(q, q, distance, normalize_embeddings=True)
    off = ~torch.eye(6, dtype=torch.bool)
    # the point is away from every kink: no distance within 1e-3 of a margin
    assert ((dist[off] - pm).abs().min() > 1e-3) and ((dist[off] - nm).abs().min() > 1e-3)
    q = q.requires_grad_(True)
    for reduction in ("mean", "mean_nonzero"):
        assert torch.autograd.gradcheck(
            lambda a, r=reduction: contrastive_margin(
                a,
                query_ids=qids,
                pos_margin=pm,
                neg_margin=nm,
                distance=distance,
                reduction=r,
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


@pytest.mark.parametrize("margins", [(0.0, 1.0), (0.2, 0.9), (0.5, 1.3)])
def test_pml_parity_all_pairs(margins):
    from pytorch_metric_learning.losses import ContrastiveLoss

    pm, nm = margins
    z, ids = _pml_data(11)
    pml = ContrastiveLoss(pos_margin=pm, neg_margin=nm)
    v_pml, g_pml = _value_and_grad(lambda x: pml(x, ids), z)
    v_ck, g_ck = _value_and_grad(
        lambda x: contrastive_margin(
            x, query_ids=ids, pos_margin=pm, neg_margin=nm, reduction="mean_nonzero"
        ),
        z,
    )
    assert abs(float(v_pml) - float(v_ck)) < 1e-5
    torch.testing.assert_close(g_ck, g_pml, rtol=0, atol=1e-5)
    assert float(v_ck) > 0


def test_pml_parity_mined_pairs_and_triplets():
    # PML turns triplets (a, p, n) into the pairs (a, p) and (a, n) *without* removing
    # duplicates, while contrastkit uses each unique pair once. So the parity check for
    # triplets passes contrastkit's unique pairs (to_pairs) to PML as a 4-tuple.
    from pytorch_metric_learning.losses import ContrastiveLoss

    z, ids = _pml_data(12)
    pml = ContrastiveLoss(pos_margin=0.1, neg_margin=0.9)
    pairs = _some_pairs(ids, ids, True, seed=13)
    t = semi_hard_triplets(z, query_ids=ids, margin=0.6)
    assert t.anchor.numel() > 0
    for mined in (pairs, t):
        v_pml, g_pml = _value_and_grad(lambda x, m=mined: pml(x, ids, tuple(to_pairs(m))), z)
        v_ck, g_ck = _value_and_grad(
            lambda x, m=mined: contrastive_margin(
                x,
                query_ids=ids,
                pairs=m,
                pos_margin=0.1,
                neg_margin=0.9,
                reduction="mean_nonzero",
            ),
            z,
        )
        assert abs(float(v_pml) - float(v_ck)) < 1e-5
        torch.testing.assert_close(g_ck, g_pml, rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------- module form


def test_module_equals_function():
    q, k, qids, kids = _data(14)
    kw = dict(distance="cosine", normalize_embeddings=False, power=2.0, reduction="sum")
    mod = ContrastiveMarginLoss(0.2, 0.8, **kw)
    assert_matches(
        mod(q, query_ids=qids),
        float(contrastive_margin(q, query_ids=qids, pos_margin=0.2, neg_margin=0.8, **kw)),
    )
    got = mod(q, k, query_ids=qids, key_ids=kids)
    want = contrastive_margin(
        q, k, query_ids=qids, key_ids=kids, pos_margin=0.2, neg_margin=0.8, **kw
    )
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_module_with_miner_equals_function_with_mined_indices():
    q, k, qids, kids = _data(15)
    mod = ContrastiveMarginLoss(0.1, 0.9, miner=BatchHardMiner())
    for key, key_ids in ((None, None), (k, kids)):
        t = batch_hard_triplets(q, key, query_ids=qids, key_ids=key_ids)
        want = contrastive_margin(
            q, key, query_ids=qids, key_ids=key_ids, pairs=t, pos_margin=0.1, neg_margin=0.9
        )
        got = mod(q, key, query_ids=qids, key_ids=key_ids)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    # explicitly passed pairs take precedence over the miner
    pairs = _some_pairs(qids, qids, True, seed=16)
    torch.testing.assert_close(
        mod(q, query_ids=qids, pairs=pairs),
        contrastive_margin(q, query_ids=qids, pairs=pairs, pos_margin=0.1, neg_margin=0.9),
        rtol=0,
        atol=0,
    )


# ----------------------------------------------------------------------------- bf16


@pytest.mark.parametrize("use_key", [False, True])
def test_bf16_inputs_give_float32_close_to_float64(use_key):
    q, k, qids, kids = _data(17)
    qb, kb = q.to(torch.bfloat16), k.to(torch.bfloat16)
    key_b, key_d, key_ids = (kb, kb.double(), kids) if use_key else (None, None, None)
    for reduction in ("mean", "mean_nonzero", "sum"):
        got = contrastive_margin(
            qb, key_b, query_ids=qids, key_ids=key_ids, pos_margin=0.3, reduction=reduction
        )
        want = contrastive_margin(
            qb.double(),
            key_d,
            query_ids=qids,
            key_ids=key_ids,
            pos_margin=0.3,
            reduction=reduction,
        )
        assert got.dtype == torch.float32
        assert abs(float(got) - float(want)) < 1e-2


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_clearly():
    q, k, qids, kids = _data(18)
    with pytest.raises(ValueError, match="same embedding dimension"):
        contrastive_margin(q, k[:, :3], query_ids=qids, key_ids=kids)
    with pytest.raises(ValueError, match="has 6 ids but query has 7 rows"):
        contrastive_margin(q, query_ids=qids[:6])
    with pytest.raises(ValueError, match="key_ids has 5 ids but key has 6 rows"):
        contrastive_margin(q, k, query_ids=qids, key_ids=kids[:5])
    with pytest.raises(TypeError, match="must hold integer ids"):
        contrastive_margin(q, query_ids=qids.double())
    bad = q.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match=r"non-finite values \(1 NaN"):
        contrastive_margin(bad, query_ids=qids)
    with pytest.raises(ValueError, match="empty batch"):
        contrastive_margin(q[:0], query_ids=qids[:0])
    with pytest.raises(ValueError, match=r"Did you mean 'mean_nonzero'\?"):
        contrastive_margin(q, query_ids=qids, reduction="mean_nonzer")
    with pytest.raises(ValueError, match=r"reduction must be one of"):
        ContrastiveMarginLoss(reduction="avg")
    with pytest.raises(ValueError, match=r"distance must be one of .*Did you mean 'euclidean'"):
        contrastive_margin(q, query_ids=qids, distance="euclidian")
    with pytest.raises(ValueError, match="power must be > 0"):
        contrastive_margin(q, query_ids=qids, power=0.0)


def test_bad_mined_indices_raise_clearly():
    q, k, qids, kids = _data(19)
    i = torch.tensor
    with pytest.raises(ValueError, match=r"outside \[0, 7\)"):
        contrastive_margin(q, query_ids=qids, pairs=Pairs(i([0]), i([7]), i([0]), i([1])))
    with pytest.raises(ValueError, match=r"outside \[0, 7\)"):
        contrastive_margin(q, query_ids=qids, pairs=Pairs(i([0]), i([3]), i([-1]), i([1])))
    # with a key, positives/negatives index the key's 6 rows and anchors the query's 7
    with pytest.raises(ValueError, match=r"outside \[0, 6\)"):
        contrastive_margin(
            q, k, query_ids=qids, key_ids=kids, pairs=Triplets(i([6]), i([6]), i([0]))
        )
    with pytest.raises(ValueError, match="pairs must be 4 index tensors"):
        contrastive_margin(q, query_ids=qids, pairs=(i([0]), i([3])))
    with pytest.raises(TypeError, match="must hold integer indices"):
        contrastive_margin(q, query_ids=qids, pairs=Pairs(i([0.0]), i([3.0]), i([0.0]), i([1.0])))
    # unequal lengths would otherwise broadcast silently (or fail deep inside torch)
    with pytest.raises(ValueError, match="equal lengths"):
        contrastive_margin(q, query_ids=qids, pairs=Pairs(i([0, 1]), i([3]), i([0]), i([1])))
    with pytest.raises(ValueError, match="equal lengths"):
        contrastive_margin(q, query_ids=qids, pairs=Pairs(i([0]), i([3]), i([0, 2]), i([1])))
    with pytest.raises(ValueError, match="equal lengths"):
        contrastive_margin(q, query_ids=qids, pairs=Triplets(i([0, 1]), i([3, 4]), i([1])))
