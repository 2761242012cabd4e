"""Extract features from an encoder over an image set (or texts), in eval mode, batched.

Example:
    >>> import torch
    >>> from contrastkit.evaluate import extract_features
    >>> enc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8))
    >>> extract_features(enc, torch.randint(0, 256, (10, 1, 8, 8), dtype=torch.uint8)).shape
    torch.Size([10, 8])
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

__all__ = ["extract_features"]


@torch.no_grad()
def extract_features(
    encoder: nn.Module,
    images: Tensor | list[str],
    *,
    batch_size: int = 512,
    device: str | torch.device | None = None,
    bf16: bool = False,
    channels_last: bool = False,
    mean: Tensor | None = None,
    std: Tensor | None = None,
) -> Tensor:
    """Encode uint8 (or float) images (N, C, H, W) → float32 features (N, D) on the CPU.

    ``images`` may also be a list of N strings for a text encoder (one with ``encode``, see
    :mod:`contrastkit.encoders.text`); ``bf16`` then runs it under bf16 autocast.
    The encoder is put in eval mode for the pass and its previous mode restored afterwards.
    """
    device = torch.device(device) if device is not None else next(encoder.parameters()).device
    if isinstance(images, (list, tuple)):
        if not hasattr(encoder, "encode"):
            raise TypeError(
                f"got {len(images)} texts but {type(encoder).__name__} is not a text encoder "
                "(no encode()); use contrastkit.encoders.text.HFTextEncoder or SmallTextEncoder."
            )
        ctx = (
            torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        )
        with ctx:
            return encoder.encode(list(images), batch_size=min(batch_size, 128), device=device)
    was_training = encoder.training
    encoder.eval()
    out = []
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    )
    try:
        for start in range(0, images.shape[0], batch_size):
            x = images[start : start + batch_size].to(device)
            x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
            if mean is not None and std is not None:
                x = (x - mean.view(1, -1, 1, 1).to(device)) / std.view(1, -1, 1, 1).to(device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast:
                f = encoder(x)
            out.append(f.float().cpu())
    finally:
        encoder.train(was_training)
    return torch.cat(out)
