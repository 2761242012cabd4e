"""topk_similar against a brute-force full-matrix search: chunking, exclusions, ties, dtypes,
and the memory bound (no intermediate of the size of the (Q, N) table)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from contrastkit.neighbours import topk_similar


def brute_force(queries, keys, k, metric="cosine", mask=None, max_score=None):
    """The full (Q, N) table, excluded entries at -inf, ranked by (score desc, index asc) with
    a stable sort of the whole row; -1 where the score is -inf."""
    dtype = torch.float64 if torch.float64 in (queries.dtype, keys.dtype) else torch.float32
    q, c = queries.to(dtype), keys.to(dtype)
    if metric == "cosine":
        q, c = F.normalize(q, dim=1), F.normalize(c, dim=1)
    sim = q @ c.T
    if mask is not None:
        sim = sim.masked_fill(mask, -float("inf"))
    if max_score is not None:
        bound = max_score[:, None] if isinstance(max_score, torch.Tensor) else max_score
        sim = sim.masked_fill(sim > bound, -float("inf"))
    s, i = sim.sort(dim=1, descending=True, stable=True)
    s, i = s[:, :k], i[:, :k]
    return s, i.masked_fill(s == -float("inf"), -1)


def _data(q=37, n=53, d=8, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(q, d, generator=g, dtype=dtype), torch.randn(n, d, generator=g, dtype=dtype)


@pytest.mark.parametrize("metric", ["cosine", "dot"])
@pytest.mark.parametrize(
    "chunk_size,key_chunk_size", [(1024, None), (5, None), (7, 11), (1, 1), (37, 53), (4, 3)]
)
def test_matches_brute_force_for_any_chunking(metric, chunk_size, key_chunk_size):
    queries, keys = _data()
    want_s, want_i = brute_force(queries, keys, 6, metric)
    got_s, got_i = topk_similar(
        queries, keys, 6, metric=metric, chunk_size=chunk_size, key_chunk_size=key_chunk_size
    )
    assert got_s.shape == got_i.shape == (37, 6) and got_i.dtype == torch.int64
    torch.testing.assert_close(got_s, want_s, rtol=0, atol=1e-6)
    assert torch.equal(got_i, want_i)


def test_k_equal_to_n_and_above_gives_the_whole_ranking():
    queries, keys = _data(q=9, n=13)
    want_s, want_i = brute_force(queries, keys, 13)
    for k in (13, 100):
        s, i = topk_similar(queries, keys, k, chunk_size=4, key_chunk_size=5)
        assert i.shape == (9, 13)
        assert torch.equal(i, want_i)
        assert sorted(i[0].tolist()) == list(range(13))  # every key, once
        torch.testing.assert_close(s, want_s, rtol=0, atol=1e-6)
    s, i = topk_similar(queries, keys, 0)
    assert s.shape == i.shape == (9, 0)


def test_exclude_self_never_returns_the_query_and_matches_brute_force():
    _, keys = _data(n=41)
    eye = torch.eye(41, dtype=torch.bool)
    for chunks in ((1024, None), (6, 7), (1, 1)):
        s, i = topk_similar(
            keys, keys, 5, exclude_self=True, chunk_size=chunks[0], key_chunk_size=chunks[1]
        )
        assert not bool((i == torch.arange(41)[:, None]).any())
        want_s, want_i = brute_force(keys, keys, 5, mask=eye)
        assert torch.equal(i, want_i)
        torch.testing.assert_close(s, want_s, rtol=0, atol=1e-6)
    # queries that are the first rows of the keys; k = N leaves one slot empty: -inf, -1
    s, i = topk_similar(keys[:10], keys, 41, exclude_self=True, key_chunk_size=8)
    assert torch.equal(i[:, -1], torch.full((10,), -1)) and bool(torch.isinf(s[:, -1]).all())
    assert torch.equal(i[:, :-1], brute_force(keys[:10], keys, 40, mask=eye[:10])[1])


def test_exclude_by_mask_by_indices_and_max_score():
    queries, keys = _data()
    g = torch.Generator().manual_seed(3)
    mask = torch.rand(37, 53, generator=g) < 0.3
    want = brute_force(queries, keys, 8, mask=mask)
    got = topk_similar(queries, keys, 8, exclude=mask, chunk_size=6, key_chunk_size=9)
    assert torch.equal(got[1], want[1])
    # (Q,) and (Q, m) integer indices, -1 for none
    idx = torch.randint(-1, 53, (37, 3), generator=g)
    as_mask = torch.zeros(37, 53, dtype=torch.bool)
    rows, cols = (idx >= 0).nonzero(as_tuple=True)
    as_mask[rows, idx[rows, cols]] = True
    for ex, m in ((idx, as_mask), (idx[:, 0], as_mask & (torch.arange(53) == idx[:, :1]))):
        got = topk_similar(queries, keys, 8, exclude=ex, chunk_size=5, key_chunk_size=4)
        assert torch.equal(got[1], brute_force(queries, keys, 8, mask=m)[1])
    # per-query upper bounds; queries with fewer keys left get -inf / -1 slots
    bound = torch.linspace(-0.9, 0.5, 37)
    s, i = topk_similar(queries, keys, 30, max_score=bound, chunk_size=8, key_chunk_size=10)
    _, want_i = brute_force(queries, keys, 30, max_score=bound)
    assert torch.equal(i, want_i) and bool((i[0] == -1).any())
    assert bool((s[i >= 0] <= bound[:, None].expand_as(s)[i >= 0]).all())
    got = topk_similar(queries, keys, 5, max_score=0.2)[1]
    assert torch.equal(got, brute_force(queries, keys, 5, max_score=0.2)[1])


def test_ties_go_to_the_lower_key_index_in_order_and_in_membership():
    # many exactly equal scores: keys are copies of three directions
    g = torch.Generator().manual_seed(4)
    base = torch.eye(3)
    keys = base[torch.randint(0, 3, (200,), generator=g)]
    queries = base[torch.randint(0, 3, (20,), generator=g)] + 0.1
    want_s, want_i = brute_force(queries, keys, 25)
    for chunks in ((1024, None), (3, 17), (1, 1), (20, 64)):
        s, i = topk_similar(queries, keys, 25, chunk_size=chunks[0], key_chunk_size=chunks[1])
        assert torch.equal(i, want_i), chunks
        assert torch.equal(s, want_s)
    # the first 25 keys of the query's own direction, in index order
    own = (keys @ base.T).argmax(1)
    q0 = int(queries[0].argmax())
    assert i[0].tolist() == (own == q0).nonzero().flatten()[:25].tolist()


def test_float64_inputs_stay_float64():
    queries, keys = _data(dtype=torch.float64)
    s, i = topk_similar(queries, keys, 7, chunk_size=10, key_chunk_size=13)
    assert s.dtype == torch.float64
    want_s, want_i = brute_force(queries, keys, 7)
    assert torch.equal(i, want_i)
    torch.testing.assert_close(s, want_s, rtol=0, atol=1e-12)
    # a float64 side promotes the other
    assert topk_similar(queries.float(), keys, 3)[0].dtype == torch.float64


def test_bf16_inputs_are_scored_in_float32_even_under_autocast():
    queries, keys = _data()
    qb, kb = queries.bfloat16(), keys.bfloat16()
    want_s, want_i = brute_force(qb.float(), kb.float(), 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        s, i = topk_similar(qb, kb, 6, chunk_size=8, key_chunk_size=16)
        s2, _ = topk_similar(queries, keys, 6)
    assert s.dtype == s2.dtype == torch.float32
    assert torch.equal(i, want_i)
    torch.testing.assert_close(s, want_s, rtol=0, atol=1e-6)
    torch.testing.assert_close(s2, brute_force(queries, keys, 6)[0], rtol=0, atol=1e-6)


class _Sizes(TorchFunctionMode):
    """Records the element count of every tensor a torch function returns."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_memory_is_bounded_by_the_chunks_not_the_table():
    q, n, d, k = 257, 263, 3, 4
    queries, keys = _data(q=q, n=n, d=d)
    with _Sizes() as sizes:
        s, i = topk_similar(queries, keys, k, chunk_size=5, key_chunk_size=7)
    # the largest tensor formed: the normalised keys (N × D) or the results (Q × k); the
    # (Q, N) table has 67,591 entries, one chunk 35, a merge 5 × 2k = 40
    assert sizes.largest <= max(n * d, q * k) < q * n // 50
    with _Sizes() as sizes:
        topk_similar(queries, keys, k, chunk_size=5)  # all keys at once: O(chunk × N)
    assert sizes.largest <= max(n * d, q * k, 5 * n)
    # chunks of one query and one key give the same result as one block
    one = topk_similar(queries, keys, k, chunk_size=1, key_chunk_size=1)
    assert torch.equal(one[1], i) and torch.equal(topk_similar(queries, keys, k)[1], i)
    torch.testing.assert_close(one[0], s, rtol=0, atol=1e-6)


def test_no_gradient_and_keys_device():
    queries, keys = _data()
    keys.requires_grad_(True)
    s, _ = topk_similar(queries, keys, 3)
    assert not s.requires_grad and s.device == keys.device


def test_errors_name_the_problem():
    queries, keys = _data()
    with pytest.raises(ValueError, match="dimension"):
        topk_similar(queries, keys[:, :4], 3)
    with pytest.raises(ValueError, match="2-D floating"):
        topk_similar(queries.long(), keys, 3)
    with pytest.raises(ValueError, match="k must be an integer"):
        topk_similar(queries, keys, -1)
    with pytest.raises(ValueError, match="chunk_size"):
        topk_similar(queries, keys, 3, chunk_size=0)
    with pytest.raises(ValueError, match="metric"):
        topk_similar(queries, keys, 3, metric="euclidean")
    with pytest.raises(ValueError, match=r"\(Q, N\) = \(37, 53\)"):
        topk_similar(queries, keys, 3, exclude=torch.zeros(37, 52, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"outside -1\.\.52"):
        topk_similar(queries, keys, 3, exclude=torch.full((37,), 53))
    with pytest.raises(ValueError, match="max_score"):
        topk_similar(queries, keys, 3, max_score=torch.zeros(5))
