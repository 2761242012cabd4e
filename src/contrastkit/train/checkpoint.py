"""Checkpoints and exported encoders: safetensors + JSON, written atomically, no pickles.

A training checkpoint is one ``.safetensors`` file: every tensor (model, optimizer state, RNG
states) is a named tensor, and everything else (epoch, step, config, optimizer hyper-parameters)
is JSON stored in the file's metadata. One file means one atomic ``os.replace``: a crash leaves
either the previous checkpoint or the new one, never half of each.

Every file carries a checksum in its own metadata (``sha256``: SHA-256 of the header's
canonical JSON without that key, then of every tensor byte), checked by :func:`load_state` on
every load: a damaged file (bit rot, a bad copy) raises :class:`DamagedFileError` instead of
loading wrong weights. Keeping the checksum inside the file keeps the write one atomic rename.
Files written before checksums existed load unchecked.

Example:
    >>> import tempfile, torch
    >>> from contrastkit.train.checkpoint import save_state, load_state
    >>> path = tempfile.mkdtemp() + "/ckpt.safetensors"
    >>> save_state(path, {"model": {"w": torch.ones(2)}, "epoch": 3})
    >>> load_state(path)["epoch"]
    3
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from contrastkit._io import atomic_write, atomic_write_bytes, file_sha256

__all__ = ["DamagedFileError", "atomic_write_bytes", "file_sha256", "load_state", "save_state"]

_META_KEY = "contrastkit"
_SUM_KEY = "sha256"
_CHUNK = 1 << 24


class DamagedFileError(ValueError):
    """A saved file does not match its checksum (or cannot be parsed): it is damaged."""


def damaged(path: str | os.PathLike, why: str) -> DamagedFileError:
    """The one-line error for a damaged file ``path``."""
    return DamagedFileError(
        f"{path}: the file is damaged ({why}); restore it from a backup or retrain."
    )


def _header_digest(header: dict[str, Any]) -> Any:
    """A sha256 object fed with the header's canonical JSON, less the checksum itself."""
    meta = {k: v for k, v in (header.get("__metadata__") or {}).items() if k != _SUM_KEY}
    canon = {**header, "__metadata__": meta}
    return hashlib.sha256(json.dumps(canon, sort_keys=True, separators=(",", ":")).encode())


def _seal(path: str) -> None:
    """Add the checksum to the metadata of the safetensors file at ``path`` (rewritten)."""
    raw = Path(path).read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    data = memoryview(raw)[8 + n :]
    h = _header_digest(header)
    h.update(data)
    header.setdefault("__metadata__", {})[_SUM_KEY] = h.hexdigest()
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # safetensors pads its header to 8 bytes
    with open(path, "wb") as f:
        f.write(len(head).to_bytes(8, "little"))
        f.write(head)
        f.write(data)


def _read_header(path: Path) -> tuple[dict[str, Any], int]:
    """The safetensors header of ``path`` and the data section's offset; damaged if unreadable."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        first = f.read(8)
        n = int.from_bytes(first, "little") if len(first) == 8 else -1
        if n < 2 or n > size - 8:
            raise damaged(path, "its safetensors header is cut or corrupt")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, ValueError):
            raise damaged(path, "its safetensors header is not valid JSON") from None
    if not isinstance(header, dict):
        raise damaged(path, "its safetensors header is not valid JSON")
    return header, 8 + n


def _verify(path: Path, header: dict[str, Any], offset: int) -> None:
    """Compare the file with the checksum in its metadata (files without one pass)."""
    expected = (header.get("__metadata__") or {}).get(_SUM_KEY)
    if expected is None:
        return
    h = _header_digest(header)
    with open(path, "rb") as f:
        f.seek(offset)
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    if h.hexdigest() != expected:
        raise damaged(path, "its sha256 checksum does not match its contents")


def _flatten(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Move tensors out of a nested structure into ``tensors``; leave JSON-able placeholders."""
    if isinstance(obj, torch.Tensor):
        name = prefix or "_"
        tensors[name] = obj.detach().cpu().contiguous()
        return {"__tensor__": name}
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            key = str(k)
            out[key] = _flatten(v, f"{prefix}/{key}" if prefix else key, tensors)
        if any(not isinstance(k, str) for k in obj):
            return {"__intkeys__": out}
        return out
    if isinstance(obj, (list, tuple)):
        items = [_flatten(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else {"__tuple__": items}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(
        f"cannot store {type(obj).__name__} at {prefix!r} in a checkpoint: only tensors, "
        f"numbers, strings, lists and dicts are saved (no pickles)."
    )


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__tuple__"}:
            return tuple(_unflatten(v, tensors) for v in obj["__tuple__"])
        if set(obj) == {"__intkeys__"}:
            return {int(k): _unflatten(v, tensors) for k, v in obj["__intkeys__"].items()}
        return {k: _unflatten(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Save a nested dict of tensors and plain values as one safetensors file, atomically.

    Tensors shared between entries are stored once per reference (safetensors forbids aliasing,
    so each is cloned).
    """
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten(state, "", tensors)
    seen: dict[int, str] = {}
    for k, t in list(tensors.items()):
        ptr = t.untyped_storage().data_ptr() if t.numel() else -1
        if ptr in seen and ptr != -1:
            tensors[k] = t.clone()
        seen[ptr] = k
    meta = {_META_KEY: json.dumps(skeleton)}

    def write(tmp: str) -> None:
        save_file(tensors, tmp, metadata=meta)
        _seal(tmp)

    atomic_write(path, write)


def load_state(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a file written by :func:`save_state` (no pickle is ever read).

    Raises:
        DamagedFileError: the file does not match its checksum, or cannot be parsed.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist.")
    header, offset = _read_header(path)
    meta = header.get("__metadata__") or {}
    if _META_KEY not in meta:
        raise ValueError(
            f"{path} is a safetensors file but not a contrastkit checkpoint (no "
            f"'{_META_KEY}' metadata)."
        )
    _verify(path, header, offset)
    try:
        skeleton = json.loads(meta[_META_KEY])
        tensors = load_file(str(path), device=str(device))
        return _unflatten(skeleton, tensors)
    except (SafetensorError, json.JSONDecodeError, KeyError) as err:
        first = (str(err).splitlines() or [""])[0][:200]
        raise damaged(path, f"{type(err).__name__}: {first}") from None
