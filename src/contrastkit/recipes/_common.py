"""Pieces every image recipe shares: the view settings, view batches, instance ids."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from contrastkit.augment import Views, views_for

__all__ = [
    "ImageViewsConfig",
    "build_views",
    "check_text_encoder",
    "instance_ids",
    "like_encoder",
    "online",
    "text_views_or_none",
    "view_pair",
]


@dataclass
class ImageViewsConfig:
    """View settings of an image recipe.

    Attributes:
        image_size, channels: input geometry (global views are made at ``image_size``).
        flip: horizontal-flip probability (0 for digits).
        crop_scale: area range of the global random resized crops.
        views: view preset (``"simclr"``, ``"byol"`` asymmetric, ``"multicrop"``).
        n_local: local crops of the ``"multicrop"`` preset (2 global + ``n_local`` small).
    """

    image_size: int = 32
    channels: int = 3
    flip: float = 0.5
    crop_scale: tuple[float, float] = (0.2, 1.0)
    views: str = "simclr"
    n_local: int = 0


def build_views(c: ImageViewsConfig) -> Views:
    """The :class:`~contrastkit.augment.Views` of a config (multi-crop when ``n_local`` > 0)."""
    preset = "multicrop" if c.n_local > 0 and c.views == "simclr" else c.views
    extra = {"n_local": c.n_local} if preset == "multicrop" else {}
    return views_for(
        preset, c.image_size, c.channels, flip=c.flip, scale=tuple(c.crop_scale), **extra
    )


def like_encoder(x: Tensor, encoder: nn.Module) -> Tensor:
    """``x`` in channels_last when the encoder's weights are (the trainer's default on CPU)."""
    p = next(encoder.parameters(), None)
    if x.dim() == 4 and p is not None and p.is_contiguous(memory_format=torch.channels_last):
        return x.contiguous(memory_format=torch.channels_last)
    return x


def view_pair(recipe: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """The (2B, C, H, W) network input of a two-view recipe: both views of ``batch["images"]``
    (view 1 rows first), laid out like the recipe's encoder."""
    v1, v2 = recipe.views(batch["images"])[:2]
    return like_encoder(torch.cat([v1, v2]), recipe.encoder)


def instance_ids(batch: dict[str, Tensor], n: int) -> tuple[Tensor, str, Tensor | None]:
    """(query ids, info_nce ``gather`` kind, ids to store in a queue) of a batch of ``n`` images.

    With the trainer's ``"indices"`` (data-set indices) the ids are global: the same image keeps
    its id across steps and ranks, so a queued copy of it is recognised. Without them the ids
    are ``arange(n)`` (per-rank instance numbers) and queued rows get anonymous ids.
    """
    idx = batch.get("indices")
    if idx is not None:
        return idx, "labels", idx
    return torch.arange(n, device=batch["images"].device), "instances", None


def online(*modules: nn.Module) -> nn.Sequential:
    """The online branch a momentum encoder follows, e.g. ``online(encoder, projector)``
    (a throwaway container: the modules stay registered where they are)."""
    return nn.Sequential(*modules)


def check_text_encoder(encoder: nn.Module, recipe: str) -> None:
    """Raise a clear error when a text recipe is given an encoder without ``tokenize``."""
    if not hasattr(encoder, "tokenize"):
        raise TypeError(
            f"{recipe} needs a text encoder with tokenize(); got {type(encoder).__name__}. "
            "Use contrastkit.encoders.text.HFTextEncoder (minilm) or SmallTextEncoder."
        )


def text_views_or_none(preset: str, seed: int):
    """The text-view preset (``"none"``: no views, dropout is the only noise)."""
    if preset == "none":
        return None
    from contrastkit.augment.text import text_views

    return text_views(preset, seed=seed)
