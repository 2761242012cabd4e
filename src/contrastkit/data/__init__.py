"""Data: offline data sets as uint8 image tensors (see :mod:`contrastkit.data.datasets`),
texts (see :mod:`contrastkit.data.text`) and image–caption pairs (see
:mod:`contrastkit.data.pairs`)."""

from contrastkit.data.clipart import load_openclipart, load_tuxpaint
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
from contrastkit.data.pairs import ImageTextSet, load_image_text, pairs_from_dataset
from contrastkit.data.text import (
    TEXT_DATASETS,
    LeeCorpus,
    TextSet,
    from_hf_dataset,
    load_lee,
    load_movie_snippets,
    load_text_data,
    load_text_dataset,
    load_text_file,
    load_text_table,
    stratified_folds,
)

__all__ = [
    "DATASETS",
    "TEXT_DATASETS",
    "DataSplits",
    "ImageSet",
    "ImageTextSet",
    "LeeCorpus",
    "MissingDatasetError",
    "TextSet",
    "from_hf_dataset",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_idx_dir",
    "load_image_folder",
    "load_image_text",
    "load_lee",
    "load_mnist",
    "load_movie_snippets",
    "load_openclipart",
    "load_text_data",
    "load_text_dataset",
    "load_text_file",
    "load_text_table",
    "load_tuxpaint",
    "pairs_from_dataset",
    "read_idx",
    "stratified_folds",
    "write_idx",
]
