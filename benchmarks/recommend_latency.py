"""How fast ``contrastkit recommend`` answers: top-k items for one user over every item of
MovieLens-100K (1,682), the user's known items left out.

Issue 20's acceptance: < 20 ms per user, median. Measured here, in one run:

- ``Recommender.recommend(user, k)`` for every user of the trained model, one at a time
  (what the command does per ``--user``): median, 95th percentile and max;
- the reference, in the same run: the same answer by a full ``argsort`` of every item's score
  (what a naive implementation does), and the ratio;
- ``similar_items(item, k)`` ("more like this") for every item: median;
- the whole command in a fresh process (``contrastkit recommend --encoder RUN --user U``):
  Python start-up, imports and loading included, median of ``--cli-runs``.

The model is trained first by the pipeline (``contrastkit train --recipe xsimgcl --data
ml-100k``, ``--epochs`` epochs) unless ``--run`` names a trained run folder.

Usage::

    python benchmarks/recommend_latency.py                  # trains a small model first
    python benchmarks/recommend_latency.py --run runs/xsimgcl
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def _train(out: Path, epochs: int) -> None:
    """``contrastkit train --recipe xsimgcl --data ml-100k`` into ``out``."""
    exe = Path(sys.executable).with_name("contrastkit")
    cmd = [
        str(exe), "train", "--recipe", "xsimgcl", "--data", "ml-100k", "--epochs", str(epochs),
        "--batch-size", "2048", "--out", str(out), "--overwrite", "--no-progress",
        "--set", "train.tensorboard=false", "--set", "eval.report=false",
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", default=None, help="a trained recommender run folder")
    ap.add_argument("--epochs", type=int, default=5, help="epochs of the model trained first")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--cli-runs", type=int, default=5)
    args = ap.parse_args()
    from contrastkit.index.recommend import Recommender

    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
        f"threads, torch {torch.__version__}"
    )
    run = Path(args.run) if args.run else Path(tempfile.mkdtemp(prefix="recommend-latency-"))
    if not args.run:
        t0 = time.perf_counter()
        _train(run, args.epochs)
        print(
            f"trained xsimgcl on ml-100k for {args.epochs} epochs in {time.perf_counter() - t0:.0f} s"
        )
    t0 = time.perf_counter()
    rec = Recommender.load(run)
    load_ms = 1e3 * (time.perf_counter() - t0)
    print(f"{rec}; loaded in {load_ms:.1f} ms")

    users = rec.user_ids
    rec.recommend(users[0], k=args.k)  # warm-up
    ours, ref = [], []
    for u in users:
        t0 = time.perf_counter()
        hits = rec.recommend(u, k=args.k)
        ours.append(time.perf_counter() - t0)
        # the reference: score every item, mask the known ones, sort all of them
        t0 = time.perf_counter()
        r = rec.user_row(u)
        scores = rec.items @ rec.users[r]
        scores[rec.seen_items[rec.seen_indptr[r] : rec.seen_indptr[r + 1]]] = float("-inf")
        order = torch.argsort(scores, descending=True, stable=True)[: args.k]
        ref.append(time.perf_counter() - t0)
        # the same answer up to the order of tied scores
        assert torch.allclose(torch.tensor([h.score for h in hits]), scores[order]), u
    med, ref_med = statistics.median(ours), statistics.median(ref)
    print(
        f"recommend, {len(users)} users × {len(rec.item_ids)} items, k={args.k}: median "
        f"{1e3 * med:.3f} ms, p95 {1e3 * _pct(ours, 0.95):.3f} ms, max {1e3 * max(ours):.3f} ms "
        f"(target < 20 ms median: {'PASS' if med < 0.020 else 'FAIL'})"
    )
    print(
        f"reference (full argsort, same answers): median {1e3 * ref_med:.3f} ms; "
        f"ratio reference / recommend = {ref_med / med:.2f}×"
    )
    sims = []
    for i in [rec.item_ids[r] for r in (rec.items.norm(dim=1) > 0).nonzero().flatten().tolist()]:
        t0 = time.perf_counter()
        rec.similar_items(i, k=args.k)
        sims.append(time.perf_counter() - t0)
    print(
        f"similar_items, {len(sims)} items (those with a non-zero embedding): median "
        f"{1e3 * statistics.median(sims):.3f} ms"
    )

    exe = Path(sys.executable).with_name("contrastkit")
    cli = []
    for n in range(args.cli_runs):
        t0 = time.perf_counter()
        subprocess.run(
            [str(exe), "recommend", "--encoder", str(run), "--user", users[n], "-k", str(args.k)],
            check=True,
            capture_output=True,
            env={**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())},
        )
        cli.append(time.perf_counter() - t0)
    print(
        f"the whole command in a fresh process (start-up, imports, loading, one answer): "
        f"median {statistics.median(cli):.2f} s over {len(cli)} runs"
    )


if __name__ == "__main__":
    main()
