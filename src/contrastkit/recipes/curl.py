"""CURL (Laskin, Srinivas & Abbeel 2020, "CURL: Contrastive Unsupervised Representations for
Reinforcement Learning"): two random crops of the same stacked observation are a positive
pair; the anchor goes through the agent's encoder, the key through its momentum copy, and the
similarity is bilinear, ``q = z_a W z_kᵀ``; the loss is the cross-entropy of each anchor's own
key among the batch's keys.

Only CURL's own parts live here: the two crops
(:func:`~contrastkit.augment.observations.random_crop`), the key encoder
(:class:`~contrastkit.memory.MomentumEncoder`, a constant momentum: CURL's encoder τ = 0.05
is ``m = 0.95``) and ``W``; the loss is :func:`~contrastkit.losses.info_nce` with
``similarity="dot"``, τ = 1 on ``z_a W`` against the keys. Positives are given by ids: the
replay buffer's frame indices when the batch has ``"indices"`` (a frame drawn twice is its own
positive, not its own negative), otherwise each row is its own instance. In a pixel agent the
anchor's features are also what the Q-network reads, so the RL loss and this one shape the
same encoder (:mod:`contrastkit.app.rl`).

The recipe follows the tower contract (one tower, ``"views"``; the keys are made in
:meth:`CURL.prepare` without gradients), so it also trains with the ordinary trainer on a
data set of observations.

Example:
    >>> import torch
    >>> from contrastkit.encoders.pixel import PixelEncoder
    >>> from contrastkit.recipes.curl import CURL, CURLConfig
    >>> recipe = CURL(PixelEncoder(in_channels=3, image_size=8, layers=2), CURLConfig(crop_size=8))
    >>> obs = torch.randint(0, 256, (4, 3, 10, 10), dtype=torch.uint8)
    >>> out = recipe.step({"obs": obs})
    >>> out.loss.ndim, out.embeddings.shape
    (0, torch.Size([4, 50]))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from contrastkit.augment.observations import random_crop
from contrastkit.losses import info_nce
from contrastkit.memory import MomentumEncoder
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["CURL", "CURLConfig", "curl_loss"]


@dataclass
class CURLConfig:
    """CURL hyper-parameters.

    Attributes:
        crop_size: side of the random crops (CURL: 84 from 100-pixel renders; here 36 from
            MiniGrid's 40-pixel frames). The encoder must be built for this size.
        momentum: the key encoder's EMA momentum, constant (CURL: encoder τ 0.05 → 0.95).
    """

    crop_size: int = 36
    momentum: float = 0.95


def curl_loss(
    anchors: Tensor,
    keys: Tensor,
    w: Tensor,
    ids: Tensor | None = None,
    gather: str = "labels",
) -> Tensor:
    """CURL's bilinear InfoNCE: mean over anchors of ``−log softmax_j(z_aᵢ W z_kⱼᵀ)`` at the
    anchor's positive(s), the keys with equal id.

    Args:
        anchors: (B, D) anchor features (with gradients).
        keys: (B, D) key features (the momentum encoder's; no gradient needed).
        w: (D, D) the bilinear matrix.
        ids: (B,) instance ids (rows with equal ids are positives); None: ``arange(B)``.
        gather: how torch.distributed gathers (``"labels"`` for global ids, ``"instances"``).

    Example:
        >>> import torch
        >>> a = torch.eye(3); round(float(curl_loss(a, a, 10 * torch.eye(3))), 4)
        0.0001
    """
    if ids is None:
        ids, gather = torch.arange(anchors.shape[0], device=anchors.device), "instances"
    return info_nce(
        anchors @ w,
        keys,
        query_ids=ids,
        key_ids=ids,
        temperature=1.0,
        similarity="dot",
        gather=gather,
    )


class CURL(Recipe):
    """Encoder + momentum key encoder + bilinear ``W`` over two random crops of observations.

    Args:
        encoder: maps uint8 observations (B, C, S, S) cropped to ``crop_size`` to (B, D)
            features, with ``out_dim`` (e.g. :class:`~contrastkit.encoders.pixel.PixelEncoder`).
        config: :class:`CURLConfig`.

    Attributes:
        generator: an optional CPU generator for the crops (a seeded agent sets it, so its
            run is reproducible and resumable).
    """

    name = "curl"
    modality = "obs"
    #: CURL's Adam at 1e-3 for the encoder and W (Atari: 1e-4 with the Q-network)
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adam",
        "lr": 1e-3,
        "weight_decay": 0.0,
    }

    def __init__(self, encoder: nn.Module, config: CURLConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or CURLConfig()
        if c.crop_size < 1:
            raise ValueError(f"crop_size must be ≥ 1, got {c.crop_size}.")
        self.encoder = encoder
        self.key_encoder = MomentumEncoder(encoder, c.momentum, c.momentum)
        d = int(encoder.out_dim)
        # CURL initialises W uniformly in [0, 1)
        self.W = nn.Parameter(torch.rand(d, d))
        self.generator: torch.Generator | None = None

    def crops(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Two independent random crops (anchor, positive) of ``obs`` (B, C, H, W)."""
        s, g = self.config.crop_size, self.generator
        return random_crop(obs, s, g), random_crop(obs, s, g)

    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        obs = batch.get("obs")
        if obs is None:
            raise KeyError(
                f"the curl recipe needs observations under 'obs' (B, C, H, W); the batch has "
                f"{sorted(batch)}."
            )
        with torch.no_grad():
            anchors, positives = self.crops(obs)
            keys = self.key_encoder(positives)
        return {**batch, "inputs": anchors, "keys": keys.float()}

    def embed(self, tower: str, rows: Tensor) -> Tensor:
        return self.encoder(rows)

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Any]) -> LossOutput:
        z = by_tower["views"]
        ids = prepared.get("indices")
        loss = curl_loss(z.float(), prepared["keys"], self.W.float(), ids)
        return LossOutput(loss=loss, embeddings=z.detach())

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.key_encoder.update(self.encoder, momentum=self.config.momentum)
