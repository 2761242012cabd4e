"""Reliability: checksums on every load path, divergence stops the run, stale temp files,
log.csv never ahead of the checkpoint, file modes, resume with another config, clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from contrastkit.data import load_digits
from contrastkit.encoders import SmallCNN
from contrastkit.recipes import SimCLR, SimCLRConfig
from contrastkit.train import TrainConfig, Trainer, load_encoder, load_state, save_state
from contrastkit.train.callbacks import Callback
from contrastkit.train.checkpoint import DamagedFileError
from contrastkit.train.trainer import DivergenceError


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _recipe(width=8, seed=0):
    torch.manual_seed(seed)
    enc = SmallCNN(in_channels=1, width=width, stages=2)
    return SimCLR(enc, SimCLRConfig(image_size=8, channels=1, flip=0, proj_hidden=32))


def _cfg(tmp, **kw):
    base = dict(epochs=2, batch_size=64, lr=0.2, out_dir=str(tmp), progress=False, monitor_every=0)
    base.update(kw)
    return TrainConfig(**base)


def _flip_inside_a_weight(path: Path, n_bytes: int = 64) -> None:
    """Invert ``n_bytes`` bytes in the middle of the largest weight tensor of a safetensors file."""
    raw = bytearray(path.read_bytes())
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    name = max(
        (k for k in header if k != "__metadata__" and k.endswith("weight")),
        key=lambda k: header[k]["data_offsets"][1] - header[k]["data_offsets"][0],
    )
    a, b = header[name]["data_offsets"]
    assert b - a >= 2 * n_bytes
    start = 8 + n + a + (b - a) // 2 - n_bytes // 2
    raw[start : start + n_bytes] = bytes(x ^ 0xFF for x in raw[start : start + n_bytes])
    path.write_bytes(bytes(raw))


# ------------------------------------------------------------------ 1. bit rot
def test_flipped_bytes_in_a_checkpoint_or_an_encoder_are_detected_on_every_load(digits, tmp_path):
    train = digits.train.subset(range(256))
    trainer = Trainer(_recipe(), train, _cfg(tmp_path, epochs=1), encoder_name="small_cnn")
    trainer.fit()
    ckpt, weights = tmp_path / "checkpoint.safetensors", tmp_path / "encoder.safetensors"
    assert load_state(ckpt)["epoch"] == 1  # intact files load
    load_encoder(tmp_path)
    assert json.loads((tmp_path / "encoder.json").read_text())["sha256"]

    _flip_inside_a_weight(ckpt)
    with pytest.raises(DamagedFileError, match=r"checkpoint.safetensors: the file is damaged") as e:
        load_state(ckpt)
    assert "\n" not in str(e.value) and "restore it" in str(e.value)
    again = Trainer(_recipe(), train, _cfg(tmp_path, epochs=2))
    with pytest.raises(DamagedFileError, match=r"checkpoint.safetensors: the file is damaged"):
        again.fit(resume=True)

    _flip_inside_a_weight(weights)
    with pytest.raises(DamagedFileError, match=r"encoder.safetensors: the file is damaged"):
        load_encoder(tmp_path)
    with pytest.raises(DamagedFileError, match=r"encoder.safetensors: the file is damaged"):
        load_state(weights)  # the file's own checksum too


def test_files_without_a_checksum_still_load(tmp_path):
    from safetensors.torch import save_file

    # a checkpoint as written before checksums: the same metadata, no sha256
    path = tmp_path / "old.safetensors"
    save_file(
        {"w": torch.arange(3.0)},
        str(path),
        metadata={"contrastkit": '{"w": {"__tensor__": "w"}, "epoch": 4}'},
    )
    state = load_state(path)
    assert state["epoch"] == 4 and torch.equal(state["w"], torch.arange(3.0))
    # an encoder.json without sha256
    enc = SmallCNN(in_channels=1, width=8, stages=2)
    save_state(tmp_path / "encoder.safetensors", {"state_dict": enc.state_dict()})
    meta = {"encoder": "small_cnn", "config": enc.config, "out_dim": enc.out_dim}
    (tmp_path / "encoder.json").write_text(json.dumps(meta))
    load_encoder(tmp_path)


def test_a_cut_file_is_damaged_not_a_traceback(tmp_path):
    path = tmp_path / "c.safetensors"
    save_state(path, {"w": torch.arange(100.0), "epoch": 1})
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(DamagedFileError, match=r"c.safetensors: the file is damaged"):
        load_state(path)


# ------------------------------------------------------------------ 7. load_encoder errors
def test_load_encoder_names_the_missing_folder_and_what_it_expected(tmp_path):
    missing = tmp_path / "missing_dir"
    with pytest.raises(FileNotFoundError, match=r"missing_dir does not exist") as e:
        load_encoder(missing)
    assert "encoder.json + encoder.safetensors" in str(e.value) and "contrastkit train" in str(
        e.value
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        FileNotFoundError, match=r"empty holds no exported encoder .no encoder.json"
    ):
        load_encoder(empty)


# ------------------------------------------------------------------ 2. divergence
class _LrAfterEpoch(Callback):
    """Raise the learning rate to ``lr`` once ``epoch`` epochs are done."""

    def __init__(self, epoch: int, lr: float) -> None:
        self.epoch, self.lr = epoch, lr

    def on_epoch_end(self, trainer, row):
        if trainer.epoch == self.epoch:
            trainer.scheduler.base_lrs = [self.lr for _ in trainer.scheduler.base_lrs]
            for group in trainer.optimizer.param_groups:
                group["lr"] = self.lr


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_divergence_stops_the_run_and_keeps_the_last_good_checkpoint(digits, tmp_path, optimizer):
    train = digits.train.subset(range(256))
    cfg = _cfg(tmp_path, epochs=3, optimizer=optimizer, lr=0.05, weight_decay=0.0)
    trainer = Trainer(
        _recipe(), train, cfg, encoder_name="small_cnn", callbacks=[_LrAfterEpoch(1, 1e6)]
    )
    with pytest.raises(DivergenceError, match=r"training diverged at epoch 2, step \d+") as e:
        trainer.fit()
    assert "\n" not in str(e.value) and "checkpoint.safetensors (epoch 1), is kept" in str(e.value)
    state = load_state(tmp_path / "checkpoint.safetensors")
    assert state["epoch"] == 1 and len(state["history"]) == 1
    assert (
        max(v.abs().max().item() for v in state["recipe"].values() if v.is_floating_point()) < 100
    )
    assert not (tmp_path / "encoder.safetensors").exists()  # nothing exported
    assert (
        "epoch,step" in (tmp_path / "log.csv").read_text()
        and len((tmp_path / "log.csv").read_text().splitlines()) == 2
    )  # header + epoch 1


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_a_run_at_lr_1e6_raises_and_writes_nothing(digits, tmp_path, optimizer):
    cfg = _cfg(tmp_path, epochs=2, optimizer=optimizer, lr=1e6, warmup_epochs=0)
    trainer = Trainer(_recipe(), digits.train.subset(range(256)), cfg, encoder_name="small_cnn")
    with pytest.raises(DivergenceError, match=r"training diverged at epoch 1, step \d+"):
        trainer.fit()
    assert not (tmp_path / "checkpoint.safetensors").exists()
    assert not (tmp_path / "encoder.safetensors").exists()


def test_a_healthy_run_is_not_called_divergent(digits, tmp_path):
    trainer = Trainer(_recipe(), digits.train.subset(range(256)), _cfg(tmp_path, epochs=2))
    trainer.fit()
    assert 0 < trainer.weight_start < 10 and trainer._weight_max() < 10 * trainer.weight_start
    with pytest.raises(ValueError, match="divergence_factor must be > 1"):
        TrainConfig(divergence_factor=0.5)


# ------------------------------------------------------------------ 3. stale temp files
def test_a_fit_removes_the_temp_files_killed_writers_left(digits, tmp_path):
    from contrastkit._io import atomic_write

    names = []
    atomic_write(
        tmp_path / "x.bin", lambda tmp: names.append(Path(tmp).name) or Path(tmp).write_bytes(b"1")
    )
    assert names[0].startswith(f".x.bin.tmp-{os.getpid()}-")  # recognisable
    dead = 2**31 - 2  # above pid_max: no such process
    stale = [
        f".checkpoint.safetensors.tmp-{dead}-ab12_cd",
        f".log.csv.tmp-{dead}-zz9",
        ".checkpoint.safetensors.k2j3h4g5.tmp",  # an older version's name
    ]
    for name in stale:
        (tmp_path / name).write_bytes(b"x" * 100)
    live = f".checkpoint.safetensors.tmp-{os.getppid()}-abc"  # a live writer's file stays
    (tmp_path / live).write_bytes(b"x")
    (tmp_path / "notes.tmp").write_text("mine")  # not ours: never touched
    Trainer(_recipe(), digits.train.subset(range(128)), _cfg(tmp_path, epochs=1)).fit()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert not set(stale) & set(left)
    assert {live, "notes.tmp", "x.bin", "checkpoint.safetensors", "log.csv"} <= set(left)
    assert load_state(tmp_path / "checkpoint.safetensors")["epoch"] == 1


# ------------------------------------------------------------------ 5. file modes
def test_written_files_respect_the_umask(digits, tmp_path):
    old = os.umask(0o022)
    try:
        Trainer(
            _recipe(),
            digits.train.subset(range(128)),
            _cfg(tmp_path, epochs=1),
            encoder_name="small_cnn",
        ).fit()
        os.umask(0o077)
        save_state(tmp_path / "private.safetensors", {"w": torch.zeros(1)})
    finally:
        os.umask(old)
    for name in ("checkpoint.safetensors", "log.csv", "encoder.safetensors", "encoder.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
    assert (tmp_path / "private.safetensors").stat().st_mode & 0o777 == 0o600


# ------------------------------------------------------------------ 4. log.csv on resume
def test_resume_truncates_a_log_that_ran_ahead_of_the_checkpoint(digits, tmp_path):
    import shutil

    train = digits.train.subset(range(256))
    Trainer(_recipe(), train, _cfg(tmp_path, epochs=3)).fit(stop_after_epoch=1)
    shutil.copy(tmp_path / "checkpoint.safetensors", tmp_path / "epoch1.safetensors")
    Trainer(_recipe(), train, _cfg(tmp_path, epochs=3)).fit(resume=True, stop_after_epoch=2)
    assert len((tmp_path / "log.csv").read_text().splitlines()) == 3  # header + 2 epochs
    # a kill after epoch 2's log but before its checkpoint: the checkpoint is epoch 1's
    os.replace(tmp_path / "epoch1.safetensors", tmp_path / "checkpoint.safetensors")
    Trainer(_recipe(), train, _cfg(tmp_path, epochs=3)).fit(resume=True, stop_after_epoch=1)
    lines = (tmp_path / "log.csv").read_text().splitlines()
    assert len(lines) == 2 and lines[1].startswith("1,")
    Trainer(_recipe(), train, _cfg(tmp_path, epochs=3)).fit(resume=True)
    epochs = [line.split(",")[0] for line in (tmp_path / "log.csv").read_text().splitlines()[1:]]
    assert epochs == ["1", "2", "3"]


# ------------------------------------------------------------------ 6. resume, other settings
def test_resume_names_every_option_that_differs(digits, tmp_path):
    train = digits.train.subset(range(256))
    Trainer(_recipe(), train, _cfg(tmp_path, epochs=2)).fit(stop_after_epoch=1)
    other = _cfg(tmp_path, epochs=2, lr=0.5, warmup_epochs=0.5, precision="bf16")
    with pytest.raises(ValueError, match="cannot resume from") as e:
        Trainer(_recipe(), train, other).fit(resume=True)
    msg = str(e.value)
    assert "\n" not in msg
    for part in ("lr=0.2 -> 0.5", "warmup_epochs=1.0 -> 0.5", "precision='auto' -> 'bf16'"):
        assert part in msg, msg
    # what only watches the run or says where it runs may change
    same = _cfg(tmp_path, epochs=2, monitor_every=3, knn_k=5, divergence_factor=1e5, progress=False)
    resumed = Trainer(_recipe(), train, same)
    resumed.fit(resume=True)
    assert resumed.epoch == 2


def test_resume_with_another_recipe_or_model_is_one_clear_line(digits, tmp_path):
    from contrastkit.recipes import SupCon, SupConConfig

    train = digits.train.subset(range(256))
    Trainer(_recipe(), train, _cfg(tmp_path, epochs=2)).fit(stop_after_epoch=1)
    torch.manual_seed(0)
    supcon = SupCon(
        SmallCNN(in_channels=1, width=8, stages=2),
        SupConConfig(image_size=8, channels=1, flip=0, proj_hidden=32),
    )
    with pytest.raises(ValueError, match=r"recipe='simclr' -> 'supcon'"):
        Trainer(supcon, train, _cfg(tmp_path, epochs=2)).fit(resume=True)
    wider = Trainer(_recipe(width=16), train, _cfg(tmp_path, epochs=2))
    with pytest.raises(ValueError, match="trained with a different model") as e:
        wider.fit(resume=True)
    msg = str(e.value)
    assert "\n" not in msg and "checkpoint.safetensors" in msg and len(msg) < 600
    assert "use the same --encoder/--recipe" in msg and "a new out_dir" in msg
    deeper = Trainer(
        SimCLR(
            SmallCNN(in_channels=1, width=8, stages=3),
            SimCLRConfig(image_size=8, channels=1, flip=0, proj_hidden=32),
        ),
        train,
        _cfg(tmp_path, epochs=2),
    )
    with pytest.raises(ValueError, match="missing keys: ") as e:
        deeper.fit(resume=True)
    assert "\n" not in str(e.value)
