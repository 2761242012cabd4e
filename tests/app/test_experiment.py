"""Experiment runner and CLI: validation split, config files, train/evaluate/embed/demo, report."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from contrastkit.app.config import ConfigError, RunConfig
from contrastkit.app.experiment import run_experiment, split_validation
from contrastkit.cli.main import app
from contrastkit.data import load_digits


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
        ".json": '{"train": {"epochs": 3, "lr": 0.5}}',
        ".toml": "[train]\nepochs = 3\nlr = 0.5\n",
        ".yaml": "train:\n  epochs: 3\n  lr: 0.5\n",
    }[suffix]
    path = tmp_path / f"c{suffix}"
    path.write_text(text)
    cfg = RunConfig.from_file(path)
    assert cfg.train.epochs == 3 and cfg.train.lr == 0.5
    path.write_text(text.replace("epochs", "epoch"))
    with pytest.raises(ConfigError, match=r"did you mean 'train\.epochs'"):
        RunConfig.from_file(path)
    with pytest.raises(ConfigError, match="Did you mean 'simclr'"):
        RunConfig(recipe="simclrr")


def test_run_experiment_writes_results_encoder_and_report(tmp_path):
    cfg = RunConfig.from_dict(
        {
            "data": {"name": "digits"},
            "train": {"epochs": 2, "batch_size": 128, "out_dir": str(tmp_path), "progress": False},
            "eval": {"report_maps": ["tsne"]},
        }
    )
    res = run_experiment(cfg)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["evaluation"] == res["evaluation"] and saved["summary"] == res["summary"]
    # the run's config, nested, with what the recipe and the data filled in
    assert saved["config"]["recipe"]["name"] == "simclr"
    assert saved["config"]["recipe"]["image_size"] == 8
    assert saved["config"]["train"]["epochs"] == 2
    assert saved["config"]["train"]["optimizer"] == "lars"  # SimCLR's optim_defaults
    ev = res["evaluation"]  # the classification protocol's flat result
    assert ev["protocol"] == "classification" and ev["split"] == "test"
    assert ev["chosen_on"] == "val" and ev["baseline_name"] == "raw pixels"
    for key in ("knn_accuracy", "linear_probe_accuracy", "knn_macro_f1", "map_at_r"):
        assert 0.0 <= ev[f"metrics.{key}"] <= 1.0 and f"baseline.{key}" in ev
    assert ev["details.k"] in cfg.eval.knn_select_k
    assert ev["details.n_val"] == saved["data"]["val"] and ev["details.n_test"] == 540
    assert 0.1 < ev["metrics.linear_probe_accuracy"] <= 1.0
    assert res["summary"][0].startswith("kNN accuracy, test: ")
    assert "(raw pixels " in res["summary"][0] and "chance " in res["summary"][0]
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
    assert summary["out_dir"] == str(out) and "knn_accuracy" in summary["metrics"]
    assert summary["baseline_name"] == "raw pixels" and "knn_accuracy" in summary["baseline"]
    assert "kNN accuracy, test: " in r.output
    args = ["evaluate", "--encoder", str(out), "--data", "digits", "--no-probe"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("kNN accuracy, test: ") and "{" not in r.stdout  # lines only
    assert "kNN k: " in r.stdout and "report: none written" in r.stdout
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    metrics = json.loads(r.stdout)  # the JSON alone on stdout; the stages went to stderr
    assert {"knn_accuracy", "knn_macro_f1", "map_at_r"} <= set(metrics["metrics"])
    assert "linear_probe_accuracy" not in metrics["metrics"]
    assert "knn_accuracy" in metrics["baseline"] and metrics["knn"]["k"] <= metrics["knn"]["k_cap"]
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
    assert r.exit_code == 2 and "did you mean 'train.batch_size'" in r.output
    r = runner.invoke(app, ["train", "--data", "fashion-mnst", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "Did you mean 'fashion-mnist'" in r.output


def test_supervised_recipe_learns_and_fine_tunes_an_exported_encoder(tmp_path):
    def config(train: dict, **model) -> RunConfig:
        return RunConfig.from_dict(
            {
                "data": {"name": "digits"},
                "model": model,
                "recipe": {"name": "supervised"},
                "train": {"batch_size": 128, "progress": False, **train},
                "eval": {"report": False, "linear_probe": False},
            }
        )

    scratch = run_experiment(config({"epochs": 8, "lr": 0.4, "out_dir": str(tmp_path / "s")}))
    assert scratch["evaluation"]["metrics.classifier_accuracy"] > 0.8  # 10 classes: chance is 0.1
    tuned = run_experiment(
        config(
            {"epochs": 3, "warmup_epochs": 0, "lr": 0.1, "out_dir": str(tmp_path / "t")},
            init_encoder=str(tmp_path / "s"),
        )
    )
    # a new linear head on the trained encoder: three short epochs reach a good classifier
    assert tuned["evaluation"]["metrics.classifier_accuracy"] > 0.7


def test_every_train_config_field_is_a_train_key():
    """The train node is TrainConfig itself: each of its fields is a ``train.`` key."""
    import dataclasses

    from contrastkit.app.config import options
    from contrastkit.train import TrainConfig

    keys = set(options())
    assert {f"train.{f.name}" for f in dataclasses.fields(TrainConfig)} <= keys
    cfg = RunConfig.from_dict(
        {"train": {"collapse_rank": 3.0, "tensorboard": False, "lars_eta": 0.01}}
    )
    assert isinstance(cfg.train, TrainConfig)
    assert (cfg.train.collapse_rank, cfg.train.tensorboard, cfg.train.lars_eta) == (
        3.0,
        False,
        0.01,
    )
