"""Encoders: backbones that map inputs to feature vectors, each with ``out_dim`` and ``config``.

``build_encoder(name, **config)`` rebuilds any of them from the JSON config saved beside the
weights, so an exported encoder loads without the training code.
"""

from __future__ import annotations

from torch import nn

from contrastkit.encoders.efficientnet import EfficientNetLite0
from contrastkit.encoders.resnet import ResNet, resnet18, resnet34, resnet50
from contrastkit.encoders.small import MLP, SmallCNN
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
    "EfficientNetLite0",
    "HFTextEncoder",
    "ResNet",
    "SmallCNN",
    "SmallTextEncoder",
    "TextEncoder",
    "WordVocab",
    "build_encoder",
    "build_vocab",
    "gcn",
    "gin",
    "minilm",
    "minilm_path",
    "resnet18",
    "resnet34",
    "resnet50",
    "word_weights",
]
