"""Trainer: exact resume, atomic checkpoints, export, monitor, collapse warning, precision."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

from contrastkit.data import load_digits
from contrastkit.encoders import SmallCNN
from contrastkit.recipes import SimCLR, SimCLRConfig, SupCon, SupConConfig
from contrastkit.train import (
    CollapseWarning,
    TrainConfig,
    Trainer,
    WarmupCosine,
    load_encoder,
    load_state,
    resolve_precision,
    save_state,
)
from contrastkit.train import checkpoint as ckpt_mod
from contrastkit.train import trainer as trainer_mod


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _recipe(kind="simclr", seed=0):
    torch.manual_seed(seed)
    enc = SmallCNN(in_channels=1, width=8, stages=2)
    if kind == "supcon":
        return SupCon(enc, SupConConfig(image_size=8, channels=1, flip=0, proj_hidden=32))
    return SimCLR(enc, SimCLRConfig(image_size=8, channels=1, flip=0, proj_hidden=32))


def _cfg(tmp, **kw):
    base = dict(epochs=3, batch_size=128, lr=0.2, out_dir=str(tmp), progress=False, monitor_every=0)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_resume_ends_with_the_weights_of_an_uninterrupted_run(digits, tmp_path, precision):
    train = digits.train.subset(range(640))
    full = Trainer(_recipe(), train, _cfg(tmp_path / "full", precision=precision))
    full.fit()
    part = Trainer(_recipe(), train, _cfg(tmp_path / "part", precision=precision))
    part.fit(stop_after_epoch=1)
    assert part.epoch == 1
    # a new process would build everything again from scratch, then resume
    resumed = Trainer(_recipe(seed=123), train, _cfg(tmp_path / "part", precision=precision))
    resumed.fit(resume=True)
    assert resumed.epoch == 3 and resumed.step == full.step
    a, b = full.recipe.state_dict(), resumed.recipe.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [round(h["loss"], 10) for h in full.history] == [
        round(h["loss"], 10) for h in resumed.history
    ]


class _StepClock:
    """A fake ``time.time`` that advances one second per optimiser step of ``recipe``, and
    records the learning rate of every step once ``optimizer`` is set."""

    def __init__(self, recipe):
        self.now = 1000.0
        self.optimizer = None
        self.lrs: list[float] = []
        self.seconds_per_step = lambda step: 1.0
        original = recipe.on_step_end

        def on_step_end(step, total):
            self.now += self.seconds_per_step(step)
            if self.optimizer is not None:
                self.lrs.append(self.optimizer.param_groups[0]["lr"])
            original(step, total)

        recipe.on_step_end = on_step_end

    def __call__(self):
        return self.now


def _budget_run(tmp, monkeypatch, digits, **kw):
    recipe = _recipe()
    clock = _StepClock(recipe)
    monkeypatch.setattr(trainer_mod.time, "time", clock)
    # 5 steps per epoch, 1 s per step: the probe ends at step 22 with 21 s gone (this clock
    # ticks after the step); 57 s (1 minute less 5%) - 21 s = 36 more steps, 58 = 11 epochs + 3;
    # the refit after epoch 5 (25 s gone, 32 s left) makes it 57 = 11 epochs + 2, and stays
    kw = {"warmup_epochs": 5, **kw}
    cfg = _cfg(tmp, epochs=50, max_minutes=1.0, fit_to_budget=True, **kw)
    trainer = Trainer(recipe, digits.train.subset(range(640)), cfg, encoder_name="small_cnn")
    clock.optimizer = trainer.optimizer
    return trainer, clock


def test_fit_to_budget_ends_the_schedule_inside_the_budget(digits, tmp_path, monkeypatch):
    fitted, clock = _budget_run(tmp_path / "fit", monkeypatch, digits)
    fitted.fit()
    assert fitted.total_steps == fitted.step == 57 and fitted.epochs == fitted.epoch == 12
    assert clock.now - 1000.0 == 57 < 60  # inside the budget, not cut by max_minutes
    # every step's lr (base 0.2 at batch 256 = 0.1) is the warm-up + cosine of a 57-step run
    # (the probe and the first refit fell in the warm-up, so they only moved the horizon)
    schedule = WarmupCosine(total_steps=57, warmup_steps=25, final_lr_fraction=0.0)
    assert clock.lrs == pytest.approx([0.1 * schedule(t) for t in range(1, 58)], abs=1e-12)
    assert clock.lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert (tmp_path / "fit" / "encoder.safetensors").exists()  # a finished run exports


def test_fit_to_budget_refits_after_each_epoch_without_a_jump(digits, tmp_path, monkeypatch):
    # the machine slows to 2 s per step from step 30 (epoch 7): a fit made once, at step 22,
    # would plan 58 steps and be cut by max_minutes at step ~44, mid-cosine
    run, clock = _budget_run(tmp_path / "slow", monkeypatch, digits, warmup_epochs=2)
    clock.seconds_per_step = lambda step: 1.0 if step < 30 else 2.0
    run.fit()
    assert run.step == run.total_steps < 58  # refitted shorter, and ended by its schedule
    assert clock.now - 1000.0 < 60  # inside the budget
    assert clock.lrs[-1] == pytest.approx(0.0, abs=1e-12)  # the cosine reached its end
    # the lr never jumps: after the 10-step warm-up it only falls, and by no more in one step
    # than the steepest cosine left after the first slow epoch's refit (step 35) allows;
    # moving the horizon alone (no rebase) would drop it by ~0.03 at that refit
    after = clock.lrs[10:]
    drops = [a - b for a, b in zip(after, after[1:])]
    assert min(drops) >= -1e-12
    assert max(drops) < 0.5 * math.pi * 0.1 / (run.total_steps - 35)


def test_fit_to_budget_survives_a_resume(digits, tmp_path, monkeypatch):
    full, _ = _budget_run(tmp_path / "full", monkeypatch, digits)
    full.fit()
    part, _ = _budget_run(tmp_path / "part", monkeypatch, digits)
    part.fit(stop_after_epoch=5)  # the 20-step probe ends in epoch 5
    assert part.total_steps == 57 and part.epoch == 5
    resumed, _ = _budget_run(tmp_path / "part", monkeypatch, digits)
    resumed.fit(resume=True)
    assert resumed.total_steps == 57 and resumed.step == full.step == 57
    a, b = full.recipe.state_dict(), resumed.recipe.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_fit_to_budget_needs_max_minutes():
    with pytest.raises(ValueError, match="set max_minutes"):
        TrainConfig(fit_to_budget=True)


def test_resume_refuses_a_different_configuration(digits, tmp_path):
    train = digits.train.subset(range(256))
    Trainer(_recipe(), train, _cfg(tmp_path, epochs=2)).fit(stop_after_epoch=1)
    other = Trainer(_recipe(), train, _cfg(tmp_path, epochs=2, batch_size=64))
    with pytest.raises(ValueError, match="batch_size=128"):
        other.fit(resume=True)


def test_checkpoint_is_atomic_and_loads_without_pickle(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    save_state(path, {"w": torch.arange(3.0), "epoch": 1, "nested": {0: [1, (2, 3)]}})
    before = path.read_bytes()

    def crash(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        save_state(path, {"w": torch.zeros(3), "epoch": 2})
    assert path.read_bytes() == before  # the old checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]  # no temp file left
    state = load_state(path)
    assert state["epoch"] == 1 and state["nested"] == {0: [1, (2, 3)]}
    assert torch.equal(state["w"], torch.arange(3.0))
    with pytest.raises(TypeError, match="no pickles"):
        save_state(tmp_path / "x.safetensors", {"bad": object()})


def test_export_and_load_encoder_without_recipe(digits, tmp_path):
    train = digits.train.subset(range(256))
    trainer = Trainer(_recipe(), train, _cfg(tmp_path, epochs=1), encoder_name="small_cnn")
    trainer.fit()
    meta = json.loads((tmp_path / "encoder.json").read_text())
    assert meta["encoder"] == "small_cnn" and meta["out_dim"] == 16
    enc = load_encoder(tmp_path)
    x = torch.rand(4, 1, 8, 8)
    trainer.recipe.encoder.eval()
    torch.testing.assert_close(enc(x), trainer.recipe.encoder.float()(x))
    assert not any("head" in k for k in load_state(tmp_path / "encoder.safetensors")["state_dict"])


def test_log_monitor_and_checkpoint_every_epoch(digits, tmp_path):
    trainer = Trainer(
        _recipe("supcon"),
        digits.train,
        _cfg(tmp_path, epochs=2, monitor_every=1, knn_k=20),
        monitor=(digits.train, digits.test),
    )
    history = trainer.fit()
    rows = (tmp_path / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and "knn_acc" in rows[0] and "emb_std_ratio" in rows[0]
    assert 0.5 < history[-1]["knn_acc"] <= 1.0  # supervised: well above chance (0.1)
    assert load_state(tmp_path / "checkpoint.safetensors")["epoch"] == 2


def test_progress_bar_into_a_file_is_not_redrawn_every_step(digits, tmp_path, capsys):
    """stderr captured (not a terminal): the bar is drawn at its start and end and every 30 s,
    not once per step, while every epoch's summary line is still written."""
    trainer = Trainer(
        _recipe(), digits.train, _cfg(tmp_path, epochs=2, batch_size=64, progress=True)
    )
    trainer.fit()
    captured = capsys.readouterr()
    assert trainer.total_steps >= 30
    assert captured.err.count("\r") < 10  # a redraw per step would be >= total_steps
    text = captured.out + captured.err
    assert "epoch 1:" in text and "epoch 2:" in text


def test_tensorboard_event_files_hold_the_epoch_scalars(digits, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = _cfg(tmp_path, epochs=2, monitor_every=1, knn_k=20)
    cfg.tensorboard = True
    Trainer(_recipe(), digits.train, cfg, monitor=(digits.train, digits.test)).fit()
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"epoch/loss", "epoch/lr", "epoch/knn_acc", "step/loss"} <= tags
    assert [e.step for e in acc.Scalars("epoch/loss")] == [1, 2]
    cfg.tensorboard = False
    cfg.out_dir = str(tmp_path / "off")
    Trainer(_recipe(), digits.train, cfg).fit()
    assert not (tmp_path / "off" / "tensorboard").exists()


def test_csv_log_columns_line_up_when_the_monitor_skips_epochs(digits, tmp_path):
    import csv

    cfg = _cfg(tmp_path, epochs=3, monitor_every=2, knn_k=20)
    Trainer(_recipe(), digits.train, cfg, monitor=(digits.train, digits.test)).fit()
    with open(tmp_path / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["knn_acc"] == "" and float(rows[1]["knn_acc"]) > 0.3
    assert float(rows[2]["knn_acc"]) > 0.3  # the last epoch is always monitored
    assert all(float(r["lr"]) >= 0 and float(r["loss"]) > 0 for r in rows)


def test_collapse_warning(digits, tmp_path):
    class Collapsed(SimCLR):
        def step(self, batch):
            out = super().step(batch)
            out.embeddings = torch.ones_like(out.embeddings) + 1e-6 * out.embeddings
            return out

    torch.manual_seed(0)
    recipe = Collapsed(
        SmallCNN(1, width=8, stages=2), SimCLRConfig(image_size=8, channels=1, proj_hidden=32)
    )
    with pytest.warns(CollapseWarning, match="collapsed") as caught:
        Trainer(recipe, digits.train.subset(range(256)), _cfg(tmp_path, epochs=1)).fit()
    text = str(caught[0].message)
    assert "spread std·√D" in text  # it names only the conditions that hold, each true
    if "effective rank" in text:
        rank, bound = map(float, text.split("effective rank ")[1].split(")")[0].split(" < "))
        assert rank < bound
    assert caught[0].filename == __file__  # points at the caller of fit, not the trainer


def test_errors(digits, tmp_path):
    unlabelled = digits.train.subset(range(256))
    unlabelled.labels = None
    with pytest.raises(ValueError, match="needs labels"):
        Trainer(_recipe("supcon"), unlabelled, _cfg(tmp_path))
    with pytest.raises(ValueError, match="lower batch_size"):
        Trainer(_recipe(), digits.train.subset(range(64)), _cfg(tmp_path))
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp8", torch.device("cpu"))
    with pytest.raises(ValueError, match="batch_size must be"):
        TrainConfig(batch_size=1)
    assert not os.path.exists(tmp_path / "checkpoint.safetensors")


@pytest.mark.parametrize(
    ("rule", "batch", "expected"),
    [("linear", 512, 0.8), ("sqrt", 512, 0.4 * 2**0.5), ("sqrt", 64, 0.2), ("none", 1024, 0.4)],
)
def test_lr_scaling_rules(rule, batch, expected):
    assert TrainConfig(lr=0.4, batch_size=batch, lr_scaling=rule).base_lr == pytest.approx(expected)


def test_lr_scaling_rejects_unknown_rules():
    with pytest.raises(ValueError, match=r"lr_scaling must be one of \['linear', 'none', 'sqrt'\]"):
        TrainConfig(lr_scaling="cubic")


def test_compile_trains_like_eager_and_leaves_plain_modules(digits, tmp_path):
    train = digits.train.subset(range(512))
    monitor = (digits.train.subset(range(512)), digits.test.subset(range(128)))
    runs = {}
    for flag in (False, True):
        cfg = _cfg(tmp_path / str(flag), epochs=1, precision="fp32", compile=flag, monitor_every=1)
        trainer = Trainer(_recipe(), train, cfg, monitor=monitor, encoder_name="small_cnn")
        runs[flag] = (trainer, trainer.fit())
    (eager, h_eager), (comp, h_comp) = runs[False], runs[True]
    # compiled kernels reorder float sums: the same training up to rounding
    for a, b in zip(h_eager, h_comp):
        assert abs(a["loss"] - b["loss"]) < 1e-3 and "knn_acc" in b
    sa, sb = eager.recipe.state_dict(), comp.recipe.state_dict()
    assert list(sa) == list(sb)  # no "_orig_mod." prefixes in checkpoints or exports
    for k in sa:  # relative difference of each tensor as a whole (elements near 0 wander)
        if sa[k].is_floating_point() and sa[k].norm() > 0:
            assert float((sa[k] - sb[k]).norm() / sa[k].norm()) < 1e-2, k
    # after fit the modules are eager again; the export loads as a plain encoder
    assert all(getattr(m, "_compiled_call_impl", None) is None for m in comp.recipe.modules())
    x = torch.rand(4, 1, 8, 8)
    comp.recipe.encoder.eval()
    torch.testing.assert_close(load_encoder(tmp_path / "True")(x), comp.recipe.encoder(x))


def test_group_by_length_keeps_every_row_and_groups_lengths():
    """Length-grouped batches: a permutation of the rows; each batch's lengths span little."""
    from contrastkit.train.trainer import _group_by_length

    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 200, (1000,), generator=g)
    perm = torch.randperm(1000, generator=g)
    out = _group_by_length(perm, lengths, 16, torch.Generator().manual_seed(1))
    assert torch.equal(out.sort().values, torch.arange(1000))
    spans = [int(lengths[b].max() - lengths[b].min()) for b in out[: 62 * 16].view(62, 16)]
    random_spans = [int(lengths[b].max() - lengths[b].min()) for b in perm[: 62 * 16].view(62, 16)]
    assert sum(spans) < 0.2 * sum(random_spans)
    # batches are shuffled: not simply longest first
    firsts = [int(lengths[b].max()) for b in out[: 62 * 16].view(62, 16)]
    assert firsts != sorted(firsts, reverse=True)
