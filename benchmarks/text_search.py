"""Semantic search over the VADER movie-review snippets with MiniLM: build time and per-query
latency (the query's encoding included), exact and usearch backends.

Issue 6's goal: a query answered in under 50 ms once the index is built. The queries are 100
snippets drawn from the corpus, lower-cased and with their last word dropped (so they are not
exact copies); each is answered alone (batch of one), as a user's query would be.

    python benchmarks/text_search.py [--queries 100] [--out runs/text_search]
"""

from __future__ import annotations

import argparse
import platform
import random
import time
from functools import partial

import torch

from _timing import latencies
from contrastkit.data.text import load_movie_snippets
from contrastkit.encoders.text import minilm
from contrastkit.index import EmbeddingIndex, SemanticSearch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--out", default="runs/text_search")
    args = ap.parse_args()
    data = load_movie_snippets()
    enc = minilm(max_length=128).eval()
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch "
        f"{torch.__version__}; corpus: {len(data)} movie snippets"
    )
    t0 = time.time()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        corpus = enc.encode(data.texts, batch_size=128)
    print(f"corpus embedded (bf16): {time.time() - t0:.1f} s")
    rng = random.Random(0)
    queries = [" ".join(t.lower().split()[:-1]) or t for t in rng.sample(data.texts, args.queries)]
    for backend in ("exact", "usearch"):
        t1 = time.time()
        index = EmbeddingIndex(corpus.shape[1], backend=backend, meta={"encoder": "minilm"})
        index.add(corpus, ids=data.ids, texts=data.texts)
        build = time.time() - t1
        search = SemanticSearch(lambda t: enc.encode(t), index)
        median, p95, worst = latencies(partial(search.search, k=10), queries)
        print(
            f"{backend:<8} index built in {build:.2f} s; per query (encode + top-10): median "
            f"{median:.1f} ms, p95 {p95:.1f} ms, max {worst:.1f} ms"
        )
        index.save(f"{args.out}/{backend}")


if __name__ == "__main__":
    main()
