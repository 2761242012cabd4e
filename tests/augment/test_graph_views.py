"""Graph views (GraphCL, GRACE): structure checked by hand on small graphs, rates, alignment,
reproducibility, molecules (int64 codes), and PyG interop (to_data_list, pooling, GINConv)."""

from __future__ import annotations

import time

import pytest
import torch

pytest.importorskip("torch_geometric")

from torch_geometric.data import Batch, Data
from torch_geometric.utils import is_undirected

from contrastkit.augment.graph import (
    GRAPH_VIEW_PRESETS,
    AttrMask,
    Compose,
    DropEdges,
    EdgePerturb,
    GraphView,
    GraphViewPair,
    Identity,
    MaskFeatureColumns,
    NodeDrop,
    RandomChoice,
    Subgraph,
    grace_views,
    graph_views,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def undirected(pairs: list[tuple[int, int]]) -> torch.Tensor:
    both = [(u, v) for u, v in pairs] + [(v, u) for u, v in pairs]
    return torch.tensor(both, dtype=torch.long).t().contiguous()


def graph(n: int, pairs: list[tuple[int, int]], y: int, start: int = 0) -> Data:
    """Node ids in x (start + i), an edge id in edge_attr, a node label, a graph label."""
    ei = undirected(pairs) if pairs else torch.empty(2, 0, dtype=torch.long)
    x = torch.arange(start, start + n, dtype=torch.float32).view(n, 1).repeat(1, 3)
    return Data(
        x=x,
        edge_index=ei,
        edge_attr=torch.arange(ei.shape[1]).view(-1, 1) + 1 + 1000 * y,  # unique, never 0
        node_label=torch.arange(start, start + n),
        y=torch.tensor([y]),
    )


def path_and_triangle() -> Batch:
    return Batch.from_data_list(
        [graph(4, [(0, 1), (1, 2), (2, 3)], 0, 0), graph(3, [(0, 1), (1, 2), (0, 2)], 1, 4)]
    )


def random_batch(num_graphs: int, seed: int = 0, lo: int = 1, hi: int = 30) -> Batch:
    """Connected random graphs: a random tree plus a few extra undirected edges."""
    rng = torch.Generator().manual_seed(seed)
    graphs, start = [], 0
    for i in range(num_graphs):
        n = int(torch.randint(lo, hi + 1, (1,), generator=rng))
        parents = [int(torch.randint(0, v, (1,), generator=rng)) for v in range(1, n)]
        pairs = [(p, v) for v, p in zip(range(1, n), parents)]
        if n > 3:
            extra = torch.randint(0, n, (2, n // 3), generator=rng).t().tolist()
            pairs += [
                (u, v) for u, v in extra if u != v and (u, v) not in pairs and (v, u) not in pairs
            ]
        graphs.append(graph(n, pairs, i, start))
        start += n
    return Batch.from_data_list(graphs)


def edge_set(ei: torch.Tensor) -> set[tuple[int, int]]:
    return {tuple(e) for e in ei.t().tolist()}


def check_valid(out: Batch, ref: Batch) -> None:
    """Same graphs in the same order, ≥ 1 node each, aligned attributes, consistent ptr."""
    assert out.num_graphs == ref.num_graphs
    assert torch.equal(out.y, ref.y)
    n = out.num_nodes
    assert out.x.shape[0] == n == out.batch.numel() == out.node_label.numel()
    counts = torch.bincount(out.batch, minlength=out.num_graphs)
    assert bool((counts >= 1).all())
    assert torch.equal(out.ptr, torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)]))
    assert out.edge_attr.shape[0] == out.edge_index.shape[1]
    if out.edge_index.numel():
        assert int(out.edge_index.max()) < n
        src_g, dst_g = out.batch[out.edge_index]
        assert torch.equal(src_g, dst_g), "an edge crosses between graphs"
        assert bool((src_g[1:] >= src_g[:-1]).all()), "edges not grouped by graph"
    # node_label is the original node id: nodes of graph i come from graph i, in order
    orig_graph = ref.batch[out.node_label]
    assert torch.equal(orig_graph, out.batch)
    data_list = out.to_data_list()
    assert len(data_list) == out.num_graphs
    assert sum(d.num_nodes for d in data_list) == n
    assert sum(d.edge_index.shape[1] for d in data_list) == out.edge_index.shape[1]
    for d in data_list:
        assert d.edge_index.numel() == 0 or int(d.edge_index.max()) < d.num_nodes


def check_induced(out: Batch, ref: Batch, check_x: bool = True) -> None:
    """Each output graph is the induced subgraph of its input graph on the kept nodes, with
    each kept edge keeping its attribute."""
    kept = out.node_label  # original node ids, in order
    old_to_new = {int(o): i for i, o in enumerate(kept.tolist())}
    expected = {}
    for e, (u, v) in enumerate(ref.edge_index.t().tolist()):
        if u in old_to_new and v in old_to_new:
            expected[(old_to_new[u], old_to_new[v])] = int(ref.edge_attr[e])
    got = {(u, v): int(a) for (u, v), a in zip(out.edge_index.t().tolist(), out.edge_attr.view(-1))}
    assert got == expected
    if check_x:
        assert torch.equal(out.x, ref.x[kept])


# ------------------------------------------------------------------------------------------
# NodeDrop
# ------------------------------------------------------------------------------------------


def test_nodedrop_is_induced_subgraph_of_kept_nodes():
    ref = path_and_triangle()
    seen = set()
    for seed in range(30):
        out = NodeDrop(p=0.5)(ref, gen(seed))
        check_valid(out, ref)
        check_induced(out, ref)
        counts = torch.bincount(out.batch).tolist()
        assert counts[0] == 2  # 0.5 * 4 = 2 exactly
        assert counts[1] in (1, 2)  # 0.5 * 3 = 1.5: floor or ceil dropped
        seen.add(tuple(out.node_label.tolist()))
    assert len(seen) > 5


def test_nodedrop_keeps_one_node_and_rate():
    single = Batch.from_data_list([graph(1, [], 0), graph(2, [(0, 1)], 1, 1)])
    for seed in range(20):
        out = NodeDrop(p=0.99)(single, gen(seed))
        check_valid(out, single)
        assert torch.bincount(out.batch).tolist() == [1, 1]
    big = random_batch(300, seed=1)
    out = NodeDrop(p=0.3)(big, gen(0))
    check_valid(out, big)
    assert abs(1 - out.num_nodes / big.num_nodes - 0.3) < 0.03


# ------------------------------------------------------------------------------------------
# EdgePerturb
# ------------------------------------------------------------------------------------------


def test_edgeperturb_counts_undirected_and_within_graphs():
    ref = path_and_triangle()  # path: 3 undirected edges, triangle: 3
    for seed in range(30):
        out = EdgePerturb(p=1 / 3)(ref, gen(seed))
        check_valid(out, ref)
        assert torch.equal(out.x, ref.x) and torch.equal(out.batch, ref.batch)
        assert is_undirected(out.edge_index, num_nodes=out.num_nodes)
        assert out.edge_index.shape[1] == ref.edge_index.shape[1]  # one removed, one added
        assert not bool((out.edge_index[0] == out.edge_index[1]).any())
        # exactly one pair of each graph removed (1/3 of 3 pairs) and one pair added
        attr_of = {tuple(e): int(a) for e, a in zip(ref.edge_index.t().tolist(), ref.edge_attr)}
        attrs = out.edge_attr.view(-1)
        old = attrs != 0
        assert int(old.sum()) == 8 and int((~old).sum()) == 4
        for e, a in zip(out.edge_index[:, old].t().tolist(), attrs[old].tolist()):
            assert attr_of[tuple(e)] == a
        assert torch.equal(torch.bincount(out.batch[out.edge_index[0, ~old]]), torch.tensor([2, 2]))


def test_edgeperturb_remove_only_and_attributes():
    ref = random_batch(50, seed=2)
    out = EdgePerturb(p=0.4, add=False)(ref, gen(3))
    check_valid(out, ref)
    assert is_undirected(out.edge_index, num_nodes=out.num_nodes)
    # every output edge existed, with the same attribute (unique ids per edge)
    attr_of = {tuple(e): int(a) for e, a in zip(ref.edge_index.t().tolist(), ref.edge_attr)}
    for e, a in zip(out.edge_index.t().tolist(), out.edge_attr.view(-1).tolist()):
        assert attr_of[tuple(e)] == a
    # per graph, removed pairs = floor or ceil of 0.4 * pairs
    for g in range(ref.num_graphs):
        m_ref = int((ref.batch[ref.edge_index[0]] == g).sum()) // 2
        m_out = int((out.batch[out.edge_index[0]] == g).sum()) // 2
        removed = m_ref - m_out
        assert int(0.4 * m_ref) <= removed <= int(0.4 * m_ref) + 1
    with_add = EdgePerturb(p=0.4)(ref, gen(3))
    check_valid(with_add, ref)
    new = ~torch.isin(with_add.edge_attr.view(-1), ref.edge_attr.view(-1))
    assert bool(new.any()) and bool((with_add.edge_attr[new] == 0).all())  # added: zeros


def test_edgeperturb_directed():
    ei = torch.tensor([[0, 1, 2, 3, 0], [1, 2, 3, 0, 2]])
    g = Data(x=torch.ones(4, 2), edge_index=ei)
    out = EdgePerturb(p=0.4, undirected=False)(g, gen(0))  # 0.4 * 5 = 2 edges
    assert out.edge_index.shape[1] == 5
    assert len(edge_set(out.edge_index) & edge_set(ei)) >= 3


# ------------------------------------------------------------------------------------------
# AttrMask
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.2, 0.35])
def test_attrmask_rate_rows_and_rest_unchanged(p):
    ref = random_batch(700, seed=4, lo=3, hi=25)  # ~10k nodes
    ref.x = torch.rand(ref.num_nodes, 5) + 1.0  # never zero
    out = AttrMask(p=p)(ref, gen(0))
    masked = (out.x == 0).all(dim=1)
    assert abs(float(masked.float().mean()) - p) < 0.02
    assert torch.equal(out.x[~masked], ref.x[~masked])
    assert bool(((out.x == 0).any(dim=1) == masked).all())  # masked rows wholly zero
    assert torch.equal(out.edge_index, ref.edge_index) and torch.equal(out.y, ref.y)
    assert not bool((ref.x == 0).any())  # input untouched
    noisy = AttrMask(p=p, mode="noise")(ref, gen(0))
    changed = (noisy.x != ref.x).any(dim=1)
    assert abs(float(changed.float().mean()) - p) < 0.02
    assert abs(float(noisy.x[changed].mean()) - 0.5) < 0.05


def test_attrmask_molecules_int_codes_and_edge_attr():
    from_smiles = pytest.importorskip("torch_geometric.utils").from_smiles
    try:
        mols = [from_smiles(s) for s in ("CCO", "c1ccccc1", "CC(=O)O", "N")]
    except Exception as err:  # rdkit missing
        pytest.skip(f"from_smiles unavailable: {err}")
    for i, m in enumerate(mols):
        m.y = torch.tensor([i])
    ref = Batch.from_data_list(mols)
    assert ref.x.dtype == torch.long
    out = AttrMask(p=0.5)(ref, gen(0))
    assert out.x.dtype == torch.long
    masked = (out.x == 0).all(dim=1)
    assert 0 < int(masked.sum()) < ref.num_nodes
    assert torch.equal(out.x[~masked], ref.x[~masked])
    with pytest.raises(ValueError, match="mode='zero'"):
        AttrMask(mode="noise")(ref, gen(0))
    for view in (NodeDrop(0.3), Subgraph(0.7), EdgePerturb(0.3), graph_views().view1):
        o = view(ref, gen(1))
        assert o.x.dtype == torch.long and o.edge_attr.dtype == ref.edge_attr.dtype
        assert o.edge_attr.shape == (o.edge_index.shape[1], ref.edge_attr.shape[1])
        assert o.smiles == ref.smiles and o.num_graphs == 4
        assert [d.smiles for d in o.to_data_list()] == ref.smiles


# ------------------------------------------------------------------------------------------
# Subgraph
# ------------------------------------------------------------------------------------------


def connected(num_nodes: int, ei: torch.Tensor) -> bool:
    adj = {i: set() for i in range(num_nodes)}
    for u, v in ei.t().tolist():
        adj[u].add(v)
        adj[v].add(u)
    seen, stack = {0}, [0]
    while stack:
        for w in adj[stack.pop()] - seen:
            seen.add(w)
            stack.append(w)
    return len(seen) == num_nodes


def test_subgraph_connected_induced_and_sized():
    ref = random_batch(100, seed=5, lo=1, hi=30)
    out = Subgraph(keep=0.6)(ref, gen(0))
    check_valid(out, ref)
    check_induced(out, ref)
    n_in = torch.bincount(ref.batch).tolist()
    n_out = torch.bincount(out.batch, minlength=ref.num_graphs).tolist()
    for d, a, b in zip(out.to_data_list(), n_in, n_out):
        assert max(1, int(0.6 * a)) <= b <= max(1, int(0.6 * a) + 1)
        assert connected(d.num_nodes, d.edge_index)


def test_subgraph_small_graphs_and_disconnected():
    ref = path_and_triangle()
    for seed in range(20):
        out = Subgraph(keep=0.5)(ref, gen(seed))
        check_valid(out, ref)
        check_induced(out, ref)
        assert torch.bincount(out.batch).tolist()[0] == 2
        d0 = out.to_data_list()[0]
        assert connected(2, d0.edge_index)
    # disconnected: an edge 0-1 and isolated nodes 2, 3: a walker stays in its component
    g = Batch.from_data_list([graph(4, [(0, 1)], 0)])
    for seed in range(20):
        out = Subgraph(keep=1.0)(g, gen(seed))
        assert out.num_nodes in (1, 2)
        assert connected(out.num_nodes, out.edge_index)


# ------------------------------------------------------------------------------------------
# RandomChoice, presets, reproducibility
# ------------------------------------------------------------------------------------------


class _Tag(GraphView):
    """Marks every node with a constant in x column 0 (to see which view a graph got)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __call__(self, batch, generator=None):
        out = Identity()(batch)
        out.x = batch.x.clone()
        out.x[:, 0] = self.value
        return out


def test_randomchoice_per_graph_order_preserved():
    ref = random_batch(200, seed=6)
    out = RandomChoice([_Tag(-1.0), _Tag(-2.0), NodeDrop(0.5)])(ref, gen(0))
    check_valid(out, ref)
    tag = torch.full((ref.num_graphs,), 0.0).scatter_reduce(0, out.batch, out.x[:, 0], "amin")
    tag = torch.where(tag < 0, tag, torch.zeros_like(tag))
    per_graph = [set(out.x[out.batch == g, 0].tolist()) for g in range(ref.num_graphs)]
    for g, values in enumerate(per_graph):
        if float(tag[g]) < 0:
            assert values == {float(tag[g])}  # one view per graph
    for value in (-1.0, -2.0, 0.0):
        assert 0.2 < float((tag == value).float().mean()) < 0.47
    # graphs that got NodeDrop are induced subgraphs, all others keep every node
    kept = torch.bincount(out.batch, minlength=ref.num_graphs)
    full = torch.bincount(ref.batch, minlength=ref.num_graphs)
    assert torch.equal(kept[tag < 0], full[tag < 0])
    drop = tag == 0
    lo = (full[drop] - torch.ceil(full[drop] * 0.5)).clamp(min=1)
    hi = (full[drop] - torch.floor(full[drop] * 0.5)).clamp(min=1)
    assert bool(((kept[drop] >= lo) & (kept[drop] <= hi)).all())
    check_induced(out, ref, check_x=False)  # edges of every graph: induced on kept nodes


@pytest.mark.parametrize("preset", GRAPH_VIEW_PRESETS)
def test_presets_valid_and_reproducible(preset):
    ref = random_batch(60, seed=7)
    pair = graph_views(preset, p=0.3)
    a1, b1 = pair(ref, gen(1))
    a2, b2 = pair(ref, gen(1))
    a3, _ = pair(ref, gen(2))
    for o in (a1, b1, a3):
        check_valid(o, ref)
    for key in ("x", "edge_index", "edge_attr", "batch", "node_label"):
        assert torch.equal(a1[key], a2[key]) and torch.equal(b1[key], b2[key])
    if preset != "none":
        assert not (torch.equal(a1.x, a3.x) and torch.equal(a1.edge_index, a3.edge_index))
        assert not (torch.equal(a1.x, b1.x) and torch.equal(a1.edge_index, b1.edge_index))


def test_graph_views_errors_and_seeded_pair():
    with pytest.raises(ValueError, match="graphcl"):
        graph_views("dropnodes")
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        NodeDrop(p=1.0)
    with pytest.raises(ValueError, match="keep"):
        Subgraph(keep=0.0)
    with pytest.raises(TypeError, match="Generator"):
        NodeDrop()(path_and_triangle(), 0)
    ref = random_batch(20, seed=8)
    p1, p2 = graph_views(seed=3), graph_views(seed=3)
    assert torch.equal(p1(ref)[0].x, p2(ref)[0].x)
    assert isinstance(p1, GraphViewPair) and "RandomChoice" in repr(p1)


def test_every_view_reproducible_and_seed_sensitive():
    ref = random_batch(40, seed=9)
    views = [NodeDrop(0.3), EdgePerturb(0.3), AttrMask(0.3), AttrMask(0.3, "noise"), Subgraph(0.6)]
    for view in views:
        a, b, c = view(ref, gen(5)), view(ref, gen(5)), view(ref, gen(6))
        assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index)
        assert not (torch.equal(a.x, c.x) and torch.equal(a.edge_index, c.edge_index)), view


def test_single_graph_data_and_one_node_graph():
    g = graph(5, [(0, 1), (1, 2), (2, 3), (3, 4)], 0)
    for view in (NodeDrop(0.4), EdgePerturb(0.5), AttrMask(0.4), Subgraph(0.6), Identity()):
        out = view(g, gen(0))
        assert type(out) is Data and out.num_nodes >= 1 and "batch" not in out.keys()
    one = Batch.from_data_list([graph(1, [], 0)])
    for view in (
        NodeDrop(0.9),
        EdgePerturb(0.9),
        AttrMask(0.9),
        Subgraph(0.1),
        graph_views().view1,
    ):
        out = view(one, gen(0))
        assert out.num_graphs == 1 and out.num_nodes == 1 and out.edge_index.shape == (2, 0)


def test_batch_from_raw_tensors_and_pyg_layers():
    from torch_geometric.nn import GINConv, global_add_pool

    ref = path_and_triangle()
    raw = Batch(
        x=ref.x,
        edge_index=ref.edge_index,
        edge_attr=ref.edge_attr,
        node_label=ref.node_label,
        y=ref.y,
        batch=ref.batch,
        ptr=ref.ptr,
    )
    assert raw.num_graphs == 2
    with pytest.raises(RuntimeError):
        raw.to_data_list()  # PyG: raw batches cannot be split ...
    out = NodeDrop(0.5)(raw, gen(0))
    check_valid(out, ref)  # ... but views' outputs can
    gin = GINConv(torch.nn.Linear(3, 8))
    for view in (NodeDrop(0.5), EdgePerturb(0.3), Subgraph(0.5), graph_views().view1):
        o = view(ref, gen(0))
        h = gin(o.x, o.edge_index)
        pooled = global_add_pool(h, o.batch, size=o.num_graphs)
        assert pooled.shape == (2, 8)


def test_large_batch_speed():
    ref = random_batch(1000, seed=10, lo=5, hi=40)
    for view in (
        NodeDrop(0.2),
        EdgePerturb(0.2),
        AttrMask(0.2),
        Subgraph(0.8),
        graph_views().view1,
    ):
        view(ref, gen(0))  # warm-up
        t = time.perf_counter()
        out = view(ref, gen(1))
        dt = time.perf_counter() - t
        assert out.num_graphs == 1000
        print(f"{view!r:.40}: {dt * 1000:.1f} ms for {ref.num_nodes} nodes")


# ------------------------------------------------------------------------------------------
# GRACE
# ------------------------------------------------------------------------------------------


def test_grace_views_rates_and_node_set():
    torch.manual_seed(0)
    n, f = 2000, 500
    ei = torch.randint(0, n, (2, 20000))
    g = Data(x=torch.rand(n, f) + 1.0, edge_index=ei, edge_attr=torch.arange(20000))
    out = DropEdges(0.3)(g, gen(0))
    assert out.num_nodes == n and torch.equal(out.x, g.x)
    assert abs(1 - out.edge_index.shape[1] / 20000 - 0.3) < 0.02
    assert torch.equal(out.edge_index, ei[:, out.edge_attr])  # attributes aligned
    masked = MaskFeatureColumns(0.4)(g, gen(0))
    cols = (masked.x == 0).all(dim=0)
    assert bool(((masked.x == 0).any(dim=0) == cols).all())  # whole columns
    assert abs(float(cols.float().mean()) - 0.4) < 0.07
    assert torch.equal(masked.x[:, ~cols], g.x[:, ~cols])
    v1, v2 = grace_views()(g, gen(1))
    assert v1.num_nodes == v2.num_nodes == n
    assert abs(1 - v1.edge_index.shape[1] / 20000 - 0.2) < 0.02
    assert abs(1 - v2.edge_index.shape[1] / 20000 - 0.4) < 0.02
    w1, _ = grace_views()(g, gen(1))
    assert torch.equal(v1.x, w1.x) and torch.equal(v1.edge_index, w1.edge_index)
    assert isinstance(Compose([DropEdges(0.1)]), GraphView)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_views_on_cuda_match_cpu():
    ref = random_batch(30, seed=11)
    cuda = ref.to("cuda")
    views = [NodeDrop(0.3), EdgePerturb(0.3), AttrMask(0.3, "noise"), Subgraph(0.6)]
    views += [graph_views().view1, DropEdges(0.3), MaskFeatureColumns(0.3)]
    for view in views:
        a, b = view(ref, gen(0)), view(cuda, gen(0))
        assert b.x.device.type == "cuda"
        assert torch.allclose(a.x, b.x.cpu()) and torch.equal(a.edge_index, b.edge_index.cpu())
        assert len(b.to_data_list()) == 30
