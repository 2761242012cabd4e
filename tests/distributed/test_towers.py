"""Recipes with two towers, and with rows that are not tensors, under the generic machinery.

Two toy recipes in float64:

- ``TwoTower``: CLIP-shaped, tower ``"a"`` embeds (B, 5) vectors and tower ``"b"`` (B, 3)
  vectors with their own networks; symmetric InfoNCE with data-set indices as ids;
- ``BagTower``: tower ``"bags"`` embeds :class:`Bags` (a batch of variable-size sets of
  vectors, the shape of a graph batch: a non-tensor row kind registered in
  :mod:`contrastkit.data.fields`), tower ``"vecs"`` embeds vectors, with a learnable
  temperature held by the loss.

For each: gradient caching equals the plain step (1e-8), and two gloo processes with 4 rows
each equal one process with 8 (loss and gradients, 1e-10), with and without gradient caching.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import torch
from torch import Tensor, nn

from contrastkit import distributed as dist
from contrastkit.data.fields import FieldKind, kind_of, move, register_kind
from contrastkit.losses import info_nce
from contrastkit.train import TrainConfig, Trainer, grad_cache_step
from contrastkit.train.recipe import LossOutput, Recipe

from ._harness import WORLD, check_step_matches_one_process, spawn

F64 = torch.float64


@dataclass
class Bags:
    """A batch of sets of 3-d points (each row a (n_i, 3) tensor, n_i ≥ 1)."""

    items: list[Tensor]


class BagsKind(FieldKind):
    name = "bags"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, Bags)

    def collate(self, rows: Sequence[Tensor]) -> Bags:
        return Bags(list(rows))

    def to(self, value: Bags, device: torch.device) -> Bags:
        return Bags([t.to(device) for t in value.items])

    def select(self, value: Bags, index: Tensor) -> Bags:
        return Bags([value.items[i] for i in index.tolist()])

    def size(self, value: Bags) -> int:
        return len(value.items)

    def cat(self, values: Sequence[Bags]) -> Bags:
        return Bags([t for v in values for t in v.items])


register_kind(BagsKind())


class TwoTower(Recipe):
    name = "toy_two_tower"
    towers = ("a", "b")

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 4))
        self.other = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 4))

    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {**batch, "inputs": {"a": batch["a"], "b": batch["b"]}}

    def embed(self, tower: str, rows: Tensor) -> Tensor:
        return (self.encoder if tower == "a" else self.other)(rows)

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Any]) -> LossOutput:
        loss = info_nce(
            by_tower["a"],
            by_tower["b"],
            query_ids=prepared["indices"],
            temperature=0.2,
            symmetric=True,
            gather="labels",
        )
        return LossOutput(loss=loss, embeddings=by_tower["a"].detach())


class BagTower(Recipe):
    name = "toy_bags"
    towers = ("bags", "vecs")

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(3, 6), nn.Tanh())  # per point, then mean
        self.readout = nn.Linear(6, 4)
        self.other = nn.Linear(5, 4)
        self.log_tau = nn.Parameter(torch.tensor(-1.0, dtype=F64))  # the loss's own parameter

    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {**batch, "inputs": {"bags": batch["bags"], "vecs": batch["a"]}}

    def embed(self, tower: str, rows: Any) -> Tensor:
        if tower == "vecs":
            return self.other(rows)
        return self.readout(torch.stack([self.encoder(t).mean(0) for t in rows.items]))

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Any]) -> LossOutput:
        loss = info_nce(
            by_tower["bags"],
            by_tower["vecs"],
            query_ids=prepared["indices"],
            temperature=self.log_tau.exp(),
            symmetric=True,
            gather="labels",
        )
        return LossOutput(loss=loss, embeddings=by_tower["bags"].detach())


RECIPES = {"two_tower": TwoTower, "bags": BagTower}


def _recipe(name: str) -> Recipe:
    torch.manual_seed(0)
    return RECIPES[name]().to(F64)


def _batch(n: int = 8, seed: int = 1) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, 5, (n,), generator=g).tolist()
    return {
        "a": torch.randn(n, 5, generator=g, dtype=F64),
        "b": torch.randn(n, 3, generator=g, dtype=F64),
        "bags": Bags([torch.randn(s, 3, generator=g, dtype=F64) for s in sizes]),
        "indices": torch.arange(n),
    }


def _select(batch: dict[str, Any], index: Tensor) -> dict[str, Any]:
    """Rows ``index`` of every field, each through its kind."""
    return {k: kind_of(v).select(v, index) for k, v in batch.items()}


def _grads(recipe: Recipe) -> dict[str, Tensor]:
    return {n: p.grad.clone() for n, p in recipe.named_parameters() if p.grad is not None}


def test_the_bag_kind_is_found_by_value_and_moves_selects_and_concatenates():
    batch = _batch()
    kind = kind_of(batch["bags"])
    assert kind.name == "bags" and kind.size(batch["bags"]) == 8
    part = kind.select(batch["bags"], torch.tensor([3, 1]))
    assert part.items[0] is batch["bags"].items[3]
    assert kind.size(kind.cat([part, part])) == 4
    moved = move(batch, torch.device("cpu"), {"bags": "bags"})
    assert torch.equal(moved["bags"].items[2], batch["bags"].items[2])


@pytest.mark.parametrize("name", sorted(RECIPES))
@pytest.mark.parametrize("chunk", [1, 3, 8])
def test_grad_cache_equals_the_plain_step(name, chunk):
    recipe, batch = _recipe(name), _batch()
    twin = copy.deepcopy(recipe)
    plain = recipe.step(batch)
    plain.loss.backward()
    cached = grad_cache_step(twin, batch, chunk)
    torch.testing.assert_close(cached.loss, plain.loss.detach(), atol=1e-8, rtol=0)
    expected, actual = _grads(recipe), _grads(twin)
    assert set(actual) == set(expected) and len(expected) >= 4
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], atol=1e-8, rtol=0, msg=key)


class _Rows:
    """A data set for the trainer: ``rows(index)`` selects every field through its kind."""

    fields: ClassVar[dict[str, str]] = {
        "a": "tensor",
        "b": "tensor",
        "bags": "bags",
        "indices": "ids",
    }
    labels = None

    def __init__(self, n: int) -> None:
        self.data = _batch(n, seed=3)

    def __len__(self) -> int:
        return len(self.data["a"])

    def rows(self, index: Tensor) -> dict[str, Any]:
        return _select(self.data, index)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_trainer_with_grad_cache_matches_plain_training(name, tmp_path):
    weights = []
    for chunk in (0, 3):
        recipe = _recipe(name)
        cfg = TrainConfig(
            epochs=2,
            batch_size=8,
            optimizer="sgd",
            lr=0.5,
            precision="fp32",
            grad_cache=chunk,
            out_dir=str(tmp_path / f"c{chunk}"),
            progress=False,
            tensorboard=False,
        )
        history = Trainer(recipe, _Rows(24), cfg).fit()
        assert len(history) == 2
        weights.append(torch.cat([p.detach().flatten() for p in recipe.parameters()]))
    torch.testing.assert_close(weights[1], weights[0], atol=1e-8, rtol=0)


def _two_process_case() -> None:
    full_batch = _batch()
    n = 8 // WORLD
    mine = torch.arange(n * dist.rank(), n * dist.rank() + n)
    for name in sorted(RECIPES):
        for chunk in (0, 3):
            local_batch = _select(full_batch, mine)
            check_step_matches_one_process(_recipe(name), full_batch, local_batch, chunk, name)


def test_two_processes_equal_one():
    spawn(_two_process_case)
