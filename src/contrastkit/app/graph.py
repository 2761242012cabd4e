"""Graphs and molecules in the one pipeline: loading, the encoder and recipe, and evaluation.

Data (``data.name``, :func:`contrastkit.data.graphs.load_graph_data`): ``mutag`` (188
molecules as TU graphs), ``b3db`` (7,807 SMILES, blood–brain-barrier penetration), a TU
folder of your own graphs, a CSV/TSV of SMILES (``data.smiles_column``, ``data.label_column``,
``data.split``: a Bemis–Murcko scaffold split or a random one), or an edge list of one graph
(node-level recipes: ``grace``). The encoder is ``gin`` (graph recipes) or ``gcn`` (``grace``);
``model.width`` > 1 sets its hidden width and ``model.layers`` its depth.

Evaluation, each figure beside baselines measured in the same run:

- **graph classification** (TU data: every graph): frozen embeddings and an SVM (RBF, as
  GraphCL's and InfoGraph's code) under 10-fold
  stratified cross-validation repeated over 5 seeds, C chosen inside each training fold
  (GraphCL's and InfoGraph's protocol); beside it the Weisfeiler–Lehman subtree kernel SVM,
  node-label histograms, the untrained encoder and the majority class;
- **molecules** (SMILES data): a logistic-regression probe on the frozen embeddings, C chosen
  on the validation molecules, ROC-AUC on the test molecules, with all training labels and
  with 10%; beside it ECFP4 fingerprints with the same probe, the untrained encoder and
  chance (0.5);
- **nodes** (an edge list with labels): a linear SVM on the node embeddings, 10-fold
  cross-validation over the labelled nodes; beside it the raw node features and the
  untrained encoder.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from contrastkit.evaluate.protocols import ProtocolResult

__all__ = [
    "GRAPH_ENCODERS",
    "build_graph_encoder",
    "build_graph_recipe",
    "embed_graph_data",
    "embed_graphs",
    "evaluate_graph_run",
    "load_graph_splits",
]

#: the graph encoders and, for each recipe modality, the default one
GRAPH_ENCODERS = ("gin", "gcn")
_DEFAULT_ENCODER = {"graph": "gin", "node": "gcn"}


def load_graph_splits(name: str, cfg: Any = None) -> Any:
    """The data of ``cfg.data`` (:func:`contrastkit.data.graphs.load_graph_data`)."""
    from contrastkit.data.graphs import load_graph_data

    d = cfg.data if cfg is not None else None
    data = load_graph_data(
        name,
        smiles_column=d.smiles_column if d is not None else "smiles",
        label_column=(d.label_column or None) if d is not None else None,
        split=(d.split or "scaffold") if d is not None else "scaffold",
        seed=cfg.train.seed if cfg is not None else 0,
    )
    if hasattr(data, "graph"):  # one graph: its nodes are the rows
        protocol = "node_classification" if data.labels is not None else None
        return _NodeSplits(data, None, data.name, protocol)
    return data


@dataclasses.dataclass
class _NodeSplits:
    """One graph's nodes as the pipeline's splits: every node trains; the evaluation is
    cross-validated over the labelled nodes."""

    train: Any
    test: Any
    name: str
    protocol: str | None
    note: str = ""


def _encoder_name(cfg: Any) -> str:
    m = cfg.model
    default = _DEFAULT_ENCODER[cfg.modality]
    if m.encoder == "resnet18":  # the tree's default: an image encoder, so the recipe's own
        return default
    if m.encoder not in GRAPH_ENCODERS:
        raise ValueError(
            f"the {cfg.recipe.name} recipe trains a graph encoder: --encoder gin or gcn, got "
            f"{m.encoder!r} (default {default})."
        )
    return m.encoder


def build_graph_encoder(cfg: Any, rows: Any) -> tuple[Any, str]:
    """The graph encoder of ``cfg.model`` for the features of ``rows`` (a GraphSet or a
    NodeGraph); (encoder, registry name)."""
    from contrastkit.encoders import build_encoder

    m = cfg.model
    name = _encoder_name(cfg)
    kw: dict[str, Any] = {"in_dim": rows.num_features}
    cards = getattr(rows, "feature_cardinalities", None)
    if cards:
        kw["categorical"] = list(cards)
    if m.width > 1:
        kw["hidden"] = int(m.width)
    if m.layers:
        kw["layers"] = int(m.layers)
    return build_encoder(name, **kw), name


def build_graph_recipe(cfg: Any, train: Any, data: Any) -> tuple[Any, Any, str]:
    """(resolved config, recipe, encoder name) of a graph or node recipe on ``train``."""
    cfg = cfg.resolved()
    # graphs differ in size every step: no torch.compile
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, compile=False))
    node_level = cfg.modality == "node"
    if node_level != hasattr(train, "graph"):
        what = "one graph's nodes (an edge list)" if node_level else "a set of graphs"
        got = "an edge list (one graph)" if hasattr(train, "graph") else "a set of graphs"
        other = "grace" if hasattr(train, "graph") else "graphcl or infograph"
        raise ValueError(
            f"the {cfg.recipe.name} recipe trains on {what}, but {data.name} is {got}; use "
            f"--recipe {other}."
        )
    _check_molecule_parts(data)
    encoder, name = build_graph_encoder(cfg, train)
    if node_level:
        recipe = cfg.recipe_class(encoder, cfg.recipe_config(), graph=train.graph)
    else:
        recipe = cfg.recipe_class(encoder, cfg.recipe_config())
    return cfg, recipe, name


def _check_molecule_parts(data: Any) -> None:
    """Before any training: a labelled molecule split needs both classes in every part (its
    ROC-AUC is measured on the test part, the probe's C chosen on the validation part)."""
    if getattr(data, "protocol", None) != "molecule" or data.train.labels is None:
        return
    for part in ("train", "val", "test"):
        rows = getattr(data, part)
        n = 0 if rows is None else len(rows)
        classes = 0 if rows is None else int(torch.unique(rows.labels).numel())
        if classes < 2:
            raise ValueError(
                f"the {part} part of {data.name} ({getattr(data, 'split', '')} split) holds "
                f"{n} molecules of {classes} class(es), but ROC-AUC needs both classes in the "
                "train, val and test parts; add molecules, or try --split random "
                "(a scaffold split keeps whole scaffold groups together)."
            )


@torch.no_grad()
def embed_graphs(encoder: Any, rows: Any, *, batch_size: int = 256, device: Any = None) -> Tensor:
    """(N, D) float32 CPU embeddings of every graph of ``rows`` (a GraphSet, or a list of
    PyG ``Data``), or of every node of a NodeGraph's graph ((num_nodes, D)), in eval mode."""
    from torch_geometric.data import Batch

    device = torch.device(device) if device is not None else next(encoder.parameters()).device
    was = encoder.training
    encoder.eval()
    try:
        if hasattr(rows, "graph"):  # node level: the whole graph at once
            return encoder.node_embeddings(rows.graph.to(device)).float().cpu()
        graphs = list(getattr(rows, "graphs", rows))
        out = [
            encoder(Batch.from_data_list(graphs[s : s + batch_size]).to(device)).float().cpu()
            for s in range(0, len(graphs), batch_size)
        ]
    finally:
        encoder.train(was)
    return torch.cat(out)


def evaluate_graph_run(
    encoder: Any, frozen: Any, data: Any, train: Any, val: Any, *, seed: int = 0
) -> tuple[ProtocolResult, Tensor, Any]:
    """Evaluate a trained graph encoder with its data's protocol; (result, the evaluated
    rows' embeddings, the evaluated rows). ``frozen`` is the untrained encoder (a baseline),
    or None."""
    from contrastkit.evaluate.protocols.graph import (
        GraphClassificationProtocol,
        MoleculeProtocol,
    )

    if data.protocol == "molecule":
        from contrastkit.evaluate.graph import ecfp_features

        test = data.test
        sets = (train, val, test)
        feats = [embed_graphs(encoder, s) for s in sets]
        base = {"ECFP4 fingerprints": [torch.as_tensor(ecfp_features(s.smiles)) for s in sets]}
        if frozen is not None:
            base["untrained encoder"] = [embed_graphs(frozen, s) for s in sets]
        result = MoleculeProtocol(seed=seed).evaluate(
            *feats,
            train.labels,
            val.labels,
            test.labels,
            baselines=base,
            details={"split": getattr(data, "split", ""), "counts": [len(s) for s in sets]},
        )
        return result, feats[2], test
    # graph classification (every graph, cross-validated) or node classification
    rows = data.train
    node_level = hasattr(rows, "graph")
    feats = embed_graphs(encoder, rows)
    labels = rows.labels
    kernels: dict[str, Any] = {}
    base: dict[str, Tensor] = {}
    if node_level:
        keep = labels >= 0
        feats, labels = feats[keep], labels[keep]
        base["raw node features"] = rows.graph.x.float()[keep]
        if frozen is not None:
            base["untrained encoder"] = embed_graphs(frozen, rows)[keep]
    else:
        from contrastkit.evaluate.graph import node_label_histograms, wl_kernel_matrices

        graphs = list(rows.graphs)
        if rows.num_node_labels:
            kernels["WL subtree kernel"] = wl_kernel_matrices(graphs)  # h = 1..5
            base["node-label histograms"] = node_label_histograms(graphs, rows.num_node_labels)
        if frozen is not None:
            base["untrained encoder"] = embed_graphs(frozen, rows)
    result = GraphClassificationProtocol(seed=seed).evaluate(
        feats, labels, baselines=base, kernels=kernels
    )
    return result, feats, rows


def embed_graph_data(
    encoder_dir: Any,
    data: str,
    *,
    split: str | None = None,
    smiles_column: str = "smiles",
    device: str = "cpu",
) -> tuple[Any, Any, Any]:
    """(features (N, D) float32 array, ids (N,), labels (N,) or None) of the graphs of
    ``data`` embedded by the exported graph encoder in ``encoder_dir``.

    ``split`` None embeds every graph (a molecule split's train, val and test parts in that
    order) or every node of an edge list; ``train``/``val``/``test`` one part of a molecule
    table's scaffold split (TU data has only ``train``). Ids are the SMILES of molecules, node
    names of an edge list, else graph numbers.
    """
    import numpy as np

    from contrastkit.data.graphs import load_graph_data
    from contrastkit.train import load_encoder

    encoder = load_encoder(encoder_dir, device=device)
    loaded = load_graph_data(data, smiles_column=smiles_column)
    if hasattr(loaded, "graph"):
        if split is not None:
            raise ValueError(
                f"--split selects a part of a set of graphs; {data} is one graph, whose "
                "every node is embedded: drop --split."
            )
        feats = embed_graphs(encoder, loaded, device=device).numpy()
        labels = None if loaded.labels is None else loaded.labels.numpy()
        return feats, np.array(loaded.node_names), labels
    parts = {"train": loaded.train, "val": loaded.val, "test": loaded.test}
    if split is not None and split not in parts:
        raise ValueError(f"--split must be train, val or test for graphs, got {split!r}.")
    if split is not None and parts[split] is None:
        have = ", ".join(k for k, v in parts.items() if v is not None)
        raise ValueError(f"{data} has no {split} part (it has {have}); choose one of those.")
    chosen = [parts[split]] if split is not None else [p for p in parts.values() if p is not None]
    feats = torch.cat([embed_graphs(encoder, p, device=device) for p in chosen]).numpy()
    if all(p.smiles for p in chosen):
        ids = np.array([s for p in chosen for s in p.smiles])
    else:
        ids = np.arange(len(feats))
    labels = None
    if all(p.labels is not None for p in chosen):
        labels = torch.cat([p.labels for p in chosen]).numpy()
    return feats, ids, labels
