"""The CLIP recipe on the core's two towers: gradient caching equals the plain step (float64)
and two gloo processes equal one, for CLIP and SigLIP."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from contrastkit import distributed as dist
from contrastkit.encoders import SmallCNN
from contrastkit.encoders.text import SmallTextEncoder
from contrastkit.losses import info_nce
from contrastkit.recipes.clip import CLIP, CLIPConfig
from contrastkit.train import grad_cache_step

from ._harness import WORLD, check_step_matches_one_process, spawn

TEXTS = ["a red square", "a blue circle", "a red square", "a green star"] * 2


def _recipe(loss: str, seed: int = 0) -> CLIP:
    torch.manual_seed(seed)
    text = SmallTextEncoder.from_texts(TEXTS, dim=16, layers=1, heads=2, dropout=0.0)
    image = SmallCNN(in_channels=3, width=4, stages=2)
    return CLIP(image, text, CLIPConfig(image_size=8, embed_dim=6, loss=loss)).double().eval()


def _batch() -> dict:
    g = torch.Generator().manual_seed(1)
    return {
        "images": torch.randint(0, 256, (8, 3, 8, 8), dtype=torch.uint8, generator=g),
        "texts": list(TEXTS),
        "caption_ids": torch.tensor([0, 1, 0, 2, 0, 1, 0, 2]),
        "indices": torch.arange(8),
    }


def _grads(recipe):
    return {n: p.grad.clone() for n, p in recipe.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("loss", ["clip", "siglip"])
@pytest.mark.parametrize("chunk", [1, 3, 8])
def test_grad_cache_equals_the_plain_step(loss, chunk):
    recipe = _recipe(loss)
    twin = copy.deepcopy(recipe)
    plain = recipe.step(_batch())
    plain.loss.backward()
    cached = grad_cache_step(twin, _batch(), chunk)
    torch.testing.assert_close(cached.loss, plain.loss.detach(), atol=1e-8, rtol=0)
    expected, actual = _grads(recipe), _grads(twin)
    assert "log_scale" in expected and ("bias" in expected) == (loss == "siglip")
    assert set(actual) == set(expected) and len(expected) > 10
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], atol=1e-8, rtol=0, msg=key)


def test_the_temperature_is_learned_and_clamped_and_duplicates_are_positives():
    recipe = _recipe("clip")
    assert math.isclose(float(recipe.temperature.detach()), 0.07, rel_tol=1e-6)
    with torch.no_grad():
        recipe.log_scale.fill_(10.0)
    assert math.isclose(float(recipe.temperature.detach()), 0.01, rel_tol=1e-9)  # 1/100
    batch = _batch()
    prepared = recipe.prepare(batch)
    image = recipe.embed("image", prepared["inputs"]["image"])
    text = recipe.embed("text", prepared["inputs"]["text"])
    ids = batch["caption_ids"]  # equal captions are positives, never negatives
    expected = info_nce(image, text, query_ids=ids, key_ids=ids, temperature=0.01, symmetric=True)
    torch.testing.assert_close(recipe.step(batch).loss, expected, atol=1e-10, rtol=0)
    recipe.log_scale.grad = None
    recipe.step(batch).loss.backward()
    assert recipe.log_scale.grad is not None  # learned (its clamp passes no gradient above 100)
    frozen = CLIP(
        SmallCNN(in_channels=3, width=4, stages=2),
        SmallTextEncoder.from_texts(TEXTS, dim=16, layers=1, heads=2),
        CLIPConfig(image_size=8, lock_image=True),
    )
    frozen.train()
    assert not frozen.encoder.training and frozen.text_encoder.training
    assert not any(p.requires_grad for p in frozen.encoder.parameters())


def _two_process_case() -> None:
    full_batch = _batch()
    n = 8 // WORLD
    mine = torch.arange(n * dist.rank(), n * dist.rank() + n).tolist()
    local_batch = {
        "images": full_batch["images"][mine],
        "texts": [full_batch["texts"][i] for i in mine],
        "caption_ids": full_batch["caption_ids"][mine],
        "indices": full_batch["indices"][mine],
    }
    for loss in ("clip", "siglip"):
        for chunk in (0, 3):
            check_step_matches_one_process(_recipe(loss), full_batch, local_batch, chunk, loss)


def test_two_processes_equal_one_for_clip_and_siglip():
    spawn(_two_process_case)
