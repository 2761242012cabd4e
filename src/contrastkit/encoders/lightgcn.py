"""LightGCN: user and item embeddings smoothed over the user–item graph, with torch.sparse.

The bipartite interaction graph of U users and I items is one (U+I)×(U+I) sparse matrix
``Â = D^-1/2 A D^-1/2`` (:func:`normalized_adjacency`); a layer is ``E ← Â E`` (no weights, no
non-linearity) and the output is the mean of the layer embeddings (He et al. 2020). The
graph views of SGL (:func:`edge_dropout_adjacency`, :func:`node_dropout_adjacency`) and the
noise of SimGCL / XSimGCL (``propagate(noise_eps=...)``) are here too, so that the recipes
only compose them. No dense U×I matrix is ever made: memory is O((U+I)·D + M).

Matrices are CSR: on 2 CPU threads, 3 layers forward and backward over MovieLens-100K
(2,625 nodes, 160k non-zeros, D = 64) take about 3 ms, against about 18 ms with
``torch.sparse.mm``'s own backward on CSR and 27 ms on COO, because the backward of a
symmetric ``Â`` is ``Â`` itself (``_SymmetricSpMM``).

References: He et al. 2020, "LightGCN: Simplifying and Powering Graph Convolution Network for
Recommendation"; Wu et al. 2021, "Self-supervised Graph Learning for Recommendation" (SGL);
Yu et al. 2022, "Are Graph Augmentations Necessary? Simple Graph Contrastive Learning for
Recommendation" (SimGCL).

Example:
    >>> import torch
    >>> from contrastkit.encoders.lightgcn import LightGCN, normalized_adjacency
    >>> pairs = torch.tensor([[0, 0], [0, 1], [1, 1], [2, 2]])      # (user, item)
    >>> adj = normalized_adjacency(pairs, n_users=3, n_items=3)
    >>> model = LightGCN(3, 3, dim=8, layers=2)
    >>> users, items = model.propagate(adj)
    >>> users.shape, items.shape
    (torch.Size([3, 8]), torch.Size([3, 8]))
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "LightGCN",
    "edge_dropout_adjacency",
    "node_dropout_adjacency",
    "normalized_adjacency",
]

INITS = ("xavier", "normal")


def _check_pairs(pairs: Tensor, n_users: int, n_items: int) -> Tensor:
    p = torch.as_tensor(pairs)
    if p.dim() != 2 or p.shape[1] != 2 or p.is_floating_point() or p.dtype == torch.bool:
        raise ValueError(
            f"pairs must be (M, 2) integer (user, item) rows, got dtype {p.dtype} shape "
            f"{tuple(p.shape)}."
        )
    p = p.long()
    if p.numel() and (
        bool((p[:, 0] < 0).any() | (p[:, 0] >= n_users).any())
        or bool((p[:, 1] < 0).any() | (p[:, 1] >= n_items).any())
    ):
        raise ValueError(
            f"pairs hold ids outside users 0..{n_users - 1} × items 0..{n_items - 1}; number "
            f"users and items from 0 (Interactions does) and pass their counts."
        )
    return p


def unique_pairs(pairs: Tensor, n_items: int) -> Tensor:
    """Distinct (user, item) rows sorted by user then item (through 1-D keys
    ``user·n_items + item``: ~60× faster than ``torch.unique(dim=0)`` on CPU)."""
    keys = torch.unique(pairs[:, 0] * n_items + pairs[:, 1])
    return torch.stack([keys // n_items, keys % n_items], 1)


def normalized_adjacency(pairs: Tensor, n_users: int, n_items: int) -> Tensor:
    """The symmetric normalised adjacency ``D^-1/2 A D^-1/2`` of the user–item graph.

    Nodes ``0..U-1`` are users and ``U..U+I-1`` items; ``A`` has a 1 at (u, U+i) and
    (U+i, u) for each distinct interaction, so entry (u, U+i) is ``1/√(d_u d_i)`` with d the
    node degrees (an isolated node's row is empty). Duplicate pairs count once.

    Args:
        pairs: (M, 2) integer (user, item) training interactions.
        n_users, n_items: U and I.

    Returns:
        A (U+I, U+I) float32 sparse CSR tensor on ``pairs``' device (sorted column indices,
        no duplicates: coalesced).
    """
    p = unique_pairs(_check_pairs(pairs, n_users, n_items), n_items)
    return _normalized(p, n_users, n_items)


def _normalized(p: Tensor, n_users: int, n_items: int) -> Tensor:
    """:func:`normalized_adjacency` of distinct pairs sorted by user then item."""
    n = n_users + n_items
    # users' rows are sorted already; items' rows by a stable sort, which keeps their users
    # ascending: the CSR order without sorting the 2M entries
    by_item = p[torch.argsort(p[:, 1], stable=True)]
    rows = torch.cat([p[:, 0], by_item[:, 1] + n_users])
    cols = torch.cat([p[:, 1] + n_users, by_item[:, 0]])
    counts = torch.bincount(rows, minlength=n)
    deg = counts.clamp_min(1).float()
    values = deg[rows].rsqrt() * deg[cols].rsqrt()
    crow = torch.zeros(n + 1, dtype=torch.long, device=p.device)
    crow[1:] = torch.cumsum(counts, 0)
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, cols, values, (n, n), check_invariants=False)


def _keep(n: int, ratio: float, generator: torch.Generator | None, device: Any) -> Tensor:
    """Bool (n,): exactly round(n·(1 − ratio)) True, uniformly placed."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"the dropout ratio must lie in [0, 1), got {ratio}.")
    gen_device = generator.device if generator is not None else device
    perm = torch.randperm(n, generator=generator, device=gen_device).to(device)
    keep = torch.zeros(n, dtype=torch.bool, device=device)
    keep[perm[: round(n * (1.0 - ratio))]] = True
    return keep


def edge_dropout_adjacency(
    pairs: Tensor,
    n_users: int,
    n_items: int,
    ratio: float = 0.1,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """SGL's edge dropout (SGL-ED): keep a random ``1 − ratio`` of the distinct interactions
    (exactly, as SGL's code) and renormalise: :func:`normalized_adjacency` of what is left.

    One vectorised draw (a permutation of the M pairs); ``generator`` makes it reproducible
    (None: the global RNG, seeded by ``torch.manual_seed``)."""
    p = unique_pairs(_check_pairs(pairs, n_users, n_items), n_items)
    return _normalized(p[_keep(p.shape[0], ratio, generator, p.device)], n_users, n_items)


def node_dropout_adjacency(
    pairs: Tensor,
    n_users: int,
    n_items: int,
    ratio: float = 0.1,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """SGL's node dropout (SGL-ND): drop a random ``ratio`` of the users and of the items
    (exactly) with all their interactions, and renormalise what is left."""
    p = unique_pairs(_check_pairs(pairs, n_users, n_items), n_items)
    keep_u = _keep(n_users, ratio, generator, p.device)
    keep_i = _keep(n_items, ratio, generator, p.device)
    return _normalized(p[keep_u[p[:, 0]] & keep_i[p[:, 1]]], n_users, n_items)


class _SymmetricSpMM(torch.autograd.Function):
    """``Â @ x`` for a symmetric sparse ``Â`` without gradient: the backward is ``Â @ g``.

    The product runs in ``Â``'s dtype (float32) outside autocast: sparse CSR products have no
    bf16 kernel, and propagation is cheap next to the rest of a step."""

    @staticmethod
    def forward(ctx: Any, adj: Tensor, x: Tensor) -> Tensor:
        ctx.adj, ctx.dtype = adj, x.dtype
        with torch.autocast(x.device.type, enabled=False):
            return torch.sparse.mm(adj, x.to(adj.dtype))

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor]:
        with torch.autocast(grad.device.type, enabled=False):
            return None, torch.sparse.mm(ctx.adj, grad.to(ctx.adj.dtype)).to(ctx.dtype)


class LightGCN(nn.Module):
    """User and item embedding tables, propagated over a normalised user–item graph.

    Args:
        n_users, n_items: U and I.
        dim: the embedding width (64 in the papers).
        layers: propagation layers L (3 in LightGCN; 0 is matrix factorisation, BPR-MF).
        init: ``"xavier"`` (Xavier-uniform tables, as SGL's and SimGCL's code) or
            ``"normal"`` (N(0, 0.1²), as LightGCN's PyTorch code).

    The ego tables are ``user_embedding`` and ``item_embedding`` (``nn.Embedding``); what the
    models rank with is :meth:`propagate`'s output. ``out_dim`` is ``dim``; ``config`` rebuilds
    the module (:func:`contrastkit.encoders.build_encoder`).
    """

    def __init__(
        self, n_users: int, n_items: int, dim: int = 64, layers: int = 3, init: str = "xavier"
    ) -> None:
        super().__init__()
        if n_users < 1 or n_items < 1 or dim < 1 or layers < 0:
            raise ValueError(
                f"LightGCN needs n_users, n_items, dim ≥ 1 and layers ≥ 0, got n_users={n_users}, "
                f"n_items={n_items}, dim={dim}, layers={layers}."
            )
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}.")
        self.n_users, self.n_items, self.dim, self.layers = n_users, n_items, dim, layers
        self.init = init
        self.user_embedding = nn.Embedding(n_users, dim)
        self.item_embedding = nn.Embedding(n_items, dim)
        for table in (self.user_embedding, self.item_embedding):
            if init == "xavier":
                nn.init.xavier_uniform_(table.weight)
            else:
                nn.init.normal_(table.weight, std=0.1)

    @property
    def out_dim(self) -> int:
        return self.dim

    @property
    def config(self) -> dict[str, Any]:
        return {
            "n_users": self.n_users,
            "n_items": self.n_items,
            "dim": self.dim,
            "layers": self.layers,
            "init": self.init,
        }

    def ego(self) -> Tensor:
        """(U+I, D): the layer-0 embeddings, users first."""
        return torch.cat([self.user_embedding.weight, self.item_embedding.weight])

    def propagate(
        self,
        adj: Tensor,
        *,
        noise_eps: float = 0.0,
        generator: torch.Generator | None = None,
        return_layers: bool = False,
        skip_input: bool = False,
    ) -> tuple[Tensor, ...]:
        """Propagate the tables over ``adj`` and average the layers.

        ``E⁽⁰⁾`` is the ego tables, ``E⁽ˡ⁾ = Â E⁽ˡ⁻¹⁾``, and the output is the mean of
        ``E⁽⁰⁾ … E⁽ᴸ⁾`` (LightGCN), or of ``E⁽¹⁾ … E⁽ᴸ⁾`` with ``skip_input`` (SimGCL's and
        XSimGCL's encoders, which leave the input out).

        Args:
            adj: (U+I, U+I) sparse symmetric matrix (:func:`normalized_adjacency` or a
                dropout view of it).
            noise_eps: SimGCL's uniform noise: every layer's output becomes
                ``E + eps · sign(E) ⊙ normalize(Δ)`` with ``Δ ~ U(0, 1)`` per entry and
                normalised per row, before the next layer propagates it (Yu et al. 2022).
                Each perturbed row moves by exactly ``eps`` (rows without zeros), staying in
                its orthant. 0 (default): no noise.
            generator: the noise's random stream (None: the global one).
            return_layers: also return the list of the L+1 (U+I, D) layer embeddings
                ``[E⁽⁰⁾, …, E⁽ᴸ⁾]`` (noise included): XSimGCL contrasts one of them.
            skip_input: average layers 1..L only (needs L ≥ 1).

        Returns:
            ``(users (U, D), items (I, D))``, plus the layer list with ``return_layers``.
        """
        if skip_input and self.layers == 0:
            raise ValueError("skip_input needs layers ≥ 1: with 0 layers there is only the input.")
        n = self.n_users + self.n_items
        if tuple(adj.shape) != (n, n):
            raise ValueError(
                f"adj must be ({n}, {n}) for {self.n_users} users and {self.n_items} items, "
                f"got {tuple(adj.shape)}; build it with normalized_adjacency(pairs, n_users, "
                f"n_items)."
            )
        e = self.ego()
        layers = [e]
        for _ in range(self.layers):
            e = _SymmetricSpMM.apply(adj, e)
            if noise_eps > 0:
                delta = torch.rand(e.shape, generator=generator, device=e.device, dtype=e.dtype)
                e = e + noise_eps * torch.sign(e) * F.normalize(delta, dim=1)
            layers.append(e)
        mean = torch.stack(layers[1:] if skip_input else layers).mean(0)
        users, items = mean.split([self.n_users, self.n_items])
        return (users, items, layers) if return_layers else (users, items)

    def forward(self, adj: Tensor, **options: Any) -> tuple[Tensor, ...]:
        """:meth:`propagate`."""
        return self.propagate(adj, **options)
