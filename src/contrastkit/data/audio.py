"""Audio rows: :class:`AudioBatch` (variable-length clips, right-padded, with their lengths),
its field kind ``"audio"``, and :class:`AudioSet` (clips + labels, captions and groups).

An audio batch holds either **waveforms**, ``values`` (N, T) float at ``sample_rate`` Hz, or
**frame features** (log-mel, MFCC), ``values`` (N, T, F) float at ``sample_rate`` frames per
second; ``lengths`` (N,) int64 counts each clip's valid samples or frames (the rest is zero
padding). The trainer, gradient caching and gathering move, select and concatenate it through
its kind, so recipes never look at the padding:

    >>> import torch
    >>> from contrastkit.data.fields import kind_of
    >>> b = AudioBatch.from_clips([torch.ones(5), torch.ones(3)], sample_rate=16000)
    >>> b.values.shape, b.lengths.tolist(), b.mask().sum().item()
    (torch.Size([2, 5]), [5, 3], 8)
    >>> kind = kind_of(b)
    >>> kind.name, kind.select(b, torch.tensor([1])).values.shape
    ('audio', torch.Size([1, 3]))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from contrastkit.data.fields import FIELD_KINDS, FieldKind, register_kind

__all__ = ["AudioBatch", "AudioKind", "AudioSet", "pad_clips"]


def pad_clips(clips: Sequence[Tensor], length: int | None = None) -> tuple[Tensor, Tensor]:
    """Right-pad clips of shape (T_i,) or (T_i, F) with zeros to one (N, T[, F]) tensor.

    Args:
        clips: N tensors, all 1-D (waveforms) or all 2-D with one F (frame features).
        length: the padded length T (default: the longest clip); longer clips are cut.

    Returns:
        (values, lengths): (N, T) or (N, T, F) float, and (N,) int64 valid lengths.
    """
    if len(clips) == 0:
        raise ValueError("pad_clips needs at least one clip.")
    dims = {c.dim() for c in clips}
    if dims not in ({1}, {2}):
        raise ValueError(
            f"clips must be all 1-D waveforms (T,) or all 2-D frames (T, F); got dims {dims}."
        )
    lengths = torch.tensor([int(c.shape[0]) for c in clips], dtype=torch.long)
    t = int(lengths.max()) if length is None else int(length)
    lengths = lengths.clamp_max(t)
    tail = tuple(clips[0].shape[1:])
    dtype = clips[0].dtype if clips[0].is_floating_point() else torch.float32
    out = torch.zeros((len(clips), t, *tail), dtype=dtype, device=clips[0].device)
    for i, c in enumerate(clips):
        n = int(lengths[i])
        out[i, :n] = c[:n]
    return out, lengths


@dataclass
class AudioBatch:
    """N clips, right-padded.

    Attributes:
        values: (N, T) float waveforms or (N, T, F) float frame features (log-mel, MFCC).
        lengths: (N,) int64 valid samples (waveforms) or frames (features) of each clip.
        sample_rate: samples per second (waveforms) or frames per second (features).
    """

    values: Tensor
    lengths: Tensor
    sample_rate: float

    def __post_init__(self) -> None:
        if self.values.dim() not in (2, 3):
            raise ValueError(
                f"AudioBatch values must be (N, T) waveforms or (N, T, F) frames; got shape "
                f"{tuple(self.values.shape)}."
            )
        self.lengths = torch.as_tensor(self.lengths, dtype=torch.long)
        if self.lengths.shape != (self.values.shape[0],):
            raise ValueError(
                f"AudioBatch lengths must be ({self.values.shape[0]},), one per clip; got "
                f"{tuple(self.lengths.shape)}."
            )

    @classmethod
    def from_clips(
        cls, clips: Sequence[Tensor], sample_rate: float, length: int | None = None
    ) -> AudioBatch:
        """Clips (T_i,) or (T_i, F) → one padded batch (see :func:`pad_clips`)."""
        values, lengths = pad_clips(clips, length)
        return cls(values, lengths, sample_rate)

    @property
    def is_wave(self) -> bool:
        """True for (N, T) waveforms, False for (N, T, F) frame features."""
        return self.values.dim() == 2

    @property
    def device(self) -> torch.device:
        return self.values.device

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def mask(self) -> Tensor:
        """(N, T) bool: True at valid samples/frames."""
        t = torch.arange(self.values.shape[1], device=self.values.device)
        return t[None, :] < self.lengths.to(self.values.device)[:, None]

    def clips(self) -> list[Tensor]:
        """The clips without their padding: N tensors (T_i,) or (T_i, F)."""
        return [v[: int(n)] for v, n in zip(self.values, self.lengths)]

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> AudioBatch:
        values = self.values.to(device, non_blocking=True)
        if dtype is not None:
            values = values.to(dtype)
        return AudioBatch(values, self.lengths.to(device), self.sample_rate)

    def select(self, index: Tensor) -> AudioBatch:
        """Clips ``index`` (1-D LongTensor), padded to their own longest clip."""
        index = torch.as_tensor(index, dtype=torch.long).to(self.values.device)
        lengths = self.lengths.to(self.values.device)[index]
        t = int(lengths.max()) if lengths.numel() else 0
        return AudioBatch(self.values[index, :t], lengths, self.sample_rate)

    def with_values(self, values: Tensor, lengths: Tensor | None = None) -> AudioBatch:
        """The same clips with new values (a view's output), same rate."""
        return AudioBatch(values, self.lengths if lengths is None else lengths, self.sample_rate)


class AudioKind(FieldKind):
    """Rows are the clips of an :class:`AudioBatch` (``name="audio"``); single rows to
    collate are 1-D waveforms or 2-D frame tensors (padded to the longest), or one-clip
    batches."""

    name = "audio"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, AudioBatch)

    def collate(self, rows: Sequence[Any]) -> AudioBatch:
        if rows and isinstance(rows[0], AudioBatch):
            return self.cat(rows)
        raise TypeError(
            "audio rows collate from AudioBatch values; build one with "
            "AudioBatch.from_clips(clips, sample_rate)."
        )

    def to(self, value: AudioBatch, device: torch.device) -> AudioBatch:
        return value.to(device)

    def select(self, value: AudioBatch, index: Tensor) -> AudioBatch:
        return value.select(index)

    def size(self, value: AudioBatch) -> int:
        return len(value)

    def cat(self, values: Sequence[AudioBatch]) -> AudioBatch:
        values = list(values)
        rates = {v.sample_rate for v in values}
        if len(rates) != 1:
            raise ValueError(f"cannot concatenate audio batches of different rates {rates}.")
        t = max(int(v.values.shape[1]) for v in values)
        padded = []
        for v in values:
            pad = t - int(v.values.shape[1])
            x = v.values
            if pad:
                shape = (x.shape[0], pad, *x.shape[2:])
                x = torch.cat([x, x.new_zeros(shape)], dim=1)
            padded.append(x)
        lengths = torch.cat([v.lengths.to(values[0].device) for v in values])
        return AudioBatch(torch.cat(padded), lengths, values[0].sample_rate)


if not isinstance(FIELD_KINDS.get("audio"), AudioKind):
    register_kind(AudioKind())


@dataclass
class AudioSet:
    """A set of clips with what is known of them.

    Attributes:
        audio: the clips (an :class:`AudioBatch`, waveforms or frame features, on the CPU).
        labels: (N,) int64 class of each clip, or None (self-supervised only).
        classes: class names (``classes[label]``).
        captions: one text per clip (audio–text training and retrieval), or None.
        groups: (N,) int64 group of each clip (the voice/speaker variant), or None: splits
            that hold whole groups out use it.
        group_names: names of the groups.
        name: the data set's name.
        paths: the file of each clip, where the clips came from files.
        skipped: files that could not be used, ``{path: reason}`` (reported, never fatal).
    """

    audio: AudioBatch
    labels: Tensor | None = None
    classes: list[str] = field(default_factory=list)
    captions: list[str] | None = None
    groups: Tensor | None = None
    group_names: list[str] = field(default_factory=list)
    name: str = "audio"
    paths: list[str] | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    _caption_groups: Tensor | None = field(default=None, init=False, repr=False, compare=False)

    #: the kind of each field of :meth:`rows` (see :mod:`contrastkit.data.fields`)
    fields: ClassVar[dict[str, str]] = {
        "audio": "audio",
        "indices": "ids",
        "labels": "ids",
        "texts": "text",
        "caption_ids": "ids",
    }

    def __len__(self) -> int:
        return len(self.audio)

    def rows(self, index: Tensor) -> dict[str, Any]:
        """The trainer's batch for clips ``index`` ((B,) LongTensor): ``{"audio":
        AudioBatch, "indices": index}``, ``"labels"`` (B,) when labelled, and ``"texts"``
        (B captions) with ``"caption_ids"`` (B,) (equal for equal captions) when captioned."""
        index = torch.as_tensor(index, dtype=torch.long).cpu()
        batch: dict[str, Any] = {"audio": self.audio.select(index), "indices": index}
        if self.labels is not None:
            batch["labels"] = self.labels[index]
        if self.captions is not None:
            rows = index.tolist()
            batch["texts"] = [self.captions[i] for i in rows]
            batch["caption_ids"] = self.caption_groups()[index]
        return batch

    def caption_groups(self) -> Tensor:
        """(N,) int64: the index of each clip's caption among the distinct captions (computed
        once: the trainer asks for it every step)."""
        if self.captions is None:
            raise ValueError(f"{self.name} has no captions.")
        if self._caption_groups is None or len(self._caption_groups) != len(self.captions):
            first: dict[str, int] = {}
            groups = [first.setdefault(c, len(first)) for c in self.captions]
            self._caption_groups = torch.tensor(groups, dtype=torch.long)
        return self._caption_groups

    def row_lengths(self) -> Tensor:
        """(N,) valid samples/frames of each clip (the trainer's ``group_by_length``)."""
        return self.audio.lengths

    def subset(self, index: Tensor | Sequence[int]) -> AudioSet:
        """The clips ``index`` (in that order), with their labels, captions and groups."""
        idx = torch.as_tensor(index, dtype=torch.long).reshape(-1)
        rows = idx.tolist()
        return AudioSet(
            audio=self.audio.select(idx),
            labels=None if self.labels is None else self.labels[idx],
            classes=list(self.classes),
            captions=None if self.captions is None else [self.captions[i] for i in rows],
            groups=None if self.groups is None else self.groups[idx],
            group_names=list(self.group_names),
            name=self.name,
            paths=None if self.paths is None else [self.paths[i] for i in rows],
            skipped=dict(self.skipped),
        )
