"""A character-level text encoder: texts → (N, out_dim), embedded from their spelling.

For audio–text (CLAP-style) training with little text: a word never seen in training still
has a spelling, so it still gets an embedding near words spelled alike ("dogs" near "dog"),
and the vocabulary is fixed, so nothing is built from the corpus and any text can be encoded.

The character vocabulary (:data:`CHARS`, ids in this order): 0 ``<pad>``, 1 ``<unk>`` (any
other character), 2 ``<bos>``, 3 ``<eos>``, then the space, ``a``–``z``, ``0``–``9`` and the
marks ``' - . , ! ? ; : & / ( ) " + %``. Texts are normalised first: NFKD with accents
dropped ("café" → "cafe"), lower-cased, every run of whitespace one space, stripped.

:class:`CharTextEncoder` follows :class:`contrastkit.encoders.text.TextEncoder`'s contract
(``tokenize``, ``forward``, ``encode``, ``out_dim``, ``pad_id``, ``max_length``, ``config``).

Example:
    >>> enc = CharTextEncoder(width=32, blocks=2, out_dim=16)
    >>> ids = enc.tokenize(["A dog barks", "rain"])
    >>> ids.shape, enc(ids).shape
    (torch.Size([2, 13]), torch.Size([2, 16]))
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import torch
from torch import Tensor, nn

from contrastkit._checks import tracing
from contrastkit.encoders.text import TextEncoder, _check_texts

__all__ = ["CHARS", "CharTextEncoder", "char_text"]

#: the characters with their own id (ids 4, 5, ...), after the four special tokens
CHARS = " abcdefghijklmnopqrstuvwxyz0123456789'-.,!?;:&/()\"+%"
_SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")
_INDEX = {c: i + len(_SPECIALS) for i, c in enumerate(CHARS)}
_SPACE_RE = re.compile(r"\s+")


def _normalise(text: str) -> str:
    """NFKD without combining marks, lower-case, runs of whitespace → one space, stripped."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _SPACE_RE.sub(" ", text.lower()).strip()


class _ConvBlock(nn.Module):
    """x + Dropout(Conv1x1(GELU(Conv_k,dilated(LN(x))))), zero at the padding before each conv
    and after the block."""

    def __init__(self, width: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        pad = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv1d(width, width, kernel_size, padding=pad, dilation=dilation)
        self.mix = nn.Conv1d(width, width, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, m: Tensor) -> Tensor:
        """x (N, L, W) zero at padding, m (N, L, 1) float mask → (N, L, W)."""
        h = (self.norm(x) * m).transpose(1, 2)
        h = self.mix(nn.functional.gelu(self.conv(h))).transpose(1, 2)
        return (x + self.drop(h)) * m


class CharTextEncoder(TextEncoder):
    """Characters → residual dilated 1-D convolutions → masked mean+max pooling → Linear.

    Each character id gets a vector of width ``char_dim``, a linear map widens it to ``width``,
    ``blocks`` pre-norm residual blocks ``x + Dropout(Conv1×1(GELU(Conv_k(LayerNorm(x)))))``
    mix neighbouring characters (block i dilates its kernel by ``2 ** (i % 3)``, so the
    default 4 blocks of kernel 5 see 33 characters: whole words and their neighbours), and
    the concatenated masked mean and max over the characters go through LayerNorm and
    Linear(2·width, out_dim). Padding is zeroed before every convolution, so extra pad
    columns never change the output.

    Args:
        char_dim: character embedding width (64).
        width: channels of the convolutional blocks.
        blocks: residual blocks (≥ 1).
        kernel_size: odd convolution width (3 or 5 are typical).
        dropout: on the embeddings and in each block.
        out_dim: embedding width.
        max_length: ids per text, ``<bos>`` and ``<eos>`` included (longer texts are cut
            before their ``<eos>``, which is kept).

    Shapes: ``tokenize``: list of N strings → LongTensor (N, L), L ≤ max_length, right-padded
    with ``pad_id`` = 0; ``forward``: (N, L) ids → (N, out_dim) float (float32 under autocast).

    Example:
        >>> enc = CharTextEncoder(width=32, blocks=1, out_dim=8)
        >>> enc.tokenize(["Hi!"]).tolist()
        [[2, 12, 13, 45, 3]]
        >>> enc.encode(["a dog barks", "a cat meows"]).shape
        torch.Size([2, 8])
    """

    pad_id = 0
    unk_id = 1
    bos_id = 2
    eos_id = 3
    vocab_size = len(_SPECIALS) + len(CHARS)

    def __init__(
        self,
        char_dim: int = 64,
        width: int = 256,
        blocks: int = 4,
        kernel_size: int = 5,
        dropout: float = 0.1,
        out_dim: int = 256,
        max_length: int = 64,
    ) -> None:
        super().__init__()
        if int(char_dim) < 1 or int(width) < 1 or int(blocks) < 1 or int(out_dim) < 1:
            raise ValueError(
                f"need char_dim, width, blocks and out_dim ≥ 1, got {char_dim}, {width}, "
                f"{blocks}, {out_dim}."
            )
        if int(kernel_size) < 1 or int(kernel_size) % 2 == 0:
            raise ValueError(f"kernel_size must be odd (3, 5, ...), got {kernel_size}.")
        if int(max_length) < 3:
            raise ValueError(
                f"max_length must be ≥ 3 (<bos>, a character, <eos>), got {max_length}."
            )
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        self.max_length = int(max_length)
        self.out_dim = int(out_dim)
        self.embed = nn.Embedding(self.vocab_size, int(char_dim), padding_idx=self.pad_id)
        self.widen = nn.Linear(int(char_dim), int(width))
        self.drop = nn.Dropout(float(dropout))
        self.blocks = nn.ModuleList(
            _ConvBlock(int(width), int(kernel_size), 2 ** (i % 3), float(dropout))
            for i in range(int(blocks))
        )
        self.norm = nn.LayerNorm(2 * int(width))
        self.head = nn.Linear(2 * int(width), self.out_dim)
        self.config: dict[str, Any] = {
            "char_dim": int(char_dim),
            "width": int(width),
            "blocks": int(blocks),
            "kernel_size": int(kernel_size),
            "dropout": float(dropout),
            "out_dim": self.out_dim,
            "max_length": self.max_length,
        }

    def ids(self, text: str) -> list[int]:
        """One text → ``<bos>``, one id per character (``<unk>`` outside :data:`CHARS`),
        ``<eos>``; at most ``max_length`` ids (the characters are cut, ``<eos>`` kept)."""
        chars = [_INDEX.get(c, self.unk_id) for c in _normalise(text)]
        return [self.bos_id, *chars[: self.max_length - 2], self.eos_id]

    def tokenize(self, texts: list[str]) -> Tensor:
        """list of N strings → LongTensor (N, L): ``<bos>`` + character ids + ``<eos>``,
        right-padded with ``pad_id`` to the longest text, at most ``max_length`` columns."""
        rows = [self.ids(t) for t in _check_texts(texts)]
        width = max((len(r) for r in rows), default=0)
        out = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        return out

    def forward(self, ids: Tensor) -> Tensor:
        """LongTensor (N, L) of character ids → (N, out_dim) embeddings."""
        ids = self._check_ids(ids).to(self._device())
        if ids.numel() and not tracing() and bool(((ids < 0) | (ids >= self.vocab_size)).any()):
            raise ValueError(
                f"character ids must be in 0..{self.vocab_size - 1}, got values from "
                f"{int(ids.min())} to {int(ids.max())}; build them with this encoder's "
                f"tokenize(texts)."
            )
        mask = ids != self.pad_id
        m = mask.unsqueeze(-1).to(self.widen.weight.dtype)
        x = self.widen(self.drop(self.embed(ids))) * m
        for block in self.blocks:
            x = block(x, m.to(x.dtype))
        x = x.to(torch.promote_types(x.dtype, torch.float32))
        mf = m.to(x.dtype)
        mean = x.sum(1) / mf.sum(1).clamp(min=1.0)
        peak = x.masked_fill(~mask.unsqueeze(-1), torch.finfo(x.dtype).min).amax(1)
        peak = torch.where(mask.any(1, keepdim=True), peak, torch.zeros_like(peak))
        out = self.head(self.norm(torch.cat([mean, peak], dim=-1)))
        return out.to(torch.promote_types(out.dtype, torch.float32))

    def extra_repr(self) -> str:
        return f"vocab={self.vocab_size}, max_length={self.max_length}"


def char_text(**config: Any) -> CharTextEncoder:
    """Build :class:`CharTextEncoder` from its keyword configuration (the registry's factory).

    Example:
        >>> char_text(width=32, blocks=1, out_dim=16).out_dim
        16
    """
    return CharTextEncoder(**config)
