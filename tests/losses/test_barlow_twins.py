"""barlow_twins against an explicit float64 loop, closed forms and gradcheck."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.losses.barlow_twins import BarlowTwinsLoss, barlow_twins

TOL = 1e-10
F64 = torch.float64


# ----------------------------------------------------------------------------- reference


def _standardise(rows, eps):
    """BatchNorm1d(affine=False), training mode: per column mean 0, biased variance."""
    n, d = len(rows), len(rows[0])
    out = [[0.0] * d for _ in range(n)]
    for j in range(d):
        col = [rows[k][j] for k in range(n)]
        mean = sum(col) / n
        var = sum((x - mean) ** 2 for x in col) / n
        for k in range(n):
            out[k][j] = (col[k] - mean) / math.sqrt(var + eps)
    return out


def ref_cross_correlation(z1, z2, eps=1e-5):
    a, b = _standardise(z1.tolist(), eps), _standardise(z2.tolist(), eps)
    n, d = len(a), len(a[0])
    return [[sum(a[k][i] * b[k][j] for k in range(n)) / n for j in range(d)] for i in range(d)]


def ref_barlow(z1, z2, lambda_offdiag=5.1e-3, scale=1.0, eps=1e-5):
    """scale · (Σ_i (1 − c_ii)² + λ Σ_{i≠j} c_ij²), c = ẑ1ᵀẑ2 / N."""
    c = ref_cross_correlation(z1, z2, eps)
    d = len(c)
    on = sum((1.0 - c[i][i]) ** 2 for i in range(d))
    off = sum(c[i][j] ** 2 for i in range(d) for j in range(d) if i != j)
    return scale * (on + lambda_offdiag * off)


def assert_close(got, want, tol=TOL):
    assert got.dim() == 0
    assert abs(float(got.detach()) - want) < tol, (float(got), want)


def _data(seed=0, n=8, d=5):
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(n, d, generator=g, dtype=F64) * 2.0 + 0.5
    z2 = z1 + 0.7 * torch.randn(n, d, generator=g, dtype=F64)
    return z1, z2


def _hadamard(n):
    """Sylvester Hadamard matrix: ±1 entries, orthogonal columns."""
    h = torch.ones(1, 1, dtype=F64)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def _decorrelated(n=8, d=5):
    """(n, d) columns with mean 0, biased variance 1 and zero correlation (Hadamard, no ones)."""
    return _hadamard(n)[:, 1 : d + 1].clone()


OPTIONS = [
    dict(),
    dict(lambda_offdiag=0.0),
    dict(lambda_offdiag=1.0, scale=0.024),
    dict(lambda_offdiag=0.3, scale=2.0, eps=1e-2),
]


# ----------------------------------------------------------------------------- reference tests


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize(("seed", "n", "d"), [(0, 8, 5), (1, 2, 3), (2, 5, 1), (3, 16, 7)])
def test_matches_reference(seed, n, d, options):
    z1, z2 = _data(seed, n, d)
    got = barlow_twins(z1, z2, **options)
    assert got.dtype == F64
    assert_close(got, ref_barlow(z1, z2, **options))


def test_cross_correlation_is_batchnorm_standardisation():
    # the standardisation is BatchNorm1d(affine=False) in training mode (biased var, eps in sqrt)
    z1, z2 = _data(4)
    bn = torch.nn.BatchNorm1d(z1.shape[1], affine=False, eps=1e-5, dtype=F64).train()
    c = bn(z1).T @ bn(z2) / z1.shape[0]
    on = (1 - torch.diagonal(c)).pow(2).sum()
    off = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    assert_close(barlow_twins(z1, z2, lambda_offdiag=0.2), float(on + 0.2 * off), 1e-9)


def test_gather_outside_a_process_group_is_the_identity():
    z1, z2 = _data(5)
    torch.testing.assert_close(
        barlow_twins(z1, z2, gather="instances"), barlow_twins(z1, z2), rtol=0, atol=0
    )


# ----------------------------------------------------------------------------- analytic cases


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_identical_decorrelated_branches_give_zero(scale):
    # ẑ = z / sqrt(1 + eps), so c = I / (1 + eps): loss D·(eps / (1 + eps))² ≈ 0
    z = _decorrelated(8, 5)
    eps = 1e-5
    want = scale * 5 * (eps / (1 + eps)) ** 2
    assert_close(barlow_twins(z, z, scale=scale, eps=eps), want)
    assert float(barlow_twins(z, z, scale=scale)) < 1e-8
    # per-column affine maps (shift, positive scale) change nothing once standardised (eps → 0)
    shifted = z * torch.tensor([0.5, 2.0, 3.0, 1.0, 7.0], dtype=F64) + 4.0
    assert float(barlow_twins(shifted, z * 3.0, scale=scale, eps=1e-14)) < 1e-12


@pytest.mark.parametrize("scale", [1.0, 0.024])
@pytest.mark.parametrize("lambda_offdiag", [5.1e-3, 1.0])
def test_opposite_branches_give_four_per_dimension(lambda_offdiag, scale):
    # z2 = −z1: c_ii = −1/(1 + eps), off-diagonal 0, so the loss is scale·D·(1 + 1/(1+eps))²
    z = _decorrelated(8, 6)
    eps = 1e-5
    want = scale * 6 * (1 + 1 / (1 + eps)) ** 2
    got = barlow_twins(z, -z, lambda_offdiag=lambda_offdiag, scale=scale, eps=eps)
    assert_close(got, want)
    assert abs(float(got) - 6 * 4 * scale) < 1e-3 * scale


def test_off_diagonal_term_on_a_hand_built_case():
    h = _hadamard(8)
    # columns a = h1 and b = (h1 + h2)/√2: both mean 0, biased variance 1, correlation 1/√2.
    # With z1 = z2 = [a, b]: c = [[1, 1/√2], [1/√2, 1]] / (1 + eps), off-diagonal Σ = 1/(1+eps)².
    a, b = h[:, 1], (h[:, 1] + h[:, 2]) / math.sqrt(2)
    z = torch.stack([a, b], 1)
    eps = 1e-5
    on = 2 * (eps / (1 + eps)) ** 2
    off = 1 / (1 + eps) ** 2
    for lam in (0.0, 5.1e-3, 1.0, 3.0):
        assert_close(barlow_twins(z, z, lambda_offdiag=lam, eps=eps), on + lam * off)
    # swapped columns: z1 = [h1, h2], z2 = [h2, h1] → c = [[0, 1], [1, 0]]/(1+eps):
    # on-diagonal 2 (c_ii = 0), off-diagonal 2/(1+eps)²
    z1 = h[:, 1:3]
    z2 = z1.flip(1)
    for lam in (0.0, 0.5):
        assert_close(
            barlow_twins(z1, z2, lambda_offdiag=lam, eps=eps), 2 + lam * 2 / (1 + eps) ** 2
        )


def test_two_rows():
    # N = 2, the smallest batch with batch statistics: every standardised column is ±s_j
    z1 = torch.tensor([[0.0, 1.0, 5.0], [2.0, 0.0, 3.0]], dtype=F64)
    z2 = torch.tensor([[1.0, 1.0, -1.0], [0.0, 3.0, 1.0]], dtype=F64)
    assert_close(barlow_twins(z1, z2, lambda_offdiag=0.5), ref_barlow(z1, z2, 0.5))


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("options", OPTIONS)
def test_gradcheck(options):
    z1, z2 = _data(6, n=6, d=4)
    z1.requires_grad_(True)
    z2.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: barlow_twins(a, b, **options), (z1, z2))


# ----------------------------------------------------------------------------- module form


def test_module_equals_function():
    z1, z2 = _data(7)
    mod = BarlowTwinsLoss(lambda_offdiag=0.2, scale=0.5, eps=1e-3)
    assert list(mod.parameters()) == []
    got = mod(z1, z2)
    want = barlow_twins(z1, z2, lambda_offdiag=0.2, scale=0.5, eps=1e-3)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(BarlowTwinsLoss()(z1, z2), barlow_twins(z1, z2), rtol=0, atol=0)
    assert BarlowTwinsLoss(gather="instances").gather == "instances"


# ----------------------------------------------------------------------------- bf16


def test_bf16_inputs_give_float32_close_to_float64():
    z1, z2 = _data(8, n=32, d=16)
    b1, b2 = z1.to(torch.bfloat16), z2.to(torch.bfloat16)
    for options in OPTIONS:
        got = barlow_twins(b1, b2, **options)
        want = barlow_twins(b1.double(), b2.double(), **options)
        assert got.dtype == torch.float32
        assert abs(float(got) - float(want)) < 1e-2
    assert barlow_twins(b1.half(), b2).dtype == torch.float32


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_clearly():
    z1, z2 = _data(9)
    with pytest.raises(ValueError, match=r"z1 and z2 must have the same shape"):
        barlow_twins(z1, z2[:, :3])
    with pytest.raises(ValueError, match=r"z1 \(8, 5\) and z2 \(7, 5\)"):
        barlow_twins(z1, z2[:7])
    with pytest.raises(ValueError, match=r"z1 must be 2-D"):
        barlow_twins(z1[0], z2[0])
    with pytest.raises(ValueError, match=r"z2 must be 2-D"):
        barlow_twins(z1, z2[None])
    with pytest.raises(ValueError, match=r"barlow_twins needs a batch of N ≥ 2 .* got N=1"):
        barlow_twins(z1[:1], z2[:1])
    with pytest.raises(ValueError, match=r"z1 is an empty batch"):
        barlow_twins(z1[:0], z2[:0])
    bad = z2.clone()
    bad[3, 0] = float("nan")
    with pytest.raises(ValueError, match=r"z2 contains non-finite values \(1 NaN"):
        barlow_twins(z1, bad)
    for value in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"lambda_offdiag must be a finite number ≥ 0"):
            barlow_twins(z1, z2, lambda_offdiag=value)
        with pytest.raises(ValueError, match=r"lambda_offdiag must be a finite number ≥ 0"):
            BarlowTwinsLoss(lambda_offdiag=value)
    for value in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match=r"scale must be a finite number > 0"):
            barlow_twins(z1, z2, scale=value)
        with pytest.raises(ValueError, match=r"eps must be a finite number > 0"):
            barlow_twins(z1, z2, eps=value)
        with pytest.raises(ValueError, match=r"scale must be a finite number > 0"):
            BarlowTwinsLoss(scale=value)
        with pytest.raises(ValueError, match=r"eps must be a finite number > 0"):
            BarlowTwinsLoss(eps=value)
    with pytest.raises(ValueError, match=r"lambda_offdiag must be a scalar"):
        barlow_twins(z1, z2, lambda_offdiag=torch.tensor([0.1, 0.2]))
