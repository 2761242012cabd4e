"""Gradient caching: a batch that does not fit in memory trains; the overhead where both fit.

Two recipes (``--recipe``):

- ``simclr`` (the default): SimCLR, ResNet-18 (small-input stem) on 32×32 RGB, 4,096 views;
- ``clip``: CLIP with two towers, EfficientNet-Lite0 (ImageNet weights) on ``--image-size``
  px images and MiniLM (all-MiniLM-L6-v2) on synthetic captions of 8–16 words, 4,096
  image–caption pairs; both towers train unless ``--lock-image`` (LiT: the image trunk is
  frozen and runs once per step, its projection still trains). AdamW, as the recipe trains.

bf16 autocast + channels_last as the trainer runs them. Each measurement is one training step
(forward, backward, optimiser) in a fresh subprocess whose address space is capped with
``RLIMIT_AS`` (``--cap-gb``), so "does not fit" means the allocation fails, as on a machine with
that much memory. Peak resident memory comes from ``ru_maxrss``, peak address space from
``VmPeak``.

Usage::

    python benchmarks/grad_cache.py                      # SimCLR, 4096 views under a 6 GiB cap
    python benchmarks/grad_cache.py --views 4096 --chunk 256 --cap-gb 6 --fit-views 512
    python benchmarks/grad_cache.py --recipe clip        # 4096 pairs under an 8 GiB cap
    python benchmarks/grad_cache.py --recipe clip --pairs 4096 --chunk 256 --cap-gb 8 \\
        --fit-pairs 256 --image-size 64 [--lock-image]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import time
from typing import Any

#: the default address-space cap per recipe (GiB); see RESULTS.md for how each was chosen
DEFAULT_CAP_GB = {"simclr": 6.0, "clip": 8.0}

_WORDS = (
    "a an the two three small large old young red blue green white black brown yellow dog "
    "cat bird horse child man woman people car bus bicycle boat train plane tree flower house "
    "street road beach field park table kitchen window door sits stands runs walks plays looks "
    "holds rides on in under near next to with behind of at its their and photo picture view"
).split()


def captions(n: int, seed: int = 0) -> list[str]:
    """``n`` synthetic captions of 8–16 words drawn from a fixed list (seeded)."""
    rng = random.Random(seed)
    return [" ".join(rng.choices(_WORDS, k=rng.randint(8, 16))) for _ in range(n)]


def _vm_peak() -> int:
    """Peak address space of this process in bytes (Linux ``VmPeak``; 0 elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmPeak:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _setup(spec: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    """The recipe, its optimiser and one batch for a child's ``spec``."""
    import torch

    torch.manual_seed(0)
    if spec["recipe"] == "clip":
        from contrastkit.encoders import EfficientNetLite0, minilm
        from contrastkit.recipes.clip import CLIP, CLIPConfig

        size, n = spec["image_size"], spec["rows"]
        config = CLIPConfig(image_size=size, lock_image=spec["lock_image"])
        recipe = CLIP(EfficientNetLite0(input_size=size), minilm(), config)
        recipe = recipe.to(memory_format=torch.channels_last)
        trained = [p for p in recipe.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(trained, lr=5e-4, weight_decay=0.2)
        images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8)
        batch = {"images": images, "texts": captions(n), "caption_ids": torch.arange(n)}
        return recipe, opt, batch
    from contrastkit.encoders import resnet18
    from contrastkit.recipes import SimCLR, SimCLRConfig

    recipe = SimCLR(
        resnet18(in_channels=3, small_input=True, width=spec["width"]),
        SimCLRConfig(image_size=32, channels=3, temperature=0.2),
    ).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(recipe.parameters(), lr=0.1, momentum=0.9)
    images = torch.randint(0, 256, (spec["rows"] // 2, 3, 32, 32), dtype=torch.uint8)
    return recipe, opt, {"images": images}


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``spec["steps"]`` timed steps (after one warm-up) under the cap; time and memory."""
    import resource

    if spec["cap_gb"] > 0:
        cap = int(spec["cap_gb"] * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import torch

    from contrastkit.train import grad_cache_step
    from contrastkit.train.precision import autocast

    times: list[float] = []
    t0 = time.perf_counter()
    try:
        recipe, opt, batch = _setup(spec)
        for _ in range(spec["steps"] + 1):  # the first step warms up
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            with autocast("bf16", torch.device("cpu")):
                if spec["mode"] == "plain":
                    out = recipe.step(batch)
                    out.loss.backward()
                else:
                    out = grad_cache_step(recipe, batch, spec["chunk"])
            opt.step()
            times.append(time.perf_counter() - t0)
    except (RuntimeError, MemoryError) as err:
        msg = str(err).splitlines()[0][:100]
        return {"ok": False, "error": msg, "seconds_before": time.perf_counter() - t0}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    seconds = min(times[1:]) if spec["steps"] else times[0]
    return {"ok": True, "seconds": seconds, "peak_bytes": peak, "vm_peak_bytes": _vm_peak()}


def run(**spec: Any) -> dict[str, Any]:
    """One measurement in a fresh subprocess (see :func:`_child`)."""
    cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        tail = (out.stderr or "killed").strip().splitlines()[-1:] or ["killed"]
        return {"ok": False, "error": f"exit {out.returncode}: {tail[0][:100]}"}
    return json.loads(lines[-1])


def show(label: str, r: dict[str, Any]) -> None:
    """One result line: time and peak memory, or why it did not fit."""
    if r["ok"]:
        gib = r["peak_bytes"] / 2**30
        vm = (
            f"   address space {r['vm_peak_bytes'] / 2**30:>5.2f} GiB"
            if r.get("vm_peak_bytes")
            else ""
        )
        print(f"{label:<48} {r['seconds']:>8.2f} s/step   peak RSS {gib:>5.2f} GiB{vm}")
    else:
        print(f"{label:<48} does not fit: {r['error']}")


def main() -> None:
    """Parse the flags and run the four measurements (or one child, internally)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", choices=("simclr", "clip"), default="simclr")
    ap.add_argument("--views", type=int, default=4096, help="simclr: views per step (2/image)")
    ap.add_argument("--fit-views", type=int, default=512, help="simclr: a batch both fit")
    ap.add_argument("--width", type=float, default=1.0, help="simclr: ResNet-18 width")
    ap.add_argument("--pairs", type=int, default=4096, help="clip: image-caption pairs per step")
    ap.add_argument("--fit-pairs", type=int, default=256, help="clip: a batch both fit")
    ap.add_argument("--image-size", type=int, default=64, help="clip: image side (px)")
    ap.add_argument("--lock-image", action="store_true", help="clip: LiT, lock the image trunk")
    ap.add_argument("--chunk", type=int, default=256, help="rows per tower per chunk")
    ap.add_argument("--cap-gb", type=float, default=None, help="address-space cap per run")
    ap.add_argument("--steps", type=int, default=2, help="timed steps (after one warm-up)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return
    import torch

    cap = DEFAULT_CAP_GB[args.recipe] if args.cap_gb is None else args.cap_gb
    clip = args.recipe == "clip"
    big, fit = (args.pairs, args.fit_pairs) if clip else (args.views, args.fit_views)
    unit = "pairs" if clip else "views"
    common = {
        "recipe": args.recipe,
        "width": args.width,
        "image_size": args.image_size,
        "lock_image": args.lock_image,
    }
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    if clip:
        towers = "locked (LiT) " if args.lock_image else "trainable "
        print(
            f"CLIP: {towers}EfficientNet-Lite0 {args.image_size}x{args.image_size} + trainable "
            f"MiniLM, captions of 8-16 words, AdamW, bf16 autocast, channels_last"
        )
    else:
        print(f"SimCLR ResNet-18 (width {args.width}) 32x32 RGB, bf16 autocast, channels_last")
    print(f"--- {big} {unit} per step, address space capped at {cap} GiB")
    plain = run(mode="plain", rows=big, chunk=args.chunk, steps=0, cap_gb=cap, **common)
    show(f"plain step, {big} {unit}", plain)
    cached = run(mode="cache", rows=big, chunk=args.chunk, steps=0, cap_gb=cap, **common)
    show(f"grad cache, {big} {unit}, chunks of {args.chunk}", cached)
    print(f"--- {fit} {unit} per step, no cap, best of {args.steps} steps")
    a = run(mode="plain", rows=fit, chunk=args.chunk, steps=args.steps, cap_gb=0, **common)
    show(f"plain step, {fit} {unit}", a)
    chunk = min(args.chunk, fit // 2)  # at least two chunks per tower
    b = run(mode="cache", rows=fit, chunk=chunk, steps=args.steps, cap_gb=0, **common)
    show(f"grad cache, {fit} {unit}, chunks of {chunk}", b)
    if a["ok"] and b["ok"]:
        print(f"overhead grad cache / plain: {b['seconds'] / a['seconds']:.3f}x")


if __name__ == "__main__":
    main()
