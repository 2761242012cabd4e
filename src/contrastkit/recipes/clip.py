"""CLIP (Radford et al. 2021) and SigLIP (Zhai et al. 2023): an image tower and a text tower
trained together so that an image and its caption embed close together.

Two towers, ``"image"`` and ``"text"``, each an encoder and a linear projection into one shared
space. ``loss="clip"`` is the symmetric InfoNCE over the batch's image–caption similarities
with a learnable temperature, kept as a log-scale and clamped at 100 as CLIP does;
``loss="siglip"`` is the pairwise sigmoid loss with its learnable scale (initialised at 10) and
bias (at −10). Positives come by caption ids, so two images with the same caption are not
negatives of each other. Gradient caching (two towers) and torch.distributed (both losses
gather with gradients, ``gather="labels"``) apply unchanged.

Either tower can be locked (LiT, Zhai et al. 2022: lock the pre-trained image tower, tune the
text tower), which freezes its weights and keeps it in eval mode.

Example:
    >>> import torch
    >>> from contrastkit.encoders import SmallCNN
    >>> from contrastkit.encoders.text import SmallTextEncoder
    >>> from contrastkit.recipes.clip import CLIP, CLIPConfig
    >>> texts = ["a red square", "a blue circle", "a red square", "a green star"]
    >>> text = SmallTextEncoder.from_texts(texts, dim=16, layers=1, heads=2)
    >>> recipe = CLIP(SmallCNN(in_channels=3, width=8, stages=2), text, CLIPConfig(image_size=16))
    >>> batch = {"images": torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8),
    ...          "texts": texts, "caption_ids": torch.tensor([0, 1, 0, 2])}
    >>> out = recipe.step(batch)
    >>> out.loss.ndim, sorted(out.metrics)
    (0, ['temperature'])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from contrastkit.augment import ViewConfig, make_view, to_float_images
from contrastkit.losses import info_nce, sigmoid_pairwise
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["CLIP", "CLIPConfig"]


@dataclass
class CLIPConfig:
    """CLIP / SigLIP hyper-parameters (defaults sized for CPU).

    Attributes:
        image_size, channels: input geometry (views are made at ``image_size``).
        embed_dim: dimension of the shared image–text space (the towers' projections).
        loss: ``"clip"`` (symmetric InfoNCE, softmax over the batch) or ``"siglip"``
            (pairwise sigmoid).
        temperature: the starting temperature (CLIP: 0.07; SigLIP: 0.1, a scale of 10).
        learn_temperature: learn it (as a log-scale, clamped at ``max_scale``) or keep it.
        max_scale: the largest logit scale 1/τ (CLIP clamps at 100).
        bias: SigLIP's starting bias (−10: the many negatives start near zero loss); learned.
        lock_image, lock_text: freeze a tower (LiT: lock the pre-trained image tower).
        crop_scale: area range of the images' random resized crops (light: captions name
            what is in the whole picture).
        flip: horizontal-flip probability (0 when captions say left or right).
    """

    image_size: int = 64
    channels: int = 3
    embed_dim: int = 128
    loss: str = "clip"
    temperature: float = 0.07
    learn_temperature: bool = True
    max_scale: float = 100.0
    bias: float = -10.0
    lock_image: bool = False
    lock_text: bool = False
    crop_scale: tuple[float, float] = (0.7, 1.0)
    flip: float = 0.5


class CLIP(Recipe):
    """An image tower and a text tower with projections, trained with the CLIP or SigLIP loss.

    Args:
        encoder: the image encoder ((B, C, S, S) float images → (B, D_i)); exported as the
            recipe's ``encoder``.
        text_encoder: a text encoder with ``tokenize(list[str]) -> (B, L)`` ids and
            ``forward(ids) -> (B, D_t)`` (:mod:`contrastkit.encoders.text`).
        config: :class:`CLIPConfig`.

    Batches hold ``images`` (uint8 (B, C, H, W)), ``texts`` (B captions) and ``caption_ids``
    ((B,) int64, equal for equal captions; ``indices`` are used when absent).
    """

    name = "clip"
    towers: ClassVar[tuple[str, ...]] = ("image", "text")
    #: AdamW as CLIP and SigLIP train; lr at batch 256 and weight decay as open_clip's
    #: small-model recipes
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adamw",
        "lr": 5e-4,
        "weight_decay": 0.2,
    }

    def __init__(
        self, encoder: nn.Module, text_encoder: nn.Module, config: CLIPConfig | None = None
    ) -> None:
        super().__init__()
        self.config = c = config or CLIPConfig()
        if c.loss not in ("clip", "siglip"):
            raise ValueError(f"loss must be 'clip' or 'siglip', got {c.loss!r}.")
        if not (0 < c.temperature and 1 / c.temperature <= c.max_scale):
            raise ValueError(
                f"temperature must be > 0 and 1/temperature at most max_scale={c.max_scale}, "
                f"got {c.temperature}."
            )
        self.encoder = encoder
        self.text_encoder = text_encoder
        self.image_proj = nn.Linear(int(encoder.out_dim), c.embed_dim, bias=False)
        self.text_proj = nn.Linear(int(text_encoder.out_dim), c.embed_dim, bias=False)
        log_scale = torch.tensor(math.log(1 / c.temperature))
        self.log_scale = nn.Parameter(log_scale, requires_grad=c.learn_temperature)
        self.bias = nn.Parameter(torch.tensor(float(c.bias)), requires_grad=c.loss == "siglip")
        view = ViewConfig(
            size=c.image_size, scale=tuple(c.crop_scale), flip=c.flip, jitter=0.0, grayscale=0.0
        )
        self.view = make_view(view, c.channels)
        for tower, locked in ((self.encoder, c.lock_image), (self.text_encoder, c.lock_text)):
            if locked:
                tower.requires_grad_(False)
        self.train()

    def train(self, mode: bool = True) -> CLIP:
        """As ``nn.Module.train``, but a locked tower stays in eval mode (frozen BN/dropout)."""
        super().train(mode)
        if self.config.lock_image:
            self.encoder.eval()
        if self.config.lock_text:
            self.text_encoder.eval()
        return self

    @property
    def temperature(self) -> Tensor:
        """τ = 1 / min(exp(log_scale), max_scale)."""
        return 1 / self.log_scale.clamp(max=math.log(self.config.max_scale)).exp()

    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        images = batch["images"]
        with torch.no_grad():
            x = self.view(to_float_images(images)) if self.training else self._resize(images)
            x = x.to(next(self.encoder.parameters()).dtype)  # float64 in tests, else float32
        ids = self.text_encoder.tokenize(list(batch["texts"])).to(images.device)
        return {**batch, "inputs": {"image": x, "text": ids}}

    def _resize(self, images: Tensor) -> Tensor:
        x = to_float_images(images)
        size = self.config.image_size
        if x.shape[-2:] != (size, size):
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear")
        return x

    def embed(self, tower: str, rows: Tensor) -> Tensor:
        if tower == "image":
            return self.image_proj(self.encoder(rows))
        out = self.text_encoder(rows)  # text encoders pool in float32
        return self.text_proj(out.to(self.text_proj.weight.dtype))

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Any]) -> LossOutput:
        image, text = by_tower["image"], by_tower["text"]
        ids = prepared.get("caption_ids")
        if ids is None:
            ids = prepared["indices"]
        tau = self.temperature
        if self.config.loss == "clip":
            loss = info_nce(
                image,
                text,
                query_ids=ids,
                key_ids=ids,
                temperature=tau,
                symmetric=True,
                gather="labels",
            )
        else:
            loss = sigmoid_pairwise(
                image,
                text,
                query_ids=ids,
                key_ids=ids,
                temperature=tau,
                bias=self.bias,
                gather="labels",
            )
        metrics = {"temperature": float(tau.detach())}
        if self.config.loss == "siglip":
            metrics["bias"] = float(self.bias.detach())
        return LossOutput(loss=loss, embeddings=image.detach(), metrics=metrics)
