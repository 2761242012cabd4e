"""BYOL-A (Niizumi et al. 2021, "BYOL for Audio: Self-Supervised Learning for General-Purpose
Audio Representation"): BYOL on two augmented views of one audio segment.

One random segment of ``segment_seconds`` is cut from each clip; its log-mel frames (the
encoder's front end makes them from waveforms) are augmented twice, independently, by the
``views`` preset (:func:`~contrastkit.augment.audio.audio_views`; BYOL-A's: mixup with other
clips in the log-mel domain, then a random resize crop). The rest is BYOL on the momentum
family already built: online encoder → projector → predictor regresses the target's
(:class:`~contrastkit.memory.MomentumEncoder` of encoder + projector) projection of the other
view, ``2 − 2·cos`` per direction, summed.

Example:
    >>> import torch
    >>> from contrastkit.data.audio import AudioBatch
    >>> from contrastkit.recipes.byol_a import BYOLA, BYOLAConfig
    >>> class Mean(torch.nn.Module):  # any encoder of AudioBatch → (N, D)
    ...     out_dim = 4
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.lin = torch.nn.Linear(4, 4)
    ...     def forward(self, b):
    ...         return self.lin((b.values * b.mask()[..., None]).sum(1) / b.lengths[:, None])
    >>> audio = AudioBatch(torch.randn(6, 20, 4), torch.tensor([20, 18, 15, 20, 12, 20]), 10.0)
    >>> recipe = BYOLA(Mean(), BYOLAConfig(segment_seconds=1.0, proj_hidden=16, proj_dim=8,
    ...                                    pred_hidden=16))
    >>> 0 <= float(recipe.step({"audio": audio}).loss.detach()) <= 8
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from contrastkit.augment.audio import RandomCrop, audio_views
from contrastkit.data.fields import FIELD_KINDS
from contrastkit.heads import ProjectionHead
from contrastkit.losses.negative_cosine import negative_cosine
from contrastkit.memory import MomentumEncoder
from contrastkit.recipes._audio import audio_input, encoder_dtype, features_of
from contrastkit.recipes._common import online
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["BYOLA", "BYOLAConfig"]


@dataclass
class BYOLAConfig:
    """BYOL-A hyper-parameters (the paper's: 1-second segments, projector and predictor
    4096 → 256, EMA 0.99, mixup ratio 0.4 with a memory, random resize crop).

    Attributes:
        segment_seconds: length of the segment cut from each clip (seconds of the batch's
            rate); clips shorter than it are used whole.
        views: the audio view preset of both views (``"byol_a"``: mixup + random resize crop
            on log-mel frames; ``"spec"``: time stretch, SpecAugment, gain; see
            :func:`~contrastkit.augment.audio.audio_views`).
        mixup_domain: the domain the frames' values are in, for the mixup view: ``"ln"``
            (natural-log mel, the front end's), ``"db"`` or ``"linear"`` (MFCCs: a linear map
            of log-mel, mixed linearly).
        proj_hidden, proj_dim, pred_hidden: projector and predictor MLPs.
        base_momentum, final_momentum: the target's EMA, cosine from 0.99 to 1.
    """

    segment_seconds: float = 1.0
    views: str = "byol_a"
    mixup_domain: str = "ln"
    proj_hidden: int = 4096
    proj_dim: int = 256
    pred_hidden: int = 4096
    base_momentum: float = 0.99
    final_momentum: float = 1.0


class BYOLA(Recipe):
    """BYOL on two augmented log-mel views of one segment of each clip."""

    name = "byol_a"
    modality = "audio"
    #: Adam at lr 3e-4 (the paper's, batch 256), no weight decay
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adam",
        "lr": 3e-4,
        "weight_decay": 0.0,
    }

    def __init__(self, encoder: nn.Module, config: BYOLAConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or BYOLAConfig()
        if c.segment_seconds <= 0:
            raise ValueError(f"segment_seconds must be > 0, got {c.segment_seconds}.")
        self.encoder = encoder
        self.projector = ProjectionHead(encoder.out_dim, c.proj_hidden, c.proj_dim, 2)
        self.predictor = ProjectionHead(c.proj_dim, c.pred_hidden, c.proj_dim, 2)
        self.target = MomentumEncoder(
            online(self.encoder, self.projector), c.base_momentum, c.final_momentum
        )
        overrides = {"domain": c.mixup_domain} if c.views == "byol_a" else {}
        self.views = audio_views(c.views, **overrides)

    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        audio = audio_input(batch, self.name)
        with torch.no_grad():
            segment = RandomCrop(max(1, round(self.config.segment_seconds * audio.sample_rate)))(
                audio
            )
            frames = features_of(self.encoder, segment)
            rows = FIELD_KINDS["audio"].cat([self.views(frames), self.views(frames)])
            rows = rows.to(audio.device, dtype=encoder_dtype(self.encoder))
            targets = self.target(rows).float()
        return {**batch, "inputs": rows, "targets": targets, "n_clips": len(audio)}

    def embed(self, tower: str, rows: Any) -> Tensor:
        return self.predictor(self.projector(self.encoder(rows)))

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Any]) -> LossOutput:
        p = by_tower["views"]
        n = prepared["n_clips"]
        t = prepared["targets"]
        loss = (2 + 2 * negative_cosine(p[:n], t[n:])) + (2 + 2 * negative_cosine(p[n:], t[:n]))
        metrics = {"momentum": float(self.target.momentum)}
        return LossOutput(loss=loss, embeddings=t[:n].detach(), metrics=metrics)

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.target.update(online(self.encoder, self.projector), step, total_steps)
