"""Gradient caching: the parameter gradients of the plain full-batch step, for every recipe."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from contrastkit.data import load_digits
from contrastkit.heads import ProjectionHead
from contrastkit.recipes import (
    SimCLR,
    SimCLRConfig,
    SupCon,
    SupConConfig,
    Supervised,
    SupervisedConfig,
)
from contrastkit.train import TrainConfig, Trainer, grad_cache_step
from contrastkit.train.recipe import Recipe


class RowEncoder(nn.Module):
    """Batch-independent float64 encoder (LayerNorm, optional dropout) for exact comparisons."""

    def __init__(self, in_dim: int = 64, out_dim: int = 12, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_dim, 32),
            nn.LayerNorm(32),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(32, out_dim),
        )
        self.out_dim = out_dim

    def forward(self, x):
        return self.net(x.to(self.net[1].weight.dtype))


def _recipe(kind: str, dropout: float = 0.0, seed: int = 0) -> Recipe:
    torch.manual_seed(seed)
    enc = RowEncoder(dropout=dropout)
    if kind == "supervised":
        recipe = Supervised(enc, SupervisedConfig(image_size=8, channels=1, flip=0.0))
    else:
        cls, cfg = (SimCLR, SimCLRConfig) if kind == "simclr" else (SupCon, SupConConfig)
        recipe = cls(enc, cfg(image_size=8, channels=1, flip=0.0, proj_hidden=16))
        recipe.head = ProjectionHead(enc.out_dim, 16, 8, bn=False)
    return recipe.double()


def _batch(n: int = 24) -> dict:
    d = load_digits().train
    return {"images": d.images[:n], "labels": d.labels[:n]}


def _grads(recipe: Recipe) -> dict[str, torch.Tensor]:
    return {k: p.grad.clone() for k, p in recipe.named_parameters() if p.grad is not None}


def _plain(recipe: Recipe, batch: dict, seed: int) -> dict[str, torch.Tensor]:
    recipe.zero_grad()
    torch.manual_seed(seed)
    recipe.step(batch).loss.backward()
    return _grads(recipe)


def _cached(recipe: Recipe, batch: dict, seed: int, chunk: int) -> dict[str, torch.Tensor]:
    recipe.zero_grad()
    torch.manual_seed(seed)
    grad_cache_step(recipe, batch, chunk)
    return _grads(recipe)


@pytest.mark.parametrize("kind", ["simclr", "supcon", "supervised"])
@pytest.mark.parametrize("chunk", [1, 5, 16, 48])
def test_parameter_gradients_equal_the_full_batch_step(kind, chunk):
    recipe, batch = _recipe(kind), _batch()
    expected = _plain(recipe, batch, seed=3)
    actual = _cached(recipe, batch, seed=3, chunk=chunk)
    assert set(actual) == set(expected) and len(actual) >= 4
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], atol=1e-8, rtol=0)


def test_dropout_is_replayed_so_both_passes_agree():
    """With dropout the reference is the chunk-wise graph pass drawn from the same state."""
    recipe, batch = _recipe("supcon", dropout=0.3), _batch()
    recipe.zero_grad()
    torch.manual_seed(5)
    prepared = recipe.prepare(batch)
    z = torch.cat([recipe.embed("views", c) for c in prepared["inputs"].split(7)])
    recipe.loss({"views": z}, prepared).loss.backward()
    expected = _grads(recipe)
    actual = _cached(recipe, batch, seed=5, chunk=7)
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], atol=1e-8, rtol=0)


def test_batch_norm_statistics_are_updated_once_per_chunk():
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16))
    enc.out_dim = 16
    recipe = SimCLR(enc, SimCLRConfig(image_size=8, channels=1, flip=0.0, proj_hidden=16))
    twin, batch = copy.deepcopy(recipe), _batch()
    torch.manual_seed(1)
    grad_cache_step(recipe, batch, 12)
    torch.manual_seed(1)
    prepared = twin.prepare(batch)
    for c in prepared["inputs"].split(12):
        twin.embed("views", c)
    for (name, a), b in zip(recipe.named_buffers(), twin.buffers()):
        torch.testing.assert_close(a, b, msg=name)


def test_trainer_with_grad_cache_matches_plain_training(tmp_path):
    digits = load_digits().train.subset(range(256))
    cfg = dict(epochs=2, batch_size=64, lr=0.1, progress=False, monitor_every=0, precision="fp32")
    weights = []
    for chunk in (0, 20):
        recipe = _recipe("simclr").float()
        trainer = Trainer(
            recipe, digits, TrainConfig(out_dir=str(tmp_path / str(chunk)), grad_cache=chunk, **cfg)
        )
        trainer.fit()
        weights.append(recipe.state_dict())
    for k in weights[0]:
        torch.testing.assert_close(weights[1][k], weights[0][k], atol=1e-4, rtol=1e-4)


def test_errors_name_the_fix():
    recipe, batch = _recipe("simclr"), _batch()
    with pytest.raises(ValueError, match="chunk_size"):
        grad_cache_step(recipe, batch, 0)

    class Opaque(Recipe):
        def step(self, batch):  # only the one-piece step
            raise AssertionError

    with pytest.raises(NotImplementedError, match="prepare/embed/loss"):
        grad_cache_step(Opaque(), batch, 4)


# --- two towers with a locked one (LiT): the locked trunk runs once per step -----------------

CAPTIONS = ["a red square", "a blue circle", "a red square", "a green star"] * 2


def _clip(lock: str, head_too: bool) -> Recipe:
    from contrastkit.encoders import SmallCNN
    from contrastkit.encoders.text import SmallTextEncoder
    from contrastkit.recipes.clip import CLIP, CLIPConfig

    torch.manual_seed(0)
    text = SmallTextEncoder.from_texts(CAPTIONS, dim=16, layers=1, heads=2, dropout=0.0)
    config = CLIPConfig(
        image_size=8, embed_dim=6, lock_image=lock == "image", lock_text=lock == "text"
    )
    # eval mode: SmallCNN's BatchNorm would normalise per chunk (rows must be independent)
    recipe = CLIP(SmallCNN(in_channels=3, width=4, stages=2), text, config).double().eval()
    if head_too:  # the whole tower locked: nothing in it trains
        (recipe.image_proj if lock == "image" else recipe.text_proj).requires_grad_(False)
    return recipe


def _pairs() -> dict:
    g = torch.Generator().manual_seed(1)
    return {
        "images": torch.randint(0, 256, (8, 3, 8, 8), dtype=torch.uint8, generator=g),
        "texts": list(CAPTIONS),
        "caption_ids": torch.tensor([0, 1, 0, 2, 0, 1, 0, 2]),
    }


def _count_rows(module: nn.Module) -> list[int]:
    rows: list[int] = []
    module.register_forward_hook(lambda m, args, out: rows.append(out.shape[0]))
    return rows


@pytest.mark.parametrize("lock", ["image", "text"])
@pytest.mark.parametrize("head_too", [False, True])
def test_a_locked_tower_is_embedded_once_and_gradients_equal_the_plain_step(lock, head_too):
    recipe = _clip(lock, head_too)
    plain = copy.deepcopy(recipe)
    expected = _plain(plain, _pairs(), seed=2)
    locked, trained = (
        (recipe.encoder, recipe.text_encoder)
        if lock == "image"
        else (recipe.text_encoder, recipe.encoder)
    )
    locked_rows, trained_rows = _count_rows(locked), _count_rows(trained)
    for _ in range(2):  # the first step chooses each tower's mode, the second reuses it
        locked_rows.clear(), trained_rows.clear()
        actual = _cached(recipe, _pairs(), seed=2, chunk=3)
        assert locked_rows == [3, 3, 2]  # once per chunk: no replay
        assert trained_rows == [3, 3, 2] * 2  # the trainable tower is replayed
        head = "image_proj.weight" if lock == "image" else "text_proj.weight"
        assert (head in expected) != head_too and "log_scale" in expected
        assert set(actual) == set(expected)
        for name in expected:
            torch.testing.assert_close(actual[name], expected[name], atol=1e-8, rtol=0, msg=name)


def test_a_kept_tower_updates_running_statistics_once_like_the_plain_step():
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16))
    enc.out_dim = 16
    enc.requires_grad_(False)  # frozen but in train mode: its statistics still move
    recipe = SimCLR(enc, SimCLRConfig(image_size=8, channels=1, flip=0.0, proj_hidden=16))
    recipe.head = nn.Linear(16, 8)
    twin, batch = copy.deepcopy(recipe), _batch()
    torch.manual_seed(1)
    grad_cache_step(recipe, batch, 48)  # one chunk: the plain step exactly
    torch.manual_seed(1)
    twin.step(batch).loss.backward()
    for (name, a), b in zip(recipe.named_buffers(), twin.buffers()):
        torch.testing.assert_close(a, b, msg=name)
    for (name, p), q in zip(recipe.named_parameters(), twin.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_unlocking_a_tower_makes_it_replayed_again():
    recipe = _clip("image", head_too=False)
    rows = _count_rows(recipe.encoder)
    _cached(recipe, _pairs(), seed=2, chunk=4)
    assert rows == [4, 4]
    recipe.encoder.requires_grad_(True)  # unlocked: its graph is large, so it is replayed
    rows.clear()
    expected = _plain(copy.deepcopy(recipe), _pairs(), seed=2)
    rows.clear()
    actual = _cached(recipe, _pairs(), seed=2, chunk=4)
    assert rows == [4, 4] * 2 and any(k.startswith("encoder.") for k in actual)
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], atol=1e-8, rtol=0, msg=name)
