"""Text views for contrastive learning: word-level edits of one string, and WordNet synonyms.

Every op is a pure function of one text and an explicit :class:`random.Random`, so a view is
reproducible from a seed. Words are whitespace tokens (punctuation stays attached: ``"film,"``
is one word) and outputs are joined with single spaces. No op returns an empty string: each
keeps at least one word, and a text without words is an error.

- :func:`word_dropout` — drop each word with probability ``p``;
- :func:`span_deletion` — delete one contiguous span of at most ``max_fraction`` of the words;
- :func:`word_swap` — swap ``n_swaps`` random (or adjacent) word pairs;
- :func:`random_crop` — keep one contiguous window of at least ``min_fraction`` of the words;
- :func:`synonym_replacement` — replace each non-stopword with a WordNet synonym with
  probability ``p`` (:class:`WordNet` reads Debian's ``wordnet-base`` WordNet 3.0 files);
- :func:`split_text` — cut a text in two at a random word: the two sides of one text are two
  views that share no words (a pair op, used through :meth:`TextViews.pair`);
- :func:`drop_shared_words` — take from each of two texts the words the other one has (the
  two sides of a cut then share no vocabulary at all).

:class:`TextViews` chains ops on a batch of texts; :func:`text_views` builds the presets:
``"none"`` (identity: SimCSE's only noise is the encoder's dropout, Gao et al. 2021), ``"eda"``
(synonym replacement + swap + dropout, after EDA, Wei & Zou 2019), ``"crop"`` (random crop +
word dropout) and ``"span"`` (the two views of a text are its two sides of a random cut, as
the adjacent spans of DeCLUTR, Giorgi et al. 2021: a positive that can only be matched by what
the two parts are about, not by the words they share). ``"passages"`` cuts only texts of at
least 32 words: the two halves of a passage are about the same thing, while the two halves of
a one-line sentence often are not (halves of a movie-review snippet are barely closer under
MiniLM than two random snippets), so sentences keep both copies whole and dropout is their
only noise, as in unsupervised SimCSE. ``"ict"`` is ``"span"`` where, for 90% of the pairs,
the two sides also lose the words they share (:func:`drop_shared_words`), as the Inverse Cloze
Task of ORQA (Lee, Chang & Toutanova 2019) removes the pseudo-query from its context 90% of the
time: a positive that shares no words can only be matched through what the words are about, so
an encoder that could match the sides by their common names and terms alone has to learn
which different words go together; the other 10% keep some lexical matching.

Example:
    >>> import random
    >>> from contrastkit.augment import random_crop, text_views
    >>> random_crop("a quick brown fox jumps over the lazy dog", 0.5, random.Random(0))
    'quick brown fox jumps over the lazy dog'
    >>> views = text_views("crop", seed=0)
    >>> v1, v2 = views(["the cat sat on the mat"]), views(["the cat sat on the mat"])
    >>> v1 != v2
    True
"""

from __future__ import annotations

import difflib
import inspect
import math
import os
import random
import re
import string
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "ENGLISH_STOPWORDS",
    "TEXT_OPS",
    "TEXT_VIEW_PRESETS",
    "TextViews",
    "WordNet",
    "drop_shared_words",
    "random_crop",
    "span_deletion",
    "split_text",
    "synonym_replacement",
    "text_views",
    "word_dropout",
    "word_swap",
]

WORDNET_DIR = "/usr/share/wordnet"
WORDNET_INSTALL = (
    "apt-get install -y wordnet-base   (as root or with sudo; or scripts/install-data)"
)

# Function words that synonym replacement leaves alone (EDA does the same): WordNet would turn
# "a" into "angstrom" and "it" into "information technology".
ENGLISH_STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are aren't as at be because been before
    being below between both but by can can't cannot could couldn't did didn't do does doesn't
    doing don't down during each few for from further had hadn't has hasn't have haven't having
    he he'd he'll he's her here here's hers herself him himself his how how's i i'd i'll i'm i've
    if in into is isn't it it's its itself just let's me more most mustn't my myself no nor not
    now of off on once only or other ought our ours ourselves out over own same shan't she she'd
    she'll she's should shouldn't so some such than that that's the their theirs them themselves
    then there there's these they they'd they'll they're they've this those through to too under
    until up very was wasn't we we'd we'll we're we've were weren't what what's when when's where
    where's which while who who's whom why why's will with won't would wouldn't you you'd you'll
    you're you've your yours yourself yourselves also s t
    """.split()
)

_POS = ("noun", "verb", "adj", "adv")
# WordNet's morphological detachment rules (morph.c / morphy(7WN)): suffix → base-form ending.
_DETACH = {
    "noun": [
        ("s", ""),
        ("ses", "s"),
        ("xes", "x"),
        ("zes", "z"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("men", "man"),
        ("ies", "y"),
    ],
    "verb": [
        ("s", ""),
        ("ies", "y"),
        ("es", "e"),
        ("es", ""),
        ("ed", "e"),
        ("ed", ""),
        ("ing", "e"),
        ("ing", ""),
    ],
    "adj": [("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
    "adv": [],
}


class WordNet:
    """A small reader of the WordNet 3.0 database files (no nltk needed).

    ``index.<pos>`` (pos: noun, verb, adj, adv) maps a lemma to its synsets' byte offsets in
    ``data.<pos>``; the line at that offset lists the synset's words. :meth:`synonyms` collects
    those words over all parts of speech (underscores become spaces, adjective markers such as
    ``(a)``, ``(p)``, ``(ip)`` are stripped). With ``morphology`` an inflected word is also
    looked up by its base forms (the ``<pos>.exc`` exception lists and WordNet's suffix rules,
    as ``morphy`` does: ``"cars"`` → ``"car"``). A part of speech whose files are missing is
    skipped. Indexes load on first use; lookups are cached; the object pickles without them.

    Args:
        path: the database folder (Debian's ``wordnet-base`` installs ``/usr/share/wordnet``).
        morphology: also look up base forms of inflected words.

    Raises:
        FileNotFoundError: naming the install command when no ``index.*``/``data.*`` pair is
            there.

    Example:
        >>> wn = WordNet()
        >>> "automobile" in wn.synonyms("car"), "car" in wn.synonyms("car")
        (True, False)
    """

    def __init__(self, path: str | os.PathLike = WORDNET_DIR, morphology: bool = True) -> None:
        self.path = Path(path)
        self.morphology = morphology
        self.parts = [
            pos
            for pos in _POS
            if (self.path / f"index.{pos}").is_file() and (self.path / f"data.{pos}").is_file()
        ]
        if not self.parts:
            raise FileNotFoundError(
                f"no WordNet database in {self.path} (it needs index.noun and data.noun, and "
                f"likewise for verb, adj, adv). Install WordNet 3.0 with:\n    {WORDNET_INSTALL}\n"
                f"or pass path=<folder with the WordNet dict files>."
            )
        self._index: dict[str, dict[str, list[int]]] = {}
        self._exc: dict[str, dict[str, list[str]]] = {}
        self._synsets: dict[tuple[str, int], list[str]] = {}
        self._cache: dict[str, list[str]] = {}

    def __repr__(self) -> str:
        return f"WordNet({str(self.path)!r}, parts={self.parts})"

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "morphology": self.morphology, "parts": self.parts}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._index, self._exc, self._synsets, self._cache = {}, {}, {}, {}

    def _lemmas(self, pos: str) -> dict[str, list[int]]:
        if pos not in self._index:
            table: dict[str, list[int]] = {}
            with open(self.path / f"index.{pos}", encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.startswith(" "):  # the licence header
                        continue
                    parts = line.split()
                    try:
                        count = int(parts[2])
                        table[parts[0]] = [int(o) for o in parts[len(parts) - count :]]
                    except (IndexError, ValueError):
                        raise ValueError(
                            f"{self.path / f'index.{pos}'}: malformed line {line[:60]!r}; "
                            f"reinstall the database ({WORDNET_INSTALL})."
                        ) from None
            self._index[pos] = table
        return self._index[pos]

    def _exceptions(self, pos: str) -> dict[str, list[str]]:
        if pos not in self._exc:
            table: dict[str, list[str]] = {}
            exc = self.path / f"{pos}.exc"
            if exc.is_file():
                for line in exc.read_text(encoding="utf-8", errors="replace").split("\n"):
                    parts = line.split()
                    if len(parts) >= 2:
                        table.setdefault(parts[0], []).extend(parts[1:])
            self._exc[pos] = table
        return self._exc[pos]

    def _synset_words(self, pos: str, offset: int) -> list[str]:
        key = (pos, offset)
        if key not in self._synsets:
            path = self.path / f"data.{pos}"
            with open(path, "rb") as f:
                f.seek(offset)
                line = f.readline().decode("utf-8", errors="replace")
            parts = line.split()
            if not parts or not parts[0].isdigit() or int(parts[0]) != offset:
                raise ValueError(
                    f"{path}: no synset at byte offset {offset} (the index points into another "
                    f"version of the data file); reinstall the database ({WORDNET_INSTALL})."
                )
            count = int(parts[3], 16)  # w_cnt is two hex digits; words alternate with lex_ids
            words = []
            for raw in parts[4 : 4 + 2 * count : 2]:
                if raw.endswith(")") and "(" in raw:  # adjective markers (a) (p) (ip)
                    raw = raw[: raw.rindex("(")]
                words.append(raw.replace("_", " "))
            self._synsets[key] = words
        return self._synsets[key]

    def _base_forms(self, lemma: str, pos: str) -> list[str]:
        index = self._lemmas(pos)
        forms = [lemma] if lemma in index else []
        if self.morphology:
            candidates = list(self._exceptions(pos).get(lemma, []))
            candidates += [
                lemma[: len(lemma) - len(suffix)] + ending
                for suffix, ending in _DETACH[pos]
                if lemma.endswith(suffix) and len(lemma) > len(suffix)
            ]
            forms += [c for c in candidates if c in index and c not in forms]
        return forms

    def synonyms(self, word: str) -> list[str]:
        """The words sharing a synset with ``word`` (any part of speech), in database order,
        without ``word`` itself or its base forms; empty when WordNet does not know it.

        Example:
            >>> WordNet().synonyms("good")[:3]
            ['goodness', 'commodity', 'trade good']
        """
        lemma = word.strip().lower().replace(" ", "_")
        if lemma in self._cache:
            return list(self._cache[lemma])
        exclude = {lemma.replace("_", " ")}
        found: list[str] = []
        seen: set[str] = set()
        for pos in self.parts:
            for form in self._base_forms(lemma, pos):
                exclude.add(form.replace("_", " "))
                for offset in self._lemmas(pos)[form]:
                    for w in self._synset_words(pos, offset):
                        if w.lower() not in seen:
                            seen.add(w.lower())
                            found.append(w)
        result = [w for w in found if w.lower() not in exclude]
        self._cache[lemma] = result
        return list(result)


# ----------------------------------------------------------------------------- ops


def _words(text: str, op: str) -> list[str]:
    if not isinstance(text, str):
        raise TypeError(f"{op} takes one string, got {type(text).__name__}.")
    words = text.split()
    if not words:
        raise ValueError(
            f"{op}: cannot make a view of a text with no words ({text!r}); drop blank texts "
            f"before augmenting (TextSet rejects them)."
        )
    return words


def _check_fraction(value: float, name: str, op: str, low_open: bool, high_open: bool) -> None:
    lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
    ok = (value > 0 if low_open else value >= 0) and (value < 1 if high_open else value <= 1)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not ok:
        raise ValueError(f"{op}: {name} must be a number in {lo}0, 1{hi}, got {value!r}.")


def word_dropout(text: str, p: float, rng: random.Random) -> str:
    """Drop each word independently with probability ``p`` ∈ [0, 1]; if every word would go,
    keep one at random.

    Example:
        >>> word_dropout("one two three four five six", 0.5, random.Random(0))
        'one two five'
    """
    _check_fraction(p, "p", "word_dropout", False, False)
    words = _words(text, "word_dropout")
    kept = [w for w in words if rng.random() >= p]
    return " ".join(kept or [rng.choice(words)])


def span_deletion(text: str, max_fraction: float, rng: random.Random) -> str:
    """Delete one contiguous span of 1 to ⌊``max_fraction`` · n⌋ of the n words (at most
    n − 1, so one word remains); the text is unchanged when that allows no word.

    Example:
        >>> span_deletion("one two three four five six", 0.5, random.Random(0))
        'one two three six'
    """
    _check_fraction(max_fraction, "max_fraction", "span_deletion", False, True)
    words = _words(text, "span_deletion")
    n = len(words)
    longest = min(n - 1, math.floor(max_fraction * n))
    if longest < 1:
        return " ".join(words)
    length = rng.randint(1, longest)
    start = rng.randint(0, n - length)
    return " ".join(words[:start] + words[start + length :])


def word_swap(text: str, n_swaps: int, rng: random.Random, adjacent: bool = False) -> str:
    """Swap ``n_swaps`` times two words at random positions (``adjacent``: a random word and
    its right neighbour). The output is a permutation of the input's words.

    Example:
        >>> word_swap("one two three four", 1, random.Random(0))
        'one four three two'
    """
    if not isinstance(n_swaps, int) or isinstance(n_swaps, bool) or n_swaps < 0:
        raise ValueError(f"word_swap: n_swaps must be an int >= 0, got {n_swaps!r}.")
    words = _words(text, "word_swap")
    n = len(words)
    if n >= 2:
        for _ in range(n_swaps):
            if adjacent:
                i = rng.randrange(n - 1)
                j = i + 1
            else:
                i, j = rng.sample(range(n), 2)
            words[i], words[j] = words[j], words[i]
    return " ".join(words)


def random_crop(text: str, min_fraction: float, rng: random.Random) -> str:
    """Keep one contiguous window of the words, of length uniform in
    [⌈``min_fraction`` · n⌉, n] (at least one word), at a uniform position.

    Example:
        >>> random_crop("one two three four five six", 0.5, random.Random(1))
        'three four five six'
    """
    _check_fraction(min_fraction, "min_fraction", "random_crop", True, False)
    words = _words(text, "random_crop")
    n = len(words)
    length = rng.randint(max(1, math.ceil(min_fraction * n - 1e-9)), n)
    start = rng.randint(0, n - length)
    return " ".join(words[start : start + length])


def split_text(
    text: str, low: float, high: float, rng: random.Random, min_words: int = 4
) -> tuple[str, str]:
    """Cut the n words at a position uniform in [⌈``low`` · n⌉, ⌊``high`` · n⌋] (at least one
    word each side) and return the two sides in random order. A text of fewer than
    ``min_words`` words is returned twice, whole.

    Example:
        >>> split_text("one two three four five six", 0.3, 0.7, random.Random(0))
        ('four five six', 'one two three')
    """
    _check_fraction(low, "low", "split_text", True, True)
    _check_fraction(high, "high", "split_text", True, True)
    if low > high:
        raise ValueError(f"split_text: low={low} must be <= high={high}.")
    words = _words(text, "split_text")
    n = len(words)
    if n < max(2, min_words):
        return text, text
    lo = min(max(1, math.ceil(low * n - 1e-9)), n - 1)
    hi = max(lo, min(n - 1, math.floor(high * n + 1e-9)))
    cut = rng.randint(lo, hi)
    a, b = " ".join(words[:cut]), " ".join(words[cut:])
    return (a, b) if rng.random() < 0.5 else (b, a)


_WORD_RUN = re.compile(r"\w+")


def drop_shared_words(first: str, second: str) -> tuple[str, str]:
    """Each text without the words of the other: (first minus second's words, second minus
    first's words).

    Words are compared lower-cased as ``\\w+`` runs; a whitespace token goes when any of its
    runs is in the other text ("fire," goes with "Fire"); the rest keep their order and case.
    A side whose words are all shared comes out empty (:class:`TextViews` then keeps it whole).

    Example:
        >>> drop_shared_words("Fire crews at Gunning", "the fire, near Goulburn")
        ('crews at Gunning', 'the near Goulburn')
    """

    def runs(text: str) -> set[str]:
        return {w.lower() for w in _WORD_RUN.findall(text)}

    shared = runs(first) & runs(second)
    return tuple(  # type: ignore[return-value]
        " ".join(t for t in text.split() if not (runs(t) & shared)) for text in (first, second)
    )


_PUNCT = string.punctuation + "“”‘’«»…–—"


def synonym_replacement(
    text: str,
    p: float,
    rng: random.Random,
    wordnet: WordNet,
    stopwords: frozenset[str] = ENGLISH_STOPWORDS,
) -> str:
    """Replace each word that has WordNet synonyms and is not a stopword, with probability
    ``p`` ∈ [0, 1], by one of its synonyms chosen at random.

    Punctuation around a word is kept (``"film,"`` → ``"movie,"``), a capitalised word gets a
    capitalised synonym; a multi-word synonym (``"motor vehicle"``) adds words.

    Example:
        >>> synonym_replacement("the car is fast", 1.0, random.Random(0), WordNet())
        'the railroad car is tight'
    """
    _check_fraction(p, "p", "synonym_replacement", False, False)
    words = _words(text, "synonym_replacement")
    out = []
    for word in words:
        core = word.strip(_PUNCT)
        if not core or not any(c.isalpha() for c in core) or core.lower() in stopwords:
            out.append(word)
            continue
        if rng.random() >= p:
            out.append(word)
            continue
        choices = wordnet.synonyms(core)
        if not choices:
            out.append(word)
            continue
        synonym = rng.choice(choices)
        if core[0].isupper() and synonym[:1].islower():
            synonym = synonym[0].upper() + synonym[1:]
        start = word.index(core)
        out.append(word[:start] + synonym + word[start + len(core) :])
    return " ".join(out)


TEXT_OPS: dict[str, Callable[..., str]] = {
    "word_dropout": word_dropout,
    "span_deletion": span_deletion,
    "word_swap": word_swap,
    "random_crop": random_crop,
    "synonym_replacement": synonym_replacement,
}

TEXT_VIEW_PRESETS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "none": [],
    "eda": [
        ("synonym_replacement", {"p": 0.1}),
        ("word_swap", {"n_swaps": 1}),
        ("word_dropout", {"p": 0.1}),
    ],
    "crop": [("random_crop", {"min_fraction": 0.6}), ("word_dropout", {"p": 0.1})],
    "span": [],
    "passages": [],
    "ict": [],
}

#: presets whose two views are the two sides of one cut (:func:`split_text`: low, high and
#: optionally min_words, below which a text is kept whole in both views)
TEXT_VIEW_SPLITS: dict[str, tuple[float, ...]] = {
    "span": (0.3, 0.7),
    "passages": (0.3, 0.7, 32),
    "ict": (0.3, 0.7),
}
#: presets whose two sides lose the words they share for this share of the pairs
TEXT_VIEW_DISJOINT: dict[str, float] = {"ict": 0.9}


class TextViews:
    """Apply text ops in order to every text of a batch: ``list[str] -> list[str]``.

    Args:
        ops: ``[(op name, keyword arguments), ...]`` with names from :data:`TEXT_OPS`, e.g.
            ``[("random_crop", {"min_fraction": 0.6}), ("word_dropout", {"p": 0.1})]``;
            None or ``[]``: the identity.
        seed: seeds the view generator. Successive calls draw new views (the two views of a
            pair differ); a new ``TextViews`` with the same seed repeats the same sequence, and
            ``views(texts, seed=s)`` gives the same views for ``s`` every time.
        wordnet: the :class:`WordNet` for ``synonym_replacement`` (default: the system one).
        split: ``(low, high)`` or ``(low, high, min_words)``: :meth:`pair` cuts each text in
            two (:func:`split_text`; texts of fewer than ``min_words`` words, default 4, are
            kept whole in both views) and gives one side to each view before the ops; None:
            the two views of a pair are two independent draws of the ops on the whole text.
        disjoint: with ``split``, the probability that the two sides of a cut also lose the
            words they share (:func:`drop_shared_words`; a side left with no words is kept
            whole), before the ops.

    Raises:
        ValueError / TypeError: for an unknown op or bad arguments, when constructed.

    Example:
        >>> views = TextViews([("word_swap", {"n_swaps": 1})], seed=0)
        >>> views(["one two three", "four five"])
        ['one three two', 'five four']
    """

    def __init__(
        self,
        ops: Sequence[tuple[str, dict[str, Any]]] | None = None,
        seed: int = 0,
        wordnet: WordNet | None = None,
        split: tuple[float, ...] | None = None,
        disjoint: float = 0.0,
    ) -> None:
        if not (isinstance(disjoint, (int, float)) and 0.0 <= disjoint <= 1.0):
            raise ValueError(f"disjoint is a probability in [0, 1], got {disjoint!r}.")
        if disjoint and split is None:
            raise ValueError(
                "disjoint drops the words shared by the two sides of a cut; give split as well, "
                "e.g. TextViews(split=(0.3, 0.7), disjoint=0.9)."
            )
        self.disjoint = float(disjoint)
        #: (low, high, min_words) of the cut, or None
        self.split = None
        if split is not None:
            if len(split) not in (2, 3):
                raise ValueError(
                    f"split is (low, high) or (low, high, min_words), got {tuple(split)!r}."
                )
            if len(split) == 3 and not (int(split[2]) == split[2] and split[2] >= 2):
                raise ValueError(f"split's min_words must be an integer >= 2, got {split[2]!r}.")
            split_text("a b c d", split[0], split[1], rng=random.Random(0))  # validates now
            self.split = (float(split[0]), float(split[1]), int(split[2]) if len(split) == 3 else 4)
        self.ops: list[tuple[str, dict[str, Any]]] = []
        for item in ops or []:
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise TypeError(
                    f"each text op is a (name, kwargs) pair, e.g. ('word_dropout', {{'p': 0.1}}); "
                    f"got {item!r}."
                )
            name, kwargs = item[0], dict(item[1] or {})
            if name not in TEXT_OPS:
                close = difflib.get_close_matches(str(name), list(TEXT_OPS), n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"unknown text op {name!r}; ops are {sorted(TEXT_OPS)}.{hint}")
            fn = TEXT_OPS[name]
            fixed = {"text", "rng", "wordnet"}
            params = [q for q in inspect.signature(fn).parameters if q not in fixed]
            try:
                if fixed & set(kwargs):
                    raise TypeError
                extra = {"wordnet": None} if "wordnet" in inspect.signature(fn).parameters else {}
                inspect.signature(fn).bind("x", rng=None, **extra, **kwargs)
            except TypeError:
                raise TypeError(
                    f"text op {name!r} takes the arguments {params}, got {sorted(kwargs)}."
                ) from None
            if name == "synonym_replacement":
                if wordnet is None:
                    wordnet = WordNet()
                kwargs["wordnet"] = wordnet
            fn("a", rng=random.Random(0), **kwargs)  # validates the values now, not mid-training
            self.ops.append((name, kwargs))
        self.seed = seed
        self.wordnet = wordnet
        self._rng = random.Random(seed)

    def __repr__(self) -> str:
        shown = [(n, {k: v for k, v in kw.items() if k != "wordnet"}) for n, kw in self.ops]
        split = "" if self.split is None else f", split={self.split}"
        if self.disjoint:
            split += f", disjoint={self.disjoint}"
        return f"TextViews({shown}, seed={self.seed}{split})"

    def view(self, text: str, rng: random.Random) -> str:
        """One view of one text with the given generator."""
        for name, kwargs in self.ops:
            text = TEXT_OPS[name](text, rng=rng, **kwargs)
        return text

    def __call__(self, texts: Sequence[str], seed: int | None = None) -> list[str]:
        """Views of ``texts`` (B strings → B strings), from the running generator or, with
        ``seed``, from a fresh one."""
        rng = self._generator(texts, seed)
        return [self.view(t, rng) for t in texts]

    def _generator(self, texts: Sequence[str], seed: int | None) -> random.Random:
        if isinstance(texts, str):
            raise TypeError("TextViews takes a list of texts; wrap a single text as [text].")
        return self._rng if seed is None else random.Random(seed)

    def pair(self, texts: Sequence[str], seed: int | None = None) -> tuple[list[str], list[str]]:
        """The two views of every text (B strings → two lists of B strings): the two sides of
        a cut when ``split`` is set, else two independent views.

        Example:
            >>> TextViews(split=(0.5, 0.5), seed=0).pair(["one two three four"])
            (['three four'], ['one two'])
        """
        rng = self._generator(texts, seed)
        if self.split is None:
            return [self.view(t, rng) for t in texts], [self.view(t, rng) for t in texts]
        first, second = [], []
        low, high, min_words = self.split
        for t in texts:
            a, b = split_text(t, low, high, rng=rng, min_words=min_words)
            if self.disjoint and a != b and rng.random() < self.disjoint:
                da, db = drop_shared_words(a, b)
                a, b = da or a, db or b
            first.append(self.view(a, rng))
            second.append(self.view(b, rng))
        return first, second


def text_views(preset: str, seed: int = 0, wordnet: WordNet | None = None) -> TextViews:
    """The :class:`TextViews` of a preset: ``"none"``, ``"eda"``, ``"crop"``, ``"span"``,
    ``"passages"`` or ``"ict"`` (see the module doc, :data:`TEXT_VIEW_PRESETS`,
    :data:`TEXT_VIEW_SPLITS` and :data:`TEXT_VIEW_DISJOINT`).

    Example:
        >>> text_views("none")(["kept as it is"])
        ['kept as it is']
    """
    if preset not in TEXT_VIEW_PRESETS:
        close = difflib.get_close_matches(str(preset), list(TEXT_VIEW_PRESETS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown text view preset {preset!r}; presets are {sorted(TEXT_VIEW_PRESETS)}.{hint}"
        )
    return TextViews(
        TEXT_VIEW_PRESETS[preset],
        seed=seed,
        wordnet=wordnet,
        split=TEXT_VIEW_SPLITS.get(preset),
        disjoint=TEXT_VIEW_DISJOINT.get(preset, 0.0),
    )
