"""Debiased InfoNCE (Chuang et al. 2020): loop reference, clamp, reductions, gradients.

The reference transcribes, with plain loops, the estimator in the docstring of
:func:`contrastkit.losses.debiased_info_nce.reweighted_info_nce`: for row ``i`` and each of its
positives ``p``, the other candidates ``A(i) \\ {p}`` (``n`` of them) are the negatives, and with
``e_a = exp(cos(q_i, k_a)/τ)`` and ``w_a = e_a^β``::

    R  = n · Σ_a w_a e_a / Σ_a w_a
    Ng = max( (R − τ⁺ · n · e_p) / (1 − τ⁺),  n · exp(−1/τ) )
    loss_ip = −log( e_p / (e_p + Ng) )

averaged over the row's positives, then over rows. Debiased InfoNCE is β = 0 (R = Σ_a e_a).
"""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.losses import DebiasedInfoNCELoss
from contrastkit.losses.functional import debiased_info_nce, info_nce

F64 = torch.float64


def randn(*shape: int, seed: int, dtype: torch.dtype = F64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=F64).to(dtype)


def ids(*values: int) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.long)


def close(actual, expected, atol=1e-10):
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0)


# --------------------------------------------------------------------------------------------
# The loop reference
# --------------------------------------------------------------------------------------------


def ref_cosine(a: list[float], b: list[float]) -> float:
    dot = math.fsum(x * y for x, y in zip(a, b))
    norm_a = math.sqrt(math.fsum(x * x for x in a))
    norm_b = math.sqrt(math.fsum(y * y for y in b))
    return dot / (norm_a * norm_b)


def ref_reweighted(
    query,
    key=None,
    *,
    query_ids,
    key_ids=None,
    temperature,
    tau_plus,
    beta=0.0,
    negatives=None,
    negative_ids=None,
    ignore_rows_without_positive=False,
    reduction="mean",
):
    """(loss, pairs): the loss as a float64 tensor and, for every (i, p), the two arguments
    (unclamped, floor) of the max() in Ng, so that tests can see whether the clamp is active."""
    tau = float(temperature)
    q = query.double().tolist()
    q_ids = query_ids.tolist()
    self_contrast = key is None
    k = q if self_contrast else key.double().tolist()
    k_ids = q_ids if (self_contrast or key_ids is None) else key_ids.tolist()
    negs = [] if negatives is None else negatives.double().tolist()
    n_ids = None if negative_ids is None else negative_ids.tolist()
    per_row, kept, pairs = [], [], []
    for i in range(len(q)):
        candidates = []  # (cosine, is_positive) for every a in A(i)
        for j in range(len(k)):
            if self_contrast and j == i:
                continue
            candidates.append((ref_cosine(q[i], k[j]), k_ids[j] == q_ids[i]))
        for m in range(len(negs)):
            if n_ids is not None and n_ids[m] == q_ids[i]:
                continue
            candidates.append((ref_cosine(q[i], negs[m]), False))
        positives = [c for c in range(len(candidates)) if candidates[c][1]]
        if not positives:
            assert ignore_rows_without_positive, "reference: a row has no positive"
            per_row.append(0.0)
            kept.append(False)
            continue
        pair_losses = []
        for p in positives:
            e_p = math.exp(candidates[p][0] / tau)
            others = [math.exp(candidates[a][0] / tau) for a in range(len(candidates)) if a != p]
            n = len(others)
            w = [e_a**beta for e_a in others]
            r = n * math.fsum(w_a * e_a for w_a, e_a in zip(w, others)) / math.fsum(w)
            unclamped = (r - tau_plus * n * e_p) / (1 - tau_plus)
            floor = n * math.exp(-1 / tau)
            ng = max(unclamped, floor)
            pair_losses.append(-math.log(e_p / (e_p + ng)))
            pairs.append((unclamped, floor))
        per_row.append(math.fsum(pair_losses) / len(pair_losses))
        kept.append(True)
    if reduction == "none":
        loss = torch.tensor(per_row, dtype=F64)
    else:
        total = math.fsum(v for v, k_ in zip(per_row, kept) if k_)
        if reduction == "mean":
            total = total / sum(kept) if sum(kept) else 0.0
        loss = torch.tensor(total, dtype=F64)
    return loss, pairs


def clamp_inactive(pairs, margin=1e-3) -> bool:
    return all(unclamped > floor * (1 + margin) for unclamped, floor in pairs)


# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------


def scenario(name: str, seed: int = 0) -> dict:
    d = 4
    if name == "self_two_views":
        return dict(query=randn(10, d, seed=seed), query_ids=torch.arange(5).repeat(2))
    if name == "self_supcon_labels":
        return dict(query=randn(10, d, seed=seed), query_ids=ids(0, 1, 2, 0, 1, 2, 0, 3, 3, 1))
    if name == "key_other_m":
        return dict(
            query=randn(5, d, seed=seed),
            key=randn(8, d, seed=seed + 100),
            query_ids=ids(0, 1, 2, 1, 3),
            key_ids=ids(3, 1, 1, 0, 2, 5, 6, 1),
        )
    if name == "key_negatives":
        return dict(scenario("key_other_m", seed), negatives=randn(6, d, seed=seed + 200))
    if name == "key_negatives_with_ids":
        return dict(scenario("key_negatives", seed), negative_ids=ids(0, 2, 9, 1, 7, 1))
    if name == "self_negatives_with_ids":
        return dict(
            scenario("self_supcon_labels", seed),
            negatives=randn(5, d, seed=seed + 300),
            negative_ids=ids(3, 0, 8, 3, 2),
        )
    if name == "self_ignore_rows":
        return dict(
            query=randn(8, d, seed=seed),
            query_ids=ids(0, 0, 1, 2, 2, 3, 4, 4),
            ignore_rows_without_positive=True,
        )
    if name == "key_ignore_rows":
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


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", SCENARIOS)
def test_matches_loop_reference(name, reduction):
    kw = scenario(name)
    for temperature, tau_plus in ((0.5, 0.1), (0.2, 0.05), (1.0, 0.3), (0.1, 0.0)):
        actual = debiased_info_nce(
            **kw, temperature=temperature, tau_plus=tau_plus, reduction=reduction
        )
        expected, _ = ref_reweighted(
            **kw, temperature=temperature, tau_plus=tau_plus, reduction=reduction
        )
        assert actual.dtype == F64
        close(actual, expected)


def test_reference_cases_exercise_both_sides_of_the_clamp():
    # The parametrised comparison above is only meaningful for the clamp if both branches of
    # max() occur in it.
    active = inactive = 0
    for name in SCENARIOS:
        for temperature, tau_plus in ((0.5, 0.1), (0.2, 0.05), (1.0, 0.3)):
            _, pairs = ref_reweighted(**scenario(name), temperature=temperature, tau_plus=tau_plus)
            active += sum(u < f for u, f in pairs)
            inactive += sum(u > f for u, f in pairs)
    assert active > 0 and inactive > 0


@pytest.mark.parametrize("temperature_dtype", [F64, torch.float32])
def test_tensor_temperature_matches_reference(temperature_dtype):
    kw = scenario("key_negatives_with_ids", seed=3)
    t = torch.tensor(0.23, dtype=temperature_dtype)
    actual = debiased_info_nce(**kw, temperature=t, tau_plus=0.1)
    expected, _ = ref_reweighted(**kw, temperature=float(t), tau_plus=0.1)
    close(actual, expected)


def test_small_temperature_float32_is_finite_and_accurate():
    q = randn(12, 16, seed=40, dtype=torch.float32).requires_grad_()
    labels = ids(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3)
    negatives = randn(6, 16, seed=41, dtype=torch.float32)
    for tau_plus in (0.0, 0.1):
        loss = debiased_info_nce(
            q, query_ids=labels, temperature=0.02, tau_plus=tau_plus, negatives=negatives
        )
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        (grad,) = torch.autograd.grad(loss, q)
        assert bool(torch.isfinite(grad).all())
        expected, _ = ref_reweighted(
            q.detach(), query_ids=labels, temperature=0.02, tau_plus=tau_plus, negatives=negatives
        )
        torch.testing.assert_close(loss.double(), expected, atol=1e-4, rtol=1e-5)


# --------------------------------------------------------------------------------------------
# The clamp and analytic cases
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n,t,tau_plus", [(3, 0.2, 0.1), (5, 0.1, 0.05), (4, 0.25, 0.5)])
def test_clamp_active_gives_the_floor(n, t, tau_plus):
    # Two identical views per sample, samples orthogonal (z = eye(N) twice). For every row the
    # positive has cos 1 (e_p = e^{1/t}) and the n = 2N−2 others cos 0 (e_a = 1), so R = n and
    # the unclamped estimate is n·(1 − τ⁺·e^{1/t})/(1 − τ⁺) < 0 whenever τ⁺·e^{1/t} > 1: the
    # clamp is active, Ng = n·e^{−1/t}, and
    #   loss = −log(e^{1/t} / (e^{1/t} + n·e^{−1/t})) = log(1 + n·e^{−2/t}).
    assert tau_plus * math.exp(1 / t) > 1
    z = torch.eye(n, dtype=F64).repeat(2, 1)
    m = 2 * n - 2
    expected = torch.tensor(math.log1p(m * math.exp(-2 / t)), dtype=F64)
    labels = torch.arange(n).repeat(2)
    actual = debiased_info_nce(z, query_ids=labels, temperature=t, tau_plus=tau_plus)
    close(actual, expected, atol=1e-12)
    close(
        debiased_info_nce(z, query_ids=labels, temperature=t, tau_plus=tau_plus, reduction="none"),
        expected.expand(2 * n),
        atol=1e-12,
    )
    reference, pairs = ref_reweighted(z, query_ids=labels, temperature=t, tau_plus=tau_plus)
    assert all(u < f for u, f in pairs)  # the clamp is active for every pair
    close(actual, reference)
    # Not the unclamped value (which is not even defined: the log of a negative number) and not
    # the InfoNCE value.
    assert not torch.allclose(actual, info_nce(z, query_ids=labels, temperature=t))


@pytest.mark.parametrize("n,t,tau_plus", [(3, 1.0, 0.1), (5, 0.5, 0.05), (4, 2.0, 0.3)])
def test_clamp_inactive_closed_form(n, t, tau_plus):
    # Same geometry with τ⁺·e^{1/t} < 1: Ng = n·(1 − τ⁺·e^{1/t})/(1 − τ⁺), above the floor
    # n·e^{−1/t}, and loss = log(1 + Ng·e^{−1/t}).
    z = torch.eye(n, dtype=F64).repeat(2, 1)
    m = 2 * n - 2
    ng = m * (1 - tau_plus * math.exp(1 / t)) / (1 - tau_plus)
    assert ng > m * math.exp(-1 / t)
    expected = torch.tensor(math.log1p(ng * math.exp(-1 / t)), dtype=F64)
    actual = debiased_info_nce(
        z, query_ids=torch.arange(n).repeat(2), temperature=t, tau_plus=tau_plus
    )
    close(actual, expected, atol=1e-12)


@pytest.mark.parametrize("n,tau_plus", [(2, 0.1), (5, 0.4)])
def test_all_identical_embeddings_give_log_2n_minus_1(n, tau_plus):
    # All e_a equal to e: R = n·e, Ng = (n·e − τ⁺·n·e)/(1 − τ⁺) = n·e, loss = log(1 + n) with
    # n = 2N − 2 others.
    z = randn(1, 6, seed=50).expand(2 * n, 6)
    actual = debiased_info_nce(
        z, query_ids=torch.arange(n).repeat(2), temperature=0.1, tau_plus=tau_plus
    )
    close(actual, torch.tensor(math.log(2 * n - 1), dtype=F64), atol=1e-12)


# --------------------------------------------------------------------------------------------
# Reduction to InfoNCE
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", SCENARIOS)
def test_tau_plus_zero_is_info_nce(name, reduction):
    # Single-positive (two views), multi-positive (SupCon labels, keys with several matches),
    # extra negatives with and without negative_ids, ignored rows.
    kw = scenario(name, seed=7)
    for t in (0.1, 0.5):
        actual = debiased_info_nce(**kw, temperature=t, tau_plus=0.0, reduction=reduction)
        expected = info_nce(**kw, temperature=t, reduction=reduction)
        close(actual, expected, atol=1e-12)


def test_tau_plus_changes_the_loss():
    kw = scenario("self_supcon_labels", seed=8)
    base = debiased_info_nce(**kw, temperature=0.5, tau_plus=0.0)
    for tau_plus in (0.05, 0.2):
        other = debiased_info_nce(**kw, temperature=0.5, tau_plus=tau_plus)
        assert (base - other).abs().item() > 1e-3


# --------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------


def test_gradcheck_self_contrast_multi_positive():
    q = randn(6, 3, seed=60)
    labels = ids(0, 1, 0, 1, 0, 0)
    t = torch.tensor(0.5, dtype=F64)
    # Stay away from the kink of max(): the unclamped estimate must beat the floor clearly.
    _, pairs = ref_reweighted(q, query_ids=labels, temperature=0.5, tau_plus=0.02)
    assert clamp_inactive(pairs)
    inputs = (q.clone().requires_grad_(), t.clone().requires_grad_())
    assert torch.autograd.gradcheck(
        lambda x, t: debiased_info_nce(x, query_ids=labels, temperature=t, tau_plus=0.02), inputs
    )


def test_gradcheck_key_and_negatives():
    q, k, neg = randn(4, 3, seed=61), randn(5, 3, seed=62), randn(3, 3, seed=63)
    kw = dict(query_ids=ids(0, 1, 2, 1), key_ids=ids(1, 0, 2, 1, 3), negative_ids=ids(0, 5, 1))
    _, pairs = ref_reweighted(q, k, negatives=neg, temperature=0.5, tau_plus=0.1, **kw)
    assert clamp_inactive(pairs)

    def f(q, k, neg):
        return debiased_info_nce(q, k, negatives=neg, temperature=0.5, tau_plus=0.1, **kw)

    inputs = tuple(x.clone().requires_grad_() for x in (q, k, neg))
    assert torch.autograd.gradcheck(f, inputs)


def test_gradcheck_with_the_clamp_active():
    # Away from the kink, the clamped branch is smooth too: Ng = n·e^{−1/τ}.
    z = torch.eye(3, dtype=F64).repeat(2, 1) + 0.05 * randn(6, 3, seed=64)
    labels = torch.arange(3).repeat(2)
    _, pairs = ref_reweighted(z, query_ids=labels, temperature=0.2, tau_plus=0.2)
    assert all(u < f * (1 - 1e-3) for u, f in pairs)
    assert torch.autograd.gradcheck(
        lambda x: debiased_info_nce(x, query_ids=labels, temperature=0.2, tau_plus=0.2),
        (z.clone().requires_grad_(),),
    )


# --------------------------------------------------------------------------------------------
# Module form, bf16
# --------------------------------------------------------------------------------------------


def test_module_matches_function():
    for name in ("key_negatives_with_ids", "self_supcon_labels"):
        kw = scenario(name, seed=9)
        module = DebiasedInfoNCELoss(temperature=0.3, tau_plus=0.15)
        close(module(**kw), debiased_info_nce(**kw, temperature=0.3, tau_plus=0.15), atol=1e-12)
    kw = scenario("self_ignore_rows", seed=9)
    kw.pop("ignore_rows_without_positive")
    module = DebiasedInfoNCELoss(
        temperature=0.3, tau_plus=0.15, ignore_rows_without_positive=True, reduction="none"
    )
    expected = debiased_info_nce(
        **kw, temperature=0.3, tau_plus=0.15, ignore_rows_without_positive=True, reduction="none"
    )
    close(module(**kw), expected, atol=1e-12)
    assert list(module.parameters()) == []


def test_bf16_inputs_give_float32_close_to_float64():
    q = randn(8, 16, seed=100).bfloat16()
    k = randn(10, 16, seed=101).bfloat16()
    neg = randn(4, 16, seed=102).bfloat16()
    qi, ki = ids(0, 1, 2, 3, 0, 1, 2, 3), ids(0, 1, 2, 3, 4, 0, 1, 2, 3, 4)
    nid = ids(0, 1, 7, 8)
    loss = debiased_info_nce(q, query_ids=qi, temperature=0.1, tau_plus=0.1)
    expected, _ = ref_reweighted(q.double(), query_ids=qi, temperature=0.1, tau_plus=0.1)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), expected, atol=1e-2, rtol=0)
    loss = DebiasedInfoNCELoss(temperature=0.1, tau_plus=0.1)(
        q, k, query_ids=qi, key_ids=ki, negatives=neg, negative_ids=nid
    )
    expected, _ = ref_reweighted(
        q.double(),
        k.double(),
        query_ids=qi,
        key_ids=ki,
        negatives=neg.double(),
        negative_ids=nid,
        temperature=0.1,
        tau_plus=0.1,
    )
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), expected, atol=1e-2, rtol=0)


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


def test_bad_input_raises_with_a_clear_message():
    q, k = randn(4, 3, seed=110), randn(4, 3, seed=111)
    i = torch.arange(4)
    for tau_plus in (1.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"tau_plus must lie in \[0, 1\)"):
            debiased_info_nce(q, k, query_ids=i, tau_plus=tau_plus)
        with pytest.raises(ValueError, match=r"tau_plus must lie in \[0, 1\)"):
            DebiasedInfoNCELoss(tau_plus=tau_plus)
    with pytest.raises(ValueError, match=r"same embedding dimension"):
        debiased_info_nce(q, randn(4, 5, seed=0), query_ids=i)
    with pytest.raises(ValueError, match=r"query_ids has 3 ids but query has 4 rows"):
        debiased_info_nce(q, query_ids=i[:3])
    with pytest.raises(TypeError, match=r"query_ids must hold integer ids"):
        debiased_info_nce(q, query_ids=i.float())
    q_bad = q.clone()
    q_bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"query contains non-finite values \(1 NaN, 0 inf\)"):
        debiased_info_nce(q_bad, query_ids=i)
    q_bad[0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"key contains non-finite values \(0 NaN, 1 inf\)"):
        debiased_info_nce(q, q_bad, query_ids=i)
    for t in (0.0, -0.1):
        with pytest.raises(ValueError, match=r"temperature must be a finite number > 0"):
            debiased_info_nce(q, query_ids=i, temperature=t)
    with pytest.raises(ValueError, match=r"query is an empty batch"):
        debiased_info_nce(torch.empty(0, 3), query_ids=torch.empty(0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"debiased_info_nce: 2 of 4 query rows have no positive"):
        debiased_info_nce(q, query_ids=ids(0, 0, 1, 2))
    with pytest.raises(ValueError, match=r"negative_ids was given without negatives"):
        debiased_info_nce(q, k, query_ids=i, negative_ids=i)
    with pytest.raises(ValueError, match=r"reduction must be one of"):
        DebiasedInfoNCELoss(reduction="avg")
