"""Offline hard-negative mining: for each anchor, the corpus rows the current model ranks
closest that are not its positives, with a margin that drops likely false negatives.

Used between epochs (or once, before fine-tuning) to turn (anchor, positive) pairs into
(anchor, positive, hard negative) triplets for supervised SimCSE / MultipleNegativesRanking
training. Following the practice of sentence-transformers' ``mine_hard_negatives`` and
NV-Retriever's "positive-aware" mining (Moreira et al. 2024), a candidate whose similarity to
the anchor comes within ``margin`` of the positive's (or above ``max_similarity``) is treated
as an unlabelled positive and skipped.

Example:
    >>> import torch
    >>> from contrastkit.miners import mine_hard_negatives
    >>> anchors = torch.tensor([[1.0, 0.0]])
    >>> corpus = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.7, 0.7], [0.0, 1.0]])
    >>> mine_hard_negatives(anchors, corpus, positive_index=torch.tensor([0]), k=2, margin=0.05)
    tensor([[2, 3]])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.neighbours import topk_similar

__all__ = ["mine_hard_negatives"]


@torch.no_grad()
def mine_hard_negatives(
    anchors: Tensor,
    corpus: Tensor,
    *,
    positive_index: Tensor | None = None,
    positives: Tensor | None = None,
    k: int = 1,
    margin: float = 0.05,
    max_similarity: float | None = None,
    exclude: Tensor | None = None,
    chunk: int = 1024,
) -> Tensor:
    """Indices (N, k) of each anchor's hardest negatives among the corpus rows.

    Args:
        anchors: (N, D) anchor embeddings. corpus: (M, D) candidate embeddings (cosine).
        positive_index: (N,) the corpus row of each anchor's positive (−1: not in the corpus);
            that row is never a negative.
        positives: (N, D) the positives' embeddings, when they are not corpus rows (used for
            the margin; with ``positive_index`` alone the positive's corpus row is used).
        k: negatives per anchor.
        margin: a candidate is skipped when ``sim(a, c) > sim(a, p) − margin`` (relative to the
            positive; ``None`` positives → no margin test).
        max_similarity: skip candidates with ``sim(a, c)`` above this absolute threshold.
        exclude: optional (N, M) bool mask of further rows never to use (e.g. rows of the same
            label or the anchor's own row when anchors are corpus rows).
        chunk: anchors per block (memory O(chunk × M)).

    Returns:
        LongTensor (N, k) of corpus rows, hardest first; −1 where fewer than ``k`` candidates
        pass the filters.

    Reference: Moreira et al. 2024, "NV-Retriever: Improving text Embedding models with
    effective hard-negative mining" (positive-aware mining).

    Example:
        >>> import torch
        >>> a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> corpus = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
        >>> mine_hard_negatives(a, corpus, positive_index=torch.tensor([0, 1]), k=2, margin=0.0)
        tensor([[2, 1],
                [2, 0]])
    """
    if anchors.dim() != 2 or corpus.dim() != 2 or anchors.shape[1] != corpus.shape[1]:
        raise ValueError(
            f"anchors (N, D) and corpus (M, D) must share D; got {tuple(anchors.shape)} and "
            f"{tuple(corpus.shape)}."
        )
    n, m = anchors.shape[0], corpus.shape[0]
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}.")
    if positive_index is not None and positive_index.shape != (n,):
        raise ValueError(
            f"positive_index must have shape ({n},), got {tuple(positive_index.shape)}."
        )
    if positives is not None and positives.shape != anchors.shape:
        raise ValueError(
            f"positives must have the anchors' shape {tuple(anchors.shape)}, got "
            f"{tuple(positives.shape)}."
        )
    if exclude is not None and exclude.shape != (n, m):
        raise ValueError(f"exclude must be an ({n}, {m}) bool mask, got {tuple(exclude.shape)}.")
    a = F.normalize(anchors.float(), dim=1)
    c = F.normalize(corpus.float(), dim=1)
    skip = exclude.bool().to(a.device) if exclude is not None else None
    bound = torch.full((n,), float("inf"), device=a.device)
    if positive_index is not None:
        pi = positive_index.long().to(a.device)
        has = (pi >= 0).nonzero().flatten()
        if skip is None:
            skip = pi  # (N,) corpus rows, -1 for none
        else:
            skip = skip.clone()
            skip[has, pi[has]] = True
        if margin is not None:
            bound[has] = (a[has] * c[pi[has]]).sum(1) - margin
    if positives is not None and margin is not None:
        bound = (a * F.normalize(positives.float(), dim=1)).sum(1) - margin
    if max_similarity is not None:
        bound = bound.clamp(max=max_similarity)
    _, idx = topk_similar(
        a, c, min(k, m), metric="dot", exclude=skip, max_score=bound, chunk_size=chunk
    )
    out = torch.full((n, k), -1, dtype=torch.long)
    out[:, : idx.shape[1]] = idx.cpu()
    return out
