"""The transformed test: a seeded affine copy of images, and kNN against a clean bank."""

from __future__ import annotations

import pytest
import torch

from contrastkit.evaluate.robustness import (
    TRANSFORMED_SPLIT,
    AffineShift,
    random_affine,
    transformed_knn,
)


def _blobs(n: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, 8, 8, dtype=torch.uint8)
    x[:, :, 2:6, 3:5] = 255
    return x | torch.randint(0, 40, x.shape, generator=g, dtype=torch.uint8)


def test_random_affine_is_seeded_and_ignores_the_global_random_state():
    x = _blobs()
    torch.manual_seed(1)
    a = random_affine(x, seed=3)
    torch.manual_seed(2)
    b = random_affine(x, seed=3)
    assert torch.equal(a, b)
    assert a.shape == x.shape and a.dtype == torch.uint8
    assert not torch.equal(random_affine(x, seed=4), a)  # another seed, other transforms


def test_random_affine_changes_every_image_and_keeps_its_ink():
    x = _blobs(64)
    y = random_affine(x, seed=0)
    changed = (y.int() - x.int()).abs().flatten(1).sum(1)
    assert bool((changed > 0).all())
    # a shift, turn or zoom of a few percent: most of the ink stays in the frame
    ink = y.float().flatten(1).sum(1) / x.float().flatten(1).sum(1)
    assert float(ink.min()) > 0.5 and float(ink.max()) < 1.5


def test_random_affine_identity_range_keeps_the_image():
    x = torch.rand(4, 3, 10, 10)
    y = random_affine(x, seed=0, shift=AffineShift(degrees=0.0, translate=0.0, scale=(1, 1)))
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)


def _centre(im: torch.Tensor) -> torch.Tensor:
    """The ink's centre of mass (row, column) of a (1, 1, H, W) image."""
    w = im[0, 0]
    rows, cols = torch.meshgrid(torch.arange(w.shape[0]), torch.arange(w.shape[1]), indexing="ij")
    return torch.stack([(rows * w).sum(), (cols * w).sum()]) / w.sum()


def test_random_affine_shift_moves_ink_by_the_range():
    x = torch.zeros(1, 1, 20, 20)
    x[0, 0, 10, 10] = 1.0
    y = random_affine(x, seed=0, shift=AffineShift(degrees=0.0, translate=0.1, scale=(1, 1)))
    moved = (_centre(y) - _centre(x)).abs()
    assert float(moved.max()) <= 2.0 + 1e-4  # at most 10% of 20 px per axis
    assert float(moved.max()) > 0.1


def test_affine_shift_checks_its_ranges():
    with pytest.raises(ValueError, match="translate"):
        AffineShift(translate=1.5)
    with pytest.raises(ValueError, match="scale"):
        AffineShift(scale=(1.2, 0.8))
    assert AffineShift().words() == "±10°, ±15% shift, ×0.90–1.20"


def _classes(n_per: int, d: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(3).repeat(n_per)
    return torch.eye(d)[y] + 0.05 * torch.randn(len(y), d, generator=g), y


def test_transformed_knn_beside_baseline_and_chance():
    tr, y_tr = _classes(20, seed=0)
    va, y_va = _classes(5, seed=1)
    te, y_te = _classes(10, seed=2)
    # the "embeddings" are invariant (unchanged by the transform), the baseline is not: its
    # transformed rows are noise
    g = torch.Generator().manual_seed(3)
    noise_va, noise_te = (
        torch.randn(len(y_va), 6, generator=g),
        torch.randn(len(y_te), 6, generator=g),
    )
    r = transformed_knn(
        tr, y_tr, va, y_va, va, te, y_te,
        baseline=(tr, va, noise_va, noise_te), baseline_name="raw pixels", ks=(1, 5),
    )  # fmt: skip
    assert r.split == TRANSFORMED_SPLIT and r.chosen_on == "val"
    assert r.metrics["knn_accuracy"] == 1.0
    assert r.baseline["knn_accuracy"] < 0.8
    assert r.other_baselines["chance"]["knn_accuracy"] == pytest.approx(1 / 3)
    assert r.details["k"] in (1, 5) and r.details["n_test"] == len(y_te)
    line = r.summary_line()
    assert line.startswith("kNN accuracy, test (shifted, rotated, rescaled): 1.000 (raw pixels")
    assert "chance 0.333" in line and "_" not in line


def test_transformed_knn_chooses_k_on_the_transformed_validation_rows():
    tr, y_tr = _classes(20, seed=0)
    va, y_va = _classes(5, seed=1)
    te, y_te = _classes(10, seed=2)
    r = transformed_knn(tr, y_tr, va, y_va, va, te, y_te, ks=(1, 3, 7))
    assert set(r.details["val_knn_accuracy_by_k"]) == {"1", "3", "7"}
    assert r.baseline_name == "chance"
    with pytest.raises(ValueError, match="val_transformed"):
        transformed_knn(tr, y_tr, va, y_va, va[:-1], te, y_te)
