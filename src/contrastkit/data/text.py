"""Text data sets that load offline: built-in rated/judged corpora, text files and tables.

Every loader returns a :class:`TextSet`: a list of strings with optional int64 class labels,
float32 human ratings, paired positives / hard negatives (for pair and triplet training) and
source ids. :meth:`TextSet.rows` gives the trainer's batch for a LongTensor of row indices.

Built-in corpora:

- ``movie-snippets`` (:func:`load_movie_snippets`): the 10,605 movie-review snippets with mean
  human sentiment ratings in [-4, 4] that VADER was validated on (Hutto & Gilbert, ICWSM 2014),
  from the vaderSentiment 3.3.2 source distribution (``scripts/install-data`` copies the file).
  37 snippets are rated exactly 0 and dropped; 10,568 remain, 5,242 positive and 5,326
  negative.
- the Lee corpus (:func:`load_lee`): 50 news documents with a 50×50 matrix of mean human
  similarity judgements and 300 background documents (Lee, Pincombe & Welsh 2005), from the
  test data that ships inside gensim.

Files: ``.txt`` (one text per line), ``.csv`` / ``.tsv`` / ``.jsonl`` tables
(:func:`load_text_table`), and in-memory columns or a Hugging Face ``datasets.Dataset``
(:func:`from_hf_dataset`). Lines are split on ``\\n`` only (``\\r\\n`` endings are handled;
``str.splitlines`` would also split inside texts at form feeds and Unicode line separators).

Example:
    >>> from contrastkit.data import load_text_dataset
    >>> data = load_text_dataset("movie-snippets")  # after scripts/install-data .venv
    >>> len(data), data.classes, data.labels.dtype, data.scores.dtype
    (10568, ['negative', 'positive'], torch.int64, torch.float32)
"""

from __future__ import annotations

import csv
import difflib
import importlib.util
import io
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from contrastkit.data.datasets import MissingDatasetError

__all__ = [
    "TEXT_DATASETS",
    "LeeCorpus",
    "TextSet",
    "from_hf_dataset",
    "load_lee",
    "load_movie_snippets",
    "load_text_data",
    "load_text_dataset",
    "load_text_file",
    "load_text_table",
    "stratified_folds",
]

VADER_INSTALL = "scripts/install-data .venv"
MOVIE_SNIPPETS_FILE = "movieReviewSnippets_GroundTruth.txt"
GENSIM_INSTALL = "pip install gensim"
TABLE_SUFFIXES = {".csv", ".tsv", ".jsonl"}


def _check_strings(values: Sequence[Any], what: str, n: int | None, where: str) -> None:
    if n is not None and len(values) != n:
        raise ValueError(
            f"{where}: {what} has {len(values)} entries but texts has {n}; {what}[i] must "
            f"belong to texts[i]."
        )
    bad = [i for i, v in enumerate(values) if not isinstance(v, str)]
    if bad:
        raise TypeError(
            f"{where}: {what} must be strings; {what}[{bad[0]}] is "
            f"{type(values[bad[0]]).__name__} ({len(bad)} non-string entries). Convert them "
            f"with str() or drop those rows."
        )


@dataclass
class TextSet:
    """Texts of one split (optionally labelled, rated, or paired).

    Attributes:
        texts: N non-blank strings.
        labels: (N,) int64 class ids into ``classes``, or None.
        scores: (N,) float32 human ratings (e.g. VADER sentiment in [-4, 4]), or None.
        classes: class names, indexed by label.
        name: data set and split, e.g. ``"movie-snippets"``.
        positives: pair data: ``positives[i]`` is a positive of ``texts[i]`` (N strings).
        negatives: triplet data: ``negatives[i]`` is a hard negative of ``texts[i]``.
        ids: source ids, if the file has them.

    Example:
        >>> import torch
        >>> ts = TextSet(["a cat", "a dog", "a car"], labels=torch.tensor([0, 0, 1]),
        ...              classes=["animal", "vehicle"])
        >>> batch = ts.rows(torch.tensor([2, 0]))
        >>> batch["texts"], batch["labels"].tolist()
        (['a car', 'a cat'], [1, 0])
    """

    texts: list[str]
    labels: Tensor | None = None
    scores: Tensor | None = None
    classes: list[str] = field(default_factory=list)
    name: str = ""
    positives: list[str] | None = None
    negatives: list[str] | None = None
    ids: list[str] | None = None

    def __post_init__(self) -> None:
        where = f"TextSet {self.name!r}" if self.name else "TextSet"
        if isinstance(self.texts, str) or not isinstance(self.texts, Sequence):
            raise TypeError(
                f"{where}: texts must be a list of strings, got {type(self.texts).__name__}; "
                f"wrap a single text as [text]."
            )
        self.texts = list(self.texts)
        n = len(self.texts)
        for what in ("texts", "positives", "negatives"):
            values = getattr(self, what)
            if values is None:
                continue
            values = list(values)
            setattr(self, what, values)
            _check_strings(values, what, n, where)
            blank = [i for i, t in enumerate(values) if not t.strip()]
            if blank:
                raise ValueError(
                    f"{where}: {what}[{blank[0]}] is blank ({len(blank)} blank entries, rows "
                    f"{blank[:5]}); text views and tokenizers need at least one word. Drop or "
                    f"fill those rows."
                )
        if self.ids is not None:
            self.ids = [str(i) for i in self.ids]
            if len(self.ids) != n:
                raise ValueError(f"{where}: ids has {len(self.ids)} entries but texts has {n}.")
        for what, dtype, fix in (
            ("labels", torch.int64, ".long()"),
            ("scores", torch.float32, ".float()"),
        ):
            t = getattr(self, what)
            if t is None:
                continue
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"{where}: {what} must be a torch.Tensor, got {type(t).__name__}; use "
                    f"torch.as_tensor(values, dtype={dtype})."
                )
            if t.shape != (n,) or t.dtype != dtype:
                raise ValueError(
                    f"{where}: {what} must be a {dtype} tensor of shape ({n},), got {t.dtype} "
                    f"{tuple(t.shape)}; convert with {what}{fix} and give one value per text."
                )
        if self.labels is not None and n and self.classes:
            lo, hi = int(self.labels.min()), int(self.labels.max())
            if lo < 0 or hi >= len(self.classes):
                raise ValueError(
                    f"{where}: labels range over [{lo}, {hi}] but there are {len(self.classes)} "
                    f"classes; labels must be ids in [0, {len(self.classes) - 1}]."
                )
        if self.scores is not None and not torch.isfinite(self.scores).all():
            bad = int((~torch.isfinite(self.scores)).nonzero()[0])
            raise ValueError(f"{where}: scores[{bad}] is {float(self.scores[bad])}; fix the row.")

    #: the kind of each field of :meth:`rows` (see :mod:`contrastkit.data.fields`)
    fields: ClassVar[dict[str, str]] = {
        "texts": "text",
        "positives": "text",
        "negatives": "text",
        "labels": "ids",
        "scores": "table",
        "indices": "ids",
    }

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def protocol(self) -> str | None:
        """The evaluation protocol of this set: ``classification`` with labels, ``retrieval``
        with (text, positive) pairs (each text must find its positive), else None."""
        if self.labels is not None:
            return "classification"
        return "retrieval" if self.positives is not None else None

    def encoder_inputs(self) -> list[str]:
        """What an encoder embeds of this set: its texts."""
        return list(self.texts)

    def row_lengths(self) -> list[int]:
        """Characters per text: the trainer's ``group_by_length`` batches similar lengths."""
        return [len(t) for t in self.texts]

    def subset(self, index: Tensor | np.ndarray | list[int], name: str | None = None) -> TextSet:
        """The rows ``index`` (ints, in that order) as a new :class:`TextSet`.

        Example:
            >>> TextSet(["x", "y", "z"]).subset([2, 0]).texts
            ['z', 'x']
        """
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long).reshape(-1)
        rows = idx.tolist()

        def pick(values: list[str] | None) -> list[str] | None:
            return None if values is None else [values[i] for i in rows]

        return TextSet(
            texts=[self.texts[i] for i in rows],
            labels=None if self.labels is None else self.labels[idx],
            scores=None if self.scores is None else self.scores[idx],
            classes=list(self.classes),
            name=self.name if name is None else name,
            positives=pick(self.positives),
            negatives=pick(self.negatives),
            ids=pick(self.ids),
        )

    def rows(self, index: Tensor) -> dict[str, Any]:
        """The trainer's batch for rows ``index`` (a 1-D LongTensor of B row numbers).

        Returns ``{"texts": B strings, "indices": index}`` plus ``"labels"`` (B,) int64,
        ``"scores"`` (B,) float32, ``"positives"`` / ``"negatives"`` (B strings) when the set has
        them. Tensors stay on the CPU.

        Example:
            >>> sorted(TextSet(["x", "y"], positives=["x'", "y'"]).rows(torch.tensor([1])))
            ['indices', 'positives', 'texts']
        """
        if not isinstance(index, Tensor) or index.dim() != 1 or index.dtype != torch.long:
            got = (
                f"{index.dtype} {tuple(index.shape)}"
                if isinstance(index, Tensor)
                else type(index).__name__
            )
            raise TypeError(
                f"TextSet.rows takes a 1-D LongTensor of row numbers, got {got}; use "
                f"torch.as_tensor(rows, dtype=torch.long)."
            )
        rows = index.tolist()
        if rows and (min(rows) < -len(self) or max(rows) >= len(self)):
            raise IndexError(
                f"TextSet.rows: row numbers span [{min(rows)}, {max(rows)}] but the set has "
                f"{len(self)} rows."
            )
        index = index.cpu()
        batch: dict[str, Any] = {"texts": [self.texts[i] for i in rows], "indices": index}
        if self.labels is not None:
            batch["labels"] = self.labels[index]
        if self.scores is not None:
            batch["scores"] = self.scores[index]
        if self.positives is not None:
            batch["positives"] = [self.positives[i] for i in rows]
        if self.negatives is not None:
            batch["negatives"] = [self.negatives[i] for i in rows]
        return batch


# ----------------------------------------------------------------------------- reading files


def _decode(raw: bytes, path: Path, fallback: str | None = None) -> str:
    """UTF-8 (a BOM is dropped); undecodable bytes become U+FFFD with a warning, or the whole
    file is decoded with ``fallback`` (e.g. latin-1, which never fails) when given."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        if fallback is not None:
            return raw.decode(fallback)
        text = raw.decode("utf-8-sig", errors="replace")
        warnings.warn(
            f"{path} is not valid UTF-8 (first bad byte at offset {err.start}); "
            f"{text.count(chr(0xFFFD))} undecodable byte(s) were replaced by U+FFFD. Re-save the "
            f"file as UTF-8 to keep those characters.",
            stacklevel=3,
        )
        return text


def _lines(text: str) -> list[str]:
    """Split on ``\\n`` only and drop a trailing ``\\r`` (CRLF files)."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def _read_lines(path: Path, fallback: str | None = None) -> list[str]:
    return _lines(_decode(path.read_bytes(), path, fallback))


# ----------------------------------------------------------------------------- movie snippets


def _vader_candidates(path: str | os.PathLike | None) -> list[Path]:
    if path is not None:
        p = Path(path)
        return [p / MOVIE_SNIPPETS_FILE if p.is_dir() else p]
    out = []
    if os.environ.get("CONTRASTKIT_DATA"):
        out.append(Path(os.environ["CONTRASTKIT_DATA"]) / "vader" / MOVIE_SNIPPETS_FILE)
    out.append(Path(sys.prefix) / "share" / "contrastkit" / "vader" / MOVIE_SNIPPETS_FILE)
    return out


def load_movie_snippets(path: str | os.PathLike | None = None) -> TextSet:
    """VADER's movie-review snippets with mean human sentiment ratings (binary labels + scores).

    The file (``movieReviewSnippets_GroundTruth.txt``, from
    ``additional_resources/hutto_ICWSM_2014.tar.gz`` in the vaderSentiment 3.3.2 source
    distribution) has 10,605 lines ``id<TAB>rating<TAB>text`` (UTF-8, CRLF line ends, no final
    newline); ratings are the mean of human ratings in [-4, 4] (observed -3.875 to 3.94).
    The 37 snippets rated exactly 0 have no polarity and are dropped: 10,568 remain, labelled
    ``1`` (positive, rating > 0; 5,242) or ``0`` (negative; 5,326). ``scores`` keeps the rating,
    ``ids`` the file's id.

    Args:
        path: the file or a folder holding it. Default: ``$CONTRASTKIT_DATA/vader/``, then
            ``<sys.prefix>/share/contrastkit/vader/`` (where ``scripts/install-data`` puts it).

    Raises:
        MissingDatasetError: with the install command when the file is not found.

    Example:
        >>> data = load_movie_snippets()
        >>> data.texts[0][:29], data.labels[0].item(), round(data.scores[0].item(), 2)
        ('The Rock is destined to be th', 1, 2.27)
    """
    candidates = _vader_candidates(path)
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        looked = ", ".join(str(c) for c in candidates)
        raise MissingDatasetError(
            f"VADER movie-review snippets not found (looked for {looked}). Install the file "
            f"(from the vaderSentiment 3.3.2 source distribution; the wheel lacks it) with:\n"
            f"    {VADER_INSTALL}\nor pass path=<{MOVIE_SNIPPETS_FILE} or its folder>."
        )
    raw = found.read_bytes()
    text = raw.decode("utf-8", errors="replace")  # the file is valid UTF-8; never drop a line
    texts, labels, scores, ids = [], [], [], []
    for lineno, line in enumerate(_lines(text), 1):
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        try:
            rating = float(parts[1])
            if len(parts) < 3 or not parts[2].strip():
                raise ValueError
        except (IndexError, ValueError):
            raise ValueError(
                f"{found}:{lineno}: expected 'id<TAB>rating<TAB>text', got {line[:80]!r}. "
                f"Reinstall the file with {VADER_INSTALL}."
            ) from None
        if rating == 0.0:  # no polarity (37 snippets)
            continue
        ids.append(parts[0].strip())
        scores.append(rating)
        labels.append(1 if rating > 0 else 0)
        texts.append(parts[2].strip())
    return TextSet(
        texts=texts,
        labels=torch.tensor(labels, dtype=torch.long),
        scores=torch.tensor(scores, dtype=torch.float32),
        classes=["negative", "positive"],
        name="movie-snippets",
        ids=ids,
    )


# ----------------------------------------------------------------------------- Lee corpus


@dataclass
class LeeCorpus:
    """The Lee document-similarity corpus (Lee, Pincombe & Welsh 2005).

    Attributes:
        documents: the 50 news documents that were judged.
        similarity: (50, 50) float32 symmetric matrix of mean human similarity judgements in
            [0.2, 1] (ratings 1..5 divided by 5), with ones on the diagonal.
        background: 300 further documents of the same kind (for fitting a vocabulary or an
            unsupervised model without seeing the judged ones).

    Example:
        >>> lee = LeeCorpus(["a", "b", "c"], torch.eye(3), [])
        >>> pairs, sims = lee.pairs()
        >>> pairs.tolist(), sims.tolist()
        ([[0, 1], [0, 2], [1, 2]], [0.0, 0.0, 0.0])
    """

    documents: list[str]
    similarity: Tensor
    background: list[str]
    #: the evaluation protocol: correlation of embedding and human similarities
    protocol: ClassVar[str] = "similarity"

    def pairs(self) -> tuple[Tensor, Tensor]:
        """The judged pairs i < j: (P, 2) int64 indices and their (P,) similarities
        (P = 1,225 for the 50 documents), the vector a correlation with a model is taken over.
        """
        i, j = torch.triu_indices(len(self.documents), len(self.documents), offset=1)
        return torch.stack([i, j], dim=1), self.similarity[i, j]


def _gensim_test_data() -> Path:
    spec = importlib.util.find_spec("gensim")  # located without importing (gensim is slow)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        folder = Path(loc) / "test" / "test_data"
        if (folder / "lee.cor").is_file():
            return folder
    raise MissingDatasetError(
        "the Lee corpus ships in gensim's test data, and gensim is not installed"
        + (f" with its test data (looked in {locations})" if locations else "")
        + f". Install it with:\n    {GENSIM_INSTALL}\nor pass root=<folder with lee.cor, "
        f"lee_background.cor and similarities0-1.txt>."
    )


def _read_similarity(path: Path, n: int) -> Tensor:
    rows = [line.split("\t") for line in _read_lines(path) if line.strip()]
    try:
        m = torch.tensor([[float(x) for x in r] for r in rows], dtype=torch.float32)
    except ValueError as err:
        raise ValueError(
            f"{path}: {err}; expected {n} rows of {n} tab-separated numbers."
        ) from None
    if m.shape != (n, n):
        raise ValueError(
            f"{path} holds a {len(rows)}-row matrix with row lengths "
            f"{sorted({len(r) for r in rows})}; expected {n}×{n} for {n} documents."
        )
    lower = torch.tril(m, diagonal=-1)
    if lower.any():  # a full matrix: it must already be symmetric
        if not torch.allclose(m, m.T):
            raise ValueError(
                f"{path}: the similarity matrix is neither upper-triangular nor symmetric."
            )
        return m
    return m + torch.triu(m, diagonal=1).T  # upper-triangular file (gensim's): mirror it


def load_lee(root: str | os.PathLike | None = None) -> LeeCorpus:
    """The Lee corpus from gensim's test data (``lee.cor``, ``similarities0-1.txt``,
    ``lee_background.cor``), found without importing gensim.

    ``similarities0-1.txt`` is 50 tab-separated rows of 50 numbers holding only the upper
    triangle (ones on the diagonal, zeros below it); the returned matrix is mirrored to be
    symmetric. ``lee.cor`` is Latin-1 (one ``£``), the background file ASCII; both have one
    document per line.

    Raises:
        MissingDatasetError: naming ``pip install gensim`` when gensim is not installed.

    Example:
        >>> lee = load_lee()
        >>> len(lee.documents), tuple(lee.similarity.shape), len(lee.background)
        (50, (50, 50), 300)
        >>> bool((lee.similarity == lee.similarity.T).all())
        True
    """
    folder = Path(root) if root is not None else _gensim_test_data()
    for fname in ("lee.cor", "lee_background.cor", "similarities0-1.txt"):
        if not (folder / fname).is_file():
            raise MissingDatasetError(
                f"{folder / fname} is missing; the Lee corpus needs lee.cor, lee_background.cor "
                f"and similarities0-1.txt (reinstall with {GENSIM_INSTALL})."
            )
    documents = [d for d in _read_lines(folder / "lee.cor", "latin-1") if d.strip()]
    background = [d for d in _read_lines(folder / "lee_background.cor", "latin-1") if d.strip()]
    similarity = _read_similarity(folder / "similarities0-1.txt", len(documents))
    return LeeCorpus(documents=documents, similarity=similarity, background=background)


# ----------------------------------------------------------------------------- files and tables


def load_text_file(path: str | os.PathLike) -> TextSet:
    """One text per line (UTF-8; CRLF handled; blank lines skipped), unlabelled.

    Example:
        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.txt"
        >>> _ = p.write_text("first sentence\\n\\nsecond one\\n")
        >>> load_text_file(p).texts
        ['first sentence', 'second one']
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text file {path} does not exist.")
    texts = [line.strip() for line in _read_lines(path) if line.strip()]
    if not texts:
        raise ValueError(f"{path} has no non-blank lines; a text file needs one text per line.")
    return TextSet(texts=texts, name=path.stem)


def _class_ids(values: Sequence[Any], where: str) -> tuple[Tensor, list[str]]:
    """Map label values to ids in sorted order (numeric order when all are numbers)."""
    for i, v in enumerate(values):
        if v is None or (isinstance(v, str) and not v.strip()):
            raise ValueError(f"{where}: row {i} has no label; fill it or drop the row.")
    keys = [v.strip() if isinstance(v, str) else v for v in values]
    unique = set(keys)

    def numeric(v: Any) -> float | None:
        if isinstance(v, bool):
            return None
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    if all(numeric(v) is not None for v in unique):
        order = sorted(unique, key=lambda v: (numeric(v), str(v)))
    else:
        order = sorted(unique, key=str)
    to_id = {v: i for i, v in enumerate(order)}
    labels = torch.tensor([to_id[v] for v in keys], dtype=torch.long)
    return labels, [str(v) for v in order]


def _float_column(values: Sequence[Any], where: str) -> Tensor:
    out = []
    for i, v in enumerate(values):
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            raise ValueError(f"{where}: row {i} has score {v!r}, not a number.") from None
    return torch.tensor(out, dtype=torch.float32)


def _text_column(values: Sequence[Any], where: str) -> list[str]:
    out = []
    for i, v in enumerate(values):
        if not isinstance(v, str) or not v.strip():
            raise ValueError(
                f"{where}: row {i} has {'no text' if v is None or v == '' else repr(v)}; every "
                f"row needs a non-blank string. Fill or drop those rows."
            )
        out.append(v.strip())
    return out


def _build(
    columns: Callable[[str], list[Any]],
    available: list[str],
    where: str,
    name: str,
    text_column: str,
    label_column: str | None,
    positive_column: str | None,
    negative_column: str | None,
    score_column: str | None,
    id_column: str | None,
    class_names: Callable[[str], list[str] | None] = lambda c: None,
) -> TextSet:
    wanted = {
        "text_column": text_column,
        "label_column": label_column,
        "positive_column": positive_column,
        "negative_column": negative_column,
        "score_column": score_column,
        "id_column": id_column,
    }
    for arg, col in wanted.items():
        if col is not None and col not in available:
            close = difflib.get_close_matches(col, available, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"{where} has no column {col!r} ({arg}); its columns are {available}.{hint}"
            )
    labels, classes = None, []
    if label_column is not None:
        values = columns(label_column)
        names = class_names(label_column)
        if names is not None and all(isinstance(v, int) and 0 <= v < len(names) for v in values):
            labels, classes = torch.tensor(values, dtype=torch.long), list(names)
        else:
            labels, classes = _class_ids(values, f"{where}, column {label_column!r}")
    return TextSet(
        texts=_text_column(columns(text_column), f"{where}, column {text_column!r}"),
        labels=labels,
        scores=None
        if score_column is None
        else _float_column(columns(score_column), f"{where}, column {score_column!r}"),
        classes=classes,
        name=name,
        positives=None
        if positive_column is None
        else _text_column(columns(positive_column), f"{where}, column {positive_column!r}"),
        negatives=None
        if negative_column is None
        else _text_column(columns(negative_column), f"{where}, column {negative_column!r}"),
        ids=None if id_column is None else [str(v) for v in columns(id_column)],
    )


def _read_table(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    suffix = path.suffix.lower()
    text = _decode(path.read_bytes(), path)
    if suffix == ".jsonl":
        records: list[dict[str, Any]] = []
        header: list[str] = []
        for lineno, line in enumerate(_lines(text), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not a JSON object ({err.msg}).") from None
            if not isinstance(rec, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object, got {line[:60]!r}.")
            header += [k for k in rec if k not in header]
            records.append(rec)
        return header, records
    # newline="": quoted CSV fields may hold line breaks, and csv handles \r\n endings. TSV is
    # split on tabs with no quoting (the IANA / GLUE convention: texts keep their quote marks).
    if suffix == ".tsv":
        reader = csv.DictReader(
            io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE
        )
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    return header, list(reader)


def load_text_table(
    path: str | os.PathLike,
    text_column: str = "text",
    label_column: str | None = None,
    positive_column: str | None = None,
    negative_column: str | None = None,
    score_column: str | None = None,
    id_column: str | None = None,
) -> TextSet:
    """A ``.csv`` (quoted as by Excel / pandas), ``.tsv`` (split on tabs, no quoting), each with
    a header row, or ``.jsonl`` (one JSON object per line) table.

    Labels are mapped to ids in sorted order (numeric order when every label is a number, so
    ``"2"`` comes before ``"10"``); ``classes`` keeps their names. Scores must be numbers.

    Raises:
        ValueError: for a column the file lacks (listing its columns), a blank text or a
            missing label, naming the row.

    Example:
        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = p.write_text("sentence,mood\\ngreat fun,pos\\ndull,neg\\nlovely,pos\\n")
        >>> ts = load_text_table(p, text_column="sentence", label_column="mood")
        >>> ts.labels.tolist(), ts.classes
        ([1, 0, 1], ['neg', 'pos'])
    """
    path = Path(path)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise ValueError(
            f"{path}: a text table must end in {sorted(TABLE_SUFFIXES)}; for one text per line "
            f"use load_text_file."
        )
    if not path.is_file():
        raise FileNotFoundError(f"text table {path} does not exist.")
    header, records = _read_table(path)
    if not records:
        raise ValueError(f"{path} has no data rows (columns: {header}).")

    def column(col: str) -> list[Any]:
        out = []
        for i, rec in enumerate(records):
            if col not in rec:
                raise ValueError(f"{path}: data row {i} has no {col!r} field; fill it in.")
            out.append(rec[col])
        return out

    return _build(
        column,
        header,
        str(path),
        path.stem,
        text_column,
        label_column,
        positive_column,
        negative_column,
        score_column,
        id_column,
    )


def from_hf_dataset(
    ds: Any,
    text_column: str = "text",
    label_column: str | None = None,
    positive_column: str | None = None,
    negative_column: str | None = None,
    score_column: str | None = None,
    id_column: str | None = None,
    name: str = "",
) -> TextSet:
    """A :class:`TextSet` from a Hugging Face ``datasets.Dataset`` or any mapping of columns.

    Duck-typed (the ``datasets`` package is not needed): column names come from
    ``ds.column_names`` or the mapping's keys, a column from ``ds[name]``. Integer labels of a
    ``ClassLabel`` feature keep its ids and names; other labels are mapped as in
    :func:`load_text_table`.

    Example:
        >>> ts = from_hf_dataset({"sentence": ["a", "b"], "label": [1, 0]},
        ...                      text_column="sentence", label_column="label")
        >>> ts.texts, ts.labels.tolist(), ts.classes
        (['a', 'b'], [1, 0], ['0', '1'])
    """
    names = getattr(ds, "column_names", None)
    if isinstance(names, dict):
        raise TypeError(
            f"got a dataset dictionary with splits {sorted(names)}; pass one split, e.g. "
            f"from_hf_dataset(ds[{sorted(names)[0]!r}])."
        )
    if names is None:
        if not hasattr(ds, "keys") or not hasattr(ds, "__getitem__"):
            raise TypeError(
                f"from_hf_dataset takes a datasets.Dataset or a mapping of column name → "
                f"values, got {type(ds).__name__}."
            )
        names = list(ds.keys())
    names = [str(c) for c in names]
    where = f"dataset {name!r}" if name else "the dataset"

    def column(col: str) -> list[Any]:
        return list(ds[col])

    def class_names(col: str) -> list[str] | None:
        features = getattr(ds, "features", None)
        feature = features.get(col) if hasattr(features, "get") else None
        found = getattr(feature, "names", None)
        return list(found) if found else None

    return _build(
        column,
        names,
        where,
        name,
        text_column,
        label_column,
        positive_column,
        negative_column,
        score_column,
        id_column,
        class_names,
    )


# ----------------------------------------------------------------------------- registry


TEXT_DATASETS: dict[str, Callable[..., TextSet]] = {
    "movie-snippets": load_movie_snippets,
}


def load_text_dataset(name_or_path: str | os.PathLike, **kwargs: Any) -> TextSet:
    """A built-in text set by name (``movie-snippets``) or a file by its suffix: ``.txt`` →
    :func:`load_text_file`, ``.csv`` / ``.tsv`` / ``.jsonl`` → :func:`load_text_table`
    (keyword arguments go to the loader).

    Example:
        >>> load_text_dataset("movie-snipets")
        Traceback (most recent call last):
        ...
        ValueError: unknown text data set 'movie-snipets': ... Did you mean 'movie-snippets'?
    """
    key = str(name_or_path).lower().replace("_", "-")
    if key in TEXT_DATASETS:
        return TEXT_DATASETS[key](**kwargs)
    path = Path(name_or_path)
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return load_text_file(path, **kwargs)
    if suffix in TABLE_SUFFIXES:
        return load_text_table(path, **kwargs)
    close = difflib.get_close_matches(key, list(TEXT_DATASETS), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"unknown text data set {str(name_or_path)!r}: not one of {sorted(TEXT_DATASETS)} and "
        f"not a file ending in .txt, {', '.join(sorted(TABLE_SUFFIXES))}.{hint}"
    )


def load_text_data(name_or_path: str | os.PathLike) -> TextSet:
    """:func:`load_text_dataset`, with a table's role columns found by name: ``label``,
    ``positive``, ``negative``, ``score`` and ``id`` are used when the header has them (the
    texts are in ``text``). What ``contrastkit train`` uses for a text recipe's data.

    Example:
        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "pairs.jsonl"
        >>> _ = p.write_text('{"text": "a cat", "positive": "a kitten"}')
        >>> load_text_data(p).positives
        ['a kitten']
    """
    path = Path(name_or_path)
    if path.suffix.lower() not in TABLE_SUFFIXES or not path.is_file():
        return load_text_dataset(name_or_path)
    header = set(_read_table(path)[0])
    roles = ("label", "positive", "negative", "score", "id")
    return load_text_table(path, **{f"{r}_column": r for r in roles if r in header})


def stratified_folds(labels: Tensor, k: int = 5, seed: int = 0) -> list[tuple[Tensor, Tensor]]:
    """``k`` stratified folds: (train_idx, test_idx) int64 tensors per fold.

    Every row is in exactly one test fold, and each fold keeps the class ratios of ``labels``
    ((N,) integer class ids); rows are shuffled with ``seed`` before splitting (scikit-learn's
    ``StratifiedKFold``). Indices are sorted.

    Example:
        >>> folds = stratified_folds(torch.tensor([0, 0, 0, 1, 1, 1]), k=3)
        >>> [te.numel() for _, te in folds], sorted(torch.cat([te for _, te in folds]).tolist())
        ([2, 2, 2], [0, 1, 2, 3, 4, 5])
    """
    from sklearn.model_selection import StratifiedKFold

    if not isinstance(labels, Tensor) or labels.dim() != 1:
        raise ValueError("stratified_folds takes an (N,) tensor of class ids.")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class ids, got {labels.dtype}; use .long().")
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}.")
    y = labels.cpu().numpy()
    values, counts = np.unique(y, return_counts=True)
    if counts.min() < k:
        rare = values[counts.argmin()]
        raise ValueError(
            f"class {rare} has only {counts.min()} rows, fewer than k={k} folds; use "
            f"k <= {counts.min()} or merge or drop rare classes."
        )
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [
        (torch.from_numpy(np.sort(tr)).long(), torch.from_numpy(np.sort(te)).long())
        for tr, te in splitter.split(np.zeros(len(y)), y)
    ]
