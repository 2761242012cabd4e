"""The training loop shared by every recipe.

Features: SGD/LARS/AdamW with warm-up + cosine schedule, bf16 autocast and channels_last
where the hardware supports them, atomic safetensors checkpoints every epoch and exact resume,
a progress bar (loss, lr, images/s), a CSV log (and TensorBoard event files when the
``tensorboard`` package is installed), an online kNN monitor on a held-out split, and a collapse
warning.

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

import csv
import io
import json
import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from contrastkit import distributed as dist
from contrastkit.data.datasets import ImageSet
from contrastkit.evaluate.collapse import collapse_stats
from contrastkit.evaluate.features import extract_features
from contrastkit.evaluate.knn import knn_accuracy
from contrastkit.train.checkpoint import atomic_write_bytes, load_state, save_state
from contrastkit.train.grad_cache import grad_cache_step
from contrastkit.train.optim import build_optimizer, warmup_cosine
from contrastkit.train.precision import autocast, resolve_precision
from contrastkit.train.recipe import Recipe

__all__ = ["CollapseWarning", "TrainConfig", "Trainer", "export_encoder", "load_encoder"]

CHECKPOINT = "checkpoint.safetensors"


class CollapseWarning(UserWarning):
    """The embeddings are collapsing (tiny spread or effective rank)."""


#: lr multiplier as a function of batch_size / 256
_LR_SCALING = {"linear": lambda r: r, "sqrt": math.sqrt, "none": lambda r: 1.0}


@dataclass
class TrainConfig:
    """Training-loop settings.

    Attributes:
        epochs, batch_size: length of training and images per step (the global batch: under
            torch.distributed each of W processes takes batch_size / W images of it).
        optimizer: ``sgd``, ``lars``, ``adamw`` or ``adam``; lr, weight_decay, momentum.
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
        group_by_length: text data: batches of texts of similar length (sorted within
            windows of 50 batches, batches shuffled), so little compute goes to padding.
        seed: seeds the weights' init (if built after), batch order and augmentations.
        out_dir: checkpoints, logs and the exported encoder go here.
        monitor_every: run the kNN monitor every this many epochs (0: never).
        knn_k, knn_temperature: the monitor's kNN.
        collapse_std_ratio, collapse_rank: thresholds of the collapse warning.
        max_minutes: stop after this wall time (checkpoint kept; None: no limit).
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
    optimizer: str = "sgd"
    lr: float = 0.3
    lr_scaling: str = "linear"
    weight_decay: float = 1e-4
    momentum: float = 0.9
    lars_eta: float = 0.02
    warmup_epochs: float = 1.0
    final_lr_fraction: float = 0.0
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False
    grad_cache: int = 0
    group_by_length: bool = False
    sync_bn: bool = False
    seed: int = 0
    out_dir: str = "runs/contrastkit"
    monitor_every: int = 1
    knn_k: int = 200
    knn_temperature: float = 0.1
    collapse_std_ratio: float = 0.1
    collapse_rank: float = 2.0
    max_minutes: float | None = None
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
        if self.fit_probe_steps < 1:
            raise ValueError(f"fit_probe_steps must be ≥ 1, got {self.fit_probe_steps}.")
        if self.lr_scaling not in _LR_SCALING:
            raise ValueError(
                f"lr_scaling must be one of {sorted(_LR_SCALING)}, got {self.lr_scaling!r}."
            )

    @property
    def base_lr(self) -> float:
        """``lr`` scaled from batch 256 to ``batch_size`` by the ``lr_scaling`` rule."""
        return self.lr * _LR_SCALING[self.lr_scaling](self.batch_size / 256)


def _is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is an interactive terminal (False for files, pipes and notebooks'
    captured streams that do not say)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


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


def _inputs_of(data: Any) -> Tensor | list[str]:
    """What an encoder embeds of a data set: its images (ImageSet) or its texts (TextSet)."""
    return data.images if hasattr(data, "images") else list(data.texts)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def export_encoder(encoder: torch.nn.Module, out_dir: str | os.PathLike, name: str) -> Path:
    """Write ``encoder.safetensors`` + ``encoder.json`` (architecture name and config).

    The pair loads with :func:`load_encoder` without any recipe class. An encoder with an
    ``export_assets(folder)`` method (Hugging Face text encoders: tokenizer + model config)
    writes them to ``out_dir/hf`` too, so the export does not depend on the base model's
    folder; its ``model_path`` is then stored relative to ``out_dir``.
    """
    out = Path(out_dir)
    save_state(out / "encoder.safetensors", {"state_dict": encoder.state_dict()})
    config = getattr(encoder, "config", {})
    if hasattr(encoder, "export_assets"):
        config = encoder.export_assets(out / "hf")
    meta = {"encoder": name, "config": config, "out_dim": encoder.out_dim}
    atomic_write_bytes(out / "encoder.json", json.dumps(meta, indent=2).encode())
    return out / "encoder.safetensors"


def load_encoder(path: str | os.PathLike, device: str = "cpu") -> torch.nn.Module:
    """Load an encoder written by :func:`export_encoder` (a directory or its .safetensors)."""
    from contrastkit.encoders import build_encoder

    p = Path(path)
    folder = p if p.is_dir() else p.parent
    meta = json.loads((folder / "encoder.json").read_text())
    config = dict(meta["config"])
    if "model_path" in config and not Path(config["model_path"]).is_absolute():
        config["model_path"] = str(folder / config["model_path"])  # exported with the encoder
    encoder = build_encoder(meta["encoder"], **config)
    state = load_state(folder / "encoder.safetensors", device=device)["state_dict"]
    encoder.load_state_dict(state)
    return encoder.to(device).eval()


class Trainer:
    """Train a :class:`~contrastkit.recipes.Recipe` on an in-memory :class:`ImageSet`.

    Args:
        recipe: the method (encoder, heads, views, loss).
        train: training images (and labels for supervised recipes).
        config: :class:`TrainConfig`.
        monitor: optional (reference, held_out) image sets with labels for the kNN monitor.
            Use a split carved from the training data, never the test set.
        encoder_name: registry name of the encoder, for export (optional).
    """

    def __init__(
        self,
        recipe: Recipe,
        train: ImageSet,
        config: TrainConfig,
        *,
        monitor: tuple[ImageSet, ImageSet] | None = None,
        encoder_name: str | None = None,
    ) -> None:
        if recipe.needs_labels and train.labels is None:
            raise ValueError(
                f"the {recipe.name} recipe needs labels but {train.name or 'the data'} has none."
            )
        if len(train) < config.batch_size:
            raise ValueError(
                f"batch_size {config.batch_size} is larger than the {len(train)} training "
                f"images; lower batch_size."
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
        self.monitor = monitor
        self.encoder_name = encoder_name
        self.device = _device(config.device)
        self.precision = resolve_precision(config.precision, self.device)
        self.out_dir = Path(config.out_dir)
        self.steps_per_epoch = len(train) // config.batch_size
        #: steps of this run: config.epochs' worth, or fewer once fitted to the time budget
        self.total_steps = self.steps_per_epoch * config.epochs
        self.length_fitted = False
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
        self._tb: Any = None
        self._lengths: Tensor | None = None  # text lengths, for group_by_length

    # ----------------------------------------------------------------- state
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
            "total_steps": self.total_steps,
            "length_fitted": self.length_fitted,
            "history": self.history,
            "config": asdict(self.config),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.recipe.load_state_dict(state["recipe"])
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

    def save_checkpoint(self) -> Path:
        """Write the checkpoint (the main process writes; every process must call this)."""
        path = self.out_dir / CHECKPOINT
        state = self.state_dict()  # collective under torch.distributed
        if self.is_main:
            save_state(path, state)
        return path

    def resume(self, path: str | os.PathLike | None = None) -> bool:
        """Load the latest checkpoint (``out_dir/checkpoint.safetensors`` by default).

        Returns False when there is none (training starts from scratch).
        """
        path = Path(path) if path else self.out_dir / CHECKPOINT
        if not path.exists():
            return False
        state = load_state(path, device="cpu")
        saved = state["config"]
        for key in ("batch_size", "epochs", "seed", "optimizer"):
            if saved.get(key) != getattr(self.config, key):
                raise ValueError(
                    f"cannot resume from {path}: it was trained with {key}={saved.get(key)!r}, "
                    f"this run has {key}={getattr(self.config, key)!r}. Use the same settings "
                    f"or a new out_dir."
                )
        self.load_state_dict(state)
        return True

    @property
    def epochs(self) -> int:
        """Epochs of this run (the last one partial when the length was fitted to a budget)."""
        return -(-self.total_steps // self.steps_per_epoch)

    def _set_length(self, total_steps: int, bar: Any) -> None:
        """Set the run's length in steps and move the cosine horizon with it (continuously:
        the lr of the next step is the one the old horizon gave it)."""
        self.total_steps = total_steps
        for fn in self.scheduler.lr_lambdas:
            fn.refit(self.step, total_steps)
        bar.total = total_steps
        bar.refresh()

    def _fit_steps(self, seconds_per_step: float, elapsed: float) -> int:
        """Total steps (≤ config.epochs' worth, > the current step) that end in the budget."""
        budget = 60 * float(self.config.max_minutes) * 0.95 - elapsed
        steps = self.step + int(max(0.0, budget) / max(seconds_per_step, 1e-9))
        steps = max(self.step + 1, min(self.steps_per_epoch * self.config.epochs, steps))
        # every process must train the same number of steps: agree on the mean of the counts
        return int(float(dist.all_reduce_sum(torch.tensor(float(steps)))) / self.world)

    # ------------------------------------------------------------------ loop
    def _batches(self, epoch: int):
        g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        perm = torch.randperm(len(self.train), generator=g)
        bs, lb = self.config.batch_size, self.local_batch
        if self.config.group_by_length and hasattr(self.train, "texts"):
            perm = _group_by_length(perm, self._text_lengths(), bs, g)
        for i in range(self.steps_per_epoch):
            # the same global batch on every process; each takes its contiguous share
            idx = perm[i * bs : (i + 1) * bs][self.rank * lb : (self.rank + 1) * lb]
            # images / texts, labels, and "indices": data-set indices, the global instance
            # ids of queues and memory banks; tensors move to the device, texts stay lists
            yield {
                k: v.to(self.device, non_blocking=True) if isinstance(v, Tensor) else v
                for k, v in self.train.rows(idx).items()
            }

    def _text_lengths(self) -> Tensor:
        if self._lengths is None:
            self._lengths = torch.tensor([len(t) for t in self.train.texts])
        return self._lengths

    def _monitor(self) -> dict[str, float]:
        if self.monitor is None or not self.is_main:
            return {}
        ref, held = self.monitor
        kw = dict(bf16=self.precision == "bf16", channels_last=self.config.channels_last)
        enc = self.recipe.encoder
        with torch.compiler.set_stance("force_eager"):  # no recompiles for eval shapes
            f_ref = extract_features(enc, _inputs_of(ref), device=self.device, **kw)
            f_held = extract_features(enc, _inputs_of(held), device=self.device, **kw)
        acc = knn_accuracy(
            f_ref,
            ref.labels,
            f_held,
            held.labels,
            k=self.config.knn_k,
            temperature=self.config.knn_temperature,
        )
        return {"knn_acc": acc}

    def _check_collapse(self, stats: dict[str, float]) -> None:
        c = self.config
        if stats["std_ratio"] < c.collapse_std_ratio or stats["effective_rank"] < c.collapse_rank:
            warnings.warn(
                f"epoch {self.epoch}: embeddings look collapsed (std·√D = "
                f"{stats['std_ratio']:.3f} < {c.collapse_std_ratio} or effective rank "
                f"{stats['effective_rank']:.2f} < {c.collapse_rank}). Lower the learning rate, "
                f"raise the temperature, or check the views (too weak augmentation).",
                CollapseWarning,
                stacklevel=2,
            )

    def _log(self, row: dict[str, float]) -> None:
        if not self.is_main:
            return
        # Rewritten whole from the history each epoch: rows differ in their columns (the monitor
        # runs every few epochs), so the header is the union of all keys, in first-seen order.
        fields: dict[str, None] = {}
        for r in self.history:
            fields.update(dict.fromkeys(r))
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(fields), restval="")
        w.writeheader()
        w.writerows(self.history)
        atomic_write_bytes(self.out_dir / "log.csv", buf.getvalue().encode())
        if self._tb is not None:
            for key, value in row.items():
                if key not in ("epoch", "step"):
                    self._tb.add_scalar(f"epoch/{key}", value, int(row["epoch"]))
            self._tb.flush()

    def _open_tensorboard(self) -> Any:
        """A SummaryWriter in ``out_dir/tensorboard``, or None (see ``TrainConfig.tensorboard``)."""
        want = self.config.tensorboard
        if want is False or not self.is_main:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            if want is True:
                raise ImportError(
                    "TrainConfig(tensorboard=True) needs the tensorboard package: "
                    "pip install tensorboard (or leave tensorboard='auto')."
                ) from err
            return None
        return SummaryWriter(log_dir=str(self.out_dir / "tensorboard"), purge_step=self.step)

    def fit(
        self, resume: bool = False, stop_after_epoch: int | None = None
    ) -> list[dict[str, float]]:
        """Train for the configured epochs.

        Args:
            resume: continue from ``out_dir/checkpoint.safetensors`` when it exists; the run
                then ends with exactly the weights of an uninterrupted run.
            stop_after_epoch: end this call after that epoch (checkpoint written), e.g. to
                split a long run into sessions; resume later with ``resume=True``.
        """
        compiled = self._compile_targets() if self.config.compile else []
        for module in compiled:
            module.compile(dynamic=False)
        try:
            return self._fit(resume, stop_after_epoch)
        finally:
            for module in compiled:  # back to eager: evaluation and export see plain modules
                module._compiled_call_impl = None

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

    def _fit(self, resume: bool, stop_after_epoch: int | None) -> list[dict[str, float]]:
        from tqdm.auto import tqdm

        self.out_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self.resume()
        else:
            # process r > 0 draws its own views; process 0 matches a one-process run
            torch.manual_seed(self.config.seed + 1_000_003 * self.rank)
            if self.is_main and (self.out_dir / "log.csv").exists():
                (self.out_dir / "log.csv").unlink()
        self._tb = self._open_tensorboard()
        start_time = time.time()
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            disable=not (self.config.progress and self.is_main),
            unit="step",
            dynamic_ncols=True,
            # redirected to a file, a bar redrawn ten times a second floods the log: redraw
            # it every 30 s there (the per-epoch summary lines are written either way)
            mininterval=0.1 if _is_terminal(sys.stderr) or "notebook" in tqdm.__module__ else 30,
        )
        stopped = False
        # fit the length to the budget once per run (a resumed run keeps its fitted length)
        fit_at = None
        # the call that fits the length also refits it after every epoch, from that epoch's
        # speed (a machine that slows down later would otherwise hit max_minutes mid-cosine)
        refit = self.config.fit_to_budget and not self.length_fitted
        if refit:
            fit_at = (self.step + 2, self.step + 2 + self.config.fit_probe_steps)
        probe_start = 0.0
        while not stopped:
            last = self.epochs if stop_after_epoch is None else min(stop_after_epoch, self.epochs)
            if self.epoch >= last:
                break
            self.recipe.train()
            epoch_loss, n_steps, t0, images = 0.0, 0, time.time(), 0
            embeds: list[Tensor] = []
            metric_sums: dict[str, float] = {}
            for batch in self._batches(self.epoch):
                self.optimizer.zero_grad(set_to_none=True)
                with autocast(self.precision, self.device):
                    if self.config.grad_cache:  # backward happens inside, chunk by chunk
                        out = grad_cache_step(self.recipe, batch, self.config.grad_cache)
                    else:
                        out = self.recipe.step(batch)
                loss = out.loss
                # the average over processes: the loss of the global batch (see info_nce gather)
                loss_value = float(dist.all_reduce_sum(loss.detach().float())) / self.world
                if not math.isfinite(loss_value):
                    raise FloatingPointError(
                        f"loss is {loss_value} at epoch {self.epoch}, step {self.step}; lower "
                        f"the learning rate or use precision='fp32' to check for overflow. The "
                        f"last checkpoint in {self.out_dir} is intact."
                    )
                if not self.config.grad_cache:
                    loss.backward()
                dist.average_gradients(self.recipe)
                self.optimizer.step()
                self.scheduler.step()
                self.step += 1
                if fit_at and self.step == fit_at[0]:
                    probe_start = time.time()
                elif fit_at and self.step == fit_at[1]:
                    per_step = (time.time() - probe_start) / (fit_at[1] - fit_at[0])
                    self._set_length(self._fit_steps(per_step, time.time() - start_time), bar)
                    self.length_fitted = True
                    fit_at = None
                self.recipe.on_step_end(self.step, self.total_steps)
                epoch_loss += loss_value
                n_steps += 1
                images += len(batch["indices"]) * self.world
                for key, value in out.metrics.items():
                    metric_sums[key] = metric_sums.get(key, 0.0) + float(value)
                if out.embeddings is not None and len(embeds) < 8:
                    embeds.append(out.embeddings.float().cpu())
                lr = self.optimizer.param_groups[0]["lr"]
                if self._tb is not None and self.step % 10 == 0:
                    self._tb.add_scalar("step/loss", loss_value, self.step)
                    self._tb.add_scalar("step/lr", lr, self.step)
                bar.update(1)
                bar.set_postfix(  # shown at the bar's next redraw (no redraw per step)
                    epoch=self.epoch + 1,
                    loss=f"{loss_value:.3f}",
                    lr=f"{lr:.3g}",
                    img_s=f"{images / max(time.time() - t0, 1e-9):.0f}",
                    refresh=False,
                )
                if self.step >= self.total_steps:  # a fitted run may end inside an epoch
                    break
                if self.config.max_minutes and dist.any_process(
                    time.time() - start_time > 60 * self.config.max_minutes
                ):
                    stopped = True
                    break
            self.epoch += 1
            if refit and self.length_fitted and not stopped and self.step < self.total_steps:
                per_step = (time.time() - t0) / max(n_steps, 1)
                self._set_length(self._fit_steps(per_step, time.time() - start_time), bar)
            row: dict[str, float] = {
                "epoch": self.epoch,
                "step": self.step,
                "loss": epoch_loss / max(n_steps, 1),
                "lr": self.optimizer.param_groups[0]["lr"],
                "images_per_s": images / max(time.time() - t0, 1e-9),
                "seconds": time.time() - t0,
            }
            # the recipe's own scalars (loss terms, momentum), averaged over the epoch's steps
            row.update({k: v / max(n_steps, 1) for k, v in metric_sums.items()})
            if embeds and self.is_main:
                stats = collapse_stats(torch.cat(embeds))
                row.update({f"emb_{k}": v for k, v in stats.items()})
                self._check_collapse(stats)
            every = self.config.monitor_every
            if every and (self.epoch % every == 0 or self.epoch == self.epochs):
                row.update(self._monitor())
            self.history.append(row)
            self._log(row)
            self.save_checkpoint()
            if self.config.progress and self.is_main:
                shown = ", ".join(
                    f"{k}={v:.4g}" for k, v in row.items() if k not in ("step", "seconds")
                )
                bar.write(f"epoch {self.epoch}: {shown}")
        bar.close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        # a finished run, or one the time budget stopped, exports its encoder (a run paused
        # with stop_after_epoch does not: it is meant to be resumed)
        if self.encoder_name and (self.step >= self.total_steps or stopped) and self.is_main:
            export_encoder(self.recipe.encoder, self.out_dir, self.encoder_name)
        dist.barrier()  # the files are written before any process goes on
        return self.history
