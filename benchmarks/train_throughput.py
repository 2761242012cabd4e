"""SimCLR ResNet-18 train-step throughput on 32×32 RGB images: contrastkit vs a plain loop.

contrastkit: the SimCLR recipe (batched kornia views on tensors), bf16 autocast where the CPU
supports it, channels_last. Reference, same model and loss, measured in the same run: fp32,
default memory format, and per-sample PIL augmentation (random resized crop, flip, colour
jitter, grayscale, as torchvision's SimCLR pipeline does one image at a time).

    python benchmarks/train_throughput.py [--batch 128] [--steps 4] [--warmup 2]

Prints images/s of both and the ratio (images = source images; each gives two views).
"""

from __future__ import annotations

import argparse
import math
import platform
import random
import time

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageOps

from contrastkit.data import load_dataset
from contrastkit.encoders import resnet18
from contrastkit.heads import ProjectionHead
from contrastkit.losses import info_nce
from contrastkit.recipes import SimCLR, SimCLRConfig
from contrastkit.train.precision import autocast, resolve_precision


def pil_view(img: Image.Image, rng: random.Random, size: int = 32) -> np.ndarray:
    """torchvision-style SimCLR view of one PIL image (RandomResizedCrop(0.2, 1), flip,
    ColorJitter(0.4, 0.4, 0.2, 0.1) with p=0.8, grayscale p=0.2), as float32 CHW."""
    w, h = img.size
    area = w * h
    for _ in range(10):
        target = area * rng.uniform(0.2, 1.0)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw, ch = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < cw <= w and 0 < ch <= h:
            x0, y0 = rng.randint(0, w - cw), rng.randint(0, h - ch)
            break
    else:
        cw, ch, x0, y0 = w, h, 0, 0
    img = img.resize((size, size), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
    if rng.random() < 0.5:
        img = ImageOps.mirror(img)
    if rng.random() < 0.8:
        ops = [
            lambda im: ImageEnhance.Brightness(im).enhance(rng.uniform(0.6, 1.4)),
            lambda im: ImageEnhance.Contrast(im).enhance(rng.uniform(0.6, 1.4)),
            lambda im: ImageEnhance.Color(im).enhance(rng.uniform(0.8, 1.2)),
        ]
        rng.shuffle(ops)
        for op in ops:
            img = op(img)
        hsv = np.array(img.convert("HSV"))
        hsv[..., 0] = (hsv[..., 0].astype(int) + int(rng.uniform(-0.1, 0.1) * 255)) % 256
        img = Image.fromarray(hsv, "HSV").convert("RGB")
    if rng.random() < 0.2:
        img = ImageOps.grayscale(img).convert("RGB")
    return np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0


def rgb32(images: torch.Tensor) -> torch.Tensor:
    """28×28 grayscale uint8 → 32×32 RGB uint8 (zero padding, channel replication)."""
    x = torch.nn.functional.pad(images, (2, 2, 2, 2))
    return x.expand(-1, 3, -1, -1).contiguous()


def run_reference(images: torch.Tensor, batch: int, steps: int, warmup: int) -> float:
    torch.manual_seed(0)
    enc = resnet18(in_channels=3, small_input=True)
    model = torch.nn.Sequential(enc, ProjectionHead(enc.out_dim, 512, 128))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    pils = [
        Image.fromarray(im.permute(1, 2, 0).numpy()) for im in images[: batch * (steps + warmup)]
    ]
    rng = random.Random(0)
    ids = torch.arange(batch).repeat(2)
    t0 = None
    for s in range(steps + warmup):
        if s == warmup:
            t0 = time.perf_counter()
        chunk = pils[s * batch : (s + 1) * batch]
        v1 = torch.from_numpy(np.stack([pil_view(p, rng) for p in chunk]))
        v2 = torch.from_numpy(np.stack([pil_view(p, rng) for p in chunk]))
        z = model(torch.cat([v1, v2]))
        loss = info_nce(z, query_ids=ids, temperature=0.2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return batch * steps / (time.perf_counter() - t0)


def run_contrastkit(images: torch.Tensor, batch: int, steps: int, warmup: int) -> tuple[float, str]:
    torch.manual_seed(0)
    recipe = SimCLR(
        resnet18(in_channels=3, small_input=True), SimCLRConfig(image_size=32, channels=3)
    )
    recipe.head = ProjectionHead(512, 512, 128)
    recipe = recipe.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(recipe.parameters(), lr=0.1, momentum=0.9)
    device = torch.device("cpu")
    precision = resolve_precision("auto", device)
    t0 = None
    for s in range(steps + warmup):
        if s == warmup:
            t0 = time.perf_counter()
        x = images[s * batch : (s + 1) * batch]
        with autocast(precision, device):
            loss = recipe.step({"images": x}).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return batch * steps / (time.perf_counter() - t0), precision


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args()
    data = load_dataset("fashion-mnist").train
    images = rgb32(data.images[: args.batch * (args.steps + args.warmup)])
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    ck, precision = run_contrastkit(images, args.batch, args.steps, args.warmup)
    ref = run_reference(images, args.batch, args.steps, args.warmup)
    print(
        f"SimCLR ResNet-18, 32x32 RGB, batch {args.batch} images (2 views each), {args.steps} timed steps"
    )
    print(f"reference  fp32, per-sample PIL views : {ref:8.1f} images/s")
    print(f"contrastkit {precision}, channels_last, batched views: {ck:8.1f} images/s")
    print(f"ratio contrastkit / reference: {ck / ref:.2f}x")


if __name__ == "__main__":
    main()
