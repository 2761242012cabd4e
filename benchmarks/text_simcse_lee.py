"""Unsupervised SimCSE on the Lee background documents + the VADER movie snippets, judged on
the Lee corpus's 50×50 human document-similarity ratings (Lee, Pincombe & Welsh 2005).

Training text: the 300 Lee background documents and the 10,568 movie-review snippets (the 50
rated Lee documents are never trained on, and take part in no choice).

Each run ("minilm": all-MiniLM-L6-v2 fine-tuned; "scratch": a randomly initialised small
encoder) has a few candidate settings, fixed in this file. The setting is chosen on a
validation signal that needs no labels and no Lee ratings: 60 background documents (seeded)
are held out of training, cut in two at their middle word, and every half has to find its
other half among the 120 halves (MRR@10, both directions; ``halves_retrieval``). Each
candidate trains on the other 240 documents + the snippets; the one with the best validation
MRR is trained again on all 300 + the snippets, and only that model is scored on Lee.

Candidates:

- minilm (AdamW 3e-5 at batch 64, τ = 0.05, one epoch): ``passages`` (texts of 32+ words,
  the documents, are cut in two and the two sides are the views, DeCLUTR-style; shorter texts,
  the snippets, keep dropout as their only noise: ``views="passages"``),
  ``passages_distill`` (the same plus self-distillation from the frozen starting model,
  ``SimCSEConfig(distill=1.0)``: each view must also find its own text's frozen MiniLM
  embedding among the batch's) and ``span_distill`` (every text cut, ``views="span"``, the
  seventh session's choice, plus distillation). Why not cut the snippets: the two halves of a
  snippet are barely closer under frozen MiniLM than two random snippets (mean cosine 0.18
  against 0.15 on 64 snippets; the InfoNCE loss at τ = 0.05 is 5.3, above the 4.2 of chance),
  so training on them teaches the model to match sentence fragments, not meaning.
- scratch (10 epochs, batch 128, AdamW 1e-3, vocabulary from the training text, span views):
  ``bag_span`` (a 256-d bag of word embeddings, ``kind="bag"``, plain mean; the seventh
  session's family), ``bag_sif_span`` and ``bag_idf_span`` (a 1024-d bag pooled with SIF or
  IDF weights from the training text, ``word_weights``: frequent words count for little, and
  the untrained bag is a random projection of the weighted bag of words), and
  ``bag_sif_span_40ep`` (the SIF bag for 40 epochs: the 300 documents make only ~3 of the ~85
  batches of an epoch).

The seventh session's other candidates (``minilm``: dropout views, span views, lr 1e-5;
``scratch``: a 2-layer Transformer, crop views) and their validation scores are in ``benchmarks/RESULTS.md``.

Each result is printed beside TF-IDF (fitted on the training text) and frozen MiniLM: Pearson
and Spearman correlation of the cosine similarity of every pair of the 50 documents (1,225
pairs) with the human mean similarity.

    python benchmarks/text_simcse_lee.py [--runs minilm,scratch] [--out runs/text_lee]

Writes ``results_<runs>.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from pathlib import Path

import torch

from contrastkit.data.text import TextSet, load_lee, load_movie_snippets
from contrastkit.encoders.text import SmallTextEncoder, minilm
from contrastkit.evaluate import extract_features
from contrastkit.evaluate.text import (
    halves_retrieval,
    similarity_correlation,
    split_halves,
    tfidf_features,
)
from contrastkit.recipes import SimCSE, SimCSEConfig
from contrastkit.train import TrainConfig, Trainer

MINILM = {"epochs": 1, "batch_size": 64, "lr": 3e-5, "weight_decay": 0.0, "warmup_epochs": 0.0}
SCRATCH = {"epochs": 10, "batch_size": 128, "lr": 1e-3, "weight_decay": 0.01, "warmup_epochs": 0.5}
#: a 1024-d bag of word embeddings, pooled with SIF weights from the training text
BAG_SIF = {"kind": "bag", "max_length": 1024, "dim": 1024, "weights": "sif"}
#: run → candidate → (encoder settings, SimCSE settings, trainer settings)
CANDIDATES: dict[str, dict[str, tuple[dict, dict, dict]]] = {
    "minilm": {
        "passages": ({}, {"views": "passages"}, MINILM),
        "passages_distill": ({}, {"views": "passages", "distill": 1.0}, MINILM),
        "span_distill": ({}, {"views": "span", "distill": 1.0}, MINILM),
    },
    "scratch": {
        "bag_span": ({"kind": "bag", "max_length": 1024}, {"views": "span"}, SCRATCH),
        "bag_sif_span": (BAG_SIF, {"views": "span"}, SCRATCH),
        "bag_idf_span": ({**BAG_SIF, "weights": "idf"}, {"views": "span"}, SCRATCH),
        "bag_sif_span_40ep": (BAG_SIF, {"views": "span"}, {**SCRATCH, "epochs": 40}),
    },
}


def _encoder(run: str, settings: dict, texts: list[str], max_length: int):
    torch.manual_seed(0)
    if run == "minilm":
        return minilm(max_length=max_length)
    settings = {"dim": 256, **settings}
    weights = settings.pop("weights", None)
    return SmallTextEncoder.from_texts(
        texts, min_count=2, weights=weights, layers=2, heads=4, **settings
    )


def _train(run: str, candidate: str, corpus: TextSet, out: Path, max_length: int):
    """A fresh encoder of ``run`` trained with ``candidate``'s setting on ``corpus``."""
    settings, simcse, train = CANDIDATES[run][candidate]
    encoder = _encoder(run, settings, corpus.texts, max_length)
    recipe = SimCSE(encoder, SimCSEConfig(**simcse))
    cfg = TrainConfig(
        optimizer="adamw",
        lr_scaling="none",
        group_by_length=True,
        out_dir=str(out),
        monitor_every=0,
        **train,
    )
    name = "hf_text" if run == "minilm" else "small_text"
    t0 = time.time()
    Trainer(recipe, corpus, cfg, encoder_name=name).fit()
    return recipe.encoder.eval(), (time.time() - t0) / 60


def data(val_docs: int = 60):
    """(Lee corpus, selection training set, full training set, validation halves): the
    selection set leaves ``val_docs`` background documents (seeded) out; their halves are the
    validation signal."""
    lee = load_lee()
    snippets = load_movie_snippets().texts
    background = list(lee.background)
    held = set(random.Random(0).sample(range(len(background)), val_docs))
    val_halves = split_halves([background[i] for i in sorted(held)])
    kept = [d for i, d in enumerate(background) if i not in held]
    select = TextSet(texts=kept + snippets, name=f"lee-{len(kept)}+movies")
    corpus = TextSet(texts=background + snippets, name="lee+movies")
    return lee, select, corpus, val_halves


def validation(encoder, halves: tuple[list[str], list[str]]) -> dict[str, float]:
    """Halves retrieval MRR@10 / recall@1 of ``encoder`` on the validation halves."""
    return halves_retrieval(
        extract_features(encoder, halves[0]), extract_features(encoder, halves[1])
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", default="minilm,scratch")
    ap.add_argument("--max-length", type=int, default=256, help="MiniLM's tokens per text")
    ap.add_argument("--val-docs", type=int, default=60)
    ap.add_argument("--out", default="runs/text_lee")
    args = ap.parse_args()
    lee, select, corpus, val_halves = data(args.val_docs)
    background = lee.background
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch "
        f"{torch.__version__}; training text: {len(corpus)} ({len(background)} Lee background "
        f"documents + movie snippets); validation: {args.val_docs} held-out background "
        f"documents' halves; test: {len(lee.documents)} Lee documents",
        flush=True,
    )
    out = Path(args.out)
    res: dict[str, dict] = {}
    _, x = tfidf_features(corpus.texts, lee.documents)
    res["tfidf"] = similarity_correlation(x, lee.similarity)
    frozen = minilm(max_length=args.max_length).eval()
    res["frozen_minilm"] = similarity_correlation(
        extract_features(frozen, lee.documents), lee.similarity
    )
    res["frozen_minilm"]["validation"] = validation(frozen, val_halves)
    _, fv = tfidf_features(select.texts, val_halves[0] + val_halves[1])
    res["tfidf"]["validation"] = halves_retrieval(fv[: args.val_docs], fv[args.val_docs :])
    for key in ("tfidf", "frozen_minilm"):
        r = res[key]
        print(
            f"{key:<16} pearson {r['pearson']:.4f}  spearman {r['spearman']:.4f}  "
            f"(validation MRR@10 {r['validation']['mrr@10']:.4f})",
            flush=True,
        )
    for run in args.runs.split(","):
        scores = {}
        for candidate in CANDIDATES[run]:
            enc, minutes = _train(run, candidate, select, out / run / candidate, args.max_length)
            scores[candidate] = {**validation(enc, val_halves), "minutes": minutes}
            v = scores[candidate]
            print(
                f"  {run}/{candidate:<17} validation MRR@10 {v['mrr@10']:.4f}  recall@1 "
                f"{v['recall@1']:.4f}  ({minutes:.1f} min)",
                flush=True,
            )
        best = max(scores, key=lambda c: scores[c]["mrr@10"])
        enc, minutes = _train(run, best, corpus, out / run / "final", args.max_length)
        r = similarity_correlation(extract_features(enc, lee.documents), lee.similarity)
        res[f"simcse_{run}"] = {**r, "chosen": best, "minutes": minutes, "candidates": scores}
        if run == "scratch":  # what training added: the same architecture, untrained
            fresh = _encoder(run, CANDIDATES[run][best][0], corpus.texts, args.max_length)
            u = similarity_correlation(
                extract_features(fresh.eval(), lee.documents), lee.similarity
            )
            res["untrained_scratch"] = u
            print(
                f"  the same {best} encoder untrained: pearson {u['pearson']:.4f}  spearman "
                f"{u['spearman']:.4f}  (selection only on validation; this line is a diagnostic)",
                flush=True,
            )
        ref = "frozen_minilm" if run == "minilm" else "tfidf"
        d = r["pearson"] - res[ref]["pearson"]
        label = {"minilm": "from MiniLM", "scratch": "from scratch"}[run]
        print(
            f"SimCSE {label} ({best}, chosen on validation) pearson {r['pearson']:.4f} "
            f"({d:+.4f} vs {'frozen' if run == 'minilm' else 'TF-IDF'})  spearman "
            f"{r['spearman']:.4f}  ({minutes:.1f} min)",
            flush=True,
        )
    out.mkdir(parents=True, exist_ok=True)
    name = f"results_{args.runs.replace(',', '_')}.json"
    (out / name).write_text(json.dumps({"args": vars(args), "results": res}, indent=2))


if __name__ == "__main__":
    main()
