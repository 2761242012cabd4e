"""``contrastkit serve`` in a real browser: Debian's chromium driven by playwright (the system
binary, no browser download). The tests type a query, check the results, hover the map,
click a point for its neighbours and upload an image, and save screenshots as artefacts in
``$CONTRASTKIT_ARTIFACTS`` (default: ``test-artifacts/`` in the working directory).

On CI (``CI`` set) a missing chromium or playwright fails these tests instead of skipping
them: `.ci/run` installs both."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import warnings
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the [serve] extra (starlette, uvicorn) is missing")
pytest.importorskip("uvicorn", reason="the [serve] extra (uvicorn) is missing")

import uvicorn

from contrastkit.app.serve import Explorer, build_app

from .test_serve import image_client, text_index  # noqa: F401 - fixtures

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("CONTRASTKIT_ARTIFACTS", "test-artifacts"))
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server:
    """uvicorn in a thread on 127.0.0.1, stopped on exit."""

    def __init__(self, app) -> None:
        self.port = _free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("the server did not start in 20 s")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _missing(what: str) -> None:
    """Fail on CI (where .ci/run installs it), skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"the browser tests need {what} on CI; .ci/run installs it")
    pytest.skip(f"{what} is not installed")


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        _missing("Debian's chromium (/usr/bin/chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def _hover_and_click_result_point(page) -> str:
    box = page.locator("#map").bounding_box()
    xy = page.evaluate("() => toScreen(state.points[[...state.marked][0]])")
    page.mouse.move(box["x"] + xy[0], box["y"] + xy[1])
    page.wait_for_selector("#tip", state="visible", timeout=5000)
    tip = page.inner_text("#tip")
    page.mouse.click(box["x"] + xy[0], box["y"] + xy[1])
    page.wait_for_function(
        "() => document.getElementById('status').textContent.includes('nearest')"
    )
    return tip


def test_text_search_map_hover_and_neighbours_in_chromium(text_index, browser):  # noqa: F811
    explorer = Explorer(text_index, map_method="pca")
    with _Server(build_app(explorer)) as url:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=20000)
        assert "20 texts" in page.inner_text("#info")
        page.fill("#q", "good film number 7")
        page.press("#q", "Enter")
        page.wait_for_selector("#results li", timeout=10000)
        items = page.locator("#results li")
        assert items.count() == 10
        assert "good film number 7" in items.first.inner_text()
        assert "results for" in page.inner_text("#status")
        tip = _hover_and_click_result_point(page)
        assert "good film number 7" in tip
        _shot(page, "serve_text_search.png")
        # the neighbours replace the results, without the clicked row itself
        rows = page.eval_on_selector_all("#results li", "els => els.map(e => e.dataset.row)")
        assert len(rows) == 10
        first = explorer.search("good film number 7", k=1)[0]["row"]
        assert str(first) not in rows
        # zooming keeps the page alive and redraws
        box = page.locator("#map").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(0, -400)
        assert page.evaluate("() => state.view.s") > 1.0
        _shot(page, "serve_text_zoomed.png")
        page.close()


def test_image_search_by_text_and_upload_shows_thumbnails(image_client, browser):  # noqa: F811
    client, root = image_client
    folder = Path(client.get("/info").json()["folder"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        explorer = Explorer(folder, map_method="pca")
    with _Server(build_app(explorer)) as url:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=20000)
        assert page.locator("#legend span").count() == 3  # bars, circles, squares
        page.fill("#q", "a blue circle")
        page.press("#q", "Enter")
        page.wait_for_selector("#results li img", timeout=10000)
        page.wait_for_function(
            "() => [...document.querySelectorAll('#results img')].every(i => i.naturalWidth > 0)"
        )
        _shot(page, "serve_image_text_search.png")
        page.set_input_files("#upload", str(root / "circles" / "green_circle_1.png"))
        page.wait_for_function(
            "() => document.getElementById('status').textContent.includes('closest to')"
        )
        first = page.locator("#results li").first.inner_text()
        assert "green_circle_1.png" in first
        _shot(page, "serve_image_upload.png")
        page.close()
