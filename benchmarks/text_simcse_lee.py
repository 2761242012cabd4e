"""Unsupervised SimCSE on the Lee background documents + the VADER movie snippets, judged on
the Lee corpus's 50×50 human document-similarity ratings (Lee, Pincombe & Welsh 2005).

Training text: the 300 Lee background documents and the 10,568 movie-review snippets (the 50
rated Lee documents are never trained on, and take part in no choice).

Each run ("minilm": all-MiniLM-L6-v2 fine-tuned; "scratch": a randomly initialised small
encoder) has a few candidate settings, fixed in this file. The setting is chosen on a
validation signal that needs no labels and no Lee ratings: 60 background documents (seeded)
are held out of training and cut in two at their middle word. Two tasks on those halves:

- lexical: every half has to find its other half among the 120 halves (MRR@10, both
  directions; ``halves_retrieval`` in ``benchmarks/_lee_helpers.py``); the shared names and
  terms make this TF-IDF's game;
- topical: the same, but each half searches its partner *without the words the two share*
  (``disjoint_halves``): word overlap cannot find it (TF-IDF scores 0), only learned
  association between different words can.

Document similarity as people judge it needs both, so the validation score is their mean
(the ninth session's protocol; until the eighth the choice was on the lexical MRR alone).
Each candidate trains on the other 240 documents + the snippets; the one with the best
validation score is trained again on all 300 + the snippets, and only that model is scored
on Lee.

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
- scratch (batch 128, AdamW 1e-3, vocabulary from the training text, a bag of word
  embeddings pooled with SIF weights from the training text, ``word_weights``: frequent words
  count for little, and the untrained bag is a random projection of the weighted bag of
  words): ``bag_sif_span`` (1024-d, embedding dropout 0.1, span views, 10 epochs; the eighth
  session's choice), ``wide_sif_span`` (4096-d, no dropout, span views, 6 epochs) and
  ``wide_sif_ict`` (the same with ``views="ict"``: for 90% of the pairs the two sides of the
  cut also lose the words they share, as ORQA's Inverse Cloze Task, so the bag cannot match
  them by their common names alone and has to learn which words go together). Why 4096-d: a
  random projection to d dimensions blurs every cosine by about 1/√d; on the 60 validation
  documents the untrained 1024-d bag's pair cosines correlate 0.85 with the exact SIF bag of
  words' and the 4096-d bag's 0.95. Why no dropout: the cut is the noise, and without dropout
  the bag's mean runs through ``F.embedding_bag`` (no per-token states): 20× faster per step
  on a batch of documents (``benchmarks/text_bag_speed.py``).

The seventh and eighth sessions' other candidates (``minilm``: dropout views, span views, lr
1e-5; ``scratch``: a 2-layer Transformer, crop views, a 256-d plain bag, an IDF bag, 40
epochs) and their validation scores are in ``benchmarks/RESULTS.md``.

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

from _lee_helpers import disjoint_halves, halves_retrieval, split_halves
from contrastkit.data.text import TextSet, load_lee, load_movie_snippets
from contrastkit.encoders.text import SmallTextEncoder, minilm
from contrastkit.evaluate import extract_features
from contrastkit.evaluate.text import similarity_correlation, tfidf_features
from contrastkit.recipes import SimCSE, SimCSEConfig
from contrastkit.train import TrainConfig, Trainer

MINILM = {"epochs": 1, "batch_size": 64, "lr": 3e-5, "weight_decay": 0.0, "warmup_epochs": 0.0}
SCRATCH = {"epochs": 10, "batch_size": 128, "lr": 1e-3, "weight_decay": 0.01, "warmup_epochs": 0.5}
#: a 1024-d bag of word embeddings, pooled with SIF weights from the training text
BAG_SIF = {"kind": "bag", "max_length": 1024, "dim": 1024, "weights": "sif"}
#: the same 4096-d, without dropout (the fast embedding_bag path)
WIDE_SIF = {**BAG_SIF, "dim": 4096, "dropout": 0.0}
#: run → candidate → (encoder settings, SimCSE settings, trainer settings)
CANDIDATES: dict[str, dict[str, tuple[dict, dict, dict]]] = {
    "minilm": {
        "passages": ({}, {"views": "passages"}, MINILM),
        "passages_distill": ({}, {"views": "passages", "distill": 1.0}, MINILM),
        "span_distill": ({}, {"views": "span", "distill": 1.0}, MINILM),
    },
    "scratch": {
        "bag_sif_span": (BAG_SIF, {"views": "span"}, SCRATCH),
        "wide_sif_span": (WIDE_SIF, {"views": "span"}, {**SCRATCH, "epochs": 6}),
        "wide_sif_ict": (WIDE_SIF, {"views": "ict"}, {**SCRATCH, "epochs": 6}),
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
    validation signal: (first halves, second halves, the same without their partner's
    words)."""
    lee = load_lee()
    snippets = load_movie_snippets().texts
    background = list(lee.background)
    held = set(random.Random(0).sample(range(len(background)), val_docs))
    first, second = split_halves([background[i] for i in sorted(held)])
    val_halves = (first, second, *disjoint_halves(first, second))
    kept = [d for i, d in enumerate(background) if i not in held]
    select = TextSet(texts=kept + snippets, name=f"lee-{len(kept)}+movies")
    corpus = TextSet(texts=background + snippets, name="lee+movies")
    return lee, select, corpus, val_halves


def validation_scores(first, second, first_disjoint, second_disjoint) -> dict[str, float]:
    """Lexical halves retrieval (MRR@10, recall@1), topical (``topical_mrr@10``: each half
    finds its partner without their shared words) and ``score``, their mean, from the
    embeddings of the four lists of halves."""
    out = halves_retrieval(first, second)
    topical = halves_retrieval(
        first, second, first_keys=first_disjoint, second_keys=second_disjoint
    )
    out["topical_mrr@10"] = topical["mrr@10"]
    out["score"] = 0.5 * (out["mrr@10"] + out["topical_mrr@10"])
    return out


def validation(encoder, halves: tuple[list[str], ...]) -> dict[str, float]:
    """:func:`validation_scores` of ``encoder`` on the validation halves."""
    return validation_scores(*(extract_features(encoder, list(h)) for h in halves))


def _val(v: dict[str, float]) -> str:
    return (
        f"validation score {v['score']:.4f} (lexical MRR@10 {v['mrr@10']:.4f}, topical "
        f"{v['topical_mrr@10']:.4f})"
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
    res["tfidf"]["validation"] = validation_scores(*tfidf_features(select.texts, *val_halves)[1:])
    for key in ("tfidf", "frozen_minilm"):
        r = res[key]
        print(
            f"{key:<16} pearson {r['pearson']:.4f}  spearman {r['spearman']:.4f}  "
            f"({_val(r['validation'])})",
            flush=True,
        )
    for run in args.runs.split(","):
        scores = {}
        for candidate in CANDIDATES[run]:
            enc, minutes = _train(run, candidate, select, out / run / candidate, args.max_length)
            scores[candidate] = {**validation(enc, val_halves), "minutes": minutes}
            v = scores[candidate]
            print(f"  {run}/{candidate:<17} {_val(v)}  ({minutes:.1f} min)", flush=True)
        best = max(scores, key=lambda c: scores[c]["score"])
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
