"""The momentum / queue / negative-free recipes: every step trains, gradient caching gives the
plain step's gradients, queues never hold the batch's own keys as negatives, resume is exact."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from torch import nn

from contrastkit.app.config import RunConfig
from contrastkit.app.experiment import build_recipe
from contrastkit.data import load_digits
from contrastkit.encoders import SmallCNN
from contrastkit.losses import info_nce
from contrastkit.memory import MomentumEncoder
from contrastkit.recipes import RECIPES, MoCo, MoCoConfig
from contrastkit.train import TrainConfig, Trainer, grad_cache_step

NEW = ["moco", "mocov3", "byol", "simsiam", "swav", "barlow_twins", "vicreg", "nnclr", "dino"]
SMALL = dict(
    proj_hidden=16,
    proj_dim=8,
    pred_hidden=16,
    out_dim=32,
    bottleneck_dim=8,
    num_prototypes=12,
    queue_size=48,
    n_local=2,
)


class RowEncoder(nn.Module):
    """Batch-independent encoder (no BatchNorm) so chunked and plain passes agree exactly."""

    def __init__(self, in_dim: int = 64, out_dim: int = 12) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(in_dim, 24), nn.Tanh(), nn.Linear(24, out_dim)
        )
        self.out_dim = out_dim

    def forward(self, x):
        return self.net(x.to(self.net[1].weight.dtype))


def _config(name: str, **over):
    cls, cfg = RECIPES[name]
    fields = {f.name for f in dataclasses.fields(cfg)}
    small = {k: v for k, v in SMALL.items() if k in fields}
    if "bn_splits" in fields:
        small["bn_splits"] = 2
    return cls, cfg(image_size=8, channels=1, flip=0.0, **{**small, **over})


def _recipe(name: str, encoder: nn.Module | None = None, seed: int = 0, **over):
    torch.manual_seed(seed)
    cls, cfg = _config(name, **over)
    return cls(encoder if encoder is not None else SmallCNN(1, width=8, stages=2), cfg)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _batch(digits, n=16, start=0):
    d = digits.train
    return {
        "images": d.images[start : start + n],
        "labels": d.labels[start : start + n],
        "indices": torch.arange(start, start + n),
    }


@pytest.mark.parametrize("name", NEW)
def test_step_trains_the_online_network_only(name, digits):
    recipe = _recipe(name)
    out = recipe.step(_batch(digits))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert out.embeddings is not None and not out.embeddings.requires_grad
    out.loss.backward()
    enc_grads = [p.grad for p in recipe.encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in enc_grads)
    assert any(float(g.abs().sum()) > 0 for g in enc_grads)
    for m in recipe.modules():
        if isinstance(m, MomentumEncoder):
            assert all(p.grad is None and not p.requires_grad for p in m.parameters())


@pytest.mark.parametrize("name", ["moco", "mocov3", "byol", "dino"])
def test_on_step_end_moves_the_momentum_target(name, digits):
    recipe = _recipe(name)
    target = next(m for m in recipe.modules() if isinstance(m, MomentumEncoder))
    before = [p.clone() for p in target.parameters()]
    opt = torch.optim.SGD(recipe.parameters(), lr=0.5)
    recipe.step(_batch(digits)).loss.backward()
    opt.step()
    recipe.on_step_end(1, 10)
    moved = [not torch.equal(a, b) for a, b in zip(before, target.parameters())]
    assert any(moved)
    assert 0.99 < float(target.momentum) < 1.0


def _bn_eval(recipe):
    """BatchNorm in eval mode: rows become independent (the exact-equality premise)."""
    for m in recipe.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    return recipe


@pytest.mark.parametrize("name", NEW)
def test_grad_cache_gives_the_gradients_of_the_plain_step(name, digits):
    recipe = _bn_eval(_recipe(name, RowEncoder()).double())
    twin = copy.deepcopy(recipe)
    batch = _batch(digits, 24)
    torch.manual_seed(7)
    plain = recipe.step(batch)
    plain.loss.backward()
    torch.manual_seed(7)
    cached = grad_cache_step(twin, batch, chunk_size=5)
    torch.testing.assert_close(cached.loss, plain.loss.detach(), atol=1e-10, rtol=0)
    grads = {k: p.grad for k, p in recipe.named_parameters() if p.grad is not None}
    assert len(grads) >= 4
    for k, p in twin.named_parameters():
        if k in grads:
            torch.testing.assert_close(p.grad, grads[k], atol=1e-9, rtol=0, msg=k)
        else:
            assert p.grad is None, k
    # the state the loss leaves (queues, centers) is the same too
    for (k, a), b in zip(recipe.named_buffers(), twin.buffers()):
        if "queue" in k or "support" in k or "center" in k:
            torch.testing.assert_close(a, b, atol=1e-12, rtol=0, msg=k)


def test_moco_queue_never_holds_the_batch_keys_and_skips_queued_copies(digits, monkeypatch):
    """At loss time the queue holds only earlier keys; a queued key of a query's own image is
    removed from that query's negatives (checked against a loss without those rows)."""
    import contrastkit.recipes.moco as moco_mod

    recipe = _recipe("moco", queue_size=64)
    seen = []

    def spy(q, k, **kw):
        seen.append((k.detach().clone(), kw))
        return info_nce(q, k, **kw)

    monkeypatch.setattr(moco_mod, "info_nce", spy)
    for step, start in enumerate([0, 8, 4]):  # the third batch repeats images 4..11
        batch = _batch(digits, 16 if step == 0 else 8, start)
        recipe.step(batch)
    for k, kw in seen:
        if kw["negatives"] is None:
            continue
        neg = kw["negatives"]
        # no row of this step's keys is among the negatives
        assert torch.cdist(k.float(), neg.float()).min() > 1e-6
    # the last step: ids 4..11 are both queries and queued; the loss equals one where each
    # query's queued copies are deleted by hand
    k, kw = seen[-1]
    ids, neg, neg_ids = kw["query_ids"], kw["negatives"], kw["negative_ids"]
    assert set(ids.tolist()) & set(neg_ids.tolist())
    q = torch.randn(len(ids), neg.shape[1], dtype=torch.float64)
    got = info_nce(
        q, k.double(), query_ids=ids, key_ids=ids, negatives=neg.double(), negative_ids=neg_ids
    )
    rows = []
    for i in range(len(ids)):
        keep = neg_ids != ids[i]
        rows.append(
            info_nce(
                q[i : i + 1],
                k.double(),
                query_ids=ids[i : i + 1],
                key_ids=ids,
                negatives=neg[keep].double(),
            )
        )
    torch.testing.assert_close(got, torch.stack(rows).mean(), atol=1e-12, rtol=0)


def test_moco_split_bn_is_in_the_key_encoder_and_optionally_the_query_encoder():
    from contrastkit.memory import SplitBatchNorm1d, SplitBatchNorm2d

    recipe = _recipe("moco")
    assert not any(isinstance(m, SplitBatchNorm2d) for m in recipe.encoder.modules())
    assert any(isinstance(m, SplitBatchNorm2d) for m in recipe.key_encoder.modules())
    assert any(isinstance(m, SplitBatchNorm1d) for m in recipe.key_encoder.modules())  # head
    assert not any(p.requires_grad for p in recipe.key_encoder.parameters())
    both = _recipe("moco", split_query_bn=True)
    assert any(isinstance(m, SplitBatchNorm2d) for m in both.encoder.modules())
    # the key network still follows the online one parameter for parameter
    both.key_encoder.update(online_of(both), momentum=0.0)
    for a, b in zip(both.key_encoder.parameters(), online_of(both).parameters(), strict=True):
        assert torch.equal(a, b)


def online_of(recipe):
    from contrastkit.recipes._common import online

    return online(recipe.encoder, recipe.head)


def test_swav_freezes_then_trains_prototypes_and_uses_its_queue(digits):
    recipe = _recipe("swav", queue_start=0.5, freeze_prototypes=0.2, queue_size=32)
    recipe.step(_batch(digits)).loss.backward()
    assert recipe.prototypes.weight.grad is None  # frozen at the start
    recipe.on_step_end(6, 10)
    assert torch.allclose(recipe.prototypes.weight.norm(dim=1), torch.ones(12))
    recipe.zero_grad()
    recipe.step(_batch(digits)).loss.backward()
    assert recipe.prototypes.weight.grad is not None
    assert all(q.is_full for q in recipe.queues)


def test_vicreg_logs_its_terms_and_dino_updates_its_center(digits):
    out = _recipe("vicreg").step(_batch(digits))
    assert set(out.metrics) == {"invariance", "variance", "covariance"}
    dino = _recipe("dino")
    dino.step(_batch(digits))
    assert float(dino.criterion.center.abs().sum()) > 0


@pytest.mark.parametrize("name", ["moco", "dino", "swav"])
def test_resume_is_exact_with_queues_targets_and_centers(name, digits, tmp_path):
    train = digits.train.subset(range(96))
    cfg = dict(epochs=3, batch_size=32, lr=0.05, progress=False, monitor_every=0, precision="fp32")
    full = Trainer(_recipe(name), train, TrainConfig(out_dir=str(tmp_path / "a"), **cfg))
    full.fit()
    part = Trainer(_recipe(name), train, TrainConfig(out_dir=str(tmp_path / "b"), **cfg))
    part.fit(stop_after_epoch=1)
    resumed = Trainer(_recipe(name, seed=5), train, TrainConfig(out_dir=str(tmp_path / "b"), **cfg))
    resumed.fit(resume=True)
    a, b = full.recipe.state_dict(), resumed.recipe.state_dict()
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("name", NEW)
def test_every_recipe_builds_from_the_run_config(name):
    cfg = RunConfig.from_dict(
        {"recipe": {"name": name}, "model": {"encoder": "small_cnn", "width": 0.1}}
    )
    recipe, _ = build_recipe(cfg, (1, 28, 28))
    assert recipe.name == name and recipe.config.image_size == 28


def test_recipe_options_are_validated_and_applied():
    cfg = RunConfig.from_dict(
        {"recipe": {"name": "moco", "queue_size": 512}, "model": {"encoder": "small_cnn"}}
    )
    recipe, _ = build_recipe(cfg, (1, 28, 28))
    assert recipe.queue.size == 512 and recipe.config.proj_hidden == MoCoConfig.proj_hidden
    with pytest.raises(ValueError, match=r"did you mean 'recipe\.queue_size'"):
        RunConfig.from_dict({"recipe": {"name": "moco", "queue_sise": 1}})
    with pytest.raises(ValueError, match=r"unknown key 'recipe\.temperature'"):
        RunConfig.from_dict({"recipe": {"name": "byol", "temperature": 0.1}})


def test_moco_without_indices_uses_anonymous_queue_ids(digits):
    recipe = _recipe("moco")
    batch = _batch(digits)
    del batch["indices"]
    recipe.step(batch)
    assert (recipe.queue.get()[1] < 0).all()
    assert isinstance(recipe, MoCo)


def test_moco_with_a_large_queue_backpropagates_through_the_chunked_loss(digits):
    """A queue big enough for info_nce's memory-linear path (which keeps the negatives' ids
    for its backward): pushing this step's keys must not change what the backward reads."""
    recipe = _recipe("moco", queue_size=270_000)
    recipe.queue.push(torch.randn(270_000, 8), torch.arange(1000, 271_000))
    out = recipe.step(_batch(digits))
    out.loss.backward()
    assert all(p.grad is not None for p in recipe.encoder.parameters())
