"""Text views: invariants of each op, the WordNet reader (tiny hand-made and real), presets."""

from __future__ import annotations

import math
import pickle
import random

import pytest

from contrastkit.augment import (
    TextViews,
    WordNet,
    random_crop,
    span_deletion,
    synonym_replacement,
    text_views,
    word_dropout,
    word_swap,
)

WORDS = [f"w{i}" for i in range(40)]  # distinct words: positions can be recovered
TEXT = " ".join(WORDS)


def _rngs(n=200):
    return [random.Random(s) for s in range(n)]


def _is_window(out: list[str], words: list[str]) -> bool:
    k = len(out)
    return any(words[i : i + k] == out for i in range(len(words) - k + 1))


def _is_subsequence(out: list[str], words: list[str]) -> bool:
    it = iter(words)
    return all(w in it for w in out)


OPS = [
    (word_dropout, {"p": 0.5}),
    (span_deletion, {"max_fraction": 0.5}),
    (word_swap, {"n_swaps": 3}),
    (random_crop, {"min_fraction": 0.3}),
]


@pytest.mark.parametrize("op,kwargs", OPS, ids=lambda v: getattr(v, "__name__", ""))
def test_ops_never_return_empty_and_are_seeded(op, kwargs):
    for text in ("single", "two words", TEXT):
        for rng in _rngs(50):
            assert op(text, rng=rng, **kwargs).split()
    assert [op(TEXT, rng=r, **kwargs) for r in _rngs(20)] == [
        op(TEXT, rng=r, **kwargs) for r in _rngs(20)
    ]
    assert len({op(TEXT, rng=r, **kwargs) for r in _rngs(20)}) > 10  # seeds differ
    with pytest.raises(ValueError, match="no words"):
        op("   ", rng=random.Random(0), **kwargs)


def test_extreme_dropout_keeps_one_word_and_punctuation_stays_attached():
    for rng in _rngs(50):
        out = word_dropout("Hello, world! How are you?", 1.0, rng)
        assert len(out.split()) == 1 and out in "Hello, world! How are you?".split()
    assert word_dropout("Hello,   world!\n", 0.0, random.Random(0)) == "Hello, world!"
    with pytest.raises(ValueError, match=r"p must be a number in \[0, 1\]"):
        word_dropout(TEXT, 1.5, random.Random(0))


def test_word_dropout_rate_and_order():
    long = " ".join(f"t{i}" for i in range(1000))
    for p in (0.1, 0.3):
        dropped = []
        for rng in _rngs(40):
            out = word_dropout(long, p, rng).split()
            assert _is_subsequence(out, long.split())
            dropped.append(1 - len(out) / 1000)
        assert abs(sum(dropped) / len(dropped) - p) < 0.01  # std of the mean ≈ 0.0023


def test_span_deletion_removes_one_contiguous_span():
    n = len(WORDS)
    lengths = set()
    for rng in _rngs():
        out = span_deletion(TEXT, 0.25, rng).split()
        removed = n - len(out)
        assert 1 <= removed <= math.floor(0.25 * n)
        start = next(i for i in range(n) if i == len(out) or out[i] != WORDS[i])
        assert out == WORDS[:start] + WORDS[start + removed :]
        lengths.add(removed)
    assert len(lengths) > 5
    assert span_deletion("one two three", 0.3, random.Random(0)) == "one two three"  # ⌊0.9⌋ = 0
    assert span_deletion("solo", 0.9, random.Random(0)) == "solo"
    with pytest.raises(ValueError, match=r"max_fraction must be a number in \[0, 1\)"):
        span_deletion(TEXT, 1.0, random.Random(0))


def test_word_swap_is_a_permutation():
    for rng in _rngs():
        out = word_swap(TEXT, 2, rng).split()
        assert sorted(out) == sorted(WORDS)
        assert 0 < sum(a != b for a, b in zip(out, WORDS)) <= 4
        adj = word_swap(TEXT, 1, rng, adjacent=True).split()
        moved = [i for i, (a, b) in enumerate(zip(adj, WORDS)) if a != b]
        assert len(moved) == 2 and moved[1] == moved[0] + 1
        assert adj[moved[0]] == WORDS[moved[1]] and adj[moved[1]] == WORDS[moved[0]]
    assert word_swap("alone", 5, random.Random(0)) == "alone"
    assert word_swap(TEXT, 0, random.Random(0)) == TEXT
    with pytest.raises(ValueError, match="n_swaps must be an int >= 0"):
        word_swap(TEXT, -1, random.Random(0))


def test_random_crop_is_a_contiguous_window():
    n, starts, lengths = len(WORDS), set(), set()
    for rng in _rngs():
        out = random_crop(TEXT, 0.5, rng).split()
        assert math.ceil(0.5 * n) <= len(out) <= n and _is_window(out, WORDS)
        starts.add(WORDS.index(out[0]))
        lengths.add(len(out))
    assert len(starts) > 10 and len(lengths) > 10
    assert random_crop(TEXT, 1.0, random.Random(0)) == TEXT
    with pytest.raises(ValueError, match=r"min_fraction must be a number in \(0, 1\]"):
        random_crop(TEXT, 0.0, random.Random(0))


# ----------------------------------------------------------------------------- WordNet

LICENCE = "  1 This software and database is being provided to you, the LICENSEE, by  \n"


def _write_pos(root, pos, synsets, index_lemmas):
    """Write data.<pos> with synsets at their true byte offsets and index.<pos> pointing there.

    synsets: {key: (ss_type, [words])}; index_lemmas: {lemma: [keys]}.
    """
    data = LICENCE.encode()
    offsets = {}
    for key, (ss_type, words) in synsets.items():
        offsets[key] = len(data)
        members = " ".join(f"{w} 0" for w in words)
        line = f"{len(data):08d} 05 {ss_type} {len(words):02x} {members} 000 | gloss of {key}  \n"
        data += line.encode()
    (root / f"data.{pos}").write_bytes(data)
    index = LICENCE
    for lemma, keys in sorted(index_lemmas.items()):
        offs = " ".join(f"{offsets[k]:08d}" for k in keys)
        index += f"{lemma} {pos[0]} {len(keys)} 1 @ {len(keys)} 0 {offs}  \n"
    (root / f"index.{pos}").write_text(index)


@pytest.fixture
def tiny_wordnet(tmp_path):
    _write_pos(
        tmp_path,
        "noun",
        {
            "car": ("n", ["car", "auto", "automobile", "motor_vehicle"]),
            "cable": ("n", ["car", "elevator_car"]),
            "goose": ("n", ["goose", "Anser"]),
            "film": ("n", ["film", "movie", "picture"]),
        },
        {
            "car": ["car", "cable"],
            "auto": ["car"],
            "automobile": ["car"],
            "motor_vehicle": ["car"],
            "goose": ["goose"],
            "film": ["film"],
            "movie": ["film"],
            "picture": ["film"],
        },
    )
    _write_pos(
        tmp_path,
        "adj",
        {"quick": ("s", ["fast", "quick(p)", "speedy(a)"])},
        {"fast": ["quick"], "quick": ["quick"], "speedy": ["quick"]},
    )
    (tmp_path / "noun.exc").write_text("geese goose\n")
    return WordNet(tmp_path)


def test_wordnet_reads_a_hand_written_database(tiny_wordnet):
    wn = tiny_wordnet
    assert wn.parts == ["noun", "adj"]  # verb and adv files are absent: skipped
    assert wn.synonyms("car") == ["auto", "automobile", "motor vehicle", "elevator car"]
    assert wn.synonyms("CAR") == wn.synonyms("car")  # lower-cased lookup
    assert wn.synonyms("motor vehicle") == ["car", "auto", "automobile"]  # only the first synset
    assert wn.synonyms("fast") == ["quick", "speedy"]  # (p) and (a) markers stripped
    assert wn.synonyms("cars") == wn.synonyms("car")  # suffix rule: cars → car
    assert wn.synonyms("geese") == ["Anser"]  # exception list: geese → goose
    assert wn.synonyms("unknown") == []
    result = wn.synonyms("film")
    result.append("mutated")
    assert wn.synonyms("film") == ["movie", "picture"]  # the cache hands out copies
    assert WordNet(wn.path, morphology=False).synonyms("cars") == []
    clone = pickle.loads(pickle.dumps(wn))
    assert clone.synonyms("auto") == ["car", "automobile", "motor vehicle"]


def test_wordnet_bad_offsets_and_missing_database(tmp_path, tiny_wordnet):
    index = tmp_path / "index.noun"
    index.write_text(index.read_text().replace("goose n 1 1 @ 1 0 ", "goose n 1 1 @ 1 0 1"))
    with pytest.raises(ValueError, match="no synset at byte offset"):
        WordNet(tmp_path).synonyms("goose")
    with pytest.raises(FileNotFoundError, match="apt-get install -y wordnet-base"):
        WordNet(tmp_path / "nothing")


def test_wordnet_real_database():
    try:
        wn = WordNet()  # /usr/share/wordnet, installed by scripts/install-data
    except FileNotFoundError as err:
        pytest.fail(f"run scripts/install-data .venv before the tests: {err}")
    assert wn.parts == ["noun", "verb", "adj", "adv"]
    car = wn.synonyms("car")
    assert {"automobile", "auto", "motorcar"} <= set(car) and "car" not in car
    good = wn.synonyms("good")
    assert len(good) > 10 and {"well", "beneficial"} <= set(good)
    assert "automobile" in wn.synonyms("Cars")
    assert {"rapidly", "speedily"} <= set(wn.synonyms("quickly"))  # adverb synset
    assert all("_" not in w and "(" not in w for w in good + car)


def test_synonym_replacement(tiny_wordnet):
    text = "The film, was a quick Car"
    assert synonym_replacement(text, 0.0, random.Random(0), tiny_wordnet) == text
    outs = {synonym_replacement(text, 1.0, r, tiny_wordnet) for r in _rngs(50)}
    for out in outs:
        words = out.split()
        assert words[0] == "The" and words[2] == "was" and words[3] == "a"  # stopwords kept
        assert words[1] in {"movie,", "picture,"}  # punctuation stays attached
        assert words[4] in {"fast", "speedy"}
        assert " ".join(words[5:]) in {"Auto", "Automobile", "Motor vehicle", "Elevator car"}
    assert len(outs) > 5
    same = [synonym_replacement(text, 0.5, r, tiny_wordnet) for r in _rngs(10)]
    assert same == [synonym_replacement(text, 0.5, r, tiny_wordnet) for r in _rngs(10)]
    assert synonym_replacement("unknown words 42", 1.0, random.Random(0), tiny_wordnet) == (
        "unknown words 42"
    )


# ----------------------------------------------------------------------------- TextViews


def test_text_views_presets_and_reproducibility(tiny_wordnet):
    batch = ["the quick film about a car", "geese on a film set", "single"]
    assert text_views("none")(batch) == batch
    for preset in ("eda", "crop"):
        a = text_views(preset, seed=1, wordnet=tiny_wordnet)
        b = text_views(preset, seed=1, wordnet=tiny_wordnet)
        first, second = a(batch * 10), a(batch * 10)
        assert first == b(batch * 10) and second == b(batch * 10)  # same seed, same sequence
        assert first != second  # successive calls draw new views
        assert a(batch, seed=5) == a(batch, seed=5)
        assert len(first) == 30 and all(v.strip() for v in first)
    with pytest.raises(ValueError, match="Did you mean 'crop'"):
        text_views("corp")


def test_text_views_apply_ops_in_order_and_check_them_early(tiny_wordnet):
    views = TextViews([("random_crop", {"min_fraction": 0.5}), ("word_swap", {"n_swaps": 1})])
    rng = random.Random(3)
    expected = word_swap(random_crop(TEXT, 0.5, rng), 1, rng)
    assert TextViews(views.ops, seed=3)([TEXT]) == [expected]
    views = TextViews([("synonym_replacement", {"p": 1.0})], wordnet=tiny_wordnet)
    assert views(["film"])[0] in {"movie", "picture"} and "wordnet" not in repr(views)
    with pytest.raises(ValueError, match="Did you mean 'word_swap'"):
        TextViews([("word_swp", {})])
    with pytest.raises(TypeError, match=r"takes the arguments \['p'\], got \['prob'\]"):
        TextViews([("word_dropout", {"prob": 0.1})])
    with pytest.raises(TypeError, match="takes the arguments"):
        TextViews([("word_dropout", {"p": 0.1, "rng": None})])
    with pytest.raises(ValueError, match="p must be a number"):
        TextViews([("word_dropout", {"p": 2})])  # caught when built, not mid-training
    with pytest.raises(TypeError, match=r"\(name, kwargs\) pair"):
        TextViews(["word_dropout"])
    with pytest.raises(TypeError, match="list of texts"):
        views("not a list")


def test_split_text_gives_two_disjoint_sides_that_cover_the_text():
    from contrastkit.augment.text import split_text

    text = "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9"
    cuts = set()
    for seed in range(200):
        a, b = split_text(text, 0.3, 0.7, random.Random(seed))
        first, second = sorted([a.split(), b.split()], key=lambda w: w[0])
        assert first + second == text.split()  # two sides of one cut, nothing lost or shared
        cuts.add(len(first))
    assert cuts == {3, 4, 5, 6, 7}  # every cut in [0.3 n, 0.7 n], each side non-empty
    assert split_text("too short", 0.3, 0.7, random.Random(0)) == ("too short", "too short")
    assert split_text("a b", 0.1, 0.2, random.Random(0), min_words=2) in [("a", "b"), ("b", "a")]
    with pytest.raises(ValueError, match=r"low=0\.8 must be <= high=0\.2"):
        split_text(text, 0.8, 0.2, random.Random(0))
    with pytest.raises(ValueError, match="high must be a number"):
        split_text(text, 0.3, 1.0, random.Random(0))


def test_span_preset_pairs_are_the_two_sides_of_each_text():
    views = text_views("span", seed=3)
    texts = ["one two three four five six seven eight", "short text", "a b c d e"]
    first, second = views.pair(texts)
    for t, a, b in zip(texts, first, second):
        if len(t.split()) < 4:
            assert a == b == t
        else:
            assert not set(a.split()) & set(b.split())
            assert sorted(a.split() + b.split()) == sorted(t.split())
    assert text_views("span", seed=3).pair(texts) == (first, second)  # reproducible
    assert views.pair(texts) != (first, second)  # the running generator moves on
    plain = text_views("crop", seed=1)
    a, b = plain.pair(texts)
    again = text_views("crop", seed=1)
    assert (a, b) == (again(texts), again(texts))  # without a split: two independent views


def test_passages_preset_cuts_only_long_texts():
    """ "passages": texts of 32+ words are cut in two, shorter ones are kept whole in both
    views (their noise is the encoder's dropout)."""
    long_text = " ".join(f"w{i}" for i in range(40))
    sentence = " ".join(f"s{i}" for i in range(31))
    first, second = text_views("passages", seed=0).pair([long_text, sentence])
    assert not set(first[0].split()) & set(second[0].split())
    assert sorted(first[0].split() + second[0].split()) == sorted(long_text.split())
    assert first[1] == second[1] == sentence
    assert (
        TextViews(split=(0.3, 0.7, 2)).pair(["a b"])[0]
        != TextViews(split=(0.3, 0.7, 2)).pair(["a b"])[1]
    )
    with pytest.raises(ValueError, match="min_words"):
        TextViews(split=(0.3, 0.7, 1.5))
    with pytest.raises(ValueError, match="low, high"):
        TextViews(split=(0.3,))


def test_drop_shared_words_by_hand():
    from contrastkit.augment.text import drop_shared_words

    assert drop_shared_words("Fire crews at Gunning", "the fire, near Goulburn") == (
        "crews at Gunning",
        "the near Goulburn",
    )
    assert drop_shared_words("same Words", "SAME words.") == ("", "")
    assert drop_shared_words("a b", "c d") == ("a b", "c d")  # nothing shared, nothing dropped
    assert drop_shared_words("it's late", "it is") == ("late", "is")  # "it's" holds "it"


def test_ict_preset_drops_shared_words_from_most_pairs():
    """ "ict": the two sides of a cut; for ~90% of the pairs they also lose the words they
    share (a side that would be left empty is kept whole); the rest keep them."""
    text = "the cat sat on the mat and the dog sat on the log near the cat"
    views = text_views("ict", seed=0)
    assert views.disjoint == 0.9 and "disjoint=0.9" in repr(views)
    first, second = views.pair([text] * 400)
    shared = [bool(set(a.split()) & set(b.split())) for a, b in zip(first, second)]
    assert 0.02 < sum(shared) / 400 < 0.2  # ~10% keep their common words ("the", "sat", ...)
    words = set(text.split())
    for a, b in zip(first, second):
        assert a and b and set(a.split()) <= words and set(b.split()) <= words
    assert text_views("ict", seed=0).pair([text] * 400) == (first, second)  # reproducible
    never = TextViews(split=(0.3, 0.7), disjoint=0.0).pair([text] * 50)
    assert all(set(a.split()) & set(b.split()) for a, b in zip(*never))
    # disjoint=1: every pair loses its shared words, except a side that would be left empty
    (a, b), (c, d) = zip(*TextViews(split=(0.3, 0.7), disjoint=1.0).pair([text, "x y x y x y"]))
    assert a and b and not set(a.split()) & set(b.split())
    assert c and d and set(c.split()) == set(d.split()) == {"x", "y"}  # kept whole
    with pytest.raises(ValueError, match="give split as well"):
        TextViews(disjoint=0.5)
    with pytest.raises(ValueError, match="probability"):
        TextViews(split=(0.3, 0.7), disjoint=1.5)
