"""Callbacks of the training loop: everything around the optimisation step.

The loop (:meth:`~contrastkit.train.Trainer.fit`) only trains; progress, logging, the kNN
monitor, the collapse warning, the time budget, checkpoints and export are each a
:class:`Callback`. The trainer builds the default ones from its :class:`TrainConfig`; pass your
own with ``Trainer(..., callbacks=[...])``: they run after the callbacks that measure (time
budget, collapse statistics, kNN monitor) and before those that write (checkpoint, CSV log,
TensorBoard, progress, export), so what they add to an epoch's row is saved and shown.

Hooks, in the order the loop calls them:

- ``on_fit_start(trainer)``: once per :meth:`fit` call, after a resume;
- ``on_optimizer_step(trainer)``: right after each optimiser and scheduler step, before the
  recipe's own ``on_step_end`` (momentum schedules read ``trainer.total_steps``);
- ``on_step_end(trainer, out, loss)``: after each step, with the step's
  :class:`~contrastkit.train.LossOutput` and its loss averaged over processes; set
  ``trainer.should_stop = True`` to end the run after this step;
- ``on_epoch_end(trainer, row)``: after each epoch, ``row`` being that epoch's log row: add
  keys to it (metrics) or write it out;
- ``on_fit_end(trainer)``: once, when the loop ends (finished, stopped or paused);
- ``on_fit_abort(trainer, error)``: instead of ``on_fit_end`` when :meth:`fit` raises (a
  signal stopped it: :class:`~contrastkit.train.TrainingInterrupted`, the run diverged, a
  callback failed): release what the callback holds (the progress bar, the TensorBoard
  writer) and write nothing a finished run writes.

Example:
    >>> from contrastkit.train.callbacks import Callback
    >>> class PrintLoss(Callback):
    ...     def on_epoch_end(self, trainer, row):
    ...         print(f"epoch {row['epoch']}: loss {row['loss']:.3f}")
"""

from __future__ import annotations

import csv
import io
import math
import sys
import time
import warnings
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from contrastkit import distributed as dist
from contrastkit.evaluate.collapse import collapse_stats
from contrastkit.evaluate.features import extract_features
from contrastkit.evaluate.knn import knn_accuracy
from contrastkit.train.checkpoint import atomic_write_bytes
from contrastkit.train.export import export_encoder

if TYPE_CHECKING:
    from contrastkit.train.recipe import LossOutput
    from contrastkit.train.trainer import Trainer

__all__ = [
    "CSVLogger",
    "Callback",
    "Checkpoint",
    "CollapseMonitor",
    "CollapseWarning",
    "ExportEncoder",
    "KNNMonitor",
    "ProgressBar",
    "TensorBoardLogger",
    "TimeBudget",
]


class CollapseWarning(UserWarning):
    """The embeddings are collapsing (tiny spread or effective rank)."""


class Callback:
    """Base class: every hook does nothing."""

    def on_fit_start(self, trainer: Trainer) -> None:
        pass

    def on_optimizer_step(self, trainer: Trainer) -> None:
        pass

    def on_step_end(self, trainer: Trainer, out: LossOutput, loss: float) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        pass

    def on_fit_end(self, trainer: Trainer) -> None:
        pass

    def on_fit_abort(self, trainer: Trainer, error: BaseException) -> None:
        pass


def _is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is an interactive terminal (False for files, pipes and notebooks'
    captured streams that do not say)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class ProgressBar(Callback):
    """A tqdm bar over the run's steps (loss, lr, rows/s) and one summary line per epoch.

    Redirected to a file or pipe, the bar redraws every 30 s instead of ten times a second.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar: Any = None

    def on_fit_start(self, trainer: Trainer) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=trainer.total_steps,
            initial=trainer.step,
            disable=not (self.enabled and trainer.is_main),
            unit="step",
            dynamic_ncols=True,
            mininterval=0.1 if _is_terminal(sys.stderr) or "notebook" in tqdm.__module__ else 30,
        )

    def on_step_end(self, trainer: Trainer, out: LossOutput, loss: float) -> None:
        bar = self.bar
        if bar.total != trainer.total_steps:  # the length was fitted to a time budget
            bar.total = trainer.total_steps
            bar.refresh()
        bar.update(1)
        bar.set_postfix(  # shown at the bar's next redraw (no redraw per step)
            epoch=trainer.epoch + 1,
            loss=f"{loss:.3f}",
            lr=f"{trainer.lr:.3g}",
            rows_s=f"{trainer.rows_per_second():.0f}",
            refresh=False,
        )

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        if self.enabled and trainer.is_main:
            shown = ", ".join(
                f"{k}={v:.4g}" for k, v in row.items() if k not in ("step", "seconds")
            )
            self.bar.write(f"epoch {trainer.epoch}: {shown}")

    def on_fit_end(self, trainer: Trainer) -> None:
        self.bar.close()

    def on_fit_abort(self, trainer: Trainer, error: BaseException) -> None:
        if self.bar is not None:  # None: fit failed before the bar was made
            self.bar.close()


class CollapseMonitor(Callback):
    """Collapse statistics of the first ``steps`` steps' embeddings each epoch (``emb_*``
    columns), and a :class:`CollapseWarning` when the spread or effective rank is tiny. (In
    an epoch resumed in its middle, the first steps after the resume: the embeddings are not
    in the checkpoint.)"""

    def __init__(self, std_ratio: float = 0.1, rank: float = 2.0, steps: int = 8) -> None:
        self.std_ratio, self.rank, self.steps = std_ratio, rank, steps
        self.embeds: list[Tensor] = []

    def on_step_end(self, trainer: Trainer, out: LossOutput, loss: float) -> None:
        if out.embeddings is not None and len(self.embeds) < self.steps:
            self.embeds.append(out.embeddings.float().cpu())

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        embeds, self.embeds = self.embeds, []
        if not embeds or not trainer.is_main:
            return
        stats = collapse_stats(torch.cat(embeds))
        row.update({f"emb_{k}": v for k, v in stats.items()})
        why = []  # only the conditions that hold
        if stats["std_ratio"] < self.std_ratio:
            why.append(f"spread std·√D = {stats['std_ratio']:.3f} < {self.std_ratio}")
        if stats["effective_rank"] < self.rank:
            why.append(f"effective rank {stats['effective_rank']:.2f} < {self.rank}")
        if why:
            warnings.warn(
                f"epoch {trainer.epoch}: embeddings look collapsed ({' and '.join(why)}). Lower "
                f"the learning rate, raise the temperature, or check the views (too weak "
                f"augmentation).",
                CollapseWarning,
                stacklevel=6,  # the caller of Trainer.fit (via fit, _fit, _loop, _call)
            )


class KNNMonitor(Callback):
    """Weighted kNN accuracy (``knn_acc``) of the encoder on a held-out labelled split, every
    ``every`` epochs and after the last one.

    Args:
        reference, held_out: labelled data sets (any with ``labels`` and
            ``encoder_inputs()``, what the encoder embeds: ``ImageSet``, ``TextSet``); carve
            them from the training data, never the test set.
        every: epochs between runs; k, temperature: the kNN's.
    """

    def __init__(
        self, reference: Any, held_out: Any, every: int = 1, k: int = 200, temperature: float = 0.1
    ) -> None:
        self.reference, self.held_out = reference, held_out
        self.every, self.k, self.temperature = every, k, temperature

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        if not self.every or not trainer.is_main:
            return
        if trainer.epoch % self.every and trainer.epoch != trainer.epochs:
            return
        kw = dict(bf16=trainer.precision == "bf16", channels_last=trainer.config.channels_last)
        enc = trainer.recipe.encoder
        with torch.compiler.set_stance("force_eager"):  # no recompiles for eval shapes
            f_ref = extract_features(
                enc, self.reference.encoder_inputs(), device=trainer.device, **kw
            )
            f_held = extract_features(
                enc, self.held_out.encoder_inputs(), device=trainer.device, **kw
            )
        row["knn_acc"] = knn_accuracy(
            f_ref,
            self.reference.labels,
            f_held,
            self.held_out.labels,
            k=self.k,
            temperature=self.temperature,
        )


class TimeBudget(Callback):
    """Stop after ``max_minutes`` of wall time; with ``fit``, also fit the run's length to it.

    Fitting times ``probe_steps`` steps (after two warm-up steps, so compilation is not
    counted) and lowers the run's length to the steps that fit in the budget (less 5% for
    checkpoints and the monitor); after every epoch it fits again from that epoch's speed, and
    the cosine continues from where it is to the new end. A resumed run that was already
    fitted keeps its length.
    """

    def __init__(self, max_minutes: float | None, fit: bool = False, probe_steps: int = 20) -> None:
        self.max_minutes, self.fit, self.probe_steps = max_minutes, fit, probe_steps
        self.start = 0.0
        self.refit = False
        self.probe: tuple[int, int] | None = None
        self.probe_start = 0.0

    def on_fit_start(self, trainer: Trainer) -> None:
        self.start = time.time()
        self.refit = self.fit and not trainer.length_fitted
        if self.refit:
            self.probe = (trainer.step + 2, trainer.step + 2 + self.probe_steps)

    def _fit_steps(self, trainer: Trainer, seconds_per_step: float) -> int:
        """Total steps (≤ config.epochs' worth, > the current step) that end in the budget."""
        budget = 60 * float(self.max_minutes) * 0.95 - (time.time() - self.start)
        steps = trainer.step + int(max(0.0, budget) / max(seconds_per_step, 1e-9))
        steps = max(trainer.step + 1, min(trainer.steps_per_epoch * trainer.config.epochs, steps))
        # every process must train the same number of steps: agree on the mean of the counts
        return int(float(dist.all_reduce_sum(torch.tensor(float(steps)))) / trainer.world)

    def on_optimizer_step(self, trainer: Trainer) -> None:
        if self.probe and trainer.step == self.probe[0]:
            self.probe_start = time.time()
        elif self.probe and trainer.step == self.probe[1]:
            per_step = (time.time() - self.probe_start) / (self.probe[1] - self.probe[0])
            trainer.set_length(self._fit_steps(trainer, per_step))
            trainer.length_fitted = True
            self.probe = None

    def on_step_end(self, trainer: Trainer, out: LossOutput, loss: float) -> None:
        if self.max_minutes and dist.any_process(time.time() - self.start > 60 * self.max_minutes):
            trainer.should_stop = True

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        # runs first among the epoch-end hooks: the fitted length is in the row's epochs
        if (
            self.refit
            and trainer.length_fitted
            and not trainer.should_stop
            and trainer.step < trainer.total_steps
        ):
            per_step = trainer.epoch_seconds / max(trainer.epoch_steps, 1)
            trainer.set_length(self._fit_steps(trainer, per_step))


class Checkpoint(Callback):
    """Write ``out_dir/checkpoint.safetensors`` (atomically) after every epoch. (A run
    stopped by a signal writes one inside the epoch: the trainer does, see
    :class:`~contrastkit.train.TrainingInterrupted`.)"""

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        trainer.save_checkpoint()


class CSVLogger(Callback):
    """``out_dir/log.csv``: one row per epoch (rewritten whole, atomically, after the
    checkpoint, so it never runs ahead of it). A resumed run rewrites it from the
    checkpoint's history first: rows a killed run logged past its last checkpoint go."""

    def on_fit_start(self, trainer: Trainer) -> None:
        path = trainer.out_dir / "log.csv"
        if not trainer.is_main:
            return
        if trainer.history:
            self._write(trainer)
        elif path.exists():
            path.unlink()

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        if trainer.is_main:
            self._write(trainer)

    @staticmethod
    def _write(trainer: Trainer) -> None:
        # rows differ in their columns (the monitor runs every few epochs), so the header is
        # the union of all keys, in first-seen order
        fields: dict[str, None] = {}
        for r in trainer.history:
            fields.update(dict.fromkeys(r))
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(fields), restval="")
        w.writeheader()
        w.writerows(trainer.history)
        atomic_write_bytes(trainer.out_dir / "log.csv", buf.getvalue().encode())


class TensorBoardLogger(Callback):
    """TensorBoard event files in ``out_dir/tensorboard``: step loss and lr every 10 steps,
    every column of the epoch row. ``want="auto"`` skips it when tensorboard is missing."""

    def __init__(self, want: bool | str = "auto") -> None:
        self.want = want
        self.writer: Any = None

    def on_fit_start(self, trainer: Trainer) -> None:
        if self.want is False or not trainer.is_main:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            if self.want is True:
                raise ImportError(
                    "TrainConfig(tensorboard=True) needs the tensorboard package: "
                    "pip install tensorboard (or leave tensorboard='auto')."
                ) from err
            return
        self.writer = SummaryWriter(
            log_dir=str(trainer.out_dir / "tensorboard"), purge_step=trainer.step
        )

    def on_step_end(self, trainer: Trainer, out: LossOutput, loss: float) -> None:
        if self.writer is not None and trainer.step % 10 == 0:
            self.writer.add_scalar("step/loss", loss, trainer.step)
            self.writer.add_scalar("step/lr", trainer.lr, trainer.step)

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        if self.writer is None:
            return
        for key, value in row.items():
            if key not in ("epoch", "step") and math.isfinite(float(value)):
                self.writer.add_scalar(f"epoch/{key}", value, int(row["epoch"]))
        self.writer.flush()

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def on_fit_abort(self, trainer: Trainer, error: BaseException) -> None:
        self.on_fit_end(trainer)  # what was written stays: a resume purges what follows


class ExportEncoder(Callback):
    """Export the encoder (``encoder.safetensors`` + ``encoder.json``) when the run finishes
    or the time budget stops it (a run paused with ``stop_after_epoch`` does not: it is meant
    to be resumed)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def on_fit_end(self, trainer: Trainer) -> None:
        finished = trainer.step >= trainer.total_steps or trainer.should_stop
        if finished and trainer.is_main:
            export_encoder(trainer.recipe.encoder, trainer.out_dir, self.name)
