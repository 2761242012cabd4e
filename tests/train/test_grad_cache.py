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
