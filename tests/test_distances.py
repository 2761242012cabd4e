"""Distances and similarities against explicit scalar loops (float64)."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.distances import (
    METRICS,
    normalize,
    paired_distance,
    pairwise_distance,
    pairwise_similarity,
    squared_euclidean,
)

TOL = 1e-10


def _unit(u: list[float]) -> list[float]:
    n = math.sqrt(sum(x * x for x in u))
    return [x / n for x in u]


def _ref_dist(u: list[float], v: list[float], metric: str, normalize_embeddings: bool) -> float:
    """Scalar reference: cosine → 1 − cos, dot → −u·v, euclidean, squared euclidean."""
    if normalize_embeddings or metric == "cosine":
        u, v = _unit(u), _unit(v)
    dot = sum(a * b for a, b in zip(u, v))
    if metric == "cosine":
        return 1.0 - dot
    if metric == "dot":
        return -dot
    sq = sum((a - b) ** 2 for a, b in zip(u, v))
    return sq if metric == "squared_euclidean" else math.sqrt(sq)


def _ref_sim(u: list[float], v: list[float], metric: str) -> float:
    """Scalar reference similarity: cosine, raw dot, negated (unnormalised) distances."""
    if metric == "cosine":
        return 1.0 - _ref_dist(u, v, "cosine", False)
    if metric == "dot":
        return sum(a * b for a, b in zip(u, v))
    return -_ref_dist(u, v, metric, False)


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(5, 4, generator=g, dtype=torch.float64)
    b = torch.randn(7, 4, generator=g, dtype=torch.float64) * 1.5
    return a, b


@pytest.mark.parametrize("normalize_embeddings", [False, True])
@pytest.mark.parametrize("metric", METRICS)
def test_pairwise_distance_matches_loops(metric, normalize_embeddings):
    a, b = _inputs()
    got = pairwise_distance(a, b, metric, normalize_embeddings=normalize_embeddings)
    assert got.shape == (5, 7)
    assert got.dtype == torch.float64
    A, B = a.tolist(), b.tolist()
    for i in range(5):
        for j in range(7):
            want = _ref_dist(A[i], B[j], metric, normalize_embeddings)
            assert abs(float(got[i, j]) - want) < TOL, (i, j, float(got[i, j]), want)


@pytest.mark.parametrize("metric", METRICS)
def test_pairwise_similarity_matches_loops(metric):
    a, b = _inputs(1)
    got = pairwise_similarity(a, b, metric)
    A, B = a.tolist(), b.tolist()
    for i in range(5):
        for j in range(7):
            want = _ref_sim(A[i], B[j], metric)
            assert abs(float(got[i, j]) - want) < TOL, (i, j)


@pytest.mark.parametrize("normalize_embeddings", [False, True])
@pytest.mark.parametrize("metric", METRICS)
def test_paired_distance_matches_loops(metric, normalize_embeddings):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(9, 3, generator=g, dtype=torch.float64)
    y = torch.randn(9, 3, generator=g, dtype=torch.float64) * 2.0
    got = paired_distance(x, y, metric, normalize_embeddings=normalize_embeddings)
    assert got.shape == (9,)
    X, Y = x.tolist(), y.tolist()
    for t in range(9):
        want = _ref_dist(X[t], Y[t], metric, normalize_embeddings)
        assert abs(float(got[t]) - want) < TOL, t
    # The row-wise form agrees with the diagonal of the table form.
    table = pairwise_distance(x, y, metric, normalize_embeddings=normalize_embeddings)
    torch.testing.assert_close(got, table.diagonal(), rtol=0, atol=TOL)


@pytest.mark.parametrize("metric", METRICS)
def test_normalize_embeddings_equals_prenormalised_inputs(metric):
    a, b = _inputs(3)
    got = pairwise_distance(a, b, metric, normalize_embeddings=True)
    want = pairwise_distance(normalize(a), normalize(b), metric, normalize_embeddings=False)
    torch.testing.assert_close(got, want, rtol=0, atol=TOL)
    pgot = paired_distance(a[:5], b[:5], metric, normalize_embeddings=True)
    pwant = paired_distance(normalize(a[:5]), normalize(b[:5]), metric)
    torch.testing.assert_close(pgot, pwant, rtol=0, atol=TOL)


def test_normalize_unit_rows_and_zero_row_stays_zero():
    a, _ = _inputs(4)
    x = torch.cat([a, torch.zeros(1, 4, dtype=torch.float64)])
    n = normalize(x)
    assert torch.isfinite(n).all()
    for i, row in enumerate(a.tolist()):
        for got, want in zip(n[i].tolist(), _unit(row)):
            assert abs(got - want) < TOL
    assert torch.equal(n[-1], torch.zeros(4, dtype=torch.float64))


def test_normalize_embeddings_changes_euclidean_but_not_cosine():
    a, b = _inputs(5)
    raw = pairwise_distance(a, b, "euclidean")
    unit = pairwise_distance(a, b, "euclidean", normalize_embeddings=True)
    assert (raw - unit).abs().max() > 0.1
    # On the unit sphere |u − v|² = 2 − 2 cos = 2 · cosine distance.
    cos_d = pairwise_distance(a, b, "cosine")
    torch.testing.assert_close(unit**2, 2.0 * cos_d, rtol=0, atol=1e-12)
    torch.testing.assert_close(
        cos_d, pairwise_distance(a, b, "cosine", normalize_embeddings=True), rtol=0, atol=TOL
    )


def test_docstring_example_is_exact():
    a = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert torch.equal(pairwise_distance(a, a, "euclidean"), torch.tensor([[0.0, 5.0], [5.0, 0.0]]))


def test_squared_euclidean_is_clamped_non_negative():
    # Rows that agree up to rounding could give a slightly negative |a|²+|b|²−2a·b.
    g = torch.Generator().manual_seed(6)
    a = torch.randn(16, 8, generator=g) * 100.0
    sq = squared_euclidean(a, a)
    assert (sq >= 0).all()


def test_self_distances_near_zero():
    # The one-matmul formula |a|²+|b|²−2a·b leaves rounding noise of order sqrt(eps)·|a| on
    # the diagonal (not exactly 0); in float64 that is far below 1e-6.
    a, _ = _inputs(7)
    d = pairwise_distance(a, a, "euclidean")
    assert d.diagonal().abs().max() < 1e-6
    assert (d.diagonal() >= 0).all()


def test_exact_duplicates_give_exact_zero():
    # |(1,2,2)|² = 9 = (1,2,2)·(1,2,2) exactly in binary, so the distance is exactly 0.
    x = torch.tensor([[1.0, 2.0, 2.0], [1.0, 2.0, 2.0], [0.0, 3.0, 4.0]], dtype=torch.float64)
    d = pairwise_distance(x, x, "euclidean")
    assert float(d[0, 1]) == 0.0
    assert float(d[0, 0]) == 0.0


def test_zero_distance_gradient_is_finite_pairwise():
    # sqrt has an infinite slope at 0; self-pairs and duplicate rows must not give NaN/inf.
    x = torch.tensor(
        [[1.0, 2.0, 2.0], [1.0, 2.0, 2.0], [0.0, 3.0, 4.0], [-1.0, 0.5, 2.0]],
        dtype=torch.float64,
        requires_grad=True,
    )
    for normalize_embeddings in (False, True):
        x.grad = None
        d = pairwise_distance(x, x, "euclidean", normalize_embeddings=normalize_embeddings)
        d.sum().backward()
        assert x.grad is not None
        assert torch.isfinite(x.grad).all(), x.grad


def test_zero_distance_gradient_is_finite_and_zero_paired():
    g = torch.Generator().manual_seed(8)
    x = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = x.detach().clone()
    d = paired_distance(x, y, "euclidean")
    assert torch.equal(d.detach(), torch.zeros(4, dtype=torch.float64))
    d.sum().backward()
    assert torch.isfinite(x.grad).all()
    # Away from 0 the gradient is the unit difference vector; at exactly 0 it is defined as 0.
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_euclidean_gradient_matches_formula_away_from_zero():
    # ∂|a − b|/∂a = (a − b)/|a − b|.
    a, b = _inputs(9)
    a = a.clone().requires_grad_(True)
    pairwise_distance(a, b, "euclidean")[2, 3].backward()
    diff = a.detach()[2] - b[3]
    want = torch.zeros_like(a)
    want[2] = diff / diff.norm()
    torch.testing.assert_close(a.grad, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("fn", [pairwise_distance, pairwise_similarity, paired_distance])
def test_invalid_metric_raises_with_suggestion(fn):
    a, _ = _inputs()
    with pytest.raises(ValueError, match=r"metric must be one of .*Did you mean 'cosine'\?"):
        fn(a, a, "cosin")
    with pytest.raises(ValueError, match=r"metric must be one of"):
        fn(a, a, "manhattan")
