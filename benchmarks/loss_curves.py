"""Per-step loss curves of three same-seed runs, to compare two versions of the code.

The runs go through the command line (``contrastkit demo`` and ``contrastkit train`` with a
flat JSON config file, the format every version accepts), with each recipe's ``loss`` method
wrapped so that every training step's loss is recorded:

- ``demo``: ``contrastkit demo`` as the version under test defines it (since issue 17: SimCLR,
  small CNN, digits, 60 epochs; before it: ResNet-18 at 1/4 width, 150 epochs); both versions
  must define the same demo for the curves to be comparable;
- ``fmnist_simclr``: ``configs/fmnist_simclr.json`` for 1 epoch, without the time budget and
  without compilation (both make the run's length or numerics depend on the machine's speed);
- ``text_supcon``: text SupCon on the movie-review snippets, ``small_text`` encoder, 1 epoch.

    python benchmarks/loss_curves.py --out runs/curves_after.json [--runs demo,fmnist_simclr]
    PYTHONPATH=/path/to/old/src python benchmarks/loss_curves.py --out runs/curves_before.json
    python benchmarks/loss_curves.py --compare runs/curves_before.json runs/curves_after.json

``--compare`` prints, per run, the number of steps and the largest absolute difference of the
per-step losses.
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
import time
from pathlib import Path

RUNS = {
    "demo": None,
    "fmnist_simclr": {
        **json.loads(
            (Path(__file__).resolve().parents[1] / "configs/fmnist_simclr.json").read_text()
        ),
        "epochs": 1,
        "compile": False,
        "max_minutes": None,
        "fit_to_budget": False,
        "report": False,
    },
    "text_supcon": {
        "recipe": "text_supcon",
        "data": "movie-snippets",
        "encoder": "small_text",
        "epochs": 1,
        "batch_size": 64,
        "optimizer": "adamw",
        "lr": 1e-3,
        "report": False,
    },
}


def record(run: str, out_dir: str) -> dict:
    """Run one of RUNS through the CLI; return its per-step losses and results.json."""
    import contrastkit
    from contrastkit.cli.main import app
    from contrastkit.recipes import RECIPES

    losses: list[float] = []

    def wrap(fn):
        @functools.wraps(fn)
        def loss(self, *args, **kwargs):
            out = fn(self, *args, **kwargs)
            if self.training:
                losses.append(float(out.loss.detach()))
            return out

        return loss

    for cls, _ in RECIPES.values():
        if "loss" in vars(cls) and not hasattr(vars(cls)["loss"], "_recording"):
            cls.loss = wrap(vars(cls)["loss"])
            cls.loss._recording = True
    if run == "demo":
        args = ["demo", "--out", out_dir, "--no-progress"]
    else:
        cfg = Path(out_dir).with_suffix(".json")
        cfg.write_text(json.dumps({**RUNS[run], "out_dir": out_dir, "progress": False}))
        args = ["train", "--config", str(cfg), "--out", out_dir, "--no-progress"]
    t0 = time.time()
    try:
        app(args, standalone_mode=False)
    except SystemExit as err:  # typer.Exit inside standalone_mode=False
        if err.code:
            raise
    results = json.loads((Path(out_dir) / "results.json").read_text())
    return {
        "code": str(Path(contrastkit.__file__).parent),
        "seconds": time.time() - t0,
        "losses": losses,
        # the figures of either version: the protocol's (new) or the old per-modality dicts
        "test": results.get("evaluation") or results.get("test") or results.get("val"),
    }


def compare(before: dict, after: dict) -> None:
    for run in sorted(set(before) | set(after)):
        if run not in before or run not in after:
            print(f"{run:15s} only in {'before' if run in before else 'after'}")
            continue
        a, b = before[run]["losses"], after[run]["losses"]
        n = min(len(a), len(b))
        diff = max((abs(x - y) for x, y in zip(a[:n], b[:n])), default=float("nan"))
        print(
            f"{run:15s} steps {len(a)} vs {len(b)}  max |loss difference| {diff:.3g}  "
            f"first {a[0]:.6f} vs {b[0]:.6f}  last {a[n - 1]:.6f} vs {b[n - 1]:.6f}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/loss_curves.json")
    p.add_argument("--runs", default=",".join(RUNS))
    p.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    a = p.parse_args()
    if a.compare:
        compare(*(json.loads(Path(f).read_text()) for f in a.compare))
        return
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    found = json.loads(out.read_text()) if out.exists() else {}
    for run in a.runs.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            found[run] = record(run, str(Path(tmp) / run))
        print(f"{run}: {len(found[run]['losses'])} steps in {found[run]['seconds']:.0f} s")
        out.write_text(json.dumps(found, indent=1))


if __name__ == "__main__":
    main()
