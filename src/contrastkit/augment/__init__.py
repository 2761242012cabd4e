"""Augmentation: batched tensor views (kornia), recipe presets, RandAugment, MixUp/CutMix."""

from contrastkit.augment.mix import cutmix, mixup
from contrastkit.augment.policies import AnyChannels, auto_augment, rand_augment
from contrastkit.augment.views import (
    PRESETS,
    ViewConfig,
    Views,
    make_view,
    to_float_images,
    views_for,
)

__all__ = [
    "PRESETS",
    "AnyChannels",
    "ViewConfig",
    "Views",
    "auto_augment",
    "cutmix",
    "make_view",
    "mixup",
    "rand_augment",
    "to_float_images",
    "views_for",
]
