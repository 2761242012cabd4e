"""Semantic search: an encoder function plus an :class:`~contrastkit.index.EmbeddingIndex`.

Example:
    >>> import torch
    >>> from contrastkit.index import SemanticSearch
    >>> def encode(texts):  # a toy encoder: letter counts
    ...     return torch.stack([torch.tensor([t.count(c) for c in "abc"], dtype=torch.float32)
    ...                         for t in texts])
    >>> search = SemanticSearch.build(encode, ["aaa", "bbb", "ccc abc"], backend="exact")
    >>> [hit.text for hit in search.search("bb b", k=2)]
    ['bbb', 'ccc abc']
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from contrastkit.index.embedding_index import EmbeddingIndex, SearchHit

__all__ = ["SemanticSearch"]


def _encode(encode: Callable[[list[str]], Tensor], texts: list[str]) -> Tensor:
    with torch.no_grad():
        z = encode(texts)
    if not isinstance(z, Tensor) or z.dim() != 2 or z.shape[0] != len(texts):
        shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
        raise ValueError(
            f"encode must return a (len(texts), D) tensor, one embedding per text; for "
            f"{len(texts)} texts it returned {shape}. Wrap the encoder so it returns a tensor "
            f"(e.g. torch.as_tensor(model.encode(texts)))."
        )
    return z.detach().float().cpu()


class SemanticSearch:
    """Search texts with a query string: ``encode`` the query, look it up in ``index``.

    Args:
        encode: a function from a list of texts to their (len, D) embeddings (the trained
            encoder; it is called under ``torch.no_grad()``).
        index: the index of the corpus, built with the same encoder.

    Example:
        >>> import torch
        >>> index = EmbeddingIndex(2, backend="exact")
        >>> index.add(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), texts=["left", "up"])
        >>> search = SemanticSearch(lambda texts: torch.tensor([[0.1, 1.0]] * len(texts)), index)
        >>> search.search("anything", k=1)[0].text
        'up'
    """

    def __init__(self, encode: Callable[[list[str]], Tensor], index: EmbeddingIndex) -> None:
        if not callable(encode):
            raise TypeError(
                f"encode must be callable (texts -> Tensor), got {type(encode).__name__}."
            )
        if not isinstance(index, EmbeddingIndex):
            raise TypeError(f"index must be an EmbeddingIndex, got {type(index).__name__}.")
        self.encode = encode
        self.index = index

    def search(
        self, query: str | Sequence[str], k: int = 10
    ) -> list[SearchHit] | list[list[SearchHit]]:
        """The ``k`` closest corpus rows of a query string (a list of hits), or of each query of
        a list (a list of lists)."""
        if isinstance(query, str):
            return self.index.search(_encode(self.encode, [query]), k)[0]
        queries = list(query)
        if not queries or not all(isinstance(q, str) for q in queries):
            raise TypeError("query must be a string or a non-empty list of strings.")
        return self.index.search(_encode(self.encode, queries), k)

    @classmethod
    def build(
        cls,
        encode: Callable[[list[str]], Tensor],
        texts: Sequence[str],
        ids: Sequence[str] | None = None,
        backend: str = "auto",
        meta: dict[str, Any] | None = None,
        *,
        batch_size: int = 256,
        **index_options: Any,
    ) -> SemanticSearch:
        """Encode ``texts`` in batches of ``batch_size`` and index them (texts kept for hits).

        Args:
            encode: texts -> (len, D) embeddings. texts: the corpus. ids: one unique id per
                text (default: row numbers). backend: as :class:`EmbeddingIndex`. meta: saved
                with the index, e.g. ``{"encoder": "path/to/encoder"}``. index_options: other
                :class:`EmbeddingIndex` keyword arguments.
        """
        texts = list(texts)
        if not texts:
            raise ValueError("texts is empty; give at least one text to index.")
        if ids is not None and len(ids) != len(texts):
            raise ValueError(
                f"ids has {len(ids)} entries for {len(texts)} texts; give one per text."
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}.")
        index = None
        for s in range(0, len(texts), batch_size):
            batch = texts[s : s + batch_size]
            z = _encode(encode, batch)
            if index is None:
                index = EmbeddingIndex(z.shape[1], backend=backend, meta=meta, **index_options)
            index.add(z, None if ids is None else list(ids[s : s + batch_size]), batch)
        return cls(encode, index)

    def save(self, folder: str | os.PathLike) -> None:
        """Save the index (:meth:`EmbeddingIndex.save`); the encoder is the caller's to save —
        put its path in ``index.meta``."""
        self.index.save(folder)

    @classmethod
    def load(
        cls,
        folder: str | os.PathLike,
        encode: Callable[[list[str]], Tensor],
        backend: str | None = None,
    ) -> SemanticSearch:
        """Load a saved index and pair it with ``encode`` (the encoder that built it)."""
        return cls(encode, EmbeddingIndex.load(folder, backend))
