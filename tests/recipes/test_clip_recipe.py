"""The CLIP recipe's tower handling: locked-feature caching, partial unlocking, tower lr."""

from __future__ import annotations

import pytest
import torch

from contrastkit.encoders import EfficientNetLite0, SmallCNN
from contrastkit.encoders.text import SmallTextEncoder
from contrastkit.recipes.clip import CLIP, CLIPConfig, unlock_last_blocks
from contrastkit.train.optim import build_optimizer

TEXTS = ["a red square", "a blue circle", "a red square", "a green star", "a cat", "a dog"]


def _batch(n: int = 6, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "images": torch.randint(0, 256, (n, 3, 16, 16), generator=g, dtype=torch.uint8),
        "texts": TEXTS[:n],
        "caption_ids": torch.tensor([0, 1, 0, 2, 3, 4][:n]),
        "indices": torch.arange(n),
    }


class Counting(SmallCNN):
    """A SmallCNN that counts the rows it embeds."""

    rows = 0

    def forward(self, x):
        Counting.rows += len(x)
        return super().forward(x)


def _recipe(cache: bool, flip: float = 0.0) -> CLIP:
    torch.manual_seed(0)
    text = SmallTextEncoder.from_texts(TEXTS, dim=16, layers=1, heads=2)
    cfg = CLIPConfig(
        image_size=16, embed_dim=8, lock_image=True, crop_scale=(1.0, 1.0), flip=flip,
        cache_locked=cache,
    )  # fmt: skip
    return CLIP(Counting(in_channels=3, width=8, stages=2), text, cfg)


def test_locked_image_features_are_computed_once_and_change_nothing():
    cached, plain = _recipe(True), _recipe(False)
    Counting.rows = 0
    torch.manual_seed(5)  # the text tower's dropout draws the same in both runs
    losses = [float(cached.step(_batch()).loss) for _ in range(3)]
    assert Counting.rows == 6  # the first step only
    Counting.rows = 0
    torch.manual_seed(5)
    expected = [float(plain.step(_batch()).loss) for _ in range(3)]
    assert Counting.rows == 18
    assert losses == expected
    out = cached.step(_batch())
    out.loss.backward()
    assert cached.image_proj.weight.grad is not None
    assert all(p.grad is None for p in cached.encoder.parameters())


def test_flipped_rows_are_cached_apart_from_unflipped_ones():
    recipe = _recipe(True, flip=0.5)
    torch.manual_seed(1)
    for _ in range(20):
        recipe.step(_batch())
    keys = set(recipe._features)
    assert keys <= set(range(12)) and len(keys) == 12  # each row, flipped and not
    x = recipe._resize(_batch()["images"][:1])
    with torch.no_grad():
        assert torch.allclose(recipe._features[1], recipe.encoder(x.flip(-1))[0], atol=1e-5)
        assert torch.allclose(recipe._features[0], recipe.encoder(x)[0], atol=1e-5)


def test_partial_unlocking_of_efficientnet_trains_only_its_last_blocks_and_head():
    enc = EfficientNetLite0(in_channels=3, input_size=32, pretrained=False)
    text = SmallTextEncoder.from_texts(TEXTS, dim=16, layers=2, heads=2)
    cfg = CLIPConfig(image_size=32, lock_image=True, unlock_image_blocks=2, lock_text=True,
                     unlock_text_blocks=1)  # fmt: skip
    recipe = CLIP(enc, text, cfg)
    trainable = {n.split(".")[1] + ("." + n.split(".")[2] if "_blocks" in n else "")
                 for n, p in recipe.encoder.named_parameters() if p.requires_grad}  # fmt: skip
    assert trainable == {"_blocks.14", "_blocks.15", "_conv_head", "_bn1"}
    recipe.train()
    assert recipe.encoder.net._blocks[15].training and recipe.encoder.net._bn1.training
    assert not recipe.encoder.net._blocks[13].training and not recipe.encoder.net._bn0.training
    assert any(p.requires_grad for p in recipe.text_encoder.parameters())
    assert not all(p.requires_grad for p in recipe.text_encoder.parameters())


def test_unlocking_a_tower_without_blocks_says_so():
    flat = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="no list of blocks"):
        unlock_last_blocks(flat, 1)


def test_pretrained_towers_train_at_tower_lr_times_the_base_rate():
    torch.manual_seed(0)
    text = SmallTextEncoder.from_texts(TEXTS, dim=16, layers=1, heads=2)
    text.pretrained = True
    recipe = CLIP(SmallCNN(in_channels=3, width=8, stages=2), text, CLIPConfig(image_size=16))
    opt = build_optimizer(recipe, "adamw", lr=1e-3, weight_decay=0.1)
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert opt.param_groups[0]["lr"] == 1e-3
    assert {lr_of[id(p)] for p in recipe.text_encoder.parameters()} == {1e-4}
    assert {lr_of[id(p)] for p in recipe.encoder.parameters()} == {1e-3}
    assert lr_of[id(recipe.text_proj.weight)] == 1e-3


def test_locked_text_features_are_cached_and_change_nothing():
    def make(cache: bool) -> CLIP:
        torch.manual_seed(0)
        text = SmallTextEncoder.from_texts(TEXTS, dim=16, layers=1, heads=2)
        cfg = CLIPConfig(image_size=16, embed_dim=8, lock_text=True, cache_locked=cache)
        return CLIP(SmallCNN(in_channels=3, width=8, stages=2), text, cfg)

    cached, plain = make(True), make(False)
    calls = []
    cached.text_encoder.register_forward_hook(lambda m, i, o: calls.append(len(o)))
    out = []
    for recipe in (cached, plain):
        torch.manual_seed(3)  # the same crops and flips
        out.append([float(recipe.step(_batch()).loss.detach()) for _ in range(3)])
    assert calls == [6]  # the captions were embedded once
    assert out[0] == pytest.approx(out[1], rel=1e-6)
    assert len(cached._text_features) == 6


def test_text_views_change_the_captions_while_training_only():
    torch.manual_seed(0)
    text = SmallTextEncoder.from_texts(TEXTS, dim=16, layers=1, heads=2)
    recipe = CLIP(SmallCNN(in_channels=3, width=8, stages=2), text,
                  CLIPConfig(image_size=16, text_views="crop"))  # fmt: skip
    long = ["one two three four five six seven eight nine ten"] * 6
    batch = {**_batch(), "texts": long}
    seen = []
    recipe.text_encoder.tokenize = lambda t, _tok=recipe.text_encoder.tokenize: (
        seen.append(list(t)) or _tok(t)
    )
    recipe.prepare(batch)
    assert any(t != long[0] for t in seen[-1])
    recipe.eval()
    recipe.prepare(batch)
    assert seen[-1] == long
    with pytest.raises(ValueError, match="text_views must be"):
        CLIP(SmallCNN(in_channels=3, width=8, stages=2), text,
             CLIPConfig(image_size=16, text_views="span"))  # fmt: skip


def test_the_bf16_loss_is_close_to_fp32_and_siglip_refuses_it():
    texts = [f"caption number {i}" for i in range(64)]
    torch.manual_seed(0)
    text = SmallTextEncoder.from_texts(texts, dim=16, layers=1, heads=2)
    batch = {
        "images": torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8),
        "texts": texts,
        "caption_ids": torch.arange(64),
    }
    losses = []
    for precision in ("fp32", "bf16"):
        torch.manual_seed(1)
        cfg = CLIPConfig(image_size=16, embed_dim=16, loss_precision=precision)
        recipe = CLIP(SmallCNN(in_channels=3, width=8, stages=2), text, cfg).eval()
        losses.append(float(recipe.step(batch).loss.detach()))
    assert abs(losses[1] - losses[0]) / losses[0] < 1e-2
    with pytest.raises(ValueError, match="bf16 for loss='clip' only"):
        CLIP(SmallCNN(in_channels=3, width=8, stages=2), text,
             CLIPConfig(image_size=16, loss="siglip", loss_precision="bf16"))  # fmt: skip


def test_an_identity_text_projection_keeps_the_text_space_and_stays_fixed():
    torch.manual_seed(0)
    text = SmallTextEncoder.from_texts(TEXTS, dim=16, layers=1, heads=2)
    cfg = CLIPConfig(image_size=16, embed_dim=8, text_projection="identity")
    recipe = CLIP(SmallCNN(in_channels=3, width=8, stages=2), text, cfg)
    assert recipe.image_proj.weight.shape == (16, recipe.encoder.out_dim)
    assert torch.equal(recipe.text_proj.weight, torch.eye(16))
    recipe.step(_batch()).loss.backward()
    assert recipe.text_proj.weight.grad is None and recipe.image_proj.weight.grad is not None
