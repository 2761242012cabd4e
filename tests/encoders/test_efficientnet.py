"""EfficientNet-Lite0 warm start: weights load safely and carry ImageNet knowledge."""

from __future__ import annotations

import pytest
import torch

from contrastkit.data import load_digits
from contrastkit.encoders import EfficientNetLite0, build_encoder
from contrastkit.evaluate import extract_features, knn_accuracy


def test_pretrained_weights_load_and_differ_from_random():
    torch.manual_seed(0)
    pre = EfficientNetLite0(in_channels=3, input_size=32, pretrained=True)
    rnd = EfficientNetLite0(in_channels=3, input_size=32, pretrained=False)
    w_pre = pre.net._conv_stem.weight
    assert not torch.allclose(w_pre, rnd.net._conv_stem.weight)
    # ImageNet BN statistics are loaded (not the defaults 0 / 1)
    assert float(pre.net._bn0.running_var.std()) > 0.01
    assert pre(torch.rand(2, 3, 28, 28)).shape == (2, 1280)


def test_pretrained_features_beat_random_init_on_digits():
    data = load_digits()
    accs = {}
    for pretrained in (True, False):
        torch.manual_seed(0)
        enc = EfficientNetLite0(in_channels=1, input_size=32, pretrained=pretrained)
        f_tr = extract_features(enc, data.train.images, batch_size=256)
        f_te = extract_features(enc, data.test.images, batch_size=256)
        accs[pretrained] = knn_accuracy(f_tr, data.train.labels, f_te, data.test.labels, k=20)
    assert accs[True] > accs[False] + 0.05, accs


def test_rebuilt_from_config_without_weights():
    enc = EfficientNetLite0(in_channels=1, input_size=32, pretrained=True)
    again = build_encoder("efficientnet_lite0", **enc.config)
    again.load_state_dict(enc.state_dict())
    x = torch.rand(2, 1, 28, 28)
    enc.eval()
    again.eval()
    torch.testing.assert_close(again(x), enc(x))
    with pytest.raises(ValueError, match="in_channels"):
        EfficientNetLite0(in_channels=2)
