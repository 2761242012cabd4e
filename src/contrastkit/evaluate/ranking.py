"""Query → corpus retrieval metrics with binary or graded relevance: MRR, nDCG, recall, MAP.

Two levels:

- the rank-based helpers :func:`mrr_at_k`, :func:`ndcg_at_k`, :func:`ranked_recall_at_k` and
  :func:`average_precision_at_k` take a relevance matrix (Q, K) of lists that are already ranked
  (column 0 is each query's top hit; a value > 0 marks a relevant item, its size is the graded
  gain) and return one value per query;
- :func:`retrieval_metrics` ranks a corpus for every query by cosine similarity, chunk by chunk
  over the queries (memory O(chunk × N); :func:`~contrastkit.neighbours.topk_similar`, equal
  similarities in corpus order), and averages those helpers over the queries that have
  at least one relevant item.

Definitions (as sentence-transformers' ``InformationRetrievalEvaluator`` for binary relevance):

- MRR@k: 1 / rank of the first relevant item within the top k (0 if none).
- nDCG@k: DCG@k = Σ_{r ≤ k} gain_r / log2(r + 1) with linear gains, divided by the DCG@k of the
  ideal ordering of all the query's gains (Järvelin & Kekäläinen 2002).
- recall@k: relevant items in the top k / relevant items of the query (so a perfect ranking
  scores min(k, R) / R); for one relevant item per query this is the CLIP-style R@k of
  :func:`contrastkit.evaluate.recall_at_k`.
- MAP@k: Σ_{r ≤ k, r relevant} precision@r / min(k, R), so a perfect ranking scores 1.
  (trec_eval's ``map_cut`` divides by R instead; the two agree whenever R ≤ k.)

Example:
    >>> import torch
    >>> from contrastkit.evaluate import retrieval_metrics
    >>> corpus = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    >>> query = torch.tensor([[1.0, 0.1], [0.1, 1.0]])
    >>> m = retrieval_metrics(query, corpus, [{0, 2}, {2}], ks=(1, 2))
    >>> m["mrr@1"], m["recall@2"], m["queries"]
    (0.5, 1.0, 2.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from contrastkit._checks import check_embeddings
from contrastkit.neighbours import topk_similar

__all__ = [
    "average_precision_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "ranked_recall_at_k",
    "retrieval_metrics",
]


def _ranked(ranked_relevance: Tensor, k: int, name: str = "ranked_relevance") -> Tensor:
    """Validate a (Q, K) relevance matrix and return its first min(k, K) columns as float64."""
    if not isinstance(ranked_relevance, Tensor):
        ranked_relevance = torch.as_tensor(ranked_relevance)
    if ranked_relevance.dim() != 2:
        raise ValueError(
            f"{name} must be 2-D (queries, ranked positions), got shape "
            f"{tuple(ranked_relevance.shape)}; for a single query use {name}[None]."
        )
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer ≥ 1, got {k!r}.")
    r = ranked_relevance.double()
    if r.numel() and not bool(torch.isfinite(r).all() and (r >= 0).all()):
        raise ValueError(
            f"{name} must hold finite gains ≥ 0 (0 = not relevant), got negative or "
            f"non-finite values; clamp or fix the relevance judgements."
        )
    return r[:, :k]


def _n_relevant(n_relevant: Tensor | None, full: Tensor) -> Tensor:
    if n_relevant is None:
        return (full > 0).sum(1).double()
    n = torch.as_tensor(n_relevant).double().flatten()
    if n.shape[0] != full.shape[0]:
        raise ValueError(
            f"n_relevant has {n.shape[0]} entries but ranked_relevance has {full.shape[0]} "
            f"rows; give one count of relevant items per query."
        )
    return n


def mrr_at_k(ranked_relevance: Tensor, k: int) -> Tensor:
    """Reciprocal rank of the first relevant item within the top ``k``, per query.

    Args:
        ranked_relevance: (Q, K) gains of each query's ranked list (> 0 = relevant; bool,
            integer or float). Lists shorter than ``k`` are scored over their K columns.
        k: cut-off.

    Returns:
        (Q,) float64: 1 / rank of the first relevant item, 0 when none is in the top k.

    Example:
        >>> import torch
        >>> mrr_at_k(torch.tensor([[0, 0, 1], [1, 0, 0], [0, 0, 0]]), k=3).tolist()
        [0.3333333333333333, 1.0, 0.0]
    """
    r = _ranked(ranked_relevance, k) > 0
    if r.shape[1] == 0:
        return torch.zeros(r.shape[0], dtype=torch.float64)
    first = r.double().argmax(1)  # index of the first True (0 when there is none)
    return torch.where(r.any(1), 1.0 / (first + 1).double(), 0.0)


def ndcg_at_k(ranked_relevance: Tensor, k: int, ideal_relevance: Tensor | None = None) -> Tensor:
    """Normalised discounted cumulative gain at ``k``, per query (graded gains allowed).

    DCG@k = Σ_{r=1..k} gain_r / log2(r + 1); nDCG@k = DCG@k / IDCG@k, where IDCG@k is the DCG of
    the query's gains sorted in decreasing order.

    Args:
        ranked_relevance: (Q, K) gains of each ranked list (0 = not relevant).
        k: cut-off.
        ideal_relevance: (Q, M) gains of *all* the query's relevant items, in any order (zeros
            pad short rows). Default: ``ranked_relevance`` itself, right only when each list
            holds every relevant item of its query.

    Returns:
        (Q,) float64 in [0, 1]; 0 for a query without relevant items.

    Example:
        >>> import torch, math
        >>> got = ndcg_at_k(torch.tensor([[0.0, 1.0]]), k=2)  # (1/log2 3) / (1/log2 2)
        >>> round(float(got), 6) == round(1 / math.log2(3), 6)
        True
    """
    r = _ranked(ranked_relevance, k)
    ideal = r if ideal_relevance is None else _ranked(ideal_relevance, 10**18, "ideal_relevance")
    if ideal.shape[0] != r.shape[0]:
        raise ValueError(
            f"ideal_relevance has {ideal.shape[0]} rows but ranked_relevance has {r.shape[0]}; "
            f"give one row of gains per query."
        )
    m = min(k, ideal.shape[1])
    discount = 1.0 / torch.log2(torch.arange(2, max(r.shape[1], m) + 2, dtype=torch.float64))
    dcg = (r * discount[: r.shape[1]]).sum(1)
    best = ideal.sort(dim=1, descending=True).values[:, :m]
    idcg = (best * discount[:m]).sum(1)
    return torch.where(idcg > 0, dcg / idcg.clamp_min(1e-300), 0.0)


def ranked_recall_at_k(
    ranked_relevance: Tensor, k: int, n_relevant: Tensor | None = None
) -> Tensor:
    """Fraction of each query's relevant items found in its top ``k``.

    Args:
        ranked_relevance: (Q, K) gains of each ranked list (> 0 = relevant).
        k: cut-off.
        n_relevant: (Q,) number of relevant items of each query in the whole corpus. Default:
            the relevant items in ``ranked_relevance`` (right only for complete lists).

    Returns:
        (Q,) float64; 0 for a query without relevant items.

    Example:
        >>> import torch
        >>> ranked_recall_at_k(torch.tensor([[1, 0, 1]]), k=2, n_relevant=torch.tensor([4]))
        tensor([0.2500], dtype=torch.float64)
    """
    full = _ranked(ranked_relevance, 10**18)
    n = _n_relevant(n_relevant, full)
    hits = (full[:, :k] > 0).sum(1).double()
    return torch.where(n > 0, hits / n.clamp_min(1), 0.0)


def average_precision_at_k(
    ranked_relevance: Tensor, k: int, n_relevant: Tensor | None = None
) -> Tensor:
    """Average precision at ``k``, per query: Σ precision@r over relevant ranks r ≤ k, divided
    by min(k, R) with R the query's number of relevant items (a perfect ranking scores 1).

    Args:
        ranked_relevance: (Q, K) gains of each ranked list (> 0 = relevant).
        k: cut-off.
        n_relevant: (Q,) R per query. Default: the relevant items in ``ranked_relevance``.

    Returns:
        (Q,) float64; its mean is MAP@k. 0 for a query without relevant items.

    Example:
        >>> import torch
        >>> # hits at ranks 1 and 3 of R = 2: (1/1 + 2/3) / 2
        >>> round(float(average_precision_at_k(torch.tensor([[1, 0, 1]]), k=3)), 4)
        0.8333
    """
    full = _ranked(ranked_relevance, 10**18)
    n = _n_relevant(n_relevant, full)
    rel = (full[:, :k] > 0).double()
    ranks = torch.arange(1, rel.shape[1] + 1, dtype=torch.float64)
    precision = rel.cumsum(1) / ranks
    denom = n.clamp(max=k)
    return torch.where(n > 0, (precision * rel).sum(1) / denom.clamp_min(1), 0.0)


def _relevance_rows(
    relevant: Sequence[Iterable[int]] | Tensor, start: int, stop: int, n: int
) -> Tensor:
    """Dense float64 gains (stop - start, N) of queries start..stop-1."""
    if isinstance(relevant, Tensor):
        return relevant[start:stop].double()
    rows = torch.zeros(stop - start, n, dtype=torch.float64)
    for row, items in enumerate(relevant[start:stop]):
        idx = torch.as_tensor(sorted(int(i) for i in items), dtype=torch.long)
        if idx.numel():
            if int(idx.min()) < 0 or int(idx.max()) >= n:
                raise ValueError(
                    f"relevant[{start + row}] names corpus item(s) outside 0..{n - 1} "
                    f"(got {idx.tolist()[:5]}...); relevance sets hold corpus row indices."
                )
            rows[row, idx] = 1.0
    return rows


def _check_relevant(relevant, q: int, n: int) -> Sequence[Iterable[int]] | Tensor:
    if isinstance(relevant, Tensor):
        if relevant.shape != (q, n):
            raise ValueError(
                f"relevant must have shape (Q, N) = ({q}, {n}) (one row per query, one column "
                f"per corpus item), got {tuple(relevant.shape)}."
            )
        if relevant.is_complex():
            raise TypeError("relevant must be a bool or real-valued gain tensor.")
        r = relevant.double()
        if not bool(torch.isfinite(r).all() and (r >= 0).all()):
            raise ValueError(
                "relevant holds negative or non-finite gains; use 0 for 'not relevant' and "
                "positive gains (e.g. 1, 2, 3) for relevant items."
            )
        return relevant.cpu()
    if isinstance(relevant, (str, bytes)) or not isinstance(relevant, Sequence):
        raise TypeError(
            f"relevant must be a list with one set of corpus indices per query or a (Q, N) "
            f"tensor, got {type(relevant).__name__}."
        )
    if len(relevant) != q:
        raise ValueError(
            f"relevant has {len(relevant)} entries but there are {q} queries; give one set of "
            f"relevant corpus indices per query (an empty set for a query without any)."
        )
    return relevant


def retrieval_metrics(
    query: Tensor,
    corpus: Tensor,
    relevant: Sequence[Iterable[int]] | Tensor,
    ks: Sequence[int] = (1, 5, 10),
    exclude: Tensor | None = None,
    *,
    chunk_size: int = 1024,
) -> dict[str, float]:
    """Rank the corpus for every query by cosine similarity; average MRR, nDCG, recall and MAP.

    Args:
        query: (Q, D) query embeddings.
        corpus: (N, D) corpus embeddings.
        relevant: either a list of Q sets of relevant corpus indices (binary relevance), or a
            (Q, N) tensor: bool (binary) or float gains ≥ 0 (graded; 0 = not relevant; nDCG uses
            the gains, the other metrics count gains > 0 as relevant).
        ks: cut-offs; each is capped at the number of rankable corpus items, the key keeps k.
        exclude: (Q,) long; ``exclude[i]`` is a corpus index removed from query i's ranking and
            relevance (the query itself when queries are part of the corpus); -1 removes none.
        chunk_size: queries ranked at a time; memory is O(chunk_size × N).

    Returns:
        ``{"mrr@k", "ndcg@k", "recall@k", "map@k"}`` for every k, averaged over the queries
        with at least one relevant item, plus ``"queries"`` (how many were averaged) and
        ``"queries_skipped"`` (how many had no relevant item and were left out).

    Example:
        >>> import torch
        >>> z = torch.eye(3)
        >>> m = retrieval_metrics(z, z, torch.eye(3, dtype=torch.bool), ks=(1,))
        >>> m["ndcg@1"], m["map@1"], m["queries_skipped"]
        (1.0, 1.0, 0.0)
    """
    check_embeddings(query, "query")
    check_embeddings(corpus, "corpus")
    q_n, n = query.shape[0], corpus.shape[0]
    if query.shape[1] != corpus.shape[1]:
        raise ValueError(
            f"query has dimension {query.shape[1]} but corpus has {corpus.shape[1]}; embed both "
            f"with the same encoder (or project them to a shared space)."
        )
    ks = tuple(ks)
    if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
        raise ValueError(f"ks must be a non-empty tuple of integers ≥ 1, got {ks!r}.")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be ≥ 1, got {chunk_size}.")
    relevant = _check_relevant(relevant, q_n, n)
    if exclude is not None:
        exclude = torch.as_tensor(exclude)
        if exclude.shape != (q_n,) or exclude.is_floating_point():
            raise ValueError(
                f"exclude must be an integer tensor of shape (Q,) = ({q_n},), one corpus index "
                f"per query (-1 for none), got dtype {exclude.dtype} shape {tuple(exclude.shape)}."
            )
        exclude = exclude.long().cpu()
        if bool(((exclude < -1) | (exclude >= n)).any()):
            raise ValueError(
                f"exclude holds indices outside -1..{n - 1}; give a corpus row index per query, "
                f"or -1 to exclude nothing."
            )
    k_rank = min(max(ks), n - (0 if exclude is None else 1))
    if k_rank < 1:
        raise ValueError("the corpus has no item left to rank once the excluded ones are removed.")

    _, top = topk_similar(
        query.float(),
        corpus.float().to(query.device),
        k_rank,
        exclude=exclude,
        chunk_size=chunk_size,
    )
    top = top.cpu()
    sums = {f"{name}@{k}": 0.0 for k in ks for name in ("mrr", "ndcg", "recall", "map")}
    counted = 0
    for start in range(0, q_n, chunk_size):
        stop = min(start + chunk_size, q_n)
        gains = _relevance_rows(relevant, start, stop, n)
        if exclude is not None:
            rows = torch.nonzero(exclude[start:stop] >= 0).flatten()
            gains[rows, exclude[start:stop][rows]] = 0.0
        order = top[start:stop]
        ranked = gains.gather(1, order)
        n_rel = (gains > 0).sum(1).double()
        ideal = gains.topk(min(k_rank, n), dim=1).values
        keep = n_rel > 0
        if not bool(keep.any()):
            continue
        ranked, ideal, n_rel = ranked[keep], ideal[keep], n_rel[keep]
        counted += int(keep.sum())
        for k in ks:
            sums[f"mrr@{k}"] += float(mrr_at_k(ranked, k).sum())
            sums[f"ndcg@{k}"] += float(ndcg_at_k(ranked, k, ideal).sum())
            sums[f"recall@{k}"] += float(ranked_recall_at_k(ranked, k, n_rel).sum())
            sums[f"map@{k}"] += float(average_precision_at_k(ranked, k, n_rel).sum())
    if counted == 0:
        raise ValueError(
            "no query has a relevant corpus item (after exclusions), so no retrieval metric is "
            "defined; check that `relevant` indexes the corpus rows and that `exclude` does not "
            "remove the only relevant item of each query."
        )
    out = {key: total / counted for key, total in sums.items()}
    out["queries"] = float(counted)
    out["queries_skipped"] = float(q_n - counted)
    return out
