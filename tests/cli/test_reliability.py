"""``contrastkit train`` does not lose a run, refuses a resume that would be wrong, and says
what is wrong with a value or a file in one line (exit code 2, no traceback)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

import contrastkit.app.pipeline as pipeline
from contrastkit.app.pipeline import RESUME_MAY_CHANGE, config_differences
from contrastkit.cli.main import app

TINY = ["--data", "digits", "--encoder", "small_cnn", "--epochs", "1", "--batch-size", "128"]
QUIET = ["--no-report", "--no-progress"]


class _Trainer:
    """Stands in for the Trainer: trains nothing, records whether it was asked to resume."""

    resumed: list[bool] = []  # noqa: RUF012

    def __init__(self, recipe, train, config, *, monitor=None, encoder_name=None):
        self.is_main, self.rank = False, 0

    def fit(self, resume=False):
        _Trainer.resumed.append(resume)
        return []


@pytest.fixture
def trainer(monkeypatch):
    _Trainer.resumed = []
    monkeypatch.setattr(pipeline, "Trainer", _Trainer)
    return _Trainer


def _train(*args: str):
    return CliRunner().invoke(app, ["train", *args])


def _one_error_line(r) -> str:
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    return lines[0]


# ------------------------------------------------------------------------------ 1. data loss
@pytest.mark.parametrize("name", ["checkpoint.safetensors", "results.json", "encoder.safetensors"])
def test_out_holding_a_run_is_refused_without_resume_or_overwrite(trainer, tmp_path, name):
    out = tmp_path / "run"
    out.mkdir()
    (out / name).write_bytes(b"the old run")
    line = _one_error_line(_train(*TINY, *QUIET, "--out", str(out)))
    assert str(out) in line and name in line
    assert "--resume" in line and "--overwrite" in line and "another --out" in line
    assert (out / name).read_bytes() == b"the old run" and trainer.resumed == []


def test_overwrite_replaces_the_run(trainer, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("checkpoint.safetensors", "results.json", "encoder.safetensors", "notes.txt"):
        (out / name).write_bytes(b"old")
    r = _train(*TINY, *QUIET, "--out", str(out), "--overwrite")
    assert r.exit_code == 0, r.output
    assert trainer.resumed == [False]
    assert not (out / "checkpoint.safetensors").exists() and not (out / "results.json").exists()
    assert (out / "notes.txt").exists()  # only the run's own files go
    assert json.loads((out / "run.json").read_text())["model"]["encoder"] == "small_cnn"
    line = _one_error_line(_train(*TINY, "--out", str(out), "--overwrite", "--resume"))
    assert "contradict" in line


# ------------------------------------------------------------------- 2. resume at run level
def test_resume_refuses_other_options_naming_each(trainer, tmp_path):
    out = tmp_path / "run"
    r = _train(*TINY, *QUIET, "--recipe", "supcon", "--encoder", "resnet18", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert json.loads((out / "run.json").read_text())["recipe"]["name"] == "supcon"
    (out / "checkpoint.safetensors").write_bytes(b"stand-in")
    args = [*TINY, *QUIET, "--recipe", "simclr", "--encoder", "small_cnn", "--lr", "0.5"]
    line = _one_error_line(_train(*args, "--out", str(out), "--resume"))
    assert "recipe.name: supcon -> simclr" in line
    assert "model.encoder: resnet18 -> small_cnn" in line
    assert "train.lr:" in line and "-> 0.5" in line and str(out) in line
    assert "--overwrite" in line and trainer.resumed == [False]  # the first run only
    # the options that may change on resume do
    ok = [*TINY, "--recipe", "supcon", "--encoder", "resnet18", "--out", str(out), "--resume"]
    r = _train(
        *ok,
        "--progress",
        "--max-minutes",
        "5",
        "--no-linear-probe",
        "--device",
        "cpu",
        "--monitor-every",
        "3",
    )
    assert r.exit_code == 0, r.output
    assert trainer.resumed == [False, True]


def test_resume_without_checkpoint_is_refused(trainer, tmp_path):
    for out in (tmp_path / "absent", tmp_path):
        line = _one_error_line(_train(*TINY, *QUIET, "--out", str(out), "--resume"))
        assert "nothing to resume" in line and str(out) in line and "drop --resume" in line
    assert trainer.resumed == []


def test_config_differences_skips_what_may_change():
    assert "train.out_dir" in RESUME_MAY_CHANGE and "eval.*" in RESUME_MAY_CHANGE
    old = {"train": {"out_dir": "a", "lr": 0.1}, "eval": {"report": True}, "recipe": {"name": "x"}}
    new = {"train": {"out_dir": "b", "lr": 0.2}, "eval": {"report": False}, "recipe": {"name": "x"}}
    assert config_differences(old, new) == ["train.lr: 0.1 -> 0.2"]


def test_a_real_run_resumes_and_refuses_another_recipe(tmp_path):
    out = tmp_path / "run"
    r = _train(*TINY, *QUIET, "--recipe", "supcon", "--out", str(out))
    assert r.exit_code == 0, r.output
    encoder = (out / "encoder.safetensors").read_bytes()
    line = _one_error_line(_train(*TINY, *QUIET, "--out", str(out)))  # no flag: refused
    assert "already holds a run" in line
    line = _one_error_line(_train(*TINY, *QUIET, "--out", str(out), "--resume"))  # simclr
    assert "recipe.name: supcon -> simclr" in line
    assert (out / "encoder.safetensors").read_bytes() == encoder  # nothing lost
    r = _train(*TINY, *QUIET, "--recipe", "supcon", "--out", str(out), "--resume")
    assert r.exit_code == 0, r.output


# ----------------------------------------------------------------- 3. one-line errors
def _cases(tmp: os.PathLike) -> dict[str, list[str]]:
    from pathlib import Path

    tmp = Path(tmp)
    files = {
        "epochs.yaml": 'train:\n  epochs: "three"\n',
        "epochs.toml": '[train]\nepochs = "three"\n',
        "epochs.json": '{"train": {"epochs": "three"}}',
        "bad.yaml": "train: [1, 2\n  x: : y\n",
        "bad.json": '{"train": {',
        "bad.toml": "[train\nepochs=",
        "a_file": "not a folder\n",
    }
    for name, text in files.items():
        (tmp / name).write_text(text)
    return {
        "temperature": ["--set", "recipe.temperature=abc"],
        "bare temperature": ["--set", "temperature=abc"],
        "flip": ["--set", "flip=yes"],
        "queue_size": ["--recipe", "moco", "--set", "queue_size=abc"],
        "epochs yaml": ["--config", str(tmp / "epochs.yaml")],
        "epochs toml": ["--config", str(tmp / "epochs.toml")],
        "epochs json": ["--config", str(tmp / "epochs.json")],
        "bad yaml": ["--config", str(tmp / "bad.yaml")],
        "bad json": ["--config", str(tmp / "bad.json")],
        "bad toml": ["--config", str(tmp / "bad.toml")],
        "missing config": ["--config", str(tmp / "nope.yaml")],
        "out is a file": ["--out", str(tmp / "a_file")],
        "out under a file": ["--out", str(tmp / "a_file" / "run")],
    }


NAMES = {
    "temperature": "recipe.temperature",
    "bare temperature": "recipe.temperature",
    "flip": "recipe.flip",
    "queue_size": "recipe.queue_size",
    "epochs yaml": "train.epochs",
    "epochs toml": "train.epochs",
    "epochs json": "train.epochs",
    "bad yaml": "bad.yaml",
    "bad json": "bad.json",
    "bad toml": "bad.toml",
    "missing config": "nope.yaml",
    "out is a file": "a_file",
    "out under a file": "a_file",
}


@pytest.mark.parametrize("case", list(NAMES))
def test_bad_values_and_files_give_one_line(trainer, tmp_path, case):
    args = _cases(tmp_path)[case]
    if "--out" not in args:
        args = [*args, "--out", str(tmp_path / "run")]
    line = _one_error_line(_train(*TINY, *QUIET, *args))
    assert NAMES[case] in line
    assert trainer.resumed == []


def test_bad_yaml_names_the_line(tmp_path):
    _cases(tmp_path)  # writes the files
    line = _one_error_line(_train("--config", str(tmp_path / "bad.yaml")))
    assert "not valid YAML" in line and "line 2" in line


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_out_gives_one_line(trainer, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        line = _one_error_line(_train(*TINY, *QUIET, "--out", str(locked / "run")))
        assert "cannot write" in line and "locked" in line
    finally:
        locked.chmod(0o700)


def test_evaluate_missing_encoder_names_the_folder(tmp_path):
    missing = tmp_path / "missing_dir"
    r = CliRunner().invoke(app, ["evaluate", "--encoder", str(missing), "--data", "digits"])
    line = _one_error_line(r)
    assert str(missing) in line


# ----------------------------------------------------------- 4. a plain image folder
def test_image_folder_is_evaluated_on_its_held_out_test_part(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "shapes"
    for c in range(3):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(20):
            pixels = (rng.random((8, 8)) * 80 + c * 80).astype("uint8")
            Image.fromarray(pixels).save(root / f"class{c}" / f"{i}.png")
    out = tmp_path / "run"
    args = ["--data", str(root), "--encoder", "small_cnn", "--epochs", "1", "--batch-size", "16"]
    r = _train(*args, *QUIET, "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "kNN accuracy, test: " in r.output
    text = " ".join(r.output.split())
    assert "test split: 12 of the 60 images of shapes (20%, stratified by class, seed 0)" in text
    results = json.loads((out / "results.json").read_text())
    assert results["evaluation"]["split"] == "test" and results["data"]["test"] == 12
    assert results["data"]["train"] + results["data"]["val"] == 48


def test_a_folder_too_small_for_a_test_part_is_evaluated_on_validation(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "tiny"
    for c in range(6):  # 18 images: 20% is 4, fewer than the 6 classes
        (root / f"class{c}").mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (8, 8), np.uint8)).save(
                root / f"class{c}" / f"{i}.png"
            )
    out = tmp_path / "run"
    args = ["--data", str(root), "--encoder", "small_cnn", "--epochs", "1", "--batch-size", "4"]
    r = _train(*args, *QUIET, "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "kNN accuracy, val: " in r.output
    assert "evaluated on the validation split (6 images held out" in " ".join(r.output.split())
    results = json.loads((out / "results.json").read_text())
    assert results["evaluation"]["split"] == "val" and results["data"]["val"] == 6


def test_demo_does_not_overwrite_a_run_either(tmp_path):
    (tmp_path / "results.json").write_text("{}")
    r = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--epochs", "1"])
    line = _one_error_line(r)
    assert "already holds a run" in line and "--overwrite" in line


def test_embed_an_image_folder_without_test_split_suggests_split_train(tmp_path):
    from PIL import Image

    for c in range(2):
        (tmp_path / "imgs" / f"c{c}").mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8), 80 * c, "uint8")).save(
                tmp_path / "imgs" / f"c{c}" / f"{i}.png"
            )
    args = ["embed", "--encoder", str(tmp_path), "--data", str(tmp_path / "imgs")]
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "e.npy")])
    line = _one_error_line(r)
    assert "has no 'test' split" in line and "--split train" in line
    line = _one_error_line(CliRunner().invoke(app, [*args, "--out", "e.npy", "--split", "val"]))
    assert "--split must be train or test" in line


def test_embed_writes_parquet_and_names_the_extra_without_pyarrow(tmp_path, monkeypatch):
    import builtins

    import pyarrow.parquet as pq

    from contrastkit.app.experiment import embed_dataset
    from contrastkit.encoders import SmallCNN
    from contrastkit.train import export_encoder

    enc_dir = tmp_path / "enc"
    export_encoder(SmallCNN(in_channels=1, width=8, stages=2), enc_dir, "small_cnn")
    out = embed_dataset(enc_dir, "digits", tmp_path / "e.parquet")
    table = pq.read_table(out)
    assert table.num_rows == 540 and set(table.column_names) == {"id", "embedding", "label"}
    assert len(table.column("embedding")[0]) == SmallCNN(in_channels=1, width=8, stages=2).out_dim

    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    r = CliRunner().invoke(
        app,
        [
            "embed",
            "--encoder",
            str(enc_dir),
            "--data",
            "digits",
            "--out",
            str(tmp_path / "x.parquet"),
        ],
    )
    assert r.exit_code == 2 and "contrastkit[parquet]" in r.output and "Traceback" not in r.output
