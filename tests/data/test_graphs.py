"""Graph data sets: TU folders, MUTAG, SMILES tables (bad rows, splits, cache), B3DB, the graph
field kind, and node-level edge lists."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest
import torch

from contrastkit.data import graphs as G
from contrastkit.data.fields import FIELD_KINDS, kind_of

# ------------------------------------------------------------------------------- helpers


def _write_tu(root: Path, prefix: str = "TOY") -> Path:
    """4 graphs: 1 triangle (class 5), 2 an edge (class 7, one direction only in the file),
    3 two nodes without edges (class 5), 4 a path of 3 (class 7)."""
    root.mkdir(parents=True, exist_ok=True)
    # nodes 1-3: graph 1, 4-5: graph 2, 6-7: graph 3, 8-10: graph 4
    edges = [(1, 2), (2, 1), (2, 3), (3, 2), (1, 3), (3, 1), (4, 5), (8, 9), (9, 8), (9, 10)]
    edges += [(10, 9)]
    (root / f"{prefix}_A.txt").write_text("".join(f"{a}, {b}\n" for a, b in edges))
    ind = [1, 1, 1, 2, 2, 3, 3, 4, 4, 4]
    (root / f"{prefix}_graph_indicator.txt").write_text("".join(f"{i}\n" for i in ind))
    (root / f"{prefix}_graph_labels.txt").write_text("5\n7\n5\n7\n")
    (root / f"{prefix}_node_labels.txt").write_text("".join(f"{v}\n" for v in [3, 3, 9] * 3 + [3]))
    return root


SMILES_ROWS = [
    ("c1ccccc1C", "BBB+"),
    ("c1ccccc1O", "BBB-"),
    ("c1ccccc1N", "BBB+"),
    ("c1ccccc1CC", "BBB-"),
    ("C1CCCCC1O", "BBB+"),
    ("C1CCCCC1N", "BBB-"),
    ("c1ccncc1", "BBB+"),
    ("c1ccncc1C", "BBB-"),
    ("CCO", "BBB+"),
    ("CCN", "BBB-"),
    ("CC(=O)O", "BBB+"),
    ("c1ccc2ccccc2c1", "BBB-"),
    ("xyz(", "BBB+"),  # invalid
    ("", "BBB-"),  # empty
    ("C", "BBB+"),  # no bonds
]


def _write_smiles(path: Path, rows=SMILES_ROWS, header=("smiles", "BBB+/BBB-")) -> Path:
    sep = "\t" if path.suffix == ".tsv" else ","
    path.write_text(sep.join(header) + "\n" + "".join(f"{s}{sep}{y}\n" for s, y in rows))
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.delenv("CONTRASTKIT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "contrastkit" / "graphs"


# --------------------------------------------------------------------------------- TU


def test_tu_folder_skips_graph_without_edges_and_symmetrises(tmp_path):
    root = _write_tu(tmp_path / "toy")
    with pytest.warns(UserWarning, match=r"skipped 1 of 4 graphs.*no edges \(e\.g\. graph 3\)"):
        data = G.load_tu_folder(root)
    s = data.train
    assert data.test is None and data.protocol == "graph_classification" and data.split == ""
    assert len(s) == 3 and s.classes == ["5", "7"] and s.labels.tolist() == [0, 1, 1]
    assert s.num_node_labels == 2 and s.num_features == 2 and not s.categorical
    assert s.feature_cardinalities is None
    g0, g1 = s.graphs[0], s.graphs[1]
    assert g0.node_label.tolist() == [0, 0, 1] and g0.x.dtype == torch.float32
    assert g0.x.tolist() == [[1, 0], [1, 0], [0, 1]]
    assert g1.edge_index.tolist() == [[0, 1], [1, 0]]  # the reverse edge was added
    assert s.graphs[2].edge_index.shape == (2, 4)


def test_tu_folder_raw_subfolder_and_constant_features(tmp_path):
    root = _write_tu(tmp_path / "ds" / "raw")
    (root / "TOY_node_labels.txt").unlink()
    with pytest.warns(UserWarning):
        data = G.load_tu_folder(tmp_path / "ds", name="toy")
    assert data.name == "toy" and data.train.num_features == 1
    assert data.train.num_node_labels == 0
    with pytest.raises(ValueError, match="graph 3"):
        G.load_tu_folder(tmp_path / "ds", on_error="raise")


def test_tu_folder_bad_files(tmp_path):
    root = _write_tu(tmp_path / "bad")
    (root / "TOY_A.txt").write_text("1, 2\n2, x\n")
    with pytest.raises(ValueError, match=r"TOY_A\.txt: line 2 .*two node numbers"):
        G.load_tu_folder(root)
    root = _write_tu(tmp_path / "missing")
    (root / "TOY_graph_labels.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"TOY_graph_labels\.txt is missing"):
        G.load_tu_folder(root)
    with pytest.raises(FileNotFoundError, match=r"_A\.txt"):
        G.load_tu_folder(tmp_path)


def test_mutag():
    data = G.load_mutag()
    s = data.train
    assert data.name == "mutag" and len(s) == 188 and data.test is None
    assert s.labels.bincount().tolist() == [63, 125] and s.classes == ["-1", "1"]
    assert s.num_node_labels == 7 and s.num_features == 7
    g = s.graphs[0]
    assert g.edge_attr.shape == (g.edge_index.shape[1], 4)
    assert g.x.argmax(1).tolist() == g.node_label.tolist()


# ----------------------------------------------------------------------- field kind


def test_graph_kind_round_trip():
    s = G.load_mutag().train
    kind = FIELD_KINDS["graph"]
    assert isinstance(kind, G.GraphKind)
    batch = kind.collate(s.graphs[:10])
    assert kind_of(batch) is kind and kind.accepts(batch) and kind.size(batch) == 10
    index = torch.tensor([7, 2, 2, 0])
    sel = kind.select(batch, index)
    assert kind.size(sel) == 4
    for i, g in enumerate(sel.to_data_list()):
        ref = s.graphs[int(index[i])]
        assert torch.equal(g.x, ref.x) and torch.equal(g.edge_index, ref.edge_index)
        assert torch.equal(g.node_label, ref.node_label)
    both = kind.cat([sel, batch])
    assert kind.size(both) == 14
    assert torch.equal(both.get_example(4).x, s.graphs[0].x)
    assert kind.to(sel, torch.device("cpu")).num_graphs == 4


def test_graph_set_rows_subset_and_encoder_inputs():
    s = G.load_mutag().train
    rows = s.rows(torch.tensor([3, 1]))
    assert set(rows) == {"graphs", "indices", "labels"}
    assert rows["graphs"].num_graphs == 2 and rows["labels"].tolist() == s.labels[[3, 1]].tolist()
    assert set(s.fields) == {"graphs", "labels", "indices"}
    sub = s.subset([5, 6, 7], "part")
    assert len(sub) == 3 and sub.name == "part" and sub.graphs[0] is s.graphs[5]
    assert s.encoder_inputs().num_graphs == 188
    with pytest.raises(ValueError, match="one per graph"):
        G.GraphSet(s.graphs[:2], torch.tensor([0]))


# ------------------------------------------------------------------------- molecules


def test_smiles_csv_bad_rows_and_labels(tmp_path, cache):
    path = _write_smiles(tmp_path / "mols.csv")
    with pytest.warns(UserWarning, match=r"skipped 3 of 15 rows") as rec:
        data = G.load_smiles_csv(path, split="random", fractions=(0.6, 0.2, 0.2))
    msg = str(rec[0].message)
    assert "invalid SMILES" in msg and "empty SMILES" in msg and "no bonds" in msg
    assert data.protocol == "molecule" and data.split == "random" and "random" in data.note
    s = data.train
    total = len(s) + len(data.val) + len(data.test)
    assert total == 12 and s.classes == ["BBB-", "BBB+"]  # guessed column, negative first
    assert s.categorical and s.num_features == 9
    assert s.feature_cardinalities == [119, 9, 11, 12, 9, 5, 8, 2, 2]
    i = s.smiles.index("c1ccccc1C")
    assert s.labels[i] == 1
    g = s.graphs[i]
    assert g.x.dtype == torch.long and g.edge_attr.shape == (g.edge_index.shape[1], 3)
    assert g.node_label.tolist() == [6] * 7  # atomic numbers
    with pytest.raises(ValueError, match="invalid SMILES"):
        G.load_smiles_csv(path, on_error="raise", split="random")


def test_smiles_columns(tmp_path, cache):
    path = _write_smiles(tmp_path / "mols.tsv", SMILES_ROWS[:12], ("SMILES", "p_np"))
    data = G.load_smiles_csv(path)  # "smiles" matches "SMILES"; p_np is a label name
    assert data.train.labels is not None and data.split == "scaffold"
    with pytest.raises(ValueError, match=r"no 'activity' column.*'SMILES', 'p_np'"):
        G.load_smiles_csv(path, label_column="activity")
    with pytest.raises(ValueError, match=r"no 'smi' column.*SMILES"):
        G.load_smiles_csv(path, smiles_column="smi")
    rows = [(s, f"id{i}\t{i % 2}") for i, (s, _) in enumerate(SMILES_ROWS[:12])]
    amb = _write_smiles(tmp_path / "amb.tsv", rows, ("smiles", "name\tscore"))
    with pytest.raises(ValueError, match=r"cannot tell.*\['smiles', 'name', 'score'\]"):
        G.load_smiles_csv(amb)
    unl = G.load_smiles_csv(amb, label_column="")
    assert unl.train.labels is None and unl.train.classes == []
    only = tmp_path / "only.csv"
    only.write_text("smiles\n" + "".join(f"{s}\n" for s, _ in SMILES_ROWS[:12]))
    assert G.load_smiles_csv(only, split="random").train.labels is None


def test_class_order():
    assert G._class_order(["BBB+", "BBB-"]) == ["BBB-", "BBB+"]
    assert G._class_order(["1", "0", "1"]) == ["0", "1"]
    assert G._class_order(["Active", "Inactive"]) == ["Inactive", "Active"]
    assert G._class_order(["10", "2", "1"]) == ["1", "2", "10"]
    assert G._class_order(["b", "a", "c"]) == ["a", "b", "c"]


def test_smiles_cache_reused_and_rebuilt(tmp_path, cache):
    path = _write_smiles(tmp_path / "mols.csv")
    with pytest.warns(UserWarning, match="skipped 3"):
        first = G.load_smiles_csv(path)
    files = sorted(p.suffix for p in cache.iterdir())
    assert files == [".json", ".safetensors"]
    with pytest.warns(UserWarning, match="skipped 3"):  # same report from the cache
        again = G.load_smiles_csv(path)
    assert again.train.smiles == first.train.smiles
    assert all(torch.equal(a.x, b.x) for a, b in zip(again.train.graphs, first.train.graphs))
    next(cache.glob("*.safetensors")).write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="skipped 3"):
        rebuilt = G.load_smiles_csv(path)
    assert rebuilt.train.smiles == first.train.smiles


def test_scaffold_split():
    from rdkit.Chem.Scaffolds import MurckoScaffold

    smiles = [s for s, _ in SMILES_ROWS[:12]] * 2 + ["C1CC1C", "C1CCC1N", "c1ccoc1", "CCCC"]
    parts = G.scaffold_split(smiles, (0.6, 0.2, 0.2))
    assert sorted(torch.cat(parts).tolist()) == list(range(len(smiles)))
    scaf = [MurckoScaffold.MurckoScaffoldSmiles(smiles=s, includeChirality=False) for s in smiles]
    sets = [{scaf[i] for i in p.tolist()} for p in parts]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert abs(len(parts[0]) - 0.6 * len(smiles)) <= 4
    again = G.scaffold_split(smiles, (0.6, 0.2, 0.2))
    assert all(torch.equal(a, b) for a, b in zip(parts, again))
    with pytest.raises(ValueError, match="summing to 1"):
        G.scaffold_split(smiles, (0.5, 0.2, 0.2))


def test_random_split_seeded():
    a = G.random_split(50, (0.8, 0.1, 0.1), seed=1)
    b = G.random_split(50, (0.8, 0.1, 0.1), seed=1)
    c = G.random_split(50, (0.8, 0.1, 0.1), seed=2)
    assert [len(p) for p in a] == [40, 5, 5]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[1], c[1])
    assert sorted(torch.cat(a).tolist()) == list(range(50))


def test_b3db():
    # uses the user's cache (a cold load converts 7,807 SMILES: ~15 s; cached: < 1 s)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the known bad rows go into the note, not a warning
        data = G.load_b3db()
    elapsed = time.perf_counter() - start
    n = len(data.train) + len(data.val) + len(data.test)
    assert 7780 <= n <= 7807 and data.name == "b3db" and data.split == "scaffold"
    assert data.train.classes == ["BBB-", "BBB+"] and "skipped" in data.note
    assert len(data.train) == pytest.approx(0.8 * n, abs=10)
    assert elapsed < 40


# ------------------------------------------------------------------------- node level


def test_edge_list_with_features_and_labels(tmp_path):
    (tmp_path / "edges.txt").write_text("# toy\nsource target\n1 2\n2,3\n3\t1\n4 3\n")
    (tmp_path / "features.txt").write_text("".join(f"{i} {i} 0.5\n" for i in range(1, 6)))
    (tmp_path / "labels.txt").write_text("1 a\n2 b\n3 a\n5 b\n")
    g = G.load_edge_list(
        tmp_path / "edges.txt",
        features=tmp_path / "features.txt",
        labels=tmp_path / "labels.txt",
    )
    assert g.node_names == ["1", "2", "3", "4", "5"]  # 5 is isolated (only in features)
    assert g.graph.x.shape == (5, 2) and g.graph.x[4].tolist() == [5.0, 0.5]
    assert g.graph.edge_index.shape == (2, 8)
    assert g.classes == ["a", "b"] and g.labels.tolist() == [0, 1, 0, -1, 1]
    assert len(g) == 5 and g.encoder_inputs() is g.graph
    sub = g.subset([4, 0])
    assert sub.nodes.tolist() == [4, 0] and sub.labels.tolist() == [1, 0]
    assert sub.graph is g.graph
    rows = sub.rows(torch.tensor([1]))
    assert rows["nodes"].tolist() == [0] and rows["labels"].tolist() == [0]
    (tmp_path / "features.txt").write_text("1 0.1\n2 0.2\n")
    with pytest.raises(ValueError, match=r"no features for 2 of 4 nodes \(e\.g\. '3'\)"):
        G.load_edge_list(tmp_path / "edges.txt", features=tmp_path / "features.txt")


def test_edge_list_without_features_and_bad_lines(tmp_path):
    path = tmp_path / "g.edges"
    path.write_text("a b\nb c\nc c\na b\nb a\nx y z w\njust-one\n")
    with pytest.warns(UserWarning) as rec:
        g = G.load_edge_list(path)
    msg = str(rec[0].message)
    assert "2 malformed" in msg and "1 self loops" in msg and "1 repeated edges" in msg
    assert g.node_names == ["a", "b", "c"] and g.labels is None
    assert g.graph.x.shape == (3, 32) and g.graph.x.argmax(1).tolist() == [1, 2, 1]  # degrees
    assert g.graph.edge_index.shape == (2, 4)
    with pytest.raises(ValueError, match="line 6"):
        G.load_edge_list(path, on_error="raise")


def test_karate():
    g = G.load_karate_club()
    assert g.name == "karate" and len(g) == 34 and g.num_features == 34
    assert g.graph.edge_index.shape == (2, 156) and g.labels.bincount().tolist() == [17, 17]


# ---------------------------------------------------------------------------- dispatch


def test_load_graph_data_dispatch(tmp_path, cache):
    assert G.GRAPH_DATA == ("mutag", "b3db", "karate")
    assert isinstance(G.load_graph_data("karate"), G.NodeGraph)
    assert len(G.load_graph_data("mutag").train) == 188
    with pytest.warns(UserWarning):
        assert G.load_graph_data(_write_tu(tmp_path / "tu")).train.name == "TOY"
    csv_path = _write_smiles(tmp_path / "m.csv", SMILES_ROWS[:12])
    assert G.load_graph_data(csv_path, split="random").protocol == "molecule"
    folder = tmp_path / "net"
    folder.mkdir()
    (folder / "edges.txt").write_text("1 2\n2 3\n")
    (folder / "labels.txt").write_text("1 x\n2 y\n3 x\n")
    g = G.load_graph_data(folder)
    assert isinstance(g, G.NodeGraph) and g.name == "net" and g.labels.tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match=r"mutagg.*Did you mean 'mutag'"):
        G.load_graph_data("mutagg")
