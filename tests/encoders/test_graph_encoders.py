"""Graph encoders (GIN, GCN): shapes, categorical atoms, config round trip, invariances."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("torch_geometric")

from torch_geometric.data import Batch, Data
from torch_geometric.utils import from_smiles
from torch_geometric.utils.smiles import x_map

from contrastkit.encoders import ENCODERS, build_encoder
from contrastkit.encoders.graph import GCN, GIN, SMILES_CARDINALITIES


def _random_graph(n: int, in_dim: int, seed: int, dtype=torch.float32) -> Data:
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n, (2 * n,), generator=g)
    dst = torch.randint(0, n, (2 * n,), generator=g)
    keep = src != dst
    ei = torch.stack([src[keep], dst[keep]])
    ei = torch.cat([ei, ei.flip(0)], dim=1)
    return Data(x=torch.randn(n, in_dim, generator=g, dtype=dtype), edge_index=ei)


def _batch(sizes=(5, 7, 3), in_dim=7, dtype=torch.float32) -> Batch:
    return Batch.from_data_list([_random_graph(n, in_dim, i, dtype) for i, n in enumerate(sizes)])


@pytest.mark.parametrize("concat", [True, False])
@pytest.mark.parametrize("readout", ["sum", "mean", "max"])
def test_gin_shapes(concat, readout):
    enc = GIN(in_dim=7, hidden=16, layers=3, readout=readout, concat=concat)
    batch = _batch()
    out = enc(batch)
    expected = 48 if concat else 16
    assert enc.out_dim == enc.node_dim == expected
    assert out.shape == (3, expected)
    assert enc.node_embeddings(batch).shape == (15, expected)
    graphs, nodes = enc.forward_with_nodes(batch)
    assert graphs.shape == (3, expected) and nodes.shape == (15, expected)


def test_gin_default_matches_graphcl_width():
    enc = GIN(in_dim=7)
    assert enc.out_dim == 160  # hidden 32 × 5 layers, concatenated


def test_single_data_is_one_graph():
    g = _random_graph(6, 7, 0)
    enc = GIN(in_dim=7, hidden=8, layers=2).eval()
    assert enc(g).shape == (1, 16)
    assert torch.allclose(enc(g), enc(Batch.from_data_list([g])))


def test_gin_readout_is_pool_of_node_embeddings():
    enc = GIN(in_dim=7, hidden=8, layers=2, readout="sum").eval()
    batch = _batch()
    graphs, nodes = enc.forward_with_nodes(batch)
    manual = torch.stack([nodes[batch.batch == i].sum(0) for i in range(3)])
    assert torch.allclose(graphs, manual, atol=1e-5)


def test_categorical_input_on_smiles_molecules():
    assert SMILES_CARDINALITIES == [len(v) for v in x_map.values()]
    mols = [from_smiles(s) for s in ["CCO", "c1ccccc1O", "CC(=O)[O-]", "C[NH3+]"]]
    batch = Batch.from_data_list(mols)
    assert batch.x.dtype == torch.int64 and batch.x.shape[1] == 9
    enc = GIN(in_dim=9, hidden=16, layers=3, categorical=SMILES_CARDINALITIES)
    assert enc.convs[0].nn[0].in_features == 16  # in_dim ignored: input width is hidden
    out = enc(batch)
    assert out.shape == (4, 48) and torch.isfinite(out).all()
    gcn = GCN(in_dim=9, hidden=16, out_dim=8, categorical=SMILES_CARDINALITIES)
    assert gcn(batch).shape == (4, 8)


def test_categorical_errors_name_the_column_and_dtype():
    enc = GIN(in_dim=2, hidden=8, layers=2, categorical=[3, 4])
    bad = Data(x=torch.tensor([[0, 1], [2, 4]]), edge_index=torch.tensor([[0, 1], [1, 0]]))
    with pytest.raises(ValueError, match="column 1 holds code 4"):
        enc(bad)
    with pytest.raises(TypeError, match="categorical"):
        enc(Data(x=torch.randn(2, 2), edge_index=bad.edge_index))
    plain = GIN(in_dim=2, hidden=8, layers=2)
    with pytest.raises(TypeError, match=r"x\.float"):
        plain(Data(x=torch.tensor([[0, 1], [2, 3]]), edge_index=bad.edge_index))
    with pytest.raises(ValueError, match="in_dim=2"):
        plain(Data(x=torch.randn(2, 5), edge_index=bad.edge_index))


@pytest.mark.parametrize(
    "cls,kwargs",
    [
        (GIN, {"in_dim": 7, "hidden": 8, "layers": 3, "readout": "mean", "dropout": 0.1}),
        (GIN, {"in_dim": 9, "hidden": 8, "layers": 2, "categorical": SMILES_CARDINALITIES}),
        (GCN, {"in_dim": 7, "hidden": 16, "layers": 3, "out_dim": 8, "activation": "relu"}),
        (GCN, {"in_dim": 7}),
    ],
)
def test_rebuild_from_config_gives_identical_outputs(cls, kwargs):
    torch.manual_seed(0)
    enc = cls(**kwargs)
    if kwargs.get("categorical"):
        batch = Batch.from_data_list([from_smiles("CCO"), from_smiles("c1ccccc1N")])
    else:
        batch = _batch()
    enc.train()
    enc(batch)  # move the BatchNorm running statistics away from their initial values
    enc.eval()
    config = json.loads(json.dumps(enc.config))
    clone = cls(**config)
    clone.load_state_dict(enc.state_dict())
    clone.eval()
    assert clone.config == enc.config
    assert torch.equal(clone(batch), enc(batch))
    assert torch.equal(clone.node_embeddings(batch), enc.node_embeddings(batch))


@pytest.mark.parametrize("readout", ["sum", "mean", "max"])
@pytest.mark.parametrize("cls", [GIN, GCN])
def test_graph_embedding_is_permutation_invariant(cls, readout):
    torch.manual_seed(0)
    kwargs = {"in_dim": 7, "hidden": 8, "readout": readout}
    enc = cls(**kwargs).double().eval()
    g = _random_graph(9, 7, 3, torch.float64)
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(1))
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(9)
    permuted = Data(x=g.x[perm], edge_index=inv[g.edge_index])
    assert torch.allclose(enc(g), enc(permuted), atol=1e-10)
    # node embeddings are permutation-equivariant
    assert torch.allclose(enc.node_embeddings(g)[perm], enc.node_embeddings(permuted), atol=1e-10)


@pytest.mark.parametrize("cls", [GIN, GCN])
def test_graph_embedding_does_not_depend_on_other_graphs_in_eval(cls):
    torch.manual_seed(0)
    enc = cls(in_dim=7, hidden=8)
    enc.train()
    enc(_batch((4, 6, 8)))  # non-trivial running statistics
    enc.eval()
    target = _random_graph(5, 7, 42)
    alone = enc(target)
    with_a = enc(Batch.from_data_list([_random_graph(3, 7, 1), target]))[1]
    with_b = enc(Batch.from_data_list([target, _random_graph(11, 7, 2), _random_graph(4, 7, 5)]))
    assert torch.allclose(alone[0], with_a, atol=1e-5)
    assert torch.allclose(alone[0], with_b[0], atol=1e-5)


@pytest.mark.parametrize("cls", [GIN, GCN])
def test_backward_reaches_every_parameter(cls):
    torch.manual_seed(0)
    enc = cls(in_dim=7, hidden=8)
    graphs, nodes = enc.forward_with_nodes(_batch())
    (graphs.pow(2).sum() + nodes.pow(2).sum()).backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_gcn_shapes_and_defaults():
    enc = GCN(in_dim=7)
    assert enc.out_dim == enc.node_dim == 128
    assert len(enc.convs) == 2 and isinstance(enc.acts[0], torch.nn.PReLU)
    batch = _batch()
    assert enc.node_embeddings(batch).shape == (15, 128)
    graphs = enc(batch)
    assert graphs.shape == (3, 128)
    nodes = enc.node_embeddings(batch)
    manual = torch.stack([nodes[batch.batch == i].mean(0) for i in range(3)])
    assert torch.allclose(graphs, manual, atol=1e-5)
    assert not enc.convs[0].cached


def test_registry_builds_graph_encoders():
    assert {"gin", "gcn"} <= set(ENCODERS)
    enc = build_encoder("gin", in_dim=7)
    assert isinstance(enc, GIN) and enc.out_dim == 160
    assert isinstance(build_encoder("gin", **enc.config), GIN)
    gcn = build_encoder("gcn", in_dim=7, hidden=32, out_dim=16)
    assert isinstance(gcn, GCN) and gcn.out_dim == 16


def test_bad_options_raise():
    with pytest.raises(ValueError, match="readout"):
        GIN(in_dim=7, readout="avg")
    with pytest.raises(ValueError, match="activation"):
        GCN(in_dim=7, activation="tanh")
    with pytest.raises(ValueError, match="edge_index"):
        GIN(in_dim=7)(Data(x=torch.randn(3, 7)))
