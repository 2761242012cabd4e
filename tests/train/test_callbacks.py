"""The fit loop's callbacks: the order of the hooks, a user's own callback (its metrics are
logged and checkpointed, it can stop the run), and the default set built from the config."""

from __future__ import annotations

import csv

import torch

from contrastkit.data import load_digits
from contrastkit.encoders import SmallCNN
from contrastkit.recipes import SimCLR, SimCLRConfig
from contrastkit.train import (
    Callback,
    Checkpoint,
    CSVLogger,
    KNNMonitor,
    ProgressBar,
    TimeBudget,
    TrainConfig,
    Trainer,
    load_state,
)


def _trainer(tmp_path, callbacks=(), encoder_name=None, **kw) -> Trainer:
    torch.manual_seed(0)
    recipe = SimCLR(
        SmallCNN(in_channels=1, width=8, stages=2),
        SimCLRConfig(image_size=8, channels=1, flip=0, proj_hidden=32),
    )
    cfg = dict(epochs=3, batch_size=64, lr=0.2, out_dir=str(tmp_path), progress=False)
    cfg.update(kw)
    data = load_digits().train.subset(range(256))
    return Trainer(
        recipe, data, TrainConfig(**cfg), callbacks=list(callbacks), encoder_name=encoder_name
    )


class Recorder(Callback):
    """Records the hooks it sees and adds a metric of its own to every epoch's row."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_fit_start(self, trainer):
        self.calls.append("fit_start")

    def on_optimizer_step(self, trainer):
        self.calls.append("optimizer_step")

    def on_step_end(self, trainer, out, loss):
        assert loss == loss and out.loss.ndim == 0
        self.calls.append("step_end")

    def on_epoch_end(self, trainer, row):
        row["my_metric"] = float(trainer.epoch) * 10
        self.calls.append("epoch_end")

    def on_fit_end(self, trainer):
        self.calls.append("fit_end")


def test_hooks_run_in_order_and_a_users_metric_is_logged_and_checkpointed(tmp_path):
    rec = Recorder()
    t = _trainer(tmp_path, [rec])
    history = t.fit()
    steps = t.steps_per_epoch
    epoch = ["optimizer_step", "step_end"] * steps + ["epoch_end"]
    assert rec.calls == ["fit_start", *epoch * 3, "fit_end"]
    assert [h["my_metric"] for h in history] == [10.0, 20.0, 30.0]
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [float(r["my_metric"]) for r in rows] == [10.0, 20.0, 30.0]
    saved = load_state(tmp_path / "checkpoint.safetensors")
    assert saved["history"][-1]["my_metric"] == 30.0


def test_user_callbacks_run_between_those_that_measure_and_those_that_write(tmp_path):
    rec = Recorder()
    t = _trainer(tmp_path, [rec], max_minutes=60)
    kinds = [type(c) for c in t.callbacks]
    assert kinds[0] is TimeBudget  # first: a refitted length is in the epoch's row
    assert kinds.index(Recorder) < kinds.index(Checkpoint) < kinds.index(CSVLogger)
    assert kinds.index(CSVLogger) < kinds.index(ProgressBar)
    assert KNNMonitor not in kinds  # no monitor split given


class StopAfter(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer, out, loss):
        if trainer.step >= self.step:
            trainer.should_stop = True


def test_a_callback_can_stop_the_run_and_the_encoder_is_still_exported(tmp_path):
    t = _trainer(tmp_path, [StopAfter(5)], encoder_name="small_cnn")
    history = t.fit()
    assert t.step == 5 and len(history) == 2  # epoch 1 (4 steps) and the partial epoch 2
    assert (tmp_path / "encoder.safetensors").exists()
    assert (tmp_path / "checkpoint.safetensors").exists()
