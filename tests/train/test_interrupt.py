"""SIGINT / SIGTERM during ``Trainer.fit``: the step under way ends, a checkpoint is written
(inside the epoch), :class:`TrainingInterrupted` is raised, the previous handlers come back,
and ``fit(resume=True)`` ends with bit-identical weights and the same log as an uninterrupted
run. A second signal raises KeyboardInterrupt at once. Two gloo processes stop at the same
step when the signal reaches only one."""

from __future__ import annotations

import csv
import os
import signal
import threading

import pytest
import torch

from contrastkit.data import load_digits
from contrastkit.encoders import SmallCNN
from contrastkit.recipes import SimCLR, SimCLRConfig
from contrastkit.train import TrainConfig, Trainer, TrainingInterrupted, load_state
from contrastkit.train import trainer as trainer_mod
from contrastkit.train.callbacks import Callback, ProgressBar, TensorBoardLogger
from contrastkit.train.trainer import DivergenceError

STEPS_PER_EPOCH = 5  # 640 rows, batch 128


@pytest.fixture(scope="module")
def train():
    return load_digits().train.subset(range(640))


def _recipe(seed: int = 0) -> SimCLR:
    torch.manual_seed(seed)
    enc = SmallCNN(in_channels=1, width=8, stages=2)
    return SimCLR(enc, SimCLRConfig(image_size=8, channels=1, flip=0, proj_hidden=32))


def _cfg(out, **kw) -> TrainConfig:
    base = dict(
        epochs=3,
        batch_size=128,
        lr=0.2,
        out_dir=str(out),
        progress=False,
        monitor_every=0,
        tensorboard=False,
    )
    base.update(kw)
    return TrainConfig(**base)


class _Signal(Callback):
    """Send ``signum`` to this process after global step ``step`` (``at="step"``) or at the
    end of epoch ``step`` (``at="epoch"``), ``times`` times in a row."""

    def __init__(self, signum: int, step: int, at: str = "step", times: int = 1) -> None:
        self.signum, self.step, self.at, self.times = signum, step, at, times
        self.handlers: list[object] = []

    def _send(self) -> None:
        self.handlers.append(signal.getsignal(self.signum))
        for _ in range(self.times):
            os.kill(os.getpid(), self.signum)

    def on_step_end(self, trainer, out, loss):
        if self.at == "step" and trainer.step == self.step:
            self._send()

    def on_epoch_end(self, trainer, row):
        if self.at == "epoch" and trainer.epoch == self.step:
            self._send()


@pytest.fixture(scope="module")
def reference(train, tmp_path_factory):
    """The uninterrupted run: its trainer and log rows."""
    out = tmp_path_factory.mktemp("full")
    full = Trainer(_recipe(), train, _cfg(out), encoder_name="small_cnn")
    full.fit()
    return full, _log(out)


def _log(out) -> list[dict[str, str]]:
    if not (out / "log.csv").exists():  # no epoch finished yet
        return []
    with open(out / "log.csv") as f:
        return list(csv.DictReader(f))


def _same_weights(a: Trainer, b: Trainer) -> None:
    sa, sb = a.recipe.state_dict(), b.recipe.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.mark.parametrize(
    ("signum", "step", "at", "epoch", "epoch_step"),
    [
        (signal.SIGINT, 7, "step", 2, 2),  # inside epoch 2
        (signal.SIGTERM, 5, "step", 1, 5),  # the last step of epoch 1, before its end
        (signal.SIGTERM, 2, "epoch", 2, 5),  # during epoch 2's end (its checkpoint is written)
    ],
)
def test_a_signal_stops_after_the_step_and_resume_is_exact(
    train, reference, tmp_path, signum, step, at, epoch, epoch_step
):
    full, full_log = reference
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    sender = _Signal(signum, step, at)
    cfg = _cfg(tmp_path, progress=True, tensorboard=True)
    part = Trainer(_recipe(), train, cfg, encoder_name="small_cnn", callbacks=[sender])
    with pytest.raises(TrainingInterrupted) as e:
        part.fit()
    err = e.value
    # fit's own handler was in place when the signal came; the previous ones are back
    assert sender.handlers and sender.handlers[0] not in before.values()
    assert {s: signal.getsignal(s) for s in before} == before
    done = (epoch - 1) * STEPS_PER_EPOCH + epoch_step
    assert (err.signal, err.signal_name) == (signum, signal.Signals(signum).name)
    assert (err.epoch, err.epoch_step, err.steps_per_epoch, err.step) == (
        epoch,
        epoch_step,
        STEPS_PER_EPOCH,
        done,
    )
    assert err.checkpoint == (tmp_path / "checkpoint.safetensors").resolve()
    assert f"at epoch {epoch}, step {epoch_step} of {STEPS_PER_EPOCH}" in str(err)
    assert "\n" not in str(err) and "resume" in str(err)
    state = load_state(err.checkpoint)
    assert state["step"] == done and part.step == done  # no step lost, none more
    # the log holds the finished epochs only: never ahead of the checkpoint
    finished = len(state["history"])
    assert [r["epoch"] for r in _log(tmp_path)] == [str(i) for i in range(1, finished + 1)]
    assert (state["epoch_progress"] is None) == (at == "epoch")
    assert not (tmp_path / "encoder.safetensors").exists()  # not finished: nothing exported
    # the progress bar and the TensorBoard writer are closed
    bar = next(c for c in part.callbacks if isinstance(c, ProgressBar)).bar
    assert bar.disable  # tqdm's close() disables the bar
    assert next(c for c in part.callbacks if isinstance(c, TensorBoardLogger)).writer is None

    # a new process builds everything again (other init), then resumes
    resumed = Trainer(_recipe(seed=123), train, _cfg(tmp_path), encoder_name="small_cnn")
    resumed.fit(resume=True)
    assert resumed.step == full.step and resumed.epoch == full.epoch
    _same_weights(full, resumed)
    assert (tmp_path / "encoder.safetensors").exists()
    # the same rows (the resumed epoch's loss is that of one run), one per epoch
    log = _log(tmp_path)
    assert [r["epoch"] for r in log] == [r["epoch"] for r in full_log] == ["1", "2", "3"]
    for mine, theirs in zip(log, full_log):
        for key in ("epoch", "step", "loss", "lr"):
            assert mine[key] == theirs[key], (key, mine, theirs)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]


def test_handlers_are_restored_after_a_finished_fit_and_left_alone_off_the_main_thread(
    train, tmp_path
):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    seen: list[object] = []

    class Look(Callback):
        def on_fit_start(self, trainer):
            seen.append(signal.getsignal(signal.SIGTERM))

    Trainer(_recipe(), train, _cfg(tmp_path / "a", epochs=1), callbacks=[Look()]).fit()
    assert seen[0] != before[signal.SIGTERM]  # fit handled SIGTERM
    assert {s: signal.getsignal(s) for s in before} == before

    errors: list[BaseException] = []

    def fit_in_a_thread() -> None:
        try:
            Trainer(_recipe(), train, _cfg(tmp_path / "b", epochs=1), callbacks=[Look()]).fit()
        except BaseException as err:  # reported below
            errors.append(err)

    thread = threading.Thread(target=fit_in_a_thread)
    thread.start()
    thread.join()
    assert not errors and seen[1] == before[signal.SIGTERM]  # untouched: not the main thread
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_second_signal_quits_at_once(train, tmp_path):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    twice = _Signal(signal.SIGINT, 7, times=2)
    part = Trainer(_recipe(), train, _cfg(tmp_path, progress=True), callbacks=[twice])
    with pytest.raises(KeyboardInterrupt):
        part.fit()
    assert part.step == 7  # raised inside the step's callbacks: no checkpoint of step 7
    assert load_state(tmp_path / "checkpoint.safetensors")["step"] == STEPS_PER_EPOCH
    assert next(c for c in part.callbacks if isinstance(c, ProgressBar)).bar.disable
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_second_signal_during_the_checkpoint_write_keeps_the_last_one(
    train, tmp_path, monkeypatch
):
    real = trainer_mod.save_state
    writes: list[int] = []

    def save_and_insist(path, state):
        writes.append(state["step"])
        if state.get("epoch_progress"):  # the interrupt's checkpoint: the user insists
            os.kill(os.getpid(), signal.SIGINT)
        real(path, state)

    monkeypatch.setattr(trainer_mod, "save_state", save_and_insist)
    part = Trainer(_recipe(), train, _cfg(tmp_path), callbacks=[_Signal(signal.SIGTERM, 8)])
    with pytest.raises(KeyboardInterrupt):
        part.fit()
    assert writes == [5, 8]
    state = load_state(tmp_path / "checkpoint.safetensors")  # intact: epoch 1's
    assert state["step"] == 5 and state["epoch_progress"] is None
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_divergence_closes_the_bar_and_the_writer(train, tmp_path):
    cfg = _cfg(tmp_path, lr=1e6, warmup_epochs=0, progress=True, tensorboard=True)
    trainer = Trainer(_recipe(), train, cfg)
    with pytest.raises(DivergenceError):
        trainer.fit()
    assert next(c for c in trainer.callbacks if isinstance(c, ProgressBar)).bar.disable
    assert next(c for c in trainer.callbacks if isinstance(c, TensorBoardLogger)).writer is None


# --------------------------------------------------------------- two gloo processes
def _worker(rank: int, store: str, out: str, errors) -> None:
    """One of two gloo processes (a file store, as in tests/distributed/_harness.py)."""
    import traceback

    import torch.distributed as torch_dist

    torch_dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        torch.set_num_threads(1)
        _two_processes_stop_together(out)
    except BaseException:  # reported to the parent, which fails the test with it
        errors.put(f"rank {rank}:\n{traceback.format_exc()}")
    finally:
        torch_dist.destroy_process_group()
        os._exit(0)  # no C++ static destructors: gloo threads sometimes abort at exit


def _two_processes_stop_together(out: str) -> None:
    from pathlib import Path

    from contrastkit import distributed as dist

    data = load_digits().train.subset(range(256))
    root = Path(out)
    cfg = dict(epochs=2, batch_size=64, precision="fp32")
    full = Trainer(_recipe(), data, _cfg(root / "full", **cfg))
    full.fit()
    # the signal reaches process 1 only, after step 3 (of 4 per epoch), twice at once (as
    # under torchrun, whose agent forwards the signal): one request to stop, not two
    sender = [_Signal(signal.SIGTERM, 3, times=2)] if dist.rank() == 1 else []
    part = Trainer(_recipe(), data, _cfg(root / "part", **cfg), callbacks=sender)
    try:
        part.fit()
    except TrainingInterrupted as err:
        assert (err.signal, err.step, err.epoch, err.epoch_step) == (signal.SIGTERM, 3, 1, 3)
    else:
        raise AssertionError(f"process {dist.rank()} was not interrupted")
    assert load_state(root / "part" / "checkpoint.safetensors")["step"] == 3
    resumed = Trainer(_recipe(seed=5), data, _cfg(root / "part", **cfg))
    resumed.fit(resume=True)
    assert resumed.step == full.step == 8
    if dist.rank() == 0:  # the process whose state is saved and exported
        _same_weights(full, resumed)
    else:  # batch-norm running statistics are per process; a resume takes process 0's
        for (name, a), b in zip(full.recipe.named_parameters(), resumed.recipe.parameters()):
            assert torch.equal(a, b), name


def test_two_processes_stop_at_the_same_step_and_resume_exactly(tmp_path):
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    errors = ctx.SimpleQueue()
    found = []
    try:
        mp.start_processes(
            _worker,
            args=(str(tmp_path / "store"), str(tmp_path), errors),
            nprocs=2,
            start_method="spawn",
        )
    except mp.ProcessExitedException as err:  # a process died: report what the others saw
        found.append(str(err))
    while not errors.empty():
        found.append(errors.get())
    assert not found, "\n".join(found)
