"""Views of an agent's observations: batched random crops of stacked frames (CURL, RAD).

A stacked observation (B, k·C, H, W) is cropped with one offset per row shared by all its
channels, so the frames of a stack stay aligned (Laskin et al. 2020, CURL §4.3: "random crop
... applied to the stack of frames consistently"). The crops are one gather, with no loop over
rows; acting and evaluation use the centre crop.

Example:
    >>> import torch
    >>> from contrastkit.augment.observations import center_crop, random_crop
    >>> x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6)
    >>> random_crop(x, 4, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([2, 3, 4, 4])
    >>> center_crop(x, 4)[0, 0, 0].tolist()
    [7.0, 8.0, 9.0, 10.0]
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["center_crop", "crop_at", "random_crop"]


def _check(x: Tensor, size: int) -> None:
    if x.ndim != 4:
        raise ValueError(f"observations must be (B, C, H, W), got shape {tuple(x.shape)}.")
    h, w = x.shape[-2:]
    if not 1 <= size <= min(h, w):
        raise ValueError(f"crop size must be in [1, {min(h, w)}] for {h}×{w} frames, got {size}.")


def crop_at(x: Tensor, top: Tensor, left: Tensor, size: int) -> Tensor:
    """Crop row ``b`` of ``x`` (B, C, H, W) at ``(top[b], left[b])`` to ``size × size``."""
    _check(x, size)
    # every crop of every row is a view of x; picking one per row copies B contiguous blocks
    windows = x.unfold(2, size, 1).unfold(3, size, 1)  # (B, C, H-S+1, W-S+1, S, S)
    b = torch.arange(x.shape[0], device=x.device)
    return windows[b, :, top.to(x.device), left.to(x.device)]


def random_crop(x: Tensor, size: int, generator: torch.Generator | None = None) -> Tensor:
    """A ``size × size`` crop of each row at a uniformly drawn offset (the same for all of the
    row's channels, i.e. all frames of a stack).

    Args:
        x: (B, C, H, W) observations of any dtype (uint8 frames stay uint8).
        size: the crop's side (≤ H, W).
        generator: a CPU generator for the offsets (seeded runs).
    """
    _check(x, size)
    h, w = x.shape[-2:]
    top = torch.randint(0, h - size + 1, (x.shape[0],), generator=generator)
    left = torch.randint(0, w - size + 1, (x.shape[0],), generator=generator)
    return crop_at(x, top, left, size)


def center_crop(x: Tensor, size: int) -> Tensor:
    """The central ``size × size`` crop of every row (the view an agent acts on)."""
    _check(x, size)
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]
