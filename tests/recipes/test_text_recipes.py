"""Text recipes: SimCSE (unsupervised, pairs, triplets) and TextSupCon on the shared trainer."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from contrastkit.data.text import TextSet
from contrastkit.encoders.text import SmallTextEncoder, build_vocab
from contrastkit.losses import info_nce
from contrastkit.recipes import RECIPES, SimCSE, SimCSEConfig, TextSupCon, TextSupConConfig
from contrastkit.train import TrainConfig, Trainer
from contrastkit.train.grad_cache import grad_cache_step

TEXTS = [
    "a good film with great acting",
    "a bad film with a thin plot",
    "the cast is wonderful",
    "dull , long and tedious",
    "i loved every minute",
    "a waste of two hours",
    "sharp writing and a warm heart",
    "nothing works in this mess",
]
LABELS = torch.tensor([1, 0, 1, 0, 1, 0, 1, 0])


def _encoder(dropout: float = 0.1) -> SmallTextEncoder:
    torch.manual_seed(0)
    return SmallTextEncoder(build_vocab(TEXTS), dim=32, layers=1, heads=2, dropout=dropout)


def _batch(**extra) -> dict:
    return {"texts": TEXTS, "indices": torch.arange(len(TEXTS)), **extra}


def test_registered_as_text_recipes():
    for name in ("simcse", "text_supcon"):
        assert RECIPES[name][0].modality == "text"
    assert RECIPES["simclr"][0].modality == "image"


def test_unsupervised_simcse_is_info_nce_of_two_dropout_passes():
    """The loss equals info_nce of the two passes' embeddings (the same dropout masks)."""
    recipe = SimCSE(_encoder(), SimCSEConfig(temperature=0.05)).train()
    torch.manual_seed(1)
    out = recipe.step(_batch())
    torch.manual_seed(1)
    prepared = recipe.prepare(_batch())
    z = recipe.embed("views", prepared["inputs"])
    n = len(TEXTS)
    assert torch.equal(prepared["inputs"][:n], prepared["inputs"][n:])  # same tokens twice
    assert not torch.allclose(z[:n], z[n:])  # ... but dropout makes the views differ
    ref = info_nce(z[:n], z[n:], query_ids=torch.arange(n), temperature=0.05)
    torch.testing.assert_close(out.loss, ref)


@pytest.mark.parametrize("preset", ["span", "ict"])
def test_simcse_views_are_the_presets_pairs(preset):
    """With a split preset the two rows of a text are its preset pair (the two sides of a cut;
    "ict": most pairs without their shared words), drawn from the recipe's seed; a bag
    without dropout then trains on them through the embedding_bag path."""
    from contrastkit.augment.text import text_views

    torch.manual_seed(0)
    enc = SmallTextEncoder(build_vocab(TEXTS), dim=16, kind="bag", dropout=0.0)
    recipe = SimCSE(enc, SimCSEConfig(views=preset, seed=4)).train()
    prepared = recipe.prepare(_batch())
    first, second = text_views(preset, seed=4).pair(TEXTS)
    assert torch.equal(prepared["inputs"], enc.tokenize(first + second))
    if preset == "ict":
        assert sum(not set(a.split()) & set(b.split()) for a, b in zip(first, second)) >= 6
    out = recipe.step(_batch())
    out.loss.backward()
    assert torch.isfinite(out.loss) and enc.embed.weight.grad.abs().sum() > 0


def test_unsupervised_simcse_explicit_loop():
    """Row i: −log softmax over cos(a_i, p_j)/τ at j = i (an explicit Python loop)."""
    recipe = SimCSE(_encoder(dropout=0.0), SimCSEConfig(temperature=0.1)).eval()
    prepared = recipe.prepare(_batch())
    z = recipe.embed("views", prepared["inputs"])
    n = len(TEXTS)
    a, p = F.normalize(z[:n].detach(), dim=1), F.normalize(z[n:].detach(), dim=1)
    total = 0.0
    for i in range(n):
        logits = [float(a[i] @ p[j]) / 0.1 for j in range(n)]
        total += -(logits[i] - math.log(sum(math.exp(v) for v in logits)))
    loss = recipe.loss({"views": z}, prepared).loss
    assert abs(float(loss) - total / n) < 1e-4
    # no dropout: both passes are identical, every row's positive is its own copy
    assert torch.allclose(z[:n], z[n:])


def test_simcse_triplets_hard_negatives_are_candidates_of_every_anchor():
    recipe = SimCSE(_encoder(dropout=0.0), SimCSEConfig(temperature=0.05)).eval()
    pos = [t + " indeed" for t in TEXTS]
    neg = list(reversed(TEXTS))
    prepared = recipe.prepare(_batch(positives=pos, negatives=neg))
    z = recipe.embed("views", prepared["inputs"])
    n = len(TEXTS)
    a, p, m = (F.normalize(x.detach(), dim=1) for x in (z[:n], z[n : 2 * n], z[2 * n :]))
    total = 0.0
    for i in range(n):
        logits = [float(a[i] @ p[j]) / 0.05 for j in range(n)]
        logits += [float(a[i] @ m[j]) / 0.05 for j in range(n)]
        total += -(logits[i] - math.log(sum(math.exp(v) for v in logits)))
    assert abs(float(recipe.loss({"views": z}, prepared).loss) - total / n) < 1e-3


def test_simcse_triplet_margin_loss_and_errors():
    recipe = SimCSE(_encoder(dropout=0.0), SimCSEConfig(loss="triplet", margin=0.3)).eval()
    pos = [t + " indeed" for t in TEXTS]
    neg = list(reversed(TEXTS))
    prepared = recipe.prepare(_batch(positives=pos, negatives=neg))
    z = recipe.embed("views", prepared["inputs"]).float()
    n = len(TEXTS)
    a, p, m = (F.normalize(x, dim=1) for x in (z[:n], z[n : 2 * n], z[2 * n :]))
    ref = torch.relu((1 - (a * p).sum(1)) - (1 - (a * m).sum(1)) + 0.3).mean()
    torch.testing.assert_close(recipe.loss({"views": z}, prepared).loss, ref, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="negative column"):
        recipe.prepare(_batch(positives=pos))
    with pytest.raises(TypeError, match="text encoder"):
        SimCSE(torch.nn.Linear(3, 3))


def test_text_supcon_same_label_copies_are_positives():
    recipe = TextSupCon(_encoder(), TextSupConConfig(temperature=0.1)).train()
    torch.manual_seed(2)
    out = recipe.step(_batch(labels=LABELS))
    torch.manual_seed(2)
    prepared = recipe.prepare(_batch(labels=LABELS))
    z = recipe.embed("views", prepared["inputs"])
    ref = info_nce(z, query_ids=LABELS.repeat(2), temperature=0.1)
    torch.testing.assert_close(out.loss, ref)
    with pytest.raises(ValueError, match="labels"):
        recipe.step(_batch())


def test_grad_cache_matches_plain_step_for_text():
    """Token-id rows chunk like image rows: gradient caching gives the plain gradients."""
    recipe = SimCSE(_encoder(dropout=0.0), SimCSEConfig()).eval()
    recipe.step(_batch()).loss.backward()
    plain = [p.grad.clone() for p in recipe.parameters() if p.grad is not None]
    recipe.zero_grad()
    grad_cache_step(recipe, _batch(), 3)
    cached = [p.grad.clone() for p in recipe.parameters() if p.grad is not None]
    assert len(plain) == len(cached) > 0
    for g1, g2 in zip(plain, cached):
        torch.testing.assert_close(g1, g2, atol=1e-5, rtol=1e-4)


def test_trainer_fits_text_and_lowers_loss(tmp_path):
    data = TextSet(texts=TEXTS * 8, labels=LABELS.repeat(8), classes=["neg", "pos"])
    recipe = TextSupCon(_encoder(), TextSupConConfig(proj_layers=0))
    cfg = TrainConfig(
        epochs=6,
        batch_size=16,
        optimizer="adamw",
        lr=3e-3,
        lr_scaling="none",
        warmup_epochs=0.0,
        out_dir=str(tmp_path),
        progress=False,
        monitor_every=3,
    )
    hist = Trainer(recipe, data, cfg, monitor=(data, data), encoder_name="small_text").fit()
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert "knn_acc" in hist[-1]
    from contrastkit.train import load_encoder

    enc = load_encoder(tmp_path)
    torch.testing.assert_close(enc.encode(TEXTS), recipe.encoder.encode(TEXTS))


def test_simcse_distill_adds_info_nce_against_the_frozen_start():
    """distill > 0: each view must also find its own text's embedding under a frozen copy of
    the starting encoder; the copy never trains and stays in eval mode."""
    recipe = SimCSE(_encoder(), SimCSEConfig(temperature=0.05, distill=0.5)).train()
    assert recipe.teacher is not None and not recipe.teacher.training
    assert all(not p.requires_grad for p in recipe.teacher.parameters())
    torch.manual_seed(1)
    prepared = recipe.prepare(_batch())
    z = recipe.embed("views", prepared["inputs"])
    n = len(TEXTS)
    with torch.no_grad():
        t = _encoder().eval()(recipe.encoder.tokenize(TEXTS))
    torch.testing.assert_close(prepared["teacher"], t)  # the start's weights, no dropout
    ids = torch.arange(n)
    simcse = info_nce(z[:n], z[n:], query_ids=ids, temperature=0.05)
    distill = 0.5 * (
        info_nce(z[:n], t, query_ids=ids, temperature=0.05)
        + info_nce(z[n:], t, query_ids=ids, temperature=0.05)
    )
    out = recipe.loss({"views": z}, prepared)
    torch.testing.assert_close(out.loss, simcse + 0.5 * distill)
    assert abs(out.metrics["distill"] - float(distill)) < 1e-5
    # a training step moves the encoder, never the teacher
    before = {k: v.clone() for k, v in recipe.teacher.state_dict().items()}
    opt = torch.optim.SGD([p for p in recipe.parameters() if p.requires_grad], lr=1.0)
    out.loss.backward()
    opt.step()
    assert all(torch.equal(before[k], v) for k, v in recipe.teacher.state_dict().items())
    assert not torch.equal(recipe.encoder.embed.weight, recipe.teacher.embed.weight)
    # no teacher without distillation; a negative weight is refused
    assert SimCSE(_encoder(), SimCSEConfig()).teacher is None
    with pytest.raises(ValueError, match="distill"):
        SimCSE(_encoder(), SimCSEConfig(distill=-1.0))
    with pytest.raises(ValueError, match="head=False"):
        SimCSE(_encoder(), SimCSEConfig(distill=1.0, head=True))
