"""Audio encoders (AudioCNN, AudioTransformer) and the character-level text encoder: shapes on
variable-length batches, padding invariance, short clips, gradients, float64, rebuilding from
``config``, the log-mel front-end, bf16 autocast and the errors."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from contrastkit.data.audio import AudioBatch
from contrastkit.encoders.audio import AudioCNN, AudioTransformer, audio_cnn, audio_transformer
from contrastkit.encoders.char_text import CHARS, CharTextEncoder, char_text
from contrastkit.encoders.text import TextEncoder

F = 16  # mel bins in the small test encoders


def small_cnn(**kw) -> AudioCNN:
    cfg = {"n_features": F, "channels": (4, 6, 8), "hidden": 24, "dropout": 0.3}
    return AudioCNN(**{**cfg, **kw})


def small_vit(**kw) -> AudioTransformer:
    cfg = {"n_features": F, "dim": 16, "layers": 2, "heads": 2, "patch_frames": 3}
    cfg["max_frames"] = 256
    return AudioTransformer(**{**cfg, **kw})


BUILDERS = {
    "cnn": small_cnn,
    "cnn_mean": lambda **kw: small_cnn(pooling="mean", **kw),
    "vit": small_vit,
    "vit_cls": lambda **kw: small_vit(pooling="cls", out_dim=8, **kw),
}


def clips(lengths, seed: int = 0, f: int = F) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, f, generator=g) for n in lengths]


def batch_of(lengths, seed: int = 0, length: int | None = None) -> AudioBatch:
    return AudioBatch.from_clips(clips(lengths, seed), sample_rate=100, length=length)


def randomise_norms(enc: torch.nn.Module) -> None:
    """Non-trivial BatchNorm running statistics, so eval-mode BN has a bias at the padding."""
    g = torch.Generator().manual_seed(1)
    for mod in enc.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.5)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
            with torch.no_grad():
                mod.bias.copy_(torch.randn(mod.num_features, generator=g))


@pytest.mark.parametrize("name", list(BUILDERS))
def test_shapes_on_variable_length_batches(name):
    enc = BUILDERS[name]().eval()
    lengths = [5, 17, 64, 200, 9, 1]
    out = enc(batch_of(lengths))
    assert out.shape == (len(lengths), enc.out_dim)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert enc(torch.randn(3, 40, F)).shape == (3, enc.out_dim)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_padding_does_not_change_the_embedding(name):
    enc = BUILDERS[name]()
    randomise_norms(enc)
    enc.eval()
    lengths = [5, 17, 64, 200, 9, 1, 33, 2]
    batch = batch_of(lengths)
    with torch.no_grad():
        together = enc(batch)
        extra = enc(batch_of(lengths, length=230))  # more padding than needed
        for i, c in enumerate(batch.clips()):
            alone = enc(c[None])
            torch.testing.assert_close(together[i : i + 1], alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(extra, together, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_very_short_clips(name):
    enc = BUILDERS[name]().eval()
    for n in (1, 2, 3, 7):  # shorter than 2 ** len(channels) = 8 frames
        out = enc(torch.randn(2, n, F))
        assert out.shape == (2, enc.out_dim) and torch.isfinite(out).all()
    # the same short clip alone and beside a long one
    short = batch_of([3, 50])
    with torch.no_grad():
        torch.testing.assert_close(
            enc(short)[0], enc(short.clips()[0][None])[0], atol=1e-5, rtol=1e-5
        )


@pytest.mark.parametrize("name", list(BUILDERS))
def test_gradients_reach_every_parameter(name):
    enc = BUILDERS[name]().train()
    enc(batch_of([5, 40, 13])).square().sum().backward()
    missing = [n for n, p in enc.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing


@pytest.mark.parametrize("name", list(BUILDERS))
def test_float64(name):
    enc = BUILDERS[name]().double().eval()
    batch = batch_of([4, 30])
    out = enc(batch)  # float32 values are cast to the encoder's dtype
    assert out.dtype == torch.float64 and out.shape == (2, enc.out_dim)
    whole = enc(batch.with_values(batch.values.double()))
    torch.testing.assert_close(whole, out)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_bf16_autocast(name):
    enc = BUILDERS[name]().eval()
    batch = batch_of([6, 31, 12])
    with torch.no_grad():
        ref = enc(batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = enc(batch)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    cos = torch.nn.functional.cosine_similarity(out, ref, dim=1)
    assert bool((cos > 0.95).all())


@pytest.mark.parametrize(("factory", "kw"), [(audio_cnn, {}), (audio_transformer, {})])
def test_rebuilt_from_config_gives_the_same_outputs(factory, kw):
    small = {"n_features": F, "feature_mean": [0.1] * F, "feature_std": 2.0}
    if factory is audio_cnn:
        small.update(channels=[4, 4], hidden=16)
    else:
        small.update(dim=16, layers=1, heads=2, out_dim=8, pooling="cls")
    enc = factory(**small, **kw)
    randomise_norms(enc)
    enc.eval()
    cfg = json.loads(json.dumps(enc.config))  # JSON-able
    twin = factory(**cfg).eval()
    assert twin.config == enc.config
    twin.load_state_dict(enc.state_dict())
    batch = batch_of([10, 25])
    with torch.no_grad():
        assert torch.equal(twin(batch), enc(batch))


def test_normalisation_is_applied():
    mean, std = [float(i) for i in range(F)], [2.0] * F
    enc = small_cnn(feature_mean=mean, feature_std=std).eval()
    plain = small_cnn().eval()
    plain.load_state_dict(enc.state_dict())
    x = torch.randn(2, 20, F)
    with torch.no_grad():
        torch.testing.assert_close(enc(x * 2.0 + torch.tensor(mean)), plain(x))


def test_batchnorm_statistics_ignore_padding():
    """Train-mode BN statistics come from the valid frames: padding changes nothing."""
    a, b = small_cnn(dropout=0.0), small_cnn(dropout=0.0)
    b.load_state_dict(a.state_dict())
    batch = batch_of([9, 30, 14])
    out_a = a.train()(batch)
    out_b = b.train()(batch_of([9, 30, 14], length=60))
    torch.testing.assert_close(out_a, out_b, atol=1e-5, rtol=1e-5)
    for ma, mb in zip(a.norms, b.norms):
        torch.testing.assert_close(ma.running_mean, mb.running_mean)
        torch.testing.assert_close(ma.running_var, mb.running_var)


def test_default_architectures():
    cnn = AudioCNN()
    assert cnn.out_dim == 2048
    assert cnn.fc[0].in_features == 64 * 8  # BYOL-A: 64 channels × 64 / 8 mel bins
    assert 5.2e6 < sum(p.numel() for p in cnn.parameters()) < 5.4e6  # BYOL-A's 5.3 M
    vit = AudioTransformer()
    assert vit.out_dim == 192 and vit.config["pooling"] == "mean"


def test_errors_name_the_problem():
    enc = small_cnn()
    with pytest.raises(
        ValueError,
        match="expected 16 mel bins, got 40 features per frame; build the encoder with n_features=40",
    ):
        enc(torch.randn(2, 10, 40))
    wave = AudioBatch.from_clips([torch.randn(800)], sample_rate=16000)
    with pytest.raises(ValueError, match="no frontend"):
        enc(wave)
    with pytest.raises(ValueError, match="waveforms need a frontend"):
        enc(torch.randn(2, 800))
    bad = AudioBatch(torch.randn(2, 10, F), torch.tensor([10, 0]), 100)
    with pytest.raises(ValueError, match="clip 1 has length 0"):
        enc(bad)
    with pytest.raises(ValueError, match="n_features ≥ 8"):
        AudioCNN(n_features=4)
    with pytest.raises(ValueError, match="feature_mean has 3 values"):
        small_cnn(feature_mean=[0.0] * 3)
    with pytest.raises(ValueError, match="max_frames"):
        small_vit(max_frames=20)(torch.randn(1, 30, F))
    with pytest.raises(TypeError, match="AudioBatch"):
        enc([torch.randn(10, F)])


# ---------------------------------------------------------------------------------------------
# the log-mel front-end (contrastkit.data.spectral.LogMel)
# ---------------------------------------------------------------------------------------------

needs_spectral = pytest.mark.skipif(
    importlib.util.find_spec("contrastkit.data.spectral") is None,
    reason="contrastkit.data.spectral (LogMel) is not there yet",
)


@needs_spectral
@pytest.mark.parametrize("cls", [AudioCNN, AudioTransformer])
def test_frontend_embeds_waveforms(cls):
    from contrastkit.data.spectral import LogMel

    front = {"sample_rate": 16000, "n_fft": 400, "hop_length": 160, "n_mels": F}
    front["f_max"] = 7800.0
    kw = {"channels": (4, 4), "hidden": 16} if cls is AudioCNN else {"dim": 16, "layers": 1}
    enc = cls(n_features=F, frontend=front, **kw).eval()
    g = torch.Generator().manual_seed(0)
    wave = AudioBatch.from_clips(
        [torch.randn(16000, generator=g), torch.randn(4000, generator=g)], sample_rate=16000
    )
    with torch.no_grad():
        out = enc(wave)
        feats = LogMel(**front)(wave)
        assert out.shape == (2, enc.out_dim) and torch.isfinite(out).all()
        torch.testing.assert_close(out, enc(feats))  # features pass straight through
        assert enc(torch.randn(2, 3200)).shape == (2, enc.out_dim)  # a plain waveform Tensor
        alone = enc(AudioBatch.from_clips([wave.clips()[1]], sample_rate=16000))
        torch.testing.assert_close(alone[0], out[1], atol=1e-4, rtol=1e-4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.isfinite(enc(wave)).all()
    twin = cls(**json.loads(json.dumps(enc.config))).eval()
    twin.load_state_dict(enc.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(twin(wave), out)
    with pytest.raises(ValueError, match="resample"):
        enc(AudioBatch(wave.values, wave.lengths, 8000))
    with pytest.raises(ValueError, match=f"n_features={F}"):
        cls(n_features=F + 8, frontend=front, **kw)


# ---------------------------------------------------------------------------------------------
# CharTextEncoder
# ---------------------------------------------------------------------------------------------


def small_char(**kw) -> CharTextEncoder:
    return CharTextEncoder(**{"width": 32, "blocks": 3, "out_dim": 16, **kw})


def test_char_tokenization():
    enc = small_char(max_length=10)
    assert isinstance(enc, TextEncoder) and enc.pad_id == 0
    ids = enc.tokenize(["Dog", "dog", "  DOG\t", "dóg", "d#g", ""])
    assert ids.dtype == torch.long and ids.shape == (6, 5)
    assert ids[0].tolist() == [enc.bos_id, 4 + CHARS.index("d"), 4 + 15, 4 + 7, enc.eos_id]
    assert ids[1].tolist() == ids[0].tolist() == ids[2].tolist() == ids[3].tolist()
    assert ids[4, 2] == enc.unk_id
    assert ids[5].tolist() == [enc.bos_id, enc.eos_id, 0, 0, 0]  # right-padded
    long = enc.tokenize(["abcdefghijklmnop"])[0]
    assert long.shape == (10,) and long[-1] == enc.eos_id and long[8] == 4 + CHARS.index("h")
    assert len(set(CHARS)) == len(CHARS) and enc.vocab_size == 4 + len(CHARS)
    with pytest.raises(TypeError, match="wrap it in a list"):
        enc.tokenize("dog")


def test_char_different_words_differ_and_padding_is_ignored():
    enc = small_char().eval()
    words = ["dog", "dot", "god", "dogs", "a dog barks loudly", "rain on a tin roof"]
    ids = enc.tokenize(words)
    with torch.no_grad():
        out = enc(ids)
        wider = enc(torch.cat([ids, torch.zeros(len(words), 7, dtype=torch.long)], 1))
        alone = torch.cat([enc(enc.tokenize([w])) for w in words])
    torch.testing.assert_close(out, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(wider, out, atol=1e-5, rtol=1e-5)
    dist = torch.cdist(out, out)
    assert bool((dist + torch.eye(len(words)) * 1e3 > 1e-3).all())


def test_char_encode_gradients_config_and_errors():
    enc = small_char(dropout=0.1)
    emb = enc.encode(["a dog barks", "rain", "unseenword"], batch_size=2, normalize=True)
    assert emb.shape == (3, 16) and enc.training
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
    enc(enc.tokenize(["a dog", "a cat meows"])).square().sum().backward()
    missing = [n for n, p in enc.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing
    twin = char_text(**json.loads(json.dumps(enc.config))).eval()
    twin.load_state_dict(enc.state_dict())
    ids = enc.tokenize(["hello there"])
    assert torch.equal(twin(ids), enc.eval()(ids))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert enc(ids).dtype == torch.float32
    assert enc.double()(ids).dtype == torch.float64
    with pytest.raises(ValueError, match="character ids must be in"):
        enc(torch.tensor([[2, 500, 3]]))
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        CharTextEncoder(kernel_size=4)


@pytest.mark.parametrize("mode", ["mean", "meanvar"])
@pytest.mark.parametrize("cls", [small_cnn, small_vit])
def test_clip_norm(mode, cls):
    """Per-clip normalisation: against a loop over each clip's valid frames, invariant to a
    per-clip offset (and for "meanvar" a per-clip positive scale), padding-invariant, saved
    in the config."""
    from contrastkit.encoders.audio import _clip_normalise, _lengths_mask

    lengths = [5, 17, 1, 40]
    b = batch_of(lengths)
    mask = _lengths_mask(b.lengths, b.values.shape[1])
    got = _clip_normalise(b.values.double(), mask, mode)
    for i, c in enumerate(b.clips()):
        want = c.double() - c.double().mean(0)
        if mode == "meanvar":
            want = want / want.pow(2).mean(0).sqrt().clamp_min(1e-2)
        torch.testing.assert_close(got[i, : lengths[i]], want)
        assert (got[i, lengths[i] :] == 0).all()
    enc = cls(clip_norm=mode).eval()
    assert enc.config["clip_norm"] == mode
    assert type(enc)(**enc.config).input.clip_norm == mode
    g = torch.Generator().manual_seed(3)
    offset = torch.randn(len(lengths), 1, F, generator=g)
    scale = torch.rand(len(lengths), 1, F, generator=g) + 0.5 if mode == "meanvar" else 1.0
    moved = AudioBatch(b.values * scale + offset, b.lengths, b.sample_rate)
    with torch.no_grad():
        base, shifted = enc(b), enc(moved)
        alone = torch.cat([enc(c[None]) for c in b.clips()])
    torch.testing.assert_close(shifted, base, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(alone, base, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="clip_norm"):
        cls(clip_norm="cmvn")
