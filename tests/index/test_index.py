"""EmbeddingIndex: exact vs a loop, usearch vs exact, safe save/load, dedup, semantic search."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
import torch

from contrastkit.index import (
    EmbeddingIndex,
    SearchHit,
    SemanticSearch,
    deduplicate,
    near_duplicates,
)


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _brute_force(corpus, query, k):
    """(index, cosine) of the k most similar rows, by an explicit loop in float64."""
    out = []
    for q in query.double():
        sims = []
        for j, c in enumerate(corpus.double()):
            sims.append((float(q @ c) / (float(q.norm()) * float(c.norm())), j))
        sims.sort(key=lambda t: -t[0])
        out.append(sims[:k])
    return out


def test_exact_search_equals_a_brute_force_loop():
    corpus, query = _randn(300, 16), _randn(7, 16, seed=1)
    index = EmbeddingIndex(16, backend="exact")
    index.add(corpus[:100])
    index.add(corpus[100:])  # appended blocks behave as one matrix
    hits = index.search(query, k=10)
    for row, expect in zip(hits, _brute_force(corpus, query, 10)):
        assert [h.index for h in row] == [j for _, j in expect]
        assert [h.rank for h in row] == list(range(1, 11))
        for h, (s, _) in zip(row, expect):
            assert h.score == pytest.approx(s, abs=1e-5)
            assert h.id == str(h.index) and h.text is None
    single = index.search(query[0], k=3)  # a (D,) query gives one list
    assert len(single) == 1 and [h.index for h in single[0]] == [h.index for h in hits[0][:3]]
    assert [h.score for h in single[0]] == pytest.approx([h.score for h in hits[0][:3]], abs=1e-6)
    assert len(index.search(query, k=1000)[0]) == 300  # k capped at N


def test_usearch_agrees_with_exact_on_random_data():
    corpus, query = _randn(5000, 32), _randn(200, 32, seed=1)
    exact = EmbeddingIndex(32, backend="exact")
    approx = EmbeddingIndex(32, backend="usearch")
    exact.add(corpus)
    approx.add(corpus)
    assert approx.backend == "usearch" and len(approx) == 5000
    _, i_exact = exact.search_topk(query, 10)
    s_approx, i_approx = approx.search_topk(query, 10)
    found = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(i_exact, i_approx))
    assert found / (200 * 10) >= 0.95
    assert bool((s_approx[:, :-1] >= s_approx[:, 1:]).all())  # best first
    # scores are exact cosines of the returned rows, whichever backend found them
    rows = torch.nn.functional.normalize(corpus, dim=1)[i_approx]
    q = torch.nn.functional.normalize(query, dim=1)
    torch.testing.assert_close(s_approx, torch.einsum("qkd,qd->qk", rows, q))
    # exact=True bypasses the graph
    torch.testing.assert_close(approx.search_topk(query, 10, exact=True)[1], i_exact)


@pytest.mark.parametrize("backend", ["exact", "usearch"])
def test_save_load_round_trip(tmp_path, backend):
    corpus, query = _randn(500, 24), _randn(20, 24, seed=1)
    ids = [f"doc-{i}" for i in range(500)]
    texts = [f"text {i}" for i in range(500)]
    index = EmbeddingIndex(24, backend=backend, meta={"encoder": "runs/simcse/encoder"})
    index.add(corpus, ids=ids, texts=texts)
    before = index.search(query, k=10)
    index.save(tmp_path)
    names = sorted(p.suffix for p in tmp_path.iterdir())
    assert names == sorted(
        [".json", ".safetensors"] + ([".usearch"] if backend == "usearch" else [])
    )
    loaded = EmbeddingIndex.load(tmp_path)
    assert loaded.backend == backend and len(loaded) == 500
    assert loaded.meta == {"encoder": "runs/simcse/encoder"}
    assert loaded.ids == ids and loaded.texts == texts
    assert torch.equal(loaded.embeddings, index.embeddings)
    assert loaded.search(query, k=10) == before  # identical hits, ids, texts and scores
    assert before[0][0].id.startswith("doc-") and before[0][0].text.startswith("text ")
    assert loaded.row_of("doc-7") == 7
    # it keeps growing after loading
    loaded.add(_randn(5, 24, seed=9), ids=[f"new-{i}" for i in range(5)])
    assert len(loaded) == 505 and loaded.search(_randn(5, 24, seed=9)[2], k=1)[0][0].id == "new-2"


def test_missing_graph_is_rebuilt_and_backend_can_be_overridden(tmp_path):
    corpus = _randn(400, 16)
    index = EmbeddingIndex(16, backend="usearch")
    index.add(corpus)
    index.save(tmp_path)
    (graph,) = tmp_path.glob("*.usearch")
    graph.unlink()
    with pytest.warns(UserWarning, match="rebuilding it"):
        loaded = EmbeddingIndex.load(tmp_path)
    assert loaded.backend == "usearch" and len(loaded) == 400
    assert loaded.search(corpus[3], k=1)[0][0].index == 3
    as_exact = EmbeddingIndex.load(tmp_path, backend="exact")
    assert as_exact.backend == "exact"
    assert as_exact.search_topk(corpus[:5], 1)[1].flatten().tolist() == [0, 1, 2, 3, 4]


def _flip(path, offset_from_end=8, n=4):
    raw = bytearray(path.read_bytes())
    for i in range(n):
        raw[-offset_from_end - i] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_damaged_index_files_are_detected_on_load(tmp_path):
    index = EmbeddingIndex(8, backend="usearch")
    index.add(_randn(300, 8), texts=[f"t{i}" for i in range(300)])
    index.save(tmp_path)
    (emb,) = tmp_path.glob("*.safetensors")
    (graph,) = tmp_path.glob("*.usearch")
    meta = tmp_path / "index.json"
    good = {p: p.read_bytes() for p in (emb, graph, meta)}
    _flip(emb)  # bytes inside the embeddings: a checksum mismatch, in one line
    with pytest.raises(ValueError, match=r"embeddings-.*damaged.*sha256.*build the index again"):
        EmbeddingIndex.load(tmp_path)
    emb.write_bytes(good[emb])
    meta.write_text(meta.read_text().replace('"t7"', '"t8"'))  # an edited text
    with pytest.raises(ValueError, match=r"index.json: the index file is damaged.*sha256"):
        EmbeddingIndex.load(tmp_path)
    meta.write_bytes(good[meta][:-40])  # cut short
    with pytest.raises(ValueError, match="not valid JSON"):
        EmbeddingIndex.load(tmp_path)
    meta.write_bytes(good[meta])
    _flip(graph, offset_from_end=100)  # a damaged graph is rebuilt from the checked rows
    with pytest.warns(UserWarning, match="does not match its checksum"):
        loaded = EmbeddingIndex.load(tmp_path)
    assert loaded.search(index.embeddings[5], k=1)[0][0].index == 5
    assert EmbeddingIndex.load(tmp_path, backend="exact").texts[7] == "t7"


def test_a_failed_save_leaves_the_previous_one_loadable(tmp_path, monkeypatch):
    import contrastkit.index.embedding_index as module

    index = EmbeddingIndex(8, backend="exact")
    index.add(_randn(10, 8), ids=[f"a{i}" for i in range(10)])
    index.save(tmp_path)
    index.add(_randn(5, 8, seed=1))

    def crash(path, data):
        raise OSError("disk full")

    monkeypatch.setattr(module, "atomic_write_bytes", crash)
    with pytest.raises(OSError, match="disk full"):
        index.save(tmp_path)
    monkeypatch.undo()
    assert len(EmbeddingIndex.load(tmp_path)) == 10  # the first save, intact
    index.save(tmp_path)
    assert len(EmbeddingIndex.load(tmp_path)) == 15
    assert len(list(tmp_path.glob("embeddings-*.safetensors"))) == 1  # leftovers cleaned up
    assert not list(tmp_path.glob(".*.tmp*"))  # no temp file of the atomic writer is left


def test_saved_files_hold_no_pickles(tmp_path):
    index = EmbeddingIndex(4, backend="usearch", meta={"encoder": "x"})
    index.add(torch.eye(4), texts=list("abcd"))
    index.save(tmp_path)
    for path in tmp_path.iterdir():
        data = path.read_bytes()
        assert not data.startswith(b"\x80"), f"{path.name} looks like a pickle"
    with pytest.raises(FileNotFoundError, match="not a saved EmbeddingIndex"):
        EmbeddingIndex.load(tmp_path / "nowhere")


def test_auto_backend_switches_at_the_threshold():
    index = EmbeddingIndex(16, auto_threshold=100)
    index.add(_randn(60, 16))
    assert index.backend == "exact"
    index.add(_randn(60, 16, seed=1))
    assert index.backend == "usearch" and len(index) == 120
    index.add(_randn(3, 16, seed=2))  # later rows go straight into the graph
    assert index.search(_randn(3, 16, seed=2)[1], k=1)[0][0].index == 121


def test_add_and_search_errors():
    index = EmbeddingIndex(4, backend="exact")
    with pytest.raises(ValueError, match="empty"):
        index.search(torch.ones(4))
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        index.add(torch.ones(2, 5))
    with pytest.raises(ValueError, match="NaN or infinite"):
        index.add(torch.tensor([[1.0, float("nan"), 0.0, 0.0]]))
    with pytest.raises(ValueError, match="all-zero rows"):
        index.add(torch.zeros(1, 4))
    index.add(torch.eye(4), ids=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="given twice"):
        index.add(torch.eye(4)[:1], ids=["a"])
    with pytest.raises(ValueError, match="list of 2 strings"):
        index.add(torch.eye(4)[:2], ids=["x"])
    with pytest.raises(ValueError, match="Did you mean 'exact'"):
        EmbeddingIndex(4, backend="exakt")
    with pytest.raises(ValueError, match="JSON"):
        EmbeddingIndex(4, meta={"encoder": object()})
    with pytest.raises(KeyError, match="not in the index"):
        index.row_of("zzz")
    assert isinstance(index.search(torch.ones(4), k=1)[0][0], SearchHit)


def _planted(n=500, d=64, seed=0):
    base = torch.nn.functional.normalize(_randn(n, d, seed=seed), dim=1)
    sources = [3, 17, 42, 42, 99, 150, 151, 199]  # 42 twice: a group of three
    noise = 0.01 * _randn(len(sources), d, seed=seed + 1)
    copies = base[sources] + noise
    z = torch.cat([base, copies])
    expect = {(s, n + c) for c, s in enumerate(sources)}
    expect.add((n + 2, n + 3))  # the two copies of 42 are near-duplicates of each other
    return z, expect


@pytest.mark.parametrize("backend", ["exact", "usearch"])
def test_near_duplicates_find_exactly_the_planted_ones(backend):
    z, expect = _planted()
    pairs = near_duplicates(z, threshold=0.95, backend=backend)
    assert {(i, j) for i, j, _ in pairs} == expect and len(pairs) == len(expect)
    scores = [s for _, _, s in pairs]
    assert scores == sorted(scores, reverse=True) and min(scores) > 0.99
    for i, j, s in pairs:
        assert i < j
        assert s == pytest.approx(float(torch.cosine_similarity(z[i], z[j], dim=0)), abs=1e-5)
    assert deduplicate(z, threshold=0.95, backend=backend).tolist() == list(range(500))


def test_near_duplicates_reuse_a_matching_index_only():
    z, expect = _planted(n=200)
    index = EmbeddingIndex(64, backend="exact")
    index.add(z)
    assert {(i, j) for i, j, _ in near_duplicates(z, index=index)} == expect
    with pytest.raises(ValueError, match="row i of the index"):
        near_duplicates(z.flip(0), index=index)
    with pytest.raises(ValueError, match="exactly these embeddings"):
        near_duplicates(z[:10], index=index)


def test_deduplicate_joins_chains_and_keeps_the_first_row():
    # 0 ≈ 1 and 1 ≈ 2 (but 0 and 2 are further apart): one group; 3 alone; 4 ≈ 5
    angles = [0.0, 0.25, 0.5, 2.0, 3.0, 3.2]
    z = torch.tensor([[math.cos(a), math.sin(a)] for a in angles])
    threshold = math.cos(0.3)
    pairs = near_duplicates(z, threshold=threshold, k=5)
    assert {(i, j) for i, j, _ in pairs} == {(0, 1), (1, 2), (4, 5)}
    assert deduplicate(z, threshold=threshold, k=5).tolist() == [0, 3, 4]


_WORDS = "red apples and pears fast cars on roads green slow boats rivers".split()


def _bow_encoder(texts):
    """A deterministic bag-of-words encoder over a fixed vocabulary (+ a small constant)."""
    out = torch.full((len(texts), len(_WORDS)), 1e-3)
    for i, text in enumerate(texts):
        for word in text.lower().split():
            if word in _WORDS:
                out[i, _WORDS.index(word)] += 1.0
    return out


def test_semantic_search_build_search_save_load(tmp_path):
    corpus = ["red apples and pears", "fast cars on roads", "green pears", "slow boats on rivers"]
    search = SemanticSearch.build(
        _bow_encoder,
        corpus,
        ids=["a", "b", "c", "d"],
        backend="exact",
        meta={"encoder": "bow"},
        batch_size=3,
    )
    top = search.search("pears", k=2)
    assert {h.id for h in top} == {"a", "c"} and top[0].text in corpus
    many = search.search(["cars roads", "boats rivers"], k=1)
    assert [hits[0].id for hits in many] == ["b", "d"]
    search.save(tmp_path)
    again = SemanticSearch.load(tmp_path, _bow_encoder)
    assert again.index.meta == {"encoder": "bow"}
    assert again.search("pears", k=2) == top
    with pytest.raises(ValueError, match="one embedding per text"):
        SemanticSearch(lambda texts: torch.ones(3), search.index).search("x")
    with pytest.raises(ValueError, match="texts is empty"):
        SemanticSearch.build(_bow_encoder, [])


def test_index_layer_imports_no_recipes_train_or_cli():
    src = Path(__file__).resolve().parents[2] / "src" / "contrastkit" / "index"
    for path in src.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "contrastkit" and len(parts) > 1:
                    assert parts[1] not in {"recipes", "train", "cli"}, f"{path.name}: {name}"
