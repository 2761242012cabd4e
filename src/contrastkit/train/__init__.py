"""Training: the loop, optimisers and schedules, precision, checkpoints, weight interpolation."""

from contrastkit.train.callbacks import (
    Callback,
    Checkpoint,
    CollapseMonitor,
    CSVLogger,
    ExportEncoder,
    KNNMonitor,
    ProgressBar,
    TensorBoardLogger,
    TimeBudget,
)
from contrastkit.train.checkpoint import DamagedFileError, load_state, save_state
from contrastkit.train.grad_cache import RandomState, grad_cache_step
from contrastkit.train.optim import (
    LARS,
    WarmupCosine,
    build_optimizer,
    param_groups,
    warmup_cosine,
)
from contrastkit.train.precision import bf16_supported, resolve_precision
from contrastkit.train.trainer import (
    CollapseWarning,
    DivergenceError,
    TrainConfig,
    Trainer,
    TrainingInterrupted,
    export_encoder,
    load_encoder,
)
from contrastkit.train.wise import interpolate_weights

__all__ = [
    "LARS",
    "CSVLogger",
    "Callback",
    "Checkpoint",
    "CollapseMonitor",
    "CollapseWarning",
    "DamagedFileError",
    "DivergenceError",
    "ExportEncoder",
    "KNNMonitor",
    "ProgressBar",
    "RandomState",
    "TensorBoardLogger",
    "TimeBudget",
    "TrainConfig",
    "Trainer",
    "TrainingInterrupted",
    "WarmupCosine",
    "bf16_supported",
    "build_optimizer",
    "export_encoder",
    "grad_cache_step",
    "interpolate_weights",
    "load_encoder",
    "load_state",
    "param_groups",
    "resolve_precision",
    "save_state",
    "warmup_cosine",
]
