"""COLA and CLAP under the generic machinery, in float64: gradient caching equals the plain
step (1e-8), and two gloo processes with 4 clips each equal one process with 8 (loss and
every gradient, 1e-10).

The clips vary in length (padding must never count), the encoder is the audio Transformer
without dropout (LayerNorm only: no batch statistics, so chunks and ranks see the same
network), and the segments are the whole clips (a segment longer than every clip), so the
views draw nothing at random and every split of the batch sees the same inputs. CLAP's
batch repeats a caption within a rank and across the ranks (rows with one caption are
positives of each other, wherever they are).
"""

from __future__ import annotations

import copy

import pytest
import torch

from contrastkit import distributed as dist
from contrastkit.data.audio import AudioBatch
from contrastkit.encoders.audio import AudioTransformer
from contrastkit.encoders.char_text import CharTextEncoder
from contrastkit.recipes.clap import CLAP, CLAPConfig
from contrastkit.recipes.cola import COLA, COLAConfig
from contrastkit.train import grad_cache_step

from ._harness import WORLD, check_step_matches_one_process, spawn

F64 = torch.float64
LENGTHS = torch.tensor([12, 7, 9, 12, 5, 11, 8, 10])
WORDS = ["yes", "no", "stop", "yes", "go", "left", "no", "up"]  # "yes", "no" on both ranks


def _audio() -> AudioBatch:
    g = torch.Generator().manual_seed(3)
    values = torch.randn(8, 12, 6, generator=g, dtype=F64)
    values = values * (torch.arange(12)[None, :, None] < LENGTHS[:, None, None])
    return AudioBatch(values, LENGTHS.clone(), 10.0)


def _encoder() -> AudioTransformer:
    return AudioTransformer(
        n_features=6, dim=8, layers=1, heads=2, ff_mult=2, dropout=0.0, patch_frames=2
    )


def _cola(**overrides) -> COLA:
    torch.manual_seed(0)
    cfg = COLAConfig(segment_seconds=5.0, embed_dim=6, **overrides)
    return COLA(_encoder(), cfg).to(F64)


def _clap(**overrides) -> CLAP:
    torch.manual_seed(0)
    text = CharTextEncoder(char_dim=4, width=8, blocks=1, dropout=0.0, out_dim=5)
    return CLAP(_encoder(), text, CLAPConfig(embed_dim=6, **overrides)).to(F64)


def _batch(rows: torch.Tensor | None = None) -> dict:
    rows = torch.arange(8) if rows is None else rows
    caption_ids = torch.tensor([0, 1, 2, 0, 3, 4, 1, 5])
    return {
        "audio": _audio().select(rows),
        "indices": rows,
        "texts": [WORDS[i] for i in rows.tolist()],
        "caption_ids": caption_ids[rows],
    }


RECIPES = {
    "cola_bilinear": lambda: _cola(),
    "cola_cosine_symmetric": lambda: _cola(similarity="cosine", symmetric=True),
    "clap": lambda: _clap(),
    "clap_fixed_temperature": lambda: _clap(learn_temperature=False, temperature=0.2),
}


def _grads(recipe) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in recipe.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", sorted(RECIPES))
@pytest.mark.parametrize("chunk", [1, 3, 8])
def test_grad_cache_equals_the_plain_step(name, chunk):
    recipe = RECIPES[name]()
    twin = copy.deepcopy(recipe)
    plain = recipe.step(_batch())
    plain.loss.backward()
    cached = grad_cache_step(twin, _batch(), chunk)
    torch.testing.assert_close(cached.loss, plain.loss.detach(), atol=1e-8, rtol=0)
    expected, actual = _grads(recipe), _grads(twin)
    assert set(actual) == set(expected) and len(expected) >= 10
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], atol=1e-8, rtol=0, msg=key)


def test_padding_does_not_change_the_loss():
    """The same clips padded to a longer T give the same loss and gradients."""
    recipe = _cola()
    batch = _batch()
    longer = dict(batch)
    audio = batch["audio"]
    pad = audio.values.new_zeros(8, 5, 6)
    longer["audio"] = audio.with_values(torch.cat([audio.values, pad], dim=1))
    a = recipe.step(batch).loss
    b = recipe.step(longer).loss
    torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def _two_process_case() -> None:
    n = 8 // WORLD
    mine = torch.arange(n * dist.rank(), n * dist.rank() + n)
    for name in sorted(RECIPES):
        for chunk in (0, 3):
            check_step_matches_one_process(RECIPES[name](), _batch(), _batch(mine), chunk, name)


def test_two_processes_equal_one():
    spawn(_two_process_case)
