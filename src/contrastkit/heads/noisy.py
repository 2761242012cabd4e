"""Noisy linear layers for exploration (Fortunato et al. 2018, "Noisy Networks for
Exploration", factorised Gaussian noise, §3.2), as in Rainbow and data-efficient Rainbow.

In training mode the layer computes ``y = (μ_w + σ_w ⊙ ε_w) x + μ_b + σ_b ⊙ ε_b`` with
``ε_w = f(ε_out) f(ε_in)ᵀ``, ``ε_b = f(ε_out)`` and ``f(x) = sign(x)·√|x|``; the σ's are
learned, so the network learns how much to explore in each state. The noise stays fixed until
:meth:`NoisyLinear.reset_noise` draws it again (from a ``torch.Generator``, so runs are
reproducible and resumable: the noise lives in buffers, saved with the state dict). In eval
mode the layer is the plain linear map ``μ_w x + μ_b``.

Example:
    >>> import torch
    >>> from contrastkit.heads.noisy import NoisyLinear, reset_noise
    >>> layer = NoisyLinear(8, 3, sigma0=0.5)
    >>> g = torch.Generator().manual_seed(0)
    >>> reset_noise(layer, g)
    >>> x = torch.randn(4, 8)
    >>> layer(x).shape, bool((layer(x) != layer.eval()(x)).any())
    (torch.Size([4, 3]), True)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["NoisyLinear", "reset_noise"]


def _signed_sqrt(x: Tensor) -> Tensor:
    return x.sign() * x.abs().sqrt()


class NoisyLinear(nn.Module):
    """A linear layer with learned, factorised Gaussian weight noise.

    Args:
        in_features, out_features: as :class:`torch.nn.Linear`; input (..., in_features),
            output (..., out_features).
        sigma0: the noise scale at initialisation: ``σ = sigma0 / √in_features`` (Fortunato
            et al.: 0.5; data-efficient Rainbow: 0.1).

    The means are initialised uniformly in ``±1/√in_features``. Until the first
    :meth:`reset_noise` the noise is zero (the layer equals its mean).
    """

    def __init__(self, in_features: int, out_features: int, sigma0: float = 0.5) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(
                f"in_features and out_features must be ≥ 1, got {in_features}, {out_features}."
            )
        if sigma0 < 0:
            raise ValueError(f"sigma0 must be ≥ 0, got {sigma0}.")
        self.in_features, self.out_features, self.sigma0 = in_features, out_features, sigma0
        bound = 1.0 / math.sqrt(in_features)
        self.weight_mu = nn.Parameter(
            torch.empty(out_features, in_features).uniform_(-bound, bound)
        )
        self.bias_mu = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))
        self.weight_sigma = nn.Parameter(torch.full((out_features, in_features), sigma0 * bound))
        self.bias_sigma = nn.Parameter(torch.full((out_features,), sigma0 * bound))
        self.register_buffer("eps_in", torch.zeros(in_features))
        self.register_buffer("eps_out", torch.zeros(out_features))

    @torch.no_grad()
    def reset_noise(self, generator: torch.Generator | None = None) -> None:
        """Draw new factorised noise (on the CPU from ``generator``, then to the layer's
        device, so a CPU generator serves a CUDA layer)."""
        e_in = torch.randn(self.in_features, generator=generator)
        e_out = torch.randn(self.out_features, generator=generator)
        self.eps_in.copy_(_signed_sqrt(e_in))
        self.eps_out.copy_(_signed_sqrt(e_out))

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return F.linear(x, self.weight_mu, self.bias_mu)
        w = self.weight_mu + self.weight_sigma * torch.outer(self.eps_out, self.eps_in)
        b = self.bias_mu + self.bias_sigma * self.eps_out
        return F.linear(x, w, b)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, sigma0={self.sigma0}"


def reset_noise(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """Draw new noise for every :class:`NoisyLinear` inside ``module`` (in module order)."""
    for m in module.modules():
        if isinstance(m, NoisyLinear):
            m.reset_noise(generator)
