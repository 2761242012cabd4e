"""Optimisers and schedules: decay exclusion, LARS against its formula, warm-up cosine."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.train import LARS, build_optimizer, param_groups, warmup_cosine


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(), torch.nn.Linear(6, 2)
    )


def test_no_weight_decay_on_biases_and_norms():
    m = _model()
    groups = param_groups(m, 0.05)
    decay = {id(p) for p in groups[0]["params"]}
    assert decay == {id(m[0].weight), id(m[3].weight)}
    assert groups[1]["weight_decay"] == 0.0 and len(groups[1]["params"]) == 4


def test_lars_step_matches_formula():
    m = _model()
    x = torch.randn(8, 4)
    m(x).pow(2).sum().backward()
    w0 = m[0].weight.detach().clone()
    g0 = m[0].weight.grad.detach().clone()
    b0, gb0 = m[0].bias.detach().clone(), m[0].bias.grad.detach().clone()
    lr, wd, eta = 0.5, 0.01, 0.001
    opt = LARS(param_groups(m, wd), lr=lr, weight_decay=wd, trust_coefficient=eta)
    opt.step()
    g = g0 + wd * w0
    trust = eta * w0.norm() / (g.norm() + 1e-8)
    torch.testing.assert_close(m[0].weight.detach(), w0 - lr * trust * g)
    torch.testing.assert_close(m[0].bias.detach(), b0 - lr * gb0)  # excluded: plain SGD


@pytest.mark.parametrize("name", ["sgd", "lars", "adamw", "adam"])
def test_build_optimizer_reduces_a_loss(name):
    m = _model()
    opt = build_optimizer(m, name, lr=0.05 if name != "lars" else 1.0, weight_decay=1e-4)
    x, y = torch.randn(64, 4), torch.randn(64, 2)
    first = None
    for _ in range(30):
        loss = torch.nn.functional.mse_loss(m(x), y)
        first = first if first is not None else float(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < first
    with pytest.raises(ValueError, match="optimizer must be one of"):
        build_optimizer(m, "rmsprop", lr=0.1)


def test_warmup_cosine_schedule():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = warmup_cosine(opt, total_steps=110, warmup_steps=10, final_lr_fraction=0.1)
    lrs = []
    for _ in range(110):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0)
    mid = 10 + 50
    assert lrs[mid] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)


def test_warmup_cosine_refit_continues_the_cosine_from_its_phase():
    from contrastkit.train.optim import WarmupCosine

    s = WarmupCosine(total_steps=110, warmup_steps=10, final_lr_fraction=0.1)
    before = s(60)  # phase 0.5
    s.refit(60, 85)  # 25 steps left instead of 50: the second half of the cosine, faster
    assert s(60) == pytest.approx(before, abs=1e-15)
    assert s.phase(60) == pytest.approx(0.5) and s.phase(72.5) == pytest.approx(0.75)
    assert s(85) == pytest.approx(0.1) and s(200) == pytest.approx(0.1)
    s.refit(70, 200)  # longer again: still continuous, still reaches the end
    assert s(70) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.7)))
    assert s(200) == pytest.approx(0.1)
    w = WarmupCosine(total_steps=100, warmup_steps=10, final_lr_fraction=0.0)
    w.refit(5, 60)  # inside the warm-up only the horizon moves
    assert w.rebase_step == 0 and w(5) == pytest.approx(0.6) and w(35) == pytest.approx(0.5)
