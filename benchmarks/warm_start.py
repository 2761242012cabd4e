"""Warm start: EfficientNet-Lite0 (ImageNet weights) on Fashion-MNIST, linear probe before and
after a short SimCLR fine-tune of the whole network.

    python benchmarks/warm_start.py [--minutes 8] [--input-size 64] [--train-images 60000]

Prints the test linear-probe accuracy of the frozen ImageNet features, then of the features
after contrastive fine-tuning on the training split (labels unused), and the ratio of errors.
The probe's penalty is chosen on a held-out part of the training split; the test split is only
used for the two reported numbers.
"""

from __future__ import annotations

import argparse
import time

import torch

from contrastkit.data import load_dataset
from contrastkit.encoders import EfficientNetLite0
from contrastkit.evaluate import extract_features, knn_accuracy, linear_probe
from contrastkit.recipes import SimCLR, SimCLRConfig
from contrastkit.train import TrainConfig, Trainer


def probe(encoder, train, test, size):
    kw = dict(batch_size=256, bf16=True, device="cpu")
    f_tr = extract_features(encoder, train.images, **kw)
    f_te = extract_features(encoder, test.images, **kw)
    lin = linear_probe(f_tr, train.labels, f_te, test.labels, weight_decays=(1e-5, 1e-4, 1e-3))
    knn = knn_accuracy(f_tr, train.labels, f_te, test.labels, k=200, temperature=0.1)
    return lin["accuracy"], knn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=8.0, help="fine-tuning wall-time budget")
    ap.add_argument("--input-size", type=int, default=64)
    ap.add_argument("--train-images", type=int, default=60000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--out", default="runs/warm_start")
    args = ap.parse_args()
    torch.manual_seed(0)
    data = load_dataset("fashion-mnist")
    train = data.train.subset(range(args.train_images)) if args.train_images < 60000 else data.train
    enc = EfficientNetLite0(in_channels=1, input_size=args.input_size, pretrained=True)
    t0 = time.time()
    before = probe(enc, train, data.test, args.input_size)
    print(
        f"ImageNet EfficientNet-Lite0 frozen: linear probe {before[0]:.4f}, kNN {before[1]:.4f} "
        f"({time.time() - t0:.0f} s)",
        flush=True,
    )
    recipe = SimCLR(enc, SimCLRConfig(image_size=28, channels=1, temperature=0.2, proj_hidden=1280))
    # one epoch over the budget's worth of images, cosine-decayed; small lr keeps the warm start
    cfg = TrainConfig(
        epochs=1,
        batch_size=args.batch,
        optimizer="adamw",
        lr=1e-4,
        lr_scaling="none",
        weight_decay=1e-4,
        warmup_epochs=0.05,
        out_dir=args.out,
        monitor_every=0,
        max_minutes=args.minutes,
        channels_last=True,
    )
    t1 = time.time()
    Trainer(recipe, train, cfg).fit()
    tuned_minutes = (time.time() - t1) / 60
    after = probe(recipe.encoder, train, data.test, args.input_size)
    print(
        f"after {tuned_minutes:.1f} min SimCLR fine-tune: linear probe {after[0]:.4f}, "
        f"kNN {after[1]:.4f}"
    )
    print(f"test error ratio after/before (linear probe): {(1 - after[0]) / (1 - before[0]):.3f}")


if __name__ == "__main__":
    main()
