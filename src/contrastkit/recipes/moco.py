"""MoCo v2 (He et al. 2020; Chen, Fan, Girshick, He 2020): a momentum key encoder and a queue.

The query network (encoder + 2-layer MLP head) is trained with InfoNCE against keys from its
momentum copy: the positive is the key of the other view of the same image, the negatives are
the other keys of the batch and a FIFO queue of past keys. The queue stores data-set indices
as ids, so a queued key of the query's own image is left out of its negatives rather than
pushing the image away from itself. On one device the key encoder's BN is split into groups
and it sees a shuffled batch, so a key is normalised with the statistics of a random subset of
images unrelated to its query's: the network cannot find its positive through batch
statistics (MoCo's shuffle-BN).

The loss is symmetrised (both views are queries, as in MoCo v3 and solo-learn's MoCo v2+), which
costs one extra forward of the key encoder and doubles the training signal per step.

Example:
    >>> import torch
    >>> from contrastkit.encoders import SmallCNN
    >>> from contrastkit.recipes import MoCo, MoCoConfig
    >>> recipe = MoCo(SmallCNN(in_channels=1, width=8, stages=2),
    ...               MoCoConfig(image_size=16, channels=1, queue_size=64, bn_splits=2))
    >>> batch = {"images": torch.randint(0, 256, (8, 1, 16, 16), dtype=torch.uint8),
    ...          "indices": torch.arange(8)}
    >>> out = recipe.step(batch)
    >>> len(recipe.queue)
    8
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.heads import ProjectionHead
from contrastkit.losses import info_nce
from contrastkit.memory import (
    FeatureQueue,
    MomentumEncoder,
    convert_split_batchnorm,
    shuffled_forward,
)
from contrastkit.recipes._common import (
    ImageViewsConfig,
    build_views,
    instance_ids,
    online,
    view_pair,
)
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["MoCo", "MoCoConfig"]


@dataclass
class MoCoConfig(ImageViewsConfig):
    """MoCo v2 hyper-parameters, scaled to small images and a CPU batch of 256.

    Attributes:
        temperature: τ of InfoNCE (0.2 in MoCo v2).
        proj_hidden, proj_dim: the 2-layer MLP head (2048 → 128 in MoCo v2).
        proj_bn: batch norm after the head's hidden layer. MoCo v2's head has none; SimCLR's
            and MoCo v3's have it, and so does this default: on Fashion-MNIST (3 epochs, the
            5,000 held-out training images) it raised the kNN accuracy from 0.815 to 0.834
            and kept the projections' effective rank higher early in training. ``False`` is
            the paper's head. The head's BN normalises the whole batch (queries and keys
            alike), so it shares no statistics with a subset that holds the positive; the
            encoder's BN is the one that is split.
        queue_size: negatives kept (65,536 on ImageNet; 16,384 here ≈ 30% of a 54k-image
            training set, so queued keys are at most ~64 steps old).
        base_momentum, final_momentum: key-encoder EMA, cosine from 0.99 to 1 (0.999 constant
            in the paper's 200-epoch ImageNet runs; short runs need a faster-moving key).
        bn_splits: split-BN groups of the key encoder for single-device shuffle-BN (1 turns
            it off; 4 groups of 64 images for batch 256).
        split_query_bn: split the query encoder's BN into the same groups too (the literal
            single-device copy of MoCo's per-GPU BN). Off by default: a query normalised over
            the whole batch carries no statistics of a subset, so its positive key, normalised
            in a random subset of the shuffled key batch, cannot be found through them, and
            the training pass (forward + backward) keeps plain BN, ~1.4× faster on a 2-core CPU
            for ResNet-18 ¼ at 28 px.
    """

    temperature: float = 0.2
    proj_hidden: int = 2048
    proj_dim: int = 128
    proj_bn: bool = True
    queue_size: int = 16384
    base_momentum: float = 0.99
    final_momentum: float = 1.0
    bn_splits: int = 4
    split_query_bn: bool = False


class MoCo(Recipe):
    """Query encoder + head, momentum key encoder, :class:`~contrastkit.memory.FeatureQueue`."""

    name = "moco"
    #: SimCLR's LARS setting on the same trunk (the paper's SGD 0.03 is for ImageNet)
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "lars",
        "lr": 0.4,
        "weight_decay": 1e-05,
    }

    def __init__(self, encoder: nn.Module, config: MoCoConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or MoCoConfig()
        self.encoder = encoder
        self.head = ProjectionHead(encoder.out_dim, c.proj_hidden, c.proj_dim, 2, bn=c.proj_bn)
        self.key_encoder = MomentumEncoder(
            online(self.encoder, self.head), c.base_momentum, c.final_momentum
        )
        if c.bn_splits > 1:  # keys: statistics per group of the shuffled batch (shuffle-BN)
            convert_split_batchnorm(self.key_encoder.target, c.bn_splits).requires_grad_(False)
            if c.split_query_bn:
                convert_split_batchnorm(self.encoder, c.bn_splits)
        self.queue = FeatureQueue(c.queue_size, c.proj_dim, normalize=True)
        self.views = build_views(c)

    def prepare(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = view_pair(self, batch)
        if self.config.bn_splits > 1:
            keys = shuffled_forward(self.key_encoder, x)
        else:
            keys = self.key_encoder(x)
        return {**batch, "inputs": x, "keys": F.normalize(keys.float(), dim=1)}

    def embed(self, tower: str, inputs: Tensor) -> Tensor:
        return self.head(self.encoder(inputs))

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Tensor]) -> LossOutput:
        embeddings = by_tower["views"]
        n = prepared["images"].shape[0]
        ids, kind, queue_ids = instance_ids(prepared, n)
        q1, q2 = embeddings[:n], embeddings[n:]
        k1, k2 = prepared["keys"][:n], prepared["keys"][n:]
        common = dict(
            query_ids=ids,
            key_ids=ids,
            temperature=self.config.temperature,
            gather=kind,
            **self.queue.negatives(),
        )
        loss = 0.5 * (info_nce(q1, k2, **common) + info_nce(q2, k1, **common))
        if self.training:  # after the loss: this batch's keys are the queue's newest rows
            self.queue.push(k2, queue_ids, gather=True)
        metrics = {"momentum": float(self.key_encoder.momentum)}
        return LossOutput(loss=loss, embeddings=q1.detach(), metrics=metrics)

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.key_encoder.update(online(self.encoder, self.head), step, total_steps)
