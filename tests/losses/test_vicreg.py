"""vicreg / vicreg_terms against an explicit float64 loop, closed forms and gradcheck."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from contrastkit.losses.vicreg import VICRegLoss, vicreg, vicreg_terms

TOL = 1e-10
F64 = torch.float64
TERMS = ("invariance", "variance", "covariance", "loss")


# ----------------------------------------------------------------------------- reference


def _variance_and_covariance(rows, gamma, eps):
    """(1/D) Σ_d relu(γ − sqrt(unbiased var_d + eps)) and (1/D) Σ_{i≠j} C_ij² of one branch."""
    n, d = len(rows), len(rows[0])
    mean = [sum(rows[k][j] for k in range(n)) / n for j in range(d)]
    centred = [[rows[k][j] - mean[j] for j in range(d)] for k in range(n)]
    cov = [
        [sum(centred[k][i] * centred[k][j] for k in range(n)) / (n - 1) for j in range(d)]
        for i in range(d)
    ]
    var_term = sum(max(0.0, gamma - math.sqrt(cov[j][j] + eps)) for j in range(d)) / d
    cov_term = sum(cov[i][j] ** 2 for i in range(d) for j in range(d) if i != j) / d
    return var_term, cov_term


def ref_vicreg(
    z1,
    z2,
    invariance_weight=25.0,
    variance_weight=25.0,
    covariance_weight=1.0,
    gamma=1.0,
    eps=1e-4,
):
    a, b = z1.tolist(), z2.tolist()
    n, d = len(a), len(a[0])
    invariance = sum((a[k][j] - b[k][j]) ** 2 for k in range(n) for j in range(d)) / (n * d)
    v1, c1 = _variance_and_covariance(a, gamma, eps)
    v2, c2 = _variance_and_covariance(b, gamma, eps)
    variance = (v1 + v2) / 2
    covariance = c1 + c2
    loss = invariance_weight * invariance + variance_weight * variance
    loss += covariance_weight * covariance
    return {"invariance": invariance, "variance": variance, "covariance": covariance, "loss": loss}


def assert_terms(got, want, tol=TOL):
    assert set(got) == set(TERMS)
    for name in TERMS:
        assert got[name].dim() == 0
        assert abs(float(got[name].detach()) - want[name]) < tol, (name, float(got[name]), want)


def assert_close_scalar(got, want, tol=TOL):
    assert abs(float(got.detach()) - want) < tol, (float(got), want)


def _data(seed=0, n=8, d=5):
    g = torch.Generator().manual_seed(seed)
    # columns of very different spread: some std below γ = 1 (hinge active), some above
    spread = torch.linspace(0.2, 2.5, d, dtype=F64)
    z1 = torch.randn(n, d, generator=g, dtype=F64) * spread + 0.3
    z2 = z1 + 0.5 * torch.randn(n, d, generator=g, dtype=F64)
    return z1, z2


def _hadamard(n):
    h = torch.ones(1, 1, dtype=F64)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


OPTIONS = [
    dict(),
    dict(invariance_weight=1.0, variance_weight=0.0, covariance_weight=0.04),
    dict(invariance_weight=0.0, variance_weight=2.0, covariance_weight=0.0, gamma=2.0),
    dict(gamma=0.5, eps=1e-2),
]


# ----------------------------------------------------------------------------- reference tests


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize(("seed", "n", "d"), [(0, 8, 5), (1, 2, 3), (2, 5, 1), (3, 16, 7)])
def test_matches_reference(seed, n, d, options):
    z1, z2 = _data(seed, n, d)
    terms = vicreg_terms(z1, z2, **options)
    assert all(t.dtype == F64 for t in terms.values())
    assert_terms(terms, ref_vicreg(z1, z2, **options))
    # vicreg is the "loss" entry, exactly
    torch.testing.assert_close(vicreg(z1, z2, **options), terms["loss"], rtol=0, atol=0)


def test_invariance_is_mse_and_official_formulas():
    # the official code's expressions, written with torch (unbiased var/cov, eps in the sqrt)
    z1, z2 = _data(4)
    n, d = z1.shape
    x, y = z1 - z1.mean(0), z2 - z2.mean(0)
    std_x, std_y = torch.sqrt(x.var(dim=0) + 1e-4), torch.sqrt(y.var(dim=0) + 1e-4)
    std_loss = F.relu(1 - std_x).mean() / 2 + F.relu(1 - std_y).mean() / 2
    cov_x, cov_y = x.T @ x / (n - 1), y.T @ y / (n - 1)
    eye = torch.eye(d, dtype=torch.bool)
    cov_loss = cov_x[~eye].pow(2).sum() / d + cov_y[~eye].pow(2).sum() / d
    terms = vicreg_terms(z1, z2)
    for name, want in (
        ("invariance", F.mse_loss(z1, z2)),
        ("variance", std_loss),
        ("covariance", cov_loss),
        ("loss", 25 * F.mse_loss(z1, z2) + 25 * std_loss + cov_loss),
    ):
        torch.testing.assert_close(terms[name], want, rtol=0, atol=1e-12)


def test_gather_outside_a_process_group_is_the_identity():
    z1, z2 = _data(5)
    a, b = vicreg_terms(z1, z2, gather="instances"), vicreg_terms(z1, z2)
    for name in TERMS:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)


# ----------------------------------------------------------------------------- analytic cases


def test_identical_branches_have_zero_invariance():
    z1, _ = _data(6)
    terms = vicreg_terms(z1, z1.clone())
    assert float(terms["invariance"]) == 0.0
    want = ref_vicreg(z1, z1)
    assert want["invariance"] == 0.0
    assert_terms(terms, want)


@pytest.mark.parametrize("gamma", [1.0, 2.0])
def test_columns_with_std_at_least_gamma_have_zero_variance_term(gamma):
    # 2γ·(Hadamard columns): unbiased std 2γ·sqrt(8/7) > γ in every dimension, both branches;
    # the columns are orthogonal, so the covariance term is 0 too
    z1 = 2 * gamma * _hadamard(8)[:, 1:6]
    z2 = -3 * gamma * _hadamard(8)[:, 2:7]
    terms = vicreg_terms(z1, z2, gamma=gamma)
    assert float(terms["variance"]) == 0.0
    assert abs(float(terms["covariance"])) < TOL
    want_inv = ref_vicreg(z1, z2)["invariance"]
    assert_close_scalar(terms["loss"], 25 * want_inv)


@pytest.mark.parametrize(("gamma", "eps"), [(1.0, 1e-4), (2.0, 1e-4), (0.5, 1e-2)])
def test_collapsed_batch_costs_gamma_minus_sqrt_eps(gamma, eps):
    # all rows equal: var = 0 in every dimension, so each branch's hinge is γ − sqrt(eps)
    row = torch.tensor([[0.3, -1.2, 4.0]], dtype=F64)
    z = row.expand(6, 3).clone()
    terms = vicreg_terms(z, z, gamma=gamma, eps=eps)
    assert_close_scalar(terms["variance"], gamma - math.sqrt(eps))
    assert float(terms["invariance"]) == 0.0 and float(terms["covariance"]) == 0.0
    assert_close_scalar(terms["loss"], 25 * (gamma - math.sqrt(eps)))
    # one collapsed branch and one spread out (std ≥ γ): half of it, from the collapsed branch
    spread = 4 * gamma * _hadamard(8)[:6, 1:4]
    assert_close_scalar(
        vicreg_terms(z, spread, gamma=gamma, eps=eps)["variance"], (gamma - math.sqrt(eps)) / 2
    )


def test_decorrelated_columns_have_zero_covariance_and_a_hand_built_case():
    h = _hadamard(8)
    z = h[:, 1:5] * torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=F64)
    assert abs(float(vicreg_terms(z, z + 0.1)["covariance"])) < TOL
    # z = [h1, h1 + h2]: cov(h1, h1 + h2) = (h1·h1)/(N − 1) = 8/7, so each branch gives
    # Σ_{i≠j} C_ij² / D = 2·(8/7)² / 2, and the two branches sum to 2·(8/7)²
    z = torch.stack([h[:, 1], h[:, 1] + h[:, 2]], 1)
    terms = vicreg_terms(z, z)
    assert_close_scalar(terms["covariance"], 2 * (8 / 7) ** 2)
    assert_close_scalar(terms["loss"], 2 * (8 / 7) ** 2)  # invariance 0, variance 0 (std > 1)


def test_zero_weights_switch_terms_off():
    z1, z2 = _data(7)
    terms = vicreg_terms(z1, z2)
    for name, weights in (
        ("invariance", (1.0, 0.0, 0.0)),
        ("variance", (0.0, 1.0, 0.0)),
        ("covariance", (0.0, 0.0, 1.0)),
    ):
        w = dict(zip(("invariance_weight", "variance_weight", "covariance_weight"), weights))
        torch.testing.assert_close(vicreg(z1, z2, **w), terms[name], rtol=0, atol=1e-14)


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("options", OPTIONS)
def test_gradcheck(options):
    z1, z2 = _data(8, n=6, d=4)
    z1.requires_grad_(True)
    z2.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: vicreg(a, b, **options), (z1, z2))


def test_gradcheck_terms():
    z1, z2 = _data(9, n=5, d=3)
    z1.requires_grad_(True)
    z2.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, b: tuple(vicreg_terms(a, b)[name] for name in TERMS), (z1, z2)
    )


# ----------------------------------------------------------------------------- module form


def test_module_equals_function():
    z1, z2 = _data(10)
    kw = dict(invariance_weight=1.0, variance_weight=2.0, covariance_weight=0.5, gamma=1.5)
    mod = VICRegLoss(**kw, eps=1e-3)
    assert list(mod.parameters()) == []
    torch.testing.assert_close(mod(z1, z2), vicreg(z1, z2, **kw, eps=1e-3), rtol=0, atol=0)
    got, want = mod.terms(z1, z2), vicreg_terms(z1, z2, **kw, eps=1e-3)
    for name in TERMS:
        torch.testing.assert_close(got[name], want[name], rtol=0, atol=0)
    torch.testing.assert_close(VICRegLoss()(z1, z2), vicreg(z1, z2), rtol=0, atol=0)


# ----------------------------------------------------------------------------- bf16


def test_bf16_inputs_give_float32_close_to_float64():
    z1, z2 = _data(11, n=32, d=16)
    b1, b2 = z1.to(torch.bfloat16), z2.to(torch.bfloat16)
    for options in OPTIONS:
        got = vicreg_terms(b1, b2, **options)
        want = vicreg_terms(b1.double(), b2.double(), **options)
        for name in TERMS:
            assert got[name].dtype == torch.float32
            assert abs(float(got[name]) - float(want[name])) < 1e-2, name
    assert vicreg(b1.half(), b2).dtype == torch.float32


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_clearly():
    z1, z2 = _data(12)
    with pytest.raises(ValueError, match=r"z1 and z2 must have the same shape"):
        vicreg(z1, z2[:, :3])
    with pytest.raises(ValueError, match=r"z1 \(8, 5\) and z2 \(7, 5\)"):
        vicreg_terms(z1, z2[:7])
    with pytest.raises(ValueError, match=r"z1 must be 2-D"):
        vicreg(z1[0], z2[0])
    with pytest.raises(ValueError, match=r"vicreg needs a batch of N ≥ 2 .* got N=1"):
        vicreg(z1[:1], z2[:1])
    with pytest.raises(ValueError, match=r"z2 is an empty batch"):
        vicreg(z1, z2[:0])
    bad = z1.clone()
    bad[0, 4] = float("nan")
    with pytest.raises(ValueError, match=r"z1 contains non-finite values \(1 NaN"):
        vicreg(bad, z2)
    for name in ("invariance_weight", "variance_weight", "covariance_weight"):
        for value in (-1.0, float("nan"), float("inf")):
            with pytest.raises(ValueError, match=rf"{name} must be a finite number ≥ 0"):
                vicreg(z1, z2, **{name: value})
            with pytest.raises(ValueError, match=rf"{name} must be a finite number ≥ 0"):
                VICRegLoss(**{name: value})
    for name in ("gamma", "eps"):
        for value in (0.0, -0.5, float("nan")):
            with pytest.raises(ValueError, match=rf"{name} must be a finite number > 0"):
                vicreg_terms(z1, z2, **{name: value})
            with pytest.raises(ValueError, match=rf"{name} must be a finite number > 0"):
                VICRegLoss(**{name: value})
