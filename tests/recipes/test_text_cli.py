"""The text path end to end from the command line: train a text recipe, index, search."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from contrastkit.cli.main import app

GOOD = ["a warm and funny film", "great acting and a sharp script", "i loved this movie"]
BAD = ["a dull and tedious mess", "the plot makes no sense", "two hours i want back"]


def _table(path):
    rows = [f"{t} {i}\t1" for i in range(12) for t in GOOD]
    rows += [f"{t} {i}\t0" for i in range(12) for t in BAD]
    path.write_text("text\tlabel\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("encoder", ["small_text", "small_bag"])
def test_cli_text_supcon_then_index_and_search(tmp_path, encoder):
    runner = CliRunner()
    data, out = _table(tmp_path / "reviews.tsv"), tmp_path / "run"
    args = ["train", "--recipe", "text_supcon", "--data", str(data), "--encoder", encoder]
    args += ["--width", "32", "--epochs", "3", "--batch-size", "16", "--optimizer", "adamw"]
    args += ["--lr", "0.003", "--out", str(out), "--no-progress", "--no-report"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output[r.output.index("{") :])
    assert summary["protocol"] == "classification" and summary["split"] == "val"
    assert {"linear_probe_accuracy", "knn_accuracy"} <= set(summary["metrics"])
    assert summary["baseline_name"] == "TF-IDF" and "knn_accuracy" in summary["baseline"]
    assert (out / "encoder.safetensors").exists() and (out / "results.json").exists()
    config = json.loads((out / "encoder.json").read_text())["config"]
    assert config["kind"] == ("bag" if encoder == "small_bag" else "transformer")
    assert ("word_weights" in config) == (encoder == "small_bag")

    index = tmp_path / "index"
    r = runner.invoke(
        app, ["index", "--data", str(data), "--encoder", str(out), "--out", str(index)]
    )
    assert r.exit_code == 0, r.output
    assert "indexed 72 texts (exact)" in r.output
    r = runner.invoke(app, ["search", "a warm and funny film 3", "--index", str(index), "-k", "2"])
    assert r.exit_code == 0, r.output
    assert "a warm and funny film 3" in r.output.splitlines()[1]  # its own copy ranks first
    r = runner.invoke(app, ["search", "sharp script", "--index", str(index), "--json"])
    hits = json.loads(r.output[r.output.index("[") :])[0]["hits"]
    assert len(hits) == 10 and hits[0]["score"] >= hits[-1]["score"]


def test_cli_text_errors_name_the_fix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # train's default --out (runs/contrastkit) lands here
    runner = CliRunner()
    r = runner.invoke(app, ["index", "--data", "movie-snipets", "--out", str(tmp_path / "i")])
    assert r.exit_code == 2 and "movie-snippets" in r.output
    r = runner.invoke(app, ["search", "x", "--index", str(tmp_path / "missing")])
    assert r.exit_code == 2
    data = _table(tmp_path / "t.tsv")
    r = runner.invoke(
        app,
        ["train", "--recipe", "simcse", "--data", str(data), "--encoder", "nope", "--no-progress"],
    )
    assert r.exit_code == 2 and "small_text" in r.output
