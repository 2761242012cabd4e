"""Graph evaluation: nested-CV SVM, WL kernel on MUTAG, histograms, ECFP, ROC-AUC probe."""

from __future__ import annotations

import os
import time
from typing import ClassVar

import numpy as np
import pytest
import torch

pytest.importorskip("torch_geometric")
pytest.importorskip("grakel")

import grakel
from sklearn.model_selection import StratifiedKFold
from torch_geometric.data import Data

import contrastkit.evaluate.graph as graph_eval
from contrastkit.evaluate.graph import (
    ecfp_features,
    label_fraction_subset,
    node_label_histograms,
    probe_roc_auc,
    svm_cv,
    to_grakel,
    wl_kernel_matrices,
    wl_kernel_svm,
)

MUTAG_DIR = os.path.join(os.path.dirname(grakel.__file__), "tests", "data", "MUTAG")


def _load_mutag() -> tuple[list[Data], np.ndarray]:
    """MUTAG from grakel's bundled TU txt files (1-based node ids, labels ±1)."""

    def read(name: str) -> np.ndarray:
        path = os.path.join(MUTAG_DIR, f"MUTAG_{name}.txt")
        return np.loadtxt(path, delimiter=",", dtype=np.int64)

    edges, indicator = read("A") - 1, read("graph_indicator") - 1
    graph_labels, node_labels = read("graph_labels"), read("node_labels")
    graphs = []
    for g in range(len(graph_labels)):
        nodes = np.flatnonzero(indicator == g)
        keep = indicator[edges[:, 0]] == g
        graphs.append(
            Data(
                edge_index=torch.as_tensor(edges[keep].T - nodes[0]),
                node_label=torch.as_tensor(node_labels[nodes]),
                num_nodes=len(nodes),
            )
        )
    return graphs, graph_labels


@pytest.fixture(scope="module")
def mutag():
    if not os.path.isdir(MUTAG_DIR):
        pytest.skip("grakel's bundled MUTAG files are missing")
    return _load_mutag()


# --- svm_cv -----------------------------------------------------------------------------------


def test_svm_cv_separable_data_is_perfect():
    rng = np.random.default_rng(0)
    y = np.repeat([3, 7], 40)  # any integer labels
    x = rng.normal(size=(80, 6)) + 4.0 * (y == 7)[:, None]
    r = svm_cv(torch.as_tensor(x), torch.as_tensor(y), folds=5, seeds=(0, 1), inner_folds=3)
    assert r["accuracy"] == 1.0 and r["std"] == 0.0 and r["fold_std"] == 0.0
    assert len(r["per_seed"]) == 2 and r["seeds"] == [0, 1] and r["folds"] == 5
    assert sum(r["Cs_chosen"].values()) == 2 * 5


def test_svm_cv_random_labels_are_at_chance():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 5))
    y = rng.integers(0, 2, size=120)
    r = svm_cv(x, y, folds=5, seeds=(0, 1), Cs=(0.01, 1.0, 100.0), inner_folds=3)
    assert 0.35 < r["accuracy"] < 0.65


def test_svm_cv_is_deterministic_and_seed_dependent():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 4))
    y = (x[:, 0] + rng.normal(size=60) > 0).astype(int)
    kw = {"folds": 3, "seeds": (0, 1), "Cs": (0.1, 10.0), "inner_folds": 3}
    a, b = svm_cv(x, y, **kw), svm_cv(x, y, **kw)
    assert a["per_seed"] == b["per_seed"]
    assert a["fold_accuracies"][0] != a["fold_accuracies"][1]  # two different outer splits


class _RecordingSVC(graph_eval.SVC):
    """SVC that records the training-row identities of each fit (decoded from the diagonal)."""

    fits: ClassVar[list[frozenset[int]]] = []

    def fit(self, X, y, sample_weight=None):
        # the test kernel is c·11ᵀ + diag(1..N): a training block's diagonal names its rows
        ids = np.rint(np.diag(X) - 100.0).astype(int) - 1
        type(self).fits.append(frozenset(ids.tolist()))
        return super().fit(X, y, sample_weight)


def test_svm_cv_chooses_c_on_training_folds_only(monkeypatch):
    n = 60
    rng = np.random.default_rng(3)
    y = rng.permutation(np.repeat([0, 1], n // 2))
    kernel = 100.0 * np.ones((n, n)) + np.diag(np.arange(1, n + 1, dtype=np.float64))
    _RecordingSVC.fits = []
    monkeypatch.setattr(graph_eval, "SVC", _RecordingSVC)
    Cs, folds, inner, seeds = (0.1, 1.0, 10.0), 4, 3, (0, 5)
    svm_cv(kernel, y, kernel="precomputed", folds=folds, seeds=seeds, Cs=Cs, inner_folds=inner)
    per_outer = len(Cs) * inner + 1  # the inner grid, then the refit on the training fold
    assert len(_RecordingSVC.fits) == len(seeds) * folds * per_outer
    it = iter(_RecordingSVC.fits)
    for seed in seeds:
        outer = StratifiedKFold(folds, shuffle=True, random_state=seed)
        for tr, te in outer.split(np.zeros(n), y):
            train, test = set(tr.tolist()), set(te.tolist())
            for _ in range(len(Cs) * inner):  # selection fits: strict subsets of the train fold
                rows = next(it)
                assert rows < train and not rows & test
            assert next(it) == train  # the refit uses exactly the training fold


def test_svm_cv_picks_the_informative_kernel_from_a_list():
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1], 30)
    good = rng.normal(size=(60, 3)) + 3.0 * y[:, None]
    noise = rng.normal(size=(60, 3))
    kernels = [noise @ noise.T, good @ good.T]
    r = svm_cv(kernels, y, kernel="precomputed", folds=3, seeds=(0,), inner_folds=3)
    assert r["kernels_chosen"] == {1: 3} and r["accuracy"] > 0.95


def test_svm_cv_linear_kernel_matches_sklearn_linear_svc():
    """The precomputed Gram path is the same SVM as SVC(kernel="linear")."""
    from sklearn.svm import SVC

    rng = np.random.default_rng(5)
    x = rng.normal(size=(50, 4))
    y = (x[:, 0] + 0.5 * rng.normal(size=50) > 0).astype(int)
    r = svm_cv(x, y, folds=5, seeds=(0,), Cs=(1.0,), inner_folds=2)
    accs = []
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(x, y):
        clf = SVC(C=1.0, kernel="linear").fit(x[tr], y[tr])
        accs.append((clf.predict(x[te]) == y[te]).mean())
    assert r["fold_accuracies"][0] == pytest.approx(accs)


def test_svm_cv_standardize_and_rbf_run():
    rng = np.random.default_rng(6)
    y = np.repeat([0, 1], 30)
    x = rng.normal(size=(60, 3)) * [1000.0, 1.0, 1.0] + 2.5 * y[:, None] * [0, 1, 0]
    kw = {"folds": 3, "seeds": (0,), "Cs": (0.1, 1.0, 10.0), "inner_folds": 3}
    assert svm_cv(x, y, standardize=True, **kw)["accuracy"] > 0.8
    assert svm_cv(x, y, kernel="rbf", standardize=True, **kw)["accuracy"] > 0.8


def test_svm_cv_errors_name_the_fix():
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match="lower folds"):
        svm_cv(x, [0] * 8 + [1] * 2, folds=5)
    with pytest.raises(ValueError, match="single class"):
        svm_cv(x, [0] * 10)
    with pytest.raises(ValueError, match=r"\(N, N\)"):
        svm_cv(np.zeros((10, 9)), [0, 1] * 5, kernel="precomputed", folds=2)
    with pytest.raises(ValueError, match="kernel"):
        svm_cv(x, [0, 1] * 5, kernel="poly")


# --- WL kernel and histograms -----------------------------------------------------------------


def test_to_grakel_keeps_isolated_nodes_and_undirected_edges():
    g = Data(edge_index=torch.tensor([[0, 1], [1, 2]]), node_label=torch.tensor([5, 6, 7, 8]))
    (gk,) = to_grakel([g])
    assert sorted(gk.get_labels(purpose="any").items()) == [(0, 5), (1, 6), (2, 7), (3, 8)]
    edges = {edge for edge, _weight in gk.get_edges(purpose="any")}
    assert {(0, 1), (1, 0), (1, 2), (2, 1)} <= edges
    with pytest.raises(ValueError, match="node_label"):
        to_grakel([Data(edge_index=torch.zeros(2, 0, dtype=torch.long), num_nodes=2)])


def test_wl_kernel_matrices_are_normalised_and_distinguish_structure():
    path = Data(edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), node_label=torch.zeros(3))
    path.node_label = torch.zeros(3, dtype=torch.long)
    star = Data(
        edge_index=torch.tensor([[0, 1, 0, 2, 0, 3], [1, 0, 2, 0, 3, 0]]),
        node_label=torch.zeros(4, dtype=torch.long),
    )
    (k,) = wl_kernel_matrices([path, path, star], iterations=(2,))
    assert np.allclose(np.diag(k), 1.0)
    assert k[0, 1] == pytest.approx(1.0) and k[0, 2] < 1.0


def test_wl_kernel_svm_on_mutag(mutag):
    graphs, labels = mutag
    assert len(graphs) == 188
    t0 = time.perf_counter()
    r = wl_kernel_svm(graphs, labels, seeds=(0, 1))
    elapsed = time.perf_counter() - t0
    print(
        f"\nWL kernel SVM on MUTAG (2 seeds × 10 folds, h∈1..5, 7 Cs): accuracy "
        f"{r['accuracy']:.4f} ± {r['std']:.4f}, h chosen {r['iterations_chosen']}, kernels "
        f"{r['kernel_time_s']:.2f} s, total {elapsed:.2f} s"
    )
    assert r["accuracy"] >= 0.80
    assert sum(r["iterations_chosen"].values()) == 2 * 10
    assert set(r["iterations_chosen"]) <= {1, 2, 3, 4, 5}


def test_node_label_histograms_by_hand():
    e = torch.zeros(2, 0, dtype=torch.long)
    gs = [
        Data(edge_index=e, node_label=torch.tensor([0, 0, 2])),
        Data(edge_index=e, node_label=torch.tensor([1])),
    ]
    h = node_label_histograms(gs)
    assert h.dtype == torch.float32
    assert h.tolist() == [[2.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    assert node_label_histograms(gs, num_labels=5).shape == (2, 5)
    with pytest.raises(ValueError, match="num_labels"):
        node_label_histograms(gs, num_labels=2)


def test_node_label_histograms_on_mutag(mutag):
    graphs, labels = mutag
    h = node_label_histograms(graphs)
    assert h.shape == (188, 7)
    assert h.sum().item() == sum(g.num_nodes for g in graphs)
    r = svm_cv(h, labels, seeds=(0,), Cs=(0.01, 0.1, 1.0, 10.0))
    assert r["accuracy"] > 0.75


# --- ECFP, ROC-AUC probe, label fractions -----------------------------------------------------


def test_ecfp_features_shape_bits_and_determinism():
    pytest.importorskip("rdkit")
    smiles = ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O"]
    fp = ecfp_features(smiles)
    assert fp.shape == (3, 2048) and fp.dtype == np.uint8
    assert set(np.unique(fp).tolist()) <= {0, 1}
    assert (fp.sum(1) > 0).all() and fp[2].sum() > fp[0].sum()  # aspirin has more bits
    assert np.array_equal(fp, ecfp_features(smiles))
    assert ecfp_features(smiles, radius=1, bits=512).shape == (3, 512)
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    ref = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    assert np.array_equal(fp[1], ref.GetFingerprintAsNumPy(Chem.MolFromSmiles(smiles[1])))


def test_ecfp_bad_smiles_names_its_index():
    pytest.importorskip("rdkit")
    with pytest.raises(ValueError, match=r"SMILES 1 \('C1CC'\)"):
        ecfp_features(["CCO", "C1CC", "CC"])


def test_probe_roc_auc_chooses_c_on_validation_only():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 20))
    y = (x[:, 0] + 0.8 * rng.normal(size=400) > 0).astype(int)
    tr, va, te = slice(0, 200), slice(200, 300), slice(300, 400)
    r = probe_roc_auc(x[tr], y[tr], x[va], y[va], x[te], y[te])
    assert r["C"] == max(r["val_roc_auc_per_C"], key=r["val_roc_auc_per_C"].get)
    assert r["val_roc_auc"] == max(r["val_roc_auc_per_C"].values())
    assert r["roc_auc"] > 0.8
    # changing the test labels never changes the chosen C
    flipped = probe_roc_auc(x[tr], y[tr], x[va], y[va], x[te], 1 - y[te])
    assert flipped["C"] == r["C"] and flipped["roc_auc"] == pytest.approx(1 - r["roc_auc"])
    with pytest.raises(ValueError, match="single class"):
        probe_roc_auc(x[tr], y[tr], x[va], np.zeros(100), x[te], y[te])


def test_label_fraction_subset_is_stratified_and_seeded():
    y = torch.tensor([0] * 90 + [1] * 9 + [2] * 1)
    idx = label_fraction_subset(y, 0.1, seed=0)
    assert idx.dtype == torch.long and torch.equal(idx, idx.sort().values)
    counts = torch.bincount(y[idx], minlength=3).tolist()
    assert counts == [9, 1, 1]  # at least one of each class
    assert torch.equal(idx, label_fraction_subset(y, 0.1, seed=0))
    assert not torch.equal(idx, label_fraction_subset(y, 0.1, seed=1))
    assert len(label_fraction_subset(y, 1.0, seed=0)) == 100
    with pytest.raises(ValueError, match="fraction"):
        label_fraction_subset(y, 0.0, seed=0)


def test_svm_cv_chooses_among_feature_matrices_inside_the_training_folds():
    rng = np.random.default_rng(0)
    y = np.r_[[0] * 30, [1] * 30]
    noise = rng.normal(size=(60, 3))
    informative = rng.normal(size=(60, 3)) + 4 * y[:, None]
    for kernel in ("linear", "rbf"):
        r = svm_cv([noise, informative], y, folds=5, seeds=(0,), Cs=(1.0,), kernel=kernel)
        assert r["kernels_chosen"] == {1: 5} and r["accuracy"] == 1.0
