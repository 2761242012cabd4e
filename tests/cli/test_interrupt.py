"""``contrastkit train`` stopped by SIGTERM (or SIGINT) says in one line where the checkpoint
is and how to resume, exits 128 + the signal, and ``--resume`` then ends with the encoder of an
uninterrupted run, bit for bit; so does a resume after ``kill -9``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

import contrastkit.app.pipeline as pipeline
from contrastkit.cli.main import app
from contrastkit.train import TrainingInterrupted

EXE = Path(sys.executable).with_name("contrastkit")
# 4 epochs of 35 steps, about a second each here: room to signal a run in its middle
ARGS = ["--data", "digits", "--encoder", "small_cnn", "--epochs", "4", "--batch-size", "32"]
ARGS += ["--no-report", "--no-progress", "--no-linear-probe"]


def _start(out: Path, *extra: str) -> tuple[subprocess.Popen, Path]:
    """Start ``contrastkit train`` into ``out``; its stderr goes to a file beside it."""
    err = out.with_name(out.name + f".stderr{len(list(out.parent.glob(out.name + '.stderr*')))}")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(err, "wb") as f:
        proc = subprocess.Popen(
            [str(EXE), "train", *ARGS, "--out", str(out), *extra],
            stdout=subprocess.DEVNULL,
            stderr=f,
            env=env,
        )
    return proc, err


def _log_rows(out: Path) -> int:
    """Epoch rows in ``out/log.csv`` (written whole, atomically), 0 when there is none."""
    try:
        return max(len((out / "log.csv").read_text().splitlines()) - 1, 0)
    except FileNotFoundError:
        return 0


def _signal_after_rows(proc: subprocess.Popen, out: Path, rows: int, signum: int) -> None:
    """Send ``signum`` once ``out/log.csv`` holds ``rows`` epochs (training is under way)."""
    deadline = time.time() + 120
    while _log_rows(out) < rows:
        assert proc.poll() is None, "the run ended before it could be signalled"
        assert time.time() < deadline, "the run did not log an epoch in 120 s"
        time.sleep(0.02)
    proc.send_signal(signum)


def _encoder(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "encoder.safetensors"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, torch.Tensor]:
    """The encoder of the uninterrupted run."""
    out = tmp_path_factory.mktemp("full") / "run"
    proc, err = _start(out)
    assert proc.wait(timeout=300) == 0, err.read_text()[-2000:]
    return _encoder(out)


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_sigterm_then_kill_9_then_resume_gives_the_encoder_of_one_run(reference, tmp_path):
    out = tmp_path / "run"
    # 1. SIGTERM during epoch 2 (or its end): one line, exit 143, a checkpoint
    proc, err = _start(out)
    _signal_after_rows(proc, out, 1, signal.SIGTERM)
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM
    lines = [line for line in err.read_text().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("interrupted (SIGTERM) at epoch ") and f"saved in {out}" in line
    assert line.endswith("continue with the same command plus --resume"), line
    assert "Traceback" not in err.read_text()
    assert (out / "checkpoint.safetensors").exists() and not (out / "encoder.safetensors").exists()
    # 2. resumed, then killed with -9 once it logged another epoch: nothing to say, no handler
    proc, err = _start(out, "--resume")
    _signal_after_rows(proc, out, _log_rows(out) + 1, signal.SIGKILL)
    assert proc.wait(timeout=120) == -signal.SIGKILL
    assert not (out / "encoder.safetensors").exists()
    # 3. resumed again: to the end, with the encoder of the uninterrupted run, bit for bit
    proc, err = _start(out, "--resume")
    assert proc.wait(timeout=300) == 0, err.read_text()[-2000:]
    assert _log_rows(out) == 4
    _same(reference, _encoder(out))


# ------------------------------------------------------- the message, without training
class _Interrupted:
    """Stands in for the Trainer: stopped by ``signum`` at epoch 3, step 12 of 14."""

    signum = signal.SIGINT

    def __init__(self, recipe, train, config, *, monitor=None, encoder_name=None):
        self.config = config

    def fit(self, resume=False):
        if self.signum is None:  # the user insisted: a second signal
            raise KeyboardInterrupt
        path = Path(self.config.out_dir) / "checkpoint.safetensors"
        raise TrainingInterrupted(self.signum, 3, 12, 14, 40, path)


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (None, 130)]
)
def test_the_interrupted_line_and_exit_code(monkeypatch, tmp_path, signum, code):
    monkeypatch.setattr(_Interrupted, "signum", signum)
    monkeypatch.setattr(pipeline, "Trainer", _Interrupted)
    out = tmp_path / "run"
    tiny = ["--data", "digits", "--encoder", "small_cnn", "--epochs", "1", "--no-progress"]
    r = CliRunner().invoke(app, ["train", *tiny, "--out", str(out)])
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1, r.output
    if signum is None:
        assert lines[0].startswith("interrupted: stopped at once") and "--resume" in lines[0]
    else:
        name = signal.Signals(signum).name
        assert lines[0] == (
            f"interrupted ({name}) at epoch 3, step 12 of 14: checkpoint saved in {out}; "
            f"continue with the same command plus --resume"
        )


def test_the_demo_says_how_to_continue_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(_Interrupted, "signum", signal.SIGINT)
    monkeypatch.setattr(pipeline, "Trainer", _Interrupted)
    out = tmp_path / "demo"
    r = CliRunner().invoke(app, ["demo", "--out", str(out), "--epochs", "1", "--no-progress"])
    assert r.exit_code == 130 and "Traceback" not in r.output
    assert r.output.splitlines()[-1] == (
        f"interrupted (SIGINT) at epoch 3, step 12 of 14: checkpoint saved in {out}; continue "
        f"with: contrastkit train --config {out / 'run.json'} --resume"
    )
