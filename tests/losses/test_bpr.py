"""bpr (Rendle et al. 2009) against an explicit loop, closed forms and gradcheck."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.losses.bpr import BPRLoss, bpr

TOL = 1e-10


def ref_bpr(user, positive, negative, reduction="mean"):
    """−log σ(⟨u,p⟩ − ⟨u,n⟩) term by term, in Python floats."""
    terms = []
    for b, u in enumerate(user.tolist()):
        p = positive[b].tolist()
        negs = negative[b].tolist()
        negs = negs if negative.dim() == 3 else [negs]
        row = []
        for n in negs:
            x = sum(a * c for a, c in zip(u, p)) - sum(a * c for a, c in zip(u, n))
            row.append(-math.log(1.0 / (1.0 + math.exp(-x))))
        terms.append(row if negative.dim() == 3 else row[0])
    if reduction == "none":
        return terms
    flat = [t for r in terms for t in (r if isinstance(r, list) else [r])]
    return sum(flat) if reduction == "sum" else sum(flat) / len(flat)


@pytest.mark.parametrize("k", [None, 4])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_matches_an_explicit_loop(k, reduction):
    g = torch.Generator().manual_seed(0)
    u, p = torch.randn(2, 5, 3, generator=g, dtype=torch.float64).unbind(0)
    n = torch.randn(5, *(() if k is None else (k,)), 3, generator=g, dtype=torch.float64)
    got = bpr(u, p, n, reduction=reduction)
    want = torch.tensor(ref_bpr(u, p, n, reduction), dtype=torch.float64)
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=TOL, rtol=0)


def test_analytic_cases():
    u = torch.tensor([[1.0, 0.0]])
    # equal scores: log 2; a margin m: log(1 + e^−m)
    assert bpr(u, u, u).item() == pytest.approx(math.log(2.0))
    assert bpr(u, 3 * u, u).item() == pytest.approx(math.log1p(math.exp(-2.0)))
    # a huge margin either way stays finite: 0 and the margin itself
    assert bpr(u, 1e4 * u, u).item() == pytest.approx(0.0, abs=1e-6)
    assert bpr(u, u, 1e4 * u).item() == pytest.approx(1e4 - 1.0)


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(1)
    args = [torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True) for _ in "up"]
    n = torch.randn(4, 2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda u, p, n: bpr(u, p, n), (*args, n))
    assert torch.autograd.gradcheck(lambda u, p, n: bpr(u, p, n[:, 0]), (*args, n))


def test_module_equals_function_and_half_precision_upcasts():
    u, p, n = torch.randn(3, 6, 8).unbind(0)
    assert torch.equal(BPRLoss(reduction="sum")(u, p, n), bpr(u, p, n, reduction="sum"))
    assert bpr(u.bfloat16(), p.bfloat16(), n.bfloat16()).dtype == torch.float32


def test_clear_errors():
    u = torch.randn(4, 8)
    with pytest.raises(ValueError, match="positive must have the shape"):
        bpr(u, torch.randn(3, 8), u)
    with pytest.raises(ValueError, match="negative must be"):
        bpr(u, u, torch.randn(4, 2, 7))
    with pytest.raises(ValueError, match="non-finite"):
        bpr(u, u, torch.full((4, 8), float("nan")))
    with pytest.raises(ValueError, match="reduction"):
        BPRLoss(reduction="max")
