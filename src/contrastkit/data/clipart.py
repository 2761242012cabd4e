"""Built-in image–caption sets from Debian packages (installed by ``scripts/install-data``).

- ``openclipart`` (:func:`load_openclipart`): the public-domain clip art of Debian's
  ``openclipart-svg`` (about 8,100 SVGs under ``/usr/share/openclipart/svg/<category>/``),
  for training. The captions are built from the files' own metadata and names
  (:func:`openclipart_caption`), as noisy as web alt-text.
- ``tuxpaint`` (:func:`load_tuxpaint`): the stamps of Debian's ``tuxpaint-stamps-default``
  (GPL-2), 1,033 images with a human-written English caption (the first line of the ``.txt``
  beside each image) in 16 categories, for held-out evaluation only: another source than the
  training pairs.

Rasters are cached once per image size (``~/.cache/contrastkit/``, or ``$CONTRASTKIT_CACHE``)
as safetensors with the file list's hash, so later loads take a second.

Example:
    >>> from contrastkit.data.clipart import openclipart_caption
    >>> openclipart_caption("My lovely baby", ["people", "daughter", "unsorted"],
    ...                     "people/my_lovely_baby_enrique_m_02.svg")
    'my lovely baby. people, daughter. my lovely baby enrique'
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from pathlib import Path

import torch

from contrastkit.data.datasets import MissingDatasetError
from contrastkit.data.pairs import ImageTextSet, caption_ids, load_caption_folder, read_image

__all__ = [
    "OPENCLIPART_DIR",
    "TUXPAINT_DIR",
    "load_openclipart",
    "load_tuxpaint",
    "openclipart_caption",
    "openclipart_metadata",
]

OPENCLIPART_DIR = Path("/usr/share/openclipart/svg")
TUXPAINT_DIR = Path("/usr/share/tuxpaint/stamps")
_INSTALL = "scripts/install-data .venv (apt-get install -y openclipart-svg tuxpaint-stamps-default)"

#: keywords that say nothing about what a picture shows
_EMPTY_WORDS = {
    "unsorted", "clip art", "clipart", "image", "media", "png", "svg", "public domain",
    "externalsource", "openclipart", "ocal", "",
}  # fmt: skip

_WORK = re.compile(r"<cc:Work\b.*?</cc:Work>", re.S)
_TITLE = re.compile(r"<dc:title>([^<]*)</dc:title>")
_SUBJECT = re.compile(r"<dc:subject>(.*?)</dc:subject>", re.S)
_LI = re.compile(r"<rdf:li>([^<]*)</rdf:li>")
_AGENT = re.compile(r"<dc:(?:creator|publisher|rights)>.*?</dc:(?:creator|publisher|rights)>", re.S)


def _words(text: str) -> str:
    """Lower-case words of a file or folder name: ``my_lovely-baby_02`` → ``my lovely baby``."""
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    return " ".join(w for w in re.split(r"[^A-Za-z]+", text.lower()) if len(w) > 1 or w == "a")


def openclipart_metadata(path: str | os.PathLike) -> tuple[str, list[str], list[str]]:
    """(the work's title, its ``dc:subject`` keywords, the names of its agents) of one SVG."""
    text = Path(path).read_text(errors="replace")
    work = _WORK.search(text)
    block = work.group(0) if work else ""
    agents = [t.strip() for a in _AGENT.findall(block) for t in _TITLE.findall(a)]
    body = _AGENT.sub("", block)  # the work's own title, not its creator's
    titles = [t.strip() for t in _TITLE.findall(body)]
    subject = _SUBJECT.search(body)
    keywords = [k.strip() for k in _LI.findall(subject.group(1))] if subject else []
    return (titles[0] if titles else ""), keywords, agents


def openclipart_caption(title: str, keywords: list[str], relpath: str) -> str:
    """The caption rule: ``"<title>. <keywords>. <file-name words>"``, lower case.

    - the title, unless it is empty (the loader also drops titles that are an agent's name or a
      collection name shared by many files);
    - the ``dc:subject`` keywords, less the ones that say nothing (``unsorted``, ``clip art``,
      ...), in order, without repeats;
    - the words of the file name (its folder names are the category, kept apart as labels).
    """
    kws = []
    for k in keywords:
        k = " ".join(k.lower().split())
        if k not in _EMPTY_WORDS and k not in kws:
            kws.append(k)
    parts = [" ".join(title.lower().split()), ", ".join(kws), _words(Path(relpath).stem)]
    return ". ".join(p for p in parts if p)


def _cache_dir() -> Path:
    return Path(os.environ.get("CONTRASTKIT_CACHE", Path.home() / ".cache" / "contrastkit"))


def _rasters(files: list[Path], size: int, name: str) -> tuple[torch.Tensor, list[int]]:
    """uint8 (N, 3, size, size) rasters of ``files`` and the indices of those that could be
    read, cached by the file list, sizes and modification times."""
    from safetensors.torch import load_file, save_file

    from contrastkit._io import atomic_write

    stamp = "\n".join(f"{p}:{p.stat().st_size}:{int(p.stat().st_mtime)}" for p in files)
    key = hashlib.sha256(f"{size}\n{stamp}".encode()).hexdigest()[:16]
    path = _cache_dir() / f"{name}-{size}px-{key}.safetensors"
    if path.is_file():
        try:
            cached = load_file(path)
            return cached["images"], cached["kept"].tolist()
        except Exception:  # a damaged cache is rebuilt
            path.unlink(missing_ok=True)
    images, kept = [], []
    for i, p in enumerate(files):
        try:
            images.append(torch.from_numpy(read_image(p, size)))
            kept.append(i)
        except ValueError:
            continue
    out = {"images": torch.stack(images), "kept": torch.tensor(kept, dtype=torch.long)}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: save_file(out, tmp))
    return out["images"], kept


def load_openclipart(
    root: str | os.PathLike = OPENCLIPART_DIR, *, image_size: int = 64, max_title_files: int = 25
) -> ImageTextSet:
    """The openclipart training pairs (see the module doc), captions by
    :func:`openclipart_caption`; ``labels`` are the top-level category folders.

    Args:
        root: the SVG folder of Debian's ``openclipart-svg``.
        image_size: side of the square rasters (aspect ratio kept, on white).
        max_title_files: a title shared by more files is a collection or author name
            ("gramastar" ×1,375), not a description, and is left out of their captions.
    """
    root = Path(root)
    if not root.is_dir():
        raise MissingDatasetError(f"openclipart is not installed ({root} is missing): {_INSTALL}")
    files = sorted(root.rglob("*.svg"))
    meta = [openclipart_metadata(p) for p in files]
    shared = Counter(m[0].lower() for m in meta)
    images, kept = _rasters(files, image_size, "openclipart")
    if len(kept) < len(files):
        import warnings

        bad = sorted(set(range(len(files))) - set(kept))
        warnings.warn(
            f"skipped {len(bad)} of {len(files)} SVGs of {root} that cairosvg cannot draw "
            f"(e.g. {'; '.join(str(files[i].relative_to(root)) for i in bad[:2])}).",
            stacklevel=2,
        )
    captions, categories, paths = [], [], []
    for i in kept:
        title, keywords, agents = meta[i]
        if shared[title.lower()] > max_title_files or title in agents:
            title = ""
        rel = files[i].relative_to(root)
        captions.append(openclipart_caption(title, keywords, str(rel)))
        categories.append(rel.parts[0])
        paths.append(str(files[i]))
    classes = sorted(set(categories))
    return ImageTextSet(
        images=images,
        captions=captions,
        caption_ids=caption_ids(captions),
        name="openclipart",
        paths=paths,
        labels=torch.tensor([classes.index(c) for c in categories], dtype=torch.long),
        classes=classes,
    )


def load_tuxpaint(root: str | os.PathLike = TUXPAINT_DIR, *, image_size: int = 64) -> ImageTextSet:
    """The Tux Paint stamps with an English caption (the first line of the ``.txt`` beside each
    image), their top-level folder as the category: 1,033 images, 804 distinct captions, 16
    categories. Held-out evaluation only."""
    root = Path(root)
    if not root.is_dir():
        raise MissingDatasetError(f"tuxpaint is not installed ({root} is missing): {_INSTALL}")
    import warnings

    with warnings.catch_warnings():  # stamps without a caption file are expected: not pairs
        warnings.filterwarnings("ignore", message="skipped .* no caption file")
        pairs = load_caption_folder(root, image_size=image_size)
    pairs.name = "tuxpaint"
    return pairs
