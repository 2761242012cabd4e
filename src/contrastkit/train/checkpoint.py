"""Checkpoints and exported encoders: safetensors + JSON, written atomically, no pickles.

A training checkpoint is one ``.safetensors`` file: every tensor (model, optimizer state, RNG
states) is a named tensor, and everything else (epoch, step, config, optimizer hyper-parameters)
is JSON stored in the file's metadata. One file means one atomic ``os.replace``: a crash leaves
either the previous checkpoint or the new one, never half of each.

Example:
    >>> import tempfile, torch
    >>> from contrastkit.train.checkpoint import save_state, load_state
    >>> path = tempfile.mkdtemp() + "/ckpt.safetensors"
    >>> save_state(path, {"model": {"w": torch.ones(2)}, "epoch": 3})
    >>> load_state(path)["epoch"]
    3
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from contrastkit._io import atomic_write, atomic_write_bytes

__all__ = ["atomic_write_bytes", "load_state", "save_state"]

_META_KEY = "contrastkit"


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
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_state(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a file written by :func:`save_state` (no pickle is ever read)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist.")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if _META_KEY not in meta:
        raise ValueError(
            f"{path} is a safetensors file but not a contrastkit checkpoint (no "
            f"'{_META_KEY}' metadata)."
        )
    tensors = load_file(str(path), device=str(device))
    return _unflatten(json.loads(meta[_META_KEY]), tensors)
