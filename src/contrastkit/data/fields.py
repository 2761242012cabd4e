"""Field kinds: what the trainer, gradient caching and checkpoints need to know of a batch.

A batch is a dict of named fields (``{"images": ..., "labels": ..., "indices": ...}``), and a
network input is the rows of one field. Each value has a *kind* that knows how to

- ``collate`` a list of single rows into a batch value,
- ``to`` move a batch value to a device,
- ``select`` rows of it by a 1-D index (a LongTensor of row numbers),
- ``size`` count its rows, and ``cat`` concatenate batch values row-wise.

The trainer and gradient caching only call these five methods, so a new modality (graphs as a
PyG ``Batch``, audio, an agent's observations) plugs in by registering its kind once:

    >>> import torch
    >>> from contrastkit.data.fields import kind_of
    >>> kind_of(torch.zeros(4, 3)).name, kind_of(["a", "b"]).name
    ('tensor', 'text')
    >>> kind_of(["a", "b", "c"]).select(["a", "b", "c"], torch.tensor([2, 0]))
    ['c', 'a']

A data set may name the kind of each of its fields (``ImageSet.fields``); values of kinds that
are not named are recognised by their Python type (:func:`kind_of`), most recently registered
first, so a registered class (e.g. a graph batch type) wins over the built-in fallbacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "FIELD_KINDS",
    "FieldKind",
    "ListKind",
    "TensorKind",
    "chunks_of",
    "groups_of",
    "kind_of",
    "move",
    "register_kind",
    "rows_in",
]


class FieldKind:
    """The operations a batch field's kind provides (subclass it for a new row type).

    Attributes:
        name: the kind's name (``"image"``, ``"text"``, ``"graph"``, ...).
        accepts: a predicate on a batch value: whether this kind handles it (used by
            :func:`kind_of` when a value's kind is not declared).
    """

    name = "field"

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError

    def collate(self, rows: Sequence[Any]) -> Any:
        """A list of single rows → one batch value."""
        raise NotImplementedError

    def to(self, value: Any, device: torch.device) -> Any:
        """``value`` on ``device`` (values without a device are returned unchanged)."""
        return value

    def select(self, value: Any, index: Tensor) -> Any:
        """Rows ``index`` (1-D LongTensor of row numbers) of a batch value, in that order."""
        raise NotImplementedError

    def size(self, value: Any) -> int:
        """Number of rows in a batch value."""
        return len(value)

    def cat(self, values: Sequence[Any]) -> Any:
        """Batch values concatenated row-wise."""
        raise NotImplementedError


class TensorKind(FieldKind):
    """Rows are the first dimension of a tensor: images (uint8 N×C×H×W), ids, tables, audio,
    stacked observations, token ids."""

    def __init__(self, name: str = "tensor") -> None:
        self.name = name

    def accepts(self, value: Any) -> bool:
        return isinstance(value, Tensor)

    def collate(self, rows: Sequence[Any]) -> Tensor:
        return torch.stack([torch.as_tensor(r) for r in rows])

    def to(self, value: Tensor, device: torch.device) -> Tensor:
        return value.to(device, non_blocking=True)

    def select(self, value: Tensor, index: Tensor) -> Tensor:
        return value[index.to(value.device)]

    def size(self, value: Tensor) -> int:
        return int(value.shape[0])

    def cat(self, values: Sequence[Tensor]) -> Tensor:
        return torch.cat(list(values))


class ListKind(FieldKind):
    """Rows are items of a Python list (texts before tokenisation; any per-row object)."""

    def __init__(self, name: str = "list", item: type | tuple[type, ...] = object) -> None:
        self.name = name
        self.item = item

    def accepts(self, value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(v, self.item) for v in value)

    def collate(self, rows: Sequence[Any]) -> list[Any]:
        return list(rows)

    def select(self, value: list[Any], index: Tensor) -> list[Any]:
        return [value[i] for i in index.tolist()]

    def cat(self, values: Sequence[list[Any]]) -> list[Any]:
        return [row for v in values for row in v]


#: name → kind. ``image``, ``ids``, ``table``, ``audio`` and ``obs`` rows are tensors;
#: ``text`` rows are strings. ``graph`` is registered by the graph extra.
FIELD_KINDS: dict[str, FieldKind] = {
    "tensor": TensorKind("tensor"),
    "image": TensorKind("image"),
    "ids": TensorKind("ids"),
    "table": TensorKind("table"),
    "audio": TensorKind("audio"),
    "obs": TensorKind("obs"),
    "text": ListKind("text", str),
}
#: kinds tried by :func:`kind_of`, latest registration first
_BY_VALUE: list[FieldKind] = [FIELD_KINDS["tensor"], FIELD_KINDS["text"]]


def register_kind(kind: FieldKind, *, name: str | None = None) -> FieldKind:
    """Register ``kind`` under ``name`` (default ``kind.name``); values it ``accepts`` are
    then recognised by :func:`kind_of` before the built-in kinds. Returns ``kind``."""
    FIELD_KINDS[name or kind.name] = kind
    _BY_VALUE.insert(0, kind)
    return kind


def kind_of(value: Any, declared: str | None = None) -> FieldKind:
    """The kind of a batch value: ``declared`` (a name in :data:`FIELD_KINDS`) when given,
    else the first registered kind that accepts it."""
    if declared is not None:
        try:
            return FIELD_KINDS[declared]
        except KeyError:
            raise KeyError(
                f"unknown field kind {declared!r}; registered kinds: {sorted(FIELD_KINDS)} "
                f"(add one with contrastkit.data.fields.register_kind)."
            ) from None
    for kind in _BY_VALUE:
        if kind.accepts(value):
            return kind
    raise TypeError(
        f"no field kind handles a {type(value).__name__}; register one with "
        f"contrastkit.data.fields.register_kind (it says how to move, select and concatenate "
        f"its rows)."
    )


def move(batch: dict[str, Any], device: torch.device, kinds: dict[str, str] | None = None):
    """Every field of ``batch`` on ``device``, through its kind (values of no known kind, e.g.
    plain Python numbers, are kept as they are)."""
    kinds = kinds or {}
    out = {}
    for name, value in batch.items():
        try:
            kind = kind_of(value, kinds.get(name))
        except TypeError:
            out[name] = value
            continue
        out[name] = kind.to(value, device)
    return out


def groups_of(rows: Any) -> list[Any]:
    """A tower's rows as a list of groups embedded one by one: a plain list that no kind
    accepts as one batch value (multi-crop: crops of different shapes) is its groups;
    anything else is one group."""
    if isinstance(rows, list) and not any(kind.accepts(rows) for kind in _BY_VALUE):
        return list(rows)
    return [rows]


def rows_in(rows: Any) -> int:
    """Number of rows of a batch value (of any registered kind)."""
    return kind_of(rows).size(rows)


def chunks_of(rows: Any, size: int) -> list[Any]:
    """``rows`` cut into consecutive chunks of at most ``size`` rows (through its kind)."""
    kind = kind_of(rows)
    n = kind.size(rows)
    return [kind.select(rows, torch.arange(s, min(s + size, n))) for s in range(0, n, size)]
