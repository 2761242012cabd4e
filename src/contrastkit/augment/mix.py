"""MixUp and CutMix for supervised fine-tuning, on whole batches with soft targets.

References: Zhang et al. 2018 (mixup); Yun et al. 2019 (CutMix).

Example:
    >>> import torch
    >>> from contrastkit.augment import mixup
    >>> x, y = torch.rand(8, 1, 28, 28), torch.arange(8) % 4
    >>> xm, ym = mixup(x, y, num_classes=4, alpha=0.2, generator=torch.Generator().manual_seed(0))
    >>> ym.sum(dim=1)
    tensor([1., 1., 1., 1., 1., 1., 1., 1.])
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["cutmix", "mixup"]


def _lam_and_perm(n: int, alpha: float, generator: torch.Generator | None) -> tuple[float, Tensor]:
    """λ ~ Beta(α, α) and a random partner permutation, both driven by ``generator``."""
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}.")
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    perm = torch.randperm(n, generator=generator)
    return lam, perm


def mixup(
    x: Tensor,
    y: Tensor,
    *,
    num_classes: int,
    alpha: float = 0.2,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Mix each sample with a random partner: ``λ·x + (1−λ)·x[perm]``, targets likewise.

    Args:
        x: (B, ...) float inputs. y: (B,) integer labels. num_classes: for the one-hot targets.
        alpha: Beta(α, α) parameter of λ.
        generator: for reproducible λ and partners.

    Returns:
        Mixed inputs (B, ...) and soft targets (B, num_classes) summing to 1.
    """
    lam, perm = _lam_and_perm(x.shape[0], alpha, generator)
    perm = perm.to(x.device)
    t = F.one_hot(y, num_classes).to(x.dtype)
    return lam * x + (1 - lam) * x[perm], lam * t + (1 - lam) * t[perm]


def cutmix(
    x: Tensor,
    y: Tensor,
    *,
    num_classes: int,
    alpha: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Paste a random box from a partner image; targets weighted by the pasted area.

    Args:
        x: (B, C, H, W) images. y: (B,) labels. num_classes, alpha, generator: as in
            :func:`mixup`.

    Returns:
        Mixed images and soft targets (B, num_classes); the target weight is the exact
        fraction of pixels kept after clipping the box to the image.
    """
    if x.dim() != 4:
        raise ValueError(f"cutmix needs (B, C, H, W) images, got shape {tuple(x.shape)}.")
    lam, perm = _lam_and_perm(x.shape[0], alpha, generator)
    perm = perm.to(x.device)
    h, w = x.shape[-2:]
    cut = (1.0 - lam) ** 0.5
    ch, cw = int(round(h * cut)), int(round(w * cut))
    cy, cx = (torch.rand(2, generator=generator) * torch.tensor([h, w])).long().tolist()
    y0, y1 = max(cy - ch // 2, 0), min(cy + ch - ch // 2, h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + cw - cw // 2, w)
    out = x.clone()
    out[:, :, y0:y1, x0:x1] = x[perm][:, :, y0:y1, x0:x1]
    kept = 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)
    t = F.one_hot(y, num_classes).to(x.dtype)
    return out, kept * t + (1 - kept) * t[perm]
