"""Graph data sets on PyG ``Data`` / ``Batch``: TU graph classification, molecules from SMILES,
and node-level graphs from edge lists, loaded offline.

Graph-level sets (:class:`GraphSet` in :class:`GraphSplits`):

- ``mutag`` (:func:`load_mutag`): the 188 MUTAG graphs (125 mutagenic, 63 not; 7 atom types)
  read from the TU files shipped inside ``grakel``. TU data has no standard split:
  ``protocol="graph_classification"`` (everything in ``train``, evaluated by cross-validation).
- any TU-format folder (:func:`load_tu_folder`), read from its raw text files (no pickled
  "processed" files are read or written).
- ``b3db`` (:func:`load_b3db`): the ~7,800 molecules of the B3DB blood–brain-barrier
  classification set (``qc-b3db`` package), BBB- = 0, BBB+ = 1, scaffold split.
- any SMILES table (:func:`load_smiles_csv`): ``.csv`` / ``.tsv``, converted by
  ``torch_geometric.utils.from_rdmol`` (9 categorical atom features, 3 bond features), split
  by Bemis–Murcko scaffold (:func:`scaffold_split`) or at random (:func:`random_split`);
  ``protocol="molecule"``. Conversions are cached (safetensors + JSON, see
  :func:`graph_cache_dir`).

Node-level sets (:class:`NodeGraph`): ``karate`` (:func:`load_karate_club`) and any edge list
with optional feature and label files (:func:`load_edge_list`).

Every graph's ``node_label`` holds discrete node labels (TU node labels, atomic numbers) for
graph kernels and label histograms. Bad rows (unparseable SMILES, graphs without edges, bad
lines) are skipped and reported in one warning by count and example; ``on_error="raise"``
stops at the first.

Importing this module registers the ``"graph"`` field kind (:class:`GraphKind`), so a PyG
``Batch`` in a batch dict is moved, sliced and concatenated by the trainer.

Example:
    >>> from contrastkit.data.graphs import load_mutag
    >>> data = load_mutag()
    >>> len(data.train), data.train.num_node_labels, data.protocol
    (188, 7, 'graph_classification')
    >>> batch = data.train.rows(torch.tensor([0, 5]))["graphs"]
    >>> batch.num_graphs, batch.x.shape[1]
    (2, 7)
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from contrastkit._checks import require_extra
from contrastkit.data.fields import FIELD_KINDS, FieldKind, register_kind

_pyg = require_extra("torch_geometric", "graph", "graph data sets")
Batch = _pyg.data.Batch
Data = _pyg.data.Data

__all__ = [
    "GRAPH_DATA",
    "GraphKind",
    "GraphSet",
    "GraphSplits",
    "NodeGraph",
    "graph_cache_dir",
    "load_b3db",
    "load_edge_list",
    "load_graph_data",
    "load_karate_club",
    "load_mutag",
    "load_smiles_csv",
    "load_tu_folder",
    "random_split",
    "scaffold_split",
]

#: the built-in graph data sets of :func:`load_graph_data`
GRAPH_DATA = ("mutag", "b3db", "karate")

_INSTALL = 'pip install "contrastkit[graph]"'
#: bump when the cached molecule format changes
_CACHE_FORMAT = 1


# ------------------------------------------------------------------------------- field kind
class GraphKind(FieldKind):
    """Rows are graphs of a PyG ``Batch`` (``name="graph"``).

    Example:
        >>> from contrastkit.data.fields import kind_of
        >>> g = Data(x=torch.zeros(3, 2), edge_index=torch.tensor([[0, 1], [1, 0]]))
        >>> b = Batch.from_data_list([g, g, g])
        >>> kind = kind_of(b)
        >>> kind.name, kind.size(kind.select(b, torch.tensor([2, 0])))
        ('graph', 2)
    """

    name = "graph"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, Batch)

    def collate(self, rows: Sequence[Any]) -> Any:
        """Single ``Data`` graphs → one ``Batch``."""
        return Batch.from_data_list(list(rows))

    def to(self, value: Any, device: torch.device) -> Any:
        return value.to(device)

    def select(self, value: Any, index: Tensor) -> Any:
        """The graphs ``index`` (1-D LongTensor) of a ``Batch``, in that order, as a ``Batch``."""
        return Batch.from_data_list(value.index_select(torch.as_tensor(index).cpu().long()))

    def size(self, value: Any) -> int:
        return int(value.num_graphs)

    def cat(self, values: Sequence[Any]) -> Any:
        """``Batch`` values → one ``Batch`` of all their graphs, in order."""
        return Batch.from_data_list([g for v in values for g in v.to_data_list()])


if "graph" not in FIELD_KINDS:  # a re-import (importlib.reload) keeps the first registration
    register_kind(GraphKind())


# ---------------------------------------------------------------------------- graph sets
def _as_index(index: Tensor | np.ndarray | Sequence[int]) -> Tensor:
    return torch.as_tensor(np.asarray(index), dtype=torch.long).reshape(-1)


@dataclass
class GraphSet:
    """Graphs of one split (graph-level data: one row per graph).

    Attributes:
        graphs: N PyG ``Data``. Each has ``x`` — (n, F) float32 features (TU data: one-hot node
            labels, then node attributes) or (n, 9) int64 categorical atom codes (molecules,
            see :attr:`feature_cardinalities`) —, ``edge_index`` (2, E) int64 with both
            directions of every undirected edge, optional ``edge_attr`` ((E, 3) int64 bond
            codes for molecules; float32 for TU data), and ``node_label`` (n,) int64 discrete
            node labels (TU node labels re-indexed to 0..K-1; atomic numbers for molecules).
        labels: (N,) int64 class ids into ``classes``, or None (unlabelled).
        classes: class names, indexed by label.
        name: data set and split, e.g. ``"b3db/train"``.
        smiles: the SMILES string of each graph (molecules), else None.

    Example:
        >>> g = Data(x=torch.ones(2, 1), edge_index=torch.tensor([[0, 1], [1, 0]]),
        ...          node_label=torch.zeros(2, dtype=torch.long))
        >>> s = GraphSet([g, g, g], torch.tensor([0, 1, 1]), ["a", "b"], name="toy")
        >>> len(s), s.num_features, s.categorical, s.num_node_labels
        (3, 1, False, 1)
        >>> s.rows(torch.tensor([2, 0]))["graphs"].num_graphs
        2
    """

    graphs: list[Any]
    labels: Tensor | None
    classes: list[str] = field(default_factory=list)
    name: str = ""
    smiles: list[str] | None = None

    #: the kind of each field of :meth:`rows` (see :mod:`contrastkit.data.fields`)
    fields: ClassVar[dict[str, str]] = {"graphs": "graph", "labels": "ids", "indices": "ids"}

    def __post_init__(self) -> None:
        self.graphs = list(self.graphs)
        bad = next((i for i, g in enumerate(self.graphs) if not isinstance(g, Data)), None)
        if bad is not None:
            raise TypeError(
                f"GraphSet.graphs must be torch_geometric Data objects; graphs[{bad}] is a "
                f"{type(self.graphs[bad]).__name__}. Build each graph with "
                f"torch_geometric.data.Data(x=..., edge_index=...)."
            )
        if self.labels is not None:
            self.labels = torch.as_tensor(self.labels).long()
            if self.labels.shape != (len(self.graphs),):
                raise ValueError(
                    f"GraphSet.labels must have shape ({len(self.graphs)},) (one per graph), "
                    f"got {tuple(self.labels.shape)}; give one int label per graph or None."
                )
        if self.smiles is not None and len(self.smiles) != len(self.graphs):
            raise ValueError(
                f"GraphSet.smiles has {len(self.smiles)} entries for {len(self.graphs)} "
                f"graphs; give one SMILES per graph or None."
            )

    def __len__(self) -> int:
        return len(self.graphs)

    def subset(self, index: Tensor | np.ndarray | Sequence[int], name: str | None = None):
        """The graphs ``index`` (in that order) as a new :class:`GraphSet` (graphs shared)."""
        idx = _as_index(index)
        rows = idx.tolist()
        return GraphSet(
            graphs=[self.graphs[i] for i in rows],
            labels=None if self.labels is None else self.labels[idx],
            classes=list(self.classes),
            name=name or self.name,
            smiles=None if self.smiles is None else [self.smiles[i] for i in rows],
        )

    def rows(self, index: Tensor) -> dict[str, Any]:
        """The trainer's batch for rows ``index`` (LongTensor (B,)): ``{"graphs": Batch of B
        graphs, "indices": index}`` and ``"labels"`` (B,) when labelled."""
        batch: dict[str, Any] = {
            "graphs": Batch.from_data_list([self.graphs[i] for i in index.tolist()]),
            "indices": index,
        }
        if self.labels is not None:
            batch["labels"] = self.labels[index]
        return batch

    def encoder_inputs(self) -> Any:
        """What an encoder embeds of this set: one ``Batch`` of all N graphs."""
        return Batch.from_data_list(self.graphs)

    @property
    def num_features(self) -> int:
        """F, the width of every graph's ``x`` (0 for an empty set)."""
        return int(self.graphs[0].x.shape[1]) if self.graphs else 0

    @property
    def categorical(self) -> bool:
        """Whether ``x`` holds int64 category codes (molecules) rather than float features."""
        return bool(self.graphs) and self.graphs[0].x.dtype == torch.long

    @property
    def num_node_labels(self) -> int:
        """max ``node_label`` + 1 over the set (0 when the graphs have no node labels)."""
        top = -1
        for g in self.graphs:
            nl = getattr(g, "node_label", None)
            if nl is not None and nl.numel():
                top = max(top, int(nl.max()))
        return top + 1

    @property
    def feature_cardinalities(self) -> list[int] | None:
        """For int64 ``x``: the number of categories of each column (molecules: PyG's
        ``torch_geometric.utils.smiles.x_map``, 9 columns; other int64 data: max + 1 over the
        set); None for float features."""
        if not self.categorical:
            return None
        if self.smiles is not None:
            from torch_geometric.utils.smiles import x_map

            return [len(v) for v in x_map.values()]
        top = torch.stack([g.x.max(0).values for g in self.graphs if g.x.numel()]).max(0)
        return [int(v) + 1 for v in top.values]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass
class GraphSplits:
    """The splits of a graph-level data set.

    Attributes:
        train, test, val: the splits (``test`` None for TU data: evaluated by cross-validation
            over ``train``; ``val`` None when there is none).
        name: the data set's name.
        protocol: ``"graph_classification"`` (TU data: all graphs in ``train``) or
            ``"molecule"`` (SMILES data: train/val/test from :attr:`split`).
        note: how the splits were made and what was skipped, in words for the user.
        split: ``"scaffold"``, ``"random"``, or ``""`` for cross-validation data.
    """

    train: GraphSet
    test: GraphSet | None
    val: GraphSet | None = None
    name: str = ""
    protocol: str = "graph_classification"
    note: str = ""
    split: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.train.classes)


# ------------------------------------------------------------------------- bad rows
class _Skips:
    """Collects bad rows by reason and reports them in one message (or raises at the first)."""

    def __init__(self, source: str, on_error: str, what: str = "rows") -> None:
        if on_error not in ("warn", "raise"):
            raise ValueError(f"on_error must be 'warn' or 'raise', got {on_error!r}.")
        self.source, self.on_error, self.what = source, on_error, what
        self.bad: dict[str, list[str]] = {}

    def skip(self, reason: str, example: str, fix: str = "fix or remove it") -> None:
        if self.on_error == "raise":
            raise ValueError(
                f"{self.source}: {reason} ({example}); {fix}, or load with on_error='warn' to "
                f"skip such {self.what}."
            )
        self.bad.setdefault(reason, []).append(example)

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.bad.values())

    def message(self, seen: int, verb: str = "skipped") -> str | None:
        if not self.bad:
            return None
        parts = [f"{len(v)} {reason} (e.g. {'; '.join(v[:3])})" for reason, v in self.bad.items()]
        return f"{verb} {self.count} of {seen} {self.what} of {self.source}: {', '.join(parts)}."


def _warn(message: str | None) -> None:
    if message:
        warnings.warn(message, stacklevel=3)


# ------------------------------------------------------------------------------ TU format
def _tu_prefix(path: Path) -> tuple[Path, str]:
    """The folder holding ``<PREFIX>_A.txt`` (``path`` or ``path/raw``) and the prefix."""
    if path.is_file() and path.name.endswith("_A.txt"):
        return path.parent, path.name[: -len("_A.txt")]
    for folder in (path, path / "raw"):
        found = sorted(folder.glob("*_A.txt")) if folder.is_dir() else []
        if len(found) > 1:
            raise ValueError(
                f"{folder} holds several TU adjacency files ({', '.join(p.name for p in found)}); "
                f"point to one data set's folder (or to its <NAME>_A.txt file)."
            )
        if found:
            return folder, found[0].name[: -len("_A.txt")]
    raise FileNotFoundError(
        f"no <NAME>_A.txt in {path} (nor in {path / 'raw'}); a TU folder needs <NAME>_A.txt "
        f"(edges 'i, j'), <NAME>_graph_indicator.txt and <NAME>_graph_labels.txt, optionally "
        f"_node_labels, _node_attributes, _edge_labels, _edge_attributes."
    )


def _read_table_file(path: Path, dtype: type, what: str, cols: int | None = None) -> np.ndarray:
    """A TU text file (one row per line, values separated by commas and/or spaces) → (rows,
    cols) array; a one-line error naming the file, the line and ``what`` it must hold."""
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    if not lines:
        raise ValueError(f"{path} is empty; it must hold {what}.")
    tokens = " ".join(lines).replace(",", " ").split()
    width = len(lines[0].replace(",", " ").split())
    try:
        arr = np.array(tokens, dtype=np.float64)
        ok = len(tokens) == width * len(lines) and (cols is None or width == cols)
        if ok and dtype is np.int64 and not np.all(arr == np.round(arr)):
            raise ValueError("not integers")
    except ValueError:
        ok = False
    if not ok:
        for i, ln in enumerate(lines, 1):
            parts = ln.replace(",", " ").split()
            try:
                vals = np.array(parts, dtype=np.float64)
                good = len(parts) == (cols or width) and (
                    dtype is not np.int64 or np.all(vals == np.round(vals))
                )
            except ValueError:
                good = False
            if not good:
                raise ValueError(
                    f"{path}: line {i} ({ln.strip()[:60]!r}) is malformed; the file must hold "
                    f"{what}."
                )
        raise ValueError(f"{path} is malformed; it must hold {what}.")
    return arr.reshape(len(lines), width).astype(dtype)


def _one_hot(codes: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(codes), k), dtype=np.float32)
    out[np.arange(len(codes)), codes] = 1.0
    return out


def _undirected(
    src: np.ndarray, dst: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Edges (src, dst) on n nodes → unique directed edges with every reverse present, no
    self loops: (src, dst, original edge of each, #self loops, #duplicates) — an edge's
    missing reverse takes its attributes."""
    keep = src != dst
    loops = int((~keep).sum())
    orig = np.flatnonzero(keep)
    s, d = src[keep], dst[keep]
    keys = s * n + d
    uniq, first = np.unique(keys, return_index=True)
    dups = len(keys) - len(uniq)
    s, d, orig = s[first], d[first], orig[first]
    rev = d * n + s
    missing = ~np.isin(rev, uniq)
    s2 = np.concatenate([s, d[missing]])
    d2 = np.concatenate([d, s[missing]])
    o2 = np.concatenate([orig, orig[missing]])
    order = np.argsort(s2 * n + d2, kind="stable")
    return s2[order], d2[order], o2[order], loops, dups


def load_tu_folder(
    path: str | os.PathLike, name: str | None = None, *, on_error: str = "warn"
) -> GraphSplits:
    """A graph classification set in the TU format (the TU Dortmund benchmark collection).

    Files (``<NAME>`` found from the ``<NAME>_A.txt`` file in ``path`` or ``path/raw``):
    ``_A.txt`` (one edge ``i, j`` per line, 1-based node numbers over the whole set),
    ``_graph_indicator.txt`` (the graph number of each node), ``_graph_labels.txt`` (one
    class per graph) and optionally ``_node_labels.txt``, ``_node_attributes.txt``,
    ``_edge_labels.txt``, ``_edge_attributes.txt``. Only these raw text files are read.

    Each graph's ``x`` (n, F) float32 is the one-hot node label (K columns) followed by the
    node attributes; a constant 1 column when the set has neither. ``node_label`` is the node
    label re-indexed to 0..K-1 over the whole set (rows of a multi-column label file are
    labelled by their distinct tuple). ``edge_attr`` (E, ·) float32 is the one-hot edge label
    followed by the edge attributes (when present) and ``edge_label`` (E,) int64 the edge
    label. Edges are made undirected (a missing reverse edge is added with the same
    attributes), self loops and repeated edges are dropped. Graph labels are re-indexed to
    0..C-1; ``classes`` holds the original values as strings (numeric order).

    Graphs with no nodes or no edges are skipped and reported in one warning (graph numbers as
    in the files); ``on_error="raise"`` raises instead. Everything lands in ``train``; test is
    None (``protocol="graph_classification"``: cross-validation).

    Args:
        path: the folder (or a folder with ``raw/`` inside, or the ``_A.txt`` file).
        name: the data set's name (default: the file prefix).
        on_error: ``"warn"`` or ``"raise"``.

    Example:
        >>> data = load_tu_folder("TU/PROTEINS")  # doctest: +SKIP
    """
    if on_error not in ("warn", "raise"):
        raise ValueError(f"on_error must be 'warn' or 'raise', got {on_error!r}.")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"TU folder {path} does not exist; give a folder with <NAME>_A.txt."
        )
    folder, prefix = _tu_prefix(path)
    name = name or prefix

    def file(kind: str, required: bool = False) -> Path | None:
        p = folder / f"{prefix}_{kind}.txt"
        if p.is_file():
            return p
        if required:
            raise FileNotFoundError(
                f"{p} is missing; a TU folder needs {prefix}_A.txt, {prefix}_graph_indicator.txt "
                f"and {prefix}_graph_labels.txt."
            )
        return None

    a_path = file("A", True)
    gi_path = file("graph_indicator", True)
    gl_path = file("graph_labels", True)
    edges = _read_table_file(a_path, np.int64, "one edge per line: two node numbers 'i, j'", 2)
    indicator = _read_table_file(gi_path, np.int64, "one graph number per line", 1)[:, 0]
    graph_labels = _read_table_file(gl_path, np.int64, "one integer class per line", 1)[:, 0]
    n_nodes, n_graphs = len(indicator), len(graph_labels)
    if indicator.min() < 1 or indicator.max() > n_graphs:
        raise ValueError(
            f"{gi_path} names graph numbers {indicator.min()}..{indicator.max()} but "
            f"{gl_path.name} labels {n_graphs} graphs; graph numbers must run 1..{n_graphs}."
        )
    if edges.min() < 1 or edges.max() > n_nodes:
        raise ValueError(
            f"{a_path} names node numbers {edges.min()}..{edges.max()} but {gi_path.name} has "
            f"{n_nodes} nodes; node numbers must run 1..{n_nodes}."
        )

    def per_node(kind: str, what: str, dtype: type, rows: int, width: int | None = None):
        p = file(kind)
        if p is None:
            return None
        arr = _read_table_file(p, dtype, what, width)
        if len(arr) != rows:
            raise ValueError(
                f"{p} has {len(arr)} lines but there are {rows} "
                f"{'nodes' if rows == n_nodes else 'edges'}; it needs one line per "
                f"{'node' if rows == n_nodes else 'edge (as in ' + a_path.name + ')'}."
            )
        return arr

    n_edges = len(edges)
    node_lab = per_node("node_labels", "one integer label per node", np.int64, n_nodes)
    node_att = per_node("node_attributes", "comma-separated numbers per node", np.float64, n_nodes)
    edge_lab = per_node("edge_labels", "one integer label per edge", np.int64, n_edges)
    edge_att = per_node("edge_attributes", "comma-separated numbers per edge", np.float64, n_edges)

    # features and labels over the whole set (consistent codes)
    feats = []
    node_code = None
    if node_lab is not None:
        _, node_code = np.unique(node_lab, axis=0, return_inverse=True)
        node_code = node_code.reshape(-1)
        feats.append(_one_hot(node_code, int(node_code.max()) + 1))
    if node_att is not None:
        feats.append(node_att.astype(np.float32))
    x_all = np.concatenate(feats, 1) if feats else np.ones((n_nodes, 1), dtype=np.float32)
    edge_code = None
    efeats = []
    if edge_lab is not None:
        _, edge_code = np.unique(edge_lab, axis=0, return_inverse=True)
        edge_code = edge_code.reshape(-1)
        efeats.append(_one_hot(edge_code, int(edge_code.max()) + 1))
    if edge_att is not None:
        efeats.append(edge_att.astype(np.float32))
    eattr_all = np.concatenate(efeats, 1) if efeats else None
    classes_raw, y = np.unique(graph_labels, return_inverse=True)

    # nodes → (graph, local number); edges → graph
    g_of_node = indicator - 1
    order = np.argsort(g_of_node, kind="stable")
    counts = np.bincount(g_of_node, minlength=n_graphs)
    starts = np.concatenate([[0], np.cumsum(counts)])
    local = np.empty(n_nodes, dtype=np.int64)
    local[order] = np.arange(n_nodes) - starts[g_of_node[order]]
    src, dst = edges[:, 0] - 1, edges[:, 1] - 1
    cross = g_of_node[src] != g_of_node[dst]
    if cross.any():
        i = int(np.flatnonzero(cross)[0])
        raise ValueError(
            f"{a_path}: line {i + 1} joins nodes {src[i] + 1} and {dst[i] + 1} of different "
            f"graphs ({g_of_node[src[i]] + 1} and {g_of_node[dst[i]] + 1}); an edge must join "
            f"two nodes of one graph ({gi_path.name})."
        )
    src, dst, eorig, _, _ = _undirected(src, dst, n_nodes)
    g_of_edge = g_of_node[src]
    eorder = np.argsort(g_of_edge, kind="stable")
    ecounts = np.bincount(g_of_edge, minlength=n_graphs)
    estarts = np.concatenate([[0], np.cumsum(ecounts)])

    skips = _Skips(str(folder / prefix), on_error, "graphs")
    graphs, labels = [], []
    for g in range(n_graphs):
        if counts[g] == 0:
            skips.skip("with no nodes", f"graph {g + 1}", "give it nodes or drop its label line")
            continue
        if ecounts[g] == 0:
            skips.skip("with no edges", f"graph {g + 1}", "give it edges or drop it")
            continue
        nodes = order[starts[g] : starts[g + 1]]
        es = eorder[estarts[g] : estarts[g + 1]]
        data = Data(
            x=torch.from_numpy(x_all[nodes]),
            edge_index=torch.from_numpy(np.stack([local[src[es]], local[dst[es]]])),
        )
        if node_code is not None:
            data.node_label = torch.from_numpy(node_code[nodes])
        if eattr_all is not None:
            data.edge_attr = torch.from_numpy(eattr_all[eorig[es]])
        if edge_code is not None:
            data.edge_label = torch.from_numpy(edge_code[eorig[es]])
        graphs.append(data)
        labels.append(y[g])
    _warn(skips.message(n_graphs))
    if not graphs:
        raise ValueError(f"no usable graphs in {folder / prefix} ({n_graphs} graphs read).")
    full = GraphSet(
        graphs,
        torch.tensor(labels, dtype=torch.long),
        [str(c) for c in classes_raw],
        name=name,
    )
    skipped = f"; {skips.count} graphs without nodes or edges skipped" if skips.count else ""
    return GraphSplits(
        train=full,
        test=None,
        name=name,
        protocol="graph_classification",
        note=f"{name} has no standard split: all {len(full)} graphs are in train, evaluated "
        f"by cross-validation{skipped}.",
        split="",
    )


def load_mutag() -> GraphSplits:
    """MUTAG: 188 nitro-aromatic compounds (125 mutagenic = class "1", 63 not = class "-1"),
    7 atom types as node labels, 4 bond types as edge labels; from the TU files inside the
    installed ``grakel`` package.

    Example:
        >>> load_mutag().train.labels.bincount().tolist()
        [63, 125]
    """
    spec = importlib.util.find_spec("grakel")
    roots = list(spec.submodule_search_locations or []) if spec else []
    folder = next(
        (Path(r) / "tests" / "data" / "MUTAG" for r in roots
         if (Path(r) / "tests" / "data" / "MUTAG" / "MUTAG_A.txt").is_file()),
        None,
    )  # fmt: skip
    if folder is None:
        raise ImportError(
            f"MUTAG is read from the grakel package, which is not installed (or lacks its "
            f"tests/data/MUTAG files); {_INSTALL} brings it."
        )
    return load_tu_folder(folder, "mutag")


# ------------------------------------------------------------------------------ molecules
def _rdkit() -> Any:
    chem = require_extra("rdkit.Chem", "graph", "molecules from SMILES")
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    return chem


def _scaffold(mol: Any) -> str:
    from rdkit.Chem.Scaffolds import MurckoScaffold

    try:
        return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)
    except Exception:  # RDKit raises on odd valences in rare molecules: a group of its own
        return ""


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    f = tuple(float(v) for v in fractions)
    if len(f) != 3 or min(f) < 0 or abs(sum(f) - 1.0) > 1e-6 or f[0] <= 0:
        raise ValueError(
            f"fractions must be three numbers ≥ 0 (train > 0) summing to 1, got "
            f"{tuple(fractions)}; e.g. (0.8, 0.1, 0.1)."
        )
    return f  # type: ignore[return-value]


def _split_scaffolds(scaffolds: Sequence[str], fractions: Sequence[float]):
    frac = _check_fractions(fractions)
    n = len(scaffolds)
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(scaffolds):
        groups.setdefault(s, []).append(i)
    ordered = sorted(groups.values(), key=lambda g: (-len(g), g[0]))
    train_size, val_size = frac[0] * n, frac[1] * n
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for g in ordered:
        if len(parts[0]) + len(g) <= train_size:
            parts[0].extend(g)
        elif len(parts[1]) + len(g) <= val_size:
            parts[1].extend(g)
        else:
            parts[2].extend(g)
    return tuple(torch.tensor(sorted(p), dtype=torch.long) for p in parts)


def scaffold_split(
    smiles: Sequence[str], fractions: Sequence[float] = (0.8, 0.1, 0.1)
) -> tuple[Tensor, Tensor, Tensor]:
    """Deterministic Bemis–Murcko scaffold split (as MoleculeNet / chemprop).

    Molecules are grouped by scaffold (``MurckoScaffoldSmiles(includeChirality=False)``;
    acyclic molecules share the empty scaffold), groups are sorted largest first (ties: the
    group whose first molecule comes first), and each group goes whole to train while it fits
    in ``fractions[0] × N``, else to val while that fits, else to test. No scaffold is in two
    parts, so val and test hold unseen chemotypes (the harder, more honest evaluation).

    Args:
        smiles: N SMILES strings (all must parse).
        fractions: (train, val, test) fractions summing to 1.

    Returns:
        (train, val, test) sorted int64 index tensors, disjoint, together 0..N-1.

    Example:
        >>> tr, va, te = scaffold_split(["c1ccccc1C", "c1ccccc1O", "C1CC1N", "CCO"],
        ...                             (0.5, 0.25, 0.25))
        >>> tr.tolist(), va.tolist(), te.tolist()
        ([0, 1], [2], [3])
    """
    chem = _rdkit()
    scaffolds = []
    for i, s in enumerate(smiles):
        mol = chem.MolFromSmiles(s) if isinstance(s, str) and s.strip() else None
        if mol is None:
            raise ValueError(
                f"smiles[{i}] ({s!r}) is not a valid SMILES; drop it before splitting "
                f"(load_smiles_csv skips such rows)."
            )
        scaffolds.append(_scaffold(mol))
    return _split_scaffolds(scaffolds, fractions)  # type: ignore[return-value]


def random_split(
    n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> tuple[Tensor, Tensor, Tensor]:
    """A seeded random (train, val, test) split of ``n`` rows: ``round(f × n)`` rows each for
    train and val, the rest for test; sorted int64 index tensors.

    Example:
        >>> [len(p) for p in random_split(10, (0.8, 0.1, 0.1), seed=0)]
        [8, 1, 1]
    """
    frac = _check_fractions(fractions)
    perm = torch.randperm(int(n), generator=torch.Generator().manual_seed(int(seed)))
    n_train = int(round(frac[0] * n))
    n_val = min(int(round(frac[1] * n)), n - n_train)
    parts = (perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val :])
    return tuple(p.sort().values for p in parts)  # type: ignore[return-value]


#: two-valued label columns whose order is recognised: (negative, positive) word pairs
_NEG_POS = [
    ("0", "1"),
    ("-1", "1"),
    ("false", "true"),
    ("no", "yes"),
    ("n", "y"),
    ("negative", "positive"),
    ("neg", "pos"),
    ("inactive", "active"),
    ("non-toxic", "toxic"),
    ("nontoxic", "toxic"),
]
#: column names taken as the label column when label_column is None
_LABEL_NAMES = {
    "label", "labels", "y", "target", "class", "activity", "p_np", "bbb+/bbb-", "bbb", "category",
}  # fmt: skip


def _number(v: str) -> float | None:
    try:
        return float(v)
    except ValueError:
        return None


def _class_order(values: Sequence[str]) -> list[str]:
    """Class names of a label column: a recognised negative/positive pair negative first,
    numbers in numeric order, anything else sorted as strings."""
    distinct = sorted(set(values))
    if len(distinct) == 2:
        a, b = distinct
        low = {a.lower(): a, b.lower(): b}
        for neg, pos in _NEG_POS:
            if set(low) == {neg, pos}:
                return [low[neg], low[pos]]
        for x, z in ((a, b), (b, a)):  # "BBB-" / "BBB+", "-" / "+", "non-X" / "X"
            if x[:-1] == z[:-1] and x.endswith("-") and z.endswith("+"):
                return [x, z]
            if x.lower() in (f"non-{z.lower()}", f"non{z.lower()}", f"not {z.lower()}"):
                return [x, z]
    nums = [_number(v) for v in distinct]
    if all(v is not None for v in nums):
        return [d for _, d in sorted(zip(nums, distinct))]
    return distinct


def graph_cache_dir() -> Path:
    """Where converted molecules are cached: ``$CONTRASTKIT_CACHE/graphs`` if that is set,
    else ``$XDG_CACHE_HOME/contrastkit/graphs`` (default ``~/.cache/contrastkit/graphs``)."""
    if os.environ.get("CONTRASTKIT_CACHE"):
        return Path(os.environ["CONTRASTKIT_CACHE"]) / "graphs"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "contrastkit" / "graphs"


def _read_smiles_table(path: Path) -> tuple[list[str], list[list[str]], str]:
    """(header, non-empty rows, the file's sha256: the cache key) of a CSV/TSV, read once."""
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    suffix = path.suffix.lower()
    if suffix == ".tsv":
        delimiter = "\t"
    elif suffix == ".csv":
        delimiter = ","
    else:
        try:
            delimiter = csv.Sniffer().sniff(text[:8192], delimiters=",\t;").delimiter
        except csv.Error:
            delimiter = ","
    # quoted fields may hold delimiters and line breaks (B3DB's TSV has names over two lines)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip() for h in next(reader, [])]
    if not header or not any(header):
        raise ValueError(f"{path} is empty; a SMILES table needs a header line and rows.")
    return header, [r for r in reader if any(c.strip() for c in r)], digest


def _resolve_column(header: list[str], col: str, path: Path, role: str) -> str:
    if col in header:
        return col
    folded = [h for h in header if h.lower() == col.lower()]
    if len(folded) == 1:
        return folded[0]
    arg = "smiles_column" if role == "SMILES" else "label_column"
    raise ValueError(
        f"{path} has no {col!r} column for the {role}s (its columns: {header}); name it with "
        f"{arg}=..."
    )


def _guess_label_column(header: list[str], rows: list[list[str]], smiles_col: str, path: Path):
    others = [h for h in header if h != smiles_col]
    if not others:
        return None
    named = [h for h in others if h.lower() in _LABEL_NAMES]
    if len(named) == 1:
        return named[0]
    if len(others) == 1 and not named:
        j = header.index(others[0])
        distinct = {r[j].strip() for r in rows if j < len(r)}
        if len(distinct) <= max(2, len(rows) // 2):
            return others[0]
    raise ValueError(
        f"{path}: cannot tell which column holds the labels (its columns: {header}); pass "
        f"label_column=<name>, or label_column='' to load the molecules unlabelled."
    )


def _convert_smiles(
    path: Path, header: list[str], rows: list[list[str]], smiles_col: str,
    label_col: str | None, skips: _Skips,
) -> dict[str, Any]:  # fmt: skip
    """Rows → converted molecules: graph tensors concatenated (ptr offsets) and per-molecule
    SMILES, raw labels and scaffolds (the content of the cache)."""
    chem = _rdkit()
    from torch_geometric.utils.smiles import from_rdmol

    js = header.index(smiles_col)
    jl = None if label_col is None else header.index(label_col)
    xs, eis, eas, smiles, raw_labels, scaffolds = [], [], [], [], [], []
    for i, r in enumerate(rows, 1):
        s = r[js].strip() if js < len(r) else ""
        lab = (r[jl].strip() if jl < len(r) else "") if jl is not None else None
        if lab == "":
            skips.skip("with no label", f"row {i}", "fill in its label")
            continue
        if not s:
            skips.skip("with an empty SMILES", f"row {i}", "fill in its SMILES")
            continue
        mol = chem.MolFromSmiles(s)
        if mol is None:
            skips.skip("invalid SMILES", f"row {i}: {s[:40]!r}", "correct the SMILES")
            continue
        try:
            data = from_rdmol(mol)
        except (ValueError, AssertionError):  # an atom state outside PyG's feature vocabulary
            skips.skip("with unsupported atoms", f"row {i}: {s[:40]!r}", "drop the molecule")
            continue
        if data.edge_index.shape[1] == 0:
            skips.skip("with no bonds", f"row {i}: {s[:40]!r}", "drop single atoms and ions")
            continue
        xs.append(data.x)
        eis.append(data.edge_index)
        eas.append(data.edge_attr)
        smiles.append(s)
        raw_labels.append(lab)
        scaffolds.append(_scaffold(mol))
    if not xs:
        raise ValueError(
            f"no usable molecules in {path} ({len(rows)} rows; {skips.count} bad); check "
            f"the SMILES column ({smiles_col!r})."
        )
    ptr = [0, *np.cumsum([len(x) for x in xs]).tolist()]
    eptr = [0, *np.cumsum([e.shape[1] for e in eis]).tolist()]
    return {
        "tensors": {
            "x": torch.cat(xs),
            "edge_index": torch.cat(eis, 1),
            "edge_attr": torch.cat(eas),
            "node_ptr": torch.tensor(ptr, dtype=torch.long),
            "edge_ptr": torch.tensor(eptr, dtype=torch.long),
        },
        "smiles": smiles,
        "labels": None if label_col is None else raw_labels,
        "scaffolds": scaffolds,
        "bad": skips.bad,
        "seen": len(rows),
    }


def _cached_conversion(
    path: Path, header: list[str], rows: list[list[str]], digest: str, smiles_col: str,
    label_col: str | None, on_error: str,
) -> tuple[dict[str, Any], _Skips]:  # fmt: skip
    """The conversion of ``path``'s molecules, from the cache when a valid entry exists."""
    from safetensors.torch import load_file, save_file

    from contrastkit import __version__
    from contrastkit._io import atomic_write, atomic_write_bytes

    skips = _Skips(str(path), on_error)
    key_src = json.dumps([digest, smiles_col, label_col, __version__, _CACHE_FORMAT])
    key = hashlib.sha256(key_src.encode()).hexdigest()[:24]
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem)[:40]
    tpath = graph_cache_dir() / f"{stem}-{key}.safetensors"
    jpath = tpath.with_suffix(".json")
    cached = None
    if tpath.is_file() and jpath.is_file():
        try:
            meta = json.loads(jpath.read_text())
            tensors = load_file(tpath)
            n = len(meta["smiles"])
            if meta["key"] == key_src and tensors["node_ptr"].shape == (n + 1,):
                meta["tensors"] = tensors
                cached = meta
        except Exception:  # a damaged cache entry is ignored and rebuilt
            cached = None
    if cached is not None:
        for reason, examples in cached["bad"].items():  # the same report as a cold load
            for ex in examples:
                skips.skip(reason, ex)
        return cached, skips
    conv = _convert_smiles(path, header, rows, smiles_col, label_col, skips)
    meta = {k: v for k, v in conv.items() if k != "tensors"}
    meta["key"] = key_src
    try:
        atomic_write(tpath, lambda tmp: save_file(conv["tensors"], tmp))
        atomic_write_bytes(jpath, json.dumps(meta).encode())
    except OSError as err:  # an unwritable cache only costs the next load its time
        warnings.warn(
            f"cannot cache the converted molecules in {tpath.parent} ({err}); set "
            f"XDG_CACHE_HOME or CONTRASTKIT_CACHE to a writable folder to speed up later loads.",
            stacklevel=4,
        )
    return conv, skips


def _molecules(conv: dict[str, Any]) -> list[Any]:
    t = conv["tensors"]
    ptr, eptr = t["node_ptr"].tolist(), t["edge_ptr"].tolist()
    x_all, ei_all, ea_all = t["x"], t["edge_index"], t["edge_attr"]
    graphs = []
    for i in range(len(ptr) - 1):
        x = x_all[ptr[i] : ptr[i + 1]]
        graphs.append(
            Data(
                x=x,
                edge_index=ei_all[:, eptr[i] : eptr[i + 1]],
                edge_attr=ea_all[eptr[i] : eptr[i + 1]],
                node_label=x[:, 0],
            )
        )
    return graphs


def _load_smiles(
    path: str | os.PathLike,
    smiles_column: str,
    label_column: str | None,
    split: str,
    fractions: Sequence[float],
    seed: int,
    on_error: str,
    name: str | None,
) -> tuple[GraphSplits, str | None]:
    if on_error not in ("warn", "raise"):
        raise ValueError(f"on_error must be 'warn' or 'raise', got {on_error!r}.")
    if split not in ("scaffold", "random"):
        raise ValueError(f"split must be 'scaffold' or 'random', got {split!r}.")
    _check_fractions(fractions)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SMILES table {path} does not exist.")
    header, rows, digest = _read_smiles_table(path)
    if not rows:
        raise ValueError(f"{path} has no data rows (columns: {header}).")
    smiles_col = _resolve_column(header, smiles_column, path, "SMILES")
    if label_column is None:
        label_col = _guess_label_column(header, rows, smiles_col, path)
    elif label_column == "":
        label_col = None
    else:
        label_col = _resolve_column(header, label_column, path, "label")
    conv, skips = _cached_conversion(path, header, rows, digest, smiles_col, label_col, on_error)
    graphs = _molecules(conv)
    labels, classes = None, []
    if conv["labels"] is not None:
        classes = _class_order(conv["labels"])
        code = {c: i for i, c in enumerate(classes)}
        labels = torch.tensor([code[v] for v in conv["labels"]], dtype=torch.long)
    name = name or path.stem
    full = GraphSet(graphs, labels, classes, name=name, smiles=list(conv["smiles"]))
    if split == "scaffold":
        parts = _split_scaffolds(conv["scaffolds"], fractions)
        how = "Bemis–Murcko scaffold split (no scaffold in two parts)"
    else:
        parts = random_split(len(full), fractions, seed)
        how = f"random split (seed {seed})"
    sets = [
        full.subset(p, f"{name}/{part}") if len(p) else None
        for p, part in zip(parts, ("train", "val", "test"))
    ]
    if sets[0] is None:
        raise ValueError(f"{path}: the {split} split left no training molecules.")
    sizes = "/".join(str(len(p)) for p in parts)
    report = skips.message(conv["seen"])
    note = f"{name}: {how}, train/val/test {sizes} of {len(full)} molecules" + (
        f"; {skips.count} of {conv['seen']} rows skipped" if skips.count else ""
    )
    return (
        GraphSplits(
            train=sets[0],
            val=sets[1],
            test=sets[2],
            name=name,
            protocol="molecule",
            note=note + ".",
            split=split,
        ),
        report,
    )


def load_smiles_csv(
    path: str | os.PathLike,
    smiles_column: str = "smiles",
    label_column: str | None = None,
    *,
    split: str = "scaffold",
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    on_error: str = "warn",
    name: str | None = None,
) -> GraphSplits:
    """Molecules from a SMILES table (``.csv``, ``.tsv``; other extensions: the delimiter is
    sniffed among comma, tab, semicolon), split into train/val/test.

    Each SMILES becomes a graph by RDKit and ``torch_geometric.utils.from_rdmol`` (the
    conversion of ``from_smiles``): ``x`` (n, 9) int64 atom codes (cardinalities in
    :attr:`GraphSet.feature_cardinalities`), ``edge_index`` (2, E) both bond directions,
    ``edge_attr`` (E, 3) int64 bond codes, ``node_label`` (n,) the atomic number. Hydrogens
    are implicit. Rows with an empty or invalid SMILES, atoms outside PyG's feature vocabulary,
    molecules without bonds (single atoms, bare ions) and rows with an empty label are skipped
    and reported in one warning (``on_error="raise"``: raise at the first).

    Columns: ``smiles_column`` (matched case-insensitively when the exact name is absent).
    ``label_column`` None guesses: a table with only the SMILES column is unlabelled
    (``labels`` None); otherwise a single column named like a label (``label``, ``y``,
    ``target``, ``class``, ``activity``, ``p_np``, ``BBB+/BBB-``, ...) or the one other column
    (when it has few distinct values) is taken, and anything ambiguous is an error listing the
    columns. ``label_column=""`` loads unlabelled on purpose.

    Labels map to 0..C-1. ``classes``: a two-valued column with a recognised negative/positive
    pair puts the negative first (``BBB-``/``BBB+``, ``-``/``+``, ``0``/``1``, ``-1``/``1``,
    ``no``/``yes``, ``false``/``true``, ``inactive``/``active``, ``negative``/``positive``,
    ``non-X``/``X``), numeric values are in numeric order, others sorted as strings.

    The conversion is cached under :func:`graph_cache_dir` (safetensors + JSON, keyed by the
    file's SHA-256, the columns and the contrastkit version; written atomically; a damaged
    entry is rebuilt), so a second load skips RDKit.

    Args:
        path: the table.
        smiles_column, label_column: the columns (see above).
        split: ``"scaffold"`` (:func:`scaffold_split`, deterministic) or ``"random"``
            (:func:`random_split` with ``seed``).
        fractions: (train, val, test), summing to 1; an empty part is None.
        on_error: ``"warn"`` or ``"raise"``.
        name: the data set's name (default: the file's stem).

    Example:
        >>> data = load_smiles_csv("bbbp.csv", label_column="p_np")  # doctest: +SKIP
        >>> data.train.categorical, data.train.num_features  # doctest: +SKIP
        (True, 9)
    """
    splits, report = _load_smiles(
        path, smiles_column, label_column, split, fractions, seed, on_error, name
    )
    _warn(report)
    return splits


def load_b3db(*, split: str = "scaffold", seed: int = 0) -> GraphSplits:
    """B3DB's blood–brain-barrier permeability classification set (Meng et al. 2021,
    ``B3DB_classification.tsv`` of the ``qc-b3db`` package): 7,807 molecules, ``BBB-`` = 0,
    ``BBB+`` = 1; 80/10/10 split. The few molecules RDKit cannot parse or that have no bonds
    are skipped and counted in ``note`` (not warned about: they are known and fixed).

    Example:
        >>> data = load_b3db()  # doctest: +SKIP
        >>> data.train.classes, data.protocol  # doctest: +SKIP
        (['BBB-', 'BBB+'], 'molecule')
    """
    spec = importlib.util.find_spec("B3DB")
    roots = list(spec.submodule_search_locations or []) if spec else []
    path = next(
        (Path(r) / "B3DB_classification.tsv" for r in roots
         if (Path(r) / "B3DB_classification.tsv").is_file()),
        None,
    )  # fmt: skip
    if path is None:
        raise ImportError(
            f"B3DB is read from the qc-b3db package, which is not installed (or lacks "
            f"B3DB_classification.tsv); {_INSTALL} brings it."
        )
    splits, _ = _load_smiles(
        path, "SMILES", "BBB+/BBB-", split, (0.8, 0.1, 0.1), seed, "warn", "b3db"
    )
    return splits


# ------------------------------------------------------------------------------ node level
@dataclass
class NodeGraph:
    """One graph whose rows are its nodes (node-level data).

    Attributes:
        graph: PyG ``Data`` with ``x`` (N, F) float32, ``edge_index`` (2, E) int64 with both
            directions of every edge, no self loops, no duplicates.
        labels: (len(nodes),) int64 class of each covered node, -1 for nodes without a label
            (they train but are left out of evaluation); or None (unlabelled graph).
        classes: class names, indexed by label.
        name: the data set's name.
        node_names: the N node names (as in the source files).
        nodes: (M,) int64, the node numbers this set covers (default: all N nodes).

    Example:
        >>> g = load_karate_club()
        >>> len(g), g.num_features, g.classes
        (34, 34, ['Mr. Hi', 'Officer'])
        >>> sorted(g.rows(torch.tensor([0, 3])))
        ['indices', 'labels', 'nodes']
    """

    graph: Any
    labels: Tensor | None = None
    classes: list[str] = field(default_factory=list)
    name: str = ""
    node_names: list[str] = field(default_factory=list)
    nodes: Tensor | None = None  # type: ignore[assignment]

    #: the kind of each field of :meth:`rows`
    fields: ClassVar[dict[str, str]] = {"nodes": "ids", "labels": "ids", "indices": "ids"}
    #: the evaluation protocol
    protocol: ClassVar[str] = "node_classification"

    def __post_init__(self) -> None:
        n = int(self.graph.num_nodes)
        if self.nodes is None:
            self.nodes = torch.arange(n)
        self.nodes = _as_index(self.nodes)
        if not self.node_names:
            self.node_names = [str(i) for i in range(n)]
        if len(self.node_names) != n:
            raise ValueError(
                f"NodeGraph.node_names has {len(self.node_names)} names for {n} nodes; give one "
                f"name per node (or none)."
            )
        if self.labels is not None:
            self.labels = torch.as_tensor(self.labels).long()
            if self.labels.shape != (len(self.nodes),):
                raise ValueError(
                    f"NodeGraph.labels must have shape ({len(self.nodes)},) (one per covered "
                    f"node, -1 for none), got {tuple(self.labels.shape)}."
                )

    def __len__(self) -> int:
        return len(self.nodes)

    def subset(self, index: Tensor | np.ndarray | Sequence[int], name: str | None = None):
        """The same graph, covering ``nodes[index]`` (and their labels)."""
        idx = _as_index(index)
        return NodeGraph(
            graph=self.graph,
            labels=None if self.labels is None else self.labels[idx],
            classes=list(self.classes),
            name=name or self.name,
            node_names=self.node_names,
            nodes=self.nodes[idx],
        )

    def rows(self, index: Tensor) -> dict[str, Tensor]:
        """``{"nodes": node numbers (B,), "indices": index}`` and ``"labels"`` (B,)."""
        batch = {"nodes": self.nodes[index], "indices": index}
        if self.labels is not None:
            batch["labels"] = self.labels[index]
        return batch

    def encoder_inputs(self) -> Any:
        """What an encoder embeds: the whole graph (embed all nodes, then take ``nodes``)."""
        return self.graph

    @property
    def num_features(self) -> int:
        return int(self.graph.x.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


_HEADER_WORDS = {
    "source", "target", "src", "dst", "from", "to", "node1", "node2", "node_1", "node_2", "u",
    "v", "id1", "id2", "head", "tail",
}  # fmt: skip
_SPLIT = re.compile(r"[,\s]+")


def _data_lines(path: Path) -> list[tuple[int, list[str]]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist.")
    out = []
    for i, ln in enumerate(path.read_text(errors="replace").splitlines(), 1):
        s = ln.strip()
        if s and not s.startswith("#"):
            out.append((i, [t for t in _SPLIT.split(s) if t]))
    return out


def _natural(names: list[str]) -> list[str]:
    try:
        return sorted(names, key=int)
    except ValueError:
        return names


def _edge_graph(names: list[str], pairs: list[tuple[str, str]], x: Tensor | None, name: str) -> Any:
    index = {n: i for i, n in enumerate(names)}
    n = len(names)
    arr = np.array([[index[a], index[b]] for a, b in pairs], dtype=np.int64).reshape(-1, 2)
    src, dst, _, _, _ = _undirected(arr[:, 0], arr[:, 1], max(n, 1))
    edge_index = torch.from_numpy(np.stack([src, dst]))
    if x is None:
        degree = torch.bincount(edge_index[0], minlength=n).clamp(max=31)
        x = torch.nn.functional.one_hot(degree, 32).float()
    return Data(x=x, edge_index=edge_index, num_nodes=n)


def load_edge_list(
    edges: str | os.PathLike,
    *,
    features: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None,
    name: str | None = None,
    on_error: str = "warn",
) -> NodeGraph:
    """A node-level graph from an edge list and optional node features and labels.

    Files (lines starting with ``#`` and blank lines are skipped; fields are separated by
    whitespace, commas or tabs; node names are strings):

    - ``edges``: ``a b`` per line (an optional third numeric field, a weight, is ignored). A
      first line of two column names (``source target``, ``src dst``, ``u v``, ...) is a
      header. Edges are undirected (both directions stored); self loops and repeated edges
      (the same ``a b`` twice; ``b a`` after ``a b`` is the same undirected edge, silently)
      are dropped and reported.
    - ``features``: ``node f1 f2 ...`` (numbers); every node needs a row (missing nodes: an
      error with the count and an example). Without it ``x`` is the one-hot degree, capped at
      31 (32 columns).
    - ``labels``: ``node label``; nodes without a line get label -1 (left out of evaluation).
      ``classes`` are in numeric order when all labels are numbers, else sorted as strings.

    The nodes are those of the edges, then any only in the features or labels file (isolated
    nodes); all in numeric order when every name is an integer, else in order of appearance.
    Malformed lines are skipped and reported in one warning per file by count and example
    (``on_error="raise"``: raise at the first).

    Example:
        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "g.txt"
        >>> _ = p.write_text("# toy\\na b\\nb c\\nc a\\n")
        >>> g = load_edge_list(p)
        >>> g.node_names, g.graph.edge_index.shape, g.num_features
        (['a', 'b', 'c'], torch.Size([2, 6]), 32)
    """
    if on_error not in ("warn", "raise"):
        raise ValueError(f"on_error must be 'warn' or 'raise', got {on_error!r}.")
    edges = Path(edges)
    lines = _data_lines(edges)
    skips = _Skips(str(edges), on_error, "lines")
    if lines and len(lines[0][1]) == 2 and {t.lower() for t in lines[0][1]} <= _HEADER_WORDS:
        lines = lines[1:]
    order: dict[str, None] = {}
    pairs: list[tuple[str, str]] = []
    loops, dups, seen_pairs = [], [], set()
    for i, toks in lines:
        if not (len(toks) == 2 or (len(toks) == 3 and _number(toks[2]) is not None)):
            skips.skip(
                "malformed", f"line {i}: {' '.join(toks)[:40]!r}", "write two node names per line"
            )
            continue
        a, b = toks[0], toks[1]
        order.setdefault(a)
        order.setdefault(b)
        if a == b:
            loops.append(f"line {i}: {a}–{a}")
            continue
        if (a, b) in seen_pairs:
            dups.append(f"line {i}: {a}–{b}")
            continue
        seen_pairs.add((a, b))
        pairs.append((a, b))
    notes = []
    if loops:
        notes.append(f"dropped {len(loops)} self loops (e.g. {'; '.join(loops[:3])})")
    if dups:
        notes.append(f"dropped {len(dups)} repeated edges (e.g. {'; '.join(dups[:3])})")
    msg = skips.message(len(lines))
    if notes:
        msg = (msg.rstrip(".") + "; " if msg else f"{edges}: ") + "; ".join(notes) + "."
    _warn(msg)
    if not pairs:
        raise ValueError(f"no edges in {edges}; an edge list needs lines 'a b' (two node names).")

    feat_rows: dict[str, list[float]] = {}
    if features is not None:
        fpath = Path(features)
        fskips = _Skips(str(fpath), on_error, "lines")
        flines = _data_lines(fpath)
        width = None
        for i, toks in flines:
            vals = [_number(t) for t in toks[1:]]
            if len(toks) < 2 or any(v is None for v in vals):
                fskips.skip(
                    "malformed", f"line {i}: {' '.join(toks)[:40]!r}",
                    "write a node name then numbers",
                )  # fmt: skip
                continue
            width = width or len(vals)
            if len(vals) != width:
                fskips.skip(
                    f"not {width} features", f"line {i}: node {toks[0]!r} has {len(vals)}",
                    "give every node the same number of features",
                )  # fmt: skip
                continue
            feat_rows[toks[0]] = vals  # type: ignore[assignment]
            order.setdefault(toks[0])
        _warn(fskips.message(len(flines)))
    label_of: dict[str, str] = {}
    if labels is not None:
        lpath = Path(labels)
        lskips = _Skips(str(lpath), on_error, "lines")
        llines = _data_lines(lpath)
        for i, toks in llines:
            if len(toks) != 2:
                lskips.skip("malformed", f"line {i}: {' '.join(toks)[:40]!r}", "write 'node label'")
                continue
            if label_of.get(toks[0], toks[1]) != toks[1]:
                lskips.skip(
                    "conflicting", f"line {i}: node {toks[0]!r}", "give each node one label"
                )
                continue
            label_of[toks[0]] = toks[1]
            order.setdefault(toks[0])
        _warn(lskips.message(len(llines)))
    names = _natural(list(order))
    x = None
    if features is not None:
        missing = [n for n in names if n not in feat_rows]
        if missing:
            raise ValueError(
                f"{features}: no features for {len(missing)} of {len(names)} nodes (e.g. "
                f"{missing[0]!r}); give every node of {edges.name} a line 'node f1 f2 ...'."
            )
        x = torch.tensor([feat_rows[n] for n in names], dtype=torch.float32)
    graph = _edge_graph(names, pairs, x, name or edges.stem)
    lab, classes = None, []
    if labels is not None:
        classes = _class_order(list(label_of.values())) if label_of else []
        code = {c: i for i, c in enumerate(classes)}
        lab = torch.tensor([code.get(label_of.get(n, ""), -1) for n in names], dtype=torch.long)
    return NodeGraph(
        graph=graph,
        labels=lab,
        classes=classes,
        name=name or edges.stem,
        node_names=names,
    )


def load_karate_club() -> NodeGraph:
    """Zachary's karate club (networkx's ``karate_club_graph``, no download): 34 members, 78
    friendships; labels: the club each member joined after the split (``"Mr. Hi"`` = 0,
    ``"Officer"`` = 1); features: the one-hot node id (the identity, as usual for Karate).

    Example:
        >>> g = load_karate_club()
        >>> g.graph.edge_index.shape, g.labels.bincount().tolist()
        (torch.Size([2, 156]), [17, 17])
    """
    import networkx as nx

    g = nx.karate_club_graph()
    nodes = sorted(g.nodes)
    club = [g.nodes[n]["club"] for n in nodes]
    classes = sorted(set(club))
    pairs = [(str(a), str(b)) for a, b in g.edges]
    graph = _edge_graph([str(n) for n in nodes], pairs, torch.eye(len(nodes)), "karate")
    return NodeGraph(
        graph=graph,
        labels=torch.tensor([classes.index(c) for c in club], dtype=torch.long),
        classes=classes,
        name="karate",
        node_names=[str(n) for n in nodes],
    )


# ------------------------------------------------------------------------------- dispatch
_ACCEPTED = (
    f"one of {list(GRAPH_DATA)}, a .csv/.tsv SMILES table, a TU folder (with <NAME>_A.txt, "
    "or raw/ holding it), an edge list file (.edges, .txt, .edgelist: 'a b' per line), or a "
    "folder holding edges.txt (+ optional features.txt, labels.txt)"
)


def load_graph_data(
    spec: str | os.PathLike,
    *,
    smiles_column: str | None = None,
    label_column: str | None = None,
    split: str = "scaffold",
    seed: int = 0,
) -> GraphSplits | NodeGraph:
    """A graph data set by name or path: ``"mutag"``, ``"b3db"``, ``"karate"``
    (:data:`GRAPH_DATA`), a ``.csv``/``.tsv`` SMILES table (:func:`load_smiles_csv`,
    ``smiles_column`` default ``"smiles"``), a TU folder (:func:`load_tu_folder`), an edge
    list file or a folder with ``edges.txt`` (:func:`load_edge_list`).

    Example:
        >>> load_graph_data("karate").name
        'karate'
    """
    key = str(spec).lower().strip()
    if key == "mutag":
        return load_mutag()
    if key == "b3db":
        return load_b3db(split=split, seed=seed)
    if key in ("karate", "karate-club", "karate_club"):
        return load_karate_club()
    path = Path(spec)
    suffix = path.suffix.lower()
    if path.is_file() and suffix in (".csv", ".tsv"):
        return load_smiles_csv(
            path, smiles_column or "smiles", label_column, split=split, seed=seed
        )
    if path.is_file() and path.name.endswith("_A.txt"):
        return load_tu_folder(path)
    if path.is_file() and suffix in (".edges", ".txt", ".edgelist", ".el"):
        return load_edge_list(path)
    if path.is_dir():
        if any(path.glob("*_A.txt")) or any((path / "raw").glob("*_A.txt")):
            return load_tu_folder(path)
        if (path / "edges.txt").is_file():
            extra = {
                k: path / f"{k}.txt"
                for k in ("features", "labels")
                if (path / f"{k}.txt").is_file()
            }
            return load_edge_list(path / "edges.txt", name=path.name, **extra)  # type: ignore[arg-type]
    import difflib

    close = difflib.get_close_matches(key, list(GRAPH_DATA), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    where = "does not exist" if not path.exists() else "is not a graph data set"
    raise ValueError(f"{spec!s} {where}; give {_ACCEPTED}.{hint}")
