"""Graphs from the command line: a TU folder (graphcl, infograph), a SMILES CSV with bad rows
(graphcl, scaffold split) and an edge list (grace) each train and are evaluated; ``embed``
writes graph embeddings; a missing ``[graph]`` extra is one line naming the install command.

The files are small real files written here; each run is one or two epochs.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from contrastkit.cli.main import app

# 60 small molecules of two kinds (alcohols: 1, alkylbenzenes: 0) and three bad rows
SMILES = [
    *(("C" * n + "O", 1) for n in range(2, 32)),
    *(("C" * n + "c1ccccc1", 0) for n in range(0, 30)),
    ("not-a-smiles", 1),  # bad: RDKit cannot parse it
    ("", 0),  # bad: empty
    ("C", 1),  # bad: one atom, no bonds
]


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def _tu_folder(root, n_graphs: int = 24):
    """A TU folder of rings (label 0) and stars (label 1), node labels by degree."""
    a, indicator, node_labels, labels = [], [], [], []
    node = 1
    rng = np.random.default_rng(0)
    for g in range(n_graphs):
        k = int(rng.integers(4, 8))
        ids = list(range(node, node + k))
        if g % 2 == 0:  # ring
            edges = [(ids[i], ids[(i + 1) % k]) for i in range(k)]
        else:  # star
            edges = [(ids[0], ids[i]) for i in range(1, k)]
        for u, v in edges:
            a += [(u, v), (v, u)]
        deg = {i: 0 for i in ids}
        for u, v in edges:
            deg[u] += 1
            deg[v] += 1
        node_labels += [min(deg[i], 3) for i in ids]
        indicator += [g + 1] * k
        labels.append(g % 2)
        node += k
    root.mkdir(parents=True)
    (root / "TOY_A.txt").write_text("".join(f"{u}, {v}\n" for u, v in a))
    (root / "TOY_graph_indicator.txt").write_text("".join(f"{i}\n" for i in indicator))
    (root / "TOY_graph_labels.txt").write_text("".join(f"{y}\n" for y in labels))
    (root / "TOY_node_labels.txt").write_text("".join(f"{y}\n" for y in node_labels))
    return root


def _common(out) -> list[str]:
    return ["--out", str(out), "--no-progress", "--set", "train.tensorboard=false"]


@pytest.mark.parametrize("recipe", ["graphcl", "infograph"])
def test_a_tu_folder_trains_and_is_cross_validated(tmp_path, recipe):
    folder = _tu_folder(tmp_path / "toy")
    out = tmp_path / "run"
    r = _invoke(
        "train", "--recipe", recipe, "--data", str(folder), "--epochs", "2",
        "--batch-size", "8", "--width", "8", "--layers", "2", *_common(out),
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    results = json.loads((out / "results.json").read_text())
    ev = results["evaluation"]
    assert ev["protocol"] == "graph_classification" and ev["split"] == "cv"
    assert 0.0 <= ev["metrics.svm_accuracy"] <= 1.0
    # the WL kernel, the histograms and the untrained encoder are measured beside it
    assert ev["baseline_name"] == "WL subtree kernel"
    assert "node-label histograms.svm_accuracy" in ev and "untrained encoder.svm_accuracy" in ev
    assert ev["chance.svm_accuracy"] == pytest.approx(0.5)
    assert results["data"]["train"] == 24  # every graph pre-trains
    assert (out / "encoder.safetensors").is_file() and (out / "report.html").is_file()
    assert "umap" in (out / "report.html").read_text().lower()

    # embed: every graph of the folder, with its label
    emb = tmp_path / "emb.npy"
    r = _invoke("embed", "--encoder", str(out), "--data", str(folder), "--out", str(emb))
    assert r.exit_code == 0, r.output
    x = np.load(emb)
    assert x.shape == (24, 16) and np.isfinite(x).all()
    assert np.load(tmp_path / "emb.labels.npy").tolist() == [i % 2 for i in range(24)]


def test_a_smiles_csv_with_bad_rows_trains_and_is_probed(tmp_path):
    csv = tmp_path / "molecules.csv"
    csv.write_text("smiles,active\n" + "".join(f'"{s}",{y}\n' for s, y in SMILES))
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match=r"skipped 3 of 63 rows"):
        r = _invoke(
            "train", "--recipe", "graphcl", "--data", str(csv), "--smiles-column", "smiles",
            "--label-column", "active", "--epochs", "2", "--batch-size", "8", "--width", "8",
            "--layers", "2", "--split", "random", *_common(out),
        )  # fmt: skip
    assert r.exit_code == 0, r.output
    results = json.loads((out / "results.json").read_text())
    ev = results["evaluation"]
    assert ev["protocol"] == "molecule" and ev["split"] == "test"
    assert ev["baseline_name"] == "ECFP4 fingerprints" and ev["chosen_on"] == "val"
    assert 0.0 <= ev["metrics.roc_auc"] <= 1.0 and "untrained encoder.roc_auc" in ev
    counts = results["data"]
    assert counts["train"] + counts["val"] + counts["test"] == 60
    # embed the test molecules: ids are their SMILES
    emb = tmp_path / "emb.npy"
    r = _invoke(
        "embed", "--encoder", str(out), "--data", str(csv), "--column", "smiles",
        "--split", "test", "--out", str(emb),
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    ids = np.load(tmp_path / "emb.ids.npy")
    # --split picks a part of the scaffold split (the run's random split is not stored)
    assert np.load(emb).shape == (len(ids), 16) and 0 < len(ids) < 60
    assert set(ids) <= {s for s, _ in SMILES}


def test_a_split_with_one_class_in_a_part_is_refused_before_training(tmp_path):
    csv = tmp_path / "molecules.csv"
    csv.write_text("smiles,active\n" + "".join(f'"{s}",{y}\n' for s, y in SMILES[:60]))
    # scaffolds: the 30 alcohols share the empty scaffold and go to train, the benzene group
    # does not fit there and goes whole to the test part
    r = _invoke(
        "train", "--recipe", "graphcl", "--data", str(csv), "--label-column", "active",
        *_common(tmp_path / "run"),
    )  # fmt: skip
    assert r.exit_code != 0
    assert "needs both classes" in r.output and "--split random" in r.output
    assert not (tmp_path / "run" / "checkpoint.safetensors").exists()


def test_an_edge_list_trains_grace(tmp_path):
    folder = tmp_path / "net"
    folder.mkdir()
    # two cliques of 6 joined by one edge; the clique is the label
    edges = [
        (f"n{i}", f"n{j}") for c in (0, 6) for i in range(c, c + 6) for j in range(i + 1, c + 6)
    ]
    edges.append(("n0", "n6"))
    (folder / "edges.txt").write_text("# a toy graph\n" + "".join(f"{u} {v}\n" for u, v in edges))
    (folder / "labels.txt").write_text("".join(f"n{i} {'ab'[i // 6]}\n" for i in range(12)))
    out = tmp_path / "run"
    r = _invoke(
        "train", "--recipe", "grace", "--data", str(folder), "--epochs", "2",
        "--batch-size", "12", "--width", "8", *_common(out),
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    ev = json.loads((out / "results.json").read_text())["evaluation"]
    assert ev["protocol"] == "graph_classification" and ev["details.graphs"] == 12
    assert ev["baseline_name"] == "raw node features"
    assert 0.0 <= ev["metrics.svm_accuracy"] <= 1.0
    # a graph-level recipe on one graph's nodes is refused in one line
    r = _invoke("train", "--recipe", "graphcl", "--data", str(folder), *_common(tmp_path / "x"))
    assert r.exit_code != 0 and "--recipe grace" in r.output


def test_a_missing_graph_extra_names_the_install_command(tmp_path, monkeypatch):
    for name in list(sys.modules):
        if name == "torch_geometric" or name.startswith(
            ("torch_geometric.", "contrastkit.data.graphs")
        ):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torch_geometric", None)  # import fails
    r = _invoke("train", "--recipe", "graphcl", "--data", "mutag", *_common(tmp_path / "run"))
    assert r.exit_code != 0
    assert 'pip install "contrastkit[graph]"' in r.output
