"""Audio views: batched, seeded augmentations of an :class:`~contrastkit.data.audio.AudioBatch`.

A batch holds waveforms ``values`` (N, T) or frame features ``values`` (N, T, F) (log-mel in
natural log or dB, MFCC), right-padded with zeros, with ``lengths`` (N,) valid samples/frames.
Every view draws its per-clip parameters in one go (no Python loop over clips), keeps the
padding at zero and the lengths right (≤ T), keeps the dtype (float32 or float64) and runs on
any device; every random draw takes an optional ``torch.Generator`` on the batch's device.

Each view is a small class, ``view(batch, generator=None) -> AudioBatch``; views with per-clip
parameters also have ``sample(batch, generator)`` (the parameters it would draw) and a
deterministic functional form that applies given parameters (:func:`time_shift`, :func:`gain`,
:func:`add_noise`, :func:`speed_perturb`, :func:`time_stretch`, :func:`crop`, ...), so the same
seed always gives the same view.

==========================  ==========  ====================================================
view                        input       what it does
==========================  ==========  ====================================================
:class:`RandomCrop`         both        a random segment of each clip (COLA's positives)
:class:`TimeShift`          both        circular or zero-filled shift inside the valid region
:class:`Gain`               both        a random level change in dB
:class:`AddNoise`           waveforms   white, pink or recorded noise at an exact SNR
:class:`PitchShift`         waveforms   resampling (speed perturbation: pitch and tempo)
:class:`TempoStretch`       waveforms   phase vocoder: tempo changes, pitch stays
:class:`TimeStretch`        features    frame sequence resampled in time, spectra unchanged
:class:`SpecAugment`        features    time and frequency masks
:class:`Mixup`              both        BYOL-A's log-mixup-exp with a batch or FIFO partner
:class:`RandomResizeCrop`   features    BYOL-A's random resize crop
==========================  ==========  ====================================================

:func:`audio_views` builds the presets ``"none"``, ``"cola"``, ``"byol_a"``, ``"speech"``,
``"speech_wide"``, ``"speech_voices"``, ``"spec"``, ``"mfcc"`` and ``"masks"``.

References:
    Saeed, Grangier & Zeghidour 2021, "Contrastive Learning of General-Purpose Audio
    Representations" (COLA, ICASSP): positives are two random segments of the same clip.
    Niizumi et al. 2021, "BYOL for Audio: Self-Supervised Learning for General-Purpose Audio
    Representation" (BYOL-A, IJCNN): Mixup (log-mixup-exp, a FIFO memory of past clips) and a
    random resize crop on log-mel spectrograms.
    Park et al. 2019, "SpecAugment: A Simple Data Augmentation Method for Automatic Speech
    Recognition" (Interspeech): time warping, time and frequency masks.
    Ko et al. 2015, "Audio Augmentation for Speech Recognition" (Interspeech): speed
    perturbation by resampling.

Example:
    >>> import torch
    >>> from contrastkit.data.audio import AudioBatch
    >>> b = AudioBatch.from_clips([torch.randn(16000), torch.randn(8000)], sample_rate=16000)
    >>> views = audio_views("speech")
    >>> out = views(b, generator=torch.Generator().manual_seed(0))
    >>> out.values.shape, bool((out.values[~out.mask()] == 0).all())
    (torch.Size([2, 16000]), True)
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.data.audio import AudioBatch

__all__ = [
    "AUDIO_VIEW_PRESETS",
    "AddNoise",
    "AudioView",
    "Compose",
    "Gain",
    "Mixup",
    "PitchShift",
    "RandomCrop",
    "RandomResizeCrop",
    "SpecAugment",
    "TempoStretch",
    "TimeShift",
    "TimeStretch",
    "add_noise",
    "audio_views",
    "crop",
    "gain",
    "mix",
    "noise_like",
    "random_crop",
    "random_segments",
    "spec_augment",
    "spec_augment_masks",
    "speed_perturb",
    "tempo_stretch",
    "time_shift",
    "time_stretch",
]

_LN10 = math.log(10.0)


# --------------------------------------------------------------------------- helpers


def _lengths(batch: AudioBatch) -> Tensor:
    return batch.lengths.to(batch.values.device)


def _as3(values: Tensor) -> Tensor:
    """(N, T) → (N, T, 1); (N, T, F) unchanged."""
    return values.unsqueeze(-1) if values.dim() == 2 else values


def _like(values3: Tensor, like: Tensor) -> Tensor:
    return values3.squeeze(-1) if like.dim() == 2 else values3


def _valid(lengths: Tensor, t: int) -> Tensor:
    return torch.arange(t, device=lengths.device)[None, :] < lengths[:, None]


def _zero_pad(values: Tensor, lengths: Tensor) -> Tensor:
    """Zero every sample/frame at or beyond its clip's length."""
    pad = ~_valid(lengths, values.shape[1])
    if values.dim() == 3:
        pad = pad[:, :, None]
    return values.masked_fill(pad, 0)


def _gather_time(values3: Tensor, index: Tensor) -> Tensor:
    """values3 (N, T, C), index (N, T_out) long in [0, T) → (N, T_out, C)."""
    return values3.gather(1, index[:, :, None].expand(-1, -1, values3.shape[2]))


def _interp_time(values: Tensor, lengths: Tensor, pos: Tensor) -> Tensor:
    """Linear interpolation of each clip of ``values`` (N, T) or (N, T, F) at fractional
    positions ``pos`` (N, T_out), clamped to the clip's valid region [0, length - 1]."""
    last = (lengths - 1).clamp_min(0)[:, None]
    pos = torch.minimum(pos.to(values.dtype).clamp_min(0), last.to(values.dtype))
    i0 = pos.long()  # pos ≥ 0: truncation is floor
    i1 = torch.minimum(i0 + 1, last)
    w = pos - i0.to(values.dtype)
    if values.dim() == 2:
        a, b = values.gather(1, i0), values.gather(1, i1)
    else:
        a, b = _gather_time(values, i0), _gather_time(values, i1)
        w = w[:, :, None]
    return a + (b - a) * w


def _wide(device: torch.device) -> torch.dtype:
    """float64 for parameter arithmetic, float32 where the device has no float64 (MPS)."""
    return torch.float32 if torch.device(device).type == "mps" else torch.float64


def _uniform(
    n: int, low: float, high: float, generator: torch.Generator | None, like: Tensor
) -> Tensor:
    """(n,) uniform draws in [low, high) in ``like``'s dtype and device."""
    u = torch.rand(n, generator=generator, device=like.device, dtype=like.dtype)
    return low + (high - low) * u


def _randint_upto(high: Tensor, generator: torch.Generator | None, shape: Sequence[int]) -> Tensor:
    """Integers uniform in {0, ..., high} (inclusive), ``high`` broadcast against ``shape``."""
    u = torch.rand(tuple(shape), generator=generator, device=high.device)
    return (u * (high + 1).to(u.dtype)).floor().long().clamp_max(high).clamp_min(0)


def _pair(value: float | Sequence[float], name: str) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        lo, hi = float(value), float(value)
    else:
        lo, hi = (float(v) for v in value)
    if lo > hi:
        raise ValueError(f"{name} must be (low, high) with low ≤ high, got {value}.")
    return lo, hi


def _need_wave(batch: AudioBatch, view: str, hint: str) -> None:
    if not batch.is_wave:
        raise ValueError(
            f"{view} works on (N, T) waveforms, got frame features of shape "
            f"{tuple(batch.values.shape)}; {hint}"
        )


def _need_frames(batch: AudioBatch, view: str, hint: str) -> None:
    if batch.is_wave:
        raise ValueError(
            f"{view} works on (N, T, F) frame features (log-mel, MFCC), got waveforms of shape "
            f"{tuple(batch.values.shape)}; {hint}"
        )


def _check_domain(domain: str, allowed: Sequence[str]) -> str:
    if domain not in allowed:
        raise ValueError(f"domain must be one of {list(allowed)}, got {domain!r}.")
    return domain


class AudioView:
    """Base of the audio views: ``view(batch, generator=None) -> AudioBatch``."""

    def __call__(self, batch: AudioBatch, generator: torch.Generator | None = None) -> AudioBatch:
        raise NotImplementedError

    def _fields(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(
            f"{k}={'<tensor ' + str(tuple(v.shape)) + '>' if isinstance(v, Tensor) else repr(v)}"
            for k, v in self._fields().items()
        )
        return f"{type(self).__name__}({args})"


# --------------------------------------------------------------------------- crop


def crop(batch: AudioBatch, starts: Tensor, length: int) -> AudioBatch:
    """Segments ``[starts, starts + length)`` of every clip, clipped to its valid region.

    Args:
        batch: N clips, (N, T) or (N, T, F).
        starts: (N,) int64 first sample/frame of each segment (≥ 0).
        length: segment length; the output has ``min(length, T)`` samples/frames.

    Returns:
        an AudioBatch (N, min(length, T)[, F]) with lengths ``clamp(lengths - starts, 0,
        length)`` (a clip shorter than ``length`` read from 0 is kept whole).

    Example:
        >>> b = AudioBatch.from_clips([torch.arange(6.0), torch.arange(3.0)], sample_rate=1)
        >>> out = crop(b, torch.tensor([2, 0]), 4)
        >>> out.values.tolist(), out.lengths.tolist()
        ([[2.0, 3.0, 4.0, 5.0], [0.0, 1.0, 2.0, 0.0]], [4, 3])
    """
    x = batch.values
    t = int(x.shape[1])
    out_t = min(int(length), t)
    lengths = _lengths(batch)
    starts = torch.as_tensor(starts, dtype=torch.long, device=x.device)
    idx = (starts[:, None] + torch.arange(out_t, device=x.device)[None, :]).clamp(0, max(t - 1, 0))
    new_len = (lengths - starts).clamp(0, out_t)
    values = _like(_gather_time(_as3(x), idx), x) if t > 0 else x[:, :out_t]
    return batch.with_values(_zero_pad(values, new_len), new_len)


def _crop_starts(lengths: Tensor, length: int, generator: torch.Generator | None) -> Tensor:
    room = (lengths - int(length)).clamp_min(0)
    return _randint_upto(room, generator, room.shape)


def random_crop(
    batch: AudioBatch, length: int, generator: torch.Generator | None = None
) -> AudioBatch:
    """One random segment of ``length`` samples/frames of each clip, placed uniformly inside
    the clip's valid region (a clip shorter than ``length`` is kept whole).

    Example:
        >>> b = AudioBatch.from_clips([torch.arange(10.0)], sample_rate=1)
        >>> out = random_crop(b, 4, torch.Generator().manual_seed(0))
        >>> v = out.values[0]
        >>> out.lengths.tolist(), bool((v[1:] - v[:-1] == 1).all())
        ([4], True)
    """
    if int(length) < 1:
        raise ValueError(f"the crop length must be ≥ 1 sample/frame, got {length}.")
    return crop(batch, _crop_starts(_lengths(batch), length, generator), length)


def random_segments(
    batch: AudioBatch, length: int, n: int = 2, generator: torch.Generator | None = None
) -> list[AudioBatch]:
    """COLA's positives: ``n`` independently placed random segments of every clip.

    Returns:
        n AudioBatches, each (N, min(length, T)[, F]); row i of each is a segment of clip i.

    Example:
        >>> b = AudioBatch.from_clips([torch.randn(100), torch.randn(50)], sample_rate=1)
        >>> a, p = random_segments(b, 20, n=2, generator=torch.Generator().manual_seed(0))
        >>> a.values.shape, p.lengths.tolist()
        (torch.Size([2, 20]), [20, 20])
    """
    if int(n) < 1:
        raise ValueError(f"n must be ≥ 1 segments per clip, got {n}.")
    return [random_crop(batch, length, generator) for _ in range(int(n))]


class RandomCrop(AudioView):
    """A random segment of each clip (see :func:`random_crop`).

    Args:
        length: segment length in samples (waveforms) or frames (features).
        seconds: alternatively, the length in seconds (``round(seconds · sample_rate)``).

    Input (N, T[, F]) → output (N, min(length, T)[, F]), lengths ``min(lengths, length)``.

    Example:
        >>> b = AudioBatch.from_clips([torch.randn(16000)], sample_rate=16000)
        >>> RandomCrop(seconds=0.5)(b).values.shape
        torch.Size([1, 8000])
    """

    def __init__(self, length: int | None = None, *, seconds: float | None = None) -> None:
        if (length is None) == (seconds is None):
            raise ValueError("RandomCrop needs exactly one of length (samples/frames) or seconds.")
        if length is not None and int(length) < 1:
            raise ValueError(f"the crop length must be ≥ 1 sample/frame, got {length}.")
        if seconds is not None and float(seconds) <= 0:
            raise ValueError(f"the crop duration must be > 0 seconds, got {seconds}.")
        self.length = None if length is None else int(length)
        self.seconds = None if seconds is None else float(seconds)

    def length_for(self, batch: AudioBatch) -> int:
        if self.length is not None:
            return self.length
        return max(1, round(float(self.seconds) * float(batch.sample_rate)))  # type: ignore[arg-type]

    def sample(self, batch: AudioBatch, generator: torch.Generator | None = None) -> Tensor:
        """(N,) int64 segment starts."""
        return _crop_starts(_lengths(batch), self.length_for(batch), generator)

    def __call__(self, batch: AudioBatch, generator: torch.Generator | None = None) -> AudioBatch:
        return crop(batch, self.sample(batch, generator), self.length_for(batch))


# --------------------------------------------------------------------------- time shift


def time_shift(batch: AudioBatch, shifts: Tensor, mode: str = "roll") -> AudioBatch:
    """Shift each clip's content by ``shifts`` (N,) int64 samples/frames (positive: later)
    inside its own valid region; lengths unchanged, padding zero.

    ``mode="roll"``: circular within the valid region (``out[t] = x[(t - k) mod len]``);
    ``mode="zero"``: shifted with zero fill (what moves past either end is lost).

    Example:
        >>> b = AudioBatch.from_clips([torch.arange(1.0, 5.0), torch.arange(1.0, 4.0)], 1)
        >>> time_shift(b, torch.tensor([1, -1])).values.tolist()
        [[4.0, 1.0, 2.0, 3.0], [2.0, 3.0, 1.0, 0.0]]
        >>> time_shift(b, torch.tensor([1, -1]), mode="zero").values.tolist()
        [[0.0, 1.0, 2.0, 3.0], [2.0, 3.0, 0.0, 0.0]]
    """
    if mode not in ("roll", "zero"):
        raise ValueError(f"mode must be 'roll' or 'zero', got {mode!r}.")
    x = batch.values
    t = int(x.shape[1])
    lengths = _lengths(batch)
    shifts = torch.as_tensor(shifts, dtype=torch.long, device=x.device)
    src = torch.arange(t, device=x.device)[None, :] - shifts[:, None]
    if mode == "roll":
        src = torch.remainder(src, lengths.clamp_min(1)[:, None])
        keep = _valid(lengths, t)
    else:
        keep = (src >= 0) & (src < lengths[:, None])
    x3 = _as3(x)
    out = _gather_time(x3, src.clamp(0, max(t - 1, 0))) * keep[:, :, None].to(x.dtype)
    return batch.with_values(_like(out, x), lengths)


class TimeShift(AudioView):
    """Shift each clip by a random integer offset, uniform in ±``max_fraction`` of its own
    valid length (see :func:`time_shift` for ``mode``: ``"roll"`` circular within the valid
    region, ``"zero"`` zero-filled). Works on (N, T) and (N, T, F); shape and lengths kept.

    Example:
        >>> b = AudioBatch.from_clips([torch.arange(10.0)], sample_rate=1)
        >>> view = TimeShift(0.3)
        >>> k = view.sample(b, torch.Generator().manual_seed(1))
        >>> out = view(b, torch.Generator().manual_seed(1))
        >>> torch.equal(out.values[0], torch.roll(b.values[0], int(k[0])))
        True
    """

    def __init__(self, max_fraction: float = 0.2, mode: str = "roll") -> None:
        if not 0.0 <= float(max_fraction) <= 1.0:
            raise ValueError(f"max_fraction must lie in [0, 1], got {max_fraction}.")
        if mode not in ("roll", "zero"):
            raise ValueError(f"mode must be 'roll' or 'zero', got {mode!r}.")
        self.max_fraction = float(max_fraction)
        self.mode = mode

    def sample(self, batch: AudioBatch, generator: torch.Generator | None = None) -> Tensor:
        """(N,) int64 shifts, |shift| ≤ max_fraction · length."""
        lengths = _lengths(batch)
        wide = _wide(lengths.device)
        u = torch.rand(len(batch), generator=generator, device=lengths.device, dtype=wide)
        return torch.round((2 * u - 1) * self.max_fraction * lengths.to(wide)).long()

    def __call__(self, batch: AudioBatch, generator: torch.Generator | None = None) -> AudioBatch:
        return time_shift(batch, self.sample(batch, generator), self.mode)


# --------------------------------------------------------------------------- gain


def gain(batch: AudioBatch, db: Tensor, domain: str = "ln") -> AudioBatch:
    """Change each clip's level by ``db`` (N,) decibels.

    Waveforms are multiplied by ``10^(g/20)``; frame features in a log domain get an offset
    on their valid frames: ``domain="ln"`` (natural-log power mel) adds ``g·ln(10)/10``,
    ``domain="db"`` adds ``g`` (``domain`` is ignored for waveforms). MFCCs are not a level
    domain: a gain only moves their c0, so pass their log-mel instead.

    Example:
        >>> b = AudioBatch.from_clips([torch.ones(3)], sample_rate=1)
        >>> gain(b, torch.tensor([20.0])).values.tolist()
        [[10.0, 10.0, 10.0]]
        >>> f = AudioBatch.from_clips([torch.zeros(2, 1), torch.zeros(1, 1)], sample_rate=1)
        >>> gain(f, torch.tensor([10.0, 10.0]), domain="db").values[..., 0].tolist()
        [[10.0, 10.0], [10.0, 0.0]]
    """
    _check_domain(domain, ("ln", "db"))
    x = batch.values
    lengths = _lengths(batch)
    db = torch.as_tensor(db, device=x.device).to(x.dtype)
    if batch.is_wave:
        out = x * torch.pow(torch.tensor(10.0, dtype=x.dtype, device=x.device), db / 20)[:, None]
    else:
        offset = db * (_LN10 / 10) if domain == "ln" else db
        out = x + offset[:, None, None]
    return batch.with_values(_zero_pad(out, lengths), lengths)


class Gain(AudioView):
    """A random level change, uniform in [``min_db``, ``max_db``] decibels per clip (see
    :func:`gain` for the waveform and feature domains). Shape and lengths kept.

    Example:
        >>> b = AudioBatch.from_clips([torch.ones(4)], sample_rate=1)
        >>> view = Gain(-6, 6)
        >>> g = view.sample(b, torch.Generator().manual_seed(0))
        >>> out = view(b, torch.Generator().manual_seed(0))
        >>> bool(torch.allclose(out.values[0], 10 ** (g / 20)))
        True
    """

    def __init__(self, min_db: float = -6.0, max_db: float = 6.0, domain: str = "ln") -> None:
        self.min_db, self.max_db = _pair((min_db, max_db), "(min_db, max_db)")
        self.domain = _check_domain(domain, ("ln", "db"))

    def sample(self, batch: AudioBatch, generator: torch.Generator | None = None) -> Tensor:
        """(N,) gains in dB, in the batch's dtype."""
        return _uniform(len(batch), self.min_db, self.max_db, generator, batch.values)

    def __call__(self, batch: AudioBatch, generator: torch.Generator | None = None) -> AudioBatch:
        return gain(batch, self.sample(batch, generator), self.domain)


# --------------------------------------------------------------------------- noise


def noise_like(
    batch: AudioBatch,
    noise: str | Tensor = "white",
    generator: torch.Generator | None = None,
) -> Tensor:
    """(N, T) noise for the waveforms of ``batch`` (zero on the padding, not yet scaled).

    Args:
        noise: ``"white"`` (Gaussian), ``"pink"`` (1/f power: white noise shaped by 1/√f in
            the frequency domain, no DC), or a bank (K, T_n) of recorded noise clips: each clip
            takes a random bank row read from a random offset, circularly (tiled if T_n < T).

    Example:
        >>> b = AudioBatch.from_clips([torch.ones(8), torch.ones(4)], sample_rate=8)
        >>> n = noise_like(b, torch.arange(3.0)[None], torch.Generator().manual_seed(0))
        >>> n.shape, bool((n[1, 4:] == 0).all())
        (torch.Size([2, 8]), True)
    """
    x = batch.values
    n, t = int(x.shape[0]), int(x.shape[1])
    if isinstance(noise, Tensor):
        bank = noise.to(device=x.device, dtype=x.dtype)
        if bank.dim() == 1:
            bank = bank[None]
        if bank.dim() != 2 or bank.shape[0] == 0 or bank.shape[1] == 0:
            raise ValueError(
                f"a noise bank must be a non-empty (K, T_n) tensor of noise waveforms, got shape "
                f"{tuple(noise.shape)}."
            )
        k = torch.randint(0, bank.shape[0], (n,), generator=generator, device=x.device)
        off = torch.randint(0, bank.shape[1], (n,), generator=generator, device=x.device)
        idx = torch.remainder(off[:, None] + torch.arange(t, device=x.device)[None], bank.shape[1])
        out = bank[k[:, None], idx]
    elif noise == "white":
        out = torch.randn(n, t, generator=generator, device=x.device, dtype=x.dtype)
    elif noise == "pink":
        white = torch.randn(n, t, generator=generator, device=x.device, dtype=x.dtype)
        spec = torch.fft.rfft(white, dim=1)
        f = torch.arange(spec.shape[1], device=x.device, dtype=x.dtype)
        shape = torch.where(f > 0, f.clamp_min(1).rsqrt(), torch.zeros_like(f))
        out = torch.fft.irfft(spec * shape[None], n=t, dim=1)
    else:
        raise ValueError(
            f"noise must be 'white', 'pink' or a (K, T_n) tensor of noise clips, got {noise!r}."
        )
    return _zero_pad(out, _lengths(batch))


def add_noise(batch: AudioBatch, noise: Tensor, snr_db: Tensor) -> AudioBatch:
    """Add ``noise`` (N, T) to each waveform, scaled so that the signal-to-noise ratio over
    the clip's valid samples, ``10·log10(Σ x² / Σ (s·n)²)``, equals ``snr_db`` (N,) exactly.

    A silent clip gets no noise (its SNR is undefined); so does a clip whose noise is silent
    on its valid samples.

    Example:
        >>> b = AudioBatch.from_clips([torch.ones(4)], sample_rate=1)
        >>> out = add_noise(b, torch.tensor([[1.0, -1.0, 1.0, -1.0]]), torch.tensor([20.0]))
        >>> [round(v, 4) for v in out.values[0].tolist()]
        [1.1, 0.9, 1.1, 0.9]
    """
    _need_wave(batch, "add_noise", "add noise to the waveforms before computing features.")
    x = batch.values
    lengths = _lengths(batch)
    noise = _zero_pad(noise.to(device=x.device, dtype=x.dtype), lengths)
    snr = torch.as_tensor(snr_db, device=x.device).to(x.dtype)
    p_s = _zero_pad(x, lengths).square().sum(dim=1)
    p_n = noise.square().sum(dim=1)
    tiny = torch.finfo(x.dtype).tiny
    scale = torch.sqrt(p_s / (p_n.clamp_min(tiny) * torch.pow(10.0, snr / 10)))
    scale = torch.where(p_n > 0, scale, torch.zeros_like(scale))
    return batch.with_values(_zero_pad(x, lengths) + scale[:, None] * noise, lengths)


class AddNoise(AudioView):
    """Add noise to each waveform at an SNR drawn uniformly in ``snr_db`` (dB), reached
    exactly over the clip's own valid samples (see :func:`add_noise`).

    Args:
        snr_db: (low, high) SNR range in dB, or one value.
        noise: ``"white"``, ``"pink"`` or a (K, T_n) bank of noise clips from the data (see
            :func:`noise_like`).

    Waveforms (N, T) only; shape and lengths kept.

    Example:
        >>> b = AudioBatch.from_clips([torch.randn(800), torch.randn(500)], sample_rate=8000)
        >>> out = AddNoise(10.0)(b)
        >>> n = (out.values - b.values)[1, :500]
        >>> round(10 * torch.log10(b.values[1].square().sum() / n.square().sum()).item(), 3)
        10.0
    """

    def __init__(
        self, snr_db: float | tuple[float, float] = (5.0, 20.0), noise: str | Tensor = "white"
    ) -> None:
        self.snr_db = _pair(snr_db, "snr_db")
        if isinstance(noise, Tensor):
            if noise.dim() not in (1, 2) or noise.numel() == 0:
                raise ValueError(
                    f"a noise bank must be a non-empty (K, T_n) tensor of noise waveforms, got "
                    f"shape {tuple(noise.shape)}."
                )
            noise = noise.detach()
        elif noise not in ("white", "pink"):
            raise ValueError(
                f"noise must be 'white', 'pink' or a (K, T_n) tensor of noise clips, got {noise!r}."
            )
        self.noise = noise

    def sample(self, batch: AudioBatch, generator: torch.Generator | None = None) -> Tensor:
        """(N,) SNRs in dB, in the batch's dtype."""
        return _uniform(len(batch), *self.snr_db, generator, batch.values)

    def __call__(self, batch: AudioBatch, generator: torch.Generator | None = None) -> AudioBatch:
        _need_wave(batch, "AddNoise", "add noise to the waveforms before computing features.")
        snr = self.sample(batch, generator)
        return add_noise(batch, noise_like(batch, self.noise, generator), snr)


# --------------------------------------------------------------------------- resampling


def _lowpass(x: Tensor, lengths: Tensor, cutoff: Tensor) -> Tensor:
    """Brick-wall low-pass in the frequency domain: zero the bins above ``cutoff`` (N,),
    a fraction of the sampling rate (0.5 = Nyquist)."""
    t = int(x.shape[1])
    spec = torch.fft.rfft(_zero_pad(x, lengths), dim=1)
    f = torch.arange(spec.shape[1], device=x.device, dtype=x.dtype) / max(t, 1)
    keep = (f[None, :] <= cutoff[:, None]).to(spec.dtype)
    return torch.fft.irfft(spec * keep, n=t, dim=1)


def speed_perturb(batch: AudioBatch, ratio: Tensor, antialias: bool = False) -> AudioBatch:
    """Resample each waveform by ``ratio`` (N,) > 0: output sample t reads the clip at
    position ``t·r`` (linear interpolation), so every frequency is multiplied by r and the
    clip lasts 1/r as long — pitch and tempo change together (speed perturbation).

    The new valid length is ``min(T, floor((len - 1)/r) + 1)``; the rest is zero. With r > 1
    content above ``sr/(2r)`` folds back (aliasing); ``antialias=True`` first removes it with
    a brick-wall low-pass (FFT) at ``sr/(2r)``.

    Example:
        >>> b = AudioBatch.from_clips([torch.arange(8.0)], sample_rate=1)
        >>> out = speed_perturb(b, torch.tensor([2.0]))
        >>> out.values.tolist(), out.lengths.tolist()
        ([[0.0, 2.0, 4.0, 6.0, 0.0, 0.0, 0.0, 0.0]], [4])
    """
    _need_wave(batch, "speed_perturb / PitchShift", "use TimeStretch on frame features.")
    x = batch.values
    t = int(x.shape[1])
    lengths = _lengths(batch)
    r = torch.as_tensor(ratio, device=x.device).to(_wide(x.device))
    if bool((r <= 0).any()):
        raise ValueError("resampling ratios must be > 0.")
    new_len = torch.floor((lengths - 1).clamp_min(0).to(r.dtype) / r).long() + 1
    new_len = torch.where(lengths > 0, new_len.clamp_max(t), torch.zeros_like(new_len))
    src = x
    if antialias:
        cutoff = (0.5 / r.clamp_min(1.0)).to(x.dtype)
        src = torch.where((r > 1)[:, None], _lowpass(x, lengths, cutoff), x)
    pos = torch.arange(t, device=x.device, dtype=x.dtype)[None, :] * r.to(x.dtype)[:, None]
    out = _interp_time(src, lengths, pos)
    return batch.with_values(_zero_pad(out, new_len), new_len)


class PitchShift(AudioView):
    """Shift each waveform's pitch by a random number of semitones s, uniform in
    ``semitones``, by resampling with ratio ``r = 2^(s/12)`` (see :func:`speed_perturb`):
    pitch and tempo change together, the clip's length becomes about ``len/r`` (capped at T).

    Waveforms (N, T) only (frame features raise: use :class:`TimeStretch`). With r > 1
    content above ``sr/(2r)`` aliases unless ``antialias=True``.

    Example:
        >>> b = AudioBatch.from_clips([torch.randn(1000)], sample_rate=16000)
        >>> out = PitchShift((12, 12))(b)
        >>> out.lengths.tolist()
        [500]
    """

    def __init__(
        self, semitones: float | tuple[float, float] = (-2.0, 2.0), antialias: bool = False
    ) -> None:
        self.semitones = _pair(semitones, "semitones")
        self.antialias = bool(antialias)

    def sample(self, batch: AudioBatch, generator: torch.Generator | None = None) -> Tensor:
        """(N,) semitone shifts (float64; float32 on MPS)."""
        wide = _wide(batch.device)
        u = torch.rand(len(batch), generator=generator, device=batch.device, dtype=wide)
        lo, hi = self.semitones
        return lo + (hi - lo) * u

    def __call__(self, batch: AudioBatch, generator: torch.Generator | None = None) -> AudioBatch:
        _need_wave(batch, "PitchShift", "use TimeStretch on frame features.")
        s = self.sample(batch, generator)
        return speed_perturb(batch, torch.pow(2.0, s / 12), self.antialias)


def time_stretch(batch: AudioBatch, rate: Tensor) -> AudioBatch:
    """Resample each clip's frame sequence in time by ``rate`` (N,) > 0 (rate > 1: faster,
    shorter): output frame j reads frame ``(j + 0.5)·rate - 0.5`` (linear interpolation
    between frames, clamped to the clip), the spectrum of each frame is unchanged. The new
    valid length is ``clamp(round(len/rate), 1, T)`` (0 for an empty clip).

    Works on (N, T, F) frame features; on waveforms it would be a plain resample (a speed
    change, pitch included), so it raises and points to :func:`speed_perturb`.

    Example:
        >>> ramp = torch.arange(8.0)[:, None]
        >>> out = time_stretch(AudioBatch.from_clips([ramp], 100), torch.tensor([2.0]))
        >>> out.lengths.tolist(), out.values[0, :4, 0].tolist()
        ([4], [0.5, 2.5, 4.5, 6.5])
    """
    _need_frames(
        batch,
        "TimeStretch",
        "stretching a waveform by resampling changes its pitch too: use PitchShift "
        "(speed perturbation), or stretch its spectrogram frames.",
    )
    x = batch.values
    t = int(x.shape[1])
    lengths = _lengths(batch)
    rate = torch.as_tensor(rate, device=x.device).to(_wide(x.device))
    if bool((rate <= 0).any()):
        raise ValueError("time-stretch rates must be > 0.")
    new_len = torch.round(lengths.to(rate.dtype) / rate).long().clamp(1, max(t, 1))
    new_len = torch.where(lengths > 0, new_len, torch.zeros_like(new_len))
    j = torch.arange(t, device=x.device, dtype=rate.dtype)[None, :]
    pos = (j + 0.5) * rate[:, None] - 0.5
    out = _interp_time(x, lengths, pos)
    return batch.with_values(_zero_pad(out, new_len), new_len)


class TimeStretch(AudioView):
    """Stretch each clip's frame sequence in time by a random rate, log-uniform in ``rate``
    (so 0.8 and 1.25 are equally likely; see :func:`time_stretch`): the new length is about
    ``len/rate``, capped at T; the per-frame spectrum is unchanged.

    (N, T, F) frame features only; waveforms raise (use :class:`PitchShift`).

    Example:
        >>> f = AudioBatch.from_clips([torch.randn(40, 8)], sample_rate=100)
        >>> TimeStretch((2.0, 2.0))(f).lengths.tolist()
        [20]
    """

    def __init__(self, rate: float | tuple[float, float] = (0.8, 1.25)) -> None:
        self.rate = _pair(rate, "rate")
        if self.rate[0] <= 0:
            raise ValueError(f"stretch rates must be > 0, got {rate}.")

    def sample(self, batch: AudioBatch, generator: torch.Generator | None = None) -> Tensor:
        """(N,) rates (float64; float32 on MPS), log-uniform in ``rate``."""
        wide = _wide(batch.device)
        u = torch.rand(len(batch), generator=generator, device=batch.device, dtype=wide)
        lo, hi = math.log(self.rate[0]), math.log(self.rate[1])
        return torch.exp(lo + (hi - lo) * u)

    def __call__(self, batch: AudioBatch, generator: torch.Generator | None = None) -> AudioBatch:
        _need_frames(batch, "TimeStretch", "use PitchShift (speed perturbation) on waveforms.")
        return time_stretch(batch, self.sample(batch, generator))


def tempo_stretch(
    batch: AudioBatch, rate: Tensor, n_fft: int = 512, hop_length: int | None = None
) -> AudioBatch:
    """Change each waveform's tempo by ``rate`` (N,) > 0 and keep its pitch: a phase vocoder
    (rate > 1: faster, shorter). Output STFT frame k reads the clip's STFT at frame
    ``k·rate``: magnitudes interpolated linearly between frames, phases advanced by each
    bin's measured instantaneous frequency, then inverted (Flanagan & Golden 1966; the
    algorithm of ``librosa.effects.time_stretch``). Frequencies stay where they are, so a tone
    keeps its pitch while the clip lasts about ``len/rate``.

    The new valid length is ``min(T, round(len/rate))`` (0 for an empty clip): slowing the
    longest clips of a batch down cuts their end at T, as :func:`speed_perturb` does.
    Combined with :func:`speed_perturb` (pitch and tempo together) it moves pitch and tempo
    independently.

    Args:
        batch: waveforms (N, T); frame features raise (use :func:`time_stretch`).
        rate: (N,) tempo ratios > 0.
        n_fft: STFT size (512: 32 ms at 16 kHz); ``hop_length`` defaults to ``n_fft // 4``.

    Example:
        >>> t = torch.arange(16000) / 16000
        >>> b = AudioBatch.from_clips([torch.sin(2 * torch.pi * 440 * t)], sample_rate=16000)
        >>> out = tempo_stretch(b, torch.tensor([2.0]))
        >>> out.lengths.tolist()
        [8000]
        >>> spec = torch.fft.rfft(out.values[0, :8000]).abs()
        >>> round(float(spec.argmax()) * 16000 / 8000)  # still 440 Hz
        440
    """
    _need_wave(
        batch,
        "tempo_stretch / TempoStretch",
        "stretch frame features in time with TimeStretch (their spectra are already fixed).",
    )
    x = batch.values
    n, t = int(x.shape[0]), int(x.shape[1])
    lengths = _lengths(batch)
    rate = torch.as_tensor(rate, device=x.device).to(_wide(x.device)).reshape(-1)
    if rate.numel() != n:
        raise ValueError(f"tempo_stretch needs one rate per clip ({n}), got {rate.numel()}.")
    if bool((rate <= 0).any()):
        raise ValueError("tempo-stretch rates must be > 0.")
    hop = int(hop_length or n_fft // 4)
    new_len = torch.round(lengths.to(rate.dtype) / rate).long().clamp_max(t)
    new_len = torch.where(lengths > 0, new_len, torch.zeros_like(new_len))
    if n == 0 or t == 0:
        return batch.with_values(x.clone(), new_len)
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    window = torch.hann_window(n_fft, periodic=True, device=x.device, dtype=work.dtype)
    pad = max(0, n_fft - t)  # stft needs at least n_fft // 2 + 1 samples of reflect padding
    src = F.pad(_zero_pad(work, lengths), (0, pad)) if pad else _zero_pad(work, lengths)
    spec = torch.stft(
        src, n_fft, hop, window=window, center=True, pad_mode="constant", return_complex=True
    )
    frames = spec.shape[-1]  # (N, F, M)
    last = (lengths.div(hop, rounding_mode="floor")).clamp(0, frames - 1)[:, None]
    out_frames = t // hop + 1
    pos = torch.arange(out_frames, device=x.device, dtype=rate.dtype)[None, :] * rate[:, None]
    pos = torch.minimum(pos, last.to(pos.dtype))
    i0 = pos.long()
    i1 = torch.minimum(i0 + 1, last)
    w = (pos - i0.to(pos.dtype)).to(work.dtype)[:, None, :]
    bins = spec.shape[1]
    mags, angles = spec.abs(), spec.angle()
    j0, j1 = i0[:, None, :].expand(-1, bins, -1), i1[:, None, :].expand(-1, bins, -1)
    mag = torch.lerp(mags.gather(2, j0), mags.gather(2, j1), w)
    omega = 2 * math.pi * hop * torch.arange(bins, device=x.device, dtype=work.dtype) / n_fft
    dphi = angles.gather(2, j1) - angles.gather(2, j0) - omega[None, :, None]
    dphi = dphi - 2 * math.pi * torch.round(dphi / (2 * math.pi))
    # the phase is a running sum over frames (hundreds of radians): accumulate in float64
    # (float32 on MPS) and wrap, so float32 inputs lose nothing to it
    advance = (dphi + omega[None, :, None]).to(rate.dtype)
    phase = angles[:, :, :1].to(rate.dtype) + torch.cumsum(advance, dim=2) - advance
    phase = torch.remainder(phase, 2 * math.pi).to(work.dtype)
    out = torch.istft(
        torch.polar(mag, phase), n_fft, hop, window=window, center=True, length=t + pad
    )[:, :t]
    return batch.with_values(_zero_pad(out.to(x.dtype), new_len), new_len)


class TempoStretch(TimeStretch):
    """Change each waveform's tempo by a random rate, log-uniform in ``rate``, and keep its
    pitch (a phase vocoder, :func:`tempo_stretch`): a faster or slower speaker. With
    :class:`PitchShift` (pitch and tempo together, by resampling) pitch and speaking rate
    vary independently.

    Waveforms (N, T) only (frame features raise: use :class:`TimeStretch`).

    Example:
        >>> b = AudioBatch.from_clips([torch.randn(16000)], sample_rate=16000)
        >>> TempoStretch((1.25, 1.25))(b).lengths.tolist()
        [12800]
    """

    def __init__(self, rate: float | tuple[float, float] = (0.8, 1.25), n_fft: int = 512) -> None:
        super().__init__(rate)  # the rates and their log-uniform draw are TimeStretch's
        self.n_fft = int(n_fft)

    def __call__(self, batch: AudioBatch, generator: torch.Generator | None = None) -> AudioBatch:
        _need_wave(batch, "TempoStretch", "use TimeStretch on frame features.")
        return tempo_stretch(batch, self.sample(batch, generator), self.n_fft)


# --------------------------------------------------------------------------- SpecAugment


def _band_masks(
    size: Tensor, count: int, max_width: Tensor, total: int, generator: torch.Generator | None
) -> Tensor:
    """(N, total) bool: ``count`` bands per row, widths uniform in {0..max_width}, placed
    uniformly inside [0, size)."""
    n = int(size.shape[0])
    if count == 0 or total == 0:
        return torch.zeros(n, total, dtype=torch.bool, device=size.device)
    max_width = torch.minimum(max_width, size)
    width = _randint_upto(max_width[:, None].expand(n, count), generator, (n, count))
    start = _randint_upto(size[:, None] - width, generator, (n, count))
    pos = torch.arange(total, device=size.device)[None, None, :]
    band = (pos >= start[:, :, None]) & (pos < (start + width)[:, :, None])
    return band.any(dim=1)


def spec_augment_masks(
    lengths: Tensor,
    num_frames: int,
    num_bins: int,
    time_masks: int = 2,
    time_width: float = 0.1,
    freq_masks: int = 2,
    freq_width: int = 8,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """SpecAugment's masks, drawn per clip.

    Each of ``time_masks`` time masks has a width uniform in {0, ..., floor(time_width·len)}
    frames and starts uniformly so that it lies inside the clip's valid frames; each of
    ``freq_masks`` frequency masks has a width uniform in {0, ..., min(freq_width, F)} bins.

    Returns:
        ``(time_mask (N, num_frames) bool, freq_mask (N, num_bins) bool)``; the time mask is
        False on the padding.

    Example:
        >>> tm, fm = spec_augment_masks(torch.tensor([10, 5]), 10, 16, 1, 0.5, 1, 4)
        >>> tm.shape, fm.shape, bool(tm[1, 5:].any()), bool((tm.sum(1) <= torch.tensor([5, 2])).all())
        (torch.Size([2, 10]), torch.Size([2, 16]), False, True)
    """
    lengths = torch.as_tensor(lengths, dtype=torch.long)
    n = int(lengths.shape[0])
    t_max = torch.floor(lengths.to(_wide(lengths.device)) * float(time_width)).long()
    time_mask = _band_masks(lengths, int(time_masks), t_max, int(num_frames), generator)
    bins = torch.full((n,), int(num_bins), dtype=torch.long, device=lengths.device)
    f_max = torch.full_like(bins, int(freq_width))
    freq_mask = _band_masks(bins, int(freq_masks), f_max, int(num_bins), generator)
    return time_mask, freq_mask


def spec_augment(
    batch: AudioBatch, time_mask: Tensor, freq_mask: Tensor, fill: str = "zero"
) -> AudioBatch:
    """Mask frames ``time_mask`` (N, T) and bins ``freq_mask`` (N, F) of each clip's valid
    frames (never the padding): ``fill="zero"`` writes 0, ``fill="mean"`` the clip's mean
    over its valid frames and bins.

    Example:
        >>> f = AudioBatch.from_clips([torch.ones(3, 2)], sample_rate=100)
        >>> out = spec_augment(f, torch.tensor([[False, True, False]]), torch.tensor([[True, False]]))
        >>> out.values[0].tolist()
        [[0.0, 1.0], [0.0, 0.0], [0.0, 1.0]]
    """
    _need_frames(batch, "SpecAugment", "compute a (log-mel) spectrogram first.")
    if fill not in ("zero", "mean"):
        raise ValueError(f"fill must be 'zero' or 'mean', got {fill!r}.")
    x = batch.values
    lengths = _lengths(batch)
    valid = _valid(lengths, x.shape[1])
    m = (time_mask.to(x.device)[:, :, None] | freq_mask.to(x.device)[:, None, :]) & valid[
        :, :, None
    ]
    if fill == "zero":
        value = torch.zeros((), dtype=x.dtype, device=x.device)
    else:
        count = (lengths.clamp_min(1) * x.shape[2]).to(x.dtype)
        value = (_zero_pad(x, lengths).sum(dim=(1, 2)) / count)[:, None, None]
    return batch.with_values(_zero_pad(torch.where(m, value, x), lengths), lengths)


class SpecAugment(AudioView):
    """SpecAugment's time and frequency masks (no time warping: see :class:`TimeStretch`),
    drawn per clip (see :func:`spec_augment_masks` and :func:`spec_augment`).

    Args:
        time_masks: time masks per clip.
        time_width: the largest time-mask width, a fraction of the clip's valid length.
        freq_masks: frequency masks per clip.
        freq_width: the largest frequency-mask width, in bins.
        fill: ``"zero"`` or ``"mean"`` (the clip's mean).

    (N, T, F) frame features only; shape and lengths kept, padding untouched.

    Example:
        >>> f = AudioBatch.from_clips([torch.ones(50, 16), torch.ones(20, 16)], 100)
        >>> out = SpecAugment()(f, torch.Generator().manual_seed(0))
        >>> bool((out.values[1, 20:] == 0).all()), out.lengths.tolist()
        (True, [50, 20])
    """

    def __init__(
        self,
        time_masks: int = 2,
        time_width: float = 0.1,
        freq_masks: int = 2,
        freq_width: int = 8,
        fill: str = "zero",
    ) -> None:
        if int(time_masks) < 0 or int(freq_masks) < 0:
            raise ValueError("the numbers of time and frequency masks must be ≥ 0.")
        if not 0.0 <= float(time_width) <= 1.0:
            raise ValueError(f"time_width is a fraction of the length in [0, 1], got {time_width}.")
        if int(freq_width) < 0:
            raise ValueError(f"freq_width is a number of bins ≥ 0, got {freq_width}.")
        if fill not in ("zero", "mean"):
            raise ValueError(f"fill must be 'zero' or 'mean', got {fill!r}.")
        self.time_masks = int(time_masks)
        self.time_width = float(time_width)
        self.freq_masks = int(freq_masks)
        self.freq_width = int(freq_width)
        self.fill = fill

    def sample(
        self, batch: AudioBatch, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(time_mask (N, T), freq_mask (N, F))`` bool."""
        _need_frames(batch, "SpecAugment", "compute a (log-mel) spectrogram first.")
        return spec_augment_masks(
            _lengths(batch),
            int(batch.values.shape[1]),
            int(batch.values.shape[2]),
            self.time_masks,
            self.time_width,
            self.freq_masks,
            self.freq_width,
            generator,
        )

    def __call__(self, batch: AudioBatch, generator: torch.Generator | None = None) -> AudioBatch:
        time_mask, freq_mask = self.sample(batch, generator)
        return spec_augment(batch, time_mask, freq_mask, self.fill)


# --------------------------------------------------------------------------- mixup


def mix(x: Tensor, partner: Tensor, lam: Tensor, domain: str = "ln") -> Tensor:
    """Mix ``x`` with ``partner`` (same shape, (N, ...)) with weight ``lam`` (N,) on the
    partner, in ``domain``:

    - ``"linear"`` (waveforms, linear spectra): ``(1-λ)·x + λ·x'``;
    - ``"ln"`` (natural-log power): BYOL-A's log-mixup-exp ``log((1-λ)·e^x + λ·e^x')``;
    - ``"db"``: the dB analogue ``10·log10((1-λ)·10^(x/10) + λ·10^(x'/10))``.

    The log forms are computed stably (``logaddexp``); λ = 0 returns ``x`` exactly.

    Example:
        >>> x, y = torch.zeros(1, 2), torch.full((1, 2), math.log(3.0))
        >>> mix(x, y, torch.tensor([0.5])).exp().tolist()  # (1 + 3) / 2
        [[2.0, 2.0]]
    """
    _check_domain(domain, ("ln", "db", "linear"))
    lam = lam.to(device=x.device, dtype=x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
    if domain == "linear":
        return (1 - lam) * x + lam * partner
    k = _LN10 / 10 if domain == "db" else 1.0
    a = x * k + torch.log1p(-lam)
    b = partner * k + torch.log(lam)
    return torch.logaddexp(a, b) / k


class Mixup(AudioView):
    """BYOL-A's mixup: each clip is mixed with a partner with weight λ ~ U(0, ``ratio``) on
    the partner (see :func:`mix`); waveforms are always mixed linearly, frame features in
    ``domain`` (``"ln"``: log-mixup-exp on a natural-log mel, ``"db"``, or ``"linear"``).

    Args:
        ratio: the largest mixing weight (BYOL-A: 0.4).
        memory: 0 — the partner is a random *other* clip of the batch; K > 0 — a random clip
            of a FIFO of the K most recent past clips (BYOL-A: 2048); the batch is added to
            the memory after mixing, and a first batch (empty memory) is returned unmixed.
            The memory makes the view stateful: the same seed gives the same view only from
            the same memory.
        domain: the features' domain.

    The output keeps each clip's length; the partner is cropped to it or, when shorter,
    repeated (tiled) to cover it. Shape kept, padding zero.

    Example:
        >>> b = AudioBatch.from_clips([torch.ones(4), torch.zeros(4)], sample_rate=1)
        >>> Mixup(ratio=0.0)(b).values.tolist()
        [[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]
    """

    def __init__(self, ratio: float = 0.4, memory: int = 0, domain: str = "ln") -> None:
        if not 0.0 <= float(ratio) <= 1.0:
            raise ValueError(f"the mixing ratio must lie in [0, 1], got {ratio}; BYOL-A uses 0.4.")
        if int(memory) < 0:
            raise ValueError(f"memory is a number of past clips ≥ 0, got {memory}.")
        self.ratio = float(ratio)
        self.memory = int(memory)
        self.domain = _check_domain(domain, ("ln", "db", "linear"))
        self._bank: Tensor | None = None  # (M, T_m, C)
        self._bank_lengths: Tensor | None = None

    def reset(self) -> None:
        """Empty the memory."""
        self._bank, self._bank_lengths = None, None

    @property
    def memory_size(self) -> int:
        """Clips in the memory now."""
        return 0 if self._bank is None else int(self._bank.shape[0])

    def _remember(self, x3: Tensor, lengths: Tensor) -> None:
        x3, lengths = x3.detach(), lengths.detach()
        if self._bank is None or self._bank_lengths is None:
            bank, bank_len = x3, lengths
        else:
            old = self._bank.to(device=x3.device, dtype=x3.dtype)
            t = max(int(old.shape[1]), int(x3.shape[1]))
            old = F.pad(old, (0, 0, 0, t - int(old.shape[1])))
            new = F.pad(x3, (0, 0, 0, t - int(x3.shape[1])))
            bank = torch.cat([old, new])
            bank_len = torch.cat([self._bank_lengths.to(x3.device), lengths])
        self._bank = bank[-self.memory :].clone()
        self._bank_lengths = bank_len[-self.memory :].clone()

    def __call__(self, batch: AudioBatch, generator: torch.Generator | None = None) -> AudioBatch:
        x = batch.values
        n, t = int(x.shape[0]), int(x.shape[1])
        lengths = _lengths(batch)
        x3 = _as3(x)
        lam = _uniform(n, 0.0, self.ratio, generator, x)
        if self.memory == 0:
            source, source_len = x3, lengths
            step = torch.randint(1, max(n, 2), (n,), generator=generator, device=x.device)
            partner_idx = torch.remainder(torch.arange(n, device=x.device) + step, max(n, 1))
        else:
            if self._bank is not None and self._bank.shape[2] != x3.shape[2]:
                raise ValueError(
                    f"Mixup's memory holds clips with {self._bank.shape[2]} bins but the batch "
                    f"has {x3.shape[2]}; call reset() when the features change."
                )
            if self._bank is None or self._bank_lengths is None or n == 0:
                self._remember(x3, lengths)
                return batch.with_values(_zero_pad(x.clone(), lengths), lengths)
            source = self._bank.to(device=x.device, dtype=x.dtype)
            source_len = self._bank_lengths.to(x.device)
            partner_idx = torch.randint(
                0, source.shape[0], (n,), generator=generator, device=x.device
            )
        p_len = source_len[partner_idx].clamp_min(1)
        pos = torch.remainder(torch.arange(t, device=x.device)[None, :], p_len[:, None])
        pos = pos.clamp_max(int(source.shape[1]) - 1)
        partner = source[partner_idx[:, None], pos]  # (N, T, C)
        domain = "linear" if batch.is_wave else self.domain
        out = _like(mix(x3, partner, lam, domain), x)
        if self.memory > 0:
            self._remember(x3, lengths)
        return batch.with_values(_zero_pad(out, lengths), lengths)

    def _fields(self) -> dict[str, Any]:
        return {"ratio": self.ratio, "memory": self.memory, "domain": self.domain}


# --------------------------------------------------------------------------- random resize crop


class RandomResizeCrop(AudioView):
    """BYOL-A's random resize crop on (N, T, F) frame features, per clip, vectorised with
    ``affine_grid``/``grid_sample``.

    Each clip's valid (len × F) spectrogram is placed at the centre of a zero "virtual"
    canvas ``virtual_crop_scale = (freq, time)`` times its size; a crop of
    ``(F·f, len·t)`` (f ~ U(``freq_scale``), t ~ U(``time_scale``), capped at the canvas)
    is taken at a uniform position inside the canvas and resized back to (len × F) by
    ``interpolation`` (``"bilinear"``, or ``"bicubic"`` as BYOL-A). The canvas is zero (BYOL-A
    pads with zeros: meant for normalised log-mel). Shape and lengths kept, padding zero.

    Example:
        >>> f = AudioBatch.from_clips([torch.randn(30, 8), torch.randn(20, 8)], 100)
        >>> out = RandomResizeCrop()(f, torch.Generator().manual_seed(0))
        >>> out.values.shape, out.lengths.tolist(), bool((out.values[1, 20:] == 0).all())
        (torch.Size([2, 30, 8]), [30, 20], True)
    """

    def __init__(
        self,
        virtual_crop_scale: tuple[float, float] = (1.0, 1.5),
        freq_scale: tuple[float, float] = (0.6, 1.5),
        time_scale: tuple[float, float] = (0.6, 1.5),
        interpolation: str = "bilinear",
    ) -> None:
        vf, vt = (float(v) for v in virtual_crop_scale)
        if vf < 1.0 or vt < 1.0:
            raise ValueError(
                f"virtual_crop_scale is the (freq, time) canvas size ≥ 1, got {virtual_crop_scale}."
            )
        self.virtual_crop_scale = (vf, vt)
        self.freq_scale = _pair(freq_scale, "freq_scale")
        self.time_scale = _pair(time_scale, "time_scale")
        if self.freq_scale[0] <= 0 or self.time_scale[0] <= 0:
            raise ValueError("freq_scale and time_scale must be > 0.")
        if interpolation not in ("bilinear", "bicubic", "nearest"):
            raise ValueError(
                f"interpolation must be 'bilinear', 'bicubic' or 'nearest', got {interpolation!r}."
            )
        self.interpolation = interpolation

    def sample(self, batch: AudioBatch, generator: torch.Generator | None = None) -> Tensor:
        """(N, 2, 3) affine matrices for ``affine_grid`` (x: time, y: frequency)."""
        _need_frames(batch, "RandomResizeCrop", "compute a (log-mel) spectrogram first.")
        x = batch.values
        n, t, f = (int(s) for s in x.shape)
        dt = x.dtype
        length = _lengths(batch).clamp_min(1).to(dt)
        bins = torch.full((n,), float(f), dtype=dt, device=x.device)
        theta = torch.zeros(n, 2, 3, dtype=dt, device=x.device)
        for row, size, total, virtual, scale in (
            (0, length, t, self.virtual_crop_scale[1], self.time_scale),
            (1, bins, f, self.virtual_crop_scale[0], self.freq_scale),
        ):
            canvas = size * virtual
            c = torch.minimum(size * _uniform(n, *scale, generator, x), canvas)
            u = -(canvas - size) / 2 + (canvas - c) * _uniform(n, 0.0, 1.0, generator, x)
            theta[:, row, row] = c / size
            theta[:, row, 2] = 2 * u / total + c / size - 1
        return theta

    def __call__(self, batch: AudioBatch, generator: torch.Generator | None = None) -> AudioBatch:
        theta = self.sample(batch, generator)
        x = batch.values
        n, t, f = (int(s) for s in x.shape)
        lengths = _lengths(batch)
        img = _zero_pad(x, lengths).transpose(1, 2)[:, None]  # (N, 1, F, T)
        grid = F.affine_grid(theta, [n, 1, f, t], align_corners=False)
        out = F.grid_sample(
            img, grid, mode=self.interpolation, padding_mode="zeros", align_corners=False
        )
        return batch.with_values(_zero_pad(out[:, 0].transpose(1, 2), lengths), lengths)


# --------------------------------------------------------------------------- compose / presets


class Compose(AudioView):
    """Apply ``views`` in order, passing the same generator along.

    Example:
        >>> b = AudioBatch.from_clips([torch.ones(4)], sample_rate=1)
        >>> Compose([Gain(20, 20), Gain(-20, -20)])(b).values.tolist()
        [[1.0, 1.0, 1.0, 1.0]]
    """

    def __init__(self, views: Sequence[Callable[..., AudioBatch]] = ()) -> None:
        self.views = list(views)

    def __call__(self, batch: AudioBatch, generator: torch.Generator | None = None) -> AudioBatch:
        for view in self.views:
            batch = view(batch, generator)
        return batch

    def __len__(self) -> int:
        return len(self.views)

    def __iter__(self) -> Iterator[Callable[..., AudioBatch]]:
        return iter(self.views)

    def __repr__(self) -> str:
        return f"Compose({self.views!r})"


_VIEW_CLASSES: dict[str, type[AudioView]] = {
    "random_crop": RandomCrop,
    "time_shift": TimeShift,
    "gain": Gain,
    "add_noise": AddNoise,
    "pitch_shift": PitchShift,
    "time_stretch": TimeStretch,
    "tempo_stretch": TempoStretch,
    "spec_augment": SpecAugment,
    "mixup": Mixup,
    "random_resize_crop": RandomResizeCrop,
}

AUDIO_VIEW_PRESETS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "none": [],
    "cola": [("random_crop", {"seconds": 0.96})],
    "byol_a": [
        ("mixup", {"ratio": 0.4, "memory": 2048}),
        ("random_resize_crop", {}),
    ],
    "speech": [
        ("pitch_shift", {"semitones": (-2.0, 2.0)}),
        ("time_shift", {"max_fraction": 0.2}),
        ("gain", {"min_db": -6.0, "max_db": 6.0}),
        ("add_noise", {"snr_db": (10.0, 30.0), "noise": "white"}),
    ],
    "speech_wide": [
        ("pitch_shift", {"semitones": (-4.0, 4.0)}),
        ("time_shift", {"max_fraction": 0.2}),
        ("gain", {"min_db": -6.0, "max_db": 6.0}),
        ("add_noise", {"snr_db": (10.0, 30.0), "noise": "white"}),
    ],
    "speech_voices": [
        ("pitch_shift", {"semitones": (-4.0, 4.0)}),
        ("tempo_stretch", {"rate": (0.8, 1.25)}),
        ("time_shift", {"max_fraction": 0.2}),
        ("gain", {"min_db": -6.0, "max_db": 6.0}),
        ("add_noise", {"snr_db": (10.0, 30.0), "noise": "white"}),
    ],
    "spec": [
        ("time_stretch", {"rate": (0.8, 1.25)}),
        ("spec_augment", {}),
        ("gain", {"min_db": -6.0, "max_db": 6.0}),
    ],
    "mfcc": [
        ("time_stretch", {"rate": (0.8, 1.25)}),
        ("spec_augment", {"freq_masks": 1, "freq_width": 2}),
    ],
    "masks": [("spec_augment", {"fill": "mean"})],
}
"""Presets: view name → constructor arguments, in order. ``"cola"``: one 0.96 s segment
(COLA: segments only; use :func:`random_segments` for the pair); ``"byol_a"``: Mixup(0.4,
memory 2048) → RandomResizeCrop, on normalised log-mel (the random linear fader is omitted);
``"speech"`` (waveforms): PitchShift ±2 → TimeShift → Gain ±6 dB → white noise at 10–30 dB
SNR (noise last, so the SNR is exact); ``"speech_wide"``: the same with PitchShift ±4
semitones (new voices: a pitch and speed range as wide as espeak-ng's voices span);
``"speech_voices"``: ``"speech_wide"`` with a TempoStretch 0.8–1.25 after the pitch shift, so
pitch and speaking rate vary independently;
``"spec"`` (features): TimeStretch → SpecAugment →
Gain; ``"mfcc"`` (MFCC frames): TimeStretch → SpecAugment with one mask of at most 2
coefficients (no gain: on MFCCs a level change moves c0 only); ``"masks"`` (features):
SpecAugment alone (2 time masks of ≤ 10% of the clip, 2 frequency masks of ≤ 8 bins, filled
with the clip's mean: log-mel frames before normalisation), e.g. a CLAP recipe's
``feature_views`` after waveform views."""


def _params(cls: type[AudioView]) -> set[str]:
    return set(inspect.signature(cls.__init__).parameters) - {"self"}


def audio_views(preset: str = "none", **overrides: Any) -> Compose:
    """The views of ``preset`` (see :data:`AUDIO_VIEW_PRESETS`) as a :class:`Compose`.

    Args:
        preset: ``"none"``, ``"cola"``, ``"byol_a"``, ``"speech"``, ``"speech_wide"``,
            ``"speech_voices"``, ``"spec"``, ``"mfcc"`` or ``"masks"``.
        **overrides: either a view's snake_case name (``gain``, ``add_noise``,
            ``pitch_shift``, ``time_shift``, ``time_stretch``, ``tempo_stretch``, ``spec_augment``, ``mixup``,
            ``random_resize_crop``, ``random_crop``) with a dict of constructor arguments
            merged over the preset's, or None/False to drop the view (a view the preset lacks
            is added: a ``random_crop`` at the front, any other at the end); or a constructor
            argument's name (``domain="db"``, ``ratio=0.2``, ...), given to every view of the
            preset that takes it (the per-view dicts win).

    Example:
        >>> audio_views("speech", add_noise={"snr_db": (0, 5)}, pitch_shift=None)
        Compose([TimeShift(max_fraction=0.2, mode='roll'), Gain(min_db=-6.0, max_db=6.0, domain='ln'), AddNoise(snr_db=(0.0, 5.0), noise='white')])
        >>> audio_views("byol_a", domain="db").views[0].domain
        'db'
    """
    if preset not in AUDIO_VIEW_PRESETS:
        raise ValueError(
            f"unknown audio view preset {preset!r}; valid presets: {sorted(AUDIO_VIEW_PRESETS)}."
        )
    per_view = {k: v for k, v in overrides.items() if k in _VIEW_CLASSES}
    shared = {k: v for k, v in overrides.items() if k not in _VIEW_CLASSES}
    steps = [(name, dict(kwargs)) for name, kwargs in AUDIO_VIEW_PRESETS[preset]]
    for name, value in per_view.items():
        if value is not None and value is not False and not isinstance(value, dict):
            raise ValueError(
                f"override {name}= must be a dict of {_VIEW_CLASSES[name].__name__} arguments, "
                f"or None to drop the view; got {value!r}."
            )
        if isinstance(value, dict) and name not in [n for n, _ in steps]:
            steps.insert(0 if name == "random_crop" else len(steps), (name, {}))
    steps = [(n, kw) for n, kw in steps if per_view.get(n, {}) not in (None, False)]
    accepted = set().union(*(_params(_VIEW_CLASSES[n]) for n, _ in steps)) if steps else set()
    unknown = sorted(set(shared) - accepted)
    if unknown:
        raise ValueError(
            f"unknown override(s) {unknown} for the {preset!r} views; pass a view name "
            f"{sorted(_VIEW_CLASSES)} with a dict of arguments (or None to drop it), or an "
            f"argument one of the preset's views takes: {sorted(accepted)}."
        )
    views: list[AudioView] = []
    for name, kwargs in steps:
        params = _params(_VIEW_CLASSES[name])
        kwargs = {**kwargs, **{k: v for k, v in shared.items() if k in params}}
        value = per_view.get(name) or {}
        kwargs = {**kwargs, **value}
        if name == "random_crop" and "length" in value:
            kwargs.pop("seconds", None)
        if name == "random_crop" and "seconds" in value:
            kwargs.pop("length", None)
        views.append(_VIEW_CLASSES[name](**kwargs))
    return Compose(views)
