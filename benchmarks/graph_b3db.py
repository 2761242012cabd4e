"""GraphCL on B3DB (blood–brain-barrier penetration, 7,807 SMILES), scaffold split: a linear
probe on 10% of the training labels against the same GIN trained from scratch on that 10%,
with ECFP4 fingerprints and the untrained GIN beside them.

Issue 19's second headline. The molecules are split by Bemis–Murcko scaffold (80/10/10, as
MoleculeNet and chemprop: no scaffold in two parts), so the test molecules have scaffolds the
training molecules lack. GraphCL is pre-trained on every B3DB SMILES with the labels unused
(train, validation and test molecules: the unlabelled pre-training the issue asks for). Then,
for each seed, a stratified 10% of the training labels (``label_fraction_subset``):

- **GraphCL + probe**: logistic regression on the frozen embeddings, C chosen by validation
  ROC-AUC, test ROC-AUC;
- **GIN from scratch**: the same GIN (and a linear output) trained with binary cross-entropy
  on those labels, dropout 0.5 as in Hu et al.'s fine-tuning, the epoch kept by validation
  ROC-AUC (early stopping), test ROC-AUC;
- **ECFP4 + probe** (2,048-bit Morgan fingerprints, radius 2) and the **untrained GIN +
  probe**, the same probe and labels.

Every figure also with all the training labels, where it is cheap (the probes). Every choice is
made on the validation molecules, never on the test molecules. Hyper-parameters are fixed in
advance: GIN of 5 layers, width 64, concatenated sum readouts (320-d); GraphCL's random pool of
four augmentations at strength 0.2, τ 0.2, Adam lr 0.001 at batch 256 (GraphCL's transfer
setting), constant, 20 epochs (the paper's 100 are beyond a CPU budget).

Usage::

    python benchmarks/graph_b3db.py                 # 3 seeds
    python benchmarks/graph_b3db.py --seeds 1 --epochs 2
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time

import numpy as np
import torch
from torch import nn

from _stats import mean_std

WIDTH, LAYERS = 64, 5


def gin(cards: list[int], dropout: float = 0.0) -> nn.Module:
    from contrastkit.encoders.graph import GIN

    return GIN(in_dim=len(cards), hidden=WIDTH, layers=LAYERS, categorical=cards, dropout=dropout)


def pretrain(all_graphs, cards: list[int], seed: int, epochs: int) -> tuple[nn.Module, float]:
    """GraphCL on every molecule (no labels); (encoder, seconds)."""
    from contrastkit.recipes import GraphCL, GraphCLConfig
    from contrastkit.train import TrainConfig, Trainer

    torch.manual_seed(seed)
    recipe = GraphCL(gin(cards), GraphCLConfig())
    cfg = TrainConfig(
        epochs=epochs,
        batch_size=256,
        optimizer="adam",
        lr=0.001,
        weight_decay=0.0,
        warmup_epochs=0,
        final_lr_fraction=1.0,
        precision="fp32",
        seed=seed,
        out_dir=tempfile.mkdtemp(prefix="b3db-graphcl-"),
        progress=False,
        tensorboard=False,
    )
    t0 = time.time()
    Trainer(recipe, all_graphs, cfg, encoder_name="gin").fit()
    return recipe.encoder, time.time() - t0


def train_from_scratch(data, few: torch.Tensor, cards: list[int], seed: int) -> dict[str, float]:
    """The same GIN + a linear output, BCE on the ``few`` training molecules, the epoch with
    the best validation ROC-AUC kept (patience 20, at most 200 epochs)."""
    from sklearn.metrics import roc_auc_score
    from torch_geometric.data import Batch

    torch.manual_seed(seed)
    enc = gin(cards, dropout=0.5)
    model = nn.ModuleDict({"enc": enc, "out": nn.Linear(enc.out_dim, 1)})
    opt = torch.optim.Adam(model.parameters(), lr=0.001)
    graphs = [data.train.graphs[i] for i in few.tolist()]
    y = data.train.labels[few].float()
    val_batch = Batch.from_data_list(list(data.val.graphs))
    test_batch = Batch.from_data_list(list(data.test.graphs))

    def scores(batch) -> np.ndarray:
        model.eval()
        with torch.no_grad():
            s = model["out"](model["enc"](batch)).squeeze(1).numpy()
        model.train()
        return s

    g = torch.Generator().manual_seed(seed)
    best, best_epoch, best_test, wait = -1.0, 0, float("nan"), 0
    for epoch in range(200):
        perm = torch.randperm(len(graphs), generator=g)
        for s in range(0, len(graphs), 32):
            idx = perm[s : s + 32]
            if len(idx) < 2:  # BatchNorm needs two rows
                continue
            batch = Batch.from_data_list([graphs[i] for i in idx.tolist()])
            logits = model["out"](model["enc"](batch)).squeeze(1)
            loss = nn.functional.binary_cross_entropy_with_logits(logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        val_auc = roc_auc_score(data.val.labels.numpy(), scores(val_batch))
        if val_auc > best:
            best, best_epoch, wait = val_auc, epoch + 1, 0
            best_test = roc_auc_score(data.test.labels.numpy(), scores(test_batch))
        else:
            wait += 1
            if wait >= 20:
                break
    return {"roc_auc": float(best_test), "val_roc_auc": float(best), "epoch": best_epoch}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from contrastkit.app.graph import embed_graphs
    from contrastkit.data.graphs import GraphSet, load_b3db
    from contrastkit.evaluate.graph import ecfp_features, label_fraction_subset, probe_roc_auc

    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
        f"threads, AMX {torch.cpu._is_amx_tile_supported()}; torch {torch.__version__}"
    )
    data = load_b3db()
    print(data.note)
    cards = list(data.train.feature_cardinalities)
    parts = (data.train, data.val, data.test)
    every = GraphSet([g for p in parts for g in p.graphs], None, [], "b3db (all SMILES)")
    ys = [p.labels.numpy() for p in parts]
    t0 = time.time()
    ecfp = [ecfp_features(p.smiles).astype(np.float32) for p in parts]
    print(f"ECFP4: {time.time() - t0:.1f} s")

    def probe(feats, few=None) -> float:
        tr = feats[0] if few is None else feats[0][few]
        ytr = ys[0] if few is None else ys[0][few]
        return probe_roc_auc(tr, ytr, feats[1], ys[1], feats[2], ys[2])["roc_auc"]

    runs: dict[str, list[float]] = {}
    pre_s = []
    for seed in range(args.seeds):
        few = label_fraction_subset(data.train.labels, 0.1, seed).numpy()
        enc, seconds = pretrain(every, cards, seed, args.epochs)
        pre_s.append(seconds)
        feats = [embed_graphs(enc, p).numpy() for p in parts]
        torch.manual_seed(seed)
        raw = [embed_graphs(gin(cards), p).numpy() for p in parts]
        t1 = time.time()
        scratch = train_from_scratch(data, torch.as_tensor(few), cards, seed)
        row = {
            "GraphCL + probe, 10% labels": probe(feats, few),
            "GIN from scratch, 10% labels": scratch["roc_auc"],
            "ECFP4 + probe, 10% labels": probe(ecfp, few),
            "untrained GIN + probe, 10% labels": probe(raw, few),
            "GraphCL + probe, all labels": probe(feats),
            "ECFP4 + probe, all labels": probe(ecfp),
            "untrained GIN + probe, all labels": probe(raw),
        }
        for k, v in row.items():
            runs.setdefault(k, []).append(v)
        print(
            f"seed {seed} ({len(few)} labelled molecules; pre-training {seconds:.0f} s, "
            f"from-scratch {time.time() - t1:.0f} s, best epoch {scratch['epoch']}): "
            + " | ".join(f"{k} {v:.4f}" for k, v in row.items())
        )
    figures = mean_std(runs)
    print(f"\nB3DB, scaffold split, test ROC-AUC, mean ± std over {args.seeds} seeds:")
    for k, (m, s) in figures.items():
        print(f"  {k:36s} {m:.4f} ± {s:.4f}")
    gain = figures["GraphCL + probe, 10% labels"][0] - figures["GIN from scratch, 10% labels"][0]
    print(f"  GraphCL + probe minus GIN from scratch (10% labels): {gain * 100:+.1f} points")
    print(f"pre-training: {statistics.mean(pre_s):.0f} s per seed, {args.epochs} epochs")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"figures": figures, "runs": runs, "pretrain_seconds": pre_s}, f, indent=2)


if __name__ == "__main__":
    main()
