"""GraphCL under the generic machinery: gradient caching equals the plain step (float64,
1e-8), and two gloo processes with 4 graphs each equal one process with 8.

The encoder is a GIN without BatchNorm, whose graphs are embedded independently of each other
(BatchNorm in train mode normalises per chunk, like any sub-batched training). In the
gradient-caching test the views are GraphCL's random pool: ``prepare`` draws them once in both
paths from the same seed. Across processes every rank would draw other random views than the
one-process reference, so that test uses the ``"none"`` views (the graphs as they are): what
it checks is the gathering of embeddings and ids, which the views do not touch.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch_geometric.data import Batch, Data

from contrastkit import distributed as dist
from contrastkit.data.graphs import GraphSet
from contrastkit.encoders.graph import GIN
from contrastkit.recipes import GraphCL, GraphCLConfig
from contrastkit.train import TrainConfig, Trainer, grad_cache_step

from ._harness import WORLD, check_step_matches_one_process, spawn

F64 = torch.float64


def _graphs(n: int = 8, seed: int = 1) -> list[Data]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        k = int(torch.randint(3, 8, (1,), generator=g))
        src = torch.arange(k)
        dst = (src + 1) % k
        extra = torch.randint(0, k, (2, 2), generator=g)
        ei = torch.cat([torch.stack([src, dst]), extra], 1)
        ei = torch.cat([ei, ei.flip(0)], 1)
        ei = ei[:, ei[0] != ei[1]]
        out.append(Data(x=torch.randn(k, 4, generator=g, dtype=F64), edge_index=ei))
    return out


def _recipe(views: str = "graphcl", negatives: str = "cross_view") -> GraphCL:
    torch.manual_seed(0)
    enc = GIN(in_dim=4, hidden=6, layers=3, batch_norm=False)
    cfg = GraphCLConfig(views=views, negatives=negatives, aug_ratio=0.25)
    return GraphCL(enc, cfg).to(F64)


def _batch(graphs: list[Data]) -> dict:
    return {"graphs": Batch.from_data_list(graphs), "indices": torch.arange(len(graphs))}


def _grads(recipe) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in recipe.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("negatives", ["cross_view", "all"])
@pytest.mark.parametrize("chunk", [1, 3, 8])
def test_grad_cache_equals_the_plain_step(chunk, negatives):
    recipe = _recipe(negatives=negatives)
    twin = copy.deepcopy(recipe)
    batch = _batch(_graphs())
    torch.manual_seed(5)
    plain = recipe.step(batch)
    plain.loss.backward()
    torch.manual_seed(5)
    cached = grad_cache_step(twin, batch, chunk)
    torch.testing.assert_close(cached.loss, plain.loss.detach(), atol=1e-8, rtol=0)
    expected, actual = _grads(recipe), _grads(twin)
    assert set(actual) == set(expected) and len(expected) >= 8
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], atol=1e-8, rtol=0, msg=key)


def test_trainer_with_grad_cache_matches_plain_training(tmp_path):
    rows = GraphSet(_graphs(24, seed=3), None, [], "toy")
    weights = []
    for chunk in (0, 5):
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
        assert len(Trainer(recipe, rows, cfg).fit()) == 2
        weights.append(torch.cat([p.detach().flatten() for p in recipe.parameters()]))
    torch.testing.assert_close(weights[1], weights[0], atol=1e-8, rtol=0)


def _two_process_case() -> None:
    graphs = _graphs()
    full = _batch(graphs)
    n = 8 // WORLD
    mine = list(range(n * dist.rank(), n * dist.rank() + n))
    local = {
        "graphs": Batch.from_data_list([graphs[i] for i in mine]),
        "indices": torch.tensor(mine),
    }
    for negatives in ("cross_view", "all"):
        for chunk in (0, 3):
            recipe = _recipe("none", negatives)
            check_step_matches_one_process(recipe, full, local, chunk, f"graphcl {negatives}")


def test_two_processes_equal_one():
    spawn(_two_process_case)
