"""Text recipes on two gloo processes: SimCSE (with and without self-distillation) and text
SupCon losses and gradients equal one process's on the whole batch (the same in-batch
negatives, gathered across ranks)."""

from __future__ import annotations

import torch

from contrastkit import distributed as dist

from ._harness import WORLD, single, spawn

TEXTS = [
    "a warm and funny film",
    "the plot is thin and slow",
    "great acting from the whole cast",
    "i was bored after ten minutes",
    "a moving story about a family",
    "the jokes fall flat",
    "beautifully shot and well paced",
    "too long and too loud",
]


def _recipe(kind: str):
    from contrastkit.encoders.text import SmallTextEncoder, build_vocab
    from contrastkit.recipes import SimCSE, SimCSEConfig
    from contrastkit.recipes.text_supcon import TextSupCon, TextSupConConfig

    torch.manual_seed(0)
    # no dropout: the two passes of a text are deterministic, on any process
    enc = SmallTextEncoder(build_vocab(TEXTS), dim=16, layers=1, heads=2, dropout=0.0)
    if kind == "text_supcon":
        return TextSupCon(enc, TextSupConConfig())
    # simcse_distill: the frozen copy's embeddings are gathered like the other keys
    # (float32: text encoders pool in float32 anyway)
    return SimCSE(enc, SimCSEConfig(distill=1.0 if kind == "simcse_distill" else 0.0))


def _text_step_case() -> None:
    labels = torch.tensor([1, 0, 1, 0, 1, 0, 1, 0])
    n = len(TEXTS) // WORLD
    mine = slice(n * dist.rank(), n * dist.rank() + n)
    for kind in ("simcse", "simcse_distill", "text_supcon"):
        recipe = _recipe(kind)
        batch = {"texts": TEXTS, "labels": labels, "indices": torch.arange(len(TEXTS))}
        with single():
            full = recipe.step(batch).loss
            params = [p for p in recipe.parameters() if p.requires_grad]
            expected = torch.autograd.grad(full, params, allow_unused=True)
        recipe.zero_grad()
        local_batch = {
            "texts": TEXTS[mine],
            "labels": labels[mine],
            "indices": torch.arange(8)[mine],
        }
        local = recipe.step(local_batch).loss
        local.backward()
        dist.average_gradients(recipe)
        mean = dist.all_reduce_sum(local.detach()) / WORLD
        torch.testing.assert_close(mean, full.detach(), atol=1e-6, rtol=1e-6)
        # float32 precision; a negative missing from the gather would differ at O(1)
        for p, g in zip(params, expected):
            if g is not None:
                torch.testing.assert_close(
                    p.grad, g, atol=1e-6, rtol=1e-4, msg=lambda m, k=kind: f"{k} gradient: {m}"
                )


def test_text_recipes_match_one_process():
    spawn(_text_step_case)
