"""SCARF: the views it prepares, a step and its loss, training that lowers the loss on a toy
table, the optional reconstruction term, and gradient caching equal to the plain step
(float64, 1e-8)."""

from __future__ import annotations

import copy

import pytest
import torch

from contrastkit.encoders.tabular import TabularMLP, TabularResNet
from contrastkit.recipes.scarf import SCARF, SCARFConfig
from contrastkit.train import grad_cache_step

F64 = torch.float64
CARDS = [4, 3]


def table(n: int = 64, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Two clusters in 5 numeric columns, and 2 code columns that follow the cluster."""
    g = torch.Generator().manual_seed(seed)
    cluster = torch.randint(0, 2, (n,), generator=g)
    num = torch.randn(n, 5, generator=g, dtype=dtype) * 0.3 + (2 * cluster[:, None] - 1)
    c0 = (cluster * 2 + torch.randint(0, 2, (n,), generator=g)).to(dtype)  # 0..3
    c1 = (cluster + 1).to(dtype)  # 1..2 (0 = missing unused)
    return torch.cat([num, c0[:, None], c1[:, None]], 1)


def recipe(
    reconstruction: float = 0.0, dtype: torch.dtype = torch.float32, resnet: bool = False
) -> SCARF:
    torch.manual_seed(0)
    cls = TabularResNet if resnet else TabularMLP
    enc = cls(n_numeric=5, cardinalities=CARDS, hidden=16, depth=2)
    cfg = SCARFConfig(proj_dim=8, reconstruction_weight=reconstruction)
    return SCARF(enc, cfg, reference=table(200, seed=9, dtype=dtype)).to(dtype)


def test_prepare_gives_anchors_then_corrupted_positives():
    r = recipe()
    x = table(10)
    torch.manual_seed(1)
    prepared = r.prepare({"table": x})
    inputs, mask = prepared["inputs"], prepared["mask"]
    assert inputs.shape == (20, 7) and mask.shape == (10, 7)
    assert torch.equal(inputs[:10], x)  # the anchor is the row itself (the paper)
    assert (mask.sum(dim=1) == round(0.6 * 7)).all()
    assert torch.equal(inputs[10:][~mask], x[~mask])
    ref = r.reference
    assert ref is not None and ref.shape == (200, 7)
    for i, j in mask.nonzero().tolist():  # every corrupted cell holds a value of its column
        assert bool((ref[:, j] == inputs[10 + i, j]).any())


def test_step_loss_embeddings_and_defaults():
    r = recipe()
    assert r.name == "scarf" and r.modality == "table" and r.towers == ("table",)
    assert r.optim_defaults["optimizer"] == "adam"
    assert SCARFConfig().corruption_rate == 0.6 and SCARFConfig().temperature == 1.0
    out = r.step({"table": table(16), "indices": torch.arange(100, 116)})
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert out.embeddings.shape == (16, 8) and not out.embeddings.requires_grad
    out.loss.backward()
    assert r.encoder.input.embedding.weight.grad is not None
    assert r.step({"table": table(16)}).loss.ndim == 0  # no indices: per-batch instance ids


def test_reference_is_not_saved_and_follows_the_recipe():
    r = recipe()
    assert not any("reference" in k for k in r.state_dict())
    r = r.to(F64)
    assert r.reference.dtype == F64
    r.set_reference(table(30, seed=2))
    assert r.reference.shape == (30, 7) and r.reference.dtype == F64


def test_clear_errors():
    enc = TabularMLP(n_numeric=5, cardinalities=CARDS, hidden=8, depth=1)
    with pytest.raises(ValueError, match="reference=train_rows"):
        SCARF(enc).step({"table": table(4)})
    with pytest.raises(ValueError, match="needs 'table'"):
        SCARF(enc, reference=table(4)).step({"images": torch.zeros(4, 1, 2, 2)})
    with pytest.raises(ValueError, match="temperature"):
        SCARF(enc, SCARFConfig(temperature=0.0))


@pytest.mark.parametrize("reconstruction", [0.0, 1.0])
def test_training_lowers_the_loss_on_a_toy_table(reconstruction):
    r = recipe(reconstruction)
    data = table(256, seed=3)
    opt = torch.optim.Adam(r.parameters(), lr=3e-3)
    torch.manual_seed(0)
    losses = []
    for _ in range(150):
        idx = torch.randint(0, 256, (64,))
        out = r.step({"table": data[idx], "indices": idx})
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    first, last = sum(losses[:15]) / 15, sum(losses[-15:]) / 15
    assert last < first - 0.05, (first, last)
    if reconstruction:
        assert {"mask_loss", "value_loss"} <= set(out.metrics)


def test_reconstruction_head_only_when_asked():
    assert recipe(0.0).reconstruction is None
    r = recipe(0.5)
    assert r.reconstruction is not None and r.reconstruction.out_features == 14
    prepared = r.prepare({"table": table(4)})
    assert r.embed("table", prepared["inputs"]).shape == (8, 8 + 14)


def _grads(module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("reconstruction", [0.0, 0.5])
@pytest.mark.parametrize("resnet", [False, True])
@pytest.mark.parametrize("chunk", [1, 3, 16])
def test_grad_cache_equals_the_plain_step(chunk, resnet, reconstruction):
    r = recipe(reconstruction, F64, resnet)
    twin = copy.deepcopy(r)
    batch = {"table": table(8, seed=5, dtype=F64), "indices": torch.arange(8)}
    torch.manual_seed(5)
    plain = r.step(batch)
    plain.loss.backward()
    torch.manual_seed(5)  # prepare draws the same corruption in both paths
    cached = grad_cache_step(twin, batch, chunk)
    torch.testing.assert_close(cached.loss, plain.loss.detach(), atol=1e-8, rtol=0)
    expected, actual = _grads(r), _grads(twin)
    assert set(actual) == set(expected) and len(expected) >= 8
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], atol=1e-8, rtol=0, msg=key)
