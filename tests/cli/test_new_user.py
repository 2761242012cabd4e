"""What a new user meets first with their own files: a small text file with the default
batch, an image folder without a test split, a folder of one class (issue 17)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from contrastkit.cli.main import app


def _train(*args: str):
    return CliRunner().invoke(app, ["train", "--no-progress", "--epochs", "1", *args])


def test_a_small_text_file_trains_with_the_default_batch(tmp_path):
    corpus = tmp_path / "corpus.txt"
    words = "red green blue cyan amber violet black white grey olive".split()
    corpus.write_text(
        "\n".join(f"line {i} {words[i % 10]} {words[i * 7 % 10]}" for i in range(200))
    )
    args = ["--recipe", "simcse", "--data", str(corpus), "--encoder", "small_text"]
    r = _train(*args, "--out", str(tmp_path / "run"))
    assert r.exit_code == 0, r.output
    assert "batch_size 256 is larger than the 180 training texts; training with batch_size 64" in (
        " ".join(r.output.split())
    )
    assert "images" not in r.output
    saved = json.loads((tmp_path / "run" / "run.json").read_text())
    assert saved["train"]["batch_size"] == 64
    # the same command resumes (the batch is chosen the same way): nothing differs
    r = _train(*args, "--out", str(tmp_path / "run"), "--resume")
    assert r.exit_code == 0, r.output


def _folder(root, classes, per_class=10):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (8, 8), np.uint8)).save(root / c / f"{i}.png")


def test_an_image_folder_is_evaluated_on_a_held_out_test_part(tmp_path):
    _folder(tmp_path / "pets", ["cat", "dog", "fox"])
    r = _train(
        "--recipe",
        "simclr",
        "--data",
        str(tmp_path / "pets"),
        "--encoder",
        "small_cnn",
        "--batch-size",
        "8",
        "--out",
        str(tmp_path / "run"),
    )
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["evaluation"]["split"] == "test" and res["data"]["test"] == 6
    assert any("held out because the folder has no test/ folder" in s for s in res["summary"])
    printed = json.loads(r.stdout[r.stdout.index("\n{") :])  # the JSON summary, last
    assert all(len(repr(v).split(".")[-1]) <= 4 for v in printed["metrics"].values())
    page = (tmp_path / "run" / "report.html").read_text()
    k = res["evaluation"]["details.k"]
    assert (
        f"Confusion matrix: kNN with k={k} (chosen on the validation split), test split, 6 images"
        in page
    )


def test_the_reports_curves_are_titled_in_words(monkeypatch):
    import matplotlib.axes

    from contrastkit.evaluate.report import CURVE_TITLES, plot_training_curves

    titles = []
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", lambda ax, t, **kw: titles.append(t))
    plot_training_curves(
        [{"epoch": 1, "loss": 2.0, "knn_acc": 0.5, "emb_std_ratio": 0.9, "lr": 0.1}]
    )
    assert titles == list(CURVE_TITLES.values())
    assert not any("_" in t for t in titles)


@pytest.mark.parametrize("recipe", ["supcon", "simclr"])
def test_a_one_class_folder_is_refused_or_not_scored(tmp_path, recipe):
    _folder(tmp_path / "one", ["cat"], per_class=24)
    r = _train(
        "--recipe",
        recipe,
        "--data",
        str(tmp_path / "one"),
        "--encoder",
        "small_cnn",
        "--batch-size",
        "8",
        "--out",
        str(tmp_path / "run"),
    )
    if recipe == "supcon":  # no negatives: the loss means nothing
        assert r.exit_code == 2 and "same label" in r.output and "Traceback" not in r.output
        assert not (tmp_path / "run" / "run.json").exists()
    else:  # trains, but a kNN accuracy on one class would be 1.0 and mean nothing
        assert r.exit_code == 0, r.output
        res = json.loads((tmp_path / "run" / "results.json").read_text())
        assert res["evaluation"] is None and "one class only" in res["summary"][0]
