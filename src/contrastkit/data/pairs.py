"""Image–caption pairs for image–text training (CLIP, SigLIP): the user's formats, loaded offline.

Formats (:func:`load_image_text`):

- a table: ``.csv`` / ``.tsv`` / ``.jsonl`` with an image path column (``image``) and a caption
  column (``caption``); relative paths are read from the table's folder;
- a caption folder: images anywhere under a root, each with a same-name ``.txt`` beside it
  whose first non-empty line is the caption (the layout many training tools use); the image's
  top-level folder under the root is its category (``labels``, ``classes``);
- a Hugging Face ``datasets.Dataset`` (:func:`pairs_from_dataset`) whose image column holds
  PIL images, paths or ``{"path": ..., "bytes": ...}`` records.

Every image becomes an RGB square of ``image_size`` pixels: transparency is composited on
white, the image is scaled to fit with its aspect ratio kept and centred on white (no
stretching). SVG files are rasterised with ``cairosvg`` (``pip install 'contrastkit[clip]'``).

Bad rows (a missing file, an unreadable image, an empty caption) are skipped and reported in one
warning, by count and example, as image folders are; ``on_error="raise"`` stops at the first.

Equal captions share a ``caption_ids`` value, so a contrastive loss given those ids does not push
apart two images with the same caption.

Example:
    >>> import pathlib, tempfile
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> Image.new("RGBA", (40, 20), (255, 0, 0, 255)).save(root / "red.png")
    >>> _ = (root / "pairs.csv").write_text("image,caption\\nred.png,a red bar\\n")
    >>> pairs = load_image_text(root / "pairs.csv", image_size=16)
    >>> pairs.images.shape, pairs.captions
    (torch.Size([1, 3, 16, 16]), ['a red bar'])
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from contrastkit.data.text import TABLE_SUFFIXES, _read_table

__all__ = [
    "ImageTextSet",
    "caption_ids",
    "load_caption_folder",
    "load_image_table",
    "load_image_text",
    "pairs_from_dataset",
    "read_image",
]

#: image files a caption folder or table may name (SVG needs cairosvg)
PAIR_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".svg"}


@dataclass
class ImageTextSet:
    """Images with one caption each.

    Attributes:
        images: uint8 (N, 3, S, S) RGB images, letterboxed on white.
        captions: N caption strings.
        caption_ids: (N,) int64; rows with the same caption (after whitespace is normalised)
            share an id, so they are positives of each other, never negatives.
        name: the data set's name.
        paths: where each image came from (a file path, or ``row <i>`` for in-memory data).
        labels: (N,) int64 category of each image, or None (a caption folder's top folder).
        classes: category names, indexed by label.
    """

    images: Tensor
    captions: list[str]
    caption_ids: Tensor = field(default=None)  # type: ignore[assignment]
    name: str = ""
    paths: list[str] | None = None
    labels: Tensor | None = None
    classes: list[str] = field(default_factory=list)

    #: the kind of each field of :meth:`rows` (see :mod:`contrastkit.data.fields`)
    fields: ClassVar[dict[str, str]] = {
        "images": "image",
        "texts": "text",
        "caption_ids": "ids",
        "indices": "ids",
    }
    #: the evaluation protocol: each image finds its caption, each caption its image
    protocol: ClassVar[str] = "retrieval"

    def __post_init__(self) -> None:
        if self.images.dim() != 4 or self.images.dtype != torch.uint8:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {self.images.dtype} "
                f"{tuple(self.images.shape)}."
            )
        if len(self.captions) != len(self.images):
            raise ValueError(
                f"{len(self.images)} images but {len(self.captions)} captions; give one each."
            )
        if self.caption_ids is None:
            self.caption_ids = caption_ids(self.captions)

    def __len__(self) -> int:
        return len(self.captions)

    def subset(
        self, index: Tensor | np.ndarray | list[int], name: str | None = None
    ) -> ImageTextSet:
        """The rows ``index`` as a new set (caption ids kept, so duplicates stay linked)."""
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        rows = idx.tolist()
        return ImageTextSet(
            images=self.images[idx],
            captions=[self.captions[i] for i in rows],
            caption_ids=self.caption_ids[idx],
            name=name or self.name,
            paths=None if self.paths is None else [self.paths[i] for i in rows],
            labels=None if self.labels is None else self.labels[idx],
            classes=list(self.classes),
        )

    def rows(self, index: Tensor) -> dict[str, Any]:
        """A batch: ``images`` (B, 3, S, S) uint8, ``texts`` (B captions), ``caption_ids``
        and ``indices``."""
        rows = index.tolist()
        return {
            "images": self.images[index],
            "texts": [self.captions[i] for i in rows],
            "caption_ids": self.caption_ids[index],
            "indices": index,
        }


def caption_ids(captions: list[str]) -> Tensor:
    """(N,) int64 ids, equal for captions equal after whitespace is normalised (first-seen
    order)."""
    seen: dict[str, int] = {}
    return torch.tensor(
        [seen.setdefault(" ".join(c.split()), len(seen)) for c in captions], dtype=torch.long
    )


# ------------------------------------------------------------------------------ one image
def _rasterise_svg(data: bytes, size: int) -> Any:
    try:
        import cairosvg
    except ImportError:
        raise ValueError(
            "reading SVG needs cairosvg: pip install 'contrastkit[clip]' (or pip install cairosvg)"
        ) from None
    from PIL import Image

    try:
        png = cairosvg.svg2png(bytestring=data, output_width=size * 2)
    except Exception:  # some SVGs reference external files: cairosvg's unsafe mode reads them
        try:
            png = cairosvg.svg2png(bytestring=data, output_width=size * 2, unsafe=True)
        except Exception as err:  # cairosvg fails in many ways on malformed drawings
            raise ValueError(f"cairosvg cannot draw it ({type(err).__name__}: {err})") from None
    return Image.open(io.BytesIO(png))


def read_image(source: Any, size: int) -> np.ndarray:
    """An image (a path, bytes, or a PIL image) → uint8 (3, size, size): transparency
    composited on white, scaled to fit with its aspect ratio kept, centred on white.

    Raises:
        ValueError: the image cannot be read (the message says why).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        if isinstance(source, Image.Image):
            im = source
        else:
            data = Path(source).read_bytes() if isinstance(source, (str, os.PathLike)) else source
            svg = (
                isinstance(source, (str, os.PathLike)) and str(source).lower().endswith(".svg")
            ) or (data[:256].lstrip().startswith((b"<svg", b"<?xml")))
            im = _rasterise_svg(data, size) if svg else Image.open(io.BytesIO(data))
        im.load()
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            im = Image.new("RGB", rgba.size, (255, 255, 255))
            im.paste(rgba, mask=rgba.getchannel("A"))
        else:
            im = im.convert("RGB")
        scale = size / max(im.size)
        w, h = max(1, round(im.width * scale)), max(1, round(im.height * scale))
        im = im.resize((w, h), Image.Resampling.BICUBIC)
        canvas = Image.new("RGB", (size, size), (255, 255, 255))
        canvas.paste(im, ((size - w) // 2, (size - h) // 2))
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
        raise ValueError(" ".join(str(err).split()) or type(err).__name__) from None
    return np.ascontiguousarray(np.asarray(canvas, dtype=np.uint8).transpose(2, 0, 1))


# -------------------------------------------------------------------------------- loading
class _Rows:
    """Collects good rows and reports the bad ones (by reason, with examples) once."""

    def __init__(self, source: str, size: int, on_error: str) -> None:
        if on_error not in ("warn", "raise"):
            raise ValueError(f"on_error must be 'warn' or 'raise', got {on_error!r}.")
        self.source, self.size, self.on_error = source, size, on_error
        self.images: list[np.ndarray] = []
        self.captions: list[str] = []
        self.paths: list[str] = []
        self.categories: list[str] = []
        self.bad: dict[str, list[str]] = {}
        self.seen = 0

    def add(self, where: str, image: Any, caption: Any, category: str = "") -> None:
        self.seen += 1
        text = " ".join(str(caption).split()) if caption is not None else ""
        if not text:
            return self._skip("empty caption", where)
        if isinstance(image, (str, os.PathLike)) and not Path(image).is_file():
            return self._skip("missing file", f"{where}: {image}")
        try:
            arr = read_image(image, self.size)
        except ValueError as err:
            return self._skip("unreadable image", f"{where}: {err}")
        self.images.append(arr)
        self.captions.append(text)
        self.paths.append(str(image) if isinstance(image, (str, os.PathLike)) else where)
        self.categories.append(category)

    def skip(self, reason: str, example: str) -> None:
        """A row read and found bad before :meth:`add` could look at it."""
        self.seen += 1
        self._skip(reason, example)

    def _skip(self, reason: str, example: str) -> None:
        if self.on_error == "raise":
            raise ValueError(
                f"{self.source}: {reason} ({example}); fix or remove the row, or load with "
                "on_error='warn' to skip bad rows."
            )
        self.bad.setdefault(reason, []).append(example)

    def finish(self, name: str, categories: bool = False) -> ImageTextSet:
        if self.bad:
            n = sum(len(v) for v in self.bad.values())
            parts = [
                f"{len(v)} {reason} (e.g. {'; '.join(v[:2])})" for reason, v in self.bad.items()
            ]
            warnings.warn(
                f"skipped {n} of {self.seen} rows of {self.source}: {', '.join(parts)}.",
                stacklevel=3,
            )
        if not self.images:
            raise ValueError(
                f"no usable image–caption pairs in {self.source} ({self.seen} rows read); "
                "check the image paths and caption column."
            )
        labels, classes = None, []
        if categories and any(self.categories):
            classes = sorted(set(self.categories))
            labels = torch.tensor([classes.index(c) for c in self.categories], dtype=torch.long)
        return ImageTextSet(
            images=torch.from_numpy(np.stack(self.images)),
            captions=self.captions,
            name=name,
            paths=self.paths,
            labels=labels,
            classes=classes,
        )


def load_image_table(
    path: str | os.PathLike,
    *,
    image_column: str = "image",
    caption_column: str = "caption",
    image_size: int = 64,
    on_error: str = "warn",
) -> ImageTextSet:
    """Pairs from a ``.csv`` / ``.tsv`` / ``.jsonl`` table: one row per image, its path (relative
    to the table's folder, or absolute) in ``image_column``, its caption in
    ``caption_column``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pair table {path} does not exist.")
    header, records = _read_table(path)
    for col in (image_column, caption_column):
        if col not in header:
            raise ValueError(
                f"{path} has no {col!r} column (its columns: {header}); name the image and "
                "caption columns (image_column=..., caption_column=...)."
            )
    rows = _Rows(str(path), image_size, on_error)
    for i, rec in enumerate(records, 1):
        ref = str(rec.get(image_column) or "").strip() or "(no path)"  # missing either way
        rows.add(f"row {i}", path.parent / ref, rec.get(caption_column))
    return rows.finish(path.stem)


def load_caption_folder(
    root: str | os.PathLike, *, image_size: int = 64, on_error: str = "warn"
) -> ImageTextSet:
    """Pairs from a folder: every image under ``root`` with a same-name ``.txt`` beside it (its
    first non-empty line is the caption); an image without one is a bad row. The top-level
    folder under ``root`` is the image's category (``labels``)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"caption folder {root} does not exist.")
    images = sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in PAIR_IMAGE_SUFFIXES
    )
    rows = _Rows(str(root), image_size, on_error)
    for p in images:
        txt = p.with_suffix(".txt")
        rel = p.relative_to(root)
        category = rel.parts[0] if len(rel.parts) > 1 else ""
        if not txt.is_file():
            rows.skip("no caption file", str(rel))
            continue
        lines = [ln.strip() for ln in txt.read_text(errors="replace").splitlines()]
        rows.add(str(rel), p, next((ln for ln in lines if ln), ""), category)
    if not images:
        raise FileNotFoundError(
            f"no images ({', '.join(sorted(PAIR_IMAGE_SUFFIXES))}) found under {root}."
        )
    return rows.finish(root.name, categories=True)


def pairs_from_dataset(
    dataset: Any,
    *,
    image_column: str = "image",
    caption_column: str = "caption",
    image_size: int = 64,
    on_error: str = "warn",
    name: str = "dataset",
) -> ImageTextSet:
    """Pairs from a Hugging Face ``datasets.Dataset`` (or any sequence of dicts): the image
    column holds PIL images, file paths or ``{"path": ..., "bytes": ...}`` records."""
    names = getattr(dataset, "column_names", None)
    if names is not None:
        for col in (image_column, caption_column):
            if col not in names:
                raise ValueError(
                    f"the dataset has no {col!r} column (its columns: {names}); name the image "
                    "and caption columns (image_column=..., caption_column=...)."
                )
    rows = _Rows(name, image_size, on_error)
    for i, rec in enumerate(dataset):
        image = rec.get(image_column)
        if isinstance(image, dict):  # datasets' Image feature without decoding
            image = image.get("bytes") or image.get("path")
        if image is None:
            rows.skip("missing file", f"row {i}: no image")
            continue
        rows.add(f"row {i}", image, rec.get(caption_column))
    return rows.finish(name)


def load_image_text(spec: Any, **kwargs: Any) -> ImageTextSet:
    """Image–caption pairs from a table file, a caption folder or a ``datasets.Dataset``
    (keyword arguments go to the loader)."""
    if not isinstance(spec, (str, os.PathLike)):
        return pairs_from_dataset(spec, **kwargs)
    path = Path(spec)
    if path.suffix.lower() in TABLE_SUFFIXES:
        return load_image_table(path, **kwargs)
    if path.is_dir():
        return load_caption_folder(path, **kwargs)
    raise ValueError(
        f"{spec} is neither a {', '.join(sorted(TABLE_SUFFIXES))} table of image paths and "
        "captions nor a folder of images with same-name .txt captions."
    )
