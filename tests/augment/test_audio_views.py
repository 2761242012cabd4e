"""Audio views checked by hand on synthetic tones, impulses and ramps: shifts move an impulse
by the drawn offset, resampling moves a tone's FFT peak by the requested ratio, noise reaches
the requested SNR per clip, gains change the level by the requested dB, crops are slices of the
source, SpecAugment masks stay inside the valid frames, log-mixup-exp, the resize crop; and for
every view: seeds, padding, lengths, dtypes and the speed of the "speech" preset."""

from __future__ import annotations

import doctest
import math
import time

import pytest
import torch

import contrastkit.augment.audio as audio_module
from contrastkit.augment.audio import (
    AUDIO_VIEW_PRESETS,
    AddNoise,
    Compose,
    Gain,
    Mixup,
    PitchShift,
    RandomCrop,
    RandomResizeCrop,
    SpecAugment,
    TempoStretch,
    TimeShift,
    TimeStretch,
    add_noise,
    audio_views,
    mix,
    noise_like,
    random_segments,
    spec_augment_masks,
    speed_perturb,
    tempo_stretch,
    time_shift,
    time_stretch,
)
from contrastkit.data.audio import AudioBatch

SR = 16000


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tones(
    freq: float = 440.0, lengths=(16000, 12000, 9000), dtype=torch.float64, total=None
) -> AudioBatch:
    clips = [torch.sin(2 * math.pi * freq * torch.arange(n, dtype=dtype) / SR) for n in lengths]
    return AudioBatch.from_clips(clips, sample_rate=SR, length=total)


def waves(lengths=(800, 500, 300), seed: int = 0, dtype=torch.float32) -> AudioBatch:
    g = gen(seed)
    return AudioBatch.from_clips([torch.randn(n, generator=g, dtype=dtype) for n in lengths], SR)


def frames(lengths=(40, 25, 10), bins: int = 16, seed: int = 0, dtype=torch.float32) -> AudioBatch:
    g = gen(seed)
    clips = [torch.randn(n, bins, generator=g, dtype=dtype) for n in lengths]
    return AudioBatch.from_clips(clips, sample_rate=100)


def peak_hz(x: torch.Tensor, sr: float = SR) -> float:
    window = torch.hann_window(x.shape[0], dtype=x.dtype)
    spec = torch.fft.rfft(x * window).abs()
    k = int(spec.argmax())
    if 0 < k < spec.shape[0] - 1:  # parabolic interpolation of the log magnitude
        a, b, c = (float(v) for v in spec[k - 1 : k + 2].log())
        k = k + 0.5 * (a - c) / (a - 2 * b + c)
    return k * sr / x.shape[0]


def padding_is_zero(b: AudioBatch) -> bool:
    return bool((b.values[~b.mask()] == 0).all())


# ---------------------------------------------------------------- docstrings


def test_docstring_examples_run():
    result = doctest.testmod(
        audio_module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 20 and result.failed == 0


# ---------------------------------------------------------------- crop


def test_random_crop_segments_lie_inside_the_clip_and_equal_the_source():
    b = AudioBatch.from_clips([torch.arange(100.0), torch.arange(60.0), torch.arange(20.0)], 1)
    view = RandomCrop(30)
    for seed in range(20):
        starts = view.sample(b, gen(seed))
        out = view(b, gen(seed))
        assert out.values.shape == (3, 30)
        assert out.lengths.tolist() == [30, 30, 20]  # the short clip is kept whole
        for i in range(3):
            n = int(out.lengths[i])
            s = int(starts[i])
            assert 0 <= s and s + n <= int(b.lengths[i])
            assert torch.equal(out.values[i, :n], b.values[i, s : s + n])
        assert padding_is_zero(out)
    # every start is reachable: the first clip's starts cover 0..70 over many seeds
    seen = {int(view.sample(b, gen(s))[0]) for s in range(2000)}
    assert min(seen) == 0 and max(seen) == 70


def test_random_crop_on_frames_and_seconds():
    f = frames((40, 25, 10))
    out = RandomCrop(seconds=0.2)(f, gen(1))  # 100 frames/s → 20 frames
    assert out.values.shape == (3, 20, 16) and out.lengths.tolist() == [20, 20, 10]
    assert torch.equal(out.values[2, :10], f.values[2, :10])
    with pytest.raises(ValueError, match="exactly one"):
        RandomCrop()


def test_random_segments_are_independent_crops_of_each_clip():
    b = AudioBatch.from_clips([torch.arange(1000.0), torch.arange(500.0)], 1)
    segs = random_segments(b, 50, n=3, generator=gen(0))
    assert len(segs) == 3
    for s in segs:
        assert s.values.shape == (2, 50)
        assert bool((s.values[:, 1:] - s.values[:, :-1] == 1).all())  # contiguous slices
    assert len({int(s.values[0, 0]) for s in segs}) > 1


# ---------------------------------------------------------------- time shift


def test_time_shift_roll_moves_an_impulse_by_the_drawn_offset():
    lengths = [100, 80, 50]
    x = torch.zeros(3, 100)
    x[torch.arange(3), torch.tensor([10, 40, 45])] = 1.0
    b = AudioBatch(x, torch.tensor(lengths), SR)
    view = TimeShift(0.3, mode="roll")
    for seed in range(10):
        k = view.sample(b, gen(seed))
        assert bool((k.abs() <= (0.3 * torch.tensor(lengths)).round()).all())
        out = view(b, gen(seed))
        pos = out.values.argmax(dim=1)
        expect = (torch.tensor([10, 40, 45]) + k) % torch.tensor(lengths)
        assert torch.equal(pos, expect)
        assert padding_is_zero(out) and out.values.sum(dim=1).tolist() == [1.0, 1.0, 1.0]


def test_time_shift_zero_mode_fills_with_zeros_and_cross_correlation_finds_the_offset():
    g = gen(3)
    b = AudioBatch.from_clips([torch.randn(400, generator=g), torch.randn(300, generator=g)], SR)
    view = TimeShift(0.2, mode="zero")
    k = view.sample(b, gen(7))
    out = view(b, gen(7))
    for i in range(2):
        n = int(b.lengths[i])
        src, dst = b.values[i, :n], out.values[i, :n]
        corr = [float((dst * torch.roll(src, s)).sum()) for s in range(-n // 4, n // 4 + 1)]
        assert int(torch.tensor(corr).argmax()) - n // 4 == int(k[i])
    assert padding_is_zero(out)
    direct = time_shift(b, torch.tensor([5, -5]), mode="zero")
    assert bool((direct.values[0, :5] == 0).all()) and bool((direct.values[1, 295:300] == 0).all())


# ---------------------------------------------------------------- gain


def test_gain_changes_the_level_by_the_requested_db():
    b = tones()
    view = Gain(-6, 6)
    g = view.sample(b, gen(0))
    out = view(b, gen(0))
    m = b.mask()
    rms_in = (b.values.square() * m).sum(1).sqrt()
    rms_out = (out.values.square() * m).sum(1).sqrt()
    assert torch.allclose(20 * torch.log10(rms_out / rms_in), g, atol=1e-9)
    assert padding_is_zero(out)


def test_gain_on_log_mel_in_ln_and_db():
    f = frames(dtype=torch.float64)
    g = Gain(-6, 6, domain="ln").sample(f, gen(2))
    out = Gain(-6, 6, domain="ln")(f, gen(2))
    m = f.mask()
    delta = (out.values - f.values)[m]  # (valid frames, F)
    expected = (g * math.log(10) / 10).repeat_interleave(f.lengths)
    assert torch.allclose(delta, expected[:, None].expand_as(delta))
    # a natural-log power gain is the power ratio 10^(g/10)
    ratio = (out.values[0, 0] - f.values[0, 0]).exp()
    assert torch.allclose(ratio, 10 ** (g[0] / 10))
    out_db = Gain(-6, 6, domain="db")(f, gen(2))
    assert torch.allclose((out_db.values - f.values)[m], g.repeat_interleave(f.lengths)[:, None])
    assert padding_is_zero(out) and padding_is_zero(out_db)


# ---------------------------------------------------------------- noise


@pytest.mark.parametrize("noise", ["white", "pink", "bank"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_add_noise_reaches_the_requested_snr_per_clip(noise, dtype):
    b = tones(lengths=(16000, 7000, 2500, 900), dtype=dtype)
    kind = torch.randn(3, 1000, generator=gen(5)) if noise == "bank" else noise
    view = AddNoise((5, 20), noise=kind)
    snr = view.sample(b, gen(1))
    out = view(b, gen(1))
    m = b.mask()
    n = out.values - b.values
    assert bool((n[~m] == 0).all())
    measured = 10 * torch.log10((b.values.square() * m).sum(1) / (n.square() * m).sum(1))
    assert (measured.double() - snr.double()).abs().max() < 0.01
    assert out.values.dtype == dtype and padding_is_zero(out)


def test_noise_bank_is_cropped_at_random_offsets_and_tiled():
    bank = torch.arange(10.0)[None]  # one short clip: tiled
    b = AudioBatch(torch.ones(4, 25), torch.tensor([25, 25, 20, 5]), SR)
    n = noise_like(b, bank, gen(0))
    valid = b.mask()
    for i in range(4):
        row = n[i][valid[i]]
        assert torch.equal(row, (row[0] + torch.arange(row.shape[0])) % 10)
    starts = {float(noise_like(b, bank, gen(s))[0, 0]) for s in range(30)}
    assert len(starts) > 5  # random offsets
    two = noise_like(b, torch.stack([torch.zeros(10), torch.ones(10)]), gen(0))
    rows = {
        float(noise_like(b, torch.stack([torch.zeros(10), torch.ones(10)]), gen(s))[0, 0])
        for s in range(30)
    }
    assert rows == {0.0, 1.0} and two.shape == (4, 25)  # random bank rows
    assert bool((n[~valid] == 0).all())


def test_add_noise_direct_and_errors():
    b = AudioBatch(torch.ones(1, 4), torch.tensor([4]), SR)
    out = add_noise(b, torch.tensor([[1.0, -1.0, 1.0, -1.0]]), torch.tensor([0.0]))
    assert torch.allclose(out.values, torch.tensor([[2.0, 0.0, 2.0, 0.0]]))
    with pytest.raises(ValueError, match="waveforms"):
        AddNoise()(frames())
    with pytest.raises(ValueError, match="noise must be"):
        AddNoise(noise="brown")


# ---------------------------------------------------------------- pitch shift


@pytest.mark.parametrize("semitones", [12.0, -5.0, 3.5])
def test_pitch_shift_moves_the_fft_peak_by_the_ratio(semitones):
    b = tones(440.0, lengths=(16000, 16000))
    out = PitchShift((semitones, semitones))(b, gen(0))
    r = 2 ** (semitones / 12)
    for i in range(2):
        n = int(out.lengths[i])
        assert n == min(16000, math.floor(15999 / r) + 1)
        f = peak_hz(out.values[i, :n])
        assert abs(f / (440.0 * r) - 1) < 0.01
    assert padding_is_zero(out)


def test_speed_perturb_lengths_and_interpolation():
    b = AudioBatch.from_clips([torch.arange(10.0), torch.arange(7.0)], 1)
    out = speed_perturb(b, torch.tensor([2.0, 0.5]))
    assert out.lengths.tolist() == [5, 10]  # min(T, floor((len-1)/r)+1)
    assert out.values[0, :5].tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert out.values[1, :10].tolist() == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5]
    with pytest.raises(ValueError, match="TimeStretch"):
        PitchShift()(frames())


def test_pitch_shift_antialias_removes_what_would_alias():
    # 7 kHz tone shifted up an octave would alias (14 kHz > 8 kHz): the low-pass removes it
    b = tones(7000.0, lengths=(16000,))
    aliased = PitchShift((12, 12))(b).values[0, :8000]
    clean = PitchShift((12, 12), antialias=True)(b).values[0, :8000]
    assert aliased.square().mean() > 0.1 and clean.square().mean() < 1e-3


# ---------------------------------------------------------------- tempo stretch (phase vocoder)


@pytest.mark.parametrize("rate", [0.8, 1.25, 2.0])
def test_tempo_stretch_keeps_the_pitch_and_scales_the_length(rate):
    b = tones(440.0, lengths=(16000, 12000), total=20000)
    out = tempo_stretch(b, torch.tensor([rate, rate]))
    for i, n0 in enumerate((16000, 12000)):
        n = int(out.lengths[i])
        assert n == min(20000, round(n0 / rate))
        assert abs(peak_hz(out.values[i, :n]) / 440.0 - 1) < 0.01  # pitch unchanged
        x = out.values[i, 1024 : n - 1024]  # the level, away from the ends: a phase
        # vocoder's phasiness costs a pure tone up to ~10% at rates below 1 (librosa too)
        assert abs(float(x.square().mean().sqrt()) / math.sqrt(0.5) - 1) < 0.12
    assert padding_is_zero(out)


@pytest.mark.parametrize("rate", [0.8, 0.999, 1.25, 1.7])
def test_tempo_stretch_equals_librosa_away_from_the_clip_end(rate):
    import librosa  # a test dependency (the front end is checked against it too)

    t = torch.arange(16000, dtype=torch.float64) / SR
    noise = torch.randn(16000, generator=gen(0), dtype=torch.float64)
    x = torch.sin(2 * math.pi * (200 * t + 400 * t**2)) + 0.3 * noise
    out = tempo_stretch(AudioBatch.from_clips([x], SR, length=22000), torch.tensor([rate]))
    ref = torch.from_numpy(
        librosa.effects.time_stretch(x.numpy(), rate=rate, n_fft=512, hop_length=128)
    )
    n = int(out.lengths[0])
    assert n == len(ref)
    # the same algorithm; only the last frames differ (librosa reads zero frames past the end)
    assert (out.values[0, : n - 384] - ref[: n - 384]).abs().max() < 1e-5


def test_tempo_stretch_rate_one_reconstructs_and_a_chirp_runs_faster():
    t = torch.arange(16000) / SR
    chirp = torch.sin(2 * math.pi * (200 * t + 400 * t**2))  # 200 → 1000 Hz over 1 s
    b = AudioBatch.from_clips([chirp], SR)
    same = tempo_stretch(b, torch.tensor([1.0]))
    assert same.lengths.tolist() == [16000]
    assert (same.values[0, 512:-512] - chirp[512:-512]).abs().max() < 1e-3
    fast = tempo_stretch(b, torch.tensor([2.0]))
    assert fast.lengths.tolist() == [8000]
    # at half the time the instantaneous frequency is where the original had it at the end
    assert abs(peak_hz(fast.values[0, 7000:8000]) / peak_hz(chirp[15000:16000]) - 1) < 0.05
    with pytest.raises(ValueError, match="TimeStretch"):
        tempo_stretch(frames(), torch.ones(4))
    with pytest.raises(ValueError, match="> 0"):
        tempo_stretch(b, torch.tensor([0.0]))
    with pytest.raises(ValueError, match="one rate per clip"):
        tempo_stretch(b, torch.ones(3))


def test_tempo_stretch_view_draws_log_uniform_rates():
    b = tones(440.0, lengths=(16000,) * 64)
    view = TempoStretch((0.8, 1.25))
    rates = view.sample(b, gen(0))
    assert bool(((rates >= 0.8) & (rates <= 1.25)).all())
    out = view(b, gen(0))
    assert torch.equal(out.lengths, torch.round(16000 / rates).long().clamp_max(16000))
    with pytest.raises(ValueError, match="TimeStretch"):
        view(frames())


# ---------------------------------------------------------------- time stretch


def test_time_stretch_halves_and_doubles_a_ramp():
    ramp = torch.arange(40.0)[:, None].expand(40, 3)
    f = AudioBatch.from_clips([ramp, ramp], 100, length=100)
    out = time_stretch(f, torch.tensor([2.0, 0.5]))
    assert out.lengths.tolist() == [20, 80]
    fast = out.values[0, :20, 0]
    assert torch.allclose(fast[1:] - fast[:-1], torch.full((19,), 2.0))
    slow = out.values[1, 1:79, 0]
    assert torch.allclose(slow[1:] - slow[:-1], torch.full((77,), 0.5))
    assert torch.equal(out.values[..., 0], out.values[..., 2])  # per-frame spectrum unchanged
    assert padding_is_zero(out)
    capped = time_stretch(AudioBatch.from_clips([ramp], 100), torch.tensor([0.5]))
    assert capped.lengths.tolist() == [40]  # capped at T


def test_time_stretch_view_draws_rates_and_refuses_waveforms():
    f = frames()
    view = TimeStretch((0.8, 1.25))
    rates = view.sample(f, gen(0))
    out = view(f, gen(0))
    expect = torch.round(f.lengths.double() / rates).long().clamp(1, 40)
    assert torch.equal(out.lengths, expect)
    with pytest.raises(ValueError, match="PitchShift"):
        view(waves())


# ---------------------------------------------------------------- SpecAugment


def runs(mask: torch.Tensor) -> list[tuple[int, int]]:
    out, start = [], None
    for i, v in enumerate([*mask.tolist(), False]):
        if v and start is None:
            start = i
        if not v and start is not None:
            out.append((start, i - start))
            start = None
    return out


def test_spec_augment_masks_count_width_and_never_touch_padding():
    lengths = torch.tensor([100, 60, 30, 0])
    widths_t, widths_f = [], []
    for seed in range(200):
        tm, fm = spec_augment_masks(lengths, 100, 32, 1, 0.2, 1, 8, gen(seed))
        for i in range(4):
            assert not bool(tm[i, int(lengths[i]) :].any())
            r = runs(tm[i])
            assert len(r) <= 1
            if r:
                widths_t.append(r[0][1] / int(lengths[i]))
                assert r[0][1] <= math.floor(0.2 * int(lengths[i]))
            rf = runs(fm[i])
            assert len(rf) <= 1 and all(w <= 8 for _, w in rf)
            widths_f += [w for _, w in rf]
    assert max(widths_t) == pytest.approx(0.2) and max(widths_f) == 8
    tm, fm = spec_augment_masks(lengths, 100, 32, 3, 0.1, 2, 4, gen(0))
    assert bool((tm.sum(1) <= 3 * (0.1 * lengths).floor()).all())
    assert bool((fm.sum(1) <= 8).all())


@pytest.mark.parametrize("fill", ["zero", "mean"])
def test_spec_augment_applies_the_masks_on_valid_frames_only(fill):
    f = AudioBatch.from_clips([torch.full((50, 16), 3.0), torch.full((20, 16), 3.0)], 100)
    view = SpecAugment(2, 0.2, 2, 4, fill=fill)
    tm, fm = view.sample(f, gen(4))
    out = view(f, gen(4))
    m = (tm[:, :, None] | fm[:, None, :]) & f.mask()[:, :, None]
    value = 0.0 if fill == "zero" else 3.0
    assert bool((out.values[m] == value).all())
    assert bool((out.values[~m & f.mask()[:, :, None]] == 3.0).all())
    assert padding_is_zero(out) and out.lengths.tolist() == [50, 20]
    with pytest.raises(ValueError, match="frame features"):
        view(waves())


# ---------------------------------------------------------------- mixup


def test_mixup_ratio_zero_is_identity():
    for b in (frames(), waves()):
        out = Mixup(0.0)(b, gen(0))
        assert torch.equal(out.values, b.values)


def test_mixup_log_mixup_exp_formula_holds_with_batch_partners():
    f = frames((30, 30, 30), dtype=torch.float64)
    g = gen(3)
    lam = torch.rand(3, generator=g, dtype=torch.float64) * 0.4
    step = torch.randint(1, 3, (3,), generator=g)
    partner = (torch.arange(3) + step) % 3
    out = Mixup(0.4)(f, gen(3))
    x, y = f.values, f.values[partner]
    lam_ = lam[:, None, None]
    assert torch.allclose(out.values, torch.log((1 - lam_) * x.exp() + lam_ * y.exp()))
    assert bool((partner != torch.arange(3)).all())  # always another clip
    out_db = Mixup(0.4, domain="db")(f, gen(3))
    expect = 10 * torch.log10((1 - lam_) * 10 ** (x / 10) + lam_ * 10 ** (y / 10))
    assert torch.allclose(out_db.values, expect)
    w = waves((50, 50), dtype=torch.float64)
    out_w = Mixup(0.4, domain="ln")(w, gen(3))  # waveforms mix linearly whatever the domain
    g = gen(3)
    lam = torch.rand(2, generator=g, dtype=torch.float64) * 0.4
    expect_w = (1 - lam[:, None]) * w.values + lam[:, None] * w.values.flip(0)
    assert torch.allclose(out_w.values, expect_w)


def test_mix_function_linear_and_extremes():
    x, y = torch.randn(2, 5), torch.randn(2, 5)
    assert torch.equal(mix(x, y, torch.zeros(2)), x)
    assert torch.allclose(mix(x, y, torch.ones(2)), y)
    assert torch.allclose(mix(x, y, torch.full((2,), 0.25), "linear"), 0.75 * x + 0.25 * y)


def test_mixup_memory_is_a_fifo_and_partners_are_tiled_to_the_clip_length():
    view = Mixup(0.4, memory=3, domain="linear")
    first = AudioBatch.from_clips([torch.ones(6), torch.ones(6)], SR)
    out = view(first, gen(0))
    assert torch.equal(out.values, first.values) and view.memory_size == 2  # empty memory
    short = AudioBatch.from_clips([torch.tensor([2.0, 4.0])], SR)
    view(short, gen(0))
    assert view.memory_size == 3
    view(short, gen(0))
    assert view.memory_size == 3  # FIFO of 3
    probe = AudioBatch.from_clips([torch.zeros(6), torch.zeros(3)], SR)
    hits = set()
    for seed in range(20):
        v = Mixup(0.4, memory=3, domain="linear")
        v(short, gen(seed))  # memory: [2, 4]
        out = v(probe, gen(seed))
        lam = out.values[0, 0] / 2
        assert torch.allclose(out.values[0], lam * torch.tensor([2.0, 4.0, 2.0, 4.0, 2.0, 4.0]))
        assert out.lengths.tolist() == [6, 3] and padding_is_zero(out)
        hits.add(round(float(lam), 4))
    assert len(hits) > 1
    view.reset()
    assert view.memory_size == 0


# ---------------------------------------------------------------- random resize crop


def test_random_resize_crop_keeps_shape_padding_and_is_identity_at_scale_one():
    f = frames((40, 25, 10), dtype=torch.float64)
    ident = RandomResizeCrop((1.0, 1.0), (1.0, 1.0), (1.0, 1.0))(f, gen(0))
    assert torch.allclose(ident.values, f.values, atol=1e-12)
    out = RandomResizeCrop()(f, gen(0))
    assert out.values.shape == f.values.shape and torch.equal(out.lengths, f.lengths)
    assert padding_is_zero(out)
    assert not torch.allclose(out.values, f.values)
    with pytest.raises(ValueError, match="frame features"):
        RandomResizeCrop()(waves())


def test_random_resize_crop_zooms_a_time_ramp():
    # time_scale 0.5 with no virtual canvas: a crop of half the clip stretched to full length
    ramp = torch.arange(40.0, dtype=torch.float64)[:, None].expand(40, 4)
    f = AudioBatch.from_clips([ramp, ramp[:20]], 100)
    out = RandomResizeCrop((1.0, 1.0), (1.0, 1.0), (0.5, 0.5))(f, gen(0))
    for i, n in enumerate([40, 20]):
        v = out.values[i, 1 : n - 1, 0]
        assert torch.allclose(v[1:] - v[:-1], torch.full((n - 3,), 0.5, dtype=torch.float64))
        assert float(v.max()) <= n - 1 and float(v.min()) >= 0


# ---------------------------------------------------------------- every view


def all_views():
    bank = torch.randn(2, 300, generator=gen(9))
    return [
        ("wave", RandomCrop(200)),
        ("wave", TimeShift(0.3)),
        ("wave", TimeShift(0.3, mode="zero")),
        ("wave", Gain()),
        ("wave", AddNoise()),
        ("wave", AddNoise(noise="pink")),
        ("wave", AddNoise(noise=bank)),
        ("wave", PitchShift()),
        ("wave", TempoStretch()),
        ("wave", Mixup(0.4)),
        ("frames", RandomCrop(20)),
        ("frames", TimeShift(0.3)),
        ("frames", Gain()),
        ("frames", TimeStretch()),
        ("frames", SpecAugment()),
        ("frames", SpecAugment(fill="mean")),
        ("frames", Mixup(0.4)),
        ("frames", RandomResizeCrop()),
        ("wave", audio_views("speech")),
        ("wave", audio_views("speech_voices")),
        ("frames", audio_views("spec")),
        ("frames", audio_views("byol_a", mixup={"memory": 0})),
        ("wave", audio_views("cola", random_crop={"length": 200})),
    ]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_view_is_seeded_keeps_dtype_padding_and_lengths(dtype):
    for kind, view in all_views():
        b = waves(dtype=dtype) if kind == "wave" else frames(dtype=dtype)
        a1, a2, c = view(b, gen(1)), view(b, gen(1)), view(b, gen(2))
        assert torch.equal(a1.values, a2.values) and torch.equal(a1.lengths, a2.lengths), view
        assert not torch.equal(a1.values, c.values), view
        assert a1.values.dtype == dtype, view
        assert a1.lengths.dtype == torch.int64, view
        assert bool((a1.lengths <= a1.values.shape[1]).all()), view
        assert bool((a1.lengths >= 0).all()), view
        assert padding_is_zero(a1), view
        assert bool(torch.isfinite(a1.values).all()), view
        assert a1.sample_rate == b.sample_rate


def test_presets_and_overrides():
    assert set(AUDIO_VIEW_PRESETS) == {
        "none", "cola", "byol_a", "speech", "speech_wide", "speech_voices", "spec", "mfcc",
        "masks",
    }  # fmt: skip
    (masks,) = audio_views("masks").views
    assert isinstance(masks, SpecAugment) and masks.fill == "mean"
    assert [type(v).__name__ for v in audio_views("speech_voices")] == [
        "PitchShift", "TempoStretch", "TimeShift", "Gain", "AddNoise"
    ]  # fmt: skip
    assert audio_views("speech_wide").views[0].semitones == (-4.0, 4.0)
    assert [type(v).__name__ for v in audio_views("mfcc")] == ["TimeStretch", "SpecAugment"]
    b = waves()
    assert torch.equal(audio_views("none")(b).values, b.values)
    cola = audio_views("cola")
    assert cola(b, gen(0)).values.shape[1] == min(round(0.96 * SR), 800)
    assert [type(v).__name__ for v in audio_views("byol_a")] == ["Mixup", "RandomResizeCrop"]
    assert audio_views("byol_a").views[0].memory == 2048
    speech = audio_views("speech", add_noise={"snr_db": (0, 5)}, pitch_shift=None)
    assert [type(v).__name__ for v in speech] == ["TimeShift", "Gain", "AddNoise"]
    assert speech.views[2].snr_db == (0.0, 5.0)
    spec = audio_views("spec", random_crop={"length": 16})
    assert isinstance(spec.views[0], RandomCrop) and spec.views[0].length == 16
    assert isinstance(Compose([]), Compose)
    with pytest.raises(ValueError, match="valid presets"):
        audio_views("imagenet")
    with pytest.raises(ValueError, match="unknown override"):
        audio_views("speech", reverb={})
    with pytest.raises(ValueError, match="unknown override"):
        audio_views("cola", domain="db")
    byol = audio_views("byol_a", domain="db", ratio=0.2)
    assert byol.views[0].domain == "db" and byol.views[0].ratio == 0.2
    spec_db = audio_views("spec", domain="db", gain={"min_db": -1})
    assert spec_db.views[2].domain == "db" and spec_db.views[2].min_db == -1


def test_speech_preset_on_256_one_second_clips_is_fast():
    b = AudioBatch(torch.randn(256, SR, generator=gen(0)), torch.full((256,), SR), SR)
    views = audio_views("speech")
    views(b, gen(0))  # warm up
    start = time.perf_counter()
    out = views(b, gen(1))
    elapsed = time.perf_counter() - start
    assert out.values.shape == (256, SR) and padding_is_zero(out)
    assert elapsed < 1.0, f"speech preset took {elapsed:.2f} s for 256 clips"


def test_views_run_on_the_batch_device():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    b = waves().to(device)
    g = torch.Generator(device=device).manual_seed(0)
    out = audio_views("speech")(b, g)
    assert out.values.device.type == device and out.lengths.device.type == device
    out = audio_views("speech_voices")(b, g)
    assert out.values.device.type == device and padding_is_zero(out)
    # the phase vocoder on the device = on the CPU (on tones: in white noise every bin's
    # accumulated phase follows rounding noise, on any device)
    rates = torch.tensor([0.8, 1.25, 1.6])
    here = tempo_stretch(tones().to(device), rates.to(device))
    cpu = tempo_stretch(tones(), rates)
    assert torch.equal(here.lengths.cpu(), cpu.lengths)
    assert (here.values.cpu() - cpu.values).abs().max() < 1e-4
    f = frames().to(device)
    out = Compose([TimeStretch(), SpecAugment(), Mixup(0.4), RandomResizeCrop()])(f, g)
    assert out.values.device.type == device
