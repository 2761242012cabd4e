"""SupCon fine-tuning of MiniLM on the VADER movie-review snippets, 5-fold cross-validation.

The snippets (Hutto & Gilbert 2014; 10,605 sentences rated −4..4 by humans) are binarised by
the sign of the rating. For each of 5 stratified folds: a fresh all-MiniLM-L6-v2 is
fine-tuned with :class:`~contrastkit.recipes.TextSupCon` on the four training folds only, then
a linear probe (its penalty chosen on a split of the training folds) is fitted on the training
folds' embeddings and scored on the held-out fold. The same folds and probe score the two
baselines: TF-IDF (fitted on the training folds) and frozen MiniLM. The hyper-parameters are
fixed in advance (SupCon τ = 0.1, AdamW lr 5e-5, batch 64, one epoch, warm-up 10%); nothing
is chosen on a test fold.

    python benchmarks/text_movies_supcon.py [--folds 5] [--epochs 1] [--batch 64] [--out runs/text_supcon]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from contrastkit.data.text import load_movie_snippets, stratified_folds
from contrastkit.encoders.text import minilm
from contrastkit.evaluate import extract_features, linear_probe
from contrastkit.evaluate.text import tfidf_features
from contrastkit.recipes import TextSupCon, TextSupConConfig
from contrastkit.train import TrainConfig, Trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--run-folds", type=int, default=None, help="stop after this many folds")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--out", default="runs/text_supcon")
    args = ap.parse_args()
    torch.manual_seed(0)
    data = load_movie_snippets()
    y = data.labels
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch "
        f"{torch.__version__}; {len(data)} snippets, {int(y.sum())} positive"
    )
    t0 = time.time()
    frozen = extract_features(minilm(max_length=args.max_length), data.texts, bf16=True)
    print(f"frozen MiniLM embeddings: {time.time() - t0:.0f} s")
    rows = []
    out = Path(args.out)
    for f, (tr, te) in enumerate(stratified_folds(y, args.folds, seed=0)):
        if args.run_folds is not None and f >= args.run_folds:
            break
        train, test = data.subset(tr), data.subset(te)
        x_tr, x_te = tfidf_features(train.texts, test.texts)
        tfidf = linear_probe(x_tr, train.labels, x_te, test.labels)["accuracy"]
        base = linear_probe(frozen[tr], y[tr], frozen[te], y[te])["accuracy"]
        recipe = TextSupCon(minilm(max_length=args.max_length), TextSupConConfig())
        cfg = TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch,
            optimizer="adamw",
            lr=args.lr,
            lr_scaling="none",
            weight_decay=0.01,
            warmup_epochs=0.1 * args.epochs,
            out_dir=str(out / f"fold{f}"),
            monitor_every=0,
            seed=f,
        )
        t1 = time.time()
        Trainer(recipe, train, cfg, encoder_name="hf_text").fit()
        minutes = (time.time() - t1) / 60
        enc = recipe.encoder
        f_tr = extract_features(enc, train.texts, bf16=True)
        f_te = extract_features(enc, test.texts, bf16=True)
        tuned = linear_probe(f_tr, train.labels, f_te, test.labels)["accuracy"]
        rows.append({"fold": f, "tfidf": tfidf, "frozen": base, "supcon": tuned, "min": minutes})
        print(
            f"fold {f}: TF-IDF {tfidf:.4f}  frozen MiniLM {base:.4f}  "
            f"SupCon fine-tuned {tuned:.4f}  ({minutes:.1f} min of fine-tuning)",
            flush=True,
        )
    summary = {}
    for key in ("tfidf", "frozen", "supcon"):
        vals = [r[key] for r in rows]
        summary[key] = (statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0)
    print(f"linear-probe accuracy over {len(rows)} folds (mean ± std):")
    for key, name in (("tfidf", "TF-IDF"), ("frozen", "frozen MiniLM"), ("supcon", "SupCon")):
        print(f"  {name:<16} {summary[key][0]:.4f} ± {summary[key][1]:.4f}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(
        json.dumps({"args": vars(args), "folds": rows, "summary": summary}, indent=2)
    )


if __name__ == "__main__":
    main()
