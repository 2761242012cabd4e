"""Input validation shared by the toolbox (losses, miners).

Every check raises an error that names the argument, what was wrong with it and how to fix it,
before any computation starts. These helpers know nothing of losses or recipes.

A batch that is valid but that a label-using loss or miner cannot learn from (one class: no
negatives; every label unique: no positives) gets a :class:`DegenerateBatchWarning` instead,
once per process and problem (:func:`warn_degenerate`, :func:`reset_degenerate_warnings`).
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "NO_NEGATIVES",
    "NO_POSITIVES",
    "DegenerateBatchWarning",
    "check_choice",
    "check_embeddings",
    "check_ids",
    "check_pair_inputs",
    "check_positive",
    "check_probability",
    "compute_dtype",
    "has_no_negatives",
    "has_no_positives",
    "label_problems",
    "require_extra",
    "reset_degenerate_warnings",
    "tracing",
    "warn_degenerate",
    "warn_label_problems",
]


def tracing() -> bool:
    """True while torch.compile or torch.export (the ONNX exporter) traces the code: checks
    that read tensor values (a data-dependent branch) are skipped then, since the traced graph
    cannot branch on data; they run in every eager call.

    Example:
        >>> tracing()
        False
    """
    is_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    return bool(is_compiling()) if is_compiling is not None else False


def compute_dtype(*tensors: Tensor | None) -> torch.dtype:
    """The floating dtype a loss computes in: float64 if any input is float64, else float32.

    Half-precision inputs (bf16, fp16) are upcast so that log-sum-exp and the reductions are
    accurate; the returned loss is then float32 even under autocast.
    """
    dtype = torch.float32
    for t in tensors:
        if t is not None and t.dtype == torch.float64:
            dtype = torch.float64
    return dtype


def check_embeddings(x: Tensor, name: str, *, allow_empty: bool = False) -> None:
    """Check that ``x`` is a finite floating (N, D) tensor with N ≥ 1 and D ≥ 1."""
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape (N, D), got {type(x).__name__}; "
            f"convert it with torch.as_tensor({name})."
        )
    if x.dim() != 2:
        raise ValueError(
            f"{name} must be 2-D (N, D) embeddings, got shape {tuple(x.shape)}; "
            f"flatten per-sample features first, e.g. {name}.flatten(1)."
        )
    if not torch.is_floating_point(x):
        raise TypeError(
            f"{name} must be a floating-point tensor, got dtype {x.dtype}; "
            f"cast it with {name}.float()."
        )
    if x.shape[1] == 0:
        raise ValueError(f"{name} has embedding dimension D=0; embeddings need D ≥ 1.")
    if x.shape[0] == 0 and not allow_empty:
        raise ValueError(
            f"{name} is an empty batch (N=0); a contrastive loss needs at least one row."
        )
    if x.numel() > 0:
        finite = torch.isfinite(x)
        if not bool(finite.all()):
            bad_rows = (~finite).any(dim=1).nonzero().flatten()
            n_nan = int(torch.isnan(x).sum())
            n_inf = int(torch.isinf(x).sum())
            shown = bad_rows[:5].tolist()
            raise ValueError(
                f"{name} contains non-finite values ({n_nan} NaN, {n_inf} inf) in "
                f"{bad_rows.numel()} row(s), first rows {shown}. The encoder diverged or the "
                f"input was bad: lower the learning rate, enable gradient clipping, or check "
                f"the data feeding those rows."
            )


def check_ids(ids: Tensor | None, n: int, name: str, rows_name: str) -> Tensor:
    """Check that ``ids`` is an integer (or bool) 1-D tensor of length ``n``; return it as int64."""
    if ids is None:
        raise ValueError(
            f"{name} is required: pass one integer id per row of {rows_name} "
            f"(rows with equal ids are positives), e.g. torch.arange(N) for instance ids."
        )
    if not isinstance(ids, Tensor):
        ids = torch.as_tensor(ids)
    if ids.dim() != 1:
        raise ValueError(
            f"{name} must be 1-D with one id per row of {rows_name}, got shape "
            f"{tuple(ids.shape)}; use {name}.flatten() if it is (N, 1)."
        )
    if torch.is_floating_point(ids) or torch.is_complex(ids):
        raise TypeError(
            f"{name} must hold integer ids, got dtype {ids.dtype}; floating ids compare "
            f"unreliably. Convert class labels or instance indices with {name}.long()."
        )
    if ids.shape[0] != n:
        raise ValueError(
            f"{name} has {ids.shape[0]} ids but {rows_name} has {n} rows; give exactly one "
            f"id per row."
        )
    return ids.long()


def check_pair_inputs(
    query: Tensor,
    key: Tensor | None,
    query_ids: Tensor | None,
    key_ids: Tensor | None,
) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None]:
    """Validate the (query, key, query_ids, key_ids) contract shared by every loss and miner.

    Returns the ids as int64 tensors on the query's device. ``key_ids`` defaults to
    ``query_ids`` when ``key`` has as many rows as ``query``.
    """
    check_embeddings(query, "query")
    qids = check_ids(query_ids, query.shape[0], "query_ids", "query").to(query.device)
    if key is None:
        if key_ids is not None:
            raise ValueError(
                "key_ids was given without key; with key=None the query is contrasted with "
                "itself and query_ids serve both sides. Drop key_ids or pass key."
            )
        return query, None, qids, None
    check_embeddings(key, "key")
    if key.shape[1] != query.shape[1]:
        raise ValueError(
            f"query and key must have the same embedding dimension, got query D="
            f"{query.shape[1]} and key D={key.shape[1]}; project both to a shared "
            f"dimension first."
        )
    if key.device != query.device:
        raise ValueError(
            f"query is on {query.device} but key is on {key.device}; move both to one device."
        )
    if key_ids is None:
        if key.shape[0] != query.shape[0]:
            raise ValueError(
                f"key_ids is required when key has a different number of rows than query "
                f"(query N={query.shape[0]}, key M={key.shape[0]}); pass one id per key row."
            )
        kids = qids
    else:
        kids = check_ids(key_ids, key.shape[0], "key_ids", "key").to(query.device)
    return query, key, qids, kids


def check_positive(value: float | Tensor, name: str, hint: str = "") -> None:
    """Check that a scalar hyper-parameter (temperature, scale) is finite and > 0."""
    v = value.detach() if isinstance(value, Tensor) else torch.as_tensor(value)
    if v.numel() != 1:
        raise ValueError(f"{name} must be a scalar, got shape {tuple(v.shape)}.")
    if not bool(torch.isfinite(v)) or float(v) <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {float(v)}. {hint}".rstrip())


def check_probability(value: float, name: str, *, upper_open: bool = True) -> None:
    """Check 0 ≤ value < 1 (or ≤ 1 when ``upper_open`` is False)."""
    ok = 0.0 <= float(value) < 1.0 if upper_open else 0.0 <= float(value) <= 1.0
    if not ok:
        bound = "[0, 1)" if upper_open else "[0, 1]"
        raise ValueError(f"{name} must lie in {bound}, got {value}.")


def check_choice(value: str, name: str, choices: tuple[str, ...]) -> None:
    """Check that a string option is one of ``choices``, suggesting the closest match."""
    if value not in choices:
        import difflib

        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}.{hint}")


class DegenerateBatchWarning(UserWarning):
    """A label-using loss or miner got a batch it cannot learn from.

    Either every row has the same label (no negatives: one class in the batch) or no two rows
    share a label (no positives). Issued once per loss or miner and problem per process (see
    :func:`warn_degenerate`); the loss stays finite and keeps a gradient path.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings():  # make it fatal, here inside a block only
        ...     warnings.simplefilter("error", DegenerateBatchWarning)
    """


NO_NEGATIVES = "every row of the batch has the same label: no negatives"
NO_POSITIVES = "no two rows of the batch share a label: no positives"
_FIXES = {
    NO_NEGATIVES: (
        "use batches with at least two classes (e.g. a class-balanced sampler), or a "
        "self-supervised recipe for unlabelled or one-class data"
    ),
    NO_POSITIVES: (
        "use batches with at least two rows per class (e.g. a class-balanced sampler with two "
        "or more samples per class, or two views per sample), or a self-supervised recipe for "
        "unlabelled or one-class data"
    ),
}

#: (loss or miner name, problem) pairs already warned about in this process.
_warned_degenerate: set[tuple[str, str]] = set()

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep


def reset_degenerate_warnings() -> None:
    """Forget which degenerate batches were warned about, so that each warns once again.

    Example:
        >>> reset_degenerate_warnings()  # e.g. between tests, or before a new run
    """
    _warned_degenerate.clear()


def _caller_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside contrastkit and torch (the user's call)."""
    frame = sys._getframe(2)  # the caller of warn_degenerate
    level = 2
    while frame is not None and frame.f_code.co_filename.startswith((_PACKAGE_DIR, _TORCH_DIR)):
        frame = frame.f_back
        level += 1
    return level


def warn_degenerate(name: str, problem: str, value: str) -> bool:
    """Warn once per process (per ``name`` and ``problem``) that a batch is degenerate.

    A module-level set, not Python's per-location registry, decides: the warning fires once
    however many call sites or loop iterations reach it (:func:`reset_degenerate_warnings`
    re-arms it). Returns True when it warned.

    Args:
        name: the loss or miner, e.g. ``"sup_con"``.
        problem: :data:`NO_NEGATIVES` or :data:`NO_POSITIVES`.
        value: what the returned value means, e.g. ``"the loss is 0 (no gradient signal)"``.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     reset_degenerate_warnings()
        ...     warn_degenerate("sup_con", NO_NEGATIVES, "the loss is 0")
        ...     warn_degenerate("sup_con", NO_NEGATIVES, "the loss is 0")
        True
        False
        >>> len(caught)
        1
        >>> reset_degenerate_warnings()
    """
    if (name, problem) in _warned_degenerate:
        return False
    _warned_degenerate.add((name, problem))
    warnings.warn(
        f"{name}: {problem}; {value}. Fix: {_FIXES[problem]}. (Warned once per process.)",
        DegenerateBatchWarning,
        stacklevel=_caller_stacklevel(),
    )
    return True


def has_no_negatives(
    qids: Tensor, kids: Tensor | None, negative_ids: Tensor | None = None, n_extra: int = 0
) -> Tensor:
    """0-d bool tensor: True when no row has any negative, in O(N + M + K) and without a sync.

    That is when every query id and key id (``kids`` None: a self-contrast) is one value and
    every one of the ``n_extra`` extra negatives (a queue) shares it (``negative_ids`` None:
    extra negatives are always negatives).

    Example:
        >>> bool(has_no_negatives(torch.tensor([3, 3, 3]), None))
        True
    """
    first = qids[:1]
    same = (qids == first).all()
    if kids is not None:
        same = same & (kids == first).all()
    if n_extra:
        if negative_ids is None:
            return torch.zeros((), dtype=torch.bool, device=qids.device)
        same = same & (negative_ids == first).all()
    return same


def has_no_positives(qids: Tensor, kids: Tensor | None) -> Tensor:
    """0-d bool tensor: True when no query row shares its id with a key (``kids`` None: with
    another query row), without a sync; O((N + M) log(N + M)) for the sort of the ids.

    Example:
        >>> bool(has_no_positives(torch.tensor([0, 1, 2]), None))
        True
    """
    if kids is None:
        s = qids.sort().values
        return ~(s[1:] == s[:-1]).any()
    return ~torch.isin(qids, kids).any()


def warn_label_problems(
    name: str, qids: Tensor, kids: Tensor | None, values: dict[str, str]
) -> None:
    """Warn once per process about each degenerate-batch problem of a labelled batch.

    ``values`` maps each problem checked (:data:`NO_NEGATIVES`, :data:`NO_POSITIVES`) to what
    the caller's returned value means then. Costs one host sync (on CUDA) until every problem
    has been warned about, none after: a pragmatic price for a check on small label tensors.

    Example:
        >>> import warnings
        >>> reset_degenerate_warnings()
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_label_problems("demo", torch.arange(4), None, {NO_POSITIVES: "it is 0"})
        >>> [str(w.message).split(";")[0] for w in caught]
        ['demo: no two rows of the batch share a label: no positives']
        >>> reset_degenerate_warnings()
    """
    if all((name, p) in _warned_degenerate for p in values):
        return
    for problem in label_problems(qids, kids):
        if problem in values:
            warn_degenerate(name, problem, values[problem])


def label_problems(qids: Tensor, kids: Tensor | None) -> list[str]:
    """The degenerate-batch problems of a labelled batch (:data:`NO_NEGATIVES`,
    :data:`NO_POSITIVES`), with one host sync for both checks.

    Example:
        >>> label_problems(torch.tensor([1, 1, 1]), None)
        ['every row of the batch has the same label: no negatives']
    """
    flags = torch.stack([has_no_negatives(qids, kids), has_no_positives(qids, kids)]).tolist()
    return [p for p, bad in zip((NO_NEGATIVES, NO_POSITIVES), flags, strict=True) if bad]


def require_extra(module: str, extra: str, what: str) -> Any:
    """Import ``module``, or raise an ImportError that names the install command of the
    package's ``extra`` (``what``: what needs it, in words).

    Example:
        >>> require_extra("math", "graph", "graphs").sqrt(4.0)
        2.0
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"{what}: {module.split('.')[0]} is not installed; pip install "
            f'"contrastkit[{extra}]" brings it ({err}).'
        ) from None
