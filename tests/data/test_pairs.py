"""Image–caption pairs: tables, caption folders and datasets.Dataset on real files, bad rows
reported by count and example, transparency on white, aspect ratio kept."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from contrastkit.data.pairs import (
    ImageTextSet,
    load_caption_folder,
    load_image_table,
    load_image_text,
    pairs_from_dataset,
    read_image,
)

SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">'
    '<rect x="0" y="0" width="40" height="20" fill="#0000ff"/></svg>'
)


def _files(root):
    root.mkdir(parents=True, exist_ok=True)
    Image.new("RGBA", (40, 20), (255, 0, 0, 255)).save(root / "red.png")  # wide, opaque
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(root / "clear.png")  # fully transparent
    Image.new("RGB", (12, 30), (0, 255, 0)).save(root / "green.jpg")  # tall
    (root / "blue.svg").write_text(SVG)
    (root / "broken.png").write_bytes(b"not a png")


def test_read_image_keeps_the_aspect_ratio_on_white_and_composites_transparency(tmp_path):
    _files(tmp_path)
    red = read_image(tmp_path / "red.png", 16)
    assert red.shape == (3, 16, 16) and red.dtype == np.uint8
    assert (red[:, 8, :] == [[255], [0], [0]]).all()  # the middle row is the bar
    assert (red[:, 0, :] == 255).all() and (red[:, 15, :] == 255).all()  # letterbox: white
    assert (read_image(tmp_path / "clear.png", 8) == 255).all()  # transparent → white
    green = read_image(tmp_path / "green.jpg", 15)
    assert (green[:, :, 0] == 255).all() and green[1, 7, 7] > 200 and green[0, 7, 7] < 50
    blue = read_image(tmp_path / "blue.svg", 16)
    assert blue[2, 8, 8] == 255 and blue[0, 8, 8] == 0 and (blue[:, 0, :] == 255).all()
    with pytest.raises(ValueError):
        read_image(tmp_path / "broken.png", 8)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_a_table_loads_its_pairs_and_reports_bad_rows_by_count_and_example(tmp_path, suffix):
    _files(tmp_path / "img")
    rows = [
        ("img/red.png", "a red bar"),
        ("img/green.jpg", "a green bar"),
        ("img/missing.png", "gone"),
        ("img/broken.png", "broken"),
        ("img/clear.png", "  "),
        ("img/red.png", "a  red bar"),  # the same caption: the same id
    ]
    table = tmp_path / f"pairs{suffix}"
    if suffix == ".jsonl":
        table.write_text("\n".join(json.dumps({"image": i, "caption": c}) for i, c in rows))
    else:
        sep = "," if suffix == ".csv" else "\t"
        table.write_text(f"image{sep}caption\n" + "\n".join(f"{i}{sep}{c}" for i, c in rows))
    with pytest.warns(UserWarning) as caught:
        pairs = load_image_table(table, image_size=8)
    message = str(caught[0].message)
    assert "skipped 3 of 6 rows" in message
    assert "1 missing file (e.g. row 3:" in message and "missing.png" in message
    assert (
        "1 unreadable image (e.g. row 4:" in message and "1 empty caption (e.g. row 5)" in message
    )
    assert pairs.captions == ["a red bar", "a green bar", "a red bar"]
    assert pairs.caption_ids.tolist() == [0, 1, 0]
    assert pairs.images.shape == (3, 3, 8, 8) and pairs.paths[1].endswith("green.jpg")
    with pytest.raises(ValueError, match=r"missing file \(row 3: .*missing.png\).*on_error='warn'"):
        load_image_table(table, image_size=8, on_error="raise")


def test_a_table_without_the_columns_names_them(tmp_path):
    (tmp_path / "t.csv").write_text("path,text\na.png,x\n")
    with pytest.raises(ValueError, match=r"no 'image' column \(its columns: \['path', 'text'\]\)"):
        load_image_table(tmp_path / "t.csv")
    _files(tmp_path)
    (tmp_path / "t.csv").write_text("path,text\nred.png,x\n")
    pairs = load_image_text(tmp_path / "t.csv", image_column="path", caption_column="text")
    assert pairs.captions == ["x"]


def test_a_caption_folder_reads_same_name_txt_and_categories(tmp_path):
    for cat in ("animals", "food"):
        (tmp_path / cat).mkdir()
    Image.new("RGB", (9, 9), (10, 20, 30)).save(tmp_path / "animals" / "cat.png")
    (tmp_path / "animals" / "cat.txt").write_text("\nA cat.\nsecond line is ignored\n")
    Image.new("RGB", (9, 9), (200, 20, 30)).save(tmp_path / "food" / "apple.png")
    (tmp_path / "food" / "apple.txt").write_text("An apple.")
    Image.new("RGB", (9, 9)).save(tmp_path / "food" / "nocaption.png")
    (tmp_path / "food" / "empty.txt").write_text("   \n")
    Image.new("RGB", (9, 9)).save(tmp_path / "food" / "empty.png")
    with pytest.warns(
        UserWarning, match=r"skipped 2 of 4 rows.*1 empty caption.*1 no caption file"
    ):
        pairs = load_caption_folder(tmp_path, image_size=8)
    assert pairs.captions == ["A cat.", "An apple."]
    assert pairs.classes == ["animals", "food"] and pairs.labels.tolist() == [0, 1]
    with pytest.warns(UserWarning, match="skipped 2 of 4 rows"):
        assert load_image_text(tmp_path, image_size=8).captions == pairs.captions


def test_a_datasets_dataset_of_pil_images_paths_and_bytes(tmp_path):
    import datasets  # the [clip] extra, in [test]

    _files(tmp_path)
    ds = datasets.Dataset.from_dict(
        {
            "image": [
                str(tmp_path / "red.png"),
                str(tmp_path / "green.jpg"),
                str(tmp_path / "x.png"),
            ],
            "caption": ["red", "green", "gone"],
        }
    )
    with pytest.warns(UserWarning, match=r"skipped 1 of 3 rows of dataset: 1 missing file"):
        pairs = pairs_from_dataset(ds, image_size=8)
    assert pairs.captions == ["red", "green"]
    decoded = ds.select([0, 1]).cast_column("image", datasets.Image())  # PIL images
    assert load_image_text(decoded, image_size=8).captions == ["red", "green"]
    raw = ds.select([0, 1]).cast_column("image", datasets.Image(decode=False))  # path/bytes
    same = pairs_from_dataset(raw, image_size=8)
    assert torch.equal(same.images, pairs.images)


def test_rows_and_subset_keep_the_caption_ids():
    images = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    s = ImageTextSet(images, ["a", "b", "a", "c"])
    assert s.caption_ids.tolist() == [0, 1, 0, 2]
    batch = s.rows(torch.tensor([2, 0]))
    assert batch["texts"] == ["a", "a"] and batch["caption_ids"].tolist() == [0, 0]
    assert s.subset([3, 2]).caption_ids.tolist() == [2, 0]
    with pytest.raises(ValueError, match="4 images but 3 captions"):
        ImageTextSet(images, ["a", "b", "c"])
