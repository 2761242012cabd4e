"""Weight-space interpolation between a pre-trained and a fine-tuned model (WiSE-FT,
Wortsman et al. 2022).

Fine-tuning a strong pre-trained encoder on a narrow objective can lose what it knew. Averaging
the two weight vectors, θ(α) = (1 − α) · θ_pre + α · θ_tuned, often keeps most of both: the
models of one fine-tuning run stay in one linearly connected basin. Choose α on a validation
signal (never on the test data); α = 0 is the pre-trained model, α = 1 the fine-tuned one.

Example:
    >>> import torch
    >>> a, b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    >>> with torch.no_grad():
    ...     _ = a.weight.fill_(0.0), b.weight.fill_(1.0)
    >>> interpolate_weights(a, b, 0.25).weight.tolist()
    [[0.25, 0.25]]
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["interpolate_weights"]


def interpolate_weights(start: nn.Module, end: nn.Module, alpha: float) -> nn.Module:
    """A copy of ``end`` whose floating-point parameters and buffers are
    ``(1 - alpha) * start + alpha * end``; integer buffers (e.g. batch-norm counters) are
    ``end``'s.

    Args:
        start: the model before fine-tuning (e.g. the pre-trained encoder).
        end: the fine-tuned model, of the same architecture.
        alpha: the weight of ``end``, in [0, 1].

    Raises:
        ValueError: for an alpha outside [0, 1], or models whose state dicts differ in names
            or shapes.
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] (0: start, 1: end), got {alpha}.")
    a, b = start.state_dict(), end.state_dict()
    if a.keys() != b.keys():
        only = sorted(set(a) ^ set(b))[:5]
        raise ValueError(
            f"start and end have different state-dict entries (e.g. {only}); interpolate two "
            f"models of the same architecture (the encoder before and after fine-tuning)."
        )
    mixed = {}
    for key, tb in b.items():
        ta = a[key]
        if ta.shape != tb.shape:
            raise ValueError(
                f"{key!r} has shape {tuple(ta.shape)} in start and {tuple(tb.shape)} in end; "
                f"interpolate two models of the same architecture."
            )
        if tb.is_floating_point():
            mixed[key] = torch.lerp(ta.to(tb.dtype).to(tb.device), tb, float(alpha))
        else:
            mixed[key] = tb.clone()
    out = copy.deepcopy(end)
    out.load_state_dict(mixed)
    return out
