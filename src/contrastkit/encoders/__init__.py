"""Encoders: backbones that map inputs to feature vectors, each with ``out_dim`` and ``config``.

``build_encoder(name, **config)`` rebuilds any of them from the JSON config saved beside the
weights, so an exported encoder loads without the training code.
"""

from __future__ import annotations

from torch import nn

from contrastkit.encoders.audio import AudioCNN, AudioTransformer, audio_cnn, audio_transformer
from contrastkit.encoders.char_text import CharTextEncoder, char_text
from contrastkit.encoders.efficientnet import EfficientNetLite0
from contrastkit.encoders.lightgcn import LightGCN
from contrastkit.encoders.pixel import PixelEncoder
from contrastkit.encoders.resnet import ResNet, resnet18, resnet34, resnet50
from contrastkit.encoders.small import MLP, SmallCNN
from contrastkit.encoders.tabular import TabularMLP, TabularResNet, tabular_mlp, tabular_resnet
from contrastkit.encoders.text import (
    HFTextEncoder,
    SmallTextEncoder,
    TextEncoder,
    WordVocab,
    build_vocab,
    minilm,
    minilm_path,
    word_weights,
)


def gin(**config) -> nn.Module:
    """Build :class:`contrastkit.encoders.graph.GIN` (imports torch_geometric only when called).

    Example:
        >>> gin(in_dim=7, hidden=16, layers=3).out_dim
        48
    """
    from contrastkit.encoders.graph import GIN

    return GIN(**config)


def gcn(**config) -> nn.Module:
    """Build :class:`contrastkit.encoders.graph.GCN` (imports torch_geometric only when called).

    Example:
        >>> gcn(in_dim=7, hidden=32, out_dim=16).out_dim
        16
    """
    from contrastkit.encoders.graph import GCN

    return GCN(**config)


def two_tower(**config) -> nn.Module:
    """Build :class:`contrastkit.encoders.two_tower.TwoTowerEncoder` (a recommender's user and
    item towers).

    Example:
        >>> two_tower(n_users=3, n_items=5, dim=8).out_dim
        8
    """
    from contrastkit.encoders.two_tower import TwoTowerEncoder

    return TwoTowerEncoder(**config)


ENCODERS = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "small_cnn": SmallCNN,
    "mlp": MLP,
    "efficientnet_lite0": EfficientNetLite0,
    "hf_text": HFTextEncoder,
    "small_text": SmallTextEncoder,
    "minilm": minilm,
    "gin": gin,
    "gcn": gcn,
    "two_tower": two_tower,
    "lightgcn": LightGCN,
    "tabular_mlp": tabular_mlp,
    "tabular_resnet": tabular_resnet,
    "audio_cnn": audio_cnn,
    "audio_transformer": audio_transformer,
    "char_text": char_text,
    "pixel": PixelEncoder,
}


def build_encoder(name: str, **config) -> nn.Module:
    """Build a registered encoder by name with its keyword configuration.

    Example:
        >>> from contrastkit.encoders import build_encoder
        >>> build_encoder("resnet18", in_channels=1, small_input=True).out_dim
        512
    """
    if name not in ENCODERS:
        import difflib

        close = difflib.get_close_matches(name, list(ENCODERS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown encoder {name!r}; available: {sorted(ENCODERS)}.{hint}")
    if name.startswith("resnet"):
        config = {k: v for k, v in config.items() if k not in ("block", "layers")}
    return ENCODERS[name](**config)


__all__ = [
    "ENCODERS",
    "MLP",
    "AudioCNN",
    "AudioTransformer",
    "CharTextEncoder",
    "EfficientNetLite0",
    "HFTextEncoder",
    "LightGCN",
    "PixelEncoder",
    "ResNet",
    "SmallCNN",
    "SmallTextEncoder",
    "TabularMLP",
    "TabularResNet",
    "TextEncoder",
    "WordVocab",
    "audio_cnn",
    "audio_transformer",
    "build_encoder",
    "build_vocab",
    "char_text",
    "gcn",
    "gin",
    "minilm",
    "minilm_path",
    "resnet18",
    "resnet34",
    "resnet50",
    "tabular_mlp",
    "tabular_resnet",
    "two_tower",
    "word_weights",
]
