"""Query → corpus retrieval metrics: explicit loops, hand-computed cases, chunking, errors."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.evaluate import (
    average_precision_at_k,
    mrr_at_k,
    ndcg_at_k,
    ranked_recall_at_k,
    recall_at_k,
    retrieval_metrics,
)


def _loop_metrics(query, corpus, gains, ks, exclude=None):
    """Every metric by explicit Python loops over queries and ranks (float64 cosine)."""
    q_n, n = query.shape[0], corpus.shape[0]
    sums = {f"{m}@{k}": 0.0 for k in ks for m in ("mrr", "ndcg", "recall", "map")}
    counted = 0
    for i in range(q_n):
        qi = [float(v) for v in query[i]]
        q_norm = math.sqrt(sum(v * v for v in qi))
        sims = []
        for j in range(n):
            cj = [float(v) for v in corpus[j]]
            dot = sum(a * b for a, b in zip(qi, cj))
            sims.append((dot / (q_norm * math.sqrt(sum(v * v for v in cj))), j))
        skip = None if exclude is None else int(exclude[i])
        order = [j for _, j in sorted(sims, key=lambda t: -t[0]) if j != skip]
        g = {j: float(gains[i][j]) for j in range(n) if j != skip and float(gains[i][j]) > 0}
        if not g:
            continue
        counted += 1
        r_total = len(g)
        for k in ks:
            top = order[:k]
            rr = 0.0
            for rank, j in enumerate(top, start=1):
                if j in g:
                    rr = 1.0 / rank
                    break
            dcg = sum(g.get(j, 0.0) / math.log2(rank + 1) for rank, j in enumerate(top, start=1))
            ideal = sorted(g.values(), reverse=True)[:k]
            idcg = sum(v / math.log2(rank + 1) for rank, v in enumerate(ideal, start=1))
            hits = sum(1 for j in top if j in g)
            ap, found = 0.0, 0
            for rank, j in enumerate(top, start=1):
                if j in g:
                    found += 1
                    ap += found / rank
            sums[f"mrr@{k}"] += rr
            sums[f"ndcg@{k}"] += dcg / idcg
            sums[f"recall@{k}"] += hits / r_total
            sums[f"map@{k}"] += ap / min(k, r_total)
    out = {key: v / counted for key, v in sums.items()}
    out["queries"] = float(counted)
    out["queries_skipped"] = float(q_n - counted)
    return out


def _data(q=23, n=40, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(q, d, generator=g), torch.randn(n, d, generator=g), g


def _assert_same(got, expect):
    assert set(got) == set(expect)
    for key in expect:
        assert got[key] == pytest.approx(expect[key], abs=1e-9), key


def test_binary_sets_match_explicit_loop():
    query, corpus, g = _data()
    sets = [set(torch.randperm(40, generator=g)[: int(i % 5)].tolist()) for i in range(23)]
    gains = torch.zeros(23, 40)
    for i, s in enumerate(sets):
        gains[i, list(s)] = 1.0
    ks = (1, 3, 5, 10, 50)  # 50 > N: capped at the corpus size
    got = retrieval_metrics(query, corpus, sets, ks=ks)
    expect = _loop_metrics(query, corpus, gains, ks)
    _assert_same(got, expect)
    assert got["queries_skipped"] == sum(1 for s in sets if not s) > 0
    # the same relevance as a bool tensor gives the same numbers
    _assert_same(retrieval_metrics(query, corpus, gains.bool(), ks=ks), expect)


def test_graded_gains_match_explicit_loop():
    query, corpus, g = _data(seed=1)
    gains = torch.randint(0, 4, (23, 40), generator=g).float()
    gains[gains < 2] = 0.0  # sparse graded judgements 2, 3
    ks = (1, 5, 10)
    _assert_same(
        retrieval_metrics(query, corpus, gains, ks=ks), _loop_metrics(query, corpus, gains, ks)
    )


def test_exclude_and_chunking_match_explicit_loop():
    query, corpus, g = _data(seed=2)
    corpus[:23] = query + 0.3 * torch.randn(23, 8, generator=g)  # queries live in the corpus
    gains = (torch.rand(23, 40, generator=g) < 0.2).float()
    gains[torch.arange(23), torch.arange(23)] = 1.0  # its own row would be the easy hit
    exclude = torch.arange(23)
    exclude[5] = -1  # query 5 keeps its own row
    ks = (1, 5, 10)
    expect = _loop_metrics(query, corpus, gains, ks, exclude)
    for chunk in (1, 4, 1024):
        got = retrieval_metrics(query, corpus, gains, ks=ks, exclude=exclude, chunk_size=chunk)
        _assert_same(got, expect)
    without = retrieval_metrics(query, corpus, gains, ks=ks)
    assert without["mrr@1"] > expect["mrr@1"]  # the own row made it easier


def test_one_relevant_item_recall_equals_clip_recall_at_k():
    query, corpus, g = _data(q=30, n=30, seed=3)
    corpus = query + 1.2 * torch.randn(30, 8, generator=g)
    got = retrieval_metrics(query, corpus, [{i} for i in range(30)], ks=(1, 5, 10))
    clip = recall_at_k(query, corpus, ks=(1, 5, 10))
    for k in (1, 5, 10):
        assert got[f"recall@{k}"] == pytest.approx(clip[f"R@{k}"])
        assert got[f"map@{k}"] == pytest.approx(got[f"mrr@{k}"])  # one relevant item: AP = RR
    assert 0.0 < got["recall@1"] < 1.0


def test_ranked_helpers_hand_computed():
    r = torch.tensor([[0, 0, 1, 0], [1, 0, 1, 0], [0, 0, 0, 0]])
    assert mrr_at_k(r, 3).tolist() == [1 / 3, 1.0, 0.0]
    assert mrr_at_k(r, 2).tolist() == [0.0, 1.0, 0.0]
    ap = average_precision_at_k(r, 4)
    assert ap.tolist() == pytest.approx([1 / 3, (1 + 2 / 3) / 2, 0.0])
    # R = 4 relevant items in the corpus, k = 3: divide by min(k, R) = 3
    assert float(average_precision_at_k(r[1:2], 3, torch.tensor([4]))) == pytest.approx(
        (1 + 2 / 3) / 3
    )
    assert ranked_recall_at_k(r, 1, torch.tensor([2, 4, 0])).tolist() == [0.0, 0.25, 0.0]
    assert ranked_recall_at_k(r, 10).tolist() == [1.0, 1.0, 0.0]  # k beyond the list


def test_ndcg_wikipedia_example():
    # Wikipedia "Discounted cumulative gain": gains 3, 2, 3, 0, 1, 2 -> DCG6 = 6.861,
    # ideal ordering 3, 3, 2, 2, 1, 0 -> IDCG6 = 7.141, nDCG6 = 0.961
    rel = torch.tensor([[3.0, 2.0, 3.0, 0.0, 1.0, 2.0]])
    dcg = 3 + 2 / math.log2(3) + 3 / 2 + 0 + 1 / math.log2(6) + 2 / math.log2(7)
    idcg = 3 + 3 / math.log2(3) + 2 / 2 + 2 / math.log2(5) + 1 / math.log2(6)
    assert float(ndcg_at_k(rel, 6)) == pytest.approx(dcg / idcg)
    assert round(dcg, 3) == 6.861 and round(idcg, 3) == 7.141
    assert float(ndcg_at_k(rel, 6)) == pytest.approx(0.961, abs=5e-4)
    # a relevant item the list missed lowers nDCG through the ideal ordering
    ideal = torch.tensor([[3.0, 2.0, 3.0, 1.0, 2.0, 3.0]])
    lower = float(ndcg_at_k(rel, 6, ideal))
    best = 3 + 3 / math.log2(3) + 3 / 2 + 2 / math.log2(5) + 2 / math.log2(6) + 1 / math.log2(7)
    assert lower == pytest.approx(dcg / best)
    assert float(ndcg_at_k(torch.tensor([[0.0, 0.0]]), 2)) == 0.0


def test_perfect_and_worst_retrieval():
    z = torch.eye(6)
    perfect = retrieval_metrics(z, z, [{i} for i in range(6)], ks=(1, 3))
    assert all(perfect[key] == 1.0 for key in perfect if "@" in key)
    # the relevant item is the least similar one: rank 6 of 6
    worst = retrieval_metrics(z, -z + 0.01, [{i} for i in range(6)], ks=(1, 6))
    assert worst["mrr@1"] == 0.0 and worst["mrr@6"] == pytest.approx(1 / 6)
    assert worst["ndcg@6"] == pytest.approx(1 / math.log2(7))
    assert worst["recall@6"] == 1.0


def test_errors_name_the_problem():
    query, corpus, _ = _data(q=3, n=5)
    with pytest.raises(ValueError, match="same encoder"):
        retrieval_metrics(query, corpus[:, :4], [{0}] * 3)
    with pytest.raises(ValueError, match="one set of relevant"):
        retrieval_metrics(query, corpus, [{0}] * 2)
    with pytest.raises(ValueError, match=r"outside 0\.\.4"):
        retrieval_metrics(query, corpus, [{0}, {7}, set()])
    with pytest.raises(ValueError, match="negative or non-finite"):
        retrieval_metrics(query, corpus, -torch.ones(3, 5))
    with pytest.raises(ValueError, match=r"shape \(Q, N\)"):
        retrieval_metrics(query, corpus, torch.ones(3, 4))
    with pytest.raises(ValueError, match="no query has a relevant"):
        retrieval_metrics(query, corpus, [set(), set(), set()])
    with pytest.raises(ValueError, match="no query has a relevant"):
        retrieval_metrics(query, corpus, [{0}, {1}, {2}], exclude=torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="exclude must be an integer"):
        retrieval_metrics(query, corpus, [{0}] * 3, exclude=torch.zeros(3))
    with pytest.raises(ValueError, match="ks must be"):
        retrieval_metrics(query, corpus, [{0}] * 3, ks=())
    with pytest.raises(ValueError, match="non-finite"):
        retrieval_metrics(query * float("nan"), corpus, [{0}] * 3)
    with pytest.raises(ValueError, match="2-D"):
        mrr_at_k(torch.ones(3), 1)
