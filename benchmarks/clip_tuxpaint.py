"""CLIP on openclipart, evaluated on the Tux Paint stamps: retrieval in both directions, zero-shot
classification of the 16 Tux Paint categories, and image search latency.

Issue 18's headline. Training uses only openclipart (Debian ``openclipart-svg``); a validation
split of it (10% of the captions, held out with all their images) is where every choice is
made. The Tux Paint stamps (1,033 images with human-written captions, another source) are the
test set and are never trained on or chosen with. Beside each figure: chance, both pre-trained
towers frozen and joined by the least-squares (ridge) map fitted on the same training pairs
(its strength chosen on the validation pairs), and randomly initialised towers joined the same
way — all measured in the same run.

Then ``contrastkit index`` over the 1,033 Tux Paint images and ``contrastkit search`` with text
queries: the median time per query (the query's encoding included), one query at a time.

Usage::

    python benchmarks/clip_tuxpaint.py --out runs/clip_tux              # the chosen config
    python benchmarks/clip_tuxpaint.py --out runs/clip_tux --set recipe.loss=siglip
    python benchmarks/clip_tuxpaint.py --search-only --out runs/clip_tux  # latency only

The chosen configuration (``CHOSEN``) and the validation runs that chose it are in
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from _timing import latencies

#: the configuration chosen on the openclipart validation split (see RESULTS.md)
CHOSEN = {
    "data": {"name": "openclipart", "val_size": 0.1},
    "model": {"encoder": "efficientnet_lite0", "text_encoder": "minilm"},
    "recipe": {
        "name": "clip",
        "image_size": 128,
        "lock_image": True,
        "lock_text": True,
        "crop_scale": [1.0, 1.0],
        "text_projection": "identity",
    },
    "train": {"epochs": 10, "batch_size": 256, "max_minutes": 20.0},
    "eval": {
        "report_maps": ["tsne"],
        "zero_shot_templates": ["a clip art of a {}.", "a drawing of a {}.", "an icon of a {}."],
    },
}


def _parse_set(pairs: list[str]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        node, _, name = key.partition(".")
        try:
            parsed: object = json.loads(value)
        except ValueError:
            parsed = value
        out.setdefault(node, {})[name] = parsed
    return out


def train_and_evaluate(out: Path, overrides: dict[str, dict[str, object]]) -> dict:
    from contrastkit.app.config import RunConfig
    from contrastkit.app.pipeline import run

    values = json.loads(json.dumps(CHOSEN))
    for node, items in overrides.items():
        values.setdefault(node, {}).update(items)
    values["train"]["out_dir"] = str(out)
    cfg = RunConfig.from_dict(values)
    results = run(cfg, overwrite=True)
    print(f"trained {results['epochs']} epochs in {results['train_seconds']:.0f} s")
    for line in results["summary"]:
        print(line)
    return results


def search_latency(run_dir: Path, queries: int) -> None:
    from contrastkit.app.image_text import build_image_index, load_image_search
    from contrastkit.data.clipart import load_tuxpaint

    index_dir = run_dir / "tux_index"
    t0 = time.time()
    built = build_image_index(str(run_dir), "tuxpaint", str(index_dir), backend="exact")
    print(f"indexed {len(built)} Tux Paint images in {time.time() - t0:.1f} s")
    search = load_image_search(str(index_dir))
    captions = sorted(set(load_tuxpaint(image_size=16).captions))
    g = torch.Generator().manual_seed(0)
    picked = [captions[i] for i in torch.randperm(len(captions), generator=g)[:queries].tolist()]
    median, p95, worst = latencies(lambda q: search.search([q], k=5), picked)
    print(
        f"text→image search over {len(built)} images, {len(picked)} Tux Paint captions one at "
        f"a time (encode + top-5): median {median:.1f} ms, p95 {p95:.1f} ms, max {worst:.1f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/clip_tux")
    ap.add_argument("--set", action="append", default=[], metavar="NODE.KEY=VALUE")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--search-only", action="store_true")
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, AMX "
        f"{torch.cpu._is_amx_tile_supported()}"
    )
    out = Path(args.out)
    if not args.search_only:
        train_and_evaluate(out, _parse_set(args.set))
    search_latency(out, args.queries)


if __name__ == "__main__":
    main()
