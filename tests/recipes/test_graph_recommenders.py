"""The graph recommenders (BPR-MF, LightGCN, SGL, SimGCL, XSimGCL): their steps, negatives,
embeddings, and that they learn a planted user–item structure."""

from __future__ import annotations

import pytest
import torch

from contrastkit.data.interactions import InteractionPairs
from contrastkit.encoders.lightgcn import LightGCN
from contrastkit.evaluate.protocols.ranking import RankingProtocol
from contrastkit.recipes._recsys import sample_negatives, view_info_nce
from contrastkit.recipes.bpr_mf import BPRMF, BPRMFConfig
from contrastkit.recipes.lightgcn import LightGCNConfig, LightGCNRecipe
from contrastkit.recipes.sgl import SGL, SGLConfig
from contrastkit.recipes.simgcl import SimGCL, SimGCLConfig
from contrastkit.recipes.xsimgcl import XSimGCL, XSimGCLConfig
from contrastkit.train import TrainConfig, Trainer

RECIPES = [
    (BPRMF, BPRMFConfig),
    (LightGCNRecipe, LightGCNConfig),
    (SGL, SGLConfig),
    (SimGCL, SimGCLConfig),
    (XSimGCL, XSimGCLConfig),
]
IDS = [cls.name for cls, _ in RECIPES]


def planted(n_users=60, n_items=45, groups=3, p=0.5, seed=0):
    """Users and items in ``groups`` blocks; a user interacts with about half of its block's
    items and nothing else. Each user's pairs are split 70/30 into train and test."""
    g = torch.Generator().manual_seed(seed)
    ug = torch.arange(n_users) % groups
    ig = torch.arange(n_items) % groups
    hit = (ug[:, None] == ig[None, :]) & (torch.rand(n_users, n_items, generator=g) < p)
    pairs = hit.nonzero()
    test = torch.rand(pairs.shape[0], generator=g) < 0.3
    return pairs[~test], pairs[test], n_users, n_items


def batch_of(pairs, rows=None):
    rows = torch.arange(pairs.shape[0]) if rows is None else rows
    return {"users": pairs[rows, 0], "items": pairs[rows, 1], "indices": rows}


def train_steps(recipe, pairs, steps, lr=0.01, batch=64, seed=0):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(recipe.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        rows = torch.randperm(pairs.shape[0])[:batch]
        out = recipe.step(batch_of(pairs, rows))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(float(out.loss.detach()))
    return losses


@pytest.mark.parametrize(("cls", "config"), RECIPES, ids=IDS)
def test_step_runs_finite_and_the_loss_decreases(cls, config):
    train, _, n_users, n_items = planted()
    torch.manual_seed(0)
    recipe = cls(n_users, n_items, config(dim=16), train_pairs=train)
    assert recipe.modality == "interactions" and isinstance(recipe.encoder, LightGCN)
    assert recipe.optim_defaults["optimizer"] == "adam" and recipe.optim_defaults["lr"] == 1e-3
    out = recipe.step(batch_of(train, torch.arange(32)))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert out.embeddings.shape == (32, 16) and not out.embeddings.requires_grad
    assert {"bpr", "l2"} <= set(out.metrics)
    out.loss.backward()
    assert recipe.encoder.user_embedding.weight.grad is not None
    losses = train_steps(recipe, train, 30)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-5:]) < sum(losses[:5])


@pytest.mark.parametrize(("cls", "config"), RECIPES, ids=IDS)
def test_trained_model_beats_a_random_ranking_on_planted_data(cls, config):
    train, test, n_users, n_items = planted()
    torch.manual_seed(0)
    recipe = cls(n_users, n_items, config(dim=16, reg=0.0), train_pairs=train)
    train_steps(recipe, train, 150, lr=0.02)
    users, items = recipe.user_embeddings(), recipe.item_embeddings()
    assert users.shape == (n_users, 16) and items.shape == (n_items, 16)
    result = RankingProtocol(ks=(5,), score="dot").evaluate(users, items, train, test)
    chance = result.other_baselines["chance"]["recall@5"]
    # a user's unseen items hold ~1/3 in-block: a model that learned the blocks triples chance
    assert result.metrics["recall@5"] > 2.0 * chance, (result.metrics, chance)


def test_embeddings_have_no_noise_and_bpr_mf_is_the_tables():
    train, _, n_users, n_items = planted()
    recipe = XSimGCL(n_users, n_items, train_pairs=train)
    assert torch.equal(recipe.user_embeddings(), recipe.user_embeddings())
    users, _ = recipe.encoder.propagate(recipe.adjacency(), skip_input=True)
    assert torch.allclose(recipe.user_embeddings(), users)
    mf = BPRMF(n_users, n_items, train_pairs=train)
    assert mf.encoder.layers == 0
    assert torch.equal(mf.item_embeddings(), mf.encoder.item_embedding.weight.detach())


def test_negatives_avoid_training_items_and_are_seeded():
    train, _, n_users, n_items = planted()
    recipe = LightGCNRecipe(n_users, n_items, train_pairs=train)
    users = train[:, 0].repeat(20)
    torch.manual_seed(1)
    negs = sample_negatives(users, recipe.positive_keys, n_items)
    seen = set(map(tuple, train.tolist()))
    assert not any((u, i) in seen for u, i in zip(users.tolist(), negs.tolist()))
    assert negs.min() >= 0 and negs.max() < n_items
    assert negs.unique().numel() > n_items // 2  # spread over the catalogue
    torch.manual_seed(1)
    assert torch.equal(sample_negatives(users, recipe.positive_keys, n_items), negs)


def test_view_info_nce_contrasts_unique_rows():
    torch.manual_seed(0)
    a, b = torch.randn(5, 4), torch.randn(5, 4)
    ids = torch.tensor([3, 1, 3, 3])
    from contrastkit.losses import info_nce

    rows = torch.tensor([1, 3])
    want = info_nce(a[rows], b[rows], query_ids=torch.arange(2), temperature=0.2)
    assert torch.allclose(view_info_nce(a, b, ids, 0.2), want)


def test_sgl_views_are_redrawn_every_views_every_steps():
    train, _, n_users, n_items = planted()
    recipe = SGL(n_users, n_items, SGLConfig(views_every=2, drop_ratio=0.3), train_pairs=train)
    first = recipe.views()
    assert recipe.views() is first  # step 2 keeps them
    third = recipe.views()
    assert third is not first
    assert not torch.equal(third[0].col_indices(), first[0].col_indices())
    with pytest.raises(ValueError, match="drop must be"):
        SGL(n_users, n_items, SGLConfig(drop="walk"), train_pairs=train)
    node = SGL(n_users, n_items, SGLConfig(drop="node", dim=8), train_pairs=train)
    assert torch.isfinite(node.step(batch_of(train)).loss)


def test_step_is_reproducible_under_manual_seed():
    train, _, n_users, n_items = planted()
    losses = []
    for _ in range(2):
        torch.manual_seed(3)
        recipe = SimGCL(n_users, n_items, SimGCLConfig(dim=8), train_pairs=train)
        losses.append(recipe.step(batch_of(train)).loss.item())
    assert losses[0] == losses[1]


def test_clear_errors():
    train, _, n_users, n_items = planted()
    with pytest.raises(ValueError, match="contrast_layer"):
        XSimGCL(
            n_users,
            n_items,
            XSimGCLConfig(propagation_layers=2, contrast_layer=3),
            train_pairs=train,
        )
    with pytest.raises(ValueError, match="outside"):
        LightGCNRecipe(n_users, n_items - 10, train_pairs=train)
    with pytest.raises(ValueError, match="skip_input"):
        SimGCL(n_users, n_items, SimGCLConfig(propagation_layers=0), train_pairs=train).step(
            batch_of(train)
        )
    recipe = LightGCNRecipe(n_users, n_items, train_pairs=train)
    with pytest.raises(NotImplementedError, match="gradient caching"):
        recipe.prepare(batch_of(train))


def test_trainer_fits_a_graph_recommender(tmp_path):
    train, _, n_users, n_items = planted()
    recipe = XSimGCL(n_users, n_items, XSimGCLConfig(dim=8), train_pairs=train)
    cfg = TrainConfig(
        epochs=2,
        batch_size=64,
        lr_scaling="none",
        warmup_epochs=0,
        precision="fp32",
        out_dir=str(tmp_path),
        progress=False,
        tensorboard=False,
    )
    history = Trainer(recipe, InteractionPairs(train), cfg).fit()
    assert len(history) == 2 and "cl" in history[-1]
    assert history[-1]["lr"] == pytest.approx(0.0)  # the cosine's end: lr scaled by "none"
