"""``contrastkit train``'s options: generated from the config tree, checked, layered."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest
from typer.testing import CliRunner

import contrastkit.app.pipeline as pipeline
from contrastkit.cli.main import app


class _Trainer:
    """Stands in for the Trainer: records what it is given, trains nothing."""

    seen: ClassVar[list] = []

    def __init__(self, recipe, train, config, *, monitor=None, encoder_name=None):
        _Trainer.seen.append((recipe, config, len(train)))
        self.is_main, self.rank = False, 0

    def fit(self, resume=False):
        return []


@pytest.fixture
def trainer(monkeypatch):
    _Trainer.seen = []
    monkeypatch.setattr(pipeline, "Trainer", _Trainer)
    return _Trainer


def _run(*args: str):
    return CliRunner().invoke(app, ["train", *args])


def test_set_reaches_the_trainers_config(trainer, tmp_path):
    r = _run("--set", "train.lr=0.1", "--epochs", "2", "--out", str(tmp_path), "--no-progress")
    assert r.exit_code == 0, r.output
    ((recipe, config, _),) = trainer.seen
    assert (config.lr, config.epochs, config.out_dir, config.progress) == (
        0.1,
        2,
        str(tmp_path),
        False,
    )
    assert (config.optimizer, config.weight_decay) == ("lars", 1e-5)  # SimCLR's optim_defaults
    assert recipe.name == "simclr" and recipe.config.image_size == 8  # digits: 8 px


def test_recipe_options_by_bare_and_dotted_keys(trainer, tmp_path):
    r = _run(
        "--recipe",
        "moco",
        "--set",
        "queue_size=256",
        "--set",
        "recipe.bn_splits=2",
        "--temperature",
        "0.3",
        "--out",
        str(tmp_path),
        "--no-progress",
    )
    assert r.exit_code == 0, r.output
    ((recipe, _, _),) = trainer.seen
    assert (recipe.config.queue_size, recipe.config.bn_splits, recipe.config.temperature) == (
        256,
        2,
        0.3,
    )


def test_unknown_key_exits_2_with_one_line_naming_the_valid_keys():
    r = _run("--set", "nope=1")
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.output
    assert lines[0].startswith("error: unknown key 'nope'; valid keys: ")
    assert "train.lr" in lines[0] and "data.name" in lines[0] and "recipe.temperature" in lines[0]
    r = _run("--recipe", "simcse", "--set", "seed=1")
    assert r.exit_code == 2 and "recipe.seed or train.seed" in r.output


def test_bad_values_name_the_key():
    r = _run("--epochs", "many")
    assert r.exit_code == 2 and "train.epochs expects an integer, got 'many'" in r.output
    r = _run("--set", "train.batch_size=1.5")
    assert r.exit_code == 2 and "train.batch_size expects an integer" in r.output
    r = _run("--recipe", "simclrr")
    assert r.exit_code == 2 and "Did you mean 'simclr'" in r.output


def test_file_then_flags_then_set(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  epochs: 3\n  lr: 0.5\nrecipe:\n  name: byol\n")
    r = _run("--config", str(path), "--epochs", "4", "--set", "train.lr=0.2", "--print-config")
    assert r.exit_code == 0, r.output
    cfg = json.loads(r.output)
    assert (cfg["train"]["epochs"], cfg["train"]["lr"], cfg["recipe"]["name"]) == (4, 0.2, "byol")
    assert cfg["train"]["optimizer"] == "lars"  # byol's optim_defaults, resolved for the print
    r = _run("--config", str(path), "--set", "train.epochs=5", "--epochs", "4", "--print-config")
    assert json.loads(r.output)["train"]["epochs"] == 5


def test_an_old_flat_file_prints_one_note_and_null_is_accepted(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(
        json.dumps(
            {
                "recipe": "supcon",
                "epochs": 2,
                "max_minutes": None,
                "recipe_options": {"proj_dim": 64},
            }
        )
    )
    r = _run("--config", str(path), "--print-config")
    assert r.exit_code == 0, r.output
    assert r.output.count("note: ") == 1 and "old flat form" in r.output
    cfg = json.loads(r.output[r.output.rindex("\n{") :])
    assert cfg["recipe"]["proj_dim"] == 64 and cfg["train"]["max_minutes"] is None


def test_help_lists_the_generated_options():
    r = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    for flag in ("--batch-size", "--lr-scaling", "--knn-select-k", "--no-report", "--out"):
        assert flag in r.output
    assert "train.lr_scaling; default: linear" in r.output
