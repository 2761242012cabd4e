"""SCARF on three tables under the label-fraction protocol: test accuracy at 1%, 10% and 100%
of the training labels, beside the same MLP trained from scratch, HistGradientBoosting on the
preprocessed table and the majority class, over 5 seeds.

Issue 20's acceptance figure: SCARF at 10% of the labels beats the same MLP from scratch by
≥ 2 accuracy points, averaged over the 3 tables × 5 seeds (HGB printed beside it).

Everything is fixed in advance, nothing is tuned on a test split:

- tables: ``mlc_churn``, ``wa_churn``, ``digits`` (chosen before any run); splits from
  :func:`contrastkit.data.tables.load_table_splits` with the run's seed (64/16/20% train /
  validation / test, quantile scaling fitted on train);
- the encoder: the SCARF paper's, 4 ReLU layers of 256 units (``TabularMLP``), with its
  2-layer projection head g of 256 units;
- pre-training: SCARF with the paper's corruption rate 0.6 and τ = 1, Adam at lr 0.001,
  batch 128 (the paper's), a fixed budget of ``--steps`` (5,000) steps on ALL training rows
  (labels unused): about 200 epochs of mlc_churn, 140 of wa_churn and 550 of digits.
  ``--epochs 1000`` gives the paper's 1,000 epochs instead (25,000 steps on mlc_churn, 35,000
  on wa_churn, 8,000 on digits; about 6 minutes a run on one core);
- evaluation (:func:`contrastkit.evaluate.tabular.label_fraction_eval`): for each fraction,
  the stratified subset of the training labels (``label_fraction_indices``, seeded), and
  ``probe`` (logistic regression on the frozen embeddings, C on validation), ``finetune``
  (encoder + linear head, Adam lr 0.001, batch 128, ≤ 2000 steps, validation accuracy every
  50 steps, patience 10 evaluations, best validation state kept), ``scratch`` (the same
  architecture from a random initialisation, trained exactly like ``finetune``), ``hgb``
  (its settings chosen on validation from a grid of 3), ``majority``. The whole validation
  split is used for selection at every fraction (the SCARF paper's protocol);
- "SCARF" is, per table, seed and fraction, whichever of probe and fine-tune has the better
  validation accuracy (both are printed too).

Usage::

    python benchmarks/tabular_scarf.py --out tabular_scarf.json      # 3 tables × 5 seeds
    python benchmarks/tabular_scarf.py --tables biopsy --seeds 1 --steps 50 --max-steps 50
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
from tqdm import tqdm

from _stats import mean_std

#: fixed before any run
TABLES = ("mlc_churn", "wa_churn", "digits")
FRACTIONS = (0.01, 0.1, 1.0)
#: the SCARF paper (§4): encoder 4 × 256 ReLU, head g 2 × 256, c = 0.6, τ = 1, Adam 1e-3,
#: batch 128
PAPER = {"hidden": 256, "depth": 4, "corruption_rate": 0.6, "temperature": 1.0, "lr": 1e-3,
         "batch_size": 128}  # fmt: skip


def seed_everything(seed: int) -> None:
    """Python's and torch's generators (numpy and scikit-learn draws are seeded explicitly)."""
    import random

    random.seed(seed)
    torch.manual_seed(seed)


def pretrain(data, seed: int, steps: int, show: bool):
    """SCARF on every training row (labels unused); (encoder, seconds, last mean loss)."""
    from contrastkit.encoders.tabular import TabularMLP
    from contrastkit.recipes.scarf import SCARF, SCARFConfig

    train = data.train
    seed_everything(seed)
    encoder = TabularMLP(
        train.n_numeric, train.cardinalities, hidden=PAPER["hidden"], depth=PAPER["depth"]
    )
    cfg = SCARFConfig(
        corruption_rate=PAPER["corruption_rate"], temperature=PAPER["temperature"], proj_layers=2
    )
    recipe = SCARF(encoder, cfg, reference=train.x)
    opt = torch.optim.Adam(recipe.parameters(), lr=PAPER["lr"])
    n = len(train)
    bs = min(PAPER["batch_size"], n)
    g = torch.Generator().manual_seed(seed)
    order, pos, recent = torch.randperm(n, generator=g), 0, []
    t0 = time.time()
    bar = tqdm(range(steps), desc=f"{data.name} seed {seed} SCARF", disable=not show, leave=False)
    recipe.train()
    for _ in bar:
        if pos + bs > n:  # a new pass; the last incomplete batch is dropped
            order, pos = torch.randperm(n, generator=g), 0
        idx = order[pos : pos + bs]
        pos += bs
        out = recipe.step({"table": train.x[idx], "indices": idx})
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        recent = [*recent[-49:], out.loss.item()]
        if len(recent) == 50:
            bar.set_postfix(loss=f"{statistics.mean(recent):.4f}", refresh=False)
    encoder.eval()
    return encoder, time.time() - t0, statistics.mean(recent) if recent else float("nan")


def one_run(name: str, seed: int, args, bar) -> dict:
    from contrastkit.data.tables import label_fraction_indices, load_table_splits
    from contrastkit.encoders.tabular import TabularMLP
    from contrastkit.evaluate.tabular import (
        FinetuneConfig,
        label_fraction_eval,
        select_on_validation,
    )

    t0 = time.time()
    data = load_table_splits(name, seed=seed)
    tr, va, te = data.train, data.val, data.test
    steps = args.epochs * max(1, len(tr) // PAPER["batch_size"]) if args.epochs else args.steps
    encoder, pre_s, loss = pretrain(data, seed, steps, not args.quiet)

    def factory():
        return TabularMLP(tr.n_numeric, tr.cardinalities, hidden=PAPER["hidden"],
                          depth=PAPER["depth"])  # fmt: skip

    ft = FinetuneConfig(lr=PAPER["lr"], batch_size=PAPER["batch_size"], max_steps=args.max_steps)
    r = label_fraction_eval(
        tr.x, tr.y, va.x, va.y, te.x, te.y,
        encoder_factory=factory, pretrained_encoder=encoder, fractions=FRACTIONS, seed=seed,
        n_numeric=tr.n_numeric, finetune=ft, label_subset=label_fraction_indices,
        progress=lambda msg: bar.set_postfix_str(f"{name} seed {seed}: {msg}"),
    )  # fmt: skip
    for f in FRACTIONS:
        key = f"{f:g}"
        which, acc = select_on_validation(r, f)
        r[f"scarf@{key}"] = acc
        r[f"scarf@{key}:chosen"] = which
    r.update({"pretrain_seconds": pre_s, "pretrain_loss": loss, "seconds": time.time() - t0,
              "pretrain_steps": steps,
              "rows": [len(tr), len(va), len(te)], "features": tr.num_features,
              "classes": len(tr.classes)})  # fmt: skip
    return r


METHODS = ("scarf", "probe", "finetune", "scratch", "hgb")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tables", nargs="+", default=list(TABLES))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5000, help="SCARF pre-training steps")
    ap.add_argument(
        "--epochs", type=int, default=None,
        help="pre-training epochs instead (the paper's 1000): epochs × ⌊rows / 128⌋ steps",
    )  # fmt: skip
    ap.add_argument(
        "--merge", nargs="+", default=None, metavar="JSON",
        help="print the report of runs saved by --out (e.g. tables run in two processes)",
    )  # fmt: skip
    ap.add_argument("--max-steps", type=int, default=2000, help="fine-tune / scratch step cap")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    ap.add_argument("--out", default=None, help="write every figure to this JSON file")
    args = ap.parse_args()
    if args.merge:
        runs = {}
        for path in args.merge:
            with open(path) as f:
                saved = json.load(f)
            print(f"{path}: {saved.get('machine', '')} {saved['args']}")
            runs.update({t: {int(k): r for k, r in by.items()} for t, by in saved["runs"].items()})
        seeds = min(len(by) for by in runs.values())
        report(runs, seeds, args.out, {"merged": args.merge})
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    budget = f"{args.epochs} epochs" if args.epochs else f"{args.steps} steps"
    machine = (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads; "
        f"torch {torch.__version__}"
    )
    print(
        f"machine: {machine}; tables {args.tables}, {args.seeds} seeds, pre-training {budget}, "
        f"fine-tune cap {args.max_steps} steps"
    )
    runs: dict[str, dict[int, dict]] = {}
    bar = tqdm(total=len(args.tables) * args.seeds, desc="runs", disable=args.quiet)
    for name in args.tables:
        runs[name] = {}
        for seed in range(args.seeds):
            bar.set_postfix_str(f"{name} seed {seed}: pre-training")
            r = one_run(name, seed, args, bar)
            runs[name][seed] = r
            bar.update()
            line = " | ".join(
                f"{m}@{f:g} {r[f'{m}@{f:g}']:.3f}" for f in FRACTIONS for m in ("scarf", "scratch", "hgb")
            )  # fmt: skip
            tqdm.write(
                f"{name} seed {seed}: {line} | majority {r['majority']:.3f} "
                f"({r['seconds']:.0f} s, pre-training {r['pretrain_seconds']:.0f} s, "
                f"loss {r['pretrain_loss']:.3f})"
            )
    bar.close()
    report(runs, args.seeds, args.out, {"args": vars(args), "machine": machine})


def report(runs: dict[str, dict[int, dict]], seeds: int, out: str | None, meta: dict) -> None:
    """Print the tables and the acceptance line of ``runs`` (table → seed → figures); write
    them with ``meta`` to ``out`` (JSON) when given."""
    figures: dict[str, dict] = {}
    every: dict[str, list[float]] = {}
    for name, by_seed in runs.items():
        per = {
            f"{m}@{f:g}": [r[f"{m}@{f:g}"] for r in by_seed.values()]
            for f in FRACTIONS
            for m in METHODS
        }
        per["majority"] = [r["majority"] for r in by_seed.values()]
        per["gain@0.1"] = [r["scarf@0.1"] - r["scratch@0.1"] for r in by_seed.values()]
        for k, v in per.items():
            every.setdefault(k, []).extend(v)
        figures[name] = mean_std(per)
    figures["overall"] = mean_std(every)
    print(
        f"\ntest accuracy, mean ± std over {seeds} seed(s); SCARF = probe or fine-tune, "
        f"whichever is better on validation"
    )
    names = ("SCARF", "probe", "fine-tune", "scratch", "HGB", "majority")
    print(f"{'table':12s}{'labels':>7s}" + "".join(f"{n:>15s}" for n in names))
    for name, stats in figures.items():
        for f in FRACTIONS:
            keys = [f"{m}@{f:g}" for m in METHODS] + ["majority"]
            cells = "".join(f"{stats[k][0]:>9.3f}±{stats[k][1]:.3f}" for k in keys)
            print(f"{name:12s}{100 * f:>6g}%{cells}")

    overall = figures["overall"]
    gain = overall["gain@0.1"][0]
    print(
        f"\nacceptance: SCARF − scratch at 10% labels, mean over {len(runs)} tables × "
        f"{seeds} seeds: {100 * gain:+.2f} points (needs ≥ +2.00): "
        f"{'PASS' if gain >= 0.02 else 'FAIL'}"
    )
    for name in runs:
        g = figures[name]["gain@0.1"]
        print(f"  {name:12s} {100 * g[0]:+.2f} ± {100 * g[1]:.2f} points")
    print(
        f"  beside it at 10%: SCARF {overall['scarf@0.1'][0]:.3f}, scratch "
        f"{overall['scratch@0.1'][0]:.3f}, HGB {overall['hgb@0.1'][0]:.3f}, majority "
        f"{overall['majority'][0]:.3f}"
    )
    chosen = [
        r[f"scarf@{f:g}:chosen"] for by in runs.values() for r in by.values() for f in FRACTIONS
    ]
    print(f"  SCARF's choice on validation: probe {chosen.count('probe')}, "
          f"fine-tune {chosen.count('finetune')}")  # fmt: skip
    secs = [r["seconds"] for by in runs.values() for r in by.values()]
    print(
        f"wall time per table-seed run: mean {statistics.mean(secs):.0f} s, max {max(secs):.0f} s "
        f"(limit 600 s: {'ok' if max(secs) <= 600 else 'OVER'})"
    )
    if out:
        with open(out, "w") as f:
            json.dump({**meta, "paper": PAPER, "fractions": FRACTIONS,
                       "figures": figures, "runs": runs}, f, indent=2)  # fmt: skip
        print(f"figures written to {out}")


if __name__ == "__main__":
    main()
