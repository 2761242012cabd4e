"""COLA (Saeed et al. 2021, "Contrastive Learning of General-Purpose Audio Representations"):
two random segments of one clip are a positive pair; the segments of the batch's other clips
are its negatives; the similarity is bilinear.

Each clip of ``batch["audio"]`` (an :class:`~contrastkit.data.audio.AudioBatch` of waveforms
or frame features) gives two independently placed segments of ``segment_seconds``
(:func:`~contrastkit.augment.audio.random_segments`; a clip shorter than that is used whole),
optionally through a view preset (:func:`~contrastkit.augment.audio.audio_views`; COLA uses
none). Both segments go through the encoder and COLA's head, ``g = tanh(LayerNorm(Linear))``;
the score of an anchor ``x`` and a candidate ``x'`` is ``g(x)ᵀ W g(x')`` and the loss is the
cross-entropy of the anchor's positive among the batch's candidates
(:func:`~contrastkit.losses.info_nce` with ``similarity="dot"`` and τ = 1 on ``g(x) W``).
Positives come by clip ids (the trainer's ``indices``), so torch.distributed gathers by id
and gradient caching applies unchanged (one tower, ``"views"``).

Example:
    >>> import torch
    >>> from contrastkit.data.audio import AudioBatch
    >>> from contrastkit.recipes.cola import COLA, COLAConfig
    >>> class Mean(torch.nn.Module):  # any encoder of AudioBatch → (N, D)
    ...     out_dim = 4
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.lin = torch.nn.Linear(4, 4)
    ...     def forward(self, b):
    ...         return self.lin((b.values * b.mask()[..., None]).sum(1) / b.lengths[:, None])
    >>> audio = AudioBatch(torch.randn(6, 20, 4), torch.tensor([20, 18, 15, 20, 12, 20]), 10.0)
    >>> recipe = COLA(Mean(), COLAConfig(segment_seconds=1.0, embed_dim=8))
    >>> out = recipe.step({"audio": audio, "indices": torch.arange(6)})
    >>> out.loss.ndim, out.embeddings.shape
    (0, torch.Size([6, 8]))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from contrastkit.augment.audio import audio_views, random_segments
from contrastkit.data.audio import AudioBatch
from contrastkit.data.fields import FIELD_KINDS
from contrastkit.losses import info_nce
from contrastkit.recipes._audio import audio_input, encoder_dtype
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["COLA", "COLAConfig"]


@dataclass
class COLAConfig:
    """COLA hyper-parameters (the paper's: 1-second segments, a 512-wide head, bilinear
    similarity, no temperature).

    Attributes:
        segment_seconds: length of each segment (seconds of the batch's rate: samples or
            frames per second); clips shorter than it are used whole.
        views: an audio view preset applied to each segment after cropping (``"none"``:
            COLA's segments only; see :func:`~contrastkit.augment.audio.audio_views`).
        embed_dim: width of the head ``g`` (512).
        similarity: ``"bilinear"`` (COLA's) or ``"cosine"`` (SimCLR-style, at ``temperature``).
        temperature: τ of the cosine similarity (ignored by the bilinear one, which learns its
            own scale through ``W``).
        symmetric: also take each positive's loss against the anchors (both directions).
    """

    segment_seconds: float = 1.0
    views: str = "none"
    embed_dim: int = 512
    similarity: str = "bilinear"
    temperature: float = 0.2
    symmetric: bool = False


class COLA(Recipe):
    """Encoder + COLA head + bilinear similarity over two segments of each clip."""

    name = "cola"
    modality = "audio"
    #: Adam at 1e-4 with batch 1024 in the paper; 1e-3 at 256 trains the small encoders here
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adam",
        "lr": 1e-3,
        "weight_decay": 0.0,
    }

    def __init__(self, encoder: nn.Module, config: COLAConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or COLAConfig()
        if c.similarity not in ("bilinear", "cosine"):
            raise ValueError(f"similarity must be 'bilinear' or 'cosine', got {c.similarity!r}.")
        if c.segment_seconds <= 0:
            raise ValueError(f"segment_seconds must be > 0, got {c.segment_seconds}.")
        self.encoder = encoder
        self.head = nn.Sequential(
            nn.Linear(int(encoder.out_dim), c.embed_dim), nn.LayerNorm(c.embed_dim), nn.Tanh()
        )
        #: W of the bilinear similarity (None with the cosine one)
        self.bilinear = (
            nn.Linear(c.embed_dim, c.embed_dim, bias=False) if c.similarity == "bilinear" else None
        )
        self.views = audio_views(c.views) if c.views != "none" else None

    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        audio = audio_input(batch, self.name)
        length = max(1, round(self.config.segment_seconds * audio.sample_rate))
        with torch.no_grad():
            segments = random_segments(audio, length, n=2)
            if self.views is not None:
                segments = [self.views(s) for s in segments]
            rows = (
                FIELD_KINDS["audio"]
                .cat(segments)
                .to(audio.device, dtype=encoder_dtype(self.encoder))
            )
        return {**batch, "inputs": rows, "n_clips": len(audio)}

    def embed(self, tower: str, rows: AudioBatch) -> Tensor:
        return self.head(self.encoder(rows))

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Any]) -> LossOutput:
        z = by_tower["views"]
        n = prepared["n_clips"]
        anchors, positives = z[:n], z[n:]
        ids = prepared.get("indices")
        gather = "labels"
        if ids is None:
            ids, gather = torch.arange(n, device=z.device), "instances"
        c = self.config
        if self.bilinear is not None:
            query, sim, tau = self.bilinear(anchors), "dot", 1.0
        else:
            query, sim, tau = anchors, "cosine", c.temperature
        loss = info_nce(
            query,
            positives,
            query_ids=ids,
            key_ids=ids,
            temperature=tau,
            similarity=sim,
            symmetric=c.symmetric,
            gather=gather,
        )
        return LossOutput(loss=loss, embeddings=anchors.detach())
