"""The training loop shared by every recipe.

The loop trains: SGD/LARS/AdamW with warm-up + cosine schedule, bf16 autocast and
channels_last where the hardware supports them, gradient caching, torch.distributed, exact
resume. Everything around it is a callback (:mod:`contrastkit.train.callbacks`): the progress
bar, the CSV log (and TensorBoard event files when the ``tensorboard`` package is installed),
the online kNN monitor on a held-out split, the collapse warning, the time budget, atomic
safetensors checkpoints every epoch and the exported encoder. Ctrl-C (SIGINT) or SIGTERM
stops the run after the step under way with a checkpoint inside the epoch
(:class:`TrainingInterrupted`); a resume continues it exactly. The batch is a dict of named
fields whose kinds (:mod:`contrastkit.data.fields`) move them to the device: the loop never
looks at what a field holds.

Example:
    >>> import tempfile, torch
    >>> from contrastkit.data import load_digits
    >>> from contrastkit.encoders import SmallCNN
    >>> from contrastkit.recipes import SimCLR, SimCLRConfig
    >>> from contrastkit.train import Trainer, TrainConfig
    >>> data = load_digits()
    >>> recipe = SimCLR(SmallCNN(1, width=8, stages=2), SimCLRConfig(image_size=8, channels=1, flip=0))
    >>> cfg = TrainConfig(epochs=1, batch_size=128, lr=0.1, out_dir=tempfile.mkdtemp(), progress=False)
    >>> history = Trainer(recipe, data.train, cfg).fit()
    >>> len(history)
    1
"""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from contrastkit import distributed as dist
from contrastkit._io import remove_stale_temp_files
from contrastkit.data.fields import move, rows_in
from contrastkit.train.callbacks import (
    Callback,
    Checkpoint,
    CollapseMonitor,
    CollapseWarning,
    CSVLogger,
    ExportEncoder,
    KNNMonitor,
    ProgressBar,
    TensorBoardLogger,
    TimeBudget,
    _is_terminal,
)
from contrastkit.train.checkpoint import load_state, save_state
from contrastkit.train.export import export_encoder, load_encoder, load_weights
from contrastkit.train.grad_cache import grad_cache_step
from contrastkit.train.optim import build_optimizer, warmup_cosine
from contrastkit.train.precision import autocast, resolve_precision
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = [
    "RESUME_MAY_CHANGE",
    "CollapseWarning",
    "DivergenceError",
    "TrainConfig",
    "Trainer",
    "TrainingInterrupted",
    "export_encoder",
    "load_encoder",
]

CHECKPOINT = "checkpoint.safetensors"


class DivergenceError(FloatingPointError, ValueError):
    """Training diverged (non-finite loss or weights, or weights that exploded): the run
    stopped before writing anything, so the last checkpoint on disk is the last good one."""


class TrainingInterrupted(RuntimeError):
    """Training was stopped by a signal (SIGINT: Ctrl-C, or SIGTERM): the step under way was
    finished and a checkpoint written, from which ``fit(resume=True)`` (the CLI: the same
    command plus ``--resume``) continues exactly, to the weights of an uninterrupted run.

    Attributes:
        signal: the signal's number (``signal.SIGINT``, ``signal.SIGTERM``).
        signal_name: its name, e.g. ``"SIGINT"``.
        epoch: the epoch (from 1) the run stopped in; at an epoch's end, that epoch.
        epoch_step: the steps of that epoch done (``steps_per_epoch`` at its end).
        steps_per_epoch: the optimiser steps of an epoch.
        step: the optimiser steps done in the whole run.
        checkpoint: the checkpoint written.
    """

    def __init__(
        self,
        signum: int,
        epoch: int,
        epoch_step: int,
        steps_per_epoch: int,
        step: int,
        checkpoint: Path,
    ) -> None:
        self.signal = int(signum)
        self.signal_name = signal.Signals(signum).name
        self.epoch, self.epoch_step, self.steps_per_epoch = epoch, epoch_step, steps_per_epoch
        self.step, self.checkpoint = step, Path(checkpoint)
        super().__init__(
            f"training interrupted ({self.signal_name}) at epoch {epoch}, step {epoch_step} of "
            f"{steps_per_epoch}: checkpoint saved in {self.checkpoint}; fit(resume=True) (or "
            f"the same command plus --resume) continues exactly from there."
        )

    def __reduce__(self) -> tuple[Any, ...]:  # picklable (multiprocessing reports errors)
        return (
            type(self),
            (
                self.signal,
                self.epoch,
                self.epoch_step,
                self.steps_per_epoch,
                self.step,
                self.checkpoint,
            ),
        )


#: seconds within which the same signal again is torchrun's copy of it (see Trainer.fit)
_FORWARDED_WITHIN = 2.0


#: TrainConfig options a resumed run may change: where and how it runs, and what only watches
#: the run (the monitor, the collapse warning, the divergence test). Every other option shapes
#: the weights (the schedule, batches, numerics), so a resume must keep it.
RESUME_MAY_CHANGE = frozenset(
    {
        "out_dir",
        "progress",
        "device",
        "tensorboard",
        "max_minutes",
        "monitor_every",
        "knn_k",
        "knn_temperature",
        "collapse_std_ratio",
        "collapse_rank",
        "divergence_factor",
    }
)


#: lr multiplier as a function of batch_size / 256
_LR_SCALING = {"linear": lambda r: r, "sqrt": math.sqrt, "none": lambda r: 1.0}


@dataclass
class TrainConfig:
    """Training-loop settings.

    Attributes:
        epochs, batch_size: length of training and images per step (the global batch: under
            torch.distributed each of W processes takes batch_size / W images of it).
        optimizer: ``sgd``, ``lars``, ``adamw`` or ``adam``; lr (at batch 256, see
            ``lr_scaling``), weight_decay, momentum. ``optimizer``, ``lr`` and
            ``weight_decay`` left at None take the recipe's published setting
            (``Recipe.optim_defaults``).
        lars_eta: LARS trust coefficient η. The update of a layer is lr·η·|w|/|g|·g, so lr and
            η act together: SimCLR used η = 0.001 with lr 4.8 (batch 4096); for the batch sizes
            a CPU affords, solo-learn's η = 0.02 with lr ≈ 0.4 trains much faster.
        lr_scaling: ``"linear"`` multiplies ``lr`` by batch_size/256 (SimCLR's main rule),
            ``"sqrt"`` by √(batch_size/256) (SimCLR's rule for short runs and small batches,
            Chen et al. 2020, appendix B.1), ``"none"`` not at all.
        warmup_epochs: linear warm-up length. final_lr_fraction: lr at the end / base lr.
        precision: ``auto`` (bf16 where supported), ``bf16`` or ``fp32``.
        channels_last: NHWC memory format for conv nets (faster with bf16 on CPU).
        compile: ``torch.compile`` the recipe's trainable parts (encoder, heads) for the
            training steps. Small conv nets are bound by batch-norm and activation memory
            traffic, which compilation fuses: for ResNet-18 at width 0.25 on 28 px on a 2-core
            CPU the model step is ~16% faster and a whole training step ~8% (views, loss and
            optimiser stay eager), after a one-off 20–40 s compile. Needs a C++ compiler on
            CPU. The monitor, checkpoints and the exported encoder stay eager and unchanged.
        sync_bn: under torch.distributed on CUDA, convert BatchNorm layers to SyncBatchNorm
            (statistics over the global batch).
        grad_cache: embed each batch in chunks of this many rows (views) with gradient caching
            (:func:`~contrastkit.train.grad_cache_step`): batches far larger than memory
            allows for one pass, same loss over the whole batch; 0 (default) disables it.
        group_by_length: for data sets whose rows have lengths (texts): batches of rows of
            similar length (sorted within windows of 50 batches, batches shuffled), so little
            compute goes to padding.
        seed: seeds the weights' init (if built after), batch order and augmentations.
        out_dir: checkpoints, logs and the exported encoder go here.
        monitor_every: run the kNN monitor every this many epochs (0: never).
        knn_k, knn_temperature: the monitor's kNN.
        collapse_std_ratio, collapse_rank: thresholds of the collapse warning.
        max_minutes: stop after this wall time (checkpoint kept; None: no limit).
        divergence_factor: after every optimiser step the trainer checks the weights: it
            stops the run with :class:`DivergenceError` (naming the epoch and step) when the
            loss or a weight is not finite, or when the largest |weight| of the trainable
            parameters exceeds ``divergence_factor`` times its value when training started
            (default 1e4: a healthy run moves its largest weight by a small factor, about ×1.5
            for small_cnn on digits; at lr 1e6 SGD and AdamW reach 1e19 and more). The error
            is raised before the epoch's checkpoint and before the export, so the checkpoint
            on disk is the last good one. The loss itself is not tested for growth: a
            contrastive loss on normalised embeddings stays bounded while the weights explode.
            None turns the growth test off (non-finite values still stop the run).
        fit_to_budget: with ``max_minutes``, time ``fit_probe_steps`` training steps (after two
            warm-up steps, so compilation is not counted) and lower the run's length to the steps
            that fit in the budget (less 5% for checkpoints and the monitor; the last epoch may
            be partial), so that the warm-up + cosine schedule (and momentum schedules) end
            inside it instead of being cut by the time limit. ``epochs`` is then an upper
            bound. After every epoch the length is fitted again from that epoch's speed, and
            the cosine continues from where it is to the new end (no jump in the lr), so a
            machine that slows down or speeds up later still ends its schedule in the budget.
            The fitted count is kept in the checkpoint (resume continues the same schedule,
            without refits). The count depends on the machine's speed,
            so two runs on different machines can train for different numbers of epochs.
        tensorboard: ``"auto"`` writes TensorBoard event files to ``out_dir/tensorboard`` when
            the ``tensorboard`` package is installed; True requires it; False never.
        progress: show a progress bar.
        device: ``auto`` (cuda if available) or a torch device string.
    """

    epochs: int = 10
    batch_size: int = 256
    optimizer: str | None = None
    lr: float | None = None
    lr_scaling: str = "linear"
    weight_decay: float | None = None
    momentum: float = 0.9
    lars_eta: float = 0.02
    warmup_epochs: float = 1.0
    final_lr_fraction: float = 0.0
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False
    grad_cache: int = 0
    group_by_length: bool = True
    sync_bn: bool = False
    seed: int = 0
    out_dir: str = "runs/contrastkit"
    monitor_every: int = 1
    knn_k: int = 200
    knn_temperature: float = 0.1
    collapse_std_ratio: float = 0.1
    collapse_rank: float = 2.0
    max_minutes: float | None = None
    divergence_factor: float | None = 1e4
    fit_to_budget: bool = False
    fit_probe_steps: int = 20
    tensorboard: bool | str = "auto"
    progress: bool = True
    device: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be ≥ 1, got {self.epochs}.")
        if self.batch_size < 2:
            raise ValueError(
                f"batch_size must be ≥ 2 (contrastive losses need pairs), got {self.batch_size}."
            )
        if self.fit_to_budget and not self.max_minutes:
            raise ValueError(
                "fit_to_budget needs a time budget: set max_minutes (e.g. max_minutes=30)."
            )
        if self.divergence_factor is not None and not self.divergence_factor > 1:
            raise ValueError(
                f"divergence_factor must be > 1 (or None to turn the test off), got "
                f"{self.divergence_factor}."
            )
        if self.fit_probe_steps < 1:
            raise ValueError(f"fit_probe_steps must be ≥ 1, got {self.fit_probe_steps}.")
        if self.lr_scaling not in _LR_SCALING:
            raise ValueError(
                f"lr_scaling must be one of {sorted(_LR_SCALING)}, got {self.lr_scaling!r}."
            )

    def resolved(self, recipe: Recipe) -> TrainConfig:
        """This config with ``optimizer``, ``lr`` and ``weight_decay`` left at None taken from
        the recipe's ``optim_defaults``."""
        fill = {k: v for k, v in recipe.optim_defaults.items() if getattr(self, k, 0) is None}
        return dataclasses.replace(self, **fill) if fill else self

    @property
    def base_lr(self) -> float:
        """``lr`` scaled from batch 256 to ``batch_size`` by the ``lr_scaling`` rule."""
        if self.lr is None:
            raise ValueError("lr is unset; resolve it from the recipe first (config.resolved).")
        return self.lr * _LR_SCALING[self.lr_scaling](self.batch_size / 256)


def _group_by_length(perm: Tensor, lengths: Tensor, batch: int, g: torch.Generator) -> Tensor:
    """Reorder a random permutation so each batch holds texts of similar length.

    Within windows of 50 batches the rows are sorted by length and cut into batches; the
    batches are then shuffled (Hugging Face's length-grouped sampler). Padding per batch
    falls from the longest text of a random batch to a near neighbour's length.
    """
    window = 50 * batch
    chunks = []
    for s in range(0, len(perm), window):
        part = perm[s : s + window]
        chunks.append(part[lengths[part].argsort(descending=True, stable=True)])
    ordered = torch.cat(chunks)
    n = len(ordered) // batch
    blocks = ordered[: n * batch].view(n, batch)[torch.randperm(n, generator=g)]
    return torch.cat([blocks.flatten(), ordered[n * batch :]])


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Trainer:
    """Train a :class:`~contrastkit.recipes.Recipe` on an in-memory data set.

    Args:
        recipe: the method (towers, heads, views, loss).
        train: the training rows: any data set with ``len``, ``rows(index) -> batch dict``
            and ``labels`` (or None); optionally ``fields`` ({field: kind}, see
            :mod:`contrastkit.data.fields`) and ``row_lengths()`` (for ``group_by_length``).
        config: :class:`TrainConfig`.
        monitor: optional (reference, held_out) labelled sets for the kNN monitor
            (:class:`~contrastkit.train.callbacks.KNNMonitor`). Use a split carved from the
            training data, never the test set.
        encoder_name: registry name of the encoder; the encoder is exported under it when
            the run ends (:class:`~contrastkit.train.callbacks.ExportEncoder`).
        callbacks: more :class:`~contrastkit.train.callbacks.Callback` objects, run after the
            default ones (:meth:`default_callbacks`).
    """

    def __init__(
        self,
        recipe: Recipe,
        train: Any,
        config: TrainConfig,
        *,
        monitor: tuple[Any, Any] | None = None,
        encoder_name: str | None = None,
        callbacks: list[Callback] | tuple[Callback, ...] = (),
    ) -> None:
        config = config.resolved(recipe)
        if recipe.needs_labels and train.labels is None:
            raise ValueError(
                f"the {recipe.name} recipe needs labels but {getattr(train, 'name', '') or 'the data'} has none."
            )
        if len(train) < config.batch_size:
            raise ValueError(
                f"batch_size {config.batch_size} is larger than the {len(train)} training "
                f"rows; lower batch_size."
            )
        self.world, self.rank = dist.world_size(), dist.rank()
        if config.batch_size % self.world:
            raise ValueError(
                f"batch_size {config.batch_size} is the global batch and must split evenly over "
                f"the {self.world} processes; use a multiple of {self.world}."
            )
        self.local_batch = config.batch_size // self.world
        self.is_main = self.rank == 0
        self.recipe = recipe
        self.train = train
        self.config = config
        self.device = _device(config.device)
        self.precision = resolve_precision(config.precision, self.device)
        self.out_dir = Path(config.out_dir)
        self.steps_per_epoch = len(train) // config.batch_size
        #: steps of this run: config.epochs' worth, or fewer once fitted to the time budget
        self.total_steps = self.steps_per_epoch * config.epochs
        self.length_fitted = False
        #: set by a callback (time budget, a user's early stop) to end the run after the step
        self.should_stop = False
        self.recipe.to(self.device)
        if config.sync_bn and self.world > 1:
            if self.device.type != "cuda":
                raise ValueError(
                    "sync_bn needs CUDA (torch's SyncBatchNorm has no CPU kernel); on CPU "
                    "leave sync_bn off (each process normalises its own share of the batch)."
                )
            self.recipe = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.recipe)
        dist.broadcast_module(self.recipe)  # every process starts from rank 0's weights
        if config.channels_last:
            self.recipe.to(memory_format=torch.channels_last)
        self.optimizer = build_optimizer(
            recipe,
            config.optimizer,
            lr=config.base_lr,
            weight_decay=config.weight_decay,
            momentum=config.momentum,
            lars_eta=config.lars_eta,
        )
        self.scheduler = warmup_cosine(
            self.optimizer,
            self.total_steps,
            int(round(config.warmup_epochs * self.steps_per_epoch)),
            config.final_lr_fraction,
        )
        self.epoch = 0
        self.step = 0
        self.history: list[dict[str, float]] = []
        # this epoch's running figures (for the progress bar and the epoch's log row)
        self.epoch_steps, self.epoch_rows, self.epoch_loss = 0, 0, 0.0
        self.epoch_start, self.epoch_seconds = time.time(), 0.0
        self._metric_sums: dict[str, float] = {}
        #: an epoch is under way (its steps started and its end not reached): a checkpoint
        #: written now holds the epoch's progress, and a resume continues inside the epoch
        self._in_epoch = False
        #: the signal (SIGINT, SIGTERM) that asked the run to stop, while fit handles them
        self._signal: int | None = None
        self._lengths: Tensor | None = None
        #: largest |weight| of the trainable parameters when training started (divergence test)
        self.weight_start: float | None = None
        measure, write = self.default_callbacks(monitor, encoder_name)
        self.callbacks: list[Callback] = [*measure, *callbacks, *write]

    def default_callbacks(
        self, monitor: tuple[Any, Any] | None = None, encoder_name: str | None = None
    ) -> tuple[list[Callback], list[Callback]]:
        """The callbacks every run has: (those that measure, those that write), in order.

        Measure: time budget (first, so that a refitted length is in the epoch's row),
        collapse statistics, the kNN monitor. Write: checkpoint, CSV log (after the
        checkpoint: the log never runs ahead of it), TensorBoard, progress bar, export.
        """
        c = self.config
        measure: list[Callback] = []
        if c.max_minutes:
            measure.append(TimeBudget(c.max_minutes, c.fit_to_budget, c.fit_probe_steps))
        measure.append(CollapseMonitor(c.collapse_std_ratio, c.collapse_rank))
        if monitor is not None:
            measure.append(
                KNNMonitor(
                    *monitor, every=c.monitor_every, k=c.knn_k, temperature=c.knn_temperature
                )
            )
        write: list[Callback] = [
            Checkpoint(),
            CSVLogger(),
            TensorBoardLogger(c.tensorboard),
            ProgressBar(c.progress),
        ]
        if encoder_name:
            write.append(ExportEncoder(encoder_name))
        return measure, write

    # ----------------------------------------------------------------- state
    @property
    def lr(self) -> float:
        """The learning rate of the next step (first parameter group)."""
        return self.optimizer.param_groups[0]["lr"]

    @property
    def epochs(self) -> int:
        """Epochs of this run (the last one partial when the length was fitted to a budget)."""
        return -(-self.total_steps // self.steps_per_epoch)

    def rows_per_second(self) -> float:
        """Training rows (over all processes) per second in the current epoch."""
        return self.epoch_rows / max(time.time() - self.epoch_start, 1e-9)

    def set_length(self, total_steps: int) -> None:
        """Set the run's length in steps and move the cosine horizon with it (continuously:
        the lr of the next step is the one the old horizon gave it)."""
        self.total_steps = total_steps
        for fn in self.scheduler.lr_lambdas:
            fn.refit(self.step, total_steps)

    def state_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            # every process's augmentation stream, so that a resumed run continues each one
            "rng_cpu_ranks": dist.gather_rng_states(),
            "epoch": self.epoch,
            "step": self.step,
            # inside an epoch (a run interrupted by a signal): its steps done and running
            # figures, so a resume skips those steps and logs the epoch's row as one run would
            "epoch_progress": self._epoch_progress() if self._in_epoch else None,
            "total_steps": self.total_steps,
            "length_fitted": self.length_fitted,
            "history": self.history,
            "weight_start": self.weight_start,
            "config": asdict(self.config),
            "recipe_name": self.recipe.name,
        }

    def load_state_dict(self, state: dict[str, Any], source: str = "the checkpoint") -> None:
        load_weights(
            self.recipe,
            state["recipe"],
            source,
            "the same --encoder/--recipe (and their options) or a new out_dir",
        )
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        ranks = state.get("rng_cpu_ranks") or []
        if self.world > 1 and len(ranks) == self.world:
            torch.set_rng_state(ranks[self.rank])
        else:
            torch.set_rng_state(state["rng_cpu"])
        if torch.cuda.is_available() and state["rng_cuda"]:
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        self.epoch = int(state["epoch"])
        self.step = int(state["step"])
        # the lr schedule's horizon came back with the scheduler's state
        self.total_steps = int(state.get("total_steps", self.steps_per_epoch * self.config.epochs))
        self.length_fitted = bool(state.get("length_fitted", False))
        self.history = list(state["history"])
        start = state.get("weight_start")
        self.weight_start = float(start) if start is not None else None
        progress = state.get("epoch_progress")  # None: saved at an epoch's end
        self._in_epoch = bool(progress)
        if progress:
            self.epoch_steps = int(progress["steps"])
            self.epoch_rows = int(progress["rows"])
            self.epoch_loss = float(progress["loss"])
            self._metric_sums = {k: float(v) for k, v in progress["metrics"].items()}
            self.epoch_start = time.time() - float(progress["seconds"])

    def _epoch_progress(self) -> dict[str, Any]:
        """The epoch under way: its steps done and its running figures."""
        return {
            "steps": self.epoch_steps,
            "rows": self.epoch_rows,
            "loss": self.epoch_loss,
            "seconds": time.time() - self.epoch_start,
            "metrics": dict(self._metric_sums),
        }

    def save_checkpoint(self) -> Path:
        """Write the checkpoint (the main process writes; every process must call this)."""
        path = self.out_dir / CHECKPOINT
        state = self.state_dict()  # collective under torch.distributed
        if self.is_main:
            save_state(path, state)
        return path

    def resume(self, path: str | os.PathLike | None = None) -> bool:
        """Load the latest checkpoint (``out_dir/checkpoint.safetensors`` by default).

        The checkpoint's :class:`TrainConfig` must match this run's in every option but
        :data:`RESUME_MAY_CHANGE` (``out_dir``, ``progress``, ``device``, ``tensorboard``,
        ``max_minutes``, the monitor's, the collapse warning's and ``divergence_factor``), and
        its recipe must be this run's: one ``ValueError`` names every difference. A model
        whose weights do not fit (another encoder) is refused in one line too.

        Returns False when there is none (training starts from scratch).
        """
        path = Path(path) if path else self.out_dir / CHECKPOINT
        if not path.exists():
            return False
        state = load_state(path, device="cpu")
        diffs = self.config_differences(state.get("config") or {})
        saved_recipe = state.get("recipe_name")
        if saved_recipe is not None and saved_recipe != self.recipe.name:
            diffs.insert(0, f"recipe={saved_recipe!r} -> {self.recipe.name!r}")
        if diffs:
            raise ValueError(
                f"cannot resume from {path} with other settings ({'; '.join(diffs)}); use the "
                f"checkpoint's settings or a new out_dir."
            )
        self.load_state_dict(state, f"the checkpoint in {path}")
        return True

    def config_differences(self, saved: dict[str, Any]) -> list[str]:
        """``"option=old -> new"`` for every option of a saved config (``asdict`` of a
        TrainConfig) that differs from this run's, but :data:`RESUME_MAY_CHANGE`; options the
        saved config does not have (older versions) are not compared."""
        import json

        current = json.loads(json.dumps(asdict(self.config)))  # tuples -> lists, as saved
        return [
            f"{key}={saved[key]!r} -> {value!r}"
            for key, value in current.items()
            if key not in RESUME_MAY_CHANGE and key in saved and saved[key] != value
        ]

    # ------------------------------------------------------------------ loop
    def _batches(self, epoch: int, skip: int = 0) -> Iterator[dict[str, Any]]:
        """The epoch's batches (the same order in every run with this seed), but the first
        ``skip`` (done before a resume), which are neither read nor moved."""
        g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        perm = torch.randperm(len(self.train), generator=g)
        bs, lb = self.config.batch_size, self.local_batch
        if self.config.group_by_length and hasattr(self.train, "row_lengths"):
            if self._lengths is None:
                self._lengths = torch.as_tensor(self.train.row_lengths())
            perm = _group_by_length(perm, self._lengths, bs, g)
        kinds = getattr(self.train, "fields", None)
        for i in range(skip, self.steps_per_epoch):
            # the same global batch on every process; each takes its contiguous share
            idx = perm[i * bs : (i + 1) * bs][self.rank * lb : (self.rank + 1) * lb]
            # the data set's fields, and "indices": data-set indices, the global instance
            # ids of queues and memory banks; each field moves to the device through its kind
            yield move(self.train.rows(idx), self.device, kinds)

    def fit(
        self, resume: bool = False, stop_after_epoch: int | None = None
    ) -> list[dict[str, float]]:
        """Train for the configured epochs.

        Args:
            resume: continue from ``out_dir/checkpoint.safetensors`` when it exists (written at
                an epoch's end, or inside one when a signal stopped the run: its steps done are
                skipped); the run then ends with exactly the weights of an uninterrupted run.
            stop_after_epoch: end this call after that epoch (checkpoint written), e.g. to
                split a long run into sessions; resume later with ``resume=True``.

        Raises:
            TrainingInterrupted: SIGINT (Ctrl-C) or SIGTERM arrived (fit handles them when
                called from the main thread, and restores the previous handlers when it
                returns or raises). The step under way is finished, a checkpoint is written
                (inside the epoch: no step is lost) and the error raised; ``resume=True``
                continues exactly. Under torch.distributed every process stops at the same
                step, whichever process the signal reached. A second signal while stopping
                raises ``KeyboardInterrupt`` at once (the checkpoint on disk is then the last
                one written: each write is atomic); under torch.distributed the same signal
                again within 2 s is not a second one (torchrun's agent forwards to each
                worker the Ctrl-C the terminal also sent it).
            DivergenceError: the loss or the weights diverged (nothing written).
        """
        compiled = self._compile_targets() if self.config.compile else []
        for module in compiled:
            module.compile(dynamic=False)
        previous = self._handle_signals()
        try:
            return self._fit(resume, stop_after_epoch)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._signal = None
            for module in compiled:  # back to eager: evaluation and export see plain modules
                module._compiled_call_impl = None

    def _handle_signals(self) -> dict[int, Any]:
        """Make SIGINT and SIGTERM ask the run to stop after the step under way (the second
        one raises KeyboardInterrupt at once); returns the handlers they replace. Only the
        main thread may set handlers: elsewhere nothing changes."""
        self._signal = None
        if threading.current_thread() is not threading.main_thread():
            return {}

        # Under torchrun a Ctrl-C reaches each worker twice: from the terminal, and from the
        # agent, which forwards the signal it got at once. The same signal again within this
        # many seconds is that copy, not the user insisting.
        again_after = _FORWARDED_WITHIN if self.world > 1 else 0.0
        first = [0.0]

        def stop(signum: int, frame: Any) -> None:
            if self._signal is not None:
                if signum == self._signal and time.monotonic() - first[0] < again_after:
                    return  # the agent's copy of the same signal
                raise KeyboardInterrupt(f"{signal.Signals(signum).name} while stopping")
            self._signal, first[0] = signum, time.monotonic()
            if self.is_main and _is_terminal(sys.stderr):
                sys.stderr.write(
                    f"\n{signal.Signals(signum).name}: stopping after this step and writing "
                    f"a checkpoint (press Ctrl-C again to quit at once)\n"
                )

        previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(signum)
            if handler is not None:  # None: set outside Python, cannot be put back
                previous[signum] = handler
                signal.signal(signum, stop)
        return previous

    def _stop_signal(self) -> int | None:
        """The signal that asks the run to stop, or None. Under torch.distributed the
        processes agree (one small all-reduce), so all stop at the same step even when the
        signal reached only some; SIGINT wins when both arrived."""
        if self.world == 1:
            return self._signal
        got = [self._signal == signal.SIGINT, self._signal == signal.SIGTERM]
        sums = dist.all_reduce_sum(torch.tensor(got, dtype=torch.int32, device=self.device))
        n_int, n_term = sums.tolist()
        return signal.SIGINT if n_int else signal.SIGTERM if n_term else None

    def _interrupted(self, signum: int) -> TrainingInterrupted:
        """Write the checkpoint (inside the epoch when one is under way) and return the
        error to raise."""
        path = self.save_checkpoint()
        dist.barrier()  # the checkpoint is written before any process goes on
        if self._in_epoch:
            epoch, done = self.epoch + 1, self.epoch_steps
        else:  # between epochs: the last one is done
            epoch, done = max(self.epoch, 1), self.steps_per_epoch if self.epoch else 0
        return TrainingInterrupted(
            signum, epoch, done, self.steps_per_epoch, self.step, path.resolve()
        )

    def _compile_targets(self) -> list[torch.nn.Module]:
        """The recipe's direct children with trainable parameters (encoder, heads), and the
        frozen networks of momentum encoders (run once per step, without gradient)."""
        out = []
        for m in self.recipe.children():
            if any(p.requires_grad for p in m.parameters()):
                out.append(m)
            elif isinstance(getattr(m, "target", None), torch.nn.Module):
                out.append(m.target)
        return out

    def _call(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    def _fit(self, resume: bool, stop_after_epoch: int | None) -> list[dict[str, float]]:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.is_main:  # what writers killed mid-write left behind (checkpoints, logs)
            remove_stale_temp_files(self.out_dir)
        if not (resume and self.resume()):
            # process r > 0 draws its own views; process 0 matches a one-process run
            torch.manual_seed(self.config.seed + 1_000_003 * self.rank)
        self.should_stop = False
        if self.weight_start is None:
            self.weight_start = self._weight_max()
        try:
            self._call("on_fit_start")
            self._loop(stop_after_epoch)
        except BaseException as err:  # interrupted, diverged, a callback's error
            self._abort(err)
            raise
        self._call("on_fit_end")
        dist.barrier()  # the files are written before any process goes on
        return self.history

    def _loop(self, stop_after_epoch: int | None) -> None:
        """The epochs and their steps; raises :class:`TrainingInterrupted` on a signal."""
        last = self.epochs if stop_after_epoch is None else min(stop_after_epoch, self.epochs)
        while self.epoch < last and not self.should_stop:
            self.recipe.train()
            if not self._in_epoch:  # a new epoch, not one a resume continues
                self.epoch_steps, self.epoch_rows, self.epoch_loss = 0, 0, 0.0
                self.epoch_start, self._metric_sums = time.time(), {}
                self._in_epoch = True
            for batch in self._batches(self.epoch, skip=self.epoch_steps):
                if self.step >= self.total_steps:  # resumed at the end of a fitted run
                    break
                out, loss = self._train_step(batch)
                self._call("on_step_end", out, loss)
                if (signum := self._stop_signal()) is not None:
                    raise self._interrupted(signum)
                # a run fitted to a budget may end inside an epoch
                if self.step >= self.total_steps or self.should_stop:
                    break
            self._in_epoch = False
            self.epoch += 1
            self.epoch_seconds = time.time() - self.epoch_start
            row = self._epoch_row()
            self._call("on_epoch_end", row)
            if (signum := self._stop_signal()) is not None:  # it came during the epoch's end
                raise self._interrupted(signum)
            last = self.epochs if stop_after_epoch is None else min(stop_after_epoch, self.epochs)

    def _abort(self, err: BaseException) -> None:
        """Let every callback release what it holds (``on_fit_abort``) when fit raises; an
        error there is reported as a note, never in place of ``err``."""
        for callback in self.callbacks:
            try:
                callback.on_fit_abort(self, err)
            except Exception as other:  # err is the one to raise
                if hasattr(err, "add_note"):  # Python ≥ 3.11
                    err.add_note(f"{type(callback).__name__}.on_fit_abort failed too: {other!r}")

    def _train_step(self, batch: dict[str, Any]) -> tuple[LossOutput, float]:
        """One optimiser step on ``batch``; returns its output and its loss averaged over
        processes (the loss of the global batch)."""
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.precision, self.device):
            if self.config.grad_cache:  # backward happens inside, chunk by chunk
                out = grad_cache_step(self.recipe, batch, self.config.grad_cache)
            else:
                out = self.recipe.step(batch)
        loss_value = float(dist.all_reduce_sum(out.loss.detach().float())) / self.world
        if not math.isfinite(loss_value):
            self._diverged(f"the loss is {loss_value}")
        if not self.config.grad_cache:
            out.loss.backward()
        dist.average_gradients(self.recipe)
        self.optimizer.step()
        self._check_weights()
        self.scheduler.step()
        self.step += 1
        self._call("on_optimizer_step")
        self.recipe.on_step_end(self.step, self.total_steps)
        self.epoch_loss += loss_value
        self.epoch_steps += 1
        self.epoch_rows += rows_in(batch["indices"]) * self.world
        for key, value in out.metrics.items():
            self._metric_sums[key] = self._metric_sums.get(key, 0.0) + float(value)
        return out, loss_value

    def _weight_max(self) -> float:
        """Largest |weight| over the trainable parameters (NaN if any is NaN)."""
        params = [p.detach() for p in self.recipe.parameters() if p.requires_grad]
        if not params:
            return 0.0
        return float(torch.stack([n.float() for n in torch._foreach_norm(params, math.inf)]).max())

    def _check_weights(self) -> None:
        """Stop the run when a weight is not finite or grew past the divergence limit (the
        weights are the same on every process, so every process stops at the same step)."""
        w = self._weight_max()
        if not math.isfinite(w):
            self._diverged(f"a weight is {w}")
        factor, start = self.config.divergence_factor, self.weight_start
        if factor is not None and start is not None and w > factor * max(start, 1e-3):
            self._diverged(
                f"the largest |weight| is {w:.3g}, more than divergence_factor={factor:g} "
                f"times its {start:.3g} at the start"
            )

    def _diverged(self, what: str) -> None:
        """Raise :class:`DivergenceError` for the current step (nothing is written)."""
        ckpt = self.out_dir / CHECKPOINT
        kept = (
            f"the last good checkpoint, {ckpt} (epoch {self.history[-1]['epoch']:.0f}), is kept"
            if ckpt.exists() and self.history
            else "no checkpoint was written"
        )
        raise DivergenceError(
            f"training diverged at epoch {self.epoch + 1}, step {self.step + 1}: {what}. "
            f"Stopped before writing anything: {kept}. Lower the learning rate (lr) and train "
            f"again in a new out_dir (precision='fp32' rules out a bf16 overflow)."
        )

    def _epoch_row(self) -> dict[str, float]:
        """The epoch's log row; the epoch-end callbacks add to it, the history keeps it."""
        n = max(self.epoch_steps, 1)
        row: dict[str, float] = {
            "epoch": self.epoch,
            "step": self.step,
            "loss": self.epoch_loss / n,
            "lr": self.lr,
            "rows_per_s": self.epoch_rows / max(self.epoch_seconds, 1e-9),
            "seconds": self.epoch_seconds,
        }
        # the recipe's own scalars (loss terms, momentum), averaged over the epoch's steps
        row.update({k: v / n for k, v in self._metric_sums.items()})
        self.history.append(row)
        return row
