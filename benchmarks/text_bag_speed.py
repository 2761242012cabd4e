"""Train-step time of a bag of word embeddings on long documents: the pooled mean through
``F.embedding_bag`` (no per-token states; the path a bag takes in eval mode and when trained
without dropout) against the masked mean over (N, L, dim) token states (the path it takes when
trained with embedding dropout), measured in the same run.

One step = forward of a batch of Lee background documents, a loss on the pooled embeddings,
backward, and an AdamW step over the whole embedding table (the same for both paths). The
two encoders have the same vocabulary, weights and SIF word weights; they differ only in
dropout (0.1 vs 0).

    python benchmarks/text_bag_speed.py [--dim 4096] [--batch 128] [--steps 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from contrastkit.data.text import load_lee
from contrastkit.encoders.text import SmallTextEncoder


def step_seconds(encoder: SmallTextEncoder, ids: torch.Tensor, steps: int) -> float:
    """Median wall time of ``steps`` train steps (after one warm-up step)."""
    opt = torch.optim.AdamW(encoder.parameters(), lr=1e-3)
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        z = torch.nn.functional.normalize(encoder(ids), dim=1)
        loss = -(z[: len(z) // 2] * z[len(z) // 2 :]).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dim", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    docs = load_lee().background
    texts = docs[: args.batch]
    encoders = {}
    for name, dropout in (("token states (dropout 0.1)", 0.1), ("embedding_bag (no dropout)", 0.0)):
        torch.manual_seed(0)
        encoders[name] = SmallTextEncoder.from_texts(
            docs, weights="sif", kind="bag", dim=args.dim, max_length=1024, dropout=dropout
        ).train()
    first = next(iter(encoders.values()))
    ids = first.tokenize(texts)
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch "
        f"{torch.__version__}; {len(texts)} Lee background documents, {ids.shape[1]} ids at "
        f"most, vocabulary {len(first.vocab)}, dim {args.dim}"
    )
    sec = {name: step_seconds(enc, ids, args.steps) for name, enc in encoders.items()}
    for name, s in sec.items():
        print(f"{name:<28} {s * 1000:8.1f} ms/step")
    slow, fast = sec.values()
    print(f"ratio token states / embedding_bag: {slow / fast:.2f}x")


if __name__ == "__main__":
    main()
