"""Unsupervised SimCSE on the Lee background documents + the VADER movie snippets, judged on
the Lee corpus's 50×50 human document-similarity ratings (Lee, Pincombe & Welsh 2005).

Training text: the 300 Lee background documents and the 10,605 movie-review snippets (the 50
rated Lee documents are never trained on). Two runs, hyper-parameters fixed in advance:

- **from MiniLM**: all-MiniLM-L6-v2 fine-tuned with unsupervised SimCSE (dropout views,
  τ = 0.05, AdamW lr 3e-5 at batch 64: the paper's BERT setting), one epoch;
- **from scratch**: a randomly initialised small Transformer (vocabulary from the training
  text) trained with SimCSE on random-crop + word-dropout views of each text (dropout alone
  gives a from-scratch model nothing to learn from), lr 1e-3, several epochs.

Each is printed beside TF-IDF (fitted on the training text) and frozen MiniLM: Pearson and
Spearman correlation of the cosine similarity of every pair of the 50 documents (1,225
pairs) with the human mean similarity.

    python benchmarks/text_simcse_lee.py [--runs minilm,scratch] [--out runs/text_lee]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from contrastkit.data.text import TextSet, load_lee, load_movie_snippets
from contrastkit.encoders.text import SmallTextEncoder, build_vocab, minilm
from contrastkit.evaluate import extract_features
from contrastkit.evaluate.text import similarity_correlation, tfidf_features
from contrastkit.recipes import SimCSE, SimCSEConfig
from contrastkit.train import TrainConfig, Trainer


def _train_and_score(recipe, corpus, lee, name, out: Path, **train) -> dict[str, float]:
    """Train ``recipe`` on ``corpus`` (AdamW, lr as given, no lr scaling), then correlate."""
    cfg = TrainConfig(
        optimizer="adamw",
        lr_scaling="none",
        group_by_length=True,
        out_dir=str(out / name),
        monitor_every=0,
        **train,
    )
    t0 = time.time()
    Trainer(
        recipe, corpus, cfg, encoder_name={"minilm": "hf_text", "scratch": "small_text"}[name]
    ).fit()
    res = similarity_correlation(extract_features(recipe.encoder, lee.documents), lee.similarity)
    res["minutes"] = (time.time() - t0) / 60
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", default="minilm,scratch")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--scratch-epochs", type=int, default=10)
    ap.add_argument("--out", default="runs/text_lee")
    args = ap.parse_args()
    torch.manual_seed(0)
    lee = load_lee()
    corpus = TextSet(texts=list(lee.background) + load_movie_snippets().texts, name="lee+movies")
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch "
        f"{torch.__version__}; training text: {len(corpus)} ({len(lee.background)} Lee "
        f"background documents + movie snippets); test: {len(lee.documents)} Lee documents"
    )
    out = Path(args.out)
    res: dict[str, dict[str, float]] = {}
    _, x = tfidf_features(corpus.texts, lee.documents)
    res["tfidf"] = similarity_correlation(x, lee.similarity)
    res["frozen_minilm"] = similarity_correlation(
        extract_features(minilm(max_length=args.max_length), lee.documents), lee.similarity
    )
    for key in ("tfidf", "frozen_minilm"):
        print(f"{key:<16} pearson {res[key]['pearson']:.4f}  spearman {res[key]['spearman']:.4f}")
    runs = args.runs.split(",")
    if "minilm" in runs:
        recipe = SimCSE(minilm(max_length=args.max_length), SimCSEConfig())
        res["simcse_minilm"] = r = _train_and_score(
            recipe,
            corpus,
            lee,
            "minilm",
            out,
            epochs=1,
            batch_size=64,
            lr=3e-5,
            weight_decay=0.0,
            warmup_epochs=0.0,
        )
        d = r["pearson"] - res["frozen_minilm"]["pearson"]
        print(
            f"SimCSE from MiniLM pearson {r['pearson']:.4f} ({d:+.4f} vs frozen)  spearman "
            f"{r['spearman']:.4f}  ({r['minutes']:.1f} min)",
            flush=True,
        )
    if "scratch" in runs:
        enc = SmallTextEncoder(
            build_vocab(corpus.texts, min_count=2), dim=256, layers=2, heads=4, max_length=128
        )
        recipe = SimCSE(enc, SimCSEConfig(views="crop"))
        res["simcse_scratch"] = r = _train_and_score(
            recipe,
            corpus,
            lee,
            "scratch",
            out,
            epochs=args.scratch_epochs,
            batch_size=128,
            lr=1e-3,
            weight_decay=0.01,
            warmup_epochs=0.5,
        )
        d = r["pearson"] - res["tfidf"]["pearson"]
        print(
            f"SimCSE from scratch pearson {r['pearson']:.4f} ({d:+.4f} vs TF-IDF)  spearman "
            f"{r['spearman']:.4f}  ({r['minutes']:.1f} min)",
            flush=True,
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"args": vars(args), "results": res}, indent=2))


if __name__ == "__main__":
    main()
