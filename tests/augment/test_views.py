"""Batched views: shapes, dtypes, seeding, presets, channel handling, policies and mixing."""

from __future__ import annotations

import pytest
import torch

from contrastkit.augment import (
    ViewConfig,
    Views,
    auto_augment,
    cutmix,
    make_view,
    mixup,
    rand_augment,
    to_float_images,
    views_for,
)


def _batch(c=1, n=12, s=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, s, s), dtype=torch.uint8, generator=g)


@pytest.mark.parametrize("recipe", ["simclr", "supcon", "byol", "multicrop"])
@pytest.mark.parametrize("channels", [1, 3])
def test_presets_shapes_and_range(recipe, channels):
    x = _batch(channels)
    out = views_for(recipe, 28, channels)(x, seed=0)
    n_views = 6 if recipe == "multicrop" else 2
    assert len(out) == n_views
    for i, v in enumerate(out):
        size = 28 if i < 2 else 12
        assert v.shape == (12, channels, size, size) and v.dtype == torch.float32
        assert float(v.min()) >= -1e-6 and float(v.max()) <= 1.0 + 1e-6


def test_seeded_calls_repeat_and_leave_global_rng_alone():
    x = _batch()
    views = views_for("simclr", 28, 1)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = views(x, seed=7)
    assert torch.equal(torch.rand(3), expected_next)  # global stream untouched
    b = views(x, seed=7)
    c = views(x, seed=8)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[0], c[0])
    assert not torch.equal(a[0], a[1])  # the two views differ


def test_each_sample_gets_its_own_crop():
    # The same image repeated: per-sample parameters must give different views.
    x = _batch(n=1).expand(16, -1, -1, -1).contiguous()
    (v, _) = views_for("simclr", 28, 1)(x, seed=0)
    distinct = {tuple(v[i].flatten()[:50].tolist()) for i in range(16)}
    assert len(distinct) > 8


def test_byol_views_are_asymmetric():
    views = views_for("byol", 32, 3)
    names = [[type(m).__name__ for m in p] for p in views.pipelines]
    blur = [p for p in views.pipelines[0] if type(p).__name__ == "RandomGaussianBlur"][0]
    assert blur.p == 1.0
    assert "RandomSolarize" not in names[0] and "RandomSolarize" in names[1]


def test_identity_config_keeps_images():
    cfg = ViewConfig(size=28, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=0, jitter=0, grayscale=0)
    x = _batch()
    (v,) = Views([make_view(cfg, 1)])(x)
    torch.testing.assert_close(v, to_float_images(x), atol=1e-5, rtol=0)


def test_normalisation_and_flip_override():
    views = views_for("simclr", 28, 1, flip=0.0, mean=[0.5], std=[0.25])
    names = [type(m).__name__ for m in views.pipelines[0]]
    assert "RandomHorizontalFlip" not in names and names[-1] == "Normalize"


def test_errors():
    with pytest.raises(ValueError, match="Did you mean 'simclr'"):
        views_for("simclrr", 28, 1)
    with pytest.raises(ValueError, match="1- or 3-channel"):
        views_for("simclr", 28, 2)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        views_for("simclr", 28, 1)(torch.zeros(28, 28, dtype=torch.uint8))
    with pytest.raises(TypeError, match="uint8 or float"):
        to_float_images(torch.zeros(1, 1, 2, 2, dtype=torch.int32))


@pytest.mark.parametrize("policy", [rand_augment, auto_augment])
def test_policies_accept_grayscale(policy):
    torch.manual_seed(0)
    op = policy()
    for _ in range(10):  # several draws hit the RGB-only operations
        out = op(torch.rand(8, 1, 28, 28))
        assert out.shape == (8, 1, 28, 28)
    assert op(torch.rand(4, 3, 28, 28)).shape == (4, 3, 28, 28)


def test_mixup_and_cutmix_targets():
    x = torch.rand(8, 1, 16, 16)
    y = torch.arange(8) % 4
    g = torch.Generator().manual_seed(0)
    _, ym = mixup(x, y, num_classes=4, alpha=0.4, generator=g)
    torch.testing.assert_close(ym.sum(1), torch.ones(8))
    # the mixed input is the same convex combination as the target
    lam = float(ym[0, y[0]]) if ym[0].max() < 1 else 1.0
    assert 0.0 <= lam <= 1.0
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a = cutmix(x, y, num_classes=4, generator=g1)
    b = cutmix(x, y, num_classes=4, generator=g2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    xc, yc = a
    changed = (xc != x).flatten(1).float().mean(1)
    # target weight of the partner equals the pasted fraction (up to pixels equal by chance)
    partner_weight = 1 - yc.gather(1, y[:, None]).flatten()
    same_class = partner_weight == 0
    assert torch.all(changed[~same_class] <= partner_weight[~same_class] + 1e-6)
    with pytest.raises(ValueError, match="alpha"):
        mixup(x, y, num_classes=4, alpha=0)
