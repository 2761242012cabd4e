"""CLAP recipe: waveform views, then views on the encoder's own log-mel frames."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from contrastkit.data.audio import AudioBatch
from contrastkit.data.spectral import LogMel
from contrastkit.encoders.char_text import CharTextEncoder
from contrastkit.recipes.clap import CLAP, CLAPConfig


class _Spy(nn.Module):
    """Mean-pooled frames → linear; records what it was given."""

    out_dim = 4

    def __init__(self, frontend: nn.Module | None) -> None:
        super().__init__()
        self.frontend = frontend
        self.lin = nn.Linear(16, 4)
        self.seen: list[AudioBatch] = []

    def forward(self, b: AudioBatch) -> torch.Tensor:
        self.seen.append(b)
        if b.is_wave:
            b = self.frontend(b)
        m = b.mask()[..., None].to(b.values.dtype)
        return self.lin((b.values * m).sum(1) / b.lengths[:, None])


def _batch() -> dict:
    g = torch.Generator().manual_seed(0)
    clips = [torch.randn(n, generator=g) for n in (4000, 3000, 2500, 4000)]
    return {
        "audio": AudioBatch.from_clips(clips, 16000),
        "texts": ["yes", "no", "yes", "stop"],
        "caption_ids": torch.tensor([0, 1, 0, 2]),
    }


def _recipe(frontend: nn.Module | None, **cfg) -> tuple[CLAP, _Spy]:
    spy = _Spy(frontend)
    return CLAP(spy, CharTextEncoder(out_dim=8), CLAPConfig(embed_dim=8, **cfg)), spy


def test_feature_views_mask_the_encoders_own_log_mel_frames():
    torch.manual_seed(0)
    frontend = LogMel(n_mels=16, n_fft=400)
    recipe, spy = _recipe(frontend, feature_views="masks")
    batch = _batch()
    out = recipe.step(batch)
    assert torch.isfinite(out.loss)
    (seen,) = spy.seen
    assert not seen.is_wave  # frames came in, made by the encoder's front end
    clean = frontend(batch["audio"])
    assert torch.equal(seen.lengths, clean.lengths)
    for i, n in enumerate(clean.lengths.tolist()):
        changed = seen.values[i, :n] != clean.values[i, :n]
        assert 0 < int(changed.sum()) < changed.numel()  # some cells masked, not all
        # a frequency mask fills whole bins (all valid frames) with the clip's mean
        mean = clean.values[i, :n].mean()
        whole_bins = changed.all(0)
        if bool(whole_bins.any()):
            assert torch.allclose(seen.values[i, :n][:, whole_bins], mean)
        assert bool((seen.values[i, n:] == 0).all())  # padding untouched
    spy.seen.clear()
    recipe.eval()
    recipe.embed_audio(batch["audio"])
    assert spy.seen[0].is_wave  # no views outside training


def test_feature_views_without_a_front_end_say_how_to_fix_it():
    recipe, _ = _recipe(None, feature_views="masks")
    with pytest.raises(ValueError, match="frontend=LogMel"):
        recipe.step(_batch())


def test_unknown_feature_view_preset_is_named():
    with pytest.raises(ValueError, match="unknown audio view preset 'maskz'"):
        _recipe(None, feature_views="maskz")
