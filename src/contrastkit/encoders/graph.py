"""Graph encoders: GIN (GraphCL / InfoGraph's default) and GCN (GRACE's), on PyG batches.

Both take a PyG ``Batch`` (or a single ``Data``, whose ``batch`` is None: one graph) with node
features ``x`` of shape (num_nodes, in_dim) float, or (num_nodes, C) int64 category codes when
built with ``categorical`` (e.g. the 9 atom columns of ``torch_geometric.utils.from_smiles``,
:data:`SMILES_CARDINALITIES`), and ``edge_index`` (2, num_edges). They return graph embeddings
(num_graphs, out_dim); ``node_embeddings`` gives (num_nodes, node_dim).

Needs the ``graph`` extra (torch_geometric); importing :mod:`contrastkit.encoders` does not.

Example:
    >>> import torch
    >>> from torch_geometric.data import Batch, Data
    >>> g = Data(x=torch.randn(4, 7), edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]))
    >>> enc = GIN(in_dim=7, hidden=16, layers=3).eval()
    >>> enc(Batch.from_data_list([g, g])).shape, enc.out_dim, enc.node_dim
    (torch.Size([2, 48]), 48, 48)
    >>> GCN(in_dim=7, hidden=32, out_dim=8)(g).shape
    torch.Size([1, 8])
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit._checks import check_choice, require_extra

_pyg_nn = require_extra("torch_geometric.nn", "graph", "contrastkit.encoders.graph (GIN, GCN)")

__all__ = ["GCN", "GIN", "SMILES_CARDINALITIES", "CategoricalEncoder"]

#: Cardinalities of the 9 int64 atom-feature columns of ``torch_geometric.utils.from_smiles``
#: (atomic_num, chirality, degree, formal_charge, num_hs, num_radical_electrons, hybridization,
#: is_aromatic, is_in_ring): pass as ``categorical=SMILES_CARDINALITIES``.
SMILES_CARDINALITIES: list[int] = [119, 9, 11, 12, 9, 5, 8, 2, 2]

_READOUTS = ("sum", "mean", "max")


def _pool(readout: str):
    return {
        "sum": _pyg_nn.global_add_pool,
        "mean": _pyg_nn.global_mean_pool,
        "max": _pyg_nn.global_max_pool,
    }[readout]


class CategoricalEncoder(nn.Module):
    """Sum of one ``nn.Embedding(card_j, dim)`` per int64 column (OGB's AtomEncoder).

    Input (num_nodes, C) int64 codes with ``0 ≤ x[:, j] < cardinalities[j]``; output
    (num_nodes, dim).

    Example:
        >>> CategoricalEncoder([3, 2], dim=4)(torch.tensor([[0, 1], [2, 0]])).shape
        torch.Size([2, 4])
    """

    def __init__(self, cardinalities: list[int], dim: int) -> None:
        super().__init__()
        if not cardinalities or any(int(c) < 1 for c in cardinalities):
            raise ValueError(
                f"categorical must be a non-empty list of column cardinalities ≥ 1, got "
                f"{cardinalities}; e.g. categorical=SMILES_CARDINALITIES for from_smiles atoms."
            )
        self.cardinalities = [int(c) for c in cardinalities]
        # the bounds of the code check: one reduction per forward, not two per column
        self.register_buffer("_cards", torch.tensor(self.cardinalities), persistent=False)
        self.embeddings = nn.ModuleList(nn.Embedding(c, dim) for c in self.cardinalities)
        for emb in self.embeddings:
            nn.init.xavier_uniform_(emb.weight)

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_floating_point(x):
            raise TypeError(
                f"x has float dtype {x.dtype} but the encoder was built with categorical="
                f"{self.cardinalities} (int64 codes); pass the integer codes (x.long()) or build "
                f"the encoder without categorical for continuous features."
            )
        if x.dim() != 2 or x.shape[1] != len(self.cardinalities):
            raise ValueError(
                f"x must be (num_nodes, {len(self.cardinalities)}) category codes, one column "
                f"per entry of categorical={self.cardinalities}; got shape {tuple(x.shape)}."
            )
        if x.numel() and bool(((x < 0) | (x >= self._cards)).any()):
            hi = x.max(dim=0).values.tolist()
            lo = x.min(dim=0).values.tolist()
            for j, (c, mx, mn) in enumerate(zip(self.cardinalities, hi, lo, strict=True)):
                if mx >= c or mn < 0:
                    raise ValueError(
                        f"x column {j} holds code {mx if mx >= c else mn} outside [0, {c}) "
                        f"(categorical[{j}]={c}); raise categorical[{j}] to cover every code, "
                        f"or map unseen codes to a reserved index."
                    )
        out = self.embeddings[0](x[:, 0])
        for j in range(1, x.shape[1]):
            out = out + self.embeddings[j](x[:, j])
        return out


def _unpack(data: Any) -> tuple[Tensor, Tensor, Tensor, int]:
    """(x, edge_index, batch vector, num_graphs) of a PyG Batch or Data (batch None: one graph)."""
    x = getattr(data, "x", None)
    edge_index = getattr(data, "edge_index", None)
    if x is None or edge_index is None:
        raise ValueError(
            "the graph batch needs node features x and edge_index; for graphs without node "
            "features add constant ones, e.g. torch_geometric.transforms.Constant()."
        )
    batch = getattr(data, "batch", None)
    if batch is None:
        batch = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        num_graphs = 1
    else:
        num_graphs = int(getattr(data, "num_graphs", int(batch.max()) + 1 if batch.numel() else 0))
    return x, edge_index, batch, num_graphs


class _InputMixin:
    in_dim: int
    input_encoder: CategoricalEncoder | None

    def _init_input(self, name: str, in_dim: int, hidden: int, categorical: Any) -> int:
        """Check ``in_dim``/``categorical``, set ``in_dim`` and ``input_encoder``; returns the
        first layer's input width (``hidden`` for category codes, else ``in_dim``)."""
        if categorical is None and in_dim < 1:
            raise ValueError(
                f"{name} in_dim must be ≥ 1 for float node features, got {in_dim}; pass "
                f"categorical=[...] for integer code columns instead."
            )
        self.in_dim = int(in_dim)
        self.input_encoder = (
            CategoricalEncoder(list(categorical), hidden) if categorical is not None else None
        )
        return hidden if categorical is not None else in_dim

    def _embed_input(self, x: Tensor, name: str) -> Tensor:
        if self.input_encoder is not None:
            return self.input_encoder(x)
        if not torch.is_floating_point(x):
            raise TypeError(
                f"{name} got integer node features (dtype {x.dtype}); cast them with x.float(), "
                f"or build {name}(categorical=[...]) to embed category codes (for from_smiles "
                f"molecules: categorical=SMILES_CARDINALITIES)."
            )
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ValueError(
                f"{name} was built with in_dim={self.in_dim} but x has shape {tuple(x.shape)}; "
                f"build it with in_dim=x.shape[1] (here {x.shape[-1]})."
            )
        return x


class GIN(_InputMixin, nn.Module):
    """Graph Isomorphism Network as in GraphCL's / InfoGraph's unsupervised TU encoder.

    Each layer: ``GINConv(Linear–ReLU–Linear)`` → ReLU → BatchNorm1d (→ dropout); each layer's
    node embeddings are pooled per graph (``readout``) and, with ``concat``, the layers'
    readouts are concatenated.

    Args:
        in_dim: width of float node features x (ignored with ``categorical``).
        hidden: width of every layer.
        layers: number of GIN layers.
        readout: ``"sum"`` (GraphCL), ``"mean"`` or ``"max"`` pooling.
        concat: concatenate all layers (``out_dim = hidden·layers``) or keep the last
            (``out_dim = hidden``).
        categorical: cardinalities of int64 code columns; the input becomes the sum of one
            embedding (width ``hidden``) per column.
        batch_norm: BatchNorm1d after each layer.
        dropout: dropout after each layer (training only).

    Shapes: ``forward(batch)`` → (num_graphs, out_dim); ``node_embeddings(batch)`` →
    (num_nodes, node_dim) with ``node_dim = out_dim``; ``forward_with_nodes`` gives both.

    Example:
        >>> from torch_geometric.utils import from_smiles
        >>> enc = GIN(in_dim=0, hidden=8, layers=2, categorical=SMILES_CARDINALITIES).eval()
        >>> g, nodes = enc.forward_with_nodes(from_smiles("CCO"))
        >>> g.shape, nodes.shape
        (torch.Size([1, 16]), torch.Size([3, 16]))
        >>> GIN(**enc.config).out_dim
        16
    """

    def __init__(
        self,
        in_dim: int,
        hidden: int = 32,
        layers: int = 5,
        readout: str = "sum",
        concat: bool = True,
        categorical: list[int] | None = None,
        batch_norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_choice(readout, "readout", _READOUTS)
        if layers < 1 or hidden < 1:
            raise ValueError(f"GIN needs layers ≥ 1 and hidden ≥ 1, got {layers=}, {hidden=}.")
        first = self._init_input("GIN", in_dim, hidden, categorical)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}.")
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        for i in range(layers):
            d = first if i == 0 else hidden
            mlp = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
            self.convs.append(_pyg_nn.GINConv(mlp))
            self.bns.append(nn.BatchNorm1d(hidden) if batch_norm else nn.Identity())
        self.readout = readout
        self.concat = concat
        self.dropout = float(dropout)
        self.out_dim = hidden * layers if concat else hidden
        self.node_dim = self.out_dim
        self.config: dict[str, Any] = {
            "in_dim": int(in_dim),
            "hidden": int(hidden),
            "layers": int(layers),
            "readout": readout,
            "concat": bool(concat),
            "categorical": [int(c) for c in categorical] if categorical is not None else None,
            "batch_norm": bool(batch_norm),
            "dropout": float(dropout),
        }

    def _layers(self, data: Any) -> tuple[list[Tensor], Tensor, int]:
        x, edge_index, batch, num_graphs = _unpack(data)
        h = self._embed_input(x, "GIN")
        hs = []
        for conv, bn in zip(self.convs, self.bns, strict=True):
            h = bn(F.relu(conv(h, edge_index)))
            if self.dropout:
                h = F.dropout(h, self.dropout, self.training)
            hs.append(h)
        return hs, batch, num_graphs

    def forward_with_nodes(self, data: Any) -> tuple[Tensor, Tensor]:
        """One pass: (graph embeddings (num_graphs, out_dim), node embeddings
        (num_nodes, node_dim))."""
        hs, batch, num_graphs = self._layers(data)
        pool = _pool(self.readout)
        kept = hs if self.concat else hs[-1:]
        graphs = torch.cat([pool(h, batch, num_graphs) for h in kept], dim=1)
        return graphs, torch.cat(kept, dim=1)

    def forward(self, data: Any) -> Tensor:
        """Graph embeddings (num_graphs, out_dim)."""
        return self.forward_with_nodes(data)[0]

    def node_embeddings(self, data: Any) -> Tensor:
        """Node embeddings (num_nodes, node_dim): the layers' outputs concatenated
        (the last layer's only when ``concat`` is False)."""
        hs, _, _ = self._layers(data)
        return torch.cat(hs if self.concat else hs[-1:], dim=1)


class GCN(_InputMixin, nn.Module):
    """Stacked ``GCNConv`` layers with an activation after each, as GRACE's encoder.

    Widths: ``in_dim → hidden → … → hidden → out_dim`` (``layers`` convolutions, ``out_dim``
    defaults to ``hidden``); PReLU (one learnable slope per layer) or ReLU after every layer,
    the last included. ``GCNConv`` uses ``cached=False`` and needs no torch_sparse.

    Args:
        in_dim: width of float node features (ignored with ``categorical``).
        hidden: width of the hidden layers.
        layers: number of GCN layers (≥ 1).
        out_dim: width of the last layer (None: ``hidden``).
        activation: ``"prelu"`` or ``"relu"``.
        readout: pooling of ``forward``: ``"mean"``, ``"sum"`` or ``"max"``.
        categorical: cardinalities of int64 code columns, embedded to ``hidden`` and summed.

    Shapes: ``node_embeddings(data)`` → (num_nodes, out_dim); ``forward(batch)`` →
    (num_graphs, out_dim); ``node_dim == out_dim``.

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> g = Data(x=torch.randn(5, 3), edge_index=torch.tensor([[0, 1], [1, 0]]))
        >>> GCN(in_dim=3, hidden=16).node_embeddings(g).shape
        torch.Size([5, 16])
    """

    def __init__(
        self,
        in_dim: int,
        hidden: int = 128,
        layers: int = 2,
        out_dim: int | None = None,
        activation: str = "prelu",
        readout: str = "mean",
        categorical: list[int] | None = None,
    ) -> None:
        super().__init__()
        check_choice(activation, "activation", ("prelu", "relu"))
        check_choice(readout, "readout", _READOUTS)
        if layers < 1 or hidden < 1:
            raise ValueError(f"GCN needs layers ≥ 1 and hidden ≥ 1, got {layers=}, {hidden=}.")
        first = self._init_input("GCN", in_dim, hidden, categorical)
        out = hidden if out_dim is None else int(out_dim)
        widths = [first] + [hidden] * (layers - 1) + [out]
        self.convs = nn.ModuleList(
            _pyg_nn.GCNConv(a, b, cached=False) for a, b in zip(widths[:-1], widths[1:])
        )
        self.acts = nn.ModuleList(
            nn.PReLU() if activation == "prelu" else nn.ReLU() for _ in range(layers)
        )
        self.readout = readout
        self.out_dim = out
        self.node_dim = out
        self.config: dict[str, Any] = {
            "in_dim": int(in_dim),
            "hidden": int(hidden),
            "layers": int(layers),
            "out_dim": out_dim if out_dim is None else int(out_dim),
            "activation": activation,
            "readout": readout,
            "categorical": [int(c) for c in categorical] if categorical is not None else None,
        }

    def _nodes(self, data: Any) -> tuple[Tensor, Tensor, int]:
        x, edge_index, batch, num_graphs = _unpack(data)
        h = self._embed_input(x, "GCN")
        edge_weight = getattr(data, "edge_weight", None)
        for conv, act in zip(self.convs, self.acts, strict=True):
            h = act(conv(h, edge_index, edge_weight))
        return h, batch, num_graphs

    def node_embeddings(self, data: Any) -> Tensor:
        """Node embeddings (num_nodes, out_dim)."""
        return self._nodes(data)[0]

    def forward_with_nodes(self, data: Any) -> tuple[Tensor, Tensor]:
        """One pass: (graph embeddings (num_graphs, out_dim), node embeddings
        (num_nodes, out_dim))."""
        h, batch, num_graphs = self._nodes(data)
        return _pool(self.readout)(h, batch, num_graphs), h

    def forward(self, data: Any) -> Tensor:
        """Graph embeddings (num_graphs, out_dim): the ``readout`` of the node embeddings."""
        return self.forward_with_nodes(data)[0]
