"""InfoNCE / NT-Xent / SupCon / CLIP: loop reference, analytic cases, gradients, parity.

The reference below is a deliberately slow, plain-Python transcription of the formula in the
docstring of :func:`contrastkit.losses.functional.info_nce`::

    loss_i = −(1/|P(i)|) Σ_{p∈P(i)} log( exp(s_ip/τ) / Σ_{a∈A(i)} exp(s_ia/τ) )

with ``P(i)`` the keys sharing row ``i``'s id (never the row itself when ``key is None``) and
``A(i)`` every key (minus the self-pair when ``key is None``) plus the extra negatives (minus
those whose ``negative_ids`` equal the row's id).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml_losses

from contrastkit.losses import DegenerateBatchWarning, InfoNCELoss, NTXentLoss, SupConLoss
from contrastkit.losses.functional import info_nce, nt_xent, sup_con

try:
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
except ImportError:  # older sentence-transformers layout
    from sentence_transformers.losses import MultipleNegativesRankingLoss

F64 = torch.float64


def randn(*shape: int, seed: int, dtype: torch.dtype = F64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=F64).to(dtype)


def ids(*values: int) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.long)


# --------------------------------------------------------------------------------------------
# The loop reference
# --------------------------------------------------------------------------------------------


def ref_similarity(a: list[float], b: list[float], similarity: str) -> float:
    dot = math.fsum(x * y for x, y in zip(a, b))
    if similarity == "cosine":
        norm_a = math.sqrt(math.fsum(x * x for x in a))
        norm_b = math.sqrt(math.fsum(y * y for y in b))
        return dot / (norm_a * norm_b)
    if similarity == "dot":
        return dot
    squared = math.fsum((x - y) ** 2 for x, y in zip(a, b))
    if similarity == "squared_euclidean":
        return -squared
    assert similarity == "euclidean"
    return -math.sqrt(squared)


def ref_log_sum_exp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(math.fsum(math.exp(v - top) for v in values))


def ref_one_direction(
    query,
    key,
    query_ids,
    key_ids,
    *,
    temperature,
    similarity="cosine",
    negatives=None,
    negative_ids=None,
    ignore_rows_without_positive=False,
):
    """Per-row losses and a per-row 'kept' flag, by plain loops over rows and columns."""
    tau = float(temperature)
    q = query.double().tolist()
    q_ids = query_ids.tolist()
    self_contrast = key is None
    k = q if self_contrast else key.double().tolist()
    k_ids = q_ids if (self_contrast or key_ids is None) else key_ids.tolist()
    negs = [] if negatives is None else negatives.double().tolist()
    n_ids = None if negative_ids is None else negative_ids.tolist()
    losses, kept = [], []
    for i in range(len(q)):
        logits, positive_logits = [], []
        for j in range(len(k)):
            if self_contrast and j == i:
                continue  # the self-pair is neither a positive nor a candidate
            logit = ref_similarity(q[i], k[j], similarity) / tau
            logits.append(logit)
            if k_ids[j] == q_ids[i]:
                positive_logits.append(logit)
        for m in range(len(negs)):
            if n_ids is not None and n_ids[m] == q_ids[i]:
                continue  # an extra negative with the row's own id is dropped for this row
            logits.append(ref_similarity(q[i], negs[m], similarity) / tau)
        if not positive_logits:
            assert ignore_rows_without_positive, "reference: a row has no positive"
            losses.append(0.0)
            kept.append(False)
            continue
        log_denominator = ref_log_sum_exp(logits)
        log_probs = [p - log_denominator for p in positive_logits]
        losses.append(-math.fsum(log_probs) / len(log_probs))
        kept.append(True)
    return losses, kept


def ref_reduce(losses, kept, reduction):
    if reduction == "none":
        return torch.tensor(losses, dtype=F64)
    total = math.fsum(loss for loss, k in zip(losses, kept) if k)
    if reduction == "sum":
        return torch.tensor(total, dtype=F64)
    n_kept = sum(kept)
    return torch.tensor(total / n_kept if n_kept else 0.0, dtype=F64)


def ref_info_nce(query, key=None, *, query_ids, key_ids=None, reduction="mean", **kw):
    return ref_reduce(*ref_one_direction(query, key, query_ids, key_ids, **kw), reduction)


def ref_symmetric(query, key, *, query_ids, key_ids, negatives=None, negative_ids=None, **kw):
    forward = ref_info_nce(
        query,
        key,
        query_ids=query_ids,
        key_ids=key_ids,
        negatives=negatives,
        negative_ids=negative_ids,
        **kw,
    )
    backward = ref_info_nce(key, query, query_ids=key_ids, key_ids=query_ids, **kw)
    return 0.5 * (forward + backward)


def close(actual, expected, atol=1e-10):
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0)


# --------------------------------------------------------------------------------------------
# Scenarios for the loop-reference comparison
# --------------------------------------------------------------------------------------------


def scenario(name: str, seed: int = 0) -> dict:
    d = 4
    if name == "self_two_views":  # NT-Xent: 5 samples, 2 views, instance ids
        return dict(query=randn(10, d, seed=seed), query_ids=torch.arange(5).repeat(2))
    if name == "self_supcon_labels":  # several positives per row
        return dict(query=randn(10, d, seed=seed), query_ids=ids(0, 1, 2, 0, 1, 2, 0, 3, 3, 1))
    if name == "key_other_m":  # N=5 queries, M=8 keys, some rows with 3 positives
        return dict(
            query=randn(5, d, seed=seed),
            key=randn(8, d, seed=seed + 100),
            query_ids=ids(0, 1, 2, 1, 3),
            key_ids=ids(3, 1, 1, 0, 2, 5, 6, 1),
        )
    if name == "key_negatives":
        return dict(scenario("key_other_m", seed), negatives=randn(6, d, seed=seed + 200))
    if name == "key_negatives_with_ids":  # negative ids 0, 2 and 1 hit some rows' own ids
        return dict(
            scenario("key_negatives", seed),
            negative_ids=ids(0, 2, 9, 1, 7, 1),
        )
    if name == "self_negatives_with_ids":
        return dict(
            scenario("self_supcon_labels", seed),
            negatives=randn(5, d, seed=seed + 300),
            negative_ids=ids(3, 0, 8, 3, 2),
        )
    if name == "self_ignore_rows":  # ids 1 and 3 are singletons: those rows have no positive
        return dict(
            query=randn(8, d, seed=seed),
            query_ids=ids(0, 0, 1, 2, 2, 3, 4, 4),
            ignore_rows_without_positive=True,
        )
    if name == "key_ignore_rows":  # query ids 7 and 8 appear in no key
        return dict(
            query=randn(6, d, seed=seed),
            key=randn(7, d, seed=seed + 400),
            query_ids=ids(0, 7, 1, 2, 8, 1),
            key_ids=ids(2, 1, 0, 0, 5, 1, 6),
            negatives=randn(3, d, seed=seed + 500),
            negative_ids=ids(1, 7, 4),
            ignore_rows_without_positive=True,
        )
    raise KeyError(name)


SCENARIOS = [
    "self_two_views",
    "self_supcon_labels",
    "key_other_m",
    "key_negatives",
    "key_negatives_with_ids",
    "self_negatives_with_ids",
    "self_ignore_rows",
    "key_ignore_rows",
]
SIMILARITIES = ["cosine", "dot", "euclidean", "squared_euclidean"]
REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "similarity, chunked",
    [(s, False) for s in SIMILARITIES] + [("cosine", True), ("dot", True)],
)
@pytest.mark.parametrize("name", SCENARIOS)
def test_info_nce_matches_loop_reference(name, similarity, chunked, reduction):
    kw = scenario(name)
    path = dict(chunked=chunked, block_rows=3)  # several blocks, the last one short
    for temperature in (0.3, 1.7):
        actual = info_nce(
            **kw, temperature=temperature, similarity=similarity, reduction=reduction, **path
        )
        expected = ref_info_nce(
            **kw, temperature=temperature, similarity=similarity, reduction=reduction
        )
        assert actual.dtype == F64
        close(actual, expected)


def test_ignored_rows_are_zero_and_left_out_of_the_mean():
    kw = scenario("self_ignore_rows")
    per_row = info_nce(**kw, temperature=0.5, reduction="none")
    assert per_row.shape == (8,)
    assert per_row[2] == 0 and per_row[5] == 0
    assert bool((per_row[[0, 1, 3, 4, 6, 7]] > 0).all())
    close(info_nce(**kw, temperature=0.5), per_row.sum() / 6)


def test_all_rows_ignored_gives_a_zero_loss_connected_to_the_graph():
    q = randn(4, 3, seed=1).requires_grad_()
    with pytest.warns(DegenerateBatchWarning, match="info_nce: no two rows .* no positives"):
        loss = info_nce(q, query_ids=ids(0, 1, 2, 3), ignore_rows_without_positive=True)
    assert loss.item() == 0.0
    loss.backward()
    assert q.grad is not None and bool((q.grad == 0).all())


def test_negative_ids_remove_exactly_the_rows_own_id():
    # A queue holding a copy of each key with its id: with negative_ids the copy of the row's
    # own positive is dropped, so the loss equals the one with the other copies only.
    q, k = randn(4, 5, seed=2), randn(4, 5, seed=3)
    i = torch.arange(4)
    with_ids = info_nce(q, k, query_ids=i, key_ids=i, negatives=k, negative_ids=i, reduction="none")
    for row in range(4):
        others = torch.tensor([c for c in range(4) if c != row])
        expected = info_nce(
            q[row : row + 1], k, query_ids=i[row : row + 1], key_ids=i, negatives=k[others]
        )
        close(with_ids[row], expected)
    without_ids = info_nce(q, k, query_ids=i, key_ids=i, negatives=k)
    assert not torch.allclose(with_ids.mean(), without_ids)


@pytest.mark.parametrize("temperature_dtype", [F64, torch.float32])
def test_tensor_temperature_matches_reference(temperature_dtype):
    kw = scenario("key_negatives_with_ids", seed=3)
    temperature = torch.tensor(0.23, dtype=temperature_dtype)
    actual = info_nce(**kw, temperature=temperature)
    close(actual, ref_info_nce(**kw, temperature=float(temperature)))
    close(actual, info_nce(**kw, temperature=float(temperature)), atol=1e-12)


SYMMETRIC_CASES = {
    "clip_arange": dict(
        query=randn(6, 4, seed=10),
        key=randn(6, 4, seed=11),
        query_ids=torch.arange(6),
        key_ids=torch.arange(6),
    ),
    "multi_positive": dict(
        query=randn(6, 4, seed=12),
        key=randn(7, 4, seed=13),
        query_ids=ids(0, 1, 2, 0, 1, 3),
        key_ids=ids(1, 0, 2, 3, 0, 1, 2),
    ),
    "with_negatives": dict(
        query=randn(5, 4, seed=14),
        key=randn(5, 4, seed=15),
        query_ids=ids(0, 1, 2, 3, 4),
        key_ids=ids(0, 1, 2, 3, 4),
        negatives=randn(4, 4, seed=16),
        negative_ids=ids(0, 9, 3, 3),
    ),
    "ignore_rows": dict(
        query=randn(5, 4, seed=17),
        key=randn(4, 4, seed=18),
        query_ids=ids(0, 1, 2, 8, 1),
        key_ids=ids(1, 0, 9, 2),
        ignore_rows_without_positive=True,
    ),
}


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
@pytest.mark.parametrize("case", list(SYMMETRIC_CASES))
def test_symmetric_is_the_average_of_both_directions(case, similarity):
    kw = SYMMETRIC_CASES[case]
    actual = info_nce(**kw, temperature=0.4, similarity=similarity, symmetric=True)
    close(actual, ref_symmetric(**kw, temperature=0.4, similarity=similarity))


def test_symmetric_with_arange_ids_is_the_clip_loss():
    img, txt = randn(8, 6, seed=20), randn(8, 6, seed=21)
    t = 0.07
    logits = F.normalize(img, dim=1) @ F.normalize(txt, dim=1).T / t
    target = torch.arange(8)
    clip = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    actual = info_nce(img, txt, query_ids=target, key_ids=target, temperature=t, symmetric=True)
    close(actual, clip, atol=1e-12)


def test_nt_xent_and_sup_con_match_reference():
    v1, v2 = randn(5, 4, seed=30), randn(5, 4, seed=31)
    expected = ref_info_nce(
        torch.cat([v1, v2]), query_ids=torch.arange(5).repeat(2), temperature=0.2
    )
    close(nt_xent(v1, v2, temperature=0.2), expected)
    per_row = nt_xent(v1, v2, temperature=0.2, reduction="none")
    assert per_row.shape == (10,)

    labels = ids(0, 1, 2, 0, 1, 2, 0, 2)
    feats = randn(8, 4, seed=32)
    close(
        sup_con(feats, labels, temperature=0.3),
        ref_info_nce(feats, query_ids=labels, temperature=0.3),
    )
    # (B, V, D): views are flattened view-major, labels repeated per view.
    bvd = randn(4, 3, 5, seed=33)
    lab = ids(0, 1, 0, 2)
    flat = torch.cat([bvd[:, v] for v in range(3)])
    close(
        sup_con(bvd, lab, temperature=0.3),
        ref_info_nce(flat, query_ids=lab.repeat(3), temperature=0.3),
    )


# --------------------------------------------------------------------------------------------
# Small temperature: no overflow, no NaN
# --------------------------------------------------------------------------------------------


def test_small_temperature_float32_is_finite_and_accurate():
    q = randn(12, 16, seed=40, dtype=torch.float32).requires_grad_()
    labels = ids(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3)
    loss = info_nce(q, query_ids=labels, temperature=0.02)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert bool(torch.isfinite(q.grad).all())
    expected = ref_info_nce(q.detach(), query_ids=labels, temperature=0.02)
    torch.testing.assert_close(loss.double(), expected, atol=1e-4, rtol=1e-5)


def test_huge_logits_do_not_overflow():
    # Dot similarity with large norms: logits reach thousands, exp() of them overflows even in
    # float64, so only a log-sum-exp formulation is finite.
    q = (10 * randn(8, 8, seed=41, dtype=torch.float32)).requires_grad_()
    labels = torch.arange(4).repeat(2)
    loss = info_nce(q, query_ids=labels, temperature=0.02, similarity="dot")
    assert torch.isfinite(loss)
    loss.backward()
    assert bool(torch.isfinite(q.grad).all())
    expected = ref_info_nce(q.detach(), query_ids=labels, temperature=0.02, similarity="dot")
    assert expected.item() > 100  # the regime where a naive exp() would overflow
    torch.testing.assert_close(loss.double(), expected, atol=1e-2, rtol=1e-5)


# --------------------------------------------------------------------------------------------
# Analytic cases
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 7])
@pytest.mark.parametrize("t", [0.05, 0.5, 1.0])
def test_aligned_orthogonal_views_closed_form(n, t):
    # Views identical, samples orthogonal: each row's positive has cos 1, the other 2N−2
    # candidates have cos 0, so loss = −log(e^{1/t} / (e^{1/t} + (2N−2)·e^0)).
    z = torch.eye(n, dtype=F64)
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + (2 * n - 2)))
    actual = nt_xent(z, z, temperature=t)
    close(actual, torch.tensor(expected, dtype=F64), atol=1e-12)
    per_row = nt_xent(z, z, temperature=t, reduction="none")
    close(per_row, torch.full((2 * n,), expected, dtype=F64), atol=1e-12)


@pytest.mark.parametrize("similarity", ["cosine", "dot", "euclidean"])
@pytest.mark.parametrize("n", [2, 5])
def test_all_identical_embeddings_give_log_2n_minus_1(n, similarity):
    # Every logit equal: the positive gets probability 1/(2N−1) among the 2N−1 candidates.
    v = randn(1, 6, seed=50).expand(n, 6)
    actual = nt_xent(v, v, temperature=0.1, similarity=similarity)
    close(actual, torch.tensor(math.log(2 * n - 1), dtype=F64), atol=1e-12)


@pytest.mark.parametrize("classes,members,t", [(3, 2, 0.1), (4, 3, 0.5), (2, 5, 1.0)])
def test_sup_con_orthogonal_classes_closed_form(classes, members, t):
    # C classes with m members each; every member of class c is the unit vector e_c. For any
    # row: m−1 positives with cos 1, (C−1)·m negatives with cos 0, so every positive has
    #   log-prob = 1/t − log((m−1)·e^{1/t} + (C−1)·m)
    # and, averaging over the m−1 identical positives, the loss is
    #   log((m−1)·e^{1/t} + (C−1)·m) − 1/t.
    labels = torch.arange(classes).repeat_interleave(members)
    feats = torch.eye(classes, dtype=F64)[labels]
    expected = math.log((members - 1) * math.exp(1 / t) + (classes - 1) * members) - 1 / t
    close(sup_con(feats, labels, temperature=t), torch.tensor(expected, dtype=F64), atol=1e-12)
    # Shuffling the rows changes nothing.
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    close(sup_con(feats[perm], labels[perm], temperature=t), torch.tensor(expected, dtype=F64))


# --------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------


def test_gradcheck_self_contrast_multi_positive():
    q = randn(6, 3, seed=60).requires_grad_()
    labels = ids(0, 1, 0, 1, 0, 0)  # 3 positives for id 0, 1 positive for id 1
    assert torch.autograd.gradcheck(lambda x: info_nce(x, query_ids=labels, temperature=0.5), (q,))


def test_gradcheck_key_negatives_and_tensor_temperature():
    q, k, neg = randn(4, 3, seed=61), randn(5, 3, seed=62), randn(3, 3, seed=63)
    t = torch.tensor(0.4, dtype=F64)
    inputs = tuple(x.clone().requires_grad_() for x in (q, k, neg, t))

    def f(q, k, neg, t):
        return info_nce(
            q,
            k,
            query_ids=ids(0, 1, 2, 1),
            key_ids=ids(1, 0, 2, 1, 3),
            negatives=neg,
            negative_ids=ids(0, 5, 1),
            temperature=t,
        )

    assert torch.autograd.gradcheck(f, inputs)


def test_gradcheck_symmetric():
    q, k = randn(5, 3, seed=64).requires_grad_(), randn(5, 3, seed=65).requires_grad_()
    i = ids(0, 1, 2, 3, 1)

    def f(q, k):
        return info_nce(q, k, query_ids=i, key_ids=i, temperature=0.3, symmetric=True)

    assert torch.autograd.gradcheck(f, (q, k))


def test_gradcheck_sup_con_bvd_and_nt_xent():
    feats = randn(3, 2, 3, seed=66).requires_grad_()
    labels = ids(0, 1, 0)
    assert torch.autograd.gradcheck(lambda x: sup_con(x, labels, temperature=0.5), (feats,))
    v1, v2 = randn(3, 3, seed=67).requires_grad_(), randn(3, 3, seed=68).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: nt_xent(a, b, temperature=0.5), (v1, v2))


# --------------------------------------------------------------------------------------------
# Parity with pytorch-metric-learning
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("seed,t", [(0, 0.07), (1, 0.1), (2, 0.5), (3, 1.0)])
def test_nt_xent_matches_pml(seed, t, dtype):
    n = 8
    v1, v2 = randn(n, 16, seed=seed, dtype=dtype), randn(n, 16, seed=seed + 50, dtype=dtype)
    labels = torch.arange(n).repeat(2)
    emb = torch.cat([v1, v2]).requires_grad_()
    pml = pml_losses.NTXentLoss(temperature=t)(emb, labels)
    (pml_grad,) = torch.autograd.grad(pml, emb)
    ours = info_nce(emb, query_ids=labels, temperature=t)
    (ours_grad,) = torch.autograd.grad(ours, emb)
    torch.testing.assert_close(ours, pml, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours_grad, pml_grad, atol=1e-5, rtol=0)

    a, b = v1.clone().requires_grad_(), v2.clone().requires_grad_()
    via_nt_xent = nt_xent(a, b, temperature=t)
    torch.testing.assert_close(via_nt_xent, pml, atol=1e-5, rtol=0)
    grads = torch.autograd.grad(via_nt_xent, (a, b))
    torch.testing.assert_close(torch.cat(grads), pml_grad, atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("seed,t", [(0, 0.07), (1, 0.1), (2, 0.3), (3, 1.0)])
def test_sup_con_matches_pml(seed, t, dtype):
    g = torch.Generator().manual_seed(seed)
    # Classes 0–3 with 3 members each plus a class of exactly two members, shuffled.
    labels = torch.cat([torch.arange(4).repeat(3), ids(4, 4)])[torch.randperm(14, generator=g)]
    feats = randn(14, 16, seed=seed + 10, dtype=dtype).requires_grad_()
    pml = pml_losses.SupConLoss(temperature=t)(feats, labels)
    (pml_grad,) = torch.autograd.grad(pml, feats)
    ours = sup_con(feats, labels, temperature=t)
    (ours_grad,) = torch.autograd.grad(ours, feats)
    torch.testing.assert_close(ours, pml, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours_grad, pml_grad, atol=1e-5, rtol=0)

    # The (B, V, D) form equals PML on the view-major flattening with repeated labels.
    bvd = randn(6, 2, 16, seed=seed + 20, dtype=dtype)
    lab = ids(0, 1, 2, 0, 1, 1)
    flat = torch.cat([bvd[:, 0], bvd[:, 1]])
    pml_bvd = pml_losses.SupConLoss(temperature=t)(flat, lab.repeat(2))
    torch.testing.assert_close(sup_con(bvd, lab, temperature=t), pml_bvd, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------------------------
# Parity with sentence-transformers' MultipleNegativesRankingLoss
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("scale", [20.0, 5.0])
def test_matches_multiple_negatives_ranking_loss(scale, dtype):
    n = 8
    anchors, positives = randn(n, 16, seed=70, dtype=dtype), randn(n, 16, seed=71, dtype=dtype)
    neg1, neg2 = randn(n, 16, seed=72, dtype=dtype), randn(n, 16, seed=73, dtype=dtype)
    i = torch.arange(n)
    mnrl = MultipleNegativesRankingLoss(model=torch.nn.Identity(), scale=scale)
    t = 1.0 / scale

    st = mnrl.compute_loss_from_embeddings([anchors, positives], labels=None)
    ours = info_nce(anchors, positives, query_ids=i, key_ids=i, temperature=t)
    torch.testing.assert_close(ours, st, atol=1e-5, rtol=0)

    st_hard = mnrl.compute_loss_from_embeddings([anchors, positives, neg1], labels=None)
    ours_hard = info_nce(anchors, positives, query_ids=i, key_ids=i, temperature=t, negatives=neg1)
    torch.testing.assert_close(ours_hard, st_hard, atol=1e-5, rtol=0)
    assert not torch.allclose(ours_hard, ours)

    st_two = mnrl.compute_loss_from_embeddings([anchors, positives, neg1, neg2], labels=None)
    ours_two = info_nce(
        anchors,
        positives,
        query_ids=i,
        key_ids=i,
        temperature=t,
        negatives=torch.cat([neg1, neg2]),
    )
    torch.testing.assert_close(ours_two, st_two, atol=1e-5, rtol=0)


@pytest.mark.parametrize("with_negatives", [False, True])
def test_symmetric_matches_mnrl_per_direction(with_negatives):
    # MNRL with directions=("query_to_doc", "doc_to_query") and partition_mode="per_direction"
    # computes, per row i, the positive score s_ii minus the *average* of the two log-partition
    # functions (query→all docs, doc→all queries), then averages over rows. Since s_ii is the
    # same in both directions this is 0.5·(forward + backward): exactly symmetric=True. Its hard
    # negatives only enter the query→doc softmax (doc→query uses the paired docs only), as
    # info_nce's negatives only enter the query→key direction. (partition_mode="joint" would be
    # one softmax over the concatenated candidates, a different loss that info_nce does not
    # implement.)
    n = 8
    anchors, positives = randn(n, 16, seed=80), randn(n, 16, seed=81)
    negatives = randn(n, 16, seed=82)
    i = torch.arange(n)
    mnrl = MultipleNegativesRankingLoss(
        model=torch.nn.Identity(),
        scale=20.0,
        directions=("query_to_doc", "doc_to_query"),
        partition_mode="per_direction",
    )
    columns = [anchors, positives] + ([negatives] if with_negatives else [])
    st = mnrl.compute_loss_from_embeddings(columns, labels=None)
    ours = info_nce(
        anchors,
        positives,
        query_ids=i,
        key_ids=i,
        temperature=1 / 20,
        negatives=negatives if with_negatives else None,
        symmetric=True,
    )
    torch.testing.assert_close(ours, st, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------------------------
# Module forms
# --------------------------------------------------------------------------------------------


def module_close(module, module_out, function, temperature, **kw):
    """The module equals the function called with the module's own temperature tensor (exact),
    and with the plain float temperature up to the float32 storage of τ: the modules keep τ as
    a float32 tensor (log τ, a buffer or a parameter), i.e. with relative error ≲ 3e-7."""
    assert abs(module.temperature.item() - temperature) < 1e-7
    close(module_out, function(**kw, temperature=module.temperature), atol=1e-12)
    close(module_out, function(**kw, temperature=temperature), atol=1e-5)


def test_info_nce_module_matches_function():
    for kw, symmetric in (
        (scenario("key_negatives_with_ids", seed=5), False),
        (SYMMETRIC_CASES["with_negatives"], True),
    ):
        module = InfoNCELoss(temperature=0.2, similarity="dot", symmetric=symmetric)
        module_close(
            module, module(**kw), info_nce, 0.2, **kw, similarity="dot", symmetric=symmetric
        )
    kw = scenario("self_ignore_rows", seed=5)
    kw.pop("ignore_rows_without_positive")
    module = InfoNCELoss(temperature=0.3, ignore_rows_without_positive=True, reduction="none")
    out = module(**kw)
    assert out.shape == (8,)
    module_close(
        module, out, info_nce, 0.3, **kw, ignore_rows_without_positive=True, reduction="none"
    )


def test_nt_xent_and_sup_con_modules_match_functions():
    v1, v2 = randn(6, 5, seed=90), randn(6, 5, seed=91)
    module = NTXentLoss(temperature=0.5)
    module_close(module, module(v1, v2), nt_xent, 0.5, view1=v1, view2=v2)
    module = NTXentLoss(temperature=0.5, similarity="euclidean", reduction="sum")
    module_close(
        module,
        module(v1, v2),
        nt_xent,
        0.5,
        view1=v1,
        view2=v2,
        similarity="euclidean",
        reduction="sum",
    )
    feats, labels = randn(8, 5, seed=92), ids(0, 1, 2, 0, 1, 2, 3, 3)
    module = SupConLoss(temperature=0.1)
    module_close(module, module(feats, labels), sup_con, 0.1, features=feats, labels=labels)
    bvd, lab = randn(4, 2, 5, seed=93), ids(0, 1, 1, 0)
    module = SupConLoss(temperature=0.1, reduction="none")
    out = module(bvd, lab)
    assert out.shape == (8,)
    module_close(module, out, sup_con, 0.1, features=bvd, labels=lab, reduction="none")


def test_learnable_temperature_receives_a_gradient():
    module = InfoNCELoss(temperature=0.07, symmetric=True, learn_temperature=True)
    params = list(module.parameters())
    assert len(params) == 1 and params[0].requires_grad
    img, txt, i = randn(6, 5, seed=94), randn(6, 5, seed=95), torch.arange(6)
    loss = module(img, txt, query_ids=i, key_ids=i)
    module_close(
        module, loss, info_nce, 0.07, query=img, key=txt, query_ids=i, key_ids=i, symmetric=True
    )
    loss.backward()
    assert params[0].grad is not None and params[0].grad.abs().item() > 0
    # The gradient w.r.t. the log-temperature is dL/dτ · τ (chain rule through τ = exp(log τ)).
    t = torch.tensor(0.07, dtype=F64, requires_grad=True)
    (dt,) = torch.autograd.grad(
        info_nce(img, txt, query_ids=i, key_ids=i, temperature=t, symmetric=True), t
    )
    torch.testing.assert_close(params[0].grad.double(), dt * 0.07, rtol=1e-5, atol=1e-6)
    for cls in (InfoNCELoss, NTXentLoss, SupConLoss):
        assert not any(p.requires_grad for p in cls(temperature=0.07).parameters())
        assert len(list(cls(temperature=0.07, learn_temperature=True).parameters())) == 1


# --------------------------------------------------------------------------------------------
# bf16 inputs
# --------------------------------------------------------------------------------------------


def test_bf16_inputs_give_float32_close_to_float64():
    q = randn(8, 16, seed=100).bfloat16()
    k = randn(10, 16, seed=101).bfloat16()
    neg = randn(4, 16, seed=102).bfloat16()
    qi, ki = ids(0, 1, 2, 3, 0, 1, 2, 3), ids(0, 1, 2, 3, 4, 0, 1, 2, 3, 4)

    def check(loss, expected):
        assert loss.dtype == torch.float32
        torch.testing.assert_close(loss.double(), expected, atol=1e-2, rtol=0)

    check(
        info_nce(q, query_ids=qi, temperature=0.1),
        ref_info_nce(q.double(), query_ids=qi, temperature=0.1),
    )
    kw = dict(query_ids=qi, key_ids=ki, negatives=neg, negative_ids=ids(0, 1, 7, 8))
    check(
        info_nce(q, k, **kw, temperature=0.1),
        ref_info_nce(q.double(), k.double(), **{**kw, "negatives": neg.double()}, temperature=0.1),
    )
    kk = randn(8, 16, seed=103).bfloat16()
    check(
        info_nce(q, kk, query_ids=qi, key_ids=qi, temperature=0.1, symmetric=True),
        ref_symmetric(q.double(), kk.double(), query_ids=qi, key_ids=qi, temperature=0.1),
    )
    check(
        nt_xent(q, kk, temperature=0.1),
        ref_info_nce(
            torch.cat([q, kk]).double(), query_ids=torch.arange(8).repeat(2), temperature=0.1
        ),
    )
    check(sup_con(q, qi, temperature=0.1), ref_info_nce(q.double(), query_ids=qi, temperature=0.1))
    module = InfoNCELoss(temperature=0.1)
    check(module(q, query_ids=qi), ref_info_nce(q.double(), query_ids=qi, temperature=0.1))


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


def test_bad_input_raises_with_a_clear_message():
    q, k = randn(4, 3, seed=110), randn(4, 3, seed=111)
    i = torch.arange(4)
    with pytest.raises(ValueError, match=r"same embedding dimension.*query D=3 and key D=5"):
        info_nce(q, randn(4, 5, seed=0), query_ids=i)
    with pytest.raises(ValueError, match=r"negatives must have the query's embedding dimension"):
        info_nce(q, k, query_ids=i, negatives=randn(2, 4, seed=0))
    with pytest.raises(ValueError, match=r"query_ids has 3 ids but query has 4 rows"):
        info_nce(q, query_ids=i[:3])
    with pytest.raises(ValueError, match=r"key_ids has 5 ids but key has 4 rows"):
        info_nce(q, k, query_ids=i, key_ids=torch.arange(5))
    with pytest.raises(ValueError, match=r"negative_ids has 1 ids but negatives has 2 rows"):
        info_nce(q, k, query_ids=i, negatives=randn(2, 3, seed=0), negative_ids=ids(1))
    with pytest.raises(ValueError, match=r"key_ids is required when key has a different number"):
        info_nce(q, randn(5, 3, seed=0), query_ids=i)
    with pytest.raises(TypeError, match=r"query_ids must hold integer ids.*float"):
        info_nce(q, query_ids=i.double())
    with pytest.raises(TypeError, match=r"key_ids must hold integer ids"):
        info_nce(q, k, query_ids=i, key_ids=i.float())
    with pytest.raises(ValueError, match=r"query_ids must be 1-D"):
        info_nce(q, query_ids=i[:, None])
    for bad, what in ((float("nan"), r"1 NaN, 0 inf"), (float("inf"), r"0 NaN, 1 inf")):
        q_bad = q.clone()
        q_bad[2, 1] = bad
        with pytest.raises(ValueError, match=rf"query contains non-finite values \({what}\)"):
            info_nce(q_bad, query_ids=i)
        with pytest.raises(ValueError, match=r"key contains non-finite values"):
            info_nce(k, q_bad, query_ids=i)
        with pytest.raises(ValueError, match=r"negatives contains non-finite values"):
            info_nce(q, k, query_ids=i, negatives=q_bad)
    for t in (0.0, -0.1, torch.tensor(0.0), torch.tensor(-1.0), float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"temperature must be a finite number > 0"):
            info_nce(q, query_ids=i, temperature=t)
    for t in (0.0, -0.5):
        with pytest.raises(ValueError, match=r"temperature must be > 0"):
            InfoNCELoss(temperature=t)
        with pytest.raises(ValueError, match=r"temperature"):
            nt_xent(q, k, temperature=t)
        with pytest.raises(ValueError, match=r"temperature"):
            sup_con(q, i, temperature=t)
    with pytest.raises(ValueError, match=r"query is an empty batch"):
        info_nce(torch.empty(0, 3, dtype=F64), query_ids=torch.empty(0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"query must be 2-D"):
        info_nce(q[0], query_ids=i[:1])
    with pytest.raises(ValueError, match=r"info_nce: 2 of 6 query rows have no positive"):
        info_nce(randn(6, 3, seed=0), query_ids=ids(0, 0, 1, 2, 2, 3))
    with pytest.raises(ValueError, match=r"info_nce: 1 of 4 query rows have no positive"):
        info_nce(q, k, query_ids=ids(0, 1, 2, 9), key_ids=i)
    with pytest.raises(ValueError, match=r"1 of 4 query rows have no positive"):
        sup_con(q, ids(0, 0, 0, 5))
    with pytest.raises(ValueError, match=r"symmetric=True needs key"):
        info_nce(q, query_ids=i, symmetric=True)
    with pytest.raises(ValueError, match=r"reduction='none' is not defined for symmetric=True"):
        info_nce(q, k, query_ids=i, symmetric=True, reduction="none")
    with pytest.raises(ValueError, match=r"negative_ids was given without negatives"):
        info_nce(q, k, query_ids=i, negative_ids=i)
    with pytest.raises(ValueError, match=r"key_ids was given without key"):
        info_nce(q, query_ids=i, key_ids=i)
    with pytest.raises(ValueError, match=r"similarity must be one of .*Did you mean 'cosine'"):
        info_nce(q, query_ids=i, similarity="cosin")
    with pytest.raises(ValueError, match=r"reduction must be one of"):
        info_nce(q, query_ids=i, reduction="avg")
    with pytest.raises(ValueError, match=r"view1 and view2 must have the same shape"):
        nt_xent(q, randn(5, 3, seed=0))
    with pytest.raises(ValueError, match=r"labels must be \(B,\)=3 class labels"):
        sup_con(randn(3, 2, 4, seed=0), ids(0, 1))
