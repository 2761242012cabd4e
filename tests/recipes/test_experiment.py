"""Experiment runner and CLI: validation split, config files, train/evaluate/embed/demo, report."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from contrastkit.cli.main import app
from contrastkit.data import load_digits
from contrastkit.recipes.experiment import ExperimentConfig, run_experiment, split_validation


def test_split_validation_is_stratified_disjoint_and_seeded():
    train = load_digits().train
    a_tr, a_val = split_validation(train, 0.2, seed=0)
    _, b_val = split_validation(train, 0.2, seed=0)
    assert torch.equal(a_val.images, b_val.images)
    assert len(a_tr) + len(a_val) == len(train)
    assert abs(len(a_val) - 0.2 * len(train)) <= 10
    frac = torch.bincount(a_val.labels, minlength=10) / torch.bincount(train.labels, minlength=10)
    assert torch.all((frac > 0.15) & (frac < 0.25))
    rows_tr = {tuple(r.tolist()) for r in a_tr.images.flatten(1)}
    overlap = sum(tuple(r.tolist()) in rows_tr for r in a_val.images.flatten(1))
    # digits has a few exact duplicate images; disjointness is by index, so overlap stays tiny
    assert overlap <= 5


@pytest.mark.parametrize("suffix", [".json", ".toml", ".yaml"])
def test_config_files_and_typos(tmp_path, suffix):
    text = {
        ".json": '{"epochs": 3, "lr": 0.5}',
        ".toml": "epochs = 3\nlr = 0.5\n",
        ".yaml": "epochs: 3\nlr: 0.5\n",
    }[suffix]
    path = tmp_path / f"c{suffix}"
    path.write_text(text)
    cfg = ExperimentConfig.from_file(path)
    assert cfg.epochs == 3 and cfg.lr == 0.5
    path.write_text(text.replace("epochs", "epoch"))
    with pytest.raises(ValueError, match="Did you mean 'epochs'"):
        ExperimentConfig.from_file(path)
    with pytest.raises(ValueError, match="Did you mean 'simclr'"):
        ExperimentConfig(recipe="simclrr")


def test_run_experiment_writes_results_encoder_and_report(tmp_path):
    cfg = ExperimentConfig(
        data="digits",
        epochs=2,
        batch_size=128,
        out_dir=str(tmp_path),
        progress=False,
        report_maps=("tsne",),
    )
    res = run_experiment(cfg)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["test"] == pytest.approx(res["test"])
    assert set(res["test"]) == {
        "knn_acc",
        "linear_probe_acc",
        "linear_probe_macro_f1",
        "raw_pixel_knn_acc",
    }
    assert 0.1 < res["test"]["linear_probe_acc"] <= 1.0
    page = (tmp_path / "report.html").read_text()
    assert len(re.findall(r"data:image/png;base64,", page)) == 4  # curves, map, neighbours, cm
    assert (tmp_path / "encoder.safetensors").exists() and (tmp_path / "encoder.json").exists()


def test_cli_train_evaluate_embed(tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    r = runner.invoke(
        app,
        [
            "train",
            "--data",
            "digits",
            "--epochs",
            "1",
            "--batch-size",
            "128",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output[r.output.index("{") :])
    assert summary["out_dir"] == str(out) and "knn_acc" in summary
    r = runner.invoke(app, ["evaluate", "--encoder", str(out), "--data", "digits", "--no-probe"])
    assert r.exit_code == 0, r.output
    metrics = json.loads(r.output[r.output.index("{") :])
    assert {"knn_acc", "precision_at_1", "map_at_r", "raw_pixel_knn_acc"} <= set(metrics)
    r = runner.invoke(
        app, ["embed", "--encoder", str(out), "--data", "digits", "--out", str(tmp_path / "e.npy")]
    )
    assert r.exit_code == 0, r.output
    emb = np.load(tmp_path / "e.npy")
    assert emb.shape == (540, 128) and np.load(tmp_path / "e.labels.npy").shape == (540,)


def test_cli_errors_are_short_and_name_the_fix(tmp_path):
    runner = CliRunner()
    cfg = tmp_path / "c.json"
    cfg.write_text('{"batch_sise": 64}')
    r = runner.invoke(app, ["train", "--config", str(cfg), "--out", str(tmp_path)])
    assert r.exit_code == 2 and "Did you mean 'batch_size'" in r.output
    r = runner.invoke(app, ["train", "--data", "fashion-mnst", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "Did you mean 'fashion-mnist'" in r.output


def test_supervised_recipe_learns_and_fine_tunes_an_exported_encoder(tmp_path):
    base = dict(data="digits", batch_size=128, progress=False, report=False, linear_probe=False)
    scratch = run_experiment(
        ExperimentConfig(recipe="supervised", epochs=8, lr=0.4, out_dir=str(tmp_path / "s"), **base)
    )
    assert scratch["test"]["classifier_acc"] > 0.8  # 10 classes: chance is 0.1
    tuned = run_experiment(
        ExperimentConfig(
            recipe="supervised",
            init_encoder=str(tmp_path / "s"),
            epochs=3,
            warmup_epochs=0,
            lr=0.1,
            out_dir=str(tmp_path / "t"),
            **base,
        )
    )
    # a new linear head on the trained encoder: three short epochs reach a good classifier
    assert tuned["test"]["classifier_acc"] > 0.7
