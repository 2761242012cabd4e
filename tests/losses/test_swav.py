"""sinkhorn_knopp and swav against explicit loops, closed forms and gradcheck."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.losses.swav import SwAVLoss, sinkhorn_knopp, swav

TOL = 1e-10
F64 = torch.float64


# ----------------------------------------------------------------------------- reference


def ref_sinkhorn(scores, epsilon, iterations):
    """The official algorithm, naive (no shift), on lists: Q = exp(S/ε)ᵀ (K×B)."""
    S = scores.tolist()
    B, K = len(S), len(S[0])
    Q = [[math.exp(S[b][k] / epsilon) for b in range(B)] for k in range(K)]
    total = sum(sum(row) for row in Q)
    Q = [[x / total for x in row] for row in Q]
    for _ in range(iterations):
        for k in range(K):
            r = sum(Q[k])
            Q[k] = [x / r / K for x in Q[k]]
        for b in range(B):
            c = sum(Q[k][b] for k in range(K))
            for k in range(K):
                Q[k][b] = Q[k][b] / c / B
    return [[Q[k][b] * B for k in range(K)] for b in range(B)]


def _log_softmax(row, tau):
    x = [v / tau for v in row]
    m = max(x)
    lse = m + math.log(sum(math.exp(v - m) for v in x))
    return [v - lse for v in x]


def ref_swav(scores, codes, temperature):
    """(1/A) Σ_i (1/(V−1)) Σ_{v≠i} (1/B) Σ_b −Σ_k q_i[b,k] log softmax(s_v[b]/τ)_k."""
    S = [s.tolist() for s in scores]
    C = [q.tolist() for q in codes]
    V = len(S)
    loss = 0.0
    for i, q in enumerate(C):
        sub = 0.0
        for v in range(V):
            if v == i:
                continue
            ce = 0.0
            for b in range(len(q)):
                lp = _log_softmax(S[v][b], temperature)
                ce -= sum(q[b][k] * lp[k] for k in range(len(lp)))
            sub += ce / len(q)
        loss += sub / (V - 1)
    return loss / len(C)


def _scores(seed=0, n_views=4, b=6, k=5, scale=0.5, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, k, generator=g, dtype=dtype) * scale for _ in range(n_views)]


def _assert_rows(got, want, tol=TOL):
    assert got.shape == (len(want), len(want[0]))
    for g_row, w_row in zip(got.tolist(), want):
        for g, w in zip(g_row, w_row):
            assert abs(g - w) < tol, (g, w)


# ----------------------------------------------------------------------------- sinkhorn


@pytest.mark.parametrize(("epsilon", "iterations"), [(0.05, 3), (0.1, 1), (0.5, 7), (1.0, 3)])
@pytest.mark.parametrize(("b", "k"), [(6, 5), (3, 8), (8, 2)])
def test_sinkhorn_matches_reference(b, k, epsilon, iterations):
    (s,) = _scores(1, n_views=1, b=b, k=k, scale=0.4)
    got = sinkhorn_knopp(s, epsilon=epsilon, iterations=iterations)
    assert got.dtype == F64 and not got.requires_grad
    _assert_rows(got, ref_sinkhorn(s, epsilon, iterations))


def test_sinkhorn_is_detached_and_float32_for_low_precision():
    (s,) = _scores(2, n_views=1)
    s = s.float().requires_grad_(True)
    q = sinkhorn_knopp(s)
    assert q.dtype == torch.float32 and not q.requires_grad and q.grad_fn is None
    q16 = sinkhorn_knopp(s.detach().to(torch.bfloat16))
    assert q16.dtype == torch.float32
    q64 = sinkhorn_knopp(s.detach().to(torch.bfloat16).double())
    assert float((q16.double() - q64).abs().max()) < 1e-4


def test_sinkhorn_converges_to_the_equipartition():
    b, k = 12, 4
    (s,) = _scores(3, n_views=1, b=b, k=k, scale=0.3)
    q = sinkhorn_knopp(s, epsilon=0.1, iterations=50)
    torch.testing.assert_close(q.sum(dim=1), torch.ones(b, dtype=F64), atol=1e-12, rtol=0)
    torch.testing.assert_close(q.sum(dim=0), torch.full((k,), b / k, dtype=F64), atol=1e-6, rtol=0)
    # after any number of iterations every sample's code sums to 1 (columns are normalised last)
    q3 = sinkhorn_knopp(s, epsilon=0.1, iterations=3)
    torch.testing.assert_close(q3.sum(dim=1), torch.ones(b, dtype=F64), atol=1e-12, rtol=0)


@pytest.mark.parametrize("iterations", [1, 3])
def test_constant_scores_give_the_uniform_code(iterations):
    s = torch.full((5, 7), 0.3, dtype=F64)
    q = sinkhorn_knopp(s, iterations=iterations)
    torch.testing.assert_close(q, torch.full((5, 7), 1 / 7, dtype=F64), atol=1e-15, rtol=0)


def test_sinkhorn_is_safe_for_large_scores_and_invariant_to_shifts():
    (s,) = _scores(4, n_views=1, b=6, k=5, scale=0.4)
    want = sinkhorn_knopp(s, epsilon=0.05)
    # exp(1000 / 0.05) overflows the naive algorithm; a per-prototype shift cancels exactly
    shift = torch.tensor([1000.0, -50.0, 3.0, 700.0, 0.0], dtype=F64)
    got = sinkhorn_knopp(s + shift, epsilon=0.05)
    assert bool(torch.isfinite(got).all())
    torch.testing.assert_close(got, want, atol=1e-10, rtol=0)
    # a small ε in float32 stays finite too
    got32 = sinkhorn_knopp((s * 10).float(), epsilon=0.01)
    assert bool(torch.isfinite(got32).all())
    torch.testing.assert_close(got32.sum(1), torch.ones(6), atol=1e-5, rtol=0)
    # a sample far from every prototype (exp underflows for its whole column) still gets a code
    far = s.clone()
    far[2] -= 100.0
    for dtype in (F64, torch.float32):
        q = sinkhorn_knopp(far.to(dtype), epsilon=0.05, iterations=3)
        assert bool(torch.isfinite(q).all())
        torch.testing.assert_close(q.sum(1), torch.ones(6, dtype=dtype), atol=1e-5, rtol=0)


def test_sinkhorn_gather_outside_a_process_group_is_a_no_op():
    (s,) = _scores(5, n_views=1)
    assert torch.equal(sinkhorn_knopp(s, gather="instances"), sinkhorn_knopp(s))


# ----------------------------------------------------------------------------- swav


@pytest.mark.parametrize("temperature", [0.1, 0.5, 2.0])
@pytest.mark.parametrize(("n_views", "n_assign"), [(2, 2), (2, 1), (4, 2), (5, 3)])
def test_swav_matches_reference(n_views, n_assign, temperature):
    scores = _scores(6, n_views=n_views)
    codes = [sinkhorn_knopp(s) for s in scores[:n_assign]]
    got = swav(scores, codes, temperature=temperature)
    assert got.dtype == F64 and got.dim() == 0
    want = ref_swav(scores, codes, temperature)
    assert abs(float(got) - want) < TOL, (float(got), want)


def test_swav_with_arbitrary_soft_codes_and_tensor_temperature():
    scores = _scores(7, n_views=3)
    g = torch.Generator().manual_seed(7)
    codes = [torch.softmax(torch.randn(6, 5, generator=g, dtype=F64), 1) for _ in range(2)]
    t = torch.tensor(0.3, dtype=torch.float32)
    got = swav(scores, codes, temperature=t)
    assert abs(float(got) - ref_swav(scores, codes, float(t))) < TOL


@pytest.mark.parametrize("temperature", [0.1, 1.0])
def test_constant_scores_give_log_k(temperature):
    k = 6
    scores = [torch.full((4, k), c, dtype=F64) for c in (0.2, -0.1, 0.7)]
    codes = [sinkhorn_knopp(s) for s in scores[:2]]
    got = swav(scores, codes, temperature=temperature)
    assert abs(float(got) - math.log(k)) < 1e-12


def test_gradcheck_wrt_scores_with_fixed_codes():
    scores = [s.requires_grad_(True) for s in _scores(8, n_views=3, b=4, k=3)]
    codes = [sinkhorn_knopp(s.detach()) for s in scores[:2]]
    assert torch.autograd.gradcheck(lambda *s: swav(list(s), codes, temperature=0.5), scores)
    t = torch.tensor(0.4, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda s0, s1, s2, tt: swav([s0, s1, s2], codes, temperature=tt), (*scores, t)
    )


def test_codes_get_no_gradient():
    scores = [s.requires_grad_(True) for s in _scores(9, n_views=2)]
    codes = [torch.softmax(s.detach() * 3, 1).requires_grad_(True) for s in scores]
    loss = swav(scores, codes)
    grads = torch.autograd.grad(loss, [*scores, *codes], allow_unused=True)
    assert all(g is not None for g in grads[:2]) and all(g is None for g in grads[2:])


# ----------------------------------------------------------------------------- module


def test_module_equals_function():
    scores = _scores(10, n_views=4)
    mod = SwAVLoss(temperature=0.2, epsilon=0.1, sinkhorn_iterations=5)
    got = mod(scores)
    codes = [sinkhorn_knopp(s, epsilon=0.1, iterations=5) for s in scores[:2]]
    want = swav(scores, codes, temperature=0.2)
    torch.testing.assert_close(got, want, atol=0, rtol=0)
    assert abs(float(got) - ref_swav(scores, codes, 0.2)) < TOL
    one = SwAVLoss(n_assign=1)(scores)
    codes1 = [sinkhorn_knopp(scores[0])]
    assert abs(float(one) - ref_swav(scores, codes1, 0.1)) < TOL
    assert list(mod.parameters()) == [] and list(mod.buffers()) == []


def test_module_gradient_is_that_of_fixed_codes():
    scores = [s.requires_grad_(True) for s in _scores(11, n_views=3)]
    got = torch.autograd.grad(SwAVLoss()(scores), scores)
    codes = [sinkhorn_knopp(s.detach()) for s in scores[:2]]
    want = torch.autograd.grad(swav(scores, codes), scores)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-14, rtol=0)


def test_bf16_inputs_give_float32_close_to_float64():
    scores = [s.to(torch.bfloat16) for s in _scores(12, n_views=4, scale=1.0)]
    for temperature in (0.1, 0.5):
        got = SwAVLoss(temperature=temperature)(scores)
        want = SwAVLoss(temperature=temperature)([s.double() for s in scores])
        assert got.dtype == torch.float32 and want.dtype == F64
        assert abs(float(got) - float(want)) < 1e-2
        codes = [sinkhorn_knopp(s) for s in scores[:2]]
        assert swav(scores, codes, temperature=temperature).dtype == torch.float32


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_clearly():
    scores = _scores(13, n_views=3)
    codes = [sinkhorn_knopp(s) for s in scores[:2]]
    for bad in (0.0, -0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            swav(scores, codes, temperature=bad)
        with pytest.raises(ValueError, match="epsilon must be a finite number > 0"):
            sinkhorn_knopp(scores[0], epsilon=bad)
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            SwAVLoss(temperature=bad)
        with pytest.raises(ValueError, match="epsilon must be a finite number > 0"):
            SwAVLoss(epsilon=bad)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="iterations must be an integer ≥ 1"):
            sinkhorn_knopp(scores[0], iterations=bad)
    with pytest.raises(ValueError, match="sinkhorn_iterations must be an integer ≥ 1"):
        SwAVLoss(sinkhorn_iterations=0)
    with pytest.raises(ValueError, match="n_assign must be an integer ≥ 1"):
        SwAVLoss(n_assign=0)
    with pytest.raises(ValueError, match=r"scores must hold at least 2 view\(s\), got 1"):
        swav(scores[:1], codes[:1])
    with pytest.raises(ValueError, match=r"scores must hold at least 2 view\(s\)"):
        SwAVLoss()(scores[:1])
    with pytest.raises(ValueError, match="n_assign=4 views need codes"):
        SwAVLoss(n_assign=4)(scores)
    with pytest.raises(ValueError, match=r"codes must hold at least 1 view\(s\), got 0"):
        swav(scores, [])
    with pytest.raises(ValueError, match="codes has 4 views but scores only 3"):
        swav(scores, [*codes, *codes])
    with pytest.raises(ValueError, match=r"scores\[2\] has shape \(6, 4\) but scores\[0\]"):
        swav([scores[0], scores[1], scores[2][:, :4]], codes)
    with pytest.raises(ValueError, match=r"codes\[1\] has shape \(5, 5\) but scores\[0\]"):
        swav(scores, [codes[0], codes[1][:5]])
    with pytest.raises(TypeError, match="scores must be a list of"):
        swav(torch.stack(scores), codes)
    with pytest.raises(TypeError, match="codes must be a list of"):
        swav(scores, codes[0])
    bad = scores[1].clone()
    bad[2, 3] = float("nan")
    with pytest.raises(ValueError, match=r"scores\[1\] contains non-finite values \(1 NaN"):
        swav([scores[0], bad], codes)
    with pytest.raises(ValueError, match=r"scores contains non-finite values \(1 NaN"):
        sinkhorn_knopp(bad)
    with pytest.raises(ValueError, match=r"scores must be 2-D"):
        sinkhorn_knopp(scores[0][0])
