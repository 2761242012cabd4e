"""Data: offline data sets as uint8 image tensors (see :mod:`contrastkit.data.datasets`)."""

from contrastkit.data.datasets import (
    DATASETS,
    DataSplits,
    ImageSet,
    MissingDatasetError,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    load_idx_dir,
    load_image_folder,
    load_mnist,
)
from contrastkit.data.idx import read_idx, write_idx

__all__ = [
    "DATASETS",
    "DataSplits",
    "ImageSet",
    "MissingDatasetError",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_idx_dir",
    "load_image_folder",
    "load_mnist",
    "read_idx",
    "write_idx",
]
