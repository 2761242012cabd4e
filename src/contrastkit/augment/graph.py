"""Graph views for contrastive learning: GraphCL's graph-level augmentations and GRACE's
node-level views, as small composable transforms on PyG ``Data``/``Batch``.

Graph-level views (You et al. 2020, "Graph Contrastive Learning with Augmentations"):
:class:`NodeDrop`, :class:`EdgePerturb`, :class:`AttrMask`, :class:`Subgraph`, :class:`Identity`,
:class:`RandomChoice` (one view drawn per graph) and the presets of :func:`graph_views`.
Node-level views of one large graph (Zhu et al. 2020, GRACE): :class:`DropEdges`,
:class:`MaskFeatureColumns` and :func:`grace_views`.

Conventions shared by every view:

- Input: a ``torch_geometric.data.Batch`` (nodes sorted by graph, as ``Batch.from_data_list``
  makes them) or a single ``Data`` (treated as a batch of one graph). ``x`` (n, F) float or
  int64 categorical codes, ``edge_index`` (2, E) int64, optional edge-level tensors
  (``edge_attr`` (E, ·), ...), node-level tensors (``node_label`` (n,), ...) and graph-level
  attributes (``y``, ``smiles``, ...).
- Output: a NEW object of the input's class with the same number of graphs in the same order
  (graph i of the output comes from graph i of the input). Node-level and edge-level tensors
  stay aligned with the kept nodes and edges, ``batch``/``ptr`` are recomputed, graph-level
  attributes are kept, and ``to_data_list()`` works (the batch's slice dictionaries are
  rewritten, or built when the input was assembled from raw tensors). Each graph keeps at least
  one node (a graph that arrives empty stays empty). Tensors a view does not change are shared
  with the input, never modified in place.
- Counts: "a fraction p of the m items of a graph" is ``floor(p·m + u)`` with ``u ~ U[0, 1)``
  drawn per graph (stochastic rounding): always ``floor(p·m)`` or ``ceil(p·m)``, and exactly
  ``p·m`` in expectation, so the requested rate holds over many graphs, small ones included.
- Randomness: every view takes a CPU ``torch.Generator`` (``None``: torch's global generator);
  the same seed gives the same output, on any device (random numbers are drawn on the CPU
  and moved to the data's device). Work is vectorised over the whole batch (no Python loop
  over nodes or graphs; :class:`Subgraph` loops over walk steps, :class:`RandomChoice` over
  its views).

Attributes are classified as node-, edge- or graph-level by the batch's slice dictionary when it
has one, else by their first dimension (n: node-level, E: edge-level; a name containing
"edge" breaks a tie).

Example:
    >>> import torch
    >>> from torch_geometric.data import Batch, Data
    >>> path = Data(x=torch.ones(4, 2), edge_index=torch.tensor([[0, 1, 1, 2, 2, 3],
    ...                                                           [1, 0, 2, 1, 3, 2]]))
    >>> batch = Batch.from_data_list([path, path])
    >>> v1, v2 = graph_views("graphcl", p=0.2)(batch, torch.Generator().manual_seed(0))
    >>> v1.num_graphs, v2.num_graphs
    (2, 2)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from contrastkit._checks import check_choice, check_probability, require_extra

_pyg = require_extra("torch_geometric", "graph", "graph views")
_pyg_data = require_extra("torch_geometric.data", "graph", "graph views")
_pyg_utils = require_extra("torch_geometric.utils", "graph", "graph views")
Batch = _pyg_data.Batch
Data = _pyg_data.Data

__all__ = [
    "GRAPH_VIEW_PRESETS",
    "AttrMask",
    "Compose",
    "DropEdges",
    "EdgePerturb",
    "GraphView",
    "GraphViewPair",
    "Identity",
    "MaskFeatureColumns",
    "NodeDrop",
    "RandomChoice",
    "Subgraph",
    "grace_views",
    "graph_views",
]

GRAPH_VIEW_PRESETS: tuple[str, ...] = ("graphcl", "nodedrop", "subgraph", "edge", "mask", "none")

_STRUCTURAL = ("edge_index", "batch", "ptr", "num_nodes")


# --------------------------------------------------------------------------------------------
# Layout: which attributes are node-, edge- and graph-level, and rebuilding a batch.
# --------------------------------------------------------------------------------------------


class _Layout:
    """Node/edge/graph structure of a ``Data``/``Batch`` (internal)."""

    def __init__(self, data: Any) -> None:
        if not isinstance(data, Data):
            raise TypeError(
                f"graph views take a torch_geometric Data or Batch, got {type(data).__name__}; "
                f"build one with Batch.from_data_list([...])."
            )
        ei = getattr(data, "edge_index", None)
        if not isinstance(ei, Tensor) or ei.dim() != 2 or ei.shape[0] != 2:
            shape = tuple(ei.shape) if isinstance(ei, Tensor) else type(ei).__name__
            raise ValueError(
                f"the graph needs edge_index of shape (2, E), got {shape}; pass "
                f"edge_index=torch.empty(2, 0, dtype=torch.long) for a graph without edges."
            )
        if ei.dtype != torch.long:
            raise TypeError(f"edge_index must be int64, got {ei.dtype}; use edge_index.long().")
        self.edge_index = ei.as_subclass(Tensor) if type(ei) is not Tensor else ei
        self.device = ei.device
        self.is_batch = isinstance(data, Batch) or getattr(data, "batch", None) is not None
        n = data.num_nodes
        if n is None:
            raise ValueError("the graph has no nodes attribute (x or num_nodes); set data.x.")
        self.n = int(n)
        self.E = int(ei.shape[1])
        if self.is_batch:
            graph = data.batch
            self.G = int(data.num_graphs)
            if graph.numel() != self.n:
                raise ValueError(
                    f"batch has {graph.numel()} entries but the graph has {self.n} nodes; give "
                    f"one graph number per node."
                )
            if self.n > 1 and bool((graph[1:] < graph[:-1]).any()):
                raise ValueError(
                    "nodes must be sorted by graph (batch non-decreasing), as "
                    "Batch.from_data_list makes them; sort the nodes by batch first."
                )
        else:
            graph = torch.zeros(self.n, dtype=torch.long, device=self.device)
            self.G = 1
        self.graph = graph.long()
        self.counts = torch.bincount(self.graph, minlength=self.G)
        self.ptr = _offsets(self.counts)
        sd = getattr(data, "_slice_dict", None) if self.is_batch else None
        node_sl = self.ptr.cpu()
        edge_sl = sd.get("edge_index") if sd is not None else None
        self.node_keys: list[str] = []
        self.edge_keys: list[str] = []
        self.graph_keys: list[str] = []
        for key in data.keys():
            if key in _STRUCTURAL:
                continue
            value = data[key]
            if not isinstance(value, Tensor) or value.dim() == 0:
                self.graph_keys.append(key)
                continue
            cat = data.__cat_dim__(key, value)
            size = int(value.shape[cat]) if cat is not None else -1
            as_node, as_edge = (cat == 0 and size == self.n), (cat == 0 and size == self.E)
            if sd is not None and key in sd and edge_sl is not None:
                as_node = as_node and torch.equal(sd[key].cpu(), node_sl)
                as_edge = as_edge and torch.equal(sd[key].cpu(), edge_sl.cpu())
            if as_node and as_edge:
                as_node = "edge" not in key
                as_edge = not as_node
            if as_node:
                self.node_keys.append(key)
            elif as_edge:
                self.edge_keys.append(key)
            else:
                self.graph_keys.append(key)


def _offsets(counts: Tensor) -> Tensor:
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


def _rand(
    generator: torch.Generator | None, shape: tuple[int, ...], device: torch.device
) -> Tensor:
    return torch.rand(shape, generator=generator, dtype=torch.float64).to(device)


def _fraction_counts(
    generator: torch.Generator | None, p: float, totals: Tensor, device: torch.device
) -> Tensor:
    """Stochastically rounded ``p·totals`` per graph (G,) int64."""
    u = _rand(generator, (totals.numel(),), device)
    return torch.floor(p * totals.double() + u).long().clamp(min=0).minimum(totals)


def _pick(
    generator: torch.Generator | None, group: Tensor, k: Tensor, device: torch.device
) -> Tensor:
    """Bool mask over items: ``k[g]`` items chosen uniformly at random within each group ``g``.

    ``group`` (m,) int64 group of each item (any order); ``k`` (G,) counts.
    """
    m = group.numel()
    if m == 0:
        return torch.zeros(0, dtype=torch.bool, device=device)
    order = torch.argsort(_rand(generator, (m,), device))
    order = order[torch.argsort(group[order], stable=True)]
    starts = _offsets(torch.bincount(group, minlength=k.numel()))[:-1]
    rank = torch.empty(m, dtype=torch.long, device=device)
    rank[order] = torch.arange(m, device=device) - starts[group[order]]
    return rank < k[group]


def _gather_ranges(slices: Tensor, graphs: Tensor) -> Tensor:
    """Row indices of the ranges ``slices[g]:slices[g+1]`` for ``g`` in ``graphs``, in order."""
    starts, lengths = slices[graphs], slices[graphs + 1] - slices[graphs]
    total = int(lengths.sum())
    first = _offsets(lengths)[:-1]
    return torch.arange(total, device=slices.device) - torch.repeat_interleave(
        first - starts, lengths, output_size=total
    )


def _build(
    data: Any,
    lay: _Layout,
    *,
    graph: Tensor,
    num_graphs: int,
    node_vals: dict[str, Tensor],
    edge_index: Tensor,
    edge_vals: dict[str, Tensor],
    graph_vals: dict[str, Any] | None = None,
    graph_slices: dict[str, Tensor] | None = None,
) -> Any:
    """A shallow copy of ``data`` with new nodes/edges; rewrites batch, ptr and slice dicts.

    ``edge_index`` must be grouped by graph (edges of graph 0 first, ...).
    """
    out = copy.copy(data)
    for key, value in node_vals.items():
        out[key] = value
    for key, value in edge_vals.items():
        out[key] = value
    for key, value in (graph_vals or {}).items():
        out[key] = value
    out.edge_index = edge_index
    n_new = int(graph.numel())
    if "num_nodes" in data.keys():
        out.num_nodes = n_new
    if not lay.is_batch:
        return out
    counts = torch.bincount(graph, minlength=num_graphs)
    ptr = _offsets(counts)
    out.batch = graph
    out.ptr = ptr
    out._num_graphs = num_graphs
    if getattr(data._store, "_num_nodes", None) is not None:
        data_store = out._store
        data_store._num_nodes = counts.tolist()
    e_counts = torch.bincount(graph[edge_index[0]], minlength=num_graphs)
    node_sl, edge_sl = ptr.cpu(), _offsets(e_counts).cpu()
    old_sd = getattr(data, "_slice_dict", None)
    old_inc = getattr(data, "_inc_dict", None)
    same_graphs = graph_vals is None
    sd: dict[str, Any] = {}
    inc: dict[str, Any] = {}
    zeros = torch.zeros(num_graphs, dtype=torch.long)
    for key in data.keys():
        if key in ("batch", "ptr", "num_nodes"):
            continue
        if key == "edge_index":
            sd[key], inc[key] = edge_sl, node_sl[:-1]
        elif key in lay.node_keys:
            sd[key] = node_sl
            keep_inc = same_graphs and old_inc is not None and key in old_inc
            inc[key] = old_inc[key] if keep_inc else zeros
        elif key in lay.edge_keys:
            sd[key] = edge_sl
            keep_inc = same_graphs and old_inc is not None and key in old_inc
            inc[key] = old_inc[key] if keep_inc else zeros
        elif same_graphs and old_sd is not None and key in old_sd:
            sd[key], inc[key] = old_sd[key], old_inc.get(key) if old_inc is not None else None
        elif graph_slices is not None and key in graph_slices:
            sd[key] = graph_slices[key]
            value = out[key]
            inc[key] = zeros if isinstance(value, Tensor) else None
        else:
            value = out[key]
            if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == num_graphs:
                sd[key], inc[key] = torch.arange(num_graphs + 1), zeros
            elif isinstance(value, (list, tuple)) and len(value) == num_graphs:
                sd[key], inc[key] = torch.arange(num_graphs + 1), None
    out._slice_dict = sd
    out._inc_dict = inc
    return out


def _subset(data: Any, lay: _Layout, node_keep: Tensor | None, edge_keep: Tensor | None) -> Any:
    """The induced subgraph on ``node_keep`` (n,) bool, edges also filtered by ``edge_keep``."""
    src, dst = lay.edge_index
    emask = torch.ones(lay.E, dtype=torch.bool, device=lay.device)
    if edge_keep is not None:
        emask &= edge_keep
    if node_keep is None:
        node_keep = torch.ones(lay.n, dtype=torch.bool, device=lay.device)
        new_id = torch.arange(lay.n, device=lay.device)
    else:
        emask &= node_keep[src] & node_keep[dst]
        new_id = torch.cumsum(node_keep.long(), 0) - 1
    eidx = emask.nonzero().flatten()
    nidx = node_keep.nonzero().flatten()
    return _build(
        data,
        lay,
        graph=lay.graph[nidx],
        num_graphs=lay.G,
        node_vals={k: data[k][nidx] for k in lay.node_keys},
        edge_index=new_id[lay.edge_index[:, eidx]],
        edge_vals={k: data[k][eidx] for k in lay.edge_keys},
    )


def _select_graphs(data: Any, lay: _Layout, graphs: Tensor) -> Any:
    """A batch of the graphs ``graphs`` (sorted int64 graph numbers) of ``data``."""
    gmask = torch.zeros(lay.G, dtype=torch.bool, device=lay.device)
    gmask[graphs] = True
    node_keep = gmask[lay.graph]
    eidx = gmask[lay.graph[lay.edge_index[0]]].nonzero().flatten()
    nidx = node_keep.nonzero().flatten()
    new_id = torch.cumsum(node_keep.long(), 0) - 1
    rank = torch.cumsum(gmask.long(), 0) - 1
    sd = getattr(data, "_slice_dict", None)
    graph_vals: dict[str, Any] = {}
    graph_slices: dict[str, Tensor] = {}
    g_cpu = graphs.cpu()
    for key in lay.graph_keys:
        value = data[key]
        if sd is not None and key in sd and isinstance(value, Tensor) and value.dim() > 0:
            sl = sd[key].cpu()
            cat = data.__cat_dim__(key, value) or 0
            rows = _gather_ranges(sl, g_cpu)
            graph_vals[key] = value.index_select(cat, rows.to(value.device))
            graph_slices[key] = _offsets(sl[g_cpu + 1] - sl[g_cpu])
        elif isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == lay.G:
            graph_vals[key] = value[graphs.to(value.device)]
        elif isinstance(value, (list, tuple)) and len(value) == lay.G:
            graph_vals[key] = [value[i] for i in g_cpu.tolist()]
    return _build(
        data,
        lay,
        graph=rank[lay.graph[nidx]],
        num_graphs=int(graphs.numel()),
        node_vals={k: data[k][nidx] for k in lay.node_keys},
        edge_index=new_id[lay.edge_index[:, eidx]],
        edge_vals={k: data[k][eidx] for k in lay.edge_keys},
        graph_vals=graph_vals,
        graph_slices=graph_slices,
    )


def _check_generator(generator: Any) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}; "
            f"pass torch.Generator().manual_seed(seed)."
        )
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(
            f"generator must live on the CPU, got one on {generator.device}; random numbers "
            f"are drawn on the CPU and moved to the data's device. Use torch.Generator()."
        )


# --------------------------------------------------------------------------------------------
# Views
# --------------------------------------------------------------------------------------------


class GraphView:
    """Base class: a random transform of a batch of graphs.

    Subclasses implement :meth:`apply`; ``__call__(batch, generator)`` validates the input
    and returns a new ``Batch`` (or ``Data``) with the same graphs in the same order.
    """

    def __call__(self, batch: Any, generator: torch.Generator | None = None) -> Any:
        _check_generator(generator)
        return self.apply(batch, _Layout(batch), generator)

    def apply(self, data: Any, lay: _Layout, generator: torch.Generator | None) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Identity(GraphView):
    """The unchanged batch (a shallow copy: a new object sharing the input's tensors).

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> g = Data(x=torch.ones(2, 1), edge_index=torch.tensor([[0, 1], [1, 0]]))
        >>> Identity()(g).num_nodes
        2
    """

    def apply(self, data: Any, lay: _Layout, generator: torch.Generator | None) -> Any:
        return copy.copy(data)


class Compose(GraphView):
    """Apply ``views`` one after the other (each draws from the same generator).

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> g = Data(x=torch.ones(3, 4), edge_index=torch.tensor([[0, 1], [1, 2]]))
        >>> out = Compose([DropEdges(0.5), MaskFeatureColumns(0.5)])(g, torch.Generator())
        >>> out.x.shape
        torch.Size([3, 4])
    """

    def __init__(self, views: Sequence[GraphView]) -> None:
        self.views = list(views)

    def __call__(self, batch: Any, generator: torch.Generator | None = None) -> Any:
        _check_generator(generator)
        for view in self.views:
            batch = view(batch, generator)
        return batch


class NodeDrop(GraphView):
    """Drop a fraction ``p`` of each graph's nodes (GraphCL "dnodes"), with their edges.

    Each graph ``i`` with ``n_i`` nodes loses exactly ``floor(p·n_i + u_i)`` nodes
    (stochastic rounding, see the module docstring: the expected fraction is ``p``), capped at
    ``n_i - 1`` so that every graph keeps at least one node; the dropped nodes are a uniformly
    random subset (per-graph random ranks, vectorised over the batch). Edges touching a dropped
    node are removed and the kept nodes renumbered in their original order: each graph of the
    output is the induced subgraph of the input graph on its kept nodes.

    Shapes: x (n, F) → (n', F); edge_index (2, E) → (2, E'); node- and edge-level tensors
    follow.

    Example:
        >>> import torch
        >>> from torch_geometric.data import Batch, Data
        >>> g = Data(x=torch.arange(10.0).view(10, 1), edge_index=torch.empty(2, 0).long())
        >>> NodeDrop(p=0.5)(Batch.from_data_list([g]), torch.Generator()).num_nodes
        5
    """

    def __init__(self, p: float = 0.2) -> None:
        check_probability(p, "NodeDrop p")
        self.p = float(p)

    def apply(self, data: Any, lay: _Layout, generator: torch.Generator | None) -> Any:
        k = _fraction_counts(generator, self.p, lay.counts, lay.device)
        k = k.minimum((lay.counts - 1).clamp(min=0))
        drop = _pick(generator, lay.graph, k, lay.device)
        return _subset(data, lay, ~drop, None)


class EdgePerturb(GraphView):
    """Remove a fraction ``p`` of each graph's edges and add as many random ones (GraphCL
    "pedges").

    Graph ``i`` with ``m_i`` edges loses ``floor(p·m_i + u_i)`` of them (stochastic
    rounding), chosen uniformly at random; when ``add`` is set, the same number of new edges
    ``(u, v)`` are added between uniformly random nodes ``u != v`` of the same graph (none for a
    1-node graph; an added edge may duplicate an existing one, as in GraphCL). The node set is
    unchanged.

    Undirected graphs (``undirected=None``: detected with
    ``torch_geometric.utils.is_undirected`` on the whole batch) count ``(u, v)``/``(v, u)`` as
    one edge (``m_i`` = number of such pairs, self-loops counting once): a removed pair loses
    both directions (and any parallel copies), and each added pair is added in both
    directions, so the result stays undirected. Added edges get zeros in every edge-level
    tensor (``edge_attr`` and friends, of the same dtype). Output edges are grouped by graph:
    kept edges in their original order, then the added ones.

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> g = Data(x=torch.ones(4, 1), edge_index=torch.tensor([[0, 1, 1, 2, 2, 3],
        ...                                                       [1, 0, 2, 1, 3, 2]]))
        >>> EdgePerturb(p=0.34)(g, torch.Generator().manual_seed(0)).edge_index.shape
        torch.Size([2, 6])
    """

    def __init__(self, p: float = 0.2, add: bool = True, undirected: bool | None = None) -> None:
        check_probability(p, "EdgePerturb p")
        self.p = float(p)
        self.add = bool(add)
        self.undirected = undirected

    def apply(self, data: Any, lay: _Layout, generator: torch.Generator | None) -> Any:
        ei, dev, n = lay.edge_index, lay.device, lay.n
        src, dst = ei
        undirected = self.undirected
        if undirected is None:
            undirected = bool(_pyg_utils.is_undirected(ei, num_nodes=n)) if lay.E else False
        unit_mask = src <= dst if undirected else torch.ones(lay.E, dtype=torch.bool, device=dev)
        units = unit_mask.nonzero().flatten()
        ugraph = lay.graph[src[units]]
        m = torch.bincount(ugraph, minlength=lay.G)
        k = _fraction_counts(generator, self.p, m, dev)
        removed = units[_pick(generator, ugraph, k, dev)]
        if undirected:
            rs, rd = src[removed], dst[removed]
            keys = torch.cat([rs * n + rd, rd * n + rs])
            drop = torch.isin(src * n + dst, keys)
        else:
            drop = torch.zeros(lay.E, dtype=torch.bool, device=dev)
            drop[removed] = True
        kept = (~drop).nonzero().flatten()
        new_edges = ei.new_empty(2, 0)
        if self.add:
            k_add = torch.where(lay.counts >= 2, k, torch.zeros_like(k))
            total = int(k_add.sum())
            g = torch.repeat_interleave(torch.arange(lay.G, device=dev), k_add, output_size=total)
            r = _rand(generator, (2, total), dev)
            size = lay.counts[g]
            u = torch.floor(r[0] * size).long().minimum(size - 1)
            v = (u + 1 + torch.floor(r[1] * (size - 1)).long().minimum(size - 2)) % size
            new_edges = torch.stack([u, v]) + lay.ptr[g]
            if undirected:
                new_edges = torch.stack([new_edges, new_edges.flip(0)], dim=2).reshape(2, -1)
        edge_index = torch.cat([ei[:, kept], new_edges], dim=1)
        n_new = new_edges.shape[1]
        order = torch.argsort(lay.graph[edge_index[0]], stable=True)
        edge_vals = {}
        for key in lay.edge_keys:
            value = data[key]
            pad = value.new_zeros((n_new, *value.shape[1:]))
            edge_vals[key] = torch.cat([value[kept], pad])[order]
        return _build(
            data,
            lay,
            graph=lay.graph,
            num_graphs=lay.G,
            node_vals={},
            edge_index=edge_index[:, order],
            edge_vals=edge_vals,
        )


class AttrMask(GraphView):
    """Mask the features of a fraction ``p`` of each graph's nodes (GraphCL "mask_nodes").

    Graph ``i`` gets ``floor(p·n_i + u_i)`` masked nodes (stochastic rounding; the expected
    masked fraction is exactly ``p``), chosen uniformly at random; a masked node's whole row
    of ``x`` is replaced:

    - float ``x``, ``mode="zero"``: zeros; ``mode="noise"``: Gaussian noise N(0.5, 0.5²) per
      entry (GraphCL's TU code);
    - int64 ``x`` (categorical codes, e.g. ``torch_geometric.utils.from_smiles``): 0 in every
      column (code 0 is the "unknown/misc" category of PyG's molecule encoding); only
      ``mode="zero"`` applies.

    Nothing else changes and no mask is recorded. Shapes: x (n, F) → (n, F).

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> g = Data(x=torch.ones(10, 3), edge_index=torch.empty(2, 0).long())
        >>> out = AttrMask(p=0.5)(g, torch.Generator().manual_seed(0))
        >>> int((out.x == 0).all(dim=1).sum())
        5
    """

    MODES = ("zero", "noise")

    def __init__(self, p: float = 0.2, mode: str = "zero") -> None:
        check_probability(p, "AttrMask p")
        check_choice(mode, "AttrMask mode", self.MODES)
        self.p = float(p)
        self.mode = mode

    def apply(self, data: Any, lay: _Layout, generator: torch.Generator | None) -> Any:
        x = getattr(data, "x", None)
        if not isinstance(x, Tensor) or x.shape[0] != lay.n:
            raise ValueError("AttrMask needs node features x of shape (n, F); set data.x.")
        floating = torch.is_floating_point(x)
        if self.mode == "noise" and not floating:
            raise ValueError(
                f"AttrMask(mode='noise') needs float features, but x is {x.dtype} "
                f"(categorical codes); use AttrMask(mode='zero'), which sets every code to 0."
            )
        k = _fraction_counts(generator, self.p, lay.counts, lay.device)
        mask = _pick(generator, lay.graph, k, lay.device)
        x = x.clone()
        if self.mode == "noise":
            rows = mask.nonzero().flatten()
            noise = torch.randn((rows.numel(), *x.shape[1:]), generator=generator) * 0.5 + 0.5
            x[rows] = noise.to(device=x.device, dtype=x.dtype)
        else:
            x[mask] = 0
        out = copy.copy(data)
        out.x = x
        return out


class Subgraph(GraphView):
    """Keep a connected random subgraph of each graph, grown by a random walk (GraphCL
    "subgraph").

    Graph ``i`` keeps ``t_i = max(1, floor(keep·n_i + u_i))`` nodes (stochastic rounding). How
    it works, vectorised over graphs (one walker per graph, one step per loop iteration, at
    most ``max_i t_i - 1`` iterations): each walker starts at a uniformly random node of its
    graph; at each step it moves to a uniformly random *unvisited* neighbour of its current
    node (a self-avoiding random walk); when its node has none (stuck), it jumps to a uniformly
    random unvisited neighbour of any visited node (an edge leaving the visited set), so that
    every step adds one node and the visited set stays connected, as GraphCL's subgraph
    (which grows a connected set from a random node). A walker stops once ``t_i`` nodes are
    visited, or early when no edge leaves the visited set (its connected component is
    exhausted: the subgraph is then that whole component, smaller than ``t_i``). The output
    is the induced subgraph on the visited nodes, renumbered in their original order.

    Edges are followed from ``edge_index[0]`` to ``edge_index[1]`` (undirected graphs store
    both directions). Cost: O(E) per step over the edges that still lead to unvisited nodes
    of unfinished graphs, fine for molecule- and TU-sized graphs.

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> ring = torch.arange(10)
        >>> g = Data(x=torch.ones(10, 1),
        ...          edge_index=torch.stack([ring, (ring + 1) % 10]).repeat(1, 2))
        >>> g.edge_index[:, 10:] = g.edge_index[:, 10:].flip(0)
        >>> Subgraph(keep=0.5)(g, torch.Generator().manual_seed(0)).num_nodes
        5
    """

    def __init__(self, keep: float = 0.8) -> None:
        if not 0.0 < float(keep) <= 1.0:
            raise ValueError(
                f"Subgraph keep must lie in (0, 1] (the fraction of nodes kept), got {keep}."
            )
        self.keep = float(keep)

    def apply(self, data: Any, lay: _Layout, generator: torch.Generator | None) -> Any:
        dev, G = lay.device, lay.G
        target = _fraction_counts(generator, self.keep, lay.counts, dev).clamp(min=1)
        target = target.minimum(lay.counts)
        has_nodes = lay.counts > 0
        start = lay.ptr[:-1] + torch.floor(_rand(generator, (G,), dev) * lay.counts).long().minimum(
            (lay.counts - 1).clamp(min=0)
        )
        visited = torch.zeros(lay.n, dtype=torch.bool, device=dev)
        visited[start[has_nodes]] = True
        current = start.clone()
        count = has_nodes.long()
        src, dst = lay.edge_index
        egraph = lay.graph[src] if lay.E else src
        alive = (src != dst).nonzero().flatten()
        arange_g = torch.arange(G, device=dev)
        for _ in range(int(target.max()) - 1 if G else 0):
            active = count < target
            alive = alive[active[egraph[alive]] & ~visited[dst[alive]]]
            if alive.numel() == 0:
                break
            es, eg = src[alive], egraph[alive]
            cand = visited[es]
            key = _rand(generator, (alive.numel(),), dev) + (es == current[eg]).double()
            key = torch.where(cand, key, torch.full_like(key, -1.0))
            best = torch.full((G,), -1.0, dtype=key.dtype, device=dev)
            best = best.scatter_reduce(0, eg, key, reduce="amax")
            hit = cand & (key == best[eg])
            pos = torch.full((G,), -1, dtype=torch.long, device=dev)
            pos = pos.scatter_reduce(0, eg[hit], alive[hit], reduce="amax")
            moved = (pos >= 0) & active
            if not bool(moved.any()):
                break
            new_nodes = dst[pos[moved]]
            visited[new_nodes] = True
            current[arange_g[moved]] = new_nodes
            count = count + moved.long()
        return _subset(data, lay, visited, None)


class RandomChoice(GraphView):
    """Each graph gets one of ``views``, chosen uniformly at random per graph.

    The batch is split by the chosen view (graph order kept within each part), each view is
    applied to its part, and the parts are merged back in the original graph order, so graph
    ``i`` of the output comes from graph ``i`` of the input. Graph-level attributes are those
    of the input.

    Example:
        >>> import torch
        >>> from torch_geometric.data import Batch, Data
        >>> g = Data(x=torch.ones(4, 1), edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]))
        >>> b = Batch.from_data_list([g, g, g])
        >>> RandomChoice([Identity(), NodeDrop(0.5)])(b, torch.Generator()).num_graphs
        3
    """

    def __init__(self, views: Sequence[GraphView]) -> None:
        views = list(views)
        if not views:
            raise ValueError("RandomChoice needs at least one view, e.g. [NodeDrop(), Identity()].")
        for v in views:
            if not callable(v):
                raise TypeError(f"RandomChoice views must be GraphViews, got {type(v).__name__}.")
        self.views = views

    def apply(self, data: Any, lay: _Layout, generator: torch.Generator | None) -> Any:
        dev = lay.device
        choice = torch.randint(len(self.views), (lay.G,), generator=generator).to(dev)
        parts = []
        for i, view in enumerate(self.views):
            graphs = (choice == i).nonzero().flatten()
            if graphs.numel() == 0:
                continue
            part = data if graphs.numel() == lay.G else _select_graphs(data, lay, graphs)
            out = view(part, generator)
            parts.append((graphs, out, _Layout(out)))
        if len(parts) == 1:
            return parts[0][1]
        node_graph = torch.cat([g[pl.graph] for g, _, pl in parts])
        offsets = _offsets(torch.tensor([pl.n for _, _, pl in parts], device=dev))
        ei = torch.cat([pl.edge_index + offsets[j] for j, (_, _, pl) in enumerate(parts)], dim=1)
        perm = torch.argsort(node_graph, stable=True)
        inverse = torch.empty_like(perm)
        inverse[perm] = torch.arange(perm.numel(), device=dev)
        ei = inverse[ei]
        graph = node_graph[perm]
        eorder = torch.argsort(graph[ei[0]], stable=True)
        node_vals = {k: torch.cat([o[k] for _, o, _ in parts])[perm] for k in lay.node_keys}
        edge_vals = {k: torch.cat([o[k] for _, o, _ in parts])[eorder] for k in lay.edge_keys}
        return _build(
            data,
            lay,
            graph=graph,
            num_graphs=lay.G,
            node_vals=node_vals,
            edge_index=ei[:, eorder],
            edge_vals=edge_vals,
        )


class DropEdges(GraphView):
    """Remove each directed edge independently with probability ``p`` (GRACE's view, as
    ``torch_geometric.utils.dropout_adj``); the node set is kept.

    Shapes: edge_index (2, E) → (2, E'); edge-level tensors follow; x unchanged. Also works
    on a ``Batch`` (edges are dropped per edge, graphs untouched).

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> g = Data(x=torch.ones(3, 2), edge_index=torch.tensor([[0, 1], [1, 2]]))
        >>> DropEdges(0.0)(g).edge_index.shape
        torch.Size([2, 2])
    """

    def __init__(self, p: float = 0.2) -> None:
        check_probability(p, "DropEdges p")
        self.p = float(p)

    def apply(self, data: Any, lay: _Layout, generator: torch.Generator | None) -> Any:
        keep = _rand(generator, (lay.E,), lay.device) >= self.p
        return _subset(data, lay, None, keep)


class MaskFeatureColumns(GraphView):
    """Zero a random subset of feature columns, each with probability ``p``, the same columns
    for every node (GRACE's ``drop_feature``).

    Shapes: x (N, F) → (N, F) with the dropped columns zero; everything else unchanged.

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> g = Data(x=torch.ones(3, 100), edge_index=torch.empty(2, 0).long())
        >>> out = MaskFeatureColumns(0.5)(g, torch.Generator().manual_seed(0))
        >>> bool(((out.x == 0).all(0) | (out.x == 1).all(0)).all())
        True
    """

    def __init__(self, p: float = 0.3) -> None:
        check_probability(p, "MaskFeatureColumns p")
        self.p = float(p)

    def apply(self, data: Any, lay: _Layout, generator: torch.Generator | None) -> Any:
        x = getattr(data, "x", None)
        if not isinstance(x, Tensor) or x.dim() != 2:
            raise ValueError("MaskFeatureColumns needs node features x of shape (N, F).")
        drop = _rand(generator, (x.shape[1],), x.device) < self.p
        out = copy.copy(data)
        out.x = x.masked_fill(drop.unsqueeze(0), 0)
        return out


class GraphViewPair:
    """Two views of a batch, drawn one after the other from one generator (independent draws).

    ``__call__(batch, generator=None) -> (view1(batch), view2(batch))``. With ``generator``
    None, a pair built with ``seed`` uses its own generator seeded once (calls differ from one
    another, the sequence is reproducible), else torch's global one.

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> g = Data(x=torch.ones(3, 2), edge_index=torch.tensor([[0, 1], [1, 2]]))
        >>> a, b = GraphViewPair(Identity(), DropEdges(0.5))(g, torch.Generator())
        >>> a.num_nodes, b.num_nodes
        (3, 3)
    """

    def __init__(
        self,
        view1: Callable[..., Any],
        view2: Callable[..., Any],
        seed: int | None = None,
    ) -> None:
        self.view1, self.view2 = view1, view2
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def __call__(self, batch: Any, generator: torch.Generator | None = None) -> tuple[Any, Any]:
        _check_generator(generator)
        g = generator if generator is not None else self.generator
        return self.view1(batch, g), self.view2(batch, g)

    def __repr__(self) -> str:
        return f"GraphViewPair({self.view1!r}, {self.view2!r})"


def graph_views(
    preset: str = "graphcl", *, p: float = 0.2, seed: int | None = None
) -> GraphViewPair:
    """The pair of graph-level views of a preset (GraphCL).

    Presets (:data:`GRAPH_VIEW_PRESETS`), each view of the pair built alike:

    - ``"graphcl"``: :class:`RandomChoice` per graph over ``[NodeDrop(p), Subgraph(1 - p),
      EdgePerturb(p), AttrMask(p)]`` (GraphCL's "random4" pool; no identity);
    - ``"nodedrop"``: ``NodeDrop(p)``; ``"subgraph"``: ``Subgraph(1 - p)``;
      ``"edge"``: ``EdgePerturb(p)``; ``"mask"``: ``AttrMask(p)`` (mode "zero");
    - ``"none"``: :class:`Identity` for both.

    ``seed`` seeds the pair's own generator, used when a call passes none.

    Example:
        >>> graph_views("edge", p=0.1).view1
        EdgePerturb(p=0.1, add=True, undirected=None)
    """
    check_choice(preset, "graph_views preset", GRAPH_VIEW_PRESETS)
    check_probability(p, "graph_views p")

    def make() -> GraphView:
        if preset == "graphcl":
            return RandomChoice([NodeDrop(p), Subgraph(1.0 - p), EdgePerturb(p), AttrMask(p)])
        if preset == "nodedrop":
            return NodeDrop(p)
        if preset == "subgraph":
            return Subgraph(1.0 - p)
        if preset == "edge":
            return EdgePerturb(p)
        if preset == "mask":
            return AttrMask(p)
        return Identity()

    return GraphViewPair(make(), make(), seed=seed)


def grace_views(
    drop_edge: tuple[float, float] = (0.2, 0.4),
    mask_feature: tuple[float, float] = (0.3, 0.4),
    *,
    seed: int | None = None,
) -> GraphViewPair:
    """GRACE's two node-level views of one graph: view k drops edges with ``drop_edge[k]``
    (:class:`DropEdges`) then masks feature columns with ``mask_feature[k]``
    (:class:`MaskFeatureColumns`). Defaults: GRACE's Cora settings (pe = 0.2, 0.4;
    pf = 0.3, 0.4).

    Returns a :class:`GraphViewPair`: ``(data, generator) -> (Data, Data)``, node set kept.

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> g = Data(x=torch.ones(3, 8), edge_index=torch.tensor([[0, 1], [1, 2]]))
        >>> a, b = grace_views()(g, torch.Generator().manual_seed(0))
        >>> a.x.shape, b.num_nodes
        (torch.Size([3, 8]), 3)
    """
    for name, pair in (("drop_edge", drop_edge), ("mask_feature", mask_feature)):
        if len(pair) != 2:
            raise ValueError(f"grace_views {name} must be a pair (view 1 rate, view 2 rate).")
    return GraphViewPair(
        Compose([DropEdges(drop_edge[0]), MaskFeatureColumns(mask_feature[0])]),
        Compose([DropEdges(drop_edge[1]), MaskFeatureColumns(mask_feature[1])]),
        seed=seed,
    )
