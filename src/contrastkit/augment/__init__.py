"""Augmentation: batched tensor views (kornia), recipe presets, RandAugment, MixUp/CutMix, and
text views (word-level edits, WordNet synonyms; see :mod:`contrastkit.augment.text`)."""

from contrastkit.augment.mix import cutmix, mixup
from contrastkit.augment.policies import AnyChannels, auto_augment, rand_augment
from contrastkit.augment.text import (
    ENGLISH_STOPWORDS,
    TEXT_OPS,
    TEXT_VIEW_DISJOINT,
    TEXT_VIEW_PRESETS,
    TEXT_VIEW_SPLITS,
    TextViews,
    WordNet,
    drop_shared_words,
    random_crop,
    span_deletion,
    split_text,
    synonym_replacement,
    text_views,
    word_dropout,
    word_swap,
)
from contrastkit.augment.views import (
    PRESETS,
    ViewConfig,
    Views,
    make_view,
    to_float_images,
    views_for,
)

__all__ = [
    "ENGLISH_STOPWORDS",
    "PRESETS",
    "TEXT_OPS",
    "TEXT_VIEW_DISJOINT",
    "TEXT_VIEW_PRESETS",
    "TEXT_VIEW_SPLITS",
    "AnyChannels",
    "TextViews",
    "ViewConfig",
    "Views",
    "WordNet",
    "auto_augment",
    "cutmix",
    "drop_shared_words",
    "make_view",
    "mixup",
    "rand_augment",
    "random_crop",
    "span_deletion",
    "split_text",
    "synonym_replacement",
    "text_views",
    "to_float_images",
    "views_for",
    "word_dropout",
    "word_swap",
]
