"""SCARF's marginal corruption and VIME's mask, checked by hand on tiny tables: which cells
change, that each new value comes from the same column of the reference, the exact count per
row, uniformity, reproducibility from a generator, dtypes and the buffer."""

from __future__ import annotations

import pytest
import torch

from contrastkit.augment.tabular import (
    MarginalCorruption,
    corrupted_count,
    marginal_corruption,
    mask_features,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def reference(m: int = 7, f: int = 5) -> torch.Tensor:
    """ref[i, j] = 100·(j + 1) + i: a value names its column and its row."""
    return (100 * torch.arange(1, f + 1)[None, :] + torch.arange(m)[:, None]).float()


def test_by_hand_changed_cells_come_from_the_same_reference_column():
    ref = reference()
    x = -torch.ones(4, 5)
    out, mask = marginal_corruption(x, ref, rate=0.6, generator=gen(3))
    assert mask.dtype == torch.bool and mask.shape == (4, 5)
    assert mask.sum(dim=1).tolist() == [3, 3, 3, 3]  # round(0.6 · 5)
    assert torch.equal(out[~mask], x[~mask])  # untouched cells keep their value
    cols = torch.arange(5).expand(4, 5)[mask]
    vals = out[mask]
    assert torch.equal((vals // 100 - 1).long(), cols)  # the value's column is the cell's column
    rows = (vals % 100).long()
    assert bool(((rows >= 0) & (rows < 7)).all())  # from a row of the reference


def test_exact_count_per_row_for_every_rate():
    ref = reference(3, 10)
    for rate, k in [(0.0, 0), (0.05, 0), (0.1, 1), (0.34, 3), (0.6, 6), (0.95, 10), (1.0, 10)]:
        assert corrupted_count(10, rate) == k
        _, mask = marginal_corruption(torch.zeros(50, 10), ref, rate, generator=gen())
        assert (mask.sum(dim=1) == k).all(), rate


def test_rate_zero_is_a_copy_and_rate_one_replaces_every_cell():
    ref = reference()
    x = torch.randn(6, 5)
    out, mask = marginal_corruption(x, ref, 0.0)
    assert torch.equal(out, x) and not mask.any() and out.data_ptr() != x.data_ptr()
    out, mask = marginal_corruption(x, ref, 1.0)
    assert mask.all() and bool((out >= 100).all())


def test_reproducible_from_a_generator_and_different_across_seeds():
    ref = reference(50, 8)
    x = torch.randn(64, 8)
    a = marginal_corruption(x, ref, 0.5, generator=gen(11))
    b = marginal_corruption(x, ref, 0.5, generator=gen(11))
    c = marginal_corruption(x, ref, 0.5, generator=gen(12))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    torch.manual_seed(4)
    d = marginal_corruption(x, ref, 0.5)
    torch.manual_seed(4)
    e = marginal_corruption(x, ref, 0.5)
    assert torch.equal(d[0], e[0])  # the global generator when none is given


def test_columns_and_reference_rows_are_drawn_uniformly():
    m, f, b = 4, 5, 20000
    ref = reference(m, f)
    out, mask = marginal_corruption(torch.zeros(b, f), ref, 0.4, generator=gen(1))
    col_freq = mask.float().mean(dim=0)  # each column is chosen with probability k / F = 0.4
    assert torch.allclose(col_freq, torch.full((f,), 0.4), atol=0.02)
    rows = (out[mask] % 100).long()
    row_freq = torch.bincount(rows, minlength=m).float() / rows.numel()
    assert torch.allclose(row_freq, torch.full((m,), 1 / m), atol=0.01)
    # one draw per cell: two corrupted cells of a row come from independent reference rows
    pairs = out[mask].reshape(b, 2) % 100
    assert (pairs[:, 0] == pairs[:, 1]).float().mean().item() == pytest.approx(1 / m, abs=0.02)


def test_keeps_the_rows_dtype_and_codes_stay_valid_codes():
    ref = torch.tensor([[0.5, 1.0], [1.5, 3.0], [2.5, 2.0]], dtype=torch.float64)
    x = torch.zeros(100, 2, dtype=torch.float64)
    out, _ = marginal_corruption(x, ref.float(), 1.0, generator=gen())
    assert out.dtype == torch.float64
    assert set(out[:, 1].tolist()) <= {1.0, 2.0, 3.0}  # a code column takes codes it holds


def test_module_holds_the_reference_as_a_non_persistent_buffer():
    ref = reference()
    corrupt = MarginalCorruption(ref, rate=0.6)
    assert "reference" in dict(corrupt.named_buffers())
    assert corrupt.state_dict() == {}  # data, not weights: never checkpointed
    corrupt = corrupt.to(torch.float64)
    assert corrupt.reference.dtype == torch.float64
    out, mask = corrupt(torch.zeros(3, 5, dtype=torch.float64), generator=gen())
    assert out.dtype == torch.float64 and mask.sum().item() == 9
    assert "rate=0.6" in repr(corrupt)
    ints = MarginalCorruption(torch.tensor([[1, 2]]), 0.5)
    assert ints.reference.dtype == torch.float32


def test_bad_inputs_raise_clear_errors():
    ref = reference()
    with pytest.raises(ValueError, match="corruption rate"):
        marginal_corruption(torch.zeros(2, 5), ref, 1.5)
    with pytest.raises(ValueError, match="features but the reference rows have 5"):
        marginal_corruption(torch.zeros(2, 4), ref, 0.5)
    with pytest.raises(ValueError, match="2-D"):
        marginal_corruption(torch.zeros(5), ref, 0.5)
    with pytest.raises(ValueError, match="no rows"):
        MarginalCorruption(torch.zeros(0, 5))
    out, mask = marginal_corruption(torch.zeros(0, 5), ref, 0.5)
    assert out.shape == (0, 5) and mask.shape == (0, 5)


def test_large_batches_are_fast():
    import time

    ref = torch.randn(5000, 50)
    x = torch.randn(20000, 50)
    t0 = time.perf_counter()
    _, mask = marginal_corruption(x, ref, 0.6, generator=gen())
    assert time.perf_counter() - t0 < 2.0  # batched: 10⁶ cells, no Python loop over cells
    assert (mask.sum(dim=1) == 30).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda_with_a_cuda_generator():
    ref = reference().cuda()
    g = torch.Generator(device="cuda").manual_seed(0)
    out, mask = marginal_corruption(torch.zeros(4, 5, device="cuda"), ref, 0.6, g)
    assert out.is_cuda and mask.is_cuda and (mask.sum(1) == 3).all()


def test_vime_mask_is_bernoulli_per_cell():
    x = torch.zeros(4000, 10)
    m = mask_features(x, 0.3, gen(0))
    assert m.dtype == torch.bool and m.shape == x.shape
    assert m.float().mean().item() == pytest.approx(0.3, abs=0.01)
    assert m.sum(dim=1).unique().numel() > 1  # the count per row varies
    assert torch.equal(m, mask_features(x, 0.3, gen(0)))
    assert not mask_features(x, 0.0).any() and mask_features(x, 1.0).all()
