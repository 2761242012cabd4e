"""The image–text pipeline: a CLIP run on a caption folder end to end (train, export, evaluate
with its baselines, zero-shot, report), the group split and the ridge baseline."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from contrastkit.app.config import RunConfig
from contrastkit.app.image_text import fit_linear_map, load_image_text_data
from contrastkit.app.pipeline import run
from contrastkit.app.splits import group_split, split_validation
from contrastkit.recipes.clip import ImageTextModel

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 30), "blue": (30, 60, 220)}
SHAPES = ("square", "circle", "bar")


def _shape(colour: tuple[int, int, int], shape: str, jitter: int) -> Image.Image:
    img = Image.new("RGBA", (24, 24), (0, 0, 0, 0))
    a = np.zeros((24, 24, 4), dtype=np.uint8)
    yy, xx = np.mgrid[:24, :24]
    if shape == "square":
        m = (abs(yy - 12) < 7 - jitter) & (abs(xx - 12) < 7 - jitter)
    elif shape == "circle":
        m = (yy - 12) ** 2 + (xx - 12) ** 2 < (8 - jitter) ** 2
    else:
        m = abs(yy - 12) < 3 + jitter
    a[m] = (*colour, 255)
    return Image.fromarray(a, "RGBA") if img else img


def caption_folder(root, copies: int = 4):
    """A caption folder: 9 captions (colour × shape), ``copies`` images each, in 3 category
    folders (the shapes)."""
    for shape in SHAPES:
        (root / f"{shape}s").mkdir(parents=True, exist_ok=True)
        for name, colour in COLOURS.items():
            for j in range(copies):
                stem = root / f"{shape}s" / f"{name}_{shape}_{j}"
                _shape(colour, shape, j % 3).save(f"{stem}.png")
                stem.with_suffix(".txt").write_text(f"a {name} {shape}\n")
    return root


def test_group_split_keeps_each_caption_on_one_side():
    ids = torch.tensor([0, 0, 1, 2, 3, 3, 3, 4, 5, 5])
    fit, held = group_split(ids, 0.3, seed=1)
    assert sorted(fit.tolist() + held.tolist()) == list(range(10))
    assert not set(ids[fit].tolist()) & set(ids[held].tolist())
    assert 3 <= len(held) <= 5
    again = group_split(ids, 0.3, seed=1)
    assert torch.equal(again[1], held)


def test_validation_of_pairs_is_split_by_caption(tmp_path):
    data = load_image_text_data(str(caption_folder(tmp_path / "pairs")), 16, test_fraction=0.25)
    assert not set(data.train.captions) & set(data.test.captions)
    fit, val = split_validation(data.train, 0.25, seed=0)
    assert not set(fit.captions) & set(val.captions)
    assert len(fit) + len(val) == len(data.train)


def test_the_linear_map_recovers_a_linear_relation_and_chooses_its_strength_on_validation():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 20, generator=g)
    w = torch.randn(20, 8, generator=g)
    y = x @ w
    xv = torch.randn(100, 20, generator=g)
    stats, my, fitted, lam = fit_linear_map(x, y, xv, xv @ w, torch.arange(100))
    pred = ((xv - stats[0]) / stats[1]) @ fitted
    cos = torch.nn.functional.cosine_similarity(pred, xv @ w - my).mean()
    assert cos > 0.99
    assert lam == 1.0  # noise-free: the weakest ridge retrieves best


def train_small_clip(tmp, copies: int = 6, epochs: int = 2):
    """One small CLIP run on a caption folder in ``tmp`` (small CNN + small text tower):
    (caption folder, run folder, results)."""
    root = caption_folder(tmp / "pairs", copies=copies)
    out = tmp / "run"
    cfg = RunConfig.from_dict(
        {
            "data": {"name": str(root), "val_size": 0.2},
            "model": {
                "encoder": "small_cnn",
                "width": 0.125,
                "text_encoder": "small_text",
                "text_width": 32,
            },
            "recipe": {"name": "clip", "image_size": 16, "embed_dim": 16},
            "train": {
                "epochs": epochs,
                "batch_size": 16,
                "out_dir": str(out),
                "progress": False,
                "compile": False,
            },
            "eval": {"report_maps": []},
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run(cfg)
    return root, out, results


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory):
    """One small CLIP run on a caption folder (small CNN + small text tower, 2 epochs)."""
    return train_small_clip(tmp_path_factory.mktemp("clip"))


def test_a_clip_run_on_a_caption_folder_evaluates_with_its_baselines(clip_run):
    _, out, results = clip_run
    ev = results["evaluation"]
    assert ev["protocol"] == "retrieval"
    assert ev["baseline_name"] == "frozen towers + linear map"
    assert "random towers + linear map.a2b_recall@5" in ev
    assert "chance.a2b_recall@5" in ev and "baseline.b2a_recall@5" in ev
    assert results["validation"]["split"] == "val"
    zs = results["zero_shot"]
    assert zs["classes"] == ["bars", "circles", "squares"]
    assert 0 <= zs["balanced_accuracy"] <= 1 and "baseline" in zs
    assert any(line.startswith("zero-shot balanced accuracy") for line in results["summary"])
    page = (out / "report.html").read_text()
    assert "Retrieval: caption → images" in page and "Retrieval: image → captions" in page


def test_the_exported_model_loads_embeds_and_refuses_a_damaged_file(clip_run, tmp_path):
    root, out, _ = clip_run
    model = ImageTextModel.load(out)
    data = load_image_text_data(str(root), 16, seed=0)
    a = model.embed_images(data.test.images)
    b = model.embed_texts(data.test.captions)
    assert a.shape == b.shape == (len(data.test), 16)
    assert torch.allclose(a.norm(dim=1), torch.ones(len(a)), atol=1e-5)
    assert json.loads((out / "clip.json").read_text())["embed_dim"] == 16
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    raw = bytearray((copy / "clip.safetensors").read_bytes())
    raw[-1] ^= 1
    (copy / "clip.safetensors").write_bytes(bytes(raw))
    with pytest.raises(Exception, match="sha256"):
        ImageTextModel.load(copy)
    with pytest.raises(FileNotFoundError, match="no image–text model"):
        ImageTextModel.load(tmp_path)


def test_index_search_and_zero_shot_from_the_command_line(clip_run, tmp_path):
    from typer.testing import CliRunner

    from contrastkit.cli.main import app

    root, out, _ = clip_run
    cli = CliRunner()
    idx = tmp_path / "index"
    r = cli.invoke(app, ["index", "--data", str(root), "--encoder", str(out), "--out", str(idx)])
    assert r.exit_code == 0, r.output
    assert "indexed 54 images" in r.output
    r = cli.invoke(app, ["search", "a red square", "--index", str(idx), "-k", "3", "--json"])
    assert r.exit_code == 0, r.output
    hits = json.loads(r.output)[0]["hits"]
    assert len(hits) == 3 and all(Path(h["id"]).suffix == ".png" for h in hits)
    query = str(next((root / "circles").glob("blue_circle_0.png")))
    r = cli.invoke(app, ["search", query, "--index", str(idx), "-k", "1", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)[0]["hits"][0]["id"] == query  # an image finds itself first
    zs = tmp_path / "zs"
    r = cli.invoke(app, ["zero-shot", "--encoder", str(out), "--data", str(root), "--out", str(zs)])
    assert r.exit_code == 0, r.output
    assert "balanced accuracy" in r.output and "(chance 0.333)" in r.output
    saved = json.loads((zs / "zero_shot.json").read_text())
    assert saved["classes"] == ["bars", "circles", "squares"]
    assert np.asarray(saved["confusion_matrix"]).sum() == 54
    assert "Confusion matrix" in (zs / "report.html").read_text()
    r = cli.invoke(
        app,
        ["zero-shot", "--encoder", str(out), "--data", str(root), "--classes", "bar,circle"],
    )
    assert r.exit_code == 0, r.output
    assert "not among the classes given" in r.output
    r = cli.invoke(app, ["zero-shot", "--encoder", str(tmp_path), "--data", str(root)])
    assert r.exit_code != 0 and "no image–text model" in r.output
