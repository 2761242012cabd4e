"""Split BN equals BN per split; eval mode and state-dict keys are plain BN's; shuffling."""

from __future__ import annotations

import pytest
import torch

from contrastkit.memory import SplitBatchNorm2d, convert_split_batchnorm, shuffled_forward


def _reference(bn_state, x, splits):
    out = torch.empty_like(x)
    means, vars_ = [], []
    for k in range(splits):
        bn = torch.nn.BatchNorm2d(x.shape[1])
        bn.load_state_dict(bn_state)
        m = x.shape[0] // splits
        out[k * m : (k + 1) * m] = bn(x[k * m : (k + 1) * m])
        means.append(bn.running_mean)
        vars_.append(bn.running_var)
    return out, torch.stack(means).mean(0), torch.stack(vars_).mean(0)


@pytest.mark.parametrize("splits", [1, 2, 4])
def test_split_batchnorm_is_batchnorm_per_contiguous_split(splits):
    torch.manual_seed(0)
    plain = torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        plain.weight.uniform_(0.5, 1.5)
        plain.bias.uniform_(-1, 1)
    state = {k: v.clone() for k, v in plain.state_dict().items()}
    net = convert_split_batchnorm(torch.nn.Sequential(plain), splits)
    assert isinstance(net[0], SplitBatchNorm2d) and set(net.state_dict()) == {
        f"0.{k}" for k in state
    }
    x = torch.randn(8, 3, 4, 4).contiguous(memory_format=torch.channels_last)
    y = net(x)
    ref, mean, var = _reference(state, x, splits)
    assert torch.allclose(y, ref, atol=1e-5)
    assert torch.allclose(net[0].running_mean, mean, atol=1e-6)
    assert torch.allclose(net[0].running_var, var, atol=1e-6)
    net.eval()
    plain_eval = torch.nn.BatchNorm2d(3)
    plain_eval.load_state_dict(net[0].state_dict())
    plain_eval.eval()
    assert torch.allclose(net(x), plain_eval(x))


def test_split_batchnorm_gradients_flow_and_bad_batches_raise():
    net = convert_split_batchnorm(
        torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)), 2
    )
    x = torch.randn(6, 3, requires_grad=True)
    net(x).square().sum().backward()
    assert x.grad is not None and net[0].weight.grad is not None
    with pytest.raises(ValueError, match="multiple of 2"):
        net(torch.randn(5, 3))
    with pytest.raises(ValueError, match="at least 2 rows"):
        convert_split_batchnorm(torch.nn.BatchNorm1d(4), 4)(torch.randn(4, 4))


def test_shuffled_forward_returns_rows_in_order():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    x = torch.randn(10, 3)
    assert torch.allclose(shuffled_forward(net, x), net(x))
    # with split BN the statistics groups of the shuffled batch differ from the plain ones
    bn = convert_split_batchnorm(torch.nn.BatchNorm1d(3), 2)
    assert not torch.allclose(shuffled_forward(bn, x), bn(x))
