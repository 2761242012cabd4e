"""The explorer's JSON API (``contrastkit serve``) over a text index and an image index, through
Starlette's test client: search, neighbours, embed, the cached map, thumbnails, errors."""

from __future__ import annotations

import io
import json
import warnings

import pytest

pytest.importorskip("starlette", reason="the [serve] extra (starlette, uvicorn) is missing")
pytest.importorskip("httpx", reason="starlette's test client needs httpx")

from starlette.testclient import TestClient

from contrastkit.app.serve import MAP_FILE, Explorer, build_app
from contrastkit.app.text import build_search_index
from contrastkit.encoders import SmallTextEncoder, build_vocab
from contrastkit.train.export import export_encoder

TEXTS = [
    f"{w} {noun} number {i}" for i in range(10) for w, noun in (("good", "film"), ("poor", "book"))
]


@pytest.fixture(scope="module")
def text_index(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve_text")
    (tmp / "texts.txt").write_text("\n".join(TEXTS) + "\n")
    export_encoder(SmallTextEncoder(build_vocab(TEXTS), dim=16), tmp / "enc", "small_text")
    build_search_index(str(tmp / "enc"), str(tmp / "texts.txt"), str(tmp / "index"))
    return tmp / "index"


@pytest.fixture(scope="module")
def text_client(text_index):
    return TestClient(build_app(Explorer(text_index, map_method="pca")))


def test_the_page_and_the_index_info(text_client):
    page = text_client.get("/")
    assert page.status_code == 200 and "contrastkit explorer" in page.text
    info = text_client.get("/info").json()
    assert info["kind"] == "text" and info["rows"] == len(TEXTS) and info["dim"] == 16


def test_text_search_returns_ranked_hits_with_scores(text_client):
    res = text_client.get("/search", params={"q": "good film number 3", "k": 5}).json()
    hits = res["hits"]
    assert [h["rank"] for h in hits] == [1, 2, 3, 4, 5]
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0 + 1e-6 for s in scores)
    assert hits[0]["text"] == "good film number 3"  # the exact text is its own best match
    assert res["ms"] >= 0


def test_neighbours_leave_the_row_itself_out(text_client):
    hits = text_client.get("/neighbors", params={"row": 4, "k": 3}).json()["hits"]
    assert len(hits) == 3 and 4 not in [h["row"] for h in hits]
    by_id = text_client.get("/neighbors", params={"id": hits[0]["id"], "k": 2}).json()["hits"]
    assert len(by_id) == 2


def test_embed_gives_unit_vectors_of_the_index_dimension(text_client):
    res = text_client.post("/embed", json={"texts": ["good film", "poor book"]}).json()
    assert res["dim"] == 16 and len(res["embeddings"]) == 2
    norms = [sum(v * v for v in row) ** 0.5 for row in res["embeddings"]]
    assert all(abs(n - 1.0) < 1e-5 for n in norms)


def test_the_map_has_every_row_in_the_unit_square_and_is_cached(text_index, text_client):
    m = text_client.get("/map").json()
    assert m["method"] == "pca" and len(m["points"]) == len(TEXTS)
    assert all(0.0 <= p["x"] <= 1.0 and 0.0 <= p["y"] <= 1.0 for p in m["points"])
    assert [p["row"] for p in m["points"]] == list(range(len(TEXTS)))
    cached = json.loads((text_index / MAP_FILE).read_text())
    assert cached["method"] == "pca" and len(cached["xy"]) == len(TEXTS)
    again = Explorer(text_index, map_method="pca").map()  # read from the cache
    assert [(p["x"], p["y"]) for p in again["points"]] == [(p["x"], p["y"]) for p in m["points"]]


def test_the_map_uses_umap_when_asked(text_index):
    pytest.importorskip("umap")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = Explorer(text_index, map_method="umap").map()
    assert m["method"] == "umap" and len(m["points"]) == len(TEXTS)


@pytest.mark.parametrize(
    "method,url,kwargs,status,words",
    [
        ("get", "/search", {"params": {"q": ""}}, 400, "query"),
        ("get", "/search", {"params": {"q": "good", "k": 0}}, 400, "between 1"),
        ("get", "/search", {"params": {"q": "good", "k": "many"}}, 400, "whole number"),
        ("get", "/neighbors", {"params": {"row": 999}}, 404, "not in the index"),
        ("get", "/neighbors", {"params": {"id": "nope"}}, 404, "not in the index"),
        ("get", "/neighbors", {}, 400, "id="),
        ("post", "/embed", {"json": {"texts": []}}, 400, "texts"),
        ("post", "/embed", {"content": b"not json"}, 400, "JSON"),
        ("post", "/search", {"content": b"\x89PNG"}, 400, "text index"),
        ("get", "/thumb/1", {}, 400, "no images"),
    ],
)
def test_bad_requests_get_a_json_error_that_says_what_to_send(
    text_client, method, url, kwargs, status, words
):
    res = getattr(text_client, method)(url, **kwargs)
    assert res.status_code == status, res.text
    assert words in res.json()["error"]


# ---- an image index from a small CLIP run --------------------------------------------------------
@pytest.fixture(scope="module")
def image_client(tmp_path_factory):
    from contrastkit.app.image_text import build_image_index

    from .test_image_text import train_small_clip

    tmp = tmp_path_factory.mktemp("serve_images")
    root, _, _ = train_small_clip(tmp, copies=3, epochs=1)
    build_image_index(str(tmp / "run"), str(root), str(tmp / "index"))
    return TestClient(build_app(Explorer(tmp / "index", map_method="pca"))), root


def test_an_image_index_searches_by_text_and_by_image_and_serves_thumbnails(image_client):
    from PIL import Image

    client, root = image_client
    info = client.get("/info").json()
    assert info["kind"] == "image_text" and info["labels"]
    hits = client.get("/search", params={"q": "a red square", "k": 4}).json()["hits"]
    assert len(hits) == 4 and {"row", "id", "score", "label"} <= set(hits[0])
    upload = (root / "squares" / "red_square_0.png").read_bytes()
    by_image = client.post("/search", params={"k": 3}, content=upload).json()["hits"]
    assert by_image[0]["id"].endswith("red_square_0.png")  # the image finds itself first
    assert by_image[0]["score"] > 0.99
    thumb = client.get(f"/thumb/{by_image[0]['row']}")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(thumb.content)).size == (96, 96)
    m = client.get("/map").json()
    assert m["labels"] == ["bars", "circles", "squares"]
    assert {p["label"] for p in m["points"]} == set(m["labels"])
    bad = client.post("/search", content=b"not an image")
    assert bad.status_code == 400


def test_concurrent_queries_are_embedded_in_batches_with_the_same_answers(text_index):
    import asyncio

    from contrastkit.app.serve import QueryBatcher

    explorer = Explorer(text_index, map_method="pca")
    batcher = QueryBatcher(explorer)
    queries = [f"good film number {i}" for i in range(8)]

    async def many():
        return await asyncio.gather(*(batcher.search(q, 3 + i % 2) for i, q in enumerate(queries)))

    got = asyncio.run(many())
    assert sum(batcher.batches) == 8 and max(batcher.batches) > 1  # concurrent: batched
    for i, (q, hits) in enumerate(zip(queries, got)):
        alone = explorer.search(q, 3 + i % 2)
        assert [h["row"] for h in hits] == [h["row"] for h in alone]
        assert [h["score"] for h in hits] == pytest.approx([h["score"] for h in alone], abs=1e-5)
    with pytest.raises(ValueError, match="query"):
        asyncio.run(batcher.search("   ", 3))
