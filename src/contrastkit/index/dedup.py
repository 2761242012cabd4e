"""Near-duplicate detection and deduplication of embeddings by cosine similarity.

:func:`near_duplicates` searches each row's ``k`` nearest neighbours in an
:class:`~contrastkit.index.EmbeddingIndex` and keeps the pairs whose cosine similarity reaches a
threshold; :func:`deduplicate` joins those pairs into groups (union-find) and keeps the first
row of each group.

Example:
    >>> import torch
    >>> from contrastkit.index import deduplicate, near_duplicates
    >>> z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.01], [0.0, 1.0]])
    >>> [(i, j, round(s, 4)) for i, j, s in near_duplicates(z, threshold=0.99)]
    [(1, 3, 1.0), (0, 2, 1.0)]
    >>> deduplicate(z, threshold=0.99).tolist()
    [0, 1]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit._checks import check_embeddings
from contrastkit.index.embedding_index import EmbeddingIndex

__all__ = ["deduplicate", "near_duplicates"]


def near_duplicates(
    embeddings: Tensor,
    threshold: float = 0.95,
    k: int = 10,
    index: EmbeddingIndex | None = None,
    *,
    backend: str = "auto",
) -> list[tuple[int, int, float]]:
    """Pairs of rows whose cosine similarity is at least ``threshold``.

    Each row looks at its ``k`` nearest other rows, so a group of more than ``k + 1`` mutually
    near-identical rows may miss some of its pairs (the groups of :func:`deduplicate` are still
    joined through the pairs found); raise ``k`` for data with large duplicate clusters. With
    the usearch backend the search is approximate and a few pairs may be missed; the scores are
    exact.

    Args:
        embeddings: (N, D).
        threshold: minimum cosine similarity of a near-duplicate pair, in [-1, 1].
        k: neighbours examined per row.
        index: an index whose row i is ``embeddings[i]`` (e.g. the one built for search), to
            avoid building another. Default: a new index with ``backend``.
        backend: backend of the index built when ``index`` is None.

    Returns:
        ``[(i, j, cosine), ...]`` with i < j, each pair once, sorted by decreasing cosine
        (ties by i, then j).

    Example:
        >>> import torch
        >>> z = torch.eye(3).repeat(2, 1)  # rows 3, 4, 5 copy rows 0, 1, 2
        >>> [(i, j) for i, j, _ in near_duplicates(z)]
        [(0, 3), (1, 4), (2, 5)]
    """
    check_embeddings(embeddings, "embeddings")
    if not -1.0 <= float(threshold) <= 1.0:
        raise ValueError(
            f"threshold is a cosine similarity and must lie in [-1, 1], got {threshold}."
        )
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer ≥ 1 (neighbours per row), got {k!r}.")
    n, d = embeddings.shape
    if index is None:
        index = EmbeddingIndex(d, backend=backend)
        index.add(embeddings)
    else:
        if len(index) != n or index.dim != d:
            raise ValueError(
                f"index holds {len(index)} rows of dimension {index.dim} but embeddings is "
                f"({n}, {d}); pass the index built from exactly these embeddings, or index=None."
            )
        zn = F.normalize(embeddings.detach().float().cpu(), dim=1)
        if not torch.allclose(zn, index.embeddings, atol=1e-5):
            raise ValueError(
                "index rows differ from the (normalised) embeddings; row i of the index must be "
                "embeddings[i]. Pass the matching index, or index=None to build one."
            )
    if n < 2:
        return []
    scores, idx = index.search_topk(embeddings, k=min(k + 1, n))
    rows = torch.arange(n)[:, None].expand_as(idx)
    keep = (idx >= 0) & (idx != rows) & (scores >= threshold)
    best: dict[tuple[int, int], float] = {}
    for i, j, s in zip(rows[keep].tolist(), idx[keep].tolist(), scores[keep].tolist()):
        pair = (i, j) if i < j else (j, i)
        if s > best.get(pair, -2.0):
            best[pair] = s
    return sorted(((i, j, s) for (i, j), s in best.items()), key=lambda t: (-t[2], t[0], t[1]))


def deduplicate(
    embeddings: Tensor,
    threshold: float = 0.95,
    k: int = 10,
    index: EmbeddingIndex | None = None,
    *,
    backend: str = "auto",
) -> Tensor:
    """Indices of the rows to keep after dropping near-duplicates.

    Rows linked by a pair of :func:`near_duplicates` (same arguments) form groups, joined
    transitively with union-find (if a ≈ b and b ≈ c then a, b, c are one group even when a and
    c are not similar); the first (lowest-index) row of each group is kept.

    Returns:
        (M,) int64 row indices in increasing order.

    Example:
        >>> import torch
        >>> z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.001], [1.0, 0.002]])
        >>> deduplicate(z, threshold=0.999).tolist()
        [0, 1]
    """
    pairs = near_duplicates(embeddings, threshold, k, index, backend=backend)
    parent = list(range(embeddings.shape[0]))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]  # path halving
            a = parent[a]
        return a

    for i, j, _ in pairs:
        ri, rj = find(i), find(j)
        if ri != rj:  # the smaller index stays the root, so each root is its group's first row
            parent[max(ri, rj)] = min(ri, rj)
    return torch.tensor([i for i in range(len(parent)) if find(i) == i], dtype=torch.long)
