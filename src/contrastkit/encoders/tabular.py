"""Tabular encoders: an MLP (SCARF's encoder) and the ResNet-MLP of Gorishniy et al. 2021.

Both take float rows (B, F) laid out as ``[n_numeric numeric columns | one column per
categorical feature holding its code as a float]`` (what :mod:`contrastkit.data.tables`
gives: scaled numbers and missing indicators first, then codes 0 = missing/unknown, 1..K).
Each categorical column j has ``cardinalities[j]`` codes ``0 .. cardinalities[j] − 1``; its
code picks a learned vector of width ``cat_dim``, and the vectors are concatenated with the
numeric part. Codes are checked with one reduction per forward; a code out of range raises an
error that names the column.

Every layer works row by row (no BatchNorm; the ResNet's default norm is LayerNorm), so
gradient caching gives the plain step's gradients.

References:
    Bahri et al. 2022, "SCARF" (encoder f: 4 ReLU layers of 256 units).
    Gorishniy et al. 2021, "Revisiting Deep Learning Models for Tabular Data" (ResNet-MLP).

Example:
    >>> import torch
    >>> x = torch.cat([torch.randn(4, 3), torch.tensor([[0., 1.], [2., 0.], [1., 3.], [2., 2.]])], 1)
    >>> enc = TabularMLP(n_numeric=3, cardinalities=[3, 4], hidden=32, depth=2)
    >>> enc(x).shape, enc.out_dim
    (torch.Size([4, 32]), 32)
    >>> TabularResNet(n_numeric=3, cardinalities=[3, 4], hidden=16, depth=2, out_dim=8)(x).shape
    torch.Size([4, 8])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from contrastkit._checks import tracing

__all__ = [
    "TabularInput",
    "TabularMLP",
    "TabularResNet",
    "default_cat_dim",
    "tabular_mlp",
    "tabular_resnet",
]


def default_cat_dim(cardinalities: Sequence[int]) -> int:
    """The categorical embedding width when ``cat_dim`` is None: fastai's rule
    ``round(1.6 · K^0.56)`` for the largest cardinality K, clipped to [2, 16].

    Example:
        >>> default_cat_dim([3, 10]), default_cat_dim([1000])
        (6, 16)
    """
    if not cardinalities:
        return 0
    return int(min(16, max(2, round(1.6 * max(int(c) for c in cardinalities) ** 0.56))))


class TabularInput(nn.Module):
    """Rows (B, n_numeric + C) → (B, n_numeric + C·cat_dim): the numeric columns as they are,
    each categorical code replaced by its learned vector (one table with per-column offsets,
    so one lookup for all columns).

    Example:
        >>> inp = TabularInput(2, [3], cat_dim=4)
        >>> inp(torch.tensor([[0.5, -1.0, 2.0]])).shape, inp.out_dim
        (torch.Size([1, 6]), 6)
    """

    def __init__(
        self, n_numeric: int, cardinalities: Sequence[int] = (), cat_dim: int | None = None
    ) -> None:
        super().__init__()
        cards = [int(c) for c in cardinalities]
        if int(n_numeric) < 0 or any(c < 1 for c in cards) or (int(n_numeric) + len(cards)) < 1:
            raise ValueError(
                f"a tabular encoder needs n_numeric ≥ 0 and cardinalities ≥ 1 (codes 0..K), with "
                f"at least one column; got n_numeric={n_numeric}, cardinalities={cards}."
            )
        self.n_numeric = int(n_numeric)
        self.cardinalities = cards
        self.cat_dim = int(cat_dim) if cat_dim is not None else default_cat_dim(cards)
        if cards and self.cat_dim < 1:
            raise ValueError(f"cat_dim must be ≥ 1, got {cat_dim}.")
        self.num_features = self.n_numeric + len(cards)
        self.out_dim = self.n_numeric + len(cards) * self.cat_dim
        offsets = torch.tensor([0, *cards[:-1]], dtype=torch.long).cumsum(0) if cards else None
        self.register_buffer("_offsets", offsets, persistent=False)
        self.register_buffer(
            "_cards", torch.tensor(cards, dtype=torch.float32) if cards else None, persistent=False
        )
        self.embedding = nn.Embedding(sum(cards), self.cat_dim) if cards else None

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.num_features:
            raise ValueError(
                f"the tabular encoder was built for {self.num_features} columns (n_numeric="
                f"{self.n_numeric} + {len(self.cardinalities)} categorical) but got rows of shape "
                f"{tuple(x.shape)}; build it with the table's n_numeric and cardinalities."
            )
        if not torch.is_floating_point(x):
            x = x.float()
        if self.embedding is None:
            return x
        num, codes = x[:, : self.n_numeric], x[:, self.n_numeric :]
        cards = self._cards.to(codes.dtype)
        # one reduction: negative, too large, fractional or NaN codes
        if (
            codes.numel()
            and not tracing()
            and bool(((codes < 0) | (codes >= cards) | (codes != codes.round())).any())
        ):
            self._raise_bad_code(codes)
        idx = codes.long() + self._offsets
        cat = self.embedding(idx).flatten(1)
        return torch.cat([num, cat.to(num.dtype)], dim=1) if self.n_numeric else cat.to(x.dtype)

    def _raise_bad_code(self, codes: Tensor) -> None:
        for j, c in enumerate(self.cardinalities):
            col = codes[:, j]
            bad = (col < 0) | (col >= c) | (col != col.round())
            if bool(bad.any()):
                value = col[bad][0].item()
                raise ValueError(
                    f"categorical column {j} (table column {self.n_numeric + j}) holds code "
                    f"{value} outside the integers 0..{c - 1} (cardinalities[{j}]={c}); codes "
                    f"must be whole numbers below the column's cardinality (0 = missing/unknown): "
                    f"map unseen categories to 0, or build the encoder with the table's "
                    f"cardinalities."
                )


class TabularMLP(nn.Module):
    """SCARF's encoder: ``depth`` Linear–ReLU(–Dropout) layers on the embedded row.

    Args:
        n_numeric: numeric columns (first in each row).
        cardinalities: codes per categorical column (K + 1 with 0 = missing), in row order.
        hidden: width of every layer (256 in SCARF).
        depth: number of Linear–ReLU layers (4 in SCARF), ≥ 1.
        out_dim: width of the last layer (default ``hidden``); the embedding width.
        dropout: dropout after each hidden layer (not after the last).
        cat_dim: width of each categorical code's vector (default :func:`default_cat_dim`).

    Shapes: (B, n_numeric + len(cardinalities)) float → (B, out_dim).

    Example:
        >>> enc = TabularMLP(n_numeric=5, cardinalities=[], hidden=64, depth=3, out_dim=16)
        >>> enc(torch.randn(8, 5)).shape, TabularMLP(**enc.config).out_dim
        (torch.Size([8, 16]), 16)
    """

    def __init__(
        self,
        n_numeric: int,
        cardinalities: Sequence[int] = (),
        hidden: int = 256,
        depth: int = 4,
        out_dim: int | None = None,
        dropout: float = 0.0,
        cat_dim: int | None = None,
    ) -> None:
        super().__init__()
        if int(depth) < 1 or int(hidden) < 1:
            raise ValueError(f"TabularMLP needs depth ≥ 1 and hidden ≥ 1, got {depth}, {hidden}.")
        self.input = TabularInput(n_numeric, cardinalities, cat_dim)
        self.out_dim = int(out_dim or hidden)
        widths = [int(hidden)] * (int(depth) - 1) + [self.out_dim]
        layers: list[nn.Module] = []
        d = self.input.out_dim
        for i, w in enumerate(widths):
            layers += [nn.Linear(d, w), nn.ReLU()]
            if dropout and i < len(widths) - 1:
                layers.append(nn.Dropout(float(dropout)))
            d = w
        self.net = nn.Sequential(*layers)
        self.n_numeric = self.input.n_numeric
        self.cardinalities = self.input.cardinalities
        self.config: dict[str, Any] = {
            "n_numeric": self.n_numeric,
            "cardinalities": list(self.cardinalities),
            "hidden": int(hidden),
            "depth": int(depth),
            "out_dim": self.out_dim,
            "dropout": float(dropout),
            "cat_dim": self.input.cat_dim,
        }

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.input(x))


class _ResBlock(nn.Module):
    """x + Dropout(Linear(Dropout(ReLU(Linear(Norm(x)))))) (Gorishniy et al. 2021, eq. 2)."""

    def __init__(self, d: int, d_hidden: int, dropout: float, residual_dropout: float, norm: str):
        super().__init__()
        self.norm = nn.LayerNorm(d) if norm == "layer" else nn.BatchNorm1d(d)
        self.linear1 = nn.Linear(d, d_hidden)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(d_hidden, d)
        self.residual_dropout = nn.Dropout(residual_dropout)

    def forward(self, x: Tensor) -> Tensor:
        h = self.dropout(torch.relu(self.linear1(self.norm(x))))
        return x + self.residual_dropout(self.linear2(h))


class TabularResNet(nn.Module):
    """ResNet-MLP (Gorishniy et al. 2021): Linear(in, hidden) → ``depth`` residual blocks
    ``x + Dropout(Linear(Dropout(ReLU(Linear(Norm(x))))))`` with inner width
    ``hidden · hidden_factor`` → Norm → ReLU (→ Linear(hidden, out_dim) when ``out_dim``).

    Args:
        n_numeric, cardinalities, cat_dim: the row layout (as :class:`TabularMLP`).
        hidden: the residual stream's width. depth: residual blocks, ≥ 1.
        hidden_factor: inner width of a block relative to ``hidden`` (the paper tunes 1–4).
        dropout: inside each block (after the ReLU). residual_dropout: on each block's output.
        norm: ``"layer"`` (default: rows independent, exact under gradient caching) or
            ``"batch"`` (the paper's BatchNorm).
        out_dim: a final linear map to this width (default: none, out_dim = hidden).

    Shapes: (B, n_numeric + len(cardinalities)) float → (B, out_dim).

    Example:
        >>> enc = TabularResNet(n_numeric=4, cardinalities=[5], hidden=32, depth=2)
        >>> enc(torch.cat([torch.randn(3, 4), torch.tensor([[0.], [4.], [2.]])], 1)).shape
        torch.Size([3, 32])
    """

    def __init__(
        self,
        n_numeric: int,
        cardinalities: Sequence[int] = (),
        hidden: int = 256,
        depth: int = 4,
        out_dim: int | None = None,
        dropout: float = 0.0,
        cat_dim: int | None = None,
        hidden_factor: float = 2.0,
        residual_dropout: float = 0.0,
        norm: str = "layer",
    ) -> None:
        super().__init__()
        if norm not in ("layer", "batch"):
            raise ValueError(f"TabularResNet norm must be 'layer' or 'batch', got {norm!r}.")
        if int(depth) < 1 or int(hidden) < 1:
            raise ValueError(
                f"TabularResNet needs depth ≥ 1 and hidden ≥ 1, got {depth}, {hidden}."
            )
        self.input = TabularInput(n_numeric, cardinalities, cat_dim)
        d = int(hidden)
        d_hidden = max(1, int(round(d * float(hidden_factor))))
        self.first = nn.Linear(self.input.out_dim, d)
        self.blocks = nn.Sequential(
            *(_ResBlock(d, d_hidden, float(dropout), float(residual_dropout), norm)
              for _ in range(int(depth)))
        )  # fmt: skip
        self.norm = nn.LayerNorm(d) if norm == "layer" else nn.BatchNorm1d(d)
        self.last = nn.Linear(d, int(out_dim)) if out_dim else None
        self.out_dim = int(out_dim) if out_dim else d
        self.n_numeric = self.input.n_numeric
        self.cardinalities = self.input.cardinalities
        self.config: dict[str, Any] = {
            "n_numeric": self.n_numeric,
            "cardinalities": list(self.cardinalities),
            "hidden": d,
            "depth": int(depth),
            "out_dim": int(out_dim) if out_dim else None,
            "dropout": float(dropout),
            "cat_dim": self.input.cat_dim,
            "hidden_factor": float(hidden_factor),
            "residual_dropout": float(residual_dropout),
            "norm": norm,
        }

    def forward(self, x: Tensor) -> Tensor:
        h = torch.relu(self.norm(self.blocks(self.first(self.input(x)))))
        return self.last(h) if self.last is not None else h


def tabular_mlp(**config: Any) -> TabularMLP:
    """Build :class:`TabularMLP` from its keyword configuration (the registry's factory).

    Example:
        >>> tabular_mlp(n_numeric=4, cardinalities=[3], hidden=32, depth=2).out_dim
        32
    """
    return TabularMLP(**config)


def tabular_resnet(**config: Any) -> TabularResNet:
    """Build :class:`TabularResNet` from its keyword configuration (the registry's factory).

    Example:
        >>> tabular_resnet(n_numeric=4, hidden=32, depth=1, out_dim=8).out_dim
        8
    """
    return TabularResNet(**config)
