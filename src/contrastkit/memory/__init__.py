"""Memory: feature queues (MoCo, NNCLR support sets), momentum encoders, split/shuffle BN.

Example:
    >>> from contrastkit.memory import FeatureQueue, MomentumEncoder, cosine_momentum
    >>> round(cosine_momentum(0, 100, base=0.99), 4), cosine_momentum(100, 100, base=0.99)
    (0.99, 1.0)
"""

from contrastkit.memory.batchnorm import (
    SplitBatchNorm1d,
    SplitBatchNorm2d,
    convert_split_batchnorm,
    shuffled_forward,
)
from contrastkit.memory.momentum import MomentumEncoder, cosine_momentum, ema_update_
from contrastkit.memory.queue import FeatureQueue

__all__ = [
    "FeatureQueue",
    "MomentumEncoder",
    "SplitBatchNorm1d",
    "SplitBatchNorm2d",
    "convert_split_batchnorm",
    "cosine_momentum",
    "ema_update_",
    "shuffled_forward",
]
