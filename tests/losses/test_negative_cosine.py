"""negative_cosine (BYOL / SimSiam) against an explicit row loop, closed forms and gradcheck."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.losses.negative_cosine import NegativeCosineLoss, negative_cosine

TOL = 1e-10
REDUCTIONS = ("mean", "sum", "none")


# ----------------------------------------------------------------------------- reference


def ref_negative_cosine(prediction, target, reduction="mean"):
    """loss_i = −Σ_d p_id z_id / (‖p_i‖ ‖z_i‖), then mean / sum / per row."""
    rows = []
    for p, z in zip(prediction.tolist(), target.tolist()):
        dot = sum(a * b for a, b in zip(p, z))
        norm_p = math.sqrt(sum(a * a for a in p))
        norm_z = math.sqrt(sum(b * b for b in z))
        rows.append(-dot / (norm_p * norm_z))
    if reduction == "none":
        return rows
    if reduction == "sum":
        return sum(rows)
    return sum(rows) / len(rows)


def assert_matches(got, want, tol=TOL):
    got = got.detach()
    if isinstance(want, list):
        assert got.shape == (len(want),)
        for g, w in zip(got.tolist(), want):
            assert abs(g - w) < tol, (g, w)
    else:
        assert got.dim() == 0
        assert abs(float(got) - want) < tol, (float(got), want)


def _data(seed=0, n=6, d=5):
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(n, d, generator=g, dtype=torch.float64)
    z = torch.randn(n, d, generator=g, dtype=torch.float64) * 3.0
    return p, z


# ----------------------------------------------------------------------------- reference tests


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("stop_gradient", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_reference(seed, stop_gradient, reduction):
    p, z = _data(seed)
    got = negative_cosine(p, z, stop_gradient=stop_gradient, reduction=reduction)
    assert got.dtype == torch.float64
    assert_matches(got, ref_negative_cosine(p, z, reduction))


def test_single_row_and_single_dimension():
    p = torch.tensor([[2.0]], dtype=torch.float64)
    assert_matches(negative_cosine(p, torch.tensor([[-0.5]], dtype=torch.float64)), 1.0)
    assert_matches(negative_cosine(p, torch.tensor([[3.0]], dtype=torch.float64)), -1.0)


# ----------------------------------------------------------------------------- analytic cases


def test_identical_orthogonal_and_opposite_rows():
    p, _ = _data(3, n=4, d=4)
    assert_matches(negative_cosine(p, p, reduction="none"), [-1.0] * 4)
    # the scale of a row does not matter, only its direction
    assert_matches(negative_cosine(p, p * 7.5, reduction="none"), [-1.0] * 4)
    assert_matches(negative_cosine(p, -0.2 * p, reduction="none"), [1.0] * 4)
    e = torch.eye(4, dtype=torch.float64)
    assert_matches(negative_cosine(e, e.roll(1, dims=0), reduction="none"), [0.0] * 4)
    # rows [same, orthogonal, opposite] → mean (−1 + 0 + 1)/3 = 0, sum 0
    a = torch.tensor([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]], dtype=torch.float64)
    b = torch.tensor([[2.0, 4.0], [-2.0, 1.0], [-1.0, -2.0]], dtype=torch.float64)
    assert_matches(negative_cosine(a, b, reduction="none"), [-1.0, 0.0, 1.0])
    assert_matches(negative_cosine(a, b), 0.0)
    assert_matches(negative_cosine(a, b, reduction="sum"), 0.0)


def test_byol_and_simsiam_forms():
    p, z = _data(4)
    # BYOL: ‖p̂ − ẑ‖² = 2 − 2 cos = 2 + 2·negative_cosine, per row
    per_row = negative_cosine(p, z, reduction="none")
    p_hat = [[a / math.sqrt(sum(x * x for x in r)) for a in r] for r in p.tolist()]
    z_hat = [[b / math.sqrt(sum(x * x for x in r)) for b in r] for r in z.tolist()]
    byol = [sum((a - b) ** 2 for a, b in zip(u, v)) for u, v in zip(p_hat, z_hat)]
    assert_matches(2.0 + 2.0 * per_row, byol)
    # SimSiam: the symmetric mean of the two directions
    p2, z2 = _data(5)
    got = 0.5 * negative_cosine(p, z2) + 0.5 * negative_cosine(p2, z)
    want = 0.5 * ref_negative_cosine(p, z2) + 0.5 * ref_negative_cosine(p2, z)
    assert_matches(got, want)


def test_zero_row_gives_zero_cosine_not_nan():
    p, z = _data(6, n=3)
    p[1] = 0.0
    got = negative_cosine(p, z, reduction="none")
    assert torch.isfinite(got).all() and float(got[1]) == 0.0


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_stop_gradient(reduction):
    p, z = _data(7, n=5, d=3)
    p.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: negative_cosine(x, z, reduction=reduction), (p,))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_without_stop_gradient(reduction):
    p, z = _data(8, n=5, d=3)
    p.requires_grad_(True)
    z.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x, y: negative_cosine(x, y, stop_gradient=False, reduction=reduction), (p, z)
    )


def test_stop_gradient_leaves_target_without_gradient():
    p, z = _data(9)
    p.requires_grad_(True)
    z.requires_grad_(True)
    negative_cosine(p, z).backward()
    assert z.grad is None
    assert p.grad is not None and float(p.grad.abs().sum()) > 0
    # a target that only feeds the loss is not even part of the graph
    loss = negative_cosine(p.detach(), z)
    assert not loss.requires_grad
    # without stop-gradient both sides get the gradient
    p.grad = None
    negative_cosine(p, z, stop_gradient=False).backward()
    assert z.grad is not None and float(z.grad.abs().sum()) > 0
    assert p.grad is not None and float(p.grad.abs().sum()) > 0


# ----------------------------------------------------------------------------- module form


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("stop_gradient", [True, False])
def test_module_equals_function(stop_gradient, reduction):
    p, z = _data(10)
    p.requires_grad_(True)
    z.requires_grad_(True)
    mod = NegativeCosineLoss(stop_gradient=stop_gradient, reduction=reduction)
    assert list(mod.parameters()) == []
    got = mod(p, z)
    want = negative_cosine(p, z, stop_gradient=stop_gradient, reduction=reduction)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    got.sum().backward()
    assert (z.grad is None) == stop_gradient


# ----------------------------------------------------------------------------- bf16


def test_bf16_inputs_give_float32_close_to_float64():
    p, z = _data(11, n=16, d=32)
    pb, zb = p.to(torch.bfloat16), z.to(torch.bfloat16)
    for reduction in ("mean", "sum"):
        got = negative_cosine(pb, zb, reduction=reduction)
        want = negative_cosine(pb.double(), zb.double(), reduction=reduction)
        assert got.dtype == torch.float32
        assert abs(float(got) - float(want)) < 1e-2
    # mixed: a float32 prediction against a bf16 target computes in float32
    assert negative_cosine(p.float(), zb).dtype == torch.float32
    assert negative_cosine(p, zb).dtype == torch.float64


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_clearly():
    p, z = _data(12)
    with pytest.raises(ValueError, match=r"prediction and target must have the same shape"):
        negative_cosine(p, z[:, :3])
    with pytest.raises(ValueError, match=r"prediction \(6, 5\) and target \(5, 5\)"):
        negative_cosine(p, z[:5])
    with pytest.raises(ValueError, match=r"prediction must be 2-D"):
        negative_cosine(p[0], z[0])
    with pytest.raises(ValueError, match=r"target must be 2-D"):
        negative_cosine(p, z[None])
    with pytest.raises(TypeError, match=r"target must be a floating-point tensor"):
        negative_cosine(p, z.long())
    with pytest.raises(TypeError, match=r"prediction must be a torch.Tensor"):
        negative_cosine(p.tolist(), z)
    bad = z.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match=r"target contains non-finite values \(1 NaN"):
        negative_cosine(p, bad)
    with pytest.raises(ValueError, match=r"prediction contains non-finite values \(0 NaN, 1 inf"):
        negative_cosine(bad.nan_to_num(posinf=0.0, nan=float("inf")), z)
    with pytest.raises(ValueError, match=r"prediction is an empty batch"):
        negative_cosine(p[:0], z[:0])
    with pytest.raises(ValueError, match=r"reduction must be one of .*Did you mean 'mean'\?"):
        negative_cosine(p, z, reduction="maen")
    with pytest.raises(ValueError, match=r"reduction must be one of"):
        NegativeCosineLoss(reduction="average")
