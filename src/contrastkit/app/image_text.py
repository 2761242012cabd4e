"""Image–text pieces of the pipeline: data, towers, the evaluation with its baselines.

Training the ``clip`` recipe (CLIP or SigLIP) is :func:`contrastkit.app.pipeline.run`, as for
every modality. The data is:

- ``openclipart``: Debian's public-domain clip art for training, the Tux Paint stamps (another
  source, human-written captions) as the test split: a transfer test
  (:mod:`contrastkit.data.clipart`);
- a table (.csv/.tsv/.jsonl with ``image`` and ``caption`` columns) or a caption folder (each
  image with a same-name ``.txt``): ``test_fraction`` of its captions held out as the test
  split, every image of a held-out caption with it (seeded).

The image tower is ``model.encoder`` (``efficientnet_lite0`` with its ImageNet weights,
``resnet18``, ``small_cnn``); the text tower ``model.text_encoder`` (``minilm``, ``small_text``,
an exported or Hugging Face folder).

Evaluation (:func:`evaluate_image_text`), on the test split and, for choices, the validation
split: retrieval in both directions (R@1/5/10, MRR, median rank; images sharing a caption are
interchangeable), beside chance, the frozen pre-trained towers joined by the least-squares map
fitted on the training pairs (ridge, its strength chosen on the validation pairs) and the
randomly initialised towers joined the same way; with categories, zero-shot classification from
the class names and prompt templates beside the same frozen-towers map.

Example:
    >>> from contrastkit.app.image_text import load_image_text_data
    >>> data = load_image_text_data("openclipart", 64)  # doctest: +SKIP
    >>> len(data.test)  # doctest: +SKIP
    1033
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ImageTextSplits",
    "build_clip_recipe",
    "evaluate_image_text",
    "fit_linear_map",
    "load_image_text_data",
    "report_grids",
]

#: built-in image–text sets: name → (training set loader, test set loader) in data.clipart
BUILT_IN = ("openclipart",)


@dataclass
class ImageTextSplits:
    """Training and test pairs (:class:`~contrastkit.data.pairs.ImageTextSet`)."""

    train: Any
    test: Any
    name: str
    protocol: str = "retrieval"
    note: str = ""


def load_image_text_data(
    name: str, image_size: int = 64, *, test_fraction: float = 0.2, seed: int = 0
) -> ImageTextSplits:
    """The pairs of ``name``: ``openclipart`` (test: Tux Paint), or a table / caption folder
    with ``test_fraction`` of its captions held out (seeded)."""
    from contrastkit.app.splits import group_split
    from contrastkit.data.pairs import load_image_text

    if name == "openclipart":
        from contrastkit.data.clipart import load_openclipart, load_tuxpaint

        return ImageTextSplits(
            load_openclipart(image_size=image_size),
            load_tuxpaint(image_size=image_size),
            "openclipart",
            note=(
                "trained on openclipart, tested on the 1,033 Tux Paint stamps (another source "
                "with human-written captions): a transfer test."
            ),
        )
    if name == "tuxpaint":
        raise ValueError(
            "tuxpaint is the held-out test set of the image–text runs; train on openclipart "
            "(--data openclipart, tested on tuxpaint) or on your own pairs (a .csv/.jsonl or a "
            "caption folder)."
        )
    path = Path(name)
    if not path.exists():
        raise FileNotFoundError(
            f"no image–text data {name!r}: give openclipart, a .csv/.tsv/.jsonl with image and "
            "caption columns, or a folder of images each with a same-name .txt caption."
        )
    pairs = load_image_text(path, image_size=image_size)
    fit, held = group_split(pairs.caption_ids, test_fraction, seed)
    if len(fit) < 2 or len(held) < 2:
        raise ValueError(
            f"{name} has {len(pairs)} pairs: too few to hold a test split out; give at least "
            "10 image–caption pairs."
        )
    return ImageTextSplits(
        pairs.subset(fit, name=f"{pairs.name} (train)"),
        pairs.subset(held, name=f"{pairs.name} (test)"),
        pairs.name,
        note=(
            f"test split: {len(held)} pairs ({test_fraction:.0%} of the captions, seed {seed}) "
            f"held out of {name}; every image of a held-out caption with it."
        ),
    )


def build_clip_recipe(cfg: Any, train: Any) -> tuple[Any, str]:
    """The ``clip`` recipe of ``cfg`` (a :class:`~contrastkit.app.config.RunConfig`): the image
    tower ``model.encoder``, the text tower ``model.text_encoder``; (recipe, image encoder
    name)."""
    from contrastkit.app.text import build_text_encoder
    from contrastkit.encoders import build_encoder

    m = cfg.model
    rc = cfg.recipe_config()
    if m.encoder == "efficientnet_lite0":
        image = build_encoder(m.encoder, in_channels=3, input_size=rc.image_size)
    elif m.encoder.startswith("resnet"):
        small = m.small_input if m.small_input is not None else rc.image_size <= 64
        image = build_encoder(m.encoder, in_channels=3, small_input=small, width=m.width)
    elif m.encoder == "small_cnn":
        image = build_encoder(m.encoder, in_channels=3, width=int(max(8, m.width * 128)))
    else:
        raise ValueError(
            f"the clip recipe's image tower is efficientnet_lite0, resnet18/34/50 or small_cnn, "
            f"got --encoder {m.encoder!r}."
        )
    text = build_text_encoder(
        m.text_encoder, list(train.captions), max_length=m.max_length, width=m.text_width
    )
    # pre-trained towers are tuned at recipe.tower_lr × the base rate
    image.pretrained = m.encoder == "efficientnet_lite0"
    text.pretrained = m.text_encoder not in ("small_text", "small_bag")
    return cfg.recipe_class(image, text, rc), m.encoder


# ------------------------------------------------------------------------------ evaluation
def fit_linear_map(
    x: Tensor, y: Tensor, x_val: Tensor, y_val: Tensor, ids_val: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor, float]:
    """Ridge regression from image features ``x`` to text features ``y`` (both standardised
    on the training rows); its strength is the one of a grid that retrieves best on the
    validation pairs (mean R@5 of both directions).

    Args:
        x, y: (N, D_i) image and (N, D_t) text features of the training pairs.
        x_val, y_val, ids_val: the validation pairs and their caption ids.

    Returns:
        (stats, mean_y, W, λ): ``stats`` (2, D_i) holds the images' mean and scale; an image
        maps to ``((x - stats[0]) / stats[1]) @ W`` and is compared (cosine) with its text's
        ``y - mean_y``.
    """
    from contrastkit.evaluate.protocols.retrieval import first_hit_ranks

    mx, sx = x.mean(0), x.std(0) + 1e-6
    my = y.mean(0)
    xs, yc = (x - mx) / sx, y - my
    gram, cross = xs.T @ xs, xs.T @ yc
    best: tuple[float, Tensor, float] | None = None
    xv = (x_val - mx) / sx
    yv = F.normalize(y_val - my, dim=1)
    eye = torch.eye(xs.shape[1], dtype=xs.dtype)
    for lam in (1.0, 10.0, 100.0, 1e3, 1e4):
        w = torch.linalg.solve(gram + lam * len(xs) / 1000 * eye, cross)
        zi = F.normalize(xv @ w, dim=1)
        r = [first_hit_ranks(q, k, ids_val, ids_val) for q, k in ((zi, yv), (yv, zi))]
        score = float(sum((ranks <= 5).double().mean() for ranks in r)) / 2
        if best is None or score > best[0]:
            best = (score, w, lam)
    assert best is not None
    return torch.stack([mx, sx]), my, best[1], best[2]


def _features(towers: tuple[Any, Any], rows: Any, size: int, bf16: bool) -> tuple[Tensor, Tensor]:
    """(image features (N, D_i), text features (N, D_t)) of a tower pair: the towers' own
    pooled outputs, before any projection; images resized to ``size``."""
    image, text = towers
    out = []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(rows.images), 256):
            x = _resize(rows.images[start : start + 256], size)
            out.append(image(x.to(_device(image))).float().cpu())
        t = text.encode(list(rows.captions), batch_size=256)
    return torch.cat(out), t.float()


def _device(module: torch.nn.Module) -> torch.device:
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _resize(images: Tensor, size: int) -> Tensor:
    from contrastkit.augment import to_float_images

    x = to_float_images(images)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear")
    return x


def _random_towers(image: torch.nn.Module, text: torch.nn.Module, seed: int) -> tuple[Any, Any]:
    """Copies of the two towers with every parameter re-initialised (seeded)."""
    torch.manual_seed(seed)
    out = []
    for tower in (image, text):
        fresh = copy.deepcopy(tower)
        for module in fresh.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        out.append(fresh.eval())
    return tuple(out)


def _mapped_baseline(
    towers: tuple[Any, Any], size: int, train: Any, val: Any, rows: list[Any], bf16: bool
) -> tuple[list[tuple[Tensor, Tensor]], Any]:
    """Features of ``rows`` by a (frozen) tower pair, joined by the ridge map fitted on
    ``train`` (λ chosen on ``val``): [(images in text space, texts)] and the map."""
    fx, fy = _features(towers, train, size, bf16)
    vx, vy = _features(towers, val, size, bf16)
    stats, my, w, lam = fit_linear_map(fx, fy, vx, vy, val.caption_ids)
    out = []
    for r in rows:
        rx, ry = _features(towers, r, size, bf16)
        out.append((((rx - stats[0]) / stats[1]) @ w, ry - my))
    return out, (stats, my, w, lam)


def evaluate_image_text(
    recipe: Any,
    frozen: tuple[Any, Any] | None,
    train: Any,
    val: Any,
    test: Any,
    *,
    templates: tuple[str, ...] | None = None,
    bf16: bool = False,
    seed: int = 0,
    random_baseline: bool = True,
) -> tuple[Any, Any, dict[str, Any], tuple[Tensor, Tensor]]:
    """Evaluate a trained ``clip`` recipe on ``test`` (and ``val``): returns (test result,
    validation result, zero-shot figures or {}, (test image embeddings, test caption
    embeddings)).

    Args:
        recipe: the trained :class:`~contrastkit.recipes.clip.CLIP`.
        frozen: the towers as they were before training (image, text), for the frozen-towers
            baseline; None skips it (chance is then the headline baseline).
        train, val, test: :class:`~contrastkit.data.pairs.ImageTextSet` (the map is fitted on
            ``train``, its ridge strength chosen on ``val``).
        templates: zero-shot prompt templates (default
            :data:`~contrastkit.evaluate.zero_shot.DEFAULT_TEMPLATES`).
        random_baseline: also the randomly initialised towers, joined the same way.
    """
    from contrastkit.evaluate.protocols import get_protocol
    from contrastkit.evaluate.zero_shot import (
        DEFAULT_TEMPLATES,
        class_text_weights,
        zero_shot_figures,
        zero_shot_predict,
    )
    from contrastkit.recipes.clip import ImageTextModel

    model = ImageTextModel.from_recipe(recipe)
    was = recipe.training
    recipe.eval()
    try:
        emb = {
            name: (
                model.embed_images(r.images, bf16=bf16),
                model.embed_texts(r.captions, bf16=bf16),
            )
            for name, r in (("val", val), ("test", test))
        }
    finally:
        recipe.train(was)
    p = get_protocol("retrieval")
    names = {"a_name": "image", "b_name": "caption"}
    base: dict[str, tuple[Tensor, Tensor]] = {}
    others: dict[str, dict[str, dict[str, float]]] = {"val": {}, "test": {}}
    frozen_map = None
    if frozen is not None:
        for tower in frozen:
            tower.eval()
        size = recipe.config.image_size
        (bv, bt), frozen_map = _mapped_baseline(frozen, size, train, val, [val, test], bf16)
        base = {"val": bv, "test": bt}
        if random_baseline:
            rand = _random_towers(frozen[0], frozen[1], seed)
            (rv, rt), _ = _mapped_baseline(rand, size, train, val, [val, test], bf16)
            for split, (ra, rb), r in (("val", rv, val), ("test", rt, test)):
                others[split]["random towers + linear map"] = p.evaluate(
                    ra, rb, ids=r.caption_ids, split=split, **names
                ).metrics
    results = {}
    for split, r in (("val", val), ("test", test)):
        kw: dict[str, Any] = {"ids": r.caption_ids, "split": split, **names}
        if split in base:
            kw.update(
                baseline_a=base[split][0],
                baseline_b=base[split][1],
                baseline_name="frozen towers + linear map",
            )
        res = p.evaluate(*emb[split], **kw)
        res.other_baselines.update(others[split])
        res.details["temperature"] = model.temperature
        if frozen_map is not None:
            res.details["linear_map_ridge"] = frozen_map[3]
        results[split] = res
    zero_shot: dict[str, Any] = {}
    if test.labels is not None and len(test.classes) > 1:
        templates = tuple(templates or DEFAULT_TEMPLATES)
        classes = [c.replace("_", " ") for c in test.classes]
        weights = class_text_weights(lambda t: model.embed_texts(t, bf16=bf16), classes, templates)
        zero_shot = zero_shot_figures(
            zero_shot_predict(emb["test"][0], weights), test.labels, len(test.classes)
        )
        zero_shot["classes"] = list(test.classes)
        zero_shot["templates"] = list(templates)
        if frozen_map is not None:
            my = frozen_map[1]
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                prompts = frozen[1].encode  # the frozen text tower, centred as the map was
                fw = class_text_weights(lambda t: prompts(t).float() - my, classes, templates)
            b = zero_shot_figures(
                zero_shot_predict(base["test"][0], fw), test.labels, len(test.classes)
            )
            zero_shot["baseline"] = {k: v for k, v in b.items() if k != "confusion_matrix"}
            zero_shot["baseline_name"] = "frozen towers + linear map"
    return results["test"], results["val"], zero_shot, emb["test"]


def report_grids(
    rows: Any, image_emb: Tensor, text_emb: Tensor, samples: int = 6, seed: int = 0
) -> dict[str, Any]:
    """What the report's retrieval grids show: for ``samples`` captions (seeded) the top-5
    images, for ``samples`` images the top-5 captions; hits marked."""
    g = torch.Generator().manual_seed(seed)
    n = len(rows)
    pick = torch.randperm(n, generator=g)[:samples].tolist()
    ids = rows.caption_ids
    t2i = []
    for i in pick:
        order = (image_emb @ text_emb[i]).argsort(descending=True)[:5].tolist()
        t2i.append(
            {
                "caption": rows.captions[i],
                "images": [rows.images[j] for j in order],
                "hits": [bool(ids[j] == ids[i]) for j in order],
            }
        )
    first: dict[int, int] = {}  # one row per distinct caption
    for i, t in enumerate(ids.tolist()):
        first.setdefault(t, i)
    cap_rows = sorted(first.values())
    i2t = []
    for i in pick:
        sims = text_emb[cap_rows] @ image_emb[i]
        order = sims.argsort(descending=True)[:5].tolist()
        i2t.append(
            {
                "image": rows.images[i],
                "captions": [rows.captions[cap_rows[j]] for j in order],
                "hits": [bool(ids[cap_rows[j]] == ids[i]) for j in order],
            }
        )
    return {"text_to_image": t2i, "image_to_text": i2t}


# ------------------------------------------------------------------ index, search, zero-shot
def load_images_for(data: str, image_size: int) -> Any:
    """Images to index or classify: ``tuxpaint`` / ``openclipart`` (the built-in sets), a
    table or caption folder (:func:`~contrastkit.data.pairs.load_image_text`), or a folder of
    images without captions (every image under it; its top-level folder is its category when
    the images sit in sub-folders). Returns an
    :class:`~contrastkit.data.pairs.ImageTextSet` (captions: the file paths, when there are no
    captions)."""
    from contrastkit.data.pairs import PAIR_IMAGE_SUFFIXES, ImageTextSet, load_image_text

    if data in ("tuxpaint", "openclipart"):
        from contrastkit.data import clipart

        loader = clipart.load_tuxpaint if data == "tuxpaint" else clipart.load_openclipart
        return loader(image_size=image_size)
    root = Path(data)
    if not root.exists():
        raise FileNotFoundError(
            f"no images at {data!r}: give tuxpaint, openclipart, a folder of images, a caption "
            "folder or a .csv/.tsv/.jsonl of image paths and captions."
        )
    if root.is_file() or any(p.suffix == ".txt" for p in root.rglob("*.txt")):
        return load_image_text(root, image_size=image_size)
    from contrastkit.data.pairs import read_image

    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in PAIR_IMAGE_SUFFIXES)
    images, paths, bad = [], [], []
    for p in files:
        try:
            images.append(torch.from_numpy(read_image(p, image_size)))
            paths.append(str(p))
        except ValueError:
            bad.append(p)
    if not images:
        raise ValueError(f"{data} holds no readable image ({len(bad)} unreadable).")
    if bad:
        import warnings

        warnings.warn(
            f"skipped {len(bad)} unreadable images of {data} (e.g. {bad[0]}).", stacklevel=2
        )
    tops = [Path(p).relative_to(root).parts for p in paths]
    labels, classes = None, []
    if all(len(t) > 1 for t in tops):
        classes = sorted({t[0] for t in tops})
        labels = torch.tensor([classes.index(t[0]) for t in tops], dtype=torch.long)
    return ImageTextSet(
        torch.stack(images), list(paths), name=root.name, paths=paths, labels=labels,
        classes=classes,
    )  # fmt: skip


def build_image_index(
    run: str, data: str, out: str, *, backend: str = "auto", batch_size: int = 256
) -> Any:
    """Embed the images of ``data`` (:func:`load_images_for`) with the image tower of the
    image–text model in ``run`` and save an :class:`~contrastkit.index.EmbeddingIndex` in
    ``out``: ids are the image paths, texts their captions (or paths); ``meta`` names the
    model, so :func:`load_image_search` pairs them again."""
    from contrastkit.index import EmbeddingIndex
    from contrastkit.recipes.clip import ImageTextModel

    model = ImageTextModel.load(run)
    rows = load_images_for(data, model.image_size)
    emb = model.embed_images(rows.images, batch_size=batch_size)
    paths = list(rows.paths or [f"row {i}" for i in range(len(rows))])
    unique = [f"{p}#{i}" if paths.count(p) > 1 else p for i, p in enumerate(paths)]
    meta = {"encoder": str(Path(run).resolve()), "kind": "image_text", "data": str(data)}
    index = EmbeddingIndex(emb.shape[1], backend=backend, meta=meta)
    index.add(emb, unique, list(rows.captions))
    index.save(out)
    return index


class ImageSearch:
    """Search an image index with text queries (text→image) or image files (image→image).

    Args:
        model: the :class:`~contrastkit.recipes.clip.ImageTextModel` that built the index.
        index: the :class:`~contrastkit.index.EmbeddingIndex` of its image embeddings.

    Example:
        >>> search = load_image_search("runs/tux-index")  # doctest: +SKIP
        >>> [h.id for h in search.search(["a red car"], k=3)[0]]  # doctest: +SKIP
    """

    def __init__(self, model: Any, index: Any) -> None:
        self.model = model
        self.index = index

    def encode(self, queries: list[str]) -> Tensor:
        """(Q, E) query embeddings: an existing image file is embedded by the image tower,
        anything else as text by the text tower."""
        from contrastkit.data.pairs import PAIR_IMAGE_SUFFIXES, read_image

        out = torch.empty(len(queries), self.model.out_dim)
        texts = [i for i, q in enumerate(queries) if not _is_image_file(q, PAIR_IMAGE_SUFFIXES)]
        images = [i for i in range(len(queries)) if i not in set(texts)]
        if texts:
            out[texts] = self.model.embed_texts([queries[i] for i in texts])
        if images:
            pics = [torch.from_numpy(read_image(queries[i], self.model.image_size)) for i in images]
            out[images] = self.model.embed_images(torch.stack(pics))
        return out

    def search(self, queries: list[str], k: int = 10) -> list[list[Any]]:
        """The ``k`` closest images of each query (lists of :class:`SearchHit`)."""
        return self.index.search(self.encode(list(queries)), k)


def _is_image_file(query: str, suffixes: set[str]) -> bool:
    p = Path(query)
    return p.suffix.lower() in suffixes and p.is_file()


def load_image_search(folder: str, backend: str | None = None) -> ImageSearch:
    """Load an image index written by :func:`build_image_index` with its model."""
    from contrastkit.index import EmbeddingIndex
    from contrastkit.recipes.clip import ImageTextModel

    index = EmbeddingIndex.load(folder, backend)
    return ImageSearch(ImageTextModel.load(index.meta["encoder"]), index)


def zero_shot(
    run: str,
    data: str,
    classes: list[str] | None = None,
    templates: list[str] | None = None,
) -> dict[str, Any]:
    """Classify the images of ``data`` (:func:`load_images_for`) among ``classes`` (default:
    the data's categories) from their names and prompt ``templates`` alone, with the
    image–text model in ``run``. Returns the predictions and, when the images have categories
    named like the classes, top-1, balanced accuracy, chance and the confusion matrix."""
    from contrastkit.evaluate.zero_shot import (
        DEFAULT_TEMPLATES,
        class_text_weights,
        zero_shot_figures,
        zero_shot_predict,
    )
    from contrastkit.recipes.clip import ImageTextModel

    model = ImageTextModel.load(run)
    rows = load_images_for(data, model.image_size)
    names = list(classes or [c.replace("_", " ") for c in rows.classes])
    if len(names) < 2:
        raise ValueError(
            f"{data} has no categories to take class names from; give two or more with "
            "--classes a,b,c."
        )
    templates = list(templates or DEFAULT_TEMPLATES)
    weights = class_text_weights(model.embed_texts, names, templates)
    pred = zero_shot_predict(model.embed_images(rows.images), weights)
    out: dict[str, Any] = {
        "data": str(data),
        "images": len(rows),
        "classes": names,
        "templates": templates,
        "predictions": [
            {"image": p, "class": names[int(c)]}
            for p, c in zip(rows.paths or rows.captions, pred.tolist())
        ],
    }
    if rows.labels is not None and rows.classes:
        key = {n.lower().replace("_", " "): i for i, n in enumerate(names)}
        own = [key.get(c.lower().replace("_", " ")) for c in rows.classes]
        if any(i is None for i in own):
            missing = [c for c, i in zip(rows.classes, own) if i is None]
            out["note"] = (
                f"no figures: the images' categories {missing[:5]} are not among the classes "
                "given; name every category in --classes to score the predictions."
            )
        else:
            labels = torch.tensor([own[int(y)] for y in rows.labels], dtype=torch.long)
            out.update(zero_shot_figures(pred, labels, len(names)))
    return out
