"""Tabular views: SCARF's marginal corruption and VIME's feature mask, batched.

Rows are float tensors (B, F): scaled numeric columns and categorical codes stored as floats
(any layout works: a corrupted cell takes a value its column really holds, so codes stay valid
codes). Nothing loops over rows or cells in Python; every random draw takes an optional
``torch.Generator`` (on the rows' device) and runs on any device.

References:
    Bahri et al. 2022, "SCARF: Self-Supervised Contrastive Learning using Random Feature
    Corruption" (ICLR): corrupt a random subset of ``round(c·F)`` features of each row by
    drawing each from the feature's empirical marginal over the training rows (c = 0.6).
    Yoon et al. 2020, "VIME: Extending the Success of Self- and Semi-supervised Learning to
    Tabular Domain" (NeurIPS): a Bernoulli(p_m) mask per cell.

Example:
    >>> import torch
    >>> reference = torch.arange(12.0).reshape(4, 3)  # 4 training rows, 3 features
    >>> corrupt = MarginalCorruption(reference, rate=0.6)
    >>> x = -torch.ones(2, 3)
    >>> out, mask = corrupt(x, generator=torch.Generator().manual_seed(0))
    >>> mask.sum(dim=1).tolist()  # round(0.6 · 3) = 2 cells per row
    [2, 2]
    >>> bool((out[mask].reshape(2, 2) >= 0).all() and (out[~mask] == -1).all())
    True
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["MarginalCorruption", "corrupted_count", "marginal_corruption", "mask_features"]


def _check_rate(rate: float) -> float:
    if not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"the corruption rate must lie in [0, 1], got {rate}; SCARF uses 0.6.")
    return float(rate)


def _check_rows(x: Tensor, name: str, width: int | None = None) -> None:
    if not isinstance(x, Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a 2-D (rows, features) tensor, got {shape}.")
    if width is not None and x.shape[1] != width:
        raise ValueError(
            f"{name} has {x.shape[1]} features but the reference rows have {width}; corrupt "
            f"rows of the table the reference was taken from."
        )


def corrupted_count(num_features: int, rate: float) -> int:
    """Cells corrupted per row: ``round(rate · num_features)`` (Python's rounding).

    Example:
        >>> corrupted_count(10, 0.6), corrupted_count(3, 0.6), corrupted_count(5, 0.0)
        (6, 2, 0)
    """
    return int(round(_check_rate(rate) * int(num_features)))


def marginal_corruption(
    x: Tensor, reference: Tensor, rate: float = 0.6, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """SCARF's view: in each row of ``x``, exactly ``round(rate · F)`` cells chosen uniformly
    at random are replaced by the same column's value in a uniformly random row of
    ``reference`` (a draw from the column's empirical marginal; one draw per cell).

    Args:
        x: (B, F) rows to corrupt (any float dtype, any device).
        reference: (M, F) rows whose columns give the marginals (the training rows), M ≥ 1.
        rate: the fraction of each row's cells to corrupt, in [0, 1].
        generator: optional generator on ``x``'s device, for reproducible views.

    Returns:
        ``(corrupted (B, F) in x's dtype, mask (B, F) bool)``: ``mask`` marks the corrupted
        cells (a corrupted cell may keep its value when the draw equals it).

    Example:
        >>> ref = torch.tensor([[10.0, 20.0], [11.0, 21.0]])
        >>> out, mask = marginal_corruption(torch.zeros(3, 2), ref, rate=0.5)
        >>> mask.sum(dim=1).tolist()
        [1, 1, 1]
    """
    _check_rows(reference, "reference")
    _check_rows(x, "x", reference.shape[1])
    if reference.shape[0] == 0:
        raise ValueError("reference has no rows; pass the training rows (M ≥ 1).")
    b, f = x.shape
    k = corrupted_count(f, rate)
    mask = torch.zeros(b, f, dtype=torch.bool, device=x.device)
    if k == 0 or b == 0:
        return x.clone(), mask
    # k distinct columns per row: the k smallest of F uniform keys (a random permutation's head)
    keys = torch.rand(b, f, generator=generator, device=x.device)
    cols = keys.topk(k, dim=1, largest=False).indices if k < f else None
    mask = mask.scatter_(1, cols, True) if cols is not None else ~mask
    rows = torch.randint(0, reference.shape[0], (b, f), generator=generator, device=x.device)
    ref = reference.to(device=x.device, dtype=x.dtype)
    drawn = ref[rows, torch.arange(f, device=x.device).expand(b, f)]
    return torch.where(mask, drawn, x), mask


class MarginalCorruption(nn.Module):
    """:func:`marginal_corruption` with its reference rows held as a non-persistent buffer
    (moved by ``.to(device)``, never saved in a checkpoint: they are data, not weights).

    Args:
        reference: (M, F) training rows (the empirical marginals).
        rate: fraction of each row's features to corrupt (0.6 in the SCARF paper).

    ``forward(x, generator=None)`` → ``(corrupted (B, F), mask (B, F) bool)``.

    Example:
        >>> corrupt = MarginalCorruption(torch.randn(100, 8), rate=0.25)
        >>> out, mask = corrupt(torch.randn(5, 8))
        >>> out.shape, mask.sum(dim=1).tolist()
        (torch.Size([5, 8]), [2, 2, 2, 2, 2])
    """

    reference: Tensor

    def __init__(self, reference: Tensor, rate: float = 0.6) -> None:
        super().__init__()
        reference = torch.as_tensor(reference)
        _check_rows(reference, "reference")
        if reference.shape[0] == 0:
            raise ValueError("reference has no rows; pass the training rows (M ≥ 1).")
        if not torch.is_floating_point(reference):
            reference = reference.float()
        self.rate = _check_rate(rate)
        self.register_buffer("reference", reference.detach().clone(), persistent=False)

    @property
    def num_features(self) -> int:
        return int(self.reference.shape[1])

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        return marginal_corruption(x, self.reference, self.rate, generator)

    def extra_repr(self) -> str:
        return f"rate={self.rate}, reference_rows={self.reference.shape[0]}"


def mask_features(x: Tensor, rate: float, generator: torch.Generator | None = None) -> Tensor:
    """VIME's mask: each cell of ``x`` (B, F) is masked independently with probability
    ``rate``; returns a (B, F) bool mask on ``x``'s device (the count per row varies, unlike
    :func:`marginal_corruption`).

    Example:
        >>> m = mask_features(torch.zeros(1000, 10), 0.3, torch.Generator().manual_seed(0))
        >>> m.shape, abs(m.float().mean().item() - 0.3) < 0.02
        (torch.Size([1000, 10]), True)
    """
    _check_rows(x, "x")
    p = _check_rate(rate)
    return torch.rand(x.shape, generator=generator, device=x.device) < p
