"""Collapse diagnostics for embeddings: per-dimension std of normalised outputs, effective rank.

- ``embedding_std``: mean over dimensions of the std of L2-normalised embeddings. A healthy
  embedding spread over the sphere has std ≈ 1/√D; complete collapse gives 0 (Chen & He 2021,
  SimSiam, Fig. 2).
- ``effective_rank``: exp of the entropy of the normalised singular values (Roy & Vetterli
  2007); dimensional collapse shows as a rank far below D.

Example:
    >>> import torch
    >>> from contrastkit.evaluate import collapse_stats
    >>> s = collapse_stats(torch.randn(512, 16))
    >>> round(s["std_ratio"], 1), s["effective_rank"] > 14
    (1.0, True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["collapse_stats", "effective_rank", "embedding_std"]


def embedding_std(z: Tensor) -> float:
    """Mean per-dimension standard deviation of the L2-normalised rows of ``z`` (N, D)."""
    zn = F.normalize(z.float(), dim=1)
    return float(zn.std(dim=0).mean())


def effective_rank(z: Tensor, eps: float = 1e-12) -> float:
    """exp(H(p)) with p the singular values of the centred ``z`` (N, D) divided by their sum."""
    zc = z.float() - z.float().mean(dim=0, keepdim=True)
    s = torch.linalg.svdvals(zc)
    p = s / s.sum().clamp_min(eps)
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def collapse_stats(z: Tensor) -> dict[str, float]:
    """``std``, ``std_ratio`` (std·√D; ≈1 healthy, →0 collapsed) and ``effective_rank``."""
    std = embedding_std(z)
    return {
        "std": std,
        "std_ratio": std * z.shape[1] ** 0.5,
        "effective_rank": effective_rank(z),
    }
