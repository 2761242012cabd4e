"""The built-in image–caption sets from Debian's packages (scripts/install-data installs them):
the Tux Paint stamps as the issue counts them, openclipart's caption rule on real files."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest

from contrastkit.data.clipart import (
    OPENCLIPART_DIR,
    TUXPAINT_DIR,
    load_openclipart,
    load_tuxpaint,
    openclipart_caption,
    openclipart_metadata,
)


def _require(path):
    if not path.is_dir():
        pytest.fail(f"{path} must be installed for the test suite: scripts/install-data .venv")


def test_tuxpaint_has_the_1033_captioned_stamps_in_16_categories():
    _require(TUXPAINT_DIR)
    pairs = load_tuxpaint(image_size=16)
    assert len(pairs) == 1033 and len(set(pairs.captions)) == 804
    assert sum(p.endswith(".svg") for p in pairs.paths) == 248  # 2 need cairosvg's unsafe mode
    counts = Counter(pairs.classes[i] for i in pairs.labels.tolist())
    assert len(counts) == 16 and counts["symbols"] == 259 and counts["animals"] == 156
    assert counts["naturalforces"] == 3
    assert pairs.images.shape == (1033, 3, 16, 16)
    i = pairs.paths.index(str(TUXPAINT_DIR / "symbols/money/us/coins/025quarter.png"))
    assert pairs.captions[i] == "A US 25 cent piece ($.25) called a quarter."


def test_openclipart_captions_follow_the_rule_on_real_files(tmp_path, monkeypatch):
    _require(OPENCLIPART_DIR)
    baby = OPENCLIPART_DIR / "people" / "my_lovely_baby_enrique_m_02.svg"
    title, keywords, agents = openclipart_metadata(baby)
    assert title == "My lovely baby" and keywords == ["people", "daughter", "lovely"]
    assert "My lovely baby" not in agents  # the work's title, not an agent's name
    assert openclipart_caption(title, keywords, "people/" + baby.name) == (
        "my lovely baby. people, daughter, lovely. my lovely baby enrique"
    )
    # a small copy of the real folder: two categories, one title shared by many files
    root = tmp_path / "svg"
    picked = sorted((OPENCLIPART_DIR / "people").glob("*.svg"))[:6]
    picked += sorted((OPENCLIPART_DIR / "food").glob("*.svg"))[:6]
    for p in picked:
        dst = root / p.relative_to(OPENCLIPART_DIR)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dst)
    monkeypatch.setenv("CONTRASTKIT_CACHE", str(tmp_path / "cache"))
    pairs = load_openclipart(root, image_size=16, max_title_files=1)
    assert pairs.classes == ["food", "people"] and len(pairs) == 12
    titles = Counter(openclipart_metadata(p)[0].lower() for p in picked)
    for path, caption in zip(pairs.paths, pairs.captions):
        title = openclipart_metadata(path)[0].lower()
        assert caption == caption.lower() and caption
        if titles[title] > 1 and title:  # shared titles are left out of the captions
            assert not caption.startswith(title + ".")
    again = load_openclipart(root, image_size=16, max_title_files=1)  # from the cache
    assert again.captions == pairs.captions and (again.images == pairs.images).all()
    assert len(list((tmp_path / "cache").glob("openclipart-16px-*.safetensors"))) == 1
