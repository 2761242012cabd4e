"""Audio encoders: clips of frame features (log-mel) → clip embeddings (N, out_dim).

Both encoders take an :class:`~contrastkit.data.audio.AudioBatch` of frame features
``values`` (N, T, F) with ``lengths`` (N,) valid frames (right-padded), or a plain (N, T, F)
Tensor (every clip full length), and return (N, out_dim). Built with ``frontend`` (a
:class:`contrastkit.data.spectral.LogMel` config dict) they also take **waveform** batches
(N, T) and compute the log-mel features themselves, so an exported encoder embeds raw audio.

Padding never changes an embedding: every layer that could see past a clip's end sees zeros
there (padded frames are re-zeroed after each block and pooling is over the valid frames only),
so in eval mode a clip alone and the same clip inside a batch padded to a longer T embed the
same (to float rounding). The CNN's BatchNorm also takes its training-mode batch statistics
over the valid frames only.

- :class:`AudioCNN`: BYOL-A's encoder (Niizumi et al. 2021, "BYOL for Audio: Self-Supervised
  Learning for General-Purpose Audio Representation"; the AudioNTT2020 network): three
  Conv3×3–BN–ReLU–MaxPool2×2 blocks on the (F, T) log-mel image, a two-layer MLP per frame and
  the sum of the temporal mean and max (5.3 M parameters at the defaults).
- :class:`AudioTransformer`: an AST/SSAST-style Transformer (Gong et al. 2021, "AST: Audio
  Spectrogram Transformer"; Gong et al. 2022, "SSAST"), with patches of ``patch_frames``
  whole frames (all mel bins) as in SSAST's frame-based variant, sinusoidal positions, a
  pre-norm ``nn.TransformerEncoder`` with a key padding mask and masked mean (or CLS) pooling.

Example:
    >>> import torch
    >>> from contrastkit.data.audio import AudioBatch
    >>> batch = AudioBatch.from_clips([torch.randn(30, 16), torch.randn(9, 16)], sample_rate=100)
    >>> cnn = AudioCNN(n_features=16, channels=(8, 8), hidden=32).eval()
    >>> cnn(batch).shape, cnn.out_dim
    (torch.Size([2, 32]), 32)
    >>> vit = AudioTransformer(n_features=16, dim=32, layers=1, heads=2, out_dim=8).eval()
    >>> vit(batch).shape, vit(torch.randn(3, 20, 16)).shape
    (torch.Size([2, 8]), torch.Size([3, 8]))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit._checks import tracing
from contrastkit.data.audio import AudioBatch

__all__ = ["AudioCNN", "AudioTransformer", "audio_cnn", "audio_transformer"]

AudioInput = AudioBatch | Tensor


def _wide(x: Tensor) -> Tensor:
    """``x`` in float32 at least (bf16/fp16 → fp32; fp64 stays fp64)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _stat(value: float | Sequence[float] | None, n: int, name: str) -> list[float] | float | None:
    """Validate a ``feature_mean``/``feature_std`` argument: None, a scalar or ``n`` floats."""
    if value is None:
        return None
    if isinstance(value, Tensor):
        value = value.tolist()
    if isinstance(value, int | float):
        out: list[float] | float = float(value)
        vals = [out]
    else:
        vals = [float(v) for v in value]
        if len(vals) != n:
            raise ValueError(
                f"{name} has {len(vals)} values but the encoder takes {n} features per frame; "
                f"give one per feature (e.g. the training set's per-mel-bin statistics) or one "
                f"scalar."
            )
        out = vals
    if not all(math.isfinite(v) for v in vals):
        raise ValueError(f"{name} must be finite, got {value}.")
    if name == "feature_std" and any(v <= 0 for v in vals):
        raise ValueError(f"feature_std must be > 0, got {value}.")
    return out


def _lengths_mask(lengths: Tensor, t: int) -> Tensor:
    """(N,) lengths → (N, t) bool, True at valid positions."""
    return torch.arange(t, device=lengths.device)[None, :] < lengths[:, None]


def _masked_mean(h: Tensor, mask: Tensor) -> Tensor:
    """(N, T, D) and (N, T) bool → (N, D) mean over the valid frames, in float32 at least."""
    h = _wide(h)
    m = mask.to(h.dtype).unsqueeze(-1)
    return (h * m).sum(1) / m.sum(1).clamp(min=1.0)


def _masked_max(h: Tensor, mask: Tensor) -> Tensor:
    """(N, T, D) and (N, T) bool → (N, D) max over the valid frames, in float32 at least."""
    h = _wide(h)
    return h.masked_fill(~mask.unsqueeze(-1), torch.finfo(h.dtype).min).amax(1)


#: Per-clip input normalisations (``clip_norm``): none, mean (CMN), mean and variance (CMVN).
CLIP_NORMS = ("none", "mean", "meanvar")


def _clip_normalise(values: Tensor, mask: Tensor, mode: str, eps: float = 1e-2) -> Tensor:
    """Per-clip, per-feature normalisation over each clip's valid frames: subtract the clip's
    mean frame ("mean": cepstral mean normalisation, which removes a fixed channel or a
    speaker's average spectral shape) and for "meanvar" divide by the clip's std (floored at
    ``eps``: one-frame clips become zero). ``values`` (N, T, F) zero past each clip's end,
    ``mask`` (N, T) bool → (N, T, F), zero past each clip's end."""
    m = mask.unsqueeze(-1).to(values.dtype)
    count = m.sum(1, keepdim=True).clamp_min(1.0)
    mean = values.sum(1, keepdim=True) / count
    out = (values - mean) * m
    if mode == "meanvar":
        std = ((out.float().pow(2).sum(1, keepdim=True) / count.float()).sqrt()).clamp_min(eps)
        out = out / std.to(out.dtype)
    return out


class _AudioInput(nn.Module):
    """What both encoders share: the optional log-mel front-end, input checks, feature
    normalisation and re-zeroing of the padding."""

    def __init__(
        self,
        n_features: int,
        feature_mean: float | Sequence[float] | None,
        feature_std: float | Sequence[float] | None,
        frontend: dict[str, Any] | None,
        clip_norm: str = "none",
    ) -> None:
        super().__init__()
        if clip_norm not in CLIP_NORMS:
            raise ValueError(
                f"unknown clip_norm {clip_norm!r}; use one of {CLIP_NORMS} ('mean': subtract "
                f"each clip's mean frame, cepstral mean normalisation; 'meanvar': also divide by "
                f"each clip's per-feature std)."
            )
        self.clip_norm = clip_norm
        if int(n_features) < 1:
            raise ValueError(f"n_features must be ≥ 1, got {n_features}.")
        self.n_features = int(n_features)
        self.feature_mean = _stat(feature_mean, self.n_features, "feature_mean")
        self.feature_std = _stat(feature_std, self.n_features, "feature_std")
        mean = None if self.feature_mean is None else torch.tensor(self.feature_mean)
        std = None if self.feature_std is None else torch.tensor(self.feature_std)
        self.register_buffer("_mean", mean, persistent=False)
        self.register_buffer("_std", std, persistent=False)
        self.frontend: nn.Module | None = None
        self.frontend_config: dict[str, Any] | None = None
        if frontend is not None:
            if not isinstance(frontend, dict):
                raise TypeError(
                    f"frontend must be a LogMel config dict (e.g. {{'n_mels': 64}}) or None, "
                    f"got {type(frontend).__name__}; pass LogMel(...).config."
                )
            from contrastkit.data.spectral import LogMel

            self.frontend = LogMel(**frontend)
            self.frontend_config = dict(getattr(self.frontend, "config", frontend))
            got = int(getattr(self.frontend, "out_features", self.frontend_config.get("n_mels")))
            if got != self.n_features:
                raise ValueError(
                    f"the frontend gives {got} mel bins per frame but n_features="
                    f"{self.n_features}; build the encoder with n_features={got} or the frontend "
                    f"with n_mels={self.n_features}."
                )

    def config(self) -> dict[str, Any]:
        return {
            "feature_mean": self.feature_mean,
            "feature_std": self.feature_std,
            "frontend": None if self.frontend_config is None else dict(self.frontend_config),
            "clip_norm": self.clip_norm,
        }

    def forward(self, x: AudioInput, dtype: torch.dtype, owner: str) -> tuple[Tensor, Tensor]:
        """An AudioBatch or Tensor → (values (N, T, F) of ``dtype``, normalised, zero past each
        clip's end and cut to the longest clip; lengths (N,) int64 on the values' device)."""
        if isinstance(x, Tensor):
            if x.dim() == 3 or (x.dim() == 2 and self.frontend is not None):
                rate = 0.0 if self.frontend is None else self._rate()
                full = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
                x = AudioBatch(x, full, rate)
            else:
                raise ValueError(
                    f"{owner} takes frame features (N, T, F={self.n_features}) or an AudioBatch, "
                    f"got a Tensor of shape {tuple(x.shape)}; "
                    + (
                        "waveforms need a frontend: build the encoder with frontend=LogMel(...)"
                        ".config, or compute log-mel features first."
                        if x.dim() == 2
                        else "add the batch and frame dimensions."
                    )
                )
        if not isinstance(x, AudioBatch):
            raise TypeError(
                f"{owner} takes an AudioBatch or a (N, T, F) Tensor, got {type(x).__name__}; "
                f"build one with AudioBatch.from_clips(clips, sample_rate)."
            )
        if x.is_wave:
            if self.frontend is None:
                raise ValueError(
                    f"{owner} got waveforms (N, T) = {tuple(x.values.shape)} but has no frontend; "
                    f"build it with frontend=LogMel(...).config (contrastkit.data.spectral) to "
                    f"embed raw audio, or turn the clips into (N, T, {self.n_features}) log-mel "
                    f"features first."
                )
            # the frontend checks the sample rate (and says how to resample)
            x = self.frontend(x.with_values(x.values.to(dtype)))
        values = x.values
        if values.shape[-1] != self.n_features:
            raise ValueError(
                f"{owner} expected {self.n_features} mel bins, got {values.shape[-1]} features "
                f"per frame; build the encoder with n_features={values.shape[-1]} or "
                f"compute the features with n_mels={self.n_features}."
            )
        lengths = x.lengths.to(values.device)
        if tracing():  # an exported graph takes batches already cut to their longest clip
            t = values.shape[1]
        elif lengths.numel() and bool(((lengths < 1) | (lengths > values.shape[1])).any()):
            bad = int(((lengths < 1) | (lengths > values.shape[1])).nonzero()[0])
            raise ValueError(
                f"clip {bad} has length {int(lengths[bad])} but the batch has "
                f"{values.shape[1]} frames; every clip needs 1..T valid frames (drop empty clips "
                f"before encoding)."
            )
        else:
            t = int(lengths.max()) if lengths.numel() else values.shape[1]
        values = values[:, :t].to(dtype)
        if self._mean is not None:
            values = values - self._mean.to(dtype)
        if self._std is not None:
            values = values / self._std.to(dtype)
        mask = _lengths_mask(lengths, t)
        values = values * mask.unsqueeze(-1).to(dtype)
        if self.clip_norm != "none":
            values = _clip_normalise(values, mask, self.clip_norm)
        return values, lengths

    def _rate(self) -> float:
        assert self.frontend_config is not None
        return float(self.frontend_config.get("sample_rate", 16000))


class _MaskedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d on (N, C, F, T) whose training-mode statistics are taken over the valid
    frames only (``frames`` (N, T) bool), so padding never shifts them; eval mode and
    full-length batches are plain BatchNorm2d (same state_dict)."""

    def forward(self, x: Tensor, frames: Tensor | None = None) -> Tensor:  # type: ignore[override]
        use_batch = self.training or not self.track_running_stats
        if not use_batch or frames is None or bool(frames.all()):
            return super().forward(x)
        xf = _wide(x)
        m = frames[:, None, None, :].to(xf.dtype)
        count = m.sum() * x.shape[2]
        mean = (xf * m).sum((0, 2, 3)) / count
        var = (((xf - mean[None, :, None, None]) ** 2) * m).sum((0, 2, 3)) / count
        if self.training and self.track_running_stats:
            momentum = 0.1 if self.momentum is None else float(self.momentum)
            with torch.no_grad():
                unbiased = var * count / (count - 1).clamp(min=1)
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
                self.num_batches_tracked.add_(1)
        y = (xf - mean[None, :, None, None]) * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * _wide(self.weight)[None, :, None, None] + _wide(self.bias)[None, :, None, None]
        return y.to(x.dtype)


class AudioCNN(nn.Module):
    """BYOL-A's audio encoder (Niizumi et al. 2021): log-mel frames → one clip embedding.

    The (F, T) log-mel image of each clip goes through ``len(channels)`` blocks
    Conv3×3–BatchNorm–ReLU–MaxPool2×2 (F and T halve at each), the (C·F', T') map is read as
    T' frame vectors of width C·F', each goes through Linear(C·F', hidden)–ReLU–Dropout–
    Linear(hidden, hidden)–ReLU, and the clip embedding is the temporal mean plus the temporal
    max (``pooling="mean+max"``, BYOL-A's) over the valid frames.

    Lengths: each pooling halves a clip's valid length **rounding up** (``ceil(L / 2)``; an odd
    last frame is pooled with the zero padding, which equals the frame itself after the ReLU),
    so every clip keeps ≥ 1 frame: clips of any length ≥ 1, even shorter than
    ``2 ** len(channels)`` frames, work. Padded frames are zeroed after every block, and
    BatchNorm's training statistics are taken over the valid frames only.

    Args:
        n_features: mel bins per frame F (≥ ``2 ** len(channels)``; F' = F // 2**len(channels)).
        channels: output channels of each conv block (BYOL-A: three blocks of 64).
        hidden: width of the frame MLP and of the embedding (BYOL-A: 2048; its d).
        dropout: dropout between the two frame layers (BYOL-A: 0.3).
        pooling: "mean+max" (the sum; BYOL-A), "mean" or "max" over the valid frames.
        feature_mean, feature_std: input normalisation ``(x - mean) / std`` (one scalar or F
            floats each, e.g. the training set's statistics, as BYOL-A's pre-normalisation);
            None = none.
        frontend: None, or a :class:`contrastkit.data.spectral.LogMel` config dict: waveform
            batches are turned into log-mel features by ``LogMel(**frontend)`` first.
        clip_norm: "none", "mean" (subtract each clip's mean frame over its valid frames:
            cepstral mean normalisation, against fixed channel and speaker differences) or
            "meanvar" (also divide by each clip's per-feature std), after ``feature_mean/std``.

    Shapes: AudioBatch of (N, T, F) frames (lengths (N,)), a (N, T, F) Tensor (full-length
    clips), or with a frontend an AudioBatch of (N, T) waveforms → (N, hidden) float (float32
    under bf16 autocast).

    Example:
        >>> import torch
        >>> from contrastkit.data.audio import AudioBatch
        >>> enc = AudioCNN(n_features=16, channels=(8, 8), hidden=32).eval()
        >>> clip = torch.randn(7, 16)
        >>> batch = AudioBatch.from_clips([torch.randn(40, 16), clip], sample_rate=100)
        >>> torch.allclose(enc(batch)[1], enc(clip[None])[0], atol=1e-5)
        True
        >>> AudioCNN(**enc.config).out_dim
        32
    """

    def __init__(
        self,
        n_features: int = 64,
        channels: Sequence[int] = (64, 64, 64),
        hidden: int = 2048,
        dropout: float = 0.3,
        pooling: str = "mean+max",
        feature_mean: float | Sequence[float] | None = None,
        feature_std: float | Sequence[float] | None = None,
        frontend: dict[str, Any] | None = None,
        clip_norm: str = "none",
    ) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if not channels or any(c < 1 for c in channels):
            raise ValueError(f"channels must be ≥ 1 block of ≥ 1 channels, got {channels}.")
        if pooling not in ("mean+max", "mean", "max"):
            raise ValueError(f"unknown pooling {pooling!r}; use 'mean+max', 'mean' or 'max'.")
        if int(hidden) < 1 or not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"need hidden ≥ 1 and 0 ≤ dropout < 1, got {hidden}, {dropout}.")
        f_out = int(n_features) >> len(channels)
        if f_out < 1:
            raise ValueError(
                f"{len(channels)} pooling blocks need n_features ≥ {2 ** len(channels)} mel bins, "
                f"got {n_features}; use more mel bins or fewer channels."
            )
        self.input = _AudioInput(n_features, feature_mean, feature_std, frontend, clip_norm)
        self.n_features = self.input.n_features
        convs: list[nn.Module] = []
        norms: list[nn.Module] = []
        c_in = 1
        for c in channels:
            convs.append(nn.Conv2d(c_in, c, 3, padding=1))
            norms.append(_MaskedBatchNorm2d(c))
            c_in = c
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(norms)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc = nn.Sequential(
            nn.Linear(channels[-1] * f_out, int(hidden)),
            nn.ReLU(),
            nn.Dropout(float(dropout)),
            nn.Linear(int(hidden), int(hidden)),
            nn.ReLU(),
        )
        self.pooling = pooling
        self.out_dim = int(hidden)
        self.config: dict[str, Any] = {
            "n_features": self.n_features,
            "channels": channels,
            "hidden": int(hidden),
            "dropout": float(dropout),
            "pooling": pooling,
            **self.input.config(),
        }

    @property
    def frontend(self) -> nn.Module | None:
        """The log-mel front end applied to waveforms (None: the encoder takes frames only)."""
        return self.input.frontend

    def forward(self, x: AudioInput) -> Tensor:
        """AudioBatch / (N, T, F) Tensor → (N, out_dim) clip embeddings."""
        values, lengths = self.input(x, self.fc[0].weight.dtype, "AudioCNN")
        h = values.transpose(1, 2).unsqueeze(1)  # (N, 1, F, T)
        for conv, norm in zip(self.convs, self.norms):
            frames = _lengths_mask(lengths, h.shape[-1])
            h = torch.relu(norm(conv(h), frames))
            h = h * frames[:, None, None, :].to(h.dtype)  # padding back to zero
            h = F.pad(h, (0, h.shape[-1] % 2))  # ceil: an odd last frame pools with a zero
            h = self.pool(h)  # frames past ceil(L/2) pool zeros only: they stay zero
            lengths = (lengths + 1) // 2
        n, c, f, t = h.shape
        h = self.fc(h.permute(0, 3, 1, 2).reshape(n, t, c * f))  # (N, T', hidden)
        mask = _lengths_mask(lengths, t)
        if self.pooling == "mean":
            return _masked_mean(h, mask)
        if self.pooling == "max":
            return _masked_max(h, mask)
        return _masked_mean(h, mask) + _masked_max(h, mask)

    def extra_repr(self) -> str:
        return f"pooling={self.pooling!r}, out_dim={self.out_dim}"


def _sinusoids(n: int, dim: int) -> Tensor:
    """(n, dim) sinusoidal positions (Vaswani et al. 2017): sin on even, cos on odd columns."""
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    table = torch.zeros(n, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return table.float()


class AudioTransformer(nn.Module):
    """An AST/SSAST-style Transformer on log-mel frames → one clip embedding.

    Every ``patch_frames`` consecutive frames (all F mel bins) form one patch (SSAST's
    frame-based patches); patches go through Linear(patch_frames·F, dim), get sinusoidal
    positions, and a pre-norm ``nn.TransformerEncoder`` (GELU, batch-first) attends over each
    clip's valid patches only (key padding mask from the lengths). The embedding is the masked
    mean of the patch states (``pooling="mean"``) or a learned CLS token's state
    (``pooling="cls"``), then LayerNorm, then Linear(dim, out_dim) when ``out_dim`` is given.

    Lengths: a clip of L frames has ``ceil(L / patch_frames)`` patches (its last patch is
    completed with zero frames), so clips of any length ≥ 1 work; clips longer than
    ``max_frames`` raise an error (crop them, or build with a larger ``max_frames``).

    Args:
        n_features: mel bins per frame F.
        dim: Transformer width. layers: encoder layers. heads: attention heads (divide dim).
        ff_mult: feed-forward width ``ff_mult · dim``. dropout: in the layers and on the input.
        patch_frames: frames per patch (1 = one token per frame).
        max_frames: the longest clip in frames (the position table's size).
        pooling: "mean" or "cls".
        feature_mean, feature_std: input normalisation ``(x - mean) / std`` (scalar or F floats).
        frontend: None, or a :class:`contrastkit.data.spectral.LogMel` config dict (then
            waveform batches are embedded too).
        out_dim: a final linear map to this width (default none: out_dim = dim).
        clip_norm: "none", "mean" (per-clip mean normalisation over the valid frames) or
            "meanvar" (mean and variance); see :class:`AudioCNN`.

    Shapes: AudioBatch of (N, T, F) frames (lengths (N,)), a (N, T, F) Tensor (full-length
    clips), or with a frontend an AudioBatch of (N, T) waveforms → (N, out_dim) float (float32
    under bf16 autocast).

    Example:
        >>> import torch
        >>> enc = AudioTransformer(n_features=8, dim=16, layers=1, heads=2, pooling="cls")
        >>> enc.eval()(torch.randn(2, 11, 8)).shape, enc.out_dim
        (torch.Size([2, 16]), 16)
    """

    def __init__(
        self,
        n_features: int = 64,
        dim: int = 192,
        layers: int = 4,
        heads: int = 4,
        ff_mult: int = 4,
        dropout: float = 0.1,
        patch_frames: int = 2,
        max_frames: int = 1024,
        pooling: str = "mean",
        feature_mean: float | Sequence[float] | None = None,
        feature_std: float | Sequence[float] | None = None,
        frontend: dict[str, Any] | None = None,
        out_dim: int | None = None,
        clip_norm: str = "none",
    ) -> None:
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"unknown pooling {pooling!r}; use 'mean' or 'cls'.")
        if int(dim) < 2 or int(layers) < 1 or int(heads) < 1 or int(dim) % int(heads):
            raise ValueError(
                f"need dim ≥ 2, layers ≥ 1 and heads dividing dim, got dim={dim}, "
                f"layers={layers}, heads={heads}; e.g. dim=192, heads=4."
            )
        if int(patch_frames) < 1 or int(max_frames) < 1 or int(ff_mult) < 1:
            raise ValueError(
                f"need patch_frames, max_frames and ff_mult ≥ 1, got {patch_frames}, "
                f"{max_frames}, {ff_mult}."
            )
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        self.input = _AudioInput(n_features, feature_mean, feature_std, frontend, clip_norm)
        self.n_features = self.input.n_features
        self.patch_frames = int(patch_frames)
        self.max_frames = int(max_frames)
        self.pooling = pooling
        d = int(dim)
        self.proj = nn.Linear(self.patch_frames * self.n_features, d)
        n_patches = -(-self.max_frames // self.patch_frames)
        self.register_buffer("_pos", _sinusoids(n_patches, d), persistent=False)
        self.cls = nn.Parameter(torch.randn(1, 1, d) * 0.02) if pooling == "cls" else None
        self.drop = nn.Dropout(float(dropout))
        layer = nn.TransformerEncoderLayer(
            d,
            int(heads),
            dim_feedforward=int(ff_mult) * d,
            dropout=float(dropout),
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, int(layers), enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, int(out_dim)) if out_dim else None
        self.out_dim = int(out_dim) if out_dim else d
        self.config: dict[str, Any] = {
            "n_features": self.n_features,
            "dim": d,
            "layers": int(layers),
            "heads": int(heads),
            "ff_mult": int(ff_mult),
            "dropout": float(dropout),
            "patch_frames": self.patch_frames,
            "max_frames": self.max_frames,
            "pooling": pooling,
            **self.input.config(),
            "out_dim": int(out_dim) if out_dim else None,
        }

    @property
    def frontend(self) -> nn.Module | None:
        """The log-mel front end applied to waveforms (None: the encoder takes frames only)."""
        return self.input.frontend

    def forward(self, x: AudioInput) -> Tensor:
        """AudioBatch / (N, T, F) Tensor → (N, out_dim) clip embeddings."""
        values, lengths = self.input(x, self.proj.weight.dtype, "AudioTransformer")
        n, t, f = values.shape
        if t > self.max_frames:
            raise ValueError(
                f"a clip has {t} frames but the AudioTransformer was built with max_frames="
                f"{self.max_frames}; crop the clips or build it with max_frames ≥ {t}."
            )
        p = self.patch_frames
        values = F.pad(values, (0, 0, 0, (-t) % p))
        patches = values.reshape(n, -1, p * f)  # (N, P, p·F)
        lengths = (lengths + p - 1) // p
        mask = _lengths_mask(lengths, patches.shape[1])
        h = self.proj(patches) + self._pos[: patches.shape[1]].to(patches.dtype)
        if self.cls is not None:
            h = torch.cat([self.cls.to(h.dtype).expand(n, 1, -1), h], dim=1)
            mask = torch.cat([mask.new_ones(n, 1), mask], dim=1)
        h = self.encoder(self.drop(h), src_key_padding_mask=~mask)
        pooled = _wide(h[:, 0]) if self.cls is not None else _masked_mean(h, mask)
        out = self.norm(pooled)
        return _wide(self.head(out)) if self.head is not None else _wide(out)

    def extra_repr(self) -> str:
        return f"patch_frames={self.patch_frames}, pooling={self.pooling!r}"


def audio_cnn(**config: Any) -> AudioCNN:
    """Build :class:`AudioCNN` from its keyword configuration (the registry's factory).

    Example:
        >>> audio_cnn(n_features=32, hidden=128).out_dim
        128
    """
    return AudioCNN(**config)


def audio_transformer(**config: Any) -> AudioTransformer:
    """Build :class:`AudioTransformer` from its keyword configuration (the registry's factory).

    Example:
        >>> audio_transformer(n_features=32, dim=64, layers=1, out_dim=16).out_dim
        16
    """
    return AudioTransformer(**config)
