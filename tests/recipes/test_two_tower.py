"""The two-tower recipe: its towers and features, the logQ buffer, the loss it calls, the
embeddings for ranking, the exported encoder, and a short run on MovieLens-100K that beats
popularity."""

from __future__ import annotations

import json

import pytest
import torch

from contrastkit.data.interactions import load_movielens_100k
from contrastkit.evaluate.protocols.ranking import RankingProtocol
from contrastkit.losses.sampled_softmax import sampled_softmax
from contrastkit.recipes.two_tower import TwoTower, TwoTowerConfig, TwoTowerEncoder, item_log_q
from contrastkit.train.checkpoint import load_state
from contrastkit.train.export import export_encoder

BATCH = {
    "users": torch.tensor([0, 1, 2, 2, 4]),
    "items": torch.tensor([6, 6, 3, 0, 1]),
    "indices": torch.arange(5),
}


def _recipe(**kw) -> TwoTower:
    torch.manual_seed(0)
    cfg = TwoTowerConfig(**{"dim": 8, **kw})
    return TwoTower(
        5,
        7,
        cfg,
        item_counts=torch.tensor([5, 1, 0, 2, 8, 1, 3]),
        user_features=torch.rand(5, 3),
        item_features=torch.rand(7, 4),
    )


def test_the_step_is_the_sampled_softmax_of_the_two_towers():
    recipe = _recipe()
    out = recipe.step(BATCH)
    u = recipe.encoder.users(BATCH["users"])
    i = recipe.encoder.items(BATCH["items"])
    expected = sampled_softmax(
        u,
        i,
        query_ids=BATCH["users"],
        key_ids=BATCH["items"],
        key_log_q=recipe.item_log_q[BATCH["items"]],
        temperature=0.05,
    )
    torch.testing.assert_close(out.loss, expected)
    assert out.metrics["temperature"] == pytest.approx(0.05)
    out.loss.backward()
    assert recipe.encoder.user_tower.feature_proj.weight.grad is not None
    plain = _recipe(logq_correction=False, mask_user_items=False)
    prepared = plain.prepare(BATCH)
    assert prepared["item_log_q"] is None
    want = sampled_softmax(
        plain.encoder.users(BATCH["users"]),
        plain.encoder.items(BATCH["items"]),
        key_ids=BATCH["items"],
        temperature=0.05,
    )
    torch.testing.assert_close(plain.step(BATCH).loss, want)


def test_log_q_comes_from_training_counts_and_is_not_saved():
    recipe = _recipe()
    counts = torch.tensor([5, 1, 1, 2, 8, 1, 3], dtype=torch.float64)  # 0 counts as 1
    torch.testing.assert_close(recipe.item_log_q, (counts / counts.sum()).log().float())
    torch.testing.assert_close(item_log_q(torch.tensor([1, 3])), torch.tensor([0.25, 0.75]).log())
    assert "item_log_q" not in recipe.state_dict()
    assert "encoder.item_tower.features" in recipe.state_dict()
    uniform = TwoTower(5, 7, TwoTowerConfig(dim=4))
    assert torch.allclose(uniform.item_log_q, torch.full((7,), -torch.log(torch.tensor(7.0))))
    with pytest.raises(ValueError, match=r"item_counts must be \(n_items,\) = \(7,\)"):
        TwoTower(5, 7, item_counts=torch.ones(6))
    with pytest.raises(ValueError, match=r"user_features must be \(5, F\)"):
        TwoTower(5, 7, user_features=torch.ones(4, 2))


def test_features_are_used_only_when_present_and_wanted():
    with_features = _recipe()
    assert with_features.encoder.config["user_feature_dim"] == 3
    assert with_features.encoder.config["item_feature_dim"] == 4
    without = _recipe(use_user_features=False, use_item_features=False)
    assert without.encoder.config["user_feature_dim"] == 0
    assert not hasattr(without.encoder.user_tower, "feature_proj")
    bare = TwoTower(5, 7, TwoTowerConfig(dim=8, hidden=16))
    assert bare.encoder.config["item_feature_dim"] == 0
    assert isinstance(bare.encoder.item_tower.mlp, torch.nn.Sequential)
    assert bare.step(BATCH).loss.ndim == 0


def test_embeddings_for_ranking_are_all_ids_in_eval_mode():
    recipe = _recipe(hidden=6).train()
    users, items = recipe.user_embeddings(batch_size=2), recipe.item_embeddings(batch_size=3)
    assert users.shape == (5, 8) and items.shape == (7, 8) and recipe.training
    torch.testing.assert_close(users.norm(dim=1), torch.ones(5))
    with torch.no_grad():
        torch.testing.assert_close(items[3], recipe.encoder(torch.tensor([3]))[0])
    raw = _recipe(normalize=False)
    assert not torch.allclose(raw.item_embeddings().norm(dim=1), torch.ones(7))


def test_learned_temperature_is_a_parameter():
    recipe = _recipe(learn_temperature=True, temperature=0.1)
    recipe.step(BATCH).loss.backward()
    assert recipe.log_temperature.grad is not None
    fixed = _recipe()
    assert not fixed.log_temperature.requires_grad
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        TwoTower(5, 7, TwoTowerConfig(temperature=0.0))


def test_the_exported_encoder_rebuilds_from_its_config(tmp_path):
    recipe = _recipe(hidden=6)
    export_encoder(recipe.encoder, tmp_path, "two_tower")
    meta = json.loads((tmp_path / "encoder.json").read_text())
    rebuilt = TwoTowerEncoder(**meta["config"])
    rebuilt.load_state_dict(load_state(tmp_path / "encoder.safetensors")["state_dict"])
    rebuilt.eval()
    ids = torch.arange(5)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.users(ids), recipe.user_embeddings())
        torch.testing.assert_close(rebuilt(torch.arange(7)), recipe.item_embeddings())


def test_three_epochs_on_movielens_beat_popularity():
    torch.manual_seed(0)
    data = load_movielens_100k()
    recipe = TwoTower.from_interactions(data)
    opt = torch.optim.Adam(recipe.parameters(), lr=TwoTower.optim_defaults["lr"])
    pairs = data.pairs()
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        perm = torch.randperm(len(pairs), generator=g)
        for start in range(0, len(perm), 256):
            loss = recipe.step(pairs.rows(perm[start : start + 256])).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    result = RankingProtocol(ks=(20,)).evaluate(
        recipe.user_embeddings(), recipe.item_embeddings(), data.train, data.val, split="val"
    )
    assert result.metrics["recall@20"] > result.baseline["recall@20"] + 0.02
