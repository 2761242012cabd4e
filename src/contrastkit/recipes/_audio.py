"""What the audio recipes share (COLA, BYOL-A, CLAP): the batch's audio field, checked, and
its frame features.

A batch's ``"audio"`` is an :class:`~contrastkit.data.audio.AudioBatch` of waveforms (N, T)
or frame features (N, T, F). Views that act on spectrograms (SpecAugment, mixup, resize
crops) need features, so :func:`features_of` turns waveforms into them with the encoder's own
front end (``encoder.frontend``, a :class:`~contrastkit.data.spectral.LogMel`), without
gradients; the encoder passes features through its front end unchanged, so a recipe may hand
it either.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from contrastkit.data.audio import AudioBatch

__all__ = ["audio_input", "encoder_dtype", "features_of"]


def encoder_dtype(encoder: nn.Module) -> torch.dtype:
    """The dtype of the encoder's first floating parameter (float32 when it has none)."""
    for p in encoder.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def audio_input(batch: dict[str, Any], recipe: str) -> AudioBatch:
    """``batch["audio"]``, checked (a clear error for anything else)."""
    audio = batch.get("audio")
    if not isinstance(audio, AudioBatch):
        raise TypeError(
            f"the {recipe} recipe trains on audio: the batch needs an 'audio' field holding an "
            f"AudioBatch (contrastkit.data.audio), got {type(audio).__name__}; train it with "
            "--data fsdd, spoken_words, a folder of audio files or a CSV of clips and captions."
        )
    return audio


def features_of(encoder: nn.Module, audio: AudioBatch) -> AudioBatch:
    """(N, T, F) frame features of ``audio``: itself when it holds features, else the
    encoder's front end applied to its waveforms (no gradient)."""
    if not audio.is_wave:
        return audio
    frontend = getattr(encoder, "frontend", None)
    if frontend is None:
        raise ValueError(
            "these audio views act on spectrogram frames, but the batch holds waveforms and the "
            "encoder has no front end; build the encoder with frontend=LogMel(...).config, or "
            "give frame features (log-mel, MFCC)."
        )
    with torch.no_grad():
        return frontend(audio.to(audio.device, dtype=torch.float32))
