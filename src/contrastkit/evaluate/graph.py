"""Graph-level evaluation: nested-CV SVM accuracy (GraphCL / InfoGraph protocol), the
Weisfeiler–Lehman kernel and node-label-histogram baselines, ECFP fingerprints and the
ROC-AUC linear probe of molecule benchmarks.

Graphs are lists of PyG ``Data`` with ``node_label`` ((n,) int64 discrete labels) and
``edge_index`` (2, E) (treated as undirected). Features are (N, D) arrays or tensors, labels
(N,) integers of any values.

The WL kernel (grakel) and ECFP (rdkit) need the ``graph`` extra; they are imported only when
called.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(60, 4)); y = (x[:, 0] > 0).astype(int)
    >>> r = svm_cv(x, y, folds=3, seeds=(0,), Cs=(0.1, 10), inner_folds=3)
    >>> r["accuracy"] > 0.9
    True
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from sklearn.svm import SVC
from torch import Tensor

from contrastkit._checks import check_choice, require_extra

__all__ = [
    "ecfp_features",
    "label_fraction_subset",
    "node_label_histograms",
    "probe_roc_auc",
    "svm_cv",
    "to_grakel",
    "wl_kernel_matrices",
    "wl_kernel_svm",
]

DEFAULT_CS: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)

# (train indices, row indices) -> kernel block (len(rows), len(train)) in float64
_Block = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _as_numpy(a: Any, name: str) -> np.ndarray:
    if isinstance(a, Tensor):
        a = a.detach().cpu().numpy()
    arr = np.asarray(a)
    if arr.dtype == object:
        raise TypeError(f"{name} must be a numeric array or tensor, got an object array.")
    return arr


def _encode_labels(labels: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = _as_numpy(labels, "labels")
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(
            f"labels must be 1-D with one label per sample ({n}), got shape {y.shape}; "
            f"flatten (N, 1) labels with labels.reshape(-1)."
        )
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"labels hold a single class ({classes.tolist()}); need at least two.")
    return classes, codes


def _kernel_blocks(
    features: Any, kernel: str, standardize: bool, n_labels: int
) -> tuple[list[_Block], int]:
    """The candidate kernels as block functions, and N."""
    if kernel == "precomputed":
        mats = features if isinstance(features, (list, tuple)) else [features]
        if len(mats) == 0:
            raise ValueError("kernel='precomputed' needs at least one (N, N) kernel matrix.")
        if standardize:
            raise ValueError("standardize=True applies to features, not to precomputed kernels.")
        blocks: list[_Block] = []
        for i, m in enumerate(mats):
            k = _as_numpy(m, f"kernel matrix {i}").astype(np.float64)
            if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] != n_labels:
                raise ValueError(
                    f"kernel matrix {i} must be (N, N) with N={n_labels} labels, got shape "
                    f"{k.shape}; with kernel='precomputed' pass K[i, j] = k(graph i, graph j)."
                )
            if not np.isfinite(k).all():
                raise ValueError(f"kernel matrix {i} holds non-finite values.")
            blocks.append(lambda tr, rows, k=k: k[np.ix_(rows, tr)])
        return blocks, n_labels
    if isinstance(features, (list, tuple)) and features and np.ndim(features[0]) == 2:
        # several feature matrices: candidates, the one used chosen in each inner CV
        blocks = [_feature_block(f, kernel, standardize, n_labels, f"features {i}")
                  for i, f in enumerate(features)]  # fmt: skip
        return blocks, n_labels
    return [_feature_block(features, kernel, standardize, n_labels, "features")], n_labels


def _feature_block(
    features: Any, kernel: str, standardize: bool, n_labels: int, name: str
) -> _Block:
    """The linear or RBF kernel of one (N, D) feature matrix as a block function."""
    x = _as_numpy(features, name).astype(np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be (N, D), got shape {x.shape}; flatten them first.")
    if x.shape[0] != n_labels:
        raise ValueError(f"{name} has {x.shape[0]} rows but labels has {n_labels}.")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} hold NaN or inf values; fix the embeddings first.")

    def prep(tr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b = x[rows], x[tr]
        if standardize:
            mu, sd = b.mean(0), b.std(0)
            sd[sd == 0] = 1.0
            a, b = (a - mu) / sd, (b - mu) / sd
        return a, b

    def linear(tr: np.ndarray, rows: np.ndarray) -> np.ndarray:
        a, b = prep(tr, rows)
        return a @ b.T

    if kernel == "linear":
        if standardize:
            return linear
        gram = x @ x.T
        return lambda tr, rows: gram[np.ix_(rows, tr)]

    def rbf(tr: np.ndarray, rows: np.ndarray) -> np.ndarray:
        a, b = prep(tr, rows)
        var = b.var()
        gamma = 1.0 / (b.shape[1] * var) if var > 0 else 1.0  # sklearn's gamma="scale"
        d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
        return np.exp(-gamma * np.maximum(d2, 0.0))

    return rbf


def svm_cv(
    features: Tensor | np.ndarray | Sequence[np.ndarray],
    labels: Tensor | np.ndarray | Sequence[int],
    *,
    folds: int = 10,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    Cs: Sequence[float] = DEFAULT_CS,
    kernel: str = "linear",
    inner_folds: int = 5,
    standardize: bool = False,
) -> dict[str, Any]:
    """Nested cross-validated SVM accuracy, the graph-classification protocol of
    InfoGraph / GraphCL.

    For each seed, ``StratifiedKFold(folds, shuffle=True, random_state=seed)``; in each outer
    fold, C (and, for a list of kernel matrices, the matrix) is chosen by a stratified
    ``inner_folds``-fold CV on the outer training fold only (mean accuracy; ties go to the
    first kernel, then the smallest C), then ``SVC`` is refit on the whole training fold and
    scored on the test fold.

    Every kernel is evaluated as a precomputed Gram block (``SVC(kernel="precomputed")``), which
    is the same SVM as ``SVC(kernel="linear")`` / ``SVC(kernel="rbf", gamma="scale")`` fitted
    on the same rows, but computed once.

    Args:
        features: (N, D) features for ``kernel`` "linear" or "rbf", or a list of feature
            matrices (candidates: which one is used is chosen with C in each inner CV, e.g.
            encoders pre-trained with different views); for ``"precomputed"`` an (N, N)
            kernel matrix or a list of them (the index is chosen in the inner CV).
        labels: (N,) class labels (any integers or strings).
        folds: outer folds; every class needs at least ``folds`` samples.
        seeds: one outer split per seed; results are averaged over seeds.
        Cs: the grid of SVM C values.
        kernel: ``"linear"`` (default), ``"rbf"`` (``gamma="scale"`` on the training rows; this
            is what ``SVC()`` in InfoGraph / GraphCL's ``svc_classify`` uses) or
            ``"precomputed"``.
        inner_folds: inner CV folds (lowered to the smallest class count of a training fold).
        standardize: z-score features with the statistics of each fit's training rows.

    Returns:
        ``{"accuracy": mean over seeds of the mean fold accuracy, "std": std over seeds of
        those means, "fold_std": mean over seeds of the std over folds, "per_seed": [...],
        "fold_accuracies": [[...] per seed], "Cs_chosen": {C: count}, "kernels_chosen":
        {index: count} (lists of candidates only), "folds", "seeds", "kernel", "time_s"}``.

    Example:
        >>> import numpy as np
        >>> x = np.r_[np.zeros((20, 2)), np.ones((20, 2))]; y = np.r_[[0] * 20, [1] * 20]
        >>> svm_cv(x, y, folds=4, seeds=(0,), Cs=(1.0,), inner_folds=2)["accuracy"]
        1.0
    """
    from sklearn.model_selection import StratifiedKFold

    t0 = time.perf_counter()
    check_choice(kernel, "kernel", ("linear", "rbf", "precomputed"))
    n_guess = len(labels)
    classes, y = _encode_labels(labels, n_guess)
    blocks, n = _kernel_blocks(features, kernel, standardize, n_guess)
    Cs = [float(c) for c in Cs]
    if not Cs or any(not np.isfinite(c) or c <= 0 for c in Cs):
        raise ValueError(f"Cs must be a non-empty list of finite values > 0, got {Cs}.")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one seed, e.g. seeds=(0, 1, 2, 3, 4).")
    counts = np.bincount(y)
    if folds < 2:
        raise ValueError(f"folds must be ≥ 2, got {folds}.")
    if counts.min() < folds:
        small = classes[int(counts.argmin())]
        raise ValueError(
            f"class {small!r} has only {int(counts.min())} samples, fewer than folds={folds}; "
            f"lower folds to ≤ {int(counts.min())} or drop the class."
        )
    if inner_folds < 2:
        raise ValueError(f"inner_folds must be ≥ 2, got {inner_folds}.")

    per_seed: list[float] = []
    fold_accs: list[list[float]] = []
    fold_stds: list[float] = []
    cs_chosen: Counter = Counter()
    k_chosen: Counter = Counter()
    for seed in seeds:
        outer = StratifiedKFold(folds, shuffle=True, random_state=seed)
        accs = []
        for tr, te in outer.split(np.zeros(n), y):
            n_inner = min(inner_folds, int(np.bincount(y[tr]).min()))
            if n_inner < 2:
                raise ValueError(
                    "a training fold holds a class with a single sample; the inner CV cannot "
                    "choose C. Lower folds or add samples of the rare class."
                )
            inner = StratifiedKFold(n_inner, shuffle=True, random_state=seed)
            splits = [(tr[a], tr[b]) for a, b in inner.split(np.zeros(len(tr)), y[tr])]
            scores = np.zeros((len(blocks), len(Cs)))
            for ki, block in enumerate(blocks):
                for itr, iva in splits:
                    k_tr, k_va = block(itr, itr), block(itr, iva)
                    for ci, c in enumerate(Cs):
                        clf = SVC(C=c, kernel="precomputed").fit(k_tr, y[itr])
                        scores[ki, ci] += float((clf.predict(k_va) == y[iva]).mean())
            ki, ci = np.unravel_index(int(np.argmax(scores)), scores.shape)
            cs_chosen[Cs[ci]] += 1
            k_chosen[int(ki)] += 1
            clf = SVC(C=Cs[ci], kernel="precomputed").fit(blocks[ki](tr, tr), y[tr])
            accs.append(float((clf.predict(blocks[ki](tr, te)) == y[te]).mean()))
        fold_accs.append(accs)
        per_seed.append(float(np.mean(accs)))
        fold_stds.append(float(np.std(accs)))
    result: dict[str, Any] = {
        "accuracy": float(np.mean(per_seed)),
        "std": float(np.std(per_seed)),
        "fold_std": float(np.mean(fold_stds)),
        "per_seed": per_seed,
        "fold_accuracies": fold_accs,
        "Cs_chosen": dict(sorted(cs_chosen.items())),
        "folds": folds,
        "seeds": seeds,
        "kernel": kernel,
        "time_s": time.perf_counter() - t0,
    }
    if len(blocks) > 1:
        result["kernels_chosen"] = dict(sorted(k_chosen.items()))
    return result


def _node_labels(g: Any, i: int) -> np.ndarray:
    lab = getattr(g, "node_label", None)
    if lab is None:
        raise ValueError(
            f"graph {i} has no node_label; set data.node_label to its (n,) int64 discrete node "
            f"labels (for one-hot features: data.node_label = data.x.argmax(1))."
        )
    lab = _as_numpy(lab, f"graphs[{i}].node_label")
    if lab.ndim != 1 or np.issubdtype(lab.dtype, np.floating):
        raise ValueError(
            f"graph {i}: node_label must be (n,) integers, got shape {lab.shape} and dtype "
            f"{lab.dtype}; use node_label.long().flatten()."
        )
    return lab


def to_grakel(graphs: Sequence[Any]) -> list[Any]:
    """Convert PyG ``Data`` (``edge_index``, ``node_label``) to grakel ``Graph`` objects.

    Edges are made undirected (both directions); isolated nodes are kept; self-loops dropped.

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> g = Data(edge_index=torch.tensor([[0], [1]]), node_label=torch.tensor([3, 4, 5]))
        >>> sorted(to_grakel([g])[0].get_labels(purpose="any").items())
        [(0, 3), (1, 4), (2, 5)]
    """
    grakel = require_extra("grakel", "graph", "the Weisfeiler–Lehman kernel")
    out = []
    for i, g in enumerate(graphs):
        lab = _node_labels(g, i)
        n = len(lab)
        adj: dict[int, set[int]] = {v: set() for v in range(n)}
        ei = _as_numpy(g.edge_index, f"graphs[{i}].edge_index")
        if ei.size and (ei.min() < 0 or ei.max() >= n):
            raise ValueError(
                f"graph {i}: edge_index refers to node {int(ei.max())} but node_label has "
                f"only {n} nodes; give one label per node."
            )
        for u, v in ei.T.tolist():
            if u != v:
                adj[u].add(v)
                adj[v].add(u)
        out.append(
            grakel.Graph(
                {v: sorted(nb) for v, nb in adj.items()},
                node_labels={v: int(lab[v]) for v in range(n)},
                graph_format="dictionary",
            )
        )
    return out


def wl_kernel_matrices(
    graphs: Sequence[Any], iterations: Sequence[int] = (1, 2, 3, 4, 5), normalize: bool = True
) -> list[np.ndarray]:
    """One (N, N) Weisfeiler–Lehman subtree kernel matrix per number of iterations ``h``.

    grakel ``WeisfeilerLehman(n_iter=h, base_graph_kernel=VertexHistogram,
    normalize=normalize)`` on the node labels (no class labels are used, so computing it on all
    graphs at once does not leak).

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> g = Data(edge_index=torch.tensor([[0, 1], [1, 0]]), node_label=torch.tensor([0, 1]))
        >>> [k.shape for k in wl_kernel_matrices([g, g], iterations=(1, 2))]
        [(2, 2), (2, 2)]
    """
    require_extra("grakel", "graph", "the Weisfeiler–Lehman kernel")
    from grakel.kernels import VertexHistogram, WeisfeilerLehman

    its = [int(h) for h in iterations]
    if not its or min(its) < 1:
        raise ValueError(f"iterations must be integers ≥ 1, got {list(iterations)}.")
    gk = to_grakel(graphs)
    mats = []
    for h in its:
        wl = WeisfeilerLehman(n_iter=h, base_graph_kernel=VertexHistogram, normalize=normalize)
        mats.append(np.asarray(wl.fit_transform(gk), dtype=np.float64))
    return mats


def wl_kernel_svm(
    graphs: Sequence[Any],
    labels: Tensor | np.ndarray | Sequence[int],
    *,
    iterations: Sequence[int] = (1, 2, 3, 4, 5),
    normalize: bool = True,
    **svm_kwargs: Any,
) -> dict[str, Any]:
    """WL subtree kernel + SVM with nested CV; ``h`` is chosen with C inside each training fold.

    Args:
        graphs: PyG ``Data`` with ``node_label`` and ``edge_index``.
        labels: (N,) graph class labels.
        iterations: candidate WL iterations ``h``.
        normalize: cosine-normalise each kernel (grakel's ``normalize``).
        **svm_kwargs: passed to :func:`svm_cv` (folds, seeds, Cs, inner_folds).

    Returns:
        :func:`svm_cv`'s dict plus ``"iterations_chosen"`` ({h: count}) and ``"kernel_time_s"``.

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> path = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> gs = [Data(edge_index=path, node_label=torch.tensor([c, c, 1 - c])) for c in (0, 1)]
        >>> r = wl_kernel_svm(gs * 6, [0, 1] * 6, folds=3, seeds=(0,), inner_folds=2)
        >>> r["accuracy"]
        1.0
    """
    if "kernel" in svm_kwargs:
        raise ValueError("wl_kernel_svm always uses precomputed kernels; drop the kernel option.")
    t0 = time.perf_counter()
    its = [int(h) for h in iterations]
    mats = wl_kernel_matrices(graphs, its, normalize)
    kernel_time = time.perf_counter() - t0
    result = svm_cv(mats, labels, kernel="precomputed", **svm_kwargs)
    chosen = result.pop("kernels_chosen", {0: sum(result["Cs_chosen"].values())})
    result["iterations_chosen"] = {its[k]: c for k, c in chosen.items()}
    result["kernel_time_s"] = kernel_time
    result["time_s"] = time.perf_counter() - t0
    return result


def node_label_histograms(graphs: Sequence[Any], num_labels: int | None = None) -> Tensor:
    """Per-graph counts of each node label: (N, K) float32 (K = ``num_labels`` or max + 1).

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> no_edges = torch.zeros(2, 0, dtype=torch.long)
        >>> g = Data(edge_index=no_edges, node_label=torch.tensor([0, 2, 2]))
        >>> node_label_histograms([g]).tolist()
        [[1.0, 0.0, 2.0]]
    """
    labs = [_node_labels(g, i) for i, g in enumerate(graphs)]
    if not labs:
        raise ValueError("graphs is empty; pass at least one graph.")
    hi = max((int(lab.max()) for lab in labs if lab.size), default=-1)
    lo = min((int(lab.min()) for lab in labs if lab.size), default=0)
    if lo < 0:
        raise ValueError(f"node labels must be ≥ 0, found {lo}; re-index them to 0..K-1.")
    k = hi + 1 if num_labels is None else int(num_labels)
    if hi >= k:
        raise ValueError(
            f"a node label {hi} is ≥ num_labels={k}; raise num_labels to ≥ {hi + 1} or leave it "
            f"None."
        )
    out = torch.zeros(len(labs), max(k, 1), dtype=torch.float32)
    for i, lab in enumerate(labs):
        out[i] = torch.bincount(torch.as_tensor(lab, dtype=torch.long), minlength=k)[:k].float()
    return out[:, :k]


def ecfp_features(smiles: Sequence[str], radius: int = 2, bits: int = 2048) -> np.ndarray:
    """Morgan / ECFP fingerprints (radius 2 = ECFP4) as an (N, bits) uint8 0/1 array (rdkit).

    Example:
        >>> fp = ecfp_features(["CCO", "c1ccccc1"])
        >>> fp.shape, fp.dtype, int(fp[0].sum()) > 0
        ((2, 2048), dtype('uint8'), True)
    """
    require_extra("rdkit", "graph", "ECFP fingerprints")
    from rdkit import Chem, rdBase
    from rdkit.Chem import rdFingerprintGenerator

    if isinstance(smiles, str):
        raise TypeError("smiles must be a sequence of SMILES strings; wrap one in a list.")
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=int(radius), fpSize=int(bits))
    out = np.zeros((len(smiles), int(bits)), dtype=np.uint8)
    for i, s in enumerate(smiles):
        with rdBase.BlockLogs():
            mol = Chem.MolFromSmiles(s) if isinstance(s, str) else None
        if mol is None:
            raise ValueError(
                f"SMILES {i} ({s!r}) cannot be parsed by rdkit; fix or drop that molecule."
            )
        out[i] = gen.GetFingerprintAsNumPy(mol)
    return out


def _binary(y: Any, name: str) -> np.ndarray:
    arr = _as_numpy(y, name).reshape(-1)
    vals = np.unique(arr)
    if not np.isin(vals, [0, 1]).all():
        raise ValueError(f"{name} must be binary 0/1, got values {vals[:5].tolist()}.")
    if len(vals) < 2:
        raise ValueError(
            f"{name} holds a single class; ROC-AUC needs both 0 and 1 (use a scaffold split "
            f"that keeps positives in every split)."
        )
    return arr.astype(np.int64)


def probe_roc_auc(
    train_x: Tensor | np.ndarray,
    train_y: Tensor | np.ndarray,
    val_x: Tensor | np.ndarray,
    val_y: Tensor | np.ndarray,
    test_x: Tensor | np.ndarray,
    test_y: Tensor | np.ndarray,
    *,
    Cs: Sequence[float] = DEFAULT_CS,
    standardize: bool = True,
    max_iter: int = 2000,
) -> dict[str, Any]:
    """Linear probe of binary molecule benchmarks: L2 logistic regression (lbfgs), one per C,
    fitted on train; C chosen by validation ROC-AUC (ties: smallest C); that model is scored
    on test. Standardisation uses the training statistics only.

    Shapes: ``*_x`` (N_split, D), ``*_y`` (N_split,) 0/1.

    Returns:
        ``{"roc_auc": test AUC, "val_roc_auc": best validation AUC, "C": chosen C,
        "val_roc_auc_per_C": {C: AUC}, "not_converged": [C, ...]}``.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(300, 5)); y = (x[:, 0] + 0.5 * rng.normal(size=300) > 0)
        >>> r = probe_roc_auc(x[:200], y[:200], x[200:250], y[200:250], x[250:], y[250:])
        >>> r["roc_auc"] > 0.8
        True
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    xs = [_as_numpy(a, n).astype(np.float64) for a, n in ((train_x, "train_x"), (val_x, "val_x"))]
    xs.append(_as_numpy(test_x, "test_x").astype(np.float64))
    ys = [_binary(train_y, "train_y"), _binary(val_y, "val_y"), _binary(test_y, "test_y")]
    for name, x, y in zip(("train", "val", "test"), xs, ys, strict=True):
        if x.ndim != 2 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"{name}_x must be (N, D) with one row per {name}_y label, got {x.shape} and "
                f"{y.shape}."
            )
        if x.shape[1] != xs[0].shape[1]:
            raise ValueError(f"{name}_x has {x.shape[1]} columns but train_x {xs[0].shape[1]}.")
    if standardize:
        mu, sd = xs[0].mean(0), xs[0].std(0)
        sd[sd == 0] = 1.0
        xs = [(x - mu) / sd for x in xs]
    best: tuple[float, float, Any] | None = None
    per_c: dict[float, float] = {}
    not_converged: list[float] = []
    for c in Cs:
        c = float(c)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            clf = LogisticRegression(C=c, solver="lbfgs", max_iter=max_iter).fit(xs[0], ys[0])
        if any(issubclass(w.category, ConvergenceWarning) for w in caught):
            not_converged.append(c)
        auc = float(roc_auc_score(ys[1], clf.decision_function(xs[1])))
        per_c[c] = auc
        if best is None or auc > best[0]:
            best = (auc, c, clf)
    assert best is not None, "Cs is empty"
    val_auc, c, clf = best
    test_auc = float(roc_auc_score(ys[2], clf.decision_function(xs[2])))
    return {
        "roc_auc": test_auc,
        "val_roc_auc": val_auc,
        "C": c,
        "val_roc_auc_per_C": per_c,
        "not_converged": not_converged,
    }


def label_fraction_subset(
    labels: Tensor | np.ndarray | Sequence[int], fraction: float, seed: int = 0
) -> Tensor:
    """Sorted indices (LongTensor) of a stratified, seeded ``fraction`` of the samples: per
    class ``max(1, round(fraction · n_class))`` drawn without replacement.

    Example:
        >>> label_fraction_subset([0] * 10 + [1] * 10, 0.2, seed=0).shape
        torch.Size([4])
    """
    if not 0.0 < float(fraction) <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}.")
    y = _as_numpy(labels, "labels").reshape(-1)
    if y.size == 0:
        raise ValueError("labels is empty.")
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = max(1, int(round(float(fraction) * len(idx))))
        picked.append(rng.choice(idx, size=k, replace=False))
    return torch.as_tensor(np.sort(np.concatenate(picked)), dtype=torch.long)
