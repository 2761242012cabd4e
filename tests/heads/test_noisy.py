"""NoisyLinear: the factorised-noise formula by an explicit loop, its mean in eval mode, the
output variance against the analytic value, reproducible noise, gradcheck and state round trip."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from contrastkit.heads.noisy import NoisyLinear, reset_noise


def test_eval_mode_and_fresh_layer_are_the_mean_map():
    layer = NoisyLinear(5, 3, sigma0=0.5)
    x = torch.randn(4, 5)
    mean = F.linear(x, layer.weight_mu, layer.bias_mu)
    torch.testing.assert_close(layer(x), mean)  # no noise drawn yet
    reset_noise(layer, torch.Generator().manual_seed(0))
    assert not torch.allclose(layer(x), mean)
    torch.testing.assert_close(layer.eval()(x), mean)


def test_training_output_equals_an_explicit_loop():
    torch.manual_seed(0)
    layer = NoisyLinear(4, 3, sigma0=0.7).double()
    with torch.no_grad():
        layer.weight_sigma.uniform_(0.1, 0.9)
        layer.bias_sigma.uniform_(0.1, 0.9)
    layer.reset_noise(torch.Generator().manual_seed(3))
    x = torch.randn(2, 4, dtype=torch.float64)

    def f(v: float) -> float:
        return math.copysign(math.sqrt(abs(v)), v)

    # the noise is f of standard normals, drawn in the order (inputs, outputs)
    g = torch.Generator().manual_seed(3)
    e_in, e_out = torch.randn(4, generator=g).tolist(), torch.randn(3, generator=g).tolist()
    wm, ws = layer.weight_mu.detach(), layer.weight_sigma.detach()
    bm, bs = layer.bias_mu.detach(), layer.bias_sigma.detach()
    want = torch.zeros(2, 3, dtype=torch.float64)
    for n in range(2):
        for j in range(3):
            s = float(bm[j]) + float(bs[j]) * f(e_out[j])
            for i in range(4):
                w = float(wm[j, i])
                w += float(ws[j, i]) * f(e_out[j]) * f(e_in[i])
                s += w * float(x[n, i])
            want[n, j] = s
    torch.testing.assert_close(layer(x), want)


def test_output_variance_matches_the_factorised_noise():
    """Var y_j = σ_bj²·E|e| + Σ_i σ_ji² x_i²·(E|e|)², with E|e| = √(2/π) for e ~ N(0, 1)."""
    layer = NoisyLinear(6, 2, sigma0=0.5)
    with torch.no_grad():
        layer.weight_sigma.copy_(torch.linspace(0.05, 0.6, 12).view(2, 6))
        layer.bias_sigma.copy_(torch.tensor([0.3, 0.1]))
    x = torch.linspace(-1.0, 1.5, 6)
    g = torch.Generator().manual_seed(0)
    ys = []
    with torch.no_grad():
        for _ in range(20_000):
            layer.reset_noise(g)
            ys.append(layer(x))
        mean_map = layer.eval()(x)
    y = torch.stack(ys)
    m = math.sqrt(2 / math.pi)
    ws, bs = layer.weight_sigma.detach(), layer.bias_sigma.detach()
    want = bs**2 * m + (ws**2 * x**2).sum(1) * m**2
    torch.testing.assert_close(y.var(0), want, rtol=0.05, atol=0.0)
    torch.testing.assert_close(y.mean(0), mean_map, atol=0.02, rtol=0)


def test_noise_is_reproducible_and_saved_with_the_state():
    a, b = NoisyLinear(5, 4), NoisyLinear(5, 4)
    b.load_state_dict(a.state_dict())
    reset_noise(a, torch.Generator().manual_seed(7))
    reset_noise(b, torch.Generator().manual_seed(7))
    x = torch.randn(3, 5)
    torch.testing.assert_close(a(x), b(x))
    c = NoisyLinear(5, 4)
    c.load_state_dict(a.state_dict())  # the noise buffers travel with the weights
    torch.testing.assert_close(c(x), a(x))
    assert {"eps_in", "eps_out"} <= set(a.state_dict())


def test_gradcheck_float64():
    layer = NoisyLinear(3, 2, sigma0=0.5).double()
    layer.reset_noise(torch.Generator().manual_seed(1))
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)

    def fn(x, wm, ws, bm, bs):
        w = wm + ws * torch.outer(layer.eps_out, layer.eps_in)
        return F.linear(x, w, bm + bs * layer.eps_out)

    params = [
        p.detach().clone().requires_grad_(True)
        for p in (layer.weight_mu, layer.weight_sigma, layer.bias_mu, layer.bias_sigma)
    ]
    assert torch.autograd.gradcheck(fn, (x, *params))
    torch.testing.assert_close(fn(x, *params), layer(x))
    layer(x).sum().backward()
    assert layer.weight_sigma.grad is not None and layer.weight_sigma.grad.abs().sum() > 0


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="sigma0"):
        NoisyLinear(3, 2, sigma0=-1.0)
    with pytest.raises(ValueError, match="in_features"):
        NoisyLinear(0, 2)
