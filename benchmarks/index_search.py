"""Search latency of :class:`contrastkit.index.EmbeddingIndex`: exact vs usearch backends.

Builds an index of random unit vectors (default 10,000 × 384, the size of a MiniLM-style
sentence embedding) with each backend, then times single-vector queries one at a time and
prints the build time, the median and p95 milliseconds per query and the usearch recall@k
against the exact top-k. Wall-clock times are printed next to process CPU times: on a shared
machine the wall clock also measures the scheduler, the CPU time does not. No assertions: this
is a measurement, not a test.

Random vectors are the hardest case for an HNSW graph (no cluster structure), so the recall
printed here is a lower bound of what real embeddings get.

Usage::

    python benchmarks/index_search.py
    python benchmarks/index_search.py --rows 100000 --dim 256 --queries 500 --k 10
    python benchmarks/index_search.py --expansion-search 256   # usearch: more recall, slower
    python benchmarks/index_search.py --threads 1              # one thread per query
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from contrastkit.index import EmbeddingIndex


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch and usearch threads (0: their defaults)"
    )
    parser.add_argument(
        "--expansion-search", type=int, default=None, help="usearch ef (default: usearch's 64)"
    )
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(args.seed)
    corpus = torch.randn(args.rows, args.dim, generator=g)
    queries = torch.randn(args.queries, args.dim, generator=g)
    print(
        f"{args.rows} × {args.dim} random vectors, {args.queries} single queries, k={args.k}; "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"torch threads={torch.get_num_threads()}, usearch threads={args.threads or 'all'}"
    )
    truth = None
    for backend in ("exact", "usearch"):
        index = EmbeddingIndex(
            args.dim, backend=backend, expansion_search=args.expansion_search, threads=args.threads
        )
        t0, c0 = time.perf_counter(), time.process_time()
        index.add(corpus)
        build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
        index.search(queries[0], k=args.k)  # warm-up
        times, cpu, found = [], [], []
        for q in queries:
            t0, c0 = time.perf_counter(), time.process_time()
            hits = index.search(q, k=args.k)[0]
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
            found.append({h.index for h in hits})
        if truth is None:
            truth = found
        recall = statistics.fmean(len(a & b) / args.k for a, b in zip(found, truth))
        print(
            f"{backend:>8}: build {build_s:7.3f} s (cpu {build_cpu:7.3f} s) | per query: median "
            f"{statistics.median(times):6.3f} ms, p95 {_percentile(times, 0.95):6.3f} ms (cpu "
            f"median {statistics.median(cpu):6.3f} ms, p95 {_percentile(cpu, 0.95):6.3f} ms) | "
            f"recall@{args.k} vs exact {recall:.3f}"
        )


if __name__ == "__main__":
    main()
