"""Momentum encoders: the EMA formula to 1e-7, the cosine schedule, no gradient to the target."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.memory import MomentumEncoder, cosine_momentum, ema_update_


def _net(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(5, 7), torch.nn.BatchNorm1d(7), torch.nn.Linear(7, 3)
    )


@pytest.mark.parametrize("m", [0.0, 0.5, 0.99, 0.999, 1.0])
def test_ema_update_matches_the_formula(m):
    target, online = _net(0), _net(1)
    before = [p.detach().double().clone() for p in target.parameters()]
    ema_update_(target, online, m)
    for t, b, o in zip(target.parameters(), before, online.parameters()):
        expected = m * b + (1 - m) * o.detach().double()
        assert (t.double() - expected).abs().max() < 1e-7


def test_momentum_encoder_follows_the_cosine_schedule_and_keeps_its_buffers():
    online = _net(1)
    enc = MomentumEncoder(online, base_momentum=0.9, final_momentum=1.0)
    assert all(not p.requires_grad for p in enc.parameters())
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
    before = [p.detach().double().clone() for p in enc.target.parameters()]
    running = enc.target[1].running_mean.clone()
    enc.update(online, step=25, total_steps=100)
    m = 1.0 - 0.1 * (math.cos(math.pi * 0.25) + 1) / 2
    assert abs(float(enc.momentum) - m) < 1e-15
    for t, b, o in zip(enc.target.parameters(), before, online.parameters()):
        assert (t.double() - (m * b + (1 - m) * o.detach().double())).abs().max() < 1e-7
    assert torch.equal(enc.target[1].running_mean, running)  # buffers follow the target's own data


def test_target_output_has_no_gradient_and_online_is_untouched():
    online = _net(2)
    enc = MomentumEncoder(online)
    out = enc(torch.randn(4, 5))
    assert not out.requires_grad
    assert all(p.requires_grad for p in online.parameters())


def test_cosine_momentum_endpoints_and_errors():
    assert cosine_momentum(0, 100, 0.99) == pytest.approx(0.99)
    assert cosine_momentum(50, 100, 0.99) == pytest.approx(0.995)
    assert cosine_momentum(100, 100, 0.99) == 1.0
    assert cosine_momentum(7, 100, 0.999, 0.999) == pytest.approx(0.999)
    with pytest.raises(ValueError, match="base"):
        cosine_momentum(0, 10, 1.2)
    with pytest.raises(ValueError, match="copy"):
        ema_update_(_net(0), torch.nn.Linear(5, 3), 0.9)
    with pytest.raises(ValueError, match="step"):
        MomentumEncoder(_net(0)).update(_net(1))
