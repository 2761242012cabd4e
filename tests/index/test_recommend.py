"""The served recommender: top-k by score with training items left out, "more like this",
and files that round-trip and refuse to load when changed."""

from __future__ import annotations

import json

import pytest
import torch

from contrastkit.index.recommend import Recommender


def _rec(score: str = "dot") -> Recommender:
    g = torch.Generator().manual_seed(0)
    users = torch.randn(5, 4, generator=g)
    items = torch.randn(12, 4, generator=g)
    seen = torch.tensor([[0, 1], [0, 3], [2, 0], [4, 11]])
    return Recommender(
        users,
        items,
        seen=seen,
        user_ids=[f"u{i}" for i in range(5)],
        item_ids=[str(100 + i) for i in range(12)],
        item_titles=[f"film {i}" for i in range(12)],
        score=score,
        meta={"recipe": "test"},
    )


def _loop_topk(rec: Recommender, u: int, k: int, exclude: bool) -> list[int]:
    """The ranking written out: every item's score, seen ones dropped, sorted."""
    seen = {int(i) for uu, i in zip(*_seen_pairs(rec)) if uu == u}
    scored = []
    for i in range(len(rec.item_ids)):
        if exclude and i in seen:
            continue
        a, b = rec.users[u], rec.items[i]
        s = float(a @ b) if rec.score == "dot" else float(a @ b / (a.norm() * b.norm()))
        scored.append((-s, i))
    return [i for _, i in sorted(scored)[:k]]


def _seen_pairs(rec: Recommender) -> tuple[list[int], list[int]]:
    users = torch.repeat_interleave(torch.arange(len(rec.user_ids)), rec.seen_indptr.diff())
    return users.tolist(), rec.seen_items.tolist()


@pytest.mark.parametrize("score", ["dot", "cosine"])
@pytest.mark.parametrize("exclude", [True, False])
def test_recommend_equals_an_explicit_ranking(score: str, exclude: bool) -> None:
    rec = _rec(score)
    for u in range(5):
        got = [r.index for r in rec.recommend(f"u{u}", k=5, exclude_seen=exclude)]
        assert got == _loop_topk(rec, u, 5, exclude)


def test_seen_items_are_left_out_and_ranks_and_titles_are_given() -> None:
    rec = _rec()
    hits = rec.recommend("u0", k=12)
    assert len(hits) == 10  # 12 items, 2 seen
    assert {h.item_id for h in hits}.isdisjoint({"101", "103"})
    assert [h.rank for h in hits] == list(range(1, 11))
    assert all(h.title == f"film {h.index}" for h in hits)
    assert rec.seen_by("u0") == ["101", "103"]
    # scores are sorted, highest first
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_ids_given_as_int_work_and_unknown_ids_name_valid_ones() -> None:
    rec = _rec()
    assert rec.item_row(105) == 5
    with pytest.raises(KeyError, match=r"unknown user 'nobody'.*'u0'"):
        rec.recommend("nobody")
    with pytest.raises(KeyError, match="unknown item"):
        rec.similar_items("x")
    with pytest.raises(ValueError, match="k must be at least 1"):
        rec.recommend("u1", k=0)


def test_similar_items_is_cosine_without_the_item_itself() -> None:
    rec = _rec()
    hits = rec.similar_items("100", k=3)
    items = torch.nn.functional.normalize(rec.items, dim=1)
    sims = items @ items[0]
    sims[0] = -2
    assert [h.index for h in hits] == sims.topk(3).indices.tolist()
    assert hits[0].score == pytest.approx(float(sims.max()), abs=1e-5)


def test_save_load_round_trip(tmp_path) -> None:
    rec = _rec("cosine")
    rec.save(tmp_path / "run" / "recommender")
    back = Recommender.load(tmp_path / "run")  # the run folder works too
    assert back.score == "cosine" and back.meta == {"recipe": "test"}
    assert torch.equal(back.users, rec.users) and torch.equal(back.items, rec.items)
    for u in rec.user_ids:
        assert [h.item_id for h in back.recommend(u, k=4)] == [
            h.item_id for h in rec.recommend(u, k=4)
        ]
    assert [h.item_id for h in back.similar_items("104", k=3)] == [
        h.item_id for h in rec.similar_items("104", k=3)
    ]


def test_changed_files_refuse_to_load(tmp_path) -> None:
    folder = _rec().save(tmp_path / "rec")
    tables = folder / "recommender.safetensors"
    data = bytearray(tables.read_bytes())
    data[-1] ^= 0xFF
    tables.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        Recommender.load(folder)
    with pytest.raises(FileNotFoundError, match="contrastkit train --recipe xsimgcl"):
        Recommender.load(tmp_path / "nothing")
    meta = folder / "recommender.json"
    meta.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a recommender"):
        Recommender.load(folder)


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="same D"):
        Recommender(
            torch.ones(2, 3),
            torch.ones(2, 4),
            seen=torch.zeros(0, 2),
            user_ids=["a", "b"],
            item_ids=["x", "y"],
        )
    with pytest.raises(ValueError, match="outside"):
        Recommender(
            torch.ones(2, 3),
            torch.ones(2, 3),
            seen=torch.tensor([[0, 5]]),
            user_ids=["a", "b"],
            item_ids=["x", "y"],
        )
    with pytest.raises(ValueError, match="one id per row"):
        Recommender(
            torch.ones(2, 3),
            torch.ones(2, 3),
            seen=torch.zeros(0, 2),
            user_ids=["a"],
            item_ids=["x", "y"],
        )


def test_items_with_zero_embeddings_are_ranked_but_not_indexed(tmp_path) -> None:
    """Graph models that average propagated layers give an item no training interaction
    reaches a zero embedding: it scores 0 for every user, is never "similar", and asking
    for items like it is a clear error."""
    items = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    rec = Recommender(
        torch.tensor([[1.0, 0.2]]), items, seen=torch.zeros(0, 2, dtype=torch.long),
        user_ids=["u"], item_ids=["a", "zero", "b", "c"],
    )  # fmt: skip
    assert [h.item_id for h in rec.recommend("u", k=4)] == ["a", "b", "c", "zero"]
    assert [h.item_id for h in rec.similar_items("a", k=3)] == ["b", "c"]
    with pytest.raises(ValueError, match="zero embedding"):
        rec.similar_items("zero")
    back = Recommender.load(rec.save(tmp_path / "r"))
    assert [h.item_id for h in back.similar_items("a", k=3)] == ["b", "c"]
