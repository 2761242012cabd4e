"""The audio front end: mel filter banks, STFT power, dB, DCT, log-mel and MFCC against librosa,
resampling against scipy and the exact tone, frame counts, the LogMel/MFCC modules on padded
batches (same valid frames as a clip alone, zeros past them), config round trips, float64 and
errors."""

from __future__ import annotations

import json
import math

import librosa
import numpy as np
import pytest
import scipy.fft
import scipy.signal
import torch

from contrastkit.data import spectral as S
from contrastkit.data.audio import AudioBatch

# ------------------------------------------------------------------------------- helpers


def _chirp(sr: int, seconds: float = 0.5, seed: int = 0) -> np.ndarray:
    """A 200 Hz → ~3.2 kHz chirp plus white noise, float32."""
    t = np.arange(int(sr * seconds)) / sr
    rng = np.random.default_rng(seed)
    y = 0.5 * np.sin(2 * np.pi * (200 * t + 3000 * t**2)) + 0.05 * rng.standard_normal(t.size)
    return y.astype(np.float32)


def _snr_db(x: np.ndarray, ref: np.ndarray) -> float:
    return float(10 * np.log10((ref**2).sum() / ((x - ref) ** 2).sum()))


# ------------------------------------------------------------------------------- filterbank


@pytest.mark.parametrize("htk", [False, True])
@pytest.mark.parametrize("norm", ["slaney", None])
@pytest.mark.parametrize(
    ("n_fft", "n_mels", "sr", "fmin", "fmax"),
    [
        (512, 40, 16000, 0.0, None),
        (1024, 64, 16000, 60.0, 7800.0),
        (2048, 128, 22050, 0.0, None),
        (400, 80, 8000, 20.0, 3900.0),
    ],
)
def test_mel_filterbank_equals_librosa(htk, norm, n_fft, n_mels, sr, fmin, fmax):
    ref = librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm
    )
    fb = S.mel_filterbank(n_fft, n_mels, sr, fmin, fmax, htk=htk, norm=norm)
    assert fb.shape == (n_mels, n_fft // 2 + 1) and fb.dtype == torch.float32
    np.testing.assert_allclose(fb.numpy(), ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max())
    fb64 = S.mel_filterbank(n_fft, n_mels, sr, fmin, fmax, htk=htk, norm=norm, dtype=torch.float64)
    assert fb64.dtype == torch.float64
    np.testing.assert_allclose(fb64.numpy(), ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max())


def test_mel_scale_round_trip():
    f = torch.linspace(0, 11025, 200, dtype=torch.float64)
    for htk in (False, True):
        np.testing.assert_allclose(
            S.hz_to_mel(f, htk).numpy(), librosa.hz_to_mel(f.numpy(), htk=htk)
        )
        torch.testing.assert_close(S.mel_to_hz(S.hz_to_mel(f, htk), htk), f)


# ------------------------------------------------------------------------------- spectra


@pytest.mark.parametrize("win_length", [None, 400])
def test_stft_power_equals_librosa(win_length):
    y = _chirp(16000)
    ref = np.abs(librosa.stft(y, n_fft=512, hop_length=160, win_length=win_length)) ** 2
    got = S.stft_power(torch.from_numpy(y), n_fft=512, hop_length=160, win_length=win_length)
    assert got.shape == ref.shape == (257, 1 + y.size // 160)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-3, atol=1e-5 * ref.max())
    mag = S.stft_power(torch.from_numpy(y), n_fft=512, hop_length=160, power=1.0)
    torch.testing.assert_close(
        mag**2, S.stft_power(torch.from_numpy(y), 512, 160), rtol=1e-4, atol=1e-4
    )


def test_power_to_db_equals_librosa_per_clip():
    rng = np.random.default_rng(1)
    P = (rng.random((3, 2, 16, 20)) ** 8).astype(np.float64)  # wide dynamic range
    P[1, 0] *= 1e-6  # one quiet clip: its own floor, not the loud clips'
    got = S.power_to_db(torch.from_numpy(P))
    for i in range(3):
        for j in range(2):
            np.testing.assert_allclose(got[i, j].numpy(), librosa.power_to_db(P[i, j]), atol=1e-9)
    assert (got[1, 0] > got[1, 0].max() - 80.0 - 1e-9).all()
    np.testing.assert_allclose(
        S.power_to_db(torch.from_numpy(P), ref=2.0, amin=1e-5, top_db=None).numpy(),
        librosa.power_to_db(P, ref=2.0, amin=1e-5, top_db=None),
        atol=1e-9,
    )
    whole = S.power_to_db(torch.from_numpy(P), clip_dims=4).numpy()
    np.testing.assert_allclose(whole, librosa.power_to_db(P), atol=1e-9)


def test_dct_matrix_is_scipy_ortho_dct():
    x = np.random.default_rng(2).standard_normal((5, 40))
    D = S.dct_matrix(13, 40, dtype=torch.float64)
    assert D.shape == (40, 13)
    ref = scipy.fft.dct(x, type=2, norm="ortho", axis=-1)[:, :13]
    np.testing.assert_allclose((torch.from_numpy(x) @ D).numpy(), ref, atol=1e-12)


# ------------------------------------------------------------------------------- features


@pytest.mark.parametrize("sr", [16000, 22050])
@pytest.mark.parametrize(("dtype", "atol"), [(np.float32, 2e-4), (np.float64, 2e-6)])
def test_log_mel_db_equals_librosa(sr, dtype, atol):
    y = _chirp(sr).astype(dtype)
    mel = librosa.feature.melspectrogram(
        y=y, sr=sr, n_fft=1024, hop_length=160, n_mels=64, fmin=60.0, fmax=7800.0
    )
    got = S.log_mel(torch.from_numpy(y), sr, log="db")
    assert got.shape == (1 + y.size // 160, 64) and got.dtype == torch.from_numpy(y).dtype
    np.testing.assert_allclose(got.numpy(), librosa.power_to_db(mel).T, rtol=0, atol=atol)
    ln = S.log_mel(torch.from_numpy(y), sr, log="ln", eps=1e-6)
    np.testing.assert_allclose(ln.numpy(), np.log(mel + 1e-6).T, rtol=0, atol=50 * atol)


@pytest.mark.parametrize("sr", [16000, 22050])
@pytest.mark.parametrize(("dtype", "atol"), [(np.float32, 2e-4), (np.float64, 2e-6)])
def test_mfcc_equals_librosa(sr, dtype, atol):
    y = _chirp(sr).astype(dtype)
    ref = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, n_fft=2048, hop_length=512, n_mels=128)
    got = S.mfcc(torch.from_numpy(y), sr, n_mfcc=13)
    assert got.shape == (1 + y.size // 512, 13)
    np.testing.assert_allclose(got.numpy(), ref.T, rtol=0, atol=atol)
    module = S.MFCC(sample_rate=sr, n_mfcc=13)
    if dtype == np.float64:
        module = module.double()
    np.testing.assert_allclose(module(torch.from_numpy(y)).numpy(), ref.T, rtol=0, atol=atol)


def test_features_are_batched_over_leading_dims():
    y = torch.from_numpy(np.stack([_chirp(16000, 0.2, s) for s in range(6)])).reshape(2, 3, -1)
    batched = S.log_mel(y, 16000, log="db")
    assert batched.shape == (2, 3, 1 + y.shape[-1] // 160, 64)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(batched[i, j], S.log_mel(y[i, j], 16000, log="db"))
    m = S.mfcc(y, 16000)
    torch.testing.assert_close(m[1, 2], S.mfcc(y[1, 2], 16000))


# ------------------------------------------------------------------------------- frames


@pytest.mark.parametrize("center", [True, False])
def test_frame_lengths_match_the_stft(center):
    for n in (1024, 1100, 1599, 1600, 3000):
        frames = S.stft_power(torch.zeros(n), n_fft=1024, hop_length=160, center=center).shape[-1]
        assert int(S.frame_lengths(torch.tensor(n), 160, center, 1024)) == frames
    assert S.frame_lengths(torch.tensor([10, 1023]), 160, False, 1024).tolist() == [0, 0]
    with pytest.raises(ValueError, match="needs n_fft"):
        S.frame_lengths(torch.tensor([10]), 160, center=False)


# ------------------------------------------------------------------------------- resampling


def _tone(sr: int, n: int) -> np.ndarray:
    return np.sin(2 * np.pi * 440 * np.arange(n) / sr)


@pytest.mark.parametrize(("orig", "new", "n"), [(22050, 16000, 22050), (8000, 16000, 8000)])
def test_resample_tone_matches_scipy_and_the_exact_tone(orig, new, n):
    x = _tone(orig, n)
    y = S.resample(torch.from_numpy(x), orig, new).numpy()
    assert y.shape == (math.ceil(n * new / orig),)
    g = math.gcd(orig, new)
    ref = scipy.signal.resample_poly(x, new // g, orig // g)
    exact = _tone(new, y.size)
    inner = slice(200, -200)
    assert _snr_db(y[inner], exact[inner]) > 60
    assert _snr_db(y[inner], ref[inner]) > 50
    y32 = S.resample(torch.from_numpy(x).float(), orig, new)
    assert y32.dtype == torch.float32
    assert _snr_db(y32.numpy()[inner].astype(np.float64), exact[inner]) > 60


def test_resample_is_batched_and_lengths_are_right():
    x = torch.randn(2, 3, 1000, dtype=torch.float64)
    for orig, new in [(44100, 16000), (16000, 44100), (3, 2), (48000, 16000), (7, 11)]:
        y = S.resample(x, orig, new)
        n = S.resampled_length(1000, orig, new)
        assert y.shape == (2, 3, n) and n == math.ceil(1000 * new / orig)
        assert S.resampled_length(torch.tensor([1000]), orig, new).tolist() == [n]
        for i in range(2):
            for j in range(3):
                torch.testing.assert_close(y[i, j], S.resample(x[i, j], orig, new))
    assert S.resample(x, 16000, 16000) is x
    assert S.resample(x[..., :0], 44100, 16000).shape == (2, 3, 0)


def test_resample_batch_zeros_the_padding():
    b = AudioBatch.from_clips([torch.randn(4410), torch.randn(2000)], sample_rate=44100)
    r = S.resample_batch(b, 16000)
    assert r.sample_rate == 16000 and r.lengths.tolist() == [1600, 726]
    assert r.values.shape == (2, 1600) and bool((r.values[1, 726:] == 0).all())
    torch.testing.assert_close(r.values[1, :726], S.resample(b.values[1, :2000], 44100, 16000))


# ------------------------------------------------------------------------------- modules


@pytest.mark.parametrize(
    "make",
    [
        lambda: S.LogMel(),
        lambda: S.LogMel(log="db", n_fft=512, win_length=400, n_mels=40),
        lambda: S.MFCC(n_mfcc=20, hop_length=160),
    ],
)
def test_padded_batch_gives_each_clip_its_own_frames(make):
    m = make()
    clips = [torch.from_numpy(_chirp(16000, s, seed=k)) for k, s in enumerate((0.5, 0.23, 0.05))]
    clips[2] = clips[2] * 1e-3  # a quiet clip: its own dB floor
    batch = AudioBatch.from_clips(clips, sample_rate=16000)
    out = m(batch)
    assert isinstance(out, AudioBatch) and not out.is_wave
    assert out.sample_rate == 16000 / m.hop_length
    lengths = [1 + len(c) // m.hop_length for c in clips]
    assert out.lengths.tolist() == lengths
    assert out.values.shape == (3, max(lengths), m.out_features)
    for i, c in enumerate(clips):
        alone = m(c[None])[0]
        assert alone.shape == (lengths[i], m.out_features)
        torch.testing.assert_close(out.values[i, : lengths[i]], alone, rtol=1e-5, atol=1e-5)
        assert bool((out.values[i, lengths[i] :] == 0).all())


def test_module_matches_functional_and_config_round_trips():
    m = S.LogMel(sample_rate=22050, n_fft=2048, hop_length=441, n_mels=80, f_min=0.0, f_max=11025)
    x = torch.randn(2, 5000)
    ref = S.log_mel(x, 22050, n_fft=2048, hop_length=441, n_mels=80, f_min=0.0, f_max=11025)
    torch.testing.assert_close(m(x), ref)
    for module in (m, S.MFCC(sample_rate=8000, n_mfcc=10, n_mels=40, f_max=None, top_db=None)):
        cfg = json.loads(json.dumps(module.config))
        assert cfg == module.config
        again = type(module)(**cfg)
        assert again.config == module.config
        torch.testing.assert_close(again(x), module(x))
        assert module.state_dict() == {}  # the filterbank is a non-persistent buffer
    assert set(S.LogMel().config) == {
        "sample_rate", "n_fft", "win_length", "hop_length", "n_mels", "f_min", "f_max", "log",
        "eps",
    }  # fmt: skip
    assert S.MFCC(n_mfcc=7).out_features == 7 and S.LogMel(n_mels=40).out_features == 40


def test_float64_modules():
    clips = [torch.randn(3000, dtype=torch.float64), torch.randn(1000, dtype=torch.float64)]
    batch = AudioBatch.from_clips(clips, sample_rate=16000)
    for m in (S.LogMel(log="db"), S.MFCC()):
        out = m(batch)
        assert out.values.dtype == torch.float64
        ref = m(clips[1][None].float())[0].double()
        torch.testing.assert_close(out.values[1, : out.lengths[1]], ref, rtol=1e-3, atol=1e-3)
        assert m.double()(batch).values.dtype == torch.float64


def test_clear_errors():
    m = S.LogMel(sample_rate=16000)
    wrong_rate = AudioBatch.from_clips([torch.randn(100)], sample_rate=22050)
    with pytest.raises(ValueError, match=r"expects waveforms at 16000 Hz.*22050.*resample"):
        m(wrong_rate)
    frames = AudioBatch.from_clips([torch.randn(10, 64)], sample_rate=100)
    with pytest.raises(ValueError, match=r"frame features .* already"):
        m(frames)
    with pytest.raises(ValueError, match=r"frame features .* already"):
        S.MFCC()(frames)
    with pytest.raises(ValueError, match='log must be "ln"'):
        S.LogMel(log="log10")
    with pytest.raises(ValueError, match=r"float waveform.*x\.float\(\)"):
        S.resample(torch.ones(10, dtype=torch.int16), 8000, 16000)
    with pytest.raises(ValueError, match="whole number of Hz"):
        S.resample(torch.ones(10), 8000.5, 16000)
    with pytest.raises(ValueError, match='norm must be "slaney" or None'):
        S.mel_filterbank(512, 40, 16000, norm="l2")
    with pytest.raises(ValueError, match="top_db must be non-negative"):
        S.power_to_db(torch.ones(2, 2), top_db=-1.0)
    with pytest.raises(ValueError, match="n_mfcc <= n_mels"):
        S.dct_matrix(50, 40)
    with pytest.raises(ValueError, match="fewer than n_fft"):
        S.stft_power(torch.ones(100), n_fft=512, center=False)
    with pytest.raises(ValueError, match="resample_batch takes an AudioBatch of waveforms"):
        S.resample_batch(frames, 16000)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    x = torch.randn(2, 8000)
    batch = AudioBatch(x, torch.tensor([8000, 5000]), 16000)
    for m in (S.LogMel(log="db"), S.MFCC()):
        cpu = m(batch)
        gpu = m.to("cuda")(batch.to("cuda"))
        assert gpu.values.device.type == "cuda"
        torch.testing.assert_close(gpu.values.cpu(), cpu.values, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(
        S.resample(x.cuda(), 16000, 22050).cpu(), S.resample(x, 16000, 22050), rtol=1e-4, atol=1e-4
    )
