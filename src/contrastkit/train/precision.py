"""Precision choice: bf16 autocast where the hardware does bf16 matmuls natively."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["autocast", "bf16_supported", "resolve_precision"]


def bf16_supported(device: torch.device) -> bool:
    """True on CUDA GPUs with bf16 and on CPUs with AMX or AVX-512 BF16 instructions."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        cpu = torch.cpu
        checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
        return any(getattr(cpu, c, lambda: False)() for c in checks)
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"auto"`` → ``"bf16"`` if :func:`bf16_supported` else ``"fp32"``; validates names."""
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', got {precision!r}.")
    if precision == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    return precision


def autocast(precision: str, device: torch.device):
    """The autocast context for a resolved precision."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
