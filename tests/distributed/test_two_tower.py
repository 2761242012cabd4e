"""The two-tower recipe and its loss under the generic machinery, in float64: gradient caching
equals the plain step (1e-8), the trainer with gradient caching trains the same weights, and
two gloo processes with 4 interactions each equal one process with 8 (loss and every gradient,
1e-10), with items and users repeated within and across the ranks (the masks of duplicate
items and of a user's other items must see the other rank's rows).
"""

from __future__ import annotations

import copy

import pytest
import torch

from contrastkit import distributed as dist
from contrastkit.data.interactions import InteractionPairs
from contrastkit.losses.sampled_softmax import sampled_softmax
from contrastkit.recipes.two_tower import TwoTower, TwoTowerConfig
from contrastkit.train import TrainConfig, Trainer, grad_cache_step

from ._harness import WORLD, check_step_matches_one_process, close, single, spawn

F64 = torch.float64
N_USERS, N_ITEMS = 6, 9
# rows 1 and 6 share item 3 across the ranks, rows 0 and 2 item 5 within rank 0; user 2 has
# rows 2 and 5 (across), user 4 rows 6 and 7 (within)
USERS = torch.tensor([0, 1, 2, 3, 5, 2, 4, 4])
ITEMS = torch.tensor([5, 3, 5, 0, 8, 7, 3, 1])


def _recipe(**overrides) -> TwoTower:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2)
    cfg = TwoTowerConfig(dim=4, hidden=5, temperature=0.3, **overrides)
    counts = torch.randint(1, 20, (N_ITEMS,), generator=g)
    return TwoTower(
        N_USERS,
        N_ITEMS,
        cfg,
        item_counts=counts,
        user_features=torch.rand(N_USERS, 3, generator=g),
        item_features=torch.rand(N_ITEMS, 2, generator=g),
    ).to(F64)


def _batch(rows: torch.Tensor | None = None) -> dict:
    rows = torch.arange(8) if rows is None else rows
    return {"users": USERS[rows], "items": ITEMS[rows], "indices": rows}


def _grads(recipe) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in recipe.named_parameters() if p.grad is not None}


CONFIGS = {
    "default": {},
    "learned_tau_dot": {"learn_temperature": True, "normalize": False},
    "no_logq_no_user_mask": {"logq_correction": False, "mask_user_items": False},
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("chunk", [1, 3, 8])
def test_grad_cache_equals_the_plain_step(chunk, config):
    recipe = _recipe(**CONFIGS[config])
    twin = copy.deepcopy(recipe)
    plain = recipe.step(_batch())
    plain.loss.backward()
    cached = grad_cache_step(twin, _batch(), chunk)
    torch.testing.assert_close(cached.loss, plain.loss.detach(), atol=1e-8, rtol=0)
    expected, actual = _grads(recipe), _grads(twin)
    assert set(actual) == set(expected) and len(expected) >= 10
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], atol=1e-8, rtol=0, msg=key)


def test_trainer_with_grad_cache_matches_plain_training(tmp_path):
    g = torch.Generator().manual_seed(4)
    pairs = torch.stack(
        [
            torch.randint(0, N_USERS, (24,), generator=g),
            torch.randint(0, N_ITEMS, (24,), generator=g),
        ],
        dim=1,
    )
    weights = []
    for chunk in (0, 3):
        recipe = _recipe()
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
            seed=0,
        )
        assert len(Trainer(recipe, InteractionPairs(pairs), cfg).fit()) == 2
        weights.append(torch.cat([p.detach().flatten() for p in recipe.parameters()]))
    torch.testing.assert_close(weights[1], weights[0], atol=1e-8, rtol=0)


def _loss_case() -> None:
    """sampled_softmax alone: "labels" (global ids) and "instances" (no ids: per-rank rows)."""
    g = torch.Generator().manual_seed(7)
    q_full = torch.randn(8, 3, generator=g, dtype=F64)
    k_full = torch.randn(8, 3, generator=g, dtype=F64)
    log_q = torch.log(torch.rand(8, generator=g, dtype=F64) + 0.1)
    n = 8 // WORLD
    mine = slice(n * dist.rank(), n * dist.rank() + n)
    for gather, ids in (("labels", True), ("instances", False)):
        kw = {"query_ids": USERS, "key_ids": ITEMS} if ids else {}
        with single():
            q, k = q_full.clone().requires_grad_(), k_full.clone().requires_grad_()
            full = sampled_softmax(q, k, key_log_q=log_q, temperature=0.2, **kw)
            gq, gk = torch.autograd.grad(full, (q, k))
        q = q_full[mine].clone().requires_grad_()
        k = k_full[mine].clone().requires_grad_()
        local_kw = {name: t[mine] for name, t in kw.items()}
        local = sampled_softmax(
            q, k, key_log_q=log_q[mine], temperature=0.2, gather=gather, **local_kw
        )
        local.backward()
        close(dist.all_reduce_sum(local.detach()) / WORLD, full.detach(), f"{gather} loss")
        # data-parallel averaging of the gradient of each rank's share
        close(q.grad / WORLD, gq[mine], f"{gather} query gradient")
        close(k.grad / WORLD, gk[mine], f"{gather} key gradient")


def _recipe_case() -> None:
    n = 8 // WORLD
    mine = torch.arange(n * dist.rank(), n * dist.rank() + n)
    for config in sorted(CONFIGS):
        for chunk in (0, 3):
            check_step_matches_one_process(
                _recipe(**CONFIGS[config]), _batch(), _batch(mine), chunk, f"two_tower {config}"
            )


def _two_process_case() -> None:
    _loss_case()
    _recipe_case()


def test_two_processes_equal_one():
    spawn(_two_process_case)
