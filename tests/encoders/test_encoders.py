"""Encoders and heads: shapes, parameter counts, small-input stem, channels_last and bf16."""

from __future__ import annotations

import pytest
import torch

from contrastkit.encoders import MLP, SmallCNN, build_encoder, resnet18, resnet34, resnet50
from contrastkit.heads import ProjectionHead


@pytest.mark.parametrize(
    "fn,params_m",
    # Parameter counts of the torchvision reference trunks without the fc layer (ImageNet stem).
    [(resnet18, 11.176512), (resnet34, 21.284672), (resnet50, 23.508032)],
)
def test_resnet_parameter_counts_match_the_reference(fn, params_m):
    model = fn(in_channels=3)
    n = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(n - params_m) < 1e-6
    assert model.out_dim == (2048 if fn is resnet50 else 512)


def test_small_input_stem_keeps_resolution():
    model = resnet18(in_channels=1, small_input=True, width=0.25)
    feats = {}

    def hook(module, inputs, output):
        feats["stem"] = output.shape

    model.stem.register_forward_hook(hook)
    out = model(torch.randn(2, 1, 28, 28))
    assert feats["stem"][-2:] == (28, 28)
    assert out.shape == (2, model.out_dim) and model.out_dim == 128


def test_channels_last_bf16_matches_fp32():
    torch.manual_seed(0)
    model = resnet18(in_channels=1, small_input=True, width=0.25).eval()
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        ref = model(x)
    model = model.to(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x.to(memory_format=torch.channels_last))
    cos = torch.nn.functional.cosine_similarity(out.float(), ref, dim=1)
    assert float(cos.min()) > 0.99


def test_small_encoders_and_registry():
    assert SmallCNN(in_channels=3, width=16, stages=3)(torch.randn(2, 3, 32, 32)).shape == (2, 64)
    assert MLP(in_dim=64, hidden=(32,), out_dim=8)(torch.randn(5, 1, 8, 8)).shape == (5, 8)
    enc = build_encoder("small_cnn", in_channels=1, width=8, stages=2)
    again = build_encoder("small_cnn", **enc.config)
    assert sum(p.numel() for p in again.parameters()) == sum(p.numel() for p in enc.parameters())
    r = build_encoder("resnet18", **resnet18(in_channels=1, width=0.5).config)
    assert r.out_dim == 256
    with pytest.raises(ValueError, match="Did you mean 'resnet18'"):
        build_encoder("resnet19")


def test_projection_head():
    head = ProjectionHead(64, 32, 16, num_layers=3, last_bn=True)
    out = head(torch.randn(10, 64))
    assert out.shape == (10, 16)
    torch.testing.assert_close(out.mean(0), torch.zeros(16), atol=1e-5, rtol=0)  # last BN
    assert isinstance(ProjectionHead(8, out_dim=4, num_layers=1).net[0], torch.nn.Linear)
    with pytest.raises(ValueError, match="num_layers"):
        ProjectionHead(8, num_layers=0)
