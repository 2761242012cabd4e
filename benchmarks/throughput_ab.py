"""Throughput of two versions of the code, measured in one run (A/B, alternating order).

Each round runs, for each version (its ``src`` folder first on ``PYTHONPATH``, in a fresh
process, one at a time):

- ``step``: ``benchmarks/train_throughput.py`` (SimCLR ResNet-18 train step on 32×32 RGB,
  contrastkit images/s and its ratio to the fp32 per-sample-PIL reference of the same process);
- ``trainer``: ``Trainer.fit`` of SimCLR (ResNet-18 at 1/4 width, Fashion-MNIST 28 px, batch
  256, 3 epochs of 8,192 images, no monitor), images/s of the last two epochs: the whole loop,
  callbacks included.

The versions alternate order from round to round, so a machine that speeds up or slows down
during the run favours neither. Prints each measurement, the medians and after / before.

    python benchmarks/throughput_ab.py --before /path/to/old/src [--after src] [--rounds 3]
                                       [--only step|trainer]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

TRAINER = """
import tempfile, torch
from contrastkit.data import load_dataset
from contrastkit.encoders import resnet18
from contrastkit.recipes import SimCLR, SimCLRConfig
from contrastkit.train import Trainer, TrainConfig
torch.manual_seed(0)
data = load_dataset("fashion-mnist").train.subset(range(8192))
recipe = SimCLR(resnet18(in_channels=1, small_input=True, width=0.25),
                SimCLRConfig(image_size=28, channels=1, flip=0.5))
cfg = TrainConfig(epochs=3, batch_size=256, optimizer="lars", lr=0.4, weight_decay=1e-5,
                  monitor_every=0, progress=False, tensorboard=False,
                  out_dir=tempfile.mkdtemp())
history = Trainer(recipe, data, cfg).fit()
rows = sum(256 * 32 for h in history[1:])
print(f"images_per_s {rows / sum(h['seconds'] for h in history[1:]):.2f}")
"""


def _run(src: str, args: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout


def step(src: str) -> tuple[float, float]:
    """(contrastkit images/s, ratio to the same process's reference)."""
    out = _run(src, [str(HERE / "train_throughput.py"), "--steps", "6", "--warmup", "2"])
    ck = float(re.search(r"contrastkit .*?:\s+([\d.]+) images/s", out).group(1))
    ratio = float(re.search(r"ratio contrastkit / reference: ([\d.]+)x", out).group(1))
    return ck, ratio


def trainer(src: str) -> float:
    out = _run(src, ["-c", TRAINER])
    return float(re.search(r"images_per_s ([\d.]+)", out).group(1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True, help="the old version's src folder")
    p.add_argument("--after", default=str(HERE.parent / "src"), help="the new version's src")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", choices=("step", "trainer"), help="measure one of the two")
    a = p.parse_args()
    versions = {"before": str(Path(a.before).resolve()), "after": str(Path(a.after).resolve())}
    found: dict[str, dict[str, list[float]]] = {
        v: {"step": [], "ratio": [], "trainer": []} for v in versions
    }
    for r in range(a.rounds):
        order = list(versions) if r % 2 == 0 else list(reversed(versions))
        for v in order:
            ck, ratio = step(versions[v]) if a.only != "trainer" else (float("nan"),) * 2
            ips = trainer(versions[v]) if a.only != "step" else float("nan")
            found[v]["step"].append(ck)
            found[v]["ratio"].append(ratio)
            found[v]["trainer"].append(ips)
            parts = []
            if a.only != "trainer":
                parts.append(f"step {ck:7.1f} images/s (ratio to reference {ratio:.2f}x)")
            if a.only != "step":
                parts.append(f"trainer {ips:7.1f} images/s")
            print(f"round {r + 1} {v:6s}: " + ", ".join(parts), flush=True)
    med = {v: {k: statistics.median(x) for k, x in d.items()} for v, d in found.items()}
    for key, what in (
        ("step", "train step, images/s"),
        ("ratio", "train step / reference"),
        ("trainer", "Trainer.fit, images/s"),
    ):
        b, f = med["before"][key], med["after"][key]
        if b != b:  # not measured (--only)
            continue
        print(f"{what:26s} median before {b:8.2f}  after {f:8.2f}  after/before {f / b:.3f}")


if __name__ == "__main__":
    main()
