"""Weight interpolation (WiSE-FT): endpoints, the midpoint by hand, integer buffers, errors."""

from __future__ import annotations

import pytest
import torch

from contrastkit.train import interpolate_weights


def _net(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))


def test_endpoints_and_midpoint_match_the_formula():
    a, b = _net(0), _net(1)
    b[1].num_batches_tracked += 7
    for alpha in (0.0, 0.3, 1.0):
        m = interpolate_weights(a, b, alpha)
        for key, value in m.state_dict().items():
            va, vb = a.state_dict()[key], b.state_dict()[key]
            if value.is_floating_point():
                torch.testing.assert_close(value, (1 - alpha) * va + alpha * vb)
            else:
                assert torch.equal(value, vb)  # counters come from the fine-tuned model
    assert interpolate_weights(a, b, 0.5) is not b  # a copy: neither input changes
    torch.testing.assert_close(b[0].weight, _net(1)[0].weight)


def test_interpolation_errors():
    with pytest.raises(ValueError, match="alpha must be in"):
        interpolate_weights(_net(0), _net(1), 1.5)
    with pytest.raises(ValueError, match="different state-dict entries"):
        interpolate_weights(_net(0), torch.nn.Linear(3, 4), 0.5)
    with pytest.raises(ValueError, match="has shape"):
        interpolate_weights(torch.nn.Linear(3, 4), torch.nn.Linear(3, 5), 0.5)
