"""WiSE-FT on top of ``text_simcse_lee.py``'s MiniLM run: interpolate the SimCSE-tuned weights
with MiniLM's, θ(α) = (1 − α) · θ_MiniLM + α · θ_SimCSE, with α chosen on the same validation
signal (the mean of the lexical and topical halves MRR@10 of held-out background documents,
as in ``text_simcse_lee.py``), then score the final model at that α on Lee.

α is chosen with the model that was trained without the validation documents (the chosen
candidate's run in ``--out/minilm/<candidate>``); the same α is applied to the final model
(``--out/minilm/final``, trained on all 300 background documents + the snippets). Run after
``python benchmarks/text_simcse_lee.py --runs minilm``:

    python benchmarks/text_simcse_lee_wise.py [--out runs/text_lee]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from contrastkit.encoders.text import minilm
from contrastkit.evaluate import extract_features
from contrastkit.evaluate.text import similarity_correlation
from contrastkit.train import interpolate_weights, load_encoder
from text_simcse_lee import data, validation


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/text_lee")
    ap.add_argument("--alphas", default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1")
    args = ap.parse_args()
    out = Path(args.out)
    saved = json.loads((out / "results_minilm.json").read_text())
    res = saved["results"]
    chosen, val_docs = res["simcse_minilm"]["chosen"], saved["args"]["val_docs"]
    lee, _, _, halves = data(val_docs)
    frozen = minilm(max_length=saved["args"]["max_length"]).eval()
    tuned = load_encoder(out / "minilm" / chosen)
    curve = {}
    for a in (float(x) for x in args.alphas.split(",")):
        curve[a] = validation(interpolate_weights(frozen, tuned, a).eval(), halves)["score"]
        print(f"alpha {a:.1f}  validation score {curve[a]:.4f}", flush=True)
    best = max(curve, key=lambda a: curve[a])  # the first of equal scores: the smaller alpha
    final = interpolate_weights(frozen, load_encoder(out / "minilm" / "final"), best).eval()
    r = similarity_correlation(extract_features(final, lee.documents), lee.similarity)
    d = r["pearson"] - res["frozen_minilm"]["pearson"]
    print(
        f"SimCSE from MiniLM ({chosen}) + WiSE-FT alpha {best:.1f} (chosen on validation): "
        f"pearson {r['pearson']:.4f} ({d:+.4f} vs frozen {res['frozen_minilm']['pearson']:.4f})"
        f"  spearman {r['spearman']:.4f}",
        flush=True,
    )
    result = {"chosen": chosen, "alpha": best, "validation_curve": curve, **r}
    (out / "results_minilm_wise.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
