"""CLAP-style audio–text training (Elizalde et al. 2023, "CLAP: Learning Audio Concepts from
Natural Language Supervision"): an audio tower and a text tower trained with CLIP's loss so
that a clip and its caption embed close together.

Two towers, ``"audio"`` and ``"text"``, each an encoder and a linear projection into one
shared space; the loss is the symmetric InfoNCE of the batch's clip–caption similarities with
a learnable temperature (a log-scale clamped at 100, as CLIP). Positives come by caption ids,
so two clips with the same caption (one word said by several voices) are not negatives of
each other. The text tower is any text encoder with ``tokenize`` (MiniLM, or
:class:`~contrastkit.encoders.char_text.CharTextEncoder`, which embeds words never seen in
training from their spelling). Gradient caching (two towers) and torch.distributed (the loss
gathers with gradients, ``gather="labels"``) apply unchanged.

Example:
    >>> import torch
    >>> from contrastkit.data.audio import AudioBatch
    >>> from contrastkit.encoders.char_text import CharTextEncoder
    >>> from contrastkit.recipes.clap import CLAP, CLAPConfig
    >>> class Mean(torch.nn.Module):  # any encoder of AudioBatch → (N, D)
    ...     out_dim = 4
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.lin = torch.nn.Linear(4, 4)
    ...     def forward(self, b):
    ...         return self.lin((b.values * b.mask()[..., None]).sum(1) / b.lengths[:, None])
    >>> audio = AudioBatch(torch.randn(4, 20, 4), torch.tensor([20, 18, 15, 20]), 10.0)
    >>> recipe = CLAP(Mean(), CharTextEncoder(out_dim=8), CLAPConfig(embed_dim=8))
    >>> out = recipe.step({"audio": audio, "texts": ["yes", "no", "yes", "stop"],
    ...                    "caption_ids": torch.tensor([0, 1, 0, 2])})
    >>> out.loss.ndim, sorted(out.metrics)
    (0, ['temperature'])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from contrastkit.augment.audio import RandomCrop, audio_views
from contrastkit.losses import info_nce
from contrastkit.recipes._audio import audio_input, encoder_dtype, features_of
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["CLAP", "CLAPConfig"]


@dataclass
class CLAPConfig:
    """CLAP hyper-parameters (defaults sized for CPU).

    Attributes:
        embed_dim: width of the shared audio–text space (the towers' projections).
        temperature: the starting temperature (CLIP's 0.07); learned as a log-scale unless
            ``learn_temperature`` is False, clamped at ``max_scale``.
        learn_temperature, max_scale: as :class:`~contrastkit.recipes.clip.CLIPConfig`.
        segment_seconds: while training, a random segment of this length of each clip
            (seconds of the batch's rate); 0: the whole clip.
        views: an audio view preset applied while training (``"none"``, ``"speech"`` on
            waveforms, ``"spec"`` on frames; :func:`~contrastkit.augment.audio.audio_views`).
        feature_views: a second preset applied while training after ``views``, on the frame
            features: waveforms first go through the audio encoder's own front end (e.g.
            ``"masks"``, SpecAugment's time and frequency masks, after ``views="speech"``).
    """

    embed_dim: int = 256
    temperature: float = 0.07
    learn_temperature: bool = True
    max_scale: float = 100.0
    segment_seconds: float = 0.0
    views: str = "none"
    feature_views: str = "none"


class CLAP(Recipe):
    """An audio tower and a text tower with projections, trained with the CLIP loss.

    Args:
        encoder: the audio encoder (AudioBatch → (N, D_a)); exported as the recipe's
            ``encoder``.
        text_encoder: a text encoder with ``tokenize(list[str]) -> (N, L)`` ids and
            ``forward(ids) -> (N, D_t)``.
        config: :class:`CLAPConfig`.

    Batches hold ``audio`` (an AudioBatch), ``texts`` (N captions) and ``caption_ids`` ((N,)
    int64, equal for equal captions; ``indices`` are used when absent).
    """

    name = "clap"
    modality = "audio"
    towers: ClassVar[tuple[str, ...]] = ("audio", "text")
    #: AdamW as CLIP trains (open_clip's small-model setting)
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adamw",
        "lr": 1e-3,
        "weight_decay": 0.05,
    }
    needs_captions = True

    def __init__(
        self, encoder: nn.Module, text_encoder: nn.Module, config: CLAPConfig | None = None
    ) -> None:
        super().__init__()
        self.config = c = config or CLAPConfig()
        if not (0 < c.temperature and 1 / c.temperature <= c.max_scale):
            raise ValueError(
                f"temperature must be > 0 and 1/temperature at most max_scale={c.max_scale}, "
                f"got {c.temperature}."
            )
        if not hasattr(text_encoder, "tokenize"):
            raise TypeError(
                f"CLAP needs a text encoder with tokenize(); got {type(text_encoder).__name__} "
                "(use CharTextEncoder or minilm)."
            )
        self.encoder = encoder
        self.text_encoder = text_encoder
        self.audio_proj = nn.Linear(int(encoder.out_dim), c.embed_dim, bias=False)
        self.text_proj = nn.Linear(int(text_encoder.out_dim), c.embed_dim, bias=False)
        self.log_scale = nn.Parameter(
            torch.tensor(math.log(1 / c.temperature)), requires_grad=c.learn_temperature
        )
        self.views = audio_views(c.views) if c.views != "none" else None
        self.feature_views = audio_views(c.feature_views) if c.feature_views != "none" else None
        if getattr(text_encoder, "pretrained", False):
            for p in text_encoder.parameters():
                p.lr_scale = 0.1  # read by contrastkit.train.optim.param_groups

    @property
    def temperature(self) -> Tensor:
        """τ = 1 / min(exp(log_scale), max_scale)."""
        return 1 / self.log_scale.clamp(max=math.log(self.config.max_scale)).exp()

    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        audio = audio_input(batch, self.name)
        texts = batch.get("texts")
        if texts is None:
            raise ValueError(
                "the clap recipe needs a caption per clip ('texts'); train it on a CSV of "
                "clips and captions or on spoken_words (each clip's word is its caption)."
            )
        c = self.config
        with torch.no_grad():
            if self.training and c.segment_seconds > 0:
                audio = RandomCrop(max(1, round(c.segment_seconds * audio.sample_rate)))(audio)
            if self.training and self.views is not None:
                audio = self.views(audio)
            if self.training and self.feature_views is not None:
                audio = self.feature_views(features_of(self.encoder, audio))
            audio = audio.to(audio.device, dtype=encoder_dtype(self.encoder))
        ids = self.text_encoder.tokenize(list(texts)).to(audio.device)
        return {**batch, "inputs": {"audio": audio, "text": ids}}

    def embed(self, tower: str, rows: Any) -> Tensor:
        if tower == "audio":
            return self.audio_proj(self.encoder(rows))
        out = self.text_encoder(rows)
        return self.text_proj(out.to(self.text_proj.weight.dtype))

    def embed_audio(self, audio: Any) -> Tensor:
        """(N, embed_dim) shared-space embeddings of an AudioBatch (no gradient)."""
        with torch.no_grad():
            return self.embed("audio", audio.to(audio.device, dtype=encoder_dtype(self.encoder)))

    def embed_texts(self, texts: list[str]) -> Tensor:
        """(N, embed_dim) shared-space embeddings of texts (no gradient)."""
        device = self.text_proj.weight.device
        with torch.no_grad():
            return self.embed("text", self.text_encoder.tokenize(list(texts)).to(device))

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Any]) -> LossOutput:
        audio, text = by_tower["audio"], by_tower["text"]
        ids = prepared.get("caption_ids")
        if ids is None:
            ids = prepared.get("indices")
        if ids is None:
            raise ValueError(
                "the clap recipe needs 'caption_ids' (equal for equal captions) or the "
                "trainer's 'indices' in the batch."
            )
        tau = self.temperature
        loss = info_nce(
            audio,
            text,
            query_ids=ids,
            key_ids=ids,
            temperature=tau,
            symmetric=True,
            gather="labels",
        )
        return LossOutput(
            loss=loss, embeddings=audio.detach(), metrics={"temperature": float(tau.detach())}
        )
