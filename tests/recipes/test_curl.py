"""CURL: the bilinear InfoNCE against an explicit loop, analytic cases and gradcheck; the
recipe's crops, key encoder and momentum update; the observation crops."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.augment.observations import center_crop, crop_at, random_crop
from contrastkit.encoders.pixel import PixelEncoder
from contrastkit.recipes.curl import CURL, CURLConfig, curl_loss


def _loop(a: torch.Tensor, k: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """CURL's loss as written in the paper: logits z_aᵢ W z_kⱼ, cross-entropy at j = i."""
    total = 0.0
    n = a.shape[0]
    for i in range(n):
        logits = [float(a[i] @ w @ k[j]) for j in range(n)]
        m = max(logits)
        lse = m + math.log(sum(math.exp(v - m) for v in logits))
        total += lse - logits[i]
    return torch.tensor(total / n, dtype=torch.float64)


def test_curl_loss_equals_an_explicit_loop():
    g = torch.Generator().manual_seed(0)
    a, k = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)
    w = torch.rand(5, 5, generator=g)
    assert float(curl_loss(a, k, w)) == pytest.approx(float(_loop(a, k, w)), abs=1e-5)
    a64, k64, w64 = a.double(), k.double(), w.double()
    assert float(curl_loss(a64, k64, w64)) == pytest.approx(float(_loop(a64, k64, w64)), abs=1e-12)


def test_curl_loss_analytic_cases():
    # orthonormal anchors = keys, W = c·I: the positive scores c, every negative 0
    n, c = 4, 3.0
    e = torch.eye(n, dtype=torch.float64)
    expected = math.log(1 + (n - 1) * math.exp(-c))
    assert float(curl_loss(e, e, c * e)) == pytest.approx(expected, abs=1e-12)
    # W = 0: every score equal, the loss is log n
    assert float(curl_loss(e, e, torch.zeros(n, n, dtype=torch.float64))) == pytest.approx(
        math.log(n), abs=1e-12
    )


def test_curl_loss_gradcheck():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.rand(3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, k, w: curl_loss(a, k, w), (a, k, w))


def test_equal_ids_are_positives_not_negatives():
    # a frame drawn twice: with its replay index as id, the duplicate is not a negative
    g = torch.Generator().manual_seed(2)
    a = torch.randn(4, 3, generator=g, dtype=torch.float64)
    w = torch.eye(3, dtype=torch.float64)
    ids = torch.tensor([10, 11, 10, 12])
    with_ids = float(curl_loss(a, a, w, ids))
    plain = float(curl_loss(a, a, w))
    assert with_ids != pytest.approx(plain)
    # row 1 and row 3 have unique ids: their terms are the plain ones
    from contrastkit.losses import info_nce

    direct = info_nce(a @ w, a, query_ids=ids, key_ids=ids, temperature=1.0, similarity="dot")
    assert with_ids == pytest.approx(float(direct), abs=1e-12)


def test_random_crops_share_one_offset_across_channels_and_differ_across_rows():
    x = torch.arange(64 * 3 * 10 * 10).reshape(64, 3, 10, 10)
    out = random_crop(x, 6, generator=torch.Generator().manual_seed(0))
    assert out.shape == (64, 3, 6, 6)
    # each channel of a row is cut at the same place: channel c = channel 0 + c·100
    assert torch.equal(out[:, 1] - out[:, 0], torch.full_like(out[:, 0], 100))
    tops = (out[:, 0, 0, 0] % 100) // 10
    lefts = out[:, 0, 0, 0] % 10
    assert 1 < len(set(zip(tops.tolist(), lefts.tolist(), strict=True))) <= 25
    for b in range(64):
        t, l_ = int(tops[b]), int(lefts[b])
        assert torch.equal(out[b], x[b, :, t : t + 6, l_ : l_ + 6])
    assert torch.equal(center_crop(x, 6), x[..., 2:8, 2:8])
    assert torch.equal(crop_at(x[:2], torch.tensor([0, 4]), torch.tensor([1, 0]), 6)[1],
                       x[1, :, 4:10, 0:6])  # fmt: skip
    assert random_crop(x.to(torch.uint8), 6).dtype == torch.uint8
    with pytest.raises(ValueError, match="crop size"):
        random_crop(x, 11)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        random_crop(x[0], 4)


def _recipe(seed: int = 0) -> CURL:
    torch.manual_seed(seed)
    enc = PixelEncoder(in_channels=6, image_size=12, feature_dim=8, filters=4, layers=2)
    return CURL(enc, CURLConfig(crop_size=12, momentum=0.9))


def test_recipe_step_key_encoder_and_momentum_update():
    recipe = _recipe()
    obs = torch.randint(0, 256, (6, 6, 16, 16), dtype=torch.uint8)
    recipe.generator = torch.Generator().manual_seed(0)
    prepared = recipe.prepare({"obs": obs})
    assert prepared["inputs"].shape == (6, 6, 12, 12) and not prepared["keys"].requires_grad
    # the keys are the key encoder's features of a second, independent crop
    g = torch.Generator().manual_seed(0)
    anchors, positives = random_crop(obs, 12, g), random_crop(obs, 12, g)
    assert torch.equal(prepared["inputs"], anchors)
    assert torch.allclose(prepared["keys"], recipe.key_encoder(positives))
    out = recipe.loss({"views": recipe.embed("views", prepared["inputs"])}, prepared)
    expected = curl_loss(recipe.encoder(anchors), recipe.key_encoder(positives), recipe.W)
    assert float(out.loss.detach()) == pytest.approx(float(expected), rel=1e-6)
    out.loss.backward()
    assert recipe.W.grad is not None and recipe.encoder.fc.weight.grad is not None
    assert all(p.grad is None for p in recipe.key_encoder.parameters())
    # one EMA step: key ← 0.9·key + 0.1·online
    with torch.no_grad():
        for p in recipe.encoder.parameters():
            p.add_(1.0)
    before = [p.clone() for p in recipe.key_encoder.target.parameters()]
    recipe.on_step_end(0, 10)
    for b, k, o in zip(before, recipe.key_encoder.target.parameters(), recipe.encoder.parameters(),
                       strict=True):  # fmt: skip
        assert torch.allclose(k, 0.9 * b + 0.1 * o, atol=1e-6)


def test_recipe_needs_observations():
    with pytest.raises(KeyError, match="'obs'"):
        _recipe().prepare({"images": torch.zeros(2, 3, 8, 8)})
    enc = PixelEncoder(in_channels=3, image_size=8, layers=2)
    with pytest.raises(ValueError, match="built for 8×8"):
        enc(torch.zeros(1, 3, 9, 9))
    with pytest.raises(ValueError, match="fewer layers"):
        PixelEncoder(in_channels=3, image_size=8, layers=5)


def test_pixel_encoder_rebuilds_from_its_config():
    from contrastkit.encoders import build_encoder

    enc = PixelEncoder(in_channels=9, image_size=36)
    again = build_encoder("pixel", **enc.config)
    again.load_state_dict(enc.state_dict())
    x = torch.randint(0, 256, (2, 9, 36, 36), dtype=torch.uint8)
    assert torch.equal(enc(x), again(x)) and enc(x).abs().max() <= 1
