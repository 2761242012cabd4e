"""Gradient caching: a batch that does not fit in memory trains; the overhead where both fit.

SimCLR, ResNet-18 (small-input stem) on 32×32 RGB, bf16 autocast + channels_last as the trainer
runs it. Each measurement is one training step (forward, backward, optimiser) in a fresh
subprocess whose address space is capped with ``RLIMIT_AS`` (``--cap-gb``), so "does not fit"
means the allocation fails, as on a machine with that much memory. Peak resident memory comes
from ``ru_maxrss``.

Usage::

    python benchmarks/grad_cache.py                      # 4096 views under a 6 GiB cap
    python benchmarks/grad_cache.py --views 4096 --chunk 256 --cap-gb 6 --fit-views 512
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time


def _child(mode: str, views: int, chunk: int, width: float, steps: int, cap_gb: float) -> dict:
    import resource

    if cap_gb > 0:
        cap = int(cap_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import torch

    from contrastkit.encoders import resnet18
    from contrastkit.recipes import SimCLR, SimCLRConfig
    from contrastkit.train import grad_cache_step
    from contrastkit.train.precision import autocast

    torch.manual_seed(0)
    recipe = SimCLR(
        resnet18(in_channels=3, small_input=True, width=width),
        SimCLRConfig(image_size=32, channels=3, temperature=0.2),
    ).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(recipe.parameters(), lr=0.1, momentum=0.9)
    images = torch.randint(0, 256, (views // 2, 3, 32, 32), dtype=torch.uint8)
    batch = {"images": images}
    times = []
    try:
        for _ in range(steps + 1):  # the first step warms up
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            with autocast("bf16", torch.device("cpu")):
                if mode == "plain":
                    out = recipe.step(batch)
                    out.loss.backward()
                else:
                    out = grad_cache_step(recipe, batch, chunk)
            opt.step()
            times.append(time.perf_counter() - t0)
    except (RuntimeError, MemoryError) as err:
        msg = str(err).splitlines()[0][:100]
        return {"ok": False, "error": msg}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"ok": True, "seconds": min(times[1:]) if steps else times[0], "peak_bytes": peak}


def run(mode: str, views: int, chunk: int, width: float, steps: int, cap_gb: float) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, str(views), str(chunk), str(width)]
    cmd += [str(steps), str(cap_gb)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        tail = (out.stderr or "killed").strip().splitlines()[-1:] or ["killed"]
        return {"ok": False, "error": f"exit {out.returncode}: {tail[0][:100]}"}
    return json.loads(lines[-1])


def show(label: str, r: dict) -> None:
    if r["ok"]:
        print(f"{label:<44} {r['seconds']:>8.2f} s/step   peak {r['peak_bytes'] / 2**30:>5.2f} GiB")
    else:
        print(f"{label:<44} does not fit: {r['error']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--views", type=int, default=4096, help="views per step (2 per image)")
    ap.add_argument("--chunk", type=int, default=256, help="views per gradient-cache chunk")
    ap.add_argument("--cap-gb", type=float, default=6.0, help="address-space cap per run")
    ap.add_argument("--fit-views", type=int, default=512, help="a batch that fits both ways")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=2, help="timed steps (after one warm-up)")
    ap.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        mode, v, c, w, s, cap = args.child
        print(json.dumps(_child(mode, int(v), int(c), float(w), int(s), float(cap))))
        return
    import torch

    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print(f"SimCLR ResNet-18 (width {args.width}) 32x32 RGB, bf16 autocast, channels_last")
    print(f"--- {args.views} views per step, address space capped at {args.cap_gb} GiB")
    plain = run("plain", args.views, args.chunk, args.width, 0, args.cap_gb)
    show(f"plain step, {args.views} views", plain)
    cached = run("cache", args.views, args.chunk, args.width, 0, args.cap_gb)
    show(f"grad cache, {args.views} views, chunks of {args.chunk}", cached)
    print(f"--- {args.fit_views} views per step, no cap, best of {args.steps} steps")
    a = run("plain", args.fit_views, args.chunk, args.width, args.steps, 0)
    show(f"plain step, {args.fit_views} views", a)
    chunk = min(args.chunk, args.fit_views // 2)
    b = run("cache", args.fit_views, chunk, args.width, args.steps, 0)
    show(f"grad cache, {args.fit_views} views, chunks of {chunk}", b)
    if a["ok"] and b["ok"]:
        print(f"overhead grad cache / plain: {b['seconds'] / a['seconds']:.3f}x")


if __name__ == "__main__":
    main()
