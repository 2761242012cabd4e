"""Every recipe on Fashion-MNIST under one wall-clock budget: kNN / linear probe, speed, memory.

Each recipe trains the same encoder (ResNet-18 at 1/4 width, small-image stem, bf16 autocast,
batch 256, crops of area 0.4–1) from scratch in its own process for the same wall-clock
budget, then is evaluated by the shared protocol of ``contrastkit train`` (kNN with k chosen on
a 5,000-image validation split held out of the training set, linear probe on frozen features,
test split used only for the reported numbers). To give every recipe a complete learning-rate
schedule inside the budget, the trainer fits the epoch count to the budget from the recipe's
own speed, timed on its first 20 training steps (``fit_to_budget``); ``max_minutes`` caps the
run anyway.

    python benchmarks/recipes_fmnist.py [--minutes 4.5] [--recipes simclr,byol,...] [--out runs/bench]
                                        [--view-size 20]

A recipe whose result file is already in ``--out`` is not run again (an interrupted
benchmark continues where it stopped). Prints one table (kNN, linear probe, images/s, peak memory, the collapse monitor's last
embedding std·√D and effective rank) and writes ``table.md``, ``results.json`` and
``recipes.png`` into ``--out``. Each recipe uses its ``optim_defaults`` (the published CIFAR
optimiser setting of the method, solo-learn's where the paper has none), scaled by batch/256.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ALL = [
    "simclr",
    "supcon",
    "moco",
    "mocov3",
    "byol",
    "simsiam",
    "swav",
    "barlow_twins",
    "vicreg",
    "nnclr",
    "dino",
]

#: the run's options (dotted keys of the config tree, contrastkit.app.config.RunConfig)
COMMON = {
    "data.name": "fashion-mnist",
    "data.val_size": 5000,
    "model.encoder": "resnet18",
    "model.width": 0.25,
    "recipe.crop_scale": (0.4, 1.0),
    "train.batch_size": 256,
    "train.warmup_epochs": 0.5,
    "train.progress": False,
    "eval.report": False,
}

#: options beyond the recipe's defaults (its optimiser comes from ``Recipe.optim_defaults``)
EXTRA: dict[str, dict] = {
    "simclr": {"recipe.temperature": 0.2, "recipe.proj_hidden": 1024},
    "supcon": {"recipe.temperature": 0.1, "recipe.proj_hidden": 1024},
}


def experiment(name: str, out: Path, epochs: int, minutes: float, view_size: int | None = None):
    from contrastkit.app.config import RunConfig

    return RunConfig.from_dict(
        {
            "recipe.name": name,
            **({} if view_size is None else {"recipe.image_size": view_size}),
            "train.epochs": epochs,
            "train.monitor_every": epochs,
            "train.max_minutes": minutes,
            "train.fit_to_budget": True,
            "train.out_dir": str(out / name),
            **COMMON,
            **EXTRA.get(name, {}),
        }
    )


def run_one(name: str, out: Path, minutes: float, view_size: int | None = None) -> dict:
    from contrastkit.app.experiment import run_experiment

    # the trainer times its first steps and fits the epochs (≤ 100) to the budget
    res = run_experiment(experiment(name, out, 100, minutes, view_size), overwrite=True)
    epochs = res["epochs"]
    last = res["history"][-1]
    ev = res["evaluation"]  # the classification protocol's flat result (raw pixels beside)
    return {
        "recipe": name,
        "epochs": epochs,
        "epochs_done": len(res["history"]),
        "train_seconds": res["train_seconds"],
        "images_per_s": sum(h["rows_per_s"] for h in res["history"]) / len(res["history"]),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "knn_acc": ev["metrics.knn_accuracy"],
        "knn_k": ev["details.k"],
        "knn_val_acc": ev[f"details.val_knn_accuracy_by_k.{ev['details.k']}"],
        "linear_probe_acc": ev.get("metrics.linear_probe_accuracy"),
        "raw_pixel_knn_acc": ev["baseline.knn_accuracy"],
        "emb_std_ratio": last.get("emb_std_ratio"),
        "emb_effective_rank": last.get("emb_effective_rank"),
        "final_loss": last["loss"],
    }


def table(rows: list[dict]) -> str:
    head = (
        "| recipe | epochs | train min | kNN test (k) | kNN val | linear probe | images/s "
        "| peak RSS GiB | emb std·√D | eff. rank |\n|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r['recipe']} | {r['epochs_done']}/{r['epochs']} | {r['train_seconds'] / 60:.1f} "
        f"| {r['knn_acc']:.4f} ({r['knn_k']}) | {r['knn_val_acc']:.4f} "
        f"| {r['linear_probe_acc']:.4f} | {r['images_per_s']:.0f} | {r['peak_rss_gib']:.2f} "
        f"| {r['emb_std_ratio']:.3f} | {r['emb_effective_rank']:.1f} |"
        for r in rows
    ]
    return head + "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["recipe"] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r["knn_acc"] for r in rows], 0.4, label="kNN test")
    ax.bar([i + 0.2 for i in x], [r["linear_probe_acc"] for r in rows], 0.4, label="linear probe")
    ax.axhline(rows[0]["raw_pixel_knn_acc"], color="grey", ls="--", label="raw-pixel kNN")
    ax.set_xticks(list(x), names, rotation=30)
    lo = min(min(r["knn_acc"] for r in rows), rows[0]["raw_pixel_knn_acc"]) - 0.03
    ax.set_ylim(max(0.0, lo), 1.0)
    ax.set_ylabel("test accuracy")
    ax.legend(loc="upper right", ncol=3, fontsize=8)  # above the bars (all < 0.95)
    ax.set_title("Fashion-MNIST, same wall-clock budget per recipe")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=4.5, help="training budget per recipe")
    ap.add_argument("--recipes", default=",".join(ALL))
    ap.add_argument("--out", default="runs/bench_recipes")
    ap.add_argument(
        "--view-size", type=int, default=None, help="views' size in px (default: the images')"
    )
    ap.add_argument("--one", help=argparse.SUPPRESS)  # child process: one recipe
    args = ap.parse_args()
    out = Path(args.out)
    if args.one:
        row = run_one(args.one, out, args.minutes, args.view_size)
        (out / f"{args.one}.json").write_text(json.dumps(row, indent=2))
        return
    out.mkdir(parents=True, exist_ok=True)
    print(f"{platform.processor() or platform.machine()}, {args.minutes} min per recipe")
    rows = []
    for name in args.recipes.split(","):
        t0 = time.time()
        if not (out / f"{name}.json").exists():  # a finished recipe is not run again
            # one process per recipe: a clean peak-memory figure and no state carried over
            cmd = [sys.executable, __file__, "--one", name, "--minutes", str(args.minutes)]
            if args.view_size:
                cmd += ["--view-size", str(args.view_size)]
            subprocess.run([*cmd, "--out", str(out)], check=True)
        row = json.loads((out / f"{name}.json").read_text())
        rows.append(row)
        print(
            f"{name:<13} kNN {row['knn_acc']:.4f}  probe {row['linear_probe_acc']:.4f}  "
            f"{row['images_per_s']:.0f} img/s  std·√D {row['emb_std_ratio']:.3f}  "
            f"rank {row['emb_effective_rank']:.1f}  ({(time.time() - t0) / 60:.1f} min)",
            flush=True,
        )
        (out / "results.json").write_text(json.dumps(rows, indent=2))
        (out / "table.md").write_text(table(rows) + "\n")
    print(table(rows))
    plot(rows, out / "recipes.png")
    print(f"raw-pixel kNN on the same split: {rows[0]['raw_pixel_knn_acc']:.4f}")


if __name__ == "__main__":
    main()
