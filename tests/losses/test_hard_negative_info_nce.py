"""Hard-negative InfoNCE (Robinson et al. 2021): loop reference, special cases, gradients.

The reference transcribes, with plain loops, the estimator in the docstring of
:func:`contrastkit.losses.debiased_info_nce.reweighted_info_nce`: for row ``i`` and each of its
positives ``p``, the other candidates ``A(i) \\ {p}`` (``n`` of them) are the negatives, and with
``e_a = exp(cos(q_i, k_a)/τ)`` and importance weights ``w_a = e_a^β``::

    R  = n · Σ_a w_a e_a / Σ_a w_a
    Ng = max( (R − τ⁺ · n · e_p) / (1 − τ⁺),  n · exp(−1/τ) )
    loss_ip = −log( e_p / (e_p + Ng) )

averaged over the row's positives, then over rows.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from contrastkit.losses import HardNegativeInfoNCELoss
from contrastkit.losses.functional import debiased_info_nce, hard_negative_info_nce, info_nce

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


# (temperature, tau_plus, beta)
SETTINGS = [(0.5, 0.1, 1.0), (0.2, 0.05, 0.5), (1.0, 0.0, 2.0), (0.1, 0.3, 0.75)]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", SCENARIOS)
def test_matches_loop_reference(name, reduction):
    kw = scenario(name)
    for temperature, tau_plus, beta in SETTINGS:
        actual = hard_negative_info_nce(
            **kw, temperature=temperature, tau_plus=tau_plus, beta=beta, reduction=reduction
        )
        expected, _ = ref_reweighted(
            **kw, temperature=temperature, tau_plus=tau_plus, beta=beta, reduction=reduction
        )
        assert actual.dtype == F64
        close(actual, expected)


def test_reference_cases_exercise_both_sides_of_the_clamp():
    active = inactive = 0
    for name in SCENARIOS:
        for temperature, tau_plus, beta in SETTINGS:
            _, pairs = ref_reweighted(
                **scenario(name), temperature=temperature, tau_plus=tau_plus, beta=beta
            )
            active += sum(u < f for u, f in pairs)
            inactive += sum(u > f for u, f in pairs)
    assert active > 0 and inactive > 0


@pytest.mark.parametrize("temperature_dtype", [F64, torch.float32])
def test_tensor_temperature_matches_reference(temperature_dtype):
    kw = scenario("key_negatives_with_ids", seed=3)
    t = torch.tensor(0.23, dtype=temperature_dtype)
    actual = hard_negative_info_nce(**kw, temperature=t, tau_plus=0.1, beta=0.8)
    expected, _ = ref_reweighted(**kw, temperature=float(t), tau_plus=0.1, beta=0.8)
    close(actual, expected)


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_small_temperature_float32_is_finite_and_accurate(beta):
    q = randn(12, 16, seed=40, dtype=torch.float32).requires_grad_()
    labels = ids(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3)
    negatives = randn(6, 16, seed=41, dtype=torch.float32)
    for tau_plus in (0.0, 0.1):
        kw = dict(query_ids=labels, temperature=0.02, tau_plus=tau_plus, beta=beta)
        loss = hard_negative_info_nce(q, negatives=negatives, **kw)
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        (grad,) = torch.autograd.grad(loss, q)
        assert bool(torch.isfinite(grad).all())
        expected, _ = ref_reweighted(q.detach(), negatives=negatives, **kw)
        torch.testing.assert_close(loss.double(), expected, atol=1e-4, rtol=1e-5)


# --------------------------------------------------------------------------------------------
# Analytic cases
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "t,tau_plus,beta", [(1.0, 0.0, 1.0), (1.0, 0.1, 1.0), (0.5, 0.1, 0.5), (2.0, 0.2, 3.0)]
)
def test_two_negatives_closed_form(t, tau_plus, beta):
    # One query q = (1, 0), one key (its positive) k = (1, 0), two extra negatives (0, 1) and
    # (−1, 0). Then e_p = e^{1/t}; the n = 2 others have e_1 = e^0 = 1, e_2 = e^{−1/t} and
    # weights w_1 = 1, w_2 = e^{−β/t}, so
    #   R  = 2·(1 + e^{−(1+β)/t}) / (1 + e^{−β/t})
    #   Ng = max((R − 2·τ⁺·e^{1/t}) / (1 − τ⁺), 2·e^{−1/t})
    #   loss = log(1 + Ng·e^{−1/t}).
    q = torch.tensor([[1.0, 0.0]], dtype=F64)
    negatives = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=F64)
    r = 2 * (1 + math.exp(-(1 + beta) / t)) / (1 + math.exp(-beta / t))
    ng = max((r - 2 * tau_plus * math.exp(1 / t)) / (1 - tau_plus), 2 * math.exp(-1 / t))
    expected = torch.tensor(math.log1p(ng * math.exp(-1 / t)), dtype=F64)
    actual = hard_negative_info_nce(
        q, q, query_ids=ids(0), negatives=negatives, temperature=t, tau_plus=tau_plus, beta=beta
    )
    close(actual, expected, atol=1e-12)


@pytest.mark.parametrize("n,tau_plus,beta", [(2, 0.1, 1.0), (5, 0.4, 0.5), (3, 0.0, 3.0)])
def test_all_identical_embeddings_give_log_2n_minus_1(n, tau_plus, beta):
    # All e_a equal to e: the weights are equal, R = n·e, Ng = n·e, loss = log(1 + n) with
    # n = 2N − 2 others.
    z = randn(1, 6, seed=50).expand(2 * n, 6)
    actual = hard_negative_info_nce(
        z, query_ids=torch.arange(n).repeat(2), temperature=0.1, tau_plus=tau_plus, beta=beta
    )
    close(actual, torch.tensor(math.log(2 * n - 1), dtype=F64), atol=1e-12)


def test_larger_beta_weights_hard_negatives_more():
    # With τ⁺ = 0, R/n = Σ e^{(1+β)s/τ} / Σ e^{βs/τ} is the e-weighted mean under weights e^β,
    # non-decreasing in β (log-convexity of the moment function): so is the loss.
    kw = scenario("self_supcon_labels", seed=11)
    losses = [
        hard_negative_info_nce(**kw, temperature=0.5, tau_plus=0.0, beta=b, reduction="none")
        for b in (0.0, 0.5, 1.0, 2.0, 4.0)
    ]
    for lower, higher in itertools.pairwise(losses):
        assert bool((higher >= lower - 1e-12).all())
        assert bool((higher > lower + 1e-6).any())


# --------------------------------------------------------------------------------------------
# Reductions to the special cases
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", SCENARIOS)
def test_beta_zero_is_debiased_and_beta_tau_zero_is_info_nce(name, reduction):
    kw = scenario(name, seed=7)
    for t in (0.1, 0.5):
        for tau_plus in (0.0, 0.05, 0.1, 0.3):
            actual = hard_negative_info_nce(
                **kw, temperature=t, tau_plus=tau_plus, beta=0.0, reduction=reduction
            )
            expected = debiased_info_nce(
                **kw, temperature=t, tau_plus=tau_plus, reduction=reduction
            )
            close(actual, expected, atol=1e-12)
        actual = hard_negative_info_nce(
            **kw, temperature=t, tau_plus=0.0, beta=0.0, reduction=reduction
        )
        close(actual, info_nce(**kw, temperature=t, reduction=reduction), atol=1e-12)


@pytest.mark.parametrize("name", ["self_supcon_labels", "key_negatives_with_ids"])
def test_small_beta_approaches_debiased(name):
    # β > 0 takes the importance-weighted branch; as β → 0 it must join the β = 0 value
    # continuously (|R(β) − R(0)| = O(β)).
    kw = scenario(name, seed=12)
    for tau_plus in (0.0, 0.1):
        debiased = debiased_info_nce(**kw, temperature=0.5, tau_plus=tau_plus)
        near = hard_negative_info_nce(**kw, temperature=0.5, tau_plus=tau_plus, beta=1e-7)
        close(near, debiased, atol=1e-5)
        assert not torch.allclose(
            hard_negative_info_nce(**kw, temperature=0.5, tau_plus=tau_plus, beta=1.0), debiased
        )


# --------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------


def test_gradcheck_self_contrast_multi_positive():
    q = randn(6, 3, seed=60)
    labels = ids(0, 1, 0, 1, 0, 0)
    kw = dict(query_ids=labels, tau_plus=0.02, beta=1.0)
    # Stay away from the kink of max(): the unclamped estimate must beat the floor clearly.
    _, pairs = ref_reweighted(q, temperature=0.5, **kw)
    assert clamp_inactive(pairs)
    inputs = (q.clone().requires_grad_(), torch.tensor(0.5, dtype=F64, requires_grad=True))
    assert torch.autograd.gradcheck(
        lambda x, t: hard_negative_info_nce(x, temperature=t, **kw), inputs
    )


def test_gradcheck_key_and_negatives():
    q, k, neg = randn(4, 3, seed=61), randn(5, 3, seed=62), randn(3, 3, seed=63)
    kw = dict(
        query_ids=ids(0, 1, 2, 1),
        key_ids=ids(1, 0, 2, 1, 3),
        negative_ids=ids(0, 5, 1),
        temperature=0.5,
        tau_plus=0.05,
        beta=0.5,
    )
    _, pairs = ref_reweighted(q, k, negatives=neg, **kw)
    assert clamp_inactive(pairs)

    def f(q, k, neg):
        return hard_negative_info_nce(q, k, negatives=neg, **kw)

    inputs = tuple(x.clone().requires_grad_() for x in (q, k, neg))
    assert torch.autograd.gradcheck(f, inputs)


# --------------------------------------------------------------------------------------------
# Module form, bf16
# --------------------------------------------------------------------------------------------


def test_module_matches_function():
    for name in ("key_negatives_with_ids", "self_supcon_labels"):
        kw = scenario(name, seed=9)
        module = HardNegativeInfoNCELoss(temperature=0.3, beta=0.7, tau_plus=0.15)
        expected = hard_negative_info_nce(**kw, temperature=0.3, beta=0.7, tau_plus=0.15)
        close(module(**kw), expected, atol=1e-12)
    kw = scenario("self_ignore_rows", seed=9)
    kw.pop("ignore_rows_without_positive")
    options = dict(temperature=0.3, beta=0.7, tau_plus=0.15, reduction="none")
    module = HardNegativeInfoNCELoss(**options, ignore_rows_without_positive=True)
    expected = hard_negative_info_nce(**kw, **options, ignore_rows_without_positive=True)
    close(module(**kw), expected, atol=1e-12)
    assert list(module.parameters()) == []


def test_bf16_inputs_give_float32_close_to_float64():
    q = randn(8, 16, seed=100).bfloat16()
    k = randn(10, 16, seed=101).bfloat16()
    neg = randn(4, 16, seed=102).bfloat16()
    qi, ki = ids(0, 1, 2, 3, 0, 1, 2, 3), ids(0, 1, 2, 3, 4, 0, 1, 2, 3, 4)
    nid = ids(0, 1, 7, 8)
    opts = dict(temperature=0.1, tau_plus=0.1, beta=1.0)
    loss = hard_negative_info_nce(q, query_ids=qi, **opts)
    expected, _ = ref_reweighted(q.double(), query_ids=qi, **opts)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), expected, atol=1e-2, rtol=0)
    loss = HardNegativeInfoNCELoss(**opts)(
        q, k, query_ids=qi, key_ids=ki, negatives=neg, negative_ids=nid
    )
    expected, _ = ref_reweighted(
        q.double(),
        k.double(),
        query_ids=qi,
        key_ids=ki,
        negatives=neg.double(),
        negative_ids=nid,
        **opts,
    )
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), expected, atol=1e-2, rtol=0)


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


def test_bad_input_raises_with_a_clear_message():
    q, k = randn(4, 3, seed=110), randn(4, 3, seed=111)
    i = torch.arange(4)
    for beta in (-0.5, -1e-9, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"beta must be a finite number ≥ 0"):
            hard_negative_info_nce(q, k, query_ids=i, beta=beta)
        with pytest.raises(ValueError, match=r"beta must be a finite number ≥ 0"):
            HardNegativeInfoNCELoss(beta=beta)
    for tau_plus in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"tau_plus must lie in \[0, 1\)"):
            hard_negative_info_nce(q, k, query_ids=i, tau_plus=tau_plus)
        with pytest.raises(ValueError, match=r"tau_plus must lie in \[0, 1\)"):
            HardNegativeInfoNCELoss(tau_plus=tau_plus)
    with pytest.raises(ValueError, match=r"same embedding dimension"):
        hard_negative_info_nce(q, randn(4, 5, seed=0), query_ids=i)
    with pytest.raises(ValueError, match=r"negatives must have the query's embedding dimension"):
        hard_negative_info_nce(q, k, query_ids=i, negatives=randn(2, 4, seed=0))
    with pytest.raises(ValueError, match=r"key_ids has 3 ids but key has 4 rows"):
        hard_negative_info_nce(q, k, query_ids=i, key_ids=i[:3])
    with pytest.raises(TypeError, match=r"key_ids must hold integer ids"):
        hard_negative_info_nce(q, k, query_ids=i, key_ids=i.double())
    q_bad = q.clone()
    q_bad[3, 2] = float("-inf")
    with pytest.raises(ValueError, match=r"negatives contains non-finite values \(0 NaN, 1 inf\)"):
        hard_negative_info_nce(q, k, query_ids=i, negatives=q_bad)
    for t in (0.0, -2.0, torch.tensor(0.0)):
        with pytest.raises(ValueError, match=r"temperature must be a finite number > 0"):
            hard_negative_info_nce(q, query_ids=i, temperature=t)
    with pytest.raises(ValueError, match=r"query is an empty batch"):
        hard_negative_info_nce(torch.empty(0, 3), query_ids=torch.empty(0, dtype=torch.long))
    with pytest.raises(
        ValueError, match=r"hard_negative_info_nce: 1 of 4 query rows have no positive"
    ):
        hard_negative_info_nce(q, k, query_ids=ids(0, 1, 2, 7), key_ids=i)
    with pytest.raises(ValueError, match=r"negative_ids was given without negatives"):
        hard_negative_info_nce(q, k, query_ids=i, negative_ids=i)
