"""Embedding index and search on top of a trained encoder: exact or HNSW (usearch) cosine
search, near-duplicate detection and semantic search over texts.

Example:
    >>> import torch
    >>> from contrastkit.index import EmbeddingIndex
    >>> index = EmbeddingIndex(3, backend="exact")
    >>> index.add(torch.eye(3), ids=["a", "b", "c"])
    >>> index.search(torch.tensor([0.0, 1.0, 0.0]), k=1)[0][0].id
    'b'
"""

from contrastkit.index.dedup import deduplicate, near_duplicates
from contrastkit.index.embedding_index import (
    AUTO_EXACT_MAX_ROWS,
    EmbeddingIndex,
    SearchHit,
    usearch_available,
)
from contrastkit.index.semantic import SemanticSearch

__all__ = [
    "AUTO_EXACT_MAX_ROWS",
    "EmbeddingIndex",
    "SearchHit",
    "SemanticSearch",
    "deduplicate",
    "near_duplicates",
    "usearch_available",
]
