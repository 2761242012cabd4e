"""local_global_jsd: an explicit loop, analytic cases, gradcheck in float64, the module."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from contrastkit.losses import LocalGlobalJSDLoss, local_global_jsd

F64 = torch.float64
LOG2 = math.log(2.0)


def loop_jsd(local, graphs, ids) -> float:
    """InfoGraph's estimator written pair by pair."""
    pos, neg = [], []
    for n in range(local.shape[0]):
        for g in range(graphs.shape[0]):
            s = float(local[n] @ graphs[g])
            if g == int(ids[n]):
                pos.append(LOG2 - math.log1p(math.exp(-s)))
            else:
                neg.append(math.log1p(math.exp(-s)) + s - LOG2)
    e_neg = sum(neg) / len(neg) if neg else 0.0
    return e_neg - sum(pos) / len(pos)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_an_explicit_loop(seed):
    g = torch.Generator().manual_seed(seed)
    local = torch.randn(11, 5, generator=g, dtype=F64)
    graphs = torch.randn(4, 5, generator=g, dtype=F64)
    ids = torch.randint(0, 4, (11,), generator=g)
    got = local_global_jsd(local, graphs, local_ids=ids)
    assert abs(float(got) - loop_jsd(local, graphs, ids)) < 1e-12


def test_analytic_cases():
    # every score 0: both expectations are 0
    zero = local_global_jsd(torch.zeros(3, 2), torch.zeros(2, 2), local_ids=torch.tensor([0, 1, 1]))
    assert float(zero) == 0.0
    # perfect separation with large scores: the loss tends to -2 log 2
    big = 50.0
    local = torch.tensor([[big, -big], [-big, big]], dtype=F64)
    graphs = torch.eye(2, dtype=F64)
    assert (
        abs(float(local_global_jsd(local, graphs, local_ids=torch.tensor([0, 1]))) + 2 * LOG2)
        < 1e-12
    )
    # one graph: no negatives, the loss is -E_pos
    s = torch.tensor([[1.5]], dtype=F64)
    one = local_global_jsd(s, torch.ones(1, 1, dtype=F64), local_ids=torch.tensor([0]))
    assert abs(float(one) - -(LOG2 - float(F.softplus(-s)))) < 1e-12


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(3)
    local = torch.randn(6, 3, generator=g, dtype=F64, requires_grad=True)
    graphs = torch.randn(3, 3, generator=g, dtype=F64, requires_grad=True)
    ids = torch.tensor([0, 0, 1, 2, 2, 2])
    assert torch.autograd.gradcheck(
        lambda a, b: local_global_jsd(a, b, local_ids=ids), (local, graphs)
    )


def test_positives_raise_the_estimate():
    torch.manual_seed(0)
    graphs = torch.randn(3, 8)
    ids = torch.tensor([0, 1, 2, 0, 1, 2])
    aligned = graphs[ids] * 3
    shuffled = graphs[torch.tensor([1, 2, 0, 2, 0, 1])] * 3
    assert local_global_jsd(aligned, graphs, local_ids=ids) < local_global_jsd(
        shuffled, graphs, local_ids=ids
    )


def test_module_equals_function_and_bf16_is_upcast():
    torch.manual_seed(1)
    local, graphs = torch.randn(9, 4), torch.randn(3, 4)
    ids = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    expected = local_global_jsd(local, graphs, local_ids=ids)
    assert torch.equal(LocalGlobalJSDLoss()(local, graphs, local_ids=ids), expected)
    low = local_global_jsd(local.bfloat16(), graphs.bfloat16(), local_ids=ids)
    assert low.dtype == torch.float32 and abs(float(low) - float(expected)) < 0.05


@pytest.mark.parametrize(
    "local, graphs, ids, words",
    [
        (torch.randn(3, 4), torch.randn(2, 5), torch.tensor([0, 1, 1]), "same width"),
        (torch.randn(3, 4), torch.randn(2, 4), torch.tensor([0, 1]), "one per node"),
        (torch.randn(3, 4), torch.randn(2, 4), torch.tensor([0, 1, 2]), "rows of global_"),
        (torch.randn(3, 4), torch.randn(2, 4), torch.tensor([0.0, 1.0, 1.0]), "integer"),
    ],
)
def test_errors_name_the_problem(local, graphs, ids, words):
    with pytest.raises(ValueError, match=words):
        local_global_jsd(local, graphs, local_ids=ids)
