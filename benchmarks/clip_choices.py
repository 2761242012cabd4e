"""The choices of the CLIP headline run, made on the openclipart validation split only.

1. **Tower locking** (and anything else that differs between runs): for each run folder given,
   the validation retrieval figures its results.json holds (10% of openclipart's captions held
   out with all their images, seed 0), beside the frozen-towers linear map measured on the same
   pairs. The run with the best mean validation R@5 is chosen.
2. **Prompt templates**: zero-shot classification of the validation images into openclipart's
   top-level categories (animals, buildings, food, signs and symbols, ...), with each template
   set, by the chosen run's model; the set with the best balanced accuracy is the one to use on
   Tux Paint.

No Tux Paint figure is read or printed here.

Usage::

    python benchmarks/clip_choices.py runs/clip_a runs/clip_b
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

TEMPLATE_SETS = {
    "one: 'a picture of a {}.'": ("a picture of a {}.",),
    "bare: '{}'": ("{}",),
    "default ensemble (5)": None,
    "clip art (3)": ("a clip art of a {}.", "a drawing of a {}.", "an icon of a {}."),
}


def _val_figures(run: Path) -> dict[str, float]:
    v = json.loads((run / "results.json").read_text())["validation"]
    return {
        "i2t": v["metrics.a2b_recall@5"],
        "t2i": v["metrics.b2a_recall@5"],
        "base_i2t": v["baseline.a2b_recall@5"],
        "base_t2i": v["baseline.b2a_recall@5"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+")
    args = ap.parse_args()
    best, best_score = None, -1.0
    print("validation R@5 (image→caption / caption→image), frozen towers + linear map beside:")
    for run in map(Path, args.runs):
        f = _val_figures(run)
        cfg = json.loads((run / "run.json").read_text())
        rc = cfg["recipe"]
        what = (
            f"lock_image={rc['lock_image']} lock_text={rc['lock_text']} "
            f"unlock_image_blocks={rc['unlock_image_blocks']} "
            f"text_projection={rc.get('text_projection', 'linear')} loss={rc['loss']} "
            f"epochs={cfg['train']['epochs']}"
        )
        score = (f["i2t"] + f["t2i"]) / 2
        print(
            f"  {run.name}: {f['i2t']:.3f} / {f['t2i']:.3f} (mean {score:.3f}; linear map "
            f"{f['base_i2t']:.3f} / {f['base_t2i']:.3f})  [{what}]"
        )
        if score > best_score:
            best, best_score = run, score
    assert best is not None
    print(f"chosen: {best.name}")

    import torch

    from contrastkit.app.config import RunConfig
    from contrastkit.app.pipeline import MODALITIES
    from contrastkit.app.splits import split_validation
    from contrastkit.evaluate.zero_shot import (
        DEFAULT_TEMPLATES,
        class_text_weights,
        zero_shot_figures,
        zero_shot_predict,
    )
    from contrastkit.recipes.clip import ImageTextModel

    cfg = RunConfig.from_file(best / "run.json")
    data = MODALITIES["image_text"].load(cfg.data.name, cfg)
    _, val = split_validation(data.train, cfg.data.val_size, cfg.train.seed)
    model = ImageTextModel.load(best)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        images = model.embed_images(val.images)
    classes = [c.replace("_", " ") for c in val.classes]
    print(
        f"zero-shot on the {len(val)} validation images, {len(classes)} openclipart categories "
        f"(chance {1 / len(set(val.labels.tolist())):.3f}):"
    )
    scores = {}
    for name, templates in TEMPLATE_SETS.items():
        weights = class_text_weights(model.embed_texts, classes, templates or DEFAULT_TEMPLATES)
        fig = zero_shot_figures(zero_shot_predict(images, weights), val.labels, len(classes))
        scores[name] = fig["balanced_accuracy"]
        print(
            f"  {name}: balanced accuracy {fig['balanced_accuracy']:.3f}, top-1 {fig['top1']:.3f}"
        )
    print(f"chosen templates: {max(scores, key=scores.get)}")


if __name__ == "__main__":
    main()
